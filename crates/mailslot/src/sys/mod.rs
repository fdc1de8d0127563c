//! Every system call of the library that needs `unsafe`, each behind a small safe wrapper.
//!
//! One job per item: a shared mapping with bounds-checked accessors (and, in `layout`, the
//! typed views of a name's file), futex wait and wake on a word of that mapping, open file
//! description (OFD) byte-range locks, a socket's drop counter, and a few identity calls.
//! Nothing else in the crate uses `unsafe`.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod fdpass;
pub mod layout;
mod sigbus;

/// A `MAP_SHARED` mapping of a whole file, unmapped on drop.
///
/// Other processes map the same file and may write anything at any time, so every accessor
/// checks bounds and alignment and never hands out a reference into the mapping that is not an
/// atomic.
#[derive(Debug)]
pub struct SharedMap {
    ptr: *mut u8,
    len: usize,
    /// Its entry in the SIGBUS handler's table (`None`: the table was full, unprotected).
    guard: Option<sigbus::Registration>,
}

// SAFETY: the mapping is plain shared memory; all access goes through atomics or explicit
// copies, so it may be used from any thread.
unsafe impl Send for SharedMap {}
// SAFETY: as above; no method hands out a non-atomic reference into the mapping.
unsafe impl Sync for SharedMap {}

impl SharedMap {
    /// Maps the first `len` bytes of `file` read-write and shared.
    pub fn map(file: &File, len: usize) -> io::Result<SharedMap> {
        SharedMap::map_with(file, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Maps the first `len` bytes of `file` read-only and shared (a mailslot of the host
    /// service). Only the loads and copies of this type may be used on it: a store would fault.
    pub fn map_read_only(file: &File, len: usize) -> io::Result<SharedMap> {
        SharedMap::map_with(file, len, libc::PROT_READ)
    }

    fn map_with(file: &File, len: usize, prot: libc::c_int) -> io::Result<SharedMap> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL) of a file descriptor we own;
        // the result is checked for MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMap {
            ptr: ptr.cast(),
            len,
            // Another process may truncate the file: a fault then reads zeros, not kill us.
            guard: sigbus::Registration::new(ptr.cast(), len, prot),
        })
    }

    /// Whether part of the mapping was lost because the file was truncated under it (its
    /// pages past the new end now read as private zeros; see `sigbus`).
    pub fn faulted(&self) -> bool {
        self.guard
            .as_ref()
            .is_some_and(sigbus::Registration::faulted)
    }

    fn check(&self, offset: usize, size: usize, align: usize) {
        let end = offset.checked_add(size);
        assert!(
            end.is_some_and(|end| end <= self.len) && offset.is_multiple_of(align),
            "shared map access out of bounds or misaligned: {offset}+{size} of {}",
            self.len
        );
    }

    /// The 32-bit atomic at `offset` (4-byte aligned, inside the mapping).
    pub fn u32_at(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4, 4);
        // SAFETY: in bounds and aligned (checked above); the page is mapped for as long as
        // `self` lives, which bounds the returned lifetime; AtomicU32 has the layout of u32 and
        // tolerates concurrent access from other processes.
        unsafe { &*self.ptr.add(offset).cast::<AtomicU32>() }
    }

    /// The 64-bit atomic at `offset` (8-byte aligned, inside the mapping).
    pub fn u64_at(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8, 8);
        // SAFETY: as in `u32_at`, with 8-byte alignment checked.
        unsafe { &*self.ptr.add(offset).cast::<AtomicU64>() }
    }

    /// Copies `out.len()` bytes starting at `offset` out of the mapping.
    ///
    /// Another process may be writing the same bytes; callers validate what they copied (a
    /// sequence check after the copy) before trusting it.
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        self.check(offset, out.len(), 1);
        // SAFETY: the source range is inside the mapping (checked) and cannot overlap `out`,
        // which is ordinary process memory. A concurrent writer can only make the copied bytes
        // stale, never make the copy itself fault; the ring re-validates after copying.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(offset), out.as_mut_ptr(), out.len()) }
    }

    /// Copies `data` into the mapping at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) {
        self.check(offset, data.len(), 1);
        // SAFETY: the destination range is inside the mapping (checked); writers hold the
        // append lock, and readers validate their copies, so no reader trusts a torn range.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(offset), data.len()) }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // Unregistered first: once unmapped, the addresses may be reused by a mapping that is
        // not ours.
        self.guard = None;
        // SAFETY: `ptr`/`len` are exactly what mmap returned; no reference derived from them
        // outlives `self` (every accessor borrows `self`).
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// Sleeps while `word` still holds `expected`, at most `timeout` (`None`: no limit).
///
/// A shared (not process-private) futex, so writers in other processes can wake it. Returns
/// on wake, on timeout, on a signal, or at once if the word already differs.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word`, which lives in a shared mapping
    // for at least the duration of the call; the timeout pointer is null or points to `ts`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
        );
    }
}

