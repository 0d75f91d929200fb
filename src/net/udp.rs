//! UDP endpoints: `create_datagram_endpoint` and [`DatagramTransport`] (asyncio's
//! `_SelectorDatagramTransport`).
//!
//! Driven like stream transports: one edge-triggered registration, the transport as its loop
//! callback, datagrams received into the thread's shared 64 KiB buffer (large enough for any
//! UDP datagram) and sent straight away when nothing is queued.
//!
//! Errors are not fatal (B09): a send or receive that fails (typically `ECONNREFUSED`, the
//! ICMP "port unreachable" that an earlier datagram provoked) goes to the protocol's
//! `error_received`, and the endpoint carries on. The pending socket error is consumed by
//! the syscall that reported it, so the endpoint does not spin on it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::{Rc, Weak};

use socket2::{Domain, SockAddr, Socket, Type};

use crate::EventLoop;
use crate::base_events::io::Direction;
use crate::base_events::{Core, ExceptionContext};
use crate::events::HandleDyn;
use crate::net::Registration;
use crate::protocols::DatagramProtocol;
use crate::selector::Event;
use crate::transports::{Address, DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER, ExtraInfo, READ_SIZE};

/// Datagrams received per turn before the endpoint lets others run.
const RECVS_PER_TURN: usize = 32;

thread_local! {
    static DGRAM_BUF: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

struct UdpIo {
    reg: Registration,
    sock: UdpSocket,
}

pub(crate) struct DInner {
    me: Weak<DInner>,
    core: Rc<Core>,
    io: RefCell<Option<UdpIo>>,
    remote: Option<SocketAddr>,
    protocol: RefCell<Option<Rc<RefCell<dyn DatagramProtocol>>>>,
    made: Cell<bool>,
    closing: Cell<bool>,
    closed: Cell<bool>,
    aborted: Cell<bool>,
    queue: RefCell<VecDeque<(Vec<u8>, Option<SocketAddr>)>>,
    queued_bytes: Cell<usize>,
    errors: RefCell<Vec<io::Error>>,
    high: Cell<usize>,
    low: Cell<usize>,
    paused: Cell<bool>,
    scheduled: Cell<bool>,
    in_drive: Cell<bool>,
}

/// A UDP endpoint (asyncio's `DatagramTransport`), from
/// [`EventLoop::create_datagram_endpoint`]. A cheap handle; see
/// [`DatagramProtocol`](crate::protocols::DatagramProtocol) for an example.
#[derive(Clone)]
pub struct DatagramTransport {
    inner: Rc<DInner>,
}

impl fmt::Debug for DatagramTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramTransport")
            .field("sockname", &self.sockname())
            .field("remote", &self.inner.remote)
            .field("closing", &self.inner.closing.get())
            .field("queued", &self.get_write_buffer_size())
            .finish()
    }
}

impl DatagramTransport {
    /// Sends one datagram to `addr`, or to the connected peer when `addr` is `None` (asyncio's
    /// `sendto`). Sent at once when nothing is queued; queued otherwise (with flow control as
    /// for streams). Errors are reported to `error_received` at the next turn, never raised.
    ///
    /// Panics if the endpoint is connected and `addr` names another address, or if it is
    /// not connected and `addr` is `None`.
    pub fn sendto(&self, data: &[u8], addr: Option<SocketAddr>) {
        self.inner.sendto(data, addr);
    }

    /// Closes the endpoint: queued datagrams are still sent, then `connection_lost(None)`.
    pub fn close(&self) {
        let i = &self.inner;
        if i.closing.replace(true) {
            return;
        }
        i.schedule();
    }

    /// Closes at once, dropping queued datagrams.
    pub fn abort(&self) {
        let i = &self.inner;
        i.closing.set(true);
        i.aborted.set(true);
        i.queue.borrow_mut().clear();
        i.queued_bytes.set(0);
        i.schedule();
    }

