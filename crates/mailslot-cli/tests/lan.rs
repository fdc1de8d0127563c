//! The network role on a virtual LAN (lab/REPORT.md recipe): three network namespaces A, B, C
//! (10.99.0.1-3/24) on a bridge in a fourth, each host with its own `MAILSLOT_DIR`, the real
//! port 138 and the real name-service port 137.
//!
//! One test walks through, in order:
//! 1. `mailslot serve` holds the role in B; `mailslot listen` (no role) reads in B.
//! 2. Samba's NDR (a third party) sends a broadcast to the workgroup and a unicast to B.
//! 3. Our CLI in A (no role there: ephemeral port) writes to `*` and to `HOSTB` by NetBIOS
//!    name (a broadcast name query answered by B's responder, then unicast).
//! 4. tshark in B decodes what A sent (broadcast and unicast) as "SMB MailSlot Protocol".
//! 5. `nmblookup` in C finds HOSTB (name query) and lists its names (node status).
//! 6. A reply to the source port: a peer in A answers each datagram to its UDP source; B's
//!    `mailslot send` (not the holder) goes through the holder, so the reply comes back to
//!    port 138 and reaches B's `listen REPLY`.
//! 7. Samba's nmbd in C announces itself; B's `listen BROWSE` gets the HostAnnouncement.
//! 8. `kill -9` of B's serve: a second serve waiting in B takes over and delivers.
//!
//! Needs root, `ip`, tshark, nmblookup, nmbd and `/usr/bin/python3` with Samba's bindings: a
//! missing one is a SKIP, except under CI (`CI` set), where it fails. Every process runs
//! under a hang guard; namespaces and processes are removed by a drop guard.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mailslot");
const PY: &str = "/usr/bin/python3";
const GUARD: Duration = Duration::from_secs(30);

fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: required for the LAN test: {what}"
    );
    eprintln!("SKIP: LAN test: {what} not available");
    false
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn sh(program: &str, args: &[&str]) {
    let out = Command::new("timeout")
        .arg("60")
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/lan_peer.py")
}

/// The namespaces, their runtime directories and every process started in them; all of it is
/// removed on drop (also when a step fails).
struct Lab {
    prefix: String,
    tmp: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn ns(&self, host: char) -> String {
        format!("{}{host}", self.prefix)
    }

