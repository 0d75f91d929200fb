//! Debug mode, the loop's reports and introspection (issue 7): each report is produced here
//! and its content checked, through a custom exception handler, through the `log` facade
//! (a tiny test logger), and through stderr when no logger is installed (a child process).

use std::cell::RefCell;
use std::panic::Location;
use std::process::Command;
use std::rc::Rc;
use std::sync::{Mutex, Once};
use std::thread::ThreadId;
use std::time::Duration;

use corio::debug::TaskState;
use corio::{EventLoop, ExceptionContext};

// ---- helpers ------------------------------------------------------------------------------

/// A loop whose exception handler records every report.
fn recording_loop(debug: bool) -> (EventLoop, Rc<RefCell<Vec<ExceptionContext>>>) {
    let ev = EventLoop::builder().debug(debug).build().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
        sink.borrow_mut().push(ctx.clone());
    }));
    (ev, seen)
}

fn find<'a>(seen: &'a [ExceptionContext], message_start: &str) -> &'a ExceptionContext {
    seen.iter()
        .find(|c| c.message.starts_with(message_start))
        .unwrap_or_else(|| panic!("no report starting with {message_start:?} in {seen:#?}"))
}

/// The seconds in "Executing a ... took 0.123 seconds".
fn seconds_in(message: &str) -> f64 {
    let rest = message.split(" took ").nth(1).expect("took");
    rest.trim_end_matches(" seconds").parse().expect("seconds")
}

fn assert_here(at: Option<&'static Location<'static>>, line: u32) {
    let at = at.expect("a creation location (debug mode)");
    assert!(at.file().ends_with("debug.rs"), "{at}");
    assert!(at.file().contains("tests"), "{at}");
    assert_eq!(at.line(), line, "{at}");
}

/// Silences the default panic message for panics a test provokes on purpose.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(|s| s.as_str()))
                .unwrap_or("");
            if !msg.starts_with("expected:") {
                default(info);
            }
        }));
    });
}

// ---- a test logger (the `log` facade) -----------------------------------------------------

struct TestLogger;

static RECORDS: Mutex<Vec<(ThreadId, log::Level, String)>> = Mutex::new(Vec::new());

