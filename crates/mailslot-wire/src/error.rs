//! The codec's error: a small `Copy` value with a kind and a static context.

use core::fmt;

/// What went wrong, coarsely; match on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended inside the field named by the context.
    Truncated,
    /// A field holds a value the protocol forbids (bad label, offset outside the packet, ...).
    Malformed,
    /// Well-formed, but not something this codec handles (another SMB command, another NBNS
    /// opcode, a message type without the expected body).
    Unsupported,
    /// A NetBIOS datagram fragment (M set or PACKET_OFFSET != 0); nobody reassembles them.
    Fragment,
    /// Emitting would exceed a size limit (the protocol's or the chosen [`SizeLimit`]).
    ///
    /// [`SizeLimit`]: crate::SizeLimit
    TooLarge,
    /// A value given to an emitter or constructor is not representable (a name too long,
    /// a character outside the code page, an embedded NUL, ...).
    Invalid,
    /// The output buffer given to `emit` is too small (see `buffer_len`).
    BufferTooSmall,
}

/// A codec error: an [`ErrorKind`] plus a static description naming the field.
///
/// `Display` gives a one-line reason such as `truncated in DESTINATION_NAME` or
/// `DataOffset+DataCount beyond the datagram`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    kind: ErrorKind,
    context: &'static str,
}

impl Error {
    /// An error of `kind`; `context` names the field (for [`ErrorKind::Truncated`]) or is the
    /// whole reason (other kinds).
    pub const fn new(kind: ErrorKind, context: &'static str) -> Self {
        Self { kind, context }
    }

    pub(crate) const fn truncated(field: &'static str) -> Self {
        Self::new(ErrorKind::Truncated, field)
    }

    pub(crate) const fn malformed(reason: &'static str) -> Self {
        Self::new(ErrorKind::Malformed, reason)
    }

    pub(crate) const fn unsupported(reason: &'static str) -> Self {
        Self::new(ErrorKind::Unsupported, reason)
    }

    pub(crate) const fn invalid(reason: &'static str) -> Self {
        Self::new(ErrorKind::Invalid, reason)
    }

    pub(crate) const fn too_large(reason: &'static str) -> Self {
        Self::new(ErrorKind::TooLarge, reason)
    }

    pub(crate) const fn buffer_too_small() -> Self {
        Self::new(ErrorKind::BufferTooSmall, "output buffer too small")
    }

    /// The kind of error.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The static context: the field name (truncation) or the reason.
    pub const fn context(&self) -> &'static str {
        self.context
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Truncated => write!(f, "truncated in {}", self.context),
            _ => f.write_str(self.context),
        }
    }
}

impl std::error::Error for Error {}

/// The codec's result type.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        assert_eq!(
            Error::truncated("DESTINATION_NAME").to_string(),
            "truncated in DESTINATION_NAME"
        );
        assert_eq!(
            Error::malformed("DataOffset+DataCount beyond the datagram").to_string(),
            "DataOffset+DataCount beyond the datagram"
        );
    }
}
