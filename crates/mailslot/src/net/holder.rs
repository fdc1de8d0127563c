//! The holder's term: bind the ports (or take the host service's feed), then the receive loop:
//! read the datagram socket in batches, ask the inbound step about each datagram, deliver the
//! batch, count, answer name queries, flush the state file; until this process lets go.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use socket2::{Domain, Protocol, Socket, Type};

use super::claim::{self, Claims, Outgoing};
use super::config::{NetConfig, Reporter, Sink};
use super::handoff::{HandoffServer, Standby};
use super::iface::{self, Interface};
use super::inbound::{answer_addr, Accepted, Inbound, Verdict};
use super::nameservice;
use super::pending::Pending;
use super::role::{identity, lock, set_state, End, Entry, RoleState};
use super::sink::Delivering;
use super::state::{Counters, StateRecord, FLUSH_INTERVAL};
use crate::sys::{self, RecvBatch};

/// How long a new holder keeps retrying a bind that fails with `EADDRINUSE` (the previous
/// holder's socket may still be closing).
const BIND_RETRY: Duration = Duration::from_millis(250);
/// Receive buffer per datagram: the largest UDP payload fits, so nothing is ever truncated
/// silently.
const RECV_BUF: usize = 65_536;
/// Datagrams per `recvmmsg`: one system call, one delivery and one wake-up per name for up to
/// this many.
const RECV_BATCH: usize = 64;
/// Batches handled between two checks of the stop signal under load.
const DRAIN_BATCHES: usize = 16;

fn base_record(config: &NetConfig) -> StateRecord {
    StateRecord {
        pid: std::process::id(),
        port: config.port,
        netbios_name: config.netbios_name.clone(),
        workgroup: config.workgroup.clone(),
        ..StateRecord::default()
    }
}

