//! The host's network role and remote writes (docs/semantics.md, docs/wire.md).
//!
//! - [`NetRole`]: a process's interest in the role of one runtime directory and UDP port. At
//!   most one process per host holds it (an exclusive `flock` on `<dir>/network-<port>.lock`,
//!   waited for in a blocking call on its own thread, released by the kernel when the holder
//!   closes or dies); the holder binds `bind:port` (default `0.0.0.0:138`), validates every
//!   datagram (the receive checks of docs/wire.md) and delivers mailslot writes into the local
//!   mailslots ([`Sink::Local`]) or hands them to a [`DeliverFn`] callback.
//!   It also answers NetBIOS name queries for our name on UDP 137 when that port is free, and
//!   sends datagrams for other local processes from its port (see [`send`]).
//! - [`send`]: a remote write to a host, a workgroup or `*`, with size limits checked first.
//! - [`status`]: the role of a directory and port as `mailslot status` shows it.
//!
//! What it does not do: reassemble fragments (nobody sends them), relay between subnets
//! (NetBIOS broadcasts stay on their subnet), register names with WINS, or trust anything in a
//! datagram (sizes, offsets, names and counts are all checked against the real length).
//!
//! # Receiving
//!
//! Accepted destinations: our NetBIOS name with any suffix, our workgroup with any suffix,
//! `*`, and everything with [`NetConfig::accept_any`]. Fragments, malformed datagrams, other
//! datagram types, wrong destinations and names without a local server are dropped and counted
//! ([`NetCounters`]). Identical datagrams within [`NetConfig::dedupe_window`] (2 s) are
//! delivered once.
//!
//! Our own datagrams: a broadcast from this host comes back to its own role socket (the kernel
//! loops broadcasts back, once per interface it went out on). They are delivered like anyone
//! else's, once (the dedupe key leaves out SOURCE_IP, so the per-interface copies are one): a
//! write to `*` reaches this host's mailslots as it reaches every other host of the
//! workgroup, and two processes on one host reach each other through the network path too.
//! [`NetConfig::deliver_own`] = false drops them instead (Samba's
//! rule for browse frames).
//!
//! # Floods
//!
//! Fixed receive buffers (one `recvmmsg` batch of up to 64 datagrams of up to 64 KiB, only
//! the touched pages resident), a bounded dedupe table, delivery straight into the local
//! mailslots (whose queues are bounded), the kernel's socket buffer in front (its drops are
//! counted as `dropped_kernel`, read with `SO_MEMINFO` after every drain, so a burst that
//! overflowed it while the holder was stopped is counted even if nothing follows it),
//! name-service answers rate-limited. Memory does not grow with
//! the traffic; the counters do.

// Everything here goes through safe wrappers (std, nix, socket2); `unsafe` lives in `sys`.
#![forbid(unsafe_code)]

mod claim;
mod codec;
mod config;
mod dedupe;
mod error;
mod handoff;
mod holder;
mod iface;
mod inbound;
mod nameservice;
mod pending;
mod recv;
mod role;
mod send;
mod sink;
mod state;
mod subscribed;

pub use config::{
    default_netbios_name, DeliverFn, DeliveryOutcome, NetConfig, NetSource, Reporter, Sink,
    DEFAULT_DEDUPE_WINDOW, DEFAULT_NAME_SERVICE_PORT, DEFAULT_PORT, DEFAULT_WORKGROUP,
};
pub use error::NetError;
pub use iface::{broadcast_addresses, interfaces, udp_port_owners, Interface, PortOwner};
pub use role::{NetRole, RoleState};
pub use send::{encode, message_limit, send, RemoteTarget, SendOptions, SendPath, SendReport};
pub use state::{status, NetCounters, NetStatus, FLUSH_INTERVAL};
