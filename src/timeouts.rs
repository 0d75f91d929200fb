//! Timeouts: [`wait_for`], and the [`Timeout`] scope made by [`timeout`] and [`timeout_at`].
//!
//! asyncio counterpart: `timeouts.py` (`Timeout`, `timeout`, `timeout_at`) and
//! `tasks.wait_for`, which since Python 3.12 is `async with timeout(t): return await fut`,
//! as here. Layer 3: built on the cancellation scopes behind
//! [`catch_cancel`](crate::catch_cancel) and on the loop's timers ([`sleep_until`]).
//!
//! # How a timeout cancels
//!
//! A [`TimeoutScope`] runs its future *inline*, in the current task, inside a cancellation
//! scope of its own, and polls the future before it looks at the deadline. When the deadline
//! passes, the future still gets one more turn, so a result that arrives anywhere in the
//! deadline's turn (even from a callback that runs after the timer) is returned, never
//! dropped. Then the scope cancels the future the way the task would be cancelled, so that
//! the future's own cleanup runs before the timeout returns:
//!
//! - if no [`catch_cancel`](crate::catch_cancel) scope is active inside the future, nothing in
//!   it can observe the cancellation: the scope drops the future at once (every `Drop` runs;
//!   tasks it was awaiting are cancelled through the usual chain);
//! - otherwise it asks the task to cancel itself ([`TaskRef::cancel`], which counts in
//!   [`cancelling`](TaskRef::cancelling)), as asyncio's timeout does. The request reaches the
//!   innermost scope inside the future, whose handler may await cleanup; if the cancellation
//!   comes out of the future, this scope catches it, calls [`uncancel`](TaskRef::uncancel),
//!   and turns it into [`TimeoutError`] only if no other cancellation request is outstanding
//!   (asyncio's rule: an outside `cancel` keeps propagating as a cancellation).
//!
//! Either way, tasks that the cancelled future was awaiting (`Task` handles dropped during the
//! cancellation) are waited for until they finish their own cleanup, as asyncio waits for the
//! awaited task, before the timeout returns; a cancellation of the task meanwhile is passed
//! on to them and ends the task cancelled.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::base_events::timers::deadline_after;
use crate::base_events::with_current;
use crate::exceptions::{Cancelled, InvalidStateError, TimeoutError};
use crate::tasks::{CancelScope, Sleep, TaskRef, current_task, raw, reraise_current, sleep_until};

/// Runs `fut` with a time limit (asyncio's `wait_for`): its output, or [`TimeoutError`] once
/// `timeout` has passed **and** `fut` was cancelled and finished its cleanup.
///
/// `fut` runs inline in the current task (it is not spawned), exactly like
/// `timeout(timeout).run(fut)`; see [`Timeout`] and the [module docs](self) for how the
/// cancellation flows. A zero `timeout` still polls `fut` once: a ready result wins. If the
/// future catches the cancellation and returns a value anyway, that value is returned.
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let quick = corio::wait_for(async { 7 }, Duration::from_millis(50)).await;
///     assert_eq!(quick, Ok(7));
///
///     let slow = corio::sleep(Duration::from_secs(3600));
///     let late = corio::wait_for(slow, Duration::from_millis(5)).await;
///     assert_eq!(late, Err(corio::TimeoutError));
/// });
/// ```
pub fn wait_for<F: std::future::Future>(fut: F, timeout: Duration) -> WaitFor<F> {
    self::timeout(timeout).run(fut)
}

/// The future of [`wait_for`].
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let w: corio::timeouts::WaitFor<_> = corio::wait_for(async { 1 }, Duration::from_secs(1));
///     assert_eq!(w.await, Ok(1));
/// });
/// ```
pub type WaitFor<F> = TimeoutScope<F>;

/// A [`Timeout`] whose deadline is `delay` from now on the loop's clock (asyncio's
/// `timeout(delay)`). Use it with [`Timeout::run`].
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let t = corio::timeout(Duration::from_millis(5));
///     let out = t.run(corio::sleep(Duration::from_secs(3600))).await;
///     assert!(out.is_err() && t.expired());
/// });
/// ```
pub fn timeout(delay: Duration) -> Timeout {
    let now = with_current(|core| core.now()).unwrap_or_else(Instant::now);
    Timeout::new(Some(deadline_after(now, delay)))
}

