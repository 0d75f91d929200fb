//! The loop's table of registered file descriptors and the readiness they reported.
//!
//! asyncio counterpart: `selector_events.py` (`_add_reader`, `_remove_reader`, the
//! `(reader, writer)` pair in each selector key). Layer 2: owned by the loop core; used by
//! corio's sockets ([`Registration`]) and by `add_reader`/`add_writer`/`sock_*`.
//!
//! Two kinds of entries share one slab:
//!
//! - **Owned sockets** (corio's `TcpStream`, `TcpListener`, ...) are registered once,
//!   edge-triggered, for reading and writing, and never modified until they close. Each event
//!   ORs its flags into the entry's cached `readiness` and wakes the parked reader and/or
//!   writer. An operation tries its syscall when the cached bit says ready and clears the bit
//!   when the OS answers `WouldBlock` (or a short read, see `clear_after_read`): zero
//!   `epoll_ctl` calls in steady state.
//! - **Raw fds** (asyncio's `add_reader`/`add_writer` callbacks and the `sock_*` operations on
//!   sockets corio does not own) are registered level-triggered with exactly the interest that
//!   has a callback or a parked waiter, like asyncio; when nothing is left the fd is
//!   unregistered, so a raw fd that the caller closes leaves nothing behind.
//!
//! Tokens carry the slot index in the low 32 bits and a generation in the high bits: an event
//! from a batch gathered before a slot was freed and reused is recognised and dropped (B03).

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::events::HandleDyn;
use crate::selector::{Event, Interest, Selector, Token, Trigger};

/// Readiness bits that let a reader try its syscall.
pub(crate) const READ_READY: u8 = Event::READABLE | Event::READ_CLOSED | Event::ERROR;
/// Readiness bits that let a writer try its syscall.
pub(crate) const WRITE_READY: u8 = Event::WRITABLE | Event::ERROR;

/// Which side of an fd an operation waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    fn mask(self) -> u8 {
        match self {
            Direction::Read => READ_READY,
            Direction::Write => WRITE_READY,
        }
    }
}

#[derive(Default)]
struct Entry {
    fd: RawFd,
    generation: u32,
    in_use: bool,
    /// Raw (level-triggered) entry: its interest follows its callbacks and waiters.
    raw: bool,
    /// The interest currently registered with the selector (raw entries only).
    registered: Option<Interest>,
    readiness: u8,
    reader: Option<Waker>,
    writer: Option<Waker>,
    reader_cb: Option<Rc<dyn HandleDyn>>,
    writer_cb: Option<Rc<dyn HandleDyn>>,
}

/// What one event asks the loop to do once the table is no longer borrowed.
#[derive(Default)]
pub(crate) struct Wakeups {
    pub(crate) wakers: [Option<Waker>; 2],
    pub(crate) callbacks: [Option<Rc<dyn HandleDyn>>; 2],
}

/// Identifies a live entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IoKey {
    index: u32,
    generation: u32,
}

impl IoKey {
    fn token(self) -> Token {
        Token(((self.generation as usize) << 32) | self.index as usize)
    }
}

#[derive(Default)]
pub(crate) struct IoTable {
    entries: Vec<Entry>,
    free: Vec<u32>,
    by_fd: HashMap<RawFd, u32>,
    next_generation: u32,
}

