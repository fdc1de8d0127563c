//! The role's view of the wire codec (`mailslot-wire`): one parse that sorts a received
//! datagram into "deliver" or one drop counter, one emit for what we send, and the size rules.

use std::net::Ipv4Addr;

use mailslot_wire::{
    is_size_hole, Datagram, ErrorKind, MailslotDatagram, MessageType, NetbiosName, SizeLimit,
    GROUP_MAX_DATA_LEN, MAILSLOT_PREFIX as WIRE_PREFIX,
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
    if name.contains('.') {
        return None;
    }
    NetbiosName::new(name, suffix).ok()
}

/// Why a datagram is not delivered; each maps to one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// A datagram-service message that carries no user data (0x13–0x16) or an unknown type.
    OtherType(u8),
    /// M set or PACKET_OFFSET != 0.
    Fragment,
    /// Anything that breaks PROTOCOL.md §3.4 (the codec's reason).
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

/// Validate a received datagram (PROTOCOL.md §3.4 items 1–8, by `mailslot-wire`).
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

/// Largest message Windows accepts for `\MAILSLOT\<mailslot>` to a unique name.
pub(crate) fn unique_limit(mailslot: &str) -> usize {
    mailslot_wire::windows_max_data_len(&format!("{MAILSLOT_PREFIX}{mailslot}"))
}

/// Largest message for a group or `*` target: the 424-byte Win32 rule, and never more than
/// the unique limit for long names.
pub(crate) fn group_limit(mailslot: &str) -> usize {
    GROUP_MAX_DATA_LEN.min(unique_limit(mailslot))
}

/// The size rule for `len` bytes: `Err(limit)` when over it. 425 and 426 bytes never work
/// between computers (SEMANTICS.md §2), so they are refused with limit 424.
pub(crate) fn check_len(len: usize, limit: usize) -> Result<(), usize> {
    if len > limit {
        return Err(limit);
    }
    if is_size_hole(len) {
        return Err(GROUP_MAX_DATA_LEN);
    }
    Ok(())
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

/// One unfragmented Windows-client-style datagram ([MS-MAIL] §4, PROTOCOL.md §10.1), with
/// Windows' size rules (SMB ≤ 512 bytes, ≤ 424 bytes to a group, never 425/426).
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
    d.to_vec(SizeLimit::Windows)
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

    /// PROTOCOL.md §10.1, byte for byte.
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
    fn limits_follow_ms_mail() {
        assert_eq!(unique_limit("TEST"), 428);
        assert_eq!(unique_limit("BROWSE"), 424);
        assert_eq!(unique_limit("MESSNGR"), 424);
        assert_eq!(group_limit("TEST"), 424);
        assert_eq!(group_limit("ABCDEFGHIJKLM"), 416);
        assert_eq!(check_len(425, 428), Err(424));
        assert_eq!(check_len(427, 428), Ok(()));
        assert_eq!(check_len(429, 428), Err(428));
    }
}
