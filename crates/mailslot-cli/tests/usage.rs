//! The `mailslot` command as a new user meets it, one test per rough edge a review found:
//! where options are shown, examples and exit codes, completions and man pages, decode's
//! standard input, `status` of a name that is not open, `send -v`, a standby `serve`, the
//! capacity in effect, a symlinked directory, the network role's one line, logging, process
//! names and `status --watch`.
//!
//! Each test runs the built binary in a runtime directory of its own, on loopback and
//! unprivileged ports; waits are hang guards only.

#[path = "../../mailslot/tests/common/scratch.rs"]
mod scratch;
#[path = "../../mailslot/tests/common/skip.rs"]
mod skip;

use scratch::Scratch;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mailslot");
/// Only a guard against hangs.
const GUARD: Duration = Duration::from_secs(20);
const SUBCOMMANDS: [&str; 9] = [
    "listen",
    "send",
    "status",
    "decode",
    "demo",
    "chat",
    "serve",
    "completions",
    "man",
];

/// The binary with `args`, in runtime directory `dir` (none: no `MAILSLOT_DIR`), with none of
/// the settings of the environment the tests run in.
fn command(dir: Option<&Path>, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for var in [
        "MAILSLOT_DIR",
        "MAILSLOT_PORT",
        "MAILSLOT_NETBIOS_NAME",
        "MAILSLOT_WORKGROUP",
        "MAILSLOT_NO_NETWORK",
        "MAILSLOT_GLOBAL_DIR",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    if let Some(dir) = dir {
        cmd.env("MAILSLOT_DIR", dir);
    }
    cmd
}

/// Runs to the end with `stdin` as its standard input (empty if `None`).
fn run_with(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mailslot");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input).unwrap();
    }
    drop(pipe);
    Proc::wait_output(child)
}

fn run(dir: Option<&Path>, args: &[&str]) -> Output {
    run_with(command(dir, args), None)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `mailslot`, its stderr lines arriving on a channel; killed on drop.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mailslot");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stderr line (from now on) containing `needle`.
    fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("never said {needle:?}; said {:?}", self.seen),
            }
        }
    }

    /// Sends `signal` to this child (by its pid) and returns its exit code and the rest of
    /// its stderr.
    fn stop(mut self, signal: i32) -> (i32, Vec<String>) {
        // Our own child, by its pid.
        let rc = send_signal(self.child.id(), signal);
        assert!(rc, "kill {}", self.child.id());
        let code = wait_code(&mut self.child);
        let mut rest = std::mem::take(&mut self.seen);
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            rest.push(line);
        }
        (code, rest)
    }

    /// Waits (with the guard) for `child` to end and collects its output.
    fn wait_output(mut child: Child) -> Output {
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = stdout.read_to_end(&mut v);
            v
        });
        let err = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = stderr.read_to_end(&mut v);
            v
        });
        let deadline = Instant::now() + GUARD;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mailslot still running after {GUARD:?}: killed");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Output {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill -SIGNAL PID` through kill(1), so that the tests need no `unsafe`.
fn send_signal(pid: u32, signal: i32) -> bool {
    Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_code(child: &mut Child) -> i32 {
    let deadline = Instant::now() + GUARD;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "mailslot did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A free UDP port pair (datagram, name service) in 20000..32000 (below the ephemeral range).
fn ports() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    for _ in 0..1000 {
        let i = NEXT.fetch_add(2, Ordering::Relaxed);
        let p = 20_000 + ((std::process::id() as usize * 31 + i * 2 + 3000) % 12_000) as u16;
        let a = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p));
        let b = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p + 1));
        if a.is_ok() && b.is_ok() {
            return p;
        }
    }
    panic!("no free port pair");
}

/// `listen NAME` with no network role, waited for until it listens.
fn listener(dir: &Path, name: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["listen", name, "--no-network"];
    args.extend_from_slice(extra);
    let mut proc = Proc::spawn(command(Some(dir), &args));
    proc.wait_line("listening on");
    proc
}

