//! Synchronization primitives for the tasks of one loop: [`Lock`], [`Event`], [`Condition`],
//! [`Semaphore`], [`BoundedSemaphore`] and [`Barrier`]. Exported as `corio::sync`.
//!
//! asyncio counterpart: `locks.py` (tokio's `tokio::sync`). Layer 3, beside futures and tasks:
//! the primitives need nothing but wakers (and [`catch_cancel`] for [`Condition::wait`]). None
//! needs a running loop to be created, and none is thread-safe: they are shared between the
//! tasks of one loop through `Rc`.
//!
//! ```
//! use std::rc::Rc;
//! use corio::sync::Lock;
//!
//! corio::run(async {
//!     let lock = Rc::new(Lock::new());
//!     let l2 = lock.clone();
//!     let t = corio::spawn(async move {
//!         let _guard = l2.acquire().await; // waits: main holds the lock
//!         "got it"
//!     });
//!     let guard = lock.acquire().await;
//!     corio::yield_now().await; // the task runs and queues up behind us
//!     drop(guard); // hands the lock to the waiting task
//!     assert_eq!(t.await.unwrap(), "got it");
//! });
//! ```
//!
//! # One pattern for every primitive
//!
//! Each primitive is *state* (a flag, a counter) plus a FIFO *wait queue* of the tasks waiting
//! for that state to change, as in asyncio (which keeps a `deque` of futures). A waiter is a
//! future that holds a slot in that queue; whoever changes the state *notifies* waiters from
//! the front, which marks their slots and wakes their tasks through the loop's ready queue
//! (never by running them inline). [`Lock`] and [`Semaphore`] hand over directly: `release`
//! grants the lock or permit to the first waiter, so a newcomer can never jump the queue.
//!
//! # Cancellation
//!
//! A cancelled task's future is dropped at its suspension point (see [`crate::tasks`]), so
//! every waiter here restores the invariant in its `Drop`: a waiter that was already granted
//! the lock or a permit passes it to the next waiter (or gives it back), and a waiter that was
//! already notified passes the notification on. Nothing leaks, nothing is lost: this is what
//! tokio calls *cancel safety*. [`Condition::wait`] goes further, as asyncio's does: it catches
//! the cancellation, re-acquires the lock, and only then lets the cancellation continue.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};

use crate::tasks::catch_cancel;

/// Makes a type `!Send` (and `!Sync`): these primitives belong to one loop's thread.
type NotSend = PhantomData<*const ()>;

// ---------------------------------------------------------------------------------------------
// The wait queue: the building block of every primitive here and in `queues`.
// ---------------------------------------------------------------------------------------------

/// "No slot": the end of a list, or a waiter that is not queued.
const NIL: u32 = u32::MAX;

/// A FIFO of waiting tasks.
///
/// Storage is a slab: a `Vec` of slots reused through a free list, with the queue threaded
/// through it as a doubly linked list of indices. Joining, leaving from the middle (a cancelled
/// waiter) and notifying the head are O(1), and nothing is allocated once the slab has grown to
/// the largest number of tasks that waited at once. Until a task first has to wait, the slab is
/// an empty `Vec`: a primitive that is never contended never allocates.
///
/// (tokio keeps its waiters in an intrusive list inside the waiting futures themselves; that
/// needs `unsafe` pinned pointers, which corio keeps to `sys/` and the task core. The slab gets
/// the same costs without them.)
///
/// A slot is *waiting* (linked into the queue, holding the task's waker) or *notified*
/// (unlinked, kept until its owner sees the notification or leaves).
pub(crate) struct WaitQueue {
    slab: RefCell<Slab>,
}

enum SlotState {
    Vacant,
    Waiting(Waker),
    Notified,
}

struct Slot {
    prev: u32,
    next: u32,
    state: SlotState,
}

struct Slab {
    slots: Vec<Slot>,
    /// First vacant slot; vacant slots are chained through `next`.
    vacant: u32,
    head: u32,
    tail: u32,
    /// How many slots are linked (waiting, not yet notified).
    waiting: usize,
}

impl Slab {
    fn link(&mut self, i: u32, front: bool) {
        let (prev, next) = if front {
            (NIL, self.head)
        } else {
            (self.tail, NIL)
        };
        let slot = &mut self.slots[i as usize];
        slot.prev = prev;
        slot.next = next;
        match prev {
            NIL => self.head = i,
            p => self.slots[p as usize].next = i,
        }
        match next {
            NIL => self.tail = i,
            n => self.slots[n as usize].prev = i,
        }
        self.waiting += 1;
    }

    fn unlink(&mut self, i: u32) {
        let Slot { prev, next, .. } = self.slots[i as usize];
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
        self.waiting -= 1;
    }

    fn insert(&mut self, waker: Waker, front: bool) -> u32 {
        let i = if self.vacant != NIL {
            let i = self.vacant;
            let slot = &mut self.slots[i as usize];
            self.vacant = slot.next;
            slot.state = SlotState::Waiting(waker);
            i
        } else {
            assert!(self.slots.len() < NIL as usize, "too many waiters");
            self.slots.push(Slot {
                prev: NIL,
                next: NIL,
                state: SlotState::Waiting(waker),
            });
            (self.slots.len() - 1) as u32
        };
        self.link(i, front);
        i
    }

    /// Frees slot `i`, returning its old state (dropped by the caller, outside the borrow).
    fn vacate(&mut self, i: u32) -> SlotState {
        let slot = &mut self.slots[i as usize];
        let old = std::mem::replace(&mut slot.state, SlotState::Vacant);
        slot.next = self.vacant;
        self.vacant = i;
        old
    }
}

