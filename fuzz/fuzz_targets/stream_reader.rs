//! Fuzzes `corio::streams::StreamReader` (readuntil / readline / readexactly) against a
//! plain `Vec<u8>` model under arbitrary chunking (B29, B30). The reader is fed with its
//! public `feed_data`/`feed_eof` (no socket needed); each read future is polled by hand
//! after every chunk, so its result is checked against the model's buffer at that moment:
//! a read must complete exactly when the model says it can, with the model's bytes.
#![no_main]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use corio::streams::{IncompleteReadError, StreamError, StreamReader};
use libfuzzer_sys::fuzz_target;

#[derive(Clone, Debug)]
enum Read {
    Until(Vec<u8>),
    Line,
    Exactly(usize),
}

#[derive(Debug, PartialEq, Eq)]
enum Out {
    Data(Vec<u8>),
    Incomplete(Vec<u8>),
    Overrun,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the read gives on `buf` (consuming from it), or None if it must still wait.
fn model(read: &Read, buf: &mut Vec<u8>, eof: bool, limit: usize) -> Option<Out> {
    match read {
        Read::Exactly(n) => {
            if buf.len() >= *n {
                Some(Out::Data(buf.drain(..*n).collect()))
            } else if eof {
                Some(Out::Incomplete(std::mem::take(buf)))
            } else {
                None
            }
        }
        Read::Until(_) | Read::Line => {
            let line = matches!(read, Read::Line);
            let sep: &[u8] = if let Read::Until(s) = read { s } else { b"\n" };
            match find(buf, sep) {
                Some(i) if i > limit => {
                    if line {
                        buf.drain(..i + 1);
                    }
                    Some(Out::Overrun)
                }
                Some(i) => Some(Out::Data(buf.drain(..i + sep.len()).collect())),
                None if buf.len() >= sep.len() && buf.len() + 1 - sep.len() > limit => {
                    if line {
                        buf.clear();
                    }
                    Some(Out::Overrun)
                }
                None if eof => {
                    let rest = std::mem::take(buf);
                    Some(if line {
                        Out::Data(rest)
                    } else {
                        Out::Incomplete(rest)
                    })
                }
                None => None,
            }
        }
    }
}

fn outcome(r: Result<Vec<u8>, StreamError>) -> Out {
    match r {
        Ok(v) => Out::Data(v),
        Err(StreamError::Incomplete(IncompleteReadError { partial, .. })) => {
            Out::Incomplete(partial)
        }
        Err(StreamError::LimitOverrun(_)) => Out::Overrun,
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if data.len() < n {
        return None;
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Some(head)
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let Some(&[l]) = take(&mut data, 1) else {
        return;
    };
    let limit = usize::from(l % 64) + 1;
    let mut reader = StreamReader::with_limit(limit);
    let feeder = reader.feeder();
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf: Vec<u8> = Vec::new();
    let mut eof = false;
    while let Some(&[op]) = take(&mut data, 1) {
        // Pick the read.
        let read = match op % 4 {
            0 => Read::Line,
            1 => Read::Exactly(usize::from(op >> 2) % 80),
            _ => {
                let n = usize::from(op >> 2) % 4 + 1;
                let Some(sep) = take(&mut data, n) else {
                    return;
                };
                // A small alphabet makes separators and near-misses common.
                Read::Until(sep.iter().map(|b| b'a' + b % 3).collect())
            }
        };
        let mut fut: Pin<Box<dyn Future<Output = Result<Vec<u8>, StreamError>> + '_>> = match &read
        {
            Read::Until(sep) => {
                let sep = sep.clone();
                let r = &mut reader;
                Box::pin(async move { r.readuntil(&sep).await })
            }
            Read::Line => Box::pin(reader.readline()),
            Read::Exactly(n) => Box::pin(reader.readexactly(*n)),
        };
        // Feed chunks until the read completes, or cancel it (drop) when the input says so.
        let mut done = false;
        loop {
            let expect = {
                let mut probe = buf.clone();
                model(&read, &mut probe, eof, limit).map(|o| (o, probe))
            };
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(r) => {
                    let got = outcome(r);
                    let (want, rest) = expect.unwrap_or_else(|| {
                        panic!("{read:?} completed with {got:?} but the model waits on {buf:?} (eof {eof})")
                    });
                    assert_eq!(got, want, "{read:?} on {buf:?} (eof {eof}, limit {limit})");
                    buf = rest;
                    done = true;
                    break;
                }
                Poll::Pending => {
                    assert!(
                        expect.is_none(),
                        "{read:?} waits but the model gives {expect:?} on {buf:?}"
                    );
                }
            }
            let Some(&[c]) = take(&mut data, 1) else {
                break;
            };
            match c % 8 {
                0 => break, // cancel: drop the pending read; nothing may be consumed
                1 if !eof => {
                    feeder.feed_eof();
                    eof = true;
                }
                _ if !eof => {
                    let n = usize::from(c >> 3) % 24 + 1;
                    let Some(chunk) = take(&mut data, n) else {
                        break;
                    };
                    let chunk: Vec<u8> = chunk
                        .iter()
                        .map(|b| if b & 0x80 != 0 { b'\n' } else { b'a' + b % 3 })
                        .collect();
                    feeder.feed_data(&chunk);
                    buf.extend_from_slice(&chunk);
                }
                _ => break,
            }
        }
        drop(fut);
        let _ = done;
        assert_eq!(
            reader.buffered(),
            buf.len(),
            "buffer length diverged from the model"
        );
        if eof && buf.is_empty() {
            assert!(reader.at_eof());
        }
    }
});
