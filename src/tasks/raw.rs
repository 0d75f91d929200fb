//! The task core: one allocation per task holding its header and its future, and the
//! wakers that point at it. This file and `sys/` are the only places with `unsafe`.
//!
//! asyncio counterpart: the machinery inside `tasks.py` (`Task.__step`, `__wakeup`,
//! `_register_task`). Layer 3: used by [`crate::tasks`], scheduled by the loop core.
//!
//! # Layout
//!
//! A task is an `Arc<TaskCell<F>>`:
//!
//! ```text
//! ArcInner { strong, weak,
//!            TaskCell { header: Header { state (atomic), shared (Arc), id, slot, cancel..., waker, join_waker, extra },
//!                       stage: UnsafeCell<Stage<F>> = Running(F) | Finished(Result<F::Output, TaskError>) | Consumed } }
//! ```
//!
//! Its wakers are ordinary `std::task::Waker`s made from that `Arc` through the `Wake` trait,
//! so they are `Send + Sync` and sound wherever they travel (B12). References to the task:
//! the loop's task table (while the future is alive), the ready queue entry (while
//! scheduled), the task's own waker stored in its header (until it finishes), the `Task<T>` /
//! `TaskRef` handles, and any waker clones held by timers, I/O entries, other threads.
//!
//! # Thread rule (why `TaskCell` may be `Send + Sync` although `F` is not)
//!
//! Other threads can only hold wakers. A waker from another thread touches exactly three
//! things: the atomic `state`, the `Arc<Shared>` (itself `Send + Sync`) and the `Arc`
//! reference count. Everything else (the future, the output, the `Cell`s) is touched only on
//! the loop's thread, because the handles that reach them are `!Send` and the loop runs the
//! task only on its own thread. The future and the output are dropped on the loop's thread
//! before the last reference can be a foreign waker: the task table keeps a reference until
//! the future is dropped (on completion, cancellation or loop close), and an output is dropped
//! either at completion (no handle left) or when the `!Send` handle drops it.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use crate::base_events::remote::{RemoteItem, Shared};

use crate::base_events::{Core, ExceptionContext, Ready, push_if_local};
use crate::exceptions::{Cancelled, TaskError};

/// `state` bit: the task is in a ready queue (local or remote); a wake-up does nothing more.
const SCHEDULED: u8 = 1;
/// `state` bit: the future is gone (finished, cancelled or destroyed); wake-ups are ignored.
const DONE: u8 = 2;

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pending,
    Returned,
    Cancelled,
    Panicked,
}

/// A task's done callback (asyncio's `add_done_callback`).
pub(crate) type DoneCallback = Box<dyn FnOnce(&crate::tasks::TaskRef)>;

/// Rarely used per-task data, allocated on first use.
#[derive(Default)]
pub(crate) struct Extra {
    pub(crate) name: Option<String>,
    pub(crate) cancel_msg: Option<Arc<str>>,
    pub(crate) done_callbacks: Vec<DoneCallback>,
    /// Active `catch_cancel` scopes, innermost last: (scope id, its waker).
    pub(crate) scopes: Vec<(u16, Option<Waker>)>,
    /// Where the task was created (kept in debug mode).
    pub(crate) created_at: Option<&'static std::panic::Location<'static>>,
    pub(crate) polls: u64,
    pub(crate) poll_time: std::time::Duration,
    /// The task's context variables (empty unless some were set: see `contextvars`).
    /// Holds `Rc`s: emptied when the task finishes or is destroyed, on the loop thread.
    pub(crate) context: crate::contextvars::Context,
}