/// A "section" of `--help`: the lines from `heading` to the next blank line.
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

fn help_of(sub: Option<&str>) -> String {
    let mut args: Vec<&str> = sub.into_iter().collect();
    args.push("--help");
    let out = run(None, &args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn options_are_shown_once_and_only_where_they_apply() {
    let top = help_of(None);
    for heading in ["Global options:", "Scope options:", "Network options:"] {
        assert_eq!(top.matches(heading).count(), 1, "{heading}\n{top}");
    }
    assert_eq!(top.matches("--share-port").count(), 1, "{top}");
    // decode takes --port only (137 decodes the name service); completions and man nothing.
    let decode = help_of(Some("decode"));
    for absent in [
        "--share-port",
        "--dir",
        "--global",
        "--netbios-name",
        "--bind",
        "Scope options:",
    ] {
        assert!(!decode.contains(absent), "decode --help offers {absent}");
    }
    assert!(
        section(&decode, "Network options:")
            .iter()
            .any(|l| l.contains("--port")),
        "{decode}"
    );
    for sub in ["completions", "man", "demo"] {
        let help = help_of(Some(sub));
        for absent in ["--port", "--dir", "--global", "--share-port"] {
            assert!(!help.contains(absent), "{sub} --help offers {absent}");
        }
        assert!(help.contains("Global options:"), "{sub}: -v/-q apply");
    }
    let listen = help_of(Some("listen"));
    assert_eq!(listen.matches("--share-port").count(), 1, "{listen}");
    assert!(section(&listen, "Scope options:")
        .iter()
        .any(|l| l.contains("--global")));
    // Ahead of the subcommand, as before, and after it: the same.
    let dir = Scratch::dir("ms-usage", "where");
    let d = dir.path().to_str().unwrap();
    for args in [["--dir", d, "status"], ["status", "--dir", d]] {
        let out = run(None, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("runtime directory: {d}")));
    }
    // An option given ahead of a subcommand that does not take it is a usage error.
    let out = run(None, &["--share-port", "decode", "00"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("--share-port") && err.contains("decode"),
        "{err}"
    );
}

#[test]
fn help_shows_examples_and_the_exit_codes_the_readme_gives() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let using = readme
        .split("## Using the command")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a \"Using the command\" section");
    let codes = [(0, "success"), (1, "error"), (2, "usage"), (3, "timeout")];
    for (code, word) in codes {
        assert!(
            using.contains(&format!("{code} {word}")),
            "README \"Using the command\" does not say \"{code} {word}\""
        );
    }
    for sub in std::iter::once(None).chain(SUBCOMMANDS.iter().copied().map(Some)) {
        let help = help_of(sub);
        let examples = section(&help, "Examples:");
        assert!(
            examples
                .iter()
                .any(|l| l.trim_start().starts_with("mailslot ")
                    || l.trim_start().starts_with("sudo ")),
            "{sub:?}: no example\n{help}"
        );
        if let Some(sub) = sub {
            assert!(
                examples.iter().any(|l| l.contains(&format!(" {sub}"))),
                "{sub}: no example of {sub}\n{help}"
            );
        }
        let exit = section(&help, "Exit codes:");
        for (code, word) in codes {
            assert!(
                exit.iter()
                    .any(|l| l.trim_start().starts_with(&format!("{code}  {word}"))),
                "{sub:?}: exit code {code} ({word}) missing: {exit:?}"
            );
        }
    }
}

