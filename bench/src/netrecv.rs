//! `netrecv`: datagrams per second the network role receives and delivers into a shared name
//! with k instances, against two bare loops under the same flood.
//!
//! `--senders` sender processes (this binary's `__child netrecv-sender`) each encode their
//! share of `--datagrams` mailslot datagrams up front and, on `go`, send them to 127.0.0.1 as
//! fast as they can (UDP has no flow control: what the receiver cannot take, the kernel drops).
//! Every receiver asks for the same `SO_RCVBUF` (`--rcvbuf`, default 1 MiB, what the role asks
//! for) and the table prints what the kernel granted each (`getsockopt`, or `ss -m` for the
//! role's socket, which the bench cannot reach).
//!
//! Receivers, one at a time, each under its own flood:
//! - bare: one process in a `recv` loop (receiving is all it does);
//! - forward: one process in a `recv` loop that forwards every datagram to k processes over
//!   connected Unix datagram sockets (blocking sends): receiving plus delivering into k
//!   processes, the work the role does, without mailslot;
//! - mailslot: k reader processes on one shared name and one process holding
//!   `mailslot::net::NetRole` with the library's default local sink.
//!
//! Per receiver: `received` (what left the UDP socket), `delivered` (what reached every one of
//! the k consumers: the minimum over them; = received for the bare loop), `dropped` = sent -
//! received (the kernel's drops at the full socket buffer). Rates are per second of `last
//! arrival - first send`. Target: at least 0.8x the bare loop.

use std::io::ErrorKind as IoKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mailslot::net::{self, NetRole, RemoteTarget, RoleState, Sink};
use mailslot::{ErrorKind, Scope, Server, Timeout};

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
    pub senders: usize,
    pub rcvbuf: usize,
}

impl Options {
    pub const KEYS: &'static [&'static str] = &[
        "datagrams",
        "instances",
        "size",
        "net-rounds",
        "senders",
        "rcvbuf",
        "out",
    ];

    pub fn from_args(args: &Args) -> BenchResult<Options> {
        let options = Options {
            datagrams: args.get("datagrams", 50_000)?,
            instances: args.get("instances", 4)?,
            size: args.get("size", 64)?,
            rounds: args.get("net-rounds", 3)?,
            senders: args.get("senders", 3)?,
            rcvbuf: args.get("rcvbuf", 1 << 20)?,
        };
        if options.datagrams == 0
            || options.instances == 0
            || options.rounds == 0
            || options.senders == 0
        {
            return Err(
                "netrecv needs --datagrams, --instances, --net-rounds, --senders >= 1".into(),
            );
        }
        if !(8..=1024).contains(&options.size) {
            return Err("netrecv --size must be 8..=1024".into());
        }
        Ok(options)
    }
}

/// The three receivers, in the order they run and are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receiver {
    Bare,
    Forward,
    Mailslot,
    /// The role with a candidate standing by, holding its socket: batches are peeked and
    /// taken off once delivered, so that a takeover loses nothing.
    MailslotStandby,
}

impl Receiver {
    const ALL: [Receiver; 4] = [
        Receiver::Bare,
        Receiver::Forward,
        Receiver::Mailslot,
        Receiver::MailslotStandby,
    ];

    fn label(self, k: usize) -> String {
        match self {
            Receiver::Bare => "bare UDP recv loop".into(),
            Receiver::Forward => format!("bare loop forwarding to {k} (unix dgram)"),
            Receiver::Mailslot => format!("mailslot role (local sink) into {k}"),
            Receiver::MailslotStandby => {
                format!("mailslot role into {k}, a candidate standing by")
            }
        }
    }

    /// The label in the raw records (stable, without k).
    fn key(self) -> &'static str {
        match self {
            Receiver::Bare => "bare",
            Receiver::Forward => "forward",
            Receiver::Mailslot => "mailslot",
            Receiver::MailslotStandby => "mailslot-standby",
        }
    }
}

#[derive(Debug, Clone)]
struct Outcome {
    sent: u64,
    received: u64,
    delivered: u64,
    seconds: f64,
    /// `SO_RCVBUF` as granted (the kernel's doubled value), `None` if it could not be read.
    rcvbuf: Option<usize>,
}