/// The part of a task that does not depend on its future's type.
pub(crate) struct Header {
    state: AtomicU8,
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: u64,
    /// Index in the loop's task table.
    slot: Cell<u32>,
    /// The `Task<T>` handle was dropped: nobody will read the output.
    pub(crate) detached: Cell<bool>,
    /// The `Task<T>` handle (there is only one) is being awaited.
    pub(crate) awaited: Cell<bool>,
    /// Outstanding cancel requests (asyncio's `cancelling()`).
    pub(crate) requests: Cell<u16>,
    /// A cancel request waits to be delivered at the next step.
    pub(crate) cancel_pending: Cell<bool>,
    /// The pending request ignores `catch_cancel` scopes (tokio's `abort`).
    pub(crate) abort: Cell<bool>,
    /// The scope the pending request was handed to (0: none yet).
    pub(crate) delivered_to: Cell<u16>,
    /// Someone holds the stage (`with_stage`): a hand-rolled `RefCell` flag, 1 byte.
    busy: Cell<bool>,
    /// How the task ended, once it did.
    pub(crate) outcome: Cell<Outcome>,
    /// The task's own waker, made once; `None` once the task is done (breaks the cycle).
    waker: Cell<Option<Waker>>,
    /// Whoever awaits the task's `Task<T>` handle.
    join_waker: Cell<Option<Waker>>,
    /// Taken out while in use (see `with_extra`); 8 bytes instead of a `RefCell`'s 16.
    extra: Cell<Option<Box<Extra>>>,
}

impl Header {
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) & DONE != 0
    }

    /// Whether the task is in a ready queue (for the loop dump).
    pub(crate) fn is_scheduled(&self) -> bool {
        self.state.load(Ordering::Acquire) & SCHEDULED != 0
    }

    /// Where the task was spawned, if it was spawned in debug mode.
    pub(crate) fn created_at(&self) -> Option<&'static std::panic::Location<'static>> {
        self.peek_extra(|e| e.and_then(|e| e.created_at))
    }

    /// Runs `f` on the task's extra data, creating it on first use. `f` must not call
    /// `with_extra` (or `peek_extra`) on the same task again.
    pub(crate) fn with_extra<R>(&self, f: impl FnOnce(&mut Extra) -> R) -> R {
        let mut e = self.extra.take().unwrap_or_default();
        let r = f(&mut e);
        self.extra.set(Some(e));
        r
    }

    /// Like `with_extra` without creating the extra data: `f` gets `None` if there is none.
    pub(crate) fn peek_extra<R>(&self, f: impl FnOnce(Option<&mut Extra>) -> R) -> R {
        let mut e = self.extra.take();
        let r = f(e.as_deref_mut());
        self.extra.set(e);
        r
    }

    pub(crate) fn name(&self) -> String {
        self.peek_extra(|e| e.and_then(|e| e.name.clone()))
            .unwrap_or_else(|| format!("Task-{}", self.id))
    }

    pub(crate) fn take_cancel_msg(&self) -> Cancelled {
        Cancelled::from_arc(self.with_extra(|e| e.cancel_msg.clone()))
    }

    /// `Ready` once the task is done; otherwise parks `cx`'s waker in the join slot, without
    /// taking the output. The join slot holds one waker: only for a task whose `Task<T>`
    /// handle is owned by the caller (or gone), so nothing else awaits it meanwhile.
    pub(crate) fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_done() {
            return Poll::Ready(());
        }
        let w = match self.join_waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.join_waker.set(Some(w));
        Poll::Pending
    }
}

enum Stage<F: std::future::Future> {
    Running(F),
    Finished(Result<F::Output, TaskError>),
    Consumed,
}

/// A task: header plus future, in one `Arc` allocation.
pub(crate) struct TaskCell<F: std::future::Future> {
    header: Header,
    /// Only ever reached through [`TaskCell::with_stage`].
    stage: UnsafeCell<Stage<F>>,
}

// SAFETY: (Send) other threads only ever receive `Arc<TaskCell<F>>` inside a `Waker` or a
// `RemoteItem::Task`, and through those they touch only `header.state` (atomic),
// `header.shared` (`Arc<Shared>`, which is `Send + Sync`) and the `Arc` counts; see the
// module docs. `F`, its output and the `Cell`s are touched only on the loop thread, and
// `Drop` below checks that the stage is empty whenever the last reference goes away on
// another thread.
unsafe impl<F: std::future::Future> Send for TaskCell<F> {}
// SAFETY: (Sync) the same argument: shared references reach other threads only through
// wakers, which use only the atomic state and the thread-safe `Shared`.
unsafe impl<F: std::future::Future> Sync for TaskCell<F> {}

