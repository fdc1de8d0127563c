//! Each hostile input (the bug classes of past mailslot CVEs) is refused with a clear error,
//! never a panic.

mod vectors;

use mailslot_wire::{
    BrowserFrame, DatagramRepr, ErrorKind, MailslotDatagram, MailslotWrite, NbnsPacket,
};
use vectors::*;

const SMB: usize = 82; // start of the SMB in the unscoped vectors

fn set_le16(v: &mut [u8], at: usize, x: u16) {
    v[at..at + 2].copy_from_slice(&x.to_le_bytes());
}

fn err(bytes: &[u8]) -> mailslot_wire::Error {
    MailslotDatagram::parse(bytes).unwrap_err()
}

#[test]
fn empty_datagram() {
    let e = err(&[]);
    assert_eq!(e.kind(), ErrorKind::Truncated);
    assert!(DatagramRepr::parse_bytes(&[]).is_err());
    assert!(MailslotWrite::parse(&[]).is_err());
    assert!(NbnsPacket::parse(&[]).is_err());
    assert!(BrowserFrame::parse(&[]).is_err());
    mailslot_wire::fuzz_parse(&[]);
}

#[test]
fn name_without_nul_cve_2006_3942() {
    // Overwrite the NUL (and the rest up to DataOffset) of "\MAILSLOT\TEST\0".
    let mut v = hex(P10_1);
    v[SMB + 83] = b'X';
    let e = err(&v);
    assert_eq!(
        e.to_string(),
        "transaction name has no NUL before DataOffset"
    );
    // A NUL after DataOffset (inside the data) must not be found either.
    let mut v = hex(R4_UNIQUE);
    let end = SMB + 87;
    v[end - 1] = b'X';
    assert_eq!(v[end], 0); // data starts with 0x00
    assert_eq!(
        err(&v).to_string(),
        "transaction name has no NUL before DataOffset"
    );
}

#[test]
fn offsets_and_counts_past_the_end() {
    let base = hex(P10_1);
    let smb_len = base.len() - SMB;
    // DataCount one too many
    let mut v = base.clone();
    set_le16(&mut v, SMB + 55, 6);
    assert_eq!(
        err(&v).to_string(),
        "DataOffset+DataCount beyond the datagram"
    );
    // DataOffset beyond the SMB
    let mut v = base.clone();
    set_le16(&mut v, SMB + 57, (smb_len + 1) as u16);
    assert_eq!(err(&v).to_string(), "DataOffset beyond the datagram");
    // Overflowing sum on 16-bit arithmetic
    let mut v = base.clone();
    set_le16(&mut v, SMB + 55, 0xFFFF);
    set_le16(&mut v, SMB + 57, 0xFFFF);
    assert_eq!(err(&v).kind(), ErrorKind::Malformed);
    // DataOffset inside the fixed part / before the shortest name
    for off in [0u16, 1, 68, 69, 80] {
        let mut v = base.clone();
        set_le16(&mut v, SMB + 57, off);
        assert_eq!(err(&v).kind(), ErrorKind::Malformed, "DataOffset {off}");
    }
    // DataOffset inside the name: NUL not found before it
    let mut v = base.clone();
    set_le16(&mut v, SMB + 57, 81);
    set_le16(&mut v, SMB + 55, 0);
    assert_eq!(
        err(&v).to_string(),
        "transaction name has no NUL before DataOffset"
    );
}

#[test]
fn zero_data_count_is_a_real_empty_message() {
    let mut v = hex(P10_1);
    set_le16(&mut v, SMB + 55, 0);
    let d = MailslotDatagram::parse(&v).unwrap();
    assert_eq!(d.write.data, b"");
    assert_eq!(d.write.mailslot, "\\MAILSLOT\\TEST");
}

#[test]
fn not_a_mailslot_write() {
    let base = hex(P10_1);
    for (at, val, kind) in [
        (SMB, 0xFEu8, ErrorKind::Unsupported),   // magic
        (SMB + 4, 0x72, ErrorKind::Unsupported), // command
        (SMB + 32, 16, ErrorKind::Malformed),    // WordCount
        (SMB + 59, 2, ErrorKind::Malformed),     // SetupCount
        (SMB + 61, 2, ErrorKind::Unsupported),   // opcode
        (SMB + 70, b'P', ErrorKind::Malformed),  // \PAILSLOT\
        (SMB + 79, 0, ErrorKind::Malformed),     // \MAILSLOT\<empty>
        (SMB + 80, 0x07, ErrorKind::Malformed),  // control character in the name
        (0, 0x17, ErrorKind::Unsupported),       // unknown MSG_TYPE
    ] {
        let mut v = base.clone();
        v[at] = val;
        assert_eq!(err(&v).kind(), kind, "byte {at} = {val:#x}: {}", err(&v));
    }
    // 0x13 and 0x14 are not mailslot datagrams
    let mut v = base.clone();
    v[0] = 0x13;
    assert_eq!(err(&v).kind(), ErrorKind::Unsupported);
    // lower-case prefix is fine
    let mut v = base;
    v[SMB + 70..SMB + 78].copy_from_slice(b"mailslot");
    assert_eq!(
        MailslotDatagram::parse(&v).unwrap().write.mailslot,
        "\\mailslot\\TEST"
    );
}

