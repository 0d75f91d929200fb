//! Unix signals on corio: a handler that runs as an ordinary loop callback
//! (`add_signal_handler`, asyncio's name), a stream of signals (`Signals`), and a one-shot
//! wait (`signal::wait`). None of this code runs inside a signal handler: the signal only
//! wakes the loop, which then runs it like any callback.
//!
//! Run: `cargo run --example signals -- [--wait SECS]`. The program sends itself SIGUSR1,
//! SIGHUP and SIGUSR2 (from another thread, as a shell's `kill` would), then waits for Ctrl-C
//! or SIGTERM (`wait_for` on a `Signals` stream), or gives up after `--wait` seconds
//! (default 10; `--wait 0` does not wait).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use corio::signal::{self, SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, Signals};

fn parse_wait() -> Duration {
    let mut it = std::env::args().skip(1);
    match (it.next().as_deref(), it.next()) {
        (None, _) => Duration::from_secs(10),
        (Some("--wait"), Some(v)) => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or_else(|| usage()),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: signals [--wait SECS]");
    std::process::exit(2);
}

fn name(sig: i32) -> &'static str {
    signal_hook::low_level::signal_name(sig).unwrap_or("?")
}

fn send_to_self(sig: i32) {
    // `kill` from another thread: the signal goes to the process, like one from a shell.
    std::thread::spawn(move || signal_hook::low_level::raise(sig).unwrap())
        .join()
        .unwrap();
}

fn main() {
    let wait = parse_wait();
    corio::run(async move {
        let ev = corio::get_running_loop();
        println!("pid {}", std::process::id());

        // 1. A handler: an ordinary callback on the loop thread.
        let usr1 = Rc::new(Cell::new(0));
        let n = usr1.clone();
        let loop_thread = std::thread::current().id();
        ev.add_signal_handler(SIGUSR1, move || {
            n.set(n.get() + 1);
            let here = std::thread::current().id() == loop_thread;
            println!("SIGUSR1 handler ran on the loop thread: {here}");
        })
        .unwrap();

        // 2. A stream of signals, read by a task.
        let mut stream = Signals::new([SIGHUP]).unwrap();
        let reader = corio::spawn(async move {
            loop {
                let sig = stream.recv().await;
                println!("the Signals stream received {}", name(sig));
            }
        });

        // 3. A one-shot wait: listening starts when `signal::wait` is called.
        let once = signal::wait(SIGUSR2);
        send_to_self(SIGUSR1);
        send_to_self(SIGHUP);
        send_to_self(SIGUSR2);
        once.await.unwrap();
        println!("signal::wait saw SIGUSR2");
        while usr1.get() == 0 {
            corio::sleep(Duration::from_millis(1)).await;
        }
        corio::sleep(Duration::from_millis(10)).await; // let the reader print

        // 4. Ctrl-C or SIGTERM, whichever comes first, with a time limit.
        if wait > Duration::ZERO {
            let mut stop = Signals::new([SIGINT, SIGTERM]).unwrap();
            // Listening has started: only now is it safe to ask (before, Ctrl-C would kill).
            println!(
                "press Ctrl-C (or `kill {}`) within {wait:?}",
                std::process::id()
            );
            match corio::wait_for(stop.recv(), wait).await {
                Ok(sig) => println!("got {}", name(sig)),
                Err(_) => println!("got nothing"),
            }
        }
        reader.cancel(None);
        ev.remove_signal_handler(SIGUSR1);
        println!("SIGUSR1 handled {} time(s); bye", usr1.get());
    });
}
