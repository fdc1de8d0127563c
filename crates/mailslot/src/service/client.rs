//! The clients' side of the host service: a global reader instance and a global writer.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use socket2::Socket;

use super::proto::{self, OpenReader, Reply, Request};
use super::submit::{self, Submit};
use super::{global_dir, SOCKET_NAME};
use crate::error::{Error, ErrorKind};
use crate::name::MailslotName;
use crate::registry::MailslotStatus;
use crate::ring::Ring;
use crate::sys::{self, fdpass};

/// How long a client waits for the service to answer an open, a flush or a status question,
/// and for room in its socket when writing.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a reader whose service went away looks for a new one.
const RECONNECT_INTERVAL: Duration = Duration::from_millis(100);

/// The longest a blocking reader sleeps before it asks its connection whether the service
/// still lives (a futex says nothing about that).
const LIVENESS_WAIT: Duration = Duration::from_millis(500);

/// How often a blocking reader tells the service its counters (for `status`).
const REPORT_INTERVAL: Duration = Duration::from_millis(100);

fn unavailable(dir: &Path, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::ServiceUnavailable,
        format!(
            "the host service is not running ({why}); global names need it: start it with \
             `systemctl start mailslot` or `mailslot serve --system` as root (directory {}, \
             MAILSLOT_GLOBAL_DIR relocates it)",
            dir.display()
        ),
    )
}

/// Connects to the service of `dir`, after checking that nobody but the service can have
/// put the socket there.
fn connect(dir: &Path) -> Result<Socket, Error> {
    crate::scope::refuse_symlink(dir, "the global directory")?;
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(unavailable(dir, "no global directory"))
        }
        Err(e) => return Err(Error::io(format!("cannot inspect {}", dir.display()), e)),
    };
    if !meta.is_dir() || meta.mode() & 0o022 != 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "refusing the global directory {}: it is not a directory that only the host \
                 service can write (mode {:o}, owner uid {})",
                dir.display(),
                meta.mode() & 0o7777,
                meta.uid()
            ),
        ));
    }
    let conn = match fdpass::seqpacket_connect(&dir.join(SOCKET_NAME)) {
        Ok(conn) => conn,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::ECONNREFUSED | libc::ENOTSOCK)
            ) =>
        {
            return Err(unavailable(dir, e))
        }
        Err(e) => return Err(Error::io("cannot connect to the host service", e)),
    };
    let peer = fdpass::peer_creds(conn.as_fd())
        .map_err(|e| Error::io("cannot identify the host service", e))?;
    if peer.uid != 0 && peer.uid != meta.uid() {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "refusing the host service on {}: it runs as uid {}, the directory belongs to uid {}",
                dir.display(),
                peer.uid,
                meta.uid()
            ),
        ));
    }
    Ok(conn)
}

/// Sends `request` and waits for the answer and the descriptors that come with it.
fn ask(dir: &Path, conn: &Socket, request: &Request) -> Result<(Reply, Vec<File>), Error> {
    fdpass::send_packet(conn.as_fd(), &request.encode(), &[], false)
        .map_err(|e| unavailable(dir, e))?;
    answer(dir, conn)
}

/// Waits for the service's answer (skipping bells and room notices) and its descriptors.
fn answer(dir: &Path, conn: &Socket) -> Result<(Reply, Vec<File>), Error> {
    let mut buf = vec![0u8; proto::MAX_PACKET];
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if !sys::wait_readable(conn.as_fd(), Some(left)).map_err(|e| unavailable(dir, e))? {
            return Err(Error::new(
                ErrorKind::ServiceUnavailable,
                format!(
                    "the host service on {} did not answer within 5 s",
                    dir.display()
                ),
            ));
        }
        let packet = fdpass::recv_packet(conn.as_fd(), &mut buf, true);
        let packet = match packet {
            Ok(packet) => packet,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(unavailable(dir, e)),
        };
        if packet.eof {
            return Err(unavailable(dir, "it closed the connection"));
        }
        let reply = Reply::decode(&buf[..packet.len]).map_err(|_| {
            Error::new(
                ErrorKind::Io,
                "the host service sent a packet this library does not understand (another release?)",
            )
        })?;
        if reply == Reply::Bell || reply == Reply::Room {
            continue; // a reader's wake-up or a writer's room, not the answer
        }
        return Ok((reply, packet.fds.into_iter().map(File::from).collect()));
    }
}

