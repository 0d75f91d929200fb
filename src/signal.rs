//! Unix signals on the loop: handlers that run as ordinary loop callbacks, and futures that
//! wait for a signal.
//!
//! asyncio counterpart: `loop.add_signal_handler` / `remove_signal_handler`
//! (`unix_events.py`). Layer 3: built on the loop's fd callbacks (`add_reader`) and on the
//! `signal-hook` crate; used by servers for graceful shutdown (`examples/echo_server.rs`).
//!
//! # The delivery path
//!
//! A signal handler may only do async-signal-safe work: no allocation, no locks, so it can
//! neither run user code nor push onto the loop's (mutex-protected) thread-safe queue. corio
//! uses the self-pipe pattern, as asyncio does with `signal.set_wakeup_fd`:
//!
//! 1. for each signal a loop handles, a non-blocking Unix socket pair is made and its write
//!    end given to [`signal_hook::low_level::pipe::register`]: the process-wide handler that
//!    signal-hook installs `send`s one byte into it (`MSG_DONTWAIT`; a full socket means a
//!    wake-up is pending anyway) — that is all that runs in signal context;
//! 2. the loop watches the read end with an `add_reader` callback. When it is readable the
//!    callback first **drains** the socket, **then** acts (signal-hook's rule: the other order
//!    could lose a signal that arrives in between): it counts one delivery for each waiter
//!    ([`Signals`], [`wait`]) and calls the handler set with
//!    [`EventLoop::add_signal_handler`] — an ordinary callback on the loop thread, which may
//!    allocate, lock, spawn tasks or stop the loop.
//!
//! Why this and not `signal_hook::iterator` plus `call_soon_threadsafe`: no extra thread per
//! loop, no lock in the delivery path, and the wake-up goes straight into the loop's selector
//! like any other readiness.
//!
//! Consequences worth knowing:
//!
//! - **Deliveries coalesce.** The kernel merges pending instances of one signal, and the
//!   socket is drained once per turn, so several signals in quick succession may run the
//!   handler once. Never count signals; treat one as "at least one arrived".
//! - **Every loop sees every delivery.** Signals are process-wide; each loop (each thread)
//!   that handles a signal gets its own socket pair, so all of them are told (this is how
//!   `echo_server --threads N` stops all its loops with one Ctrl-C).
//! - **Removing the last handler restores the default action** (asyncio restores `SIG_DFL`):
//!   signal-hook never uninstalls its process-wide handler, so corio registers, once per
//!   signal, a [`signal_hook::flag::register_conditional_default`] action that emulates the
//!   default action (for `SIGINT`/`SIGTERM`: terminate) while no corio handler or waiter is
//!   left for that signal, anywhere in the process.
//! - `SIGKILL`, `SIGSTOP` and the signals of program faults (`SIGSEGV`, `SIGILL`, `SIGFPE`)
//!   cannot be handled ([`signal_hook::consts::FORBIDDEN`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, Waker};

use libc::c_int;
use signal_hook::SigId;

use crate::base_events::io::Direction;
use crate::base_events::{Core, EventLoop, expect_current};
use crate::events::RepeatHandle;

pub use libc::{
    SIGALRM, SIGCHLD, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
};

// ---- process-wide: restoring the default action ----------------------------------------

struct GlobalSig {
    /// Loops (handlers or waiters) currently handling the signal, in the whole process.
    users: usize,
    /// Read by the conditional-default action in signal context.
    restore_default: Arc<AtomicBool>,
}

static GLOBAL: LazyLock<Mutex<HashMap<c_int, GlobalSig>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn global_acquire(sig: c_int) {
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = g.entry(sig).or_insert_with(|| {
        let flag = Arc::new(AtomicBool::new(false));
        // An unknown signal (a real-time one) has no default to emulate: then removing the
        // last handler leaves it ignored, signal-hook's own behaviour.
        let _ = signal_hook::flag::register_conditional_default(sig, flag.clone());
        GlobalSig {
            users: 0,
            restore_default: flag,
        }
    });
    e.users += 1;
    e.restore_default.store(false, Ordering::SeqCst);
}

fn global_release(sig: c_int) {
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = g.get_mut(&sig) {
        e.users -= 1;
        if e.users == 0 {
            e.restore_default.store(true, Ordering::SeqCst);
        }
    }
}

