//! The supermarket of *Python Concurrency with asyncio*, listing 12.1: customers wait in one
//! queue, cashiers are worker tasks that check them out.
//!
//! Run: `cargo run --example supermarket` (add `--slow` for the book's real-time durations)
//!
//! Ten customers with random baskets are queued before the shop opens; three cashiers take
//! the next customer with `get_nowait` until the queue is empty, "scan" each product (a
//! sleep), and call `task_done`. The program waits for `join` and for the cashiers, as the
//! book's `gather(customer_queue.join(), *cashiers)` does. Durations are a tenth of the
//! book's, unless `--slow`; the baskets come from a fixed seed, so every run is the same.

use std::rc::Rc;
use std::time::{Duration, Instant};

use corio::queues::Queue;

struct Product {
    name: &'static str,
    checkout_time: Duration,
}

struct Customer {
    id: usize,
    products: Vec<&'static Product>,
}

const PRODUCTS: [Product; 4] = [
    Product {
        name: "beer",
        checkout_time: Duration::from_millis(2000),
    },
    Product {
        name: "bananas",
        checkout_time: Duration::from_millis(500),
    },
    Product {
        name: "sausage",
        checkout_time: Duration::from_millis(200),
    },
    Product {
        name: "diapers",
        checkout_time: Duration::from_millis(200),
    },
];

/// A tiny deterministic random generator (the book uses `random.randrange`).
struct Rng(u64);

impl Rng {
    fn randrange(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

async fn checkout_customer(queue: Rc<Queue<Customer>>, cashier: usize, speed: u32, t0: Instant) {
    let at = || format!("{:>6.2}s", t0.elapsed().as_secs_f64());
    while let Ok(customer) = queue.get_nowait() {
        let id = customer.id;
        println!("{} Cashier {cashier} checking out customer {id}", at());
        for product in &customer.products {
            println!(
                "{} Cashier {cashier} checking out customer {id}'s {}",
                at(),
                product.name
            );
            corio::sleep(product.checkout_time / speed).await;
        }
        println!(
            "{} Cashier {cashier} finished checking out customer {id}",
            at()
        );
        queue.task_done().unwrap();
    }
}

fn main() {
    let speed = if std::env::args().any(|a| a == "--slow") {
        1
    } else {
        10
    };
    corio::run(async move {
        let t0 = Instant::now();
        let customer_queue = Rc::new(Queue::new(0));
        let mut rng = Rng(0x5EED_1234_ABCD_0001);
        for id in 0..10 {
            let n = rng.randrange(10);
            let products = (0..n)
                .map(|_| &PRODUCTS[rng.randrange(PRODUCTS.len())])
                .collect();
            customer_queue
                .put_nowait(Customer { id, products })
                .ok()
                .unwrap();
        }
        let cashiers: Vec<_> = (0..3)
            .map(|i| corio::spawn(checkout_customer(customer_queue.clone(), i, speed, t0)))
            .collect();
        customer_queue.join().await;
        for c in cashiers {
            c.await.unwrap();
        }
        println!(
            "{:>6.2}s All customers checked out",
            t0.elapsed().as_secs_f64()
        );
    });
}
