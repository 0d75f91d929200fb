//! The flagship: a TCP echo server on corio, in three interchangeable shapes (`--mode`:
//! callback protocols by default, or one task per connection on streams or raw sockets).
//!
//! Run: `cargo run --release --example echo_server -- [ADDR]` (default `127.0.0.1:8888`),
//! then in another terminal: `nc 127.0.0.1 8888` and type lines.
//!
//! It prints `listening on ADDR` once bound (port 0 picks a free port and prints it), raises
//! its open-file soft limit to the hard limit, and serves every client concurrently,
//! echoing every byte in order until the client closes its side. A reset or half-closed
//! client ends only its own connection. When the process is out of file descriptors, accepting
//! pauses for 100 ms instead of spinning (the connection waits in the backlog).
//!
//! Graceful shutdown (book 3.6): on SIGINT (Ctrl-C) or SIGTERM it stops accepting (the
//! listening socket closes), lets the live connections finish for a grace period, cancels
//! those still open after it (closing their sockets), and exits 0 with a one-line summary:
//! `echo_server: served N connections, M cancelled at shutdown`. A second signal during the
//! grace period cuts it short. `kill -USR1 PID` prints a dump of each loop to stderr
//! (ready queue, timers, registered fds, tasks by state).
//!
//! Flags may come before or after ADDR:
//!   `--mode MODE`      how connections are served (default `protocol`, the fastest measured;
//!                      all three give one `read` and one `write` per echo):
//!     - `protocol`: a [`Protocol`](corio::protocols::Protocol) whose `data_received`
//!       writes the bytes back on its transport; no task per connection (asyncio's
//!       `loop.create_server`). Reading pauses while the peer does not read its echoes.
//!     - `streams`: one task per connection over a `StreamReader`/`StreamWriter` pair
//!       (asyncio's `start_server`): read, write, `drain`.
//!     - `sockets`: one task per connection on a raw `TcpStream` (asyncio's `sock_recv` /
//!       `sock_sendall`).
//!   `--buffer BYTES`   per-connection read buffer of `streams` and `sockets` (default 16384)
//!   `--grace SECS`     how long live connections may go on after a signal (default 5)
//!   `--threads N`      N threads, each with its own loop and its own listening socket on
//!                      the same port (`SO_REUSEPORT`: the kernel spreads connections
//!                      among them; book 6.6, one loop per core). Default 1.
//!   `--idle-timeout SECS`  close a connection that makes no progress for SECS: nothing
//!                      read, or an echo that the peer does not take (a client that never
//!                      reads is aborted, its unsent echo dropped). Default: none.
//!   `--max-conns N`    at most N connections per loop; more are accepted and closed at once
//!                      (counted as rejected), so a flood cannot take every fd. Default: none.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use corio::net::{TcpListener, TcpStream};
use corio::protocols::{BaseProtocol, Protocol};
use corio::server::{Server, ServerOptions};
use corio::signal::{SIGINT, SIGTERM, Signals};
use corio::streams::{StreamReader, StreamWriter};
use corio::transports::Transport;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Protocol,
    Streams,
    Sockets,
}

struct Args {
    addr: String,
    mode: Mode,
    buffer: usize,
    grace: Duration,
    threads: usize,
    idle: Option<Duration>,
    max_conns: Option<usize>,
}

fn parse_args() -> Args {
    let mut args = Args {
        addr: "127.0.0.1:8888".into(),
        mode: Mode::Protocol,
        buffer: 16 * 1024,
        grace: Duration::from_secs(5),
        threads: 1,
        idle: None,
        max_conns: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--buffer" => {
                args.buffer = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage("--buffer needs a positive number"));
            }
            "--grace" => {
                args.grace = it
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .unwrap_or_else(|| usage("--grace needs a number of seconds"));
            }
            "--threads" => {
                args.threads = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage("--threads needs a positive number"));
            }
            "--idle-timeout" => {
                args.idle = Some(
                    it.next()
                        .and_then(|v| v.parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .map(Duration::from_secs_f64)
                        .unwrap_or_else(|| {
                            usage("--idle-timeout needs a positive number of seconds")
                        }),
                );
            }
            "--max-conns" => {
                args.max_conns = Some(
                    it.next()
                        .and_then(|v| v.parse().ok())
                        .filter(|&n| n > 0)
                        .unwrap_or_else(|| usage("--max-conns needs a positive number")),
                );
            }
            "--mode" => {
                args.mode = match it.next().as_deref() {
                    Some("protocol") => Mode::Protocol,
                    Some("streams") => Mode::Streams,
                    Some("sockets") => Mode::Sockets,
                    _ => usage("--mode needs protocol, streams or sockets"),
                }
            }
            "-h" | "--help" => usage(""),
            flag if flag.starts_with("--") => usage(&format!("unknown flag {flag}")),
            addr => args.addr = addr.to_string(),
        }
    }
    args
}

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("echo_server: {err}");
    }
    eprintln!(
        "usage: echo_server [ADDR] [--mode protocol|streams|sockets] [--buffer BYTES] [--grace SECS] [--threads N] [--idle-timeout SECS] [--max-conns N]"
    );
    std::process::exit(2);
}

