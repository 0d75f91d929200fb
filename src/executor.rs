//! Threads and executors: blocking work on a thread pool, its result back on the loop; and
//! the way in for other threads (`run_coroutine_threadsafe`).
//!
//! asyncio counterpart: `loop.run_in_executor`, `loop.set_default_executor`,
//! `loop.shutdown_default_executor` (`base_events.py`), `asyncio.to_thread` (`threads.py`),
//! `asyncio.run_coroutine_threadsafe` (`tasks.py`) and `concurrent.futures`
//! (`ThreadPoolExecutor`, `Future`). Layer 3: uses the loop core and its thread-safe door;
//! used by [`getaddrinfo`](crate::getaddrinfo) / [`getnameinfo`](crate::getnameinfo), by
//! applications and by the examples.
//!
//! # How a result comes back
//!
//! Both directions use one small rendezvous, a `Slot`: a mutex around "the value, if any"
//! and "who waits for it". The side that produces the value stores it, then wakes the
//! waiter:
//!
//! - **loop → thread → loop** ([`EventLoop::run_in_executor`], [`to_thread`]): the waiter is
//!   the awaiting task's [`Waker`]. Waking it from the worker thread goes through the loop's
//!   thread-safe queue and wakes the selector (DESIGN.md, "The wake-up"), so the task runs
//!   again on the loop thread and takes the value. Nothing but the value and the waker cross
//!   threads: the task and everything it borrows stay home.
//! - **thread → loop → thread** ([`run_coroutine_threadsafe`]): a `Send` closure goes through
//!   [`Remote::call_soon_threadsafe`], builds the future *on the loop thread* (so the future
//!   need not be `Send`) and spawns it; when it ends, its output lands in the slot and the
//!   calling thread, blocked on a condition variable in [`ConcurrentFuture::result`], wakes.
//!
//! # Cancellation
//!
//! Dropping an [`ExecutorFuture`] (for instance because its task was cancelled) cancels the
//! job if no thread has started it yet, as `concurrent.futures.Future.cancel` does; a job
//! already running cannot be stopped (a thread cannot be interrupted) and its result is
//! dropped when it arrives. [`ConcurrentFuture::cancel`] cancels the task on the loop.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::base_events::remote::Shared;
use crate::base_events::{EventLoop, Remote, expect_current};
use crate::exceptions::{Cancelled, TaskError, panic_payload_str};

/// How long [`Runner::close`](crate::Runner::close) waits for the default executor's threads
/// (asyncio's `run` waits 300 s, then warns).
pub(crate) const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(300);

// ---- the rendezvous -------------------------------------------------------------------

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the state half-updated (every
    // critical section is a few assignments), so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv` while `cond` holds, at most `timeout` (`None`: no limit). Returns the guard
/// and whether it gave up with `cond` still holding.
fn wait_while<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Option<Duration>,
    cond: impl FnMut(&mut T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    match timeout {
        None => (
            cv.wait_while(guard, cond)
                .unwrap_or_else(|e| e.into_inner()),
            false,
        ),
        Some(t) => {
            let (g, r) = cv
                .wait_timeout_while(guard, t, cond)
                .unwrap_or_else(|e| e.into_inner());
            (g, r.timed_out())
        }
    }
}

struct SlotState<T> {
    value: Option<T>,
    /// The value was stored (it may since have been taken).
    finished: bool,
    /// The consumer gave up: the producer may skip the work.
    cancelled: bool,
    /// The producer started the work: too late to cancel it.
    started: bool,
    waker: Option<Waker>,
}

/// A one-shot rendezvous between a producer on one thread and a consumer that either polls
/// (with a waker) or blocks (on the condition variable).
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    ready: Condvar,
}

impl<T> Slot<T> {
    fn new() -> Arc<Slot<T>> {
        Arc::new(Slot {
            state: Mutex::new(SlotState {
                value: None,
                finished: false,
                cancelled: false,
                started: false,
                waker: None,
            }),
            ready: Condvar::new(),
        })
    }

