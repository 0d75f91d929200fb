//! Servers and connections for protocols: `create_server`, `create_connection` and their
//! Unix-domain forms, and the [`Server`] they return.
//!
//! asyncio counterpart: `base_events.py` (`create_server`, `create_connection`, `Server`) and
//! `selector_events.py` (`_accept_connection`). Layer 4: built on [`crate::transports`];
//! used by [`crate::streams`].
//!
//! # The accept loop
//!
//! A listening socket is registered once, edge-triggered, with the server as its loop
//! callback. Each time it runs, the server accepts until `EAGAIN`, but at most `backlog`
//! connections (B02: a flood of connections cannot starve timers and other sockets; if the
//! budget runs out the server queues itself again behind them). When the process is out of
//! file descriptors (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), the server stops accepting for
//! [`ACCEPT_RETRY_DELAY`] instead of retrying at once (B01: the connection stays in the
//! kernel's backlog and the listener stays readable, so an immediate retry would spin).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::EventLoop;
use crate::base_events::io::Direction;
use crate::base_events::{Core, ExceptionContext, expect_current};
use crate::events::HandleDyn;
use crate::net::{Registration, ToSocketAddrs};
use crate::selector::Event;
use crate::transports::{
    Address, ClientSet, ConnectionOwner, IntoProtocol, Io, IoPair, Kind, ProtocolSlot, Transport,
};

/// How long a server stops accepting after running out of file descriptors (asyncio waits
/// 1 s; a shorter pause serves the backlog sooner once descriptors free up, and 10 tries a
/// second cost nothing).
pub const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Options for [`EventLoop::create_server_with`] and friends (asyncio's keyword arguments).
///
/// ```
/// let opts = corio::server::ServerOptions { backlog: 4096, ..Default::default() };
/// assert!(opts.reuse_address);
/// ```
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The listen backlog, and the most connections accepted per readiness event
    /// (default [`net::DEFAULT_BACKLOG`](crate::net::DEFAULT_BACKLOG)).
    pub backlog: i32,
    /// `SO_REUSEADDR` (default `true`, as asyncio on Unix): rebinding a port in `TIME_WAIT`.
    pub reuse_address: bool,
    /// `SO_REUSEPORT` (default `false`): several sockets, one per loop/thread, share the
    /// port and the kernel spreads connections between them.
    pub reuse_port: bool,
    /// Start accepting at once (default `true`); otherwise call
    /// [`Server::start_serving`] or [`Server::serve_forever`].
    pub start_serving: bool,
    /// The [`StreamReader`](crate::streams::StreamReader) limit for stream servers
    /// (default 64 KiB).
    pub limit: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            backlog: crate::net::DEFAULT_BACKLOG,
            reuse_address: true,
            reuse_port: false,
            start_serving: true,
            limit: crate::streams::DEFAULT_LIMIT,
        }
    }
}

struct Listener {
    reg: Registration,
    sock: Socket,
    addr: Address,
    unix_path: Option<PathBuf>,
}

type Factory = Box<dyn FnMut() -> ProtocolSlot>;

pub(crate) struct ServerInner {
    me: Weak<ServerInner>,
    core: Rc<Core>,
    listeners: RefCell<Vec<Listener>>,
    addrs: Vec<Address>,
    factory: RefCell<Factory>,
    backlog: usize,
    is_tcp: bool,
    serving: Cell<bool>,
    closed: Cell<bool>,
    accept_paused: Cell<bool>,
    scheduled: Cell<bool>,
    clients: ClientSet,
    waiters: RefCell<Vec<Waker>>,
}

