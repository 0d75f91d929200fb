//! A future written by hand and driven by hand: the book's listings 14.8 and 14.9, in Rust.
//!
//! Run: `cargo run --example handmade_future`
//!
//! `CustomFuture` is a struct implementing `std::future::Future`: a result slot, plus the
//! waker of whoever polled it last. Nothing drives it but `main`, which polls it in a loop
//! with a no-op waker (there is no event loop here), printing each poll. After the second
//! poll, `main` sets the result; the next poll returns it.
//!
//! Where the book's `__await__` generator *yields the future* to say "not yet", Rust's `poll`
//! returns `Poll::Pending`; where `StopIteration.value` carries the result, `Poll::Ready`
//! does. What a real loop adds is the waker: `set_result` wakes it, and the loop polls again
//! only then, instead of polling blindly as `main` does here.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The shared state: the result once set, and the waker to call when it is.
struct Slot {
    result: Option<String>,
    waker: Option<Waker>,
}

/// Listing 14.8: a future whose result someone sets later.
#[derive(Clone)]
struct CustomFuture {
    slot: Rc<RefCell<Slot>>,
}

impl CustomFuture {
    fn new() -> CustomFuture {
        CustomFuture {
            slot: Rc::new(RefCell::new(Slot {
                result: None,
                waker: None,
            })),
        }
    }

    /// Stores the result and wakes whoever polled us (the book calls its callback here).
    fn set_result(&self, value: &str) {
        let waker = {
            let mut slot = self.slot.borrow_mut();
            slot.result = Some(value.to_string());
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake(); // a no-op waker here; a loop would reschedule the waiting task
        }
    }
}

impl std::future::Future for CustomFuture {
    type Output = String;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<String> {
        let mut slot = self.slot.borrow_mut();
        match slot.result.take() {
            Some(value) => Poll::Ready(value),
            None => {
                // Not done: remember who to wake, and say "not yet".
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn main() {
    // Listing 14.9: drive the future by hand.
    let future = CustomFuture::new();
    let setter = future.clone();
    let mut pinned = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());

    let mut poll_number = 0;
    loop {
        poll_number += 1;
        match pinned.as_mut().poll(&mut cx) {
            Poll::Pending => {
                println!("poll {poll_number}: pending");
                if poll_number == 2 {
                    println!("set_result(\"Finished!\")");
                    setter.set_result("Finished!");
                }
            }
            Poll::Ready(value) => {
                println!("poll {poll_number}: ready, result = {value}");
                break;
            }
        }
    }
}
