//! A chat server on streams (the book's chapter 8 chat, with flow control).
//!
//! Run: `cargo run --example chat_server -- [ADDR] [--idle SECS] [--slow-timeout SECS]
//! [--max-buffer BYTES]`
//! (default ADDR `127.0.0.1:8000`; port 0 picks a free port). It prints `listening on ADDR`.
//! Then connect clients: `cargo run --example chat_client -- ADDR --name alice`, or
//! `nc 127.0.0.1 8000` and type `CONNECT alice` first.
//!
//! The protocol: a client first sends `CONNECT <name>\n`; after that every line it sends
//! reaches every *other* client as `<name>: <line>\n`. Joins and departures are announced as
//! `* <name> joined\n` and `* <name> left\n`.
//!
//! What it shows:
//! - `start_server` with one task per client, `readline` under an idle timeout (a client
//!   silent for `--idle` seconds, default 60, is disconnected, as the book's `wait_for`);
//! - a client that stops reading cannot stall the others, and memory stays bounded. A
//!   broadcast writes to every writer (never blocks); then the *sender's* task waits for
//!   the recipients that are above their high-water mark to drain (flow control: a fast
//!   sender is slowed to the pace of its readers), but for at most `--slow-timeout` seconds
//!   (default 2): recipients still behind then are disconnected. A recipient whose unsent
//!   output passes `--max-buffer` bytes (default 1 MiB) is disconnected at once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use corio::streams::{StreamError, StreamReader, StreamWriter};

struct Args {
    addr: String,
    idle: Duration,
    slow_timeout: Duration,
    max_buffer: usize,
}

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("chat_server: {err}");
    }
    eprintln!("usage: chat_server [ADDR] [--idle SECS] [--slow-timeout SECS] [--max-buffer BYTES]");
    std::process::exit(2);
}

fn seconds(v: Option<String>, flag: &str) -> Duration {
    let secs: f64 = v
        .and_then(|v| v.parse().ok())
        .filter(|&s: &f64| s > 0.0)
        .unwrap_or_else(|| usage(&format!("{flag} needs a positive number of seconds")));
    Duration::from_secs_f64(secs)
}

fn parse_args() -> Args {
    let mut args = Args {
        addr: "127.0.0.1:8000".into(),
        idle: Duration::from_secs(60),
        slow_timeout: Duration::from_secs(2),
        max_buffer: 1 << 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--idle" => args.idle = seconds(it.next(), "--idle"),
            "--slow-timeout" => args.slow_timeout = seconds(it.next(), "--slow-timeout"),
            "--max-buffer" => {
                args.max_buffer = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage("--max-buffer needs a number of bytes"));
            }
            "-h" | "--help" => usage(""),
            flag if flag.starts_with("--") => usage(&format!("unknown flag {flag}")),
            addr => args.addr = addr.to_string(),
        }
    }
    args
}

/// `fut`'s output, or `None` if `limit` passes first (the book's `wait_for`, as a value).
/// Dropping the read on timeout is safe: `readline` is cancel-safe.
async fn timeout<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut sleep = pin!(corio::sleep(limit));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        sleep.as_mut().poll(cx).map(|()| None)
    })
    .await
}

struct Client {
    name: String,
    writer: Rc<StreamWriter>,
}

/// Everyone connected, by connection number.
#[derive(Default)]
struct Room {
    clients: RefCell<HashMap<u64, Client>>,
    next_id: std::cell::Cell<u64>,
    max_buffer: usize,
    slow_timeout: Duration,
}

impl Room {
    /// Sends `line` to everyone but `from`. Never waits: a client whose unsent output is
    /// over the limit is disconnected (and told why, best effort).
    fn broadcast(&self, from: u64, line: &[u8]) {
        let mut slow = Vec::new();
        for (&id, c) in self.clients.borrow().iter() {
            if id == from {
                continue;
            }
            if c.writer.transport().get_write_buffer_size() > self.max_buffer {
                slow.push(id);
                continue;
            }
            c.writer.write(line);
        }
        for id in slow {
            self.disconnect_slow(id);
        }
    }