fn reply_error(reply: Reply) -> Error {
    match reply {
        Reply::Error(kind, message) => Error::new(kind, message),
        other => Error::new(
            ErrorKind::Io,
            format!("unexpected answer from the host service: {other:?}"),
        ),
    }
}

fn map_ring(file: Option<File>) -> Result<Ring, Error> {
    let file = file.ok_or_else(|| Error::new(ErrorKind::Io, "the host service sent no ring"))?;
    Ring::map_read_only(file)?
        .ok_or_else(|| Error::new(ErrorKind::Corrupted, "the host service sent an empty ring"))
}

/// A reader instance of a global name.
#[derive(Debug)]
pub(crate) struct GlobalReader {
    dir: PathBuf,
    request: OpenReader,
    conn: Socket,
    connected: bool,
    next_attempt: Instant,
    /// The descriptor users poll: it holds the connection (readable when rung) and, between
    /// services, a timer that turns it readable when the next attempt to rejoin is due, so a
    /// poller neither spins on a dead connection nor sleeps through a restart.
    ready: Epoll,
    retry: TimerFd,
    reported_at: Instant,
    /// `deliver one`: records the service gave us (position, messages lost before), in order.
    claimed: std::collections::VecDeque<(u64, u64)>,
    pub ring: Ring,
    pub id: u64,
}

/// The service's answer to a claim.
pub(crate) enum Claim {
    /// The record at this position is ours; so many messages nobody took were lost before.
    Taken(u64, u64),
    /// The next message is this long, more than the limit; it stays queued.
    TooSmall(usize),
    /// Nothing to take now.
    Nothing,
    /// The claim waits with the service; the descriptor turns readable when it is answered.
    Parked,
}

