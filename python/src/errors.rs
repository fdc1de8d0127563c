//! The library's errors as the Python exceptions of `mailslot/_errors.py`: one class per
//! kind, each a `mailslot.Error` (an `OSError`) and, where one fits, a builtin such as
//! `FileNotFoundError`, with `.kind` (the Rust `ErrorKind`'s name) and `.mailslot`.

use mailslot::net::NetError;
use mailslot::ErrorKind;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The exception class of each kind (`Io` and kinds added later: the base `Error`).
fn class_name(kind: &str) -> &'static str {
    match kind {
        "NotFound" => "NotFoundError",
        "AlreadyExists" => "AlreadyExistsError",
        "TimedOut" => "TimedOutError",
        "PermissionDenied" => "PermissionDeniedError",
        "InsufficientBuffer" => "InsufficientBufferError",
        "MessageTooLarge" => "MessageTooLargeError",
        "QueueFull" => "QueueFullError",
        "Corrupted" => "CorruptedError",
        "InvalidName" => "InvalidNameError",
        "InvalidOption" => "InvalidOptionError",
        "NetworkUnavailable" => "NetworkUnavailableError",
        "ServiceUnavailable" => "ServiceUnavailableError",
        "HostNotFound" => "HostNotFoundError",
        _ => "Error",
    }
}

/// The `mailslot._errors` module, imported once.
fn module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    ERRORS
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("mailslot._errors")?.unbind())
        })
        .map(|m| m.bind(py))
}

/// The exception of `kind` with `message` (which names the mailslot); `size` is the next
/// message's size for `InsufficientBuffer`.
pub(crate) fn error(kind: &str, message: String, mailslot: &str, size: Option<usize>) -> PyErr {
    Python::attach(|py| {
        let made = module(py).and_then(|m| {
            let class = m.getattr(class_name(kind))?;
            let instance = class.call1((message.as_str(), kind, mailslot))?;
            if let Some(size) = size {
                instance.setattr("size", size)?;
            }
            Ok(PyErr::from_value(instance))
        });
        // Only a broken installation lacks the module: say so rather than lose the error.
        made.unwrap_or_else(|e| PyOSError::new_err(format!("{message} (and {e})")))
    })
}

/// A library error as its exception.
pub(crate) fn from_lib(err: &mailslot::Error, mailslot: &str) -> PyErr {
    error(&kind_name(err.kind()), err.to_string(), mailslot, None)
}

/// The name of a kind, as Rust spells it (`NotFound`, `TimedOut`, ...).
pub(crate) fn kind_name(kind: ErrorKind) -> String {
    format!("{kind:?}")
}

/// A network error of a write to `path` (its messages do not name the mailslot: the path
/// goes first).
pub(crate) fn from_net(err: &NetError, path: &str, mailslot: &str) -> PyErr {
    let kind = match err {
        NetError::NetworkUnavailable { .. } => "NetworkUnavailable",
        NetError::MessageTooLarge { .. } => "MessageTooLarge",
        NetError::NameNotFound { .. } => "HostNotFound",
        NetError::InvalidTarget { .. } => "InvalidName",
        NetError::InvalidSetting { .. } => "InvalidOption",
        _ => "Io",
    };
    error(kind, format!("{path}: {err}"), mailslot, None)
}

/// A `ValueError` (a bad argument value).
pub(crate) fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}
