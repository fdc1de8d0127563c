//! `mailslot.Server`, `Message`, `Source` and `Info`: the reader side.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mailslot::net::{NetRole, Sink};
use mailslot::{Delivery, ErrorKind, Overflow, Scope, Timeout};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyType};

use crate::errors;
use crate::netenv;
use crate::sys::WritableBuffer;

/// How long a blocking read waits without the GIL before it looks for signals (Ctrl-C) and
/// for `close()` from another thread.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// How long opening a server with `network=True` waits for the network role to settle (held
/// by this process, or known to be held by another), so that a write sent right after the
/// open finds the port bound.
const ROLE_SETTLE: Duration = Duration::from_millis(500);

/// A mailslot's scope from the `scope` and `dir` arguments.
pub(crate) fn scope_of(scope: &str, dir: Option<PathBuf>) -> PyResult<Scope> {
    match (scope, dir) {
        ("user", None) => Ok(Scope::User),
        ("user", Some(dir)) => Ok(Scope::Dir(dir)),
        ("global", None) => Ok(Scope::Global),
        ("global", Some(_)) => Err(errors::value_error(
            "dir is for the user scope; the global scope's directory is the host service's",
        )),
        (other, _) => Err(errors::value_error(format!(
            "scope must be \"user\" or \"global\", not {other:?}"
        ))),
    }
}

/// A timeout argument: None waits forever, 0 returns at once, a number is seconds.
pub(crate) fn timeout_of(seconds: Option<f64>) -> PyResult<Timeout> {
    let Some(s) = seconds else {
        return Ok(Timeout::Forever);
    };
    if s.is_nan() || s < 0.0 {
        return Err(errors::value_error(format!(
            "timeout must be None (wait forever) or seconds >= 0, not {s}"
        )));
    }
    if s == 0.0 {
        return Ok(Timeout::Immediate);
    }
    // Longer than a deadline can hold (or inf): no deadline.
    Ok(Duration::try_from_secs_f64(s).map_or(Timeout::Forever, Timeout::After))
}

/// A timeout as Python sees it: None, 0.0 or seconds.
pub(crate) fn seconds_of(timeout: Timeout) -> Option<f64> {
    match timeout {
        Timeout::Forever => None,
        Timeout::Immediate => Some(0.0),
        Timeout::After(d) => Some(d.as_secs_f64()),
    }
}

/// Where a message came from: a process of this host (`kind == "local"`, with `pid` and
/// `uid`) or a datagram from the network (`kind == "network"`, with `ip`, `port`,
/// `netbios_name`, `suffix`, `destination` and `destination_suffix`). Fields of the other
/// kind are None.
#[pyclass(frozen, eq, get_all, module = "mailslot")]
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    /// "local" or "network".
    kind: &'static str,
    /// The writer's process id (local).
    pid: Option<u32>,
    /// The writer's user id (local).
    uid: Option<u32>,
    /// The sender's IPv4 address as text (network).
    ip: Option<String>,
    /// The sender's UDP port (network).
    port: Option<u16>,
    /// The sender's NetBIOS name, without padding (network).
    netbios_name: Option<String>,
    /// The suffix byte of the sender's NetBIOS name (network).
    suffix: Option<u8>,
    /// The NetBIOS name the datagram was addressed to (ours, our workgroup, `*`, ...),
    /// without padding; "" when not known (network).
    destination: Option<String>,
    /// The suffix byte of that name (network).
    destination_suffix: Option<u8>,
}

impl Source {
    fn of(source: &mailslot::Source) -> Source {
        match source {
            mailslot::Source::Local { pid, uid } => Source {
                kind: "local",
                pid: Some(*pid),
                uid: Some(*uid),
                ip: None,
                port: None,
                netbios_name: None,
                suffix: None,
                destination: None,
                destination_suffix: None,
            },
            mailslot::Source::Network {
                ip,
                port,
                netbios_name,
                suffix,
                destination,
                destination_suffix,
            } => Source {
                kind: "network",
                pid: None,
                uid: None,
                ip: Some(ip.to_string()),
                port: Some(*port),
                netbios_name: Some(netbios_name.clone()),
                suffix: Some(*suffix),
                destination: Some(destination.clone()),
                destination_suffix: Some(*destination_suffix),
            },
        }
    }
}

