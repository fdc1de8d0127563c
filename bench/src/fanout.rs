//! `fanout`: one writer process, k blocking reader processes, every reader gets every message.
//!
//! Per configuration (peer, size, k) the orchestrator starts k readers, waits until each has
//! opened its end, starts the writer, then runs rounds: it tells the writer `go`, the writer
//! stamps the time and sends `messages` messages, each reader stamps the time when it has the
//! round's last one. A round costs `last reader done - writer start`; divided by the messages
//! delivered (messages x k) that is the wall time per delivered message. Each process also
//! reports its CPU time and context switches for the round (getrusage), because on a 2-core
//! machine with 8 readers the wall time is mostly the scheduler's doing.
//!
//! Warm-up rounds come first and are not reported: the dgram baseline's socket buffers and
//! the mailslot's ring pages (a fresh ring's pages fault in on first touch; a long-lived name
//! has them resident) reach their steady state. Each message carries its sequence number so
//! readers check order and completeness.
//!
//! The global-scope peer (`mailslot-global`) adds a third kind of process: the host service
//! (`crate::global`), started per configuration; its CPU time counts in the CPU per message
//! like the writer's and the readers'. As root, its writer and readers run as other users.

use crate::args::{child_args, Args};
use crate::global::{Role, Service, Users};
use crate::peers::mailslot::{record as mailslot_record, ring_for as mailslot_ring};
use crate::peers::{self, OverflowMode, Peer};
use crate::proc::{self, BenchResult, Child, Launch, TempDir};
use crate::report::{Record, Table};
use crate::sys::{self, Usage};

/// Largest mailslot capacity the bench asks for (a round of messages must fit).
pub const MAX_CAPACITY: usize = 1 << 30;

/// The mailslot capacity for a configuration: exactly one round of records. The writer waits
/// at the end of each round until every reader has the whole round, so no reader can lag by
/// more than the capacity and nothing can be dropped: no back-pressure is needed (or used).
/// A ring this size laps every couple of rounds, so the warm-up makes all its pages resident
/// quickly, as they are in a long-lived name.
pub fn mailslot_capacity(messages: usize, size: usize) -> usize {
    messages * mailslot_record(size)
}

#[derive(Debug, Clone)]
pub struct Options {
    pub messages: usize,
    pub sizes: Vec<usize>,
    pub readers: Vec<usize>,
    pub rounds: usize,
    pub peers: Vec<Peer>,
    /// `--capacity BYTES`: the mailslot name's capacity (default: one round of records).
    pub capacity: Option<usize>,
    /// `--overflow`: what the writer meets at the bound; with it or `--capacity` every peer
    /// gets the equivalent bound (`None`: each transport's own defaults, see the notes).
    pub overflow: Option<OverflowMode>,
}

/// The bound of one configuration when `--capacity` or `--overflow` was given.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub overflow: OverflowMode,
    /// The mailslot capacity asked for, and the ring the library makes for it (what a reader
    /// may really lag behind).
    pub capacity: usize,
    pub ring: usize,
    /// Messages of the configuration's size the ring holds: the bound the peers get.
    pub messages: usize,
}

