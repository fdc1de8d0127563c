//! Who we are: the user id, fork generations, and random identifiers; and a cheap clock.

use std::io;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked_child() {
    FORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// How many forks this process is the child of, counted since the first call: per-process
/// state made before a fork can tell it was inherited without a `getpid` system call per use
/// (glibc no longer caches the pid). Forks made by raw `clone` are not seen.
pub fn fork_generation() -> u64 {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a child handler that only increments an atomic, which is safe in
        // the child of a fork (no locks, no allocation).
        unsafe {
            libc::pthread_atfork(None, None, Some(forked_child));
        }
    });
    FORKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The real user id of this process.
pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// 64 random bits from the kernel (`getrandom`), for identifiers that must not repeat.
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // The kernel's entropy source is unavailable: fall back to time and address bits,
            // still unique enough for instance ids within one runtime directory.
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64;
            return nanos ^ (u64::from(std::process::id()) << 32) ^ (&buf as *const _ as u64);
        }
    }
    u64::from_ne_bytes(buf)
}

/// The monotonic clock at the kernel tick's resolution (`CLOCK_MONOTONIC_COARSE`: read from
/// the vDSO without reading a hardware counter), for "at most once per interval" checks on a
/// path taken for every message.
pub fn coarse_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE exists on every
    // Linux this crate runs on, and clock_gettime writes nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
