//! Security (docs/semantics.md, SECURITY.md): hostile names and the private user scope (the global
//! scope's attacks are in the CLI's `host_service` tests). Tests that need a second user run a child as
//! `nobody` through `setpriv`; they need root, and are skipped (with a message) without it,
//! unless `CI` is set, where they fail instead.

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::TestDir;
use mailslot::{ErrorKind, MailslotName, Scope, Server, Timeout, Writer};

#[test]
fn child_process() {
    common::child_main();
}

const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

fn results_all(results: &HashMap<String, String>, ops: &[&str], expected: &str) {
    for op in ops {
        assert_eq!(
            results.get(*op).map(String::as_str),
            Some(expected),
            "{op}: all results {results:?}"
        );
    }
}

#[test]
fn hostile_names_are_rejected_with_nothing_created() {
    let outer = TestDir::new("hostile");
    let dir = outer.path().join("rt");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let scope = Scope::Dir(dir.clone());
    let escape = format!("..\\..\\..\\{}", outer.path().display());
    let hostile = [
        "../../etc/passwd",
        "/etc/passwd",
        "..\\..\\etc\\passwd",
        "\\\\.\\mailslot\\..\\..\\x",
        "\\\\.\\mailslot\\..",
        "a/../../b",
        "x\\..",
        "..",
        ".",
        "a\0../../etc",
        "\0",
        "a\\\\\\b",
        "a\r\nb",
        "\u{7f}",
        escape.as_str(),
    ];
    for name in hostile {
        for shared in [false, true] {
            let err = Server::builder(name)
                .scope(scope.clone())
                .shared(shared)
                .open()
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName, "{name:?}: {err}");
        }
        let err = Writer::open_in(&scope, name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName, "{name:?}: {err}");
    }
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        0,
        "a rejected name created a file"
    );

    // Names that merely look hostile are legal, and stay one file inside the directory.
    let odd = [
        "%2e%2e%2fetc",
        ".hidden",
        "..x",
        "x..",
        "a.b\\..c",
        "~root",
        "$(id)",
    ];
    let servers: Vec<Server> = odd
        .iter()
        .map(|name| {
            Server::builder(name)
                .scope(scope.clone())
                .open()
                .unwrap_or_else(|e| panic!("{name:?}: {e}"))
        })
        .collect();
    // One file per name, plus each open instance's doorbell socket.
    let files: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| !f.starts_with(".bell-"))
        .collect();
    assert_eq!(files.len(), odd.len(), "{files:?}");
    for file in &files {
        assert!(
            !file.contains('/') && !file.starts_with('.') && file.ends_with(".slot"),
            "{file}"
        );
        assert!(fs::symlink_metadata(dir.join(file)).unwrap().is_file());
    }
    let listed: Vec<String> = mailslot::list(&dir)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    for name in odd {
        assert!(
            listed.contains(&name.to_owned()),
            "{name} not listed: {listed:?}"
        );
    }
    drop(servers);
    assert_eq!(
        outer.entries(),
        ["rt"],
        "something was created beside the runtime dir"
    );
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn runtime_dirs_open_to_others_or_symlinked_are_refused() {
    let outer = TestDir::new("baddir");
    // Open to others: refused rather than trusted, for servers and writers alike.
    let open = outer.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
    let scope = Scope::Dir(open.clone());
    let err = Server::builder("x")
        .scope(scope.clone())
        .open()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let err = Writer::open_in(&scope, "x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
    // A symlink to a private directory is not the directory.
    let real = outer.path().join("real");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
    let link = outer.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = Server::builder("x")
        .scope(Scope::Dir(link))
        .open()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(fs::read_dir(&real).unwrap().count(), 0);
    // A symlink planted where a name's file goes is not followed.
    let victim = outer.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let file = MailslotName::parse("planted").unwrap().file_name();
    std::os::unix::fs::symlink(&victim, real.join(&file)).unwrap();
    assert!(Server::builder("planted")
        .scope(Scope::Dir(real.clone()))
        .open()
        .is_err());
    assert!(Writer::open_in(&Scope::Dir(real.clone()), "planted").is_err());
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn another_user_cannot_open_read_write_or_list_a_user_scope_name() {
    if !common::require_root("another_user_cannot_open_read_write_or_list_a_user_scope_name") {
        return;
    }
    let dir = TestDir::new("private");
    let name = "Secret\\Box";
    let mut server = Server::builder(name)
        .scope(dir.scope())
        .shared(true)
        .read_timeout(Timeout::Immediate)
        .open()
        .unwrap();
    let file = dir
        .path()
        .join(MailslotName::parse(name).unwrap().file_name());
    assert_eq!(fs::metadata(dir.path()).unwrap().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);

    let ops = [
        "server",
        "server_shared",
        "create_other",
        "write",
        "list",
        "status",
        "rawopen",
        "readdir",
    ];
    // Through an explicit directory...
    let envs = [("MS_DIR", dir.env()), ("MS_NAME", name.to_owned())];
    let results = common::probe("nobody-dir", Some(&NOBODY), &ops, &envs);
    results_all(&results, &ops, "PermissionDenied");
    // ...and through $MAILSLOT_DIR (the user scope, the one-shot write too).
    let envs = [
        ("MS_SCOPE", "user".to_owned()),
        ("MAILSLOT_DIR", dir.env()),
        ("MS_DIR", dir.env()),
        ("MS_NAME", name.to_owned()),
    ];
    let user_ops = ["server_shared", "write", "oneshot"];
    let results = common::probe("nobody-user", Some(&NOBODY), &user_ops, &envs);
    results_all(&results, &user_ops, "PermissionDenied");

    // Nothing arrived, nothing changed, and the owner's mailslot still works.
    assert_eq!(server.info().count, 0);
    assert_eq!(
        dir.entries().len(),
        2,
        "the name and its doorbell: {:?}",
        dir.entries()
    );
    Writer::open_in(&dir.scope(), name)
        .unwrap()
        .write(b"mine")
        .unwrap();
    assert_eq!(server.recv().unwrap().data, b"mine");

    // Sanity: the same child works in a directory of its own.
    let own = TestDir::reserve("nobody-own");
    let envs = [("MS_DIR", own.env()), ("MS_NAME", name.to_owned())];
    let results = common::probe("nobody-own", Some(&NOBODY), &["server", "list"], &envs);
    assert_eq!(results["server"], "ok", "{results:?}");
    assert_eq!(results["list"], "ok 0", "{results:?}");
    let meta = fs::metadata(own.path()).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (65534, 0o700));
}

/// Doorbells (the descriptors that poll readable when a message waits) are socket files in the
/// private runtime directory: another user cannot reach one (an abstract socket, listed in
/// `/proc/net/unix`, could be rung by anyone), and a ring that finds no message is drained,
/// so a poller goes back to sleep instead of spinning on a readable descriptor.
#[test]
fn doorbells_cannot_be_rung_by_others_and_a_spurious_ring_does_not_spin() {
    let dir = TestDir::new("bell");
    let scope = dir.scope();
    let mut server = Server::builder("bells")
        .scope(scope.clone())
        .open()
        .unwrap();
    let bell = dir
        .path()
        .join(format!(".bell-{:016x}", server.instance_id()));
    assert!(
        bell.exists(),
        "doorbell {} missing: {:?}",
        bell.display(),
        dir.entries()
    );
    // A spurious ring by one of our own processes: readable once, then drained by the read
    // that finds nothing.
    let ringer = std::os::unix::net::UnixDatagram::unbound().unwrap();
    ringer.send_to(b"x", &bell).unwrap();
    assert!(
        common::poll_readable(&server, 1000),
        "the ring did not wake the descriptor"
    );
    server.set_read_timeout(Timeout::Immediate);
    assert_eq!(server.try_recv().unwrap_err().kind(), ErrorKind::TimedOut);
    assert!(
        !common::poll_readable(&server, 200),
        "a spurious ring left the descriptor readable: a poller would spin"
    );
    // A real message still wakes it.
    Writer::open_in(&scope, "bells")
        .unwrap()
        .write(b"m")
        .unwrap();
    assert!(common::poll_readable(&server, 1000));
    assert_eq!(server.try_recv().unwrap().data, b"m");
    assert_eq!(server.try_recv().unwrap_err().kind(), ErrorKind::TimedOut);
    // Another user cannot even reach the socket.
    if !common::require_root("doorbells_cannot_be_rung_by_others") {
        return;
    }
    let python = "/usr/bin/python3";
    if !std::path::Path::new(python).exists() {
        common::skip::skip(&format!("no {python}"));
        return;
    }
    let out = std::process::Command::new("setpriv")
        .args(NOBODY)
        .args(["--", python, "-c"])
        .arg(format!(
            "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
             try:\n    s.sendto(b'x', {:?})\n    print('rang')\n\
             except PermissionError:\n    print('refused')",
            bell.to_str().unwrap()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "refused",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!common::poll_readable(&server, 100));
    drop(server);
    assert!(
        !bell.exists(),
        "a closed instance leaves its doorbell behind"
    );
}