impl<F: std::future::Future> Drop for TaskCell<F> {
    fn drop(&mut self) {
        let empty = matches!(self.stage.get_mut(), Stage::Consumed);
        if !empty && std::thread::current().id() != self.header.shared.owner {
            // Unreachable by the thread rule; dropping a !Send future here would be unsound,
            // and leaking it would break `Pin`'s drop guarantee, so stop the process.
            eprintln!("corio: a task's future outlived its loop thread; aborting");
            std::process::abort();
        }
    }
}

/// What the loop needs from any task, whatever its future.
pub(crate) trait RawTask: Send + Sync + 'static {
    fn header(&self) -> &Header;
    /// One step: poll the future once (the loop's thread only).
    fn run(self: Arc<Self>, core: &Rc<Core>);
    /// Loop close: drop the future of a task that is still pending.
    fn destroy_pending(&self, core: &Rc<Core>);
    /// `self` as a trait object, for handles and the ready queue.
    fn as_dyn(self: Arc<Self>) -> Arc<dyn RawTask>;
}

/// What a `Task<T>` handle needs: the typed output.
pub(crate) trait JoinTarget<T>: RawTask {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>>;
    /// Takes the output if the task is done and it was not taken yet.
    fn take_output(&self) -> Option<Result<T, TaskError>>;
}

/// The task being polled on this thread, for `current_task()` and `catch_cancel`.
struct CurrentTask;

thread_local! {
    static CURRENT_TASK: Cell<Option<*const dyn RawTask>> = const { Cell::new(None) };
    /// While a cancelled task's future is being dropped: the cancellation, so that what
    /// it was awaiting (a task, a future) is cancelled too, as in asyncio.
    static CANCELLING: RefCell<Option<Cancelled>> = const { RefCell::new(None) };
    /// While [`drop_collecting_orphans`] runs: the tasks that the drop cancelled because
    /// they were being awaited, so that the caller can wait for their cleanup.
    static ORPHANS: RefCell<Option<Vec<Arc<dyn RawTask>>>> = const { RefCell::new(None) };
}

impl CurrentTask {
    /// `task` must point into a live `Arc` (made from an `Arc<TaskCell<F>>` by unsizing) that
    /// the caller keeps alive until the matching `leave`.
    fn enter(task: *const dyn RawTask) -> Option<*const dyn RawTask> {
        CURRENT_TASK.with(|c| c.replace(Some(task)))
    }
    fn leave(prev: Option<*const dyn RawTask>) {
        CURRENT_TASK.with(|c| c.set(prev));
    }
}

/// Restores the previous current task even if a poll panics.
struct CurrentGuard(Option<*const dyn RawTask>);

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CurrentTask::leave(self.0);
    }
}

/// Runs `f` with no current task (the future driven by `run_until_complete` is not a task).
pub(crate) fn without_current_task<R>(f: impl FnOnce() -> R) -> R {
    let _g = CurrentGuard(CURRENT_TASK.with(|c| c.replace(None)));
    f()
}

/// A new reference to the task being polled on this thread, if any.
pub(crate) fn current_task() -> Option<Arc<dyn RawTask>> {
    let ptr = CURRENT_TASK.with(|c| c.get())?;
    // SAFETY: `ptr` came from `Arc::as_ptr` on the `Arc<TaskCell<F>>` that `TaskCell::run`
    // holds (`self`) for the whole time the pointer is installed (the guard removes it before
    // `run` returns), so the allocation is live and we may add a strong reference.
    unsafe { Arc::increment_strong_count(ptr) };
    // SAFETY: the count was just incremented for this new `Arc`; `ptr` is an
    // `Arc<TaskCell<F>>` pointer unsized to `dyn RawTask`, which `from_raw` accepts.
    Some(unsafe { Arc::from_raw(ptr) })
}