impl IoTable {
    fn alloc(&mut self, fd: RawFd, raw: bool, readiness: u8) -> IoKey {
        self.next_generation = self.next_generation.wrapping_add(1) & 0x7fff_ffff;
        let generation = self.next_generation;
        let entry = Entry {
            fd,
            generation,
            in_use: true,
            raw,
            readiness,
            ..Entry::default()
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = entry;
                i
            }
            None => {
                self.entries.push(entry);
                u32::try_from(self.entries.len() - 1).expect("more than 4 billion fds")
            }
        };
        IoKey { index, generation }
    }

    fn entry(&mut self, key: IoKey) -> Option<&mut Entry> {
        self.entries
            .get_mut(key.index as usize)
            .filter(|e| e.in_use && e.generation == key.generation)
    }

    fn release(&mut self, key: IoKey) -> Option<Entry> {
        let e = self.entry(key)?;
        let old = std::mem::take(e);
        if old.raw {
            self.by_fd.remove(&old.fd);
        }
        self.free.push(key.index);
        Some(old)
    }

    /// Registers an fd corio owns: edge-triggered, both directions, once.
    /// `readiness` is what to assume before the first event (a connected socket is assumed
    /// readable and writable, so the first operation just tries its syscall).
    pub(crate) fn register_owned(
        &mut self,
        selector: &dyn Selector,
        fd: RawFd,
        readiness: u8,
    ) -> io::Result<IoKey> {
        let key = self.alloc(fd, false, readiness);
        if let Err(e) = selector.register(fd, key.token(), Interest::BOTH, Trigger::Edge) {
            self.release(key);
            return Err(e);
        }
        Ok(key)
    }

    /// Unregisters an owned fd (before it is closed). Returns its parked wakers so the caller
    /// drops them outside the borrow.
    pub(crate) fn deregister_owned(&mut self, selector: &dyn Selector, key: IoKey) -> Wakeups {
        let mut out = Wakeups::default();
        if let Some(e) = self.release(key) {
            // ENOENT/EBADF only mean the kernel already forgot the fd; nothing to undo.
            let _ = selector.unregister(e.fd);
            out.wakers = [e.reader, e.writer];
            out.callbacks = [e.reader_cb, e.writer_cb];
        }
        out
    }

    /// Records an event and takes what must be woken.
    pub(crate) fn dispatch(&mut self, selector: &dyn Selector, event: &Event) -> Wakeups {
        let key = IoKey {
            index: event.token.0 as u32,
            generation: (event.token.0 >> 32) as u32,
        };
        let mut out = Wakeups::default();
        let Some(e) = self.entry(key) else {
            return out; // stale event for a freed or reused slot (B03)
        };
        e.readiness |= event.flags;
        if event.flags & READ_READY != 0 {
            out.wakers[0] = e.reader.take();
            // On an owned entry a parked reader takes precedence over the read callback: a
            // transport lets a stream reader receive straight into its own buffer (the
            // streams' direct read) and is not run for what that reader will read.
            if e.raw || out.wakers[0].is_none() {
                out.callbacks[0] = e.reader_cb.clone();
            }
        }
        if event.flags & WRITE_READY != 0 {
            out.wakers[1] = e.writer.take();
            out.callbacks[1] = e.writer_cb.clone();
        }
        if e.raw && (out.wakers[0].is_some() || out.wakers[1].is_some()) {
            // A level-triggered waiter was served: drop its interest or the fd reports forever.
            let _ = self.sync_raw(selector, key);
        }
        out
    }

    /// `Ready(Ok)` when the cached readiness allows `dir`; otherwise parks `cx`'s waker.
    /// `Ready(Err)` when the entry is gone (its loop was closed).
    pub(crate) fn poll_ready(
        &mut self,
        key: IoKey,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(e) = self.entry(key) else {
            // Deregistered: the loop was closed. No event will ever come, and trying the
            // syscall until it stops saying `WouldBlock` would spin.
            return Poll::Ready(Err(io::Error::other(
                "the event loop this socket was registered with is closed",
            )));
        };
        if e.readiness & dir.mask() != 0 {
            return Poll::Ready(Ok(()));
        }
        let slot = match dir {
            Direction::Read => &mut e.reader,
            Direction::Write => &mut e.writer,
        };
        match slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Forgets cached readiness for `dir` after the OS said `WouldBlock`.
    ///
    /// `ERROR` is forgotten too: a socket with a pending error reports it from the syscall
    /// before it would say `WouldBlock`, so `WouldBlock` means the error was consumed. Without
    /// this a non-fatal error (a UDP socket's ICMP "port unreachable", B09) stayed cached
    /// forever and every later `poll_io` spun on `WouldBlock`.
    pub(crate) fn clear_readiness(&mut self, key: IoKey, dir: Direction) {
        if let Some(e) = self.entry(key) {
            match dir {
                Direction::Read => e.readiness &= !(Event::READABLE | Event::ERROR),
                Direction::Write => e.readiness &= !(Event::WRITABLE | Event::ERROR),
            }
        }
    }

    /// What an operation does when the OS said `WouldBlock`: forget readiness for `dir`
    /// ([`clear_readiness`](IoTable::clear_readiness)), and after a **write** on an owned
    /// (edge-triggered) entry, re-arm it with `EPOLL_CTL_MOD`.
    ///
    /// Why the re-arm: a real `EAGAIN` on a write means the send buffer is full, the kernel
    /// marks the socket and sends an EPOLLOUT edge when space frees. A spurious one (seen
    /// under fault injection, `scripts/faults.sh`) leaves the socket writable with no edge to
    /// come, and the writer would wait forever. `MOD` re-evaluates readiness and queues an
    /// event if the fd is writable now. It costs one syscall per write `WouldBlock`, which
    /// steady state does not see: a partial write already forgets writability without
    /// trying again (`Registration::poll_write_io`). Reads are not re-armed: an accepted
    /// socket is assumed readable, so its first read often says `WouldBlock`, and a re-arm
    /// there would add a syscall to every connection.
    pub(crate) fn would_block(&mut self, selector: &dyn Selector, key: IoKey, dir: Direction) {
        self.clear_readiness(key, dir);
        if dir == Direction::Write
            && let Some(e) = self.entry(key)
            && !e.raw
        {
            // An error (ENOMEM, EBADF) leaves things as they were without the re-arm.
            let _ = selector.modify(e.fd, key.token(), Interest::BOTH, Trigger::Edge);
        }
    }

    /// Whether the cached readiness allows `dir`. Parks nothing: for callback-driven users
    /// (`Registration::try_io`). A deregistered key counts as ready: the caller then makes
    /// its syscall once and learns the fd's state from it (no retry loop, so no spin).
    pub(crate) fn is_ready(&mut self, key: IoKey, dir: Direction) -> bool {
        match self.entry(key) {
            Some(e) => e.readiness & dir.mask() != 0,
            None => true,
        }
    }

    /// Installs (or removes) the callback queued whenever an event for `dir` arrives on an
    /// owned (edge-triggered) entry: how transports are driven by loop callbacks instead of
    /// tasks. No selector call: the registration already covers both directions. Returns the
    /// old callback so the caller drops it outside the borrow.
    pub(crate) fn set_owned_callback(
        &mut self,
        key: IoKey,
        dir: Direction,
        cb: Option<Rc<dyn HandleDyn>>,
    ) -> Option<Rc<dyn HandleDyn>> {
        let e = self.entry(key)?;
        match dir {
            Direction::Read => std::mem::replace(&mut e.reader_cb, cb),
            Direction::Write => std::mem::replace(&mut e.writer_cb, cb),
        }
    }

    /// Whether an owned entry has a callback for `dir`.
    pub(crate) fn has_owned_callback(&mut self, key: IoKey, dir: Direction) -> bool {
        self.entry(key).is_some_and(|e| match dir {
            Direction::Read => e.reader_cb.is_some(),
            Direction::Write => e.writer_cb.is_some(),
        })
    }

    /// After a read that filled less than the buffer: the socket is drained, so forget
    /// readability and save the `read` that would only say `EAGAIN` (one syscall per round
    /// trip, as tokio does). Not when the peer closed or an error is pending: then the next
    /// read must run to report EOF or the error.
    pub(crate) fn clear_after_short_read(&mut self, key: IoKey) {
        if let Some(e) = self.entry(key) {
            if e.readiness & (Event::READ_CLOSED | Event::ERROR) == 0 {
                e.readiness &= !Event::READABLE;
            }
        }
    }

    /// Takes the parked reader's waker, if any (the caller drops it outside the borrow).
    pub(crate) fn take_reader(&mut self, key: IoKey) -> Option<Waker> {
        self.entry(key).and_then(|e| e.reader.take())
    }

    /// Whether the peer's side was reported closed.
    pub(crate) fn read_closed(&mut self, key: IoKey) -> bool {
        self.entry(key)
            .is_some_and(|e| e.readiness & Event::READ_CLOSED != 0)
    }

    // ---- raw fds: add_reader / add_writer / sock_* -------------------------------------

    fn raw_key(&mut self, fd: RawFd) -> IoKey {
        if let Some(&index) = self.by_fd.get(&fd) {
            let generation = self.entries[index as usize].generation;
            return IoKey { index, generation };
        }
        let key = self.alloc(fd, true, 0);
        self.by_fd.insert(fd, key.index);
        key
    }

    /// Makes the selector's interest for a raw entry match its callbacks and waiters;
    /// releases the entry when nothing is left.
    fn sync_raw(&mut self, selector: &dyn Selector, key: IoKey) -> io::Result<()> {
        let Some(e) = self.entry(key) else {
            return Ok(());
        };
        let mut want: Option<Interest> = None;
        if e.reader_cb.is_some() || e.reader.is_some() {
            want = Some(Interest::READABLE);
        }
        if e.writer_cb.is_some() || e.writer.is_some() {
            want = Some(want.map_or(Interest::WRITABLE, |i| i.add(Interest::WRITABLE)));
        }
        let fd = e.fd;
        let result = match (e.registered, want) {
            (None, None) => Ok(()),
            (Some(_), None) => {
                let _ = selector.unregister(fd);
                Ok(())
            }
            (None, Some(i)) => selector.register(fd, key.token(), i, Trigger::Level),
            (Some(old), Some(i)) if old == i => Ok(()),
            (Some(_), Some(i)) => {
                match selector.modify(fd, key.token(), i, Trigger::Level) {
                    // The fd was closed and its number reused behind our back: start afresh.
                    Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                        selector.register(fd, key.token(), i, Trigger::Level)
                    }
                    r => r,
                }
            }
        };
        match (&result, want) {
            (Ok(()), None) => {
                self.release(key);
            }
            (Ok(()), Some(i)) => {
                if let Some(e) = self.entry(key) {
                    e.registered = Some(i);
                }
            }
            (Err(_), _) => {
                if let Some(e) = self.entry(key) {
                    if e.registered.is_none() {
                        // Never made it into the selector: forget the entry entirely.
                        e.reader_cb = None;
                        e.writer_cb = None;
                        e.reader = None;
                        e.writer = None;
                        self.release(key);
                    }
                }
            }
        }
        result
    }

    /// Installs (or replaces) the callback for `dir` on a raw fd. Returns the old one.
    pub(crate) fn set_callback(
        &mut self,
        selector: &dyn Selector,
        fd: RawFd,
        dir: Direction,
        cb: Option<Rc<dyn HandleDyn>>,
    ) -> io::Result<Option<Rc<dyn HandleDyn>>> {
        if cb.is_none() && !self.by_fd.contains_key(&fd) {
            return Ok(None);
        }
        let key = self.raw_key(fd);
        let e = self.entry(key).expect("raw entry just found");
        let old = match dir {
            Direction::Read => std::mem::replace(&mut e.reader_cb, cb),
            Direction::Write => std::mem::replace(&mut e.writer_cb, cb),
        };
        self.sync_raw(selector, key)?;
        Ok(old)
    }

    /// Parks a waiter for `dir` on a raw fd (level-triggered, asyncio's per-operation
    /// `add_reader`). `Ready` once an event for `dir` came after the waiter was parked.
    pub(crate) fn poll_raw(
        &mut self,
        selector: &dyn Selector,
        fd: RawFd,
        dir: Direction,
        parked: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if *parked {
            // Dispatch took our waker (and may have released the entry): the event came.
            // Checked before `raw_key`, which would otherwise allocate a fresh entry for the
            // fd and leave it behind once this wait completes.
            let still_waiting = self.by_fd.get(&fd).is_some_and(|&index| {
                let e = &self.entries[index as usize];
                match dir {
                    Direction::Read => e.reader.is_some(),
                    Direction::Write => e.writer.is_some(),
                }
            });
            if !still_waiting {
                *parked = false;
                return Poll::Ready(Ok(()));
            }
        }
        let key = self.raw_key(fd);
        let e = self.entry(key).expect("raw entry just found");
        let slot = match dir {
            Direction::Read => &mut e.reader,
            Direction::Write => &mut e.writer,
        };
        match slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        *parked = true;
        if let Err(err) = self.sync_raw(selector, key) {
            *parked = false;
            return Poll::Ready(Err(err));
        }
        Poll::Pending
    }

    /// Withdraws a parked raw waiter (its future was dropped).
    pub(crate) fn cancel_raw(&mut self, selector: &dyn Selector, fd: RawFd, dir: Direction) {
        let Some(&index) = self.by_fd.get(&fd) else {
            return;
        };
        let key = IoKey {
            index,
            generation: self.entries[index as usize].generation,
        };
        if let Some(e) = self.entry(key) {
            match dir {
                Direction::Read => e.reader = None,
                Direction::Write => e.writer = None,
            }
        }
        let _ = self.sync_raw(selector, key);
    }

    /// Number of registered fds (for the loop's debug dump).
    pub(crate) fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.in_use).count()
    }

    /// For the loop dump (`EventLoop::dump`): each registered fd, whether it is one of
    /// corio's own (owned) sockets, and whether a reader / writer (task or callback) waits.
    pub(crate) fn describe(&self) -> Vec<(RawFd, bool, bool, bool)> {
        self.entries
            .iter()
            .filter(|e| e.in_use)
            .map(|e| {
                (
                    e.fd,
                    !e.raw,
                    e.reader.is_some() || e.reader_cb.is_some(),
                    e.writer.is_some() || e.writer_cb.is_some(),
                )
            })
            .collect()
    }

    /// Unregisters everything (loop close) and hands back what was parked.
    pub(crate) fn clear(&mut self, selector: &dyn Selector) -> Vec<Wakeups> {
        let mut out = Vec::new();
        for e in self.entries.drain(..) {
            if e.in_use {
                if e.raw && e.registered.is_some() {
                    let _ = selector.unregister(e.fd);
                }
                out.push(Wakeups {
                    wakers: [e.reader, e.writer],
                    callbacks: [e.reader_cb, e.writer_cb],
                });
            }
        }
        self.free.clear();
        self.by_fd.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::{EpollSelector, Events, PollingSelector};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// The flags of the events reported for `token` by a select that does not wait.
    fn events_for(selector: &dyn Selector, token: Token) -> Vec<u8> {
        let mut events = Events::with_capacity(16);
        selector.select(&mut events, Some(Duration::ZERO)).unwrap();
        events
            .iter()
            .filter(|e| e.token == token)
            .map(|e| e.flags)
            .collect()
    }

    /// `faults.sh` (issue 9): an injected EAGAIN on `sendto` left an edge-triggered socket
    /// writable with no edge to come, and the echo server's writer waited forever.
    #[test]
    fn a_write_that_would_block_re_arms_its_fd_so_a_spurious_eagain_cannot_stall() {
        let backends: [Box<dyn Selector>; 2] = [
            Box::new(EpollSelector::new().unwrap()),
            Box::new(PollingSelector::new().unwrap()),
        ];
        for selector in backends {
            let selector = &*selector;
            let (a, _b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let mut table = IoTable::default();
            let key = table
                .register_owned(selector, a.as_raw_fd(), Event::WRITABLE)
                .unwrap();
            // The registration's own edge: writable, nothing to read.
            let first = events_for(selector, key.token());
            assert!(first.iter().any(|f| f & Event::WRITABLE != 0), "{first:?}");
            assert!(
                events_for(selector, key.token()).is_empty(),
                "edge-triggered"
            );

            // A (spurious) WouldBlock on a write: the fd is writable, so an event must come.
            table.would_block(selector, key, Direction::Write);
            assert!(
                !table.is_ready(key, Direction::Write),
                "readiness forgotten"
            );
            let again = events_for(selector, key.token());
            assert!(
                again.iter().any(|f| f & Event::WRITABLE != 0),
                "{}: no event after the re-arm: the writer would wait forever",
                selector.name()
            );

            // Reads are not re-armed (an accepted socket's first read often says WouldBlock).
            table.would_block(selector, key, Direction::Read);
            assert!(events_for(selector, key.token()).is_empty());
            let _ = table.deregister_owned(selector, key);
        }
    }
}
