//! Windows mailslot semantics (docs/semantics.md), in one process
//! except where a second process is the point.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{TestDir, HANG};
use mailslot::{Callback, ErrorKind, Info, Scope, Server, Source, Timeout, Writer};

#[test]
fn child_process() {
    common::child_main();
}

fn server(dir: &TestDir, name: &str) -> Server {
    Server::builder(name)
        .scope(dir.scope())
        .read_timeout(Timeout::Immediate)
        .open()
        .unwrap_or_else(|e| panic!("open {name}: {e}"))
}

fn writer(dir: &TestDir, name: &str) -> Writer {
    Writer::open_in(&dir.scope(), name).unwrap_or_else(|e| panic!("open writer {name}: {e}"))
}

fn kind<T: std::fmt::Debug>(result: Result<T, mailslot::Error>) -> ErrorKind {
    result.expect_err("expected an error").kind()
}

fn next_and_count(info: Info) -> (Option<usize>, usize) {
    (info.next_size, info.count)
}

#[test]
fn duplicate_open_fails_and_leaves_the_first_intact() {
    let dir = TestDir::new("dup");
    let mut first = server(&dir, "dup");
    writer(&dir, "dup").write(b"before").unwrap();

    // Same name, same process: refused, whatever the spelling or sharing flag.
    for name in ["dup", "DUP", "\\\\.\\mailslot\\Dup", "\\mailslot\\dUp"] {
        let err = Server::builder(name).scope(dir.scope()).open().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{name}: {err}");
        let err = Server::builder(name)
            .scope(dir.scope())
            .shared(true)
            .open()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "shared {name}: {err}");
    }

    // The first is untouched: its backlog is still there and it still receives.
    assert_eq!(next_and_count(first.info()), (Some(6), 1));
    writer(&dir, "dup").write(b"after").unwrap();
    assert_eq!(first.recv().unwrap().data, b"before");
    assert_eq!(first.recv().unwrap().data, b"after");
    assert_eq!(first.recv().unwrap_err().kind(), ErrorKind::TimedOut);

    // The reverse too: a shared name refuses a non-shared open and keeps working.
    let mut shared = Server::builder("dup-shared")
        .scope(dir.scope())
        .shared(true)
        .read_timeout(Timeout::Immediate)
        .open()
        .unwrap();
    let err = Server::builder("dup-shared")
        .scope(dir.scope())
        .open()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    writer(&dir, "dup-shared").write(b"x").unwrap();
    assert_eq!(shared.recv().unwrap().data, b"x");
    drop((first, shared));
    assert_eq!(dir.entries(), Vec::<String>::new());
}

#[test]
fn write_with_no_reader_is_not_found() {
    let dir = TestDir::new("noreader");
    assert_eq!(
        kind(Writer::open_in(&dir.scope(), "nobody-home")),
        ErrorKind::NotFound
    );
    // The one-shot API in the user scope ($MAILSLOT_DIR), from another process.
    let env = [
        ("MAILSLOT_DIR", dir.env()),
        ("MS_NAME", "nobody-home".to_owned()),
    ];
    let results = common::probe("oneshot-absent", None, &["oneshot"], &env);
    assert_eq!(
        results.get("oneshot").map(String::as_str),
        Some("NotFound"),
        "{results:?}"
    );
    assert_eq!(
        dir.entries(),
        Vec::<String>::new(),
        "a failed write created something"
    );

    // With a server, the same one-shot write arrives, stamped with the writer's pid and uid.
    let mut server = server(&dir, "nobody-home");
    let results = common::probe("oneshot-present", None, &["oneshot"], &env);
    assert_eq!(
        results.get("oneshot").map(String::as_str),
        Some("ok"),
        "{results:?}"
    );
    let msg = server.recv().unwrap();
    assert_eq!(common::decode(&msg.data), Some((7, 7)));
    match msg.source {
        Source::Local { pid, uid } => {
            assert_ne!(pid, std::process::id());
            assert_eq!(uid, common::my_uid());
        }
        other => panic!("unexpected source {other:?}"),
    }
}