impl Options {
    pub const KEYS: &'static [&'static str] = &[
        "messages", "sizes", "readers", "rounds", "peers", "capacity", "overflow", "out",
    ];

    /// The mailslot capacity for messages of `size`.
    pub fn capacity_for(&self, size: usize) -> usize {
        self.capacity
            .unwrap_or_else(|| mailslot_capacity(self.messages, size))
    }

    /// The explicit bound for messages of `size`, if any. With `--capacity` the name's
    /// maximum message is the message size, so the ring follows the capacity (plus one
    /// message, at least two, in whole pages) instead of holding a 1 MiB message.
    pub fn bound(&self, size: usize) -> Option<Bound> {
        if self.capacity.is_none() && self.overflow.is_none() {
            return None;
        }
        let capacity = self.capacity_for(size);
        let ring = mailslot_ring(capacity, self.max_message(size));
        Some(Bound {
            overflow: self.overflow.unwrap_or(OverflowMode::Drop),
            capacity,
            ring,
            messages: (ring / mailslot_record(size)).max(1),
        })
    }

    /// The mailslot name's maximum message size (0 = the library's default, 1 MiB).
    fn max_message(&self, size: usize) -> usize {
        if self.capacity.is_some() {
            size
        } else {
            0
        }
    }

    pub fn from_args(args: &Args) -> BenchResult<Options> {
        let options = Options {
            messages: args.get("messages", 20_000)?,
            sizes: args.list("sizes", &[64, 1024])?,
            readers: args.list("readers", &[1, 2, 4, 8])?,
            rounds: args.get("rounds", 3)?,
            peers: args.list(
                "peers",
                &[
                    Peer::Mailslot,
                    Peer::MailslotGlobal,
                    Peer::UnixDgram,
                    Peer::Zmq,
                    Peer::Iceoryx2,
                ],
            )?,
            capacity: args
                .str("capacity")
                .map(|_| args.need("capacity"))
                .transpose()?,
            overflow: args.str("overflow").map(str::parse).transpose()?,
        };
        options.check()?;
        Ok(options)
    }

    /// Checks sizes and capacities (`large` allows bigger messages than `fanout`).
    pub fn check_with(&self, max_size: usize) -> BenchResult<()> {
        let options = self;
        if options.messages == 0 || options.rounds == 0 {
            return Err("--messages and --rounds must be at least 1".into());
        }
        if let Some(capacity) = options.capacity {
            if capacity == 0 || capacity > MAX_CAPACITY {
                return Err(format!("--capacity must be 1..={MAX_CAPACITY}"));
            }
        }
        for &size in &options.sizes {
            if !(8..=max_size).contains(&size) {
                return Err(format!("--sizes: {size} is outside 8..={max_size}"));
            }
            if options.capacity.is_some() {
                continue;
            }
            let round_bytes = mailslot_capacity(options.messages, size);
            if round_bytes > MAX_CAPACITY {
                return Err(format!(
                    "--messages {} of {size} bytes need {round_bytes} bytes of mailslot ring per \
                     round, more than the bench's {MAX_CAPACITY}; use fewer",
                    options.messages
                ));
            }
        }
        Ok(())
    }

    fn check(&self) -> BenchResult<()> {
        self.check_with(65_536)
    }
}

/// What one configuration measured (the median of its rounds).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub peer: Peer,
    pub size: usize,
    pub readers: usize,
    pub wall_ns_per_msg: f64,
    pub cpu_ns_per_msg: f64,
    pub writer_cpu_ns_per_msg: f64,
    /// The host service's CPU (global scope only; included in `cpu_ns_per_msg`).
    pub service_cpu_ns_per_msg: Option<f64>,
    pub vcsw_per_msg: f64,
    pub ivcsw_per_msg: f64,
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    /// Of `lost`, the messages the transport did not report (gaps in the sequence).
    pub silent: u64,
    pub bad: u64,
    /// Receives that waited out the global peer's guard timeout (lost wake-ups).
    pub stalls: u64,
    /// Sends the writer retried because the transport refused them (`--overflow refuse`).
    pub retries: u64,
}

struct Round {
    wall_ns: u64,
    usage: Usage,
    writer: Usage,
    service: Option<Usage>,
    sent: u64,
    delivered: u64,
    lost: u64,
    silent: u64,
    bad: u64,
    stalls: u64,
    retries: u64,
}

pub fn usage_of(line: &proc::Line) -> BenchResult<Usage> {
    Ok(Usage {
        user_ns: line.u64("user")?,
        sys_ns: line.u64("sys")?,
        vcsw: line.u64("vcsw")?,
        ivcsw: line.u64("ivcsw")?,
    })
}

pub fn usage_fields(u: Usage) -> String {
    format!(
        "user={} sys={} vcsw={} ivcsw={}",
        u.user_ns, u.sys_ns, u.vcsw, u.ivcsw
    )
}

/// How many unreported rounds come first.
fn warmup_rounds(peer: Peer, options: &Options, size: usize) -> usize {
    if matches!(peer, Peer::Mailslot | Peer::MailslotGlobal) {
        // Lap the ring once so every page of it is resident, as in a long-lived name.
        let ring = mailslot_ring(options.capacity_for(size), options.max_message(size));
        ring.div_ceil(mailslot_capacity(options.messages, size))
            .max(1)
    } else {
        1
    }
}

