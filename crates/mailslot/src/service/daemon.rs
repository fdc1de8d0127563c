//! The host service's side: the socket every local user connects to, the global names it
//! owns, and the checks it makes with the kernel's word about each caller.
//!
//! One thread per connection (a connection is one reader instance, one writer, one user's
//! network role, or one status question); the names live in this process only. Each name's
//! ring is a sealed memfd: the service maps it read-write, readers and writers get a read-only
//! descriptor of it, so no client can write, truncate or grow a byte another user reads. Each
//! writer has a submission ring of its own (`submit`), the only memory a client shares
//! writable with the service, checked record by record.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use socket2::Socket;

use super::proto::{self, NameEntry, OpenReader, Reply, Request};
use super::submit::{Idle, Submit};
use super::SOCKET_NAME;
use crate::error::{Error, ErrorKind};
use crate::name::MailslotName;
use crate::net::{DeliverFn, DeliveryOutcome, NetSource};
use crate::ring::{self, Cursor, Dest, ReadStep, RecordSource, Ring, RingOptions};
use crate::server::{DEFAULT_CAPACITY, MAX_MESSAGE_SIZE};
use crate::sys::{self, fdpass};

/// Most connections one user (other than root) may hold at once: each costs the service a
/// thread, so a user cannot exhaust it for the others.
pub const MAX_CONNECTIONS_PER_USER: usize = 256;

/// Largest capacity a client may ask for (the ring adds one largest message, in whole pages).
const MAX_CAPACITY: usize = 64 << 20;

/// Most names the service holds at once (each costs at least one ring).
const MAX_NAMES: usize = 4096;

/// Most bytes of rings the names one user created may hold at once (the service's memory is
/// every user's: one user's names must not exhaust it).
pub const MAX_RING_BYTES_PER_USER: u64 = 256 << 20;

/// The running host service: owns the global directory, its socket and every global name.
#[derive(Debug)]
pub struct HostService {
    dir: PathBuf,
    listener: Socket,
    _lock: File,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    dir: PathBuf,
    names: Mutex<HashMap<String, Arc<Name>>>,
    /// Names a previous run of the service held, kept for their instances to rejoin with
    /// the owner, group and mode their creator chose (not whoever rejoins first).
    reserved: Mutex<HashMap<String, Reserved>>,
    connections: Mutex<HashMap<u32, usize>>,
    /// Bytes of rings held by the names each user created.
    ring_bytes: Mutex<HashMap<u32, u64>>,
    /// Users' network roles that take the LAN datagrams of their own names from us.
    subscribers: Mutex<Vec<Subscriber>>,
    /// The UDP port our network role serves (0: none), which subscribers must ask for.
    net_port: std::sync::atomic::AtomicU32,
    own_uid: u32,
}

#[derive(Debug)]
struct Subscriber {
    id: u64,
    conn: Arc<Socket>,
    /// Case-folded names of the subscriber's runtime directory.
    names: std::collections::HashSet<String>,
}

/// How long after a restart a previous run's name waits for its instances to rejoin.
const RESERVATION: Duration = Duration::from_secs(30);

/// A name's settings as the service records them (in `names/` of its directory) so that
/// they survive a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    display: String,
    access: Access,
    shared: bool,
    deliver_one: bool,
    max_message: u32,
    ring_size: u64,
}

#[derive(Debug)]
struct Reserved {
    meta: Meta,
    until: Instant,
}

impl Meta {
    fn encode(&self) -> String {
        format!(
            "mailslot-name 1 {} {} {:o} {} {} {} {}\n",
            self.access.owner,
            self.access.group,
            self.access.mode,
            u8::from(self.shared) | u8::from(self.deliver_one) << 1,
            self.max_message,
            self.ring_size,
            self.display
        )
    }

    fn decode(text: &str) -> Option<Meta> {
        let line = text.strip_suffix('\n')?;
        let mut fields = line.splitn(9, ' ');
        if fields.next()? != "mailslot-name" || fields.next()? != "1" {
            return None;
        }
        let access = Access {
            owner: fields.next()?.parse().ok()?,
            group: fields.next()?.parse().ok()?,
            mode: u16::from_str_radix(fields.next()?, 8)
                .ok()
                .filter(|m| *m <= 0o777)?,
        };
        let flags: u8 = fields.next()?.parse().ok()?;
        let meta = Meta {
            access,
            shared: flags & 1 != 0,
            deliver_one: flags & 2 != 0,
            max_message: fields.next()?.parse().ok()?,
            ring_size: fields.next()?.parse().ok()?,
            display: fields.next()?.to_owned(),
        };
        let max = ring::ring_size_for(MAX_CAPACITY, MAX_MESSAGE_SIZE);
        let valid = ring::valid_ring_size(meta.ring_size)
            && meta.ring_size <= max
            && meta.max_message as usize <= MAX_MESSAGE_SIZE
            && MailslotName::parse(&meta.display).is_ok();
        valid.then_some(meta)
    }
}

