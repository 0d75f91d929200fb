//! UDP endpoints (B09), Unix-domain sockets and pipes as transports (issue 5).
//!
//! Every test is bounded in time: socket timeouts and polling helpers inside the loop, and a
//! [`watchdog`] thread outside it for the hangs nothing inside the loop can see (a read that
//! is never woken leaves the loop in `epoll_wait(-1)`).

// getrusage (B09's CPU time): see the SAFETY note.
#![allow(unsafe_code)]

#[allow(dead_code)] // each test file uses some of the shared helpers
mod support;
use support::watchdog;

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::Duration;

/// CPU time (user + system) used so far by this thread (`RUSAGE_THREAD`).
fn thread_cpu() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid, writable `rusage`; getrusage only writes into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage: {}", io::Error::last_os_error());
    // SAFETY: getrusage succeeded, so it initialised the struct (it was zeroed anyway).
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

use corio::protocols::{BaseProtocol, DatagramProtocol, Protocol};
use corio::transports::{DatagramTransport, Transport};

#[derive(Default)]
struct Udp {
    t: Option<DatagramTransport>,
    log: Rc<RefCell<Vec<String>>>,
    echo: bool,
}

impl BaseProtocol for Udp {
    fn connection_lost(&mut self, _: Option<io::Error>) {
        self.log.borrow_mut().push("lost".into());
    }
}

impl DatagramProtocol for Udp {
    fn connection_made(&mut self, t: &DatagramTransport) {
        self.t = Some(t.clone());
        self.log.borrow_mut().push("made".into());
    }
    fn datagram_received(&mut self, data: &[u8], addr: SocketAddr) {
        self.log
            .borrow_mut()
            .push(format!("data:{}", String::from_utf8_lossy(data)));
        if self.echo {
            self.t.as_ref().unwrap().sendto(data, Some(addr));
        }
    }
    fn error_received(&mut self, exc: io::Error) {
        self.log
            .borrow_mut()
            .push(format!("error:{:?}", exc.kind()));
    }
}

async fn wait_for(log: &Rc<RefCell<Vec<String>>>, what: &str) {
    for _ in 0..400 {
        if log.borrow().iter().any(|e| e == what) {
            return;
        }
        corio::sleep(Duration::from_millis(5)).await;
    }
    panic!("no {what} in {:?}", log.borrow());
}

#[test]
fn udp_echo_roundtrip() {
    let _wd = watchdog("udp_echo_roundtrip", Duration::from_secs(60));
    corio::run(async {
        let ev = corio::get_running_loop();
        let slog = Rc::new(RefCell::new(Vec::new()));
        let s2 = slog.clone();
        let (server, _) = ev
            .create_datagram_endpoint(
                move || Udp {
                    log: s2,
                    echo: true,
                    ..Udp::default()
                },
                Some("127.0.0.1:0".parse().unwrap()),
                None,
            )
            .await
            .unwrap();
        let addr = server.sockname().unwrap().as_inet().unwrap();
        let clog = Rc::new(RefCell::new(Vec::new()));
        let c2 = clog.clone();
        let (client, _) = ev
            .create_datagram_endpoint(
                move || Udp {
                    log: c2,
                    ..Udp::default()
                },
                None,
                Some(addr),
            )
            .await
            .unwrap();
        for i in 0..50 {
            client.sendto(format!("m{i}").as_bytes(), None);
        }
        wait_for(&clog, "data:m49").await;
        assert_eq!(
            clog.borrow()
                .iter()
                .filter(|e| e.starts_with("data:"))
                .count(),
            50
        );
        client.close();
        server.close();
        wait_for(&clog, "lost").await;
        wait_for(&slog, "lost").await;
        assert!(client.is_closing());
    });
}

