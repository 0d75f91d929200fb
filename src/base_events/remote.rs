//! The loop's one door for other threads: a locked queue plus a selector wake-up.
//!
//! asyncio counterpart: `call_soon_threadsafe` with its self-pipe (`_write_to_self`).
//! Layer 2: shared (`Arc`) between the loop core, task wakers and [`Remote`] handles.
//!
//! Protocol (why no wake-up is ever lost, B11):
//! 1. a sender pushes its item under the lock; if the queue was empty it also sets
//!    `pending` (SeqCst), still under the lock, so `pending` is true exactly while the queue
//!    holds items (the loop clears it under the lock when it takes them);
//! 2. then, if `sleeping` reads true, `sleeping.swap(false)`: if the loop said it is about
//!    to block, the sender calls `selector.notify()` (an eventfd write); one sender per sleep;
//! 3. the loop, before a blocking select, stores `sleeping = true` and *then* reads
//!    `pending`; if set it selects with a zero timeout.
//!
//! In the SeqCst order either the loop's store comes first (the sender that made the queue
//! non-empty then sees `true` and notifies) or that sender's `pending = true` comes first
//! and the loop's load sees it. A busy loop (never blocking) costs senders no syscall, and a
//! sender adding to a non-empty queue writes nothing shared but the lock.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use crate::selector::Selector;
use crate::tasks::raw::RawTask;

/// What another thread can hand the loop.
pub(crate) enum RemoteItem {
    /// A task woken from another thread: it is queued to run.
    Task(Arc<dyn RawTask>),
    /// A `call_soon_threadsafe` callback.
    Callback(Box<dyn FnOnce() + Send + 'static>),
}

pub(crate) struct Queue {
    pub(crate) items: Vec<RemoteItem>,
    pub(crate) closed: bool,
}

/// The thread-safe part of a loop.
pub(crate) struct Shared {
    pub(crate) selector: Box<dyn Selector>,
    pub(crate) queue: Mutex<Queue>,
    pub(crate) pending: AtomicBool,
    pub(crate) sleeping: AtomicBool,
    pub(crate) owner: ThreadId,
}

impl Shared {
    pub(crate) fn new(selector: Box<dyn Selector>) -> Shared {
        Shared {
            selector,
            queue: Mutex::new(Queue {
                items: Vec::new(),
                closed: false,
            }),
            pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            owner: std::thread::current().id(),
        }
    }

    /// Hands `item` to the loop from any thread. After the loop closed the item is dropped
    /// here and `false` is returned.
    pub(crate) fn push(&self, item: RemoteItem) -> bool {
        let rejected = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.closed {
                Some(item)
            } else {
                if q.items.is_empty() {
                    self.pending.store(true, Ordering::SeqCst);
                }
                q.items.push(item);
                None
            }
        };
        if let Some(item) = rejected {
            // Dropped outside the lock: a task's future was already dropped at close time,
            // so this only releases its memory.
            drop(item);
            return false;
        }
        // Load first: under load the loop is awake and the swap (a write to a line the loop
        // also writes) is skipped.
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            // A failed notify would leave the loop asleep with work queued; the selectors
            // retry EAGAIN themselves, so an error here is a broken fd: report it loudly.
            if let Err(e) = self.selector.notify() {
                log::error!("corio: cannot wake the event loop: {e}");
            }
        }
        true
    }

    /// Moves every queued item into `out` (the loop's thread only).
    pub(crate) fn drain_into(&self, out: &mut Vec<RemoteItem>) {
        if !self.pending.load(Ordering::SeqCst) {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.pending.store(false, Ordering::SeqCst);
        std::mem::swap(&mut q.items, out);
    }

    /// Refuses further items; returns what was queued so the loop drops it on its thread.
    pub(crate) fn close(&self) -> Vec<RemoteItem> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.closed = true;
        std::mem::take(&mut q.items)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).closed
    }
}

/// A handle to a loop that other threads may hold: the thread-safe door
/// (asyncio's `loop.call_soon_threadsafe` called from another thread).
///
/// [`EventLoop`](crate::EventLoop) itself is `!Send`: it must stay on its thread.
/// [`EventLoop::remote`](crate::EventLoop::remote) gives this `Send + Sync + Clone` handle.
///
/// ```
/// use std::sync::mpsc;
/// let ev = corio::EventLoop::new().unwrap();
/// let remote = ev.remote();
/// let (tx, rx) = mpsc::channel();
/// std::thread::spawn(move || {
///     remote.call_soon_threadsafe(move || tx.send(std::thread::current().name().map(String::from)).unwrap());
/// });
/// // The callback ran on the loop's thread, not on the spawned one.
/// let me = std::thread::current().name().map(String::from);
/// ev.run_until_complete(async {
///     loop {
///         if let Ok(name) = rx.try_recv() { assert_eq!(name, me); break; }
///         corio::sleep(std::time::Duration::from_millis(1)).await;
///     }
/// });
/// ```
#[derive(Clone)]
pub struct Remote {
    pub(crate) shared: Arc<Shared>,
}

impl Remote {
    /// Schedules `f` to run on the loop's thread, in a later turn, from any thread.
    /// Returns `false` (and drops `f`) if the loop is already closed.
    ///
    /// This is **the door for other threads**: the only way, with task wakers, for code on
    /// another thread to make something happen on the loop. Everything thread-facing in corio
    /// goes through one of the two: [`run_coroutine_threadsafe`](crate::run_coroutine_threadsafe)
    /// sends the closure that builds its future this way; executor jobs
    /// ([`to_thread`](crate::to_thread)) and the SIGCHLD watcher wake the waiting task's waker.
    /// `f` must be `Send`: it is made on one thread and run on another.
    ///
    /// Not async-signal-safe (it takes a lock): from a signal handler use
    /// [`EventLoop::add_signal_handler`](crate::EventLoop::add_signal_handler) instead.
    pub fn call_soon_threadsafe(&self, f: impl FnOnce() + Send + 'static) -> bool {
        self.shared.push(RemoteItem::Callback(Box::new(f)))
    }

    /// Whether the loop was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("selector", &self.shared.selector.name())
            .finish()
    }
}
