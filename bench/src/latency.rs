//! `latency`: one-way blocking latency of a 64-byte message between two processes.
//!
//! Ping sends to pong's inbox and blocks on its own; pong echoes. Ping times every round trip
//! with the monotonic clock; one-way = RTT / 2. Both sides block (no spinning) in every peer,
//! so this is the cost of a send, a wake-up and a receive. Placements: both processes pinned to
//! the same core, pinned to different cores, and left to the scheduler.
//!
//! The global-scope peer (`mailslot-global`) goes through the host service, a third process
//! (`crate::global`): pinned to CPU 0 with both sides in the same-core placement, left to the
//! scheduler otherwise. As root, ping and pong run as two other users.

use std::fs::File;
use std::os::fd::AsRawFd;

use crate::args::{child_args, Args};
use crate::global::{Role, Service, Users};
use crate::peers::{self, futex, Peer, Side};
use crate::proc::{self, BenchResult, Child, Launch, TempDir};
use crate::report::{Record, Table};
use crate::sys;

pub const MESSAGE_SIZE: usize = 64;

/// Where the two processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    SameCore,
    CrossCore,
    Unpinned,
}

impl Placement {
    pub const ALL: [Placement; 3] = [
        Placement::SameCore,
        Placement::CrossCore,
        Placement::Unpinned,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placement::SameCore => "same-core",
            Placement::CrossCore => "cross-core",
            Placement::Unpinned => "unpinned",
        }
    }

    /// CPUs of (ping, pong), `None` = not pinned.
    fn cpus(self) -> (Option<usize>, Option<usize>) {
        match self {
            Placement::SameCore => (Some(0), Some(0)),
            Placement::CrossCore => (Some(0), Some(1)),
            Placement::Unpinned => (None, None),
        }
    }
}

impl std::str::FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> Result<Placement, String> {
        Placement::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown placement `{s}`"))
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub iterations: usize,
    pub warmup: usize,
    pub placements: Vec<Placement>,
    pub peers: Vec<Peer>,
    /// Runs of the unpinned placement (fresh processes each).
    pub repeat: usize,
}

impl Options {
    pub const KEYS: &'static [&'static str] = &[
        "iterations",
        "warmup",
        "placements",
        "peers",
        "repeat",
        "out",
    ];

    pub fn from_args(args: &Args) -> BenchResult<Options> {
        let iterations: usize = args.get("iterations", 20_000)?;
        let options = Options {
            iterations,
            warmup: args.get("warmup", (iterations / 10).max(100))?,
            placements: args.list("placements", &Placement::ALL)?,
            repeat: args.get("repeat", 3)?,
            peers: args.list(
                "peers",
                &[
                    Peer::Mailslot,
                    Peer::MailslotGlobal,
                    Peer::Futex,
                    Peer::FutexYield,
                    Peer::Eventfd,
                    Peer::UnixDgram,
                    Peer::Zmq,
                    Peer::Iceoryx2,
                ],
            )?,
        };
        if options.iterations == 0 || options.repeat == 0 {
            return Err("--iterations must be at least 1".into());
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus < 2 && options.placements.contains(&Placement::CrossCore) {
            return Err("cross-core placement needs 2 CPUs".into());
        }
        Ok(options)
    }
}

/// One-way latency distribution of one configuration, in nanoseconds.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub peer: Peer,
    pub placement: Placement,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub samples: u64,
    /// Lowest and highest p50 over the repeated runs (unpinned placement).
    pub p50_range: (f64, f64),
    pub runs: usize,
    /// Receives (both sides) that waited out the global peer's guard timeout.
    pub stalls: u64,
}

/// Unmeasured round trips first. A mailslot's ring (default capacity) is lapped once, so its
/// pages are resident as in a long-lived name: in a fresh ring every 36th 64-byte message
/// touches a new page and pays a page fault on both sides, which would be all of its p99.
fn warmup_for(peer: Peer, options: &Options) -> usize {
    match peer {
        Peer::Mailslot | Peer::MailslotGlobal => options
            .warmup
            .max(peers::mailslot::messages_to_lap(mailslot::DEFAULT_CAPACITY, MESSAGE_SIZE) + 100),
        _ => options.warmup,
    }
}

