//! The host service (`mailslot serve --system`) used and attacked by real users of one host:
//! `useradd` creates them, `setpriv` runs the `mailslot` command and a hostile raw client
//! (`support/attacker.py`) as each. Needs root (CI runs as root; elsewhere the tests say
//! `SKIP:`). One service and one global directory per test; hang guards only.

#[path = "../../mailslot/tests/common/scratch.rs"]
mod scratch;
#[path = "../../mailslot/tests/common/skip.rs"]
mod skip;

use scratch::Scratch;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";
const GUARD: Duration = Duration::from_secs(30);
const TEAM: &str = "ms-team";
const ALICE: &str = "ms-alice";
const BOB: &str = "ms-bob";
const CAROL: &str = "ms-carol";

/// `true` (after skipping, a failure under CI) unless root with `setpriv`, `useradd` and
/// python3.
fn cannot_run() -> bool {
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    // Debian's python3: other users cannot run a per-user interpreter under /root.
    let tools = ["setpriv", "useradd"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    }) && Path::new(PYTHON).exists();
    if root && tools {
        return false;
    }
    let why = if root {
        "setpriv, useradd or python3 missing"
    } else {
        "not running as root"
    };
    skip::skip(why);
    true
}

/// Users alice and bob (members of ms-team) and carol (not), created once.
fn users() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let _ = Command::new("groupadd").arg(TEAM).output();
        for (user, team) in [(ALICE, true), (BOB, true), (CAROL, false)] {
            let mut cmd = Command::new("useradd");
            cmd.args(["--no-create-home", "--shell", "/usr/sbin/nologin"]);
            if team {
                cmd.args(["--groups", TEAM]);
            }
            let _ = cmd.arg(user).output();
            let id = Command::new("id").arg(user).output().unwrap();
            assert!(id.status.success(), "user {user} could not be created");
            if team {
                let groups = String::from_utf8_lossy(&id.stdout).to_string();
                assert!(groups.contains(TEAM), "{user} not in {TEAM}: {groups}");
            }
        }
    });
}

fn uid(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A copy of the binary and the attacker every user can run (the build tree may be private).
fn tools() -> &'static (PathBuf, PathBuf) {
    static TOOLS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    TOOLS.get_or_init(|| {
        // Copies left by runs that are over (a test binary cannot clean up after its last
        // test): those whose process is gone.
        for entry in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(pid) = name.strip_prefix("ms-svc-tools-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = std::env::temp_dir().join(format!("ms-svc-tools-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("mailslot");
        std::fs::copy(env!("CARGO_BIN_EXE_mailslot"), &bin).unwrap();
        let py = dir.join("attacker.py");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/attacker.py"),
            &py,
        )
        .unwrap();
        for f in [&bin, &py] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        (bin, py)
    })
}

/// A fresh path for a global directory (not created).
fn global_path(tag: &str) -> Scratch {
    Scratch::reserve("ms-svc", tag)
}

