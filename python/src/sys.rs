//! The only unsafe code of the package: a Python object's writable buffer (a `bytearray`, a
//! `memoryview`, an `array`, a NumPy array, ...) as a Rust byte slice, so that `recv_into`
//! copies a message straight from the ring into it, with the GIL released.

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::prelude::*;

/// A writable, C-contiguous buffer exported by a Python object, held until dropped.
#[derive(Debug)]
pub(crate) struct WritableBuffer {
    buffer: PyUntypedBuffer,
}

impl WritableBuffer {
    /// Exports `obj`'s buffer, refusing read-only and non-contiguous ones.
    pub(crate) fn get(obj: &Bound<'_, PyAny>) -> PyResult<WritableBuffer> {
        let buffer = PyUntypedBuffer::get(obj).map_err(|_| {
            PyTypeError::new_err(format!(
                "recv_into() needs a writable bytes-like object, not '{}'",
                obj.get_type()
                    .name()
                    .map_or_else(|_| "?".to_owned(), |n| n.to_string())
            ))
        })?;
        if buffer.readonly() {
            return Err(PyTypeError::new_err(
                "recv_into() needs a writable bytes-like object, and this one is read-only",
            ));
        }
        if !buffer.is_c_contiguous() {
            return Err(PyBufferError::new_err(
                "recv_into() needs a contiguous buffer",
            ));
        }
        Ok(WritableBuffer { buffer })
    }

    /// Its size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.buffer.len_bytes()
    }

    /// The buffer's bytes, for writing (without the GIL).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.buffer.len_bytes();
        if len == 0 {
            return &mut [];
        }
        // SAFETY: the export (held in `self.buffer` until this value is dropped) keeps the
        // memory alive and its size fixed (a `bytearray` cannot be resized while exported);
        // it is writable and C-contiguous (checked in `get`), so `buf_ptr` points at `len`
        // bytes in one piece; `&mut self` makes this the only slice we hand out. Another
        // Python thread may touch the same memory meanwhile, exactly as with
        // `socket.recv_into` or `io.RawIOBase.readinto`, which also write without the GIL:
        // that race is the caller's, and any byte pattern is a valid `u8`.
        unsafe { std::slice::from_raw_parts_mut(self.buffer.buf_ptr().cast::<u8>(), len) }
    }
}
