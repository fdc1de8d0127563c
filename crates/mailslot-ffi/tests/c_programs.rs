//! The C library as C programs use it: `scripts/install-c.sh` installs it into a prefix, the
//! programs are built with `cc -Wall -Werror` against the installed header through pkg-config
//! (the shared library) and against `libmailslot.a`, and run as real processes: plainly,
//! statically linked, under AddressSanitizer and under Valgrind (`--leak-check=full`), each
//! of which must exit 0 with no error or leak reported (`tests/valgrind.supp` names the two
//! process-lifetime blocks of Rust's runtime that Valgrind cannot tell from leaks).
//!
//! Programs: the README's C example, the three Windows-style samples of `examples/win32/`
//! (create and read with GetMailslotInfo in a loop, write, the info walk), `tests/c/semantics.c`
//! (timeouts 0 / N / forever, insufficient buffer, zero-length messages, duplicate create,
//! no reader, invalid names and handles, the C API under it), a name shared by two reader
//! processes, and remote writes on the loopback to a reader that holds the network role on an
//! unprivileged port.
//!
//! Tool policy: without `cc`, `pkg-config`, AddressSanitizer or `valgrind` a test prints
//! `SKIP:` and passes, unless `CI` is set, where it fails. Every test has its own runtime
//! directory under /dev/shm (removed at the end) and unique names; no wall-clock bound is
//! asserted, every wait has a hang guard.

#[path = "../../mailslot/tests/common/ports.rs"]
mod ports;
#[path = "../../mailslot/tests/common/skip.rs"]
mod skip;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long any one process may take (Valgrind on a loaded 2-core machine is slow).
const GUARD: Duration = Duration::from_secs(240);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The installed prefix, shared by every test of this file (installed once).
struct Prefix {
    root: PathBuf,
    builds: PathBuf,
}

impl Prefix {
    fn lib(&self) -> PathBuf {
        self.root.join("lib")
    }

    fn pkg_config_path(&self) -> PathBuf {
        self.root.join("lib/pkgconfig")
    }
}

/// Installs the library with the script, or `None` (a skip of every test that asks, a
/// failure under CI) without a C toolchain.
fn prefix() -> Option<&'static Prefix> {
    static PREFIX: OnceLock<Result<Prefix, &'static str>> = OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        if !runs("cc", &["--version"]) {
            return Err("cc (apt-get install gcc)");
        }
        if !runs("pkg-config", &["--version"]) {
            return Err("pkg-config (apt-get install pkg-config)");
        }
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mailslot-c");
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("prefix");
        let builds = base.join("build");
        std::fs::create_dir_all(&builds).unwrap();
        // The debug build: test.sh has built the workspace already, so this is quick.
        let out = Command::new("bash")
            .arg(workspace().join("scripts/install-c.sh"))
            .arg("--debug")
            .arg(&root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "install-c.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for file in [
            "lib/libmailslot.so",
            "lib/libmailslot.so.0",
            "lib/libmailslot.a",
            "include/mailslot/mailslot.h",
            "include/mailslot/win32.h",
            "lib/pkgconfig/mailslot.pc",
        ] {
            assert!(
                root.join(file).exists(),
                "install-c.sh did not install {file}"
            );
        }
        Ok(Prefix { root, builds })
    });
    match prefix {
        Ok(prefix) => Some(prefix),
        Err(what) => {
            skip::require(false, what);
            None
        }
    }
}

/// How a program is built and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `cc prog.c $(pkg-config --cflags --libs mailslot)`: the shared library.
    Shared,
    /// Linked with `libmailslot.a` (and pkg-config's `--static` libraries).
    Static,
    /// The shared library, built and run with `-fsanitize=address` (leak check included).
    Asan,
    /// The shared build under `valgrind --error-exitcode=1 --leak-check=full`.
    Valgrind,
}

const ALL_MODES: [Mode; 4] = [Mode::Shared, Mode::Static, Mode::Asan, Mode::Valgrind];

/// Whether `mode` can run here (SKIP, or fail under CI, when not).
fn available(prefix: &Prefix, mode: Mode) -> bool {
    static ASAN: OnceLock<bool> = OnceLock::new();
    static VALGRIND: OnceLock<bool> = OnceLock::new();
    match mode {
        Mode::Shared | Mode::Static => true,
        Mode::Asan => {
            let ok = *ASAN.get_or_init(|| {
                let src = prefix.builds.join("asan-probe.c");
                std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
                let out = prefix.builds.join("asan-probe");
                runs(
                    "cc",
                    &[
                        "-fsanitize=address",
                        src.to_str().unwrap(),
                        "-o",
                        out.to_str().unwrap(),
                    ],
                ) && runs(out.to_str().unwrap(), &[])
            });
            skip::require(ok, "AddressSanitizer (cc -fsanitize=address; libasan)")
        }
        Mode::Valgrind => {
            let ok = *VALGRIND.get_or_init(|| runs("valgrind", &["--version"]));
            skip::require(ok, "valgrind (apt-get install valgrind)")
        }
    }
}