/// A listening server (asyncio's `Server`), from [`EventLoop::create_server`],
/// [`EventLoop::create_unix_server`] or [`streams::start_server`](crate::streams::start_server).
///
/// A cheap handle: clones share the server. It keeps serving after every handle is dropped
/// (the loop holds it), until [`close`](Server::close) or the loop closes.
///
/// ```
/// corio::run(async {
///     let server = corio::streams::start_server(
///         |_r, w| async move { w.write(b"hello\n") },
///         "127.0.0.1:0",
///     )
///     .await
///     .unwrap();
///     let addr = server.local_addr().unwrap();
///     let (mut r, _w) = corio::streams::open_connection(addr).await.unwrap();
///     assert_eq!(r.readline().await.unwrap(), b"hello\n");
///     server.close();
///     server.wait_closed().await;
///     assert!(!server.is_serving());
/// });
/// ```
#[derive(Clone)]
pub struct Server {
    inner: Rc<ServerInner>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("sockets", &self.inner.addrs)
            .field("serving", &self.inner.serving.get())
            .field("closed", &self.inner.closed.get())
            .field("clients", &self.inner.clients.len())
            .finish()
    }
}

impl Server {
    /// Stops listening: closes the listening sockets (and removes a Unix socket's file).
    /// Open connections are left alone (asyncio's `close`); see
    /// [`close_clients`](Server::close_clients).
    pub fn close(&self) {
        self.inner.close();
    }

    /// Closes every open connection of this server gracefully (asyncio 3.13's
    /// `close_clients`).
    pub fn close_clients(&self) {
        for t in self.inner.clients.all() {
            t.close();
        }
    }

    /// Aborts every open connection of this server (asyncio 3.13's `abort_clients`).
    pub fn abort_clients(&self) {
        for t in self.inner.clients.all() {
            t.abort();
        }
    }

    /// Waits until the server is closed **and** all its connections are gone (asyncio
    /// 3.12.1+'s `wait_closed`).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: it only waits.
    pub async fn wait_closed(&self) {
        std::future::poll_fn(|cx| {
            if self.inner.closed.get() && self.inner.clients.len() == 0 {
                Poll::Ready(())
            } else {
                self.inner.add_waiter(cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// Starts accepting (if not yet) and waits until the server is closed. Cancelling it
    /// (dropping the future) closes the server, as in asyncio. Fails if the server is
    /// already closed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the server: that is its documented effect.
    pub async fn serve_forever(&self) -> io::Result<()> {
        if self.inner.closed.get() {
            return Err(io::Error::other("the server is closed"));
        }
        self.start_serving();
        struct CloseOnDrop<'a>(&'a Server, bool);
        impl Drop for CloseOnDrop<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    self.0.close();
                }
            }
        }
        let mut guard = CloseOnDrop(self, false);
        std::future::poll_fn(|cx| {
            if self.inner.closed.get() {
                Poll::Ready(())
            } else {
                self.inner.add_waiter(cx.waker());
                Poll::Pending
            }
        })
        .await;
        guard.1 = true;
        Ok(())
    }

    /// Starts accepting connections (when created with `start_serving: false`).
    pub fn start_serving(&self) {
        if self.inner.closed.get() || self.inner.serving.replace(true) {
            return;
        }
        self.inner.schedule();
    }

    /// Whether the server accepts connections.
    pub fn is_serving(&self) -> bool {
        self.inner.serving.get()
    }

    /// The addresses the listening sockets are bound to (asyncio's `server.sockets`, as
    /// their `getsockname()`); empty once closed.
    pub fn sockets(&self) -> Vec<Address> {
        if self.inner.closed.get() {
            return Vec::new();
        }
        self.inner.addrs.clone()
    }

    /// The first IP address the server listens on (port 0 becomes the chosen port).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner
            .addrs
            .iter()
            .find_map(Address::as_inet)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no IP listening socket"))
    }

    /// How many connections of this server are open.
    pub fn client_count(&self) -> usize {
        self.inner.clients.len()
    }

    /// The loop the server runs on.
    pub fn get_loop(&self) -> EventLoop {
        EventLoop {
            core: self.inner.core.clone(),
            owner: false,
        }
    }
}

fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accepts one connection: non-blocking and close-on-exec, any address family.
fn accept_any(listener: &Socket) -> io::Result<Socket> {
    let l = SockRef::from(listener);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let (s, _) = l.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let s = {
        let (s, _) = l.accept()?;
        s.set_nonblocking(true)?;
        s
    };
    Ok(s)
}

impl ServerInner {
    fn rc(&self) -> Rc<ServerInner> {
        self.me
            .upgrade()
            .expect("a server runs only while referenced")
    }

    fn schedule(&self) {
        if !self.scheduled.replace(true) {
            self.core.call_soon_dyn(self.rc());
        }
    }

    fn add_waiter(&self, w: &Waker) {
        let mut ws = self.waiters.borrow_mut();
        if !ws.iter().any(|x| x.will_wake(w)) {
            ws.push(w.clone());
        }
    }

    fn wake_waiters(&self) {
        let ws = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in ws {
            w.wake();
        }
    }

    fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        self.serving.set(false);
        let listeners = std::mem::take(&mut *self.listeners.borrow_mut());
        for l in listeners {
            let path = l.unix_path.clone();
            drop(l);
            if let Some(p) = path {
                let _ = std::fs::remove_file(p);
            }
        }
        self.wake_waiters();
    }

    /// The loop callback: accept up to `backlog` connections.
    fn accept(&self) {
        if self.closed.get() || !self.serving.get() || self.accept_paused.get() {
            return;
        }
        let mut budget = self.backlog;
        let n = self.listeners.borrow().len();
        for i in 0..n {
            loop {
                if budget == 0 {
                    // More may be waiting: let the rest of the loop run first (B02).
                    self.schedule();
                    return;
                }
                let r = {
                    let ls = self.listeners.borrow();
                    let Some(l) = ls.get(i) else { return };
                    l.reg.try_io(Direction::Read, || accept_any(&l.sock))
                };
                match r {
                    None => break,
                    Some(Ok(sock)) => {
                        budget -= 1;
                        self.new_connection(sock);
                        if self.closed.get() {
                            return;
                        }
                    }
                    Some(Err(e)) if is_out_of_resources(&e) => {
                        self.pause_accepting(&e);
                        return;
                    }
                    // ECONNABORTED and the like concern that one connection only.
                    Some(Err(_)) => {}
                }
            }
        }
    }

    fn pause_accepting(&self, e: &io::Error) {
        self.accept_paused.set(true);
        self.core.report(ExceptionContext {
            message: format!(
                "socket.accept() out of system resource: {e}; accepting again in {} ms",
                ACCEPT_RETRY_DELAY.as_millis()
            ),
            ..Default::default()
        });
        let me = self.me.clone();
        let ev = EventLoop {
            core: self.core.clone(),
            owner: false,
        };
        ev.call_later(ACCEPT_RETRY_DELAY, move || {
            if let Some(s) = me.upgrade() {
                s.accept_paused.set(false);
                s.schedule();
            }
        });
    }

    fn new_connection(&self, sock: Socket) {
        if self.is_tcp {
            let _ = sock.set_tcp_nodelay(true);
        }
        let reg = match Registration::new(sock.as_raw_fd(), Event::READABLE | Event::WRITABLE) {
            Ok(r) => r,
            Err(e) => {
                self.core.report(ExceptionContext {
                    message: format!("cannot register an accepted connection: {e}"),
                    ..Default::default()
                });
                return; // `sock` is closed here (B32)
            }
        };
        let slot = match catch_unwind(AssertUnwindSafe(|| (self.factory.borrow_mut())())) {
            Ok(s) => s,
            Err(p) => {
                self.core.report(ExceptionContext::panic(
                    "Exception in the protocol factory",
                    None,
                    p.as_ref(),
                ));
                return;
            }
        };
        let pair = IoPair {
            reg,
            io: Io::Sock(sock),
            restore_blocking: false,
        };
        let t = Transport::spawn(pair, Kind::Socket, slot);
        let id = self.clients.insert(&t);
        t.set_owner(self.rc(), id);
    }
}

