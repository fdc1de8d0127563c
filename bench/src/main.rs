//! `mailslot-bench`: cross-process benchmarks of mailslot against baselines and peers measured
//! in the same run, printed as markdown tables of ratios against the performance targets.
//!
//! ```text
//! mailslot-bench fanout  [--messages N] [--sizes 64,1024] [--readers 1,2,4,8] [--rounds R]
//!                        [--peers mailslot,mailslot-global,unix-dgram,zmq,iceoryx2]
//!                        [--capacity BYTES] [--overflow drop|refuse|block] [--out FILE]
//! mailslot-bench latency [--iterations N] [--warmup N]
//!                        [--placements same-core,cross-core,unpinned] [--repeat 3]
//!                        [--peers mailslot,mailslot-global,futex,futex-yield,eventfd,
//!                                 unix-dgram,zmq,iceoryx2] [--out FILE]
//! mailslot-bench takeover [--kills 100] [--pool 3] [--interval-us 1000] [--out FILE]
//! mailslot-bench netrecv [--datagrams 50000] [--instances 4] [--size 64] [--net-rounds 3]
//!                        [--senders 3] [--rcvbuf 1048576]
//! mailslot-bench oneshot [--ops 20000]
//! mailslot-bench large   [--large-sizes 16384,262144,1048576] [--large-readers 1,2,4]
//!                        [--large-bytes 16777216] [--large-rounds 3]
//!                        [--large-peers mailslot,unix-dgram,zmq,iceoryx2]
//!                        [--recv-iterations 200]
//! mailslot-bench footprint [--footprint-messages 200000] [--footprint-rounds 3]
//!                        [--footprint-instances 128] [--footprint-capacities 65536,1048576]
//!                        [--footprint-max-messages 64,65536]
//! mailslot-bench all     [options of all of them] [--out FILE]
//! ```
//!
//! Every process of a scenario is this binary re-executed with the hidden `__child` command,
//! so readers and writers are real processes. What it does not do: assert anything (it is a
//! measuring tool, not a test), or run peers that were not compiled in (cargo features
//! `peers-zmq`, `peers-iceoryx2`).

mod args;
mod fanout;
mod footprint;
mod global;
mod large;
mod latency;
mod netrecv;
mod oneshot;
mod peers;
mod proc;
mod report;
mod sys;
mod takeover;

use std::process::ExitCode;

use args::Args;
use proc::BenchResult;
use report::{Record, Table};

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Cost per delivered message, one writer to k blocking readers.
    Fanout,
    /// One-way blocking latency, ping-pong between two processes.
    Latency,
    /// Network role takeover after `kill -9` of its holder.
    Takeover,
    /// Datagrams/s delivered from the network into a shared name with 4 instances, against a
    /// bare UDP receive loop and a bare loop forwarding to 4 processes.
    Netrecv,
    /// Open a writer, write one message, close: against a Unix datagram one-shot.
    Oneshot,
    /// Fan-out of 16 KiB to 1 MiB messages against a memcpy floor; recv_into of 1 MiB.
    Large,
    /// Write cost with 127 idle instances against 1; memory of a name against its bound.
    Footprint,
}

impl Scenario {
    const ALL: [Scenario; 7] = [
        Scenario::Fanout,
        Scenario::Latency,
        Scenario::Takeover,
        Scenario::Netrecv,
        Scenario::Oneshot,
        Scenario::Large,
        Scenario::Footprint,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Latency => "latency",
            Scenario::Takeover => "takeover",
            Scenario::Netrecv => "netrecv",
            Scenario::Oneshot => "oneshot",
            Scenario::Large => "large",
            Scenario::Footprint => "footprint",
        }
    }

    /// Whether this build can run it.
    fn implemented(self) -> bool {
        true
    }

    fn run(self, args: &Args) -> BenchResult<(Vec<Table>, Vec<Record>)> {
        match self {
            Scenario::Fanout => fanout::run(&fanout::Options::from_args(args)?),
            Scenario::Latency => latency::run(&latency::Options::from_args(args)?),
            Scenario::Takeover => takeover::run(&takeover::Options::from_args(args)?),
            Scenario::Netrecv => netrecv::run(&netrecv::Options::from_args(args)?),
            Scenario::Oneshot => oneshot::run(&oneshot::Options::from_args(args)?),
            Scenario::Large => large::run(&large::Options::from_args(args)?),
            Scenario::Footprint => footprint::run(&footprint::Options::from_args(args)?),
        }
    }
}

