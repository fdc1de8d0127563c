//! The holder's handoff server and its clients: other local processes send datagrams from the
//! role's port through the holder, so that replies to them (which go to the source port) reach
//! this host's role; and waiting candidates take a duplicate of the holder's bound sockets, so
//! that the sockets outlive the holder.
//!
//! # The sockets outlive their holder
//!
//! A bound UDP socket is one open file description; every process with a descriptor of it
//! keeps it bound, and the kernel keeps queueing datagrams on it whoever reads. A candidate
//! asks the holder for its sockets when it starts waiting (`SCM_RIGHTS` over the handoff
//! socket, which is in the user's own 0700 runtime directory, and only for a peer of the same
//! user id), and keeps them while it waits. When the holder dies, `kill -9` included, the port
//! stays bound: what arrives queues on the socket until the successor, granted the lock,
//! reads it from the same socket. Only the duty to read moves, and nothing is lost in the gap,
//! nor the batch the holder was delivering when it died (see `pending`).

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::codec::parse_mailslot_datagram;
use super::config::NetConfig;
use super::error::NetError;
use super::state::Counters;
use crate::sys::fdpass;

/// Handoff requests: at most this many datagrams, each at most a UDP payload.
const HANDOFF_MAX_ITEMS: usize = 64;
const HANDOFF_MAGIC: &[u8; 4] = b"MSH1";
/// A request for duplicates of the holder's sockets (see the module documentation).
const SOCKETS_MAGIC: &[u8; 4] = b"MSS1";
/// A candidate waits this long for the holder's sockets at most (a stopped holder answers
/// nothing; the candidate then binds as it would have without them).
const SOCKETS_TIMEOUT: Duration = Duration::from_millis(500);
const HANDOFF_IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends datagrams for other local processes from the role's port, so that replies to them
/// (which go to the source port) reach this host's role.
///
/// Protocol on a Unix stream socket `<dir>/network-<port>.sock`: the client writes
/// `"MSH1"`, a count (u8, at most 64), then per datagram `IPv4 (4), port (2, BE), length (2, BE),
/// bytes`; the server answers one status byte (0 sent, 1 failed) followed by a UTF-8 reason,
/// and closes. Only well-formed unfragmented mailslot datagrams are sent.
///
/// A candidate writes `"MSS1"` and a zero byte instead; the server answers one byte, the
/// number of descriptors attached (`SCM_RIGHTS`): the datagram socket, then the name-service
/// socket if there is one. Only to a peer of our own user id.
pub(crate) struct HandoffServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl HandoffServer {
    /// `shared` is set once a candidate has taken duplicates of the sockets.
    pub(crate) fn start(
        config: &NetConfig,
        udp: Arc<UdpSocket>,
        ns: Option<UdpSocket>,
        counters: Arc<Counters>,
        shared: Arc<AtomicBool>,
    ) -> Option<HandoffServer> {
        let path = config.handoff_path();
        // We hold the lock: any socket file here is a dead holder's.
        let _ = fs::remove_file(&path);
        let listener = UnixListener::bind(&path).ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let port = config.port;
        let thread = thread::Builder::new()
            .name("mailslot-net-handoff".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::Acquire) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let _ = serve_handoff(conn, &udp, ns.as_ref(), port, &counters, &shared);
                    }
                }
            })
            .ok()?;
        Some(HandoffServer { path, stop, thread })
    }

    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        // Wake the blocking accept.
        let _ = UnixStream::connect(&self.path);
        let _ = fs::remove_file(&self.path);
        let _ = self.thread.join();
    }
}

