//! `TaskGroup`: structured concurrency (asyncio 3.11's `TaskGroup`).
//!
//! asyncio counterpart: `taskgroups.py`. Layer 3: built on [`Task`], the cancellation scopes
//! behind [`catch_cancel`](crate::catch_cancel), and `cancel`/`uncancel` counting.
//!
//! # How it is built
//!
//! `async with TaskGroup() as tg: body` is
//! `let tg = TaskGroup::new(); tg.run(async { body }).await`. The [`TaskGroupScope`] that
//! `run` returns polls the body inline, inside a cancellation scope of its own, then waits
//! until every child has finished. A child is a task whose future is wrapped (once, at
//! spawn) in a small guard: when the child's future is gone (it returned, failed, or was
//! cancelled and dropped) the guard counts it out and, at zero, wakes the scope. So "all
//! children finished" is one counter, not a poll of every child.
//!
//! # How failures and cancellation flow
//!
//! - A child *fails* when its future returns `Err(e)` or panics (the wrapper catches the
//!   panic). The failure goes to the group, the child's task ends cancelled, and the first
//!   failure **cancels every other child and the body**: the body is cancelled by cancelling
//!   the parent task (`cancel()`, as asyncio does), so a `catch_cancel` in the body sees it
//!   and may clean up; the scope catches it if nothing inside does, and withdraws it with
//!   `uncancel()` at the end. A child ending cancelled is not a failure.
//! - The scope always waits for **every** child to finish, cleanup included, before it
//!   returns: the failures come back together in a [`TaskGroupError`].
//! - If the task running the group is cancelled from outside, the scope catches the
//!   cancellation, cancels the children, waits for them, and then lets the cancellation go
//!   on (the task ends cancelled, or an outer `catch_cancel` catches it), unless children
//!   failed: failures take priority, as in asyncio, and the error carries the cancellation.
//! - If the scope itself is dropped before it finished (its task was aborted), it cancels the
//!   children; they then finish on their own.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::base_events::expect_current;
use crate::exceptions::{Cancelled, panic_payload_str};
use crate::tasks::{CancelScope, Task, TaskRef, current_task, raw, reraise_current, spawn_on_at};

/// A scope for tasks that must all finish before it ends (asyncio's `TaskGroup`).
///
/// [`run`](TaskGroup::run) runs a body in the group; inside it (and in the children, through
/// clones of the handle), [`spawn`](TaskGroup::spawn) starts children. Children and the body
/// return `Result<_, E>`; the first `Err` or panic cancels the rest, and every failure is
/// reported in one [`TaskGroupError`]. No child outlives the scope. See the
/// [module docs](self).
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let tg = corio::TaskGroup::new();
///     let (a, b) = tg
///         .run(async {
///             let a = tg.spawn(async {
///                 corio::sleep(Duration::from_millis(10)).await;
///                 Ok::<_, String>(1)
///             });
///             let b = tg.spawn(async { Ok(2) });
///             Ok((a, b))
///         })
///         .await
///         .unwrap();
///     // The scope waited for both.
///     assert_eq!((a.result().unwrap().unwrap(), b.result().unwrap().unwrap()), (1, 2));
///
///     let tg = corio::TaskGroup::new();
///     let err = tg
///         .run(async {
///             tg.spawn(async {
///                 corio::sleep(Duration::from_secs(3600)).await; // cancelled by the failure
///                 Ok(())
///             });
///             tg.spawn(async { Err::<(), _>("boom") });
///             Ok(())
///         })
///         .await
///         .unwrap_err();
///     assert_eq!(err.errors().collect::<Vec<_>>(), [&"boom"]);
/// });
/// ```
pub struct TaskGroup<E: 'static> {
    shared: Rc<Shared<E>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Created,
    Running,
    Finished,
}

struct Shared<E> {
    state: Cell<State>,
    /// A failure (or an outside cancellation) is cancelling everything.
    aborting: Cell<bool>,
    /// The body is still being polled (it can be cancelled through its task).
    body_running: Cell<bool>,
    /// The task running the scope, once entered.
    parent: RefCell<Option<TaskRef>>,
    /// We cancelled `parent` to stop the body and must `uncancel` it at the end.
    parent_cancel_requested: Cell<bool>,
    /// The children not finished yet, in a slab: `None` slots are free.
    children: RefCell<Vec<Option<TaskRef>>>,
    free: RefCell<Vec<usize>>,
    live: Cell<usize>,
    failures: RefCell<Vec<Failure<E>>>,
    /// The scope's waker.
    waker: RefCell<Option<Waker>>,
}

