//! RFC 1002 NetBIOS name service, the small part a B-node needs: answering name queries for
//! our own names (so `nmblookup NAME` and Windows find us) and broadcasting a name query to
//! resolve a peer's name. Name query request and positive response come from `mailslot-wire`;
//! node status (NBSTAT, `nmblookup -A`), which the wire crate does not cover, is built here.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use mailslot_wire::{AddressList, NbAddress, NbnsPacket, NodeType, ScopedName};

use super::claim::Claims;
use super::codec::{same_name, NbName};

const QTYPE_NBSTAT: u16 = 0x0021;
const CLASS_IN: u16 = 0x0001;
/// TTL we give out (what Windows uses).
const TTL: u32 = 300_000;

/// A request we may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// NAME QUERY REQUEST.
    Query {
        trn_id: u16,
        recursion_desired: bool,
        name: NbName,
        scoped: bool,
    },
    /// NODE STATUS REQUEST (`nmblookup -A`).
    NodeStatus {
        trn_id: u16,
        name: NbName,
        scoped: bool,
    },
}

/// Parse a request; `None` for responses, other opcodes and anything malformed (the
/// responder stays silent).
pub(crate) fn parse_request(buf: &[u8]) -> Option<Request> {
    match NbnsPacket::parse(buf) {
        Ok(NbnsPacket::NameQueryRequest {
            trn_id,
            recursion_desired,
            name,
            ..
        }) => Some(Request::Query {
            trn_id,
            recursion_desired,
            name: name.name,
            scoped: !name.scope.is_empty(),
        }),
        Ok(_) => None,
        Err(_) => parse_node_status(buf),
    }
}

/// A node status request: header with R=0, OPCODE 0, QDCOUNT 1, then a name, NBSTAT, IN.
fn parse_node_status(buf: &[u8]) -> Option<Request> {
    let header = buf.get(..12)?;
    let trn_id = u16::from_be_bytes([header[0], header[1]]);
    let flags = u16::from_be_bytes([header[2], header[3]]);
    if flags & 0xF800 != 0 || header[4..6] != [0, 1] {
        return None;
    }
    let (name, n) = ScopedName::parse(&buf[12..], "QUESTION_NAME").ok()?;
    let q = buf.get(12 + n..12 + n + 4)?;
    if u16::from_be_bytes([q[0], q[1]]) != QTYPE_NBSTAT
        || u16::from_be_bytes([q[2], q[3]]) != CLASS_IN
    {
        return None;
    }
    Some(Request::NodeStatus {
        trn_id,
        name: name.name,
        scoped: !name.scope.is_empty(),
    })
}

fn positive_response(
    trn_id: u16,
    rd: bool,
    name: NbName,
    addr: Ipv4Addr,
    group: bool,
) -> Option<Vec<u8>> {
    let entry = NbAddress {
        group,
        node_type: NodeType::B,
        address: addr,
    }
    .to_bytes();
    let packet = NbnsPacket::PositiveNameQueryResponse {
        trn_id,
        authoritative: true,
        recursion_desired: rd,
        recursion_available: false,
        name: ScopedName::new(name),
        ttl: TTL,
        addresses: AddressList::from_wire(&entry).ok()?,
    };
    let mut out = vec![0u8; packet.buffer_len()];
    packet.emit(&mut out).ok()?;
    Some(out)
}

