//! Streams (issue 5): readuntil/readline under every chunking (B29), the limit (B30),
//! readexactly, drain and flow control (B08), half-close, cancel safety.

use std::cell::Cell;
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use corio::net::TcpStream;
use corio::streams::{
    self, IncompleteReadError, StreamError, StreamReader, StreamWriter, open_connection,
    start_server,
};

/// What readuntil gives, modelled on the whole input at once.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Line(Vec<u8>),
    Incomplete(Vec<u8>),
    Overrun,
}

/// The model: repeated `readuntil(sep)` over `data` with `limit`, independent of chunking.
fn model(data: &[u8], sep: &[u8], limit: usize) -> Vec<Item> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        match rest.windows(sep.len()).position(|w| w == sep) {
            Some(i) if i > limit => {
                out.push(Item::Overrun);
                return out;
            }
            Some(i) => {
                out.push(Item::Line(rest[..i + sep.len()].to_vec()));
                rest = &rest[i + sep.len()..];
            }
            None => {
                if rest.len() >= sep.len() && rest.len() + 1 - sep.len() > limit {
                    out.push(Item::Overrun);
                } else {
                    out.push(Item::Incomplete(rest.to_vec()));
                }
                return out;
            }
        }
    }
}

/// Feeds `chunks` one per loop turn while a task runs readuntil (or readline) to the end:
/// the same read future sees the data arrive piece by piece.
async fn run_chunks(chunks: Vec<Vec<u8>>, sep: Vec<u8>, limit: usize, lines: bool) -> Vec<Item> {
    let mut reader = StreamReader::with_limit(limit);
    let feeder = reader.feeder();
    let task = corio::spawn(async move {
        let mut out = Vec::new();
        loop {
            let r = if lines {
                reader.readline().await
            } else {
                reader.readuntil(&sep).await
            };
            match r {
                Ok(line) if lines && !line.ends_with(b"\n") => {
                    out.push(Item::Incomplete(line));
                    return out;
                }
                Ok(line) => out.push(Item::Line(line)),
                Err(StreamError::Incomplete(IncompleteReadError { partial, expected })) => {
                    assert_eq!(expected, None);
                    out.push(Item::Incomplete(partial));
                    return out;
                }
                Err(StreamError::LimitOverrun(_)) => {
                    out.push(Item::Overrun);
                    return out;
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    for c in chunks {
        corio::yield_now().await;
        feeder.feed_data(&c);
    }
    corio::yield_now().await;
    feeder.feed_eof();
    task.await.unwrap()
}

/// Splits `data` at the cut positions given by the bits of `mask`.
fn chunk_by_mask(data: &[u8], mask: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..data.len() {
        if mask & (1 << (i - 1)) != 0 {
            out.push(data[start..i].to_vec());
            start = i;
        }
    }
    out.push(data[start..].to_vec());
    out
}

/// readline's view of the model: a partial last line is returned as a line.
fn model_lines(data: &[u8], limit: usize) -> Vec<Item> {
    let mut m = model(data, b"\n", limit);
    if let Some(Item::Incomplete(p)) = m.last_mut() {
        let p = std::mem::take(p);
        m.pop();
        m.push(Item::Incomplete(p));
    }
    m
}

/// What one `readline` call gives: a line (the partial last one at EOF, empty at the very
/// end) or a limit error with its `consumed`.
#[derive(Debug, PartialEq, Eq)]
enum ReadlineItem {
    Line(Vec<u8>),
    Overrun(usize),
}

/// asyncio's `readline` (CPython `streams.py`), simulated: `chunks` arrive one at a time and
/// the reader takes all it can after each arrival. Over the limit, `readuntil` raises
/// `LimitOverrunError(consumed)`: for a `\n` found past the limit, `consumed` is its index;
/// for more than `limit` bytes without one (checked before EOF is), everything buffered.
/// readline then drops the line through its `\n` if that is at `consumed`, else the whole
/// buffer, and raises; the caller reads on, until the empty line at EOF.
fn asyncio_readlines(chunks: &[Vec<u8>], limit: usize) -> Vec<ReadlineItem> {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    // Returns true at the very end (the empty line at EOF).
    let mut take_all = |buf: &mut Vec<u8>, eof: bool| loop {
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) if i > limit => {
                out.push(ReadlineItem::Overrun(i));
                buf.drain(..=i);
            }
            Some(i) => out.push(ReadlineItem::Line(buf.drain(..=i).collect())),
            None if buf.len() > limit => {
                out.push(ReadlineItem::Overrun(buf.len()));
                buf.clear();
            }
            None if eof => {
                let end = buf.is_empty();
                out.push(ReadlineItem::Line(std::mem::take(buf)));
                if end {
                    return true;
                }
            }
            None => return false,
        }
    };
    for c in chunks {
        buf.extend_from_slice(c);
        take_all(&mut buf, false);
    }
    assert!(take_all(&mut buf, true));
    out
}

/// Feeds `chunks` one per loop turn while a task calls `readline` until the empty line at
/// EOF, carrying on after each limit error.
async fn readlines_to_eof(chunks: Vec<Vec<u8>>, limit: usize) -> Vec<ReadlineItem> {
    let mut reader = StreamReader::with_limit(limit);
    let feeder = reader.feeder();
    let task = corio::spawn(async move {
        let mut out = Vec::new();
        while out.len() < 1000 {
            match reader.readline().await {
                Ok(line) if line.is_empty() => {
                    out.push(ReadlineItem::Line(line));
                    return out;
                }
                Ok(line) => out.push(ReadlineItem::Line(line)),
                Err(StreamError::LimitOverrun(e)) => out.push(ReadlineItem::Overrun(e.consumed)),
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no end after 1000 readlines: {out:?}");
    });
    for c in chunks {
        corio::yield_now().await;
        feeder.feed_data(&c);
    }
    corio::yield_now().await;
    feeder.feed_eof();
    task.await.unwrap()
}

#[test]
fn readuntil_every_chunking_small_cases() {
    // Every input of length <= 7 over {a, \r, \n}, every chunking, separators "\n" and
    // "\r\n", limits 2 and 64: the same answer as the model, whatever the chunking.
    corio::run(async {
        let alphabet = [b'a', b'\r', b'\n'];
        let mut cases = 0;
        let mut readline_cases = 0;
        for len in 0..=6usize {
            let combos = 3usize.pow(len as u32);
            for code in 0..combos {
                let mut c = code;
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = alphabet[c % 3];
                        c /= 3;
                        b
                    })
                    .collect();
                let cuts = if len > 1 { 1u32 << (len - 1) } else { 1 };
                for sep in [&b"\n"[..], &b"\r\n"[..]] {
                    for limit in [2usize, 64] {
                        let want = model(&data, sep, limit);
                        // All chunkings for short inputs; a sample for the longest.
                        let step = 1;
                        for mask in (0..cuts).step_by(step) {
                            let got =
                                run_chunks(chunk_by_mask(&data, mask), sep.to_vec(), limit, false)
                                    .await;
                            assert_eq!(
                                got, want,
                                "data {data:?} sep {sep:?} limit {limit} mask {mask:b}"
                            );
                            cases += 1;
                        }
                    }
                }
                // readline, all chunkings, default-ish limit.
                for mask in 0..cuts {
                    let got =
                        run_chunks(chunk_by_mask(&data, mask), b"\n".to_vec(), 64, true).await;
                    assert_eq!(
                        got,
                        model_lines(&data, 64),
                        "readline {data:?} mask {mask:b}"
                    );
                }
                // readline over its limit, all chunkings, read on to EOF after each error:
                // the same as asyncio's readline given the same arrivals.
                for limit in [2usize, 3] {
                    for mask in 0..cuts {
                        let chunks = chunk_by_mask(&data, mask);
                        let want = asyncio_readlines(&chunks, limit);
                        let got = readlines_to_eof(chunks, limit).await;
                        assert_eq!(got, want, "readline {data:?} limit {limit} mask {mask:b}");
                        readline_cases += 1;
                    }
                }
            }
        }
        assert!(cases > 5_000, "{cases} cases");
        assert!(readline_cases > 5_000, "{readline_cases} readline cases");
    });
}

/// A small deterministic PRNG (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn b29_readuntil_random_chunkings_property() {
    corio::run(async {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..400 {
            let seplen = 1 + rng.below(4);
            let sep: Vec<u8> = (0..seplen).map(|_| b"xy\n"[rng.below(3)]).collect();
            let len = rng.below(200);
            let data: Vec<u8> = (0..len).map(|_| b"xyz\n"[rng.below(4)]).collect();
            let limit = [1usize, 3, 8, 40, 1000][rng.below(5)];
            let want = model(&data, &sep, limit);
            for _ in 0..5 {
                let mut chunks = Vec::new();
                let mut i = 0;
                while i < data.len() {
                    let n = 1 + rng.below(12);
                    chunks.push(data[i..(i + n).min(data.len())].to_vec());
                    i += n;
                }
                let got = run_chunks(chunks, sep.clone(), limit, false).await;
                assert_eq!(
                    got, want,
                    "round {round}: data {data:?} sep {sep:?} limit {limit}"
                );
            }
        }
    });
}

/// One `readline`, polled once per loop turn and dropped while pending (it is cancel-safe:
/// a dropped read consumes nothing), so that `buffered()` can be sampled each time the
/// reader is waiting for more data.
async fn readline_sampling(
    r: &mut StreamReader,
    max: &mut usize,
    samples: &mut usize,
) -> Result<Vec<u8>, StreamError> {
    loop {
        let polled = {
            let mut fut = std::pin::pin!(r.readline());
            std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await
        };
        match polled {
            std::task::Poll::Ready(res) => return res,
            std::task::Poll::Pending => {
                *max = (*max).max(r.buffered());
                *samples += 1;
                corio::yield_now().await;
            }
        }
    }
}

#[test]
fn b30_overlong_line_gives_limit_error_with_bounded_memory() {
    // A peer sends 10 MiB without a newline: readline fails at the limit, again and again
    // (B30). The memory: an overrun without a newline reports in `consumed` everything the
    // reader held when it gave up, so the largest `consumed` is the largest buffer; it must
    // stay within the pause threshold (2 x limit) plus one read. While readline waits for
    // more data, the buffer holds at most the limit (more would have been an overrun).
    corio::run(async {
        let server = streams::start_server_with(
            |mut r: StreamReader, w: StreamWriter| async move {
                let (mut waiting_max, mut samples, mut errors, mut held_max) = (0, 0, 0, 0);
                loop {
                    match readline_sampling(&mut r, &mut waiting_max, &mut samples).await {
                        Ok(l) if l.is_empty() => break,
                        Ok(_) => {}
                        Err(StreamError::LimitOverrun(e)) => {
                            errors += 1;
                            held_max = held_max.max(e.consumed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                w.write(format!("{errors} {held_max} {waiting_max} {samples}\n").as_bytes());
            },
            "127.0.0.1:0",
            &corio::server::ServerOptions {
                limit: 4096,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let c = TcpStream::connect(server.local_addr().unwrap())
            .await
            .unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..10 {
            c.write_all(&chunk).await.unwrap();
        }
        c.shutdown(Shutdown::Write).unwrap();
        let mut buf = vec![0u8; 100];
        let mut got = Vec::new();
        loop {
            match c.read(&mut buf).await.unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        let s = String::from_utf8(got).unwrap();
        let v: Vec<usize> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
        let [errors, held_max, waiting_max, samples] = v[..] else {
            panic!("{s:?}")
        };
        assert!(errors > 100, "{errors} limit errors");
        assert!(held_max > 4096, "an overrun holds more than the limit");
        assert!(
            held_max <= 2 * 4096 + corio::transports::READ_SIZE,
            "the reader held {held_max} bytes"
        );
        assert!(samples > 10, "only {samples} samples while waiting");
        assert!(
            waiting_max <= 4096,
            "{waiting_max} bytes held while waiting"
        );
    });
}

#[test]
fn b30_overlong_line_fed_in_steps_is_dropped_at_the_limit_not_buffered() {
    // No socket, no flow control to hide an unbounded buffer: 1 MiB without a newline fed
    // in 1000-byte steps while readline waits; sampled after every step, the buffer never
    // holds more than the limit plus one step, and each overrun drops what it held.
    corio::run(async {
        let limit = 4096;
        let mut r = StreamReader::with_limit(limit);
        let f = r.feeder();
        let step = vec![b'x'; 1000];
        let (mut max, mut errors, mut waiting) = (0, 0, 0);
        for _ in 0..1024 {
            f.feed_data(&step);
            let polled = {
                let mut fut = std::pin::pin!(r.readline());
                std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await
            };
            match polled {
                std::task::Poll::Pending => waiting += 1,
                std::task::Poll::Ready(Err(StreamError::LimitOverrun(e))) => {
                    assert!(e.consumed > limit, "{}", e.consumed);
                    errors += 1;
                }
                std::task::Poll::Ready(other) => panic!("{other:?}"),
            }
            max = max.max(r.buffered());
        }
        assert!(max <= limit + step.len(), "buffered up to {max}");
        // An overrun at every fifth step: 1 MiB / (4 KiB + 1000) , all the rest waited.
        assert!(
            errors >= 1024 * 1000 / (limit + step.len()),
            "{errors} errors"
        );
        assert_eq!(errors + waiting, 1024);
        // The line that finally ends is read from after the last drop, within the limit.
        f.feed_data(b"tail\nnext\n");
        let line = r.readline().await;
        assert!(
            matches!(&line, Ok(l) if l.ends_with(b"tail\n") && l.len() <= limit + 5),
            "{line:?}"
        );
        assert_eq!(r.readline().await.unwrap(), b"next\n");
    });
}

#[test]
fn readuntil_overrun_keeps_data_and_readexactly_partial() {
    corio::run(async {
        let mut r = StreamReader::with_limit(4);
        r.feed_data(b"abcdefgh;rest");
        let Err(StreamError::LimitOverrun(e)) = r.readuntil(b";").await else {
            panic!()
        };
        assert_eq!(e.consumed, 8);
        assert_eq!(r.buffered(), 13, "left in the buffer");
        assert_eq!(r.readexactly(9).await.unwrap(), b"abcdefgh;");
        r.feed_eof();
        let Err(StreamError::Incomplete(e)) = r.readexactly(10).await else {
            panic!()
        };
        assert_eq!((e.partial.as_slice(), e.expected), (&b"rest"[..], Some(10)));
        assert!(r.at_eof());
        assert_eq!(r.read(10).await.unwrap(), b"");
        let io: std::io::Error = StreamError::Incomplete(e).into();
        assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
    });
}

#[test]
fn reads_are_cancel_safe() {
    // A read that is dropped while pending (a cancelled task, a lost select, a timeout)
    // consumes nothing: the next read sees every byte.
    corio::run(async {
        let mut r = StreamReader::new();
        let f = r.feeder();
        f.feed_data(b"hel");
        for _ in 0..3 {
            let mut fut = std::pin::pin!(r.readline());
            let pending = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(fut.as_mut().poll(cx).is_pending())
            })
            .await;
            assert!(pending);
        }
        {
            let mut fut = std::pin::pin!(r.readexactly(10));
            let pending = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(fut.as_mut().poll(cx).is_pending())
            })
            .await;
            assert!(pending);
        }
        f.feed_data(b"lo\r");
        {
            let mut fut = std::pin::pin!(r.readuntil(b"\r\n"));
            let pending = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(fut.as_mut().poll(cx).is_pending())
            })
            .await;
            assert!(pending);
        }
        f.feed_data(b"\n");
        assert_eq!(r.readuntil(b"\r\n").await.unwrap(), b"hello\r\n");
    });
}

async fn echo_streams(mut r: StreamReader, w: StreamWriter) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read_into(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                w.write(&buf[..n]);
                if w.drain().await.is_err() {
                    break;
                }
            }
        }
    }
}

