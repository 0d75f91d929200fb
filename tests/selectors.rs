//! Real-OS tests of the selector contract (`corio::selector`), run against every backend.
//!
//! Each test body runs once with [`SelectorKind::Epoll`] and once with
//! [`SelectorKind::Polling`] (see [`each_backend`]). Timing assertions are lower bounds (a
//! timeout is never early) or generous upper bounds (at least a second) so a loaded machine
//! cannot make them flaky.

// Only `eintr_*` needs `unsafe` (sigaction, pthread_kill): see the SAFETY comments there.
#![allow(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use corio::selector::{Event, Events, Interest, Selector, SelectorKind, Token, Trigger};

/// A wait that must not end by timeout: the event or wake-up is expected well before.
const LONG: Duration = Duration::from_secs(5);
/// The upper bound for "promptly".
const PROMPT: Duration = Duration::from_secs(1);
/// How long to wait to conclude that no event comes.
const QUIET: Duration = Duration::from_millis(50);

/// Runs `body` against each backend, naming the backend if it panics.
fn each_backend(body: impl Fn(&dyn Selector)) {
    let mut kinds = vec![SelectorKind::Polling];
    if cfg!(any(target_os = "linux", target_os = "android")) {
        kinds.insert(0, SelectorKind::Epoll);
    }
    for kind in kinds {
        let selector = kind.create().unwrap();
        let name = selector.name();
        assert_eq!(
            name,
            match kind {
                SelectorKind::Polling => "polling",
                _ => "epoll",
            }
        );
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&*selector)));
        if let Err(panic) = result {
            eprintln!("failed with the {name} selector");
            std::panic::resume_unwind(panic);
        }
    }
}

/// Selects once with `timeout` and returns the events reported.
fn select(selector: &dyn Selector, timeout: Duration) -> Vec<Event> {
    let mut events = Events::with_capacity(16);
    selector.select(&mut events, Some(timeout)).unwrap();
    events.iter().copied().collect()
}

/// Selects once with `timeout` and returns the tokens reported, without duplicates (kqueue may
/// report read and write readiness of one fd as two events).
fn tokens(selector: &dyn Selector, timeout: Duration) -> Vec<Token> {
    let mut tokens: Vec<Token> = select(selector, timeout).iter().map(|e| e.token).collect();
    tokens.dedup();
    tokens
}

/// A connected pair of non-blocking Unix stream sockets.
fn socketpair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// Reads until `WouldBlock`, returning how many bytes came.
fn drain(stream: &mut UnixStream) -> usize {
    let mut total = 0;
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

#[test]
fn readable_event_carries_the_registered_token() {
    each_backend(|selector| {
        let (a, mut b) = socketpair();
        selector
            .register(a.as_raw_fd(), Token(7), Interest::READABLE, Trigger::Edge)
            .unwrap();
        b.write_all(b"hello").unwrap();
        let events = select(selector, LONG);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].token, Token(7));
        assert!(events[0].is_readable());
        assert!(!events[0].is_error() && !events[0].is_read_closed());
        selector.unregister(a.as_raw_fd()).unwrap();
    });
}

#[test]
fn edge_trigger_reports_undrained_data_once_and_new_data_again() {
    each_backend(|selector| {
        let (mut a, mut b) = socketpair();
        selector
            .register(a.as_raw_fd(), Token(1), Interest::READABLE, Trigger::Edge)
            .unwrap();
        b.write_all(b"first").unwrap();
        assert_eq!(tokens(selector, LONG), [Token(1)]);
        // Not drained: no new edge, so nothing within the quiet period.
        assert_eq!(tokens(selector, QUIET), []);
        // New data is a new edge.
        b.write_all(b"second").unwrap();
        assert_eq!(tokens(selector, LONG), [Token(1)]);
        assert_eq!(drain(&mut a), 11);
        assert_eq!(tokens(selector, QUIET), []);
        selector.unregister(a.as_raw_fd()).unwrap();
    });
}

