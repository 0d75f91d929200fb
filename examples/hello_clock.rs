//! Two periodic tasks on one loop: one prints every second, the other every minute.
//!
//! Run: `cargo run --example hello_clock` (Ctrl-C to stop), or faster:
//! `cargo run --example hello_clock -- --speed 60` (one "minute" per real second).
//!
//! Flags:
//!   `--speed N`   time runs N times faster (default 1)
//!   `--ticks K`   stop after K one-second ticks (default: run forever)
//!
//! Each task sleeps until an absolute deadline (`sleep_until(start + k * period)`), not for a
//! fixed duration after its last print, so the ticks do not drift however long a print takes.

use std::time::{Duration, Instant};

fn usage(err: &str) -> ! {
    eprintln!("hello_clock: {err}");
    eprintln!("usage: hello_clock [--speed N] [--ticks K]");
    std::process::exit(2);
}

fn parse_args() -> (u32, Option<u64>) {
    let (mut speed, mut ticks) = (1, None);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |flag: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| usage(&format!("{flag} needs a positive number")))
        };
        match arg.as_str() {
            "--speed" => speed = u32::try_from(number("--speed")).unwrap_or(u32::MAX),
            "--ticks" => ticks = Some(number("--ticks")),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    (speed, ticks)
}

/// Clock time as the program sees it: elapsed real time multiplied by the speed.
fn stamp(start: Instant, speed: u32) -> String {
    let s = (start.elapsed() * speed).as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Prints `what` every `period` (of sped-up time), `count` times or forever.
async fn every(period: Duration, what: &str, start: Instant, speed: u32, count: Option<u64>) {
    let mut k = 0;
    while count.is_none_or(|c| k < c) {
        k += 1;
        let k32 = u32::try_from(k).unwrap_or(u32::MAX);
        corio::sleep_until(start + period * k32 / speed).await;
        println!("[{}] {what} {k}", stamp(start, speed));
    }
}

fn main() {
    let (speed, ticks) = parse_args();
    corio::run(async move {
        let start = corio::get_running_loop().time();
        let minutes = corio::spawn(every(Duration::from_secs(60), "minute", start, speed, None));
        every(Duration::from_secs(1), "tick", start, speed, ticks).await;
        // Only reached with --ticks: stop the minute task (corio::run would cancel it too).
        minutes.cancel(None);
    });
}