/// Echoes until EOF or an error; every byte read is written back before the next read.
async fn echo(stream: TcpStream, buffer: usize, idle: Option<Duration>) {
    let mut buf = vec![0u8; buffer];
    loop {
        // With --idle-timeout, each step races a timer; without, there is none to pay for.
        let read = match idle {
            None => stream.read(&mut buf).await,
            Some(d) => corio::wait_for(stream.read(&mut buf), d)
                .await
                .unwrap_or_else(timed_out),
        };
        let n = match read {
            Ok(0) | Err(_) => break, // EOF, reset, idle: this client is done
            Ok(n) => n,
        };
        let wrote = match idle {
            None => stream.write_all(&buf[..n]).await,
            Some(d) => corio::wait_for(stream.write_all(&buf[..n]), d)
                .await
                .unwrap_or_else(timed_out),
        };
        if wrote.is_err() {
            break; // gone, or not reading its echoes
        }
    }
    // The peer half-closed (or left): finish our side too; the fd closes when `stream` drops.
    let _ = stream.shutdown(Shutdown::Write);
}

/// What an idle timeout turns into: the connection's step failed.
fn timed_out<T>(_: corio::TimeoutError) -> std::io::Result<T> {
    Err(std::io::ErrorKind::TimedOut.into())
}

fn is_out_of_fds(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24)) // ENFILE, EMFILE
}

/// The connections one loop is serving, so that shutdown can wait for them and then
/// cancel the rest.
#[derive(Default)]
struct Connections {
    live: RefCell<HashMap<u64, corio::TaskRef>>,
    next_id: Cell<u64>,
    served: Cell<usize>,
    rejected: Cell<usize>,
    /// Set by the last connection to leave, once shutdown waits for them.
    all_gone: RefCell<Option<corio::Future<()>>>,
}

impl Connections {
    fn spawn(self: &Rc<Self>, stream: TcpStream, args: &Args) {
        if args
            .max_conns
            .is_some_and(|max| self.live.borrow().len() >= max)
        {
            self.rejected.set(self.rejected.get() + 1);
            return; // dropping `stream` closes it: shed the connection
        }
        let (buffer, idle) = (args.buffer, args.idle);
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.served.set(self.served.get() + 1);
        let leave = Leave(self.clone(), id);
        let task = corio::spawn(async move {
            let _leave = leave; // also when the task is cancelled: its future is dropped
            echo(stream, buffer, idle).await;
        });
        self.live.borrow_mut().insert(id, task.as_ref());
    }

    /// A future set when no connection is left (at once if none is).
    fn wait_for_all(&self) -> corio::Future<()> {
        let gone = corio::Future::new();
        if self.live.borrow().is_empty() {
            let _ = gone.set_result(());
        }
        *self.all_gone.borrow_mut() = Some(gone.clone());
        gone
    }
}

/// Counts a `streams` connection as live until its task ends (`--max-conns`).
struct LiveGuard(Rc<Cell<usize>>);

