//! Tasks: a future scheduled on the loop, its handle, and cancellation.
//!
//! asyncio counterpart: `tasks.py` (`Task`, `create_task`, `current_task`, `all_tasks`,
//! `sleep`). Layer 3: built on the loop core; used by everything above.
//!
//! # The cancellation model
//!
//! [`Task::cancel`] is a *request*, as in asyncio. It is delivered when the task next runs,
//! which is at its current `.await` (its suspension point):
//!
//! - If the task is inside a [`catch_cancel`] scope, the innermost scope drops the future it
//!   wraps and returns `Err(Cancelled)`: the task sees the cancellation as a value, like
//!   `except CancelledError:`, and may run async cleanup, or even carry on.
//! - Otherwise the task's future is dropped right there (tokio's `abort`): every `Drop` runs,
//!   so whatever the task held is released; the task ends cancelled.
//!
//! Whoever awaits the task gets `Err(TaskError::Cancelled(msg))` if it ended cancelled, and
//! `Ok(value)` if it caught the cancellation and returned normally (asyncio's rule: a task is
//! cancelled only if the cancellation escaped it). Like asyncio, cancelling a task that awaits
//! another task or a [`Future`](crate::Future) cancels that too. See DESIGN.md, "Cancellation".

mod cancel;
mod compose;
#[allow(unsafe_code)]
pub(crate) mod raw;
mod sleep;

pub(crate) use self::cancel::{CancelScope, reraise_current};
pub use self::cancel::{CatchCancel, catch_cancel};
pub use self::compose::{
    AsCompleted, Gather, Gather2, Gather3, Gather4, Gather5, Gather6, GatherAll, GatherAll2,
    GatherAll3, GatherAll4, GatherAll5, GatherAll6, Next, ReturnWhen, Shield, Wait, as_completed,
    gather, gather2, gather3, gather4, gather5, gather6, shield, wait,
};
pub use self::sleep::{Sleep, YieldNow, sleep, sleep_until, yield_now};

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::base_events::{Core, ExceptionContext, expect_current, with_current};
use crate::exceptions::TaskError;

use self::raw::{JoinTarget, NotSend, Outcome, RawTask, TaskCell};

pub(crate) use self::raw::without_current_task as poll_outside_task;

/// Spawns `fut` on `core`; the caller's location is where the task was created (debug
/// mode), so callers that want their own caller's location are `#[track_caller]` too.
#[track_caller]
pub(crate) fn spawn_on<F>(core: &Rc<Core>, fut: F, name: Option<String>) -> Task<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    spawn_on_at(core, fut, name, std::panic::Location::caller())
}

/// [`spawn_on`] with the creation site given (for callers that go through a closure, which
/// `#[track_caller]` does not see through).
pub(crate) fn spawn_on_at<F>(
    core: &Rc<Core>,
    fut: F,
    name: Option<String>,
    at: &'static std::panic::Location<'static>,
) -> Task<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let cell = TaskCell::spawn(core, fut, name, at);
    Task {
        raw: cell,
        _not_send: NotSend::default(),
    }
}

/// Schedules `fut` as a task on the running loop (asyncio's `create_task`, tokio's `spawn`).
///
/// The task starts at the loop's next turn, not now (asyncio's rule): code after `spawn`
/// runs first. It runs to completion even if the returned handle is dropped. `fut` need not
/// be `Send`. Panics outside a running loop.
///
/// ```
/// corio::run(async {
///     let t = corio::spawn(async { 6 * 7 });
///     assert_eq!(t.await.unwrap(), 42);
/// });
/// ```
#[doc(alias = "create_task")]
#[track_caller]
pub fn spawn<F>(fut: F) -> Task<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let at = std::panic::Location::caller();
    expect_current("spawn", |core| {
        assert!(!core.is_closed(), "spawn: Event loop is closed");
        if core.debug.get() {
            crate::debug::check_thread(core, "spawn");
        }
        spawn_on_at(core, fut, None, at)
    })
}

/// asyncio's name for [`spawn`].
#[track_caller]
pub fn create_task<F>(fut: F) -> Task<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    spawn(fut)
}

/// The task being run now, if the caller runs inside a task (asyncio's `current_task`).
///
/// ```
/// corio::run(async {
///     let me = corio::current_task().expect("corio::run runs main as a task");
///     assert!(!me.done());
/// });
/// ```
pub fn current_task() -> Option<TaskRef> {
    raw::current_task().map(TaskRef::from_raw)
}

