//! The server (reader) side of a mailslot: open, read whole messages, info, close on drop.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::name::MailslotName;
use crate::registry::{self, Creation, Membership};
use crate::ring::{self, Cursor, Dest, ReadStep, RecordHeader, RecordSource, RingOptions, Take};
use crate::scope::Scope;
use crate::service::{self, Claim, GlobalReader};

pub use crate::ring::MAX_MESSAGE_SIZE;

/// The largest queue capacity a name of the user scope may ask for (1 GiB; the global scope
/// allows less, see [`crate::service`]).
pub const MAX_CAPACITY: usize = 1 << 30;

/// The default queue capacity per name, in bytes of messages (each message also takes a
/// 48-byte record header). The ring is never smaller than two maximum-size messages.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// How long a read waits for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timeout {
    /// Return at once (`TimedOut` when the queue is empty), like a Windows timeout of 0.
    Immediate,
    /// Wait at most this long.
    After(Duration),
    /// Wait until a message arrives (`MAILSLOT_WAIT_FOREVER`).
    #[default]
    Forever,
}

impl Timeout {
    /// `0` = immediate, `u32::MAX` = forever, otherwise milliseconds (the Win32 convention).
    pub fn from_millis(ms: u32) -> Timeout {
        match ms {
            0 => Timeout::Immediate,
            u32::MAX => Timeout::Forever,
            ms => Timeout::After(Duration::from_millis(u64::from(ms))),
        }
    }

    pub(crate) fn deadline(self) -> Option<Instant> {
        match self {
            Timeout::Immediate => Some(Instant::now()),
            // A deadline past what `Instant` can hold is no deadline at all.
            Timeout::After(d) => Instant::now().checked_add(d),
            Timeout::Forever => None,
        }
    }
}

/// How a shared name delivers its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Every instance receives every message, all in the same order.
    #[default]
    All,
    /// Each message goes to exactly one live instance.
    One,
}

/// What a writer meets when a reader lags past the queue capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop the oldest messages; each lagging reader is told how many it lost.
    #[default]
    DropOldest,
    /// Refuse the write with `QueueFull`.
    Refuse,
    /// Make the writer wait until the slowest live reader has made room (at most the writer's
    /// write timeout, then `TimedOut`), like a pipe: nothing is lost, and a reader that stops
    /// reading stops the writers. The network role never waits: it drops what does not fit,
    /// and counts it. User scope only.
    Block,
}

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A process on this host.
    Local {
        /// The writer's process id, as the kernel reported it to the writer.
        pid: u32,
        /// The writer's real user id.
        uid: u32,
    },
    /// A datagram received by this host's network role.
    Network {
        ip: Ipv4Addr,
        port: u16,
        /// The NetBIOS source name, without padding.
        netbios_name: String,
        /// Its suffix byte.
        suffix: u8,
        /// The NetBIOS name the datagram was addressed to (ours, our workgroup, `*`, or any
        /// name when the role accepts any), without padding; empty when not known.
        destination: String,
        /// Its suffix byte.
        destination_suffix: u8,
    },
}

impl Source {
    pub(crate) fn from_record(source: &RecordSource) -> Source {
        match source {
            RecordSource::Local { pid, uid } => Source::Local {
                pid: *pid,
                uid: *uid,
            },
            RecordSource::Network {
                ip,
                port,
                name,
                suffix,
                destination,
                destination_suffix,
            } => Source::Network {
                ip: Ipv4Addr::from(*ip),
                port: *port,
                netbios_name: unpadded(name),
                suffix: *suffix,
                destination: unpadded(destination),
                destination_suffix: *destination_suffix,
            },
        }
    }
}

/// A name stored NUL-padded, without its padding (and trailing spaces).
fn unpadded(name: &[u8]) -> String {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).trim_end().to_owned()
}

/// One message, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub data: Vec<u8>,
    pub source: Source,
    /// Messages this reader lost (it lagged past the queue capacity) just before this one.
    pub lost: u64,
}

/// What [`Server::recv_into`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub source: Source,
    pub lost: u64,
}

/// `GetMailslotInfo`: nothing is consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// The maximum message size the name was created with (0 = no limit but
    /// [`MAX_MESSAGE_SIZE`]).
    pub max_message_size: usize,
    /// Size of the next message, `None` when the queue is empty.
    pub next_size: Option<usize>,
    /// Number of queued messages (zero-length ones included).
    pub count: usize,
    pub read_timeout: Timeout,
}

