//! The network role on a virtual LAN of network namespaces, with real third-party peers.
//!
//! Each test builds its own LAN: hosts A, B, C (10.99.0.1-3/24, broadcast 10.99.0.255, a
//! route for 255.255.255.255) on a bridge, each in its own network namespace with its own
//! `MAILSLOT_DIR`, the real port 138 and the real name-service port 137. The namespaces are
//! anonymous (each held by a `sleep` started with `unshare -n`, entered with `nsenter`), so two
//! tests or two test binaries never collide, and nothing is left behind: a drop guard kills
//! every process in them, and every process we start dies with the test (PR_SET_PDEATHSIG).
//!
//! | test | covers |
//! |---|---|
//! | `three_hosts` | `*` from A reaches a two-instance shared mailslot on B (both instances) and an instance on C, once each; unicast to B by IP and by NetBIOS name; A receives its own broadcast once (`deliver_own`); Samba NDR sender; `nmblookup`; tshark decodes what we send on 138 and, with `-d udp.port==13800,nbdgm`, on port 13800; a reply to the source port reaches B through its holder; `serve` → `serve` takeover after `kill -9` |
//! | `third_party_senders` | python3-samba (from A) and scapy (from C) datagrams, padded (Windows) and unpadded (Samba), group, unique, `<1d>`, `*`, a lying header: data, source IP and NetBIOS name in `listen --json` |
//! | `nmbd_announcements` | Samba's nmbd in C: its `\MAILSLOT\BROWSE` HostAnnouncement and `\MAILSLOT\LANMAN` announcement (`lm announce = yes`) reach `listen BROWSE` / `listen LANMAN` in B |
//! | `nmbd_backup_list` | once nmbd is local master browser (~25 s), our GetBackupListRequest (`send BROWSE --to MSLAB --group --suffix 1d --stdin`, source port 138 through the holder) is answered: the GetBackupListResponse (0x0a, our token) reaches `listen BROWSE` |
//! | `hostile_and_flood` | every hostile case of `support/lan_hostile.py` built with scapy, sent A → B: dropped and counted exactly, edge cases delivered intact; over-limit messages refused by our sender; then 100,000 datagrams A → B: the holder keeps running with bounded VmRSS, counters rise, listeners still receive |
//! | `takeover_while_sending` | two `listen --shared` in B (both candidates for the role); the holder is killed with SIGKILL while A sends every millisecond; the survivor holds the role and receives again; the gap is printed |
//! | `unprivileged_lan` | as root: the six scenarios above again as `nobody` inside `unshare -rn` (no privilege outside the namespace: port 138, the bridge, nmbd, tshark, the role) |
//! | `nmbd_alias_of_our_name_is_refused` | we hold HOSTB; `nmblookup HOSTB#20` gets no answer; nmbd started with `netbios aliases = HOSTB` gets our negative registration responses (its log says it failed to register HOSTB<00>/<03>) and `nmblookup HOSTB` keeps finding only us |
//! | `our_name_held_by_nmbd_is_a_conflict` | nmbd holds HOSTB, then we start as HOSTB: the conflict is on `serve`'s stderr once, in `status` (JSON and text) with nmbd's address, lookups find only nmbd; broadcasts still reach us |
//! | `a_clean_stop_releases_our_name` | tshark in C decodes our registration and, after SIGTERM to `serve`, our release of HOSTB<00>, HOSTB<03> and MSLAB<00>; nmbd then registers HOSTB |
//! | `single_host_loopback` | no namespaces: a holder on an unprivileged port, `send --to *` over 127.255.255.255 from its own directory and from a second directory (a second "host" without a holder), `status`; a second holder on the same port is refused with the owner named |
//!
//! Not root: every LAN test re-runs itself inside `unshare -rn` (a user and network namespace)
//! and skips with a message if user namespaces are not available. Tools (ip, nsenter, tshark,
//! nmblookup, nmbd, python3-samba, scapy in `<repo>/.venv`) missing: SKIP, except under CI
//! (`CI` set), where it fails. No wall-clock assertion anywhere: every wait has a generous
//! deadline only to turn a hang into a failure.

#[path = "../../mailslot/tests/common/skip.rs"]
mod skip;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const PY: &str = "/usr/bin/python3";
/// Deadline of every single wait (a hang guard, not a performance bound).
const GUARD: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Environment

fn bin() -> String {
    std::env::var("MAILSLOT_LAN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_mailslot").into())
}

fn support(file: &str) -> String {
    let dir = std::env::var_os("MAILSLOT_LAN_SUPPORT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support"));
    dir.join(file).to_string_lossy().into_owned()
}

/// Set in a re-run of this binary inside `unshare -rn`.
fn inner() -> bool {
    std::env::var_os("MAILSLOT_LAN_INNER").is_some()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn base_tools() -> bool {
    skip::require(runs("ip", &["-V"]), "ip (iproute2)")
        && skip::require(runs("nsenter", &["--version"]), "nsenter (util-linux)")
        && skip::require(runs("setpriv", &["--version"]), "setpriv (util-linux)")
        && skip::require(runs("unshare", &["-n", "true"]), "unshare -n")
}

fn samba_python() -> bool {
    skip::require(
        runs(PY, &["-c", "import samba.dcerpc.nbt"]),
        "python3-samba (/usr/bin/python3)",
    )
}

/// scapy's interpreter: `MAILSLOT_LAN_SCAPY` or `<repo>/.venv/bin/python` (scripts/test.sh).
fn scapy_python() -> Option<String> {
    let py = std::env::var("MAILSLOT_LAN_SCAPY").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_string()
    });
    runs(
        &py,
        &["-c", "import scapy.layers.netbios, scapy.layers.smb"],
    )
    .then_some(py)
}

/// CLOCK_MONOTONIC in microseconds: the clock Python's `time.monotonic()` reads too.
fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) takes plain integers; the pid is a child of ours (or in our namespaces).
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

fn vmrss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs the LAN test `name` here (root, or already inside a user namespace), or, without
/// root, runs it again inside `unshare -rn` and reports that run. Returns whether to go on.
fn lan_gate(name: &str) -> bool {
    if inner() || is_root() {
        return base_tools();
    }
    if !skip::require(
        runs("unshare", &["-rn", "true"]),
        "root or unprivileged user namespaces (`unshare -rn`)",
    ) {
        return false;
    }
    eprintln!("{name}: not root: running it inside `unshare -rn`");
    reexec(&[name], false);
    false
}

