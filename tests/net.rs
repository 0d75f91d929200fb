//! Real-OS tests of corio's sockets (`corio::net`, asyncio's `sock_*`): echo of every size in
//! order, many concurrent clients, half-close, resets, broken pipes without SIGPIPE, refused
//! connects, fd hygiene, the loop-level `sock_*` methods, and EINTR during a sleep (B05).
//!
//! Tests that count `/proc/self/fd` or change process-wide signal dispositions run in a child
//! process (this test binary started again with `--exact`), so the other tests running in
//! parallel threads cannot disturb them.

// Only the signal tests need `unsafe` (sigaction, signal, pthread_kill): see their SAFETY notes.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use corio::EventLoop;
use corio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

// ---- helpers ----------------------------------------------------------------------------------

/// Set in a child process started by [`in_child`]: the test body runs there.
const CHILD_ENV: &str = "CORIO_NET_TEST_CHILD";

/// Runs the test `name` (the caller) in a fresh process and asserts that it passed. Returns
/// `true` in that child, where the caller then runs its body; `false` in the parent.
fn in_child(name: &str) -> bool {
    if std::env::var_os(CHILD_ENV).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child test {name} failed: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "child did not run {name}:\n{stdout}"
    );
    false
}

/// Yields turns until `cond` holds; panics after 5 s, so a regression fails instead of hanging.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        corio::yield_now().await;
    }
}

/// Open file descriptors of this process.
fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The byte at `offset` of message `msg` of client `client`: every byte is checkable.
fn pattern(client: usize, msg: usize, offset: usize) -> u8 {
    (client.wrapping_mul(131) ^ msg.wrapping_mul(31) ^ offset.wrapping_mul(7) ^ (offset >> 8)) as u8
}

fn message(client: usize, msg: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| pattern(client, msg, i)).collect()
}

/// Reads exactly `buf.len()` bytes, failing on an early EOF.
async fn read_exact(stream: &TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]).await? {
            0 => return Err(ErrorKind::UnexpectedEof.into()),
            n => filled += n,
        }
    }
    Ok(())
}

/// Why an echo connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Eof,
    Error(ErrorKind),
}

/// The echo server's per-connection loop: echoes until EOF or an error, then half-closes.
async fn echo(stream: TcpStream) -> End {
    let mut buf = vec![0u8; 16 * 1024];
    let end = loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => break End::Eof,
            Ok(n) => n,
            Err(e) => break End::Error(e.kind()),
        };
        if let Err(e) = stream.write_all(&buf[..n]).await {
            break End::Error(e.kind());
        }
    };
    let _ = stream.shutdown(Shutdown::Write);
    end
}

/// Starts an echo server on 127.0.0.1:0; every connection's end is recorded.
fn start_echo_server() -> (SocketAddr, Rc<RefCell<Vec<End>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ends = Rc::new(RefCell::new(Vec::new()));
    let e = ends.clone();
    corio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let e = e.clone();
            corio::spawn(async move {
                let end = echo(stream).await;
                e.borrow_mut().push(end);
            });
        }
    });
    (addr, ends)
}

/// A client that sends `sizes.len()` messages from one task while another task reads and
/// checks the echoes (so a large message cannot deadlock on full socket buffers), then
/// half-closes and expects EOF. Returns the number of bytes verified.
async fn echo_client(addr: SocketAddr, client: usize, sizes: Vec<usize>) -> io::Result<usize> {
    let stream = Rc::new(TcpStream::connect(addr).await?);
    let writer = {
        let (stream, sizes) = (stream.clone(), sizes.clone());
        corio::spawn(async move {
            for (i, &len) in sizes.iter().enumerate() {
                stream.write_all(&message(client, i, len)).await?;
            }
            stream.shutdown(Shutdown::Write)
        })
    };
    let mut total = 0;
    for (i, &len) in sizes.iter().enumerate() {
        let mut got = vec![0u8; len];
        read_exact(&stream, &mut got).await?;
        if let Some(at) = (0..len).find(|&o| got[o] != pattern(client, i, o)) {
            panic!("client {client}, message {i} ({len} B): wrong byte at offset {at}");
        }
        total += len;
    }
    let mut rest = [0u8; 16];
    assert_eq!(stream.read(&mut rest).await?, 0, "EOF after the last echo");
    writer.await.unwrap()?;
    Ok(total)
}

