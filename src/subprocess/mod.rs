//! Child processes on the loop: spawn, talk to them through pipes, wait for them, signal them.
//!
//! asyncio counterpart: `asyncio.subprocess` (`create_subprocess_exec`,
//! `create_subprocess_shell`, `Process`, `PIPE`, `DEVNULL`, `STDOUT`) with the child
//! watchers and pipe transports of `unix_events.py`. Layer 5: uses sockets-level registration
//! ([`crate::net`]), the loop's fd table and the `sys` layer; used by applications (book
//! chapter 13).
//!
//! ```
//! use corio::subprocess::{Stdio, create_subprocess_exec};
//!
//! corio::run(async {
//!     let mut child = create_subprocess_exec(["tr", "a-z", "A-Z"])
//!         .stdin(Stdio::Piped)
//!         .stdout(Stdio::Piped)
//!         .await
//!         .unwrap();
//!     let out = child.communicate(Some(b"hello")).await.unwrap();
//!     assert!(out.status.success());
//!     assert_eq!(out.stdout, b"HELLO");
//!     assert_eq!(child.returncode(), Some(0));
//! });
//! ```
//!
//! # How it works
//!
//! - **Spawning** uses std's `Command` (which resets the child's signal mask and `SIGPIPE`
//!   disposition before `exec`). The child gets exactly fds 0, 1 and 2: every fd corio opens
//!   (epoll, eventfd, sockets, pipes, pidfds, the signal socket pairs) is close-on-exec, so
//!   the parent's ends of a child's pipes are closed in the child; and, as Python's
//!   `close_fds=True`, any other fd above 2 (one this process inherited without
//!   close-on-exec) is marked close-on-exec in the child just before `exec`
//!   ([`ProcessBuilder::close_fds`]).
//! - **Pipes**: [`Stdio::Piped`] makes a pipe; the child's end stays blocking, the parent's end
//!   becomes a non-blocking [`PipeReader`] / [`PipeWriter`] registered with the loop.
//! - **Reaping**: a pidfd watched by the loop, or a SIGCHLD watcher thread; see
//!   [`ChildWatcher`] and the `reaper` module. Every child is reaped, including those whose
//!   [`Process`] was dropped before they exited: no zombies.
//!
//! # Deadlocks (book 13.5, B34)
//!
//! A child blocks when a pipe it writes to is full (64 KiB) and nobody reads it. So
//! [`Process::wait`] on a child with piped stdout or stderr that nobody reads can wait
//! forever; [`Process::communicate`] reads both pipes while it writes stdin, and cannot.

mod pipe;
mod reaper;

pub use self::pipe::{PipeReader, PipeWriter};
pub use self::reaper::ChildWatcher;

use std::cell::Cell;
use std::ffi::OsStr;
use std::fmt;
use std::future::{IntoFuture, poll_fn};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::pin::pin;
use std::process::{ExitStatus, Output};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::base_events::expect_current;

use self::reaper::Watch;

/// Where a child's stdin, stdout or stderr goes (asyncio's `PIPE`, `DEVNULL`, `STDOUT`, an
/// fd, or `None` for inherit).
#[derive(Debug, Default)]
pub enum Stdio {
    /// The parent's own stream (the default; asyncio's `None`).
    #[default]
    Inherit,
    /// A new pipe whose other end the [`Process`] holds (asyncio's `PIPE`).
    Piped,
    /// `/dev/null` (asyncio's `DEVNULL`).
    Null,
    /// This file descriptor (a `File`, a socket, one end of a pipe...). It is handed to the
    /// child and closed in the parent after the spawn.
    Fd(OwnedFd),
    /// For stderr only: wherever stdout goes (asyncio's `STDOUT`, the shell's `2>&1`).
    Stdout,
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio::Fd(fd)
    }
}

impl From<std::fs::File> for Stdio {
    fn from(f: std::fs::File) -> Stdio {
        Stdio::Fd(f.into())
    }
}

/// How to start a child: what [`create_subprocess_exec`] and [`create_subprocess_shell`]
/// return. Set the standard streams and the rest, then `.await` it (or call
/// [`spawn`](ProcessBuilder::spawn)) for a [`Process`].
pub struct ProcessBuilder {
    cmd: std::process::Command,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    watcher: ChildWatcher,
    close_fds: bool,
    bad_argv: bool,
}

