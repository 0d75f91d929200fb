//! Micro-benchmarks, tokio current_thread + LocalSet against corio, same process shape:
//! one benchmark per process, one JSON line on stdout.
//!
//! ```text
//! micro --runtime tokio|corio --bench BENCH --n N
//! BENCH: spawn | timers | idle | xthread | call_soon | lock | queue | lock_free | queue_free
//! ```
//!
//! - spawn: spawn N trivial tasks, then await each handle; µs per task.
//! - timers: N tasks, task i sleeps until start + 100 ms · i / N (distinct deadlines within
//!   100 ms); µs per timer of the time beyond 100 ms; `early` counts tasks that woke before
//!   their deadline (observed `Instant::now() < deadline`).
//! - idle: N tasks parked on a one-hour sleep, all polled once; RSS delta / N in bytes.
//! - xthread: another thread sends N messages to the loop (tokio: unbounded mpsc received by
//!   a task on the loop; corio: `Remote::call_soon_threadsafe`, each callback bumping a
//!   loop-local counter); ns per message. The loop thread is pinned to CPU 0 and the sender
//!   to CPU 1 when the process may use both.
//! - call_soon: N `call_soon` callbacks (corio); tokio has no such API: its row is
//!   `spawn_local` of a no-op future, the nearest analogue. ns per callback and callbacks/s.
//! - lock: two tasks take turns on one lock, each holding it across a `yield_now`, N
//!   acquisitions in all (tokio::sync::Mutex; corio::sync::Lock behind feature `corio-sync`).
//! - queue: producer → consumer through a queue of capacity 1, N items (tokio mpsc::channel(1);
//!   corio::queues::Queue behind feature `corio-sync`).
//! - lock_free / queue_free: the uncontended case, one task: N acquire + release of a lock
//!   nobody else wants; N put + get on a queue of capacity 1 that is never full when put to
//!   nor empty when got from. ns per operation pair, and heap allocations per pair, counted
//!   by this binary's global allocator (issue 4: these must not allocate).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// The system allocator, counting allocations (`lock_free`, `queue_free`).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees are this allocator's; the counter is a relaxed atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, hence from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, hence from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Times `n` operation pairs run by `body` and counts the allocations they made.
async fn per_op<F: Future<Output = ()>>(n: u64, body: F) -> Out {
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let t0 = Instant::now();
    body.await;
    let dt = t0.elapsed();
    let allocs = ALLOCS.load(Ordering::Relaxed) - a0;
    let mut o = out(dt.as_secs_f64() * 1e9 / n as f64, "ns/op");
    o.extra = format!(
        ",\"allocs\":{allocs},\"allocs_per_op\":{:.6}",
        allocs as f64 / n as f64
    );
    o
}

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
    static TARGET: Cell<u64> = const { Cell::new(u64::MAX) };
    static EARLY: Cell<u64> = const { Cell::new(0) };
    static WAITER: RefCell<Option<Waker>> = const { RefCell::new(None) };
}

/// One event on the loop thread: count it and wake the waiter at the target.
#[inline]
fn bump() {
    let c = COUNT.with(|c| {
        let v = c.get() + 1;
        c.set(v);
        v
    });
    if c == TARGET.with(Cell::get)
        && let Some(w) = WAITER.with(|w| w.borrow_mut().take())
    {
        w.wake();
    }
}

fn arm(target: u64) {
    COUNT.with(|c| c.set(0));
    TARGET.with(|t| t.set(target));
}

/// Resolves once `bump` has been called `target` times (see `arm`).
fn counted() -> impl Future<Output = ()> {
    std::future::poll_fn(|cx| {
        if COUNT.with(Cell::get) >= TARGET.with(Cell::get) {
            Poll::Ready(())
        } else {
            WAITER.with(|w| *w.borrow_mut() = Some(cx.waker().clone()));
            Poll::Pending
        }
    })
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            return kb * 1024;
        }
    }
    0
}

/// Pin the calling thread to `cpu` if the process may run there (ignored otherwise).
fn pin_to(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; the libc calls only read/write the set we pass.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return;
        }
        if !libc::CPU_ISSET(cpu, &set) {
            return;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
    }
}

fn can_use_both() -> bool {
    // SAFETY: as in pin_to.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0
            && libc::CPU_ISSET(0, &set)
            && libc::CPU_ISSET(1, &set)
    }
}

fn deadline(start: Instant, i: u64, n: u64) -> Instant {
    start + Duration::from_nanos(100_000_000u64 * i / n)
}

struct Out {
    value: f64,
    unit: &'static str,
    extra: String,
}

