//! The hot path allocates nothing per event (issue 2: "no allocation per event in steady
//! state"; issue 8 measures its speed). An echo round trip between a client and a server on
//! one loop, after a warm-up, must make no heap allocation on the loop's thread, whichever
//! way the server is written: a task on a `TcpStream`, a `Protocol` on a transport, or a
//! task on streams.
//!
//! Every server here runs on the same thread as its client, so the per-thread counter of
//! `sync_support` sees all of it: selector, loop, wakers, tasks, transports.

#[path = "sync_support/mod.rs"]
#[allow(unsafe_code, dead_code)] // the counting allocator; this file uses only `allocations`
mod sync_support;

use corio::net::{TcpListener, TcpStream};
use corio::protocols::{BaseProtocol, Protocol};
use corio::transports::Transport;
use sync_support::allocations;

const WARMUP: usize = 200;
const MEASURED: usize = 2_000;
const SIZE: usize = 1024;

/// Runs `WARMUP` then `MEASURED` round trips of `SIZE` bytes from a `TcpStream` client and
/// returns the allocations the measured ones made.
async fn client_round_trips(c: TcpStream) -> u64 {
    let msg = vec![7u8; SIZE];
    let mut back = vec![0u8; SIZE];
    let mut before = 0;
    for i in 0..WARMUP + MEASURED {
        if i == WARMUP {
            before = allocations();
        }
        c.write_all(&msg).await.unwrap();
        let mut got = 0;
        while got < SIZE {
            let n = c.read(&mut back[got..]).await.unwrap();
            assert!(n > 0, "the server closed early");
            got += n;
        }
    }
    allocations() - before
}

#[test]
fn a_tcp_stream_echo_round_trip_allocates_nothing() {
    let allocs = corio::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = corio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
        });
        let c = TcpStream::connect(addr).await.unwrap();
        let allocs = client_round_trips(c).await;
        server.await.unwrap();
        allocs
    });
    assert_eq!(
        allocs, 0,
        "allocations in {MEASURED} round trips (TcpStream task)"
    );
}

/// The echo server's protocol: keeps its transport from `connection_made` and writes back
/// what arrives.
#[derive(Default)]
struct EchoOn(Option<Transport>);
impl BaseProtocol for EchoOn {}
impl Protocol for EchoOn {
    fn connection_made(&mut self, t: &Transport) {
        self.0 = Some(t.clone());
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            t.write(data);
        }
    }
}

#[test]
fn a_protocol_echo_round_trip_allocates_nothing() {
    let allocs = corio::run(async {
        let ev = corio::get_running_loop();
        let server = ev
            .create_server(EchoOn::default, "127.0.0.1:0")
            .await
            .unwrap();
        let c = TcpStream::connect(server.local_addr().unwrap())
            .await
            .unwrap();
        let allocs = client_round_trips(c).await;
        server.close();
        allocs
    });
    assert_eq!(
        allocs, 0,
        "allocations in {MEASURED} round trips (protocol)"
    );
}

#[test]
fn a_streams_echo_round_trip_allocates_nothing() {
    let allocs = corio::run(async move {
        let server = corio::streams::start_server(
            |mut r, w| async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = r.read_into(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    w.write(&buf[..n]);
                    w.drain().await.unwrap();
                }
                w.close();
            },
            "127.0.0.1:0",
        )
        .await
        .unwrap();
        let c = TcpStream::connect(server.local_addr().unwrap())
            .await
            .unwrap();
        client_round_trips(c).await
    });
    assert_eq!(allocs, 0, "allocations in {MEASURED} round trips (streams)");
}
