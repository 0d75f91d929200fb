//! Signals on the loop: handlers run as ordinary callbacks on the loop thread, no delivery
//! after the last one is lost, every loop sees each signal, waiting futures, and the default
//! action coming back once the last handler is removed.
//!
//! A test binary of its own (signals are process-wide) using only SIGUSR1 and SIGUSR2, and
//! one lock: removing the last handler of a signal restores its default action, which for
//! SIGUSR1/SIGUSR2 is to terminate, so no test may raise a signal while another removes it.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corio::signal::{SIGINT, SIGTERM, SIGUSR1, SIGUSR2, Signals};
use signal_hook::low_level::raise;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn b36_the_handler_runs_on_the_loop_thread_and_the_last_signal_is_never_lost() {
    let _g = serial();
    let ev = corio::EventLoop::new().unwrap();
    let loop_thread = std::thread::current().id();
    let runs = Rc::new(Cell::new(0u32));
    let seen_after_last = Rc::new(Cell::new(false));
    let last_sent = Arc::new(AtomicBool::new(false));
    {
        let (runs, seen_after_last, last_sent) =
            (runs.clone(), seen_after_last.clone(), last_sent.clone());
        ev.add_signal_handler(SIGUSR1, move || {
            // Ordinary code: allocation, locks, thread checks are all fine here.
            assert_eq!(std::thread::current().id(), loop_thread);
            let _ = format!("run {}", runs.get());
            runs.set(runs.get() + 1);
            if last_sent.load(Ordering::SeqCst) {
                seen_after_last.set(true);
            }
        })
        .unwrap();
    }
    // Another thread raises SIGUSR1 in a tight loop while the loop runs.
    let sender = {
        let last_sent = last_sent.clone();
        std::thread::spawn(move || {
            for i in 0..2000 {
                signal_hook::low_level::raise(SIGUSR1).unwrap();
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            last_sent.store(true, Ordering::SeqCst);
            signal_hook::low_level::raise(SIGUSR1).unwrap();
        })
    };
    ev.run_until_complete(async {
        let t0 = Instant::now();
        while !seen_after_last.get() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the last signal was lost"
            );
            corio::sleep(Duration::from_millis(1)).await;
        }
    });
    sender.join().unwrap();
    // Deliveries coalesce: at least one run, at most one per signal sent.
    assert!(runs.get() >= 2 && runs.get() <= 2001, "{}", runs.get());
    assert!(ev.remove_signal_handler(SIGUSR1));
    assert!(!ev.remove_signal_handler(SIGUSR1));
}

#[test]
fn a_panicking_handler_is_reported_and_the_loop_goes_on() {
    let _g = serial();
    let ev = corio::EventLoop::new().unwrap();
    let reports = Rc::new(Cell::new(0));
    let r = reports.clone();
    ev.set_exception_handler(Some(
        move |_: &corio::EventLoop, ctx: &corio::ExceptionContext| {
            assert_eq!(ctx.panic.as_deref(), Some("handler failed"));
            r.set(r.get() + 1);
        },
    ));
    ev.add_signal_handler(SIGUSR2, || panic!("handler failed"))
        .unwrap();
    ev.run_until_complete(async {
        let mut signals = Signals::new([SIGUSR2]).unwrap();
        raise(SIGUSR2).unwrap();
        assert_eq!(signals.recv().await, SIGUSR2);
        corio::yield_now().await;
    });
    assert_eq!(reports.get(), 1);
    ev.remove_signal_handler(SIGUSR2);
}