impl log::Log for TestLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS.lock().unwrap().push((
            std::thread::current().id(),
            record.level(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

fn install_test_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&TestLogger).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// The records logged on this thread (each test runs on its own thread).
fn my_records() -> Vec<(log::Level, String)> {
    let me = std::thread::current().id();
    RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 == me)
        .map(|r| (r.1, r.2.clone()))
        .collect()
}

// ---- slow callbacks and task steps ---------------------------------------------------------

#[test]
fn a_slow_task_step_is_reported_with_its_name_where_it_was_spawned_and_how_long() {
    let (ev, seen) = recording_loop(true);
    ev.set_slow_callback_duration(Duration::from_millis(30));
    let line = line!() + 3;
    ev.run_until_complete(async {
        let lp = corio::get_running_loop();
        let t = lp.create_task_named("blocker", async {
            std::thread::sleep(Duration::from_millis(60));
        });
        t.await.unwrap();
    });
    let seen = seen.borrow();
    let r = find(&seen, "Executing a task step took");
    assert_eq!(r.level, log::Level::Warn);
    assert_eq!(r.task.as_deref(), Some("blocker"));
    assert_here(r.created_at, line);
    let took = seconds_in(&r.message);
    assert!((0.055..5.0).contains(&took), "{took}");
    let text = r.to_string();
    assert!(
        text.contains("(task blocker, created at tests") && text.contains(&format!(":{line}:")),
        "{text}"
    );
    assert_eq!(seen.len(), 1, "only the slow step: {seen:#?}");
}

#[test]
fn spawn_records_the_callers_location_through_the_free_function_too() {
    let (ev, seen) = recording_loop(true);
    ev.set_slow_callback_duration(Duration::from_millis(20));
    let line = line!() + 2;
    ev.run_until_complete(async {
        let t = corio::spawn(async { std::thread::sleep(Duration::from_millis(30)) });
        assert_here(t.created_at(), line);
        assert_here(t.info().created_at, line);
        t.await.unwrap();
    });
    assert_here(
        find(&seen.borrow(), "Executing a task step").created_at,
        line,
    );
}

#[test]
fn a_slow_callback_is_reported_with_where_it_was_scheduled() {
    let (ev, seen) = recording_loop(true);
    ev.set_slow_callback_duration(Duration::from_millis(20));
    let line = line!() + 1;
    ev.call_soon(|| std::thread::sleep(Duration::from_millis(40)));
    ev.run_until_complete(corio::sleep(Duration::from_millis(1)));
    let seen = seen.borrow();
    let r = find(&seen, "Executing a callback took");
    assert_eq!(r.level, log::Level::Warn);
    assert_eq!(r.task, None);
    assert_here(r.created_at, line);
    assert!(seconds_in(&r.message) >= 0.035);
}

#[test]
fn with_debug_off_nothing_is_timed_or_located() {
    let (ev, seen) = recording_loop(false);
    ev.set_slow_callback_duration(Duration::from_millis(1));
    ev.call_soon(|| std::thread::sleep(Duration::from_millis(5)));
    ev.run_until_complete(async {
        let t = corio::spawn(async { std::thread::sleep(Duration::from_millis(5)) });
        assert_eq!(t.created_at(), None);
        t.await.unwrap();
    });
    assert!(seen.borrow().is_empty(), "{:#?}", seen.borrow());
}

#[test]
fn set_debug_switches_debug_mode_on_a_running_program() {
    let (ev, seen) = recording_loop(false);
    assert!(!ev.get_debug());
    ev.set_debug(true);
    assert!(ev.get_debug());
    ev.set_slow_callback_duration(Duration::from_millis(10));
    ev.run_until_complete(async {
        corio::spawn(async { std::thread::sleep(Duration::from_millis(20)) })
            .await
            .unwrap();
    });
    assert_eq!(
        find(&seen.borrow(), "Executing a task step").level,
        log::Level::Warn
    );
}

#[test]
fn run_with_a_debug_builder_is_asyncio_run_with_debug_true() {
    let line = line!() + 1;
    let (debug, main_at) = corio::run_with(EventLoop::builder().debug(true), async {
        let me = corio::current_task().unwrap();
        (corio::get_running_loop().get_debug(), me.created_at())
    });
    assert!(debug);
    assert_here(main_at, line);
}

/// Run as a child process by the next test, with `CORIO_DEBUG=1` set.
#[test]
fn child_reports_debug_mode_from_the_environment() {
    if std::env::var_os("CORIO_TEST_CHILD").is_none() {
        return;
    }
    let ev = EventLoop::new().unwrap();
    println!("child: debug={}", ev.get_debug());
    let debug_in_run = corio::run(async { corio::get_running_loop().get_debug() });
    println!("child: run debug={debug_in_run}");
}

#[test]
fn corio_debug_1_in_the_environment_turns_debug_mode_on() {
    for (value, expect) in [("1", "true"), ("0", "false")] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "child_reports_debug_mode_from_the_environment",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CORIO_TEST_CHILD", "1")
            .env("CORIO_DEBUG", value)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(
            stdout.contains(&format!("child: debug={expect}")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("child: run debug={expect}")),
            "{stdout}"
        );
    }
}

// ---- always-on reports -------------------------------------------------------------------

#[test]
fn a_detached_task_that_panics_is_reported_as_never_retrieved() {
    quiet_panics();
    let (ev, seen) = recording_loop(true);
    let line = line!() + 3;
    ev.run_until_complete(async {
        let lp = corio::get_running_loop();
        drop(lp.create_task_named("doomed", async { panic!("expected: boom") }));
        corio::sleep(Duration::from_millis(5)).await;
    });
    let seen = seen.borrow();
    let r = find(&seen, "Task exception was never retrieved");
    assert_eq!(r.level, log::Level::Error);
    assert_eq!(r.task.as_deref(), Some("doomed"));
    assert_eq!(r.panic.as_deref(), Some("expected: boom"));
    assert_here(r.created_at, line);
    assert!(
        r.to_string()
            .starts_with("Task exception was never retrieved (task doomed, created at tests"),
        "{r}"
    );
    assert!(r.to_string().ends_with(": expected: boom"), "{r}");
}

