//! The exported functions: C's pointers become references and slices here, and only here.
//!
//! Every function runs its body under `catch_unwind`: a panic (a bug) becomes
//! `MS_ERR_INTERNAL` and never unwinds into C. Pointers are checked for NULL; everything else
//! about them (alignment, lifetime, exclusive use) is the caller's promise, stated in each
//! function's `# Safety` and in the header.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use crate::error::{self, ms_error, Failure};
use crate::handle::{
    self, ms_message, ms_received, ms_server, ms_server_options, ms_slot_info, ms_writer,
    ms_writer_options, ServerOptions, MS_NO_MESSAGE,
};

use ms_error::*;

/// Runs `body`, turning a failure or a panic into a code (and this thread's last message).
fn guard(body: impl FnOnce() -> Result<(), Failure>) -> ms_error {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => MS_OK,
        Ok(Err(failure)) => error::record(failure),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            error::record(Failure::new(
                MS_ERR_INTERNAL,
                format!("internal error in libmailslot (please report it): {what}"),
            ))
        }
    }
}

fn null(what: &str) -> Failure {
    Failure::new(MS_ERR_INVALID_ARGUMENT, format!("{what} is NULL"))
}

/// A C string argument as UTF-8 (`code` when it is not).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that lives for `'a`.
unsafe fn string<'a>(p: *const c_char, what: &str, code: ms_error) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL, and NUL-terminated and alive for 'a by the caller's promise.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Failure::new(code, format!("{what} is not UTF-8: {:?}", s)))
}

/// `len` bytes at `p` (NULL allowed when `len` is 0).
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that live for `'a`.
unsafe fn bytes<'a>(p: *const c_void, len: usize) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null("data"));
    }
    // SAFETY: non-NULL, `len` readable bytes alive for 'a by the caller's promise (a byte
    // pointer has no alignment to keep).
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// The handle behind `p`, for exclusive use.
///
/// # Safety
/// `p` is NULL or a live handle of this library that no other thread uses meanwhile.
unsafe fn handle_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: a handle we boxed and nobody else uses now, by the caller's promise.
    unsafe { p.as_mut() }.ok_or_else(|| null(what))
}

/// Stores `value` at `out` unless `out` is NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of a `T`.
unsafe fn put<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable by the caller's promise; `write` drops nothing old
        // (the memory may be uninitialised).
        unsafe { out.write(value) };
    }
}

/// A directory option, if set.
///
/// # Safety
/// As [`string`].
unsafe fn dir_option(p: *const c_char) -> Result<Option<PathBuf>, Failure> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's promise.
    let dir = unsafe { string(p, "dir", MS_ERR_INVALID_OPTION) }?;
    Ok(Some(PathBuf::from(dir)))
}

/// Opens a server instance of the mailslot `name` (`NAME` or `\\.\mailslot\NAME`; names are
/// case-insensitive, up to 80 bytes, and may have backslash "directories"). `options` may be
/// NULL: all zero, Windows' `CreateMailslot(name, 0, 0, NULL)` (see `ms_server_options`).
/// On success stores the handle in `*server`; close it with `ms_close`. Closing the last
/// instance (or the death of its process) deletes the name and its unread messages.
///
/// Errors: `MS_ERR_INVALID_NAME`; `MS_ERR_ALREADY_EXISTS` when the name is open and not
/// joinable; `MS_ERR_PERMISSION_DENIED`; `MS_ERR_INVALID_OPTION`; `MS_ERR_IO`.
///
/// Thread-safe: any thread may open servers at any time.
///
/// # Safety
/// `name` is a NUL-terminated string; `options` is NULL or points to an `ms_server_options`
/// whose `dir` is NULL or a NUL-terminated string; `server` points to writable storage.
#[no_mangle]
pub unsafe extern "C" fn ms_server_open(
    name: *const c_char,
    options: *const ms_server_options,
    server: *mut *mut ms_server,
) -> ms_error {
    guard(|| {
        if server.is_null() {
            return Err(null("server"));
        }
        // SAFETY: `server` is writable by the caller's promise; NULL until we succeed.
        unsafe { server.write(std::ptr::null_mut()) };
        // SAFETY: a NUL-terminated string by the caller's promise.
        let name = unsafe { string(name, "name", MS_ERR_INVALID_NAME) }?;
        // SAFETY: NULL or a valid `ms_server_options` by the caller's promise.
        let raw = unsafe { options.as_ref() }
            .copied()
            .unwrap_or(ms_server_options {
                max_message_size: 0,
                read_timeout_ms: 0,
                shared: 0,
                delivery: 0,
                overflow: 0,
                capacity: 0,
                scope: 0,
                dir: std::ptr::null(),
                mode: 0,
                has_group: 0,
                group: 0,
                network: 0,
            });
        // SAFETY: `dir` is NULL or NUL-terminated by the caller's promise.
        let dir = unsafe { dir_option(raw.dir) }?;
        let opened = ms_server::open(name, ServerOptions { raw, dir })?;
        // SAFETY: writable, as above.
        unsafe { server.write(Box::into_raw(Box::new(opened))) };
        Ok(())
    })
}

