//! A TCP server that keeps each client's address in a context variable and logs with it
//! from deep helper functions (book 14.2, Python's `contextvars`).
//!
//! ```text
//! cargo run --example context_server                # listens on 127.0.0.1:8889
//! nc 127.0.0.1 8889                                 # type words; each gets an answer
//! cargo run --example context_server -- --demo      # server plus three clients, then exits
//! cargo run --example context_server -- ADDR        # another address (port 0: any free port)
//! kill -USR1 <pid>                                  # prints the loop dump (EventLoop::dump)
//! ```
//!
//! Each connection runs in its own task, which sets `CLIENT` once. The helpers it calls,
//! however deep, never receive the address as an argument: the `log` records they emit are
//! prefixed with it by `ClientLogger`, which reads the context variable. Another task's value
//! is never seen, because every task has its own copy of the context, and a callback
//! scheduled from a task (`call_later` below) runs in that task's context.

use std::net::SocketAddr;
use std::time::Duration;

use corio::ContextVar;
use corio::net::{TcpListener, TcpStream};

/// The client the current task serves (`None`: not in a connection's task).
static CLIENT: ContextVar<Option<SocketAddr>> = ContextVar::new("client", None);

/// A logger that tags each record with the current client.
struct ClientLogger;

impl log::Log for ClientLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let who = CLIENT
                .get()
                .map_or_else(|| "server".to_string(), |a| a.to_string());
            println!("[{who}] {}", record.args());
        }
    }

    fn flush(&self) {}
}

/// One connection's task: the only place that knows the address, and sets it once.
async fn serve(stream: TcpStream, addr: SocketAddr) {
    CLIENT.set(Some(addr));
    log::info!("connected");
    // A callback scheduled from this task sees the task's context.
    corio::get_running_loop().call_later(Duration::from_millis(20), || {
        log::info!("20 ms since connecting (a call_later callback)");
    });
    let mut buf = [0u8; 1024];
    let mut pending = Vec::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let word = String::from_utf8_lossy(&line).trim().to_string();
            let answer = handle_request(&word).await;
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }
    log::info!("disconnected");
}

/// Level 1: no address in sight.
async fn handle_request(word: &str) -> String {
    log::info!("request {word:?}");
    let letters = look_up(word).await;
    format!("{word}: {letters} letters\n")
}

/// Level 2: awaits (other clients' tasks run meanwhile), then calls a plain function.
async fn look_up(word: &str) -> usize {
    corio::sleep(Duration::from_millis(5)).await;
    audit(word);
    word.chars().count()
}

/// Level 3: a synchronous helper; it still logs with the right client.
fn audit(word: &str) {
    log::info!("audit: looked up {word:?}");
}

/// Accepts forever, one task per client, named after the client (the dump shows it).
async fn accept_loop(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                corio::get_running_loop()
                    .create_task_named(format!("client {addr}"), serve(stream, addr));
            }
            Err(e) => {
                log::info!("accept failed: {e}");
                corio::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// `--demo`: three clients, each sending its own words, interleaved.
async fn demo(addr: SocketAddr) {
    let clients: Vec<_> = (1..=3)
        .map(|i| {
            corio::spawn(async move {
                let stream = TcpStream::connect(addr).await.expect("connect");
                let me = stream.local_addr().expect("local address");
                println!("client {i} is {me}");
                for word in [format!("apple{i}"), format!("kiwi{i}")] {
                    stream
                        .write_all(format!("{word}\n").as_bytes())
                        .await
                        .expect("write");
                    let mut buf = [0u8; 256];
                    let n = stream.read(&mut buf).await.expect("read");
                    print!("client {i} got {}", String::from_utf8_lossy(&buf[..n]));
                }
                corio::sleep(Duration::from_millis(30)).await; // let the 20 ms callback run
            })
        })
        .collect();
    // What `kill -USR1 <pid>` does: the handler below prints the loop dump.
    corio::sleep(Duration::from_millis(3)).await;
    signal_hook::low_level::raise(corio::signal::SIGUSR1).expect("raise SIGUSR1");
    for c in clients {
        c.await.expect("client");
    }
    corio::sleep(Duration::from_millis(20)).await; // let the server log the disconnections
}

fn main() {
    log::set_logger(&ClientLogger).expect("a logger was already set");
    log::set_max_level(log::LevelFilter::Info);

    let mut addr = "127.0.0.1:8889".to_string();
    let mut demo_mode = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--demo" => demo_mode = true,
            "-h" | "--help" => {
                eprintln!("usage: context_server [ADDR] [--demo]");
                return;
            }
            other => addr = other.to_string(),
        }
    }
    if demo_mode && addr == "127.0.0.1:8889" {
        addr = "127.0.0.1:0".to_string();
    }

    corio::run(async move {
        let listener = TcpListener::bind(addr.as_str()).expect("bind");
        let local = listener.local_addr().expect("local address");
        log::info!("listening on {local}");
        // SIGUSR1 prints what the loop is doing: a loop callback, not a signal handler, so it
        // may do anything.
        corio::get_running_loop()
            .add_signal_handler(corio::signal::SIGUSR1, || {
                println!("{}", corio::get_running_loop().dump());
            })
            .expect("SIGUSR1 handler");
        let server = corio::get_running_loop().create_task_named("acceptor", accept_loop(listener));
        if demo_mode {
            demo(local).await;
            server.cancel(None);
        } else {
            let _ = server.await;
        }
    });
}