#[test]
fn zero_length_messages_are_messages() {
    let dir = TestDir::new("zero");
    let mut server = server(&dir, "zero");
    let mut w = writer(&dir, "zero");
    w.write(b"").unwrap();
    w.write(b"").unwrap();
    w.write(b"z").unwrap();
    assert_eq!(next_and_count(server.info()), (Some(0), 3));
    let first = server.recv().unwrap();
    assert!(first.data.is_empty());
    assert_eq!(first.lost, 0);
    assert_eq!(
        first.source,
        Source::Local {
            pid: std::process::id(),
            uid: common::my_uid(),
        }
    );
    let mut buf = [0u8; 0];
    let got = server.recv_into(&mut buf).unwrap();
    assert_eq!(got.len, 0);
    assert_eq!(server.recv().unwrap().data, b"z");
    assert_eq!(server.recv().unwrap_err().kind(), ErrorKind::TimedOut);
}

#[test]
fn insufficient_buffer_keeps_the_message() {
    let dir = TestDir::new("insuff");
    let mut server = server(&dir, "insuff");
    writer(&dir, "insuff").write(b"hi").unwrap();
    writer(&dir, "insuff").write(b"next").unwrap();
    let mut small = [0u8; 1];
    let err = server.recv_into(&mut small).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InsufficientBuffer, "{err}");
    // Still queued: info shows it, again and again.
    assert_eq!(next_and_count(server.info()), (Some(2), 2));
    assert_eq!(
        server.recv_into(&mut small).unwrap_err().kind(),
        ErrorKind::InsufficientBuffer
    );
    assert_eq!(next_and_count(server.info()), (Some(2), 2));
    // An empty buffer too, with a zero timeout.
    assert_eq!(
        server.recv_into(&mut []).unwrap_err().kind(),
        ErrorKind::InsufficientBuffer
    );
    let mut big = [0u8; 16];
    let got = server.recv_into(&mut big).unwrap();
    assert_eq!(&big[..got.len], b"hi");
    assert_eq!(next_and_count(server.info()), (Some(4), 1));
    let mut exact = [0u8; 4];
    assert_eq!(server.recv_into(&mut exact).unwrap().len, 4);
    assert_eq!(&exact, b"next");
    assert_eq!(next_and_count(server.info()), (None, 0));
}

#[test]
fn zero_timeout_on_empty_is_timed_out() {
    let dir = TestDir::new("t0");
    let server = server(&dir, "t0");
    let (mut server, errors) = common::within("immediate reads", move || {
        let mut server = server;
        let errors = vec![
            server.recv().unwrap_err().kind(),
            server.try_recv().unwrap_err().kind(),
            server.recv_into(&mut [0u8; 8]).unwrap_err().kind(),
            server.recv_into(&mut []).unwrap_err().kind(),
        ];
        (server, errors)
    });
    assert_eq!(errors, [ErrorKind::TimedOut; 4]);
    assert_eq!(server.info().read_timeout, Timeout::Immediate);
    // `from_millis` follows Win32: 0 immediate, u32::MAX forever.
    assert_eq!(Timeout::from_millis(0), Timeout::Immediate);
    assert_eq!(Timeout::from_millis(u32::MAX), Timeout::Forever);
    assert_eq!(
        Timeout::from_millis(250),
        Timeout::After(Duration::from_millis(250))
    );
    writer(&dir, "t0").write(b"now").unwrap();
    assert_eq!(server.recv().unwrap().data, b"now");
}

#[test]
fn finite_timeout_waits_at_least_that_long_and_forever_gets_a_later_message() {
    let dir = TestDir::new("tfin");
    let mut server = server(&dir, "tfin");
    let wait = Duration::from_millis(150);
    server.set_read_timeout(Timeout::After(wait));
    assert_eq!(server.info().read_timeout, Timeout::After(wait));
    let (server, elapsed, kind) = common::within("finite timeout", move || {
        let mut server = server;
        let start = Instant::now();
        let kind = server.recv().unwrap_err().kind();
        (server, start.elapsed(), kind)
    });
    assert_eq!(kind, ErrorKind::TimedOut);
    assert!(
        elapsed >= wait,
        "timed out after {elapsed:?}, before {wait:?}"
    );

    // Forever: a message written later by another thread arrives.
    let mut server = server;
    server.set_read_timeout(Timeout::Forever);
    assert_eq!(server.info().read_timeout, Timeout::Forever);
    let scope = dir.scope();
    let later = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        Writer::open_in(&scope, "tfin")
            .unwrap()
            .write(b"late")
            .unwrap();
    });
    let msg = common::within("forever read", move || server.recv().map(|m| m.data));
    assert_eq!(msg.unwrap(), b"late");
    later.join().unwrap();
}

