//! Context variables (issue 7, book 14.2): a task gets a snapshot of its spawner's context,
//! sets in a task stay in that task, callbacks scheduled from a task see its context.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use corio::contextvars::{ContextVar, copy_context};
use corio::{EventLoop, Future};

static REQUEST: ContextVar<u32> = ContextVar::new("request", 0);
static USER: ContextVar<&str> = ContextVar::new("user", "anonymous");

#[test]
fn the_default_until_set_then_the_value() {
    corio::run(async {
        assert_eq!(REQUEST.get(), 0);
        assert!(!REQUEST.is_set());
        REQUEST.set(7);
        assert_eq!(REQUEST.get(), 7);
        assert!(REQUEST.is_set());
        assert_eq!(REQUEST.name(), "request");
        assert_eq!(USER.get(), "anonymous", "another variable is untouched");
        corio::sleep(Duration::from_millis(1)).await;
        assert_eq!(REQUEST.get(), 7, "kept across awaits");
    });
}

#[test]
fn a_task_copies_its_spawners_context_when_spawned() {
    corio::run(async {
        REQUEST.set(1);
        let child = corio::spawn(async { REQUEST.get() });
        REQUEST.set(2); // after the spawn: the child's snapshot is already taken
        assert_eq!(child.await.unwrap(), 1);
        let later = corio::spawn(async { REQUEST.get() });
        assert_eq!(later.await.unwrap(), 2);
    });
}

#[test]
fn a_set_inside_a_task_affects_neither_its_spawner_nor_its_siblings() {
    corio::run(async {
        USER.set("main");
        let seen = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<_> = ["ada", "grace", "linus"]
            .into_iter()
            .map(|name| {
                let seen = seen.clone();
                corio::spawn(async move {
                    assert_eq!(USER.get(), "main");
                    USER.set(name);
                    for _ in 0..3 {
                        corio::yield_now().await; // the others run and set theirs
                        seen.borrow_mut().push((name, USER.get()));
                    }
                    // A grandchild inherits the child's value.
                    corio::spawn(async { USER.get() }).await.unwrap()
                })
            })
            .collect();
        let mut inherited = Vec::new();
        for t in tasks {
            inherited.push(t.await.unwrap());
        }
        assert_eq!(inherited, ["ada", "grace", "linus"]);
        assert!(
            seen.borrow().iter().all(|(name, got)| name == got),
            "{seen:?}"
        );
        assert_eq!(seen.borrow().len(), 9);
        assert_eq!(USER.get(), "main");
    });
}

#[test]
fn callbacks_scheduled_from_a_task_run_in_its_context() {
    corio::run(async {
        let soon = Future::<u32>::new();
        let later = Future::<u32>::new();
        let at = Future::<(u32, u32)>::new();
        let t = {
            let (soon, later, at) = (soon.clone(), later.clone(), at.clone());
            corio::spawn(async move {
                REQUEST.set(42);
                let lp = corio::get_running_loop();
                lp.call_soon(move || soon.set_result(REQUEST.get()).unwrap());
                lp.call_later(Duration::from_millis(2), move || {
                    later.set_result(REQUEST.get()).unwrap()
                });
                lp.call_at(lp.time(), move || {
                    // A callback scheduling another callback passes its context on.
                    let outer = REQUEST.get();
                    corio::get_running_loop()
                        .call_soon(move || at.set_result((outer, REQUEST.get())).unwrap());
                });
                REQUEST.set(43); // the callbacks captured 42
            })
        };
        t.await.unwrap();
        assert_eq!(soon.await.unwrap(), 42);
        assert_eq!(later.await.unwrap(), 42);
        assert_eq!(at.await.unwrap(), (42, 42));
        assert_eq!(REQUEST.get(), 0, "main's context is untouched");
    });
}

#[test]
fn a_set_inside_a_callback_does_not_leak_out_of_it() {
    let ev = EventLoop::new().unwrap();
    ev.run_until_complete(async {
        let done = Future::<(u32, u32)>::new();
        let d = done.clone();
        corio::spawn(async move {
            REQUEST.set(5);
            corio::get_running_loop().call_soon(move || {
                REQUEST.set(6);
                let inner = REQUEST.get();
                corio::get_running_loop().call_soon(move || {
                    d.set_result((inner, REQUEST.get())).unwrap();
                });
            });
        });
        assert_eq!(done.await.unwrap(), (6, 6));
        assert_eq!(REQUEST.get(), 0);
    });
}

#[test]
fn reset_restores_the_previous_value() {
    corio::run(async {
        let t1 = REQUEST.set(1);
        let t2 = REQUEST.set(2);
        assert_eq!(REQUEST.get(), 2);
        REQUEST.reset(t2);
        assert_eq!(REQUEST.get(), 1);
        REQUEST.reset(t1);
        assert_eq!(REQUEST.get(), 0);
        assert!(!REQUEST.is_set());
    });
}

#[test]
fn reset_with_a_token_from_another_task_panics() {
    corio::run(async {
        let token = corio::spawn(async { REQUEST.set(9) }).await.unwrap();
        let err = corio::spawn(async move { REQUEST.reset(token) })
            .await
            .unwrap_err();
        assert!(
            err.panic_message()
                .unwrap()
                .contains("was created in a different Context"),
            "{err}"
        );
    });
}