/// The listeners' readiness callback. It accepts only when no run of the server is queued
/// already: a run the server scheduled for itself after spending its budget (B02) comes first
/// in the ready queue (it was queued a turn earlier) and accepts for this turn. Were the
/// readiness event to run the server too, each turn of a flood would add one more budget of
/// accepts (measured: 40 to 104 per turn with a budget of 8).
struct ListenerReady(Weak<ServerInner>);

impl HandleDyn for ListenerReady {
    fn run(&self) {
        if let Some(s) = self.0.upgrade()
            && !s.scheduled.get()
        {
            s.accept();
        }
    }
    fn cancel(&self) {
        if let Some(s) = self.0.upgrade() {
            s.cancel();
        }
    }
    fn cancelled(&self) -> bool {
        self.0.upgrade().is_none_or(|s| s.cancelled())
    }
}

impl HandleDyn for ServerInner {
    fn run(&self) {
        self.scheduled.set(false);
        self.accept();
    }
    /// The loop is closing: stop listening (and report a server nobody closed, asyncio's
    /// "unclosed server" warning).
    fn cancel(&self) {
        if !self.closed.get() {
            crate::debug::report_unclosed("Server", &format_args!("{:?}", self.addrs), None);
        }
        self.close();
    }
    fn cancelled(&self) -> bool {
        self.closed.get()
    }
}

impl ConnectionOwner for ServerInner {
    fn detach(&self, id: u64) {
        self.clients.remove(id);
        if self.closed.get() && self.clients.len() == 0 {
            self.wake_waiters();
        }
    }
}

fn new_socket(domain: Domain, ty: Type) -> io::Result<Socket> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let ty = ty.nonblocking().cloexec();
    let sock = Socket::new(domain, ty, None)?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    sock.set_nonblocking(true)?;
    Ok(sock)
}

fn make_server(
    core: &Rc<Core>,
    socks: Vec<(Socket, Option<PathBuf>)>,
    factory: Factory,
    opts: &ServerOptions,
    is_tcp: bool,
) -> io::Result<Server> {
    let mut listeners = Vec::new();
    let mut addrs = Vec::new();
    for (sock, unix_path) in socks {
        let addr = Address::from_sockaddr(&sock.local_addr()?);
        let reg = Registration::new(sock.as_raw_fd(), Event::READABLE)?;
        addrs.push(addr.clone());
        listeners.push(Listener {
            reg,
            sock,
            addr,
            unix_path,
        });
    }
    let inner = Rc::new_cyclic(|me| ServerInner {
        me: me.clone(),
        core: core.clone(),
        listeners: RefCell::new(Vec::new()),
        addrs,
        factory: RefCell::new(factory),
        backlog: opts.backlog.max(1) as usize,
        is_tcp,
        serving: Cell::new(false),
        closed: Cell::new(false),
        accept_paused: Cell::new(false),
        scheduled: Cell::new(false),
        clients: ClientSet::default(),
        waiters: RefCell::new(Vec::new()),
    });
    let ready: Rc<dyn HandleDyn> = Rc::new(ListenerReady(Rc::downgrade(&inner)));
    for l in &listeners {
        l.reg.set_callback(Direction::Read, Some(ready.clone()));
        debug_assert!(!l.addr.to_string().is_empty());
    }
    *inner.listeners.borrow_mut() = listeners;
    let server = Server { inner };
    if opts.start_serving {
        server.start_serving();
    }
    Ok(server)
}

pub(crate) fn tcp_server(
    addrs: Vec<SocketAddr>,
    factory: Factory,
    opts: &ServerOptions,
) -> io::Result<Server> {
    let core = expect_current("create_server", Rc::clone);
    let mut socks = Vec::new();
    for a in &addrs {
        let sock = new_socket(Domain::for_address(*a), Type::STREAM)?;
        if opts.reuse_address {
            sock.set_reuse_address(true)?;
        }
        #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
        if opts.reuse_port {
            sock.set_reuse_port(true)?;
        }
        if a.is_ipv6() && addrs.len() > 1 {
            // Several addresses ("::" and "0.0.0.0"): each socket serves its own family.
            sock.set_only_v6(true)?;
        }
        sock.bind(&SockAddr::from(*a))?;
        sock.listen(opts.backlog)?;
        socks.push((sock, None));
    }
    make_server(&core, socks, factory, opts, true)
}