/// Who is at the other end of a connection, as the kernel reported it at connect time.
#[derive(Debug, Clone)]
struct Peer {
    pid: u32,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

#[derive(Debug)]
struct Name {
    display: String,
    /// Where its settings are recorded (removed when the name closes).
    record: PathBuf,
    access: Access,
    options: RingOptions,
    ring: Ring,
    read_only: File,
    inner: Mutex<NameInner>,
}

#[derive(Debug, Default)]
struct NameInner {
    instances: Vec<Instance>,
    /// `deliver one`: readers waiting for the next message, first come first served.
    claims: std::collections::VecDeque<Claim>,
    closed: bool,
}

#[derive(Debug)]
struct Claim {
    id: u64,
    conn: Arc<Socket>,
    limit: u64,
}

#[derive(Debug)]
struct Instance {
    id: u64,
    pid: u32,
    uid: u32,
    conn: Arc<Socket>,
    /// Set while the reader sleeps: ring it once `head` passes this position.
    armed: Option<u64>,
    cursor: u64,
    delivered: u64,
    lost: u64,
}

const READ: u16 = 4;
const WRITE: u16 = 2;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on another connection's thread must not take every name down with it.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Name {
    /// Appends one message; [`Name::publish`] then wakes the readers (once per batch).
    fn append(&self, data: &[u8], source: &RecordSource) -> Result<(), Error> {
        let inner = lock(&self.inner);
        if inner.closed {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("mailslot \"{}\": the server closed", self.display),
            ));
        }
        self.ring.check_size(&self.display, data.len())?;
        self.ring
            .append(
                data,
                source,
                ring::APPEND_LOCK_TIMEOUT,
                crate::Timeout::Immediate,
            )
            .map_err(|e| Error::new(e.kind(), format!("mailslot \"{}\": {e}", self.display)))?;
        drop(inner);
        Ok(())
    }

    /// Wakes the readers after appends: the blocking ones sleep on the ring's wake epoch (one
    /// `FUTEX_WAKE` for all of them, even with none asleep: cheaper than knowing), the ones
    /// that poll a descriptor asked to be rung over their connection.
    fn publish(&self) {
        let mut inner = lock(&self.inner);
        // SYNC POINT: under the name's lock, after the appends' SeqCst `head`: a reader that
        // read the epoch before finding the ring empty sees it change, or is woken.
        let epoch = self.ring.wake_epoch();
        epoch.fetch_add(1, Ordering::SeqCst);
        sys::futex_wake(epoch, i32::MAX);
        let head = self.ring.head();
        for instance in &mut inner.instances {
            if instance.armed.is_some_and(|at| at < head) {
                instance.armed = None;
                ring(&instance.conn);
            }
        }
        while let Some(claim) = inner.claims.front() {
            if !self.answer_claim(&claim.conn, claim.limit) {
                break;
            }
            inner.claims.pop_front();
        }
    }

    /// `deliver one`: gives the next message nobody took to the reader on `conn` (the caller
    /// holds the name's lock, which also orders this with appends). `false` when there is
    /// none yet. Never blocks: a reader whose socket is full loses the claim, not the message.
    fn answer_claim(&self, conn: &Socket, limit: u64) -> bool {
        let group = self.ring.group_pos();
        loop {
            let at = group.load(Ordering::Acquire);
            match self.ring.read_at(at, &mut Dest::Nowhere, false) {
                ReadStep::Empty => return false,
                // (The service's own ring: nobody else can write into it, so no damage.)
                ReadStep::Resync(next) | ReadStep::Damaged(next, _) => {
                    group.store(next.max(at), Ordering::Release)
                }
                ReadStep::Record { header, next, .. } => {
                    if header.len as u64 > limit {
                        let reply = Reply::TooSmall {
                            len: header.len as u64,
                        };
                        let _ = fdpass::send_packet(conn.as_fd(), &reply.encode(), &[], true);
                        return true;
                    }
                    let lost = self.ring.group_lost().swap(0, Ordering::AcqRel);
                    let reply = Reply::Claimed { pos: at, lost };
                    if fdpass::send_packet(conn.as_fd(), &reply.encode(), &[], true).is_ok() {
                        group.store(next, Ordering::Release);
                    } else {
                        self.ring.group_lost().fetch_add(lost, Ordering::AcqRel);
                    }
                    return true;
                }
            }
        }
    }
}

/// Who may use a global name: its creator (owner), the group it chose, and the mode bits
/// (read: listen; write: send), as for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Access {
    owner: u32,
    group: u32,
    mode: u16,
}

impl Access {
    /// Whether `peer` may `want` (READ, WRITE): the owner's, the group's or the others' bits;
    /// root and the service itself may do anything.
    fn permits(&self, peer: &Peer, own_uid: u32, want: u16) -> bool {
        if peer.uid == 0 || peer.uid == own_uid {
            return true;
        }
        let bits = if peer.uid == self.owner {
            self.mode >> 6
        } else if peer.gid == self.group || peer.groups.contains(&self.group) {
            self.mode >> 3
        } else {
            self.mode
        };
        bits & want == want
    }