#[test]
fn info_walks_like_get_mailslot_info() {
    let dir = TestDir::new("info");
    let mut server = Server::builder("info")
        .scope(dir.scope())
        .max_message_size(512)
        .read_timeout(Timeout::Immediate)
        .open()
        .unwrap();
    let mut w = writer(&dir, "info");
    let info = server.info();
    assert_eq!(info.max_message_size, 512);
    assert_eq!(info.read_timeout, Timeout::Immediate);
    let mut walk = vec![next_and_count(server.info())];
    for data in [&b"a"[..], b"bc", b""] {
        w.write(data).unwrap();
        walk.push(next_and_count(server.info()));
        // Looking consumes nothing.
        assert_eq!(next_and_count(server.info()), *walk.last().unwrap());
    }
    let mut read = Vec::new();
    for _ in 0..3 {
        read.push(server.recv().unwrap().data);
        walk.push(next_and_count(server.info()));
    }
    assert_eq!(
        walk,
        [
            (None, 0),
            (Some(1), 1),
            (Some(1), 2),
            (Some(1), 3),
            (Some(2), 2),
            (Some(0), 1),
            (None, 0),
        ]
    );
    assert_eq!(read, [b"a".to_vec(), b"bc".to_vec(), Vec::new()]);

    // Created with 0 (no limit): info reports 0, like Windows.
    let unlimited = server_with_max(&dir, "info-unlimited", 0);
    assert_eq!(unlimited.info().max_message_size, 0);
}

fn server_with_max(dir: &TestDir, name: &str, max: usize) -> Server {
    Server::builder(name)
        .scope(dir.scope())
        .max_message_size(max)
        .read_timeout(Timeout::Immediate)
        .open()
        .unwrap()
}

#[test]
fn closing_discards_the_backlog_and_frees_the_name() {
    let dir = TestDir::new("close");
    let first = server(&dir, "close");
    let mut early = writer(&dir, "close");
    for data in [&b"1"[..], b"2", b"3"] {
        early.write(data).unwrap();
    }
    assert_eq!(first.info().count, 3);
    drop(first);
    assert_eq!(
        dir.entries(),
        Vec::<String>::new(),
        "the name's file outlived its server"
    );
    // A writer opened before the close fails definitely; new writers find nothing.
    assert_eq!(kind(early.write(b"4")), ErrorKind::NotFound);
    assert_eq!(
        kind(Writer::open_in(&dir.scope(), "close")),
        ErrorKind::NotFound
    );
    // The name is free at once, and starts empty.
    let mut again = server(&dir, "close");
    assert_eq!(next_and_count(again.info()), (None, 0));
    assert_eq!(again.recv().unwrap_err().kind(), ErrorKind::TimedOut);
    writer(&dir, "close").write(b"fresh").unwrap();
    assert_eq!(again.recv().unwrap().data, b"fresh");
}

#[test]
fn maximum_size_is_enforced_without_queueing() {
    let dir = TestDir::new("max");
    let mut server = server_with_max(&dir, "max", 100);
    let mut w = writer(&dir, "max");
    let err = w.write(&[1u8; 101]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MessageTooLarge, "{err}");
    assert_eq!(
        next_and_count(server.info()),
        (None, 0),
        "an oversized write queued"
    );
    assert_eq!(kind(w.write(&[1u8; 100 << 10])), ErrorKind::MessageTooLarge);
    w.write(&[2u8; 100]).unwrap();
    assert_eq!(next_and_count(server.info()), (Some(100), 1));
    assert_eq!(server.recv().unwrap().data, [2u8; 100]);
    // A maximum above the implementation's is refused when opening.
    let err = Server::builder("max-huge")
        .scope(dir.scope())
        .max_message_size(mailslot::MAX_MESSAGE_SIZE + 1)
        .open()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MessageTooLarge, "{err}");
}