// ---- echo ---------------------------------------------------------------------------------

#[test]
fn echo_returns_every_message_from_1_byte_to_256_kib_in_order() {
    let total = corio::run(async {
        let (addr, ends) = start_echo_server();
        let mut sizes: Vec<usize> = (0..=18).map(|p| 1 << p).collect(); // 1 B .. 256 KiB
        sizes.extend([3, 1000, 4095, 4097, 65_537, 200_000, 1]);
        let total = echo_client(addr, 0, sizes.clone()).await.unwrap();
        assert_eq!(total, sizes.iter().sum::<usize>());
        wait_until("the server saw the end", || !ends.borrow().is_empty()).await;
        assert_eq!(*ends.borrow(), [End::Eof]);
        total
    });
    assert!(total > 512 * 1024);
}

#[test]
fn two_hundred_concurrent_clients_are_all_echoed() {
    let _ = corio::raise_open_file_limit();
    corio::run(async {
        let (addr, ends) = start_echo_server();
        let clients: Vec<_> = (0..200)
            .map(|c| {
                let sizes = vec![1 + c, 1000, 1 + (c * 997) % 70_000, 10];
                corio::spawn(echo_client(addr, c, sizes))
            })
            .collect();
        for (c, t) in clients.into_iter().enumerate() {
            let n = t
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("client {c}: {e}"));
            assert_eq!(n, 1 + c + 1000 + 1 + (c * 997) % 70_000 + 10);
        }
        wait_until("200 connections ended", || ends.borrow().len() == 200).await;
        assert!(ends.borrow().iter().all(|e| *e == End::Eof));
    });
}

#[test]
fn b26_half_closed_client_still_receives_every_echoed_byte_then_eof() {
    // B26: the server treats EOF as "no more input", not as "connection gone".
    corio::run(async {
        let (addr, _ends) = start_echo_server();
        let stream = Rc::new(TcpStream::connect(addr).await.unwrap());
        let data = message(9, 0, 1 << 20);
        let writer = {
            let (stream, data) = (stream.clone(), data.clone());
            corio::spawn(async move {
                stream.write_all(&data).await.unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut got = Vec::with_capacity(data.len());
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await.unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        writer.await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "the echoed bytes differ");
        assert!(stream.peer_closed());
    });
}

#[test]
fn peer_reset_mid_stream_is_an_ordinary_error_and_other_clients_are_unaffected() {
    // B28: a client with SO_LINGER 0 closes mid-transfer, which sends RST.
    corio::run(async {
        let (addr, ends) = start_echo_server();
        let steady = corio::spawn(echo_client(addr, 1, vec![100; 50]));
        for _ in 0..5 {
            let mut rude = std::net::TcpStream::connect(addr).unwrap();
            rude.write_all(&[1u8; 64 * 1024]).unwrap();
            corio::sleep(Duration::from_millis(2)).await; // the server is mid-echo
            socket2::SockRef::from(&rude)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(rude);
        }
        let after = corio::spawn(echo_client(addr, 2, vec![1, 5000, 70_000]));
        assert_eq!(steady.await.unwrap().unwrap(), 5000);
        assert_eq!(after.await.unwrap().unwrap(), 75_001);
        wait_until("7 connections ended", || ends.borrow().len() == 7).await;
        let ends = ends.borrow();
        let resets = ends.iter().filter(|e| **e != End::Eof).count();
        assert!(
            ends.iter().all(|e| matches!(
                e,
                End::Eof
                    | End::Error(ErrorKind::ConnectionReset)
                    | End::Error(ErrorKind::BrokenPipe)
            )),
            "{ends:?}"
        );
        assert!(resets >= 1, "no reset was observed: {ends:?}");
    });
}

#[test]
fn b31_write_to_a_closed_peer_is_broken_pipe_and_never_sigpipe() {
    // B31: std ignores SIGPIPE at startup, which would hide a missing MSG_NOSIGNAL, so the
    // child restores the default action (terminate) before writing.
    if !in_child("b31_write_to_a_closed_peer_is_broken_pipe_and_never_sigpipe") {
        return;
    }
    // SAFETY: `signal` with SIG_DFL installs no handler; this child process runs only this
    // test, so no other thread depends on the disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let ev = EventLoop::new().unwrap();
    ev.run_until_complete(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();

        // corio's TcpStream.
        let client = TcpStream::connect(addr).await.unwrap();
        drop(listener.accept().await.unwrap());
        let chunk = vec![0u8; 64 * 1024];
        let mut err = None;
        for _ in 0..100 {
            if let Err(e) = client.write_all(&chunk).await {
                err = Some(e);
                break;
            }
            corio::sleep(Duration::from_millis(1)).await; // let the RST arrive
        }
        let err = err.expect("writing to a closed peer kept succeeding");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );

        // The loop-level sock_sendall on a socket corio does not own.
        let ev = corio::get_running_loop();
        let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        sock.set_nonblocking(true).unwrap();
        ev.sock_connect(&sock, addr).await.unwrap();
        drop(listener.accept().await.unwrap());
        let mut err = None;
        for _ in 0..100 {
            if let Err(e) = ev.sock_sendall(&sock, &chunk).await {
                err = Some(e);
                break;
            }
            corio::sleep(Duration::from_millis(1)).await;
        }
        let err = err.expect("sock_sendall to a closed peer kept succeeding");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );
    });
}