/// Starts building the child `argv[0]` with arguments `argv[1..]` (asyncio's
/// `create_subprocess_exec(program, *args)`); the program is looked up in `PATH`. `.await`
/// the builder to spawn it.
///
/// ```
/// use corio::subprocess::{Stdio, create_subprocess_exec};
/// corio::run(async {
///     let child = create_subprocess_exec(["sh", "-c", "exit 3"]).await.unwrap();
///     assert_eq!(child.wait().await.unwrap().code(), Some(3));
///     assert_eq!(child.returncode(), Some(3));
///     let missing = create_subprocess_exec(["/nonexistent/program"]).stdout(Stdio::Null).await;
///     assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
/// });
/// ```
pub fn create_subprocess_exec<I, S>(argv: I) -> ProcessBuilder
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut it = argv.into_iter();
    let (cmd, bad_argv) = match it.next() {
        Some(program) => {
            let mut cmd = std::process::Command::new(program);
            cmd.args(it);
            (cmd, false)
        }
        None => (std::process::Command::new(""), true),
    };
    ProcessBuilder {
        cmd,
        stdin: Stdio::Inherit,
        stdout: Stdio::Inherit,
        stderr: Stdio::Inherit,
        watcher: ChildWatcher::Auto,
        close_fds: true,
        bad_argv,
    }
}

/// Starts building `/bin/sh -c cmd` (asyncio's `create_subprocess_shell`). Quote anything
/// that comes from outside yourself: the shell interprets the whole string.
///
/// ```
/// use corio::subprocess::{Stdio, create_subprocess_shell};
/// corio::run(async {
///     let mut child = create_subprocess_shell("echo out; echo err >&2")
///         .stdout(Stdio::Piped)
///         .stderr(Stdio::Stdout)
///         .await
///         .unwrap();
///     let out = child.communicate(None).await.unwrap();
///     assert_eq!(out.stdout, b"out\nerr\n");
/// });
/// ```
pub fn create_subprocess_shell(cmd: impl AsRef<OsStr>) -> ProcessBuilder {
    let sh: [&OsStr; 3] = ["/bin/sh".as_ref(), "-c".as_ref(), cmd.as_ref()];
    create_subprocess_exec(sh)
}

impl ProcessBuilder {
    /// Where the child's stdin comes from (default: inherited).
    pub fn stdin(mut self, s: Stdio) -> Self {
        self.stdin = s;
        self
    }

    /// Where the child's stdout goes (default: inherited).
    pub fn stdout(mut self, s: Stdio) -> Self {
        self.stdout = s;
        self
    }

    /// Where the child's stderr goes (default: inherited; [`Stdio::Stdout`]: with stdout).
    pub fn stderr(mut self, s: Stdio) -> Self {
        self.stderr = s;
        self
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what [`env`](Self::env) adds).
    pub fn env_clear(mut self) -> Self {
        self.cmd.env_clear();
        self
    }

    /// The child's working directory (asyncio's `cwd=`).
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// How the child is reaped (default [`ChildWatcher::Auto`]: pidfd where available).
    pub fn child_watcher(mut self, how: ChildWatcher) -> Self {
        self.watcher = how;
        self
    }

    /// Whether the child gets no fd but 0, 1 and 2 (default `true`, Python's `close_fds`).
    /// corio's own fds are close-on-exec anyway; this also keeps out fds this process
    /// inherited without close-on-exec (it costs a `close_range` in the child and makes std
    /// use `fork` rather than `posix_spawn`). With `false`, such fds leak into the child.
    pub fn close_fds(mut self, on: bool) -> Self {
        self.close_fds = on;
        self
    }

    /// The underlying std `Command`, for what this builder does not cover (`uid`,
    /// `process_group`, `pre_exec`, ...). Its stdio settings are overwritten at spawn.
    pub fn command_mut(&mut self) -> &mut std::process::Command {
        &mut self.cmd
    }

