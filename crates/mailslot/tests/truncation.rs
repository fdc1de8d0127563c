//! Another process truncates a name's file under its live readers and writers (issue 10, item
//! 2): every process mapping it would die of SIGBUS. No one may die of a signal; readers and
//! writers get `Corrupted` (or time out) and exit cleanly when told; a new writer gets
//! `Corrupted`, not `NotFound`, while readers live; `status` lists the name as damaged.
//!
//! Children here have roles of their own (`tr-reader`, `tr-writer`) besides the common ones:
//! they report every outcome, error or not, instead of exiting at the first error.

mod common;

use std::io::{BufRead, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{spawn, within, Proc, TestDir, ROLE_ENV};
use mailslot::{ErrorKind, MailslotName, Scope, Server, Timeout, Writer};

#[test]
fn child_process() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("tr-reader") => std::process::exit(tr_reader()),
        Ok("tr-writer") => std::process::exit(tr_writer()),
        _ => common::child_main(),
    }
}

/// The largest message and the capacity: a 16 KiB ring, so a few writes cross its pages.
const MAX: usize = 4096;
/// Where the ring starts in the file (the layout of `segment.rs`).
const RING_OFFSET: u64 = 12288;

// ---- children ------------------------------------------------------------------------------

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "@@ {line}");
    let _ = out.flush();
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_default()
}

fn scope() -> Scope {
    Scope::Dir(PathBuf::from(env("MS_DIR")))
}

/// A flag set when stdin reaches EOF (the parent's "stop"), and the lines before it.
fn control() -> (Arc<AtomicBool>, std::sync::mpsc::Receiver<String>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
        flag.store(true, Ordering::SeqCst);
    });
    (stop, rx)
}

/// Reader: `ready`, then `m LEN` per message and `err KIND` per error other than a timeout;
/// after an error it reads no more and waits for the stop. `MS_TIMEOUT_MS` is its read timeout.
fn tr_reader() -> i32 {
    let (stop, _lines) = control();
    let timeout = env("MS_TIMEOUT_MS").parse().unwrap_or(20);
    let mut server = match Server::builder(&env("MS_NAME"))
        .scope(scope())
        .shared(true)
        .max_message_size(MAX)
        .capacity(MAX)
        .read_timeout(Timeout::After(Duration::from_millis(timeout)))
        .open()
    {
        Ok(server) => server,
        Err(e) => {
            say(&format!("open-err {:?} {e}", e.kind()));
            return 1;
        }
    };
    say("ready");
    loop {
        match server.recv() {
            Ok(message) => say(&format!("m {}", message.data.len())),
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
            }
            Err(e) => {
                say(&format!("err {:?} {e}", e.kind()));
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                break;
            }
        }
    }
    drop(server);
    say("bye");
    0
}

/// Writer: `ready` (or `open-err KIND`), then per command `w SIZE COUNT` writes up to COUNT
/// messages of SIZE bytes, stopping at the first error: `wrote N` or `err KIND N`.
fn tr_writer() -> i32 {
    let (_stop, lines) = control();
    let mut writer = match Writer::open_in(&scope(), &env("MS_NAME")) {
        Ok(writer) => writer,
        Err(e) => {
            say(&format!("open-err {:?} {e}", e.kind()));
            return 0;
        }
    };
    say("ready");
    while let Ok(line) = lines.recv() {
        let f: Vec<usize> = line
            .split(' ')
            .skip(1)
            .map(|n| n.parse().expect("w SIZE COUNT"))
            .collect();
        let (size, count) = (f[0], f[1]);
        let mut result = format!("wrote {count}");
        for n in 0..count {
            if let Err(e) = writer.write(&vec![0x5a; size]) {
                result = format!("err {:?} {n} {e}", e.kind());
                break;
            }
        }
        say(&result);
    }
    0
}

// ---- the parent's side --------------------------------------------------------------------

fn reader(label: &str, dir: &TestDir, name: &str, timeout_ms: u64) -> Proc {
    let proc = spawn(
        label,
        "tr-reader",
        &[
            ("MS_DIR", dir.env()),
            ("MS_NAME", name.to_owned()),
            ("MS_TIMEOUT_MS", timeout_ms.to_string()),
        ],
    );
    proc.expect("ready");
    proc
}

/// A writer child; its first line is `ready` or `open-err KIND ...`.
fn writer(label: &str, dir: &TestDir, name: &str) -> Proc {
    spawn(
        label,
        "tr-writer",
        &[("MS_DIR", dir.env()), ("MS_NAME", name.to_owned())],
    )
}

fn file_of(dir: &TestDir, name: &str) -> PathBuf {
    dir.path()
        .join(MailslotName::parse(name).expect("name").file_name())
}

/// Truncates `path` to `size` bytes from another process, as a user's `truncate` would.
fn truncate(path: &Path, size: u64) {
    let status = Command::new("truncate")
        .arg("-s")
        .arg(size.to_string())
        .arg(path)
        .status()
        .expect("run truncate");
    assert!(status.success(), "truncate -s {size} {}", path.display());
}