/// Bind, run the loop, clean up. `Err` only for a failure of the loop itself.
pub(super) fn hold(
    entry: &Arc<Entry>,
    config: &NetConfig,
    sink: Sink,
    stop_rx: UnixDatagram,
    standby: Option<Standby>,
) -> End {
    // Validated by `NetRole::start`; a failure here is only a defence.
    let identity = match identity(config) {
        Ok(i) => i,
        Err(e) => return End::Unavailable(e.to_string()),
    };
    let state_path = config.state_path();
    if config.via_host_service {
        if let Some(sub) = crate::service::Subscription::start(config.port) {
            return hold_via_service(entry, config, sink, &stop_rx, sub);
        }
    }
    // What the previous holder left (a `kill -9` leaves "holding").
    let prev = fs::read_to_string(&state_path)
        .map(|t| StateRecord::parse(&t))
        .unwrap_or_default();
    let (standby_udp, standby_ns) = match standby {
        Some(s) => (Some(s.udp), s.ns),
        None => (None, None),
    };
    // The previous holder's socket, if we have it: it is bound already, and what arrived since
    // that holder stopped reading is queued on it.
    let inherited = standby_udp.and_then(|s| inherit(s, config.bind, config.port));
    let from_standby = inherited.is_some();
    let bound = match inherited {
        Some(s) => {
            let shared = socket2::SockRef::from(&s).reuse_address().unwrap_or(false);
            Ok((s, shared))
        }
        None => bind_role_socket(config, &prev),
    };
    let (udp, shared) = match bound {
        Ok(x) => x,
        Err(reason) => {
            let mut rec = base_record(config);
            rec.state = "unavailable".into();
            rec.reason = reason.clone();
            let _ = rec.write(&state_path);
            config
                .reporter
                .report(&format!("network role unavailable: {reason}"));
            return End::Unavailable(reason);
        }
    };
    let local = match udp.local_addr() {
        Ok(std::net::SocketAddr::V4(a)) => a,
        _ => SocketAddrV4::new(config.bind, config.port),
    };
    // Peeked datagrams stay queued until delivered (see `pending`); a new reader starts at the
    // head of the queue, where a dead holder's undelivered batch is.
    let can_peek = match sys::set_peek_offset(udp.as_fd(), 0) {
        Ok(()) => true,
        Err(e) => {
            config.reporter.report(&format!(
                "cannot read the network socket without taking from it (SO_PEEK_OFF: {e}): \
                 if this holder dies, the datagrams it has read and not delivered are lost"
            ));
            false
        }
    };
    let mut pending = Pending::open(&config.pending_path());
    let inherited = if from_standby {
        pending.take_inherited()
    } else {
        Vec::new()
    };
    let udp = Arc::new(udp);
    let ns_addr = SocketAddrV4::new(config.bind, config.name_service_port);
    let (ns, ns_state) = match standby_ns.filter(|_| config.name_service) {
        Some(s) => match inherit(s, config.bind, config.name_service_port) {
            Some(s) => (Some(s), format!("answering on {ns_addr}")),
            None => bind_name_service(config, &prev),
        },
        None => bind_name_service(config, &prev),
    };
    if config.name_service && ns.is_none() {
        config
            .reporter
            .report(&format!("NetBIOS name service not started: {ns_state}"));
    }
    let ns_dup = ns.as_ref().and_then(|s| s.try_clone().ok());
    // Whether another process may hold the socket: the candidates of the previous holder, if
    // it was handed to us, or one that asks us for it.
    let shared_socket = Arc::new(AtomicBool::new(from_standby));
    let handoff = HandoffServer::start(
        config,
        udp.clone(),
        ns_dup,
        entry.counters.clone(),
        shared_socket.clone(),
    );
    // Our names, when we run the name service: registered anew, unless this host held them
    // a moment ago (the previous holder died without releasing them).
    let claims = ns.as_ref().map(|_| {
        let inherited = prev.state.starts_with("holding")
            && prev.name_state == "registered"
            && prev.netbios_name == config.netbios_name
            && prev.workgroup == config.workgroup;
        let names =
            nameservice::our_names(&identity.host, &identity.workgroup, config.file_server_name);
        Claims::new(&names, Instant::now(), inherited, super::send::next_id)
    });
    let mut rec = base_record(config);
    rec.state = if shared { "holding_shared" } else { "holding" }.into();
    rec.bind = local.to_string();
    rec.shared = shared;
    rec.name_service = ns_state;
    rec.name_state = match &claims {
        Some(c) => c.summary().0.into(),
        None => "off".into(),
    };
    rec.counters = entry.counters.snapshot();
    let _ = rec.write(&state_path);
    {
        let mut inner = lock(&entry.inner);
        inner.socket = Some(udp.clone());
        inner.state = RoleState::Holding { local, shared };
        entry.changed.notify_all();
    }
    let mut holder = Holder {
        udp: udp.clone(),
        ns,
        claims,
        ns_port: config.name_service_port,
        broadcast: config.broadcast.clone(),
        reporter: config.reporter.clone(),
        stop_rx,
        counters: entry.counters.clone(),
        sink: Delivering::new(&sink, &config.dir),
        inbound: Inbound::new(identity, config.dedupe_window, Instant::now())
            .continuing(pending.keys(), inherited),
        pending,
        can_peek,
        shared_socket,
        bind: config.bind,
        ifaces: Vec::new(),
        ifaces_at: None,
        record: rec,
        state_path: state_path.clone(),
        last_flush: Instant::now(),
        dirty: false,
        kernel_drops_seen: 0,
    };
    if from_standby {
        // The socket's drop count is cumulative over its holders: the drops before this term
        // were counted (or, for a holder that died, lost with its counters) by them. Drops in
        // the gap between the previous holder's last look and now are not counted by anyone.
        holder.kernel_drops_seen = crate::sys::socket_drops(udp.as_fd()).unwrap_or(0);
    }
    let result = holder.run();
    holder.read_kernel_drops();
    if result.is_ok() {
        holder.release_names();
    }
    // Release in order: stop handing off, close every socket of ours, then (in `run`) the lock.
    if let Some(h) = handoff {
        h.stop();
    }
    lock(&entry.inner).socket = None;
    holder.record.counters = entry.counters.snapshot();
    holder.record.state = "stopped".into();
    holder.record.reason = match &result {
        Ok(()) => format!("released by pid {}", std::process::id()),
        Err(e) => e.clone(),
    };
    let _ = holder.record.write(&state_path);
    drop(holder);
    // Sends of this process may hold a clone for a moment; wait briefly for them so the port
    // is really closed when the lock goes.
    let deadline = Instant::now() + Duration::from_millis(200);
    while Arc::strong_count(&udp) > 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_micros(200));
    }
    drop(udp);
    match result {
        Ok(()) => End::Released,
        Err(e) => End::Failed(e),
    }
}

