//! The event loop: a ready queue, a timer queue, a selector, and one turn that ties them.
//!
//! asyncio counterpart: `base_events.py` (`BaseEventLoop`, `_run_once`) and
//! `selector_events.py` (`BaseSelectorEventLoop`). Layer 2: uses [`crate::selector`], used by
//! futures, tasks and sockets. Read DESIGN.md, "One turn of the loop", alongside.
//!
//! [`EventLoop`] is a cheap handle (`Rc`) to the loop's [`Core`]. Everything here runs on the
//! loop's thread; the only doors in from other threads are [`Remote`] (from
//! [`EventLoop::remote`]) and task wakers, both through [`remote::Shared`].

pub(crate) mod io;
pub(crate) mod remote;
pub(crate) mod timers;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::os::fd::RawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::events::{Handle, HandleDyn, OnceHandle, RepeatHandle, TimerHandle};
use crate::exceptions::panic_payload_str;
use crate::selector::{Events, SelectorKind};
use crate::tasks::raw::{RawTask, TaskTable};
use crate::tasks::{self, Task, TaskRef};

use self::io::{Direction, IoTable};
pub use self::remote::Remote;
use self::remote::{RemoteItem, Shared};
use self::timers::{Due, TimerQueue, deadline_after};

/// How many events one select may return; more simply wait for the next turn.
const EVENTS_CAPACITY: usize = 1024;

/// A ready queue with more capacity than this is shrunk when it is mostly empty.
const READY_SHRINK_ABOVE: usize = 4096;

/// asyncio's default `slow_callback_duration` (debug mode).
pub(crate) const DEFAULT_SLOW_CALLBACK: Duration = Duration::from_millis(100);

/// One entry of the ready queue: a task step or a callback handle.
pub(crate) enum Ready {
    Task(Arc<dyn RawTask>),
    Handle(Rc<dyn HandleDyn>),
    /// A `call_soon_threadsafe` callback.
    Remote(Box<dyn FnOnce() + Send + 'static>),
}

/// The loop's clock: the OS monotonic clock, or a virtual one for tests that jumps to the
/// next timer whenever the loop would otherwise wait for it.
pub(crate) enum Clock {
    Monotonic,
    Virtual(Cell<Instant>),
}

type ExceptionHandler = Rc<dyn Fn(&EventLoop, &ExceptionContext)>;

/// The state of one loop. Only ever touched on the loop's thread.
pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ready: RefCell<VecDeque<Ready>>,
    pub(crate) timers: RefCell<TimerQueue>,
    pub(crate) io: RefCell<IoTable>,
    pub(crate) tasks: RefCell<TaskTable>,
    events: RefCell<Events>,
    remote_buf: RefCell<Vec<RemoteItem>>,
    clock: Clock,
    running: Cell<bool>,
    stopping: Cell<bool>,
    closed: Cell<bool>,
    exception_handler: RefCell<Option<ExceptionHandler>>,
    pub(crate) debug: Cell<bool>,
    pub(crate) slow_callback_duration: Cell<Duration>,
    next_task_id: Cell<u64>,
    /// Signal handlers and waiters of this loop (`add_signal_handler`, `signal::wait`).
    pub(crate) signals: RefCell<crate::signal::LoopSignals>,
    /// The executor `run_in_executor(None, ..)` uses, made on first use.
    pub(crate) default_executor: RefCell<Option<crate::executor::ThreadPoolExecutor>>,
}

thread_local! {
    /// The loop running on this thread, if any (asyncio's `_running_loop`).
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Runs `f` with the loop running on this thread, or returns `None`.
pub(crate) fn with_current<R>(f: impl FnOnce(&Rc<Core>) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow().as_ref().map(f))
}

/// Queues `task` on the loop running on this thread if it is the task's loop; otherwise
/// hands the task back for the thread-safe door.
pub(crate) fn push_if_local(task: Arc<dyn RawTask>) -> Option<Arc<dyn RawTask>> {
    CURRENT.with(|c| match c.try_borrow() {
        Ok(cur) => match cur.as_ref() {
            Some(core) if Arc::ptr_eq(&core.shared, &task.header().shared) => {
                core.push_ready(Ready::Task(task));
                None
            }
            _ => Some(task),
        },
        Err(_) => Some(task),
    })
}

