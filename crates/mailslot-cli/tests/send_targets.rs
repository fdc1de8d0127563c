//! `mailslot send` to network targets, run as a real process: what is refused before any
//! traffic (IPv6, bad settings, sizes), with which message and exit code, and what goes on the
//! wire (the Messenger To field of a broadcast, the largest datagram).

#[path = "../../mailslot/tests/common/scratch.rs"]
mod scratch;

use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Command, Output};
use std::time::Duration;

use scratch::Scratch;
use serde_json::Value;

/// Runs `mailslot` with its own runtime directory and no network role in this process.
fn mailslot(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailslot"))
        .args(args)
        .env("MAILSLOT_DIR", dir)
        .env_remove("MAILSLOT_PORT")
        .env_remove("MAILSLOT_WORKGROUP")
        .env_remove("MAILSLOT_NETBIOS_NAME")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One line on stderr and exit code `code`.
fn refused(out: &Output, code: i32, what: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
    err
}

#[test]
fn ipv6_targets_are_refused_at_once() {
    let dir = Scratch::dir("ms-send-targets", "send");
    for to in ["::1", "fe80::1", "[::1]", "fe80::1%lo"] {
        let out = mailslot(
            dir.path(),
            &[
                "--broadcast",
                "127.255.255.255",
                "send",
                "TEST",
                "hi",
                "--to",
                to,
            ],
        );
        let err = refused(&out, 2, to);
        assert!(err.contains("only IPv4 is supported"), "{to}: {err}");
        assert!(!err.contains("not found"), "{to}: {err}");
        // The same as a \\HOST\mailslot\NAME path.
        let path = format!("\\\\{to}\\mailslot\\TEST");
        let out = mailslot(dir.path(), &["send", &path, "hi"]);
        let err = refused(&out, 2, &path);
        assert!(err.contains("only IPv4 is supported"), "{path}: {err}");
    }
}

#[test]
fn a_name_too_long_for_netbios_says_no_query_was_sent() {
    let dir = Scratch::dir("ms-send-targets", "send");
    let name = "ABCDEFGHIJKLMNOPQ";
    let out = mailslot(
        dir.path(),
        &[
            "--broadcast",
            "127.255.255.255",
            "send",
            "TEST",
            "hi",
            "--to",
            name,
        ],
    );
    let err = refused(&out, 1, name);
    assert!(!err.contains("no answer"), "{err}");
    assert!(
        err.contains("not found in DNS or /etc/hosts") && err.contains("longer than 15 characters"),
        "{err}"
    );
}

/// The datagram `send --dry-run` prints, decoded by `mailslot decode`.
fn dry_run(dir: &std::path::Path, global: &[&str], send: &[&str]) -> Result<Value, Output> {
    let mut args: Vec<&str> = global.to_vec();
    args.extend(["send", "--dry-run"]);
    args.extend(send);
    let out = mailslot(dir, &args);
    if !out.status.success() {
        return Err(out);
    }
    let hex = String::from_utf8(out.stdout).unwrap();
    let decoded = mailslot(dir, &["decode", hex.trim()]);
    assert!(decoded.status.success(), "{}", stderr(&decoded));
    Ok(serde_json::from_slice(&decoded.stdout).unwrap())
}

#[test]
fn one_size_limit_for_every_target_kind() {
    let dir = Scratch::dir("ms-send-targets", "send");
    // (mailslot, limit): 576 bytes of datagram less 82 of header and names, less DataOffset.
    for (mailslot, limit) in [("TEST", 410), ("MESSNGR", 406), ("ABCDEFGHIJKLM", 398)] {
        for to in ["10.99.0.2", "HOSTB", "*", "WORKGROUP", "OTHERWG --group"] {
            let mut send: Vec<&str> = vec![mailslot, "--stdin", "--to"];
            send.extend(to.split(' '));
            for len in [limit - 1, limit] {
                let file = dir.path().join(format!("m{len}"));
                std::fs::write(&file, vec![b'x'; len]).unwrap();
                let path = file.to_str().unwrap().to_owned();
                let mut args = send.clone();
                args[1] = "--file";
                args.insert(2, &path);
                let v = dry_run(dir.path(), &[], &args)
                    .unwrap_or_else(|out| panic!("{len} bytes to {to}: {}", stderr(&out)));
                assert_eq!(v["data_count"], len, "{to}");
                if len == limit {
                    assert_eq!(v["len"], 576, "{mailslot} to {to}: the largest datagram");
                }
            }
            for len in [limit + 1, 424, 425, 426, 427, 428, 429] {
                let file = dir.path().join(format!("m{len}"));
                std::fs::write(&file, vec![b'x'; len]).unwrap();
                let path = file.to_str().unwrap().to_owned();
                let mut args = send.clone();
                args[1] = "--file";
                args.insert(2, &path);
                let out = dry_run(dir.path(), &[], &args).unwrap_err();
                let err = refused(&out, 1, to);
                assert!(
                    err.contains(&format!("message of {len} bytes is too large"))
                        && err.contains(&format!("at most {limit} bytes")),
                    "{len} bytes of {mailslot} to {to}: {err}"
                );
            }
        }
    }
}

#[test]
fn real_sends_stop_at_the_same_limit() {
    let dir = Scratch::dir("ms-send-targets", "send");
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    // By IP, and by our own NetBIOS name (resolved without a query, to 127.0.0.1).
    for to in ["127.0.0.1", "SENDER"] {
        let base = [
            "--port",
            port.as_str(),
            "--bind",
            "127.0.0.1",
            "--netbios-name",
            "SENDER",
            "send",
            "TEST",
            "--to",
            to,
            "--file",
        ];
        for (len, ok) in [(410, true), (411, false), (427, false), (428, false)] {
            let file = dir.path().join(format!("r{len}"));
            std::fs::write(&file, vec![b'y'; len]).unwrap();
            let mut args = base.to_vec();
            args.push(file.to_str().unwrap());
            let out = mailslot(dir.path(), &args);
            if ok {
                assert!(out.status.success(), "{len} to {to}: {}", stderr(&out));
                let mut buf = [0u8; 2048];
                let n = sock.recv(&mut buf).unwrap();
                assert_eq!(n, 576, "{len} bytes to {to}");
            } else {
                let err = refused(&out, 1, to);
                assert!(err.contains("at most 410 bytes"), "{len} to {to}: {err}");
            }
        }
    }
}

#[test]
fn a_messenger_broadcast_names_the_workgroup() {
    let dir = Scratch::dir("ms-send-targets", "send");
    let popup = ["--messenger", "--from", "ALICE", "--to-user", "*"];
    let mut args = vec!["", "hello", "--to", "*"];
    args.extend(popup);
    let v = dry_run(dir.path(), &["--workgroup", "office"], &args).unwrap();
    assert_eq!(v["mailslot"], "\\MAILSLOT\\MESSNGR");
    assert_eq!(
        v["messenger"],
        serde_json::json!({"from": "ALICE", "to": "OFFICE", "text": "hello"})
    );
    // To another workgroup: that one.
    let mut args = vec!["MESSNGR", "hello", "--to", "lab", "--group"];
    args.extend(popup);
    let v = dry_run(dir.path(), &[], &args).unwrap();
    assert_eq!(v["messenger"]["to"], "LAB");
    // A recipient that starts with * is not a name.
    let mut args = vec!["MESSNGR", "hello", "--to", "*"];
    args.extend(["--messenger", "--from", "ALICE", "--to-user", "*BOB"]);
    let out = dry_run(dir.path(), &[], &args).unwrap_err();
    let err = refused(&out, 2, "*BOB");
    assert!(err.contains("--to-user"), "{err}");
}

#[test]
fn bad_settings_name_their_option() {
    let dir = Scratch::dir("ms-send-targets", "send");
    let cases: [(&[&str], &str); 3] = [
        (&["--workgroup", "my.group"], "--workgroup"),
        (&["--workgroup", "ABCDEFGHIJKLMNOPQ"], "--workgroup"),
        (&["--netbios-name", "ABCDEFGHIJKLMNOPQ"], "--netbios-name"),
    ];
    for (global, option) in cases {
        let out = dry_run(dir.path(), global, &["TEST", "hi", "--to", "*"]).unwrap_err();
        let err = refused(&out, 2, option);
        assert!(err.contains(option), "{global:?}: {err}");
        assert!(!err.contains("target"), "{global:?}: {err}");
        assert!(!err.contains("ASCII"), "{global:?}: {err}");
        assert!(err.contains("code page 850"), "{global:?}: {err}");
    }
    // Code page 850 names are accepted.
    let v = dry_run(
        dir.path(),
        &["--workgroup", "BÜRO", "--netbios-name", "KÖLN"],
        &["TEST", "hi", "--to", "*"],
    )
    .unwrap();
    assert_eq!(v["destination_name"]["name"], "BÜRO");
    assert_eq!(v["source_name"]["name"], "KÖLN");
}
