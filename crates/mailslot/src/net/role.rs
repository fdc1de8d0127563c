//! The network role: election between processes, the holder's receive loop, the name-service
//! responder and the handoff server.
//!
//! # Election
//!
//! One exclusive `flock` on `<dir>/network-<port>.lock` per host: the holder has it, every other
//! interested process waits for it in a blocking `flock(LOCK_EX)` on its own thread. The kernel
//! drops the lock when the holder's file is closed, which happens when it closes the role or
//! dies (`kill -9` included), and wakes a waiter at once: no heartbeat, no polling. `flock`
//! locks belong to the open file description, so two threads or two opens in one process
//! conflict like two processes would; per process there is at most one waiter per key anyway
//! (the role is process-global and reference-counted, see [`NetRole`]).
//!
//! The holder binds the port before it says "holding" and closes its sockets before it drops
//! the lock, so a successor that gets the lock finds the port free. When the holder is killed
//! the kernel closes its files in an order we do not control; a successor that finds the port
//! still bound retries for a short bounded time (`BIND_RETRY`) before it concludes that another
//! program owns the port.
//!
//! # Cancellation of a waiter
//!
//! A thread blocked in `flock` cannot be woken without a signal handler (and `flock` restarts
//! after `SA_RESTART` handlers), and a handler would need `unsafe` and would interfere with the
//! application's signals. So a waiter whose process no longer wants the role (its last
//! [`NetRole`] was dropped) is not cancelled: it stays parked in `flock` (one thread and one file
//! descriptor), and if it is ever granted the lock while still unwanted it drops it
//! immediately, which passes the role on to the next waiter in microseconds. If the process
//! wants the role again meanwhile, the parked waiter is reused, so a process never has more
//! than one waiter per (directory, port).
//!
//! # A holder that cannot bind
//!
//! If the port cannot be bound (no privilege, or another program such as nmbd holds it and
//! `share_port` is off), the process reports why once, writes `unavailable` and the reason to
//! the state file, and releases the lock so that another process (perhaps `mailslot serve`
//! with `CAP_NET_BIND_SERVICE`) can try. It does not try again until its role is restarted.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn};
use socket2::{Domain, Protocol, Socket, Type};

use super::codec::parse_mailslot_datagram;
use super::config::{DeliverFn, Delivery, NetConfig, NetSource};
use super::dedupe::{Dedupe, DEFAULT_CAPACITY};
use super::error::NetError;
use super::iface::{self, Interface};
use super::nameservice::{self, OurNames};
use super::recv::{classify, Drop as Dropped, Identity};
use super::state::{Counters, NetCounters, StateRecord, FLUSH_INTERVAL};

/// How long a new holder keeps retrying a bind that fails with `EADDRINUSE` (the previous
/// holder's socket may still be closing).
const BIND_RETRY: Duration = Duration::from_millis(250);
/// Receive buffer: the largest UDP payload fits, so nothing is ever truncated silently.
const RECV_BUF: usize = 65_536;
/// Datagrams handled between two checks of the stop signal under load.
const DRAIN_BATCH: usize = 1024;
/// Name-service answers per second at most (we must not become a reflector).
const NS_ANSWERS_PER_SEC: u32 = 200;
/// Handoff requests: at most this many datagrams, each at most a UDP payload.
const HANDOFF_MAX_ITEMS: usize = 64;
const HANDOFF_MAGIC: &[u8; 4] = b"MSH1";
const HANDOFF_IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the role of one (directory, port) stands in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleState {
    /// Waiting for the election lock: another process holds the role.
    Waiting,
    /// Got the lock; binding the port.
    Starting,
    /// Bound and receiving on `local`; `shared` when bound alongside another program.
    Holding {
        /// The bound address.
        local: SocketAddrV4,
        /// Bound with `SO_REUSEADDR` next to another program (`share_port`).
        shared: bool,
    },
    /// The host service holds the port for every user of this host and hands this runtime
    /// directory's datagrams over (for the names it has); nothing of ours is bound.
    ViaService {
        /// The port the service holds.
        port: u16,
    },
    /// The port could not be bound; the lock was passed on. Local mailslots keep working.
    Unavailable {
        /// Why, and what to do.
        reason: String,
    },
    /// Stopped: released by this process, or the receive loop failed (`reason`).
    Stopped {
        /// Why, if it was not a normal release.
        reason: Option<String>,
    },
}