/// Like [`with_current`] but panics with asyncio's message when no loop runs.
pub(crate) fn expect_current<R>(what: &str, f: impl FnOnce(&Rc<Core>) -> R) -> R {
    with_current(f).unwrap_or_else(|| {
        panic!("{what}: no running event loop (call it from code run by corio::run or EventLoop::run_until_complete)")
    })
}

/// Sets CURRENT for the duration of a run and restores it after, even on panic.
struct EnterGuard {
    prev: Option<Rc<Core>>,
}

impl EnterGuard {
    fn enter(core: &Rc<Core>) -> EnterGuard {
        let prev = CURRENT.with(|c| c.replace(Some(core.clone())));
        if let Some(p) = &prev {
            if !Rc::ptr_eq(p, core) {
                CURRENT.with(|c| c.replace(prev.clone()));
                panic!("Cannot run the event loop while another loop is running on this thread");
            }
        }
        EnterGuard { prev }
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        CURRENT.with(|c| c.replace(prev));
    }
}

/// What the loop's exception handler is told (asyncio's `context` dict).
///
/// Build one with struct update syntax to report your own problems through
/// [`EventLoop::call_exception_handler`]:
///
/// ```
/// let ctx = corio::ExceptionContext {
///     message: "cache refresh failed".into(),
///     error: Some("timed out".into()),
///     ..Default::default()
/// };
/// assert_eq!(ctx.level, log::Level::Error);
/// assert_eq!(ctx.to_string(), "cache refresh failed: timed out");
/// ```
#[derive(Debug, Clone)]
pub struct ExceptionContext {
    /// What happened, e.g. `"Exception in callback"` or `"Task exception was never retrieved"`.
    pub message: String,
    /// The task concerned, by name.
    pub task: Option<String>,
    /// The panic message, when a panic is being reported.
    pub panic: Option<String>,
    /// The error, when an error value (not a panic) is being reported, e.g. the one set on a
    /// [`Future`](crate::Future) that nobody retrieved.
    pub error: Option<String>,
    /// Where the task, future or callback concerned was created (kept in debug mode; see
    /// [`crate::debug`]).
    pub created_at: Option<&'static std::panic::Location<'static>>,
    /// How serious it is: `Error` (the default) for lost panics and errors and destroyed
    /// tasks, `Warn` for slow callbacks and unclosed resources. The default handler logs at
    /// this level.
    pub level: log::Level,
}

impl Default for ExceptionContext {
    fn default() -> Self {
        ExceptionContext {
            message: String::new(),
            task: None,
            panic: None,
            error: None,
            created_at: None,
            level: log::Level::Error,
        }
    }
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (&self.task, self.created_at) {
            (Some(t), Some(at)) => write!(f, " (task {t}, created at {at})")?,
            (Some(t), None) => write!(f, " (task {t})")?,
            (None, Some(at)) => write!(f, " (created at {at})")?,
            (None, None) => {}
        }
        if let Some(p) = &self.panic {
            write!(f, ": {p}")?;
        }
        if let Some(e) = &self.error {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

impl ExceptionContext {
    pub(crate) fn panic(message: &str, task: Option<String>, payload: &(dyn Any + Send)) -> Self {
        ExceptionContext {
            message: message.to_string(),
            task,
            panic: Some(
                panic_payload_str(payload)
                    .unwrap_or("<non-string panic payload>")
                    .to_string(),
            ),
            ..Default::default()
        }
    }

    /// A report at WARN (slow callbacks, unclosed resources).
    pub(crate) fn warning(message: String) -> Self {
        ExceptionContext {
            message,
            level: log::Level::Warn,
            ..Default::default()
        }
    }

    /// The same report about the task named `name`.
    pub(crate) fn with_task(mut self, name: String) -> Self {
        self.task = Some(name);
        self
    }

    /// The same report with the error `error`.
    pub(crate) fn with_error(mut self, error: String) -> Self {
        self.error = Some(error);
        self
    }

    /// The same report, saying where its subject was created (if known).
    pub(crate) fn created(mut self, at: Option<&'static std::panic::Location<'static>>) -> Self {
        self.created_at = at;
        self
    }
}

/// Options for a new loop.
///
/// ```
/// use corio::selector::SelectorKind;
/// let ev = corio::EventLoop::builder().selector(SelectorKind::Polling).build().unwrap();
/// assert_eq!(ev.selector_name(), "polling");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    selector: Option<SelectorKind>,
    virtual_time: bool,
    debug: Option<bool>,
}

impl Builder {
    /// Which selector backend to use (default: `CORIO_SELECTOR` from the environment, else
    /// raw epoll on Linux).
    pub fn selector(mut self, kind: SelectorKind) -> Builder {
        self.selector = Some(kind);
        self
    }

