//! Streams: `open_connection`, `start_server`, [`StreamReader`], [`StreamWriter`]
//! (asyncio's `streams.py`).
//!
//! Layer 4, on top of [`crate::transports`]: a stream connection is a transport whose
//! protocol is a [`BufferedProtocol`] that receives straight into the reader's buffer (no
//! copy on receive). The reader and the writer are two handles on that protocol.
//!
//! # Flow control
//!
//! - Receiving: the reader's buffer is bounded. Above `2 × limit` bytes buffered, the
//!   transport stops reading (the kernel's buffers fill and TCP slows the peer); at `limit`
//!   or below it reads again. A read that needs more than is buffered resumes reading
//!   whatever the size (as asyncio does), and the line methods stop with
//!   [`LimitOverrunError`] once a line exceeds `limit`, so memory stays bounded by about
//!   `limit` plus one read.
//! - Sending: [`StreamWriter::write`] never blocks; [`StreamWriter::drain`] waits while the
//!   transport's buffer is above its high-water mark (64 KiB) until it is back to the
//!   low-water mark (16 KiB). Write, then `drain().await`: a peer that does not read
//!   cannot make the writer buffer more than the high-water mark plus one write.
//!
//! # Cancel safety
//!
//! Every reading method is cancel-safe: a reading future consumes bytes from the buffer only
//! in the poll that returns them, so dropping it (a cancelled task, a lost `select`, a
//! timeout) loses nothing; the next read sees the same bytes. [`StreamWriter::drain`] and
//! [`StreamWriter::wait_closed`] only wait. Each method's docs say so again.
//!
//! # Rust's async I/O traits
//!
//! With the `futures-io` cargo feature (off by default), [`StreamReader`] implements
//! `futures_io::AsyncRead` and [`StreamWriter`] implements `futures_io::AsyncWrite`, so code
//! written against those traits (protocol codecs, `futures-lite` helpers, ...) runs on
//! corio streams. `AsyncBufRead` is not offered: its `poll_fill_buf` lends a slice of the
//! buffer, which here lives in a `RefCell` shared with the transport. tokio's `AsyncRead`
//! is not implemented (it would mean depending on tokio). See DESIGN.md, "Streams".

use std::cell::RefCell;
use std::error::Error as StdError;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use socket2::{Domain, SockAddr};

use crate::base_events::expect_current;
use crate::net::ToSocketAddrs;
use crate::protocols::{BaseProtocol, BufferedProtocol};
use crate::server::{
    Server, ServerOptions, connect, start_transport_slot, tcp_server, unix_server,
};
use crate::transports::{Address, DirectRead, ExtraInfo, Kind, ProtocolSlot, Slot, Transport};

/// The default [`StreamReader`] limit: 64 KiB, as asyncio.
pub const DEFAULT_LIMIT: usize = 64 * 1024;

/// How much room [`BufferedProtocol::get_buffer`] offers at least.
const MIN_READ_ROOM: usize = 16 * 1024;

/// The smallest caller's buffer [`StreamReader::read_into`] receives into directly (when
/// nothing is buffered); smaller reads go through the reader's buffer, one large `recv`
/// serving many of them.
const MIN_DIRECT_READ: usize = 4 * 1024;

/// asyncio's `IncompleteReadError`: EOF came before the expected bytes. Carries what was
/// read (consumed from the stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncompleteReadError {
    /// The bytes read before EOF.
    pub partial: Vec<u8>,
    /// How many bytes were expected (`None` for `readuntil`: up to a separator).
    pub expected: Option<usize>,
}

impl fmt::Display for IncompleteReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            Some(n) => write!(
                f,
                "{} bytes read on a total of {n} expected bytes",
                self.partial.len()
            ),
            None => write!(
                f,
                "{} bytes read on a total of undefined expected bytes",
                self.partial.len()
            ),
        }
    }
}

impl StdError for IncompleteReadError {}

/// asyncio's `LimitOverrunError`: no separator within the reader's limit. The data is
/// **left in the buffer** (for `readuntil`), so the caller may read it another way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitOverrunError {
    /// What went wrong ("Separator is not found, and chunk exceed the limit", or "Separator
    /// is found, but chunk is longer than limit").
    pub message: &'static str,
    /// How many bytes could be consumed before the separator (or were searched).
    pub consumed: usize,
}

impl fmt::Display for LimitOverrunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (consumed {})", self.message, self.consumed)
    }
}

impl StdError for LimitOverrunError {}

/// Why a [`StreamReader`] read failed.
#[derive(Debug)]
pub enum StreamError {
    /// EOF before the expected data ([`IncompleteReadError`]).
    Incomplete(IncompleteReadError),
    /// A line or chunk longer than the limit ([`LimitOverrunError`]).
    LimitOverrun(LimitOverrunError),
    /// The connection failed (reset, ...).
    Io(io::Error),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Incomplete(e) => e.fmt(f),
            StreamError::LimitOverrun(e) => e.fmt(f),
            StreamError::Io(e) => e.fmt(f),
        }
    }
}

impl StdError for StreamError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            StreamError::Incomplete(e) => Some(e),
            StreamError::LimitOverrun(e) => Some(e),
            StreamError::Io(e) => Some(e),
        }
    }
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> Self {
        StreamError::Io(e)
    }
}

