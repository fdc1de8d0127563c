//! The transports the scenarios compare, one module each, behind two small traits: a fan-out
//! writer/reader pair and a ping-pong endpoint. Peers that need a heavy dependency sit behind
//! a cargo feature so the default build stays fast.

use crate::args::Args;
use crate::proc::BenchResult;

pub mod eventfd;
pub mod futex;
pub mod global;
#[cfg(feature = "peers-iceoryx2")]
pub mod iceoryx2;
pub mod mailslot;
pub mod unix_dgram;
#[cfg(feature = "peers-zmq")]
pub mod zmq;

/// A transport measured by the scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// This project: a shared mailslot (per-name shared-memory log, futex doorbells).
    Mailslot,
    /// This project's global scope: a name owned by the host service (a process of its own),
    /// clients of other users (when the bench runs as root).
    MailslotGlobal,
    /// Raw `SOCK_DGRAM` Unix sockets: the writer sends each message to each reader.
    UnixDgram,
    /// A bare futex handoff on a shared word (latency only).
    Futex,
    /// The same handoff yielding once before each sleep, as mailslot's reader does (latency
    /// only).
    FutexYield,
    /// A blocking eventfd handoff (latency only).
    Eventfd,
    /// ZeroMQ PUB/SUB over `ipc://` with `XPUB_NODROP` (feature `peers-zmq`).
    Zmq,
    /// iceoryx2 publish-subscribe plus an event service with a blocking listener (feature
    /// `peers-iceoryx2`).
    Iceoryx2,
}

impl Peer {
    pub const ALL: [Peer; 8] = [
        Peer::Mailslot,
        Peer::MailslotGlobal,
        Peer::UnixDgram,
        Peer::Futex,
        Peer::FutexYield,
        Peer::Eventfd,
        Peer::Zmq,
        Peer::Iceoryx2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Peer::Mailslot => "mailslot",
            Peer::MailslotGlobal => "mailslot-global",
            Peer::UnixDgram => "unix-dgram",
            Peer::Futex => "futex",
            Peer::FutexYield => "futex-yield",
            Peer::Eventfd => "eventfd",
            Peer::Zmq => "zmq",
            Peer::Iceoryx2 => "iceoryx2",
        }
    }

    pub fn parse(s: &str) -> BenchResult<Peer> {
        Peer::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown peer `{s}`"))
    }

    /// The cargo feature a peer needs, if it is not compiled in.
    pub fn missing_feature(self) -> Option<&'static str> {
        match self {
            Peer::Zmq if !cfg!(feature = "peers-zmq") => Some("peers-zmq"),
            Peer::Iceoryx2 if !cfg!(feature = "peers-iceoryx2") => Some("peers-iceoryx2"),
            _ => None,
        }
    }

    pub fn does_fanout(self) -> bool {
        matches!(
            self,
            Peer::Mailslot | Peer::MailslotGlobal | Peer::UnixDgram | Peer::Zmq | Peer::Iceoryx2
        )
    }

    pub fn does_latency(self) -> bool {
        true
    }
}

impl std::str::FromStr for Peer {
    type Err = String;
    fn from_str(s: &str) -> Result<Peer, String> {
        Peer::parse(s)
    }
}

/// What a writer meets when the slowest reader is a whole bound behind (`fanout --overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowMode {
    /// Messages are dropped (mailslot: the oldest, and readers are told how many).
    Drop,
    /// The write is refused (mailslot: `QueueFull`); the bench's writer retries, counting.
    Refuse,
    /// The writer sleeps until the slowest reader makes room (mailslot: `Overflow::Block`).
    Block,
}

impl OverflowMode {
    pub fn name(self) -> &'static str {
        match self {
            OverflowMode::Drop => "drop",
            OverflowMode::Refuse => "refuse",
            OverflowMode::Block => "block",
        }
    }
}

impl std::str::FromStr for OverflowMode {
    type Err = String;
    fn from_str(s: &str) -> Result<OverflowMode, String> {
        [
            OverflowMode::Drop,
            OverflowMode::Refuse,
            OverflowMode::Block,
        ]
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| format!("unknown overflow `{s}` (drop, refuse, block)"))
    }
}

/// The bound a fan-out child was given (`--overflow` and `--bound`, messages per reader), or
/// `None`: the transport's own defaults.
pub fn bound_of(args: &Args) -> BenchResult<Option<(OverflowMode, usize)>> {
    match args.str("overflow") {
        None => Ok(None),
        Some(mode) => Ok(Some((mode.parse()?, args.need("bound")?))),
    }
}

/// The receiving end of a fan-out: one reader process.
pub trait FanoutReader {
    /// Blocks for the next message; returns its length and how many messages were lost just
    /// before it (0 for transports that do not say). `None`: nothing came for a while with a
    /// transport that drops the newest messages, so the round's tail was dropped.
    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<Option<(usize, u64)>>;
    /// Receives so far that waited out a guard timeout with a message already there (lost
    /// wake-ups; only the global scope has such a guard).
    fn stalls(&self) -> u64 {
        0
    }
}

