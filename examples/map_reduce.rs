//! Map-reduce word frequencies (book chapter 6, with a thread pool in place of processes):
//! generates a text file of `--size-mb` megabytes (default 200) in a temporary directory,
//! cuts it into chunks at word boundaries, counts the words of each chunk on a
//! `ThreadPoolExecutor` (map), merges each chunk's counts on the loop as soon as it is done
//! (reduce), and times that against one single-threaded pass over the same file. The two
//! results must agree; the top ten words are printed.
//!
//! Run: `cargo run --release --example map_reduce -- [--size-mb N] [--chunk-mb M]
//! [--workers W]` (defaults: 200 MB, 8 MB chunks, one worker per CPU). `--size-mb 5` runs in
//! a moment (the tests use it).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use corio::executor::ThreadPoolExecutor;

type Counts = HashMap<String, u64>;

struct Args {
    size_mb: u64,
    chunk_mb: u64,
    workers: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        size_mb: 200,
        chunk_mb: 8,
        workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: u64 = it
            .next()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| usage(&format!("{flag} needs a positive number")));
        match flag.as_str() {
            "--size-mb" => args.size_mb = value,
            "--chunk-mb" => args.chunk_mb = value,
            "--workers" => args.workers = value as usize,
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    args
}

fn usage(err: &str) -> ! {
    eprintln!("map_reduce: {err}");
    eprintln!("usage: map_reduce [--size-mb N] [--chunk-mb M] [--workers W]");
    std::process::exit(2);
}

/// A small deterministic generator (xorshift64*), so every run writes the same text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Writes `size` bytes of words drawn from a 2 000-word vocabulary, the frequent ones far more
/// often than the rare ones (roughly as in real text), in lines of about 70 characters.
fn generate(path: &Path, size: u64) -> io::Result<()> {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ba", "de", "fo", "gu", "ha", "ji", "pe",
        "zo",
    ];
    let words: Vec<String> = (0..2000u32)
        .map(|i| {
            let (a, b, c) = (i % 16, (i / 16) % 16, i / 256);
            let mut w = format!("{}{}", SYLLABLES[a as usize], SYLLABLES[b as usize]);
            if c > 0 {
                w.push_str(SYLLABLES[c as usize]);
            }
            w
        })
        .collect();
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut written, mut line) = (0u64, 0usize);
    while written < size {
        // Squaring a uniform number skews the pick toward the start of the vocabulary.
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let w = &words[((u * u * u) * words.len() as f64) as usize];
        let sep: &[u8] = if line + w.len() > 70 { b"\n" } else { b" " };
        out.write_all(w.as_bytes())?;
        out.write_all(sep)?;
        line = if sep == b"\n" { 0 } else { line + w.len() + 1 };
        written += w.len() as u64 + 1;
    }
    out.flush()
}

/// Counts the words of `text` (split at ASCII whitespace).
fn count_words(text: &[u8], counts: &mut Counts) {
    for word in text
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        let word = std::str::from_utf8(word).expect("the generated text is ASCII");
        match counts.get_mut(word) {
            Some(n) => *n += 1,
            None => {
                counts.insert(word.to_string(), 1);
            }
        }
    }
}

/// Chunk boundaries near every `chunk` bytes, each moved forward to just after a whitespace
/// byte so that no word is cut in two.
fn boundaries(file: &File, chunk: u64) -> io::Result<Vec<(u64, u64)>> {
    let size = file.metadata()?.len();
    let mut cuts = vec![0];
    let mut window = [0u8; 256];
    let mut at = chunk;
    while at < size {
        let n = file.read_at(&mut window, at)?;
        match window[..n].iter().position(|b| b.is_ascii_whitespace()) {
            Some(i) => {
                let cut = at + i as u64 + 1;
                if cut < size {
                    cuts.push(cut);
                }
                at = cut + chunk;
            }
            None => at += n.max(1) as u64, // no space within the window: look further on
        }
    }
    cuts.push(size);
    Ok(cuts.windows(2).map(|w| (w[0], w[1])).collect())
}

