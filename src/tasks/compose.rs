//! Composing tasks: `gather`, `wait`, `as_completed` and `shield`.
//!
//! asyncio counterpart: `tasks.py` (`gather`, `wait`, `as_completed`, `shield`). Layer 3:
//! built on [`Task`] and the loop's ready queue; [`crate::timeouts`] and
//! [`crate::taskgroups`] sit beside it.
//!
//! Each combinator is a hand-written future that owns its children's [`Task`] handles.
//!
//! # Waiting on many tasks without quadratic cost
//!
//! Polling all n children whenever one of them finishes costs O(n) per wake-up, so O(n²)
//! for a gather whose children finish one per turn (100 000 sleeps: 10¹⁰ polls). Instead,
//! each child gets its own waker, made once when the combinator starts (`WakeSet`): waking
//! it records the child's index in a list shared with the combinator and wakes the parent
//! task. A poll then looks only at the children listed, so a whole gather costs O(n), and a
//! poll allocates nothing (the list's two buffers are swapped, not reallocated).
//!
//! # Cancellation
//!
//! - [`gather`] awaits its children (`Task` as a future), so dropping a gather while its task
//!   is being cancelled cancels every unfinished child, as cancelling an asyncio gather does;
//!   dropping it otherwise detaches them. [`Gather::cancel`] cancels them explicitly.
//! - [`wait`], [`as_completed`] and [`shield`] only watch their tasks (a task's join slot,
//!   without taking the output or marking it awaited): dropping them never cancels anything.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use super::{Sleep, Task, TaskRef, sleep, spawn};
use crate::exceptions::{TaskError, TimeoutError};

// ---------------------------------------------------------------------------------------
// WakeSet: which child woke?

/// One waker per child; waking child `i` queues `i` and wakes the parent.
struct WakeSet {
    shared: Arc<WakeShared>,
    wakers: Vec<Waker>,
    /// The indices being looked at: swapped with the shared list, so no poll allocates.
    batch: Vec<u32>,
}

/// Wakers must be `Send + Sync`, hence a `Mutex`; it is only ever taken on the loop thread,
/// uncontended.
struct WakeShared(Mutex<Woken>);

struct Woken {
    indices: Vec<u32>,
    parent: Option<Waker>,
    /// The combinator finished: wake-ups are ignored.
    closed: bool,
}

struct ChildWaker {
    index: u32,
    shared: Arc<WakeShared>,
}

impl WakeShared {
    fn lock(&self) -> MutexGuard<'_, Woken> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut w = self.shared.lock();
        if w.closed {
            return;
        }
        w.indices.push(self.index);
        if let Some(p) = &w.parent {
            p.wake_by_ref();
        }
    }
}

impl WakeSet {
    /// Wakers for `n` children, all of them queued: the first poll looks at every child.
    fn new(n: usize) -> WakeSet {
        let n32 = u32::try_from(n).expect("more than 4 billion children");
        let shared = Arc::new(WakeShared(Mutex::new(Woken {
            indices: (0..n32).collect(),
            parent: None,
            closed: false,
        })));
        let wakers = (0..n32)
            .map(|index| {
                Waker::from(Arc::new(ChildWaker {
                    index,
                    shared: shared.clone(),
                }))
            })
            .collect();
        WakeSet {
            shared,
            wakers,
            batch: Vec::new(),
        }
    }

    /// Records the parent's waker and hands over the indices woken since the last call
    /// (return the buffer with [`done_with`](WakeSet::done_with)).
    fn take_woken(&mut self, cx: &Context<'_>) -> Vec<u32> {
        let mut w = self.shared.lock();
        if !w.parent.as_ref().is_some_and(|p| p.will_wake(cx.waker())) {
            w.parent = Some(cx.waker().clone());
        }
        let mut batch = std::mem::take(&mut self.batch);
        std::mem::swap(&mut w.indices, &mut batch);
        batch
    }

    fn done_with(&mut self, mut batch: Vec<u32>) {
        batch.clear();
        self.batch = batch;
    }

    fn waker(&self, i: u32) -> &Waker {
        &self.wakers[i as usize]
    }

    /// Stops recording wake-ups (the combinator is done; tasks may still finish later).
    fn close(&self) {
        let mut w = self.shared.lock();
        w.closed = true;
        w.parent = None;
        w.indices = Vec::new();
    }
}

// ---------------------------------------------------------------------------------------
// gather

