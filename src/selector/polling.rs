//! The portable backend: [`PollingSelector`], on the `polling` crate.
//!
//! asyncio counterpart: `selectors.DefaultSelector` on a platform without epoll
//! (`KqueueSelector`, `DevpollSelector`, `PollSelector`).
//! Layer 1: uses the `polling` crate through [`crate::sys`] (which holds its two `unsafe`
//! calls); used by the loop through the [`Selector`] trait.

use std::collections::HashMap;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use polling::{PollMode, Poller};

use super::{Event, Events, Interest, Selector, Token, Trigger};
use crate::sys::poller;

/// A [`Selector`] on the [`polling`](https://docs.rs/polling) crate: epoll on Linux and
/// Android, kqueue on macOS and the BSDs, event ports on illumos and Solaris, `poll(2)`
/// elsewhere. The default off Linux.
///
/// # Modes
///
/// | registration | backend supports it | `PollMode` |
/// | --- | --- | --- |
/// | [`Trigger::Edge`] | epoll, kqueue | `Edge` |
/// | [`Trigger::Edge`] | event ports, `poll` | `Oneshot`, re-armed after each event |
/// | [`Trigger::Level`] | epoll, kqueue, `poll` | `Level` |
/// | [`Trigger::Level`] | event ports | `Oneshot`, re-armed after each event |
///
/// **The cost of emulation.** Where a mode is emulated with `Oneshot`, the kernel disarms an
/// fd when it reports it, so at the end of every `select` each reported fd is re-armed with
/// one `modify` call (a syscall on event ports; a table update and a wake-up of `poll`),
/// under a mutex that also guards a map fd → registration kept only for this. Re-arming
/// right away means an *edge* registration that was not drained by the next `select` is
/// reported again: a spurious event that a caller draining until `WouldBlock` handles anyway.
///
/// # Events
///
/// `readable`/`writable` come from the polling event; [`polling::Event::is_interrupt`]
/// (`EPOLLHUP`, `POLLHUP`) adds `READ_CLOSED | READABLE`, and [`polling::Event::is_err`]
/// (`EPOLLERR`, `POLLERR`) adds `ERROR | READABLE | WRITABLE`. On kqueue, read and write
/// readiness of one fd can come as two events with the same token, and a peer's hang-up shows
/// only as readability (the read then returns EOF).
///
/// # Waiting and waking up
///
/// The wake-up is `polling`'s own notification, never reported as an event. `polling` may
/// return early with no event; `select` then waits again until its deadline unless a
/// [`notify`](Selector::notify) came, so a timeout is never early. `EINTR` is retried.
/// `polling` lets only one thread wait at a time (a concurrent `select` would spin), which the
/// [`Selector`] contract already requires. [`Token::WAKEUP`] is refused as a token.
///
/// ```
/// use corio::selector::{Events, PollingSelector, Selector};
/// use std::time::Duration;
///
/// let selector = PollingSelector::new()?;
/// let mut events = Events::with_capacity(64);
/// selector.notify()?;
/// selector.select(&mut events, Some(Duration::from_secs(5)))?; // returns at once
/// assert!(events.is_empty()); // the wake-up is never reported
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug)]
pub struct PollingSelector {
    poller: Poller,
    /// Set by `notify` before it wakes the poller, so that an empty wake-up can be told apart
    /// from a spurious one.
    notified: AtomicBool,
    edge: PollMode,
    level: PollMode,
    /// `Some` when a trigger is emulated with `PollMode::Oneshot`.
    rearm: Option<Mutex<Registrations>>,
}

/// What `register` was told about an fd, kept to re-arm it after a oneshot event.
#[derive(Clone, Copy, Debug)]
struct Registration {
    token: Token,
    interest: Interest,
    trigger: Trigger,
}

/// The registered fds, by fd and by token (events carry only the token).
#[derive(Debug, Default)]
struct Registrations {
    by_fd: HashMap<RawFd, Registration>,
    /// Usually one fd per token; the loop's tokens are unique.
    by_token: HashMap<Token, Vec<RawFd>>,
}

impl Registrations {
    fn insert(&mut self, fd: RawFd, registration: Registration) {
        self.remove(fd);
        self.by_fd.insert(fd, registration);
        self.by_token
            .entry(registration.token)
            .or_default()
            .push(fd);
    }

