//! Transports and protocols (issue 5): the callback grammar, flow control, half-close,
//! close/abort, the accept loop under EMFILE (B01).

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use corio::net::TcpStream;
use corio::protocols::{BaseProtocol, Protocol};
use corio::transports::{Address, READ_SIZE, Transport};

/// Records every callback, and echoes (pausing reading while writing is paused).
#[derive(Default)]
struct Recorder {
    t: Option<Transport>,
    log: Rc<RefCell<Vec<String>>>,
    echo: bool,
    max_buffered: Rc<Cell<usize>>,
}

impl BaseProtocol for Recorder {
    fn connection_lost(&mut self, exc: Option<io::Error>) {
        self.log.borrow_mut().push(format!(
            "lost:{}",
            exc.map_or("none".into(), |e| e.kind().to_string())
        ));
    }
    fn pause_writing(&mut self) {
        self.log.borrow_mut().push("pause".into());
        if let Some(t) = &self.t {
            t.pause_reading();
        }
    }
    fn resume_writing(&mut self) {
        self.log.borrow_mut().push("resume".into());
        if let Some(t) = &self.t {
            t.resume_reading();
        }
    }
}

impl Protocol for Recorder {
    fn connection_made(&mut self, t: &Transport) {
        self.t = Some(t.clone());
        self.log.borrow_mut().push("made".into());
    }
    fn data_received(&mut self, data: &[u8]) {
        self.log.borrow_mut().push(format!("data:{}", data.len()));
        if self.echo {
            let t = self.t.as_ref().unwrap();
            t.write(data);
            let b = t.get_write_buffer_size();
            if b > self.max_buffered.get() {
                self.max_buffered.set(b);
            }
        }
    }
    fn eof_received(&mut self) -> bool {
        self.log.borrow_mut().push("eof".into());
        false
    }
}

fn echo_factory(
    log: &Rc<RefCell<Vec<String>>>,
    max: &Rc<Cell<usize>>,
) -> impl FnMut() -> Recorder + 'static {
    let (log, max) = (log.clone(), max.clone());
    move || Recorder {
        log: log.clone(),
        echo: true,
        max_buffered: max.clone(),
        ..Recorder::default()
    }
}

/// made → data* → eof? → lost, and pause/resume strictly alternating, starting with pause.
fn check_grammar(log: &[String]) {
    assert_eq!(log.first().map(String::as_str), Some("made"), "{log:?}");
    assert!(log.last().unwrap().starts_with("lost:"), "{log:?}");
    let mut seen_eof = false;
    let mut paused = false;
    for (i, e) in log.iter().enumerate().skip(1) {
        if e.starts_with("lost:") {
            assert_eq!(i, log.len() - 1, "lost must be last: {log:?}");
        } else if e == "eof" {
            assert!(!seen_eof, "one eof at most");
            seen_eof = true;
        } else if e.starts_with("data:") {
            assert!(!seen_eof, "no data after eof: {log:?}");
        } else if e == "pause" {
            assert!(!paused, "two pauses in a row");
            paused = true;
        } else if e == "resume" {
            assert!(paused, "resume without pause");
            paused = false;
        } else {
            panic!("unexpected event {e}");
        }
    }
}

async fn read_all(s: &TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn callback_order_and_half_close_protocol_mode() {
    corio::run(async {
        let ev = corio::get_running_loop();
        let log = Rc::new(RefCell::new(Vec::new()));
        let max = Rc::new(Cell::new(0));
        let server = ev
            .create_server(echo_factory(&log, &max), "127.0.0.1:0")
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let data = pattern(1 << 20);
        let client = Rc::new(TcpStream::connect(addr).await.unwrap());
        let c2 = client.clone();
        let d2 = data.clone();
        let writer = corio::spawn(async move {
            c2.write_all(&d2).await.unwrap();
            c2.shutdown(Shutdown::Write).unwrap(); // half-close: we still read
        });
        let got = read_all(&client).await;
        writer.await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "every echoed byte, in order");
        server.close();
        server.wait_closed().await; // the connection is gone too
        let log = log.borrow();
        check_grammar(&log);
        assert!(log.contains(&"eof".to_string()));
        assert_eq!(log.last().unwrap(), "lost:none");
    });
}