    /// Stores the value and wakes the consumer. Only the first call counts.
    fn set(&self, value: T) -> bool {
        let waker = {
            let mut s = lock(&self.state);
            if s.finished {
                return false;
            }
            s.finished = true;
            s.value = Some(value);
            s.waker.take()
        };
        self.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// The producer is about to do the work; `false` if the consumer cancelled first.
    fn start(&self) -> bool {
        let mut s = lock(&self.state);
        if s.cancelled || s.finished {
            return false;
        }
        s.started = true;
        true
    }

    /// The consumer gives up: work not started yet will be skipped. `true` if it had not
    /// started (so it never will); `false` if it runs or ran, and then nothing changes.
    fn cancel(&self) -> bool {
        let mut s = lock(&self.state);
        if s.started || s.finished {
            return false;
        }
        s.cancelled = true;
        true
    }

    fn is_finished(&self) -> bool {
        lock(&self.state).finished
    }

    /// Takes the value, or parks `cx`'s waker.
    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = lock(&self.state);
        if s.finished {
            return Poll::Ready(s.value.take());
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Blocks until the value is stored (at most `timeout`), then takes it. `Err(())` on
    /// timeout; `Ok(None)` if it was already taken.
    fn wait_take(&self, timeout: Option<Duration>) -> Result<Option<T>, ()> {
        let (mut s, timed_out) =
            wait_while(&self.ready, lock(&self.state), timeout, |s| !s.finished);
        if timed_out {
            return Err(());
        }
        Ok(s.value.take())
    }
}

// ---- errors ---------------------------------------------------------------------------

/// Why a job given to an executor produced no value.
pub enum ExecutorError {
    /// The job panicked; the payload is what `panic!` was given. The worker thread survives.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The executor was shut down (or could not start a thread) before the job ran
    /// (`concurrent.futures`' "cannot schedule new futures after shutdown").
    Shutdown,
}

impl ExecutorError {
    /// Whether the job panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, ExecutorError::Panicked(_))
    }

    /// The panic message, when the payload is a string.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            ExecutorError::Panicked(p) => panic_payload_str(p.as_ref()),
            ExecutorError::Shutdown => None,
        }
    }

    /// The panic payload, for `std::panic::resume_unwind`. Panics if the job did not panic.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self {
            ExecutorError::Panicked(p) => p,
            ExecutorError::Shutdown => panic!("into_panic on ExecutorError::Shutdown"),
        }
    }
}

impl fmt::Debug for ExecutorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecutorError::Panicked(_) => f
                .debug_tuple("Panicked")
                .field(&self.panic_message().unwrap_or("<non-string payload>"))
                .finish(),
            ExecutorError::Shutdown => f.write_str("Shutdown"),
        }
    }
}

impl fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecutorError::Panicked(_) => match self.panic_message() {
                Some(m) => write!(f, "executor job panicked: {m}"),
                None => f.write_str("executor job panicked"),
            },
            ExecutorError::Shutdown => f.write_str("the executor is shut down"),
        }
    }
}

impl std::error::Error for ExecutorError {}

impl From<ExecutorError> for std::io::Error {
    /// For I/O helpers that run on the executor ([`getaddrinfo`](crate::getaddrinfo)): a
    /// panic or a shut-down executor becomes an `io::Error` of kind `Other`.
    fn from(e: ExecutorError) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}

// ---- executors ------------------------------------------------------------------------

/// A job for an [`Executor`]: run it once, on any thread.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Something that runs jobs on other threads (asyncio: a `concurrent.futures.Executor`).
///
/// [`ThreadPoolExecutor`] is the one corio provides. An executor that cannot run a job (it
/// is shut down) just drops it: the [`ExecutorFuture`] waiting for it then resolves to
/// [`ExecutorError::Shutdown`].
pub trait Executor: Send + Sync {
    /// Runs `job` later, on some thread.
    fn execute(&self, job: Job);
}

struct PoolState {
    queue: VecDeque<Job>,
    /// Threads alive (running a job or idle).
    live: usize,
    /// Threads waiting for a job.
    idle: usize,
    shutdown: bool,
}

struct Pool {
    max_workers: usize,
    name_prefix: String,
    next_name: AtomicUsize,
    state: Mutex<PoolState>,
    /// Workers wait here for jobs.
    work: Condvar,
    /// `shutdown(wait)` waits here for the last worker to leave.
    gone: Condvar,
    /// The workers' handles, joined once they have all left.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Pool {
    fn worker(self: Arc<Pool>) {
        let mut s = lock(&self.state);
        loop {
            if let Some(job) = s.queue.pop_front() {
                drop(s);
                // Our own jobs catch their panics; a foreign job's panic must not kill the
                // thread's bookkeeping either.
                let _ = catch_unwind(AssertUnwindSafe(job));
                s = lock(&self.state);
                continue;
            }
            if s.shutdown {
                break;
            }
            s.idle += 1;
            s = self.work.wait(s).unwrap_or_else(|e| e.into_inner());
            s.idle -= 1;
        }
        s.live -= 1;
        if s.live == 0 {
            self.gone.notify_all();
        }
    }

