//! Delivering identical datagrams once.
//!
//! Windows sends a mailslot message once per transport, a multi-homed sender broadcasts one
//! copy per interface, nmbd-style receivers with several sockets see each broadcast twice, and
//! our own broadcasts come back once per interface we sent them on. Windows' Net Logon drops
//! identical messages within `MailslotDuplicateTimeout` (default 2 s); we do the same for every
//! mailslot.
//!
//! Key: the UDP source port, and the datagram bytes with SOURCE_IP (offset 4..8) left out, so
//! that the per-interface copies of one broadcast (same DGM_ID, different SOURCE_IP and UDP
//! source address) count as one. Two different senders would have to pick the same source
//! port, DGM_ID, source name and payload within the window to be merged. The key is a keyed
//! 64-bit SipHash (random key per process), so a remote sender cannot aim collisions.
//!
//! Memory is bounded: at most `capacity` entries; when full, the oldest is forgotten early
//! (a flood can then let a duplicate through, never grow memory).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

/// Default bound on remembered datagrams (about 40 bytes each).
pub(crate) const DEFAULT_CAPACITY: usize = 8192;

#[derive(Debug)]
pub(crate) struct Dedupe {
    window: Duration,
    capacity: usize,
    hasher: RandomState,
    order: VecDeque<(u64, Instant)>,
    seen: HashMap<u64, Instant>,
}

impl Dedupe {
    pub(crate) fn new(window: Duration, capacity: usize) -> Dedupe {
        Dedupe {
            window,
            capacity: capacity.max(1),
            hasher: RandomState::new(),
            order: VecDeque::new(),
            seen: HashMap::new(),
        }
    }

    pub(crate) fn key(&self, source_port: u16, datagram: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u16(source_port);
        h.write(datagram.get(..4).unwrap_or(datagram));
        h.write(datagram.get(8..).unwrap_or(&[]));
        h.finish()
    }

    /// True if this datagram was seen within the window (then it is a duplicate); otherwise it
    /// is remembered and false is returned.
    pub(crate) fn check(&mut self, source_port: u16, datagram: &[u8], now: Instant) -> bool {
        if self.window.is_zero() {
            return false;
        }
        self.expire(now);
        let key = self.key(source_port, datagram);
        if let Some(&at) = self.seen.get(&key) {
            if now.saturating_duration_since(at) < self.window {
                return true;
            }
        }
        while self.order.len() >= self.capacity {
            self.evict_oldest();
        }
        self.seen.insert(key, now);
        self.order.push_back((key, now));
        false
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(_, at)) = self.order.front() {
            if now.saturating_duration_since(at) < self.window {
                break;
            }
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((key, at)) = self.order.pop_front() {
            // A later entry with the same key (re-sent after the window) stays.
            if self.seen.get(&key) == Some(&at) {
                self.seen.remove(&key);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dgram(id: u8, src_ip: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x11, 0x02, 0, id, 10, 0, 0, src_ip, 0, 138, 0, 0, 0, 0];
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn same_datagram_within_window_is_a_duplicate() {
        let t0 = Instant::now();
        let mut d = Dedupe::new(Duration::from_secs(2), 16);
        assert!(!d.check(138, &dgram(1, 1, b"x"), t0));
        assert!(d.check(138, &dgram(1, 1, b"x"), t0 + Duration::from_millis(1999)));
        // The same broadcast looped back from another interface (other SOURCE_IP) too.
        assert!(d.check(138, &dgram(1, 2, b"x"), t0 + Duration::from_millis(10)));
        // Other id, other bytes, other port: not duplicates.
        assert!(!d.check(138, &dgram(2, 1, b"x"), t0));
        assert!(!d.check(138, &dgram(1, 1, b"y"), t0));
        assert!(!d.check(139, &dgram(1, 1, b"x"), t0));
        // After the window it is new again.
        assert!(!d.check(138, &dgram(1, 1, b"x"), t0 + Duration::from_millis(2001)));
    }

    #[test]
    fn memory_is_bounded_under_a_flood() {
        let t0 = Instant::now();
        let mut d = Dedupe::new(Duration::from_secs(2), 100);
        for i in 0..10_000u32 {
            assert!(!d.check(138, &i.to_be_bytes(), t0));
            assert!(d.len() <= 100);
        }
        assert!(d.seen.len() <= 100);
    }

    #[test]
    fn zero_window_disables() {
        let t0 = Instant::now();
        let mut d = Dedupe::new(Duration::ZERO, 16);
        assert!(!d.check(138, b"abc", t0));
        assert!(!d.check(138, b"abc", t0));
    }
}
