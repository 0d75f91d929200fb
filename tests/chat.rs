//! The chat example (issue 5): 200 clients, a Python asyncio client interoperating, a client
//! that stops reading, the idle timeout. Runs `target/<profile>/examples/chat_server`, which
//! `cargo test` builds.

#[allow(dead_code)] // each test file uses some of the shared helpers
mod support;
use support::{example, python3_available};

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use corio::streams::{StreamReader, StreamWriter, open_connection};

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_chat(args: &[&str]) -> Server {
    let mut child = Command::new(example("chat_server"))
        .arg("127.0.0.1:0")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim()
        .to_string();
    Server { child, addr }
}

async fn join(addr: &str, name: &str) -> (StreamReader, StreamWriter) {
    let (r, w) = open_connection(addr).await.unwrap();
    w.write(format!("CONNECT {name}\n").as_bytes());
    (r, w)
}

/// The next line that is not a `* ...` notice, within 10 s.
async fn next_message(r: &mut StreamReader) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no message in time");
        let line = r.readline().await.unwrap();
        assert!(!line.is_empty(), "the server closed the connection");
        let s = String::from_utf8(line).unwrap();
        if !s.starts_with("* ") {
            return s;
        }
    }
}

#[test]
fn two_hundred_clients_hear_each_other() {
    let server = start_chat(&[]);
    let addr = server.addr.clone();
    corio::run(async move {
        let mut clients = Vec::new();
        for i in 0..200 {
            clients.push(join(&addr, &format!("u{i}")).await);
        }
        // Everyone is registered once each has seen the last one join (its notice).
        let last = "* u199 joined\n";
        for (r, _) in clients.iter_mut().take(199) {
            loop {
                let l = r.readline().await.unwrap();
                if l == last.as_bytes() {
                    break;
                }
            }
        }
        // Three speakers; every other client hears each of them, in order, prefixed.
        for speaker in [0usize, 77, 199] {
            clients[speaker]
                .1
                .write(format!("hello from {speaker}\n").as_bytes());
            for (i, (r, _)) in clients.iter_mut().enumerate() {
                if i == speaker {
                    continue;
                }
                assert_eq!(
                    next_message(r).await,
                    format!("u{speaker}: hello from {speaker}\n"),
                    "client {i}"
                );
            }
        }
    });
}

#[test]
fn a_client_that_stops_reading_does_not_stall_the_others() {
    let server = start_chat(&["--slow-timeout", "0.3"]);
    let addr = server.addr.clone();
    corio::run(async move {
        let (_slow_r, _slow_w) = join(&addr, "slow").await; // never reads
        let (mut a_r, a_w) = join(&addr, "a").await;
        let (mut b_r, b_w) = join(&addr, "b").await;
        b_w.write(b"sync\n");
        assert_eq!(next_message(&mut a_r).await, "b: sync\n");
        // `a` floods: 20 MiB of lines. `slow` reads none of it; `b` must get all of it.
        let line = format!("{}\n", "x".repeat(1000));
        let a_w = Rc::new(a_w);
        let a2 = a_w.clone();
        let l2 = line.clone();
        let flood = corio::spawn(async move {
            for _ in 0..20_000 {
                a2.write(l2.as_bytes());
                a2.drain().await.unwrap();
            }
            a2.write(b"done\n");
        });
        let expect = format!("a: {line}");
        let mut n = 0;
        loop {
            let m = next_message(&mut b_r).await;
            if m == "a: done\n" {
                break;
            }
            assert_eq!(m, expect);
            n += 1;
        }
        flood.await.unwrap();
        assert_eq!(n, 20_000);
        // The slow client was cut off; everyone else is still there.
        b_w.write(b"still here\n");
        assert_eq!(next_message(&mut a_r).await, "b: still here\n");
    });
}

#[test]
fn idle_clients_are_disconnected() {
    let server = start_chat(&["--idle", "0.3"]);
    let addr = server.addr.clone();
    corio::run(async move {
        let (mut r, _w) = join(&addr, "sleepy").await;
        let t0 = Instant::now();
        let mut got = Vec::new();
        loop {
            let l = r.readline().await.unwrap();
            if l.is_empty() {
                break;
            }
            got.push(String::from_utf8(l).unwrap());
        }
        assert!(got.contains(&"* idle timeout\n".to_string()), "{got:?}");
        assert!(t0.elapsed() >= Duration::from_millis(250));
    });
}

const PY_CLIENT: &str = r#"
import asyncio, sys

async def main(host, port):
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"CONNECT py\n")
    await writer.drain()
    # Wait for the Rust client's greeting, then answer it.
    while True:
        line = await asyncio.wait_for(reader.readline(), 10)
        if not line:
            sys.exit("closed early")
        if line.startswith(b"rs: "):
            break
    print(line.decode().strip(), flush=True)
    writer.write(b"hello from asyncio\n")
    await writer.drain()
    writer.close()
    await writer.wait_closed()

host, port = sys.argv[1].rsplit(":", 1)
asyncio.run(main(host, port))
"#;

#[test]
fn a_python_asyncio_client_interoperates() {
    if !python3_available() {
        return;
    }
    let server = start_chat(&[]);
    let addr = server.addr.clone();
    corio::run(async move {
        let (mut r, w) = join(&addr, "rs").await;
        let mut py = Command::new("python3")
            .args(["-c", PY_CLIENT, &addr])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the Python client has joined, then greet it.
        loop {
            let l = r.readline().await.unwrap();
            assert!(!l.is_empty());
            if l == b"* py joined\n" {
                break;
            }
        }
        w.write(b"hi python\n");
        assert_eq!(next_message(&mut r).await, "py: hello from asyncio\n");
        let status = py.wait().unwrap();
        assert!(status.success());
        let mut out = String::new();
        std::io::Read::read_to_string(&mut py.stdout.take().unwrap(), &mut out).unwrap();
        assert_eq!(out.trim(), "rs: hi python");
        // Its departure is announced.
        loop {
            let l = r.readline().await.unwrap();
            if l == b"* py left\n" {
                break;
            }
        }
    });
}
