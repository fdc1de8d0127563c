//! A writer's submission ring: the bytes a global writer hands the host service without a
//! system call per message.
//!
//! One per writer connection: a sealed memfd the service creates and shares read-write with
//! that writer only. Single producer (the writer), single consumer (the service). The writer
//! is not trusted: the service reads each position and length once, checks it, and drops the
//! connection on anything malformed; the worst a writer can do is garble its own messages.
//!
//! ```text
//! 0    tail (u64, writer)  waiting (u32, writer: blocked for space)  packets (u64, writer)
//! 64   head (u64, service)
//! 128  SIZE bytes of records: len (u32), kind (u32), data padded to 8; a record never
//!      wraps (a pad record, kind 2, skips to the end). A message longer than a record may
//!      be comes as parts (kind 3) and its last piece (kind 1), so that every message,
//!      long or short, keeps its place in the one stream.
//! ```
//!
//! The service's thread sleeps on a futex word of its own, in a second memfd (the doorbell)
//! that the writer maps read-only: the writer sees whether the thread sleeps and wakes it
//! with `FUTEX_WAKE`, but cannot change the word, so it cannot make the thread spin. A
//! writer that is about to send a packet (a flush) counts it in `packets` first, so that a
//! thread going to sleep notices.

use std::fs::File;
use std::sync::atomic::{fence, Ordering};

use crate::error::{Error, ErrorKind};
use crate::sys::{self, fdpass, SharedMap};

const TAIL: usize = 0;
const WAITING: usize = 8;
const PACKETS: usize = 16;
const HEAD: usize = 64;
const DATA: usize = 128;
/// The doorbell: one word, 1 while the service's thread sleeps (or is about to).
const BELL_SIZE: usize = 4096;
const SLEEPING: usize = 0;
/// Bytes of records (a power of two).
pub const SIZE: usize = 128 * 1024;
const RECORD_HEADER: usize = 8;
const KIND_MESSAGE: u32 = 1;
const KIND_PAD: u32 = 2;
const KIND_PART: u32 = 3;

/// The longest piece of a message in one record; longer messages come in parts.
pub const MAX_PIECE: usize = SIZE / 4;

fn record_size(len: usize) -> usize {
    RECORD_HEADER + len.div_ceil(8) * 8
}

/// Where a message of `len` bytes goes after `tail`: the pad that skips to the start of the
/// ring (0 when the record fits before the end), and the record's size.
fn placement(tail: u64, len: usize) -> (usize, usize) {
    let need = record_size(len);
    let left = SIZE - ((tail as usize) & (SIZE - 1));
    (if left < need { left } else { 0 }, need)
}

/// One side's view of a submission ring and its doorbell.
#[derive(Debug)]
pub struct Submit {
    map: SharedMap,
    file: File,
    /// Read-write for the service, read-only for the writer.
    bell: SharedMap,
    bell_file: File,
}

/// What the service's thread should do instead of processing records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Records were published meanwhile: go on.
    Busy,
    /// The writer sent packets (it counted them): read them, then look again.
    Packets,
    /// Nothing: sleep (the doorbell says so).
    Sleep,
}

/// The writer broke the ring's rules (or scribbled on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation;

impl Submit {
    /// The service's side: a new ring (allocated whole, sealed, mode 0600).
    pub fn create() -> std::io::Result<Submit> {
        let file = fdpass::sealed_memfd("mailslot-submit", (DATA + SIZE) as u64)?;
        let map = SharedMap::map(&file, DATA + SIZE)?;
        let bell_rw = fdpass::sealed_memfd("mailslot-doorbell", BELL_SIZE as u64)?;
        let bell = SharedMap::map(&bell_rw, BELL_SIZE)?;
        let bell_file = fdpass::reopen_read_only(&bell_rw)?;
        Ok(Submit {
            map,
            file,
            bell,
            bell_file,
        })
    }

    /// The writer's side, from the descriptors the service sent (the ring, read-write; the
    /// doorbell, read-only).
    pub fn open(file: File, bell_file: File) -> Result<Submit, Error> {
        let size_of = |f: &File| f.metadata().map(|m| m.len()).unwrap_or(0);
        if size_of(&file) != (DATA + SIZE) as u64 || size_of(&bell_file) != BELL_SIZE as u64 {
            return Err(Error::new(
                ErrorKind::Io,
                "the host service sent a submission ring of another size (another release?)",
            ));
        }
        let map = SharedMap::map(&file, DATA + SIZE)
            .map_err(|e| Error::io("cannot map the submission ring", e))?;
        let bell = SharedMap::map_read_only(&bell_file, BELL_SIZE)
            .map_err(|e| Error::io("cannot map the service's doorbell", e))?;
        Ok(Submit {
            map,
            file,
            bell,
            bell_file,
        })
    }

    /// The descriptors to hand the writer: the ring, and the doorbell (read-only).
    pub fn files(&self) -> [&File; 2] {
        [&self.file, &self.bell_file]
    }

    // ---- the writer -------------------------------------------------------------------