/// The children of a gather: their handles and the outcomes collected so far.
struct Children<T: 'static> {
    tasks: Vec<Option<Task<T>>>,
    outcomes: Vec<Option<Result<T, TaskError>>>,
    pending: usize,
    wake: WakeSet,
}

impl<T: 'static> Children<T> {
    fn spawn<I>(futs: I) -> Children<T>
    where
        I: IntoIterator,
        I::Item: std::future::Future<Output = T> + 'static,
    {
        let tasks: Vec<Option<Task<T>>> = futs.into_iter().map(|f| Some(spawn(f))).collect();
        let n = tasks.len();
        Children {
            outcomes: (0..n).map(|_| None).collect(),
            pending: n,
            wake: WakeSet::new(n),
            tasks,
        }
    }

    /// Polls the children that woke and stores their outcomes. `Ready(None)` once all are
    /// done; with `stop_on_error`, `Ready(Some(i))` as soon as child `i` failed.
    fn poll_children(&mut self, cx: &Context<'_>, stop_on_error: bool) -> Poll<Option<usize>> {
        let batch = self.wake.take_woken(cx);
        let mut failed = None;
        for &i in &batch {
            let Some(task) = self.tasks[i as usize].as_mut() else {
                continue; // already finished (a stale wake-up)
            };
            let mut child_cx = Context::from_waker(self.wake.waker(i));
            if let Poll::Ready(out) = Pin::new(task).poll(&mut child_cx) {
                self.tasks[i as usize] = None;
                self.pending -= 1;
                let is_err = out.is_err();
                self.outcomes[i as usize] = Some(out);
                if stop_on_error && is_err {
                    failed = Some(i as usize);
                    break;
                }
            }
        }
        self.wake.done_with(batch);
        if failed.is_some() || self.pending == 0 {
            Poll::Ready(failed)
        } else {
            Poll::Pending
        }
    }

    fn cancel(&self, msg: Option<&str>) -> bool {
        let mut any = false;
        for t in self.tasks.iter().flatten() {
            any |= t.cancel(msg);
        }
        any
    }

    /// Lets go of the children still running: they are detached and keep running.
    fn release(&mut self) {
        self.wake.close();
        self.tasks.clear();
    }
}

impl<T: 'static> fmt::Debug for Children<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gather")
            .field("children", &self.outcomes.len())
            .field("pending", &self.pending)
            .finish()
    }
}

/// Runs `futs` concurrently, each as its own task, and returns their outputs in argument
/// order (asyncio's `gather`).
///
/// The tasks are spawned now (they start at the loop's next turn). If a child fails (panics
/// or ends cancelled), the gather returns that [`TaskError`] at once and **the other children
/// keep running**, detached, as in asyncio; [`Gather::return_exceptions`] collects every
/// outcome instead. Dropping the gather while its task is being cancelled cancels the
/// children (asyncio: cancelling the gather cancels them); [`Gather::cancel`] does it
/// explicitly. An empty input gives `Ok(vec![])`.
///
/// The whole gather costs O(n): each child has its own waker, made once, which tells the
/// gather *which* child finished, so a wake-up never polls the other children (DESIGN.md,
/// "Composing tasks").
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let futs = (1..=3u64).map(|i| async move {
///         corio::sleep(Duration::from_millis(10 * (4 - i))).await; // the last finishes first
///         i * 10
///     });
///     assert_eq!(corio::gather(futs).await.unwrap(), [10, 20, 30]);
/// });
/// ```
pub fn gather<I>(futs: I) -> Gather<<I::Item as std::future::Future>::Output>
where
    I: IntoIterator,
    I::Item: std::future::Future + 'static,
{
    Gather {
        children: Children::spawn(futs),
        done: false,
    }
}

/// The future of [`gather`]: `Ok(outputs)` in argument order, or the first child's failure.
///
/// ```
/// corio::run(async {
///     let g: corio::tasks::Gather<u8> = corio::gather((1..=2).map(|i| async move { i }));
///     assert_eq!(g.await.unwrap(), [1, 2]);
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Gather<T: 'static> {
    children: Children<T>,
    done: bool,
}

impl<T: 'static> Gather<T> {
    /// Collects every child's outcome, failures included, in argument order, instead of
    /// stopping at the first failure (asyncio's `return_exceptions=True`).
    ///
    /// ```
    /// corio::run(async {
    ///     let futs = (1..=3u32).map(|i| async move {
    ///         if i == 2 {
    ///             panic!("boom");
    ///         }
    ///         i
    ///     });
    ///     let out = corio::gather(futs).return_exceptions().await;
    ///     assert_eq!(*out[0].as_ref().unwrap(), 1);
    ///     assert_eq!(out[1].as_ref().unwrap_err().panic_message(), Some("boom"));
    ///     assert_eq!(*out[2].as_ref().unwrap(), 3);
    /// });
    /// ```
    pub fn return_exceptions(self) -> GatherAll<T> {
        GatherAll {
            children: self.children,
            done: self.done,
        }
    }

    /// Cancels every child still running, with `msg` (asyncio's `gather(...).cancel(msg)`).
    /// Returns whether any was. The gather then ends with the first child that ends
    /// cancelled (a child that catches its cancellation may still return a value).
    ///
    /// ```
    /// use std::time::Duration;
    /// corio::run(async {
    ///     let g = corio::gather([corio::sleep(Duration::from_secs(3600))]);
    ///     assert!(g.cancel(Some("enough")));
    ///     let err = g.await.unwrap_err();
    ///     assert_eq!(err.to_string(), "task cancelled: enough");
    /// });
    /// ```
    pub fn cancel(&self, msg: Option<&str>) -> bool {
        self.children.cancel(msg)
    }
}