    fn disconnect_slow(&self, id: u64) {
        let gone = self.clients.borrow_mut().remove(&id);
        if let Some(c) = gone {
            eprintln!("chat_server: {} is not reading; disconnecting", c.name);
            c.writer.transport().abort();
        }
    }

    /// Flow control for the sender `from`: waits until the recipients above their
    /// high-water mark drain, for at most `slow_timeout`; those still behind are cut off.
    async fn wait_for_recipients(&self, from: u64) {
        let behind: Vec<(u64, Rc<StreamWriter>)> = self
            .clients
            .borrow()
            .iter()
            .filter(|(id, c)| **id != from && c.writer.transport().is_writing_paused())
            .map(|(id, c)| (*id, c.writer.clone()))
            .collect();
        if behind.is_empty() {
            return;
        }
        let deadline = corio::get_running_loop().time() + self.slow_timeout;
        for (id, w) in behind {
            let left = deadline.saturating_duration_since(corio::get_running_loop().time());
            if timeout(left, w.drain()).await.is_none() {
                self.disconnect_slow(id);
            }
        }
    }
}

async fn client(room: Rc<Room>, idle: Duration, mut reader: StreamReader, writer: StreamWriter) {
    let writer = Rc::new(writer);
    // The handshake: CONNECT <name>.
    let name = match timeout(idle, reader.readline()).await {
        Some(Ok(line)) => match line.strip_prefix(b"CONNECT ") {
            Some(rest) => String::from_utf8_lossy(rest).trim().to_string(),
            None => String::new(),
        },
        _ => return,
    };
    if name.is_empty() {
        writer.write(b"* expected: CONNECT <name>\n");
        writer.close();
        return;
    }
    let id = room.next_id.get();
    room.next_id.set(id + 1);
    room.clients.borrow_mut().insert(
        id,
        Client {
            name: name.clone(),
            writer: writer.clone(),
        },
    );
    room.broadcast(id, format!("* {name} joined\n").as_bytes());
    let prefix = format!("{name}: ");
    let mut msg = Vec::new();
    loop {
        match timeout(idle, reader.readline()).await {
            None => {
                writer.write(b"* idle timeout\n");
                break;
            }
            Some(Ok(line)) if line.is_empty() => break, // EOF
            Some(Ok(line)) => {
                msg.clear();
                msg.extend_from_slice(prefix.as_bytes());
                msg.extend_from_slice(&line);
                if !msg.ends_with(b"\n") {
                    msg.push(b'\n');
                }
                room.broadcast(id, &msg);
                room.wait_for_recipients(id).await;
            }
            Some(Err(StreamError::LimitOverrun(_))) => {
                writer.write(b"* line too long, dropped\n");
            }
            Some(Err(_)) => break,
        }
        if !room.clients.borrow().contains_key(&id) {
            return; // disconnected as a slow reader
        }
    }
    if room.clients.borrow_mut().remove(&id).is_some() {
        room.broadcast(id, format!("* {name} left\n").as_bytes());
    }
    writer.close();
}

fn main() {
    let args = parse_args();
    if let Err(e) = corio::raise_open_file_limit() {
        eprintln!("chat_server: cannot raise the open-file limit: {e}");
    }
    corio::run(async move {
        let room = Rc::new(Room {
            max_buffer: args.max_buffer,
            slow_timeout: args.slow_timeout,
            ..Room::default()
        });
        let idle = args.idle;
        let server = corio::streams::start_server(
            move |r, w| client(room.clone(), idle, r, w),
            args.addr.as_str(),
        )
        .await
        .unwrap_or_else(|e| {
            eprintln!("chat_server: cannot listen on {}: {e}", args.addr);
            std::process::exit(1);
        });
        println!("listening on {}", server.local_addr().unwrap());
        use std::io::Write;
        std::io::stdout().flush().ok();
        let _ = server.serve_forever().await;
    });
}
