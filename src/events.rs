//! Callback handles: what `call_soon`, `call_later` and `add_reader` give back.
//!
//! asyncio counterpart: `events.py` (`Handle`, `TimerHandle`). Layer 2: made by the loop
//! ([`crate::EventLoop`]), queued on its ready queue, run by one turn of the loop.
//!
//! A handle is one allocation: an `Rc` holding a `cancelled` flag and the callback. The
//! loop's ready queue holds a clone; the caller holds another and may [`Handle::cancel`] it
//! at any time before it runs. A cancelled handle is skipped when its turn comes.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::rc::{Rc, Weak};
use std::time::Instant;

use crate::base_events::Core;
use crate::base_events::timers::TimerKey;

/// The loop's view of a handle: run it, cancel it, ask whether it was cancelled.
pub(crate) trait HandleDyn {
    /// Runs the callback (a one-shot callback runs at most once).
    fn run(&self);
    fn cancel(&self);
    fn cancelled(&self) -> bool;
    /// Where the callback was scheduled (recorded in debug mode only).
    fn created_at(&self) -> Option<&'static Location<'static>> {
        None
    }
}

/// A handle that remembers where it was scheduled: what debug mode makes instead of the bare
/// handle, so that the plain one stays as small as it was.
pub(crate) struct Traced<H> {
    at: &'static Location<'static>,
    inner: H,
}

impl<H: HandleDyn> HandleDyn for Traced<H> {
    fn run(&self) {
        self.inner.run();
    }
    fn cancel(&self) {
        self.inner.cancel();
    }
    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
    fn created_at(&self) -> Option<&'static Location<'static>> {
        Some(self.at)
    }
}

/// A callback that runs once (`call_soon`, `call_later`, `call_at`).
pub(crate) struct OnceHandle<F> {
    cancelled: Cell<bool>,
    callback: Cell<Option<F>>,
}

impl<F: FnOnce() + 'static> OnceHandle<F> {
    pub(crate) fn boxed(f: F) -> Rc<dyn HandleDyn> {
        Rc::new(OnceHandle {
            cancelled: Cell::new(false),
            callback: Cell::new(Some(f)),
        })
    }

    /// Like [`boxed`](OnceHandle::boxed), remembering `at` (debug mode) when given.
    pub(crate) fn boxed_at(f: F, at: Option<&'static Location<'static>>) -> Rc<dyn HandleDyn> {
        let inner = OnceHandle {
            cancelled: Cell::new(false),
            callback: Cell::new(Some(f)),
        };
        match at {
            Some(at) => Rc::new(Traced { at, inner }),
            None => Rc::new(inner),
        }
    }
}

impl<F: FnOnce()> HandleDyn for OnceHandle<F> {
    fn run(&self) {
        if !self.cancelled.get() {
            if let Some(f) = self.callback.take() {
                f();
            }
        }
    }
    fn cancel(&self) {
        self.cancelled.set(true);
        // Drop the callback now: whatever it captured is released at cancel time.
        drop(self.callback.take());
    }
    fn cancelled(&self) -> bool {
        self.cancelled.get()
    }
}

/// A callback that may run many times (`add_reader`, `add_writer`).
pub(crate) struct RepeatHandle<F> {
    cancelled: Cell<bool>,
    callback: RefCell<Option<F>>,
}

impl<F: FnMut() + 'static> RepeatHandle<F> {
    pub(crate) fn boxed(f: F) -> Rc<dyn HandleDyn> {
        Rc::new(RepeatHandle {
            cancelled: Cell::new(false),
            callback: RefCell::new(Some(f)),
        })
    }
}

impl<F: FnMut()> HandleDyn for RepeatHandle<F> {
    fn run(&self) {
        if self.cancelled.get() {
            return;
        }
        // A callback that re-enters itself (it cannot, through the loop) is skipped.
        if let Ok(mut slot) = self.callback.try_borrow_mut() {
            if let Some(f) = slot.as_mut() {
                f();
            }
        }
    }
    fn cancel(&self) {
        self.cancelled.set(true);
        if let Ok(mut slot) = self.callback.try_borrow_mut() {
            slot.take();
        }
    }
    fn cancelled(&self) -> bool {
        self.cancelled.get()
    }
}

/// A scheduled callback (asyncio's `Handle`), returned by
/// [`EventLoop::call_soon`](crate::EventLoop::call_soon).
///
/// ```
/// let ev = corio::EventLoop::new().unwrap();
/// let h = ev.call_soon(|| panic!("never runs"));
/// h.cancel();
/// assert!(h.cancelled());
/// ev.run_until_complete(corio::yield_now());
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: Rc<dyn HandleDyn>,
}

impl Handle {
    /// Cancels the callback: it will not run. Cancelling twice, or after it ran, does nothing.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether [`cancel`](Handle::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("cancelled", &self.cancelled())
            .finish()
    }
}

/// A callback scheduled for a time (asyncio's `TimerHandle`), returned by
/// [`EventLoop::call_later`](crate::EventLoop::call_later) and
/// [`EventLoop::call_at`](crate::EventLoop::call_at).
///
/// Cancelling removes it from the timer queue at once (its heap entry is skipped lazily).
///
/// ```
/// use std::time::Duration;
/// let ev = corio::EventLoop::new().unwrap();
/// let t = ev.call_later(Duration::from_secs(3600), || unreachable!());
/// assert!(t.when() > ev.time());
/// t.cancel();
/// assert!(t.cancelled());
/// ```
pub struct TimerHandle {
    pub(crate) handle: Handle,
    pub(crate) key: TimerKey,
    pub(crate) when: Instant,
    pub(crate) core: Weak<Core>,
}

impl TimerHandle {
    /// Cancels the timer; its callback will not run.
    pub fn cancel(&self) {
        if self.handle.cancelled() {
            return;
        }
        self.handle.cancel();
        if let Some(core) = self.core.upgrade() {
            core.timers.borrow_mut().remove(self.key);
        }
    }

    /// Whether [`cancel`](TimerHandle::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.handle.cancelled()
    }

    /// When the callback is due, on the loop's clock ([`EventLoop::time`](crate::EventLoop::time)).
    pub fn when(&self) -> Instant {
        self.when
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("when", &self.when)
            .field("cancelled", &self.cancelled())
            .finish()
    }
}