    /// [`Access::permits`] as a result: `PermissionDenied` saying who asked and what holds.
    fn check(
        &self,
        name: &MailslotName,
        peer: &Peer,
        own_uid: u32,
        want: u16,
    ) -> Result<(), Error> {
        if self.permits(peer, own_uid, want) {
            return Ok(());
        }
        let verb = if want == READ { "read" } else { "write" };
        Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "mailslot \"{name}\": uid {} may not {verb} it (owner {}, group {}, mode {:03o})",
                peer.uid, self.owner, self.group, self.mode
            ),
        ))
    }
}

/// Tells a sleeping reader to look. Never blocks: a full socket already holds a bell.
fn ring(conn: &Socket) {
    let _ = fdpass::send_packet(conn.as_fd(), &Reply::Bell.encode(), &[], true);
}

fn send_reply(conn: &Socket, reply: &Reply, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    fdpass::send_packet(conn.as_fd(), &reply.encode(), fds, false)
}

fn error_reply(conn: &Socket, err: &Error) {
    let _ = send_reply(conn, &Reply::Error(err.kind(), err.to_string()), &[]);
}

/// Checks (or creates) the service's directory: a real directory of the service's user that
/// nobody else can write, so that nothing in it can have been planted by another user.
fn prepare_dir(dir: &Path) -> Result<(), Error> {
    crate::scope::refuse_symlink(dir, "the global directory")?;
    if let Err(e) = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
    {
        return Err(Error::io(
            format!("cannot create the global directory {}", dir.display()),
            e,
        ));
    }
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| Error::io(format!("cannot inspect {}", dir.display()), e))?;
    let uid = sys::current_uid();
    let problem = if !meta.is_dir() {
        Some("is not a directory (a symlink?)".to_string())
    } else if meta.uid() != uid {
        Some(format!(
            "belongs to uid {}, not to the service (uid {uid})",
            meta.uid()
        ))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "is writable by others (mode {:o})",
            meta.mode() & 0o7777
        ))
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "refusing the global directory {}: it {problem}; it must be a directory of the \
                 service's user that only it can write (remove it, or choose another with \
                 --global-dir)",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Reads the names a previous run recorded in `dir/names` (which only the service can
/// write), as reservations for their instances to rejoin.
fn load_records(dir: &Path) -> Result<HashMap<String, Reserved>, Error> {
    let records = dir.join("names");
    if let Err(e) = fs::DirBuilder::new().mode(0o755).create(&records) {
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(Error::io(format!("cannot create {}", records.display()), e));
        }
    }
    let meta = fs::symlink_metadata(&records)
        .map_err(|e| Error::io(format!("cannot inspect {}", records.display()), e))?;
    if !meta.is_dir() || meta.uid() != sys::current_uid() {
        // Not ours (a previous run under another dynamic uid?): start without records.
        eprintln!(
            "mailslot serve: ignoring {}: not a directory of the service's user",
            records.display()
        );
        return Ok(HashMap::new());
    }
    let until = Instant::now() + RESERVATION;
    let mut reserved = HashMap::new();
    let entries = fs::read_dir(&records)
        .map_err(|e| Error::io(format!("cannot list {}", records.display()), e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let text = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|f| io::read_to_string(io::Read::take(f, 4096)));
        match text.ok().as_deref().and_then(Meta::decode) {
            Some(meta) => {
                if let Ok(name) = MailslotName::parse(&meta.display) {
                    reserved.insert(name.key(), Reserved { meta, until });
                }
            }
            None => {
                let _ = fs::remove_file(&path);
            }
        }
    }
    Ok(reserved)
}

