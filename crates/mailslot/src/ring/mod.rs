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

mod append;
mod bell;
pub mod lock;
mod read;
pub mod record;

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::sys::layout::{Bells, Header, Slot, CLOSED};
use crate::sys::{self, LockProbe, SharedMap};

pub use read::{Cursor, Dest, ReadStep, Take};
pub use record::{padded, record_size, RecordHeader, RecordSource, RECORD_HEADER};

/// The largest message a mailslot accepts when no smaller maximum is set (1 MiB).
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;

pub const MAGIC: u64 = 0x4d41_494c_534c_4f54; // "MAILSLOT"
/// Layout version 3: typed header, append lock with tokens, checksummed records whose 64-byte
/// header holds a datagram's destination name (version 2 had 48-byte headers).
pub const VERSION: u32 = 3;
pub const MAX_INSTANCES: usize = 128;

const HEADER_SIZE: usize = 4096;
const SLOT_SIZE: usize = 64;
pub const RING_OFFSET: usize = HEADER_SIZE + MAX_INSTANCES * SLOT_SIZE;
/// Where the display name lies, and its longest length.
const NAME_AT: usize = 128;
const NAME_CAP: usize = 128;
/// Where the doorbells lie (in the header page, away from the slots readers write).
const BELLS_AT: usize = 1024;
// The header, the display name and the doorbells share the first page without overlapping.
const _: () = assert!(std::mem::size_of::<Header>() <= NAME_AT);
const _: () = assert!(NAME_AT + NAME_CAP <= BELLS_AT);
const _: () = assert!(BELLS_AT + std::mem::size_of::<Bells>() <= HEADER_SIZE);
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

impl RingOptions {
    /// The flag bits of the options, as the header keeps them.
    fn flags(&self) -> u32 {
        [
            (self.shared, F_SHARED),
            (self.deliver_one, F_DELIVER_ONE),
            (self.refuse_when_full, F_REFUSE_WHEN_FULL),
            (self.block_when_full, F_BLOCK_WHEN_FULL),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(0, |flags, (_, bit)| flags | bit)
    }

    /// The options a header's flag bits and words say.
    fn from_header(flags: u32, max_message: u32, ring_size: u64) -> RingOptions {
        RingOptions {
            shared: flags & F_SHARED != 0,
            deliver_one: flags & F_DELIVER_ONE != 0,
            refuse_when_full: flags & F_REFUSE_WHEN_FULL != 0,
            block_when_full: flags & F_BLOCK_WHEN_FULL != 0,
            max_message,
            ring_size,
        }
    }
}

/// One mapped ring (the file stays open for locks and probes).
#[derive(Debug)]
pub struct Ring {
    pub file: File,
    map: SharedMap,
    /// Read once, when mapped: later scribbles on the header cannot change them under us.
    options: RingOptions,
    append_lock: lock::AppendLock,
    /// Position to ring offset, without a division per record.
    offsets: Modulo,
}

/// `x % d` by a multiplication: the ring is not a power of two, and a 64-bit division costs
/// tens of cycles on every read and append.
#[derive(Debug, Clone, Copy)]
struct Modulo {
    d: u64,
    /// ceil(2^64 / d): the quotient it gives is exact or one too large.
    m: u64,
}

impl Modulo {
    fn new(d: u64) -> Modulo {
        Modulo {
            d,
            m: (u64::MAX / d).wrapping_add(1),
        }
    }

    fn of(self, x: u64) -> u64 {
        let q = ((u128::from(x) * u128::from(self.m)) >> 64) as u64;
        let r = x.wrapping_sub(q.wrapping_mul(self.d));
        // One too large a quotient leaves `r` just below 2^64.
        if r >= self.d {
            r.wrapping_add(self.d)
        } else {
            r
        }
    }
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
        let options = RingOptions::from_header(u32_at(12), u32_at(16), ring_size);
        let map = map_fn(&file, file_size(ring_size) as usize)
            .map_err(|e| Error::io("cannot map a mailslot file", e))?;
        Ok(Some(Ring::assemble(file, map, options)))
    }

    fn assemble(file: File, map: SharedMap, options: RingOptions) -> Ring {
        Ring {
            file,
            map,
            options,
            append_lock: lock::AppendLock::default(),
            offsets: Modulo::new(options.ring_size),
        }
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
        let flags = options.flags();
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
        Ok(Ring::assemble(file, map, options))
    }

    fn header(&self) -> &Header {
        self.map.view::<Header>(0)
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

    /// The capacity in effect, in bytes of records: how far a reader may lag before the
    /// overflow policy applies. [`ring_size_for`] rounds a requested capacity up (one largest
    /// message at least, whole pages); this is what it became.
    pub fn capacity(&self) -> u64 {
        let max = match self.options.max_message as usize {
            0 => MAX_MESSAGE_SIZE,
            n => n,
        };
        self.ring_size().saturating_sub(record_size(max) as u64)
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
        self.disarm_bell(slot);
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
        self.disarm_bell(slot);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_by_multiplication_are_offsets_by_division() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for d in [
            8192u64,
            12288,
            2 << 20 | 4096,
            (1 << 30) + 4096,
            1 << 31,
            4096 * 999_983,
        ] {
            let modulo = Modulo::new(d);
            for probe in [
                0,
                1,
                d - 1,
                d,
                d + 1,
                u64::MAX,
                u64::MAX - 1,
                1 << 62,
                (1 << 62) - 8,
            ] {
                assert_eq!(modulo.of(probe), probe % d, "{probe} % {d}");
            }
            for _ in 0..100_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                assert_eq!(modulo.of(x), x % d, "{x} % {d}");
                let small = x >> 20;
                assert_eq!(modulo.of(small), small % d, "{small} % {d}");
            }
        }
    }

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
