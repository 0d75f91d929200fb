//! The raw-epoll backend: [`EpollSelector`].
//!
//! asyncio counterpart: `selectors.EpollSelector` (asyncio's default selector on Linux).
//! Layer 1: uses [`crate::sys`] (`epoll_*` calls and the wake-up descriptor); used by the loop
//! through the [`Selector`](super::Selector) trait.
//!
//! The flag mapping, and why, is documented on [`EpollSelector`].

#[cfg(any(target_os = "linux", target_os = "android"))]
pub use self::linux::EpollSelector;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub use self::unsupported::EpollSelector;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::io;
    use std::os::fd::RawFd;
    use std::time::{Duration, Instant};

    use crate::selector::{Event, Events, Interest, Selector, Token, Trigger};
    use crate::sys::epoll::Epoll;
    use crate::sys::notify::Notifier;

    const EPOLLIN: u32 = libc::EPOLLIN as u32;
    const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
    const EPOLLERR: u32 = libc::EPOLLERR as u32;
    const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
    const EPOLLRDHUP: u32 = libc::EPOLLRDHUP as u32;
    const EPOLLET: u32 = libc::EPOLLET as u32;

    /// A [`Selector`] on raw `epoll(7)`: the default on Linux and Android.
    ///
    /// # Flags
    ///
    /// | registration | epoll flags |
    /// | --- | --- |
    /// | [`Trigger::Edge`] | `EPOLLIN` and/or `EPOLLOUT` per interest, `EPOLLRDHUP`, `EPOLLET` |
    /// | [`Trigger::Level`] | the same without `EPOLLET`; `EPOLLRDHUP` only with readable interest |
    ///
    /// | epoll reports | [`Event`] flags |
    /// | --- | --- |
    /// | `EPOLLIN` | `READABLE` |
    /// | `EPOLLOUT` | `WRITABLE` |
    /// | `EPOLLERR` | `ERROR`, `READABLE`, `WRITABLE` |
    /// | `EPOLLHUP` | `READ_CLOSED`, `READABLE`, `WRITABLE` |
    /// | `EPOLLRDHUP` | `READ_CLOSED`, `READABLE` |
    ///
    /// `EPOLLRDHUP` is left out of *level* registrations that only want writability: after the
    /// peer's `shutdown(SHUT_WR)` it stays asserted and would turn every `select` of a writer
    /// waiting for buffer space into a busy loop. In edge mode it is one edge, reported once.
    ///
    /// # Waiting
    ///
    /// `select` passes `epoll_wait` a timeout rounded *up* to whole milliseconds (so it never
    /// returns before the deadline unless something happened), clamped to `i32::MAX` ms (it
    /// waits again for longer timeouts), and retries `EINTR` with the time left until an
    /// [`Instant`] deadline. It reuses the raw buffer inside [`Events`], so it allocates
    /// nothing after the first call with a given buffer. Tokens may be any value except
    /// [`Token::WAKEUP`], which `register` refuses with [`io::ErrorKind::InvalidInput`].
    ///
    /// # The wake-up descriptor
    ///
    /// [`EpollSelector::new`] registers a wake-up descriptor edge-triggered under
    /// [`Token::WAKEUP`]: an eventfd, or a non-blocking pipe where a sandbox refuses
    /// `eventfd(2)`. [`Selector::notify`] writes to it and `select` swallows its events. The
    /// eventfd is never read on wake-up, because every write is a new edge (mio does the same);
    /// the pipe is drained each time its event is seen, so the next write is an edge again.
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use corio::selector::{EpollSelector, Events, Selector};
    /// use std::time::Duration;
    ///
    /// let selector = EpollSelector::new()?;
    /// let mut events = Events::with_capacity(64);
    /// selector.notify()?;
    /// selector.select(&mut events, Some(Duration::from_secs(5)))?; // returns at once
    /// assert!(events.is_empty()); // the wake-up is never reported
    /// # }
    /// # std::io::Result::Ok(())
    /// ```
    #[derive(Debug)]
    pub struct EpollSelector {
        epoll: Epoll,
        notifier: Notifier,
    }

    impl EpollSelector {
        /// A new epoll instance with its wake-up descriptor registered.
        pub fn new() -> io::Result<EpollSelector> {
            EpollSelector::with_notifier(Notifier::new()?)
        }

        /// A selector waking up through `notifier` (tests force the pipe fallback with it).
        pub(crate) fn with_notifier(notifier: Notifier) -> io::Result<EpollSelector> {
            let epoll = Epoll::new()?;
            epoll.add(notifier.fd(), EPOLLIN | EPOLLET, Token::WAKEUP.0 as u64)?;
            Ok(EpollSelector { epoll, notifier })
        }
    }

    /// The `epoll_event.events` bits for a registration.
    fn epoll_flags(interest: Interest, trigger: Trigger) -> u32 {
        let mut flags = 0;
        if interest.is_readable() {
            flags |= EPOLLIN | EPOLLRDHUP;
        }
        if interest.is_writable() {
            flags |= EPOLLOUT;
        }
        match trigger {
            Trigger::Edge => flags | EPOLLRDHUP | EPOLLET,
            Trigger::Level => flags,
        }
    }

    /// The [`Event`] flags for the `epoll_event.events` bits the kernel reported.
    fn event_flags(bits: u32) -> u8 {
        let mut flags = 0;
        if bits & EPOLLIN != 0 {
            flags |= Event::READABLE;
        }
        if bits & EPOLLOUT != 0 {
            flags |= Event::WRITABLE;
        }
        if bits & EPOLLERR != 0 {
            flags |= Event::ERROR | Event::READABLE | Event::WRITABLE;
        }
        if bits & EPOLLHUP != 0 {
            flags |= Event::READ_CLOSED | Event::READABLE | Event::WRITABLE;
        }
        if bits & EPOLLRDHUP != 0 {
            flags |= Event::READ_CLOSED | Event::READABLE;
        }
        flags
    }

    /// `epoll_wait`'s timeout: -1 for none, else milliseconds rounded *up* (so the wait is never
    /// shorter than asked) and clamped to `i32::MAX` (the caller loops for longer waits).
    fn timeout_ms(timeout: Option<Duration>) -> i32 {
        match timeout {
            None => -1,
            Some(timeout) => {
                i32::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
            }
        }
    }

    /// The `u64` stored in the kernel for a token, refusing the reserved wake-up token.
    fn token_data(token: Token) -> io::Result<u64> {
        if token == Token::WAKEUP {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Token::WAKEUP is reserved for the selector's wake-up descriptor",
            ));
        }
        Ok(token.0 as u64)
    }

    impl Selector for EpollSelector {
        fn register(
            &self,
            fd: RawFd,
            token: Token,
            interest: Interest,
            trigger: Trigger,
        ) -> io::Result<()> {
            self.epoll
                .add(fd, epoll_flags(interest, trigger), token_data(token)?)
        }

        fn modify(
            &self,
            fd: RawFd,
            token: Token,
            interest: Interest,
            trigger: Trigger,
        ) -> io::Result<()> {
            self.epoll
                .modify(fd, epoll_flags(interest, trigger), token_data(token)?)
        }

        fn unregister(&self, fd: RawFd) -> io::Result<()> {
            // ENOENT/EBADF (the fd was closed first, which already removed it from the
            // interest list) are returned too: the caller decides whether that matters.
            self.epoll.delete(fd)
        }

        fn select(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
            events.clear();
            let capacity = events.capacity();
            if events.raw_epoll.len() != capacity {
                events
                    .raw_epoll
                    .resize(capacity, libc::epoll_event { events: 0, u64: 0 });
            }
            // `None` if there is no timeout, or if it is too far away for an `Instant`: both mean
            // "wait until something happens".
            let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
            loop {
                let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let n = match self
                    .epoll
                    .wait(&mut events.raw_epoll, timeout_ms(remaining))
                {
                    Ok(n) => n,
                    // A signal handler ran: wait again for the time that is left.
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(err),
                };
                if n == 0 {
                    match deadline {
                        // Millisecond rounding or a clamped (> 24 days) timeout: not done yet.
                        Some(deadline) if Instant::now() < deadline => continue,
                        Some(_) => return Ok(()),
                        // No deadline and nothing ready cannot normally happen; wait again.
                        None => continue,
                    }
                }
                for i in 0..n {
                    // Copies: `epoll_event` is packed on x86-64, so no references to fields.
                    let raw = events.raw_epoll[i];
                    let (bits, data) = (raw.events, raw.u64);
                    if data == Token::WAKEUP.0 as u64 {
                        if self.notifier.drains_on_wake() {
                            self.notifier.drain()?;
                        }
                        continue;
                    }
                    events.push(Event {
                        token: Token(data as usize),
                        flags: event_flags(bits),
                    });
                }
                // Events, or only the wake-up: either way `select` is done.
                return Ok(());
            }
        }

        fn notify(&self) -> io::Result<()> {
            self.notifier.notify()
        }

        fn name(&self) -> &'static str {
            "epoll"
        }
    }

    #[cfg(test)]
    mod tests {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;
        use std::time::{Duration, Instant};

        use super::{EpollSelector, timeout_ms};
        use crate::selector::{Events, Interest, Selector, Token, Trigger};
        use crate::sys::notify::Notifier;

        #[test]
        fn timeouts_round_up_to_whole_milliseconds_and_clamp() {
            assert_eq!(timeout_ms(None), -1);
            assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
            assert_eq!(timeout_ms(Some(Duration::from_nanos(1))), 1);
            assert_eq!(timeout_ms(Some(Duration::from_micros(1500))), 2);
            assert_eq!(timeout_ms(Some(Duration::from_millis(30))), 30);
            assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), i32::MAX);
        }

        #[test]
        fn pipe_fallback_wakes_up_repeatedly_and_is_never_reported() {
            let selector = EpollSelector::with_notifier(Notifier::pipe().unwrap()).unwrap();
            let mut events = Events::with_capacity(8);
            for _ in 0..3 {
                for _ in 0..10 {
                    selector.notify().unwrap();
                }
                let start = Instant::now();
                selector
                    .select(&mut events, Some(Duration::from_secs(5)))
                    .unwrap();
                assert!(start.elapsed() < Duration::from_secs(1));
                assert!(events.is_empty());
            }
            // Drained: the next select waits for its whole timeout.
            let start = Instant::now();
            selector
                .select(&mut events, Some(Duration::from_millis(30)))
                .unwrap();
            assert!(start.elapsed() >= Duration::from_millis(30));
        }

        #[test]
        fn pipe_fallback_still_reports_registered_fds() {
            let selector = EpollSelector::with_notifier(Notifier::pipe().unwrap()).unwrap();
            let (a, mut b) = UnixStream::pair().unwrap();
            selector
                .register(a.as_raw_fd(), Token(3), Interest::READABLE, Trigger::Edge)
                .unwrap();
            b.write_all(b"x").unwrap();
            selector.notify().unwrap();
            let mut events = Events::with_capacity(8);
            selector
                .select(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            let tokens: Vec<_> = events.iter().map(|e| e.token).collect();
            assert_eq!(tokens, [Token(3)]);
            selector.unregister(a.as_raw_fd()).unwrap();
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod unsupported {
    use std::convert::Infallible;
    use std::io;
    use std::os::fd::RawFd;
    use std::time::Duration;

    use crate::selector::{Events, Interest, Selector, Token, Trigger};

    /// A [`Selector`] on raw `epoll(7)`: Linux and Android only.
    ///
    /// On this platform the type exists so that code naming it compiles, but it cannot be
    /// built: [`EpollSelector::new`] returns [`io::ErrorKind::Unsupported`]. Use
    /// [`crate::selector::PollingSelector`].
    #[derive(Debug)]
    pub struct EpollSelector {
        never: Infallible,
    }

    impl EpollSelector {
        /// Always fails with [`io::ErrorKind::Unsupported`] off Linux and Android.
        pub fn new() -> io::Result<EpollSelector> {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the epoll selector exists only on Linux and Android",
            ))
        }
    }

    impl Selector for EpollSelector {
        fn register(&self, _: RawFd, _: Token, _: Interest, _: Trigger) -> io::Result<()> {
            match self.never {}
        }
        fn modify(&self, _: RawFd, _: Token, _: Interest, _: Trigger) -> io::Result<()> {
            match self.never {}
        }
        fn unregister(&self, _: RawFd) -> io::Result<()> {
            match self.never {}
        }
        fn select(&self, _: &mut Events, _: Option<Duration>) -> io::Result<()> {
            match self.never {}
        }
        fn notify(&self) -> io::Result<()> {
            match self.never {}
        }
        fn name(&self) -> &'static str {
            "epoll"
        }
    }
}
