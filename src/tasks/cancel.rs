//! `catch_cancel`: where a task can observe its cancellation and clean up (asyncio's
//! `try: ... except CancelledError:`). Layer 3.

use std::cell::Cell;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::raw::{self, Header};
use crate::exceptions::Cancelled;

thread_local! {
    static NEXT_SCOPE: Cell<u16> = const { Cell::new(1) };
}

/// Runs `fut`; if the task is cancelled meanwhile, drops `fut` and returns `Err(Cancelled)`.
///
/// This is how a task catches its cancellation (asyncio's `except CancelledError`): the
/// code after the `.await` runs as usual, may await cleanup, and decides how the task ends.
/// Returning normally means the task was *not* cancelled (asyncio's rule); to end it
/// cancelled after cleanup, call [`Cancelled::reraise`]. Nested scopes: the innermost one
/// catches. Outside a task (in `run_until_complete`'s future) nothing can cancel `fut`.
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let t = corio::spawn(async {
///         match corio::catch_cancel(corio::sleep(Duration::from_secs(3600))).await {
///             Ok(()) => "slept",
///             Err(_cancelled) => {
///                 corio::sleep(Duration::from_millis(1)).await; // async cleanup is allowed
///                 "cleaned up"
///             }
///         }
///     });
///     corio::yield_now().await;
///     t.cancel(None);
///     assert_eq!(t.await.unwrap(), "cleaned up");
/// });
/// ```
pub fn catch_cancel<F: std::future::Future>(fut: F) -> CatchCancel<F> {
    CatchCancel {
        scope: CancelScope::default(),
        inner: Some(Box::pin(fut)),
    }
}

/// The future returned by [`catch_cancel`].
pub struct CatchCancel<F> {
    // Declared first so it is unregistered before `inner` drops, as before the split.
    scope: CancelScope,
    inner: Option<Pin<Box<F>>>,
}

/// A cancellation scope's entry in the current task's scope stack: what [`CatchCancel`] is
/// made of, for combinators that keep their inner future themselves (timeouts, task groups).
///
/// Outside a task nothing is registered and nothing is ever delivered.
#[derive(Debug, Default)]
pub(crate) struct CancelScope {
    /// Scope id in the current task's scope stack; 0 while not registered.
    id: u16,
}

impl CancelScope {
    /// Registers the scope on the first call inside a task, and refreshes its waker on later
    /// ones; returns whether a cancellation has been delivered to it (see [`take`](Self::take)).
    pub(crate) fn poll_delivered(&mut self, cx: &Context<'_>) -> bool {
        raw::with_current_header(|h| {
            if self.id == 0 {
                self.id = NEXT_SCOPE.with(|n| n.replace(n.get().wrapping_add(1).max(1)));
                let id = self.id;
                h.with_extra(|e| e.scopes.push((id, Some(cx.waker().clone()))));
            } else {
                let id = self.id;
                h.with_extra(|e| {
                    if let Some((_, w)) = e.scopes.iter_mut().find(|(s, _)| *s == id) {
                        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                            *w = Some(cx.waker().clone());
                        }
                    }
                });
            }
            h.delivered_to.get() == self.id
        })
        .unwrap_or(false)
    }

    /// Takes the cancellation delivered to this scope (after `poll_delivered` said so) and
    /// unregisters the scope; a later `poll_delivered` registers it again, innermost.
    pub(crate) fn take(&mut self) -> Cancelled {
        raw::with_current_header(|h| {
            h.delivered_to.set(0);
            h.cancel_pending.set(false);
            let c = h.take_cancel_msg();
            self.exit_with(h);
            c
        })
        .unwrap_or_default()
    }

    /// Whether no scope was registered inside this one since (true outside a task).
    pub(crate) fn is_innermost(&self) -> bool {
        raw::with_current_header(|h| {
            h.peek_extra(|e| e.and_then(|e| e.scopes.last().map(|(s, _)| *s)))
                .is_none_or(|s| s == self.id)
        })
        .unwrap_or(true)
    }

    /// Unregisters the scope; a cancellation delivered to it and not taken is handed back to
    /// be delivered again at the task's next step.
    pub(crate) fn exit(&mut self) {
        if self.id != 0 {
            let _ = raw::with_current_header(|h| self.exit_with(h));
        }
    }

    fn exit_with(&mut self, h: &Header) {
        if self.id == 0 {
            return;
        }
        let id = std::mem::take(&mut self.id);
        h.peek_extra(|e| {
            if let Some(e) = e {
                e.scopes.retain(|(s, _)| *s != id);
            }
        });
        if h.delivered_to.get() == id {
            // Handed a cancellation we never took: give it back to be delivered again.
            h.delivered_to.set(0);
            if let Some(t) = raw::current_task() {
                raw::schedule(t);
            }
        }
    }
}

impl Drop for CancelScope {
    fn drop(&mut self) {
        self.exit();
    }
}

/// Ends the current task as cancelled with `c` at its next step, unless an enclosing scope
/// catches it ([`Cancelled::reraise`] without the `.await`). Does nothing outside a task.
pub(crate) fn reraise_current(c: &Cancelled) {
    if let Some(t) = raw::current_task() {
        let h = t.header();
        h.with_extra(|e| e.cancel_msg = c.arc_message());
        h.cancel_pending.set(true);
        raw::schedule(t);
    }
}

impl<F: std::future::Future> std::future::Future for CatchCancel<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(this.inner.is_some(), "CatchCancel polled after completion");
        if this.scope.poll_delivered(cx) {
            let c = this.scope.take();
            let inner = this.inner.take();
            raw::drop_as_cancellation(&c, move || drop(inner));
            return Poll::Ready(Err(c));
        }
        let out = this
            .inner
            .as_mut()
            .expect("checked above")
            .as_mut()
            .poll(cx);
        match out {
            Poll::Ready(v) => {
                this.inner = None;
                this.scope.exit();
                Poll::Ready(Ok(v))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> fmt::Debug for CatchCancel<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatchCancel")
            .field("done", &self.inner.is_none())
            .finish()
    }
}

impl Cancelled {
    /// Ends the current task as cancelled with this message, after cleanup in a
    /// [`catch_cancel`] handler (asyncio's bare `raise` in `except CancelledError:`).
    /// An enclosing `catch_cancel` scope, if any, catches it next. Never completes.
    ///
    /// ```
    /// corio::run(async {
    ///     let t = corio::spawn(async {
    ///         if let Err(c) = corio::catch_cancel(std::future::pending::<()>()).await {
    ///             // ...cleanup...
    ///             c.reraise::<()>().await;
    ///         }
    ///     });
    ///     corio::yield_now().await;
    ///     t.cancel(Some("stop"));
    ///     assert!(t.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub async fn reraise<T>(self) -> T {
        reraise_current(&self);
        std::future::pending().await
    }
}