const USAGE: &str = "usage: mailslot-bench \
<fanout|latency|takeover|netrecv|oneshot|large|footprint|all> [options]
  fanout  [--messages 20000] [--sizes 64,1024] [--readers 1,2,4,8] [--rounds 3]
          [--peers mailslot,mailslot-global,unix-dgram,zmq,iceoryx2]
          [--capacity BYTES] [--overflow drop|refuse|block]
  latency [--iterations 20000] [--warmup N] [--placements same-core,cross-core,unpinned]
          [--repeat 3 (runs of the unpinned placement)]
          [--peers mailslot,mailslot-global,futex,futex-yield,eventfd,unix-dgram,zmq,iceoryx2]
  takeover [--kills 100] [--pool 3] [--interval-us 1000]
  netrecv [--datagrams 50000] [--instances 4] [--size 64] [--net-rounds 3] [--senders 3]
          [--rcvbuf 1048576]
  oneshot [--ops 20000]
  large   [--large-sizes 16384,262144,1048576] [--large-readers 1,2,4] [--large-bytes 16777216]
          [--large-rounds 3] [--large-peers mailslot,unix-dgram,zmq,iceoryx2]
          [--recv-iterations 200]
  footprint [--footprint-messages 200000] [--footprint-rounds 3] [--footprint-instances 128]
          [--footprint-capacities 65536,1048576] [--footprint-max-messages 64,65536]
  all     options of all of them (--peers applies to fanout and latency)
  every scenario: [--out FILE]  raw numbers as JSON (FILE ends in .json) or CSV";