type Key = (PathBuf, u16);

struct Entry {
    key: Key,
    inner: Mutex<Inner>,
    changed: Condvar,
    counters: Arc<Counters>,
    stop_tx: UnixDatagram,
}

struct Inner {
    refcount: usize,
    config: NetConfig,
    deliver: DeliverFn,
    state: RoleState,
    socket: Option<Arc<UdpSocket>>,
    thread: Option<JoinHandle<()>>,
    thread_id: Option<ThreadId>,
}

fn registry() -> MutexGuard<'static, HashMap<Key, Arc<Entry>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<Key, Arc<Entry>>>> = OnceLock::new();
    let m = REGISTRY.get_or_init(|| Mutex::new(HashMap::new()));
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn key_of(dir: &Path, port: u16) -> Key {
    (
        fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
        port,
    )
}

/// This process's bound role socket for (dir, port), if it holds the role.
pub(crate) fn local_socket(dir: &Path, port: u16) -> Option<Arc<UdpSocket>> {
    let key = key_of(dir, port);
    let reg = registry();
    let entry = reg.get(&key)?;
    let inner = lock(&entry.inner);
    inner.socket.clone()
}

/// A process's interest in the network role of one runtime directory and port.
///
/// The role is per process: the first `NetRole` for a (directory, port) starts an election
/// thread, later ones share it, and dropping the last one releases the role (a holder passes
/// it on at once: when `drop` returns, the port is closed and the lock released). The
/// configuration and delivery callback of the first start are used; later starts only add a
/// reference.
///
/// Drop the last `NetRole` without holding any lock that the delivery callback takes: the drop
/// waits for the receive loop, which may be inside the callback.
pub struct NetRole {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for NetRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetRole")
            .field("key", &self.entry.key)
            .field("state", &self.state())
            .finish()
    }
}

