//! Tests of `corio::queues`: each pins one semantic of asyncio's queues (asyncio-map.md §3.5
//! and §4 item 10) or failure mode B22 (an item lost when a woken getter is cancelled), plus
//! random put/get/cancel schedules and the allocation-free fast path.

#[allow(unsafe_code)]
mod sync_support;

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;

use corio::queues::{
    GenericQueue, GetError, LifoQueue, PriorityQueue, PutError, Queue, QueueBuffer, QueueShutDown,
    TaskDoneError,
};
use corio::{EventLoop, Task, catch_cancel, spawn, yield_now};

use sync_support::{Rng, allocations, run};

async fn turns(n: usize) {
    for _ in 0..n {
        yield_now().await;
    }
}

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

/// A task that gets one item and logs `name=item`.
fn getter(q: &Rc<Queue<u32>>, log: &Log, name: &'static str) -> Task<Result<u32, QueueShutDown>> {
    let (q, log) = (q.clone(), log.clone());
    spawn(async move {
        let r = q.get().await;
        if let Ok(item) = &r {
            push(&log, format!("{name}={item}"));
        }
        r
    })
}

/// A task that puts one item and logs `name`.
fn putter(
    q: &Rc<Queue<u32>>,
    log: &Log,
    name: &'static str,
    item: u32,
) -> Task<Result<(), QueueShutDown<u32>>> {
    let (q, log) = (q.clone(), log.clone());
    spawn(async move {
        let r = q.put(item).await;
        if r.is_ok() {
            push(&log, name);
        }
        r
    })
}

// ---------------------------------------------------------------------------------------------
// Order and sizes
// ---------------------------------------------------------------------------------------------

#[test]
fn queue_is_first_in_first_out() {
    let q = Queue::new(0);
    for x in [3, 1, 2] {
        q.put_nowait(x).unwrap();
    }
    let out: Vec<_> = (0..3).map(|_| q.get_nowait().unwrap()).collect();
    assert_eq!(out, [3, 1, 2]);
}

#[test]
fn lifo_queue_is_a_stack() {
    let q = LifoQueue::new(0);
    for x in [3, 1, 2] {
        q.put_nowait(x).unwrap();
    }
    let out: Vec<_> = (0..3).map(|_| q.get_nowait().unwrap()).collect();
    assert_eq!(out, [2, 1, 3]);
}

#[test]
fn priority_queue_gives_the_smallest_item_first() {
    let q = PriorityQueue::new(0);
    for x in [(5, "e"), (1, "a"), (3, "c"), (2, "b"), (4, "d")] {
        q.put_nowait(x).unwrap();
    }
    let out: Vec<_> = (0..5).map(|_| q.get_nowait().unwrap().1).collect();
    assert_eq!(out, ["a", "b", "c", "d", "e"]);
}

#[test]
fn custom_buffer_sets_the_order() {
    #[derive(Default)]
    struct Largest(BinaryHeap<u32>);
    impl QueueBuffer<u32> for Largest {
        fn push(&mut self, item: u32) {
            self.0.push(item);
        }
        fn pop(&mut self) -> Option<u32> {
            self.0.pop()
        }
        fn len(&self) -> usize {
            self.0.len()
        }
    }
    let q: GenericQueue<u32, Largest> = GenericQueue::new(2);
    q.put_nowait(1).unwrap();
    q.put_nowait(7).unwrap();
    assert!(q.full());
    assert_eq!(q.get_nowait(), Ok(7));
    // The standard orders are just buffers too.
    let p: GenericQueue<u8, BinaryHeap<Reverse<u8>>> = GenericQueue::default();
    p.put_nowait(9).unwrap();
    p.put_nowait(4).unwrap();
    assert_eq!(p.get_nowait(), Ok(4));
}

#[test]
fn qsize_empty_full_and_maxsize() {
    let q = Queue::new(2);
    assert_eq!(q.maxsize(), 2);
    assert!(q.empty() && !q.full());
    q.put_nowait('a').unwrap();
    assert_eq!(q.qsize(), 1);
    assert!(!q.empty() && !q.full());
    q.put_nowait('b').unwrap();
    assert!(q.full());
    assert_eq!(q.put_nowait('c'), Err(PutError::Full('c')));
    assert_eq!(q.qsize(), 2);
}

