//! `mailslot._mailslot`: the Rust half of the Python package `mailslot` (PyO3). The package's
//! `__init__.py` re-exports it; its exceptions live in `mailslot/_errors.py`, where Python's
//! multiple inheritance makes `NotFoundError` both a `mailslot.Error` and a
//! `FileNotFoundError`.
//!
//! Blocking calls release the GIL. A blocking read waits in slices of 0.1 s
//! (`server::SLICE`) and checks for signals between them, so Ctrl-C interrupts it and
//! `close()` from another thread ends it.
// `unsafe` lives in `sys` only (one writable buffer); the compiler holds the rest to it.
#![deny(unsafe_code)]

mod errors;
mod netenv;
mod server;
#[allow(unsafe_code)]
mod sys;
mod value;
mod writer;

use pyo3::prelude::*;

/// Decodes one NetBIOS packet into a dict: the fields `mailslot decode` prints as JSON.
///
/// `data` is the UDP payload (any bytes-like object). `port` is the UDP port it was sent to
/// or from, as with `mailslot --port PORT decode`: 137 decodes a name-service packet (query,
/// answer, node status, registration, ...), anything else a datagram-service packet (a
/// mailslot write, with its Messenger or browser body).
///
/// Raises ValueError when the packet is malformed (the message says which field).
#[pyfunction]
#[pyo3(signature = (data, port = 138))]
fn decode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    port: u16,
) -> PyResult<Bound<'py, PyAny>> {
    let bytes = writer::bytes_of(data)?;
    let decoded = if port == mailslot_wire::NAME_SERVICE_PORT {
        mailslot_wire::json::decode_nbns(bytes.as_bytes())
            .map_err(|e| errors::value_error(format!("malformed name-service packet: {e}")))?
    } else {
        mailslot_wire::json::decode_datagram(bytes.as_bytes())
            .map_err(|e| errors::value_error(format!("malformed datagram: {e}")))?
    };
    value::object_to_py(py, &decoded)
}

/// The Rust extension module; `import mailslot` is its public face.
#[pymodule]
fn _mailslot(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<server::Server>()?;
    m.add_class::<server::Message>()?;
    m.add_class::<server::Source>()?;
    m.add_class::<server::Info>()?;
    m.add_class::<writer::Writer>()?;
    m.add_function(wrap_pyfunction!(writer::write, m)?)?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add("MAX_MESSAGE_SIZE", mailslot::MAX_MESSAGE_SIZE)?;
    m.add("MAX_NAME_LEN", mailslot::MAX_NAME_LEN)?;
    m.add("DEFAULT_PORT", mailslot::net::DEFAULT_PORT)?;
    Ok(())
}