pub(crate) fn unix_server(
    path: &Path,
    factory: Factory,
    opts: &ServerOptions,
) -> io::Result<Server> {
    use std::os::unix::fs::FileTypeExt;
    let core = expect_current("create_unix_server", Rc::clone);
    // A stale socket file from an earlier run would make bind fail (asyncio removes it too).
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_socket() {
            let _ = std::fs::remove_file(path);
        }
    }
    let sock = new_socket(Domain::UNIX, Type::STREAM)?;
    sock.bind(&SockAddr::unix(path)?)?;
    if let Err(e) = sock.listen(opts.backlog) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    make_server(
        &core,
        vec![(sock, Some(path.to_path_buf()))],
        factory,
        opts,
        false,
    )
}

/// Connects a new non-blocking socket to `addr` and registers it with the loop.
pub(crate) async fn connect(domain: Domain, addr: &SockAddr) -> io::Result<IoPair> {
    let sock = new_socket(domain, Type::STREAM)?;
    let done = match sock.connect(addr) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => false,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) => return Err(e),
    };
    let readiness = if done {
        Event::READABLE | Event::WRITABLE
    } else {
        0
    };
    let reg = Registration::new(sock.as_raw_fd(), readiness)?;
    if !done {
        // Writable means the connection finished, one way or the other: SO_ERROR says which.
        std::future::poll_fn(|cx| reg.poll_io(Direction::Write, cx, || Ok(()))).await?;
        if let Some(e) = sock.take_error()? {
            return Err(e);
        }
        sock.peer_addr()?;
    }
    if domain != Domain::UNIX {
        let _ = sock.set_tcp_nodelay(true);
    }
    Ok(IoPair {
        reg,
        io: Io::Sock(sock),
        restore_blocking: false,
    })
}

/// Wraps a connected pair in a transport and waits for `connection_made`; aborts the
/// transport if dropped before that.
pub(crate) async fn start_transport<P, M>(
    pair: IoPair,
    kind: Kind,
    factory: impl FnOnce() -> P,
) -> io::Result<(Transport, Rc<RefCell<P>>)>
where
    P: IntoProtocol<M>,
{
    let proto = Rc::new(RefCell::new(factory()));
    let t = start_transport_slot(pair, kind, P::into_slot(proto.clone())).await;
    Ok((t, proto))
}

/// [`start_transport`] for a protocol already made and type-erased.
pub(crate) async fn start_transport_slot(
    pair: IoPair,
    kind: Kind,
    slot: ProtocolSlot,
) -> Transport {
    let t = Transport::spawn(pair, kind, slot);
    struct AbortOnDrop(Option<Transport>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            if let Some(t) = self.0.take() {
                t.abort();
            }
        }
    }
    let mut guard = AbortOnDrop(Some(t.clone()));
    t.wait_made().await;
    guard.0 = None;
    t
}