    /// Use a virtual clock: time stands still while there is work, and jumps straight to the
    /// next timer when the loop would wait for it. For tests of timer logic.
    pub fn virtual_time(mut self, on: bool) -> Builder {
        self.virtual_time = on;
        self
    }

    /// Debug mode (default: `CORIO_DEBUG=1` in the environment).
    pub fn debug(mut self, on: bool) -> Builder {
        self.debug = Some(on);
        self
    }

    /// Creates the loop.
    pub fn build(self) -> std::io::Result<EventLoop> {
        let kind = self.selector.unwrap_or_else(SelectorKind::from_env);
        let selector = kind.create()?;
        let now = Instant::now();
        let debug = self
            .debug
            .unwrap_or_else(|| std::env::var_os("CORIO_DEBUG").is_some_and(|v| v == "1"));
        let core = Core {
            shared: Arc::new(Shared::new(selector)),
            ready: RefCell::new(VecDeque::with_capacity(256)),
            timers: RefCell::new(TimerQueue::new(now)),
            io: RefCell::new(IoTable::default()),
            tasks: RefCell::new(TaskTable::default()),
            events: RefCell::new(Events::with_capacity(EVENTS_CAPACITY)),
            remote_buf: RefCell::new(Vec::new()),
            clock: if self.virtual_time {
                Clock::Virtual(Cell::new(now))
            } else {
                Clock::Monotonic
            },
            running: Cell::new(false),
            stopping: Cell::new(false),
            closed: Cell::new(false),
            exception_handler: RefCell::new(None),
            debug: Cell::new(debug),
            slow_callback_duration: Cell::new(DEFAULT_SLOW_CALLBACK),
            next_task_id: Cell::new(1),
            signals: RefCell::default(),
            default_executor: RefCell::new(None),
        };
        Ok(EventLoop {
            core: Rc::new(core),
            owner: true,
        })
    }
}

impl Core {
    pub(crate) fn now(&self) -> Instant {
        match &self.clock {
            Clock::Monotonic => Instant::now(),
            Clock::Virtual(t) => t.get(),
        }
    }

    pub(crate) fn next_task_id(&self) -> u64 {
        let id = self.next_task_id.get();
        self.next_task_id.set(id + 1);
        id
    }

    pub(crate) fn push_ready(&self, item: Ready) {
        self.ready.borrow_mut().push_back(item);
    }

    pub(crate) fn call_soon_dyn(&self, h: Rc<dyn HandleDyn>) {
        self.push_ready(Ready::Handle(h));
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Reports through the exception handler (asyncio's `call_exception_handler`).
    pub(crate) fn report(self: &Rc<Core>, ctx: ExceptionContext) {
        let handler = self.exception_handler.borrow().clone();
        let ev = EventLoop {
            core: self.clone(),
            owner: false,
        };
        match handler {
            Some(h) => {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| h(&ev, &ctx))) {
                    // asyncio logs an error raised by the handler itself and carries on.
                    default_exception_handler(&ExceptionContext::panic(
                        "Unhandled error in exception handler",
                        None,
                        p.as_ref(),
                    ));
                    default_exception_handler(&ctx);
                }
            }
            None => default_exception_handler(&ctx),
        }
    }

