//! Debug mode at work (asyncio's `PYTHONASYNCIODEBUG=1`, book 2.9): three classic bugs and
//! the report each one produces.
//!
//! ```text
//! cargo run --example debug_mode
//! ```
//!
//! 1. `blocker` calls `std::thread::sleep` inside a task: the whole loop stands still for
//!    150 ms. Debug mode times every task step and reports the slow one with the task's name,
//!    where it was spawned and how long it held the loop.
//! 2. `doomed` panics and nobody awaits it: "Task exception was never retrieved".
//! 3. `forever` is still waiting when the loop is closed: "Task was destroyed but it is
//!    pending!".
//!
//! No logger is installed, so the reports go to stderr, prefixed `corio: `. With a logger
//! (`env_logger`, ...) they go through the `log` facade instead; with
//! `EventLoop::set_exception_handler` they go wherever you like. Before closing, the example
//! prints `EventLoop::dump()`: what the loop holds at that moment.

use std::time::Duration;

use corio::EventLoop;

fn main() {
    // Also `CORIO_DEBUG=1` in the environment, `corio::run_with(builder.debug(true), ..)`
    // or `ev.set_debug(true)`.
    let ev = EventLoop::builder()
        .debug(true)
        .build()
        .expect("cannot create an event loop");

    ev.run_until_complete(async {
        let lp = corio::get_running_loop();

        // Bug 1: a blocking call inside a task.
        let blocker = lp.create_task_named("blocker", async {
            std::thread::sleep(Duration::from_millis(150));
        });

        // Bug 2: a task that panics, whose handle was dropped (nobody will see the panic).
        drop(lp.create_task_named("doomed", async {
            corio::sleep(Duration::from_millis(10)).await;
            panic!("boom: nobody awaits this task");
        }));

        // Bug 3: a task still pending when the loop closes (nobody cancelled it).
        let _forever = lp.create_task_named("forever", corio::sleep(Duration::from_secs(3600)));

        blocker.await.expect("blocker does not panic");
        corio::sleep(Duration::from_millis(50)).await; // `doomed` panics meanwhile
        println!("{}", lp.dump());
    });

    println!("closing the loop while `forever` is still pending");
    ev.close();
}