fn run_one(
    peer: Peer,
    placement: Placement,
    options: &Options,
    users: Option<&Users>,
) -> BenchResult<Outcome> {
    let dir = TempDir::new("latency")?;
    // The global scope's host service, on the pair's core when both share one.
    let service = match (peer, users) {
        (Peer::MailslotGlobal, Some(users)) => {
            let cpu = (placement == Placement::SameCore).then_some(0);
            Some((Service::start(cpu)?, users))
        }
        (Peer::MailslotGlobal, None) => return Err("mailslot-global needs its users".into()),
        _ => None,
    };
    let mut pairs = vec![
        ("peer", peer.name().to_owned()),
        ("dir", dir.path().display().to_string()),
        ("iterations", options.iterations.to_string()),
        ("warmup", warmup_for(peer, options).to_string()),
    ];
    // Per-peer setup the two sides share: the futex words file, the eventfds.
    let mut inherited: Vec<std::os::fd::OwnedFd> = Vec::new();
    match peer {
        Peer::Futex | Peer::FutexYield => {
            let path = dir.path().join(futex::FILE_NAME);
            File::create(&path)
                .and_then(|f| f.set_len(8))
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        }
        Peer::Eventfd => {
            for side in [Side::Ping, Side::Pong] {
                let fd = sys::eventfd_inheritable().map_err(|e| format!("eventfd: {e}"))?;
                pairs.push(match side {
                    Side::Ping => ("fd-ping", fd.as_raw_fd().to_string()),
                    Side::Pong => ("fd-pong", fd.as_raw_fd().to_string()),
                });
                inherited.push(fd);
            }
        }
        _ => {}
    }
    let (ping_cpu, pong_cpu) = placement.cpus();
    let spawn = |side: Side, cpu: Option<usize>| {
        let mut p = pairs.clone();
        p.push(("side", side.name().to_owned()));
        if let Some(cpu) = cpu {
            p.push(("cpu", cpu.to_string()));
        }
        let launch = match &service {
            Some((service, users)) => users.launch(
                match side {
                    Side::Ping => Role::Ping,
                    Side::Pong => Role::Pong,
                },
                service,
            ),
            None => Launch::default(),
        };
        Child::spawn_with(
            &format!("{} {} ({})", peer.name(), side.name(), placement.name()),
            &child_args("latency", &p),
            &launch,
        )
    };
    let mut pong = spawn(Side::Pong, pong_cpu)?;
    pong.expect("ready")?;
    let mut ping = spawn(Side::Ping, ping_cpu)?;
    ping.expect("ready")?;
    // Both have their descriptors now; ours would only keep the eventfds alive.
    drop(inherited);
    // Both at once: a peer may need the other side's inbox to be serviced while it connects.
    pong.send("go")?;
    ping.send("go")?;
    pong.expect("connected")?;
    let result = ping.expect("result")?;
    let stalls = result.u64("stalls")? + pong.expect("stalls")?.u64("n")?;
    proc::finish_all(vec![ping, pong])?;
    if let Some((service, _)) = service {
        service.finish()?;
    }
    Ok(Outcome {
        peer,
        placement,
        p50: result.f64("p50")?,
        p99: result.f64("p99")?,
        p999: result.f64("p999")?,
        min: result.f64("min")?,
        mean: result.f64("mean")?,
        max: result.f64("max")?,
        samples: result.u64("samples")?,
        p50_range: (0.0, 0.0),
        runs: 1,
        stalls,
    })
}

