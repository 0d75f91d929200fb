//! asyncio's low-level socket methods on the loop: `sock_recv`, `sock_sendall`,
//! `sock_accept`, `sock_connect`, for non-blocking sockets the caller owns.
//!
//! Each operation tries its syscall first; on `WouldBlock` it parks on a level-triggered,
//! per-operation registration of the fd (asyncio's `add_reader` + `remove_reader` around the
//! wait), so nothing stays registered once the operation ends.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use socket2::{SockAddr, SockRef, Socket};

use crate::EventLoop;
use crate::base_events::Core;
use crate::base_events::io::Direction;

/// Waits until a raw fd is ready for `dir`, through a temporary registration.
struct WaitRaw {
    core: Rc<Core>,
    fd: RawFd,
    dir: Direction,
    parked: bool,
}

impl std::future::Future for WaitRaw {
    type Output = io::Result<()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.core.io.borrow_mut().poll_raw(
            &*this.core.shared.selector,
            this.fd,
            this.dir,
            &mut this.parked,
            cx,
        )
    }
}

impl Drop for WaitRaw {
    fn drop(&mut self) {
        if self.parked {
            if let Ok(mut io) = self.core.io.try_borrow_mut() {
                io.cancel_raw(&*self.core.shared.selector, self.fd, self.dir);
            }
        }
    }
}

/// `send(2)` flags for `sock_sendall`: a closed peer must give `EPIPE`, never `SIGPIPE` (B31).
/// socket2's `Write` impl sends with no flags, so it is not used for sending.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = 0;

fn is_blocking_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted
}

impl EventLoop {
    fn wait_raw(&self, fd: RawFd, dir: Direction) -> WaitRaw {
        WaitRaw {
            core: self.core.clone(),
            fd,
            dir,
            parked: false,
        }
    }

    /// Receives up to `buf.len()` bytes from a non-blocking socket (asyncio's `sock_recv`);
    /// `Ok(0)` is EOF.
    ///
    /// ```
    /// use std::io::Write;
    /// let ev = corio::EventLoop::new().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// b.write_all(b"hi").unwrap();
    /// let mut buf = [0; 8];
    /// let n = ev.run_until_complete(ev.sock_recv(&a, &mut buf)).unwrap();
    /// assert_eq!(&buf[..n], b"hi");
    /// ```
    pub async fn sock_recv(&self, sock: &impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
        let s = SockRef::from(sock);
        loop {
            match (&*s).read(buf) {
                Err(e) if is_blocking_error(&e) => {
                    self.wait_raw(sock.as_fd().as_raw_fd(), Direction::Read)
                        .await?
                }
                r => return r,
            }
        }
    }

    /// Sends all of `data` on a non-blocking socket (asyncio's `sock_sendall`). A closed
    /// peer gives `BrokenPipe`, never `SIGPIPE`.
    pub async fn sock_sendall(&self, sock: &impl AsFd, mut data: &[u8]) -> io::Result<()> {
        let s = SockRef::from(sock);
        while !data.is_empty() {
            match s.send_with_flags(data, SEND_FLAGS) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if is_blocking_error(&e) => {
                    self.wait_raw(sock.as_fd().as_raw_fd(), Direction::Write)
                        .await?
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Accepts a connection on a non-blocking listening socket (asyncio's `sock_accept`).
    /// The new socket is non-blocking and close-on-exec.
    pub async fn sock_accept(&self, sock: &impl AsFd) -> io::Result<(Socket, SocketAddr)> {
        loop {
            match crate::sys::accept4(sock.as_fd()) {
                Ok((fd, addr)) => return Ok((Socket::from(fd), addr)),
                Err(e) if is_blocking_error(&e) => {
                    self.wait_raw(sock.as_fd().as_raw_fd(), Direction::Read)
                        .await?
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Connects a non-blocking socket to `addr` (asyncio's `sock_connect`).
    pub async fn sock_connect(&self, sock: &impl AsFd, addr: SocketAddr) -> io::Result<()> {
        let s = SockRef::from(sock);
        match s.connect(&SockAddr::from(addr)) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) || is_blocking_error(&e) => {}
            Err(e) => return Err(e),
        }
        self.wait_raw(sock.as_fd().as_raw_fd(), Direction::Write)
            .await?;
        match s.take_error()? {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits until `fd` is readable (a one-shot `add_reader`).
    pub async fn wait_readable(&self, fd: &impl AsFd) -> io::Result<()> {
        let fd = fd.as_fd().as_raw_fd();
        self.wait_raw(fd, Direction::Read).await
    }

    /// Waits until `fd` is writable (a one-shot `add_writer`).
    pub async fn wait_writable(&self, fd: &impl AsFd) -> io::Result<()> {
        let fd = fd.as_fd().as_raw_fd();
        self.wait_raw(fd, Direction::Write).await
    }
}