#[test]
fn one_mebibyte_message() {
    let dir = TestDir::new("mib");
    let mut server = server(&dir, "mib");
    let mut w = writer(&dir, "mib");
    const { assert!(mailslot::MAX_MESSAGE_SIZE >= 1 << 20) };
    let big = common::encode(1, 2, (1 << 20) - 16);
    assert_eq!(big.len(), 1 << 20);
    w.write(&big).unwrap();
    w.write(&big).unwrap();
    assert_eq!(next_and_count(server.info()), (Some(1 << 20), 2));
    for _ in 0..2 {
        let msg = server.recv().unwrap();
        assert_eq!(msg.data.len(), 1 << 20);
        assert_eq!(common::decode(&msg.data), Some((1, 2)));
    }
    let err = w.write(&vec![0u8; (1 << 20) + 1]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MessageTooLarge, "{err}");
    assert_eq!(next_and_count(server.info()), (None, 0));
}

#[test]
fn names_are_case_insensitive_and_path_like() {
    let dir = TestDir::new("names");
    let mut bob = server(&dir, "Taxes\\Bob");
    assert_eq!(bob.name(), "Taxes\\Bob");
    let err = Server::builder("\\\\.\\mailslot\\TAXES\\bob")
        .scope(dir.scope())
        .open()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    // Every spelling reaches the same mailslot.
    for (i, name) in [
        "\\\\.\\mailslot\\TAXES\\bob",
        "taxes\\BOB",
        "\\MAILSLOT\\Taxes\\Bob",
    ]
    .iter()
    .enumerate()
    {
        writer(&dir, name).write(&[i as u8]).unwrap();
    }
    for i in 0..3u8 {
        assert_eq!(bob.recv().unwrap().data, [i]);
    }
    // Pseudo-directories need nothing created first and are part of the name.
    let mut deep = server(&dir, "\\\\.\\mailslot\\abc\\def\\ghi");
    assert_eq!(
        kind(Writer::open_in(&dir.scope(), "abc\\def")),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(Writer::open_in(&dir.scope(), "Taxes")),
        ErrorKind::NotFound
    );
    writer(&dir, "ABC\\DEF\\GHI").write(b"deep").unwrap();
    assert_eq!(deep.recv().unwrap().data, b"deep");
    // Odd but legal characters (a colon, spaces, non-ASCII) stay inside the directory.
    let _colon = server(&dir, "R:\\FRED");
    let _unicode = server(&dir, "Ünï cödé");
    writer(&dir, "r:\\fred").write(b"ok").unwrap();
    writer(&dir, "ünï CÖDÉ").write(b"ok").unwrap();
    // `list` shows each name once, case preserved.
    let names: Vec<String> = mailslot::list(dir.path())
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.contains(&"Taxes\\Bob".to_owned()), "{names:?}");
    assert!(names.contains(&"abc\\def\\ghi".to_owned()), "{names:?}");
    assert!(names.contains(&"R:\\FRED".to_owned()), "{names:?}");
    for entry in dir.entries() {
        let doorbell = entry.starts_with(".bell-");
        assert!(
            !entry.contains('/') && (doorbell || !entry.starts_with('.')),
            "{entry}"
        );
    }
}

#[test]
fn invalid_names_are_rejected_with_nothing_created() {
    let parent = TestDir::new("badnames");
    let dir_path = parent.path().join("rt");
    std::fs::create_dir(&dir_path).unwrap();
    std::fs::set_permissions(
        &dir_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let scope = Scope::Dir(dir_path.clone());
    let long = "x".repeat(mailslot::MAX_NAME_LEN + 1);
    let bad: Vec<&str> = vec![
        "",
        ".",
        "..",
        "a/b",
        "/etc/passwd",
        "../escape",
        "..\\escape",
        "a\\..\\b",
        "a\\.\\b",
        "a\0b",
        "\0",
        "a\nb",
        "a\\\\b",
        "\\a",
        "a\\",
        "\\\\.\\mailslot\\",
        "\\\\.\\mailslot\\..",
        "\\\\.\\mailslot\\a/b",
        &long,
    ];
    for name in &bad {
        let err = Server::builder(name)
            .scope(scope.clone())
            .open()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName, "server {name:?}: {err}");
        assert!(!err.to_string().is_empty());
        let err = Writer::open_in(&scope, name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName, "writer {name:?}: {err}");
        assert_eq!(
            mailslot::MailslotName::parse(name).unwrap_err().kind(),
            ErrorKind::InvalidName
        );
    }
    // A server cannot be opened on a remote or broadcast path.
    for name in ["\\\\HOST\\mailslot\\x", "\\\\*\\mailslot\\x"] {
        let err = Server::builder(name)
            .scope(scope.clone())
            .open()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName, "{name}: {err}");
    }
    // The longest name is fine.
    drop(server_in(&scope, &"x".repeat(mailslot::MAX_NAME_LEN)));
    // Nothing anywhere: not in the runtime directory, not beside it.
    assert_eq!(std::fs::read_dir(&dir_path).unwrap().count(), 0);
    assert_eq!(parent.entries(), ["rt"]);
}

