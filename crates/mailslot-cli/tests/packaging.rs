//! The systemd unit of the host service (`packaging/systemd/mailslot.service`), checked offline
//! with `systemd-analyze` on a copy whose `ExecStart=` runs the binary just built:
//!
//! - `verify` accepts it without a word about it (unknown keys, bad values, a missing
//!   executable are all reported as lines naming the unit);
//! - `security --offline=yes` rates its sandbox no worse than measured when it was written.
//!
//! Nothing is started: no running systemd is needed (containers included).
//!
//! The Debian package (`scripts/build-deb.sh`, cargo-deb) is built, installed with `dpkg -i`,
//! used (`mailslot --version`, `man mailslot`, the bash completion loads) and removed.
//!
//! And the repository as shipped: no tracked file refers to design notes the repository does
//! not ship (`no_tracked_file_cites_unshipped_documents`).
//!
//! Tool policy: without `systemd-analyze` (or root, dpkg, cargo-deb and man for the package)
//! a test skips (`skip.rs`: counted as skipped by `scripts/test.sh`), unless `CI` is set,
//! where it fails. Each command runs with a deadline that only guards against hangs.

#[path = "../../mailslot/tests/common/skip.rs"]
mod skip;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mailslot");
const UNIT_NAME: &str = "mailslot.service";
/// The path `ExecStart=` names in the shipped unit.
const INSTALLED_BIN: &str = "/usr/bin/mailslot";
/// Only a guard against hangs; `systemd-analyze` normally answers within a second.
const DEADLINE: Duration = Duration::from_secs(60);

/// Overall exposure, in tenths, that `systemd-analyze security --offline=yes` printed for the
/// unit with systemd 252 (Debian 12): "1.5 OK". What remains is inherent to a LAN service
/// holding UDP 137/138: host network (PrivateNetwork=, IPAddressDeny=), AF_INET/AF_UNIX/
/// AF_NETLINK sockets, CAP_NET_BIND_SERVICE (ambient), no PrivateUsers= (it would void the
/// capability in the host's network namespace), the rtc device ProtectClock= allows, UMask=0022,
/// the host's root directory, and no ProcSubset=pid (it hides /proc/net/udp, read to name the
/// program holding the port).
const MEASURED_EXPOSURE_TENTHS: u32 = 15;
/// `--threshold=` (tenths of the printed exposure): a little above the measured score, so that
/// scoring changes of a newer systemd do not fail the test, while a lost hardening line does.
const THRESHOLD_TENTHS: u32 = 17;

fn unit_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/systemd/mailslot.service")
}

/// A private directory holding a copy of the unit whose `ExecStart=` runs the built binary;
/// removed on drop.
struct UnitCopy {
    dir: PathBuf,
}

impl UnitCopy {
    fn new(tag: &str) -> UnitCopy {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ms-packaging-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();

        let bin = Path::new(BIN);
        assert!(bin.is_absolute(), "binary path is not absolute: {BIN}");
        let text = std::fs::read_to_string(unit_source()).expect("read the unit");
        let exec = format!("ExecStart={INSTALLED_BIN} ");
        assert_eq!(
            text.lines().filter(|l| l.starts_with(&exec)).count(),
            1,
            "the unit must have exactly one `{exec}...` line"
        );
        let copy = text.replace(&exec, &format!("ExecStart={} ", bin.display()));
        std::fs::write(dir.join(UNIT_NAME), copy).unwrap();
        UnitCopy { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(UNIT_NAME)
    }
}

impl Drop for UnitCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The outcome of one command: whether it exited 0, and stdout then stderr.
struct Run {
    success: bool,
    status: String,
    output: String,
}

/// Runs `systemd-analyze` with `args` and no pager or colours; `None` if it is not installed.
/// Panics (after killing it) when it outlives [`DEADLINE`].
fn systemd_analyze(args: &[&str]) -> Option<Run> {
    let mut child = match Command::new("systemd-analyze")
        .arg("--no-pager")
        .args(args)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "cat")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    };
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for systemd-analyze") {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("systemd-analyze {args:?} still running after {DEADLINE:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = stdout.join().expect("stdout reader");
    output.push_str(&stderr.join().expect("stderr reader"));
    Some(Run {
        success: status.success(),
        status: status.to_string(),
        output,
    })
}

/// Reads a pipe to its end on a thread (so that a full pipe never blocks the child).
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = pipe.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// `true` when `systemd-analyze` is installed; otherwise skips (a failure under CI).
fn require_systemd_analyze() -> bool {
    skip::require(
        systemd_analyze(&["--version"]).is_some(),
        "systemd-analyze (apt-get install systemd)",
    )
}

