//! `Future<T>`: a result that someone will set later (asyncio's `Future`).
//!
//! asyncio counterpart: `futures.py`. Layer 3: bound to a loop; built on the ready queue.
//!
//! Not to be confused with the trait `std::future::Future`, which is Rust's await protocol:
//! corio's `Future<T>` is a *value* with a state (pending, done, failed or cancelled) that
//! implements that trait, so async code can `.await` it. Its rules are asyncio's:
//!
//! - it is set once: a second `set_result` is an [`InvalidStateError`];
//! - done callbacks and awaiting tasks are resumed **through the loop's ready queue**, in the
//!   order they registered, never from inside `set_result` (the book's `CustomFuture` calls its
//!   callback inline; asyncio and corio do not);
//! - cancelling a task that awaits the future cancels the future.

use std::cell::{Cell, RefCell};
use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::base_events::{Core, expect_current};
use crate::events::OnceHandle;
use crate::exceptions::{Cancelled, FutureError, InvalidStateError};
use crate::tasks::raw;

enum State<T> {
    Pending,
    Done(T),
    Failed(Rc<dyn StdError + 'static>),
    Cancelled(Cancelled),
}

type DoneCallback<T> = Box<dyn FnOnce(&Future<T>)>;

struct Inner<T: 'static> {
    core: Rc<Core>,
    state: RefCell<State<T>>,
    waiters: RefCell<Vec<Waker>>,
    callbacks: RefCell<Vec<(u64, DoneCallback<T>)>>,
    next_callback: Cell<u64>,
    /// Someone read the error (`result`, `exception`, awaiting): no "never retrieved" report.
    retrieved: Cell<bool>,
    /// Where the future was created (debug mode).
    created_at: Option<&'static std::panic::Location<'static>>,
}

impl<T: 'static> Drop for Inner<T> {
    fn drop(&mut self) {
        // asyncio's "Future exception was never retrieved", reported when the last handle goes.
        if let State::Failed(e) = self.state.get_mut() {
            if !self.retrieved.get() {
                self.core.report(crate::ExceptionContext {
                    message: "Future exception was never retrieved".into(),
                    error: Some(e.to_string()),
                    created_at: self.created_at,
                    ..Default::default()
                });
            }
        }
    }
}

/// A value that will be set later, awaitable by any number of tasks (asyncio's `Future`).
///
/// Cloning gives another handle to the same future. Awaiting gives `Ok(T)` (a clone of the
/// result) or the [`FutureError`].
///
/// ```
/// corio::run(async {
///     let fut = corio::Future::<u32>::new();
///     let setter = fut.clone();
///     corio::get_running_loop().call_soon(move || setter.set_result(7).unwrap());
///     assert_eq!(fut.clone().await.unwrap(), 7);
///     assert!(fut.done());
///     assert!(fut.set_result(8).is_err(), "a future is set once");
/// });
/// ```
pub struct Future<T: 'static> {
    inner: Rc<Inner<T>>,
    /// Where this handle's waker sits in `waiters` while it is awaited (also how a dropped
    /// handle knows it was being awaited, to cancel the future when its task is cancelled).
    /// One slot per handle makes N awaiters cost O(N), not O(N²).
    waiter_slot: Cell<Option<usize>>,
}

/// Identifies a done callback, for [`Future::remove_done_callback`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackId(u64);

