//! Child processes: the bench re-executes itself with the hidden `__child` subcommand, talks to
//! each child over its stdin/stdout with one `key=value ...` line per event, and kills what is
//! left when a scenario fails (so a hung transport cannot hang the run).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

/// How long any single step (a child getting ready, a round finishing) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

pub type BenchResult<T> = Result<T, String>;

/// One parsed `key=value ...` line.
#[derive(Debug, Clone, Default)]
pub struct Line {
    pub kind: String,
    fields: HashMap<String, String>,
}

impl Line {
    pub fn parse(text: &str) -> Line {
        let mut words = text.split_whitespace();
        let kind = words.next().unwrap_or_default().to_owned();
        let fields = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Line { kind, fields }
    }

    pub fn u64(&self, key: &str) -> BenchResult<u64> {
        self.fields
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("child line `{}` lacks a number `{key}`", self.kind))
    }

    pub fn f64(&self, key: &str) -> BenchResult<f64> {
        self.fields
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("child line `{}` lacks a number `{key}`", self.kind))
    }
}

/// A running child process of the bench.
#[derive(Debug)]
pub struct Child {
    label: String,
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

/// How to start a child other than as a plain copy of this process: as another user (through
/// `setpriv`, running a copy of the binary that user can reach) and with extra environment.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// `setpriv` arguments (`--reuid=N --regid=N --clear-groups`) and the binary to run.
    pub setpriv: Option<(Vec<String>, PathBuf)>,
    pub env: Vec<(&'static str, String)>,
    /// A command that runs the bench binary (e.g. `perf stat ... --`): its words, then the
    /// binary's path and arguments.
    pub wrapper: Option<Vec<String>>,
}

impl Child {
    /// Starts `current_exe __child <args>`, with extra inherited descriptors left open.
    pub fn spawn(label: &str, args: &[String]) -> BenchResult<Child> {
        Child::spawn_with(label, args, &Launch::default())
    }

    /// Like [`Child::spawn`], started as `launch` says.
    pub fn spawn_with(label: &str, args: &[String], launch: &Launch) -> BenchResult<Child> {
        let mut command = match &launch.setpriv {
            Some((setpriv, exe)) => {
                let mut command = Command::new("setpriv");
                command.args(setpriv).arg("--").arg(exe);
                command
            }
            None => {
                let exe = std::env::current_exe()
                    .map_err(|e| format!("cannot find the bench binary: {e}"))?;
                match &launch.wrapper {
                    Some(words) if !words.is_empty() => {
                        let mut command = Command::new(&words[0]);
                        command.args(&words[1..]).arg(exe);
                        command
                    }
                    _ => Command::new(exe),
                }
            }
        };
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        let mut child = command
            .arg("__child")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {label}: {e}"))?;
        let stdout = child.stdout.take().expect("stdout was piped");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Child {
            label: label.to_owned(),
            child,
            stdin,
            lines: rx,
        })
    }

    /// Sends one line to the child's stdin.
    pub fn send(&mut self, line: &str) -> BenchResult<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{}: stdin already closed", self.label))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("{}: cannot write to it: {e}", self.label))
    }

    /// Waits for the next line whose kind is `kind` (an `error` line fails at once).
    pub fn expect(&mut self, kind: &str) -> BenchResult<Line> {
        loop {
            let text = match self.lines.recv_timeout(STEP_TIMEOUT) {
                Ok(text) => text,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no `{kind}` within {STEP_TIMEOUT:?} (hung?)",
                        self.label
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    return Err(format!(
                        "{}: exited ({status:?}) before `{kind}`",
                        self.label
                    ));
                }
            };
            let line = Line::parse(&text);
            if line.kind == kind {
                return Ok(line);
            }
            if line.kind == "error" {
                return Err(format!("{}: {text}", self.label));
            }
        }
    }

    /// The next line if one is already there (`None` if not, or once the child is gone).
    pub fn try_line(&mut self) -> BenchResult<Option<Line>> {
        match self.lines.try_recv() {
            Ok(text) => {
                let line = Line::parse(&text);
                if line.kind == "error" {
                    return Err(format!("{}: {text}", self.label));
                }
                Ok(Some(line))
            }
            Err(_) => Ok(None),
        }
    }

    /// SIGKILL (`kill -9`) and reap: the scenario under test, not a cleanup.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin and waits for the child to exit successfully.
    pub fn finish(mut self) -> BenchResult<()> {
        self.stdin = None;
        let deadline = std::time::Instant::now() + STEP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("{}: exited with {status}", self.label)),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(None) => return Err(format!("{}: did not exit", self.label)),
                Err(e) => return Err(format!("{}: cannot wait: {e}", self.label)),
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Only our own child, by its handle: a failed scenario must not leave it running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Finishes every child, reporting the first failure.
pub fn finish_all(children: Vec<Child>) -> BenchResult<()> {
    let mut first = Ok(());
    for child in children {
        if let Err(e) = child.finish() {
            if first.is_ok() {
                first = Err(e);
            }
        }
    }
    first
}

/// A private (0700) runtime directory under /dev/shm, removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> BenchResult<TempDir> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = TempDir::base().join(format!("mailslot-bench-{}-{tag}-{n}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(TempDir { path })
    }

    /// A unique path that does not exist yet, for something else to create (and this guard
    /// to remove).
    pub fn reserve(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TempDir {
            path: TempDir::base().join(format!("mailslot-bench-{}-{tag}-r{n}", std::process::id())),
        }
    }

    fn base() -> PathBuf {
        if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Writes one event line to the parent (stdout is a pipe: flush at once).
pub fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Waits for the parent's next command line on stdin; `None` when the parent closed it.
pub fn next_command() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_owned()),
    }
}