    /// Whether the endpoint is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.inner.closing.get()
    }

    /// Bytes queued for sending.
    pub fn get_write_buffer_size(&self) -> usize {
        self.inner.queued_bytes.get()
    }

    /// Sets the flow-control marks, as [`Transport::set_write_buffer_limits`](crate::transports::Transport::set_write_buffer_limits).
    pub fn set_write_buffer_limits(&self, high: Option<usize>, low: Option<usize>) {
        let high = high.unwrap_or_else(|| low.map_or(DEFAULT_HIGH_WATER, |l| 4 * l));
        let low = low.unwrap_or(high / 4);
        assert!(high >= low, "set_write_buffer_limits: high must be >= low");
        self.inner.high.set(high);
        self.inner.low.set(low);
    }

    /// `"sockname"`, `"peername"` (connected endpoints), `"socket"`.
    pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        let io = self.inner.io.borrow();
        let io = io.as_ref()?;
        match name {
            "sockname" => io
                .sock
                .local_addr()
                .ok()
                .map(|a| ExtraInfo::Address(Address::Inet(a))),
            "peername" => self
                .inner
                .remote
                .map(|a| ExtraInfo::Address(Address::Inet(a))),
            "socket" => Some(ExtraInfo::Fd(io.sock.as_raw_fd())),
            _ => None,
        }
    }

    /// This end's address.
    pub fn sockname(&self) -> Option<Address> {
        match self.get_extra_info("sockname")? {
            ExtraInfo::Address(a) => Some(a),
            ExtraInfo::Fd(_) => None,
        }
    }

    /// The fd, while open.
    pub fn fd(&self) -> Option<RawFd> {
        self.inner.io.borrow().as_ref().map(|i| i.sock.as_raw_fd())
    }
}

impl HandleDyn for DInner {
    fn run(&self) {
        self.scheduled.set(false);
        self.drive();
    }
    /// The loop is closing: close the socket, drop the protocol without calling it.
    fn cancel(&self) {
        self.closed.set(true);
        let io = self.io.borrow_mut().take();
        drop(io);
        let p = self.protocol.borrow_mut().take();
        drop(p);
        self.queue.borrow_mut().clear();
    }
    fn cancelled(&self) -> bool {
        self.closed.get()
    }
}

impl DInner {
    fn rc(&self) -> Rc<DInner> {
        self.me
            .upgrade()
            .expect("a transport runs only while referenced")
    }

    fn schedule(&self) {
        if !self.in_drive.get() && !self.scheduled.replace(true) {
            self.core.call_soon_dyn(self.rc());
        }
    }

    fn proto(&self) -> Option<Rc<RefCell<dyn DatagramProtocol>>> {
        self.protocol.borrow().clone()
    }

    fn call(&self, what: &str, f: impl FnOnce(&mut dyn DatagramProtocol)) {
        let Some(p) = self.proto() else { return };
        let r = catch_unwind(AssertUnwindSafe(|| f(&mut *p.borrow_mut())));
        if let Err(panic) = r {
            self.core.report(ExceptionContext::panic(
                &format!("Exception in protocol.{what}()"),
                None,
                panic.as_ref(),
            ));
        }
    }

    fn sendto(&self, data: &[u8], addr: Option<SocketAddr>) {
        match (self.remote, addr) {
            (Some(r), Some(a)) => assert_eq!(r, a, "sendto: Invalid address: must be None or {r}"),
            (None, None) => panic!("sendto: an address is needed (the endpoint is not connected)"),
            _ => {}
        }
        if self.closing.get() {
            return;
        }
        if self.queue.borrow().is_empty() {
            let r = {
                let io = self.io.borrow();
                let Some(io) = io.as_ref() else { return };
                io.reg.try_io(Direction::Write, || match addr {
                    Some(a) if self.remote.is_none() => io.sock.send_to(data, a),
                    _ => io.sock.send(data),
                })
            };
            match r {
                Some(Ok(_)) => return,
                None => {}
                Some(Err(e)) => {
                    // asyncio calls error_received from inside sendto; corio defers it to
                    // a loop callback (protocol callbacks never run inside user calls).
                    self.errors.borrow_mut().push(e);
                    self.schedule();
                    return;
                }
            }
        }
        self.queue.borrow_mut().push_back((data.to_vec(), addr));
        self.queued_bytes.set(self.queued_bytes.get() + data.len());
        if let Some(io) = self.io.borrow().as_ref() {
            if !io.reg.has_callback(Direction::Write) {
                io.reg
                    .set_callback(Direction::Write, Some(self.rc() as Rc<dyn HandleDyn>));
            }
        }
        if !self.paused.get() && self.queued_bytes.get() > self.high.get() {
            self.paused.set(true);
            if let Some(p) = self.proto() {
                match p.try_borrow_mut() {
                    Ok(mut p) => p.pause_writing(),
                    Err(_) => self.paused.set(false), // retried at the next sendto
                }
            }
        }
    }