    fn dir(&self, host: char) -> PathBuf {
        let d = self.tmp.join(format!("host-{host}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        d
    }

    fn up() -> Lab {
        let prefix = format!("msl{}", std::process::id() % 1_000_000);
        let tmp = std::env::temp_dir().join(format!("{prefix}-lan"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let lab = Lab {
            prefix,
            tmp,
            children: Vec::new(),
        };
        let br = lab.ns('x');
        sh("ip", &["netns", "add", &br]);
        sh("ip", &["-n", &br, "link", "set", "lo", "up"]);
        sh("ip", &["-n", &br, "link", "add", "br0", "type", "bridge"]);
        sh(
            "ip",
            &[
                "-n",
                &br,
                "link",
                "set",
                "br0",
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            ],
        );
        sh("ip", &["-n", &br, "link", "set", "br0", "up"]);
        for (i, h) in ['a', 'b', 'c'].into_iter().enumerate() {
            let ns = lab.ns(h);
            let veth = format!("v{}{h}", lab.prefix);
            let port = format!("p{}{h}", lab.prefix);
            sh("ip", &["netns", "add", &ns]);
            sh("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            sh(
                "ip",
                &[
                    "link", "add", &veth, "netns", &ns, "type", "veth", "peer", "name", &port,
                    "netns", &br,
                ],
            );
            sh("ip", &["-n", &ns, "link", "set", &veth, "name", "eth0"]);
            let addr = format!("10.99.0.{}/24", i + 1);
            sh(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &addr,
                    "brd",
                    "10.99.0.255",
                    "dev",
                    "eth0",
                ],
            );
            sh("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            sh("ip", &["-n", &br, "link", "set", &port, "master", "br0"]);
            sh("ip", &["-n", &br, "link", "set", &port, "up"]);
            sh(
                "ip",
                &[
                    "-n",
                    &ns,
                    "route",
                    "add",
                    "255.255.255.255/32",
                    "dev",
                    "eth0",
                ],
            );
        }
        lab
    }

    /// `program args` inside host `h`'s namespace with `MAILSLOT_DIR` set, stdout and stderr
    /// piped; kept for cleanup. Returns the index of the child.
    fn spawn(&mut self, h: char, program: &str, args: &[&str]) -> usize {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(h), program])
            .args(args)
            .env("MAILSLOT_DIR", self.dir(h))
            .env_remove("MAILSLOT_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    /// Run to completion inside host `h` (hang guard); returns (exit code, stdout, stderr).
    fn run(&self, h: char, program: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("timeout")
            .args(["60", "ip", "netns", "exec", &self.ns(h), program])
            .args(args)
            .env("MAILSLOT_DIR", self.dir(h))
            .env_remove("MAILSLOT_PORT")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn lines(&mut self, i: usize, stderr: bool) -> Receiver<String> {
        let (tx, rx) = channel();
        let pipe: Box<dyn Read + Send> = if stderr {
            Box::new(self.children[i].stderr.take().unwrap())
        } else {
            Box::new(self.children[i].stdout.take().unwrap())
        };
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }

    /// Wait for our child `i` to exit by itself (hang guard).
    fn wait_exit(&mut self, i: usize) {
        let deadline = Instant::now() + GUARD;
        while self.children[i].try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "child {} did not exit",
                self.children[i].id()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self, i: usize) {
        let _ = self.children[i].kill();
        let _ = self.children[i].wait();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for h in ['a', 'b', 'c', 'x'] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(h)])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// The first line from `rx` containing `needle` within the guard; panics with what was seen.
fn wait_line(rx: &Receiver<String>, needle: &str, what: &str) -> String {
    let deadline = Instant::now() + GUARD;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return l,
            Ok(l) => seen.push(l),
            Err(_) => panic!("{what}: never saw {needle:?}; saw {seen:?}"),
        }
    }
}

fn serve_args() -> Vec<&'static str> {
    vec![
        "serve",
        "--netbios-name",
        "HOSTB",
        "--workgroup",
        "MSLAB",
        "-v",
    ]
}

fn cli_a() -> Vec<&'static str> {
    vec!["--netbios-name", "HOSTA", "--workgroup", "MSLAB"]
}

#[test]
fn lan_end_to_end() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !require(root, "root")
        || !require(runs("ip", &["-V"]), "ip (iproute2)")
        || !require(runs("tshark", &["-v"]), "tshark")
        || !require(runs("nmblookup", &["-V"]), "nmblookup")
        || !require(runs("nmbd", &["-V"]), "nmbd")
        || !require(
            runs(PY, &["-c", "import samba.dcerpc.nbt"]),
            "python3-samba",
        )
    {
        return;
    }
    let mut lab = Lab::up();

    // 1. serve holds the role in B; listen reads (without taking part in the role).
    let serve = lab.spawn('b', BIN, &serve_args());
    let serve_err = lab.lines(serve, true);
    let held = wait_line(&serve_err, "holding the network role", "serve in B");
    assert!(
        held.contains("0.0.0.0:138") && held.contains("answering on 0.0.0.0:137"),
        "{held}"
    );
    let listen = lab.spawn(
        'b',
        BIN,
        &[
            "listen",
            "TEST",
            "--json",
            "--no-network",
            "--count",
            "4",
            "--timeout",
            "30000",
        ],
    );
    let listen_out = lab.lines(listen, false);
    let deadline = Instant::now() + GUARD;
    while !lab
        .run('b', BIN, &["status", "--json"])
        .1
        .contains("\"mailslot\":\"TEST\"")
    {
        assert!(Instant::now() < deadline, "listen TEST never opened");
        std::thread::sleep(Duration::from_millis(20));
    }

    // tshark in B (the bridge does not flood unicast to C) before anything is sent.
    let pcap = lab.tmp.join("b.pcap");
    let pcap_s = pcap.to_str().unwrap().to_string();
    let tshark = lab.spawn(
        'b',
        "tshark",
        &[
            "-i",
            "eth0",
            "-f",
            "udp port 138",
            "-a",
            "duration:30",
            // The four datagrams of steps 2 and 3; exiting by itself flushes the file.
            "-c",
            "4",
            "-w",
            &pcap_s,
        ],
    );
    let tshark_err = lab.lines(tshark, true);
    wait_line(&tshark_err, "Capturing on", "tshark in B");

