//! The C library of mailslot: `libmailslot.so` and `libmailslot.a`, with the header
//! `include/mailslot/mailslot.h` (generated from this crate by cbindgen) and the Win32
//! compatibility header `include/mailslot/win32.h` (static inline functions over it).
//!
//! Every exported function is in [`ffi`], the only module with `unsafe` (raw pointers from C).
//! Each catches panics (no unwinding crosses into C), reports failures as an [`ms_error`]
//! code and keeps the message for `ms_last_error()` on the calling thread. The other modules
//! are safe Rust: the handles and their operations ([`handle`]), the error codes and the
//! per-thread last error ([`error`]), and the network settings read from the environment
//! ([`netenv`]).
//!
//! What it does not do: expose the async or callback servers (C has `ms_server_fd` and its own
//! event loop), or the host service's administration (use the `mailslot` command).
#![deny(unsafe_code)]
// The C API spells its types the C way (`ms_server`, `ms_slot_info`), as the header shows them.
#![allow(non_camel_case_types)]

mod error;
#[allow(unsafe_code)]
mod ffi;
mod handle;
mod netenv;

pub use error::ms_error;
pub use handle::{
    ms_message, ms_received, ms_server, ms_server_options, ms_slot_info, ms_source, ms_writer,
    ms_writer_options, MS_DELIVERY_ALL, MS_DELIVERY_ONE, MS_MAX_MESSAGE_SIZE, MS_MAX_NAME_LEN,
    MS_NO_MESSAGE, MS_OVERFLOW_BLOCK, MS_OVERFLOW_DROP_OLDEST, MS_OVERFLOW_REFUSE, MS_SCOPE_GLOBAL,
    MS_SCOPE_USER, MS_SOURCE_LOCAL, MS_SOURCE_NETWORK, MS_WAIT_FOREVER,
};
