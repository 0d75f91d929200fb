//! Transports: the loop's side of a connection (asyncio's `transports.py` and the selector
//! transports of `selector_events.py` / `unix_events.py`).
//!
//! Layer 4: built on the loop's I/O table ([`crate::net`]'s edge-triggered registrations),
//! calls a [`crate::protocols`] object, used by [`crate::streams`] and by
//! [`EventLoop::create_server`](crate::EventLoop::create_server) and friends.
//!
//! # How a transport runs (the hot path)
//!
//! A transport is **not** a task. Its fd is registered once, edge-triggered, like every corio
//! socket, and the transport installs *itself* as the loop callback of that registration
//! (an `Rc` to its state implements the loop's handle trait). When the selector reports the
//! fd, the loop queues that callback on the ready queue (an `Rc` clone, no allocation); when
//! it runs, the transport:
//!
//! 1. reads while the cached readiness says readable (at most 16 full reads per turn, then it
//!    re-queues itself), into one 64 KiB buffer shared by every transport of the thread
//!    (`data_received` gets a slice of it) or into the buffer a
//!    [`BufferedProtocol`] provides;
//! 2. a read shorter than the buffer clears the cached readability (the socket is drained,
//!    the next edge will say when more comes): no `read` that only says `EAGAIN`;
//! 3. [`Transport::write`] sends straight away when nothing is buffered, and buffers only what
//!    the kernel did not take; the callback for write readiness is installed only while the
//!    buffer is non-empty.
//!
//! So an echo round trip is one `read` and one `write`, no `epoll_ctl`, no allocation, and
//! one ready-queue entry (`epoll_wait` amortised over the sockets ready together).
//!
//! # Flow control
//!
//! ```text
//!   write buffer size
//!        ^
//!   high +-----------------------------  > high: pause_writing()  (once)
//!        |      /\      /\
//!        |     /  \    /  \
//!    low +----/----\--/----\-----------  <= low (after a pause): resume_writing()  (once)
//!        |   /      \/      \
//!      0 +--------------------------------> time
//! ```
//!
//! Defaults: high = 64 KiB, low = 16 KiB (asyncio's). `write` itself never blocks nor
//! refuses data: the protocol is told to stop producing, as in asyncio; streams turn that
//! into [`StreamWriter::drain`](crate::streams::StreamWriter::drain) waiting.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use socket2::{SockAddr, Socket};

use crate::base_events::io::Direction;
use crate::base_events::{Core, ExceptionContext};
use crate::events::HandleDyn;
use crate::net::Registration;
use crate::protocols::{BaseProtocol, BufferedProtocol, Protocol};

pub use crate::net::udp::DatagramTransport;

/// How many bytes a transport reads at a time (its shared read buffer).
pub const READ_SIZE: usize = 64 * 1024;
/// asyncio's default high-water mark for write buffers.
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;
/// asyncio's default low-water mark for write buffers.
pub const DEFAULT_LOW_WATER: usize = 16 * 1024;
/// Full reads per turn before a transport lets others run.
const READS_PER_TURN: usize = 16;

/// How long a gracefully closed socket may linger, discarding input, for the peer's EOF
/// (B27; nginx's `lingering_timeout` is 5 s too). See [`Inner::finish`].
const LINGER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How much input a lingering socket discards before it gives up and closes anyway: enough
/// for a request or an upload still in flight, not a licence to stream at us (B30).
const LINGER_MAX_DISCARD: usize = 1 << 20;
/// Writes after the connection is lost are dropped; past this many a warning is logged.
const LOST_WRITES_WARNING: u32 = 5;

thread_local! {
    /// The read buffer shared by the transports of this thread: a protocol sees its data
    /// during `data_received` only, so one buffer serves every connection.
    static READ_BUF: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

fn take_read_buf() -> Box<[u8]> {
    READ_BUF
        .take()
        .unwrap_or_else(|| vec![0u8; READ_SIZE].into_boxed_slice())
}

fn put_read_buf(buf: Box<[u8]>) {
    READ_BUF.set(Some(buf));
}

/// A socket address of any family a transport uses: IP, or Unix domain.
///
/// ```
/// use corio::transports::Address;
/// let a = Address::from("127.0.0.1:80".parse::<std::net::SocketAddr>().unwrap());
/// assert_eq!(a.as_inet().unwrap().port(), 80);
/// assert_eq!(a.to_string(), "127.0.0.1:80");
/// assert_eq!(Address::Unix(None).to_string(), "(unnamed)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// An IPv4 or IPv6 address.
    Inet(SocketAddr),
    /// A Unix-domain address: its path, or `None` for an unnamed socket (the client end of
    /// a Unix connection usually is).
    Unix(Option<PathBuf>),
}

impl Address {
    /// The IP address, if this is one.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            Address::Inet(a) => Some(*a),
            Address::Unix(_) => None,
        }
    }

    /// The Unix path, if this is a named Unix address.
    pub fn as_unix_path(&self) -> Option<&Path> {
        match self {
            Address::Unix(Some(p)) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn from_sockaddr(a: &SockAddr) -> Address {
        match a.as_socket() {
            Some(s) => Address::Inet(s),
            None => Address::Unix(a.as_pathname().map(Path::to_path_buf)),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Inet(a) => a.fmt(f),
            Address::Unix(Some(p)) => p.display().fmt(f),
            Address::Unix(None) => f.write_str("(unnamed)"),
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Address {
        Address::Inet(a)
    }
}

/// A value of [`Transport::get_extra_info`] (asyncio returns any object; here, one of these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtraInfo {
    /// `"peername"` or `"sockname"`.
    Address(Address),
    /// `"socket"` or `"pipe"`: the raw fd (borrowed: valid while the transport is open).
    Fd(RawFd),
}

/// The fd under a stream transport.
pub(crate) enum Io {
    Sock(Socket),
    Pipe(File),
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = 0;

impl Io {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Sock(s) => crate::sys::recv(s.as_fd(), buf),
            Io::Pipe(f) => (&*f).read(buf),
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            // MSG_NOSIGNAL: a closed peer is EPIPE, never SIGPIPE (B31).
            Io::Sock(s) => crate::sys::send(s.as_fd(), buf, SEND_FLAGS),
            Io::Pipe(f) => (&*f).write(buf),
        }
    }

    fn writev(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Io::Sock(s) => s.send_vectored_with_flags(bufs, SEND_FLAGS),
            Io::Pipe(f) => (&*f).write_vectored(bufs),
        }
    }

    fn raw_fd(&self) -> RawFd {
        match self {
            Io::Sock(s) => s.as_raw_fd(),
            Io::Pipe(f) => f.as_raw_fd(),
        }
    }
}

