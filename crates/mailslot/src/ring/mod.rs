//! The ring of one mailslot name: a shared file with a header, a table of instance slots, and a
//! byte ring of records that writers append to and every instance reads with its own cursor
//! (or, in `deliver one` mode, the name's shared group cursor). This module is the one owner
//! of its rules: the layout (typed in [`crate::sys::layout`]), records ([`record`]), the append
//! lock ([`lock`]), cursors and loss counting, and the doorbells.
//!
//! ```text
//! 0      header (magic, version, options, positions, append lock, counters), display name
//! 1024   MAX_INSTANCES doorbells of 4 bytes
//! 4096   MAX_INSTANCES slots of 64 bytes (state, id, pid, uid, cursor, counters)
//! 12288  ring of `ring_size` bytes (whole pages) holding records
//! ```
//!
//! Positions (`head`, `tail`, cursors) are byte counts since creation that only grow, always
//! multiples of 8; the ring offset is `position % ring_size` (the ring is whole pages, no
//! larger than the capacity and one largest record need). A record never wraps: the
//! space left at the end of the ring is skipped (a pad record, or implicitly when less than a
//! record header is left).
//!
//! Every process of the user can write into the file, so nothing read from it is trusted: the
//! options and the ring size are read once per mapping and checked; positions are checked on
//! every use (a writer repairs them, a reader skips to `head`); records carry a CRC-32C; a
//! loss count is believed only up to the number of records that fit in the bytes skipped.
//! Damage is reported ([`ErrorKind::Corrupted`] to a reader, counted in the header and the
//! slots), never mistaken for a message or for success.
//!
//! Concurrency:
//! - Appends hold the append lock (bounded wait; see [`lock`]). A writer killed mid-append
//!   leaves `head` unpublished, so its half-written bytes are never read.
//! - Readers take no lock. A reader copies a record, then re-reads `tail`: if a writer has since
//!   moved `tail` past the record (overwrite under overflow), the copy is discarded and the loss
//!   is counted from the record sequence numbers (a seqlock).
//! - Liveness is an OFD lock: byte 0 of the file is the name lock (open, close and cleanup),
//!   byte `1 + i` is held by instance `i` for its lifetime. The kernel drops both when a
//!   process dies, so no stale holder can remain.

pub mod lock;
pub mod record;

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::sys::layout::{Bells, Header, Slot, CLOSED};
use crate::sys::{self, LockProbe, SharedMap};

pub use record::{record_size, RecordHeader, RecordSource, RECORD_HEADER};
use record::{Kind, RecordView};

/// The largest message a mailslot accepts when no smaller maximum is set (1 MiB).
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;

pub const MAGIC: u64 = 0x4d41_494c_534c_4f54; // "MAILSLOT"
/// Layout version 2: typed header, append lock with tokens, checksummed records.
pub const VERSION: u32 = 2;
pub const MAX_INSTANCES: usize = 128;

const HEADER_SIZE: usize = 4096;
const SLOT_SIZE: usize = 64;
pub const RING_OFFSET: usize = HEADER_SIZE + MAX_INSTANCES * SLOT_SIZE;
/// Where the display name lies, and its longest length.
const NAME_AT: usize = 128;
const NAME_CAP: usize = 128;
/// Where the doorbells lie (in the header page, away from the slots readers write).
const BELLS_AT: usize = 1024;
/// No position may come near overflow: at 10 GB/s this is 14 years of writing.
const POSITION_LIMIT: u64 = 1 << 62;

// Header flag bits.
const F_SHARED: u32 = 1;
const F_DELIVER_ONE: u32 = 2;
const F_REFUSE_WHEN_FULL: u32 = 4;
const F_BLOCK_WHEN_FULL: u32 = 8;

pub const SLOT_FREE: u32 = 0;
pub const SLOT_ACTIVE: u32 = 1;

/// Doorbell states of a slot: what a writer must do after appending.
pub const BELL_IDLE: u32 = 0;
pub const BELL_FUTEX: u32 = 1;
pub const BELL_SOCKET: u32 = 2;

/// How long a writer's append waits for the append lock before reporting a stuck writer.
pub const APPEND_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the network role's append waits for a name's append lock: a name whose lock a
/// stopped writer holds must delay only its own datagrams (dropped and counted), never the
/// other names'.
pub const NETWORK_APPEND_WAIT: Duration = Duration::from_millis(1);

/// A sleeping reader looks at its slot and the ring at least this often, so that damage to
/// the words that would wake it (its slot, its doorbell) delays it, never strands it.
const REVALIDATE_EVERY: Duration = Duration::from_millis(500);

/// Options fixed when a name is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingOptions {
    pub shared: bool,
    pub deliver_one: bool,
    pub refuse_when_full: bool,
    /// A writer waits for the slowest reader to make room (instead of dropping or refusing).
    pub block_when_full: bool,
    /// 0 = the implementation maximum.
    pub max_message: u32,
    pub ring_size: u64,
}

/// One mapped ring (the file stays open for locks and probes).
#[derive(Debug)]
pub struct Ring {
    pub file: File,
    map: SharedMap,
    /// Read once, when mapped: later scribbles on the header cannot change them under us.
    options: RingOptions,
    append_lock: lock::AppendLock,
}

