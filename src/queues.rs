//! Queues between the tasks of one loop: [`Queue`] (FIFO), [`PriorityQueue`] (smallest
//! first) and [`LifoQueue`] (last in, first out), with asyncio's `join`/`task_done` and
//! `shutdown`.
//!
//! asyncio counterpart: `queues.py` (the nearest tokio type is a `mpsc` channel). Layer 3:
//! built on the wait queue of [`crate::sync`]; needs no running loop to be created, and is
//! shared between the tasks of one loop through `Rc`.
//!
//! ```
//! use std::rc::Rc;
//! use corio::queues::Queue;
//!
//! corio::run(async {
//!     let q = Rc::new(Queue::new(2)); // at most 2 items waiting
//!     let q2 = q.clone();
//!     let producer = corio::spawn(async move {
//!         for i in 0..5 {
//!             q2.put(i).await.unwrap(); // waits while the queue is full
//!         }
//!     });
//!     let mut got = Vec::new();
//!     for _ in 0..5 {
//!         got.push(q.get().await.unwrap());
//!         q.task_done().unwrap();
//!     }
//!     producer.await.unwrap();
//!     q.join().await; // every item put was marked done
//!     assert_eq!(got, [0, 1, 2, 3, 4]);
//! });
//! ```
//!
//! # Hand-off and cancellation
//!
//! As in asyncio, `put` does not hand its item to a waiting getter: it stores it and wakes
//! the first getter, which takes an item when it runs. So a woken getter *re-checks* (another
//! task may have taken the item first with `get_nowait`; the getter then waits again, keeping
//! its place at the front). A woken getter that is cancelled before it runs passes the
//! wake-up to the next getter, so the item is not stranded; and a cancelled `put` drops its
//! item without it ever entering the queue. The same holds for putters waiting for room.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::sync::{Event, EventWait, WaitQueue, Waiter};

/// A first-in, first-out queue (asyncio's `Queue`). See [`GenericQueue`] for the methods.
///
/// ```
/// let q = corio::queues::Queue::new(0);
/// q.put_nowait("a").unwrap();
/// q.put_nowait("b").unwrap();
/// assert_eq!(q.get_nowait(), Ok("a"));
/// ```
pub type Queue<T> = GenericQueue<T, VecDeque<T>>;

/// A queue that gives out its smallest item first (asyncio's `PriorityQueue`, a min-heap).
/// Equal items do not come out in insertion order; to keep it, queue `(priority, seq, item)`.
///
/// ```
/// let q = corio::queues::PriorityQueue::new(0);
/// for x in [3, 1, 2] {
///     q.put_nowait(x).unwrap();
/// }
/// assert_eq!(q.get_nowait(), Ok(1));
/// assert_eq!(q.get_nowait(), Ok(2));
/// ```
pub type PriorityQueue<T> = GenericQueue<T, BinaryHeap<Reverse<T>>>;

/// A last-in, first-out queue: a stack (asyncio's `LifoQueue`).
///
/// ```
/// let q = corio::queues::LifoQueue::new(0);
/// q.put_nowait(1).unwrap();
/// q.put_nowait(2).unwrap();
/// assert_eq!(q.get_nowait(), Ok(2));
/// ```
pub type LifoQueue<T> = GenericQueue<T, Vec<T>>;