    /// One turn of the loop (asyncio's `_run_once`): poll for I/O with a timeout derived from
    /// the ready queue and the timers, queue what became ready, then run exactly the callbacks
    /// that were queued when the turn began running them (the snapshot rule).
    fn run_once(self: &Rc<Core>, main_woken: Option<&AtomicBool>) {
        // 1. How long may we block?
        let busy = !self.ready.borrow().is_empty()
            || self.stopping.get()
            || main_woken.is_some_and(|w| w.load(Ordering::Acquire));
        let mut timeout = if busy {
            Some(Duration::ZERO)
        } else {
            let next = self.timers.borrow_mut().next_deadline();
            next.map(|at| at.saturating_duration_since(self.now()))
        };
        if let (Clock::Virtual(t), Some(d)) = (&self.clock, timeout) {
            // Virtual time: jump to the next deadline instead of sleeping until it.
            t.set(t.get() + d);
            timeout = Some(Duration::ZERO);
        }

        // 2. Tell other threads we may sleep, then re-check their queue (see remote.rs).
        let will_block = timeout != Some(Duration::ZERO);
        if will_block {
            self.shared.sleeping.store(true, Ordering::SeqCst);
            if self.shared.pending.load(Ordering::SeqCst) {
                timeout = Some(Duration::ZERO);
            }
        }

        // 3. Poll and queue what the selector reports.
        {
            let mut events = self.events.borrow_mut();
            let result = self.shared.selector.select(&mut events, timeout);
            if will_block {
                self.shared.sleeping.store(false, Ordering::SeqCst);
            }
            if let Err(e) = result {
                // EINTR is retried inside the selector; anything else (EBADF, EINVAL) means
                // the selector itself is broken and no turn can make progress.
                panic!(
                    "corio: the {} selector failed: {e}",
                    self.shared.selector.name()
                );
            }
            for event in events.iter() {
                let wake = self.io.borrow_mut().dispatch(&*self.shared.selector, event);
                // Plain `if let`s: an iterator over the two-slot arrays cost ~10% of a round trip.
                let io::Wakeups {
                    wakers: [reader, writer],
                    callbacks: [reader_cb, writer_cb],
                } = wake;
                if let Some(w) = reader {
                    w.wake();
                }
                if let Some(w) = writer {
                    w.wake();
                }
                if let Some(h) = reader_cb {
                    self.push_ready(Ready::Handle(h));
                }
                if let Some(h) = writer_cb {
                    self.push_ready(Ready::Handle(h));
                }
            }
        }

        // 4. Work handed in by other threads.
        self.drain_remote();

        // 5. Timers that are due (never early: due means deadline <= now).
        let now = self.now();
        loop {
            let due = self.timers.borrow_mut().pop_due(now);
            match due {
                Some(Due::Wake(w)) => w.wake(),
                Some(Due::Callback(h)) => self.push_ready(Ready::Handle(h)),
                None => break,
            }
        }

        // 6. Run what is ready now; what these schedule waits for the next turn.
        let n = self.ready.borrow().len();
        for _ in 0..n {
            let item = self.ready.borrow_mut().pop_front();
            match item {
                Some(Ready::Task(t)) => t.run(self),
                Some(Ready::Handle(h)) => self.run_handle(&h),
                Some(Ready::Remote(f)) => self.run_remote(f),
                None => break,
            }
        }

        // After a burst (say a million spawns) give the queue's memory back.
        let mut ready = self.ready.borrow_mut();
        if ready.capacity() > READY_SHRINK_ABOVE && ready.len() < ready.capacity() / 8 {
            let keep = (ready.len() * 2).max(READY_SHRINK_ABOVE / 4);
            ready.shrink_to(keep);
        }
    }

    fn run_remote(self: &Rc<Core>, f: Box<dyn FnOnce() + Send + 'static>) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
            self.report(ExceptionContext::panic(
                "Exception in callback (call_soon_threadsafe)",
                None,
                p.as_ref(),
            ));
        }
    }

