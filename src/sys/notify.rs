//! The wake-up descriptor: a file descriptor another thread makes readable to interrupt a
//! blocked `epoll_wait`.
//!
//! asyncio counterpart: the self-pipe of `BaseSelectorEventLoop` (`_make_self_pipe`,
//! `_write_to_self`, `_read_from_self`).
//! Layer 0: used by [`crate::selector::EpollSelector`], which registers [`Notifier::fd`]
//! edge-triggered under [`crate::selector::Token::WAKEUP`].
//!
//! Two implementations:
//!
//! - **eventfd** (the default): one fd holding a 64-bit counter. Every `write` of 8 bytes adds
//!   to the counter and wakes epoll with a fresh edge *even while the counter is already
//!   non-zero*, so the reader never has to reset it between wake-ups (mio relies on the same
//!   behaviour). The counter is only reset when a write would overflow it.
//! - **pipe** (the fallback): some sandboxes and container runtimes (gVisor configurations,
//!   Gramine, seccomp profiles) refuse `eventfd(2)`, so when it fails we use a non-blocking
//!   close-on-exec `pipe2`. A pipe only produces a new edge when it goes from empty to
//!   non-empty, so the selector must [`drain`](Notifier::drain) it each time it sees its event
//!   ([`Notifier::drains_on_wake`]). A full pipe means a wake-up is already pending, so a
//!   `write` failing with `EAGAIN` is success.
//!
//! Both fds are closed when the [`Notifier`] is dropped (they are held as [`File`]s, which also
//! gives safe `read`/`write`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A wake-up descriptor: [`notify`](Notifier::notify) from any thread makes [`fd`](Notifier::fd)
/// readable.
#[derive(Debug)]
pub(crate) struct Notifier {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    EventFd(File),
    Pipe { read: File, write: File },
}

impl Notifier {
    /// An eventfd, or a pipe if the eventfd cannot be created (see the module docs).
    pub(crate) fn new() -> io::Result<Notifier> {
        match Notifier::eventfd() {
            Ok(notifier) => Ok(notifier),
            Err(err) => {
                log::debug!("eventfd() failed ({err}); using a pipe as the wake-up descriptor");
                Notifier::pipe()
            }
        }
    }

    /// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`.
    pub(crate) fn eventfd() -> io::Result<Notifier> {
        // SAFETY: `eventfd` takes no pointers; it returns a new fd or -1 with errno set.
        let fd = syscall!(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `from_raw_fd` requires an open fd that nothing else owns: `fd` was returned by
        // the successful `eventfd` just above and has not been shared.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Notifier {
            kind: Kind::EventFd(File::from(fd)),
        })
    }

    /// `pipe2(O_CLOEXEC | O_NONBLOCK)`: both ends non-blocking, so `notify` never blocks.
    pub(crate) fn pipe() -> io::Result<Notifier> {
        let mut fds: [libc::c_int; 2] = [-1, -1];
        // SAFETY: `pipe2` writes exactly two `c_int`s through the pointer; `fds` is a valid,
        // writable `[c_int; 2]` that outlives the call.
        syscall!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
        // SAFETY: after a successful `pipe2`, `fds[0]` is a new open fd that nothing else owns.
        let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        // SAFETY: likewise `fds[1]`, a distinct new fd.
        let write = unsafe { OwnedFd::from_raw_fd(fds[1]) };
        Ok(Notifier {
            kind: Kind::Pipe {
                read: File::from(read),
                write: File::from(write),
            },
        })
    }

    /// The fd to register for readability. Owned by `self`: valid until `self` is dropped.
    pub(crate) fn fd(&self) -> RawFd {
        match &self.kind {
            Kind::EventFd(file) => file.as_raw_fd(),
            Kind::Pipe { read, .. } => read.as_raw_fd(),
        }
    }

    /// Whether the selector must [`drain`](Notifier::drain) each time the fd is reported
    /// (the pipe), or must not bother (the eventfd: every `notify` is a new edge anyway).
    pub(crate) fn drains_on_wake(&self) -> bool {
        matches!(self.kind, Kind::Pipe { .. })
    }

    /// Makes [`fd`](Notifier::fd) readable, producing a new edge. Thread-safe.
    pub(crate) fn notify(&self) -> io::Result<()> {
        match &self.kind {
            Kind::EventFd(file) => loop {
                match (&*file).write(&1u64.to_ne_bytes()) {
                    Ok(_) => return Ok(()),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    // The counter would overflow (2^64 - 2 unread notifications): reset it,
                    // then write again, which is a fresh edge.
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.drain()?,
                    Err(err) => return Err(err),
                }
            },
            Kind::Pipe { write, .. } => loop {
                match (&*write).write(&[1]) {
                    Ok(_) => return Ok(()),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    // The pipe is full: the reader has a wake-up pending already.
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(err) => return Err(err),
                }
            },
        }
    }

    /// Reads until the fd would block, consuming every pending notification.
    pub(crate) fn drain(&self) -> io::Result<()> {
        let mut file: &File = match &self.kind {
            Kind::EventFd(file) => file,
            Kind::Pipe { read, .. } => read,
        };
        // At least 8 bytes: an eventfd rejects shorter reads.
        let mut buf = [0u8; 128];
        loop {
            match file.read(&mut buf) {
                // EOF cannot happen while we hold the write end, but it is nothing to drain.
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Notifier;

    fn notify_then_drain(notifier: &Notifier) {
        notifier.drain().unwrap();
        for _ in 0..100_000 {
            notifier.notify().unwrap();
        }
        notifier.drain().unwrap();
        notifier.notify().unwrap();
        notifier.drain().unwrap();
    }

    #[test]
    fn eventfd_notify_and_drain_never_block() {
        notify_then_drain(&Notifier::eventfd().unwrap());
    }

    #[test]
    fn pipe_notify_on_a_full_pipe_is_success() {
        // 100 000 one-byte writes overflow the default 64 KiB pipe buffer.
        let notifier = Notifier::pipe().unwrap();
        assert!(notifier.drains_on_wake());
        notify_then_drain(&notifier);
    }
}