impl Outcome {
    fn rate(&self, n: u64) -> f64 {
        n as f64 / self.seconds.max(1e-9)
    }
    fn dropped(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

/// Starts the senders (each encodes its share), returns them ready for `go`.
fn senders(dir: &Path, port: u16, options: &Options) -> BenchResult<Vec<Child>> {
    (0..options.senders)
        .map(|i| {
            let mut child = Child::spawn(
                &format!("netrecv sender {i}"),
                &child_args(
                    "netrecv-sender",
                    &[
                        ("dir", dir.display().to_string()),
                        ("port", port.to_string()),
                        ("index", i.to_string()),
                        ("senders", options.senders.to_string()),
                        ("datagrams", options.datagrams.to_string()),
                        ("size", options.size.to_string()),
                    ],
                ),
            )?;
            child.expect("ready")?;
            Ok(child)
        })
        .collect()
}

/// Lets every sender go at once; returns (first send, datagrams sent) once all are done.
fn flood(senders: &mut [Child]) -> BenchResult<(u64, u64)> {
    for s in senders.iter_mut() {
        s.send("go")?;
    }
    let (mut first, mut sent) = (u64::MAX, 0);
    for s in senders.iter_mut() {
        let done = s.expect("sent")?;
        first = first.min(done.u64("t_start")?);
        sent += done.u64("n")?;
    }
    Ok((first, sent))
}

/// The receive buffer of the UDP socket bound to `port`, as `ss -m` shows it (`rb`).
fn ss_rcvbuf(port: u16) -> Option<usize> {
    let out = std::process::Command::new("ss")
        .args(["-u", "-a", "-n", "-m", "sport", "=", &format!(":{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("rb")? + 2;
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

fn run_one(receiver: Receiver, options: &Options) -> BenchResult<Outcome> {
    let dir = TempDir::new("netrecv")?;
    let port = free_port()?;
    let dir_arg = dir.path().display().to_string();
    let k = options.instances;
    let mut consumers = Vec::new();
    let rcvbuf = options.rcvbuf.to_string();
    let main = match receiver {
        Receiver::Bare => Child::spawn(
            "udp receiver",
            &child_args(
                "udp-recv",
                &[("port", port.to_string()), ("rcvbuf", rcvbuf)],
            ),
        )?,
        Receiver::Forward => {
            for i in 0..k {
                let mut c = Child::spawn(
                    &format!("forward target {i}"),
                    &child_args(
                        "fwd-instance",
                        &[("dir", dir_arg.clone()), ("index", i.to_string())],
                    ),
                )?;
                c.expect("ready")?;
                consumers.push(c);
            }
            Child::spawn(
                "udp forwarder",
                &child_args(
                    "udp-forward",
                    &[
                        ("port", port.to_string()),
                        ("rcvbuf", rcvbuf),
                        ("dir", dir_arg.clone()),
                        ("instances", k.to_string()),
                    ],
                ),
            )?
        }
        Receiver::Mailslot | Receiver::MailslotStandby => {
            // Room for the whole flood: a reader that falls behind shows as fewer delivered.
            let capacity = options.datagrams * crate::peers::mailslot::record(options.size);
            for i in 0..k {
                let mut c = Child::spawn(
                    &format!("netrecv instance {i}"),
                    &child_args(
                        "netrecv-instance",
                        &[
                            ("dir", dir_arg.clone()),
                            ("capacity", capacity.to_string()),
                            ("size", options.size.to_string()),
                        ],
                    ),
                )?;
                c.expect("ready")?;
                consumers.push(c);
            }
            Child::spawn(
                "netrecv role",
                &child_args(
                    "netrecv-role",
                    &[("dir", dir_arg.clone()), ("port", port.to_string())],
                ),
            )?
        }
    };
    let mut main = main;
    let ready = main.expect("ready")?;
    if receiver == Receiver::MailslotStandby {
        let mut standby = Child::spawn(
            "netrecv standby",
            &child_args(
                "netrecv-role",
                &[
                    ("dir", dir_arg.clone()),
                    ("port", port.to_string()),
                    ("standby", "1".into()),
                ],
            ),
        )?;
        standby.expect("ready")?;
        consumers.push(standby);
    }
    let rcvbuf = ready
        .u64("rcvbuf")
        .ok()
        .map(|v| v as usize)
        .or_else(|| ss_rcvbuf(port));
    let mut senders = senders(dir.path(), port, options)?;
    let (start, sent) = flood(&mut senders)?;
    let outcome = match receiver {
        Receiver::Bare => {
            let done = main.expect("done")?;
            let received = done.u64("count")?;
            Outcome {
                sent,
                received,
                delivered: received,
                seconds: done.u64("t_last")?.saturating_sub(start) as f64 / 1e9,
                rcvbuf,
            }
        }
        Receiver::Forward | Receiver::Mailslot | Receiver::MailslotStandby => {
            let (mut delivered, mut last) = (u64::MAX, 0u64);
            for c in consumers.iter_mut().take(k) {
                let done = c.expect("done")?;
                delivered = delivered.min(done.u64("count")?);
                last = last.max(done.u64("t_last")?);
            }
            let received = if receiver == Receiver::Forward {
                main.expect("done")?.u64("count")?
            } else {
                main.send("counters")?;
                main.expect("counters")?.u64("received")?
            };
            Outcome {
                sent,
                received,
                delivered,
                seconds: last.saturating_sub(start) as f64 / 1e9,
                rcvbuf,
            }
        }
    };
    consumers.push(main);
    consumers.extend(senders);
    proc::finish_all(consumers)?;
    Ok(outcome)
}

pub fn run(options: &Options) -> BenchResult<(Vec<Table>, Vec<Record>)> {
    let mut all: Vec<Vec<Outcome>> = vec![Vec::new(); Receiver::ALL.len()];
    for round in 0..options.rounds {
        eprintln!("netrecv: round {}/{} ...", round + 1, options.rounds);
        // Side by side per round, so a burst of outside load hits them alike.
        for (i, &r) in Receiver::ALL.iter().enumerate() {
            all[i].push(run_one(r, options)?);
        }
    }
    let medians: Vec<Outcome> = all
        .into_iter()
        .map(|mut v| {
            v.sort_by(|a, b| a.rate(a.delivered).total_cmp(&b.rate(b.delivered)));
            v.swap_remove(v.len() / 2)
        })
        .collect();
    let (bare, forward) = (&medians[0], &medians[1]);
    let k = options.instances;
    let mut table = Table::new(
        format!(
            "network receive: {} senders, {}-byte datagrams, into {k} consumers",
            options.senders, options.size
        ),
        &[
            "receiver",
            "SO_RCVBUF granted",
            "sent",
            "received",
            "delivered",
            "dropped",
            "received/s",
            "delivered/s",
            "dropped/s",
            "delivered/s vs bare",
            "delivered/s vs forward",
        ],
    );
    let mut records = Vec::new();
    for (&r, o) in Receiver::ALL.iter().zip(&medians) {
        let vs = |base: &Outcome| format!("{:.2}", o.rate(o.delivered) / base.rate(base.delivered));
        table.row(vec![
            r.label(k),
            o.rcvbuf.map_or("?".into(), |b| b.to_string()),
            o.sent.to_string(),
            o.received.to_string(),
            o.delivered.to_string(),
            o.dropped().to_string(),
            format!("{:.0}", o.rate(o.received)),
            format!("{:.0}", o.rate(o.delivered)),
            format!("{:.0}", o.rate(o.dropped())),
            vs(bare),
            vs(forward),
        ]);
        records.push(Record::new(
            "netrecv",
            vec![
                ("receiver", r.key().into()),
                ("label", r.label(k).as_str().into()),
                ("rcvbuf_granted", o.rcvbuf.unwrap_or(0).into()),
                ("rcvbuf_requested", options.rcvbuf.into()),
                ("sent", o.sent.into()),
                ("received", o.received.into()),
                ("delivered", o.delivered.into()),
                ("dropped", o.dropped().into()),
                ("seconds", o.seconds.into()),
                ("received_per_s", o.rate(o.received).into()),
                ("datagrams_per_s", o.rate(o.delivered).into()),
                ("dropped_per_s", o.rate(o.dropped()).into()),
                ("instances", k.into()),
                ("senders", options.senders.into()),
                ("size", options.size.into()),
            ],
        ));
    }
    table.note(format!(
        "Median of {} rounds (by delivered/s), receivers side by side in each round. {} sender \
         processes share a flood of {} datagrams to 127.0.0.1, each as fast as it can. Every \
         receiver asks for SO_RCVBUF = {} bytes (the role's own request); `granted` is the \
         kernel's value (getsockopt, or `ss -m` for the role: doubled, capped by \
         net.core.rmem_max). received = left the UDP socket; delivered = reached every one of \
         the {k} consumers (the minimum over them; the bare loop delivers nowhere, so = \
         received); dropped = sent - received (the kernel's drops at the full socket buffer). \
         Rates per second of (last arrival - first send). forward = a bare loop that sends \
         each datagram on to {k} processes over connected Unix datagram sockets (blocking): \
         the delivery work without mailslot. A candidate standing by holds duplicates of the \
         role's sockets (a second role process, waiting): the holder then peeks each batch \
         and takes it off the socket once delivered, so that a takeover loses nothing. \
         Target: >= 0.8x the bare loop (the role without a candidate).",
        options.rounds, options.senders, options.datagrams, options.rcvbuf
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

fn quiet(e: &std::io::Error) -> bool {
    matches!(e.kind(), IoKind::WouldBlock | IoKind::TimedOut)
}

/// A UDP socket on 127.0.0.1:`--port` with `--rcvbuf` asked for; returns it and the grant.
fn udp_socket(args: &Args, who: &str) -> BenchResult<(UdpSocket, usize)> {
    let port: u16 = args.need("port")?;
    let rcvbuf: usize = args.need("rcvbuf")?;
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("{who}: {e}"))?;
    let granted = sys::set_rcvbuf(&socket, rcvbuf).map_err(|e| format!("{who}: SO_RCVBUF: {e}"))?;
    socket
        .set_read_timeout(Some(QUIET))
        .map_err(|e| format!("{who}: {e}"))?;
    Ok((socket, granted))
}

/// `__child netrecv-sender`: encodes datagrams `index, index + senders, ...` (datagram `i`
/// carries `i` in its first 8 bytes); on `go` sends them all, reports `sent`.
pub fn sender_main(args: &Args) -> BenchResult<()> {
    let dir = PathBuf::from(args.required("dir")?);
    let port: u16 = args.need("port")?;
    let index: usize = args.need("index")?;
    let senders: usize = args.need("senders")?;
    let total: usize = args.need("datagrams")?;
    let size: usize = args.need("size")?;
    let config = role_config(&dir, port);
    let target = RemoteTarget::Host("127.0.0.1".into());
    let datagrams = (index..total)
        .step_by(senders)
        .map(|i| {
            let mut body = vec![0x5au8; size];
            body[..8].copy_from_slice(&(i as u64).to_le_bytes());
            net::encode(&config, &target, NAME, &body, &Default::default())
                .map_err(|e| format!("cannot encode a datagram: {e}"))
        })
        .collect::<BenchResult<Vec<_>>>()?;
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("sender: {e}"))?;
    socket
        .connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("sender: {e}"))?;
    proc::report("ready");
    if proc::next_command().as_deref() != Some("go") {
        return Err("expected `go`".into());
    }
    let t_start = sys::monotonic_ns();
    for d in &datagrams {
        // ECONNREFUSED can only come from an earlier datagram nobody received: ignore it.
        let _ = socket.send(d);
    }
    proc::report(&format!("sent t_start={t_start} n={}", datagrams.len()));
    while proc::next_command().is_some() {}
    Ok(())
}

/// `__child udp-recv`: the bare loop.
pub fn udp_main(args: &Args) -> BenchResult<()> {
    let (socket, granted) = udp_socket(args, "udp-recv")?;
    proc::report(&format!("ready rcvbuf={granted}"));
    let mut buf = vec![0u8; 65_536];
    count_until_quiet(|| match socket.recv(&mut buf) {
        Ok(_) => Ok(true),
        Err(e) if quiet(&e) => Ok(false),
        Err(e) => Err(format!("udp-recv: {e}")),
    })?;
    while proc::next_command().is_some() {}
    Ok(())
}

fn fwd_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("fwd-{index}.sock"))
}

/// `__child udp-forward`: the bare loop that forwards each datagram to `--instances`
/// processes over connected Unix datagram sockets.
pub fn forward_main(args: &Args) -> BenchResult<()> {
    let dir = PathBuf::from(args.required("dir")?);
    let k: usize = args.need("instances")?;
    let (socket, granted) = udp_socket(args, "udp-forward")?;
    let targets = (0..k)
        .map(|i| {
            let s = UnixDatagram::unbound()?;
            s.connect(fwd_path(&dir, i))?;
            Ok(s)
        })
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("udp-forward: connect: {e}"))?;
    proc::report(&format!("ready rcvbuf={granted}"));
    let mut buf = vec![0u8; 65_536];
    count_until_quiet(|| match socket.recv(&mut buf) {
        Ok(n) => {
            for t in &targets {
                // A target that stopped after a quiet spell (a stall of this loop on a loaded
                // host) refuses: what it misses shows in its count, as for a mailslot instance.
                let _ = t.send(&buf[..n]);
            }
            Ok(true)
        }
        Err(e) if quiet(&e) => Ok(false),
        Err(e) => Err(format!("udp-forward: {e}")),
    })?;
    while proc::next_command().is_some() {}
    Ok(())
}

/// `__child fwd-instance`: one target of the forwarding loop.
pub fn fwd_instance_main(args: &Args) -> BenchResult<()> {
    let dir = PathBuf::from(args.required("dir")?);
    let index: usize = args.need("index")?;
    let socket = UnixDatagram::bind(fwd_path(&dir, index))
        .map_err(|e| format!("fwd-instance: bind: {e}"))?;
    socket
        .set_read_timeout(Some(QUIET))
        .map_err(|e| format!("fwd-instance: {e}"))?;
    proc::report("ready");
    let mut buf = vec![0u8; 65_536];
    count_until_quiet(|| match socket.recv(&mut buf) {
        Ok(_) => Ok(true),
        Err(e) if quiet(&e) => Ok(false),
        Err(e) => Err(format!("fwd-instance: {e}")),
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

/// `__child netrecv-role`: holds the role and delivers into the runtime directory; on
/// `counters` reports what the role received. With `--standby 1`: a candidate behind the
/// holder, ready once it holds duplicates of the holder's sockets.
pub fn role_main(args: &Args) -> BenchResult<()> {
    let dir = PathBuf::from(args.required("dir")?);
    let port: u16 = args.need("port")?;
    // The library's own local sink (the default): batches, one wake-up per name per batch.
    let role = NetRole::start(role_config(&dir, port), Sink::Local)
        .map_err(|e| format!("cannot start the network role: {e}"))?;
    if args.get("standby", 0u8)? == 1 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !role.standby() {
            if std::time::Instant::now() > deadline {
                return Err("the candidate did not get the holder's sockets".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        proc::report("ready");
        while proc::next_command().is_some() {}
        return Ok(());
    }
    match role.wait_settled(Duration::from_secs(10)) {
        // The role's socket is out of reach: the orchestrator reads its buffer with `ss`.
        RoleState::Holding { .. } => proc::report("ready"),
        other => return Err(format!("the network role did not start: {other:?}")),
    }
    while let Some(command) = proc::next_command() {
        if command == "counters" {
            let c = role.counters();
            proc::report(&format!(
                "counters received={} delivered={} dropped_kernel={} dropped_failed={}",
                c.received, c.delivered, c.dropped_kernel, c.dropped_failed
            ));
        }
    }
    Ok(())
}