impl HostService {
    /// Takes the global directory `dir` (created if missing, checked), becomes the only
    /// service on it, and listens on its socket.
    ///
    /// # Errors
    /// `PermissionDenied` when `dir` is not the service's own private-write directory;
    /// `AlreadyExists` when another service runs on it; `Io`.
    pub fn bind(dir: &Path) -> Result<HostService, Error> {
        prepare_dir(dir)?;
        // Nothing here follows a symlink: the directory is ours alone (checked above), and
        // O_NOFOLLOW refuses one anyway.
        let lock_path = dir.join("service.lock");
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("cannot open {}", lock_path.display()), e))?;
        match nix::fcntl::Flock::lock(
            lock_file
                .try_clone()
                .map_err(|e| Error::io("cannot duplicate the lock", e))?,
            nix::fcntl::FlockArg::LockExclusiveNonblock,
        ) {
            Ok(held) => std::mem::forget(held), // held for the life of `lock_file`'s description
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("another host service already serves {}", dir.display()),
                ))
            }
            Err((_, e)) => return Err(Error::io("cannot lock the global directory", e.into())),
        }
        let reserved = load_records(dir)?;
        let socket_path = dir.join(SOCKET_NAME);
        match fs::remove_file(&socket_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(
                    format!("cannot remove {}", socket_path.display()),
                    e,
                ))
            }
        }
        let listener = fdpass::seqpacket_listen(&socket_path)
            .map_err(|e| Error::io(format!("cannot listen on {}", socket_path.display()), e))?;
        // Every local user may connect; what each may do is decided per name.
        fs::set_permissions(&socket_path, fs::Permissions::from_mode(0o666))
            .map_err(|e| Error::io(format!("cannot open {} to users", socket_path.display()), e))?;
        Ok(HostService {
            dir: dir.to_path_buf(),
            listener,
            _lock: lock_file,
            state: Arc::new(State {
                dir: dir.to_path_buf(),
                names: Mutex::new(HashMap::new()),
                reserved: Mutex::new(reserved),
                connections: Mutex::new(HashMap::new()),
                ring_bytes: Mutex::new(HashMap::new()),
                subscribers: Mutex::new(Vec::new()),
                net_port: std::sync::atomic::AtomicU32::new(0),
                own_uid: sys::current_uid(),
            }),
        })
    }

    /// The directory this service owns.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Serves connections until `stop` is set (looked at every 100 ms).
    ///
    /// # Errors
    /// `Io` when the listening socket fails.
    pub fn run(&self, stop: &AtomicBool) -> Result<(), Error> {
        while !stop.load(Ordering::Relaxed) {
            match sys::wait_readable(self.listener.as_fd(), Some(Duration::from_millis(100))) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => return Err(Error::io("cannot wait for connections", e)),
            }
            let conn = match self.listener.accept() {
                Ok((conn, _)) => conn,
                Err(e) if is_transient(&e) => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    // Out of descriptors: let the connections that hold them finish first.
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Err(e) => return Err(Error::io("cannot accept a connection", e)),
            };
            self.admit(conn);
        }
        Ok(())
    }

    fn admit(&self, conn: Socket) {
        let peer = match peer_of(&conn) {
            Ok(peer) => peer,
            Err(_) => return,
        };
        {
            let mut connections = lock(&self.state.connections);
            let count = connections.entry(peer.uid).or_default();
            if peer.uid != 0 && *count >= MAX_CONNECTIONS_PER_USER {
                error_reply(
                    &conn,
                    &Error::new(
                        ErrorKind::Io,
                        format!(
                            "the host service refuses more than {MAX_CONNECTIONS_PER_USER} \
                             connections per user"
                        ),
                    ),
                );
                return;
            }
            *count += 1;
        }
        let state = self.state.clone();
        let uid = peer.uid;
        let spawned = std::thread::Builder::new()
            .name("mailslot conn".into())
            // Thousands of connections are thousands of threads: small stacks (buffers are
            // on the heap).
            .stack_size(256 << 10)
            .spawn(move || {
                serve_connection(&state, conn, &peer);
                let mut connections = lock(&state.connections);
                if let Some(count) = connections.get_mut(&uid) {
                    *count -= 1;
                }
            });
        if spawned.is_err() {
            if let Some(count) = lock(&self.state.connections).get_mut(&uid) {
                *count -= 1;
            }
        }
    }

    /// Delivery of datagrams from the network (the network role's callback when this service
    /// holds `port`): into the global name of that name, else to every user whose network
    /// role subscribed a name of that name (they deliver into their own directories).
    pub fn network_delivery(&self, port: u16) -> DeliverFn {
        let state = self.state.clone();
        state.net_port.store(u32::from(port), Ordering::Relaxed);
        Arc::new(move |name: &str, data: &[u8], from: &NetSource| {
            let Ok(parsed) = MailslotName::parse(name) else {
                return DeliveryOutcome::NoMailslot;
            };
            // Users' own names get it as well as a global name of that name: on a terminal
            // server each user's popup window is theirs.
            let forwarded = forward(&state, &parsed.key(), name, data, from);
            let Some(entry) = lock(&state.names).get(&parsed.key()).cloned() else {
                return forwarded;
            };
            let source = from.record_source();
            let appended = entry.append(data, &source);
            entry.publish();
            match (appended, forwarded) {
                (Ok(()), _) | (_, DeliveryOutcome::Delivered) => DeliveryOutcome::Delivered,
                (Err(e), _) if e.kind() == ErrorKind::NotFound => DeliveryOutcome::NoMailslot,
                (Err(e), _) => DeliveryOutcome::Failed(e.to_string()),
            }
        })
    }
}

/// Hands a datagram to the subscribers that hold `key`; never blocks (a subscriber that does
/// not keep up loses datagrams, counted as failed deliveries).
fn forward(state: &State, key: &str, name: &str, data: &[u8], from: &NetSource) -> DeliveryOutcome {
    let subscribers = lock(&state.subscribers);
    let mut targets = subscribers
        .iter()
        .filter(|s| s.names.contains(key))
        .peekable();
    if targets.peek().is_none() {
        return DeliveryOutcome::NoMailslot;
    }
    let packet = Reply::Datagram(proto::Datagram {
        name: name.to_owned(),
        source: from.clone(),
        data: data.to_vec(),
    })
    .encode();
    let mut delivered = false;
    let mut full = 0;
    for target in targets {
        match fdpass::send_packet(target.conn.as_fd(), &packet, &[], true) {
            Ok(()) => delivered = true,
            Err(_) => full += 1,
        }
    }
    if delivered {
        DeliveryOutcome::Delivered
    } else {
        DeliveryOutcome::Failed(format!("{full} subscribed user role(s) did not keep up"))
    }
}

