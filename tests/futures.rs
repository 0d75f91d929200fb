//! Tests of `corio::Future` (asyncio's `Future`): set once, errors, cancellation, done
//! callbacks through the ready queue, several awaiters, and the asyncio cancel chain.

// The tests spell out `spawn(async move { fut.await })` so that the awaiting task is visible.
#![allow(clippy::redundant_async_block)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use corio::{EventLoop, FutureError};

type Log = Rc<RefCell<Vec<&'static str>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

#[derive(Debug)]
struct AppError(&'static str);

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for AppError {}

#[test]
fn set_result_makes_the_future_done_with_that_result() {
    let ev = EventLoop::new().unwrap();
    let fut = ev.create_future::<String>();
    assert!(!fut.done());
    assert!(matches!(fut.result(), Err(FutureError::InvalidState(_))));
    fut.set_result("value".to_string()).unwrap();
    assert!(fut.done());
    assert!(!fut.cancelled());
    assert!(fut.exception().is_none());
    assert_eq!(fut.result().unwrap(), "value");
    assert_eq!(fut.result().unwrap(), "value", "result() can be read again");
    assert_eq!(ev.run_until_complete(fut.clone()).unwrap(), "value");
}

#[test]
fn setting_a_done_future_again_is_an_invalid_state_error() {
    let ev = EventLoop::new().unwrap();
    let fut = ev.create_future::<u32>();
    fut.set_result(1).unwrap();
    let err = fut.set_result(2).unwrap_err();
    assert!(err.to_string().contains("already done"), "{err}");
    assert!(fut.set_exception(AppError("late")).is_err());
    assert!(!fut.cancel(None), "cancel() of a done future returns false");
    assert_eq!(fut.result().unwrap(), 1, "the first result stays");

    let cancelled = ev.create_future::<u32>();
    assert!(cancelled.cancel(None));
    assert!(cancelled.set_result(3).is_err());
    assert!(!cancelled.cancel(None));
}

#[test]
fn set_exception_fails_the_future_and_its_awaiters() {
    let ev = EventLoop::new().unwrap();
    let fut = ev.create_future::<u32>();
    fut.set_exception(AppError("disk on fire")).unwrap();
    assert!(fut.done());
    assert!(!fut.cancelled());
    assert_eq!(fut.exception().unwrap().to_string(), "disk on fire");
    match fut.result() {
        Err(FutureError::Exception(e)) => assert_eq!(e.to_string(), "disk on fire"),
        other => panic!("expected the exception, got {other:?}"),
    }
    let err = ev.run_until_complete(fut.clone()).unwrap_err();
    assert_eq!(err.to_string(), "future failed: disk on fire");
}

#[test]
fn cancel_message_reaches_the_awaiting_task() {
    corio::run(async {
        let fut = corio::Future::<u32>::new();
        let f = fut.clone();
        let waiter = corio::spawn(async move { f.await });
        corio::yield_now().await; // the waiter is now parked on the future
        assert!(fut.cancel(Some("no longer needed")));
        assert!(fut.cancelled());
        match waiter.await.unwrap() {
            Err(FutureError::Cancelled(c)) => assert_eq!(c.message(), Some("no longer needed")),
            other => panic!("expected Cancelled, got {other:?}"),
        }
        match fut.result() {
            Err(e) => assert!(e.is_cancelled()),
            Ok(v) => panic!("a cancelled future has no result, got {v}"),
        }
    });
}

#[test]
fn done_callbacks_run_through_call_soon_in_registration_order_never_inline() {
    let ev = EventLoop::new().unwrap();
    let fut = ev.create_future::<u32>();
    let seen = log();
    for name in ["first", "second", "third"] {
        let s = seen.clone();
        fut.add_done_callback(move |f| {
            assert_eq!(f.result().unwrap(), 9);
            s.borrow_mut().push(name);
        });
    }
    ev.run_until_complete(async {
        fut.set_result(9).unwrap();
        assert!(seen.borrow().is_empty(), "set_result ran a callback inline");
        corio::yield_now().await;
    });
    assert_eq!(*seen.borrow(), ["first", "second", "third"]);

    // Registered on a done future: scheduled at once, still not inline.
    let s = seen.clone();
    fut.add_done_callback(move |_| s.borrow_mut().push("late"));
    assert_eq!(seen.borrow().len(), 3);
    ev.run_until_complete(corio::yield_now());
    assert_eq!(seen.borrow().last(), Some(&"late"));
}

#[test]
fn task_woken_by_set_result_runs_before_a_callback_scheduled_right_after() {
    // asyncio-map section 4, item 3 (probe): the wake-up goes to the ready queue first.
    corio::run(async {
        let seen = log();
        let fut = corio::Future::<()>::new();
        let (f, s) = (fut.clone(), seen.clone());
        let waiter = corio::spawn(async move {
            f.await.unwrap();
            s.borrow_mut().push("task");
        });
        corio::yield_now().await;
        fut.set_result(()).unwrap();
        let s = seen.clone();
        corio::get_running_loop().call_soon(move || s.borrow_mut().push("callback"));
        waiter.await.unwrap();
        corio::yield_now().await;
        assert_eq!(*seen.borrow(), ["task", "callback"]);
    });
}

#[test]
fn removed_done_callback_never_runs() {
    let ev = EventLoop::new().unwrap();
    let fut = ev.create_future::<u32>();
    let seen = log();
    let s = seen.clone();
    let a = fut.add_done_callback(move |_| s.borrow_mut().push("a"));
    let s = seen.clone();
    let b = fut.add_done_callback(move |_| s.borrow_mut().push("b"));
    assert_ne!(a, b);
    assert!(fut.remove_done_callback(a));
    assert!(!fut.remove_done_callback(a), "already removed");
    fut.set_result(1).unwrap();
    assert!(!fut.remove_done_callback(b), "b was already scheduled");
    ev.run_until_complete(corio::yield_now());
    assert_eq!(*seen.borrow(), ["b"]);
}

#[test]
fn several_awaiters_all_get_the_value() {
    corio::run(async {
        let fut = corio::Future::<Rc<str>>::new();
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let f = fut.clone();
                corio::spawn(async move { f.await.unwrap() })
            })
            .collect();
        corio::sleep(Duration::from_millis(1)).await;
        assert!(waiters.iter().all(|w| !w.done()));
        fut.set_result(Rc::from("shared")).unwrap();
        for w in waiters {
            assert_eq!(&*w.await.unwrap(), "shared");
        }
    });
}