    /// Spawns the child now. Must be called on the loop thread while the loop runs (the
    /// pipes and the pidfd are registered with it). `.await`ing the builder does the same.
    pub fn spawn(self) -> io::Result<Process> {
        expect_current("create_subprocess_exec", |_| ());
        let ProcessBuilder {
            mut cmd,
            stdin,
            stdout,
            stderr,
            watcher,
            close_fds,
            bad_argv,
        } = self;
        if bad_argv {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty argv"));
        }
        let (child_in, parent_in) = child_side(stdin, true, None)?;
        let (child_out, parent_out) = child_side(stdout, false, None)?;
        let merged = match stderr {
            Stdio::Stdout => Some(duplicate(&child_out)?),
            _ => None,
        };
        let (child_err, parent_err) = child_side(stderr, false, merged)?;
        cmd.stdin(child_in.into_std());
        cmd.stdout(child_out.into_std());
        cmd.stderr(child_err.into_std());
        if close_fds {
            crate::sys::process::cloexec_other_fds_in_child(&mut cmd);
        }
        let spawned = cmd.spawn();
        // The child's ends live in `cmd`: close them in the parent now, or the parent itself
        // would keep the child's stdin open and its stdout from ever reaching EOF.
        drop(cmd);
        let child = spawned?;
        let pid = child.id();
        drop(child); // std's handle neither waits nor kills: the Watch reaps
        let watch = Watch::new(pid as libc::pid_t, watcher);
        let watch = match watch {
            Ok(w) => w,
            Err(e) => {
                // Cannot watch it: do not leave it running unwatched.
                let _ = crate::sys::process::kill(pid as libc::pid_t, libc::SIGKILL);
                let _ = reap_blocking(pid as libc::pid_t);
                return Err(e);
            }
        };
        Ok(Process {
            pid,
            stdin: parent_in.map(PipeWriter::new).transpose()?,
            stdout: parent_out.map(PipeReader::new).transpose()?,
            stderr: parent_err.map(PipeReader::new).transpose()?,
            status: Cell::new(None),
            waiters: Arc::new(FanOut::default()),
            watch: std::cell::RefCell::new(watch),
        })
    }
}

/// Waits for a child we could not watch (spawn error path only).
fn reap_blocking(pid: libc::pid_t) -> io::Result<()> {
    for _ in 0..1000 {
        if crate::sys::process::waitpid_nohang(pid)?.is_some() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

impl IntoFuture for ProcessBuilder {
    type Output = io::Result<Process>;
    type IntoFuture = std::future::Ready<io::Result<Process>>;

    /// Spawns the child (asyncio: `await create_subprocess_exec(...)`).
    fn into_future(self) -> Self::IntoFuture {
        std::future::ready(self.spawn())
    }
}

impl fmt::Debug for ProcessBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessBuilder")
            .field("cmd", &self.cmd)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("watcher", &self.watcher)
            .finish()
    }
}

/// The child's end of one standard stream.
enum ChildEnd {
    Inherit,
    Null,
    Fd(OwnedFd),
}

impl ChildEnd {
    fn into_std(self) -> std::process::Stdio {
        match self {
            ChildEnd::Inherit => std::process::Stdio::inherit(),
            ChildEnd::Null => std::process::Stdio::null(),
            ChildEnd::Fd(fd) => std::process::Stdio::from(fd),
        }
    }
}

/// A second handle on stdout's target, for `Stdio::Stdout` on stderr.
fn duplicate(end: &ChildEnd) -> io::Result<ChildEnd> {
    Ok(match end {
        ChildEnd::Inherit => ChildEnd::Fd(io::stdout().as_fd().try_clone_to_owned()?),
        ChildEnd::Null => ChildEnd::Null,
        ChildEnd::Fd(fd) => ChildEnd::Fd(fd.try_clone()?), // F_DUPFD_CLOEXEC
    })
}

