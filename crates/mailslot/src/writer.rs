//! The client (writer) side: one-shot writes and opened writers for repeated writes.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::name::{MailslotName, Target};
use crate::registry;
use crate::ring::{RecordSource, Ring, APPEND_LOCK_TIMEOUT, NETWORK_APPEND_WAIT};
use crate::scope::Scope;
use crate::server::{bell_path, Source, Timeout};
use crate::service::GlobalWriter;
use crate::sys;

/// How stale a writer's knowledge that its server lives may be: within this time after the
/// last server was killed (not closed) a write may still succeed into the dead name.
pub const LIVENESS_PROBE_INTERVAL: Duration = Duration::from_millis(1);

/// An opened writer of a local mailslot, for repeated writes.
///
/// A write never blocks on a slow, stopped or dead reader: it appends to the name's log and
/// wakes only readers that sleep. A writer of a global name hands each message to the host
/// service without waiting for it (the service stamps it with the kernel's word on who sent
/// it); [`Writer::flush`] waits until the service has taken everything written.
#[derive(Debug)]
pub struct Writer(WriterLink);

#[derive(Debug)]
enum WriterLink {
    Local(LocalWriter),
    Global(GlobalWriter),
}

/// A writer of a user-scope name: appends to the name's ring itself.
#[derive(Debug)]
struct LocalWriter {
    dir: PathBuf,
    name: MailslotName,
    ring: Ring,
    /// Unbound; rings the doorbells of readers that wait on their descriptor.
    doorbell: Option<UnixDatagram>,
    source: RecordSource,
    /// When the liveness of the name's instances was last asked of the kernel, on the coarse
    /// clock (`None`: ask at the next write).
    probed_at: Option<Duration>,
    /// How long an append waits for the append lock (short for the network role's).
    lock_wait: Duration,
    /// How long a write waits for room on a name that blocks when full.
    room_wait: Timeout,
}

impl Writer {
    /// Opens a writer of the local mailslot `name` in the user scope.
    ///
    /// # Errors
    /// `InvalidName`; `NotFound` when no server has the name open; `PermissionDenied`;
    /// `Corrupted` when its file was damaged (truncated) while servers still hold it.
    pub fn open(name: &str) -> Result<Writer, Error> {
        Writer::open_in(&Scope::User, name)
    }

    /// Opens a writer of the local mailslot `name` in `scope`.
    ///
    /// # Errors
    /// As [`Writer::open`].
    pub fn open_in(scope: &Scope, name: &str) -> Result<Writer, Error> {
        let name = MailslotName::parse(name)?;
        if *scope == Scope::Global {
            return Ok(Writer(WriterLink::Global(GlobalWriter::open(&name)?)));
        }
        let dir = scope.dir()?;
        let ring = registry::open_for_write(&dir, &name)?;
        Ok(Writer(WriterLink::Local(LocalWriter {
            dir,
            name,
            ring,
            doorbell: None,
            source: RecordSource::Local {
                pid: std::process::id(),
                uid: sys::current_uid(),
            },
            probed_at: Some(sys::coarse_now()),
            lock_wait: APPEND_LOCK_TIMEOUT,
            room_wait: Timeout::Forever,
        })))
    }

    /// The mailslot's name.
    pub fn name(&self) -> &str {
        match &self.0 {
            WriterLink::Local(local) => local.name.as_str(),
            WriterLink::Global(global) => global.name(),
        }
    }

    /// Writes one message.
    ///
    /// # Errors
    /// `NotFound` when the server has closed (or died) and no new one has the name;
    /// `MessageTooLarge` (nothing queued); `QueueFull` when the name refuses rather than
    /// drops; `TimedOut` when another writer holds the append lock for seconds (stopped), or
    /// the host service takes nothing for seconds; `ServiceUnavailable` when the host service
    /// of a global name went away; `Corrupted` when another process truncated the name's file
    /// (this and every later write are lost).
    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        match &mut self.0 {
            WriterLink::Local(local) => local.write_as(data, None),
            WriterLink::Global(global) => global.write(data),
        }
    }

    /// How long a write waits for room when the name blocks when full ([`Overflow::Block`]):
    /// by default as long as it takes; at the end of the wait the write fails with `TimedOut`
    /// and nothing is queued. Other names never wait for room, and neither do global names.
    ///
    /// [`Overflow::Block`]: crate::Overflow::Block
    pub fn set_write_timeout(&mut self, timeout: Timeout) {
        if let WriterLink::Local(local) = &mut self.0 {
            local.room_wait = timeout;
        }
    }

    /// Returns once every message written so far is in the mailslot (a no-op for user-scope
    /// names, whose writes are appended before `write` returns).
    ///
    /// # Errors
    /// For a global name, the last error the service met with this writer's messages since
    /// the last flush (`NotFound` when the server closed meanwhile, ...), or
    /// `ServiceUnavailable` when it went away (what was written since the last flush may be
    /// lost, and the error says how many).
    pub fn flush(&mut self) -> Result<(), Error> {
        match &mut self.0 {
            WriterLink::Local(_) => Ok(()),
            WriterLink::Global(global) => global.flush(),
        }
    }
}