#[test]
fn maxsize_zero_is_unbounded() {
    let q = Queue::new(0);
    for i in 0..10_000 {
        q.put_nowait(i).unwrap();
    }
    assert!(!q.full());
    assert_eq!(q.qsize(), 10_000);
}

#[test]
fn get_nowait_on_an_empty_queue_is_queue_empty() {
    let q = Queue::<u8>::new(1);
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
    assert_eq!(GetError::Empty.to_string(), "queue empty");
}

#[test]
fn put_nowait_on_a_full_queue_gives_the_item_back() {
    let q = Queue::new(1);
    q.put_nowait(String::from("first")).unwrap();
    let err = q.put_nowait(String::from("second")).unwrap_err();
    assert!(matches!(err, PutError::Full(_)));
    assert_eq!(err.to_string(), "queue full");
    assert_eq!(err.into_inner(), "second");
}

// ---------------------------------------------------------------------------------------------
// Waiting getters and putters
// ---------------------------------------------------------------------------------------------

#[test]
fn get_waits_while_empty_and_getters_are_served_in_fifo_order() {
    run(async {
        let q = Rc::new(Queue::new(0));
        let log = log();
        let gs: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|n| getter(&q, &log, n))
            .collect();
        turns(2).await;
        assert!(log.borrow().is_empty());
        for i in 1..=3 {
            q.put_nowait(i).unwrap();
        }
        for g in gs {
            g.await.unwrap().unwrap();
        }
        assert_eq!(*log.borrow(), ["a=1", "b=2", "c=3"]);
    });
}

#[test]
fn put_waits_while_full_and_putters_are_served_in_fifo_order() {
    run(async {
        let q = Rc::new(Queue::new(1));
        let log = log();
        q.put_nowait(0).unwrap();
        let ps: Vec<_> = [("a", 1), ("b", 2), ("c", 3)]
            .into_iter()
            .map(|(n, i)| putter(&q, &log, n, i))
            .collect();
        turns(2).await;
        assert!(log.borrow().is_empty());
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(q.get().await.unwrap());
        }
        for p in ps {
            p.await.unwrap().unwrap();
        }
        assert_eq!(got, [0, 1, 2, 3]);
        assert_eq!(*log.borrow(), ["a", "b", "c"]);
    });
}

#[test]
fn put_wakes_the_getter_through_the_ready_queue() {
    run(async {
        let q = Rc::new(Queue::new(0));
        let log = log();
        let g = getter(&q, &log, "g");
        turns(1).await;
        q.put_nowait(5).unwrap();
        assert!(log.borrow().is_empty(), "put ran the getter inline");
        let l = log.clone();
        corio::get_running_loop().call_soon(move || push(&l, "callback"));
        g.await.unwrap().unwrap();
        turns(1).await;
        assert_eq!(*log.borrow(), ["g=5", "callback"]);
    });
}

#[test]
fn woken_getter_rechecks_the_queue() {
    // asyncio probe (§4 item 10): main took item 1 and the getter got item 2.
    run(async {
        let q = Rc::new(Queue::new(0));
        let log = log();
        let g = getter(&q, &log, "getter");
        turns(1).await;
        q.put_nowait(1).unwrap(); // wakes the getter, which has not run yet
        assert_eq!(q.get_nowait(), Ok(1)); // main takes it first
        turns(2).await;
        assert!(
            !g.done(),
            "the getter found the queue empty and waits again"
        );
        q.put_nowait(2).unwrap();
        assert_eq!(g.await.unwrap(), Ok(2));
        assert_eq!(*log.borrow(), ["getter=2"]);
    });
}