/// Options for [`Server`]s; see [`Server::builder`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    name: String,
    max_message_size: usize,
    read_timeout: Timeout,
    shared: bool,
    delivery: Delivery,
    capacity: usize,
    overflow: Overflow,
    scope: Scope,
    mode: Option<u32>,
    group: Option<u32>,
}

impl ServerBuilder {
    /// Largest message accepted (0 = [`MAX_MESSAGE_SIZE`]); larger writes fail with
    /// `MessageTooLarge` and queue nothing.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How long reads wait (default: forever).
    pub fn read_timeout(mut self, timeout: Timeout) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Let several processes open the name; each gets every message (or one, see
    /// [`ServerBuilder::delivery`]).
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// How a shared name delivers (fixed by the name's first instance).
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// Bytes of records (messages and their 48-byte headers) a reader may lag behind before
    /// the overflow policy applies (fixed by the name's first instance; at least one message
    /// of the maximum size, at most [`MAX_CAPACITY`]). The ring holds that and one more
    /// message of the maximum size, in whole pages.
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    /// What happens when a reader lags past the capacity (fixed by the first instance).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Which runtime directory (default: the user's own).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Permission bits of a name this open creates (default 0600 in the user scope, 0660 in
    /// the global scope). In the global scope the read bits say who may open it as a server,
    /// the write bits who may write it, as the host service checks them.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode & 0o777);
        self
    }

    /// Group of a name this open creates (global scope: one of the caller's groups, or the
    /// host service refuses it).
    pub fn group(mut self, gid: u32) -> Self {
        self.group = Some(gid);
        self
    }

    /// Creates the name, or joins it when it is open shared with the same delivery.
    ///
    /// # Errors
    /// `InvalidName`; `AlreadyExists` when the name is open and not joinable;
    /// `PermissionDenied` for another user's name or directory; `Io`.
    pub fn open(self) -> Result<Server, Error> {
        let name = MailslotName::parse(&self.name)?;
        if self.max_message_size > MAX_MESSAGE_SIZE {
            return Err(Error::new(
                ErrorKind::MessageTooLarge,
                format!(
                    "mailslot \"{name}\": a maximum message size above {MAX_MESSAGE_SIZE} bytes \
                     is not supported"
                ),
            ));
        }
        if self.capacity > MAX_CAPACITY {
            return Err(Error::new(
                ErrorKind::InvalidOption,
                format!(
                    "mailslot \"{name}\": a capacity of {} bytes is more than a name can hold \
                     (at most {MAX_CAPACITY})",
                    self.capacity
                ),
            ));
        }
        if self.scope == Scope::Global {
            return self.open_global(name);
        }
        let dir = self.scope.dir()?;
        let max = if self.max_message_size == 0 {
            MAX_MESSAGE_SIZE
        } else {
            self.max_message_size
        };
        let creation = Creation {
            options: RingOptions {
                shared: self.shared,
                deliver_one: self.delivery == Delivery::One,
                refuse_when_full: self.overflow == Overflow::Refuse,
                block_when_full: self.overflow == Overflow::Block,
                max_message: self.max_message_size as u32,
                ring_size: ring::ring_size_for(self.capacity, max),
            },
            mode: self.mode.unwrap_or_else(|| self.scope.default_mode()),
            group: self.group,
        };
        let member = registry::open_server(&dir, &name, creation)?;
        let bell_socket = bind_bell(&dir, member.id).map_err(|e| {
            let err = Error::io(
                format!("mailslot \"{name}\": cannot create its doorbell"),
                e,
            );
            registry::close_server(&dir, &name, &member);
            err
        })?;
        let options = member.ring.options();
        let cursor = member.cursor;
        // (The socket doorbell is armed when the descriptor is first asked for: a reader that
        // only blocks never costs a writer a datagram.)
        Ok(Server {
            name,
            link: Link::Local(LocalLink {
                dir,
                member,
                bell_socket,
                opener: std::process::id(),
            }),
            cursor,
            read_timeout: self.read_timeout,
            max_message_size: options.max_message as usize,
            delivered: 0,
            lost: 0,
        })
    }

    /// A global name: an instance in the host service, reading its ring read-only.
    fn open_global(self, name: MailslotName) -> Result<Server, Error> {
        if self.overflow == Overflow::Block {
            // The service must never wait for one user's reader on another user's behalf.
            return Err(Error::new(
                ErrorKind::InvalidOption,
                format!(
                    "mailslot \"{name}\": global names drop the oldest messages when a reader \
                     lags (counted); blocking writers when full is for user-scope names"
                ),
            ));
        }
        let request = service::OpenReader {
            name: name.as_str().to_owned(),
            shared: self.shared,
            deliver_one: self.delivery == Delivery::One,
            refuse_when_full: self.overflow == Overflow::Refuse,
            mode: self.mode.unwrap_or_else(|| self.scope.default_mode()) as u16,
            group: self.group,
            max_message: self.max_message_size as u32,
            capacity: self.capacity as u64,
        };
        let (reader, cursor, next_seq) = GlobalReader::open(request)?;
        Ok(Server {
            name,
            link: Link::Global(reader),
            cursor: Cursor::own(cursor, next_seq),
            read_timeout: self.read_timeout,
            max_message_size: self.max_message_size,
            delivered: 0,
            lost: 0,
        })
    }
}