/// The registration and the fd, dropped in this order (deregister before close).
pub(crate) struct IoPair {
    pub(crate) reg: Registration,
    pub(crate) io: Io,
    /// For a pipe that was blocking when it was handed over: restore that on close (the fd
    /// may share its file description with stdin/stdout of other processes).
    pub(crate) restore_blocking: bool,
}

impl Drop for IoPair {
    fn drop(&mut self) {
        if self.restore_blocking {
            let _ = crate::sys::set_nonblocking(
                match &self.io {
                    Io::Sock(s) => s.as_fd(),
                    Io::Pipe(f) => f.as_fd(),
                },
                false,
            );
        }
    }
}

/// What kind of stream a transport carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A connected TCP or Unix stream socket: read and write.
    Socket,
    /// The read end of a pipe (or a tty): read only.
    ReadPipe,
    /// The write end of a pipe: write only.
    WritePipe,
}

/// The protocol of a stream transport, type-erased.
#[derive(Clone)]
pub(crate) enum Slot {
    Plain(Rc<RefCell<dyn Protocol>>),
    Buffered(Rc<RefCell<dyn BufferedProtocol>>),
}

impl Slot {
    fn with_base<R>(&self, f: impl FnOnce(&mut dyn BaseProtocol) -> R) -> R {
        match self {
            Slot::Plain(p) => {
                let mut p = p.borrow_mut();
                f(&mut *p)
            }
            Slot::Buffered(p) => {
                let mut p = p.borrow_mut();
                f(&mut *p)
            }
        }
    }

    fn connection_made(&self, t: &Transport) {
        match self {
            Slot::Plain(p) => p.borrow_mut().connection_made(t),
            Slot::Buffered(p) => p.borrow_mut().connection_made(t),
        }
    }

    fn eof_received(&self) -> bool {
        match self {
            Slot::Plain(p) => p.borrow_mut().eof_received(),
            Slot::Buffered(p) => p.borrow_mut().eof_received(),
        }
    }

    fn try_pause_writing(&self) -> bool {
        match self {
            Slot::Plain(p) => p.try_borrow_mut().map(|mut p| p.pause_writing()).is_ok(),
            Slot::Buffered(p) => p.try_borrow_mut().map(|mut p| p.pause_writing()).is_ok(),
        }
    }
}

/// A protocol, ready for a transport: what the `IntoProtocol` conversions make.
#[doc(hidden)]
pub struct ProtocolSlot(pub(crate) Slot);

impl fmt::Debug for ProtocolSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Slot::Plain(_) => "ProtocolSlot(Protocol)",
            Slot::Buffered(_) => "ProtocolSlot(BufferedProtocol)",
        })
    }
}

/// Lets the loop's stream methods accept both a [`Protocol`] and a [`BufferedProtocol`]
/// (the marker `M` is inferred: [`kind::Plain`] or [`kind::Buffered`]). Implemented for
/// every type implementing one of the two; a type implementing both is ambiguous.
pub trait IntoProtocol<M>: Sized + 'static {
    /// Type-erases the shared protocol for the transport.
    #[doc(hidden)]
    fn into_slot(rc: Rc<RefCell<Self>>) -> ProtocolSlot;
}

/// Markers for [`IntoProtocol`].
pub mod kind {
    /// The protocol is a [`Protocol`](crate::protocols::Protocol).
    #[derive(Debug)]
    pub enum Plain {}
    /// The protocol is a [`BufferedProtocol`](crate::protocols::BufferedProtocol).
    #[derive(Debug)]
    pub enum Buffered {}
}

impl<P: Protocol> IntoProtocol<kind::Plain> for P {
    fn into_slot(rc: Rc<RefCell<Self>>) -> ProtocolSlot {
        ProtocolSlot(Slot::Plain(rc))
    }
}

impl<P: BufferedProtocol> IntoProtocol<kind::Buffered> for P {
    fn into_slot(rc: Rc<RefCell<Self>>) -> ProtocolSlot {
        ProtocolSlot(Slot::Buffered(rc))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading and writing.
    Open,
    /// `close()` was called: flushing, then `connection_lost(None)`.
    Closing,
    /// `abort()` or a fatal error: `connection_lost` at the next turn, buffer dropped.
    Aborting,
    /// `connection_lost(None)` was called after a graceful close, but the socket lingers:
    /// its write side is shut down and input is read and discarded until the peer's EOF or
    /// [`LINGER_TIMEOUT`], so that closing it cannot send RST over unread output (B27).
    Lingering,
    /// `connection_lost` was called (or is being called); the fd is closed.
    Closed,
}

/// The write buffer: bytes `[pos..]` of `data` are pending.
#[derive(Default)]
struct WriteBuf {
    data: Vec<u8>,
    pos: usize,
}

impl WriteBuf {
    fn len(&self) -> usize {
        self.data.len() - self.pos
    }

