//! Sans-I/O codec for Windows remote mailslots: NetBIOS datagrams (RFC 1002 §4.4) carrying
//! [MS-MAIL] SMB mailslot writes, and what rides on them.
//!
//! # What it does
//! - [`NetbiosName`], [`ScopedName`], [`Scope`]: 16-byte names, first- and second-level
//!   encoding, scopes; compression pointers are rejected.
//! - [`Datagram`] (zero-copy view) and [`DatagramRepr`] (parsed value): the datagram-service
//!   header and every MSG_TYPE 0x10-0x16; fragments parse and are flagged.
//! - [`SmbTransaction`] and [`MailslotWrite`]: the SMB_COM_TRANSACTION mailslot write, located
//!   only through DataOffset/DataCount, emitted Windows-style or Samba-style ([`SmbStyle`]).
//! - [`MailslotDatagram`]: the whole datagram as senders build it and receivers validate it,
//!   with the size rules ([`SizeLimit`], [`windows_max_data_len`],
//!   [`samba_safe_max_data_len`], [`GROUP_MAX_DATA_LEN`], [`is_size_hole`]).
//! - [`MessengerMessage`] (`\MAILSLOT\MESSNGR`, code page 850 via [`cp850`]),
//!   [`BrowserFrame`] (`\MAILSLOT\BROWSE`), [`NbnsPacket`] (name query request and positive
//!   response on UDP 137) and [`NbnsMessage`] (a checked view of every name-service packet:
//!   queries, node status, registration, release, refresh, WACK).
//!
//! # What it does not do
//! No sockets, no clocks, no reassembly of fragments, no name registration or defence (their
//! packets parse and emit; nothing here decides when to send them), no session-based SMB, no
//! `\MAILSLOT\LANMAN` or NETLOGON bodies. It never decides policy such as "is this
//! destination one of our names": that is the network code's job.
//!
//! # Guarantees
//! No `unsafe`. No panic on any input: every parser checks lengths with checked arithmetic
//! before indexing. Parsing borrows from the input and does not allocate. `parse(emit(x)) == x`
//! for every value the emitters accept (see [`fuzz_parse`]). Errors are a small `Copy`
//! [`Error`] with an [`ErrorKind`] and a static context naming the field.
//!
//! # Example
//! ```
//! use mailslot_wire::{MailslotDatagram, MessageType, NetbiosName, SizeLimit};
//!
//! let mut dgram = MailslotDatagram::new(
//!     MessageType::DirectGroup,
//!     NetbiosName::new("LINUXBOX", 0x00)?,
//!     NetbiosName::new("WORKGROUP", 0x00)?,
//!     "\\MAILSLOT\\TEST",
//!     b"Hello",
//! );
//! dgram.dgm_id = 0x1234;
//! dgram.source_ip = [192, 168, 1, 10].into();
//! let bytes = dgram.to_vec(SizeLimit::SambaSafe)?;
//! assert_eq!(bytes.len(), 171);
//! let parsed = MailslotDatagram::parse(&bytes)?;
//! assert_eq!(parsed.write.data, b"Hello");
//! assert_eq!(parsed.destination_name.name.to_string(), "WORKGROUP<00>");
//! # Ok::<(), mailslot_wire::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod browser;
pub mod cp850;
mod datagram;
mod error;
#[cfg(feature = "json")]
pub mod json;
pub mod messenger;
mod name;
pub mod nbns;
mod smb;

pub use browser::{Announcement, BrowserFrame, Election, ServerList, BROWSE_MAILSLOT};
pub use datagram::{
    Datagram, DatagramBody, DatagramRepr, Flags, MessageType, NodeType, DATAGRAM_PORT,
    ERROR_DESTINATION_NAME_NOT_PRESENT, ERROR_INVALID_DESTINATION_NAME_FORMAT,
    ERROR_INVALID_SOURCE_NAME_FORMAT, ERROR_PACKET_LEN, HEADER_LEN, PREFIX_LEN,
};
pub use error::{Error, ErrorKind, Result};
pub use messenger::{MessengerMessage, MESSENGER_MAILSLOT};
pub use name::{
    NetbiosName, Scope, ScopedName, ENCODED_NAME_LEN, FIRST_LEVEL_LEN, MAX_ENCODED_NAME_LEN,
    MAX_LABEL_LEN, NAME_LEN,
};
pub use nbns::{
    AddressList, NbAddress, NbnsKind, NbnsMessage, NbnsPacket, NodeName, NodeStatus,
    NAME_SERVICE_PORT,
};
pub use smb::{
    data_offset, is_size_hole, samba_safe_max_data_len, windows_max_data_len, MailslotDatagram,
    MailslotWrite, SizeLimit, SmbStyle, SmbTransaction, CLASS_RELIABLE, CLASS_UNRELIABLE,
    GROUP_MAX_DATA_LEN, MAILSLOT_PREFIX, MAILSLOT_WRITE_OPCODE, MIN_DATA_OFFSET,
    SAMBA_MAX_UDP_PAYLOAD, SMB_COM_TRANSACTION, TRANS_FIXED_LEN, WINDOWS_MAX_SMB_LEN,
};

