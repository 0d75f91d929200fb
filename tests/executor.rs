//! Threads: blocking calls moved off the loop (the loop keeps its timers on time), executor
//! panics as errors, cancellation, shutdown, `run_coroutine_threadsafe`, DNS on the executor.
//!
//! The tests take one lock: some of them count the process's executor threads.

#[allow(dead_code)] // each test file uses some of the shared helpers
mod support;
use support::example;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corio::executor::{ExecutorError, ThreadPoolExecutor};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Names of this process's threads that start with `prefix`.
fn threads_named(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn a_timer_ticks_on_time_while_eight_blocking_calls_run_in_threads() {
    let _g = serial();
    const TICK: Duration = Duration::from_millis(20);
    let (worst, ticks, took, names) = corio::run(async {
        let t0 = Instant::now();
        // Eight blocking one-second calls, all handed to threads at once.
        let calls: Vec<_> = (0..8)
            .map(|_| {
                corio::to_thread(|| {
                    std::thread::sleep(Duration::from_secs(1));
                    std::thread::current().name().unwrap_or("").to_string()
                })
            })
            .collect();
        let names = Rc::new(RefCell::new(None));
        let collect = corio::spawn({
            let names = names.clone();
            async move {
                let mut all = Vec::new();
                for c in calls {
                    all.push(c.await.unwrap());
                }
                *names.borrow_mut() = Some(all);
            }
        });
        // Meanwhile the loop's timer ticks; each tick notes how late it ran.
        let (mut worst, mut ticks) = (Duration::ZERO, 0);
        let mut due = Instant::now();
        while names.borrow().is_none() {
            due += TICK;
            corio::sleep_until(due).await;
            worst = worst.max(Instant::now().saturating_duration_since(due));
            ticks += 1;
        }
        collect.await.unwrap();
        let took = t0.elapsed();
        let names = names.borrow_mut().take().unwrap();
        (worst, ticks, took, names)
    });
    assert!(
        worst < Duration::from_millis(200),
        "a tick ran {worst:?} late"
    );
    assert!(ticks >= 40, "only {ticks} ticks in {took:?}");
    // Side by side, not one after the other: rounds of `workers` calls at a time.
    let workers = ThreadPoolExecutor::default_max_workers().min(8) as u32;
    let rounds = 8_u32.div_ceil(workers);
    assert!(
        took < Duration::from_secs(u64::from(rounds)) + Duration::from_millis(900),
        "8 calls took {took:?} with {workers} workers"
    );
    assert!(
        names.iter().all(|n| n.starts_with("corio-executor-")),
        "{names:?}"
    );
}

#[test]
fn a_panic_in_a_job_is_an_error_not_a_crash() {
    let _g = serial();
    corio::run(async {
        let err = corio::to_thread(|| -> u32 { panic!("boom in a thread") })
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.panic_message(), Some("boom in a thread"));
        assert_eq!(err.to_string(), "executor job panicked: boom in a thread");
        // The pool survives.
        assert_eq!(corio::to_thread(|| 7).await.unwrap(), 7);
    });
}

#[test]
fn dropping_the_future_cancels_a_job_that_has_not_started() {
    let _g = serial();
    let pool = ThreadPoolExecutor::with_name(1, "one-worker");
    let ran = Arc::new(AtomicBool::new(false));
    corio::run({
        let pool = pool.clone();
        let ran = ran.clone();
        async move {
            let ev = corio::get_running_loop();
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let busy = ev.run_in_executor(Some(&pool), move || rx.recv().unwrap());
            let r = ran.clone();
            let queued = ev.run_in_executor(Some(&pool), move || r.store(true, Ordering::SeqCst));
            drop(queued); // cancelled while queued behind `busy`
            let explicit = ev.run_in_executor(Some(&pool), || 1);
            assert!(explicit.cancel());
            assert!(matches!(explicit.await, Err(ExecutorError::Shutdown)));
            tx.send(()).unwrap();
            busy.await.unwrap();
            // A job queued after the cancelled ones still runs.
            assert_eq!(ev.run_in_executor(Some(&pool), || 2).await.unwrap(), 2);
        }
    });
    assert!(!ran.load(Ordering::SeqCst));
    pool.shutdown(true);
    assert_eq!(pool.live_workers(), 0);
}

