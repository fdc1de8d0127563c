//! NetBIOS datagram service packets (RFC 1002 §4.4): header, names and user data.

use core::fmt;
use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::name::ScopedName;

/// Byte ranges of the header fields (big-endian).
mod field {
    use core::ops::Range;
    pub const MSG_TYPE: usize = 0;
    pub const FLAGS: usize = 1;
    pub const DGM_ID: Range<usize> = 2..4;
    pub const SOURCE_IP: Range<usize> = 4..8;
    pub const SOURCE_PORT: Range<usize> = 8..10;
    pub const DGM_LENGTH: Range<usize> = 10..12;
    pub const PACKET_OFFSET: Range<usize> = 12..14;
    pub const ERROR_CODE: usize = 10;
}

/// Length of the prefix common to every datagram-service packet.
pub const PREFIX_LEN: usize = 10;
/// Length of the fixed header of a 0x10-0x12 datagram (DGM_LENGTH counts what follows it).
pub const HEADER_LEN: usize = 14;
/// Length of a DATAGRAM ERROR packet.
pub const ERROR_PACKET_LEN: usize = 11;
/// The NetBIOS datagram service's UDP port.
pub const DATAGRAM_PORT: u16 = 138;

/// ERROR_CODE 0x82: DESTINATION NAME NOT PRESENT.
pub const ERROR_DESTINATION_NAME_NOT_PRESENT: u8 = 0x82;
/// ERROR_CODE 0x83: INVALID SOURCE NAME FORMAT.
pub const ERROR_INVALID_SOURCE_NAME_FORMAT: u8 = 0x83;
/// ERROR_CODE 0x84: INVALID DESTINATION NAME FORMAT.
pub const ERROR_INVALID_DESTINATION_NAME_FORMAT: u8 = 0x84;

/// MSG_TYPE of a datagram-service packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 0x10 DIRECT_UNIQUE DATAGRAM: to one unique name.
    DirectUnique,
    /// 0x11 DIRECT_GROUP DATAGRAM: to a group name (subnet broadcast).
    DirectGroup,
    /// 0x12 BROADCAST DATAGRAM.
    Broadcast,
    /// 0x13 DATAGRAM ERROR.
    Error,
    /// 0x14 DATAGRAM QUERY REQUEST.
    QueryRequest,
    /// 0x15 DATAGRAM POSITIVE QUERY RESPONSE.
    PositiveQueryResponse,
    /// 0x16 DATAGRAM NEGATIVE QUERY RESPONSE.
    NegativeQueryResponse,
    /// Any other value, kept so it round-trips.
    Unknown(u8),
}

impl MessageType {
    /// `true` for 0x10, 0x11, 0x12: the types that carry names and user data.
    pub const fn carries_data(self) -> bool {
        matches!(
            self,
            Self::DirectUnique | Self::DirectGroup | Self::Broadcast
        )
    }

    /// `true` for 0x14, 0x15, 0x16.
    pub const fn is_query(self) -> bool {
        matches!(
            self,
            Self::QueryRequest | Self::PositiveQueryResponse | Self::NegativeQueryResponse
        )
    }
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            0x10 => Self::DirectUnique,
            0x11 => Self::DirectGroup,
            0x12 => Self::Broadcast,
            0x13 => Self::Error,
            0x14 => Self::QueryRequest,
            0x15 => Self::PositiveQueryResponse,
            0x16 => Self::NegativeQueryResponse,
            other => Self::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        match t {
            MessageType::DirectUnique => 0x10,
            MessageType::DirectGroup => 0x11,
            MessageType::Broadcast => 0x12,
            MessageType::Error => 0x13,
            MessageType::QueryRequest => 0x14,
            MessageType::PositiveQueryResponse => 0x15,
            MessageType::NegativeQueryResponse => 0x16,
            MessageType::Unknown(v) => v,
        }
    }
}

/// Source end-node type (SNT bits of FLAGS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeType {
    /// 0x00: B node (broadcast; a Linux host without WINS).
    B,
    /// 0x04: P node.
    P,
    /// 0x08: M node (what Samba nmbd sends).
    M,
    /// 0x0C: NBDD in the RFC, H node for Microsoft.
    H,
}

/// The FLAGS byte: M (0x01), F (0x02), SNT (0x0C); reserved bits kept as received.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flags(pub u8);