#[test]
fn b09_icmp_port_unreachable_is_not_fatal() {
    let _wd = watchdog(
        "b09_icmp_port_unreachable_is_not_fatal",
        Duration::from_secs(60),
    );
    corio::run(async {
        let ev = corio::get_running_loop();
        // A port with nobody on it: bind, note it, close.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let l2 = log.clone();
        let (t, _) = ev
            .create_datagram_endpoint(
                move || Udp {
                    log: l2,
                    ..Udp::default()
                },
                None,
                Some(port),
            )
            .await
            .unwrap();
        t.sendto(b"anyone?", None);
        // The ICMP error comes back as ConnectionRefused, through error_received.
        wait_for(&log, "error:ConnectionRefused").await;
        assert!(!t.is_closing(), "the endpoint stays open");
        // No spinning on the consumed error (an EPOLLERR nobody drains would wake the loop
        // at once, over and over): the loop's thread, asleep for 300 ms, uses little CPU.
        // CPU time, not wall time, so a loaded machine cannot fail it.
        let cpu0 = thread_cpu();
        corio::sleep(Duration::from_millis(300)).await;
        let spent = thread_cpu() - cpu0;
        assert!(
            spent < Duration::from_millis(60),
            "busy loop after the ICMP error: {spent:?} of CPU in 300 ms"
        );
        // Someone listens there now: the same endpoint works.
        let peer = UdpSocket::bind(port).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        t.sendto(b"hello again", None);
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello again");
        peer.send_to(b"welcome", from).unwrap();
        wait_for(&log, "data:welcome").await;

        // An unconnected endpoint: a datagram to a dead port, then to a live one.
        let live = UdpSocket::bind("127.0.0.1:0").unwrap();
        live.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let log2 = Rc::new(RefCell::new(Vec::new()));
        let l3 = log2.clone();
        let (u, _) = ev
            .create_datagram_endpoint(
                move || Udp {
                    log: l3,
                    ..Udp::default()
                },
                Some("127.0.0.1:0".parse().unwrap()),
                None,
            )
            .await
            .unwrap();
        let dead = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        u.sendto(b"lost", Some(dead));
        corio::sleep(Duration::from_millis(10)).await;
        u.sendto(b"found", Some(live.local_addr().unwrap()));
        let n = live.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"found");
        assert!(!u.is_closing());
    });
}

#[derive(Default)]
struct Collect {
    t: Option<Transport>,
    data: Rc<RefCell<Vec<u8>>>,
    events: Rc<RefCell<Vec<String>>>,
    echo: bool,
}

impl BaseProtocol for Collect {
    fn connection_lost(&mut self, exc: Option<io::Error>) {
        self.events.borrow_mut().push(format!(
            "lost:{}",
            exc.map_or("none".into(), |e| format!("{:?}", e.kind()))
        ));
    }
}

impl Protocol for Collect {
    fn connection_made(&mut self, t: &Transport) {
        self.t = Some(t.clone());
        self.events.borrow_mut().push("made".into());
    }
    fn data_received(&mut self, d: &[u8]) {
        self.data.borrow_mut().extend_from_slice(d);
        if self.echo {
            self.t.as_ref().unwrap().write(d);
        }
    }
    fn eof_received(&mut self) -> bool {
        self.events.borrow_mut().push("eof".into());
        false
    }
}

fn sock_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("corio-test-{}-{tag}.sock", std::process::id()))
}

#[test]
fn unix_protocol_server_and_streams_client() {
    let _wd = watchdog(
        "unix_protocol_server_and_streams_client",
        Duration::from_secs(60),
    );
    corio::run(async {
        let ev = corio::get_running_loop();
        let path = sock_path("proto");
        std::fs::write(&path, b"").ok(); // a stale regular file is NOT removed...
        std::fs::remove_file(&path).ok(); // ...so clear it; a stale socket would be replaced
        let server = ev
            .create_unix_server(
                || Collect {
                    echo: true,
                    ..Collect::default()
                },
                &path,
            )
            .await
            .unwrap();
        assert_eq!(server.sockets()[0].as_unix_path(), Some(path.as_path()));
        let (mut r, w) = corio::streams::open_unix_connection(&path).await.unwrap();
        let big: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
        w.write(&big);
        w.write_eof();
        let got = r.read_to_end().await.unwrap();
        assert!(got == big, "echoed over a Unix socket, half-closed");
        server.close();
        assert!(!path.exists(), "the socket file is removed on close");

        // A stale socket file from an earlier server is replaced.
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        let events = Rc::new(RefCell::new(Vec::new()));
        let e2 = events.clone();
        let server = ev
            .create_unix_server(
                move || Collect {
                    events: e2.clone(),
                    ..Collect::default()
                },
                &path,
            )
            .await
            .unwrap();
        let data = Rc::new(RefCell::new(Vec::new()));
        let d2 = data.clone();
        let (t, _) = ev
            .create_unix_connection(
                move || Collect {
                    data: d2,
                    ..Collect::default()
                },
                &path,
            )
            .await
            .unwrap();
        t.write(b"x");
        t.close();
        wait_events(&events, "lost:none").await;
        assert_eq!(*events.borrow(), ["made", "eof", "lost:none"]);
        server.close();
    });
}

