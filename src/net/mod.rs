//! Sockets on the loop: TCP listener and stream, and asyncio's `sock_*` loop methods.
//!
//! asyncio counterpart: `selector_events.py` (`sock_recv`, `sock_sendall`, `sock_accept`,
//! `sock_connect`) and the book's chapter 14 server. Layer 4: uses the loop's I/O table;
//! used by the examples and (later) transports and streams.
//!
//! # How an operation runs (the hot path)
//!
//! Each corio socket is registered **once**, edge-triggered, for reading and writing. The
//! loop keeps the readiness the selector reported. An operation such as
//! [`TcpStream::read`]:
//! 1. if the cached readiness says readable, makes the syscall straight away;
//! 2. on `WouldBlock`, clears the cached bit, parks the task's waker and returns `Pending`;
//! 3. the next edge (new data, EOF, error) sets the bit and wakes the task, which goes to 1.
//!
//! A read that fills less than the buffer also clears the bit (the socket is drained; the
//! next edge will say when more comes), unless the peer already hung up, so an echo round
//! trip costs one `read` and one `write` and no `epoll_ctl`.
//!
//! Writes use `send(MSG_NOSIGNAL)` (through std), so a closed peer gives `EPIPE` as an
//! error and never kills the process with `SIGPIPE`.

pub(crate) mod addr;
mod sock;
mod tcp;
pub(crate) mod udp;

pub use self::addr::ToSocketAddrs;
pub use self::tcp::{DEFAULT_BACKLOG, TcpListener, TcpStream};

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::base_events::io::{Direction, IoKey};
use crate::base_events::{Core, expect_current};
use crate::events::HandleDyn;

/// An fd registered with the loop for its lifetime (edge-triggered, both directions).
/// Must be dropped before the fd is closed (struct fields drop in declaration order).
pub(crate) struct Registration {
    core: Rc<Core>,
    key: IoKey,
}

impl Registration {
    /// Registers `fd` with the running loop, assuming the readiness bits in `readiness`.
    pub(crate) fn new(fd: RawFd, readiness: u8) -> io::Result<Registration> {
        expect_current("registering a socket", |core| {
            if core.is_closed() {
                return Err(io::Error::other("the event loop is closed"));
            }
            let key = core
                .io
                .borrow_mut()
                .register_owned(&*core.shared.selector, fd, readiness)?;
            Ok(Registration {
                core: core.clone(),
                key,
            })
        })
    }