#[test]
fn non_reading_client_cannot_grow_server_memory() {
    // The acceptance test: 100 MiB through an echo server whose client stops reading. The
    // server pauses reading when its write buffer passes the high-water mark, so what it
    // buffers stays under high + one read, however much the client sends.
    corio::run(async {
        let ev = corio::get_running_loop();
        let log = Rc::new(RefCell::new(Vec::new()));
        let max = Rc::new(Cell::new(0));
        let server = ev
            .create_server(echo_factory(&log, &max), "127.0.0.1:0")
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        const TOTAL: usize = 100 << 20;
        let client = Rc::new(TcpStream::connect(addr).await.unwrap());
        let sent = Rc::new(Cell::new(0usize));
        let (c2, s2) = (client.clone(), sent.clone());
        let writer = corio::spawn(async move {
            let chunk = vec![0x5au8; 256 * 1024];
            while s2.get() < TOTAL {
                let n = (TOTAL - s2.get()).min(chunk.len());
                let k = c2.write(&chunk[..n]).await.unwrap();
                s2.set(s2.get() + k);
            }
            c2.shutdown(Shutdown::Write).unwrap();
        });
        // Phase 1: never read. The client soon blocks: everything is full.
        let mut last = usize::MAX;
        loop {
            corio::sleep(Duration::from_millis(50)).await;
            if sent.get() == last {
                break;
            }
            last = sent.get();
        }
        assert!(sent.get() < TOTAL, "the client must be held back");
        assert!(log.borrow().contains(&"pause".to_string()));
        let (_, high) = (0, 64 * 1024);
        assert!(
            max.get() <= high + READ_SIZE,
            "server buffered {} bytes",
            max.get()
        );
        // Phase 2: read everything back; the bound holds through the whole 100 MiB.
        let mut total = 0usize;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match client.read(&mut buf).await.unwrap() {
                0 => break,
                n => {
                    assert!(buf[..n].iter().all(|&b| b == 0x5a));
                    total += n;
                }
            }
        }
        writer.await.unwrap();
        assert_eq!(total, TOTAL);
        assert!(
            max.get() <= high + READ_SIZE,
            "server buffered {}",
            max.get()
        );
        let log = log.borrow();
        check_grammar(&log);
        let pauses = log.iter().filter(|e| *e == "pause").count();
        let resumes = log.iter().filter(|e| *e == "resume").count();
        assert!(
            pauses >= 1 && resumes == pauses,
            "{pauses} pauses, {resumes} resumes"
        );
        server.close();
    });
}

#[test]
fn write_goes_straight_to_the_socket_and_close_flushes() {
    corio::run(async {
        let ev = corio::get_running_loop();
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let l2 = log.clone();
        let (t, _p) = ev
            .create_connection(
                move || Recorder {
                    log: l2,
                    ..Recorder::default()
                },
                addr,
            )
            .await
            .unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        assert_eq!(t.peername(), Some(Address::Inet(addr)));
        assert!(matches!(t.sockname(), Some(Address::Inet(_))));
        t.write(b"small");
        assert_eq!(
            t.get_write_buffer_size(),
            0,
            "sent at once, nothing buffered"
        );
        let big = pattern(8 << 20);
        t.write(&big);
        assert!(t.get_write_buffer_size() > 0, "the rest is buffered");
        assert!(
            t.is_writing_paused(),
            "pause_writing was called synchronously"
        );
        assert_eq!(log.borrow().last().unwrap(), "pause");
        t.close();
        assert!(t.is_closing());
        let got = read_all(&peer).await;
        assert_eq!(got.len(), 5 + big.len());
        assert!(got[5..] == big[..]);
        corio::sleep(Duration::from_millis(10)).await;
        assert_eq!(log.borrow().last().unwrap(), "lost:none");
        check_grammar(&log.borrow());
    });
}

#[test]
fn abort_drops_output_and_reset_is_reported() {
    corio::run(async {
        let ev = corio::get_running_loop();
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let l2 = log.clone();
        let (t, _p) = ev
            .create_connection(
                move || Recorder {
                    log: l2,
                    ..Recorder::default()
                },
                addr,
            )
            .await
            .unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        t.write(&pattern(4 << 20));
        t.abort();
        assert_eq!(t.get_write_buffer_size(), 0);
        let got = read_all(&peer).await;
        assert!(got.len() < 4 << 20, "abort drops buffered output");
        corio::sleep(Duration::from_millis(10)).await;
        assert_eq!(log.borrow().last().unwrap(), "lost:none");

        // A reset from the peer is connection_lost(Some(ConnectionReset)).
        let log = Rc::new(RefCell::new(Vec::new()));
        let l2 = log.clone();
        let (_t, _p) = ev
            .create_connection(
                move || Recorder {
                    log: l2,
                    ..Recorder::default()
                },
                addr,
            )
            .await
            .unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        let s = socket2::SockRef::from(&peer);
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(peer);
        for _ in 0..100 {
            if log.borrow().last().is_some_and(|e| e.starts_with("lost")) {
                break;
            }
            corio::sleep(Duration::from_millis(5)).await;
        }
        let log = log.borrow();
        check_grammar(&log);
        assert!(log.last().unwrap().contains("reset"), "{log:?}");
    });
}