/// The unfinished tasks of the running loop (asyncio's `all_tasks`). Panics outside a loop.
pub fn all_tasks() -> Vec<TaskRef> {
    expect_current("all_tasks", |core| core.tasks.borrow().live())
}

/// Requests cancellation of `task`; see the module docs.
fn request_cancel(task: &Arc<dyn RawTask>, msg: Option<String>, abort: bool) -> bool {
    let h = task.header();
    if h.is_done() {
        return false;
    }
    h.requests.set(h.requests.get().saturating_add(1));
    h.with_extra(|e| e.cancel_msg = msg.map(Arc::from));
    h.cancel_pending.set(true);
    if abort {
        h.abort.set(true);
    }
    raw::schedule(task.clone());
    true
}

/// Common operations on tasks, shared by [`Task`] and [`TaskRef`].
macro_rules! task_methods {
    () => {
        /// The task's name: the one given, or `Task-N`.
        pub fn name(&self) -> String {
            self.raw.header().name()
        }

        /// Renames the task.
        pub fn set_name(&self, name: impl Into<String>) {
            let name = name.into();
            self.raw.header().with_extra(|e| e.name = Some(name));
        }

        /// A number unique among this loop's tasks.
        pub fn id(&self) -> u64 {
            self.raw.header().id
        }

        /// Whether the task has finished: returned, panicked or was cancelled.
        pub fn done(&self) -> bool {
            self.raw.header().is_done()
        }

        /// Whether the task ended cancelled.
        pub fn cancelled(&self) -> bool {
            self.raw.header().outcome.get() == Outcome::Cancelled
        }

        /// Whether the task ended by panicking.
        pub fn panicked(&self) -> bool {
            self.raw.header().outcome.get() == Outcome::Panicked
        }

        /// Requests cancellation with an optional message (asyncio's `Task.cancel(msg)`).
        /// Returns `false` if the task is already done. Delivered at the task's next
        /// suspension point: see the [module docs](crate::tasks).
        pub fn cancel(&self, msg: Option<&str>) -> bool {
            request_cancel(&self.raw.clone().as_dyn(), msg.map(String::from), false)
        }

        /// Cancels without giving the task a chance to catch it (tokio's `abort`): its
        /// future is dropped at its next step, whatever `catch_cancel` scopes it is in.
        pub fn abort(&self) -> bool {
            request_cancel(&self.raw.clone().as_dyn(), None, true)
        }

        /// How many cancel requests are outstanding (asyncio's `cancelling()`).
        pub fn cancelling(&self) -> u32 {
            u32::from(self.raw.header().requests.get())
        }

        /// Withdraws one cancel request and returns how many remain (asyncio's `uncancel()`).
        pub fn uncancel(&self) -> u32 {
            let h = self.raw.header();
            let n = h.requests.get().saturating_sub(1);
            h.requests.set(n);
            let n = u32::from(n);
            if n == 0 && h.delivered_to.get() == 0 {
                h.cancel_pending.set(false);
                h.abort.set(false);
            }
            n
        }

        /// Calls `f` (through the loop's ready queue, never inline) once the task is done,
        /// or in the next turn if it already is (asyncio's `add_done_callback`).
        pub fn add_done_callback(&self, f: impl FnOnce(&TaskRef) + 'static) {
            let raw = self.raw.clone().as_dyn();
            if raw.header().is_done() {
                let tref = TaskRef::from_raw(raw);
                with_current(|core| {
                    core.call_soon_dyn(crate::events::OnceHandle::boxed(move || f(&tref)))
                });
            } else {
                raw.header()
                    .with_extra(|e| e.done_callbacks.push(Box::new(f)));
            }
        }

        /// Polls made and time spent polling so far (recorded in debug mode only).
        pub fn poll_stats(&self) -> (u64, std::time::Duration) {
            self.raw.header().peek_extra(|e| {
                e.map_or((0, std::time::Duration::ZERO), |e| (e.polls, e.poll_time))
            })
        }

        /// The task's name, state, poll count and time, and where it was spawned: what
        /// [`EventLoop::dump`](crate::EventLoop::dump) lists (see [`crate::debug`]).
        pub fn info(&self) -> crate::debug::TaskInfo {
            crate::debug::TaskInfo::of(self.raw.header())
        }

        /// Where the task was spawned, if debug mode was on then (the caller of `spawn` or
        /// `create_task`).
        ///
        /// ```
        /// corio::run_with(corio::EventLoop::builder().debug(true), async {
        ///     let t = corio::spawn(async {});
        ///     assert_eq!(t.created_at().unwrap().line(), line!() - 1);
        /// });
        /// ```
        pub fn created_at(&self) -> Option<&'static std::panic::Location<'static>> {
            self.raw.header().created_at()
        }
    };
}

