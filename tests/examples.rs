//! Runs the example programs and checks that they print what they claim.
//!
//! `cargo test` builds the examples (into `target/<profile>/examples/`) before running this
//! file; they are found next to this test binary's directory. Each run has a generous time
//! limit, after which the example is killed and the test fails.

#[allow(dead_code)] // each test file uses some of the shared helpers
mod support;
use support::example;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any example may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(30);

/// What a finished example printed.
struct Output {
    success: bool,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs an example to completion (feeding it `stdin`), killing it after [`LIMIT`].
fn run(name: &str, args: &[&str], stdin: &str) -> Output {
    let dir = std::env::temp_dir();
    let tag = format!(
        "corio-example-{name}-{}-{:?}",
        std::process::id(),
        thread::current().id()
    );
    let (out_path, err_path) = (
        dir.join(format!("{tag}.out")),
        dir.join(format!("{tag}.err")),
    );
    let started = Instant::now();
    let mut child = Command::new(example(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap(); // closed: EOF
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            child.kill().ok();
            child.wait().ok();
            panic!("{name} {args:?} ran for more than {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let read = |p: &PathBuf| {
        let mut s = String::new();
        File::open(p).unwrap().read_to_string(&mut s).unwrap();
        std::fs::remove_file(p).ok();
        s
    };
    Output {
        success: status.success(),
        stdout: read(&out_path),
        stderr: read(&err_path),
        took,
    }
}

fn ok(name: &str, args: &[&str]) -> Output {
    let out = run(name, args, "");
    assert!(
        out.success,
        "{name} {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out
}

/// An example running in the background, its stdout read line by line (by a thread, so it
/// never blocks on a full pipe); killed when dropped.
struct Running {
    label: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, in order.
    seen: Vec<String>,
}

impl Running {
    /// Starts example `name` with `args` and `stdin`; stderr goes to the test's stderr.
    fn start(name: &str, args: &[&str], stdin: Stdio) -> Running {
        let mut cmd = Command::new(example(name));
        cmd.args(args).stdin(stdin);
        Running::spawn(&format!("{name} {args:?}"), cmd)
    }

    /// Starts `cmd` (its stdout is piped here), naming it `label` in failures.
    fn spawn(label: &str, mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                // Keep draining even when nobody listens any more.
                let _ = tx.send(line);
            }
        });
        Running {
            label: label.to_string(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to [`LIMIT`]) for the next line for which `pred` holds, and returns it.
    fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "{}: no line {what} ({e:?} after {LIMIT:?}); printed so far:\n{}",
                    self.label,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The `ADDR` of its first line, `listening on ADDR`.
    fn listening(&mut self) -> String {
        let line = self.expect("(the first)", |_| true);
        line.strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{} printed {line:?} first", self.label))
            .to_string()
    }

    /// Waits (up to [`LIMIT`]) for it to exit and for the rest of its stdout.
    fn finish(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "{}: still running after {LIMIT:?}; printed:\n{}",
                    self.label,
                    self.seen.join("\n")
                ),
            }
        }
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: closed its stdout but did not exit",
                self.label
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn is_alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A running echo server, killed when dropped.
struct Server {
    run: Running,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Server {
        Server::start_with(&["127.0.0.1:0"])
    }

    fn start_with(args: &[&str]) -> Server {
        Server::from(Running::start("echo_server", args, Stdio::null()))
    }

    fn from(mut run: Running) -> Server {
        let addr = run.listening().parse().unwrap();
        Server { run, addr }
    }

    fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.run.pid()))
            .unwrap()
            .count()
    }

    /// Waits (up to 5 s) for the server's fd count to come back to `expected`.
    fn wait_fds(&self, expected: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = self.fd_count();
            if n == expected || Instant::now() > deadline {
                return n;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

// ---- the examples ---------------------------------------------------------------------------

#[test]
fn spinner_prints_the_answer_after_the_spinner_is_cancelled() {
    let out = ok("spinner", &[]);
    let stopped = out.stdout.find("spinner stopped").expect(&out.stdout);
    let answer = out.stdout.find("Answer: 42").expect(&out.stdout);
    assert!(stopped < answer, "the spinner's cleanup comes first");
    assert!(out.took >= Duration::from_secs(3), "slow_answer sleeps 3 s");
}

#[test]
fn hello_says_hello_then_world_concurrently() {
    let out = ok("hello", &[]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..3], ["started", "hello", "world"]);
    assert!(out.took >= Duration::from_secs(2));
    // The example times itself on its loop (process start-up excluded) and prints it with
    // one decimal. Concurrent: 2.0 s. One task after the other: 1 s + 2 s, at least 3.0 s.
    // Below 2.8 leaves 0.7 s for scheduling delays on a loaded machine.
    let secs: f64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("finished in "))
        .and_then(|t| t.strip_suffix(" s"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no `finished in X s` line:\n{}", out.stdout));
    assert!(secs >= 2.0, "the 2 s sleep ended early: {secs} s");
    assert!(
        secs < 2.8,
        "took {secs} s: the two sleeps did not overlap (one after the other takes 3 s)"
    );
}

#[test]
fn handmade_future_prints_each_poll_then_the_result() {
    let out = ok("handmade_future", &[]);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "poll 1: pending",
            "poll 2: pending",
            "set_result(\"Finished!\")",
            "poll 3: ready, result = Finished!",
        ]
    );
}