#[test]
fn pause_resume_writing_pair_up() {
    // A writer side that pushes 4 MiB in 64 KiB pieces, writing only while not paused, to a
    // peer that reads slowly: pauses and resumes alternate, and each pause gets its resume.
    #[derive(Default)]
    struct Pusher {
        t: Option<Transport>,
        log: Rc<RefCell<Vec<String>>>,
        left: usize,
    }
    impl Pusher {
        fn push(&mut self) {
            let t = self.t.clone().unwrap();
            while self.left > 0 && !t.is_writing_paused() {
                let n = self.left.min(64 * 1024);
                t.write(&vec![1u8; n]);
                self.left -= n;
                assert!(t.get_write_buffer_size() <= 64 * 1024 + 64 * 1024);
            }
            if self.left == 0 {
                t.close();
            }
        }
    }
    impl BaseProtocol for Pusher {
        fn pause_writing(&mut self) {
            self.log.borrow_mut().push("pause".into());
        }
        fn resume_writing(&mut self) {
            self.log.borrow_mut().push("resume".into());
            self.push();
        }
        fn connection_lost(&mut self, _: Option<io::Error>) {
            self.log.borrow_mut().push("lost:none".into());
        }
    }
    impl Protocol for Pusher {
        fn connection_made(&mut self, t: &Transport) {
            self.t = Some(t.clone());
            self.log.borrow_mut().push("made".into());
            self.push();
        }
        fn data_received(&mut self, _: &[u8]) {}
    }
    corio::run(async {
        let ev = corio::get_running_loop();
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let l2 = log.clone();
        let (_t, _) = ev
            .create_connection(
                move || Pusher {
                    log: l2,
                    left: 4 << 20,
                    ..Pusher::default()
                },
                addr,
            )
            .await
            .unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        let mut total = 0;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match peer.read(&mut buf).await.unwrap() {
                0 => break,
                n => total += n,
            }
            corio::yield_now().await;
        }
        assert_eq!(total, 4 << 20);
        corio::sleep(Duration::from_millis(10)).await;
        let log = log.borrow();
        check_grammar(&log);
        let pauses = log.iter().filter(|e| *e == "pause").count();
        assert!(pauses >= 1);
        assert_eq!(pauses, log.iter().filter(|e| *e == "resume").count());
    });
}

#[test]
fn server_wait_closed_close_clients_and_serve_forever() {
    corio::run(async {
        let ev = corio::get_running_loop();
        let log = Rc::new(RefCell::new(Vec::new()));
        let max = Rc::new(Cell::new(0));
        let server = ev
            .create_server(echo_factory(&log, &max), "127.0.0.1:0")
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        assert!(server.is_serving());
        assert_eq!(server.sockets(), vec![Address::Inet(addr)]);
        let c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        c.read(&mut b).await.unwrap();
        assert_eq!(server.client_count(), 1);
        // serve_forever: cancelling it closes the server.
        let s2 = server.clone();
        let sf = corio::spawn(async move { s2.serve_forever().await });
        corio::yield_now().await;
        sf.cancel(None);
        assert!(sf.await.is_err());
        assert!(!server.is_serving());
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "no longer listening"
        );
        // wait_closed waits for the open connection too.
        let s3 = server.clone();
        let waiter = corio::spawn(async move { s3.wait_closed().await });
        corio::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.done());
        server.close_clients();
        waiter.await.unwrap();
        assert_eq!(read_all(&c).await.len(), 0, "the client sees EOF");
        assert!(server.serve_forever().await.is_err(), "closed");
    });
}

#[test]
fn create_connection_errors() {
    corio::run(async {
        let ev = corio::get_running_loop();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let Err(err) = ev.create_connection(Recorder::default, addr).await else {
            panic!("connected to port 1?")
        };
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    });
}