fn serve_handoff(
    mut conn: UnixStream,
    udp: &UdpSocket,
    ns: Option<&UdpSocket>,
    port: u16,
    counters: &Counters,
    shared: &AtomicBool,
) -> io::Result<()> {
    conn.set_read_timeout(Some(HANDOFF_IO_TIMEOUT))?;
    conn.set_write_timeout(Some(HANDOFF_IO_TIMEOUT))?;
    let mut head = [0u8; 5];
    conn.read_exact(&mut head)?;
    if &head[..4] == SOCKETS_MAGIC {
        // The directory is the user's own (0700); the user id check is a second lock.
        let peer = fdpass::peer_creds(conn.as_fd())?;
        let mut fds = Vec::new();
        if peer.uid == crate::sys::current_uid() {
            // Before the candidate has them: from now on the holder reads as one that may die
            // with a batch in hand and be succeeded.
            shared.store(true, Ordering::Release);
            fds.push(udp.as_fd());
            fds.extend(ns.map(|s| s.as_fd()));
        }
        return fdpass::send_packet(conn.as_fd(), &[fds.len() as u8], &fds, false);
    }
    let reply = |conn: &mut UnixStream, ok: bool, msg: &str| -> io::Result<()> {
        let mut out = vec![if ok { 0 } else { 1 }];
        out.extend_from_slice(msg.as_bytes());
        conn.write_all(&out)
    };
    if &head[..4] != HANDOFF_MAGIC || head[4] as usize > HANDOFF_MAX_ITEMS {
        return reply(&mut conn, false, "bad handoff request");
    }
    let mut items = Vec::with_capacity(head[4] as usize);
    for _ in 0..head[4] {
        let mut h = [0u8; 8];
        conn.read_exact(&mut h)?;
        let ip = Ipv4Addr::new(h[0], h[1], h[2], h[3]);
        let dport = u16::from_be_bytes([h[4], h[5]]);
        let len = u16::from_be_bytes([h[6], h[7]]) as usize;
        let mut d = vec![0u8; len];
        conn.read_exact(&mut d)?;
        if dport != port || parse_mailslot_datagram(&d).is_err() {
            return reply(&mut conn, false, "not a mailslot datagram for this port");
        }
        items.push((SocketAddrV4::new(ip, dport), d));
    }
    for (dest, d) in &items {
        if let Err(e) = send_blocking(udp, d, *dest) {
            return reply(&mut conn, false, &format!("sending to {dest}: {e}"));
        }
        Counters::bump(&counters.sent_handoff);
    }
    reply(&mut conn, true, "")
}

/// `send_to` on a socket that may be in non-blocking mode (the role's): wait for room.
pub(crate) fn send_blocking(sock: &UdpSocket, data: &[u8], dest: SocketAddrV4) -> io::Result<()> {
    for _ in 0..50 {
        match sock.send_to(data, dest) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(100u8));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "socket send buffer stayed full",
    ))
}

/// Duplicates of the holder's bound sockets.
#[derive(Debug)]
pub(crate) struct Standby {
    pub(crate) udp: UdpSocket,
    pub(crate) ns: Option<UdpSocket>,
}

/// Asks the holder listening at `path` for its sockets; `None` when nobody answers (no holder
/// yet, a holder via the host service, a stopped one).
pub(crate) fn request_sockets(path: &Path) -> Option<Standby> {
    let mut conn = UnixStream::connect(path).ok()?;
    conn.set_read_timeout(Some(SOCKETS_TIMEOUT)).ok()?;
    conn.set_write_timeout(Some(SOCKETS_TIMEOUT)).ok()?;
    let mut req = SOCKETS_MAGIC.to_vec();
    req.push(0);
    conn.write_all(&req).ok()?;
    let mut buf = [0u8; 8];
    let packet = fdpass::recv_packet(conn.as_fd(), &mut buf, false).ok()?;
    let mut fds = packet.fds.into_iter().map(UdpSocket::from);
    let udp = fds.next()?;
    Some(Standby {
        udp,
        ns: fds.next(),
    })
}

/// Client side of the handoff. `Ok(false)` when no holder listens (use another path).
pub(crate) fn handoff(path: &Path, items: &[(SocketAddrV4, Vec<u8>)]) -> Result<bool, NetError> {
    let Ok(mut conn) = UnixStream::connect(path) else {
        return Ok(false);
    };
    let io_err = |e| NetError::io("handing the datagram to the network role holder", e);
    conn.set_read_timeout(Some(HANDOFF_IO_TIMEOUT))
        .map_err(io_err)?;
    conn.set_write_timeout(Some(HANDOFF_IO_TIMEOUT))
        .map_err(io_err)?;
    let mut req = Vec::new();
    req.extend_from_slice(HANDOFF_MAGIC);
    req.push(items.len().min(HANDOFF_MAX_ITEMS) as u8);
    for (dest, d) in items.iter().take(HANDOFF_MAX_ITEMS) {
        req.extend_from_slice(&dest.ip().octets());
        req.extend_from_slice(&dest.port().to_be_bytes());
        req.extend_from_slice(&(d.len() as u16).to_be_bytes());
        req.extend_from_slice(d);
    }
    conn.write_all(&req).map_err(io_err)?;
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp).map_err(io_err)?;
    match resp.first() {
        Some(0) => Ok(true),
        Some(_) => Err(NetError::unavailable(format!(
            "the network role holder could not send: {}",
            String::from_utf8_lossy(&resp[1..])
        ))),
        // The holder went away mid-request.
        None => Ok(false),
    }
}