impl From<StreamError> for io::Error {
    /// `Incomplete` becomes `UnexpectedEof`, `LimitOverrun` becomes `InvalidData`, each
    /// keeping the original error inside.
    fn from(e: StreamError) -> io::Error {
        match e {
            StreamError::Io(e) => e,
            StreamError::Incomplete(e) => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            StreamError::LimitOverrun(e) => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// An `io::Error` kept to be reported more than once.
#[derive(Clone, Debug)]
struct SavedError(io::ErrorKind, String);

impl SavedError {
    fn new(e: &io::Error) -> SavedError {
        SavedError(e.kind(), e.to_string())
    }
    fn get(&self) -> io::Error {
        io::Error::new(self.0, self.1.clone())
    }
}

thread_local! {
    /// Receive buffers that connections gave back when their reads went direct, for the next
    /// connection that needs one. A connection under backpressure (its task waiting in
    /// `drain` while requests arrive) switches between the buffered and the direct path, and
    /// without this list every switch went through the allocator.
    static SPARE_BUFS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// How many spare receive buffers a thread keeps (16 KiB each: at most 4 MiB).
const SPARE_BUFS_MAX: usize = 256;

/// The receive buffer: bytes `[start..end]` of `data` (whose length is its capacity).
#[derive(Default)]
struct RecvBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl RecvBuf {
    fn len(&self) -> usize {
        self.end - self.start
    }
    fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.data.len() > 4 * DEFAULT_LIMIT {
                // Give back memory after a burst.
                self.data = vec![0; MIN_READ_ROOM * 4];
            }
        }
    }
    /// Gives back the storage of an empty buffer: a standard-size one to this thread's spare
    /// list (see [`SPARE_BUFS`]), a larger one to the allocator.
    fn release(&mut self) {
        debug_assert_eq!(self.len(), 0);
        if self.data.capacity() != 0 {
            let data = std::mem::take(&mut self.data);
            *self = RecvBuf::default();
            if data.len() == MIN_READ_ROOM {
                SPARE_BUFS.with(|s| {
                    let mut s = s.borrow_mut();
                    if s.len() < SPARE_BUFS_MAX {
                        s.push(data);
                    }
                });
            }
        }
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        let v = self.data[self.start..self.start + n].to_vec();
        self.consume(n);
        v
    }
    fn take_all(&mut self) -> Vec<u8> {
        self.take(self.len())
    }
    /// Free space at the end, without moving or growing anything.
    fn spare(&self) -> usize {
        self.data.len() - self.end
    }
    /// Room to receive at least `want` bytes at the end.
    fn room(&mut self, want: usize) -> &mut [u8] {
        if self.data.is_empty()
            && want <= MIN_READ_ROOM
            && let Some(spare) = SPARE_BUFS.with(|s| s.borrow_mut().pop())
        {
            self.data = spare;
        }
        if self.data.len() - self.end < want {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.data.len() - self.end < want {
                let size = (self.end + want).max(self.data.len() * 2);
                self.data.resize(size, 0);
            }
        }
        &mut self.data[self.end..]
    }
    fn extend(&mut self, bytes: &[u8]) {
        self.room(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }
}

type ClientCallback = Rc<dyn Fn(StreamReader, StreamWriter)>;

/// The protocol behind a stream connection (asyncio's `StreamReaderProtocol`), shared by
/// the transport, the reader and the writer.
struct StreamProtocol {
    me: Weak<RefCell<StreamProtocol>>,
    buf: RecvBuf,
    limit: usize,
    eof: bool,
    exception: Option<SavedError>,
    reader: Option<Waker>,
    transport: Option<Transport>,
    read_paused: bool,
    write_paused: bool,
    drain_waiters: Vec<Waker>,
    lost: bool,
    lost_error: Option<SavedError>,
    closed_waiters: Vec<Waker>,
    on_made: Option<ClientCallback>,
}

type Shared = Rc<RefCell<StreamProtocol>>;

fn new_shared(limit: usize, on_made: Option<ClientCallback>) -> Shared {
    assert!(limit > 0, "the stream limit must be positive");
    Rc::new_cyclic(|me| {
        RefCell::new(StreamProtocol {
            me: me.clone(),
            buf: RecvBuf::default(),
            limit,
            eof: false,
            exception: None,
            reader: None,
            transport: None,
            read_paused: false,
            write_paused: false,
            drain_waiters: Vec::new(),
            lost: false,
            lost_error: None,
            closed_waiters: Vec::new(),
            on_made,
        })
    })
}

fn wake_all(ws: &mut Vec<Waker>) {
    for w in ws.drain(..) {
        w.wake();
    }
}

fn park(slot: &mut Vec<Waker>, w: &Waker) {
    if !slot.iter().any(|x| x.will_wake(w)) {
        slot.push(w.clone());
    }
}

impl StreamProtocol {
    fn wake_reader(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    fn feed_data(&mut self, data: &[u8]) {
        assert!(!self.eof, "feed_data after feed_eof");
        if data.is_empty() {
            return;
        }
        self.buf.extend(data);
        self.after_data();
    }

    fn after_data(&mut self) {
        self.wake_reader();
        if !self.read_paused && self.buf.len() > 2 * self.limit {
            if let Some(t) = &self.transport {
                t.pause_reading();
                self.read_paused = true;
            }
        }
    }

    fn feed_eof(&mut self) {
        self.eof = true;
        self.wake_reader();
    }

    /// After consuming: read again once at or below the limit.
    fn maybe_resume(&mut self) {
        if self.read_paused && self.buf.len() <= self.limit {
            self.read_paused = false;
            if let Some(t) = &self.transport {
                t.resume_reading();
            }
        }
    }

    /// Parks the reader until more data, EOF or an error (asyncio's `_wait_for_data`).
    fn wait<T>(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        match &self.reader {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.reader = Some(cx.waker().clone()),
        }
        if let Some(t) = &self.transport {
            // Waiting for buffered data: the transport must read (not hand readiness to a
            // direct read that may never come).
            t.end_direct();
        }
        if self.read_paused {
            // Someone needs more data than is buffered: read whatever the size.
            self.read_paused = false;
            if let Some(t) = &self.transport {
                t.resume_reading();
            }
        }
        Poll::Pending
    }

    fn check_exception(&self) -> io::Result<()> {
        match &self.exception {
            Some(e) => Err(e.get()),
            None => Ok(()),
        }
    }
}

impl BaseProtocol for StreamProtocol {
    fn connection_lost(&mut self, exc: Option<io::Error>) {
        match &exc {
            Some(e) => {
                let saved = SavedError::new(e);
                self.exception = Some(saved.clone());
                self.lost_error = Some(saved);
                self.eof = true;
            }
            None => self.eof = true,
        }
        self.lost = true;
        self.wake_reader();
        wake_all(&mut self.drain_waiters);
        wake_all(&mut self.closed_waiters);
    }

    fn pause_writing(&mut self) {
        self.write_paused = true;
    }

    fn resume_writing(&mut self) {
        self.write_paused = false;
        wake_all(&mut self.drain_waiters);
    }
}

impl BufferedProtocol for StreamProtocol {
    fn connection_made(&mut self, transport: &Transport) {
        self.transport = Some(transport.clone());
        if let Some(cb) = self.on_made.take() {
            let shared = self.me.upgrade().expect("the protocol is alive");
            let reader = StreamReader {
                shared: shared.clone(),
            };
            let writer = StreamWriter {
                shared,
                transport: transport.clone(),
            };
            cb(reader, writer);
        }
    }

    fn get_buffer(&mut self, sizehint: usize) -> &mut [u8] {
        let want = sizehint.clamp(MIN_READ_ROOM, crate::transports::READ_SIZE);
        // Free space already there is good enough down to a quarter of the usual room:
        // doubling a 16 KiB buffer because 1 KiB waits in it would cost idle connections.
        let room = if self.buf.spare() >= MIN_READ_ROOM / 4 {
            &mut self.buf.data[self.buf.end..]
        } else {
            self.buf.room(MIN_READ_ROOM)
        };
        let n = room.len().min(want);
        &mut room[..n]
    }

    fn buffer_updated(&mut self, nbytes: usize) {
        self.buf.end += nbytes;
        self.after_data();
    }

    fn eof_received(&mut self) -> bool {
        self.feed_eof();
        // Keep the transport open: the writer may still send (half-close).
        true
    }
}

/// The reading half of a stream connection (asyncio's `StreamReader`).
///
/// Reads take `&mut self`: one pending read at a time (asyncio raises `RuntimeError` for a
/// second concurrent reader; here the borrow checker forbids it). Every read is
/// **cancel-safe** (see the [module docs](self)).
///
/// A reader can also stand alone, fed by hand with [`feed_data`](StreamReader::feed_data)
/// and [`feed_eof`](StreamReader::feed_eof):
///
/// ```
/// use corio::streams::StreamReader;
/// corio::run(async {
///     let mut r = StreamReader::new();
///     r.feed_data(b"one\ntw");
///     r.feed_data(b"o\nrest");
///     r.feed_eof();
///     assert_eq!(r.readline().await.unwrap(), b"one\n");
///     assert_eq!(r.readline().await.unwrap(), b"two\n");
///     assert_eq!(r.readline().await.unwrap(), b"rest"); // the partial line at EOF
///     assert!(r.at_eof());
/// });
/// ```
pub struct StreamReader {
    shared: Shared,
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared.borrow();
        f.debug_struct("StreamReader")
            .field("buffered", &s.buf.len())
            .field("limit", &s.limit)
            .field("eof", &s.eof)
            .field("paused", &s.read_paused)
            .finish()
    }
}

impl Default for StreamReader {
    fn default() -> Self {
        StreamReader::new()
    }
}

impl StreamReader {
    /// A standalone reader with the default limit (64 KiB), fed with
    /// [`feed_data`](StreamReader::feed_data).
    pub fn new() -> StreamReader {
        StreamReader::with_limit(DEFAULT_LIMIT)
    }

    /// A standalone reader with `limit`. Panics if `limit` is 0.
    pub fn with_limit(limit: usize) -> StreamReader {
        StreamReader {
            shared: new_shared(limit, None),
        }
    }

    /// The limit on line length and buffering.
    pub fn limit(&self) -> usize {
        self.shared.borrow().limit
    }

    /// How many bytes are buffered, read from the socket but not yet by the program.
    pub fn buffered(&self) -> usize {
        self.shared.borrow().buf.len()
    }

    /// A handle that feeds this reader from elsewhere (another task, a protocol of your
    /// own) while a read is pending on it.
    ///
    /// ```
    /// corio::run(async {
    ///     let mut r = corio::streams::StreamReader::new();
    ///     let feeder = r.feeder();
    ///     let t = corio::spawn(async move {
    ///         feeder.feed_data(b"split ");
    ///         corio::yield_now().await;
    ///         feeder.feed_data(b"line\n");
    ///     });
    ///     assert_eq!(r.readline().await.unwrap(), b"split line\n");
    ///     t.await.unwrap();
    /// });
    /// ```
    pub fn feeder(&self) -> StreamFeeder {
        StreamFeeder {
            shared: self.shared.clone(),
        }
    }

    /// Adds bytes, as the transport does. Panics after [`feed_eof`](StreamReader::feed_eof).
    pub fn feed_data(&self, data: &[u8]) {
        self.shared.borrow_mut().feed_data(data);
    }

    /// Marks the end of the stream.
    pub fn feed_eof(&self) {
        self.shared.borrow_mut().feed_eof();
    }

    /// Makes every later read fail with `exc` (asyncio's `set_exception`).
    pub fn set_exception(&self, exc: io::Error) {
        let mut s = self.shared.borrow_mut();
        s.exception = Some(SavedError::new(&exc));
        s.wake_reader();
    }

    /// The error set by the transport or [`set_exception`](StreamReader::set_exception).
    pub fn exception(&self) -> Option<io::Error> {
        self.shared.borrow().exception.as_ref().map(SavedError::get)
    }

    /// Whether EOF was seen and the buffer is empty (asyncio's `at_eof`).
    pub fn at_eof(&self) -> bool {
        let s = self.shared.borrow();
        s.eof && s.buf.len() == 0
    }

    /// Polls for at least one byte (or EOF); the building block of the reads below.
    fn poll_fill(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = self.shared.borrow_mut();
        s.check_exception()?;
        if s.buf.len() > 0 || s.eof {
            return Poll::Ready(Ok(()));
        }
        s.wait(cx)
    }

    /// Reads into `buf` what is buffered, waiting for at least one byte; `Ok(0)` means EOF
    /// (or an empty `buf`). The allocation-free form of [`read`](StreamReader::read).
    ///
    /// When nothing is buffered and `buf` holds at least 4 KiB, the bytes are received
    /// straight into `buf` (one `recv`, no copy): the task waits on the socket's readiness
    /// itself, and the transport is not run for it. EOF and errors are reported as on the
    /// buffered path.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: bytes are copied out, or received into `buf`, only in the poll that
    /// returns them; a dropped read leaves unread bytes in the buffer or in the kernel.
    pub async fn read_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_into(cx, buf)).await
    }

    /// The poll form of [`read_into`](StreamReader::read_into).
    pub fn poll_read_into(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut s = self.shared.borrow_mut();
        s.check_exception()?;
        if s.buf.len() == 0 && !s.eof && buf.len() >= MIN_DIRECT_READ {
            // From here on the caller's buffer does the receiving: give back the one the
            // buffered path filled (typically before this task first ran), or every idle
            // connection would keep it (issue 8: memory per connection).
            s.buf.release();
            if let Some(t) = &s.transport {
                // The fast path: receive into `buf` (see `Transport::read_direct`).
                match t.read_direct(buf, cx) {
                    DirectRead::Data(n) => return Poll::Ready(Ok(n)),
                    DirectRead::Parked | DirectRead::Failed => {
                        // Also parked here: EOF, an error (connection_lost) or fed data
                        // wake the reader through the protocol.
                        match &s.reader {
                            Some(w) if w.will_wake(cx.waker()) => {}
                            _ => s.reader = Some(cx.waker().clone()),
                        }
                        return Poll::Pending;
                    }
                    DirectRead::Eof => {
                        let t = t.clone();
                        drop(s);
                        t.direct_eof(); // eof_received: feed_eof
                        s = self.shared.borrow_mut();
                        s.check_exception()?;
                    }
                    DirectRead::Unavailable => {}
                }
            }
        }
        if s.buf.len() == 0 {
            if !s.eof {
                return s.wait(cx);
            }
            return Poll::Ready(Ok(0));
        }
        let n = s.buf.len().min(buf.len());
        buf[..n].copy_from_slice(&s.buf.bytes()[..n]);
        s.buf.consume(n);
        s.maybe_resume();
        Poll::Ready(Ok(n))
    }

    /// Reads up to `n` bytes, waiting for at least one (asyncio's `read(n)`); an empty
    /// vector means EOF (or `n == 0`).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn read(&mut self, n: usize) -> io::Result<Vec<u8>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        poll_fn(|cx| {
            std::task::ready!(self.poll_fill(cx))?;
            let mut s = self.shared.borrow_mut();
            let k = s.buf.len().min(n);
            let v = s.buf.take(k);
            s.maybe_resume();
            Poll::Ready(Ok(v))
        })
        .await
    }

    /// Reads until EOF (asyncio's `read(-1)`).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: nothing is consumed until EOF. The buffer grows without limit meanwhile,
    /// as in asyncio: use it for bounded peers only.
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        poll_fn(|cx| {
            let mut s = self.shared.borrow_mut();
            s.check_exception()?;
            if s.eof {
                let v = s.buf.take_all();
                return Poll::Ready(Ok(v));
            }
            s.wait(cx)
        })
        .await
    }

    /// Reads exactly `n` bytes (asyncio's `readexactly`). EOF first gives
    /// [`StreamError::Incomplete`] carrying the bytes that came (consumed).
    ///
    /// ```
    /// use corio::streams::{StreamError, StreamReader};
    /// corio::run(async {
    ///     let mut r = StreamReader::new();
    ///     r.feed_data(b"abc");
    ///     r.feed_eof();
    ///     match r.readexactly(5).await {
    ///         Err(StreamError::Incomplete(e)) => {
    ///             assert_eq!(e.partial, b"abc");
    ///             assert_eq!(e.expected, Some(5));
    ///         }
    ///         other => panic!("{other:?}"),
    ///     }
    /// });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: nothing is consumed until all `n` bytes are there.
    pub async fn readexactly(&mut self, n: usize) -> Result<Vec<u8>, StreamError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        poll_fn(|cx| {
            let mut s = self.shared.borrow_mut();
            s.check_exception()?;
            if s.buf.len() >= n {
                let v = s.buf.take(n);
                s.maybe_resume();
                return Poll::Ready(Ok(v));
            }
            if s.eof {
                let partial = s.buf.take_all();
                return Poll::Ready(Err(StreamError::Incomplete(IncompleteReadError {
                    partial,
                    expected: Some(n),
                })));
            }
            s.wait(cx)
        })
        .await
    }

    /// Reads up to and including `sep` (asyncio's `readuntil`). The separator may arrive
    /// split over several reads.
    ///
    /// - No separator within the limit: [`StreamError::LimitOverrun`], and the data stays
    ///   in the buffer (read it with [`read`](StreamReader::read), or skip it).
    /// - EOF first: [`StreamError::Incomplete`] with what was buffered (consumed).
    ///
    /// ```
    /// use corio::streams::{StreamError, StreamReader};
    /// corio::run(async {
    ///     let mut r = StreamReader::with_limit(10);
    ///     r.feed_data(b"key=value;0123456789abcdef;");
    ///     assert_eq!(r.readuntil(b";").await.unwrap(), b"key=value;");
    ///     let Err(StreamError::LimitOverrun(e)) = r.readuntil(b";").await else { panic!() };
    ///     assert_eq!(e.consumed, 16);
    ///     assert_eq!(r.read(100).await.unwrap(), b"0123456789abcdef;"); // still there
    /// });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: nothing is consumed until the separator is found.
    pub async fn readuntil(&mut self, sep: &[u8]) -> Result<Vec<u8>, StreamError> {
        assert!(
            !sep.is_empty(),
            "readuntil: the separator must not be empty"
        );
        let seplen = sep.len();
        let mut offset = 0usize;
        poll_fn(|cx| {
            let mut s = self.shared.borrow_mut();
            s.check_exception()?;
            let limit = s.limit;
            let buflen = s.buf.len();
            let mut found = None;
            if buflen >= offset + seplen {
                match find(&s.buf.bytes()[offset..], sep) {
                    Some(i) => found = Some(offset + i),
                    None => {
                        // A partial separator may end the buffer: search again from there.
                        offset = buflen + 1 - seplen;
                        if offset > limit {
                            return Poll::Ready(Err(StreamError::LimitOverrun(
                                LimitOverrunError {
                                    message: "Separator is not found, and chunk exceed the limit",
                                    consumed: offset,
                                },
                            )));
                        }
                    }
                }
            }
            match found {
                Some(isep) if isep > limit => {
                    Poll::Ready(Err(StreamError::LimitOverrun(LimitOverrunError {
                        message: "Separator is found, but chunk is longer than limit",
                        consumed: isep,
                    })))
                }
                Some(isep) => {
                    let v = s.buf.take(isep + seplen);
                    s.maybe_resume();
                    Poll::Ready(Ok(v))
                }
                None if s.eof => {
                    let partial = s.buf.take_all();
                    Poll::Ready(Err(StreamError::Incomplete(IncompleteReadError {
                        partial,
                        expected: None,
                    })))
                }
                None => s.wait(cx),
            }
        })
        .await
    }

    /// Reads one line, `\n` included (asyncio's `readline`). At EOF returns the partial
    /// last line (empty at the very end). A line longer than the limit gives
    /// [`StreamError::LimitOverrun`] and is **dropped** from the buffer (up to its `\n` if
    /// that was seen, else everything buffered), as asyncio does.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn readline(&mut self) -> Result<Vec<u8>, StreamError> {
        match self.readuntil(b"\n").await {
            Ok(line) => Ok(line),
            Err(StreamError::Incomplete(e)) => Ok(e.partial),
            Err(StreamError::LimitOverrun(e)) => {
                let mut s = self.shared.borrow_mut();
                if s.buf.bytes().get(e.consumed) == Some(&b'\n') {
                    s.buf.consume(e.consumed + 1);
                } else {
                    let n = s.buf.len();
                    s.buf.consume(n);
                }
                s.maybe_resume();
                Err(StreamError::LimitOverrun(e))
            }
            Err(e) => Err(e),
        }
    }
}