impl LocalWriter {
    /// A closing server marks the name closed (checked on every write); only a server killed
    /// outright needs the kernel's word, which costs a system call, so it is asked at most
    /// once per [`LIVENESS_PROBE_INTERVAL`].
    fn probe_due(&mut self) -> bool {
        // The coarse clock (a tick, 1-4 ms): this runs on every write, and a precise reading
        // cost a fifth of a 64-byte write.
        let now = sys::coarse_now();
        if self
            .probed_at
            .is_some_and(|at| now.saturating_sub(at) < LIVENESS_PROBE_INTERVAL)
        {
            return false;
        }
        self.probed_at = Some(now);
        true
    }

    fn write_as(&mut self, data: &[u8], source: Option<&RecordSource>) -> Result<(), Error> {
        self.append_as(data, source)?;
        self.ring_bells();
        Ok(())
    }

    /// Appends one message without waking anyone (see [`ring_bells`](Self::ring_bells)).
    fn append_as(&mut self, data: &[u8], source: Option<&RecordSource>) -> Result<(), Error> {
        // Like a Windows client handle, a writer dies with the server it opened: after the
        // last instance closed (or died) it fails, even if a new server took the name since.
        if self.ring.closed() || (self.probe_due() && !self.ring.any_alive()?) {
            registry::reap(&self.dir, &self.name);
            return Err(server_gone(self.name.as_str()));
        }
        self.ring.check_size(self.name.as_str(), data.len())?;
        let source = source.unwrap_or(&self.source);
        let result = self
            .ring
            .append(data, source, self.lock_wait, self.room_wait);
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::new(
                ErrorKind::NotFound,
                format!("mailslot \"{}\": the server closed", self.name),
            )),
            Err(e) => Err(Error::new(
                e.kind(),
                format!("mailslot \"{}\": {e}", self.name),
            )),
        }
    }

    /// Wakes the readers that sleep (once for everything appended since the last call).
    fn ring_bells(&mut self) {
        let doorbell = &mut self.doorbell;
        let dir = &self.dir;
        self.ring.ring_bells(&mut |id| {
            if doorbell.is_none() {
                *doorbell = UnixDatagram::unbound().ok();
                if let Some(socket) = doorbell {
                    let _ = socket.set_nonblocking(true);
                }
            }
            if let Some(socket) = doorbell.as_ref() {
                // A full doorbell already means "look"; a dead one needs nothing.
                let _ = socket.send_to(&[1], bell_path(dir, id));
            }
        });
    }
}

/// `NotFound`: the server a writer opened has closed (a writer dies with it, like a Windows
/// client handle, even if a new server took the name since).
pub(crate) fn server_gone(name: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("mailslot \"{name}\": the server this writer opened is gone (open a new writer)"),
    )
}

/// Writes one message to a local mailslot (`NAME` or `\\.\mailslot\NAME`) in the user scope.
///
/// # Errors
/// As [`Writer::write`], plus `NotFound` when no server has the name open. Remote targets
/// (`\\HOST\mailslot\NAME`, `\\*\mailslot\NAME`) need the network: use the `net` module.
pub fn write(path: &str, data: &[u8]) -> Result<(), Error> {
    match Target::parse(path)? {
        (Target::Local, name) => write_one_shot(path, &name, data),
        _ => Err(Error::new(
            ErrorKind::NetworkUnavailable,
            format!("{path}: a remote target needs the network sender (mailslot::net)"),
        )),
    }
}

/// Most writers [`write`] keeps for names written to again.
const ONE_SHOT_CACHE: usize = 8;

