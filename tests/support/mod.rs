//! Helpers shared by the integration tests that run example binaries or outside tools
//! (`mod support;` in each; not every test file uses every helper).

use std::path::PathBuf;
use std::process::Command;

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
