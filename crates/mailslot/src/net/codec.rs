//! The role's view of the wire codec (`mailslot-wire`): one parse that sorts a received
//! datagram into "deliver" or one drop counter, one emit for what we send, and the size rules.

use std::net::Ipv4Addr;

use mailslot_wire::{
    samba_safe_max_data_len, Datagram, ErrorKind, MailslotDatagram, MessageType, NetbiosName,
    SizeLimit, SmbStyle, ENCODED_NAME_LEN, MAILSLOT_PREFIX as WIRE_PREFIX,
};

pub(crate) use mailslot_wire::NetbiosName as NbName;

/// `\MAILSLOT\` prefix of every transaction name.
pub(crate) const MAILSLOT_PREFIX: &str = WIRE_PREFIX;
pub(crate) const DIRECT_UNIQUE: u8 = 0x10;
pub(crate) const DIRECT_GROUP: u8 = 0x11;

/// Same 15 name bytes, ignoring case and the suffix.
pub(crate) fn same_name(a: &NbName, b: &NbName) -> bool {
    a.name_bytes().eq_ignore_ascii_case(b.name_bytes())
}

/// A NetBIOS name for something we address or answer for: what [`NetbiosName::new`] takes,
/// minus dots (a dotted name is a DNS name here).
pub(crate) fn nb_name(name: &str, suffix: u8) -> Option<NbName> {
    nb_name_checked(name, suffix).ok()
}

/// [`nb_name`], or why `name` cannot be one, in words that say what is accepted.
pub(crate) fn nb_name_checked(name: &str, suffix: u8) -> Result<NbName, &'static str> {
    if name.contains('.') {
        return Err("a NetBIOS name has no dot (1 to 15 characters of code page 850)");
    }
    NetbiosName::new(name, suffix).map_err(|_| {
        if name.is_empty() {
            "empty (a NetBIOS name has 1 to 15 characters of code page 850)"
        } else if name.chars().count() > 15 {
            "longer than 15 characters (a NetBIOS name has 1 to 15 characters of code page 850)"
        } else {
            "a NetBIOS name has 1 to 15 characters of code page 850, no control characters"
        }
    })
}

/// Why a datagram is not delivered; each maps to one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// A datagram-service message that carries no user data (0x13–0x16) or an unknown type.
    OtherType(u8),
    /// M set or PACKET_OFFSET != 0.
    Fragment,
    /// Anything that fails the receive checks (the codec's reason).
    Malformed(&'static str),
}

/// A validated mailslot write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parsed<'a> {
    pub(crate) msg_type: u8,
    pub(crate) dgm_length_ok: bool,
    pub(crate) source: NbName,
    pub(crate) destination: NbName,
    pub(crate) destination_scoped: bool,
    /// The transaction name after `\MAILSLOT\` (case as sent).
    pub(crate) mailslot: &'a str,
    pub(crate) data: &'a [u8],
}

/// Validate a received datagram (the receive checks of docs/wire.md, by `mailslot-wire`).
pub(crate) fn parse_mailslot_datagram(buf: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let Some(&t) = buf.first() else {
        return Err(ParseError::Malformed("empty datagram"));
    };
    if !MessageType::from(t).carries_data() {
        return Err(ParseError::OtherType(t));
    }
    let d = MailslotDatagram::parse(buf).map_err(|e| match e.kind() {
        ErrorKind::Fragment => ParseError::Fragment,
        _ => ParseError::Malformed(e.context()),
    })?;
    let full = d.write.mailslot;
    let mailslot = full.get(MAILSLOT_PREFIX.len()..).unwrap_or("");
    if mailslot.is_empty() {
        return Err(ParseError::Malformed("empty mailslot name"));
    }
    // A name no local mailslot can have (`..`, empty components, too long) is malformed.
    if !crate::name::parses_as_local(mailslot) {
        return Err(ParseError::Malformed("invalid mailslot name"));
    }
    let dgm_length_ok = Datagram::new_checked(buf)
        .map(|v| v.dgm_length_matches())
        .unwrap_or(false);
    Ok(Parsed {
        msg_type: t,
        dgm_length_ok,
        source: d.source_name.name,
        destination: d.destination_name.name,
        destination_scoped: !d.destination_name.scope.is_empty(),
        mailslot,
        data: d.write.data,
    })
}

/// The largest message we send to `\MAILSLOT\<mailslot>`, whatever the target: the one size
/// rule of `send`, its checks and its errors.
///
/// A datagram is at most 576 bytes of UDP payload (RFC 1002's maximum, and all Samba's nmbd
/// reads): the 14-byte header, two unscoped names of 34 bytes, the SMB up to DataOffset, then
/// the message. So 576 − 82 − DataOffset = 414 − roundup4(n) bytes for a name of n bytes after
/// `\MAILSLOT\` (410 for `TEST`, 406 for `MESSNGR` and `BROWSE`). An IP target, a named host
/// and a workgroup broadcast carry the same header and two names, so they share the limit; it
/// is below Windows' rules (512 bytes of SMB, at most 424 to a group or `*`, never 425 or 426),
/// which therefore always hold.
pub(crate) fn max_message_len(mailslot: &str) -> usize {
    samba_safe_max_data_len(
        &format!("{MAILSLOT_PREFIX}{mailslot}"),
        SmbStyle::Windows,
        2 * ENCODED_NAME_LEN,
    )
}