fn serve_subscriber(state: &Arc<State>, conn: Socket, port: u16, buf: &mut [u8]) {
    let ours = state.net_port.load(Ordering::Relaxed);
    if ours == 0 || ours != u32::from(port) {
        let why = if ours == 0 {
            "the host service does not hold a network port".to_string()
        } else {
            format!("the host service holds UDP port {ours}, not {port}")
        };
        return error_reply(&conn, &Error::new(ErrorKind::NotFound, why));
    }
    let conn = Arc::new(conn);
    if send_reply(&conn, &Reply::Subscribed, &[]).is_err() {
        return;
    }
    let id = sys::random_u64();
    lock(&state.subscribers).push(Subscriber {
        id,
        conn: conn.clone(),
        names: Default::default(),
    });
    while let Some(Request::Names(names)) = next_request(&conn, buf) {
        let keys = names
            .iter()
            .filter_map(|n| MailslotName::parse(n).ok())
            .map(|n| n.key())
            .collect();
        if let Some(me) = lock(&state.subscribers).iter_mut().find(|s| s.id == id) {
            me.names = keys;
        }
    }
    lock(&state.subscribers).retain(|s| s.id != id);
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::ECONNABORTED | libc::EPROTO)
    )
}

fn peer_of(conn: &Socket) -> io::Result<Peer> {
    let creds = fdpass::peer_creds(conn.as_fd())?;
    let groups = fdpass::peer_groups(conn.as_fd()).unwrap_or_default();
    Ok(Peer {
        pid: creds.pid,
        uid: creds.uid,
        gid: creds.gid,
        groups,
    })
}

/// Reads one request; `None` when the peer is gone or broke the protocol.
fn next_request(conn: &Socket, buf: &mut [u8]) -> Option<Request> {
    let packet = fdpass::recv_packet(conn.as_fd(), buf, false).ok()?;
    if packet.eof || packet.truncated {
        return None;
    }
    proto::Request::decode(&buf[..packet.len]).ok()
}

fn serve_connection(state: &Arc<State>, conn: Socket, peer: &Peer) {
    let mut buf = vec![0u8; proto::MAX_PACKET];
    let Some(first) = next_request(&conn, &mut buf) else {
        return;
    };
    match first {
        Request::OpenReader(open) => serve_reader(state, conn, peer, &open, &mut buf),
        Request::OpenWriter { name } => serve_writer(state, conn, peer, &name, &mut buf),
        Request::Status => {
            let _ = send_reply(&conn, &Reply::Status(status(state, peer)), &[]);
        }
        Request::Subscribe { port } => serve_subscriber(state, conn, port, &mut buf),
        _ => {}
    }
}

fn open_reader(
    state: &State,
    conn: &Arc<Socket>,
    peer: &Peer,
    open: &OpenReader,
) -> Result<(Arc<Name>, u64, u64, u64), Error> {
    let name = MailslotName::parse(&open.name)?;
    let mut names = lock(&state.names);
    let entry = match names.get(&name.key()) {
        Some(existing) => {
            if !existing.options.shared || !open.shared {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("mailslot \"{name}\": already open (not shared)"),
                ));
            }
            if existing.options.deliver_one != open.deliver_one {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("mailslot \"{name}\": open shared with another delivery mode"),
                ));
            }
            existing.access.check(&name, peer, state.own_uid, READ)?;
            existing.clone()
        }
        None => {
            if names.len() >= MAX_NAMES {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "mailslot \"{name}\": the host service holds {MAX_NAMES} names already"
                    ),
                ));
            }
            let key = name.key();
            let created = match take_reservation(state, &key) {
                // A name of a previous run: its recorded owner, group and mode hold.
                Some(reservation) => rejoin_name(state, peer, &name, open, &reservation.meta)
                    .inspect_err(|_| {
                        lock(&state.reserved).insert(key.clone(), reservation);
                    })?,
                None => create_name(state, peer, &name, open)?,
            };
            let created = Arc::new(created);
            names.insert(key, created.clone());
            created
        }
    };
    drop(names);
    let id = sys::random_u64();
    let mut inner = lock(&entry.inner);
    // Under the name's lock, so that no append slips between the position and the join.
    let cursor = entry.ring.head();
    let next_seq = entry.ring.next_seq();
    inner.instances.push(Instance {
        id,
        pid: peer.pid,
        uid: peer.uid,
        conn: conn.clone(),
        armed: Some(cursor),
        cursor,
        delivered: 0,
        lost: 0,
    });
    drop(inner);
    Ok((entry, id, cursor, next_seq))
}

