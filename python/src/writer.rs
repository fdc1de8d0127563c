//! `mailslot.Writer` and `mailslot.write`: the writer side, local or remote.

use std::path::PathBuf;
use std::sync::Mutex;

use mailslot::net::{self, NetConfig, SendOptions};
use mailslot::{Scope, Target, Timeout};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};

use crate::errors;
use crate::netenv;
use crate::server::{scope_of, seconds_of, timeout_of};

/// The bytes of a bytes-like argument: a `bytes` object itself (immutable, so it may be read
/// without the GIL), any other buffer copied once. `str` is refused, as by `socket.send`.
pub(crate) fn bytes_of<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return Ok(bytes.clone());
    }
    let py = data.py();
    let view = py
        .import("builtins")?
        .getattr("memoryview")?
        .call1((data,))
        .map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "a bytes-like object is required, not '{}'",
                data.get_type()
                    .name()
                    .map_or_else(|_| "?".to_owned(), |n| n.to_string())
            ))
        })?;
    Ok(view.call_method0("tobytes")?.cast_into::<PyBytes>()?)
}

/// Where a writer sends.
#[derive(Debug)]
enum Link {
    Local(Box<mailslot::Writer>),
    Remote(Box<Remote>),
}

/// `\\HOST\mailslot\NAME`, `\\*\mailslot\NAME`: where and how to send.
#[derive(Debug)]
struct Remote {
    config: NetConfig,
    target: net::RemoteTarget,
    name: String,
}

impl Remote {
    fn send(&self, path: &str, data: &[u8]) -> PyResult<()> {
        net::send(
            &self.config,
            &self.target,
            &self.name,
            data,
            &SendOptions::default(),
        )
        .map(|_| ())
        .map_err(|e| errors::from_net(&e, path, &self.name))
    }
}

/// A remote path's target and mailslot name, or None for a local one.
fn remote_target(path: &str) -> PyResult<Option<(net::RemoteTarget, String)>> {
    let (target, name) = Target::parse(path).map_err(|e| errors::from_lib(&e, path))?;
    let target = match target {
        Target::Local => return Ok(None),
        Target::AllInWorkgroup => net::RemoteTarget::OwnGroup,
        Target::Host(host) => net::RemoteTarget::parse(&host)
            .map_err(|e| errors::from_net(&e, path, name.as_str()))?,
    };
    Ok(Some((target, name.as_str().to_owned())))
}

/// The network settings of a remote write: from the environment, with the runtime
/// directory whose network role (if this host holds one) may send it.
fn remote_config(scope: &Scope, path: &str) -> PyResult<NetConfig> {
    // The role is a user directory's (the global scope's is the host service's).
    let dir = match scope {
        Scope::Global => Scope::User.dir(),
        scope => scope.dir(),
    }
    .map_err(|e| errors::from_lib(&e, path))?;
    netenv::config(&dir)
}

/// Writes one message (any bytes-like object) to a mailslot.
///
/// `target` is a local name ("NAME", r"\\.\mailslot\NAME") or a remote one:
/// r"\\HOST\mailslot\NAME" (a NetBIOS name, DNS name or IPv4 address), r"\\WORKGROUP\mailslot\NAME"
/// or r"\\*\mailslot\NAME" (every host of our workgroup). A remote write is one NetBIOS
/// datagram to UDP 138 (or $MAILSLOT_PORT; settings from the environment, as for the C
/// library); it raises only for what can be known here (a message too large for a datagram,
/// an unknown host, no network), as Windows does.
///
/// Raises NotFoundError when no server has a local name open, MessageTooLargeError (nothing
/// is queued), QueueFullError, InvalidNameError (a ValueError) for a malformed target.
#[pyfunction]
#[pyo3(signature = (target, data, *, scope = "user", dir = None))]
pub(crate) fn write(
    py: Python<'_>,
    target: &str,
    data: &Bound<'_, PyAny>,
    scope: &str,
    dir: Option<PathBuf>,
) -> PyResult<()> {
    let data = bytes_of(data)?;
    let data = data.as_bytes();
    let scope = scope_of(scope, dir)?;
    match remote_target(target)? {
        Some((net_target, name)) => {
            let remote = Remote {
                config: remote_config(&scope, target)?,
                target: net_target,
                name,
            };
            py.detach(|| remote.send(target, data))
        }
        // The user scope's one-shot writes keep their writers for the next write.
        None if scope == Scope::User => py
            .detach(|| mailslot::write(target, data))
            .map_err(|e| errors::from_lib(&e, target)),
        None => py
            .detach(|| mailslot::Writer::open_in(&scope, target)?.write(data))
            .map_err(|e| errors::from_lib(&e, target)),
    }
}