    /// Runs `op` when the cached readiness allows `dir`, parking the task on `WouldBlock`.
    pub(crate) fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_io_then(dir, cx, op, |_, _| false)
    }

    /// A `read` into a buffer of `len` bytes: also forgets readability after a short read
    /// (see `IoTable::clear_after_short_read`), saving the read that would only say `EAGAIN`.
    pub(crate) fn poll_read_io(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_io_then(Direction::Read, cx, op, |io, n| {
            if *n > 0 && *n < len {
                io.clear_after_short_read(self.key);
            }
            false
        })
    }

    /// A `write` of `len` bytes: a partial write means the send buffer is full, so the next
    /// write would only say `EAGAIN`; forget writability until the next edge.
    pub(crate) fn poll_write_io(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_io_then(Direction::Write, cx, op, |_, n| *n < len)
    }

    /// The one loop behind every operation: check the cached readiness (parking the waker
    /// when not ready), run the syscall, forget readiness on `WouldBlock`, and let `after`
    /// look at a success (returning `true` forgets readiness for `dir`). One borrow of the
    /// I/O table for all of it: `op` is a bare syscall and must not touch the loop.
    fn poll_io_then<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> io::Result<R>,
        after: impl FnOnce(&mut crate::base_events::io::IoTable, &R) -> bool,
    ) -> Poll<io::Result<R>> {
        let mut io = self.core.io.borrow_mut();
        loop {
            match io.poll_ready(self.key, dir, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    io.would_block(&*self.core.shared.selector, self.key, dir);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(r) => {
                    if after(&mut io, &r) {
                        io.clear_readiness(self.key, dir);
                    }
                    return Poll::Ready(Ok(r));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Runs `op` if the cached readiness allows `dir`, without parking anything: the
    /// callback-driven form of [`poll_io`](Registration::poll_io), used by transports. `None`
    /// means "not ready" (known from the cache, or just learnt from `WouldBlock`).
    pub(crate) fn try_io<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Option<io::Result<R>> {
        loop {
            if !self.core.io.borrow_mut().is_ready(self.key, dir) {
                return None;
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let selector = &*self.core.shared.selector;
                    self.core
                        .io
                        .borrow_mut()
                        .would_block(selector, self.key, dir);
                    return None;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return Some(r),
            }
        }
    }

    /// The transports' read: [`try_io`](Registration::try_io) for a `read` into `len` bytes,
    /// plus, after a short read, forgetting readability (the socket is drained; see
    /// `IoTable::clear_after_short_read`). Returns the result and whether readiness is still
    /// cached (more to read, or an EOF or error to report). One borrow of the I/O table.
    pub(crate) fn try_read(
        &self,
        len: usize,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> (Option<io::Result<usize>>, bool) {
        let mut io = self.core.io.borrow_mut();
        loop {
            if !io.is_ready(self.key, Direction::Read) {
                return (None, false);
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    io.clear_readiness(self.key, Direction::Read);
                    return (None, false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(n) if n > 0 && n < len => {
                    io.clear_after_short_read(self.key);
                    return (Some(Ok(n)), io.is_ready(self.key, Direction::Read));
                }
                r => return (Some(r), true),
            }
        }
    }

    /// The transports' write of `len` bytes: [`try_io`](Registration::try_io), plus, after
    /// a partial write, forgetting writability (the send buffer is full: the next write
    /// would only say `EAGAIN`). One borrow of the I/O table.
    pub(crate) fn try_write(
        &self,
        len: usize,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> Option<io::Result<usize>> {
        let mut io = self.core.io.borrow_mut();
        loop {
            if !io.is_ready(self.key, Direction::Write) {
                return None;
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    io.would_block(&*self.core.shared.selector, self.key, Direction::Write);
                    return None;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(n) if n < len => {
                    io.clear_readiness(self.key, Direction::Write);
                    return Some(Ok(n));
                }
                r => return Some(r),
            }
        }
    }

    /// Whether the cached readiness allows `dir`.
    pub(crate) fn is_ready(&self, dir: Direction) -> bool {
        self.core.io.borrow_mut().is_ready(self.key, dir)
    }

    /// Sets (or with `None` removes) the callback the loop queues on each event for `dir`.
    pub(crate) fn set_callback(&self, dir: Direction, cb: Option<Rc<dyn HandleDyn>>) {
        let old = self
            .core
            .io
            .borrow_mut()
            .set_owned_callback(self.key, dir, cb);
        drop(old);
    }

    /// Forgets the waker parked for reading (one that will not read after all).
    pub(crate) fn take_reader(&self) -> Option<std::task::Waker> {
        self.core.io.borrow_mut().take_reader(self.key)
    }

    /// Whether a callback is set for `dir`.
    pub(crate) fn has_callback(&self, dir: Direction) -> bool {
        self.core.io.borrow_mut().has_owned_callback(self.key, dir)
    }

    /// The loop this fd is registered with.
    pub(crate) fn core(&self) -> &Rc<Core> {
        &self.core
    }

    /// Whether the peer was reported to have closed its side.
    pub(crate) fn read_closed(&self) -> bool {
        self.core.io.borrow_mut().read_closed(self.key)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let parked = {
            let Ok(mut io) = self.core.io.try_borrow_mut() else {
                return;
            };
            io.deregister_owned(&*self.core.shared.selector, self.key)
        };
        drop(parked);
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("key", &self.key)
            .finish()
    }
}