    fn submit(self: &Arc<Pool>, job: Job) {
        let mut s = lock(&self.state);
        if s.shutdown {
            drop(s);
            drop(job); // reported as Shutdown by the job's guard
            return;
        }
        s.queue.push_back(job);
        if s.idle >= s.queue.len() {
            self.work.notify_one();
            return;
        }
        if s.live >= self.max_workers {
            return; // a busy worker will take it
        }
        s.live += 1;
        drop(s);
        let n = self.next_name.fetch_add(1, Ordering::Relaxed);
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{n}", self.name_prefix))
            .spawn(move || pool.worker());
        match spawned {
            Ok(handle) => lock(&self.threads).push(handle),
            Err(e) => self.spawn_failed(&e),
        }
    }

    fn spawn_failed(&self, e: &std::io::Error) {
        log::error!("corio: cannot start an executor thread: {e}");
        let mut s = lock(&self.state);
        s.live -= 1;
        if s.live == 0 {
            // Nobody will ever run what is queued: drop it (each job reports Shutdown).
            let orphans: Vec<Job> = s.queue.drain(..).collect();
            drop(s);
            drop(orphans);
        }
    }

    fn shutdown(&self) {
        lock(&self.state).shutdown = true;
        self.work.notify_all();
    }

    /// Waits until every worker has left; `false` if `timeout` passed first. Then joins
    /// their threads, which are exiting: when it returns `true` they are gone.
    fn join(&self, timeout: Option<Duration>) -> bool {
        if wait_while(&self.gone, lock(&self.state), timeout, |s| s.live > 0).1 {
            return false;
        }
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
        true
    }
}

/// Shuts the pool down when the last [`ThreadPoolExecutor`] handle goes (workers hold the
/// `Pool` itself, so the pool cannot notice that on its own).
struct PoolHandle {
    pool: Arc<Pool>,
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        self.pool.shutdown();
    }
}

/// A bounded pool of named threads (asyncio: `concurrent.futures.ThreadPoolExecutor`).
///
/// Threads start on demand, up to `max_workers`, and then stay until the pool is shut down
/// (explicitly, or when the last handle is dropped); jobs wait in a FIFO queue while every
/// thread is busy. Cloning gives another handle to the same pool. A job's panic is caught and
/// handed to whoever awaits it as [`ExecutorError::Panicked`].
///
/// ```
/// use corio::executor::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::with_name(2, "hasher");
/// let sum = corio::run(async move {
///     let ev = corio::get_running_loop();
///     let a = ev.run_in_executor(Some(&pool), || (1..=100u64).sum::<u64>());
///     let b = ev.run_in_executor(Some(&pool), || std::thread::current().name().unwrap().to_string());
///     assert!(b.await.unwrap().starts_with("hasher-"));
///     a.await.unwrap()
/// });
/// assert_eq!(sum, 5050);
/// ```
#[derive(Clone)]
pub struct ThreadPoolExecutor {
    handle: Arc<PoolHandle>,
}

impl ThreadPoolExecutor {
    /// A pool of at most `max_workers` threads named `corio-executor-N`.
    pub fn new(max_workers: usize) -> ThreadPoolExecutor {
        ThreadPoolExecutor::with_name(max_workers, "corio-executor")
    }

