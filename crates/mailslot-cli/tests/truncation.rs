//! `mailslot status` and `mailslot send` on a name whose file another process truncated under
//! its live listeners (issue 10, item 2): the name is listed, marked damaged, with both
//! listeners; a send fails with an error (no signal); the listeners are not killed.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mailslot");
/// Only a guard against hangs.
const HANG: Duration = Duration::from_secs(60);

/// A private runtime directory (mode 0700) under /dev/shm, removed at the end.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> PrivateDir {
        let dir = PathBuf::from(format!(
            "/dev/shm/mailslot-cli-truncation-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create a runtime directory");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        PrivateDir(dir)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A listener, killed on drop.
struct Listener(Child);

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn command(dir: &PrivateDir, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("MAILSLOT_DIR", &dir.0)
        .env("MAILSLOT_NO_NETWORK", "1")
        .env_remove("MAILSLOT_PORT");
    cmd
}

fn run(dir: &PrivateDir, args: &[&str]) -> Output {
    command(dir, args)
        .stdin(Stdio::null())
        .output()
        .expect("run mailslot")
}

/// Starts `mailslot listen --shared NAME` and waits until it says it is listening.
fn listen(dir: &PrivateDir, name: &str) -> Listener {
    let mut child = command(dir, &["listen", "--shared", "--max-size", "4096", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mailslot listen");
    let stderr = child.stderr.take().expect("stderr");
    let listener = Listener(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    loop {
        match rx.recv_timeout(HANG) {
            Ok(line) if line.contains("listening on") => break,
            Ok(_) => continue,
            Err(e) => panic!("mailslot listen did not start: {e}"),
        }
    }
    // It says so before its first read: wait until it sleeps in that read (a futex wait of its
    // main thread), or a truncation could meet it awake, and it would (rightly) exit with
    // `Corrupted` instead of sleeping on.
    let syscall = format!("/proc/{}/syscall", listener.0.id());
    let futex = format!("{} ", libc::SYS_futex);
    let deadline = std::time::Instant::now() + HANG;
    while !std::fs::read_to_string(&syscall).is_ok_and(|s| s.starts_with(&futex)) {
        assert!(std::time::Instant::now() < deadline, "listener never slept");
        std::thread::sleep(Duration::from_millis(2));
    }
    listener
}

fn within(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(HANG) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still running after {HANG:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the test thread panicked"),
    }
}

#[test]
fn status_lists_a_truncated_name_as_damaged() {
    within("status of a truncated name", || {
        let dir = PrivateDir::new();
        let name = "cut";
        let mut listeners = [listen(&dir, name), listen(&dir, name)];
        let file = dir.0.join(
            mailslot::MailslotName::parse(name)
                .expect("name")
                .file_name(),
        );
        let status = Command::new("truncate")
            .arg("-s0")
            .arg(&file)
            .status()
            .expect("run truncate");
        assert!(status.success(), "truncate");

        let out = run(&dir, &["status"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "status: {text}");
        assert!(text.contains(name), "{text}");
        assert!(text.contains("DAMAGED"), "{text}");
        assert!(!text.contains("no mailslots open"), "{text}");

        let out = run(&dir, &["status", "--json"]);
        assert!(out.status.success());
        let objects: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        let ours = objects
            .iter()
            .find(|o| o["mailslot"] == name)
            .unwrap_or_else(|| panic!("not listed: {objects:?}"));
        assert_eq!(ours["damaged"], true, "{ours}");
        assert_eq!(
            ours["instances"].as_array().map(Vec::len),
            Some(2),
            "{ours}"
        );

        // A send fails, with an error saying why, and dies of no signal.
        let out = run(&dir, &["send", name, "hello"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), None, "send: {stderr}");
        assert!(!out.status.success(), "send: {stderr}");
        assert!(stderr.contains("truncated"), "send: {stderr}");

        // The listeners are still there (asleep: nothing reaches them through the cut file).
        for listener in &mut listeners {
            let state = listener.0.try_wait().expect("try_wait");
            assert!(state.is_none(), "a listener exited: {state:?}");
        }
    });
}