impl NetRole {
    /// Join the election for `config.dir` and `config.port` (or share this process's existing
    /// interest). Returns at once; the role is taken in the background, see [`state`].
    ///
    /// # Errors
    ///
    /// `InvalidSetting` if the NetBIOS name or workgroup cannot be a NetBIOS name; `Io` if the
    /// runtime directory cannot be created or the thread cannot be started.
    ///
    /// [`state`]: NetRole::state
    pub fn start(config: NetConfig, deliver: DeliverFn) -> Result<NetRole, NetError> {
        identity(&config)?;
        if !config.dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&config.dir)
                .map_err(|e| NetError::io(format!("creating {}", config.dir.display()), e))?;
        }
        let key = key_of(&config.dir, config.port);
        let mut reg = registry();
        if let Some(entry) = reg.get(&key) {
            let entry = entry.clone();
            let mut inner = lock(&entry.inner);
            if inner.refcount == 0 {
                // A parked waiter from an earlier interest: reuse it with the new settings.
                inner.config = config;
                inner.deliver = deliver;
            }
            inner.refcount += 1;
            drop(inner);
            return Ok(NetRole { entry });
        }
        let (stop_tx, stop_rx) =
            UnixDatagram::pair().map_err(|e| NetError::io("creating a socket pair", e))?;
        stop_tx
            .set_nonblocking(true)
            .map_err(|e| NetError::io("socket pair", e))?;
        stop_rx
            .set_nonblocking(true)
            .map_err(|e| NetError::io("socket pair", e))?;
        let entry = Arc::new(Entry {
            key: key.clone(),
            inner: Mutex::new(Inner {
                refcount: 1,
                config,
                deliver,
                state: RoleState::Waiting,
                socket: None,
                thread: None,
                thread_id: None,
            }),
            changed: Condvar::new(),
            counters: Arc::new(Counters::default()),
            stop_tx,
        });
        let e2 = entry.clone();
        let handle = thread::Builder::new()
            .name(format!("mailslot-net-{}", key.1))
            .spawn(move || run(e2, stop_rx))
            .map_err(|e| NetError::io("starting the network role thread", e))?;
        {
            let mut inner = lock(&entry.inner);
            inner.thread_id = Some(handle.thread().id());
            inner.thread = Some(handle);
        }
        reg.insert(key, entry.clone());
        Ok(NetRole { entry })
    }

    /// Where the role stands now.
    pub fn state(&self) -> RoleState {
        lock(&self.entry.inner).state.clone()
    }

    /// Wait until `done(state)` holds or `timeout` passes; returns the last state seen.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&RoleState) -> bool) -> RoleState {
        let deadline = Instant::now() + timeout;
        let mut inner = lock(&self.entry.inner);
        loop {
            if done(&inner.state) {
                return inner.state.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return inner.state.clone();
            }
            inner = self
                .entry
                .changed
                .wait_timeout(inner, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Wait until the role is held, unavailable or stopped (not waiting or starting), at most
    /// `timeout`.
    pub fn wait_settled(&self, timeout: Duration) -> RoleState {
        self.wait_until(timeout, |s| {
            !matches!(s, RoleState::Waiting | RoleState::Starting)
        })
    }

    /// This process's counters for the role (they count only while this process holds it).
    pub fn counters(&self) -> NetCounters {
        self.entry.counters.snapshot()
    }
}

impl Drop for NetRole {
    fn drop(&mut self) {
        let mut reg = registry();
        let mut inner = lock(&self.entry.inner);
        inner.refcount = inner.refcount.saturating_sub(1);
        if inner.refcount > 0 {
            return;
        }
        if inner.state == RoleState::Waiting {
            // Parked: see "Cancellation of a waiter" above. The entry stays for reuse.
            return;
        }
        if reg
            .get(&self.entry.key)
            .is_some_and(|e| Arc::ptr_eq(e, &self.entry))
        {
            reg.remove(&self.entry.key);
        }
        let _ = self.entry.stop_tx.send(&[1]);
        let thread = inner.thread.take();
        let on_role_thread = inner.thread_id == Some(thread::current().id());
        drop(inner);
        drop(reg);
        if let (Some(t), false) = (thread, on_role_thread) {
            let _ = t.join();
        }
    }
}

fn identity(config: &NetConfig) -> Result<Identity, NetError> {
    let host = super::send::own_nb("NetBIOS name", &config.netbios_name, 0)?;
    let workgroup = super::send::own_nb("workgroup", &config.workgroup, 0)?;
    Ok(Identity {
        host,
        workgroup,
        accept_any: config.accept_any,
        deliver_own: config.deliver_own,
    })
}

fn set_state(entry: &Entry, state: RoleState) {
    let mut inner = lock(&entry.inner);
    inner.state = state;
    entry.changed.notify_all();
}

/// The election thread: wait for the lock, then hold the role until stopped.
fn run(entry: Arc<Entry>, stop_rx: UnixDatagram) {
    let lock_path = lock(&entry.inner).config.lock_path();
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
    {
        Ok(f) => f,
        Err(e) => {
            let reason = format!("cannot open the election lock {}: {e}", lock_path.display());
            give_up(&entry, reason);
            return;
        }
    };
    let mut file = file;
    let flock = loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(l) => break l,
            Err((f, Errno::EINTR)) => file = f,
            Err((_, e)) => {
                give_up(&entry, format!("cannot lock {}: {e}", lock_path.display()));
                return;
            }
        }
    };
    let (config, deliver) = {
        let mut reg = registry();
        let mut inner = lock(&entry.inner);
        if inner.refcount == 0 {
            // Nobody here wants the role any more: pass it on at once.
            if reg.get(&entry.key).is_some_and(|e| Arc::ptr_eq(e, &entry)) {
                reg.remove(&entry.key);
            }
            drop(flock);
            inner.state = RoleState::Stopped { reason: None };
            entry.changed.notify_all();
            return;
        }
        inner.state = RoleState::Starting;
        entry.changed.notify_all();
        (inner.config.clone(), inner.deliver.clone())
    };
    let end = hold(&entry, &config, deliver, stop_rx);
    // SYNC POINT: `hold` closed the sockets; the lock goes next, and only then is the final
    // state published, so whoever sees it (or reads `status`) finds the port and lock free.
    drop(flock);
    let state = match end {
        End::Released => RoleState::Stopped { reason: None },
        End::Unavailable(reason) => RoleState::Unavailable { reason },
        End::Failed(reason) => {
            config.reporter.report(&format!(
                "network role on UDP port {} stopped: {reason}",
                config.port
            ));
            RoleState::Stopped {
                reason: Some(reason),
            }
        }
    };
    let mut inner = lock(&entry.inner);
    inner.socket = None;
    inner.state = state;
    entry.changed.notify_all();
}