/// The doorbell socket of instance `id`: a socket file in the runtime directory (mode 0700),
/// so only the user's own processes can reach it (an abstract socket would be listed in
/// `/proc/net/unix` and reachable by every user of the host).
pub(crate) fn bell_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!(".bell-{id:016x}"))
}

fn bind_bell(dir: &Path, id: u64) -> std::io::Result<UnixDatagram> {
    let socket = UnixDatagram::bind(bell_path(dir, id))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A server instance of a mailslot: reads whole messages, oldest first.
///
/// Dropping it closes the instance; closing the last instance deletes the name and its
/// unread messages.
///
/// # Readiness
/// The descriptor from [`AsFd`] becomes readable when a message may be waiting. Like
/// edge-triggered epoll, after it polls readable, read with [`Timeout::Immediate`] (or
/// [`Server::try_recv`]) until `TimedOut`; only then is it re-armed. It is first armed when
/// it is asked for (and is readable at once if messages already wait): a server that only
/// blocks in [`Server::recv`] never costs its writers a doorbell datagram.
#[derive(Debug)]
pub struct Server {
    name: MailslotName,
    link: Link,
    /// Where this instance reads: its own position, or the name's group cursor (`one`
    /// mode; a global name's `one` mode takes turns from the service instead).
    cursor: Cursor,
    read_timeout: Timeout,
    max_message_size: usize,
    /// This instance's counters (global names report them to the service).
    delivered: u64,
    lost: u64,
}

/// Where an instance's ring lives.
#[derive(Debug)]
enum Link {
    /// A user-scope name: the ring is a file of the user's directory, mapped read-write.
    Local(LocalLink),
    /// A global name: the host service owns the ring; we map it read-only.
    Global(GlobalReader),
}

#[derive(Debug)]
struct LocalLink {
    dir: PathBuf,
    member: Membership,
    bell_socket: UnixDatagram,
    /// The process that opened the instance: a child that inherited it by `fork` and drops
    /// its copy must not close the parent's instance (or delete its name).
    opener: u32,
}

impl Server {
    /// Starts building a server of `name` (`NAME`, `\\.\mailslot\NAME`).
    pub fn builder(name: &str) -> ServerBuilder {
        ServerBuilder {
            name: name.to_owned(),
            max_message_size: 0,
            read_timeout: Timeout::Forever,
            shared: false,
            delivery: Delivery::All,
            capacity: DEFAULT_CAPACITY,
            overflow: Overflow::DropOldest,
            scope: Scope::User,
            mode: None,
            group: None,
        }
    }

    /// Opens a non-shared server with default options.
    ///
    /// # Errors
    /// As [`ServerBuilder::open`].
    pub fn open(name: &str) -> Result<Server, Error> {
        Server::builder(name).open()
    }

    /// The mailslot's name, as given.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// This instance's unique id (as `mailslot status` shows it).
    pub fn instance_id(&self) -> u64 {
        match &self.link {
            Link::Local(local) => local.member.id,
            Link::Global(global) => global.id,
        }
    }

    /// The name's capacity in effect, in bytes of records (what [`ServerBuilder::capacity`]
    /// became: rounded up to hold one largest message at least, in whole pages; or what the
    /// name's first instance chose).
    pub fn capacity(&self) -> u64 {
        match &self.link {
            Link::Local(local) => local.member.ring.capacity(),
            Link::Global(global) => global.ring.capacity(),
        }
    }

    /// The runtime directory this server lives in (the host service's, for a global name).
    pub fn dir(&self) -> &std::path::Path {
        match &self.link {
            Link::Local(local) => &local.dir,
            Link::Global(global) => global.dir(),
        }
    }

    /// Reads the next message, waiting as the read timeout says.
    ///
    /// # Errors
    /// `TimedOut` when none arrived in time (at once with [`Timeout::Immediate`]);
    /// `Corrupted` when another process truncated the name's file (every later read fails too:
    /// close and open the name again).
    pub fn recv(&mut self) -> Result<Message, Error> {
        self.recv_within(self.read_timeout)
    }

    /// Reads the next message if one is waiting, without waiting.
    ///
    /// # Errors
    /// `TimedOut` when the queue is empty.
    pub fn try_recv(&mut self) -> Result<Message, Error> {
        self.recv_within(Timeout::Immediate)
    }

    /// Reads the next message into `buf`.
    ///
    /// # Errors
    /// `InsufficientBuffer` if `buf` is smaller than the next message, which stays queued
    /// (the error says its size); `TimedOut` as for [`Server::recv`].
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<Received, Error> {
        // One copy, from the ring into the caller's buffer.
        let (header, lost) = self.wait_take(self.read_timeout, &mut Dest::Slice(buf))?;
        Ok(Received {
            len: header.len,
            source: Source::from_record(&header.source),
            lost,
        })
    }

    fn recv_within(&mut self, timeout: Timeout) -> Result<Message, Error> {
        let mut data = Vec::new();
        let (header, lost) = self.wait_take(timeout, &mut Dest::Vec(&mut data))?;
        Ok(Message {
            data,
            source: Source::from_record(&header.source),
            lost,
        })
    }

    /// Takes the next message, waiting as `timeout` says; the clock is read only once the
    /// queue was found empty.
    fn wait_take(
        &mut self,
        timeout: Timeout,
        dest: &mut Dest<'_>,
    ) -> Result<(RecordHeader, u64), Error> {
        let mut yielded = false;
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            match self.take(dest)? {
                Take::Got(header, lost) => return Ok((header, lost)),
                Take::TooSmall(len) => return Err(self.too_small(len, dest.limit())),
                Take::Damaged(what) => return Err(self.damaged(what)),
                Take::Empty => {}
            }
            let remaining = match *deadline.get_or_insert_with(|| timeout.deadline()) {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return self.timed_out(dest);
                    }
                    Some(deadline - now)
                }
                None => None,
            };
            // Before sleeping, give the CPU away once: on a busy host a writer that is ready to
            // run often appends meanwhile, and a reader that finds it saves two context
            // switches and the writer a wake-up.
            if !yielded {
                yielded = true;
                std::thread::yield_now();
                continue;
            }
            yielded = false;
            self.sleep(remaining);
        }
    }

    /// Sleeps until a writer may have appended, at most `remaining`.
    fn sleep(&mut self, remaining: Option<Duration>) {
        match &mut self.link {
            Link::Local(local) => {
                let member = &local.member;
                member
                    .ring
                    .sleep(member.slot, member.id, &self.cursor, remaining);
            }
            Link::Global(global) => {
                // The old ring of a service that went away is read to its end first
                // (`take` found it empty): then join the next service.
                if !global.connected() {
                    if let Some((pos, next_seq)) = global.reconnect() {
                        self.cursor = Cursor::own(pos, next_seq);
                        return;
                    }
                }
                let at = global.ring.waiting_at(&self.cursor);
                global.sleep(at, self.delivered, self.lost, remaining);
            }
        }
    }

    /// `InsufficientBuffer`: the next message (`len` bytes) does not fit in `limit`.
    fn too_small(&self, len: usize, limit: usize) -> Error {
        Error::new(
            ErrorKind::InsufficientBuffer,
            format!(
                "mailslot \"{}\": the next message is {len} bytes, the buffer {limit}; it stays \
                 queued",
                self.name
            ),
        )
    }

    /// `Corrupted`: damage in the name's shared file was found and skipped.
    fn damaged(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::Corrupted,
            format!(
                "mailslot \"{}\": damage in the name's shared file, written by another process, \
                 was skipped ({what}); messages may have been lost with it",
                self.name
            ),
        )
    }

    /// Empty at the deadline: arm the socket doorbell (so the fd turns readable on the next
    /// message), look once more, and report `TimedOut`.
    fn timed_out(&mut self, dest: &mut Dest<'_>) -> Result<(RecordHeader, u64), Error> {
        match &mut self.link {
            Link::Local(local) => {
                // Always drain: a doorbell datagram that found nothing (a spurious or foreign
                // ring) must not leave the descriptor readable, or a poller would spin.
                let mut sink = [0u8; 64];
                while local.bell_socket.recv(&mut sink).is_ok() {}
                local.member.ring.arm_socket_bell(local.member.slot);
            }
            Link::Global(global) => {
                global.drain();
                if !global.connected() {
                    if let Some((pos, next_seq)) = global.reconnect() {
                        self.cursor = Cursor::own(pos, next_seq);
                    }
                }
                // (`deliver one` parks its claim after the last look, below: a claim made
                // by that look would replace a parked one.)
                if !global.deliver_one() {
                    let at = global.ring.waiting_at(&self.cursor);
                    global.arm(at, self.delivered, self.lost);
                }
            }
        }
        let last_look = self.take(dest)?;
        if let (Take::Empty, Link::Global(global)) = (&last_look, &mut self.link) {
            if global.deliver_one() {
                // Readable when the service hands us a turn.
                if let Claim::Taken(pos, lost) = global.claim(usize::MAX, true) {
                    global.keep(pos, lost);
                }
            }
        }
        match last_look {
            Take::Got(header, lost) => Ok((header, lost)),
            Take::TooSmall(len) => Err(self.too_small(len, dest.limit())),
            Take::Damaged(what) => Err(self.damaged(what)),
            Take::Empty => Err(Error::new(
                ErrorKind::TimedOut,
                format!(
                    "mailslot \"{}\": no message within the read timeout",
                    self.name
                ),
            )),
        }
    }

    /// Takes the next message into `dest` if one is waiting.
    fn take(&mut self, dest: &mut Dest<'_>) -> Result<Take, Error> {
        let take = match &mut self.link {
            Link::Global(global) if global.deliver_one() => take_claimed(global, dest),
            Link::Global(global) => global.ring.take(&mut self.cursor, None, dest),
            Link::Local(local) => {
                let member = &local.member;
                member.ring.take(&mut self.cursor, Some(member.slot), dest)
            }
        };
        if let Take::Got(_, lost) = &take {
            self.delivered += 1;
            self.lost += lost;
        }
        Ok(take)
    }

    /// The mailslot's state as `GetMailslotInfo` reports it; consumes nothing.
    ///
    /// For a global name in `one` mode, the count is what no instance has taken yet.
    pub fn info(&self) -> Info {
        let (count, next_size) = match &self.link {
            Link::Local(local) => local.member.ring.backlog(&self.cursor),
            Link::Global(global) if global.deliver_one() => global.ring.backlog(&Cursor::GROUP),
            Link::Global(global) => global.ring.backlog(&self.cursor),
        };
        Info {
            max_message_size: self.max_message_size,
            next_size,
            count,
            read_timeout: self.read_timeout,
        }
    }

    /// Changes the read timeout for later reads (`SetMailslotInfo`).
    pub fn set_read_timeout(&mut self, timeout: Timeout) {
        self.read_timeout = timeout;
    }

    pub fn read_timeout(&self) -> Timeout {
        self.read_timeout
    }
}