    /// Appends one piece of a message (at most [`MAX_PIECE`] bytes; `last` ends the message)
    /// at `tail` (the writer's own count) if it fits; `false` when the service has not yet
    /// made room.
    pub fn push(&self, tail: &mut u64, data: &[u8], last: bool) -> bool {
        debug_assert!(data.len() <= MAX_PIECE);
        let head = self.map.u64_at(HEAD).load(Ordering::Acquire);
        let (pad, need) = placement(*tail, data.len());
        if (tail.wrapping_sub(head) as usize).saturating_add(pad + need) > SIZE {
            return false;
        }
        if pad > 0 {
            let off = (*tail as usize) & (SIZE - 1);
            self.map.write(DATA + off, &record_header(0, KIND_PAD));
        }
        let at = DATA + ((*tail as usize + pad) & (SIZE - 1));
        let kind = if last { KIND_MESSAGE } else { KIND_PART };
        self.map.write(at, &record_header(data.len() as u32, kind));
        self.map.write(at + RECORD_HEADER, data);
        *tail += (pad + need) as u64;
        // SYNC POINT: publish, then (SeqCst, in `wake_service`) look whether the service
        // sleeps; pairs with `idle`, which says it sleeps and then looks at `tail`.
        self.map.u64_at(TAIL).store(*tail, Ordering::SeqCst);
        true
    }

    /// After a push (or a packet): wakes the service's thread if it sleeps.
    pub fn wake_service(&self) {
        let word = self.bell.u32_at(SLEEPING);
        if word.load(Ordering::SeqCst) != 0 {
            sys::futex_wake(word, 1);
        }
    }

    /// Before sending a packet: counts it, so that a thread about to sleep reads it.
    pub fn note_packet(&self) {
        self.map.u64_at(PACKETS).fetch_add(1, Ordering::SeqCst);
    }

    /// The writer is about to block (for room, or until the ring is drained): asks the service
    /// for a packet once it has consumed what is there. The writer looks again before it
    /// blocks.
    pub fn want_room(&self) {
        self.map.u32_at(WAITING).store(1, Ordering::SeqCst);
    }

    /// Whether a message of `len` bytes fits now.
    pub fn has_room(&self, tail: u64, len: usize) -> bool {
        let head = self.map.u64_at(HEAD).load(Ordering::SeqCst);
        let (pad, need) = placement(tail, len);
        (tail.wrapping_sub(head) as usize).saturating_add(pad + need) <= SIZE
    }

    // ---- the service ------------------------------------------------------------------

