//! What the holder has delivered of the batch it is reading, so that its successor neither
//! loses nor repeats that batch if the holder dies in the middle of it.
//!
//! The holder peeks a batch of datagrams (they stay queued on the shared socket), delivers
//! them, and only then removes them from the socket. A holder killed in between leaves the
//! whole batch queued, at the head of the socket's queue, for its successor: nothing is lost.
//! To not deliver twice what it had already delivered, the holder writes here, after each
//! delivery, the keys of the batch's datagrams that are done; the successor skips those in
//! its first batch. Once the batch is removed from the socket the list is emptied.
//!
//! The file also holds the key of the keyed hash that names datagrams (see
//! [`DatagramKeys`]): every holder of the port must compute the same keys.
//!
//! `<dir>/network-<port>.pending`, in the user's own directory, 0600, never followed through
//! a symlink. Little-endian: magic `MSP1`, 4 zero bytes, the two 64-bit hash keys, the count
//! of keys done, then up to [`MAX_BATCH`] keys; mapped shared, so the holder's notes are
//! stores. A file that is missing, short, foreign or unreadable is replaced by a fresh one (new
//! hash key, nothing done); if it cannot be written, the role works without it (a holder's
//! death may then repeat part of a batch).

use std::fs::{File, OpenOptions};
use std::hash::Hasher;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;

use siphasher::sip::SipHasher13;

use crate::sys::{self, SharedMap, MAX_BATCH};

const MAGIC: &[u8; 4] = b"MSP1";
/// Magic and padding, the hash keys, then the count.
const COUNT_AT: usize = 8 + 16;
const KEYS_AT: usize = COUNT_AT + 8;
const FILE_LEN: usize = KEYS_AT + 8 * MAX_BATCH;

/// Names a received datagram by a keyed 64-bit SipHash: the UDP source port and the datagram
/// bytes with SOURCE_IP (offset 4..8) left out, so that the per-interface copies of one
/// broadcast (same DGM_ID, different SOURCE_IP and UDP source address) have one name. The key
/// is random per port and secret to its holders, so a remote sender cannot aim collisions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DatagramKeys {
    k0: u64,
    k1: u64,
}

impl DatagramKeys {
    pub(crate) fn random() -> DatagramKeys {
        DatagramKeys {
            k0: sys::random_u64(),
            k1: sys::random_u64(),
        }
    }

    pub(crate) fn key(&self, source_port: u16, datagram: &[u8]) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write_u16(source_port);
        h.write(datagram.get(..4).unwrap_or(datagram));
        h.write(datagram.get(8..).unwrap_or(&[]));
        h.finish()
    }
}

/// The holder's side of the file: the keys done in the current batch.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The file, mapped: noting a key is a store, not a system call.
    map: Option<SharedMap>,
    keys: DatagramKeys,
    /// What the previous holder had done of the batch it was reading when it died.
    inherited: Vec<u64>,
    /// Keys noted in the current batch (stored in the map; the count is published by `write`).
    count: usize,
    /// The file may list keys (ours, or the previous holder's).
    listed: bool,
}

impl Pending {
    /// Opens `path`, taking over what a previous holder left in it.
    pub(crate) fn open(path: &Path) -> Pending {
        let mut pending = Pending {
            map: None,
            keys: DatagramKeys::random(),
            inherited: Vec::new(),
            count: 0,
            listed: false,
        };
        let Some(file) = open_own(path) else {
            return pending;
        };
        let mut buf = vec![0u8; FILE_LEN];
        let ours = file.read_exact_at(&mut buf, 0).is_ok() && &buf[..4] == MAGIC;
        if ours {
            let word = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8"));
            pending.keys = DatagramKeys {
                k0: word(8),
                k1: word(16),
            };
            let count = (word(COUNT_AT) as usize).min(MAX_BATCH);
            pending.inherited = (0..count).map(|i| word(KEYS_AT + 8 * i)).collect();
            pending.listed = count > 0;
        } else {
            buf.fill(0);
            buf[..4].copy_from_slice(MAGIC);
            buf[8..16].copy_from_slice(&pending.keys.k0.to_le_bytes());
            buf[16..24].copy_from_slice(&pending.keys.k1.to_le_bytes());
            if file
                .set_len(0)
                .and_then(|()| file.write_all_at(&buf, 0))
                .is_err()
            {
                return pending;
            }
        }
        // Another process of the user truncating the file makes its pages read as zeros
        // (see `sys::sigbus`): at worst a successor inherits nothing.
        pending.map = SharedMap::map(&file, FILE_LEN).ok();
        pending
    }

