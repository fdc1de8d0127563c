//! The handles of the C API and their operations, in safe Rust: [`crate::ffi`] turns C's
//! pointers into the references and slices these take.

use std::ffi::c_char;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

use ms::net::{self, NetConfig, NetRole, SendOptions};
use ms::{Deliverer, Delivery, Overflow, Scope, Server, Source, Target, Timeout, Writer};

use crate::error::{ms_error, Failure};
use crate::netenv;

/// `read_timeout_ms` (and `ms_set_read_timeout`): wait until a message arrives.
pub const MS_WAIT_FOREVER: u32 = 0xFFFF_FFFF;
/// `ms_slot_info.next_size` when no message is queued.
pub const MS_NO_MESSAGE: u64 = 0xFFFF_FFFF_FFFF_FFFF;
/// The largest message a local mailslot takes (1 MiB).
pub const MS_MAX_MESSAGE_SIZE: u32 = 1 << 20;
/// The longest mailslot name, in bytes (without `\\.\mailslot\`).
pub const MS_MAX_NAME_LEN: u32 = 80;

/// `delivery`: every instance of a shared name receives every message (the default).
pub const MS_DELIVERY_ALL: u32 = 0;
/// `delivery`: each message goes to exactly one live instance.
pub const MS_DELIVERY_ONE: u32 = 1;
/// `overflow`: a reader that lags past the capacity loses the oldest messages (the default).
pub const MS_OVERFLOW_DROP_OLDEST: u32 = 0;
/// `overflow`: writes fail with `MS_ERR_QUEUE_FULL` instead.
pub const MS_OVERFLOW_REFUSE: u32 = 1;
/// `overflow`: writers wait for room (user scope only).
pub const MS_OVERFLOW_BLOCK: u32 = 2;
/// `scope`: the user's own runtime directory (`$MAILSLOT_DIR`, else
/// `$XDG_RUNTIME_DIR/mailslot`, else `/dev/shm/mailslot-<uid>`), or `dir` when set.
pub const MS_SCOPE_USER: u32 = 0;
/// `scope`: names shared between users through the host service (`mailslot serve --system`).
pub const MS_SCOPE_GLOBAL: u32 = 1;
/// `ms_source.kind`: a process of this host.
pub const MS_SOURCE_LOCAL: u32 = 1;
/// `ms_source.kind`: a datagram from the network.
pub const MS_SOURCE_NETWORK: u32 = 2;

/// Options of `ms_server_open`. All zero (`ms_server_options opts = {0};`, or a NULL
/// pointer) is Windows' `CreateMailslot(name, 0, 0, NULL)`: a private mailslot of the user
/// scope, messages up to 1 MiB, reads that return at once when nothing is queued.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ms_server_options {
    /// Largest message accepted, in bytes (0: `MS_MAX_MESSAGE_SIZE`); larger writes fail with
    /// `MS_ERR_MESSAGE_TOO_LARGE` and queue nothing.
    pub max_message_size: u32,
    /// How long reads wait, in milliseconds: 0 returns at once, `MS_WAIT_FOREVER` waits until a
    /// message arrives.
    pub read_timeout_ms: u32,
    /// Non-zero: several processes may open the name; each instance gets every message (or
    /// one instance does, with `MS_DELIVERY_ONE`). Zero: a second open fails with
    /// `MS_ERR_ALREADY_EXISTS`, as on Windows.
    pub shared: i32,
    /// `MS_DELIVERY_ALL` or `MS_DELIVERY_ONE` (fixed by the name's first instance).
    pub delivery: u32,
    /// `MS_OVERFLOW_DROP_OLDEST`, `MS_OVERFLOW_REFUSE` or `MS_OVERFLOW_BLOCK` (fixed by the
    /// first instance).
    pub overflow: u32,
    /// Bytes of queued records a reader may lag behind (0: 1 MiB; fixed by the first instance).
    pub capacity: usize,
    /// `MS_SCOPE_USER` or `MS_SCOPE_GLOBAL`.
    pub scope: u32,
    /// With `MS_SCOPE_USER`: a runtime directory of its own instead of the user's (NULL: the
    /// user's). Created with mode 0700 if missing.
    pub dir: *const c_char,
    /// Permission bits of a name this open creates (0: 0600 in the user scope, 0660 in the
    /// global scope).
    pub mode: u32,
    /// Non-zero: `group` is the group of a name this open creates (global scope).
    pub has_group: i32,
    /// See `has_group`.
    pub group: u32,
    /// Non-zero: this process takes part in the network role of the server's directory (user
    /// scope), as `mailslot listen` does: if no other process holds it, this one binds the
    /// UDP port and delivers the LAN's mailslot writes to this host's mailslots until the
    /// server closes. Settings come from the environment (`MAILSLOT_PORT`, ...; see the
    /// README). Zero: local messages only (`mailslot serve` can hold the role instead).
    pub network: i32,
}