fn prlimit_nofile(pid: u32, n: u64) -> bool {
    std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={n}:"))
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn accept_backs_off_when_out_of_fds_b01() {
    // The server runs in a child process (lowering RLIMIT_NOFILE here would break the tests
    // running beside it). With no fd to accept into, it must not spin; once fds are
    // available again it must serve the clients waiting in the backlog.
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("note: prlimit is not installed; skipping the EMFILE test");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "emfile_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("CORIO_EMFILE_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = io::BufReader::new(child.stdout.take().unwrap());
    let (port, open): (u16, u64) = loop {
        let mut line = String::new();
        use std::io::BufRead;
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
        if let Some(i) = line.find("PORT ") {
            let rest = &line[i + 5..];
            let mut it = rest.split_whitespace();
            break (
                it.next().unwrap().parse().unwrap(),
                it.next().unwrap().parse().unwrap(),
            );
        }
    };
    let (_, hard) = {
        let l = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
        let row = l
            .lines()
            .find(|r| r.starts_with("Max open files"))
            .unwrap()
            .to_string();
        let v: Vec<u64> = row
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        (v[0], v[1])
    };
    assert!(prlimit_nofile(child.id(), open), "prlimit failed");
    let clients: Vec<std::net::TcpStream> = (0..10)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for mut c in &clients {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"z").unwrap();
    }
    std::thread::sleep(Duration::from_millis(900));
    assert!(prlimit_nofile(child.id(), hard.min(1 << 16)));
    for mut c in &clients {
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"z");
    }
    drop(clients);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {rest}");
}

/// Not a test by itself: the server half of `accept_backs_off_when_out_of_fds_b01`.
#[test]
fn emfile_child() {
    if std::env::var_os("CORIO_EMFILE_CHILD").is_none() {
        return;
    }
    // Opened now: there is no fd to spare later.
    let stat = std::fs::File::open("/proc/self/stat").unwrap();
    let cpu_ticks = move || -> u64 {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 1024];
        let n = stat.read_at(&mut buf, 0).unwrap();
        let s = String::from_utf8_lossy(&buf[..n]).to_string();
        let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let log = Rc::new(RefCell::new(Vec::new()));
    let log2 = log.clone();
    let max = Rc::new(Cell::new(0));
    corio::run(async move {
        let ev = corio::get_running_loop();
        ev.set_exception_handler(Some(|_: &corio::EventLoop, _: &corio::ExceptionContext| {}));
        let server = ev
            .create_server(echo_factory(&log, &max), "127.0.0.1:0")
            .await
            .unwrap();
        let open = std::fs::read_dir("/proc/self/fd").map_or(64, |d| d.count()) as u64;
        // The parent sets the soft limit to `open`: no fd left for accept.
        println!("PORT {} {}", server.local_addr().unwrap().port(), open);
        std::io::stdout().flush().unwrap();
        corio::sleep(Duration::from_millis(300)).await;
        let c0 = cpu_ticks();
        corio::sleep(Duration::from_millis(500)).await;
        let spent = cpu_ticks() - c0; // clock ticks, 10 ms each
        assert!(
            spent <= 10,
            "spinning on EMFILE: {spent} ticks of CPU in 500 ms"
        );
        // The parent raises the limit again: the waiting clients are served.
        let deadline = Instant::now() + Duration::from_secs(10);
        let made =
            |log: &Rc<RefCell<Vec<String>>>| log.borrow().iter().filter(|e| *e == "made").count();
        while made(&log2) < 10 && Instant::now() < deadline {
            corio::sleep(Duration::from_millis(10)).await;
        }
        while server.client_count() > 0 && Instant::now() < deadline {
            corio::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.client_count(), 0);
        server.close();
    });
}

/// The sockets a test opened, by their `/proc/self/fd` link (`socket:[inode]`: unique while
/// the socket lives, so other tests' fds never match).
fn socket_links(fds: &[i32]) -> Vec<String> {
    fds.iter()
        .filter_map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok())
        .map(|p| p.display().to_string())
        .filter(|l| l.starts_with("socket:"))
        .collect()
}

fn still_open(links: &[String]) -> Vec<String> {
    let now: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    links.iter().filter(|l| now.contains(l)).cloned().collect()
}