impl<E> Shared<E> {
    fn wake_scope(&self) {
        if let Some(w) = self.waker.borrow().as_ref() {
            w.wake_by_ref();
        }
    }

    /// The first failure, or an outside cancellation: cancel the children (all but
    /// `except`) and, if the body still runs, the parent task.
    fn abort(&self, except: Option<&TaskRef>) {
        if self.aborting.replace(true) {
            return;
        }
        for t in self.children.borrow().iter().flatten() {
            if Some(t) != except {
                t.cancel(None);
            }
        }
        if self.body_running.get() && !self.parent_cancel_requested.get() {
            if let Some(p) = self.parent.borrow().as_ref() {
                if !p.done() {
                    self.parent_cancel_requested.set(true);
                    p.cancel(None);
                }
            }
        }
        self.wake_scope();
    }
}

impl<E: 'static> TaskGroup<E> {
    /// A new group; enter it with [`run`](TaskGroup::run).
    ///
    /// ```
    /// let tg = corio::TaskGroup::<std::io::Error>::new();
    /// assert!(tg.is_empty());
    /// ```
    pub fn new() -> TaskGroup<E> {
        TaskGroup {
            shared: Rc::new(Shared {
                state: Cell::new(State::Created),
                aborting: Cell::new(false),
                body_running: Cell::new(false),
                parent: RefCell::new(None),
                parent_cancel_requested: Cell::new(false),
                children: RefCell::new(Vec::new()),
                free: RefCell::new(Vec::new()),
                live: Cell::new(0),
                failures: RefCell::new(Vec::new()),
                waker: RefCell::new(None),
            }),
        }
    }

    /// Starts `fut` as a child task of the group (asyncio's `tg.create_task`). Its `Ok`
    /// value is the task's output; an `Err` or a panic is a failure of the group (the task
    /// then ends cancelled; the error itself is in the [`TaskGroupError`]).
    ///
    /// Once the group is shutting down (after a failure) or has finished, the new task is
    /// cancelled before it starts, so its future never runs (asyncio raises
    /// `RuntimeError`). Panics before the group is entered, or outside a running loop.
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::<std::io::Error>::new();
    ///     let t = tg.run(async { Ok(tg.spawn(async { Ok(5) })) }).await.unwrap();
    ///     assert_eq!(t.await.unwrap(), 5);
    ///     let late = tg.spawn(async { Ok(6) });
    ///     assert!(late.await.unwrap_err().is_cancelled(), "the group has finished");
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, fut: F) -> Task<T>
    where
        F: std::future::Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        self.spawn_inner(None, fut)
    }

    /// [`spawn`](TaskGroup::spawn) with a task name (used in failure reports).
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::new();
    ///     let err = tg
    ///         .run(async {
    ///             tg.spawn_named("fetch", async { Err::<(), _>("refused") });
    ///             Ok(())
    ///         })
    ///         .await
    ///         .unwrap_err();
    ///     assert_eq!(err.failures()[0].task(), Some("fetch"));
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_named<F, T>(&self, name: impl Into<String>, fut: F) -> Task<T>
    where
        F: std::future::Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        self.spawn_inner(Some(name.into()), fut)
    }

    #[track_caller]
    fn spawn_inner<F, T>(&self, name: Option<String>, fut: F) -> Task<T>
    where
        F: std::future::Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        let sh = &self.shared;
        assert!(
            sh.state.get() != State::Created,
            "TaskGroup has not been entered: spawn inside TaskGroup::run"
        );
        sh.live.set(sh.live.get() + 1);
        let slot = match sh.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                let mut c = sh.children.borrow_mut();
                c.push(None);
                c.len() - 1
            }
        };
        let guard = ChildGuard {
            shared: sh.clone(),
            slot,
        };
        let at = std::panic::Location::caller();
        let task = expect_current("TaskGroup::spawn", |core| {
            spawn_on_at(core, child(guard, fut), name, at)
        });
        sh.children.borrow_mut()[slot] = Some(task.as_ref());
        match sh.state.get() {
            State::Finished => {
                task.cancel(Some("TaskGroup is finished"));
            }
            _ if sh.aborting.get() => {
                task.cancel(Some("TaskGroup is shutting down"));
            }
            _ => {}
        }
        task
    }

    /// How many children have not finished yet.
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::<()>::new();
    ///     tg.run(async {
    ///         tg.spawn(async { Ok(()) });
    ///         assert_eq!(tg.len(), 1);
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    ///     assert_eq!(tg.len(), 0);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.shared.live.get()
    }

    /// Whether no child is running.
    ///
    /// ```
    /// assert!(corio::TaskGroup::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `body` in the group (asyncio's `async with tg:`), then waits for every child.
    ///
    /// Gives the body's `Ok` value, or a [`TaskGroupError`] with every failure if the body or
    /// a child failed. A panic in the body is resumed once the children have finished.
    /// Panics when polled if the group was already entered.
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::<String>::new();
    ///     let scope: corio::taskgroups::TaskGroupScope<_, String> = tg.run(async { Ok(3) });
    ///     assert_eq!(scope.await.unwrap(), 3);
    /// });
    /// ```
    pub fn run<F, R>(&self, body: F) -> TaskGroupScope<F, E>
    where
        F: std::future::Future<Output = Result<R, E>>,
    {
        TaskGroupScope {
            group: self.shared.clone(),
            body: Some(Box::pin(body)),
            scope: CancelScope::default(),
            out: None,
            panic: None,
            propagate: None,
            phase: Phase::Start,
        }
    }
}