#[test]
fn a_finished_panicked_task_whose_handle_is_dropped_unread_is_reported() {
    quiet_panics();
    let (ev, seen) = recording_loop(true);
    let line = line!() + 2;
    ev.run_until_complete(async {
        let t = corio::spawn(async { panic!("expected: unread") });
        corio::sleep(Duration::from_millis(5)).await;
        assert!(t.done());
        assert!(
            seen.borrow().is_empty(),
            "not yet: the handle could still read it"
        );
        drop(t);
    });
    let seen = seen.borrow();
    let r = find(&seen, "Task exception was never retrieved");
    assert_eq!(r.panic.as_deref(), Some("expected: unread"));
    assert_here(r.created_at, line);
}

#[test]
fn a_panic_that_was_awaited_is_not_reported() {
    quiet_panics();
    let (ev, seen) = recording_loop(true);
    ev.run_until_complete(async {
        let err = corio::spawn(async { panic!("expected: seen") })
            .await
            .unwrap_err();
        assert_eq!(err.panic_message(), Some("expected: seen"));
    });
    assert!(seen.borrow().is_empty(), "{:#?}", seen.borrow());
}

#[test]
fn without_debug_mode_reports_still_come_but_without_a_location() {
    quiet_panics();
    let (ev, seen) = recording_loop(false);
    ev.run_until_complete(async {
        drop(corio::spawn(async { panic!("expected: plain") }));
        corio::sleep(Duration::from_millis(5)).await;
    });
    let r = find(&seen.borrow(), "Task exception was never retrieved").clone();
    assert_eq!(r.created_at, None);
    assert!(r.task.unwrap().starts_with("Task-"));
}

#[test]
fn tasks_pending_when_the_loop_closes_are_reported_destroyed_with_name_and_location() {
    let (ev, seen) = recording_loop(true);
    let line = line!() + 3;
    ev.run_until_complete(async {
        let lp = corio::get_running_loop();
        let _forever = lp.create_task_named("forever", corio::sleep(Duration::from_secs(3600)));
        corio::yield_now().await;
    });
    assert!(seen.borrow().is_empty());
    ev.close();
    let seen = seen.borrow();
    let r = find(&seen, "Task was destroyed but it is pending!");
    assert_eq!(r.level, log::Level::Error);
    assert_eq!(r.task.as_deref(), Some("forever"));
    assert_here(r.created_at, line);
    assert!(
        r.to_string()
            .starts_with("Task was destroyed but it is pending! (task forever, created at tests"),
        "{r}"
    );
}

#[test]
fn a_future_error_nobody_retrieved_is_reported_with_where_the_future_was_made() {
    let (ev, seen) = recording_loop(true);
    let line = line!() + 1;
    let fut = ev.create_future::<u32>();
    assert_here(fut.created_at(), line);
    fut.set_exception("disk full").unwrap();
    drop(fut);
    let seen_now = seen.borrow().clone();
    let r = find(&seen_now, "Future exception was never retrieved");
    assert_eq!(r.error.as_deref(), Some("disk full"));
    assert_here(r.created_at, line);
    assert!(r.to_string().ends_with(": disk full"), "{r}");

    // Read once (awaited, `result`, `exception`): not reported.
    seen.borrow_mut().clear();
    let fut = ev.create_future::<u32>();
    fut.set_exception("seen").unwrap();
    assert!(fut.exception().is_some());
    drop(fut);
    ev.run_until_complete(async {
        let fut = corio::Future::<u32>::new();
        fut.set_exception("awaited").unwrap();
        assert!(fut.clone().await.is_err());
    });
    assert!(seen.borrow().is_empty(), "{:#?}", seen.borrow());
}

// ---- where the reports go ----------------------------------------------------------------