/// Writers kept by [`write`]: a name written to again costs one append, not an open (open,
/// map, lock token, close: most of a one-shot write's system calls).
#[allow(clippy::type_complexity)]
static ONE_SHOT: std::sync::Mutex<Vec<(PathBuf, MailslotName, LocalWriter)>> =
    std::sync::Mutex::new(Vec::new());

/// A one-shot write of the user scope through a kept writer. Its server's liveness is asked
/// of the kernel on every such write, as a fresh open would: a kept writer never writes into a
/// name whose server died; a name whose server closed is opened afresh (a new server may have
/// it).
fn write_one_shot(path: &str, name: &MailslotName, data: &[u8]) -> Result<(), Error> {
    let dir = crate::scope::user_dir();
    let mut kept = ONE_SHOT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = kept.iter().position(|(d, n, _)| *d == dir && n == name) {
        let (_, _, writer) = &mut kept[i];
        writer.probed_at = None;
        match writer.write_as(data, None) {
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Corrupted) => {
                kept.remove(i);
            }
            other => return other,
        }
    }
    let Writer(WriterLink::Local(mut writer)) = Writer::open(path)? else {
        return Err(Error::new(
            ErrorKind::Io,
            "a user-scope writer was expected",
        ));
    };
    writer.write_as(data, None)?;
    if kept.len() >= ONE_SHOT_CACHE {
        kept.remove(0);
    }
    kept.push((dir, name.clone(), writer));
    Ok(())
}

/// Delivers datagrams received from the network to local mailslots, exactly as local writes
/// (every instance of a shared name, same order), stamped with their network source.
///
/// Keeps a small cache of opened writers so a stream of datagrams to one name costs one
/// append each; a batch ([`NetRole`](crate::net::NetRole)'s local sink) wakes each name's
/// sleeping readers once, after its last message.
#[derive(Debug)]
pub struct Deliverer {
    dir: PathBuf,
    /// Opened writers by the name exactly as received (other spellings of one name get entries
    /// of their own). A few names at a time: a linear search, the last hit first, is cheaper
    /// than hashing every datagram's name.
    writers: Vec<(String, LocalWriter)>,
    last: usize,
}

/// One network message of a batch for [`Deliverer::deliver_batch`].
#[derive(Debug, Clone)]
pub(crate) struct NetMessage<'a> {
    /// The mailslot name without `\MAILSLOT\`, case as received.
    pub(crate) name: &'a str,
    pub(crate) data: &'a [u8],
    pub(crate) source: RecordSource,
}

/// Most names a [`Deliverer`] keeps open at once.
const DELIVERER_CACHE: usize = 64;

impl Deliverer {
    /// A deliverer into the runtime directory `dir`.
    pub fn new(dir: PathBuf) -> Deliverer {
        Deliverer {
            dir,
            writers: Vec::new(),
            last: 0,
        }
    }

    /// Delivers one message to the local mailslot `name` (without `\MAILSLOT\`).
    ///
    /// # Errors
    /// `InvalidName`, `NotFound` (no server has the name: drop and count it),
    /// `MessageTooLarge`, `QueueFull`, `TimedOut`, as for [`Writer::write`].
    pub fn deliver(&mut self, name: &str, data: &[u8], source: &Source) -> Result<(), Error> {
        let record = match source {
            Source::Local { pid, uid } => RecordSource::Local {
                pid: *pid,
                uid: *uid,
            },
            Source::Network {
                ip,
                port,
                netbios_name,
                suffix,
                destination,
                destination_suffix,
            } => RecordSource::network(
                *ip,
                *port,
                (netbios_name, *suffix),
                (destination, *destination_suffix),
            ),
        };
        let at = self.append(name, data, &record)?;
        self.writers[at].1.ring_bells();
        Ok(())
    }

