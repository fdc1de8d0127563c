//! `netrecv`: datagrams per second the network role delivers into a shared name with 4
//! instances, against a bare UDP receive loop on the same port, under the same flood.
//!
//! The orchestrator encodes `--datagrams` mailslot datagrams up front and sends them to
//! 127.0.0.1 as fast as it can (UDP has no flow control: what the receiver cannot take, the
//! kernel drops and counts). Baseline: one process in a `recv` loop. Mailslot: `--instances`
//! reader processes on one shared name, and one process holding `mailslot::net::NetRole`
//! whose delivery callback is a `mailslot::Deliverer`. Rate = datagrams that reached every
//! instance / (last arrival - first send). DESIGN.md §5: at least 0.8x the bare loop.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailslot::net::{self, DeliverFn, Delivery, NetRole, RoleState, Target};
use mailslot::{Deliverer, ErrorKind, Scope, Server, Source, Timeout};

use crate::args::{child_args, Args};
use crate::proc::{self, BenchResult, Child, TempDir};
use crate::report::{Record, Table};
use crate::sys;
use crate::takeover::{free_port, role_config};

/// The shared name the network writes to.
const NAME: &str = "BENCHNET";
/// A receiver that has seen traffic stops after this long without any.
const QUIET: Duration = Duration::from_millis(300);

#[derive(Debug, Clone)]
pub struct Options {
    pub datagrams: usize,
    pub instances: usize,
    pub size: usize,
    pub rounds: usize,
}

impl Options {
    pub const KEYS: &'static [&'static str] =
        &["datagrams", "instances", "size", "net-rounds", "out"];

    pub fn from_args(args: &Args) -> BenchResult<Options> {
        let options = Options {
            datagrams: args.get("datagrams", 50_000)?,
            instances: args.get("instances", 4)?,
            size: args.get("size", 64)?,
            rounds: args.get("net-rounds", 3)?,
        };
        if options.datagrams == 0 || options.instances == 0 || options.rounds == 0 {
            return Err("netrecv needs --datagrams, --instances, --net-rounds >= 1".into());
        }
        if !(8..=1024).contains(&options.size) {
            return Err("netrecv --size must be 8..=1024".into());
        }
        Ok(options)
    }
}

struct Outcome {
    delivered: u64,
    seconds: f64,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.delivered as f64 / self.seconds
    }
}

/// Encodes the flood: datagram `i` carries `i` in its first 8 bytes.
fn flood(dir: &std::path::Path, port: u16, options: &Options) -> BenchResult<Vec<Vec<u8>>> {
    let config = role_config(dir, port);
    let target = Target::Host("127.0.0.1".into());
    (0..options.datagrams)
        .map(|i| {
            let mut body = vec![0x5au8; options.size];
            body[..8].copy_from_slice(&(i as u64).to_le_bytes());
            net::encode(&config, &target, NAME, &body, &Default::default())
                .map_err(|e| format!("cannot encode a datagram: {e}"))
        })
        .collect()
}

/// Sends the flood; returns the monotonic time of the first send.
fn send(port: u16, datagrams: &[Vec<u8>]) -> BenchResult<u64> {
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("sender: {e}"))?;
    socket
        .connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("sender: {e}"))?;
    let start = sys::monotonic_ns();
    for d in datagrams {
        // ECONNREFUSED can only come from an earlier datagram nobody received: ignore it.
        let _ = socket.send(d);
    }
    Ok(start)
}

fn run_udp(options: &Options) -> BenchResult<Outcome> {
    let dir = TempDir::new("netrecv")?;
    let port = free_port()?;
    let datagrams = flood(dir.path(), port, options)?;
    let mut receiver = Child::spawn(
        "udp receiver",
        &child_args("udp-recv", &[("port", port.to_string())]),
    )?;
    receiver.expect("ready")?;
    let start = send(port, &datagrams)?;
    let done = receiver.expect("done")?;
    proc::finish_all(vec![receiver])?;
    Ok(Outcome {
        delivered: done.u64("count")?,
        seconds: done.u64("t_last")?.saturating_sub(start) as f64 / 1e9,
    })
}

fn run_mailslot(options: &Options) -> BenchResult<Outcome> {
    let dir = TempDir::new("netrecv")?;
    let port = free_port()?;
    let datagrams = flood(dir.path(), port, options)?;
    // Room for the whole flood: a reader that falls behind shows as fewer delivered, not lost.
    let capacity = options.datagrams * crate::peers::mailslot::record(options.size);
    let mut readers = Vec::new();
    for i in 0..options.instances {
        let mut reader = Child::spawn(
            &format!("netrecv instance {i}"),
            &child_args(
                "netrecv-instance",
                &[
                    ("dir", dir.path().display().to_string()),
                    ("capacity", capacity.to_string()),
                    ("size", options.size.to_string()),
                ],
            ),
        )?;
        reader.expect("ready")?;
        readers.push(reader);
    }
    let mut role = Child::spawn(
        "netrecv role",
        &child_args(
            "netrecv-role",
            &[
                ("dir", dir.path().display().to_string()),
                ("port", port.to_string()),
            ],
        ),
    )?;
    role.expect("ready")?;
    let start = send(port, &datagrams)?;
    let (mut delivered, mut last) = (u64::MAX, 0u64);
    for reader in &mut readers {
        let done = reader.expect("done")?;
        delivered = delivered.min(done.u64("count")?);
        last = last.max(done.u64("t_last")?);
    }
    readers.push(role);
    proc::finish_all(readers)?;
    Ok(Outcome {
        delivered,
        seconds: last.saturating_sub(start) as f64 / 1e9,
    })
}

