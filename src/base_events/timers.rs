//! The timer queue: a binary heap of deadlines over a slab of timer slots.
//!
//! asyncio counterpart: `BaseEventLoop._scheduled` (a heap of `TimerHandle`s with lazy
//! cancellation). Layer 2: owned by the loop core, used by `call_later`/`call_at` and by
//! [`sleep`](crate::sleep).
//!
//! # How it works
//!
//! - A timer lives in a **slot** of a slab (`slots`), which holds what to do when it fires: wake
//!   a waker (a `sleep`) or queue a callback handle (`call_later`). The slot index plus a
//!   generation number form a [`TimerKey`], so a stale key can never touch a reused slot.
//! - The **heap** holds `(deadline, seq, slot, generation)`. `seq` is a counter bumped for every
//!   timer, so equal deadlines pop in scheduling order (asyncio leaves that order undefined;
//!   corio promises FIFO, see B15 in the failure-modes reference).
//! - **Cancelling costs nothing now**: the slot is freed at once and its heap entry becomes
//!   stale; stale entries are skipped when they reach the top. When more than half of a heap
//!   of more than [`MIN_SCHEDULED_TIMER_HANDLES`] entries is stale, the heap is rebuilt
//!   (asyncio's rule), so cancelled timers cannot pile up.
//! - Deadlines are `Instant`s from the loop's monotonic clock, stored as nanoseconds since the
//!   queue's base instant to keep an entry at 24 bytes. A timer is due when
//!   `deadline <= now`: never early.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::events::HandleDyn;

/// Below this many scheduled timers the heap is never rebuilt (asyncio's constant).
pub(crate) const MIN_SCHEDULED_TIMER_HANDLES: usize = 100;

/// Identifies one scheduled timer: its slot and the slot's generation at scheduling time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: u32,
    generation: u32,
}

impl TimerKey {
    /// A key no timer ever has (slot `u32::MAX` is never allocated): a sentinel for callers.
    pub(crate) const NONE: TimerKey = TimerKey {
        slot: u32::MAX,
        generation: 0,
    };
}

/// One timer. Flat on purpose: tag, generation and a 16-byte payload make 24 bytes.
enum Slot {
    /// Free; the number is the next free slot (a free list threaded through the slab).
    Free { next: u32 },
    /// A `sleep`, not yet due: wake this waker and mark the slot fired.
    Waker {
        generation: u32,
        waker: Option<Waker>,
    },
    /// A `call_later`/`call_at`, not yet due: queue this handle and free the slot.
    Callback {
        generation: u32,
        handle: Rc<dyn HandleDyn>,
    },
    /// Its waker was woken; waiting for the `sleep` to see it and release the slot.
    Fired { generation: u32 },
}

impl Slot {
    /// The generation of a timer that is scheduled and not yet due.
    fn waiting(&self) -> Option<u32> {
        match self {
            Slot::Waker { generation, .. } | Slot::Callback { generation, .. } => Some(*generation),
            _ => None,
        }
    }
}

const NIL: u32 = u32::MAX;

/// What [`TimerQueue::pop_due`] hands back to the loop.
pub(crate) enum Due {
    Wake(Waker),
    Callback(Rc<dyn HandleDyn>),
}

pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(u64, u64, u32, u32)>>,
    slots: Vec<Slot>,
    free_head: u32,
    live: usize,
    stale_in_heap: usize,
    next_seq: u64,
    next_generation: u32,
    base: Instant,
}

