//! Doorbells: how readers wait and writers wake exactly the sleepers.

use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::Duration;

use super::*;

impl Ring {
    /// The doorbell of instance slot `slot`.
    pub(super) fn bell(&self, slot: usize) -> &AtomicU32 {
        &self.map.view::<Bells>(BELLS_AT).bells[slot]
    }

    /// Arms the doorbell of `slot` with `how`, and marks it armed; returns what it was.
    fn arm_bell(&self, slot: usize, how: u32) -> u32 {
        let was = self.bell(slot).swap(how, Ordering::SeqCst);
        let (word, bit) = self.armed_bit(slot);
        word.fetch_or(bit, Ordering::SeqCst);
        was
    }

    /// Disarms the doorbell of `slot` (its instance stops waiting, or the slot is freed).
    pub(super) fn disarm_bell(&self, slot: usize) {
        self.bell(slot).store(BELL_IDLE, Ordering::SeqCst);
        let (word, bit) = self.armed_bit(slot);
        if word.load(Ordering::Relaxed) & bit != 0 {
            word.fetch_and(!bit, Ordering::SeqCst);
        }
    }

    fn armed_bit(&self, slot: usize) -> (&AtomicU64, u64) {
        let armed = &self.map.view::<Bells>(BELLS_AT).armed;
        (&armed[(slot / 64) % 2], 1 << (slot % 64))
    }

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
        let armed = &self.map.view::<Bells>(BELLS_AT).armed;
        for (w, word) in armed.iter().enumerate() {
            let mut bits = word.load(Ordering::SeqCst);
            while bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
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
        // SYNC POINT: mark ourselves waiting (doorbell and armed bit), read the wake epoch,
        // then re-check; pairs with `ring_bells` (a writer that saw our bell bumps the epoch
        // before waking).
        self.arm_bell(slot, BELL_FUTEX);
        let epoch = self.wake_epoch();
        let seen = epoch.load(Ordering::SeqCst);
        if self.waiting_at(cursor) >= self.head() {
            let nap = remaining.map_or(REVALIDATE_EVERY, |r| r.min(REVALIDATE_EVERY));
            sys::futex_wait(epoch, seen, Some(nap));
        }
        self.disarm_bell(slot);
        // Again on waking: the reader is about to read, and `status` must show it meanwhile.
        self.reclaim_slot(slot, id);
    }

    /// Arms the socket doorbell of `slot`: the next append rings it. `true` if it was not
    /// armed (the caller then looks whether messages already wait).
    pub fn arm_socket_bell(&self, slot: usize) -> bool {
        self.arm_bell(slot, BELL_SOCKET) != BELL_SOCKET
    }
}