pub fn run(options: &Options) -> BenchResult<(Vec<Table>, Vec<Record>)> {
    let mut outcomes = Vec::new();
    let mut skipped = Vec::new();
    for &peer in &options.peers {
        if let Some(feature) = peer.missing_feature() {
            skipped.push(format!("{} (build with --features {feature})", peer.name()));
        }
    }
    let users = if options.peers.contains(&Peer::MailslotGlobal) {
        Some(Users::new()?)
    } else {
        None
    };
    for &placement in &options.placements {
        for &peer in options
            .peers
            .iter()
            .filter(|p| p.does_latency() && p.missing_feature().is_none())
        {
            // Unpinned, the scheduler sometimes keeps both on one core and sometimes not, for
            // a whole run: repeat it and report the median run plus the spread.
            let runs = if placement == Placement::Unpinned {
                options.repeat
            } else {
                1
            };
            let mut all = Vec::with_capacity(runs);
            for run in 0..runs {
                eprintln!(
                    "latency: {} {} (run {}/{runs}) ...",
                    peer.name(),
                    placement.name(),
                    run + 1
                );
                all.push(run_one(peer, placement, options, users.as_ref())?);
            }
            all.sort_by(|a, b| a.p50.total_cmp(&b.p50));
            let range = (all[0].p50, all[all.len() - 1].p50);
            let mut median = all.swap_remove(all.len() / 2);
            median.p50_range = range;
            median.runs = runs;
            outcomes.push(median);
        }
    }
    Ok(tables(options, &outcomes, &skipped, users.as_ref()))
}

