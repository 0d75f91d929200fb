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

mod sock;
mod tcp;

pub use self::tcp::{TcpListener, TcpStream};

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::base_events::io::{Direction, IoKey};
use crate::base_events::{Core, expect_current};

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
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            if self
                .core
                .io
                .borrow_mut()
                .poll_ready(self.key, dir, cx)
                .is_pending()
            {
                return Poll::Pending;
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.core.io.borrow_mut().clear_readiness(self.key, dir);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return Poll::Ready(r),
            }
        }
    }

    pub(crate) fn clear_after_short_read(&self) {
        self.core.io.borrow_mut().clear_after_short_read(self.key);
    }

    pub(crate) fn clear_readiness(&self, dir: Direction) {
        self.core.io.borrow_mut().clear_readiness(self.key, dir);
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