#[test]
fn half_close_streams_mode() {
    corio::run(async {
        let server = start_server(echo_streams, "127.0.0.1:0").await.unwrap();
        let (mut r, w) = open_connection(server.local_addr().unwrap()).await.unwrap();
        let data: Vec<u8> = (0..(1 << 20)).map(|i| (i % 253) as u8).collect();
        let d2 = data.clone();
        let w = Rc::new(w);
        let w2 = w.clone();
        let sender = corio::spawn(async move {
            for c in d2.chunks(100_000) {
                w2.write(c);
                w2.drain().await.unwrap();
            }
            w2.write_eof();
        });
        let got = r.read_to_end().await.unwrap();
        sender.await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data);
        assert!(r.at_eof());
        w.close();
        w.wait_closed().await.unwrap();
    });
}

#[test]
fn drain_bounds_the_buffer_and_wakes_every_waiter() {
    corio::run(async {
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (_r, w) = open_connection(addr).await.unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        let w = Rc::new(w);
        let max = Rc::new(Cell::new(0));
        let chunk = vec![7u8; 16 * 1024];
        // The peer does not read: write+drain blocks once the buffer passes high-water.
        let (w2, m2, c2) = (w.clone(), max.clone(), chunk.clone());
        let writer = corio::spawn(async move {
            for _ in 0..(32 << 20) / c2.len() {
                w2.write(&c2);
                m2.set(m2.get().max(w2.transport().get_write_buffer_size()));
                w2.drain().await.unwrap();
            }
        });
        corio::sleep(Duration::from_millis(100)).await;
        assert!(
            !writer.done(),
            "drain must wait for a peer that does not read"
        );
        assert!(
            max.get() <= 64 * 1024 + chunk.len(),
            "buffered {}",
            max.get()
        );
        // Two more tasks waiting in drain at once (gh-74116): all are woken.
        let w3 = w.clone();
        let extra = corio::spawn(async move { w3.drain().await });
        let w4 = w.clone();
        let extra2 = corio::spawn(async move { w4.drain().await });
        corio::yield_now().await;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        while total < 32 << 20 {
            total += peer.read(&mut buf).await.unwrap();
        }
        writer.await.unwrap();
        extra.await.unwrap().unwrap();
        extra2.await.unwrap().unwrap();
        assert!(max.get() <= 64 * 1024 + chunk.len());
    });
}

