//! What the role does with one received datagram, without I/O: validate (the receive checks of
//! docs/wire.md), check the destination, and say which counter it lands in.

use super::codec::{parse_mailslot_datagram, same_name, NbName, ParseError, Parsed};

/// Who we are, for the destination check.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) host: NbName,
    pub(crate) workgroup: NbName,
    pub(crate) accept_any: bool,
    pub(crate) deliver_own: bool,
}

/// Why a datagram is not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drop {
    Malformed(&'static str),
    Fragment,
    OtherType(u8),
    NotForUs,
    Own,
}

/// Classify one datagram.
///
/// Accepted destinations: our NetBIOS name with any suffix, our
/// workgroup with any suffix (browser frames go to `WG<1D>`, `WG<1E>`), the wildcard `*`, and
/// with `accept_any` everything. Scoped destinations are not ours (our scope is empty).
///
/// Item 9 (drop our own SOURCE_NAME) is replaced by a choice: by default a datagram that this
/// host sent (our own broadcasts, looped back by the kernel, or a write to our own name) is
/// delivered like any other, so a write to `*` reaches this host's mailslots as it reaches
/// every other host's; the dedupe window makes the per-interface loopback copies one.
/// With `deliver_own` false, writes whose SOURCE_NAME is our host name are dropped (Samba's
/// behaviour for browse frames).
pub(crate) fn classify<'a>(buf: &'a [u8], id: &Identity) -> Result<Parsed<'a>, Drop> {
    let p = parse_mailslot_datagram(buf).map_err(|e| match e {
        ParseError::OtherType(t) => Drop::OtherType(t),
        ParseError::Fragment => Drop::Fragment,
        ParseError::Malformed(why) => Drop::Malformed(why),
    })?;
    if !id.accept_any {
        let d = &p.destination;
        let ours = !p.destination_scoped
            // `*` padded with spaces (scapy) is the wildcard too, not only the RFC's NULs.
            && (same_name(d, &id.host)
                || same_name(d, &id.workgroup)
                || d.is_wildcard()
                || d.name() == "*");
        if !ours {
            return Err(Drop::NotForUs);
        }
    }
    if !id.deliver_own && same_name(&p.source, &id.host) {
        return Err(Drop::Own);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::super::codec::{emit_mailslot_datagram, Emit, DIRECT_GROUP, DIRECT_UNIQUE};
    use super::*;
    use std::net::Ipv4Addr;

    fn id() -> Identity {
        Identity {
            host: NbName::new("LINUXBOX", 0).unwrap(),
            workgroup: NbName::new("WORKGROUP", 0).unwrap(),
            accept_any: false,
            deliver_own: true,
        }
    }

    fn dgram(src: &str, dst: &str, suffix: u8) -> Vec<u8> {
        emit_mailslot_datagram(&Emit {
            msg_type: if dst == "WORKGROUP" {
                DIRECT_GROUP
            } else {
                DIRECT_UNIQUE
            },
            dgm_id: 1,
            source_ip: Ipv4Addr::new(10, 0, 0, 1),
            source_port: 138,
            source: NbName::new(src, 0).unwrap(),
            destination: NbName::new(dst, suffix).unwrap(),
            mailslot: "TEST",
            data: b"x",
        })
        .unwrap()
    }

    #[test]
    fn destinations() {
        assert!(classify(&dgram("PEER", "linuxbox", 0), &id()).is_ok());
        assert!(classify(&dgram("PEER", "LINUXBOX", 3), &id()).is_ok());
        assert!(classify(&dgram("PEER", "WORKGROUP", 0x1d), &id()).is_ok());
        assert!(classify(&dgram("PEER", "*", 0), &id()).is_ok());
        assert_eq!(
            classify(&dgram("PEER", "OTHERHOST", 0), &id()).unwrap_err(),
            Drop::NotForUs
        );
        let mut any = id();
        any.accept_any = true;
        assert!(classify(&dgram("PEER", "OTHERHOST", 0), &any).is_ok());
    }

    #[test]
    fn own_source() {
        assert!(classify(&dgram("LINUXBOX", "WORKGROUP", 0), &id()).is_ok());
        let mut strict = id();
        strict.deliver_own = false;
        assert_eq!(
            classify(&dgram("LINUXBOX", "WORKGROUP", 0), &strict).unwrap_err(),
            Drop::Own
        );
    }

    #[test]
    fn scoped_destination_is_not_ours() {
        let mut d = dgram("PEER", "LINUXBOX", 0);
        // Give DESTINATION_NAME (at 14 + 34) a scope label "x": replace its terminator.
        let end = 14 + 34 + 33;
        d.splice(end..end, [1u8, b'x']);
        assert_eq!(classify(&d, &id()).unwrap_err(), Drop::NotForUs);
    }
}
