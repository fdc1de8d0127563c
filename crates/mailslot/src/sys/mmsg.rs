//! Receiving a batch of UDP datagrams in one system call (`recvmmsg`).
//!
//! The network role's receive loop costs what its system calls cost: one `recvmmsg` for up to
//! [`RecvBatch::capacity`] datagrams replaces one `recvmsg` each.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Most datagrams one [`RecvBatch`] holds.
pub const MAX_BATCH: usize = 64;

/// Buffers for up to `count` datagrams of at most `slot` bytes each, and what the last
/// [`recv`](RecvBatch::recv) put in them.
///
/// The buffers are allocated zeroed and untouched, so only the pages the kernel writes into
/// become resident: 64 slots of 64 KiB cost 4 MiB of address space, and about one page per
/// slot of memory for small datagrams.
#[derive(Debug)]
pub struct RecvBatch {
    slot: usize,
    bufs: Vec<u8>,
    /// Per datagram of the last receive: bytes stored, truncated, source.
    got: Vec<(usize, bool, SocketAddrV4)>,
}

impl RecvBatch {
    /// Room for `count` (at most [`MAX_BATCH`]) datagrams of up to `slot` bytes.
    pub fn new(count: usize, slot: usize) -> RecvBatch {
        let count = count.clamp(1, MAX_BATCH);
        RecvBatch {
            slot,
            bufs: vec![0u8; count * slot],
            got: Vec::with_capacity(count),
        }
    }

    /// How many datagrams one receive takes at most.
    pub fn capacity(&self) -> usize {
        self.bufs.len() / self.slot
    }

    /// How many datagrams the last receive took.
    pub fn count(&self) -> usize {
        self.got.len()
    }

    /// Datagram `i` of the last receive: its bytes (cut to the slot), whether it was larger
    /// than the slot (`MSG_TRUNC`), and its source address.
    pub fn get(&self, i: usize) -> (&[u8], bool, SocketAddrV4) {
        let (len, truncated, from) = self.got[i];
        let at = i * self.slot;
        (&self.bufs[at..at + len.min(self.slot)], truncated, from)
    }

    /// Of the last receive: how many datagrams were not empty, and how many empty ones came
    /// after the last that was not (what [`discard`] must remove of a peeked batch).
    pub fn peeked_shape(&self) -> (usize, usize) {
        let non_empty = self.got.iter().filter(|g| g.0 > 0).count();
        let trailing = self.got.iter().rev().take_while(|g| g.0 == 0).count();
        (non_empty, trailing)
    }

    /// Takes what is queued on the IPv4 UDP socket `fd`, up to [`capacity`](Self::capacity)
    /// datagrams, without waiting (`MSG_DONTWAIT`); returns how many (0 when nothing is
    /// queued). An error (other than `EAGAIN`) is the socket's, e.g. a queued ICMP error.
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.take(fd, libc::MSG_DONTWAIT)
    }

    /// Like [`recv`](Self::recv), but the datagrams stay queued: a reader that dies before
    /// [`discard`](Self::discard)ing them leaves them to the next reader of the socket.
    ///
    /// The socket's peek offset must be on ([`set_peek_offset`]): each datagram of the batch
    /// is then the one after the last peeked, not the head of the queue again.
    pub fn peek(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        // MSG_TRUNC: the offset moves past a datagram larger than its slot, not into it.
        self.take(fd, libc::MSG_DONTWAIT | libc::MSG_PEEK | libc::MSG_TRUNC)
    }

    fn take(&mut self, fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<usize> {
        self.got.clear();
        let count = self.capacity();
        // SAFETY: all-zero bytes are a valid value of these plain C structs (null pointers,
        // zero lengths).
        let mut addrs: [libc::sockaddr_in; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let base = self.bufs.as_mut_ptr();
        for i in 0..count {
            iovs[i] = libc::iovec {
                // SAFETY: `i * slot + slot <= bufs.len()`, so the offset stays inside `bufs`.
                iov_base: unsafe { base.add(i * self.slot) }.cast(),
                iov_len: self.slot,
            };
            hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_in).cast();
            hdrs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `hdrs[..count]` point at `count` iovecs over disjoint, writable slots of
        // `bufs` and at `count` sockaddr_in of the stated length, all of which outlive the
        // call.
        let n = unsafe { recvmmsg(fd, &mut hdrs[..count], flags) }?;
        for (hdr, addr) in hdrs.iter().zip(addrs.iter()).take(n) {
            let from = if addr.sin_family == libc::AF_INET as libc::sa_family_t {
                SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
                    u16::from_be(addr.sin_port),
                )
            } else {
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)
            };
            let truncated = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.got.push((hdr.msg_len as usize, truncated, from));
        }
        Ok(n)
    }
}