#[test]
fn drain_reports_a_closed_peer() {
    corio::run(async {
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (_r, w) = open_connection(addr).await.unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        socket2::SockRef::from(&peer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(peer); // RST
        let mut failed = None;
        for _ in 0..1000 {
            w.write(&[0u8; 64 * 1024]);
            if let Err(e) = w.drain().await {
                failed = Some(e);
                break;
            }
            corio::sleep(Duration::from_millis(1)).await;
        }
        let e = failed.expect("drain must report the lost connection");
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        );
        assert!(w.wait_closed().await.is_err());
    });
}

#[test]
fn writer_extra_info_and_drop_closes() {
    corio::run(async {
        let seen = Rc::new(Cell::new(false));
        let s2 = seen.clone();
        let server = start_server(
            move |mut r: StreamReader, w: StreamWriter| {
                let s2 = s2.clone();
                async move {
                    assert!(w.peername().is_some());
                    assert!(w.can_write_eof());
                    let line = r.readline().await.unwrap();
                    w.writelines(&[&b"you said: "[..], &line]);
                    s2.set(true);
                    // w dropped here: flushed, then closed.
                }
            },
            "127.0.0.1:0",
        )
        .await
        .unwrap();
        let (mut r, w) = open_connection(server.local_addr().unwrap()).await.unwrap();
        assert_eq!(
            w.peername().and_then(|a| a.as_inet()),
            Some(server.local_addr().unwrap())
        );
        w.write(b"hi\n");
        assert_eq!(r.readline().await.unwrap(), b"you said: hi\n");
        assert_eq!(
            r.readline().await.unwrap(),
            b"",
            "EOF: the writer was dropped"
        );
        assert!(seen.get());
    });
}
