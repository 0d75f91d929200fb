//! The error types of the loop, futures and tasks.
//!
//! asyncio counterpart: `exceptions.py` (`CancelledError`, `InvalidStateError`) and the
//! exceptions a task can end with. Layer 2/3: used by every layer above the selector.
//!
//! Rust has no exceptions, so what asyncio raises comes back here as a value:
//! - [`Cancelled`] is asyncio's `CancelledError`, with the message given to `cancel(msg)`;
//! - [`TaskError`] is what awaiting a [`Task`](crate::Task) gives when the task did not return
//!   normally: it was cancelled, or it panicked (asyncio: the exception it raised);
//! - [`FutureError`] is what awaiting a [`Future`](crate::Future) gives when it was cancelled
//!   or had an error set;
//! - [`InvalidStateError`] is asyncio's error of the same name (a result set twice, a result
//!   read too early);
//! - [`TimeoutError`] is what [`wait_for`](crate::wait_for), [`Timeout`](crate::Timeout) and
//!   [`as_completed`](crate::as_completed) give when their deadline passed.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// asyncio's `CancelledError`: the work was cancelled, with the message given to `cancel`.
///
/// ```
/// let c = corio::Cancelled::new(Some("shutting down".into()));
/// assert_eq!(c.message(), Some("shutting down"));
/// assert_eq!(c.to_string(), "cancelled: shutting down");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Cancelled {
    msg: Option<Arc<str>>,
}

impl Cancelled {
    /// A cancellation carrying an optional message.
    pub fn new(msg: Option<String>) -> Cancelled {
        Cancelled {
            msg: msg.map(Arc::from),
        }
    }

    pub(crate) fn from_arc(msg: Option<Arc<str>>) -> Cancelled {
        Cancelled { msg }
    }

    /// The message passed to `cancel(msg)`, if any.
    pub fn message(&self) -> Option<&str> {
        self.msg.as_deref()
    }

    pub(crate) fn arc_message(&self) -> Option<Arc<str>> {
        self.msg.clone()
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.msg {
            Some(m) => write!(f, "cancelled: {m}"),
            None => f.write_str("cancelled"),
        }
    }
}

impl StdError for Cancelled {}

impl From<Cancelled> for std::io::Error {
    /// A cancellation seen by I/O code becomes an `io::Error` of kind `Interrupted` that keeps
    /// the [`Cancelled`] message as its source text.
    fn from(c: Cancelled) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::Interrupted, c.to_string())
    }
}

/// Why a [`Task`](crate::Task) did not produce its output.
pub enum TaskError {
    /// The task was cancelled (asyncio: awaiting it raises `CancelledError`).
    Cancelled(Cancelled),
    /// The task's future panicked; the payload is what `panic!` was given.
    Panicked(Box<dyn Any + Send + 'static>),
}

impl TaskError {
    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled(_))
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked(_))
    }

    /// The panic payload, for `std::panic::resume_unwind`. Panics if the task was cancelled.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self {
            TaskError::Panicked(p) => p,
            TaskError::Cancelled(c) => panic!("into_panic on a cancelled task ({c})"),
        }
    }

    /// The panic message, when the payload is a string (as `panic!("...")` makes it).
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            TaskError::Panicked(p) => panic_payload_str(p.as_ref()),
            TaskError::Cancelled(_) => None,
        }
    }
}

/// The text of a panic payload, if it is a `&str` or a `String`.
pub(crate) fn panic_payload_str(p: &(dyn Any + Send)) -> Option<&str> {
    p.downcast_ref::<&'static str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled(c) => f.debug_tuple("Cancelled").field(c).finish(),
            TaskError::Panicked(_) => f
                .debug_tuple("Panicked")
                .field(&self.panic_message().unwrap_or("<non-string payload>"))
                .finish(),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled(c) => write!(f, "task {c}"),
            TaskError::Panicked(_) => match self.panic_message() {
                Some(m) => write!(f, "task panicked: {m}"),
                None => f.write_str("task panicked"),
            },
        }
    }
}

impl StdError for TaskError {}

/// asyncio's `InvalidStateError`: an operation that the future's state does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidStateError(pub &'static str);

impl fmt::Display for InvalidStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid state: {}", self.0)
    }
}

impl StdError for InvalidStateError {}

/// Why a [`Future`](crate::Future) has no result.
#[derive(Clone, Debug)]
pub enum FutureError {
    /// The future was cancelled.
    Cancelled(Cancelled),
    /// An error was set with [`Future::set_exception`](crate::Future::set_exception).
    Exception(std::rc::Rc<dyn StdError + 'static>),
    /// The result was asked for before the future was done.
    InvalidState(InvalidStateError),
}

impl FutureError {
    /// Whether the future was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, FutureError::Cancelled(_))
    }
}

impl fmt::Display for FutureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FutureError::Cancelled(c) => write!(f, "future {c}"),
            FutureError::Exception(e) => write!(f, "future failed: {e}"),
            FutureError::InvalidState(e) => e.fmt(f),
        }
    }
}

impl StdError for FutureError {}

/// asyncio's `TimeoutError`: a deadline passed before the work finished.
///
/// [`wait_for`](crate::wait_for) and [`Timeout::run`](crate::Timeout::run) return it after
/// the work was cancelled and its cleanup finished; [`as_completed`](crate::as_completed)
/// yields it once and leaves the rest running. It converts to an `io::Error` of kind
/// `TimedOut`, so `?` works in I/O code.
///
/// ```
/// use std::time::Duration;
/// corio::run(async {
///     let slow = corio::sleep(Duration::from_secs(3600));
///     let err = corio::wait_for(slow, Duration::from_millis(1)).await.unwrap_err();
///     assert_eq!(err, corio::TimeoutError);
///     assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::TimedOut);
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct TimeoutError;

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl StdError for TimeoutError {}

impl From<TimeoutError> for std::io::Error {
    fn from(e: TimeoutError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}