// ---- per loop ---------------------------------------------------------------------------

struct Listener {
    /// Deliveries not consumed yet.
    pending: u32,
    waker: Option<Waker>,
}

type Handler = Rc<RefCell<dyn FnMut()>>;

/// One signal handled by one loop: its socket pair, handler and waiters.
struct SigEntry {
    sig: c_int,
    /// signal-hook's action writing into our socket; unregistering it closes the write end.
    action: SigId,
    read: UnixStream,
    handler: RefCell<Option<Handler>>,
    listeners: RefCell<HashMap<u64, Listener>>,
}

impl SigEntry {
    /// The `add_reader` callback: drain, then act.
    fn dispatch(&self) {
        let mut got = false;
        let mut buf = [0u8; 64];
        loop {
            match (&self.read).read(&mut buf) {
                Ok(0) => break,
                Ok(_) => got = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break, // WouldBlock: drained
            }
        }
        if !got {
            return;
        }
        for l in self.listeners.borrow_mut().values_mut() {
            l.pending = l.pending.saturating_add(1);
            if let Some(w) = l.waker.take() {
                w.wake();
            }
        }
        let handler = self.handler.borrow().clone();
        if let Some(h) = handler {
            // A handler that re-enters itself (it cannot, through the loop) is skipped.
            if let Ok(mut f) = h.try_borrow_mut() {
                f();
            }
        }
    }

    fn unused(&self) -> bool {
        self.handler.borrow().is_none() && self.listeners.borrow().is_empty()
    }
}

impl Drop for SigEntry {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.action);
        global_release(self.sig);
    }
}

/// The signals one loop handles (a field of the loop core; dropped when the loop closes).
#[derive(Default)]
pub(crate) struct LoopSignals {
    entries: HashMap<c_int, Rc<SigEntry>>,
    next_listener: u64,
}

fn check_signal(sig: c_int) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let max = libc::SIGRTMAX();
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let max = 64;
    if sig <= 0 || sig > max || signal_hook::consts::FORBIDDEN.contains(&sig) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {sig} cannot be handled"),
        ));
    }
    Ok(())
}

/// The entry for `sig` on this loop, made (socket pair, signal-hook action, reader) on
/// first use.
fn entry(core: &Rc<Core>, sig: c_int) -> io::Result<Rc<SigEntry>> {
    if let Some(e) = core.signals.borrow().entries.get(&sig) {
        return Ok(e.clone());
    }
    check_signal(sig)?;
    if core.is_closed() {
        return Err(io::Error::other("the event loop is closed"));
    }
    let (read, write) = UnixStream::pair()?; // close-on-exec
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    let action = signal_hook::low_level::pipe::register(sig, write)?;
    global_acquire(sig);
    let e = Rc::new(SigEntry {
        sig,
        action,
        read,
        handler: RefCell::new(None),
        listeners: RefCell::new(HashMap::new()),
    });
    let weak: Weak<SigEntry> = Rc::downgrade(&e);
    let watched = core.io.borrow_mut().set_callback(
        &*core.shared.selector,
        e.read.as_raw_fd(),
        Direction::Read,
        Some(RepeatHandle::boxed(move || {
            if let Some(e) = weak.upgrade() {
                e.dispatch();
            }
        })),
    );
    watched?; // on error `e` drops here: action unregistered, counts released
    core.signals.borrow_mut().entries.insert(sig, e.clone());
    Ok(e)
}

/// Forgets `sig` on this loop if nothing uses it any more.
fn release_if_unused(core: &Rc<Core>, sig: c_int) {
    let removed = {
        let Ok(mut table) = core.signals.try_borrow_mut() else {
            return; // the loop is dropping its table: everything goes anyway
        };
        match table.entries.get(&sig) {
            Some(e) if e.unused() => table.entries.remove(&sig),
            _ => None,
        }
    };
    if let Some(e) = removed {
        unwatch(core, e.read.as_raw_fd());
        drop(e); // after the fd left the selector: unregisters the action, closes both ends
    }
}

