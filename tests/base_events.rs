//! Real-OS tests of the event loop core (`corio::EventLoop`, asyncio's `base_events`).
//!
//! Each test is named after the behaviour it pins or the failure it guards against (the `Bnn`
//! numbers refer to `failure-modes.md` in the shared reference). Timing assertions are lower
//! bounds ("never early") or generous upper bounds for liveness, so a loaded machine cannot
//! make them flaky.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use corio::net::{TcpListener, TcpStream};
use corio::selector::SelectorKind;
use corio::{EventLoop, ExceptionContext};

/// A small deterministic random generator (xorshift64*), so failures can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

/// Installs an exception handler that records every report; returns the record.
fn record_reports(ev: &EventLoop) -> Log<ExceptionContext> {
    let reports = log();
    let r = reports.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
        r.borrow_mut().push(ctx.clone())
    }));
    reports
}

/// Runs the loop for `n` turns.
fn turns(ev: &EventLoop, n: usize) {
    ev.run_until_complete(async move {
        for _ in 0..n {
            corio::yield_now().await;
        }
    });
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

// ---- call_soon and the ready queue ---------------------------------------------------------

#[test]
fn call_soon_runs_callbacks_in_fifo_order() {
    let ev = EventLoop::new().unwrap();
    let seen = log();
    for i in 0..1000 {
        let s = seen.clone();
        ev.call_soon(move || s.borrow_mut().push(i));
    }
    let stopper = ev.clone();
    ev.call_soon(move || stopper.stop());
    ev.run_forever();
    assert_eq!(*seen.borrow(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn callback_scheduled_while_the_ready_queue_runs_waits_for_the_next_turn() {
    let ev = EventLoop::new().unwrap();
    let seen = log();
    let (s, e) = (seen.clone(), ev.clone());
    ev.call_soon(move || {
        s.borrow_mut().push("a");
        let s2 = s.clone();
        e.call_soon(move || s2.borrow_mut().push("b"));
        // stop() ends the loop after the current turn: "b" belongs to the next one.
        e.stop();
    });
    let s = seen.clone();
    ev.call_soon(move || s.borrow_mut().push("c"));
    ev.run_forever();
    assert_eq!(
        *seen.borrow(),
        ["a", "c"],
        "b was scheduled during the turn"
    );

    let stopper = ev.clone();
    ev.call_soon(move || stopper.stop());
    ev.run_forever();
    assert_eq!(*seen.borrow(), ["a", "c", "b"]);
}

/// A callback that reschedules itself forever, the way a badly written busy task would.
fn spin(ev: EventLoop, count: Rc<Cell<u64>>, limit: u64) {
    count.set(count.get() + 1);
    if count.get() >= limit {
        ev.stop(); // starved: give up so the test fails instead of hanging
        return;
    }
    let e = ev.clone();
    ev.call_soon(move || spin(e, count, limit));
}

#[test]
fn self_rescheduling_callback_does_not_starve_io_or_timers() {
    const LIMIT: u64 = 200_000;
    let ev = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let spins = Rc::new(Cell::new(0));
    let (io_seen, timer_seen) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));

    let (e, s) = (ev.clone(), spins.clone());
    ev.call_soon(move || spin(e, s, LIMIT));

    let (e, seen, other) = (ev.clone(), io_seen.clone(), timer_seen.clone());
    ev.add_reader(a.as_raw_fd(), move || {
        seen.set(true);
        if other.get() {
            e.stop();
        }
    })
    .unwrap();
    let (e, seen, other) = (ev.clone(), timer_seen.clone(), io_seen.clone());
    ev.call_later(Duration::from_millis(1), move || {
        seen.set(true);
        if other.get() {
            e.stop();
        }
    });
    b.write_all(b"x").unwrap();

    ev.run_forever();
    assert!(ev.remove_reader(a.as_raw_fd()));
    assert!(
        io_seen.get(),
        "the socket event never got through ({} spins)",
        spins.get()
    );
    assert!(
        timer_seen.get(),
        "the timer never fired ({} spins)",
        spins.get()
    );
    assert!(spins.get() < LIMIT);
}

// ---- timers -------------------------------------------------------------------------------

#[test]
fn call_at_and_call_later_never_fire_early() {
    let ev = EventLoop::new().unwrap();
    let mut rng = Rng::new(0x5eed);
    let early = log::<String>();
    let fired = Rc::new(Cell::new(0));
    let order = log::<Instant>();
    let start = ev.time();
    for i in 0..1000 {
        let offset = Duration::from_nanos(rng.below(1_500_000)); // 0 to 1.5 ms
        let (e, early, fired, order) = (ev.clone(), early.clone(), fired.clone(), order.clone());
        if i % 2 == 0 {
            let when = start + offset;
            ev.call_at(when, move || {
                let (now, real) = (e.time(), Instant::now());
                if now < when || real < when {
                    early
                        .borrow_mut()
                        .push(format!("call_at #{i}: {:?} early", when - now));
                }
                order.borrow_mut().push(when);
                fired.set(fired.get() + 1);
            });
        } else {
            let earliest = ev.time() + offset;
            ev.call_later(offset, move || {
                let now = e.time();
                if now < earliest {
                    early.borrow_mut().push(format!("call_later #{i}"));
                }
                fired.set(fired.get() + 1);
            });
        }
    }
    ev.run_until_complete(corio::sleep(Duration::from_millis(20)));
    assert!(early.borrow().is_empty(), "{:?}", early.borrow());
    assert_eq!(fired.get(), 1000);
    let order = order.borrow();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "call_at timers fired out of deadline order"
    );
}

#[test]
fn equal_deadlines_fire_in_scheduling_order_with_interleaved_cancels() {
    // B15: ties broken by scheduling order; cancelled neighbours do not reorder survivors.
    let ev = EventLoop::new().unwrap();
    let when = ev.time() + Duration::from_millis(5);
    let seen = log();
    let mut handles = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1000 {
        let s = seen.clone();
        handles.push(ev.call_at(when, move || s.borrow_mut().push(i)));
        // Cancel 300 of them, some right away and some scheduled a while ago.
        if i % 10 == 3 {
            handles[i].cancel();
        }
        if i % 10 == 9 {
            handles[i - 4].cancel();
        }
        if i % 10 == 8 {
            handles[i - 8].cancel();
        }
    }
    for (i, h) in handles.iter().enumerate() {
        if !h.cancelled() {
            expected.push(i);
        }
    }
    assert_eq!(expected.len(), 700);
    ev.run_until_complete(corio::sleep(Duration::from_millis(10)));
    assert_eq!(*seen.borrow(), expected);
}

#[test]
fn cancelled_handles_and_timers_never_run() {
    let ev = EventLoop::new().unwrap();
    let ran = log::<&str>();

    let r = ran.clone();
    ev.call_soon(move || r.borrow_mut().push("soon")).cancel();
    let r = ran.clone();
    ev.call_later(Duration::from_millis(1), move || {
        r.borrow_mut().push("later")
    })
    .cancel();

    // B37: in one turn, #1 cancels #2 (already queued) and schedules #4 (next turn).
    let victim: Rc<RefCell<Option<corio::Handle>>> = Rc::new(RefCell::new(None));
    let (r, v, e) = (ran.clone(), victim.clone(), ev.clone());
    ev.call_soon(move || {
        r.borrow_mut().push("#1");
        v.borrow().as_ref().unwrap().cancel();
        let r4 = r.clone();
        e.call_soon(move || r4.borrow_mut().push("#4"));
    });
    let r = ran.clone();
    *victim.borrow_mut() = Some(ev.call_soon(move || r.borrow_mut().push("#2")));
    let r = ran.clone();
    ev.call_soon(move || r.borrow_mut().push("#3"));

    // Two timers due together: the first cancels the second after both became due.
    let at = ev.time() + Duration::from_millis(2);
    let second: Rc<RefCell<Option<corio::TimerHandle>>> = Rc::new(RefCell::new(None));
    let (r, s) = (ran.clone(), second.clone());
    ev.call_at(at, move || {
        r.borrow_mut().push("t1");
        s.borrow().as_ref().unwrap().cancel();
    });
    let r = ran.clone();
    *second.borrow_mut() = Some(ev.call_at(at, move || r.borrow_mut().push("t2")));

    ev.run_until_complete(corio::sleep(Duration::from_millis(10)));
    assert_eq!(*ran.borrow(), ["#1", "#3", "#4", "t1"]);
    assert!(victim.borrow().as_ref().unwrap().cancelled());
    assert!(second.borrow().as_ref().unwrap().cancelled());
}

#[test]
fn huge_durations_do_not_panic_stay_pending_and_can_be_cancelled() {
    // B18: Instant + Duration::MAX overflows; corio saturates to "never".
    let ev = EventLoop::new().unwrap();
    let fired = Rc::new(Cell::new(0));
    let huge = [
        Duration::MAX,
        Duration::from_secs(u64::MAX / 10),
        Duration::from_secs(1_000_000_000_000),
    ];
    let mut timers = Vec::new();
    for d in huge {
        let f = fired.clone();
        timers.push(ev.call_later(d, move || f.set(f.get() + 1)));
    }
    let f = fired.clone();
    let far = ev.time() + Duration::from_secs(100 * 365 * 86_400);
    timers.push(ev.call_at(far, move || f.set(f.get() + 1)));
    let sleepers: Vec<_> = huge
        .iter()
        .map(|&d| {
            let f = fired.clone();
            ev.create_task(async move {
                corio::sleep(d).await;
                f.set(f.get() + 1);
            })
        })
        .collect();

    ev.run_until_complete(corio::sleep(Duration::from_millis(20)));
    assert_eq!(fired.get(), 0);
    for t in &timers {
        assert!(!t.cancelled());
        assert!(t.when() > ev.time() + Duration::from_secs(365 * 86_400));
    }
    assert!(sleepers.iter().all(|t| !t.done()));

    for t in &timers {
        t.cancel();
        assert!(t.cancelled());
    }
    for t in &sleepers {
        assert!(t.cancel(Some("enough")));
    }
    for t in sleepers {
        assert!(ev.run_until_complete(t).unwrap_err().is_cancelled());
    }
    // Nothing is left: the loop does not wait for the cancelled giants.
    let t0 = Instant::now();
    turns(&ev, 3);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(fired.get(), 0);
}

#[test]
fn b19_timer_due_during_a_blocking_callback_fires_right_after_it() {
    // B19: the poll timeout is computed from a fresh clock, not the time the turn began; with
    // a stale clock the loop would sleep another ~140 ms after the callback.
    let ev = EventLoop::new().unwrap();
    let fired_at = Rc::new(Cell::new(None));
    let f = fired_at.clone();
    let deadline = ev.time() + Duration::from_millis(140);
    ev.call_at(deadline, move || f.set(Some(Instant::now())));
    let block_end = Rc::new(Cell::new(None));
    let b = block_end.clone();
    ev.call_soon(move || {
        thread::sleep(Duration::from_millis(150));
        b.set(Some(Instant::now()));
    });
    ev.run_until_complete(corio::sleep(Duration::from_millis(300)));
    let fired = fired_at.get().expect("the timer never fired");
    let ended = block_end.get().unwrap();
    assert!(fired >= deadline);
    assert!(
        fired.duration_since(ended) < Duration::from_millis(100),
        "the timer fired {:?} after the blocking callback ended",
        fired.duration_since(ended)
    );
}

#[test]
fn virtual_time_loop_runs_a_one_hour_sleep_instantly() {
    let ev = EventLoop::builder().virtual_time(true).build().unwrap();
    let t0 = ev.time();
    let wall = Instant::now();
    let order = log();
    let o = order.clone();
    ev.call_later(Duration::from_secs(1800), move || {
        o.borrow_mut().push("half")
    });
    ev.run_until_complete(async {
        corio::sleep(Duration::from_secs(3600)).await;
        order.borrow_mut().push("hour");
    });
    assert!(ev.time() - t0 >= Duration::from_secs(3600));
    assert!(wall.elapsed() < Duration::from_secs(5));
    assert_eq!(*order.borrow(), ["half", "hour"]);
}

// ---- run, stop, close ----------------------------------------------------------------------

#[test]
fn run_forever_returns_after_stop_from_a_timer() {
    let ev = EventLoop::new().unwrap();
    let inside = Rc::new(Cell::new(false));
    let (e, i) = (ev.clone(), inside.clone());
    let t0 = Instant::now();
    ev.call_later(Duration::from_millis(10), move || {
        i.set(e.is_running());
        e.stop();
    });
    assert!(!ev.is_running());
    ev.run_forever();
    assert!(t0.elapsed() >= Duration::from_millis(10));
    assert!(inside.get(), "is_running() inside the loop");
    assert!(!ev.is_running());
}

#[test]
fn stop_before_run_forever_runs_one_turn_then_returns() {
    let ev = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    ev.call_soon(move || r.set(true));
    // Should the early stop() be forgotten, this watchdog ends the run and the test fails.
    let (watchdog_fired, e) = (Rc::new(Cell::new(false)), ev.clone());
    let w = watchdog_fired.clone();
    let watchdog = ev.call_later(Duration::from_secs(5), move || {
        w.set(true);
        e.stop();
    });
    ev.stop();
    ev.run_forever();
    assert!(ran.get());
    assert!(
        !watchdog_fired.get(),
        "run_forever ignored the earlier stop()"
    );
    watchdog.cancel();
}

#[test]
fn stop_inside_run_until_complete_panics_with_asyncios_message() {
    let ev = EventLoop::new().unwrap();
    let err = catch_unwind(AssertUnwindSafe(|| {
        ev.run_until_complete(async {
            corio::get_running_loop().stop();
            corio::sleep(Duration::from_secs(3600)).await;
        })
    }))
    .unwrap_err();
    assert_eq!(
        panic_text(err.as_ref()),
        "Event loop stopped before Future completed."
    );
    assert!(!ev.is_running());
    assert_eq!(ev.run_until_complete(async { 5 }), 5, "the loop is usable");
}

#[test]
fn close_while_running_panics_and_closing_twice_is_harmless() {
    let ev = EventLoop::new().unwrap();
    let msg = ev.run_until_complete(async {
        let running = corio::get_running_loop();
        let err = catch_unwind(AssertUnwindSafe(|| running.close())).unwrap_err();
        assert!(running.is_running());
        assert!(!running.is_closed());
        panic_text(err.as_ref())
    });
    assert!(
        msg.contains("Cannot close a running event loop"),
        "message: {msg}"
    );
    assert!(!ev.is_closed());
    let remote = ev.remote();
    ev.close();
    assert!(ev.is_closed());
    assert!(remote.is_closed());
    ev.close();
    assert!(ev.is_closed());
    assert!(
        !remote.call_soon_threadsafe(|| {}),
        "a closed loop refuses work"
    );
    let err = catch_unwind(AssertUnwindSafe(|| ev.call_soon(|| {}))).unwrap_err();
    assert!(panic_text(err.as_ref()).contains("Event loop is closed"));
}

#[test]
fn get_running_loop_inside_and_try_get_running_loop_none_outside() {
    assert!(corio::try_get_running_loop().is_none());
    let err = catch_unwind(corio::get_running_loop).unwrap_err();
    assert!(panic_text(err.as_ref()).contains("no running event loop"));

    let ev = EventLoop::new().unwrap();
    let in_callback = Rc::new(Cell::new(false));
    let c = in_callback.clone();
    ev.call_soon(move || c.set(corio::try_get_running_loop().is_some()));
    ev.run_until_complete(async {
        let ev = corio::get_running_loop();
        assert!(ev.is_running());
        assert!(corio::try_get_running_loop().is_some());
        corio::yield_now().await;
    });
    assert!(in_callback.get());
    assert!(corio::try_get_running_loop().is_none());
}

// ---- the thread-safe door -------------------------------------------------------------------

#[test]
fn call_soon_threadsafe_wakes_a_loop_blocked_in_select() {
    // B11: a helper sleeps a random 0-2 ms, then stops the loop from its thread. A lost
    // wake-up would leave the loop asleep until the 1 s watchdog.
    const ITERATIONS: usize = 10_000;
    let ev = EventLoop::new().unwrap();
    let remote = ev.remote();
    let (tx, rx) = mpsc::channel::<u64>();
    let helper = thread::spawn(move || {
        for micros in rx {
            thread::sleep(Duration::from_micros(micros));
            remote.call_soon_threadsafe(|| corio::get_running_loop().stop());
        }
    });
    let mut rng = Rng::new(11);
    let mut slowest = Duration::ZERO;
    for i in 0..ITERATIONS {
        let timed_out = Rc::new(Cell::new(false));
        let (t, e) = (timed_out.clone(), ev.clone());
        let watchdog = ev.call_later(Duration::from_secs(1), move || {
            t.set(true);
            e.stop();
        });
        let t0 = Instant::now();
        tx.send(rng.below(2001)).unwrap();
        ev.run_forever();
        slowest = slowest.max(t0.elapsed());
        watchdog.cancel();
        assert!(!timed_out.get(), "iteration {i}: the wake-up was lost");
    }
    drop(tx);
    helper.join().unwrap();
    assert!(slowest < Duration::from_secs(1), "slowest: {slowest:?}");
}

#[test]
fn call_soon_threadsafe_before_the_loop_starts_runs_each_callback_once_in_order() {
    const N: usize = 100_000;
    let ev = EventLoop::new().unwrap();
    let remote = ev.remote();
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..N).map(|_| AtomicU32::new(0)).collect());
    let order = Arc::new(Mutex::new(Vec::with_capacity(N)));
    let (c, o) = (counts.clone(), order.clone());
    thread::spawn(move || {
        for i in 0..N {
            let (c, o) = (c.clone(), o.clone());
            assert!(remote.call_soon_threadsafe(move || {
                c[i].fetch_add(1, Ordering::Relaxed);
                o.lock().unwrap().push(i);
            }));
        }
        remote.call_soon_threadsafe(|| corio::get_running_loop().stop());
    })
    .join()
    .unwrap();
    ev.run_forever();
    turns(&ev, 3); // nothing runs twice later either
    assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    assert_eq!(*order.lock().unwrap(), (0..N).collect::<Vec<_>>());
}