/// The overall exposure in tenths from `security`'s last line, e.g.
/// `→ Overall exposure level for mailslot.service: 1.5 OK 🙂` gives 15.
fn overall_exposure_tenths(output: &str) -> Option<u32> {
    let line = output
        .lines()
        .find(|l| l.contains("Overall exposure level for"))?;
    let score = line.rsplit_once(": ")?.1.split_whitespace().next()?;
    let (units, tenths) = score.split_once('.')?;
    Some(units.parse::<u32>().ok()? * 10 + tenths.parse::<u32>().ok()?)
}

#[test]
fn unit_verifies() {
    if !require_systemd_analyze() {
        return;
    }
    let unit = UnitCopy::new("verify");
    let path = unit.path();
    // --man=no: a Documentation=man: entry would otherwise run man(1), absent from minimal
    // systems. No running systemd is needed: verify loads the unit in a test manager.
    let run = systemd_analyze(&["--man=no", "verify", path.to_str().unwrap()]).unwrap();
    let about_unit: Vec<&str> = run
        .output
        .lines()
        .filter(|l| l.contains(UNIT_NAME))
        .collect();
    assert!(
        run.success && about_unit.is_empty(),
        "systemd-analyze verify {}: {}\n{}",
        path.display(),
        run.status,
        run.output
    );
}

#[test]
fn unit_security_exposure() {
    if !require_systemd_analyze() {
        return;
    }
    let unit = UnitCopy::new("security");
    let path = unit.path();
    let threshold = format!("--threshold={THRESHOLD_TENTHS}");
    let run = systemd_analyze(&[
        "security",
        "--offline=yes",
        &threshold,
        path.to_str().unwrap(),
    ])
    .unwrap();
    assert!(
        run.success,
        "systemd-analyze security {threshold} {}: {}\n{}",
        path.display(),
        run.status,
        run.output
    );
    let exposure = overall_exposure_tenths(&run.output).unwrap_or_else(|| {
        panic!(
            "no overall exposure in the output of systemd-analyze security:\n{}",
            run.output
        )
    });
    assert!(
        exposure <= MEASURED_EXPOSURE_TENTHS,
        "overall exposure {}.{} is above the measured {}.{}:\n{}",
        exposure / 10,
        exposure % 10,
        MEASURED_EXPOSURE_TENTHS / 10,
        MEASURED_EXPOSURE_TENTHS % 10,
        run.output
    );
}

#[test]
fn exposure_line_parses() {
    assert_eq!(
        overall_exposure_tenths("x\n→ Overall exposure level for mailslot.service: 1.5 OK 🙂\n"),
        Some(15)
    );
    assert_eq!(
        overall_exposure_tenths("→ Overall exposure level for a.service: 9.6 UNSAFE 😨"),
        Some(96)
    );
    assert_eq!(overall_exposure_tenths("nothing"), None);
}

/// The Debian package, built by `scripts/build-deb.sh`, installed with `dpkg -i`, used and
/// removed with `dpkg -r`. Needs root, dpkg and cargo-deb (CI has them: `.ci/run`); it does
/// not replace a `mailslot` another install put in /usr/bin (outside CI it skips then).
#[test]
fn deb_installs_a_working_command_man_pages_and_completions() {
    const DEB_GUARD: Duration = Duration::from_secs(40 * 60);
    let ci = skip::ci();
    if !std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
    {
        return skip::skip("needs root (dpkg -i)");
    }
    for (tool, install) in [
        ("dpkg", "a Debian system"),
        ("cargo-deb", "cargo install cargo-deb --locked"),
        ("man", "apt-get install man-db"),
    ] {
        if !Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return skip::skip(&format!("{tool} is not installed ({install})"));
        }
    }
    let installed = |path: &str| {
        Command::new("dpkg")
            .args(["-S", path])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if Path::new("/usr/bin/mailslot").exists() && !ci {
        return skip::skip("/usr/bin/mailslot exists already: not replacing it");
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = run_guarded(
        Command::new("bash")
            .arg(root.join("scripts/build-deb.sh"))
            .current_dir(&root),
        DEB_GUARD,
    );
    assert!(
        built.success,
        "build-deb.sh: {}\n{}",
        built.status, built.output
    );
    let deb = built
        .output
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .map(|l| root.join(l.trim()))
        .unwrap_or_else(|| panic!("build-deb.sh named no .deb:\n{}", built.output));

    /// Removes the package however the test ends.
    struct Installed;
    impl Drop for Installed {
        fn drop(&mut self) {
            let _ = Command::new("dpkg").args(["-r", "mailslot"]).output();
        }
    }
    let dpkg = run_guarded(Command::new("dpkg").arg("-i").arg(&deb), DEADLINE);
    let package = Installed;
    assert!(dpkg.success, "dpkg -i {}: {}", deb.display(), dpkg.output);
    assert!(
        installed("/usr/bin/mailslot"),
        "dpkg does not own /usr/bin/mailslot"
    );

    let version = run_guarded(Command::new("/usr/bin/mailslot").arg("--version"), DEADLINE);
    assert_eq!(
        version.output.trim(),
        format!("mailslot {}", env!("CARGO_PKG_VERSION"))
    );
    for page in ["mailslot", "mailslot-listen", "mailslot-status"] {
        let man = run_guarded(
            Command::new("man")
                .arg(page)
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "100"),
            DEADLINE,
        );
        assert!(
            man.success && man.output.contains("EXIT STATUS") && man.output.contains("EXAMPLES"),
            "man {page}: {}\n{}",
            man.status,
            man.output
        );
    }
    let completion = run_guarded(
        Command::new("bash").args([
            "-c",
            "source /usr/share/bash-completion/completions/mailslot && complete -p mailslot",
        ]),
        DEADLINE,
    );
    assert!(
        completion.success && completion.output.contains("mailslot"),
        "{}",
        completion.output
    );
    for file in [
        "/usr/share/zsh/vendor-completions/_mailslot",
        "/usr/share/fish/vendor_completions.d/mailslot.fish",
        "/usr/share/doc/mailslot/LICENSE-MIT",
        "/usr/share/doc/mailslot/LICENSE-APACHE",
    ] {
        assert!(installed(file), "{file} is not in the package");
    }
    assert_eq!(
        std::fs::read_to_string("/usr/lib/systemd/system/mailslot.service").unwrap(),
        std::fs::read_to_string(unit_source()).unwrap(),
        "the package's unit is packaging/systemd/mailslot.service"
    );

    drop(package);
    assert!(
        !Path::new("/usr/bin/mailslot").exists() && !installed("/usr/bin/mailslot"),
        "dpkg -r left /usr/bin/mailslot"
    );
}

