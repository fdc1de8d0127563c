//! Packet sockets between the host service and its clients: descriptors passed with
//! `SCM_RIGHTS`, the kernel's credentials of a connection's peer (`SO_PEERCRED`,
//! `SO_PEERGROUPS`), sealed memfds and their read-only reopening.

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{
    self, recvmsg, sendmsg, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
};
use socket2::{Domain, SockAddr, Socket, Type};

/// Who sent a packet or holds the other end of a connection, as the kernel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creds {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One received packet.
#[derive(Debug)]
pub struct Packet {
    /// Bytes stored in the caller's buffer; 0 with `eof` when the peer closed.
    pub len: usize,
    /// The packet was larger than the buffer (the rest is gone).
    pub truncated: bool,
    pub eof: bool,
    pub fds: Vec<OwnedFd>,
}

/// Most descriptors accepted in one packet; more are closed at once.
const MAX_FDS: usize = 4;

/// A `SOCK_SEQPACKET` listener bound at `path` (which must not exist).
pub fn seqpacket_listen(path: &Path) -> io::Result<Socket> {
    let socket = Socket::new(Domain::UNIX, Type::SEQPACKET.cloexec(), None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(128)?;
    Ok(socket)
}

/// A `SOCK_SEQPACKET` connection to the listener at `path`.
pub fn seqpacket_connect(path: &Path) -> io::Result<Socket> {
    let socket = Socket::new(Domain::UNIX, Type::SEQPACKET.cloexec(), None)?;
    socket.connect(&SockAddr::unix(path)?)?;
    Ok(socket)
}

/// The credentials of the process at the other end of a connected socket (at connect time).
pub fn peer_creds(fd: BorrowedFd<'_>) -> io::Result<Creds> {
    let cred = socket::getsockopt(&fd, sockopt::PeerCredentials).map_err(io::Error::from)?;
    Ok(Creds {
        pid: cred.pid() as u32,
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

/// The supplementary groups of the process at the other end (at connect time).
pub fn peer_groups(fd: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    const SO_PEERGROUPS: libc::c_int = 59;
    let mut groups = vec![0u32; 64];
    loop {
        let mut len = (groups.len() * 4) as libc::socklen_t;
        // SAFETY: the buffer is `len` bytes of writable, u32-aligned memory that outlives the
        // call; the kernel writes at most `len` bytes and stores the size it needs in `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc == 0 {
            groups.truncate(len as usize / 4);
            return Ok(groups);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ERANGE) && (len as usize / 4) > groups.len() {
            groups.resize(len as usize / 4, 0);
            continue;
        }
        return Err(err);
    }
}

/// Sends one packet with `fds` attached. `MSG_NOSIGNAL`: a closed peer is `EPIPE`, never a
/// signal.
pub fn send_packet(
    fd: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
    nonblocking: bool,
) -> io::Result<()> {
    let iov = [IoSlice::new(data)];
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
    let mut flags = MsgFlags::MSG_NOSIGNAL;
    if nonblocking {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    loop {
        match sendmsg::<()>(fd.as_raw_fd(), &iov, cmsgs, flags, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one packet into `buf`, with its descriptors.
pub fn recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8], nonblocking: bool) -> io::Result<Packet> {
    // Room for credentials too: a sender may attach them, and a control buffer too small for
    // what came would lose the descriptors.
    let mut space = nix::cmsg_space!(libc::ucred, [RawFd; MAX_FDS]);
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if nonblocking {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(fd.as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Ok(msg) => break msg,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut packet = Packet {
        len: msg.bytes,
        truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
        eof: msg.bytes == 0,
        fds: Vec::new(),
    };
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                for fd in raw {
                    // SAFETY: the kernel just installed `fd` in our table for this packet
                    // (MSG_CMSG_CLOEXEC); nothing else owns it, so it becomes owned here and
                    // is closed on drop if unused.
                    packet.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
    }
    // An empty packet with descriptors is not the end of the connection.
    if packet.len == 0 && !packet.fds.is_empty() {
        packet.eof = false;
    }
    Ok(packet)
}

/// A sealed memfd of `size` bytes, all of it allocated now (so that a full memory cgroup or
/// tmpfs fails here, with an error, and never later with SIGBUS), that can never shrink or
/// grow. Returns the read-write descriptor.
pub fn sealed_memfd(name: &str, size: u64) -> io::Result<File> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let file = File::from(fd);
    // A memfd is created mode 0777: anyone holding a read-only descriptor could reopen it
    // read-write through /proc/PID/fd. Only its owner (the service) may open it at all.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.set_len(size)?;
    nix::fcntl::fallocate(
        &file,
        nix::fcntl::FallocateFlags::empty(),
        0,
        size as libc::off_t,
    )?;
    fcntl(
        &file,
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL,
        ),
    )?;
    Ok(file)
}

/// A new read-only open file description of `file` (through `/proc/self/fd`): what a
/// process that receives it can map, it can map for reading only, and it cannot write,
/// truncate or seal the file through it.
pub fn reopen_read_only(file: &File) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
}
