//! Peer echo server: tokio current_thread + LocalSet, same source shape as corio's
//! `examples/echo_server.rs`: accept loop, one task per connection, a 16 KiB buffer,
//! read → write_all until EOF, TCP_NODELAY on.
//!
//! Usage: `echo_tokio [ADDR]` (default 127.0.0.1:8888). Prints `listening on ADDR`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8888".into())
        .parse()
        .expect("usage: echo_tokio [ADDR]");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = TcpListener::bind(addr).await.expect("bind");
        println!(
            "listening on {}",
            listener.local_addr().expect("local_addr")
        );
        std::io::stdout().flush().expect("flush");
        loop {
            let (mut stream, _) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning or dying.
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::task::spawn_local(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
}