#[test]
fn completions_and_man_pages_come_from_the_binary() {
    let bash = run(None, &["completions", "bash"]);
    assert!(bash.status.success());
    let dir = Scratch::dir("ms-usage", "completions");
    let script = dir.path().join("mailslot.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p mailslot",
            script.display()
        ))
        .output()
        .expect("bash");
    assert!(
        loaded.status.success() && text(&loaded.stdout).contains("mailslot"),
        "{}{}",
        text(&loaded.stdout),
        text(&loaded.stderr)
    );
    let zsh = text(&run(None, &["completions", "zsh"]).stdout);
    assert!(zsh.starts_with("#compdef mailslot"), "{zsh:.80}");
    let fish = text(&run(None, &["completions", "fish"]).stdout);
    assert!(fish.contains("complete -c mailslot"), "{fish:.200}");
    for sub in ["listen", "--share-port"] {
        assert!(bash.stdout.windows(sub.len()).any(|w| w == sub.as_bytes()));
    }

    let page = text(&run(None, &["man"]).stdout);
    assert!(page.contains(".TH mailslot 1"), "{page:.200}");
    for needed in [".SH EXAMPLES", ".SH \"EXIT STATUS\"", "GLOBAL OPTIONS"] {
        assert!(page.contains(needed), "mailslot(1) lacks {needed}");
    }
    for sub in SUBCOMMANDS {
        let page = text(&run(None, &["man", sub]).stdout);
        assert!(
            page.contains(&format!(".TH mailslot\\-{sub} 1"))
                || page.contains(&format!(".TH mailslot-{sub} 1")),
            "{sub}: {page:.200}"
        );
        let examples = page.split(".SH EXAMPLES").nth(1).unwrap_or_default();
        assert!(
            examples.contains(&format!("mailslot {sub}")),
            "mailslot-{sub}(1) has no example of it"
        );
    }
    let out = run(None, &["man", "nosuch"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // man(1) renders it, where it is installed (CI installs man-db).
    match Command::new("man").arg("--version").output() {
        Ok(_) => {
            let page_file = dir.path().join("mailslot.1");
            std::fs::write(&page_file, &page).unwrap();
            let shown = Command::new("man")
                .arg("-l")
                .arg(&page_file)
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "100")
                .output()
                .expect("man -l");
            let shown = text(&shown.stdout);
            assert!(
                shown.contains("EXIT STATUS") && shown.contains("mailslot listen NEWS"),
                "{shown}"
            );
        }
        Err(_) => {
            skip::skip(
                "man (apt-get install man-db) not installed; the page was checked as roff only",
            );
        }
    }
}