impl<E: 'static> Clone for TaskGroup<E> {
    fn clone(&self) -> Self {
        TaskGroup {
            shared: self.shared.clone(),
        }
    }
}

impl<E: 'static> Default for TaskGroup<E> {
    fn default() -> Self {
        TaskGroup::new()
    }
}

impl<E: 'static> fmt::Debug for TaskGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("state", &self.shared.state.get())
            .field("children", &self.shared.live.get())
            .field("aborting", &self.shared.aborting.get())
            .finish()
    }
}

/// Lives inside a child task's future: its drop is the child's end.
struct ChildGuard<E: 'static> {
    shared: Rc<Shared<E>>,
    slot: usize,
}

impl<E: 'static> ChildGuard<E> {
    /// The child failed: record it, end this task, cancel the others.
    fn fail(&self, failure: impl FnOnce(String) -> Failure<E>) {
        let me = current_task().expect("a TaskGroup child runs as a task");
        self.shared.failures.borrow_mut().push(failure(me.name()));
        me.cancel(Some("failed in a TaskGroup (see the TaskGroupError)"));
        self.shared.abort(Some(&me));
        self.shared.wake_scope();
    }
}

impl<E: 'static> Drop for ChildGuard<E> {
    fn drop(&mut self) {
        let sh = &self.shared;
        if let Ok(mut c) = sh.children.try_borrow_mut() {
            if let Some(entry) = c.get_mut(self.slot) {
                *entry = None;
                sh.free.borrow_mut().push(self.slot);
            }
        }
        sh.live.set(sh.live.get() - 1);
        if sh.live.get() == 0 {
            sh.wake_scope();
        }
    }
}

/// A child's future: `fut`, with its `Err` and panics turned into group failures.
async fn child<F, T, E>(guard: ChildGuard<E>, fut: F) -> T
where
    F: std::future::Future<Output = Result<T, E>>,
    E: 'static,
{
    let out = {
        let mut fut = pin!(fut);
        std::future::poll_fn(
            |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
                Err(payload) => Poll::Ready(Err(payload)),
            },
        )
        .await
    };
    match out {
        Ok(Ok(v)) => return v,
        Ok(Err(error)) => guard.fail(|task| Failure::Error {
            task: Some(task),
            error,
        }),
        Err(payload) => guard.fail(|task| Failure::Panic { task, payload }),
    }
    // `fail` asked for this task's cancellation: it ends at its next step.
    std::future::pending().await
}

enum Phase {
    Start,
    Body,
    /// Waiting for the children.
    Exiting,
    Reraising,
    Done,
}