/// Runs `tests` of this binary inside `unshare -rn` (a user and network namespace of its own:
/// uid 0 there, no privilege outside), as `nobody` if `as_nobody` (we are root). The binary,
/// `mailslot` and the support scripts are copied to a directory `nobody` can read.
fn reexec(tests: &[&str], as_nobody: bool) {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let tmp = std::env::temp_dir().join(format!(
        "msl-unpriv-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("work")).unwrap();
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
    };
    mode(&tmp, 0o755);
    mode(&tmp.join("work"), 0o700);
    let exe = std::env::current_exe().unwrap();
    let (test_exe, mailslot, support_dir) = if as_nobody {
        std::os::unix::fs::chown(tmp.join("work"), Some(65534), Some(65534)).unwrap();
        let support_dir = tmp.join("support");
        std::fs::create_dir_all(&support_dir).unwrap();
        mode(&support_dir, 0o755);
        for f in [
            "lan_peer.py",
            "lan_send.py",
            "lan_hostile.py",
            "samba_dgram.py",
            "browse_payload.py",
        ] {
            std::fs::copy(support(f), support_dir.join(f)).unwrap();
            mode(&support_dir.join(f), 0o644);
        }
        std::fs::copy(&exe, tmp.join("lan-test")).unwrap();
        std::fs::copy(bin(), tmp.join("mailslot")).unwrap();
        mode(&tmp.join("lan-test"), 0o755);
        mode(&tmp.join("mailslot"), 0o755);
        (tmp.join("lan-test"), tmp.join("mailslot"), support_dir)
    } else {
        let s = PathBuf::from(support("lan_send.py"));
        (exe, PathBuf::from(bin()), s.parent().unwrap().to_path_buf())
    };
    // The hang guard dies with us too (then the inner run dies with it: pdeathsig).
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--pdeathsig",
        "KILL",
        "--",
        "timeout",
        "-s",
        "KILL",
        "300",
        "setpriv",
    ]);
    if as_nobody {
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    }
    cmd.args(["--pdeathsig", "KILL", "--", "unshare", "-rn"])
        .arg(&test_exe)
        .args(tests)
        .args(["--exact", "--nocapture", "--test-threads=3"])
        .env("MAILSLOT_LAN_INNER", "1")
        .env("MAILSLOT_LAN_BIN", &mailslot)
        .env("MAILSLOT_LAN_SUPPORT", &support_dir)
        .env("TMPDIR", tmp.join("work"))
        .env("HOME", tmp.join("work"))
        .env_remove("MAILSLOT_LAN_SCAPY")
        // The inner run's skips are reported below, as this test's.
        .env_remove(skip::SKIPS_ENV)
        .stdin(Stdio::null());
    if let Some(py) = scapy_python() {
        // Usable by the user we run as? A venv whose interpreter lives in a private home
        // (pyenv in /root) is not, for nobody: then Debian's python3 with a copy of scapy
        // (pure Python) on PYTHONPATH.
        let usable = |py: &str, pythonpath: Option<&Path>| {
            let mut probe = Command::new("setpriv");
            if as_nobody {
                probe.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
            }
            if let Some(p) = pythonpath {
                probe.env("PYTHONPATH", p);
            }
            // Inside a user namespace as the inner run is: uid 0 there is not root outside.
            probe
                .args([
                    "unshare",
                    "-rn",
                    py,
                    "-c",
                    "import scapy.layers.netbios, scapy.layers.smb",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if usable(&py, None) {
            cmd.env("MAILSLOT_LAN_SCAPY", py);
        } else {
            let pylib = tmp.join("pylib");
            let dir = Command::new(&py)
                .args([
                    "-c",
                    "import os, scapy; print(os.path.dirname(scapy.__file__))",
                ])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            std::fs::create_dir_all(&pylib).unwrap();
            mode(&pylib, 0o755);
            if !dir.is_empty()
                && runs("cp", &["-r", &dir, pylib.to_str().unwrap()])
                && usable(PY, Some(&pylib))
            {
                cmd.env("MAILSLOT_LAN_SCAPY", PY).env("PYTHONPATH", &pylib);
            }
        }
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- re-run of {tests:?} in unshare -rn ---\n{stdout}\n{stderr}\n--- end ---");
    for line in stdout.lines().chain(stderr.lines()) {
        if let Some(why) = line.strip_prefix("SKIP: ") {
            skip::note_skip(&format!("in the re-run inside `unshare -rn`: {why}"));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        out.status.success()
            && stdout.contains(&format!("test result: ok. {} passed", tests.len())),
        "the re-run of {tests:?} inside unshare -rn failed: {}",
        out.status
    );
}

// ---------------------------------------------------------------------------------------------
// Output of the processes we start

/// The lines a pipe has produced so far, and whether it is closed.
#[derive(Default)]
struct Stream {
    state: Mutex<(Vec<String>, bool)>,
    cv: Condvar,
}

impl Stream {
    fn read(pipe: impl Read + Send + 'static) -> Arc<Stream> {
        let s = Arc::new(Stream::default());
        let s2 = s.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                s2.state.lock().unwrap().0.push(line);
                s2.cv.notify_all();
            }
            s2.state.lock().unwrap().1 = true;
            s2.cv.notify_all();
        });
        s
    }

    fn tail(&self, n: usize) -> Vec<String> {
        let g = self.state.lock().unwrap();
        g.0[g.0.len().saturating_sub(n)..].to_vec()
    }
}

/// A reading position in a [`Stream`].
struct Watch {
    stream: Arc<Stream>,
    pos: usize,
    what: String,
}

impl Watch {
    /// The next line for which `f` holds (it and the lines before it are consumed), or `None`
    /// after `wait`.
    fn next_within(&mut self, wait: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + wait;
        let mut g = self.stream.state.lock().unwrap();
        loop {
            while self.pos < g.0.len() {
                self.pos += 1;
                if f(&g.0[self.pos - 1]) {
                    return Some(g.0[self.pos - 1].clone());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if g.1 || left.is_zero() {
                return None;
            }
            g = self.stream.cv.wait_timeout(g, left).unwrap().0;
        }
    }

    fn next_where(&mut self, desc: &str, f: impl Fn(&str) -> bool) -> String {
        match self.next_within(GUARD, f) {
            Some(l) => l,
            None => panic!(
                "{}: never saw {desc}; last lines: {:#?}",
                self.what,
                self.stream.tail(30)
            ),
        }
    }

    /// The next line containing `needle`.
    fn next(&mut self, needle: &str) -> String {
        self.next_where(&format!("{needle:?}"), |l| l.contains(needle))
    }

    /// The JSON messages of `listen --json` until `done` holds for those read so far.
    fn messages_while(&mut self, desc: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        while !done(&out) {
            let texts = texts(&out);
            let l = self.next_where(&format!("{desc} (so far: {texts:?})"), |_| true);
            if let Ok(v) = serde_json::from_str::<Value>(&l) {
                out.push(v);
            }
        }
        out
    }

    /// The JSON messages up to and including the one whose text is `last`.
    fn messages_until(&mut self, last: &str) -> Vec<Value> {
        self.messages_while(&format!("{last:?}"), |m| {
            m.last().is_some_and(|v| v["text"] == last)
        })
    }

    /// Messages until every text of `want` has come (in any order: datagrams from different
    /// processes may be reordered on a loaded machine), then asserts that exactly `want`
    /// came: nothing twice, nothing else.
    fn expect_texts(&mut self, want: &[&str]) -> Vec<Value> {
        let covered = |m: &[Value]| {
            let got = texts(m);
            want.iter().all(|w| {
                got.iter().filter(|g| g == w).count() >= want.iter().filter(|x| *x == w).count()
            })
        };
        let msgs = self.messages_while(&format!("all of {want:?}"), covered);
        let mut got = texts(&msgs);
        let mut w: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        got.sort();
        w.sort();
        assert_eq!(got, w, "{}", self.what);
        msgs
    }
}

fn texts(msgs: &[Value]) -> Vec<String> {
    msgs.iter()
        .map(|m| m["text"].as_str().unwrap_or("<binary>").to_string())
        .collect()
}

fn find<'a>(msgs: &'a [Value], text: &str) -> &'a Value {
    msgs.iter()
        .find(|m| m["text"] == text)
        .unwrap_or_else(|| panic!("no message {text:?} in {msgs:#?}"))
}

/// Asserts the network source of a `listen --json` message.
fn assert_source(m: &Value, ip: &str, name: &str, port: Option<u64>) {
    let s = &m["source"];
    assert!(
        s["kind"] == "network" && s["ip"] == ip && s["netbios_name"] == name,
        "wanted {name} at {ip}: {m}"
    );
    if let Some(port) = port {
        assert_eq!(s["port"], port, "{m}");
    }
}

struct Proc {
    label: String,
    child: Child,
    out: Arc<Stream>,
    err: Arc<Stream>,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn out(&self) -> Watch {
        Watch {
            stream: self.out.clone(),
            pos: 0,
            what: format!("{} (stdout)", self.label),
        }
    }

    fn err(&self) -> Watch {
        Watch {
            stream: self.err.clone(),
            pos: 0,
            what: format!("{} (stderr)", self.label),
        }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// What a command that ran to completion left.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn from(out: Output) -> Ran {
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The lab

/// Removes the temporary directories of test processes that were killed (`kill -9` leaves
/// them; everything else of ours dies with the test): `msl-lan-NAME-PID-N`, `msl-unpriv-PID-N`.
fn remove_stale_dirs() {
    for e in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("msl-lan-") && !name.starts_with("msl-unpriv-") {
            continue;
        }
        let mut parts = name.rsplit('-');
        let (_, Some(pid)) = (parts.next(), parts.next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Host `h`'s address: a = .1, b = .2, c = .3.
fn ip_of(h: char) -> String {
    format!("10.99.0.{}", h as u8 - b'a' + 1)
}

/// A virtual LAN (or, without hosts, this machine), its runtime directories and every process
/// started in it; all of it is removed on drop, also when a step fails (then the last lines of
/// every process are printed first).
struct Lab {
    tmp: PathBuf,
    /// Namespace holder per host ('x': the bridge); empty: no namespaces.
    ns: Vec<(char, Child)>,
    procs: Vec<Proc>,
}

impl Lab {
    fn tmp(name: &str) -> PathBuf {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        remove_stale_dirs();
        let tmp = std::env::temp_dir().join(format!(
            "msl-lan-{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        tmp
    }

    /// This machine, no namespaces: "hosts" differ only by their runtime directory.
    fn local(name: &str) -> Lab {
        Lab {
            tmp: Lab::tmp(name),
            ns: Vec::new(),
            procs: Vec::new(),
        }
    }

    /// Hosts `hosts` (of a, b, c) on a bridge.
    fn up(name: &str, hosts: &[char]) -> Lab {
        let mut lab = Lab::local(name);
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        for &h in std::iter::once(&'x').chain(hosts) {
            // A `sleep` in a new network namespace holds it; it dies with this thread.
            let child = Command::new("setpriv")
                .args(["--pdeathsig", "KILL", "--", "unshare", "-n", "sleep", "900"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            lab.ns.push((h, child));
        }
        for (h, child) in &lab.ns {
            let link = format!("/proc/{}/ns/net", child.id());
            let deadline = Instant::now() + GUARD;
            while std::fs::read_link(&link).map_or(true, |l| l == own) {
                assert!(Instant::now() < deadline, "namespace of {h} never appeared");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let mut bridge = String::from(
            "set -e; ip link set lo up; ip link add br0 type bridge; \
             ip link set br0 type bridge stp_state 0 forward_delay 0; ip link set br0 up; ",
        );
        for &h in hosts {
            let pid = lab.pid(h);
            bridge.push_str(&format!(
                "ip link add p{h} type veth peer name eth0 netns {pid}; \
                 ip link set p{h} master br0; ip link set p{h} up; "
            ));
        }
        lab.sh('x', &bridge);
        for &h in hosts {
            lab.sh(
                h,
                &format!(
                    "set -e; ip link set lo up; ip addr add {}/24 brd 10.99.0.255 dev eth0; \
                     ip link set eth0 up; ip route add 255.255.255.255/32 dev eth0",
                    ip_of(h)
                ),
            );
        }
        lab
    }

    fn pid(&self, h: char) -> u32 {
        self.ns
            .iter()
            .find(|(n, _)| *n == h)
            .map(|(_, c)| c.id())
            .unwrap_or_else(|| panic!("no host {h}"))
    }

    fn sh(&self, h: char, script: &str) {
        let r = self.run(h, "sh", &["-c", script]);
        assert_eq!(r.code, 0, "{script}: {}{}", r.stdout, r.stderr);
    }

    fn dir(&self, h: char) -> PathBuf {
        let d = self.tmp.join(format!("host-{h}"));
        if !d.exists() {
            std::fs::create_dir_all(&d).unwrap();
            std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .unwrap();
        }
        d
    }

    /// `program` in host `h` (its namespace, `MAILSLOT_DIR`), `prefix` in front of it.
    fn command(&self, h: char, prefix: &[&str], program: &str, args: &[&str]) -> Command {
        let mut all: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
        if !self.ns.is_empty() {
            all.push("nsenter".into());
            all.push("-t".into());
            all.push(self.pid(h).to_string());
            all.push("-n".into());
            all.push("--".into());
        }
        all.push(program.into());
        all.extend(args.iter().map(|s| s.to_string()));
        let mut cmd = Command::new(&all[0]);
        cmd.args(&all[1..])
            .env("MAILSLOT_DIR", self.dir(h))
            .env_remove("MAILSLOT_PORT")
            .env_remove("MAILSLOT_NETBIOS_NAME")
            .env_remove("MAILSLOT_WORKGROUP")
            .env_remove("MAILSLOT_NO_NETWORK");
        cmd
    }

    /// Starts `program` in host `h` with its output read into lines; returns its index.
    fn spawn(&mut self, h: char, label: &str, program: &str, args: &[&str]) -> usize {
        let mut child = self
            .command(h, &["setpriv", "--pdeathsig", "KILL", "--"], program, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Stream::read(child.stdout.take().unwrap());
        let err = Stream::read(child.stderr.take().unwrap());
        self.procs.push(Proc {
            label: format!("{label} [{h}]"),
            child,
            out,
            err,
        });
        self.procs.len() - 1
    }

    /// Runs `program` in host `h` to completion (hang guard: `timeout`).
    fn run(&self, h: char, program: &str, args: &[&str]) -> Ran {
        self.run_input(h, program, args, b"")
    }

    fn run_input(&self, h: char, program: &str, args: &[&str], input: &[u8]) -> Ran {
        let mut child = self
            .command(h, &["timeout", "-s", "KILL", "120"], program, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
        drop(stdin);
        Ran::from(child.wait_with_output().unwrap())
    }

    /// Runs and asserts exit 0.
    fn run_ok(&self, h: char, program: &str, args: &[&str]) -> Ran {
        let r = self.run(h, program, args);
        assert_eq!(
            r.code, 0,
            "{program} {args:?} in {h}: {}{}",
            r.stdout, r.stderr
        );
        r
    }

    /// Runs until `ok` holds, at most 5 times: for what depends on a name query answered in
    /// time (B-node timers: 3 tries of 250 ms for our CLI, about 3 s for nmblookup), which a
    /// loaded machine can miss. Nothing was sent when the lookup failed, so a retry duplicates
    /// nothing. Retries are printed.
    fn run_until(&self, h: char, program: &str, args: &[&str], ok: impl Fn(&Ran) -> bool) -> Ran {
        for attempt in 1.. {
            let r = self.run(h, program, args);
            if ok(&r) {
                return r;
            }
            assert!(
                attempt < 5,
                "{program} {args:?} in {h}, {attempt} tries: {}{}",
                r.stdout,
                r.stderr
            );
            eprintln!(
                "retrying {program} {args:?} in {h} (try {attempt}: {})",
                r.stderr.trim()
            );
        }
        unreachable!()
    }

    /// `mailslot status --json` in host `h` (`extra`: global options such as `--port`):
    /// the mailslot objects and the network object.
    fn status(&self, h: char, extra: &[&str]) -> (Vec<Value>, Value) {
        let mut args = extra.to_vec();
        args.extend(["status", "--json"]);
        let r = self.run_ok(h, &bin(), &args);
        let mut slots = Vec::new();
        let mut network = Value::Null;
        for l in r.stdout.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            if v.get("network").is_some() {
                network = v["network"].clone();
            } else {
                slots.push(v);
            }
        }
        (slots, network)
    }

    /// Polls `status` until `f(mailslots, network)` holds.
    fn wait_status(
        &self,
        h: char,
        extra: &[&str],
        what: &str,
        f: impl Fn(&[Value], &Value) -> bool,
    ) {
        let deadline = Instant::now() + GUARD;
        loop {
            let (slots, net) = self.status(h, extra);
            if f(&slots, &net) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what} in {h}: status {slots:?} {net}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `name` has `instances` instances in host `h`.
    fn wait_open(&self, h: char, name: &str, instances: usize) {
        self.wait_status(
            h,
            &[],
            &format!("{name} with {instances} instances"),
            |s, _| {
                s.iter().any(|m| {
                    m["mailslot"] == name
                        && m["instances"].as_array().map_or(0, |a| a.len()) == instances
                })
            },
        );
    }

    /// Waits until process `i` holds the role of host `h` on `port`.
    /// Starts Samba's nmbd in host `h` as NetBIOS name `name` (`extra`: more `[global]`
    /// lines of its smb.conf); its directory is `nmbd-<h>`, whose log a failed test prints.
    fn start_nmbd(&mut self, h: char, name: &str, extra: &str) -> usize {
        let conf = nmbd_conf(&self.tmp.join(format!("nmbd-{h}")), name, extra);
        self.spawn(
            h,
            "nmbd",
            "nmbd",
            &["-F", "--no-process-group", "-s", &conf],
        )
    }

    fn wait_holding(&self, h: char, port: u16, i: usize) {
        let pid = self.procs[i].pid();
        let p = port.to_string();
        self.wait_status(
            h,
            &["--port", &p],
            &format!("{} holding", self.procs[i].label),
            // ... and done registering its names (or found a conflict), so that it answers
            // name queries.
            |_, n| {
                n["state"] == "holding"
                    && n["holder_pid"] == pid
                    && n["name_state"] != "registering"
            },
        );
    }

    fn kill(&mut self, i: usize) {
        let _ = self.procs[i].child.kill();
        let _ = self.procs[i].child.wait();
    }

    fn wait_exit(&mut self, i: usize) -> std::process::ExitStatus {
        let deadline = Instant::now() + GUARD;
        loop {
            if let Some(st) = self.procs[i].child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit",
                self.procs[i].label
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every process inside our namespaces (tshark's dumpcap, nmbd's children, ...).
    fn strays(&self) -> Vec<u32> {
        let ours: Vec<PathBuf> = self
            .ns
            .iter()
            .filter_map(|(_, c)| std::fs::read_link(format!("/proc/{}/ns/net", c.id())).ok())
            .collect();
        let holders: Vec<u32> = self.ns.iter().map(|(_, c)| c.id()).collect();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if holders.contains(&pid) {
                continue;
            }
            if let Ok(l) = std::fs::read_link(e.path().join("ns/net")) {
                if ours.contains(&l) {
                    out.push(pid);
                }
            }
        }
        out
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in &self.procs {
                eprintln!(
                    "--- {} (pid {}): last stdout lines:\n{}\n--- last stderr lines:\n{}",
                    p.label,
                    p.child.id(),
                    p.out.tail(15).join("\n"),
                    p.err.tail(25).join("\n")
                );
            }
        }
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        for pid in self.strays() {
            signal(pid, libc::SIGKILL);
        }
        for (_, c) in &mut self.ns {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            // What the peers said (their logs are in the directory removed below).
            for log in ["nmbd-c/nmbd.log", "nmbd-b/nmbd.log", "nmbd-a/nmbd.log"] {
                if let Ok(text) = std::fs::read_to_string(self.tmp.join(log)) {
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    eprintln!("--- {log} (last 40 lines):");
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// Global options of a host named `name` in workgroup MSLAB, then `rest`.
fn ms<'a>(name: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--netbios-name", name, "--workgroup", "MSLAB"];
    v.extend_from_slice(rest);
    v
}

/// An smb.conf for nmbd in `dir` (with LANMAN announcements), `extra` lines added to
/// `[global]`.
fn nmbd_conf(dir: &Path, name: &str, extra: &str) -> String {
    for sub in [
        "pid", "lock", "state", "cache", "private", "ncalrpc", "sock",
    ] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let d = dir.display();
    let conf = format!(
        "[global]\n workgroup = MSLAB\n netbios name = {name}\n server string = lab {name}\n \
         server role = standalone server\n interfaces = eth0\n bind interfaces only = yes\n \
         local master = yes\n preferred master = yes\n os level = 65\n domain master = no\n \
         wins support = no\n dns proxy = no\n nmbd bind explicit broadcast = no\n \
         lm announce = yes\n lm interval = 60\n \
         pid directory = {d}/pid\n lock directory = {d}/lock\n state directory = {d}/state\n \
         cache directory = {d}/cache\n private dir = {d}/private\n ncalrpc dir = {d}/ncalrpc\n \
         nmbd:socket dir = {d}/sock\n log file = {d}/nmbd.log\n logging = file\n \
         max log size = 0\n{extra}"
    );
    let path = dir.join("smb.conf");
    std::fs::write(&path, conf).unwrap();
    path.to_string_lossy().into_owned()
}

fn nmbd_tools() -> bool {
    skip::require(runs("nmbd", &["-V"]), "nmbd (samba)")
}

// ---------------------------------------------------------------------------------------------
// The tests

/// Broadcast, unicast by IP and by name, own broadcasts, shared instances, NBNS, tshark, a
/// reply to the source port, serve → serve takeover.
#[test]
fn three_hosts() {
    if !lan_gate("three_hosts")
        || !skip::require(runs("tshark", &["-v"]), "tshark")
        || !skip::require(runs("nmblookup", &["-V"]), "nmblookup")
        || !samba_python()
    {
        return;
    }
    let bin = bin();
    let mut lab = Lab::up("three", &['a', 'b', 'c']);

    // B: `serve` holds the role; two instances of the shared TEST read (no role).
    let serve = lab.spawn('b', "serve", &bin, &ms("HOSTB", &["serve", "-v"]));
    let held = lab.procs[serve].err().next("holding the network role");
    assert!(
        held.contains("0.0.0.0:138") && held.contains("answering on 0.0.0.0:137"),
        "{held}"
    );
    let shared = ["listen", "TEST", "--shared", "--json", "--no-network"];
    let b1 = lab.spawn('b', "listen TEST #1", &bin, &shared);
    let b2 = lab.spawn('b', "listen TEST #2", &bin, &shared);
    // C and A: `listen` takes part in the role; alone on its host, it holds it.
    let c1 = lab.spawn(
        'c',
        "listen TEST",
        &bin,
        &ms("HOSTC", &["listen", "TEST", "--json"]),
    );
    let a1 = lab.spawn(
        'a',
        "listen TEST",
        &bin,
        &ms("HOSTA", &["listen", "TEST", "--json"]),
    );
    // B also holds the role of port 13800 (another lock, another socket) with a listener.
    let p13800 = lab.spawn(
        'b',
        "listen P13800 --port 13800",
        &bin,
        &ms("HOSTB", &["--port", "13800", "listen", "P13800", "--json"]),
    );
    // tshark in B from the start (the bridge floods broadcasts, unicast to B passes B only),
    // decoding as it captures (one line per mailslot datagram, flushed at once): port 138 by
    // itself, port 13800 with `-d udp.port==13800,nbdgm`.
    let tshark = lab.spawn(
        'b',
        "tshark",
        "tshark",
        &[
            "-i",
            "eth0",
            "-l",
            "-n",
            "-f",
            "udp port 138 or udp port 13800",
            "-d",
            "udp.port==13800,nbdgm",
            "-Y",
            "mailslot",
            "-T",
            "fields",
            "-e",
            "udp.dstport",
            "-e",
            "nbdgm.source_name",
            "-e",
            "nbdgm.destination_name",
            "-e",
            "mailslot.name",
            "-e",
            "data.data",
            "-a",
            "duration:240",
        ],
    );
    lab.wait_open('b', "TEST", 2);
    lab.wait_holding('c', 138, c1);
    lab.wait_holding('a', 138, a1);
    lab.wait_holding('b', 13800, p13800);
    lab.procs[tshark].err().next("Capturing on");

    // Samba's NDR (a third party) in A: a group and a unique datagram. A's role holds 138, so
    // the peer sends from an ephemeral port.
    let peer = support("lan_peer.py");
    for (to, typ, dst, text) in [
        ("10.99.0.255", "group", "MSLAB", "ndr group"),
        ("10.99.0.2", "unique", "HOSTB", "ndr unique"),
    ] {
        lab.run_ok(
            'a',
            PY,
            &[
                &peer,
                "send",
                "--sport",
                "0",
                "--to",
                to,
                "--type",
                typ,
                "--src",
                "SAMBAPEER",
                "--dst",
                dst,
                "--mailslot",
                "\\MAILSLOT\\TEST",
                "--payload",
                text,
            ],
        );
    }
    // Our CLI in A (not the holder: its datagrams leave from the holder's port 138). `*` goes
    // to two broadcast addresses: every host gets two copies and delivers one (dedupe).
    let r = lab.run_ok(
        'a',
        &bin,
        &ms(
            "HOSTA",
            &[
                "--broadcast",
                "10.99.0.255",
                "--broadcast",
                "255.255.255.255",
                "send",
                "TEST",
                "to star",
                "--to",
                "*",
                "-v",
            ],
        ),
    );
    assert!(r.stderr.contains("(source port 138)"), "{}", r.stderr);
    lab.run_ok(
        'a',
        &bin,
        &ms(
            "HOSTA",
            &["send", "TEST", "to ip", "--to", "10.99.0.2", "-v"],
        ),
    );
    // By NetBIOS name: a broadcast name query (UDP 137) answered by B's serve, then unicast.
    let r = lab.run_until(
        'a',
        &bin,
        &ms("HOSTA", &["send", "TEST", "to name", "--to", "HOSTB", "-v"]),
        |r| r.code == 0,
    );
    assert!(r.stderr.contains("10.99.0.2:138"), "{}", r.stderr);
    lab.run_ok(
        'a',
        &bin,
        &ms("HOSTA", &["send", "TEST", "sentinel", "--to", "*"]),
    );

    // Both instances in B got everything, once, in order.
    for i in [b1, b2] {
        let msgs = lab.procs[i].out().expect_texts(&[
            "ndr group",
            "ndr unique",
            "to star",
            "to ip",
            "to name",
            "sentinel",
        ]);
        assert_source(find(&msgs, "ndr group"), "10.99.0.1", "SAMBAPEER", None);
        assert_source(find(&msgs, "ndr unique"), "10.99.0.1", "SAMBAPEER", None);
        for t in ["to star", "to ip", "to name", "sentinel"] {
            assert_source(find(&msgs, t), "10.99.0.1", "HOSTA", Some(138));
        }
        // `listen --json` says which NetBIOS name each was addressed to.
        for (t, name, suffix) in [
            ("to star", "MSLAB", 0),
            ("to ip", "*", 0),
            ("to name", "HOSTB", 0),
        ] {
            let d = &find(&msgs, t)["destination"];
            assert_eq!(
                (&d["name"], &d["suffix"]),
                (&json!(name), &json!(suffix)),
                "{t}"
            );
        }
    }
    // C got the broadcasts only, once each.
    lab.procs[c1]
        .out()
        .expect_texts(&["ndr group", "to star", "sentinel"]);
    // A receives its own broadcasts, once each: the kernel loops every broadcast back to the
    // sender's host, where the role's socket (0.0.0.0:138) reads it like any other datagram,
    // and the role delivers datagrams this host sent itself by default (`deliver_own`; `serve
    // --drop-own` drops them, Samba's rule for browse frames), so that a write to `*` reaches
    // this host's mailslots as it reaches every other host of the workgroup. The second copy
    // (255.255.255.255) is a duplicate. The Samba peer's broadcast, sent from A too, is no
    // different. Unicasts to B never come back.
    let msgs = lab.procs[a1]
        .out()
        .expect_texts(&["ndr group", "to star", "sentinel"]);
    assert_source(find(&msgs, "to star"), "10.99.0.1", "HOSTA", Some(138));
    for h in ['a', 'b', 'c'] {
        lab.wait_status(h, &[], "a dropped duplicate", |_, n| {
            n["dropped_duplicate"].as_u64() >= Some(1) && n["delivered"].as_u64() >= Some(3)
        });
    }

    // Port 13800: our CLI writes there (no holder in A for that port: ephemeral source).
    for (to, text) in [("10.99.0.2", "nonstd unicast"), ("*", "nonstd star")] {
        lab.run_ok(
            'a',
            &bin,
            &ms(
                "HOSTA",
                &["--port", "13800", "send", "P13800", text, "--to", to],
            ),
        );
    }
    lab.procs[p13800]
        .out()
        .expect_texts(&["nonstd unicast", "nonstd star"]);

    // nmblookup (Samba) in C finds HOSTB through serve's responder, HOSTA through A's
    // `listen` (the role's holder answers for its name), and B's node status.
    lab.run_until('c', "nmblookup", &["-B", "10.99.0.255", "HOSTB"], |r| {
        r.code == 0 && r.stdout.contains("10.99.0.2 HOSTB<00>")
    });
    lab.run_until('c', "nmblookup", &["-B", "10.99.0.255", "HOSTA"], |r| {
        r.code == 0 && r.stdout.contains("10.99.0.1 HOSTA<00>")
    });
    lab.run_until('c', "nmblookup", &["-A", "10.99.0.2"], |r| {
        r.code == 0 && r.stdout.contains("HOSTB") && r.stdout.contains("MSLAB")
    });

    // A write to an IP goes to the wildcard name `*<00>` (the sender does not know B's name:
    // mailslot::net::send docs); by name it goes to HOSTB<00>.
    for (port, dst, slot, text) in [
        ("138", "MSLAB<00>", "TEST", "to star"),
        ("138", "*<00>", "TEST", "to ip"),
        ("138", "HOSTB<00>", "TEST", "to name"),
        ("13800", "*<00>", "P13800", "nonstd unicast"),
        ("13800", "MSLAB<00>", "P13800", "nonstd star"),
    ] {
        let head = format!("{port}\tHOSTA<00>\t{dst}");
        let tail = format!("\t\\MAILSLOT\\{slot}\t{}", hex(text.as_bytes()));
        lab.procs[tshark]
            .out()
            .next_where(&format!("{head:?} ... {tail:?}"), |l| {
                l.starts_with(&head) && l.ends_with(&tail)
            });
    }

    // A reply to the source port: A's role goes away, a peer there answers each datagram to
    // its UDP source (as nmbd answers a GetBackupListRequest). B's `send` (not the holder)
    // goes through B's holder, so the reply comes back to port 138 and reaches `listen REPLY`.
    lab.kill(a1);
    let echo = lab.spawn(
        'a',
        "echo peer",
        PY,
        &[
            &peer,
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
            "60",
        ],
    );
    lab.procs[echo].out().next("listening");
    let reply = lab.spawn(
        'b',
        "listen REPLY",
        &bin,
        &["listen", "REPLY", "--json", "--no-network"],
    );
    lab.wait_open('b', "REPLY", 1);
    let r = lab.run_ok(
        'b',
        &bin,
        &ms(
            "HOSTB",
            &["send", "TEST", "ping", "--to", "10.99.0.1", "-v"],
        ),
    );
    assert!(r.stderr.contains("(source port 138)"), "{}", r.stderr);
    let seen = lab.procs[echo].out().next("\"data\": \"ping\"");
    assert!(
        seen.contains("\"port\": 138"),
        "B's send left from the role's port: {seen}"
    );
    let msgs = lab.procs[reply].out().messages_until("echo:ping");
    assert_source(&msgs[0], "10.99.0.1", "ECHOPEER", Some(138));

    // kill -9 of B's serve: a second serve waiting there takes over; the listeners, which
    // never held the role, keep receiving.
    let serve2 = lab.spawn('b', "serve #2", &bin, &ms("HOSTB", &["serve", "-v"]));
    lab.procs[serve2].err().next("waiting for the network role");
    let t0 = Instant::now();
    lab.kill(serve);
    lab.procs[serve2].err().next("holding the network role");
    eprintln!(
        "three_hosts: serve #2 held the role {:?} after kill -9",
        t0.elapsed()
    );
    lab.run_ok(
        'a',
        &bin,
        &ms("HOSTA", &["send", "TEST", "after takeover", "--to", "*"]),
    );
    for i in [b1, b2, c1] {
        lab.procs[i].out().messages_until("after takeover");
    }
}

/// Datagrams built by Samba's NDR (python3-samba, from A) and by scapy (from C), padded and
/// unpadded, group and unique: received with the right data and source.
#[test]
fn third_party_senders() {
    if !lan_gate("third_party_senders") || !samba_python() {
        return;
    }
    let scapy = scapy_python();
    if scapy.is_none() {
        // In a re-run as nobody, a venv nobody cannot read is not a missing tool.
        if inner() {
            skip::note_skip("scapy not usable by this user; Samba only");
        } else if !skip::require(false, "scapy in <repo>/.venv (scripts/test.sh creates it)") {
            return;
        }
    }
    let bin = bin();
    let mut lab = Lab::up("third", &['a', 'b', 'c']);
    let serve = lab.spawn('b', "serve", &bin, &ms("HOSTB", &["serve"]));
    lab.wait_holding('b', 138, serve);
    // \MAILSLOT\THIRD: 69 + 16 = 85 bytes before the data, so Windows pads 3 bytes.
    let listen = lab.spawn(
        'b',
        "listen THIRD",
        &bin,
        &["listen", "THIRD", "--json", "--no-network"],
    );
    lab.wait_open('b', "THIRD", 1);
    let script = support("lan_send.py");
    let args = |imp: &'static str, prefix: &'static str| {
        vec![
            script.clone(),
            "cases".into(),
            "--impl".into(),
            imp.into(),
            "--unicast".into(),
            "10.99.0.2".into(),
            "--broadcast".into(),
            "10.99.0.255".into(),
            "--host".into(),
            "HOSTB".into(),
            "--group".into(),
            "MSLAB".into(),
            "--prefix".into(),
            prefix.into(),
            "--mailslot".into(),
            "\\MAILSLOT\\THIRD".into(),
        ]
    };
    let mut sent: Vec<(Value, &str)> = Vec::new();
    let mut senders = vec![('a', PY.to_string(), args("samba", "SMB"))];
    if let Some(py) = &scapy {
        senders.push(('c', py.clone(), args("scapy", "SCP")));
    }
    for (h, py, a) in &senders {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let r = lab.run_ok(*h, py, &a);
        for l in r.stdout.lines() {
            sent.push((
                serde_json::from_str(l).unwrap(),
                if *h == 'a' { "10.99.0.1" } else { "10.99.0.3" },
            ));
        }
    }
    assert!(sent.len() >= 7, "{sent:?}");
    // Everything, then a write from A after it (nothing else may have come meanwhile).
    let wanted: Vec<Value> = sent.iter().map(|(c, _)| c["data_hex"].clone()).collect();
    let mut w = lab.procs[listen].out();
    let mut got = w.messages_while("every case", |m| {
        wanted.iter().all(|h| m.iter().any(|v| v["data_hex"] == *h))
    });
    lab.run_ok(
        'a',
        &bin,
        &ms("HOSTA", &["send", "THIRD", "sentinel", "--to", "10.99.0.2"]),
    );
    got.extend(w.messages_until("sentinel"));
    for (case, ip) in &sent {
        let matching: Vec<&Value> = got
            .iter()
            .filter(|m| m["data_hex"] == case["data_hex"])
            .collect();
        assert_eq!(matching.len(), 1, "{case}: received {matching:?}");
        let m = matching[0];
        // The source is the UDP source, whatever the header claims (spoofed-header case).
        assert_source(m, ip, case["src"].as_str().unwrap(), case["sport"].as_u64());
        eprintln!(
            "third_party_senders: {} {} (DataOffset {}) from {ip}: ok",
            case["impl"], case["case"], case["data_offset"]
        );
    }
    assert_eq!(got.len(), sent.len() + 1, "{got:#?}");
}

/// Samba's nmbd in C announces itself on `\MAILSLOT\BROWSE` and `\MAILSLOT\LANMAN`; B's
/// listeners get both.
#[test]
fn nmbd_announcements() {
    if !lan_gate("nmbd_announcements") || !nmbd_tools() {
        return;
    }
    let bin = bin();
    let mut lab = Lab::up("nmbd", &['b', 'c']);
    let serve = lab.spawn('b', "serve", &bin, &ms("HOSTB", &["serve"]));
    lab.wait_holding('b', 138, serve);
    let browse = lab.spawn(
        'b',
        "listen BROWSE",
        &bin,
        &["listen", "BROWSE", "--json", "--no-network"],
    );
    let lanman = lab.spawn(
        'b',
        "listen LANMAN",
        &bin,
        &["listen", "LANMAN", "--json", "--no-network"],
    );
    lab.wait_open('b', "BROWSE", 1);
    lab.wait_open('b', "LANMAN", 1);
    lab.start_nmbd('c', "NMBD-C", "");
    let name_hex = hex(b"NMBD-C");
    let from_nmbd = |l: &str| l.contains("\"netbios_name\":\"NMBD-C\"");
    // HostAnnouncement ([MS-BRWS] to MSLAB<1d>): opcode 0x01, ServerName at offset 6.
    let l = lab.procs[browse]
        .out()
        .next_where("nmbd's HostAnnouncement", |l| {
            from_nmbd(l) && l.contains("\"data_hex\":\"01")
        });
    let m: Value = serde_json::from_str(&l).unwrap();
    assert_source(&m, "10.99.0.3", "NMBD-C", Some(138));
    assert!(
        m["data_hex"].as_str().unwrap()[12..].starts_with(&name_hex),
        "{m}"
    );
    // The LAN Manager announcement (only with `lm announce = yes`).
    let l = lab.procs[lanman]
        .out()
        .next_where("nmbd's LANMAN announcement", from_nmbd);
    let m: Value = serde_json::from_str(&l).unwrap();
    assert_source(&m, "10.99.0.3", "NMBD-C", Some(138));
    assert!(m["data_hex"].as_str().unwrap().contains(&name_hex), "{m}");
}

/// Our GetBackupListRequest reaches nmbd once it is the local master browser, and its
/// GetBackupListResponse, unicast to our source port (138, the holder's), reaches `listen
/// BROWSE`.
#[test]
fn nmbd_backup_list() {
    if !lan_gate("nmbd_backup_list") || !nmbd_tools() || !samba_python() {
        return;
    }
    let bin = bin();
    let mut lab = Lab::up("lmb", &['b', 'c']);
    let serve = lab.spawn('b', "serve", &bin, &ms("HOSTB", &["serve"]));
    lab.wait_holding('b', 138, serve);
    let browse = lab.spawn(
        'b',
        "listen BROWSE",
        &bin,
        &["listen", "BROWSE", "--json", "--no-network"],
    );
    lab.wait_open('b', "BROWSE", 1);
    lab.start_nmbd('c', "NMBD-C", "");
    let t0 = Instant::now();
    let mut watch = lab.procs[browse].out();
    // nmbd answers only as local master browser (about 25 s after its start): ask every 2 s.
    let builder = support("browse_payload.py");
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut attempt = 0u32;
    let (response, _last_token) = loop {
        attempt += 1;
        let token: u32 = 0x4D53_0000 + attempt;
        // The payload by Samba's NDR (support/browse_payload.py; python3-samba is required
        // like nmbd itself).
        let built = Command::new(PY)
            .arg(&builder)
            .args(["backup-list-request", &format!("{token:#x}")])
            .output()
            .expect("run browse_payload.py");
        assert!(
            built.status.success(),
            "browse_payload.py: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let h = String::from_utf8_lossy(&built.stdout).trim().to_string();
        let payload: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(&payload[..2], &[0x09, 4]);
        assert_eq!(&payload[2..6], &token.to_le_bytes());
        let r = lab.run_input(
            'b',
            &bin,
            &ms(
                "HOSTB",
                &[
                    "send", "BROWSE", "--to", "MSLAB", "--group", "--suffix", "1d", "--stdin", "-v",
                ],
            ),
            &payload,
        );
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("MSLAB<1d>") && r.stderr.contains("(source port 138)"),
            "{}",
            r.stderr
        );
        if let Some(l) = watch.next_within(Duration::from_secs(2), |l| {
            l.contains("\"data_hex\":\"0a") && l.contains("\"netbios_name\":\"NMBD-C\"")
        }) {
            break (l, token);
        }
        assert!(
            Instant::now() < deadline,
            "no GetBackupListResponse after {attempt} requests; nmbd log:\n{}",
            std::fs::read_to_string(lab.tmp.join("nmbd-c/nmbd.log")).unwrap_or_default()
        );
    };
    let m: Value = serde_json::from_str(&response).unwrap();
    assert_source(&m, "10.99.0.3", "NMBD-C", Some(138));
    let data = m["data_hex"].as_str().unwrap();
    // 0x0a, BackupServerCount, Token (echoed: 0x4d53xxxx, the answer to one of our requests;
    // an earlier one than the last is fine), the backup servers' names.
    assert!(data.starts_with("0a"), "{m}");
    assert_eq!(&data[8..12], "534d", "not one of our tokens: {m}");
    assert!(data.contains(&hex(b"NMBD-C")), "{m}");
    eprintln!(
        "nmbd_backup_list: GetBackupListResponse (token {:#x}) after {attempt} requests, {:?} \
         after nmbd started",
        u32::from_le_bytes(
            (0..4)
                .map(|i| u8::from_str_radix(&data[4 + 2 * i..6 + 2 * i], 16).unwrap())
                .collect::<Vec<u8>>()
                .try_into()
                .unwrap()
        ),
        t0.elapsed()
    );
}

/// Counter deltas between two `status --json` network objects.
fn deltas(before: &Value, after: &Value) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (k, v) in a {
            if let (Some(x), Some(y)) = (v.as_u64(), b.get(k).and_then(Value::as_u64)) {
                if k != "holder_pid" && k != "port" {
                    out.insert(k.clone(), x as i64 - y as i64);
                }
            }
        }
    }
    out
}

/// Every hostile datagram of `support/lan_hostile.py` across the LAN, then a flood of 100,000
/// datagrams.
#[test]
fn hostile_and_flood() {
    if !lan_gate("hostile_and_flood") {
        return;
    }
    let Some(scapy) = scapy_python() else {
        skip::require(false, "scapy in <repo>/.venv (scripts/test.sh creates it)");
        return;
    };
    let bin = bin();
    let mut lab = Lab::up("hostile", &['a', 'b']);
    let serve = lab.spawn('b', "serve", &bin, &ms("HOSTB", &["serve"]));
    lab.wait_holding('b', 138, serve);
    let mut listeners = BTreeMap::new();
    for name in ["TEST", "MSG", "BROWSE", "FLOOD"] {
        let i = lab.spawn(
            'b',
            &format!("listen {name}"),
            &bin,
            &["listen", name, "--json", "--no-network"],
        );
        listeners.insert(name, i);
    }
    for name in listeners.keys() {
        lab.wait_open('b', name, 1);
    }
    let (_, before) = lab.status('b', &[]);

    // "A reply larger than the datagram buffer" (CVE-2007-6015, CVE-2007-4572) is a
    // sender's bug: ours refuses over-limit messages before building anything, so nothing
    // reaches B (the exact counter check below sees no extra datagram).
    for (to, len) in [
        ("10.99.0.2", 429),
        ("HOSTB", 429),
        ("*", 425),
        ("*", 426),
        ("10.99.0.2", 65_000),
    ] {
        let r = lab.run_input(
            'a',
            &bin,
            &ms("HOSTA", &["send", "TEST", "--stdin", "--to", to]),
            &vec![b'x'; len],
        );
        assert!(
            r.code == 1 && r.stderr.contains("too large"),
            "{len} bytes to {to}: {}{}",
            r.stdout,
            r.stderr
        );
    }

    // Every hostile case, 2 ms apart, from A; expected counter increases come with them.
    let r = lab.run_ok(
        'a',
        &scapy,
        &[
            &support("lan_hostile.py"),
            "hostile",
            "--to",
            "10.99.0.2",
            "--host",
            "HOSTB",
            "--group",
            "MSLAB",
        ],
    );
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines.iter().find_map(|v| v.get("summary")).unwrap().clone();
    let deliveries = lines
        .iter()
        .find_map(|v| v.get("deliveries"))
        .unwrap()
        .clone();
    let cases = lines.iter().filter(|v| v.get("case").is_some()).count();
    eprintln!("hostile_and_flood: {cases} hostile cases sent; expected counters {summary}");
    lab.procs[listeners["TEST"]].out().messages_until("END");
    let received = summary["received"].as_i64().unwrap();
    let deadline = Instant::now() + GUARD;
    let d = loop {
        let (_, now) = lab.status('b', &[]);
        let d = deltas(&before, &now);
        if d["received"] >= received {
            break d;
        }
        assert!(Instant::now() < deadline, "counters never caught up: {d:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let want = |k: &str| summary.get(k).and_then(Value::as_i64).unwrap_or(0);
    for (k, v) in &d {
        if k == "dropped_malformed" || k == "dropped_failed" {
            continue;
        }
        assert_eq!(*v, want(k), "counter {k}: {d:?}, expected {summary}");
    }
    // A `..` mailslot name is refused by the parser (malformed) or by the local delivery
    // (failed): the report's finding; either way it is dropped and counted once.
    let either = want("dropped_malformed_or_failed");
    assert!(
        d["dropped_malformed"] >= want("dropped_malformed")
            && d["dropped_malformed"] + d["dropped_failed"] == want("dropped_malformed") + either,
        "{d:?}, expected {summary}"
    );
    // What was delivered, intact (the role parses no browser frame: it hands over bytes).
    let mut got: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for name in ["TEST", "MSG", "BROWSE"] {
        let mut w = lab.procs[listeners[name]].out();
        let n = deliveries
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["mailslot"] == name)
            .count();
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(serde_json::from_str(&w.next_where("a delivery", |_| true)).unwrap());
        }
        got.insert(name, v);
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for want in deliveries.as_array().unwrap() {
        let name = want["mailslot"].as_str().unwrap();
        let k = seen.entry(name).or_default();
        let m = &got[name][*k];
        *k += 1;
        assert_eq!(m["len"], want["len"], "{}: {m}", want["case"]);
        assert!(
            m["data_hex"]
                .as_str()
                .unwrap()
                .starts_with(want["head_hex"].as_str().unwrap()),
            "{}: {m}",
            want["case"]
        );
        assert_eq!(m["source"]["ip"], "10.99.0.1", "{}: {m}", want["case"]);
    }
    // Header lies are not identity: the name is what the datagram says, the IP is the UDP one.
    assert!(got["TEST"]
        .iter()
        .any(|m| m["source"]["netbios_name"] == "HOSTB"
            && m["source"]["ip"] == "10.99.0.1"
            && m["data_hex"] == hex(b"spoofed")));

    // The flood: 100,000 datagrams A -> B as fast as the socket takes them.
    let serve_pid = lab.procs[serve].pid();
    let rss_before = vmrss_kb(serve_pid);
    let (_, c0) = lab.status('b', &[]);
    let r = lab.run_ok(
        'a',
        &scapy,
        &[
            &support("lan_hostile.py"),
            "flood",
            "--to",
            "10.99.0.2",
            "--host",
            "HOSTB",
            "--count",
            "100000",
        ],
    );
    eprintln!("hostile_and_flood: sender: {}", r.stdout.trim());
    // Let the role drain its socket (its counters stop moving).
    let mut last = -1;
    let deadline = Instant::now() + GUARD;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let (_, now) = lab.status('b', &[]);
        let r = now["received"].as_i64().unwrap();
        if r == last {
            break;
        }
        last = r;
        assert!(Instant::now() < deadline, "the role never drained");
    }
    // Still there, still delivering: a write after the flood reaches FLOOD's listener (which
    // may first have to read what the flood queued; its queue drops the oldest when full).
    let mut w = lab.procs[listeners["FLOOD"]].out();
    let mut n = 0;
    let deadline = Instant::now() + GUARD;
    loop {
        n += 1;
        let text = format!("after flood {n}");
        lab.run_ok(
            'a',
            &bin,
            &ms("HOSTA", &["send", "FLOOD", &text, "--to", "10.99.0.2"]),
        );
        if w.next_within(Duration::from_secs(2), |l| l.contains("after flood"))
            .is_some()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "FLOOD's listener got nothing after the flood"
        );
    }
    let rss_after = vmrss_kb(serve_pid);
    let (_, c1) = lab.status('b', &[]);
    let d = deltas(&c0, &c1);
    eprintln!(
        "hostile_and_flood: flood of 100000: counters {d:?}; holder VmRSS {rss_before} kB -> \
         {rss_after} kB"
    );
    assert!(lab.procs[serve].alive(), "serve died in the flood");
    for i in listeners.values() {
        let i = *i;
        assert!(
            lab.procs[i].alive(),
            "{} died in the flood",
            lab.procs[i].label
        );
    }
    assert!(
        c1["state"] == "holding" && c1["holder_pid"] == serve_pid,
        "{c1}"
    );
    // Some datagrams may die in the kernel (socket buffer: `dropped_kernel`; veth backlog:
    // not seen by anyone), never more than were sent.
    assert!(
        d["received"] >= 1000 && d["received"] <= 100_000 + n,
        "{d:?}"
    );
    for k in [
        "dropped_malformed",
        "dropped_fragment",
        "dropped_no_mailslot",
        "dropped_not_for_us",
        "dropped_duplicate",
        "delivered",
    ] {
        assert!(d[k] > 0, "{k} did not rise: {d:?}");
    }
    // Bounded memory: the flood carried ~15 MB; the holder keeps none of it (fixed buffers,
    // a bounded dedupe table, bounded queues in the mailslots).
    assert!(
        rss_after < rss_before + 16 * 1024,
        "holder VmRSS grew from {rss_before} kB to {rss_after} kB"
    );
}

/// Two `listen --shared` in B, both candidates for the role; the holder is killed with
/// SIGKILL while A sends every millisecond; the survivor takes over and receives again.
#[test]
fn takeover_while_sending() {
    if !lan_gate("takeover_while_sending") {
        return;
    }
    let bin = bin();
    let mut lab = Lab::up("takeover", &['a', 'b']);
    let args = ms("HOSTB", &["listen", "TICK", "--shared", "--json"]);
    let first = lab.spawn('b', "listen TICK #1", &bin, &args);
    lab.wait_holding('b', 138, first);
    let second = lab.spawn('b', "listen TICK #2", &bin, &args);
    lab.wait_open('b', "TICK", 2);
    let (_, n) = lab.status('b', &[]);
    assert_eq!(n["holder_pid"], lab.procs[first].pid(), "{n}");
    let ticker = lab.spawn(
        'a',
        "ticker",
        PY,
        &[
            &support("lan_send.py"),
            "tick",
            "--to",
            "10.99.0.2",
            "--host",
            "HOSTB",
            "--src",
            "TICKER",
            "--duration",
            "50",
        ],
    );
    lab.procs[ticker].out().next("started");
    // Both instances receive while the first holds the role.
    let tick = |l: &str| -> Option<(u64, u64)> {
        let v: Value = serde_json::from_str(l).ok()?;
        let mut it = v["text"].as_str()?.strip_prefix("tick ")?.split(' ');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    let mut w = lab.procs[second].out();
    let mut last_before = (0, 0);
    for _ in 0..200 {
        last_before = tick(&w.next_where("a tick", |l| tick(l).is_some())).unwrap();
    }
    let t_kill = monotonic_us();
    let killed_at = Instant::now();
    lab.kill(first);
    // Ticks sent before the kill may still be queued: the first one sent after it tells.
    let first_after = loop {
        let t = tick(&w.next_where("a tick sent after the kill", |l| tick(l).is_some())).unwrap();
        if t.1 < t_kill {
            last_before = t;
        } else {
            break t;
        }
    };
    let printed_at = Instant::now();
    lab.wait_holding('b', 138, second);
    // A few more, in sequence: the survivor receives again.
    let again = tick(&w.next_where("another tick", |l| tick(l).is_some())).unwrap();
    assert!(again.0 > first_after.0);
    lab.kill(ticker);
    let gap_ms = (first_after.1 - last_before.1) as f64 / 1000.0;
    eprintln!(
        "takeover_while_sending: kill -9 of the holder; the survivor's last tick before it \
         was #{} (sent {:.1} ms before the kill), its first after it #{} (sent {:.1} ms after \
         the kill): gap {gap_ms:.1} ms, {} ticks lost; printed by the survivor {:?} after the \
         kill",
        last_before.0,
        (t_kill - last_before.1) as f64 / 1000.0,
        first_after.0,
        (first_after.1 - t_kill) as f64 / 1000.0,
        first_after.0 - last_before.0 - 1,
        printed_at - killed_at
    );
}

/// As root: the LAN scenarios again as `nobody`, inside `unshare -rn`: port 138, the bridge,
/// nmbd and the role without any privilege outside the namespace.
#[test]
fn unprivileged_lan() {
    if inner() {
        return;
    }
    if !is_root() {
        skip::note_skip(
            "not root, so every LAN test of this file ran inside `unshare -rn` as this user \
             already",
        );
        return;
    }
    if !skip::require(
        runs(
            "setpriv",
            &[
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "unshare",
                "-rn",
                "true",
            ],
        ),
        "`unshare -rn` as nobody (unprivileged user namespaces)",
    ) {
        return;
    }
    reexec(
        &[
            "three_hosts",
            "third_party_senders",
            "nmbd_announcements",
            "nmbd_backup_list",
            "hostile_and_flood",
            "takeover_while_sending",
        ],
        true,
    );
}

/// No namespaces, no privilege: a holder on an unprivileged port of this machine, writes to
/// `*` over the loopback broadcast address 127.255.255.255.
///
/// Two "hosts" on one machine cannot both hold one port (the role binds without
/// SO_REUSEADDR): a second runtime directory is a second host that sends (from an ephemeral
/// port, having no holder), and a role started there is refused, naming the holder.
#[test]
fn single_host_loopback() {
    if inner() {
        return;
    }
    let bin = bin();
    let mut lab = Lab::local("single");
    let port = std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let g = |name: &'static str, rest: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--port",
            port.as_str(),
            "--broadcast",
            "127.255.255.255",
            "--netbios-name",
            name,
            "--workgroup",
            "MSLAB",
            "--no-name-service",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let spawn = |lab: &mut Lab, h: char, label: &str, v: Vec<String>| {
        let a: Vec<&str> = v.iter().map(String::as_str).collect();
        lab.spawn(h, label, &bin, &a)
    };
    let run = |lab: &Lab, h: char, v: Vec<String>| {
        let a: Vec<&str> = v.iter().map(String::as_str).collect();
        lab.run_ok(h, &bin, &a)
    };
    let serve = spawn(&mut lab, 'a', "serve", g("HOST1", &["serve", "-v"]));
    lab.procs[serve].err().next("holding the network role");
    let shared = g(
        "HOST1",
        &["listen", "TEST", "--shared", "--json", "--no-network"],
    );
    let l1 = spawn(&mut lab, 'a', "listen TEST #1", shared.clone());
    let l2 = spawn(&mut lab, 'a', "listen TEST #2", shared);
    lab.wait_open('a', "TEST", 2);
    // From this "host" (through its holder: source port = the role's port, looped back).
    let r = run(
        &lab,
        'a',
        g("HOST1", &["send", "TEST", "own star", "--to", "*", "-v"]),
    );
    assert!(
        r.stderr.contains(&format!("(source port {port})")),
        "{}",
        r.stderr
    );
    // From a second "host" (directory b, no holder: ephemeral port).
    run(
        &lab,
        'b',
        g("HOST2", &["send", "TEST", "from host2", "--to", "*"]),
    );
    run(
        &lab,
        'b',
        g("HOST2", &["send", "TEST", "unicast", "--to", "127.0.0.1"]),
    );
    let p: u64 = port.parse().unwrap();
    for i in [l1, l2] {
        let msgs = lab.procs[i]
            .out()
            .expect_texts(&["own star", "from host2", "unicast"]);
        assert_source(find(&msgs, "own star"), "127.0.0.1", "HOST1", Some(p));
        assert_source(find(&msgs, "from host2"), "127.0.0.1", "HOST2", None);
        assert_ne!(find(&msgs, "from host2")["source"]["port"], p);
    }
    let serve_pid = lab.procs[serve].pid();
    let pa = ["--port", port.as_str()];
    lab.wait_status('a', &pa, "counters", |_, n| {
        n["holder_pid"] == serve_pid
            && n["state"] == "holding"
            && n["received"].as_u64() >= Some(3)
            && n["delivered"].as_u64() >= Some(3)
    });
    // A role in the second directory on the same port: refused, the holder named.
    let other = spawn(
        &mut lab,
        'b',
        "listen in b",
        g("HOST2", &["listen", "X", "--json"]),
    );
    lab.wait_status('b', &pa, "the second role refused", |_, n| {
        n["state"] == "unavailable"
            && n["reason"]
                .as_str()
                .is_some_and(|r| r.contains("in use") && r.contains(&serve_pid.to_string()))
    });
    lab.kill(other);
    // SIGTERM: serve releases the role and exits 0 with its counters.
    signal(serve_pid, libc::SIGTERM);
    let st = lab.wait_exit(serve);
    assert!(st.success(), "{st}");
    lab.procs[serve].err().next("released the network role");
}

// ---------------------------------------------------------------------------------------------
// Name registration against nmbd

/// The `nmblookup -B 10.99.0.255 NAME` answers in host `h`: the addresses that answered.
fn lookup(lab: &Lab, h: char, name: &str) -> Vec<String> {
    let r = lab.run(h, "nmblookup", &["-B", "10.99.0.255", name]);
    let mut out: Vec<String> = r
        .stdout
        .lines()
        .filter(|l| l.contains('<') && !l.starts_with("querying"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    out.sort();
    out
}

/// Waits (up to the hang guard) until `nmblookup` in host `h` finds `name` at `addr`: nmbd
/// takes a few seconds after its start to register its names.
fn wait_lookup(lab: &Lab, h: char, name: &str, addr: &str) {
    let deadline = Instant::now() + GUARD;
    loop {
        let got = lookup(lab, h, name);
        if got.iter().any(|a| a == addr) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never found at {addr}: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// nmbd started with `netbios aliases = HOSTB` while we hold HOSTB: its registrations of
/// HOSTB<00> and <03> get our negative responses, and lookups keep finding only us. (nmbd
/// also registers HOSTB<20>, the file server name, which we do not claim: it may have it.)
#[test]
fn nmbd_alias_of_our_name_is_refused() {
    if !lan_gate("nmbd_alias_of_our_name_is_refused") || !nmbd_tools() {
        return;
    }
    let bin = bin();
    let mut lab = Lab::up("nmalias", &['a', 'b', 'c']);
    let serve = lab.spawn('b', "serve", &bin, &ms("HOSTB", &["serve"]));
    lab.wait_holding('b', 138, serve);
    let (_, net) = lab.status('b', &[]);
    assert_eq!(net["name_state"], "registered", "{net}");
    // Only the suffixes we serve are answered: <20> is nobody's yet.
    assert_eq!(lookup(&lab, 'a', "HOSTB"), ["10.99.0.2"]);
    assert_eq!(lookup(&lab, 'a', "HOSTB#20"), Vec::<String>::new());
    lab.start_nmbd('c', "NMBD-C", " netbios aliases = HOSTB\n");
    lab.wait_status(
        'b',
        &[],
        "our defence against nmbd's registration",
        |_, n| n["name_defences"].as_u64().unwrap_or(0) >= 1,
    );
    // nmbd is up (its own name answers), and HOSTB is still only ours.
    wait_lookup(&lab, 'a', "NMBD-C", "10.99.0.3");
    for _ in 0..3 {
        assert_eq!(lookup(&lab, 'a', "HOSTB"), ["10.99.0.2"]);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, net) = lab.status('b', &[]);
    assert_eq!(net["name_state"], "registered", "{net}");
    let log = std::fs::read_to_string(lab.tmp.join("nmbd-c/nmbd.log")).unwrap_or_default();
    assert!(
        !log.contains("HOSTB<00>") || !log.to_lowercase().contains("registered name hostb<00>"),
        "nmbd took HOSTB<00>: {log}"
    );
}

/// Our host started with a name nmbd already holds: the conflict is reported once on stderr,
/// `status` shows it with nmbd's address, and we do not answer queries for it.
#[test]
fn our_name_held_by_nmbd_is_a_conflict() {
    if !lan_gate("our_name_held_by_nmbd_is_a_conflict") || !nmbd_tools() {
        return;
    }
    let bin = bin();
    let mut lab = Lab::up("nmheld", &['a', 'b', 'c']);
    lab.start_nmbd('c', "HOSTB", "");
    wait_lookup(&lab, 'a', "HOSTB", "10.99.0.3");
    let serve = lab.spawn('b', "serve", &bin, &ms("HOSTB", &["serve"]));
    lab.wait_holding('b', 138, serve);
    lab.wait_status('b', &[], "the conflict", |_, n| {
        n["name_state"] == "conflict"
    });
    let (_, net) = lab.status('b', &[]);
    assert_eq!(net["name_conflict"]["defender"], "10.99.0.3", "{net}");
    assert!(
        net["name_conflict"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("HOSTB<")),
        "{net}"
    );
    // Only nmbd answers for HOSTB<00>, several times over.
    for _ in 0..3 {
        assert_eq!(lookup(&lab, 'a', "HOSTB"), ["10.99.0.3"]);
    }
    // The human status says so, and serve reported it once per name in conflict.
    let human = lab.run_ok('b', &bin, &["status"]).stdout;
    assert!(human.contains("NetBIOS name conflict"), "{human}");
    let conflict = "NetBIOS name HOSTB<00> is held by 10.99.0.3";
    let mut err = lab.procs[serve].err();
    err.next(conflict);
    assert_eq!(
        err.next_within(Duration::from_millis(500), |l| l.contains(conflict)),
        None,
        "reported twice"
    );
    // Broadcasts still reach us: a write to MSLAB from A is delivered to a listener on B.
    let listen = lab.spawn(
        'b',
        "listen",
        &bin,
        &["listen", "NAMES", "--json", "--no-network"],
    );
    lab.wait_open('b', "NAMES", 1);
    lab.run_ok(
        'a',
        &bin,
        &ms("HOSTA", &["send", "--to", "*", "NAMES", "still here"]),
    );
    lab.procs[listen].out().expect_texts(&["still here"]);
}

/// A clean stop releases our names: tshark in a peer host decodes our NAME RELEASE REQUEST
/// for HOSTB<00>, and then nmbd can register HOSTB (it was refused while we held it).
#[test]
fn a_clean_stop_releases_our_name() {
    if !lan_gate("a_clean_stop_releases_our_name")
        || !nmbd_tools()
        || !skip::require(runs("tshark", &["-v"]), "tshark")
    {
        return;
    }
    let bin = bin();
    let mut lab = Lab::up("nmrelease", &['a', 'b', 'c']);
    let tshark = lab.spawn(
        'c',
        "tshark",
        "tshark",
        &[
            "-i",
            "eth0",
            "-l",
            "-n",
            "-f",
            "udp port 137",
            "-Y",
            "nbns",
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "nbns.flags.opcode",
            "-e",
            "nbns.flags.response",
            "-e",
            "nbns.name",
            "-a",
            "duration:240",
        ],
    );
    lab.procs[tshark].err().next("Capturing on");
    let serve = lab.spawn('b', "serve", &bin, &ms("HOSTB", &["serve"]));
    lab.wait_holding('b', 138, serve);
    // Our registration, as tshark decodes it (opcode 5, registration).
    let mut seen = lab.procs[tshark].out();
    seen.next_where("our registration of HOSTB<00>", |l| {
        l.starts_with("10.99.0.2\t5\t") && l.contains("HOSTB<00>")
    });
    let pid = lab.procs[serve].pid();
    signal(pid, libc::SIGTERM);
    assert!(lab.wait_exit(serve).success());
    // Opcode 6: release, from B, for each name.
    for name in ["HOSTB<00>", "HOSTB<03>", "MSLAB<00>"] {
        let mut w = lab.procs[tshark].out();
        w.next_where(&format!("the release of {name}"), |l| {
            l.starts_with("10.99.0.2\t6\t") && l.contains(name)
        });
    }
    // The name is free: nmbd in C registers it and answers for it.
    lab.start_nmbd('c', "HOSTB", "");
    wait_lookup(&lab, 'a', "HOSTB", "10.99.0.3");
    assert_eq!(lookup(&lab, 'a', "HOSTB"), ["10.99.0.3"]);
}
