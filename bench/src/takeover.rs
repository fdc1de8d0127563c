//! `takeover`: how long the host is deaf after `kill -9` of the network role's holder.
//!
//! A pool of role processes (this binary's `__child net-role`) start `mailslot::net::NetRole`
//! on one runtime directory and a free UDP port on 127.0.0.1; one holds the role, the others
//! wait in the election. The orchestrator sends a stream of distinct datagrams (each carries
//! its sequence number) to the port every `--interval-us` (default 1000: 1 kHz). Each iteration
//! it SIGKILLs the holder and measures, on the shared monotonic clock, until the successor (a)
//! reports `Holding` and (b) delivers its first datagram; then it starts a replacement so the
//! pool keeps its size. Every process reports every datagram it delivers, so the datagrams
//! sent, delivered and lost per kill are counted, not inferred.
//!
//! Baseline, measured the same way: the bare handoff, processes that wait in `flock` and then
//! bind the port and receive, without mailslot. Target: 0 datagrams lost per kill, and p99 of
//! (b) <= 2x the bare handoff's and under 5 ms.
//!
//! (b) includes up to one send interval of waiting for the next datagram after the successor
//! bound the port; datagrams sent while nobody had the port bound are lost by UDP itself.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailslot::net::{
    self, DeliverFn, DeliveryOutcome, NetConfig, NetRole, RemoteTarget, Reporter, RoleState,
};

use crate::args::{child_args, Args};
use crate::proc::{self, BenchResult, Child, TempDir, STEP_TIMEOUT};
use crate::report::{Record, Table};
use crate::sys;

#[derive(Debug, Clone)]
pub struct Options {
    pub iterations: usize,
    pub pool: usize,
    pub interval_us: u64,
}

impl Options {
    pub const KEYS: &'static [&'static str] = &["kills", "pool", "interval-us", "out"];

    pub fn from_args(args: &Args) -> BenchResult<Options> {
        let options = Options {
            iterations: args.get("kills", 100)?,
            pool: args.get("pool", 3)?,
            interval_us: args.get("interval-us", 1000)?,
        };
        if options.iterations == 0 || options.pool < 2 || options.interval_us == 0 {
            return Err("takeover needs --kills >= 1, --pool >= 2, --interval-us >= 1".into());
        }
        Ok(options)
    }
}

/// The role's configuration for the bench: loopback only, no name service, silent.
pub fn role_config(dir: &std::path::Path, port: u16) -> NetConfig {
    let mut config = NetConfig::new(dir);
    config.port = port;
    config.bind = Ipv4Addr::LOCALHOST;
    config.broadcast = vec![Ipv4Addr::new(127, 255, 255, 255)];
    config.netbios_name = "MSBENCH".into();
    config.workgroup = "MSBENCHGRP".into();
    config.name_service = false;
    config.name_service_port = port.wrapping_add(1);
    config.reporter = Reporter::silent();
    config
}

/// A UDP port on 127.0.0.1 that is free now.
pub fn free_port() -> BenchResult<u16> {
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot find a free UDP port: {e}"))?;
    let port = socket
        .local_addr()
        .map_err(|e| format!("cannot find a free UDP port: {e}"))?
        .port();
    Ok(port)
}

fn spawn_role(dir: &TempDir, port: u16, n: usize) -> BenchResult<Child> {
    let args = child_args(
        "net-role",
        &[
            ("dir", dir.path().display().to_string()),
            ("port", port.to_string()),
        ],
    );
    let mut child = Child::spawn(&format!("net role {n}"), &args)?;
    child.expect("ready")?;
    Ok(child)
}

/// Everything the pool's processes reported: who holds, who delivered what and when.
#[derive(Default)]
struct Log {
    /// Per child (by spawn number): when it reported `holding`, and its first delivery.
    holding: HashMap<usize, u64>,
    first: HashMap<usize, u64>,
    /// Every sequence number delivered by anyone.
    delivered: HashSet<u64>,
    /// Deliveries of a sequence number delivered before.
    twice: u64,
}

