//! The [MS-MAIL] mailslot write: an SMB1 `SMB_COM_TRANSACTION` request carried as the USER_DATA
//! of a NetBIOS datagram, its size rules, and [`MailslotDatagram`],
//! the whole datagram in one value.

use std::net::Ipv4Addr;

use crate::datagram::{
    emit_data_fields, emit_prefix, DatagramBody, DatagramRepr, Flags, MessageType, NodeType,
    DATAGRAM_PORT, HEADER_LEN,
};
use crate::error::{Error, ErrorKind, Result};
use crate::name::{NetbiosName, ScopedName};

/// Byte ranges of the SMB header and transaction fields, from the `0xFF` of `\xFFSMB`
/// (little-endian).
mod field {
    use core::ops::Range;
    pub const PROTOCOL: Range<usize> = 0..4;
    pub const COMMAND: usize = 4;
    pub const FLAGS: usize = 9;
    pub const FLAGS2: Range<usize> = 10..12;
    pub const PID_LOW: Range<usize> = 26..28;
    pub const WORD_COUNT: usize = 32;
    pub const TOTAL_PARAMETER_COUNT: Range<usize> = 33..35;
    pub const TOTAL_DATA_COUNT: Range<usize> = 35..37;
    pub const MAX_PARAMETER_COUNT: Range<usize> = 37..39;
    pub const MAX_DATA_COUNT: Range<usize> = 39..41;
    pub const TRANS_FLAGS: Range<usize> = 43..45;
    pub const TIMEOUT: Range<usize> = 45..49;
    pub const PARAMETER_COUNT: Range<usize> = 51..53;
    pub const PARAMETER_OFFSET: Range<usize> = 53..55;
    pub const DATA_COUNT: Range<usize> = 55..57;
    pub const DATA_OFFSET: Range<usize> = 57..59;
    pub const SETUP_COUNT: usize = 59;
    pub const OPCODE: Range<usize> = 61..63;
    pub const PRIORITY: Range<usize> = 63..65;
    pub const CLASS: Range<usize> = 65..67;
    pub const BYTE_COUNT: Range<usize> = 67..69;
    pub const NAME: usize = 69;
}

/// `\xFFSMB`.
pub const SMB_MAGIC: [u8; 4] = *b"\xFFSMB";
/// SMB_COM_TRANSACTION.
pub const SMB_COM_TRANSACTION: u8 = 0x25;
/// Bytes before the transaction name: header 32 + WordCount 1 + 17 words + ByteCount 2.
pub const TRANS_FIXED_LEN: usize = 69;
/// Smallest legal DataOffset: 69 + len(`\MAILSLOT\x`) + NUL.
pub const MIN_DATA_OFFSET: usize = 81;
/// MailSlotOpcode of a write, the only [MS-MAIL] message.
pub const MAILSLOT_WRITE_OPCODE: u16 = 1;
/// Class 1: "reliable" (never broadcast).
pub const CLASS_RELIABLE: u16 = 1;
/// Class 2: "unreliable and broadcast", what every implementation sends over UDP.
pub const CLASS_UNRELIABLE: u16 = 2;
/// Required prefix of a transaction name (compared case-insensitively).
pub const MAILSLOT_PREFIX: &str = "\\MAILSLOT\\";

/// Windows' cap on the SMB part of a mailslot write ([MS-MAIL] note 2).
pub const WINDOWS_MAX_SMB_LEN: usize = 512;
/// Samba nmbd reads at most this many bytes of UDP payload.
pub const SAMBA_MAX_UDP_PAYLOAD: usize = 576;
/// Longest message Windows sends to a group or `*` target (CreateMailslot docs).
pub const GROUP_MAX_DATA_LEN: usize = 424;

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

/// How the SMB header and transaction words are filled in on emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SmbStyle {
    /// [MS-MAIL] §4 Windows client: Flags 0x18, Flags2 0x0004, PIDLow 0xFEFF,
    /// MaxParameterCount 2, trans Flags NO_RESPONSE, ParameterOffset = DataOffset, data
    /// padded with zeros to a 4-byte boundary. Default priority 0.
    #[default]
    Windows,
    /// Samba nmbd: every header field zero, ParameterOffset 0, no padding
    /// (DataOffset = 70 + strlen(name)). Default priority 1.
    Samba,
}