impl LiveGuard {
    fn new(live: &Rc<Cell<usize>>) -> LiveGuard {
        live.set(live.get() + 1);
        LiveGuard(live.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Takes a connection off the live list when its task ends, however it ends.
struct Leave(Rc<Connections>, u64);

impl Drop for Leave {
    fn drop(&mut self) {
        let empty = {
            let mut live = self.0.live.borrow_mut();
            live.remove(&self.1);
            live.is_empty()
        };
        if empty {
            if let Some(gone) = self.0.all_gone.borrow().as_ref() {
                let _ = gone.set_result(());
            }
        }
    }
}

/// Accepts connections until cancelled (which closes the listening socket).
async fn accept_loop(listener: TcpListener, conns: Rc<Connections>, args: Rc<Args>) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => conns.spawn(stream, &args),
            Err(e) if is_out_of_fds(&e) => {
                eprintln!("echo_server: accept: {e}; pausing 100 ms");
                corio::sleep(Duration::from_millis(100)).await;
            }
            // ECONNABORTED and friends concern one connection only.
            Err(_) => {}
        }
    }
}

/// `--mode protocol`: the echo as a protocol. The transport sends straight away; if the
/// peer stops reading, the transport's buffer passes the high-water mark, `pause_writing`
/// pauses reading, and the kernel's buffers then slow the peer down.
#[derive(Default)]
struct EchoProtocol {
    transport: Option<Transport>,
    /// `--idle-timeout`: the last time data came in, and the timer that checks it.
    idle: Option<Duration>,
    last: Rc<Cell<Option<std::time::Instant>>>,
    timer: Option<corio::TimerHandle>,
    /// `--max-conns`: connections live on this loop (shared by every protocol).
    live: Rc<Cell<usize>>,
    max_conns: Option<usize>,
    counted: bool,
}

/// Closes the transport if no data came in for `idle`, else checks again when it would be.
/// A peer that does not read its echoes (buffer not empty) is aborted: close would wait.
fn idle_check(t: Transport, idle: Duration, last: Rc<Cell<Option<std::time::Instant>>>) {
    let Some(at) = last.get() else { return };
    let ev = corio::get_running_loop();
    let since = ev.time().saturating_duration_since(at);
    if since >= idle {
        if t.get_write_buffer_size() > 0 || !t.is_reading() {
            t.abort();
        } else {
            t.close();
        }
        return;
    }
    ev.call_later(idle - since, move || idle_check(t, idle, last));
}

impl BaseProtocol for EchoProtocol {
    fn connection_lost(&mut self, _exc: Option<std::io::Error>) {
        if let Some(h) = self.timer.take() {
            h.cancel();
        }
        self.last.set(None);
        if self.counted {
            self.live.set(self.live.get() - 1);
        }
    }
    fn pause_writing(&mut self) {
        if let Some(t) = &self.transport {
            t.pause_reading();
        }
    }
    fn resume_writing(&mut self) {
        if let Some(t) = &self.transport {
            t.resume_reading();
        }
    }
}

impl Protocol for EchoProtocol {
    fn connection_made(&mut self, transport: &Transport) {
        if self.max_conns.is_some_and(|max| self.live.get() >= max) {
            transport.abort(); // shed: over --max-conns
            return;
        }
        self.counted = true;
        self.live.set(self.live.get() + 1);
        self.transport = Some(transport.clone());
        if let Some(idle) = self.idle {
            let ev = corio::get_running_loop();
            self.last.set(Some(ev.time()));
            let (t, last) = (transport.clone(), self.last.clone());
            self.timer = Some(ev.call_later(idle, move || idle_check(t, idle, last)));
        }
    }
    fn data_received(&mut self, data: &[u8]) {
        if self.idle.is_some() {
            self.last.set(Some(corio::get_running_loop().time()));
        }
        if let Some(t) = &self.transport {
            t.write(data);
        }
    }
    // eof_received: the default `false` closes the transport once every echo is flushed.
}

/// `--mode streams`: read, write, drain, until EOF; then close after flushing.
async fn echo_streams(
    mut reader: StreamReader,
    writer: StreamWriter,
    buffer: usize,
    idle: Option<Duration>,
) {
    let mut buf = vec![0u8; buffer];
    loop {
        let read = match idle {
            None => reader.read_into(&mut buf).await,
            Some(d) => corio::wait_for(reader.read_into(&mut buf), d)
                .await
                .unwrap_or_else(timed_out),
        };
        let n = match read {
            Ok(0) | Err(_) => break, // EOF, reset, idle: this client is done
            Ok(n) => n,
        };
        writer.write(&buf[..n]);
        let drained = match idle {
            None => writer.drain().await,
            Some(d) => corio::wait_for(writer.drain(), d)
                .await
                .unwrap_or_else(timed_out),
        };
        match drained {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                writer.transport().abort(); // the peer does not read its echoes
                return;
            }
            Err(_) => break,
        }
    }
    writer.close();
    if let Some(d) = idle {
        if corio::wait_for(writer.wait_closed(), d).await.is_err() {
            writer.transport().abort();
        }
    } else {
        let _ = writer.wait_closed().await;
    }
}