/// A node status response (RFC 1002 §4.2.18) listing `names` (name, group).
fn node_status_response(trn_id: u16, asked: NbName, names: &[(NbName, bool)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(100 + names.len() * 18);
    out.extend_from_slice(&trn_id.to_be_bytes());
    out.extend_from_slice(&0x8400u16.to_be_bytes()); // R, AA
    out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    let name = ScopedName::new(asked);
    let mut enc = vec![0u8; name.buffer_len()];
    let n = name.emit(&mut enc).unwrap_or(0);
    out.extend_from_slice(&enc[..n]);
    out.extend_from_slice(&QTYPE_NBSTAT.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    let count = names.len().min(255);
    let rdlength = 1 + 18 * count + 46;
    out.extend_from_slice(&(rdlength as u16).to_be_bytes());
    out.push(count as u8);
    for (name, group) in &names[..count] {
        out.extend_from_slice(name.as_bytes());
        // ACTIVE (0x0400) and, for groups, G.
        let f: u16 = 0x0400 | if *group { 0x8000 } else { 0 };
        out.extend_from_slice(&f.to_be_bytes());
    }
    out.extend_from_slice(&[0u8; 46]); // statistics: unit id (MAC) and counters, all zero
    out
}

/// Suffixes of our unique name we claim: workstation and messenger (we receive datagrams for
/// both); the file server's `<20>` only when configured ([`NetConfig::file_server_name`]).
///
/// [`NetConfig::file_server_name`]: super::NetConfig::file_server_name
pub(crate) const HOST_SUFFIXES: [u8; 2] = [0x00, 0x03];
/// The file server suffix.
pub(crate) const SERVER_SUFFIX: u8 = 0x20;

/// The names a holder claims: `host` with [`HOST_SUFFIXES`] (and `<20>` if `server`), unique,
/// and `workgroup<00>`, a group.
pub(crate) fn our_names(host: &NbName, workgroup: &NbName, server: bool) -> Vec<(NbName, bool)> {
    let mut names: Vec<(NbName, bool)> = HOST_SUFFIXES
        .iter()
        .chain(server.then_some(&SERVER_SUFFIX))
        .map(|&s| (host.with_suffix(s), false))
        .collect();
    names.push((workgroup.with_suffix(0x00), true));
    names
}

/// The response to a request, if it asks about one of our registered names (`claims`). `addr`
/// is the address to give out (chosen by the caller for the interface the query came from).
pub(crate) fn respond(
    req: &Request,
    host: &NbName,
    claims: &Claims,
    addr: Ipv4Addr,
) -> Option<Vec<u8>> {
    match *req {
        Request::Query { scoped: true, .. } | Request::NodeStatus { scoped: true, .. } => None,
        Request::Query {
            trn_id,
            recursion_desired,
            name,
            ..
        } => {
            let group = claims.answers_for(&name)?;
            positive_response(trn_id, recursion_desired, name, addr, group)
        }
        // Node status is asked of `*<00>` unicast (`nmblookup -A`), or of our own name.
        Request::NodeStatus { trn_id, name, .. }
            if name.is_wildcard() || same_name(&name, host) =>
        {
            Some(node_status_response(trn_id, name, &claims.registered()))
        }
        Request::NodeStatus { .. } => None,
    }
}

/// One answer from a name query response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) addr: Ipv4Addr,
    pub(crate) group: bool,
}

/// Parse a positive name query response for `want` with id `trn_id`: its first address.
pub(crate) fn parse_response(buf: &[u8], trn_id: u16, want: &NbName) -> Option<Answer> {
    let Ok(NbnsPacket::PositiveNameQueryResponse {
        trn_id: id,
        name,
        addresses,
        ..
    }) = NbnsPacket::parse(buf)
    else {
        return None;
    };
    if id != trn_id || !same_name(&name.name, want) || name.name.suffix() != want.suffix() {
        return None;
    }
    let first = addresses.iter().next()?;
    Some(Answer {
        addr: first.address,
        group: first.group,
    })
}

/// The outcome of a broadcast name query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Unique(Ipv4Addr),
    Group,
    NotFound,
}

