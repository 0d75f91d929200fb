//! Graceful shutdown of `examples/echo_server.rs` (book 3.6): SIGINT or SIGTERM mid-load
//! stops accepting, lets in-flight echoes complete, cancels stragglers after the grace
//! period and exits 0 with a summary; in each serving mode (`--mode protocol|streams|sockets`)
//! and with `--threads N` (one loop per thread). Also its `kill -USR1` loop dump.
//!
//! Runs the example binary (`cargo test` builds it into `target/<profile>/examples/`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// `target/<profile>/examples/echo_server`, from `target/<profile>/deps/<this test binary>`.
fn echo_server_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("examples").join("echo_server");
    assert!(
        path.exists(),
        "{} is missing: run `cargo test` or `cargo build --examples`",
        path.display()
    );
    path
}

struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        Server::start_with_stderr(args, Stdio::inherit())
    }

    fn start_with_stderr(args: &[&str], stderr: Stdio) -> Server {
        let mut child = Command::new(echo_server_path())
            .arg("127.0.0.1:0")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("echo_server printed {line:?}"))
            .parse()
            .unwrap();
        Server {
            child,
            stdout,
            addr,
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// Waits for the exit (at most `limit`); returns the status code and the summary line.
    fn finish(mut self, limit: Duration) -> (Option<i32>, String, Duration) {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut rest = String::new();
                self.stdout.read_to_string(&mut rest).unwrap();
                return (status.code(), rest.trim().to_string(), t0.elapsed());
            }
            if t0.elapsed() > limit {
                self.child.kill().ok();
                self.child.wait().ok();
                panic!("echo_server did not exit within {limit:?}");
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// One client: echoes `size`-byte messages until `stop`, checking every byte of every echo;
/// then half-closes and expects a clean EOF. Returns the rounds completed.
fn client(addr: SocketAddr, id: usize, size: usize, started: &Barrier, stop: &AtomicBool) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rounds = 0;
    let mut echo = vec![0u8; size];
    loop {
        let msg: Vec<u8> = (0..size)
            .map(|i| (i * 31 + id * 7 + rounds) as u8)
            .collect();
        s.write_all(&msg).unwrap();
        // A truncated echo shows up here: EOF or a reset before all bytes came back.
        s.read_exact(&mut echo)
            .unwrap_or_else(|e| panic!("client {id} round {rounds}: truncated echo: {e}"));
        assert!(echo == msg, "client {id} round {rounds}: wrong bytes");
        rounds += 1;
        if rounds == 3 {
            started.wait();
        }
        if rounds >= 3 && stop.load(Ordering::SeqCst) {
            break;
        }
    }
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    rounds
}

/// Clients echo under load; the signal comes mid-load; they go on for a while, then leave.
fn shutdown_mid_load(sig: &str, args: &[&str], clients: usize) {
    let server = Server::start(args);
    let started = Arc::new(Barrier::new(clients + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|id| {
            let (started, stop, rounds, addr) =
                (started.clone(), stop.clone(), rounds.clone(), server.addr);
            thread::spawn(move || {
                let n = client(addr, id, 32 * 1024, &started, &stop);
                rounds.fetch_add(n, Ordering::SeqCst);
            })
        })
        .collect();
    started.wait(); // every client is connected and echoing
    let before = rounds.load(Ordering::SeqCst);
    server.signal(sig);
    let signalled = Instant::now();
    // The listener closes at once: new connections are refused ...
    thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "still accepting after {sig}"
    );
    // ... while the live ones go on echoing (in-flight echoes complete).
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().expect("a client saw a truncated or wrong echo");
    }
    assert!(rounds.load(Ordering::SeqCst) > before);
    let (code, summary, _) = server.finish(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(
        summary,
        format!("echo_server: served {clients} connections, 0 cancelled at shutdown")
    );
    // Everyone left well before the grace period (5 s by default) ended.
    assert!(signalled.elapsed() < Duration::from_secs(3));
}

#[test]
fn sigint_mid_load_lets_in_flight_echoes_complete() {
    shutdown_mid_load("-INT", &[], 20); // the default mode
    shutdown_mid_load("-INT", &["--mode", "streams"], 20);
    shutdown_mid_load("-INT", &["--mode", "sockets"], 20);
}

#[test]
fn sigterm_with_one_loop_per_thread() {
    shutdown_mid_load("-TERM", &["--threads", "3"], 24);
    shutdown_mid_load("-TERM", &["--threads", "2", "--mode", "sockets"], 16);
}

#[test]
fn idle_connections_are_cancelled_after_the_grace_period() {
    let modes: [&[&str]; 3] = [&[], &["--mode", "streams"], &["--mode", "sockets"]];
    let runs: Vec<_> = modes
        .into_iter()
        .map(|mode| thread::spawn(move || idle_cancelled(mode)))
        .collect();
    for r in runs {
        r.join().unwrap();
    }
}

fn idle_cancelled(mode: &[&str]) {
    let server = Server::start(&[&["--grace", "1"], mode].concat());
    let mut idle: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(format!("hello {i}").as_bytes()).unwrap();
            let mut buf = [0u8; 7];
            s.read_exact(&mut buf).unwrap();
            s
        })
        .collect();
    let finished = {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.write_all(b"bye").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        assert_eq!(v, b"bye");
        s
    };
    drop(finished);
    server.signal("-INT");
    let (code, summary, took) = server.finish(Duration::from_secs(5));
    assert_eq!(code, Some(0));
    assert_eq!(
        summary,
        "echo_server: served 4 connections, 3 cancelled at shutdown"
    );
    // It waited for the grace period, not much longer.
    assert!(
        took > Duration::from_millis(800) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    // The cancelled connections were closed, not left hanging.
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("expected the connection closed, got {other:?}"),
        }
    }
}

