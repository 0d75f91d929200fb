//! Reaping children: a pidfd watched by the loop where the kernel has one, else a SIGCHLD
//! watcher thread that `waitpid`s the children it knows.
//!
//! asyncio counterpart: the child watchers of `unix_events.py` (`PidfdChildWatcher`, the
//! default since 3.13 where available, and the SIGCHLD-driven ones). Layer 3: uses
//! [`crate::sys::process`] and the loop's I/O table; used by [`super::Process`].
//!
//! # pidfd (Linux 5.4 and later: the default)
//!
//! Right after the spawn, `pidfd_open(pid)` gives an fd that refers to *that* process for as
//! long as it is open, and that becomes readable when the process exits. It is registered
//! with the loop like a socket (edge-triggered, once), so `wait` costs no thread and no
//! signal: readable → `waitid(P_PIDFD, WNOHANG)` reaps it. Signals go through
//! `pidfd_send_signal`, which can never hit another process that reused the pid (B33).
//!
//! # SIGCHLD (other kernels, or asked for with [`super::ChildWatcher::Sigchld`])
//!
//! One process-wide thread, `corio-sigchld`, blocks on SIGCHLD through
//! `signal_hook::iterator`. SIGCHLDs coalesce (two children exiting together may give one
//! signal), so on each one it tries `waitpid(pid, WNOHANG)` on **every** child it knows, never
//! `waitpid(-1)`, so children that other code (std's `Command`) spawned are left alone. A child
//! is entered in the table, then tried once at once: one that exited before it was entered is
//! not missed. Signals are sent with `kill` under the table's lock, so the pid cannot be reaped
//! (and reused) between the check and the `kill`.
//!
//! # Orphans
//!
//! A [`Process`](super::Process) dropped before its child was reaped hands the pid to the
//! SIGCHLD thread (started then if needed), which reaps it when it exits: no zombie is left,
//! even after the loop is gone.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use crate::base_events::io::Direction;
use crate::net::Registration;
use crate::sys::process as sys;

/// How a child is reaped (asyncio's child watchers).
///
/// - **pidfd**: `pidfd_open(pid)` gives an fd that refers to that very process and becomes
///   readable when it exits; the loop watches it like a socket, then `waitid(P_PIDFD)` reaps.
///   No thread, no signal, and `send_signal` can never reach a process that reused the pid.
/// - **SIGCHLD**: one process-wide thread, `corio-sigchld`, waits for SIGCHLD (through
///   signal-hook) and then tries `waitpid(pid, WNOHANG)` on every child corio spawned (never
///   `waitpid(-1)`, so other code's children are left alone); the waiting task is woken
///   through the loop's thread-safe door.
///
/// Children whose [`Process`](super::Process) is dropped before they exit are handed to the
/// SIGCHLD thread in both cases, so none is left a zombie.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChildWatcher {
    /// pidfd if the kernel has it (Linux 5.4+), else SIGCHLD. The default.
    #[default]
    Auto,
    /// A pidfd watched by the loop; spawning fails where the kernel has none.
    Pidfd,
    /// The process-wide SIGCHLD watcher thread.
    Sigchld,
}

/// Whether `pidfd_open` and `waitid(P_PIDFD)` work here (probed once).
fn pidfd_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(sys::pidfd_supported)
}

enum Kind {
    Pidfd {
        /// Dropped before `fd` (declaration order): unregister, then close.
        reg: Registration,
        fd: OwnedFd,
    },
    Sigchld,
}

/// The reaping side of one child.
pub(crate) struct Watch {
    pid: libc::pid_t,
    kind: Kind,
    reaped: bool,
}

