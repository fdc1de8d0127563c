//! Helpers shared by the integration tests: private runtime directories under `/dev/shm`,
//! checksummed messages, hang guards, and child processes.
//!
//! Child processes are this test binary run again (`current_exe() --exact child_process`)
//! with the role in `MAILSLOT_TEST_ROLE`; each test file has a `#[test] fn child_process()`
//! that calls [`child_main`], which returns at once when the variable is unset. Children
//! report on stdout, one line per fact, each starting with `@@ ` (libtest's own lines are
//! ignored). A child stops (drains, reports, exits) when its stdin reaches EOF, so a dying
//! parent never leaves children behind; every child is also killed when its [`Proc`] drops.
#![allow(dead_code)]

pub mod ports;
pub mod skip;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailslot::{
    Delivery, ErrorKind, MailslotName, Overflow, Scope, Server, ServerBuilder, Source, Timeout,
    Writer,
};

/// Environment variable carrying a child's role.
pub const ROLE_ENV: &str = "MAILSLOT_TEST_ROLE";
/// The `#[test]` function every test file defines for its children.
pub const CHILD_TEST: &str = "child_process";
/// Bound on any single wait: reaching it means a hang (the test fails), never slowness.
pub const HANG: Duration = Duration::from_secs(30);
/// Writer id of the end marker the parent writes after every writer is done.
pub const END: u32 = u32::MAX;
/// Writer id of the messages a probe child writes (the sequence is its pid).
pub const PROBE_WRITER: u32 = 0xfeed;
/// A capacity that never overflows in ordering tests.
pub const BIG: usize = 64 << 20;

// ---- runtime directories ---------------------------------------------------------------

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique path under /dev/shm, removed (with its content) on drop.
#[derive(Debug)]
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    /// A fresh private (0700) directory.
    pub fn new(tag: &str) -> TestDir {
        let dir = TestDir::reserve(tag);
        fs::create_dir(&dir.path).expect("create test dir");
        fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o700)).expect("chmod 700");
        dir
    }

    /// A unique path that does not exist yet (the code under test creates it).
    pub fn reserve(tag: &str) -> TestDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!(
            "/dev/shm/mailslot-test-{tag}-{}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn scope(&self) -> Scope {
        Scope::Dir(self.path.clone())
    }

    pub fn env(&self) -> String {
        self.path.display().to_string()
    }

    /// File names in the directory (hidden ones included), sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(&self.path) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---- checksummed messages --------------------------------------------------------------

/// A 64-bit checksum of `data`, word at a time (fast enough in debug builds).
pub fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ data.len() as u64;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        h = (h ^ word)
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A message from writer `w`, sequence `s`, with `payload` bytes of body:
/// `[w u32][s u32][body][checksum of all before u64]`, the body different in every message.
pub fn encode(w: u32, s: u32, payload: usize) -> Vec<u8> {
    let mut data = vec![0u8; 8 + payload + 8];
    data[0..4].copy_from_slice(&w.to_le_bytes());
    data[4..8].copy_from_slice(&s.to_le_bytes());
    let seed = (u64::from(w) << 32 | u64::from(s)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let body = &mut data[8..8 + payload];
    let mut words = body.chunks_exact_mut(8);
    for (i, word) in (&mut words).enumerate() {
        let mix = (i as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
        word.copy_from_slice(&(seed ^ mix).to_le_bytes());
    }
    for (j, b) in words.into_remainder().iter_mut().enumerate() {
        *b = (seed >> (8 * j)) as u8;
    }
    let sum = checksum(&data[..8 + payload]);
    data[8 + payload..].copy_from_slice(&sum.to_le_bytes());
    data
}

/// `(writer, sequence)` of a message made by [`encode`], `None` if it is damaged.
pub fn decode(data: &[u8]) -> Option<(u32, u32)> {
    if data.len() < 16 {
        return None;
    }
    let (body, sum) = data.split_at(data.len() - 8);
    if checksum(body) != u64::from_le_bytes(sum.try_into().ok()?) {
        return None;
    }
    let w = u32::from_le_bytes(data[0..4].try_into().ok()?);
    let s = u32::from_le_bytes(data[4..8].try_into().ok()?);
    Some((w, s))
}

/// Body sizes of the `mixed` pattern: empty to 64 KiB, so records wrap the ring at odd places
/// and some appends take long enough to be killed half-way.
const MIXED: [usize; 8] = [0, 7, 100, 424, 1500, 9000, 65000, 50];

pub fn payload_size(pattern: &str, w: u32, s: u32) -> usize {
    match pattern {
        "mixed" => MIXED[((s as usize) + (w as usize)) % MIXED.len()],
        _ => ((s as usize * 7) + (w as usize * 13)) % 120,
    }
}

// ---- hang guards -----------------------------------------------------------------------

/// Runs `f` on a thread and fails the test if it does not finish within [`HANG`].
pub fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: still running after {HANG:?} (hang)"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: the thread panicked"),
    }
}