/// Where an instance reads from. Each also remembers the ring's repair count it last saw: a
/// writer that repaired damaged positions may have dropped what this reader had not read, so
/// the reader reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Its own position and the sequence number it expects next (`deliver all`).
    Own {
        pos: u64,
        next_seq: u64,
        repairs: u64,
    },
    /// The name's shared group cursor (`deliver one`).
    Group { repairs: u64 },
}

impl Cursor {
    /// A reader of its own at `pos`, expecting `next_seq` (a ring nobody repairs: the host
    /// service's).
    pub fn own(pos: u64, next_seq: u64) -> Cursor {
        Cursor::Own {
            pos,
            next_seq,
            repairs: 0,
        }
    }

    /// The group cursor of a ring nobody repairs (for counting its backlog).
    pub const GROUP: Cursor = Cursor::Group { repairs: 0 };
}

/// Where a read copies a message.
pub enum Dest<'a> {
    /// Into this vector, whatever the size (its contents are replaced, never zero-filled
    /// first).
    Vec(&'a mut Vec<u8>),
    /// Into the front of this buffer, if the message fits (else nothing is copied).
    Slice(&'a mut [u8]),
    /// Nowhere: only the record's shape and size are wanted.
    Nowhere,
}

impl Dest<'_> {
    /// The largest message this destination takes.
    pub fn limit(&self) -> usize {
        match self {
            Dest::Vec(_) => usize::MAX,
            Dest::Slice(buf) => buf.len(),
            Dest::Nowhere => 0,
        }
    }
}

/// What a reader found at a position.
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
    /// from this position (the loss shows in the sequence numbers).
    Resync(u64),
    /// What is there was damaged (not written by a writer): restart from this position and
    /// report it.
    Damaged(u64, &'static str),
}

/// What [`Ring::take`] found for a reader.
pub enum Take {
    /// A message (in the caller's buffer), and the messages lost just before it.
    Got(RecordHeader, u64),
    Empty,
    /// The next message is larger than the caller's limit; it stays queued.
    TooSmall(usize),
    /// Damage was found and skipped (the reader's cursor is past it): report it once.
    Damaged(&'static str),
}

/// The ring for `capacity` bytes of records and messages of up to `max_message` bytes: the
/// capacity plus one largest record (so a reader can lag by the whole capacity while a writer
/// appends the largest message), at least two largest records (so the largest always fits,
/// even after the padding at the ring's end), in whole pages.
pub fn ring_size_for(capacity: usize, max_message: usize) -> u64 {
    let record = record_size(max_message) as u64;
    let need = (capacity as u64 + record).max(2 * record).max(2 * PAGE);
    need.next_multiple_of(PAGE)
}

/// The ring is sized in pages of this many bytes.
const PAGE: u64 = 4096;

/// Whether a ring of `ring_size` bytes could have been made by [`ring_size_for`].
pub fn valid_ring_size(ring_size: u64) -> bool {
    ring_size.is_multiple_of(PAGE) && ring_size >= 2 * PAGE
}

pub fn file_size(ring_size: u64) -> u64 {
    RING_OFFSET as u64 + ring_size
}

/// Appends the live slots in `[from, to)` to `live`, in order. The kernel names one
/// conflicting lock per probe, not necessarily the lowest, so the range is split around it.
fn probe_slots(probe: &File, from: u64, to: u64, live: &mut Vec<usize>) -> Result<(), Error> {
    if from >= to {
        return Ok(());
    }
    match sys::ofd_probe(probe.as_fd(), 1 + from, to - from) {
        Ok(LockProbe::Free) => Ok(()),
        Ok(LockProbe::HeldAt(byte)) => {
            let slot = byte.saturating_sub(1).clamp(from, to - 1);
            probe_slots(probe, from, slot, live)?;
            live.push(slot as usize);
            probe_slots(probe, slot + 1, to, live)
        }
        Err(e) => Err(Error::io("cannot probe a mailslot's instances", e)),
    }
}

/// A reader's expected sequence number after damage: the next message starts counting again.
const SEQ_UNKNOWN: u64 = u64::MAX;

fn sane_position(pos: u64) -> bool {
    pos < POSITION_LIMIT && pos.is_multiple_of(8)
}

impl Ring {
    /// Maps an existing file and checks its header (the file may come from a dead process
    /// or another user: nothing in it is trusted until checked).
    ///
    /// Returns `Ok(None)` when the file is not (yet) a published ring.
    pub fn map_existing(file: File) -> Result<Option<Ring>, Error> {
        Ring::map_checked(file, SharedMap::map)
    }

    /// Maps a ring the host service handed over, read-only (its checks as for
    /// [`Ring::map_existing`]). Only reads may be used on the result: `read_at`, `backlog`,
    /// `head`, `closed`, `options` and the other loads.
    pub fn map_read_only(file: File) -> Result<Option<Ring>, Error> {
        Ring::map_checked(file, SharedMap::map_read_only)
    }