    fn pending(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos >= self.data.len() / 2 {
            self.data.drain(..self.pos);
            self.pos = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.data.len() {
            self.data.clear();
            self.pos = 0;
            // Give back memory after a burst, but keep a small buffer for the next one.
            if self.data.capacity() > 4 * DEFAULT_HIGH_WATER {
                self.data.shrink_to(DEFAULT_HIGH_WATER);
            }
        }
    }

    fn clear(&mut self) {
        self.data = Vec::new();
        self.pos = 0;
    }
}

/// Connection bookkeeping a [`Server`](crate::server::Server) keeps for `wait_closed` and
/// `close_clients`.
pub(crate) trait ConnectionOwner {
    fn detach(&self, id: u64);
}

pub(crate) struct Inner {
    me: Weak<Inner>,
    core: Rc<Core>,
    kind: Kind,
    io: RefCell<Option<IoPair>>,
    protocol: RefCell<Option<Slot>>,
    state: Cell<State>,
    made: Cell<bool>,
    made_waiter: RefCell<Option<Waker>>,
    reading_paused: Cell<bool>,
    eof_seen: Cell<bool>,
    eof_requested: Cell<bool>,
    eof_sent: Cell<bool>,
    wbuf: RefCell<WriteBuf>,
    high: Cell<usize>,
    low: Cell<usize>,
    protocol_paused: Cell<bool>,
    pause_deferred: Cell<bool>,
    in_drive: Cell<bool>,
    scheduled: Cell<bool>,
    fatal: RefCell<Option<io::Error>>,
    lost_writes: Cell<u32>,
    owner: RefCell<Option<(Rc<dyn ConnectionOwner>, u64)>>,
    flush_waiters: RefCell<Vec<Waker>>,
    linger_timer: RefCell<Option<crate::events::TimerHandle>>,
    /// Input discarded while lingering (capped by [`LINGER_MAX_DISCARD`]).
    discarded: Cell<usize>,
}

/// A stream transport: a connected TCP or Unix socket, or one end of a pipe (asyncio's
/// `Transport`, `ReadTransport`, `WriteTransport`).
///
/// A cheap handle (`Rc`): clone it freely. The loop keeps the connection alive while it is
/// open, whether or not any handle exists. Every method returns at once; none calls the
/// protocol, except [`write`](Transport::write) which may call `pause_writing` (see the
/// [protocols module](crate::protocols)).
///
/// ```
/// use corio::protocols::{BaseProtocol, Protocol};
/// use corio::transports::Transport;
///
/// #[derive(Default)]
/// struct Hello { got: Vec<u8> }
/// impl BaseProtocol for Hello {}
/// impl Protocol for Hello {
///     fn connection_made(&mut self, t: &Transport) {
///         t.write(b"GET / HTTP/1.0\r\n\r\n");
///     }
///     fn data_received(&mut self, data: &[u8]) {
///         self.got.extend_from_slice(data);
///     }
/// }
///
/// corio::run(async {
///     let ev = corio::get_running_loop();
///     // A one-shot server that answers and closes.
///     let server = corio::streams::start_server(
///         |mut r, w| async move {
///             r.readuntil(b"\r\n\r\n").await.unwrap();
///             w.write(b"HTTP/1.0 200 OK\r\n\r\nhi");
///             w.close();
///         },
///         "127.0.0.1:0",
///     )
///     .await
///     .unwrap();
///     let (transport, proto) = ev
///         .create_connection(Hello::default, server.local_addr().unwrap())
///         .await
///         .unwrap();
///     while !transport.is_closing() {
///         corio::sleep(std::time::Duration::from_millis(1)).await;
///     }
///     assert!(proto.borrow().got.ends_with(b"\r\n\r\nhi"));
/// });
/// ```
#[derive(Clone)]
pub struct Transport {
    inner: Rc<Inner>,
}

impl Transport {
    /// Makes a transport for `pair` and schedules `connection_made` (then reading) for the
    /// next turn of the loop.
    pub(crate) fn spawn(pair: IoPair, kind: Kind, slot: ProtocolSlot) -> Transport {
        let core = pair.reg.core().clone();
        let inner = Rc::new_cyclic(|me| Inner {
            me: me.clone(),
            core,
            kind,
            io: RefCell::new(Some(pair)),
            protocol: RefCell::new(Some(slot.0)),
            state: Cell::new(State::Open),
            made: Cell::new(false),
            made_waiter: RefCell::new(None),
            reading_paused: Cell::new(false),
            eof_seen: Cell::new(false),
            eof_requested: Cell::new(false),
            eof_sent: Cell::new(false),
            wbuf: RefCell::new(WriteBuf::default()),
            high: Cell::new(DEFAULT_HIGH_WATER),
            low: Cell::new(DEFAULT_LOW_WATER),
            protocol_paused: Cell::new(false),
            pause_deferred: Cell::new(false),
            in_drive: Cell::new(false),
            scheduled: Cell::new(false),
            fatal: RefCell::new(None),
            lost_writes: Cell::new(0),
            owner: RefCell::new(None),
            flush_waiters: RefCell::new(Vec::new()),
            linger_timer: RefCell::new(None),
            discarded: Cell::new(0),
        });
        {
            let io = inner.io.borrow();
            let reg = &io.as_ref().expect("just set").reg;
            // Events for reading (and, for a write pipe, the reader hanging up) run the
            // transport; the write callback is installed only while output is buffered.
            reg.set_callback(Direction::Read, Some(inner.clone() as Rc<dyn HandleDyn>));
        }
        inner.schedule();
        Transport { inner }
    }

    pub(crate) fn set_owner(&self, owner: Rc<dyn ConnectionOwner>, id: u64) {
        *self.inner.owner.borrow_mut() = Some((owner, id));
    }

    pub(crate) fn downgrade(&self) -> Weak<Inner> {
        Rc::downgrade(&self.inner)
    }

    pub(crate) fn from_inner(inner: Rc<Inner>) -> Transport {
        Transport { inner }
    }

