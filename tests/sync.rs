//! Tests of `corio::sync`: each pins one semantic of asyncio's locks (asyncio-map.md §3.4 and
//! §4 items 7-9) or one failure mode of failure-modes.md section D (B14, B20, B21, B24, B25),
//! plus the 10 000-task stress test with random cancellations and the allocation-free fast
//! paths.
//!
//! Cancellation comes in three forms, all exercised: `Task::cancel` with no `catch_cancel` in
//! the task (its future is dropped), `Task::cancel` caught by `catch_cancel` (the inner future
//! is dropped, the task goes on), and `Task::abort`.

#[allow(unsafe_code)]
mod sync_support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use corio::queues::Queue;
use corio::sync::{
    Barrier, BoundedSemaphore, BrokenBarrierError, Condition, Event, Lock, ReleaseError, Semaphore,
};
use corio::{EventLoop, Task, catch_cancel, spawn, yield_now};

use sync_support::{Rng, allocations, run, run_on};

/// Gives up `n` turns of the loop.
async fn turns(n: usize) {
    for _ in 0..n {
        yield_now().await;
    }
}

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

/// Counts the tasks inside a critical section; leaving (also by cancellation) decrements.
struct Inside(Rc<Cell<usize>>);

impl Inside {
    fn enter(count: &Rc<Cell<usize>>, limit: usize, max: &Cell<usize>) -> Inside {
        count.set(count.get() + 1);
        assert!(
            count.get() <= limit,
            "{} holders, limit {limit}",
            count.get()
        );
        max.set(max.get().max(count.get()));
        Inside(count.clone())
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// A task that takes `lock`, logs `name`, and holds the lock for `hold` turns.
fn locker(lock: &Rc<Lock>, log: &Log, name: &'static str, hold: usize) -> Task<()> {
    let (lock, log) = (lock.clone(), log.clone());
    spawn(async move {
        let _guard = lock.acquire().await;
        push(&log, name);
        turns(hold).await;
    })
}

// ---------------------------------------------------------------------------------------------
// Lock
// ---------------------------------------------------------------------------------------------

#[test]
fn lock_free_lock_is_taken_at_once_and_released_by_the_guard() {
    run(async {
        let lock = Lock::new();
        assert!(!lock.locked());
        let guard = lock.acquire().await;
        assert!(lock.locked());
        assert!(lock.try_acquire().is_none());
        drop(guard);
        assert!(!lock.locked());
        assert!(lock.try_acquire().is_some());
        assert!(!lock.locked());
    });
}

#[test]
fn lock_waiters_are_served_in_fifo_order() {
    run(async {
        let lock = Rc::new(Lock::new());
        let log = log();
        let guard = lock.acquire().await;
        let tasks: Vec<_> = ["a", "b", "c", "d", "e"]
            .into_iter()
            .map(|n| locker(&lock, &log, n, 1))
            .collect();
        turns(1).await; // every task has queued, in spawn order
        drop(guard);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*log.borrow(), ["a", "b", "c", "d", "e"]);
        assert!(!lock.locked());
    });
}

#[test]
fn lock_release_then_reacquire_queues_behind_existing_waiters() {
    // asyncio probe (asyncio-map §4 item 7): the order is waiter, then main.
    run(async {
        let lock = Rc::new(Lock::new());
        let log = log();
        let guard = lock.acquire().await;
        let waiter = locker(&lock, &log, "waiter", 0);
        turns(1).await;
        drop(guard);
        assert!(lock.locked(), "handed to the waiter, not freed");
        let _again = lock.acquire().await;
        push(&log, "main");
        waiter.await.unwrap();
        assert_eq!(*log.borrow(), ["waiter", "main"]);
    });
}

#[test]
fn lock_try_acquire_cannot_jump_a_granted_waiter() {
    run(async {
        let lock = Rc::new(Lock::new());
        let log = log();
        let guard = lock.acquire().await;
        let waiter = locker(&lock, &log, "waiter", 0);
        turns(1).await;
        drop(guard); // granted to the waiter, which has not run yet
        assert!(lock.locked());
        assert!(lock.try_acquire().is_none());
        waiter.await.unwrap();
        assert!(!lock.locked());
    });
}

#[test]
fn lock_release_wakes_the_waiter_through_the_ready_queue() {
    // Never inline: the waiter runs in a later slot, before a callback queued after the release.
    run(async {
        let lock = Rc::new(Lock::new());
        let log = log();
        let guard = lock.acquire().await;
        let waiter = locker(&lock, &log, "waiter", 0);
        turns(1).await;
        drop(guard);
        assert!(log.borrow().is_empty(), "release ran the waiter inline");
        let l = log.clone();
        corio::get_running_loop().call_soon(move || push(&l, "callback"));
        waiter.await.unwrap();
        turns(1).await;
        assert_eq!(*log.borrow(), ["waiter", "callback"]);
    });
}

#[test]
fn lock_granted_then_cancelled_passes_it_on() {
    // B20: A holds; B, C wait; A releases and in the same turn B is cancelled: C acquires.
    run(async {
        let lock = Rc::new(Lock::new());
        let log = log();
        let inside = Rc::new(Cell::new(0));
        let max = Rc::new(Cell::new(0));
        let task = |name: &'static str| {
            let (lock, log, inside, max) = (lock.clone(), log.clone(), inside.clone(), max.clone());
            spawn(async move {
                let _guard = lock.acquire().await;
                let _in = Inside::enter(&inside, 1, &max);
                push(&log, name);
                turns(2).await;
            })
        };
        let guard = lock.acquire().await;
        let b = task("b");
        let c = task("c");
        turns(1).await;
        drop(guard); // granted to b
        assert!(b.cancel(Some("b cancelled")));
        assert!(b.await.unwrap_err().is_cancelled());
        c.await.unwrap();
        assert_eq!(*log.borrow(), ["c"]);
        assert!(!lock.locked());
        assert_eq!(max.get(), 1);
    });
}