#[test]
fn cancelling_a_task_that_awaits_a_future_cancels_the_future() {
    corio::run(async {
        let fut = corio::Future::<u32>::new();
        let f = fut.clone();
        let task = corio::spawn(async move { f.await });
        corio::yield_now().await;
        assert!(task.cancel(Some("shutting down")));
        let err = task.await.unwrap_err();
        assert!(err.is_cancelled());
        assert!(
            fut.cancelled(),
            "the awaited future was cancelled with the task"
        );
        match fut.result() {
            Err(FutureError::Cancelled(c)) => assert_eq!(c.message(), Some("shutting down")),
            other => panic!("expected Cancelled, got {other:?}"),
        }
    });
}

#[test]
fn cancelling_a_task_that_catches_cancellation_still_cancels_the_awaited_future() {
    corio::run(async {
        let fut = corio::Future::<u32>::new();
        let f = fut.clone();
        let task = corio::spawn(async move {
            match corio::catch_cancel(f).await {
                Ok(_) => "finished",
                Err(_) => "caught",
            }
        });
        corio::yield_now().await;
        task.cancel(None);
        assert_eq!(task.await.unwrap(), "caught");
        assert!(fut.cancelled());
    });
}

#[test]
fn a_future_dropped_by_a_task_that_is_not_cancelled_stays_pending() {
    // The cancel chain applies to cancellation only: a task that simply stops awaiting a
    // future (here: it returns early from a select-like poll) must leave it alone.
    corio::run(async {
        let fut = corio::Future::<u32>::new();
        let f = fut.clone();
        let polled = Rc::new(Cell::new(false));
        let p = polled.clone();
        let task = corio::spawn(async move {
            let mut f = std::pin::pin!(f);
            std::future::poll_fn(|cx| {
                let _ = f.as_mut().poll(cx);
                p.set(true);
                std::task::Poll::Ready(())
            })
            .await;
        });
        task.await.unwrap();
        assert!(polled.get());
        assert!(!fut.done());
        fut.set_result(3).unwrap();
    });
}