    /// Waits until `connection_made` has been called (or the transport failed first).
    pub(crate) async fn wait_made(&self) {
        std::future::poll_fn(|cx| {
            if self.inner.made.get() || self.inner.state.get() == State::Closed {
                std::task::Poll::Ready(())
            } else {
                *self.inner.made_waiter.borrow_mut() = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }

    /// Writes `data`: sends as much as the kernel takes at once if nothing is buffered, and
    /// buffers the rest (asyncio's `write`). Never blocks, never fails: errors end the
    /// connection through `connection_lost`. Going above the high-water mark calls the
    /// protocol's `pause_writing`.
    ///
    /// Data written after [`write_eof`](Transport::write_eof) or after the connection was
    /// lost is dropped (a warning is logged after a few such writes).
    pub fn write(&self, data: &[u8]) {
        self.inner.write(&[data]);
    }

    /// Writes several buffers, in one `writev` when nothing is buffered (asyncio's
    /// `writelines`).
    pub fn writelines<B: AsRef<[u8]>>(&self, bufs: &[B]) {
        let mut slices: [&[u8]; 16] = [&[]; 16];
        if bufs.len() <= slices.len() {
            for (s, b) in slices.iter_mut().zip(bufs) {
                *s = b.as_ref();
            }
            self.inner.write(&slices[..bufs.len()]);
        } else {
            let v: Vec<&[u8]> = bufs.iter().map(AsRef::as_ref).collect();
            self.inner.write(&v);
        }
    }

    /// Closes the write side once the buffer is flushed (`shutdown(SHUT_WR)`; the peer reads
    /// EOF); reading goes on. For a write pipe, this closes the pipe.
    pub fn write_eof(&self) {
        self.inner.write_eof();
    }

    /// Whether [`write_eof`](Transport::write_eof) is supported: `true` for sockets and
    /// write pipes, `false` for read pipes.
    pub fn can_write_eof(&self) -> bool {
        self.inner.kind != Kind::ReadPipe
    }

    /// Closes the transport: stops reading at once, flushes what is buffered, then calls
    /// `connection_lost(None)` and closes the fd (asyncio's `close`). Idempotent.
    ///
    /// Unlike asyncio, a socket whose peer has not sent EOF is closed gracefully: its write
    /// side is shut down and it lingers, discarding input, until the peer's EOF (at most 5 s
    /// and 1 MiB), because closing a socket with input pending sends RST, which would destroy
    /// output the peer has not read yet. [`abort`](Transport::abort) closes at once.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Closes at once, dropping buffered output; `connection_lost(None)` follows at the next
    /// turn (asyncio's `abort`).
    pub fn abort(&self) {
        self.inner.abort(None);
    }

    /// Whether the transport is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.inner.state.get() != State::Open
    }

    /// Stops reading until [`resume_reading`](Transport::resume_reading): no more
    /// `data_received` calls; the kernel's buffer fills and the peer is slowed down by TCP.
    pub fn pause_reading(&self) {
        self.inner.reading_paused.set(true);
    }

    /// Resumes reading after [`pause_reading`](Transport::pause_reading).
    pub fn resume_reading(&self) {
        if self.inner.reading_paused.replace(false) && self.inner.state.get() == State::Open {
            self.inner.schedule();
        }
    }

    /// Whether the transport is reading (open, not paused, not a write pipe).
    pub fn is_reading(&self) -> bool {
        self.inner.kind != Kind::WritePipe
            && self.inner.state.get() == State::Open
            && !self.inner.reading_paused.get()
            && !self.inner.eof_seen.get()
    }

    /// Sets the flow-control marks (asyncio's `set_write_buffer_limits`): `high` defaults
    /// to 64 KiB, or 4 × `low` when only `low` is given; `low` defaults to `high / 4`.
    /// Panics unless `high >= low`.
    ///
    /// ```
    /// # corio::run(async {
    /// # let ev = corio::get_running_loop();
    /// # let (r, _w) = corio::pipes::pipe().unwrap();
    /// # #[derive(Default)] struct P;
    /// # impl corio::protocols::BaseProtocol for P {}
    /// # impl corio::protocols::Protocol for P { fn data_received(&mut self, _: &[u8]) {} }
    /// # let (t, _) = ev.connect_read_pipe(P::default, r).await.unwrap();
    /// t.set_write_buffer_limits(None, Some(1000));
    /// assert_eq!(t.get_write_buffer_limits(), (1000, 4000));
    /// t.set_write_buffer_limits(Some(8192), None);
    /// assert_eq!(t.get_write_buffer_limits(), (2048, 8192));
    /// # });
    /// ```
    pub fn set_write_buffer_limits(&self, high: Option<usize>, low: Option<usize>) {
        let high = high.unwrap_or_else(|| low.map_or(DEFAULT_HIGH_WATER, |l| 4 * l));
        let low = low.unwrap_or(high / 4);
        assert!(
            high >= low,
            "set_write_buffer_limits: high ({high}) must be >= low ({low})"
        );
        self.inner.high.set(high);
        self.inner.low.set(low);
        self.inner.maybe_pause_protocol();
    }

    /// `(low, high)`, the flow-control marks (asyncio's `get_write_buffer_limits`).
    pub fn get_write_buffer_limits(&self) -> (usize, usize) {
        (self.inner.low.get(), self.inner.high.get())
    }

    /// How many bytes are buffered, waiting for the socket (asyncio's
    /// `get_write_buffer_size`).
    pub fn get_write_buffer_size(&self) -> usize {
        self.inner.wbuf.borrow().len()
    }

    /// Whether the protocol is paused for writing: `pause_writing` was (or is about to be)
    /// called and `resume_writing` not yet.
    pub fn is_writing_paused(&self) -> bool {
        self.inner.protocol_paused.get()
    }

    /// asyncio's `get_extra_info(name)`: `"peername"`, `"sockname"` (sockets), `"socket"`
    /// (a socket's fd), `"pipe"` (a pipe's fd). `None` for other names, and once closed.
    pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        if self.inner.state.get() == State::Lingering {
            return None;
        }
        let io = self.inner.io.borrow();
        let pair = io.as_ref()?;
        match (name, &pair.io) {
            ("peername", Io::Sock(s)) => s
                .peer_addr()
                .ok()
                .map(|a| ExtraInfo::Address(Address::from_sockaddr(&a))),
            ("sockname", Io::Sock(s)) => s
                .local_addr()
                .ok()
                .map(|a| ExtraInfo::Address(Address::from_sockaddr(&a))),
            ("socket", Io::Sock(s)) => Some(ExtraInfo::Fd(s.as_raw_fd())),
            ("pipe", Io::Pipe(f)) => Some(ExtraInfo::Fd(f.as_raw_fd())),
            _ => None,
        }
    }

    /// The peer's address (`get_extra_info("peername")`).
    pub fn peername(&self) -> Option<Address> {
        match self.get_extra_info("peername")? {
            ExtraInfo::Address(a) => Some(a),
            ExtraInfo::Fd(_) => None,
        }
    }

    /// This end's address (`get_extra_info("sockname")`).
    pub fn sockname(&self) -> Option<Address> {
        match self.get_extra_info("sockname")? {
            ExtraInfo::Address(a) => Some(a),
            ExtraInfo::Fd(_) => None,
        }
    }

    /// `Ready` once nothing is buffered (or the transport is closed); parks the waker.
    #[cfg_attr(not(feature = "futures-io"), allow(dead_code))]
    pub(crate) fn poll_flushed(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.get_write_buffer_size() == 0 || self.inner.state.get() == State::Closed {
            return std::task::Poll::Ready(());
        }
        let mut ws = self.inner.flush_waiters.borrow_mut();
        if !ws.iter().any(|w| w.will_wake(cx.waker())) {
            ws.push(cx.waker().clone());
        }
        std::task::Poll::Pending
    }

    /// The streams' direct-read fast path: a reader whose buffer is empty receives straight
    /// into the caller's buffer, through the cached readiness and with the short-read rule
    /// (as [`TcpStream`](crate::net::TcpStream) does), instead of the transport reading
    /// into the protocol's buffer and the reader copying out. [`DirectRead::Parked`]:
    /// nothing to read; the task is parked on the registration, and while it is the next
    /// read event wakes it **instead of** running the transport (see `IoTable::dispatch`).
    /// `Unavailable` (paused, EOF seen, closing, a write pipe, inside a protocol callback):
    /// use the buffered path. [`DirectRead::Eof`]: the caller must call
    /// [`direct_eof`](Transport::direct_eof) once it holds no borrow of the protocol. An
    /// error aborts the transport (`connection_lost` reports it, as on the buffered path).
    pub(crate) fn read_direct(&self, buf: &mut [u8], cx: &mut Context<'_>) -> DirectRead {
        let inner = &*self.inner;
        if inner.state.get() != State::Open
            || inner.reading_paused.get()
            || inner.eof_seen.get()
            || inner.in_drive.get()
            || inner.kind == Kind::WritePipe
        {
            return DirectRead::Unavailable;
        }
        let r = {
            let io = inner.io.borrow();
            let Some(pair) = io.as_ref() else {
                return DirectRead::Unavailable;
            };
            let len = buf.len();
            pair.reg.poll_read_io(cx, len, || pair.io.read(buf))
        };
        match r {
            Poll::Ready(Ok(0)) => DirectRead::Eof,
            Poll::Ready(Ok(n)) => DirectRead::Data(n),
            Poll::Pending => DirectRead::Parked,
            Poll::Ready(Err(e)) => {
                inner.abort(Some(e));
                DirectRead::Failed
            }
        }
    }

    /// A direct read saw EOF: what the transport does when its own read sees it
    /// (`eof_received`, then close unless the protocol keeps the transport open).
    pub(crate) fn direct_eof(&self) {
        let _ = self.inner.read_result(Some(Ok(0)));
    }

    /// A reader gave up direct reads (it waits for buffered data now): forget its parked
    /// waker, and if the transport skipped reading for it while data waits in the kernel
    /// (readiness still cached), read it now.
    pub(crate) fn end_direct(&self) {
        let inner = &*self.inner;
        let parked = inner.io.borrow().as_ref().and_then(|p| p.reg.take_reader());
        drop(parked);
        if inner.state.get() == State::Open
            && !inner.reading_paused.get()
            && !inner.eof_seen.get()
            && !inner.in_drive.get()
            && inner
                .io
                .borrow()
                .as_ref()
                .is_some_and(|p| p.reg.is_ready(Direction::Read))
        {
            inner.schedule();
        }
    }

    /// The fd, while the transport is open.
    pub fn fd(&self) -> Option<RawFd> {
        if self.inner.state.get() == State::Lingering {
            return None;
        }
        self.inner.io.borrow().as_ref().map(|p| p.io.raw_fd())
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("kind", &self.inner.kind)
            .field("state", &self.inner.state.get())
            .field("fd", &self.fd())
            .field("write_buffer", &self.get_write_buffer_size())
            .finish()
    }
}

impl HandleDyn for Inner {
    fn run(&self) {
        self.scheduled.set(false);
        self.drive();
    }
    /// The loop is closing: close the fd and drop the protocol without calling it (asyncio
    /// calls nothing either), which breaks the transport ↔ protocol `Rc` cycle.
    fn cancel(&self) {
        if self.state.replace(State::Closed) == State::Open {
            // asyncio's "ResourceWarning: unclosed transport": the loop closed under it.
            let fd = self.io.borrow().as_ref().map(|p| p.io.raw_fd());
            crate::debug::report_unclosed(
                "transport",
                &format_args!("fd={}", fd.map_or(-1, |fd| fd)),
                None,
            );
        }
        let pair = self.io.borrow_mut().take();
        drop(pair);
        let slot = self.protocol.borrow_mut().take();
        drop(slot);
        self.wbuf.borrow_mut().clear();
        let owner = self.owner.borrow_mut().take();
        drop(owner);
    }
    fn cancelled(&self) -> bool {
        self.state.get() == State::Closed
    }
}

/// What [`Transport::read_direct`] did.
#[derive(Debug)]
pub(crate) enum DirectRead {
    /// Received this many bytes (more than 0).
    Data(usize),
    /// The peer closed its side: call [`Transport::direct_eof`].
    Eof,
    /// The read failed: the transport is aborting; `connection_lost` reports the error.
    Failed,
    /// Nothing to read: the waker is parked with the transport.
    Parked,
    /// Not now (see [`Transport::read_direct`]): use the buffered path.
    Unavailable,
}

enum ReadOutcome {
    /// Got data, and the socket may hold more.
    More,
    /// Drained (short read or `WouldBlock`), or reading stopped.
    Done,
}

impl Inner {
    fn rc(&self) -> Rc<Inner> {
        self.me
            .upgrade()
            .expect("a transport runs only while referenced")
    }

