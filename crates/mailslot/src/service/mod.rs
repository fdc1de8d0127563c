//! The host service: how users of one host share global names and the LAN port safely.
//!
//! Local users do not trust each other. Names of the user scope live in the user's own
//! directory and memory; names of the global scope live in the host service
//! (`mailslot serve --system`), which alone can write them. Clients reach it over a
//! `SOCK_SEQPACKET` socket in its directory (`/run/mailslot/mailslot.sock`; the environment
//! variable `MAILSLOT_GLOBAL_DIR` relocates it), and the service decides every open and write
//! with the kernel's credentials of the caller (`SO_PEERCRED`, `SO_PEERGROUPS`,
//! `SCM_CREDENTIALS`) against the name's owner, group and mode, and stamps each message
//! with the uid and pid the kernel reported.
//!
//! The data path stays cheap: each name's ring is a sealed memfd that the service writes and
//! hands to readers (and writers) read-only over `SCM_RIGHTS`; readers keep their cursors
//! private and copy messages straight out of the mapping. A reader that finds nothing tells
//! the service where it sleeps ("arm") and waits on its connection, which the service rings
//! after the next append; a writer sends each message as one packet and does not wait for an
//! answer, except on [`crate::Writer::flush`].
//!
//! What a client can do to others through the service: send messages (a flood costs the
//! readers counted loss) and stop reading (its own loss). It cannot write, truncate or
//! grow a ring (read-only descriptors of a memfd sealed against shrinking and growing), ring
//! another reader (each connection is private), or claim to be someone else (the kernel
//! reports who sent each packet).

mod client;
mod daemon;
mod proto;
mod submit;

pub use daemon::{HostService, MAX_CONNECTIONS_PER_USER};

pub(crate) use client::{GlobalReader, GlobalWriter, Subscription};
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
