//! The operating-system boundary: thin wrappers over the few system calls corio makes itself.
//!
//! asyncio counterpart: the C code under the Python modules asyncio stands on (`select.epoll`,
//! `os.eventfd`/`os.pipe`, `socket.accept`, `resource.setrlimit`).
//! Layer 0: uses `libc`, `socket2` and `polling`; used by [`crate::selector`] and the loop's
//! socket layer.
//!
//! This is the only module (besides the task core) allowed to contain `unsafe`. Every `unsafe`
//! block carries a `// SAFETY:` comment naming the precondition it relies on and why it holds,
//! and everything this module exports is safe to call: the preconditions are either checked
//! here or are part of a documented contract (for example "unregister an fd before closing it",
//! see [`crate::selector::Selector::register`]).
//!
//! | file | what |
//! | --- | --- |
//! | `epoll.rs` | `epoll_create1`, `epoll_ctl`, `epoll_wait` (Linux, Android) |
//! | `notify.rs` | the wake-up descriptor: an eventfd, or a pipe where eventfd is blocked (Linux, Android) |
//! | `poller.rs` | the two `unsafe` entry points of the `polling` crate |
//! | `process.rs` | pidfd calls, `waitid`/`waitpid`, `kill`, the child's `close_range` hook, `getnameinfo` |
//! | here | [`raise_nofile_limit`], [`accept4`], [`recv`], [`send`], [`set_nonblocking`], [`pipe`] and the `syscall!` helper |

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

/// Evaluates a C call (usually an `unsafe { libc::... }` block) and turns the C convention
/// "returns -1 and sets `errno`" into an [`io::Result`]: `Err(io::Error::last_os_error())` on
/// -1, `Ok(value)` otherwise.
///
/// The `unsafe` block is written at the call site, not inside the macro, so that its
/// `// SAFETY:` comment sits right above it and speaks about that exact call:
///
/// ```text
/// // SAFETY: `epoll_create1` takes no pointers; it returns a new fd or -1.
/// let fd = syscall!(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
/// ```
///
/// Defined before the submodules, so they see it by textual scope without importing it.
macro_rules! syscall {
    ($call:expr) => {{
        let res = $call;
        if res == -1 {
            ::std::result::Result::Err(::std::io::Error::last_os_error())
        } else {
            ::std::result::Result::Ok(res)
        }
    }};
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) mod epoll;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) mod notify;
pub(crate) mod poller;
pub(crate) mod process;

