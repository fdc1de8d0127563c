//! Property tests: parse(emit(x)) == x; arbitrary and mutated bytes never panic.

mod vectors;

use std::net::Ipv4Addr;

use mailslot_wire::{
    Announcement, BrowserFrame, DatagramBody, DatagramRepr, Flags, MailslotDatagram, MailslotWrite,
    MessageType, MessengerMessage, NetbiosName, Scope, ScopedName, SizeLimit, SmbStyle,
};
use proptest::prelude::*;

fn netbios_name() -> impl Strategy<Value = NetbiosName> {
    prop_oneof![
        any::<[u8; 16]>().prop_map(NetbiosName::from_bytes),
        ("[A-Z0-9-]{1,15}", any::<u8>()).prop_map(|(n, s)| NetbiosName::new(&n, s).unwrap()),
        Just(NetbiosName::WILDCARD),
    ]
}

fn scope_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 1..20), 0..3).prop_map(|labels| {
        let mut v = Vec::new();
        for l in labels {
            v.push(l.len() as u8);
            v.extend(l);
        }
        v
    })
}

fn mailslot_name() -> impl Strategy<Value = String> {
    ("[\\\\]MAILSLOT[\\\\]", "[ -~]{1,40}").prop_map(|(p, n)| format!("{p}{n}"))
}

fn style() -> impl Strategy<Value = SmbStyle> {
    prop_oneof![Just(SmbStyle::Windows), Just(SmbStyle::Samba)]
}

fn msg_type() -> impl Strategy<Value = MessageType> {
    prop_oneof![
        Just(MessageType::DirectUnique),
        Just(MessageType::DirectGroup),
        Just(MessageType::Broadcast)
    ]
}

proptest! {
    #[test]
    fn mailslot_datagram_round_trip(
        mt in msg_type(),
        flags in any::<u8>().prop_map(|f| f & !0x01),
        dgm_id in any::<u16>(),
        ip in any::<[u8; 4]>(),
        port in any::<u16>(),
        src in netbios_name(),
        dst in netbios_name(),
        scope in scope_bytes(),
        mailslot in mailslot_name(),
        data in prop::collection::vec(any::<u8>(), 0..600),
        priority in any::<u16>(),
        class in any::<u16>(),
        style in style(),
    ) {
        let scope = Scope::from_wire(&scope).unwrap();
        let d = MailslotDatagram {
            msg_type: mt,
            flags: Flags(flags),
            dgm_id,
            source_ip: Ipv4Addr::from(ip),
            source_port: port,
            source_name: ScopedName { name: src, scope },
            destination_name: ScopedName { name: dst, scope },
            write: MailslotWrite { mailslot: &mailslot, data: &data, priority, class, style },
        };
        let bytes = d.to_vec(SizeLimit::Protocol).unwrap();
        prop_assert_eq!(bytes.len(), d.buffer_len());
        prop_assert_eq!(MailslotDatagram::parse(&bytes).unwrap(), d);
        let view = mailslot_wire::Datagram::new_checked(&bytes[..]).unwrap();
        prop_assert!(view.dgm_length_matches());
        // Size policy: Windows/Samba-safe emit succeeds exactly when check_size does.
        for limit in [SizeLimit::Windows, SizeLimit::SambaSafe] {
            prop_assert_eq!(d.to_vec(limit).is_ok(), d.check_size(limit).is_ok());
            if d.check_size(limit).is_ok() {
                prop_assert!(data.len() <= d.max_data_len(limit));
            }
        }
        if d.check_size(SizeLimit::SambaSafe).is_ok() {
            prop_assert!(bytes.len() <= 576);
        }
    }

    #[test]
    fn datagram_repr_round_trip(
        flags in any::<u8>(),
        packet_offset in any::<u16>(),
        src in netbios_name(),
        dst in netbios_name(),
        user_data in prop::collection::vec(any::<u8>(), 0..300),
        error_code in any::<u8>(),
        kind in 0..3u8,
    ) {
        let body = match kind {
            0 => DatagramBody::Data {
                packet_offset,
                source_name: ScopedName::new(src),
                destination_name: ScopedName::new(dst),
                user_data: &user_data,
            },
            1 => DatagramBody::Error { error_code },
            _ => DatagramBody::Query { destination_name: ScopedName::new(dst) },
        };
        let msg_type = match kind { 0 => MessageType::DirectGroup, 1 => MessageType::Error, _ => MessageType::NegativeQueryResponse };
        let d = DatagramRepr { msg_type, flags: Flags(flags), dgm_id: 1, source_ip: Ipv4Addr::LOCALHOST, source_port: 138, body };
        let mut buf = vec![0; d.buffer_len()];
        d.emit(&mut buf).unwrap();
        prop_assert_eq!(DatagramRepr::parse_bytes(&buf).unwrap(), d);
    }

    #[test]
    fn messenger_round_trip(from in "[A-Z]{0,15}", to in "[A-Z*]{0,15}", text in "[^\0]{0,200}") {
        let cp850_only: String = text.chars().filter(|&c| mailslot_wire::cp850::encode_char(c).is_some()).collect();
        let body = MessengerMessage::encode(&from, &to, &cp850_only).unwrap();
        let m = MessengerMessage::parse(&body).unwrap();
        prop_assert_eq!(m.from_text(), from);
        prop_assert_eq!(m.to_text(), to);
        prop_assert_eq!(m.text_text(), cp850_only);
    }

    #[test]
    fn announcement_round_trip(
        op in prop_oneof![Just(1u8), Just(0x0F), Just(0x0C)],
        update_count in any::<u8>(), periodicity in any::<u32>(), server_type in any::<u32>(),
        name in "[A-Z0-9-]{0,16}", comment in "[ -~]{0,43}",
        os in any::<(u8, u8)>(), bro in any::<(u8, u8)>(), signature in any::<u16>(),
    ) {
        let a = Announcement {
            update_count, periodicity, server_name: name.as_bytes(), os_version_major: os.0,
            os_version_minor: os.1, server_type, browser_version_major: bro.0,
            browser_version_minor: bro.1, signature, comment: comment.as_bytes(),
        };
        let f = match op { 1 => BrowserFrame::HostAnnouncement(a), 0x0F => BrowserFrame::LocalMasterAnnouncement(a), _ => BrowserFrame::DomainAnnouncement(a) };
        let v = f.to_vec().unwrap();
        prop_assert_eq!(BrowserFrame::parse(&v).unwrap(), f);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..700)) {
        mailslot_wire::fuzz_parse(&data);
    }

    #[test]
    fn mutated_vectors_never_panic(
        which in 0..5usize,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut v = vectors::all()[which].1.clone();
        for (i, b) in edits {
            let at = i.index(v.len());
            v[at] = b;
        }
        if do_cut {
            v.truncate(cut.index(v.len() + 1));
        }
        mailslot_wire::fuzz_parse(&v);
    }
}