/// How a holder's term ended.
enum End {
    /// Stopped because this process no longer wants the role.
    Released,
    /// The port could not be bound.
    Unavailable(String),
    /// The receive loop failed.
    Failed(String),
}

fn give_up(entry: &Entry, reason: String) {
    let config = lock(&entry.inner).config.clone();
    config.reporter.report(&reason);
    set_state(entry, RoleState::Unavailable { reason });
}

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
fn hold(entry: &Arc<Entry>, config: &NetConfig, deliver: DeliverFn, stop_rx: UnixDatagram) -> End {
    // Validated by `NetRole::start`; a failure here is only a defence.
    let identity = match identity(config) {
        Ok(i) => i,
        Err(e) => return End::Unavailable(e.to_string()),
    };
    let state_path = config.state_path();
    if config.via_host_service {
        if let Some(sub) = crate::service::Subscription::start(config.port) {
            return hold_via_service(entry, config, deliver, &stop_rx, sub);
        }
    }
    // What the previous holder left (a `kill -9` leaves "holding").
    let prev = fs::read_to_string(&state_path)
        .map(|t| StateRecord::parse(&t))
        .unwrap_or_default();
    let (udp, shared) = match bind_role_socket(config, &prev) {
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
    let udp = Arc::new(udp);
    let (ns, ns_state) = bind_name_service(config, &prev);
    if config.name_service && ns.is_none() {
        config
            .reporter
            .report(&format!("NetBIOS name service not started: {ns_state}"));
    }
    let handoff = HandoffServer::start(config, udp.clone(), entry.counters.clone());
    let mut rec = base_record(config);
    rec.state = if shared { "holding_shared" } else { "holding" }.into();
    rec.bind = local.to_string();
    rec.shared = shared;
    rec.name_service = ns_state;
    rec.counters = entry.counters.snapshot();
    let _ = rec.write(&state_path);
    {
        let mut inner = lock(&entry.inner);
        inner.socket = Some(udp.clone());
        inner.state = RoleState::Holding { local, shared };
        entry.changed.notify_all();
    }
    let names = OurNames {
        host: identity.host,
        workgroup: identity.workgroup,
    };
    let mut holder = Holder {
        udp: udp.clone(),
        ns,
        stop_rx,
        counters: entry.counters.clone(),
        deliver,
        identity,
        names,
        dedupe: Dedupe::new(config.dedupe_window, DEFAULT_CAPACITY),
        bind: config.bind,
        ifaces: Vec::new(),
        ifaces_at: None,
        ns_bucket: (Instant::now(), 0),
        record: rec,
        state_path: state_path.clone(),
        last_flush: Instant::now(),
        dirty: false,
        kernel_drops_seen: 0,
    };
    let result = holder.run();
    holder.read_kernel_drops();
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
    deliver: DeliverFn,
    stop_rx: &UnixDatagram,
    sub: crate::service::Subscription,
) -> End {
    let mut rec = base_record(config);
    rec.state = "via_service".into();
    rec.counters = entry.counters.snapshot();
    let _ = rec.write(&config.state_path());
    set_state(entry, RoleState::ViaService { port: config.port });
    let result = super::subscribed::hold(config, sub, &deliver, &entry.counters, stop_rx, &mut rec);
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
    stop_rx: UnixDatagram,
    counters: Arc<Counters>,
    deliver: DeliverFn,
    identity: Identity,
    names: OurNames,
    dedupe: Dedupe,
    bind: Ipv4Addr,
    ifaces: Vec<Interface>,
    ifaces_at: Option<Instant>,
    ns_bucket: (Instant, u32),
    record: StateRecord,
    state_path: PathBuf,
    last_flush: Instant,
    dirty: bool,
    /// The socket's cumulative kernel drop count (`sk_drops`) already added to
    /// `dropped_kernel`: the counters outlive the socket (a process may hold the role again
    /// with a new one), so only the increase is added.
    kernel_drops_seen: u32,
}

enum Recv {
    Datagram {
        len: usize,
        from: SocketAddrV4,
        truncated: bool,
        overflow: Option<u32>,
    },
    Empty,
}

fn recv_one(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Recv> {
    let fd = sock.as_raw_fd();
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(u32);
    match recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT) {
        Ok(msg) => {
            let mut overflow = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::RxqOvfl(n) = c {
                        overflow = Some(n);
                    }
                }
            }
            let from = msg
                .address
                .map(|a| SocketAddrV4::new(a.ip(), a.port()))
                .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
            Ok(Recv::Datagram {
                len: msg.bytes,
                from,
                truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
                overflow,
            })
        }
        Err(Errno::EAGAIN) => Ok(Recv::Empty),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// How far a cumulative, wrapping drop count `n` is ahead of `seen`; `None` when it is not
/// (the same, or an older reading).
fn drops_increase(seen: u32, n: u32) -> Option<u32> {
    let delta = n.wrapping_sub(seen);
    (delta != 0 && delta <= u32::MAX / 2).then_some(delta)
}

impl Holder {
    fn run(&mut self) -> Result<(), String> {
        let _ = setsockopt(&*self.udp, sockopt::RxqOvfl, &1);
        let mut buf = vec![0u8; RECV_BUF];
        let mut errors_in_a_row = 0u32;
        loop {
            // Drain the datagram socket (bounded, so a flood cannot starve the stop signal).
            for _ in 0..DRAIN_BATCH {
                match recv_one(&self.udp, &mut buf) {
                    Ok(Recv::Datagram {
                        len,
                        from,
                        truncated,
                        overflow,
                    }) => {
                        errors_in_a_row = 0;
                        if let Some(n) = overflow {
                            self.note_kernel_drops(n);
                        }
                        self.handle(&buf[..len.min(buf.len())], from, truncated);
                    }
                    Ok(Recv::Empty) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
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
            // The ancillary count only comes with a datagram queued after the drops; a burst that
            // overflowed the buffer and then stopped would never report its tail.
            self.read_kernel_drops();
            self.serve_name_queries(&mut buf);
            let since = self.last_flush.elapsed();
            if self.dirty && since >= FLUSH_INTERVAL {
                self.flush();
            }
            let timeout = if self.dirty {
                let left = FLUSH_INTERVAL.saturating_sub(self.last_flush.elapsed());
                PollTimeout::try_from(left.as_millis().max(1) as i32).unwrap_or(PollTimeout::NONE)
            } else {
                PollTimeout::NONE
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

    /// Adds what the kernel dropped on the socket since the last look (`SO_MEMINFO`).
    fn read_kernel_drops(&mut self) {
        if let Ok(n) = crate::sys::socket_drops(self.udp.as_fd()) {
            self.note_kernel_drops(n);
        }
    }

    /// `n` is the socket's cumulative drop count at some moment (from `SO_MEMINFO` now, or from
    /// `SO_RXQ_OVFL` as it was when a datagram was queued, which may be older): add the
    /// increase over what was counted, ignore an older value.
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

    fn handle(&mut self, dgram: &[u8], from: SocketAddrV4, truncated: bool) {
        let c = &self.counters;
        Counters::bump(&c.received);
        self.dirty = true;
        if truncated {
            Counters::bump(&c.dropped_truncated);
            return;
        }
        let p = match classify(dgram, &self.identity) {
            Ok(p) => p,
            Err(d) => {
                Counters::bump(match d {
                    Dropped::Malformed(_) => &c.dropped_malformed,
                    Dropped::Fragment => &c.dropped_fragment,
                    Dropped::OtherType(_) => &c.dropped_other_type,
                    Dropped::NotForUs | Dropped::Own => &c.dropped_not_for_us,
                });
                return;
            }
        };
        if !p.dgm_length_ok {
            Counters::bump(&c.dgm_length_mismatch);
        }
        if self.dedupe.check(from.port(), dgram, Instant::now()) {
            Counters::bump(&c.dropped_duplicate);
            return;
        }
        let source = NetSource {
            ip: *from.ip(),
            port: from.port(),
            netbios_name: p.source.name(),
            netbios_suffix: p.source.suffix(),
            destination_name: p.destination.name(),
            destination_suffix: p.destination.suffix(),
            msg_type: p.msg_type,
        };
        let deliver = &self.deliver;
        // A panicking callback must not take the role down with it.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            deliver(p.mailslot, p.data, &source)
        }));
        Counters::bump(match outcome {
            Ok(Delivery::Delivered) => &c.delivered,
            Ok(Delivery::NoMailslot) => &c.dropped_no_mailslot,
            Ok(Delivery::Failed(_)) | Err(_) => &c.dropped_failed,
        });
    }

    fn serve_name_queries(&mut self, buf: &mut [u8]) {
        let Some(ns) = self.ns.take() else { return };
        for _ in 0..64 {
            let (n, from) = match ns.recv_from(buf) {
                Ok((n, std::net::SocketAddr::V4(a))) => (n, a),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            };
            let Some(q) = nameservice::parse_request(&buf[..n]) else {
                continue;
            };
            if !self.ns_allow() {
                continue;
            }
            let addr = self.answer_addr(*from.ip());
            if let Some(resp) = nameservice::respond(&q, &self.names, addr) {
                if ns.send_to(&resp, from).is_ok() {
                    Counters::bump(&self.counters.name_queries_answered);
                    self.dirty = true;
                }
            }
        }
        self.ns = Some(ns);
    }

    /// Token bucket: at most `NS_ANSWERS_PER_SEC` answers per second.
    fn ns_allow(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.ns_bucket.0) >= Duration::from_secs(1) {
            self.ns_bucket = (now, 0);
        }
        self.ns_bucket.1 += 1;
        self.ns_bucket.1 <= NS_ANSWERS_PER_SEC
    }

    /// Our address as seen from `peer`: the bind address, else the interface on its subnet.
    fn answer_addr(&mut self, peer: Ipv4Addr) -> Ipv4Addr {
        if !self.bind.is_unspecified() {
            return self.bind;
        }
        if self
            .ifaces_at
            .is_none_or(|t| t.elapsed() > Duration::from_secs(5))
        {
            self.ifaces = iface::interfaces();
            self.ifaces_at = Some(Instant::now());
        }
        if let Some(i) = self.ifaces.iter().find(|i| i.addr == peer) {
            return i.addr;
        }
        if let Some(i) = self.ifaces.iter().find(|i| !i.loopback && i.contains(peer)) {
            return i.addr;
        }
        if peer.is_loopback() {
            return Ipv4Addr::LOCALHOST;
        }
        self.ifaces
            .iter()
            .find(|i| !i.loopback)
            .map(|i| i.addr)
            .unwrap_or(Ipv4Addr::LOCALHOST)
    }
}

/// Sends datagrams for other local processes from the role's port, so that replies to them
/// (which go to the source port) reach this host's role.
///
/// Protocol on a Unix stream socket `<dir>/network-<port>.sock`: the client writes
/// `"MSH1"`, a count (u8, at most 64), then per datagram `IPv4 (4), port (2, BE), length (2, BE),
/// bytes`; the server answers one status byte (0 sent, 1 failed) followed by a UTF-8 reason,
/// and closes. Only well-formed unfragmented mailslot datagrams are sent.
struct HandoffServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl HandoffServer {
    fn start(
        config: &NetConfig,
        udp: Arc<UdpSocket>,
        counters: Arc<Counters>,
    ) -> Option<HandoffServer> {
        let path = config.handoff_path();
        // We hold the lock: any socket file here is a dead holder's.
        let _ = fs::remove_file(&path);
        let listener = UnixListener::bind(&path).ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let port = config.port;
        let thread = thread::Builder::new()
            .name("mailslot-net-handoff".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::Acquire) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let _ = serve_handoff(conn, &udp, port, &counters);
                    }
                }
            })
            .ok()?;
        Some(HandoffServer { path, stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        // Wake the blocking accept.
        let _ = UnixStream::connect(&self.path);
        let _ = fs::remove_file(&self.path);
        let _ = self.thread.join();
    }
}