/// Reads the next message whole, waiting as the read timeout says, into a new `ms_message`
/// stored in `*message` (free it with `ms_message_free`).
///
/// Errors: `MS_ERR_TIMED_OUT` when none arrived in time (at once with a timeout of 0);
/// `MS_ERR_CORRUPTED` when damage written by another process was skipped.
///
/// Not thread-safe per server: one thread at a time may use a given server (any thread, one
/// after another); different servers are independent.
///
/// # Safety
/// `server` is a live handle from `ms_server_open` no other thread uses meanwhile; `message`
/// points to writable storage.
#[no_mangle]
pub unsafe extern "C" fn ms_recv(
    server: *mut ms_server,
    message: *mut *mut ms_message,
) -> ms_error {
    guard(|| {
        if message.is_null() {
            return Err(null("message"));
        }
        // SAFETY: writable by the caller's promise; NULL until we succeed.
        unsafe { message.write(std::ptr::null_mut()) };
        // SAFETY: a live, unshared handle by the caller's promise.
        let server = unsafe { handle_mut(server, "server") }?;
        let got = handle::message_of(server.recv()?);
        // SAFETY: writable, as above.
        unsafe { message.write(Box::into_raw(Box::new(got))) };
        Ok(())
    })
}

/// Frees a message from `ms_recv` (NULL: nothing).
///
/// Thread-safe: a message may be freed on any thread, once.
///
/// # Safety
/// `message` is NULL or a message from `ms_recv` not freed yet.
#[no_mangle]
pub unsafe extern "C" fn ms_message_free(message: *mut ms_message) {
    let _ = guard(|| {
        if message.is_null() {
            return Ok(());
        }
        // SAFETY: boxed by `ms_recv` and not freed yet, by the caller's promise.
        let message = unsafe { Box::from_raw(message) };
        let with_nul = std::ptr::slice_from_raw_parts_mut(message.data, message.len + 1);
        // SAFETY: `data` is the boxed slice of `len` bytes and the NUL that `message_of`
        // made; the caller has not changed `data` or `len`.
        drop(unsafe { Box::from_raw(with_nul) });
        Ok(())
    });
}