/// Everything needed to emit one datagram.
#[derive(Debug, Clone)]
pub(crate) struct Emit<'a> {
    pub(crate) msg_type: u8,
    pub(crate) dgm_id: u16,
    pub(crate) source_ip: Ipv4Addr,
    pub(crate) source_port: u16,
    pub(crate) source: NbName,
    pub(crate) destination: NbName,
    /// Without `\MAILSLOT\`.
    pub(crate) mailslot: &'a str,
    pub(crate) data: &'a [u8],
}

/// One unfragmented Windows-client-style datagram ([MS-MAIL] §4), at most
/// 576 bytes (see [`max_message_len`]).
pub(crate) fn emit_mailslot_datagram(e: &Emit<'_>) -> Result<Vec<u8>, mailslot_wire::Error> {
    let full = format!("{MAILSLOT_PREFIX}{}", e.mailslot);
    let mut d = MailslotDatagram::new(
        MessageType::from(e.msg_type),
        e.source,
        e.destination,
        &full,
        e.data,
    );
    d.dgm_id = e.dgm_id;
    d.source_ip = e.source_ip;
    d.source_port = e.source_port;
    d.to_vec(SizeLimit::SambaSafe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The worked example of docs/wire.md, byte for byte.
    const EXAMPLE_10_1: &str = "
        11 02 12 34 C0 A8 01 0A 00 8A 00 9D 00 00 20 45
        4D 45 4A 45 4F 46 46 46 49 45 43 45 50 46 49 43
        41 43 41 43 41 43 41 43 41 43 41 43 41 41 41 00
        20 46 48 45 50 46 43 45 4C 45 48 46 43 45 50 46
        46 46 41 43 41 43 41 43 41 43 41 43 41 43 41 41
        41 00 FF 53 4D 42 25 00 00 00 00 18 04 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 FF FE 00 00
        00 00 11 00 00 05 00 02 00 00 00 00 00 02 00 00
        00 00 00 00 00 00 00 54 00 05 00 54 00 03 00 01
        00 00 00 02 00 14 00 5C 4D 41 49 4C 53 4C 4F 54
        5C 54 45 53 54 00 48 65 6C 6C 6F";

    #[test]
    fn emits_and_parses_the_worked_example() {
        let out = emit_mailslot_datagram(&Emit {
            msg_type: DIRECT_GROUP,
            dgm_id: 0x1234,
            source_ip: Ipv4Addr::new(192, 168, 1, 10),
            source_port: 138,
            source: NbName::new("linuxbox", 0).unwrap(),
            destination: NbName::new("WORKGROUP", 0).unwrap(),
            mailslot: "TEST",
            data: b"Hello",
        })
        .unwrap();
        assert_eq!(out, hex(EXAMPLE_10_1));
        let p = parse_mailslot_datagram(&out).unwrap();
        assert_eq!(
            (p.msg_type, p.mailslot, p.data),
            (DIRECT_GROUP, "TEST", &b"Hello"[..])
        );
        assert_eq!(p.source.name(), "LINUXBOX");
        assert!(p.dgm_length_ok && !p.destination_scoped);
    }

    #[test]
    fn sorts_drops() {
        assert_eq!(
            parse_mailslot_datagram(&[]).unwrap_err(),
            ParseError::Malformed("empty datagram")
        );
        assert_eq!(
            parse_mailslot_datagram(&[0x13, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x82]).unwrap_err(),
            ParseError::OtherType(0x13)
        );
        let mut frag = hex(EXAMPLE_10_1);
        frag[1] |= 0x01;
        assert_eq!(
            parse_mailslot_datagram(&frag).unwrap_err(),
            ParseError::Fragment
        );
        assert!(matches!(
            parse_mailslot_datagram(&hex(EXAMPLE_10_1)[..100]).unwrap_err(),
            ParseError::Malformed(_)
        ));
    }

    #[test]
    fn one_size_rule() {
        assert_eq!(max_message_len("TEST"), 410);
        assert_eq!(max_message_len("BROWSE"), 406);
        assert_eq!(max_message_len("MESSNGR"), 406);
        assert_eq!(max_message_len("ABCDEFGHIJKLM"), 398);
        // Below every Windows rule for every name length, so those need no check of their own.
        for n in 1..=80 {
            let name = "N".repeat(n);
            let limit = max_message_len(&name);
            assert!(limit < 425, "{n}: {limit}");
            assert!(limit <= mailslot_wire::windows_max_data_len(&format!("\\MAILSLOT\\{name}")));
        }
        // The datagram of the largest message is exactly 576 bytes; one more byte is refused.
        for name in ["TEST", "MESSNGR", "X", "ABCDEFGHIJKLM"] {
            let data = vec![b'x'; max_message_len(name)];
            let e = |data| Emit {
                msg_type: DIRECT_GROUP,
                dgm_id: 1,
                source_ip: Ipv4Addr::LOCALHOST,
                source_port: 138,
                source: NbName::new("A", 0).unwrap(),
                destination: NbName::new("B", 0).unwrap(),
                mailslot: name,
                data,
            };
            assert_eq!(
                emit_mailslot_datagram(&e(&data)).unwrap().len(),
                576,
                "{name}"
            );
            let more = vec![b'x'; data.len() + 1];
            assert!(emit_mailslot_datagram(&e(&more)).is_err(), "{name}");
        }
    }
}