fn out(value: f64, unit: &'static str) -> Out {
    Out {
        value,
        unit,
        extra: String::new(),
    }
}

mod tokio_side {
    use super::*;
    const RUNTIME: &str = "tokio";
    use tokio::task::{spawn_local, yield_now};

    pub fn run(bench: &str, n: u64) -> Option<Out> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let local = tokio::task::LocalSet::new();
        let bench = bench.to_string();
        local.block_on(&rt, async move {
            Some(match bench.as_str() {
                "spawn" => {
                    let t0 = Instant::now();
                    let mut hs = Vec::with_capacity(n as usize);
                    for i in 0..n {
                        hs.push(spawn_local(async move { i }));
                    }
                    let mut sum = 0u64;
                    for h in hs {
                        sum = sum.wrapping_add(h.await.expect("join"));
                    }
                    std::hint::black_box(sum);
                    out(t0.elapsed().as_secs_f64() * 1e6 / n as f64, "us/task")
                }
                "timers" => {
                    let start = Instant::now();
                    let mut hs = Vec::with_capacity(n as usize);
                    for i in 0..n {
                        let d = deadline(start, i, n);
                        hs.push(spawn_local(async move {
                            tokio::time::sleep_until(d.into()).await;
                            if Instant::now() < d {
                                EARLY.with(|e| e.set(e.get() + 1));
                            }
                        }));
                    }
                    for h in hs {
                        h.await.expect("join");
                    }
                    let total = start.elapsed();
                    let beyond = total.saturating_sub(Duration::from_millis(100));
                    let mut o = out(beyond.as_secs_f64() * 1e6 / n as f64, "us/timer");
                    o.extra = format!(
                        ",\"early\":{},\"total_ms\":{:.1}",
                        EARLY.with(Cell::get),
                        total.as_secs_f64() * 1e3
                    );
                    o
                }
                "idle" => {
                    let mut hs: Vec<Option<tokio::task::JoinHandle<()>>> =
                        (0..n).map(|_| None).collect();
                    arm(n);
                    let rss0 = rss_bytes();
                    for h in hs.iter_mut() {
                        *h = Some(spawn_local(async {
                            bump();
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }));
                    }
                    counted().await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let rss1 = rss_bytes();
                    std::hint::black_box(&hs);
                    let mut o = out(rss1.saturating_sub(rss0) as f64 / n as f64, "bytes/task");
                    o.extra = format!(",\"rss0\":{rss0},\"rss1\":{rss1}");
                    // Leave with the N tasks still parked: tearing them down is not measured.
                    emit_and_exit("idle", RUNTIME, n, &o)
                }
                "xthread" => {
                    let both = can_use_both();
                    if both {
                        pin_to(0);
                    }
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
                    let go = std::sync::Arc::new(std::sync::Barrier::new(2));
                    let go2 = go.clone();
                    let th = std::thread::spawn(move || {
                        if both {
                            pin_to(1);
                        }
                        go2.wait();
                        for i in 0..n {
                            tx.send(i).expect("send");
                        }
                    });
                    go.wait();
                    let t0 = Instant::now();
                    let mut got = 0u64;
                    while got < n {
                        rx.recv().await.expect("recv");
                        got += 1;
                    }
                    let dt = t0.elapsed();
                    th.join().expect("sender");
                    let mut o = out(dt.as_secs_f64() * 1e9 / n as f64, "ns/msg");
                    o.extra = format!(",\"two_cpus\":{both}");
                    o
                }
                "call_soon" => {
                    arm(n);
                    let t0 = Instant::now();
                    for _ in 0..n {
                        spawn_local(async { bump() });
                    }
                    counted().await;
                    let dt = t0.elapsed();
                    let mut o = out(dt.as_secs_f64() * 1e9 / n as f64, "ns/callback");
                    o.extra = format!(
                        ",\"per_s\":{:.0},\"note\":\"tokio has no call_soon: spawn_local of a no-op future, the nearest analogue\"",
                        n as f64 / dt.as_secs_f64()
                    );
                    o
                }
                "lock" => {
                    let lock = std::rc::Rc::new(tokio::sync::Mutex::new(0u64));
                    let t0 = Instant::now();
                    let mut hs = Vec::new();
                    for _ in 0..2 {
                        let lock = lock.clone();
                        hs.push(spawn_local(async move {
                            for _ in 0..n / 2 {
                                let mut g = lock.lock().await;
                                *g += 1;
                                yield_now().await;
                                drop(g);
                            }
                        }));
                    }
                    for h in hs {
                        h.await.expect("join");
                    }
                    assert_eq!(*lock.lock().await, n / 2 * 2);
                    out(t0.elapsed().as_secs_f64() * 1e9 / n as f64, "ns/acquire")
                }
                "queue" => {
                    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1);
                    let t0 = Instant::now();
                    let prod = spawn_local(async move {
                        for i in 0..n {
                            tx.send(i).await.expect("send");
                        }
                    });
                    let mut sum = 0u64;
                    for _ in 0..n {
                        sum = sum.wrapping_add(rx.recv().await.expect("recv"));
                    }
                    prod.await.expect("join");
                    std::hint::black_box(sum);
                    out(t0.elapsed().as_secs_f64() * 1e9 / n as f64, "ns/item")
                }
                "lock_free" => {
                    let lock = tokio::sync::Mutex::new(0u64);
                    let o = per_op(n, async {
                        for _ in 0..n {
                            *lock.lock().await += 1;
                        }
                    })
                    .await;
                    assert_eq!(*lock.lock().await, n);
                    o
                }
                "queue_free" => {
                    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1);
                    per_op(n, async {
                        for i in 0..n {
                            tx.send(i).await.expect("send");
                            assert_eq!(rx.recv().await, Some(i));
                        }
                    })
                    .await
                }
                _ => return None,
            })
        })
    }
}