/// Reads the next message whole into `buf` (`len` bytes), waiting as the read timeout says;
/// `received` (may be NULL) gets its length, source and loss count.
///
/// Errors: `MS_ERR_INSUFFICIENT_BUFFER` when the next message is longer than `len`: it stays
/// queued and `received->len` says its size; `MS_ERR_TIMED_OUT`; `MS_ERR_CORRUPTED`.
///
/// Not thread-safe per server (see `ms_recv`).
///
/// # Safety
/// `server` as for `ms_recv`; `buf` is NULL with `len` 0, or points to `len` writable bytes;
/// `received` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ms_recv_into(
    server: *mut ms_server,
    buf: *mut c_void,
    len: usize,
    received: *mut ms_received,
) -> ms_error {
    guard(|| {
        // SAFETY: a live, unshared handle by the caller's promise.
        let server = unsafe { handle_mut(server, "server") }?;
        let buf: &mut [u8] = if len == 0 {
            &mut []
        } else if buf.is_null() {
            return Err(null("buf"));
        } else {
            // SAFETY: `len` writable bytes by the caller's promise, not aliased meanwhile.
            unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) }
        };
        let empty = ms_received {
            len: 0,
            source: handle::source_of(&ms::Source::Local { pid: 0, uid: 0 }),
            lost: 0,
        };
        match server.recv_into(buf) {
            Ok(got) => {
                let out = ms_received {
                    len: got.len,
                    source: handle::source_of(&got.source),
                    lost: got.lost,
                };
                // SAFETY: NULL or writable by the caller's promise.
                unsafe { put(received, out) };
                Ok(())
            }
            Err((failure, next)) => {
                let out = ms_received {
                    len: next.unwrap_or(0),
                    ..empty
                };
                // SAFETY: NULL or writable by the caller's promise.
                unsafe { put(received, out) };
                Err(failure)
            }
        }
    })
}

/// Windows' `GetMailslotInfo`: the maximum message size, the next message's size
/// (`MS_NO_MESSAGE` when none), the number of queued messages and the read timeout, into
/// `*info`. Consumes nothing.
///
/// Not thread-safe per server (see `ms_recv`).
///
/// # Safety
/// `server` as for `ms_recv`; `info` is writable.
#[no_mangle]
pub unsafe extern "C" fn ms_info(server: *mut ms_server, info: *mut ms_slot_info) -> ms_error {
    guard(|| {
        if info.is_null() {
            return Err(null("info"));
        }
        // SAFETY: a live, unshared handle by the caller's promise.
        let server = unsafe { handle_mut(server, "server") }?;
        // SAFETY: non-NULL and writable by the caller's promise.
        unsafe { info.write(server.info()) };
        Ok(())
    })
}

/// Windows' `SetMailslotInfo`: the read timeout of later reads of this instance, in
/// milliseconds (0: return at once; `MS_WAIT_FOREVER`: wait until a message arrives).
///
/// Not thread-safe per server (see `ms_recv`).
///
/// # Safety
/// `server` as for `ms_recv`.
#[no_mangle]
pub unsafe extern "C" fn ms_set_read_timeout(server: *mut ms_server, timeout_ms: u32) -> ms_error {
    guard(|| {
        // SAFETY: a live, unshared handle by the caller's promise.
        let server = unsafe { handle_mut(server, "server") }?;
        server.set_read_timeout(timeout_ms);
        Ok(())
    })
}

/// A descriptor for `poll`/`epoll`/`select` that turns readable when a message may be
/// waiting (-1 with a NULL server). Like edge-triggered epoll: once it polls readable, read
/// with a timeout of 0 until `MS_ERR_TIMED_OUT`; only then is it re-armed. It belongs to the
/// server: do not close it or read from it.
///
/// Not thread-safe per server (see `ms_recv`).
///
/// # Safety
/// `server` is NULL or as for `ms_recv`.
#[no_mangle]
pub unsafe extern "C" fn ms_server_fd(server: *mut ms_server) -> c_int {
    let mut fd = -1;
    let _ = guard(|| {
        // SAFETY: a live, unshared handle by the caller's promise.
        let server = unsafe { handle_mut(server, "server") }?;
        fd = server.fd();
        Ok(())
    });
    fd
}

/// Closes a server instance (NULL: nothing). Closing the last instance deletes the name and
/// its unread messages; writers of it then fail with `MS_ERR_NOT_FOUND`.
///
/// Not thread-safe per server: no other thread may use it meanwhile or after.
///
/// # Safety
/// `server` is NULL or a live handle from `ms_server_open`, not used again.
#[no_mangle]
pub unsafe extern "C" fn ms_close(server: *mut ms_server) {
    let _ = guard(|| {
        if !server.is_null() {
            // SAFETY: boxed by `ms_server_open`, closed once, by the caller's promise.
            drop(unsafe { Box::from_raw(server) });
        }
        Ok(())
    });
}