/// Runs `sh -c script` and panics with its output on failure.
fn sh(script: &str, env: &[(&str, &Path)]) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{script}\nfailed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `src` for `mode`; the executable's path. The shared build is exactly the documented
/// line, `cc prog.c $(pkg-config --cflags --libs mailslot)`, plus `-Wall -Werror`.
fn build(prefix: &Prefix, src: &Path, mode: Mode) -> PathBuf {
    let stem = src.file_stem().unwrap().to_str().unwrap();
    let suffix = match mode {
        Mode::Shared | Mode::Valgrind => "shared",
        Mode::Static => "static",
        Mode::Asan => "asan",
    };
    let out = prefix.builds.join(format!("{stem}-{suffix}"));
    // Each program and variant is built once per run (tests share them).
    static BUILT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if built.contains(&out) {
        return out;
    }
    let (src_s, out_s) = (src.display(), out.display());
    let script = match mode {
        Mode::Shared | Mode::Valgrind => format!(
            "cc -Wall -Werror '{src_s}' $(pkg-config --cflags --libs mailslot) -o '{out_s}'"
        ),
        Mode::Static => format!(
            "cc -Wall -Werror '{src_s}' $(pkg-config --cflags mailslot) '{}' \
             $(pkg-config --static --libs-only-l mailslot | sed 's/-lmailslot//') -o '{out_s}'",
            prefix.lib().join("libmailslot.a").display()
        ),
        Mode::Asan => format!(
            "cc -Wall -Werror -g -fsanitize=address -fno-omit-frame-pointer '{src_s}' \
             $(pkg-config --cflags --libs mailslot) -o '{out_s}'"
        ),
    };
    sh(&script, &[("PKG_CONFIG_PATH", &prefix.pkg_config_path())]);
    built.push(out.clone());
    out
}

/// A private runtime directory under /dev/shm, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = PathBuf::from(format!(
            "/dev/shm/ms-ffi-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique name for this test and mode.
fn unique(tag: &str, mode: Mode) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}-{mode:?}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The command that runs `exe` in `mode`, with the library path and runtime directory set.
fn command(prefix: &Prefix, exe: &Path, mode: Mode, dir: &Dir) -> Command {
    let mut cmd = if mode == Mode::Valgrind {
        let mut cmd = Command::new("valgrind");
        cmd.args(["-q", "--error-exitcode=1", "--leak-check=full"])
            .arg(format!(
                "--suppressions={}",
                crate_dir().join("tests/valgrind.supp").display()
            ))
            .arg(exe);
        cmd
    } else {
        Command::new(exe)
    };
    cmd.env("LD_LIBRARY_PATH", prefix.lib())
        .env("MAILSLOT_DIR", &dir.0)
        // The user's own setting must not reach a test's process.
        .env_remove("MAILSLOT_PORT")
        .env("ASAN_OPTIONS", "detect_leaks=1:exitcode=1")
        .stdin(Stdio::null());
    cmd
}