    fn run_handle(self: &Rc<Core>, h: &Rc<dyn HandleDyn>) {
        if h.cancelled() {
            return;
        }
        let started = self.debug.get().then(Instant::now);
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| h.run())) {
            self.report(
                ExceptionContext::panic("Exception in callback", None, p.as_ref())
                    .created(h.created_at()),
            );
        }
        if let Some(t0) = started {
            crate::debug::after_callback(self, &**h, t0.elapsed());
        }
    }

    fn drain_remote(self: &Rc<Core>) {
        let mut buf = std::mem::take(&mut *self.remote_buf.borrow_mut());
        self.shared.drain_into(&mut buf);
        for item in buf.drain(..) {
            match item {
                RemoteItem::Task(t) => self.push_ready(Ready::Task(t)),
                // Run straight from the box: no `Rc` handle (nobody can cancel it).
                RemoteItem::Callback(f) => self.push_ready(Ready::Remote(f)),
            }
        }
        *self.remote_buf.borrow_mut() = buf;
    }

    /// Closes the loop: drops every task's future (on this thread), every queued callback,
    /// timer and registration, and refuses further cross-thread work.
    fn close(self: &Rc<Core>) {
        if self.closed.get() {
            return;
        }
        assert!(
            !self.running.get(),
            "Cannot close a running event loop (call stop() first)"
        );
        self.closed.set(true);
        let _enter = EnterGuard::enter(self);
        // Dropping futures may wake, schedule or spawn more; repeat until quiet.
        for _ in 0..16 {
            let tasks = self.tasks.borrow_mut().take_all();
            for t in &tasks {
                t.destroy_pending(self);
            }
            let ready: Vec<Ready> = self.ready.borrow_mut().drain(..).collect();
            let remote = self.shared.close();
            self.timers.borrow_mut().clear();
            let parked = self.io.borrow_mut().clear(&*self.shared.selector);
            // Tell the callbacks of owned fds (transports, servers) that the loop is gone:
            // they drop their protocol and close their fd, breaking their `Rc` cycles.
            for w in &parked {
                for h in w.callbacks.iter().flatten() {
                    h.cancel();
                }
            }
            let quiet =
                tasks.is_empty() && ready.is_empty() && remote.is_empty() && parked.is_empty();
            drop((tasks, ready, remote, parked));
            if quiet {
                break;
            }
        }
        // Signal handlers go (their fds were unregistered with the rest just above), and the
        // default executor is shut down without waiting (asyncio's `close`).
        drop(self.signals.take());
        crate::executor::shutdown_on_close(self.default_executor.take());
    }
}

/// The handler used when none is set (asyncio's `default_exception_handler`): logs `ctx`
/// through the `log` facade at `ctx.level` (ERROR, or WARN for slow callbacks and unclosed
/// resources), or writes it to stderr, prefixed `corio: `, when no logger is installed.
///
/// A custom handler can end with a call to this one to keep the logging.
pub fn default_exception_handler(ctx: &ExceptionContext) {
    // `max_level` stays `Off` until a logger is installed (and sets a level): then the
    // logger and its filters decide; without one, stderr is the last resort (as Python's
    // `logging.lastResort`).
    if log::max_level() != log::LevelFilter::Off {
        log::log!(ctx.level, "{ctx}");
    } else {
        eprintln!("corio: {ctx}");
    }
}

/// The waker of the future driven by `run_until_complete`: a flag the loop checks each turn.
struct MainWaker {
    woken: AtomicBool,
    shared: Arc<Shared>,
    owner: std::thread::ThreadId,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.woken.swap(true, Ordering::AcqRel) {
            return;
        }
        if std::thread::current().id() != self.owner {
            // Make the loop leave select: a no-op through the thread-safe door.
            self.shared.push(RemoteItem::Callback(Box::new(|| {})));
        }
    }
}

/// An asyncio-style event loop (asyncio's `AbstractEventLoop`), one per thread.
///
/// Create one with [`EventLoop::new`] (or [`corio::run`](crate::run), which makes, runs and
/// closes one). The value `new` returns **owns** the loop: dropping it closes the loop.
/// Clones (and [`get_running_loop`]) are plain handles.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// let ev = corio::EventLoop::new().unwrap();
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let (a, b, c) = (log.clone(), log.clone(), log.clone());
/// ev.call_later(Duration::from_millis(20), move || a.borrow_mut().push("later"));
/// ev.call_soon(move || b.borrow_mut().push("soon"));
/// ev.run_until_complete(async move {
///     corio::sleep(Duration::from_millis(30)).await;
///     c.borrow_mut().push("main");
/// });
/// assert_eq!(*log.borrow(), ["soon", "later", "main"]);
/// ```
pub struct EventLoop {
    pub(crate) core: Rc<Core>,
    pub(crate) owner: bool,
}

