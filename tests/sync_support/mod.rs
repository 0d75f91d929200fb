//! Helpers shared by `tests/sync.rs` and `tests/queues.rs`: an allocation counter (to pin
//! the allocation-free fast paths) and a small deterministic PRNG (for the random schedules).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the allocations made by each thread.
pub struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's own arguments, so `System`'s
// guarantees carry over; the counter is a const-initialised thread-local `Cell` without a
// destructor, which never allocates and is never torn down.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// How many allocations (including reallocations) this thread has made so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// xorshift64*: small, fast, deterministic; good enough to shuffle schedules.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// How long a test may run before it counts as deadlocked.
const DEADLOCK: std::time::Duration = std::time::Duration::from_secs(30);

/// `corio::run` on `builder`'s loop, with a watchdog: a test that deadlocks (a lost
/// wake-up, a leaked lock) fails after [`DEADLOCK`] instead of hanging. A panic in `main`
/// is resumed here, so `#[should_panic]` tests see it.
pub fn run_on<F>(builder: corio::Builder, main: F) -> F::Output
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let ev = builder.build().expect("event loop");
    let stopper = ev.clone();
    let watchdog = ev.call_later(DEADLOCK, move || stopper.stop());
    let task = ev.create_task(main);
    let out = ev.run_until_complete(task);
    watchdog.cancel();
    match out {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("main task: {e}"),
    }
}

/// [`run_on`] a default loop.
pub fn run<F>(main: F) -> F::Output
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    run_on(corio::EventLoop::builder(), main)
}