// Outputs are stored, never pinned: the gathers are `Unpin` whatever the outputs are.
impl<T: 'static> Unpin for Gather<T> {}
impl<T: 'static> Unpin for GatherAll<T> {}

impl<T: 'static> std::future::Future for Gather<T> {
    type Output = Result<Vec<T>, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "Gather polled after completion");
        let c = &mut this.children;
        let failed = std::task::ready!(c.poll_children(cx, true));
        this.done = true;
        c.release();
        if let Some(i) = failed {
            if let Some(Err(e)) = c.outcomes[i].take() {
                return Poll::Ready(Err(e));
            }
        }
        let outputs = c
            .outcomes
            .drain(..)
            .map(|o| match o {
                Some(Ok(v)) => v,
                _ => unreachable!("every child returned"),
            })
            .collect();
        Poll::Ready(Ok(outputs))
    }
}

impl<T: 'static> fmt::Debug for Gather<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.children.fmt(f)
    }
}

/// The future of [`Gather::return_exceptions`]: every child's outcome, in argument order.
///
/// ```
/// corio::run(async {
///     let all: corio::tasks::GatherAll<()> = corio::gather([async {}]).return_exceptions();
///     assert!(all.await[0].is_ok());
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct GatherAll<T: 'static> {
    children: Children<T>,
    done: bool,
}

impl<T: 'static> GatherAll<T> {
    /// Cancels every child still running; see [`Gather::cancel`]. Their outcomes say so.
    ///
    /// ```
    /// use std::time::Duration;
    /// corio::run(async {
    ///     let all = corio::gather([corio::sleep(Duration::from_secs(3600))]).return_exceptions();
    ///     all.cancel(Some("no"));
    ///     assert!(all.await[0].as_ref().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn cancel(&self, msg: Option<&str>) -> bool {
        self.children.cancel(msg)
    }
}

impl<T: 'static> std::future::Future for GatherAll<T> {
    type Output = Vec<Result<T, TaskError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "GatherAll polled after completion");
        let c = &mut this.children;
        std::task::ready!(c.poll_children(cx, false));
        this.done = true;
        c.release();
        let outcomes = c
            .outcomes
            .drain(..)
            .map(|o| o.expect("every child finished"))
            .collect();
        Poll::Ready(outcomes)
    }
}

impl<T: 'static> fmt::Debug for GatherAll<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.children.fmt(f)
    }
}

// ---------------------------------------------------------------------------------------
// gather of differently typed futures: gather2 .. gather6 and the gather! macro

