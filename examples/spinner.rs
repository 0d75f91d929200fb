//! A spinner runs while a slow function works, then is cancelled (the book's chapter 2/14
//! spinner, and the clearest picture of corio's cancellation model).
//!
//! Run: `cargo run --example spinner`
//!
//! The spinner task prints a frame every 100 ms. `slow_answer` sleeps 3 s and returns 42.
//! Then main cancels the spinner: the cancellation is delivered at the spinner's `.await`,
//! caught by `catch_cancel`, which lets it print a last line (async cleanup) before it ends.
//! Finally main prints `Answer: 42`.

use std::io::Write;
use std::time::Duration;

async fn spinner() -> &'static str {
    let spin = async {
        for frame in ['|', '/', '-', '\\'].into_iter().cycle() {
            print!("\r{frame} thinking...");
            std::io::stdout().flush().ok();
            corio::sleep(Duration::from_millis(100)).await;
        }
    };
    match corio::catch_cancel(spin).await {
        Ok(()) => unreachable!("the spinner only ends by cancellation"),
        Err(cancelled) => {
            // Async cleanup is allowed here: the task is not gone until this returns.
            corio::sleep(Duration::from_millis(10)).await;
            println!("\rspinner stopped ({cancelled})");
            "spinner cleaned up"
        }
    }
}

async fn slow_answer() -> u32 {
    corio::sleep(Duration::from_secs(3)).await;
    42
}

fn main() {
    corio::run(async {
        let spin = corio::spawn(spinner());
        let answer = slow_answer().await;
        spin.cancel(Some("the answer is ready"));
        let spinner_said = spin.await.expect("the spinner caught its cancellation");
        println!("{spinner_said}");
        println!("Answer: {answer}");
    });
}