impl WaitQueue {
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue {
            slab: RefCell::new(Slab {
                slots: Vec::new(),
                vacant: NIL,
                head: NIL,
                tail: NIL,
                waiting: 0,
            }),
        }
    }

    /// How many tasks wait and were not notified yet.
    pub(crate) fn len(&self) -> usize {
        self.slab.borrow().waiting
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&self, waker: &Waker, front: bool) -> u32 {
        self.slab.borrow_mut().insert(waker.clone(), front)
    }

    /// Whether waiter `key` was notified; if so, its slot is freed. If not, `waker` replaces
    /// the stored one (a future may move between tasks).
    fn poll(&self, key: u32, waker: &Waker) -> bool {
        let mut slab = self.slab.borrow_mut();
        let replaced = match &mut slab.slots[key as usize].state {
            SlotState::Waiting(w) if w.will_wake(waker) => return false,
            SlotState::Waiting(w) => std::mem::replace(w, waker.clone()),
            SlotState::Notified => {
                slab.vacate(key);
                return true;
            }
            SlotState::Vacant => unreachable!("wait queue: polled a vacant slot"),
        };
        drop(slab);
        drop(replaced); // outside the borrow, like every waker dropped here
        false
    }

    /// Takes waiter `key` out of the queue; returns whether it had been notified.
    fn remove(&self, key: u32) -> bool {
        let old = {
            let mut slab = self.slab.borrow_mut();
            if matches!(slab.slots[key as usize].state, SlotState::Waiting(_)) {
                slab.unlink(key);
            }
            slab.vacate(key)
        };
        // A waker is dropped here, outside the borrow.
        matches!(old, SlotState::Notified)
    }

    /// Notifies up to `n` waiters from the front; returns how many. Each one's task is woken,
    /// which only puts it on its loop's ready queue.
    pub(crate) fn notify(&self, n: usize) -> usize {
        let mut done = 0;
        while done < n {
            let waker = {
                let mut slab = self.slab.borrow_mut();
                let i = slab.head;
                if i == NIL {
                    break;
                }
                slab.unlink(i);
                match std::mem::replace(&mut slab.slots[i as usize].state, SlotState::Notified) {
                    SlotState::Waiting(w) => w,
                    _ => unreachable!("wait queue: a linked slot was not waiting"),
                }
            };
            waker.wake();
            done += 1;
        }
        done
    }

    /// Notifies every task waiting *now*; tasks that start waiting later are not notified.
    pub(crate) fn notify_all(&self) -> usize {
        self.notify(self.len())
    }
}

impl fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitQueue")
            .field("waiting", &self.len())
            .finish()
    }
}

/// One task's place in a [`WaitQueue`], owned by the future that waits. Dropping it leaves
/// the queue; the owning future's own `Drop` runs first and decides, from what
/// [`Waiter::cancel`] reports, whether a grant or notification must be passed on.
pub(crate) struct Waiter<'a> {
    queue: &'a WaitQueue,
    key: u32,
}

impl<'a> Waiter<'a> {
    pub(crate) const fn new(queue: &'a WaitQueue) -> Waiter<'a> {
        Waiter { queue, key: NIL }
    }

    pub(crate) fn queue(&self) -> &'a WaitQueue {
        self.queue
    }

    /// Whether this waiter holds a slot (waiting or notified).
    pub(crate) fn is_queued(&self) -> bool {
        self.key != NIL
    }

    /// Joins the queue at the back, or at the front for a waiter that was woken but has to
    /// wait again (it keeps its turn).
    pub(crate) fn enqueue(&mut self, cx: &Context<'_>, front: bool) {
        debug_assert!(!self.is_queued());
        self.key = self.queue.push(cx.waker(), front);
    }