    fn map_checked(
        file: File,
        map_fn: fn(&File, usize) -> std::io::Result<SharedMap>,
    ) -> Result<Option<Ring>, Error> {
        let len = file
            .metadata()
            .map_err(|e| Error::io("cannot inspect a mailslot file", e))?
            .len();
        if len < RING_OFFSET as u64 + 4096 {
            return Ok(None);
        }
        // The identity words, read without a mapping (one system call, not two).
        let mut raw = [0u8; 32];
        {
            use std::os::unix::fs::FileExt;
            file.read_exact_at(&mut raw, 0)
                .map_err(|e| Error::io("cannot read a mailslot file", e))?;
        }
        let u32_at = |i: usize| u32::from_ne_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let u64_at = |i: usize| u64::from(u32_at(i)) | u64::from(u32_at(i + 4)) << 32;
        // (Offsets of `Header`'s magic, version, flags, max_message and ring_size.)
        if u64_at(0) != MAGIC {
            return Ok(None);
        }
        if u32_at(8) != VERSION {
            return Err(Error::new(
                ErrorKind::Corrupted,
                "the mailslot file has an unknown layout version (another mailslot release?)",
            ));
        }
        let ring_size = u64_at(24);
        if !valid_ring_size(ring_size) || file_size(ring_size) != len {
            return Err(Error::new(
                ErrorKind::Corrupted,
                "the mailslot file's ring size does not match the file",
            ));
        }
        let flags = u32_at(12);
        let options = RingOptions {
            shared: flags & F_SHARED != 0,
            deliver_one: flags & F_DELIVER_ONE != 0,
            refuse_when_full: flags & F_REFUSE_WHEN_FULL != 0,
            block_when_full: flags & F_BLOCK_WHEN_FULL != 0,
            max_message: u32_at(16),
            ring_size,
        };
        let map = map_fn(&file, file_size(ring_size) as usize)
            .map_err(|e| Error::io("cannot map a mailslot file", e))?;
        Ok(Some(Ring {
            file,
            map,
            options,
            append_lock: lock::AppendLock::default(),
        }))
    }

    /// Sizes and initialises a brand-new file (not yet visible under its name).
    pub fn create(file: File, options: RingOptions, display: &str) -> Result<Ring, Error> {
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
        if options.block_when_full {
            flags |= F_BLOCK_WHEN_FULL;
        }
        let header = map.view::<Header>(0);
        header.version.store(VERSION, Ordering::Relaxed);
        header.flags.store(flags, Ordering::Relaxed);
        header
            .max_message
            .store(options.max_message, Ordering::Relaxed);
        header.ring_size.store(options.ring_size, Ordering::Relaxed);
        let name = display.as_bytes();
        let name = &name[..name.len().min(NAME_CAP)];
        header.name_len.store(name.len() as u32, Ordering::Relaxed);
        map.write(NAME_AT, name);
        // SYNC POINT: the magic is published last; openers that see it see a whole header.
        header.magic.store(MAGIC, Ordering::Release);
        Ok(Ring {
            file,
            map,
            options,
            append_lock: lock::AppendLock::default(),
        })
    }

    fn header(&self) -> &Header {
        self.map.view::<Header>(0)
    }

    /// The doorbell of instance slot `slot`.
    fn bell(&self, slot: usize) -> &AtomicU32 {
        &self.map.view::<Bells>(BELLS_AT).0[slot]
    }

    /// Instance slot `slot` (`slot < MAX_INSTANCES`).
    pub fn slot(&self, slot: usize) -> &Slot {
        self.map.view::<Slot>(HEADER_SIZE + slot * SLOT_SIZE)
    }

    pub fn options(&self) -> RingOptions {
        self.options
    }

    fn ring_size(&self) -> u64 {
        self.options.ring_size
    }

    /// Largest message this ring can hold at all.
    pub fn ring_max_message(&self) -> usize {
        (self.ring_size() as usize / 2).saturating_sub(RECORD_HEADER)
    }

    /// Largest message a writer may append: the name's maximum (0: [`MAX_MESSAGE_SIZE`]),
    /// and never more than the ring holds.
    pub fn max_writable(&self) -> usize {
        match self.options.max_message as usize {
            0 => MAX_MESSAGE_SIZE,
            n => n,
        }
        .min(self.ring_max_message())
    }