/// Wakes up to `count` processes sleeping in [`futex_wait`] on `word`.
pub fn futex_wake(word: &AtomicU32, count: i32) {
    // SAFETY: FUTEX_WAKE only uses the address of the aligned word as a key.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count);
    }
}

/// What an OFD lock probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockProbe {
    Free,
    /// Some open file description holds a lock that starts at this byte.
    HeldAt(u64),
}

fn flock_struct(kind: libc::c_int, start: u64, len: u64) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start as libc::off_t;
    fl.l_len = len as libc::off_t;
    fl
}

/// Tries to take an exclusive OFD lock on bytes `[start, start+len)`; `false` if it is held.
///
/// OFD locks belong to the open file description: the kernel drops them when the last
/// descriptor for it closes, including when the process is killed.
pub fn ofd_try_lock(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<bool> {
    let mut fl = flock_struct(libc::F_WRLCK, start, len);
    // SAFETY: F_OFD_SETLK with a pointer to a valid, initialised flock struct.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

/// Releases an OFD lock taken with [`ofd_try_lock`] on the same range.
pub fn ofd_unlock(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<()> {
    let mut fl = flock_struct(libc::F_UNLCK, start, len);
    // SAFETY: F_OFD_SETLK with a pointer to a valid, initialised flock struct.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks whether any other open file description holds a lock on `[start, start+len)`.
///
/// One system call and nothing taken. Locks held through `fd` itself never conflict, so probe
/// through a descriptor that holds none.
pub fn ofd_probe(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<LockProbe> {
    let mut fl = flock_struct(libc::F_WRLCK, start, len);
    // SAFETY: F_OFD_GETLK with a pointer to a valid flock struct, which the kernel fills in.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if fl.l_type == libc::F_UNLCK as libc::c_short {
        Ok(LockProbe::Free)
    } else {
        Ok(LockProbe::HeldAt(fl.l_start as u64))
    }
}

/// How many datagrams the kernel has dropped on socket `fd` since it was created (`sk_drops`,
/// from `SO_MEMINFO`): those that found its receive buffer full, among others. Cumulative and
/// per socket; it wraps at `u32::MAX`.
///
/// Unlike the `SO_RXQ_OVFL` ancillary data, which a datagram only carries if it was queued
/// after the drops, this is current even when no datagram follows them.
pub fn socket_drops(fd: BorrowedFd<'_>) -> io::Result<u32> {
    // Not in the `libc` crate's Linux exports yet (Linux 4.6, include/uapi/asm-generic/socket.h).
    #[cfg(not(target_arch = "sparc64"))]
    const SO_MEMINFO: libc::c_int = 55;
    #[cfg(target_arch = "sparc64")]
    const SO_MEMINFO: libc::c_int = 0x0039;
    let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: SO_MEMINFO writes at most `len` bytes of u32 values into `info`, which is that
    // large, and stores the length it wrote in `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let at = libc::SK_MEMINFO_DROPS as usize;
    if (len as usize) < (at + 1) * std::mem::size_of::<u32>() {
        return Err(io::Error::from(io::ErrorKind::Unsupported));
    }
    Ok(info[at])
}

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

/// Waits until one of `fds` is readable (or `timeout` passes); returns which, as a bit mask.
///
/// At most 64 descriptors.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<u64> {
    assert!(
        fds.len() <= 64,
        "poll_readable takes at most 64 descriptors"
    );
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Rounded up: a 0.4 ms remainder must still wait, not spin.
    let ms = timeout.map_or(-1, |t| {
        t.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
    });
    // SAFETY: `pollfds` is a valid array of `fds.len()` initialised pollfd structs that lives
    // across the call; the descriptors are borrowed, so they stay open.
    let rc = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pollfds
        .iter()
        .enumerate()
        .filter(|(_, p)| p.revents != 0)
        .fold(0u64, |mask, (i, _)| mask | (1 << i)))
}

/// Waits up to `timeout` for `fd` to become readable or hung up; `Ok(false)` on timeout, and
/// `Ok(true)` when a signal cut the wait short (the caller looks again either way).
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    match poll_readable(&[fd], timeout) {
        Ok(mask) => Ok(mask != 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
        Err(e) => Err(e),
    }
}

/// Registers a server's doorbell with tokio's reactor (feature `tokio`).
#[cfg(feature = "tokio")]
pub fn register_async(
    server: crate::server::Server,
) -> io::Result<tokio::io::unix::AsyncFd<crate::server::Server>> {
    // SAFETY: the descriptor is the server's doorbell socket, owned by the server and closed
    // only when the server drops, which the AsyncFd owns until it is dropped or
    // `into_inner` returns it; `as_raw_fd` always returns that same descriptor.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(server, tokio::io::Interest::READABLE)
    }
    .map_err(io::Error::from)
}
