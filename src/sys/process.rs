//! Child processes at the system-call level: `pidfd_open`, `pidfd_send_signal`,
//! `waitid(P_PIDFD)`, `waitpid(WNOHANG)`, `kill`, `close_range` in the child before `exec`;
//! and `getnameinfo`. (Pipes for a child's
//! stdio come from [`super::pipe`] and [`super::set_nonblocking`].)
//!
//! asyncio counterpart: the C underneath `os.pidfd_open`, `os.waitpid`, `os.kill`,
//! `signal.pidfd_send_signal` and `socket.getnameinfo`.
//! Layer 0: used by [`crate::subprocess`] and [`crate::dns`].
//!
//! Everything exported is safe to call: file descriptors go in as [`BorrowedFd`] (open for
//! the whole call) and come out as [`OwnedFd`] (closed exactly once, close-on-exec).

use std::ffi::CStr;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// `pidfd_open(pid, 0)` (Linux 5.3): an fd that refers to process `pid` for as long as it is
/// open, becomes readable when the process exits, and is close-on-exec.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: the raw `pidfd_open` system call takes two integers and no pointer; it returns
    // a new fd or -1 with errno set (ENOSYS on kernels before 5.3).
    let fd = syscall!(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: `fd` was just returned by a successful `pidfd_open` and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)` (Linux 5.1): signals exactly the process the
/// pidfd refers to, never a process that reused its pid. `ESRCH` once it has been reaped.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: the system call takes an fd (open for the call: borrowed), a signal number, a
    // null `siginfo_t` pointer (allowed: the kernel then fills it as `kill` would) and flags 0.
    syscall!(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })?;
    Ok(())
}

/// `waitid(P_PIDFD, pidfd, WEXITED | WNOHANG)` (Linux 5.4): reaps the child if it has
/// exited. `Ok(None)` while it runs.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn waitid_pidfd(pidfd: BorrowedFd<'_>) -> io::Result<Option<ExitStatus>> {
    // SAFETY: an all-zero `siginfo_t` is a valid value (plain integers and unions of them).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `waitid` writes one `siginfo_t` through the pointer; `info` is valid,
        // writable and outlives the call; the pidfd is open for the call (borrowed).
        let r = syscall!(unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        });
        match r {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    // SAFETY: after a successful `waitid`, the `_sigchld` fields are the initialised member
    // of the union when `si_pid` is non-zero, and `si_pid` reads 0 from our zeroed value
    // when no child changed state (WNOHANG), which is all the kernel promises then.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(status_from_siginfo(info.si_code, status)))
}

/// Turns `waitid`'s `(si_code, si_status)` into the `wait(2)` status word `ExitStatus` holds.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn status_from_siginfo(code: libc::c_int, status: libc::c_int) -> ExitStatus {
    let raw = match code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        // WEXITED asks for nothing else; keep the bits so nothing is silently lost.
        _ => status,
    };
    ExitStatus::from_raw(raw)
}

/// Whether this kernel has the pidfd calls corio uses (`pidfd_open` and `waitid(P_PIDFD)`):
/// probes them on this process, which is not our child, so `waitid` must say `ECHILD`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pidfd_supported() -> bool {
    // SAFETY: `getpid` takes nothing and cannot fail.
    let me = unsafe { libc::getpid() };
    match pidfd_open(me) {
        Ok(fd) => matches!(
            waitid_pidfd(fd.as_fd()),
            Err(e) if e.raw_os_error() == Some(libc::ECHILD)
        ),
        Err(_) => false,
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn pidfd_supported() -> bool {
    false
}

/// `waitpid(pid, WNOHANG)`: reaps child `pid` if it has exited. `Ok(None)` while it runs.
pub(crate) fn waitpid_nohang(pid: libc::pid_t) -> io::Result<Option<ExitStatus>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `waitpid` writes one `c_int` through the pointer; `status` is valid,
        // writable and outlives the call.
        match syscall!(unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(ExitStatus::from_raw(status))),
        }
    }
}

/// `kill(pid, sig)`. The caller must know `pid` is its unreaped child (so the pid cannot
/// have been reused); `pid` must be positive (no process groups here).
pub(crate) fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: `kill` takes two integers and no pointer.
    syscall!(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// Makes every fd above 2 close-on-exec in the child `cmd` spawns, just before `exec`
/// (Python's `close_fds=True`): the child then holds only its stdin, stdout and stderr, even
/// when this process inherited fds without `O_CLOEXEC` from its own parent (a jobserver, a
/// shell's extra redirections). Marking rather than closing keeps std's own close-on-exec
/// error-report pipe working.
///
/// Uses `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)` (Linux 5.11), else a loop of
/// `fcntl(F_SETFD)` up to the open-file limit. std runs the hook in the forked child after
/// setting up fds 0-2; the hook only makes system calls (async-signal-safe, no allocation).
pub(crate) fn cloexec_other_fds_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` through the pointer; `limit` is valid,
    // writable and outlives the call.
    let max_fd = match syscall!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }) {
        Ok(_) => libc::c_int::try_from(limit.rlim_cur).unwrap_or(libc::c_int::MAX),
        Err(_) => 1024,
    }
    .min(1 << 20);
    let hook = move || -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // SAFETY: `close_range` takes three integers and no pointer; with
            // CLOSE_RANGE_CLOEXEC it only sets a flag on fds that exist.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_close_range,
                    3 as libc::c_uint,
                    libc::c_uint::MAX,
                    libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
                )
            };
            if r == 0 {
                return Ok(());
            }
        }
        for fd in 3..max_fd {
            // SAFETY: `fcntl(F_SETFD, int)` takes no pointer; on a number that is not an
            // open fd it fails with EBADF, which is ignored.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        Ok(())
    };
    // SAFETY: `pre_exec` requires the hook to be safe to run in a forked child of a
    // multithreaded process: it only makes raw system calls on integers captured by value
    // (no allocation, no locks, no panics), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// `getnameinfo(addr, flags)`: the host and service names for a socket address (this may
