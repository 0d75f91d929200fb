//! The parent's ends of a child's stdio pipes: [`PipeReader`] and [`PipeWriter`].
//!
//! asyncio counterpart: the `StreamReader`/`StreamWriter` pair that `asyncio.subprocess`
//! builds over `_UnixReadPipeTransport`/`_UnixWritePipeTransport` (`unix_events.py`), cut
//! down to what a child's pipes need. Layer 4: built on [`crate::net::Registration`] like the
//! TCP stream; used by [`super::Process`].
//!
//! Each end is non-blocking and registered with the loop **once**, edge-triggered, exactly
//! as a [`TcpStream`](crate::net::TcpStream) is (see [`crate::net`], "How an operation runs"):
//! an operation tries its syscall when the cached readiness allows it and parks on
//! `WouldBlock`. The child's ends stay blocking (`O_NONBLOCK` belongs to the open file
//! description, so only the parent's ends get it).

use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::task::{Context, Poll};

use crate::net::Registration;
use crate::selector::Event;

/// How much `read_to_end` and `readline` ask the kernel for at once (a pipe holds 64 KiB).
const CHUNK: usize = 64 * 1024;

/// The reading end of a pipe from a child (its stdout or stderr), on the loop.
///
/// EOF (`Ok(0)`) comes once the child, and every process it passed the pipe to, has closed
/// its end, usually by exiting. At most one task should read at a time.
pub struct PipeReader {
    reg: Registration,
    file: File,
    /// Bytes read past the end of a line by [`readline`](PipeReader::readline).
    pending: RefCell<Vec<u8>>,
}

impl PipeReader {
    /// Takes `fd` (made non-blocking) and registers it with the running loop.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<PipeReader> {
        crate::sys::set_nonblocking(fd.as_fd(), true)?;
        let reg = Registration::new(fd.as_raw_fd(), Event::READABLE)?;
        Ok(PipeReader {
            reg,
            file: File::from(fd),
            pending: RefCell::new(Vec::new()),
        })
    }

    /// Reads into `buf`; `Ok(0)` is EOF (or an empty `buf`).
    ///
    /// *Cancel safety:* cancel-safe: bytes are consumed only when it returns them.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// The poll form of [`read`](PipeReader::read).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        {
            let mut pending = self.pending.borrow_mut();
            if !pending.is_empty() {
                let n = pending.len().min(buf.len());
                buf[..n].copy_from_slice(&pending[..n]);
                pending.drain(..n);
                return Poll::Ready(Ok(n));
            }
        }
        let len = buf.len();
        self.reg.poll_read_io(cx, len, || (&self.file).read(buf))
    }

    /// Reads until EOF, appending to `buf`; returns how many bytes were appended.
    ///
    /// *Cancel safety:* if the future is dropped, the bytes read so far are in `buf` (and
    /// nothing else is), and reading can resume with another call.
    pub async fn read_to_end(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let start = buf.len();
        poll_fn(|cx| {
            loop {
                let len = buf.len();
                buf.resize(len + CHUNK, 0);
                let r = self.poll_read(cx, &mut buf[len..]);
                // Never leave the zeroed tail across a suspension point.
                let got = match &r {
                    Poll::Ready(Ok(n)) => *n,
                    _ => 0,
                };
                buf.truncate(len + got);
                match r {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Ok(buf.len() - start)),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    }

    /// Reads one line, up to and including `\n` (asyncio's `readline`). At EOF returns what
    /// is left, possibly without `\n`, and then an empty vector.
    ///
    /// *Cancel safety:* cancel-safe: a partial line stays buffered for the next call.
    pub async fn readline(&self) -> io::Result<Vec<u8>> {
        poll_fn(|cx| {
            loop {
                let mut pending = self.pending.borrow_mut();
                if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                    let rest = pending.split_off(i + 1);
                    return Poll::Ready(Ok(std::mem::replace(&mut *pending, rest)));
                }
                let len = pending.len();
                pending.resize(len + CHUNK, 0);
                let r = self
                    .reg
                    .poll_read_io(cx, CHUNK, || (&self.file).read(&mut pending[len..]));
                let got = match &r {
                    Poll::Ready(Ok(n)) => *n,
                    _ => 0,
                };
                pending.truncate(len + got);
                match r {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Ok(std::mem::take(&mut *pending))),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    }
}

impl AsRawFd for PipeReader {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for PipeReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl fmt::Debug for PipeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeReader")
            .field("fd", &self.file.as_raw_fd())
            .field("buffered", &self.pending.borrow().len())
            .finish()
    }
}

/// The writing end of a pipe to a child (its stdin), on the loop.
///
/// Dropping it (or [`close`](PipeWriter::close)) closes the pipe: the child reads EOF.
/// Writing after the child closed its end fails with `BrokenPipe` (Rust programs ignore
/// `SIGPIPE`, so no signal kills the process).
pub struct PipeWriter {
    reg: Registration,
    file: File,
}

impl PipeWriter {
    /// Takes `fd` (made non-blocking) and registers it with the running loop.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<PipeWriter> {
        crate::sys::set_nonblocking(fd.as_fd(), true)?;
        let reg = Registration::new(fd.as_raw_fd(), Event::WRITABLE)?;
        Ok(PipeWriter {
            reg,
            file: File::from(fd),
        })
    }

    /// Writes some of `buf`, returning how much was written.
    ///
    /// *Cancel safety:* cancel-safe: nothing is written unless it returns.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// The poll form of [`write`](PipeWriter::write).
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.reg
            .poll_write_io(cx, buf.len(), || (&self.file).write(buf))
    }

    /// Writes all of `buf` (asyncio's `write` followed by `drain`).
    ///
    /// *Cancel safety:* if the future is dropped part-way, an unknown prefix of `buf` has
    /// been written.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Closes the pipe, so the child reads EOF (asyncio's `stdin.close()`); the same as
    /// dropping it.
    pub fn close(self) {}
}

impl AsRawFd for PipeWriter {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for PipeWriter {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl fmt::Debug for PipeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeWriter")
            .field("fd", &self.file.as_raw_fd())
            .finish()
    }
}