#[test]
fn connect_to_a_closed_port_is_connection_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }; // closed again: nothing listens there now
    corio::run(async move {
        let err = TcpStream::connect(port).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        let ev = corio::get_running_loop();
        let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        sock.set_nonblocking(true).unwrap();
        let err = ev.sock_connect(&sock, port).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

// ---- file descriptors -------------------------------------------------------------------------

#[test]
fn dropping_a_connect_future_mid_way_closes_its_socket() {
    if !in_child("dropping_a_connect_future_mid_way_closes_its_socket") {
        return;
    }
    corio::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let before = fd_count();
        for _ in 0..20 {
            let mut connect = pin!(TcpStream::connect(addr));
            let first = std::future::poll_fn(|cx| Poll::Ready(connect.as_mut().poll(cx))).await;
            assert!(
                first.is_pending(),
                "the connect finished in one poll: nothing to drop"
            );
            assert_eq!(fd_count(), before + 1, "the half-open socket exists");
        } // each connect future is dropped here
        assert_eq!(fd_count(), before, "a dropped connect leaked its socket");
        // Refused connects leak nothing either (B32).
        drop(listener);
        for _ in 0..20 {
            assert!(TcpStream::connect(addr).await.is_err());
        }
        assert_eq!(fd_count(), before - 1, "only the listener is gone");
    });
}

#[test]
fn fd_count_returns_to_baseline_after_a_hundred_connections_close() {
    if !in_child("fd_count_returns_to_baseline_after_a_hundred_connections_close") {
        return;
    }
    corio::run(async {
        let (addr, ends) = start_echo_server();
        corio::yield_now().await;
        let baseline = fd_count();
        let clients: Vec<_> = (0..100)
            .map(|c| corio::spawn(echo_client(addr, c, vec![10, 2000])))
            .collect();
        corio::sleep(Duration::from_millis(1)).await;
        assert!(fd_count() > baseline, "the connections are open");
        for t in clients {
            t.await.unwrap().unwrap();
        }
        wait_until("100 connections ended", || ends.borrow().len() == 100).await;
        corio::yield_now().await;
        assert_eq!(fd_count(), baseline, "fds leaked by closed connections");
    });
}

// ---- the loop-level sock_* methods ----------------------------------------------------------