/// The map step: reads one chunk and counts its words (on a pool thread).
fn map_chunk(path: &Path, start: u64, end: u64) -> io::Result<Counts> {
    let file = File::open(path)?;
    let mut buf = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut buf, start)?;
    let mut counts = Counts::new();
    count_words(&buf, &mut counts);
    Ok(counts)
}

/// The single-threaded pass: the whole file, front to back, on one thread.
fn single_pass(path: &Path) -> io::Result<Counts> {
    let mut file = File::open(path)?;
    let mut counts = Counts::new();
    let mut buf = vec![0u8; 8 << 20];
    let mut carry = Vec::new();
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            count_words(&carry, &mut counts);
            return Ok(counts);
        }
        // Keep a word cut by the buffer's end for the next round.
        let data = &buf[..n];
        let cut = data
            .iter()
            .rposition(|b| b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        carry.extend_from_slice(&data[..cut]);
        count_words(&carry, &mut counts);
        carry.clear();
        carry.extend_from_slice(&data[cut..]);
    }
}

fn top(counts: &Counts, n: usize) -> Vec<(&str, u64)> {
    let mut v: Vec<(&str, u64)> = counts.iter().map(|(w, &c)| (w.as_str(), c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(n);
    v
}

async fn run(args: Args, dir: PathBuf) -> io::Result<()> {
    let path = Rc::new(dir.join("words.txt"));
    let size = args.size_mb << 20;

    let t = Instant::now();
    let p = path.to_path_buf();
    corio::to_thread(move || generate(&p, size))
        .await
        .expect("generate")?;
    println!(
        "generated {} MB of text in {:.2} s ({})",
        args.size_mb,
        t.elapsed().as_secs_f64(),
        path.display()
    );

    // Map on the pool, reduce on the loop as each chunk finishes.
    let t = Instant::now();
    let pool = ThreadPoolExecutor::with_name(args.workers, "map");
    let p = path.to_path_buf();
    let chunk = args.chunk_mb << 20;
    let chunks = corio::to_thread(move || boundaries(&File::open(&p)?, chunk))
        .await
        .expect("boundaries")?;
    let total = Rc::new(RefCell::new(Counts::new()));
    let reducers: Vec<_> = chunks
        .iter()
        .map(|&(start, end)| {
            let p = path.to_path_buf();
            let mapped = pool.submit(move || map_chunk(&p, start, end));
            let total = total.clone();
            corio::spawn(async move {
                let counts = mapped.await.expect("a map job panicked")?;
                let mut total = total.borrow_mut(); // the reduce step, on the loop thread
                for (word, n) in counts {
                    *total.entry(word).or_insert(0) += n;
                }
                Ok::<(), io::Error>(())
            })
        })
        .collect();
    for r in reducers {
        r.await.expect("a reduce task failed")?;
    }
    let parallel = t.elapsed();
    pool.shutdown(true);
    let total = Rc::try_unwrap(total)
        .expect("reducers are done")
        .into_inner();
    println!(
        "map-reduce:  {} chunks on {} threads in {:.2} s",
        chunks.len(),
        args.workers,
        parallel.as_secs_f64()
    );

    let t = Instant::now();
    let p = path.to_path_buf();
    let single = corio::to_thread(move || single_pass(&p))
        .await
        .expect("single pass")?;
    let serial = t.elapsed();
    println!("single pass: 1 thread in {:.2} s", serial.as_secs_f64());
    println!(
        "speed-up {:.2}x; {} distinct words, {} in all",
        serial.as_secs_f64() / parallel.as_secs_f64().max(1e-9),
        total.len(),
        total.values().sum::<u64>()
    );
    if total != single {
        return Err(io::Error::other("the two counts differ"));
    }
    println!("results agree; the ten most frequent words:");
    for (word, n) in top(&total, 10) {
        println!("  {word:<8} {n}");
    }
    Ok(())
}

fn main() {
    let args = parse_args();
    let dir = std::env::temp_dir().join(format!("corio-map-reduce-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("cannot create the temporary directory");
    let result = corio::run(run(args, dir.clone()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        eprintln!("map_reduce: {e}");
        std::process::exit(1);
    }
}