/// ask DNS, so it blocks: call it on a worker thread).
pub(crate) fn getnameinfo(addr: &SocketAddr, flags: libc::c_int) -> io::Result<(String, String)> {
    let sa = socket2::SockAddr::from(*addr);
    let mut host = [0 as libc::c_char; libc::NI_MAXHOST as usize];
    let mut serv = [0 as libc::c_char; 32];
    // SAFETY: `sa.as_ptr()` points at `sa.len()` valid bytes of a sockaddr that `sa` owns for
    // the call; `host` and `serv` are writable buffers of the lengths passed, which
    // `getnameinfo` fills with NUL-terminated strings (truncating if needed).
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr().cast(),
            sa.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            serv.as_mut_ptr(),
            serv.len() as libc::socklen_t,
            flags,
        )
    };
    if rc != 0 {
        return Err(gai_error(rc));
    }
    // SAFETY: on success both buffers hold NUL-terminated strings within their bounds.
    let (h, s) = unsafe { (CStr::from_ptr(host.as_ptr()), CStr::from_ptr(serv.as_ptr())) };
    Ok((
        h.to_string_lossy().into_owned(),
        s.to_string_lossy().into_owned(),
    ))
}

/// An `EAI_*` code from `getnameinfo` as an `io::Error` with the C library's message.
fn gai_error(rc: libc::c_int) -> io::Error {
    if rc == libc::EAI_SYSTEM {
        return io::Error::last_os_error();
    }
    // SAFETY: `gai_strerror` returns a pointer to a static NUL-terminated string for any code.
    let msg = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) };
    io::Error::other(format!("getnameinfo: {}", msg.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `flags:` line of `/proc/self/fdinfo/FD` (octal open flags, `O_CLOEXEC` included).
    fn fd_flags(fd: &OwnedFd) -> u32 {
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
        let line = info.lines().find(|l| l.starts_with("flags:")).unwrap();
        u32::from_str_radix(line["flags:".len()..].trim(), 8).unwrap()
    }

    #[test]
    fn pipe_ends_are_cloexec_and_blocking_until_asked() {
        let (r, w) = crate::sys::pipe().unwrap();
        for fd in [&r, &w] {
            assert_ne!(fd_flags(fd) & libc::O_CLOEXEC as u32, 0);
            assert_eq!(fd_flags(fd) & libc::O_NONBLOCK as u32, 0);
        }
        crate::sys::set_nonblocking(r.as_fd(), true).unwrap();
        assert_ne!(fd_flags(&r) & libc::O_NONBLOCK as u32, 0);
        assert_eq!(
            fd_flags(&w) & libc::O_NONBLOCK as u32,
            0,
            "the child's end stays blocking"
        );
    }

    #[test]
    fn kill_refuses_groups() {
        assert!(kill(0, 0).is_err());
        assert!(kill(-1, 0).is_err());
    }

    #[test]
    fn getnameinfo_numeric() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let (h, s) = getnameinfo(&addr, libc::NI_NUMERICHOST | libc::NI_NUMERICSERV).unwrap();
        assert_eq!((h.as_str(), s.as_str()), ("127.0.0.1", "80"));
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    #[allow(clippy::zombie_processes)] // reaped through the pidfd below
    fn pidfd_probe_and_reap() {
        if !pidfd_supported() {
            return;
        }
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        let fd = pidfd_open(pid).unwrap();
        assert_ne!(fd_flags(&fd) & libc::O_CLOEXEC as u32, 0);
        let status = loop {
            if let Some(s) = waitid_pidfd(fd.as_fd()).unwrap() {
                break s;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        assert!(status.success());
        // Reaped: the pidfd still refers to the (gone) process, never to a new one.
        assert_eq!(
            pidfd_send_signal(fd.as_fd(), 0).unwrap_err().raw_os_error(),
            Some(libc::ESRCH)
        );
    }
}