impl Log {
    /// Takes every line `child` (spawn number `n`) has reported so far.
    fn drain(&mut self, n: usize, child: &mut Child) -> BenchResult<()> {
        while let Some(line) = child.try_line()? {
            match line.kind.as_str() {
                "holding" => {
                    self.holding.insert(n, line.u64("t")?);
                }
                "got" => {
                    let t = line.u64("t")?;
                    self.first.entry(n).or_insert(t);
                    if !self.delivered.insert(line.u64("s")?) {
                        self.twice += 1;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Waits until some process of `pool` holds and has delivered; returns its index.
    fn wait_holder(&mut self, pool: &mut [(usize, Child)]) -> BenchResult<usize> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            for (i, (n, child)) in pool.iter_mut().enumerate() {
                self.drain(*n, child)?;
                if self.holding.contains_key(n) && self.first.contains_key(n) {
                    return Ok(i);
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no process held and delivered within {STEP_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

struct Sample {
    /// SIGKILL of the holder, monotonic clock.
    t_kill: u64,
    holding_ns: u64,
    first_ns: u64,
}

/// Which time of a sample a table row shows.
type Metric<'a> = &'a dyn Fn(&Sample) -> u64;

/// A row of the gap table: label, run, metric, the bare baseline's (p50, p99, max) of the
/// same metric, and whether the target judges it.
type Row<'a> = (&'a str, &'a Run, Metric<'a>, (u64, u64, u64), bool);

/// What a kill loop measured.
struct Run {
    samples: Vec<Sample>,
    /// Monotonic send time of every datagram, by sequence number.
    sent_at: Vec<u64>,
    delivered: HashSet<u64>,
    /// Deliveries of a datagram delivered before.
    twice: u64,
    /// Bind attempts refused with EADDRINUSE (bare handoff only).
    bind_retries: u64,
}

/// Datagrams sent and lost per kill.
#[derive(Debug, Clone, Copy, Default)]
struct Loss {
    sent: u64,
    lost: u64,
}

/// A datagram counts against the kill whose window holds its send time; windows start this
/// long before each kill, so what sat unread in the dying holder's socket is that kill's loss.
const WINDOW_LEAD_NS: u64 = 5_000_000;

impl Run {
    fn per_kill(&self) -> Vec<Loss> {
        let starts: Vec<u64> = self
            .samples
            .iter()
            .map(|s| s.t_kill.saturating_sub(WINDOW_LEAD_NS))
            .collect();
        let mut loss = vec![Loss::default(); starts.len()];
        for (seq, &t) in self.sent_at.iter().enumerate() {
            // The last window ends with the stream (its tail in flight at the stop is cut).
            let Some(i) = starts.iter().rposition(|&s| s <= t) else {
                continue;
            };
            loss[i].sent += 1;
            if !self.delivered.contains(&(seq as u64)) {
                loss[i].lost += 1;
            }
        }
        loss
    }
}

/// Starts the stream: one datagram with a fresh sequence number every `interval`, on an
/// absolute schedule, until `stop`; the thread returns each datagram's send time.
fn stream(
    dir: &std::path::Path,
    port: u16,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<BenchResult<Vec<u64>>> {
    let config = role_config(dir, port);
    std::thread::spawn(move || {
        let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("sender: {e}"))?;
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let target = RemoteTarget::Host("127.0.0.1".into());
        let mut sent_at = Vec::new();
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let seq = sent_at.len() as u64;
            let datagram = net::encode(
                &config,
                &target,
                "BENCH",
                &seq.to_le_bytes(),
                &Default::default(),
            )
            .map_err(|e| format!("sender: cannot encode: {e}"))?;
            sent_at.push(sys::monotonic_ns());
            // Refused while nobody has the port bound: UDP loses it, as on a real host.
            let _ = socket.send_to(&datagram, to);
            next += interval;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        Ok(sent_at)
    })
}

/// Runs a pool under the stream and kills its holder `iterations` times; after each kill
/// waits until the successor holds and delivers, and starts a replacement (`spawn`).
fn kill_loop(
    dir: &TempDir,
    port: u16,
    options: &Options,
    spawn: &mut dyn FnMut(usize) -> BenchResult<Child>,
) -> BenchResult<Run> {
    let mut spawned = 0;
    let mut pool: Vec<(usize, Child)> = Vec::with_capacity(options.pool);
    for _ in 0..options.pool {
        spawned += 1;
        pool.push((spawned, spawn(spawned)?));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sender = stream(
        dir.path(),
        port,
        Duration::from_micros(options.interval_us),
        stop.clone(),
    );
    let mut log = Log::default();
    let mut dead: Vec<(usize, Child)> = Vec::new();
    let mut samples = Vec::with_capacity(options.iterations);
    let result = (|| -> BenchResult<()> {
        let mut holder = log.wait_holder(&mut pool)?;
        for _ in 0..options.iterations {
            let t_kill = sys::monotonic_ns();
            pool[holder].1.kill();
            // Kept (not dropped) so what it reported before dying is still read.
            dead.push(pool.remove(holder));
            holder = log.wait_holder(&mut pool)?;
            let n = pool[holder].0;
            samples.push(Sample {
                t_kill,
                holding_ns: log.holding[&n].saturating_sub(t_kill),
                first_ns: log.first[&n].saturating_sub(t_kill),
            });
            spawned += 1;
            pool.push((spawned, spawn(spawned)?));
            // Let the new waiter park in the election before the next kill.
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    let sent_at = sender
        .join()
        .map_err(|_| "sender thread panicked".to_owned())??;
    result?;
    // The last datagrams' deliveries, and what the killed ones said before they died.
    std::thread::sleep(Duration::from_millis(50));
    let mut bind_retries = 0;
    for (n, child) in pool.iter_mut().chain(dead.iter_mut()) {
        log.drain(*n, child)?;
    }
    for (_, child) in pool.iter_mut() {
        child.send("retries")?;
        bind_retries += child.expect("retries")?.u64("n")?;
    }
    Ok(Run {
        samples,
        sent_at,
        delivered: log.delivered,
        twice: log.twice,
        bind_retries,
    })
}

/// The baseline: processes that wait in `flock(LOCK_EX)` on one file and, once they have it,
/// bind the port and receive; no mailslot.
fn run_bare(options: &Options) -> BenchResult<Run> {
    let dir = TempDir::new("flock")?;
    let port = free_port()?;
    let lock = dir.path().join("lock").display().to_string();
    let mut spawn = |n: usize| -> BenchResult<Child> {
        let args = child_args(
            "flock-holder",
            &[("path", lock.clone()), ("port", port.to_string())],
        );
        let mut child = Child::spawn(&format!("flock holder {n}"), &args)?;
        child.expect("ready")?;
        Ok(child)
    };
    kill_loop(&dir, port, options, &mut spawn)
}

fn run_role(options: &Options) -> BenchResult<Run> {
    let dir = TempDir::new("takeover")?;
    let port = free_port()?;
    let mut spawn = |n: usize| spawn_role(&dir, port, n);
    kill_loop(&dir, port, options, &mut spawn)
}

fn quantiles(mut v: Vec<u64>) -> (u64, u64, u64) {
    v.sort_unstable();
    if v.is_empty() {
        return (0, 0, 0);
    }
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.5), at(0.99), v[v.len() - 1])
}

pub fn run(options: &Options) -> BenchResult<(Vec<Table>, Vec<Record>)> {
    eprintln!("takeover: bare flock + bind baseline ...");
    let bare = run_bare(options)?;
    eprintln!("takeover: network role ...");
    let role = run_role(options)?;

    let mut gaps = Table::new(
        "network role takeover after kill -9 of the holder (ms)",
        &[
            "until",
            "p50",
            "p99",
            "max",
            "p50 vs bare",
            "p99 vs bare",
            "target",
        ],
    );
    let mut records = Vec::new();
    let ms = |ns: u64| format!("{:.3}", ns as f64 / 1e6);
    let holding = |s: &Sample| s.holding_ns;
    let first = |s: &Sample| s.first_ns;
    let of = |run: &Run, f: &dyn Fn(&Sample) -> u64| quantiles(run.samples.iter().map(f).collect());
    let bare_hold = of(&bare, &holding);
    let bare_first = of(&bare, &first);
    let rows: [Row<'_>; 4] = [
        (TAKEOVER_BARE_HOLD, &bare, &holding, bare_hold, false),
        (TAKEOVER_BARE_RECV, &bare, &first, bare_first, false),
        (TAKEOVER_ROLE_HOLD, &role, &holding, bare_hold, false),
        (TAKEOVER_ROLE_RECV, &role, &first, bare_first, true),
    ];
    for (what, run, f, (b50, b99, _), judged) in rows {
        let (p50, p99, max) = of(run, f);
        let verdict = if judged {
            let ok = p99 <= 2 * b99 && p99 < 5_000_000;
            format!(
                "p99 <= 2x bare and < 5 ms: {}",
                if ok { "met" } else { "NOT met" }
            )
        } else {
            "-".to_owned()
        };
        gaps.row(vec![
            what.into(),
            ms(p50),
            ms(p99),
            ms(max),
            format!("{:.2}", p50 as f64 / b50.max(1) as f64),
            format!("{:.2}", p99 as f64 / b99.max(1) as f64),
            verdict,
        ]);
        records.push(Record::new(
            "takeover",
            vec![
                ("until", what.into()),
                ("p50_ns", p50.into()),
                ("p99_ns", p99.into()),
                ("max_ns", max.into()),
                ("kills", run.samples.len().into()),
                ("interval_us", options.interval_us.into()),
            ],
        ));
    }
    gaps.note(format!(
        "{} kills each; pools of {} processes; a stream of distinct datagrams every {} us. \
         Bare: processes blocked in flock(LOCK_EX) on one file; the one that gets it binds the \
         UDP port (retrying while the dead holder's socket is still bound: {} retries in all) \
         and receives; no mailslot. Role: NetRole on 127.0.0.1 (one runtime directory). Times \
         from SIGKILL to the successor's report (monotonic clock); `receives` = its first \
         delivered datagram, so it includes up to one send interval. Target: the \
         role's delivery gap p99 <= 2x the bare handoff's and < 5 ms.",
        options.iterations, options.pool, options.interval_us, bare.bind_retries
    ));

    let mut loss = Table::new(
        "network role takeover: datagrams lost per kill",
        &[
            "handoff",
            "sent",
            "delivered",
            "lost",
            "lost/kill mean",
            "lost/kill p50",
            "lost/kill p99",
            "lost/kill max",
            "lost vs bare",
            "delivered twice",
        ],
    );
    let bare_lost: u64 = bare.per_kill().iter().map(|l| l.lost).sum();
    for (what, run) in [("bare flock + bind", &bare), ("mailslot role", &role)] {
        let per = run.per_kill();
        let sent: u64 = per.iter().map(|l| l.sent).sum();
        let lost: u64 = per.iter().map(|l| l.lost).sum();
        let (p50, p99, max) = quantiles(per.iter().map(|l| l.lost).collect());
        let mean = lost as f64 / per.len().max(1) as f64;
        loss.row(vec![
            what.into(),
            sent.to_string(),
            (sent - lost).to_string(),
            lost.to_string(),
            format!("{mean:.2}"),
            p50.to_string(),
            p99.to_string(),
            max.to_string(),
            format!("{:.2}", lost as f64 / bare_lost.max(1) as f64),
            run.twice.to_string(),
        ]);
        records.push(Record::new(
            "takeover-loss",
            vec![
                ("handoff", what.into()),
                ("sent", sent.into()),
                ("delivered", (sent - lost).into()),
                ("lost", lost.into()),
                ("lost_per_kill_mean", mean.into()),
                ("lost_per_kill_p50", p50.into()),
                ("lost_per_kill_p99", p99.into()),
                ("lost_per_kill_max", max.into()),
                ("delivered_twice", run.twice.into()),
                ("kills", per.len().into()),
                ("interval_us", options.interval_us.into()),
            ],
        ));
    }
    loss.note(format!(
        "Each datagram carries its own sequence number; delivered = seen by any process of the \
         pool (the killed ones' reports included). A datagram counts against the kill whose \
         window holds its send time; each window starts {} ms before its kill (what sat unread \
         in the dying holder's socket) and ends where the next one starts; the stream's first \
         datagrams before the first window are not counted. At {} us per datagram a gap of g \
         ms loses about g x {:.1} datagrams. Delivered twice: deliveries of a sequence number \
         already delivered (a holder killed between delivering a datagram and noting it done).",
        WINDOW_LEAD_NS / 1_000_000,
        options.interval_us,
        1000.0 / options.interval_us as f64
    ));
    Ok((vec![gaps, loss], records))
}

pub const TAKEOVER_BARE_HOLD: &str = "bare flock + bind: the next waiter has the lock and port";
pub const TAKEOVER_BARE_RECV: &str = "bare flock + bind: the next waiter receives";
pub const TAKEOVER_ROLE_HOLD: &str = "role: the successor holds the role";
pub const TAKEOVER_ROLE_RECV: &str = "role: the successor receives";

// ---- child role --------------------------------------------------------------------------

/// `__child net-role`: runs the role; reports `holding t=` once it holds and `got s= t=` for
/// every delivered datagram; answers `retries` (always 0: the role retries inside); exits
/// when stdin closes (or when killed).
pub fn child_main(args: &Args) -> BenchResult<()> {
    let dir = std::path::PathBuf::from(args.required("dir")?);
    let port: u16 = args.need("port")?;
    let deliver: DeliverFn = Arc::new(move |_name: &str, data: &[u8], _source: &net::NetSource| {
        let seq = data.get(..8).map_or(u64::MAX, |b| {
            u64::from_le_bytes(b.try_into().expect("8 bytes"))
        });
        proc::report(&format!("got s={seq} t={}", sys::monotonic_ns()));
        DeliveryOutcome::Delivered
    });
    let role = NetRole::start(role_config(&dir, port), deliver)
        .map_err(|e| format!("cannot start the network role: {e}"))?;
    proc::report("ready");
    std::thread::spawn(move || {
        let state = role.wait_until(Duration::from_secs(24 * 3600), |s| {
            !matches!(s, RoleState::Waiting | RoleState::Starting)
        });
        match state {
            RoleState::Holding { .. } => {
                proc::report(&format!("holding t={}", sys::monotonic_ns()))
            }
            other => proc::report(&format!("error role ended as {other:?}")),
        }
        // Keep the role (owned by this thread) for the life of the process.
        loop {
            std::thread::park();
        }
    });
    while let Some(command) = proc::next_command() {
        if command == "retries" {
            proc::report("retries n=0");
        }
    }
    Ok(())
}

/// `__child flock-holder`: waits for an exclusive `flock` on `--path`, then binds UDP
/// 127.0.0.1:`--port` (retrying while the dead holder's socket is still bound), reports
/// `holding t=` and `got s= t=` for each datagram (its last 8 bytes are the sequence number);
/// keeps both until killed or stdin closes.
pub fn flock_main(args: &Args) -> BenchResult<()> {
    let path = args.required("path")?;
    let port: u16 = args.need("port")?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {path}: {e}"))?;
    let retries = Arc::new(std::sync::atomic::AtomicU64::new(0));
    proc::report("ready");
    {
        let retries = retries.clone();
        std::thread::spawn(move || {
            if let Err(e) = sys::flock_exclusive(&file) {
                proc::report(&format!("error flock: {e}"));
                return;
            }
            let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
            let socket = loop {
                match UdpSocket::bind(addr) {
                    Ok(s) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                        retries.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                    }
                    Err(e) => {
                        proc::report(&format!("error bind: {e}"));
                        return;
                    }
                }
            };
            proc::report(&format!("holding t={}", sys::monotonic_ns()));
            let mut buf = vec![0u8; 65_536];
            while let Ok(n) = socket.recv(&mut buf) {
                let seq = buf[..n]
                    .get(n.saturating_sub(8)..)
                    .filter(|_| n >= 8)
                    .map_or(u64::MAX, |b| {
                        u64::from_le_bytes(b.try_into().expect("8 bytes"))
                    });
                proc::report(&format!("got s={seq} t={}", sys::monotonic_ns()));
            }
            // Keep the lock (the file) for the life of the process.
            let _keep = file;
            loop {
                std::thread::park();
            }
        });
    }
    while let Some(command) = proc::next_command() {
        if command == "retries" {
            proc::report(&format!("retries n={}", retries.load(Ordering::Relaxed)));
        }
    }
    Ok(())
}