/// One loop's server in `protocol` or `streams` mode, from bind to graceful shutdown (the
/// same steps as [`serve_sockets`], with the [`Server`] keeping the count of connections).
async fn serve_transports(
    addr: SocketAddr,
    reuse_port: bool,
    args: &Args,
    ready: mpsc::Sender<std::io::Result<SocketAddr>>,
) -> (usize, usize) {
    let opts = ServerOptions {
        backlog: 1024,
        reuse_port,
        ..ServerOptions::default()
    };
    let served = Rc::new(Cell::new(0usize));
    let s = served.clone();
    let live = Rc::new(Cell::new(0usize));
    let (idle, max_conns) = (args.idle, args.max_conns);
    let server: std::io::Result<Server> = match args.mode {
        Mode::Protocol => {
            let ev = corio::get_running_loop();
            ev.create_server_with(
                move || {
                    s.set(s.get() + 1);
                    EchoProtocol {
                        idle,
                        live: live.clone(),
                        max_conns,
                        ..EchoProtocol::default()
                    }
                },
                addr,
                &opts,
            )
            .await
        }
        _ => {
            let buffer = args.buffer;
            corio::streams::start_server_with(
                move |r, w: StreamWriter| {
                    s.set(s.get() + 1);
                    let over = max_conns.is_some_and(|max| live.get() >= max);
                    let guard = (!over).then(|| LiveGuard::new(&live));
                    async move {
                        if over {
                            w.transport().abort(); // shed: over --max-conns
                            return;
                        }
                        let _guard = guard;
                        echo_streams(r, w, buffer, idle).await
                    }
                },
                addr,
                &opts,
            )
            .await
        }
    };
    let setup = server.and_then(|server| {
        let signals = Signals::new([SIGINT, SIGTERM])?;
        Ok((server.local_addr()?, server, signals))
    });
    let (local, server, mut signals) = match setup {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e));
            return (0, 0);
        }
    };
    let _ = ready.send(Ok(local));
    signals.recv().await;

    // 1. Stop accepting.
    server.close();
    // 2. Let the live connections finish, until the grace period ends or a second signal.
    let done: corio::Future<()> = corio::Future::new();
    let (d1, d2, d3) = (done.clone(), done.clone(), done.clone());
    let s2 = server.clone();
    let all_gone = corio::spawn(async move {
        s2.wait_closed().await;
        let _ = d1.set_result(());
    });
    let timer = corio::get_running_loop().call_later(args.grace, move || drop(d2.set_result(())));
    let hurry = corio::spawn(async move {
        signals.recv().await;
        let _ = d3.set_result(());
    });
    let _ = done.await;
    timer.cancel();
    hurry.cancel(None);
    all_gone.cancel(None);
    // 3. Abort the rest.
    let left = server.client_count();
    server.abort_clients();
    server.wait_closed().await;
    (served.get(), left)
}

/// One loop's server, in whichever mode was asked for.
async fn serve(
    addr: SocketAddr,
    reuse_port: bool,
    args: &Args,
    ready: mpsc::Sender<std::io::Result<SocketAddr>>,
) -> (usize, usize) {
    match args.mode {
        Mode::Sockets => serve_sockets(addr, reuse_port, args, ready).await,
        Mode::Protocol | Mode::Streams => serve_transports(addr, reuse_port, args, ready).await,
    }
}

