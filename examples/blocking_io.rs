//! Blocking calls moved to threads (book chapter 7): eight blocking one-second calls run on
//! a thread pool with `run_in_executor` / `to_thread` while a timer on the loop ticks every
//! 100 ms and prints how late each tick ran. The ticks stay on time and the eight calls take
//! about one second in all, not eight. A blocking DNS lookup goes through `getaddrinfo` the
//! same way. Last, for contrast, one blocking call made on the loop itself: that tick is a
//! whole second late.
//!
//! Run: `cargo run --example blocking_io -- [--threads N]` (pool size, default 8).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use corio::executor::ThreadPoolExecutor;

const TICK: Duration = Duration::from_millis(100);
/// How late a tick may be while the calls run on threads for the loop to count as
/// responsive: generous for a loaded machine, and still a fifth of the one-second stall a
/// blocking call on the loop causes.
const RESPONSIVE: Duration = Duration::from_millis(200);

fn parse_threads() -> usize {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => 8,
        [flag, n] if flag == "--threads" => {
            n.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| {
                eprintln!("blocking_io: --threads needs a positive number");
                std::process::exit(2)
            })
        }
        _ => {
            eprintln!("usage: blocking_io [--threads N]");
            std::process::exit(2)
        }
    }
}

/// Something that blocks its thread for a second, like a call into a blocking library.
fn blocking_call(i: usize) -> String {
    std::thread::sleep(Duration::from_secs(1));
    format!(
        "call {i} done on {}",
        std::thread::current().name().unwrap_or("?")
    )
}

/// Ticks every 100 ms until `stop`, printing each tick's lateness; returns the worst.
async fn ticker(t0: Instant, stop: Rc<Cell<bool>>) -> Duration {
    let mut worst = Duration::ZERO;
    let mut due = Instant::now() + TICK;
    while !stop.get() {
        corio::sleep_until(due).await;
        let late = Instant::now().saturating_duration_since(due);
        worst = worst.max(late);
        println!(
            "  tick at {:>5.2} s, {:>6.1} ms late",
            t0.elapsed().as_secs_f64(),
            late.as_secs_f64() * 1e3
        );
        while due <= Instant::now() {
            due += TICK; // skip the ticks missed while the loop was blocked
        }
    }
    worst
}

fn main() {
    let threads = parse_threads();
    corio::run(async move {
        let ev = corio::get_running_loop();
        ev.set_default_executor(ThreadPoolExecutor::new(threads));
        let t0 = Instant::now();
        let stop = Rc::new(Cell::new(false));
        let tick = corio::spawn(ticker(t0, stop.clone()));

        println!("8 blocking calls on a pool of {threads} threads, the loop ticking meanwhile:");
        // Queued at once: the calls run side by side on the pool's threads.
        let calls: Vec<_> = (0..8)
            .map(|i| ev.run_in_executor(None, move || blocking_call(i)))
            .collect();
        let dns = corio::getaddrinfo("localhost", 80); // the resolver blocks too: a thread
        for c in calls {
            println!("  {}", c.await.expect("the call panicked"));
        }
        let addrs = dns.await.expect("cannot resolve localhost");
        println!("  localhost resolves to {addrs:?}");
        stop.set(true);
        let worst = tick.await.unwrap();
        let verdict = if worst <= RESPONSIVE {
            "the loop stayed responsive"
        } else {
            "over the bound"
        };
        println!(
            "all done in {:.2} s; worst tick {:.1} ms late (bound {} ms): {verdict}",
            t0.elapsed().as_secs_f64(),
            worst.as_secs_f64() * 1e3,
            RESPONSIVE.as_millis()
        );
        if worst > RESPONSIVE {
            eprintln!("blocking_io: a tick ran {worst:?} late while the calls were on threads");
            std::process::exit(1);
        }

        println!("the same call made on the loop thread instead:");
        let stop = Rc::new(Cell::new(false));
        let tick = corio::spawn(ticker(Instant::now(), stop.clone()));
        corio::sleep(TICK * 2).await;
        blocking_call(8); // the whole loop stops here for a second
        corio::sleep(TICK * 2).await;
        stop.set(true);
        let worst = tick.await.unwrap();
        println!(
            "worst tick {:.0} ms late: a blocking call on the loop stalls every task",
            worst.as_secs_f64() * 1e3
        );
    });
}