fn server_in(scope: &Scope, name: &str) -> Server {
    Server::builder(name).scope(scope.clone()).open().unwrap()
}

#[test]
fn descriptor_turns_readable_when_a_message_arrives() {
    let dir = TestDir::new("fd");
    let mut server = server(&dir, "fd");
    assert!(!common::poll_readable(&server, 0), "readable while empty");
    let scope = dir.scope();
    let later = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        Writer::open_in(&scope, "fd")
            .unwrap()
            .write(b"ring")
            .unwrap();
    });
    assert!(
        common::poll_readable(&server, HANG.as_millis() as i32),
        "not readable after a write"
    );
    later.join().unwrap();
    assert_eq!(server.try_recv().unwrap().data, b"ring");
    // Drained to TimedOut: re-armed, quiet again.
    assert_eq!(server.try_recv().unwrap_err().kind(), ErrorKind::TimedOut);
    assert!(
        !common::poll_readable(&server, 0),
        "readable after draining"
    );
    // Again, and with several messages per wake-up.
    let mut w = writer(&dir, "fd");
    w.write(b"a").unwrap();
    w.write(b"b").unwrap();
    assert!(common::poll_readable(&server, HANG.as_millis() as i32));
    assert_eq!(server.try_recv().unwrap().data, b"a");
    assert_eq!(server.try_recv().unwrap().data, b"b");
    assert_eq!(server.try_recv().unwrap_err().kind(), ErrorKind::TimedOut);
    assert!(!common::poll_readable(&server, 0));
    // After a blocking read that timed out, the descriptor is armed as well.
    server.set_read_timeout(Timeout::After(Duration::from_millis(10)));
    assert_eq!(server.recv().unwrap_err().kind(), ErrorKind::TimedOut);
    w.write(b"c").unwrap();
    assert!(common::poll_readable(&server, HANG.as_millis() as i32));
    assert_eq!(server.try_recv().unwrap().data, b"c");
}

#[test]
fn callback_receives_and_stops_on_drop() {
    let dir = TestDir::new("cb");
    let server = server(&dir, "cb");
    let (tx, rx) = mpsc::channel();
    let helper = Callback::spawn(server, move |message| {
        let _ = tx.send(message.data);
    })
    .unwrap();
    let mut w = writer(&dir, "cb");
    for i in 0..100u32 {
        w.write(&i.to_le_bytes()).unwrap();
    }
    for i in 0..100u32 {
        let data = rx.recv_timeout(HANG).expect("callback did not deliver");
        assert_eq!(data, i.to_le_bytes());
    }
    common::within("dropping the callback helper", move || drop(helper));
    // The thread is gone (its sender with it) and the mailslot closed.
    assert_eq!(
        rx.recv_timeout(HANG),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
    assert_eq!(kind(w.write(b"late")), ErrorKind::NotFound);
    assert_eq!(
        kind(Writer::open_in(&dir.scope(), "cb")),
        ErrorKind::NotFound
    );
    assert_eq!(dir.entries(), Vec::<String>::new());
}

#[test]
fn errors_name_the_mailslot() {
    let dir = TestDir::new("errmsg");
    let err = Writer::open_in(&dir.scope(), "Missing\\Slot").unwrap_err();
    assert!(err.to_string().contains("Missing\\Slot"), "{err}");
    let _held = server(&dir, "Held");
    let err = Server::builder("held")
        .scope(dir.scope())
        .open()
        .unwrap_err();
    assert!(err.to_string().to_lowercase().contains("held"), "{err}");
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::AlreadyExists);
}