/// Opens a writer of `path`: a local mailslot (`NAME`, `\\.\mailslot\NAME`), which must have
/// a server (`MS_ERR_NOT_FOUND` otherwise, as Windows' `ERROR_FILE_NOT_FOUND`), or a remote
/// one (`\\HOST\mailslot\NAME`: a NetBIOS name, DNS name or IPv4 address;
/// `\\WORKGROUP\mailslot\NAME`; `\\*\mailslot\NAME`: every host of our workgroup), which is
/// checked only for its form, as on Windows. `options` may be NULL (the user scope). Close it
/// with `ms_writer_close`. A local writer dies with the server it opened: after that server
/// closes, writes fail with `MS_ERR_NOT_FOUND`, even if a new server took the name.
///
/// Remote writes use the network settings of the environment (`MAILSLOT_PORT`,
/// `MAILSLOT_WORKGROUP`, `MAILSLOT_BROADCAST`, ...; see the README).
///
/// Thread-safe: any thread may open writers at any time.
///
/// # Safety
/// `path` is a NUL-terminated string; `options` is NULL or points to an `ms_writer_options`
/// whose `dir` is NULL or NUL-terminated; `writer` points to writable storage.
#[no_mangle]
pub unsafe extern "C" fn ms_writer_open(
    path: *const c_char,
    options: *const ms_writer_options,
    writer: *mut *mut ms_writer,
) -> ms_error {
    guard(|| {
        if writer.is_null() {
            return Err(null("writer"));
        }
        // SAFETY: writable by the caller's promise; NULL until we succeed.
        unsafe { writer.write(std::ptr::null_mut()) };
        // SAFETY: a NUL-terminated string by the caller's promise.
        let path = unsafe { string(path, "path", MS_ERR_INVALID_NAME) }?;
        // SAFETY: NULL or a valid `ms_writer_options` by the caller's promise.
        let (scope, dir) = match unsafe { options.as_ref() } {
            None => (0, None),
            // SAFETY: `dir` is NULL or NUL-terminated by the caller's promise.
            Some(o) => (o.scope, unsafe { dir_option(o.dir) }?),
        };
        let opened = ms_writer::open(path, scope, dir)?;
        // SAFETY: writable, as above.
        unsafe { writer.write(Box::into_raw(Box::new(opened))) };
        Ok(())
    })
}

/// Writes one message of `len` bytes (0 is a message too). Local: appended before the call
/// returns, never waiting for a reader (except with `MS_OVERFLOW_BLOCK`). Remote: success
/// means the datagram left this host; at most 424 bytes to a workgroup or `*`, and about as
/// much to one host (the limit depends on the name's length).
///
/// Errors: `MS_ERR_NOT_FOUND` when the server closed; `MS_ERR_MESSAGE_TOO_LARGE` (nothing
/// queued or sent); `MS_ERR_QUEUE_FULL`; `MS_ERR_TIMED_OUT`; `MS_ERR_HOST_NOT_FOUND`;
/// `MS_ERR_NETWORK_UNAVAILABLE`.
///
/// Not thread-safe per writer: one thread at a time may use a given writer.
///
/// # Safety
/// `writer` is a live handle from `ms_writer_open` no other thread uses meanwhile; `data` is
/// NULL with `len` 0 or points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn ms_write(
    writer: *mut ms_writer,
    data: *const c_void,
    len: usize,
) -> ms_error {
    guard(|| {
        // SAFETY: a live, unshared handle by the caller's promise.
        let writer = unsafe { handle_mut(writer, "writer") }?;
        // SAFETY: `len` readable bytes by the caller's promise.
        let data = unsafe { bytes(data, len) }?;
        writer.write(data)
    })
}

/// How long a write waits for room in a name that blocks when full (`MS_OVERFLOW_BLOCK`), in
/// milliseconds (`MS_WAIT_FOREVER`, the default: as long as it takes); then
/// `MS_ERR_TIMED_OUT`. No effect on other writers.
///
/// Not thread-safe per writer (see `ms_write`).
///
/// # Safety
/// As for `ms_write`.
#[no_mangle]
pub unsafe extern "C" fn ms_set_write_timeout(writer: *mut ms_writer, timeout_ms: u32) -> ms_error {
    guard(|| {
        // SAFETY: a live, unshared handle by the caller's promise.
        let writer = unsafe { handle_mut(writer, "writer") }?;
        writer.set_write_timeout(timeout_ms);
        Ok(())
    })
}