#[test]
fn the_default_executor_is_bounded_named_and_shut_down_with_the_loop() {
    let _g = serial();
    assert!(threads_named("corio-executor").is_empty());
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    corio::run({
        let (running, peak, finished) = (running.clone(), peak.clone(), finished.clone());
        async move {
            let jobs: Vec<_> = (0..40)
                .map(|_| {
                    let (running, peak) = (running.clone(), peak.clone());
                    corio::to_thread(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(10));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for j in jobs {
                j.await.unwrap();
            }
            let ev = corio::get_running_loop();
            assert!(
                ev.default_executor().live_workers() <= ThreadPoolExecutor::default_max_workers()
            );
            // Left running when main returns: `corio::run` waits for it before closing.
            let _detached = corio::to_thread(move || {
                std::thread::sleep(Duration::from_millis(100));
                finished.store(true, Ordering::SeqCst);
            });
            corio::sleep(Duration::from_millis(20)).await; // let a thread pick it up
        }
    });
    assert!(peak.load(Ordering::SeqCst) <= ThreadPoolExecutor::default_max_workers());
    assert!(peak.load(Ordering::SeqCst) > 1);
    assert!(
        finished.load(Ordering::SeqCst),
        "run returned before the job finished"
    );
    assert!(
        threads_named("corio-executor").is_empty(),
        "threads outlived the loop"
    );

    // EventLoop::close shuts the pool down without waiting.
    let ev = corio::EventLoop::new().unwrap();
    ev.run_until_complete(async {
        assert_eq!(corio::to_thread(|| 1).await.unwrap(), 1);
    });
    let pool = ev.default_executor();
    ev.close();
    assert!(pool.is_shutdown());
    pool.shutdown(true);
}

#[test]
fn after_shutdown_default_executor_jobs_are_refused() {
    let _g = serial();
    corio::run(async {
        let ev = corio::get_running_loop();
        assert!(
            ev.shutdown_default_executor(Some(Duration::from_secs(5)))
                .await
        );
        let err = corio::to_thread(|| 1).await.unwrap_err();
        assert!(matches!(err, ExecutorError::Shutdown));
        // Another pool can take over.
        ev.set_default_executor(ThreadPoolExecutor::new(2));
        assert_eq!(corio::to_thread(|| 3).await.unwrap(), 3);
    });
}

#[test]
fn run_coroutine_threadsafe_from_other_threads() {
    let _g = serial();
    let ev = corio::EventLoop::new().unwrap();
    let remote = ev.remote();
    let stop = Arc::new(AtomicBool::new(false));
    let caller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // A result.
            let f = corio::run_coroutine_threadsafe(
                || async {
                    let rc = Rc::new(20); // !Send is fine inside
                    corio::sleep(Duration::from_millis(5)).await;
                    *rc + 1
                },
                &remote,
            );
            assert_eq!(f.result().unwrap(), 21);

            // A timeout that leaves the handle usable, then a cancellation.
            let slow = corio::run_coroutine_threadsafe(
                || corio::sleep(Duration::from_secs(3600)),
                &remote,
            );
            assert!(slow.result_timeout(Duration::from_millis(30)).is_none());
            assert!(!slow.done());
            assert!(slow.cancel());
            assert!(slow.result().unwrap_err().is_cancelled());

            // A panic in the task comes back as an error.
            let bad = corio::run_coroutine_threadsafe(|| async { panic!("task boom") }, &remote);
            let err = bad.result().unwrap_err();
            assert_eq!(err.panic_message(), Some("task boom"));

            // Many threads at once.
            let hits: Vec<_> = (0..8)
                .map(|i| {
                    let remote = remote.clone();
                    std::thread::spawn(move || {
                        corio::run_coroutine_threadsafe(move || async move { i * 2 }, &remote)
                            .result()
                            .unwrap()
                    })
                })
                .collect();
            let sum: i32 = hits.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, 56);
            stop.store(true, Ordering::SeqCst);
            remote
        })
    };
    ev.run_until_complete(async {
        while !stop.load(Ordering::SeqCst) {
            corio::sleep(Duration::from_millis(1)).await;
        }
    });
    let remote = caller.join().unwrap();
    ev.close();
    // The loop is closed: the request is refused and reported as a cancellation.
    let late = corio::run_coroutine_threadsafe(|| async { 1 }, &remote);
    assert!(late.result().unwrap_err().is_cancelled());
}

#[test]
fn a_concurrent_future_can_be_awaited_from_another_loop() {
    let _g = serial();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        corio::run(async move {
            tx.send(corio::get_running_loop().remote()).unwrap();
            corio::sleep(Duration::from_millis(200)).await;
        })
    });
    let remote = rx.recv().unwrap();
    let got = corio::run(async move {
        corio::run_coroutine_threadsafe(|| async { "from the other loop" }, &remote)
            .await
            .unwrap()
    });
    assert_eq!(got, "from the other loop");
    server.join().unwrap();
}