#[test]
fn lock_granted_then_cancel_caught_passes_it_on() {
    // B20 with the cancellation caught by `catch_cancel` around the acquire.
    run(async {
        let lock = Rc::new(Lock::new());
        let log = log();
        let guard = lock.acquire().await;
        let (l, lg) = (lock.clone(), log.clone());
        let b = spawn(async move {
            match catch_cancel(l.acquire()).await {
                Ok(_guard) => push(&lg, "b acquired"),
                Err(c) => push(&lg, format!("b {c}")),
            }
            // b carries on without the lock.
            assert!(l.locked(), "c holds it by now or has it granted");
        });
        let c = locker(&lock, &log, "c acquired", 1);
        turns(1).await;
        drop(guard);
        b.cancel(Some("stop"));
        b.await.unwrap();
        c.await.unwrap();
        assert_eq!(*log.borrow(), ["b cancelled: stop", "c acquired"]);
        assert!(!lock.locked());
    });
}

#[test]
fn lock_granted_then_aborted_passes_it_on() {
    run(async {
        let lock = Rc::new(Lock::new());
        let log = log();
        let guard = lock.acquire().await;
        let b = locker(&lock, &log, "b", 0);
        let c = locker(&lock, &log, "c", 0);
        turns(1).await;
        drop(guard);
        b.abort();
        assert!(b.await.is_err());
        c.await.unwrap();
        assert_eq!(*log.borrow(), ["c"]);
        assert!(!lock.locked());
    });
}

#[test]
fn lock_waiter_cancelled_before_its_turn_leaves_the_queue() {
    run(async {
        let lock = Rc::new(Lock::new());
        let log = log();
        let guard = lock.acquire().await;
        let b = locker(&lock, &log, "b", 0);
        let c = locker(&lock, &log, "c", 0);
        turns(1).await;
        b.cancel(None);
        turns(1).await; // b is gone from the queue
        assert!(b.done());
        drop(guard);
        c.await.unwrap();
        assert_eq!(*log.borrow(), ["c"]);
        assert!(!lock.locked());
        assert!(format!("{lock:?}").contains("waiters: 0"));
    });
}

#[test]
fn lock_needs_no_running_loop_and_works_outside_a_task() {
    // Created before any loop; used by the future of run_until_complete (not a task).
    let lock = Rc::new(Lock::new());
    let ev = EventLoop::new().unwrap();
    let l = lock.clone();
    ev.run_until_complete(async move {
        let g = l.acquire().await;
        let l2 = l.clone();
        let t = corio::spawn(async move {
            let _g = l2.acquire().await;
        });
        yield_now().await;
        drop(g);
        t.await.unwrap();
    });
    assert!(!lock.locked());
}

// ---------------------------------------------------------------------------------------------
// Event
// ---------------------------------------------------------------------------------------------

fn event_waiter(ev: &Rc<Event>, log: &Log, name: &'static str) -> Task<()> {
    let (ev, log) = (ev.clone(), log.clone());
    spawn(async move {
        ev.wait().await;
        push(&log, name);
    })
}

#[test]
fn event_set_wakes_every_waiter() {
    run(async {
        let ev = Rc::new(Event::new());
        let log = log();
        let tasks: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|n| event_waiter(&ev, &log, n))
            .collect();
        turns(2).await;
        assert!(log.borrow().is_empty());
        ev.set();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*log.borrow(), ["a", "b", "c"]);
        assert!(ev.is_set());
    });
}

#[test]
fn event_set_wakes_the_waiters_through_the_ready_queue() {
    // As for the Lock: never inline. Each waiter runs in a later slot, in the order they
    // waited, and before a callback queued after the set.
    run(async {
        let ev = Rc::new(Event::new());
        let log = log();
        let tasks: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|n| event_waiter(&ev, &log, n))
            .collect();
        turns(1).await;
        ev.set();
        assert!(log.borrow().is_empty(), "set ran a waiter inline");
        let l = log.clone();
        corio::get_running_loop().call_soon(move || push(&l, "callback"));
        for t in tasks {
            t.await.unwrap();
        }
        turns(1).await;
        assert_eq!(*log.borrow(), ["a", "b", "c", "callback"]);
    });
}

#[test]
fn event_wait_returns_at_once_when_set() {
    run(async {
        let ev = Event::new();
        ev.set();
        ev.wait().await;
        ev.wait().await;
        assert!(ev.is_set());
    });
}

#[test]
fn event_set_then_clear_in_the_same_turn_wakes_every_current_waiter() {
    // asyncio-map §4 item 9 (probe: 3/3 woke).
    run(async {
        let ev = Rc::new(Event::new());
        let log = log();
        let tasks: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|n| event_waiter(&ev, &log, n))
            .collect();
        turns(1).await;
        ev.set();
        ev.clear();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(log.borrow().len(), 3);
        assert!(!ev.is_set());
    });
}

#[test]
fn event_wait_after_clear_blocks_until_the_next_set() {
    run(async {
        let ev = Rc::new(Event::new());
        let log = log();
        ev.set();
        ev.clear();
        let late = event_waiter(&ev, &log, "late");
        turns(3).await;
        assert!(!late.done());
        ev.set();
        late.await.unwrap();
        assert_eq!(*log.borrow(), ["late"]);
    });
}