fn run_one(
    peer: Peer,
    size: usize,
    k: usize,
    options: &Options,
    users: Option<&Users>,
) -> BenchResult<Outcome> {
    let dir = TempDir::new("fanout")?;
    // The global scope's host service, and how its clients start (other users as root).
    let mut service = match (peer, users) {
        (Peer::MailslotGlobal, Some(users)) => Some((Service::start(None)?, users)),
        (Peer::MailslotGlobal, None) => return Err("mailslot-global needs its users".into()),
        _ => None,
    };
    let launch = |role: Role| match &service {
        Some((service, users)) => users.launch(role, service),
        None => Launch::default(),
    };
    let warmup = warmup_rounds(peer, options, size);
    let rounds = warmup + options.rounds;
    let common = |extra: &[(&'static str, String)]| {
        let mut pairs = vec![
            ("peer", peer.name().to_owned()),
            ("dir", dir.path().display().to_string()),
            ("size", size.to_string()),
            ("messages", options.messages.to_string()),
            ("rounds", rounds.to_string()),
            ("readers", k.to_string()),
            ("capacity", options.capacity_for(size).to_string()),
            ("max-message", options.max_message(size).to_string()),
        ];
        if let Some(bound) = options.bound(size) {
            pairs.push(("overflow", bound.overflow.name().to_owned()));
            pairs.push(("bound", bound.messages.to_string()));
        }
        pairs.extend(extra.iter().cloned());
        pairs
    };
    let mut readers = Vec::with_capacity(k);
    for i in 0..k {
        let args = child_args("fanout-reader", &common(&[("index", i.to_string())]));
        readers.push(Child::spawn_with(
            &format!("{} reader {i}", peer.name()),
            &args,
            &launch(Role::Reader(i)),
        )?);
        // One at a time: the first creates the name, the rest join it.
        readers[i].expect("ready")?;
    }
    let mut writer = Child::spawn_with(
        &format!("{} writer", peer.name()),
        &child_args("fanout-writer", &common(&[])),
        &launch(Role::Writer),
    )?;
    writer.expect("ready")?;
    let mut measured = Vec::new();
    for round in 0..rounds {
        let service_before = match &mut service {
            Some((service, _)) => Some(service.usage()?),
            None => None,
        };
        writer.send("go")?;
        let sent = writer.expect("sent")?;
        let start = sent.u64("t_start")?;
        let writer_usage = usage_of(&sent)?;
        let mut result = Round {
            wall_ns: 0,
            usage: writer_usage,
            writer: writer_usage,
            service: None,
            sent: sent.u64("sent")?,
            delivered: 0,
            lost: 0,
            silent: 0,
            bad: 0,
            stalls: 0,
            retries: sent.u64("retries")?,
        };
        for reader in &mut readers {
            let done = reader.expect("done")?;
            result.wall_ns = result.wall_ns.max(done.u64("t_end")?.saturating_sub(start));
            result.usage = result.usage.add(usage_of(&done)?);
            result.delivered += done.u64("delivered")?;
            result.lost += done.u64("lost")?;
            result.silent += done.u64("silent")?;
            result.bad += done.u64("bad")?;
            result.stalls += done.u64("stalls")?;
        }
        if let (Some((service, _)), Some(before)) = (&mut service, service_before) {
            let used = service.usage()?.since(before);
            result.usage = result.usage.add(used);
            result.service = Some(used);
        }
        if round >= warmup {
            measured.push(result);
        }
    }
    proc::finish_all(std::iter::once(writer).chain(readers).collect())?;
    if let Some((service, _)) = service {
        service.finish()?;
    }

    let per_msg = |r: &Round, v: u64| v as f64 / r.delivered.max(1) as f64;
    let median = |f: &dyn Fn(&Round) -> f64| {
        let mut v: Vec<f64> = measured.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(Outcome {
        peer,
        size,
        readers: k,
        wall_ns_per_msg: median(&|r| per_msg(r, r.wall_ns)),
        cpu_ns_per_msg: median(&|r| per_msg(r, r.usage.cpu_ns())),
        writer_cpu_ns_per_msg: median(&|r| per_msg(r, r.writer.cpu_ns())),
        service_cpu_ns_per_msg: measured
            .iter()
            .all(|r| r.service.is_some())
            .then(|| median(&|r| per_msg(r, r.service.unwrap_or_default().cpu_ns()))),
        vcsw_per_msg: median(&|r| per_msg(r, r.usage.vcsw)),
        ivcsw_per_msg: median(&|r| per_msg(r, r.usage.ivcsw)),
        sent: measured.iter().map(|r| r.sent).sum(),
        delivered: measured.iter().map(|r| r.delivered).sum(),
        lost: measured.iter().map(|r| r.lost).sum(),
        silent: measured.iter().map(|r| r.silent).sum(),
        bad: measured.iter().map(|r| r.bad).sum(),
        stalls: measured.iter().map(|r| r.stalls).sum(),
        retries: measured.iter().map(|r| r.retries).sum(),
    })
}

/// Runs every configuration; peers that are not built in are listed as skipped.
pub fn run(options: &Options) -> BenchResult<(Vec<Table>, Vec<Record>)> {
    let measured = measure(options)?;
    Ok(tables(
        options,
        &measured.outcomes,
        &measured.qlen,
        &measured.skipped,
        measured.users.as_ref(),
    ))
}

/// What [`measure`] ran.
pub struct Measured {
    pub outcomes: Vec<Outcome>,
    pub qlen: String,
    pub skipped: Vec<String>,
    pub users: Option<Users>,
}

/// Measures every configuration (peers side by side per size and k).
pub fn measure(options: &Options) -> BenchResult<Measured> {
    let qlen = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    let mut outcomes = Vec::new();
    let mut skipped = Vec::new();
    let mut runnable = Vec::new();
    for &peer in options.peers.iter().filter(|p| p.does_fanout()) {
        match peer.missing_feature() {
            Some(feature) => {
                skipped.push(format!("{} (build with --features {feature})", peer.name()))
            }
            None => runnable.push(peer),
        }
    }
    let users = if runnable.contains(&Peer::MailslotGlobal) {
        Some(Users::new()?)
    } else {
        None
    };
    // Peers side by side per configuration, so a burst of outside load hits them alike.
    for &size in &options.sizes {
        for &k in &options.readers {
            for &peer in &runnable {
                eprintln!("fanout: {} size={size} k={k} ...", peer.name());
                outcomes.push(run_one(peer, size, k, options, users.as_ref())?);
            }
        }
    }
    Ok(Measured {
        outcomes,
        qlen,
        skipped,
        users,
    })
}

fn tables(
    options: &Options,
    outcomes: &[Outcome],
    qlen: &str,
    skipped: &[String],
    users: Option<&Users>,
) -> (Vec<Table>, Vec<Record>) {
    let find = |peer: Peer, size: usize, k: usize| {
        outcomes
            .iter()
            .find(|o| o.peer == peer && o.size == size && o.readers == k)
    };
    let baseline = |size: usize, k: usize| find(Peer::UnixDgram, size, k);
    let roles: Vec<Role> = [Role::Writer, Role::Reader(0), Role::Reader(1)]
        .into_iter()
        .take(if options.readers.iter().any(|&k| k > 1) {
            3
        } else {
            2
        })
        .collect();
    let mut tables = Vec::new();
    let mut records = Vec::new();
    for &size in &options.sizes {
        let mut table = Table::new(
            format!("fanout, {size}-byte messages"),
            &[
                "k",
                "peer",
                "wall ns/msg",
                "wall vs dgram",
                "CPU ns/msg",
                "CPU vs dgram",
                "writer CPU ns/msg",
                "service CPU ns/msg",
                "vol. ctx sw/msg",
                "sent",
                "delivered",
                "lost",
                "writer retries",
            ],
        );
        for &k in &options.readers {
            for o in outcomes.iter().filter(|o| o.size == size && o.readers == k) {
                let base = baseline(size, k);
                let ratio = |mine: f64, theirs: Option<f64>| {
                    theirs.map_or("-".into(), |t| format!("{:.2}", mine / t))
                };
                table.row(vec![
                    k.to_string(),
                    o.peer.name().to_owned(),
                    format!("{:.0}", o.wall_ns_per_msg),
                    ratio(o.wall_ns_per_msg, base.map(|b| b.wall_ns_per_msg)),
                    format!("{:.0}", o.cpu_ns_per_msg),
                    ratio(o.cpu_ns_per_msg, base.map(|b| b.cpu_ns_per_msg)),
                    format!("{:.0}", o.writer_cpu_ns_per_msg),
                    o.service_cpu_ns_per_msg
                        .map_or("-".into(), |v| format!("{v:.0}")),
                    format!("{:.3}", o.vcsw_per_msg),
                    o.sent.to_string(),
                    o.delivered.to_string(),
                    lost_cell(o),
                    o.retries.to_string(),
                ]);
                records.push(Record::new(
                    "fanout",
                    vec![
                        ("peer", o.peer.name().into()),
                        ("size", o.size.into()),
                        ("readers", o.readers.into()),
                        ("wall_ns_per_msg", o.wall_ns_per_msg.into()),
                        ("cpu_ns_per_msg", o.cpu_ns_per_msg.into()),
                        ("writer_cpu_ns_per_msg", o.writer_cpu_ns_per_msg.into()),
                        (
                            "service_cpu_ns_per_msg",
                            o.service_cpu_ns_per_msg.unwrap_or(f64::NAN).into(),
                        ),
                        ("vcsw_per_msg", o.vcsw_per_msg.into()),
                        ("ivcsw_per_msg", o.ivcsw_per_msg.into()),
                        ("sent", o.sent.into()),
                        ("delivered", o.delivered.into()),
                        ("lost", o.lost.into()),
                        ("lost_silent", o.silent.into()),
                        ("writer_retries", o.retries.into()),
                        ("capacity", options.capacity_for(o.size).into()),
                        (
                            "overflow",
                            options
                                .bound(o.size)
                                .map_or("default", |b| b.overflow.name())
                                .into(),
                        ),
                        (
                            "bound_messages",
                            options.bound(o.size).map_or(0, |b| b.messages).into(),
                        ),
                        ("out_of_order", o.bad.into()),
                        ("stalls", o.stalls.into()),
                        ("max_dgram_qlen", qlen.into()),
                        (
                            "users",
                            match (o.peer, users) {
                                (Peer::MailslotGlobal, Some(users)) => users.record(&roles),
                                _ => String::new(),
                            }
                            .as_str()
                            .into(),
                        ),
                    ],
                ));
            }
        }
        table.note(format!(
            "{} messages per round, median of {} rounds after warm-up; wall = writer start to \
             last reader done / (messages x k); CPU = user+sys of writer and all readers (and the host service, for \
             mailslot-global) / (messages x k); sent = messages written (each reaches all k), delivered = sum over \
             readers, over all measured rounds.",
            options.messages, options.rounds
        ));
        table.note(bound_note(options, size, qlen));
        if let Some(users) = users {
            let stall_list: Vec<String> = options
                .readers
                .iter()
                .filter_map(|&k| find(Peer::MailslotGlobal, size, k))
                .map(|o| format!("k={}: {}", o.readers, o.stalls))
                .collect();
            let stall_list = stall_list.join(", ");
            table.note(format!(
                "mailslot-global: the same shared name in the global scope (mode 0666, same \
                 capacity, drop-oldest); the writer's `write` puts each message into its \
                 submission ring for the host service and returns, and a round ends with its \
                 `flush`; CPU includes the \
                 service's (all its threads, getrusage); readers wait at most {} ms at a time \
                 and count a receive that needed the whole wait although a message was there \
                 as a stall (a lost wake-up): {} over the measured rounds. {}.",
                crate::peers::global::GUARD.as_millis(),
                stall_list,
                users.describe(&roles)
            ));
        }
        if !skipped.is_empty() {
            table.note(format!("skipped: {}", skipped.join(", ")));
        }
        tables.push(table);
        if let Some(table) = global_targets(options, size, &find) {
            tables.push(table);
        }
    }
    (tables, records)
}

/// The targets of the global scope's fan-out, from the configurations of this run:
/// cost per delivered message <= 0.5 x the datagram fan-out's and <= ZeroMQ's, at every k.
fn global_targets<'a>(
    options: &Options,
    size: usize,
    find: &dyn Fn(Peer, usize, usize) -> Option<&'a Outcome>,
) -> Option<Table> {
    const VS_DGRAM: f64 = 0.5;
    const VS_ZMQ: f64 = 1.0;
    if !options
        .readers
        .iter()
        .any(|&k| find(Peer::MailslotGlobal, size, k).is_some())
    {
        return None;
    }
    let mut table = Table::new(
        format!("fanout, global scope against the targets, {size}-byte messages"),
        &[
            "k",
            "global wall ns/msg",
            "global CPU ns/msg",
            "vs dgram wall",
            "vs dgram CPU",
            "vs zmq wall",
            "vs zmq CPU",
            "vs mailslot wall",
            "vs mailslot CPU",
            "<= 0.5 x dgram",
            "<= 1.0 x zmq",
        ],
    );
    for &k in &options.readers {
        let Some(global) = find(Peer::MailslotGlobal, size, k) else {
            continue;
        };
        let ratios = |peer: Peer| {
            find(peer, size, k).map(|o| {
                (
                    global.wall_ns_per_msg / o.wall_ns_per_msg,
                    global.cpu_ns_per_msg / o.cpu_ns_per_msg,
                )
            })
        };
        let cell = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}"));
        let verdict = |r: Option<(f64, f64)>, target: f64| match r {
            None => "-".to_owned(),
            Some((wall, cpu)) => match (wall <= target, cpu <= target) {
                (true, true) => "met".into(),
                (true, false) => "wall only".into(),
                (false, true) => "CPU only".into(),
                (false, false) => "NOT met".into(),
            },
        };
        let (dgram, zmq, mailslot) = (
            ratios(Peer::UnixDgram),
            ratios(Peer::Zmq),
            ratios(Peer::Mailslot),
        );
        table.row(vec![
            k.to_string(),
            format!("{:.0}", global.wall_ns_per_msg),
            format!("{:.0}", global.cpu_ns_per_msg),
            cell(dgram.map(|r| r.0)),
            cell(dgram.map(|r| r.1)),
            cell(zmq.map(|r| r.0)),
            cell(zmq.map(|r| r.1)),
            cell(mailslot.map(|r| r.0)),
            cell(mailslot.map(|r| r.1)),
            verdict(dgram, VS_DGRAM),
            verdict(zmq, VS_ZMQ),
        ]);
    }
    table.note(
        "Ratios are mailslot-global / peer, per delivered message, from the table above (same \
         run): wall and CPU (writer + readers + host service for mailslot-global). Targets: \
         <= 0.5 x the raw datagram fan-out and <= ZeroMQ PUB/SUB at every k; `met` \
         when both wall and CPU are within; `-` when that peer did not run. `vs mailslot` is \
         the same-user direct path (user scope, no service).",
    );
    Some(table)
}