#[test]
#[should_panic(expected = "loop's own thread")]
fn blocking_on_the_loops_own_thread_is_refused() {
    let ev = corio::EventLoop::new().unwrap();
    let f = corio::run_coroutine_threadsafe(|| async { 1 }, &ev.remote());
    let _ = f.result(); // would wait forever
}

#[test]
fn dns_runs_on_the_executor_and_literals_do_not() {
    let _g = serial();
    corio::run(async {
        // A literal address: no thread at all.
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = corio::spawn(async move {
            for _ in 0..2 {
                listener.accept().await.unwrap();
            }
        });
        corio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        assert!(
            threads_named("corio-executor").is_empty(),
            "a literal address hopped threads"
        );
        // A host name: resolved on the executor.
        let s = corio::net::TcpStream::connect(format!("localhost:{port}")).await;
        match s {
            Ok(_) => {}
            // localhost may resolve to ::1 first where IPv6 is off; 127.0.0.1 comes next.
            Err(e) => panic!("connect to localhost:{port}: {e}"),
        }
        accept.await.unwrap();
        assert!(!threads_named("corio-executor").is_empty());

        let addrs = corio::getaddrinfo("localhost", port).await.unwrap();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()));
        let (host, service) = corio::getnameinfo(
            "127.0.0.1:80".parse().unwrap(),
            libc::NI_NUMERICHOST | libc::NI_NUMERICSERV,
        )
        .await
        .unwrap();
        assert_eq!((host.as_str(), service.as_str()), ("127.0.0.1", "80"));
        let bad = corio::getaddrinfo("no-such-host.invalid", 1).await;
        assert!(bad.is_err());
    });
}

/// `open_connection` (streams) with a host name, not only `TcpStream::connect`: the name is
/// resolved off the loop and each address tried in turn, so a server listening on
/// 127.0.0.1 only is reached even where `localhost` gives `::1` first (refused there).
#[test]
fn open_connection_to_localhost_by_name_reaches_a_server_on_127_0_0_1() {
    let _g = serial();
    corio::run(async {
        let server = corio::streams::start_server(
            |mut r, w| async move {
                let line = r.readline().await.unwrap();
                w.write(b"echo: ");
                w.write(&line);
                w.drain().await.unwrap();
                w.close();
            },
            "127.0.0.1:0",
        )
        .await
        .unwrap();
        let port = server.local_addr().unwrap().port();
        assert!(threads_named("corio-executor").is_empty());
        let client = async {
            let (mut r, w) = corio::streams::open_connection(format!("localhost:{port}"))
                .await
                .unwrap_or_else(|e| panic!("open_connection(localhost:{port}): {e}"));
            w.write(b"hello\n");
            assert_eq!(r.readline().await.unwrap(), b"echo: hello\n");
            assert!(r.read_to_end().await.unwrap().is_empty(), "then EOF");
            // A name that does not resolve is an error, not a hang or a panic.
            let bad = corio::streams::open_connection("no-such-host.invalid:1").await;
            assert!(bad.is_err());
        };
        corio::wait_for(client, Duration::from_secs(20))
            .await
            .expect("open_connection by name hung");
        assert!(
            !threads_named("corio-executor").is_empty(),
            "resolved on the executor"
        );
        server.close();
    });
}

#[test]
fn call_soon_threadsafe_is_the_door_for_other_threads() {
    let _g = serial();
    let ev = corio::EventLoop::new().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let remote = ev.remote();
            let count = count.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    let count = count.clone();
                    assert!(remote.call_soon_threadsafe(move || {
                        count.fetch_add(1, Ordering::SeqCst);
                    }));
                }
            })
        })
        .collect();
    ev.run_until_complete(async {
        while count.load(Ordering::SeqCst) < 4000 {
            corio::sleep(Duration::from_millis(1)).await;
        }
    });
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn the_map_reduce_example_agrees_with_its_single_threaded_pass() {
    let _g = serial();
    let out = std::process::Command::new(example("map_reduce"))
        .args(["--size-mb", "5", "--chunk-mb", "1", "--workers", "3"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("map-reduce:  5 chunks on 3 threads"),
        "{stdout}"
    );
    assert!(stdout.contains("results agree"), "{stdout}");
}

#[test]
fn the_blocking_io_example_stays_responsive() {
    let _g = serial();
    let out = std::process::Command::new(example("blocking_io"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("the loop stayed responsive"), "{stdout}");
    assert!(
        stdout.contains("call 7 done on corio-executor-"),
        "{stdout}"
    );
}
