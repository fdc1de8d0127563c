//! NetBIOS name service on UDP 137 (RFC 1002 §4.2).
//!
//! - [`NbnsPacket`]: the two packets a mailslot host resolves and answers with (§4.2.12 NAME
//!   QUERY REQUEST, §4.2.13 POSITIVE NAME QUERY RESPONSE); everything else is `Unsupported`.
//! - [`NbnsMessage`]: a checked view of any name-service packet with at most one question and
//!   one resource record, which is every packet of §4.2: queries and their positive and
//!   negative responses, node status request and response, registration (also multi-homed),
//!   overwrite, release and refresh requests and their responses, WACK, conflict demands.
//!   [`NbnsMessage::kind`] names it; [`ResourceRecord::addresses`],
//!   [`ResourceRecord::node_status`] and [`ResourceRecord::wack_flags`] read the RDATA. The one
//!   compression pointer RFC 1002 uses (an RR_NAME of `0xC00C`, the question's name) is
//!   accepted; any other pointer is `Malformed`.

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
/// QUESTION_TYPE / RR_TYPE NBSTAT (node status).
pub const TYPE_NBSTAT: u16 = 0x0021;
/// RR_TYPE NULL (negative name query responses).
pub const TYPE_NULL: u16 = 0x000A;
/// RR_TYPE NS and A (redirect responses).
pub const TYPE_NS: u16 = 0x0002;
/// RR_TYPE A.
pub const TYPE_A: u16 = 0x0001;
/// RCODE CFT_ERR: the name is in conflict (a name conflict demand).
pub const RCODE_CFT_ERR: u8 = 0x7;
/// RCODE ACT_ERR: the name is owned by another node (negative registration response).
pub const RCODE_ACT_ERR: u8 = 0x6;
/// The RR_NAME pointer to the question name (offset 12), as RFC 1002 registrations use.
pub const QUESTION_NAME_POINTER: [u8; 2] = [0xC0, 0x0C];

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
    pub const OPCODE_SHIFT: u16 = 11;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
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

/// OPCODE of a name-service packet (RFC 1002 §4.2.1.1); unknown values round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// 0: query (name query, node status).
    Query,
    /// 5: registration (and overwrite).
    Registration,
    /// 6: release.
    Release,
    /// 7: WACK (wait for acknowledgement).
    Wack,
    /// 8: refresh.
    Refresh,
    /// 9: refresh, as RFC 1002's errata and several implementations send it.
    RefreshAlt,
    /// 15: multi-homed registration.
    MultiHomedRegistration,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for Opcode {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::Query,
            5 => Self::Registration,
            6 => Self::Release,
            7 => Self::Wack,
            8 => Self::Refresh,
            9 => Self::RefreshAlt,
            15 => Self::MultiHomedRegistration,
            v => Self::Unknown(v),
        }
    }
}

impl From<Opcode> for u8 {
    fn from(o: Opcode) -> u8 {
        match o {
            Opcode::Query => 0,
            Opcode::Registration => 5,
            Opcode::Release => 6,
            Opcode::Wack => 7,
            Opcode::Refresh => 8,
            Opcode::RefreshAlt => 9,
            Opcode::MultiHomedRegistration => 15,
            Opcode::Unknown(v) => v & 0x0F,
        }
    }
}

/// The 12-byte header: NAME_TRN_ID and the flags word (R, OPCODE, NM_FLAGS, RCODE), kept raw
/// so that every bit round-trips; the counts are derived from the sections on emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NbnsHeader {
    /// NAME_TRN_ID.
    pub trn_id: u16,
    /// The flags word as on the wire.
    pub flags: u16,
}

impl NbnsHeader {
    /// R: a response.
    pub const fn response(&self) -> bool {
        self.flags & field::RESPONSE != 0
    }
    /// OPCODE.
    pub fn opcode(&self) -> Opcode {
        Opcode::from(((self.flags & field::OPCODE) >> field::OPCODE_SHIFT) as u8)
    }
    /// AA: authoritative answer.
    pub const fn authoritative(&self) -> bool {
        self.flags & field::AA != 0
    }
    /// TC: truncated.
    pub const fn truncated(&self) -> bool {
        self.flags & field::TC != 0
    }
    /// RD: recursion desired.
    pub const fn recursion_desired(&self) -> bool {
        self.flags & field::RD != 0
    }
    /// RA: recursion available.
    pub const fn recursion_available(&self) -> bool {
        self.flags & field::RA != 0
    }
    /// B: broadcast.
    pub const fn broadcast(&self) -> bool {
        self.flags & field::B != 0
    }
    /// RCODE (0: no error).
    pub const fn rcode(&self) -> u8 {
        (self.flags & field::RCODE) as u8
    }
}