/// LIBRARY BUG (crates/mailslot/src/server.rs, `Timeout::deadline`:
/// `Timeout::After(d) => Some(Instant::now() + d)`): a very long finite timeout, e.g.
/// `Timeout::After(Duration::MAX)` for "practically forever", panics with "overflow when
/// adding duration to instant" on every read instead of waiting. Fix (one line):
/// `Timeout::After(d) => Instant::now().checked_add(d)` (no representable deadline = forever).
#[test]
fn a_huge_finite_timeout_waits_instead_of_panicking() {
    let dir = TestDir::new("hugetimeout");
    let mut server = Server::builder("huge")
        .scope(dir.scope())
        .read_timeout(Timeout::After(Duration::MAX))
        .open()
        .unwrap();
    writer(&dir, "huge").write(b"soon").unwrap();
    let got = common::within("a read with a huge timeout", move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            server.recv().map(|m| m.data)
        }))
    });
    match got {
        Ok(data) => assert_eq!(data.unwrap(), b"soon"),
        Err(_) => panic!("LIBRARY BUG: recv with Timeout::After(Duration::MAX) panicked"),
    }
}

#[test]
fn listing_removes_drafts_abandoned_by_a_killed_creator() {
    let dir = TestDir::new("drafts");
    let abandoned = dir.path().join(".x.slot.00000000000000ab.tmp");
    let fresh = dir.path().join(".y.slot.00000000000000cd.tmp");
    for path in [&abandoned, &fresh] {
        std::fs::write(path, b"").unwrap();
    }
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&abandoned)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    assert!(mailslot::list(dir.path()).unwrap().is_empty());
    assert!(!abandoned.exists(), "an hour-old draft is abandoned");
    assert!(fresh.exists(), "a draft being written right now stays");
}

/// The longest names open even when every byte needs escaping on disk, and names compare
/// character by character as on Windows (a final sigma is a sigma).
#[test]
fn longest_escaped_names_open_and_case_folds_per_character() {
    let dir = TestDir::new("long-names");
    let scope = dir.scope();
    for name in [
        "%".repeat(80),
        format!("{}\\é", "ä".repeat(38)),
        "x".repeat(80),
    ] {
        let mut server = Server::builder(&name)
            .scope(scope.clone())
            .open()
            .unwrap_or_else(|e| panic!("{} bytes: {e}", name.len()));
        Writer::open_in(&scope, &name)
            .unwrap()
            .write(b"long")
            .unwrap();
        assert_eq!(server.recv().unwrap().data, b"long");
    }
    let mut server = Server::builder("ΟΔΟΣ").scope(scope.clone()).open().unwrap();
    for spelling in ["οδοσ", "οδος", "ΟΔΟΣ"] {
        Writer::open_in(&scope, spelling)
            .unwrap()
            .write(spelling.as_bytes())
            .unwrap();
        assert_eq!(server.recv().unwrap().data, spelling.as_bytes());
    }
}

/// Options are checked, not taken on trust: a capacity no ring can hold is refused with the
/// reason (it used to give a server that could never be written); the 129th instance of a
/// name is refused saying there are too many.
#[test]
fn impossible_options_and_too_many_instances_are_refused_clearly() {
    let dir = TestDir::new("options");
    for capacity in [(1usize << 63) + 1, 1 << 40, mailslot::MAX_CAPACITY + 1] {
        let err = Server::builder("opts")
            .scope(dir.scope())
            .capacity(capacity)
            .open()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidOption, "{capacity}: {err}");
        assert!(err.to_string().contains("at most"), "{err}");
    }
    assert!(
        dir.entries().is_empty(),
        "nothing created: {:?}",
        dir.entries()
    );
    let open = || {
        Server::builder("crowd")
            .shared(true)
            .scope(dir.scope())
            .open()
    };
    let crowd: Vec<Server> = (0..128).map(|_| open().unwrap()).collect();
    let err = open().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QueueFull);
    assert!(err.to_string().contains("too many instances"), "{err}");
    drop(crowd);
}