    fn remove(&mut self, fd: RawFd) {
        if let Some(old) = self.by_fd.remove(&fd) {
            if let Some(fds) = self.by_token.get_mut(&old.token) {
                fds.retain(|&other| other != fd);
                if fds.is_empty() {
                    self.by_token.remove(&old.token);
                }
            }
        }
    }
}

impl PollingSelector {
    /// A new poller (its wake-up mechanism is set up by `polling`).
    pub fn new() -> io::Result<PollingSelector> {
        PollingSelector::with_native_modes(true, true)
    }

    /// A selector that uses the backend's edge and level modes only where they exist *and* the
    /// matching flag is set: tests pass `false` to exercise the oneshot emulation on Linux.
    fn with_native_modes(edge: bool, level: bool) -> io::Result<PollingSelector> {
        let poller = Poller::new()?;
        let edge = if edge && poller.supports_edge() {
            PollMode::Edge
        } else {
            PollMode::Oneshot
        };
        let level = if level && poller.supports_level() {
            PollMode::Level
        } else {
            PollMode::Oneshot
        };
        let emulated = edge == PollMode::Oneshot || level == PollMode::Oneshot;
        Ok(PollingSelector {
            poller,
            notified: AtomicBool::new(false),
            edge,
            level,
            rearm: emulated.then(|| Mutex::new(Registrations::default())),
        })
    }

    fn mode(&self, trigger: Trigger) -> PollMode {
        match trigger {
            Trigger::Edge => self.edge,
            Trigger::Level => self.level,
        }
    }

    /// Re-arms the oneshot registrations behind the events of the last wait.
    fn rearm(&self, registrations: &Mutex<Registrations>, raw: &polling::Events) {
        let registrations = lock(registrations);
        for event in raw.iter() {
            let Some(fds) = registrations.by_token.get(&Token(event.key)) else {
                continue; // Unregistered since the wait returned.
            };
            for &fd in fds {
                let Some(&registration) = registrations.by_fd.get(&fd) else {
                    continue;
                };
                let mode = self.mode(registration.trigger);
                if mode != PollMode::Oneshot {
                    continue;
                }
                let interest = polling_event(registration.token, registration.interest);
                if let Err(err) = poller::modify(&self.poller, fd, interest, mode) {
                    // The fd was closed without being unregistered (a contract breach) or the
                    // kernel is out of memory: the event is still delivered, later ones are not.
                    log::warn!("PollingSelector: re-arming fd {fd} failed: {err}");
                }
            }
        }
    }
}

fn lock(registrations: &Mutex<Registrations>) -> MutexGuard<'_, Registrations> {
    // The map stays consistent even if a holder panicked: every update is a single call.
    registrations.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `polling` interest for a registration (`polling` itself refuses `Token::WAKEUP`).
fn polling_event(token: Token, interest: Interest) -> polling::Event {
    polling::Event::new(token.0, interest.is_readable(), interest.is_writable())
}

/// The [`Event`] flags for a `polling` event.
fn event_flags(event: &polling::Event) -> u8 {
    let mut flags = 0;
    if event.readable {
        flags |= Event::READABLE;
    }
    if event.writable {
        flags |= Event::WRITABLE;
    }
    if event.is_interrupt() {
        flags |= Event::READ_CLOSED | Event::READABLE;
    }
    if event.is_err() == Some(true) {
        flags |= Event::ERROR | Event::READABLE | Event::WRITABLE;
    }
    flags
}

impl Selector for PollingSelector {
    fn register(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let event = polling_event(token, interest);
        let mode = self.mode(trigger);
        let Some(rearm) = &self.rearm else {
            return poller::add(&self.poller, fd, event, mode);
        };
        // Hold the lock across the syscall so that the map and the kernel agree for `rearm`.
        let mut registrations = lock(rearm);
        poller::add(&self.poller, fd, event, mode)?;
        let registration = Registration {
            token,
            interest,
            trigger,
        };
        registrations.insert(fd, registration);
        Ok(())
    }

    fn modify(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let event = polling_event(token, interest);
        let mode = self.mode(trigger);
        let Some(rearm) = &self.rearm else {
            return poller::modify(&self.poller, fd, event, mode);
        };
        let mut registrations = lock(rearm);
        poller::modify(&self.poller, fd, event, mode)?;
        let registration = Registration {
            token,
            interest,
            trigger,
        };
        registrations.insert(fd, registration);
        Ok(())
    }

