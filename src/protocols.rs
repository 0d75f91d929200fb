//! Protocols: the callbacks a transport calls (asyncio's `protocols.py`).
//!
//! asyncio counterpart: `BaseProtocol`, `Protocol`, `BufferedProtocol`, `DatagramProtocol`.
//! Layer 4: implemented by user code, called by [`crate::transports`]; the streams of
//! [`crate::streams`] are one such protocol.
//!
//! # The callback grammar
//!
//! A stream transport calls its protocol in this order, and in no other:
//!
//! ```text
//! connection_made  (data_received | buffer_updated)*  eof_received?  connection_lost
//! ```
//!
//! with `pause_writing` / `resume_writing` pairs anywhere between `connection_made` and
//! `connection_lost` (never two pauses in a row, and a resume only after a pause). Every
//! callback runs from a loop callback (a turn of the loop), never from inside a call the
//! protocol itself made, with one exception that asyncio also makes: `pause_writing` is
//! called synchronously by [`Transport::write`](crate::transports::Transport::write) when the
//! write goes above the high-water mark. When that `write` is itself made from inside one of
//! this protocol's callbacks (the usual case: `data_received` writes a reply), the protocol is
//! already mutably borrowed, so `pause_writing` runs right after that callback returns,
//! before anything else happens on the transport. Check
//! [`Transport::is_writing_paused`](crate::transports::Transport::is_writing_paused) to know
//! at once.
//!
//! Protocols are shared as `Rc<RefCell<P>>`: the transport holds one reference until
//! `connection_lost` has returned, the caller of `create_connection` gets another. Do not
//! hold a `borrow_mut` of a protocol across an `.await`: the transport needs it to deliver
//! events, and finding it borrowed is reported as a panic in that loop callback.

use std::io;
use std::net::SocketAddr;

use crate::transports::{DatagramTransport, Transport};

/// What every protocol has (asyncio's `BaseProtocol`): the end of the connection and flow
/// control for writing. All methods have empty defaults.
pub trait BaseProtocol: 'static {
    /// The connection is gone: `None` after a normal close or EOF, `Some(error)` after a
    /// reset or another fatal error. Called exactly once, last.
    fn connection_lost(&mut self, exc: Option<io::Error>) {
        let _ = exc;
    }

    /// The transport's write buffer went above the high-water mark: stop producing data
    /// until [`resume_writing`](BaseProtocol::resume_writing).
    fn pause_writing(&mut self) {}

    /// The transport's write buffer drained to the low-water mark or below.
    fn resume_writing(&mut self) {}
}

/// A stream protocol (asyncio's `Protocol`): bytes arrive through
/// [`data_received`](Protocol::data_received), copied from a buffer the loop owns.
///
/// ```
/// use corio::protocols::{BaseProtocol, Protocol};
/// use corio::transports::Transport;
///
/// /// Echoes every byte back, then closes when the peer does.
/// #[derive(Default)]
/// struct Echo(Option<Transport>);
///
/// impl BaseProtocol for Echo {}
/// impl Protocol for Echo {
///     fn connection_made(&mut self, transport: &Transport) {
///         self.0 = Some(transport.clone());
///     }
///     fn data_received(&mut self, data: &[u8]) {
///         self.0.as_ref().unwrap().write(data);
///     }
/// }
///
/// corio::run(async {
///     let ev = corio::get_running_loop();
///     let server = ev.create_server(Echo::default, "127.0.0.1:0").await.unwrap();
///     let addr = server.local_addr().unwrap();
///     let (mut reader, writer) = corio::streams::open_connection(addr).await.unwrap();
///     writer.write(b"ping\n");
///     assert_eq!(reader.readline().await.unwrap(), b"ping\n");
///     server.close();
/// });
/// ```
pub trait Protocol: BaseProtocol {
    /// The connection is ready; `transport` is its handle (clone it to keep it).
    fn connection_made(&mut self, transport: &Transport) {
        let _ = transport;
    }

    /// Some bytes arrived. `data` is only valid during the call.
    fn data_received(&mut self, data: &[u8]);