/// Runs `cmd` to its end (stdout then stderr in `output`); panics after killing it when it
/// outlives `guard`.
fn run_guarded(cmd: &mut Command, guard: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > guard {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {guard:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = stdout.join().expect("stdout reader");
    output.push_str(&stderr.join().expect("stderr reader"));
    Run {
        success: status.success(),
        status: status.to_string(),
        output,
    }
}

/// The documents of the project's early design and research lived outside the repository; a
/// fresh clone (CI's, a user's) has none of them, so no tracked file may point to one: the
/// project's own pages are in `docs/`. Checked over `git ls-files` (every file when git is not
/// there), with the files the benchmark report regenerates left out until it is regenerated:
/// `bench/plot.py`, `bench/src/`, `scripts/bench-report.sh`, `docs/perf*.md` and README's
/// generated block.
#[test]
fn no_tracked_file_cites_unshipped_documents() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Spelled in parts so that this file does not cite them itself.
    let cited: Vec<String> = ["DESIGN", "PROTOCOL", "SEMANTICS", "STYLE"]
        .iter()
        .map(|d| format!("{d}.md"))
        .chain(["../", "/work/"].map(|dir| format!("{dir}shared")))
        .chain([format!("lab/{}", "REPORT")])
        .collect();
    let regenerated = |path: &str| {
        path == "bench/plot.py"
            || path.starts_with("bench/src/")
            || path == "scripts/bench-report.sh"
            || (path.starts_with("docs/perf") && path.ends_with(".md"))
    };
    let mut offenders = Vec::new();
    let files = tracked_files(&root);
    assert!(
        files.iter().any(|f| f == "README.md"),
        "no files found under {}",
        root.display()
    );
    for file in files.iter().filter(|f| !regenerated(f)) {
        let Ok(bytes) = std::fs::read(root.join(file)) else {
            continue; // deleted in the working tree
        };
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if file == "README.md" {
            text = without_generated_block(&text);
        }
        for (n, line) in text.lines().enumerate() {
            if let Some(doc) = cited.iter().find(|c| line.contains(c.as_str())) {
                offenders.push(format!("{file}:{}: cites {doc}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "{} line(s) cite documents the repository does not ship (say the thing, or point to \
         docs/):\n{}",
        offenders.len(),
        offenders.join("\n")
    );
}

/// Tracked files relative to `root`: `git ls-files`, or every file outside build and tool
/// directories when this is not a git checkout.
fn tracked_files(root: &Path) -> Vec<String> {
    let git = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .stderr(Stdio::null())
        .output();
    if let Some(out) = git
        .ok()
        .filter(|o| o.status.success() && !o.stdout.is_empty())
    {
        return out
            .stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
    }
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = dir.join(&name);
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "corpus") {
                    dirs.push(rel);
                }
            } else if kind.is_file() {
                files.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    files
}

/// README without the block `scripts/bench-report.sh` regenerates (its lines become empty, so
/// line numbers stay right).
fn without_generated_block(text: &str) -> String {
    let mut inside = false;
    text.lines()
        .map(|line| {
            if line.starts_with("<!-- bench-report:begin") {
                inside = true;
            }
            let kept = if inside { "" } else { line };
            if line.starts_with("<!-- bench-report:end") {
                inside = false;
            }
            kept
        })
        .collect::<Vec<_>>()
        .join("\n")
}