fn tables(
    options: &Options,
    outcomes: &[Outcome],
    skipped: &[String],
    users: Option<&Users>,
) -> (Vec<Table>, Vec<Record>) {
    let mut table = Table::new(
        format!("latency, one-way, {MESSAGE_SIZE}-byte messages (ns)"),
        &[
            "placement",
            "peer",
            "p50",
            "p99",
            "p99.9",
            "min",
            "mean",
            "p50 over runs",
            "p50 vs futex",
            "p99 vs futex",
            "p50 vs futex-yield",
            "p99 vs futex-yield",
            "p50 vs eventfd",
            "p99 vs eventfd",
        ],
    );
    let mut records = Vec::new();
    for &placement in &options.placements {
        let base = |peer: Peer| {
            outcomes
                .iter()
                .find(|o| o.peer == peer && o.placement == placement)
        };
        for o in outcomes.iter().filter(|o| o.placement == placement) {
            let ratio = |mine: f64, theirs: Option<f64>| {
                theirs.map_or("-".into(), |t| format!("{:.2}", mine / t))
            };
            let futex = base(Peer::Futex);
            let futex_yield = base(Peer::FutexYield);
            let eventfd = base(Peer::Eventfd);
            table.row(vec![
                placement.name().to_owned(),
                o.peer.name().to_owned(),
                format!("{:.0}", o.p50),
                format!("{:.0}", o.p99),
                format!("{:.0}", o.p999),
                format!("{:.0}", o.min),
                format!("{:.0}", o.mean),
                if o.runs > 1 {
                    format!("{:.0}..{:.0} ({})", o.p50_range.0, o.p50_range.1, o.runs)
                } else {
                    "-".into()
                },
                ratio(o.p50, futex.map(|b| b.p50)),
                ratio(o.p99, futex.map(|b| b.p99)),
                ratio(o.p50, futex_yield.map(|b| b.p50)),
                ratio(o.p99, futex_yield.map(|b| b.p99)),
                ratio(o.p50, eventfd.map(|b| b.p50)),
                ratio(o.p99, eventfd.map(|b| b.p99)),
            ]);
            records.push(Record::new(
                "latency",
                vec![
                    ("peer", o.peer.name().into()),
                    ("placement", o.placement.name().into()),
                    ("p50_ns", o.p50.into()),
                    ("p99_ns", o.p99.into()),
                    ("p999_ns", o.p999.into()),
                    ("min_ns", o.min.into()),
                    ("mean_ns", o.mean.into()),
                    ("max_ns", o.max.into()),
                    ("samples", o.samples.into()),
                    ("runs", o.runs.into()),
                    ("p50_min_over_runs_ns", o.p50_range.0.into()),
                    ("p50_max_over_runs_ns", o.p50_range.1.into()),
                    ("stalls", o.stalls.into()),
                ],
            ));
        }
    }
    table.note(format!(
        "{} round trips per configuration after {} warm-up ones (mailslot: {}, to lap its ring \
         once); one-way = RTT/2, percentiles \
         of the exact samples; same-core = both on CPU 0, cross-core = CPU 0 and 1 \
         (sched_setaffinity), unpinned = scheduler's choice, {} runs each (fresh processes), the \
         median run shown and the spread of p50 over runs: the scheduler keeps a pair on one \
         core for a whole run or spreads it, so unpinned is a mix of the two pinned cases. \
         futex = bare shared-word handoff (always FUTEX_WAKE, no payload); futex-yield = the \
         same, but a receive that finds nothing yields once (sched_yield) and looks again \
         before it sleeps, exactly as mailslot's reader does: on one core that yield, not the \
         transport, is what wins; eventfd = blocking \
         read/write; unix-dgram = connected SOCK_DGRAM pair; zmq = PUB/SUB pair over ipc://; \
         iceoryx2 = publish-subscribe + event notify / blocking_wait.",
        options.iterations,
        options.warmup,
        warmup_for(Peer::Mailslot, options),
        options.repeat
    ));
    if let Some(users) = users {
        let stall_list: Vec<String> = outcomes
            .iter()
            .filter(|o| o.peer == Peer::MailslotGlobal)
            .map(|o| format!("{} {} (median run)", o.placement.name(), o.stalls))
            .collect();
        let stall_list = stall_list.join(", ");
        table.note(format!(
            "mailslot-global: each side's inbox is a global name (mode 0666) and the other side \
             writes it through the host service (write puts the message into the writer's \
             submission ring and wakes the service's thread on its doorbell if it sleeps; the service appends and wakes \
             the reader on the ring's futex); warm-up as for \
             mailslot; the service is pinned to CPU 0 with both sides in same-core, unpinned \
             otherwise. Each side waits at most {} ms at a time; a receive that needed the \
             whole wait although the message was there is a stall (a lost wake-up; it costs \
             that sample the wait): {}. {}.",
            crate::peers::global::GUARD.as_millis(),
            stall_list,
            users.describe(&[Role::Ping, Role::Pong])
        ));
    }
    if !skipped.is_empty() {
        table.note(format!("skipped: {}", skipped.join(", ")));
    }
    let mut tables = vec![table];
    tables.extend(global_target(options, outcomes));
    (tables, records)
}

/// The target of the global scope's latency: p50 <= 2 x the Unix datagram pair's.
fn global_target(options: &Options, outcomes: &[Outcome]) -> Option<Table> {
    const VS_DGRAM_P50: f64 = 2.0;
    let find = |peer: Peer, placement: Placement| {
        outcomes
            .iter()
            .find(|o| o.peer == peer && o.placement == placement)
    };
    if !outcomes.iter().any(|o| o.peer == Peer::MailslotGlobal) {
        return None;
    }
    let mut table = Table::new(
        format!(
            "latency, global scope against the target, one-way, {MESSAGE_SIZE}-byte messages (ns)"
        ),
        &[
            "placement",
            "global p50",
            "global p99",
            "dgram p50",
            "dgram p99",
            "p50 vs dgram",
            "p99 vs dgram",
            "mailslot p50",
            "p50 vs mailslot",
            "p99 vs mailslot",
            "p50 <= 2 x dgram",
        ],
    );
    for &placement in &options.placements {
        let Some(global) = find(Peer::MailslotGlobal, placement) else {
            continue;
        };
        let dgram = find(Peer::UnixDgram, placement);
        let mailslot = find(Peer::Mailslot, placement);
        let ns = |o: Option<&Outcome>, f: fn(&Outcome) -> f64| {
            o.map_or("-".into(), |o| format!("{:.0}", f(o)))
        };
        let ratio = |o: Option<&Outcome>, f: fn(&Outcome) -> f64| {
            o.map_or("-".into(), |o| format!("{:.2}", f(global) / f(o)))
        };
        table.row(vec![
            placement.name().to_owned(),
            format!("{:.0}", global.p50),
            format!("{:.0}", global.p99),
            ns(dgram, |o| o.p50),
            ns(dgram, |o| o.p99),
            ratio(dgram, |o| o.p50),
            ratio(dgram, |o| o.p99),
            ns(mailslot, |o| o.p50),
            ratio(mailslot, |o| o.p50),
            ratio(mailslot, |o| o.p99),
            dgram.map_or("-".into(), |d| {
                if global.p50 <= VS_DGRAM_P50 * d.p50 {
                    "met".into()
                } else {
                    "NOT met".into()
                }
            }),
        ]);
    }
    table.note(
        "Ratios are mailslot-global / peer from the table above (same run; unpinned: the median \
         runs). Target: p50 <= 2 x the connected Unix datagram pair. `mailslot` is the \
         same-user direct path (user scope, no service).",
    );
    Some(table)
}