#[test]
fn sock_methods_echo_a_megabyte_over_socket2_sockets_and_leave_nothing_registered() {
    let ev = EventLoop::new().unwrap();
    let listener = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    listener.set_nonblocking(true).unwrap();
    listener
        .bind(&SockAddr::from(
            "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        ))
        .unwrap();
    listener.listen(16).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let data = Rc::new(message(3, 3, 1 << 20));

    let got = ev.run_until_complete(async {
        let ev = corio::get_running_loop();
        let server = {
            let ev = ev.clone();
            corio::spawn(async move {
                let (conn, peer) = ev.sock_accept(&listener).await.unwrap();
                assert!(peer.ip().is_loopback());
                let mut buf = vec![0u8; 8192];
                loop {
                    match ev.sock_recv(&conn, &mut buf).await.unwrap() {
                        0 => break,
                        n => ev.sock_sendall(&conn, &buf[..n]).await.unwrap(),
                    }
                }
            })
        };
        let client = Rc::new(Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap());
        client.set_nonblocking(true).unwrap();
        ev.sock_connect(&*client, addr).await.unwrap();
        let writer = {
            let (ev, client, data) = (ev.clone(), client.clone(), data.clone());
            corio::spawn(async move {
                ev.sock_sendall(&*client, &data).await.unwrap();
                client.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut got = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match ev.sock_recv(&*client, &mut buf).await.unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        writer.await.unwrap();
        server.await.unwrap();
        got
    });
    assert_eq!(got.len(), data.len());
    assert!(got == *data, "the echoed bytes differ");
    let state = format!("{ev:?}");
    assert!(
        state.contains("fds: 0"),
        "sock_* operations left registrations behind: {state}"
    );
}

// ---- EINTR -----------------------------------------------------------------------------------

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn b05_signals_interrupting_the_loop_neither_shorten_a_sleep_nor_stop_serving() {
    // B05: a handler installed without SA_RESTART makes epoll_wait fail with EINTR each time
    // the signal lands on the loop's thread.
    // SAFETY: `sigaction` is given a fully initialised struct whose handler only touches an
    // atomic (async-signal-safe). SIGURG is ignored by default and used by nothing else in
    // this test binary, and only this test's loop thread is sent it.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = 0; // no SA_RESTART
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGURG, &action, std::ptr::null_mut()),
            0
        );
    }
    // SAFETY: `pthread_self` has no preconditions.
    let loop_thread = unsafe { libc::pthread_self() } as usize;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let signaller = thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            // SAFETY: the loop thread outlives this thread (it joins us before returning).
            unsafe { libc::pthread_kill(loop_thread as libc::pthread_t, libc::SIGURG) };
            thread::sleep(Duration::from_millis(3));
        }
    });
    let before = SIGNALS.load(Ordering::Relaxed);
    let (slept, served) = corio::run(async {
        let (addr, _ends) = start_echo_server();
        let served = Rc::new(Cell::new(0));
        let s = served.clone();
        let client = corio::spawn(async move {
            loop {
                let n = echo_client(addr, 5, vec![10, 3000]).await.unwrap();
                assert_eq!(n, 3010);
                s.set(s.get() + 1);
                corio::sleep(Duration::from_millis(5)).await;
            }
        });
        let t0 = Instant::now();
        corio::sleep(Duration::from_millis(200)).await;
        let slept = t0.elapsed();
        client.cancel(None);
        let _ = client.await;
        (slept, served.get())
    });
    stop.store(true, Ordering::Relaxed);
    signaller.join().unwrap();
    let delivered = SIGNALS.load(Ordering::Relaxed) - before;
    assert!(delivered >= 5, "only {delivered} signals were delivered");
    assert!(
        slept >= Duration::from_millis(200),
        "the sleep ended early: {slept:?}"
    );
    assert!(
        served >= 3,
        "the loop stopped serving under signals: {served}"
    );
}

/// A socket whose loop was closed, used from another loop: it used to spin forever (its
/// registration was gone, so it looked ready, and the read kept saying `WouldBlock`).
#[test]
fn a_socket_read_after_its_loop_closed_errors_instead_of_spinning() {
    let first = corio::EventLoop::new().unwrap();
    let (stream, _peer) = first.run_until_complete(async {
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        (stream, client)
    });
    first.close();
    let second = corio::EventLoop::new().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let watchdog = std::thread::spawn(move || {
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("the read spun instead of failing");
    });
    let mut buf = [0u8; 16];
    let err = second
        .run_until_complete(stream.read(&mut buf))
        .unwrap_err();
    tx.send(()).unwrap();
    watchdog.join().unwrap();
    assert!(err.to_string().contains("closed"), "{err}");
}