/// Returns once everything written is in the mailslot (global scope: confirmed by the host
/// service, with its last error since the last flush); at once for other writers.
///
/// Not thread-safe per writer (see `ms_write`).
///
/// # Safety
/// As for `ms_write`.
#[no_mangle]
pub unsafe extern "C" fn ms_writer_flush(writer: *mut ms_writer) -> ms_error {
    guard(|| {
        // SAFETY: a live, unshared handle by the caller's promise.
        let writer = unsafe { handle_mut(writer, "writer") }?;
        writer.flush()
    })
}

/// Closes a writer (NULL: nothing). The server and its queued messages are not affected.
///
/// Not thread-safe per writer: no other thread may use it meanwhile or after.
///
/// # Safety
/// `writer` is NULL or a live handle from `ms_writer_open`, not used again.
#[no_mangle]
pub unsafe extern "C" fn ms_writer_close(writer: *mut ms_writer) {
    let _ = guard(|| {
        if !writer.is_null() {
            // SAFETY: boxed by `ms_writer_open`, closed once, by the caller's promise.
            drop(unsafe { Box::from_raw(writer) });
        }
        Ok(())
    });
}

/// One write to `path` (local in the user scope, or remote: see `ms_writer_open`), without
/// keeping a writer. A local name written to again is cheap (a few writers are kept).
///
/// Errors: as for `ms_writer_open` and `ms_write`.
///
/// Thread-safe.
///
/// # Safety
/// `path` is a NUL-terminated string; `data` is NULL with `len` 0 or points to `len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn ms_write_to(
    path: *const c_char,
    data: *const c_void,
    len: usize,
) -> ms_error {
    guard(|| {
        // SAFETY: a NUL-terminated string by the caller's promise.
        let path = unsafe { string(path, "path", MS_ERR_INVALID_NAME) }?;
        // SAFETY: `len` readable bytes by the caller's promise.
        let data = unsafe { bytes(data, len) }?;
        handle::write_to(path, data)
    })
}

/// The fixed English text of an error code (a static string; "unknown error" for a value
/// that is no `ms_error`).
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn ms_strerror(error: c_int) -> *const c_char {
    error::from_int(error)
        .map_or(c"unknown error", ms_error::text)
        .as_ptr()
}

/// The message of the last call on this thread that failed: what failed, on which mailslot,
/// and why (an empty string before any failure). Valid until this thread's next failing
/// call; copy it to keep it.
///
/// Thread-safe: each thread has its own.
#[no_mangle]
pub extern "C" fn ms_last_error() -> *const c_char {
    error::last_message()
}

/// `GetLastError()` of `<mailslot/win32.h>`: this thread's last Win32 error code (one per
/// thread for the whole program). Not for other use.
///
/// Thread-safe: each thread has its own.
#[no_mangle]
pub extern "C" fn ms_win32_get_last_error() -> u32 {
    error::win32_last_error()
}

/// `SetLastError()` of `<mailslot/win32.h>`.
///
/// Thread-safe: each thread has its own.
#[no_mangle]
pub extern "C" fn ms_win32_set_last_error(code: u32) {
    error::set_win32_last_error(code);
}

/// `Sleep()` of `<mailslot/win32.h>`: sleeps `ms` milliseconds (`nanosleep` is hidden from
/// programs built with a strict `-std=c99`, and the Win32 header must build there too).
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn ms_win32_sleep(ms: u32) {
    let _ = guard(|| {
        std::thread::sleep(std::time::Duration::from_millis(u64::from(ms)));
        Ok(())
    });
}

// `MS_NO_MESSAGE` is what `ms_info` reports for an empty queue; the header spells it out.
const _: () = assert!(MS_NO_MESSAGE == u64::MAX);
