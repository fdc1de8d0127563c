//! Golden vectors (hand-checked examples and captures of Samba and scapy), both ways.

mod vectors;

use std::net::Ipv4Addr;

use mailslot_wire::{
    BrowserFrame, Datagram, Flags, MailslotDatagram, MessageType, MessengerMessage, NetbiosName,
    NodeType, SizeLimit, SmbStyle, SmbTransaction,
};
use vectors::*;

fn name(n: &str, suffix: u8) -> NetbiosName {
    NetbiosName::new(n, suffix).unwrap()
}

#[test]
fn p10_1_windows_broadcast() {
    let bytes = hex(P10_1);
    assert_eq!(bytes.len(), 171);
    let d = MailslotDatagram::parse(&bytes).unwrap();
    assert_eq!(d.msg_type, MessageType::DirectGroup);
    assert_eq!(d.flags, Flags(0x02));
    assert_eq!(d.flags.node_type(), NodeType::B);
    assert!(d.flags.first() && !d.flags.more());
    assert_eq!(d.dgm_id, 0x1234);
    assert_eq!(d.source_ip, Ipv4Addr::new(192, 168, 1, 10));
    assert_eq!(d.source_port, 138);
    assert_eq!(d.source_name.name, name("LINUXBOX", 0));
    assert_eq!(d.destination_name.name, name("WORKGROUP", 0));
    assert!(d.source_name.scope.is_empty());
    assert_eq!(d.write.mailslot, "\\MAILSLOT\\TEST");
    assert_eq!(d.write.data, b"Hello");
    assert_eq!((d.write.priority, d.write.class), (0, 2));
    assert_eq!(d.write.style, SmbStyle::Windows);
    let view = Datagram::new_checked(&bytes[..]).unwrap();
    assert_eq!(view.dgm_length(), Some(157));
    assert!(view.dgm_length_matches());
    let smb = SmbTransaction::new_checked(&bytes[82..]).unwrap();
    assert_eq!(
        (smb.data_offset(), smb.data_count(), smb.byte_count()),
        (84, 5, 20)
    );
    assert_eq!(
        (
            smb.parameter_offset(),
            smb.max_parameter_count(),
            smb.trans_flags()
        ),
        (84, 2, 2)
    );
    assert_eq!(smb.opcode(), 1);

    let mut built = MailslotDatagram::new(
        MessageType::DirectGroup,
        name("LINUXBOX", 0),
        name("WORKGROUP", 0),
        "\\MAILSLOT\\TEST",
        b"Hello",
    );
    built.dgm_id = 0x1234;
    built.source_ip = Ipv4Addr::new(192, 168, 1, 10);
    assert_eq!(built, d);
    assert_eq!(built.to_vec(SizeLimit::SambaSafe).unwrap(), bytes);
}

#[test]
fn p10_2_messenger_padded() {
    let bytes = p10_2();
    assert_eq!(bytes.len(), 195);
    let d = MailslotDatagram::parse(&bytes).unwrap();
    assert_eq!(d.dgm_id, 0x1235);
    assert_eq!(d.write.mailslot, "\\MAILSLOT\\MESSNGR");
    assert_eq!(d.write.data, b"LINUXBOX\0WORKGROUP\0Hello\0");
    let smb = SmbTransaction::new_checked(&bytes[82..]).unwrap();
    assert_eq!((smb.data_offset(), smb.byte_count()), (88, 44));
    let m = MessengerMessage::parse(d.write.data).unwrap();
    assert_eq!(
        (m.from_text(), m.to_text(), m.text_text()),
        ("LINUXBOX".into(), "WORKGROUP".into(), "Hello".into())
    );

    let body = MessengerMessage::encode("LINUXBOX", "WORKGROUP", "Hello").unwrap();
    let mut built = MailslotDatagram::new(
        MessageType::DirectGroup,
        name("LINUXBOX", 0),
        name("WORKGROUP", 0),
        mailslot_wire::MESSENGER_MAILSLOT,
        &body,
    );
    built.dgm_id = 0x1235;
    built.source_ip = Ipv4Addr::new(192, 168, 1, 10);
    assert_eq!(built.to_vec(SizeLimit::Windows).unwrap(), bytes);
}