    /// Queues one run of [`drive`](Inner::drive) (at most one is queued at a time).
    fn schedule(&self) {
        if !self.scheduled.replace(true) {
            self.core.call_soon_dyn(self.rc());
        }
    }

    fn set_write_callback(&self, on: bool) {
        if let Some(pair) = self.io.borrow().as_ref() {
            if pair.reg.has_callback(Direction::Write) != on {
                let cb = on.then(|| self.rc() as Rc<dyn HandleDyn>);
                pair.reg.set_callback(Direction::Write, cb);
            }
        }
    }

    /// Runs a protocol callback. A panic in it is reported and aborts the connection
    /// (asyncio's "Fatal error: protocol.data_received() call failed.").
    fn call<R>(&self, what: &str, f: impl FnOnce(&Slot) -> R) -> Option<R> {
        let slot = self.protocol.borrow().clone()?;
        self.call_on(&slot, what, || f(&slot))
    }

    /// [`call`](Inner::call) with the protocol already in hand (the read path has it).
    fn call_on<R>(&self, slot: &Slot, what: &str, f: impl FnOnce() -> R) -> Option<R> {
        self.deliver_deferred_pause(slot);
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => {
                self.deliver_deferred_pause(slot);
                Some(r)
            }
            Err(p) => {
                self.core.report(ExceptionContext::panic(
                    &format!("Fatal error: protocol.{what}() call failed"),
                    None,
                    p.as_ref(),
                ));
                self.abort(Some(io::Error::other(format!(
                    "protocol.{what}() panicked"
                ))));
                None
            }
        }
    }

