//! `mailslot chat` driven like a person would: real terminals in tmux (`send-keys` to type,
//! `capture-pane` to read the screen), the built binary, a private runtime directory per
//! host and a private tmux server per test.
//!
//! - One host, two terminals, no network: a message typed on one appears on the other with
//!   the right sender; a broadcast reaches both; OEM (code page 850) and hostile bytes from
//!   other senders are shown readably.
//! - One host with the network role on a free port and the loopback broadcast address: a
//!   broadcast is shown once although it arrives twice (local write and network copy); a text
//!   over the network limit is refused with the limit shown; the role moves on `kill -9`.
//! - Two hosts of a virtual LAN (network namespaces, root only): a message typed on one
//!   appears on the other, and killing the chat that holds a host's network role does not
//!   stop that host's other chat from receiving.
//!
//! Tool policy: without tmux (or, for the LAN test, root and `ip`) a test prints `SKIP:` and
//! passes, unless `CI` is set, where it fails. No test asserts a wall-clock bound: each waits
//! for the screen to show something, with a generous deadline that only guards against hangs.

#[path = "../../mailslot/tests/common/skip.rs"]
mod skip;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mailslot");
/// Only a guard against hangs; screens normally change within milliseconds.
const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

fn unique(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "msc{}{tag}{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn have_tmux() -> bool {
    skip::require(
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "tmux",
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A private runtime directory (mode 0700) under /dev/shm, removed at the end.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> PrivateDir {
        let dir = PathBuf::from("/dev/shm").join(unique("dir"));
        std::fs::create_dir(&dir).expect("create a runtime directory");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        PrivateDir(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tmux server of our own; each terminal is a 100x30 session. Killed at the end (which
/// hangs up every chat in it).
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        let tmux = Tmux {
            socket: unique("tmux"),
        };
        // A first session starts the server with no user configuration; keep dead panes so a
        // chat that fails shows why.
        tmux.ok(&["-f", "/dev/null", "new-session", "-d", "-s", "keep"]);
        tmux.ok(&["set-option", "-g", "remain-on-exit", "on"]);
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Opens a 100x30 terminal `name` running `command` (a shell command line).
    fn start(&self, name: &str, command: &str) {
        self.start_sized(name, command, 30);
    }

    fn start_sized(&self, name: &str, command: &str, rows: u16) {
        let rows = rows.to_string();
        self.ok(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            &rows,
            command,
        ]);
    }

    fn screen(&self, name: &str) -> String {
        self.ok(&["capture-pane", "-p", "-t", name])
    }

    fn type_text(&self, name: &str, text: &str) {
        self.ok(&["send-keys", "-t", name, "-l", text]);
    }

    fn key(&self, name: &str, key: &str) {
        self.ok(&["send-keys", "-t", name, key]);
    }

    /// Sets the target (To field) of terminal `name` and returns to the message field.
    fn target(&self, name: &str, target: &str) {
        self.key(name, "Tab");
        self.key(name, "C-u");
        self.type_text(name, target);
        self.key(name, "Enter");
    }

    fn say(&self, name: &str, text: &str) {
        self.type_text(name, text);
        self.key(name, "Enter");
    }

    /// Waits until the screen of `name` satisfies `ready`; returns it.
    fn wait(&self, name: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(name);
            if ready(&screen) {
                return screen;
            }
            if start.elapsed() > DEADLINE {
                panic!("terminal {name}: no {what} after {DEADLINE:?}; the screen:\n{screen}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the screen of `name` shows every one of `texts`.
    fn wait_for(&self, name: &str, texts: &[&str]) -> String {
        self.wait(name, &format!("{texts:?}"), |s| {
            texts.iter().all(|t| s.contains(t))
        })
    }

    /// Whether the terminal rang its bell (tmux flags the window of a detached session).
    fn bell(&self, name: &str) -> bool {
        self.ok(&["display-message", "-p", "-t", name, "#{window_bell_flag}"])
            .trim()
            == "1"
    }

    fn pane_pid(&self, name: &str) -> u32 {
        self.ok(&["display-message", "-p", "-t", name, "#{pane_pid}"])
            .trim()
            .parse()
            .expect("a pane pid")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The chat's pid: the pane's process, or its `mailslot` descendant if a wrapper forked.
fn chat_pid(pane_pid: u32) -> u32 {
    let comm = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm(pane_pid).trim() == "mailslot" {
        return pane_pid;
    }
    let mut parents = vec![pane_pid];
    while let Some(parent) = parents.pop() {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": the ppid follows the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) {
                if comm(pid).trim() == "mailslot" {
                    return pid;
                }
                parents.push(pid);
            }
        }
    }
    panic!("no mailslot process under pane pid {pane_pid}");
}

fn kill9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {pid}");
}

fn count(screen: &str, text: &str) -> usize {
    screen.matches(text).count()
}

/// Messages each MESSNGR instance of `dir` has read.
fn delivered(dir: &str) -> Vec<u64> {
    let name = mailslot::MailslotName::parse("MESSNGR").unwrap();
    mailslot::status_of(std::path::Path::new(dir), &name)
        .unwrap()
        .map(|s| s.instances.iter().map(|i| i.delivered).collect())
        .unwrap_or_default()
}

fn wait_delivered(dir: &str, at_least: u64, instances: usize) {
    let start = Instant::now();
    loop {
        let counts = delivered(dir);
        if counts.len() == instances && counts.iter().all(|&n| n >= at_least) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "MESSNGR instances delivered {counts:?}, wanted {instances} with at least {at_least}"
        );
        std::thread::sleep(POLL);
    }
}

/// `env VAR=... mailslot [global options] chat --from FROM` as one shell command line.
fn chat_command(env: &[(&str, &str)], global: &[&str], from: &str) -> String {
    let mut parts = vec!["exec".to_owned(), "env".to_owned()];
    parts.extend(env.iter().map(|(k, v)| shell_quote(&format!("{k}={v}"))));
    parts.push(shell_quote(BIN));
    parts.extend(global.iter().map(|g| shell_quote(g)));
    parts.extend(["chat".to_owned(), "--from".to_owned(), shell_quote(from)]);
    parts.join(" ")
}

#[test]
fn chat_without_a_terminal_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["--no-network", "chat"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run mailslot chat");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mailslot chat needs a terminal"),
        "stderr: {stderr}"
    );
}

#[test]
fn two_terminals_on_one_host() {
    if !have_tmux() {
        return;
    }
    let dir = PrivateDir::new();
    let tmux = Tmux::new();
    let env = [
        ("MAILSLOT_DIR", dir.path()),
        ("MAILSLOT_NETBIOS_NAME", "CHATHOST"),
        ("MAILSLOT_WORKGROUP", "TESTGROUP"),
    ];
    // Alice's chat runs under a shell that prints its exit status and stays (tmux 3.3 may
    // never reap a pane's process, or drop its last output, when it exits under load, so
    // neither #{pane_dead_status} nor a dead pane's screen can be relied on).
    let alice = chat_command(&env, &["--no-network"], "ALICE");
    tmux.start(
        "alice",
        &format!(
            "{}; echo \"[chat exited with status $?]\"; exec sleep 600",
            alice.trim_start_matches("exec ")
        ),
    );
    // Bob's chat rings the bell for each popup.
    let bob = chat_command(&env, &["--no-network"], "BOB");
    tmux.start("bob", &format!("{bob} --bell"));
    tmux.wait_for("alice", &["ALICE@CHATHOST · TESTGROUP · network off"]);
    tmux.wait_for("bob", &["BOB@CHATHOST · TESTGROUP · network off"]);

    // Typed on one terminal, shown on the other with the sender; the sender sees its own
    // message once, marked as seen on this host.
    tmux.target("alice", ".");
    tmux.say("alice", "hello bob, from alice");
    tmux.wait_for(
        "bob",
        &[
            "ALICE@CHATHOST (this host, pid ",
            "→ CHATHOST",
            "  hello bob, from alice",
        ],
    );
    let screen = tmux.wait_for(
        "alice",
        &["you → . (CHATHOST) ✓ sent (this host) · seen here"],
    );
    tmux.wait("bob", "bell", |_| tmux.bell("bob"));
    assert_eq!(count(&screen, "hello bob, from alice"), 1, "{screen}");

    // A broadcast (`*`, the default target) reaches both.
    tmux.say("bob", "hi everyone");
    tmux.wait_for(
        "alice",
        &[
            "BOB@CHATHOST (this host, pid ",
            "→ TESTGROUP",
            "  hi everyone",
        ],
    );
    tmux.wait_for(
        "bob",
        &[
            "you → * (TESTGROUP) ✓ sent (this host) · seen here",
            "  hi everyone",
        ],
    );

    // Other senders: an OEM (code page 850) popup, and bytes that are neither UTF-8 nor
    // harmless (a bell, an escape sequence) shown as visible text.
    let send = |args: &[&str]| {
        let out = Command::new(BIN)
            .env("MAILSLOT_DIR", dir.path())
            .args(["--no-network", "send", "MESSNGR"])
            .args(args)
            .output()
            .expect("run mailslot send");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    send(&[
        "Grüße aus Köln",
        "--messenger",
        "--from",
        "JÖRG",
        "--to-user",
        "ALICE",
    ]);
    let raw = dir.0.join("raw.bin");
    std::fs::write(&raw, b"EVE\0*\0bell\x07 clear\x1b[2J box\xfe\0").unwrap();
    send(&["--file", raw.to_str().unwrap()]);
    for who in ["alice", "bob"] {
        tmux.wait_for(
            who,
            &[
                "JÖRG@CHATHOST",
                "  Grüße aus Köln",
                "EVE@CHATHOST",
                "  bell^G clear^[[2J box■",
            ],
        );
    }

    assert!(!tmux.bell("alice"), "only --bell rings");

    // Esc quits cleanly: the terminal is restored and the exit status is 0.
    tmux.key("alice", "Escape");
    tmux.wait_for("alice", &["[chat exited with status 0]"]);
    assert!(
        !tmux.screen("alice").contains("MESSNGR · mailslot chat"),
        "the chat's screen is gone"
    );
}

#[test]
fn a_flood_leaves_the_chat_responsive() {
    if !have_tmux() {
        return;
    }
    let dir = PrivateDir::new();
    let tmux = Tmux::new();
    let env = [
        ("MAILSLOT_DIR", dir.path()),
        ("MAILSLOT_NETBIOS_NAME", "CHATHOST"),
        ("MAILSLOT_WORKGROUP", "TESTGROUP"),
    ];
    tmux.start("alice", &chat_command(&env, &["--no-network"], "ALICE"));
    tmux.wait_for("alice", &["ALICE@CHATHOST · TESTGROUP · network off"]);
    let scope = mailslot::Scope::Dir(dir.0.clone());
    let mut writer = mailslot::Writer::open_in(&scope, "MESSNGR").unwrap();
    const FLOOD: usize = 20_000;
    for i in 0..FLOOD {
        writer
            .write(format!("FLOOD\0*\0message {i}\0").as_bytes())
            .unwrap();
    }
    // Every message is either shown or counted as lost; the last one is on the screen.
    tmux.wait("alice", "the whole flood", |screen| {
        screen.contains(&format!("message {}", FLOOD - 1)) && screen.lines().any(|line| {
            let number = |key: &str| -> Option<usize> {
                let at = line.find(key)? + key.len();
                line[at..].split_whitespace().next()?.parse().ok()
            };
            matches!((number("received "), number("lost ")), (Some(r), Some(l)) if r + l == FLOOD)
        })
    });
    tmux.say("alice", "still here");
    tmux.wait_for(
        "alice",
        &[
            "you → * (TESTGROUP) ✓ sent (this host) · seen here",
            "  still here",
        ],
    );
}

/// A UDP port nobody uses right now.
fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind a UDP socket");
    socket.local_addr().unwrap().port()
}

#[test]
fn network_role_on_one_host() {
    if !have_tmux() {
        return;
    }
    let dir = PrivateDir::new();
    let tmux = Tmux::new();
    let port = free_udp_port().to_string();
    let env = [
        ("MAILSLOT_DIR", dir.path()),
        ("MAILSLOT_NETBIOS_NAME", "CHATHOST"),
        ("MAILSLOT_WORKGROUP", "TESTGROUP"),
        ("MAILSLOT_PORT", port.as_str()),
    ];
    let global = ["--broadcast", "127.255.255.255"];
    let holding = format!("network role: this process (UDP {port})");
    tmux.start("alice", &chat_command(&env, &global, "ALICE"));
    tmux.wait_for("alice", &[&holding]);
    tmux.start("bob", &chat_command(&env, &global, "BOB"));
    tmux.wait_for("bob", &["network role: another process"]);

    // `*` goes to this host's MESSNGR and as a broadcast, whose copy the role delivers here
    // too: each window reads it twice and shows it once.
    tmux.say("alice", "over the loopback lan");
    tmux.wait_for(
        "alice",
        &["you → * (TESTGROUP) ✓ sent (this host + broadcast 127.255.255.255) · seen here"],
    );
    wait_delivered(dir.path(), 2, 2);
    let screen = tmux.wait_for("bob", &["ALICE@CHATHOST", "  over the loopback lan"]);
    assert_eq!(count(&screen, "over the loopback lan"), 1, "{screen}");
    assert_eq!(
        count(&tmux.screen("alice"), "over the loopback lan"),
        1,
        "{}",
        tmux.screen("alice")
    );

    // Longer than a MESSNGR datagram takes (406 bytes less From, To and NULs): refused with
    // the limit, and kept in the compose line.
    tmux.type_text("alice", &"x".repeat(450));
    tmux.wait_for("alice", &["Message 450/389"]);
    tmux.key("alice", "Enter");
    tmux.wait_for(
        "alice",
        &[
            "too long for TESTGROUP: 450 characters, at most 389",
            "Message 450/389",
        ],
    );
    tmux.key("alice", "C-u");

    // The holder dies: the other window takes the role over.
    kill9(chat_pid(tmux.pane_pid("alice")));
    tmux.wait_for("bob", &[&holding]);
}

/// A virtual LAN of two hosts (network namespaces joined by a bridge in a third), removed at
/// the end, with names of our own so tests can run side by side.
struct Lan {
    namespaces: Vec<String>,
}

impl Lan {
    fn ip(args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Hosts named `hosts`, with addresses 10.98.0.1, .2, ...
    fn new(hosts: usize) -> Lan {
        let tag = unique("n");
        let bridge = format!("{tag}br");
        let mut lan = Lan {
            namespaces: vec![bridge.clone()],
        };
        Lan::ip(&["netns", "add", &bridge]);
        Lan::ip(&["-n", &bridge, "link", "set", "lo", "up"]);
        Lan::ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"]);
        Lan::ip(&[
            "-n",
            &bridge,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        Lan::ip(&["-n", &bridge, "link", "set", "br0", "up"]);
        for i in 1..=hosts {
            let ns = format!("{tag}h{i}");
            lan.namespaces.push(ns.clone());
            let (veth, port) = (format!("{tag}v{i}"), format!("{tag}p{i}"));
            let addr = format!("10.98.0.{i}/24");
            Lan::ip(&["netns", "add", &ns]);
            Lan::ip(&["-n", &ns, "link", "set", "lo", "up"]);
            Lan::ip(&[
                "link", "add", &veth, "netns", &ns, "type", "veth", "peer", "name", &port, "netns",
                &bridge,
            ]);
            Lan::ip(&["-n", &ns, "link", "set", &veth, "name", "eth0"]);
            Lan::ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &addr,
                "brd",
                "10.98.0.255",
                "dev",
                "eth0",
            ]);
            Lan::ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            Lan::ip(&["-n", &bridge, "link", "set", &port, "master", "br0"]);
            Lan::ip(&["-n", &bridge, "link", "set", &port, "up"]);
            Lan::ip(&[
                "-n",
                &ns,
                "route",
                "add",
                "255.255.255.255/32",
                "dev",
                "eth0",
            ]);
        }
        lan
    }

    fn host(&self, i: usize) -> &str {
        &self.namespaces[i]
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        .unwrap_or(false)
}

#[test]
fn two_hosts_on_a_virtual_lan() {
    if !have_tmux()
        || !skip::require(is_root(), "root (for network namespaces)")
        || !skip::require(
            Command::new("ip")
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success()),
            "ip (iproute2)",
        )
    {
        return;
    }
    let lan = Lan::new(2);
    let (dir_a, dir_b) = (PrivateDir::new(), PrivateDir::new());
    let tmux = Tmux::new();
    let on = |host: &str, dir: &PrivateDir, name: &str, from: &str| {
        let env = [
            ("MAILSLOT_DIR", dir.path()),
            ("MAILSLOT_NETBIOS_NAME", name),
            ("MAILSLOT_WORKGROUP", "TESTGROUP"),
            ("MAILSLOT_PORT", "138"),
        ];
        let chat = chat_command(&env, &[], from);
        // `exec` all the way down, so the pane's pid is the chat's.
        format!(
            "exec ip netns exec {} {}",
            shell_quote(host),
            chat.trim_start_matches("exec ")
        )
    };
    let holding = "network role: this process (UDP 138)";
    tmux.start("alice", &on(lan.host(1), &dir_a, "HOSTA", "ALICE"));
    tmux.wait_for("alice", &[holding]);
    tmux.start("carol", &on(lan.host(1), &dir_a, "HOSTA", "CAROL"));
    tmux.wait_for("carol", &["network role: another process"]);
    tmux.start("bob", &on(lan.host(2), &dir_b, "HOSTB", "BOB"));
    tmux.wait_for("bob", &[holding]);
    // B's role answers name queries for HOSTB once it has registered it (B-node: about
    // 0.75 s of registration requests nobody objects to, after it holds the role).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = Command::new("ip")
            .args(["netns", "exec", lan.host(2), BIN, "status", "--json"])
            .env("MAILSLOT_DIR", dir_b.path())
            .env("MAILSLOT_PORT", "138")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("\"name_state\":\"registered\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "HOSTB never registered: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // Directed to the other host by its NetBIOS name (resolved by a name query that host B's
    // role answers).
    tmux.target("alice", "HOSTB");
    tmux.say("alice", "hello host b");
    tmux.wait_for(
        "bob",
        &["ALICE@HOSTA (10.98.0.1) → HOSTB", "  hello host b"],
    );
    tmux.wait_for("alice", &["you → HOSTB ✓ sent (10.98.0.2)"]);

    // A broadcast from host B reaches both windows of host A, once each.
    tmux.say("bob", "hello workgroup");
    for who in ["alice", "carol"] {
        tmux.wait_for(
            who,
            &["BOB@HOSTB (10.98.0.2) → TESTGROUP", "  hello workgroup"],
        );
    }

    // Kill the window that holds host A's role: the other takes it over and still receives.
    kill9(chat_pid(tmux.pane_pid("alice")));
    tmux.wait_for("carol", &[holding]);
    tmux.say("bob", "after the takeover");
    let screen = tmux.wait_for(
        "carol",
        &["BOB@HOSTB (10.98.0.2) → TESTGROUP", "  after the takeover"],
    );
    assert_eq!(count(&screen, "hello workgroup"), 1, "{screen}");
}

/// Records the README's session (docs/chat-session.txt): two hosts, a broadcast, a directed
/// answer, an OEM popup, a refused long text, and a role takeover after `kill -9`.
#[test]
#[ignore = "writes docs/chat-session.txt; run with --ignored (as root) to refresh it"]
fn record_session_for_docs() {
    assert!(is_root(), "needs root for the virtual LAN");
    let lan = Lan::new(2);
    let (dir_a, dir_b) = (PrivateDir::new(), PrivateDir::new());
    let tmux = Tmux::new();
    let on = |host: &str, dir: &PrivateDir, name: &str, from: &str| {
        let env = [
            ("MAILSLOT_DIR", dir.path()),
            ("MAILSLOT_NETBIOS_NAME", name),
            ("MAILSLOT_WORKGROUP", "OFFICE"),
            ("MAILSLOT_PORT", "138"),
            ("TZ", "UTC"),
        ];
        let chat = chat_command(&env, &[], from);
        format!(
            "exec ip netns exec {} {}",
            shell_quote(host),
            chat.trim_start_matches("exec ")
        )
    };
    let start = Instant::now();
    let mut out = String::from(
        "mailslot chat: a recorded session (tmux capture-pane, 100x22 terminals)\n\n\
         Two hosts on a LAN, workgroup OFFICE:\n\
         \x20 HOSTA 10.98.0.1   alice$ mailslot chat --from ALICE      carol$ mailslot chat --from CAROL\n\
         \x20 HOSTB 10.98.0.2   bob$   mailslot chat --from BOB\n\
         ALICE's chat holds HOSTA's network role (UDP 138); CAROL's waits for it. Every chat opens the\n\
         shared MESSNGR mailslot, so both windows on HOSTA see every popup.\n\
         (Recorded by `cargo test -p mailslot-cli --test chat -- --ignored record_session_for_docs`.)\n",
    );
    let mut frame = |title: &str, who: &str| {
        let screen: Vec<String> = tmux
            .screen(who)
            .lines()
            .map(|l| l.trim_end().to_owned())
            .collect();
        out.push_str(&format!(
            "\n[{:5.1}s] {title}\n\n{}\n",
            start.elapsed().as_secs_f64(),
            screen.join("\n")
        ));
    };
    let holding = "network role: this process (UDP 138)";
    tmux.start_sized("alice", &on(lan.host(1), &dir_a, "HOSTA", "ALICE"), 22);
    tmux.wait_for("alice", &[holding]);
    tmux.start_sized("carol", &on(lan.host(1), &dir_a, "HOSTA", "CAROL"), 22);
    tmux.wait_for("carol", &["network role: another process"]);
    tmux.start_sized("bob", &on(lan.host(2), &dir_b, "HOSTB", "BOB"), 22);
    tmux.wait_for("bob", &[holding]);
    frame(
        "alice$ mailslot chat --from ALICE   (HOSTA, just started)",
        "alice",
    );

    tmux.say("bob", "Lunch at noon? Everyone welcome.");
    tmux.wait_for("alice", &["Lunch at noon"]);
    tmux.wait_for("carol", &["Lunch at noon"]);
    tmux.target("alice", "HOSTB");
    tmux.say("alice", "Yes! See you at 12 at the usual place.");
    tmux.wait_for("bob", &["See you at 12"]);
    tmux.wait_for("alice", &["✓ sent"]);
    let status = Command::new("ip")
        .args(["netns", "exec", lan.host(1), "env"])
        .arg(format!("MAILSLOT_DIR={}", dir_a.path()))
        .args([BIN, "--no-network", "send", "MESSNGR"])
        .args(["Grüße aus Köln: the build is green.", "--messenger"])
        .args(["--from", "JÖRG", "--to-user", "OFFICE"])
        .status()
        .unwrap();
    assert!(status.success());
    tmux.wait_for("alice", &["Grüße"]);
    tmux.wait_for("carol", &["Grüße"]);
    frame(
        "bob$ mailslot chat --from BOB   (HOSTB: Bob broadcast to *, Alice answered to HOSTB)",
        "bob",
    );
    frame(
        "carol$ mailslot chat --from CAROL   (HOSTA, second window: sees every popup of the host)",
        "carol",
    );

    tmux.type_text("alice", &"very long ".repeat(45));
    tmux.key("alice", "Enter");
    tmux.wait_for("alice", &["too long for HOSTB"]);
    frame(
        "alice$ (HOSTA: a text longer than a MESSNGR datagram takes is refused, not cut)",
        "alice",
    );
    tmux.key("alice", "C-u");

    kill9(chat_pid(tmux.pane_pid("alice")));
    tmux.wait_for("carol", &["now holds the network role"]);
    tmux.say("bob", "Carol, are you still there?");
    tmux.wait_for("carol", &["still there"]);
    frame(
        "carol$ (HOSTA: Alice's chat was killed with kill -9; Carol's took the network role over)",
        "carol",
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/chat-session.txt");
    std::fs::write(&path, out).unwrap();
    eprintln!("wrote {}", path.display());
}

/// A user of this host for the terminal-server test (created once with `useradd`).
fn test_user(name: &str) -> u32 {
    let _ = Command::new("useradd")
        .args(["--no-create-home", "--shell", "/usr/sbin/nologin", name])
        .output();
    let out = Command::new("id").args(["-u", name]).output().expect("id");
    assert!(out.status.success(), "user {name} could not be created");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The seed's scenario: a terminal server (host A) where two users each run `mailslot
/// --global chat`, sharing the host's MESSNGR through the host service, which holds UDP 138
/// for the host; host B on the virtual LAN broadcasts a popup, and both users see it; one user
/// writes to the other, who sees the sender's uid as the kernel reported it.
#[test]
fn two_users_of_a_terminal_server_share_messngr_and_the_lan() {
    if !have_tmux()
        || !skip::require(is_root(), "root (for users and network namespaces)")
        || !skip::require(
            Command::new("ip")
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success())
                && Command::new("setpriv").arg("--version").output().is_ok(),
            "ip (iproute2) or setpriv (util-linux) is not installed",
        )
    {
        return;
    }
    let (alice_uid, bob_uid) = (test_user("ms-chat-alice"), test_user("ms-chat-bob"));
    // The users run a copy of the binary they can reach, in directories of their own.
    let tools = PrivateDir::new();
    std::fs::set_permissions(&tools.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = tools.0.join("mailslot");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = bin.to_str().unwrap().to_owned();
    let user_dir = |uid: u32| {
        let dir = PrivateDir::new();
        std::os::unix::fs::chown(&dir.0, Some(uid), Some(uid)).unwrap();
        dir
    };
    let (alice_rt, bob_rt) = (user_dir(alice_uid), user_dir(bob_uid));
    let global = tools.0.join("global");

    let lan = Lan::new(2);
    let tmux = Tmux::new();
    // Host A's service, in host A's namespace, holding UDP 138 as HOSTA.
    tmux.start(
        "service",
        &format!(
            "exec ip netns exec {} env MAILSLOT_NETBIOS_NAME=HOSTA MAILSLOT_WORKGROUP=TESTGROUP \
             {} serve --system --global-dir {}",
            shell_quote(lan.host(1)),
            shell_quote(&bin),
            shell_quote(global.to_str().unwrap())
        ),
    );
    tmux.wait_for("service", &["holding the network role on 0.0.0.0:138"]);
    let chat_as = |user: &str, rt: &PrivateDir, from: &str| {
        format!(
            "exec ip netns exec {} setpriv --reuid {user} --regid {user} --init-groups -- env \
             MAILSLOT_GLOBAL_DIR={} MAILSLOT_DIR={} MAILSLOT_NETBIOS_NAME=HOSTA \
             MAILSLOT_WORKGROUP=TESTGROUP {} --global chat --from {from}",
            shell_quote(lan.host(1)),
            shell_quote(global.to_str().unwrap()),
            shell_quote(rt.path()),
            shell_quote(&bin),
        )
    };
    tmux.start("alice", &chat_as("ms-chat-alice", &alice_rt, "ALICE"));
    tmux.start("bob", &chat_as("ms-chat-bob", &bob_rt, "BOB"));
    for who in ["alice", "bob"] {
        tmux.wait_for(who, &["network: the host service (UDP 138)"]);
    }

    // A popup broadcast from host B reaches both users' chats on host A.
    let carol_rt = PrivateDir::new();
    let out = Command::new("ip")
        .args(["netns", "exec", lan.host(2), "env"])
        .arg(format!("MAILSLOT_DIR={}", carol_rt.path()))
        .args([
            "MAILSLOT_NETBIOS_NAME=HOSTB",
            "MAILSLOT_WORKGROUP=TESTGROUP",
            BIN,
        ])
        .args([
            "send",
            "MESSNGR",
            "lunch at noon",
            "--messenger",
            "--from",
            "CAROL",
        ])
        .args(["--to-user", "TESTGROUP", "--to", "*"])
        .output()
        .expect("send from host B");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for who in ["alice", "bob"] {
        tmux.wait_for(
            who,
            &["CAROL@HOSTB (10.98.0.2) → TESTGROUP", "  lunch at noon"],
        );
    }

    // Alice writes to this host's MESSNGR: Bob sees her uid, as the kernel reported it.
    tmux.target("alice", ".");
    tmux.say("alice", "hello bob, from alice");
    tmux.wait_for(
        "bob",
        &[
            "ALICE@HOSTA (this host, pid ",
            &format!(", uid {alice_uid})"),
            "  hello bob, from alice",
        ],
    );
}