/// The child's end and, for a pipe, the parent's end of one stream.
fn child_side(
    s: Stdio,
    input: bool,
    merged: Option<ChildEnd>,
) -> io::Result<(ChildEnd, Option<OwnedFd>)> {
    Ok(match s {
        Stdio::Inherit => (ChildEnd::Inherit, None),
        Stdio::Null => (ChildEnd::Null, None),
        Stdio::Fd(fd) => (ChildEnd::Fd(fd), None),
        Stdio::Piped => {
            let (r, w) = crate::sys::pipe()?; // both close-on-exec
            if input {
                (ChildEnd::Fd(r), Some(w))
            } else {
                (ChildEnd::Fd(w), Some(r))
            }
        }
        // `merged` is stdout's end, given for stderr only.
        Stdio::Stdout => match merged {
            Some(end) => (end, None),
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "Stdio::Stdout is for stderr only",
                ));
            }
        },
    })
}

/// Wakes every task waiting in [`Process::wait`]: the one waker the reaper holds fans out.
#[derive(Default)]
struct FanOut {
    wakers: Mutex<Vec<Waker>>,
}

impl Wake for FanOut {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|e| e.into_inner()));
        for w in wakers {
            w.wake();
        }
    }
}

/// A running (or finished) child process (asyncio's `asyncio.subprocess.Process`).
///
/// Made by [`create_subprocess_exec`] or [`create_subprocess_shell`]; belongs to the loop
/// that spawned it (`!Send`). Dropping it does not kill the child; the child is still reaped
/// when it exits (no zombie). Its pipes close when it is dropped.
pub struct Process {
    pid: u32,
    stdin: Option<PipeWriter>,
    stdout: Option<PipeReader>,
    stderr: Option<PipeReader>,
    /// The exit status, once reaped.
    status: Cell<Option<ExitStatus>>,
    waiters: Arc<FanOut>,
    watch: std::cell::RefCell<Watch>,
}

