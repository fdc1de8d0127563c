//! Golden name-service packets (RFC 1002 §4.2), one of each kind: the bytes were composed from
//! the RFC's layouts (not by this crate), parse to the expected kind and fields, and re-emit
//! byte for byte; every truncation is an error, never a panic.

use std::net::Ipv4Addr;

use mailslot_wire::nbns::{Opcode, RrName, Section, TYPE_NB, TYPE_NBSTAT, TYPE_NULL};
use mailslot_wire::{NbnsKind, NbnsMessage, NodeType};

/// (kind, packet in hex), from `fixtures/nbns.vectors`.
fn vectors() -> Vec<(&'static str, &'static str)> {
    include_str!("fixtures/nbns.vectors")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split_once(' ').expect("kind and hex"))
        .collect()
}

fn bytes(hex: &str) -> Vec<u8> {
    let h: String = hex.split_whitespace().collect();
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// A vector's bytes, for the whole test (views borrow them).
fn vector(kind: &str) -> &'static [u8] {
    Box::leak(bytes(vectors().into_iter().find(|(k, _)| *k == kind).unwrap().1).into_boxed_slice())
}

#[test]
fn every_kind_parses_and_round_trips() {
    for (kind, hex) in vectors() {
        let b = bytes(hex);
        let m = NbnsMessage::parse(&b).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(m.kind().name(), kind);
        assert_eq!(m.buffer_len(), b.len(), "{kind}");
        let mut out = vec![0u8; m.buffer_len()];
        assert_eq!(m.emit(&mut out).unwrap(), b.len());
        assert_eq!(out, b, "{kind} re-emits byte for byte");
        for cut in 0..b.len() {
            assert!(
                NbnsMessage::parse(&b[..cut]).is_err(),
                "{kind} cut at {cut}"
            );
        }
    }
}

#[test]
fn registration_names_its_address_through_the_pointer() {
    let b = vector("name_registration_request");
    let m = NbnsMessage::parse(b).unwrap();
    assert_eq!(m.header.opcode(), Opcode::Registration);
    assert!(m.header.broadcast() && m.header.recursion_desired() && !m.header.response());
    let (section, rr) = m.record.unwrap();
    assert_eq!(section, Section::Additional);
    assert_eq!(rr.name, RrName::QuestionPointer);
    assert_eq!(m.record_name().unwrap().to_string(), "HOSTB<00>");
    assert_eq!(rr.ttl, 300_000);
    let a: Vec<_> = rr.addresses().unwrap().iter().collect();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].address, Ipv4Addr::new(10, 99, 0, 2));
    assert!(!a[0].group);
    assert_eq!(a[0].node_type, NodeType::B);
    // A pointer anywhere else is refused.
    let mut bad = b.to_vec();
    let at = b.len() - 18; // pointer, 10 bytes of RR fields, 6 of RDATA
    assert_eq!(&bad[at..at + 2], &[0xC0, 0x0C]);
    bad[at + 1] = 0x0D;
    assert!(NbnsMessage::parse(&bad).is_err());
}

#[test]
fn node_status_response_lists_names_and_unit_id() {
    let m = NbnsMessage::parse(vector("node_status_response")).unwrap();
    let (_, rr) = m.record.unwrap();
    assert_eq!(rr.rr_type, TYPE_NBSTAT);
    let status = rr.node_status().unwrap();
    let names: Vec<_> = status.names().collect();
    assert_eq!(names.len(), 2);
    assert_eq!(names[0].name.to_string(), "HOSTB<00>");
    assert!(names[0].active() && !names[0].group());
    assert_eq!(names[1].name.to_string(), "WORKGROUP<00>");
    assert!(names[1].active() && names[1].group());
    assert_eq!(status.unit_id(), Some([2, 0, 0, 0, 0, 1]));
    assert_eq!(status.statistics.len(), 46);
    let q = NbnsMessage::parse(vector("node_status_request")).unwrap();
    assert_eq!(q.question.unwrap().qtype, TYPE_NBSTAT);
    assert!(q.question.unwrap().name.name.is_wildcard());
}

#[test]
fn answers_and_wack() {
    let m = NbnsMessage::parse(vector("negative_name_query_response")).unwrap();
    assert_eq!(m.header.rcode(), 3);
    assert_eq!(m.record.unwrap().1.rr_type, TYPE_NULL);
    let m = NbnsMessage::parse(vector("name_conflict_demand")).unwrap();
    assert_eq!(m.header.rcode(), 7);
    let m = NbnsMessage::parse(vector("wait_for_acknowledgement")).unwrap();
    assert_eq!(m.header.opcode(), Opcode::Wack);
    let (_, rr) = m.record.unwrap();
    assert_eq!(
        (rr.rr_type, rr.ttl, rr.wack_flags()),
        (TYPE_NB, 2, Some(0x2910))
    );
    assert_eq!(
        NbnsMessage::parse(vector("name_refresh_request"))
            .unwrap()
            .kind(),
        NbnsKind::NameRefreshRequest
    );
}

#[test]
fn more_than_one_record_is_unsupported_and_garbage_never_panics() {
    let mut b = vector("positive_name_query_response").to_vec();
    b[11] = 1; // ARCOUNT 1 as well as ANCOUNT 1
    assert_eq!(
        NbnsMessage::parse(&b).unwrap_err().kind(),
        mailslot_wire::ErrorKind::Unsupported
    );
    // A walk over every single-byte change of every vector: errors or values, never a panic,
    // and every value re-emits to what it parsed from.
    for (_, hex) in vectors() {
        let b = bytes(hex);
        for i in 0..b.len() {
            for v in [0x00, 0x01, 0x20, 0x41, 0x7f, 0xc0, 0xff] {
                let mut m = b.clone();
                m[i] = v;
                mailslot_wire::fuzz_parse(&m);
            }
        }
    }
}

/// The packets a B-node sends for its names, built by this crate, are the golden vectors
/// byte for byte (HOSTB<00> at 10.99.0.2, TTL 300000 for registrations, 0 for the rest).
#[test]
fn registration_builders_match_the_vectors() {
    use mailslot_wire::{NbAddress, NetbiosName, ScopedName};
    let name = ScopedName::new(NetbiosName::new("HOSTB", 0).unwrap());
    let entry = NbAddress {
        group: false,
        node_type: NodeType::B,
        address: Ipv4Addr::new(10, 99, 0, 2),
    }
    .to_bytes();
    let cases = [
        (
            "name_registration_request",
            NbnsMessage::registration_request(0x2000, name, &entry, 300_000, false),
        ),
        (
            "name_overwrite_request",
            NbnsMessage::registration_request(0x2001, name, &entry, 300_000, true),
        ),
        (
            "negative_name_registration_response",
            NbnsMessage::negative_registration_response(0x2000, name, &entry),
        ),
        (
            "name_release_request",
            NbnsMessage::release_request(0x3000, name, &entry),
        ),
    ];
    for (kind, m) in cases {
        let mut out = vec![0u8; m.buffer_len()];
        m.emit(&mut out).unwrap();
        assert_eq!(out, vector(kind), "{kind}");
    }
}