#[test]
fn p10_2_non_zero_pad_byte() {
    // Win98 pads with 0x42: only DataOffset locates the data.
    let mut bytes = p10_2();
    bytes[0xa9] = 0x42;
    let d = MailslotDatagram::parse(&bytes).unwrap();
    assert_eq!(d.write.data, b"LINUXBOX\0WORKGROUP\0Hello\0");
}

#[test]
fn p10_3_nmbd_host_announcement() {
    let bytes = hex(P10_3);
    assert_eq!(bytes.len(), 215);
    let d = MailslotDatagram::parse(&bytes).unwrap();
    assert_eq!(d.flags, Flags(0x0A));
    assert_eq!(d.flags.node_type(), NodeType::M);
    assert_eq!(d.dgm_id, 0x6BE4);
    assert_eq!(d.source_ip, Ipv4Addr::new(10, 99, 0, 1));
    assert_eq!(d.source_name.name, name("SAMBAPEER", 0));
    assert_eq!(d.destination_name.name, name("TESTGRP", 0x1D));
    assert_eq!(d.write.mailslot, "\\MAILSLOT\\BROWSE");
    assert_eq!(
        (d.write.priority, d.write.class, d.write.style),
        (1, 2, SmbStyle::Samba)
    );
    assert_eq!(d.write.data.len(), 47);
    let BrowserFrame::HostAnnouncement(a) = BrowserFrame::parse(d.write.data).unwrap() else {
        panic!("not a HostAnnouncement")
    };
    assert_eq!(a.update_count, 0);
    assert_eq!(a.periodicity, 60000);
    assert_eq!(a.server_name, b"SAMBAPEER");
    assert_eq!((a.os_version_major, a.os_version_minor), (6, 1));
    assert_eq!(a.server_type, 0x0081_9A03);
    assert_eq!((a.browser_version_major, a.browser_version_minor), (15, 1));
    assert_eq!(a.signature, 0xAA55);
    assert_eq!(a.comment, b"nmbd test peer");
    // Samba style reproduces the capture byte for byte, and so does the frame.
    assert_eq!(d.to_vec(SizeLimit::SambaSafe).unwrap(), bytes);
    assert_eq!(
        BrowserFrame::HostAnnouncement(a).to_vec().unwrap(),
        d.write.data
    );
}

fn samba_style(
    msg_type: MessageType,
    src: NetbiosName,
    dst: NetbiosName,
    mailslot: &'static str,
    data: &'static [u8],
) -> MailslotDatagram<'static> {
    let mut d = MailslotDatagram::new(msg_type, src, dst, mailslot, data);
    d.write.style = SmbStyle::Samba;
    d.write.priority = 1;
    d.dgm_id = 0x1234;
    d.source_ip = Ipv4Addr::new(10, 99, 0, 1);
    d
}

#[test]
fn report4_group_samba_style() {
    let bytes = hex(R4_GROUP);
    let expected = samba_style(
        MessageType::DirectGroup,
        name("MS-SENDER", 0),
        name("MSLAB", 0),
        "\\MAILSLOT\\TEST",
        b"hello",
    );
    assert_eq!(MailslotDatagram::parse(&bytes).unwrap(), expected);
    assert_eq!(expected.to_vec(SizeLimit::SambaSafe).unwrap(), bytes);
}

#[test]
fn report4_unique_samba_style() {
    static DATA: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    let bytes = hex(R4_UNIQUE);
    let expected = samba_style(
        MessageType::DirectUnique,
        name("HOST-A", 0),
        name("HOST-B", 3),
        "\\MAILSLOT\\MESSNGR",
        &DATA,
    );
    assert_eq!(MailslotDatagram::parse(&bytes).unwrap(), expected);
    assert_eq!(expected.to_vec(SizeLimit::SambaSafe).unwrap(), bytes);
    let smb = SmbTransaction::new_checked(&bytes[82..]).unwrap();
    assert_eq!(smb.data_offset(), 87);
}

#[test]
fn every_vector_passes_the_fuzz_harness() {
    for (_, v) in all() {
        mailslot_wire::fuzz_parse(&v);
    }
}
