//! `TcpListener` and `TcpStream`: non-blocking TCP sockets driven by the loop.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::task::{Context, Poll};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::Registration;
use crate::base_events::io::Direction;
use crate::selector::Event;

/// How many pending connections the kernel queues for a listener (tokio's default; asyncio
/// uses 100).
pub const DEFAULT_BACKLOG: i32 = 1024;

fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no socket address to use",
        ));
    }
    Ok(addrs)
}

fn new_socket(addr: &SocketAddr) -> io::Result<Socket> {
    let ty = Type::STREAM;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let ty = ty.nonblocking().cloexec();
    let sock = Socket::new(Domain::for_address(*addr), ty, Some(Protocol::TCP))?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// A TCP socket listening for connections (asyncio: the server socket of `start_server`,
/// accepted with `loop.sock_accept`).
///
/// ```
/// corio::run(async {
///     let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = corio::spawn(async move { corio::net::TcpStream::connect(addr).await });
///     let (_conn, peer) = listener.accept().await.unwrap();
///     assert_eq!(peer, client.await.unwrap().unwrap().local_addr().unwrap());
/// });
/// ```
pub struct TcpListener {
    reg: Registration,
    sock: Socket,
}

impl TcpListener {
    /// Binds to `addr` with `SO_REUSEADDR` and listens with [`DEFAULT_BACKLOG`]. Must be
    /// called inside a running loop. Port 0 picks a free port.
    ///
    /// Host names are resolved with the system resolver, which blocks: prefer literal
    /// addresses on a busy loop.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve(addr)? {
            match Self::bind_with(a, DEFAULT_BACKLOG, false) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Binds with a chosen backlog and, if `reuse_port`, `SO_REUSEPORT` (several loops, one
    /// per thread, can then share the port: the kernel spreads connections between them).
    pub fn bind_with(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
        let sock = new_socket(&addr)?;
        sock.set_reuse_address(true)?;
        #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
        if reuse_port {
            sock.set_reuse_port(true)?;
        }
        #[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
        let _ = reuse_port;
        sock.bind(&SockAddr::from(addr))?;
        sock.listen(backlog)?;
        Self::from_socket(sock)
    }

    /// Wraps an already listening socket (it is made non-blocking).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Self::from_socket(Socket::from(listener))
    }

    fn from_socket(sock: Socket) -> io::Result<TcpListener> {
        sock.set_nonblocking(true)?;
        let reg = Registration::new(sock.as_raw_fd(), Event::READABLE)?;
        Ok(TcpListener { reg, sock })
    }

    /// Accepts one connection (asyncio's `sock_accept`). The new stream is non-blocking,
    /// close-on-exec, registered with the loop, with `TCP_NODELAY` on.
    ///
    /// Errors are returned as they come: `EMFILE`/`ENFILE` (out of file descriptors) leave
    /// the connection queued and the listener readable, so a server should wait a little
    /// before accepting again rather than retry at once (see `examples/echo_server.rs`).
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = poll_fn(|cx| self.poll_accept(cx)).await?;
        Ok((TcpStream::from_owned_fd(fd)?, addr))
    }

    /// The poll form of [`accept`](TcpListener::accept), returning the raw accepted fd.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(OwnedFd, SocketAddr)>> {
        self.reg
            .poll_io(Direction::Read, cx, || crate::sys::accept4(&self.sock))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockaddr(self.sock.local_addr()?)
    }
}

fn sockaddr(a: SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address"))
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.sock.as_raw_fd())
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

/// A connected TCP socket driven by the loop.
///
/// Operations take `&self`: one task may read while another writes (share the stream with
/// an `Rc`). At most one read and one write should be pending at a time, as in asyncio
/// ("only one pending reader per stream"); a second concurrent reader replaces the first's
/// wake-up.
///
/// EOF is `Ok(0)` from [`read`](TcpStream::read); a reset is an `io::Error` of kind
/// `ConnectionReset`; writing to a closed peer is an `io::Error` of kind `BrokenPipe`.
pub struct TcpStream {
    reg: Registration,
    sock: std::net::TcpStream,
}

impl TcpStream {
    /// Connects to `addr` (asyncio's `sock_connect`; `open_connection` without streams).
    /// Tries each resolved address in turn. A host name (`"localhost:8080"`,
    /// `("example.org", 80)`) is resolved on the executor ([`getaddrinfo`](crate::getaddrinfo)),
    /// a literal address at once. The future may be dropped to give up (as `wait_for` does);
    /// the half-open socket is closed.
    ///
    /// ```
    /// corio::run(async {
    ///     let addr = "127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap();
    ///     let err = corio::net::TcpStream::connect(addr).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    /// });
    /// ```
    pub async fn connect(addr: impl super::ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in super::addr::resolve(&addr).await? {
            match Self::connect_addr(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    async fn connect_addr(addr: SocketAddr) -> io::Result<TcpStream> {
        let sock = new_socket(&addr)?;
        match sock.connect(&SockAddr::from(addr)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let stream = TcpStream::from_socket(sock, 0)?;
        // Writable means the connection finished, one way or the other: SO_ERROR says which.
        poll_fn(|cx| stream.reg.poll_io(Direction::Write, cx, || Ok(()))).await?;
        if let Some(e) = stream.sock.take_error()? {
            return Err(e);
        }
        stream.sock.peer_addr()?;
        Ok(stream)
    }

    fn from_owned_fd(fd: OwnedFd) -> io::Result<TcpStream> {
        let sock = Socket::from(fd);
        Self::from_socket(sock, Event::READABLE | Event::WRITABLE)
    }

    fn from_socket(sock: Socket, readiness: u8) -> io::Result<TcpStream> {
        sock.set_tcp_nodelay(true)?;
        let reg = Registration::new(sock.as_raw_fd(), readiness)?;
        Ok(TcpStream {
            reg,
            sock: sock.into(),
        })
    }

    /// Wraps a connected std stream (made non-blocking, `TCP_NODELAY` on).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Self::from_socket(Socket::from(stream), Event::READABLE | Event::WRITABLE)
    }

    /// Reads into `buf`; `Ok(0)` means EOF (or an empty `buf`).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// The poll form of [`read`](TcpStream::read).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.reg
            .poll_read_io(cx, len, || crate::sys::recv(self.sock.as_fd(), buf))
    }

    /// Writes some of `buf`, returning how much was written.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// The poll form of [`write`](TcpStream::write).
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // MSG_NOSIGNAL: a closed peer is EPIPE, never SIGPIPE (B31), as std's `write` does.
        self.reg.poll_write_io(cx, buf.len(), || {
            crate::sys::send(self.sock.as_fd(), buf, crate::sys::SEND_NOSIGNAL)
        })
    }

    /// Writes all of `buf` (asyncio's `sock_sendall`). If the future is dropped part-way,
    /// an unknown prefix of `buf` has been written.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Shuts down the read side, the write side (sends FIN: the peer reads EOF), or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Sets `TCP_NODELAY` (on by default: small writes are sent at once).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.sock.set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.nodelay()
    }

    /// Whether the peer has been seen to close its side (a read will return EOF once the
    /// buffered data is consumed).
    pub fn peer_closed(&self) -> bool {
        self.reg.read_closed()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.sock.as_raw_fd())
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}