/// Removes the reader callback of `fd` (also while the loop is closing: no `check_open`).
fn unwatch(core: &Rc<Core>, fd: RawFd) {
    let old = match core.io.try_borrow_mut() {
        Ok(mut io) => io
            .set_callback(&*core.shared.selector, fd, Direction::Read, None)
            .ok()
            .flatten(),
        Err(_) => None,
    };
    if let Some(h) = old {
        h.cancel();
    }
}

impl EventLoop {
    /// Calls `callback` on this loop whenever signal `sig` arrives (asyncio's
    /// `loop.add_signal_handler`). Replaces this loop's earlier handler for `sig`.
    ///
    /// The callback is an ordinary loop callback, run on the loop thread in a turn of the
    /// loop, never inside the signal handler: it may do anything a callback may. A panic in it
    /// goes to the exception handler. Several deliveries close together may run it once (see
    /// the [module docs](crate::signal)).
    ///
    /// Errors: `InvalidInput` for a signal that cannot be handled (`SIGKILL`, `SIGSTOP`,
    /// `SIGSEGV`, `SIGILL`, `SIGFPE`, or not a signal number).
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use corio::signal::SIGUSR1;
    ///
    /// let ev = corio::EventLoop::new().unwrap();
    /// let got = Rc::new(Cell::new(0));
    /// let g = got.clone();
    /// let ev2 = ev.clone();
    /// ev.add_signal_handler(SIGUSR1, move || {
    ///     g.set(g.get() + 1);
    ///     ev2.stop();
    /// })
    /// .unwrap();
    /// signal_hook::low_level::raise(SIGUSR1).unwrap();
    /// ev.run_forever(); // until the handler stops it
    /// assert_eq!(got.get(), 1);
    /// assert!(ev.remove_signal_handler(SIGUSR1));
    /// ```
    pub fn add_signal_handler(
        &self,
        sig: c_int,
        callback: impl FnMut() + 'static,
    ) -> io::Result<()> {
        let e = entry(&self.core, sig)?;
        *e.handler.borrow_mut() = Some(Rc::new(RefCell::new(callback)));
        Ok(())
    }

    /// Removes this loop's handler for `sig` (asyncio's `remove_signal_handler`); returns
    /// whether there was one. When no loop of the process handles or waits for `sig` any more,
    /// its default action is back (for `SIGINT`: terminate the process).
    pub fn remove_signal_handler(&self, sig: c_int) -> bool {
        let Some(e) = self.core.signals.borrow().entries.get(&sig).cloned() else {
            return false;
        };
        let had = e.handler.borrow_mut().take().is_some();
        drop(e);
        release_if_unused(&self.core, sig);
        had
    }
}

// ---- waiting for signals ---------------------------------------------------------------

/// One waiter's registration on one signal of one loop.
struct ListenerKey {
    core: Rc<Core>,
    sig: c_int,
    id: u64,
}

impl ListenerKey {
    fn new(core: &Rc<Core>, sig: c_int) -> io::Result<ListenerKey> {
        let e = entry(core, sig)?;
        let id = {
            let mut t = core.signals.borrow_mut();
            t.next_listener += 1;
            t.next_listener
        };
        e.listeners.borrow_mut().insert(
            id,
            Listener {
                pending: 0,
                waker: None,
            },
        );
        Ok(ListenerKey {
            core: core.clone(),
            sig,
            id,
        })
    }

    /// Consumes one delivery if there is one; otherwise parks `waker` (if given).
    fn take(&self, waker: Option<&Waker>) -> bool {
        let Some(e) = self.core.signals.borrow().entries.get(&self.sig).cloned() else {
            return false;
        };
        let mut ls = e.listeners.borrow_mut();
        let Some(l) = ls.get_mut(&self.id) else {
            return false;
        };
        if l.pending > 0 {
            l.pending -= 1;
            return true;
        }
        if let Some(w) = waker {
            match &l.waker {
                Some(old) if old.will_wake(w) => {}
                _ => l.waker = Some(w.clone()),
            }
        }
        false
    }
}

impl Drop for ListenerKey {
    fn drop(&mut self) {
        let e = match self.core.signals.try_borrow() {
            Ok(t) => t.entries.get(&self.sig).cloned(),
            Err(_) => None,
        };
        if let Some(e) = e {
            e.listeners.borrow_mut().remove(&self.id);
            drop(e);
            release_if_unused(&self.core, self.sig);
        }
    }
}

