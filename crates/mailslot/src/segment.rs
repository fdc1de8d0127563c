//! The shared segment of one mailslot name: a header, a table of instance slots, and a byte
//! ring (the log) that writers append to and every instance reads with its own cursor.
//!
//! One file per name in the runtime directory, mapped by every server and writer. Layout
//! (all offsets fixed, little-endian host words, checked on every open):
//!
//! ```text
//! 0      header (magic, version, options, head/tail positions, append mutex, display name)
//! 4096   MAX_INSTANCES slots of 64 bytes (state, doorbell, id, pid, uid, cursor, counters)
//! 12288  ring of `ring_size` bytes (a power of two) holding records
//! ```
//!
//! Positions (`head`, `tail`, cursors) are byte counts since creation that only grow; the
//! ring offset is `position & (ring_size - 1)`. A record is a 48-byte header and its data
//! padded to 8 bytes; a record never wraps: the space left at the end of the ring is skipped
//! (a pad record, or implicitly when less than a header is left).
//!
//! Concurrency:
//! - Appends hold a robust process-shared mutex (bounded wait). A writer killed mid-append
//!   leaves `head` unpublished, so its half-written bytes are never read.
//! - Readers take no lock. A reader copies a record, then re-reads `tail`: if the writer has
//!   since moved `tail` past the record (overwrite under overflow), the copy is discarded and
//!   the loss is counted from the record sequence numbers (a seqlock).
//! - Liveness is an OFD lock: byte 0 of the file is the name lock (open, close and cleanup),
//!   byte `1 + i` is held by instance `i` for its lifetime. The kernel drops both when a
//!   process dies, so no stale holder can remain.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::sys::{self, LockProbe, MutexLock, SharedMap};

/// The largest message a mailslot accepts when no smaller maximum is set (1 MiB).
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;

pub const MAGIC: u64 = 0x4d41_494c_534c_4f54; // "MAILSLOT"
pub const VERSION: u32 = 1;
pub const MAX_INSTANCES: usize = 128;

const HEADER_SIZE: usize = 4096;
const SLOT_SIZE: usize = 64;
pub const RING_OFFSET: usize = HEADER_SIZE + MAX_INSTANCES * SLOT_SIZE;
pub const RECORD_HEADER: usize = 48;
/// Longest display name kept in the header.
const NAME_CAP: usize = 128;

// Header fields.
const H_MAGIC: usize = 0;
const H_VERSION: usize = 8;
const H_FLAGS: usize = 12;
const H_MAX_MESSAGE: usize = 16;
const H_CLOSED: usize = 20;
const H_RING_SIZE: usize = 24;
const H_HEAD: usize = 32;
const H_TAIL: usize = 40;
const H_NEXT_SEQ: usize = 48;
const H_GROUP_POS: usize = 56;
const H_GROUP_LOST: usize = 64;
const H_REFUSED: usize = 72;
const H_HIGH_WATER: usize = 80;
/// The futex word every blocking reader of the name sleeps on: bumped by a writer that saw a
/// sleeper, so one wake system call serves all of them.
const H_WAKE_EPOCH: usize = 84;
const H_NAME_LEN: usize = 88;
const H_NAME: usize = 96;
const H_MUTEX: usize = 256;

// Header flag bits.
const F_SHARED: u32 = 1;
const F_DELIVER_ONE: u32 = 2;
const F_REFUSE_WHEN_FULL: u32 = 4;

// Slot fields (relative to the slot).
const S_STATE: usize = 0;
const S_BELL: usize = 4;
const S_ID: usize = 8;
const S_PID: usize = 16;
const S_UID: usize = 20;
const S_CURSOR: usize = 24;
const S_NEXT_SEQ: usize = 32;
const S_DELIVERED: usize = 40;
const S_LOST: usize = 48;

pub const SLOT_FREE: u32 = 0;
pub const SLOT_ACTIVE: u32 = 1;

/// Doorbell states of a slot: what a writer must do after appending.
pub const BELL_IDLE: u32 = 0;
pub const BELL_FUTEX: u32 = 1;
pub const BELL_SOCKET: u32 = 2;