/// An opened writer of a mailslot, for repeated writes.
///
/// `target` is as for write(). Opening a local name
/// raises NotFoundError when no server has it open; like a Windows client handle, the writer
/// then lives as long as that server: after its last instance closed, writes raise
/// NotFoundError even if a new server took the name. A remote target is checked for its form
/// only. Use it as a context manager, or close() it.
#[pyclass(frozen, module = "mailslot")]
#[derive(Debug)]
pub(crate) struct Writer {
    target: String,
    write_timeout: Mutex<Timeout>,
    link: Mutex<Option<Link>>,
}

impl Writer {
    fn closed_error(&self) -> PyErr {
        PyValueError::new_err(format!(
            "mailslot \"{}\": the writer is closed",
            self.target
        ))
    }

    fn with_link<T: Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&mut Link) -> PyResult<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
            link.as_mut().map(op)
        })
        .unwrap_or_else(|| Err(self.closed_error()))
    }
}

#[pymethods]
impl Writer {
    #[new]
    #[pyo3(signature = (target, *, scope = "user", dir = None))]
    fn new(py: Python<'_>, target: &str, scope: &str, dir: Option<PathBuf>) -> PyResult<Writer> {
        let scope = scope_of(scope, dir)?;
        let link = match remote_target(target)? {
            Some((net_target, name)) => Link::Remote(Box::new(Remote {
                config: remote_config(&scope, target)?,
                target: net_target,
                name,
            })),
            None => Link::Local(Box::new(
                py.detach(|| mailslot::Writer::open_in(&scope, target))
                    .map_err(|e| errors::from_lib(&e, target))?,
            )),
        };
        Ok(Writer {
            target: target.to_owned(),
            write_timeout: Mutex::new(Timeout::Forever),
            link: Mutex::new(Some(link)),
        })
    }

    /// Writes one message (any bytes-like object); raises as write() does.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = bytes_of(data)?;
        let data = data.as_bytes();
        let target = self.target.as_str();
        self.with_link(py, |link| match link {
            Link::Local(writer) => writer
                .write(data)
                .map_err(|e| errors::from_lib(&e, writer.name())),
            Link::Remote(remote) => remote.send(target, data),
        })
    }

    /// Returns once every message written so far is in the mailslot: a global name's writes
    /// go through the host service, which may report an error for them here. Other writes
    /// are in place when write() returns.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with_link(py, |link| match link {
            Link::Local(writer) => writer
                .flush()
                .map_err(|e| errors::from_lib(&e, writer.name())),
            Link::Remote(_) => Ok(()),
        })
    }

    /// How long a write waits for room when the name blocks when full (overflow="block"):
    /// None (the default) as long as it takes, else seconds, then TimedOutError with nothing
    /// queued. Other names never wait.
    #[getter]
    fn get_write_timeout(&self) -> Option<f64> {
        seconds_of(*self.write_timeout.lock().unwrap_or_else(|p| p.into_inner()))
    }

    #[setter]
    fn set_write_timeout(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let timeout = timeout_of(timeout)?;
        self.with_link(py, |link| {
            if let Link::Local(writer) = link {
                writer.set_write_timeout(timeout);
            }
            Ok(())
        })?;
        *self.write_timeout.lock().unwrap_or_else(|p| p.into_inner()) = timeout;
        Ok(())
    }

    /// The target as given.
    #[getter]
    fn target(&self) -> &str {
        &self.target
    }

    /// True once close() has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.link
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// Closes the writer. Closing twice does nothing.
    fn close(&self, py: Python<'_>) {
        py.detach(|| drop(self.link.lock().unwrap_or_else(|p| p.into_inner()).take()));
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _kind: Option<&Bound<'_, PyType>>,
        _value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { "closed" } else { "open" };
        format!("<mailslot.Writer {:?} {state}>", self.target)
    }
}