impl TimerQueue {
    pub(crate) fn new(base: Instant) -> TimerQueue {
        TimerQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free_head: NIL,
            live: 0,
            stale_in_heap: 0,
            next_seq: 0,
            next_generation: 0,
            base,
        }
    }

    /// Nanoseconds since `base`, saturating: deadlines before `base` are due at once, and a
    /// deadline past `u64::MAX` ns (584 years) is simply "never" (B18: huge durations).
    fn offset(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.base);
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    fn instant(&self, offset: u64) -> Instant {
        self.base
            .checked_add(Duration::from_nanos(offset))
            .unwrap_or_else(|| far_future(self.base))
    }

    fn insert(&mut self, at: Instant, make: impl FnOnce(u32) -> Slot) -> TimerKey {
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        let slot = make(generation);
        let index = if self.free_head != NIL {
            let index = self.free_head;
            match self.slots[index as usize] {
                Slot::Free { next } => self.free_head = next,
                _ => unreachable!("free list points at a used timer slot"),
            }
            self.slots[index as usize] = slot;
            index
        } else {
            self.slots.push(slot);
            u32::try_from(self.slots.len() - 1).expect("more than 4 billion timers")
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap
            .push(Reverse((self.offset(at), seq, index, generation)));
        self.live += 1;
        TimerKey {
            slot: index,
            generation,
        }
    }

    /// Schedules `waker` to be woken at `at` (a `sleep`).
    pub(crate) fn insert_waker(&mut self, at: Instant, waker: Waker) -> TimerKey {
        self.insert(at, |generation| Slot::Waker {
            generation,
            waker: Some(waker),
        })
    }

    /// Schedules `handle` to be queued at `at` (a `call_at`).
    pub(crate) fn insert_callback(&mut self, at: Instant, handle: Rc<dyn HandleDyn>) -> TimerKey {
        self.insert(at, |generation| Slot::Callback { generation, handle })
    }

    /// For a `sleep` being polled again: `Some(true)` if it fired, `Some(false)` if it still
    /// waits (its waker is refreshed when `waker` would wake something else), `None` if the key
    /// is not live.
    pub(crate) fn poll_key(&mut self, key: TimerKey, waker: &Waker) -> Option<bool> {
        match self.slots.get_mut(key.slot as usize)? {
            Slot::Fired { generation } if *generation == key.generation => Some(true),
            Slot::Waker {
                generation,
                waker: w,
            } if *generation == key.generation => {
                match w {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *w = Some(waker.clone()),
                }
                Some(false)
            }
            _ => None,
        }
    }

    /// Releases a timer: cancels it if it is still waiting, forgets it if it fired.
    /// Returns whether a waiting timer was cancelled.
    pub(crate) fn remove(&mut self, key: TimerKey) -> bool {
        let Some(slot) = self.slots.get_mut(key.slot as usize) else {
            return false;
        };
        let cancelled = match &*slot {
            s if s.waiting() == Some(key.generation) => {
                self.stale_in_heap += 1;
                self.live -= 1;
                true
            }
            Slot::Fired { generation } if *generation == key.generation => false,
            _ => return false,
        };
        *slot = Slot::Free {
            next: self.free_head,
        };
        self.free_head = key.slot;
        if cancelled {
            self.maybe_compact();
        }
        cancelled
    }

    fn maybe_compact(&mut self) {
        if self.heap.len() > MIN_SCHEDULED_TIMER_HANDLES && self.stale_in_heap * 2 > self.heap.len()
        {
            let slots = &self.slots;
            let entries = std::mem::take(&mut self.heap).into_vec();
            let kept: Vec<_> = entries
                .into_iter()
                .filter(|Reverse((_, _, slot, generation))| is_waiting(slots, *slot, *generation))
                .collect();
            self.heap = BinaryHeap::from(kept);
            self.stale_in_heap = 0;
        }
    }

    /// Drops stale entries from the top, then returns the earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, _, slot, generation))) = self.heap.peek().copied() {
            if is_waiting(&self.slots, slot, generation) {
                return Some(self.instant(at));
            }
            self.heap.pop();
            self.stale_in_heap = self.stale_in_heap.saturating_sub(1);
        }
        None
    }

    /// Pops one timer whose deadline is `<= now`, in (deadline, scheduling) order.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Due> {
        let now = self.offset(now);
        loop {
            let Reverse((at, _, slot, generation)) = *self.heap.peek()?;
            if at > now && is_waiting(&self.slots, slot, generation) {
                return None;
            }
            self.heap.pop();
            if !is_waiting(&self.slots, slot, generation) {
                self.stale_in_heap = self.stale_in_heap.saturating_sub(1);
                continue;
            }
            self.live -= 1;
            let entry = &mut self.slots[slot as usize];
            match std::mem::replace(entry, Slot::Fired { generation }) {
                Slot::Waker { waker: Some(w), .. } => return Some(Due::Wake(w)),
                Slot::Callback { handle, .. } => {
                    *entry = Slot::Free {
                        next: self.free_head,
                    };
                    self.free_head = slot;
                    return Some(Due::Callback(handle));
                }
                _ => continue,
            }
        }
    }

    /// Timers scheduled and not yet due or cancelled.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Drops every timer (loop close): wakers and callbacks are released, nothing fires.
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.slots.clear();
        self.free_head = NIL;
        self.live = 0;
        self.stale_in_heap = 0;
    }
}

