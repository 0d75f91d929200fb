//! Readiness multiplexing: register file descriptors, wait until some are ready.
//!
//! asyncio counterpart: the `selectors` module (`EpollSelector`, `DefaultSelector`).
//! Layer 1: uses `sys` (the only FFI), used by the event loop ([`crate::EventLoop`]).
//!
//! A [`Selector`] knows nothing about callbacks, tasks or timers. It maps a file descriptor to
//! a [`Token`] the caller chose, and [`Selector::select`] reports which tokens became ready.
//! Two backends implement the same trait:
//!
//! | backend | mechanism | where |
//! | --- | --- | --- |
//! | [`EpollSelector`] | raw `epoll(7)` through `libc`, edge-triggered | Linux, Android (the default there) |
//! | [`PollingSelector`] | the `polling` crate: epoll, kqueue, event ports, poll | every Unix (the default off Linux) |
//!
//! # The contract every backend keeps
//!
//! - **Register once.** With [`Trigger::Edge`] an fd is registered once for its lifetime with
//!   the interest it will ever need; no syscall re-arms it after an event. The caller must
//!   therefore *drain*: keep reading (or writing) until the OS says `WouldBlock`, or until a
//!   short read, because the next event only comes with the next edge.
//! - **Level mode** ([`Trigger::Level`]) reports an fd on every `select` while it stays ready;
//!   asyncio's `add_reader` callbacks need it.
//! - **Errors and hang-ups are readiness.** `EPOLLHUP`/`EPOLLERR` are reported as an event with
//!   [`Event::is_error`] or [`Event::is_read_closed`] set, and also as readable and writable,
//!   so the waiting party tries its syscall and sees the error or EOF. In edge mode they are
//!   reported once per edge, never in a busy loop.
//! - **EINTR is retried** inside `select` with the remaining timeout; a tracer attaching or a
//!   signal handler running never surfaces as an error or as an early timeout.
//! - **Timeouts round up** to the backend's resolution (milliseconds for epoll), so a select
//!   never returns before the requested time has passed unless an event or a wake-up came.
//! - **[`Selector::notify`] is thread-safe** and interrupts a blocked `select` (asyncio's
//!   self-pipe; here an eventfd, or a pipe where eventfd is missing). The notification is
//!   consumed inside `select` and never reported as an event.
//! - **Closed fds.** Unregister an fd before closing it. Tokens are the caller's, so a caller
//!   that may see an event from a batch gathered before an fd was closed and its number reused
//!   must make tokens unique over time (the loop adds a generation to each token).

mod epoll;
mod polling;

pub use self::epoll::EpollSelector;
pub use self::polling::PollingSelector;

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The caller's name for a registered file descriptor, reported back in each [`Event`].
///
/// `Token(usize::MAX)` is reserved for the selector's own wake-up descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub usize);

impl Token {
    /// The token the selectors reserve for their internal wake-up descriptor.
    pub const WAKEUP: Token = Token(usize::MAX);
}

/// Which readiness a registration asks for. Never empty.
///
/// ```
/// use corio::selector::Interest;
/// let both = Interest::READABLE.add(Interest::WRITABLE);
/// assert!(both.is_readable() && both.is_writable());
/// assert_eq!(both.remove(Interest::WRITABLE), Some(Interest::READABLE));
/// assert_eq!(Interest::READABLE.remove(Interest::READABLE), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

impl Interest {
    /// Interest in the fd becoming readable (asyncio's `EVENT_READ`).
    pub const READABLE: Interest = Interest(1);
    /// Interest in the fd becoming writable (asyncio's `EVENT_WRITE`).
    pub const WRITABLE: Interest = Interest(2);
    /// Both.
    pub const BOTH: Interest = Interest(3);

    /// The union of two interests.
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// `self` without `other`, or `None` if nothing is left (an empty interest does not exist).
    pub const fn remove(self, other: Interest) -> Option<Interest> {
        match self.0 & !other.0 {
            0 => None,
            bits => Some(Interest(bits)),
        }
    }

    /// Whether readable readiness is asked for.
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }

    /// Whether writable readiness is asked for.
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            _ => f.write_str("WRITABLE"),
        }
    }
}

/// How readiness is reported: once per change (edge) or on every select while ready (level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Reported once each time the fd *becomes* ready (`EPOLLET`, kqueue `EV_CLEAR`).
    /// The caller must drain until `WouldBlock`. This is what corio's own sockets use.
    Edge,
    /// Reported on every select while the fd is ready, like `selectors` in Python.
    Level,
}

/// One readiness report: which token, and what happened to its fd.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The token given at registration.
    pub token: Token,
    /// Bit set of [`Event::READABLE`], [`Event::WRITABLE`], [`Event::ERROR`], [`Event::READ_CLOSED`].
    pub flags: u8,
}

