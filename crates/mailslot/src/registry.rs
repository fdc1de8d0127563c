//! The registry of names and instances: opening and closing servers, finding a name for a
//! writer, listing for `mailslot status`, and cleaning up after dead processes.
//!
//! The registry is the runtime directory itself: one ring file per live name, and inside
//! it a slot per instance whose liveness is a kernel-released lock. Cleanup is idempotent and
//! happens whenever someone opens, writes to or lists a name whose holders are gone.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::name::MailslotName;
use crate::ring::{Cursor, Ring, RingOptions, MAX_INSTANCES, SLOT_ACTIVE, SLOT_FREE};
use crate::sys;

/// How long opening or closing waits for another process's open or close of the same name.
/// Those hold the name lock for microseconds; only a stopped or hung process holds it longer.
const NAME_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// A server's place in a name: its ring (whose descriptor holds the slot's lock) and slot.
#[derive(Debug)]
pub(crate) struct Membership {
    pub ring: Ring,
    pub slot: usize,
    pub id: u64,
    /// Where the instance starts reading.
    pub cursor: Cursor,
}

/// Who creates a name, with which permissions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Creation {
    pub options: RingOptions,
    pub mode: u32,
    pub group: Option<u32>,
}

fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn describe(name: &MailslotName) -> String {
    format!("mailslot \"{name}\"")
}

fn io_err(name: &MailslotName, what: &str, err: io::Error) -> Error {
    let mut error = Error::io(format!("{}: {what}", describe(name)), err);
    if error.kind() == ErrorKind::PermissionDenied {
        error = Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{}: {what}: permission denied (another user's name, or a scope you may not use)",
                describe(name)
            ),
        );
    }
    error
}

