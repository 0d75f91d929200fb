//! Producers and consumers around a bounded queue, ended cleanly with `join` and `shutdown`.
//!
//! Run: `cargo run --example producer_consumer`
//!
//! Three producers each make 8 items, faster than the two consumers can handle them, so the
//! queue (room for 4) fills up and `put` makes the producers wait: that is back-pressure.
//! When the producers are done, `join` waits until every item put has been marked done with
//! `task_done`; then `shutdown` tells the consumers, blocked in `get`, that no more will come.

use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use corio::queues::Queue;

async fn producer(id: usize, q: Rc<Queue<(usize, u32)>>, started: Instant) {
    for n in 0..8 {
        corio::sleep(Duration::from_millis(10)).await; // making an item is quick...
        q.put((id, n))
            .await
            .expect("the queue is not shut down yet");
        println!(
            "{:>5} ms  producer {id} put item {n}  (queue: {}/{})",
            started.elapsed().as_millis(),
            q.qsize(),
            q.maxsize()
        );
    }
}

/// Returns the items it handled, to check that none was lost or handled twice.
async fn consumer(id: usize, q: Rc<Queue<(usize, u32)>>, started: Instant) -> Vec<(usize, u32)> {
    let mut handled = Vec::new();
    // `get` fails once the queue is shut down and empty: the signal to stop.
    while let Ok((from, n)) = q.get().await {
        corio::sleep(Duration::from_millis(25)).await; // ...handling it is slow
        handled.push((from, n));
        println!(
            "{:>5} ms      consumer {id} handled item {n} of producer {from}",
            started.elapsed().as_millis()
        );
        q.task_done().expect("one task_done per item got");
    }
    handled
}

fn main() {
    corio::run(async {
        let started = Instant::now();
        let q = Rc::new(Queue::new(4));
        let consumers: Vec<_> = (0..2)
            .map(|id| corio::spawn(consumer(id, q.clone(), started)))
            .collect();
        let producers: Vec<_> = (0..3)
            .map(|id| corio::spawn(producer(id, q.clone(), started)))
            .collect();

        for p in producers {
            p.await.unwrap();
        }
        println!(
            "{:>5} ms  all produced; joining",
            started.elapsed().as_millis()
        );
        q.join().await; // every item put has been handled
        println!(
            "{:>5} ms  all handled; shutting down",
            started.elapsed().as_millis()
        );
        q.shutdown(false);

        let mut seen = BTreeSet::new();
        let mut total = 0;
        for (id, c) in consumers.into_iter().enumerate() {
            let items = c.await.unwrap();
            println!("consumer {id} handled {} items", items.len());
            total += items.len();
            for item in items {
                assert!(seen.insert(item), "item {item:?} handled twice");
            }
        }
        let all: BTreeSet<_> = (0..3).flat_map(|id| (0..8).map(move |n| (id, n))).collect();
        assert_eq!(seen, all, "every item of every producer, each once");
        println!("total: {total} items, none lost, none twice");
    });
}