/// The sending end of a fan-out: the one writer process, reaching every reader.
pub trait FanoutWriter {
    fn send(&mut self, data: &[u8]) -> BenchResult<()>;
    /// After the last message of a round (a pipelined transport confirms the round here).
    fn end_round(&mut self) -> BenchResult<()> {
        Ok(())
    }
    /// Sends retried so far because the transport refused them (`--overflow refuse`).
    fn retries(&self) -> u64 {
        0
    }
}

/// One side of a ping-pong.
pub trait Endpoint {
    /// Called once both sides have opened their own inbox (after `ready`).
    fn connect(&mut self) -> BenchResult<()> {
        Ok(())
    }
    fn send(&mut self, data: &[u8]) -> BenchResult<()>;
    /// Blocks for the next message; returns its length.
    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<usize>;
    /// As [`FanoutReader::stalls`].
    fn stalls(&self) -> u64 {
        0
    }
}

/// Which side of the ping-pong a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Sends first and measures the round trip.
    Ping,
    /// Echoes.
    Pong,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Ping => "ping",
            Side::Pong => "pong",
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Ping => Side::Pong,
            Side::Pong => Side::Ping,
        }
    }
}

#[cfg_attr(
    all(feature = "peers-zmq", feature = "peers-iceoryx2"),
    allow(dead_code)
)]
fn not_built(peer: Peer) -> String {
    format!(
        "peer {} is not built in (cargo feature `{}`)",
        peer.name(),
        peer.missing_feature().unwrap_or("?")
    )
}

/// Opens reader `--index` of a fan-out (before it reports `ready`).
pub fn fanout_reader(peer: Peer, args: &Args) -> BenchResult<Box<dyn FanoutReader>> {
    match peer {
        Peer::Mailslot => mailslot::fanout_reader(args),
        Peer::MailslotGlobal => global::fanout_reader(args),
        Peer::UnixDgram => unix_dgram::fanout_reader(args),
        #[cfg(feature = "peers-zmq")]
        Peer::Zmq => zmq::fanout_reader(args),
        #[cfg(feature = "peers-iceoryx2")]
        Peer::Iceoryx2 => iceoryx2::fanout_reader(args),
        #[cfg(not(feature = "peers-zmq"))]
        Peer::Zmq => Err(not_built(peer)),
        #[cfg(not(feature = "peers-iceoryx2"))]
        Peer::Iceoryx2 => Err(not_built(peer)),
        Peer::Futex | Peer::FutexYield | Peer::Eventfd => {
            Err(format!("{} has no fan-out", peer.name()))
        }
    }
}

/// Opens the fan-out writer, once every reader is ready.
pub fn fanout_writer(peer: Peer, args: &Args) -> BenchResult<Box<dyn FanoutWriter>> {
    match peer {
        Peer::Mailslot => mailslot::fanout_writer(args),
        Peer::MailslotGlobal => global::fanout_writer(args),
        Peer::UnixDgram => unix_dgram::fanout_writer(args),
        #[cfg(feature = "peers-zmq")]
        Peer::Zmq => zmq::fanout_writer(args),
        #[cfg(feature = "peers-iceoryx2")]
        Peer::Iceoryx2 => iceoryx2::fanout_writer(args),
        #[cfg(not(feature = "peers-zmq"))]
        Peer::Zmq => Err(not_built(peer)),
        #[cfg(not(feature = "peers-iceoryx2"))]
        Peer::Iceoryx2 => Err(not_built(peer)),
        Peer::Futex | Peer::FutexYield | Peer::Eventfd => {
            Err(format!("{} has no fan-out", peer.name()))
        }
    }
}

/// Opens this side's inbox of a ping-pong (before it reports `ready`).
pub fn endpoint(peer: Peer, side: Side, args: &Args) -> BenchResult<Box<dyn Endpoint>> {
    match peer {
        Peer::Mailslot => mailslot::endpoint(side, args),
        Peer::MailslotGlobal => global::endpoint(side, args),
        Peer::UnixDgram => unix_dgram::endpoint(side, args),
        Peer::Futex => futex::endpoint(side, args, false),
        Peer::FutexYield => futex::endpoint(side, args, true),
        Peer::Eventfd => eventfd::endpoint(side, args),
        #[cfg(feature = "peers-zmq")]
        Peer::Zmq => zmq::endpoint(side, args),
        #[cfg(feature = "peers-iceoryx2")]
        Peer::Iceoryx2 => iceoryx2::endpoint(side, args),
        #[cfg(not(feature = "peers-zmq"))]
        Peer::Zmq => Err(not_built(peer)),
        #[cfg(not(feature = "peers-iceoryx2"))]
        Peer::Iceoryx2 => Err(not_built(peer)),
    }
}
