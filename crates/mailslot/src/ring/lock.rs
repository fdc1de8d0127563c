//! The append lock: one futex word in the header, and a kernel-released token per appender.
//!
//! The word is 0 when free, otherwise the holder's token (31 bits) and a waiters bit. Each
//! appender holds, for as long as it may append, an OFD lock on byte `TOKEN_BASE + token` of
//! the name's file, through an open file description of its own (the ring's, or after a fork,
//! which shares it with the parent, a fresh one); the kernel drops it when the appender dies. So a waiter can always tell a live holder from a dead one or from a word
//! somebody scribbled on: it asks the kernel whether the token's byte is locked. Whatever the
//! word holds, taking the lock ends within the caller's wait: taken, stolen from the dead, or
//! `TimedOut`. Unlike a glibc robust mutex, no value of the word can abort the process.
//!
//! Taking and releasing a free lock costs no system call; only a waiter sleeps (`FUTEX_WAIT`)
//! and only a release that saw the waiters bit wakes one.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sys::{self, LockProbe};

/// Token bytes lie past every lock the registry uses (name and instance bytes).
const TOKEN_BASE: u64 = 1 << 32;
const WAITERS: u32 = 1 << 31;
const TOKEN_MASK: u32 = WAITERS - 1;
/// How long a waiter trusts a holder before it asks the kernel whether the holder lives.
const TRUST_HOLDER: Duration = Duration::from_millis(10);
/// Busy looks before sleeping: a holder's append takes microseconds.
const SPINS: u32 = 64;

/// One process's right to append to one name: its token and the descriptor whose OFD lock on
/// the token's byte says it is alive.
#[derive(Debug)]
struct Token {
    value: u32,
    /// The fork generation it was made in (see `sys::fork_generation`).
    generation: u64,
    /// The description holding the token's lock; `None`: the ring's own.
    file: Option<File>,
}

/// How the lock was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Clean,
    /// From a dead holder, or from a word that was not a live holder's (damage): whatever it
    /// left half-done was never published.
    Recovered,
}

/// The append side of one mapped ring (tokens are made on first use).
#[derive(Debug)]
pub struct AppendLock {
    token: Mutex<Option<Token>>,
    /// The fork generation the ring's descriptor was opened in: until a fork, its description
    /// is ours alone and can hold the token.
    born: u64,
}

impl Default for AppendLock {
    fn default() -> Self {
        AppendLock {
            token: Mutex::new(None),
            born: sys::fork_generation(),
        }
    }
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// A live holder kept it for the whole wait.
    TimedOut,
    Io(std::io::Error),
}

impl AppendLock {
    /// Takes the lock `word` of the ring whose descriptor is `file`, waiting at most `wait`.
    ///
    /// # Errors
    /// `TimedOut` when a live holder keeps it; `Io` when no token can be made.
    pub fn lock<'a>(
        &'a self,
        word: &'a AtomicU32,
        file: &File,
        wait: Duration,
    ) -> Result<Guard<'a>, LockError> {
        let mut slot = self.token.lock().unwrap_or_else(|p| p.into_inner());
        let generation = sys::fork_generation();
        if slot.as_ref().is_none_or(|t| t.generation != generation) {
            // New, or inherited through fork: the parent's descriptor is shared with it, so a
            // token of its own needs a description of its own.
            let own = generation == self.born;
            *slot = Some(Token::new(file, generation, own).map_err(LockError::Io)?);
        }
        let Some(token) = slot.as_ref() else {
            return Err(LockError::TimedOut);
        };
        // Taken over from the dead or from damage, the ring's positions are checked by the
        // holder anyway: nothing more to do here.
        acquire(word, token, file, wait)?;
        Ok(Guard { word, _token: slot })
    }
}

/// A held append lock, released on drop. It also holds the process's token, so no other
/// thread of ours can be waiting for the word meanwhile.
#[derive(Debug)]
pub struct Guard<'a> {
    word: &'a AtomicU32,
    _token: std::sync::MutexGuard<'a, Option<Token>>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SYNC POINT: Release orders the appended bytes before the next holder's reads.
        if self.word.swap(0, Ordering::Release) & WAITERS != 0 {
            sys::futex_wake(self.word, 1);
        }
    }
}

impl Token {
    /// A token locked through the ring's own description (`own`), or through a fresh one.
    fn new(ring: &File, generation: u64, own: bool) -> std::io::Result<Token> {
        let file = if own {
            None
        } else {
            // Reopening through /proc gives a description of our own, even for a memfd.
            Some(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(format!("/proc/self/fd/{}", ring.as_raw_fd()))?,
            )
        };
        let holder = file.as_ref().unwrap_or(ring);
        for _ in 0..64 {
            let value = (sys::random_u64() as u32 & TOKEN_MASK).max(1);
            if sys::ofd_try_lock(holder.as_fd(), TOKEN_BASE + u64::from(value), 1)? {
                return Ok(Token {
                    value,
                    generation,
                    file,
                });
            }
        }
        Err(std::io::Error::other("no free append token"))
    }

