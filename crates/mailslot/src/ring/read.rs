//! Reading: a record at a position, checked; a reader's next message by its cursor (its own,
//! or the group's), with loss counting; the backlog and the loss `status` reports.

use std::sync::atomic::{fence, Ordering};

use super::record::{Kind, RecordView};
use super::*;

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

/// A reader's expected sequence number after damage: the next message starts counting again.
const SEQ_UNKNOWN: u64 = u64::MAX;

impl Ring {
    pub(super) fn ring_offset(&self, pos: u64) -> usize {
        self.offsets.of(pos) as usize
    }

    pub(super) fn read_raw_header(&self, off: usize) -> [u8; RECORD_HEADER] {
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
                    // The checksum of what was copied, computed as it is copied.
                    let seed = view.checksum_seed();
                    let crc = match dest {
                        Dest::Vec(buf) => self.map.read_to_vec_crc(at, len, buf, seed),
                        Dest::Slice(buf) => self.map.read_crc(at, &mut buf[..len], seed),
                        Dest::Nowhere => seed,
                    };
                    view.checksum_matches(crc)
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
        let before = self.waiting_at(cursor);
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
                    if *lost > 0 {
                        s.lost.fetch_add(*lost, Ordering::Relaxed);
                    }
                }
                Take::Damaged(_) => {
                    s.corrupt.fetch_add(1, Ordering::Relaxed);
                }
                Take::Empty | Take::TooSmall(_) => {}
            }
        }
        if matches!(take, Take::Got(..) | Take::Damaged(_)) {
            // After the cursor's mirror: that is what a waiting writer looks at.
            self.made_room(before, self.waiting_at(cursor));
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
}
