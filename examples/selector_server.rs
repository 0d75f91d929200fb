//! A server on the selector alone, with a hand-written task type and waker and no event loop:
//! the book's listings 14.10 to 14.13, in Rust.
//!
//! Run: `cargo run --example selector_server` (listens on 127.0.0.1:8000; try `nc 127.0.0.1
//! 8000` from two terminals; Ctrl-C stops it), or `cargo run --example selector_server --
//! --demo`, which listens on a free port, connects two clients of its own, sends a few lines
//! from each, and exits once both have left.
//!
//! The pieces, smallest first:
//! - `ready(fd, interest)`: a future that registers the fd with the selector (level-triggered,
//!   like Python's `selectors`), stores the task's waker, and completes when woken.
//! - `accept`, `recv`, `send_all`: try the non-blocking syscall; on `WouldBlock`, await
//!   `ready` and try again (the book's `sock_accept` and `sock_recv`).
//! - `Task`: a boxed `async fn` plus an id. Its waker (`TaskWaker`) only records "task `id`
//!   is ready" in a list.
//! - `run`: poll every ready task once, then block in `select`, then call the waker of each
//!   fd the selector reports ("selector has an event"), and again.
//!
//! What this lacks, and `corio::EventLoop` adds: timers (`sleep`), callbacks (`call_soon`),
//! a wake-up from other threads, cancellation, panics caught and reported, a task's output
//! handed to whoever awaits it, edge-triggered registration without a `modify` per wait, and
//! sockets that unregister themselves when dropped.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use corio::selector::{Events, Interest, Selector, SelectorKind, Token, Trigger};

// ---- the runtime: a selector, who waits on what, and the tasks ------------------------------

/// A task: an `async fn` in a box, polled until it returns (listing 14.11's `CustomTask`).
type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The task's waker: waking only records the task's id in the shared ready list.
struct TaskWaker {
    id: usize,
    ready: Arc<Mutex<Vec<usize>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.ready.lock().unwrap().push(self.id);
    }
}

struct Runtime {
    selector: Box<dyn Selector>,
    /// Registered fds: the interest registered, and the waker of the task waiting on it.
    waiting: RefCell<HashMap<RawFd, (Interest, Option<Waker>)>>,
    /// Tasks spawned since the last turn; they are ready to run.
    spawned: RefCell<Vec<Task>>,
    /// Clients that have left (the demo stops after two).
    clients_done: Cell<usize>,
    stop_after: Option<usize>,
}

impl Runtime {
    fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        self.spawned.borrow_mut().push(Box::pin(task));
    }

    /// Waits on `fd` for `interest`: register it the first time, modify it when the interest
    /// changes (listing 14.12's `_register_socket_to_read`), and remember who to wake.
    fn watch(&self, fd: RawFd, interest: Interest, waker: Waker) -> io::Result<()> {
        let mut waiting = self.waiting.borrow_mut();
        let token = Token(fd as usize);
        match waiting.get_mut(&fd) {
            None => {
                self.selector
                    .register(fd, token, interest, Trigger::Level)?;
                waiting.insert(fd, (interest, Some(waker)));
            }
            Some((registered, slot)) => {
                if *registered != interest {
                    self.selector.modify(fd, token, interest, Trigger::Level)?;
                    *registered = interest;
                }
                *slot = Some(waker);
            }
        }
        Ok(())
    }

    /// Stops watching `fd`; call it before the socket is closed (the book's `sock_close`).
    fn forget(&self, fd: RawFd) {
        if self.waiting.borrow_mut().remove(&fd).is_some() {
            let _ = self.selector.unregister(fd);
        }
    }
}

/// Completes once `fd` is ready for `interest`.
async fn ready(rt: &Runtime, fd: RawFd, interest: Interest) -> io::Result<()> {
    let mut armed = false;
    poll_fn(|cx| {
        if armed {
            return Poll::Ready(Ok(())); // we were woken: the selector reported the fd
        }
        rt.watch(fd, interest, cx.waker().clone())?;
        armed = true;
        Poll::Pending
    })
    .await
}