/// One loop's server in `sockets` mode, from bind to graceful shutdown. Reports the bound
/// address (or the error) through `ready` once the listener and the signal handlers are in
/// place, then serves until SIGINT or SIGTERM. Returns (connections served, cancelled at
/// shutdown).
async fn serve_sockets(
    addr: SocketAddr,
    reuse_port: bool,
    args: &Args,
    ready: mpsc::Sender<std::io::Result<SocketAddr>>,
) -> (usize, usize) {
    let setup = TcpListener::bind_with(addr, 1024, reuse_port).and_then(|listener| {
        let signals = Signals::new([SIGINT, SIGTERM])?;
        Ok((listener.local_addr()?, listener, signals))
    });
    let (local, listener, mut signals) = match setup {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e));
            return (0, 0);
        }
    };
    let _ = ready.send(Ok(local));

    let conns = Rc::new(Connections::default());
    let a = Rc::new(Args {
        addr: args.addr.clone(),
        mode: args.mode,
        buffer: args.buffer,
        grace: args.grace,
        threads: args.threads,
        idle: args.idle,
        max_conns: args.max_conns,
    });
    let acceptor = corio::spawn(accept_loop(listener, conns.clone(), a));
    signals.recv().await;

    // 1. Stop accepting: cancelling the acceptor drops (closes) the listening socket.
    acceptor.cancel(Some("shutting down"));
    let _ = acceptor.await;

    // 2. Let the live connections finish: until the last one leaves, the grace period ends,
    //    or a second signal comes, whichever is first (all three set the same future).
    let done = conns.wait_for_all();
    let g = done.clone();
    let timer = corio::get_running_loop().call_later(args.grace, move || drop(g.set_result(())));
    let g = done.clone();
    let hurry = corio::spawn(async move {
        signals.recv().await;
        let _ = g.set_result(());
    });
    let _ = done.await;
    timer.cancel();
    hurry.cancel(None);

    // 3. Cancel the rest: each cancelled task's future is dropped, closing its socket.
    let left: Vec<corio::TaskRef> = conns.live.borrow().values().cloned().collect();
    if !left.is_empty() {
        let gone = conns.wait_for_all();
        for t in &left {
            t.cancel(Some("shutting down"));
        }
        let _ = gone.await;
    }
    (conns.served.get(), left.len())
}

/// Runs `args.threads` loops, each on its own thread with its own listener on the same
/// port, until a signal stops them all (every loop that handles a signal sees it).
fn run_threads(args: Args) -> (usize, usize) {
    let addr = match args.addr.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) => usage(&format!("{} resolves to no address", args.addr)),
        Err(e) => {
            eprintln!("echo_server: cannot listen on {}: {e}", args.addr);
            std::process::exit(1);
        }
    };
    let reuse_port = args.threads > 1;
    let args = std::sync::Arc::new(args);
    let mut bound = addr;
    let mut threads = Vec::new();
    for i in 0..args.threads {
        let (tx, rx) = mpsc::channel();
        let a = args.clone();
        let at = bound;
        let t = std::thread::Builder::new()
            .name(format!("echo-loop-{i}"))
            .spawn(move || {
                corio::run(async move {
                    dump_on_sigusr1();
                    serve(at, reuse_port, &a, tx).await
                })
            })
            .expect("cannot start a server thread");
        match rx.recv() {
            Ok(Ok(local)) => bound = local, // port 0: the others take the port the first got
            Ok(Err(e)) => {
                eprintln!("echo_server: cannot listen on {}: {e}", args.addr);
                std::process::exit(1);
            }
            Err(_) => std::process::exit(1), // the thread panicked; it said why
        }
        threads.push(t);
    }
    println!("listening on {bound}");
    use std::io::Write;
    std::io::stdout().flush().ok();
    let mut total = (0, 0);
    for t in threads {
        let (served, cancelled) = t.join().unwrap_or_else(|_| std::process::exit(1));
        total.0 += served;
        total.1 += cancelled;
    }
    total
}

/// `kill -USR1 <pid>` prints what each loop is doing (ready queue, timers, fds, tasks) to
/// stderr. The handler is an ordinary loop callback, not code run inside the signal handler.
fn dump_on_sigusr1() {
    let ev = corio::get_running_loop();
    if let Err(e) = ev.add_signal_handler(corio::signal::SIGUSR1, || {
        eprintln!("{}", corio::get_running_loop().dump());
    }) {
        eprintln!("echo_server: no SIGUSR1 dump: {e}");
    }
}

fn main() {
    let args = parse_args();
    if let Err(e) = corio::raise_open_file_limit() {
        eprintln!("echo_server: cannot raise the open-file limit: {e}");
    }
    let (served, cancelled) = run_threads(args);
    println!("echo_server: served {served} connections, {cancelled} cancelled at shutdown");
}