/// A [`Timeout`] that expires when the loop's clock reaches `when` (asyncio's `timeout_at`;
/// see [`EventLoop::time`](crate::EventLoop::time)).
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let at = corio::get_running_loop().time() + Duration::from_millis(5);
///     let out = corio::timeout_at(at).run(async { "in time" }).await;
///     assert_eq!(out, Ok("in time"));
/// });
/// ```
pub fn timeout_at(when: Instant) -> Timeout {
    Timeout::new(Some(when))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Created,
    Entered,
    /// The deadline passed and the inner future is being cancelled.
    Expiring,
    /// The scope ended after the deadline passed.
    Expired,
    /// The scope ended before the deadline.
    Exited,
}

struct Shared {
    when: Cell<Option<Instant>>,
    state: Cell<State>,
    /// The running scope's waker, so that `reschedule` from elsewhere re-arms its timer.
    waker: RefCell<Option<Waker>>,
}

/// A deadline for a piece of async work, which can be moved while it runs (asyncio's
/// `Timeout`, the object of `async with asyncio.timeout(...) as cm`).
///
/// Make one with [`timeout`], [`timeout_at`] or [`Timeout::new`], then run the work inside it
/// with [`run`](Timeout::run): `async with timeout(d) as cm: body` is
/// `let cm = corio::timeout(d); cm.run(async { body }).await`. The body may use `cm` (a
/// cheap handle; clones share the deadline) to read or [`reschedule`](Timeout::reschedule) the
/// deadline. A `Timeout` is used for one `run` only.
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let cm = corio::timeout(Duration::from_millis(5));
///     let out = cm
///         .run(async {
///             // More time is needed: push the deadline back, from inside.
///             cm.reschedule(Some(corio::get_running_loop().time() + Duration::from_secs(1)))
///                 .unwrap();
///             corio::sleep(Duration::from_millis(20)).await;
///             "finished"
///         })
///         .await;
///     assert_eq!(out, Ok("finished"));
///     assert!(!cm.expired());
/// });
/// ```
#[derive(Clone)]
pub struct Timeout {
    shared: Rc<Shared>,
}

impl Timeout {
    /// A timeout expiring at `when` on the loop's clock, or never if `None` (asyncio's
    /// `Timeout(when)`; `timeout(None)`).
    ///
    /// ```
    /// let t = corio::Timeout::new(None);
    /// assert_eq!(t.when(), None);
    /// ```
    pub fn new(when: Option<Instant>) -> Timeout {
        Timeout {
            shared: Rc::new(Shared {
                when: Cell::new(when),
                state: Cell::new(State::Created),
                waker: RefCell::new(None),
            }),
        }
    }

    /// The current deadline, `None` for none.
    ///
    /// ```
    /// use std::time::Duration;
    /// corio::run(async {
    ///     let at = corio::get_running_loop().time() + Duration::from_secs(1);
    ///     assert_eq!(corio::timeout_at(at).when(), Some(at));
    /// });
    /// ```
    pub fn when(&self) -> Option<Instant> {
        self.shared.when.get()
    }

    /// Moves the deadline (`None`: no deadline), also while the scope runs, from inside or
    /// from another task; a deadline already past expires it at once. Fails with
    /// [`InvalidStateError`] once the deadline has passed or the scope has ended (asyncio's
    /// `RuntimeError`).
    ///
    /// ```
    /// use std::time::Duration;
    /// corio::run(async {
    ///     let cm = corio::Timeout::new(None);
    ///     let out = cm
    ///         .run(async {
    ///             cm.reschedule(Some(corio::get_running_loop().time())).unwrap(); // now
    ///             corio::sleep(Duration::from_secs(3600)).await;
    ///         })
    ///         .await;
    ///     assert!(out.is_err() && cm.expired());
    ///     assert!(cm.reschedule(None).is_err(), "too late");
    /// });
    /// ```
    pub fn reschedule(&self, when: Option<Instant>) -> Result<(), InvalidStateError> {
        match self.shared.state.get() {
            State::Created | State::Entered => {}
            State::Expiring => return Err(InvalidStateError("the Timeout is expiring")),
            State::Expired => return Err(InvalidStateError("the Timeout has expired")),
            State::Exited => return Err(InvalidStateError("the Timeout has ended")),
        }
        self.shared.when.set(when);
        if let Some(w) = self.shared.waker.borrow().as_ref() {
            w.wake_by_ref();
        }
        Ok(())
    }