    /// A pool of at most `max_workers` threads named `PREFIX-N`.
    pub fn with_name(max_workers: usize, prefix: impl Into<String>) -> ThreadPoolExecutor {
        let pool = Pool {
            max_workers: max_workers.max(1),
            name_prefix: prefix.into(),
            next_name: AtomicUsize::new(0),
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                live: 0,
                idle: 0,
                shutdown: false,
            }),
            work: Condvar::new(),
            gone: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        };
        ThreadPoolExecutor {
            handle: Arc::new(PoolHandle {
                pool: Arc::new(pool),
            }),
        }
    }

    /// The default size, asyncio's: `min(32, CPUs + 4)`.
    pub fn default_max_workers() -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cpus + 4).min(32)
    }

    /// The most threads this pool runs at once.
    pub fn max_workers(&self) -> usize {
        self.handle.pool.max_workers
    }

    /// How many threads are alive now.
    pub fn live_workers(&self) -> usize {
        lock(&self.handle.pool.state).live
    }

    /// Runs `f` on the pool; the returned future gives its value. The job is queued at once,
    /// awaited or not (asyncio's `executor.submit`). Works from any thread.
    pub fn submit<F, T>(&self, f: F) -> ExecutorFuture<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        submit_to(self, f)
    }

    /// Stops accepting jobs; the jobs already queued still run (except those whose future
    /// was dropped). With `wait`, blocks until every thread has exited. Idempotent.
    pub fn shutdown(&self, wait: bool) {
        self.handle.pool.shutdown();
        if wait {
            self.handle.pool.join(None);
        }
    }

    /// [`shutdown`](ThreadPoolExecutor::shutdown) that waits at most `timeout`; returns
    /// whether every thread exited in time.
    pub fn shutdown_timeout(&self, timeout: Duration) -> bool {
        self.handle.pool.shutdown();
        self.handle.pool.join(Some(timeout))
    }

    /// Whether [`shutdown`](ThreadPoolExecutor::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        lock(&self.handle.pool.state).shutdown
    }
}

impl Executor for ThreadPoolExecutor {
    fn execute(&self, job: Job) {
        self.handle.pool.submit(job);
    }
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.handle.pool.state);
        f.debug_struct("ThreadPoolExecutor")
            .field("name", &self.handle.pool.name_prefix)
            .field("max_workers", &self.handle.pool.max_workers)
            .field("live", &s.live)
            .field("idle", &s.idle)
            .field("queued", &s.queue.len())
            .field("shutdown", &s.shutdown)
            .finish()
    }
}

/// Reports [`ExecutorError::Shutdown`] if a job is dropped without having run.
struct JobGuard<T> {
    slot: Arc<Slot<Result<T, ExecutorError>>>,
}

impl<T> Drop for JobGuard<T> {
    fn drop(&mut self) {
        self.slot.set(Err(ExecutorError::Shutdown));
    }
}

fn submit_to<F, T>(executor: &(impl Executor + ?Sized), f: F) -> ExecutorFuture<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot = Slot::new();
    let guard = JobGuard { slot: slot.clone() };
    executor.execute(Box::new(move || {
        let guard = guard;
        if !guard.slot.start() {
            return; // cancelled before it started: the guard's `set` finds nobody
        }
        let out = catch_unwind(AssertUnwindSafe(f)).map_err(ExecutorError::Panicked);
        guard.slot.set(out);
    }));
    ExecutorFuture { slot }
}

/// The result of a job running on an executor, as a future (asyncio: the `Future` that
/// `run_in_executor` returns, wrapping a `concurrent.futures.Future`).
///
/// The job is already queued when this is created; awaiting only collects the value.
/// Resolves to `Err(ExecutorError::Panicked)` if the job panicked and to
/// `Err(ExecutorError::Shutdown)` if it never ran.
///
/// *Cancel safety:* dropping it cancels the job if no thread has started it, and otherwise
/// lets it finish and drops its value.
#[must_use = "the job runs anyway; drop the future to cancel it, await it for its value"]
pub struct ExecutorFuture<T> {
    slot: Arc<Slot<Result<T, ExecutorError>>>,
}

impl<T> ExecutorFuture<T> {
    /// Cancels the job if it has not started (asyncio's `Future.cancel` on an executor
    /// future); returns whether it was cancelled. Awaiting a cancelled job gives
    /// [`ExecutorError::Shutdown`].
    pub fn cancel(&self) -> bool {
        let cancelled = self.slot.cancel();
        if cancelled {
            self.slot.set(Err(ExecutorError::Shutdown));
        }
        cancelled
    }

    /// Whether the job has finished (or will never run).
    pub fn done(&self) -> bool {
        self.slot.is_finished()
    }
}

impl<T> std::future::Future for ExecutorFuture<T> {
    type Output = Result<T, ExecutorError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.slot
            .poll_take(cx)
            .map(|v| v.expect("ExecutorFuture polled after it completed"))
    }
}

impl<T> Drop for ExecutorFuture<T> {
    fn drop(&mut self) {
        self.slot.cancel(); // skipped if not started; a late value is dropped with the slot
    }
}

