//! NetBIOS name service on UDP 137, reduced to what a mailslot host needs (RFC 1002
//! §4.2.12 NAME QUERY REQUEST and §4.2.13 POSITIVE NAME QUERY RESPONSE): resolve a name by
//! broadcast, and answer queries for our own name. Everything else is `Unsupported`.

use std::net::Ipv4Addr;

use crate::datagram::NodeType;
use crate::error::{Error, Result};
use crate::name::ScopedName;

/// The name service's UDP port.
pub const NAME_SERVICE_PORT: u16 = 137;
/// Length of the NBNS header.
pub const HEADER_LEN: usize = 12;
/// QUESTION_TYPE / RR_TYPE NB (general name service resource record).
pub const TYPE_NB: u16 = 0x0020;
/// QUESTION_CLASS / RR_CLASS IN.
pub const CLASS_IN: u16 = 0x0001;

/// Header field ranges and the bits of the 16-bit flags word (R, OPCODE, NM_FLAGS, RCODE).
mod field {
    use core::ops::Range;
    pub const NAME_TRN_ID: Range<usize> = 0..2;
    pub const FLAGS: Range<usize> = 2..4;
    pub const QDCOUNT: Range<usize> = 4..6;
    pub const ANCOUNT: Range<usize> = 6..8;
    pub const NSCOUNT: Range<usize> = 8..10;
    pub const ARCOUNT: Range<usize> = 10..12;

    pub const RESPONSE: u16 = 0x8000;
    pub const OPCODE: u16 = 0x7800;
    pub const AA: u16 = 0x0400;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const B: u16 = 0x0010;
    pub const RCODE: u16 = 0x000F;
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// One NB_FLAGS + NB_ADDRESS entry of a positive response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NbAddress {
    /// G: the name is a group name.
    pub group: bool,
    /// ONT: owner node type.
    pub node_type: NodeType,
    /// NB_ADDRESS.
    pub address: Ipv4Addr,
}

impl NbAddress {
    /// Wire length of an entry.
    pub const LEN: usize = 6;

    /// Decodes a 6-byte entry.
    pub fn from_bytes(b: [u8; 6]) -> Self {
        let flags = u16::from_be_bytes([b[0], b[1]]);
        let node_type = match (flags >> 13) & 3 {
            0 => NodeType::B,
            1 => NodeType::P,
            2 => NodeType::M,
            _ => NodeType::H,
        };
        Self {
            group: flags & 0x8000 != 0,
            node_type,
            address: Ipv4Addr::new(b[2], b[3], b[4], b[5]),
        }
    }

    /// Encodes the entry.
    pub fn to_bytes(&self) -> [u8; 6] {
        let ont: u16 = match self.node_type {
            NodeType::B => 0,
            NodeType::P => 1,
            NodeType::M => 2,
            NodeType::H => 3,
        };
        let flags = (u16::from(self.group) << 15) | (ont << 13);
        let [f0, f1] = flags.to_be_bytes();
        let [a, b, c, d] = self.address.octets();
        [f0, f1, a, b, c, d]
    }
}

/// The RDATA of a positive response: a sequence of 6-byte [`NbAddress`] entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressList<'a>(&'a [u8]);

impl<'a> AddressList<'a> {
    /// Wraps RDATA (a multiple of 6 bytes, at most 65535).
    ///
    /// # Errors
    /// [`ErrorKind::Malformed`](crate::ErrorKind::Malformed) otherwise.
    pub fn from_wire(rdata: &'a [u8]) -> Result<Self> {
        if !rdata.chunks_exact(NbAddress::LEN).remainder().is_empty()
            || rdata.len() > usize::from(u16::MAX)
        {
            return Err(Error::malformed("NBNS RDLENGTH is not a multiple of 6"));
        }
        Ok(Self(rdata))
    }
    /// The raw RDATA.
    pub const fn as_wire(&self) -> &'a [u8] {
        self.0
    }
    /// The entries.
    pub fn iter(&self) -> impl Iterator<Item = NbAddress> + 'a {
        self.0.chunks_exact(NbAddress::LEN).map(|c| {
            let mut b = [0; 6];
            b.copy_from_slice(c);
            NbAddress::from_bytes(b)
        })
    }
}