impl GlobalReader {
    /// Opens an instance; returns it with its starting cursor and sequence number.
    pub fn open(request: OpenReader) -> Result<(GlobalReader, u64, u64), Error> {
        let dir = global_dir();
        let (conn, ring, id, cursor, next_seq) = Self::join(&dir, &request)?;
        let io = |e: nix::errno::Errno| Error::io("cannot create a reader's descriptor", e.into());
        let ready = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(io)?;
        let retry = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io)?;
        ready
            .add(&conn, EpollEvent::new(EpollFlags::EPOLLIN, 0))
            .map_err(io)?;
        ready
            .add(&retry, EpollEvent::new(EpollFlags::EPOLLIN, 1))
            .map_err(io)?;
        Ok((
            GlobalReader {
                dir,
                request,
                conn,
                connected: true,
                next_attempt: Instant::now(),
                ready,
                retry,
                reported_at: Instant::now(),
                claimed: Default::default(),
                ring,
                id,
            },
            cursor,
            next_seq,
        ))
    }

    /// The service went away: poll on the retry timer instead of the dead connection.
    fn lose(&mut self) {
        if !self.connected {
            return;
        }
        self.connected = false;
        let _ = self.ready.delete(&self.conn);
        self.schedule_retry();
    }

    fn schedule_retry(&self) {
        let _ = self.retry.set(
            Expiration::OneShot(RECONNECT_INTERVAL.into()),
            TimerSetTimeFlags::empty(),
        );
    }

    fn join(dir: &Path, request: &OpenReader) -> Result<(Socket, Ring, u64, u64, u64), Error> {
        let conn = connect(dir)?;
        match ask(dir, &conn, &Request::OpenReader(request.clone()))? {
            (
                Reply::Reader {
                    id,
                    cursor,
                    next_seq,
                },
                file,
            ) => Ok((
                conn,
                map_ring(file.into_iter().next())?,
                id,
                cursor,
                next_seq,
            )),
            (other, _) => Err(reply_error(other)),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn connected(&self) -> bool {
        self.connected
    }

    /// The descriptor that turns readable when the service rings, or when a reader between
    /// services should try to rejoin.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.ready.0.as_fd()
    }

    /// Asks to be rung once something is written past `cursor`.
    pub fn arm(&mut self, cursor: u64, delivered: u64, lost: u64) {
        if !self.connected {
            return;
        }
        let arm = Request::Arm {
            cursor,
            delivered,
            lost,
        };
        if fdpass::send_packet(self.conn.as_fd(), &arm.encode(), &[], true).is_err() {
            // A full socket cannot happen (one arm per sleep); anything else is a lost service.
            self.lose();
        }
    }

    /// Reads what the service sent: swallows bells, keeps the records it gave us (a claim
    /// answered while we slept); notices a service that went away.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while self.connected {
            match fdpass::recv_packet(self.conn.as_fd(), &mut buf, true) {
                Ok(packet) if packet.eof => self.lose(),
                Ok(packet) => {
                    if let Ok(Reply::Claimed { pos, lost }) = Reply::decode(&buf[..packet.len]) {
                        self.claimed.push_back((pos, lost));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => self.lose(),
            }
        }
    }

    /// `deliver one`: asks the service for the next message nobody took, of at most `limit`
    /// bytes. A record it already gave us comes first. With `wait`, the claim stays with the
    /// service until a message comes ([`Claim::Parked`]).
    pub fn claim(&mut self, limit: usize, wait: bool) -> Claim {
        self.drain();
        if let Some((pos, lost)) = self.claimed.pop_front() {
            return Claim::Taken(pos, lost);
        }
        if !self.connected {
            return Claim::Nothing;
        }
        let request = Request::Claim {
            limit: limit as u64,
            wait,
        };
        if fdpass::send_packet(self.conn.as_fd(), &request.encode(), &[], false).is_err() {
            self.lose();
            return Claim::Nothing;
        }
        if wait {
            return Claim::Parked;
        }
        let mut buf = [0u8; 64];
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if !sys::wait_readable(self.conn.as_fd(), Some(left)).unwrap_or(false) {
                return Claim::Nothing;
            }
            match fdpass::recv_packet(self.conn.as_fd(), &mut buf, true) {
                Ok(packet) if packet.eof => {
                    self.lose();
                    return Claim::Nothing;
                }
                Ok(packet) => match Reply::decode(&buf[..packet.len]) {
                    Ok(Reply::Claimed { pos, lost }) => return Claim::Taken(pos, lost),
                    Ok(Reply::TooSmall { len }) => return Claim::TooSmall(len as usize),
                    Ok(Reply::Nothing) => return Claim::Nothing,
                    _ => {} // a bell
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    self.lose();
                    return Claim::Nothing;
                }
            }
        }
    }

    /// A record we took but could not hand over (the caller's buffer was too small): it stays
    /// ours, first in line.
    pub fn keep(&mut self, pos: u64, lost: u64) {
        self.claimed.push_front((pos, lost));
    }

    /// Whether this instance takes turns with the others (`deliver one`).
    pub fn deliver_one(&self) -> bool {
        self.request.deliver_one
    }

    /// A blocking reader's sleep at `cursor`, at most `timeout`: on the ring's wake epoch
    /// (the service bumps it and wakes every sleeper after appending; no packet either way).
    /// A futex cannot tell that the service died, so the sleep is cut every
    /// [`LIVENESS_WAIT`] to ask the connection. Reports the counters now and then.
    pub fn sleep(&mut self, cursor: u64, delivered: u64, lost: u64, timeout: Option<Duration>) {
        if !self.connected {
            let pause = timeout.map_or(RECONNECT_INTERVAL, |t| t.min(RECONNECT_INTERVAL));
            std::thread::sleep(
                pause.min(self.next_attempt.saturating_duration_since(Instant::now())),
            );
            return;
        }
        if self.reported_at.elapsed() >= REPORT_INTERVAL {
            self.reported_at = Instant::now();
            let report = Request::Report {
                cursor,
                delivered,
                lost,
            };
            if fdpass::send_packet(self.conn.as_fd(), &report.encode(), &[], true).is_err() {
                self.lose();
                return;
            }
        }
        if self.deliver_one() {
            // Turns are the service's to give: park a claim and wait for its answer.
            if let Claim::Parked = self.claim(usize::MAX, true) {
                let cap = timeout.map_or(LIVENESS_WAIT, |t| t.min(LIVENESS_WAIT));
                let _ = sys::wait_readable(self.conn.as_fd(), Some(cap));
                self.drain();
            }
            return;
        }
        let epoch = self.ring.wake_epoch();
        let seen = epoch.load(Ordering::SeqCst);
        if cursor < self.ring.head() {
            return;
        }
        let cap = timeout.map_or(LIVENESS_WAIT, |t| t.min(LIVENESS_WAIT));
        sys::futex_wait(epoch, seen, Some(cap));
        if epoch.load(Ordering::SeqCst) == seen {
            // Nothing was appended: a timeout (or a signal). Is the service still there?
            self.drain();
        }
    }

    /// After the service went away and the old ring is read to its end: joins the name again
    /// in the next service, if one runs. Returns the new cursor and sequence number.
    pub fn reconnect(&mut self) -> Option<(u64, u64)> {
        if self.connected || Instant::now() < self.next_attempt {
            return None;
        }
        self.next_attempt = Instant::now() + RECONNECT_INTERVAL;
        // Re-arming the timer also clears its expiry: the descriptor is quiet until then.
        self.schedule_retry();
        let (conn, ring, id, cursor, next_seq) = Self::join(&self.dir, &self.request).ok()?;
        self.ready
            .add(&conn, EpollEvent::new(EpollFlags::EPOLLIN, 0))
            .ok()?;
        let _ = self.retry.unset();
        self.conn = conn;
        self.ring = ring;
        self.id = id;
        self.claimed.clear(); // positions in the old ring
        self.connected = true;
        Some((cursor, next_seq))
    }
}