#[pymethods]
impl Source {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        // Strings as Python shows them.
        let text = |s: &Option<String>| -> PyResult<String> {
            Ok(PyString::new(py, s.as_deref().unwrap_or_default())
                .repr()?
                .to_string())
        };
        Ok(match self.kind {
            "local" => format!(
                "Source(kind='local', pid={}, uid={})",
                self.pid.unwrap_or_default(),
                self.uid.unwrap_or_default()
            ),
            _ => format!(
                "Source(kind='network', ip={}, port={}, netbios_name={}, suffix={:#04x}, \
                 destination={}, destination_suffix={:#04x})",
                text(&self.ip)?,
                self.port.unwrap_or_default(),
                text(&self.netbios_name)?,
                self.suffix.unwrap_or_default(),
                text(&self.destination)?,
                self.destination_suffix.unwrap_or_default()
            ),
        })
    }
}

/// One message, read whole: `data` (bytes), `source` (a Source) and `lost`, the number of
/// messages this reader lost just before this one because it lagged past the queue's
/// capacity. `bytes(message)` and `len(message)` are those of its data.
#[pyclass(frozen, get_all, module = "mailslot")]
#[derive(Debug)]
pub(crate) struct Message {
    /// The message's bytes (b"" for a zero-length message).
    data: Py<PyBytes>,
    /// Who wrote it.
    source: Py<Source>,
    /// Messages lost just before this one.
    lost: u64,
}

#[pymethods]
impl Message {
    fn __bytes__(&self, py: Python<'_>) -> Py<PyBytes> {
        self.data.clone_ref(py)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.data.bind(py).as_bytes().len()
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> bool {
        let Ok(other) = other.cast::<Message>() else {
            return false;
        };
        let other = other.get();
        self.lost == other.lost
            && self.data.bind(py).as_bytes() == other.data.bind(py).as_bytes()
            && *self.source.get() == *other.source.get()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Message(data={}, source={}, lost={})",
            self.data.bind(py).repr()?,
            self.source.get().__repr__(py)?,
            self.lost
        ))
    }
}

/// What `Server.info()` reports, like Windows' GetMailslotInfo; nothing is consumed.
#[pyclass(frozen, get_all, eq, module = "mailslot")]
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Info {
    /// The largest message the name accepts (0: no limit but MAX_MESSAGE_SIZE).
    max_message_size: usize,
    /// The size of the next message, None when none waits (0 for a zero-length one).
    next_size: Option<usize>,
    /// How many messages wait, zero-length ones included.
    count: usize,
    /// The server's read timeout: None (forever), 0.0 or seconds.
    timeout: Option<f64>,
}

#[pymethods]
impl Info {
    fn __repr__(&self) -> String {
        let next = self
            .next_size
            .map_or_else(|| "None".to_owned(), |n| n.to_string());
        let timeout = self
            .timeout
            .map_or_else(|| "None".to_owned(), |t| format!("{t:?}"));
        format!(
            "Info(max_message_size={}, next_size={next}, count={}, timeout={timeout})",
            self.max_message_size, self.count
        )
    }
}

/// An open instance and the network role it takes part in.
#[derive(Debug)]
struct Open {
    // Dropped first: no datagram is delivered into a name that is closing.
    _role: Option<NetRole>,
    server: mailslot::Server,
}

/// Why a read ended without a message.
enum Failed {
    Closed,
    /// The library's error, and the next message's size after `InsufficientBuffer`.
    Lib(mailslot::Error, Option<usize>),
    /// A signal handler raised (Ctrl-C: KeyboardInterrupt).
    Signal(PyErr),
}