    // 2. A third party (Samba's NDR) sends a broadcast and a unicast.
    let peer = peer_script();
    let peer = peer.to_str().unwrap();
    let (rc, _, err) = lab.run(
        'a',
        PY,
        &[
            peer,
            "send",
            "--to",
            "10.99.0.255",
            "--type",
            "group",
            "--src",
            "SAMBAPEER",
            "--dst",
            "MSLAB",
            "--mailslot",
            "\\MAILSLOT\\TEST",
            "--payload",
            "ndr group",
        ],
    );
    assert_eq!(rc, 0, "{err}");
    let (rc, _, err) = lab.run(
        'a',
        PY,
        &[
            peer,
            "send",
            "--to",
            "10.99.0.2",
            "--type",
            "unique",
            "--src",
            "SAMBAPEER",
            "--dst",
            "HOSTB",
            "--mailslot",
            "\\MAILSLOT\\TEST",
            "--payload",
            "ndr unique",
        ],
    );
    assert_eq!(rc, 0, "{err}");
    let m1 = wait_line(&listen_out, "ndr group", "listen in B");
    assert!(
        m1.contains("\"netbios_name\":\"SAMBAPEER\"") && m1.contains("\"ip\":\"10.99.0.1\""),
        "{m1}"
    );
    wait_line(&listen_out, "ndr unique", "listen in B");

    // 3. Our CLI in A: to `*`, and to HOSTB by NetBIOS name.
    let mut args = cli_a();
    args.extend(["send", "TEST", "cli to star", "--to", "*", "-v"]);
    let (rc, out, err) = lab.run('a', BIN, &args);
    assert_eq!(rc, 0, "{out}{err}");
    let m3 = wait_line(&listen_out, "cli to star", "listen in B");
    assert!(m3.contains("\"netbios_name\":\"HOSTA\""), "{m3}");
    let mut args = cli_a();
    args.extend(["send", "TEST", "cli to hostb", "--to", "HOSTB", "-v"]);
    let (rc, out, err) = lab.run('a', BIN, &args);
    assert_eq!(rc, 0, "{out}{err}");
    let m4 = wait_line(&listen_out, "cli to hostb", "listen in B");
    assert!(m4.contains("\"netbios_name\":\"HOSTA\""), "{m4}");

    // 5. nmblookup (Samba) finds HOSTB through our responder, and its node status.
    let (rc, out, err) = lab.run('c', "nmblookup", &["-B", "10.99.0.255", "HOSTB"]);
    assert!(rc == 0 && out.contains("10.99.0.2 HOSTB<00>"), "{out}{err}");
    let (rc, out, err) = lab.run('c', "nmblookup", &["-A", "10.99.0.2"]);
    assert!(
        rc == 0 && out.contains("HOSTB") && out.contains("MSLAB"),
        "{out}{err}"
    );