async fn wait_events(ev: &Rc<RefCell<Vec<String>>>, what: &str) {
    for _ in 0..400 {
        if ev.borrow().iter().any(|e| e == what) {
            return;
        }
        corio::sleep(Duration::from_millis(5)).await;
    }
    panic!("no {what} in {:?}", ev.borrow());
}

#[test]
fn read_pipe_gets_data_then_eof_then_lost() {
    let _wd = watchdog(
        "read_pipe_gets_data_then_eof_then_lost",
        Duration::from_secs(60),
    );
    corio::run(async {
        let ev = corio::get_running_loop();
        let (r, w) = corio::pipes::pipe().unwrap();
        let data = Rc::new(RefCell::new(Vec::new()));
        let events = Rc::new(RefCell::new(Vec::new()));
        let (d2, e2) = (data.clone(), events.clone());
        let (t, _) = ev
            .connect_read_pipe(
                move || Collect {
                    data: d2,
                    events: e2,
                    ..Collect::default()
                },
                r,
            )
            .await
            .unwrap();
        assert!(!t.can_write_eof());
        let writer = std::thread::spawn(move || {
            let mut w = std::fs::File::from(w);
            for i in 0..100 {
                w.write_all(format!("line {i}\n").as_bytes()).unwrap();
            }
        });
        wait_events(&events, "lost:none").await;
        writer.join().unwrap();
        assert_eq!(*events.borrow(), ["made", "eof", "lost:none"]);
        let text = String::from_utf8(data.borrow().clone()).unwrap();
        assert_eq!(text.lines().count(), 100);
        assert!(t.fd().is_none(), "closed");
    });
}

#[test]
fn write_pipe_flushes_and_reports_a_gone_reader() {
    let _wd = watchdog(
        "write_pipe_flushes_and_reports_a_gone_reader",
        Duration::from_secs(60),
    );
    corio::run(async {
        let ev = corio::get_running_loop();
        let (r, w) = corio::pipes::pipe().unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e2 = events.clone();
        let (t, _) = ev
            .connect_write_pipe(
                move || Collect {
                    events: e2,
                    ..Collect::default()
                },
                w,
            )
            .await
            .unwrap();
        let big = vec![b'p'; 1 << 20]; // more than a pipe holds: buffered, flushed later
        t.write(&big);
        assert!(t.get_write_buffer_size() > 0);
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::fs::File::from(r).read_to_end(&mut got).unwrap();
            got.len()
        });
        t.write_eof(); // closes the pipe once flushed
        wait_events(&events, "lost:none").await;
        assert_eq!(reader.join().unwrap(), 1 << 20);

        // The reader goes away while we still have buffered output: BrokenPipe.
        let (r, w) = corio::pipes::pipe().unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e2 = events.clone();
        let (t, _) = ev
            .connect_write_pipe(
                move || Collect {
                    events: e2,
                    ..Collect::default()
                },
                w,
            )
            .await
            .unwrap();
        t.write(&big);
        drop(r);
        wait_events(&events, "lost:BrokenPipe").await;

        // With nothing buffered, the reader leaving is a clean connection_lost.
        let (r, w) = corio::pipes::pipe().unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e2 = events.clone();
        let (_t, _) = ev
            .connect_write_pipe(
                move || Collect {
                    events: e2,
                    ..Collect::default()
                },
                w,
            )
            .await
            .unwrap();
        drop(r);
        wait_events(&events, "lost:none").await;
    });
}

#[test]
fn regular_files_are_refused_and_stream_pipes_work() {
    let _wd = watchdog(
        "regular_files_are_refused_and_stream_pipes_work",
        Duration::from_secs(60),
    );
    corio::run(async {
        let ev = corio::get_running_loop();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        let Err(e) = ev.connect_read_pipe(Collect::default, f).await else {
            panic!("a regular file cannot be watched by epoll");
        };
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

        let (r, w) = corio::pipes::pipe().unwrap();
        let mut reader = corio::streams::open_pipe_reader(r).await.unwrap();
        let writer = corio::streams::open_pipe_writer(w).await.unwrap();
        writer.write(b"one\ntwo\n");
        writer.write_eof();
        assert_eq!(reader.readline().await.unwrap(), b"one\n");
        assert_eq!(reader.readline().await.unwrap(), b"two\n");
        assert_eq!(reader.readline().await.unwrap(), b"");
        assert!(reader.at_eof());
    });
}