impl SmbStyle {
    /// The priority senders of this style use.
    pub const fn default_priority(self) -> u16 {
        match self {
            Self::Windows => 0,
            Self::Samba => 1,
        }
    }
}

/// DataOffset for a transaction name of `mailslot_len` bytes (NUL not included).
pub const fn data_offset(mailslot_len: usize, style: SmbStyle) -> usize {
    let unpadded = TRANS_FIXED_LEN + mailslot_len + 1;
    match style {
        SmbStyle::Windows => (unpadded + 3) & !3,
        SmbStyle::Samba => unpadded,
    }
}

/// Windows' maximum message size for `mailslot` (full name, `\MAILSLOT\...`): 512 − DataOffset
/// with padding, i.e. 432 − roundup4(len after `\MAILSLOT\`): 424 for 5-8 characters.
pub fn windows_max_data_len(mailslot: &str) -> usize {
    WINDOWS_MAX_SMB_LEN.saturating_sub(data_offset(mailslot.len(), SmbStyle::Windows))
}

/// The largest message Samba can receive: UDP payload ≤ 576, so 576 − 14 − names − DataOffset
/// (`names_len` = 68 for two unscoped names): 410 for `\MAILSLOT\TEST` in Windows style.
pub fn samba_safe_max_data_len(mailslot: &str, style: SmbStyle, names_len: usize) -> usize {
    SAMBA_MAX_UDP_PAYLOAD
        .saturating_sub(HEADER_LEN + names_len + data_offset(mailslot.len(), style))
        .min(WINDOWS_MAX_SMB_LEN.saturating_sub(data_offset(mailslot.len(), style)))
}

/// `true` for 425 and 426 bytes, sizes that never work between computers (class 2 covers
/// < 425, the old class 1 path > 426).
pub const fn is_size_hole(len: usize) -> bool {
    len == 425 || len == 426
}

/// Which receivers a sender must satisfy; see [`MailslotDatagram::check_size`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SizeLimit {
    /// Samba-safe (the default): UDP payload ≤ 576 and every Windows rule.
    #[default]
    SambaSafe,
    /// Windows rules: SMB part ≤ 512, ≤ 424 bytes to a group or `*`, never 425/426.
    Windows,
    /// Only the field widths of the protocol (65535); for tests and tools.
    Protocol,
}

/// Checks a transaction name: `\MAILSLOT\` prefix (any case), a non-empty remainder, printable
/// ASCII only.
fn check_mailslot_name(name: &[u8]) -> Result<&str> {
    let prefix = MAILSLOT_PREFIX.as_bytes();
    if name.len() <= prefix.len() || !name[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return Err(Error::malformed(
            "transaction name does not start with \\MAILSLOT\\",
        ));
    }
    if !name.iter().all(|&b| (0x20..0x7F).contains(&b)) {
        return Err(Error::malformed("transaction name is not printable ASCII"));
    }
    core::str::from_utf8(name).map_err(|_| Error::malformed("transaction name is not ASCII"))
}

