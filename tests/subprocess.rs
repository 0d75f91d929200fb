//! Child processes: many at once with every byte read, reaping (pidfd and SIGCHLD), no zombie,
//! no fd leak, fd hygiene in the child, `communicate` without deadlock, signals, orphans.
//!
//! The tests take one lock: the zombie scan and the fd count look at the whole process.

use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corio::subprocess::{ChildWatcher, Stdio, create_subprocess_exec, create_subprocess_shell};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// This process's open fds, each with what it points to.
fn open_fds() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).map(|p| p.display().to_string());
            (
                e.file_name().to_string_lossy().into_owned(),
                target.unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

/// [`open_fds`] once no loop's epoll fd is left. A waker that another thread (the SIGCHLD
/// watcher) drops a moment after a loop closed keeps that loop's epoll and eventfd open until
/// then; no loop runs between the tests here (they take the lock).
fn settled_fds() -> Vec<(String, String)> {
    let t0 = Instant::now();
    loop {
        let fds = open_fds();
        if !fds.iter().any(|(_, t)| t.contains("eventpoll")) {
            return fds;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "a loop is still open: {fds:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Our children that are zombies (state `Z` in `/proc/PID/stat`, parent us).
fn zombies() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) S ppid ...": comm may hold spaces, so split after the last ')'.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let mut f = rest.split(' ');
        let state = f.next().unwrap();
        let ppid: u32 = f.next().unwrap().parse().unwrap();
        if ppid == me && state == "Z" {
            out.push(pid);
        }
    }
    out
}

fn assert_no_zombies_within(limit: Duration) {
    let t0 = Instant::now();
    loop {
        let z = zombies();
        if z.is_empty() {
            return;
        }
        assert!(t0.elapsed() < limit, "zombie children left: {z:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `len` bytes of `line` repeated (what `yes LINE | head -c LEN` prints).
fn pattern(line: &str, len: usize) -> Vec<u8> {
    let unit = format!("{line}\n").into_bytes();
    let mut v = unit.repeat(len / unit.len() + 1);
    v.truncate(len);
    v
}

/// Warms up what corio creates once per process (the SIGCHLD watcher), so fd counts compare.
fn warm_up() {
    corio::run(async {
        let c = create_subprocess_exec(["true"])
            .child_watcher(ChildWatcher::Sigchld)
            .await
            .unwrap();
        c.wait().await.unwrap();
    });
}

#[test]
fn two_hundred_children_each_print_a_mib_to_stdout_and_stderr() {
    let _g = serial();
    corio::raise_open_file_limit().unwrap();
    warm_up();
    const N: usize = 200;
    const MIB: usize = 1 << 20;
    let fds_before = settled_fds();
    let t0 = Instant::now();
    let pids = corio::run(async {
        let mut tasks = Vec::new();
        for i in 0..N {
            tasks.push(corio::spawn(async move {
                // Both streams written at once, so the reader must serve both.
                let script = format!(
                    "yes out-{i}-abcdefgh | head -c {MIB} & \
                     yes err-{i}-ijklmnop | head -c {MIB} >&2; wait"
                );
                // Every fourth child is reaped by the SIGCHLD watcher instead of a pidfd.
                let how = if i % 4 == 0 {
                    ChildWatcher::Sigchld
                } else {
                    ChildWatcher::Auto
                };
                let mut child = create_subprocess_shell(script)
                    .stdout(Stdio::Piped)
                    .stderr(Stdio::Piped)
                    .child_watcher(how)
                    .await
                    .unwrap();
                let pid = child.pid();
                let out = child.communicate(None).await.unwrap();
                assert!(out.status.success(), "child {i}: {:?}", out.status);
                assert_eq!(out.stdout.len(), MIB, "child {i} stdout");
                assert_eq!(out.stderr.len(), MIB, "child {i} stderr");
                assert!(out.stdout == pattern(&format!("out-{i}-abcdefgh"), MIB));
                assert!(out.stderr == pattern(&format!("err-{i}-ijklmnop"), MIB));
                assert_eq!(child.returncode(), Some(0));
                pid
            }));
        }
        let mut pids = Vec::new();
        for t in tasks {
            pids.push(t.await.unwrap());
        }
        pids
    });
    let took = t0.elapsed();
    assert_eq!(pids.iter().collect::<HashSet<_>>().len(), N);
    // Every child was reaped by us: none is left as a zombie, none is still ours.
    assert_no_zombies_within(Duration::ZERO);
    for pid in &pids {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            let ppid = stat[stat.rfind(')').unwrap() + 2..]
                .split(' ')
                .nth(1)
                .unwrap();
            assert_ne!(
                ppid,
                std::process::id().to_string(),
                "child {pid} not reaped"
            );
        }
    }
    let fds_after = settled_fds();
    assert_eq!(
        fds_after.len(),
        fds_before.len(),
        "fd leak: {fds_before:?} -> {fds_after:?}"
    );
    eprintln!("{N} children x 2 MiB in {took:?}");
}

#[test]
fn b35_the_child_gets_only_stdin_stdout_and_stderr() {
    let _g = serial();
    corio::run(async {
        // Plenty of corio fds open in the parent: a listener, a pipe to another child, the
        // loop's epoll and eventfd, a signal socket pair.
        let _listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _signals = corio::signal::Signals::new([corio::signal::SIGUSR2]).unwrap();
        let other = create_subprocess_exec(["cat"])
            .stdin(Stdio::Piped)
            .stdout(Stdio::Piped)
            .await
            .unwrap();
        let child = create_subprocess_exec(["sleep", "5"])
            .stdin(Stdio::Piped)
            .stdout(Stdio::Piped)
            .stderr(Stdio::Null)
            .await
            .unwrap();
        let fds: Vec<i32> = child_fds_once(child.pid(), |fds| fds.len() == 3)
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(fds, [0, 1, 2], "the child inherited more than its stdio");
        // std's Command resets the signal mask and SIGPIPE (which Rust programs ignore)
        // before exec; other ignored signals are inherited as usual.
        let mask = |pid: &str, key: &str| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            u64::from_str_radix(line[key.len()..].trim(), 16).unwrap()
        };
        let pid = child.pid().to_string();
        let sigpipe = 1u64 << (libc::SIGPIPE - 1);
        assert_eq!(mask(&pid, "SigBlk:"), 0);
        assert_eq!(mask(&pid, "SigIgn:") & sigpipe, 0);
        assert_eq!(mask(&pid, "SigIgn:"), mask("self", "SigIgn:") & !sigpipe);
        child.kill().unwrap();
        assert_eq!(child.wait().await.unwrap().signal(), Some(libc::SIGKILL));
        assert_eq!(child.returncode(), Some(-libc::SIGKILL));
        drop(other); // closes its stdin: cat exits, and is reaped as an orphan
    });
    assert_no_zombies_within(Duration::from_secs(2));
}

#[test]
fn communicate_cannot_deadlock_on_big_stdin_stdout_and_stderr() {
    let _g = serial();
    const SIZE: usize = 4 << 20;
    corio::run(async {
        // 4 MiB to stderr first (while we are still writing its stdin), then stdin to stdout.
        let mut child = create_subprocess_shell(format!("head -c {SIZE} /dev/zero >&2; cat"))
            .stdin(Stdio::Piped)
            .stdout(Stdio::Piped)
            .stderr(Stdio::Piped)
            .await
            .unwrap();
        let input = pattern("the quick brown fox", SIZE);
        let t0 = Instant::now();
        let out = child.communicate(Some(&input)).await.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert!(out.status.success());
        assert!(out.stdout == input);
        assert_eq!(out.stderr.len(), SIZE);
        assert!(child.stdin().is_none() && child.stdout().is_none());
    });
}

#[test]
fn a_child_that_ignores_its_input_is_not_an_error() {
    let _g = serial();
    corio::run(async {
        let mut child = create_subprocess_exec(["true"])
            .stdin(Stdio::Piped)
            .await
            .unwrap();
        let out = child.communicate(Some(&vec![0u8; 1 << 20])).await.unwrap();
        assert!(out.status.success());
        assert!(out.stdout.is_empty() && out.stderr.is_empty());
    });
}

#[test]
fn terminate_wait_and_no_signal_after_reaping() {
    let _g = serial();
    corio::run(async {
        for how in [ChildWatcher::Auto, ChildWatcher::Sigchld] {
            let child = create_subprocess_exec(["sleep", "30"])
                .child_watcher(how)
                .await
                .unwrap();
            assert_eq!(child.returncode(), None);
            assert!(child.try_wait().unwrap().is_none());
            // Book 13.3: give up waiting after a while, then terminate.
            let waiting = corio::spawn({
                let child = Rc::new(child);
                let c = child.clone();
                async move {
                    let _ = corio::catch_cancel(c.wait()).await;
                    child
                }
            });
            corio::sleep(Duration::from_millis(50)).await;
            waiting.cancel(None);
            let child = waiting.await.unwrap();
            child.terminate().unwrap();
            let status = child.wait().await.unwrap();
            assert_eq!(status.signal(), Some(libc::SIGTERM), "{how:?}");
            assert_eq!(child.returncode(), Some(-libc::SIGTERM));
            // Reaped: no signal can reach whatever process reuses the pid.
            let err = child.kill().unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
        }
    });
}

#[test]
fn several_tasks_may_wait_for_one_child() {
    let _g = serial();
    corio::run(async {
        for how in [ChildWatcher::Auto, ChildWatcher::Sigchld] {
            let child = Rc::new(
                create_subprocess_shell("sleep 0.1; exit 7")
                    .child_watcher(how)
                    .await
                    .unwrap(),
            );
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let c = child.clone();
                    corio::spawn(async move { c.wait().await.unwrap().code() })
                })
                .collect();
            for w in waiters {
                assert_eq!(w.await.unwrap(), Some(7), "{how:?}");
            }
        }
    });
}