#[test]
fn woken_getter_that_finds_nothing_keeps_its_turn() {
    run(async {
        let q = Rc::new(Queue::new(0));
        let log = log();
        let first = getter(&q, &log, "first");
        let second = getter(&q, &log, "second");
        turns(1).await;
        q.put_nowait(1).unwrap(); // wakes `first` only
        assert_eq!(q.get_nowait(), Ok(1)); // stolen before `first` runs
        turns(2).await; // `first` re-checks, finds nothing, waits again: ahead of `second`
        q.put_nowait(2).unwrap();
        q.put_nowait(3).unwrap();
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(*log.borrow(), ["first=2", "second=3"]);
    });
}

#[test]
fn woken_putter_that_finds_no_room_keeps_its_turn() {
    run(async {
        let q = Rc::new(Queue::new(1));
        let log = log();
        q.put_nowait(0).unwrap();
        let first = putter(&q, &log, "first", 1);
        let second = putter(&q, &log, "second", 2);
        turns(1).await;
        assert_eq!(q.get_nowait(), Ok(0)); // room: wakes `first` only
        q.put_nowait(9).unwrap(); // the room is taken before `first` runs
        turns(2).await; // `first` re-checks, finds it full, waits again: ahead of `second`
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(q.get().await.unwrap());
        }
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(got, [9, 1, 2]);
        assert_eq!(*log.borrow(), ["first", "second"]);
    });
}

#[test]
fn cancelled_woken_getter_passes_the_wakeup_on() {
    // B22: getters t1, t2 wait; put_nowait(x); cancel t1 in the same turn: t2 receives x.
    for how in ["cancel", "abort", "caught"] {
        run(async move {
            let q = Rc::new(Queue::new(0));
            let log = log();
            let t1 = if how == "caught" {
                let (q, log) = (q.clone(), log.clone());
                spawn(async move {
                    match catch_cancel(q.get()).await {
                        Ok(r) => r,
                        Err(_) => {
                            push(&log, "t1 cancelled");
                            Err(QueueShutDown(()))
                        }
                    }
                })
            } else {
                getter(&q, &log, "t1")
            };
            let t2 = getter(&q, &log, "t2");
            turns(1).await;
            q.put_nowait(42).unwrap(); // wakes t1
            match how {
                "abort" => t1.abort(),
                _ => t1.cancel(None),
            };
            let _ = t1.await;
            assert_eq!(t2.await.unwrap(), Ok(42), "{how}");
            assert!(q.empty());
            let expect: &[&str] = if how == "caught" {
                &["t1 cancelled", "t2=42"]
            } else {
                &["t2=42"]
            };
            assert_eq!(*log.borrow(), expect);
        });
    }
}

#[test]
fn cancelled_woken_putter_passes_the_wakeup_on() {
    run(async {
        let q = Rc::new(Queue::new(1));
        let log = log();
        q.put_nowait(0).unwrap();
        let p1 = putter(&q, &log, "p1", 1);
        let p2 = putter(&q, &log, "p2", 2);
        turns(1).await;
        assert_eq!(q.get_nowait(), Ok(0)); // room: wakes p1
        p1.cancel(None);
        assert!(p1.await.unwrap_err().is_cancelled());
        p2.await.unwrap().unwrap();
        assert_eq!(q.get_nowait(), Ok(2));
        assert_eq!(*log.borrow(), ["p2"]);
    });
}