    /// Delivers a batch: appends every message, calls `appended` with the outcomes, then wakes
    /// each name's sleeping readers once. `outcomes[i]` is what became of `batch[i]`
    /// (`NotFound`: no server has the name).
    pub(crate) fn deliver_batch(
        &mut self,
        batch: &[NetMessage<'_>],
        outcomes: &mut Vec<Result<(), ErrorKind>>,
        appended: impl FnOnce(&[Result<(), ErrorKind>]),
    ) {
        outcomes.clear();
        // Names appended to and not woken yet; names found missing (asked once per batch).
        let mut touched: Vec<&str> = Vec::new();
        let mut missing: Vec<&str> = Vec::new();
        for m in batch {
            if missing.contains(&m.name) {
                outcomes.push(Err(ErrorKind::NotFound));
                continue;
            }
            if self.writers.len() >= DELIVERER_CACHE && self.find(m.name).is_none() {
                // The cache is about to be emptied: wake what it holds first.
                self.wake(&mut touched);
            }
            let result = self.append(m.name, m.data, &m.source);
            match result {
                Ok(_) => {
                    if !touched.contains(&m.name) {
                        touched.push(m.name);
                    }
                    outcomes.push(Ok(()));
                }
                Err(e) => {
                    if e.kind() == ErrorKind::NotFound {
                        missing.push(m.name);
                    }
                    outcomes.push(Err(e.kind()));
                }
            }
        }
        appended(outcomes);
        self.wake(&mut touched);
    }

    /// Wakes the sleeping readers of `name` (what another process appended and did not get to
    /// wake them for); nothing if no server has it.
    pub(crate) fn ring(&mut self, name: &str, record: &RecordSource) {
        if let Ok(at) = self.writer_for(name, record) {
            self.writers[at].1.ring_bells();
        }
    }

    /// Rings the bells of the `names` appended to, once each.
    fn wake(&mut self, names: &mut Vec<&str>) {
        for name in names.drain(..) {
            if let Some(at) = self.find(name) {
                self.writers[at].1.ring_bells();
            }
        }
    }

    fn find(&mut self, name: &str) -> Option<usize> {
        if self.writers.get(self.last).is_some_and(|(n, _)| n == name) {
            return Some(self.last);
        }
        let at = self.writers.iter().position(|(n, _)| n == name)?;
        self.last = at;
        Some(at)
    }

    /// The index of the cached writer of `name`, opened (stamping `record`) if need be.
    fn writer_for(&mut self, name: &str, record: &RecordSource) -> Result<usize, Error> {
        Ok(match self.find(name) {
            Some(at) => at,
            None => {
                let parsed = MailslotName::parse(name)?;
                if self.writers.len() >= DELIVERER_CACHE {
                    self.writers.clear();
                }
                let ring = registry::open_for_write(&self.dir, &parsed)?;
                let writer = LocalWriter {
                    dir: self.dir.clone(),
                    name: parsed,
                    ring,
                    doorbell: None,
                    source: record.clone(),
                    probed_at: Some(sys::coarse_now()),
                    // One name a stopped writer holds must not stall the others' datagrams, nor
                    // one whose reader does not read.
                    lock_wait: NETWORK_APPEND_WAIT,
                    room_wait: Timeout::Immediate,
                };
                self.writers.push((name.to_owned(), writer));
                self.last = self.writers.len() - 1;
                self.last
            }
        })
    }

    /// Appends one message without waking anyone; returns the writer's index.
    fn append(&mut self, name: &str, data: &[u8], record: &RecordSource) -> Result<usize, Error> {
        let at = self.writer_for(name, record)?;
        let result = self.writers[at].1.append_as(data, Some(record));
        // A damaged (truncated) file is reopened too: a new server may have replaced it.
        if let Err(e) = result {
            if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Corrupted) {
                // Readers of what this batch appended before are woken first.
                let (_, mut writer) = self.writers.swap_remove(at);
                writer.ring_bells();
            }
            return Err(e);
        }
        Ok(at)
    }
}

impl Deliverer {
    /// A delivery callback for the runtime directory `dir`: every mailslot write the role
    /// receives goes to the local mailslot of that name, stamped with its network source.
    ///
    /// The role does this by itself ([`Sink::Local`](crate::net::Sink::Local), the default);
    /// this callback is for a custom one that wraps local delivery (to log each outcome, say).
    pub fn callback(dir: PathBuf) -> crate::net::DeliverFn {
        let deliverer = std::sync::Mutex::new(Deliverer::new(dir));
        std::sync::Arc::new(move |name, data, from| {
            let source = from.record_source();
            let mut deliverer = deliverer.lock().unwrap_or_else(|p| p.into_inner());
            let result = deliverer
                .append(name, data, &source)
                .map(|at| deliverer.writers[at].1.ring_bells());
            match result {
                Ok(()) => crate::net::DeliveryOutcome::Delivered,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    crate::net::DeliveryOutcome::NoMailslot
                }
                Err(e) => crate::net::DeliveryOutcome::Failed(e.to_string()),
            }
        })
    }
}
