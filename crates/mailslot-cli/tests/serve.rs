//! `mailslot serve` as a process: holds the role, delivers network writes to `listen`, passes
//! the role on when stopped by SIGTERM (exit 0), and exits 1 naming the program that holds the
//! port. Loopback only, unprivileged ports, one runtime directory per test; hang guards only.

#[path = "../../mailslot/tests/common/scratch.rs"]
mod scratch;
#[path = "../../mailslot/tests/common/skip.rs"]
mod skip;

use scratch::Scratch;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mailslot_wire::{MailslotDatagram, MessageType, NetbiosName, SizeLimit};

const BIN: &str = env!("CARGO_BIN_EXE_mailslot");
const GUARD: Duration = Duration::from_secs(20);

/// A test's runtime directory (0700), removed when the test ends.
fn dir(tag: &str) -> Scratch {
    Scratch::dir("ms-serve", tag)
}

/// A free port pair (datagram, name service) in 20000..32000 (below the ephemeral range).
fn ports() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    for _ in 0..1000 {
        let i = NEXT.fetch_add(2, Ordering::Relaxed);
        let p = 20_000 + ((std::process::id() as usize * 13 + i * 2 + 6000) % 12_000) as u16;
        let a = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p));
        let b = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p + 1));
        if a.is_ok() && b.is_ok() {
            return p;
        }
    }
    panic!("no free port pair");
}