impl Clone for EventLoop {
    fn clone(&self) -> Self {
        EventLoop {
            core: self.core.clone(),
            owner: false,
        }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        if self.owner && !self.core.running.get() && !std::thread::panicking() {
            self.core.close();
        }
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.core;
        f.debug_struct("EventLoop")
            .field("running", &c.running.get())
            .field("closed", &c.closed.get())
            .field("debug", &c.debug.get())
            .field("selector", &c.shared.selector.name())
            .field("ready", &c.ready.borrow().len())
            .field("timers", &c.timers.borrow().len())
            .field("fds", &c.io.borrow().len())
            .field("tasks", &c.tasks.borrow().len())
            .finish()
    }
}

impl EventLoop {
    /// A new loop with the default selector (asyncio's `new_event_loop`).
    pub fn new() -> std::io::Result<EventLoop> {
        Builder::default().build()
    }

    /// Options for a new loop.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Which selector this loop uses: `"epoll"` or `"polling"`.
    pub fn selector_name(&self) -> &'static str {
        self.core.shared.selector.name()
    }

    /// The loop's current time on its monotonic clock (asyncio's `loop.time()`).
    #[doc(alias = "now")]
    pub fn time(&self) -> Instant {
        self.core.now()
    }

    /// Panics if the loop is closed (and, in debug mode, if called off the loop's thread).
    /// Small enough to inline: the panics are out of line.
    #[inline]
    fn check_open(&self, what: &str) {
        if self.core.debug.get() {
            crate::debug::check_thread(&self.core, what);
        }
        if self.core.closed.get() {
            closed_panic(what);
        }
    }

    /// A one-shot handle for `f`, run in the scheduler's context (see
    /// [`crate::contextvars`]) and, in debug mode, remembering the caller's location.
    #[track_caller]
    fn once_handle(&self, f: impl FnOnce() + 'static) -> Rc<dyn HandleDyn> {
        let debug = self.core.debug.get();
        if !debug && !crate::contextvars::in_use() {
            return OnceHandle::boxed(f);
        }
        // `Location::caller()` called here (not passed to `then`) is our caller's caller.
        let at = debug.then_some(std::panic::Location::caller());
        match crate::contextvars::capture_for_callback() {
            None => OnceHandle::boxed_at(f, at),
            Some(ctx) => OnceHandle::boxed_at(move || ctx.run(f), at),
        }
    }

    /// Schedules `f` to run in a later turn of the loop, after the callbacks already queued.
    /// `f` runs in a snapshot of the caller's context ([`crate::contextvars`]).
    #[track_caller]
    pub fn call_soon(&self, f: impl FnOnce() + 'static) -> Handle {
        self.check_open("call_soon");
        let inner = self.once_handle(f);
        self.core.call_soon_dyn(inner.clone());
        Handle { inner }
    }

    /// Schedules `f` to run once `delay` has passed (never earlier).
    #[track_caller]
    pub fn call_later(&self, delay: Duration, f: impl FnOnce() + 'static) -> TimerHandle {
        self.check_open("call_later");
        self.call_at(deadline_after(self.time(), delay), f)
    }

    /// Schedules `f` to run at `when` on the loop's clock. Timers with the same deadline run
    /// in the order they were scheduled.
    #[track_caller]
    pub fn call_at(&self, when: Instant, f: impl FnOnce() + 'static) -> TimerHandle {
        self.check_open("call_at");
        let inner = self.once_handle(f);
        let key = self
            .core
            .timers
            .borrow_mut()
            .insert_callback(when, inner.clone());
        TimerHandle {
            handle: Handle { inner },
            key,
            when,
            core: Rc::downgrade(&self.core),
        }
    }

    /// A `Send + Sync` handle for other threads: the thread-safe door.
    pub fn remote(&self) -> Remote {
        Remote {
            shared: self.core.shared.clone(),
        }
    }

    /// Schedules `f` through the thread-safe queue (asyncio's `call_soon_threadsafe`). Other
    /// threads use [`EventLoop::remote`] to get a handle they can hold: see
    /// [`Remote::call_soon_threadsafe`], the door for other threads.
    pub fn call_soon_threadsafe(&self, f: impl FnOnce() + Send + 'static) -> bool {
        self.core.shared.push(RemoteItem::Callback(Box::new(f)))
    }

    /// Wraps `fut` in a [`Task`] scheduled on this loop (asyncio's `loop.create_task`).
    #[track_caller]
    pub fn create_task<F>(&self, fut: F) -> Task<F::Output>
    where
        F: std::future::Future + 'static,
        F::Output: 'static,
    {
        self.check_open("create_task");
        tasks::spawn_on(&self.core, fut, None)
    }

    /// Like [`create_task`](EventLoop::create_task) with a name.
    #[track_caller]
    pub fn create_task_named<F>(&self, name: impl Into<String>, fut: F) -> Task<F::Output>
    where
        F: std::future::Future + 'static,
        F::Output: 'static,
    {
        self.check_open("create_task");
        tasks::spawn_on(&self.core, fut, Some(name.into()))
    }

    /// A new pending [`Future`](crate::Future) bound to this loop (asyncio's `create_future`).
    #[track_caller]
    pub fn create_future<T: 'static>(&self) -> crate::Future<T> {
        crate::Future::new_on(self.core.clone())
    }

    /// Whether the loop is running.
    pub fn is_running(&self) -> bool {
        self.core.running.get()
    }

    /// Whether [`close`](EventLoop::close) was called.
    pub fn is_closed(&self) -> bool {
        self.core.closed.get()
    }

    /// Asks the loop to stop after the current turn (asyncio's `loop.stop()`).
    pub fn stop(&self) {
        self.core.stopping.set(true);
    }

    /// Closes the loop: drops every pending task (reported as destroyed while pending),
    /// callback, timer and registration. Panics if the loop is running; closing twice is
    /// harmless. The owning `EventLoop` closes the loop when dropped.
    pub fn close(&self) {
        self.core.close();
    }

    fn start(&self, what: &str) -> EnterGuard {
        self.check_open(what);
        assert!(
            !self.core.running.get(),
            "{what}: This event loop is already running"
        );
        let guard = EnterGuard::enter(&self.core);
        self.core.running.set(true);
        guard
    }

    /// Runs the loop until `fut` completes and returns its output (asyncio's
    /// `run_until_complete`, tokio's `block_on`). `fut` is polled in place, so it may borrow
    /// from the caller; it is not a task. Panics (like asyncio's `RuntimeError`) if
    /// [`stop`](EventLoop::stop) is called before `fut` completes.
    #[doc(alias = "block_on")]
    pub fn run_until_complete<F: std::future::Future>(&self, fut: F) -> F::Output {
        let _guard = self.start("run_until_complete");
        let _running = RunningGuard(&self.core);
        let waker_state = Arc::new(MainWaker {
            woken: AtomicBool::new(true),
            shared: self.core.shared.clone(),
            owner: std::thread::current().id(),
        });
        let waker = Waker::from(waker_state.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            if waker_state.woken.swap(false, Ordering::AcqRel) {
                let out = tasks::poll_outside_task(|| fut.as_mut().poll(&mut cx));
                if let Poll::Ready(v) = out {
                    return v;
                }
            }
            if self.core.stopping.replace(false) {
                panic!("Event loop stopped before Future completed.");
            }
            self.core.run_once(Some(&waker_state.woken));
        }
    }

    /// Runs the loop until [`stop`](EventLoop::stop) is called (asyncio's `run_forever`).
    pub fn run_forever(&self) {
        let _guard = self.start("run_forever");
        let _running = RunningGuard(&self.core);
        loop {
            self.core.run_once(None);
            if self.core.stopping.replace(false) {
                break;
            }
        }
    }

    /// Calls `callback` whenever `fd` is readable, until [`remove_reader`](EventLoop::remove_reader)
    /// (asyncio's `add_reader`; level-triggered, as in asyncio). Replaces an earlier reader.
    ///
    /// The fd must stay open until `remove_reader` is called.
    pub fn add_reader(&self, fd: RawFd, callback: impl FnMut() + 'static) -> std::io::Result<()> {
        self.set_callback(
            "add_reader",
            fd,
            Direction::Read,
            Some(RepeatHandle::boxed(callback)),
        )
        .map(drop)
    }

    /// Stops watching `fd` for reading; returns whether a reader was registered.
    pub fn remove_reader(&self, fd: RawFd) -> bool {
        self.set_callback("remove_reader", fd, Direction::Read, None)
            .ok()
            .flatten()
            .is_some()
    }

    /// Calls `callback` whenever `fd` is writable, until [`remove_writer`](EventLoop::remove_writer).
    pub fn add_writer(&self, fd: RawFd, callback: impl FnMut() + 'static) -> std::io::Result<()> {
        self.set_callback(
            "add_writer",
            fd,
            Direction::Write,
            Some(RepeatHandle::boxed(callback)),
        )
        .map(drop)
    }

    /// Stops watching `fd` for writing; returns whether a writer was registered.
    pub fn remove_writer(&self, fd: RawFd) -> bool {
        self.set_callback("remove_writer", fd, Direction::Write, None)
            .ok()
            .flatten()
            .is_some()
    }

    /// `add_reader`, `add_writer`, `remove_reader`, `remove_writer`: `method` names the one
    /// called, for the closed-loop and wrong-thread panics.
    fn set_callback(
        &self,
        method: &str,
        fd: RawFd,
        dir: Direction,
        cb: Option<Rc<dyn HandleDyn>>,
    ) -> std::io::Result<Option<Rc<dyn HandleDyn>>> {
        self.check_open(method);
        let old =
            self.core
                .io
                .borrow_mut()
                .set_callback(&*self.core.shared.selector, fd, dir, cb)?;
        if let Some(h) = &old {
            h.cancel();
        }
        Ok(old)
    }

    /// Sets the handler for panics in callbacks and tasks and other loop reports (asyncio's
    /// `set_exception_handler`); `None` restores [`default_exception_handler`].
    pub fn set_exception_handler(
        &self,
        handler: Option<impl Fn(&EventLoop, &ExceptionContext) + 'static>,
    ) {
        *self.core.exception_handler.borrow_mut() = handler.map(|h| Rc::new(h) as ExceptionHandler);
    }

    /// Reports `ctx` through the exception handler (asyncio's `call_exception_handler`).
    pub fn call_exception_handler(&self, ctx: ExceptionContext) {
        self.core.report(ctx);
    }

    /// Turns debug mode on or off (asyncio's `set_debug`), at any time; see [`crate::debug`]
    /// for what it does. Tasks spawned while it was off have no recorded spawn site.
    pub fn set_debug(&self, on: bool) {
        self.core.debug.set(on);
    }

    /// Whether debug mode is on (asyncio's `get_debug`).
    pub fn get_debug(&self) -> bool {
        self.core.debug.get()
    }

    /// In debug mode, callbacks and task steps longer than this are reported (default 100 ms).
    pub fn set_slow_callback_duration(&self, d: Duration) {
        self.core.slow_callback_duration.set(d);
    }

    /// Every task of this loop that has not finished (asyncio's `all_tasks`).
    pub fn all_tasks(&self) -> Vec<TaskRef> {
        self.core.tasks.borrow().live()
    }
}

#[cold]
#[inline(never)]
fn closed_panic(what: &str) -> ! {
    panic!("{what}: Event loop is closed")
}

/// Clears `running` when a run ends, even by panic.
struct RunningGuard<'a>(&'a Rc<Core>);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.set(false);
        self.0.stopping.set(false);
    }
}

/// The loop running on this thread (asyncio's `get_running_loop`). Panics when none runs.
///
/// ```
/// corio::run(async {
///     let ev = corio::get_running_loop();
///     assert!(ev.is_running());
/// });
/// ```
pub fn get_running_loop() -> EventLoop {
    expect_current("get_running_loop", |core| EventLoop {
        core: core.clone(),
        owner: false,
    })
}

/// The loop running on this thread, or `None` (asyncio's `_get_running_loop`).
pub fn try_get_running_loop() -> Option<EventLoop> {
    with_current(|core| EventLoop {
        core: core.clone(),
        owner: false,
    })
}
