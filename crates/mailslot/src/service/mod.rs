//! The host service: how users of one host share global names and the LAN port safely.
//!
//! Local users do not trust each other. Names of the user scope live in the user's own
//! directory and memory; names of the global scope live in the host service
//! (`mailslot serve --system`), which alone can write them. Clients reach it over a
//! `SOCK_SEQPACKET` socket in its directory (`/run/mailslot/mailslot.sock`; the environment
//! variable `MAILSLOT_GLOBAL_DIR` relocates it), and the service decides every open with the
//! kernel's credentials of the caller (`SO_PEERCRED`, `SO_PEERGROUPS`) against the name's
//! owner, group and mode, and stamps each message with the uid and pid the kernel reported
//! for the writer's connection.
//!
//! The data path stays cheap, with no system call per message on either side in a stream:
//! - each name's ring is a sealed memfd that the service writes and hands to readers (and
//!   writers, who check it for a closed server and the size limit) read-only over
//!   `SCM_RIGHTS`; readers keep their cursors private and copy messages straight out of it;
//! - a blocking reader that finds nothing sleeps on the ring's wake epoch (a futex the
//!   service bumps and wakes after appending); a reader that polls its descriptor tells the
//!   service where it sleeps ("arm") and is rung over its own connection;
//! - each writer has a submission ring of its own (`submit`): it puts messages there and
//!   wakes the service's thread (a `FUTEX_WAKE` on a doorbell word it maps read-only) only
//!   when that thread said it sleeps; [`crate::Writer::flush`] waits for the service to confirm.
//!
//! What a client can do to others through the service: send messages (a flood costs the
//! readers counted loss) and stop reading (its own loss). It cannot write, truncate or
//! grow a ring (read-only descriptors of a memfd sealed against shrinking and growing), ring
//! another reader (each connection is private), garble anything but its own submissions (the
//! service checks every record it takes from a submission ring and drops a writer that broke
//! the rules), or claim to be someone else (the kernel reports who holds each connection).

mod client;
mod daemon;
mod proto;
mod submit;

pub use daemon::{HostService, MAX_CONNECTIONS_PER_USER};

pub(crate) use client::{Claim, GlobalReader, GlobalWriter, Subscription};
pub(crate) use proto::{Datagram, OpenReader, MAX_PACKET};

use std::path::PathBuf;

/// The file name of the service's socket in its directory.
pub const SOCKET_NAME: &str = "mailslot.sock";

/// The default directory of the host service.
pub const DEFAULT_GLOBAL_DIR: &str = "/run/mailslot";

/// The global directory clients use: `$MAILSLOT_GLOBAL_DIR`, else [`DEFAULT_GLOBAL_DIR`].
pub fn global_dir() -> PathBuf {
    std::env::var_os("MAILSLOT_GLOBAL_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_GLOBAL_DIR))
}

/// The status of the global names the caller may read or write, as the service reports it.
///
/// # Errors
/// `NotFound` (kind) when no service runs, with how to start one; `Io`.
pub fn status() -> Result<Vec<crate::MailslotStatus>, crate::Error> {
    client::status()
}