    fn deliver_deferred_pause(&self, slot: &Slot) {
        if self.pause_deferred.replace(false) && self.protocol_paused.get() {
            slot.with_base(|p| p.pause_writing());
        }
    }

    /// The loop callback: connection_made, reads, flush, and the end of the connection.
    fn drive(&self) {
        match self.state.get() {
            State::Closed => return,
            State::Lingering => return self.linger_read(),
            _ => {}
        }
        if self.in_drive.replace(true) {
            return;
        }
        if !self.made.get() {
            self.made.set(true);
            let t = Transport::from_inner(self.rc());
            self.call("connection_made", |s| s.connection_made(&t));
            if let Some(w) = self.made_waiter.borrow_mut().take() {
                w.wake();
            }
        }
        if self.state.get() == State::Open && self.kind != Kind::WritePipe {
            self.read_some();
        }
        if self.kind == Kind::WritePipe && self.state.get() == State::Open {
            self.check_write_pipe_peer();
        }
        if matches!(self.state.get(), State::Open | State::Closing) {
            self.flush();
        }
        self.in_drive.set(false);
        match self.state.get() {
            State::Aborting => {
                let err = self.fatal.borrow_mut().take();
                self.finish(err, false);
            }
            State::Closing if self.wbuf.borrow().len() == 0 => self.finish(None, true),
            _ => {}
        }
    }

    fn read_some(&self) {
        for _ in 0..READS_PER_TURN {
            if self.state.get() != State::Open || self.reading_paused.get() || self.eof_seen.get() {
                return;
            }
            match self.read_once() {
                Ok(ReadOutcome::More) => {}
                Ok(ReadOutcome::Done) => return,
                Err(e) => {
                    self.abort(Some(e));
                    return;
                }
            }
        }
        // Budget spent and the socket may hold more: let others run first (B02).
        self.schedule();
    }

    fn read_once(&self) -> io::Result<ReadOutcome> {
        let slot = match self.protocol.borrow().clone() {
            Some(s) => s,
            None => return Ok(ReadOutcome::Done),
        };
        // `more`: readiness is still cached after the read (a full buffer, or an EOF or
        // error to report); a short read drained the socket and the next edge says when
        // more comes.
        let more = match &slot {
            Slot::Plain(p) => {
                let mut buf = take_read_buf();
                let (r, more) = self.read_into(&mut buf);
                let n = match r {
                    Some(Ok(n)) if n > 0 => n,
                    other => {
                        put_read_buf(buf);
                        return self.read_result(other);
                    }
                };
                let data = &buf[..n];
                self.call_on(&slot, "data_received", || {
                    p.borrow_mut().data_received(data);
                });
                put_read_buf(buf);
                more
            }
            Slot::Buffered(p) => {
                let got = catch_unwind(AssertUnwindSafe(|| {
                    let mut proto = p.borrow_mut();
                    let buf = proto.get_buffer(READ_SIZE);
                    if buf.is_empty() {
                        return Err(io::Error::other("get_buffer() returned an empty buffer"));
                    }
                    Ok(self.read_into(buf))
                }));
                let (r, more) = match got {
                    Ok(Ok(v)) => v,
                    Ok(Err(e)) => return Err(e),
                    Err(panic) => {
                        self.core.report(ExceptionContext::panic(
                            "Fatal error: protocol.get_buffer() call failed",
                            None,
                            panic.as_ref(),
                        ));
                        return Err(io::Error::other("protocol.get_buffer() panicked"));
                    }
                };
                let n = match r {
                    Some(Ok(n)) if n > 0 => n,
                    other => return self.read_result(other),
                };
                self.call_on(&slot, "buffer_updated", || {
                    p.borrow_mut().buffer_updated(n);
                });
                more
            }
        };
        Ok(if more {
            ReadOutcome::More
        } else {
            ReadOutcome::Done
        })
    }