pub fn run(options: &Options) -> BenchResult<(Vec<Table>, Vec<Record>)> {
    let mut udp = Vec::new();
    let mut mailslot = Vec::new();
    for round in 0..options.rounds {
        eprintln!("netrecv: round {}/{} ...", round + 1, options.rounds);
        udp.push(run_udp(options)?);
        mailslot.push(run_mailslot(options)?);
    }
    let median = |v: &mut Vec<Outcome>| {
        v.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
        v.swap_remove(v.len() / 2)
    };
    let udp = median(&mut udp);
    let mailslot = median(&mut mailslot);
    let mut table = Table::new(
        format!(
            "network receive into a shared name with {} instances, {}-byte messages",
            options.instances, options.size
        ),
        &[
            "receiver",
            "datagrams/s",
            "vs bare UDP",
            "delivered",
            "sent",
        ],
    );
    let mut records = Vec::new();
    for (what, o) in [
        ("bare UDP recv loop", &udp),
        ("mailslot role + Deliverer", &mailslot),
    ] {
        table.row(vec![
            what.into(),
            format!("{:.0}", o.rate()),
            format!("{:.2}", o.rate() / udp.rate()),
            o.delivered.to_string(),
            options.datagrams.to_string(),
        ]);
        records.push(Record::new(
            "netrecv",
            vec![
                ("receiver", what.into()),
                ("datagrams_per_s", o.rate().into()),
                ("delivered", o.delivered.into()),
                ("sent", options.datagrams.into()),
                ("instances", options.instances.into()),
                ("size", options.size.into()),
            ],
        ));
    }
    table.note(format!(
        "Median of {} rounds. A flood of {} datagrams sent as fast as one process can to \
         127.0.0.1; what a receiver cannot take the kernel drops, so `delivered` < `sent` \
         measures saturation. Mailslot `delivered` = datagrams that reached all {} instances; \
         rate = delivered / (last arrival - first send). Target: >= 0.8x the bare loop.",
        options.rounds, options.datagrams, options.instances
    ));
    Ok((vec![table], records))
}

// ---- child roles -------------------------------------------------------------------------

/// Counts arrivals until `QUIET` passes without one (after the first).
fn count_until_quiet(mut next: impl FnMut() -> BenchResult<bool>) -> BenchResult<()> {
    let (mut count, mut t_last) = (0u64, 0u64);
    loop {
        if !next()? {
            if count > 0 {
                break;
            }
            continue;
        }
        count += 1;
        t_last = sys::monotonic_ns();
    }
    proc::report(&format!("done count={count} t_last={t_last}"));
    Ok(())
}

/// `__child udp-recv`: the bare loop.
pub fn udp_main(args: &Args) -> BenchResult<()> {
    let port: u16 = args.need("port")?;
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("udp-recv: {e}"))?;
    socket
        .set_read_timeout(Some(QUIET))
        .map_err(|e| format!("udp-recv: {e}"))?;
    proc::report("ready");
    let mut buf = vec![0u8; 65_536];
    count_until_quiet(|| match socket.recv(&mut buf) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(format!("udp-recv: {e}")),
    })
}

/// `__child netrecv-instance`: one instance of the shared name.
pub fn instance_main(args: &Args) -> BenchResult<()> {
    let dir = PathBuf::from(args.required("dir")?);
    let capacity: usize = args.need("capacity")?;
    let size: usize = args.need("size")?;
    let mut server = Server::builder(NAME)
        .shared(true)
        .scope(Scope::Dir(dir))
        .capacity(capacity)
        .read_timeout(Timeout::After(QUIET))
        .open()
        .map_err(|e| format!("netrecv instance: {e}"))?;
    proc::report("ready");
    let mut buf = vec![0u8; size.max(64) * 2];
    count_until_quiet(|| match server.recv_into(&mut buf) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::TimedOut => Ok(false),
        Err(e) => Err(format!("netrecv instance: {e}")),
    })
}

/// `__child netrecv-role`: holds the role and delivers into the runtime directory.
pub fn role_main(args: &Args) -> BenchResult<()> {
    let dir = PathBuf::from(args.required("dir")?);
    let port: u16 = args.need("port")?;
    let deliverer = Arc::new(Mutex::new(Deliverer::new(dir.clone())));
    let deliver: DeliverFn = Arc::new(move |name: &str, data: &[u8], s: &net::NetSource| {
        let source = Source::Network {
            ip: s.ip,
            port: s.port,
            netbios_name: s.netbios_name.clone(),
            suffix: s.netbios_suffix,
        };
        let mut deliverer = deliverer.lock().unwrap_or_else(|p| p.into_inner());
        match deliverer.deliver(name, data, &source) {
            Ok(()) => Delivery::Delivered,
            Err(e) if e.kind() == ErrorKind::NotFound => Delivery::NoMailslot,
            Err(e) => Delivery::Failed(e.to_string()),
        }
    });
    let role = NetRole::start(role_config(&dir, port), deliver)
        .map_err(|e| format!("cannot start the network role: {e}"))?;
    match role.wait_settled(Duration::from_secs(10)) {
        RoleState::Holding { .. } => proc::report("ready"),
        other => return Err(format!("the network role did not start: {other:?}")),
    }
    while proc::next_command().is_some() {}
    Ok(())
}