fn serve(dir: &Path, port: u16) -> Child {
    Command::new(BIN)
        .args([
            "serve",
            "--netbios-name",
            "SRVHOST",
            "--workgroup",
            "TESTGRP",
        ])
        .args([
            "--broadcast",
            "127.255.255.255",
            "--port",
            &port.to_string(),
        ])
        .args(["--name-service-port", &(port + 1).to_string()])
        .env("MAILSLOT_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Read stderr lines until one contains `needle`.
fn wait_stderr(child: &mut Child, needle: &str) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + GUARD;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return l,
            Ok(l) => seen.push(l),
            Err(_) => panic!("serve never said {needle:?}; it said {seen:?}"),
        }
    }
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + GUARD;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "serve did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `mailslot status --json` of runtime directory `d` (for role `port`, if given), polled
/// until `done` holds; returns that output.
fn wait_status(d: &Path, port: Option<u16>, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + GUARD;
    loop {
        let mut cmd = Command::new(BIN);
        cmd.args(["status", "--json"]).env("MAILSLOT_DIR", d);
        if let Some(port) = port {
            cmd.args(["--port", &port.to_string()]);
        }
        let out = String::from_utf8_lossy(&cmd.output().unwrap().stdout).to_string();
        if done(&out) {
            return out;
        }
        assert!(Instant::now() < deadline, "status never got there: {out}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends a group mailslot write (`\MAILSLOT\{mailslot}`) to 127.0.0.1:`port`.
fn send_write(port: u16, source: NetbiosName, group: &str, mailslot: &str, body: &[u8]) {
    let path = format!("\\MAILSLOT\\{mailslot}");
    let dg = MailslotDatagram::new(
        MessageType::DirectGroup,
        source,
        NetbiosName::new(group, source.suffix()).unwrap(),
        &path,
        body,
    );
    let bytes = dg.to_vec(SizeLimit::Windows).unwrap();
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&bytes, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
        .unwrap();
}

fn sigterm(child: &Child) {
    // Our own child, by its pid.
    let rc = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
}

#[test]
fn serve_delivers_to_listen_and_releases_on_sigterm() {
    let d = dir("deliver");
    let port = ports();
    let mut srv = serve(&d, port);
    let line = wait_stderr(&mut srv, "holding the network role");
    assert!(line.contains(&format!("0.0.0.0:{port}")), "{line}");
    let mut listen = Command::new(BIN)
        .args([
            "listen",
            "TEST",
            "--count",
            "1",
            "--json",
            "--timeout",
            "15000",
            "--no-network",
        ])
        .env("MAILSLOT_DIR", &d)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the server exists (status lists it), then send from "another host".
    wait_status(&d, None, |st| st.contains("\"mailslot\":\"TEST\""));
    let mut dg = MailslotDatagram::new(
        MessageType::DirectGroup,
        NetbiosName::new("PEER", 0).unwrap(),
        NetbiosName::new("TESTGRP", 0).unwrap(),
        "\\MAILSLOT\\TEST",
        b"hello from the LAN",
    );
    dg.dgm_id = 77;
    let bytes = dg.to_vec(SizeLimit::Windows).unwrap();
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_broadcast(true).unwrap();
    s.send_to(
        &bytes,
        SocketAddrV4::new(Ipv4Addr::new(127, 255, 255, 255), port),
    )
    .unwrap();
    let mut out = String::new();
    listen
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(wait_exit(&mut listen), 0);
    assert!(out.contains("\"text\":\"hello from the LAN\""), "{out}");
    assert!(
        out.contains("\"kind\":\"network\"") && out.contains("\"netbios_name\":\"PEER\""),
        "{out}"
    );
    // The role's status names serve as holder.
    let st = Command::new(BIN)
        .args(["status", "--json", "--port", &port.to_string()])
        .env("MAILSLOT_DIR", &d)
        .output()
        .unwrap();
    let st = String::from_utf8_lossy(&st.stdout).to_string();
    assert!(st.contains(&format!("\"holder_pid\":{}", srv.id())), "{st}");
    sigterm(&srv);
    assert_eq!(wait_exit(&mut srv), 0);
    // Released at once: the port is free again.
    UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).unwrap();
}

#[test]
fn serve_exits_1_naming_the_program_that_holds_the_port() {
    let d = dir("inuse");
    let port = ports();
    let blocker = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).unwrap();
    let mut srv = serve(&d, port);
    let mut err = String::new();
    srv.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(wait_exit(&mut srv), 1, "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(
        err.contains("--share-port") && err.contains("--port"),
        "{err}"
    );
    drop(blocker);
}

/// What comes from the network reaches the terminal escaped: a NetBIOS source name or a
/// Messenger popup carrying an escape sequence (which could retitle or clear the terminal) is
/// printed visibly by a plain `listen`.
#[test]
fn listen_prints_hostile_network_text_escaped() {
    let d = dir("escape");
    let port = ports();
    let mut listen = Command::new(BIN)
        .args([
            "listen",
            "MESSNGR",
            "--messenger",
            "--count",
            "2",
            "--timeout",
            "15000",
        ])
        .args([
            "--port",
            &port.to_string(),
            "--broadcast",
            "127.255.255.255",
        ])
        .args(["--no-name-service", "--workgroup", "ESCGRP"])
        .env("MAILSLOT_DIR", &d)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it holds the role (its state file says so).
    let deadline = Instant::now() + GUARD;
    while !std::fs::read_to_string(d.join(format!("network-{port}.state")))
        .unwrap_or_default()
        .contains("holding")
    {
        assert!(Instant::now() < deadline, "listen never held the role");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut hostile = *b"\x1b]0;pwn\x07        ";
    hostile[15] = 0x03;
    let send =
        |source: NetbiosName, body: &[u8]| send_write(port, source, "ESCGRP", "MESSNGR", body);
    send(NetbiosName::from_bytes(hostile), b"EVE\0BOB\0plain\0");
    send(
        NetbiosName::new("PEER", 0x03).unwrap(),
        b"\x1b[2JEVE\0BOB\x07\0clear\x1b[2J screen\0",
    );
    let mut out = String::new();
    listen
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(wait_exit(&mut listen), 0, "{out}");
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert!(
        out.contains("\\u{1b}]0;pwn\\u{7}") && out.contains("\\u{1b}[2J"),
        "{out}"
    );
}

/// One name whose append lock a stopped writer holds delays only its own datagrams (each
/// dropped after a millisecond and counted), never another name's: before, each of them held
/// the role for 2 s, so 30 of them stalled every other name for a minute.
#[test]
fn a_stuck_name_delays_only_itself() {
    let python = "/usr/bin/python3";
    if !std::path::Path::new(python).exists() {
        skip::skip(&format!("no {python}"));
        return;
    }
    let d = dir("stuck");
    let port = ports();
    let mut srv = serve(&d, port);
    wait_stderr(&mut srv, "holding the network role");
    let listen = |name: &str, extra: &[&str]| {
        Command::new(BIN)
            .args(["listen", name, "--no-network"])
            .args(extra)
            .env("MAILSLOT_DIR", &d)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut stuck = listen("STUCK", &[]);
    let mut healthy = listen(
        "HEALTHY",
        &["--count", "20", "--json", "--timeout", "15000"],
    );
    wait_status(&d, None, |st| {
        st.contains("\"STUCK\"") && st.contains("\"HEALTHY\"")
    });
    // A writer stopped in the middle of an append: it holds STUCK's append lock. The lock is
    // the word at offset 88 of the name's file holding the holder's token, and the holder keeps
    // an OFD lock on byte 2^32 + token for as long as it lives (ring/lock.rs).
    let holder = "import fcntl, os, signal, struct, sys\n\
        fd = os.open(sys.argv[1], os.O_RDWR)\n\
        token = 0x1234\n\
        flock = struct.pack('hhqqi4x', fcntl.F_WRLCK, os.SEEK_SET, (1 << 32) + token, 1, 0)\n\
        fcntl.fcntl(fd, 37, flock)  # F_OFD_SETLK\n\
        os.pwrite(fd, struct.pack('<I', token), 88)\n\
        print('locked', flush=True)\n\
        os.kill(os.getpid(), signal.SIGSTOP)\n";
    let mut locker = Command::new(python)
        .args(["-c", holder])
        .arg(d.join("stuck.slot"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(locker.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let send = |name: &str, text: &str| {
        let peer = NetbiosName::new("PEER", 0).unwrap();
        send_write(port, peer, "TESTGRP", name, text.as_bytes());
    };
    for i in 0..30 {
        send("STUCK", &format!("stuck {i}"));
    }
    for i in 0..20 {
        send("HEALTHY", &format!("healthy {i}"));
    }
    let mut out = String::new();
    healthy
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let code = wait_exit(&mut healthy);
    let _ = locker.kill();
    let _ = locker.wait();
    let _ = stuck.kill();
    let _ = stuck.wait();
    assert_eq!(code, 0, "HEALTHY got {} of 20", out.lines().count());
    assert_eq!(out.lines().count(), 20);
    // The stuck name's datagrams were dropped and counted, not lost silently.
    wait_status(&d, Some(port), |st| st.contains("\"dropped_failed\":30"));
    sigterm(&srv);
    wait_exit(&mut srv);
}

/// A stopped role holder is reported as such: `status` says `stalled` (and why) instead of
/// `holding` while it is stopped, and `holding` again once it continues.
#[test]
fn status_reports_a_stopped_holder() {
    let d = dir("stalled");
    let port = ports();
    let mut srv = serve(&d, port);
    wait_stderr(&mut srv, "holding the network role");
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &srv.id().to_string()])
            .status()
            .unwrap()
            .success());
    };
    let holding = |st: &str| st.contains("\"state\":\"holding\"");
    assert!(holding(&wait_status(&d, Some(port), |_| true)));
    signal("-STOP");
    let st = wait_status(&d, Some(port), |st| st.contains("\"state\":\"stalled\""));
    assert!(st.contains("is stopped"), "{st}");
    signal("-CONT");
    wait_status(&d, Some(port), holding);
    sigterm(&srv);
    assert_eq!(wait_exit(&mut srv), 0);
}

/// The role's counters from a `status --json` output (its last line).
fn network_counters(status: &str) -> serde_json::Value {
    let last = status.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_default();
    v["network"].clone()
}

/// What a stopped holder costs is counted, not lost silently: while `serve` is stopped a flood
/// overflows its socket's receive buffer; once it continues, the datagrams the mailslot got
/// plus every drop counter (the kernel's among them) add up to exactly what was sent.
#[test]
fn a_stopped_holder_counts_what_the_kernel_dropped() {
    let d = dir("overflow");
    let port = ports();
    let mut srv = serve(&d, port);
    wait_stderr(&mut srv, "holding the network role");
    let mut listen = Command::new(BIN)
        .args(["listen", "FLOOD", "--no-network", "--json"])
        .env("MAILSLOT_DIR", &d)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let got = std::sync::Arc::new(AtomicUsize::new(0));
    let reader = {
        let got = got.clone();
        let stdout = listen.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("\"kind\":\"network\"") {
                    got.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    wait_status(&d, Some(port), |st| {
        st.contains("\"mailslot\":\"FLOOD\"") && st.contains("\"state\":\"holding\"")
    });
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &srv.id().to_string()])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let st = wait_status(&d, Some(port), |st| st.contains("\"state\":\"stalled\""));
    let reason = network_counters(&st)["reason"].to_string();
    assert!(
        reason.contains("is stopped") && reason.contains("drops what overflows"),
        "{st}"
    );
    // Far more than the holder's receive buffer holds (it asks for 1 MiB; the kernel doubles
    // that and caps it at net.core.rmem_max): ~1 KB each, every one distinct.
    const N: u64 = 6000;
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dest = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let filler = "x".repeat(1000);
    for i in 0..N {
        let body = format!("{i} {filler}");
        let mut dg = MailslotDatagram::new(
            MessageType::DirectGroup,
            NetbiosName::new("PEER", 0).unwrap(),
            NetbiosName::new("TESTGRP", 0).unwrap(),
            "\\MAILSLOT\\FLOOD",
            body.as_bytes(),
        );
        dg.dgm_id = i as u16;
        sender
            .send_to(&dg.to_vec(SizeLimit::Protocol).unwrap(), dest)
            .unwrap();
    }
    // Still stopped, and saying what the kernel dropped so far (read live from /proc: the
    // counters catch up when the holder continues).
    let st = wait_status(&d, Some(port), |_| true);
    let stalled = network_counters(&st);
    assert_eq!(stalled["state"], "stalled", "{st}");
    let reason = stalled["reason"].as_str().unwrap_or_default().to_string();
    let dropped_while_stopped: u64 = reason
        .split_once(" dropped since its socket was opened")
        .and_then(|(before, _)| before.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no drop count in {reason:?}"));
    assert!(dropped_while_stopped > 0, "{reason}");
    assert_eq!(stalled["dropped_kernel"], 0, "{st}");
    signal("-CONT");
    // Everything sent is accounted for: read (and then delivered or dropped for a reason) or
    // dropped by the kernel.
    let accounted = |c: &serde_json::Value| {
        c["received"].as_u64().unwrap_or(0) + c["dropped_kernel"].as_u64().unwrap_or(0)
    };
    let st = wait_status(&d, Some(port), |st| {
        let c = network_counters(st);
        c["state"] == "holding" && accounted(&c) >= N
    });
    let c = network_counters(&st);
    eprintln!("stopped: {reason}");
    eprintln!("sent {N}; status after SIGCONT: {c}");
    assert_eq!(accounted(&c), N, "{c}");
    let dropped: u64 = c
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("dropped_"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    let delivered = c["delivered"].as_u64().unwrap();
    assert_eq!(delivered + dropped, N, "{c}");
    assert_eq!(c["dropped_kernel"], dropped_while_stopped, "{c}");
    // And the mailslot got every datagram the role delivered.
    let deadline = Instant::now() + GUARD;
    while (got.load(Ordering::Relaxed) as u64) < delivered {
        assert!(
            Instant::now() < deadline,
            "listen printed {} of {delivered}",
            got.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "listen printed {}, the role counted {dropped} dropped",
        got.load(Ordering::Relaxed)
    );
    assert_eq!(got.load(Ordering::Relaxed) as u64 + dropped, N);
    sigterm(&srv);
    assert_eq!(wait_exit(&mut srv), 0);
    let _ = listen.kill();
    let _ = listen.wait();
    reader.join().unwrap();
}