fn serve_handoff(
    mut conn: UnixStream,
    udp: &UdpSocket,
    port: u16,
    counters: &Counters,
) -> io::Result<()> {
    conn.set_read_timeout(Some(HANDOFF_IO_TIMEOUT))?;
    conn.set_write_timeout(Some(HANDOFF_IO_TIMEOUT))?;
    let mut head = [0u8; 5];
    conn.read_exact(&mut head)?;
    let reply = |conn: &mut UnixStream, ok: bool, msg: &str| -> io::Result<()> {
        let mut out = vec![if ok { 0 } else { 1 }];
        out.extend_from_slice(msg.as_bytes());
        conn.write_all(&out)
    };
    if &head[..4] != HANDOFF_MAGIC || head[4] as usize > HANDOFF_MAX_ITEMS {
        return reply(&mut conn, false, "bad handoff request");
    }
    let mut items = Vec::with_capacity(head[4] as usize);
    for _ in 0..head[4] {
        let mut h = [0u8; 8];
        conn.read_exact(&mut h)?;
        let ip = Ipv4Addr::new(h[0], h[1], h[2], h[3]);
        let dport = u16::from_be_bytes([h[4], h[5]]);
        let len = u16::from_be_bytes([h[6], h[7]]) as usize;
        let mut d = vec![0u8; len];
        conn.read_exact(&mut d)?;
        if dport != port || parse_mailslot_datagram(&d).is_err() {
            return reply(&mut conn, false, "not a mailslot datagram for this port");
        }
        items.push((SocketAddrV4::new(ip, dport), d));
    }
    for (dest, d) in &items {
        if let Err(e) = send_blocking(udp, d, *dest) {
            return reply(&mut conn, false, &format!("sending to {dest}: {e}"));
        }
        Counters::bump(&counters.sent_handoff);
    }
    reply(&mut conn, true, "")
}

