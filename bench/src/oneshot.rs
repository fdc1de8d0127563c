//! `oneshot`: the cost of one message to a name nobody keeps open for writing: open a writer,
//! write one message, close it; against the Unix datagram one-shot (socket, sendto, close).
//!
//! One writer process does `--ops` one-shots in a row and times each (monotonic clock around
//! the whole open-write-close); a receiver process drains the name (or the socket) meanwhile,
//! so neither queue fills. Reported per operation: wall time (p50, p99, mean), the writer's
//! CPU (getrusage) and, when `perf` is installed and allowed, the system calls: the writer is
//! run twice more under `perf stat -e raw_syscalls:sys_enter`, with `--ops` one-shots and with
//! none, and the difference is divided by `--ops` (so start-up and exit do not count).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use mailslot::{Scope, Server, Timeout, Writer};

use crate::args::{child_args, Args};
use crate::proc::{self, BenchResult, Child, Launch, TempDir};
use crate::report::{Record, Table};
use crate::sys::{self, Usage};

const NAME: &str = "bench-oneshot";
const SIZE: usize = 64;

#[derive(Debug, Clone)]
pub struct Options {
    pub ops: usize,
}

impl Options {
    pub const KEYS: &'static [&'static str] = &["ops", "out"];

    pub fn from_args(args: &Args) -> BenchResult<Options> {
        let options = Options {
            ops: args.get("ops", 20_000)?,
        };
        if options.ops == 0 {
            return Err("oneshot needs --ops >= 1".into());
        }
        Ok(options)
    }
}

/// The ways of sending one message: a writer opened and dropped each time, the one-shot
/// function (`mailslot::write`, which keeps its writer and asks the kernel about the server on
/// each write, as an open would), and a datagram socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mailslot,
    MailslotWrite,
    UnixDgram,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Mailslot, Kind::MailslotWrite, Kind::UnixDgram];

    fn name(self) -> &'static str {
        match self {
            Kind::Mailslot => "mailslot",
            Kind::MailslotWrite => "mailslot-write",
            Kind::UnixDgram => "unix-dgram",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Mailslot => "Writer::open_in + write + drop",
            Kind::MailslotWrite => "mailslot::write",
            Kind::UnixDgram => "socket + sendto + close",
        }
    }

    fn parse(s: &str) -> BenchResult<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown one-shot kind `{s}`"))
    }
}

struct Outcome {
    kind: Kind,
    p50: f64,
    p99: f64,
    mean: f64,
    cpu_ns: f64,
    syscalls: Option<f64>,
}

fn socket_path(dir: &Path) -> PathBuf {
    dir.join("oneshot.sock")
}

/// Runs a writer (`ops` one-shots) to the end; returns its `done` line.
fn writer(kind: Kind, dir: &Path, ops: usize, launch: &Launch) -> BenchResult<proc::Line> {
    let mut w = Child::spawn_with(
        &format!("{} one-shot writer", kind.name()),
        &child_args(
            "oneshot-writer",
            &[
                ("kind", kind.name().to_owned()),
                ("dir", dir.display().to_string()),
                ("ops", ops.to_string()),
            ],
        ),
        launch,
    )?;
    w.expect("ready")?;
    w.send("go")?;
    let done = w.expect("done")?;
    w.finish()?;
    Ok(done)
}

/// System calls per one-shot: `perf stat` on a writer with `ops` one-shots and on one with
/// none. `None` when perf cannot count.
fn count_syscalls(kind: Kind, dir: &Path, ops: usize) -> BenchResult<Option<f64>> {
    let count = |n: usize| -> BenchResult<Option<u64>> {
        let out = TempDir::reserve("perf");
        let launch = Launch {
            wrapper: Some(vec![
                "perf".into(),
                "stat".into(),
                "-x,".into(),
                "-e".into(),
                "raw_syscalls:sys_enter".into(),
                "-o".into(),
                out.path().display().to_string(),
                "--".into(),
            ]),
            ..Launch::default()
        };
        if writer(kind, dir, n, &launch).is_err() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(out.path()).unwrap_or_default();
        let _ = std::fs::remove_file(out.path());
        Ok(text
            .lines()
            .find(|l| l.contains("raw_syscalls:sys_enter"))
            .and_then(|l| l.split(',').next())
            .and_then(|v| v.trim().parse().ok()))
    };
    if std::process::Command::new("perf")
        .arg("--version")
        .output()
        .is_err()
    {
        return Ok(None);
    }
    match (count(ops)?, count(0)?) {
        (Some(with), Some(without)) => Ok(Some(with.saturating_sub(without) as f64 / ops as f64)),
        _ => Ok(None),
    }
}

