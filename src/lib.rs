//! corio: an asyncio-style event loop for Rust, built by hand.
//!
//! A selector on raw epoll, a loop with a ready queue and timers, hand-written `Future` and
//! `Task` types, and sockets, with no runtime crate underneath. Names follow asyncio so an
//! asyncio user finds each concept; DESIGN.md (in the repository) explains how it works.
//!
//! ```
//! use std::time::Duration;
//!
//! async fn say_after(delay: Duration, what: &str) -> String {
//!     corio::sleep(delay).await;
//!     what.to_string()
//! }
//!
//! let out = corio::run(async {
//!     let hello = corio::spawn(say_after(Duration::from_millis(10), "hello"));
//!     let world = corio::spawn(say_after(Duration::from_millis(20), "world"));
//!     format!("{} {}", hello.await.unwrap(), world.await.unwrap())
//! });
//! assert_eq!(out, "hello world");
//! ```
//!
//! Modules, bottom up (each module's docs name its asyncio counterpart and layer):
//!
//! | layer | module | asyncio |
//! | --- | --- | --- |
//! | 0 | `sys` (private: the only FFI) | C underneath |
//! | 1 | [`selector`] | `selectors` |
//! | 2 | [`EventLoop`], [`events`] | `base_events`, `events` |
//! | 3 | [`Future`], [`tasks`], [`exceptions`] | `futures`, `tasks`, `exceptions` |
//! | 3 | [`contextvars`], [`debug`] | `contextvars`; debug mode, `all_tasks` |
//! | 3 | [`executor`], [`signal`] | `run_in_executor`, `to_thread`, `concurrent.futures`; `add_signal_handler` |
//! | 4 | [`net`] | `sock_*`, `selector_events` |
//! | 4 | [`transports`], [`protocols`], [`server`], [`streams`], [`pipes`] | `transports`, `protocols`, `streams`, `unix_events` |
//! | 4 | [`subprocess`], [`getaddrinfo`] | `subprocess`, child watchers; `loop.getaddrinfo` |
//! | 5 | [`run`], [`Runner`] | `runners` |

#![doc(test(attr(deny(warnings))))]

#[allow(unsafe_code)]
pub(crate) mod sys;

pub mod selector;

pub(crate) mod base_events;
pub mod events;

pub mod exceptions;
pub mod futures;
pub mod taskgroups;
pub mod tasks;
pub mod timeouts;

pub mod contextvars;
pub mod debug;

pub mod queues;
// asyncio's locks.py, under the name tokio users look for.
#[path = "locks.rs"]
pub mod sync;

pub mod net;

// Issue 5: transports, protocols, streams.
pub mod pipes;
pub mod protocols;
pub mod server;
pub mod streams;
pub mod transports;

mod dns;
pub mod executor;
pub mod signal;
pub mod subprocess;

mod runners;

// Issue 9: hooks for the fuzz targets in fuzz/ (feature `fuzzing`; not API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzzing.rs"]
pub mod __fuzz;

pub use crate::base_events::{
    Builder, EventLoop, ExceptionContext, Remote, default_exception_handler, get_running_loop,
    try_get_running_loop,
};
pub use crate::contextvars::ContextVar;
pub use crate::dns::{getaddrinfo, getnameinfo};
pub use crate::events::{Handle, TimerHandle};
pub use crate::exceptions::{Cancelled, FutureError, InvalidStateError, TaskError, TimeoutError};
pub use crate::executor::{run_coroutine_threadsafe, to_thread};
pub use crate::futures::Future;
pub use crate::runners::{Runner, run, run_with};
pub use crate::taskgroups::{TaskGroup, TaskGroupError};
pub use crate::tasks::{
    ReturnWhen, Task, TaskRef, all_tasks, as_completed, catch_cancel, create_task, current_task,
    gather, shield, sleep, sleep_until, spawn, wait, yield_now,
};
pub use crate::timeouts::{Timeout, timeout, timeout_at, wait_for};

/// Raises this process's soft limit on open files (`RLIMIT_NOFILE`) to the hard limit, as a
/// server expecting thousands of connections should. Returns `(old, new)` soft limits.
///
/// ```
/// let (old, new) = corio::raise_open_file_limit().unwrap();
/// assert!(new >= old);
/// ```
pub fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    sys::raise_nofile_limit()
}
