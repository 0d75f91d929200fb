//! Composing tasks (issue 3): `gather`, `wait`, `as_completed`, `wait_for`, `timeout`,
//! `shield`, `TaskGroup`, and task introspection, on a real loop.
//!
//! Timer-heavy tests use a virtual clock (`vrun`): time stands still while there is work and
//! jumps to the next timer when the loop would wait, so "5 ms later" is exact and instant.
//! Every run has a watchdog: a hang fails the test run instead of stalling it.

#[allow(dead_code)] // each test file uses some of the shared helpers
mod support;
use support::example;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use corio::{
    Cancelled, EventLoop, ReturnWhen, Runner, Task, TaskError, TaskGroup, TimeoutError,
    as_completed, catch_cancel, gather, get_running_loop, shield, sleep, sleep_until, spawn,
    timeout, timeout_at, wait, wait_for, yield_now,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Ends the process if dropped later than `limit` after creation (a hung test).
struct Watchdog(#[allow(dead_code)] mpsc::Sender<()>);

fn watchdog(limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("composition test hung for {limit:?}; aborting");
            std::process::exit(101);
        }
    });
    Watchdog(tx)
}

/// Runs `main` as a task named `main` on a loop with a virtual clock.
fn vrun<F>(main: F) -> F::Output
where
    F: Future + 'static,
    F::Output: 'static,
{
    let _dog = watchdog(Duration::from_secs(60));
    let runner = Runner::with_builder(EventLoop::builder().virtual_time(true)).unwrap();
    let out = runner.run(main);
    runner.close();
    out
}

/// Runs `main` on a loop with the real clock.
fn rrun<F>(main: F) -> F::Output
where
    F: Future + 'static,
    F::Output: 'static,
{
    let _dog = watchdog(Duration::from_secs(120));
    corio::run(main)
}

/// Time since `t0` on the running loop's clock.
fn since(t0: Instant) -> Duration {
    get_running_loop().time() - t0
}

fn now() -> Instant {
    get_running_loop().time()
}