impl<T> fmt::Debug for ExecutorFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorFuture")
            .field("done", &self.done())
            .finish()
    }
}

// ---- the loop's side ------------------------------------------------------------------

impl EventLoop {
    /// Runs the blocking function `f` on `executor`, or on the loop's default
    /// [`ThreadPoolExecutor`] with `None`, and returns a future for its value (asyncio's
    /// `loop.run_in_executor`). The job is queued now; the loop keeps running other tasks
    /// while it runs, and the awaiting task is woken through the loop's thread-safe door.
    ///
    /// ```
    /// use std::time::Duration;
    /// corio::run(async {
    ///     let ev = corio::get_running_loop();
    ///     let slow = ev.run_in_executor(None, || {
    ///         std::thread::sleep(Duration::from_millis(50)); // blocking, but not the loop
    ///         "done"
    ///     });
    ///     corio::sleep(Duration::from_millis(10)).await; // the loop runs meanwhile
    ///     assert_eq!(slow.await.unwrap(), "done");
    /// });
    /// ```
    pub fn run_in_executor<F, T>(&self, executor: Option<&dyn Executor>, f: F) -> ExecutorFuture<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match executor {
            Some(e) => submit_to(e, f),
            None => submit_to(&self.default_executor(), f),
        }
    }

    /// The loop's default executor, created on first use with
    /// [`ThreadPoolExecutor::default_max_workers`] threads named `corio-executor-N`.
    /// After [`shutdown_default_executor`](EventLoop::shutdown_default_executor) it is a
    /// shut-down pool (jobs resolve to [`ExecutorError::Shutdown`]).
    pub fn default_executor(&self) -> ThreadPoolExecutor {
        let mut slot = self.core.default_executor.borrow_mut();
        slot.get_or_insert_with(|| {
            let pool = ThreadPoolExecutor::new(ThreadPoolExecutor::default_max_workers());
            if self.core.is_closed() {
                pool.shutdown(false);
            }
            pool
        })
        .clone()
    }

    /// Replaces the default executor (asyncio's `set_default_executor`). The old one is shut
    /// down without waiting.
    pub fn set_default_executor(&self, executor: ThreadPoolExecutor) {
        let old = self.core.default_executor.replace(Some(executor));
        if let Some(old) = old {
            old.shutdown(false);
        }
    }

    /// Shuts the default executor down and waits, without blocking the loop, until its
    /// threads have finished their jobs (asyncio's `shutdown_default_executor`). Later
    /// [`run_in_executor`](EventLoop::run_in_executor) calls with `None` fail with
    /// [`ExecutorError::Shutdown`]. [`Runner::close`](crate::Runner::close) (and so
    /// [`corio::run`](crate::run)) calls this; [`EventLoop::close`] only shuts the pool down
    /// without waiting.
    ///
    /// Returns whether every thread finished within `timeout` (`None`: no limit).
    ///
    /// ```
    /// let ev = corio::EventLoop::new().unwrap();
    /// ev.run_until_complete(async {
    ///     let ev = corio::get_running_loop();
    ///     assert_eq!(ev.run_in_executor(None, || 1).await.unwrap(), 1);
    ///     assert!(ev.shutdown_default_executor(None).await);
    ///     assert!(ev.run_in_executor(None, || 2).await.is_err());
    /// });
    /// ```
    pub async fn shutdown_default_executor(&self, timeout: Option<Duration>) -> bool {
        let pool = {
            let mut slot = self.core.default_executor.borrow_mut();
            match &*slot {
                Some(p) => p.clone(),
                None => {
                    // Never used: leave a shut-down pool so later calls fail like asyncio's.
                    let p = ThreadPoolExecutor::new(1);
                    p.shutdown(false);
                    *slot = Some(p);
                    return true;
                }
            }
        };
        pool.handle.pool.shutdown();
        if lock(&pool.handle.pool.state).live == 0 {
            return pool.handle.pool.join(timeout); // only joins threads already leaving
        }
        // Join on a helper thread (asyncio does the same), so the loop keeps running.
        let slot: Arc<Slot<bool>> = Slot::new();
        let done = slot.clone();
        let inner = pool.handle.pool.clone();
        let joiner = std::thread::Builder::new()
            .name("corio-pool-join".into())
            .spawn(move || {
                done.set(inner.join(timeout));
            });
        if joiner.is_err() {
            return pool.handle.pool.join(timeout);
        }
        poll_fn(|cx| slot.poll_take(cx))
            .await
            .expect("the joiner sets the slot once")
    }
}