impl Failed {
    fn timed_out(&self) -> bool {
        matches!(self, Failed::Lib(e, _) if e.kind() == ErrorKind::TimedOut)
    }
}

/// A server (reader) of a mailslot: reads whole messages, oldest first.
///
/// - name: "NAME" or r"\\.\mailslot\NAME" (case-insensitive, backslash "directories" allowed).
/// - shared: let several processes open the name; every instance gets every message
///   (deliver="all") or each message goes to exactly one instance (deliver="one").
///   Without it a second open raises AlreadyExistsError, as on Windows.
/// - max_message_size: larger writes raise MessageTooLargeError (0: MAX_MESSAGE_SIZE).
/// - timeout: how long recv() waits: None forever, 0 not at all, else seconds.
/// - scope: "user" (the user's own directory, or `dir`) or "global" (names shared between
///   users through the host service).
/// - capacity: bytes a reader may lag behind before `overflow` applies: "drop_oldest" (the
///   reader is told how many it lost), "refuse" (writers get QueueFullError) or "block"
///   (writers wait). These, `deliver` and `max_message_size` are fixed by the first instance.
/// - mode, group: permissions of a name this open creates (global scope: who may listen
///   and send).
/// - network: take part in the network role, as `mailslot listen` does: while this process
///   holds it, the LAN's writes to this host's mailslots (UDP 138, or $MAILSLOT_PORT) arrive.
///   The settings come from the same environment variables as the C library's.
///
/// A blocking read releases the GIL and wakes every 0.1 s to let signal handlers run, so
/// Ctrl-C interrupts it (KeyboardInterrupt) and close() from another thread ends it within
/// that time. fileno() is a descriptor for selectors and asyncio: it turns readable when a
/// message may wait; then read with try_recv() until it returns None.
#[pyclass(frozen, module = "mailslot")]
#[derive(Debug)]
pub(crate) struct Server {
    name: String,
    dir: PathBuf,
    /// The read timeout as the caller set it (the library's is set per slice).
    timeout: Mutex<Timeout>,
    open: Mutex<Option<Open>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in the library was reported as an exception already; the value is still whole.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Server {
    fn closed_error(&self) -> PyErr {
        PyValueError::new_err(format!("mailslot \"{}\": the server is closed", self.name))
    }

    fn failure(&self, failed: Failed) -> PyErr {
        match failed {
            Failed::Closed => self.closed_error(),
            Failed::Lib(err, size) => errors::error(
                &errors::kind_name(err.kind()),
                err.to_string(),
                &self.name,
                size,
            ),
            Failed::Signal(err) => err,
        }
    }

    /// Runs `op` on the open server without the GIL.
    fn with_open<T: Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&mut Open) -> T + Send,
    ) -> PyResult<T> {
        py.detach(|| lock(&self.open).as_mut().map(op))
            .ok_or_else(|| self.closed_error())
    }

    /// A read that waits as the timeout says, in slices: between them, signal handlers run
    /// (Ctrl-C raises KeyboardInterrupt) and a `close()` from another thread takes effect.
    fn read<T: Send>(
        &self,
        py: Python<'_>,
        timeout: Timeout,
        mut op: impl FnMut(&mut mailslot::Server) -> Result<T, mailslot::Error> + Send,
    ) -> Result<T, Failed> {
        let deadline = match timeout {
            Timeout::Immediate => Some(Instant::now()),
            Timeout::After(d) => Instant::now().checked_add(d),
            Timeout::Forever => None,
        };
        loop {
            let outcome = py.detach(|| {
                let mut open = lock(&self.open);
                let server = &mut open.as_mut().ok_or(Failed::Closed)?.server;
                let wait = match deadline {
                    Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                    None => SLICE,
                };
                server.set_read_timeout(if wait.is_zero() {
                    Timeout::Immediate
                } else {
                    Timeout::After(wait.min(SLICE))
                });
                op(server).map_err(|e| {
                    let size = (e.kind() == ErrorKind::InsufficientBuffer)
                        .then(|| server.info().next_size)
                        .flatten();
                    Failed::Lib(e, size)
                })
            });
            match outcome {
                Err(failed)
                    if failed.timed_out() && deadline.is_none_or(|d| Instant::now() < d) =>
                {
                    py.check_signals().map_err(Failed::Signal)?;
                }
                other => return other,
            }
        }
    }

    fn message(py: Python<'_>, message: mailslot::Message) -> PyResult<Message> {
        Ok(Message {
            data: PyBytes::new(py, &message.data).unbind(),
            source: Py::new(py, Source::of(&message.source))?,
            lost: message.lost,
        })
    }
}