/// Where a [`GenericQueue`] keeps its items, which decides the order they come out in
/// (asyncio's `_init`, `_put`, `_get` and `_qsize`, which `PriorityQueue` and `LifoQueue`
/// override). Implemented for `VecDeque<T>` (FIFO), `Vec<T>` (LIFO) and
/// `BinaryHeap<Reverse<T>>` (smallest first); implement it for other orders. Its methods are
/// called while the queue's storage is borrowed: they must not use the queue.
///
/// ```
/// use corio::queues::{GenericQueue, QueueBuffer};
///
/// /// Largest first.
/// #[derive(Default)]
/// struct MaxFirst(std::collections::BinaryHeap<u32>);
///
/// impl QueueBuffer<u32> for MaxFirst {
///     fn push(&mut self, item: u32) {
///         self.0.push(item)
///     }
///     fn pop(&mut self) -> Option<u32> {
///         self.0.pop()
///     }
///     fn len(&self) -> usize {
///         self.0.len()
///     }
/// }
///
/// let q: GenericQueue<u32, MaxFirst> = GenericQueue::new(0);
/// for x in [1, 3, 2] {
///     q.put_nowait(x).unwrap();
/// }
/// assert_eq!(q.get_nowait(), Ok(3));
/// ```
pub trait QueueBuffer<T>: Default {
    /// Stores an item.
    fn push(&mut self, item: T);
    /// Takes the next item out, if any.
    fn pop(&mut self) -> Option<T>;
    /// How many items are stored.
    fn len(&self) -> usize;
    /// Whether no item is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> QueueBuffer<T> for VecDeque<T> {
    fn push(&mut self, item: T) {
        self.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
}

impl<T> QueueBuffer<T> for Vec<T> {
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl<T: Ord> QueueBuffer<T> for BinaryHeap<Reverse<T>> {
    fn push(&mut self, item: T) {
        BinaryHeap::push(self, Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        BinaryHeap::pop(self).map(|Reverse(item)| item)
    }
    fn len(&self) -> usize {
        BinaryHeap::len(self)
    }
}

/// A queue of `T` for tasks, stored in `B`, which sets the order: use it through [`Queue`],
/// [`PriorityQueue`] or [`LifoQueue`].
///
/// `maxsize` bounds the number of items (0: unbounded); [`put`](GenericQueue::put) waits
/// while the queue is full, [`get`](GenericQueue::get) while it is empty, each in FIFO order
/// of the waiting tasks. Every item put counts as *unfinished* until a
/// [`task_done`](GenericQueue::task_done) call, and [`join`](GenericQueue::join) waits until
/// none is. [`shutdown`](GenericQueue::shutdown) stops the queue (asyncio 3.13). A put and a
/// get that need not wait allocate nothing (once the storage has room).
///
/// ```
/// use std::rc::Rc;
/// use corio::queues::Queue;
///
/// corio::run(async {
///     let q = Rc::new(Queue::new(0));
///     let workers: Vec<_> = (0..2)
///         .map(|_| {
///             let q = q.clone();
///             corio::spawn(async move {
///                 let mut sum = 0;
///                 while let Ok(n) = q.get().await {
///                     sum += n;
///                     q.task_done().unwrap();
///                 }
///                 sum // the queue was shut down and is empty
///             })
///         })
///         .collect();
///     for n in 1..=10 {
///         q.put(n).await.unwrap();
///     }
///     q.join().await;
///     q.shutdown(false);
///     let mut total = 0;
///     for w in workers {
///         total += w.await.unwrap();
///     }
///     assert_eq!(total, 55);
/// });
/// ```
pub struct GenericQueue<T, B: QueueBuffer<T>> {
    items: RefCell<B>,
    maxsize: usize,
    getters: WaitQueue,
    putters: WaitQueue,
    /// Items put and not yet marked done.
    unfinished: Cell<usize>,
    /// Set while `unfinished` is 0: what `join` waits for.
    finished: Event,
    shut_down: Cell<bool>,
    _marker: PhantomData<(T, *const ())>,
}

impl<T, B: QueueBuffer<T>> GenericQueue<T, B> {
    /// A queue holding at most `maxsize` items; 0 means no limit (asyncio's `Queue(maxsize)`).
    /// Needs no running loop.
    ///
    /// ```
    /// let q = corio::queues::Queue::<u8>::new(3);
    /// assert_eq!(q.maxsize(), 3);
    /// ```
    pub fn new(maxsize: usize) -> Self {
        let finished = Event::new();
        finished.set();
        GenericQueue {
            items: RefCell::new(B::default()),
            maxsize,
            getters: WaitQueue::new(),
            putters: WaitQueue::new(),
            unfinished: Cell::new(0),
            finished,
            shut_down: Cell::new(false),
            _marker: PhantomData,
        }
    }

    /// The bound given to [`new`](GenericQueue::new) (0: unbounded).
    ///
    /// ```
    /// assert_eq!(corio::queues::Queue::<u8>::new(0).maxsize(), 0);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.maxsize
    }

    /// How many items are in the queue.
    ///
    /// ```
    /// let q = corio::queues::Queue::new(0);
    /// q.put_nowait(()).unwrap();
    /// assert_eq!(q.qsize(), 1);
    /// ```
    #[doc(alias = "len")]
    pub fn qsize(&self) -> usize {
        self.items.borrow().len()
    }

    /// Whether the queue has no items.
    ///
    /// ```
    /// assert!(corio::queues::Queue::<u8>::new(0).empty());
    /// ```
    #[doc(alias = "is_empty")]
    pub fn empty(&self) -> bool {
        self.items.borrow().is_empty()
    }

    /// Whether the queue holds `maxsize` items (never, when unbounded).
    ///
    /// ```
    /// let q = corio::queues::Queue::new(1);
    /// q.put_nowait(1).unwrap();
    /// assert!(q.full());
    /// ```
    #[doc(alias = "is_full")]
    pub fn full(&self) -> bool {
        self.maxsize > 0 && self.qsize() >= self.maxsize
    }

    /// Puts `item` in the queue, waiting while it is full. Fails, giving the item back, if
    /// the queue is shut down (before or while waiting).
    ///
    /// Cancel-safe: if the returned future is dropped before the item went in, the item is
    /// dropped with it and never enters the queue; a wake-up it received goes to the next
    /// putter.
    ///
    /// ```
    /// corio::run(async {
    ///     let q = corio::queues::Queue::new(1);
    ///     q.put("x").await.unwrap();
    ///     assert_eq!(q.get().await, Ok("x"));
    /// });
    /// ```
    #[doc(alias = "send")]
    pub fn put(&self, item: T) -> Put<'_, T, B> {
        Put {
            queue: self,
            item: Some(item),
            waiter: Waiter::new(&self.putters),
        }
    }