#[test]
fn level_trigger_repeats_while_data_is_buffered() {
    each_backend(|selector| {
        let (mut a, mut b) = socketpair();
        selector
            .register(a.as_raw_fd(), Token(2), Interest::READABLE, Trigger::Level)
            .unwrap();
        b.write_all(b"data").unwrap();
        for _ in 0..3 {
            assert_eq!(tokens(selector, LONG), [Token(2)]);
        }
        assert_eq!(drain(&mut a), 4);
        assert_eq!(tokens(selector, QUIET), []);
        selector.unregister(a.as_raw_fd()).unwrap();
    });
}

#[test]
fn writable_event_for_a_socket_with_buffer_space() {
    each_backend(|selector| {
        let (a, _b) = socketpair();
        selector
            .register(a.as_raw_fd(), Token(3), Interest::WRITABLE, Trigger::Edge)
            .unwrap();
        let events = select(selector, LONG);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].token, Token(3));
        assert!(events[0].is_writable() && !events[0].is_error());
        // Edge: still writable, but no new edge.
        assert_eq!(tokens(selector, QUIET), []);
        selector.unregister(a.as_raw_fd()).unwrap();
    });
}

#[test]
fn modify_changes_interest_and_token() {
    each_backend(|selector| {
        let (a, _b) = socketpair();
        // Nothing to read: quiet.
        selector
            .register(a.as_raw_fd(), Token(4), Interest::READABLE, Trigger::Edge)
            .unwrap();
        assert_eq!(tokens(selector, QUIET), []);
        // Writable interest under a new token: reported at once.
        selector
            .modify(a.as_raw_fd(), Token(5), Interest::WRITABLE, Trigger::Edge)
            .unwrap();
        let events = select(selector, LONG);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].token, Token(5));
        assert!(events[0].is_writable());
        // Back to readable only: quiet again.
        selector
            .modify(a.as_raw_fd(), Token(6), Interest::READABLE, Trigger::Level)
            .unwrap();
        assert_eq!(tokens(selector, QUIET), []);
        selector.unregister(a.as_raw_fd()).unwrap();
    });
}

#[test]
fn unregister_stops_events() {
    each_backend(|selector| {
        let (a, mut b) = socketpair();
        selector
            .register(a.as_raw_fd(), Token(8), Interest::READABLE, Trigger::Level)
            .unwrap();
        b.write_all(b"x").unwrap();
        assert_eq!(tokens(selector, LONG), [Token(8)]);
        selector.unregister(a.as_raw_fd()).unwrap();
        // Still readable (level), but no longer watched.
        assert_eq!(tokens(selector, QUIET), []);
        b.write_all(b"y").unwrap();
        assert_eq!(tokens(selector, QUIET), []);
        // A second unregister is an error the caller sees.
        assert!(selector.unregister(a.as_raw_fd()).is_err());
    });
}

#[test]
fn unregister_of_an_fd_closed_first_returns_the_error() {
    each_backend(|selector| {
        let (a, _b) = socketpair();
        let fd = a.as_raw_fd();
        selector
            .register(fd, Token(9), Interest::READABLE, Trigger::Edge)
            .unwrap();
        drop(a); // Breaks the contract on purpose: the kernel drops the registration itself.
        let err = selector.unregister(fd).unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::ENOENT | libc::EBADF)),
            "{err:?}"
        );
    });
}

