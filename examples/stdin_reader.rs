//! Non-blocking stdin (the book's listing 8.4): lines typed on stdin are read by a pipe
//! transport while a timer ticks alongside, on one thread, one loop.
//!
//! Run: `cargo run --example stdin_reader` and type lines (Ctrl-D ends), or
//! `printf 'a\nb\n' | cargo run --example stdin_reader -- --tick-ms 50`.
//!
//! Each line is printed back as `read: <line>`, and every `--tick-ms` milliseconds (default
//! 1000) the timer prints `tick N`: the ticks keep coming while the program waits for input,
//! which a blocking `read` would prevent. At EOF it prints `eof after N lines`.
//!
//! stdin is duplicated (`try_clone_to_owned`) and handed to `streams::open_pipe_reader`,
//! which makes it non-blocking for the transport's lifetime and restores blocking mode when
//! done (the setting is shared with every process on the same terminal). When stdin is not
//! pollable (a regular file, `/dev/null`), the example says so and reads it directly.

use std::io::{BufRead, Write};
use std::os::fd::AsFd;
use std::time::Duration;

fn main() {
    let mut tick = Duration::from_secs(1);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tick-ms" => {
                let ms: u64 = it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                    eprintln!("usage: stdin_reader [--tick-ms MS]");
                    std::process::exit(2)
                });
                tick = Duration::from_millis(ms.max(1));
            }
            _ => {
                eprintln!("usage: stdin_reader [--tick-ms MS]");
                std::process::exit(2);
            }
        }
    }
    corio::run(async move {
        let ticker = corio::spawn(async move {
            let mut n = 0u64;
            loop {
                corio::sleep(tick).await;
                n += 1;
                println!("tick {n}");
            }
        });
        let fd = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .expect("stdin_reader: cannot duplicate stdin");
        let mut lines = 0;
        match corio::streams::open_pipe_reader(fd).await {
            Ok(mut reader) => {
                while let Ok(line) = reader.readline().await {
                    if line.is_empty() {
                        break;
                    }
                    lines += 1;
                    print!("read: {}", String::from_utf8_lossy(&line));
                    if !line.ends_with(b"\n") {
                        println!();
                    }
                    std::io::stdout().flush().ok();
                }
            }
            Err(e) => {
                println!("stdin is not pollable ({e}); reading it directly");
                for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                    lines += 1;
                    println!("read: {line}");
                }
            }
        }
        ticker.cancel(None);
        println!("eof after {lines} lines");
    });
}
