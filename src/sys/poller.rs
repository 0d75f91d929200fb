//! The `unsafe` half of the `polling` crate, wrapped so the selector stays free of `unsafe`.
//!
//! asyncio counterpart: none directly; this is what `selectors.DefaultSelector` picks on a
//! platform without epoll (kqueue, event ports, `poll`), reached through the `polling` crate.
//! Layer 0: used only by [`crate::selector::PollingSelector`].
//!
//! `polling` makes two things `unsafe`: [`Poller::add_with_mode`] (the source must be deleted
//! from the poller before it is closed) and, for `modify`/`delete`, building a [`BorrowedFd`]
//! from a bare number. Both come down to the same contract, which the selector layer passes on
//! to its caller: **an fd stays open from `register` until `unregister`** (documented on
//! [`crate::selector::Selector::register`]). And on every Unix backend (epoll, kqueue, event
//! ports, poll) `polling` only hands the fd *number* to the kernel or to `poll(2)`, so even a
//! caller that breaks the contract gets errors or stray events, never memory unsafety.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};

use polling::{Event, PollMode, Poller};

/// [`Poller::add_with_mode`]: starts watching `fd`.
///
/// The caller keeps `fd` open until it calls [`delete`] for it (the selector contract).
pub(crate) fn add(poller: &Poller, fd: RawFd, event: Event, mode: PollMode) -> io::Result<()> {
    check_fd(fd)?;
    // SAFETY: `add_with_mode` requires `fd` to be deleted from `poller` before it is closed. The
    // `Selector` contract puts that duty on our caller ("The fd must stay open until unregister
    // is called", `Selector::register`), and `PollingSelector::unregister` calls `delete`. On
    // Unix `polling` keeps only the number and passes it to the kernel, so a contract breach
    // yields EBADF/ENOENT or stray events, not undefined behaviour.
    unsafe { poller.add_with_mode(fd, event, mode) }
}

/// [`Poller::modify_with_mode`] on a registered `fd`.
pub(crate) fn modify(poller: &Poller, fd: RawFd, event: Event, mode: PollMode) -> io::Result<()> {
    check_fd(fd)?;
    // SAFETY: `borrow_raw` requires `fd != -1` (checked by `check_fd` above) and that `fd` stays
    // open while the `BorrowedFd` lives. It lives only for the `modify_with_mode` call below,
    // and a registered fd is open until it is unregistered (the `Selector` contract). `polling`
    // only passes the number to the kernel, which validates it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    poller.modify_with_mode(fd, event, mode)
}

/// [`Poller::delete`]: stops watching `fd`.
pub(crate) fn delete(poller: &Poller, fd: RawFd) -> io::Result<()> {
    check_fd(fd)?;
    // SAFETY: as in `modify`: `fd != -1` is checked above, the borrow lasts only for the
    // `delete` call, a registered fd is open until this very unregistration, and `polling` only
    // passes the number to the kernel, which validates it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    poller.delete(fd)
}

/// Negative numbers are never open fds (and -1 is `BorrowedFd`'s niche): report them as the
/// kernel would, with `EBADF`.
fn check_fd(fd: RawFd) -> io::Result<()> {
    if fd < 0 {
        Err(io::Error::from_raw_os_error(libc::EBADF))
    } else {
        Ok(())
    }
}