    fn drive(&self) {
        if self.closed.get() || self.in_drive.replace(true) {
            return;
        }
        if !self.made.replace(true) {
            let t = DatagramTransport { inner: self.rc() };
            self.call("connection_made", |p| p.connection_made(&t));
        }
        let errors = std::mem::take(&mut *self.errors.borrow_mut());
        for e in errors {
            self.call("error_received", |p| p.error_received(e));
        }
        if !self.closing.get() {
            self.receive();
        }
        if !self.aborted.get() {
            self.flush();
        }
        self.in_drive.set(false);
        if self.closing.get() && (self.aborted.get() || self.queue.borrow().is_empty()) {
            self.finish();
        }
    }

    fn receive(&self) {
        let mut buf = DGRAM_BUF
            .take()
            .unwrap_or_else(|| vec![0u8; READ_SIZE].into_boxed_slice());
        let mut exhausted = true;
        for _ in 0..RECVS_PER_TURN {
            if self.closing.get() {
                exhausted = false;
                break;
            }
            let r = {
                let io = self.io.borrow();
                let Some(io) = io.as_ref() else { break };
                io.reg
                    .try_io(Direction::Read, || io.sock.recv_from(&mut buf))
            };
            match r {
                None => {
                    exhausted = false;
                    break;
                }
                Some(Ok((n, addr))) => {
                    let data = &buf[..n];
                    self.call("datagram_received", |p| p.datagram_received(data, addr));
                }
                // ICMP errors and the like: reported, not fatal (B09).
                Some(Err(e)) => self.call("error_received", |p| p.error_received(e)),
            }
        }
        DGRAM_BUF.set(Some(buf));
        if exhausted {
            self.in_drive.set(false);
            self.schedule();
            self.in_drive.set(true);
        }
    }

    fn flush(&self) {
        loop {
            let r = {
                let io = self.io.borrow();
                let Some(io) = io.as_ref() else { return };
                let q = self.queue.borrow();
                let Some((data, addr)) = q.front() else { break };
                io.reg.try_io(Direction::Write, || match addr {
                    Some(a) if self.remote.is_none() => io.sock.send_to(data, *a),
                    _ => io.sock.send(data),
                })
            };
            match r {
                None => return,
                Some(r) => {
                    let (data, _) = self.queue.borrow_mut().pop_front().expect("front exists");
                    self.queued_bytes.set(self.queued_bytes.get() - data.len());
                    if let Err(e) = r {
                        // The datagram is dropped, the endpoint goes on (asyncio).
                        self.call("error_received", |p| p.error_received(e));
                    }
                }
            }
        }
        if let Some(io) = self.io.borrow().as_ref() {
            io.reg.set_callback(Direction::Write, None);
        }
        if self.paused.get() && self.queued_bytes.get() <= self.low.get() {
            self.paused.set(false);
            self.call("resume_writing", |p| p.resume_writing());
        }
    }

    fn finish(&self) {
        if self.closed.replace(true) {
            return;
        }
        let io = self.io.borrow_mut().take();
        drop(io);
        self.queue.borrow_mut().clear();
        let p = self.protocol.borrow_mut().take();
        if let Some(p) = p {
            let r = catch_unwind(AssertUnwindSafe(|| p.borrow_mut().connection_lost(None)));
            if let Err(panic) = r {
                self.core.report(ExceptionContext::panic(
                    "Exception in protocol.connection_lost()",
                    None,
                    panic.as_ref(),
                ));
            }
        }
    }
}

