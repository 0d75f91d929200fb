//! Pipes as transports: `connect_read_pipe`, `connect_write_pipe` (asyncio's
//! `unix_events.py`: `_UnixReadPipeTransport`, `_UnixWritePipeTransport`).
//!
//! Layer 4: the same [`Transport`] as sockets, over a pipe, a FIFO or a character device
//! (a terminal). Regular files cannot be watched by epoll and are refused (asyncio refuses
//! them too).
//!
//! The fd is made non-blocking. If it was blocking before (stdin and stdout usually are,
//! and the setting is shared with every process using the same terminal or pipe), it is made
//! blocking again when the transport closes.
//!
//! To read stdin without taking it from the rest of the program, pass a duplicate:
//! `std::io::stdin().as_fd().try_clone_to_owned()`.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;

use crate::EventLoop;
use crate::net::Registration;
use crate::selector::Event;
use crate::server::start_transport;
use crate::transports::{IntoProtocol, Io, IoPair, Kind, Transport};

/// A new pipe, `(read end, write end)`, both close-on-exec and blocking until a transport
/// takes them (asyncio users call `os.pipe()`).
///
/// ```
/// use std::io::Write;
/// let (r, w) = corio::pipes::pipe().unwrap();
/// let mut w = std::fs::File::from(w);
/// w.write_all(b"x").unwrap();
/// # drop(r);
/// ```
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    crate::sys::pipe()
}

pub(crate) fn pipe_pair(fd: OwnedFd, readiness: u8) -> io::Result<IoPair> {
    let was_nonblocking = crate::sys::set_nonblocking(fd.as_fd(), true)?;
    let reg = match Registration::new(fd.as_raw_fd(), readiness) {
        Ok(r) => r,
        Err(e) => {
            if !was_nonblocking {
                let _ = crate::sys::set_nonblocking(fd.as_fd(), false);
            }
            if e.raw_os_error() == Some(libc::EPERM) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "pipe transports are for pipes, sockets and character devices only",
                ));
            }
            return Err(e);
        }
    };
    Ok(IoPair {
        reg,
        io: Io::Pipe(std::fs::File::from(fd)),
        restore_blocking: !was_nonblocking,
    })
}

impl EventLoop {
    /// Reads from a pipe (or a tty, or a socket) through `factory`'s protocol (asyncio's
    /// `connect_read_pipe`). At EOF the protocol gets `eof_received`, then the transport
    /// closes. The transport owns `pipe` and closes it.
    ///
    /// ```
    /// use std::io::Write;
    /// use corio::protocols::{BaseProtocol, Protocol};
    ///
    /// #[derive(Default)]
    /// struct Collect(Vec<u8>, bool);
    /// impl BaseProtocol for Collect {
    ///     fn connection_lost(&mut self, _: Option<std::io::Error>) { self.1 = true; }
    /// }
    /// impl Protocol for Collect {
    ///     fn data_received(&mut self, d: &[u8]) { self.0.extend_from_slice(d); }
    /// }
    ///
    /// corio::run(async {
    ///     let (r, w) = corio::pipes::pipe().unwrap();
    ///     let ev = corio::get_running_loop();
    ///     let (_t, proto) = ev.connect_read_pipe(Collect::default, r).await.unwrap();
    ///     std::fs::File::from(w).write_all(b"through a pipe").unwrap(); // closes w
    ///     while !proto.borrow().1 {
    ///         corio::sleep(std::time::Duration::from_millis(1)).await;
    ///     }
    ///     assert_eq!(proto.borrow().0, b"through a pipe");
    /// });
    /// ```
    pub async fn connect_read_pipe<P, M>(
        &self,
        factory: impl FnOnce() -> P,
        pipe: impl Into<OwnedFd>,
    ) -> io::Result<(Transport, Rc<RefCell<P>>)>
    where
        P: IntoProtocol<M>,
    {
        let pair = pipe_pair(pipe.into(), Event::READABLE)?;
        start_transport(pair, Kind::ReadPipe, factory).await
    }

    /// Writes to a pipe through a transport (asyncio's `connect_write_pipe`): buffered,
    /// flow-controlled writes; [`Transport::write_eof`] and [`Transport::close`] close the
    /// pipe after flushing. When the reader goes away, the protocol gets `connection_lost`
    /// (with `BrokenPipe` if output was still buffered).
    ///
    /// ```
    /// use std::io::Read;
    /// use corio::protocols::{BaseProtocol, Protocol};
    ///
    /// struct Silent;
    /// impl BaseProtocol for Silent {}
    /// impl Protocol for Silent { fn data_received(&mut self, _: &[u8]) {} }
    ///
    /// corio::run(async {
    ///     let (r, w) = corio::pipes::pipe().unwrap();
    ///     let ev = corio::get_running_loop();
    ///     let (t, _) = ev.connect_write_pipe(|| Silent, w).await.unwrap();
    ///     t.write(b"to the reader");
    ///     t.write_eof();
    ///     corio::sleep(std::time::Duration::from_millis(10)).await;
    ///     let mut got = String::new();
    ///     std::fs::File::from(r).read_to_string(&mut got).unwrap();
    ///     assert_eq!(got, "to the reader");
    /// });
    /// ```
    pub async fn connect_write_pipe<P, M>(
        &self,
        factory: impl FnOnce() -> P,
        pipe: impl Into<OwnedFd>,
    ) -> io::Result<(Transport, Rc<RefCell<P>>)>
    where
        P: IntoProtocol<M>,
    {
        let pair = pipe_pair(pipe.into(), Event::WRITABLE)?;
        start_transport(pair, Kind::WritePipe, factory).await
    }
}