impl Flags {
    /// M: more fragments follow.
    pub const MORE: u8 = 0x01;
    /// F: first fragment.
    pub const FIRST: u8 = 0x02;
    /// An unfragmented datagram (F=1, M=0) from a node of type `node`.
    pub const fn unfragmented(node: NodeType) -> Self {
        let snt = match node {
            NodeType::B => 0x00,
            NodeType::P => 0x04,
            NodeType::M => 0x08,
            NodeType::H => 0x0C,
        };
        Self(Self::FIRST | snt)
    }
    /// M bit.
    pub const fn more(self) -> bool {
        self.0 & Self::MORE != 0
    }
    /// F bit.
    pub const fn first(self) -> bool {
        self.0 & Self::FIRST != 0
    }
    /// SNT bits.
    pub const fn node_type(self) -> NodeType {
        match self.0 & 0x0C {
            0x00 => NodeType::B,
            0x04 => NodeType::P,
            0x08 => NodeType::M,
            _ => NodeType::H,
        }
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Flags({:#04x}: F={} M={} {:?})",
            self.0,
            self.first(),
            self.more(),
            self.node_type()
        )
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// A zero-copy view of a datagram-service packet.
///
/// After [`Datagram::new_checked`] succeeds, every accessor is in bounds and none panics.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    /// Wraps `buffer` without checks; accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`Datagram::check_len`].
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`](crate::ErrorKind::Truncated) when shorter than the fixed part
    /// of its MSG_TYPE.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let d = Self::new_unchecked(buffer);
        d.check_len()?;
        Ok(d)
    }

    /// Checks the length of the fixed part for this MSG_TYPE (10, 11 or 14 bytes).
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`](crate::ErrorKind::Truncated).
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.is_empty() {
            return Err(Error::truncated("MSG_TYPE (empty datagram)"));
        }
        if b.len() < PREFIX_LEN {
            return Err(Error::truncated("the datagram header"));
        }
        let mt = MessageType::from(b[field::MSG_TYPE]);
        if mt.carries_data() && b.len() < HEADER_LEN {
            return Err(Error::truncated("DGM_LENGTH/PACKET_OFFSET"));
        }
        if mt == MessageType::Error && b.len() < ERROR_PACKET_LEN {
            return Err(Error::truncated("ERROR_CODE"));
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// MSG_TYPE.
    pub fn msg_type(&self) -> MessageType {
        self.buffer.as_ref()[field::MSG_TYPE].into()
    }
    /// FLAGS.
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }
    /// DGM_ID.
    pub fn dgm_id(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::DGM_ID])
    }
    /// SOURCE_IP.
    pub fn source_ip(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SOURCE_IP];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    /// SOURCE_PORT.
    pub fn source_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SOURCE_PORT])
    }
    /// DGM_LENGTH as received (0x10-0x12 only). Receivers ignore it, as Samba and Wireshark do:
    /// some senders get it wrong.
    pub fn dgm_length(&self) -> Option<u16> {
        self.msg_type()
            .carries_data()
            .then(|| be16(&self.buffer.as_ref()[field::DGM_LENGTH]))
    }
    /// `true` when DGM_LENGTH equals the bytes after the 14-byte header (0x10-0x12 only; other
    /// types give `true`). Impacket-built datagrams fail this; treat it as a soft warning.
    pub fn dgm_length_matches(&self) -> bool {
        match self.dgm_length() {
            Some(l) => usize::from(l) == self.buffer.as_ref().len() - HEADER_LEN,
            None => true,
        }
    }
    /// PACKET_OFFSET (0x10-0x12 only).
    pub fn packet_offset(&self) -> Option<u16> {
        self.msg_type()
            .carries_data()
            .then(|| be16(&self.buffer.as_ref()[field::PACKET_OFFSET]))
    }
    /// ERROR_CODE (0x13 only).
    pub fn error_code(&self) -> Option<u8> {
        (self.msg_type() == MessageType::Error).then(|| self.buffer.as_ref()[field::ERROR_CODE])
    }
    /// M set or PACKET_OFFSET != 0 (0x10-0x12 only).
    pub fn is_fragment(&self) -> bool {
        self.flags().more() || self.packet_offset().is_some_and(|o| o != 0)
    }
    /// Bytes after the fixed part (names and user data for 0x10-0x12, the name for queries).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let start = if self.msg_type().carries_data() {
            HEADER_LEN
        } else if self.msg_type() == MessageType::Error {
            ERROR_PACKET_LEN
        } else {
            PREFIX_LEN
        };
        &b[start.min(b.len())..]
    }
}

/// The body of a datagram-service packet, by MSG_TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatagramBody<'a> {
    /// 0x10, 0x11, 0x12: a (fragment of a) datagram.
    Data {
        /// PACKET_OFFSET: offset of this fragment's USER_DATA (0 when unfragmented).
        packet_offset: u16,
        /// SOURCE_NAME.
        source_name: ScopedName<'a>,
        /// DESTINATION_NAME.
        destination_name: ScopedName<'a>,
        /// USER_DATA: for mailslots, the SMB_COM_TRANSACTION (see [`crate::MailslotWrite`]).
        user_data: &'a [u8],
    },
    /// 0x13 DATAGRAM ERROR.
    Error {
        /// ERROR_CODE (0x82, 0x83, 0x84).
        error_code: u8,
    },
    /// 0x14, 0x15, 0x16 query packets.
    Query {
        /// DESTINATION_NAME.
        destination_name: ScopedName<'a>,
    },
}