/// A zero-copy view of an SMB_COM_TRANSACTION request.
///
/// [`SmbTransaction::new_checked`] guarantees the 69 fixed bytes, so every accessor below is in
/// bounds. Offsets and counts are raw: [`MailslotWrite::parse`] validates them.
#[derive(Debug, Clone, Copy)]
pub struct SmbTransaction<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SmbTransaction<T> {
    /// Wraps `buffer` without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Checks length ≥ 69, `\xFFSMB`, command 0x25, WordCount 17 and SetupCount 3.
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`](crate::ErrorKind::Truncated),
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) (not a mailslot transaction).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < TRANS_FIXED_LEN {
            return Err(Error::truncated("SMB_COM_TRANSACTION (69 fixed bytes)"));
        }
        if b[field::PROTOCOL] != SMB_MAGIC {
            return Err(Error::unsupported("user data is not an SMB (no \\xFFSMB)"));
        }
        if b[field::COMMAND] != SMB_COM_TRANSACTION {
            return Err(Error::unsupported("SMB command is not SMB_COM_TRANSACTION"));
        }
        if b[field::WORD_COUNT] != 17 {
            return Err(Error::malformed("SMB WordCount is not 17"));
        }
        if b[field::SETUP_COUNT] != 3 {
            return Err(Error::malformed("SMB SetupCount is not 3"));
        }
        Ok(Self { buffer })
    }

    fn w(&self, r: core::ops::Range<usize>) -> u16 {
        le16(&self.buffer.as_ref()[r])
    }

    /// SMB header Flags.
    pub fn smb_flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }
    /// SMB header Flags2.
    pub fn smb_flags2(&self) -> u16 {
        self.w(field::FLAGS2)
    }
    /// PIDLow.
    pub fn pid_low(&self) -> u16 {
        self.w(field::PID_LOW)
    }
    /// TotalParameterCount.
    pub fn total_parameter_count(&self) -> u16 {
        self.w(field::TOTAL_PARAMETER_COUNT)
    }
    /// TotalDataCount (should equal DataCount).
    pub fn total_data_count(&self) -> u16 {
        self.w(field::TOTAL_DATA_COUNT)
    }
    /// MaxParameterCount.
    pub fn max_parameter_count(&self) -> u16 {
        self.w(field::MAX_PARAMETER_COUNT)
    }
    /// MaxDataCount.
    pub fn max_data_count(&self) -> u16 {
        self.w(field::MAX_DATA_COUNT)
    }
    /// Transaction Flags (0x0001 DISCONNECT_TID, 0x0002 NO_RESPONSE).
    pub fn trans_flags(&self) -> u16 {
        self.w(field::TRANS_FLAGS)
    }
    /// Timeout in ms.
    pub fn timeout(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::TIMEOUT];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    /// ParameterCount.
    pub fn parameter_count(&self) -> u16 {
        self.w(field::PARAMETER_COUNT)
    }
    /// ParameterOffset.
    pub fn parameter_offset(&self) -> u16 {
        self.w(field::PARAMETER_OFFSET)
    }
    /// DataCount: length of the message.
    pub fn data_count(&self) -> u16 {
        self.w(field::DATA_COUNT)
    }
    /// DataOffset: offset of the message from the first byte of the SMB.
    pub fn data_offset(&self) -> u16 {
        self.w(field::DATA_OFFSET)
    }
    /// Setup\[0\] MailSlotOpcode (1 = write).
    pub fn opcode(&self) -> u16 {
        self.w(field::OPCODE)
    }
    /// Setup\[1\] Priority (0..9, advisory).
    pub fn priority(&self) -> u16 {
        self.w(field::PRIORITY)
    }
    /// Setup\[2\] Class (1 reliable, 2 unreliable/broadcast).
    pub fn class(&self) -> u16 {
        self.w(field::CLASS)
    }
    /// ByteCount.
    pub fn byte_count(&self) -> u16 {
        self.w(field::BYTE_COUNT)
    }
}

/// A validated mailslot write ([MS-MAIL] §2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MailslotWrite<'a> {
    /// The transaction name, e.g. `\MAILSLOT\BROWSE` (printable ASCII, without NUL).
    pub mailslot: &'a str,
    /// The message (Databytes: DataCount bytes at DataOffset).
    pub data: &'a [u8],
    /// Setup\[1\] Priority.
    pub priority: u16,
    /// Setup\[2\] Class.
    pub class: u16,
    /// Header style: on emit, how to fill the header; on parse, [`SmbStyle::Windows`] when
    /// Flags2 is 0x0004 and PIDLow 0xFEFF, else [`SmbStyle::Samba`].
    pub style: SmbStyle,
}

impl<'a> MailslotWrite<'a> {
    /// A class-2 write of `data` to `mailslot` with the style's default priority.
    pub const fn new(mailslot: &'a str, data: &'a [u8], style: SmbStyle) -> Self {
        Self {
            mailslot,
            data,
            priority: style.default_priority(),
            class: CLASS_UNRELIABLE,
            style,
        }
    }

    /// Parses and validates USER_DATA: fixed fields, opcode 1,
    /// `81 <= DataOffset <= len`, `DataOffset + DataCount <= len` (checked), the name's NUL
    /// searched only in `[69, DataOffset)`, the `\MAILSLOT\` prefix. Only DataOffset and
    /// DataCount locate the message (any padding, of any value, is skipped). Bytes after the
    /// message are ignored. A zero DataCount is accepted: zero-length messages are real
    /// messages.
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`], [`ErrorKind::Malformed`], [`ErrorKind::Unsupported`].
    pub fn parse(user_data: &'a [u8]) -> Result<Self> {
        let smb = SmbTransaction::new_checked(user_data)?;
        if smb.opcode() != MAILSLOT_WRITE_OPCODE {
            return Err(Error::unsupported("MailSlotOpcode is not 1 (write)"));
        }
        let len = user_data.len();
        let data_offset = usize::from(smb.data_offset());
        let data_count = usize::from(smb.data_count());
        if data_offset < MIN_DATA_OFFSET {
            return Err(Error::malformed(
                "DataOffset before the end of the shortest name",
            ));
        }
        if data_offset > len {
            return Err(Error::malformed("DataOffset beyond the datagram"));
        }
        let data_end = data_offset
            .checked_add(data_count)
            .filter(|&end| end <= len)
            .ok_or(Error::malformed("DataOffset+DataCount beyond the datagram"))?;
        let name_area = &user_data[field::NAME..data_offset];
        let nul = name_area
            .iter()
            .position(|&b| b == 0)
            .ok_or(Error::malformed(
                "transaction name has no NUL before DataOffset",
            ))?;
        let mailslot = check_mailslot_name(&name_area[..nul])?;
        let style = if smb.smb_flags2() == 0x0004 && smb.pid_low() == 0xFEFF {
            SmbStyle::Windows
        } else {
            SmbStyle::Samba
        };
        Ok(Self {
            mailslot,
            data: &user_data[data_offset..data_end],
            priority: smb.priority(),
            class: smb.class(),
            style,
        })
    }

    /// The mailslot name after `\MAILSLOT\` (e.g. `BROWSE`).
    pub fn short_name(&self) -> &'a str {
        self.mailslot.get(MAILSLOT_PREFIX.len()..).unwrap_or("")
    }

    /// `true` when the transaction name equals `name` case-insensitively (`name` may be the
    /// full `\MAILSLOT\X` or just `X`).
    pub fn is_mailslot(&self, name: &str) -> bool {
        self.mailslot.eq_ignore_ascii_case(name) || self.short_name().eq_ignore_ascii_case(name)
    }

    /// DataOffset this write is emitted with.
    pub const fn data_offset(&self) -> usize {
        data_offset(self.mailslot.len(), self.style)
    }

    /// Bytes [`MailslotWrite::emit`] writes (DataOffset + DataCount).
    pub const fn buffer_len(&self) -> usize {
        self.data_offset() + self.data.len()
    }

    /// Writes the SMB to the start of `buf` in [`MailslotWrite::style`]; returns its length.
    /// Opcode is always 1. Size policy is the caller's (see [`MailslotDatagram::check_size`]);
    /// this checks only that the 16-bit fields can hold the values.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] for a bad transaction name, [`ErrorKind::TooLarge`] when a
    /// 16-bit field would overflow, [`ErrorKind::BufferTooSmall`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        check_mailslot_name(self.mailslot.as_bytes())
            .map_err(|e| Error::new(ErrorKind::Invalid, e.context()))?;
        let data_offset = self.data_offset();
        let len = self.buffer_len();
        let too_large = || Error::too_large("mailslot write longer than 65535 bytes");
        let data_offset16 = u16::try_from(data_offset).map_err(|_| too_large())?;
        let data_count16 = u16::try_from(self.data.len()).map_err(|_| too_large())?;
        let byte_count = u16::try_from(len - TRANS_FIXED_LEN).map_err(|_| too_large())?;
        let out = buf.get_mut(..len).ok_or(Error::buffer_too_small())?;
        out[..data_offset].fill(0);
        let put = |out: &mut [u8], r: core::ops::Range<usize>, v: u16| {
            out[r].copy_from_slice(&v.to_le_bytes());
        };
        out[field::PROTOCOL].copy_from_slice(&SMB_MAGIC);
        out[field::COMMAND] = SMB_COM_TRANSACTION;
        out[field::WORD_COUNT] = 17;
        put(out, field::TOTAL_DATA_COUNT, data_count16);
        put(out, field::DATA_COUNT, data_count16);
        put(out, field::DATA_OFFSET, data_offset16);
        out[field::SETUP_COUNT] = 3;
        put(out, field::OPCODE, MAILSLOT_WRITE_OPCODE);
        put(out, field::PRIORITY, self.priority);
        put(out, field::CLASS, self.class);
        put(out, field::BYTE_COUNT, byte_count);
        if self.style == SmbStyle::Windows {
            out[field::FLAGS] = 0x18;
            put(out, field::FLAGS2, 0x0004);
            put(out, field::PID_LOW, 0xFEFF);
            put(out, field::MAX_PARAMETER_COUNT, 2);
            put(out, field::TRANS_FLAGS, 0x0002);
            put(out, field::PARAMETER_OFFSET, data_offset16);
        }
        let name_end = field::NAME + self.mailslot.len();
        out[field::NAME..name_end].copy_from_slice(self.mailslot.as_bytes());
        // out[name_end] (NUL) and the padding stay zero from the fill above.
        out[data_offset..].copy_from_slice(self.data);
        Ok(len)
    }
}