    /// Ready once notified (the slot is then freed and the waiter is no longer queued).
    pub(crate) fn poll_notified(&mut self, cx: &Context<'_>) -> Poll<()> {
        if self.queue.poll(self.key, cx.waker()) {
            self.key = NIL;
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Leaves the queue; returns whether a notification had arrived that was never seen
    /// (the caller must then pass it on).
    pub(crate) fn cancel(&mut self) -> bool {
        if self.key == NIL {
            return false;
        }
        let key = std::mem::replace(&mut self.key, NIL);
        self.queue.remove(key)
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Waiter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("queued", &self.is_queued())
            .finish()
    }
}

/// Waits for one notification from a queue. With `pass_on`, a notification that arrives but
/// is dropped unseen (the task was cancelled) is given to the next waiter.
struct Notified<'a> {
    waiter: Waiter<'a>,
    pass_on: bool,
}

impl<'a> Notified<'a> {
    fn new(queue: &'a WaitQueue, pass_on: bool) -> Notified<'a> {
        Notified {
            waiter: Waiter::new(queue),
            pass_on,
        }
    }
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.waiter.is_queued() {
            self.waiter.poll_notified(cx)
        } else {
            self.waiter.enqueue(cx, false);
            Poll::Pending
        }
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        if self.waiter.cancel() && self.pass_on {
            self.waiter.queue().notify(1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lock
// ---------------------------------------------------------------------------------------------

/// A mutual-exclusion lock for tasks (asyncio's `Lock`; tokio's `Mutex<()>`).
///
/// [`acquire`](Lock::acquire) waits until the lock is free and returns a [`LockGuard`] that
/// releases it when dropped. Waiters are served strictly in FIFO order: releasing hands the
/// lock straight to the first waiter, so a task that releases and at once re-acquires queues
/// behind the tasks already waiting. A waiter cancelled after the lock was handed to it passes
/// the lock on. Acquiring a free lock and releasing it allocate nothing.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use corio::sync::Lock;
///
/// corio::run(async {
///     let lock = Rc::new(Lock::new());
///     let inside = Rc::new(Cell::new(0));
///     let tasks: Vec<_> = (0..3)
///         .map(|_| {
///             let (lock, inside) = (lock.clone(), inside.clone());
///             corio::spawn(async move {
///                 let _guard = lock.acquire().await;
///                 inside.set(inside.get() + 1);
///                 assert_eq!(inside.get(), 1, "one task at a time");
///                 corio::yield_now().await;
///                 inside.set(inside.get() - 1);
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert!(!lock.locked());
/// });
/// ```
pub struct Lock {
    locked: Cell<bool>,
    waiters: WaitQueue,
    _not_send: NotSend,
}

impl Lock {
    /// A new, unlocked lock. Needs no running loop.
    ///
    /// ```
    /// let lock = corio::sync::Lock::new();
    /// assert!(!lock.locked());
    /// ```
    pub const fn new() -> Lock {
        Lock {
            locked: Cell::new(false),
            waiters: WaitQueue::new(),
            _not_send: PhantomData,
        }
    }

    /// Waits until the lock is free, takes it, and returns the guard that releases it.
    ///
    /// Cancel-safe: if the returned future is dropped after the lock was handed to it, the
    /// lock goes to the next waiter (or becomes free).
    ///
    /// ```
    /// corio::run(async {
    ///     let lock = corio::sync::Lock::new();
    ///     let guard = lock.acquire().await;
    ///     assert!(lock.locked());
    ///     drop(guard);
    ///     assert!(!lock.locked());
    /// });
    /// ```
    #[doc(alias = "lock")]
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire {
            lock: self,
            waiter: Waiter::new(&self.waiters),
        }
    }

    /// Takes the lock if it is free and nobody waits for it, without waiting.
    ///
    /// ```
    /// let lock = corio::sync::Lock::new();
    /// let guard = lock.try_acquire().expect("free");
    /// assert!(lock.try_acquire().is_none());
    /// drop(guard);
    /// assert!(lock.try_acquire().is_some());
    /// ```
    #[doc(alias = "try_lock")]
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        if self.locked.get() {
            return None;
        }
        // `release` hands the lock to a waiter rather than unlocking, so a free lock has none.
        debug_assert!(self.waiters.is_empty(), "an unlocked Lock has waiters");
        self.locked.set(true);
        Some(LockGuard {
            lock: self,
            held: true,
        })
    }

    /// Whether the lock is held (or was just handed to a waiter that has not run yet).
    ///
    /// ```
    /// let lock = corio::sync::Lock::new();
    /// let _guard = lock.try_acquire();
    /// assert!(lock.locked());
    /// ```
    #[doc(alias = "is_locked")]
    pub fn locked(&self) -> bool {
        self.locked.get()
    }

    /// Releases the lock: hands it to the first waiter, or frees it if none waits.
    fn release(&self) {
        if self.waiters.notify(1) == 0 {
            self.locked.set(false);
        }
    }
}

impl Default for Lock {
    fn default() -> Lock {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked.get())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

/// The future of [`Lock::acquire`].
///
/// ```
/// let lock = corio::sync::Lock::new();
/// let fut: corio::sync::Acquire<'_> = lock.acquire();
/// drop(fut); // never polled: it never queued, and the lock stays free
/// assert!(!lock.locked());
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    lock: &'a Lock,
    waiter: Waiter<'a>,
}

impl<'a> Future for Acquire<'a> {
    type Output = LockGuard<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard<'a>> {
        let this = &mut *self;
        if this.waiter.is_queued() {
            ready!(this.waiter.poll_notified(cx));
            // Granted by `release`, which left `locked` set: the lock is ours.
            return Poll::Ready(LockGuard {
                lock: this.lock,
                held: true,
            });
        }
        match this.lock.try_acquire() {
            Some(guard) => Poll::Ready(guard),
            None => {
                this.waiter.enqueue(cx, false);
                Poll::Pending
            }
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        // Cancelled after the lock was handed to us: hand it on.
        if self.waiter.cancel() {
            self.lock.release();
        }
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("queued", &self.waiter.is_queued())
            .finish()
    }
}

/// Proof that a task holds a [`Lock`]; dropping it releases the lock (asyncio's
/// `async with lock:` block ending).
///
/// ```
/// let lock = corio::sync::Lock::new();
/// {
///     let _guard = lock.try_acquire().unwrap();
///     assert!(lock.locked());
/// } // released here
/// assert!(!lock.locked());
/// ```
#[must_use = "if unused the Lock is released at once"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    /// False while a [`Condition::wait`] has the lock released (or was dropped before it
    /// could take it back): the guard then releases nothing.
    held: bool,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            self.lock.release();
        }
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("held", &self.held)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Event
// ---------------------------------------------------------------------------------------------

/// A flag that tasks can wait for (asyncio's `Event`).
///
/// [`set`](Event::set) wakes every task waiting at that moment, and later
/// [`wait`](Event::wait) calls return at once until [`clear`](Event::clear). A waiter woken by
/// `set` returns even if `clear` is called in the same turn, before it runs: the notification
/// was delivered to it, not left in the flag. An event does not count or queue `set` calls.
///
/// ```
/// use std::rc::Rc;
/// use corio::sync::Event;
///
/// corio::run(async {
///     let ready = Rc::new(Event::new());
///     let r = ready.clone();
///     let waiter = corio::spawn(async move {
///         r.wait().await;
///         "released"
///     });
///     corio::yield_now().await;
///     ready.set();
///     ready.clear(); // too late to hold the waiter back
///     assert_eq!(waiter.await.unwrap(), "released");
/// });
/// ```
pub struct Event {
    flag: Cell<bool>,
    waiters: WaitQueue,
    _not_send: NotSend,
}

impl Event {
    /// A new event, not set. Needs no running loop.
    ///
    /// ```
    /// assert!(!corio::sync::Event::new().is_set());
    /// ```
    pub const fn new() -> Event {
        Event {
            flag: Cell::new(false),
            waiters: WaitQueue::new(),
            _not_send: PhantomData,
        }
    }