    /// Puts `item` in the queue if there is room, without waiting.
    ///
    /// ```
    /// use corio::queues::{PutError, Queue};
    ///
    /// let q = Queue::new(1);
    /// q.put_nowait(1).unwrap();
    /// assert_eq!(q.put_nowait(2), Err(PutError::Full(2)));
    /// ```
    #[doc(alias = "try_send")]
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        if self.shut_down.get() {
            return Err(PutError::ShutDown(item));
        }
        if self.full() {
            return Err(PutError::Full(item));
        }
        self.items.borrow_mut().push(item);
        self.unfinished.set(self.unfinished.get() + 1);
        self.finished.clear();
        self.getters.notify(1);
        Ok(())
    }

    /// Takes the next item, waiting while the queue is empty. Fails once the queue is shut
    /// down and empty.
    ///
    /// Cancel-safe: no item is taken until the getter runs, so dropping the future never
    /// loses one; a wake-up it received goes to the next getter.
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// corio::run(async {
    ///     let q = Rc::new(corio::queues::Queue::new(0));
    ///     let q2 = q.clone();
    ///     let getter = corio::spawn(async move { q2.get().await });
    ///     corio::yield_now().await; // the getter waits
    ///     q.put_nowait(7).unwrap();
    ///     assert_eq!(getter.await.unwrap(), Ok(7));
    /// });
    /// ```
    #[doc(alias = "recv")]
    pub fn get(&self) -> Get<'_, T, B> {
        Get {
            queue: self,
            waiter: Waiter::new(&self.getters),
        }
    }

    /// Takes the next item if there is one, without waiting.
    ///
    /// ```
    /// use corio::queues::{GetError, Queue};
    ///
    /// let q = Queue::<u8>::new(0);
    /// assert_eq!(q.get_nowait(), Err(GetError::Empty));
    /// q.shutdown(false);
    /// assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
    /// ```
    #[doc(alias = "try_recv")]
    pub fn get_nowait(&self) -> Result<T, GetError> {
        let item = self.items.borrow_mut().pop();
        match item {
            Some(item) => {
                self.putters.notify(1);
                Ok(item)
            }
            None if self.shut_down.get() => Err(GetError::ShutDown),
            None => Err(GetError::Empty),
        }
    }

    /// Marks one item that was put as processed (asyncio's `task_done`). Fails if called
    /// more often than items were put.
    ///
    /// ```
    /// let q = corio::queues::Queue::new(0);
    /// q.put_nowait('a').unwrap();
    /// assert!(q.task_done().is_ok());
    /// assert!(q.task_done().is_err(), "called too many times");
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let n = self.unfinished.get();
        if n == 0 {
            return Err(TaskDoneError);
        }
        self.unfinished.set(n - 1);
        if n == 1 {
            self.finished.set();
        }
        Ok(())
    }

    /// Waits until every item ever put has been marked done with
    /// [`task_done`](GenericQueue::task_done). Counts puts, not gets: an item that was taken
    /// but not marked done still holds `join` back. Returns at once if nothing is unfinished.
    ///
    /// ```
    /// corio::run(async {
    ///     let q = corio::queues::Queue::new(0);
    ///     q.join().await; // nothing put yet
    ///     q.put_nowait(1).unwrap();
    ///     q.get_nowait().unwrap();
    ///     q.task_done().unwrap();
    ///     q.join().await;
    /// });
    /// ```
    pub fn join(&self) -> Join<'_> {
        Join {
            wait: self.finished.wait(),
        }
    }

    /// Shuts the queue down (asyncio 3.13): every later put fails, and gets fail once the
    /// queue is empty. With `immediate`, the items still queued are dropped (and counted as
    /// done, which may release `join`), so gets fail at once. Every task blocked in `put` or
    /// `get` is woken to see the new state.
    ///
    /// ```
    /// use corio::queues::{GetError, PutError, Queue};
    ///
    /// let q = Queue::new(0);
    /// q.put_nowait(1).unwrap();
    /// q.shutdown(false);
    /// assert_eq!(q.put_nowait(2), Err(PutError::ShutDown(2)));
    /// assert_eq!(q.get_nowait(), Ok(1)); // what was queued can still be taken
    /// assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
    /// ```
    #[doc(alias = "close")]
    pub fn shutdown(&self, immediate: bool) {
        self.shut_down.set(true);
        if immediate {
            loop {
                // Each item is dropped outside the borrow: its `Drop` may be user code.
                let item = self.items.borrow_mut().pop();
                if item.is_none() {
                    break;
                }
                drop(item);
                let n = self.unfinished.get();
                if n > 0 {
                    self.unfinished.set(n - 1);
                }
            }
            if self.unfinished.get() == 0 {
                self.finished.set();
            }
        }
        self.getters.notify_all();
        self.putters.notify_all();
    }

    /// Whether [`shutdown`](GenericQueue::shutdown) was called.
    ///
    /// ```
    /// let q = corio::queues::Queue::<u8>::new(0);
    /// q.shutdown(true);
    /// assert!(q.is_shut_down());
    /// ```
    #[doc(alias = "is_closed")]
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.get()
    }
}

