//! Name resolution off the loop thread: `getaddrinfo` and `getnameinfo` on the executor.
//!
//! asyncio counterpart: `loop.getaddrinfo` / `loop.getnameinfo` (`base_events.py`), which
//! run the blocking C calls in the default executor. Layer 4: uses [`crate::executor`]; used
//! by [`crate::net::TcpStream::connect`] for host names.
//!
//! The system resolver blocks (it may wait seconds for a DNS server), so it runs on one of
//! the default executor's threads while the loop goes on. A literal address (`"127.0.0.1"`,
//! `"::1"`) needs no resolver and is answered at once, with no thread hop.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// The socket addresses for `host` and `port` (asyncio's `loop.getaddrinfo`, reduced to the
/// addresses): the system resolver runs on the running loop's default executor. A literal IP
/// address is returned at once. Panics outside a running loop.
///
/// ```
/// corio::run(async {
///     let addrs = corio::getaddrinfo("localhost", 80).await.unwrap();
///     assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
///     let literal = corio::getaddrinfo("127.0.0.1", 8080).await.unwrap();
///     assert_eq!(literal, ["127.0.0.1:8080".parse().unwrap()]);
/// });
/// ```
pub async fn getaddrinfo(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let host = host.to_string();
    let addrs = crate::executor::to_thread(move || {
        (host.as_str(), port)
            .to_socket_addrs()
            .map(|it| it.collect::<Vec<_>>())
    })
    .await??;
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no address found for the host",
        ));
    }
    Ok(addrs)
}

/// The host and service names for `addr` (asyncio's `loop.getnameinfo`): `getnameinfo(3)`
/// runs on the running loop's default executor. `flags` are libc's `NI_*` flags (`0` for
/// names, `libc::NI_NUMERICHOST | libc::NI_NUMERICSERV` for numbers). Panics outside a
/// running loop.
///
/// ```
/// corio::run(async {
///     let addr = "127.0.0.1:22".parse().unwrap();
///     let (host, port) = corio::getnameinfo(addr, libc::NI_NUMERICHOST | libc::NI_NUMERICSERV)
///         .await
///         .unwrap();
///     assert_eq!((host.as_str(), port.as_str()), ("127.0.0.1", "22"));
/// });
/// ```
pub async fn getnameinfo(addr: SocketAddr, flags: i32) -> io::Result<(String, String)> {
    crate::executor::to_thread(move || crate::sys::process::getnameinfo(&addr, flags)).await?
}