#[test]
fn closing_the_loop_closes_open_transports_b32() {
    // Protocols that keep their transport form an Rc cycle with it; closing the loop must
    // still close every fd (servers, connections both ways, streams, UDP).
    let links = corio::run(async {
        let ev = corio::get_running_loop();
        let log = Rc::new(RefCell::new(Vec::new()));
        let max = Rc::new(Cell::new(0));
        let server = ev
            .create_server(echo_factory(&log, &max), "127.0.0.1:0")
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let (t, _p) = ev.create_connection(Recorder::default, addr).await.unwrap();
        let (_r, w) = corio::streams::open_connection(addr).await.unwrap();
        let (u, _) = ev
            .create_datagram_endpoint(|| UdpSink, Some("127.0.0.1:0".parse().unwrap()), None)
            .await
            .unwrap();
        corio::sleep(Duration::from_millis(20)).await;
        assert_eq!(server.client_count(), 2);
        let fds: Vec<i32> = [t.fd(), w.transport().fd(), u.fd()]
            .into_iter()
            .flatten()
            .collect();
        let links = socket_links(&fds);
        assert_eq!(links.len(), 3);
        std::mem::forget(w); // not even the writer's close on drop
        links
    });
    assert_eq!(still_open(&links), Vec::<String>::new());
}

struct UdpSink;
impl BaseProtocol for UdpSink {}
impl corio::protocols::DatagramProtocol for UdpSink {
    fn datagram_received(&mut self, _: &[u8], _: SocketAddr) {}
}