// ---- exceptions ------------------------------------------------------------------------------

#[test]
fn panic_in_a_callback_reaches_the_exception_handler_and_the_loop_keeps_running() {
    let ev = EventLoop::new().unwrap();
    let reports = record_reports(&ev);
    let after = Rc::new(Cell::new(0));
    ev.call_soon(|| panic!("boom in call_soon"));
    let a = after.clone();
    ev.call_soon(move || a.set(a.get() + 1));
    ev.call_later(Duration::from_millis(1), || panic!("boom in call_later"));
    let a = after.clone();
    ev.call_later(Duration::from_millis(2), move || a.set(a.get() + 1));
    ev.run_until_complete(corio::sleep(Duration::from_millis(10)));
    assert_eq!(after.get(), 2, "callbacks after the panics still ran");
    let reports = reports.borrow();
    assert_eq!(reports.len(), 2, "{reports:?}");
    for (r, text) in reports
        .iter()
        .zip(["boom in call_soon", "boom in call_later"])
    {
        assert_eq!(r.message, "Exception in callback");
        assert_eq!(r.panic.as_deref(), Some(text));
    }
    assert!(!ev.is_running());
    assert_eq!(ev.run_until_complete(async { 1 }), 1);
}

#[test]
fn panicking_exception_handler_does_not_kill_the_loop() {
    let ev = EventLoop::new().unwrap();
    ev.set_exception_handler(Some(|_: &EventLoop, _: &ExceptionContext| {
        panic!("the handler itself fails")
    }));
    let ran = Rc::new(Cell::new(false));
    ev.call_soon(|| panic!("first"));
    let r = ran.clone();
    ev.call_soon(move || r.set(true));
    turns(&ev, 2);
    assert!(ran.get());
}