    // 4. tshark decodes what A sent.
    lab.wait_exit(tshark);
    let (rc, out, err) = lab.run(
        'b',
        "tshark",
        &[
            "-r",
            &pcap_s,
            "-Y",
            "mailslot",
            "-T",
            "fields",
            "-e",
            "nbdgm.source_name",
            "-e",
            "nbdgm.destination_name",
            "-e",
            "mailslot.name",
            "-e",
            "data.data",
        ],
    );
    assert_eq!(rc, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("HOSTA<00>\tMSLAB<00>\t\\MAILSLOT\\TEST")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("HOSTA<00>\tHOSTB<00>\t\\MAILSLOT\\TEST")),
        "{out}"
    );

    // 6. A reply to the source port reaches B's role (B's send goes through the holder).
    let echo = lab.spawn(
        'a',
        PY,
        &[
            peer,
            "echo",
            "--reply-mailslot",
            "\\MAILSLOT\\REPLY",
            "--src",
            "ECHOPEER",
            "--dst",
            "HOSTB",
            "--count",
            "1",
            "--timeout",
            "25",
        ],
    );
    let echo_out = lab.lines(echo, false);
    wait_line(&echo_out, "listening", "echo peer in A");
    let reply = lab.spawn(
        'b',
        BIN,
        &[
            "listen",
            "REPLY",
            "--json",
            "--no-network",
            "--count",
            "1",
            "--timeout",
            "30000",
        ],
    );
    let reply_out = lab.lines(reply, false);
    let deadline = Instant::now() + GUARD;
    while !lab
        .run('b', BIN, &["status", "--json"])
        .1
        .contains("\"mailslot\":\"REPLY\"")
    {
        assert!(Instant::now() < deadline, "listen REPLY never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (rc, out, err) = lab.run(
        'b',
        BIN,
        &[
            "--netbios-name",
            "HOSTB",
            "--workgroup",
            "MSLAB",
            "send",
            "TEST",
            "ping",
            "--to",
            "10.99.0.1",
            "-v",
        ],
    );
    assert_eq!(rc, 0, "{out}{err}");
    let seen = wait_line(&echo_out, "\"data\": \"ping\"", "echo peer in A");
    assert!(
        seen.contains("\"port\": 138"),
        "B's send left from the role's port: {seen}"
    );
    let r = wait_line(&reply_out, "echo:ping", "listen REPLY in B");
    assert!(
        r.contains("\"netbios_name\":\"ECHOPEER\"") && r.contains("\"ip\":\"10.99.0.1\""),
        "{r}"
    );

    // 7. Samba's nmbd in C announces itself; B receives the HostAnnouncement on BROWSE.
    let browse = lab.spawn(
        'b',
        BIN,
        &[
            "listen",
            "BROWSE",
            "--json",
            "--no-network",
            "--count",
            "1",
            "--timeout",
            "30000",
        ],
    );
    let browse_out = lab.lines(browse, false);
    let deadline = Instant::now() + GUARD;
    while !lab
        .run('b', BIN, &["status", "--json"])
        .1
        .contains("\"mailslot\":\"BROWSE\"")
    {
        assert!(Instant::now() < deadline, "listen BROWSE never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let nd = lab.tmp.join("nmbd-c");
    for sub in [
        "pid", "lock", "state", "cache", "private", "ncalrpc", "sock",
    ] {
        std::fs::create_dir_all(nd.join(sub)).unwrap();
    }
    let d = nd.display();
    let conf = format!(
        "[global]\n workgroup = MSLAB\n netbios name = NMBD-C\n server role = standalone server\n \
         interfaces = eth0\n bind interfaces only = yes\n local master = yes\n preferred master = yes\n \
         os level = 65\n domain master = no\n wins support = no\n dns proxy = no\n \
         nmbd bind explicit broadcast = no\n pid directory = {d}/pid\n lock directory = {d}/lock\n \
         state directory = {d}/state\n cache directory = {d}/cache\n private dir = {d}/private\n \
         ncalrpc dir = {d}/ncalrpc\n nmbd:socket dir = {d}/sock\n log file = {d}/nmbd.log\n \
         logging = file\n max log size = 0\n"
    );
    let conf_path = nd.join("smb.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let conf_s = conf_path.to_str().unwrap().to_string();
    let nmbd = lab.spawn('c', "nmbd", &["-F", "--no-process-group", "-s", &conf_s]);
    let b = wait_line(&browse_out, "\"mailslot\":\"BROWSE\"", "listen BROWSE in B");
    assert!(
        b.contains("\"netbios_name\":\"NMBD-C\"") && b.contains("\"ip\":\"10.99.0.3\""),
        "{b}"
    );
    lab.kill(nmbd);

    // 8. kill -9 of the holder in B: a second serve waiting there takes over.
    let serve2 = lab.spawn('b', BIN, &serve_args());
    let serve2_err = lab.lines(serve2, true);
    wait_line(
        &serve2_err,
        "waiting for the network role",
        "second serve in B",
    );
    let listen2 = lab.spawn(
        'b',
        BIN,
        &[
            "listen",
            "TEST",
            "--json",
            "--no-network",
            "--count",
            "1",
            "--timeout",
            "30000",
        ],
    );
    let listen2_out = lab.lines(listen2, false);
    lab.kill(listen);
    let t0 = Instant::now();
    lab.kill(serve);
    wait_line(&serve2_err, "holding the network role", "second serve in B");
    eprintln!(
        "LAN takeover: the second serve held the role {:?} after kill -9",
        t0.elapsed()
    );
    let mut args = cli_a();
    args.extend(["send", "TEST", "after takeover", "--to", "*"]);
    let (rc, out, err) = lab.run('a', BIN, &args);
    assert_eq!(rc, 0, "{out}{err}");
    wait_line(
        &listen2_out,
        "after takeover",
        "listen in B after the takeover",
    );
}
