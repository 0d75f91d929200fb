//! Runs the example programs and checks that they print what they claim.
//!
//! `cargo test` builds the examples (into `target/<profile>/examples/`) before running this
//! file; they are found next to this test binary's directory. Each run has a generous time
//! limit, after which the example is killed and the test fails.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long any example may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(30);

/// `target/<profile>/examples/<name>`, from `target/<profile>/deps/<this test binary>`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples (or run `cargo build --examples`)",
        path.display()
    );
    path
}

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

/// A running echo server, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(example("echo_server"))
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("echo_server printed {line:?}"))
            .trim()
            .parse()
            .unwrap();
        Server { child, addr }
    }

    fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
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

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
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
    assert!(out.took < Duration::from_secs(2) + LIMIT / 2);
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

    // 170 sped-up seconds (283 ms): minute 1 is due at 100 ms and minute 2 at 200 ms, far
    // enough from the end that only an enormous stall could hide them.
    let out = ok("hello_clock", &["--speed", "600", "--ticks", "170"]);
    assert_eq!(out.stdout.matches("tick").count(), 170);
    assert!(out.stdout.contains("minute 1"), "{}", out.stdout);
    assert!(!out.stdout.contains("minute 3"), "{}", out.stdout);
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