    fn unregister(&self, fd: RawFd) -> io::Result<()> {
        let Some(rearm) = &self.rearm else {
            return poller::delete(&self.poller, fd);
        };
        let mut registrations = lock(rearm);
        // Forgotten even if the kernel already dropped it (ENOENT/EBADF), which is returned.
        registrations.remove(fd);
        poller::delete(&self.poller, fd)
    }

    fn select(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        let capacity = NonZeroUsize::new(events.capacity()).unwrap_or(NonZeroUsize::MIN);
        let mut raw = events
            .raw_polling
            .take()
            .unwrap_or_else(|| polling::Events::with_capacity(capacity));
        // `None` if there is no timeout or it is too far away for an `Instant`: wait until
        // something happens.
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let result = loop {
            raw.clear();
            let waited = match deadline {
                Some(deadline) => self.poller.wait_deadline(&mut raw, deadline),
                None => self.poller.wait(&mut raw, None),
            };
            match waited {
                // `polling` retries EINTR itself; this is in case a backend lets one through.
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => break Err(err),
                Ok(_) => {}
            }
            if !raw.is_empty() {
                break Ok(());
            }
            // Nothing ready: a wake-up, the deadline, or a spurious return (wait again).
            if self.notified.swap(false, Ordering::AcqRel) {
                break Ok(());
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                break Ok(());
            }
        };
        if result.is_ok() {
            for event in raw.iter() {
                let flags = event_flags(&event);
                if flags != 0 {
                    events.push(Event {
                        token: Token(event.key),
                        flags,
                    });
                }
            }
            if let Some(registrations) = &self.rearm {
                self.rearm(registrations, &raw);
            }
        }
        events.raw_polling = Some(raw);
        result
    }

    fn notify(&self) -> io::Result<()> {
        // Flag first: the `select` that the poller wake-up ends must see it.
        self.notified.store(true, Ordering::Release);
        self.poller.notify()
    }

    fn name(&self) -> &'static str {
        "polling"
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use super::PollingSelector;
    use crate::selector::{Events, Interest, Selector, Token, Trigger};

    fn tokens(selector: &PollingSelector, events: &mut Events, timeout_ms: u64) -> Vec<Token> {
        selector
            .select(events, Some(Duration::from_millis(timeout_ms)))
            .unwrap();
        events.iter().map(|e| e.token).collect()
    }

    #[test]
    fn emulated_edge_is_rearmed_after_each_event() {
        let selector = PollingSelector::with_native_modes(false, false).unwrap();
        assert!(selector.rearm.is_some());
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        selector
            .register(a.as_raw_fd(), Token(1), Interest::READABLE, Trigger::Edge)
            .unwrap();
        let mut events = Events::with_capacity(8);
        for _ in 0..3 {
            b.write_all(b"ping").unwrap();
            assert_eq!(tokens(&selector, &mut events, 5000), [Token(1)]);
            let mut buf = [0; 16];
            assert_eq!(a.read(&mut buf).unwrap(), 4);
            // Drained: nothing more until new data.
            assert_eq!(tokens(&selector, &mut events, 50), []);
        }
        selector.unregister(a.as_raw_fd()).unwrap();
        b.write_all(b"ping").unwrap();
        assert_eq!(tokens(&selector, &mut events, 50), []);
    }

    #[test]
    fn emulated_level_repeats_while_ready() {
        let selector = PollingSelector::with_native_modes(false, false).unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        selector
            .register(a.as_raw_fd(), Token(2), Interest::READABLE, Trigger::Level)
            .unwrap();
        b.write_all(b"ping").unwrap();
        let mut events = Events::with_capacity(8);
        for _ in 0..3 {
            assert_eq!(tokens(&selector, &mut events, 5000), [Token(2)]);
        }
        // A modify with a new token is what gets re-armed from then on.
        selector
            .modify(a.as_raw_fd(), Token(3), Interest::READABLE, Trigger::Level)
            .unwrap();
        for _ in 0..3 {
            assert_eq!(tokens(&selector, &mut events, 5000), [Token(3)]);
        }
        selector.unregister(a.as_raw_fd()).unwrap();
        assert_eq!(tokens(&selector, &mut events, 50), []);
    }
}