impl EventLoop {
    /// Opens a UDP endpoint (asyncio's `create_datagram_endpoint`): bound to `local_addr`
    /// if given (else an ephemeral port of `remote_addr`'s family), connected to
    /// `remote_addr` if given (then `sendto(data, None)` sends there and only its datagrams
    /// are received). Returns once `connection_made` has run.
    ///
    /// See [`DatagramProtocol`](crate::protocols::DatagramProtocol) for an example.
    pub async fn create_datagram_endpoint<P: DatagramProtocol>(
        &self,
        factory: impl FnOnce() -> P,
        local_addr: Option<SocketAddr>,
        remote_addr: Option<SocketAddr>,
    ) -> io::Result<(DatagramTransport, Rc<RefCell<P>>)> {
        self.create_datagram_endpoint_with(factory, local_addr, remote_addr, false, false)
            .await
    }

    /// [`create_datagram_endpoint`](EventLoop::create_datagram_endpoint) with
    /// `SO_REUSEPORT` and `SO_BROADCAST` (asyncio's `reuse_port`, `allow_broadcast`).
    pub async fn create_datagram_endpoint_with<P: DatagramProtocol>(
        &self,
        factory: impl FnOnce() -> P,
        local_addr: Option<SocketAddr>,
        remote_addr: Option<SocketAddr>,
        reuse_port: bool,
        allow_broadcast: bool,
    ) -> io::Result<(DatagramTransport, Rc<RefCell<P>>)> {
        let family = local_addr.or(remote_addr).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "create_datagram_endpoint needs local_addr or remote_addr",
            )
        })?;
        let ty = Type::DGRAM;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let ty = ty.nonblocking().cloexec();
        let sock = Socket::new(Domain::for_address(family), ty, None)?;
        sock.set_nonblocking(true)?;
        #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
        if reuse_port {
            sock.set_reuse_port(true)?;
        }
        let _ = reuse_port;
        if allow_broadcast {
            sock.set_broadcast(true)?;
        }
        if let Some(l) = local_addr {
            sock.bind(&SockAddr::from(l))?;
        }
        if let Some(r) = remote_addr {
            sock.connect(&SockAddr::from(r))?;
        }
        let sock: UdpSocket = sock.into();
        let reg = Registration::new(sock.as_raw_fd(), Event::READABLE | Event::WRITABLE)?;
        let proto = Rc::new(RefCell::new(factory()));
        let dyn_proto: Rc<RefCell<dyn DatagramProtocol>> = proto.clone();
        let inner = Rc::new_cyclic(|me| DInner {
            me: me.clone(),
            core: self.core.clone(),
            io: RefCell::new(Some(UdpIo { reg, sock })),
            remote: remote_addr,
            protocol: RefCell::new(Some(dyn_proto)),
            made: Cell::new(false),
            closing: Cell::new(false),
            closed: Cell::new(false),
            aborted: Cell::new(false),
            queue: RefCell::new(VecDeque::new()),
            queued_bytes: Cell::new(0),
            errors: RefCell::new(Vec::new()),
            high: Cell::new(DEFAULT_HIGH_WATER),
            low: Cell::new(DEFAULT_LOW_WATER),
            paused: Cell::new(false),
            scheduled: Cell::new(false),
            in_drive: Cell::new(false),
        });
        if let Some(io) = inner.io.borrow().as_ref() {
            io.reg
                .set_callback(Direction::Read, Some(inner.clone() as Rc<dyn HandleDyn>));
        }
        inner.schedule();
        let t = DatagramTransport { inner };
        std::future::poll_fn(|cx| {
            if t.inner.made.get() {
                std::task::Poll::Ready(())
            } else {
                // The first run is already queued; look again after it.
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await;
        Ok((t, proto))
    }
}