#[test]
fn custom_write_buffer_limits_pause_past_high_and_resume_at_low() {
    // A write pipe with marks (low 10 000, high 40 000), neither the default: pause_writing
    // comes with the write that takes the buffer past `high`, not before; resume_writing
    // when the buffer has drained to `low` or below, before it is empty, the reader taking
    // 4 KiB at a time.
    const HIGH: usize = 40_000;
    const LOW: usize = 10_000;
    #[derive(Default)]
    struct Marks {
        t: Option<Transport>,
        log: Rc<RefCell<Vec<(&'static str, usize)>>>,
    }
    impl BaseProtocol for Marks {
        fn pause_writing(&mut self) {
            let size = self.t.as_ref().unwrap().get_write_buffer_size();
            self.log.borrow_mut().push(("pause", size));
        }
        fn resume_writing(&mut self) {
            let size = self.t.as_ref().unwrap().get_write_buffer_size();
            self.log.borrow_mut().push(("resume", size));
        }
    }
    impl Protocol for Marks {
        fn connection_made(&mut self, t: &Transport) {
            self.t = Some(t.clone());
        }
        fn data_received(&mut self, _: &[u8]) {}
    }
    corio::run(async {
        let ev = corio::get_running_loop();
        let (r, w) = corio::pipes::pipe().unwrap();
        let mut reader = std::fs::File::from(r); // blocking: read only while data is there
        let log = Rc::new(RefCell::new(Vec::new()));
        let l2 = log.clone();
        let (t, _) = ev
            .connect_write_pipe(
                move || Marks {
                    log: l2,
                    ..Marks::default()
                },
                w,
            )
            .await
            .unwrap();
        t.set_write_buffer_limits(Some(HIGH), Some(LOW));
        assert_eq!(t.get_write_buffer_limits(), (LOW, HIGH));

        // Fill: the pipe takes the first 64 KiB or so, then the transport buffers. Nothing
        // flushes between these writes (the loop does not run), so each 1000 bytes lands
        // in the buffer.
        let piece = vec![b'p'; 1000];
        let mut written = 0;
        while log.borrow().is_empty() {
            let before = t.get_write_buffer_size();
            t.write(&piece);
            written += piece.len();
            let after = t.get_write_buffer_size();
            if after <= HIGH {
                assert!(log.borrow().is_empty(), "paused at {after} <= {HIGH}");
            } else {
                assert!(before <= HIGH, "not paused at {before} > {HIGH}");
                assert_eq!(*log.borrow(), [("pause", after)]);
                assert!(t.is_writing_paused());
            }
            assert!(written < 10 << 20, "never paused");
        }

        // Drain 4 KiB at a time, letting the loop flush between reads.
        let mut buf = vec![0u8; 4096];
        let mut read = 0;
        while log.borrow().len() == 1 {
            let size = t.get_write_buffer_size();
            assert!(size > 0, "the buffer emptied and still no resume_writing");
            assert!(t.is_writing_paused(), "resumed without a callback");
            reader.read_exact(&mut buf).unwrap();
            read += buf.len();
            corio::yield_now().await;
            corio::yield_now().await;
        }
        let log = log.borrow().clone();
        assert_eq!(log.len(), 2, "{log:?}");
        let ("resume", size) = log[1] else {
            panic!("{log:?}")
        };
        assert!(size <= LOW, "resumed at {size} > low {LOW}");
        assert!(size > 0, "resumed only once empty, not at low");
        assert!(!t.is_writing_paused());
        assert!(read < written);
        t.abort();
    });
}

/// (bytes received, `buffer_updated` calls, `get_buffer` calls, whether EOF came).
type LenderReport = (usize, usize, usize, bool);

/// A user-written BufferedProtocol: receives into a buffer it lends through `get_buffer`
/// (a small fixed one, or room at the end of a growing `Vec`, asyncio's zero-copy pattern),
/// checks each `buffer_updated`, optionally echoes what it gets, and records the callbacks.
#[derive(Default)]
struct Lender {
    t: Option<Transport>,
    /// `Some(n)`: lend at most n bytes each time (many small receives).
    small: Option<usize>,
    storage: Vec<u8>,
    /// Bytes received, at the start of `storage`.
    len: usize,
    lent: usize,
    get_buffer_calls: usize,
    updates: usize,
    echo: bool,
    eof: bool,
    lost: bool,
    /// At connection_lost: what it got.
    report: Rc<RefCell<Vec<LenderReport>>>,
}

impl BaseProtocol for Lender {
    fn connection_lost(&mut self, exc: Option<io::Error>) {
        assert!(exc.is_none(), "{exc:?}");
        assert!(!self.lost, "connection_lost twice");
        self.lost = true;
        self.report
            .borrow_mut()
            .push((self.len, self.updates, self.get_buffer_calls, self.eof));
    }
}

impl corio::protocols::BufferedProtocol for Lender {
    fn connection_made(&mut self, t: &Transport) {
        assert!(self.t.is_none(), "connection_made twice");
        self.t = Some(t.clone());
    }
    fn get_buffer(&mut self, sizehint: usize) -> &mut [u8] {
        assert!(sizehint > 0);
        assert!(!self.eof, "get_buffer after eof");
        self.get_buffer_calls += 1;
        let n = self.small.unwrap_or(sizehint);
        self.storage.resize(self.len + n, 0xee);
        self.lent = n;
        &mut self.storage[self.len..]
    }
    fn buffer_updated(&mut self, nbytes: usize) {
        assert!(
            nbytes > 0 && nbytes <= self.lent,
            "{nbytes} of {} lent",
            self.lent
        );
        self.lent = 0; // one update per buffer
        self.updates += 1;
        if self.echo {
            let t = self.t.as_ref().unwrap();
            t.write(&self.storage[self.len..self.len + nbytes]);
        }
        self.len += nbytes;
    }
    fn eof_received(&mut self) -> bool {
        assert!(!self.eof, "eof twice");
        self.eof = true;
        false // close (after flushing the echo)
    }
}

#[test]
fn user_buffered_protocol_receives_through_get_buffer_and_buffer_updated() {
    // Server: a BufferedProtocol lending 7 bytes at a time, echoing. Client: a
    // BufferedProtocol made by create_connection, receiving into room at the end of a Vec.
    // 300 000 bytes go there and back, byte-exact and in order.
    corio::run(async {
        let ev = corio::get_running_loop();
        let report = Rc::new(RefCell::new(Vec::new()));
        let r2 = report.clone();
        let server = ev
            .create_server(
                move || Lender {
                    small: Some(7),
                    echo: true,
                    report: r2.clone(),
                    ..Lender::default()
                },
                "127.0.0.1:0",
            )
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let (t, client) = ev.create_connection(Lender::default, addr).await.unwrap();
        let data = pattern(300_000);
        t.write(&data);
        t.write_eof();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !client.borrow().lost {
            assert!(Instant::now() < deadline, "the echo did not finish");
            corio::sleep(Duration::from_millis(2)).await;
        }
        {
            let c = client.borrow();
            assert_eq!(c.len, data.len());
            assert!(c.storage[..c.len] == data[..], "every byte, in order");
            assert!(c.eof && c.updates >= 1 && c.get_buffer_calls >= c.updates);
        }
        server.close();
        server.wait_closed().await;
        // The server side: everything arrived in pieces of at most 7 bytes, then EOF.
        let report = report.borrow();
        assert_eq!(report.len(), 1, "one connection, lost once");
        let (len, updates, get_buffer_calls, eof) = report[0];
        assert_eq!(len, data.len());
        assert!(updates >= data.len() / 7, "{updates} buffer_updated calls");
        assert!(get_buffer_calls >= updates);
        assert!(eof);
    });
}
