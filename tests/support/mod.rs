//! Helpers shared by the integration tests that run example binaries or outside tools
//! or need a bound on hangs (`mod support;` in each; not every test file uses every helper).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// `target/<profile>/examples/<name>`, found from this test binary in
/// `target/<profile>/deps/`. `cargo test` builds the examples first; when one is missing
/// (`cargo test --test NAME` alone), the test fails rather than passing without checking.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples (or run `cargo build --examples`)",
        path.display()
    );
    path
}

/// Whether the `CI` environment variable says this is a CI run (`CI=true`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The test cannot run here (`why`): a failure under CI, which installs what the tests
/// need (`.ci/run`), and a printed skip note elsewhere. Returns only when skipping is allowed.
pub fn skip_or_fail_under_ci(why: &str) {
    assert!(
        !under_ci(),
        "{why}, but CI is set: CI installs what this test needs, so it must run there, not skip"
    );
    eprintln!("note: {why}: skipping");
}

/// Whether python3 runs here; when it does not, [`skip_or_fail_under_ci`].
pub fn python3_available() -> bool {
    let probe = Command::new("python3").arg("--version").output();
    if probe.as_ref().is_ok_and(|out| out.status.success()) {
        return true;
    }
    skip_or_fail_under_ci(&format!("python3 does not run ({probe:?})"));
    false
}

/// Factor for every time bound of the watchdogs (`CORIO_TEST_TIME_SCALE`, default 1):
/// `scripts/memcheck.sh` sets it, as valgrind runs the tests some 20-50 times slower.
pub fn time_scale() -> u32 {
    std::env::var("CORIO_TEST_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&k| k >= 1)
        .unwrap_or(1)
}

/// Makes a hang a failure. A `wait_for` inside the loop cannot end a hang in which the loop
/// itself never wakes (a lost cross-thread wake-up leaves it in `epoll_wait(-1)`), so a
/// thread outside it watches: if no [`progress`](Watchdog::progress) is reported for `limit`
/// (× [`time_scale`]) before the guard is dropped, it prints what was running to stderr and
/// aborts the whole test process (SIGABRT: `cargo test` fails, never hangs).
pub struct Watchdog {
    tx: Option<std::sync::mpsc::Sender<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn watchdog(what: &str, limit: Duration) -> Watchdog {
    let limit = limit * time_scale();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut label = what.to_string();
    let thread = std::thread::spawn(move || {
        loop {
            match rx.recv_timeout(limit) {
                Ok(l) => label = l, // progress: a new `limit` from now
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    eprintln!(
                        "WATCHDOG: {label}: no progress for {limit:?}, the test hangs; \
                         aborting the test process"
                    );
                    std::process::abort();
                }
            }
        }
    });
    Watchdog {
        tx: Some(tx),
        thread: Some(thread),
    }
}

impl Watchdog {
    /// Restarts the bound from now, with `label` as what is running.
    pub fn progress(&self, label: String) {
        let _ = self.tx.as_ref().unwrap().send(label);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.tx.take()); // disconnects: the watcher returns
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