    /// Whether the holder named by `word` may still be appending.
    fn holder_alive(&self, word: u32, ring: &File) -> bool {
        let holder = word & TOKEN_MASK;
        if holder == self.value {
            // Ours, but we are waiting for it (and hold the token): the word was scribbled.
            return false;
        }
        // Probed through our own description, whose own locks never conflict.
        let ours = self.file.as_ref().unwrap_or(ring);
        !matches!(
            sys::ofd_probe(ours.as_fd(), TOKEN_BASE + u64::from(holder), 1),
            Ok(LockProbe::Free)
        )
    }
}

fn acquire(
    word: &AtomicU32,
    token: &Token,
    ring: &File,
    wait: Duration,
) -> Result<Taken, LockError> {
    let mine = token.value;
    if word
        .compare_exchange(0, mine, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return Ok(Taken::Clean);
    }
    let start = Instant::now();
    let deadline = start + wait;
    let mut spins = 0;
    // The holder we have been waiting for, and since when.
    let mut watching = (word.load(Ordering::Relaxed), start);
    loop {
        let seen = word.load(Ordering::Relaxed);
        if seen == 0 {
            // The holder let go: it is alive, whoever takes it next.
            watching = (0, Instant::now());
            // Having waited, take it with the waiters bit: others may still sleep.
            if word
                .compare_exchange(0, mine | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(Taken::Clean);
            }
            continue;
        }
        let now = Instant::now();
        if seen != watching.0 {
            watching = (seen, now);
        }
        let out_of_time = now >= deadline;
        if (out_of_time || now.duration_since(watching.1) >= TRUST_HOLDER)
            && !token.holder_alive(seen, ring)
        {
            // Dead holder or damage: take it over (only if nobody else did meanwhile).
            if word
                .compare_exchange(seen, mine | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(Taken::Recovered);
            }
            continue;
        }
        if out_of_time {
            return Err(LockError::TimedOut);
        }
        if spins < SPINS {
            spins += 1;
            std::hint::spin_loop();
            if spins % 16 == 0 {
                std::thread::yield_now();
            }
            continue;
        }
        if seen & WAITERS == 0
            && word
                .compare_exchange(seen, seen | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        let nap = (deadline - now).min(TRUST_HOLDER);
        sys::futex_wait(word, seen | WAITERS, Some(nap));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> File {
        let path = std::env::temp_dir().join(format!("ms-lock-{:x}", sys::random_u64()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    #[test]
    fn free_and_scribbled_words_are_taken_a_live_holder_is_waited_for() {
        let f = file();
        let word = AtomicU32::new(0);
        let ours = Token::new(&f, sys::fork_generation(), false).unwrap();
        let wait = Duration::from_secs(5);
        assert_eq!(acquire(&word, &ours, &f, wait).unwrap(), Taken::Clean);
        word.store(0, Ordering::Relaxed);
        for scribble in [u32::MAX, 0x7fff_ffff, 1, 0x8000_0000, ours.value] {
            word.store(scribble, Ordering::Relaxed);
            assert_eq!(
                acquire(&word, &ours, &f, wait).unwrap(),
                Taken::Recovered,
                "{scribble:#x}"
            );
        }
        // Another appender (a description of its own) holding it: we wait, then time out.
        word.store(0, Ordering::Relaxed);
        let other = AppendLock::default();
        let held = other.lock(&word, &f, Duration::from_millis(1)).unwrap();
        assert!(matches!(
            acquire(&word, &ours, &f, Duration::from_millis(30)),
            Err(LockError::TimedOut)
        ));
        drop(held);
        assert_eq!(word.load(Ordering::Relaxed), 0);
        assert_eq!(
            acquire(&word, &ours, &f, Duration::from_millis(30)).unwrap(),
            Taken::Clean
        );
    }

    #[test]
    fn contending_threads_exclude_each_other() {
        let f = file();
        let word = std::sync::Arc::new(AtomicU32::new(0));
        let inside = std::sync::Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                // Each appender has a description of its own, as each mapped ring has.
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(format!("/proc/self/fd/{}", f.as_raw_fd()))
                    .unwrap();
                let (word, inside) = (word.clone(), inside.clone());
                std::thread::spawn(move || {
                    let lock = AppendLock::default();
                    for _ in 0..2000 {
                        let _g = lock.lock(&word, &f, Duration::from_secs(10)).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