fn create_name(
    state: &State,
    peer: &Peer,
    name: &MailslotName,
    open: &OpenReader,
) -> Result<Name, Error> {
    if open.refuse_when_full {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "mailslot \"{name}\": global names drop the oldest messages when a reader lags \
                 (counted); refusing writes when full is for user-scope names"
            ),
        ));
    }
    if open.max_message as usize > MAX_MESSAGE_SIZE {
        return Err(Error::new(
            ErrorKind::MessageTooLarge,
            format!("mailslot \"{name}\": a maximum message size above {MAX_MESSAGE_SIZE} bytes is not supported"),
        ));
    }
    let group = match open.group {
        Some(gid) if gid != peer.gid && !peer.groups.contains(&gid) && peer.uid != 0 => {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "mailslot \"{name}\": uid {} is not a member of group {gid}",
                    peer.uid
                ),
            ))
        }
        Some(gid) => gid,
        None => peer.gid,
    };
    let max = match open.max_message {
        0 => MAX_MESSAGE_SIZE,
        n => n as usize,
    };
    let capacity = match open.capacity as usize {
        0 => DEFAULT_CAPACITY,
        n if n > MAX_CAPACITY => {
            return Err(Error::new(
                ErrorKind::InvalidOption,
                format!(
                    "mailslot \"{name}\": a capacity of {n} bytes is more than a global name \
                     can hold (at most {MAX_CAPACITY})"
                ),
            ))
        }
        n => n,
    };
    let meta = Meta {
        display: name.as_str().to_owned(),
        access: Access {
            owner: peer.uid,
            group,
            mode: open.mode & 0o777,
        },
        shared: open.shared,
        deliver_one: open.deliver_one,
        max_message: open.max_message,
        ring_size: ring::ring_size_for(capacity, max),
    };
    build_name(state, name, meta)
}

/// A name of a previous run, rejoined by one of its instances: its recorded settings hold.
fn rejoin_name(
    state: &State,
    peer: &Peer,
    name: &MailslotName,
    open: &OpenReader,
    meta: &Meta,
) -> Result<Name, Error> {
    meta.access.check(name, peer, state.own_uid, READ)?;
    if meta.shared != open.shared || meta.deliver_one != open.deliver_one || open.refuse_when_full {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("mailslot \"{name}\": held with other settings before the service restarted"),
        ));
    }
    build_name(state, name, meta.clone())
}

/// The reservation a previous run left for `key`, if it has not expired (expired ones are
/// forgotten on the way).
fn take_reservation(state: &State, key: &str) -> Option<Reserved> {
    let mut reserved = lock(&state.reserved);
    let now = Instant::now();
    reserved.retain(|_, r| {
        let keep = r.until > now;
        if !keep {
            forget_record(state, &r.meta);
        }
        keep
    });
    reserved.remove(key)
}

fn forget_record(state: &State, meta: &Meta) {
    if let Ok(name) = MailslotName::parse(&meta.display) {
        let _ = fs::remove_file(state.dir.join("names").join(name.file_name()));
    }
}

fn release_ring(state: &State, owner: u32, size: u64) {
    if let Some(mine) = lock(&state.ring_bytes).get_mut(&owner) {
        *mine = mine.saturating_sub(size);
    }
}

/// Allocates a name's ring (charged to its owner) and records its settings.
fn build_name(state: &State, name: &MailslotName, meta: Meta) -> Result<Name, Error> {
    let options = RingOptions {
        shared: meta.shared,
        deliver_one: meta.deliver_one,
        refuse_when_full: false,
        block_when_full: false,
        max_message: meta.max_message,
        ring_size: meta.ring_size,
    };
    let size = ring::file_size(options.ring_size);
    {
        let mut held = lock(&state.ring_bytes);
        let mine = held.entry(meta.access.owner).or_default();
        if meta.access.owner != 0 && *mine + size > MAX_RING_BYTES_PER_USER {
            return Err(Error::new(
                ErrorKind::QueueFull,
                format!(
                    "mailslot \"{name}\": uid {}'s global names already hold {} MiB of rings \
                     (at most {} MiB per user); close some or ask for a smaller capacity",
                    meta.access.owner,
                    *mine >> 20,
                    MAX_RING_BYTES_PER_USER >> 20
                ),
            ));
        }
        *mine += size;
    }
    let file = fdpass::sealed_memfd("mailslot", size).map_err(|e| {
        release_ring(state, meta.access.owner, size);
        Error::io(format!("mailslot \"{name}\": cannot allocate its ring"), e)
    })?;
    let read_only = fdpass::reopen_read_only(&file)
        .map_err(|e| Error::io(format!("mailslot \"{name}\": cannot share its ring"), e));
    let made = read_only.and_then(|ro| Ok((ro, Ring::create(file, options, name.as_str())?)));
    let (read_only, ring) = made.inspect_err(|_| release_ring(state, meta.access.owner, size))?;
    let record = state.dir.join("names").join(name.file_name());
    // Written beside and renamed: a crash never leaves half a record. The directory is the
    // service's alone, so neither path can be a planted link.
    let draft = record.with_extension("draft");
    let _ = fs::remove_file(&draft); // a crash's leftover
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&draft)
        .and_then(|mut f| io::Write::write_all(&mut f, meta.encode().as_bytes()))
        .and_then(|()| fs::rename(&draft, &record));
    if let Err(e) = written {
        // The name works without its record; only a restart would forget who created it.
        let _ = fs::remove_file(&draft);
        eprintln!(
            "mailslot serve: cannot record mailslot \"{name}\" in {} ({e}); after a restart \
             its first rejoining reader will set its owner, group and mode",
            record.display()
        );
    }
    Ok(Name {
        display: meta.display,
        record,
        access: meta.access,
        options,
        ring,
        read_only,
        inner: Mutex::new(NameInner::default()),
    })
}