#[test]
fn event_cancelled_waiter_leaves_no_trace() {
    run(async {
        let ev = Rc::new(Event::new());
        let log = log();
        let a = event_waiter(&ev, &log, "a");
        let b = event_waiter(&ev, &log, "b");
        turns(1).await;
        a.cancel(None);
        assert!(a.await.unwrap_err().is_cancelled());
        assert!(format!("{ev:?}").contains("waiters: 1"));
        ev.set();
        b.await.unwrap();
        assert_eq!(*log.borrow(), ["b"]);
        assert!(format!("{ev:?}").contains("waiters: 0"));
    });
}

// ---------------------------------------------------------------------------------------------
// Condition
// ---------------------------------------------------------------------------------------------

/// A task that waits on `cond` once, logging when it wakes (with the lock held).
fn cond_waiter(cond: &Rc<Condition>, log: &Log, name: &'static str) -> Task<()> {
    let (cond, log) = (cond.clone(), log.clone());
    spawn(async move {
        let mut guard = cond.acquire().await;
        cond.wait(&mut guard).await;
        assert!(cond.locked());
        push(&log, name);
    })
}

#[test]
#[should_panic(expected = "cannot wait on un-acquired lock")]
fn condition_wait_with_another_locks_guard_panics() {
    run(async {
        let cond = Condition::new();
        let other = Lock::new();
        let mut guard = other.acquire().await;
        cond.wait(&mut guard).await;
    });
}

#[test]
#[should_panic(expected = "cannot notify on un-acquired lock")]
fn condition_notify_without_the_lock_panics() {
    Condition::new().notify(1);
}

#[test]
#[should_panic(expected = "cannot notify on un-acquired lock")]
fn condition_notify_all_without_the_lock_panics() {
    Condition::new().notify_all();
}

#[test]
fn condition_wait_releases_the_lock_while_waiting() {
    run(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let w = cond_waiter(&cond, &log, "w");
        turns(1).await;
        assert!(!cond.locked(), "the waiter released the lock");
        let guard = cond.acquire().await;
        cond.notify(1);
        drop(guard);
        w.await.unwrap();
        assert!(!cond.locked());
    });
}

#[test]
fn condition_notify_wakes_the_waiters_through_the_ready_queue() {
    // As for the Lock: neither notify nor the release after it runs a waiter inline; the
    // notified waiters run in later slots, in FIFO order, before a callback queued after the
    // release. A waiter not notified stays asleep.
    run(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let tasks: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|n| cond_waiter(&cond, &log, n))
            .collect();
        turns(1).await;
        let guard = cond.acquire().await;
        cond.notify(2);
        assert!(log.borrow().is_empty(), "notify ran a waiter inline");
        drop(guard);
        assert!(log.borrow().is_empty(), "the release ran a waiter inline");
        let l = log.clone();
        corio::get_running_loop().call_soon(move || push(&l, "callback"));
        let mut tasks = tasks.into_iter();
        tasks.next().unwrap().await.unwrap();
        tasks.next().unwrap().await.unwrap();
        turns(1).await;
        assert_eq!(*log.borrow(), ["a", "b", "callback"]);
        let c = tasks.next().unwrap();
        turns(3).await;
        assert!(!c.done(), "c was not notified");
        let guard = cond.acquire().await;
        cond.notify_all();
        drop(guard);
        assert_eq!(log.borrow().len(), 3, "notify_all ran a waiter inline");
        c.await.unwrap();
        assert_eq!(*log.borrow(), ["a", "b", "callback", "c"]);
    });
}

#[test]
fn condition_notify_n_wakes_the_first_n_waiters_in_fifo_order() {
    run(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let tasks: Vec<_> = ["a", "b", "c", "d"]
            .into_iter()
            .map(|n| cond_waiter(&cond, &log, n))
            .collect();
        turns(1).await;
        {
            let _guard = cond.acquire().await;
            cond.notify(2);
        }
        turns(3).await;
        assert_eq!(*log.borrow(), ["a", "b"]);
        {
            let _guard = cond.acquire().await;
            cond.notify(5); // more than are waiting: wakes the two left
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*log.borrow(), ["a", "b", "c", "d"]);
    });
}

#[test]
fn b14_condition_notify_all_wakes_only_the_tasks_waiting_at_that_moment() {
    // B14: register A, notify_all, register N in the same turn: A wakes, N stays pending.
    run(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let a = cond_waiter(&cond, &log, "a");
        turns(1).await;
        let (c, lg) = (cond.clone(), log.clone());
        let n = spawn(async move {
            let mut guard = c.acquire().await;
            c.notify_all();
            c.wait(&mut guard).await; // starts waiting after the notification
            push(&lg, "n");
        });
        a.await.unwrap();
        turns(3).await;
        assert_eq!(*log.borrow(), ["a"]);
        assert!(!n.done());
        {
            let _guard = cond.acquire().await;
            cond.notify_all();
        }
        n.await.unwrap();
        assert_eq!(*log.borrow(), ["a", "n"]);
    });
}

#[test]
fn condition_notified_waiter_returns_only_once_it_holds_the_lock() {
    run(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let w = cond_waiter(&cond, &log, "w");
        turns(1).await;
        let guard = cond.acquire().await;
        cond.notify(1);
        turns(3).await; // notified, but the lock is ours
        assert!(log.borrow().is_empty());
        drop(guard);
        w.await.unwrap();
        assert_eq!(*log.borrow(), ["w"]);
    });
}