/// Set in the child process that [`default_exception_handler_writes_to_stderr`] starts.
const CHILD_ENV: &str = "CORIO_BASE_EVENTS_CHILD";

#[test]
fn default_exception_handler_writes_to_stderr() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // The child: no handler set, a callback panics, the default handler reports it.
        let ev = EventLoop::new().unwrap();
        ev.call_soon(|| panic!("boom-from-child"));
        turns(&ev, 2);
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "default_exception_handler_writes_to_stderr",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    // The panic hook also prints the message; this line is the handler's own.
    assert!(
        stderr.contains("corio: Exception in callback: boom-from-child"),
        "stderr was: {stderr}"
    );
}

// ---- add_reader / add_writer ---------------------------------------------------------------

#[test]
fn add_reader_is_level_triggered_and_remove_reader_stops_it() {
    let ev = EventLoop::new().unwrap();
    let (mut r, mut w) = std::io::pipe().unwrap();
    let fd = r.as_raw_fd();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    ev.add_reader(fd, move || c.set(c.get() + 1)).unwrap();
    turns(&ev, 10);
    assert_eq!(calls.get(), 0, "nothing to read yet");

    w.write_all(b"x").unwrap();
    turns(&ev, 10);
    assert!(
        calls.get() >= 5,
        "level-triggered: called on every turn while unread, got {}",
        calls.get()
    );

    // Replacing the reader: only the new callback runs.
    let replaced = Rc::new(Cell::new(0));
    let c = replaced.clone();
    ev.add_reader(fd, move || c.set(c.get() + 1)).unwrap();
    let before = calls.get();
    turns(&ev, 5);
    assert_eq!(calls.get(), before, "the replaced reader no longer runs");
    assert!(replaced.get() >= 2);

    assert!(ev.remove_reader(fd));
    let frozen = replaced.get();
    turns(&ev, 5);
    assert_eq!(replaced.get(), frozen, "remove_reader stops the callback");
    assert!(!ev.remove_reader(fd), "nothing left to remove");

    // Drained: a fresh reader is quiet until new data comes.
    let mut buf = [0u8; 8];
    assert_eq!(r.read(&mut buf).unwrap(), 1);
    let c = calls.clone();
    calls.set(0);
    ev.add_reader(fd, move || c.set(c.get() + 1)).unwrap();
    turns(&ev, 5);
    assert_eq!(calls.get(), 0);
    w.write_all(b"y").unwrap();
    turns(&ev, 3);
    assert!(calls.get() >= 1);
    assert!(ev.remove_reader(fd));
}