/// Feeds a [`StreamReader`] (from [`StreamReader::feeder`]): what a transport does.
#[derive(Clone)]
pub struct StreamFeeder {
    shared: Shared,
}

impl fmt::Debug for StreamFeeder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamFeeder")
    }
}

impl StreamFeeder {
    /// Adds bytes and wakes the pending read. Panics after [`feed_eof`](StreamFeeder::feed_eof).
    pub fn feed_data(&self, data: &[u8]) {
        self.shared.borrow_mut().feed_data(data);
    }

    /// Marks the end of the stream.
    pub fn feed_eof(&self) {
        self.shared.borrow_mut().feed_eof();
    }

    /// Makes every later read fail with `exc`.
    pub fn set_exception(&self, exc: io::Error) {
        let mut s = self.shared.borrow_mut();
        s.exception = Some(SavedError::new(&exc));
        s.wake_reader();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return hay.iter().position(|&b| b == needle[0]);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The writing half of a stream connection (asyncio's `StreamWriter`).
///
/// Methods take `&self`, so several tasks may write and [`drain`](StreamWriter::drain)
/// (share the writer in an `Rc`). Dropping the writer closes the connection after flushing
/// (asyncio closes an unclosed writer when it is garbage-collected).
///
/// ```
/// corio::run(async {
///     let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let (_r, w) = corio::streams::open_connection(listener.local_addr().unwrap())
///         .await
///         .unwrap();
///     // Write, then drain: the buffer never grows past the high-water mark plus one write.
///     for _ in 0..16 {
///         w.write(&[0u8; 1024]);
///         w.drain().await.unwrap();
///     }
///     assert!(w.transport().get_write_buffer_size() <= 64 * 1024 + 1024);
///     w.close();
/// });
/// ```
pub struct StreamWriter {
    shared: Shared,
    transport: Transport,
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("transport", &self.transport)
            .finish()
    }
}

impl Drop for StreamWriter {
    /// Closes the connection (after flushing), like asyncio's `StreamWriter.__del__`, and
    /// like it reports the forgotten `close()` ("unclosed StreamWriter", at WARN).
    fn drop(&mut self) {
        if !self.transport.is_closing() {
            crate::debug::report_unclosed(
                "StreamWriter",
                &format_args!("{:?}", self.transport.peername()),
                None,
            );
        }
        self.transport.close();
    }
}

impl StreamWriter {
    /// Queues `data` for sending: sent at once when the kernel takes it, buffered
    /// otherwise. Never blocks; follow with [`drain`](StreamWriter::drain) to respect flow
    /// control.
    pub fn write(&self, data: &[u8]) {
        self.transport.write(data);
    }

    /// Writes several buffers (one `writev` when nothing is buffered).
    pub fn writelines<B: AsRef<[u8]>>(&self, bufs: &[B]) {
        self.transport.writelines(bufs);
    }

    /// Waits while the write buffer is above the high-water mark (asyncio's `drain`).
    /// Returns at once below it. Fails if the connection is lost (`ConnectionReset`, or the
    /// error that ended it) or the reader has an error.
    ///
    /// Several tasks may wait in `drain` at once; all are woken.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: it only waits; what was written stays buffered and is still sent.
    pub async fn drain(&self) -> io::Result<()> {
        if self.transport.is_closing() && !self.shared.borrow().lost {
            // Let connection_lost run first, so a lost connection is reported (asyncio).
            crate::yield_now().await;
        }
        poll_fn(|cx| self.poll_drain(cx)).await
    }

    /// The poll form of [`drain`](StreamWriter::drain).
    pub fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = self.shared.borrow_mut();
        s.check_exception()?;
        if s.lost {
            return Poll::Ready(Err(s.lost_error.as_ref().map_or_else(
                || io::Error::new(io::ErrorKind::ConnectionReset, "Connection lost"),
                SavedError::get,
            )));
        }
        if !s.write_paused {
            return Poll::Ready(Ok(()));
        }
        park(&mut s.drain_waiters, cx.waker());
        Poll::Pending
    }

    /// Shuts down the write side after flushing (the peer reads EOF); reading goes on.
    pub fn write_eof(&self) {
        self.transport.write_eof();
    }

    /// Whether [`write_eof`](StreamWriter::write_eof) is supported.
    pub fn can_write_eof(&self) -> bool {
        self.transport.can_write_eof()
    }

    /// Starts closing: flushes, then closes (asyncio's `close`). Follow with
    /// [`wait_closed`](StreamWriter::wait_closed).
    pub fn close(&self) {
        self.transport.close();
    }

    /// Whether the connection is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.transport.is_closing()
    }

