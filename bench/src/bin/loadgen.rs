//! Echo load generator (the protocol of uvloop's echo client): N connections, each sends a
//! message of S bytes and waits for the whole echo before sending the next; every echo is
//! verified byte for byte. tokio current_thread, one core.
//!
//! ```text
//! loadgen --addr 127.0.0.1:8888 --conns 100 --size 1024 --duration 5 --warmup 1
//!         [--connect-concurrency 256] [--control] [--spin]
//! ```
//!
//! `--spin` keeps a task yielding forever so the loop busy-polls epoll instead of parking
//! (an experiment against idle-core wake-up latency; the runner does not use it: on our
//! machines it did not make the rates steadier).
//!
//! Every connection completes one round trip before the load starts (so a server with
//! 10 000 connections has seen each of them). Then, without `--control`: `--warmup` seconds
//! unmeasured, `--duration` seconds measured, one JSON line on stdout, exit.
//!
//! With `--control` (used by the runner, which samples the server's /proc around the
//! window): prints `{"event":"connected",...}` once all connections made their first round
//! trip and keeps the load running; then reads commands on stdin: `start` (reset the
//! counters, answer `{"event":"started"}`) and `stop` (print the result line, exit).
//!
//! The result line: `{"conns","size","secs","rts","rt_per_s","mib_per_s","p50_us","p99_us",
//! "max_us","errors","conns_ok","min_rts_per_conn","connect_s"}`; `errors` counts
//! connections that failed (connect, I/O, EOF or a wrong echo).

use std::cell::{Cell, RefCell};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};

struct Args {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    duration: f64,
    warmup: f64,
    connect_concurrency: usize,
    control: bool,
    spin: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen --addr HOST:PORT [--conns N] [--size BYTES] [--duration SECS] \
         [--warmup SECS] [--connect-concurrency N] [--control] [--spin]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:8888".parse().unwrap(),
        conns: 100,
        size: 1024,
        duration: 5.0,
        warmup: 1.0,
        connect_concurrency: 256,
        control: false,
        spin: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--addr" => a.addr = v().parse().unwrap_or_else(|_| usage()),
            "--conns" => a.conns = v().parse().unwrap_or_else(|_| usage()),
            "--size" => a.size = v().parse().unwrap_or_else(|_| usage()),
            "--duration" => a.duration = v().parse().unwrap_or_else(|_| usage()),
            "--warmup" => a.warmup = v().parse().unwrap_or_else(|_| usage()),
            "--connect-concurrency" => {
                a.connect_concurrency = v().parse().unwrap_or_else(|_| usage())
            }
            "--control" => a.control = true,
            "--spin" => a.spin = true,
            _ => usage(),
        }
    }
    if a.conns == 0 || a.size < 8 {
        usage()
    }
    a
}

/// Raise RLIMIT_NOFILE's soft limit to the hard limit (10 000 connections need it).
fn raise_nofile() {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

#[derive(Default)]
struct Stats {
    measuring: Cell<bool>,
    rts: Cell<u64>,
    lat_ns: RefCell<Vec<u32>>,
    per_conn: RefCell<Vec<u64>>,
    errors: Cell<u64>,
    failed: RefCell<Vec<bool>>,
    ready: Cell<usize>,
}

async fn conn_task(
    id: usize,
    args: Rc<Args>,
    stats: Rc<Stats>,
    sem: Arc<Semaphore>,
    all_ready: Rc<Notify>,
    go: Rc<Semaphore>,
) {
    let fail = |stats: &Stats, what: &str, e: &dyn std::fmt::Display| {
        if stats.errors.get() < 5 {
            eprintln!("loadgen: conn {id}: {what}: {e}");
        }
        stats.errors.set(stats.errors.get() + 1);
        stats.failed.borrow_mut()[id] = true;
    };
    let mut first = true;
    let mark_ready = |stats: &Stats| {
        stats.ready.set(stats.ready.get() + 1);
        if stats.ready.get() == args.conns {
            all_ready.notify_one();
        }
    };
    let stream = {
        let _permit = sem.acquire().await.expect("semaphore");
        match TcpStream::connect(args.addr).await {
            Ok(s) => s,
            Err(e) => {
                fail(&stats, "connect", &e);
                mark_ready(&stats);
                return;
            }
        }
    };
    let _ = stream.set_nodelay(true);
    let mut stream = stream;
    let (mut rd, mut wr) = stream.split();
    let mut msg = vec![0u8; args.size];
    for (i, b) in msg.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(id as u8);
    }
    let mut echo = vec![0u8; args.size];
    let mut seq: u64 = 0;
    loop {
        seq += 1;
        msg[..8].copy_from_slice(&seq.to_le_bytes());
        let t0 = Instant::now();
        let (w, r) = tokio::join!(wr.write_all(&msg), rd.read_exact(&mut echo));
        let dt = t0.elapsed();
        if let Err(e) = w {
            fail(&stats, "write", &e);
            break;
        }
        if let Err(e) = r {
            fail(&stats, "read", &e);
            break;
        }
        if echo != msg {
            fail(&stats, "verify", &"echo differs from the message sent");
            break;
        }
        if first {
            // Every connection makes one round trip, then waits until all are connected:
            // 10 000 looping connections would otherwise starve the server's accept loop.
            first = false;
            mark_ready(&stats);
            let _ = go.acquire().await; // closed once all are ready: returns Err at once
        }
        if stats.measuring.get() {
            stats.rts.set(stats.rts.get() + 1);
            stats.per_conn.borrow_mut()[id] += 1;
            stats
                .lat_ns
                .borrow_mut()
                .push(dt.as_nanos().min(u32::MAX as u128) as u32);
        }
    }
    if first {
        mark_ready(&stats);
    }
}

