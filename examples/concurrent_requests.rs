//! Hundreds of concurrent requests, the book's chapter 4 without the internet: a local echo
//! server, then clients run with `gather`, `as_completed`, `wait(FirstCompleted)` in a loop,
//! and `wait_for` with a timeout.
//!
//! Run: `cargo run --example concurrent_requests`
//!
//! The server (a task on the same loop, on 127.0.0.1:0) reads one line `DELAY_MS TEXT`,
//! sleeps `DELAY_MS` (a slow web server), and echoes the line back. Each part prints what
//! it shows: 300 requests of 100 ms each take about 100 ms together, not 30 s; `as_completed`
//! hands results back in completion order; `wait` is the loop for "handle whatever finished";
//! `wait_for` gives up on a slow request (the client's connection is closed by the
//! cancellation). The whole run takes about a second.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corio::net::{TcpListener, TcpStream};
use corio::{ReturnWhen, Task};

/// Reads up to and including the first `\n` (or to EOF).
async fn read_line(stream: &TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut buf = [0u8; 256];
    while !line.ends_with(b"\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        line.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// One connection: a line `DELAY_MS TEXT`, answered after `DELAY_MS`.
async fn serve(stream: TcpStream) {
    let Ok(line) = read_line(&stream).await else {
        return;
    };
    let delay = line
        .split_whitespace()
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    corio::sleep(Duration::from_millis(delay)).await;
    let _ = stream.write_all(line.as_bytes()).await;
}

/// The slow "web server": one task per connection.
async fn server(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        corio::spawn(serve(stream));
    }
}

/// The client side of one request: connect, send, read the echo.
async fn request(addr: SocketAddr, delay_ms: u64, text: String) -> std::io::Result<String> {
    let stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("{delay_ms} {text}\n").as_bytes())
        .await?;
    let reply = read_line(&stream).await?;
    Ok(reply.trim_end().to_string())
}

fn main() {
    if let Err(e) = corio::raise_open_file_limit() {
        eprintln!("cannot raise the open-file limit: {e}");
    }
    corio::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        println!("echo server on {addr}");
        corio::spawn(server(listener));

        // 1. gather: 300 requests at once; results in argument order.
        let n = 300;
        let t0 = Instant::now();
        let requests = (0..n).map(|i| request(addr, 100, format!("request {i}")));
        let replies = corio::gather(requests)
            .await
            .expect("no request task failed");
        let ok = replies.iter().filter(|r| r.is_ok()).count();
        println!(
            "gather: {ok}/{n} requests of 100 ms each answered in {:?}; the first reply: {:?}",
            t0.elapsed(),
            replies[0].as_ref().unwrap()
        );

        // 2. as_completed: printed as they finish, whatever the order they were made in;
        //    the one slower than the timeout is reported, and left running.
        let t0 = Instant::now();
        let tasks: Vec<Task<_>> = [300u64, 100, 900, 200]
            .into_iter()
            .map(|ms| corio::spawn(request(addr, ms, format!("{ms} ms"))))
            .collect();
        let mut done = corio::as_completed(tasks, Some(Duration::from_millis(500)));
        while let Some(next) = done.next().await {
            match next {
                Ok(task) => println!(
                    "as_completed: {:?} after {:?}",
                    task.await.unwrap().unwrap(),
                    t0.elapsed()
                ),
                Err(timeout) => println!(
                    "as_completed: {timeout} after {:?}; {} request still running",
                    t0.elapsed(),
                    done.len()
                ),
            }
        }
        for slow in done.into_remaining() {
            slow.cancel(Some("not needed any more"));
        }

        // 3. wait(FIRST_COMPLETED) in a loop: handle each batch of finished requests while
        //    the others keep going.
        let t0 = Instant::now();
        let mut pending: Vec<Task<_>> = (1..=5u64)
            .map(|k| corio::spawn(request(addr, 60 * k, format!("batch item {k}"))))
            .collect();
        while !pending.is_empty() {
            let (done, rest) = corio::wait(pending, ReturnWhen::FirstCompleted, None).await;
            for task in done {
                let reply = task.result().unwrap().unwrap().unwrap();
                println!(
                    "wait: {reply:?} after {:?}, {} left",
                    t0.elapsed(),
                    rest.len()
                );
            }
            pending = rest;
        }

        // 4. wait_for: a request that takes too long is cancelled (its socket closed) and
        //    reported as a timeout.
        let t0 = Instant::now();
        let fast = corio::wait_for(request(addr, 10, "fast".into()), Duration::from_millis(200));
        println!("wait_for: {:?}", fast.await.map(|r| r.unwrap()));
        let slow = corio::wait_for(
            request(addr, 5_000, "slow".into()),
            Duration::from_millis(200),
        );
        match slow.await {
            Ok(reply) => println!("wait_for: {reply:?}"),
            Err(e) => println!("wait_for: {e} after {:?}", t0.elapsed()),
        }
    });
}
