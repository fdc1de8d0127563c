//! The typed layout of a mailslot's shared file: its header and its instance slots as
//! `#[repr(C)]` structs of atomics, handed out by [`super::SharedMap::view`] after one bounds and
//! alignment check.
//!
//! Every field is an atomic, so any bit pattern another process leaves (a dead writer, a
//! scribbler) is a valid value: the ring validates values before trusting them, and no view can
//! be torn or alias a non-atomic reference.

use std::sync::atomic::{AtomicU32, AtomicU64};

/// A struct that may be viewed in a shared mapping: `#[repr(C)]`, only atomics (any bit
/// pattern valid, interior mutability, safe under concurrent access from other processes).
///
/// # Safety
/// Implement only for `#[repr(C)]` structs whose fields are all `AtomicU32`/`AtomicU64`.
pub unsafe trait SharedLayout: Sized {}

/// The header at offset 0 of a name's file. Positions are byte counts since creation.
#[repr(C)]
#[derive(Debug)]
pub struct Header {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    /// Options fixed at creation (read once per mapping).
    pub flags: AtomicU32,
    pub max_message: AtomicU32,
    /// [`CLOSED`] once the last instance closed; any other non-zero value is damage.
    pub closed: AtomicU32,
    pub ring_size: AtomicU64,
    /// End of the last published record.
    pub head: AtomicU64,
    /// Oldest position still in the ring.
    pub tail: AtomicU64,
    /// Sequence number of the next record.
    pub next_seq: AtomicU64,
    /// `deliver one`: the position of the next message nobody has taken.
    pub group_pos: AtomicU64,
    /// `deliver one`: messages dropped before anybody took them, not yet told.
    pub group_lost: AtomicU64,
    /// Writes refused with `QueueFull`.
    pub refused: AtomicU64,
    /// One past the highest slot ever used (writers scan no further).
    pub high_water: AtomicU32,
    /// The futex word every blocking reader of the name sleeps on.
    pub wake_epoch: AtomicU32,
    /// The append lock: 0, or the holder's token (and a waiters bit).
    pub append_lock: AtomicU32,
    /// Length of the display name that follows the header.
    pub name_len: AtomicU32,
    /// Damage found in this file and repaired (by writers; readers count their own).
    pub corrupt: AtomicU64,
    /// Writers sleeping until readers make room (names that block when full).
    pub room_waiters: AtomicU32,
    /// The futex word those writers sleep on: bumped by a reader that made room for them.
    pub room_epoch: AtomicU32,
    /// The read position that wakes those writers: a reader whose cursor crosses it wakes
    /// them (once per crossing, not once per message read).
    pub room_wanted: AtomicU64,
}

/// One instance's slot.
#[repr(C)]
#[derive(Debug)]
pub struct Slot {
    pub state: AtomicU32,
    /// (The doorbells are in [`Bells`]: away from the cursor a reader writes on every read.)
    pub spare: AtomicU32,
    /// The instance's id (random, never reused).
    pub id: AtomicU64,
    pub pid: AtomicU32,
    pub uid: AtomicU32,
    /// The instance's read position (a mirror for status and for names that refuse when full).
    pub cursor: AtomicU64,
    pub next_seq: AtomicU64,
    pub delivered: AtomicU64,
    pub lost: AtomicU64,
    /// Damage this instance met (reported to it as `Corrupted`).
    pub corrupt: AtomicU64,
}

/// The instances' doorbells, one word each (what a writer must do after appending: nothing,
/// wake the futex sleepers, ring the socket), packed together so a writer scans a few cache
/// lines that readers write only when they go to sleep or wake.
#[repr(C)]
#[derive(Debug)]
pub struct Bells(pub [AtomicU32; 128]);

/// The value of [`Header::closed`] for a closed name.
pub const CLOSED: u32 = 0x434c_4f53; // "CLOS"

const _: () = assert!(std::mem::size_of::<Header>() == 120);
const _: () = assert!(std::mem::size_of::<Bells>() == 512);
const _: () = assert!(std::mem::size_of::<Slot>() == 64);

// SAFETY: `#[repr(C)]`, only AtomicU32/AtomicU64 fields (checked above by size: no padding
// holes that are not atomics either, as the fields are laid out without gaps).
unsafe impl SharedLayout for Header {}
// SAFETY: as for `Header`.
unsafe impl SharedLayout for Slot {}
// SAFETY: `#[repr(C)]`, an array of AtomicU32 only.
unsafe impl SharedLayout for Bells {}