const KIND_MESSAGE: u16 = 1;
const KIND_PAD: u16 = 2;

/// How long a writer's append waits for the append lock before reporting a stuck writer.
pub const APPEND_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the network role's append waits for a name's append lock: a name whose lock a
/// stopped writer holds must delay only its own datagrams (dropped and counted), never the
/// other names'.
pub const NETWORK_APPEND_WAIT: Duration = Duration::from_millis(1);

/// Options fixed when a name is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentOptions {
    pub shared: bool,
    pub deliver_one: bool,
    pub refuse_when_full: bool,
    /// 0 = the implementation maximum.
    pub max_message: u32,
    pub ring_size: u64,
}

/// Where a message came from, as stored in its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordSource {
    Local {
        pid: u32,
        uid: u32,
    },
    Network {
        ip: [u8; 4],
        port: u16,
        name: [u8; 16],
        suffix: u8,
    },
}

impl RecordSource {
    /// A datagram's source as a record stores it (the NetBIOS name cut or NUL-padded to 16
    /// bytes).
    pub fn network(ip: std::net::Ipv4Addr, port: u16, netbios_name: &str, suffix: u8) -> Self {
        let mut name = [0u8; 16];
        let bytes = netbios_name.as_bytes();
        let n = bytes.len().min(16);
        name[..n].copy_from_slice(&bytes[..n]);
        RecordSource::Network {
            ip: ip.octets(),
            port,
            name,
            suffix,
        }
    }
}

/// A record's header, decoded.
#[derive(Debug, Clone)]
pub struct RecordHeader {
    pub len: usize,
    pub seq: u64,
    pub source: RecordSource,
}

/// One mapped segment (the file stays open for locks and probes).
#[derive(Debug)]
pub struct Segment {
    pub file: File,
    map: SharedMap,
    ring_size: u64,
}

/// What a reader found at its cursor.
pub enum ReadStep {
    Empty,
    /// A record; the data is in the caller's buffer when it fit.
    Record {
        header: RecordHeader,
        /// Position just after this record (the reader's next cursor).
        next: u64,
        copied: bool,
    },
    /// The record was overwritten while copying or the cursor fell behind `tail`: restart
    /// from this position.
    Resync(u64),
}

fn round8(n: usize) -> usize {
    (n + 7) & !7
}

pub fn record_size(len: usize) -> usize {
    RECORD_HEADER + round8(len)
}

/// Smallest ring (a power of two) holding `capacity` bytes and one maximum message.
pub fn ring_size_for(capacity: usize, max_message: usize) -> u64 {
    let need = capacity.max(record_size(max_message) * 2).max(4096);
    need.next_power_of_two() as u64
}

pub fn file_size(ring_size: u64) -> u64 {
    RING_OFFSET as u64 + ring_size
}

impl Segment {
    /// Maps an existing file and checks its header (the file may come from a dead process
    /// or another user: nothing in it is trusted until checked).
    ///
    /// Returns `Ok(None)` when the file is not (yet) a published segment.
    pub fn map_existing(file: File) -> Result<Option<Segment>, Error> {
        Segment::map_checked(file, SharedMap::map)
    }

    /// Maps a segment the host service handed over, read-only (its checks as for
    /// [`Segment::map_existing`]). Only reads may be used on the result: `read_at`,
    /// `backlog_from`, `head`, `closed`, `options` and the other loads.
    pub fn map_read_only(file: File) -> Result<Option<Segment>, Error> {
        Segment::map_checked(file, SharedMap::map_read_only)
    }