// ---- socket options and addresses -------------------------------------------------------------

/// `TCP_NODELAY` as the kernel reports it for `fd` (getsockopt through socket2, not corio's
/// own getter).
fn kernel_nodelay(fd: &impl std::os::fd::AsFd) -> bool {
    socket2::SockRef::from(fd).tcp_nodelay().unwrap()
}

#[test]
fn tcp_nodelay_is_on_for_connected_accepted_and_wrapped_streams() {
    corio::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The control: a plain socket starts with Nagle on, so the check below can fail.
        let plain = std::net::TcpStream::connect(addr).unwrap();
        assert!(
            !kernel_nodelay(&plain),
            "TCP_NODELAY is on by default here?"
        );
        let (accepted_plain, _) = listener.accept().await.unwrap();

        let connected = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let wrapped = TcpStream::from_std(plain).unwrap();
        for (what, s) in [
            ("connected", &connected),
            ("accepted", &accepted),
            ("accepted from a plain client", &accepted_plain),
            ("wrapped with from_std", &wrapped),
        ] {
            assert!(kernel_nodelay(s), "{what}: TCP_NODELAY is off");
            assert!(s.nodelay().unwrap(), "{what}: nodelay() disagrees");
        }
        // And it can be turned off.
        connected.set_nodelay(false).unwrap();
        assert!(!kernel_nodelay(&connected));
    });
}

#[test]
fn peer_addr_and_local_addr_name_both_ends() {
    corio::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
        let client = TcpStream::connect(addr).await.unwrap();
        let (server_side, peer) = listener.accept().await.unwrap();
        assert_eq!(client.peer_addr().unwrap(), addr);
        assert_eq!(server_side.local_addr().unwrap(), addr);
        let client_local = client.local_addr().unwrap();
        assert!(client_local.ip().is_loopback() && client_local.port() != 0);
        assert_ne!(client_local.port(), addr.port());
        assert_eq!(peer, client_local, "accept's address is the client's");
        assert_eq!(server_side.peer_addr().unwrap(), client_local);
        // Both agree with what the kernel says of the raw sockets.
        let raw = socket2::SockRef::from(&client);
        assert_eq!(raw.local_addr().unwrap().as_socket(), Some(client_local));
        assert_eq!(raw.peer_addr().unwrap().as_socket(), Some(addr));
    });
}

#[test]
fn wait_for_a_connect_completes_in_time_or_times_out_leaking_no_fd() {
    if !in_child("wait_for_a_connect_completes_in_time_or_times_out_leaking_no_fd") {
        return;
    }
    corio::run(async {
        // In time: a local listener, a generous limit.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = corio::wait_for(TcpStream::connect(addr), Duration::from_secs(10))
            .await
            .expect("a local connect timed out")
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addr);
        drop(stream);

        // A connect that cannot finish: a listener with backlog 0 that never accepts, its
        // queue filled by a few non-blocking connects; Linux then drops further SYNs, so
        // the connect stays in SYN_SENT (no network needed).
        let full = TcpListener::bind_with("127.0.0.1:0".parse().unwrap(), 0, false).unwrap();
        let full_addr = full.local_addr().unwrap();
        let fillers: Vec<Socket> = (0..8)
            .map(|_| {
                let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
                s.set_nonblocking(true).unwrap();
                let _ = s.connect(&SockAddr::from(full_addr)); // EINPROGRESS
                s
            })
            .collect();
        corio::sleep(Duration::from_millis(50)).await; // the queue fills
        let before = fd_count();
        for timeout in [
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_millis(30),
        ] {
            for _ in 0..10 {
                let r = corio::wait_for(TcpStream::connect(full_addr), timeout).await;
                assert!(
                    matches!(r, Err(corio::TimeoutError)),
                    "timeout {timeout:?}: {r:?}"
                );
                assert_eq!(fd_count(), before, "timeout {timeout:?} leaked an fd");
            }
        }
        drop(fillers);
    });
}
