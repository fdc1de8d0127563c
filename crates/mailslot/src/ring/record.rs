//! A record of the ring: a 64-byte header and the message, padded to 8 bytes.
//!
//! The header is read from shared memory that any process of the user may scribble on, so it
//! is decoded through a checked view ([`RecordView::parse`]) and its checksum (CRC-32C of the
//! header with the checksum field zeroed, then the data) is verified before anything in it is
//! believed: a record that does not verify was not written by a writer.

use crate::sys::crc32c_append;

/// Size of a record header.
pub const RECORD_HEADER: usize = 64;

/// Byte ranges of the record header.
mod field {
    use std::ops::Range;
    pub const LEN: Range<usize> = 0..4;
    pub const KIND: Range<usize> = 4..6;
    /// Bit 0: the source is the network.
    pub const FLAGS: usize = 6;
    pub const SUFFIX: usize = 7;
    pub const SEQ: Range<usize> = 8..16;
    pub const CRC: Range<usize> = 16..20;
    /// The writer's pid, or the datagram's IPv4 address.
    pub const PID_OR_IP: Range<usize> = 20..24;
    pub const UID: Range<usize> = 24..28;
    pub const PORT: Range<usize> = 28..30;
    pub const NAME: Range<usize> = 32..48;
    /// The NetBIOS name a datagram was addressed to (at most 15 bytes, NUL-padded), and its
    /// suffix.
    pub const DESTINATION: Range<usize> = 48..63;
    pub const DESTINATION_SUFFIX: usize = 63;
}

const KIND_MESSAGE: u16 = 1;
const KIND_PAD: u16 = 2;
const FLAG_NETWORK: u8 = 1;

/// Where a message came from, as stored in its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordSource {
    Local {
        pid: u32,
        uid: u32,
    },
    Network {
        ip: [u8; 4],
        port: u16,
        name: [u8; 16],
        suffix: u8,
        /// The name the datagram was addressed to (`*` for the wildcard).
        destination: [u8; 15],
        destination_suffix: u8,
    },
}

/// `bytes`, cut or NUL-padded to `N`.
pub fn padded<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = bytes.len().min(N);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

impl RecordSource {
    /// A datagram's source and destination as a record stores them: (NetBIOS name, suffix)
    /// each, the names cut or NUL-padded (16 bytes for the source, 15 for the destination).
    pub fn network(
        ip: std::net::Ipv4Addr,
        port: u16,
        source: (&str, u8),
        destination: (&str, u8),
    ) -> Self {
        RecordSource::Network {
            ip: ip.octets(),
            port,
            name: padded(source.0.as_bytes()),
            suffix: source.1,
            destination: padded(destination.0.as_bytes()),
            destination_suffix: destination.1,
        }
    }
}

/// A message record's header, decoded.
#[derive(Debug, Clone)]
pub struct RecordHeader {
    pub len: usize,
    pub seq: u64,
    pub source: RecordSource,
}

/// What a record header says it is (before its checksum is verified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A message of this many bytes.
    Message(usize),
    /// Padding to the end of the ring.
    Pad,
}

fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// Bytes a record of a `len`-byte message takes in the ring.
pub fn record_size(len: usize) -> usize {
    RECORD_HEADER + round8(len)
}

/// A copied record header, checked for shape.
#[derive(Debug, Clone, Copy)]
pub struct RecordView {
    raw: [u8; RECORD_HEADER],
    kind: Kind,
}