fn serve_reader(state: &Arc<State>, conn: Socket, peer: &Peer, open: &OpenReader, buf: &mut [u8]) {
    let conn = Arc::new(conn);
    let (entry, id, cursor, next_seq) = match open_reader(state, &conn, peer, open) {
        Ok(joined) => joined,
        Err(e) => return error_reply(&conn, &e),
    };
    let reply = Reply::Reader {
        id,
        cursor,
        next_seq,
    };
    if send_reply(&conn, &reply, &[entry.read_only.as_fd()]).is_ok() {
        while let Some(request) = next_request(&conn, buf) {
            if let Request::Claim { limit, wait } = request {
                let mut inner = lock(&entry.inner);
                inner.claims.retain(|c| c.id != id);
                if !entry.options.deliver_one {
                    break;
                }
                if !entry.answer_claim(&conn, limit) {
                    if wait {
                        inner.claims.push_back(Claim {
                            id,
                            conn: conn.clone(),
                            limit,
                        });
                    } else {
                        let nothing = Reply::Nothing.encode();
                        let _ = fdpass::send_packet(conn.as_fd(), &nothing, &[], true);
                    }
                }
                continue;
            }
            let (Request::Arm {
                cursor,
                delivered,
                lost,
            }
            | Request::Report {
                cursor,
                delivered,
                lost,
            }) = request
            else {
                break; // a reader only arms and reports; anything else ends the instance
            };
            let arm = matches!(request, Request::Arm { .. });
            let mut inner = lock(&entry.inner);
            // SYNC POINT: `head` read under the name's lock, which every append holds while it
            // publishes: an append either happened before (we ring now) or sees us armed.
            let head = entry.ring.head();
            let Some(me) = inner.instances.iter_mut().find(|i| i.id == id) else {
                break;
            };
            me.cursor = cursor.min(head);
            me.delivered = delivered;
            me.lost = lost;
            if !arm {
                continue;
            }
            if cursor < head {
                me.armed = None;
                ring(&conn);
            } else {
                me.armed = Some(cursor);
            }
        }
    }
    close_instance(state, &entry, id);
}

/// Removes instance `id`; the last one out closes the name and frees it.
fn close_instance(state: &State, entry: &Arc<Name>, id: u64) {
    let mut names = lock(&state.names);
    let mut inner = lock(&entry.inner);
    inner.instances.retain(|i| i.id != id);
    inner.claims.retain(|c| c.id != id);
    if inner.instances.is_empty() && !inner.closed {
        inner.closed = true;
        entry.ring.mark_closed();
        let _ = fs::remove_file(&entry.record);
        release_ring(
            state,
            entry.access.owner,
            ring::file_size(entry.options.ring_size),
        );
        let key = MailslotName::parse(&entry.display).map(|n| n.key());
        if let Ok(key) = key {
            if names
                .get(&key)
                .is_some_and(|current| Arc::ptr_eq(current, entry))
            {
                names.remove(&key);
            }
        }
    }
}

/// What a writer's writes came to, for its next flush.
#[derive(Debug, Default)]
struct Tally {
    appended: u64,
    failed: u64,
    last_error: Option<(ErrorKind, String)>,
}

impl Tally {
    fn count(&mut self, result: Result<(), Error>) {
        match result {
            Ok(()) => self.appended += 1,
            Err(e) => {
                self.failed += 1;
                self.last_error = Some((e.kind(), e.to_string()));
            }
        }
    }
}