/// The holder's term when the host service holds the port (see `subscribed`).
fn hold_via_service(
    entry: &Arc<Entry>,
    config: &NetConfig,
    sink: Sink,
    stop_rx: &UnixDatagram,
    sub: crate::service::Subscription,
) -> End {
    let mut rec = base_record(config);
    rec.state = "via_service".into();
    rec.counters = entry.counters.snapshot();
    let _ = rec.write(&config.state_path());
    set_state(entry, RoleState::ViaService { port: config.port });
    let mut sink = Delivering::new(&sink, &config.dir);
    let result =
        super::subscribed::hold(config, sub, &mut sink, &entry.counters, stop_rx, &mut rec);
    rec.counters = entry.counters.snapshot();
    rec.state = "stopped".into();
    rec.reason = match &result {
        Ok(()) => format!("released by pid {}", std::process::id()),
        Err(e) => e.clone(),
    };
    let _ = rec.write(&config.state_path());
    match result {
        Ok(()) => End::Released,
        Err(e) => End::Failed(e),
    }
}

/// A socket received from the previous holder, if it is a UDP socket bound to `bind:port`.
fn inherit(s: UdpSocket, bind: Ipv4Addr, port: u16) -> Option<UdpSocket> {
    let sock = socket2::SockRef::from(&s);
    let is_udp = sock.r#type().is_ok_and(|t| t == Type::DGRAM)
        && sock.domain().is_ok_and(|d| d == Domain::IPV4);
    let local = match s.local_addr() {
        Ok(std::net::SocketAddr::V4(a)) => a,
        _ => return None,
    };
    if !is_udp || local != SocketAddrV4::new(bind, port) {
        return None;
    }
    s.set_nonblocking(true).ok()?;
    Some(s)
}

fn new_udp(addr: SocketAddrV4, reuse: bool) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    if reuse {
        s.set_reuse_address(true)?;
    }
    s.set_broadcast(true)?;
    // Best effort: a bigger queue rides out bursts (the kernel caps it at rmem_max).
    let _ = s.set_recv_buffer_size(1 << 20);
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Bind the datagram port, or say why not (one line with the remedies).
fn bind_role_socket(config: &NetConfig, prev: &StateRecord) -> Result<(UdpSocket, bool), String> {
    let addr = SocketAddrV4::new(config.bind, config.port);
    // Retry only when a holder of ours was there before us (its socket may still be
    // closing); a port held by another program is reported without delay.
    let retry = if prev.state.starts_with("holding") {
        BIND_RETRY
    } else {
        Duration::ZERO
    };
    let deadline = Instant::now() + retry;
    let mut delay = Duration::from_micros(50);
    let in_use = loop {
        match new_udp(addr, false) {
            Ok(s) => return Ok((s, false)),
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                if Instant::now() >= deadline {
                    break e;
                }
                thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(20));
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
                return Err(format!(
                    "no permission to bind UDP port {} on {} (ports below 1024 need root or \
                     CAP_NET_BIND_SERVICE); local mailslots keep working. Remedies: run \
                     `mailslot serve` with that capability (e.g. `setcap \
                     cap_net_bind_service=+ep $(which mailslot)`), or use another port (--port)",
                    config.port, config.bind
                ));
            }
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
                return Err(format!(
                    "cannot bind {addr}: {} is not an address of this host (--bind)",
                    config.bind
                ));
            }
            Err(e) => return Err(format!("cannot bind UDP {addr}: {e}")),
        }
    };
    let owners = iface::udp_port_owners(config.port);
    let who = iface::describe_owners(&owners);
    if config.share_port {
        return match new_udp(addr, true) {
            Ok(s) => Ok((s, true)),
            Err(e) => Err(format!(
                "UDP port {} is in use by {who} and cannot be shared ({e}): the other program \
                 did not set SO_REUSEADDR. Stop it or use another port (--port)",
                config.port
            )),
        };
    }
    let _ = in_use;
    Err(format!(
        "UDP port {} is in use by {who}; local mailslots keep working. Remedies: stop it (for \
         Samba: stop nmbd), use another port (--port), or bind alongside it with --share-port \
         (broadcasts reach both; nmbd, which binds the interface address too, keeps every \
         unicast)",
        config.port
    ))
}