/// Where a message came from.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ms_source {
    /// `MS_SOURCE_LOCAL` or `MS_SOURCE_NETWORK`.
    pub kind: u32,
    /// Local: the writer's process id, as the kernel reported it.
    pub pid: u32,
    /// Local: the writer's user id.
    pub uid: u32,
    /// Network: the sender's IPv4 address, in network order (`ip[0]` first).
    pub ip: [u8; 4],
    /// Network: the sender's UDP port.
    pub port: u16,
    /// Network: the suffix byte of the sender's NetBIOS name.
    pub suffix: u8,
    /// Network: the sender's NetBIOS name, without padding, NUL-terminated (untrusted bytes).
    pub netbios_name: [c_char; 16],
}

/// A message read by `ms_recv`; free it with `ms_message_free`.
#[repr(C)]
#[derive(Debug)]
pub struct ms_message {
    /// The message's `len` bytes, followed by a NUL that is not part of it (so text can be
    /// printed as it is); never NULL, even for a zero-length message.
    pub data: *mut u8,
    /// Its length in bytes (0 for a zero-length message).
    pub len: usize,
    /// Who wrote it.
    pub source: ms_source,
    /// Messages this reader lost (it lagged past the capacity) just before this one.
    pub lost: u64,
}

/// What `ms_recv_into` stored.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ms_received {
    /// The message's length. After `MS_ERR_INSUFFICIENT_BUFFER`: the size of the message that
    /// did not fit (it stays queued), so a buffer of that size reads it; 0 after other errors.
    pub len: usize,
    /// Who wrote it.
    pub source: ms_source,
    /// Messages this reader lost (it lagged past the capacity) just before this one.
    pub lost: u64,
}

/// What `ms_info` reports (Windows' `GetMailslotInfo`); nothing is consumed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ms_slot_info {
    /// The maximum message size the name was opened with (0: `MS_MAX_MESSAGE_SIZE`).
    pub max_message_size: u64,
    /// Size of the next message (0 for a zero-length one), `MS_NO_MESSAGE` when none waits.
    pub next_size: u64,
    /// Number of queued messages, zero-length ones included.
    pub count: u64,
    /// The read timeout in milliseconds (`MS_WAIT_FOREVER`: forever).
    pub read_timeout_ms: u32,
}

/// Options of `ms_writer_open`. All zero (or a NULL pointer): the user scope.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ms_writer_options {
    /// `MS_SCOPE_USER` or `MS_SCOPE_GLOBAL`.
    pub scope: u32,
    /// With `MS_SCOPE_USER`: the runtime directory (NULL: the user's).
    pub dir: *const c_char,
}

/// The server options once `ffi` has read C's pointers.
#[derive(Debug, Clone)]
pub(crate) struct ServerOptions {
    pub(crate) raw: ms_server_options,
    pub(crate) dir: Option<PathBuf>,
}

/// A server instance of a mailslot (opaque to C).
#[derive(Debug)]
pub struct ms_server {
    // Dropped first: no datagram is delivered into a name that is closing.
    _role: Option<NetRole>,
    server: Server,
}

/// A writer of a local or remote mailslot (opaque to C).
#[derive(Debug)]
pub struct ms_writer {
    target: WriterTarget,
}

#[derive(Debug)]
enum WriterTarget {
    Local(Box<Writer>),
    Remote(Box<RemoteWriter>),
}

/// A writer of `\\HOST\mailslot\NAME`, `\\*\mailslot\NAME`: where and how to send.
#[derive(Debug)]
struct RemoteWriter {
    config: NetConfig,
    target: net::RemoteTarget,
    name: String,
}

