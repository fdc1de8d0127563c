//! Appending: the lock, checked and repaired positions, eviction (or refusal, or waiting for
//! room), the record itself.

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use super::record::{self, Kind, RecordView};
use super::*;
use crate::Timeout;

fn sane_position(pos: u64) -> bool {
    pos < POSITION_LIMIT && pos.is_multiple_of(8)
}

impl Ring {
    /// Appends one message, waiting at most `lock_wait` for the append lock, and, on a name
    /// that blocks when full, as `room_wait` says for readers to make room (the network role
    /// passes `Immediate`, so it never waits). The clock is read only if it has to wait.
    pub fn append(
        &self,
        data: &[u8],
        source: &RecordSource,
        lock_wait: Duration,
        room_wait: Timeout,
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
        let mut room_until: Option<Option<Instant>> = None;
        let result = loop {
            // SYNC POINT: the epoch, then the look (under the lock), then the sleep; pairs with
            // `made_room` (a reader that makes room after our look sees us announced and bumps
            // the epoch, so the sleep returns at once).
            let seen = header.room_epoch.load(Ordering::SeqCst);
            let appended = self.append_once(data, source, need, lock_wait);
            let full = matches!(&appended, Err(e) if e.kind() == ErrorKind::QueueFull);
            if !full || !self.options.block_when_full {
                break appended;
            }
            let remaining = match *room_until.get_or_insert_with(|| room_wait.deadline()) {
                None => None,
                Some(until) => match until.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => break Err(self.stayed_full()),
                },
            };
            // Wake me when the slowest reader has made room for this record (which may need a
            // pad to the ring's end first: less than `need` more) and a quarter of the ring
            // more: one wake-up lets a batch through, instead of a futex wake by every reader
            // for every message read while I sleep. Never past `head`, where readers that
            // catch up always arrive. Stored before the look below.
            let head = header.head.load(Ordering::Relaxed);
            let wanted = (head + 2 * need + self.ring_size() / 4).saturating_sub(self.ring_size());
            header.room_wanted.store(wanted.min(head), Ordering::SeqCst);
            if !announced {
                // Look once more now that readers will tell us.
                announced = true;
                header.room_waiters.fetch_add(1, Ordering::SeqCst);
                continue;
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

    /// Called by a reader that moved its cursor (or the group cursor) from `before` to
    /// `after`: wakes writers waiting for room if it crossed the position they wait for.
    /// Costs one load when none waits.
    pub(super) fn made_room(&self, before: u64, after: u64) {
        if !self.options.block_when_full {
            return;
        }
        let header = self.header();
        // SYNC POINT: the cursor's store, then these loads (pairs with `append`'s store of
        // `room_wanted`, announce and look: a writer that did not see our cursor is seen here).
        fence(Ordering::SeqCst);
        if header.room_waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        let wanted = header.room_wanted.load(Ordering::SeqCst);
        if before < wanted && wanted <= after {
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
        let mut raw = record::message_header(data.len(), seq, source);
        let at = RING_OFFSET + self.ring_offset(start);
        // The data's checksum is computed as it is copied; the header, sealed with it, follows.
        let crc = self
            .map
            .write_crc(at + RECORD_HEADER, data, record::checksum_seed(&raw));
        record::seal(&mut raw, crc);
        self.map.write(at, &raw);
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
}