/// Runs `f` with the header of the task being polled, without touching its reference count.
pub(crate) fn with_current_header<R>(f: impl FnOnce(&Header) -> R) -> Option<R> {
    let ptr = CURRENT_TASK.with(|c| c.get())?;
    // SAFETY: as in `current_task`: the task is kept alive by `run` while the pointer is
    // installed, and `f` cannot outlive this call.
    let task = unsafe { &*ptr };
    Some(f(task.header()))
}

/// The cancellation being delivered by dropping futures on this thread, if any.
pub(crate) fn cancelling_now() -> Option<Cancelled> {
    CANCELLING.with(|c| c.borrow().clone())
}

/// Runs `f` (which drops futures) marked as a cancellation with `c`.
pub(crate) fn drop_as_cancellation<R>(c: &Cancelled, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<Cancelled>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0.take();
            CANCELLING.with(|c| *c.borrow_mut() = prev);
        }
    }
    let _reset = Reset(CANCELLING.with(|x| x.borrow_mut().replace(c.clone())));
    f()
}

/// Like [`drop_as_cancellation`], and returns the tasks the drop cancelled because they
/// were being awaited (the asyncio chain), so the caller can wait for their cleanup as
/// asyncio does (`wait_for` and `timeout` use it).
pub(crate) fn drop_collecting_orphans(c: &Cancelled, f: impl FnOnce()) -> Vec<Arc<dyn RawTask>> {
    struct Restore(Option<Vec<Arc<dyn RawTask>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            ORPHANS.with(|o| *o.borrow_mut() = prev);
        }
    }
    let restore = Restore(ORPHANS.with(|o| o.borrow_mut().replace(Vec::new())));
    drop_as_cancellation(c, f);
    let orphans = ORPHANS.with(|o| o.borrow_mut().take());
    drop(restore);
    orphans.unwrap_or_default()
}

/// Records `task` as cancelled by the drop [`drop_collecting_orphans`] is running, if any.
pub(crate) fn note_orphan(task: &Arc<dyn RawTask>) {
    ORPHANS.with(|o| {
        if let Some(v) = o.borrow_mut().as_mut() {
            v.push(task.clone());
        }
    });
}

/// Queues `task` to run unless it is already queued or done: on the loop's ready queue when
/// called on the loop's thread while it runs, through the thread-safe door otherwise.
pub(crate) fn schedule(task: Arc<dyn RawTask>) {
    let h = task.header();
    if h.state.fetch_or(SCHEDULED, Ordering::AcqRel) & (SCHEDULED | DONE) != 0 {
        return;
    }
    let Some(task) = push_if_local(task) else {
        return;
    };
    let shared = task.header().shared.clone();
    shared.push(RemoteItem::Task(task));
}

impl<F: std::future::Future + 'static> Wake for TaskCell<F> {
    fn wake(self: Arc<Self>) {
        schedule(self);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.header.state.load(Ordering::Acquire) & (SCHEDULED | DONE) == 0 {
            schedule(self.clone());
        }
    }
}

impl<F: std::future::Future> TaskCell<F> {
    /// Runs `f` with the only `&mut` to the stage, or returns `None` if the stage is already
    /// in use further up this thread's stack (a task awaiting itself, a future whose `Drop`
    /// drops its own task's handle).
    fn with_stage<R>(&self, f: impl FnOnce(&mut Stage<F>) -> R) -> Option<R> {
        struct Release<'a>(&'a Cell<bool>);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        if self.header.busy.replace(true) {
            return None;
        }
        let _release = Release(&self.header.busy);
        // SAFETY: every access to `stage` goes through this function (or `Drop`, which has
        // `&mut self`); `busy` was false and stays true until `_release` drops, so no other
        // reference to the stage exists now; and by the thread rule only the loop thread gets
        // here, so `busy` (a plain `Cell`) is not raced.
        let stage = unsafe { &mut *self.stage.get() };
        Some(f(stage))
    }
}