/// What a [`discard`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Discarded {
    pub total: usize,
    /// Of which empty (zero-length) datagrams.
    pub empty: usize,
}

/// Removes the first `n` datagrams queued on the UDP socket `fd` without copying them (those a
/// [`RecvBatch::peek`] returned, once they are delivered); says how many were removed, fewer
/// when the queue ran out. An error is returned only if none was removed.
///
/// An empty datagram that one reader peeked is hidden from the peeks of the next reader that
/// resets the offset (the kernel skips a zero-length datagram it has peeked before), but not
/// from removal: so a successor counts only the non-empty ones (see
/// [`RecvBatch::peeked_shape`]) and removes hidden ones at the head with [`drop_hidden_empty`].
pub fn discard(fd: BorrowedFd<'_>, n: usize) -> io::Result<Discarded> {
    let mut done = Discarded::default();
    while done.total < n {
        let count = (n - done.total).min(MAX_BATCH);
        // SAFETY: all-zero bytes are a valid value of this plain C struct: no name, no iovec,
        // no control buffer, so the kernel writes only the lengths and flags.
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // MSG_TRUNC: each datagram moves the peek offset back by its whole length, and
        // `msg_len` is that length.
        let flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC;
        // SAFETY: the headers describe no buffers at all; they outlive the call.
        let got = match unsafe { recvmmsg(fd, &mut hdrs[..count], flags) } {
            Ok(got) => got,
            Err(e) if done.total == 0 => return Err(e),
            Err(_) => break,
        };
        if got == 0 {
            break;
        }
        done.total += got;
        done.empty += hdrs[..got].iter().filter(|h| h.msg_len == 0).count();
    }
    Ok(done)
}

/// Removes the empty datagrams at the head of the queue that earlier peeks hid (see
/// [`discard`]); returns how many. Leaves the peek offset on, at 0: call it only with nothing
/// peeked and not removed.
pub fn drop_hidden_empty(fd: BorrowedFd<'_>) -> io::Result<usize> {
    // With the offset off, a peek sees the head whatever was peeked before.
    set_peek_offset(fd, -1)?;
    let mut dropped = 0;
    let result = loop {
        match recv_len(fd, libc::MSG_PEEK) {
            Ok(Some(0)) => match recv_len(fd, 0) {
                Ok(_) => dropped += 1,
                Err(e) => break Err(e),
            },
            Ok(_) => break Ok(dropped),
            Err(e) => break Err(e),
        }
    };
    set_peek_offset(fd, 0)?;
    result
}