#[test]
fn b21_condition_wait_cancelled_reacquires_the_lock_before_the_cancellation_is_seen() {
    // B21: when wait() ends with Cancelled, the lock is held.
    run(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let (c, lg) = (cond.clone(), log.clone());
        let w = spawn(async move {
            let mut guard = c.acquire().await;
            let r = catch_cancel(c.wait(&mut guard)).await;
            let msg = r.unwrap_err().message().map(String::from);
            assert!(c.locked());
            push(&lg, format!("caught {msg:?} with the lock"));
            drop(guard);
            assert!(!c.locked());
        });
        turns(1).await;
        let guard = cond.acquire().await; // the waiter cannot re-acquire while we hold it
        w.cancel(Some("stop"));
        turns(3).await;
        assert!(log.borrow().is_empty(), "returned without the lock");
        drop(guard);
        w.await.unwrap();
        assert_eq!(*log.borrow(), ["caught Some(\"stop\") with the lock"]);
        assert!(!cond.locked());
    });
}

#[test]
fn condition_cancel_during_reacquire_still_reacquires() {
    run(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let (c, lg) = (cond.clone(), log.clone());
        let w = spawn(async move {
            let mut guard = c.acquire().await;
            let r = catch_cancel(c.wait(&mut guard)).await;
            assert!(c.locked());
            push(&lg, format!("{:?}", r.map_err(|e| e.to_string())));
        });
        turns(1).await;
        let guard = cond.acquire().await;
        cond.notify(1);
        turns(2).await; // notified; now queued for the lock we hold
        w.cancel(Some("late"));
        turns(2).await;
        assert!(log.borrow().is_empty());
        drop(guard);
        w.await.unwrap();
        assert_eq!(*log.borrow(), ["Err(\"cancelled: late\")"]);
        assert!(!cond.locked());
    });
}

#[test]
fn condition_uncaught_cancel_releases_the_reacquired_lock() {
    run(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let w = cond_waiter(&cond, &log, "w");
        turns(1).await;
        w.cancel(None);
        assert!(w.await.unwrap_err().is_cancelled());
        assert!(!cond.locked());
        assert!(log.borrow().is_empty());
    });
}

#[test]
fn condition_notified_then_cancelled_passes_the_notification_on() {
    // B21(b): two consumers wait; notify one and cancel it in the same turn: the other wakes.
    for abort in [false, true] {
        run(async move {
            let cond = Rc::new(Condition::new());
            let log = log();
            let a = cond_waiter(&cond, &log, "a");
            let b = cond_waiter(&cond, &log, "b");
            turns(1).await;
            {
                let _guard = cond.acquire().await;
                cond.notify(1); // a
                if abort {
                    a.abort();
                } else {
                    a.cancel(None);
                }
            }
            assert!(a.await.is_err());
            b.await.unwrap();
            assert_eq!(*log.borrow(), ["b"], "abort: {abort}");
            assert!(!cond.locked());
        });
    }
}

#[test]
fn condition_caught_cancel_after_notify_passes_the_notification_on() {
    run(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let (c, lg) = (cond.clone(), log.clone());
        let a = spawn(async move {
            let mut guard = c.acquire().await;
            if catch_cancel(c.wait(&mut guard)).await.is_err() {
                push(&lg, "a cancelled");
            }
        });
        let b = cond_waiter(&cond, &log, "b");
        turns(1).await;
        {
            let _guard = cond.acquire().await;
            cond.notify(1);
            a.cancel(None);
        }
        a.await.unwrap();
        b.await.unwrap();
        assert_eq!(*log.borrow(), ["a cancelled", "b"]);
    });
}

#[test]
fn condition_cancelled_while_reacquiring_after_a_notify_passes_the_notification_on() {
    // The notification was consumed, but the task ends cancelled: another waiter gets one.
    run(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let a = cond_waiter(&cond, &log, "a");
        let b = cond_waiter(&cond, &log, "b");
        turns(1).await;
        let guard = cond.acquire().await;
        cond.notify(1); // a
        turns(2).await; // a was notified and now queues for the lock we hold
        a.cancel(None);
        turns(2).await;
        drop(guard); // a re-acquires, passes a notification to b, then ends cancelled
        assert!(a.await.unwrap_err().is_cancelled());
        b.await.unwrap();
        assert_eq!(*log.borrow(), ["b"]);
        assert!(!cond.locked());
    });
}

#[test]
fn condition_wait_for_rechecks_the_predicate_after_each_wakeup() {
    run(async {
        let cond = Rc::new(Condition::new());
        let n = Rc::new(Cell::new(0));
        let checks = Rc::new(Cell::new(0));
        let (c, n2, ch) = (cond.clone(), n.clone(), checks.clone());
        let w = spawn(async move {
            let mut guard = c.acquire().await;
            c.wait_for(&mut guard, || {
                ch.set(ch.get() + 1);
                n2.get() == 3
            })
            .await;
            assert!(c.locked());
        });
        for _ in 0..3 {
            turns(1).await;
            let _guard = cond.acquire().await;
            n.set(n.get() + 1);
            cond.notify_all();
        }
        w.await.unwrap();
        assert_eq!(
            checks.get(),
            4,
            "once before waiting, then after each of 3 wake-ups"
        );
    });
}

#[test]
fn condition_wait_for_true_predicate_does_not_wait() {
    run(async {
        let cond = Condition::new();
        let mut guard = cond.acquire().await;
        cond.wait_for(&mut guard, || true).await;
        assert!(cond.locked());
    });
}

#[test]
fn condition_aborted_waiter_leaves_the_lock_consistent() {
    run(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        // Aborted while waiting for a notification.
        let a = cond_waiter(&cond, &log, "a");
        turns(1).await;
        a.abort();
        assert!(a.await.is_err());
        assert!(!cond.locked());
        // Aborted while re-acquiring, after the lock was handed to it.
        let b = cond_waiter(&cond, &log, "b");
        let c = cond_waiter(&cond, &log, "c");
        turns(1).await;
        let guard = cond.acquire().await;
        cond.notify_all();
        turns(2).await; // b and c queue for the lock, in that order
        drop(guard); // granted to b
        b.abort();
        assert!(b.await.is_err());
        c.await.unwrap();
        assert_eq!(*log.borrow(), ["c"]);
        assert!(!cond.locked());
    });
}