/// A stream of signals received by the running loop (tokio's `signal::unix::Signal`,
/// signal-hook's `Signals`, as a corio type).
///
/// From the moment it is created, every delivery of one of its signals is recorded (same
/// signal several times before a `recv`: possibly once, see the [module docs](crate::signal)).
/// [`recv`](Signals::recv) returns the next one. Dropping it stops listening.
///
/// ```
/// use corio::signal::{Signals, SIGUSR1, SIGUSR2};
///
/// corio::run(async {
///     let mut signals = Signals::new([SIGUSR1, SIGUSR2]).unwrap();
///     signal_hook::low_level::raise(SIGUSR2).unwrap();
///     assert_eq!(signals.recv().await, SIGUSR2);
/// });
/// ```
pub struct Signals {
    keys: Vec<ListenerKey>,
    /// Where the next search for a pending signal starts (fairness between signals).
    next: usize,
}

impl Signals {
    /// Starts listening for `sigs` on the running loop. Panics outside a running loop.
    ///
    /// Errors: `InvalidInput` for a signal that cannot be handled.
    pub fn new(sigs: impl IntoIterator<Item = c_int>) -> io::Result<Signals> {
        expect_current("Signals::new", |core| {
            let mut keys = Vec::new();
            for sig in sigs {
                if !keys.iter().any(|k: &ListenerKey| k.sig == sig) {
                    keys.push(ListenerKey::new(core, sig)?);
                }
            }
            Ok(Signals { keys, next: 0 })
        })
    }

    /// The next signal received (its number).
    ///
    /// *Cancel safety:* cancel-safe. A delivery is consumed only when `recv` returns it.
    pub async fn recv(&mut self) -> c_int {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll form of [`recv`](Signals::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<c_int> {
        match self.pick(Some(cx.waker())) {
            Some(sig) => Poll::Ready(sig),
            None => Poll::Pending,
        }
    }

    /// A signal received and not yet returned, if any.
    pub fn try_recv(&mut self) -> Option<c_int> {
        self.pick(None)
    }

    fn pick(&mut self, waker: Option<&Waker>) -> Option<c_int> {
        let n = self.keys.len();
        for i in 0..n {
            let k = &self.keys[(self.next + i) % n];
            if k.take(None) {
                self.next = (self.next + i + 1) % n;
                return Some(k.sig);
            }
        }
        if let Some(w) = waker {
            for k in &self.keys {
                if k.take(Some(w)) {
                    return Some(k.sig); // arrived between the two passes
                }
            }
        }
        None
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field(
                "signals",
                &self.keys.iter().map(|k| k.sig).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Waits for the next delivery of `sig` to the running loop.
///
/// Listening starts when `wait` is called (not when the future is first polled), so a signal
/// sent right after the call is not missed. Panics outside a running loop; resolves to
/// `InvalidInput` for a signal that cannot be handled.
///
/// *Cancel safety:* dropping the future stops listening; nothing is lost that a later
/// `wait` would have seen, since each `wait` only sees signals sent after it started.
///
/// ```
/// use corio::signal::{self, SIGUSR1};
///
/// corio::run(async {
///     let got = signal::wait(SIGUSR1);
///     signal_hook::low_level::raise(SIGUSR1).unwrap();
///     got.await.unwrap();
/// });
/// ```
pub fn wait(sig: c_int) -> Wait {
    Wait {
        key: expect_current("signal::wait", |core| ListenerKey::new(core, sig)),
    }
}

/// The future returned by [`wait`].
#[must_use = "a signal is only awaited when the future is awaited"]
pub struct Wait {
    key: io::Result<ListenerKey>,
}

impl std::future::Future for Wait {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &self.key {
            Ok(k) => {
                if k.take(Some(cx.waker())) {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                }
            }
            Err(_) => {
                let err = std::mem::replace(&mut self.key, Err(io::ErrorKind::Other.into()));
                Poll::Ready(Err(err.err().expect("checked above")))
            }
        }
    }
}

impl fmt::Debug for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("signal", &self.key.as_ref().ok().map(|k| k.sig))
            .finish()
    }
}