#[test]
fn with_no_handler_set_reports_go_through_the_log_facade_at_their_level() {
    quiet_panics();
    install_test_logger();
    let ev = EventLoop::builder().debug(true).build().unwrap();
    ev.set_slow_callback_duration(Duration::from_millis(20));
    let line = line!() + 3;
    ev.run_until_complete(async {
        let lp = corio::get_running_loop();
        let slow = lp.create_task_named("logged-blocker", async {
            std::thread::sleep(Duration::from_millis(30));
        });
        drop(lp.create_task_named("logged-doomed", async { panic!("expected: to the log") }));
        slow.await.unwrap();
        corio::sleep(Duration::from_millis(5)).await;
    });
    let records = my_records();
    let warn = records
        .iter()
        .find(|(_, m)| m.starts_with("Executing a task step took"))
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(warn.0, log::Level::Warn);
    assert!(
        warn.1.contains(&format!(
            "(task logged-blocker, created at tests{}debug.rs:{line}:",
            std::path::MAIN_SEPARATOR
        )),
        "{warn:?}"
    );
    let error = records
        .iter()
        .find(|(_, m)| m.starts_with("Task exception was never retrieved"))
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(error.0, log::Level::Error);
    assert!(
        error.1.contains("(task logged-doomed, created at tests"),
        "{error:?}"
    );
    assert!(error.1.ends_with(": expected: to the log"), "{error:?}");
}

#[test]
fn a_custom_handler_can_pass_reports_on_to_the_default_one() {
    install_test_logger();
    let ev = EventLoop::new().unwrap();
    ev.set_exception_handler(Some(|_: &EventLoop, ctx: &ExceptionContext| {
        let mut ctx = ctx.clone();
        ctx.message = format!("[app] {}", ctx.message);
        corio::default_exception_handler(&ctx);
    }));
    ev.call_exception_handler(ExceptionContext {
        message: "custom report".into(),
        level: log::Level::Warn,
        ..Default::default()
    });
    assert!(
        my_records().contains(&(log::Level::Warn, "[app] custom report".to_string())),
        "{:#?}",
        my_records()
    );
}

/// `target/<profile>/examples/NAME`, (re)built first if it is missing or older than its
/// source (`cargo test --test NAME` alone does not build examples; a full `cargo test` does).
fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let path = profile_dir.join("examples").join(name);
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.rs"));
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&path).is_none() || modified(&path) < modified(&source) {
        let target_dir = profile_dir.parent().unwrap();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "--example", name, "--target-dir"])
            .arg(target_dir)
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "cannot build {name}");
    }
    path
}