/// A child with its stdout lines on a channel; killed on drop.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Proc {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(GUARD)
            .unwrap_or_else(|_| panic!("no line within {GUARD:?}; stderr: {}", self.stderr()))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.line()).expect("a JSON line")
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + GUARD;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // All of its stderr, now that it has exited.
                if let Some(reader) = self.stderr_reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {GUARD:?}: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mailslot ARGS` as `user` (root when `None`) with the global directory `dir`.
fn mailslot(user: Option<&str>, dir: &Path, args: &[&str]) -> Command {
    let (bin, _) = tools();
    let mut cmd = match user {
        Some(user) => {
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid", user, "--regid", user, "--init-groups", "--"])
                .arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    cmd.args(args)
        .env("MAILSLOT_GLOBAL_DIR", dir)
        .env("MAILSLOT_NO_NETWORK", "1")
        .env_remove("MAILSLOT_DIR");
    cmd
}

fn run(mut cmd: Command) -> Output {
    let mut proc = Proc::spawn({
        cmd.stdin(Stdio::null());
        cmd
    });
    let status = proc.wait();
    let mut stdout = Vec::new();
    while let Ok(line) = proc.lines.recv_timeout(Duration::from_millis(200)) {
        stdout.extend_from_slice(line.as_bytes());
        stdout.push(b'\n');
    }
    Output {
        status,
        stdout,
        stderr: proc.stderr().into_bytes(),
    }
}

fn send(user: Option<&str>, dir: &Path, name: &str, text: &str) -> Output {
    run(mailslot(user, dir, &["--global", "send", name, text]))
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_refused(out: &Output, what: &str, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{what}: expected {needle:?} in {stderr:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr:?}");
}

/// The host service on `dir`, as root, without the network.
fn service(dir: &Path) -> Proc {
    let proc = Proc::spawn(mailslot(
        None,
        dir,
        &["serve", "--system", "--global-dir", dir.to_str().unwrap()],
    ));
    let sock = dir.join("mailslot.sock");
    let deadline = Instant::now() + GUARD;
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "no service socket: {}",
            proc.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    proc
}

/// Waits until `mailslot --global status NAME` shows `count` instances.
fn wait_instances(dir: &Path, name: &str, count: usize) {
    let deadline = Instant::now() + GUARD;
    loop {
        let out = run(mailslot(None, dir, &["--global", "status", name, "--json"]));
        let seen = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| {
                v.get("instances")
                    .and_then(|i| i.as_array())
                    .map(|i| i.len())
            })
            .next()
            .unwrap_or(0);
        if seen == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {seen} instances, want {count}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn listen(user: &str, dir: &Path, name: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["--global", "listen", name, "--shared", "--json"];
    args.extend_from_slice(extra);
    Proc::spawn(mailslot(Some(user), dir, &args))
}

fn attacker(user: &str, dir: &Path, attack: &str, name: &str, extra: &[&str]) -> Proc {
    let (_, py) = tools();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        user,
        "--regid",
        user,
        "--init-groups",
        "--",
        PYTHON,
    ])
    .arg(py)
    .arg(dir.join("mailslot.sock"))
    .args([attack, name])
    .args(extra);
    Proc::spawn(cmd)
}

fn text_and_uid(v: &serde_json::Value) -> (String, u64) {
    (
        v["text"].as_str().unwrap_or_default().to_owned(),
        v["source"]["uid"].as_u64().unwrap(),
    )
}

#[test]
fn owner_group_and_mode_admit_and_refuse_with_kernel_identities() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("perm");
    let _svc = service(&dir);
    let alice = listen(ALICE, &dir, "TEAMNEWS", &["--mode", "660", "--group", TEAM]);
    wait_instances(&dir, "TEAMNEWS", 1);
    let bob = listen(BOB, &dir, "TEAMNEWS", &[]);
    wait_instances(&dir, "TEAMNEWS", 2);
    // carol is neither owner nor member: refused at once, with the reason, exit 1.
    let out = run(mailslot(
        Some(CAROL),
        &dir,
        &["--global", "listen", "TEAMNEWS", "--shared"],
    ));
    assert_refused(&out, "carol listens", "may not read");
    assert_refused(
        &send(Some(CAROL), &dir, "TEAMNEWS", "intrusion"),
        "carol sends",
        "may not write",
    );
    assert_ok(&send(Some(BOB), &dir, "TEAMNEWS", "from bob"), "bob sends");
    assert_ok(&send(None, &dir, "TEAMNEWS", "from root"), "root sends");
    for reader in [&alice, &bob] {
        assert_eq!(
            text_and_uid(&reader.json()),
            ("from bob".into(), u64::from(uid(BOB)))
        );
        assert_eq!(text_and_uid(&reader.json()), ("from root".into(), 0));
    }
    // Mode 622: others may write but not read; the group may write only.
    let _drop = listen(ALICE, &dir, "DROPBOX", &["--mode", "622"]);
    wait_instances(&dir, "DROPBOX", 1);
    assert_ok(
        &send(Some(CAROL), &dir, "DROPBOX", "for alice"),
        "carol drops",
    );
    let out = run(mailslot(
        Some(BOB),
        &dir,
        &["--global", "listen", "DROPBOX", "--shared"],
    ));
    assert_refused(&out, "bob reads the dropbox", "may not read");
    // A group the creator is not in is refused.
    let out = run(mailslot(
        Some(CAROL),
        &dir,
        &["--global", "listen", "MINE", "--group", TEAM],
    ));
    assert_refused(&out, "carol claims ms-team", "not a member");
    // Status lists only the names the caller may read or write.
    let listed = run(mailslot(
        Some(CAROL),
        &dir,
        &["--global", "status", "--json"],
    ));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("DROPBOX") && !listed.contains("TEAMNEWS"),
        "{listed}"
    );
}

#[test]
fn without_a_service_global_names_fail_at_once_saying_how_to_start_it() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("none");
    for args in [
        &["--global", "send", "NEWS", "hi"][..],
        &["--global", "listen", "NEWS", "--shared"][..],
        &["--global", "status"][..],
    ] {
        let out = run(mailslot(Some(ALICE), &dir, args));
        assert_refused(&out, &format!("{args:?}"), "serve --system");
    }
    // A service killed outright leaves its socket behind: still a clear error.
    let mut svc = service(&dir);
    svc.signal("-KILL");
    svc.wait();
    assert_refused(
        &send(Some(ALICE), &dir, "NEWS", "hi"),
        "after kill -9",
        "host service is not running",
    );
}

#[test]
fn the_service_takes_only_a_directory_nobody_else_could_have_planted() {
    if cannot_run() {
        return;
    }
    users();
    let carol = uid(CAROL);
    // World-writable (as a user would pre-create it), owned by another user, a symlink.
    let open = global_path("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let theirs = global_path("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(carol), Some(carol)).unwrap();
    let target = global_path("target");
    std::fs::create_dir(&target).unwrap();
    let link = global_path("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for (dir, why) in [
        (&open, "writable by others"),
        (&theirs, "belongs to uid"),
        (&link, "is a symbolic link"),
    ] {
        let mut svc = Proc::spawn(mailslot(
            None,
            dir,
            &["serve", "--system", "--global-dir", dir.to_str().unwrap()],
        ));
        let status = svc.wait();
        let stderr = svc.stderr();
        assert_eq!(status.code(), Some(1), "{}: {stderr}", dir.display());
        assert!(stderr.contains(why), "{}: {stderr}", dir.display());
        assert!(!dir.join("mailslot.sock").exists() && !target.join("mailslot.sock").exists());
    }
    // Clients refuse a global directory others can write, even with a socket in it.
    let real = global_path("real");
    let _svc = service(&real);
    let fake = global_path("fake");
    std::fs::create_dir(&fake).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::net::UnixListener::bind(fake.join("mailslot.sock")).unwrap();
    assert_refused(
        &send(Some(ALICE), &fake, "NEWS", "secret"),
        "fake dir",
        "refusing the global directory",
    );
    // A second service cannot take a directory that one serves.
    let dir = global_path("twice");
    let _first = service(&dir);
    let mut second = Proc::spawn(mailslot(
        None,
        &dir,
        &["serve", "--system", "--global-dir", dir.to_str().unwrap()],
    ));
    assert_eq!(second.wait().code(), Some(1));
    assert!(
        second.stderr().contains("another host service"),
        "{}",
        second.stderr()
    );
    // Nothing in the directory is writable by anyone but the service.
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        let allowed = match name.as_str() {
            "mailslot.sock" => 0o666,
            _ if meta.is_dir() => 0o755,
            _ => 0o644,
        };
        assert_eq!(meta.uid(), 0, "{name}");
        assert_eq!(
            meta.mode() & 0o777 & !allowed,
            0,
            "{name}: {:o}",
            meta.mode()
        );
    }
}

#[test]
fn a_reader_cannot_write_truncate_grow_or_reopen_the_ring_it_was_given() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("ring");
    let _svc = service(&dir);
    let alice = listen(ALICE, &dir, "OPENNEWS", &["--mode", "666"]);
    wait_instances(&dir, "OPENNEWS", 1);
    assert_ok(&send(Some(BOB), &dir, "OPENNEWS", "before"), "bob before");
    let mut carol = attacker(CAROL, &dir, "ring", "OPENNEWS", &[]);
    assert_eq!(carol.line(), "open ok");
    assert!(carol.line().starts_with("ring_size "));
    for attack in [
        "mmap_write",
        "write",
        "truncate",
        "grow",
        "reopen_rw",
        "fallocate",
        "seal_write",
        "fchmod",
    ] {
        let line = carol.line();
        assert!(
            line.starts_with(&format!("{attack} refused")),
            "{attack}: {line}"
        );
    }
    assert_eq!(carol.line(), "private_scribble ok");
    carol.wait();
    assert_ok(&send(Some(BOB), &dir, "OPENNEWS", "after"), "bob after");
    assert_eq!(alice.json()["text"], "before");
    let after = alice.json();
    assert_eq!(
        (after["text"].as_str(), after["lost"].as_u64()),
        (Some("after"), Some(0))
    );
}

#[test]
fn senders_cannot_forge_who_they_are() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("forge");
    let _svc = service(&dir);
    let alice = listen(ALICE, &dir, "INBOX", &["--mode", "622"]);
    wait_instances(&dir, "INBOX", 1);
    let mut carol = attacker(CAROL, &dir, "forge", "INBOX", &[]);
    assert_eq!(carol.line(), "open ok");
    assert_eq!(carol.line(), "as_root refused EPERM");
    assert_eq!(carol.line(), "as_pid1 refused EPERM");
    assert_eq!(carol.line(), "honest ok");
    carol.wait();
    let got = alice.json();
    assert_eq!(
        text_and_uid(&got),
        ("honest from attacker".into(), u64::from(uid(CAROL)))
    );
    // The pid is the attacker's own (the kernel's word), not 1.
    assert_ne!(got["source"]["pid"].as_u64(), Some(1));
}

#[test]
fn garbage_floods_and_a_stopped_reader_stall_nobody_and_loss_is_counted() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("flood");
    let svc = service(&dir);
    let alice = listen(
        ALICE,
        &dir,
        "PUBLIC",
        &["--mode", "666", "--capacity", "65536"],
    );
    let bob = listen(BOB, &dir, "QUIET", &["--mode", "600"]);
    wait_instances(&dir, "PUBLIC", 1);
    wait_instances(&dir, "QUIET", 1);
    // Garbage and an arm flood on its own connection end only the attacker's connections.
    let mut garbage = attacker(CAROL, &dir, "garbage", "PUBLIC", &[]);
    for i in 0..8 {
        let line = garbage.line();
        assert!(line.starts_with(&format!("garbage{i} ")), "{line}");
    }
    assert_eq!(garbage.line(), "arm_flood ok");
    garbage.wait();
    // alice stops reading; carol floods her name (a 64 KiB ring) with 20,000 messages.
    alice.signal("-STOP");
    let mut flood = attacker(CAROL, &dir, "flood", "PUBLIC", &["20000"]);
    // Meanwhile bob's name is served as usual, and so is alice's for writers.
    for i in 0..20 {
        assert_ok(
            &send(None, &dir, "QUIET", &format!("quiet {i}")),
            "root to bob",
        );
    }
    for i in 0..20 {
        assert_eq!(bob.json()["text"], format!("quiet {i}"));
    }
    assert_eq!(flood.line(), "flood ok");
    flood.wait();
    assert_ok(&send(Some(BOB), &dir, "PUBLIC", "last"), "bob to public");
    alice.signal("-CONT");
    // alice reads what the ring still holds; her loss is counted, not silent.
    let mut lost = 0;
    let mut seen = 0;
    loop {
        let v = alice.json();
        lost += v["lost"].as_u64().unwrap();
        seen += 1;
        if v["text"] == "last" {
            break;
        }
    }
    assert_eq!(
        seen + lost,
        20_001,
        "every message is either read or counted lost"
    );
    assert!(lost > 0);
    assert!(
        svc.stderr().is_empty() || !svc.stderr().contains("panicked"),
        "{}",
        svc.stderr()
    );
}

#[test]
fn one_user_cannot_take_every_connection() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("conns");
    let _svc = service(&dir);
    let _alice = listen(ALICE, &dir, "LOBBY", &["--mode", "666"]);
    wait_instances(&dir, "LOBBY", 1);
    let mut carol = attacker(CAROL, &dir, "connections", "LOBBY", &["300"]);
    let line = carol.line();
    let held: usize = line.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(held <= 256, "{line}");
    assert!(line.ends_with(&format!("refused {}", 300 - held)), "{line}");
    // Others are served while carol holds her share.
    assert_ok(&send(Some(BOB), &dir, "LOBBY", "still open"), "bob sends");
    let _bob = listen(BOB, &dir, "LOBBY", &[]);
    wait_instances(&dir, "LOBBY", 2);
    let _ = carol.stdin.take().map(|mut s| s.write_all(b"\n"));
    carol.wait();
}

#[test]
fn readers_survive_a_service_kill_and_rejoin_the_next_one() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("restart");
    let mut svc = service(&dir);
    let alice = listen(ALICE, &dir, "NEWS", &["--mode", "666"]);
    wait_instances(&dir, "NEWS", 1);
    let bob = listen(BOB, &dir, "NEWS", &[]);
    wait_instances(&dir, "NEWS", 2);
    for round in 0..3 {
        for i in 0..3 {
            assert_ok(
                &send(Some(CAROL), &dir, "NEWS", &format!("r{round} m{i}")),
                "carol sends",
            );
        }
        svc.signal("-KILL");
        svc.wait();
        // While it is down, a write fails clearly; nothing pretends to succeed.
        assert_refused(
            &send(Some(CAROL), &dir, "NEWS", "lost?"),
            "while down",
            "host service",
        );
        svc = service(&dir);
        // The readers rejoin by themselves.
        wait_instances(&dir, "NEWS", 2);
    }
    assert_ok(&send(Some(CAROL), &dir, "NEWS", "the end"), "carol after");
    for reader in [&alice, &bob] {
        for round in 0..3 {
            for i in 0..3 {
                // Accepted before the kill, read from the old ring: not lost.
                assert_eq!(reader.json()["text"], format!("r{round} m{i}"));
            }
        }
        assert_eq!(reader.json()["text"], "the end");
    }
}

/// A free UDP port pair (datagram, name service) below the ephemeral range.
fn ports() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    for _ in 0..1000 {
        let i = NEXT.fetch_add(2, Ordering::Relaxed);
        let p = 21_000 + ((std::process::id() as usize * 17 + i * 2) % 10_000) as u16;
        let bind = |port| std::net::UdpSocket::bind(("0.0.0.0", port));
        if bind(p).is_ok() && bind(p + 1).is_ok() {
            return p;
        }
    }
    panic!("no free port pair");
}

/// A private runtime directory of `user` (mode 0700).
fn user_dir(user: &str, tag: &str) -> Scratch {
    let dir = global_path(&format!("rt-{tag}"));
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(uid(user)), None).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// The README's LAN recipe, as written, for users without privileges: root runs the host
/// service, each user runs a plain `mailslot listen NEWS` in their own scope, and a datagram
/// from the LAN reaches every one of them (the service hands it to each user's process, which
/// delivers it into its own directory). Users without the name get nothing.
#[test]
fn every_users_own_names_receive_the_lan_through_the_service() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("lan");
    let port = ports();
    let port_s = port.to_string();
    let ns_port = (port + 1).to_string();
    let svc = Proc::spawn({
        let mut cmd = mailslot(
            None,
            &dir,
            &[
                "serve",
                "--system",
                "--global-dir",
                dir.to_str().unwrap(),
                "--port",
                &port_s,
                "--name-service-port",
                &ns_port,
                "--broadcast",
                "127.255.255.255",
            ],
        );
        cmd.env_remove("MAILSLOT_NO_NETWORK");
        cmd
    });
    let deadline = Instant::now() + GUARD;
    while !dir.join(format!("network-{port}.state")).exists() {
        assert!(
            Instant::now() < deadline,
            "the service holds no port: {}",
            svc.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let listen_as = |user: &str, name: &str| {
        let rt = user_dir(user, user);
        let mut cmd = mailslot(Some(user), &dir, &["listen", name, "--shared", "--json"]);
        cmd.env_remove("MAILSLOT_NO_NETWORK")
            .env("MAILSLOT_DIR", &rt)
            .env("MAILSLOT_PORT", &port_s);
        // The directory first: it is removed after the process that uses it is gone.
        (rt, Proc::spawn(cmd))
    };
    let (alice_rt, alice) = listen_as(ALICE, "NEWS");
    let (bob_rt, bob) = listen_as(BOB, "news");
    let (_carol_rt, carol) = listen_as(CAROL, "OTHER");
    // Each user's network role says it receives through the service.
    for (user, rt) in [(ALICE, &alice_rt), (BOB, &bob_rt)] {
        let deadline = Instant::now() + GUARD;
        loop {
            let mut cmd = mailslot(Some(user), &dir, &["status", "--json"]);
            cmd.env("MAILSLOT_DIR", rt).env("MAILSLOT_PORT", &port_s);
            let out = String::from_utf8_lossy(&run(cmd).stdout).to_string();
            if out.contains("\"via_service\"") {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {out}", rt.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // A datagram from "the LAN" (another process, an ephemeral port, no mailslot state).
    let sender_rt = global_path("sender");
    for i in 0..3 {
        let text = format!("from the lan {i}");
        let mut cmd = mailslot(
            None,
            &dir,
            &[
                "send",
                "NEWS",
                &text,
                "--to",
                "127.0.0.1",
                "--port",
                &port_s,
            ],
        );
        cmd.env("MAILSLOT_DIR", &sender_rt);
        assert_ok(&run(cmd), "lan send");
        for reader in [&alice, &bob] {
            let got = reader.json();
            assert_eq!(got["text"], text);
            assert_eq!(got["source"]["kind"], "network");
            assert_eq!(got["source"]["ip"], "127.0.0.1");
        }
    }
    assert!(
        carol.lines.try_recv().is_err(),
        "carol has no NEWS and got nothing"
    );
    // The service counted them as delivered, not as dropped for want of a mailslot (its
    // counters reach the state file within a flush interval).
    let deadline = Instant::now() + GUARD;
    loop {
        let mut cmd = mailslot(None, &dir, &["--global", "status", "--json"]);
        cmd.env("MAILSLOT_PORT", &port_s);
        let status = String::from_utf8_lossy(&run(cmd).stdout).to_string();
        if status.contains("\"delivered\":3") {
            assert!(status.contains("\"dropped_no_mailslot\":0"), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `kill -9` of the service under a steady stream: everything the service confirmed before it
/// died is read by every reader, in order and once; the writer learns that the service went
/// away (never a false success after it); the readers rejoin the next service by themselves.
#[test]
fn a_service_killed_under_load_loses_nothing_it_confirmed() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("load");
    let mut svc = service(&dir);
    let alice = listen(
        ALICE,
        &dir,
        "FEED",
        &["--mode", "666", "--capacity", "4194304"],
    );
    wait_instances(&dir, "FEED", 1);
    let bob = listen(BOB, &dir, "FEED", &[]);
    wait_instances(&dir, "FEED", 2);
    let mut writer = attacker(CAROL, &dir, "stream", "FEED", &["1000000"]);
    assert_eq!(writer.line(), "open ok");
    // Let it run for a while, then kill the service in the middle of the stream.
    let mut confirmed = None;
    for _ in 0..10 {
        let line = writer.line();
        confirmed = Some(
            line.strip_prefix("confirmed ")
                .expect(&line)
                .parse::<u64>()
                .unwrap(),
        );
    }
    svc.signal("-KILL");
    svc.wait();
    let mut last_confirmed = confirmed.unwrap();
    loop {
        let line = writer.line();
        if let Some(n) = line.strip_prefix("confirmed ") {
            last_confirmed = n.parse().unwrap();
            continue;
        }
        assert!(line.starts_with("stopped "), "{line}");
        break;
    }
    writer.wait();
    for reader in [&alice, &bob] {
        let mut next = 0u64;
        while next <= last_confirmed {
            let got = reader.json();
            assert_eq!(got["lost"].as_u64(), Some(0), "{got}");
            assert_eq!(got["text"], format!("seq {next}"), "in order, once");
            assert_eq!(got["source"]["uid"].as_u64(), Some(u64::from(uid(CAROL))));
            next += 1;
        }
    }
    // The next service: the readers rejoin and receive again.
    let _svc = service(&dir);
    wait_instances(&dir, "FEED", 2);
    assert_ok(
        &send(Some(CAROL), &dir, "FEED", "after the restart"),
        "carol after",
    );
    for reader in [&alice, &bob] {
        // What the dead service appended after its last confirmation may come first.
        loop {
            let got = reader.json();
            if got["text"] == "after the restart" {
                break;
            }
            let text = got["text"].as_str().unwrap_or_default().to_owned();
            assert!(text.starts_with("seq "), "{got}");
        }
    }
}

/// Another user cannot put anything into the service's directory: no lock to squat, no
/// socket or record to plant.
#[test]
fn nobody_else_can_squat_or_plant_in_the_service_directory() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("squat");
    let _svc = service(&dir);
    for path in [
        "service.lock",
        "mailslot.sock",
        "names/news.slot",
        "x",
        "names/x.draft",
    ] {
        let target = dir.join(path);
        let out = Command::new("setpriv")
            .args(["--reuid", CAROL, "--regid", CAROL, "--init-groups", "--"])
            .args(["sh", "-c", "ln -s /etc/shadow \"$1\" || : > \"$1\"", "sh"])
            .arg(&target)
            .output()
            .unwrap();
        assert!(!out.status.success(), "carol planted {path}");
        let meta = std::fs::symlink_metadata(&target);
        assert!(
            meta.map(|m| m.uid() == 0).unwrap_or(true),
            "{path} belongs to carol"
        );
    }
    // The service still serves.
    let _alice = listen(ALICE, &dir, "AFTER", &["--mode", "622"]);
    wait_instances(&dir, "AFTER", 1);
    assert_ok(&send(Some(CAROL), &dir, "AFTER", "fine"), "carol sends");
}

/// A writer that scribbles on its own submission ring (the memory it shares with the service)
/// loses its connection and nothing else: the service goes on, other writers' messages arrive.
/// The service's doorbell (the word its thread sleeps on) is read-only to the writer.
#[test]
fn a_writer_scribbling_its_submission_ring_only_ends_its_own_connection() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("scribble");
    let _svc = service(&dir);
    let alice = listen(ALICE, &dir, "BOARD", &["--mode", "666"]);
    wait_instances(&dir, "BOARD", 1);
    let mut carol = attacker(CAROL, &dir, "scribble", "BOARD", &[]);
    assert_eq!(carol.line(), "open ok");
    assert!(
        carol.line().starts_with("shrink_own_ring refused"),
        "the ring is sealed"
    );
    for attack in ["map_doorbell_writable", "write_doorbell"] {
        let line = carol.line();
        assert!(line.starts_with(&format!("{attack} refused")), "{line}");
    }
    // Closed by the service: an end of file, or a reset when a packet was still unread.
    let end = carol.line();
    assert!(end == "dropped" || end == "dropped ECONNRESET", "{end}");
    carol.wait();
    assert_ok(&send(Some(BOB), &dir, "BOARD", "still here"), "bob after");
    let got = alice.json();
    assert_eq!(
        (got["text"].as_str(), got["lost"].as_u64()),
        (Some("still here"), Some(0))
    );
}

/// One user's names cannot take the service's memory from the others: rings are charged to
/// their creator, at most 256 MiB each user; the next is refused with the reason, others are
/// served, and closing a name gives its bytes back.
#[test]
fn one_users_rings_are_bounded() {
    if cannot_run() {
        return;
    }
    users();
    let dir = global_path("quota");
    let _svc = service(&dir);
    let big = ["--mode", "600", "--capacity", "67108864"];
    let mut held = Vec::new();
    for i in 0..3 {
        let name = format!("BIG{i}");
        held.push(listen(CAROL, &dir, &name, &big));
        wait_instances(&dir, &name, 1);
    }
    let mut args = vec!["--global", "listen", "BIG3", "--shared"];
    args.extend_from_slice(&big);
    let out = run(mailslot(Some(CAROL), &dir, &args));
    assert_refused(&out, "a fourth 64 MiB ring", "at most 256 MiB per user");
    // Alice is not charged for carol's names.
    let _alice = listen(ALICE, &dir, "SMALL", &["--mode", "666"]);
    wait_instances(&dir, "SMALL", 1);
    // Closing one of carol's names frees room for another.
    drop(held.pop());
    wait_instances(&dir, "BIG2", 0);
    let _again = listen(CAROL, &dir, "BIG3", &big);
    wait_instances(&dir, "BIG3", 1);
}

/// As the systemd unit runs it: the service as a user of its own (here `daemon`) with no
/// privilege but `CAP_NET_BIND_SERVICE` (ambient), holding UDP 138 in a network namespace of
/// its own; users' global names work, LAN datagrams reach them, and the clients accept a
/// service whose uid owns the directory.
#[test]
fn the_service_runs_as_its_own_user_with_only_the_port_capability() {
    if cannot_run() {
        return;
    }
    if !Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        skip::skip("ip (iproute2) is not installed");
        return;
    }
    users();
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
        }
    }
    let ns = Netns(format!("ms-svc-{}", std::process::id()));
    assert!(Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap()
        .success());
    let up = ["netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"];
    assert!(Command::new("ip").args(up).status().unwrap().success());
    let dir = global_path("daemon");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&dir, Some(1), Some(1)).unwrap();
    let (bin, _) = tools();
    let svc = Proc::spawn({
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns", "exec", &ns.0, "setpriv", "--reuid", "daemon", "--regid", "daemon",
        ])
        .args(["--clear-groups", "--inh-caps", "+net_bind_service"])
        .args(["--ambient-caps", "+net_bind_service", "--"])
        .arg(bin)
        .args(["serve", "--system", "--global-dir"])
        .arg(&dir)
        .args(["--broadcast", "127.255.255.255"]);
        cmd
    });
    let deadline = Instant::now() + GUARD;
    while !dir.join("network-138.state").exists() {
        assert!(Instant::now() < deadline, "no port: {}", svc.stderr());
        std::thread::sleep(Duration::from_millis(10));
    }
    let alice = listen(ALICE, &dir, "NEWS", &["--mode", "666"]);
    wait_instances(&dir, "NEWS", 1);
    assert_ok(&send(Some(BOB), &dir, "NEWS", "from bob"), "bob");
    let lan_rt = global_path("lan-rt");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "env"])
        .arg(format!("MAILSLOT_DIR={}", lan_rt.display()))
        .arg(bin)
        .args([
            "send",
            "NEWS",
            "from the lan",
            "--to",
            "127.0.0.1",
            "--no-network",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text_and_uid(&alice.json()),
        ("from bob".into(), u64::from(uid(BOB)))
    );
    let lan = alice.json();
    assert_eq!(
        (lan["text"].as_str(), lan["source"]["kind"].as_str()),
        (Some("from the lan"), Some("network"))
    );
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        assert_eq!(
            entry.metadata().unwrap().uid(),
            1,
            "{:?} belongs to daemon",
            entry.file_name()
        );
    }
}