#[test]
fn dropped_children_are_still_reaped() {
    let _g = serial();
    let pids = corio::run(async {
        let mut pids = Vec::new();
        for i in 0..50 {
            let how = if i % 2 == 0 {
                ChildWatcher::Auto
            } else {
                ChildWatcher::Sigchld
            };
            let child = create_subprocess_shell("sleep 0.2")
                .child_watcher(how)
                .await
                .unwrap();
            pids.push(child.pid());
            // Dropped unawaited, while it runs.
        }
        pids
    });
    assert_eq!(pids.len(), 50);
    assert_no_zombies_within(Duration::from_secs(3));
}

#[test]
fn stdout_lines_as_they_come() {
    let _g = serial();
    corio::run(async {
        let child = create_subprocess_shell("for i in 1 2 3; do echo line $i; sleep 0.02; done")
            .stdout(Stdio::Piped)
            .await
            .unwrap();
        let stdout = child.stdout().unwrap();
        let mut lines = Vec::new();
        loop {
            let line = stdout.readline().await.unwrap();
            if line.is_empty() {
                break;
            }
            lines.push(String::from_utf8(line).unwrap());
        }
        assert_eq!(lines, ["line 1\n", "line 2\n", "line 3\n"]);
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn stdio_to_a_file_to_null_and_stderr_into_stdout() {
    let _g = serial();
    let path = std::env::temp_dir().join(format!("corio-subprocess-{}.txt", std::process::id()));
    corio::run({
        let path = path.clone();
        async move {
            let file = std::fs::File::create(&path).unwrap();
            let child = create_subprocess_shell("echo to-file; echo to-null >&2")
                .stdout(Stdio::from(file))
                .stderr(Stdio::Null)
                .await
                .unwrap();
            assert!(child.stdout().is_none());
            assert!(child.wait().await.unwrap().success());

            let mut child = create_subprocess_shell("echo a; echo b >&2; echo c")
                .stdout(Stdio::Piped)
                .stderr(Stdio::Stdout)
                .await
                .unwrap();
            let out = child.communicate(None).await.unwrap();
            assert_eq!(out.stdout, b"a\nb\nc\n");
            assert!(out.stderr.is_empty());

            let bad = create_subprocess_exec(["true"]).stdout(Stdio::Stdout).await;
            assert_eq!(bad.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
            let empty: [&str; 0] = [];
            let bad = create_subprocess_exec(empty).await;
            assert_eq!(bad.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
        }
    });
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "to-file\n");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn an_interactive_child_driven_through_its_pipes() {
    let _g = serial();
    corio::run(async {
        // Book 13.7: write, read the answer, write again.
        let mut child = create_subprocess_exec(["cat"])
            .stdin(Stdio::Piped)
            .stdout(Stdio::Piped)
            .await
            .unwrap();
        let (stdin, stdout) = (child.stdin().unwrap(), child.stdout().unwrap());
        for word in ["ping\n", "pong\n"] {
            stdin.write_all(word.as_bytes()).await.unwrap();
            assert_eq!(stdout.readline().await.unwrap(), word.as_bytes());
        }
        child.take_stdin().unwrap().close();
        assert!(child.stdout().unwrap().readline().await.unwrap().is_empty());
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn the_subprocess_example_runs() {
    let _g = serial();
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("subprocess");
    let out = std::process::Command::new(path)
        .args(["--jobs", "6", "--limit", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("at most 2 running at once"), "{stdout}");
    assert!(stdout.contains("child heard: bye"), "{stdout}");
    assert!(stdout.contains("(returncode -15)"), "{stdout}");
}

/// The fds `pid` has open, each with what it points to (read from the parent).
fn child_fds(pid: u32) -> Vec<(i32, String)> {
    let mut v: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?; // closed meanwhile
            Some((
                e.file_name().to_str()?.parse().ok()?,
                target.display().to_string(),
            ))
        })
        .collect();
    v.sort();
    v
}

/// [`child_fds`] once `ok` holds of them, or the last listing after 2 s. The spawn returns
/// when std's close-on-exec error pipe closes, which `exec` may do before it has closed the
/// child's other close-on-exec fds: a listing taken at once can still show some of them.
/// An fd that was really inherited never goes away, so waiting cannot hide a leak.
fn child_fds_once(pid: u32, ok: impl Fn(&[(i32, String)]) -> bool) -> Vec<(i32, String)> {
    let t0 = Instant::now();
    loop {
        let fds = child_fds(pid);
        if ok(&fds) || t0.elapsed() > Duration::from_secs(2) {
            return fds;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// This process's fds above 2 without close-on-exec (`flags:` in `/proc/self/fdinfo/N` is
/// octal; `O_CLOEXEC` is 0o2000000), each with what it points to.
fn inheritable_fds() -> Vec<(i32, String)> {
    let mut v: Vec<(i32, String)> = open_fds()
        .into_iter()
        .filter_map(|(fd, target)| {
            let fd: i32 = fd.parse().ok()?;
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
            let flags = u32::from_str_radix(flags.trim(), 8).unwrap();
            (fd > 2 && flags & 0o2000000 == 0).then_some((fd, target))
        })
        .collect();
    v.sort();
    v
}

/// Fds this process opens *without* close-on-exec, as a C library or an inherited jobserver
/// would: a `dup` of stderr (at 500 or above, a number nothing else uses) and both ends of a
/// plain `pipe()`. Closed on drop.
struct LeakyFds(Vec<i32>);

#[allow(unsafe_code)]
impl LeakyFds {
    fn open() -> LeakyFds {
        // SAFETY: `fcntl(F_DUPFD)` takes integers only; the new fd is owned by `LeakyFds`.
        let dup = unsafe { libc::fcntl(2, libc::F_DUPFD, 500) };
        assert!(dup >= 500, "{}", std::io::Error::last_os_error());
        let mut p = [0; 2];
        // SAFETY: `pipe` writes two ints into `p`, a valid, writable 2-int array.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        let fds = LeakyFds(vec![dup, p[0], p[1]]);
        for &fd in &fds.0 {
            // SAFETY: `fcntl(F_GETFD)` takes integers only.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            assert_eq!(flags & libc::FD_CLOEXEC, 0, "fd {fd} must be inheritable");
        }
        fds
    }
}

#[allow(unsafe_code)]
impl Drop for LeakyFds {
    fn drop(&mut self) {
        for &fd in &self.0 {
            // SAFETY: these fds were opened by `open` and nothing else owns them.
            unsafe { libc::close(fd) };
        }
    }
}

/// What `close_fds(true)` (the default; the `close_range(CLOEXEC)` hook in
/// `src/sys/process.rs`) is for: fds this process holds without close-on-exec stay out of
/// the child. b35 above only has corio's own fds, which are close-on-exec anyway.
#[test]
fn an_inheritable_fd_of_the_parent_is_not_inherited_unless_close_fds_is_off() {
    let _g = serial();
    // Held until the end of the test, under the lock, so no other test's child sees them.
    let leaky = LeakyFds::open();
    let mine: Vec<(i32, String)> = leaky
        .0
        .iter()
        .map(|&fd| {
            let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
            (fd, target.display().to_string())
        })
        .collect();
    corio::run(async move {
        let child = create_subprocess_exec(["sleep", "5"])
            .stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .stderr(Stdio::Null)
            .await
            .unwrap();
        let only_stdio = |fds: &[(i32, String)]| fds.iter().all(|f| f.0 <= 2);
        let fds = child_fds_once(child.pid(), only_stdio);
        assert_eq!(
            fds.iter().map(|f| f.0).collect::<Vec<_>>(),
            [0, 1, 2],
            "the child inherited an fd that was not close-on-exec: {fds:?}"
        );
        child.kill().unwrap();
        child.wait().await.unwrap();

        // With close_fds(false) the same fds do reach the child, pointing at the same files:
        // the check above is not passing for want of anything to inherit.
        let child = create_subprocess_exec(["sleep", "5"])
            .stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .stderr(Stdio::Null)
            .close_fds(false)
            .await
            .unwrap();
        // Exactly the inheritable ones: this process's fds without close-on-exec (ours and
        // any it inherited itself, such as cargo's jobserver pipe), none of corio's.
        let inheritable = inheritable_fds();
        let extra = |fds: &[(i32, String)]| -> Vec<(i32, String)> {
            fds.iter().filter(|f| f.0 > 2).cloned().collect()
        };
        let fds = child_fds_once(child.pid(), |fds| extra(fds) == inheritable);
        for m in &mine {
            assert!(
                fds.contains(m),
                "{m:?} not inherited with close_fds(false): {fds:?}"
            );
        }
        assert_eq!(
            extra(&fds),
            inheritable,
            "only fds without close-on-exec may leak"
        );
        child.kill().unwrap();
        child.wait().await.unwrap();
    });
    drop(leaky);
    assert_no_zombies_within(Duration::from_secs(2));
}

/// Stdio combinations the other tests do not use: stdin from `Null` (the child reads EOF at
/// once), stdout to `Null`, stderr to a file and to one end of a pipe (an `OwnedFd`, closed
/// in the parent after the spawn: the reader sees EOF once the child exits).
#[test]
fn stdin_from_null_stdout_to_null_stderr_to_a_file_or_a_pipe() {
    use std::io::Read;
    use std::os::fd::OwnedFd;
    let _g = serial();
    let path = std::env::temp_dir().join(format!("corio-stderr-{}.txt", std::process::id()));
    let (mut reader, writer) = std::io::pipe().unwrap(); // both ends close-on-exec
    let path2 = path.clone();
    corio::run(async move {
        let limit = Duration::from_secs(10);
        // Where the three streams point, seen from outside while the child runs.
        let file = std::fs::File::create(&path).unwrap();
        let child = create_subprocess_exec(["sleep", "5"])
            .stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .stderr(Stdio::from(file))
            .await
            .unwrap();
        assert!(child.stdin().is_none() && child.stdout().is_none() && child.stderr().is_none());
        let want = [
            (0, "/dev/null".to_string()),
            (1, "/dev/null".to_string()),
            (2, path.display().to_string()),
        ];
        assert_eq!(child_fds_once(child.pid(), |fds| fds == want), want);
        child.kill().unwrap();
        child.wait().await.unwrap();

        // `cat` ends at once only if its stdin is at EOF (an inherited one could hang it);
        // "out" goes nowhere; stderr reaches the file, then the pipe.
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let child = create_subprocess_shell("cat; echo out; echo err-to-file >&2")
            .stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .stderr(Stdio::from(file))
            .await
            .unwrap();
        let status = corio::wait_for(child.wait(), limit).await;
        assert!(status.expect("cat did not see EOF").unwrap().success());

        let child = create_subprocess_shell("cat; echo out; echo err-to-pipe >&2")
            .stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .stderr(Stdio::from(OwnedFd::from(writer)))
            .await
            .unwrap();
        let status = corio::wait_for(child.wait(), limit).await;
        assert!(status.expect("cat did not see EOF").unwrap().success());
    });
    // The parent's copy of the write end was closed after the spawn and the child is gone:
    // the read ends at EOF instead of blocking (bounded, in case it does not).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let r = reader.read_to_string(&mut s).map(|_| s);
        tx.send(r).ok();
    });
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the parent kept the pipe's write end open")
        .unwrap();
    assert_eq!(got, "err-to-pipe\n");
    assert_eq!(std::fs::read_to_string(&path2).unwrap(), "err-to-file\n");
    std::fs::remove_file(&path2).unwrap();
    assert_no_zombies_within(Duration::from_secs(2));
}