impl Watch {
    /// Starts watching the just-spawned child `pid` (must run on the loop thread).
    pub(crate) fn new(pid: libc::pid_t, how: ChildWatcher) -> io::Result<Watch> {
        let use_pidfd = match how {
            ChildWatcher::Auto => pidfd_available(),
            ChildWatcher::Pidfd => {
                if !pidfd_available() {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "this kernel has no pidfd (Linux 5.4 or later needed)",
                    ));
                }
                true
            }
            ChildWatcher::Sigchld => false,
        };
        if use_pidfd {
            // A zombie still has its pid until reaped, so this works even if the child has
            // already exited; only we reap it (no waitpid(-1) anywhere in corio).
            let fd = sys::pidfd_open(pid)?;
            let reg = Registration::new(fd.as_raw_fd(), crate::selector::Event::READABLE)?;
            return Ok(Watch {
                pid,
                kind: Kind::Pidfd { reg, fd },
                reaped: false,
            });
        }
        sigchld_watcher()?.add(pid, false);
        Ok(Watch {
            pid,
            kind: Kind::Sigchld,
            reaped: false,
        })
    }

    /// Reaps the child if it has exited, without waiting.
    pub(crate) fn try_exit(&mut self) -> io::Result<Option<ExitStatus>> {
        let r = match &self.kind {
            Kind::Pidfd { fd, .. } => sys::waitid_pidfd(fd.as_fd()),
            Kind::Sigchld => sigchld_watcher()?.try_take(self.pid),
        };
        self.note(r)
    }

    /// Reaps the child once it exits, parking `cx`'s waker until then.
    pub(crate) fn poll_exit(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        let r = match &self.kind {
            Kind::Pidfd { reg, fd } => reg.poll_io(Direction::Read, cx, || {
                match sys::waitid_pidfd(fd.as_fd()) {
                    Ok(Some(s)) => Ok(s),
                    Ok(None) => Err(io::ErrorKind::WouldBlock.into()), // wait for the edge
                    Err(e) => Err(e),
                }
            }),
            Kind::Sigchld => match sigchld_watcher() {
                Ok(w) => w.poll_take(self.pid, cx),
                Err(e) => Poll::Ready(Err(e)),
            },
        };
        match r {
            Poll::Ready(r) => Poll::Ready(self.note(r.map(Some)).map(|s| s.expect("Some"))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn note(&mut self, r: io::Result<Option<ExitStatus>>) -> io::Result<Option<ExitStatus>> {
        match &r {
            Ok(Some(_)) => self.reaped = true,
            // ECHILD: someone else reaped it (a waitpid(-1) elsewhere): nothing left to do.
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => self.reaped = true,
            _ => {}
        }
        r
    }

    /// Sends `sig` to the child, unless it has been reaped (`ESRCH` then, as asyncio's
    /// `ProcessLookupError`): never to a process that reused its pid.
    pub(crate) fn signal(&self, sig: libc::c_int) -> io::Result<()> {
        if self.reaped {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        match &self.kind {
            Kind::Pidfd { fd, .. } => sys::pidfd_send_signal(fd.as_fd(), sig),
            Kind::Sigchld => sigchld_watcher()?.signal(self.pid, sig),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        if let Ok(Some(_)) = self.try_exit() {
            return;
        }
        if self.reaped {
            return;
        }
        // Still running: the SIGCHLD thread reaps it when it exits.
        match sigchld_watcher() {
            Ok(w) => match self.kind {
                Kind::Sigchld => w.orphan(self.pid),
                Kind::Pidfd { .. } => w.add(self.pid, true),
            },
            Err(e) => log::error!(
                "corio: cannot reap child {} (no SIGCHLD watcher: {e}); it stays a zombie",
                self.pid
            ),
        }
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("pid", &self.pid)
            .field(
                "kind",
                &match self.kind {
                    Kind::Pidfd { .. } => "pidfd",
                    Kind::Sigchld => "sigchld",
                },
            )
            .field("reaped", &self.reaped)
            .finish()
    }
}

// ---- the SIGCHLD watcher ---------------------------------------------------------------

struct Child {
    status: Option<io::Result<ExitStatus>>,
    waker: Option<Waker>,
    /// Nobody will ask for the status: forget the child once reaped.
    orphan: bool,
}

struct SigchldWatcher {
    children: Mutex<HashMap<libc::pid_t, Child>>,
}

fn sigchld_watcher() -> io::Result<&'static SigchldWatcher> {
    static WATCHER: OnceLock<Result<SigchldWatcher, String>> = OnceLock::new();
    WATCHER
        .get_or_init(|| {
            // Register the handler here, before any child is entered, so no exit is missed.
            let mut signals =
                signal_hook::iterator::Signals::new([libc::SIGCHLD]).map_err(|e| e.to_string())?;
            std::thread::Builder::new()
                .name("corio-sigchld".into())
                .spawn(move || {
                    for _ in signals.forever() {
                        if let Ok(w) = sigchld_watcher() {
                            w.reap_all();
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
            Ok(SigchldWatcher {
                children: Mutex::new(HashMap::new()),
            })
        })
        .as_ref()
        .map_err(|e| io::Error::other(format!("SIGCHLD watcher: {e}")))
}

impl SigchldWatcher {
    fn lock(&self) -> MutexGuard<'_, HashMap<libc::pid_t, Child>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enters `pid`, then tries it once: it may have exited before it was entered.
    fn add(&self, pid: libc::pid_t, orphan: bool) {
        let mut children = self.lock();
        match sys::waitpid_nohang(pid) {
            Ok(None) => {
                children.insert(
                    pid,
                    Child {
                        status: None,
                        waker: None,
                        orphan,
                    },
                );
            }
            r if orphan => drop(r), // reaped (or gone): nothing to keep
            r => {
                children.insert(
                    pid,
                    Child {
                        status: Some(r.map(|s| s.expect("not None"))),
                        waker: None,
                        orphan,
                    },
                );
            }
        }
    }

    /// On SIGCHLD: tries every child not yet reaped.
    fn reap_all(&self) {
        let mut wake = Vec::new();
        {
            let mut children = self.lock();
            children.retain(|&pid, c| {
                if c.status.is_some() {
                    return true;
                }
                match sys::waitpid_nohang(pid) {
                    Ok(None) => true,
                    r => {
                        if c.orphan {
                            return false;
                        }
                        c.status = Some(r.map(|s| s.expect("not None")));
                        wake.extend(c.waker.take());
                        true
                    }
                }
            });
        }
        for w in wake {
            w.wake(); // through the loop's thread-safe door
        }
    }

    fn try_take(&self, pid: libc::pid_t) -> io::Result<Option<ExitStatus>> {
        let mut children = self.lock();
        let Some(c) = children.get_mut(&pid) else {
            return Err(io::Error::from_raw_os_error(libc::ECHILD));
        };
        if c.status.is_none() {
            match sys::waitpid_nohang(pid) {
                Ok(None) => return Ok(None),
                r => c.status = Some(r.map(|s| s.expect("not None"))),
            }
        }
        let c = children.remove(&pid).expect("just found");
        c.status.expect("set above").map(Some)
    }

    fn poll_take(&self, pid: libc::pid_t, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        let mut children = self.lock();
        let Some(c) = children.get_mut(&pid) else {
            return Poll::Ready(Err(io::Error::from_raw_os_error(libc::ECHILD)));
        };
        if c.status.is_none() {
            match &c.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => c.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        let c = children.remove(&pid).expect("just found");
        Poll::Ready(c.status.expect("checked above"))
    }

    fn signal(&self, pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
        let children = self.lock();
        match children.get(&pid) {
            // Not reaped yet, and cannot be while we hold the lock: the pid is still ours.
            Some(c) if c.status.is_none() => sys::kill(pid, sig),
            _ => Err(io::Error::from_raw_os_error(libc::ESRCH)),
        }
    }

    fn orphan(&self, pid: libc::pid_t) {
        let mut children = self.lock();
        if let Some(c) = children.get_mut(&pid) {
            if c.status.is_some() {
                children.remove(&pid);
            } else {
                c.orphan = true;
                c.waker = None;
            }
        }
    }
}
