//! Limiting concurrency with a Semaphore: 20 jobs, at most 3 running at any moment.
//!
//! Run: `cargo run --example rate_limit` (or `-- N` for another limit)
//!
//! Each job takes a permit before its "request" (a sleep of 20-60 ms) and gives it back when
//! its permit is dropped. A counter of jobs in flight records the highest value it reached;
//! the program prints it and checks that it never went above the limit. Jobs start in the
//! order they asked, because waiters are served first come, first served.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use corio::sync::Semaphore;

fn main() {
    let limit: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("usage: rate_limit [LIMIT]"))
        .unwrap_or(3);
    corio::run(async move {
        let t0 = Instant::now();
        let sem = Rc::new(Semaphore::new(limit));
        let in_flight = Rc::new(Cell::new(0usize));
        let max_seen = Rc::new(Cell::new(0usize));
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));

        let jobs: Vec<_> = (0..20u64)
            .map(|job| {
                let (sem, in_flight, max_seen, order) = (
                    sem.clone(),
                    in_flight.clone(),
                    max_seen.clone(),
                    order.clone(),
                );
                corio::spawn(async move {
                    let _permit = sem.acquire().await; // waits while `limit` jobs run
                    order.borrow_mut().push(job);
                    in_flight.set(in_flight.get() + 1);
                    max_seen.set(max_seen.get().max(in_flight.get()));
                    println!(
                        "{:>4} ms  job {job:>2} starts   ({} in flight)",
                        t0.elapsed().as_millis(),
                        in_flight.get()
                    );
                    corio::sleep(Duration::from_millis(20 + (job * 37) % 41)).await;
                    in_flight.set(in_flight.get() - 1);
                    println!("{:>4} ms  job {job:>2} done", t0.elapsed().as_millis());
                })
            })
            .collect();
        for j in jobs {
            j.await.unwrap();
        }

        println!("max in flight: {} (limit {limit})", max_seen.get());
        assert!(
            max_seen.get() <= limit,
            "the semaphore let too many through"
        );
        assert_eq!(*order.borrow(), (0..20).collect::<Vec<_>>(), "FIFO order");
        assert_eq!(sem.available_permits(), limit, "every permit came back");
    });
}
