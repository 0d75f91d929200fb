//! The `epoll(7)` system calls: create an instance, change its interest list, wait on it.
//!
//! asyncio counterpart: `select.epoll`, the C object under `selectors.EpollSelector`.
//! Layer 0: used only by [`crate::selector::EpollSelector`], which owns the policy (flags,
//! timeouts, EINTR). This file only moves numbers across the FFI boundary.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// An epoll instance. Closed when dropped.
#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: `epoll_create1` takes no pointers; it returns a new fd or -1 with errno set.
        let fd = syscall!(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `from_raw_fd` requires an open fd that nothing else owns: `fd` was returned by
        // the successful `epoll_create1` just above and has not been shared with anyone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// `EPOLL_CTL_ADD`: watch `fd` for `events` (`EPOLL*` bits), reporting `data` back.
    pub(crate) fn add(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, data)
    }

    /// `EPOLL_CTL_MOD`: replace the events and data of a watched `fd`.
    pub(crate) fn modify(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, data)
    }

    /// `EPOLL_CTL_DEL`: stop watching `fd`. Fails with `ENOENT` if it is not watched (for
    /// example because it was closed, which removes it from every epoll set) or `EBADF` if the
    /// number is not an open fd.
    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: data };
        // SAFETY: `epoll_ctl` reads one `epoll_event` through the pointer (none for DEL, which
        // kernels before 2.6.9 still wanted non-null); `event` is a valid local that outlives
        // the call. `self.fd` is the open epoll fd `self` owns. `fd` is only a number the kernel
        // looks up and validates (EBADF/ENOENT/EEXIST/EPERM); no memory is reached through it.
        syscall!(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) })?;
        Ok(())
    }

    /// `epoll_wait`: fills the front of `buf` and returns how many entries it filled.
    ///
    /// `timeout_ms` is -1 (forever), 0 (poll) or a number of milliseconds. Errors are returned
    /// raw, `EINTR` included: the caller retries with the time that is left.
    pub(crate) fn wait(&self, buf: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        let max = i32::try_from(buf.len()).unwrap_or(i32::MAX);
        // SAFETY: the kernel writes at most `max` entries starting at `buf.as_mut_ptr()`; `buf`
        // is an exclusively borrowed slice of at least `max` initialized `epoll_event`s (plain
        // data, any bit pattern is valid) that outlives the call. `self.fd` is our open epoll fd.
        // An empty `buf` makes the kernel fail with EINVAL, not write.
        let n = syscall!(unsafe {
            libc::epoll_wait(self.fd.as_raw_fd(), buf.as_mut_ptr(), max, timeout_ms)
        })?;
        // `n` is in `0..=max` after a successful call.
        Ok(n as usize)
    }
}