/// A parsed datagram-service packet. DGM_LENGTH is not part of it: [`DatagramRepr::emit`]
/// computes it (bytes after the 14-byte header) and [`Datagram::dgm_length`] shows what was
/// received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatagramRepr<'a> {
    /// MSG_TYPE.
    pub msg_type: MessageType,
    /// FLAGS.
    pub flags: Flags,
    /// DGM_ID.
    pub dgm_id: u16,
    /// SOURCE_IP (informational; spoofable).
    pub source_ip: Ipv4Addr,
    /// SOURCE_PORT.
    pub source_port: u16,
    /// The type-specific part.
    pub body: DatagramBody<'a>,
}

impl<'a> DatagramRepr<'a> {
    /// Parses a checked view. Fragments parse (see [`DatagramRepr::is_fragment`]).
    ///
    /// # Errors
    /// Truncated or malformed names; [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)
    /// for an unknown MSG_TYPE.
    pub fn parse(packet: &Datagram<&'a [u8]>) -> Result<Self> {
        packet.check_len()?;
        let buf: &'a [u8] = packet.buffer;
        let msg_type = packet.msg_type();
        let body = match msg_type {
            t if t.carries_data() => {
                let rest = &buf[HEADER_LEN..];
                let (source_name, n1) = ScopedName::parse(rest, "SOURCE_NAME")?;
                let rest = &rest[n1..];
                let (destination_name, n2) = ScopedName::parse(rest, "DESTINATION_NAME")?;
                DatagramBody::Data {
                    packet_offset: be16(&buf[field::PACKET_OFFSET]),
                    source_name,
                    destination_name,
                    user_data: &rest[n2..],
                }
            }
            MessageType::Error => DatagramBody::Error {
                error_code: buf[field::ERROR_CODE],
            },
            t if t.is_query() => {
                let (destination_name, _) =
                    ScopedName::parse(&buf[PREFIX_LEN..], "DESTINATION_NAME")?;
                DatagramBody::Query { destination_name }
            }
            _ => return Err(Error::unsupported("unknown MSG_TYPE")),
        };
        Ok(Self {
            msg_type,
            flags: packet.flags(),
            dgm_id: packet.dgm_id(),
            source_ip: packet.source_ip(),
            source_port: packet.source_port(),
            body,
        })
    }

    /// Parses raw bytes (shorthand for `parse(&Datagram::new_checked(buf)?)`).
    ///
    /// # Errors
    /// As [`DatagramRepr::parse`].
    pub fn parse_bytes(buf: &'a [u8]) -> Result<Self> {
        Self::parse(&Datagram::new_checked(buf)?)
    }

    /// M set or PACKET_OFFSET != 0.
    pub fn is_fragment(&self) -> bool {
        self.flags.more()
            || matches!(self.body, DatagramBody::Data { packet_offset, .. } if packet_offset != 0)
    }

    /// USER_DATA for 0x10-0x12.
    pub fn user_data(&self) -> Option<&'a [u8]> {
        match self.body {
            DatagramBody::Data { user_data, .. } => Some(user_data),
            _ => None,
        }
    }

    /// Bytes [`DatagramRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self.body {
            DatagramBody::Data {
                source_name,
                destination_name,
                user_data,
                ..
            } => {
                HEADER_LEN
                    + source_name.buffer_len()
                    + destination_name.buffer_len()
                    + user_data.len()
            }
            DatagramBody::Error { .. } => ERROR_PACKET_LEN,
            DatagramBody::Query { destination_name } => PREFIX_LEN + destination_name.buffer_len(),
        }
    }

    /// Writes the packet to the start of `buf`; returns its length. DGM_LENGTH is computed.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) if MSG_TYPE does not match the body,
    /// [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge) if DGM_LENGTH would exceed 65535,
    /// [`ErrorKind::BufferTooSmall`](crate::ErrorKind::BufferTooSmall).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let ok = match self.body {
            DatagramBody::Data { .. } => self.msg_type.carries_data(),
            DatagramBody::Error { .. } => self.msg_type == MessageType::Error,
            DatagramBody::Query { .. } => self.msg_type.is_query(),
        };
        if !ok {
            return Err(Error::invalid("MSG_TYPE does not match the datagram body"));
        }
        let out = buf.get_mut(..len).ok_or(Error::buffer_too_small())?;
        self.emit_prefix(out);
        match self.body {
            DatagramBody::Data {
                packet_offset,
                source_name,
                destination_name,
                user_data,
            } => {
                let dgm_length = u16::try_from(len - HEADER_LEN)
                    .map_err(|_| Error::too_large("DGM_LENGTH over 65535"))?;
                out[field::DGM_LENGTH].copy_from_slice(&dgm_length.to_be_bytes());
                out[field::PACKET_OFFSET].copy_from_slice(&packet_offset.to_be_bytes());
                let mut pos = HEADER_LEN;
                pos += source_name.emit(&mut out[pos..])?;
                pos += destination_name.emit(&mut out[pos..])?;
                out[pos..].copy_from_slice(user_data);
            }
            DatagramBody::Error { error_code } => out[field::ERROR_CODE] = error_code,
            DatagramBody::Query { destination_name } => {
                destination_name.emit(&mut out[PREFIX_LEN..])?;
            }
        }
        Ok(len)
    }

    /// Writes the 10-byte common prefix; `out` is at least 10 bytes.
    pub(crate) fn emit_prefix(&self, out: &mut [u8]) {
        emit_prefix(
            out,
            self.msg_type,
            self.flags,
            self.dgm_id,
            self.source_ip,
            self.source_port,
        );
    }
}

