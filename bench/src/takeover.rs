//! `takeover`: how long the host is deaf after `kill -9` of the network role's holder.
//!
//! A pool of role processes (this binary's `__child net-role`) start `mailslot::net::NetRole`
//! on one runtime directory and a free UDP port on 127.0.0.1; one holds the role, the others
//! wait in the election. The orchestrator sends a mailslot datagram to the port every
//! `--interval-us`. Each iteration it SIGKILLs the holder and measures, on the shared monotonic
//! clock, until the successor (a) reports `Holding` and (b) delivers its first datagram; then
//! it starts a replacement so the pool keeps its size. DESIGN.md §5: p99 of (b) under 5 ms.
//!
//! (b) includes up to one send interval of waiting for the next datagram after the successor
//! bound the port; datagrams sent while nobody had the port bound are lost by UDP itself.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailslot::net::{self, DeliverFn, Delivery, NetConfig, NetRole, Reporter, RoleState, Target};

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
            interval_us: args.get("interval-us", 100)?,
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

/// Waits until some child in `pool` has reported every kind in `kinds` (in any order: the
/// role's state and its first delivery are reported by different threads); returns its index
/// and the `t=` of each kind.
fn wait_all(pool: &mut [Child], kinds: &[&str]) -> BenchResult<(usize, Vec<u64>)> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut seen: Vec<Vec<Option<u64>>> = vec![vec![None; kinds.len()]; pool.len()];
    loop {
        for (i, child) in pool.iter_mut().enumerate() {
            while let Some(line) = child.try_line()? {
                if let Some(k) = kinds.iter().position(|k| *k == line.kind) {
                    seen[i][k] = Some(line.u64("t")?);
                }
            }
            if seen[i].iter().all(Option::is_some) {
                return Ok((i, seen[i].iter().map(|t| t.unwrap_or(0)).collect()));
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no role process reported {kinds:?} within {STEP_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

struct Sample {
    holding_ns: u64,
    first_ns: u64,
}

/// Which time of a sample a table row shows.
type Metric<'a> = &'a dyn Fn(&Sample) -> u64;

/// Kills the holder `iterations` times; after each kill waits for the successor's `holding`
/// and `first` reports and starts a replacement (`spawn`).
fn kill_loop(
    pool: &mut Vec<Child>,
    iterations: usize,
    spawn: &mut dyn FnMut() -> BenchResult<Child>,
) -> BenchResult<Vec<Sample>> {
    let (mut holder, _) = wait_all(pool, &["holding", "first"])?;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t_kill = sys::monotonic_ns();
        pool[holder].kill();
        pool.remove(holder);
        let (next, t) = wait_all(pool, &["holding", "first"])?;
        samples.push(Sample {
            holding_ns: t[0].saturating_sub(t_kill),
            first_ns: t[1].saturating_sub(t_kill),
        });
        holder = next;
        pool.push(spawn()?);
        // Let the new waiter park in the election before the next kill.
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(samples)
}

/// The baseline: processes that only wait in `flock(LOCK_EX)` on one file.
fn run_bare_flock(options: &Options) -> BenchResult<Vec<Sample>> {
    let dir = TempDir::new("flock")?;
    let mut n = 0;
    let mut spawn = || -> BenchResult<Child> {
        n += 1;
        let args = child_args(
            "flock-holder",
            &[("path", dir.path().join("lock").display().to_string())],
        );
        let mut child = Child::spawn(&format!("flock holder {n}"), &args)?;
        child.expect("ready")?;
        Ok(child)
    };
    let mut pool = Vec::with_capacity(options.pool);
    for _ in 0..options.pool {
        pool.push(spawn()?);
    }
    kill_loop(&mut pool, options.iterations, &mut spawn)
}

fn run_role(options: &Options) -> BenchResult<(Vec<Sample>, u64)> {
    let dir = TempDir::new("takeover")?;
    let port = free_port()?;
    let mut spawned = 0;
    let mut spawn = || -> BenchResult<Child> {
        spawned += 1;
        spawn_role(&dir, port, spawned)
    };
    let mut pool = Vec::with_capacity(options.pool);
    for _ in 0..options.pool {
        pool.push(spawn()?);
    }

    // The sender: one mailslot datagram every interval, until the end.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        let config = role_config(dir.path(), port);
        let interval = Duration::from_micros(options.interval_us);
        std::thread::spawn(move || -> BenchResult<u64> {
            let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
                .map_err(|e| format!("sender: {e}"))?;
            let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
            let target = Target::Host("127.0.0.1".into());
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let body = seq.to_le_bytes();
                let datagram = net::encode(&config, &target, "BENCH", &body, &Default::default())
                    .map_err(|e| format!("sender: cannot encode: {e}"))?;
                // Refused while nobody has the port bound: UDP loses it, as on a real host.
                let _ = socket.send_to(&datagram, to);
                seq += 1;
                std::thread::sleep(interval);
            }
            Ok(seq)
        })
    };
    let result = kill_loop(&mut pool, options.iterations, &mut spawn);
    stop.store(true, Ordering::Relaxed);
    let sent = sender
        .join()
        .map_err(|_| "sender thread panicked".to_owned())??;
    drop(pool);
    Ok((result?, sent))
}

pub fn run(options: &Options) -> BenchResult<(Vec<Table>, Vec<Record>)> {
    eprintln!("takeover: bare flock baseline ...");
    let bare = run_bare_flock(options)?;
    eprintln!("takeover: network role ...");
    let (role, sent) = run_role(options)?;

    let stats = |samples: &[Sample], f: &dyn Fn(&Sample) -> u64| {
        let mut v: Vec<u64> = samples.iter().map(f).collect();
        v.sort_unstable();
        let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
        (at(0.5), at(0.99), v[v.len() - 1])
    };
    let mut table = Table::new(
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
    let (b50, b99, _) = stats(&bare, &holding);
    let rows: [(&str, &[Sample], Metric<'_>, bool); 3] = [
        (
            "bare flock: the next waiter has the lock",
            &bare,
            &holding,
            false,
        ),
        ("role: the successor holds the role", &role, &holding, false),
        ("role: the successor receives", &role, &first, true),
    ];
    for (what, samples, f, judged) in rows {
        let (p50, p99, max) = stats(samples, f);
        let verdict = match (judged, p99 < 5_000_000) {
            (false, _) => "-".to_owned(),
            (true, true) => "p99 < 5 ms: met".to_owned(),
            (true, false) => "p99 < 5 ms: NOT met".to_owned(),
        };
        table.row(vec![
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
                ("kills", samples.len().into()),
            ],
        ));
    }
    table.note(format!(
        "{} kills each; pools of {} processes. Bare: processes blocked in flock(LOCK_EX) on one \
         file, the next one reports when it has the lock. Role: NetRole on 127.0.0.1 (one \
         runtime directory), a mailslot datagram every {} us ({sent} sent); `receives` includes \
         up to one send interval. Times from SIGKILL to the successor's report, monotonic clock.",
        options.iterations, options.pool, options.interval_us
    ));
    Ok((vec![table], records))
}

// ---- child role --------------------------------------------------------------------------

/// `__child net-role`: runs the role; reports `holding t=` once it holds, `first t=` on its
/// first delivered datagram; exits when stdin closes (or when killed).
pub fn child_main(args: &Args) -> BenchResult<()> {
    let dir = std::path::PathBuf::from(args.required("dir")?);
    let port: u16 = args.need("port")?;
    let first = Arc::new(AtomicBool::new(true));
    let deliver: DeliverFn = {
        let first = first.clone();
        Arc::new(move |_name: &str, _data: &[u8], _source: &net::NetSource| {
            if first.swap(false, Ordering::Relaxed) {
                proc::report(&format!("first t={}", sys::monotonic_ns()));
            }
            Delivery::Delivered
        })
    };
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
    while proc::next_command().is_some() {}
    Ok(())
}

/// `__child flock-holder`: waits for an exclusive `flock` on `--path`, then reports
/// `holding`/`first` at once and keeps it until killed or stdin closes.
pub fn flock_main(args: &Args) -> BenchResult<()> {
    let path = args.required("path")?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {path}: {e}"))?;
    proc::report("ready");
    std::thread::spawn(move || {
        match sys::flock_exclusive(&file) {
            Ok(()) => {
                let t = sys::monotonic_ns();
                proc::report(&format!("holding t={t}"));
                proc::report(&format!("first t={t}"));
            }
            Err(e) => proc::report(&format!("error flock: {e}")),
        }
        loop {
            std::thread::park();
        }
    });
    while proc::next_command().is_some() {}
    Ok(())
}