#[test]
#[should_panic(expected = "created by a different ContextVar")]
fn reset_with_another_variables_token_panics() {
    let a: ContextVar<u8> = ContextVar::new("a", 0);
    let b: ContextVar<u8> = ContextVar::new("b", 0);
    let token = a.set(1);
    b.reset(token);
}

#[test]
fn values_need_not_be_send_or_sync() {
    let log: ContextVar<Rc<RefCell<Vec<String>>>> =
        ContextVar::new("log", Rc::new(RefCell::new(Vec::new())));
    let shared = Rc::new(RefCell::new(Vec::new()));
    let var = Rc::new(log);
    let v = var.clone();
    let s = shared.clone();
    corio::run(async move {
        v.set(s);
        let v2 = v.clone();
        corio::spawn(async move { v2.with(|l| l.borrow_mut().push("from a task".into())) })
            .await
            .unwrap();
        v.with(|l| l.borrow_mut().push("from main".into()));
    });
    assert_eq!(*shared.borrow(), ["from a task", "from main"]);
    var.with(|l| assert!(l.borrow().is_empty(), "the default was never written"));
}

#[test]
fn outside_any_task_the_thread_has_its_own_context() {
    // Set before the loop runs: corio::run's main task starts with a copy.
    let token = USER.set("outside");
    let in_main = corio::run(async {
        let before = USER.get();
        USER.set("main");
        before
    });
    assert_eq!(in_main, "outside");
    assert_eq!(USER.get(), "outside", "main's set stayed in main");

    // The future given to run_until_complete is not a task: it uses the thread's context.
    let ev = EventLoop::new().unwrap();
    ev.run_until_complete(async {
        assert_eq!(USER.get(), "outside");
        let t = corio::spawn(async { USER.get() });
        assert_eq!(t.await.unwrap(), "outside");
    });
    USER.reset(token);
    assert_eq!(USER.get(), "anonymous");
}

#[test]
fn copy_context_and_run() {
    corio::run(async {
        REQUEST.set(1);
        let snapshot = copy_context();
        assert_eq!(snapshot.len(), 1);
        REQUEST.set(2);
        let (inside, after_set) = snapshot.run(|| {
            let inside = REQUEST.get();
            REQUEST.set(3);
            (inside, REQUEST.get())
        });
        assert_eq!((inside, after_set), (1, 3));
        assert_eq!(REQUEST.get(), 2, "the task's context is back");
        // A task spawned inside `run` copies the snapshot.
        let t = snapshot.run(|| corio::spawn(async { REQUEST.get() }));
        assert_eq!(t.await.unwrap(), 1);
    });
}

#[test]
fn destructors_of_a_cancelled_task_see_its_context() {
    struct Guard(Rc<RefCell<Option<u32>>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            *self.0.borrow_mut() = Some(REQUEST.get());
        }
    }
    corio::run(async {
        let seen = Rc::new(RefCell::new(None));
        let s = seen.clone();
        let t = corio::spawn(async move {
            REQUEST.set(11);
            let _guard = Guard(s);
            corio::sleep(Duration::from_secs(3600)).await;
        });
        corio::yield_now().await;
        t.cancel(None);
        assert!(t.await.unwrap_err().is_cancelled());
        assert_eq!(*seen.borrow(), Some(11));
        assert_eq!(REQUEST.get(), 0);
    });
}

#[test]
fn tasks_that_use_no_context_variables_carry_none() {
    corio::run(async {
        let t = corio::spawn(async { copy_context().is_empty() });
        assert!(t.await.unwrap());
    });
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
fn the_context_server_logs_each_request_with_its_own_client() {
    let out = Command::new(example_binary("context_server"))
        .arg("--demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 1..=3 {
        let me: SocketAddr = stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("client {i} is ")))
            .unwrap_or_else(|| panic!("{stdout}"))
            .parse()
            .unwrap();
        for word in [format!("apple{i}"), format!("kiwi{i}")] {
            for line in [
                format!("[{me}] request \"{word}\""),
                format!("[{me}] audit: looked up \"{word}\""),
            ] {
                assert!(stdout.lines().any(|l| l == line), "{line:?} in\n{stdout}");
            }
        }
        for line in [
            format!("[{me}] connected"),
            format!("[{me}] 20 ms since connecting (a call_later callback)"),
            format!("[{me}] disconnected"),
        ] {
            assert!(stdout.lines().any(|l| l == line), "{line:?} in\n{stdout}");
        }
    }
    // Nothing a client's task logged was tagged with another client or with "server".
    let tagged: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("request \"") || l.contains("audit:"))
        .collect();
    assert_eq!(tagged.len(), 12, "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("[server] listening on "))
    );
    // The SIGUSR1 handler printed the loop dump while the clients were connected.
    assert!(stdout.contains("event loop: running"), "{stdout}");
    assert!(stdout.contains("acceptor ["), "{stdout}");
    assert!(stdout.contains("socket, waiting to read"), "{stdout}");
}