    /// Sets the flag and wakes every task waiting now (through the ready queue).
    ///
    /// ```
    /// let ev = corio::sync::Event::new();
    /// ev.set();
    /// assert!(ev.is_set());
    /// ```
    #[doc(alias = "notify_waiters")]
    pub fn set(&self) {
        self.flag.set(true);
        self.waiters.notify_all();
    }

    /// Resets the flag: later [`wait`](Event::wait) calls wait again. Tasks already woken by
    /// [`set`](Event::set) stay woken.
    ///
    /// ```
    /// let ev = corio::sync::Event::new();
    /// ev.set();
    /// ev.clear();
    /// assert!(!ev.is_set());
    /// ```
    pub fn clear(&self) {
        self.flag.set(false);
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// let ev = corio::sync::Event::new();
    /// assert!(!ev.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.flag.get()
    }

    /// Waits until the flag is set; returns at once if it already is.
    ///
    /// ```
    /// corio::run(async {
    ///     let ev = corio::sync::Event::new();
    ///     ev.set();
    ///     ev.wait().await; // already set: no wait
    /// });
    /// ```
    pub fn wait(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            waiter: Waiter::new(&self.waiters),
        }
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.flag.get())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

/// The future of [`Event::wait`].
///
/// ```
/// let ev = corio::sync::Event::new();
/// let fut: corio::sync::EventWait<'_> = ev.wait();
/// drop(fut);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a Event,
    waiter: Waiter<'a>,
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.waiter.is_queued() {
            return this.waiter.poll_notified(cx);
        }
        if this.event.flag.get() {
            return Poll::Ready(());
        }
        this.waiter.enqueue(cx, false);
        Poll::Pending
    }
}

impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("queued", &self.waiter.is_queued())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Condition
// ---------------------------------------------------------------------------------------------

/// A condition variable: tasks wait, holding a lock, until another task notifies them
/// (asyncio's `Condition`).
///
/// Waiting needs the lock: [`wait`](Condition::wait) takes the [`LockGuard`], releases the
/// lock while waiting and holds it again when it returns, **even when the task is cancelled**
/// (it catches the cancellation, re-acquires, then lets the cancellation go on). A notified
/// task that is cancelled before it runs passes the notification to the next waiter. Spurious
/// wake-ups are possible, so loop on the condition, or use [`wait_for`](Condition::wait_for).
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use corio::sync::Condition;
///
/// corio::run(async {
///     let cond = Rc::new(Condition::new());
///     let items = Rc::new(RefCell::new(Vec::new()));
///     let (c, it) = (cond.clone(), items.clone());
///     let consumer = corio::spawn(async move {
///         let mut guard = c.acquire().await;
///         c.wait_for(&mut guard, || !it.borrow().is_empty()).await;
///         it.borrow_mut().pop().unwrap()
///     });
///     corio::yield_now().await;
///     {
///         let _guard = cond.acquire().await;
///         items.borrow_mut().push("bread");
///         cond.notify(1);
///     }
///     assert_eq!(consumer.await.unwrap(), "bread");
/// });
/// ```
pub struct Condition {
    lock: Rc<Lock>,
    waiters: WaitQueue,
}

impl Condition {
    /// A condition with its own new lock. Needs no running loop.
    ///
    /// ```
    /// let cond = corio::sync::Condition::new();
    /// assert!(!cond.locked());
    /// ```
    pub fn new() -> Condition {
        Condition::with_lock(Rc::new(Lock::new()))
    }

    /// A condition over an existing lock, which may be shared with other conditions
    /// (asyncio's `Condition(lock)`).
    ///
    /// ```
    /// use std::rc::Rc;
    /// use corio::sync::{Condition, Lock};
    ///
    /// let lock = Rc::new(Lock::new());
    /// let not_empty = Condition::with_lock(lock.clone());
    /// let not_full = Condition::with_lock(lock.clone());
    /// let _guard = not_empty.try_acquire().unwrap();
    /// assert!(not_full.locked());
    /// ```
    pub fn with_lock(lock: Rc<Lock>) -> Condition {
        Condition {
            lock,
            waiters: WaitQueue::new(),
        }
    }

    /// The condition's lock.
    ///
    /// ```
    /// let cond = corio::sync::Condition::new();
    /// assert!(!cond.lock().locked());
    /// ```
    pub fn lock(&self) -> &Rc<Lock> {
        &self.lock
    }

