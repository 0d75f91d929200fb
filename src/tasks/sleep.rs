//! `sleep`, `sleep_until` and `yield_now`: the loop's timer as hand-written futures.
//!
//! asyncio counterpart: `asyncio.sleep` (and `sleep(0)`). Layer 3: uses the loop's timer
//! queue. A `Sleep` is 32 bytes and allocates nothing: its timer is a slot in the loop's
//! timer slab, freed when the sleep completes or is dropped.

use std::fmt;
use std::pin::Pin;
use std::rc::Weak;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::base_events::timers::{TimerKey, deadline_after};
use crate::base_events::{Core, expect_current, with_current};

/// Waits until `duration` has passed (asyncio's `sleep`). Never wakes early; a huge
/// duration simply never ends; a zero (or already passed) deadline still gives up one turn
/// of the loop, like asyncio's `sleep(0)`. Panics if polled outside a running loop.
///
/// ```
/// use std::time::{Duration, Instant};
/// corio::run(async {
///     let t0 = Instant::now();
///     corio::sleep(Duration::from_millis(20)).await;
///     assert!(t0.elapsed() >= Duration::from_millis(20));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let now = with_current(|core| core.now()).unwrap_or_else(Instant::now);
    Sleep {
        deadline: deadline_after(now, duration),
        timer: None,
    }
}

/// Waits until the loop's clock reaches `deadline` (see [`EventLoop::time`](crate::EventLoop::time)).
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let ev = corio::get_running_loop();
///     let at = ev.time() + Duration::from_millis(5);
///     corio::sleep_until(at).await;
///     assert!(ev.time() >= at);
/// });
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

/// Marks a `Sleep` whose deadline had passed at its first poll and that yielded once.
const YIELDED: TimerKey = TimerKey::NONE;

/// The future of [`sleep`] and [`sleep_until`].
pub struct Sleep {
    /// Fixed when `sleep(d)` is called: `d` after the running loop's [`time`](crate::EventLoop::time)
    /// (or after `Instant::now()` when called outside a loop).
    deadline: Instant,
    timer: Option<(TimerKey, Weak<Core>)>,
}

impl Sleep {
    /// When the sleep ends, on the loop's clock.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl std::future::Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if let Some((key, core)) = &this.timer {
            if *key == YIELDED {
                this.timer = None;
                return Poll::Ready(());
            }
            let Some(core) = core.upgrade() else {
                return Poll::Pending; // the loop is gone; nothing will ever fire
            };
            let state = core.timers.borrow_mut().poll_key(*key, cx.waker());
            return match state {
                Some(false) => Poll::Pending,
                Some(true) | None => {
                    core.timers.borrow_mut().remove(*key);
                    this.timer = None;
                    Poll::Ready(())
                }
            };
        }
        expect_current("sleep", |core| {
            let deadline = this.deadline;
            if deadline <= core.now() {
                // Already due: still give up one turn, as asyncio's `sleep(0)` does, so a task
                // looping over past deadlines (after a stall) cannot starve the others.
                this.timer = Some((YIELDED, Weak::new()));
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let key = core
                .timers
                .borrow_mut()
                .insert_waker(deadline, cx.waker().clone());
            this.timer = Some((key, std::rc::Rc::downgrade(core)));
            Poll::Pending
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((key, core)) = self.timer.take() {
            if let Some(core) = core.upgrade() {
                if let Ok(mut t) = core.timers.try_borrow_mut() {
                    t.remove(key);
                }
            }
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("armed", &self.timer.is_some())
            .finish()
    }
}

/// Gives up exactly one turn of the loop (asyncio's `await asyncio.sleep(0)`).
///
/// ```
/// corio::run(async {
///     let t = corio::spawn(async { "ran" });
///     corio::yield_now().await; // the new task runs in this turn
///     assert!(t.done());
/// });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
pub struct YieldNow {
    yielded: bool,
}

impl std::future::Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
