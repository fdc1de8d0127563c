//! The library's error: a matchable [`ErrorKind`], a message that names the mailslot and says
//! what to do, and the OS error as `source()` where there is one.

use std::fmt;
use std::io;

/// What went wrong, for matching. Messages carry the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The name is malformed (empty, too long, `/`, NUL, `..`, ...).
    InvalidName,
    /// A server of this name already exists and cannot be joined (not shared, or shared with
    /// other settings).
    AlreadyExists,
    /// No server has this name open.
    NotFound,
    /// The caller may not open, read, write or list this mailslot.
    PermissionDenied,
    /// The message is larger than the mailslot (or the network) accepts; nothing was queued.
    MessageTooLarge,
    /// The caller's buffer is smaller than the next message, which stays queued.
    InsufficientBuffer,
    /// No message arrived within the read timeout (also at once with timeout 0), or a lock was
    /// not obtained in time.
    TimedOut,
    /// The queue is full and the mailslot refuses new messages instead of dropping old ones.
    QueueFull,
    /// The network role or a network send is not possible; the message says why.
    NetworkUnavailable,
    /// Shared state of the mailslot was found damaged and was not trusted.
    Corrupted,
    /// An option outside what a mailslot can have (a capacity too large, ...).
    InvalidOption,
    /// The host service (the global scope's owner) is not running or stopped answering;
    /// the message says how to start it.
    ServiceUnavailable,
    /// Any other operating-system error.
    Io,
}

/// An error of a mailslot operation.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<io::Error>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An OS error while doing `what` on `mailslot`, classified by its errno.
    pub(crate) fn io(what: impl fmt::Display, err: io::Error) -> Error {
        let kind = match err.kind() {
            io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::TimedOut => ErrorKind::TimedOut,
            _ => ErrorKind::Io,
        };
        Error {
            kind,
            message: what.to_string(),
            source: Some(err),
        }
    }

    /// The kind of error, for matching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match err.kind {
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
            ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::TimedOut => io::ErrorKind::TimedOut,
            ErrorKind::InvalidName => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