    fn map_checked(
        file: File,
        map_fn: fn(&File, usize) -> std::io::Result<SharedMap>,
    ) -> Result<Option<Segment>, Error> {
        let len = file
            .metadata()
            .map_err(|e| Error::io("cannot inspect a mailslot file", e))?
            .len();
        if len < RING_OFFSET as u64 + 4096 {
            return Ok(None);
        }
        let map =
            map_fn(&file, RING_OFFSET).map_err(|e| Error::io("cannot map a mailslot file", e))?;
        if map.u64_at(H_MAGIC).load(Ordering::Acquire) != MAGIC {
            return Ok(None);
        }
        if map.u32_at(H_VERSION).load(Ordering::Relaxed) != VERSION {
            return Err(Error::new(
                ErrorKind::Corrupted,
                "the mailslot file has an unknown layout version (another mailslot release?)",
            ));
        }
        let ring_size = map.u64_at(H_RING_SIZE).load(Ordering::Relaxed);
        if !ring_size.is_power_of_two() || ring_size < 4096 || file_size(ring_size) != len {
            return Err(Error::new(
                ErrorKind::Corrupted,
                "the mailslot file's ring size does not match the file",
            ));
        }
        drop(map);
        let map = map_fn(&file, file_size(ring_size) as usize)
            .map_err(|e| Error::io("cannot map a mailslot file", e))?;
        Ok(Some(Segment {
            file,
            map,
            ring_size,
        }))
    }

    /// Sizes and initialises a brand-new file (not yet visible under its name).
    pub fn create(file: File, options: SegmentOptions, display: &str) -> Result<Segment, Error> {
        let size = file_size(options.ring_size);
        file.set_len(size)
            .map_err(|e| Error::io("cannot size a new mailslot file", e))?;
        // Every page now: a full filesystem fails this open with ENOSPC, and never a later
        // write into a hole of the mapping with SIGBUS (which would kill the writer).
        nix::fcntl::fallocate(&file, nix::fcntl::FallocateFlags::empty(), 0, size as i64).map_err(
            |e| {
                Error::io(
                    format!(
                        "cannot allocate the {} KiB of a new mailslot (is the filesystem full?)",
                        size >> 10
                    ),
                    e.into(),
                )
            },
        )?;
        let map = SharedMap::map(&file, size as usize)
            .map_err(|e| Error::io("cannot map a new mailslot file", e))?;
        let mut flags = 0;
        if options.shared {
            flags |= F_SHARED;
        }
        if options.deliver_one {
            flags |= F_DELIVER_ONE;
        }
        if options.refuse_when_full {
            flags |= F_REFUSE_WHEN_FULL;
        }
        map.u32_at(H_VERSION).store(VERSION, Ordering::Relaxed);
        map.u32_at(H_FLAGS).store(flags, Ordering::Relaxed);
        map.u32_at(H_MAX_MESSAGE)
            .store(options.max_message, Ordering::Relaxed);
        map.u64_at(H_RING_SIZE)
            .store(options.ring_size, Ordering::Relaxed);
        let name = display.as_bytes();
        let name = &name[..name.len().min(NAME_CAP)];
        map.u32_at(H_NAME_LEN)
            .store(name.len() as u32, Ordering::Relaxed);
        map.write(H_NAME, name);
        map.init_robust_mutex(H_MUTEX)
            .map_err(|e| Error::io("cannot initialise the append lock", e))?;
        // SYNC POINT: the magic is published last; openers that see it see a whole header.
        map.u64_at(H_MAGIC).store(MAGIC, Ordering::Release);
        Ok(Segment {
            file,
            map,
            ring_size: options.ring_size,
        })
    }

    pub fn options(&self) -> SegmentOptions {
        let flags = self.map.u32_at(H_FLAGS).load(Ordering::Relaxed);
        SegmentOptions {
            shared: flags & F_SHARED != 0,
            deliver_one: flags & F_DELIVER_ONE != 0,
            refuse_when_full: flags & F_REFUSE_WHEN_FULL != 0,
            max_message: self.map.u32_at(H_MAX_MESSAGE).load(Ordering::Relaxed),
            ring_size: self.ring_size,
        }
    }

    /// Largest message this ring can hold at all.
    pub fn ring_max_message(&self) -> usize {
        (self.ring_size as usize / 2).saturating_sub(RECORD_HEADER)
    }

    /// Largest message a writer may append: the name's maximum (0: [`MAX_MESSAGE_SIZE`]),
    /// and never more than the ring holds.
    pub fn max_writable(&self) -> usize {
        match self.options().max_message as usize {
            0 => MAX_MESSAGE_SIZE,
            n => n,
        }
        .min(self.ring_max_message())
    }