    /// One non-blocking read through the cached readiness (`None`: not ready).
    /// With it, whether readiness is still cached (see `Registration::try_read`).
    fn read_into(&self, buf: &mut [u8]) -> (Option<io::Result<usize>>, bool) {
        let io = self.io.borrow();
        let Some(pair) = io.as_ref() else {
            return (None, false);
        };
        let len = buf.len();
        pair.reg.try_read(len, || pair.io.read(buf))
    }

    /// A read that gave no data: not ready, EOF, or an error.
    fn read_result(&self, r: Option<io::Result<usize>>) -> io::Result<ReadOutcome> {
        match r {
            None => Ok(ReadOutcome::Done),
            Some(Err(e)) => Err(e),
            Some(Ok(_)) => {
                // EOF.
                self.eof_seen.set(true);
                let keep_open = self.call("eof_received", Slot::eof_received) == Some(true);
                if self.kind == Kind::ReadPipe || !keep_open {
                    self.close();
                }
                Ok(ReadOutcome::Done)
            }
        }
    }

    /// A write pipe's reader went away (`EPOLLERR` on the write end).
    fn check_write_pipe_peer(&self) {
        let closed = self
            .io
            .borrow()
            .as_ref()
            .is_some_and(|p| p.reg.is_ready(Direction::Read));
        if closed {
            if self.wbuf.borrow().len() > 0 {
                self.abort(Some(io::ErrorKind::BrokenPipe.into()));
            } else {
                self.abort(None);
            }
        }
    }

    fn flush(&self) {
        if self.wbuf.borrow().len() == 0 {
            // The common case: everything went out in write(). The write callback was
            // removed when the buffer last emptied.
            if self.eof_requested.get() && !self.eof_sent.get() {
                self.send_eof();
            }
            return;
        }
        loop {
            let r = {
                let io = self.io.borrow();
                let Some(pair) = io.as_ref() else { return };
                let wbuf = self.wbuf.borrow();
                if wbuf.len() == 0 {
                    break;
                }
                pair.reg
                    .try_write(wbuf.len(), || pair.io.write(wbuf.pending()))
            };
            match r {
                None => {
                    self.set_write_callback(true);
                    break;
                }
                Some(Ok(n)) => {
                    self.wbuf.borrow_mut().consume(n);
                    if n == 0 {
                        self.set_write_callback(true);
                        break;
                    }
                }
                Some(Err(e)) => {
                    self.abort(Some(e));
                    return;
                }
            }
        }
        let size = self.wbuf.borrow().len();
        if size == 0 {
            self.set_write_callback(false);
            self.wake_flush_waiters();
        }
        if self.protocol_paused.get() && size <= self.low.get() {
            self.protocol_paused.set(false);
            if !self.pause_deferred.replace(false) {
                self.call("resume_writing", |s| s.with_base(|p| p.resume_writing()));
            }
        }
        if size == 0 && self.eof_requested.get() && !self.eof_sent.get() {
            self.send_eof();
        }
    }

    fn send_eof(&self) {
        self.eof_sent.set(true);
        match self.kind {
            Kind::Socket => {
                if let Some(Io::Sock(s)) = self.io.borrow().as_ref().map(|p| &p.io) {
                    let _ = s.shutdown(std::net::Shutdown::Write);
                }
            }
            Kind::WritePipe => self.close(),
            Kind::ReadPipe => {}
        }
    }

    fn write(&self, bufs: &[&[u8]]) {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return;
        }
        if self.kind == Kind::ReadPipe {
            panic!("write() on a read-pipe transport");
        }
        if self.eof_requested.get() || !matches!(self.state.get(), State::Open | State::Closing) {
            let n = self.lost_writes.get() + 1;
            self.lost_writes.set(n);
            if n == LOST_WRITES_WARNING {
                log::warn!(
                    "corio: socket.send() raised exception (writes after close are dropped)"
                );
            }
            return;
        }
        let mut sent = 0;
        if self.wbuf.borrow().len() == 0 {
            let r = {
                let io = self.io.borrow();
                let Some(pair) = io.as_ref() else { return };
                pair.reg.try_write(total, || {
                    if bufs.len() == 1 {
                        pair.io.write(bufs[0])
                    } else {
                        let mut v: [IoSlice<'_>; 16] = [IoSlice::new(&[]); 16];
                        let k = bufs.len().min(16);
                        for (s, b) in v.iter_mut().zip(bufs) {
                            *s = IoSlice::new(b);
                        }
                        pair.io.writev(&v[..k])
                    }
                })
            };
            match r {
                Some(Ok(n)) => sent = n,
                None => {}
                Some(Err(e)) => {
                    self.abort(Some(e));
                    return;
                }
            }
            if sent == total {
                return;
            }
        }
        {
            let mut wbuf = self.wbuf.borrow_mut();
            let mut skip = sent;
            for b in bufs {
                if skip >= b.len() {
                    skip -= b.len();
                    continue;
                }
                wbuf.push(&b[skip..]);
                skip = 0;
            }
        }
        self.set_write_callback(true);
        self.maybe_pause_protocol();
    }

    fn maybe_pause_protocol(&self) {
        if self.protocol_paused.get() || self.wbuf.borrow().len() <= self.high.get() {
            return;
        }
        self.protocol_paused.set(true);
        let delivered = match self.protocol.borrow().clone() {
            Some(slot) => slot.try_pause_writing(),
            None => true,
        };
        if !delivered {
            // Called from inside one of this protocol's callbacks: deliver right after it.
            self.pause_deferred.set(true);
            if !self.in_drive.get() {
                self.schedule();
            }
        }
    }