pub(crate) fn emit_prefix(
    out: &mut [u8],
    msg_type: MessageType,
    flags: Flags,
    dgm_id: u16,
    source_ip: Ipv4Addr,
    source_port: u16,
) {
    out[field::MSG_TYPE] = msg_type.into();
    out[field::FLAGS] = flags.0;
    out[field::DGM_ID].copy_from_slice(&dgm_id.to_be_bytes());
    out[field::SOURCE_IP].copy_from_slice(&source_ip.octets());
    out[field::SOURCE_PORT].copy_from_slice(&source_port.to_be_bytes());
}

pub(crate) fn emit_data_fields(out: &mut [u8], dgm_length: u16, packet_offset: u16) {
    out[field::DGM_LENGTH].copy_from_slice(&dgm_length.to_be_bytes());
    out[field::PACKET_OFFSET].copy_from_slice(&packet_offset.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::NetbiosName;

    #[test]
    fn message_types_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(MessageType::from(v)), v);
        }
    }

    #[test]
    fn error_and_query_packets() {
        let err = [0x13, 0x02, 0x00, 0x01, 10, 0, 0, 1, 0, 138, 0x82];
        let repr = DatagramRepr::parse_bytes(&err).unwrap();
        assert_eq!(repr.body, DatagramBody::Error { error_code: 0x82 });
        let mut out = [0u8; 11];
        assert_eq!(repr.emit(&mut out).unwrap(), 11);
        assert_eq!(out, err);
        assert!(DatagramRepr::parse_bytes(&err[..10]).is_err());

        let q = DatagramRepr {
            msg_type: MessageType::QueryRequest,
            flags: Flags::unfragmented(NodeType::B),
            dgm_id: 7,
            source_ip: Ipv4Addr::new(10, 0, 0, 1),
            source_port: 138,
            body: DatagramBody::Query {
                destination_name: ScopedName::new(NetbiosName::new("WG", 0x1d).unwrap()),
            },
        };
        let mut out = [0u8; 44];
        assert_eq!(q.emit(&mut out).unwrap(), 44);
        assert_eq!(DatagramRepr::parse_bytes(&out).unwrap(), q);
    }

    #[test]
    fn fragments_parse_and_are_marked() {
        let mut d = DatagramRepr {
            msg_type: MessageType::DirectGroup,
            flags: Flags(Flags::FIRST | Flags::MORE),
            dgm_id: 1,
            source_ip: Ipv4Addr::LOCALHOST,
            source_port: 138,
            body: DatagramBody::Data {
                packet_offset: 0,
                source_name: ScopedName::new(NetbiosName::new("A", 0).unwrap()),
                destination_name: ScopedName::new(NetbiosName::new("B", 0).unwrap()),
                user_data: b"xyz",
            },
        };
        let mut buf = [0u8; 100];
        let n = d.emit(&mut buf).unwrap();
        let p = DatagramRepr::parse_bytes(&buf[..n]).unwrap();
        assert!(p.is_fragment());
        assert_eq!(p, d);
        d.flags = Flags(0);
        if let DatagramBody::Data { packet_offset, .. } = &mut d.body {
            *packet_offset = 100;
        }
        let n = d.emit(&mut buf).unwrap();
        let view = Datagram::new_checked(&buf[..n]).unwrap();
        assert!(view.is_fragment());
        assert!(view.dgm_length_matches());
        assert!(DatagramRepr::parse_bytes(&buf[..n]).unwrap().is_fragment());
    }
}