impl<T, B: QueueBuffer<T>> Default for GenericQueue<T, B> {
    /// An unbounded queue.
    fn default() -> Self {
        GenericQueue::new(0)
    }
}

impl<T, B: QueueBuffer<T>> fmt::Debug for GenericQueue<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("maxsize", &self.maxsize)
            .field("qsize", &self.qsize())
            .field("unfinished", &self.unfinished.get())
            .field("getters", &self.getters.len())
            .field("putters", &self.putters.len())
            .field("shut_down", &self.shut_down.get())
            .finish()
    }
}

/// The future of [`GenericQueue::put`].
///
/// ```
/// let q = corio::queues::Queue::new(0);
/// let fut: corio::queues::Put<'_, u8, _> = q.put(1);
/// drop(fut); // never polled: nothing was put
/// assert!(q.empty());
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Put<'a, T, B: QueueBuffer<T>> {
    queue: &'a GenericQueue<T, B>,
    item: Option<T>,
    waiter: Waiter<'a>,
}

// The item is only ever moved, never pinned, so `Put` may move even when `T` may not.
impl<T, B: QueueBuffer<T>> Unpin for Put<'_, T, B> {}

impl<T, B: QueueBuffer<T>> Future for Put<'_, T, B> {
    type Output = Result<(), QueueShutDown<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let woken = this.waiter.is_queued();
        if woken {
            ready!(this.waiter.poll_notified(cx));
        }
        let item = this.item.take().expect("Put polled after completion");
        match this.queue.put_nowait(item) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(PutError::ShutDown(item)) => Poll::Ready(Err(QueueShutDown(item))),
            Err(PutError::Full(item)) => {
                this.item = Some(item);
                // A putter woken for nothing waits again at the front: it keeps its turn.
                this.waiter.enqueue(cx, woken);
                Poll::Pending
            }
        }
    }
}

impl<T, B: QueueBuffer<T>> Drop for Put<'_, T, B> {
    fn drop(&mut self) {
        // Woken for room we will not use: wake the next putter instead.
        if self.waiter.cancel() && !self.queue.full() {
            self.queue.putters.notify(1);
        }
    }
}

impl<T, B: QueueBuffer<T>> fmt::Debug for Put<'_, T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Put")
            .field("done", &self.item.is_none())
            .field("queued", &self.waiter.is_queued())
            .finish()
    }
}

/// The future of [`GenericQueue::get`].
///
/// ```
/// let q = corio::queues::Queue::<u8>::new(0);
/// let fut: corio::queues::Get<'_, u8, _> = q.get();
/// drop(fut);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T, B: QueueBuffer<T>> {
    queue: &'a GenericQueue<T, B>,
    waiter: Waiter<'a>,
}