/// A shared log of events.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.borrow_mut().push(s.into());
    }
    fn get(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Sleeps `d` inside `catch_cancel`; on cancellation logs it, cleans up for `cleanup`, logs
/// that, and ends cancelled. Returns `name` if it slept through.
async fn worker(log: Log, name: &'static str, d: Duration, cleanup: Duration) -> &'static str {
    match catch_cancel(sleep(d)).await {
        Ok(()) => {
            log.push(format!("{name} done"));
            name
        }
        Err(c) => {
            log.push(format!("{name} {c}"));
            sleep(cleanup).await;
            log.push(format!("{name} cleaned up"));
            c.reraise().await
        }
    }
}

// ---------------------------------------------------------------------------------------
// gather

#[test]
fn gather_returns_outputs_in_argument_order_not_completion_order() {
    vrun(async {
        let log = Log::default();
        let futs = [30u64, 10, 20].map(|d| {
            let log = log.clone();
            async move {
                sleep(ms(d)).await;
                log.push(d.to_string());
                d
            }
        });
        let t0 = now();
        assert_eq!(gather(futs).await.unwrap(), [30, 10, 20]);
        assert_eq!(log.get(), ["10", "20", "30"]);
        assert_eq!(since(t0), ms(30), "concurrent, not sequential");
    });
}

#[test]
fn gather_spawns_its_children_at_once_and_they_start_next_turn() {
    vrun(async {
        let started = Rc::new(Cell::new(0));
        let futs = (0..3).map(|_| {
            let started = started.clone();
            async move { started.set(started.get() + 1) }
        });
        let g = gather(futs);
        assert_eq!(
            started.get(),
            0,
            "tasks start at the next turn, not inside gather()"
        );
        yield_now().await;
        assert_eq!(started.get(), 3, "started without the gather being awaited");
        assert_eq!(g.await.unwrap().len(), 3);
    });
}

#[test]
fn gather_of_nothing_is_empty() {
    vrun(async {
        let none: Vec<std::future::Ready<u8>> = Vec::new();
        assert!(gather(none).await.unwrap().is_empty());
        assert!(
            gather(Vec::<std::future::Ready<u8>>::new())
                .return_exceptions()
                .await
                .is_empty()
        );
    });
}

#[test]
fn gather_returns_the_first_failure_and_the_other_children_keep_running() {
    vrun(async {
        let finished = Rc::new(Cell::new(false));
        let futs = (0..2).map(|i| {
            let finished = finished.clone();
            async move {
                if i == 0 {
                    sleep(ms(1)).await;
                    panic!("child 0 failed");
                }
                sleep(ms(10)).await;
                finished.set(true);
                i
            }
        });
        let t0 = now();
        let err = gather(futs).await.unwrap_err();
        assert_eq!(err.panic_message(), Some("child 0 failed"));
        assert_eq!(since(t0), ms(1), "returned at the first failure");
        assert!(!finished.get());
        sleep(ms(20)).await;
        assert!(
            finished.get(),
            "the sibling was not cancelled: it finished normally"
        );
    });
}

#[test]
fn a_cancelled_child_fails_the_gather_with_its_message() {
    vrun(async {
        let log = Log::default();
        let g = gather(["a", "b", "c"].map(|n| worker(log.clone(), n, ms(100), ms(2))));
        yield_now().await;
        assert!(g.cancel(Some("stop")));
        let err = g.await.unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(err.to_string(), "task cancelled: stop");
        // Every child got the cancellation, with the message, and none slept through.
        sleep(ms(200)).await;
        let mut got = log.get();
        got.sort();
        assert_eq!(
            got,
            [
                "a cancelled: stop",
                "a cleaned up",
                "b cancelled: stop",
                "b cleaned up",
                "c cancelled: stop",
                "c cleaned up"
            ]
        );
    });
}

#[test]
fn gather_return_exceptions_collects_every_outcome_in_order() {
    vrun(async {
        let third = Rc::new(RefCell::new(None));
        let g = gather((0..4u64).map(|i| {
            let third = third.clone();
            async move {
                sleep(ms(10 - i)).await;
                if i == 1 {
                    panic!("one");
                }
                if i == 2 {
                    *third.borrow_mut() = corio::current_task();
                    sleep(ms(100)).await; // cancelled meanwhile
                }
                i
            }
        }))
        .return_exceptions();
        sleep(ms(9)).await;
        third.borrow().as_ref().unwrap().cancel(Some("cut"));
        let out = g.await;
        assert_eq!(*out[0].as_ref().unwrap(), 0);
        assert_eq!(out[1].as_ref().unwrap_err().panic_message(), Some("one"));
        assert_eq!(
            out[2].as_ref().unwrap_err().to_string(),
            "task cancelled: cut"
        );
        assert_eq!(*out[3].as_ref().unwrap(), 3);
    });
}

#[test]
fn cancelling_the_task_awaiting_a_gather_cancels_every_child() {
    vrun(async {
        let log = Log::default();
        let children = ["a", "b", "c"].map(|n| worker(log.clone(), n, ms(1000), ms(5)));
        let parent = spawn(async move { gather(children).await });
        sleep(ms(10)).await;
        parent.cancel(Some("stop"));
        let err = parent.await.unwrap_err();
        assert_eq!(err.to_string(), "task cancelled: stop");
        // The chain passed the message to every child; their cleanup runs on its own.
        sleep(ms(10)).await;
        let mut got = log.get();
        got.sort();
        assert_eq!(
            got,
            [
                "a cancelled: stop",
                "a cleaned up",
                "b cancelled: stop",
                "b cleaned up",
                "c cancelled: stop",
                "c cleaned up"
            ]
        );
    });
}

#[test]
fn catching_the_cancellation_around_a_gather_also_cancels_the_children() {
    vrun(async {
        let log = Log::default();
        let children = ["a", "b"].map(|n| worker(log.clone(), n, ms(1000), ms(0)));
        let parent = spawn(async move {
            match catch_cancel(gather(children)).await {
                Ok(_) => "finished",
                Err(_) => "caught",
            }
        });
        sleep(ms(1)).await;
        parent.cancel(None);
        assert_eq!(parent.await.unwrap(), "caught");
        sleep(ms(1)).await;
        assert_eq!(
            log.get().len(),
            4,
            "both children were cancelled and cleaned up"
        );
    });
}

#[test]
fn dropping_a_gather_outside_a_cancellation_detaches_the_children() {
    vrun(async {
        let log = Log::default();
        let g = gather(["a", "b"].map(|n| worker(log.clone(), n, ms(5), ms(0))));
        yield_now().await;
        drop(g);
        sleep(ms(10)).await;
        assert_eq!(log.get(), ["a done", "b done"]);
    });
}

#[test]
fn gather_inside_wait_for_times_out_after_the_children_cleaned_up() {
    vrun(async {
        let log = Log::default();
        let children = ["a", "b"].map(|n| worker(log.clone(), n, ms(1000), ms(5)));
        let t0 = now();
        let out = wait_for(gather(children), ms(10)).await;
        assert_eq!(out.unwrap_err(), TimeoutError);
        assert_eq!(
            since(t0),
            ms(15),
            "10 ms deadline, then 5 ms of the children's cleanup"
        );
        let mut got = log.get();
        got.sort();
        assert_eq!(
            got,
            ["a cancelled", "a cleaned up", "b cancelled", "b cleaned up"]
        );
    });
}

#[test]
fn gather_macro_for_different_types() {
    vrun(async {
        let (n, s, ()) = corio::gather!(async { 7u8 }, async { "seven".to_string() }, async {
            sleep(ms(1)).await
        })
        .await
        .unwrap();
        assert_eq!((n, s.as_str()), (7, "seven"));

        let failing = async {
            sleep(ms(1)).await;
            if true {
                panic!("bad");
            }
            0u32
        };
        let finished = Rc::new(Cell::new(false));
        let f2 = finished.clone();
        let slow = async move {
            sleep(ms(5)).await;
            f2.set(true);
        };
        let err = corio::gather!(failing, slow).await.unwrap_err();
        assert_eq!(err.panic_message(), Some("bad"));
        assert!(!finished.get());
        sleep(ms(10)).await;
        assert!(finished.get(), "the other child kept running");

        let (a, b, c, d, e, f) = corio::gather!(
            async { 1 },
            async { 'x' },
            async { 2.5 },
            async {
                if true {
                    panic!("d");
                }
                0i8
            },
            async { [1u8] },
            async {},
        )
        .return_exceptions()
        .await;
        assert_eq!(a.unwrap(), 1);
        assert_eq!(b.unwrap(), 'x');
        assert_eq!(c.unwrap(), 2.5);
        assert!(d.unwrap_err().is_panic());
        assert_eq!(e.unwrap(), [1]);
        f.unwrap();
    });
}

#[test]
fn cancelling_a_task_awaiting_a_tuple_gather_cancels_its_children() {
    vrun(async {
        let log = Log::default();
        let (a, b) = (
            worker(log.clone(), "a", ms(100), ms(0)),
            worker(log.clone(), "b", ms(100), ms(0)),
        );
        let parent = spawn(async move { corio::gather!(a, b).await });
        sleep(ms(1)).await;
        parent.cancel(Some("x"));
        assert!(parent.await.unwrap_err().is_cancelled());
        sleep(ms(1)).await;
        assert_eq!(log.get().len(), 4);
    });
}

#[test]
fn gather_of_100_000_tasks_completes() {
    rrun(async {
        let n = 100_000u64;
        let out = gather((0..n).map(|i| async move { i })).await.unwrap();
        assert_eq!(out.len() as u64, n);
        assert_eq!(out.iter().sum::<u64>(), n * (n - 1) / 2);
        assert!(out.iter().enumerate().all(|(i, v)| i as u64 == *v));
    });
}

/// `n` sleeps with distinct deadlines 1 µs apart, spawned in a scrambled order, each recording
/// its index when it wakes: the completions must come in deadline order.
///
/// The children yield once before reading their deadline; meanwhile the first deadline is
/// set at three times the length of that first turn (`n` first steps), so every timer is
/// registered before any is due, however fast the machine or the build. Returns (total time,
/// time beyond the inherent wait).
async fn gather_sleeps_in_deadline_order(n: usize) -> (Duration, Duration) {
    gather_sleeps(n, true).await
}

/// The body of the two tests below. `check_order`: on the real clock a preemption longer
/// than the head start (a loaded CI machine) can put deadlines in the past before their
/// sleeps are even polled, and such sleeps complete in polling order; the order itself is
/// pinned on the virtual clock, where that cannot happen.
async fn gather_sleeps(n: usize, check_order: bool) -> (Duration, Duration) {
    let t0 = Instant::now();
    let base = Rc::new(Cell::new(None::<Instant>));
    let order = Rc::new(RefCell::new(Vec::with_capacity(n)));
    let futs = (0..n).map(|k| {
        let i = (k * 7919) % n; // 7919 is prime, so this is a permutation of 0..n
        let (base, order) = (base.clone(), order.clone());
        async move {
            yield_now().await; // `base` is set during this turn, after every first step
            sleep_until(base.get().unwrap() + Duration::from_micros(i as u64)).await;
            order.borrow_mut().push(i);
        }
    });
    let g = gather(futs);
    let turn = Instant::now();
    yield_now().await; // queued behind the n first steps
    let head_start = (turn.elapsed() * 3).max(ms(20));
    base.set(Some(now() + head_start));
    let waiting = t0.elapsed() + head_start + Duration::from_micros(n as u64);
    g.await.unwrap();
    let took = t0.elapsed();
    let order = order.borrow();
    assert_eq!(order.len(), n);
    if !check_order {
        return (took, took.saturating_sub(waiting));
    }
    if let Some(pos) = order.iter().enumerate().position(|(pos, i)| pos != *i) {
        panic!(
            "completions out of deadline order at {pos}: {:?}",
            &order[pos.saturating_sub(3)..(pos + 5).min(n)]
        );
    }
    (took, took.saturating_sub(waiting))
}

#[test]
fn gather_of_100_000_sleeps_completes_in_deadline_order_virtual_clock() {
    vrun(gather_sleeps_in_deadline_order(100_000));
}

#[test]
fn gather_of_100_000_sleeps_time_per_task_real_clock() {
    let n = 100_000;
    let (took, overhead) = rrun(gather_sleeps(n, false));
    let per_task = took / n as u32;
    println!(
        "gather of {n} sleeps with distinct deadlines 1 us apart ({} build): {took:?} in all = \
         {per_task:?} per task, of which {overhead:?} = {:?} per task after the last deadline",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        overhead / n as u32,
    );
    // Timings belong in benchmarks: this bound only catches a quadratic blow-up (which would
    // take minutes), not a slowdown.
    if !cfg!(debug_assertions) {
        assert!(
            per_task < Duration::from_micros(20),
            "{per_task:?} per task"
        );
    }
}

// ---------------------------------------------------------------------------------------
// wait

fn sleeper(d: Duration, out: &'static str) -> Task<&'static str> {
    spawn(async move {
        sleep(d).await;
        out
    })
}

#[test]
fn wait_first_completed_splits_done_and_pending_and_never_cancels() {
    vrun(async {
        let tasks = vec![
            sleeper(ms(30), "c"),
            sleeper(ms(10), "a"),
            sleeper(ms(20), "b"),
        ];
        let t0 = now();
        let (done, pending) = wait(tasks, ReturnWhen::FirstCompleted, None).await;
        assert_eq!(since(t0), ms(10));
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].result().unwrap().unwrap(), "a");
        assert_eq!(pending.len(), 2);
        assert!(pending.iter().all(|t| !t.done()));
        // In a loop, as the book does.
        let mut pending = pending;
        let mut seen = Vec::new();
        while !pending.is_empty() {
            let (done, rest) = wait(pending, ReturnWhen::FirstCompleted, None).await;
            for t in done {
                seen.push(t.await.unwrap());
            }
            pending = rest;
        }
        assert_eq!(seen, ["b", "c"]);
        assert_eq!(since(t0), ms(30));
    });
}

#[test]
fn wait_all_completed_with_a_timeout_returns_the_pending_tasks_still_running() {
    vrun(async {
        let tasks = vec![sleeper(ms(5), "fast"), sleeper(ms(50), "slow")];
        let t0 = now();
        let (done, pending) = wait(tasks, ReturnWhen::AllCompleted, Some(ms(20))).await;
        assert_eq!(since(t0), ms(20), "a timeout returns, it does not raise");
        assert_eq!(done.len(), 1);
        assert_eq!(pending.len(), 1);
        assert!(
            !pending[0].done() && !pending[0].cancelled(),
            "not cancelled"
        );
        let (done, pending) = wait(pending, ReturnWhen::AllCompleted, None).await;
        assert!(pending.is_empty());
        assert_eq!(done[0].result().unwrap().unwrap(), "slow");
        assert_eq!(since(t0), ms(50));
    });
}

#[test]
fn wait_first_exception_returns_at_the_first_panic_not_at_a_cancellation() {
    vrun(async {
        let cancelled = sleeper(ms(100), "cancelled");
        let panics = spawn(async {
            sleep(ms(5)).await;
            if true {
                panic!("oops");
            }
            "never"
        });
        let slow = sleeper(ms(100), "slow");
        let c = cancelled.as_ref();
        spawn(async move {
            sleep(ms(1)).await;
            c.cancel(None);
        });
        let t0 = now();
        let (done, pending) = wait(
            vec![cancelled, panics, slow],
            ReturnWhen::FirstException,
            None,
        )
        .await;
        assert_eq!(since(t0), ms(5), "the cancellation at 1 ms did not count");
        assert_eq!(done.len(), 2);
        assert!(done[0].cancelled());
        assert!(done[1].panicked());
        assert_eq!(
            done[1].result().unwrap().unwrap_err().panic_message(),
            Some("oops")
        );
        assert_eq!(pending.len(), 1);

        // Without any panic, FirstException waits for all.
        let (done, pending) = wait(pending, ReturnWhen::FirstException, None).await;
        assert_eq!((done.len(), pending.len()), (1, 0));
    });
}

#[test]
fn cancelling_the_task_in_wait_leaves_the_waited_tasks_running() {
    vrun(async {
        let inner = sleeper(ms(10), "inner");
        let watch = inner.as_ref();
        let waiter = spawn(wait(vec![inner], ReturnWhen::AllCompleted, None));
        sleep(ms(1)).await;
        waiter.cancel(None);
        assert!(waiter.await.unwrap_err().is_cancelled());
        sleep(ms(20)).await;
        assert!(watch.done() && !watch.cancelled(), "wait never cancels");
    });
}

#[test]
fn wait_on_nothing_and_on_done_tasks_returns_at_once() {
    vrun(async {
        let (d, p) = wait(Vec::<Task<()>>::new(), ReturnWhen::AllCompleted, None).await;
        assert!(d.is_empty() && p.is_empty());
        let t = spawn(async { 1 });
        yield_now().await;
        let (d, p) = wait(vec![t], ReturnWhen::FirstCompleted, None).await;
        assert_eq!((d.len(), p.len()), (1, 0));
    });
}

// ---------------------------------------------------------------------------------------
// as_completed

#[test]
fn as_completed_yields_in_completion_order() {
    vrun(async {
        let tasks = [30u64, 10, 20].map(|d| {
            spawn(async move {
                sleep(ms(d)).await;
                d
            })
        });
        let mut it = as_completed(tasks, None);
        assert_eq!(it.len(), 3);
        let mut order = Vec::new();
        while let Some(t) = it.next().await {
            order.push(t.unwrap().await.unwrap());
        }
        assert_eq!(order, [10, 20, 30]);
        assert!(it.is_empty());
        assert!(it.next().await.is_none());
    });
}

#[test]
fn as_completed_timeout_is_reported_once_and_the_rest_keep_running() {
    vrun(async {
        let tasks = vec![sleeper(ms(5), "fast"), sleeper(ms(50), "slow")];
        let t0 = now();
        let mut it = as_completed(tasks, Some(ms(20)));
        assert_eq!(it.next().await.unwrap().unwrap().await.unwrap(), "fast");
        assert_eq!(it.next().await.unwrap().unwrap_err(), TimeoutError);
        assert_eq!(since(t0), ms(20));
        assert!(it.next().await.is_none());
        let rest = it.into_remaining();
        assert_eq!(rest.len(), 1);
        assert!(!rest[0].done(), "not cancelled");
        assert_eq!(gather_tasks(rest).await, ["slow"]);
    });
}

async fn gather_tasks<T: 'static>(tasks: Vec<Task<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[test]
fn as_completed_prefers_a_finished_task_over_a_deadline_in_the_same_turn() {
    vrun(async {
        let t = spawn(async {
            sleep(ms(10)).await;
            "on time"
        });
        yield_now().await; // t's timer is armed first
        let mut it = as_completed([t], Some(ms(10)));
        // Both are due in the same turn: t finishes before this task runs; the result wins.
        assert_eq!(it.next().await.unwrap().unwrap().await.unwrap(), "on time");
        assert!(it.next().await.is_none());
    });
}

// ---------------------------------------------------------------------------------------
// wait_for and timeout

/// A value that counts its drops, to show a result is neither lost nor leaked.
struct Resource(Rc<Cell<u32>>);

impl Drop for Resource {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn wait_for_returns_the_value_in_time() {
    vrun(async {
        let v = wait_for(
            async {
                sleep(ms(5)).await;
                42
            },
            ms(10),
        )
        .await;
        assert_eq!(v, Ok(42));
    });
}

#[test]
fn wait_for_cancels_the_inner_future_on_timeout() {
    vrun(async {
        let drops = Rc::new(Cell::new(0));
        let res = Resource(drops.clone());
        let t0 = now();
        let out = wait_for(
            async move {
                let _held = res;
                sleep(ms(1000)).await;
            },
            ms(10),
        )
        .await;
        assert_eq!(out, Err(TimeoutError));
        assert_eq!(since(t0), ms(10));
        assert_eq!(
            drops.get(),
            1,
            "the inner future was dropped before wait_for returned"
        );
    });
}

#[test]
fn wait_for_waits_for_the_inner_cleanup_before_the_timeout_error() {
    vrun(async {
        let log = Log::default();
        let t0 = now();
        let out = wait_for(worker(log.clone(), "w", ms(1000), ms(5)), ms(10)).await;
        assert_eq!(out, Err(TimeoutError));
        assert_eq!(log.get(), ["w cancelled", "w cleaned up"]);
        assert_eq!(
            since(t0),
            ms(15),
            "the timeout overran by the cleanup, as in asyncio"
        );
        assert_eq!(
            corio::current_task().unwrap().cancelling(),
            0,
            "uncancelled"
        );
    });
}

#[test]
fn wait_for_returns_a_value_the_inner_future_returns_despite_the_cancellation() {
    vrun(async {
        let cm = timeout(ms(10));
        let out = cm
            .run(async {
                match catch_cancel(sleep(ms(1000))).await {
                    Ok(()) => "slept",
                    Err(_) => "swallowed",
                }
            })
            .await;
        assert_eq!(out, Ok("swallowed"));
        assert!(cm.expired());
        assert_eq!(corio::current_task().unwrap().cancelling(), 0);
    });
}

#[test]
fn wait_for_a_spawned_task_cancels_it_and_waits_for_its_cleanup() {
    vrun(async {
        let log = Log::default();
        let task = spawn(worker(log.clone(), "t", ms(1000), ms(5)));
        let watch = task.as_ref();
        let t0 = now();
        assert_eq!(wait_for(task, ms(10)).await.unwrap_err(), TimeoutError);
        assert_eq!(since(t0), ms(15));
        assert!(watch.done() && watch.cancelled());
        assert_eq!(log.get(), ["t cancelled", "t cleaned up"]);
    });
}

#[test]
fn b23_a_result_arriving_in_the_deadline_turn_is_not_lost() {
    // The B23 race: the inner future's result is set by a callback due at the very instant
    // of the deadline, scheduled before or after the timeout's own timer.
    for callback_first in [true, false] {
        vrun(async move {
            let ev = get_running_loop();
            let drops = Rc::new(Cell::new(0));
            let fut = ev.create_future::<Rc<Resource>>();
            let deadline = now() + ms(10);
            let set = {
                let (fut, drops) = (fut.clone(), drops.clone());
                move || fut.set_result(Rc::new(Resource(drops))).unwrap()
            };
            let cm = timeout_at(deadline);
            let out = if callback_first {
                ev.call_at(deadline, set);
                cm.run(fut).await
            } else {
                let ev2 = ev.clone();
                cm.run(async move {
                    yield_now().await; // the timeout's timer is armed by now
                    ev2.call_at(deadline, set);
                    fut.await
                })
                .await
            };
            let res = out
                .expect("the result was returned, not a timeout")
                .unwrap();
            assert_eq!(drops.get(), 0);
            drop(res);
            assert_eq!(drops.get(), 1, "exactly one value, handed over");
            assert_eq!(
                cm.expired(),
                !callback_first,
                "the deadline was seen only when its timer ran first"
            );
        });
    }
}

#[test]
fn an_outside_cancellation_in_a_timeout_stays_a_cancellation() {
    vrun(async {
        let t = spawn(async { timeout(ms(100)).run(sleep(ms(1000))).await });
        sleep(ms(5)).await;
        t.cancel(Some("from outside"));
        let err = t.await.unwrap_err();
        assert_eq!(err.to_string(), "task cancelled: from outside");
    });
}

#[test]
fn cancel_during_the_cleanup_after_a_timeout_ends_the_task_cancelled() {
    vrun(async {
        let log = Log::default();
        let l2 = log.clone();
        let t = spawn(async move { wait_for(worker(l2, "w", ms(1000), ms(50)), ms(10)).await });
        sleep(ms(20)).await; // t's inner future is cleaning up after the timeout
        assert_eq!(log.get(), ["w cancelled"]);
        t.cancel(Some("hurry"));
        let err = t.await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "task cancelled: hurry",
            "not turned into a timeout"
        );
        assert_eq!(log.get(), ["w cancelled"], "the cleanup was interrupted");
    });
}

#[test]
fn cancel_while_waiting_for_a_cancelled_tasks_cleanup_is_passed_on() {
    vrun(async {
        let log = Log::default();
        let task = spawn(worker(log.clone(), "t", ms(1000), ms(50)));
        let watch = task.as_ref();
        let outer = spawn(async move { wait_for(task, ms(10)).await });
        sleep(ms(20)).await; // the task is in its 50 ms cleanup; wait_for waits for it
        assert!(!outer.done());
        outer.cancel(Some("hurry"));
        let t0 = now();
        let err = outer.await.unwrap_err();
        assert_eq!(err.to_string(), "task cancelled: hurry");
        assert_eq!(
            since(t0),
            ms(0),
            "the second cancellation cut the cleanup short"
        );
        assert!(watch.done() && watch.cancelled());
        assert_eq!(log.get(), ["t cancelled"]);
    });
}

#[test]
fn a_timeout_can_be_rescheduled_from_inside() {
    vrun(async {
        // Later.
        let cm = timeout(ms(10));
        let t0 = now();
        let out = cm
            .run(async {
                sleep(ms(5)).await;
                assert_eq!(cm.when(), Some(t0 + ms(10)));
                cm.reschedule(Some(now() + ms(20))).unwrap();
                sleep(ms(15)).await;
                "made it"
            })
            .await;
        assert_eq!(out, Ok("made it"));
        assert!(!cm.expired());
        assert_eq!(since(t0), ms(20));
        assert!(cm.reschedule(None).is_err(), "the scope has ended");

        // Sooner, and removing the deadline altogether.
        let cm = timeout(ms(100));
        let t0 = now();
        let out = cm
            .run(async {
                cm.reschedule(Some(now() + ms(3))).unwrap();
                sleep(ms(1000)).await;
            })
            .await;
        assert_eq!(out, Err(TimeoutError));
        assert_eq!(since(t0), ms(3));

        let cm = timeout(ms(1));
        let out = cm
            .run(async {
                cm.reschedule(None).unwrap();
                sleep(ms(50)).await;
                1
            })
            .await;
        assert_eq!(out, Ok(1));
    });
}

#[test]
fn a_timeout_can_be_rescheduled_from_another_task() {
    vrun(async {
        let cm = timeout(ms(1000));
        let remote = cm.clone();
        spawn(async move {
            sleep(ms(5)).await;
            remote.reschedule(Some(now())).unwrap();
        });
        let t0 = now();
        let out = cm.run(sleep(ms(500))).await;
        assert_eq!(out, Err(TimeoutError));
        assert_eq!(since(t0), ms(5));
    });
}

#[test]
fn nested_timeouts_the_outer_one_expiring_first() {
    vrun(async {
        let outer = timeout(ms(10));
        let inner = timeout(ms(20));
        let t0 = now();
        let out = outer.run(inner.run(sleep(ms(1000)))).await;
        assert_eq!(out, Err(TimeoutError), "the outer timeout reports it");
        assert!(outer.expired());
        assert!(
            !inner.expired(),
            "the inner scope saw a cancellation, not its deadline"
        );
        assert_eq!(since(t0), ms(10));
        assert_eq!(corio::current_task().unwrap().cancelling(), 0);
    });
}

#[test]
fn nested_timeouts_the_inner_one_expiring_first() {
    vrun(async {
        let outer = timeout(ms(20));
        let inner = timeout(ms(5));
        let out = outer
            .run(async {
                let r = inner.run(sleep(ms(1000))).await;
                assert_eq!(r, Err(TimeoutError));
                "outer body went on"
            })
            .await;
        assert_eq!(out, Ok("outer body went on"));
        assert!(inner.expired() && !outer.expired());
    });
}

#[test]
fn a_zero_timeout_still_lets_a_ready_result_through() {
    vrun(async {
        assert_eq!(wait_for(async { 5 }, Duration::ZERO).await, Ok(5));
        assert_eq!(
            wait_for(sleep(ms(1)), Duration::ZERO).await,
            Err(TimeoutError)
        );
        let past = now() - ms(1);
        assert_eq!(timeout_at(past).run(sleep(ms(1))).await, Err(TimeoutError));
    });
}

#[test]
fn timeouts_work_outside_a_task_too() {
    let _dog = watchdog(Duration::from_secs(60));
    let ev = EventLoop::builder().virtual_time(true).build().unwrap();
    let out = ev.run_until_complete(wait_for(sleep(ms(1000)), ms(10)));
    assert_eq!(out, Err(TimeoutError));
    let out = ev.run_until_complete(wait_for(
        async { catch_cancel(sleep(ms(1000))).await.is_err() },
        ms(10),
    ));
    assert_eq!(out, Err(TimeoutError), "outside a task nothing catches");
}

#[test]
#[should_panic(expected = "Timeout has already been entered")]
fn a_timeout_runs_once() {
    vrun(async {
        let cm = timeout(ms(10));
        let _ = cm.run(async {}).await;
        let _ = cm.run(async {}).await;
    });
}

// ---------------------------------------------------------------------------------------
// shield

#[test]
fn shield_keeps_the_inner_task_running_when_the_awaiter_is_cancelled() {
    vrun(async {
        let saved = Rc::new(Cell::new(false));
        let s2 = saved.clone();
        let outer = spawn(async move {
            shield(async move {
                sleep(ms(10)).await;
                s2.set(true);
                "saved"
            })
            .await
        });
        sleep(ms(1)).await;
        outer.cancel(Some("go"));
        let err = outer.await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "task cancelled: go",
            "the awaiter is cancelled"
        );
        assert!(!saved.get());
        sleep(ms(20)).await;
        assert!(saved.get(), "the shielded work went on");
    });
}

