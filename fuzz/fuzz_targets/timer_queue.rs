//! Fuzzes corio's timer queue (a heap over a slab with generations, lazy cancellation and
//! compaction) against a `BTreeMap` model: timers pop in (deadline, scheduling) order, never
//! before their deadline, cancelled ones never, each exactly once (B15, B17, B18).
#![no_main]

use std::collections::{BTreeMap, HashMap};

use corio::__fuzz::{Key, TimerQueue};
use libfuzzer_sys::fuzz_target;

fn take<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = data.split_first_chunk::<N>()?;
    *data = rest;
    Some(*head)
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let mut q = TimerQueue::new();
    // (deadline, seq) -> id: the model of waiting timers.
    let mut model: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    // id -> (key, deadline, seq, state) ; state: 0 waiting, 1 fired, 2 released/cancelled
    let mut timers: HashMap<u64, (Key, u64, u64, u8)> = HashMap::new();
    let mut next_id = 0u64;
    let mut now = 0u64;
    while let Some([op]) = take::<1>(&mut data) {
        match op % 5 {
            // insert at now + delta (delta scale chosen by the op's high bits; may be huge)
            0 | 1 => {
                let Some(d) = take::<2>(&mut data) else { break };
                let delta = match op >> 6 {
                    0 => u64::from(d[0] % 4),
                    1 => u64::from(u16::from_le_bytes(d)),
                    2 => u64::from(u16::from_le_bytes(d)) << 20,
                    _ => u64::MAX - u64::from(d[0]),
                };
                let at = now.saturating_add(delta);
                let id = next_id;
                next_id += 1;
                let key = q.insert(at, id);
                model.insert((at, id), id);
                timers.insert(id, (key, at, id, 0));
            }
            // cancel / release an earlier timer
            2 => {
                let Some([i]) = take::<1>(&mut data) else {
                    break;
                };
                if next_id == 0 {
                    continue;
                }
                let id = u64::from(i) % next_id;
                let (key, at, seq, state) = timers[&id];
                let cancelled = q.remove(key);
                assert_eq!(
                    cancelled,
                    state == 0,
                    "remove of timer {id} in state {state}"
                );
                if state == 0 {
                    model.remove(&(at, seq));
                }
                timers.get_mut(&id).unwrap().3 = 2;
            }
            // advance the clock and pop everything due
            3 => {
                let Some(d) = take::<2>(&mut data) else { break };
                now = now.saturating_add(u64::from(u16::from_le_bytes(d)));
                while let Some(id) = q.pop_due(now) {
                    let (&(at, seq), &mid) = model
                        .iter()
                        .next()
                        .expect("popped a timer the model does not have");
                    assert_eq!(id, mid, "timer {id} popped out of order (expected {mid})");
                    assert!(
                        at <= now,
                        "timer {id} fired early: deadline {at} > now {now}"
                    );
                    model.remove(&(at, seq));
                    timers.get_mut(&id).unwrap().3 = 1;
                    assert_eq!(q.poll_key(timers[&id].0, id), Some(true));
                }
                if let Some((&(at, _), _)) = model.iter().next() {
                    assert!(
                        at > now,
                        "a due timer (deadline {at}, now {now}) was not popped"
                    );
                }
            }
            // observers
            _ => {
                assert_eq!(q.len(), model.len());
                let next = q.next_deadline_ns();
                let expect = model.keys().next().map(|&(at, _)| at);
                match (next, expect) {
                    (None, None) => {}
                    (Some(n), Some(e)) => {
                        // Far-future deadlines may be clamped to "never" (~30 years).
                        assert!(
                            n == e || (e > n && n >= 30 * 365 * 86_400 * 1_000_000_000 / 2),
                            "next deadline {n} vs model {e}"
                        );
                    }
                    other => panic!("next deadline mismatch {other:?}"),
                }
                for (id, &(key, _, _, state)) in &timers {
                    let expect = match state {
                        0 => Some(false),
                        1 => Some(true),
                        _ => None,
                    };
                    if state != 2 {
                        assert_eq!(q.poll_key(key, *id), expect);
                    }
                }
            }
        }
    }
    assert_eq!(q.len(), model.len());
});