#[cfg(feature = "corio")]
mod corio_side {
    use super::*;
    const RUNTIME: &str = "corio";

    fn ok<T, E>(r: Result<T, E>) -> T {
        match r {
            Ok(v) => v,
            Err(_) => panic!("corio task failed"),
        }
    }

    pub fn run(bench: &str, n: u64) -> Option<Out> {
        let bench = bench.to_string();
        corio::run(async move {
            Some(match bench.as_str() {
                "spawn" => {
                    let t0 = Instant::now();
                    let mut hs = Vec::with_capacity(n as usize);
                    for i in 0..n {
                        hs.push(corio::spawn(async move { i }));
                    }
                    let mut sum = 0u64;
                    for h in hs {
                        sum = sum.wrapping_add(ok(h.await));
                    }
                    std::hint::black_box(sum);
                    out(t0.elapsed().as_secs_f64() * 1e6 / n as f64, "us/task")
                }
                "timers" => {
                    let start = Instant::now();
                    let mut hs = Vec::with_capacity(n as usize);
                    for i in 0..n {
                        let d = deadline(start, i, n);
                        hs.push(corio::spawn(async move {
                            corio::sleep_until(d).await;
                            if Instant::now() < d {
                                EARLY.with(|e| e.set(e.get() + 1));
                            }
                        }));
                    }
                    for h in hs {
                        ok(h.await);
                    }
                    let total = start.elapsed();
                    let beyond = total.saturating_sub(Duration::from_millis(100));
                    let mut o = out(beyond.as_secs_f64() * 1e6 / n as f64, "us/timer");
                    o.extra = format!(
                        ",\"early\":{},\"total_ms\":{:.1}",
                        EARLY.with(Cell::get),
                        total.as_secs_f64() * 1e3
                    );
                    o
                }
                "idle" => {
                    let mut hs: Vec<Option<corio::Task<()>>> = (0..n).map(|_| None).collect();
                    arm(n);
                    let rss0 = rss_bytes();
                    for h in hs.iter_mut() {
                        *h = Some(corio::spawn(async {
                            bump();
                            corio::sleep(Duration::from_secs(3600)).await;
                        }));
                    }
                    counted().await;
                    corio::sleep(Duration::from_millis(20)).await;
                    let rss1 = rss_bytes();
                    std::hint::black_box(&hs);
                    let mut o = out(rss1.saturating_sub(rss0) as f64 / n as f64, "bytes/task");
                    o.extra = format!(",\"rss0\":{rss0},\"rss1\":{rss1}");
                    // Leave with the N tasks still parked: tearing them down is not measured.
                    emit_and_exit("idle", RUNTIME, n, &o)
                }
                "xthread" => {
                    let both = can_use_both();
                    if both {
                        pin_to(0);
                    }
                    let remote = corio::get_running_loop().remote();
                    let go = std::sync::Arc::new(std::sync::Barrier::new(2));
                    let go2 = go.clone();
                    arm(n);
                    let th = std::thread::spawn(move || {
                        if both {
                            pin_to(1);
                        }
                        go2.wait();
                        for _ in 0..n {
                            let _ = remote.call_soon_threadsafe(bump);
                        }
                    });
                    go.wait();
                    let t0 = Instant::now();
                    counted().await;
                    let dt = t0.elapsed();
                    th.join().expect("sender");
                    let mut o = out(dt.as_secs_f64() * 1e9 / n as f64, "ns/msg");
                    o.extra = format!(",\"two_cpus\":{both}");
                    o
                }
                "call_soon" => {
                    let ev = corio::get_running_loop();
                    arm(n);
                    let t0 = Instant::now();
                    for _ in 0..n {
                        let _ = ev.call_soon(bump);
                    }
                    counted().await;
                    let dt = t0.elapsed();
                    let mut o = out(dt.as_secs_f64() * 1e9 / n as f64, "ns/callback");
                    o.extra = format!(",\"per_s\":{:.0}", n as f64 / dt.as_secs_f64());
                    o
                }
                #[cfg(feature = "corio-sync")]
                "lock" => {
                    let lock = std::rc::Rc::new(corio::sync::Lock::new());
                    let count = std::rc::Rc::new(Cell::new(0u64));
                    let t0 = Instant::now();
                    let mut hs = Vec::new();
                    for _ in 0..2 {
                        let lock = lock.clone();
                        let count = count.clone();
                        hs.push(corio::spawn(async move {
                            for _ in 0..n / 2 {
                                let g = lock.acquire().await;
                                count.set(count.get() + 1);
                                corio::yield_now().await;
                                drop(g);
                            }
                        }));
                    }
                    for h in hs {
                        ok(h.await);
                    }
                    assert_eq!(count.get(), n / 2 * 2);
                    out(t0.elapsed().as_secs_f64() * 1e9 / n as f64, "ns/acquire")
                }
                #[cfg(feature = "corio-sync")]
                "queue" => {
                    let q = std::rc::Rc::new(corio::queues::Queue::new(1));
                    let q2 = q.clone();
                    let t0 = Instant::now();
                    let prod = corio::spawn(async move {
                        for i in 0..n {
                            ok(q2.put(i).await);
                        }
                    });
                    let mut sum = 0u64;
                    for _ in 0..n {
                        sum = sum.wrapping_add(ok(q.get().await));
                    }
                    ok(prod.await);
                    std::hint::black_box(sum);
                    out(t0.elapsed().as_secs_f64() * 1e9 / n as f64, "ns/item")
                }
                #[cfg(feature = "corio-sync")]
                "lock_free" => {
                    let lock = corio::sync::Lock::new();
                    let count = Cell::new(0u64);
                    let o = per_op(n, async {
                        for _ in 0..n {
                            let g = lock.acquire().await;
                            count.set(count.get() + 1);
                            drop(g);
                        }
                    })
                    .await;
                    assert_eq!(count.get(), n);
                    o
                }
                #[cfg(feature = "corio-sync")]
                "queue_free" => {
                    let q = corio::queues::Queue::new(1);
                    per_op(n, async {
                        for i in 0..n {
                            ok(q.put(i).await);
                            assert_eq!(ok(q.get().await), i);
                        }
                    })
                    .await
                }
                _ => return None,
            })
        })
    }
}

