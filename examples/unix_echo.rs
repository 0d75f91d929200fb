//! An echo server and client over a Unix-domain socket, with streams
//! (`start_unix_server`, `open_unix_connection`).
//!
//! Run: `cargo run --example unix_echo -- [PATH]` (default `/tmp/corio-echo.sock`): it
//! prints `listening on PATH` and echoes each connection's bytes back until EOF. Try
//! `nc -U /tmp/corio-echo.sock`. With `--client MESSAGE`, it connects to PATH instead,
//! sends MESSAGE and a newline, prints the echoed line and exits.
//!
//! A stale socket file left by an earlier run is replaced, and the file is removed when the
//! server closes (on Ctrl-C the process just exits: run it again and the file is replaced).

use std::io::Write;

async fn echo(mut r: corio::streams::StreamReader, w: corio::streams::StreamWriter) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = r.read_into(&mut buf).await {
        if n == 0 {
            break;
        }
        w.write(&buf[..n]);
        if w.drain().await.is_err() {
            return;
        }
    }
    w.close();
}

fn main() {
    let mut path = "/tmp/corio-echo.sock".to_string();
    let mut message = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--client" => message = it.next().or(Some(String::new())),
            "-h" | "--help" => {
                eprintln!("usage: unix_echo [PATH] [--client MESSAGE]");
                std::process::exit(2);
            }
            p => path = p.to_string(),
        }
    }
    corio::run(async move {
        if let Some(msg) = message {
            let (mut r, w) = corio::streams::open_unix_connection(&path)
                .await
                .unwrap_or_else(|e| {
                    eprintln!("unix_echo: cannot connect to {path}: {e}");
                    std::process::exit(1);
                });
            w.write(format!("{msg}\n").as_bytes());
            let line = r.readline().await.expect("unix_echo: read failed");
            print!("{}", String::from_utf8_lossy(&line));
            w.close();
            let _ = w.wait_closed().await;
            return;
        }
        let server = corio::streams::start_unix_server(echo, &path)
            .await
            .unwrap_or_else(|e| {
                eprintln!("unix_echo: cannot listen on {path}: {e}");
                std::process::exit(1);
            });
        println!("listening on {path}");
        std::io::stdout().flush().ok();
        let _ = server.serve_forever().await;
    });
}
