//! Shared mailslots for Linux, compatible with Windows and Samba on the LAN.
//!
//! A mailslot is a named, one-way, message-oriented mailbox on a host: any process writes
//! whole messages to it, and its server reads them whole, in order. This crate gives Linux
//! the Windows semantics (names, sizes, timeouts, info, errors) and lifts Windows' limit of
//! one reader per name: with sharing on, several processes open one name and every instance
//! receives every message in the same order (or exactly one instance does, in `one` mode).
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("mailslot-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
//! use mailslot::{Scope, Server, Timeout, Writer};
//!
//! let scope = Scope::Dir(dir.clone());
//! let mut a = Server::builder("chat").shared(true).scope(scope.clone()).open()?;
//! let mut b = Server::builder("chat").shared(true).scope(scope.clone()).open()?;
//! let mut writer = Writer::open_in(&scope, "chat")?;
//! writer.write(b"hello")?;
//! writer.write(b"")?; // zero-length messages are messages
//! assert_eq!(a.recv()?.data, b"hello");
//! assert_eq!(b.recv()?.data, b"hello");
//! assert_eq!(a.recv()?.data, b"");
//! a.set_read_timeout(Timeout::Immediate);
//! assert_eq!(a.recv().unwrap_err().kind(), mailslot::ErrorKind::TimedOut);
//! # drop((a, b)); std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), mailslot::Error>(())
//! ```
//!
//! How it works: each name has one shared-memory log that writers append to (under a lock no
//! scribbled byte can turn into an abort or a hang) and every instance reads with its own
//! cursor, trusting nothing in it that it has not checked; writers wake only sleeping readers;
//! liveness is a lock the kernel releases when a process dies, so a `kill -9` leaves nothing
//! behind. That is the user scope, shared by one user's processes. Names shared between
//! users ([`Scope::Global`]) live in the host service ([`service`]), which alone writes them
//! and decides who may read and write each with the kernel's word about the caller. What it
//! does not do: persist messages, or deliver across hosts by itself (the `net` module's network
//! role does that, over the Windows wire format).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tokio` | off | [`AsyncServer`]: a server read from a tokio task (`recv().await`, a `Stream`) |
//!
//! The C library (`mailslot-ffi`), the Python package (`python/`) and the `mailslot` command
//! (`mailslot-cli`) are built on this crate; the wire format alone is `mailslot-wire`
//! (feature `json`: the JSON form of decoded packets).
// `unsafe` lives in `sys` only (see there); the compiler holds the rest of the crate to it.
#![deny(unsafe_code)]

mod callback;
mod error;
mod name;
pub mod net;
mod registry;
mod ring;
mod scope;
mod server;
pub mod service;
#[allow(unsafe_code)]
mod sys;
mod writer;

#[cfg(feature = "tokio")]
mod async_server;

#[cfg(feature = "tokio")]
pub use async_server::AsyncServer;
pub use callback::Callback;
pub use error::{Error, ErrorKind, Result};
pub use name::{MailslotName, Target, MAX_NAME_LEN};
pub use registry::{list, status_of, InstanceStatus, MailslotStatus};
pub use scope::Scope;
pub use server::{
    Delivery, Info, Message, Overflow, Received, Server, ServerBuilder, Source, Timeout,
    DEFAULT_CAPACITY, MAX_CAPACITY, MAX_MESSAGE_SIZE,
};
pub use writer::{write, Deliverer, Writer};

/// The README's Rust examples, compiled and type-checked as doctests (`cargo test --doc`), so
/// the front page cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