    fn write_eof(&self) {
        if self.state.get() != State::Open || self.eof_requested.replace(true) {
            return;
        }
        if self.kind == Kind::ReadPipe {
            return;
        }
        if self.wbuf.borrow().len() == 0 {
            if self.kind == Kind::WritePipe {
                self.close();
            } else {
                self.send_eof();
            }
        }
    }

    fn close(&self) {
        if self.state.get() != State::Open {
            return;
        }
        self.state.set(State::Closing);
        if !self.in_drive.get() {
            self.schedule();
        }
    }

    fn abort(&self, err: Option<io::Error>) {
        if matches!(self.state.get(), State::Aborting | State::Closed) {
            return;
        }
        self.state.set(State::Aborting);
        *self.fatal.borrow_mut() = err;
        self.wbuf.borrow_mut().clear();
        if !self.in_drive.get() {
            self.schedule();
        }
    }

    fn wake_flush_waiters(&self) {
        let ws = std::mem::take(&mut *self.flush_waiters.borrow_mut());
        for w in ws {
            w.wake();
        }
    }

    /// Closes the fd and calls `connection_lost` (from the loop callback only).
    ///
    /// A graceful close of a socket whose peer has not sent EOF does not close the fd at
    /// once: input arriving after `close(2)` (or left unread) makes the kernel answer with
    /// RST, which destroys the part of our output the peer has not read yet (B27). So the
    /// write side is shut down (the peer reads our output, then EOF), and the socket
    /// lingers, reading and discarding, until the peer's EOF, an error or [`LINGER_TIMEOUT`].
    /// `connection_lost(None)` is called when lingering starts: for the protocol, the
    /// connection is over. `abort()` (`graceful == false`) never lingers.
    fn finish(&self, err: Option<io::Error>, graceful: bool) {
        let linger = graceful
            && self.kind == Kind::Socket
            && !self.eof_seen.get()
            && self.io.borrow().is_some()
            && !self.core.is_closed();
        let previous = self.state.replace(if linger {
            State::Lingering
        } else {
            State::Closed
        });
        if matches!(previous, State::Closed | State::Lingering) {
            return;
        }
        if linger {
            self.start_linger();
        } else {
            let pair = self.io.borrow_mut().take();
            drop(pair);
        }
        self.wbuf.borrow_mut().clear();
        let slot = self.protocol.borrow_mut().take();
        if let Some(slot) = slot {
            let r = catch_unwind(AssertUnwindSafe(|| {
                slot.with_base(|p| p.connection_lost(err));
            }));
            if let Err(p) = r {
                self.core.report(ExceptionContext::panic(
                    "Exception in protocol.connection_lost()",
                    None,
                    p.as_ref(),
                ));
            }
        }
        if let Some(w) = self.made_waiter.borrow_mut().take() {
            w.wake();
        }
        self.wake_flush_waiters();
        let owner = self.owner.borrow_mut().take();
        if let Some((owner, id)) = owner {
            owner.detach(id);
        }
    }

    /// Lingering starts: `shutdown(SHUT_WR)` unless done, a deadline, and a first read.
    fn start_linger(&self) {
        if !self.eof_sent.replace(true) {
            if let Some(Io::Sock(s)) = self.io.borrow().as_ref().map(|p| &p.io) {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
        }
        let me = self.me.clone();
        let ev = crate::EventLoop {
            core: self.core.clone(),
            owner: false,
        };
        let timer = ev.call_later(LINGER_TIMEOUT, move || {
            if let Some(inner) = me.upgrade() {
                inner.end_linger();
            }
        });
        *self.linger_timer.borrow_mut() = Some(timer);
        self.linger_read();
    }

    /// Reads and discards what the lingering socket holds; closes it on EOF or an error.
    fn linger_read(&self) {
        let mut buf = take_read_buf();
        let mut done = false;
        let mut discarded = self.discarded.get();
        for _ in 0..READS_PER_TURN {
            let r = {
                let io = self.io.borrow();
                let Some(pair) = io.as_ref() else {
                    done = true;
                    break;
                };
                pair.reg.try_io(Direction::Read, || pair.io.read(&mut buf))
            };
            match r {
                Some(Ok(n)) if n > 0 => {
                    discarded += n;
                    if discarded > LINGER_MAX_DISCARD {
                        done = true;
                        break;
                    }
                }
                None => break, // drained: the next edge runs this again
                Some(_) => {
                    done = true; // EOF or an error (a reset): nothing more can come
                    break;
                }
            }
        }
        put_read_buf(buf);
        self.discarded.set(discarded);
        if done {
            self.end_linger();
        } else if self
            .io
            .borrow()
            .as_ref()
            .is_some_and(|p| p.reg.is_ready(Direction::Read))
        {
            self.schedule(); // budget spent with more to read: others first (B02)
        }
    }

    /// Lingering ends (peer EOF, error or timeout): close the fd.
    fn end_linger(&self) {
        if self.state.replace(State::Closed) != State::Lingering {
            return;
        }
        if let Some(t) = self.linger_timer.borrow_mut().take() {
            t.cancel();
        }
        let pair = self.io.borrow_mut().take();
        drop(pair);
    }
}

/// Which connections a server has open, for `wait_closed` / `close_clients`.
#[derive(Default)]
pub(crate) struct ClientSet {
    next: Cell<u64>,
    map: RefCell<HashMap<u64, Weak<Inner>>>,
}

impl ClientSet {
    pub(crate) fn insert(&self, t: &Transport) -> u64 {
        let id = self.next.get();
        self.next.set(id + 1);
        self.map.borrow_mut().insert(id, t.downgrade());
        id
    }

    pub(crate) fn remove(&self, id: u64) {
        self.map.borrow_mut().remove(&id);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.borrow().len()
    }

    pub(crate) fn all(&self) -> Vec<Transport> {
        self.map
            .borrow()
            .values()
            .filter_map(Weak::upgrade)
            .map(Transport::from_inner)
            .collect()
    }
}