// ---- child roles -----------------------------------------------------------------------------

/// `__child fanout-reader`: receives `rounds x messages` messages, reporting each round.
pub fn reader_main(args: &Args) -> BenchResult<()> {
    let peer: Peer = args.need("peer")?;
    let size: usize = args.need("size")?;
    let messages: u64 = args.need("messages")?;
    let rounds: u64 = args.need("rounds")?;
    let mut reader = peers::fanout_reader(peer, args)?;
    // A transport that may drop a round's tail makes the reader wait before it gives up: the
    // round then ends at its last message, so each one is stamped (one clock read more).
    let stamp_each = matches!(peers::bound_of(args)?, Some((OverflowMode::Drop, _)));
    proc::report("ready");
    let mut buf = vec![0u8; size.max(64) * 2];
    let mut expected = 0u64; // the next sequence number
    let mut last = Usage::now();
    let mut last_stalls = 0;
    for round in 0..rounds {
        let end = (round + 1) * messages;
        let (mut delivered, mut lost, mut silent, mut bad) = (0u64, 0u64, 0u64, 0u64);
        let mut t_end = 0;
        while expected < end {
            let Some((len, dropped)) = reader.recv(&mut buf)? else {
                // A transport that drops the newest messages dropped the round's tail.
                silent += end - expected;
                lost += end - expected;
                expected = end;
                break;
            };
            lost += dropped;
            expected += dropped;
            let seq = buf.get(..8).filter(|_| len >= 8).map_or(u64::MAX, |b| {
                u64::from_le_bytes(b.try_into().expect("8 bytes"))
            });
            if seq == u64::MAX || seq < expected || len != size {
                bad += 1;
                expected += 1;
            } else {
                // A gap the transport did not report: lost all the same.
                silent += seq - expected;
                lost += seq - expected;
                expected = seq + 1;
            }
            delivered += 1;
            if stamp_each {
                t_end = sys::monotonic_ns();
            }
        }
        if !stamp_each {
            t_end = sys::monotonic_ns();
        }
        let now = Usage::now();
        let stalls = reader.stalls();
        proc::report(&format!(
            "done round={round} t_end={t_end} delivered={delivered} lost={lost} silent={silent} \
             bad={bad} stalls={} {}",
            stalls - last_stalls,
            usage_fields(now.since(last))
        ));
        last = now;
        last_stalls = stalls;
    }
    Ok(())
}