#[test]
fn wakeup_token_is_refused() {
    each_backend(|selector| {
        let (a, _b) = socketpair();
        let err = selector
            .register(
                a.as_raw_fd(),
                Token::WAKEUP,
                Interest::READABLE,
                Trigger::Edge,
            )
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn pipe_hang_up_is_reported_once_in_edge_mode() {
    each_backend(|selector| {
        let (reader, writer) = io::pipe().unwrap();
        selector
            .register(
                reader.as_raw_fd(),
                Token(10),
                Interest::READABLE,
                Trigger::Edge,
            )
            .unwrap();
        drop(writer);
        let events = select(selector, LONG);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].token, Token(10));
        assert!(
            events[0].is_readable() && events[0].is_read_closed(),
            "{events:?}"
        );
        // Still hung up, but no new edge: no busy loop.
        assert_eq!(tokens(selector, QUIET), []);
        assert_eq!(tokens(selector, QUIET), []);
        selector.unregister(reader.as_raw_fd()).unwrap();
    });
}

#[test]
fn peer_close_is_reported_as_read_closed() {
    each_backend(|selector| {
        let (mut a, b) = socketpair();
        selector
            .register(a.as_raw_fd(), Token(11), Interest::READABLE, Trigger::Edge)
            .unwrap();
        drop(b);
        let events = select(selector, LONG);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(
            events[0].is_readable() && events[0].is_read_closed(),
            "{events:?}"
        );
        assert_eq!(drain(&mut a), 0); // EOF
        selector.unregister(a.as_raw_fd()).unwrap();
    });
}

#[test]
fn refused_connect_is_reported_as_an_error() {
    each_backend(|selector| {
        // A port that was just free: nothing listens there any more.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_nonblocking(true).unwrap();
        match socket.connect(&addr.into()) {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            // Refused synchronously: nothing left to observe.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return,
            other => panic!("unexpected connect result {other:?}"),
        }
        selector
            .register(socket.as_raw_fd(), Token(12), Interest::BOTH, Trigger::Edge)
            .unwrap();
        let events = select(selector, LONG);
        assert!(!events.is_empty());
        assert!(events.iter().all(|e| e.token == Token(12)));
        assert!(
            events.iter().any(|e| e.is_error() || e.is_read_closed()),
            "{events:?}"
        );
        assert_eq!(
            socket.take_error().unwrap().map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionRefused)
        );
        selector.unregister(socket.as_raw_fd()).unwrap();
    });
}

#[test]
fn notify_from_another_thread_interrupts_an_unbounded_select() {
    each_backend(|selector| {
        // A rescue: if the wake-up were lost, the data written here ends the select anyway
        // (and the test fails on the event) instead of hanging.
        let (a, mut b) = socketpair();
        selector
            .register(a.as_raw_fd(), Token(13), Interest::READABLE, Trigger::Edge)
            .unwrap();
        let (done, finished) = mpsc::channel::<()>();
        let start = Instant::now();
        let mut events = Events::with_capacity(16);
        thread::scope(|scope| {
            let b = &mut b;
            scope.spawn(move || {
                thread::sleep(QUIET);
                selector.notify().unwrap();
                if finished.recv_timeout(LONG).is_err() {
                    b.write_all(b"rescue").unwrap();
                }
            });
            selector.select(&mut events, None).unwrap();
            done.send(()).unwrap();
        });
        let elapsed = start.elapsed();
        assert!(events.is_empty(), "the wake-up was reported: {events:?}");
        assert!(elapsed < PROMPT, "select(None) took {elapsed:?}");
        selector.unregister(a.as_raw_fd()).unwrap();
    });
}

#[test]
fn notify_before_select_makes_the_next_select_return_promptly() {
    each_backend(|selector| {
        selector.notify().unwrap();
        let start = Instant::now();
        assert_eq!(select(selector, LONG), []);
        assert!(start.elapsed() < PROMPT, "took {:?}", start.elapsed());
        // The wake-up was consumed: the next select sleeps its full timeout.
        let start = Instant::now();
        assert_eq!(select(selector, QUIET), []);
        assert!(start.elapsed() >= QUIET, "took {:?}", start.elapsed());
    });
}

#[test]
fn many_notifies_coalesce_into_one_wake_up() {
    each_backend(|selector| {
        for _ in 0..10_000 {
            selector.notify().unwrap();
        }
        let start = Instant::now();
        assert_eq!(select(selector, LONG), []);
        assert!(start.elapsed() < PROMPT, "took {:?}", start.elapsed());
        let start = Instant::now();
        assert_eq!(select(selector, QUIET), []);
        assert!(start.elapsed() >= QUIET, "took {:?}", start.elapsed());
        // And the wake-up still works afterwards.
        selector.notify().unwrap();
        let start = Instant::now();
        assert_eq!(select(selector, LONG), []);
        assert!(start.elapsed() < PROMPT, "took {:?}", start.elapsed());
    });
}

