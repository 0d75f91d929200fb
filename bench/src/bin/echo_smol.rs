//! Peer echo server: smol `LocalExecutor` driven by `smol::block_on` (async-io reactor,
//! `polling` in oneshot mode), same source shape as corio's `examples/echo_server.rs`.
//!
//! Usage: `echo_smol [ADDR]` (default 127.0.0.1:8888). Prints `listening on ADDR`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpListener;

fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8888".into())
        .parse()
        .expect("usage: echo_smol [ADDR]");
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(async {
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
                    eprintln!("accept: {e}");
                    smol::Timer::after(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            ex.spawn(async move {
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
            })
            .detach();
        }
    }));
}