    /// Waits until the connection is closed (`connection_lost` ran); returns the error that
    /// ended it, if any.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: it only waits.
    pub async fn wait_closed(&self) -> io::Result<()> {
        poll_fn(|cx| {
            let mut s = self.shared.borrow_mut();
            if s.lost {
                return Poll::Ready(match &s.lost_error {
                    Some(e) => Err(e.get()),
                    None => Ok(()),
                });
            }
            park(&mut s.closed_waiters, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// asyncio's `get_extra_info`: see [`Transport::get_extra_info`].
    pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.transport.get_extra_info(name)
    }

    /// The peer's address.
    pub fn peername(&self) -> Option<Address> {
        self.transport.peername()
    }

    /// The transport underneath.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }
}

fn stream_slot(shared: &Shared) -> ProtocolSlot {
    let dyn_proto: Rc<RefCell<dyn BufferedProtocol>> = shared.clone();
    ProtocolSlot(Slot::Buffered(dyn_proto))
}

async fn open_pair(
    pair: crate::transports::IoPair,
    kind: Kind,
    limit: usize,
) -> (StreamReader, Shared, Transport) {
    let shared = new_shared(limit, None);
    let t = start_transport_slot(pair, kind, stream_slot(&shared)).await;
    (
        StreamReader {
            shared: shared.clone(),
        },
        shared,
        t,
    )
}

/// Connects to `addr` and returns the stream pair (asyncio's `open_connection`).
///
/// ```
/// corio::run(async {
///     let server = corio::streams::start_server(
///         |mut r, w| async move {
///             while let Ok(line) = r.readline().await {
///                 if line.is_empty() { break }
///                 w.write(&line.to_ascii_uppercase());
///                 if w.drain().await.is_err() { break }
///             }
///         },
///         "127.0.0.1:0",
///     )
///     .await
///     .unwrap();
///     let (mut r, w) = corio::streams::open_connection(server.local_addr().unwrap()).await.unwrap();
///     w.write(b"hello\n");
///     assert_eq!(r.readline().await.unwrap(), b"HELLO\n");
///     w.close();
///     w.wait_closed().await.unwrap();
/// });
/// ```
///
/// # Cancel safety
///
/// Dropping the future gives up the connection attempt and closes the socket.
pub async fn open_connection(addr: impl ToSocketAddrs) -> io::Result<(StreamReader, StreamWriter)> {
    open_connection_with_limit(addr, DEFAULT_LIMIT).await
}

/// [`open_connection`] with a reader limit.
pub async fn open_connection_with_limit(
    addr: impl ToSocketAddrs,
    limit: usize,
) -> io::Result<(StreamReader, StreamWriter)> {
    let mut last = None;
    for a in crate::net::addr::resolve(&addr).await? {
        match connect(Domain::for_address(a), &SockAddr::from(a)).await {
            Ok(pair) => {
                let (reader, shared, transport) = open_pair(pair, Kind::Socket, limit).await;
                return Ok((reader, StreamWriter { shared, transport }));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no socket address to use")))
}

/// Connects to the Unix-domain socket `path` (asyncio's `open_unix_connection`).
pub async fn open_unix_connection(
    path: impl AsRef<Path>,
) -> io::Result<(StreamReader, StreamWriter)> {
    open_unix_connection_with_limit(path, DEFAULT_LIMIT).await
}

/// [`open_unix_connection`] with a reader limit (asyncio's `limit=`).
///
/// ```
/// use corio::server::ServerOptions;
/// use corio::streams::{open_unix_connection_with_limit, start_unix_server_with};
///
/// corio::run(async {
///     let path = std::env::temp_dir().join(format!("corio-doc-{}.sock", std::process::id()));
///     let opts = ServerOptions { limit: 8, ..ServerOptions::default() };
///     let server = start_unix_server_with(
///         |mut r, w| async move {
///             // The server's readers have an 8-byte limit: a longer line is an error.
///             let err = r.readline().await.unwrap_err();
///             w.write(format!("{err}\n").as_bytes());
///         },
///         &path,
///         &opts,
///     )
///     .await
///     .unwrap();
///     let (mut r, w) = open_unix_connection_with_limit(&path, 1024).await.unwrap();
///     w.write(b"far longer than eight bytes\n");
///     let answer = r.readline().await.unwrap();
///     assert!(String::from_utf8_lossy(&answer).contains("limit"), "{answer:?}");
///     server.close();
/// });
/// ```
pub async fn open_unix_connection_with_limit(
    path: impl AsRef<Path>,
    limit: usize,
) -> io::Result<(StreamReader, StreamWriter)> {
    let pair = connect(Domain::UNIX, &SockAddr::unix(path)?).await?;
    let (reader, shared, transport) = open_pair(pair, Kind::Socket, limit).await;
    Ok((reader, StreamWriter { shared, transport }))
}

/// A [`StreamReader`] over a pipe, a FIFO or a terminal (asyncio's `StreamReader` +
/// `connect_read_pipe`, as the book's non-blocking stdin, listing 8.4). For stdin pass a
/// duplicate: `std::io::stdin().as_fd().try_clone_to_owned()?`.
pub async fn open_pipe_reader(pipe: impl Into<OwnedFd>) -> io::Result<StreamReader> {
    let pair = crate::pipes::pipe_pair(pipe.into(), crate::selector::Event::READABLE)?;
    let (reader, _, _) = open_pair(pair, Kind::ReadPipe, DEFAULT_LIMIT).await;
    Ok(reader)
}

/// A [`StreamWriter`] over a pipe (asyncio's `connect_write_pipe` with a stream protocol).
pub async fn open_pipe_writer(pipe: impl Into<OwnedFd>) -> io::Result<StreamWriter> {
    let pair = crate::pipes::pipe_pair(pipe.into(), crate::selector::Event::WRITABLE)?;
    let (_, shared, transport) = open_pair(pair, Kind::WritePipe, DEFAULT_LIMIT).await;
    Ok(StreamWriter { shared, transport })
}

fn client_factory<F, Fut>(cb: F, limit: usize) -> Box<dyn FnMut() -> ProtocolSlot>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: std::future::Future + 'static,
{
    let core = expect_current("start_server", Rc::clone);
    let cb: ClientCallback = Rc::new(move |r, w| {
        crate::tasks::spawn_on(&core, cb(r, w), None);
    });
    Box::new(move || stream_slot(&new_shared(limit, Some(cb.clone()))))
}

/// Serves `addr`: for each connection, runs `client_connected_cb(reader, writer)` as a new
/// task (asyncio's `start_server`). When the task ends, its writer is dropped, which closes
/// the connection after flushing.
///
/// See [`open_connection`] for an example.
pub async fn start_server<F, Fut>(
    client_connected_cb: F,
    addr: impl ToSocketAddrs,
) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: std::future::Future + 'static,
{
    start_server_with(client_connected_cb, addr, &ServerOptions::default()).await
}

/// [`start_server`] with options (backlog, `SO_REUSEPORT`, reader limit, ...).
pub async fn start_server_with<F, Fut>(
    client_connected_cb: F,
    addr: impl ToSocketAddrs,
    opts: &ServerOptions,
) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: std::future::Future + 'static,
{
    let addrs = crate::net::addr::resolve(&addr).await?;
    tcp_server(addrs, client_factory(client_connected_cb, opts.limit), opts)
}

/// Serves the Unix-domain socket `path` (asyncio's `start_unix_server`); see
/// [`EventLoop::create_unix_server`](crate::EventLoop::create_unix_server) for an example.
pub async fn start_unix_server<F, Fut>(
    client_connected_cb: F,
    path: impl AsRef<Path>,
) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: std::future::Future + 'static,
{
    start_unix_server_with(client_connected_cb, path, &ServerOptions::default()).await
}

/// [`start_unix_server`] with options (backlog, reader limit, ...); see
/// [`open_unix_connection_with_limit`] for an example.
pub async fn start_unix_server_with<F, Fut>(
    client_connected_cb: F,
    path: impl AsRef<Path>,
    opts: &ServerOptions,
) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: std::future::Future + 'static,
{
    unix_server(
        path.as_ref(),
        client_factory(client_connected_cb, opts.limit),
        opts,
    )
}

#[cfg(feature = "futures-io")]
mod futures_io_impls {
    //! `futures_io` traits for the streams (feature `futures-io`).
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::{StreamReader, StreamWriter};

    /// Reads what is buffered, waiting for at least one byte; `Ok(0)` at EOF.
    impl futures_io::AsyncRead for StreamReader {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().poll_read_into(cx, buf)
        }
    }

    /// `poll_write` accepts everything below the high-water mark and waits above it (as
    /// `write` + `drain`); `poll_flush` waits until the transport's buffer is empty;
    /// `poll_close` flushes, then shuts down the write side (`write_eof`).
    impl futures_io::AsyncWrite for StreamWriter {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            std::task::ready!(self.poll_drain(cx))?;
            if self.transport.is_closing() {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            self.write(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            std::task::ready!(self.transport.poll_flushed(cx));
            if self.shared.borrow().lost && self.transport.get_write_buffer_size() > 0 {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            Poll::Ready(Ok(()))
        }

        fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            std::task::ready!(self.as_mut().poll_flush(cx))?;
            self.write_eof();
            Poll::Ready(Ok(()))
        }
    }

    #[cfg(test)]
    mod tests {
        use futures_io::{AsyncRead, AsyncWrite};
        use std::future::poll_fn;
        use std::pin::Pin;

        #[test]
        fn streams_implement_futures_io() {
            crate::run(async {
                let server = crate::streams::start_server(
                    |mut r, mut w| async move {
                        let mut buf = [0u8; 64];
                        loop {
                            let n = poll_fn(|cx| Pin::new(&mut r).poll_read(cx, &mut buf))
                                .await
                                .unwrap();
                            if n == 0 {
                                break;
                            }
                            let mut rest = &buf[..n];
                            while !rest.is_empty() {
                                let k = poll_fn(|cx| Pin::new(&mut w).poll_write(cx, rest))
                                    .await
                                    .unwrap();
                                rest = &rest[k..];
                            }
                        }
                        poll_fn(|cx| Pin::new(&mut w).poll_close(cx)).await.unwrap();
                    },
                    "127.0.0.1:0",
                )
                .await
                .unwrap();
                let (mut r, mut w) = crate::streams::open_connection(server.local_addr().unwrap())
                    .await
                    .unwrap();
                poll_fn(|cx| Pin::new(&mut w).poll_write(cx, b"via futures-io"))
                    .await
                    .unwrap();
                poll_fn(|cx| Pin::new(&mut w).poll_flush(cx)).await.unwrap();
                poll_fn(|cx| Pin::new(&mut w).poll_close(cx)).await.unwrap();
                assert_eq!(r.read_to_end().await.unwrap(), b"via futures-io");
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Issue 8's 10 000-connection benchmark found 32 KiB per idle streams connection: the
    /// first request, received before the connection's task first ran, went through the
    /// protocol's buffer, which then stayed allocated although every later read went
    /// straight into the caller's buffer.
    #[test]
    fn direct_reads_release_the_buffer_the_first_request_filled() {
        crate::run(async {
            let (tx, rx) = std::sync::mpsc::channel();
            let server = start_server(
                move |mut r: StreamReader, w: StreamWriter| {
                    let tx = tx.clone();
                    async move {
                        // Let the request arrive before the first read: the transport
                        // receives it into the protocol's buffer.
                        crate::sleep(Duration::from_millis(30)).await;
                        let had = r.shared.borrow().buf.data.capacity();
                        let mut buf = vec![0u8; 16 * 1024];
                        let n = r.read_into(&mut buf).await.unwrap();
                        // Nothing buffered now: the next read takes the direct path.
                        let next = poll_fn(|cx| Poll::Ready(r.poll_read_into(cx, &mut buf))).await;
                        let after = r.shared.borrow().buf.data.capacity();
                        tx.send((had, n, next.is_pending(), after)).unwrap();
                        w.close();
                    }
                },
                "127.0.0.1:0",
            )
            .await
            .unwrap();
            let (_r, w) = open_connection(server.local_addr().unwrap()).await.unwrap();
            w.write(&[7u8; 1024]);
            w.drain().await.unwrap();
            let got = loop {
                if let Ok(got) = rx.try_recv() {
                    break got;
                }
                crate::sleep(Duration::from_millis(5)).await;
            };
            let (had, n, pending, after) = got;
            assert!(had > 0, "the request went through the protocol's buffer");
            assert_eq!(n, 1024);
            assert!(pending, "no more data: the direct read parks");
            assert_eq!(after, 0, "the idle connection still holds {had} bytes");
        });
    }

    /// A connection under backpressure switches between the buffered and the direct path;
    /// each switch went through malloc and free (the streams soak's heap churned).
    #[test]
    fn a_released_buffer_is_reused_by_the_next_one_not_reallocated() {
        let mut a = RecvBuf::default();
        a.room(MIN_READ_ROOM);
        let storage = a.data.as_ptr();
        a.release();
        assert_eq!(a.data.capacity(), 0);
        let mut b = RecvBuf::default();
        b.room(MIN_READ_ROOM);
        assert_eq!(b.data.as_ptr(), storage, "the spare buffer was not reused");
        // A grown buffer goes back to the allocator: the spare list holds 16 KiB ones only.
        b.room(4 * MIN_READ_ROOM);
        b.release();
        assert!(SPARE_BUFS.with(|s| s.borrow().iter().all(|v| v.len() == MIN_READ_ROOM)));
    }

    /// The same benchmark: a second `get_buffer` while 1 KiB waited doubled 16 KiB to 32.
    #[test]
    fn get_buffer_uses_the_room_it_has_instead_of_doubling() {
        let shared = new_shared(DEFAULT_LIMIT, None);
        let mut p = shared.borrow_mut();
        let first = p.get_buffer(crate::transports::READ_SIZE).len();
        assert_eq!(first, MIN_READ_ROOM);
        p.buf.end += 1024; // what buffer_updated(1024) records, without waking anyone
        let second = p.get_buffer(crate::transports::READ_SIZE).len();
        assert_eq!(second, MIN_READ_ROOM - 1024);
        assert_eq!(
            p.buf.data.len(),
            MIN_READ_ROOM,
            "no growth while room is left"
        );
        // Nearly full: then it grows (or compacts) to give the usual room.
        p.buf.end = MIN_READ_ROOM - 100;
        assert!(p.get_buffer(crate::transports::READ_SIZE).len() >= MIN_READ_ROOM);
    }
}