impl<F: std::future::Future + 'static> TaskCell<F> {
    /// Creates the task, registers it in `core`'s task table and queues its first step.
    /// `at` is the spawner's call site (kept in debug mode). The task gets a snapshot of the
    /// spawner's context variables.
    pub(crate) fn spawn(
        core: &Rc<Core>,
        fut: F,
        name: Option<String>,
        at: &'static std::panic::Location<'static>,
    ) -> Arc<TaskCell<F>> {
        let cell = Arc::new(TaskCell {
            header: Header {
                state: AtomicU8::new(SCHEDULED),
                shared: core.shared.clone(),
                id: core.next_task_id(),
                slot: Cell::new(u32::MAX),
                detached: Cell::new(false),
                awaited: Cell::new(false),
                requests: Cell::new(0),
                cancel_pending: Cell::new(false),
                abort: Cell::new(false),
                delivered_to: Cell::new(0),
                busy: Cell::new(false),
                outcome: Cell::new(Outcome::Pending),
                waker: Cell::new(None),
                join_waker: Cell::new(None),
                extra: Cell::new(None),
            },
            stage: UnsafeCell::new(Stage::Running(fut)),
        });
        cell.header.waker.set(Some(Waker::from(cell.clone())));
        let debug = core.debug.get();
        let context = crate::contextvars::current();
        if name.is_some() || debug || !context.is_empty() {
            cell.header.with_extra(|e| {
                e.name = name;
                e.created_at = debug.then_some(at);
                e.context = context;
            });
        }
        let raw: Arc<dyn RawTask> = cell.clone();
        let slot = core.tasks.borrow_mut().insert(raw.clone());
        cell.header.slot.set(slot);
        core.push_ready(Ready::Task(raw));
        cell
    }

    /// Drops the future in place (it is pinned: never moved), marked as a cancellation when
    /// `cancel` is given. A panic in its destructor is reported, not propagated.
    fn drop_future(&self, core: &Rc<Core>, cancel: Option<&Cancelled>) {
        let drop_it = || {
            catch_unwind(AssertUnwindSafe(|| {
                // Assigning drops the old value in place; if that panics the new value is
                // still written, so the stage is never left half-dropped.
                self.with_stage(|stage| *stage = Stage::Consumed);
            }))
        };
        // Destructors see the task's context variables, as its body did.
        let context = crate::contextvars::in_use()
            .then(|| self.header.peek_extra(|e| e.map(|e| e.context.clone())))
            .flatten()
            .filter(|c| !c.is_empty());
        let result = match (cancel, context) {
            (Some(c), None) => drop_as_cancellation(c, drop_it),
            (None, None) => drop_it(),
            (Some(c), Some(ctx)) => ctx.run(|| drop_as_cancellation(c, drop_it)),
            (None, Some(ctx)) => ctx.run(drop_it),
        };
        if let Err(p) = result {
            core.report(
                ExceptionContext::panic(
                    "Panic while dropping a task's future",
                    Some(self.header.name()),
                    p.as_ref(),
                )
                .created(self.header.created_at()),
            );
        }
    }

    /// The future is gone: record the outcome, wake the awaiter, run done callbacks.
    fn finish(self: &Arc<Self>, core: &Rc<Core>, outcome: Result<F::Output, TaskError>) {
        let h = &self.header;
        h.state.fetch_or(DONE, Ordering::AcqRel);
        h.outcome.set(match &outcome {
            Ok(_) => Outcome::Returned,
            Err(TaskError::Cancelled(_)) => Outcome::Cancelled,
            Err(TaskError::Panicked(_)) => Outcome::Panicked,
        });
        core.tasks.borrow_mut().remove(h.slot.get());
        let (callbacks, context) = h
            .peek_extra(|e| {
                e.map(|e| {
                    e.scopes.clear();
                    (
                        std::mem::take(&mut e.done_callbacks),
                        std::mem::take(&mut e.context),
                    )
                })
            })
            .unzip();
        drop(context);
        if h.detached.get() {
            if let Err(TaskError::Panicked(p)) = &outcome {
                core.report(
                    ExceptionContext::panic(
                        "Task exception was never retrieved",
                        Some(h.name()),
                        p.as_ref(),
                    )
                    .created(h.created_at()),
                );
            }
            drop(outcome);
        } else {
            self.with_stage(|stage| *stage = Stage::Finished(outcome));
        }
        // Also when detached: a combinator may wait for a task whose handle is gone (the
        // orphans of `raw::drop_collecting_orphans`), through `Header::poll_done`.
        if let Some(w) = h.join_waker.take() {
            w.wake();
        }
        for cb in callbacks.into_iter().flatten() {
            let tref = crate::tasks::TaskRef::from_raw(self.clone());
            core.call_soon_dyn(crate::events::OnceHandle::boxed(move || cb(&tref)));
        }
        // Last: our own waker holds a reference to us; dropping it breaks that cycle.
        drop(h.waker.take());
    }
}