#[test]
fn shield_with_catch_cancel_lets_the_awaiter_take_the_result_later() {
    vrun(async {
        let outer = spawn(async {
            let s = shield(async {
                sleep(ms(10)).await;
                7
            });
            let inner = s.as_ref();
            match catch_cancel(s).await {
                Ok(v) => v.unwrap(),
                Err(_) => {
                    // The inner task is unaffected; wait for it by its handle.
                    assert!(!inner.done() && !inner.cancelled());
                    while !inner.done() {
                        sleep(ms(1)).await;
                    }
                    -1
                }
            }
        });
        sleep(ms(1)).await;
        outer.cancel(None);
        assert_eq!(outer.await.unwrap(), -1);
        let s = shield(async { 8 });
        assert_eq!(s.into_task().await.unwrap(), 8);
    });
}

#[test]
fn a_cancelled_inner_task_cancels_the_shield() {
    vrun(async {
        let s = shield(sleep(ms(100)));
        let inner = s.as_ref();
        yield_now().await;
        inner.cancel(Some("inner"));
        assert_eq!(s.await.unwrap_err().to_string(), "task cancelled: inner");
    });
}

// ---------------------------------------------------------------------------------------
// TaskGroup

#[test]
fn a_task_group_waits_for_all_its_children() {
    vrun(async {
        let tg = TaskGroup::<String>::new();
        let t0 = now();
        let (a, b) = tg
            .run(async {
                let a = tg.spawn(async {
                    sleep(ms(10)).await;
                    Ok(1)
                });
                let b = tg.spawn(async {
                    sleep(ms(20)).await;
                    Ok("two")
                });
                assert_eq!(tg.len(), 2);
                Ok((a, b))
            })
            .await
            .unwrap();
        assert_eq!(since(t0), ms(20), "the scope waited for the slowest child");
        assert!(tg.is_empty());
        assert_eq!(a.await.unwrap(), 1);
        assert_eq!(b.await.unwrap(), "two");
    });
}

