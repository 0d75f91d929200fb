//! A client for `echo_server`: interactive lines, or a load test that verifies every byte.
//!
//! Run the server first (`cargo run --release --example echo_server`), then:
//! - `cargo run --example echo_client` and type lines: each is sent and its echo printed;
//!   Ctrl-D ends.
//! - `cargo run --release --example echo_client -- --count 1000 --size 4096 --conns 50`:
//!   50 connections each send 1000 messages of 4096 bytes and check every echoed byte, then
//!   one summary line is printed. The exit code is non-zero if anything went wrong.
//!
//! Usage: `echo_client [ADDR] [--count N --size B] [--conns C]` (default ADDR
//! `127.0.0.1:8888`; flags may come before or after ADDR).
//!
//! Two things to notice. Stdin is read by a plain thread (reading a terminal would block the
//! loop); each line reaches the loop through a task waker woken from that thread, the
//! thread-safe door. And in the load test, each message is written by a helper task while the
//! connection's task reads the echo, so a large message cannot deadlock with both sides'
//! socket buffers full.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::BufRead;
use std::net::Shutdown;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Instant;

use corio::net::TcpStream;

struct Args {
    addr: String,
    count: Option<usize>,
    size: usize,
    conns: usize,
}

fn usage(err: &str) -> ! {
    eprintln!("echo_client: {err}");
    eprintln!("usage: echo_client [ADDR] [--count N --size B] [--conns C]");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = Args {
        addr: "127.0.0.1:8888".into(),
        count: None,
        size: 64,
        conns: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |flag: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| usage(&format!("{flag} needs a positive number")))
        };
        match arg.as_str() {
            "--count" => args.count = Some(number("--count")),
            "--size" => args.size = number("--size"),
            "--conns" => args.conns = number("--conns"),
            "-h" | "--help" => usage("help"),
            flag if flag.starts_with("--") => usage(&format!("unknown flag {flag}")),
            addr => args.addr = addr.to_string(),
        }
    }
    args
}

/// Reads exactly `buf.len()` bytes; an early EOF is an error.
async fn read_exact(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]).await? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => filled += n,
        }
    }
    Ok(())
}

// ---- interactive mode ---------------------------------------------------------------------

/// Lines from the stdin thread, and the waker of the task waiting for them.
#[derive(Default)]
struct Lines {
    queue: VecDeque<Option<String>>, // `None` marks the end of stdin
    waker: Option<Waker>,
}

/// Reads stdin on a plain thread and hands each line to the loop by waking the reader task.
fn stdin_lines() -> Arc<Mutex<Lines>> {
    let shared = Arc::new(Mutex::new(Lines::default()));
    let s = shared.clone();
    std::thread::spawn(move || {
        let lines = std::io::stdin().lock().lines().map_while(Result::ok);
        for line in lines.map(Some).chain([None]) {
            let waker = {
                let mut l = s.lock().unwrap();
                l.queue.push_back(line);
                l.waker.take()
            };
            if let Some(w) = waker {
                w.wake(); // from another thread: goes through the loop's thread-safe door
            }
        }
    });
    shared
}

/// The next stdin line, or `None` at the end of stdin.
async fn next_line(shared: &Mutex<Lines>) -> Option<String> {
    poll_fn(|cx| {
        let mut l = shared.lock().unwrap();
        match l.queue.pop_front() {
            Some(line) => Poll::Ready(line),
            None => {
                l.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
}

async fn interactive(stream: TcpStream) -> std::io::Result<()> {
    let lines = stdin_lines();
    while let Some(line) = next_line(&lines).await {
        let sent = format!("{line}\n");
        stream.write_all(sent.as_bytes()).await?;
        let mut echo = vec![0u8; sent.len()];
        read_exact(&stream, &mut echo).await?;
        print!("{}", String::from_utf8_lossy(&echo));
    }
    stream.shutdown(Shutdown::Write)?;
    Ok(())
}

// ---- load mode ------------------------------------------------------------------------------

/// What one connection achieved.
#[derive(Default)]
struct Tally {
    round_trips: usize,
    bytes: usize,
    errors: usize,
}

/// Message `m` of connection `c`: a pattern whose every byte can be checked.
fn message(c: usize, m: usize, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (c * 131 + m * 31 + i * 7) as u8)
        .collect()
}

async fn load(addr: String, c: usize, count: usize, size: usize) -> Tally {
    let mut tally = Tally::default();
    let stream = match TcpStream::connect(addr.as_str()).await {
        Ok(s) => Rc::new(s),
        Err(e) => {
            eprintln!("echo_client: connection {c}: connect: {e}");
            tally.errors += 1;
            return tally;
        }
    };
    let mut echo = vec![0u8; size];
    for m in 0..count {
        let sent = message(c, m, size);
        let writer = {
            let (stream, sent) = (stream.clone(), sent.clone());
            corio::spawn(async move { stream.write_all(&sent).await })
        };
        let read = read_exact(&stream, &mut echo).await;
        let written = writer
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        if let Err(e) = read.and(written) {
            eprintln!("echo_client: connection {c}, message {m}: {e}");
            tally.errors += 1;
            return tally;
        }
        if echo != sent {
            eprintln!("echo_client: connection {c}, message {m}: echo differs");
            tally.errors += 1;
        }
        tally.round_trips += 1;
        tally.bytes += size;
    }
    // Half-close, then the server's EOF confirms it saw everything.
    let mut rest = [0u8; 1];
    if stream.shutdown(Shutdown::Write).is_err() || stream.read(&mut rest).await.ok() != Some(0) {
        eprintln!("echo_client: connection {c}: no clean EOF at the end");
        tally.errors += 1;
    }
    tally
}

fn main() -> ExitCode {
    let args = parse_args();
    corio::run(async move {
        let Some(count) = args.count else {
            let stream = match TcpStream::connect(args.addr.as_str()).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("echo_client: cannot connect to {}: {e}", args.addr);
                    return ExitCode::FAILURE;
                }
            };
            return match interactive(stream).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("echo_client: {e}");
                    ExitCode::FAILURE
                }
            };
        };
        let started = Instant::now();
        let conns: Vec<_> = (0..args.conns)
            .map(|c| corio::spawn(load(args.addr.clone(), c, count, args.size)))
            .collect();
        let mut total = Tally::default();
        for conn in conns {
            let t = conn.await.unwrap_or_else(|_| Tally {
                errors: 1,
                ..Tally::default()
            });
            total.round_trips += t.round_trips;
            total.bytes += t.bytes;
            total.errors += t.errors;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "round trips: {}, bytes: {}, errors: {}, connections: {}, {:.3} s, {:.0} round trips/s",
            total.round_trips,
            total.bytes,
            total.errors,
            args.conns,
            secs,
            total.round_trips as f64 / secs.max(1e-9)
        );
        let expected = count * args.conns;
        if total.errors == 0 && total.round_trips == expected {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