#[test]
fn decode_reads_hex_on_stdin_and_no_input_is_a_usage_error() {
    // A datagram as `send --dry-run` builds it.
    let out = run(
        None,
        &[
            "send",
            "NEWS",
            "hello",
            "--to",
            "*",
            "--dry-run",
            "--netbios-name",
            "HOSTA",
            "--bind",
            "127.0.0.1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hex = text(&out.stdout);
    let argument = run(None, &["decode", hex.trim()]);
    assert!(argument.status.success(), "{}", text(&argument.stderr));
    let piped = run_with(command(None, &["decode"]), Some(hex.as_bytes()));
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    assert_eq!(piped.stdout, argument.stdout);
    let v: Value = serde_json::from_slice(&piped.stdout).unwrap();
    assert_eq!(v["data_text"], "hello");

    for empty in [&b""[..], b"  \n"] {
        let out = run_with(command(None, &["decode"]), Some(empty));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("nothing to decode"), "{err}");
        assert!(out.stdout.is_empty());
    }
    let out = run_with(command(None, &["decode"]), Some(b"11 0z"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "bad hex is bad input, not usage"
    );
}

#[test]
fn status_of_a_name_that_is_not_open_is_an_error() {
    let dir = Scratch::dir("ms-usage", "nosuch");
    let _open = listener(dir.path(), "OPEN", &[]);
    let out = run(Some(dir.path()), &["status", "OPEN"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("OPEN"));
    for json in [false, true] {
        let mut args = vec!["status", "NOSUCH"];
        if json {
            args.push("--json");
        }
        let out = run(Some(dir.path()), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("mailslot: ") && err.contains("\"NOSUCH\"") && err.contains("not open"),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    }
}

#[test]
fn send_verbose_says_how_it_was_sent_in_user_words() {
    let dir = Scratch::dir("ms-usage", "sendv");
    let port = ports();
    let peer = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).unwrap();
    peer.set_read_timeout(Some(GUARD)).unwrap();
    let p = port.to_string();
    let args = [
        "send",
        "NEWS",
        "hello",
        "--to",
        "127.0.0.1",
        "--port",
        &p,
        "--netbios-name",
        "HOSTA",
    ];
    let quiet = run(Some(dir.path()), &args);
    assert!(quiet.status.success(), "{}", text(&quiet.stderr));
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet.stderr));
    let mut buf = [0u8; 1024];
    peer.recv_from(&mut buf).expect("the first datagram");

    let mut verbose_args = args.to_vec();
    verbose_args.push("-v");
    let out = run(Some(dir.path()), &verbose_args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, from) = peer.recv_from(&mut buf).expect("the second datagram");
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    // Nobody holds the role in this directory: a temporary port, said as such.
    assert!(
        err.contains("from a temporary port")
            && err.contains("no process of this host holds the network role")
            && err.contains(&format!("127.0.0.1:{port}"))
            && err.contains(&format!("(source port {})", from.port())),
        "{err}"
    );
    for internal in ["Ephemeral", "Handoff", "via "] {
        assert!(!err.contains(internal), "{err}");
    }
}

#[test]
fn a_standby_serve_does_not_claim_to_release_a_role_it_never_held() {
    let dir = Scratch::dir("ms-usage", "standby");
    let port = ports();
    let serve = || {
        Proc::spawn(command(
            Some(dir.path()),
            &[
                "serve",
                "--port",
                &port.to_string(),
                "--name-service-port",
                &(port + 1).to_string(),
                "--bind",
                "127.0.0.1",
            ],
        ))
    };
    let mut holder = serve();
    holder.wait_line("holding the network role");
    let mut standby = serve();
    standby.wait_line("waiting for the network role");
    let (code, said) = standby.stop(15);
    assert_eq!(code, 0, "{said:?}");
    assert!(
        said.iter()
            .any(|l| l.contains("never held the network role")),
        "{said:?}"
    );
    assert!(!said.iter().any(|l| l.contains("released")), "{said:?}");
    let (code, said) = holder.stop(15);
    assert_eq!(code, 0, "{said:?}");
    assert!(
        said.iter().any(|l| l.contains("released the network role")),
        "{said:?}"
    );
}

#[test]
fn the_capacity_in_effect_is_shown_by_listen_v_and_status() {
    let dir = Scratch::dir("ms-usage", "capacity");
    let mut proc = Proc::spawn(command(
        Some(dir.path()),
        &[
            "listen",
            "SMALL",
            "--capacity",
            "1000",
            "--max-size",
            "100",
            "--no-network",
            "-v",
        ],
    ));
    let line = proc.wait_line("capacity");
    let said: u64 = line
        .split("capacity ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line:?}"));
    assert!(line.contains("asked for 1000"), "{line}");
    // Rounded up (a whole page of ring at least), never down.
    assert!(said > 1000, "{line}");
    proc.wait_line("listening on");
    let out = run(Some(dir.path()), &["status", "SMALL", "--json"]);
    let v: Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["capacity"].as_u64(), Some(said), "{v}");
    let human = text(&run(Some(dir.path()), &["status"]).stdout);
    assert!(human.contains(&format!("capacity {said} bytes")), "{human}");
    let help = help_of(Some("listen"));
    assert!(
        help.contains("rounded up"),
        "--capacity's help says it is a minimum"
    );
}