/// The future of [`TaskGroup::run`]: the body's `Ok` value, or every failure.
///
/// ```
/// corio::run(async {
///     let tg = corio::TaskGroup::<&str>::new();
///     let out = tg.run(async { Err::<(), _>("body failed") }).await;
///     assert_eq!(out.unwrap_err().errors().collect::<Vec<_>>(), [&"body failed"]);
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct TaskGroupScope<F: std::future::Future, E: 'static> {
    group: Rc<Shared<E>>,
    body: Option<Pin<Box<F>>>,
    scope: CancelScope,
    out: Option<F::Output>,
    panic: Option<Box<dyn Any + Send>>,
    /// An outside cancellation caught by the scope, to pass on at the end.
    propagate: Option<Cancelled>,
    phase: Phase,
}

impl<F: std::future::Future, E: 'static> TaskGroupScope<F, E> {
    fn enter(&mut self) {
        let sh = &self.group;
        assert_eq!(
            sh.state.get(),
            State::Created,
            "TaskGroup has already been entered"
        );
        sh.state.set(State::Running);
        sh.body_running.set(true);
        *sh.parent.borrow_mut() = current_task();
        self.phase = Phase::Body;
    }

    /// Drops the body as a cancellation (what it awaited is cancelled along).
    fn cancel_body(&mut self, c: &Cancelled) {
        self.group.body_running.set(false);
        let body = self.body.take();
        raw::drop_as_cancellation(c, move || drop(body));
    }

    /// A cancellation reached the scope: ours (a failure is aborting) or from outside.
    fn caught(&mut self, c: Cancelled) {
        if !self.group.aborting.get() {
            self.propagate = Some(c);
            self.group.abort(None);
        }
    }
}

// The body is boxed and its output stored, never pinned.
impl<F: std::future::Future, E: 'static> Unpin for TaskGroupScope<F, E> {}

impl<F, R, E> std::future::Future for TaskGroupScope<F, E>
where
    F: std::future::Future<Output = Result<R, E>>,
    E: 'static,
{
    type Output = Result<R, TaskGroupError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.phase {
            Phase::Start => this.enter(),
            Phase::Body | Phase::Exiting => {}
            Phase::Reraising => return Poll::Pending,
            Phase::Done => panic!("TaskGroupScope polled after completion"),
        }
        {
            let mut w = this.group.waker.borrow_mut();
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }

        if let Phase::Body = this.phase {
            if this.scope.poll_delivered(cx) {
                let c = this.scope.take();
                this.cancel_body(&c);
                this.caught(c);
            } else if this.group.aborting.get() && this.group.parent.borrow().is_none() {
                // No task to cancel (run_until_complete): stop the body by dropping it.
                this.cancel_body(&Cancelled::default());
            } else {
                let body = this.body.as_mut().expect("body runs");
                match catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(Ok(r))) => this.out = Some(Ok(r)),
                    Ok(Poll::Ready(Err(error))) => {
                        this.group
                            .failures
                            .borrow_mut()
                            .push(Failure::Error { task: None, error });
                    }
                    Err(payload) => this.panic = Some(payload),
                }
                this.group.body_running.set(false);
                this.body = None;
                if this.out.is_none() {
                    this.group.abort(None);
                }
            }
            this.phase = Phase::Exiting;
        }

        // Exiting: wait for every child, catching cancellations meanwhile.
        while this.group.live.get() > 0 {
            if !this.scope.poll_delivered(cx) {
                return Poll::Pending;
            }
            let c = this.scope.take();
            this.caught(c);
        }
        this.scope.exit();
        this.phase = Phase::Done;
        let sh = &this.group;
        sh.state.set(State::Finished);
        *sh.waker.borrow_mut() = None;
        let parent = sh.parent.borrow_mut().take();
        if sh.parent_cancel_requested.replace(false) {
            if let Some(p) = &parent {
                if p.uncancel() == 0 {
                    this.propagate = None;
                }
            }
        }
        if let Some(p) = this.panic.take() {
            std::panic::resume_unwind(p);
        }
        let failures = std::mem::take(&mut *sh.failures.borrow_mut());
        if !failures.is_empty() {
            return Poll::Ready(Err(TaskGroupError {
                failures,
                cancelled: this.propagate.take(),
            }));
        }
        if let Some(c) = this.propagate.take() {
            reraise_current(&c);
            this.phase = Phase::Reraising;
            return Poll::Pending;
        }
        match this.out.take() {
            Some(Ok(r)) => Poll::Ready(Ok(r)),
            _ => unreachable!("the body returned Ok"),
        }
    }
}