/// Opens the name's file and takes its name lock (byte 0), making sure the locked file is
/// still the one the path names (a closing process may have just unlinked it).
fn lock_name(path: &Path, name: &MailslotName) -> Result<Option<File>, Error> {
    let deadline = Instant::now() + NAME_LOCK_TIMEOUT;
    let mut pause = Duration::from_micros(20);
    loop {
        let file = match open_file(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(name, "cannot open", e)),
        };
        let locked =
            sys::ofd_try_lock(file.as_fd(), 0, 1).map_err(|e| io_err(name, "cannot lock", e))?;
        if locked {
            let same = match (file.metadata(), fs::symlink_metadata(path)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if same {
                return Ok(Some(file));
            }
            continue;
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                ErrorKind::TimedOut,
                format!(
                    "{}: another process has been opening or closing it for 5 s (stopped?)",
                    describe(name)
                ),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Opens a server instance of `name`, creating the name or joining it as a shared instance.
pub(crate) fn open_server(
    dir: &Path,
    name: &MailslotName,
    creation: Creation,
) -> Result<Membership, Error> {
    let path = dir.join(name.file_name());
    loop {
        let Some(lock) = lock_name(&path, name)? else {
            match create_name(dir, &path, name, creation, None)? {
                Some(membership) => return Ok(membership),
                None => continue, // someone else created it meanwhile: join theirs
            }
        };
        let existing = match Ring::map_existing(
            lock.try_clone()
                .map_err(|e| io_err(name, "cannot duplicate a descriptor", e))?,
        ) {
            Ok(Some(ring)) => Some(ring),
            Ok(None) | Err(_) => {
                // A name's file is published whole, so one that does not map is damaged:
                // while its instances live, replacing it would strand them unseen.
                let alive = sys::ofd_probe(lock.as_fd(), 1, MAX_INSTANCES as u64)
                    .is_ok_and(|probe| probe != sys::LockProbe::Free);
                if alive {
                    return Err(Error::new(
                        ErrorKind::Corrupted,
                        format!(
                            "{}: its file is damaged (another process wrote into it or \
                             truncated it) while instances still have it open; close them \
                             and open the name again",
                            describe(name)
                        ),
                    ));
                }
                None
            }
        };
        let live = match &existing {
            Some(ring) => live_slots(dir, ring, &lock)?,
            None => Vec::new(),
        };
        let Some(ring) = existing.filter(|_| !live.is_empty()) else {
            // Unpublished, damaged, or every instance dead: replace it with a fresh name.
            match create_name(dir, &path, name, creation, Some(&lock))? {
                Some(membership) => return Ok(membership),
                None => continue,
            }
        };
        return join(ring, lock, name, creation, &live);
    }
}

/// Slots whose owners are alive; frees the dead ones and removes their doorbells (the caller
/// holds the name lock).
fn live_slots(dir: &Path, ring: &Ring, probe: &File) -> Result<Vec<usize>, Error> {
    let live = ring.live_slots(probe)?;
    for slot in 0..MAX_INSTANCES {
        if ring.slot(slot).state.load(Ordering::Acquire) == SLOT_ACTIVE
            && live.binary_search(&slot).is_err()
        {
            free_slot(dir, ring, slot);
        }
    }
    Ok(live)
}

/// Frees `slot` and removes its instance's doorbell socket file.
fn free_slot(dir: &Path, ring: &Ring, slot: usize) {
    let id = ring.slot(slot).id.load(Ordering::Relaxed);
    ring.free_slot(slot);
    let _ = fs::remove_file(crate::server::bell_path(dir, id));
}

fn join(
    ring: Ring,
    lock: File,
    name: &MailslotName,
    creation: Creation,
    live: &[usize],
) -> Result<Membership, Error> {
    let existing = ring.options();
    let first = ring.slot(live[0]);
    let (pid, owner) = (
        first.pid.load(Ordering::Relaxed),
        first.uid.load(Ordering::Relaxed),
    );
    // Joining a name whose permissions differ from what this opener asked for would let
    // whoever created it first (another user, in the global scope) decide who reads along.
    let mode = ring
        .file
        .metadata()
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or(0);
    let group = ring.file.metadata().map(|m| m.gid()).ok();
    if mode != creation.mode || creation.group.is_some_and(|g| Some(g) != group) {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{}: already open by pid {pid} (uid {owner}) with mode {mode:o} and group {}, \
                 not the mode {:o}{} asked for",
                describe(name),
                group.map_or("?".to_owned(), |g| g.to_string()),
                creation.mode,
                creation
                    .group
                    .map_or(String::new(), |g| format!(" and group {g}"))
            ),
        ));
    }
    if !creation.options.shared || !existing.shared {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{}: already open by pid {pid}{}",
                describe(name),
                if existing.shared {
                    " as a shared name (open it shared to join)"
                } else {
                    " (not shared)"
                }
            ),
        ));
    }
    if existing.deliver_one != creation.options.deliver_one {
        let mode = |one| if one { "one" } else { "all" };
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{}: already open shared with delivery '{}', not '{}'",
                describe(name),
                mode(existing.deliver_one),
                mode(creation.options.deliver_one)
            ),
        ));
    }
    for slot in 0..MAX_INSTANCES {
        if ring.slot(slot).state.load(Ordering::Acquire) != SLOT_FREE {
            continue;
        }
        // Our descriptor (which holds the name lock) takes the slot's lock; it stays open
        // for the instance's lifetime.
        if !sys::ofd_try_lock(lock.as_fd(), 1 + slot as u64, 1)
            .map_err(|e| io_err(name, "cannot lock an instance slot", e))?
        {
            continue; // an owner we freed above is somehow still around: leave it alone
        }
        let id = sys::random_u64();
        let cursor = ring.activate_slot(slot, id, std::process::id(), sys::current_uid());
        let _ = sys::ofd_unlock(lock.as_fd(), 0, 1);
        drop(lock); // the ring holds its own duplicate of the descriptor
        return Ok(Membership {
            ring,
            slot,
            id,
            cursor,
        });
    }
    Err(Error::new(
        ErrorKind::QueueFull,
        format!(
            "{}: too many instances: it already has {MAX_INSTANCES}, the most one name can have",
            describe(name)
        ),
    ))
}