/// A question entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Question<'a> {
    /// QUESTION_NAME.
    pub name: ScopedName<'a>,
    /// QUESTION_TYPE ([`TYPE_NB`] or [`TYPE_NBSTAT`]).
    pub qtype: u16,
    /// QUESTION_CLASS ([`CLASS_IN`]).
    pub qclass: u16,
}

/// RR_NAME: a name, or the pointer to the question's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RrName<'a> {
    /// The name itself.
    Name(ScopedName<'a>),
    /// `0xC00C`: the question's name (registration, release and refresh requests).
    QuestionPointer,
}

impl RrName<'_> {
    fn buffer_len(&self) -> usize {
        match self {
            Self::Name(n) => n.buffer_len(),
            Self::QuestionPointer => 2,
        }
    }
}

/// The section the resource record is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// ANCOUNT (responses).
    Answer,
    /// NSCOUNT (redirects).
    Authority,
    /// ARCOUNT (registration, release, refresh requests).
    Additional,
}

impl Section {
    /// Lower-case name (`answer`, `authority`, `additional`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Authority => "authority",
            Self::Additional => "additional",
        }
    }
}

/// A resource record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResourceRecord<'a> {
    /// RR_NAME.
    pub name: RrName<'a>,
    /// RR_TYPE.
    pub rr_type: u16,
    /// RR_CLASS.
    pub rr_class: u16,
    /// TTL in seconds.
    pub ttl: u32,
    /// RDATA (at most 65535 bytes).
    pub rdata: &'a [u8],
}

impl<'a> ResourceRecord<'a> {
    /// The NB_FLAGS/NB_ADDRESS entries of an NB record (positive query, registration,
    /// release and refresh packets).
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) for another RR_TYPE,
    /// [`ErrorKind::Malformed`](crate::ErrorKind::Malformed) for RDATA that is not whole
    /// entries.
    pub fn addresses(&self) -> Result<AddressList<'a>> {
        if self.rr_type != TYPE_NB {
            return Err(Error::unsupported("NBNS record is not NB"));
        }
        AddressList::from_wire(self.rdata)
    }

    /// The node status of an NBSTAT record (RFC 1002 §4.2.18).
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) for another RR_TYPE,
    /// [`ErrorKind::Truncated`](crate::ErrorKind::Truncated) when NUM_NAMES entries do not fit.
    pub fn node_status(&self) -> Result<NodeStatus<'a>> {
        if self.rr_type != TYPE_NBSTAT {
            return Err(Error::unsupported("NBNS record is not NBSTAT"));
        }
        let (&count, rest) = self
            .rdata
            .split_first()
            .ok_or(Error::truncated("NBSTAT NUM_NAMES"))?;
        let names_len = usize::from(count) * NodeName::LEN;
        let names = rest
            .get(..names_len)
            .ok_or(Error::truncated("NBSTAT NODE_NAME array"))?;
        Ok(NodeStatus {
            names,
            statistics: &rest[names_len..],
        })
    }

    /// The request's flags word a WACK carries in its two bytes of RDATA.
    pub fn wack_flags(&self) -> Option<u16> {
        match self.rdata {
            [a, b] => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }

    fn buffer_len(&self) -> usize {
        self.name.buffer_len() + 10 + self.rdata.len()
    }
}

/// The RDATA of a node status response: the names a node owns, and its statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeStatus<'a> {
    names: &'a [u8],
    /// STATISTICS as sent (RFC 1002: 46 bytes, the first 6 the unit ID, a MAC address).
    pub statistics: &'a [u8],
}

impl<'a> NodeStatus<'a> {
    /// The NODE_NAME entries.
    pub fn names(&self) -> impl Iterator<Item = NodeName> + 'a {
        self.names.chunks_exact(NodeName::LEN).map(|c| {
            let mut raw = [0u8; 16];
            raw.copy_from_slice(&c[..16]);
            NodeName {
                name: crate::name::NetbiosName::from_bytes(raw),
                flags: u16::from_be_bytes([c[16], c[17]]),
            }
        })
    }

    /// UNIT_ID, the first six bytes of the statistics (a MAC address), when present.
    pub fn unit_id(&self) -> Option<[u8; 6]> {
        let mut id = [0u8; 6];
        id.copy_from_slice(self.statistics.get(..6)?);
        Some(id)
    }
}