#[test]
fn selector_server_demo_serves_its_two_clients_and_exits() {
    let out = ok("selector_server", &["--demo"]);
    for n in [1, 2] {
        for line in [
            format!("sent: hello from client {n}"),
            format!("sent: bye from client {n}"),
            format!("client {n} got back: hello from client {n}"),
            format!("client {n} got back: bye from client {n}"),
        ] {
            assert!(
                out.stdout.contains(&line),
                "{line:?} missing:\n{}",
                out.stdout
            );
        }
    }
    assert!(
        out.stdout.contains("selector has an event"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.matches(" left").count(), 2, "{}", out.stdout);
}

#[test]
fn hello_clock_prints_the_requested_ticks_at_the_requested_speed() {
    let out = ok("hello_clock", &["--speed", "100", "--ticks", "3"]);
    let ticks: Vec<&str> = out.stdout.lines().filter(|l| l.contains("tick")).collect();
    assert_eq!(ticks.len(), 3, "{}", out.stdout);
    for (i, line) in ticks.iter().enumerate() {
        assert!(line.ends_with(&format!("tick {}", i + 1)), "{line}");
    }
    assert!(!out.stdout.contains("minute"), "no minute passes in 3 s");
    assert!(
        out.took >= Duration::from_millis(30),
        "never early: 3 s / 100"
    );

    // 170 sped-up seconds (283 ms): minutes 1 and 2 are due at 100 ms and 200 ms. Each
    // minute comes in its place among the ticks, since the loop fires timers in deadline
    // order: after tick 60k - 1, before tick 60k + 1, and its stamp is never early. Minute 3
    // (due at 300 ms, after the last tick) may print if the machine stalled the end of
    // the run by 17 ms: then it too must come after the last tick, on time.
    let out = ok("hello_clock", &["--speed", "600", "--ticks", "170"]);
    assert_eq!(out.stdout.matches("tick").count(), 170);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = |what: &str| lines.iter().position(|l| l.ends_with(&format!(" {what}")));
    let seconds = |line: &str| -> u64 {
        let hms = &line[1..9];
        hms.split(':')
            .fold(0, |acc, part| acc * 60 + part.parse::<u64>().unwrap())
    };
    for k in [1, 2] {
        let m = at(&format!("minute {k}")).unwrap_or_else(|| panic!("no minute {k}"));
        let before = at(&format!("tick {}", 60 * k - 1)).unwrap();
        let after = at(&format!("tick {}", 60 * k + 1)).unwrap();
        assert!(
            before < m && m < after,
            "minute {k} out of place:\n{}",
            out.stdout
        );
        assert!(seconds(lines[m]) >= 60 * k, "early: {}", lines[m]);
    }
    if let Some(m) = at("minute 3") {
        assert!(m > at("tick 170").unwrap(), "{}", out.stdout);
        assert!(seconds(lines[m]) >= 180, "early: {}", lines[m]);
    }
}

#[test]
fn echo_client_load_test_passes_against_echo_server_and_server_fds_return() {
    let server = Server::start();
    let addr = server.addr.to_string();
    let start = server.fd_count();

    // Flags after ADDR, many connections at once.
    let out = ok(
        "echo_client",
        &[&addr, "--count", "100", "--size", "1000", "--conns", "10"],
    );
    assert!(
        out.stdout
            .contains("round trips: 1000, bytes: 1000000, errors: 0"),
        "{}",
        out.stdout
    );
    // Flags before ADDR, large messages.
    let out = ok("echo_client", &["--count", "3", "--size", "300000", &addr]);
    assert!(
        out.stdout
            .contains("round trips: 3, bytes: 900000, errors: 0")
    );

    // A client that resets mid-stream disturbs nobody.
    let mut rude = TcpStream::connect(server.addr).unwrap();
    rude.write_all(&[b'x'; 100_000]).unwrap();
    socket2::SockRef::from(&rude)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(rude);
    let out = ok("echo_client", &[&addr, "--count", "100", "--size", "1000"]);
    assert!(out.stdout.contains("errors: 0"));

    assert_eq!(
        server.wait_fds(start),
        start,
        "the server's fd count did not come back to its start"
    );
}

#[test]
fn echo_client_interactive_mode_prints_each_echoed_line() {
    let server = Server::start();
    let out = run(
        "echo_client",
        &[&server.addr.to_string()],
        "hello\nsecond line\n",
    );
    assert!(out.success, "{}", out.stderr);
    assert_eq!(out.stdout, "hello\nsecond line\n");
}

#[test]
fn echo_client_exits_non_zero_when_an_echo_differs() {
    // A broken echo server: flips one byte of everything it sends back.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    buf[0] ^= 0xff;
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let out = run("echo_client", &["--count", "5", "--size", "100", &addr], "");
    assert!(!out.success, "a corrupted echo must fail: {}", out.stdout);
    assert!(out.stdout.contains("errors: 5"), "{}", out.stdout);
    assert!(out.stderr.contains("echo differs"), "{}", out.stderr);
}

#[test]
fn producer_consumer_loses_no_item_and_handles_none_twice() {
    let out = ok("producer_consumer", &[]);
    assert!(
        out.stdout.contains("none lost, none twice"),
        "{}",
        out.stdout
    );
}

#[test]
fn supermarket_checks_out_every_customer() {
    let out = ok("supermarket", &[]);
    assert!(
        out.stdout.contains("All customers checked out"),
        "{}",
        out.stdout
    );
}

#[test]
fn rate_limit_never_exceeds_its_semaphore() {
    let out = ok("rate_limit", &[]);
    assert!(
        out.stdout.contains("max in flight: 3 (limit 3)"),
        "{}",
        out.stdout
    );
}

#[test]
fn new_primitive_token_bucket_paces_requests() {
    let out = ok("new_primitive", &[]);
    assert!(out.stdout.contains("requests passed in"), "{}", out.stdout);
}

#[test]
fn udp_echo_echoes_datagrams_and_its_client_prints_echoes_and_carries_on_after_refusals() {
    let mut server = Running::start("udp_echo", &["127.0.0.1:0"], Stdio::null());
    let addr = server.listening();

    // Any client: every datagram comes back whole, from the server's address; an empty one
    // too (it is a datagram, not an end of stream).
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    for msg in [
        &b"x"[..],
        &b""[..],
        &[7u8; 1000][..],
        &(0..=255).collect::<Vec<u8>>()[..],
    ] {
        sock.send_to(msg, &addr).unwrap();
        let (n, from) = sock.recv_from(&mut buf).expect("no echo within 10 s");
        assert_eq!(&buf[..n], msg);
        assert_eq!(from.to_string(), addr);
    }

    // The example's own client prints each echo, one line per message.
    let out = ok("udp_echo", &[&addr, "--client", "hello", "second message"]);
    assert_eq!(out.stdout, "hello\nsecond message\n");

    // A port nobody listens on: each datagram's ICMP error is reported, and the client
    // carries on to the next message instead of dying.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = ok("udp_echo", &[&closed, "--client", "one", "two"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    for line in lines {
        assert!(
            line.starts_with("error: ") && line.to_lowercase().contains("refused"),
            "expected a connection-refused error, got {line:?}"
        );
    }
    assert!(server.is_alive(), "the server died");
}

