//! [`ToSocketAddrs`]: what `TcpStream::connect` accepts, resolved without blocking the loop.
//!
//! asyncio counterpart: the `host, port` arguments of `open_connection` /
//! `create_connection`, which go through `loop.getaddrinfo` (the executor) unless the host is
//! a literal address. Layer 4: uses [`crate::dns`]; used by [`super::TcpStream::connect`].
//!
//! std's `ToSocketAddrs` resolves host names with a blocking call on the caller's thread,
//! which would stall every task on the loop. This trait accepts the same argument types,
//! answers literal addresses at once (no thread hop), and sends host names to
//! [`getaddrinfo`](crate::getaddrinfo) on the executor.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

pub(crate) mod sealed {
    use std::net::SocketAddr;

    /// How an address argument resolves.
    #[derive(Debug)]
    pub enum Resolve {
        /// Literal addresses: no resolver needed.
        Ready(Vec<SocketAddr>),
        /// A host name to look up (on the executor).
        Lookup(String, u16),
    }

    /// The private half of [`super::ToSocketAddrs`] (sealed: only corio implements it).
    pub trait ToSocketAddrsPriv {
        fn resolve(&self) -> std::io::Result<Resolve>;
    }
}

use sealed::{Resolve, ToSocketAddrsPriv};

/// Addresses that corio's `connect` accepts: the argument types of std's `ToSocketAddrs`
/// (`SocketAddr`, `(IpAddr, u16)`, `"host:port"`, `("host", port)`, `String`, a slice of
/// `SocketAddr`s, and references to them), resolved without blocking the loop: literal
/// addresses at once, host names with [`getaddrinfo`](crate::getaddrinfo) on the executor.
///
/// Sealed: it cannot be implemented outside corio.
pub trait ToSocketAddrs: ToSocketAddrsPriv {}

/// Resolves `addr` to at least one socket address, on the executor if it names a host.
pub(crate) async fn resolve(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<Vec<SocketAddr>> {
    let addrs = match addr.resolve()? {
        Resolve::Ready(v) => v,
        Resolve::Lookup(host, port) => crate::dns::getaddrinfo(&host, port).await?,
    };
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no socket address to use",
        ));
    }
    Ok(addrs)
}

macro_rules! literal {
    ($($t:ty => |$a:ident| $e:expr;)*) => {$(
        impl ToSocketAddrs for $t {}
        impl ToSocketAddrsPriv for $t {
            fn resolve(&self) -> io::Result<Resolve> {
                let $a = self;
                Ok(Resolve::Ready(vec![$e]))
            }
        }
    )*};
}

literal! {
    SocketAddr => |a| *a;
    SocketAddrV4 => |a| SocketAddr::V4(*a);
    SocketAddrV6 => |a| SocketAddr::V6(*a);
    (IpAddr, u16) => |a| SocketAddr::new(a.0, a.1);
    (Ipv4Addr, u16) => |a| SocketAddr::new(IpAddr::V4(a.0), a.1);
    (Ipv6Addr, u16) => |a| SocketAddr::new(IpAddr::V6(a.0), a.1);
}

fn host_port(host: &str, port: u16) -> Resolve {
    match host.parse::<IpAddr>() {
        Ok(ip) => Resolve::Ready(vec![SocketAddr::new(ip, port)]),
        Err(_) => Resolve::Lookup(host.to_string(), port),
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl ToSocketAddrsPriv for (&str, u16) {
    fn resolve(&self) -> io::Result<Resolve> {
        Ok(host_port(self.0, self.1))
    }
}

impl ToSocketAddrs for (String, u16) {}
impl ToSocketAddrsPriv for (String, u16) {
    fn resolve(&self) -> io::Result<Resolve> {
        Ok(host_port(&self.0, self.1))
    }
}

impl ToSocketAddrs for str {}
impl ToSocketAddrsPriv for str {
    fn resolve(&self) -> io::Result<Resolve> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return Ok(Resolve::Ready(vec![a]));
        }
        let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "invalid socket address");
        let (host, port) = self.rsplit_once(':').ok_or_else(invalid)?;
        let port = port.parse::<u16>().map_err(|_| invalid())?;
        Ok(host_port(host, port))
    }
}

impl ToSocketAddrs for String {}
impl ToSocketAddrsPriv for String {
    fn resolve(&self) -> io::Result<Resolve> {
        self.as_str().resolve()
    }
}

impl ToSocketAddrs for [SocketAddr] {}
impl ToSocketAddrsPriv for [SocketAddr] {
    fn resolve(&self) -> io::Result<Resolve> {
        Ok(Resolve::Ready(self.to_vec()))
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: ToSocketAddrsPriv + ?Sized> ToSocketAddrsPriv for &T {
    fn resolve(&self) -> io::Result<Resolve> {
        (**self).resolve()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(a: &(impl ToSocketAddrs + ?Sized)) -> Vec<SocketAddr> {
        match a.resolve().unwrap() {
            Resolve::Ready(v) => v,
            Resolve::Lookup(h, p) => panic!("looked up {h}:{p}"),
        }
    }

    #[test]
    fn literals_need_no_lookup() {
        let want: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(ready("127.0.0.1:80"), [want]);
        assert_eq!(ready(&"127.0.0.1:80".to_string()), [want]);
        assert_eq!(ready(&("127.0.0.1", 80)), [want]);
        assert_eq!(ready(&(Ipv4Addr::LOCALHOST, 80)), [want]);
        assert_eq!(ready(&want), [want]);
        assert_eq!(ready(&[want][..]), [want]);
        assert_eq!(ready("[::1]:80"), ["[::1]:80".parse().unwrap()]);
        assert_eq!(ready(&("::1", 80)), ["[::1]:80".parse().unwrap()]);
    }

    #[test]
    fn names_are_looked_up() {
        assert!(matches!(
            "localhost:8080".resolve().unwrap(),
            Resolve::Lookup(h, 8080) if h == "localhost"
        ));
        assert!(matches!(
            ("example.org".to_string(), 1).resolve().unwrap(),
            Resolve::Lookup(h, 1) if h == "example.org"
        ));
        assert!("no port".resolve().is_err());
        assert!("host:99999".resolve().is_err());
    }
}