    /// Whether the deadline passed while the scope ran (asyncio's `expired()`), even if the
    /// work then finished anyway.
    ///
    /// ```
    /// use std::time::Duration;
    /// corio::run(async {
    ///     let cm = corio::timeout(Duration::from_millis(1));
    ///     assert!(!cm.expired());
    ///     let _ = cm.run(corio::sleep(Duration::from_secs(1))).await;
    ///     assert!(cm.expired());
    /// });
    /// ```
    pub fn expired(&self) -> bool {
        matches!(self.shared.state.get(), State::Expiring | State::Expired)
    }

    /// Runs `fut` inline under this deadline: its output, or [`TimeoutError`] once the
    /// deadline passed and `fut` was cancelled and finished its cleanup (see the
    /// [module docs](self)). An outside cancellation of the task is not turned into a
    /// timeout: the task stays cancelled. Panics when polled if this `Timeout` already ran
    /// (asyncio's "Timeout has already been entered").
    ///
    /// ```
    /// use std::time::Duration;
    /// corio::run(async {
    ///     let cm = corio::timeout(Duration::from_millis(50));
    ///     let scope: corio::timeouts::TimeoutScope<_> = cm.run(async { "quick" });
    ///     assert_eq!(scope.await, Ok("quick"));
    /// });
    /// ```
    pub fn run<F: std::future::Future>(&self, fut: F) -> TimeoutScope<F> {
        TimeoutScope {
            cm: self.shared.clone(),
            inner: Some(Box::pin(fut)),
            scope: CancelScope::default(),
            timer: None,
            task: None,
            cancelling_at_entry: 0,
            requested: false,
            orphans: Vec::new(),
            phase: Phase::Start,
        }
    }
}

impl Default for Timeout {
    /// A timeout with no deadline.
    fn default() -> Timeout {
        Timeout::new(None)
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("when", &self.shared.when.get())
            .field("state", &self.shared.state.get())
            .finish()
    }
}

enum Phase {
    Start,
    Running,
    /// The inner future was cancelled; waiting for the tasks it awaited to finish.
    Draining(Ending),
    /// Re-raised an outside cancellation: the task ends cancelled at its next step.
    Reraising,
    Done,
}

enum Ending {
    TimedOut,
    Cancelled(Cancelled),
}

/// The future of [`Timeout::run`] and [`wait_for`]: `Ok(output)` or `Err(TimeoutError)`.
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let scope = corio::timeout(Duration::from_millis(1)).run(std::future::pending::<()>());
///     assert_eq!(scope.await, Err(corio::TimeoutError));
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct TimeoutScope<F: std::future::Future> {
    cm: Rc<Shared>,
    inner: Option<Pin<Box<F>>>,
    scope: CancelScope,
    /// Armed for the deadline it holds; re-armed when `reschedule` moved it.
    timer: Option<Sleep>,
    task: Option<TaskRef>,
    cancelling_at_entry: u32,
    /// We asked the task to cancel itself and have not called `uncancel` yet.
    requested: bool,
    /// Tasks cancelled along with the inner future, still finishing their cleanup.
    orphans: Vec<TaskRef>,
    phase: Phase,
}

impl<F: std::future::Future> TimeoutScope<F> {
    fn enter(&mut self) {
        assert_eq!(
            self.cm.state.get(),
            State::Created,
            "Timeout has already been entered"
        );
        self.cm.state.set(State::Entered);
        self.task = current_task();
        self.cancelling_at_entry = self.task.as_ref().map_or(0, TaskRef::cancelling);
        self.phase = Phase::Running;
    }

    /// Withdraws our own cancel request; returns the requests left.
    fn uncancel(&mut self) -> u32 {
        self.requested = false;
        self.task.as_ref().map_or(0, TaskRef::uncancel)
    }

    /// Drops the inner future as a cancellation and keeps the tasks it cancelled that way.
    fn cancel_inner(&mut self, c: &Cancelled) {
        let inner = self.inner.take();
        self.orphans = raw::drop_collecting_orphans(c, move || drop(inner))
            .into_iter()
            .map(TaskRef::from_raw)
            .collect();
    }