    /// `MessageTooLarge` (naming `name`) for a message of `len` bytes above
    /// [`Segment::max_writable`].
    pub fn check_size(&self, name: &str, len: usize) -> Result<(), Error> {
        let max = self.max_writable();
        if len <= max {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::MessageTooLarge,
            format!(
                "mailslot \"{name}\": the message is {len} bytes, the maximum is {max}; nothing \
                 was queued"
            ),
        ))
    }

    pub fn display_name(&self) -> String {
        let len = (self.map.u32_at(H_NAME_LEN).load(Ordering::Relaxed) as usize).min(NAME_CAP);
        let mut buf = vec![0u8; len];
        self.map.read(H_NAME, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    pub fn closed(&self) -> bool {
        self.map.u32_at(H_CLOSED).load(Ordering::SeqCst) != 0
    }

    pub fn mark_closed(&self) {
        self.map.u32_at(H_CLOSED).store(1, Ordering::SeqCst);
    }

    pub fn head(&self) -> u64 {
        self.map.u64_at(H_HEAD).load(Ordering::SeqCst)
    }

    pub fn next_seq(&self) -> u64 {
        self.map.u64_at(H_NEXT_SEQ).load(Ordering::Acquire)
    }

    pub fn refused(&self) -> u64 {
        self.map.u64_at(H_REFUSED).load(Ordering::Relaxed)
    }

    pub fn group_pos(&self) -> &AtomicU64 {
        self.map.u64_at(H_GROUP_POS)
    }

    pub fn group_lost(&self) -> &AtomicU64 {
        self.map.u64_at(H_GROUP_LOST)
    }

    /// The shared futex word of blocking readers (see `ring_bells`).
    pub fn wake_epoch(&self) -> &AtomicU32 {
        self.map.u32_at(H_WAKE_EPOCH)
    }

    pub fn high_water(&self) -> usize {
        (self.map.u32_at(H_HIGH_WATER).load(Ordering::Acquire) as usize).min(MAX_INSTANCES)
    }

    // ---- slots -------------------------------------------------------------------------

    fn slot_field32(&self, slot: usize, field: usize) -> &AtomicU32 {
        self.map.u32_at(HEADER_SIZE + slot * SLOT_SIZE + field)
    }

    fn slot_field64(&self, slot: usize, field: usize) -> &AtomicU64 {
        self.map.u64_at(HEADER_SIZE + slot * SLOT_SIZE + field)
    }

    pub fn slot_state(&self, slot: usize) -> u32 {
        self.slot_field32(slot, S_STATE).load(Ordering::Acquire)
    }

    pub fn bell(&self, slot: usize) -> &AtomicU32 {
        self.slot_field32(slot, S_BELL)
    }

    pub fn slot_id(&self, slot: usize) -> u64 {
        self.slot_field64(slot, S_ID).load(Ordering::Relaxed)
    }

    pub fn slot_pid_uid(&self, slot: usize) -> (u32, u32) {
        (
            self.slot_field32(slot, S_PID).load(Ordering::Relaxed),
            self.slot_field32(slot, S_UID).load(Ordering::Relaxed),
        )
    }

    pub fn slot_cursor(&self, slot: usize) -> &AtomicU64 {
        self.slot_field64(slot, S_CURSOR)
    }

    pub fn slot_next_seq(&self, slot: usize) -> &AtomicU64 {
        self.slot_field64(slot, S_NEXT_SEQ)
    }

    pub fn slot_delivered(&self, slot: usize) -> &AtomicU64 {
        self.slot_field64(slot, S_DELIVERED)
    }

    pub fn slot_lost(&self, slot: usize) -> &AtomicU64 {
        self.slot_field64(slot, S_LOST)
    }

    /// Fills and activates slot `slot` (caller holds the name lock and the slot's lock).
    pub fn activate_slot(&self, slot: usize, id: u64, pid: u32, uid: u32) {
        self.slot_field64(slot, S_ID).store(id, Ordering::Relaxed);
        self.slot_field32(slot, S_PID).store(pid, Ordering::Relaxed);
        self.slot_field32(slot, S_UID).store(uid, Ordering::Relaxed);
        self.slot_delivered(slot).store(0, Ordering::Relaxed);
        self.slot_lost(slot).store(0, Ordering::Relaxed);
        // A new instance receives what is written after it opened.
        let head = self.head();
        self.slot_cursor(slot).store(head, Ordering::Relaxed);
        self.slot_next_seq(slot)
            .store(self.next_seq(), Ordering::Relaxed);
        self.bell(slot).store(BELL_IDLE, Ordering::Relaxed);
        self.slot_field32(slot, S_STATE)
            .store(SLOT_ACTIVE, Ordering::Release);
        let hw = self.map.u32_at(H_HIGH_WATER);
        hw.fetch_max(slot as u32 + 1, Ordering::AcqRel);
    }

    /// Frees slot `slot` (caller holds the name lock; its owner is gone or closing).
    pub fn free_slot(&self, slot: usize) {
        self.bell(slot).store(BELL_IDLE, Ordering::Relaxed);
        self.slot_field32(slot, S_STATE)
            .store(SLOT_FREE, Ordering::Release);
    }

    /// Whether the instance in `slot` is alive (its lock is held by someone other than the
    /// caller's own descriptor).
    pub fn slot_alive(&self, probe: &File, slot: usize) -> Result<bool, Error> {
        match sys::ofd_probe(probe.as_fd(), 1 + slot as u64, 1) {
            Ok(LockProbe::Free) => Ok(false),
            Ok(LockProbe::HeldAt(_)) => Ok(true),
            Err(e) => Err(Error::io("cannot probe a mailslot instance", e)),
        }
    }

    /// Whether any instance is alive, in one system call (through a descriptor holding no
    /// instance lock).
    pub fn any_alive(&self) -> Result<bool, Error> {
        match sys::ofd_probe(self.file.as_fd(), 1, MAX_INSTANCES as u64) {
            Ok(LockProbe::Free) => Ok(false),
            Ok(LockProbe::HeldAt(_)) => Ok(true),
            Err(e) => Err(Error::io("cannot probe a mailslot's instances", e)),
        }
    }

    /// `Corrupted` once the file was truncated under our mapping: what we read since may be
    /// zeros and what we wrote went nowhere (see `sys::sigbus`, which keeps the process alive).
    pub fn check_intact(&self) -> Result<(), Error> {
        if !self.map.faulted() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Corrupted,
            "the mailslot file was truncated by another process (its messages are lost)",
        ))
    }

    /// Id, pid and uid of instance `slot` of a file too damaged to map, read with `pread` (a
    /// short file reads short, where a mapping would fault); `None` past the file's end.
    pub fn salvage_slot(file: &File, slot: usize) -> Option<(u64, u32, u32)> {
        use std::os::unix::fs::FileExt;
        let mut raw = [0u8; SLOT_SIZE];
        file.read_exact_at(&mut raw, (HEADER_SIZE + slot * SLOT_SIZE) as u64)
            .ok()?;
        let u32_at = |i: usize| u32::from_ne_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let mut id = [0u8; 8];
        id.copy_from_slice(&raw[S_ID..S_ID + 8]);
        Some((u64::from_ne_bytes(id), u32_at(S_PID), u32_at(S_UID)))
    }

    // ---- the ring ----------------------------------------------------------------------

    fn ring_offset(&self, pos: u64) -> usize {
        (pos & (self.ring_size - 1)) as usize
    }

    fn read_record_header(&self, off: usize) -> [u8; RECORD_HEADER] {
        let mut raw = [0u8; RECORD_HEADER];
        self.map.read(RING_OFFSET + off, &mut raw);
        raw
    }

    /// The position after the record at `pos`, or `None` if what is there cannot be a
    /// record (damage): callers then drop everything up to `head`.
    fn skip_record(&self, pos: u64) -> Option<(u64, bool)> {
        let off = self.ring_offset(pos);
        let left = self.ring_size as usize - off;
        if left < RECORD_HEADER {
            return Some((pos + left as u64, false));
        }
        let raw = self.read_record_header(off);
        match u16::from_le_bytes([raw[4], raw[5]]) {
            KIND_PAD => Some((pos + left as u64, false)),
            KIND_MESSAGE => {
                let len = u32::from_le_bytes(raw[0..4].try_into().ok()?) as usize;
                let size = record_size(len);
                (size <= left).then_some((pos + size as u64, true))
            }
            _ => None,
        }
    }

    /// Reads the record at `cursor` into `buf` (resized to fit, unless `limit` is smaller),
    /// validating the copy against concurrent overwrite.
    pub fn read_at(&self, cursor: u64, buf: &mut Vec<u8>, limit: usize) -> ReadStep {
        let head = self.map.u64_at(H_HEAD).load(Ordering::Acquire);
        if cursor >= head {
            return ReadStep::Empty;
        }
        let tail = self.map.u64_at(H_TAIL).load(Ordering::Acquire);
        if cursor < tail {
            return ReadStep::Resync(tail);
        }
        let off = self.ring_offset(cursor);
        let left = self.ring_size as usize - off;
        if left < RECORD_HEADER {
            return ReadStep::Resync(cursor + left as u64);
        }
        let raw = self.read_record_header(off);
        let kind = u16::from_le_bytes([raw[4], raw[5]]);
        let len = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
        let (next, copied) = match kind {
            KIND_PAD => (cursor + left as u64, false),
            KIND_MESSAGE if record_size(len) <= left => {
                let copied = len <= limit;
                if copied {
                    buf.clear();
                    buf.resize(len, 0);
                    self.map.read(RING_OFFSET + off + RECORD_HEADER, buf);
                }
                (cursor + record_size(len) as u64, copied)
            }
            _ => (u64::MAX, false),
        };
        // SYNC POINT: pairs with the fence in `append` between moving `tail` and overwriting.
        fence(Ordering::Acquire);
        let tail_after = self.map.u64_at(H_TAIL).load(Ordering::Relaxed);
        if tail_after > cursor {
            return ReadStep::Resync(tail_after);
        }
        if next == u64::MAX {
            // Not a record, and not overwritten: damage left by something other than our
            // writers. Skip everything written so far rather than trust it.
            return ReadStep::Resync(head);
        }
        if kind == KIND_PAD {
            return ReadStep::Resync(next);
        }
        ReadStep::Record {
            header: decode_record_header(&raw, len),
            next,
            copied,
        }
    }

    /// Appends one message, waiting at most `lock_wait` for the append lock. `live_cursors` is
    /// consulted only when the ring is full and the mailslot refuses instead of dropping (it
    /// returns the slowest live reader's position).
    pub fn append(
        &self,
        data: &[u8],
        source: &RecordSource,
        lock_wait: Duration,
        live_cursors: &mut dyn FnMut(&Segment) -> Option<u64>,
    ) -> Result<(), Error> {
        let need = record_size(data.len()) as u64;
        if need > self.ring_size / 2 {
            return Err(Error::new(
                ErrorKind::MessageTooLarge,
                "the message is larger than the mailslot's ring",
            ));
        }
        match self.map.lock_robust_mutex(H_MUTEX, lock_wait) {
            Ok(MutexLock::Clean | MutexLock::Recovered) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "another writer has held the append lock for {lock_wait:?} (stopped or \
                         hung?)"
                    ),
                ))
            }
            Err(e) => return Err(Error::io("cannot take the append lock", e)),
        }
        let result = self.append_locked(data, source, need, live_cursors);
        self.map.unlock_robust_mutex(H_MUTEX);
        result
    }

    fn append_locked(
        &self,
        data: &[u8],
        source: &RecordSource,
        need: u64,
        live_cursors: &mut dyn FnMut(&Segment) -> Option<u64>,
    ) -> Result<(), Error> {
        if self.closed() {
            return Err(Error::new(ErrorKind::NotFound, "the mailslot was closed"));
        }
        let head_word = self.map.u64_at(H_HEAD);
        let tail_word = self.map.u64_at(H_TAIL);
        let pos = head_word.load(Ordering::Relaxed);
        let off = self.ring_offset(pos);
        let left = self.ring_size - off as u64;
        let pad = if left < need { left } else { 0 };
        let start = pos + pad;
        let end = start + need;
        let mut tail = tail_word.load(Ordering::Relaxed);
        if end - tail > self.ring_size {
            let options = self.options();
            if options.refuse_when_full {
                let slowest = live_cursors(self).unwrap_or(pos);
                if slowest > tail {
                    tail = slowest;
                    tail_word.store(tail, Ordering::Release);
                }
                if end - tail > self.ring_size {
                    self.map.u64_at(H_REFUSED).fetch_add(1, Ordering::Relaxed);
                    return Err(Error::new(
                        ErrorKind::QueueFull,
                        "the queue is full and this mailslot refuses rather than drops",
                    ));
                }
            } else {
                tail = self.evict(tail, end, pos, options.deliver_one);
                tail_word.store(tail, Ordering::Relaxed);
                // SYNC POINT: readers that copy bytes we are about to overwrite see the new
                // tail after their copy (their fence pairs with this one).
                fence(Ordering::Release);
            }
        }
        if pad >= RECORD_HEADER as u64 {
            let mut raw = [0u8; RECORD_HEADER];
            raw[4..6].copy_from_slice(&KIND_PAD.to_le_bytes());
            self.map.write(RING_OFFSET + off, &raw);
        }
        let seq_word = self.map.u64_at(H_NEXT_SEQ);
        let seq = seq_word.load(Ordering::Relaxed);
        let raw = encode_record_header(data.len(), seq, source);
        let at = RING_OFFSET + self.ring_offset(start);
        self.map.write(at, &raw);
        self.map.write(at + RECORD_HEADER, data);
        // SYNC POINT: publishing `head` makes the record visible; SeqCst pairs with readers
        // that mark themselves waiting and then re-check `head` (no lost wake-up).
        head_word.store(end, Ordering::SeqCst);
        // After `head`: a writer killed in between makes the next record repeat this sequence
        // number (harmless), never skip one (which readers would count as a loss).
        seq_word.store(seq + 1, Ordering::Release);
        Ok(())
    }

    /// Moves `tail` forward until `end` fits; in `one` mode also moves the group cursor past
    /// the dropped records and counts those nobody consumed.
    fn evict(&self, mut tail: u64, end: u64, head: u64, deliver_one: bool) -> u64 {
        let mut dropped_unconsumed = 0u64;
        let group = self.group_pos();
        let group_at = group.load(Ordering::Acquire);
        while end - tail > self.ring_size && tail < head {
            match self.skip_record(tail) {
                Some((next, is_message)) => {
                    if is_message && tail >= group_at {
                        dropped_unconsumed += 1;
                    }
                    tail = next;
                }
                None => {
                    // Damaged ring: drop all of it.
                    tail = head;
                }
            }
        }
        if end - tail > self.ring_size {
            tail = head;
        }
        if deliver_one {
            // Readers may claim concurrently: only count what we really took from them.
            let mut current = group_at;
            loop {
                if current >= tail {
                    break;
                }
                match group.compare_exchange(current, tail, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        if current != group_at {
                            dropped_unconsumed = self.count_messages(current, tail);
                        }
                        self.group_lost()
                            .fetch_add(dropped_unconsumed, Ordering::AcqRel);
                        break;
                    }
                    Err(now) => current = now,
                }
            }
        }
        tail
    }

    /// Number of message records in `[from, to)` (both record boundaries).
    fn count_messages(&self, mut from: u64, to: u64) -> u64 {
        let mut count = 0;
        while from < to {
            match self.skip_record(from) {
                Some((next, is_message)) => {
                    count += u64::from(is_message);
                    from = next;
                }
                None => break,
            }
        }
        count
    }

    /// Messages a reader at `cursor`, expecting sequence number `next_seq`, has already lost to
    /// overwriting but not yet been told of (it is told when it reads): `status` counts them
    /// at once.
    pub fn lost_unread(&self, cursor: u64, next_seq: u64) -> u64 {
        let mut at = self.map.u64_at(H_TAIL).load(Ordering::Acquire);
        if cursor >= at {
            return 0;
        }
        let mut scratch = Vec::new();
        // Bounded: a pad record, or a writer moving `tail` meanwhile, costs a step each.
        for _ in 0..8 {
            match self.read_at(at, &mut scratch, 0) {
                ReadStep::Record { header, .. } => return header.seq.saturating_sub(next_seq),
                ReadStep::Resync(next) => at = next,
                ReadStep::Empty => return self.next_seq().saturating_sub(next_seq),
            }
        }
        0
    }

    /// Counts the messages from `cursor` to `head`, and the size of the first one.
    pub fn backlog_from(&self, mut cursor: u64) -> (usize, Option<usize>) {
        let head = self.map.u64_at(H_HEAD).load(Ordering::Acquire);
        let tail = self.map.u64_at(H_TAIL).load(Ordering::Acquire);
        cursor = cursor.max(tail);
        let mut count = 0;
        let mut first = None;
        let mut scratch = Vec::new();
        while cursor < head {
            match self.read_at(cursor, &mut scratch, 0) {
                ReadStep::Empty => break,
                ReadStep::Resync(next) => cursor = next,
                ReadStep::Record { header, next, .. } => {
                    count += 1;
                    first.get_or_insert(header.len);
                    cursor = next;
                }
            }
        }
        (count, first)
    }

    /// Wakes every waiting instance (all of them in `one` mode too: one of them claims).
    ///
    /// Readers blocked in the library sleep on the name's shared wake epoch: however many
    /// there are, one `FUTEX_WAKE` wakes them all. Readers waiting on their descriptor get a
    /// doorbell datagram each.
    pub fn ring_bells(&self, ring_socket: &mut dyn FnMut(u64)) {
        // SYNC POINT: the SeqCst store of `head` in append, then these SeqCst loads: a reader
        // that set its bell before re-checking `head` is either seen here or sees the record.
        fence(Ordering::SeqCst);
        let mut futex_sleepers = false;
        for slot in 0..self.high_water() {
            let bell = self.bell(slot);
            if bell.load(Ordering::SeqCst) == BELL_IDLE {
                continue;
            }
            match bell.swap(BELL_IDLE, Ordering::SeqCst) {
                BELL_FUTEX => futex_sleepers = true,
                BELL_SOCKET => ring_socket(self.slot_id(slot)),
                _ => {}
            }
        }
        if futex_sleepers {
            // SYNC POINT: a sleeper read the epoch after setting its bell; bumping it makes
            // its FUTEX_WAIT return at once if it has not slept yet.
            let epoch = self.wake_epoch();
            epoch.fetch_add(1, Ordering::SeqCst);
            sys::futex_wake(epoch, i32::MAX);
        }
    }
}