impl Process {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The child's stdin pipe, if [`Stdio::Piped`] (asyncio's `process.stdin`).
    pub fn stdin(&self) -> Option<&PipeWriter> {
        self.stdin.as_ref()
    }

    /// The child's stdout pipe, if [`Stdio::Piped`] (asyncio's `process.stdout`).
    pub fn stdout(&self) -> Option<&PipeReader> {
        self.stdout.as_ref()
    }

    /// The child's stderr pipe, if [`Stdio::Piped`] (asyncio's `process.stderr`).
    pub fn stderr(&self) -> Option<&PipeReader> {
        self.stderr.as_ref()
    }

    /// Takes the stdin pipe (drop it to close the child's stdin).
    pub fn take_stdin(&mut self) -> Option<PipeWriter> {
        self.stdin.take()
    }

    /// Takes the stdout pipe.
    pub fn take_stdout(&mut self) -> Option<PipeReader> {
        self.stdout.take()
    }

    /// Takes the stderr pipe.
    pub fn take_stderr(&mut self) -> Option<PipeReader> {
        self.stderr.take()
    }

    /// The exit code once the child has exited, `-N` if signal `N` killed it, `None` while it
    /// runs (asyncio's `returncode`). Reaps the child if it has exited.
    pub fn returncode(&self) -> Option<i32> {
        self.try_wait().ok().flatten().map(|s| match s.code() {
            Some(c) => c,
            None => -s.signal().unwrap_or(0),
        })
    }

    /// The exit status if the child has exited (reaping it), `None` if it still runs.
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status.get() {
            return Ok(Some(s));
        }
        let s = self.watch.borrow_mut().try_exit()?;
        if s.is_some() {
            self.status.set(s);
        }
        Ok(s)
    }

    /// Waits for the child to exit and returns its status (asyncio's `wait`); at once if it
    /// already has. Several tasks may wait at the same time.
    ///
    /// Beware the pipe deadlock (module docs): with piped stdout or stderr, read them (or
    /// use [`communicate`](Process::communicate)), or a chatty child blocks forever.
    ///
    /// *Cancel safety:* cancel-safe: nothing is lost; wait again later (asyncio's
    /// `wait_for(process.wait(), t)` then `terminate()`).
    pub async fn wait(&self) -> io::Result<ExitStatus> {
        poll_fn(|cx| self.poll_wait(cx)).await
    }

    /// The poll form of [`wait`](Process::wait).
    pub fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        if let Some(s) = self.status.get() {
            return Poll::Ready(Ok(s));
        }
        {
            let mut ws = self
                .waiters
                .wakers
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !ws.iter().any(|w| w.will_wake(cx.waker())) {
                ws.push(cx.waker().clone());
            }
        }
        let fan = Waker::from(self.waiters.clone());
        let r = self
            .watch
            .borrow_mut()
            .poll_exit(&mut Context::from_waker(&fan));
        if let Poll::Ready(Ok(s)) = r {
            self.status.set(Some(s));
            // The other waiters find the status when they run.
            let ws = std::mem::take(
                &mut *self
                    .waiters
                    .wakers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            for w in ws {
                if !w.will_wake(cx.waker()) {
                    w.wake();
                }
            }
        }
        r
    }

    /// Feeds `input` to stdin and closes it, reads stdout and stderr to EOF **at the same
    /// time**, then waits for the child (asyncio's `communicate`). Returns the status and
    /// what was read (empty for a stream that is not piped). A child that exits without
    /// reading all its input is not an error (`BrokenPipe` is ignored).
    ///
    /// Takes the pipes: after it, [`stdin`](Process::stdin) and the others are `None`.
    ///
    /// *Cancel safety:* not cancel-safe: if the future is dropped, input may be half written
    /// and the output read so far is lost, with the pipes.
    ///
    /// ```
    /// use corio::subprocess::{Stdio, create_subprocess_exec};
    /// corio::run(async {
    ///     // 1 MiB each way: more than any pipe holds, so reading and writing must overlap.
    ///     let mut child = create_subprocess_exec(["cat"])
    ///         .stdin(Stdio::Piped)
    ///         .stdout(Stdio::Piped)
    ///         .await
    ///         .unwrap();
    ///     let data = vec![b'x'; 1 << 20];
    ///     let out = child.communicate(Some(&data)).await.unwrap();
    ///     assert_eq!(out.stdout.len(), data.len());
    /// });
    /// ```
    pub async fn communicate(&mut self, input: Option<&[u8]>) -> io::Result<Output> {
        let stdin = self.stdin.take();
        if input.is_some_and(|i| !i.is_empty()) && stdin.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "communicate: input given but stdin is not piped",
            ));
        }
        let stdout = self.stdout.take();
        let stderr = self.stderr.take();
        let feed = async move {
            if let (Some(w), Some(data)) = (&stdin, input) {
                match w.write_all(data).await {
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                        ) => {}
                    r => r?,
                }
            }
            drop(stdin); // EOF for the child
            Ok::<(), io::Error>(())
        };
        let drain = |r: Option<PipeReader>| async move {
            let mut buf = Vec::new();
            if let Some(r) = r {
                r.read_to_end(&mut buf).await?;
            }
            Ok::<Vec<u8>, io::Error>(buf)
        };
        let (fed, out, err) = join3(feed, drain(stdout), drain(stderr)).await;
        fed?;
        let (stdout, stderr) = (out?, err?);
        let status = self.wait().await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Sends signal `sig` to the child (asyncio's `send_signal`). Fails with `ESRCH`
    /// (asyncio's `ProcessLookupError`) once the child has been reaped; never reaches a
    /// process that reused its pid.
    pub fn send_signal(&self, sig: i32) -> io::Result<()> {
        let _ = self.try_wait();
        self.watch.borrow().signal(sig)
    }

    /// Sends `SIGTERM` (asyncio's `terminate`).
    pub fn terminate(&self) -> io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// Sends `SIGKILL` (asyncio's `kill`).
    pub fn kill(&self) -> io::Result<()> {
        self.send_signal(libc::SIGKILL)
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("status", &self.status.get())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

/// Polls three futures together until all are done (what `gather` does, without tasks).
async fn join3<A, B, C>(a: A, b: B, c: C) -> (A::Output, B::Output, C::Output)
where
    A: std::future::Future,
    B: std::future::Future,
    C: std::future::Future,
{
    let (mut a, mut b, mut c) = (pin!(a), pin!(b), pin!(c));
    let (mut ra, mut rb, mut rc) = (None, None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if rc.is_none() {
            if let Poll::Ready(v) = c.as_mut().poll(cx) {
                rc = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() && rc.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (ra.unwrap(), rb.unwrap(), rc.unwrap())
}