macro_rules! tuple_gather {
    ($n:literal, $gather:ident, $Gather:ident, $GatherAll:ident; $($T:ident $f:ident $i:tt),+) => {
        #[doc = concat!("[`gather`] for ", stringify!($n), " futures of different types: `Ok` of a")]
        /// tuple of their outputs, or the first failure while the others keep running. Each
        /// future is spawned as a task now. Usually written with [`gather!`](crate::gather!).
        ///
        /// ```
        /// corio::run(async {
        #[doc = concat!("    let out = corio::tasks::", stringify!($gather), "(")]
        #[doc = concat!($("        async { ", stringify!($i), " },\n",)+ "    ).await;")]
        #[doc = concat!("    assert_eq!(out.unwrap(), (", $(stringify!($i), ", ",)+ "));")]
        /// });
        /// ```
        pub fn $gather<$($T),+>($($f: $T),+) -> $Gather<$($T::Output),+>
        where
            $($T: std::future::Future + 'static,)+
        {
            $Gather {
                tasks: ($(Some(spawn($f)),)+),
                outcomes: ($(None::<Result<$T::Output, TaskError>>,)+),
                done: false,
            }
        }

        #[doc = concat!("The future of [`", stringify!($gather), "`] and [`gather!`](crate::gather!).")]
        ///
        /// ```
        /// corio::run(async {
        #[doc = concat!("    let g = corio::tasks::", stringify!($gather), "(", $("async { ", stringify!($i), "u8 }, ",)+ ");")]
        #[doc = concat!("    assert_eq!(g.await.unwrap().0, 0);")]
        /// });
        /// ```
        #[must_use = "futures do nothing unless awaited"]
        pub struct $Gather<$($T: 'static),+> {
            tasks: ($(Option<Task<$T>>,)+),
            outcomes: ($(Option<Result<$T, TaskError>>,)+),
            done: bool,
        }

        impl<$($T: 'static),+> $Gather<$($T),+> {
            /// Collects every outcome, failures included (asyncio's `return_exceptions=True`).
            ///
            /// ```
            /// corio::run(async {
            #[doc = concat!("    let all = corio::tasks::", stringify!($gather), "(", $("async { ", stringify!($i), " }, ",)+ ")")]
            ///         .return_exceptions()
            ///         .await;
            ///     assert_eq!(all.0.unwrap(), 0);
            /// });
            /// ```
            pub fn return_exceptions(self) -> $GatherAll<$($T),+> {
                $GatherAll(self)
            }

            /// Cancels every child still running; see [`Gather::cancel`].
            ///
            /// ```
            /// use std::time::Duration;
            /// corio::run(async {
            #[doc = concat!("    let g = corio::tasks::", stringify!($gather), "(", $("corio::sleep(Duration::from_secs(", stringify!($i), " + 9)), ",)+ ");")]
            ///     assert!(g.cancel(None));
            ///     assert!(g.await.unwrap_err().is_cancelled());
            /// });
            /// ```
            pub fn cancel(&self, msg: Option<&str>) -> bool {
                let mut any = false;
                $(if let Some(t) = &self.tasks.$i {
                    any |= t.cancel(msg);
                })+
                any
            }

            /// Polls the unfinished children (at most six: no per-child wakers needed).
            fn poll_children(&mut self, cx: &mut Context<'_>, stop_on_error: bool)
                -> Poll<Option<TaskError>>
            {
                assert!(!self.done, "gather polled after completion");
                let mut pending = false;
                $(if let Some(t) = self.tasks.$i.as_mut() {
                    match Pin::new(t).poll(cx) {
                        Poll::Ready(out) => {
                            self.tasks.$i = None;
                            match out {
                                Err(e) if stop_on_error => {
                                    self.done = true;
                                    return Poll::Ready(Some(e));
                                }
                                out => self.outcomes.$i = Some(out),
                            }
                        }
                        Poll::Pending => pending = true,
                    }
                })+
                if pending {
                    return Poll::Pending;
                }
                self.done = true;
                Poll::Ready(None)
            }
        }

        impl<$($T: 'static),+> Unpin for $Gather<$($T),+> {}

        impl<$($T: 'static),+> std::future::Future for $Gather<$($T),+> {
            type Output = Result<($($T,)+), TaskError>;

            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                let this = self.get_mut();
                if let Some(e) = std::task::ready!(this.poll_children(cx, true)) {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(($(match this.outcomes.$i.take() {
                    Some(Ok(v)) => v,
                    _ => unreachable!("every child returned"),
                },)+)))
            }
        }

        impl<$($T: 'static),+> fmt::Debug for $Gather<$($T),+> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($Gather)).field("done", &self.done).finish()
            }
        }

        #[doc = concat!("The future of [`", stringify!($Gather), "::return_exceptions`]: a tuple of outcomes.")]
        ///
        /// ```
        /// corio::run(async {
        #[doc = concat!("    let all = corio::tasks::", stringify!($gather), "(", $("async { ", stringify!($i), "u8 }, ",)+ ")")]
        ///         .return_exceptions();
        ///     assert_eq!(all.await.0.unwrap(), 0);
        /// });
        /// ```
        #[must_use = "futures do nothing unless awaited"]
        pub struct $GatherAll<$($T: 'static),+>($Gather<$($T),+>);

        impl<$($T: 'static),+> std::future::Future for $GatherAll<$($T),+> {
            type Output = ($(Result<$T, TaskError>,)+);

            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                let g = &mut self.get_mut().0;
                std::task::ready!(g.poll_children(cx, false));
                Poll::Ready(($(g.outcomes.$i.take().expect("every child finished"),)+))
            }
        }

        impl<$($T: 'static),+> fmt::Debug for $GatherAll<$($T),+> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

tuple_gather!(2, gather2, Gather2, GatherAll2; A a 0, B b 1);
tuple_gather!(3, gather3, Gather3, GatherAll3; A a 0, B b 1, C c 2);
tuple_gather!(4, gather4, Gather4, GatherAll4; A a 0, B b 1, C c 2, D d 3);
tuple_gather!(5, gather5, Gather5, GatherAll5; A a 0, B b 1, C c 2, D d 3, E e 4);
tuple_gather!(6, gather6, Gather6, GatherAll6; A a 0, B b 1, C c 2, D d 3, E e 4, G g 5);

/// Gathers 2 to 6 futures of different types: `Ok` of the tuple of their outputs, or the
/// first failure ([`gather`] for a fixed set; expands to
/// [`tasks::gather2`](crate::tasks::gather2) .. [`tasks::gather6`](crate::tasks::gather6)).
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let (n, s, ()) = corio::gather!(
///         async { 42 },
///         async { String::from("hi") },
///         corio::sleep(Duration::from_millis(1)),
///     )
///     .await
///     .unwrap();
///     assert_eq!((n, s.as_str()), (42, "hi"));
///
///     // Every outcome, failures included:
///     let failing = async {
///         if true {
///             panic!("no");
///         }
///         0u8
///     };
///     let (a, b) = corio::gather!(async { 1 }, failing).return_exceptions().await;
///     assert_eq!(a.unwrap(), 1);
///     assert!(b.unwrap_err().is_panic());
/// });
/// ```
#[macro_export]
macro_rules! gather {
    ($a:expr, $b:expr $(,)?) => {
        $crate::tasks::gather2($a, $b)
    };
    ($a:expr, $b:expr, $c:expr $(,)?) => {
        $crate::tasks::gather3($a, $b, $c)
    };
    ($a:expr, $b:expr, $c:expr, $d:expr $(,)?) => {
        $crate::tasks::gather4($a, $b, $c, $d)
    };
    ($a:expr, $b:expr, $c:expr, $d:expr, $e:expr $(,)?) => {
        $crate::tasks::gather5($a, $b, $c, $d, $e)
    };
    ($a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $g:expr $(,)?) => {
        $crate::tasks::gather6($a, $b, $c, $d, $e, $g)
    };
}

// ---------------------------------------------------------------------------------------
// wait

/// When [`wait`] returns (asyncio's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
///
/// ```
/// use corio::ReturnWhen;
/// corio::run(async {
///     let ok = corio::spawn(async {});
///     let bad = corio::spawn(async { panic!("bad") });
///     let (done, _) = corio::wait([ok, bad], ReturnWhen::FirstException, None).await;
///     assert!(done.iter().any(|t| t.panicked()));
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReturnWhen {
    /// As soon as any task is done.
    FirstCompleted,
    /// As soon as any task panics (asyncio: raises), or when all are done. A task that ends
    /// cancelled does not count, as in asyncio.
    FirstException,
    /// When every task is done.
    AllCompleted,
}

/// Waits until `return_when` holds for `tasks`, or until `timeout` passes, and returns the
/// tasks split into `(done, pending)`, each in the order given (asyncio's `wait`).
///
/// It **never cancels** and a timeout is not an error: the pending tasks come back still
/// running. Nothing is taken from the tasks: read a done task's outcome with
/// [`Task::result`] or by awaiting it (it is ready). Dropping the `Wait` drops the handles
/// (the tasks keep running, detached). An empty input returns `([], [])` at once (asyncio
/// rejects it).
///
/// ```
/// use std::time::Duration;
/// use corio::ReturnWhen;
/// corio::run(async {
///     let fast = corio::spawn(async { "fast" });
///     let slow = corio::spawn(async {
///         corio::sleep(Duration::from_secs(3600)).await;
///         "slow"
///     });
///     let (done, pending) = corio::wait([fast, slow], ReturnWhen::FirstCompleted, None).await;
///     assert_eq!(done[0].result().unwrap().unwrap(), "fast");
///     assert_eq!(pending.len(), 1);
///     let (done, pending) =
///         corio::wait(pending, ReturnWhen::AllCompleted, Some(Duration::from_millis(5))).await;
///     assert!(done.is_empty() && !pending[0].done(), "timed out: nothing cancelled");
/// });
/// ```
pub fn wait<T: 'static>(
    tasks: impl IntoIterator<Item = Task<T>>,
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> Wait<T> {
    let tasks: Vec<Task<T>> = tasks.into_iter().collect();
    let n = tasks.len();
    Wait {
        done: vec![false; n],
        n_done: 0,
        panicked: false,
        wake: WakeSet::new(n),
        timer: timeout.map(sleep),
        return_when,
        tasks,
        finished: false,
    }
}

/// The future of [`wait`]: `(done, pending)`.
///
/// ```
/// corio::run(async {
///     let w: corio::tasks::Wait<u8> =
///         corio::wait([corio::spawn(async { 1 })], corio::ReturnWhen::AllCompleted, None);
///     let (done, pending) = w.await;
///     assert_eq!((done.len(), pending.len()), (1, 0));
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<T: 'static> {
    tasks: Vec<Task<T>>,
    done: Vec<bool>,
    n_done: usize,
    panicked: bool,
    wake: WakeSet,
    timer: Option<Sleep>,
    return_when: ReturnWhen,
    finished: bool,
}

impl<T: 'static> std::future::Future for Wait<T> {
    type Output = (Vec<Task<T>>, Vec<Task<T>>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.finished, "Wait polled after completion");
        let batch = this.wake.take_woken(cx);
        for &i in &batch {
            let i = i as usize;
            if this.done[i] {
                continue;
            }
            let mut child_cx = Context::from_waker(this.wake.waker(i as u32));
            if this.tasks[i].poll_done(&mut child_cx).is_ready() {
                this.done[i] = true;
                this.n_done += 1;
                this.panicked |= this.tasks[i].panicked();
            }
        }
        this.wake.done_with(batch);
        let all = this.n_done == this.tasks.len();
        let mut ready = match this.return_when {
            ReturnWhen::FirstCompleted => this.n_done > 0 || all,
            ReturnWhen::FirstException => this.panicked || all,
            ReturnWhen::AllCompleted => all,
        };
        if !ready {
            if let Some(t) = this.timer.as_mut() {
                ready = Pin::new(t).poll(cx).is_ready();
            }
        }
        if !ready {
            return Poll::Pending;
        }
        this.finished = true;
        this.wake.close();
        this.timer = None;
        let mut done = Vec::with_capacity(this.n_done);
        let mut pending = Vec::with_capacity(this.tasks.len() - this.n_done);
        for (t, d) in this.tasks.drain(..).zip(&this.done) {
            if *d { done.push(t) } else { pending.push(t) }
        }
        Poll::Ready((done, pending))
    }
}

impl<T: 'static> fmt::Debug for Wait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("tasks", &self.tasks.len())
            .field("done", &self.n_done)
            .field("return_when", &self.return_when)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// as_completed

/// Hands back `tasks` one by one **in the order they finish** (asyncio's `as_completed`).
///
/// Each [`next`](AsCompleted::next) gives `Some(Ok(task))` for a task that is done (its
/// outcome is ready: await it or call [`Task::result`]); tasks already done at the start
/// come first, in the order given. If `timeout` passes first, `next` gives
/// `Some(Err(TimeoutError))` once and then `None`: **nothing is cancelled**, and
/// [`into_remaining`](AsCompleted::into_remaining) hands back the tasks not yielded. Like
/// [`wait`], dropping it never cancels.
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let tasks = [30u64, 10, 20].map(|ms| {
///         corio::spawn(async move {
///             corio::sleep(Duration::from_millis(ms)).await;
///             ms
///         })
///     });
///     let mut it = corio::as_completed(tasks, None);
///     let mut order = Vec::new();
///     while let Some(task) = it.next().await {
///         order.push(task.unwrap().await.unwrap());
///     }
///     assert_eq!(order, [10, 20, 30]);
/// });
/// ```
pub fn as_completed<T: 'static>(
    tasks: impl IntoIterator<Item = Task<T>>,
    timeout: Option<Duration>,
) -> AsCompleted<T> {
    let tasks: Vec<Option<Task<T>>> = tasks.into_iter().map(Some).collect();
    let n = tasks.len();
    AsCompleted {
        finished: VecDeque::new(),
        left: n,
        wake: WakeSet::new(n),
        timer: timeout.map(sleep),
        timed_out: false,
        tasks,
    }
}

/// The iterator of [`as_completed`]: call [`next`](AsCompleted::next) in a `while let` loop.
///
/// ```
/// corio::run(async {
///     let mut it = corio::as_completed([corio::spawn(async { 'a' })], None);
///     assert_eq!((it.len(), it.is_empty()), (1, false));
///     while let Some(done) = it.next().await {
///         assert_eq!(done.unwrap().await.unwrap(), 'a');
///     }
///     assert!(it.is_empty());
/// });
/// ```
pub struct AsCompleted<T: 'static> {
    tasks: Vec<Option<Task<T>>>,
    /// Done and not yet handed out, in the order they finished.
    finished: VecDeque<u32>,
    /// Not yet handed out.
    left: usize,
    wake: WakeSet,
    timer: Option<Sleep>,
    timed_out: bool,
}

impl<T: 'static> AsCompleted<T> {
    /// The next task to finish, `Err(TimeoutError)` once if the timeout passes first, then
    /// `None` when there is nothing more.
    ///
    /// ```
    /// corio::run(async {
    ///     let mut it = corio::as_completed([corio::spawn(async { 1 })], None);
    ///     assert_eq!(it.next().await.unwrap().unwrap().await.unwrap(), 1);
    ///     assert!(it.next().await.is_none());
    /// });
    /// ```
    // An async `next`, as in async iteration: `Iterator` does not fit.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Next<'_, T> {
        Next { it: self }
    }

    /// The poll form of [`next`](AsCompleted::next).
    ///
    /// ```
    /// corio::run(async {
    ///     let mut it = corio::as_completed([corio::spawn(async { 3 })], None);
    ///     let first = std::future::poll_fn(|cx| it.poll_next(cx)).await;
    ///     assert_eq!(first.unwrap().unwrap().await.unwrap(), 3);
    /// });
    /// ```
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Task<T>, TimeoutError>>> {
        if self.timed_out || self.left == 0 {
            return Poll::Ready(None);
        }
        let batch = self.wake.take_woken(cx);
        for &i in &batch {
            if let Some(t) = &self.tasks[i as usize] {
                let mut child_cx = Context::from_waker(self.wake.waker(i));
                if t.poll_done(&mut child_cx).is_ready() {
                    self.finished.push_back(i);
                }
            }
        }
        self.wake.done_with(batch);
        while let Some(i) = self.finished.pop_front() {
            let Some(task) = self.tasks[i as usize].take() else {
                continue; // queued twice: handed out already
            };
            self.left -= 1;
            if self.left == 0 {
                self.wake.close();
            }
            return Poll::Ready(Some(Ok(task)));
        }
        if let Some(t) = self.timer.as_mut() {
            if Pin::new(t).poll(cx).is_ready() {
                self.timed_out = true;
                self.timer = None;
                self.wake.close();
                return Poll::Ready(Some(Err(TimeoutError)));
            }
        }
        Poll::Pending
    }

    /// How many tasks were not handed out yet.
    ///
    /// ```
    /// corio::run(async {
    ///     let it = corio::as_completed([corio::spawn(async {})], None);
    ///     assert_eq!(it.len(), 1);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.left
    }

    /// Whether every task was handed out.
    ///
    /// ```
    /// corio::run(async {
    ///     let it = corio::as_completed(Vec::<corio::Task<()>>::new(), None);
    ///     assert!(it.is_empty());
    /// });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// The tasks not handed out yet (still running, or done but not yielded), in the order
    /// given: what to do with them after a timeout is the caller's choice.
    ///
    /// ```
    /// use std::time::Duration;
    /// corio::run(async {
    ///     let slow = corio::spawn(corio::sleep(Duration::from_secs(3600)));
    ///     let mut it = corio::as_completed([slow], Some(Duration::from_millis(1)));
    ///     assert!(it.next().await.unwrap().is_err(), "timed out");
    ///     assert!(it.next().await.is_none());
    ///     let rest = it.into_remaining();
    ///     assert!(!rest[0].done(), "still running");
    ///     rest[0].cancel(None);
    /// });
    /// ```
    pub fn into_remaining(mut self) -> Vec<Task<T>> {
        self.wake.close();
        std::mem::take(&mut self.tasks)
            .into_iter()
            .flatten()
            .collect()
    }
}