fn is_waiting(slots: &[Slot], slot: u32, generation: u32) -> bool {
    slots.get(slot as usize).and_then(Slot::waiting) == Some(generation)
}

/// A deadline so far away it never comes: about 30 years on, or as far as `Instant` goes.
pub(crate) fn far_future(from: Instant) -> Instant {
    let mut d = Duration::from_secs(30 * 365 * 86_400);
    loop {
        if let Some(t) = from.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}

/// `from + d` without overflow: a delay too large for `Instant` becomes [`far_future`] (B18).
pub(crate) fn deadline_after(from: Instant, d: Duration) -> Instant {
    from.checked_add(d).unwrap_or_else(|| far_future(from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    fn waker() -> Waker {
        Waker::from(Arc::new(Noop))
    }

    #[test]
    fn equal_deadlines_pop_in_scheduling_order_and_cancelled_never_pop() {
        let base = Instant::now();
        let mut q = TimerQueue::new(base);
        let at = base + Duration::from_millis(5);
        let keys: Vec<_> = (0..1000).map(|_| q.insert_waker(at, waker())).collect();
        let mut cancelled = 0;
        for (i, k) in keys.iter().enumerate() {
            if i % 3 == 1 {
                assert!(q.remove(*k));
                cancelled += 1;
            }
        }
        assert_eq!(q.len(), 1000 - cancelled);
        assert!(
            q.pop_due(base).is_none(),
            "nothing is due before its deadline"
        );
        let mut fired = 0;
        while let Some(Due::Wake(_)) = q.pop_due(at) {
            fired += 1;
        }
        assert_eq!(fired, 1000 - cancelled);
        for (i, k) in keys.iter().enumerate() {
            let state = q.poll_key(*k, &waker());
            assert_eq!(state, if i % 3 == 1 { None } else { Some(true) });
        }
    }

    #[test]
    fn a_timer_slot_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 24);
    }

    #[test]
    fn huge_deadlines_do_not_overflow() {
        let base = Instant::now();
        let mut q = TimerQueue::new(base);
        let at = deadline_after(base, Duration::MAX);
        let k = q.insert_waker(at, waker());
        assert!(q.next_deadline().unwrap() > base + Duration::from_secs(86_400 * 365));
        assert!(q.pop_due(base + Duration::from_secs(1_000_000)).is_none());
        assert!(q.remove(k));
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn compaction_keeps_the_live_timers() {
        let base = Instant::now();
        let mut q = TimerQueue::new(base);
        let keys: Vec<_> = (0..1000u64)
            .map(|i| q.insert_waker(base + Duration::from_micros(i), waker()))
            .collect();
        for k in &keys[..900] {
            q.remove(*k);
        }
        assert!(q.heap.len() < 1000, "the heap was rebuilt");
        let mut n = 0;
        while q.pop_due(base + Duration::from_secs(1)).is_some() {
            n += 1;
        }
        assert_eq!(n, 100);
    }
}