#[test]
fn condition_timed_out_by_a_cancelling_timer_still_holds_the_lock() {
    // B25 in the shape asyncio's timeout() gives it: a timer cancels the waiting task.
    run_on(EventLoop::builder().virtual_time(true), async {
        let cond = Rc::new(Condition::new());
        let c = cond.clone();
        let w = spawn(async move {
            let mut guard = c.acquire().await;
            let r = catch_cancel(c.wait(&mut guard)).await;
            assert!(r.is_err());
            assert!(c.locked(), "lock held when the timeout surfaces");
            "timed out with the lock"
        });
        let wr = w.as_ref();
        corio::get_running_loop().call_later(Duration::from_millis(10), move || {
            wr.cancel(Some("timeout"));
        });
        assert_eq!(w.await.unwrap(), "timed out with the lock");
        assert!(!cond.locked());
    });
}

#[test]
fn condition_shares_a_lock_with_another_condition() {
    run(async {
        let lock = Rc::new(Lock::new());
        let a = Rc::new(Condition::with_lock(lock.clone()));
        let b = Rc::new(Condition::with_lock(lock.clone()));
        let log = log();
        let wa = cond_waiter(&a, &log, "on a");
        let wb = cond_waiter(&b, &log, "on b");
        turns(1).await;
        let guard = b.acquire().await; // the same lock
        assert!(a.locked());
        b.notify_all();
        drop(guard);
        wb.await.unwrap();
        assert!(!wa.done());
        let guard = a.acquire().await;
        a.notify(1);
        drop(guard);
        wa.await.unwrap();
        assert_eq!(*log.borrow(), ["on b", "on a"]);
        assert!(!lock.locked());
    });
}

// ---------------------------------------------------------------------------------------------
// Under `wait_for` (issue 3's timeouts, which cancel the way asyncio's do)
// ---------------------------------------------------------------------------------------------

#[test]
fn b25_condition_wait_under_wait_for_still_holds_the_lock_on_timeout() {
    // B25: `wait_for(cond.wait(), 10 ms)` inside the lock: no error, and the lock is held
    // when the timeout surfaces, even if another task holds it at the deadline.
    run_on(EventLoop::builder().virtual_time(true), async {
        let cond = Rc::new(Condition::new());
        let mut guard = cond.acquire().await;
        let r = corio::wait_for(cond.wait(&mut guard), Duration::from_millis(10)).await;
        assert_eq!(r, Err(corio::TimeoutError));
        assert!(cond.locked());
        drop(guard);
        assert!(!cond.locked());

        let mut guard = cond.acquire().await;
        let c = cond.clone();
        let holder = spawn(async move {
            corio::sleep(Duration::from_millis(5)).await;
            let _g = c.acquire().await; // holds it across our deadline
            corio::sleep(Duration::from_millis(50)).await;
        });
        let r = corio::wait_for(cond.wait(&mut guard), Duration::from_millis(10)).await;
        assert_eq!(r, Err(corio::TimeoutError));
        assert!(cond.locked(), "re-acquired after the holder let go");
        assert!(holder.done());
        drop(guard);
        assert!(!cond.locked());
    });
}

