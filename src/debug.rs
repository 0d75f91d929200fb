//! Debug mode and introspection: what the loop reports, and a printable picture of the loop.
//!
//! asyncio counterpart: debug mode (`PYTHONASYNCIODEBUG=1`, `asyncio.run(debug=True)`,
//! `loop.set_debug`), `loop.slow_callback_duration`, creation tracebacks, `all_tasks()`, and
//! the 3.14 `python -m asyncio ps`. Layer 2/3: reads the loop core and the task headers.
//! DESIGN.md, "Debug mode and introspection", explains the choices.
//!
//! # Debug mode
//!
//! Switch it on with `CORIO_DEBUG=1` in the environment, with
//! [`Builder::debug`](crate::Builder::debug) (and [`corio::run_with`](crate::run_with)), or
//! with [`EventLoop::set_debug`](crate::EventLoop::set_debug). Then:
//!
//! - every task step and callback is timed; one that holds the loop for
//!   [`slow_callback_duration`](crate::EventLoop::set_slow_callback_duration) (100 ms) or more is
//!   reported at WARN with the task's name, where it was spawned and how long it took;
//! - tasks, futures and callbacks remember where they were created (`#[track_caller]`: the
//!   caller's file and line), and every report about them shows it;
//! - each task's poll count and total poll time are recorded ([`TaskInfo`]);
//! - loop methods check that they are called on the loop's thread (see below).
//!
//! Always on, as in asyncio: "Task exception was never retrieved", "Future exception was never
//! retrieved", "Task was destroyed but it is pending!", and unclosed transports and stream
//! writers. Every report goes to the loop's exception handler
//! ([`EventLoop::set_exception_handler`](crate::EventLoop::set_exception_handler)); the default
//! handler logs it through the `log` facade at the report's
//! [`level`](crate::ExceptionContext::level), or writes it to stderr when no logger is
//! installed.
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//!
//! let ev = corio::EventLoop::builder().debug(true).build().unwrap();
//! ev.set_slow_callback_duration(Duration::from_millis(20));
//! let reports = Rc::new(RefCell::new(Vec::new()));
//! let sink = reports.clone();
//! ev.set_exception_handler(Some(move |_: &corio::EventLoop, ctx: &corio::ExceptionContext| {
//!     sink.borrow_mut().push(ctx.clone());
//! }));
//! ev.run_until_complete(async {
//!     let t = corio::get_running_loop().create_task_named("blocker", async {
//!         std::thread::sleep(Duration::from_millis(30)); // blocks the whole loop
//!     });
//!     t.await.unwrap();
//! });
//! let r = &reports.borrow()[0];
//! assert!(r.message.starts_with("Executing a task step took 0.0"));
//! assert_eq!(r.task.as_deref(), Some("blocker"));
//! assert!(r.created_at.unwrap().file().ends_with(".rs")); // this doctest's file and line
//! ```
//!
//! # Introspection
//!
//! [`EventLoop::dump`](crate::EventLoop::dump) returns a [`LoopDump`]: the ready queue, the
//! timers, the registered fds and every task with its [`TaskState`]. Print it (it implements
//! `Display`) from a task, a callback or a signal handler's callback. [`Task::info`](crate::Task::info)
//! and [`TaskRef::info`](crate::TaskRef::info) describe one task.
//!
//! # Loop methods and threads
//!
//! asyncio checks in debug mode that `call_soon` is called on the loop's thread. In corio the
//! compiler checks it, always: [`EventLoop`], [`Task`](crate::Task) and
//! [`Future`](crate::Future) are `!Send`, so they cannot reach another thread at all:
//!
//! ```compile_fail,E0277
//! let ev = corio::EventLoop::new().unwrap();
//! let handle = ev.clone();
//! std::thread::spawn(move || {
//!     handle.call_soon(|| ()); // error: `Rc<..>` cannot be sent between threads safely
//! });
//! ```
//!
//! ```compile_fail,E0277
//! corio::run(async {
//!     let task = corio::spawn(async { 1 });
//!     std::thread::spawn(move || drop(task)); // error: `Task<i32>` is not `Send`
//! });
//! ```
//!
//! ```compile_fail,E0277
//! let ev = corio::EventLoop::new().unwrap();
//! let fut = ev.create_future::<u32>();
//! std::thread::spawn(move || fut.set_result(1)); // error: `Future<u32>` is not `Send`
//! ```
//!
//! Other threads use the thread-safe door, [`Remote`](crate::Remote) (`Send + Sync`):
//!
//! ```
//! let ev = corio::EventLoop::new().unwrap();
//! let remote = ev.remote();
//! std::thread::spawn(move || remote.call_soon_threadsafe(|| ())).join().unwrap();
//! ```
//!
//! The runtime check asyncio does is there too, in debug mode, for code that defeats the
//! compiler with `unsafe`: `call_soon`, `call_later`, `call_at`, `create_task`,
//! `add_reader`/`add_writer` then panic with a message naming the method and pointing to
//! `call_soon_threadsafe`.