/// `deliver one` on a global name: the service hands out the turns (it alone moves the group
/// cursor); we copy the record it gave us out of our read-only mapping.
fn take_claimed(global: &mut GlobalReader, dest: &mut Dest<'_>) -> Take {
    // Messages overwritten between their claim and our copy: told with the next message.
    let mut overwritten = 0;
    loop {
        let (pos, lost_before) = match global.claim(dest.limit(), false) {
            Claim::Taken(pos, lost_before) => (pos, lost_before + overwritten),
            Claim::TooSmall(len) => return Take::TooSmall(len),
            Claim::Nothing | Claim::Parked => return Take::Empty,
        };
        match global.ring.read_at(pos, dest, true) {
            ReadStep::Record {
                header,
                copied: true,
                ..
            } => return Take::Got(header, lost_before),
            ReadStep::Record { header, .. } => {
                // Ours, but larger than this buffer: it stays ours, first in line.
                global.keep(pos, lost_before);
                return Take::TooSmall(header.len);
            }
            ReadStep::Damaged(_, what) => return Take::Damaged(what),
            ReadStep::Empty | ReadStep::Resync(_) => overwritten = lost_before + 1,
        }
    }
}

impl std::os::fd::AsRawFd for Server {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl AsFd for Server {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.link {
            Link::Local(local) => {
                // Whoever asks for the descriptor will poll it: arm the doorbell, and if
                // messages already wait, make the descriptor readable at once.
                let member = &local.member;
                if member.ring.arm_socket_bell(member.slot)
                    && member.ring.waiting_at(&self.cursor) < member.ring.head()
                {
                    let _ = local
                        .bell_socket
                        .send_to(&[1], bell_path(&local.dir, member.id));
                }
                local.bell_socket.as_fd()
            }
            Link::Global(global) => global.fd(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A global instance ends when its connection closes: the service sees that at once.
        // (A forked child's copy of that connection is only a copy: the parent's stays open.)
        if let Link::Local(local) = &self.link {
            if local.opener == std::process::id() {
                registry::close_server(&local.dir, &self.name, &local.member);
            }
        }
    }
}