#[test]
fn signals_streams_and_wait() {
    let _g = serial();
    corio::run(async {
        let mut both = Signals::new([SIGUSR1, SIGUSR2]).unwrap();
        assert_eq!(both.try_recv(), None);
        let one = corio::signal::wait(SIGUSR1);
        raise(SIGUSR1).unwrap();
        one.await.unwrap();
        assert_eq!(both.recv().await, SIGUSR1);
        raise(SIGUSR2).unwrap();
        assert_eq!(both.recv().await, SIGUSR2);

        // recv is cancel-safe: a delivery is consumed only when it is returned.
        let timeout = corio::spawn(async {
            corio::sleep(Duration::from_millis(20)).await;
        });
        let mut both = both;
        let waiter = corio::spawn(async move {
            let _ = corio::catch_cancel(both.recv()).await;
            both
        });
        timeout.await.unwrap();
        waiter.cancel(None);
        let mut both = waiter.await.unwrap();
        raise(SIGUSR2).unwrap();
        assert_eq!(both.recv().await, SIGUSR2);

        let err = corio::signal::wait(libc::SIGKILL).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let ev = corio::get_running_loop();
        assert!(ev.add_signal_handler(libc::SIGSEGV, || {}).is_err());
        assert!(Signals::new([0]).is_err());
    });
}

#[test]
fn every_loop_sees_each_signal() {
    let _g = serial();
    const LOOPS: usize = 4;
    let ready = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..LOOPS)
        .map(|_| {
            let ready = ready.clone();
            std::thread::spawn(move || {
                corio::run(async move {
                    let mut s = Signals::new([SIGUSR2]).unwrap();
                    ready.fetch_add(1, Ordering::SeqCst);
                    s.recv().await
                })
            })
        })
        .collect();
    while ready.load(Ordering::SeqCst) < LOOPS {
        std::thread::sleep(Duration::from_millis(1));
    }
    raise(SIGUSR2).unwrap();
    for t in threads {
        assert_eq!(t.join().unwrap(), SIGUSR2);
    }
}

/// Run in a child process (the default action kills it): with `CORIO_SIGNAL_CHILD` set, adds
/// and removes a SIGUSR1 handler, then raises SIGUSR1, which must now terminate the process.
#[test]
fn removing_the_last_handler_restores_the_default_action() {
    if std::env::var_os("CORIO_SIGNAL_CHILD").is_some() {
        let ev = corio::EventLoop::new().unwrap();
        ev.add_signal_handler(SIGUSR1, || {}).unwrap();
        assert!(ev.remove_signal_handler(SIGUSR1));
        raise(SIGUSR1).unwrap();
        std::thread::sleep(Duration::from_secs(5));
        unreachable!("SIGUSR1 should have terminated the process");
    }
    let _g = serial();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "removing_the_last_handler_restores_the_default_action",
            "--test-threads=1",
        ])
        .env("CORIO_SIGNAL_CHILD", "1")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(SIGUSR1),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn handlers_of_a_closed_loop_are_gone() {
    let _g = serial();
    let ev = corio::EventLoop::new().unwrap();
    let keeper = corio::EventLoop::new().unwrap(); // keeps SIGUSR2 handled meanwhile
    keeper.add_signal_handler(SIGUSR2, || {}).unwrap();
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    ev.add_signal_handler(SIGUSR2, move || h.set(h.get() + 1))
        .unwrap();
    ev.close();
    raise(SIGUSR2).unwrap();
    assert_eq!(hits.get(), 0);
    assert!(!ev.remove_signal_handler(SIGUSR2));
    // SIGINT and SIGTERM are handled like any other signal (the echo server's shutdown).
    keeper.add_signal_handler(SIGINT, || {}).unwrap();
    keeper.add_signal_handler(SIGTERM, || {}).unwrap();
    keeper.run_until_complete(async {
        let mut s = Signals::new([SIGTERM]).unwrap();
        raise(SIGTERM).unwrap();
        assert_eq!(s.recv().await, SIGTERM);
    });
    drop(keeper);
}

#[test]
fn the_signals_example_handles_its_own_signals_and_sigterm() {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("signals");
    let mut child = std::process::Command::new(path)
        .args(["--wait", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    use std::io::BufRead;
    while !seen.contains("press Ctrl-C") {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{seen}{rest}");
    assert!(
        seen.contains("SIGUSR1 handler ran on the loop thread: true"),
        "{seen}"
    );
    assert!(
        seen.contains("the Signals stream received SIGHUP"),
        "{seen}"
    );
    assert!(rest.contains("got SIGTERM"), "{rest}");
}