/// Runs the blocking function `f` on the running loop's default executor (asyncio's
/// `asyncio.to_thread`). Panics outside a running loop. See
/// [`EventLoop::run_in_executor`].
///
/// ```
/// use std::time::{Duration, Instant};
/// corio::run(async {
///     let t0 = Instant::now();
///     // Two blocking sleeps at once, on two threads: about 50 ms in all, not 100.
///     let a = corio::to_thread(|| std::thread::sleep(Duration::from_millis(50)));
///     let b = corio::to_thread(|| std::thread::sleep(Duration::from_millis(50)));
///     a.await.unwrap();
///     b.await.unwrap();
///     assert!(t0.elapsed() < Duration::from_millis(95));
/// });
/// ```
pub fn to_thread<F, T>(f: F) -> ExecutorFuture<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let ev = expect_current("to_thread", |core| EventLoop {
        core: core.clone(),
        owner: false,
    });
    ev.run_in_executor(None, f)
}

// ---- other threads into the loop ------------------------------------------------------

/// Builds a future on the loop of `remote` and runs it there as a task, from any thread
/// (asyncio's `run_coroutine_threadsafe`). Returns a handle the calling thread can block on
/// ([`ConcurrentFuture::result`]), poll with a timeout, cancel, or `.await` from another
/// loop.
///
/// `make` is a `Send` closure called *on the loop thread*, so the future it returns need not
/// be `Send` (it may hold `Rc`s, corio sockets, ...); only the output crosses back. A `Send`
/// future can be passed as `move || fut`.
///
/// If the loop is closed before the task runs, the result is a cancellation.
///
/// ```
/// use std::time::Duration;
///
/// let ev = corio::EventLoop::new().unwrap();
/// let remote = ev.remote();
/// let caller = std::thread::spawn(move || {
///     let fut = corio::run_coroutine_threadsafe(
///         || async {
///             let half = std::rc::Rc::new(21); // !Send inside the task is fine
///             corio::sleep(Duration::from_millis(5)).await;
///             *half * 2
///         },
///         &remote,
///     );
///     fut.result().unwrap()
/// });
/// // The loop must run for the task to run.
/// ev.run_until_complete(async {
///     while !caller.is_finished() {
///         corio::sleep(Duration::from_millis(1)).await;
///     }
/// });
/// assert_eq!(caller.join().unwrap(), 42);
/// ```
pub fn run_coroutine_threadsafe<M, Fut>(make: M, remote: &Remote) -> ConcurrentFuture<Fut::Output>
where
    M: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future + 'static,
    Fut::Output: Send + 'static,
{
    let shared = Arc::new(Concurrent {
        slot: Slot::new(),
        cancel: Mutex::new(CancelState {
            requested: false,
            waker: None,
        }),
        target: remote.shared.clone(),
    });
    let guard = ClosedGuard {
        shared: Some(shared.clone()),
    };
    let accepted = remote.call_soon_threadsafe(move || {
        let mut guard = guard;
        let shared = guard.shared.as_ref().expect("armed until here");
        if lock(&shared.cancel).requested {
            return; // cancelled before it started: the guard reports it
        }
        let fut = match catch_unwind(AssertUnwindSafe(make)) {
            Ok(fut) => fut,
            Err(p) => {
                shared.slot.set(Err(TaskError::Panicked(p)));
                return;
            }
        };
        let shared = guard.shared.take().expect("armed until here");
        crate::tasks::spawn(watch(fut, shared));
    });
    if !accepted {
        shared.slot.set(Err(loop_closed()));
    }
    ConcurrentFuture { shared }
}

fn loop_closed() -> TaskError {
    TaskError::Cancelled(Cancelled::new(Some("the event loop is closed".into())))
}

struct CancelState {
    requested: bool,
    waker: Option<Waker>,
}

struct Concurrent<T> {
    slot: Arc<Slot<Result<T, TaskError>>>,
    cancel: Mutex<CancelState>,
    /// The loop the task runs on.
    target: Arc<Shared>,
}

/// Reports a cancellation if the callback that would have spawned the task is dropped
/// unrun (the loop closed) or finds the request cancelled.
struct ClosedGuard<T> {
    shared: Option<Arc<Concurrent<T>>>,
}