use std::fmt;
use std::os::fd::RawFd;
use std::panic::Location;
use std::rc::Rc;
use std::time::Duration;

use crate::base_events::{
    Core, EventLoop, ExceptionContext, Ready, default_exception_handler, with_current,
};
use crate::events::HandleDyn;
use crate::tasks::raw::{self, Header, Outcome};

/// Where a task is in its life, as [`TaskInfo`] reports it.
///
/// ```
/// use corio::debug::TaskState;
/// corio::run(async {
///     let me = corio::current_task().unwrap();
///     assert_eq!(me.info().state, TaskState::Running);
///     let t = corio::spawn(async {});
///     assert_eq!(t.info().state, TaskState::Scheduled);
///     corio::yield_now().await;
///     assert_eq!(t.info().state, TaskState::Returned);
///     assert!(t.info().state.is_done());
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskState {
    /// Being polled right now: the task that asked for the information.
    Running,
    /// In the ready queue: it will be polled in this turn of the loop or the next.
    Scheduled,
    /// Suspended at an `.await`, waiting for a wake-up (I/O, a timer, another task...).
    Waiting,
    /// Finished by returning a value.
    Returned,
    /// Finished cancelled.
    Cancelled,
    /// Finished by panicking.
    Panicked,
}

impl TaskState {
    /// Whether the task has finished.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            TaskState::Returned | TaskState::Cancelled | TaskState::Panicked
        )
    }

    /// The state's name in lower case, as the dump prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Scheduled => "scheduled",
            TaskState::Waiting => "waiting",
            TaskState::Returned => "returned",
            TaskState::Cancelled => "cancelled",
            TaskState::Panicked => "panicked",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A description of one task: an entry of [`LoopDump::tasks`], or what
/// [`Task::info`](crate::Task::info) returns.
///
/// `polls` and `poll_time` are counted while debug mode is on (timing every step costs two
/// clock reads, which debug mode alone pays); `created_at` is recorded when the task is
/// spawned in debug mode.
///
/// ```
/// corio::run(async {
///     let t = corio::spawn(async { corio::yield_now().await });
///     let info = t.info();
///     assert_eq!(info.state, corio::debug::TaskState::Scheduled);
///     assert_eq!(info.name, format!("Task-{}", t.id()));
///     t.await.unwrap();
/// });
/// ```
#[derive(Clone, Debug)]
pub struct TaskInfo {
    /// The task's id, unique among its loop's tasks.
    pub id: u64,
    /// The name given at spawn or with `set_name`, else `Task-N`.
    pub name: String,
    /// Where the task is in its life.
    pub state: TaskState,
    /// Outstanding cancel requests (asyncio's `cancelling()`).
    pub cancelling: u32,
    /// How many times the task was polled (debug mode only).
    pub polls: u64,
    /// The total time spent polling it (debug mode only).
    pub poll_time: Duration,
    /// Where it was spawned (debug mode only).
    pub created_at: Option<&'static Location<'static>>,
}

impl TaskInfo {
    pub(crate) fn of(h: &Header) -> TaskInfo {
        let state = match h.outcome.get() {
            Outcome::Returned => TaskState::Returned,
            Outcome::Cancelled => TaskState::Cancelled,
            Outcome::Panicked => TaskState::Panicked,
            Outcome::Pending if raw::with_current_header(|c| std::ptr::eq(c, h)) == Some(true) => {
                TaskState::Running
            }
            Outcome::Pending if h.is_scheduled() => TaskState::Scheduled,
            Outcome::Pending => TaskState::Waiting,
        };
        let (polls, poll_time, created_at) = h.peek_extra(|e| {
            e.map_or((0, Duration::ZERO, None), |e| {
                (e.polls, e.poll_time, e.created_at)
            })
        });
        TaskInfo {
            id: h.id,
            name: h.name(),
            state,
            cancelling: u32::from(h.requests.get()),
            polls,
            poll_time,
            created_at,
        }
    }
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} [{}]", self.id, self.name, self.state)?;
        if self.cancelling > 0 {
            write!(f, " cancelling={}", self.cancelling)?;
        }
        if self.polls > 0 {
            write!(
                f,
                " polls={} poll_time={:.6}s",
                self.polls,
                self.poll_time.as_secs_f64()
            )?;
        }
        if let Some(at) = self.created_at {
            write!(f, " created at {at}")?;
        }
        Ok(())
    }
}