#[test]
fn timeout_is_never_early() {
    each_backend(|selector| {
        for timeout in [
            Duration::from_millis(30),
            Duration::from_micros(1500), // not a whole number of milliseconds
            Duration::from_nanos(1),
        ] {
            let start = Instant::now();
            assert_eq!(select(selector, timeout), []);
            let elapsed = start.elapsed();
            assert!(elapsed >= timeout, "select({timeout:?}) took {elapsed:?}");
        }
        // Zero polls and returns.
        let start = Instant::now();
        assert_eq!(select(selector, Duration::ZERO), []);
        assert!(start.elapsed() < PROMPT);
    });
}

#[test]
fn events_buffer_capacity_bounds_one_select() {
    each_backend(|selector| {
        let pairs: Vec<_> = (0..5).map(|_| socketpair()).collect();
        for (i, (a, _)) in pairs.iter().enumerate() {
            selector
                .register(
                    a.as_raw_fd(),
                    Token(100 + i),
                    Interest::WRITABLE,
                    Trigger::Level,
                )
                .unwrap();
        }
        let mut events = Events::with_capacity(2);
        selector.select(&mut events, Some(LONG)).unwrap();
        assert!(!events.is_empty() && events.len() <= 2, "{events:?}");
        // A bigger buffer gets them all (level: they are still writable).
        let mut events = Events::with_capacity(16);
        selector.select(&mut events, Some(LONG)).unwrap();
        let mut seen: Vec<_> = events.iter().map(|e| e.token.0).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, [100, 101, 102, 103, 104]);
        for (a, _) in &pairs {
            selector.unregister(a.as_raw_fd()).unwrap();
        }
    });
}

/// How many times the no-op SIGURG handler ran.
static SIGNALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Installs `count_signal` for SIGURG *without* `SA_RESTART`, so a blocked syscall in the
/// signalled thread fails with EINTR. SIGURG is ignored by default, so a stray one elsewhere
/// in the test process is harmless.
fn install_sigurg_handler() {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags, SIG_DFL) that we
    // then fill in; it is plain data.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = 0; // No SA_RESTART: interrupted syscalls return EINTR.
    // SAFETY: `sigemptyset` writes the mask through a valid pointer to our local `action`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is fully initialized and outlives the call; the old action pointer may
    // be null. The handler is async-signal-safe: it only does an atomic add.
    let rc = unsafe { libc::sigaction(libc::SIGURG, &action, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "sigaction: {}", io::Error::last_os_error());
}

#[test]
fn eintr_is_retried_with_the_remaining_timeout() {
    install_sigurg_handler();
    each_backend(|selector| {
        const TIMEOUT: Duration = Duration::from_millis(200);
        // SAFETY: `pthread_self` has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let before = SIGNALS.load(std::sync::atomic::Ordering::Relaxed);
        let start = Instant::now();
        let mut events = Events::with_capacity(16);
        let result = thread::scope(|scope| {
            let killer = scope.spawn(move || {
                for _ in 0..4 {
                    thread::sleep(Duration::from_millis(30));
                    // SAFETY: `me` is the selecting thread, which is alive: it joins this
                    // thread (end of `thread::scope`) before it can return or exit.
                    let rc = unsafe { libc::pthread_kill(me, libc::SIGURG) };
                    assert_eq!(rc, 0);
                }
            });
            let result = selector.select(&mut events, Some(TIMEOUT));
            killer.join().unwrap();
            result
        });
        let elapsed = start.elapsed();
        result.unwrap();
        assert!(events.is_empty(), "{events:?}");
        assert!(
            elapsed >= TIMEOUT,
            "select returned early after {elapsed:?}"
        );
        assert!(SIGNALS.load(std::sync::atomic::Ordering::Relaxed) > before);
    });
}