    /// The peer closed its writing side. Return `true` to keep the connection open for
    /// writing (half-close); the default `false` makes the transport close itself (after
    /// flushing what was written).
    fn eof_received(&mut self) -> bool {
        false
    }
}

/// A stream protocol that receives into memory it provides (asyncio's `BufferedProtocol`):
/// the transport asks for a buffer, reads from the socket straight into it, and reports how
/// much it wrote. No copy is made on receive.
///
/// ```
/// use corio::protocols::{BaseProtocol, BufferedProtocol};
///
/// /// Counts bytes, reading them into one fixed buffer.
/// struct Counter { buf: Vec<u8>, total: usize }
///
/// impl BaseProtocol for Counter {}
/// impl BufferedProtocol for Counter {
///     fn get_buffer(&mut self, _sizehint: usize) -> &mut [u8] {
///         &mut self.buf
///     }
///     fn buffer_updated(&mut self, nbytes: usize) {
///         self.total += nbytes;
///     }
/// }
/// # let _ = Counter { buf: vec![0; 4096], total: 0 };
/// ```
pub trait BufferedProtocol: BaseProtocol {
    /// The connection is ready; `transport` is its handle.
    fn connection_made(&mut self, transport: &Transport) {
        let _ = transport;
    }

    /// A buffer to receive into. `sizehint` is how much the transport would like (its read
    /// size); any non-empty length works. An empty buffer is a fatal error.
    fn get_buffer(&mut self, sizehint: usize) -> &mut [u8];

    /// `nbytes` bytes were written at the start of the last buffer returned.
    fn buffer_updated(&mut self, nbytes: usize);

    /// The peer closed its writing side; see [`Protocol::eof_received`].
    fn eof_received(&mut self) -> bool {
        false
    }
}

/// A datagram protocol (asyncio's `DatagramProtocol`), for
/// [`EventLoop::create_datagram_endpoint`](crate::EventLoop::create_datagram_endpoint).
///
/// ```
/// use std::net::SocketAddr;
/// use corio::protocols::{BaseProtocol, DatagramProtocol};
/// use corio::transports::DatagramTransport;
///
/// /// Sends every datagram back where it came from.
/// #[derive(Default)]
/// struct UdpEcho(Option<DatagramTransport>);
///
/// impl BaseProtocol for UdpEcho {}
/// impl DatagramProtocol for UdpEcho {
///     fn connection_made(&mut self, transport: &DatagramTransport) {
///         self.0 = Some(transport.clone());
///     }
///     fn datagram_received(&mut self, data: &[u8], addr: SocketAddr) {
///         self.0.as_ref().unwrap().sendto(data, Some(addr));
///     }
/// }
///
/// corio::run(async {
///     let ev = corio::get_running_loop();
///     let local = "127.0.0.1:0".parse().unwrap();
///     let (server, _) = ev
///         .create_datagram_endpoint(UdpEcho::default, Some(local), None)
///         .await
///         .unwrap();
///     let addr = server.sockname().unwrap().as_inet().unwrap();
///     let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
///     client.send_to(b"hi", addr).unwrap();
///     let mut buf = [0; 16];
///     client.set_nonblocking(true).unwrap();
///     let n = loop {
///         match client.recv(&mut buf) {
///             Ok(n) => break n,
///             Err(_) => corio::sleep(std::time::Duration::from_millis(1)).await,
///         }
///     };
///     assert_eq!(&buf[..n], b"hi");
///     server.close();
/// });
/// ```
pub trait DatagramProtocol: BaseProtocol {
    /// The endpoint is ready; `transport` is its handle.
    fn connection_made(&mut self, transport: &DatagramTransport) {
        let _ = transport;
    }

    /// A datagram arrived from `addr`. `data` is only valid during the call.
    fn datagram_received(&mut self, data: &[u8], addr: SocketAddr);

    /// A send or receive failed without ending the endpoint: typically `ConnectionRefused`,
    /// the ICMP "port unreachable" a previous datagram provoked. The endpoint stays open.
    fn error_received(&mut self, exc: io::Error) {
        let _ = exc;
    }
}