/// One fd registered with the loop, in a [`LoopDump`].
///
/// ```
/// corio::run(async {
///     use std::os::fd::AsRawFd;
///     let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let fds = corio::get_running_loop().dump().fds;
///     let me = fds.iter().find(|f| f.fd == listener.as_raw_fd()).unwrap();
///     assert!(me.owned && !me.reading, "registered, nobody accepting yet");
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdInfo {
    /// The file descriptor.
    pub fd: RawFd,
    /// One of corio's own sockets (registered once, edge-triggered), rather than an fd
    /// watched by `add_reader`/`add_writer` or a `sock_*` call.
    pub owned: bool,
    /// A task or callback waits for it to be readable.
    pub reading: bool,
    /// A task or callback waits for it to be writable.
    pub writing: bool,
}

/// A picture of a loop at one moment, from [`EventLoop::dump`]. Print it with `{}`.
///
/// ```
/// corio::run(async {
///     let _t = corio::get_running_loop()
///         .create_task_named("sleeper", corio::sleep(std::time::Duration::from_secs(60)));
///     corio::yield_now().await; // let the sleeper start and park on its timer
///     let dump = corio::get_running_loop().dump();
///     assert_eq!(dump.timers, 1);
///     let text = dump.to_string();
///     assert!(text.contains("sleeper [waiting]"), "{text}");
///     assert!(text.contains("main [running]"), "{text}");
/// });
/// ```
#[derive(Clone, Debug)]
pub struct LoopDump {
    /// The selector backend: `"epoll"` or `"polling"`.
    pub selector: &'static str,
    /// Whether the loop is running.
    pub running: bool,
    /// Whether the loop was closed.
    pub closed: bool,
    /// Whether debug mode is on.
    pub debug: bool,
    /// Task steps waiting in the ready queue.
    pub ready_tasks: usize,
    /// Callbacks waiting in the ready queue.
    pub ready_callbacks: usize,
    /// Timers scheduled (sleeps and `call_later`/`call_at` callbacks).
    pub timers: usize,
    /// How long until the earliest timer is due, if any.
    pub next_timer: Option<Duration>,
    /// The fds registered with the selector.
    pub fds: Vec<FdInfo>,
    /// Every unfinished task, by state then id.
    pub tasks: Vec<TaskInfo>,
}

impl LoopDump {
    /// Length of the ready queue (task steps and callbacks).
    pub fn ready(&self) -> usize {
        self.ready_tasks + self.ready_callbacks
    }

    /// How many tasks are in `state`.
    pub fn count(&self, state: TaskState) -> usize {
        self.tasks.iter().filter(|t| t.state == state).count()
    }
}

impl fmt::Display for LoopDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.closed {
            "closed"
        } else if self.running {
            "running"
        } else {
            "stopped"
        };
        writeln!(
            f,
            "event loop: {state}, {} selector, debug {}",
            self.selector,
            if self.debug { "on" } else { "off" }
        )?;
        writeln!(
            f,
            "  ready queue: {} ({} task steps, {} callbacks)",
            self.ready(),
            self.ready_tasks,
            self.ready_callbacks
        )?;
        match self.next_timer {
            Some(d) => writeln!(
                f,
                "  timers: {}, next due in {:.3}s",
                self.timers,
                d.as_secs_f64()
            )?,
            None => writeln!(f, "  timers: {}", self.timers)?,
        }
        writeln!(f, "  fds: {}", self.fds.len())?;
        for fd in &self.fds {
            let waits = match (fd.reading, fd.writing) {
                (true, true) => "waiting to read and write",
                (true, false) => "waiting to read",
                (false, true) => "waiting to write",
                (false, false) => "idle",
            };
            let kind = if fd.owned { "socket" } else { "watched fd" };
            writeln!(f, "    fd {}: {kind}, {waits}", fd.fd)?;
        }
        write!(f, "  tasks: {}", self.tasks.len())?;
        let states = [TaskState::Running, TaskState::Scheduled, TaskState::Waiting];
        let counts: Vec<String> = states
            .iter()
            .map(|s| format!("{} {s}", self.count(*s)))
            .collect();
        writeln!(f, " ({})", counts.join(", "))?;
        for t in &self.tasks {
            writeln!(f, "    {t}")?;
        }
        Ok(())
    }
}