/// A writer's connection: messages come through its submission ring, stamped with the
/// credentials the kernel gave for the connection (`SO_PEERCRED`: the process that opened
/// the writer). The thread drains the ring whenever it wakes and sleeps on its doorbell,
/// which the writer rings only when the doorbell says it sleeps; packets (flushes) are read
/// when the writer counted one, and now and then to notice a writer that went away.
fn serve_writer(state: &Arc<State>, conn: Socket, peer: &Peer, name: &str, buf: &mut [u8]) {
    /// How long the thread sleeps at most before it asks the connection whether the writer
    /// still lives.
    const LIVENESS_WAIT: Duration = Duration::from_millis(500);
    let entry = match open_writer(state, peer, name) {
        Ok(entry) => entry,
        Err(e) => return error_reply(&conn, &e),
    };
    let submit = match Submit::create() {
        Ok(submit) => submit,
        Err(e) => return error_reply(&conn, &Error::io("cannot allocate a submission ring", e)),
    };
    let [ring, bell] = submit.files();
    let fds = [entry.read_only.as_fd(), ring.as_fd(), bell.as_fd()];
    if send_reply(&conn, &Reply::Writer, &fds).is_err() {
        return;
    }
    let max = entry.ring.max_writable();
    let ring_source = RecordSource::Local {
        pid: peer.pid,
        uid: peer.uid,
    };
    let mut tally = Tally::default();
    let mut head = 0u64;
    let mut pending = Vec::new();
    // Drains the ring; how many messages it took, `None` for a scribbled ring.
    let mut drain = |head: &mut u64, tally: &mut Tally| {
        let mut taken = 0;
        let popped = submit.pop_all(head, max, &mut pending, |message| {
            taken += 1;
            tally.count(entry.append(message, &ring_source));
        });
        if taken > 0 {
            entry.publish();
        }
        if submit.take_waiting() {
            let _ = fdpass::send_packet(conn.as_fd(), &Reply::Room.encode(), &[], true);
        }
        popped.ok().map(|()| taken)
    };
    // Reads the packets waiting; `false` when the writer is gone or broke the protocol.
    let mut read_packets =
        |head: &mut u64,
         tally: &mut Tally,
         drain: &mut dyn FnMut(&mut u64, &mut Tally) -> Option<usize>| loop {
            let packet = match fdpass::recv_packet(conn.as_fd(), buf, true) {
                Ok(packet) => packet,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            };
            if packet.eof || packet.truncated {
                let _ = drain(head, tally);
                return false;
            }
            match Request::decode(&buf[..packet.len]) {
                Ok(Request::Flush) => {
                    // Everything the writer pushed before it asked.
                    if drain(head, tally).is_none() {
                        return false;
                    }
                    let reply = Reply::Flushed {
                        appended: tally.appended,
                        failed: tally.failed,
                        last_error: tally.last_error.take(),
                    };
                    if send_reply(&conn, &reply, &[]).is_err() {
                        return false;
                    }
                }
                _ => return false,
            }
        };
    let mut packets_seen = 0u64;
    let mut looked_at_conn = Instant::now();
    let mut yielded = false;
    loop {
        let Some(taken) = drain(&mut head, &mut tally) else {
            return; // a scribbled ring: this writer is done
        };
        // In the middle of a stream (this drain took several), give the CPU away once before
        // sleeping: the writer often publishes more meanwhile, and then one drain serves many
        // messages and nobody rings. A single message (ping-pong) goes to sleep at once.
        if taken > 1 && !yielded && submit.is_empty(head) {
            yielded = true;
            std::thread::yield_now();
            continue;
        }
        yielded = false;
        match submit.idle(head, &mut packets_seen) {
            Idle::Busy => continue,
            Idle::Packets => {
                submit.awake();
                looked_at_conn = Instant::now();
                if !read_packets(&mut head, &mut tally, &mut drain) {
                    return;
                }
                continue;
            }
            Idle::Sleep => {}
        }
        submit.sleep(LIVENESS_WAIT);
        submit.awake();
        if looked_at_conn.elapsed() >= LIVENESS_WAIT {
            looked_at_conn = Instant::now();
            if !read_packets(&mut head, &mut tally, &mut drain) {
                return;
            }
        }
    }
}

fn open_writer(state: &State, peer: &Peer, name: &str) -> Result<Arc<Name>, Error> {
    let name = MailslotName::parse(name)?;
    let Some(entry) = lock(&state.names).get(&name.key()).cloned() else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("mailslot \"{name}\": no server has it open in the global scope"),
        ));
    };
    entry.access.check(&name, peer, state.own_uid, WRITE)?;
    Ok(entry)
}

/// The names `peer` may read or write, with their instances.
fn status(state: &State, peer: &Peer) -> Vec<NameEntry> {
    let names: Vec<Arc<Name>> = lock(&state.names).values().cloned().collect();
    let mut out = Vec::new();
    for entry in names {
        if !entry.access.permits(peer, state.own_uid, READ)
            && !entry.access.permits(peer, state.own_uid, WRITE)
        {
            continue;
        }
        let head = entry.ring.head();
        let inner = lock(&entry.inner);
        let instances = inner
            .instances
            .iter()
            .map(|i| crate::registry::InstanceStatus {
                id: i.id,
                pid: i.pid,
                uid: i.uid,
                delivered: i.delivered,
                lost: i.lost,
                backlog: entry.ring.backlog(&Cursor::own(i.cursor.min(head), 0)).0 as u64,
                corrupt: 0,
            })
            .collect();
        out.push(NameEntry {
            name: entry.display.clone(),
            shared: entry.options.shared,
            deliver_one: entry.options.deliver_one,
            owner: entry.access.owner,
            group: entry.access.group,
            mode: entry.access.mode,
            instances,
        });
    }
    out.sort_by_key(|n| n.name.to_lowercase());
    out
}