fn invalid_option(what: impl Into<String>) -> Failure {
    Failure::new(ms_error::MS_ERR_INVALID_OPTION, what)
}

fn scope_of(scope: u32, dir: Option<PathBuf>) -> Result<Scope, Failure> {
    match (scope, dir) {
        (MS_SCOPE_USER, None) => Ok(Scope::User),
        (MS_SCOPE_USER, Some(dir)) => Ok(Scope::Dir(dir)),
        (MS_SCOPE_GLOBAL, None) => Ok(Scope::Global),
        (MS_SCOPE_GLOBAL, Some(_)) => Err(invalid_option(
            "a directory is for the user scope; the global scope is the host service's",
        )),
        (other, _) => Err(invalid_option(format!("unknown scope {other}"))),
    }
}

pub(crate) fn timeout_to_ms(timeout: Timeout) -> u32 {
    match timeout {
        Timeout::Immediate => 0,
        Timeout::Forever => MS_WAIT_FOREVER,
        // A finite wait never reads back as "forever" (or as 0 for under a millisecond).
        Timeout::After(d) => d.as_millis().clamp(1, u128::from(MS_WAIT_FOREVER - 1)) as u32,
    }
}

pub(crate) fn source_of(source: &Source) -> ms_source {
    let mut out = ms_source {
        kind: MS_SOURCE_LOCAL,
        pid: 0,
        uid: 0,
        ip: [0; 4],
        port: 0,
        suffix: 0,
        netbios_name: [0; 16],
    };
    match source {
        Source::Local { pid, uid } => {
            out.pid = *pid;
            out.uid = *uid;
        }
        Source::Network {
            ip,
            port,
            netbios_name,
            suffix,
            ..
        } => {
            out.kind = MS_SOURCE_NETWORK;
            out.ip = ip.octets();
            out.port = *port;
            out.suffix = *suffix;
            // At most 15 bytes and a NUL; a NUL inside the name ends it early, as C reads it.
            for (dst, &b) in out
                .netbios_name
                .iter_mut()
                .zip(netbios_name.as_bytes().iter().take(15))
            {
                *dst = b as c_char;
            }
        }
    }
    out
}

impl ms_server {
    pub(crate) fn open(name: &str, options: ServerOptions) -> Result<ms_server, Failure> {
        let raw = options.raw;
        let delivery = match raw.delivery {
            MS_DELIVERY_ALL => Delivery::All,
            MS_DELIVERY_ONE => Delivery::One,
            other => return Err(invalid_option(format!("unknown delivery {other}"))),
        };
        let overflow = match raw.overflow {
            MS_OVERFLOW_DROP_OLDEST => Overflow::DropOldest,
            MS_OVERFLOW_REFUSE => Overflow::Refuse,
            MS_OVERFLOW_BLOCK => Overflow::Block,
            other => return Err(invalid_option(format!("unknown overflow policy {other}"))),
        };
        let scope = scope_of(raw.scope, options.dir)?;
        let mut builder = Server::builder(name)
            .max_message_size(raw.max_message_size as usize)
            .read_timeout(Timeout::from_millis(raw.read_timeout_ms))
            .shared(raw.shared != 0)
            .delivery(delivery)
            .overflow(overflow)
            .scope(scope.clone());
        if raw.capacity != 0 {
            builder = builder.capacity(raw.capacity);
        }
        if raw.mode != 0 {
            builder = builder.mode(raw.mode);
        }
        if raw.has_group != 0 {
            builder = builder.group(raw.group);
        }
        if raw.network != 0 && scope == Scope::Global {
            return Err(invalid_option(
                "the global scope's network role is the host service's: leave network at 0",
            ));
        }
        let server = builder.open()?;
        let role = if raw.network != 0 {
            let dir = server.dir().to_path_buf();
            let config = netenv::config(&dir)?;
            Some(NetRole::start(config, Deliverer::callback(dir))?)
        } else {
            None
        };
        Ok(ms_server {
            _role: role,
            server,
        })
    }

    pub(crate) fn recv(&mut self) -> Result<ms::Message, Failure> {
        Ok(self.server.recv()?)
    }