impl EventLoop {
    /// A picture of the loop now: ready queue, timers, registered fds and every unfinished
    /// task with its state (see [`LoopDump`]). Cheap enough to call from a signal handler's
    /// callback in production; polls and poll times are filled in debug mode.
    ///
    /// ```
    /// let ev = corio::EventLoop::new().unwrap();
    /// let _t = ev.create_task_named("worker", async {});
    /// let dump = ev.dump();
    /// assert_eq!(dump.ready_tasks, 1);
    /// assert!(dump.to_string().contains("worker [scheduled]"));
    /// ```
    pub fn dump(&self) -> LoopDump {
        let core = &self.core;
        let (ready_tasks, ready_callbacks) =
            core.ready
                .borrow()
                .iter()
                .fold((0, 0), |(t, c), item| match item {
                    Ready::Task(_) => (t + 1, c),
                    Ready::Handle(_) | Ready::Remote(_) => (t, c + 1),
                });
        let now = core.now();
        let next_timer = core
            .timers
            .borrow_mut()
            .next_deadline()
            .map(|at| at.saturating_duration_since(now));
        let fds = core
            .io
            .borrow()
            .describe()
            .into_iter()
            .map(|(fd, owned, reading, writing)| FdInfo {
                fd,
                owned,
                reading,
                writing,
            })
            .collect();
        let mut tasks: Vec<TaskInfo> = core
            .tasks
            .borrow()
            .live()
            .iter()
            .map(|t| t.info())
            .collect();
        tasks.sort_by_key(|t| (t.state, t.id));
        LoopDump {
            selector: self.selector_name(),
            running: self.is_running(),
            closed: self.is_closed(),
            debug: self.get_debug(),
            ready_tasks,
            ready_callbacks,
            timers: core.timers.borrow().len(),
            next_timer,
            fds,
            tasks,
        }
    }
}

/// Reports `ctx` through the handler of the loop running on this thread, or the default
/// handler when none runs.
pub(crate) fn report_anywhere(ctx: ExceptionContext) {
    let mut ctx = Some(ctx);
    with_current(|core| core.report(ctx.take().expect("reported once")));
    if let Some(ctx) = ctx {
        default_exception_handler(&ctx);
    }
}

/// For `Drop` impls of types with an explicit `close` (transports, servers, stream writers):
/// reports, at WARN, that one was dropped without being closed (asyncio's `ResourceWarning:
/// unclosed transport`). `kind` names the type (`"transport"`, `"StreamWriter"`), `detail`
/// identifies the object (an fd, a peer address), `created_at` is where it was made if known.
/// Goes to the running loop's exception handler (the default handler when no loop runs).
/// Nothing is reported while the thread is panicking: then nothing was forgotten, the stack
/// is being unwound.
///
/// ```text
/// impl Drop for Transport {
///     fn drop(&mut self) {
///         if !self.closed {
///             crate::debug::report_unclosed("transport", &format_args!("fd={}", self.fd), self.created_at);
///             // ...then close it anyway
///         }
///     }
/// }
/// ```
pub(crate) fn report_unclosed(
    kind: &str,
    detail: &dyn fmt::Display,
    created_at: Option<&'static Location<'static>>,
) {
    if std::thread::panicking() {
        return;
    }
    report_anywhere(
        ExceptionContext::warning(format!("unclosed {kind} {detail}"))
            .created(created_at)
            .with_error(format!("{kind} dropped without close()")),
    );
}

/// Debug mode, after a task step that took `took`: counts it and reports a slow one.
pub(crate) fn after_task_step(core: &Rc<Core>, h: &Header, took: Duration) {
    let created = h.with_extra(|e| {
        e.polls += 1;
        e.poll_time += took;
        e.created_at
    });
    if took >= core.slow_callback_duration.get() {
        core.report(
            ExceptionContext::warning(format!(
                "Executing a task step took {:.3} seconds",
                took.as_secs_f64()
            ))
            .with_task(h.name())
            .created(created),
        );
    }
}

/// Debug mode, after a callback that took `took`: reports a slow one.
pub(crate) fn after_callback(core: &Rc<Core>, h: &dyn HandleDyn, took: Duration) {
    if took >= core.slow_callback_duration.get() {
        core.report(
            ExceptionContext::warning(format!(
                "Executing a callback took {:.3} seconds",
                took.as_secs_f64()
            ))
            .created(h.created_at()),
        );
    }
}

/// Debug mode: panics unless called on the loop's thread (asyncio's `_check_thread`).
#[inline(never)]
pub(crate) fn check_thread(core: &Core, what: &str) {
    if std::thread::current().id() != core.shared.owner {
        panic!(
            "{what}: non-thread-safe operation invoked on an event loop from a thread other than \
             the loop's; use call_soon_threadsafe (EventLoop::remote() gives a Remote that other \
             threads may hold)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn unclosed_resources_are_reported_with_where_they_were_made() {
        let ev = EventLoop::new().unwrap();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = seen.clone();
        ev.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
            sink.borrow_mut().push(ctx.clone());
        }));
        let here = Location::caller();
        ev.run_until_complete(async {
            report_unclosed("transport", &"fd=7", Some(here));
        });
        let seen = seen.borrow();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].message, "unclosed transport fd=7");
        assert_eq!(seen[0].level, log::Level::Warn);
        assert_eq!(seen[0].created_at, Some(here));
        assert!(seen[0].to_string().contains("created at src/debug.rs:"));
    }
}
