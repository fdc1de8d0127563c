//! The one skip policy of every test crate of the workspace (included with `#[path]` by the
//! tests of `mailslot-cli` and `mailslot-ffi`).
//!
//! A test whose tool or privilege is missing skips: it prints `SKIP: <test>: <why>` and returns
//! without failing, except under CI (`CI` set), where a skip is a failure because CI installs
//! every tool and runs as root. The test harness counts a skipped test as passed and hides its
//! stderr, so each skip is also appended, as the line `<test binary> <test>: <why>`, to the
//! file named by `MAILSLOT_TEST_SKIPS` when that variable is set: `scripts/test.sh` sets it and
//! counts those tests as skipped, not passed, in its summary.
#![allow(dead_code)] // each test binary uses part of it

use std::io::Write;

/// The variable naming the file that collects skips.
pub const SKIPS_ENV: &str = "MAILSLOT_TEST_SKIPS";

/// Whether this runs under CI, where nothing may skip.
pub fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `true` if `ok`; otherwise skips (see [`skip`]) because `what` is not available.
pub fn require(ok: bool, what: &str) -> bool {
    if !ok {
        skip(&format!("{what} not available"));
    }
    ok
}

/// Skips the running test for `why`: fails under CI, otherwise prints and records it.
pub fn skip(why: &str) {
    assert!(!ci(), "{}: {why}, and CI is set: must run", test_name());
    note_skip(why);
}

/// Prints and records a skip that is allowed even under CI (part of a test that cannot run as
/// an unprivileged user by design). Prefer [`skip`].
pub fn note_skip(why: &str) {
    let test = test_name();
    eprintln!("SKIP: {test}: {why}");
    let Some(path) = std::env::var_os(SKIPS_ENV) else {
        return;
    };
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "?".into());
    // One write of one short line to a file opened for appending: lines of parallel tests
    // never interleave.
    let line = format!("{exe} {test}: {}\n", why.replace('\n', " "));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!(
            "cannot record a skip in {SKIPS_ENV}={}: {e}",
            path.to_string_lossy()
        );
    }
}

/// The running test's name as the harness prints it: libtest names each test's thread after
/// the test, with `--test-threads=1` too.
pub fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "(not in a test thread)".to_string(),
    }
}