#[test]
fn children_spawn_more_children_and_the_group_waits_for_them_too() {
    vrun(async {
        let tg = TaskGroup::<()>::new();
        let log = Log::default();
        let t0 = now();
        tg.run(async {
            let (tg2, log2) = (tg.clone(), log.clone());
            tg.spawn(async move {
                sleep(ms(5)).await;
                tg2.spawn(async move {
                    sleep(ms(5)).await;
                    log2.push("grandchild");
                    Ok(())
                });
                Ok(())
            });
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(log.get(), ["grandchild"]);
        assert_eq!(since(t0), ms(10));
    });
}

#[test]
fn the_first_failure_cancels_the_siblings_and_the_body() {
    vrun(async {
        let tg = TaskGroup::<&str>::new();
        let log = Log::default();
        let t0 = now();
        let l2 = log.clone();
        let err = tg
            .run(async {
                tg.spawn(async { worker(l2, "sibling", ms(1000), ms(0)).await }.map_ok());
                tg.spawn_named("failing", async {
                    sleep(ms(5)).await;
                    Err::<(), _>("boom")
                });
                sleep(ms(1000)).await; // the body is cancelled too
                log.push("body went on");
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(since(t0), ms(5));
        assert_eq!(err.len(), 1);
        assert_eq!(err.failures()[0].task(), Some("failing"));
        assert_eq!(err.errors().copied().collect::<Vec<_>>(), ["boom"]);
        assert!(err.cancelled().is_none());
        assert_eq!(log.get(), ["sibling cancelled", "sibling cleaned up"]);
        let me = corio::current_task().unwrap();
        assert_eq!(
            me.cancelling(),
            0,
            "the group withdrew its cancellation of the parent"
        );
    });
}

trait MapOk: Future + Sized {
    /// Wraps an infallible child's output in `Ok`.
    fn map_ok<E>(self) -> impl Future<Output = Result<Self::Output, E>> {
        async move { Ok(self.await) }
    }
}

impl<F: Future> MapOk for F {}

/// The race the name says: "a" fails first (5 ms) and the group cancels "b" and "c". Both
/// catch the cancellation and clean up asynchronously; "c" fails at 10 ms *while "b" is still
/// inside its cleanup* (checked at that moment), and "b" fails at the end of its cleanup
/// (25 ms). asyncio's semantics: the second failure does not cancel "b" again (its cleanup
/// sleep runs to the end), the group waits for that cleanup, and reports every failure, in
/// the order they happened.
#[test]
fn a_child_failing_while_another_is_mid_cleanup() {
    vrun(async {
        let tg = TaskGroup::<String>::new();
        let log = Log::default();
        let b_in_cleanup = Rc::new(Cell::new(false));
        let t0 = now();
        let err = tg
            .run(async {
                tg.spawn_named("a", async {
                    sleep(ms(5)).await;
                    Err::<(), _>("a failed".to_string())
                });
                let (l, inside) = (log.clone(), b_in_cleanup.clone());
                tg.spawn_named("b", async move {
                    let c = catch_cancel(sleep(ms(1000))).await.unwrap_err();
                    l.push(format!("{:?} b cleaning up after {c}", since(t0)));
                    inside.set(true);
                    sleep(ms(20)).await; // a second cancellation would end it here
                    inside.set(false);
                    l.push(format!("{:?} b cleaned up", since(t0)));
                    Err::<(), _>(format!("b failed in its cleanup ({c})"))
                });
                let (l, inside) = (log.clone(), b_in_cleanup.clone());
                tg.spawn_named("c", async move {
                    let c = catch_cancel(sleep(ms(1000))).await.unwrap_err();
                    sleep(ms(5)).await;
                    l.push(format!(
                        "{:?} c fails, b in cleanup: {}",
                        since(t0),
                        inside.get()
                    ));
                    Err::<(), _>(format!("c failed in its cleanup ({c})"))
                });
                sleep(ms(1000)).await; // cancelled by the first failure
                log.push("body went on");
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(
            log.get(),
            [
                "5ms b cleaning up after cancelled",
                "10ms c fails, b in cleanup: true",
                "25ms b cleaned up",
            ],
            "c failed while b was mid-cleanup, and b's cleanup was not cancelled again"
        );
        assert!(!b_in_cleanup.get());
        assert_eq!(since(t0), ms(25), "the scope waited for b's cleanup");
        assert!(tg.is_empty());
        let failures: Vec<_> = err
            .failures()
            .iter()
            .map(|f| (f.task().unwrap(), f.error().unwrap().as_str()))
            .collect();
        assert_eq!(
            failures,
            [
                ("a", "a failed"),
                ("c", "c failed in its cleanup (cancelled)"),
                ("b", "b failed in its cleanup (cancelled)"),
            ]
        );
        assert!(err.cancelled().is_none(), "no outside cancellation");
        assert_eq!(
            err.to_string(),
            "unhandled errors in a TaskGroup (3 sub-exceptions): a: a failed; \
             c: c failed in its cleanup (cancelled); b: b failed in its cleanup (cancelled)"
        );
        assert_eq!(corio::current_task().unwrap().cancelling(), 0);
    });
}

#[test]
fn the_body_can_catch_the_groups_cancellation_and_clean_up() {
    vrun(async {
        let tg = TaskGroup::<&str>::new();
        let log = Log::default();
        let t0 = now();
        let err = tg
            .run(async {
                tg.spawn(async {
                    sleep(ms(5)).await;
                    Err::<(), _>("x")
                });
                if catch_cancel(sleep(ms(1000))).await.is_err() {
                    sleep(ms(3)).await;
                    log.push("body cleaned up");
                }
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(log.get(), ["body cleaned up"]);
        assert_eq!(since(t0), ms(8));
        assert_eq!(corio::current_task().unwrap().cancelling(), 0);
    });
}

#[test]
fn an_error_from_the_body_cancels_the_children() {
    vrun(async {
        let tg = TaskGroup::<&str>::new();
        let log = Log::default();
        let l2 = log.clone();
        let err = tg
            .run(async {
                tg.spawn(worker(l2, "child", ms(1000), ms(2)).map_ok());
                sleep(ms(1)).await;
                Err::<(), _>("body failed")
            })
            .await
            .unwrap_err();
        assert_eq!(err.failures()[0].task(), None, "the body has no task name");
        assert_eq!(err.errors().copied().collect::<Vec<_>>(), ["body failed"]);
        assert_eq!(log.get(), ["child cancelled", "child cleaned up"]);
    });
}

#[test]
fn a_child_panic_is_reported_with_its_payload() {
    vrun(async {
        let tg = TaskGroup::<()>::new();
        let err = tg
            .run(async {
                let t = tg.spawn_named("p", async {
                    if true {
                        panic!("child bug");
                    }
                    Ok(())
                });
                Ok(t)
            })
            .await
            .unwrap_err();
        let f = &err.failures()[0];
        assert_eq!(
            (f.task(), f.panic_message()),
            (Some("p"), Some("child bug"))
        );
        assert!(matches!(
            err.into_failures().remove(0),
            corio::taskgroups::Failure::Panic { .. }
        ));
    });
}

#[test]
fn a_failed_child_task_itself_ends_cancelled() {
    vrun(async {
        let tg = TaskGroup::<&str>::new();
        let handle = Rc::new(RefCell::new(None));
        let h2 = handle.clone();
        let _ = tg
            .run(async {
                *h2.borrow_mut() = Some(tg.spawn(async { Err::<u8, _>("no") }));
                Ok(())
            })
            .await;
        let t: Task<u8> = handle.borrow_mut().take().unwrap();
        let err = t.await.unwrap_err();
        assert!(err.is_cancelled());
        assert!(err.to_string().contains("TaskGroupError"));
    });
}

#[test]
fn a_panic_in_the_body_is_resumed_after_the_children_finish() {
    vrun(async {
        let log = Log::default();
        let l2 = log.clone();
        let t = spawn(async move {
            let tg = TaskGroup::<()>::new();
            let _ = tg
                .run(async {
                    tg.spawn(worker(l2, "child", ms(1000), ms(10)).map_ok());
                    sleep(ms(1)).await;
                    if true {
                        panic!("body bug");
                    }
                    Ok(())
                })
                .await;
        });
        let t0 = now();
        let err = t.await.unwrap_err();
        assert_eq!(err.panic_message(), Some("body bug"));
        assert_eq!(since(t0), ms(11), "after the child's 10 ms cleanup");
        assert_eq!(log.get(), ["child cancelled", "child cleaned up"]);
    });
}

#[test]
fn an_outside_cancellation_waits_for_the_children_then_goes_on() {
    vrun(async {
        let log = Log::default();
        let l2 = log.clone();
        let t = spawn(async move {
            let tg = TaskGroup::<()>::new();
            let out = tg
                .run(async {
                    tg.spawn(worker(l2, "child", ms(1000), ms(10)).map_ok());
                    sleep(ms(1000)).await;
                    Ok(())
                })
                .await;
            unreachable!("the task ends cancelled: {:?}", out.is_ok());
        });
        sleep(ms(5)).await;
        t.cancel(Some("shutdown"));
        let t0 = now();
        let err = t.await.unwrap_err();
        assert_eq!(err.to_string(), "task cancelled: shutdown");
        assert_eq!(
            since(t0),
            ms(10),
            "the scope waited for the child's cleanup"
        );
        assert_eq!(log.get(), ["child cancelled", "child cleaned up"]);
    });
}

#[test]
fn an_outside_cancellation_with_failures_reports_both() {
    vrun(async {
        let t = spawn(async {
            let tg = TaskGroup::<&str>::new();
            tg.run(async {
                tg.spawn(async {
                    let _ = catch_cancel(sleep(ms(1000))).await;
                    Err::<(), _>("failed while cancelled")
                });
                sleep(ms(1000)).await;
                Ok(())
            })
            .await
        });
        sleep(ms(5)).await;
        t.cancel(Some("outside"));
        let err = t.await.unwrap().unwrap_err();
        assert_eq!(
            err.errors().copied().collect::<Vec<_>>(),
            ["failed while cancelled"]
        );
        assert_eq!(
            err.cancelled(),
            Some(&Cancelled::new(Some("outside".into())))
        );
    });
}

#[test]
fn spawning_into_a_group_that_is_shutting_down_or_finished_never_runs_the_child() {
    vrun(async {
        let tg = TaskGroup::<&str>::new();
        let ran = Rc::new(Cell::new(false));
        let late = Rc::new(RefCell::new(None));
        let (r2, l2) = (ran.clone(), late.clone());
        let _ = tg
            .run(async {
                tg.spawn(async { Err::<(), _>("x") });
                if catch_cancel(sleep(ms(1000))).await.is_err() {
                    let r3 = r2.clone();
                    *l2.borrow_mut() = Some(tg.spawn(async move {
                        r3.set(true);
                        Ok(1)
                    }));
                }
                Ok(())
            })
            .await;
        let t: Task<i32> = late.borrow_mut().take().unwrap();
        assert_eq!(
            t.await.unwrap_err().to_string(),
            "task cancelled: TaskGroup is shutting down"
        );
        let r3 = ran.clone();
        let after = tg.spawn(async move {
            r3.set(true);
            Ok(2)
        });
        assert_eq!(
            after.await.unwrap_err().to_string(),
            "task cancelled: TaskGroup is finished"
        );
        assert!(!ran.get());
    });
}

#[test]
#[should_panic(expected = "TaskGroup has not been entered")]
fn spawning_before_entering_a_group_panics() {
    TaskGroup::<()>::new().spawn(async { Ok(()) });
}

#[test]
fn aborting_the_task_running_a_group_cancels_the_children() {
    vrun(async {
        let log = Log::default();
        let l2 = log.clone();
        let t = spawn(async move {
            let tg = TaskGroup::<()>::new();
            let _ = tg
                .run(async {
                    tg.spawn(worker(l2, "child", ms(1000), ms(1)).map_ok());
                    sleep(ms(1000)).await;
                    Ok(())
                })
                .await;
        });
        sleep(ms(5)).await;
        t.abort();
        assert!(t.await.unwrap_err().is_cancelled());
        sleep(ms(5)).await;
        assert_eq!(log.get(), ["child cancelled", "child cleaned up"]);
    });
}

#[test]
fn a_task_group_outside_a_task_drops_the_body_on_failure() {
    let _dog = watchdog(Duration::from_secs(60));
    let ev = EventLoop::builder().virtual_time(true).build().unwrap();
    let t0 = ev.time();
    let tg = TaskGroup::<&str>::new();
    let err = ev
        .run_until_complete(tg.run(async {
            tg.spawn(async {
                sleep(ms(5)).await;
                Err::<(), _>("x")
            });
            sleep(ms(1000)).await;
            Ok(())
        }))
        .unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(ev.time() - t0, ms(5));
}

#[test]
fn a_task_group_inside_a_timeout() {
    vrun(async {
        let log = Log::default();
        let l2 = log.clone();
        let tg = TaskGroup::<()>::new();
        let out = wait_for(
            tg.run(async {
                tg.spawn(worker(l2, "child", ms(1000), ms(5)).map_ok());
                sleep(ms(1000)).await;
                Ok(())
            }),
            ms(10),
        )
        .await;
        assert_eq!(out.unwrap_err(), TimeoutError);
        assert_eq!(log.get(), ["child cancelled", "child cleaned up"]);
        assert_eq!(corio::current_task().unwrap().cancelling(), 0);
    });
}

// ---------------------------------------------------------------------------------------
// Introspection and Runner

#[test]
fn task_introspection() {
    vrun(async {
        let me = corio::current_task().unwrap();
        assert_eq!(me.name(), "main");
        let t = spawn(async {
            let _ = catch_cancel(sleep(ms(1000))).await;
            let me = corio::current_task().unwrap();
            (me.cancelling(), me.uncancel(), me.cancelling())
        });
        t.set_name("worker");
        assert_eq!(t.name(), "worker");
        assert!(corio::all_tasks().iter().any(|x| x.name() == "worker"));
        assert!(corio::all_tasks().contains(&me));
        yield_now().await;
        t.cancel(Some("why"));
        assert_eq!(t.cancelling(), 1);
        assert_eq!(t.await.unwrap(), (1, 0, 0), "counted, then withdrawn");
        let t = spawn(sleep(ms(1000)));
        yield_now().await;
        t.cancel(Some("the message"));
        match t.await {
            Err(TaskError::Cancelled(c)) => assert_eq!(c.message(), Some("the message")),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn a_runner_runs_several_mains_on_one_loop() {
    let _dog = watchdog(Duration::from_secs(60));
    let runner = Runner::new().unwrap();
    let ticks = Rc::new(Cell::new(0));
    let t2 = ticks.clone();
    runner.run(async move {
        spawn(async move {
            loop {
                sleep(ms(1)).await;
                t2.set(t2.get() + 1);
            }
        });
    });
    let t3 = ticks.clone();
    let seen = runner.run(async move {
        sleep(ms(20)).await;
        t3.get()
    });
    assert!(seen > 0, "the first run's task kept running in the second");
    runner.close();
}

// ---------------------------------------------------------------------------------------
// The examples print what they claim

/// Runs `target/<profile>/examples/<name>` (found from this test binary, in
/// `target/<profile>/deps/`) and returns its stdout. `cargo test` builds the examples first;
/// if one is missing (`cargo test --test composition` alone), the test fails rather than
/// passing without checking anything.
fn run_example(name: &str) -> String {
    let path = example(name);
    let _dog = watchdog(Duration::from_secs(60));
    let out = std::process::Command::new(&path).output().unwrap();
    assert!(out.status.success(), "{name} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that `lines` appear in `out`, in this order.
fn assert_in_order(out: &str, lines: &[&str]) {
    let mut rest = out;
    for l in lines {
        let at = rest
            .find(l)
            .unwrap_or_else(|| panic!("{l:?} missing (or out of order) in:\n{out}"));
        rest = &rest[at + l.len()..];
    }
}

#[test]
fn example_timeouts_prints_each_outcome() {
    let out = run_example("timeouts");
    assert_in_order(
        &out,
        &[
            r#"wait_for(small, 200 ms) -> Ok("small.bin: downloaded")"#,
            "big.iso: cancelled, deleting the partial file...",
            "big.iso: cleaned up",
            "wait_for(big, 200 ms) -> Err(TimeoutError)",
            r#"timeout(100 ms) rescheduled -> Ok("report generated"), expired: false"#,
            "nested.dat: cleaned up",
            "-> Err(TimeoutError); outer expired: true, inner expired: false",
            r#"shielded caller -> Err("task cancelled: user closed the window")"#,
            "save: written to disk",
        ],
    );
}

#[test]
fn example_concurrent_requests_prints_each_part() {
    let out = run_example("concurrent_requests");
    assert_in_order(
        &out,
        &[
            "gather: 300/300 requests of 100 ms each answered in",
            r#"as_completed: "100 100 ms""#,
            r#"as_completed: "200 200 ms""#,
            r#"as_completed: "300 300 ms""#,
            "as_completed: deadline exceeded after",
            r#"wait: "60 batch item 1""#,
            r#"wait: "300 batch item 5""#,
            r#"wait_for: Ok("10 fast")"#,
            "wait_for: deadline exceeded after",
        ],
    );
}