impl RecordView {
    /// Checks that `raw` has the shape of a record that fits in `room` bytes: a known kind, and
    /// a length whose record fits. `None` is damage.
    pub fn parse(raw: [u8; RECORD_HEADER], room: usize) -> Option<RecordView> {
        let kind = match u16::from_le_bytes([raw[field::KIND.start], raw[field::KIND.start + 1]]) {
            KIND_PAD => Kind::Pad,
            KIND_MESSAGE => {
                let len = u32::from_le_bytes(raw[field::LEN].try_into().ok()?) as usize;
                if record_size(len) > room {
                    return None;
                }
                Kind::Message(len)
            }
            _ => return None,
        };
        Some(RecordView { raw, kind })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn stored_crc(&self) -> u32 {
        u32::from_le_bytes(self.raw[field::CRC].try_into().unwrap_or_default())
    }

    /// The checksum of the header alone, to be continued over the data (see [`seal`]).
    pub fn checksum_seed(&self) -> u32 {
        header_crc(&self.raw)
    }

    /// Whether `crc`, the seed continued over the data, is the record's checksum.
    pub fn checksum_matches(&self, crc: u32) -> bool {
        crc == self.stored_crc()
    }

    /// Whether the checksum matches the header and `data` (fed in pieces by `feed`).
    pub fn verify(&self, feed: impl FnOnce(&mut dyn FnMut(&[u8]))) -> bool {
        let mut crc = header_crc(&self.raw);
        feed(&mut |piece| crc = crc32c_append(crc, piece));
        crc == self.stored_crc()
    }

    /// The decoded header of a message record.
    pub fn header(&self) -> RecordHeader {
        let raw = &self.raw;
        let u32_at =
            |r: std::ops::Range<usize>| u32::from_le_bytes(raw[r].try_into().unwrap_or_default());
        let source = if raw[field::FLAGS] & FLAG_NETWORK != 0 {
            RecordSource::Network {
                ip: padded(&raw[field::PID_OR_IP]),
                port: u16::from_le_bytes([raw[field::PORT.start], raw[field::PORT.start + 1]]),
                name: padded(&raw[field::NAME]),
                suffix: raw[field::SUFFIX],
                destination: padded(&raw[field::DESTINATION]),
                destination_suffix: raw[field::DESTINATION_SUFFIX],
            }
        } else {
            RecordSource::Local {
                pid: u32_at(field::PID_OR_IP),
                uid: u32_at(field::UID),
            }
        };
        RecordHeader {
            len: match self.kind {
                Kind::Message(len) => len,
                Kind::Pad => 0,
            },
            seq: u64::from_le_bytes(raw[field::SEQ].try_into().unwrap_or_default()),
            source,
        }
    }
}

/// CRC-32C of a header with its checksum field taken as zero (one pass over a copy: the
/// checksum library is slowest on short pieces).
fn header_crc(raw: &[u8; RECORD_HEADER]) -> u32 {
    let mut zeroed = *raw;
    zeroed[field::CRC].fill(0);
    crc32c_append(0, &zeroed)
}

/// The header of a message record, checksum included.
#[cfg(test)]
pub fn encode_message(data: &[u8], seq: u64, source: &RecordSource) -> [u8; RECORD_HEADER] {
    let mut raw = message_header(data.len(), seq, source);
    let crc = crc32c_append(checksum_seed(&raw), data);
    seal(&mut raw, crc);
    raw
}

/// The header of a message record of `len` bytes, checksum not set yet: the writer continues
/// [`checksum_seed`] over the data as it copies it, then [`seal`]s the header.
pub fn message_header(len: usize, seq: u64, source: &RecordSource) -> [u8; RECORD_HEADER] {
    let mut raw = [0u8; RECORD_HEADER];
    raw[field::LEN].copy_from_slice(&(len as u32).to_le_bytes());
    raw[field::KIND].copy_from_slice(&KIND_MESSAGE.to_le_bytes());
    raw[field::SEQ].copy_from_slice(&seq.to_le_bytes());
    match source {
        RecordSource::Local { pid, uid } => {
            raw[field::PID_OR_IP].copy_from_slice(&pid.to_le_bytes());
            raw[field::UID].copy_from_slice(&uid.to_le_bytes());
        }
        RecordSource::Network {
            ip,
            port,
            name,
            suffix,
            destination,
            destination_suffix,
        } => {
            raw[field::FLAGS] = FLAG_NETWORK;
            raw[field::SUFFIX] = *suffix;
            raw[field::PID_OR_IP].copy_from_slice(ip);
            raw[field::PORT].copy_from_slice(&port.to_le_bytes());
            raw[field::NAME].copy_from_slice(name);
            raw[field::DESTINATION].copy_from_slice(destination);
            raw[field::DESTINATION_SUFFIX] = *destination_suffix;
        }
    }
    raw
}

/// The checksum of a header alone (its checksum field taken as zero).
pub fn checksum_seed(raw: &[u8; RECORD_HEADER]) -> u32 {
    header_crc(raw)
}

/// Sets the header's checksum: its seed continued over the data.
pub fn seal(raw: &mut [u8; RECORD_HEADER], crc: u32) {
    raw[field::CRC].copy_from_slice(&crc.to_le_bytes());
}

/// The header of a pad record (skip to the end of the ring), checksum included.
pub fn encode_pad() -> [u8; RECORD_HEADER] {
    let mut raw = [0u8; RECORD_HEADER];
    raw[field::KIND].copy_from_slice(&KIND_PAD.to_le_bytes());
    let crc = header_crc(&raw);
    raw[field::CRC].copy_from_slice(&crc.to_le_bytes());
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flipped_bit_is_caught() {
        let source = RecordSource::network(
            "10.0.0.7".parse().unwrap(),
            138,
            ("HOST", 0x20),
            ("FIFTEEN-CHARS-X", 0x03),
        );
        let data = b"hello, mailslot";
        let raw = encode_message(data, 42, &source);
        let view = RecordView::parse(raw, 4096).unwrap();
        assert_eq!(view.kind(), Kind::Message(data.len()));
        assert!(view.verify(|feed| feed(data)));
        let header = view.header();
        assert_eq!((header.len, header.seq, header.source), (15, 42, source));
        for bit in 0..RECORD_HEADER * 8 {
            let mut bad = raw;
            bad[bit / 8] ^= 1 << (bit % 8);
            if let Some(view) = RecordView::parse(bad, 4096) {
                assert!(!view.verify(|feed| feed(data)), "bit {bit} went unnoticed");
            }
        }
        let mut bad_data = *data;
        bad_data[3] ^= 0x10;
        assert!(!view.verify(|feed| feed(&bad_data)));
    }

    #[test]
    fn shapes_that_cannot_be_records_are_refused() {
        let raw = encode_message(&[0; 100], 1, &RecordSource::Local { pid: 1, uid: 2 });
        assert!(RecordView::parse(raw, record_size(100)).is_some());
        assert!(RecordView::parse(raw, record_size(100) - 8).is_none());
        assert!(RecordView::parse([0xff; RECORD_HEADER], usize::MAX).is_none());
        let pad = RecordView::parse(encode_pad(), RECORD_HEADER).unwrap();
        assert_eq!(pad.kind(), Kind::Pad);
        assert!(pad.verify(|_| {}));
    }
}
