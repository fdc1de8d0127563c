//! Damage to a name's shared file, and a full filesystem: nothing a process scribbles into the
//! file (or a full tmpfs) may crash, hang or fool a reader or writer that has it open.
//!
//! The contract these tests hold the core to:
//! - No process dies of a signal (SIGSEGV, SIGBUS, SIGABRT, ...) or panics; no call hangs.
//! - A reader returns only messages that were written (each one decodes and its checksum
//!   verifies). A reader that meets damage returns `Err(e)` with
//!   `e.kind() == ErrorKind::Corrupted` (once per damage, not forever) and goes on reading.
//! - Every lost message is either counted (`Message::lost`) or covered by a `Corrupted`
//!   report; no loss count is absurd (more messages than were written, or than fit in the
//!   bytes the reader skipped).
//! - A write returns `Ok` or an error of a kind in [`WRITER_ERRORS`] (NotFound when the
//!   damage says the server is gone); once the damage is repaired (a sane lock word) writes
//!   succeed again.
//! - Damage to the identity words (magic, version, ring size) makes NEW opens fail with
//!   `Corrupted`; processes that have the name open keep working or report `Corrupted`.
//!
//! The scribbler is this test process itself: it writes into the file with `pwrite` (it never
//! maps it), while readers and writers are child processes (see `common`'s roles
//! `robust_reader` and `robust_writer`). Every wait has a hang guard; no wall-clock bound is
//! asserted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{encode, spawn, spawn_reader, Proc, TestDir, END, HANG};
use mailslot::{ErrorKind, MailslotName};
use mailslot_wire::{MailslotDatagram, MessageType, NetbiosName, SizeLimit};

#[test]
fn child_process() {
    common::child_main()
}

/// Where things are in a name's shared file (`crates/mailslot/src/segment.rs` documents the
/// layout). Offsets in bytes from the start of the file, words little-endian. This is the one
/// place to update when the layout changes.
mod layout {
    use std::ops::Range;

    /// The header.
    pub const HEADER: Range<u64> = 0..4096;
    /// Identity words: magic (u64 at 0), version (u32 at 8), flags (12), max message (16),
    /// closed (20), ring size (u64 at 24). Damage here makes new opens fail with `Corrupted`.
    pub const IDENTITY: Range<u64> = 0..32;
    /// Positions and counters: head (32), tail (40), next sequence (48), group cursor (56),
    /// group lost (64), refused (72), high water (80), wake epoch (84), append lock (88), name
    /// length (92), repairs (96), reserved to 128.
    pub const WORDS: Range<u64> = 32..128;
    /// The display name.
    pub const NAME: Range<u64> = 128..256;
    /// The ring's tail word (u64): position of the oldest byte still in the ring.
    pub const TAIL: u64 = 40;
    /// The sequence counter (u64): the number the next record gets.
    pub const NEXT_SEQ: u64 = 48;
    /// The append lock word (u32: the holder's token and a waiters bit).
    pub const MUTEX: u64 = 88;
    pub const MUTEX_LEN: u64 = 4;
    /// The instance slots: `MAX_INSTANCES` of `SLOT_SIZE` bytes from `SLOTS`.
    pub const SLOTS: u64 = 4096;
    pub const SLOT_SIZE: u64 = 64;
    pub const MAX_INSTANCES: u64 = 128;
    /// The instance id (u64) within a slot.
    pub const SLOT_ID: u64 = 8;
    /// The byte ring of records, to the end of the file.
    pub const RING: u64 = 12288;
}

/// Error kinds a write may return on a damaged name.
const WRITER_ERRORS: [ErrorKind; 3] = [
    ErrorKind::Corrupted,
    ErrorKind::TimedOut,
    ErrorKind::NotFound,
];

// ---- helpers ----------------------------------------------------------------------------------

/// xorshift64*: reproducible random numbers (the seed is printed; `MS_SEED` replays one).
struct Rng(u64);