#[test]
fn bad_labels_and_pointers() {
    let base = hex(P10_1);
    for (at, val) in [
        (14usize, 0x1Fu8),
        (14, 0x21),
        (14, 0xC0),
        (15, b'Z'),
        (15, b'a'),
        (47, 0x41),
        (48, 0x10),
        (48, 0xC0),
        (48, 0x00),
    ] {
        let mut v = base.clone();
        v[at] = val;
        let e = err(&v);
        assert!(
            matches!(e.kind(), ErrorKind::Malformed | ErrorKind::Truncated),
            "{at}: {e}"
        );
    }
    let mut v = base.clone();
    v[14] = 0xC0;
    v[15] = 0x0C;
    assert_eq!(err(&v).to_string(), "compression pointer in a NetBIOS name");
    // A scope label pointer right after the 32 bytes of the destination name
    let mut v = base;
    v[0x30 + 33] = 0xC0;
    assert_eq!(err(&v).to_string(), "compression pointer in a NetBIOS name");
}

#[test]
fn fragments_are_flagged_not_delivered() {
    let mut v = hex(P10_1);
    v[1] |= 0x01; // M
    assert_eq!(err(&v).kind(), ErrorKind::Fragment);
    assert!(DatagramRepr::parse_bytes(&v).unwrap().is_fragment());
    let mut v = hex(P10_1);
    v[13] = 8; // PACKET_OFFSET
    assert_eq!(err(&v).kind(), ErrorKind::Fragment);
}

#[test]
fn wrong_dgm_length_is_only_a_warning() {
    // impacket writes the data length only: receivers ignore DGM_LENGTH.
    let mut v = hex(P10_1);
    v[10..12].copy_from_slice(&5u16.to_be_bytes());
    assert!(MailslotDatagram::parse(&v).is_ok());
    assert!(!mailslot_wire::Datagram::new_checked(&v[..])
        .unwrap()
        .dgm_length_matches());
}

#[test]
fn every_vector_truncated_at_every_byte() {
    for (label, v) in all() {
        for cut in 0..v.len() {
            let e = MailslotDatagram::parse(&v[..cut]).unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::Truncated | ErrorKind::Malformed),
                "{label} cut at {cut}: {e}"
            );
            mailslot_wire::fuzz_parse(&v[..cut]);
        }
        assert!(MailslotDatagram::parse(&v).is_ok(), "{label}");
    }
    // Examples of the messages.
    let v = hex(P10_1);
    assert_eq!(err(&v[..20]).to_string(), "truncated in SOURCE_NAME");
    assert_eq!(err(&v[..60]).to_string(), "truncated in DESTINATION_NAME");
    assert_eq!(
        err(&v[..0]).to_string(),
        "truncated in MSG_TYPE (empty datagram)"
    );
}

#[test]
fn browser_frames_short_by_one_byte() {
    // VU#323172: every opcode has a minimum length, checked before any field is read.
    for (frame, min) in [
        (1u8, 33usize),
        (0x0F, 33),
        (0x0C, 33),
        (8, 15),
        (9, 6),
        (0x0A, 6),
        (2, 3),
    ] {
        let mut v = vec![frame];
        v.resize(min - 1, 0);
        assert_eq!(
            BrowserFrame::parse(&v).unwrap_err().kind(),
            ErrorKind::Truncated
        );
        v.push(0);
        assert!(BrowserFrame::parse(&v).is_ok(), "opcode {frame}");
    }
    // A 16-byte ServerName without NUL is bounded to its 16 bytes.
    let mut v = vec![1u8, 0, 0, 0, 0, 0];
    v.extend([b'A'; 16]);
    v.extend([0u8; 11]);
    let BrowserFrame::HostAnnouncement(a) = BrowserFrame::parse(&v).unwrap() else {
        panic!()
    };
    assert_eq!(a.server_name.len(), 16);
}
