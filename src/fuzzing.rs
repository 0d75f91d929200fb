//! Hooks for the fuzz targets in `fuzz/` (issue 9). Compiled only with the `fuzzing` cargo
//! feature and hidden from the docs: not part of corio's API, no stability promise.
//!
//! The timer queue is crate-private (`base_events::timers`); this module wraps it so a fuzz
//! target can drive add/cancel/advance against a `BTreeMap` model. Timers here are all
//! `sleep`-style (waker) timers: each carries an id that its waker reports when woken.

use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use crate::base_events::timers::{self, Due, TimerKey};

/// A scheduled timer's key (opaque).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(TimerKey);

struct IdWaker {
    id: u64,
    fired: Arc<Mutex<Vec<u64>>>,
}

impl Wake for IdWaker {
    fn wake(self: Arc<Self>) {
        self.fired.lock().unwrap().push(self.id);
    }
}

/// The loop's timer queue with deadlines given as nanoseconds after a fixed base instant.
pub struct TimerQueue {
    inner: timers::TimerQueue,
    base: Instant,
    fired: Arc<Mutex<Vec<u64>>>,
}

impl std::fmt::Debug for TimerQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerQueue")
            .field("len", &self.inner.len())
            .finish()
    }
}

impl Default for TimerQueue {
    fn default() -> Self {
        TimerQueue::new()
    }
}

impl TimerQueue {
    /// An empty queue.
    pub fn new() -> TimerQueue {
        let base = Instant::now();
        TimerQueue {
            inner: timers::TimerQueue::new(base),
            base,
            fired: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn at(&self, ns: u64) -> Instant {
        timers::deadline_after(self.base, Duration::from_nanos(ns))
    }

    /// Schedules timer `id` at `at_ns` after the base.
    pub fn insert(&mut self, at_ns: u64, id: u64) -> Key {
        let waker = Waker::from(Arc::new(IdWaker {
            id,
            fired: self.fired.clone(),
        }));
        Key(self.inner.insert_waker(self.at(at_ns), waker))
    }

    /// Cancels or releases a timer; `true` if a waiting timer was cancelled.
    pub fn remove(&mut self, key: Key) -> bool {
        self.inner.remove(key.0)
    }

    /// `Some(true)` fired, `Some(false)` waiting, `None` not live. Like a `sleep` polled
    /// again, this refreshes the timer's waker (with one that reports `id`).
    pub fn poll_key(&mut self, key: Key, id: u64) -> Option<bool> {
        let waker = Waker::from(Arc::new(IdWaker {
            id,
            fired: self.fired.clone(),
        }));
        self.inner.poll_key(key.0, &waker)
    }

    /// Pops one due timer at `now_ns` and returns the id its waker reported.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<u64> {
        match self.inner.pop_due(self.at(now_ns))? {
            Due::Wake(w) => {
                w.wake();
                let id = self.fired.lock().unwrap().pop();
                Some(id.expect("a popped timer's waker reported nothing"))
            }
            Due::Callback(_) => panic!("only waker timers are scheduled here"),
        }
    }

    /// The earliest live deadline in nanoseconds after the base (saturating).
    pub fn next_deadline_ns(&mut self) -> Option<u64> {
        let at = self.inner.next_deadline()?;
        Some(u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX))
    }

    /// Timers scheduled and not yet due or cancelled.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no timer waits.
    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }
}