#[test]
fn unix_echo_replaces_a_stale_socket_file_and_echoes_round_trips() {
    use std::os::unix::net::{UnixListener, UnixStream};
    let dir = std::env::temp_dir().join(format!("corio-unix-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let path_str = path.to_str().unwrap();
    // A stale socket file: bound, then nobody listening.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists() && UnixStream::connect(&path).is_err());

    let mut server = Running::start("unix_echo", &[path_str], Stdio::null());
    assert_eq!(server.listening(), path_str);

    // The example's client: one line there and back.
    let out = ok("unix_echo", &[path_str, "--client", "hello over unix"]);
    assert_eq!(out.stdout, "hello over unix\n");

    // Any client: 1 MiB written while the echo is read, then a half-close; every byte comes
    // back in order, then EOF.
    let mut conn = UnixStream::connect(&path).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let writer = {
        let (mut w, data) = (conn.try_clone().unwrap(), data.clone());
        thread::spawn(move || {
            w.write_all(&data).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    conn.read_to_end(&mut back)
        .expect("the echo stalled or failed");
    writer.join().unwrap();
    assert!(
        back == data,
        "echo differs ({} of {} bytes)",
        back.len(),
        data.len()
    );
    assert!(server.is_alive(), "the server died");

    drop(server);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn stdin_reader_reads_piped_lines_while_its_timer_keeps_ticking() {
    let mut reader = Running::start("stdin_reader", &["--tick-ms", "20"], Stdio::piped());
    let mut stdin = reader.child.stdin.take().unwrap();
    // Nothing written yet: the loop waits for input and the timer still ticks.
    reader.expect("tick 3", |l| l == "tick 3");
    stdin.write_all(b"first line\n").unwrap();
    reader.expect("read: first line", |l| l == "read: first line");
    // Waiting for the next line, the ticks go on again.
    for n in 1..=3 {
        reader.expect(&format!("tick number {n} after the first line"), |l| {
            l.starts_with("tick ")
        });
    }
    // A line and a last one without a newline, then EOF.
    stdin.write_all(b"second\nno newline").unwrap();
    drop(stdin);
    assert!(reader.finish().success(), "{:?}", reader.seen);

    let seen = &reader.seen;
    let (ticks, others): (Vec<&String>, Vec<&String>) =
        seen.iter().partition(|l| l.starts_with("tick "));
    assert_eq!(
        others,
        [
            "read: first line",
            "read: second",
            "read: no newline",
            "eof after 3 lines"
        ],
        "{seen:?}"
    );
    for (i, t) in ticks.iter().enumerate() {
        assert_eq!(**t, format!("tick {}", i + 1), "{seen:?}");
    }
    let at = |line: &str| seen.iter().position(|l| l == line).unwrap();
    let between = seen[at("read: first line")..at("read: second")]
        .iter()
        .filter(|l| l.starts_with("tick "))
        .count();
    assert!(between >= 3, "{seen:?}");
    assert_eq!(
        seen.last().unwrap(),
        "eof after 3 lines",
        "the ticker is cancelled at EOF"
    );
}

#[test]
fn stdin_reader_reads_a_regular_file_directly() {
    let path = std::env::temp_dir().join(format!("corio-stdin-reader-{}", std::process::id()));
    std::fs::write(&path, "x\ny\n").unwrap();
    let mut reader = Running::start(
        "stdin_reader",
        &["--tick-ms", "20"],
        Stdio::from(File::open(&path).unwrap()),
    );
    assert!(reader.finish().success(), "{:?}", reader.seen);
    std::fs::remove_file(&path).ok();
    let others: Vec<&String> = reader
        .seen
        .iter()
        .filter(|l| !l.starts_with("tick "))
        .collect();
    assert_eq!(others.len(), 4, "{:?}", reader.seen);
    assert!(
        others[0].starts_with("stdin is not pollable"),
        "{:?}",
        reader.seen
    );
    assert_eq!(others[1..], ["read: x", "read: y", "eof after 2 lines"]);
}

#[test]
fn chat_client_joins_a_chat_server_sends_its_stdin_and_prints_broadcasts() {
    let mut server = Running::start("chat_server", &["127.0.0.1:0"], Stdio::null());
    let addr = server.listening();

    // bob: a plain socket in the room.
    let bob = TcpStream::connect(&addr).unwrap();
    bob.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut bob_w = bob.try_clone().unwrap();
    let mut bob_r = BufReader::new(bob);
    bob_w.write_all(b"CONNECT bob\n").unwrap();
    let mut bob_expects = |want: &str| {
        let mut got = Vec::new();
        loop {
            let mut line = String::new();
            bob_r
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("bob: no {want:?} ({e}); got {got:?}"));
            assert!(!line.is_empty(), "bob: closed before {want:?}; got {got:?}");
            if line == want {
                return;
            }
            got.push(line);
        }
    };

    // alice: the example, typing through a pipe.
    let mut alice = Running::start("chat_client", &[&addr, "--name", "alice"], Stdio::piped());
    let mut typing = alice.child.stdin.take().unwrap();
    bob_expects("* alice joined\n");

    bob_w.write_all(b"hi alice\n").unwrap();
    alice.expect("bob: hi alice", |l| l == "bob: hi alice");

    typing.write_all(b"hello bob\n").unwrap();
    bob_expects("alice: hello bob\n");

    // Ctrl-D: alice leaves, the server announces it and closes, the client exits.
    drop(typing);
    bob_expects("* alice left\n");
    let status = alice.finish();
    assert!(status.success(), "{status}: {:?}", alice.seen);
    assert!(server.is_alive(), "the server died");
}

#[test]
fn echo_server_takes_flags_before_the_address() {
    for mode in ["streams", "sockets", "protocol"] {
        let server = Server::start_with(&["--mode", mode, "--buffer", "4096", "127.0.0.1:0"]);
        assert!(
            server.addr.ip().is_loopback() && server.addr.port() != 8888,
            "{mode}: the address after the flags was not used: {}",
            server.addr
        );
        let mut conn = TcpStream::connect(server.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let msg = vec![b'e'; 20_000];
        conn.write_all(&msg).unwrap();
        let mut back = vec![0u8; msg.len()];
        conn.read_exact(&mut back).unwrap();
        assert!(back == msg, "{mode}: echo differs");
    }
}

/// `(soft, hard)` "Max open files" of process `pid`, from `/proc/PID/limits`.
fn nofile_limits(pid: &str) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open-file limit in:\n{limits}"));
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn echo_server_raises_its_open_file_soft_limit_to_the_hard_limit() {
    let (_, hard) = nofile_limits("self");
    let low = (hard / 2).min(256);
    assert!(low >= 16, "hard open-file limit {hard} too low to test");
    let lowered = |program: &std::path::Path, args: &[&str]| {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -Sn {low} && exec \"$0\" \"$@\""))
            .arg(program)
            .args(args)
            .stdin(Stdio::null());
        cmd
    };
    // The control: the lowering reaches the program exec'd.
    let control = lowered(std::path::Path::new("cat"), &["/proc/self/limits"])
        .output()
        .unwrap();
    let control = String::from_utf8_lossy(&control.stdout);
    let soft_seen = control
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().find_map(|w| w.parse::<u64>().ok()));
    assert_eq!(soft_seen, Some(low), "ulimit -Sn did not apply:\n{control}");

    let server = Server::from(Running::spawn(
        "echo_server under ulimit -Sn",
        lowered(&example("echo_server"), &["127.0.0.1:0"]),
    ));
    let pid = server.run.pid().to_string(); // sh exec'd: the same process
    assert_eq!(
        nofile_limits(&pid),
        (hard, hard),
        "the soft limit was not raised from {low}"
    );
}