/// `__child fanout-writer`: on each `go`, sends one round of messages.
pub fn writer_main(args: &Args) -> BenchResult<()> {
    let peer: Peer = args.need("peer")?;
    let size: usize = args.need("size")?;
    let messages: u64 = args.need("messages")?;
    let mut writer = peers::fanout_writer(peer, args)?;
    proc::report("ready");
    let mut message = vec![0x5au8; size];
    let mut seq = 0u64;
    let mut last_retries = 0;
    while let Some(command) = proc::next_command() {
        if command != "go" {
            return Err(format!("unexpected command `{command}`"));
        }
        let before = Usage::now();
        let t_start = sys::monotonic_ns();
        for _ in 0..messages {
            message[..8].copy_from_slice(&seq.to_le_bytes());
            writer.send(&message)?;
            seq += 1;
        }
        writer.end_round()?;
        let usage = Usage::now().since(before);
        let retries = writer.retries();
        proc::report(&format!(
            "sent t_start={t_start} sent={messages} retries={} {}",
            retries - last_retries,
            usage_fields(usage)
        ));
        last_retries = retries;
    }
    Ok(())
}

/// `lost`, with the part the transport did not report and any out-of-order messages.
pub fn lost_cell(o: &Outcome) -> String {
    let mut cell = o.lost.to_string();
    if o.silent > 0 {
        cell += &format!(" ({} silent)", o.silent);
    }
    if o.bad > 0 {
        cell += &format!(" ({} out of order)", o.bad);
    }
    cell
}