    /// Reads into `buf`; on `MS_ERR_INSUFFICIENT_BUFFER` also says the next message's size.
    pub(crate) fn recv_into(
        &mut self,
        buf: &mut [u8],
    ) -> Result<ms::Received, (Failure, Option<usize>)> {
        self.server.recv_into(buf).map_err(|e| {
            let next = (e.kind() == ms::ErrorKind::InsufficientBuffer)
                .then(|| self.server.info().next_size)
                .flatten();
            (Failure::from(e), next)
        })
    }

    pub(crate) fn info(&self) -> ms_slot_info {
        let info = self.server.info();
        ms_slot_info {
            max_message_size: info.max_message_size as u64,
            next_size: info.next_size.map_or(MS_NO_MESSAGE, |n| n as u64),
            count: info.count as u64,
            read_timeout_ms: timeout_to_ms(info.read_timeout),
        }
    }

    pub(crate) fn set_read_timeout(&mut self, ms: u32) {
        self.server.set_read_timeout(Timeout::from_millis(ms));
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.server.as_raw_fd()
    }
}

/// A message for C: the bytes with a NUL after them, boxed; `ms_message_free` undoes it.
pub(crate) fn message_of(message: ms::Message) -> ms_message {
    let mut data = message.data;
    let len = data.len();
    data.push(0);
    let data = Box::into_raw(data.into_boxed_slice()) as *mut u8;
    ms_message {
        data,
        len,
        source: source_of(&message.source),
        lost: message.lost,
    }
}

/// A remote path's target for `net::send`, or `None` for a local one.
fn remote_target(path: &str) -> Result<Option<(net::RemoteTarget, String)>, Failure> {
    let (target, name) = Target::parse(path)?;
    let target = match target {
        Target::Local => return Ok(None),
        Target::AllInWorkgroup => net::RemoteTarget::OwnGroup,
        Target::Host(host) => net::RemoteTarget::parse(&host)?,
    };
    Ok(Some((target, name.as_str().to_owned())))
}

impl ms_writer {
    /// Opens a writer of `path`: local names must have a server (`MS_ERR_NOT_FOUND`); remote
    /// ones are checked only for their form, as Windows' `CreateFile` does.
    pub(crate) fn open(path: &str, scope: u32, dir: Option<PathBuf>) -> Result<ms_writer, Failure> {
        let scope = scope_of(scope, dir)?;
        let target = match remote_target(path)? {
            None => WriterTarget::Local(Box::new(Writer::open_in(&scope, path)?)),
            Some((target, name)) => {
                // The role (a holder to hand the datagram to) is a user directory's: the
                // given one, else the user's (the global scope's is the host service's).
                let dir = match &scope {
                    Scope::Global => Scope::User.dir()?,
                    scope => scope.dir()?,
                };
                WriterTarget::Remote(Box::new(RemoteWriter {
                    config: netenv::config(&dir)?,
                    target,
                    name,
                }))
            }
        };
        Ok(ms_writer { target })
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), Failure> {
        match &mut self.target {
            WriterTarget::Local(writer) => Ok(writer.write(data)?),
            WriterTarget::Remote(remote) => {
                let RemoteWriter {
                    config,
                    target,
                    name,
                } = &**remote;
                net::send(config, target, name, data, &SendOptions::default())?;
                Ok(())
            }
        }
    }

    pub(crate) fn flush(&mut self) -> Result<(), Failure> {
        match &mut self.target {
            WriterTarget::Local(writer) => Ok(writer.flush()?),
            WriterTarget::Remote(_) => Ok(()),
        }
    }

    pub(crate) fn set_write_timeout(&mut self, ms: u32) {
        if let WriterTarget::Local(writer) = &mut self.target {
            writer.set_write_timeout(Timeout::from_millis(ms));
        }
    }
}

/// One write to `path`, local (user scope) or remote.
pub(crate) fn write_to(path: &str, data: &[u8]) -> Result<(), Failure> {
    match remote_target(path)? {
        None => Ok(ms::write(path, data)?),
        Some((target, name)) => {
            let config = netenv::config(&Scope::User.dir()?)?;
            net::send(&config, &target, &name, data, &SendOptions::default())?;
            Ok(())
        }
    }
}