impl<F: std::future::Future, E: 'static> Drop for TaskGroupScope<F, E> {
    fn drop(&mut self) {
        if !matches!(self.phase, Phase::Body | Phase::Exiting) {
            return;
        }
        // Dropped before the end (its task was aborted): no child may outlive the scope,
        // so cancel them all (they finish on their own), and take back our cancel request.
        let sh = &self.group;
        sh.state.set(State::Finished);
        sh.body_running.set(false);
        let msg = raw::cancelling_now();
        for t in sh.children.borrow().iter().flatten() {
            t.cancel(msg.as_ref().and_then(Cancelled::message));
        }
        if sh.parent_cancel_requested.replace(false) {
            if let Some(p) = sh.parent.borrow().as_ref() {
                p.uncancel();
            }
        }
        *sh.parent.borrow_mut() = None;
        *sh.waker.borrow_mut() = None;
    }
}

impl<F: std::future::Future, E: 'static> fmt::Debug for TaskGroupScope<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroupScope")
            .field("children", &self.group.live.get())
            .field("aborting", &self.group.aborting.get())
            .finish()
    }
}

/// One failure collected by a [`TaskGroup`].
///
/// ```
/// use corio::taskgroups::Failure;
/// corio::run(async {
///     let tg = corio::TaskGroup::new();
///     let err = tg
///         .run(async {
///             tg.spawn_named("c", async {
///                 if true {
///                     panic!("oops");
///                 }
///                 Ok::<(), &str>(())
///             });
///             Ok(())
///         })
///         .await
///         .unwrap_err();
///     let f: &Failure<&str> = &err.failures()[0];
///     assert_eq!((f.task(), f.error(), f.panic_message()), (Some("c"), None, Some("oops")));
///     assert!(matches!(f, Failure::Panic { .. }));
/// });
/// ```
pub enum Failure<E> {
    /// A child (`task: Some(name)`) or the body (`task: None`) returned `Err(error)`.
    Error {
        /// The failed child's task name; `None` for the group's body.
        task: Option<String>,
        /// What it returned.
        error: E,
    },
    /// A child panicked.
    Panic {
        /// The child's task name.
        task: String,
        /// What `panic!` was given (for `std::panic::resume_unwind`).
        payload: Box<dyn Any + Send>,
    },
}

impl<E> Failure<E> {
    /// The failed child's task name; `None` for the body.
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::new();
    ///     let err = tg.run(async { Err::<(), _>("no") }).await.unwrap_err();
    ///     assert_eq!(err.failures()[0].task(), None);
    /// });
    /// ```
    pub fn task(&self) -> Option<&str> {
        match self {
            Failure::Error { task, .. } => task.as_deref(),
            Failure::Panic { task, .. } => Some(task),
        }
    }

    /// The error, if this failure is an `Err` rather than a panic.
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::new();
    ///     let err = tg.run(async { Err::<(), _>("no") }).await.unwrap_err();
    ///     assert_eq!(err.failures()[0].error(), Some(&"no"));
    /// });
    /// ```
    pub fn error(&self) -> Option<&E> {
        match self {
            Failure::Error { error, .. } => Some(error),
            Failure::Panic { .. } => None,
        }
    }

    /// The panic message, if this failure is a panic with a string payload.
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::new();
    ///     let err = tg.run(async { Err::<(), _>("no") }).await.unwrap_err();
    ///     assert_eq!(err.failures()[0].panic_message(), None, "an Err, not a panic");
    /// });
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Failure::Panic { payload, .. } => panic_payload_str(payload.as_ref()),
            Failure::Error { .. } => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error { task, error } => f
                .debug_struct("Error")
                .field("task", task)
                .field("error", error)
                .finish(),
            Failure::Panic { task, .. } => f
                .debug_struct("Panic")
                .field("task", task)
                .field("message", &self.panic_message())
                .finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error { task: None, error } => write!(f, "body: {error}"),
            Failure::Error {
                task: Some(t),
                error,
            } => write!(f, "{t}: {error}"),
            Failure::Panic { task, .. } => match self.panic_message() {
                Some(m) => write!(f, "{task} panicked: {m}"),
                None => write!(f, "{task} panicked"),
            },
        }
    }
}