fn main() -> ExitCode {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let result = match words.first().map(String::as_str) {
        Some("__child") => child(&words[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(command) => run(command, &words[1..]),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if words.first().map(String::as_str) == Some("__child") {
                // The parent reads our stdout; an `error` line fails the scenario at once.
                proc::report(&format!("error {}", e.replace('\n', " ")));
            }
            eprintln!("mailslot-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: &str, rest: &[String]) -> BenchResult<()> {
    let args = Args::parse(rest)?;
    let scenarios: Vec<Scenario> = match command {
        "all" => {
            let mut keys: Vec<&str> = fanout::Options::KEYS.to_vec();
            keys.extend(latency::Options::KEYS);
            keys.extend(takeover::Options::KEYS);
            keys.extend(netrecv::Options::KEYS);
            keys.extend(oneshot::Options::KEYS);
            keys.extend(large::Options::KEYS);
            keys.extend(footprint::Options::KEYS);
            args.only(&keys)?;
            Scenario::ALL
                .into_iter()
                .filter(|s| s.implemented())
                .collect()
        }
        name => {
            let scenario = Scenario::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| format!("unknown scenario `{name}`\n{USAGE}"))?;
            match scenario {
                Scenario::Fanout => args.only(fanout::Options::KEYS)?,
                Scenario::Latency => args.only(latency::Options::KEYS)?,
                Scenario::Takeover => args.only(takeover::Options::KEYS)?,
                Scenario::Netrecv => args.only(netrecv::Options::KEYS)?,
                Scenario::Oneshot => args.only(oneshot::Options::KEYS)?,
                Scenario::Large => args.only(large::Options::KEYS)?,
                Scenario::Footprint => args.only(footprint::Options::KEYS)?,
            }
            vec![scenario]
        }
    };
    let environment = Environment::probe();
    let mut records = vec![environment.record()];
    println!("{}\n", environment.line());
    for scenario in scenarios {
        // With `all`, --peers lists peers of both scenarios: each takes the ones it runs.
        let (tables, mut raw) = scenario.run(&args)?;
        for table in tables {
            println!("{}", table.markdown());
        }
        records.append(&mut raw);
    }
    if let Some(out) = args.str("out") {
        let text = report::render_raw(&records, out.ends_with(".json"));
        std::fs::write(out, text).map_err(|e| format!("cannot write {out}: {e}"))?;
        eprintln!("raw numbers written to {out}");
    }
    Ok(())
}

/// The conditions of a run: printed as one line above the tables, and the first record of the
/// raw output (scenario `environment`), so a report can be generated from the raw file alone.
struct Environment {
    cpus: usize,
    model: String,
    kernel: String,
    load: [f64; 3],
    qlen: String,
    /// The bench's effective uid (root: the global scope's clients run as other users).
    uid: u32,
    /// Unix time of the start of the run.
    started: u64,
    /// `MAILSLOT_BENCH_SOURCE` (e.g. `git describe --dirty`, set by scripts/bench-report.sh).
    source: String,
    command: String,
}

impl Environment {
    fn probe() -> Environment {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "?".into())
        };
        let model = read("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or("?".to_owned(), |s| s.trim().to_owned());
        let loadavg = read("/proc/loadavg");
        let mut load = loadavg.split_whitespace();
        let mut next = || load.next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        Environment {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            model,
            kernel: read("/proc/sys/kernel/osrelease"),
            load: [next(), next(), next()],
            qlen: read("/proc/sys/net/unix/max_dgram_qlen"),
            uid: sys::euid(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            source: std::env::var("MAILSLOT_BENCH_SOURCE").unwrap_or_default(),
            command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        }
    }

    fn build() -> &'static str {
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    }

    fn line(&self) -> String {
        format!(
            "Conditions: {} CPUs ({}), Linux {}, load average {:.2} {:.2} {:.2} at start, \
             net.unix.max_dgram_qlen = {}, mailslot-bench {} ({} build), run as uid {} ({}).",
            self.cpus,
            self.model,
            self.kernel,
            self.load[0],
            self.load[1],
            self.load[2],
            self.qlen,
            env!("CARGO_PKG_VERSION"),
            Environment::build(),
            self.uid,
            if self.uid == 0 {
                "root: mailslot-global's clients run as other users"
            } else {
                "not root: mailslot-global's clients and service all run as this one user"
            }
        )
    }

    fn record(&self) -> Record {
        let features: Vec<&str> = [
            (cfg!(feature = "peers-zmq"), "peers-zmq"),
            (cfg!(feature = "peers-iceoryx2"), "peers-iceoryx2"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        Record::new(
            "environment",
            vec![
                ("cpus", self.cpus.into()),
                ("cpu_model", self.model.as_str().into()),
                ("kernel", self.kernel.as_str().into()),
                ("load1", self.load[0].into()),
                ("load5", self.load[1].into()),
                ("load15", self.load[2].into()),
                (
                    "max_dgram_qlen",
                    self.qlen
                        .parse::<u64>()
                        .map_or_else(|_| self.qlen.as_str().into(), Into::into),
                ),
                ("uid", u64::from(self.uid).into()),
                ("version", env!("CARGO_PKG_VERSION").into()),
                ("build", Environment::build().into()),
                ("features", features.join(",").as_str().into()),
                ("started_unix", self.started.into()),
                ("source", self.source.as_str().into()),
                ("command", self.command.as_str().into()),
            ],
        )
    }
}

fn child(words: &[String]) -> BenchResult<()> {
    sys::die_with_parent().map_err(|e| format!("child setup: {e}"))?;
    let (role, rest) = words.split_first().ok_or("__child needs a role")?;
    let args = Args::parse(rest)?;
    match role.as_str() {
        "fanout-reader" => fanout::reader_main(&args),
        "fanout-writer" => fanout::writer_main(&args),
        "latency" => latency::child_main(&args),
        "host-service" => global::service_main(&args),
        "net-role" => takeover::child_main(&args),
        "flock-holder" => takeover::flock_main(&args),
        "udp-recv" => netrecv::udp_main(&args),
        "udp-forward" => netrecv::forward_main(&args),
        "fwd-instance" => netrecv::fwd_instance_main(&args),
        "netrecv-sender" => netrecv::sender_main(&args),
        "netrecv-instance" => netrecv::instance_main(&args),
        "netrecv-role" => netrecv::role_main(&args),
        "oneshot-writer" => oneshot::writer_main(&args),
        "oneshot-receiver" => oneshot::receiver_main(&args),
        "footprint-instances" => footprint::instances_main(&args),
        "footprint-writer" => footprint::writer_main(&args),
        "footprint-reader" => footprint::reader_main(&args),
        other => Err(format!("unknown child role `{other}`")),
    }
}