    /// Acquires the condition's lock ([`Lock::acquire`]).
    ///
    /// ```
    /// corio::run(async {
    ///     let cond = corio::sync::Condition::new();
    ///     let _guard = cond.acquire().await;
    ///     assert!(cond.locked());
    /// });
    /// ```
    pub fn acquire(&self) -> Acquire<'_> {
        self.lock.acquire()
    }

    /// Takes the condition's lock without waiting ([`Lock::try_acquire`]).
    ///
    /// ```
    /// let cond = corio::sync::Condition::new();
    /// assert!(cond.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        self.lock.try_acquire()
    }

    /// Whether the condition's lock is held.
    ///
    /// ```
    /// let cond = corio::sync::Condition::new();
    /// let _guard = cond.try_acquire();
    /// assert!(cond.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Releases the lock, waits until notified, and re-acquires the lock before returning.
    ///
    /// Cancellation: the lock is re-acquired first (further cancellations meanwhile are
    /// absorbed), then the cancellation continues from here, as asyncio re-raises
    /// `CancelledError`. So code that catches it (with [`catch_cancel`]) holds the lock again,
    /// and a notification this task received but will not act on goes to another waiter.
    /// Only if this future is dropped some other way (polled by hand and dropped before it
    /// completes) is the lock left released; the guard then releases nothing, and waiting on
    /// it again panics.
    ///
    /// # Panics
    ///
    /// If `guard` is not a guard of this condition's lock (asyncio: "cannot wait on
    /// un-acquired lock").
    ///
    /// ```
    /// use std::rc::Rc;
    /// use corio::sync::Condition;
    ///
    /// corio::run(async {
    ///     let cond = Rc::new(Condition::new());
    ///     let c = cond.clone();
    ///     let waiter = corio::spawn(async move {
    ///         let mut guard = c.acquire().await;
    ///         c.wait(&mut guard).await;
    ///         assert!(c.locked(), "woken with the lock held");
    ///     });
    ///     corio::yield_now().await; // the waiter waits, and has released the lock
    ///     let _guard = cond.acquire().await;
    ///     cond.notify_all();
    ///     drop(_guard);
    ///     waiter.await.unwrap();
    /// });
    /// ```
    pub async fn wait(&self, guard: &mut LockGuard<'_>) {
        assert!(
            std::ptr::eq(guard.lock, &*self.lock) && guard.held,
            "Condition::wait: cannot wait on un-acquired lock (the guard must hold this condition's lock)"
        );
        // Release (handing the lock to the next in line), then queue for a notification, in
        // the same step, so no notification can come in between.
        guard.held = false;
        self.lock.release();
        let waited = catch_cancel(Notified::new(&self.waiters, true)).await;
        let notified = waited.is_ok();
        let mut cancelled = waited.err();
        // Re-acquire even when cancelled, keeping the most recent cancellation for later.
        loop {
            match catch_cancel(self.lock.acquire()).await {
                Ok(mut reacquired) => {
                    reacquired.held = false; // ownership moves to the caller's guard
                    guard.held = true;
                    break;
                }
                Err(c) => cancelled = Some(c),
            }
        }
        if let Some(c) = cancelled {
            if notified {
                // We consumed a notification we will not act on: give it to someone else.
                self.waiters.notify(1);
            }
            c.reraise::<()>().await;
        }
    }

    /// Waits until `predicate` returns true, checking it first and after every wake-up, with
    /// the lock held each time (asyncio's `wait_for`).
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use corio::sync::Condition;
    ///
    /// corio::run(async {
    ///     let cond = Rc::new(Condition::new());
    ///     let n = Rc::new(Cell::new(0));
    ///     let (c, n2) = (cond.clone(), n.clone());
    ///     let waiter = corio::spawn(async move {
    ///         let mut guard = c.acquire().await;
    ///         c.wait_for(&mut guard, || n2.get() >= 3).await;
    ///         n2.get()
    ///     });
    ///     for _ in 0..3 {
    ///         corio::yield_now().await;
    ///         let _guard = cond.acquire().await;
    ///         n.set(n.get() + 1);
    ///         cond.notify_all();
    ///     }
    ///     assert_eq!(waiter.await.unwrap(), 3);
    /// });
    /// ```
    pub async fn wait_for(&self, guard: &mut LockGuard<'_>, mut predicate: impl FnMut() -> bool) {
        while !predicate() {
            self.wait(guard).await;
        }
    }

    /// Wakes up to `n` of the tasks waiting now, in the order they started waiting; each
    /// returns from `wait` once it holds the lock again. Does not release the lock.
    ///
    /// # Panics
    ///
    /// If the lock is not held (asyncio: "cannot notify on un-acquired lock").
    ///
    /// ```
    /// let cond = corio::sync::Condition::new();
    /// let _guard = cond.try_acquire().unwrap();
    /// cond.notify(2); // nobody waits: nothing happens
    /// ```
    #[doc(alias = "notify_one")]
    pub fn notify(&self, n: usize) {
        assert!(
            self.lock.locked(),
            "Condition::notify: cannot notify on un-acquired lock"
        );
        self.waiters.notify(n);
    }

    /// Wakes every task waiting now (not those that start waiting afterwards).
    ///
    /// # Panics
    ///
    /// If the lock is not held.
    ///
    /// ```
    /// let cond = corio::sync::Condition::new();
    /// let _guard = cond.try_acquire().unwrap();
    /// cond.notify_all();
    /// ```
    #[doc(alias = "notify_waiters")]
    pub fn notify_all(&self) {
        assert!(
            self.lock.locked(),
            "Condition::notify_all: cannot notify on un-acquired lock"
        );
        self.waiters.notify_all();
    }
}

