//! The error of network operations (sending, starting the role, reading its status).

use std::fmt;
use std::io;

/// Why a network operation failed. Messages name the cause and say what to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetError {
    /// The network cannot be used: no interface with a broadcast address, the port cannot be
    /// bound, the host has no route, ...
    NetworkUnavailable {
        /// One line saying why and what to do.
        reason: String,
    },
    /// The message exceeds what the target accepts; nothing was sent.
    MessageTooLarge {
        /// Size of the message.
        len: usize,
        /// Largest message for this target and mailslot name.
        limit: usize,
    },
    /// A host name resolved neither by a NetBIOS name query nor by DNS / `/etc/hosts`.
    NameNotFound {
        /// The name as given.
        name: String,
    },
    /// A target or mailslot name that cannot be put on the wire.
    InvalidTarget {
        /// The target or name as given.
        target: String,
        /// Why.
        reason: &'static str,
    },
    /// Our own NetBIOS name or workgroup (a setting, not a target) cannot be a NetBIOS name.
    InvalidSetting {
        /// Which setting: `"NetBIOS name"` or `"workgroup"`.
        setting: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// An operating-system error.
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: io::Error,
    },
}

impl NetError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> NetError {
        NetError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn unavailable(reason: impl Into<String>) -> NetError {
        NetError::NetworkUnavailable {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::NetworkUnavailable { reason } => write!(f, "network unavailable: {reason}"),
            NetError::MessageTooLarge { len, limit } => write!(
                f,
                "message of {len} bytes is too large for this target (at most {limit} bytes; \
                 NetBIOS datagrams are not fragmented)"
            ),
            // A name that cannot be a NetBIOS name was never asked for on UDP 137.
            NetError::NameNotFound { name } => match super::codec::nb_name_checked(name, 0) {
                Ok(_) => write!(
                    f,
                    "host {name:?} not found (no answer to a NetBIOS name query, not in DNS or \
                     /etc/hosts); give its IP address"
                ),
                Err(why) => write!(
                    f,
                    "host {name:?} not found in DNS or /etc/hosts, and not a NetBIOS name to \
                     query ({why}); give its IP address"
                ),
            },
            NetError::InvalidTarget { target, reason } => {
                write!(f, "invalid target {target:?}: {reason}")
            }
            NetError::InvalidSetting {
                setting,
                value,
                reason,
            } => write!(f, "invalid {setting} {value:?}: {reason}"),
            NetError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for NetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NetError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