// ---- child role --------------------------------------------------------------------------

/// `__child latency --side ping|pong`.
pub fn child_main(args: &Args) -> BenchResult<()> {
    let peer: Peer = args.need("peer")?;
    let side = match args.required("side")? {
        "ping" => Side::Ping,
        "pong" => Side::Pong,
        other => return Err(format!("unknown side `{other}`")),
    };
    if let Some(cpu) = args.str("cpu") {
        let cpu: usize = cpu.parse().map_err(|_| format!("bad --cpu {cpu}"))?;
        sys::pin_to_cpu(cpu).map_err(|e| format!("cannot pin to CPU {cpu}: {e}"))?;
    }
    let iterations: usize = args.need("iterations")?;
    let warmup: usize = args.need("warmup")?;
    let mut endpoint = peers::endpoint(peer, side, args)?;
    proc::report("ready");
    if proc::next_command().as_deref() != Some("go") {
        return Err("expected `go`".into());
    }
    endpoint.connect()?;
    proc::report("connected");
    let mut message = [0x5au8; MESSAGE_SIZE];
    let mut buf = [0u8; 4 * MESSAGE_SIZE];
    match side {
        Side::Pong => {
            for _ in 0..warmup + iterations {
                let n = endpoint.recv(&mut buf)?;
                endpoint.send(&buf[..n.min(MESSAGE_SIZE)])?;
            }
            proc::report(&format!("stalls n={}", endpoint.stalls()));
        }
        Side::Ping => {
            let mut rtts = Vec::with_capacity(iterations);
            for i in 0..warmup + iterations {
                message[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let start = sys::monotonic_ns();
                endpoint.send(&message)?;
                endpoint.recv(&mut buf)?;
                let rtt = sys::monotonic_ns() - start;
                if i >= warmup {
                    rtts.push(rtt);
                }
            }
            rtts.sort_unstable();
            let at = |q: f64| {
                let i = ((rtts.len() as f64 * q).ceil() as usize).clamp(1, rtts.len()) - 1;
                rtts[i] as f64 / 2.0
            };
            let mean = rtts.iter().sum::<u64>() as f64 / rtts.len() as f64 / 2.0;
            proc::report(&format!(
                "result samples={} p50={} p99={} p999={} min={} mean={mean} max={} stalls={}",
                rtts.len(),
                at(0.50),
                at(0.99),
                at(0.999),
                rtts[0] as f64 / 2.0,
                *rtts.last().expect("at least one iteration") as f64 / 2.0,
                endpoint.stalls(),
            ));
        }
    }
    // Wait for the parent to close our stdin, so the other side is never left writing to a
    // name that vanished under it.
    while proc::next_command().is_some() {}
    Ok(())
}