/// A full filesystem is an error at open, never a signal later: a name's ring is allocated
/// whole when it is created, so a name that does not fit is refused with the reason (nothing
/// left behind), and writes into one that fits never fault, even with the filesystem full.
#[test]
fn a_full_filesystem_is_an_error_at_open_never_a_signal() {
    if !common::require_root("a_full_filesystem_is_an_error_at_open_never_a_signal") {
        return;
    }
    let dir = TestDir::new("tinyfs");
    struct Mount(std::path::PathBuf);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a 1 MiB tmpfs");
    let _mount = Mount(dir.path().to_path_buf());
    let scope = dir.scope();
    // 4 MiB of ring on 1 MiB: refused at once, with the reason, nothing left behind.
    let err = Server::builder("big")
        .scope(scope.clone())
        .open()
        .unwrap_err();
    assert!(err.to_string().contains("filesystem full"), "{err}");
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    // A small one fits; then the rest of the filesystem is filled up.
    let mut server = Server::builder("small")
        .scope(scope.clone())
        .max_message_size(1024)
        .capacity(64 << 10)
        .read_timeout(Timeout::Immediate)
        .open()
        .unwrap();
    let mut filler = std::fs::File::create(dir.path().join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    // Lap the ring many times over: every page was there from the start.
    let mut writer = Writer::open_in(&scope, "small").unwrap();
    for i in 0..5000u32 {
        writer.write(&[i as u8; 1000]).unwrap();
    }
    let mut read = 0u64;
    let mut lost = 0u64;
    while let Ok(m) = server.try_recv() {
        read += 1;
        lost += m.lost;
    }
    assert_eq!(read + lost, 5000, "every message read or counted lost");
    // Another new name is refused cleanly now.
    let err = Server::builder("more")
        .scope(scope)
        .max_message_size(1024)
        .capacity(64 << 10)
        .open()
        .unwrap_err();
    assert!(err.to_string().contains("filesystem full"), "{err}");
}

/// A one-shot write (`mailslot::write`) keeps its writer for the next one-shot to the same
/// name, and behaves as a fresh open would: it reaches a server that replaced a closed one,
/// and fails with `NotFound`, never succeeding into nothing, once the server was killed.
#[test]
fn one_shot_writes_reach_the_current_server_and_never_a_dead_one() {
    let dir = TestDir::new("oneshot");
    let name = "oneshot";
    let open = || {
        Server::builder(name)
            .scope(dir.scope())
            .read_timeout(Timeout::After(HANG))
            .open()
            .unwrap()
    };
    let mut writes = common::spawn(
        "one_shot",
        "one_shot",
        &[("MAILSLOT_DIR", dir.env()), ("MS_NAME", name.to_owned())],
    );
    writes.expect("ready");
    let mut first = open();
    writes.send("one");
    assert_eq!(writes.expect(""), "ok");
    assert_eq!(first.recv().unwrap().data, b"one");
    writes.send("two");
    assert_eq!(writes.expect(""), "ok");
    assert_eq!(first.recv().unwrap().data, b"two");
    // Closed and replaced: the kept writer is gone with its server, the new one gets it.
    drop(first);
    let mut second = open();
    writes.send("three");
    assert_eq!(writes.expect(""), "ok");
    assert_eq!(second.recv().unwrap().data, b"three");
    // A server in another process, killed: the next one-shot finds nobody.
    drop(second);
    let mut reader = common::spawn_reader("reader", &dir, name, &[]);
    writes.send("four");
    assert_eq!(writes.expect(""), "ok");
    reader.kill9();
    writes.send("five");
    assert_eq!(writes.expect(""), "NotFound");
    writes.close_stdin();
    writes.wait_ok();
}

/// The descriptor of a server asked for only after messages arrived is readable at once (the
/// doorbell is armed when the descriptor is first asked for, and rung then if messages wait).
#[test]
fn a_descriptor_asked_for_after_messages_arrived_is_readable() {
    let dir = TestDir::new("latefd");
    let mut server = Server::builder("latefd")
        .scope(dir.scope())
        .read_timeout(Timeout::Immediate)
        .open()
        .unwrap();
    let mut writer = Writer::open_in(&dir.scope(), "latefd").unwrap();
    writer.write(b"early").unwrap();
    assert!(
        common::poll_readable(&server, 5_000),
        "not readable with a message waiting"
    );
    assert_eq!(server.recv().unwrap().data, b"early");
    assert!(server.recv().is_err());
    assert!(
        !common::poll_readable(&server, 0),
        "readable with nothing waiting"
    );
    writer.write(b"late").unwrap();
    assert!(common::poll_readable(&server, 5_000));
}