/// Print the result line and leave at once (1 M parked tasks: the teardown is not measured).
fn emit_and_exit(bench: &str, runtime: &str, n: u64, o: &Out) -> ! {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{{\"bench\":\"{bench}\",\"runtime\":\"{runtime}\",\"n\":{n},\"value\":{:.4},\"unit\":\"{}\"{}}}",
        o.value, o.unit, o.extra
    );
    let _ = stdout.flush();
    std::process::exit(0)
}

fn main() {
    let mut runtime = String::from("tokio");
    let mut bench = String::new();
    let mut n: u64 = 10_000;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--runtime" => runtime = v,
            "--bench" => bench = v,
            "--n" => n = v.replace('_', "").parse().expect("--n N"),
            _ => {
                eprintln!("usage: micro --runtime tokio|corio --bench BENCH --n N");
                std::process::exit(2);
            }
        }
    }
    let r = match runtime.as_str() {
        "tokio" => tokio_side::run(&bench, n),
        #[cfg(feature = "corio")]
        "corio" => corio_side::run(&bench, n),
        _ => None,
    };
    match r {
        Some(o) => emit_and_exit(&bench, &runtime, n, &o),
        None => {
            let why = if runtime == "corio" && !cfg!(feature = "corio") {
                "corio not built (bench built without the corio feature)"
            } else if runtime == "corio"
                && !cfg!(feature = "corio-sync")
                && bench.starts_with(['l', 'q'])
            {
                "corio::sync benchmarks not built (bench built without the corio-sync feature)"
            } else {
                "unknown runtime or bench"
            };
            println!(
                "{{\"bench\":\"{bench}\",\"runtime\":\"{runtime}\",\"n\":{n},\"error\":\"{why}\"}}"
            );
            let _ = std::io::stdout().flush();
            std::process::exit(3);
        }
    }
}