/// Fuzzing harness shared by `fuzz/fuzz_targets/parse.rs` and the stable smoke test: runs
/// every parser of the crate on `data` and, for each value that parses, checks that emitting
/// it and parsing the result gives the same value.
///
/// # Panics
/// Only when the codec is wrong (a round trip differs, or a parsed value cannot be emitted
/// for a reason other than size): that is what the fuzzer looks for.
pub fn fuzz_parse(data: &[u8]) {
    let mut buf = vec![0u8; data.len() + 64];

    if let Ok(view) = Datagram::new_checked(data) {
        let _ = (
            view.dgm_length(),
            view.dgm_length_matches(),
            view.is_fragment(),
            view.payload(),
        );
    }
    if let Ok(repr) = DatagramRepr::parse_bytes(data) {
        match repr.emit(&mut buf) {
            Ok(n) => assert_eq!(DatagramRepr::parse_bytes(&buf[..n]), Ok(repr)),
            Err(e) => assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}"),
        }
    }
    if let Ok(dgram) = MailslotDatagram::parse(data) {
        let mut out = vec![0u8; dgram.buffer_len()];
        match dgram.emit(SizeLimit::Protocol, &mut out) {
            Ok(n) => assert_eq!(MailslotDatagram::parse(&out[..n]), Ok(dgram)),
            Err(e) => assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}"),
        }
        let _ = (
            dgram.max_data_len(SizeLimit::SambaSafe),
            dgram.check_size(SizeLimit::Windows),
        );
        fuzz_bodies(dgram.write.data);
    }
    if let Ok(write) = MailslotWrite::parse(data) {
        let mut out = vec![0u8; write.buffer_len()];
        match write.emit(&mut out) {
            Ok(n) => assert_eq!(MailslotWrite::parse(&out[..n]), Ok(write)),
            Err(e) => assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}"),
        }
    }
    if let Ok(smb) = SmbTransaction::new_checked(data) {
        let _ = (
            smb.data_offset(),
            smb.data_count(),
            smb.byte_count(),
            smb.timeout(),
        );
    }
    fuzz_bodies(data);
    if let Ok(message) = NbnsMessage::parse(data) {
        let n = message
            .emit(&mut buf)
            .expect("a parsed NBNS message re-emits");
        assert_eq!(NbnsMessage::parse(&buf[..n]), Ok(message));
        let _ = (message.kind().name(), message.record_name());
        if let Some((_, rr)) = message.record {
            let _ = (rr.addresses().map(|a| a.iter().count()), rr.wack_flags());
            if let Ok(status) = rr.node_status() {
                let _ = (status.names().count(), status.unit_id());
            }
        }
    }
    if let Ok(packet) = NbnsPacket::parse(data) {
        let n = packet
            .emit(&mut buf)
            .expect("a parsed NBNS packet re-emits");
        assert_eq!(NbnsPacket::parse(&buf[..n]), Ok(packet));
    }
    if let Ok((name, used)) = ScopedName::parse(data, "fuzz") {
        let n = name.emit(&mut buf).expect("a parsed name re-emits");
        assert_eq!(n, used);
        assert_eq!(&buf[..n], &data[..n]);
        let _ = (name.to_string(), name.name.name());
    }
}

fn fuzz_bodies(data: &[u8]) {
    let mut buf = vec![0u8; data.len() + 64];
    if let Ok(m) = MessengerMessage::parse(data) {
        let n = m.emit(&mut buf).expect("a parsed Messenger body re-emits");
        assert_eq!(MessengerMessage::parse(&buf[..n]), Ok(m));
        let _ = (m.from_text(), m.to_text(), m.text_text());
    }
    if let Ok(f) = BrowserFrame::parse(data) {
        let n = f.emit(&mut buf).expect("a parsed browser frame re-emits");
        assert_eq!(BrowserFrame::parse(&buf[..n]), Ok(f));
    }
}