fn encode_record_header(len: usize, seq: u64, source: &RecordSource) -> [u8; RECORD_HEADER] {
    let mut raw = [0u8; RECORD_HEADER];
    raw[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    raw[4..6].copy_from_slice(&KIND_MESSAGE.to_le_bytes());
    raw[8..16].copy_from_slice(&seq.to_le_bytes());
    match source {
        RecordSource::Local { pid, uid } => {
            raw[16..20].copy_from_slice(&pid.to_le_bytes());
            raw[20..24].copy_from_slice(&uid.to_le_bytes());
        }
        RecordSource::Network {
            ip,
            port,
            name,
            suffix,
        } => {
            raw[6] = 1;
            raw[7] = *suffix;
            raw[24..28].copy_from_slice(ip);
            raw[28..30].copy_from_slice(&port.to_le_bytes());
            raw[32..48].copy_from_slice(name);
        }
    }
    raw
}

fn decode_record_header(raw: &[u8; RECORD_HEADER], len: usize) -> RecordHeader {
    let u32_at = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&raw[8..16]);
    let source = if raw[6] == 1 {
        let mut name = [0u8; 16];
        name.copy_from_slice(&raw[32..48]);
        RecordSource::Network {
            ip: [raw[24], raw[25], raw[26], raw[27]],
            port: u16::from_le_bytes([raw[28], raw[29]]),
            name,
            suffix: raw[7],
        }
    } else {
        RecordSource::Local {
            pid: u32_at(16),
            uid: u32_at(20),
        }
    };
    RecordHeader {
        len,
        seq: u64::from_le_bytes(seq),
        source,
    }
}
