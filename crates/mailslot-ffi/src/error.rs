//! Error codes of the C API, their fixed texts, and the last error's message per thread.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CStr, CString};

use ms::net::NetError;
use ms::ErrorKind;

/// What a call of the C API returned. `MS_OK` (0) is success; every other value is a failure
/// whose message, naming the mailslot and the cause, `ms_last_error()` returns on the same
/// thread. New codes may be added: treat an unknown one as a failure.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms, non_camel_case_types)]
pub enum ms_error {
    /// Success.
    MS_OK = 0,
    /// The name or path is malformed (empty, longer than 80 bytes, `/`, control characters,
    /// `..`, not `NAME`, `\\.\mailslot\NAME`, `\\HOST\mailslot\NAME` or `\\*\mailslot\NAME`).
    MS_ERR_INVALID_NAME = 1,
    /// A server of this name exists and cannot be joined (it is not shared, or shared with
    /// another delivery).
    MS_ERR_ALREADY_EXISTS = 2,
    /// No server has this name open (or the writer's server has closed).
    MS_ERR_NOT_FOUND = 3,
    /// The caller may not open, read or write this mailslot.
    MS_ERR_PERMISSION_DENIED = 4,
    /// The message is larger than the mailslot or the network accepts; nothing was queued or
    /// sent.
    MS_ERR_MESSAGE_TOO_LARGE = 5,
    /// The buffer is smaller than the next message, which stays queued.
    MS_ERR_INSUFFICIENT_BUFFER = 6,
    /// No message arrived within the read timeout (at once with a timeout of 0).
    MS_ERR_TIMED_OUT = 7,
    /// The queue is full and the mailslot refuses new messages (`MS_OVERFLOW_REFUSE`).
    MS_ERR_QUEUE_FULL = 8,
    /// The network cannot be used (no broadcast address, no route, ...).
    MS_ERR_NETWORK_UNAVAILABLE = 9,
    /// Shared state of the mailslot was found damaged and was skipped.
    MS_ERR_CORRUPTED = 10,
    /// An option outside what a mailslot can have.
    MS_ERR_INVALID_OPTION = 11,
    /// The host service (global scope) is not running.
    MS_ERR_SERVICE_UNAVAILABLE = 12,
    /// Any other operating-system error.
    MS_ERR_IO = 13,
    /// A NULL pointer where one is not allowed, or a string that is not UTF-8.
    MS_ERR_INVALID_ARGUMENT = 14,
    /// A remote host name resolved neither by NetBIOS nor by DNS.
    MS_ERR_HOST_NOT_FOUND = 15,
    /// The operation does not apply to this handle (a read of a remote writer, ...).
    MS_ERR_UNSUPPORTED = 16,
    /// A bug in the library (a Rust panic, caught before it reached C).
    MS_ERR_INTERNAL = 17,
}

use ms_error::*;

impl ms_error {
    /// The fixed text of a code (`ms_strerror`), NUL-terminated.
    pub(crate) fn text(self) -> &'static CStr {
        match self {
            MS_OK => c"success",
            MS_ERR_INVALID_NAME => c"invalid mailslot name",
            MS_ERR_ALREADY_EXISTS => c"the mailslot already exists",
            MS_ERR_NOT_FOUND => c"no such mailslot",
            MS_ERR_PERMISSION_DENIED => c"permission denied",
            MS_ERR_MESSAGE_TOO_LARGE => c"message too large",
            MS_ERR_INSUFFICIENT_BUFFER => c"buffer smaller than the next message",
            MS_ERR_TIMED_OUT => c"timed out",
            MS_ERR_QUEUE_FULL => c"queue full",
            MS_ERR_NETWORK_UNAVAILABLE => c"network unavailable",
            MS_ERR_CORRUPTED => c"damaged shared state skipped",
            MS_ERR_INVALID_OPTION => c"invalid option",
            MS_ERR_SERVICE_UNAVAILABLE => c"host service unavailable",
            MS_ERR_IO => c"input/output error",
            MS_ERR_INVALID_ARGUMENT => c"invalid argument",
            MS_ERR_HOST_NOT_FOUND => c"host not found",
            MS_ERR_UNSUPPORTED => c"operation not supported on this handle",
            MS_ERR_INTERNAL => c"internal error",
        }
    }
}

