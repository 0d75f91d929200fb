//! Child processes on corio (book chapter 13): run commands concurrently under a
//! `Semaphore` limit and capture their output, feed a child's stdin with `communicate`, drive
//! an interactive child line by line through its pipes, and give up on a slow child
//! (`wait_for`, then `terminate`).
//!
//! Run: `cargo run --example subprocess -- [--jobs N] [--limit K]` (defaults: 8 jobs, at most
//! 3 at a time). Needs `/bin/sh`, `sort` and `sleep`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use corio::subprocess::{Stdio, create_subprocess_exec, create_subprocess_shell};
use corio::sync::Semaphore;

fn parse_args() -> (usize, usize) {
    let (mut jobs, mut limit) = (8, 3);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| {
                    eprintln!("subprocess: {what} needs a positive number");
                    std::process::exit(2)
                })
        };
        match a.as_str() {
            "--jobs" => jobs = num("--jobs"),
            "--limit" => limit = num("--limit"),
            _ => {
                eprintln!("usage: subprocess [--jobs N] [--limit K]");
                std::process::exit(2);
            }
        }
    }
    (jobs, limit)
}

/// Book 13.6: many commands at once, but never more than `limit` running.
async fn run_concurrently(jobs: usize, limit: usize) -> std::io::Result<()> {
    println!("== {jobs} commands, at most {limit} at a time");
    let sem = Rc::new(Semaphore::new(limit));
    let (running, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..jobs)
        .map(|i| {
            let (sem, running, peak) = (sem.clone(), running.clone(), peak.clone());
            corio::spawn(async move {
                let _permit = sem.acquire().await;
                running.set(running.get() + 1);
                peak.set(peak.get().max(running.get()));
                let mut child = create_subprocess_exec([
                    "sh",
                    "-c",
                    "sleep 0.2; echo \"job $0 ran as pid $$\"",
                    &i.to_string(),
                ])
                .stdout(Stdio::Piped)
                .await?;
                let out = child.communicate(None).await?;
                running.set(running.get() - 1);
                Ok::<String, std::io::Error>(String::from_utf8_lossy(&out.stdout).into_owned())
            })
        })
        .collect();
    for t in tasks {
        print!("  {}", t.await.expect("job task")?);
    }
    println!(
        "  {jobs} jobs in {:.2} s, at most {} running at once",
        t0.elapsed().as_secs_f64(),
        peak.get()
    );
    Ok(())
}

/// Book 13.8: write to a child's stdin, read all it prints.
async fn feed_stdin() -> std::io::Result<()> {
    println!("== communicate: feeding `sort` through its stdin");
    let mut child = create_subprocess_exec(["sort"])
        .stdin(Stdio::Piped)
        .stdout(Stdio::Piped)
        .await?;
    let out = child
        .communicate(Some(b"pear\napple\nfig\nbanana\n"))
        .await?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("  {line}");
    }
    println!("  sort exited with {}", child.returncode().unwrap_or(-1));
    Ok(())
}

/// Book 13.9: an interactive child, one question and one answer at a time.
async fn interactive() -> std::io::Result<()> {
    println!("== an interactive child driven line by line");
    let mut child =
        create_subprocess_shell("while read line; do echo \"child heard: $line\"; done")
            .stdin(Stdio::Piped)
            .stdout(Stdio::Piped)
            .await?;
    let (stdin, stdout) = (child.stdin().unwrap(), child.stdout().unwrap());
    for question in ["hello", "how are you?", "bye"] {
        stdin.write_all(format!("{question}\n").as_bytes()).await?;
        let answer = stdout.readline().await?;
        print!("  {}", String::from_utf8_lossy(&answer));
    }
    child.take_stdin().unwrap().close(); // EOF: the loop in the child ends
    println!("  child exited with {}", child.wait().await?);
    Ok(())
}

/// Book 13.3: `wait_for(process.wait(), timeout)`, then terminate a child that takes too
/// long.
async fn give_up_on_a_slow_child() -> std::io::Result<()> {
    println!("== waiting 300 ms for `sleep 10`, then terminating it");
    let child = create_subprocess_exec(["sleep", "10"]).await?;
    // `wait` is cancel-safe: when the time is up it is dropped and nothing is lost.
    if corio::wait_for(child.wait(), Duration::from_millis(300))
        .await
        .is_err()
    {
        println!("  timed out; sending SIGTERM to pid {}", child.pid());
        child.terminate()?;
    }
    let status = child.wait().await?;
    println!(
        "  {status} (returncode {})",
        child.returncode().unwrap_or_default()
    );
    Ok(())
}

fn main() {
    let (jobs, limit) = parse_args();
    let result = corio::run(async move {
        run_concurrently(jobs, limit).await?;
        feed_stdin().await?;
        interactive().await?;
        give_up_on_a_slow_child().await
    });
    if let Err(e) = result {
        eprintln!("subprocess: {e}");
        std::process::exit(1);
    }
}