#[pymethods]
impl Server {
    #[new]
    #[pyo3(signature = (
        name, shared = false, deliver = "all", max_message_size = 0, timeout = None,
        scope = "user", *, dir = None, capacity = None, overflow = "drop_oldest", mode = None,
        group = None, network = false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: &str,
        shared: bool,
        deliver: &str,
        max_message_size: usize,
        timeout: Option<f64>,
        scope: &str,
        dir: Option<PathBuf>,
        capacity: Option<usize>,
        overflow: &str,
        mode: Option<u32>,
        group: Option<u32>,
        network: bool,
    ) -> PyResult<Server> {
        let delivery = match deliver {
            "all" => Delivery::All,
            "one" => Delivery::One,
            other => {
                return Err(errors::value_error(format!(
                    "deliver must be \"all\" or \"one\", not {other:?}"
                )))
            }
        };
        let overflow = match overflow {
            "drop_oldest" => Overflow::DropOldest,
            "refuse" => Overflow::Refuse,
            "block" => Overflow::Block,
            other => {
                return Err(errors::value_error(format!(
                    "overflow must be \"drop_oldest\", \"refuse\" or \"block\", not {other:?}"
                )))
            }
        };
        if mode.is_some_and(|m| m > 0o777) {
            return Err(errors::value_error(format!(
                "mode must be permission bits (at most 0o777), not {:#o}",
                mode.unwrap_or_default()
            )));
        }
        let timeout = timeout_of(timeout)?;
        let scope = scope_of(scope, dir)?;
        if network && scope == Scope::Global {
            return Err(errors::value_error(
                "the global scope's network role is the host service's: leave network=False",
            ));
        }
        let mut builder = mailslot::Server::builder(name)
            .shared(shared)
            .delivery(delivery)
            .max_message_size(max_message_size)
            .read_timeout(timeout)
            .overflow(overflow)
            .scope(scope);
        if let Some(capacity) = capacity {
            builder = builder.capacity(capacity);
        }
        if let Some(mode) = mode {
            builder = builder.mode(mode);
        }
        if let Some(group) = group {
            builder = builder.group(group);
        }
        let server = py
            .detach(|| builder.open())
            .map_err(|e| errors::from_lib(&e, name))?;
        let role = if network {
            // (A bad setting drops the server just opened: no instance is left behind.)
            let config = netenv::config(server.dir())?;
            let role = py
                .detach(|| {
                    let role = NetRole::start(config, Sink::Local)?;
                    role.wait_settled(ROLE_SETTLE);
                    Ok(role)
                })
                .map_err(|e| {
                    let what = format!("mailslot \"{name}\": cannot take part in the network role");
                    errors::from_net(&e, &what, name)
                })?;
            Some(role)
        } else {
            None
        };
        let opened = Open {
            _role: role,
            server,
        };
        Ok(Server {
            name: opened.server.name().to_owned(),
            dir: opened.server.dir().to_path_buf(),
            timeout: Mutex::new(timeout),
            open: Mutex::new(Some(opened)),
        })
    }

    /// Reads the next message (a Message), waiting as the timeout says.
    ///
    /// Raises TimedOutError when none arrived in time (at once with timeout 0),
    /// CorruptedError when damage in the name's shared file was skipped (read on),
    /// ValueError when the server is closed.
    fn recv(&self, py: Python<'_>) -> PyResult<Message> {
        let timeout = *lock(&self.timeout);
        let message = self
            .read(py, timeout, |server| server.recv())
            .map_err(|f| self.failure(f))?;
        Server::message(py, message)
    }

    /// Reads the next message if one waits, without waiting: a Message, or None.
    fn try_recv(&self, py: Python<'_>) -> PyResult<Option<Message>> {
        match self.read(py, Timeout::Immediate, |server| server.try_recv()) {
            Ok(message) => Server::message(py, message).map(Some),
            Err(failed) if failed.timed_out() => Ok(None),
            Err(failed) => Err(self.failure(failed)),
        }
    }

    /// Reads the next message into `buffer` (a writable bytes-like object: bytearray,
    /// memoryview, array, ...) and returns its size; the bytes after it are left as they were.
    ///
    /// A buffer smaller than the next message raises InsufficientBufferError, whose `size`
    /// is the message's size; the message stays queued, so a buffer of that size reads it.
    /// Waits, and raises, as recv() does.
    fn recv_into(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>) -> PyResult<usize> {
        let mut buffer = WritableBuffer::get(buffer)?;
        let timeout = *lock(&self.timeout);
        let received = self
            .read(py, timeout, |server| {
                server.recv_into(buffer.as_mut_slice())
            })
            .map_err(|f| self.failure(f))?;
        debug_assert!(received.len <= buffer.len());
        Ok(received.len)
    }

    /// The mailslot's state, like Windows' GetMailslotInfo: an Info with max_message_size,
    /// next_size (None when no message waits), count and timeout. Consumes nothing.
    fn info(&self, py: Python<'_>) -> PyResult<Info> {
        let info = self.with_open(py, |open| open.server.info())?;
        Ok(Info {
            max_message_size: info.max_message_size,
            next_size: info.next_size,
            count: info.count,
            timeout: seconds_of(*lock(&self.timeout)),
        })
    }

    /// The read timeout: None (wait forever), 0 (return at once) or seconds. Setting it is
    /// Windows' SetMailslotInfo; it applies to later reads.
    #[getter]
    fn get_timeout(&self) -> Option<f64> {
        seconds_of(*lock(&self.timeout))
    }

    #[setter]
    fn set_timeout(&self, timeout: Option<f64>) -> PyResult<()> {
        *lock(&self.timeout) = timeout_of(timeout)?;
        Ok(())
    }

    /// The mailslot's name, as given (without any \\.\mailslot\ prefix).
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The runtime directory the name lives in (the host service's, for a global name).
    #[getter]
    fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// True once close() has been called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| lock(&self.open).is_none())
    }

    /// A file descriptor that turns readable when a message may be waiting, for select,
    /// selectors and asyncio's loop.add_reader. After it polls readable, read with
    /// try_recv() until it returns None: only then is it armed again (edge-triggered). It
    /// stays valid until close().
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        self.with_open(py, |open| open.server.as_raw_fd())
    }

    /// Closes this instance (and its part in the network role). Closing the last instance
    /// of a name deletes the name and its unread messages. Closing twice does nothing.
    fn close(&self, py: Python<'_>) {
        py.detach(|| {
            let open = lock(&self.open).take();
            drop(open);
        });
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

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next message; iteration ends when a read times out or the server is closed.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Message>> {
        let timeout = *lock(&self.timeout);
        match self.read(py, timeout, |server| server.recv()) {
            Ok(message) => Server::message(py, message).map(Some),
            Err(Failed::Closed) => Ok(None),
            Err(failed) if failed.timed_out() => Ok(None),
            Err(failed) => Err(self.failure(failed)),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let state = if self.closed(py) { "closed" } else { "open" };
        format!("<mailslot.Server {:?} {state}>", self.name)
    }
}