impl Event {
    /// The fd can be read (or accepted from) without blocking, or a read reports EOF/an error.
    pub const READABLE: u8 = 1;
    /// The fd can be written without blocking, or a write reports an error.
    pub const WRITABLE: u8 = 2;
    /// The fd has a pending error (`EPOLLERR`); the next syscall on it reports it.
    pub const ERROR: u8 = 4;
    /// The peer closed its writing side or hung up (`EPOLLRDHUP`/`EPOLLHUP`): a read returns EOF
    /// once the buffered data is consumed.
    pub const READ_CLOSED: u8 = 8;

    /// Whether the fd is readable (this includes errors and hang-ups).
    pub fn is_readable(&self) -> bool {
        self.flags & Self::READABLE != 0
    }
    /// Whether the fd is writable (this includes errors).
    pub fn is_writable(&self) -> bool {
        self.flags & Self::WRITABLE != 0
    }
    /// Whether the kernel reported an error condition.
    pub fn is_error(&self) -> bool {
        self.flags & Self::ERROR != 0
    }
    /// Whether the peer closed its side (EOF follows the buffered data).
    pub fn is_read_closed(&self) -> bool {
        self.flags & Self::READ_CLOSED != 0
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("token", &self.token.0)
            .field("readable", &self.is_readable())
            .field("writable", &self.is_writable())
            .field("error", &self.is_error())
            .field("read_closed", &self.is_read_closed())
            .finish()
    }
}

/// A reusable buffer of [`Event`]s filled by [`Selector::select`].
///
/// Allocated once with a capacity (the most events one select returns) and reused every turn,
/// so selecting allocates nothing.
pub struct Events {
    list: Vec<Event>,
    capacity: usize,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) raw_epoll: Vec<libc::epoll_event>,
    pub(crate) raw_polling: Option<::polling::Events>,
}

impl Events {
    /// A buffer that receives at most `capacity` events per select (at least 1).
    pub fn with_capacity(capacity: usize) -> Events {
        let capacity = capacity.max(1);
        Events {
            list: Vec::with_capacity(capacity),
            capacity,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            raw_epoll: Vec::new(),
            raw_polling: None,
        }
    }

    /// The most events one select reports.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The events of the last select.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.list.iter()
    }

    /// How many events the last select reported.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the last select reported nothing (a timeout or a wake-up).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Forget the events (backends call this before filling).
    pub fn clear(&mut self) {
        self.list.clear();
    }

    pub(crate) fn push(&mut self, event: Event) {
        self.list.push(event);
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.list.iter()).finish()
    }
}

/// A readiness multiplexer (asyncio's `selectors.BaseSelector`).
///
/// `&self` everywhere: registration and [`notify`](Selector::notify) may come from any
/// thread; `select` is called by one thread at a time (the loop's).
pub trait Selector: fmt::Debug + Send + Sync {
    /// Start watching `fd` for `interest`, reporting it as `token`.
    ///
    /// The fd must stay open until [`unregister`](Selector::unregister) is called for it.
    fn register(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()>;

    /// Change the interest, token or trigger of a registered fd.
    fn modify(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()>;

    /// Stop watching `fd`. Call it before closing the fd.
    fn unregister(&self, fd: RawFd) -> io::Result<()>;

    /// Wait until at least one registered fd is ready, the timeout passes (`None`: forever),
    /// or [`notify`](Selector::notify) is called. Fills `events` (cleared first) and never
    /// reports the wake-up itself. EINTR is retried with the remaining time.
    fn select(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()>;

    /// Interrupt a `select` that is blocked now or the next one to start. Thread-safe.
    fn notify(&self) -> io::Result<()>;

    /// A short name for reports: `"epoll"` or `"polling"`.
    fn name(&self) -> &'static str;
}

/// Which backend a new loop uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SelectorKind {
    /// Raw epoll on Linux and Android, the `polling` crate elsewhere.
    #[default]
    Default,
    /// [`EpollSelector`] (Linux and Android only).
    Epoll,
    /// [`PollingSelector`].
    Polling,
}

impl SelectorKind {
    /// Reads `CORIO_SELECTOR` (`epoll` or `polling`); anything else means [`SelectorKind::Default`].
    pub fn from_env() -> SelectorKind {
        match std::env::var("CORIO_SELECTOR").as_deref() {
            Ok("epoll") => SelectorKind::Epoll,
            Ok("polling") => SelectorKind::Polling,
            _ => SelectorKind::Default,
        }
    }

    /// Creates a selector of this kind.
    pub fn create(self) -> io::Result<Box<dyn Selector>> {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            SelectorKind::Default | SelectorKind::Epoll => Ok(Box::new(EpollSelector::new()?)),
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            SelectorKind::Default => Ok(Box::new(PollingSelector::new()?)),
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            SelectorKind::Epoll => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the epoll selector exists only on Linux and Android",
            )),
            SelectorKind::Polling => Ok(Box::new(PollingSelector::new()?)),
        }
    }
}