impl<T: 'static> Future<T> {
    /// A pending future bound to the running loop. Panics outside a running loop; use
    /// [`EventLoop::create_future`](crate::EventLoop::create_future) there.
    #[track_caller]
    pub fn new() -> Future<T> {
        let at = std::panic::Location::caller();
        expect_current("Future::new", |core| Future::new_at(core.clone(), at))
    }

    /// A pending future on `core`, created at the caller's location (kept in debug mode).
    #[track_caller]
    pub(crate) fn new_on(core: Rc<Core>) -> Future<T> {
        Future::new_at(core, std::panic::Location::caller())
    }

    fn new_at(core: Rc<Core>, at: &'static std::panic::Location<'static>) -> Future<T> {
        let created_at = core.debug.get().then_some(at);
        Future {
            inner: Rc::new(Inner {
                core,
                state: RefCell::new(State::Pending),
                waiters: RefCell::new(Vec::new()),
                callbacks: RefCell::new(Vec::new()),
                next_callback: Cell::new(0),
                retrieved: Cell::new(false),
                created_at,
            }),
            waiter_slot: Cell::new(None),
        }
    }

    fn complete(&self, state: State<T>) -> Result<(), InvalidStateError> {
        {
            let mut s = self.inner.state.borrow_mut();
            if !matches!(*s, State::Pending) {
                return Err(InvalidStateError("the future is already done"));
            }
            *s = state;
        }
        // Awaiting tasks: their wakers put them on the ready queue (never run inline).
        for w in self.inner.waiters.borrow_mut().drain(..) {
            w.wake();
        }
        // Done callbacks: each through call_soon, in registration order.
        let callbacks = std::mem::take(&mut *self.inner.callbacks.borrow_mut());
        for (_, cb) in callbacks {
            let me = self.clone();
            self.inner
                .core
                .call_soon_dyn(OnceHandle::boxed(move || cb(&me)));
        }
        Ok(())
    }

    /// Sets the result and schedules the waiters. Fails if the future is already done.
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError> {
        self.complete(State::Done(value))
    }

    /// Marks the future failed with `error` (asyncio's `set_exception`).
    pub fn set_exception(
        &self,
        error: impl Into<Box<dyn StdError + 'static>>,
    ) -> Result<(), InvalidStateError> {
        self.complete(State::Failed(Rc::from(error.into())))
    }

    /// Cancels the future; returns `false` if it was already done.
    pub fn cancel(&self, msg: Option<&str>) -> bool {
        self.complete(State::Cancelled(Cancelled::new(msg.map(String::from))))
            .is_ok()
    }

    /// Whether the future has a result, an error, or was cancelled.
    pub fn done(&self) -> bool {
        !matches!(*self.inner.state.borrow(), State::Pending)
    }

    /// Whether the future was cancelled.
    pub fn cancelled(&self) -> bool {
        matches!(*self.inner.state.borrow(), State::Cancelled(_))
    }

    /// The error set by [`set_exception`](Future::set_exception), if any.
    pub fn exception(&self) -> Option<Rc<dyn StdError + 'static>> {
        match &*self.inner.state.borrow() {
            State::Failed(e) => {
                self.inner.retrieved.set(true);
                Some(e.clone())
            }
            _ => None,
        }
    }

    /// Calls `f` through the loop's ready queue once the future is done (at once, i.e. in
    /// the next turn, if it already is).
    pub fn add_done_callback(&self, f: impl FnOnce(&Future<T>) + 'static) -> CallbackId {
        let id = self.inner.next_callback.get();
        self.inner.next_callback.set(id + 1);
        if self.done() {
            let me = self.clone();
            self.inner
                .core
                .call_soon_dyn(OnceHandle::boxed(move || f(&me)));
        } else {
            self.inner.callbacks.borrow_mut().push((id, Box::new(f)));
        }
        CallbackId(id)
    }

    /// Removes a callback that has not been scheduled yet; returns whether it was found.
    pub fn remove_done_callback(&self, id: CallbackId) -> bool {
        let mut cbs = self.inner.callbacks.borrow_mut();
        let before = cbs.len();
        cbs.retain(|(i, _)| *i != id.0);
        cbs.len() != before
    }

    /// Where the future was created (the caller of `Future::new` or `create_future`), if
    /// debug mode was on then.
    ///
    /// ```
    /// let ev = corio::EventLoop::builder().debug(true).build().unwrap();
    /// let fut = ev.create_future::<u8>();
    /// assert_eq!(fut.created_at().unwrap().line(), line!() - 1);
    /// ```
    pub fn created_at(&self) -> Option<&'static std::panic::Location<'static>> {
        self.inner.created_at
    }

    /// Lends the result to `f`: the value by reference, or why there is none. The way to
    /// read a value that is not `Clone` ([`result`](Future::result) and `.await` clone, since
    /// any number of callers may read one future); an `Rc<T>` result is the other.
    ///
    /// The state stays borrowed while `f` runs: `f` must not set or cancel this same future
    /// (that would panic), which a reader has no reason to do.
    ///
    /// ```
    /// struct Report(String); // not Clone
    /// let ev = corio::EventLoop::new().unwrap();
    /// let fut = ev.create_future::<Report>();
    /// assert!(fut.with_result(|r| r.is_err())); // not set yet
    /// fut.set_result(Report("all good".into())).unwrap();
    /// assert_eq!(fut.with_result(|r| r.unwrap().0.len()), 8);
    /// ```
    pub fn with_result<R>(&self, f: impl FnOnce(Result<&T, FutureError>) -> R) -> R {
        let state = self.inner.state.borrow();
        let r = match &*state {
            State::Pending => Err(FutureError::InvalidState(InvalidStateError(
                "the result is not set yet",
            ))),
            State::Done(v) => Ok(v),
            State::Failed(e) => {
                self.inner.retrieved.set(true);
                Err(FutureError::Exception(e.clone()))
            }
            State::Cancelled(c) => Err(FutureError::Cancelled(c.clone())),
        };
        f(r)
    }

    /// The loop this future belongs to.
    pub fn get_loop(&self) -> crate::EventLoop {
        crate::EventLoop {
            core: self.inner.core.clone(),
            owner: false,
        }
    }
}

impl<T: Clone + 'static> Future<T> {
    /// The result: a clone of the value, or why there is none (asyncio's `result()`). For a
    /// value that is not `Clone`, see [`with_result`](Future::with_result).
    pub fn result(&self) -> Result<T, FutureError> {
        self.with_result(|r| r.cloned())
    }
}

impl<T: 'static> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            inner: self.inner.clone(),
            waiter_slot: Cell::new(None),
        }
    }
}

impl<T: Clone + 'static> std::future::Future for Future<T> {
    type Output = Result<T, FutureError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done() {
            self.waiter_slot.set(None);
            return Poll::Ready(self.result());
        }
        let mut waiters = self.inner.waiters.borrow_mut();
        match self.waiter_slot.get().and_then(|i| waiters.get_mut(i)) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => *w = cx.waker().clone(),
            None => {
                waiters.push(cx.waker().clone());
                self.waiter_slot.set(Some(waiters.len() - 1));
            }
        }
        Poll::Pending
    }
}

impl<T: 'static> Drop for Future<T> {
    fn drop(&mut self) {
        if self.waiter_slot.get().is_some() {
            if let Some(c) = raw::cancelling_now() {
                // asyncio: cancelling a task cancels the future it is waiting on.
                let _ = self.complete(State::Cancelled(c));
            }
        }
    }
}

impl<T: 'static> Default for Future<T> {
    #[track_caller]
    fn default() -> Self {
        Future::new()
    }
}

impl<T: 'static> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.inner.state.borrow() {
            State::Pending => "pending",
            State::Done(_) => "finished",
            State::Failed(_) => "failed",
            State::Cancelled(_) => "cancelled",
        };
        f.debug_struct("Future")
            .field("state", &state)
            .field("waiters", &self.inner.waiters.borrow().len())
            .field("created_at", &self.inner.created_at.map(|l| l.to_string()))
            .finish()
    }
}
