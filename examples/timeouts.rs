//! Timeouts and shielding: `wait_for`, `timeout` scopes (with a deadline moved from inside),
//! nested timeouts, and `shield`, each with its outcome printed.
//!
//! Run: `cargo run --example timeouts`
//!
//! What to look for: a timed-out operation is cancelled and its cleanup runs *before* the
//! `TimeoutError` is returned (the "cleaned up" line comes first, and the timeout overruns by
//! the cleanup's 50 ms, as in asyncio); a result that beats the deadline is returned; a
//! deadline can be pushed back while the work runs; and a shielded save finishes although
//! the task that started it was cancelled. About one second in all.

use std::time::{Duration, Instant};

use corio::{catch_cancel, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A download that takes `d`; when cancelled it deletes its partial file (async cleanup).
async fn download(name: &str, d: Duration) -> String {
    match catch_cancel(sleep(d)).await {
        Ok(()) => format!("{name}: downloaded"),
        Err(cancelled) => {
            println!("  {name}: {cancelled}, deleting the partial file...");
            sleep(ms(50)).await;
            println!("  {name}: cleaned up");
            cancelled.reraise().await
        }
    }
}

fn main() {
    corio::run(async {
        let t0 = Instant::now();
        let at = |label: &str| println!("[{:>4} ms] {label}", t0.elapsed().as_millis());

        // wait_for: in time, then too slow.
        let quick = corio::wait_for(download("small.bin", ms(50)), ms(200)).await;
        at(&format!("wait_for(small, 200 ms) -> {quick:?}"));
        let late = corio::wait_for(download("big.iso", ms(10_000)), ms(200)).await;
        at(&format!("wait_for(big, 200 ms) -> {late:?}"));

        // A timeout scope, with the deadline moved from inside: the work asks for more time.
        let cm = corio::timeout(ms(100));
        let out = cm
            .run(async {
                sleep(ms(50)).await;
                let later = corio::get_running_loop().time() + ms(200);
                cm.reschedule(Some(later)).unwrap();
                println!("  needs more time: deadline moved 200 ms on");
                sleep(ms(100)).await;
                "report generated"
            })
            .await;
        at(&format!(
            "timeout(100 ms) rescheduled -> {out:?}, expired: {}",
            cm.expired()
        ));

        // Nested scopes: the outer deadline passes first, the outer scope reports it.
        let outer = corio::timeout(ms(100));
        let inner = corio::timeout(ms(300));
        let out = outer
            .run(inner.run(download("nested.dat", ms(10_000))))
            .await;
        at(&format!(
            "timeout(100 ms) around timeout(300 ms) -> {out:?}; outer expired: {}, inner \
             expired: {}",
            outer.expired(),
            inner.expired()
        ));

        // shield: the caller gives up (is cancelled), the save it started goes on.
        let caller = corio::spawn(async {
            let save = corio::shield(async {
                sleep(ms(150)).await;
                println!("  save: written to disk");
                "saved"
            });
            save.await
        });
        sleep(ms(50)).await;
        caller.cancel(Some("user closed the window"));
        let outcome = caller.await;
        at(&format!(
            "shielded caller -> {:?}",
            outcome.map_err(|e| e.to_string())
        ));
        sleep(ms(150)).await;
        at("(the save above finished after its caller was cancelled)");
    });
}