    pub(crate) fn keys(&self) -> DatagramKeys {
        self.keys
    }

    /// The keys the previous holder had delivered of its last batch and not removed from the
    /// socket (empty after the first call).
    pub(crate) fn take_inherited(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.inherited)
    }

    /// Notes a datagram of the current batch as done (not published yet).
    pub(crate) fn note(&mut self, key: u64) {
        if self.count < MAX_BATCH {
            if let Some(map) = &self.map {
                map.u64_at(KEYS_AT + 8 * self.count)
                    .store(key.to_le(), Ordering::Relaxed);
            }
            self.count += 1;
        }
    }

    /// Publishes what is done of the current batch.
    pub(crate) fn write(&mut self) {
        self.publish(self.count);
    }

    /// The batch is off the socket: nothing is pending any more.
    pub(crate) fn settle(&mut self) {
        self.count = 0;
        if self.listed {
            self.publish(0);
        }
    }

    fn publish(&mut self, count: usize) {
        self.listed = count > 0;
        if let Some(map) = &self.map {
            // Release: a successor that sees the count sees the keys it counts.
            map.u64_at(COUNT_AT)
                .store((count as u64).to_le(), Ordering::Release);
        }
    }
}

/// `path` opened read-write, created 0600 if missing; `None` for a symbolic link, a non-file
/// or another user's file.
fn open_own(path: &Path) -> Option<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()
        .filter(|f| {
            f.metadata()
                .is_ok_and(|m| m.is_file() && m.uid() == sys::current_uid())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ms-pending-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_successor_inherits_the_keys_and_what_was_done() {
        let d = dir("inherit");
        let path = d.join("network-1.pending");
        let mut first = Pending::open(&path);
        assert!(first.take_inherited().is_empty());
        let k = first.keys().key(138, b"abcdefghij");
        first.note(k);
        first.note(7);
        first.write();
        first.note(8); // not written: a death here repeats it
        let mut second = Pending::open(&path);
        assert_eq!(second.keys().key(138, b"abcdefghij"), k, "same hash key");
        assert_eq!(second.take_inherited(), [k, 7]);
        assert!(second.take_inherited().is_empty());
        // Once the batch is off the socket nothing is inherited, even if this holder
        // delivered nothing of it.
        second.settle();
        assert!(Pending::open(&path).take_inherited().is_empty());
        let mut third = Pending::open(&path);
        third.note(9);
        third.write();
        third.settle();
        assert!(Pending::open(&path).take_inherited().is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A scribbled, truncated or planted file never gives more than a batch of keys, and a
    /// symlink is not followed.
    #[test]
    fn a_foreign_file_is_replaced_and_a_symlink_refused() {
        let d = dir("foreign");
        let path = d.join("network-1.pending");
        std::fs::write(&path, b"MSP1").unwrap();
        assert!(Pending::open(&path).take_inherited().is_empty());
        let mut huge = vec![0xffu8; FILE_LEN];
        huge[..4].copy_from_slice(MAGIC);
        std::fs::write(&path, &huge).unwrap();
        assert_eq!(Pending::open(&path).take_inherited().len(), MAX_BATCH);
        std::fs::write(&path, b"junk").unwrap();
        let mut p = Pending::open(&path);
        assert!(p.take_inherited().is_empty());
        p.note(1);
        p.write();
        assert_eq!(Pending::open(&path).take_inherited(), [1]);

        let target = d.join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = d.join("network-2.pending");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut p = Pending::open(&link);
        p.note(1);
        p.write();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
