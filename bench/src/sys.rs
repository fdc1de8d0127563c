//! Every system call of the bench that needs `unsafe`, each behind a small safe wrapper: CPU
//! usage, the monotonic clock as a number other processes can compare, CPU pinning, a futex on
//! a shared mapping and eventfds (the bare baselines of the latency scenario).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU32;

/// CPU time and context switches of this process so far (`getrusage(RUSAGE_SELF)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub user_ns: u64,
    pub sys_ns: u64,
    /// Voluntary context switches: the process slept (a blocking wait that really blocked).
    pub vcsw: u64,
    /// Involuntary context switches: the process was preempted.
    pub ivcsw: u64,
}

impl Usage {
    pub fn now() -> Usage {
        // SAFETY: `rusage` is a plain C struct for which all-zero is valid; getrusage fills it
        // in and only reads the `who` constant.
        let ru = unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut ru);
            ru
        };
        let ns = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000;
        Usage {
            user_ns: ns(ru.ru_utime),
            sys_ns: ns(ru.ru_stime),
            vcsw: ru.ru_nvcsw as u64,
            ivcsw: ru.ru_nivcsw as u64,
        }
    }

    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            user_ns: self.user_ns.saturating_sub(earlier.user_ns),
            sys_ns: self.sys_ns.saturating_sub(earlier.sys_ns),
            vcsw: self.vcsw.saturating_sub(earlier.vcsw),
            ivcsw: self.ivcsw.saturating_sub(earlier.ivcsw),
        }
    }

    pub fn add(self, other: Usage) -> Usage {
        Usage {
            user_ns: self.user_ns + other.user_ns,
            sys_ns: self.sys_ns + other.sys_ns,
            vcsw: self.vcsw + other.vcsw,
            ivcsw: self.ivcsw + other.ivcsw,
        }
    }

    pub fn cpu_ns(&self) -> u64 {
        self.user_ns + self.sys_ns
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for all processes of the host, so a writer's
/// start and a reader's end can be subtracted.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Pins the calling process (its only thread) to one CPU.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is a plain bit set for which all-zero is valid (empty); CPU_SET
    // writes one bit of it (cpu < CPU_SETSIZE is checked first); sched_setaffinity reads
    // `size_of` bytes of it.
    let rc = unsafe {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A shared (`MAP_SHARED`) mapping of a small file holding futex words, unmapped on drop.
#[derive(Debug)]
pub struct SharedWords {
    ptr: *mut AtomicU32,
    words: usize,
}

impl SharedWords {
    /// Maps the first `words` 32-bit words of `file` (which must be at least that long).
    pub fn map(file: &File, words: usize) -> io::Result<SharedWords> {
        let len = words * 4;
        if len == 0 || file.metadata()?.len() < len as u64 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL) of a descriptor we own, of
        // a length the file has (checked); checked for MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedWords {
            ptr: ptr.cast(),
            words,
        })
    }

    /// The word at `index`.
    pub fn word(&self, index: usize) -> &AtomicU32 {
        assert!(index < self.words, "futex word {index} out of range");
        // SAFETY: in bounds (checked); page-aligned mapping so every word is 4-byte aligned;
        // the mapping lives as long as `self`, which bounds the reference; AtomicU32 has the
        // layout of u32 and tolerates concurrent access from other processes.
        unsafe { &*self.ptr.add(index) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: exactly the range mmap returned; no reference outlives `self`.
        unsafe {
            libc::munmap(self.ptr.cast(), self.words * 4);
        }
    }
}

/// Sleeps while `word` holds `expected` (a shared futex, so another process can wake it).
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word`, which stays mapped for the call;
    // no timeout (null pointer).
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

/// Wakes one process sleeping on `word`.
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address of the aligned word as a key.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1);
    }
}

/// A new blocking eventfd that child processes inherit (no `EFD_CLOEXEC`).
pub fn eventfd_inheritable() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; the result is checked before it is owned.
    let fd = unsafe { libc::eventfd(0, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by eventfd, is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Takes ownership of a descriptor a parent passed down by number.
///
/// The caller names a descriptor it inherited and that nothing else in this process uses; a
/// wrong number makes later reads and writes fail, not corrupt memory.
pub fn inherited_fd(fd: RawFd) -> io::Result<File> {
    // SAFETY: F_GETFD only checks that `fd` is open; it reads no memory.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked) and was inherited for this process's sole use, so
    // owning it (and closing it on drop) cannot invalidate anyone else's descriptor.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Blocks until this open file description holds an exclusive `flock` on `file` (released by
/// the kernel when the last descriptor of it closes, e.g. when the process dies).
pub fn flock_exclusive(file: &File) -> io::Result<()> {
    loop {
        // SAFETY: flock takes a descriptor we own (borrowed for the call) and no pointers.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Makes the kernel SIGKILL this process when its parent dies, so children of an interrupted
/// run (Ctrl-C, a timeout killing the orchestrator) never linger, whatever they block in.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number by value; no pointers.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // The parent may have died before the call: then we were re-parented already.
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } == 1 {
        return Err(io::Error::other("the parent is already gone"));
    }
    Ok(())
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Asks for a receive buffer of `bytes` on a socket (`SO_RCVBUF`; the kernel caps the request
/// at `net.core.rmem_max` and doubles it for its own bookkeeping) and returns what it granted,
/// as `getsockopt(SO_RCVBUF)` reports it (the doubled value).
pub fn set_rcvbuf(socket: &impl AsRawFd, bytes: usize) -> io::Result<usize> {
    let value = libc::c_int::try_from(bytes).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: setsockopt reads exactly `size_of::<c_int>()` bytes from a live local; the
    // descriptor is borrowed from an open socket for the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    rcvbuf(socket)
}

/// The receive buffer the kernel granted a socket (`getsockopt(SO_RCVBUF)`).
pub fn rcvbuf(socket: &impl AsRawFd) -> io::Result<usize> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live local `value` and updates
    // `len`; the descriptor is borrowed from an open socket for the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(value).unwrap_or(0))
}