/// The next line that is not a message (`m ...`).
fn next_non_message(proc: &Proc) -> String {
    loop {
        match proc.next_line() {
            Some(line) if line.starts_with("m ") => continue,
            Some(line) => return line,
            None => panic!("{}: exited without reporting", proc.label),
        }
    }
}

/// Stops a child and checks that it exited by itself, successfully, and not by a signal.
fn assert_clean_exit(mut proc: Proc) {
    let status = proc.wait();
    assert_eq!(
        status.signal(),
        None,
        "{} (pid {}) died of a signal: {status}",
        proc.label,
        proc.pid
    );
    assert!(status.success(), "{}: exited with {status}", proc.label);
}

/// Two readers (one sleeping in `recv` with a long timeout, one polling with short ones) and a
/// writer that opened before; the file is cut to `size` bytes; the writer writes on.
fn truncate_under_live_processes(tag: &str, size: u64, slot_table_survives: bool) {
    let dir = TestDir::new(tag);
    let name = "Cut\\Here";
    let parsed = MailslotName::parse(name).expect("name");
    let path = file_of(&dir, name);
    let blocked = reader("blocked", &dir, name, 1000);
    let poller = reader("poller", &dir, name, 20);
    let mut early = writer("early writer", &dir, name);
    early.expect("ready");
    early.send("w 100 1");
    assert_eq!(early.expect("wrote"), "wrote 1");
    blocked.expect("m 100");
    poller.expect("m 100");
    // Not a bound on anything: only makes it likely that the blocked reader is asleep in
    // `recv` again when the file is cut (it must survive either way).
    std::thread::sleep(Duration::from_millis(100));
    truncate(&path, size);

    // The writer that opened before: some writes may still land in pages the cut left, then
    // `Corrupted`; never a signal.
    early.send(&format!("w 1000 {}", 4 * MAX));
    let result = early.expect("");
    assert!(
        result.starts_with("err Corrupted "),
        "the early writer: {result}"
    );
    // Both readers see the damage (the blocked one at its timeout at the latest).
    for proc in [&poller, &blocked] {
        let line = next_non_message(proc);
        assert!(line.starts_with("err Corrupted "), "{}: {line}", proc.label);
    }

    // A new writer: `Corrupted` while readers live, not `NotFound` (nor a signal).
    let late = writer("late writer", &dir, name);
    let line = late.expect("");
    assert!(
        line.starts_with("open-err Corrupted "),
        "late writer: {line}"
    );
    assert_clean_exit(late);
    let err = Writer::open_in(&dir.scope(), name).expect_err("a damaged name");
    assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");

    // `status` lists the name, damaged, with its two live instances.
    let status = mailslot::status_of(dir.path(), &parsed)
        .expect("status")
        .expect("a damaged name with live readers is listed");
    assert!(status.damaged, "{status:?}");
    assert_eq!(status.instances.len(), 2, "{status:?}");
    if slot_table_survives {
        let mut pids: Vec<u32> = status.instances.iter().map(|i| i.pid).collect();
        pids.sort_unstable();
        let mut expected = vec![blocked.pid, poller.pid];
        expected.sort_unstable();
        assert_eq!(pids, expected, "{status:?}");
    }
    let list = mailslot::list(dir.path()).expect("list");
    assert!(
        list.iter().any(|s| s.damaged && s.instances.len() == 2),
        "{list:?}"
    );

    // Everyone exits cleanly when told. While one reader lives, the name stays (damaged).
    assert_clean_exit(early);
    assert_clean_exit(blocked);
    let err = Writer::open_in(&dir.scope(), name).expect_err("still damaged");
    assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
    assert_clean_exit(poller);
    // With no reader left the name is gone, as any dead name.
    let err = Writer::open_in(&dir.scope(), name).expect_err("no reader left");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(mailslot::status_of(dir.path(), &parsed)
        .expect("status")
        .is_none());
}

#[test]
fn truncated_to_zero_kills_no_one() {
    within("truncate to 0", || {
        truncate_under_live_processes("cut0", 0, false)
    });
}

#[test]
fn truncated_in_the_middle_of_the_ring_kills_no_one() {
    // Past the ring's first page: its first records survive, the rest of the ring is gone.
    within("truncate mid ring", || {
        truncate_under_live_processes("cutring", RING_OFFSET + 4096 + 100, true)
    });
}

#[test]
fn truncated_in_the_middle_of_the_header_kills_no_one() {
    // Inside the header page: the header survives, the slot table and the ring are gone.
    within("truncate mid header", || {
        truncate_under_live_processes("cuthead", 2048, false)
    });
}

#[test]
fn a_reader_in_this_process_gets_corrupted() {
    within("in-process reader", || {
        let dir = TestDir::new("cutself");
        let mut server = Server::builder("self")
            .scope(dir.scope())
            .max_message_size(MAX)
            .capacity(MAX)
            .read_timeout(Timeout::Immediate)
            .open()
            .expect("open");
        let mut writer = Writer::open_in(&dir.scope(), "self").expect("writer");
        writer.write(b"before").expect("write");
        truncate(&file_of(&dir, "self"), 0);
        let err = server.recv().expect_err("truncated");
        assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
        let err = writer.write(b"after").expect_err("truncated");
        assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
        let info = server.info();
        assert_eq!(info.count, 0);
    });
}