#[test]
fn a_symlinked_directory_is_refused_in_one_line_naming_it() {
    let dir = Scratch::dir("ms-usage", "symlink");
    let target = dir.path().join("real");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let to_dir = dir.path().join("link-to-dir");
    let dangling = dir.path().join("link-to-nothing");
    std::os::unix::fs::symlink(&target, &to_dir).unwrap();
    std::os::unix::fs::symlink(dir.path().join("nothing"), &dangling).unwrap();
    for link in [&to_dir, &dangling] {
        let l = link.to_str().unwrap();
        for args in [
            vec!["status"],
            vec!["listen", "X", "--no-network"],
            vec!["serve", "--system", "--no-network", "--global-dir", l],
        ] {
            let dir_env = (args[0] != "serve").then_some(link.as_path());
            let out = run(dir_env, &args);
            assert_eq!(out.status.code(), Some(1), "{args:?} in {l}");
            let err = text(&out.stderr);
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(
                err.contains(l) && err.contains("symbolic link") && !err.contains("os error"),
                "{args:?}: {err}"
            );
        }
    }
    assert!(
        !dir.path().join("nothing").exists(),
        "nothing was created through the link"
    );
}

#[test]
fn the_network_role_is_one_line_saying_what_was_opened_or_why_not() {
    let dir = Scratch::dir("ms-usage", "role");
    let port = ports();
    let p = port.to_string();
    let listen = |extra: &[&str]| {
        let mut args = vec![
            "listen",
            "ROLE",
            "--port",
            &p,
            "--no-name-service",
            "--timeout",
            "300",
        ];
        args.extend_from_slice(extra);
        run(Some(dir.path()), &args)
    };
    // The port free: this listen takes the role and says what it opened.
    let out = listen(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let opened: Vec<&str> = err.lines().filter(|l| l.contains("opened UDP")).collect();
    assert_eq!(opened.len(), 1, "{err}");
    assert!(opened[0].contains(&format!("0.0.0.0:{port}")), "{err}");
    assert!(opened[0].contains("name service: off"), "{err}");
    // The port taken by another program: one short line, without the remedies.
    let squatter = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).unwrap();
    let out = listen(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let lan: Vec<&str> = err.lines().filter(|l| l.contains("LAN")).collect();
    assert_eq!(lan.len(), 1, "{err}");
    assert!(
        lan[0].contains(&format!("UDP port {port} is in use")) && !lan[0].contains("Remedies"),
        "{err}"
    );
    assert!(lan[0].len() < 160, "one short line: {}", lan[0]);
    // -q: nothing at all on stderr, either way.
    let out = listen(&["-q"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    drop(squatter);
    let out = listen(&["-q"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn logging_follows_v_q_and_rust_log_and_json_stays_pure() {
    let dir = Scratch::dir("ms-usage", "logging");
    let port = ports();
    // Something to send to (nothing reads it: the datagrams stay in its buffer).
    let _peer = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).unwrap();
    let p = port.to_string();
    let send = ["send", "NEWS", "hi", "--to", "127.0.0.1", "--port", &p];
    let stderr_of = |extra: &[&str], rust_log: Option<&str>| {
        let mut args = send.to_vec();
        args.extend_from_slice(extra);
        let mut cmd = command(Some(dir.path()), &args);
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let out = run_with(cmd, None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    assert_eq!(stderr_of(&[], None), "");
    assert!(stderr_of(&["-v"], None).starts_with("mailslot: debug: sent "));
    assert!(stderr_of(&[], Some("mailslot=debug")).starts_with("mailslot: debug: sent "));
    assert_eq!(stderr_of(&["-q"], Some("mailslot=debug")), "");
    assert_eq!(stderr_of(&[], Some("mailslot=warn")), "");

    // listen -v --json: diagnostics on stderr, nothing but JSON on stdout.
    let child = command(
        Some(dir.path()),
        &[
            "listen",
            "PURE",
            "--json",
            "--count",
            "1",
            "--no-network",
            "-vv",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + GUARD;
    while !run(Some(dir.path()), &["send", "PURE", "one"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "listen never opened PURE");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Proc::wait_output(child);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    for line in stdout.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    }
    assert!(
        text(&out.stderr).contains("mailslot: debug: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn status_names_each_process_and_watch_redraws_until_interrupted() {
    let dir = Scratch::dir("ms-usage", "watch");
    let _first = listener(dir.path(), "FIRST", &[]);
    let out = run(Some(dir.path()), &["status", "--json"]);
    let v: Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["instances"][0]["process"], "mailslot", "{v}");
    let human = text(&run(Some(dir.path()), &["status"]).stdout);
    assert!(human.contains(" process "), "{human}");
    let row = human
        .lines()
        .find(|l| l.contains(&format!("{}", v["instances"][0]["pid"])))
        .unwrap_or_else(|| panic!("{human}"));
    assert!(row.contains("mailslot"), "{row}");

    let mut watch = command(Some(dir.path()), &["status", "--watch"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = watch.stdout.take().unwrap();
    let (tx, frames) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut text = String::new();
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            // Each frame starts by homing the cursor and clearing the screen.
            while let Some(start) = text.find("\x1b[H\x1b[2J") {
                let rest = &text[start + 7..];
                let Some(end) = rest.find("\x1b[H") else {
                    break;
                };
                let _ = tx.send(rest[..end].to_owned());
                text = rest[end..].to_owned();
            }
        }
    });
    let next_frame = |what: &str| {
        frames
            .recv_timeout(GUARD)
            .unwrap_or_else(|_| panic!("no frame {what}"))
    };
    let first = next_frame("at all");
    assert!(first.contains("FIRST"), "{first}");
    let _second = listener(dir.path(), "SECOND", &[]);
    let deadline = Instant::now() + GUARD;
    loop {
        let frame = next_frame("after SECOND opened");
        if frame.contains("SECOND") {
            assert!(frame.contains("FIRST"), "{frame}");
            break;
        }
        assert!(Instant::now() < deadline, "SECOND never shown: {frame}");
    }
    assert!(send_signal(watch.id(), 2), "SIGINT");
    assert_eq!(wait_code(&mut watch), 0, "Ctrl-C ends --watch with 0");
}

/// An option on the command line beats its environment variable, ahead of the subcommand as
/// after it (the Python tests found `--netbios-name` ahead of `send` losing to
/// MAILSLOT_NETBIOS_NAME); a variable that does not parse is a usage error naming it.
#[test]
fn options_beat_their_environment_variables_wherever_they_are_given() {
    let dir = Scratch::dir("ms-usage", "envprec");
    let port = ports();
    let peer = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).unwrap();
    peer.set_read_timeout(Some(GUARD)).unwrap();
    let p = port.to_string();
    let send = ["send", "NEWS", "hi", "--to", "127.0.0.1", "--port", &p];
    // SOURCE_NAME: 32 bytes of first-level encoding after the 14-byte header and its length.
    let source_name = |peer: &UdpSocket| {
        let mut buf = [0u8; 1024];
        let (n, _) = peer.recv_from(&mut buf).expect("a datagram");
        let enc = &buf[15..47];
        let name: Vec<u8> = enc
            .chunks(2)
            .map(|c| ((c[0] - b'A') << 4) | (c[1] - b'A'))
            .collect();
        assert!(n > 47);
        String::from_utf8_lossy(&name[..15]).trim_end().to_string()
    };
    let mut ahead = vec!["--netbios-name", "FLAGNAME"];
    ahead.extend_from_slice(&send);
    let mut after = send.to_vec();
    after.extend_from_slice(&["--netbios-name", "FLAGNAME"]);
    for (args, want) in [
        (&ahead, "FLAGNAME"),
        (&after, "FLAGNAME"),
        (&send.to_vec(), "ENVNAME"),
    ] {
        let mut cmd = command(Some(dir.path()), args);
        cmd.env("MAILSLOT_NETBIOS_NAME", "ENVNAME");
        let out = run_with(cmd, None);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(source_name(&peer), want, "{args:?}");
    }
    let mut cmd = command(Some(dir.path()), &["status"]);
    cmd.env("MAILSLOT_PORT", "not-a-port");
    let out = run_with(cmd, None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("MAILSLOT_PORT"), "{err}");
}