/// Runs `main` and every task it spawns until the demo's clients have left (or forever).
fn run(rt: Rc<Runtime>, main: impl Future<Output = ()> + 'static) {
    let ready_ids = Arc::new(Mutex::new(Vec::new()));
    let mut tasks: HashMap<usize, Task> = HashMap::new();
    let mut next_id = 0;
    let mut events = Events::with_capacity(64);
    rt.spawn(main);
    loop {
        // 1. New tasks get an id and are ready to run.
        for task in rt.spawned.borrow_mut().drain(..) {
            tasks.insert(next_id, task);
            ready_ids.lock().unwrap().push(next_id);
            next_id += 1;
        }
        // 2. Poll each ready task once, with a waker that knows its id.
        let ids = std::mem::take(&mut *ready_ids.lock().unwrap());
        for id in ids {
            let Some(task) = tasks.get_mut(&id) else {
                continue; // already finished
            };
            let waker = Waker::from(Arc::new(TaskWaker {
                id,
                ready: ready_ids.clone(),
            }));
            if task
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                tasks.remove(&id);
            }
        }
        if rt.stop_after.is_some_and(|n| rt.clients_done.get() >= n) {
            return;
        }
        if !rt.spawned.borrow().is_empty() || !ready_ids.lock().unwrap().is_empty() {
            continue; // more to run before blocking
        }
        // 3. Block until the OS reports a ready fd, then wake whoever waits on it.
        rt.selector.select(&mut events, None).expect("select");
        for event in events.iter() {
            println!("selector has an event");
            let fd = event.token.0 as RawFd;
            let waker = rt
                .waiting
                .borrow_mut()
                .get_mut(&fd)
                .and_then(|(_, w)| w.take());
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

// ---- socket operations as async fns (listing 14.12's sock_accept, sock_recv) ----------------

async fn accept(rt: &Runtime, listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                stream.set_nonblocking(true)?;
                return Ok((stream, peer));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready(rt, listener.as_raw_fd(), Interest::READABLE).await?
            }
            Err(e) => return Err(e),
        }
    }
}

async fn recv(rt: &Runtime, stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match (&*stream).read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready(rt, stream.as_raw_fd(), Interest::READABLE).await?
            }
            other => return other,
        }
    }
}

async fn send_all(rt: &Runtime, stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match (&*stream).write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready(rt, stream.as_raw_fd(), Interest::WRITABLE).await?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// ---- the server (listing 14.13) -------------------------------------------------------------

async fn read_from_client(rt: Rc<Runtime>, stream: TcpStream, peer: SocketAddr) {
    let mut buf = [0u8; 1024];
    loop {
        let n = match recv(&rt, &stream, &mut buf).await {
            Ok(0) | Err(_) => break, // EOF or reset: the client left
            Ok(n) => n,
        };
        print!("{peer} sent: {}", String::from_utf8_lossy(&buf[..n]));
        if send_all(&rt, &stream, &buf[..n]).await.is_err() {
            break;
        }
    }
    println!("{peer} left");
    rt.forget(stream.as_raw_fd()); // unregister, then `stream` drops and closes
    rt.clients_done.set(rt.clients_done.get() + 1);
}

async fn listen_for_connections(rt: Rc<Runtime>, listener: TcpListener) {
    loop {
        println!("waiting for a connection...");
        match accept(&rt, &listener).await {
            Ok((stream, peer)) => {
                println!("new connection from {peer}");
                rt.spawn(read_from_client(rt.clone(), stream, peer));
            }
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

/// A demo client on a plain thread with blocking sockets: send lines, print the echoes.
fn demo_client(addr: SocketAddr, n: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("demo client connect");
        let mut echoes = BufReader::new(stream.try_clone().unwrap());
        for line in [
            format!("hello from client {n}"),
            format!("bye from client {n}"),
        ] {
            stream.write_all(format!("{line}\n").as_bytes()).unwrap();
            let mut echo = String::new();
            echoes.read_line(&mut echo).unwrap();
            println!("client {n} got back: {}", echo.trim_end());
        }
    })
}

fn main() {
    let demo = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--demo") => true,
        Some(other) => {
            eprintln!("usage: selector_server [--demo]  (unknown argument {other})");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(if demo {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:8000"
    })
    .expect("bind");
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    println!("listening on {addr}");

    let rt = Rc::new(Runtime {
        selector: SelectorKind::Default.create().expect("selector"),
        waiting: RefCell::new(HashMap::new()),
        spawned: RefCell::new(Vec::new()),
        clients_done: Cell::new(0),
        stop_after: demo.then_some(2),
    });
    let clients = if demo {
        vec![demo_client(addr, 1), demo_client(addr, 2)]
    } else {
        Vec::new()
    };
    run(rt.clone(), listen_for_connections(rt, listener));
    for c in clients {
        c.join().unwrap();
    }
    println!("both demo clients were served; bye");
}
