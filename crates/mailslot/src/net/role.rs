//! The network role's election between processes, and [`NetRole`], a process's interest in it.
//! The holder's term is `holder` (its I/O loop), which asks `inbound` (the pure step) about
//! each datagram, delivers through `sink` and sends for others through `handoff`.
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
//! A process that finds the lock taken asks the holder for duplicates of its bound sockets
//! before it waits (`handoff`, "The sockets outlive their holder"): the port then stays bound
//! through the holder's death, datagrams queue on the socket, and the successor reads them
//! from it. Only the first holder binds (and a successor that started waiting before any
//! holder had bound, or whose holder was stopped and did not answer).
//!
//! The holder binds the port before it says "holding" and closes its sockets before it drops
//! the lock, so a successor without duplicates finds the port free unless waiters with
//! duplicates keep it. When the holder is killed the kernel closes its files in an order we do
//! not control; a successor that finds the port still bound retries for a short bounded time
//! (`BIND_RETRY`) before it concludes that another program owns the port.
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
use std::net::{SocketAddrV4, UdpSocket};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::config::{NetConfig, Sink};
use super::error::NetError;
use super::handoff::{self, Standby};
use super::holder::hold;
use super::recv::Identity;
use super::state::{Counters, NetCounters};

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

pub(super) struct Entry {
    key: Key,
    pub(super) inner: Mutex<Inner>,
    pub(super) changed: Condvar,
    pub(super) counters: Arc<Counters>,
    stop_tx: UnixDatagram,
}

pub(super) struct Inner {
    refcount: usize,
    config: NetConfig,
    sink: Sink,
    pub(super) state: RoleState,
    /// The bound datagram socket while this process holds the role (for sends from it).
    pub(super) socket: Option<Arc<UdpSocket>>,
    /// While waiting: duplicates of the holder's sockets, to hold the role with.
    standby: Option<Standby>,
    thread: Option<JoinHandle<()>>,
    thread_id: Option<ThreadId>,
}

fn registry() -> MutexGuard<'static, HashMap<Key, Arc<Entry>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<Key, Arc<Entry>>>> = OnceLock::new();
    let m = REGISTRY.get_or_init(|| Mutex::new(HashMap::new()));
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
/// configuration and [`Sink`] of the first start are used; later starts only add a reference.
///
/// With a [`Sink::Callback`], drop the last `NetRole` without holding any lock that the
/// callback takes: the drop waits for the receive loop, which may be inside the callback.
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
    /// `sink` says where received mailslot writes go: [`Sink::Local`] delivers them into the
    /// local mailslots of `config.dir` (what a host wants); a [`DeliverFn`] (or
    /// [`Sink::Callback`]) gets each one instead.
    ///
    /// [`DeliverFn`]: super::DeliverFn
    ///
    /// # Errors
    ///
    /// `InvalidSetting` if the NetBIOS name or workgroup cannot be a NetBIOS name; `Io` if the
    /// runtime directory cannot be created or the thread cannot be started.
    ///
    /// [`state`]: NetRole::state
    pub fn start(config: NetConfig, sink: impl Into<Sink>) -> Result<NetRole, NetError> {
        let sink = sink.into();
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
                inner.sink = sink;
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
                sink,
                state: RoleState::Waiting,
                socket: None,
                standby: None,
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

    /// True while this process waits with duplicates of the holder's sockets: when the holder
    /// goes, even by `kill -9`, this process reads what arrived meanwhile from the same socket
    /// and nothing is lost. False for a process that started waiting before any holder had
    /// bound the port (it binds the port itself when it gets the role).
    pub fn standby(&self) -> bool {
        lock(&self.entry.inner).standby.is_some()
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
            // Parked: see "Cancellation of a waiter" above. The entry stays for reuse; the
            // holder's sockets go, so that a process that no longer wants the role does not
            // keep the port bound.
            inner.standby = None;
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

pub(super) fn identity(config: &NetConfig) -> Result<Identity, NetError> {
    let host = super::send::own_nb("NetBIOS name", &config.netbios_name, 0)?;
    let workgroup = super::send::own_nb("workgroup", &config.workgroup, 0)?;
    Ok(Identity {
        host,
        workgroup,
        accept_any: config.accept_any,
        deliver_own: config.deliver_own,
    })
}

pub(super) fn set_state(entry: &Entry, state: RoleState) {
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
    // Taken at once: nobody holds the role. Otherwise ask the holder for its sockets first,
    // then wait (see "The sockets outlive their holder" in `handoff`).
    let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(l),
        Err((f, _)) => {
            let standby = handoff::request_sockets(&lock(&entry.inner).config.handoff_path());
            let mut inner = lock(&entry.inner);
            // A process that stopped wanting the role meanwhile keeps no socket bound.
            if inner.refcount > 0 {
                inner.standby = standby;
                entry.changed.notify_all();
            }
            Err(f)
        }
    };
    let flock = loop {
        let f = match file {
            Ok(l) => break l,
            Err(f) => f,
        };
        match Flock::lock(f, FlockArg::LockExclusive) {
            Ok(l) => break l,
            Err((f, Errno::EINTR)) => file = Err(f),
            Err((_, e)) => {
                give_up(&entry, format!("cannot lock {}: {e}", lock_path.display()));
                return;
            }
        }
    };
    let (config, sink, standby) = {
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
        (
            inner.config.clone(),
            inner.sink.clone(),
            inner.standby.take(),
        )
    };
    let end = hold(&entry, &config, sink, stop_rx, standby);
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
pub(super) enum End {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::config::{DeliverFn, DeliveryOutcome};
    use std::net::Ipv4Addr;

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
        let deliver: DeliverFn = Arc::new(|_, _, _| DeliveryOutcome::NoMailslot);
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
        let deliver: DeliverFn = Arc::new(|_, _, _| DeliveryOutcome::NoMailslot);
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
        let deliver: DeliverFn = Arc::new(|_, _, _| DeliveryOutcome::NoMailslot);
        let role = NetRole::start(c, deliver).unwrap();
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
