//! A chat client for `chat_server` (the book's chapter 8 client): stdin lines go to the
//! server, lines from the server are printed, both at once on one loop.
//!
//! Run: `cargo run --example chat_client -- [ADDR] --name NAME` (default ADDR
//! `127.0.0.1:8000`), type lines; Ctrl-D leaves.
//!
//! What it shows: `open_connection`, the `CONNECT <name>` handshake, and stdin read without
//! blocking the loop through a pipe transport (`open_pipe_reader`, the book's
//! `connect_read_pipe`), raced against the socket reader: whichever ends first ends the
//! client (the book's `wait(FIRST_COMPLETED)`). When stdin is a regular file (not pollable)
//! its lines are sent as they are read, then the client waits for the server to close.

use std::future::Future;
use std::io::{BufRead, Write};
use std::os::fd::AsFd;
use std::pin::pin;
use std::task::Poll;

use corio::streams::{StreamReader, StreamWriter};

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("chat_client: {err}");
    }
    eprintln!("usage: chat_client [ADDR] --name NAME");
    std::process::exit(2);
}

/// Prints what the server sends until it closes.
async fn from_server(mut reader: StreamReader) {
    let mut out = std::io::stdout();
    while let Ok(line) = reader.readline().await {
        if line.is_empty() {
            eprintln!("chat_client: the server closed the connection");
            break;
        }
        let _ = out.write_all(&line);
        let _ = out.flush();
    }
}

/// Sends stdin's lines until EOF.
async fn from_stdin(writer: &StreamWriter) {
    let dup = std::io::stdin().as_fd().try_clone_to_owned();
    match dup.map(corio::streams::open_pipe_reader) {
        Ok(open) => match open.await {
            Ok(mut stdin) => {
                while let Ok(line) = stdin.readline().await {
                    if line.is_empty() {
                        break;
                    }
                    writer.write(&line);
                    if writer.drain().await.is_err() {
                        return;
                    }
                }
            }
            Err(_) => {
                // A regular file (or /dev/null): not pollable, but reading it never blocks.
                for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                    writer.write(format!("{line}\n").as_bytes());
                    if writer.drain().await.is_err() {
                        return;
                    }
                }
            }
        },
        Err(e) => eprintln!("chat_client: stdin: {e}"),
    }
}

/// Runs both futures until the first one finishes.
async fn first<A: Future, B: Future>(a: A, b: B) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    std::future::poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

fn main() {
    let mut addr = "127.0.0.1:8000".to_string();
    let mut name = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--name" => name = Some(it.next().unwrap_or_else(|| usage("--name needs a name"))),
            "-h" | "--help" => usage(""),
            flag if flag.starts_with("--") => usage(&format!("unknown flag {flag}")),
            a => addr = a.to_string(),
        }
    }
    let name = name.unwrap_or_else(|| usage("--name is required"));
    corio::run(async move {
        let (reader, writer) = match corio::streams::open_connection(addr.as_str()).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("chat_client: cannot connect to {addr}: {e}");
                std::process::exit(1);
            }
        };
        writer.write(format!("CONNECT {name}\n").as_bytes());
        let stdin_then_wait = async {
            from_stdin(&writer).await;
            // Stdin ended: tell the server we are done; it closes, which ends `from_server`.
            writer.write_eof();
            std::future::pending::<()>().await
        };
        first(from_server(reader), stdin_then_wait).await;
        writer.close();
        let _ = writer.wait_closed().await;
    });
}