fn reset(stats: &Stats) {
    stats.rts.set(0);
    stats.lat_ns.borrow_mut().clear();
    stats.per_conn.borrow_mut().iter_mut().for_each(|c| *c = 0);
    stats.measuring.set(true);
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report(args: &Args, stats: &Stats, secs: f64, connect_s: f64) {
    stats.measuring.set(false);
    let mut lat = std::mem::take(&mut *stats.lat_ns.borrow_mut());
    lat.sort_unstable();
    let rts = stats.rts.get();
    let failed = stats.failed.borrow();
    let per = stats.per_conn.borrow();
    let conns_ok = failed.iter().filter(|f| !**f).count();
    let min_rts = per.iter().copied().min().unwrap_or(0);
    let rps = rts as f64 / secs;
    println!(
        "{{\"conns\":{},\"size\":{},\"secs\":{:.4},\"rts\":{},\"rt_per_s\":{:.1},\"mib_per_s\":{:.2},\
         \"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\"errors\":{},\"conns_ok\":{},\
         \"min_rts_per_conn\":{},\"connect_s\":{:.3}}}",
        args.conns,
        args.size,
        secs,
        rts,
        rps,
        rps * args.size as f64 / (1024.0 * 1024.0),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().map(|v| *v as f64 / 1000.0).unwrap_or(0.0),
        stats.errors.get(),
        conns_ok,
        min_rts,
        connect_s
    );
    std::io::stdout().flush().ok();
}

fn main() {
    let args = Rc::new(parse_args());
    raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let stats = Rc::new(Stats::default());
        *stats.per_conn.borrow_mut() = vec![0; args.conns];
        *stats.failed.borrow_mut() = vec![false; args.conns];
        let sem = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
        let all_ready = Rc::new(Notify::new());
        let go = Rc::new(Semaphore::new(0));
        if args.spin {
            // Busy-poll: a task that always yields keeps the runtime from parking, so the
            // loop polls epoll with a zero timeout and answers every echo at once; the
            // load-generator core never idles (a halted vCPU is slow to wake on a VM).
            tokio::task::spawn_local(async {
                loop {
                    tokio::task::yield_now().await;
                }
            });
        }
        let t_connect = Instant::now();
        for id in 0..args.conns {
            tokio::task::spawn_local(conn_task(
                id,
                args.clone(),
                stats.clone(),
                sem.clone(),
                all_ready.clone(),
                go.clone(),
            ));
        }
        all_ready.notified().await;
        let connect_s = t_connect.elapsed().as_secs_f64();
        go.close();
        if args.control {
            println!(
                "{{\"event\":\"connected\",\"conns_ok\":{},\"errors\":{},\"connect_s\":{:.3}}}",
                args.conns as u64 - stats.errors.get(),
                stats.errors.get(),
                connect_s
            );
            std::io::stdout().flush().ok();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line.trim().to_string()).is_err() {
                        break;
                    }
                }
            });
            let mut t0 = Instant::now();
            while let Some(cmd) = rx.recv().await {
                match cmd.as_str() {
                    "start" => {
                        reset(&stats);
                        t0 = Instant::now();
                        println!("{{\"event\":\"started\"}}");
                        std::io::stdout().flush().ok();
                    }
                    "stop" => {
                        report(&args, &stats, t0.elapsed().as_secs_f64(), connect_s);
                        break;
                    }
                    "" => {}
                    other => eprintln!("loadgen: unknown command {other:?}"),
                }
            }
        } else {
            tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
            reset(&stats);
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
            report(&args, &stats, t0.elapsed().as_secs_f64(), connect_s);
        }
    });
    // Leave at once: the connection tasks are still looping.
    std::process::exit(0);
}