    fn poll_running(&mut self, cx: &mut Context<'_>) -> Poll<Result<F::Output, TimeoutError>> {
        {
            let mut w = self.cm.waker.borrow_mut();
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        let delivered = self.scope.poll_delivered(cx);

        // 1. The work first: a result that is ready wins over the deadline, and over a
        //    cancellation delivered to this scope (which is handed back, see `exit`).
        let inner = self.inner.as_mut().expect("running scope has its future");
        if let Poll::Ready(v) = inner.as_mut().poll(cx) {
            self.inner = None;
            self.scope.exit();
            if self.requested {
                self.uncancel();
            }
            self.finish(self.ended());
            return Poll::Ready(Ok(v));
        }

        // 2. A cancellation that came out of the work (ours after the deadline, or another).
        if delivered {
            let c = self.scope.take();
            let timed_out = self.requested && self.uncancel() <= self.cancelling_at_entry;
            self.cm.state.set(self.ended());
            self.cancel_inner(&c);
            let ending = if timed_out {
                Ending::TimedOut
            } else {
                Ending::Cancelled(c)
            };
            self.phase = Phase::Draining(ending);
            return Poll::Pending; // the caller goes on to drain
        }

        // 3. The deadline. When it passes, the work gets one more turn: a result arriving
        //    later in the deadline's turn (a callback after our timer) is still returned.
        match self.cm.state.get() {
            State::Entered => {
                let Some(at) = self.cm.when.get() else {
                    self.timer = None;
                    return Poll::Pending;
                };
                let timer = match &mut self.timer {
                    Some(t) if t.deadline() == at => t,
                    slot => slot.insert(sleep_until(at)),
                };
                if Pin::new(timer).poll(cx).is_ready() {
                    self.timer = None;
                    self.cm.state.set(State::Expiring);
                    cx.waker().wake_by_ref();
                }
            }
            State::Expiring if !self.requested => match &self.task {
                Some(task) if !self.scope.is_innermost() => {
                    // A `catch_cancel` inside the work gets it first and may await cleanup.
                    task.cancel(None);
                    self.requested = true;
                }
                _ => {
                    // Nothing inside the work can catch a cancellation: cancel it now.
                    self.cm.state.set(State::Expired);
                    self.cancel_inner(&Cancelled::default());
                    self.phase = Phase::Draining(Ending::TimedOut);
                }
            },
            _ => {}
        }
        Poll::Pending
    }

    fn poll_draining(&mut self, cx: &mut Context<'_>) -> Poll<Result<F::Output, TimeoutError>> {
        while !self.orphans.is_empty() {
            // Keep catching while the orphans clean up; a new cancellation is passed on to
            // them, and the task will end cancelled rather than timed out.
            if self.scope.poll_delivered(cx) {
                let c = self.scope.take();
                for t in &self.orphans {
                    t.cancel(c.message());
                }
                self.phase = Phase::Draining(Ending::Cancelled(c));
                continue;
            }
            match self.orphans.last() {
                Some(t) if t.poll_done(cx).is_pending() => return Poll::Pending,
                _ => drop(self.orphans.pop()),
            }
        }
        self.scope.exit();
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Draining(Ending::TimedOut) => {
                self.finish(State::Expired);
                Poll::Ready(Err(TimeoutError))
            }
            Phase::Draining(Ending::Cancelled(c)) => {
                self.finish(self.ended());
                reraise_current(&c);
                self.phase = Phase::Reraising;
                Poll::Pending
            }
            _ => unreachable!("draining"),
        }
    }

    /// The state to end in: expired if the deadline passed.
    fn ended(&self) -> State {
        match self.cm.state.get() {
            State::Expiring | State::Expired => State::Expired,
            _ => State::Exited,
        }
    }

    fn finish(&mut self, state: State) {
        self.cm.state.set(state);
        self.cm.waker.borrow_mut().take();
        self.phase = Phase::Done;
    }
}

impl<F: std::future::Future> std::future::Future for TimeoutScope<F> {
    type Output = Result<F::Output, TimeoutError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Phase::Start = this.phase {
            this.enter();
        }
        if let Phase::Running = this.phase {
            let out = this.poll_running(cx);
            if !matches!(this.phase, Phase::Draining(_)) {
                return out;
            }
        }
        match this.phase {
            Phase::Draining(_) => this.poll_draining(cx),
            Phase::Reraising => Poll::Pending,
            _ => panic!("TimeoutScope polled after completion"),
        }
    }
}

impl<F: std::future::Future> Drop for TimeoutScope<F> {
    fn drop(&mut self) {
        // Dropped mid-way (its task is being torn down, or the awaiter gave up on it):
        // withdraw our own cancel request so it cannot hit the task later.
        if self.requested {
            self.uncancel();
        }
        if matches!(self.phase, Phase::Running | Phase::Draining(_)) {
            self.finish(self.ended());
        }
    }
}

impl<F: std::future::Future> fmt::Debug for TimeoutScope<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutScope")
            .field("when", &self.cm.when.get())
            .field("state", &self.cm.state.get())
            .field("orphans", &self.orphans.len())
            .finish()
    }
}