impl Default for Condition {
    fn default() -> Condition {
        Condition::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.lock.locked())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Semaphore and BoundedSemaphore
// ---------------------------------------------------------------------------------------------

/// A counter of permits; tasks wait while none is left (asyncio's `Semaphore`).
///
/// [`acquire`](Semaphore::acquire) takes a permit, waiting in FIFO order if there is none, and
/// returns a [`SemaphorePermit`] that gives it back when dropped. Releasing hands the permit
/// straight to the first waiter, and [`locked`](Semaphore::locked) is true while tasks wait,
/// so a newcomer never jumps the queue. A waiter cancelled after it was given a permit passes
/// it on. [`release`](Semaphore::release) may add permits beyond the initial number (asyncio's
/// rule); [`BoundedSemaphore`] refuses that.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use corio::sync::Semaphore;
///
/// corio::run(async {
///     let sem = Rc::new(Semaphore::new(2));
///     let busy = Rc::new(Cell::new(0));
///     let tasks: Vec<_> = (0..6)
///         .map(|_| {
///             let (sem, busy) = (sem.clone(), busy.clone());
///             corio::spawn(async move {
///                 let _permit = sem.acquire().await;
///                 busy.set(busy.get() + 1);
///                 assert!(busy.get() <= 2);
///                 corio::yield_now().await;
///                 busy.set(busy.get() - 1);
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(sem.available_permits(), 2);
/// });
/// ```
pub struct Semaphore {
    value: Cell<usize>,
    /// Permits given up with [`SemaphorePermit::forget`] and not released since.
    forgotten: Cell<usize>,
    waiters: WaitQueue,
    _not_send: NotSend,
}

impl Semaphore {
    /// A semaphore with `permits` permits (asyncio's default is 1). Needs no running loop.
    ///
    /// ```
    /// let sem = corio::sync::Semaphore::new(3);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            value: Cell::new(permits),
            forgotten: Cell::new(0),
            waiters: WaitQueue::new(),
            _not_send: PhantomData,
        }
    }

    /// Waits for a permit and takes it.
    ///
    /// Cancel-safe: if the returned future is dropped after a permit was handed to it, the
    /// permit goes to the next waiter (or back to the semaphore).
    ///
    /// ```
    /// corio::run(async {
    ///     let sem = corio::sync::Semaphore::new(1);
    ///     let permit = sem.acquire().await;
    ///     assert!(sem.locked());
    ///     drop(permit);
    ///     assert!(!sem.locked());
    /// });
    /// ```
    pub fn acquire(&self) -> AcquirePermit<'_> {
        AcquirePermit {
            sem: self,
            waiter: Waiter::new(&self.waiters),
        }
    }

    /// Takes a permit if one is free and nobody waits, without waiting.
    ///
    /// ```
    /// let sem = corio::sync::Semaphore::new(1);
    /// let p = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// drop(p);
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let v = self.value.get();
        if v == 0 {
            return None;
        }
        // `add_permit` hands a permit to a waiter rather than counting it, so while tasks
        // wait the count stays 0.
        debug_assert!(self.waiters.is_empty(), "free permits with waiters");
        self.value.set(v - 1);
        Some(SemaphorePermit { sem: self })
    }

    /// Adds a permit (asyncio's `release()`), for use with [`SemaphorePermit::forget`]; it
    /// goes to the first waiter if any. May raise the count above the initial value.
    ///
    /// ```
    /// let sem = corio::sync::Semaphore::new(1);
    /// sem.release();
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    #[doc(alias = "add_permits")]
    pub fn release(&self) {
        self.forgotten.set(self.forgotten.get().saturating_sub(1));
        self.add_permit();
    }

    /// Whether an `acquire` now would wait: no permit is free, or tasks are waiting.
    ///
    /// ```
    /// let sem = corio::sync::Semaphore::new(0);
    /// assert!(sem.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.value.get() == 0 || !self.waiters.is_empty()
    }

    /// How many permits are free (asyncio's `_value`).
    ///
    /// ```
    /// let sem = corio::sync::Semaphore::new(2);
    /// let _p = sem.try_acquire();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.value.get()
    }

    /// Gives one permit back: to the first waiter, or to the count.
    fn add_permit(&self) {
        if self.waiters.notify(1) == 0 {
            self.value.set(self.value.get() + 1);
        }
    }
}

impl Default for Semaphore {
    /// asyncio's default: one permit.
    fn default() -> Semaphore {
        Semaphore::new(1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.value.get())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

/// The future of [`Semaphore::acquire`] and [`BoundedSemaphore::acquire`].
///
/// ```
/// let sem = corio::sync::Semaphore::new(1);
/// let fut: corio::sync::AcquirePermit<'_> = sem.acquire();
/// drop(fut);
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct AcquirePermit<'a> {
    sem: &'a Semaphore,
    waiter: Waiter<'a>,
}

impl<'a> Future for AcquirePermit<'a> {
    type Output = SemaphorePermit<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SemaphorePermit<'a>> {
        let this = &mut *self;
        if this.waiter.is_queued() {
            ready!(this.waiter.poll_notified(cx));
            // Granted by `add_permit`, which did not count it as free: it is ours.
            return Poll::Ready(SemaphorePermit { sem: this.sem });
        }
        match this.sem.try_acquire() {
            Some(permit) => Poll::Ready(permit),
            None => {
                this.waiter.enqueue(cx, false);
                Poll::Pending
            }
        }
    }
}

impl Drop for AcquirePermit<'_> {
    fn drop(&mut self) {
        // Cancelled after a permit was handed to us: hand it on.
        if self.waiter.cancel() {
            self.sem.add_permit();
        }
    }
}

impl fmt::Debug for AcquirePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquirePermit")
            .field("queued", &self.waiter.is_queued())
            .finish()
    }
}

/// One permit of a [`Semaphore`] or [`BoundedSemaphore`], given back when dropped.
///
/// ```
/// let sem = corio::sync::Semaphore::new(1);
/// {
///     let _permit = sem.try_acquire().unwrap();
///     assert_eq!(sem.available_permits(), 0);
/// }
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "if unused the permit is given back at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken without a guard (asyncio style: a later `release()` gives it
    /// back).
    ///
    /// ```
    /// let sem = corio::sync::Semaphore::new(1);
    /// sem.try_acquire().unwrap().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// sem.release();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(self) {
        self.sem.forgotten.set(self.sem.forgotten.get() + 1);
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.add_permit();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}