/// Waits until `cond` holds, failing the test after [`HANG`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {HANG:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether `fd` is readable now or within `timeout_ms` (`poll(2)`).
pub fn poll_readable(fd: impl AsFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is a valid, initialised pollfd that lives across the call, and the
        // count passed is 1; `fd` is borrowed for the duration, so the descriptor is open.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
        return n > 0 && pfd.revents & libc::POLLIN != 0;
    }
}

/// Sends `signal` to process `pid`.
pub fn send_signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// Raises the soft limit of open files to the hard limit (for tests with many names).
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit the call fills in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: `limit` is a valid rlimit read just above; raising the soft limit up to the hard
    // limit needs no privilege.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    limit.rlim_cur
}

// ---- privilege ----------------------------------------------------------------------------

/// This process's user id.
pub fn my_uid() -> u32 {
    fs::metadata("/proc/self").expect("/proc/self").uid()
}

/// Whether this process runs as root (needed to run children as another user).
pub fn is_root() -> bool {
    my_uid() == 0
}

/// `true` if a test needing root and `setpriv` can run; otherwise skips ([`skip::skip`]: a
/// failure when `CI` is set, since CI runs as root and must run it). `_test` names the test at
/// the call site; the skip is reported under the harness's name for it.
pub fn require_root(_test: &str) -> bool {
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .iter()
        .any(|p| Path::new(p).exists());
    let why = if !is_root() {
        "not running as root"
    } else if !setpriv {
        "setpriv (util-linux) is not installed"
    } else {
        return true;
    };
    skip::skip(why);
    false
}

// ---- child processes ----------------------------------------------------------------------

/// A child process (this test binary in a role), killed if still running on drop.
#[derive(Debug)]
pub struct Proc {
    pub label: String,
    pub pid: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    exited: bool,
    /// A copy of the test binary another user can run, removed after the child.
    _exe_copy: Option<TestDir>,
}

/// Spawns this test binary as a child in `role`, with `envs`.
pub fn spawn(label: &str, role: &str, envs: &[(&str, String)]) -> Proc {
    spawn_as(label, None, role, envs)
}