/// Creates and publishes a new ring for `name`. With `replacing` (the locked old file),
/// atomically replaces a dead name; otherwise links only if the name is still absent
/// (`None` means someone else won the race).
fn create_name(
    dir: &Path,
    path: &Path,
    name: &MailslotName,
    creation: Creation,
    replacing: Option<&File>,
) -> Result<Option<Membership>, Error> {
    // Not the name's file name: at 80 bytes that needs escaping it is 245 bytes, and a draft
    // named after it would pass the 255-byte limit of a file name.
    let tmp = dir.join(format!(".draft-{:016x}.tmp", sys::random_u64()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(creation.mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| io_err(name, "cannot create", e))?;
    let cleanup = |e: Error| {
        let _ = fs::remove_file(&tmp);
        e
    };
    if let Some(gid) = creation.group {
        std::os::unix::fs::fchown(&file, None, Some(gid))
            .map_err(|e| cleanup(io_err(name, "cannot set the group", e)))?;
    }
    // Exact mode regardless of the umask.
    file.set_permissions(fs::Permissions::from_mode(creation.mode))
        .map_err(|e| cleanup(io_err(name, "cannot set the mode", e)))?;
    for range in [(0, 1), (1, 1)] {
        sys::ofd_try_lock(file.as_fd(), range.0, range.1)
            .map_err(|e| cleanup(io_err(name, "cannot lock", e)))?;
    }
    let ring = Ring::create(file, creation.options, name.as_str()).map_err(cleanup)?;
    let id = sys::random_u64();
    let cursor = ring.activate_slot(0, id, std::process::id(), sys::current_uid());
    let published = match replacing {
        Some(old) => {
            let result = fs::rename(&tmp, path);
            if result.is_ok() {
                if let Ok(Some(old)) = old
                    .try_clone()
                    .map(Ring::map_existing)
                    .map(|r| r.ok().flatten())
                {
                    old.mark_closed();
                }
            }
            result
        }
        None => {
            let result = fs::hard_link(&tmp, path);
            let _ = fs::remove_file(&tmp);
            match result {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
                other => other,
            }
        }
    };
    published.map_err(|e| cleanup(io_err(name, "cannot publish", e)))?;
    let _ = sys::ofd_unlock(ring.file.as_fd(), 0, 1);
    Ok(Some(Membership {
        ring,
        slot: 0,
        id,
        cursor,
    }))
}

/// Closes a server instance: frees its slot and, if it was the last, deletes the name.
pub(crate) fn close_server(dir: &Path, name: &MailslotName, membership: &Membership) {
    let ring = &membership.ring;
    let fd = ring.file.as_fd();
    let deadline = Instant::now() + NAME_LOCK_TIMEOUT;
    let mut locked = false;
    while !locked && Instant::now() < deadline {
        locked = sys::ofd_try_lock(fd, 0, 1).unwrap_or(false);
        if !locked {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    free_slot(dir, ring, membership.slot);
    // By our own id: a truncated file's slot no longer holds it.
    let _ = fs::remove_file(crate::server::bell_path(dir, membership.id));
    let _ = sys::ofd_unlock(fd, 1 + membership.slot as u64, 1);
    if locked {
        let others = live_slots(dir, ring, &ring.file).unwrap_or_default();
        // A truncated file's slot table reads as zeros: only the locks still say who lives.
        let damaged_but_held = ring.truncated() && ring.any_alive().unwrap_or(true);
        if others.is_empty() && !damaged_but_held {
            ring.mark_closed();
            let path = dir.join(name.file_name());
            let ours = match (ring.file.metadata(), fs::symlink_metadata(&path)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if ours {
                let _ = fs::remove_file(&path);
            }
        }
        let _ = sys::ofd_unlock(fd, 0, 1);
    }
}

/// Finds a live name for a writer.
///
/// # Errors
/// `NotFound` when no live server has the name open (a dead name is cleaned up on the way).
pub(crate) fn open_for_write(dir: &Path, name: &MailslotName) -> Result<Ring, Error> {
    let path = dir.join(name.file_name());
    let not_found = || {
        Error::new(
            ErrorKind::NotFound,
            format!("{}: no server has it open on this host", describe(name)),
        )
    };
    let file = match open_file(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
        Err(e) => return Err(io_err(name, "cannot open", e)),
    };
    let probe = file
        .try_clone()
        .map_err(|e| io_err(name, "cannot duplicate a descriptor", e))?;
    let ring = match Ring::map_existing(file)? {
        Some(ring) => ring,
        // Published files always pass the checks: one that fails them while instances hold it
        // was damaged under them (truncated), which is not the same as absent.
        None if instances_locked(&probe) => return Err(damaged(name)),
        None => return Err(not_found()),
    };
    if ring.closed() || !ring.any_alive()? {
        reap(dir, name);
        return Err(not_found());
    }
    Ok(ring)
}

/// Whether any instance holds its lock in `file` (bytes 1..=MAX_INSTANCES): the locks outlive a
/// truncation of the file, its slot table does not. Probe through a descriptor holding none.
fn instances_locked(file: &File) -> bool {
    matches!(
        sys::ofd_probe(file.as_fd(), 1, MAX_INSTANCES as u64),
        Ok(sys::LockProbe::HeldAt(_))
    )
}

fn damaged(name: &MailslotName) -> Error {
    Error::new(
        ErrorKind::Corrupted,
        format!(
            "{}: its file was truncated or damaged by another process while servers have it \
             open; it works again once they have all closed it",
            describe(name)
        ),
    )
}

/// The status of a name whose file fails its checks but is still held by instances (see
/// [`MailslotStatus::damaged`]): who holds it, with the ids and pids its slots still tell.
fn damaged_status(name: &MailslotName, file: &File) -> Option<MailslotStatus> {
    let instances: Vec<InstanceStatus> = (0..MAX_INSTANCES)
        .filter(|&slot| {
            matches!(
                sys::ofd_probe(file.as_fd(), 1 + slot as u64, 1),
                Ok(sys::LockProbe::HeldAt(_))
            )
        })
        .map(|slot| {
            let (id, pid, uid) = Ring::salvage_slot(file, slot).unwrap_or_default();
            InstanceStatus {
                id,
                pid,
                uid,
                delivered: 0,
                lost: 0,
                backlog: 0,
                corrupt: 0,
            }
        })
        .collect();
    (!instances.is_empty()).then(|| MailslotStatus {
        name: name.as_str().to_owned(),
        shared: instances.len() > 1,
        deliver_one: false,
        refused: 0,
        repaired: 0,
        damaged: true,
        capacity: None,
        instances,
    })
}

/// Deletes `name` if none of its instances is alive (idempotent; errors are ignored: the
/// next open retries).
pub(crate) fn reap(dir: &Path, name: &MailslotName) {
    let path = dir.join(name.file_name());
    let Ok(Some(lock)) = lock_name(&path, name) else {
        return;
    };
    let ring = lock
        .try_clone()
        .ok()
        .and_then(|f| Ring::map_existing(f).ok().flatten());
    if let Some(ring) = &ring {
        if !live_slots(dir, ring, &lock).unwrap_or_default().is_empty() {
            return;
        }
        ring.mark_closed();
    }
    let _ = fs::remove_file(&path);
}

/// One instance of a name, as `mailslot status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    /// Unique for the life of the instance (never a pid).
    pub id: u64,
    pub pid: u32,
    pub uid: u32,
    /// Messages this instance has read.
    pub delivered: u64,
    /// Messages this instance lost because it lagged past the queue capacity.
    pub lost: u64,
    /// Messages waiting for this instance.
    pub backlog: u64,
    /// Damage in the name's file this instance met and skipped (each reported to it as
    /// `Corrupted`).
    pub corrupt: u64,
}

/// One live name, as `mailslot status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailslotStatus {
    /// The name as its creator spelled it.
    pub name: String,
    pub shared: bool,
    /// `true` for `one` delivery.
    pub deliver_one: bool,
    /// Messages refused with `QueueFull`.
    pub refused: u64,
    /// Damage writers found in the name's shared words and repaired.
    pub repaired: u64,
    /// The name's file was truncated or otherwise damaged by another process while instances
    /// hold it: writes fail with `Corrupted` until they have all closed it. Only who holds it is
    /// known: the counters are zero, `shared` and `deliver_one` are guesses, and ids, pids and
    /// uids are zero where the file lost their slot.
    pub damaged: bool,
    /// The capacity in effect, in bytes of records ([`crate::ServerBuilder::capacity`] is
    /// rounded up); `None` when unknown (a damaged file, a global name).
    pub capacity: Option<u64>,
    pub instances: Vec<InstanceStatus>,
}

/// Lists the live names of a directory with their live instances, cleaning up dead ones.
///
/// # Errors
/// `PermissionDenied` when the directory cannot be read.
pub fn list(dir: &Path) -> Result<Vec<MailslotStatus>, Error> {
    let entries =
        fs::read_dir(dir).map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name.starts_with('.') {
            remove_abandoned_draft(&entry);
            continue;
        }
        let Some(key) = MailslotName::key_from_file_name(file_name) else {
            continue;
        };
        let Ok(name) = MailslotName::parse(&key) else {
            continue;
        };
        // One name the caller may not open (another user's, in the global scope) or a planted
        // non-file must not hide the others.
        if let Ok(Some(status)) = status_of(dir, &name) {
            out.push(status);
        }
    }
    out.sort_by_key(|status| status.name.to_lowercase());
    Ok(out)
}

/// A new name is drafted in a `.draft-RANDOM.tmp` file and linked into place within
/// microseconds; a draft this old belonged to a creator killed in between.
fn remove_abandoned_draft(entry: &fs::DirEntry) {
    const ABANDONED_AFTER: Duration = Duration::from_secs(60);
    let is_draft = entry
        .file_name()
        .to_str()
        .is_some_and(|n| n.ends_with(".tmp"));
    let old = entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > ABANDONED_AFTER);
    if is_draft && old {
        let _ = fs::remove_file(entry.path());
    }
}

/// The status of one name, `None` if it has no live instance (it is then cleaned up).
pub fn status_of(dir: &Path, name: &MailslotName) -> Result<Option<MailslotStatus>, Error> {
    let path = dir.join(name.file_name());
    let file = match open_file(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(name, "cannot open", e)),
    };
    let probe = file
        .try_clone()
        .map_err(|e| io_err(name, "cannot duplicate a descriptor", e))?;
    let Ok(Some(ring)) = Ring::map_existing(file) else {
        return Ok(damaged_status(name, &probe));
    };
    let mut instances = Vec::new();
    let options = ring.options();
    // The kernel's locks say who lives; a dead instance's slot still says active.
    let live = ring.live_slots(&ring.file)?;
    let dead = (0..MAX_INSTANCES).any(|slot| {
        ring.slot(slot).state.load(Ordering::Acquire) == SLOT_ACTIVE
            && live.binary_search(&slot).is_err()
    });
    for &slot in &live {
        let s = ring.slot(slot);
        let cursor = ring.slot_cursor(slot);
        instances.push(InstanceStatus {
            id: s.id.load(Ordering::Relaxed),
            pid: s.pid.load(Ordering::Relaxed),
            uid: s.uid.load(Ordering::Relaxed),
            delivered: s.delivered.load(Ordering::Relaxed),
            // What it was told of, and what it has lost since but not yet read past.
            lost: s
                .lost
                .load(Ordering::Relaxed)
                .saturating_add(ring.lost_unread(&cursor)),
            backlog: ring.backlog(&cursor).0 as u64,
            corrupt: s.corrupt.load(Ordering::Relaxed),
        });
    }
    if dead {
        // Free the dead slots (and the name, if nobody is left) under the name lock.
        if let Ok(Some(lock)) = lock_name(&path, name) {
            if let Ok(Some(locked)) = lock
                .try_clone()
                .map(|f| Ring::map_existing(f).ok().flatten())
            {
                let live = live_slots(dir, &locked, &lock)?;
                if live.is_empty() {
                    locked.mark_closed();
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }
    if instances.is_empty() {
        return Ok(None);
    }
    Ok(Some(MailslotStatus {
        name: ring.display_name(),
        shared: options.shared,
        deliver_one: options.deliver_one,
        refused: ring.refused(),
        repaired: ring.repaired(),
        damaged: ring.truncated(),
        capacity: Some(ring.capacity()),
        instances,
    }))
}
