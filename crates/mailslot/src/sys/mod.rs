//! Every system call of the library that needs `unsafe`, each behind a small safe wrapper.
//!
//! One file per mechanism: the shared mapping (`map`, with the typed views of a name's file in
//! `layout` and its protection against truncation in `sigbus`), record checksums and the copy
//! that computes them (`crc`), futex wait and wake (`futex`), open file description locks
//! (`ofd`), descriptors and sockets (`fd`, `fdpass`, `mmsg`), and who we are (`process`). Nothing else in the crate uses `unsafe`, and nothing here knows the layers
//! above but the tokio registration of a server.

mod crc;
mod fd;
pub mod fdpass;
mod futex;
pub mod layout;
mod map;
mod mmsg;
mod ofd;
mod process;
mod sigbus;

pub use crc::crc32c_append;
#[cfg(feature = "tokio")]
pub use fd::register_async;
pub use fd::{poll_readable, socket_drops, wait_readable};
pub use futex::{futex_wait, futex_wake};
pub use map::SharedMap;
pub use mmsg::{discard, drop_hidden_empty, set_peek_offset, RecvBatch, MAX_BATCH};
pub use ofd::{ofd_probe, ofd_try_lock, ofd_unlock, LockProbe};
pub use process::{coarse_now, current_uid, fork_generation, random_u64};