/// Raises the soft limit on open file descriptors (`RLIMIT_NOFILE`) to the hard limit.
///
/// Returns `(old_soft, new_soft)`; when the soft limit already equals the hard limit nothing is
/// changed and both are equal. On Apple platforms the new soft limit is capped at `OPEN_MAX`
/// (10240), above which `setrlimit` fails there. `RLIM_INFINITY` is reported as `u64::MAX`.
pub(crate) fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` through the pointer; `limit` is a valid, writable,
    // properly aligned `rlimit` that outlives the call.
    syscall!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    let old = limit.rlim_cur;

    #[cfg(target_vendor = "apple")]
    let target = limit.rlim_max.min(10240);
    #[cfg(not(target_vendor = "apple"))]
    let target = limit.rlim_max;

    if old >= target {
        return Ok((rlim_to_u64(old), rlim_to_u64(old)));
    }
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: `setrlimit` only reads one `rlimit` through the pointer; `raised` is a valid,
    // properly aligned `rlimit` that outlives the call.
    syscall!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) })?;
    Ok((rlim_to_u64(old), rlim_to_u64(target)))
}

/// `rlim_t` is `u64` on the common targets but a C `unsigned long` (32 bits) on some,
/// hence a cast that is a no-op on 64-bit targets.
#[allow(clippy::unnecessary_cast)]
fn rlim_to_u64(value: libc::rlim_t) -> u64 {
    value as u64
}

/// Accepts one connection from the listening socket `listener`, without blocking.
///
/// The new socket is non-blocking and close-on-exec. On Linux and Android that happens
/// atomically with `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`; elsewhere it is `accept` followed by
/// `fcntl` (so another thread that forks and execs in between could leak the fd into the child;
/// corio itself never forks). `EINTR` is retried; `WouldBlock` means "no pending connection"
/// and is returned as is.
///
/// The peer address is converted from the kernel's `sockaddr_storage` to a std
/// [`SocketAddr`] (IPv4 or IPv6). A connection of any other family (a Unix-domain listener) is
/// closed and reported as [`io::ErrorKind::InvalidInput`].
pub(crate) fn accept4(listener: impl AsFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let listener = socket2::SockRef::from(&listener);
    let (socket, addr) = loop {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let accepted = listener.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        // socket2's `accept` sets close-on-exec (with `fcntl` where `accept4` is missing).
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let accepted = listener
            .accept()
            .and_then(|(socket, addr)| socket.set_nonblocking(true).map(|()| (socket, addr)));
        match accepted {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    let addr = addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "accepted a connection whose address is neither IPv4 nor IPv6",
        )
    })?;
    Ok((OwnedFd::from(socket), addr))
}

/// `recv(fd, buf, 0)`: one read from a socket, the hot path of every transport and stream.
///
/// On Linux this is the raw `recvfrom` system call through `syscall(2)`, not glibc's `recv`:
/// glibc's wrapper is a pthread cancellation point and brackets every call with
/// `__pthread_enable_asynccancel`/`__pthread_disable_asynccancel`, about 30 instructions that
/// corio never needs (it never cancels threads). Elsewhere it is `recv`. `EINTR` is returned
/// as is (the callers retry).
pub(crate) fn recv(fd: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    #[cfg(target_os = "linux")]
    // SAFETY: `buf` is a live, writable slice of `buf.len()` bytes for the whole call, `fd` is
    // borrowed so it stays open, and the null address pointers mean "no address wanted".
    let n = syscall!(unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
            0,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    })?;
    #[cfg(not(target_os = "linux"))]
    // SAFETY: as above: a live writable slice and a borrowed, open fd.
    let n = syscall!(unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })?;
    Ok(n as usize)
}

/// The `send` flag that turns `SIGPIPE` into `EPIPE` where it exists (0 elsewhere: there
/// the socket's `SO_NOSIGPIPE` or the ignored signal does it).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const SEND_NOSIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) const SEND_NOSIGNAL: libc::c_int = 0;

/// `send(fd, buf, flags)`: one write to a socket (see [`recv`] for why it is the raw system
/// call on Linux). Callers pass `MSG_NOSIGNAL` where it exists, so a closed peer is `EPIPE`,
/// never `SIGPIPE` (B31).
pub(crate) fn send(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &[u8],
    flags: libc::c_int,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    #[cfg(target_os = "linux")]
    // SAFETY: `buf` is a live slice of `buf.len()` bytes for the whole call, `fd` is borrowed
    // so it stays open, and a null address with length 0 means "the connected peer".
    let n = syscall!(unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd.as_raw_fd(),
            buf.as_ptr(),
            buf.len(),
            flags,
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::socklen_t,
        )
    })?;
    #[cfg(not(target_os = "linux"))]
    // SAFETY: as above: a live slice and a borrowed, open fd.
    let n = syscall!(unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), flags) })?;
    Ok(n as usize)
}

/// Sets (`on`) or clears `O_NONBLOCK` on any fd (a pipe, a tty, a socket); returns whether it
/// was set before, so a caller that borrowed a shared fd (stdin) can restore it.
pub(crate) fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>, on: bool) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    // SAFETY: `fcntl(F_GETFL)` takes no pointer argument; `raw` is open for the whole call
    // because `fd` borrows it.
    let flags = syscall!(unsafe { libc::fcntl(raw, libc::F_GETFL) })?;
    let was = flags & libc::O_NONBLOCK != 0;
    let wanted = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if wanted != flags {
        // SAFETY: `fcntl(F_SETFL, int)` takes an integer, no pointer; `raw` is open (see above).
        syscall!(unsafe { libc::fcntl(raw, libc::F_SETFL, wanted) })?;
    }
    Ok(was)
}

/// A new pipe, both ends close-on-exec (and blocking): `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `pipe2` writes exactly two ints through the pointer, and `fds` is a writable
    // array of two ints that outlives the call.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    syscall!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: as above for `pipe`; close-on-exec is set just below.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    syscall!(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
    // SAFETY: on success both ints are fresh fds that nothing else owns; each is wrapped once.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    for fd in [&r, &w] {
        use std::os::fd::AsRawFd;
        // SAFETY: `fcntl(F_SETFD, int)` takes no pointer; the fd is open (owned just above).
        syscall!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    }
    Ok((r, w))
}