/// A writer of a global name.
///
/// Messages go into the writer's submission ring (no system call; the service's thread is
/// woken on its doorbell only when it said it sleeps); long messages go in pieces through the
/// same ring, so that the order holds.
#[derive(Debug)]
pub(crate) struct GlobalWriter {
    dir: PathBuf,
    name: MailslotName,
    conn: Socket,
    ring: Ring,
    submit: Submit,
    tail: u64,
    /// When the connection was last asked whether the service still lives.
    probed_at: Instant,
    /// Messages written since the last flush (what a service crash could take with it).
    unconfirmed: u64,
}

impl GlobalWriter {
    pub fn open(name: &MailslotName) -> Result<GlobalWriter, Error> {
        let dir = global_dir();
        let conn = connect(&dir)?;
        let request = Request::OpenWriter {
            name: name.as_str().to_owned(),
        };
        let (ring, submit) = match ask(&dir, &conn, &request)? {
            (Reply::Writer, files) => {
                let mut files = files.into_iter();
                let ring = map_ring(files.next())?;
                let (Some(submission), Some(bell)) = (files.next(), files.next()) else {
                    return Err(Error::new(
                        ErrorKind::Io,
                        "the host service sent no submission ring",
                    ));
                };
                (ring, Submit::open(submission, bell)?)
            }
            (other, _) => return Err(reply_error(other)),
        };
        conn.set_write_timeout(Some(ANSWER_TIMEOUT))
            .map_err(|e| Error::io("cannot set a send timeout", e))?;
        Ok(GlobalWriter {
            dir,
            name: name.clone(),
            conn,
            ring,
            submit,
            tail: 0,
            probed_at: Instant::now(),
            unconfirmed: 0,
        })
    }

    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    fn lost_service(&self, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut {
            return Error::new(
                ErrorKind::TimedOut,
                format!(
                    "mailslot \"{}\": the host service took no message for 5 s (stopped?)",
                    self.name
                ),
            );
        }
        Error::new(
            ErrorKind::ServiceUnavailable,
            format!(
                "mailslot \"{}\": the host service went away ({e}); {} message(s) written since \
                 the last flush may be lost; open a new writer once it runs again",
                self.name, self.unconfirmed
            ),
        )
    }

    /// At most once per [`crate::writer::LIVENESS_PROBE_INTERVAL`]: has the service gone away
    /// (its end of the connection closed)? A write never succeeds into a dead service for
    /// longer than that.
    fn check_alive(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        if now.duration_since(self.probed_at) < crate::writer::LIVENESS_PROBE_INTERVAL {
            return Ok(());
        }
        self.probed_at = now;
        self.consume_packets()
    }

    /// Reads what the service sent (room notices); an error when it went away.
    fn consume_packets(&mut self) -> Result<(), Error> {
        let mut buf = [0u8; 64];
        loop {
            match fdpass::recv_packet(self.conn.as_fd(), &mut buf, true) {
                Ok(packet) if packet.eof => {
                    return Err(self.lost_service(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "it closed the connection",
                    )))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(self.lost_service(e)),
            }
        }
    }