/// The length of the datagram at the head of the queue (`MSG_TRUNC`, nothing copied), taken
/// off unless `flags` has `MSG_PEEK`; `None` when nothing is queued.
fn recv_len(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: a zero-length read into a null buffer: the kernel writes nothing.
        let rc = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                flags | libc::MSG_TRUNC | libc::MSG_DONTWAIT,
            )
        };
        if rc >= 0 {
            return Ok(Some(rc as usize));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// Turns the socket's peek offset on and sets it to `offset` bytes from the head of its queue
/// (`SO_PEEK_OFF`). The offset belongs to the socket, shared by every descriptor of it: a new
/// reader of a socket sets it to 0, so that it starts with the first datagram queued.
pub fn set_peek_offset(fd: BorrowedFd<'_>, offset: i32) -> io::Result<()> {
    // SAFETY: SO_PEEK_OFF reads one c_int from the pointer, which is valid for its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEEK_OFF,
            (&offset as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `recvmmsg` without waiting beyond `flags`, retried on `EINTR`; `Ok(0)` for `EAGAIN`.
///
/// # Safety
/// Every header's name, iovec and control pointers, with their lengths, must describe memory
/// that is valid for writes and outlives the call.
unsafe fn recvmmsg(
    fd: BorrowedFd<'_>,
    hdrs: &mut [libc::mmsghdr],
    flags: libc::c_int,
) -> io::Result<usize> {
    loop {
        // SAFETY: the caller vouches for the headers; the timeout is null (MSG_DONTWAIT
        // returns at once).
        let rc = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                hdrs.len() as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(0),
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn takes_what_is_queued_in_order_with_sources_and_truncation() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut batch = RecvBatch::new(4, 16);
        assert_eq!(batch.recv(rx.as_fd()).unwrap(), 0);
        for i in 0..6u8 {
            tx.send_to(&vec![i; 10 + i as usize], to).unwrap();
        }
        let n = batch.recv(rx.as_fd()).unwrap();
        assert!((1..=4).contains(&n), "{n}");
        let std::net::SocketAddr::V4(src) = tx.local_addr().unwrap() else {
            panic!()
        };
        let mut next = 0u8;
        let check = |batch: &RecvBatch, next: &mut u8| {
            for i in 0..batch.count() {
                let (bytes, truncated, from) = batch.get(i);
                assert_eq!(from, src);
                let want = 10 + *next as usize;
                assert_eq!(truncated, want > 16, "datagram {next}");
                assert_eq!(bytes, &vec![*next; want.min(16)][..]);
                *next += 1;
            }
        };
        check(&batch, &mut next);
        while next < 6 {
            assert!(batch.recv(rx.as_fd()).unwrap() > 0);
            check(&batch, &mut next);
        }
        assert_eq!(batch.recv(rx.as_fd()).unwrap(), 0);
    }

    /// The contract the network role's takeover rests on: peeked datagrams stay queued, a
    /// batch of peeks walks the queue, `discard` removes exactly what was peeked, and a new
    /// reader that resets the offset sees what its predecessor peeked but did not discard.
    #[test]
    fn peeks_walk_the_queue_and_discard_removes_what_was_peeked() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        set_peek_offset(rx.as_fd(), 0).unwrap();
        let mut batch = RecvBatch::new(3, 16);
        // Datagram 1 is larger than its slot: the offset must still move past all of it.
        for i in 0..5u8 {
            tx.send_to(&vec![i; if i == 1 { 40 } else { 8 }], to)
                .unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let firsts = |b: &RecvBatch| (0..b.count()).map(|i| b.get(i).0[0]).collect::<Vec<_>>();
        assert_eq!(batch.peek(rx.as_fd()).unwrap(), 3);
        assert_eq!(firsts(&batch), [0, 1, 2]);
        assert!(batch.get(1).1, "the large one is marked truncated");
        // The reader "dies" here; its successor starts at the head again.
        set_peek_offset(rx.as_fd(), 0).unwrap();
        assert_eq!(batch.peek(rx.as_fd()).unwrap(), 3);
        assert_eq!(firsts(&batch), [0, 1, 2]);
        assert_eq!(discard(rx.as_fd(), 3).unwrap().total, 3);
        assert_eq!(batch.peek(rx.as_fd()).unwrap(), 2);
        assert_eq!(firsts(&batch), [3, 4]);
        assert_eq!(batch.peek(rx.as_fd()).unwrap(), 0, "all peeked");
        assert_eq!(discard(rx.as_fd(), 2).unwrap().total, 2);
        tx.send_to(&[9u8; 4], to).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(batch.recv(rx.as_fd()).unwrap(), 1);
        assert_eq!(firsts(&batch), [9]);
        assert_eq!(discard(rx.as_fd(), 1).unwrap().total, 0, "nothing left");
    }

    /// The kernel hides a peeked empty datagram from the next reader's peeks, not from removal:
    /// what `peeked_shape`, `discard` and `drop_hidden_empty` are for.
    #[test]
    fn a_peeked_empty_datagram_is_hidden_from_the_next_reader_and_dropped() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        set_peek_offset(rx.as_fd(), 0).unwrap();
        for d in [&[][..], &[1], &[], &[2], &[]] {
            tx.send_to(d, to).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut batch = RecvBatch::new(8, 16);
        assert_eq!(batch.peek(rx.as_fd()).unwrap(), 5);
        assert_eq!(batch.peeked_shape(), (2, 1));
        // A successor: the three empty ones are hidden now.
        set_peek_offset(rx.as_fd(), 0).unwrap();
        assert_eq!(batch.peek(rx.as_fd()).unwrap(), 2);
        assert_eq!(batch.peeked_shape(), (2, 0));
        let firsts = (0..2).map(|i| batch.get(i).0[0]).collect::<Vec<_>>();
        assert_eq!(firsts, [1, 2]);
        // Removing two takes the empty one in front: counted, so the caller asks for more,
        // until both non-empty ones are off.
        let d = discard(rx.as_fd(), 2).unwrap();
        assert_eq!((d.total, d.empty), (2, 1));
        let d = discard(rx.as_fd(), 1).unwrap();
        assert_eq!((d.total, d.empty), (1, 1));
        let d = discard(rx.as_fd(), 1).unwrap();
        assert_eq!((d.total, d.empty), (1, 0));
        // The hidden empty one left at the head: readable, yet nothing to peek.
        assert_eq!(batch.peek(rx.as_fd()).unwrap(), 0);
        assert_eq!(drop_hidden_empty(rx.as_fd()).unwrap(), 1);
        assert_eq!(drop_hidden_empty(rx.as_fd()).unwrap(), 0);
        assert_eq!(batch.recv(rx.as_fd()).unwrap(), 0, "nothing left");
        tx.send_to(&[3], to).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(batch.peek(rx.as_fd()).unwrap(), 1, "the offset is on, at 0");
    }
}