impl<T, B: QueueBuffer<T>> Future for Get<'_, T, B> {
    type Output = Result<T, QueueShutDown>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let woken = this.waiter.is_queued();
        if woken {
            ready!(this.waiter.poll_notified(cx));
        }
        // Re-check: being woken does not mean an item is still there for us.
        match this.queue.get_nowait() {
            Ok(item) => Poll::Ready(Ok(item)),
            Err(GetError::ShutDown) => Poll::Ready(Err(QueueShutDown(()))),
            Err(GetError::Empty) => {
                // A getter woken for nothing waits again at the front: it keeps its turn.
                this.waiter.enqueue(cx, woken);
                Poll::Pending
            }
        }
    }
}

impl<T, B: QueueBuffer<T>> Drop for Get<'_, T, B> {
    fn drop(&mut self) {
        // Woken for an item we will not take: wake the next getter instead.
        if self.waiter.cancel() && !self.queue.empty() {
            self.queue.getters.notify(1);
        }
    }
}

impl<T, B: QueueBuffer<T>> fmt::Debug for Get<'_, T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get")
            .field("queued", &self.waiter.is_queued())
            .finish()
    }
}

/// The future of [`GenericQueue::join`].
///
/// ```
/// let q = corio::queues::Queue::<u8>::new(0);
/// let fut: corio::queues::Join<'_> = q.join();
/// drop(fut);
/// ```
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Join<'a> {
    wait: EventWait<'a>,
}

impl Future for Join<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.wait).poll(cx)
    }
}

/// Why [`put_nowait`](GenericQueue::put_nowait) refused an item, which it gives back.
///
/// ```
/// use corio::queues::{PutError, Queue};
///
/// let q = Queue::new(1);
/// q.put_nowait(1).unwrap();
/// let err = q.put_nowait(2).unwrap_err();
/// assert!(matches!(err, PutError::Full(2)));
/// assert_eq!(err.to_string(), "queue full");
/// assert_eq!(err.into_inner(), 2);
/// ```
#[doc(alias = "TrySendError")]
#[derive(Clone, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue holds `maxsize` items (asyncio's `QueueFull`).
    #[doc(alias = "QueueFull")]
    Full(T),
    /// The queue was shut down (asyncio's `QueueShutDown`).
    ShutDown(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    ///
    /// ```
    /// assert_eq!(corio::queues::PutError::Full(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(item) | PutError::ShutDown(item) => item,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("queue full"),
            PutError::ShutDown(_) => f.write_str("queue shut down"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why [`get_nowait`](GenericQueue::get_nowait) returned no item.
///
/// ```
/// let q = corio::queues::Queue::<u8>::new(0);
/// assert_eq!(q.get_nowait().unwrap_err().to_string(), "queue empty");
/// ```
#[doc(alias = "TryRecvError")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetError {
    /// The queue has no item (asyncio's `QueueEmpty`).
    #[doc(alias = "QueueEmpty")]
    Empty,
    /// The queue was shut down and has no item left (asyncio's `QueueShutDown`).
    ShutDown,
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("queue empty"),
            GetError::ShutDown => f.write_str("queue shut down"),
        }
    }
}

impl std::error::Error for GetError {}

/// The queue was shut down (asyncio's `QueueShutDown`): what [`put`](GenericQueue::put)
/// returns with the item it could not put, and [`get`](GenericQueue::get) with `()`.
///
/// ```
/// corio::run(async {
///     let q = corio::queues::Queue::new(0);
///     q.shutdown(false);
///     let err = q.put("late").await.unwrap_err();
///     assert_eq!(err.0, "late");
///     assert_eq!(q.get().await, Err(corio::queues::QueueShutDown(())));
/// });
/// ```
#[doc(alias = "SendError", alias = "RecvError")]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QueueShutDown<T = ()>(pub T);

impl<T> fmt::Debug for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueShutDown(..)")
    }
}

impl<T> fmt::Display for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue shut down")
    }
}

impl<T> std::error::Error for QueueShutDown<T> {}

/// [`task_done`](GenericQueue::task_done) was called more times than items were put
/// (asyncio raises `ValueError`).
///
/// ```
/// assert_eq!(
///     corio::queues::TaskDoneError.to_string(),
///     "task_done() called too many times"
/// );
/// ```
#[doc(alias = "ValueError")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl std::error::Error for TaskDoneError {}