/// One NODE_NAME entry of a node status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeName {
    /// The 16-byte name, suffix included.
    pub name: crate::name::NetbiosName,
    /// NAME_FLAGS.
    pub flags: u16,
}

impl NodeName {
    /// Wire length of an entry.
    pub const LEN: usize = 18;

    /// G: a group name.
    pub const fn group(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    /// ACT: the name is active.
    pub const fn active(&self) -> bool {
        self.flags & 0x0400 != 0
    }
    /// CNF: in conflict.
    pub const fn conflict(&self) -> bool {
        self.flags & 0x0800 != 0
    }
    /// DRG: being released.
    pub const fn deregistering(&self) -> bool {
        self.flags & 0x1000 != 0
    }
    /// ONT: owner node type.
    pub const fn node_type(&self) -> NodeType {
        match (self.flags >> 13) & 3 {
            0 => NodeType::B,
            1 => NodeType::P,
            2 => NodeType::M,
            _ => NodeType::H,
        }
    }
}

/// What a name-service packet is, from its R bit, OPCODE, RCODE and sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NbnsKind {
    /// §4.2.12.
    NameQueryRequest,
    /// §4.2.13.
    PositiveNameQueryResponse,
    /// §4.2.14.
    NegativeNameQueryResponse,
    /// §4.2.15: a query response naming another name server.
    RedirectNameQueryResponse,
    /// §4.2.17.
    NodeStatusRequest,
    /// §4.2.18.
    NodeStatusResponse,
    /// §4.2.2 (RD set).
    NameRegistrationRequest,
    /// §4.2.3 (RD clear).
    NameOverwriteRequest,
    /// Multi-homed registration (OPCODE 15).
    MultiHomedNameRegistrationRequest,
    /// §4.2.5.
    PositiveNameRegistrationResponse,
    /// §4.2.6.
    NegativeNameRegistrationResponse,
    /// §4.2.8: RCODE CFT_ERR.
    NameConflictDemand,
    /// §4.2.9.
    NameReleaseRequest,
    /// §4.2.10.
    PositiveNameReleaseResponse,
    /// §4.2.11.
    NegativeNameReleaseResponse,
    /// §4.2.4 (OPCODE 8 or 9).
    NameRefreshRequest,
    /// A response to a refresh.
    NameRefreshResponse,
    /// §4.2.16.
    WaitForAcknowledgement,
    /// A well-formed packet of no kind above.
    Other,
}

impl NbnsKind {
    /// The snake-case name (`name_query_request`, `wait_for_acknowledgement`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::NameQueryRequest => "name_query_request",
            Self::PositiveNameQueryResponse => "positive_name_query_response",
            Self::NegativeNameQueryResponse => "negative_name_query_response",
            Self::RedirectNameQueryResponse => "redirect_name_query_response",
            Self::NodeStatusRequest => "node_status_request",
            Self::NodeStatusResponse => "node_status_response",
            Self::NameRegistrationRequest => "name_registration_request",
            Self::NameOverwriteRequest => "name_overwrite_request",
            Self::MultiHomedNameRegistrationRequest => "multi_homed_name_registration_request",
            Self::PositiveNameRegistrationResponse => "positive_name_registration_response",
            Self::NegativeNameRegistrationResponse => "negative_name_registration_response",
            Self::NameConflictDemand => "name_conflict_demand",
            Self::NameReleaseRequest => "name_release_request",
            Self::PositiveNameReleaseResponse => "positive_name_release_response",
            Self::NegativeNameReleaseResponse => "negative_name_release_response",
            Self::NameRefreshRequest => "name_refresh_request",
            Self::NameRefreshResponse => "name_refresh_response",
            Self::WaitForAcknowledgement => "wait_for_acknowledgement",
            Self::Other => "other",
        }
    }
}

/// A checked view of one name-service packet: the header, at most one question and at most
/// one resource record (every RFC 1002 packet has that shape). Parsing borrows, never panics,
/// and ignores trailing bytes; `parse(emit(m)) == m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NbnsMessage<'a> {
    /// NAME_TRN_ID and flags.
    pub header: NbnsHeader,
    /// The question (QDCOUNT 1), if any.
    pub question: Option<Question<'a>>,
    /// The resource record and its section, if any.
    pub record: Option<(Section, ResourceRecord<'a>)>,
}