/// A whole mailslot datagram: NetBIOS header, names and the SMB mailslot write. This is what
/// a sender builds and a receiver gets after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MailslotDatagram<'a> {
    /// MSG_TYPE: 0x10 to a unique name, 0x11 to a group name (0x12 accepted on receive).
    pub msg_type: MessageType,
    /// FLAGS (send [`Flags::unfragmented`]).
    pub flags: Flags,
    /// DGM_ID.
    pub dgm_id: u16,
    /// SOURCE_IP.
    pub source_ip: Ipv4Addr,
    /// SOURCE_PORT.
    pub source_port: u16,
    /// SOURCE_NAME.
    pub source_name: ScopedName<'a>,
    /// DESTINATION_NAME.
    pub destination_name: ScopedName<'a>,
    /// The SMB mailslot write.
    pub write: MailslotWrite<'a>,
}

impl<'a> MailslotDatagram<'a> {
    /// A Windows-style write of `data` to `mailslot` from `source` to `destination`: B-node
    /// flags (0x02), DGM_ID 0, SOURCE_IP 0.0.0.0 and SOURCE_PORT 138 (set them), empty scope.
    pub const fn new(
        msg_type: MessageType,
        source: NetbiosName,
        destination: NetbiosName,
        mailslot: &'a str,
        data: &'a [u8],
    ) -> Self {
        Self {
            msg_type,
            flags: Flags::unfragmented(NodeType::B),
            dgm_id: 0,
            source_ip: Ipv4Addr::UNSPECIFIED,
            source_port: DATAGRAM_PORT,
            source_name: ScopedName::new(source),
            destination_name: ScopedName::new(destination),
            write: MailslotWrite::new(mailslot, data, SmbStyle::Windows),
        }
    }

