//! The host service's packets: what clients ask and what the service answers, as bytes.
//!
//! Pure code: no I/O. Every packet is one `SOCK_SEQPACKET` message whose first byte is its
//! type; integers are little-endian; a name is a length byte and that many bytes. A packet
//! that does not parse is a protocol error (the service closes that connection; a client
//! reports `Io`), never a panic.

use std::net::Ipv4Addr;

use crate::error::ErrorKind;
use crate::net::NetSource;
use crate::registry::InstanceStatus;

/// Size of a receive buffer that holds any packet (the longest is a datagram handed to a
/// subscriber: a UDP payload and its source).
pub const MAX_PACKET: usize = 66 * 1024;

/// What a reader asks for when it opens a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReader {
    pub name: String,
    pub shared: bool,
    pub deliver_one: bool,
    pub refuse_when_full: bool,
    /// Permission bits of a name this open creates (0o777 at most).
    pub mode: u16,
    pub group: Option<u32>,
    pub max_message: u32,
    pub capacity: u64,
}

/// A client's packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    OpenReader(OpenReader),
    OpenWriter {
        name: String,
    },
    /// A reader is about to sleep at `cursor`: ring its connection once something is past it.
    /// It also reports its counters, for `status`.
    Arm {
        cursor: u64,
        delivered: u64,
        lost: u64,
    },
    /// A reader's counters, for `status`, without asking to be rung.
    Report {
        cursor: u64,
        delivered: u64,
        lost: u64,
    },
    /// A reader of a `deliver one` name asks for the next message nobody has taken, of at
    /// most `limit` bytes; with `wait`, the claim stays with the service until one comes.
    /// A new claim replaces one that waits.
    Claim {
        limit: u64,
        wait: bool,
    },
    /// Answer with what this connection's writes came to so far.
    Flush,
    Status,
    /// A user's network role asks for the LAN datagrams of its own names (on this port).
    Subscribe {
        port: u16,
    },
    /// The names (case-folded) the subscriber's runtime directory holds now; replaces the
    /// previous list.
    Names(Vec<String>),
}

/// Most names one subscriber lists (what one packet holds with room to spare).
pub const MAX_SUBSCRIBED_NAMES: usize = 512;

/// A datagram the service's network role received for a subscriber's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub name: String,
    pub source: NetSource,
    pub data: Vec<u8>,
}

/// One name in a status answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    pub name: String,
    pub shared: bool,
    pub deliver_one: bool,
    pub owner: u32,
    pub group: u32,
    pub mode: u16,
    pub instances: Vec<InstanceStatus>,
}

/// The service's packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The reader joined; its ring's read-only descriptor comes with the packet.
    Reader {
        id: u64,
        cursor: u64,
        next_seq: u64,
    },
    /// The writer may write; the ring's read-only descriptor comes with the packet.
    Writer,
    /// Something was written past the reader's cursor.
    Bell,
    /// The writer's submission ring was consumed (it asked, being about to block).
    Room,
    /// The record at `pos` of the ring is this reader's; `lost` messages nobody took were
    /// overwritten before it.
    Claimed {
        pos: u64,
        lost: u64,
    },
    /// The next message is `len` bytes, more than the claim's limit; it stays queued.
    TooSmall {
        len: u64,
    },
    /// Nothing to take now (a claim without `wait`).
    Nothing,
    /// Writes of this connection: appended so far, and failed so far with the last failure.
    Flushed {
        appended: u64,
        failed: u64,
        last_error: Option<(ErrorKind, String)>,
    },
    Status(Vec<NameEntry>),
    /// The subscription stands: the service holds (or tries to hold) this port.
    Subscribed,
    Datagram(Datagram),
    Error(ErrorKind, String),
}

mod tag {
    pub const OPEN_READER: u8 = 1;
    pub const OPEN_WRITER: u8 = 2;
    pub const ARM: u8 = 3;
    pub const FLUSH: u8 = 6;
    pub const STATUS: u8 = 7;
    pub const SUBSCRIBE: u8 = 8;
    pub const NAMES: u8 = 9;
    pub const REPORT: u8 = 11;
    pub const CLAIM: u8 = 12;
    pub const READER: u8 = 0x81;
    pub const WRITER: u8 = 0x82;
    pub const BELL: u8 = 0x83;
    pub const FLUSHED: u8 = 0x84;
    pub const STATUS_REPLY: u8 = 0x85;
    pub const SUBSCRIBED: u8 = 0x86;
    pub const DATAGRAM: u8 = 0x87;
    pub const ROOM: u8 = 0x88;
    pub const CLAIMED: u8 = 0x89;
    pub const TOO_SMALL: u8 = 0x8a;
    pub const NOTHING: u8 = 0x8b;
    pub const ERROR: u8 = 0x8f;
}