/// A [`Semaphore`] that refuses to be released more times than it was acquired (asyncio's
/// `BoundedSemaphore`): [`release`](BoundedSemaphore::release) returns an error instead of
/// raising the count above its initial value.
///
/// ```
/// use corio::sync::BoundedSemaphore;
///
/// let sem = BoundedSemaphore::new(1);
/// sem.try_acquire().unwrap().forget(); // asyncio's `await sem.acquire()`
/// assert!(sem.release().is_ok());
/// assert!(sem.release().is_err(), "released too many times");
/// assert_eq!(sem.available_permits(), 1);
/// ```
pub struct BoundedSemaphore {
    sem: Semaphore,
    bound: usize,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `permits` permits, which is also its bound.
    ///
    /// ```
    /// let sem = corio::sync::BoundedSemaphore::new(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub const fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            sem: Semaphore::new(permits),
            bound: permits,
        }
    }

    /// Waits for a permit and takes it ([`Semaphore::acquire`]).
    ///
    /// ```
    /// corio::run(async {
    ///     let sem = corio::sync::BoundedSemaphore::new(1);
    ///     let _permit = sem.acquire().await;
    ///     assert!(sem.locked());
    /// });
    /// ```
    pub fn acquire(&self) -> AcquirePermit<'_> {
        self.sem.acquire()
    }

    /// Takes a permit without waiting ([`Semaphore::try_acquire`]).
    ///
    /// ```
    /// let sem = corio::sync::BoundedSemaphore::new(1);
    /// assert!(sem.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.sem.try_acquire()
    }

    /// Gives back a permit that was [forgotten](SemaphorePermit::forget). Fails, changing
    /// nothing, if every permit taken is still held by a [`SemaphorePermit`] or was already
    /// given back: that release would raise the count above the bound.
    ///
    /// ```
    /// let sem = corio::sync::BoundedSemaphore::new(1);
    /// assert_eq!(sem.release(), Err(corio::sync::ReleaseError));
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        let forgotten = self.sem.forgotten.get();
        if forgotten == 0 {
            return Err(ReleaseError);
        }
        self.sem.forgotten.set(forgotten - 1);
        self.sem.add_permit();
        Ok(())
    }

    /// Whether an `acquire` now would wait ([`Semaphore::locked`]).
    ///
    /// ```
    /// let sem = corio::sync::BoundedSemaphore::new(1);
    /// assert!(!sem.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.sem.locked()
    }

    /// How many permits are free.
    ///
    /// ```
    /// let sem = corio::sync::BoundedSemaphore::new(3);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.sem.available_permits()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("permits", &self.sem.value.get())
            .field("bound", &self.bound)
            .field("waiters", &self.sem.waiters.len())
            .finish()
    }
}

/// [`BoundedSemaphore::release`] would raise the count above the bound (asyncio raises
/// `ValueError: BoundedSemaphore released too many times`).
///
/// ```
/// let err = corio::sync::ReleaseError;
/// assert_eq!(err.to_string(), "BoundedSemaphore released too many times");
/// ```
#[doc(alias = "ValueError")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseError;

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoundedSemaphore released too many times")
    }
}

impl std::error::Error for ReleaseError {}

// ---------------------------------------------------------------------------------------------
// Barrier
// ---------------------------------------------------------------------------------------------

/// Where a [`Barrier`] is in its cycle (asyncio's `_BarrierState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BarrierState {
    /// Tasks arrive and wait.
    Filling,
    /// The last party arrived: the waiting tasks are leaving.
    Draining,
    /// `reset` was called while tasks waited: they are leaving with an error.
    Resetting,
    /// `abort` was called: every `wait` fails until `reset`.
    Broken,
}

/// Makes `parties` tasks wait for each other, then releases them together; reusable
/// (asyncio's `Barrier`, 3.11).
///
/// Each [`wait`](Barrier::wait) returns a distinct index in `0..parties`. Tasks arriving
/// while the previous round is still leaving wait for the next round. [`abort`](Barrier::abort)
/// breaks the barrier: waiting tasks and later calls get [`BrokenBarrierError`] until
/// [`reset`](Barrier::reset). A waiting task that is cancelled simply leaves: the barrier then
/// needs another task to fill its place.
///
/// ```
/// use std::rc::Rc;
/// use corio::sync::Barrier;
///
/// corio::run(async {
///     let barrier = Rc::new(Barrier::new(3));
///     let tasks: Vec<_> = (0..3)
///         .map(|_| {
///             let b = barrier.clone();
///             corio::spawn(async move { b.wait().await.unwrap() })
///         })
///         .collect();
///     let mut indices = Vec::new();
///     for t in tasks {
///         indices.push(t.await.unwrap());
///     }
///     indices.sort();
///     assert_eq!(indices, [0, 1, 2]);
/// });
/// ```
pub struct Barrier {
    parties: usize,
    state: Cell<BarrierState>,
    /// Tasks inside `wait` (arrived and not yet left).
    count: Cell<usize>,
    waiters: WaitQueue,
    _not_send: NotSend,
}

impl Barrier {
    /// A barrier for `parties` tasks. Needs no running loop.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 (asyncio: `ValueError`).
    ///
    /// ```
    /// assert_eq!(corio::sync::Barrier::new(4).parties(), 4);
    /// ```
    pub const fn new(parties: usize) -> Barrier {
        assert!(parties > 0, "Barrier::new: parties must be > 0");
        Barrier {
            parties,
            state: Cell::new(BarrierState::Filling),
            count: Cell::new(0),
            waiters: WaitQueue::new(),
            _not_send: PhantomData,
        }
    }

    /// Waits until `parties` tasks are waiting, then returns this task's arrival index
    /// (`parties - 1` for the one that completed the round). Fails with
    /// [`BrokenBarrierError`] if the barrier is aborted, or reset while this task waits.
    ///
    /// ```
    /// corio::run(async {
    ///     let b = corio::sync::Barrier::new(1);
    ///     assert_eq!(b.wait().await, Ok(0)); // one party: passes at once
    /// });
    /// ```
    pub async fn wait(&self) -> Result<usize, BrokenBarrierError> {
        // Wait while the previous round drains or a reset completes (asyncio's `_block`).
        loop {
            match self.state.get() {
                BarrierState::Filling => break,
                BarrierState::Broken => return Err(BrokenBarrierError),
                BarrierState::Draining | BarrierState::Resetting => {
                    Notified::new(&self.waiters, false).await
                }
            }
        }
        let index = self.count.get();
        self.count.set(index + 1);
        // Leaving, however it happens (return, error, cancellation), is asyncio's `finally:`.
        let _leave = Leave(self);
        if index + 1 == self.parties {
            self.state.set(BarrierState::Draining);
            self.waiters.notify_all();
        } else {
            while self.state.get() == BarrierState::Filling {
                Notified::new(&self.waiters, false).await;
            }
            if matches!(
                self.state.get(),
                BarrierState::Broken | BarrierState::Resetting
            ) {
                return Err(BrokenBarrierError);
            }
        }
        Ok(index)
    }