/// Bind the name-service port if wanted and free; returns the socket and a one-line state.
fn bind_name_service(config: &NetConfig, prev: &StateRecord) -> (Option<UdpSocket>, String) {
    if !config.name_service {
        return (None, "off".into());
    }
    let addr = SocketAddrV4::new(config.bind, config.name_service_port);
    // As for the datagram port: wait only for a previous holder of ours to let go.
    let retry = if prev.state.starts_with("holding") && prev.name_service.starts_with("answering") {
        BIND_RETRY
    } else {
        Duration::ZERO
    };
    let deadline = Instant::now() + retry;
    loop {
        match new_udp(addr, false) {
            Ok(s) => return (Some(s), format!("answering on {addr}")),
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                let who = iface::describe_owners(&iface::udp_port_owners(config.name_service_port));
                return (
                    None,
                    format!("UDP port {} is in use by {who}", config.name_service_port),
                );
            }
            Err(e) => return (None, format!("cannot bind UDP {addr}: {e}")),
        }
    }
}

struct Holder {
    udp: Arc<UdpSocket>,
    ns: Option<UdpSocket>,
    /// Our names, while we run the name service.
    claims: Option<Claims>,
    ns_port: u16,
    /// Configured broadcast addresses (empty: every interface's).
    broadcast: Vec<Ipv4Addr>,
    reporter: Reporter,
    stop_rx: UnixDatagram,
    counters: Arc<Counters>,
    sink: Delivering,
    inbound: Inbound,
    /// What is done of the batch in hand, for a successor if we die.
    pending: Pending,
    /// The kernel has `SO_PEEK_OFF` (without it a death loses the batch in hand).
    can_peek: bool,
    /// Another process may hold the socket, to read it after us: batches are then peeked
    /// and taken off the socket once delivered (about 300 ns more per datagram); otherwise
    /// whatever we die with goes with the socket, and they are simply received.
    shared_socket: Arc<AtomicBool>,
    bind: Ipv4Addr,
    ifaces: Vec<Interface>,
    ifaces_at: Option<Instant>,
    record: StateRecord,
    state_path: PathBuf,
    last_flush: Instant,
    dirty: bool,
    /// The socket's cumulative kernel drop count (`sk_drops`) already added to
    /// `dropped_kernel`: the counters outlive the socket (a process may hold the role again
    /// with a new one), so only the increase is added.
    kernel_drops_seen: u32,
}

/// How far a cumulative, wrapping drop count `n` is ahead of `seen`; `None` when it is not
/// (the same, or an older reading).
fn drops_increase(seen: u32, n: u32) -> Option<u32> {
    let delta = n.wrapping_sub(seen);
    (delta != 0 && delta <= u32::MAX / 2).then_some(delta)
}