/// A packet that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

struct Out(Vec<u8>);

impl Out {
    fn new(tag: u8) -> Out {
        Out(vec![tag])
    }
    fn u8(&mut self, v: u8) -> &mut Out {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Out {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Out {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Out {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A string of at most 255 bytes (cut at a character boundary).
    fn short(&mut self, s: &str) -> &mut Out {
        let mut end = s.len().min(255);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u8(end as u8);
        self.0.extend_from_slice(&s.as_bytes()[..end]);
        self
    }
    /// A string of at most 4096 bytes.
    fn long(&mut self, s: &str) -> &mut Out {
        let mut end = s.len().min(4096);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u16(end as u16);
        self.0.extend_from_slice(&s.as_bytes()[..end]);
        self
    }
}

struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self, len: usize) -> Result<String, Malformed> {
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| Malformed)
    }
    fn short(&mut self) -> Result<String, Malformed> {
        let len = self.u8()? as usize;
        self.string(len)
    }
    fn long(&mut self) -> Result<String, Malformed> {
        let len = self.u16()? as usize;
        self.string(len)
    }
    fn end(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

/// Error kinds by wire code (append only: the code is the index).
const KINDS: [ErrorKind; 13] = [
    ErrorKind::InvalidName,
    ErrorKind::AlreadyExists,
    ErrorKind::NotFound,
    ErrorKind::PermissionDenied,
    ErrorKind::MessageTooLarge,
    ErrorKind::InsufficientBuffer,
    ErrorKind::TimedOut,
    ErrorKind::QueueFull,
    ErrorKind::NetworkUnavailable,
    ErrorKind::Corrupted,
    ErrorKind::Io,
    ErrorKind::ServiceUnavailable,
    ErrorKind::InvalidOption,
];

fn kind_code(kind: ErrorKind) -> u8 {
    KINDS.iter().position(|k| *k == kind).unwrap_or(10) as u8
}

fn kind_of(code: u8) -> ErrorKind {
    KINDS.get(code as usize).copied().unwrap_or(ErrorKind::Io)
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::OpenReader(o) => {
                let flags = u8::from(o.shared)
                    | u8::from(o.deliver_one) << 1
                    | u8::from(o.refuse_when_full) << 2
                    | u8::from(o.group.is_some()) << 3;
                let mut out = Out::new(tag::OPEN_READER);
                out.u8(flags)
                    .u16(o.mode)
                    .u32(o.group.unwrap_or(0))
                    .u32(o.max_message)
                    .u64(o.capacity)
                    .short(&o.name);
                out.0
            }
            Request::OpenWriter { name } => Out::new(tag::OPEN_WRITER).short(name).0.clone(),
            Request::Report {
                cursor,
                delivered,
                lost,
            } => Out::new(tag::REPORT)
                .u64(*cursor)
                .u64(*delivered)
                .u64(*lost)
                .0
                .clone(),
            Request::Arm {
                cursor,
                delivered,
                lost,
            } => Out::new(tag::ARM)
                .u64(*cursor)
                .u64(*delivered)
                .u64(*lost)
                .0
                .clone(),
            Request::Flush => vec![tag::FLUSH],
            Request::Claim { limit, wait } => Out::new(tag::CLAIM)
                .u64(*limit)
                .u8(u8::from(*wait))
                .0
                .clone(),
            Request::Status => vec![tag::STATUS],
            Request::Subscribe { port } => Out::new(tag::SUBSCRIBE).u16(*port).0.clone(),
            Request::Names(names) => {
                let mut out = Out::new(tag::NAMES);
                let names = &names[..names.len().min(MAX_SUBSCRIBED_NAMES)];
                out.u16(names.len() as u16);
                for name in names {
                    out.short(name);
                }
                out.0
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, Malformed> {
        let (&first, rest) = bytes.split_first().ok_or(Malformed)?;
        let mut r = In(rest);
        let request = match first {
            tag::OPEN_READER => {
                let flags = r.u8()?;
                let mode = r.u16()?;
                let group = r.u32()?;
                Request::OpenReader(OpenReader {
                    shared: flags & 1 != 0,
                    deliver_one: flags & 2 != 0,
                    refuse_when_full: flags & 4 != 0,
                    mode,
                    group: (flags & 8 != 0).then_some(group),
                    max_message: r.u32()?,
                    capacity: r.u64()?,
                    name: r.short()?,
                })
            }
            tag::OPEN_WRITER => Request::OpenWriter { name: r.short()? },
            tag::REPORT => Request::Report {
                cursor: r.u64()?,
                delivered: r.u64()?,
                lost: r.u64()?,
            },
            tag::ARM => Request::Arm {
                cursor: r.u64()?,
                delivered: r.u64()?,
                lost: r.u64()?,
            },
            tag::FLUSH => Request::Flush,
            tag::CLAIM => Request::Claim {
                limit: r.u64()?,
                wait: r.u8()? != 0,
            },
            tag::STATUS => Request::Status,
            tag::SUBSCRIBE => Request::Subscribe { port: r.u16()? },
            tag::NAMES => {
                let count = r.u16()? as usize;
                if count > MAX_SUBSCRIBED_NAMES {
                    return Err(Malformed);
                }
                let mut names = Vec::with_capacity(count);
                for _ in 0..count {
                    names.push(r.short()?);
                }
                Request::Names(names)
            }
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(request)
    }
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Reply::Reader {
                id,
                cursor,
                next_seq,
            } => Out::new(tag::READER)
                .u64(*id)
                .u64(*cursor)
                .u64(*next_seq)
                .0
                .clone(),
            Reply::Writer => vec![tag::WRITER],
            Reply::Bell => vec![tag::BELL],
            Reply::Room => vec![tag::ROOM],
            Reply::Claimed { pos, lost } => Out::new(tag::CLAIMED).u64(*pos).u64(*lost).0.clone(),
            Reply::TooSmall { len } => Out::new(tag::TOO_SMALL).u64(*len).0.clone(),
            Reply::Nothing => vec![tag::NOTHING],
            Reply::Flushed {
                appended,
                failed,
                last_error,
            } => {
                let mut out = Out::new(tag::FLUSHED);
                out.u64(*appended).u64(*failed);
                if let Some((kind, message)) = last_error {
                    out.u8(1).u8(kind_code(*kind)).long(message);
                } else {
                    out.u8(0);
                }
                out.0
            }
            Reply::Status(names) => {
                let mut out = Out::new(tag::STATUS_REPLY);
                out.u32(names.len() as u32);
                for n in names {
                    out.short(&n.name)
                        .u8(u8::from(n.shared) | u8::from(n.deliver_one) << 1)
                        .u32(n.owner)
                        .u32(n.group)
                        .u16(n.mode)
                        .u32(n.instances.len() as u32);
                    for i in &n.instances {
                        out.u64(i.id)
                            .u32(i.pid)
                            .u32(i.uid)
                            .u64(i.delivered)
                            .u64(i.lost)
                            .u64(i.backlog);
                    }
                }
                out.0
            }
            Reply::Subscribed => vec![tag::SUBSCRIBED],
            Reply::Datagram(d) => {
                let mut out = Out::new(tag::DATAGRAM);
                let from = &d.source;
                out.short(&d.name)
                    .u32(u32::from(from.ip))
                    .u16(from.port)
                    .short(&from.netbios_name)
                    .u8(from.netbios_suffix)
                    .short(&from.destination_name)
                    .u8(from.destination_suffix)
                    .u8(from.msg_type);
                out.0.extend_from_slice(&d.data);
                out.0
            }
            Reply::Error(kind, message) => Out::new(tag::ERROR)
                .u8(kind_code(*kind))
                .long(message)
                .0
                .clone(),
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Reply, Malformed> {
        let (&first, rest) = bytes.split_first().ok_or(Malformed)?;
        let mut r = In(rest);
        let reply = match first {
            tag::READER => Reply::Reader {
                id: r.u64()?,
                cursor: r.u64()?,
                next_seq: r.u64()?,
            },
            tag::WRITER => Reply::Writer,
            tag::BELL => Reply::Bell,
            tag::ROOM => Reply::Room,
            tag::CLAIMED => Reply::Claimed {
                pos: r.u64()?,
                lost: r.u64()?,
            },
            tag::TOO_SMALL => Reply::TooSmall { len: r.u64()? },
            tag::NOTHING => Reply::Nothing,
            tag::FLUSHED => {
                let appended = r.u64()?;
                let failed = r.u64()?;
                let last_error = match r.u8()? {
                    0 => None,
                    _ => Some((kind_of(r.u8()?), r.long()?)),
                };
                Reply::Flushed {
                    appended,
                    failed,
                    last_error,
                }
            }
            tag::STATUS_REPLY => {
                let count = r.u32()? as usize;
                let mut names = Vec::new();
                for _ in 0..count {
                    let name = r.short()?;
                    let flags = r.u8()?;
                    let owner = r.u32()?;
                    let group = r.u32()?;
                    let mode = r.u16()?;
                    let n = r.u32()? as usize;
                    let mut instances = Vec::new();
                    for _ in 0..n {
                        instances.push(InstanceStatus {
                            id: r.u64()?,
                            pid: r.u32()?,
                            uid: r.u32()?,
                            delivered: r.u64()?,
                            lost: r.u64()?,
                            backlog: r.u64()?,
                            // The service's rings are its own: nobody can damage them.
                            corrupt: 0,
                        });
                    }
                    names.push(NameEntry {
                        name,
                        shared: flags & 1 != 0,
                        deliver_one: flags & 2 != 0,
                        owner,
                        group,
                        mode,
                        instances,
                    });
                }
                Reply::Status(names)
            }
            tag::ERROR => Reply::Error(kind_of(r.u8()?), r.long()?),
            tag::SUBSCRIBED => Reply::Subscribed,
            tag::DATAGRAM => {
                return Ok(Reply::Datagram(Datagram {
                    name: r.short()?,
                    source: NetSource {
                        ip: Ipv4Addr::from(r.u32()?),
                        port: r.u16()?,
                        netbios_name: r.short()?,
                        netbios_suffix: r.u8()?,
                        destination_name: r.short()?,
                        destination_suffix: r.u8()?,
                        msg_type: r.u8()?,
                    },
                    data: r.0.to_vec(),
                }))
            }
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let all = [
            Request::OpenReader(OpenReader {
                name: "taxes\\bob".into(),
                shared: true,
                deliver_one: false,
                refuse_when_full: true,
                mode: 0o640,
                group: Some(1234),
                max_message: 424,
                capacity: 1 << 20,
            }),
            Request::OpenWriter { name: "x".into() },
            Request::Arm {
                cursor: 7,
                delivered: 8,
                lost: 9,
            },
            Request::Report {
                cursor: 1,
                delivered: 2,
                lost: 3,
            },
            Request::Flush,
            Request::Claim {
                limit: 424,
                wait: true,
            },
            Request::Status,
            Request::Subscribe { port: 138 },
            Request::Names(vec!["news".into(), "taxes\\bob".into()]),
            Request::Names(vec![]),
        ];
        for request in all {
            assert_eq!(Request::decode(&request.encode()), Ok(request));
        }
    }

    #[test]
    fn replies_round_trip() {
        let all = [
            Reply::Reader {
                id: 1,
                cursor: 2,
                next_seq: 3,
            },
            Reply::Writer,
            Reply::Bell,
            Reply::Room,
            Reply::Claimed { pos: 4096, lost: 2 },
            Reply::TooSmall { len: 1 << 20 },
            Reply::Nothing,
            Reply::Flushed {
                appended: 5,
                failed: 1,
                last_error: Some((ErrorKind::NotFound, "gone".into())),
            },
            Reply::Flushed {
                appended: 5,
                failed: 0,
                last_error: None,
            },
            Reply::Status(vec![NameEntry {
                name: "N".into(),
                shared: true,
                deliver_one: false,
                owner: 1000,
                group: 100,
                mode: 0o660,
                instances: vec![InstanceStatus {
                    id: 9,
                    pid: 10,
                    uid: 11,
                    delivered: 12,
                    lost: 13,
                    backlog: 14,
                    corrupt: 0,
                }],
            }]),
            Reply::Error(ErrorKind::PermissionDenied, "no".into()),
            Reply::Subscribed,
            Reply::Datagram(Datagram {
                name: "MESSNGR".into(),
                source: NetSource {
                    ip: Ipv4Addr::new(10, 0, 0, 2),
                    port: 138,
                    netbios_name: "HOSTB".into(),
                    netbios_suffix: 3,
                    destination_name: "HOSTA".into(),
                    destination_suffix: 3,
                    msg_type: 0x10,
                },
                data: b"A\0B\0hi\0".to_vec(),
            }),
        ];
        for reply in all {
            assert_eq!(Reply::decode(&reply.encode()), Ok(reply));
        }
    }

    #[test]
    fn truncated_and_unknown_packets_are_malformed_never_a_panic() {
        for packet in [
            Request::OpenReader(OpenReader {
                name: "abc".into(),
                shared: false,
                deliver_one: false,
                refuse_when_full: false,
                mode: 0o600,
                group: None,
                max_message: 0,
                capacity: 0,
            })
            .encode(),
            Request::Arm {
                cursor: 1,
                delivered: 2,
                lost: 3,
            }
            .encode(),
        ] {
            for cut in 0..packet.len() {
                assert_eq!(Request::decode(&packet[..cut]), Err(Malformed));
            }
            let mut longer = packet.clone();
            longer.push(0);
            assert_eq!(Request::decode(&longer), Err(Malformed));
        }
        assert_eq!(Request::decode(&[0x55]), Err(Malformed));
        let status = Reply::Status(vec![]).encode();
        assert_eq!(Reply::decode(&status[..3]), Err(Malformed));
        // A count larger than the packet cannot allocate or loop beyond the bytes present.
        assert_eq!(
            Reply::decode(&[0x85, 0xff, 0xff, 0xff, 0xff]),
            Err(Malformed)
        );
    }
}