/// Waits for `child` (at most [`GUARD`]), killing it on timeout.
fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + GUARD;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} hung:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` to its end; its stdout. Panics (with its output) unless it exits 0.
fn run_ok(mut cmd: Command, what: &str) -> String {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(child, what);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} exited with {}:\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A process whose stdout lines are read by a thread; killed if still running when dropped.
struct Proc {
    child: Option<Child>,
    lines: Receiver<String>,
    seen: Vec<String>,
    what: String,
}

impl Proc {
    fn spawn(mut cmd: Command, what: &str) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child: Some(child),
            lines,
            seen: Vec::new(),
            what: what.to_string(),
        }
    }

    /// Waits for a line equal to `want`.
    fn wait_line(&mut self, want: &str) {
        let deadline = Instant::now() + GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == want => {
                    self.seen.push(line);
                    return;
                }
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "{} never printed {want:?}; it printed {:?}",
                    self.what, self.seen
                ),
            }
        }
    }

    /// Waits for the process to exit 0; every stdout line it printed.
    fn success(mut self) -> Vec<String> {
        let child = self.child.take().unwrap();
        let out = finish(child, &self.what);
        self.seen.extend(self.lines.try_iter());
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        assert!(
            out.status.success(),
            "{} exited with {}:\n{:?}\n{}",
            self.what,
            out.status,
            self.seen,
            String::from_utf8_lossy(&out.stderr)
        );
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn sample(name: &str) -> PathBuf {
    crate_dir().join("examples/win32").join(name)
}

fn test_program(name: &str) -> PathBuf {
    crate_dir().join("tests/c").join(name)
}

#[test]
fn readme_example_builds_and_runs() {
    let Some(prefix) = prefix() else { return };
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let section = readme
        .split("## Using the library from C")
        .nth(1)
        .expect("README has a section for C");
    let code = section
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README's C section has a ```c example");
    let src = prefix.builds.join("readme_example.c");
    std::fs::write(&src, code).unwrap();
    for mode in ALL_MODES {
        if !available(prefix, mode) {
            continue;
        }
        let exe = build(prefix, &src, mode);
        let dir = Dir::new("readme");
        let out = run_ok(
            command(prefix, &exe, mode, &dir),
            &format!("README example ({mode:?})"),
        );
        assert!(
            out.starts_with("hello (5 bytes) from pid "),
            "{mode:?}: {out}"
        );
    }
}

#[test]
fn windows_semantics() {
    let Some(prefix) = prefix() else { return };
    for mode in ALL_MODES {
        if !available(prefix, mode) {
            continue;
        }
        let exe = build(prefix, &test_program("semantics.c"), mode);
        let dir = Dir::new("semantics");
        let name = unique("sem", mode);
        let mut cmd = command(prefix, &exe, mode, &dir);
        cmd.arg(&name);
        let out = run_ok(cmd, &format!("semantics ({mode:?})"));
        assert!(
            out.contains("semantics: ok: 0 failure(s)"),
            "{mode:?}: {out}"
        );
    }
}

#[test]
fn win32_samples_info_walk() {
    let Some(prefix) = prefix() else { return };
    for mode in ALL_MODES {
        if !available(prefix, mode) {
            continue;
        }
        let exe = build(prefix, &sample("slot_info.c"), mode);
        let dir = Dir::new("info");
        let mut cmd = command(prefix, &exe, mode, &dir);
        cmd.arg(unique("walk", mode));
        let out = run_ok(cmd, &format!("slot_info ({mode:?})"));
        assert!(out.contains("info walk: ok"), "{mode:?}: {out}");
    }
}

#[test]
fn win32_samples_reader_and_writer() {
    let Some(prefix) = prefix() else { return };
    for mode in ALL_MODES {
        if !available(prefix, mode) {
            continue;
        }
        let reader = build(prefix, &sample("slot_reader.c"), mode);
        let writer = build(prefix, &sample("slot_writer.c"), mode);
        let dir = Dir::new("samples");
        let name = unique("sample", mode);
        let mut cmd = command(prefix, &reader, mode, &dir);
        cmd.args([name.as_str(), "3"]);
        let mut reading = Proc::spawn(cmd, &format!("slot_reader ({mode:?})"));
        reading.wait_line("ready");
        // Another case, and the full path: names are case-insensitive.
        let path = format!("\\\\.\\mailslot\\{}", name.to_uppercase());
        let mut cmd = command(prefix, &writer, mode, &dir);
        cmd.args([
            path.as_str(),
            "Message one for the mailslot.",
            "",
            "Message three.",
        ]);
        let out = run_ok(cmd, &format!("slot_writer ({mode:?})"));
        assert_eq!(
            out, "wrote 29 bytes\nwrote 0 bytes\nwrote 14 bytes\n",
            "{mode:?}"
        );
        let lines = reading.success();
        let got: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.split_once("waiting): ").map(|(_, text)| text))
            .collect();
        assert_eq!(
            got,
            ["Message one for the mailslot.", "", "Message three."],
            "{mode:?}: {lines:?}"
        );
        // With nobody reading, the writer's CreateFile fails with ERROR_FILE_NOT_FOUND.
        let mut cmd = command(prefix, &writer, mode, &dir);
        cmd.args([path.as_str(), "x"]);
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{mode:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "CreateFile failed: error 2\n",
            "{mode:?}"
        );
    }
}