/// `send_to` on a socket that may be in non-blocking mode (the role's): wait for room.
pub(crate) fn send_blocking(sock: &UdpSocket, data: &[u8], dest: SocketAddrV4) -> io::Result<()> {
    for _ in 0..50 {
        match sock.send_to(data, dest) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(100u8));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "socket send buffer stayed full",
    ))
}

/// Client side of the handoff. `Ok(false)` when no holder listens (use another path).
pub(crate) fn handoff(path: &Path, items: &[(SocketAddrV4, Vec<u8>)]) -> Result<bool, NetError> {
    let Ok(mut conn) = UnixStream::connect(path) else {
        return Ok(false);
    };
    let io_err = |e| NetError::io("handing the datagram to the network role holder", e);
    conn.set_read_timeout(Some(HANDOFF_IO_TIMEOUT))
        .map_err(io_err)?;
    conn.set_write_timeout(Some(HANDOFF_IO_TIMEOUT))
        .map_err(io_err)?;
    let mut req = Vec::new();
    req.extend_from_slice(HANDOFF_MAGIC);
    req.push(items.len().min(HANDOFF_MAX_ITEMS) as u8);
    for (dest, d) in items.iter().take(HANDOFF_MAX_ITEMS) {
        req.extend_from_slice(&dest.ip().octets());
        req.extend_from_slice(&dest.port().to_be_bytes());
        req.extend_from_slice(&(d.len() as u16).to_be_bytes());
        req.extend_from_slice(d);
    }
    conn.write_all(&req).map_err(io_err)?;
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp).map_err(io_err)?;
    match resp.first() {
        Some(0) => Ok(true),
        Some(_) => Err(NetError::unavailable(format!(
            "the network role holder could not send: {}",
            String::from_utf8_lossy(&resp[1..])
        ))),
        // The holder went away mid-request.
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_drops_add_increases_only() {
        assert_eq!(drops_increase(0, 5090), Some(5090));
        assert_eq!(drops_increase(5090, 5090), None);
        // An older reading (a datagram queued before the latest drops) adds nothing.
        assert_eq!(drops_increase(5090, 12), None);
        assert_eq!(drops_increase(u32::MAX - 1, 3), Some(5));
    }

    #[test]
    fn a_new_socket_has_dropped_nothing() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(crate::sys::socket_drops(s.as_fd()).unwrap(), 0);
    }

    fn cfg(dir: &Path, port: u16) -> NetConfig {
        let mut c = NetConfig::new(dir);
        c.port = port;
        c.bind = Ipv4Addr::LOCALHOST;
        c.name_service = false;
        c.broadcast = vec![Ipv4Addr::new(127, 255, 255, 255)];
        c.reporter = super::super::config::Reporter::silent();
        c
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ms-net-role-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn free_port() -> u16 {
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn refcounted_per_process_and_released_on_last_drop() {
        let dir = tmpdir("refcount");
        let port = free_port();
        let deliver: DeliverFn = Arc::new(|_, _, _| Delivery::NoMailslot);
        let a = NetRole::start(cfg(&dir, port), deliver.clone()).unwrap();
        let st = a.wait_settled(Duration::from_secs(10));
        assert!(matches!(st, RoleState::Holding { .. }), "{st:?}");
        let b = NetRole::start(cfg(&dir, port), deliver.clone()).unwrap();
        assert!(Arc::ptr_eq(&a.entry, &b.entry));
        drop(a);
        // Still held through b.
        assert!(matches!(b.state(), RoleState::Holding { .. }));
        assert!(local_socket(&dir, port).is_some());
        drop(b);
        assert!(local_socket(&dir, port).is_none());
        // The port is free again at once.
        UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    /// A waiter whose process gave up the role stays parked; granted the lock, it passes it on
    /// at once; wanted again before that, it is reused.
    #[test]
    fn parked_waiter_passes_on_or_is_reused() {
        let dir = tmpdir("parked");
        let port = free_port();
        let c = cfg(&dir, port);
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(c.lock_path())
                .unwrap()
        };
        // Another "process" holds the election lock (another open file description).
        let other = Flock::lock(open(), FlockArg::LockExclusive).unwrap();
        let deliver: DeliverFn = Arc::new(|_, _, _| Delivery::NoMailslot);
        let role = NetRole::start(c.clone(), deliver.clone()).unwrap();
        assert_eq!(
            role.wait_settled(Duration::from_millis(50)),
            RoleState::Waiting
        );
        let entry = role.entry.clone();
        drop(role);
        // Parked: still registered, refcount 0, still waiting.
        assert!(registry()
            .get(&key_of(&dir, port))
            .is_some_and(|e| Arc::ptr_eq(e, &entry)));
        // Wanted again: the same waiter is reused.
        let again = NetRole::start(c.clone(), deliver.clone()).unwrap();
        assert!(Arc::ptr_eq(&again.entry, &entry));
        drop(again);
        // The lock is released: the parked waiter takes it and passes it on at once.
        drop(other);
        let deadline = Instant::now() + Duration::from_secs(10);
        while lock(&entry.inner).state != (RoleState::Stopped { reason: None }) {
            assert!(
                Instant::now() < deadline,
                "the parked waiter never got the lock"
            );
            thread::sleep(Duration::from_millis(1));
        }
        // ... and it is free again (the thread drops it right after publishing Stopped).
        let relocked = loop {
            match Flock::lock(open(), FlockArg::LockExclusiveNonblock) {
                Ok(l) => break l,
                Err(_) => {
                    assert!(Instant::now() < deadline, "the parked waiter kept the lock");
                    thread::sleep(Duration::from_millis(1));
                }
            }
        };
        assert!(registry().get(&key_of(&dir, port)).is_none());
        drop(relocked);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn port_in_use_is_reported_with_the_owner() {
        let dir = tmpdir("inuse");
        let blocker = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = blocker.local_addr().unwrap().port();
        let reports = Arc::new(Mutex::new(Vec::<String>::new()));
        let r2 = reports.clone();
        let mut c = cfg(&dir, port);
        c.reporter =
            super::super::config::Reporter::new(move |l| r2.lock().unwrap().push(l.to_string()));
        let role = NetRole::start(c, Arc::new(|_, _, _| Delivery::NoMailslot)).unwrap();
        let st = role.wait_settled(Duration::from_secs(10));
        let RoleState::Unavailable { reason } = st else {
            panic!("{st:?}")
        };
        assert!(
            reason.contains(&format!("pid {}", std::process::id())),
            "{reason}"
        );
        assert!(reason.contains("--share-port"), "{reason}");
        assert_eq!(
            reports.lock().unwrap().len(),
            1,
            "{:?}",
            reports.lock().unwrap()
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
