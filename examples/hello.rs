//! "Say after delay" tasks: the first example of asyncio's documentation, with tasks.
//!
//! Run: `cargo run --example hello`
//!
//! Two tasks start together; one says "hello" after 1 s, the other "world" after 2 s. The
//! whole program takes about 2 s, not 3, because the tasks wait concurrently.

use std::time::{Duration, Instant};

async fn say_after(delay: Duration, what: &str) {
    corio::sleep(delay).await;
    println!("{what}");
}

fn main() {
    corio::run(async {
        let started = Instant::now();
        println!("started");
        let a = corio::spawn(say_after(Duration::from_secs(1), "hello"));
        let b = corio::spawn(say_after(Duration::from_secs(2), "world"));
        a.await.unwrap();
        b.await.unwrap();
        println!("finished in {:.1} s", started.elapsed().as_secs_f64());
    });
}