#[test]
fn with_no_logger_installed_debug_mode_reports_reach_stderr() {
    let out = Command::new(example_binary("debug_mode"))
        .env_remove("CORIO_DEBUG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let sep = std::path::MAIN_SEPARATOR;
    let at = format!("created at examples{sep}debug_mode.rs:");
    let slow = stderr
        .lines()
        .find(|l| l.starts_with("corio: Executing a task step took "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(slow.contains(&format!("(task blocker, {at}")), "{slow}");
    assert!(
        stderr.lines().any(|l| l.starts_with(&format!(
            "corio: Task exception was never retrieved (task doomed, {at}"
        )) && l.ends_with(": boom: nobody awaits this task")),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with(&format!(
            "corio: Task was destroyed but it is pending! (task forever, {at}"
        ))),
        "{stderr}"
    );
    // The dump printed before closing.
    assert!(stdout.contains("forever [waiting]"), "{stdout}");
    assert!(
        stdout.contains("tasks: 1 (0 running, 0 scheduled, 1 waiting)"),
        "{stdout}"
    );
}

// ---- the thread check ----------------------------------------------------------------------

/// Carries a value to a thread its type says it must not reach. Only this test does that, to
/// exercise the runtime check which safe code cannot reach (the compiler refuses to move an
/// `EventLoop`: see the `compile_fail` examples in `corio::debug`).
struct Smuggled<T>(std::mem::ManuallyDrop<T>);

// SAFETY: the receiving thread only reads the loop's debug flag (a `Cell<bool>`) and its
// owner thread id, then panics; the sending thread is blocked in `join` the whole time, so
// nothing is accessed concurrently, and `ManuallyDrop` keeps the `Rc` count untouched there.
#[allow(unsafe_code)]
unsafe impl<T> Send for Smuggled<T> {}

#[test]
fn in_debug_mode_a_loop_method_called_from_another_thread_panics_naming_it() {
    quiet_panics();
    use std::os::fd::AsRawFd;
    let ev = EventLoop::builder().debug(true).build().unwrap();
    // A pipe for the fd watchers: the read end is never readable, the write end is writable.
    let (r, w) = std::io::pipe().unwrap();
    let fds = (r.as_raw_fd(), w.as_raw_fd());
    type Call = fn(&EventLoop, (i32, i32));
    let calls: [(&str, Call); 8] = [
        ("call_soon", |ev, _| drop(ev.call_soon(|| ()))),
        ("call_later", |ev, _| {
            drop(ev.call_later(Duration::from_secs(1), || ()))
        }),
        ("call_at", |ev, _| drop(ev.call_at(ev.time(), || ()))),
        ("create_task", |ev, _| drop(ev.create_task(async {}))),
        ("add_reader", |ev, (r, _)| drop(ev.add_reader(r, || ()))),
        ("add_writer", |ev, (_, w)| drop(ev.add_writer(w, || ()))),
        ("remove_reader", |ev, (r, _)| {
            let _ = ev.remove_reader(r);
        }),
        ("remove_writer", |ev, (_, w)| {
            let _ = ev.remove_writer(w);
        }),
    ];
    for (name, call) in calls {
        let smuggled = Smuggled(std::mem::ManuallyDrop::new(ev.clone()));
        let result = std::thread::spawn(move || {
            let smuggled = smuggled;
            call(&smuggled.0, fds);
        })
        .join();
        let payload = result.expect_err("the call must panic");
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        // Each names itself (remove_reader/remove_writer once said "add_reader/add_writer").
        assert_eq!(msg.split(": ").next(), Some(name), "{msg}");
        assert!(msg.contains("call_soon_threadsafe"), "{msg}");
        assert!(msg.contains("thread other than the loop's"), "{msg}");
    }
    // On its own thread the loop is fine, and the panics registered no watcher.
    assert!(!ev.remove_reader(fds.0) && !ev.remove_writer(fds.1));
    ev.call_soon(|| ());
    let fired = Rc::new(std::cell::Cell::new(false));
    let f2 = fired.clone();
    ev.add_writer(fds.1, move || f2.set(true)).unwrap();
    ev.run_until_complete(corio::sleep(Duration::from_millis(1)));
    assert!(
        fired.get(),
        "the pipe is writable: add_writer works on the loop's thread"
    );
    assert!(ev.remove_writer(fds.1));
    drop((r, w));
}

// ---- introspection ------------------------------------------------------------------------

#[test]
fn all_tasks_and_the_dump_show_names_states_polls_and_time() {
    let line = line!() + 9;
    corio::run_with(EventLoop::builder().debug(true), async move {
        let lp = corio::get_running_loop();
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let acceptor = lp.create_task_named("acceptor", async move {
            let _ = listener.accept().await;
        });
        let parked = Rc::new(std::cell::Cell::new(false));
        let p = parked.clone();
        let ticker = lp.create_task_named("ticker", async move {
            for _ in 0..3 {
                corio::sleep(Duration::from_millis(1)).await;
            }
            p.set(true); // parks on the long sleep in this same step
            corio::sleep(Duration::from_secs(3600)).await;
        });
        while !parked.get() {
            corio::sleep(Duration::from_millis(1)).await; // however loaded the machine
        }
        let fresh = lp.create_task_named("fresh", async {});
        let sleeper_cb = lp.call_later(Duration::from_secs(60), || ());

        let infos: Vec<_> = corio::all_tasks().iter().map(|t| t.info()).collect();
        let by_name = |n: &str| infos.iter().find(|i| i.name == n).unwrap().clone();
        assert_eq!(by_name("ticker").state, TaskState::Waiting);
        assert_eq!(
            by_name("ticker").polls,
            4,
            "first poll, then one per sleep ending"
        );
        assert!(by_name("ticker").poll_time > Duration::ZERO);
        assert_here(by_name("ticker").created_at, line);
        assert_eq!(by_name("acceptor").state, TaskState::Waiting);
        assert_eq!(by_name("fresh").state, TaskState::Scheduled);
        assert_eq!(by_name("fresh").polls, 0);
        assert_eq!(fresh.info().state, TaskState::Scheduled);

        let dump = lp.dump();
        assert!(dump.running && dump.debug && !dump.closed);
        assert_eq!(dump.ready_tasks, 1, "fresh");
        assert_eq!(dump.timers, 2, "ticker's sleep and the call_later");
        assert!(dump.next_timer.unwrap() > Duration::from_secs(50));
        assert_eq!(dump.count(TaskState::Running), 1);
        assert_eq!(dump.count(TaskState::Scheduled), 1);
        assert_eq!(dump.count(TaskState::Waiting), 2);
        let listener_fd = dump.fds.iter().find(|f| f.owned && f.reading).unwrap();
        assert!(listener_fd.fd > 2);
        let text = dump.to_string();
        for expected in [
            "event loop: running, ",
            "debug on",
            "ready queue: 1 (1 task steps, 0 callbacks)",
            "timers: 2, next due in ",
            "socket, waiting to read",
            "tasks: 4 (1 running, 1 scheduled, 2 waiting)",
            "main [running]",
            "fresh [scheduled]",
            "ticker [waiting] polls=4 poll_time=",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in\n{text}");
        }
        sleeper_cb.cancel();
        acceptor.cancel(None);
        ticker.cancel(None);
        fresh.await.unwrap();
        assert_eq!(corio::get_running_loop().dump().timers, 0);
    });
}

#[test]
fn finished_tasks_report_how_they_ended() {
    quiet_panics();
    corio::run(async {
        let ok = corio::spawn(async { 1 });
        let cancelled = corio::spawn(corio::sleep(Duration::from_secs(60)));
        let panicked = corio::spawn(async { panic!("expected: state") });
        corio::yield_now().await;
        cancelled.cancel(Some("stop"));
        corio::sleep(Duration::from_millis(2)).await;
        assert_eq!(ok.info().state, TaskState::Returned);
        assert_eq!(cancelled.info().state, TaskState::Cancelled);
        assert_eq!(panicked.info().state, TaskState::Panicked);
        assert!(panicked.info().state.is_done());
        let _ = panicked.await;
    });
}

#[test]
fn the_dump_works_with_debug_off_and_outside_a_run() {
    let ev = EventLoop::builder().debug(false).build().unwrap();
    let t = ev.create_task_named("queued", async {});
    let dump = ev.dump();
    assert!(!dump.running && !dump.debug);
    assert_eq!(dump.tasks.len(), 1);
    assert_eq!(dump.tasks[0].polls, 0);
    assert_eq!(dump.tasks[0].created_at, None);
    let text = dump.to_string();
    assert!(text.contains("event loop: stopped"), "{text}");
    assert!(text.contains("queued [scheduled]"), "{text}");
    assert!(!text.contains("polls="), "{text}");
    ev.run_until_complete(t).unwrap();
    assert!(ev.dump().tasks.is_empty());
}

#[test]
fn a_stream_writer_dropped_without_close_is_reported_and_still_closed() {
    let (ev, seen) = recording_loop(false);
    let got = ev.run_until_complete(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (_reader, writer) = corio::streams::open_connection(addr).await.unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        writer.write(b"bye");
        drop(writer); // no close(): reported, but the bytes are still flushed and the fd closed
        corio::sleep(Duration::from_millis(20)).await;
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut peer, &mut got).unwrap();
        got
    });
    assert_eq!(got, b"bye");
    let seen = seen.borrow();
    let r = find(&seen, "unclosed StreamWriter");
    assert_eq!(r.level, log::Level::Warn);
    assert!(r.to_string().contains("dropped without close()"), "{r}");
}

#[test]
fn a_server_and_a_transport_still_open_when_the_loop_closes_are_reported() {
    let (ev, seen) = recording_loop(false);
    ev.run_until_complete(async {
        let server = corio::streams::start_server(
            |_r, w| async move {
                std::mem::forget(w); // the connection stays open until the loop closes
            },
            "127.0.0.1:0",
        )
        .await
        .unwrap();
        let addr = server.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        corio::sleep(Duration::from_millis(20)).await;
        std::mem::forget(server);
        std::mem::forget(_client);
    });
    ev.close();
    let seen = seen.borrow();
    assert!(
        find(&seen, "unclosed Server")
            .to_string()
            .contains("127.0.0.1")
    );
    find(&seen, "unclosed transport");
}