impl<T: 'static> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("left", &self.left)
            .field("timed_out", &self.timed_out)
            .finish()
    }
}

/// The future of [`AsCompleted::next`].
///
/// ```
/// corio::run(async {
///     let mut it = corio::as_completed(Vec::<corio::Task<()>>::new(), None);
///     let next: corio::tasks::Next<'_, ()> = it.next();
///     assert!(next.await.is_none());
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Next<'a, T: 'static> {
    it: &'a mut AsCompleted<T>,
}

impl<T: 'static> std::future::Future for Next<'_, T> {
    type Output = Option<Result<Task<T>, TimeoutError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().it.poll_next(cx)
    }
}

impl<T: 'static> fmt::Debug for Next<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next").field("it", &self.it).finish()
    }
}

// ---------------------------------------------------------------------------------------
// shield

/// Runs `fut` as a task that cancelling the awaiter does not reach (asyncio's `shield`).
///
/// Awaiting the `Shield` gives the task's outcome. If the task awaiting the shield is
/// cancelled, the awaiter sees its cancellation as usual (the shield is dropped, or
/// [`catch_cancel`](crate::catch_cancel) returns `Err`), but the inner task **keeps
/// running** to completion: the shield only watches it, so dropping the shield detaches it.
/// If the inner task itself is cancelled, awaiting the shield gives `Err(Cancelled)`.
/// [`into_task`](Shield::into_task) takes the inner task's handle back.
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let saver = corio::spawn(async {
///         let save = corio::shield(async {
///             corio::sleep(Duration::from_millis(10)).await;
///             "saved"
///         });
///         let inner = save.as_ref();
///         let caught = corio::catch_cancel(save).await;
///         (caught.is_err(), inner)
///     });
///     corio::yield_now().await;
///     corio::yield_now().await;
///     saver.cancel(None);
///     let (was_cancelled, inner) = saver.await.unwrap();
///     assert!(was_cancelled);
///     assert!(!inner.done(), "the shielded work goes on");
///     corio::sleep(Duration::from_millis(20)).await;
///     assert!(inner.done() && !inner.cancelled());
/// });
/// ```
pub fn shield<F>(fut: F) -> Shield<F::Output>
where
    F: std::future::Future + 'static,
{
    Shield {
        task: Some(spawn(fut)),
    }
}

/// The future of [`shield`].
///
/// ```
/// corio::run(async {
///     let s: corio::tasks::Shield<u8> = corio::shield(async { 4 });
///     assert_eq!(s.await.unwrap(), 4);
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Shield<T: 'static> {
    task: Option<Task<T>>,
}

impl<T: 'static> Shield<T> {
    /// An untyped handle to the inner task.
    ///
    /// ```
    /// corio::run(async {
    ///     let s = corio::shield(async {});
    ///     let inner = s.as_ref();
    ///     s.await.unwrap();
    ///     assert!(inner.done());
    /// });
    /// ```
    pub fn as_ref(&self) -> TaskRef {
        self.task
            .as_ref()
            .expect("Shield polled to completion")
            .as_ref()
    }

    /// The inner task's handle (awaiting it is not shielded).
    ///
    /// ```
    /// corio::run(async {
    ///     let task: corio::Task<u8> = corio::shield(async { 9 }).into_task();
    ///     assert_eq!(task.await.unwrap(), 9);
    /// });
    /// ```
    pub fn into_task(mut self) -> Task<T> {
        self.task.take().expect("Shield polled to completion")
    }
}

impl<T: 'static> std::future::Future for Shield<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let task = this.task.as_ref().expect("Shield polled after completion");
        std::task::ready!(task.poll_done(cx));
        let out = task.result().expect("only the shield reads the inner task");
        this.task = None;
        Poll::Ready(out)
    }
}

impl<T: 'static> fmt::Debug for Shield<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield").field("task", &self.task).finish()
    }
}