#[test]
fn cancelled_put_never_enqueues_its_item() {
    /// Counts drops, to show the item of a cancelled put is dropped, not queued or leaked.
    struct Item(Rc<Cell<u32>>);
    impl Drop for Item {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    run(async {
        let drops = Rc::new(Cell::new(0));
        let q = Rc::new(Queue::new(1));
        q.put_nowait(Item(drops.clone())).map_err(drop).unwrap();
        let (q2, d2) = (q.clone(), drops.clone());
        let p = spawn(async move {
            let _ = q2.put(Item(d2)).await;
        });
        turns(1).await;
        p.cancel(None);
        assert!(p.await.unwrap_err().is_cancelled());
        assert_eq!(drops.get(), 1, "the cancelled put's item was dropped");
        assert_eq!(q.qsize(), 1);
        drop(q.get_nowait());
        assert_eq!(drops.get(), 2);
        assert_eq!(q.qsize(), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// join and task_done
// ---------------------------------------------------------------------------------------------

#[test]
fn join_counts_puts_not_gets() {
    run(async {
        let q = Rc::new(Queue::new(0));
        q.put_nowait(1).unwrap();
        q.put_nowait(2).unwrap();
        q.get_nowait().unwrap();
        q.get_nowait().unwrap(); // both got, none marked done
        let q2 = q.clone();
        let joiner = spawn(async move { q2.join().await });
        turns(3).await;
        assert!(
            !joiner.done(),
            "items got but not done still hold join back"
        );
        q.task_done().unwrap();
        turns(3).await;
        assert!(!joiner.done());
        q.task_done().unwrap();
        joiner.await.unwrap();
    });
}

#[test]
fn join_returns_at_once_when_nothing_is_unfinished() {
    run(async {
        let q = Queue::<u8>::new(0);
        q.join().await;
        q.put_nowait(1).unwrap();
        q.task_done().unwrap(); // done even before it was got
        q.join().await;
    });
}

#[test]
fn join_wakes_every_joiner() {
    run(async {
        let q = Rc::new(Queue::new(0));
        q.put_nowait(1).unwrap();
        let joiners: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                spawn(async move { q.join().await })
            })
            .collect();
        turns(1).await;
        q.get_nowait().unwrap();
        q.task_done().unwrap();
        for j in joiners {
            j.await.unwrap();
        }
    });
}

#[test]
fn task_done_called_too_many_times_is_an_error() {
    let q = Queue::new(0);
    assert_eq!(q.task_done(), Err(TaskDoneError));
    q.put_nowait(()).unwrap();
    assert_eq!(q.task_done(), Ok(()));
    assert_eq!(q.task_done(), Err(TaskDoneError));
    assert_eq!(
        TaskDoneError.to_string(),
        "task_done() called too many times"
    );
}

// ---------------------------------------------------------------------------------------------
// shutdown (asyncio 3.13)
// ---------------------------------------------------------------------------------------------

#[test]
fn shutdown_refuses_puts_and_lets_gets_drain_the_queue() {
    run(async {
        let q = Queue::new(0);
        q.put_nowait(1).unwrap();
        q.put_nowait(2).unwrap();
        q.shutdown(false);
        assert!(q.is_shut_down());
        assert_eq!(q.put_nowait(3), Err(PutError::ShutDown(3)));
        assert_eq!(q.put(4).await, Err(QueueShutDown(4)));
        assert_eq!(q.get().await, Ok(1));
        assert_eq!(q.get_nowait(), Ok(2));
        assert_eq!(q.get().await, Err(QueueShutDown(())));
        assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
    });
}

#[test]
fn shutdown_wakes_blocked_getters_and_putters() {
    run(async {
        let empty = Rc::new(Queue::new(1));
        let full = Rc::new(Queue::new(1));
        full.put_nowait(0).unwrap();
        let log = log();
        let g1 = getter(&empty, &log, "g1");
        let g2 = getter(&empty, &log, "g2");
        let p1 = putter(&full, &log, "p1", 1);
        turns(1).await;
        empty.shutdown(false);
        full.shutdown(false);
        assert_eq!(g1.await.unwrap(), Err(QueueShutDown(())));
        assert_eq!(g2.await.unwrap(), Err(QueueShutDown(())));
        assert_eq!(
            p1.await.unwrap(),
            Err(QueueShutDown(1)),
            "the item comes back"
        );
        assert_eq!(full.get_nowait(), Ok(0));
        assert!(log.borrow().is_empty());
    });
}

#[test]
fn shutdown_immediate_drops_the_items_and_releases_join() {
    run(async {
        let q = Rc::new(Queue::new(0));
        for i in 0..3 {
            q.put_nowait(i).unwrap();
        }
        q.get_nowait().unwrap(); // got, not done: join still waits for it
        let q2 = q.clone();
        let joiner = spawn(async move { q2.join().await });
        turns(1).await;
        q.shutdown(true);
        assert!(q.empty());
        assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
        turns(2).await;
        assert!(!joiner.done(), "the item that was got is still unfinished");
        q.task_done().unwrap();
        joiner.await.unwrap();
        assert_eq!(q.task_done(), Err(TaskDoneError));
    });
}

#[test]
fn shutdown_immediate_with_all_items_queued_releases_join_at_once() {
    run(async {
        let q = Rc::new(Queue::new(0));
        q.put_nowait(1).unwrap();
        let q2 = q.clone();
        let joiner = spawn(async move { q2.join().await });
        turns(1).await;
        q.shutdown(true);
        joiner.await.unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// Random schedules and the fast path
// ---------------------------------------------------------------------------------------------

#[test]
fn random_put_get_cancel_schedules_lose_no_item_and_duplicate_none() {
    // B22 property: items received == items put minus items still queued.
    for seed in 1..=30 {
        run(async move {
            let mut rng = Rng::new(seed);
            let q: Rc<Queue<u32>> = Rc::new(Queue::new(rng.below(4) as usize));
            let put = Rc::new(RefCell::new(Vec::new()));
            let got = Rc::new(RefCell::new(Vec::new()));
            let mut tasks = Vec::new();
            for i in 0..60u32 {
                let delay = rng.below(5) as usize;
                let caught = rng.chance(50);
                let t = if rng.chance(50) {
                    let (q, put) = (q.clone(), put.clone());
                    spawn(async move {
                        turns(delay).await;
                        let ok = if caught {
                            matches!(catch_cancel(q.put(i)).await, Ok(Ok(())))
                        } else {
                            q.put(i).await.is_ok()
                        };
                        if ok {
                            put.borrow_mut().push(i);
                        }
                    })
                } else {
                    let (q, got) = (q.clone(), got.clone());
                    spawn(async move {
                        turns(delay).await;
                        let item = if caught {
                            catch_cancel(q.get()).await.ok().and_then(Result::ok)
                        } else {
                            q.get().await.ok()
                        };
                        if let Some(item) = item {
                            got.borrow_mut().push(item);
                        }
                    })
                };
                tasks.push(t);
            }
            for _ in 0..20 {
                let t = &tasks[rng.below(tasks.len() as u64) as usize];
                if rng.chance(40) {
                    if rng.chance(30) {
                        t.abort();
                    } else {
                        t.cancel(None);
                    }
                }
                yield_now().await;
            }
            // Let what can finish finish, then collect the rest.
            turns(10).await;
            q.shutdown(false);
            for t in tasks {
                let _ = t.await;
            }
            let mut put = put.borrow().clone();
            let mut got = got.borrow().clone();
            while let Ok(item) = q.get_nowait() {
                got.push(item);
            }
            put.sort_unstable();
            got.sort_unstable();
            assert_eq!(put, got, "seed {seed}");
        });
    }
}

#[test]
fn uncontended_put_and_get_do_not_allocate() {
    let ev = EventLoop::new().unwrap();
    let fifo: Queue<u64> = Queue::new(1);
    let unbounded: Queue<u64> = Queue::new(0);
    let lifo: LifoQueue<u64> = LifoQueue::new(4);
    let prio: PriorityQueue<u64> = PriorityQueue::new(4);
    ev.run_until_complete(async {
        // Warm up: the storage allocates its room once.
        for q in [&fifo, &unbounded] {
            q.put(0).await.unwrap();
            q.get().await.unwrap();
        }
        lifo.put(0).await.unwrap();
        lifo.get().await.unwrap();
        prio.put(0).await.unwrap();
        prio.get().await.unwrap();
        let before = allocations();
        for i in 0..1000 {
            fifo.put(i).await.unwrap();
            assert_eq!(fifo.get().await, Ok(i));
            unbounded.put_nowait(i).unwrap();
            assert_eq!(unbounded.get_nowait(), Ok(i));
            unbounded.task_done().unwrap();
            lifo.put(i).await.unwrap();
            assert_eq!(lifo.get().await, Ok(i));
            prio.put(i).await.unwrap();
            assert_eq!(prio.get().await, Ok(i));
        }
        unbounded.task_done().unwrap();
        unbounded.join().await;
        assert_eq!(allocations() - before, 0);
    });
}
