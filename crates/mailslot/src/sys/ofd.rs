//! Open file description (OFD) byte-range locks: liveness the kernel releases on death.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

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