/// The two name-service packets this crate handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NbnsPacket<'a> {
    /// RFC 1002 §4.2.12 NAME QUERY REQUEST.
    NameQueryRequest {
        /// NAME_TRN_ID.
        trn_id: u16,
        /// B: broadcast query.
        broadcast: bool,
        /// RD: recursion desired.
        recursion_desired: bool,
        /// QUESTION_NAME.
        name: ScopedName<'a>,
    },
    /// RFC 1002 §4.2.13 POSITIVE NAME QUERY RESPONSE.
    PositiveNameQueryResponse {
        /// NAME_TRN_ID of the request.
        trn_id: u16,
        /// AA: authoritative answer.
        authoritative: bool,
        /// RD: recursion desired.
        recursion_desired: bool,
        /// RA: recursion available.
        recursion_available: bool,
        /// RR_NAME.
        name: ScopedName<'a>,
        /// TTL in seconds.
        ttl: u32,
        /// RDATA.
        addresses: AddressList<'a>,
    },
}

impl<'a> NbnsPacket<'a> {
    /// Parses a name query request or a positive name query response (trailing bytes ignored;
    /// compression pointers rejected).
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`](crate::ErrorKind::Truncated),
    /// [`ErrorKind::Malformed`](crate::ErrorKind::Malformed), and
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) for every other NBNS packet.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let header = buf
            .get(..HEADER_LEN)
            .ok_or(Error::truncated("NBNS header"))?;
        let trn_id = be16(&header[field::NAME_TRN_ID]);
        let flags = be16(&header[field::FLAGS]);
        let counts = [
            field::QDCOUNT,
            field::ANCOUNT,
            field::NSCOUNT,
            field::ARCOUNT,
        ]
        .map(|r| be16(&header[r]));
        if flags & field::OPCODE != 0 {
            return Err(Error::unsupported("NBNS OPCODE is not a query"));
        }
        let rest = &buf[HEADER_LEN..];
        if flags & field::RESPONSE == 0 {
            if counts[..2] != [1, 0] {
                return Err(Error::unsupported(
                    "NBNS query without exactly one question",
                ));
            }
            let (name, n) = ScopedName::parse(rest, "QUESTION_NAME")?;
            let q = rest
                .get(n..n + 4)
                .ok_or(Error::truncated("QUESTION_TYPE/QUESTION_CLASS"))?;
            if be16(&q[0..2]) != TYPE_NB || be16(&q[2..4]) != CLASS_IN {
                return Err(Error::unsupported(
                    "NBNS question is not NB/IN (node status?)",
                ));
            }
            return Ok(Self::NameQueryRequest {
                trn_id,
                broadcast: flags & field::B != 0,
                recursion_desired: flags & field::RD != 0,
                name,
            });
        }
        if flags & field::RCODE != 0 {
            return Err(Error::unsupported("negative NBNS name query response"));
        }
        if counts[..2] != [0, 1] {
            return Err(Error::unsupported(
                "NBNS response without exactly one answer",
            ));
        }
        let (name, n) = ScopedName::parse(rest, "RR_NAME")?;
        let rr = rest
            .get(n..n + 10)
            .ok_or(Error::truncated("NBNS RR_TYPE..RDLENGTH"))?;
        if be16(&rr[0..2]) != TYPE_NB || be16(&rr[2..4]) != CLASS_IN {
            return Err(Error::unsupported("NBNS answer is not NB/IN"));
        }
        let ttl = u32::from_be_bytes([rr[4], rr[5], rr[6], rr[7]]);
        let rdlength = usize::from(be16(&rr[8..10]));
        let rdata = rest
            .get(n + 10..n + 10 + rdlength)
            .ok_or(Error::truncated("NBNS RDATA"))?;
        Ok(Self::PositiveNameQueryResponse {
            trn_id,
            authoritative: flags & field::AA != 0,
            recursion_desired: flags & field::RD != 0,
            recursion_available: flags & field::RA != 0,
            name,
            ttl,
            addresses: AddressList::from_wire(rdata)?,
        })
    }

    /// A broadcast query for `name` (B and RD set, as Windows and nmblookup send it).
    pub const fn query(trn_id: u16, name: ScopedName<'a>) -> Self {
        Self::NameQueryRequest {
            trn_id,
            broadcast: true,
            recursion_desired: true,
            name,
        }
    }

    /// Bytes [`NbnsPacket::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::NameQueryRequest { name, .. } => HEADER_LEN + name.buffer_len() + 4,
            Self::PositiveNameQueryResponse {
                name, addresses, ..
            } => HEADER_LEN + name.buffer_len() + 10 + addresses.0.len(),
        }
    }

    /// Writes the packet to the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`ErrorKind::BufferTooSmall`](crate::ErrorKind::BufferTooSmall).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::buffer_too_small())?;
        let put =
            |out: &mut [u8], at: usize, v: u16| out[at..at + 2].copy_from_slice(&v.to_be_bytes());
        match self {
            Self::NameQueryRequest {
                trn_id,
                broadcast,
                recursion_desired,
                name,
            } => {
                let flags = if *broadcast { field::B } else { 0 }
                    | if *recursion_desired { field::RD } else { 0 };
                put(out, 0, *trn_id);
                put(out, 2, flags);
                for (at, v) in [(4, 1), (6, 0), (8, 0), (10, 0)] {
                    put(out, at, v);
                }
                let n = HEADER_LEN + name.emit(&mut out[HEADER_LEN..])?;
                put(out, n, TYPE_NB);
                put(out, n + 2, CLASS_IN);
            }
            Self::PositiveNameQueryResponse {
                trn_id,
                authoritative,
                recursion_desired,
                recursion_available,
                name,
                ttl,
                addresses,
            } => {
                let flags = field::RESPONSE
                    | if *authoritative { field::AA } else { 0 }
                    | if *recursion_desired { field::RD } else { 0 }
                    | if *recursion_available { field::RA } else { 0 };
                put(out, 0, *trn_id);
                put(out, 2, flags);
                for (at, v) in [(4, 0), (6, 1), (8, 0), (10, 0)] {
                    put(out, at, v);
                }
                let n = HEADER_LEN + name.emit(&mut out[HEADER_LEN..])?;
                put(out, n, TYPE_NB);
                put(out, n + 2, CLASS_IN);
                out[n + 4..n + 8].copy_from_slice(&ttl.to_be_bytes());
                // from_wire bounds the list to 65535 bytes
                put(out, n + 8, addresses.0.len() as u16);
                out[n + 10..].copy_from_slice(addresses.0);
            }
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::NetbiosName;

    #[test]
    fn query_matches_nmblookup_layout() {
        let name = ScopedName::new(NetbiosName::new("NMBD-A", 0).unwrap());
        let q = NbnsPacket::query(0x1234, name);
        let mut buf = [0u8; 64];
        let n = q.emit(&mut buf).unwrap();
        assert_eq!(n, 50);
        assert_eq!(
            &buf[..12],
            &[0x12, 0x34, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(&buf[46..50], &[0, 0x20, 0, 1]);
        assert_eq!(NbnsPacket::parse(&buf[..n]).unwrap(), q);
    }

    #[test]
    fn positive_response_round_trip() {
        let entry = NbAddress {
            group: false,
            node_type: NodeType::B,
            address: Ipv4Addr::new(10, 99, 0, 2),
        };
        let raw = entry.to_bytes();
        let r = NbnsPacket::PositiveNameQueryResponse {
            trn_id: 0x1234,
            authoritative: true,
            recursion_desired: true,
            recursion_available: false,
            name: ScopedName::new(NetbiosName::new("MS-B", 0).unwrap()),
            ttl: 300_000,
            addresses: AddressList::from_wire(&raw).unwrap(),
        };
        let mut buf = [0u8; 80];
        let n = r.emit(&mut buf).unwrap();
        assert_eq!(&buf[2..4], &[0x85, 0x00]);
        let p = NbnsPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p, r);
        let NbnsPacket::PositiveNameQueryResponse { addresses, .. } = p else {
            unreachable!()
        };
        assert_eq!(addresses.iter().collect::<Vec<_>>(), [entry]);
        for cut in 0..n {
            assert!(NbnsPacket::parse(&buf[..cut]).is_err());
        }
    }
}