fn run_one(kind: Kind, options: &Options) -> BenchResult<Outcome> {
    let dir = TempDir::new("oneshot")?;
    let counted = (options.ops / 4).max(100);
    let mut receiver = Child::spawn(
        &format!("{} one-shot receiver", kind.name()),
        &child_args(
            "oneshot-receiver",
            &[
                ("kind", kind.name().to_owned()),
                ("dir", dir.path().display().to_string()),
                ("expect", (options.ops + counted).to_string()),
            ],
        ),
    )?;
    receiver.expect("ready")?;
    let done = writer(kind, dir.path(), options.ops, &Launch::default())?;
    let syscalls = count_syscalls(kind, dir.path(), counted)?;
    if syscalls.is_some() {
        receiver.expect("done")?;
    }
    drop(receiver);
    Ok(Outcome {
        kind,
        p50: done.f64("p50")?,
        p99: done.f64("p99")?,
        mean: done.f64("mean")?,
        cpu_ns: done.f64("cpu")?,
        syscalls,
    })
}

pub fn run(options: &Options) -> BenchResult<(Vec<Table>, Vec<Record>)> {
    let mut outcomes = Vec::new();
    for kind in Kind::ALL {
        eprintln!("oneshot: {} ...", kind.name());
        outcomes.push(run_one(kind, options)?);
    }
    let base = outcomes
        .iter()
        .find(|o| o.kind == Kind::UnixDgram)
        .map(|o| (o.p50, o.cpu_ns, o.syscalls));
    let mut table = Table::new(
        format!("one-shot: open, write one {SIZE}-byte message, close (ns per operation)"),
        &[
            "peer",
            "operation",
            "p50",
            "p99",
            "mean",
            "writer CPU",
            "syscalls/op",
            "p50 vs dgram",
            "CPU vs dgram",
        ],
    );
    let mut records = Vec::new();
    for o in &outcomes {
        let ratio = |mine: f64, theirs: Option<f64>| {
            theirs.map_or("-".into(), |t| format!("{:.2}", mine / t))
        };
        table.row(vec![
            o.kind.name().into(),
            o.kind.what().into(),
            format!("{:.0}", o.p50),
            format!("{:.0}", o.p99),
            format!("{:.0}", o.mean),
            format!("{:.0}", o.cpu_ns),
            o.syscalls.map_or("?".into(), |s| format!("{s:.1}")),
            ratio(o.p50, base.map(|b| b.0)),
            ratio(o.cpu_ns, base.map(|b| b.1)),
        ]);
        records.push(Record::new(
            "oneshot",
            vec![
                ("peer", o.kind.name().into()),
                ("p50_ns", o.p50.into()),
                ("p99_ns", o.p99.into()),
                ("mean_ns", o.mean.into()),
                ("cpu_ns", o.cpu_ns.into()),
                ("syscalls", o.syscalls.unwrap_or(f64::NAN).into()),
                ("ops", options.ops.into()),
            ],
        ));
    }
    table.note(format!(
        "{} one-shots per peer in one writer process, each timed around the whole \
         open-write-close; a receiver process drains meanwhile. mailslot: a shared-memory name \
         in a private runtime directory (Writer::open_in maps the name's file, write appends, \
         drop unmaps); unix-dgram: an unbound SOCK_DGRAM socket, sendto the receiver's path, \
         close. writer CPU = user+sys / ops (getrusage). syscalls/op = (perf stat \
         raw_syscalls:sys_enter of a writer doing n one-shots - of one doing none) / n, n = {}; \
         `?` when perf is missing or not allowed.",
        options.ops,
        (options.ops / 4).max(100)
    ));
    Ok((vec![table], records))
}

