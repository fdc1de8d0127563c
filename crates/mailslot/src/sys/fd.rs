//! Waiting on descriptors, a socket's drop counter, and tokio registration.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

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
