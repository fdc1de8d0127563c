//! Delivering identical datagrams once.
//!
//! Windows sends a mailslot message once per transport, a multi-homed sender broadcasts one
//! copy per interface, nmbd-style receivers with several sockets see each broadcast twice, and
//! our own broadcasts come back once per interface we sent them on. Windows' Net Logon drops
//! identical messages within `MailslotDuplicateTimeout` (default 2 s); we do the same for every
//! mailslot.
//!
//! Key: [`DatagramKeys`](super::pending::DatagramKeys), which leaves SOURCE_IP out, so that
//! the per-interface copies of one broadcast count as one. Two different senders would have to
//! pick the same source port, DGM_ID, source name and payload within the window to be merged.
//!
//! Memory is fixed: a direct-mapped table of `capacity` slots (a power of two), each holding
//! the last key that hashed to it and when it was seen. One slot is looked at per datagram
//! (one cache line, no allocation, no eviction queue); a later key that maps to the same slot
//! replaces it, so under a flood a duplicate that arrives long after its original may get
//! through. Duplicates come close together (the copies of one broadcast arrive within
//! microseconds), and nothing ever grows.

use std::time::{Duration, Instant};

/// Default number of slots (16 bytes each: 64 KiB).
pub(crate) const DEFAULT_CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: u64,
    /// Nanoseconds since `base` plus one when seen; 0: empty.
    at: u64,
}

#[derive(Debug)]
pub(crate) struct Dedupe {
    window: Duration,
    base: Instant,
    slots: Vec<Slot>,
}

impl Dedupe {
    /// A table of `capacity` slots (rounded up to a power of two).
    pub(crate) fn new(window: Duration, capacity: usize) -> Dedupe {
        Dedupe {
            window,
            base: Instant::now(),
            slots: vec![Slot::default(); capacity.max(1).next_power_of_two()],
        }
    }

    /// True if the datagram of this key was seen within the window (then it is a duplicate);
    /// otherwise it is remembered and false is returned.
    pub(crate) fn check(&mut self, key: u64, now: Instant) -> bool {
        if self.window.is_zero() {
            return false;
        }
        let at = now.saturating_duration_since(self.base).as_nanos() as u64 + 1;
        let mask = self.slots.len() - 1;
        let slot = &mut self.slots[(key as usize) & mask];
        let window = self.window.as_nanos() as u64;
        if slot.at != 0 && slot.key == key && at.saturating_sub(slot.at) < window {
            return true;
        }
        *slot = Slot { key, at };
        false
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::pending::DatagramKeys;
    use super::*;

    /// The dedupe of one holder, with its datagram keys.
    struct Seen(Dedupe, DatagramKeys);

    impl Seen {
        fn new(window: Duration, capacity: usize) -> Seen {
            Seen(Dedupe::new(window, capacity), DatagramKeys::random())
        }

        fn check(&mut self, port: u16, datagram: &[u8], now: Instant) -> bool {
            let key = self.1.key(port, datagram);
            self.0.check(key, now)
        }

        fn len(&self) -> usize {
            self.0.len()
        }
    }

    fn dgram(id: u8, src_ip: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x11, 0x02, 0, id, 10, 0, 0, src_ip, 0, 138, 0, 0, 0, 0];
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn same_datagram_within_window_is_a_duplicate() {
        let t0 = Instant::now();
        let mut d = Seen::new(Duration::from_secs(2), 16);
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
    fn memory_is_fixed_under_a_flood() {
        let t0 = Instant::now();
        let mut d = Seen::new(Duration::from_secs(2), 100);
        assert_eq!(d.len(), 128);
        for i in 0..10_000u32 {
            assert!(!d.check(138, &i.to_be_bytes(), t0));
            assert_eq!(d.len(), 128);
        }
    }

    /// The copies of one broadcast come close together: caught even in a flood of others.
    #[test]
    fn close_duplicates_are_caught_during_a_flood() {
        let t0 = Instant::now();
        let mut d = Seen::new(Duration::from_secs(2), DEFAULT_CAPACITY);
        let mut caught = 0;
        for i in 0..100_000u32 {
            let dg = dgram((i % 251) as u8, 1, &i.to_be_bytes());
            let now = t0 + Duration::from_micros(u64::from(i));
            assert!(
                !d.check(138, &dg, now),
                "{i}: a new datagram taken for a duplicate"
            );
            // Its copy from another interface, a few datagrams later at most.
            if d.check(138, &dgram((i % 251) as u8, 2, &i.to_be_bytes()), now) {
                caught += 1;
            }
        }
        assert_eq!(caught, 100_000);
    }

    #[test]
    fn zero_window_disables() {
        let t0 = Instant::now();
        let mut d = Seen::new(Duration::ZERO, 16);
        assert!(!d.check(138, b"abc", t0));
        assert!(!d.check(138, b"abc", t0));
    }
}
