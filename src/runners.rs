//! `run` and `Runner`: make a loop, run a main task on it, clean up.
//!
//! asyncio counterpart: `runners.py` (`asyncio.run`, `asyncio.Runner`). Layer 5.

use std::cell::Cell;
use std::rc::Rc;

use crate::base_events::{Builder, EventLoop, try_get_running_loop};
use crate::exceptions::TaskError;

/// Runs `main` as a task on a new event loop until it completes, then cancels every task
/// still running, waits for them to finish their cleanup, closes the loop, and returns
/// `main`'s output (asyncio's `asyncio.run`). A panic in `main` is resumed here.
///
/// Panics if called from inside a running loop.
///
/// ```
/// let answer = corio::run(async {
///     corio::sleep(std::time::Duration::from_millis(1)).await;
///     42
/// });
/// assert_eq!(answer, 42);
/// ```
#[track_caller]
pub fn run<F>(main: F) -> F::Output
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let runner = Runner::new().expect("corio::run: cannot create an event loop");
    let out = runner.run(main);
    runner.close();
    out
}

/// [`run`] on a loop made by `builder`: asyncio's `asyncio.run(main, debug=True)` is
/// `corio::run_with(EventLoop::builder().debug(true), main)`.
///
/// ```
/// let debug_on = corio::run_with(corio::EventLoop::builder().debug(true), async {
///     corio::get_running_loop().get_debug()
/// });
/// assert!(debug_on);
/// ```
#[track_caller]
pub fn run_with<F>(builder: Builder, main: F) -> F::Output
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let runner =
        Runner::with_builder(builder).expect("corio::run_with: cannot create an event loop");
    let out = runner.run(main);
    runner.close();
    out
}

/// A loop that runs several main futures in turn, then is closed (asyncio's `Runner`).
///
/// ```
/// let runner = corio::Runner::new().unwrap();
/// assert_eq!(runner.run(async { 1 }), 1);
/// assert_eq!(runner.run(async { 2 }), 2); // same loop, second run
/// runner.close();
/// ```
#[derive(Debug)]
pub struct Runner {
    ev: EventLoop,
}

impl Runner {
    /// A runner with a new default loop.
    pub fn new() -> std::io::Result<Runner> {
        Ok(Runner {
            ev: EventLoop::new()?,
        })
    }

    /// A runner with a loop built from `builder` (selector, debug, virtual time).
    pub fn with_builder(builder: Builder) -> std::io::Result<Runner> {
        Ok(Runner {
            ev: builder.build()?,
        })
    }

    /// The runner's loop.
    pub fn get_loop(&self) -> EventLoop {
        self.ev.clone()
    }

    /// Runs `main` as a task named `main` until it completes and returns its output.
    /// Resumes its panic; panics if it was cancelled.
    #[track_caller]
    pub fn run<F>(&self, main: F) -> F::Output
    where
        F: std::future::Future + 'static,
        F::Output: 'static,
    {
        assert!(
            try_get_running_loop().is_none(),
            "corio::run() cannot be called from a running event loop"
        );
        let mut task = self.ev.create_task_named("main", main);
        match self.ev.run_until_complete(&mut task) {
            Ok(v) => v,
            Err(TaskError::Panicked(p)) => std::panic::resume_unwind(p),
            Err(TaskError::Cancelled(c)) => panic!("the main task was {c}"),
        }
    }

    /// Cancels the tasks still running, lets them finish their cleanup, waits (up to 300 s,
    /// as asyncio) for the default executor's threads to finish their jobs, closes the loop.
    pub fn close(self) {
        cancel_all_tasks(&self.ev);
        if !self.ev.is_closed() && self.ev.core.default_executor.borrow().is_some() {
            let ev = self.ev.clone();
            let timeout = crate::executor::SHUTDOWN_TIMEOUT;
            if !self.ev.run_until_complete(async move {
                ev.shutdown_default_executor(Some(timeout)).await
            }) {
                log::warn!("corio: the default executor did not finish within {timeout:?}");
            }
        }
        self.ev.close();
    }
}

/// Cancels every unfinished task and runs the loop until each one is done.
fn cancel_all_tasks(ev: &EventLoop) {
    if ev.is_closed() {
        return;
    }
    let tasks = ev.all_tasks();
    if tasks.is_empty() {
        return;
    }
    let all_done = ev.create_future::<()>();
    let left = Rc::new(Cell::new(tasks.len()));
    for t in &tasks {
        t.cancel(None);
        let (left, all_done) = (left.clone(), all_done.clone());
        t.add_done_callback(move |_| {
            left.set(left.get() - 1);
            if left.get() == 0 {
                let _ = all_done.set_result(());
            }
        });
    }
    let _ = ev.run_until_complete(all_done);
}