/// A handle to a scheduled future (asyncio's `Task`, tokio's `JoinHandle`).
///
/// Awaiting it gives the future's output, or [`TaskError`] if the task was cancelled or
/// panicked. Dropping it does **not** stop the task (it is *detached*); a detached task that
/// panics is reported through the loop's exception handler. `Task` is `!Send`: it stays on
/// its loop's thread.
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let t = corio::spawn(async {
///         corio::sleep(Duration::from_secs(3600)).await;
///     });
///     corio::yield_now().await;
///     assert!(t.cancel(Some("enough")));
///     let err = t.await.unwrap_err();
///     assert!(err.is_cancelled());
///     assert_eq!(err.to_string(), "task cancelled: enough");
/// });
/// ```
pub struct Task<T: 'static> {
    raw: Arc<dyn JoinTarget<T>>,
    _not_send: NotSend,
}

impl<T: 'static> Task<T> {
    task_methods!();

    /// Takes the outcome if the task is done (asyncio's `result()`/`exception()`), or `None`
    /// if it is still running or the outcome was already taken (Rust values move: the output
    /// is handed over once, by this or by `.await`).
    pub fn result(&self) -> Option<Result<T, TaskError>> {
        self.raw.take_output()
    }

    /// An untyped handle to the same task.
    pub fn as_ref(&self) -> TaskRef {
        TaskRef::from_raw(self.raw.clone().as_dyn())
    }

    /// `Ready` once the task is done, without taking its output and without marking the
    /// handle awaited (so dropping it later never cancels the task): for `wait`,
    /// `as_completed` and `shield`, which own the handle.
    pub(crate) fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.raw.header().poll_done(cx)
    }
}

impl<T: 'static> std::future::Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let awaited = &self.raw.header().awaited;
        awaited.set(true);
        let out = self.raw.poll_join(cx);
        if out.is_ready() {
            awaited.set(false);
        }
        out
    }
}

impl<T: 'static> Drop for Task<T> {
    fn drop(&mut self) {
        let h = self.raw.header();
        if !h.is_done() {
            // Dropped while being awaited by a task that is being cancelled: cancel this one
            // too, as asyncio cancels the future a cancelled task waits on.
            if h.awaited.get() {
                if let Some(c) = raw::cancelling_now() {
                    let raw = self.raw.clone().as_dyn();
                    request_cancel(&raw, c.message().map(String::from), false);
                    raw::note_orphan(&raw);
                }
            }
            h.detached.set(true);
            return;
        }
        h.detached.set(true);
        if let Some(Err(TaskError::Panicked(p))) = self.raw.take_output() {
            let ctx = ExceptionContext::panic(
                "Task exception was never retrieved",
                Some(h.name()),
                p.as_ref(),
            )
            .created(h.created_at());
            crate::debug::report_anywhere(ctx);
        }
    }
}

impl<T: 'static> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.raw.header().fmt(f)
    }
}

/// An untyped handle to a task, as [`current_task`] and [`all_tasks`] return.
#[derive(Clone)]
pub struct TaskRef {
    raw: Arc<dyn RawTask>,
    _not_send: NotSend,
}

impl TaskRef {
    pub(crate) fn from_raw(raw: Arc<dyn RawTask>) -> TaskRef {
        TaskRef {
            raw,
            _not_send: NotSend::default(),
        }
    }

    /// `Ready` once the task is done. Uses the task's join slot: only for a task whose
    /// `Task<T>` handle is gone (an orphan, see `raw::drop_collecting_orphans`).
    pub(crate) fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.raw.header().poll_done(cx)
    }

    task_methods!();
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &TaskRef) -> bool {
        raw::same_task(&*self.raw, &*other.raw)
    }
}

impl Eq for TaskRef {}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.raw.header().fmt(f)
    }
}