    /// `MessageTooLarge` (naming `name`) for a message of `len` bytes above
    /// [`Ring::max_writable`].
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
        let len = (self.header().name_len.load(Ordering::Relaxed) as usize).min(NAME_CAP);
        let mut buf = vec![0u8; len];
        self.map.read(NAME_AT, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    pub fn closed(&self) -> bool {
        self.header().closed.load(Ordering::SeqCst) == CLOSED
    }

    pub fn mark_closed(&self) {
        self.header().closed.store(CLOSED, Ordering::SeqCst);
    }

    pub fn head(&self) -> u64 {
        self.header().head.load(Ordering::SeqCst)
    }

    pub fn next_seq(&self) -> u64 {
        self.header().next_seq.load(Ordering::Acquire)
    }

    pub fn refused(&self) -> u64 {
        self.header().refused.load(Ordering::Relaxed)
    }

    /// Damage writers found in the shared words and repaired.
    pub fn repaired(&self) -> u64 {
        self.header().corrupt.load(Ordering::Relaxed)
    }

    /// The shared group cursor of `deliver one` (the host service moves it for its names).
    pub fn group_pos(&self) -> &AtomicU64 {
        &self.header().group_pos
    }

    pub fn group_lost(&self) -> &AtomicU64 {
        &self.header().group_lost
    }

    /// The shared futex word of blocking readers (see [`Ring::ring_bells`]).
    pub fn wake_epoch(&self) -> &AtomicU32 {
        &self.header().wake_epoch
    }

    fn high_water(&self) -> usize {
        (self.header().high_water.load(Ordering::Acquire) as usize).min(MAX_INSTANCES)
    }

    /// Whether another process truncated the file under our mapping (the pages past its new
    /// end now read as private zeros: see `sys::sigbus`). Nothing read from it means anything
    /// any more.
    pub fn truncated(&self) -> bool {
        self.map.faulted()
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
        id.copy_from_slice(&raw[8..16]);
        // (The offsets of `Slot`'s id, pid and uid.)
        Some((u64::from_ne_bytes(id), u32_at(16), u32_at(20)))
    }

    fn count_damage(&self) {
        self.header().corrupt.fetch_add(1, Ordering::Relaxed);
    }

    // ---- slots -------------------------------------------------------------------------

    /// Fills and activates slot `slot` (caller holds the name lock and the slot's lock).
    /// Returns where the new instance starts reading.
    pub fn activate_slot(&self, slot: usize, id: u64, pid: u32, uid: u32) -> Cursor {
        let s = self.slot(slot);
        s.id.store(id, Ordering::Relaxed);
        s.pid.store(pid, Ordering::Relaxed);
        s.uid.store(uid, Ordering::Relaxed);
        s.delivered.store(0, Ordering::Relaxed);
        s.lost.store(0, Ordering::Relaxed);
        s.corrupt.store(0, Ordering::Relaxed);
        // A new instance receives what is written after it opened. Under the append lock, so
        // `head` and the next sequence number agree (a writer publishes one, then the other).
        let (pos, next_seq) = {
            let _guard =
                self.append_lock
                    .lock(&self.header().append_lock, &self.file, APPEND_LOCK_TIMEOUT);
            (self.head(), self.next_seq())
        };
        s.cursor.store(pos, Ordering::Relaxed);
        s.next_seq.store(next_seq, Ordering::Relaxed);
        self.bell(slot).store(BELL_IDLE, Ordering::Relaxed);
        s.state.store(SLOT_ACTIVE, Ordering::Release);
        self.header()
            .high_water
            .fetch_max(slot as u32 + 1, Ordering::AcqRel);
        let repairs = self.repaired();
        if self.options.deliver_one {
            Cursor::Group { repairs }
        } else {
            Cursor::Own {
                pos,
                next_seq,
                repairs,
            }
        }
    }

    /// Where the instance in `slot` reads, as its slot mirrors it (for `status`).
    pub fn slot_cursor(&self, slot: usize) -> Cursor {
        if self.options.deliver_one {
            return Cursor::GROUP;
        }
        let s = self.slot(slot);
        Cursor::own(
            s.cursor.load(Ordering::Acquire),
            s.next_seq.load(Ordering::Acquire),
        )
    }

    /// Frees slot `slot` (caller holds the name lock; its owner is gone or closing).
    pub fn free_slot(&self, slot: usize) {
        let s = self.slot(slot);
        self.bell(slot).store(BELL_IDLE, Ordering::Relaxed);
        s.state.store(SLOT_FREE, Ordering::Release);
    }

    /// Restores what an instance's own slot must say (after damage): `true` if it had to.
    pub fn reclaim_slot(&self, slot: usize, id: u64) -> bool {
        let s = self.slot(slot);
        let hw_ok = self.high_water() > slot;
        if s.state.load(Ordering::Acquire) == SLOT_ACTIVE
            && s.id.load(Ordering::Relaxed) == id
            && hw_ok
        {
            return false;
        }
        s.id.store(id, Ordering::Relaxed);
        s.pid.store(std::process::id(), Ordering::Relaxed);
        s.uid.store(sys::current_uid(), Ordering::Relaxed);
        s.state.store(SLOT_ACTIVE, Ordering::Release);
        self.header()
            .high_water
            .fetch_max(slot as u32 + 1, Ordering::AcqRel);
        s.corrupt.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The slots whose instances are alive, as the kernel's locks say (never the slots' state
    /// words, which anyone could have zeroed). Probed through `probe`, whose own locks do not
    /// count.
    pub fn live_slots(&self, probe: &File) -> Result<Vec<usize>, Error> {
        let mut live = Vec::new();
        probe_slots(probe, 0, MAX_INSTANCES as u64, &mut live)?;
        Ok(live)
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

    // ---- reading -----------------------------------------------------------------------

    fn ring_offset(&self, pos: u64) -> usize {
        (pos % self.ring_size()) as usize
    }

    fn read_raw_header(&self, off: usize) -> [u8; RECORD_HEADER] {
        let mut raw = [0u8; RECORD_HEADER];
        self.map.read(RING_OFFSET + off, &mut raw);
        raw
    }

    /// Feeds `len` bytes of the ring at `off` to `sink` through a small buffer (for checksums
    /// of records nobody copies out).
    fn feed_ring(&self, off: usize, len: usize, sink: &mut dyn FnMut(&[u8])) {
        let mut chunk = [0u8; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            self.map.read(RING_OFFSET + off + done, &mut chunk[..n]);
            sink(&chunk[..n]);
            done += n;
        }
    }

    /// Reads the record at `pos` into `dest` (if it takes it), validating the copy against
    /// concurrent overwrite and damage. A record that is not copied has its checksum verified
    /// only with `verify` (counting a backlog does not).
    pub fn read_at(&self, pos: u64, dest: &mut Dest<'_>, verify: bool) -> ReadStep {
        let limit = dest.limit();
        let header = self.header();
        let head = header.head.load(Ordering::Acquire);
        if pos >= head {
            if pos > head {
                return ReadStep::Damaged(head, "a read position past the end of the ring");
            }
            return ReadStep::Empty;
        }
        let tail = header.tail.load(Ordering::Acquire);
        if tail > head {
            return ReadStep::Damaged(head, "the ring's positions");
        }
        if pos < tail {
            return ReadStep::Resync(tail);
        }
        if !pos.is_multiple_of(8) {
            return ReadStep::Damaged(head, "a read position");
        }
        let off = self.ring_offset(pos);
        let left = self.ring_size() as usize - off;
        if left < RECORD_HEADER {
            return ReadStep::Resync(pos + left as u64);
        }
        let view = RecordView::parse(self.read_raw_header(off), left);
        let mut copied = false;
        let mut intact = false;
        if let Some(view) = &view {
            intact = match view.kind() {
                Kind::Pad => view.verify(|_| {}),
                Kind::Message(len) if len <= limit => {
                    copied = true;
                    let at = RING_OFFSET + off + RECORD_HEADER;
                    let copy: &[u8] = match dest {
                        Dest::Vec(buf) => {
                            self.map.read_to_vec(at, len, buf);
                            buf
                        }
                        Dest::Slice(buf) => {
                            self.map.read(at, &mut buf[..len]);
                            &buf[..len]
                        }
                        Dest::Nowhere => &[],
                    };
                    view.verify(|feed| feed(copy))
                }
                Kind::Message(len) if verify => {
                    view.verify(|feed| self.feed_ring(off + RECORD_HEADER, len, feed))
                }
                Kind::Message(_) => true,
            };
        }
        // SYNC POINT: pairs with the fence in `append` between moving `tail` and overwriting.
        fence(Ordering::Acquire);
        let tail_after = header.tail.load(Ordering::Relaxed);
        if tail_after > pos {
            return ReadStep::Resync(tail_after);
        }
        match view {
            // Not a record, and not overwritten: damage. Skip everything written so far rather
            // than trust it.
            None => ReadStep::Damaged(head, "a record header"),
            Some(_) if !intact => ReadStep::Damaged(head, "a record (its checksum)"),
            Some(view) => match view.kind() {
                Kind::Pad => ReadStep::Resync(pos + left as u64),
                Kind::Message(len) => ReadStep::Record {
                    header: view.header(),
                    next: pos + record_size(len) as u64,
                    copied,
                },
            },
        }
    }

    /// Takes the next message for `cursor` into `dest`, mirroring the
    /// instance's progress into `slot` (user scope) for `status`.
    pub fn take(&self, cursor: &mut Cursor, slot: Option<usize>, dest: &mut Dest<'_>) -> Take {
        let repairs = self.repaired();
        let seen = match cursor {
            Cursor::Own { repairs, .. } | Cursor::Group { repairs } => repairs,
        };
        let mut take = if *seen != repairs {
            *seen = repairs;
            if let Cursor::Own { next_seq, .. } = cursor {
                *next_seq = SEQ_UNKNOWN;
            }
            Take::Damaged("positions a writer found damaged and repaired")
        } else {
            match cursor {
                Cursor::Own { pos, next_seq, .. } => self.take_own(pos, next_seq, dest),
                Cursor::Group { .. } => self.take_group(dest),
            }
        };
        if self.truncated() {
            take = Take::Damaged("the file was truncated");
        }
        if let Some(slot) = slot {
            let s = self.slot(slot);
            if let Cursor::Own { pos, next_seq, .. } = *cursor {
                s.cursor.store(pos, Ordering::Release);
                s.next_seq.store(next_seq, Ordering::Relaxed);
            }
            match &take {
                Take::Got(_, lost) => {
                    s.delivered.fetch_add(1, Ordering::Relaxed);
                    s.lost.fetch_add(*lost, Ordering::Relaxed);
                }
                Take::Damaged(_) => {
                    s.corrupt.fetch_add(1, Ordering::Relaxed);
                }
                Take::Empty | Take::TooSmall(_) => {}
            }
        }
        if matches!(take, Take::Got(..) | Take::Damaged(_)) {
            // After the cursor's mirror: that is what a waiting writer looks at.
            self.made_room();
        }
        take
    }

    fn take_own(&self, pos: &mut u64, next_seq: &mut u64, dest: &mut Dest<'_>) -> Take {
        let start = *pos;
        // Bounded: each step moves forward; a ring rewritten faster than we can follow is
        // looked at again on the next call.
        for _ in 0..1024 {
            match self.read_at(*pos, dest, true) {
                ReadStep::Empty => return Take::Empty,
                ReadStep::Resync(next) => *pos = next,
                ReadStep::Damaged(next, what) => {
                    // What was skipped is told as damage, not counted: positions and counters
                    // past damage are no measure of it.
                    *pos = next;
                    *next_seq = SEQ_UNKNOWN;
                    return Take::Damaged(what);
                }
                ReadStep::Record {
                    header,
                    next,
                    copied,
                } => {
                    if !copied {
                        return Take::TooSmall(header.len);
                    }
                    let lost = if *next_seq == SEQ_UNKNOWN {
                        0
                    } else {
                        // At most one record per header's worth of the bytes skipped since the
                        // last message, and never backwards by more than the one repeat a
                        // writer killed between publishing and counting leaves: otherwise the
                        // counter was damaged (and would invent or hide a loss).
                        let possible = (*pos - start) / RECORD_HEADER as u64;
                        let lost = header.seq.saturating_sub(*next_seq);
                        if lost > possible || header.seq.saturating_add(1) < *next_seq {
                            *next_seq = SEQ_UNKNOWN;
                            return Take::Damaged("the sequence counter");
                        }
                        lost
                    };
                    *pos = next;
                    *next_seq = header.seq.saturating_add(1);
                    return Take::Got(header, lost);
                }
            }
        }
        Take::Empty
    }

    fn take_group(&self, dest: &mut Dest<'_>) -> Take {
        let group = self.group_pos();
        for _ in 0..1024 {
            let at = group.load(Ordering::Acquire);
            let step = self.read_at(at, dest, true);
            let moved = |to: u64| {
                group
                    .compare_exchange(at, to, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            };
            match step {
                ReadStep::Empty => return Take::Empty,
                ReadStep::Resync(next) => {
                    moved(next);
                }
                ReadStep::Damaged(next, what) => {
                    if moved(next) {
                        return Take::Damaged(what);
                    }
                }
                ReadStep::Record {
                    header,
                    next,
                    copied,
                } => {
                    if !copied {
                        return Take::TooSmall(header.len);
                    }
                    if !moved(next) {
                        continue; // another instance took it
                    }
                    // What evictions dropped before anybody took it; at most what fits in the
                    // ring (more is a damaged counter, and is not believed).
                    let mut lost = self.group_lost().swap(0, Ordering::AcqRel);
                    if lost > self.ring_size() / RECORD_HEADER as u64 {
                        self.count_damage();
                        lost = 0;
                    }
                    return Take::Got(header, lost);
                }
            }
        }
        Take::Empty
    }

    /// The position a reader with `cursor` waits to see `head` pass.
    pub fn waiting_at(&self, cursor: &Cursor) -> u64 {
        match cursor {
            Cursor::Own { pos, .. } => *pos,
            Cursor::Group { .. } => self.group_pos().load(Ordering::SeqCst),
        }
    }

    /// Messages a reader with `cursor` has already lost to overwriting but not yet been told
    /// of (it is told when it reads): `status` counts them at once.
    pub fn lost_unread(&self, cursor: &Cursor) -> u64 {
        let Cursor::Own { pos, next_seq, .. } = *cursor else {
            return 0;
        };
        let mut at = self.header().tail.load(Ordering::Acquire);
        if pos >= at {
            return 0;
        }
        // Bounded: a pad record, or a writer moving `tail` meanwhile, costs a step each.
        for _ in 0..8 {
            match self.read_at(at, &mut Dest::Nowhere, false) {
                ReadStep::Record { header, .. } => {
                    let possible = (at - pos) / RECORD_HEADER as u64;
                    return header.seq.saturating_sub(next_seq).min(possible);
                }
                ReadStep::Resync(next) => at = next,
                ReadStep::Empty | ReadStep::Damaged(..) => break,
            }
        }
        0
    }

    /// Counts the messages a reader with `cursor` has waiting, and the size of the first.
    pub fn backlog(&self, cursor: &Cursor) -> (usize, Option<usize>) {
        let header = self.header();
        let head = header.head.load(Ordering::Acquire);
        let tail = header.tail.load(Ordering::Acquire);
        let mut at = self.waiting_at(cursor).max(tail);
        let mut count = 0;
        let mut first = None;
        // Bounded by the ring: a record takes at least a header.
        let mut steps = self.ring_size() / RECORD_HEADER as u64 + 2;
        while at < head && steps > 0 {
            steps -= 1;
            match self.read_at(at, &mut Dest::Nowhere, false) {
                ReadStep::Empty | ReadStep::Damaged(..) => break,
                ReadStep::Resync(next) => at = next,
                ReadStep::Record { header, next, .. } => {
                    count += 1;
                    first.get_or_insert(header.len);
                    at = next;
                }
            }
        }
        (count, first)
    }

    // ---- appending ---------------------------------------------------------------------

    /// Appends one message, waiting at most `lock_wait` for the append lock, and, on a name
    /// that blocks when full, until `room_until` for readers to make room (`None`: as long as
    /// it takes; the network role passes now, so it never waits).
    pub fn append(
        &self,
        data: &[u8],
        source: &RecordSource,
        lock_wait: Duration,
        room_until: Option<Instant>,
    ) -> Result<(), Error> {
        let need = record_size(data.len()) as u64;
        if need > self.ring_size() / 2 {
            return Err(Error::new(
                ErrorKind::MessageTooLarge,
                "the message is larger than the mailslot's ring",
            ));
        }
        let header = self.header();
        let mut announced = false;
        let result = loop {
            let appended = self.append_once(data, source, need, lock_wait);
            let full = matches!(&appended, Err(e) if e.kind() == ErrorKind::QueueFull);
            if !full || !self.options.block_when_full {
                break appended;
            }
            let remaining = match room_until {
                None => None,
                Some(until) => match until.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => break Err(self.stayed_full()),
                },
            };
            // SYNC POINT: announce, read the epoch, then look again (under the lock); pairs with
            // `made_room` (a reader that advanced after our look sees us and bumps the epoch).
            if !announced {
                announced = true;
                header.room_waiters.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let seen = header.room_epoch.load(Ordering::SeqCst);
            match self.append_once(data, source, need, lock_wait) {
                Err(e) if e.kind() == ErrorKind::QueueFull => {}
                other => break other,
            }
            // Bounded: a reader that dies frees its room only through the kernel's word, which
            // the next look asks.
            let nap = remaining.map_or(REVALIDATE_EVERY, |r| r.min(REVALIDATE_EVERY));
            sys::futex_wait(&header.room_epoch, seen, Some(nap));
        };
        if announced {
            header.room_waiters.fetch_sub(1, Ordering::SeqCst);
        }
        if self.truncated() {
            // Whatever the append made of a truncated file's zeros means nothing.
            return Err(Error::new(
                ErrorKind::Corrupted,
                "the mailslot file was truncated by another process (its messages are lost)",
            ));
        }
        result
    }

    /// `TimedOut` for a writer of a name that blocks when full, after its wait.
    fn stayed_full(&self) -> Error {
        self.header().refused.fetch_add(1, Ordering::Relaxed);
        Error::new(
            ErrorKind::TimedOut,
            "the queue stayed full for the whole write timeout (a reader is not reading); \
             nothing was queued",
        )
    }

    /// One try under the append lock: `QueueFull` when the name refuses or blocks and there is
    /// no room.
    fn append_once(
        &self,
        data: &[u8],
        source: &RecordSource,
        need: u64,
        lock_wait: Duration,
    ) -> Result<(), Error> {
        let _guard = match self
            .append_lock
            .lock(&self.header().append_lock, &self.file, lock_wait)
        {
            Ok(guard) => guard,
            Err(lock::LockError::TimedOut) => {
                return Err(Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "another writer has held the append lock for {lock_wait:?} (stopped or \
                         hung?)"
                    ),
                ))
            }
            Err(lock::LockError::Io(e)) => return Err(Error::io("cannot take the append lock", e)),
        };
        self.append_locked(data, source, need)
    }

    /// Called by a reader that moved its cursor (or the group cursor): wakes writers waiting
    /// for room. Costs one load when none waits.
    fn made_room(&self) {
        if !self.options.block_when_full {
            return;
        }
        let header = self.header();
        // SYNC POINT: the cursor's store, then this load (pairs with `append`'s announce).
        fence(Ordering::SeqCst);
        if header.room_waiters.load(Ordering::SeqCst) != 0 {
            header.room_epoch.fetch_add(1, Ordering::SeqCst);
            sys::futex_wake(&header.room_epoch, i32::MAX);
        }
    }

    /// `head` and `tail` as the lock holder may use them: checked, and repaired (the ring
    /// emptied at the furthest sane position; readers count the loss) when damaged.
    fn checked_positions(&self) -> (u64, u64) {
        let header = self.header();
        let head = header.head.load(Ordering::Relaxed);
        let tail = header.tail.load(Ordering::Relaxed);
        if sane_position(head)
            && sane_position(tail)
            && tail <= head
            && head - tail <= self.ring_size()
        {
            return (head, tail);
        }
        let at = [head, tail]
            .into_iter()
            .filter(|p| *p < POSITION_LIMIT - self.ring_size())
            .max()
            .map_or(0, |p| p.next_multiple_of(8));
        header.tail.store(at, Ordering::Release);
        header.head.store(at, Ordering::SeqCst);
        if self.options.deliver_one {
            self.group_pos().store(at, Ordering::Release);
        }
        self.count_damage();
        (at, at)
    }

    fn append_locked(&self, data: &[u8], source: &RecordSource, need: u64) -> Result<(), Error> {
        if self.closed() {
            return Err(Error::new(ErrorKind::NotFound, "the mailslot was closed"));
        }
        let header = self.header();
        let (pos, mut tail) = self.checked_positions();
        let off = self.ring_offset(pos);
        let left = self.ring_size() - off as u64;
        let pad = if left < need { left } else { 0 };
        let start = pos + pad;
        let end = start + need;
        if end - tail > self.ring_size() {
            if self.options.refuse_when_full || self.options.block_when_full {
                let slowest = self.slowest_live_reader(tail, pos).unwrap_or(pos);
                if slowest > tail {
                    tail = slowest;
                    header.tail.store(tail, Ordering::Release);
                }
                if end - tail > self.ring_size() {
                    if self.options.refuse_when_full {
                        header.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    return Err(Error::new(
                        ErrorKind::QueueFull,
                        "the queue is full and this mailslot refuses rather than drops",
                    ));
                }
            } else {
                tail = self.evict(tail, end, pos);
                header.tail.store(tail, Ordering::Relaxed);
                // SYNC POINT: readers that copy bytes we are about to overwrite see the new
                // tail after their copy (their fence pairs with this one).
                fence(Ordering::Release);
            }
        }
        if pad >= RECORD_HEADER as u64 {
            self.map.write(RING_OFFSET + off, &record::encode_pad());
        }
        let seq = header.next_seq.load(Ordering::Relaxed);
        let raw = record::encode_message(data, seq, source);
        let at = RING_OFFSET + self.ring_offset(start);
        self.map.write(at, &raw);
        self.map.write(at + RECORD_HEADER, data);
        // SYNC POINT: publishing `head` makes the record visible; SeqCst pairs with readers
        // that mark themselves waiting and then re-check `head` (no lost wake-up).
        header.head.store(end, Ordering::SeqCst);
        // After `head`: a writer killed in between makes the next record repeat this sequence
        // number (harmless), never skip one (which readers would count as a loss).
        header
            .next_seq
            .store(seq.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// The position of the slowest live reader, within `[tail, head]` (for names that refuse
    /// when full; a damaged cursor outside the ring counts as that end of it).
    fn slowest_live_reader(&self, tail: u64, head: u64) -> Option<u64> {
        let clamp = |p: u64| p.clamp(tail, head);
        if self.options.deliver_one {
            return Some(clamp(self.group_pos().load(Ordering::Acquire)));
        }
        let live = self.live_slots(&self.file).ok()?;
        live.into_iter()
            .map(|slot| clamp(self.slot(slot).cursor.load(Ordering::Acquire)))
            .min()
    }

    /// The position after the record at `pos` and whether it is a message, or `None` if what
    /// is there cannot be a record (damage).
    fn skip_record(&self, pos: u64) -> Option<(u64, bool)> {
        let off = self.ring_offset(pos);
        let left = self.ring_size() as usize - off;
        if left < RECORD_HEADER {
            return Some((pos + left as u64, false));
        }
        match RecordView::parse(self.read_raw_header(off), left)?.kind() {
            Kind::Pad => Some((pos + left as u64, false)),
            Kind::Message(len) => Some((pos + record_size(len) as u64, true)),
        }
    }

    /// Moves `tail` forward until `end` fits; in `one` mode also moves the group cursor past
    /// the dropped records and counts those nobody consumed.
    fn evict(&self, mut tail: u64, end: u64, head: u64) -> u64 {
        let mut dropped_unconsumed = 0u64;
        let group = self.group_pos();
        let group_at = group.load(Ordering::Acquire);
        while end - tail > self.ring_size() && tail < head {
            match self.skip_record(tail) {
                Some((next, is_message)) => {
                    if is_message && tail >= group_at {
                        dropped_unconsumed += 1;
                    }
                    tail = next;
                }
                None => {
                    // Damaged ring: drop all of it.
                    self.count_damage();
                    tail = head;
                }
            }
        }
        if end - tail > self.ring_size() {
            tail = head;
        }
        if self.options.deliver_one {
            // Readers may claim concurrently: only count what we really took from them.
            let mut current = group_at;
            loop {
                if current >= tail {
                    if current > head {
                        // Damage: the group cursor is past the end.
                        let _ = group.compare_exchange(
                            current,
                            head,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                        self.count_damage();
                    }
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

    // ---- doorbells ---------------------------------------------------------------------

    /// Wakes every waiting instance (all of them in `one` mode too: one of them claims).
    ///
    /// Readers blocked in the library sleep on the name's shared wake epoch: however many
    /// there are, one `FUTEX_WAKE` wakes them all. Readers waiting on their descriptor get a
    /// doorbell datagram each (`ring_socket` with the instance's id).
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
                BELL_SOCKET => ring_socket(self.slot(slot).id.load(Ordering::Relaxed)),
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

    /// Sleeps the reader of `slot` (instance `id`) until a writer may have appended past
    /// `cursor`, at most `remaining`, and at most [`REVALIDATE_EVERY`]: then the caller looks
    /// again (its own slot is put right first, should somebody have scribbled on it).
    pub fn sleep(&self, slot: usize, id: u64, cursor: &Cursor, remaining: Option<Duration>) {
        self.reclaim_slot(slot, id);
        let bell = self.bell(slot);
        // SYNC POINT: mark ourselves waiting, read the wake epoch, then re-check; pairs with
        // `ring_bells` (a writer that saw our bell bumps the epoch before waking).
        bell.store(BELL_FUTEX, Ordering::SeqCst);
        let epoch = self.wake_epoch();
        let seen = epoch.load(Ordering::SeqCst);
        if self.waiting_at(cursor) >= self.head() {
            let nap = remaining.map_or(REVALIDATE_EVERY, |r| r.min(REVALIDATE_EVERY));
            sys::futex_wait(epoch, seen, Some(nap));
        }
        bell.store(BELL_IDLE, Ordering::SeqCst);
        // Again on waking: the reader is about to read, and `status` must show it meanwhile.
        self.reclaim_slot(slot, id);
    }

    /// Arms the socket doorbell of `slot`: the next append rings it. `true` if it was not
    /// armed (the caller then looks whether messages already wait).
    pub fn arm_socket_bell(&self, slot: usize) -> bool {
        self.bell(slot).swap(BELL_SOCKET, Ordering::SeqCst) != BELL_SOCKET
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_takes_its_capacity_one_largest_message_and_at_most_64_kib_more() {
        for capacity in [0, 1, 4096, 65_536, 1 << 20, 3 << 20, 1 << 30] {
            for max in [0, 1, 64, 256, 65_536, MAX_MESSAGE_SIZE] {
                let ring = ring_size_for(capacity, max);
                assert!(valid_ring_size(ring));
                let file = file_size(ring);
                // (A capacity below one largest message counts as one.)
                let capacity = capacity.max(max);
                assert!(
                    file <= (capacity + max) as u64 + 64 * 1024,
                    "capacity {capacity}, max {max}: a file of {file} bytes"
                );
                // A reader may lag by the whole capacity while the largest message goes in,
                // even after the padding at the ring's end.
                assert!(ring >= capacity as u64 + record_size(max) as u64);
                assert!(ring >= 2 * record_size(max) as u64);
            }
        }
    }
}