#[test]
fn a_shared_name_across_two_processes() {
    let Some(prefix) = prefix() else { return };
    for mode in ALL_MODES {
        if !available(prefix, mode) {
            continue;
        }
        let reader = build(prefix, &test_program("reader.c"), mode);
        let writer = build(prefix, &sample("slot_writer.c"), Mode::Shared);
        let dir = Dir::new("shared");
        let name = unique("shared", mode);
        let mut readers: Vec<Proc> = (0..2)
            .map(|i| {
                let mut cmd = command(prefix, &reader, mode, &dir);
                cmd.args([name.as_str(), "3", "shared"]);
                Proc::spawn(cmd, &format!("shared reader {i} ({mode:?})"))
            })
            .collect();
        for r in &mut readers {
            r.wait_line("ready");
        }
        let path = format!("\\\\.\\mailslot\\{name}");
        let mut cmd = command(prefix, &writer, Mode::Shared, &dir);
        cmd.args([path.as_str(), "first", "second", "third"]);
        run_ok(cmd, "slot_writer");
        for r in readers {
            let lines = r.success();
            let got: Vec<&String> = lines.iter().filter(|l| l.starts_with("got: ")).collect();
            assert_eq!(
                got,
                ["got: first", "got: second", "got: third"],
                "{mode:?}: every instance gets every message, in order: {lines:?}"
            );
        }
    }
}

#[test]
fn remote_writes_on_the_loopback() {
    let Some(prefix) = prefix() else { return };
    for mode in ALL_MODES {
        if !available(prefix, mode) {
            continue;
        }
        let reader = build(prefix, &test_program("reader.c"), mode);
        let writer = build(prefix, &sample("slot_writer.c"), mode);
        let send = build(prefix, &test_program("send.c"), mode);
        // The receiving host and the sending one: two runtime directories, one UDP port.
        let (receiving, sending) = (Dir::new("net-rx"), Dir::new("net-tx"));
        let port = ports::free_port().to_string();
        let ns_port = (ports::free_port() + 1).to_string();
        let net_env = |cmd: &mut Command, netbios: &str| {
            cmd.env("MAILSLOT_PORT", &port)
                .env("MAILSLOT_NAME_SERVICE_PORT", &ns_port)
                .env("MAILSLOT_NO_NAME_SERVICE", "1")
                .env("MAILSLOT_WORKGROUP", "TESTGRP")
                .env("MAILSLOT_NETBIOS_NAME", netbios)
                .env("MAILSLOT_BROADCAST", "127.255.255.255");
        };
        let name = unique("net", mode);
        let mut cmd = command(prefix, &reader, mode, &receiving);
        cmd.args([name.as_str(), "4", "network"]);
        net_env(&mut cmd, "CREADER");
        let mut reading = Proc::spawn(cmd, &format!("network reader ({mode:?})"));
        reading.wait_line("ready");
        // The role is taken in the background: wait until the reader holds the port.
        let state = receiving.0.join(format!("network-{port}.state"));
        let deadline = Instant::now() + GUARD;
        while !std::fs::read_to_string(&state)
            .unwrap_or_default()
            .contains("holding")
        {
            assert!(
                Instant::now() < deadline,
                "{mode:?}: the reader never held the role"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let writes = [
            (format!("\\\\127.0.0.1\\mailslot\\{name}"), "to the host"),
            (format!("\\\\*\\mailslot\\{name}"), "to every host"),
            (format!("\\\\TESTGRP\\mailslot\\{name}"), "to the workgroup"),
        ];
        for (path, text) in &writes {
            let mut cmd = command(prefix, &writer, mode, &sending);
            cmd.args([path.as_str(), text]);
            net_env(&mut cmd, "CWRITER");
            run_ok(cmd, &format!("slot_writer {path} ({mode:?})"));
        }
        let mut cmd = command(prefix, &send, mode, &sending);
        cmd.args([writes[0].0.as_str(), "through ms_write_to"]);
        net_env(&mut cmd, "CWRITER");
        assert_eq!(run_ok(cmd, "send"), "sent\n");
        // More than 424 bytes to a workgroup: ERROR_BAD_NETPATH, nothing sent.
        let big = "x".repeat(425);
        let mut cmd = command(prefix, &writer, mode, &sending);
        cmd.args([writes[1].0.as_str(), big.as_str()]);
        net_env(&mut cmd, "CWRITER");
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{mode:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "WriteFile failed: error 53\n",
            "{mode:?}"
        );
        let lines = reading.success();
        let mut got: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("got: "))
            .collect();
        // The datagrams travel independently: any order.
        got.sort_unstable();
        assert_eq!(
            got,
            [
                "through ms_write_to",
                "to every host",
                "to the host",
                "to the workgroup"
            ],
            "{mode:?}: {lines:?}"
        );
    }
}
