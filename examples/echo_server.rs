//! The flagship: a TCP echo server on corio, one task per connection.
//!
//! Run: `cargo run --release --example echo_server -- [ADDR]` (default `127.0.0.1:8888`),
//! then in another terminal: `nc 127.0.0.1 8888` and type lines.
//!
//! It prints `listening on ADDR` once bound (port 0 picks a free port and prints it), raises
//! its open-file soft limit to the hard limit, and serves each client in its own task,
//! echoing every byte in order until the client closes its side. A reset or half-closed
//! client ends only its own task. When the process is out of file descriptors, accepting
//! pauses for 100 ms instead of spinning (the connection waits in the backlog).
//!
//! Flags may come before or after ADDR:
//!   `--buffer BYTES`   per-connection read buffer (default 16384)

use std::net::Shutdown;
use std::time::Duration;

use corio::net::{TcpListener, TcpStream};

struct Args {
    addr: String,
    buffer: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        addr: "127.0.0.1:8888".into(),
        buffer: 16 * 1024,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--buffer" => {
                args.buffer = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage("--buffer needs a positive number"));
            }
            "-h" | "--help" => usage(""),
            flag if flag.starts_with("--") => usage(&format!("unknown flag {flag}")),
            addr => args.addr = addr.to_string(),
        }
    }
    args
}

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("echo_server: {err}");
    }
    eprintln!("usage: echo_server [ADDR] [--buffer BYTES]");
    std::process::exit(2);
}

/// Echoes until EOF or an error; every byte read is written back before the next read.
async fn echo(stream: TcpStream, buffer: usize) {
    let mut buf = vec![0u8; buffer];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break, // EOF, reset: this client is done
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // The peer half-closed (or left): finish our side too; the fd closes when `stream` drops.
    let _ = stream.shutdown(Shutdown::Write);
}

fn is_out_of_fds(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24)) // ENFILE, EMFILE
}

fn main() {
    let args = parse_args();
    if let Err(e) = corio::raise_open_file_limit() {
        eprintln!("echo_server: cannot raise the open-file limit: {e}");
    }
    corio::run(async move {
        let listener = match TcpListener::bind(args.addr.as_str()) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("echo_server: cannot listen on {}: {e}", args.addr);
                std::process::exit(1);
            }
        };
        println!("listening on {}", listener.local_addr().unwrap());
        use std::io::Write;
        std::io::stdout().flush().ok();
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => {
                    corio::spawn(echo(stream, args.buffer));
                }
                Err(e) if is_out_of_fds(&e) => {
                    eprintln!("echo_server: accept: {e}; pausing 100 ms");
                    corio::sleep(Duration::from_millis(100)).await;
                }
                // ECONNABORTED and friends concern one connection only.
                Err(_) => {}
            }
        }
    });
}