/// A failure: its code and the message `ms_last_error()` will return.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: ms_error,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: ms_error, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<ms::Error> for Failure {
    fn from(e: ms::Error) -> Failure {
        let code = match e.kind() {
            ErrorKind::InvalidName => MS_ERR_INVALID_NAME,
            ErrorKind::AlreadyExists => MS_ERR_ALREADY_EXISTS,
            ErrorKind::NotFound => MS_ERR_NOT_FOUND,
            ErrorKind::PermissionDenied => MS_ERR_PERMISSION_DENIED,
            ErrorKind::MessageTooLarge => MS_ERR_MESSAGE_TOO_LARGE,
            ErrorKind::InsufficientBuffer => MS_ERR_INSUFFICIENT_BUFFER,
            ErrorKind::TimedOut => MS_ERR_TIMED_OUT,
            ErrorKind::QueueFull => MS_ERR_QUEUE_FULL,
            ErrorKind::NetworkUnavailable => MS_ERR_NETWORK_UNAVAILABLE,
            ErrorKind::Corrupted => MS_ERR_CORRUPTED,
            ErrorKind::InvalidOption => MS_ERR_INVALID_OPTION,
            ErrorKind::ServiceUnavailable => MS_ERR_SERVICE_UNAVAILABLE,
            _ => MS_ERR_IO,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<NetError> for Failure {
    fn from(e: NetError) -> Failure {
        let code = match &e {
            NetError::MessageTooLarge { .. } => MS_ERR_MESSAGE_TOO_LARGE,
            NetError::NameNotFound { .. } => MS_ERR_HOST_NOT_FOUND,
            NetError::InvalidTarget { .. } => MS_ERR_INVALID_NAME,
            NetError::NetworkUnavailable { .. } => MS_ERR_NETWORK_UNAVAILABLE,
            _ => MS_ERR_IO,
        };
        Failure::new(code, e.to_string())
    }
}

thread_local! {
    /// The message of this thread's last failed call (an empty string before any).
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `failure` as this thread's last error and returns its code.
pub(crate) fn record(failure: Failure) -> ms_error {
    // A message cannot carry a NUL to C: cut it there (names never contain one).
    let mut bytes = failure.message.into_bytes();
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(nul);
    }
    let message = CString::new(bytes).unwrap_or_default();
    // During thread teardown the slot may be gone: the code still tells what happened.
    let _ = LAST.try_with(|last| *last.borrow_mut() = message);
    failure.code
}

/// This thread's last error message; valid until this thread's next failing call.
pub(crate) fn last_message() -> *const c_char {
    LAST.try_with(|last| last.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

thread_local! {
    /// `GetLastError()` of `<mailslot/win32.h>`: one per thread for the whole program (a
    /// static in the header would be one per translation unit).
    static WIN32_LAST: Cell<u32> = const { Cell::new(0) };
}

pub(crate) fn win32_last_error() -> u32 {
    WIN32_LAST.try_with(Cell::get).unwrap_or(0)
}

pub(crate) fn set_win32_last_error(code: u32) {
    let _ = WIN32_LAST.try_with(|last| last.set(code));
}

/// The code with this value, for C callers that pass an `int`.
pub(crate) fn from_int(code: i32) -> Option<ms_error> {
    const ALL: [ms_error; 18] = [
        MS_OK,
        MS_ERR_INVALID_NAME,
        MS_ERR_ALREADY_EXISTS,
        MS_ERR_NOT_FOUND,
        MS_ERR_PERMISSION_DENIED,
        MS_ERR_MESSAGE_TOO_LARGE,
        MS_ERR_INSUFFICIENT_BUFFER,
        MS_ERR_TIMED_OUT,
        MS_ERR_QUEUE_FULL,
        MS_ERR_NETWORK_UNAVAILABLE,
        MS_ERR_CORRUPTED,
        MS_ERR_INVALID_OPTION,
        MS_ERR_SERVICE_UNAVAILABLE,
        MS_ERR_IO,
        MS_ERR_INVALID_ARGUMENT,
        MS_ERR_HOST_NOT_FOUND,
        MS_ERR_UNSUPPORTED,
        MS_ERR_INTERNAL,
    ];
    ALL.into_iter().find(|c| *c as i32 == code)
}