/// Broadcast a name query for `name` to every address in `broadcasts` (port `ns_port`) up to
/// 3 times, `per_try` apart (RFC 1002 B-node: BCAST_REQ_RETRY_COUNT 3, 250 ms), returning the
/// first positive answer. A group answer means the name is a workgroup/domain.
pub(crate) fn query(
    name: &NbName,
    broadcasts: &[Ipv4Addr],
    ns_port: u16,
    per_try: Duration,
    bind: Ipv4Addr,
) -> std::io::Result<Lookup> {
    let sock = UdpSocket::bind(SocketAddrV4::new(bind, 0))?;
    sock.set_broadcast(true)?;
    let trn_id = super::send::next_id();
    let packet = NbnsPacket::query(trn_id, ScopedName::new(*name));
    let mut q = vec![0u8; packet.buffer_len()];
    packet.emit(&mut q).map_err(std::io::Error::other)?;
    let mut buf = [0u8; 1024];
    for _ in 0..3 {
        let mut sent_any = false;
        for b in broadcasts {
            if sock.send_to(&q, SocketAddrV4::new(*b, ns_port)).is_ok() {
                sent_any = true;
            }
        }
        if !sent_any {
            return Err(std::io::Error::other(
                "could not send a name query to any broadcast address",
            ));
        }
        let deadline = Instant::now() + per_try;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))?;
            match sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Some(a) = parse_response(&buf[..n], trn_id, name) {
                        return Ok(if a.group {
                            Lookup::Group
                        } else {
                            Lookup::Unique(a.addr)
                        });
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                // Interrupted, or an ICMP error queued on the socket: keep waiting.
                Err(_) => {}
            }
        }
    }
    Ok(Lookup::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> NbName {
        NbName::new("LINUXBOX", 0).unwrap()
    }

    /// Our names, registered (`server`: with `<20>`).
    fn names(server: bool) -> Claims {
        let wg = NbName::new("WORKGROUP", 0).unwrap();
        Claims::new(
            &our_names(&host(), &wg, server),
            std::time::Instant::now(),
            true,
            || 1,
        )
    }

    fn query_bytes(trn_id: u16, name: NbName) -> Vec<u8> {
        let p = NbnsPacket::query(trn_id, ScopedName::new(name));
        let mut v = vec![0u8; p.buffer_len()];
        p.emit(&mut v).unwrap();
        v
    }

    #[test]
    fn answers_our_names_only() {
        let addr = Ipv4Addr::new(10, 99, 0, 2);
        let cases = [
            ("linuxbox", 0u8, Some(false)),
            ("LINUXBOX", 3, Some(false)),
            ("LINUXBOX", 0x20, None),
            ("LINUXBOX", 0x1d, None),
            ("OTHER", 0, None),
            ("WORKGROUP", 0, Some(true)),
            ("WORKGROUP", 0x1e, None),
        ];
        for (name, suffix, group) in cases {
            let n = NbName::new(name, suffix).unwrap();
            let req = parse_request(&query_bytes(0x4242, n)).unwrap();
            let resp = respond(&req, &host(), &names(false), addr);
            match group {
                None => assert!(resp.is_none(), "{name}<{suffix:02x}>"),
                Some(g) => {
                    let a = parse_response(&resp.unwrap(), 0x4242, &n).unwrap();
                    assert_eq!(a, Answer { addr, group: g });
                }
            }
        }
    }

    #[test]
    fn ignores_responses_and_garbage() {
        let n = NbName::new("LINUXBOX", 0).unwrap();
        let req = parse_request(&query_bytes(1, n)).unwrap();
        let resp = respond(&req, &host(), &names(false), Ipv4Addr::LOCALHOST).unwrap();
        assert!(parse_request(&resp).is_none());
        for len in 0..resp.len() {
            assert!(parse_request(&resp[..len]).is_none());
            let _ = parse_response(&resp[..len], 1, &n);
        }
        assert!(parse_response(&resp, 2, &n).is_none());
    }

    #[test]
    fn node_status_lists_names() {
        let mut req = query_bytes(9, NbName::new("*", 0).unwrap());
        req[2..4].copy_from_slice(&[0, 0]); // unicast, no RD (nmblookup -A)
        let l = req.len();
        req[l - 3] = 0x21; // QTYPE NBSTAT
        let parsed = parse_request(&req).unwrap();
        assert!(matches!(parsed, Request::NodeStatus { trn_id: 9, .. }));
        let resp = respond(&parsed, &host(), &names(true), Ipv4Addr::LOCALHOST).unwrap();
        // header 12 + name 34 + type/class/ttl/rdlength 10 + count 1 + 4*18 + 46
        assert_eq!(resp.len(), 12 + 34 + 10 + 1 + 4 * 18 + 46);
        assert_eq!(resp[56], 4);
        assert_eq!(&resp[57..57 + 8], b"LINUXBOX");
        // The wire crate's general view (what `mailslot decode --port 137` uses) reads both.
        let m = mailslot_wire::NbnsMessage::parse(&req).unwrap();
        assert_eq!(m.kind(), mailslot_wire::NbnsKind::NodeStatusRequest);
        let m = mailslot_wire::NbnsMessage::parse(&resp).unwrap();
        assert_eq!(m.kind(), mailslot_wire::NbnsKind::NodeStatusResponse);
        let (_, rr) = m.record.unwrap();
        assert_eq!(rr.node_status().unwrap().names().count(), 4);
    }
}