    /// Hands every published message to `each`, in order, and frees their room. `max` is the
    /// longest message the name accepts: a longer one is a violation (the writer checks sizes
    /// before pushing). `message` holds the parts of a message not yet complete between calls.
    pub fn pop_all(
        &self,
        head: &mut u64,
        max: usize,
        message: &mut Vec<u8>,
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), Violation> {
        let tail = self.map.u64_at(TAIL).load(Ordering::Acquire);
        if tail < *head || tail - *head > SIZE as u64 {
            return Err(Violation);
        }
        while *head < tail {
            let off = (*head as usize) & (SIZE - 1);
            let mut raw = [0u8; RECORD_HEADER];
            self.map.read(DATA + off, &mut raw);
            let len = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
            let kind = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
            let step = match kind {
                KIND_PAD => SIZE - off,
                KIND_MESSAGE | KIND_PART
                    if len <= MAX_PIECE
                        && message.len() + len <= max
                        && record_size(len) <= SIZE - off =>
                {
                    let start = message.len();
                    message.resize(start + len, 0);
                    self.map
                        .read(DATA + off + RECORD_HEADER, &mut message[start..]);
                    record_size(len)
                }
                _ => return Err(Violation),
            };
            if *head + step as u64 > tail {
                return Err(Violation);
            }
            if kind == KIND_MESSAGE {
                each(message);
                message.clear();
            }
            *head += step as u64;
        }
        self.map.u64_at(HEAD).store(*head, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the writer waits for room (clears the flag): send it a packet.
    pub fn take_waiting(&self) -> bool {
        let flag = self.map.u32_at(WAITING);
        flag.load(Ordering::SeqCst) != 0 && flag.swap(0, Ordering::SeqCst) != 0
    }

    /// Whether nothing was published past `head`.
    pub fn is_empty(&self, head: u64) -> bool {
        self.map.u64_at(TAIL).load(Ordering::Acquire) == head
    }

    /// The service's thread has drained everything: says on the doorbell that it sleeps,
    /// then looks once more. `packets_seen` is the writer's packet count it has read.
    ///
    /// A writer can change `packets` at will, but each change is answered by one look at the
    /// connection, and a thread that has looked sleeps (the writer then wakes it with a system
    /// call of its own): a writer cannot make the thread spin.
    pub fn idle(&self, head: u64, packets_seen: &mut u64) -> Idle {
        self.bell.u32_at(SLEEPING).store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.map.u64_at(TAIL).load(Ordering::SeqCst) != head {
            self.awake();
            return Idle::Busy;
        }
        let packets = self.map.u64_at(PACKETS).load(Ordering::SeqCst);
        if packets != *packets_seen {
            *packets_seen = packets;
            return Idle::Packets;
        }
        Idle::Sleep
    }

    /// Sleeps until the writer wakes us, at most `timeout` (the doorbell says we sleep).
    pub fn sleep(&self, timeout: std::time::Duration) {
        sys::futex_wait(self.bell.u32_at(SLEEPING), 1, Some(timeout));
    }

    /// The service's thread is awake.
    pub fn awake(&self) {
        self.bell.u32_at(SLEEPING).store(0, Ordering::SeqCst);
    }
}

fn record_header(len: u32, kind: u32) -> [u8; RECORD_HEADER] {
    let mut raw = [0u8; RECORD_HEADER];
    raw[0..4].copy_from_slice(&len.to_le_bytes());
    raw[4..8].copy_from_slice(&kind.to_le_bytes());
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Submit, Submit) {
        let service = Submit::create().unwrap();
        let [ring, bell] = service.files();
        let writer = Submit::open(ring.try_clone().unwrap(), bell.try_clone().unwrap()).unwrap();
        (service, writer)
    }

    #[test]
    fn messages_come_out_in_order_across_the_wrap() {
        let (service, writer) = pair();
        let (mut tail, mut head) = (0u64, 0u64);
        let mut scratch = Vec::new();
        let mut next_in = 0u32;
        let mut next_out = 0u32;
        for round in 0..50 {
            while writer.push(&mut tail, &vec![next_in as u8; 1000 + round * 37], true) {
                next_in += 1;
            }
            service
                .pop_all(&mut head, 1 << 20, &mut scratch, |m| {
                    assert_eq!(m[0], next_out as u8);
                    next_out += 1;
                })
                .unwrap();
            assert_eq!(head, tail);
        }
        assert_eq!(next_in, next_out);
        assert!(next_out > 1000);
    }

    #[test]
    fn a_scribbling_writer_is_a_violation_never_a_panic() {
        let (service, writer) = pair();
        let mut scratch = Vec::new();
        let mut tail = 0;
        assert!(writer.push(&mut tail, b"ok", true));
        let cases: [(usize, u64); 5] = [
            (TAIL, u64::MAX),
            (TAIL, (SIZE + 8) as u64),
            (DATA, 0xffff_ffff_0000_0001),      // kind 0xffffffff
            (DATA, (1u64 << 32) | 0x7fff_ffff), // a piece longer than a record may be
            (DATA, 0),                          // zeroes (a punched hole)
        ];
        for (field, value) in cases {
            let (service2, writer2) = pair();
            let mut t = 0;
            assert!(writer2.push(&mut t, b"hello", true));
            writer2.map.u64_at(field).store(value, Ordering::SeqCst);
            let mut head = 0;
            assert_eq!(
                service2.pop_all(&mut head, 1 << 20, &mut scratch, |_| {}),
                Err(Violation),
                "field {field} = {value:#x}"
            );
        }
        let mut head = 0;
        service
            .pop_all(&mut head, 1 << 20, &mut scratch, |m| assert_eq!(m, b"ok"))
            .unwrap();
        // Longer than the name allows: a violation too (the writer checks sizes first).
        assert!(writer.push(&mut tail, &[0; 100], true));
        assert_eq!(
            service.pop_all(&mut head, 99, &mut scratch, |_| {}),
            Err(Violation)
        );
    }
}

#[cfg(test)]
mod parts {
    use super::*;

    #[test]
    fn a_long_message_in_parts_comes_out_whole_between_short_ones() {
        let service = Submit::create().unwrap();
        let [ring, bell] = service.files();
        let writer = Submit::open(ring.try_clone().unwrap(), bell.try_clone().unwrap()).unwrap();
        let (mut tail, mut head) = (0u64, 0u64);
        let mut message = Vec::new();
        let mut out: Vec<Vec<u8>> = Vec::new();
        assert!(writer.push(&mut tail, b"a", true));
        assert!(writer.push(&mut tail, &[1; MAX_PIECE], false));
        // The service may look half-way: nothing of the long one comes out yet.
        service
            .pop_all(&mut head, 1 << 20, &mut message, |m| out.push(m.to_vec()))
            .unwrap();
        assert_eq!(out, vec![b"a".to_vec()]);
        assert!(writer.push(&mut tail, &[2; 10], true));
        assert!(writer.push(&mut tail, b"b", true));
        service
            .pop_all(&mut head, 1 << 20, &mut message, |m| out.push(m.to_vec()))
            .unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].len(), MAX_PIECE + 10);
        assert_eq!(out[2], b"b");
        // Parts adding up past the name's maximum are a violation.
        assert!(writer.push(&mut tail, &[3; 100], false));
        assert!(writer.push(&mut tail, &[3; 100], true));
        assert_eq!(
            service.pop_all(&mut head, 150, &mut message, |_| {}),
            Err(Violation)
        );
    }
}