fn boxed_factory<P, M>(mut factory: impl FnMut() -> P + 'static) -> Factory
where
    P: IntoProtocol<M>,
{
    Box::new(move || P::into_slot(Rc::new(RefCell::new(factory()))))
}

impl EventLoop {
    /// Listens on `addr` (every address it resolves to) and makes a transport and a
    /// protocol from `factory` for each connection (asyncio's `create_server`). The
    /// protocol may be a [`Protocol`](crate::protocols::Protocol) or a
    /// [`BufferedProtocol`](crate::protocols::BufferedProtocol). Port 0 picks a free port:
    /// see [`Server::local_addr`]. A host name is resolved on the executor
    /// ([`getaddrinfo`](crate::getaddrinfo)), a literal address at once.
    ///
    /// See [`Protocol`](crate::protocols::Protocol) for an example.
    pub async fn create_server<P, M>(
        &self,
        factory: impl FnMut() -> P + 'static,
        addr: impl ToSocketAddrs,
    ) -> io::Result<Server>
    where
        P: IntoProtocol<M>,
    {
        self.create_server_with(factory, addr, &ServerOptions::default())
            .await
    }

    /// [`create_server`](EventLoop::create_server) with options (backlog, `SO_REUSEPORT`,
    /// ...).
    pub async fn create_server_with<P, M>(
        &self,
        factory: impl FnMut() -> P + 'static,
        addr: impl ToSocketAddrs,
        opts: &ServerOptions,
    ) -> io::Result<Server>
    where
        P: IntoProtocol<M>,
    {
        let addrs = crate::net::addr::resolve(&addr).await?;
        tcp_server(addrs, boxed_factory(factory), opts)
    }

    /// Connects to `addr` (trying each address it resolves to in turn), makes the protocol
    /// with `factory`, and returns once `connection_made` has run (asyncio's
    /// `create_connection`).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the socket (or aborts the transport if it was made).
    pub async fn create_connection<P, M>(
        &self,
        factory: impl FnOnce() -> P,
        addr: impl ToSocketAddrs,
    ) -> io::Result<(Transport, Rc<RefCell<P>>)>
    where
        P: IntoProtocol<M>,
    {
        let mut last = None;
        for a in crate::net::addr::resolve(&addr).await? {
            match connect(Domain::for_address(a), &SockAddr::from(a)).await {
                Ok(pair) => return start_transport(pair, Kind::Socket, factory).await,
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Listens on the Unix-domain socket `path` (asyncio's `create_unix_server`). A stale
    /// socket file at `path` is replaced; the file is removed when the server closes.
    ///
    /// ```
    /// corio::run(async {
    ///     let path = std::env::temp_dir().join(format!("corio-doc-{}.sock", std::process::id()));
    ///     let server = corio::streams::start_unix_server(
    ///         |mut r, w| async move {
    ///             let line = r.readline().await.unwrap();
    ///             w.write(&line);
    ///         },
    ///         &path,
    ///     )
    ///     .await
    ///     .unwrap();
    ///     let (mut r, w) = corio::streams::open_unix_connection(&path).await.unwrap();
    ///     w.write(b"over unix\n");
    ///     assert_eq!(r.readline().await.unwrap(), b"over unix\n");
    ///     server.close();
    ///     assert!(!path.exists());
    /// });
    /// ```
    pub async fn create_unix_server<P, M>(
        &self,
        factory: impl FnMut() -> P + 'static,
        path: impl AsRef<Path>,
    ) -> io::Result<Server>
    where
        P: IntoProtocol<M>,
    {
        self.create_unix_server_with(factory, path, &ServerOptions::default())
            .await
    }

    /// [`create_unix_server`](EventLoop::create_unix_server) with options.
    pub async fn create_unix_server_with<P, M>(
        &self,
        factory: impl FnMut() -> P + 'static,
        path: impl AsRef<Path>,
        opts: &ServerOptions,
    ) -> io::Result<Server>
    where
        P: IntoProtocol<M>,
    {
        unix_server(path.as_ref(), boxed_factory(factory), opts)
    }

    /// Connects to the Unix-domain socket `path` (asyncio's `create_unix_connection`).
    pub async fn create_unix_connection<P, M>(
        &self,
        factory: impl FnOnce() -> P,
        path: impl AsRef<Path>,
    ) -> io::Result<(Transport, Rc<RefCell<P>>)>
    where
        P: IntoProtocol<M>,
    {
        let pair = connect(Domain::UNIX, &SockAddr::unix(path)?).await?;
        start_transport(pair, Kind::Socket, factory).await
    }
}