impl<F: std::future::Future + 'static> RawTask for TaskCell<F> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn as_dyn(self: Arc<Self>) -> Arc<dyn RawTask> {
        self
    }

    fn run(self: Arc<Self>, core: &Rc<Core>) {
        let h = &self.header;
        let prev = h.state.fetch_and(!SCHEDULED, Ordering::AcqRel);
        if prev & DONE != 0 {
            return;
        }

        // A cancel request is delivered here, at the task's suspension point: to the
        // innermost `catch_cancel` scope if there is one, else by dropping the future.
        if h.cancel_pending.get() && h.delivered_to.get() == 0 {
            let scope = if h.abort.get() {
                None
            } else {
                h.peek_extra(|e| e.and_then(|e| e.scopes.last().cloned()))
            };
            match scope {
                Some((id, waker)) => {
                    h.delivered_to.set(id);
                    if let Some(w) = waker {
                        w.wake();
                    }
                }
                None => {
                    h.cancel_pending.set(false);
                    let c = h.take_cancel_msg();
                    self.drop_future(core, Some(&c));
                    self.finish(core, Err(TaskError::Cancelled(c)));
                    return;
                }
            }
        }

        let Some(waker) = h.waker.take() else {
            return;
        };
        let mut cx = Context::from_waker(&waker);
        let me: *const TaskCell<F> = Arc::as_ptr(&self);
        let me: *const dyn RawTask = me;
        let debug = core.debug.get();
        let started = debug.then(Instant::now);
        let result = {
            let _current = CurrentGuard(CurrentTask::enter(me));
            catch_unwind(AssertUnwindSafe(|| {
                self.with_stage(|stage| match stage {
                    Stage::Running(fut) => {
                        // SAFETY: the future lives inside the `Arc` allocation and is never
                        // moved out of it: it is only ever dropped in place (`drop_future`),
                        // so pinning a reference to it upholds the `Pin` contract.
                        let fut = unsafe { Pin::new_unchecked(fut) };
                        fut.poll(&mut cx)
                    }
                    _ => Poll::Pending,
                })
                .unwrap_or(Poll::Pending)
            }))
        };
        h.waker.set(Some(waker));
        if let Some(t0) = started {
            crate::debug::after_task_step(core, h, t0.elapsed());
        }
        match result {
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(v)) => {
                self.drop_future(core, None);
                self.finish(core, Ok(v));
            }
            Err(p) => {
                self.drop_future(core, None);
                self.finish(core, Err(TaskError::Panicked(p)));
            }
        }
    }

    fn destroy_pending(&self, core: &Rc<Core>) {
        let h = &self.header;
        if h.is_done() {
            return;
        }
        h.state.fetch_or(DONE, Ordering::AcqRel);
        h.outcome.set(Outcome::Cancelled);
        core.report(ExceptionContext {
            message: "Task was destroyed but it is pending!".into(),
            task: Some(h.name()),
            created_at: h.created_at(),
            ..Default::default()
        });
        self.drop_future(core, None);
        let dropped = h.peek_extra(|e| {
            e.map(|e| {
                e.scopes.clear();
                (
                    std::mem::take(&mut e.done_callbacks),
                    std::mem::take(&mut e.context),
                )
            })
        });
        drop(dropped);
        if !h.detached.get() {
            self.with_stage(|stage| {
                *stage = Stage::Finished(Err(TaskError::Cancelled(Cancelled::new(Some(
                    "event loop closed".into(),
                )))))
            });
        }
        if let Some(w) = h.join_waker.take() {
            w.wake();
        }
        drop(h.waker.take());
    }
}