#[test]
fn add_writer_is_called_while_writable_and_remove_writer_stops_it() {
    let ev = EventLoop::new().unwrap();
    let (_r, w) = std::io::pipe().unwrap();
    let fd = w.as_raw_fd();
    assert!(!ev.remove_writer(fd));
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    ev.add_writer(fd, move || c.set(c.get() + 1)).unwrap();
    turns(&ev, 5);
    assert!(calls.get() >= 3, "an empty pipe is writable on every turn");
    assert!(ev.remove_writer(fd));
    let frozen = calls.get();
    turns(&ev, 5);
    assert_eq!(calls.get(), frozen);
    assert!(!ev.remove_writer(fd));
}

// ---- both selectors ------------------------------------------------------------------------

fn echo_on(kind: SelectorKind, expected_name: &str) {
    let ev = EventLoop::builder().selector(kind).build().unwrap();
    assert_eq!(ev.selector_name(), expected_name);
    ev.run_until_complete(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = corio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            loop {
                match conn.read(&mut buf).await.unwrap() {
                    0 => break,
                    n => conn.write_all(&buf[..n]).await.unwrap(),
                }
            }
        });
        let client = TcpStream::connect(addr).await.unwrap();
        for msg in [&b"hello"[..], b"a bit longer message", &[7u8; 3000]] {
            client.write_all(msg).await.unwrap();
            let mut got = vec![0u8; msg.len()];
            let mut filled = 0;
            while filled < msg.len() {
                let n = client.read(&mut got[filled..]).await.unwrap();
                assert_ne!(n, 0, "early EOF");
                filled += n;
            }
            assert_eq!(got, msg);
        }
        client.shutdown(std::net::Shutdown::Write).unwrap();
        server.await.unwrap();
    });
}

#[test]
fn socket_echo_works_on_the_epoll_selector() {
    echo_on(SelectorKind::Epoll, "epoll");
}

#[test]
fn socket_echo_works_on_the_polling_selector() {
    echo_on(SelectorKind::Polling, "polling");
}