/// Like [`spawn`], run through `setpriv ARGS` when `setpriv` is given (another user).
pub fn spawn_as(
    label: &str,
    setpriv: Option<&[&str]>,
    role: &str,
    envs: &[(&str, String)],
) -> Proc {
    let mut exe = std::env::current_exe().expect("current_exe");
    let mut exe_copy = None;
    let mut cmd = match setpriv {
        Some(args) => {
            // The other user may not reach the build directory: run a copy it can reach.
            let reachable = Command::new("setpriv")
                .args(args)
                .args(["--", "test", "-x"])
                .arg(&exe)
                .status()
                .is_ok_and(|s| s.success());
            if !reachable {
                let dir = TestDir::new("exe");
                fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
                    .expect("chmod the copy's directory");
                let copy = dir.path().join("child");
                fs::copy(&exe, &copy).expect("copy the test binary");
                fs::set_permissions(&copy, fs::Permissions::from_mode(0o755))
                    .expect("chmod the copy");
                exe = copy;
                exe_copy = Some(dir);
            }
            let mut cmd = Command::new("setpriv");
            cmd.args(args).arg("--").arg(&exe);
            cmd
        }
        None => Command::new(&exe),
    };
    cmd.args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env_remove("MAILSLOT_DIR")
        .env_remove("MAILSLOT_GLOBAL_DIR")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{label}: spawn: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let stderr_pipe = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may have printed "test child_process ... " on the same line.
            if let Some(at) = line.find("@@ ") {
                if tx.send(line[at + 3..].to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&stderr);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut pipe = stderr_pipe;
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
            if text.len() < 64 << 10 {
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    Proc {
        label: label.to_owned(),
        pid: child.id(),
        stdin: child.stdin.take(),
        child,
        lines,
        stderr,
        exited: false,
        _exe_copy: exe_copy,
    }
}

impl Proc {
    fn fail(&self, why: &str) -> ! {
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        panic!(
            "child {} (pid {}): {why}\n--- its stderr ---\n{stderr}",
            self.label, self.pid
        );
    }

    /// The next report line; `None` at EOF.
    pub fn next_line(&self) -> Option<String> {
        match self.lines.recv_timeout(HANG) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => self.fail("no report within the hang bound"),
        }
    }

    /// The next report line, which must start with `prefix`.
    pub fn expect(&self, prefix: &str) -> String {
        match self.next_line() {
            Some(line) if line.starts_with(prefix) => line,
            Some(line) => self.fail(&format!("expected \"{prefix}...\", got \"{line}\"")),
            None => self.fail(&format!("exited before reporting \"{prefix}...\"")),
        }
    }

    /// The next report line within `timeout`; `None` at EOF or when none came in time (for
    /// tests that report a hang as a finding instead of failing at once).
    pub fn next_line_within(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// What the child wrote on stderr so far (the first 64 KiB).
    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every report line until EOF.
    pub fn lines_to_end(&self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(line) = self.next_line() {
            out.push(line);
        }
        out
    }

    /// Sends one command line on stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to child");
        stdin.flush().expect("flush to child");
    }

    /// Like [`Proc::send`], an `Err` instead of a panic when the child is gone (for tests that
    /// report a dead child as a finding).
    pub fn try_send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| {
                format!(
                    "{} (pid {}): cannot send \"{line}\": {e}",
                    self.label, self.pid
                )
            })
    }

    /// Closes stdin: the child stops (drains, reports, exits).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn signal(&self, signal: libc::c_int) {
        send_signal(self.pid, signal);
    }

    /// SIGSTOP, and wait until the kernel shows the child stopped (a signal is delivered
    /// asynchronously: the child may run a little longer).
    pub fn stop(&self) {
        self.signal(libc::SIGSTOP);
        let stat = format!("/proc/{}/stat", self.pid);
        wait_until(&format!("{} stopped", self.label), || {
            fs::read_to_string(&stat)
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, rest)| rest.trim_start().starts_with('T'))
                })
                .unwrap_or(false)
        });
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exited = true;
    }

    /// Waits for the exit (after closing stdin), failing after [`HANG`].
    pub fn wait(&mut self) -> ExitStatus {
        self.close_stdin();
        let deadline = Instant::now() + HANG;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exited = true;
                    return status;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    self.exited = true;
                    self.fail("did not exit within the hang bound");
                }
                Err(e) => self.fail(&format!("wait: {e}")),
            }
        }
    }

    /// Waits for a successful exit.
    pub fn wait_ok(&mut self) {
        let status = self.wait();
        if !status.success() {
            self.fail(&format!("exited with {status}"));
        }
    }

    /// Reads a reader's whole report (to EOF) and waits for its exit.
    pub fn reader_log(&mut self) -> ReaderLog {
        let log = ReaderLog::parse(&self.label, &self.lines_to_end());
        self.wait_ok();
        if !log.done {
            self.fail(&format!("did not finish its report: {:?}", log.other));
        }
        log
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.exited {
            // SIGKILL ends a stopped child too.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a reader child reported.
#[derive(Debug, Default, Clone)]
pub struct ReaderLog {
    pub label: String,
    pub id: u64,
    /// `(writer, sequence)` in the order received (the end marker excluded).
    pub msgs: Vec<(u32, u32)>,
    /// Total of the messages' `lost` counts (the end marker's included).
    pub lost: u64,
    /// Messages whose checksum failed.
    pub bad: usize,
    /// Writer id -> source pid seen.
    pub pids: HashMap<u32, u32>,
    /// Source uids seen.
    pub uids: HashSet<u32>,
    pub done: bool,
    pub other: Vec<String>,
}

impl ReaderLog {
    pub fn parse(label: &str, lines: &[String]) -> ReaderLog {
        let mut log = ReaderLog {
            label: label.to_owned(),
            ..ReaderLog::default()
        };
        for line in lines {
            let f: Vec<&str> = line.split(' ').collect();
            match f[0] {
                "ready" => log.id = f[1].parse().unwrap_or(0),
                "m" => {
                    let w: u32 = f[1].parse().expect("w");
                    let s: u32 = f[2].parse().expect("s");
                    log.lost += f[3].parse::<u64>().expect("lost");
                    let pid: u32 = f[4].parse().expect("pid");
                    log.uids.insert(f[5].parse().expect("uid"));
                    log.msgs.push((w, s));
                    if w == PROBE_WRITER {
                        continue; // many probes, one writer id
                    }
                    let seen = *log.pids.entry(w).or_insert(pid);
                    assert_eq!(seen, pid, "{label}: writer {w} came from two pids");
                }
                "bad" => log.bad += 1,
                "done" => {
                    log.done = true;
                    log.lost += f[2].parse::<u64>().expect("lost at end");
                }
                _ => log.other.push(line.clone()),
            }
        }
        log
    }

    /// Asserts that, per writer, sequences come in increasing order without repeats.
    pub fn assert_fifo_per_writer(&self) {
        let mut last: HashMap<u32, u32> = HashMap::new();
        for &(w, s) in &self.msgs {
            if let Some(&prev) = last.get(&w) {
                assert!(
                    s > prev,
                    "{}: writer {w}: sequence {s} after {prev} (out of order or duplicated)",
                    self.label
                );
            }
            last.insert(w, s);
        }
    }
}

/// Spawns a reader child of `name` in `dir` with extra settings (`MS_*` variables).
pub fn spawn_reader(label: &str, dir: &TestDir, name: &str, extra: &[(&str, String)]) -> Proc {
    let mut envs = vec![("MS_DIR", dir.env()), ("MS_NAME", name.to_owned())];
    envs.extend(extra.iter().cloned());
    let proc = spawn(label, "reader", &envs);
    proc.expect("ready");
    proc
}

/// Spawns a writer child of `name` in `dir`; it waits for `go` on stdin before writing.
pub fn spawn_writer(
    label: &str,
    dir: &TestDir,
    name: &str,
    writer: u32,
    count: u32,
    extra: &[(&str, String)],
) -> Proc {
    let mut envs = vec![
        ("MS_DIR", dir.env()),
        ("MS_NAME", name.to_owned()),
        ("MS_WRITER", writer.to_string()),
        ("MS_COUNT", count.to_string()),
    ];
    envs.extend(extra.iter().cloned());
    let proc = spawn(label, "writer", &envs);
    proc.expect("ready");
    proc
}

/// Writes the end marker (after every writer is done): readers stop when they read it.
pub fn write_end(scope: &Scope, name: &str) {
    let mut writer = Writer::open_in(scope, name).expect("open writer for the end marker");
    writer
        .write(&encode(END, 0, 0))
        .expect("write the end marker");
}

// ---- the child side -------------------------------------------------------------------------

/// Runs the role named by [`ROLE_ENV`] and exits; returns at once when it is unset.
pub fn child_main() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let code = match role.as_str() {
        "reader" => role_reader(),
        "writer" => role_writer(),
        "probe" => role_probe(),
        "service" => role_service(),
        "forker" => role_forker(),
        "fork_writer" => role_fork_writer(),
        "one_shot" => role_one_shot(),
        "robust_reader" => role_robust_reader(),
        "robust_writer" => role_robust_writer(),
        "netrole" => role_netrole(),
        other => {
            eprintln!("unknown role {other}");
            2
        }
    };
    std::process::exit(code);
}

/// Opens `MS_NAME`, forks a child that drops its copy of the server and exits, then says
/// `ready` and reports the first message it reads (`got TEXT`, or `err KIND`).
/// Opens a writer of `MS_NAME`, writes once (so it has its append token), forks, and then
/// both processes write through the one inherited writer (writer id 0 in the parent, 1 in the
/// child), 16 messages at a time with a short pause, until the file `MS_STOP` exists. Reports
/// `timedout W` the first time writer W's append lock wait times out, `err W KIND` for other
/// failures, and the parent `done STATUS` with the child's wait status.
fn role_fork_writer() -> i32 {
    let stop = PathBuf::from(env_str("MS_STOP", "/nonexistent"));
    let Some(mut writer) = open_writer(&mut out()) else {
        return 1;
    };
    writer.write(&encode(0, 0, 16)).expect("first write");
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: this process runs only this thread's code now; the child writes and exits.
    let pid = unsafe { libc::fork() };
    let mut out = out();
    let me = u32::from(pid == 0);
    if pid != 0 {
        // Stopped before this, the parent could hold the lock with no child to wait for it.
        report_now(&mut out, "forked");
    }
    let mut timed_out = false;
    for s in 1.. {
        if s % 16 == 0 {
            // The child also stops when its parent is gone (a failed test kills the parent,
            // never this grandchild, which would otherwise write forever).
            // SAFETY: getppid has no preconditions.
            if stop.exists() || (pid == 0 && unsafe { libc::getppid() } != parent) {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        match writer.write(&encode(me, s, 32)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                if !timed_out {
                    timed_out = true;
                    report_now(&mut out, &format!("timedout {me}"));
                }
            }
            Err(e) => report_now(&mut out, &format!("err {me} {:?}", e.kind())),
        }
    }
    if pid == 0 {
        // SAFETY: exit without running the parent's atexit handlers or flushing its buffers.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    report_now(&mut out, &format!("done {status}"));
    0
}

/// One-shot writes (`mailslot::write`, the user scope: set `MAILSLOT_DIR`): each stdin line
/// is written to `MS_NAME` as a message, and the result reported (`ok` or the error kind).
fn role_one_shot() -> i32 {
    let control = control();
    let mut out = out();
    let name = env_str("MS_NAME", "x");
    report_now(&mut out, "ready");
    while let Ok(line) = control.lines.recv() {
        report_now(&mut out, &kind_of(mailslot::write(&name, line.as_bytes())));
    }
    0
}

/// A writer of `MS_NAME`, or `None` after reporting `open-err KIND MSG`.
fn open_writer(out: &mut Out) -> Option<Writer> {
    match Writer::open_in(&child_scope(), &env_str("MS_NAME", "x")) {
        Ok(writer) => Some(writer),
        Err(e) => {
            report_now(out, &format!("open-err {:?} {e}", e.kind()));
            None
        }
    }
}

fn role_forker() -> i32 {
    let mut out = out();
    let mut server = match child_builder().open() {
        Ok(server) => server,
        Err(e) => {
            report_now(&mut out, &format!("open-err {:?} {e}", e.kind()));
            return 1;
        }
    };
    // SAFETY: this process runs only this thread's code now (no other thread of ours holds a
    // lock the child could need); the child only drops the server and exits at once.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(server);
        // SAFETY: exit without running the parent's atexit handlers or flushing its buffers.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    report_now(&mut out, "ready");
    server.set_read_timeout(Timeout::After(Duration::from_secs(10)));
    match server.recv() {
        Ok(m) => report_now(
            &mut out,
            &format!("got {}", String::from_utf8_lossy(&m.data)),
        ),
        Err(e) => report_now(&mut out, &format!("err {:?}", e.kind())),
    }
    0
}

/// The host service on `MS_DIR`, until killed.
fn role_service() -> i32 {
    let dir = PathBuf::from(env_str("MS_DIR", ""));
    let service = match mailslot::service::HostService::bind(&dir) {
        Ok(service) => service,
        Err(e) => {
            eprintln!("service: {e}");
            return 1;
        }
    };
    report_now(&mut out(), "ready");
    match service.run(&AtomicBool::new(false)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("service: {e}");
            1
        }
    }
}

fn env_str(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn child_scope() -> Scope {
    match env_str("MS_SCOPE", "dir").as_str() {
        "user" => Scope::User,
        "global" => Scope::Global,
        _ => Scope::Dir(PathBuf::from(env_str("MS_DIR", ""))),
    }
}

fn child_builder() -> ServerBuilder {
    let mut builder = Server::builder(&env_str("MS_NAME", "x"))
        .scope(child_scope())
        .shared(env_u64("MS_SHARED", 1) == 1)
        .delivery(if env_str("MS_DELIVERY", "all") == "one" {
            Delivery::One
        } else {
            Delivery::All
        })
        .overflow(match env_str("MS_OVERFLOW", "drop").as_str() {
            "refuse" => Overflow::Refuse,
            "block" => Overflow::Block,
            _ => Overflow::DropOldest,
        })
        .capacity(env_u64("MS_CAPACITY", BIG as u64) as usize)
        .max_message_size(env_u64("MS_MAX", 0) as usize)
        .read_timeout(Timeout::After(Duration::from_millis(20)));
    if let Ok(mode) = std::env::var("MS_MODE") {
        builder = builder.mode(u32::from_str_radix(&mode, 8).expect("octal MS_MODE"));
    }
    if let Ok(gid) = std::env::var("MS_GROUP") {
        builder = builder.group(gid.parse().expect("MS_GROUP"));
    }
    builder
}

/// stdin of a child: lines as commands, EOF as "stop".
struct Control {
    stop: Arc<AtomicBool>,
    lines: Receiver<String>,
}

fn control() -> Control {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
        flag.store(true, Ordering::SeqCst);
    });
    Control { stop, lines }
}

type Out = BufWriter<std::io::StdoutLock<'static>>;

fn out() -> Out {
    BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

fn report(out: &mut Out, line: &str) {
    let _ = writeln!(out, "@@ {line}");
}

fn report_now(out: &mut Out, line: &str) {
    report(out, line);
    let _ = out.flush();
}

/// Reader: `ready ID PID`, then `m W S LOST PID` per message (`bad LEN` when damaged), then
/// `done COUNT LOST` after the end marker, `MS_LIMIT` messages (it then leaves), or stdin EOF
/// once drained. With `MS_INSTANCES` > 1 it opens that many instances and only holds them.
fn role_reader() -> i32 {
    let control = control();
    let mut out = out();
    let instances = env_u64("MS_INSTANCES", 1);
    if instances > 1 {
        let mut held = Vec::new();
        for _ in 0..instances {
            match child_builder().open() {
                Ok(server) => held.push(server),
                Err(e) => {
                    report_now(&mut out, &format!("open-err {:?} {e}", e.kind()));
                    return 1;
                }
            }
        }
        let ids: Vec<String> = held.iter().map(|s| s.instance_id().to_string()).collect();
        report_now(&mut out, &format!("ready {}", ids.join(" ")));
        while control.lines.recv().is_ok() {}
        return 0;
    }
    let mut server = match child_builder().open() {
        Ok(server) => server,
        Err(e) => {
            report_now(&mut out, &format!("open-err {:?} {e}", e.kind()));
            return 1;
        }
    };
    report_now(
        &mut out,
        &format!("ready {} {}", server.instance_id(), std::process::id()),
    );
    let limit = env_u64("MS_LIMIT", 0);
    let (mut count, mut lost) = (0u64, 0u64);
    let mut last = Instant::now();
    loop {
        let stopping = control.stop.load(Ordering::SeqCst);
        match server.recv() {
            Ok(msg) => {
                last = Instant::now();
                let (pid, uid) = match msg.source {
                    Source::Local { pid, uid } => (pid, uid),
                    Source::Network { .. } => (0, u32::MAX),
                };
                match decode(&msg.data) {
                    Some((END, _)) => {
                        lost += msg.lost;
                        break;
                    }
                    Some((w, s)) => {
                        report(&mut out, &format!("m {w} {s} {} {pid} {uid}", msg.lost));
                        count += 1;
                    }
                    None => report(&mut out, &format!("bad {}", msg.data.len())),
                }
                if limit > 0 && count >= limit {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                if stopping {
                    break;
                }
                if last.elapsed() > HANG {
                    report_now(&mut out, "idle");
                    return 3;
                }
            }
            Err(e) => {
                report_now(&mut out, &format!("err {:?} {e}", e.kind()));
                return 1;
            }
        }
    }
    report_now(&mut out, &format!("done {count} {lost}"));
    drop(server);
    0
}

/// Writer: `ready`, waits for `go`, writes `MS_COUNT` messages (`MS_SIZES` small|mixed,
/// a 1 ms pause every `MS_PACE` messages, `progress` after `MS_PROGRESS`), then `done N`.
fn role_writer() -> i32 {
    let control = control();
    let mut out = out();
    let w = env_u64("MS_WRITER", 0) as u32;
    let count = env_u64("MS_COUNT", 1000) as u32;
    let sizes = env_str("MS_SIZES", "small");
    let pace = env_u64("MS_PACE", 0) as u32;
    let progress = env_u64("MS_PROGRESS", 0) as u32;
    let Some(mut writer) = open_writer(&mut out) else {
        return 1;
    };
    report_now(&mut out, "ready");
    match control.lines.recv_timeout(HANG) {
        Ok(line) if line == "go" => {}
        _ => return 1,
    }
    let mut written = 0;
    for s in 0..count {
        if control.stop.load(Ordering::Relaxed) {
            break;
        }
        let data = encode(w, s, payload_size(&sizes, w, s));
        if let Err(e) = writer.write(&data) {
            report_now(&mut out, &format!("err {:?} {s} {e}", e.kind()));
            return 1;
        }
        written += 1;
        if written == progress {
            report_now(&mut out, "progress");
        }
        if pace > 0 && written % pace == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    report_now(&mut out, &format!("done {written}"));
    0
}

fn kind_of<T>(result: Result<T, mailslot::Error>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("{:?}", e.kind()),
    }
}

fn io_kind_of<T>(result: std::io::Result<T>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("{:?}", e.kind()),
    }
}

/// Probe: runs the operations in `MS_OPS` (comma-separated) on `MS_NAME` and reports
/// `OP RESULT` for each, RESULT being `ok` or the error kind.
fn role_probe() -> i32 {
    let mut out = out();
    let name = env_str("MS_NAME", "x");
    let dir = PathBuf::from(env_str("MS_DIR", ""));
    let scope = child_scope();
    let ops = env_str("MS_OPS", "");
    let server = |shared: bool, name: &str| {
        Server::builder(name)
            .scope(scope.clone())
            .shared(shared)
            .read_timeout(Timeout::Immediate)
            .open()
    };
    for op in ops.split(',').filter(|op| !op.is_empty()) {
        let result = match op {
            "server" => kind_of(server(false, &name)),
            "server_shared" => kind_of(server(true, &name)),
            "create_other" => kind_of(server(false, &format!("{name}-other"))),
            "write" => kind_of(
                Writer::open_in(&scope, &name)
                    .and_then(|mut w| w.write(&encode(PROBE_WRITER, std::process::id(), 0))),
            ),
            "oneshot" => kind_of(mailslot::write(&name, &encode(7, 7, 3))),
            "list" => match mailslot::list(&dir) {
                Ok(list) => format!("ok {}", list.len()),
                Err(e) => format!("{:?}", e.kind()),
            },
            "status" => match mailslot::status_of(&dir, &MailslotName::parse(&name).expect("name"))
            {
                Ok(Some(_)) => "ok".to_owned(),
                Ok(None) => "none".to_owned(),
                Err(e) => format!("{:?}", e.kind()),
            },
            "rawopen" => {
                let file = MailslotName::parse(&name).expect("name").file_name();
                io_kind_of(
                    fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(dir.join(file)),
                )
            }
            "readdir" => io_kind_of(fs::read_dir(&dir)),
            other => format!("unknown-op {other}"),
        };
        report(&mut out, &format!("{op} {result}"));
    }
    report_now(&mut out, "end");
    0
}

/// Runs a probe child (optionally as another user) and returns `op -> result`.
pub fn probe(
    label: &str,
    setpriv: Option<&[&str]>,
    ops: &[&str],
    envs: &[(&str, String)],
) -> HashMap<String, String> {
    let mut all = vec![("MS_OPS", ops.join(","))];
    all.extend(envs.iter().cloned());
    let mut proc = spawn_as(label, setpriv, "probe", &all);
    let mut results = HashMap::new();
    loop {
        let line = match proc.next_line() {
            Some(line) => line,
            None => proc.fail("exited before finishing its probes"),
        };
        if line == "end" {
            break;
        }
        let (op, result) = line.split_once(' ').expect("OP RESULT");
        results.insert(op.to_owned(), result.to_owned());
    }
    proc.wait_ok();
    results
}

// ---- roles of tests/robust.rs (damaged shared files, a full filesystem) ----------------------

/// Reader that outlives errors: like `reader`, but no error ends it, and every line is flushed
/// at once. Reports `ready ID PID` (or `open-err KIND MSG` and exits 1), then `m W S LOST` per
/// message, `bad LEN LOST` per message that does not decode (a message nobody wrote), `c MSG`
/// per `Corrupted`, `e KIND MSG` per other error except `TimedOut`, `end R LOST` at the end
/// marker `encode(END, R, 0)` (it then leaves), and `done COUNT` last. After stdin EOF it
/// leaves at the first `TimedOut`. `MS_TIMEOUT_MS` is its read timeout (default 20;
/// `forever`: no timeout, it then leaves only at the marker). After 1000 errors in a row
/// without a message or a timeout in between it reports `stuck` and exits 4.
fn role_robust_reader() -> i32 {
    let control = control();
    let mut out = out();
    let timeout = match env_str("MS_TIMEOUT_MS", "20").as_str() {
        "forever" => Timeout::Forever,
        ms => Timeout::After(Duration::from_millis(ms.parse().expect("MS_TIMEOUT_MS"))),
    };
    let mut server = match child_builder().read_timeout(timeout).open() {
        Ok(server) => server,
        Err(e) => {
            report_now(&mut out, &format!("open-err {:?} {e}", e.kind()));
            return 1;
        }
    };
    report_now(
        &mut out,
        &format!("ready {} {}", server.instance_id(), std::process::id()),
    );
    let (mut count, mut errors_in_row) = (0u64, 0u32);
    loop {
        let stopping = control.stop.load(Ordering::SeqCst);
        match server.recv() {
            Ok(msg) => {
                errors_in_row = 0;
                match decode(&msg.data) {
                    Some((END, round)) => {
                        report_now(&mut out, &format!("end {round} {}", msg.lost));
                        break;
                    }
                    Some((w, s)) => {
                        report_now(&mut out, &format!("m {w} {s} {}", msg.lost));
                        count += 1;
                    }
                    None => report_now(&mut out, &format!("bad {} {}", msg.data.len(), msg.lost)),
                }
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                errors_in_row = 0;
                if stopping {
                    break;
                }
            }
            Err(e) => {
                let line = match e.kind() {
                    ErrorKind::Corrupted => format!("c {e}"),
                    kind => format!("e {kind:?} {e}"),
                };
                report_now(&mut out, &line.replace('\n', " "));
                errors_in_row += 1;
                if errors_in_row >= 1000 {
                    report_now(&mut out, "stuck");
                    return 4;
                }
            }
        }
    }
    report_now(&mut out, &format!("done {count}"));
    drop(server);
    0
}

/// Writer that outlives errors: opens `MS_NAME` (`ready`, or `open-err KIND MSG` and exits 1),
/// then obeys stdin. `go` writes the next `MS_COUNT` messages of writer `MS_WRITER` (sequence
/// numbers go on from the previous `go`; `MS_SIZES` as for `writer`), reporting
/// `err KIND S MSG` per failed write and giving up after `MS_GIVE_UP` (3) failures in a row,
/// or at the first `TimedOut` (`gave-up`), `progress` after `MS_PROGRESS` attempts, then
/// `done OK FAILED`. `end R` writes the end marker `encode(END, R, 0)` and reports `end ok` or
/// `end err KIND MSG`. Exits 0 at stdin EOF.
fn role_robust_writer() -> i32 {
    let control = control();
    let mut out = out();
    let w = env_u64("MS_WRITER", 0) as u32;
    let count = env_u64("MS_COUNT", 100) as u32;
    let sizes = env_str("MS_SIZES", "small");
    let progress = env_u64("MS_PROGRESS", 0) as u32;
    let give_up = env_u64("MS_GIVE_UP", 3) as u32;
    let Some(mut writer) = open_writer(&mut out) else {
        return 1;
    };
    report_now(&mut out, "ready");
    let mut next = 0u32;
    while let Ok(line) = control.lines.recv() {
        if line == "go" {
            let (mut ok, mut failed, mut in_row) = (0u32, 0u32, 0u32);
            for attempt in 1..=count {
                let s = next;
                next += 1;
                match writer.write(&encode(w, s, payload_size(&sizes, w, s))) {
                    Ok(()) => {
                        ok += 1;
                        in_row = 0;
                    }
                    Err(e) => {
                        failed += 1;
                        // A lock that stayed taken for seconds stays taken: give up at once.
                        in_row = if e.kind() == ErrorKind::TimedOut {
                            give_up
                        } else {
                            in_row + 1
                        };
                        let line = format!("err {:?} {s} {e}", e.kind());
                        report_now(&mut out, &line.replace('\n', " "));
                    }
                }
                if attempt == progress {
                    report_now(&mut out, "progress");
                }
                if in_row >= give_up {
                    report_now(&mut out, "gave-up");
                    break;
                }
            }
            report_now(&mut out, &format!("done {ok} {failed}"));
        } else if let Some(round) = line.strip_prefix("end ") {
            let round: u32 = round.parse().expect("end ROUND");
            let line = match writer.write(&encode(END, round, 0)) {
                Ok(()) => "end ok".to_owned(),
                Err(e) => format!("end err {:?} {e}", e.kind()),
            };
            report_now(&mut out, &line.replace('\n', " "));
        }
    }
    0
}

/// Network role: holds the role of `MS_DIR` on UDP port `MS_PORT` as NetBIOS name `MS_NB`,
/// delivering every mailslot write it receives into the local mailslots of `MS_DIR`. Reports
/// `ready` once it holds the role (`start-err MSG` or `not-held STATE` and exits 1), then at
/// stdin EOF `counters KEY=VALUE ...` and exits 0.
fn role_netrole() -> i32 {
    use mailslot::net::{NetConfig, NetRole, Reporter, RoleState};
    let control = control();
    let mut out = out();
    let dir = PathBuf::from(env_str("MS_DIR", ""));
    let mut config = NetConfig::new(&dir);
    config.port = env_u64("MS_PORT", 0) as u16;
    config.netbios_name = env_str("MS_NB", "ROBUST");
    config.workgroup = "TESTGRP".into();
    config.broadcast = vec![std::net::Ipv4Addr::new(127, 255, 255, 255)];
    config.name_service = false;
    config.name_service_port = config.port.wrapping_add(1);
    config.reporter = Reporter::silent();
    let role = match NetRole::start(config, mailslot::net::Sink::Local) {
        Ok(role) => role,
        Err(e) => {
            report_now(&mut out, &format!("start-err {e}"));
            return 1;
        }
    };
    match role.wait_settled(HANG) {
        RoleState::Holding { .. } => report_now(&mut out, "ready"),
        other => {
            report_now(&mut out, &format!("not-held {other:?}"));
            return 1;
        }
    }
    while control.lines.recv().is_ok() {}
    let fields: Vec<String> = role
        .counters()
        .fields()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    report_now(&mut out, &format!("counters {}", fields.join(" ")));
    drop(role);
    0
}