    /// Waits until `ready` holds (room in the ring, or the ring drained), at most 5 s.
    fn wait(&mut self, ready: impl Fn(&Submit, u64) -> bool) -> Result<(), Error> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        let mut yielded = false;
        while !ready(&self.submit, self.tail) {
            if !yielded {
                yielded = true;
                std::thread::yield_now();
                continue;
            }
            self.submit.want_room();
            self.submit.wake_service();
            if ready(&self.submit, self.tail) {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.lost_service(io::Error::from(io::ErrorKind::TimedOut)));
            }
            sys::wait_readable(self.conn.as_fd(), Some(left)).map_err(|e| self.lost_service(e))?;
            self.consume_packets()?;
        }
        Ok(())
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        if self.ring.closed() {
            return Err(crate::writer::server_gone(self.name.as_str()));
        }
        self.ring.check_size(self.name.as_str(), data.len())?;
        self.check_alive()?;
        // Long messages go in pieces, through the same ring, so that the order holds.
        let mut pieces = data.chunks(submit::MAX_PIECE).peekable();
        if data.is_empty() {
            self.push(&[], true)?;
        }
        while let Some(piece) = pieces.next() {
            self.push(piece, pieces.peek().is_none())?;
        }
        self.submit.wake_service();
        self.unconfirmed += 1;
        Ok(())
    }

    fn push(&mut self, piece: &[u8], last: bool) -> Result<(), Error> {
        if self.submit.push(&mut self.tail, piece, last) {
            return Ok(());
        }
        let need = piece.len();
        self.wait(|submit, tail| submit.has_room(tail, need))?;
        if self.submit.push(&mut self.tail, piece, last) {
            return Ok(());
        }
        Err(self.lost_service(io::Error::from(io::ErrorKind::TimedOut)))
    }

    /// Waits until the service has appended (or refused) everything written so far.
    pub fn flush(&mut self) -> Result<(), Error> {
        // Counted before it is sent, and the service woken after: a service thread about to
        // sleep either sees the count or is woken.
        self.submit.note_packet();
        let sent = fdpass::send_packet(self.conn.as_fd(), &Request::Flush.encode(), &[], false)
            .map_err(|e| unavailable(&self.dir, e));
        self.submit.wake_service();
        let (reply, _) = sent
            .and_then(|()| answer(&self.dir, &self.conn))
            .map_err(|e| {
                Error::new(
                    e.kind(),
                    format!(
                    "mailslot \"{}\": {e}; {} message(s) written since the last flush may be lost",
                    self.name, self.unconfirmed
                ),
                )
            })?;
        self.unconfirmed = 0;
        match reply {
            Reply::Flushed {
                last_error: Some((kind, message)),
                failed,
                ..
            } => Err(Error::new(
                kind,
                format!("{message} ({failed} write(s) of this writer failed)"),
            )),
            Reply::Flushed { .. } => Ok(()),
            other => Err(reply_error(other)),
        }
    }
}

/// The service's answer to `status`, as the library's status types.
pub(crate) fn status() -> Result<Vec<MailslotStatus>, Error> {
    let dir = global_dir();
    let conn = connect(&dir)?;
    match ask(&dir, &conn, &Request::Status)? {
        (Reply::Status(names), _) => Ok(names
            .into_iter()
            .map(|n| MailslotStatus {
                name: n.name,
                shared: n.shared,
                deliver_one: n.deliver_one,
                refused: 0,
                repaired: 0,
                damaged: false,
                capacity: None,
                instances: n.instances,
            })
            .collect()),
        (other, _) => Err(reply_error(other)),
    }
}

/// A user's network role served by the host service: it receives the LAN datagrams of the
/// names it lists, taken by the service's port.
#[derive(Debug)]
pub(crate) struct Subscription {
    conn: Socket,
}

impl Subscription {
    /// Subscribes to the service of the global directory, if one runs and holds `port`.
    pub fn start(port: u16) -> Option<Subscription> {
        let dir = global_dir();
        let conn = connect(&dir).ok()?;
        match ask(&dir, &conn, &Request::Subscribe { port }).ok()? {
            (Reply::Subscribed, _) => Some(Subscription { conn }),
            _ => None,
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }

    /// Replaces the list of names we take datagrams for.
    pub fn set_names(&self, names: Vec<String>) -> io::Result<()> {
        fdpass::send_packet(
            self.conn.as_fd(),
            &Request::Names(names).encode(),
            &[],
            false,
        )
    }

    /// The next datagram if one waits (`Ok(None)`: nothing now); `Err` when the service
    /// went away.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<proto::Datagram>> {
        match fdpass::recv_packet(self.conn.as_fd(), buf, true) {
            Ok(packet) if packet.eof => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the host service went away",
            )),
            Ok(packet) => match Reply::decode(&buf[..packet.len]) {
                Ok(Reply::Datagram(d)) => Ok(Some(d)),
                _ => Ok(None),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}