// ---- child roles -------------------------------------------------------------------------

/// Receives one message into the buffer.
type RecvFn = dyn FnMut(&mut [u8]) -> BenchResult<()>;

/// `__child oneshot-receiver`: opens the name (or binds the socket), drains `--expect`
/// messages, reports `done`.
pub fn receiver_main(args: &Args) -> BenchResult<()> {
    let kind = Kind::parse(args.required("kind")?)?;
    let dir = PathBuf::from(args.required("dir")?);
    let expect: u64 = args.need("expect")?;
    let mut buf = vec![0u8; 4 * SIZE];
    let mut recv: Box<RecvFn> = match kind {
        Kind::Mailslot | Kind::MailslotWrite => {
            let mut server = Server::builder(NAME)
                .scope(Scope::Dir(dir))
                .read_timeout(Timeout::Forever)
                .open()
                .map_err(|e| format!("oneshot receiver: {e}"))?;
            Box::new(move |buf| {
                server
                    .recv_into(buf)
                    .map(drop)
                    .map_err(|e| format!("oneshot receiver: {e}"))
            })
        }
        Kind::UnixDgram => {
            let socket = UnixDatagram::bind(socket_path(&dir))
                .map_err(|e| format!("oneshot receiver: bind: {e}"))?;
            Box::new(move |buf| {
                socket
                    .recv(buf)
                    .map(drop)
                    .map_err(|e| format!("oneshot receiver: {e}"))
            })
        }
    };
    proc::report("ready");
    for _ in 0..expect {
        recv(&mut buf)?;
    }
    proc::report("done");
    while proc::next_command().is_some() {}
    Ok(())
}

/// `__child oneshot-writer`: on `go`, `--ops` one-shots; reports `done` with the per-op times.
pub fn writer_main(args: &Args) -> BenchResult<()> {
    let kind = Kind::parse(args.required("kind")?)?;
    let dir = PathBuf::from(args.required("dir")?);
    let ops: usize = args.need("ops")?;
    let scope = Scope::Dir(dir.clone());
    let path = socket_path(&dir);
    let message = [0x5au8; SIZE];
    // The one-shot function writes the user scope: this process's user scope is `dir`.
    std::env::set_var("MAILSLOT_DIR", &dir);
    proc::report("ready");
    if proc::next_command().as_deref() != Some("go") {
        return Err("expected `go`".into());
    }
    let mut times = Vec::with_capacity(ops);
    let before = Usage::now();
    for _ in 0..ops {
        let start = sys::monotonic_ns();
        match kind {
            Kind::Mailslot => {
                let mut writer =
                    Writer::open_in(&scope, NAME).map_err(|e| format!("open writer: {e}"))?;
                writer.write(&message).map_err(|e| format!("write: {e}"))?;
            }
            Kind::MailslotWrite => {
                mailslot::write(NAME, &message).map_err(|e| format!("write: {e}"))?;
            }
            Kind::UnixDgram => {
                let socket = UnixDatagram::unbound().map_err(|e| format!("socket: {e}"))?;
                socket
                    .send_to(&message, &path)
                    .map_err(|e| format!("sendto: {e}"))?;
            }
        }
        times.push(sys::monotonic_ns() - start);
    }
    let cpu = Usage::now().since(before).cpu_ns();
    times.sort_unstable();
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q).ceil() as usize).clamp(1, times.len().max(1)) - 1)
            .copied()
            .unwrap_or(0)
    };
    let mean = times.iter().sum::<u64>() as f64 / times.len().max(1) as f64;
    proc::report(&format!(
        "done p50={} p99={} mean={mean} cpu={}",
        at(0.5),
        at(0.99),
        cpu as f64 / ops.max(1) as f64
    ));
    while proc::next_command().is_some() {}
    Ok(())
}