    /// Parses and validates a received datagram (the receive checks of docs/wire.md).
    ///
    /// # Errors
    /// [`ErrorKind::Fragment`] for fragments, [`ErrorKind::Unsupported`] for packets that are
    /// not 0x10-0x12 or not mailslot writes, and the errors of [`DatagramRepr::parse`] and
    /// [`MailslotWrite::parse`].
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let repr = DatagramRepr::parse_bytes(buf)?;
        Self::from_datagram(&repr)
    }

    /// Validates the user data of an already parsed datagram.
    ///
    /// # Errors
    /// As [`MailslotDatagram::parse`].
    pub fn from_datagram(repr: &DatagramRepr<'a>) -> Result<Self> {
        let DatagramBody::Data {
            source_name,
            destination_name,
            user_data,
            ..
        } = repr.body
        else {
            return Err(Error::unsupported(
                "not a direct or broadcast datagram (MSG_TYPE)",
            ));
        };
        if repr.is_fragment() {
            return Err(Error::new(
                ErrorKind::Fragment,
                "datagram fragment (M set or PACKET_OFFSET != 0)",
            ));
        }
        Ok(Self {
            msg_type: repr.msg_type,
            flags: repr.flags,
            dgm_id: repr.dgm_id,
            source_ip: repr.source_ip,
            source_port: repr.source_port,
            source_name,
            destination_name,
            write: MailslotWrite::parse(user_data)?,
        })
    }

    /// `true` for a group or broadcast destination: MSG_TYPE 0x11/0x12 or the `*` name.
    pub fn is_group(&self) -> bool {
        self.msg_type != MessageType::DirectUnique || self.destination_name.name.is_wildcard()
    }

    fn names_len(&self) -> usize {
        self.source_name.buffer_len() + self.destination_name.buffer_len()
    }

    /// UDP payload length.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.names_len() + self.write.buffer_len()
    }

    /// Largest message for this datagram's mailslot, names, style and target under `limit`.
    pub fn max_data_len(&self, limit: SizeLimit) -> usize {
        let offset = self.write.data_offset();
        let protocol = (usize::from(u16::MAX) - HEADER_LEN - self.names_len())
            .saturating_sub(offset)
            .min(usize::from(u16::MAX));
        let windows = WINDOWS_MAX_SMB_LEN.saturating_sub(offset);
        let windows = if self.is_group() {
            windows.min(GROUP_MAX_DATA_LEN)
        } else {
            windows
        };
        match limit {
            SizeLimit::Protocol => protocol,
            SizeLimit::Windows => windows,
            SizeLimit::SambaSafe => windows
                .min(SAMBA_MAX_UDP_PAYLOAD.saturating_sub(HEADER_LEN + self.names_len() + offset)),
        }
    }

    /// Checks the message size against `limit`.
    ///
    /// # Errors
    /// [`ErrorKind::TooLarge`] naming the rule that failed.
    pub fn check_size(&self, limit: SizeLimit) -> Result<()> {
        let len = self.write.data.len();
        if len <= self.max_data_len(limit) && (limit == SizeLimit::Protocol || !is_size_hole(len)) {
            return Ok(());
        }
        Err(Error::too_large(match limit {
            _ if len > self.max_data_len(SizeLimit::Protocol) => {
                "mailslot datagram longer than 65535 bytes"
            }
            SizeLimit::Protocol => "mailslot datagram longer than 65535 bytes",
            _ if self.is_group() && len > GROUP_MAX_DATA_LEN => {
                "message over 424 bytes for a group or * target"
            }
            _ if len > self.max_data_len(SizeLimit::Windows) => {
                "mailslot write over Windows' 512-byte SMB limit"
            }
            SizeLimit::SambaSafe if len > self.max_data_len(limit) => {
                "datagram over 576 bytes, Samba's receive limit"
            }
            _ => "425 and 426-byte messages never work between computers",
        }))
    }

    /// Writes the datagram to the start of `buf` after [`MailslotDatagram::check_size`];
    /// returns the UDP payload length. DGM_LENGTH is computed; PACKET_OFFSET is 0. Never
    /// truncates.
    ///
    /// # Errors
    /// [`ErrorKind::TooLarge`], [`ErrorKind::Invalid`] (bad transaction name, or a MSG_TYPE
    /// other than 0x10-0x12), [`ErrorKind::BufferTooSmall`].
    pub fn emit(&self, limit: SizeLimit, buf: &mut [u8]) -> Result<usize> {
        if !self.msg_type.carries_data() {
            return Err(Error::invalid(
                "mailslot datagram MSG_TYPE must be 0x10, 0x11 or 0x12",
            ));
        }
        self.check_size(limit)?;
        let len = self.buffer_len();
        let dgm_length = u16::try_from(len - HEADER_LEN)
            .map_err(|_| Error::too_large("DGM_LENGTH over 65535"))?;
        let out = buf.get_mut(..len).ok_or(Error::buffer_too_small())?;
        emit_prefix(
            out,
            self.msg_type,
            self.flags,
            self.dgm_id,
            self.source_ip,
            self.source_port,
        );
        emit_data_fields(out, dgm_length, 0);
        let mut pos = HEADER_LEN;
        pos += self.source_name.emit(&mut out[pos..])?;
        pos += self.destination_name.emit(&mut out[pos..])?;
        self.write.emit(&mut out[pos..])?;
        Ok(len)
    }

    /// [`MailslotDatagram::emit`] into a new vector of exactly the right size.
    ///
    /// # Errors
    /// As [`MailslotDatagram::emit`].
    pub fn to_vec(&self, limit: SizeLimit) -> Result<Vec<u8>> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(limit, &mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_offsets() {
        assert_eq!(data_offset("\\MAILSLOT\\TEST".len(), SmbStyle::Windows), 84);
        assert_eq!(
            data_offset("\\MAILSLOT\\MESSNGR".len(), SmbStyle::Windows),
            88
        );
        assert_eq!(
            data_offset("\\MAILSLOT\\MESSNGR".len(), SmbStyle::Samba),
            87
        );
        assert_eq!(data_offset("\\MAILSLOT\\BROWSE".len(), SmbStyle::Samba), 86);
        assert_eq!(
            data_offset(
                "\\MAILSLOT\\test1\\sample_mailslot".len(),
                SmbStyle::Windows
            ),
            104
        );
    }

    #[test]
    fn size_rules() {
        // 432 - roundup4(n)
        assert_eq!(windows_max_data_len("\\MAILSLOT\\A"), 428);
        assert_eq!(windows_max_data_len("\\MAILSLOT\\TEST"), 428);
        assert_eq!(windows_max_data_len("\\MAILSLOT\\MESSNGR"), 424);
        assert_eq!(windows_max_data_len("\\MAILSLOT\\ABCDEFGH"), 424);
        assert_eq!(windows_max_data_len("\\MAILSLOT\\ABCDEFGHI"), 420);
        assert_eq!(windows_max_data_len("\\MAILSLOT\\ABCDEFGHIJKLMNOP"), 416);
        assert_eq!(
            samba_safe_max_data_len("\\MAILSLOT\\TEST", SmbStyle::Windows, 68),
            410
        );
        assert_eq!(
            samba_safe_max_data_len("\\MAILSLOT\\MESSNGR", SmbStyle::Windows, 68),
            406
        );
        assert!(is_size_hole(425) && is_size_hole(426) && !is_size_hole(424));
    }

    #[test]
    fn emit_refuses_over_limit() {
        let src = NetbiosName::new("LINUXBOX", 0).unwrap();
        let data = [0x41u8; 600];
        let mut d = MailslotDatagram::new(
            MessageType::DirectGroup,
            src,
            NetbiosName::new("WORKGROUP", 0).unwrap(),
            "\\MAILSLOT\\TEST",
            &data[..424],
        );
        assert!(d.to_vec(SizeLimit::Windows).is_ok());
        assert!(d.to_vec(SizeLimit::SambaSafe).is_err()); // 410 max
        d.write.data = &data[..410];
        assert!(d.to_vec(SizeLimit::SambaSafe).is_ok());
        d.write.data = &data[..425];
        let e = d.to_vec(SizeLimit::Windows).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert_eq!(
            e.context(),
            "message over 424 bytes for a group or * target"
        );
        d.msg_type = MessageType::DirectUnique;
        assert_eq!(
            d.to_vec(SizeLimit::Windows).unwrap_err().context(),
            "425 and 426-byte messages never work between computers"
        );
        d.write.data = &data[..427];
        assert!(d.to_vec(SizeLimit::Windows).is_ok());
        d.write.data = &data[..429];
        assert_eq!(
            d.to_vec(SizeLimit::Windows).unwrap_err().context(),
            "mailslot write over Windows' 512-byte SMB limit"
        );
        assert!(d.to_vec(SizeLimit::Protocol).is_ok());
        let mut small = [0u8; 10];
        assert_eq!(
            d.emit(SizeLimit::Protocol, &mut small).unwrap_err().kind(),
            ErrorKind::BufferTooSmall
        );
        d.destination_name.name = NetbiosName::WILDCARD;
        d.write.data = &data[..425];
        assert!(d.to_vec(SizeLimit::Windows).is_err());
    }

    #[test]
    fn bad_names_refused_on_emit() {
        for bad in ["", "\\MAILSLOT\\", "\\PIPE\\X", "\\MAILSLOT\\A\u{7f}"] {
            let w = MailslotWrite::new(bad, b"", SmbStyle::Samba);
            assert_eq!(
                w.emit(&mut [0u8; 200]).unwrap_err().kind(),
                ErrorKind::Invalid
            );
        }
        let w = MailslotWrite::new("\\mailslot\\lower", b"", SmbStyle::Samba);
        let mut buf = [0u8; 200];
        let n = w.emit(&mut buf).unwrap();
        assert_eq!(MailslotWrite::parse(&buf[..n]).unwrap(), w);
        assert!(w.is_mailslot("LOWER") && w.is_mailslot("\\MAILSLOT\\Lower"));
    }
}