/// How each transport was bounded for messages of `size`.
pub fn bound_note(options: &Options, size: usize, qlen: &str) -> String {
    let dgram = format!(
        "unix-dgram: blocking sends to each reader in turn, bounded by its socket queue \
         (net.unix.max_dgram_qlen = {qlen} datagrams), whatever --overflow says"
    );
    let Some(b) = options.bound(size) else {
        let capacity = options.capacity_for(size);
        return format!(
            "mailslot: capacity = one round ({capacity} bytes of records, ring {:.1} MiB), \
             drop-oldest, no back-pressure: the writer waits for every reader only at the end \
             of a round, so no reader can lag past the capacity and `lost` must be 0. {dgram}. \
             zmq: XPUB_NODROP, blocking sends (back-pressure at the default high-water mark, \
             1000 messages per pipe). iceoryx2: RetryUntilDelivered (back-pressure), subscriber \
             buffer 256 samples, one notify per message.",
            mailslot_ring(capacity, 0) as f64 / f64::from(1 << 20)
        );
    };
    let (mailslot, zmq, iceoryx2) = match b.overflow {
        OverflowMode::Drop => (
            "drop-oldest (readers are told how many they lost)",
            "a plain PUB (no XPUB_NODROP): a full pipe drops the newest messages, silently",
            "safe overflow: a full buffer drops its oldest sample, silently",
        ),
        OverflowMode::Refuse => (
            "refuse: the writer retries each write refused with QueueFull after a yield",
            "XPUB_NODROP, non-blocking sends retried after a yield on EAGAIN",
            "RetryUntilDelivered with a backpressure handler counting each retry",
        ),
        OverflowMode::Block => (
            "block (Overflow::Block: the writer sleeps until the slowest reader makes room)",
            "XPUB_NODROP, blocking sends",
            "RetryUntilDelivered (no sleeping publisher: it retries with an adaptive wait)",
        ),
    };
    format!(
        "Bound (--capacity {} --overflow {}): mailslot: ring {} bytes (the library's ring for \
         the capacity: it plus one message, in whole pages; maximum message = {size} bytes) = \
         {} messages of {size} bytes per reader, {mailslot}. zmq: SNDHWM = RCVHWM = {} messages (half the bound each; the \
         kernel's socket buffers between them hold more), {zmq}. iceoryx2: subscriber buffer = \
         {} samples, {iceoryx2}. {dgram}. `silent` = gaps in the sequence the transport did not \
         report; `writer retries` = sends retried after a refusal.",
        b.capacity,
        b.overflow.name(),
        b.ring,
        b.messages,
        b.messages.div_ceil(2),
        b.messages,
    )
}