#[test]
fn lock_granted_in_the_deadlines_turn_is_returned_or_passed_on_never_leaked() {
    // B23 for a lock: the holder releases in the very turn the waiter's timeout expires.
    for release_after in [9, 10, 11] {
        run_on(EventLoop::builder().virtual_time(true), async move {
            let lock = Rc::new(Lock::new());
            let guard = lock.acquire().await;
            let l = lock.clone();
            let waiter = spawn(async move {
                corio::wait_for(l.acquire(), Duration::from_millis(10))
                    .await
                    .map(drop)
            });
            corio::sleep(Duration::from_millis(release_after)).await;
            drop(guard);
            let outcome = waiter.await.unwrap();
            assert!(!lock.locked(), "leaked ({release_after} ms: {outcome:?})");
            assert!(lock.try_acquire().is_some());
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Semaphore and BoundedSemaphore
// ---------------------------------------------------------------------------------------------

fn sem_user(sem: &Rc<Semaphore>, log: &Log, name: &'static str, hold: usize) -> Task<()> {
    let (sem, log) = (sem.clone(), log.clone());
    spawn(async move {
        let _permit = sem.acquire().await;
        push(&log, name);
        turns(hold).await;
    })
}

#[test]
fn semaphore_release_wakes_the_waiter_through_the_ready_queue() {
    // As for the Lock: never inline; the first waiter runs in a later slot, before a callback
    // queued after the release; the second is not woken by that release.
    run(async {
        let sem = Rc::new(Semaphore::new(0));
        let log = log();
        // Each keeps its permit (forgets it), so only `release` can wake the next.
        let taker = |name: &'static str| {
            let (sem, log) = (sem.clone(), log.clone());
            spawn(async move {
                sem.acquire().await.forget();
                push(&log, name);
            })
        };
        let a = taker("a");
        let b = taker("b");
        turns(1).await;
        sem.release();
        assert!(log.borrow().is_empty(), "release ran the waiter inline");
        let l = log.clone();
        corio::get_running_loop().call_soon(move || push(&l, "callback"));
        a.await.unwrap();
        turns(1).await;
        assert_eq!(*log.borrow(), ["a", "callback"]);
        assert!(!b.done());
        sem.release();
        assert_eq!(log.borrow().len(), 2, "release ran the waiter inline");
        b.await.unwrap();
        assert_eq!(*log.borrow(), ["a", "callback", "b"]);
    });
}

#[test]
fn semaphore_counts_permits() {
    run(async {
        let sem = Semaphore::new(2);
        let a = sem.acquire().await;
        assert!(!sem.locked());
        let b = sem.acquire().await;
        assert!(sem.locked());
        assert_eq!(sem.available_permits(), 0);
        assert!(sem.try_acquire().is_none());
        drop(a);
        drop(b);
        assert_eq!(sem.available_permits(), 2);
    });
}

#[test]
fn semaphore_waiters_are_served_in_fifo_order() {
    run(async {
        let sem = Rc::new(Semaphore::new(0));
        let log = log();
        let tasks: Vec<_> = ["a", "b", "c", "d"]
            .into_iter()
            .map(|n| sem_user(&sem, &log, n, 0))
            .collect();
        turns(1).await;
        for _ in 0..4 {
            sem.release();
            turns(1).await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*log.borrow(), ["a", "b", "c", "d"]);
        assert_eq!(sem.available_permits(), 4);
    });
}

#[test]
fn semaphore_locked_while_waiters_exist_so_newcomers_cannot_jump_the_queue() {
    run(async {
        let sem = Rc::new(Semaphore::new(1));
        let log = log();
        let permit = sem.acquire().await;
        let w = sem_user(&sem, &log, "waiter", 0);
        turns(1).await;
        assert!(sem.locked());
        drop(permit); // handed to the waiter, which has not run yet
        assert!(sem.locked());
        assert!(sem.try_acquire().is_none());
        let main = sem.acquire().await; // queues behind the waiter
        push(&log, "main");
        drop(main);
        w.await.unwrap();
        assert_eq!(*log.borrow(), ["waiter", "main"]);
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn semaphore_release_may_exceed_the_initial_value() {
    // asyncio probe: value became 2.
    let sem = Semaphore::new(1);
    sem.release();
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn bounded_semaphore_release_past_the_bound_is_an_error() {
    let sem = BoundedSemaphore::new(2);
    assert_eq!(sem.release(), Err(ReleaseError));
    sem.try_acquire().unwrap().forget();
    sem.try_acquire().unwrap().forget();
    assert!(sem.locked());
    assert_eq!(sem.release(), Ok(()));
    assert_eq!(sem.release(), Ok(()));
    assert_eq!(sem.release(), Err(ReleaseError));
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn bounded_semaphore_release_while_every_permit_is_held_is_an_error() {
    let sem = BoundedSemaphore::new(1);
    let permit = sem.try_acquire().unwrap();
    assert_eq!(
        sem.release(),
        Err(ReleaseError),
        "the held permit is not forgotten"
    );
    drop(permit);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn semaphore_forgotten_permit_comes_back_with_release() {
    run(async {
        let sem = Rc::new(Semaphore::new(1));
        let log = log();
        sem.acquire().await.forget();
        let w = sem_user(&sem, &log, "w", 0);
        turns(2).await;
        assert!(!w.done());
        sem.release(); // goes straight to the waiter
        w.await.unwrap();
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn semaphore_granted_then_cancelled_passes_the_permit_on() {
    run(async {
        let sem = Rc::new(Semaphore::new(1));
        let log = log();
        let permit = sem.acquire().await;
        let b = sem_user(&sem, &log, "b", 0);
        let c = sem_user(&sem, &log, "c", 0);
        turns(1).await;
        drop(permit); // granted to b
        b.cancel(None);
        assert!(b.await.is_err());
        c.await.unwrap();
        assert_eq!(*log.borrow(), ["c"]);
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn semaphore_waiters_cancelled_before_being_awoken_do_not_swallow_a_release() {
    // CPython test_acquire_cancel_before_awoken.
    run(async {
        let sem = Rc::new(Semaphore::new(0));
        let log = log();
        let keeper = |name: &'static str| {
            let (sem, log) = (sem.clone(), log.clone());
            spawn(async move {
                sem.acquire().await.forget(); // keeps the permit, as CPython's test does
                push(&log, name);
            })
        };
        let t1 = keeper("t1");
        let t2 = keeper("t2");
        let t3 = keeper("t3");
        let t4 = keeper("t4");
        turns(1).await;
        t1.cancel(None);
        t2.cancel(None);
        sem.release();
        turns(2).await;
        assert!(t3.done());
        assert!(!t4.done());
        assert_eq!(*log.borrow(), ["t3"]);
        sem.release();
        t4.await.unwrap();
        assert!(t1.cancelled() && t2.cancelled());
        assert_eq!(*log.borrow(), ["t3", "t4"]);
        assert_eq!(sem.available_permits(), 0);
    });
}

#[test]
fn semaphore_random_cancels_and_releases_never_over_grant() {
    // B24: value 2, many waiters, random cancellations: holders <= 2 always, value back to 2.
    for seed in 1..=20 {
        run(async move {
            let mut rng = Rng::new(seed);
            let sem = Rc::new(Semaphore::new(2));
            let holders = Rc::new(Cell::new(0));
            let max = Rc::new(Cell::new(0));
            let tasks: Vec<_> = (0..10)
                .map(|i| {
                    let (sem, holders, max) = (sem.clone(), holders.clone(), max.clone());
                    let hold = rng.below(4) as usize;
                    let caught = i % 2 == 0;
                    spawn(async move {
                        let body = async {
                            let _permit = sem.acquire().await;
                            let _in = Inside::enter(&holders, 2, &max);
                            turns(hold).await;
                        };
                        if caught {
                            let _ = catch_cancel(body).await;
                        } else {
                            body.await;
                        }
                    })
                })
                .collect();
            for _ in 0..30 {
                let k = rng.below(10) as usize;
                if rng.chance(30) {
                    tasks[k].cancel(None);
                }
                yield_now().await;
            }
            for t in tasks {
                let r = t.await;
                assert!(r.is_ok() || r.unwrap_err().is_cancelled(), "no panic");
            }
            assert!(max.get() <= 2);
            assert_eq!(sem.available_permits(), 2, "seed {seed}");
            assert!(!sem.locked());
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Barrier
// ---------------------------------------------------------------------------------------------

fn barrier_party(b: &Rc<Barrier>) -> Task<Result<usize, BrokenBarrierError>> {
    let b = b.clone();
    spawn(async move { b.wait().await })
}

#[test]
fn barrier_releases_all_parties_with_their_arrival_index() {
    run(async {
        let b = Rc::new(Barrier::new(3));
        let p0 = barrier_party(&b);
        let p1 = barrier_party(&b);
        turns(2).await;
        assert_eq!(b.n_waiting(), 2);
        assert!(!p0.done() && !p1.done());
        let p2 = barrier_party(&b);
        assert_eq!(p0.await.unwrap(), Ok(0));
        assert_eq!(p1.await.unwrap(), Ok(1));
        assert_eq!(p2.await.unwrap(), Ok(2));
        assert_eq!(b.n_waiting(), 0);
        assert!(!b.broken());
    });
}

#[test]
fn barrier_is_reusable_round_after_round() {
    run(async {
        let b = Rc::new(Barrier::new(2));
        let rounds = Rc::new(Cell::new(0));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (b, rounds) = (b.clone(), rounds.clone());
                spawn(async move {
                    for _ in 0..5 {
                        b.wait().await.unwrap();
                        rounds.set(rounds.get() + 1);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(rounds.get(), 10);
    });
}

#[test]
fn barrier_late_arrivals_wait_for_the_next_round() {
    run(async {
        let b = Rc::new(Barrier::new(2));
        let p0 = barrier_party(&b);
        turns(1).await;
        let p1 = barrier_party(&b); // completes the round
        let p2 = barrier_party(&b); // arrives while the round drains
        turns(3).await;
        assert_eq!(p0.await.unwrap(), Ok(0));
        assert_eq!(p1.await.unwrap(), Ok(1));
        assert!(!p2.done(), "p2 waits for a partner in the next round");
        assert_eq!(b.n_waiting(), 1);
        let p3 = barrier_party(&b);
        assert_eq!(p2.await.unwrap(), Ok(0));
        assert_eq!(p3.await.unwrap(), Ok(1));
    });
}

#[test]
fn barrier_abort_breaks_waiters_and_later_calls_until_reset() {
    run(async {
        let b = Rc::new(Barrier::new(3));
        let p0 = barrier_party(&b);
        let p1 = barrier_party(&b);
        turns(1).await;
        b.abort();
        assert!(b.broken());
        assert_eq!(p0.await.unwrap(), Err(BrokenBarrierError));
        assert_eq!(p1.await.unwrap(), Err(BrokenBarrierError));
        assert_eq!(b.wait().await, Err(BrokenBarrierError));
        b.reset();
        assert!(!b.broken());
        let ps: Vec<_> = (0..3).map(|_| barrier_party(&b)).collect();
        for (i, p) in ps.into_iter().enumerate() {
            assert_eq!(p.await.unwrap(), Ok(i));
        }
    });
}

#[test]
fn barrier_reset_breaks_the_current_waiters_then_refills() {
    run(async {
        let b = Rc::new(Barrier::new(2));
        let p0 = barrier_party(&b);
        turns(1).await;
        b.reset();
        let late = barrier_party(&b); // arrives while the reset completes
        assert_eq!(p0.await.unwrap(), Err(BrokenBarrierError));
        assert!(!b.broken());
        let partner = barrier_party(&b);
        assert_eq!(late.await.unwrap(), Ok(0));
        assert_eq!(partner.await.unwrap(), Ok(1));
    });
}

#[test]
fn barrier_cancelled_waiter_leaves_the_count() {
    run(async {
        let b = Rc::new(Barrier::new(2));
        let p0 = barrier_party(&b);
        turns(1).await;
        assert_eq!(b.n_waiting(), 1);
        p0.cancel(None);
        assert!(p0.await.unwrap_err().is_cancelled());
        assert_eq!(b.n_waiting(), 0);
        let p1 = barrier_party(&b);
        let p2 = barrier_party(&b);
        assert_eq!(p1.await.unwrap(), Ok(0));
        assert_eq!(p2.await.unwrap(), Ok(1));
    });
}

#[test]
#[should_panic(expected = "parties must be > 0")]
fn barrier_of_zero_parties_panics() {
    let _ = Barrier::new(0);
}

// ---------------------------------------------------------------------------------------------
// Allocation-free fast paths
// ---------------------------------------------------------------------------------------------

#[test]
fn uncontended_lock_acquire_and_release_do_not_allocate() {
    let ev = EventLoop::new().unwrap();
    let lock = Lock::new();
    ev.run_until_complete(async {
        drop(lock.acquire().await);
        let before = allocations();
        for _ in 0..1000 {
            let guard = lock.acquire().await;
            drop(guard);
            drop(lock.try_acquire());
        }
        assert_eq!(allocations() - before, 0);
    });
}

#[test]
fn uncontended_semaphore_event_and_condition_do_not_allocate() {
    let ev = EventLoop::new().unwrap();
    let sem = Semaphore::new(2);
    let bounded = BoundedSemaphore::new(1);
    let event = Event::new();
    let cond = Condition::new();
    ev.run_until_complete(async {
        let before = allocations();
        for _ in 0..1000 {
            let a = sem.acquire().await;
            let b = sem.acquire().await;
            drop((a, b));
            bounded.acquire().await.forget();
            bounded.release().unwrap();
            event.set();
            event.wait().await;
            event.clear();
            let guard = cond.acquire().await;
            cond.notify_all();
            drop(guard);
        }
        assert_eq!(allocations() - before, 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Stress
// ---------------------------------------------------------------------------------------------

#[test]
fn stress_10k_tasks_on_one_lock_semaphore_and_queue_with_random_cancellations() {
    // Every task takes the lock and a permit (half of them lock first, half permit first,
    // so both have thousands of waiters), holding each for 0-2 turns, then puts an item or
    // gets one. Cancellations (cancel, caught cancel, abort) rain on random tasks all along,
    // so they hit waiters, holders, and tasks granted something in that very turn.
    const TASKS: usize = 10_000;
    const PERMITS: usize = 3;

    /// Counts a task as finished when its future goes, however it goes.
    struct Finished(Rc<Cell<usize>>, Option<Rc<Cell<usize>>>);
    impl Drop for Finished {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
            if let Some(p) = &self.1 {
                p.set(p.get() - 1);
            }
        }
    }

    run(async {
        let mut rng = Rng::new(0xC0FFEE);
        let lock = Rc::new(Lock::new());
        let sem = Rc::new(Semaphore::new(PERMITS));
        let queue: Rc<Queue<usize>> = Rc::new(Queue::new(8));
        let (in_lock, max_lock) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (in_sem, max_sem) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let put = Rc::new(RefCell::new(Vec::new()));
        let got = Rc::new(RefCell::new(Vec::new()));
        let finished = Rc::new(Cell::new(0));
        let producers_left = Rc::new(Cell::new(TASKS / 2));

        let tasks: Vec<Task<()>> = (0..TASKS)
            .map(|i| {
                let lock = lock.clone();
                let sem = sem.clone();
                let queue = queue.clone();
                let (in_lock, max_lock) = (in_lock.clone(), max_lock.clone());
                let (in_sem, max_sem) = (in_sem.clone(), max_sem.clone());
                let (put, got) = (put.clone(), got.clone());
                let producer = i % 2 == 0;
                let lock_first = i % 4 < 2;
                let done = Finished(finished.clone(), producer.then(|| producers_left.clone()));
                let (hold_lock, hold_sem) = (rng.below(3) as usize, rng.below(3) as usize);
                let caught = rng.chance(50);
                spawn(async move {
                    let _done = done;
                    let locked = async {
                        let _guard = lock.acquire().await;
                        let _in = Inside::enter(&in_lock, 1, &max_lock);
                        turns(hold_lock).await;
                    };
                    let permitted = async {
                        let _permit = sem.acquire().await;
                        let _in = Inside::enter(&in_sem, PERMITS, &max_sem);
                        turns(hold_sem).await;
                    };
                    let body = async {
                        if lock_first {
                            locked.await;
                            permitted.await;
                        } else {
                            permitted.await;
                            locked.await;
                        }
                        if producer {
                            if queue.put(i).await.is_ok() {
                                put.borrow_mut().push(i);
                            }
                        } else if let Ok(item) = queue.get().await {
                            got.borrow_mut().push(item);
                        }
                    };
                    if caught {
                        let _ = catch_cancel(body).await;
                    } else {
                        body.await;
                    }
                })
            })
            .collect();

        // Phase 1: run with cancellations until every task is done or blocked on the queue.
        let (mut requests, mut turns_run, mut last, mut idle) = (0, 0, 0, 0);
        while finished.get() < TASKS && idle < 100 {
            if rng.chance(25) {
                let t = &tasks[rng.below(TASKS as u64) as usize];
                let hit = if rng.chance(25) {
                    t.abort()
                } else {
                    t.cancel(None)
                };
                requests += usize::from(hit);
            }
            yield_now().await;
            turns_run += 1;
            if finished.get() == last {
                idle += 1;
            } else {
                (last, idle) = (finished.get(), 0);
            }
        }

        // Phase 2: producers still blocked on a full queue need room: drain until shutdown,
        // then shut down so that getters blocked on an empty queue end too.
        let (q, g) = (queue.clone(), got.clone());
        let drainer = spawn(async move {
            while let Ok(item) = q.get().await {
                g.borrow_mut().push(item);
            }
        });
        while producers_left.get() > 0 {
            yield_now().await;
        }
        queue.shutdown(false);
        let mut cancelled = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await {
                Ok(()) => {}
                Err(e) => {
                    assert!(e.is_cancelled(), "task {i} panicked: {e}");
                    cancelled += 1;
                }
            }
        }
        drainer.await.unwrap();

        assert!(
            turns_run > 10_000,
            "the tasks contended ({turns_run} turns)"
        );
        assert!(
            requests > 1_000,
            "the cancellations reached live tasks ({requests})"
        );
        assert!(cancelled > 500, "{cancelled} tasks ended cancelled");
        assert!(!lock.locked(), "lock free");
        assert_eq!(max_lock.get(), 1);
        assert_eq!(sem.available_permits(), PERMITS, "every permit back");
        assert!(!sem.locked());
        assert_eq!(max_sem.get(), PERMITS);
        assert!(queue.empty());
        let mut put = put.borrow().clone();
        let mut got = got.borrow().clone();
        put.sort_unstable();
        got.sort_unstable();
        assert!(put.len() > 1_000);
        assert_eq!(put, got, "every item put was got exactly once");
    });
}