impl<'a> NbnsMessage<'a> {
    /// Parses any name-service packet with at most one question and one record.
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`](crate::ErrorKind::Truncated),
    /// [`ErrorKind::Malformed`](crate::ErrorKind::Malformed) (bad names, a compression
    /// pointer other than `0xC00C` to the question), and
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) for more than one question
    /// or record.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let h = buf
            .get(..HEADER_LEN)
            .ok_or(Error::truncated("NBNS header"))?;
        let header = NbnsHeader {
            trn_id: be16(&h[field::NAME_TRN_ID]),
            flags: be16(&h[field::FLAGS]),
        };
        let [qd, an, ns, ar] = [
            field::QDCOUNT,
            field::ANCOUNT,
            field::NSCOUNT,
            field::ARCOUNT,
        ]
        .map(|r| be16(&h[r]));
        if qd > 1 || u32::from(an) + u32::from(ns) + u32::from(ar) > 1 {
            return Err(Error::unsupported(
                "NBNS packet with more than one question or record",
            ));
        }
        let mut pos = HEADER_LEN;
        let question = if qd == 1 {
            let (name, n) = ScopedName::parse(&buf[pos..], "QUESTION_NAME")?;
            let q = buf
                .get(pos + n..pos + n + 4)
                .ok_or(Error::truncated("QUESTION_TYPE/QUESTION_CLASS"))?;
            pos += n + 4;
            Some(Question {
                name,
                qtype: be16(&q[0..2]),
                qclass: be16(&q[2..4]),
            })
        } else {
            None
        };
        let section = match (an, ns, ar) {
            (1, _, _) => Some(Section::Answer),
            (_, 1, _) => Some(Section::Authority),
            (_, _, 1) => Some(Section::Additional),
            _ => None,
        };
        let record = match section {
            None => None,
            Some(section) => {
                let rest = &buf[pos..];
                let (name, n) = match rest.first() {
                    Some(b) if b & 0xC0 == 0xC0 => {
                        if rest.get(..2) != Some(&QUESTION_NAME_POINTER[..]) || question.is_none() {
                            return Err(Error::malformed(
                                "RR_NAME pointer other than 0xC00C to the question name",
                            ));
                        }
                        (RrName::QuestionPointer, 2)
                    }
                    _ => {
                        let (name, n) = ScopedName::parse(rest, "RR_NAME")?;
                        (RrName::Name(name), n)
                    }
                };
                let rr = rest
                    .get(n..n + 10)
                    .ok_or(Error::truncated("NBNS RR_TYPE..RDLENGTH"))?;
                let rdlength = usize::from(be16(&rr[8..10]));
                let rdata = rest
                    .get(n + 10..n + 10 + rdlength)
                    .ok_or(Error::truncated("NBNS RDATA"))?;
                Some((
                    section,
                    ResourceRecord {
                        name,
                        rr_type: be16(&rr[0..2]),
                        rr_class: be16(&rr[2..4]),
                        ttl: u32::from_be_bytes([rr[4], rr[5], rr[6], rr[7]]),
                        rdata,
                    },
                ))
            }
        };
        Ok(Self {
            header,
            question,
            record,
        })
    }

    /// The record's name, the question's when RR_NAME points to it.
    pub fn record_name(&self) -> Option<ScopedName<'a>> {
        match self.record?.1.name {
            RrName::Name(n) => Some(n),
            RrName::QuestionPointer => self.question.map(|q| q.name),
        }
    }

    /// What the packet is.
    pub fn kind(&self) -> NbnsKind {
        let h = &self.header;
        let record = self.record.map(|(section, rr)| (section, rr.rr_type));
        let qtype = self.question.map(|q| q.qtype);
        let ok = h.rcode() == 0;
        match (h.response(), h.opcode()) {
            (false, Opcode::Query) => match qtype {
                Some(TYPE_NB) => NbnsKind::NameQueryRequest,
                Some(TYPE_NBSTAT) => NbnsKind::NodeStatusRequest,
                _ => NbnsKind::Other,
            },
            (false, Opcode::Registration) if h.recursion_desired() => {
                NbnsKind::NameRegistrationRequest
            }
            (false, Opcode::Registration) => NbnsKind::NameOverwriteRequest,
            (false, Opcode::MultiHomedRegistration) => NbnsKind::MultiHomedNameRegistrationRequest,
            (false, Opcode::Release) => NbnsKind::NameReleaseRequest,
            (false, Opcode::Refresh | Opcode::RefreshAlt) => NbnsKind::NameRefreshRequest,
            (true, Opcode::Query) => match record {
                _ if !ok => NbnsKind::NegativeNameQueryResponse,
                Some((Section::Answer, TYPE_NBSTAT)) => NbnsKind::NodeStatusResponse,
                Some((Section::Answer, TYPE_NB)) => NbnsKind::PositiveNameQueryResponse,
                Some((Section::Authority, _)) => NbnsKind::RedirectNameQueryResponse,
                _ => NbnsKind::Other,
            },
            (true, Opcode::Registration | Opcode::MultiHomedRegistration) => match h.rcode() {
                0 => NbnsKind::PositiveNameRegistrationResponse,
                RCODE_CFT_ERR => NbnsKind::NameConflictDemand,
                _ => NbnsKind::NegativeNameRegistrationResponse,
            },
            (true, Opcode::Release) if ok => NbnsKind::PositiveNameReleaseResponse,
            (true, Opcode::Release) => NbnsKind::NegativeNameReleaseResponse,
            (true, Opcode::Refresh | Opcode::RefreshAlt) => NbnsKind::NameRefreshResponse,
            (true, Opcode::Wack) => NbnsKind::WaitForAcknowledgement,
            _ => NbnsKind::Other,
        }
    }

    /// A broadcast NAME REGISTRATION REQUEST (§4.2.2: RD set) or, with `overwrite`, a NAME
    /// OVERWRITE REQUEST & DEMAND (§4.2.3: RD clear; a B-node sends it once no node objected),
    /// for `name` with one NB entry (see [`NbAddress::to_bytes`]) and a TTL of `ttl` seconds.
    pub fn registration_request(
        trn_id: u16,
        name: ScopedName<'a>,
        entry: &'a [u8; NbAddress::LEN],
        ttl: u32,
        overwrite: bool,
    ) -> Self {
        let rd = if overwrite { 0 } else { field::RD };
        Self::request(trn_id, Opcode::Registration, rd, name, entry, ttl)
    }

    /// A broadcast NAME RELEASE REQUEST (§4.2.9) for `name` with its NB entry.
    pub fn release_request(
        trn_id: u16,
        name: ScopedName<'a>,
        entry: &'a [u8; NbAddress::LEN],
    ) -> Self {
        Self::request(trn_id, Opcode::Release, 0, name, entry, 0)
    }

    /// The NEGATIVE NAME REGISTRATION RESPONSE (§4.2.6, RCODE ACT_ERR) with which the owner
    /// of a unique name defends it: answers request `trn_id`, and `entry` is the owner's.
    pub fn negative_registration_response(
        trn_id: u16,
        name: ScopedName<'a>,
        entry: &'a [u8; NbAddress::LEN],
    ) -> Self {
        let opcode = u16::from(u8::from(Opcode::Registration)) << field::OPCODE_SHIFT;
        Self {
            header: NbnsHeader {
                trn_id,
                flags: field::RESPONSE
                    | opcode
                    | field::AA
                    | field::RD
                    | field::RA
                    | u16::from(RCODE_ACT_ERR),
            },
            question: None,
            record: Some((
                Section::Answer,
                ResourceRecord {
                    name: RrName::Name(name),
                    rr_type: TYPE_NB,
                    rr_class: CLASS_IN,
                    ttl: 0,
                    rdata: entry,
                },
            )),
        }
    }

    /// A broadcast request with the question `name` and its NB record (pointing to it).
    fn request(
        trn_id: u16,
        opcode: Opcode,
        rd: u16,
        name: ScopedName<'a>,
        entry: &'a [u8; NbAddress::LEN],
        ttl: u32,
    ) -> Self {
        let opcode = u16::from(u8::from(opcode)) << field::OPCODE_SHIFT;
        Self {
            header: NbnsHeader {
                trn_id,
                flags: opcode | rd | field::B,
            },
            question: Some(Question {
                name,
                qtype: TYPE_NB,
                qclass: CLASS_IN,
            }),
            record: Some((
                Section::Additional,
                ResourceRecord {
                    name: RrName::QuestionPointer,
                    rr_type: TYPE_NB,
                    rr_class: CLASS_IN,
                    ttl,
                    rdata: entry,
                },
            )),
        }
    }

    /// Bytes [`NbnsMessage::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self.question.map_or(0, |q| q.name.buffer_len() + 4)
            + self.record.map_or(0, |(_, rr)| rr.buffer_len())
    }

    /// Writes the packet to the start of `buf` (counts from its sections); returns its length.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) for a pointer RR_NAME without a
    /// question, [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge) for RDATA over 65535
    /// bytes, [`ErrorKind::BufferTooSmall`](crate::ErrorKind::BufferTooSmall).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::buffer_too_small())?;
        let put =
            |out: &mut [u8], at: usize, v: u16| out[at..at + 2].copy_from_slice(&v.to_be_bytes());
        let section = self.record.map(|(s, _)| s);
        put(out, 0, self.header.trn_id);
        put(out, 2, self.header.flags);
        put(out, 4, u16::from(self.question.is_some()));
        put(out, 6, u16::from(section == Some(Section::Answer)));
        put(out, 8, u16::from(section == Some(Section::Authority)));
        put(out, 10, u16::from(section == Some(Section::Additional)));
        let mut pos = HEADER_LEN;
        if let Some(q) = self.question {
            pos += q.name.emit(&mut out[pos..])?;
            put(out, pos, q.qtype);
            put(out, pos + 2, q.qclass);
            pos += 4;
        }
        if let Some((_, rr)) = self.record {
            match rr.name {
                RrName::Name(n) => pos += n.emit(&mut out[pos..])?,
                RrName::QuestionPointer if self.question.is_some() => {
                    out[pos..pos + 2].copy_from_slice(&QUESTION_NAME_POINTER);
                    pos += 2;
                }
                RrName::QuestionPointer => {
                    return Err(Error::invalid("RR_NAME pointer without a question"))
                }
            }
            let rdlength = u16::try_from(rr.rdata.len())
                .map_err(|_| Error::too_large("NBNS RDATA over 65535 bytes"))?;
            put(out, pos, rr.rr_type);
            put(out, pos + 2, rr.rr_class);
            out[pos + 4..pos + 8].copy_from_slice(&rr.ttl.to_be_bytes());
            put(out, pos + 8, rdlength);
            out[pos + 10..pos + 10 + rr.rdata.len()].copy_from_slice(rr.rdata);
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
    fn registration_release_and_defence_layouts() {
        let name = ScopedName::new(NetbiosName::new("HOSTB", 0).unwrap());
        let entry = NbAddress {
            group: false,
            node_type: NodeType::B,
            address: Ipv4Addr::new(10, 99, 0, 2),
        }
        .to_bytes();
        let cases = [
            (
                NbnsMessage::registration_request(7, name, &entry, 300_000, false),
                [0x29, 0x10],
                NbnsKind::NameRegistrationRequest,
            ),
            (
                NbnsMessage::registration_request(7, name, &entry, 300_000, true),
                [0x28, 0x10],
                NbnsKind::NameOverwriteRequest,
            ),
            (
                NbnsMessage::release_request(7, name, &entry),
                [0x30, 0x10],
                NbnsKind::NameReleaseRequest,
            ),
            (
                NbnsMessage::negative_registration_response(7, name, &entry),
                [0xAD, 0x86],
                NbnsKind::NegativeNameRegistrationResponse,
            ),
        ];
        for (m, flags, kind) in cases {
            let mut buf = [0u8; 128];
            let n = m.emit(&mut buf).unwrap();
            assert_eq!(&buf[2..4], &flags, "{kind:?}");
            let back = NbnsMessage::parse(&buf[..n]).unwrap();
            assert_eq!(back, m);
            assert_eq!(back.kind(), kind);
            assert_eq!(back.record_name(), Some(name));
            assert_eq!(
                back.record
                    .unwrap()
                    .1
                    .addresses()
                    .unwrap()
                    .iter()
                    .next()
                    .unwrap()
                    .address,
                Ipv4Addr::new(10, 99, 0, 2)
            );
        }
        // The request's layout: question, then the 0xC00C pointer and NB/IN/TTL/6/entry.
        let m = NbnsMessage::registration_request(7, name, &entry, 300_000, false);
        let mut buf = [0u8; 128];
        let n = m.emit(&mut buf).unwrap();
        assert_eq!(n, 12 + 34 + 4 + 2 + 10 + 6);
        assert_eq!(&buf[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&buf[50..52], &QUESTION_NAME_POINTER);
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