/// Every failure of a [`TaskGroup`], in the order they happened (asyncio's
/// `ExceptionGroup("unhandled errors in a TaskGroup", ...)`).
///
/// If the task running the group was also cancelled from outside, the cancellation is kept
/// in [`cancelled`](TaskGroupError::cancelled) (failures take priority over it, as in
/// asyncio; [`Cancelled::reraise`] passes it on).
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let tg = corio::TaskGroup::new();
///     let err = tg
///         .run(async {
///             tg.spawn_named("a", async {
///                 corio::sleep(Duration::from_millis(1)).await;
///                 Err::<(), _>("no disk")
///             });
///             tg.spawn_named("b", async {
///                 // Cancelled when "a" fails; its cleanup fails too.
///                 let _ = corio::catch_cancel(corio::sleep(Duration::from_secs(3600))).await;
///                 if true {
///                     panic!("bug");
///                 }
///                 Ok(())
///             });
///             Ok(())
///         })
///         .await
///         .unwrap_err();
///     assert_eq!(err.len(), 2);
///     assert_eq!(
///         err.to_string(),
///         "unhandled errors in a TaskGroup (2 sub-exceptions): a: no disk; b panicked: bug"
///     );
/// });
/// ```
pub struct TaskGroupError<E> {
    failures: Vec<Failure<E>>,
    cancelled: Option<Cancelled>,
}

impl<E> TaskGroupError<E> {
    /// The failures, in the order they happened.
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::new();
    ///     let err = tg.run(async { Err::<(), _>(7) }).await.unwrap_err();
    ///     assert_eq!(err.failures()[0].error(), Some(&7));
    ///     assert_eq!((err.len(), err.is_empty(), err.cancelled()), (1, false, None));
    ///     let first = err.into_failures().remove(0);
    ///     assert_eq!(first.task(), None, "the body");
    /// });
    /// ```
    pub fn failures(&self) -> &[Failure<E>] {
        &self.failures
    }

    /// The failures, by value (e.g. to resume a child's panic).
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::new();
    ///     let err = tg.run(async { Err::<(), _>("no") }).await.unwrap_err();
    ///     let failures = err.into_failures();
    ///     assert!(matches!(failures[0], corio::taskgroups::Failure::Error { error: "no", .. }));
    /// });
    /// ```
    pub fn into_failures(self) -> Vec<Failure<E>> {
        self.failures
    }

    /// The `Err` values among the failures (panics left out).
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::new();
    ///     let err = tg.run(async { Err::<(), _>("no") }).await.unwrap_err();
    ///     assert_eq!(err.errors().collect::<Vec<_>>(), [&"no"]);
    /// });
    /// ```
    pub fn errors(&self) -> impl Iterator<Item = &E> {
        self.failures.iter().filter_map(Failure::error)
    }

    /// How many failures there were (at least one).
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::new();
    ///     let err = tg.run(async { Err::<(), _>("no") }).await.unwrap_err();
    ///     assert_eq!(err.len(), 1);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    /// Always `false`: a `TaskGroupError` has at least one failure.
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::new();
    ///     let err = tg.run(async { Err::<(), _>("no") }).await.unwrap_err();
    ///     assert!(!err.is_empty());
    /// });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }

    /// The outside cancellation the group caught while failing, if any.
    ///
    /// ```
    /// corio::run(async {
    ///     let tg = corio::TaskGroup::new();
    ///     let err = tg.run(async { Err::<(), _>("no") }).await.unwrap_err();
    ///     assert_eq!(err.cancelled(), None, "nobody cancelled the task");
    /// });
    /// ```
    pub fn cancelled(&self) -> Option<&Cancelled> {
        self.cancelled.as_ref()
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroupError")
            .field("failures", &self.failures)
            .field("cancelled", &self.cancelled)
            .finish()
    }
}

impl<E: fmt::Display> fmt::Display for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.failures.len();
        let s = if n == 1 { "" } else { "s" };
        write!(f, "unhandled errors in a TaskGroup ({n} sub-exception{s})")?;
        for (i, failure) in self.failures.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            failure.fmt(f)?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskGroupError<E> {}