    /// Returns the barrier to its initial state; tasks waiting now get
    /// [`BrokenBarrierError`]. Also repairs a broken barrier. (asyncio's `reset` is async
    /// because it takes the barrier's lock; corio's needs no lock.)
    ///
    /// ```
    /// let b = corio::sync::Barrier::new(2);
    /// b.abort();
    /// b.reset();
    /// assert!(!b.broken());
    /// ```
    pub fn reset(&self) {
        if self.count.get() > 0 {
            self.state.set(BarrierState::Resetting);
        } else {
            self.state.set(BarrierState::Filling);
        }
        self.waiters.notify_all();
    }

    /// Breaks the barrier: tasks waiting now and every later `wait` fail with
    /// [`BrokenBarrierError`], until [`reset`](Barrier::reset).
    ///
    /// ```
    /// corio::run(async {
    ///     let b = corio::sync::Barrier::new(2);
    ///     b.abort();
    ///     assert!(b.broken());
    ///     assert_eq!(b.wait().await, Err(corio::sync::BrokenBarrierError));
    /// });
    /// ```
    pub fn abort(&self) {
        self.state.set(BarrierState::Broken);
        self.waiters.notify_all();
    }

    /// How many tasks must wait to pass the barrier.
    ///
    /// ```
    /// assert_eq!(corio::sync::Barrier::new(2).parties(), 2);
    /// ```
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// How many tasks wait in the current round.
    ///
    /// ```
    /// assert_eq!(corio::sync::Barrier::new(2).n_waiting(), 0);
    /// ```
    pub fn n_waiting(&self) -> usize {
        if self.state.get() == BarrierState::Filling {
            self.count.get()
        } else {
            0
        }
    }

    /// Whether the barrier is broken (by [`abort`](Barrier::abort)).
    ///
    /// ```
    /// assert!(!corio::sync::Barrier::new(2).broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.state.get() == BarrierState::Broken
    }
}

/// A task leaving [`Barrier::wait`]: the last one out of a drained or reset round refills it.
struct Leave<'a>(&'a Barrier);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let b = self.0;
        b.count.set(b.count.get() - 1);
        if b.count.get() == 0
            && matches!(
                b.state.get(),
                BarrierState::Draining | BarrierState::Resetting
            )
        {
            b.state.set(BarrierState::Filling);
            b.waiters.notify_all();
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("state", &self.state.get())
            .field("count", &self.count.get())
            .finish()
    }
}

/// The barrier was aborted, or reset while the task waited (asyncio's `BrokenBarrierError`).
///
/// ```
/// assert_eq!(corio::sync::BrokenBarrierError.to_string(), "the barrier is broken or was reset");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokenBarrierError;

impl fmt::Display for BrokenBarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the barrier is broken or was reset")
    }
}

impl std::error::Error for BrokenBarrierError {}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::task::{Context, Waker};

    use super::{WaitQueue, Waiter};

    /// The slab-backed list against a `VecDeque` model, under random joins (back and
    /// front), leaves from anywhere, and notifications.
    #[test]
    fn wait_queue_matches_a_fifo_model() {
        let queue = WaitQueue::new();
        let cx = Context::from_waker(Waker::noop());
        let mut waiters: Vec<Waiter<'_>> = Vec::new();
        let mut model: VecDeque<usize> = VecDeque::new(); // waiting, in order
        let mut notified: Vec<usize> = Vec::new();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            match seed % 6 {
                0 | 1 => {
                    let mut w = Waiter::new(&queue);
                    let front = seed % 12 == 0;
                    w.enqueue(&cx, front);
                    waiters.push(w);
                    if front {
                        model.push_front(waiters.len() - 1);
                    } else {
                        model.push_back(waiters.len() - 1);
                    }
                }
                2 if !model.is_empty() => {
                    let i = model[(seed as usize / 7) % model.len()];
                    assert!(!waiters[i].cancel(), "step {step}: not notified");
                    model.retain(|&m| m != i);
                }
                3 => {
                    let n = (seed as usize / 7) % 3;
                    assert_eq!(queue.notify(n), n.min(model.len()));
                    for _ in 0..n {
                        if let Some(i) = model.pop_front() {
                            notified.push(i);
                        }
                    }
                }
                4 if !notified.is_empty() => {
                    let i = notified.swap_remove((seed as usize / 7) % notified.len());
                    if seed % 2 == 0 {
                        assert!(waiters[i].poll_notified(&cx).is_ready());
                    } else {
                        assert!(waiters[i].cancel(), "step {step}: notified");
                    }
                }
                _ => {}
            }
            assert_eq!(queue.len(), model.len());
            for &i in &model {
                assert!(waiters[i].poll_notified(&cx).is_pending());
            }
        }
        let n = model.len();
        assert_eq!(queue.notify_all(), n);
        drop(waiters);
        let slab = queue.slab.borrow();
        assert_eq!(
            (slab.head, slab.tail, slab.waiting),
            (super::NIL, super::NIL, 0)
        );
        assert!(
            slab.slots
                .iter()
                .all(|s| matches!(s.state, super::SlotState::Vacant))
        );
    }
}