impl<F: std::future::Future + 'static> JoinTarget<F::Output> for TaskCell<F> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, TaskError>> {
        let taken = self
            .with_stage(|stage| match std::mem::replace(stage, Stage::Consumed) {
                Stage::Finished(out) => Some(out),
                other => {
                    *stage = other;
                    None
                }
            })
            .unwrap_or_else(|| panic!("a task cannot await itself ({})", self.header.name()));
        if let Some(out) = taken {
            return Poll::Ready(out);
        }
        assert!(
            !self.header.is_done(),
            "Task polled after its output was taken"
        );
        let slot = &self.header.join_waker;
        let w = match slot.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        slot.set(Some(w));
        Poll::Pending
    }

    fn take_output(&self) -> Option<Result<F::Output, TaskError>> {
        self.with_stage(|stage| match std::mem::replace(stage, Stage::Consumed) {
            Stage::Finished(out) => Some(out),
            other => {
                *stage = other;
                None
            }
        })
        .flatten()
    }
}

/// The loop's table of live tasks (asyncio's `_all_tasks`): it keeps each task alive until
/// its future is dropped, which is what makes fire-and-forget tasks run to completion.
#[derive(Default)]
pub(crate) struct TaskTable {
    slots: Vec<Option<Arc<dyn RawTask>>>,
    free: Vec<u32>,
    len: usize,
}

impl TaskTable {
    pub(crate) fn insert(&mut self, t: Arc<dyn RawTask>) -> u32 {
        self.len += 1;
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(t);
                i
            }
            None => {
                self.slots.push(Some(t));
                (self.slots.len() - 1) as u32
            }
        }
    }

    pub(crate) fn remove(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            if s.take().is_some() {
                self.len -= 1;
                self.free.push(slot);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn live(&self) -> Vec<crate::tasks::TaskRef> {
        self.slots
            .iter()
            .flatten()
            .map(|t| crate::tasks::TaskRef::from_raw(t.clone()))
            .collect()
    }

    pub(crate) fn take_all(&mut self) -> Vec<Arc<dyn RawTask>> {
        self.free.clear();
        self.len = 0;
        self.slots.drain(..).flatten().collect()
    }
}

/// Marker that makes a handle `!Send` and `!Sync`.
pub(crate) type NotSend = PhantomData<*const ()>;

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name())
            .field("done", &self.is_done())
            .field("cancelling", &self.requests.get())
            .finish()
    }
}

/// Compares two tasks by identity.
pub(crate) fn same_task(a: &dyn RawTask, b: &dyn RawTask) -> bool {
    ptr::addr_eq(a as *const dyn RawTask, b as *const dyn RawTask)
}

#[cfg(test)]
mod tests {
    /// The idle-task memory target (issue 8) depends on these sizes: a task parked on a
    /// `sleep` must fit a 144-byte allocation (Arc counts + header + stage).
    #[test]
    fn a_task_parked_on_a_sleep_fits_144_bytes() {
        let fut = async {
            crate::sleep(std::time::Duration::from_secs(1)).await;
        };
        assert!(std::mem::size_of_val(&fut) <= 40);
        assert!(std::mem::size_of::<super::Header>() <= 72);
        fn cell_size<F: std::future::Future>(_: &F) -> usize {
            std::mem::size_of::<super::TaskCell<F>>()
        }
        assert!(
            16 + cell_size(&fut) <= 136,
            "Arc counts + TaskCell = {}",
            16 + cell_size(&fut)
        );
    }
}