impl Holder {
    fn run(&mut self) -> Result<(), String> {
        let mut batch = RecvBatch::new(RECV_BATCH, RECV_BUF);
        let mut errors_in_a_row = 0u32;
        loop {
            // Drain the datagram socket (bounded, so a flood cannot starve the stop signal).
            for round in 0..DRAIN_BATCHES {
                let peeking = self.can_peek && self.shared_socket.load(Ordering::Acquire);
                let taken = if peeking {
                    batch.peek(self.udp.as_fd())
                } else {
                    batch.recv(self.udp.as_fd())
                };
                match taken {
                    Ok(0) => {
                        // Woken with nothing to peek: empty datagrams a dead holder peeked may
                        // sit hidden at the head, keeping the socket readable (see `discard`).
                        if peeking && round == 0 {
                            let _ = sys::drop_hidden_empty(self.udp.as_fd());
                        }
                        break;
                    }
                    Ok(n) => {
                        errors_in_a_row = 0;
                        self.handle_batch(&batch);
                        if peeking {
                            self.take_off(&batch)?;
                        }
                        self.pending.settle();
                        if n < batch.capacity() {
                            break;
                        }
                    }
                    // ICMP errors queued on the socket (e.g. port unreachable after a send)
                    // are reported once by the next recv: not fatal.
                    Err(e) => {
                        errors_in_a_row += 1;
                        if errors_in_a_row > 10_000 {
                            return Err(format!("receive failed repeatedly: {e}"));
                        }
                        break;
                    }
                }
            }
            // Once per drain, not per datagram: a burst that overflowed the buffer and then
            // stopped is counted too (no datagram after it would carry the count).
            self.read_kernel_drops();
            self.serve_name_queries();
            self.claim_names();
            let since = self.last_flush.elapsed();
            if self.dirty && since >= FLUSH_INTERVAL {
                self.flush();
            }
            let now = Instant::now();
            let flush_due = self.dirty.then(|| self.last_flush + FLUSH_INTERVAL);
            let claim_due = self.claims.as_ref().and_then(Claims::next_due);
            let timeout = match flush_due.into_iter().chain(claim_due).min() {
                Some(at) => {
                    let left = at.saturating_duration_since(now);
                    PollTimeout::try_from(left.as_millis().max(1) as i32)
                        .unwrap_or(PollTimeout::NONE)
                }
                None => PollTimeout::NONE,
            };
            let stop = {
                let mut fds = vec![
                    PollFd::new(self.stop_rx.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.udp.as_fd(), PollFlags::POLLIN),
                ];
                if let Some(ns) = &self.ns {
                    fds.push(PollFd::new(ns.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(format!("poll failed: {e}")),
                }
                fds[0].revents().is_some_and(|r| !r.is_empty())
            };
            if stop {
                return Ok(());
            }
        }
    }

    /// One batch: every datagram is counted as received and lands in exactly one other
    /// counter, `delivered` or one `dropped_*` (by the inbound step, or by the sink); one the
    /// previous holder delivered is not counted again.
    fn handle_batch(&mut self, batch: &RecvBatch) {
        let c = &self.counters;
        let now = Instant::now();
        let mut accepted: Vec<Accepted<'_>> = Vec::with_capacity(batch.count());
        let mut already: Vec<Accepted<'_>> = Vec::new();
        for i in 0..batch.count() {
            let (bytes, truncated, from) = batch.get(i);
            match self.inbound.datagram(bytes, from, truncated, now) {
                Verdict::Deliver(a) => {
                    Counters::bump(&c.received);
                    if a.dgm_length_mismatch {
                        Counters::bump(&c.dgm_length_mismatch);
                    }
                    accepted.push(a);
                }
                Verdict::Drop(reason) => {
                    Counters::bump(&c.received);
                    Counters::bump(reason.counter(c));
                }
                Verdict::AlreadyDelivered(a) => {
                    self.pending.note(a.key);
                    already.push(a);
                }
            }
        }
        self.inbound.end_batch();
        self.sink.deliver(&accepted, c, &mut self.pending);
        self.sink.wake(&already);
        self.dirty = true;
    }

    /// Takes the peeked batch just delivered off the socket: its non-empty datagrams, with any
    /// hidden empty ones among them, then its own trailing empty ones (see `sys::discard`).
    fn take_off(&mut self, batch: &RecvBatch) -> Result<(), String> {
        let (mut non_empty, mut trailing) = batch.peeked_shape();
        let mut failures = 0;
        while non_empty > 0 || trailing > 0 {
            let want = if non_empty > 0 { non_empty } else { trailing };
            match sys::discard(self.udp.as_fd(), want) {
                Ok(d) if d.total == 0 => break,
                // Never more non-empty ones than asked for, so never one not delivered.
                Ok(d) if non_empty > 0 => non_empty -= d.total - d.empty,
                Ok(d) => trailing -= d.total,
                // A queued socket error is reported by one call, then the datagrams follow.
                Err(e) => {
                    failures += 1;
                    if failures > 3 {
                        return Err(format!(
                            "cannot take delivered datagrams off the socket: {e}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds what the kernel dropped on the socket since the last look (`SO_MEMINFO`).
    fn read_kernel_drops(&mut self) {
        if let Ok(n) = crate::sys::socket_drops(self.udp.as_fd()) {
            self.note_kernel_drops(n);
        }
    }

    /// `n` is the socket's cumulative drop count: add the increase over what was counted,
    /// ignore an older value.
    fn note_kernel_drops(&mut self, n: u32) {
        let Some(delta) = drops_increase(self.kernel_drops_seen, n) else {
            return;
        };
        self.kernel_drops_seen = n;
        self.counters
            .dropped_kernel
            .fetch_add(u64::from(delta), Ordering::Relaxed);
        self.dirty = true;
    }

    fn flush(&mut self) {
        self.record.counters = self.counters.snapshot();
        let _ = self.record.write(&self.state_path);
        self.last_flush = Instant::now();
        self.dirty = false;
    }

    fn serve_name_queries(&mut self) {
        let Some(ns) = self.ns.take() else { return };
        let mut claims = self.claims.take();
        let mut buf = [0u8; 1024];
        for _ in 0..64 {
            let (n, from) = match ns.recv_from(&mut buf) {
                Ok((n, std::net::SocketAddr::V4(a))) => (n, a),
                Ok(_) => continue,
                Err(_) => break,
            };
            let now = Instant::now();
            self.refresh_ifaces(now);
            let Some(claims) = claims.as_mut() else {
                continue;
            };
            let (bind, ifaces) = (self.bind, &self.ifaces);
            let heard = claims.packet(&buf[..n], *from.ip(), |a| is_own(a, bind, ifaces));
            if let Some(c) = heard.conflict {
                self.reporter.report(&format!(
                    "NetBIOS name {} is held by {} (it defended it): this host does not claim \
                     it or answer queries for it; datagrams to it that reach this host are \
                     still delivered. Use another name (--netbios-name) to be reachable by name",
                    claim::display(&c.name),
                    c.defender
                ));
                note_names(&mut self.record, claims);
                self.dirty = true;
            }
            if let Some(Outgoing::Reply(p)) = heard.reply {
                let bytes = p.encode(answer_addr(bind, ifaces, *from.ip()));
                if self.inbound.ns_allow(now) && ns.send_to(&bytes, from).is_ok() {
                    Counters::bump(&self.counters.name_defences);
                    self.dirty = true;
                }
            }
            if heard.handled {
                continue;
            }
            let answer = self
                .inbound
                .name_request(&buf[..n], from, claims, bind, ifaces, now);
            if let Some(resp) = answer {
                if ns.send_to(&resp, from).is_ok() {
                    Counters::bump(&self.counters.name_queries_answered);
                    self.dirty = true;
                }
            }
        }
        self.ns = Some(ns);
        self.claims = claims;
    }

    /// The interfaces, read again when older than 5 s (answers and registrations carry our
    /// address on the peer's subnet when bound to 0.0.0.0).
    fn refresh_ifaces(&mut self, now: Instant) {
        if self
            .ifaces_at
            .is_none_or(|t| now.saturating_duration_since(t) > Duration::from_secs(5))
        {
            self.ifaces = iface::interfaces();
            self.ifaces_at = Some(now);
        }
    }

    /// Sends the registrations that are due.
    fn claim_names(&mut self) {
        let now = Instant::now();
        let out = match self.claims.as_mut() {
            Some(c) if c.next_due().is_some_and(|at| at <= now) => c.due(now),
            _ => return,
        };
        self.broadcast_all(&out, now);
        if let Some(c) = &self.claims {
            note_names(&mut self.record, c);
            self.dirty = true;
        }
    }

    /// Releases our registered names (the role is given up cleanly).
    fn release_names(&mut self) {
        let out = match &self.claims {
            Some(c) => c.release(),
            None => return,
        };
        self.broadcast_all(&out, Instant::now());
    }

    /// Broadcasts `out` on every broadcast address, each with our address on its subnet.
    fn broadcast_all(&mut self, out: &[Outgoing], now: Instant) {
        self.refresh_ifaces(now);
        let Some(ns) = &self.ns else { return };
        let targets = iface::broadcasts_or(&self.broadcast);
        for o in out {
            let Outgoing::Broadcast(p) = o else { continue };
            for &b in &targets {
                let bytes = p.encode(answer_addr(self.bind, &self.ifaces, b));
                let _ = ns.send_to(&bytes, SocketAddrV4::new(b, self.ns_port));
            }
        }
    }
}

/// Puts the names' state in the state record (flushed with the counters).
fn note_names(record: &mut StateRecord, claims: &Claims) {
    let (state, conflict) = claims.summary();
    record.name_state = state.into();
    if let Some(c) = conflict {
        record.name_conflict = claim::display(&c.name);
        record.name_defender = c.defender.to_string();
    }
}

/// Whether `a` is an address of this host (our own broadcasts come back to us).
fn is_own(a: Ipv4Addr, bind: Ipv4Addr, ifaces: &[Interface]) -> bool {
    a == bind || ifaces.iter().any(|i| i.addr == a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_drops_add_increases_only() {
        assert_eq!(drops_increase(0, 5090), Some(5090));
        assert_eq!(drops_increase(5090, 5090), None);
        // An older reading adds nothing.
        assert_eq!(drops_increase(5090, 12), None);
        assert_eq!(drops_increase(u32::MAX - 1, 3), Some(5));
    }

    #[test]
    fn a_new_socket_has_dropped_nothing() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(crate::sys::socket_drops(s.as_fd()).unwrap(), 0);
    }
}