#[test]
fn a_second_signal_cuts_the_grace_period_short() {
    let server = Server::start(&["--grace", "30"]);
    let _idle = TcpStream::connect(server.addr).unwrap();
    thread::sleep(Duration::from_millis(100)); // accepted
    server.signal("-TERM");
    thread::sleep(Duration::from_millis(200));
    server.signal("-INT");
    let (code, summary, took) = server.finish(Duration::from_secs(5));
    assert_eq!(code, Some(0));
    assert_eq!(
        summary,
        "echo_server: served 1 connections, 1 cancelled at shutdown"
    );
    assert!(took < Duration::from_secs(3));
}

/// `kill -USR1` makes the echo server print its loop dump (`dump_on_sigusr1` in
/// `examples/echo_server.rs`) to stderr, from an ordinary loop callback, and it goes on
/// serving. With one client connected in streams mode the dump shows the loop running, the
/// listener and the connection as sockets waiting to read, and two tasks: `main` and the
/// connection's handler, both waiting.
#[test]
fn sigusr1_prints_the_loop_dump_and_the_server_keeps_serving() {
    use std::sync::mpsc;
    let mut server = Server::start_with_stderr(&["--mode", "streams"], Stdio::piped());
    let stderr = server.child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut echo = |msg: &[u8]| {
        s.write_all(msg).unwrap();
        let mut buf = vec![0u8; msg.len()];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(buf, msg);
    };
    echo(b"before"); // accepted and served: its handler task exists

    server.signal("-USR1");
    let next = || {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("no (more) dump on stderr after SIGUSR1")
    };
    let mut dump = vec![next()];
    while !dump.last().unwrap().starts_with("  tasks:") {
        dump.push(next());
    }
    // "  tasks: 2 (0 running, 0 scheduled, 2 waiting)": the dump runs in a callback, and
    // the handler is back in its read once it has echoed (all in one step).
    let counts = dump.last().unwrap()["  tasks: ".len()..].to_string();
    let tasks: usize = counts.split(' ').next().unwrap().parse().unwrap();
    for _ in 0..tasks {
        dump.push(next());
    }
    let text = dump.join("\n");
    assert!(
        dump[0].starts_with("event loop: running, ") && dump[0].ends_with("debug off"),
        "{text}"
    );
    assert!(dump[1].starts_with("  ready queue: "), "{text}");
    assert!(dump[2].starts_with("  timers: "), "{text}");
    assert!(dump[3].starts_with("  fds: "), "{text}");
    let sockets = dump
        .iter()
        .filter(|l| l.starts_with("    fd ") && l.ends_with(": socket, waiting to read"))
        .count();
    assert_eq!(sockets, 2, "the listener and the connection:\n{text}");
    assert_eq!(
        counts, "2 (0 running, 0 scheduled, 2 waiting)",
        "main and the connection's handler:\n{text}"
    );
    assert!(
        dump.contains(&"    #1 main [waiting]".to_string()),
        "{text}"
    );

    echo(b"after"); // the dump did not disturb the server
    drop(s);
    server.signal("-INT");
    let (code, summary, _) = server.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert_eq!(
        summary,
        "echo_server: served 1 connections, 0 cancelled at shutdown"
    );
}