impl Rng {
    fn seeded(what: &str) -> Rng {
        let seed = std::env::var("MS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{what}: MS_SEED={seed}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The shared file of `name` in `dir`.
fn name_file(dir: &TestDir, name: &str) -> PathBuf {
    dir.path()
        .join(MailslotName::parse(name).expect("name").file_name())
}

/// Writes `bytes` at `offset` of `path` (`pwrite`, as a stray process would).
fn poke(path: &Path, offset: u64, bytes: &[u8]) {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        .write_all_at(bytes, offset)
        .unwrap_or_else(|e| panic!("pwrite {}: {e}", path.display()));
}

fn peek(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len as usize];
    OpenOptions::new()
        .read(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        .read_exact_at(&mut buf, offset)
        .unwrap_or_else(|e| panic!("pread {}: {e}", path.display()));
    buf
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Settings of the names these tests create: shared, every instance gets every message,
/// oldest dropped when full, at most `max` bytes a message.
fn name_envs(
    dir: &TestDir,
    name: &str,
    capacity: usize,
    max: usize,
) -> Vec<(&'static str, String)> {
    vec![
        ("MS_DIR", dir.env()),
        ("MS_NAME", name.to_owned()),
        ("MS_SHARED", "1".to_owned()),
        ("MS_DELIVERY", "all".to_owned()),
        ("MS_OVERFLOW", "drop".to_owned()),
        ("MS_CAPACITY", capacity.to_string()),
        ("MS_MAX", max.to_string()),
    ]
}

/// A `robust_reader` child with read timeout `timeout_ms` (`forever` for none), opened.
fn start_reader(label: &str, envs: &[(&'static str, String)], timeout_ms: &str) -> Proc {
    let mut envs = envs.to_vec();
    envs.push(("MS_TIMEOUT_MS", timeout_ms.to_owned()));
    let proc = spawn(label, "robust_reader", &envs);
    proc.expect("ready");
    proc
}

/// A `robust_writer` child (writer id `w`, `count` messages a `go`), opened.
fn start_writer(label: &str, envs: &[(&'static str, String)], w: u32, count: u32) -> Proc {
    let proc = spawn_writer(label, envs, w, count, 0);
    proc.expect("ready");
    proc
}

fn spawn_writer(
    label: &str,
    envs: &[(&'static str, String)],
    w: u32,
    count: u32,
    progress: u32,
) -> Proc {
    let mut envs = envs.to_vec();
    envs.push(("MS_WRITER", w.to_string()));
    envs.push(("MS_COUNT", count.to_string()));
    envs.push(("MS_PROGRESS", progress.to_string()));
    spawn(label, "robust_writer", &envs)
}

/// What is wrong with a child's exit (a signal, a core dump code, a panic), if anything.
fn exit_problem(proc: &Proc, status: ExitStatus) -> Option<String> {
    let why = match (status.signal(), status.code()) {
        (Some(signal), _) => format!("died of signal {signal}"),
        (None, Some(0)) => return None,
        (None, Some(code @ (134 | 135 | 139))) => format!("exited {code} (a crash)"),
        (None, Some(code)) => format!("exited {code}"),
        (None, None) => format!("ended with {status}"),
    };
    Some(format!(
        "{} (pid {}) {why}: {}",
        proc.label,
        proc.pid,
        stderr_gist(proc)
    ))
}

/// The telling part of a child's stderr: a panic's place and message, else its first lines.
fn stderr_gist(proc: &Proc) -> String {
    let stderr = proc.stderr_text();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !l.starts_with(' ') && !l.starts_with("stack backtrace") && !l.starts_with("note:")
        })
        .collect();
    match lines.iter().position(|l| l.contains("panicked at")) {
        Some(i) => lines[i..lines.len().min(i + 2)].join(" "),
        None => lines[..lines.len().min(3)].join(" | "),
    }
}

/// Reads a child's report lines into `sink` until one starts with `prefix` (returned). `Err`
/// when the child ends first or says nothing for [`HANG`] (a hang).
fn collect_until(proc: &Proc, prefix: &str, sink: &mut Vec<String>) -> Result<String, String> {
    loop {
        match proc.next_line_within(HANG) {
            Some(line) if line.starts_with(prefix) => return Ok(line),
            Some(line) => sink.push(line),
            None => {
                return Err(format!(
                    "{} (pid {}): no \"{prefix}\" (it ended, or hung for {HANG:?}); stderr: {}",
                    proc.label,
                    proc.pid,
                    stderr_gist(proc)
                ))
            }
        }
    }
}

/// One `go` of a `robust_writer`: messages written OK, failed writes, error kinds seen.
#[derive(Debug, Default)]
struct WriterRun {
    ok: u32,
    failed: u32,
    kinds: Vec<String>,
    /// The first failed write's report (`KIND S MESSAGE`).
    first_error: Option<String>,
}

impl WriterRun {
    /// Findings for error kinds outside [`WRITER_ERRORS`] (one per kind, with a count).
    fn bad_kinds(&self, who: &str) -> Vec<String> {
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for kind in self.kinds.iter().filter(|k| !allowed_writer_error(k)) {
            *counts.entry(kind).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(kind, n)| {
                format!(
                    "{who}: {n} write(s) failed with {kind} (first: {})",
                    self.first_error.as_deref().unwrap_or("?")
                )
            })
            .collect()
    }
}

/// Sends `go` and waits for `done`; `Err` (a finding) if the writer crashed or hung.
fn writer_go(writer: &mut Proc) -> Result<WriterRun, String> {
    writer.try_send("go")?;
    writer_done(writer, Vec::new())
}

fn writer_done(writer: &Proc, mut lines: Vec<String>) -> Result<WriterRun, String> {
    let done = collect_until(writer, "done ", &mut lines)?;
    let f: Vec<&str> = done.split(' ').collect();
    let mut run = WriterRun {
        ok: f[1].parse().expect("ok"),
        failed: f[2].parse().expect("failed"),
        kinds: Vec::new(),
        first_error: None,
    };
    for line in lines {
        if let Some(rest) = line.strip_prefix("err ") {
            run.first_error.get_or_insert_with(|| rest.to_owned());
            run.kinds
                .push(rest.split(' ').next().unwrap_or("?").to_owned());
        }
    }
    Ok(run)
}

/// Whether an error kind (as `{:?}` prints it) is one a write may return on damage.
fn allowed_writer_error(kind: &str) -> bool {
    WRITER_ERRORS.iter().any(|k| format!("{k:?}") == kind)
}

/// Asks a writer to write the end marker of `round`: `Ok(true)` if written, `Ok(false)` if
/// the write failed cleanly, `Err` (a finding) if the writer crashed or hung.
fn write_marker(writer: &mut Proc, round: u32) -> Result<bool, String> {
    writer.try_send(&format!("end {round}"))?;
    let line = collect_until(writer, "end ", &mut Vec::new())?;
    Ok(line == "end ok")
}

/// What a `robust_reader` reported.
#[derive(Debug, Default)]
struct Log {
    /// `(writer, sequence)` of the messages received, marker excluded.
    msgs: Vec<(u32, u32)>,
    /// Sum of `Message::lost`, the marker's included.
    lost: u64,
    /// The largest single `lost`.
    max_lost: u64,
    marker: bool,
    /// Messages that did not decode (never written).
    bad: usize,
    /// `Corrupted` reports.
    corrupted: Vec<String>,
    /// Other errors (not `TimedOut`).
    errors: Vec<String>,
    stuck: bool,
    done: bool,
}

impl Log {
    fn parse(lines: &[String]) -> Log {
        let mut log = Log::default();
        for line in lines {
            let f: Vec<&str> = line.split(' ').collect();
            let mut lost = |n: &str| {
                let n: u64 = n.parse().expect("lost");
                log.lost = log.lost.saturating_add(n);
                log.max_lost = log.max_lost.max(n);
            };
            match f[0] {
                "m" => {
                    lost(f[3]);
                    log.msgs
                        .push((f[1].parse().expect("w"), f[2].parse().expect("s")));
                }
                "end" => {
                    lost(f[2]);
                    log.marker = true;
                }
                "bad" => {
                    lost(f[2]);
                    log.bad += 1;
                }
                "c" => log.corrupted.push(line.clone()),
                "e" => log.errors.push(line.clone()),
                "stuck" => log.stuck = true,
                "done" => log.done = true,
                _ => {}
            }
        }
        log
    }

    /// Messages of writer `w`.
    fn of(&self, w: u32) -> Vec<u32> {
        self.msgs
            .iter()
            .filter(|(x, _)| *x == w)
            .map(|&(_, s)| s)
            .collect()
    }
}

/// Closes a reader's stdin (it leaves at the marker, or at its first timeout after that),
/// reads its report to the end and reaps it. A crash or a non-zero exit goes to `findings`.
fn finish_reader(reader: &mut Proc, findings: &mut Vec<String>) -> Log {
    reader.close_stdin();
    let log = Log::parse(&reader.lines_to_end());
    let status = reader.wait();
    findings.extend(exit_problem(reader, status));
    log
}

/// Closes a writer's stdin and reaps it; a crash or a non-zero exit goes to `findings`.
fn finish_writer(writer: &mut Proc, findings: &mut Vec<String>) {
    let status = writer.wait();
    findings.extend(exit_problem(writer, status));
}

fn assert_no_findings(test: &str, findings: &[String]) {
    assert!(
        findings.is_empty(),
        "{test}: {} finding(s):\n  {}",
        findings.len(),
        findings.join("\n  ")
    );
}

// ---- 1. random scribbling ---------------------------------------------------------------------

const ROUNDS: u32 = 240;
const SCRIBBLE_READERS: usize = 2;
const SCRIBBLE_WRITERS: u32 = 3;
const PER_WRITER: u32 = 150;
/// Small enough that the ring (16 KiB) wraps several times a round.
const SCRIBBLE_CAPACITY: usize = 16 << 10;
const SCRIBBLE_MAX: usize = 1024;

/// Parts of the file the scribbler aims at, one per round in turn (every part is hit
/// `ROUNDS / 8` times): name, range (`None`: the ring, to the end of the file) and the longest
/// scribble.
const REGIONS: [(&str, Option<Range<u64>>, u64); 8] = [
    ("identity", Some(layout::IDENTITY), 8),
    ("positions", Some(layout::WORDS), 16),
    ("name", Some(layout::NAME), 64),
    (
        "mutex",
        Some(layout::MUTEX..layout::MUTEX + layout::MUTEX_LEN),
        layout::MUTEX_LEN,
    ),
    ("header", Some(layout::HEADER), 64),
    (
        "live-slots",
        Some(layout::SLOTS..layout::SLOTS + SCRIBBLE_READERS as u64 * layout::SLOT_SIZE),
        32,
    ),
    (
        "slots",
        Some(layout::SLOTS..layout::SLOTS + layout::MAX_INSTANCES * layout::SLOT_SIZE),
        64,
    ),
    ("ring", None, 256),
];

/// Random bytes into a random range of a live name's file, once a round, while 3 writers write
/// and 2 readers read (drop-oldest, a 16 KiB ring that wraps).
///
/// A round is one fresh name (`scribbleR`), opened by 2 readers and 3 writers before anything
/// is scribbled. The writers write 150 self-checking messages each; once writer 0 has made a
/// third of its attempts the scribbler writes 1..N random bytes into the round's region; when
/// every writer is done, writer 0 writes the end marker; then the readers' stdin is closed and
/// each reads on until the marker or, if the marker never comes, its first 20 ms timeout
/// (so a reader that sees only `Corrupted` still ends: it is told to stop, and 1000 errors in a
/// row end it as "stuck", a finding).
///
/// Counting rule, per reader and round (the marker counts as one message of writer 0):
/// - always: every message decodes (checksum), comes from a writer of this round with a
///   sequence number that writer attempted, and the sum of `lost` is at most the number of
///   messages attempted;
/// - if the reader reported no `Corrupted` this round: each writer's messages come in order
///   without repeats, and received + sum of `lost` lies between the writes that returned `Ok`
///   and the writes attempted (equal to the `Ok` writes when no write failed: a failed write may
///   or may not have queued its message);
/// - writes return `Ok` or a kind in [`WRITER_ERRORS`]; every child exits 0, no signal.
#[test]
fn random_scribbling_never_crashes_hangs_or_lies() {
    let dir = TestDir::new("scribble");
    let mut rng = Rng::seeded("random_scribbling_never_crashes_hangs_or_lies");
    let mut findings: Vec<String> = Vec::new();
    // region -> (rounds, rounds where a reader reported Corrupted, writer error kinds)
    let mut summary: BTreeMap<&str, (u32, u32, BTreeMap<String, u32>)> = BTreeMap::new();
    for round in 0..ROUNDS {
        let (region, range, longest) = REGIONS[round as usize % REGIONS.len()].clone();
        let name = format!("scribble{round}");
        let envs = name_envs(&dir, &name, SCRIBBLE_CAPACITY, SCRIBBLE_MAX);
        let mut readers: Vec<Proc> = (0..SCRIBBLE_READERS)
            .map(|i| start_reader(&format!("r{round}.{i}"), &envs, "20"))
            .collect();
        let mut writers: Vec<Proc> = (0..SCRIBBLE_WRITERS)
            .map(|w| {
                let p = spawn_writer(
                    &format!("w{round}.{w}"),
                    &envs,
                    w,
                    PER_WRITER,
                    PER_WRITER / 3,
                );
                p.expect("ready");
                p
            })
            .collect();
        for writer in &mut writers {
            writer
                .try_send("go")
                .expect("the writers are alive before the damage");
        }
        // Scribble once writer 0 is a third of the way.
        let mut early = Vec::new();
        let progressed = collect_until(&writers[0], "progress", &mut early);
        let path = name_file(&dir, &name);
        let range = range.unwrap_or(layout::RING..file_len(&path));
        let len = 1 + rng.below(longest.min(range.end - range.start));
        let at = range.start + rng.below(range.end - range.start - len + 1);
        let bytes = rng.bytes(len as usize);
        poke(&path, at, &bytes);
        let tag = format!("round {round} [{region} {at}+{len}]");
        let mut round_findings = Vec::new();
        if let Err(e) = progressed {
            round_findings.push(e);
        }
        // A process that opens the damaged name now gets it, or a clean refusal.
        let mut late = spawn_writer(&format!("late{round}"), &envs, 99, 0, 0);
        match late.next_line_within(HANG) {
            Some(line) if line == "ready" => {}
            Some(line)
                if line.starts_with("open-err Corrupted")
                    || line.starts_with("open-err NotFound") => {}
            Some(line) => round_findings.push(format!("a new writer's open: {line}")),
            None => round_findings.push(format!(
                "a new writer's open crashed or hung: {}",
                stderr_gist(&late)
            )),
        }
        let status = late.wait();
        if status.code() != Some(1) {
            round_findings.extend(exit_problem(&late, status));
        }
        // Writers finish.
        let mut ok_total = 0u64;
        let mut attempted = vec![0u32; SCRIBBLE_WRITERS as usize];
        let entry = summary.entry(region).or_default();
        entry.0 += 1;
        for (w, writer) in writers.iter().enumerate() {
            let lines = if w == 0 {
                std::mem::take(&mut early)
            } else {
                Vec::new()
            };
            match writer_done(writer, lines) {
                Ok(run) => {
                    ok_total += u64::from(run.ok);
                    attempted[w] = run.ok + run.failed;
                    round_findings.extend(run.bad_kinds(&writer.label));
                    for kind in run.kinds {
                        *entry.2.entry(kind).or_default() += 1;
                    }
                }
                Err(e) => {
                    attempted[w] = PER_WRITER;
                    round_findings.push(e);
                }
            }
        }
        // The marker, from the first writer still able to write.
        let mut marker = (0u64, 0u64); // (written OK, attempted)
        for writer in &mut writers {
            match write_marker(writer, round) {
                Ok(written) => {
                    marker = (u64::from(written), 1);
                    break;
                }
                Err(e) => round_findings.push(e),
            }
        }
        ok_total += marker.0;
        let attempted_total: u64 = attempted.iter().map(|&n| u64::from(n)).sum::<u64>() + marker.1;
        let mut any_corrupted = false;
        for reader in &mut readers {
            let log = finish_reader(reader, &mut round_findings);
            let who = &reader.label;
            any_corrupted |= !log.corrupted.is_empty();
            if log.bad > 0 {
                round_findings.push(format!(
                    "{who}: returned {} message(s) nobody wrote (checksum fails)",
                    log.bad
                ));
            }
            if log.stuck {
                round_findings.push(format!(
                    "{who}: 1000 errors in a row (reports the same damage forever): {:?}",
                    log.corrupted.last()
                ));
            }
            if !log.errors.is_empty() {
                round_findings.push(format!(
                    "{who}: errors other than Corrupted/TimedOut: {:?}",
                    &log.errors[..log.errors.len().min(3)]
                ));
            }
            for &(w, s) in &log.msgs {
                if w >= SCRIBBLE_WRITERS || s >= attempted[w as usize] {
                    round_findings.push(format!(
                        "{who}: returned message ({w}, {s}), which was never written"
                    ));
                    break;
                }
            }
            if log.lost > attempted_total {
                round_findings.push(format!(
                    "{who}: reports {} lost (largest single count {}) of {attempted_total} \
                     messages written",
                    log.lost, log.max_lost
                ));
            }
            if !log.corrupted.is_empty() {
                continue;
            }
            for w in 0..SCRIBBLE_WRITERS {
                let seqs = log.of(w);
                if seqs.windows(2).any(|p| p[1] <= p[0]) {
                    round_findings.push(format!(
                        "{who}: writer {w}'s messages out of order or repeated, no Corrupted \
                         reported"
                    ));
                }
            }
            let accounted = log.msgs.len() as u64 + u64::from(log.marker) + log.lost;
            if accounted < ok_total || accounted > attempted_total {
                round_findings.push(format!(
                    "{who}: received {} + marker {} + lost {} = {accounted}, but {ok_total} \
                     written OK ({attempted_total} attempted) and no Corrupted reported",
                    log.msgs.len(),
                    log.marker,
                    log.lost
                ));
            }
        }
        if any_corrupted {
            entry.1 += 1;
        }
        for writer in &mut writers {
            finish_writer(writer, &mut round_findings);
        }
        findings.extend(round_findings.into_iter().map(|f| format!("{tag}: {f}")));
    }
    eprintln!("region: rounds, rounds with a Corrupted report, writer error kinds");
    for (region, (rounds, corrupted, kinds)) in &summary {
        eprintln!("  {region}: {rounds}, {corrupted}, {kinds:?}");
    }
    let shown = findings.len().min(40);
    assert_no_findings(
        "random_scribbling_never_crashes_hangs_or_lies",
        &findings[..shown],
    );
}

// ---- 2. a full filesystem ---------------------------------------------------------------------

/// A tmpfs mounted for one test, unmounted on drop (even on failure).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, options: &str) -> Mount {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(mounted.success(), "mount -t tmpfs -o {options}");
        Mount(path.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let clean = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !clean {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// A mailslot write datagram from `PEER` to NetBIOS name `to`, mailslot `mailslot`.
fn datagram(id: u16, to: &str, mailslot: &str, data: &[u8]) -> Vec<u8> {
    let full = format!("\\MAILSLOT\\{mailslot}");
    let mut d = MailslotDatagram::new(
        MessageType::DirectUnique,
        NetbiosName::new("PEER", 0).expect("source name"),
        NetbiosName::new(to, 0).expect("destination name"),
        &full,
        data,
    );
    d.dgm_id = id;
    d.source_ip = Ipv4Addr::new(10, 99, 0, 1);
    d.to_vec(SizeLimit::Protocol).expect("encode a datagram")
}

/// Fills what is left of the filesystem holding `path` (big writes, then smaller ones).
fn fill(path: &Path) {
    let file = std::fs::File::create(path).expect("create the filler");
    let mut at = 0u64;
    for chunk in [1 << 16, 4096, 512, 1] {
        let buf = vec![0x5au8; chunk];
        while file.write_all_at(&buf, at).is_ok() {
            at += chunk as u64;
        }
    }
}

/// The writer id of messages that come in as datagrams.
const NET_WRITER: u32 = 0xa0;

/// A 2 MiB tmpfs as the runtime directory: names are opened until the filesystem is full (the
/// next open fails with an error that names the cause), the rest is filled with a file, then
/// writers write into the names at full speed and the network role delivers datagrams into one
/// of them (and keeps its own files there). Nothing dies of a signal, every write returns `Ok`
/// or a clean error, readers receive only intact messages, and every message written `Ok` to a
/// name is received or counted lost.
#[test]
fn a_full_tiny_tmpfs_fails_cleanly_while_writers_and_the_role_write() {
    const TEST: &str = "a_full_tiny_tmpfs_fails_cleanly_while_writers_and_the_role_write";
    if !common::require_root(TEST) {
        return;
    }
    const CAPACITY: usize = 256 << 10;
    const WRITE_NAMES: usize = 3;
    const PER_WRITER: u32 = 3000;
    const DATAGRAMS: u32 = 1500;
    let dir = TestDir::new("fullfs");
    let _mount = Mount::tmpfs(dir.path(), "size=2m,mode=0700");
    let mut findings = Vec::new();
    let port = common::ports::free_port();
    let mut role = spawn(
        "netrole",
        "netrole",
        &[
            ("MS_DIR", dir.env()),
            ("MS_PORT", port.to_string()),
            ("MS_NB", "ROBUST".to_owned()),
        ],
    );
    role.expect("ready");
    // Names until the filesystem is full.
    let mut readers: Vec<(String, Proc)> = Vec::new();
    let refusal = loop {
        let name = format!("full{}", readers.len());
        let mut envs = name_envs(&dir, &name, CAPACITY, 1024);
        envs.push(("MS_TIMEOUT_MS", "20".to_owned()));
        let mut reader = spawn(&format!("reader-{name}"), "robust_reader", &envs);
        match reader.next_line() {
            Some(line) if line.starts_with("ready") => readers.push((name, reader)),
            Some(line) if line.starts_with("open-err") => {
                let status = reader.wait();
                break (line, status, reader);
            }
            other => {
                let status = reader.wait();
                panic!(
                    "{name}: open neither succeeded nor failed cleanly: {other:?}, {:?}",
                    exit_problem(&reader, status)
                );
            }
        }
        assert!(readers.len() < 64, "2 MiB held 64 names of 256 KiB?");
    };
    let check_refusal = |(line, status, proc): &(String, ExitStatus, Proc), what: &str| {
        assert!(
            status.signal().is_none() && status.code() == Some(1),
            "{what}: {:?}",
            exit_problem(proc, *status)
        );
        assert!(
            line.contains("full") || line.contains("No space left"),
            "{what}: the error does not name the cause: {line}"
        );
    };
    check_refusal(&refusal, "the open that found the filesystem full");
    assert!(
        readers.len() > WRITE_NAMES,
        "only {} names fit",
        readers.len()
    );
    eprintln!("{} names fit; the next open: {}", readers.len(), refusal.0);
    fill(&dir.path().join("filler"));
    // A small name does not fit either now.
    let mut envs = name_envs(&dir, "tiny", 4096, 64);
    envs.push(("MS_TIMEOUT_MS", "20".to_owned()));
    let mut tiny = spawn("reader-tiny", "robust_reader", &envs);
    let line = tiny.next_line().unwrap_or_default();
    let status = tiny.wait();
    check_refusal(&(line, status, tiny), "a small open on the full filesystem");
    // Writers into the first names, datagrams into the next one, all at full speed.
    let mut writers: Vec<Proc> = (0..WRITE_NAMES)
        .map(|i| {
            let envs = name_envs(&dir, &readers[i].0, CAPACITY, 1024);
            start_writer(&format!("writer-{i}"), &envs, i as u32, PER_WRITER)
        })
        .collect();
    for writer in &mut writers {
        writer.send("go");
    }
    let net_name = readers[WRITE_NAMES].0.clone();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a sender");
    let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    for i in 0..DATAGRAMS {
        let data = encode(NET_WRITER, i, (i as usize * 37) % 400);
        let _ = socket.send_to(&datagram(i as u16, "ROBUST", &net_name, &data), to);
        // Paced over several of the role's state-file flushes (every 200 ms), so the role
        // also rewrites its own file on the full filesystem (a pause, not a bound).
        if i % 250 == 249 {
            std::thread::sleep(Duration::from_millis(100));
        } else if i % 32 == 31 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let _ = socket.send_to(
        &datagram(0xffff, "ROBUST", &net_name, &encode(END, 0, 0)),
        to,
    );
    let mut runs = Vec::new();
    let mut kinds: BTreeSet<String> = BTreeSet::new();
    for writer in &mut writers {
        match writer_done(writer, Vec::new()) {
            Ok(run) => {
                kinds.extend(run.kinds.iter().cloned());
                let marker = write_marker(writer, 0);
                runs.push(Some((run, marker)));
            }
            Err(e) => {
                findings.push(e);
                runs.push(None);
            }
        }
    }
    eprintln!("writer error kinds: {kinds:?}");
    for (i, (name, reader)) in readers.iter_mut().enumerate() {
        let log = finish_reader(reader, &mut findings);
        if log.bad > 0 || !log.corrupted.is_empty() || !log.errors.is_empty() || log.stuck {
            findings.push(format!(
                "{name}: {} damaged message(s), Corrupted {:?}, errors {:?}, stuck {}",
                log.bad, log.corrupted, log.errors, log.stuck
            ));
        }
        if i < WRITE_NAMES {
            let Some(Some((run, marker))) = runs.get(i) else {
                continue;
            };
            if log
                .msgs
                .iter()
                .any(|&(w, s)| w != i as u32 || s >= PER_WRITER)
            {
                findings.push(format!("{name}: a message nobody wrote to it"));
            }
            let marker_ok = matches!(marker, Ok(true));
            let ok = u64::from(run.ok) + u64::from(marker_ok);
            let attempted = u64::from(run.ok + run.failed) + u64::from(marker.is_ok());
            let accounted = log.msgs.len() as u64 + u64::from(log.marker) + log.lost;
            if accounted < ok || accounted > attempted {
                findings.push(format!(
                    "{name}: received {} + marker {} + lost {} = {accounted}, written OK {ok} \
                     (attempted {attempted})",
                    log.msgs.len(),
                    log.marker,
                    log.lost
                ));
            }
        } else if i == WRITE_NAMES {
            if log
                .msgs
                .iter()
                .any(|&(w, s)| w != NET_WRITER || s >= DATAGRAMS)
            {
                findings.push(format!("{name}: a message nobody sent to it"));
            }
            if log.msgs.is_empty() {
                findings.push(format!(
                    "{name}: none of the {DATAGRAMS} datagrams was delivered"
                ));
            }
            eprintln!(
                "{name}: {} of {DATAGRAMS} datagrams received, {} counted lost",
                log.msgs.len(),
                log.lost
            );
        } else if !log.msgs.is_empty() {
            findings.push(format!("{name}: messages on a name nobody wrote to"));
        }
    }
    for writer in &mut writers {
        finish_writer(writer, &mut findings);
    }
    role.close_stdin();
    match collect_until(&role, "counters", &mut Vec::new()) {
        Ok(counters) => eprintln!("network role: {counters}"),
        Err(e) => findings.push(e),
    }
    let status = role.wait();
    findings.extend(exit_problem(&role, status));
    let state = std::fs::read_to_string(dir.path().join(format!("network-{port}.state")))
        .unwrap_or_default();
    eprintln!(
        "the role's state file on the full filesystem: {:?}",
        state
            .lines()
            .filter(|l| l.starts_with("state=") || l.starts_with("delivered="))
            .collect::<Vec<_>>()
    );
    assert_no_findings(TEST, &findings);
}

// ---- 3. one damaged word at a time -------------------------------------------------------------

/// Settings of the targeted tests' names: 64 KiB, nothing ever overwritten.
fn small_name(dir: &TestDir, name: &str) -> Vec<(&'static str, String)> {
    name_envs(dir, name, 64 << 10, 1024)
}

/// (a) The ring's tail word set near 2^64 while a reader waits: the next 4 messages reach the
/// reader, or are counted lost, or a `Corrupted` report covers them; the writer neither crashes
/// nor fails with a kind outside [`WRITER_ERRORS`].
#[test]
fn a_tail_word_near_2_pow_64_loses_nothing_silently() {
    const TEST: &str = "a_tail_word_near_2_pow_64_loses_nothing_silently";
    let dir = TestDir::new("tail");
    let envs = small_name(&dir, "tailword");
    let mut findings = Vec::new();
    let mut reader = start_reader("reader", &envs, "20");
    let mut writer = start_writer("writer", &envs, 1, 4);
    let path = name_file(&dir, "tailword");
    poke(&path, layout::TAIL, &(u64::MAX - 4095).to_le_bytes());
    let run = writer_go(&mut writer);
    let marker = write_marker(&mut writer, 0);
    let log = finish_reader(&mut reader, &mut findings);
    finish_writer(&mut writer, &mut findings);
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            findings.push(e);
            WriterRun::default()
        }
    };
    findings.extend(run.bad_kinds("writer"));
    if let Err(e) = marker {
        findings.push(e);
    }
    if log.bad > 0 {
        findings.push(format!("{} message(s) nobody wrote", log.bad));
    }
    let received = log.of(1).len() as u64;
    if log.corrupted.is_empty() && received + log.lost < u64::from(run.ok) {
        findings.push(format!(
            "{} of {} messages written OK were lost silently: received {received}, counted lost \
             {}, no Corrupted reported",
            u64::from(run.ok).saturating_sub(received + log.lost),
            run.ok,
            log.lost
        ));
    }
    assert_no_findings(TEST, &findings);
}

/// A byte changed in the payload of a large record, which readers copy and checksum in one
/// pass, is caught: the reader gets one `Corrupted`, never the changed message, and reads on.
#[test]
fn a_scribbled_byte_in_a_large_message_is_caught() {
    let dir = TestDir::new("bigflip");
    let name = "bigflip";
    let mut server = mailslot::Server::builder(name)
        .scope(dir.scope())
        .max_message_size(65_536)
        .read_timeout(mailslot::Timeout::After(HANG))
        .open()
        .expect("open the name");
    let mut writer = mailslot::Writer::open_in(&dir.scope(), name).expect("open a writer");
    let message: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    writer.write(&message).expect("write");
    let path = name_file(&dir, name);
    let file = std::fs::read(&path).expect("read the name's file");
    let at = file
        .windows(64)
        .position(|w| w == &message[..64])
        .expect("the message is in the file")
        + 4000;
    poke(&path, at as u64, &[file[at] ^ 0x20]);
    let err = server
        .recv()
        .expect_err("a changed message must not be delivered");
    assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
    writer.write(b"after").expect("write after the damage");
    assert_eq!(server.recv().expect("reads on").data, b"after");
}

/// (b) A waiting reader's own slot zeroed: a later write still wakes it (within the hang
/// guard; a bounded delay is fine), and `mailslot::status_of` still shows the instance.
#[test]
fn a_zeroed_slot_still_wakes_its_reader_and_shows_in_status() {
    const TEST: &str = "a_zeroed_slot_still_wakes_its_reader_and_shows_in_status";
    let dir = TestDir::new("slot");
    let name = "slotword";
    let envs = small_name(&dir, name);
    let mut findings = Vec::new();
    let mut reader = spawn("reader", "robust_reader", &{
        let mut e = envs.clone();
        e.push(("MS_TIMEOUT_MS", "forever".to_owned()));
        e
    });
    let ready = reader.expect("ready");
    let id: u64 = ready
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("id");
    let mut writer = start_writer("writer", &envs, 1, 1);
    // Let the reader go to sleep in `recv` (not a bound: it may also still be on its way).
    std::thread::sleep(Duration::from_millis(200));
    let path = name_file(&dir, name);
    let slots = peek(
        &path,
        layout::SLOTS,
        layout::MAX_INSTANCES * layout::SLOT_SIZE,
    );
    let slot = (0..layout::MAX_INSTANCES)
        .find(|&i| {
            let at = (i * layout::SLOT_SIZE + layout::SLOT_ID) as usize;
            u64::from_le_bytes(slots[at..at + 8].try_into().expect("8 bytes")) == id
        })
        .unwrap_or_else(|| panic!("no slot holds instance {id}: update `layout`"));
    poke(
        &path,
        layout::SLOTS + slot * layout::SLOT_SIZE,
        &[0u8; layout::SLOT_SIZE as usize],
    );
    match writer_go(&mut writer) {
        Ok(run) if run.ok == 1 => {}
        Ok(run) => findings.push(format!(
            "the write after the damage failed: {:?}",
            run.kinds
        )),
        Err(e) => findings.push(e),
    }
    match reader.next_line_within(HANG) {
        Some(line) if line.starts_with("m 1 0 ") => {}
        Some(line) => findings.push(format!("the reader woke with \"{line}\", not the message")),
        None => findings.push(format!(
            "the reader (slot {slot} zeroed) was not woken by a write within {HANG:?}"
        )),
    }
    match mailslot::status_of(dir.path(), &MailslotName::parse(name).expect("name")) {
        Ok(Some(status)) if status.instances.iter().any(|i| i.id == id) => {}
        Ok(Some(status)) => findings.push(format!(
            "status no longer shows instance {id}: {:?}",
            status.instances
        )),
        Ok(None) => findings.push(format!(
            "status says the name has no instance (the reader, instance {id}, is alive)"
        )),
        Err(e) => findings.push(format!("status failed: {:?} {e}", e.kind())),
    }
    if findings.is_empty() {
        if let Err(e) = write_marker(&mut writer, 0) {
            findings.push(e);
        }
        finish_reader(&mut reader, &mut findings);
        finish_writer(&mut writer, &mut findings);
    }
    assert_no_findings(TEST, &findings);
}

/// (c) The append mutex scribbled (0xff bytes, and random bytes): later writers neither abort
/// nor hang (each write returns `Ok` or a kind in [`WRITER_ERRORS`] within the guard); once
/// the lock word is sane again (its old bytes put back) writes succeed and the reader gets
/// them intact.
#[test]
fn a_scribbled_append_mutex_never_aborts_or_hangs_a_writer() {
    const TEST: &str = "a_scribbled_append_mutex_never_aborts_or_hangs_a_writer";
    let mut rng = Rng::seeded(TEST);
    let mut findings = Vec::new();
    let patterns: Vec<(String, Vec<u8>)> = vec![
        ("0xff".to_owned(), vec![0xff; layout::MUTEX_LEN as usize]),
        ("random#1".to_owned(), rng.bytes(layout::MUTEX_LEN as usize)),
        ("random#2".to_owned(), rng.bytes(layout::MUTEX_LEN as usize)),
    ];
    let dir = TestDir::new("mutex");
    for (i, (pattern, bytes)) in patterns.iter().enumerate() {
        let name = format!("mutexword{i}");
        let envs = small_name(&dir, &name);
        let mut f = Vec::new();
        let mut reader = start_reader("reader", &envs, "20");
        let path = name_file(&dir, &name);
        let saved = peek(&path, layout::MUTEX, layout::MUTEX_LEN);
        poke(&path, layout::MUTEX, bytes);
        // A writer that opens after the damage.
        let mut damaged = spawn_writer("writer-on-damage", &envs, 1, 5, 0);
        match collect_until(&damaged, "", &mut Vec::new()) {
            Ok(line) if line == "ready" => match writer_go(&mut damaged) {
                Ok(run) => f.extend(run.bad_kinds("writer-on-damage")),
                Err(e) => f.push(e),
            },
            Ok(line) if line.starts_with("open-err Corrupted") => {}
            Ok(line) => f.push(format!("open: {line}")),
            Err(e) => f.push(e),
        }
        finish_writer(&mut damaged, &mut f);
        // Sane again: writes succeed.
        poke(&path, layout::MUTEX, &saved);
        let mut after = start_writer("writer-after-repair", &envs, 2, 5);
        match writer_go(&mut after) {
            Ok(run) if run.ok == 5 => {}
            Ok(run) => f.push(format!(
                "with the lock sane again, {} of 5 writes failed: {:?}",
                run.failed, run.kinds
            )),
            Err(e) => f.push(e),
        }
        match write_marker(&mut after, 0) {
            Ok(true) => {}
            Ok(false) => f.push("the end marker failed with the lock sane again".to_owned()),
            Err(e) => f.push(e),
        }
        let log = finish_reader(&mut reader, &mut f);
        finish_writer(&mut after, &mut f);
        if log.bad > 0 {
            f.push(format!("{} message(s) nobody wrote", log.bad));
        }
        if log.of(2) != [0, 1, 2, 3, 4] {
            f.push(format!(
                "the reader got {:?} of the 5 messages written after the repair",
                log.of(2)
            ));
        }
        findings.extend(f.into_iter().map(|x| format!("mutex {pattern}: {x}")));
    }
    assert_no_findings(TEST, &findings);
}

/// (d) The sequence counter set to a huge value between messages: the reader skipped no bytes
/// (nothing was overwritten), so no message can have been lost: it must not report a loss
/// (the bound is what fits in the bytes skipped: none) and gets all 4 messages, or reports
/// `Corrupted` instead.
#[test]
fn a_huge_sequence_counter_is_no_absurd_loss() {
    const TEST: &str = "a_huge_sequence_counter_is_no_absurd_loss";
    let dir = TestDir::new("seq");
    let envs = small_name(&dir, "seqword");
    let mut findings = Vec::new();
    let mut reader = start_reader("reader", &envs, "20");
    let mut writer = start_writer("writer", &envs, 1, 2);
    let mut ok = 0;
    for step in 0..2 {
        if step == 1 {
            poke(
                &name_file(&dir, "seqword"),
                layout::NEXT_SEQ,
                &(1u64 << 62).to_le_bytes(),
            );
        }
        match writer_go(&mut writer) {
            Ok(run) => {
                ok += run.ok;
                findings.extend(run.bad_kinds("writer"));
            }
            Err(e) => findings.push(e),
        }
    }
    match write_marker(&mut writer, 0) {
        Ok(_) => {}
        Err(e) => findings.push(e),
    }
    let log = finish_reader(&mut reader, &mut findings);
    finish_writer(&mut writer, &mut findings);
    if log.bad > 0 {
        findings.push(format!("{} message(s) nobody wrote", log.bad));
    }
    if log.lost > 0 {
        findings.push(format!(
            "reports {} message(s) lost (largest single count {}) though it skipped no bytes",
            log.lost, log.max_lost
        ));
    }
    if log.corrupted.is_empty() && (log.of(1).len() as u32) < ok {
        findings.push(format!(
            "received {:?} of {ok} messages written OK, no Corrupted reported",
            log.of(1)
        ));
    }
    assert_no_findings(TEST, &findings);
}

/// A writer inherited through `fork` is used by parent and child at once, and the parent is
/// stopped while it holds the append lock: the child must wait for it (and time out), because
/// the lock's holder is alive. Each process takes the lock with a token of its own (the child
/// makes one on a description of its own); sharing the parent's, the child would take the
/// stopped parent's lock as if the word were scribbled, and both would append at once.
#[test]
fn a_writer_shared_by_fork_waits_for_the_other_process() {
    let dir = TestDir::new("forkw");
    let name = "forkwrite";
    let stop = dir.path().join("stop-writing");
    let mut reader = spawn_reader("reader", &dir, name, &[]);
    let mut writer = spawn(
        "fork_writer",
        "fork_writer",
        &[
            ("MS_DIR", dir.env()),
            ("MS_NAME", name.to_owned()),
            ("MS_STOP", stop.display().to_string()),
        ],
    );
    // Only once there is a child to wait for the lock.
    writer.expect("forked");
    let path = name_file(&dir, name);
    let lock_word = || {
        // Gone only if its reader quit: on damage, when both processes appended at once.
        assert!(
            path.exists(),
            "the name is gone: its reader quit (damage met?)"
        );
        let raw = peek(&path, layout::MUTEX, layout::MUTEX_LEN);
        u32::from_le_bytes(raw.try_into().expect("4 bytes"))
    };
    let stopped = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit(") ").next().is_some_and(|r| r.starts_with('T')))
    };
    // Stop the parent at random moments until it is caught holding the lock: the word stays
    // the same non-zero value for 50 ms (the running child holds it for microseconds at a
    // time).
    let mut rng = Rng::seeded("a_writer_shared_by_fork_waits_for_the_other_process");
    let mut caught = false;
    for _ in 0..2000 {
        common::send_signal(writer.pid, libc::SIGSTOP);
        common::wait_until("the parent writer stops", || stopped(writer.pid));
        // The child takes the lock with the same word each time, so one look 50 ms later
        // proves nothing: twenty looks in a row do.
        let before = lock_word();
        let held = (0..20).all(|_| {
            std::thread::sleep(Duration::from_micros(2500));
            lock_word() == before
        });
        if before != 0 && held {
            caught = true;
            break;
        }
        common::send_signal(writer.pid, libc::SIGCONT);
        std::thread::sleep(Duration::from_micros(rng.below(700)));
    }
    assert!(
        caught,
        "the parent was never stopped holding the append lock"
    );
    // The child waits for the live (stopped) holder, and says so when its wait runs out.
    assert_eq!(writer.expect("timedout"), "timedout 1");
    common::send_signal(writer.pid, libc::SIGCONT);
    std::fs::write(&stop, b"").unwrap();
    assert_eq!(writer.expect("done"), "done 0", "the child's exit status");
    writer.wait_ok();
    common::write_end(&dir.scope(), name);
    let log = reader.reader_log();
    assert!(log.done, "{:?}", log.other);
    assert_eq!(log.bad, 0, "messages that were not written");
    assert!(log.other.is_empty(), "damage met: {:?}", log.other);
    log.assert_fifo_per_writer();
}