impl<T> Drop for ClosedGuard<T> {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.slot.set(Err(loop_closed()));
        }
    }
}

/// The task body: runs `fut` as its own task and forwards a cancel request from the other
/// thread to it; stores the outcome for the other thread. If this task is itself dropped
/// (loop close), the inner task is cancelled with it and the slot says "cancelled".
async fn watch<Fut>(fut: Fut, shared: Arc<Concurrent<Fut::Output>>)
where
    Fut: std::future::Future + 'static,
    Fut::Output: Send + 'static,
{
    struct Report<T>(Arc<Concurrent<T>>);
    impl<T> Drop for Report<T> {
        fn drop(&mut self) {
            self.0
                .slot
                .set(Err(TaskError::Cancelled(Cancelled::new(None))));
        }
    }
    let report = Report(shared.clone());
    let mut inner = crate::tasks::spawn(fut);
    let mut forwarded = false;
    let out = poll_fn(|cx| {
        if !forwarded {
            let mut c = lock(&shared.cancel);
            if c.requested {
                forwarded = true;
                drop(c);
                inner.cancel(None);
            } else {
                c.waker = Some(cx.waker().clone());
            }
        }
        Pin::new(&mut inner).poll(cx)
    })
    .await;
    shared.slot.set(out);
    drop(report); // finds the slot already set
}

/// A handle on a task that [`run_coroutine_threadsafe`] started on a loop, for another
/// thread (asyncio's `concurrent.futures.Future`). `Send + Sync`.
///
/// Also a `std::future::Future`, so a task on *another* loop can await it.
pub struct ConcurrentFuture<T> {
    shared: Arc<Concurrent<T>>,
}

impl<T> ConcurrentFuture<T> {
    /// Blocking the loop's own thread on its task could never finish: refuse loudly.
    fn check_not_loop_thread(&self) {
        assert!(
            self.shared.slot.is_finished()
                || std::thread::current().id() != self.shared.target.owner,
            "ConcurrentFuture::result called on the loop's own thread: it would wait forever \
             (await the task there instead)"
        );
    }

    /// Blocks until the task is done and returns its output, or how it failed
    /// (asyncio's `future.result()`). Panics on the loop's own thread, where the task could
    /// never run.
    pub fn result(self) -> Result<T, TaskError> {
        self.check_not_loop_thread();
        self.shared
            .slot
            .wait_take(None)
            .ok()
            .flatten()
            .unwrap_or_else(|| Err(TaskError::Cancelled(Cancelled::new(None))))
    }

    /// Like [`result`](ConcurrentFuture::result) but gives up after `timeout`, returning
    /// `None` (asyncio's `result(timeout)` raising `TimeoutError`); the handle stays usable.
    /// Also `None` if the output was already taken.
    pub fn result_timeout(&self, timeout: Duration) -> Option<Result<T, TaskError>> {
        self.check_not_loop_thread();
        self.shared.slot.wait_take(Some(timeout)).ok().flatten()
    }

    /// Requests cancellation of the task (asyncio's `future.cancel()`, delivered with
    /// `call_soon_threadsafe`): it is cancelled at its next suspension point, or never
    /// started if the loop has not picked it up yet. Returns `false` if it is already done.
    pub fn cancel(&self) -> bool {
        if self.shared.slot.is_finished() {
            return false;
        }
        let waker = {
            let mut c = lock(&self.shared.cancel);
            c.requested = true;
            c.waker.take()
        };
        if let Some(w) = waker {
            w.wake(); // through the loop's thread-safe queue
        }
        true
    }

    /// Whether the task has finished (returned, panicked or was cancelled).
    pub fn done(&self) -> bool {
        self.shared.slot.is_finished()
    }
}

impl<T> std::future::Future for ConcurrentFuture<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.shared
            .slot
            .poll_take(cx)
            .map(|v| v.unwrap_or_else(|| Err(TaskError::Cancelled(Cancelled::new(None)))))
    }
}

impl<T> fmt::Debug for ConcurrentFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentFuture")
            .field("done", &self.done())
            .finish()
    }
}

/// Shuts the loop's default executor down without waiting (loop close).
pub(crate) fn shutdown_on_close(pool: Option<ThreadPoolExecutor>) {
    if let Some(p) = pool {
        p.shutdown(false);
    }
}
