//! OEM code page 850 (DOS Latin-1) <-> Unicode, for Messenger bodies and NetBIOS names.
//!
//! Bytes 0x00-0x7F are ASCII (identity); 0x80-0xFF map through a 128-entry table. Every byte decodes,
//! so decoding never fails; encoding fails on characters CP850 does not have.

use crate::error::{Error, Result};

/// Unicode scalar values of CP850 bytes 0x80..=0xFF (IBM/Microsoft code page 850).
const HIGH: [char; 128] = [
    '\u{00C7}', '\u{00FC}', '\u{00E9}', '\u{00E2}', '\u{00E4}', '\u{00E0}', '\u{00E5}',
    '\u{00E7}', // 0x80
    '\u{00EA}', '\u{00EB}', '\u{00E8}', '\u{00EF}', '\u{00EE}', '\u{00EC}', '\u{00C4}',
    '\u{00C5}', // 0x88
    '\u{00C9}', '\u{00E6}', '\u{00C6}', '\u{00F4}', '\u{00F6}', '\u{00F2}', '\u{00FB}',
    '\u{00F9}', // 0x90
    '\u{00FF}', '\u{00D6}', '\u{00DC}', '\u{00F8}', '\u{00A3}', '\u{00D8}', '\u{00D7}',
    '\u{0192}', // 0x98
    '\u{00E1}', '\u{00ED}', '\u{00F3}', '\u{00FA}', '\u{00F1}', '\u{00D1}', '\u{00AA}',
    '\u{00BA}', // 0xA0
    '\u{00BF}', '\u{00AE}', '\u{00AC}', '\u{00BD}', '\u{00BC}', '\u{00A1}', '\u{00AB}',
    '\u{00BB}', // 0xA8
    '\u{2591}', '\u{2592}', '\u{2593}', '\u{2502}', '\u{2524}', '\u{00C1}', '\u{00C2}',
    '\u{00C0}', // 0xB0
    '\u{00A9}', '\u{2563}', '\u{2551}', '\u{2557}', '\u{255D}', '\u{00A2}', '\u{00A5}',
    '\u{2510}', // 0xB8
    '\u{2514}', '\u{2534}', '\u{252C}', '\u{251C}', '\u{2500}', '\u{253C}', '\u{00E3}',
    '\u{00C3}', // 0xC0
    '\u{255A}', '\u{2554}', '\u{2569}', '\u{2566}', '\u{2560}', '\u{2550}', '\u{256C}',
    '\u{00A4}', // 0xC8
    '\u{00F0}', '\u{00D0}', '\u{00CA}', '\u{00CB}', '\u{00C8}', '\u{0131}', '\u{00CD}',
    '\u{00CE}', // 0xD0
    '\u{00CF}', '\u{2518}', '\u{250C}', '\u{2588}', '\u{2584}', '\u{00A6}', '\u{00CC}',
    '\u{2580}', // 0xD8
    '\u{00D3}', '\u{00DF}', '\u{00D4}', '\u{00D2}', '\u{00F5}', '\u{00D5}', '\u{00B5}',
    '\u{00FE}', // 0xE0
    '\u{00DE}', '\u{00DA}', '\u{00DB}', '\u{00D9}', '\u{00FD}', '\u{00DD}', '\u{00AF}',
    '\u{00B4}', // 0xE8
    '\u{00AD}', '\u{00B1}', '\u{2017}', '\u{00BE}', '\u{00B6}', '\u{00A7}', '\u{00F7}',
    '\u{00B8}', // 0xF0
    '\u{00B0}', '\u{00A8}', '\u{00B7}', '\u{00B9}', '\u{00B3}', '\u{00B2}', '\u{25A0}',
    '\u{00A0}', // 0xF8
];

/// The character CP850 byte `b` stands for.
pub fn decode_byte(b: u8) -> char {
    if b < 0x80 {
        char::from(b)
    } else {
        HIGH[usize::from(b - 0x80)]
    }
}

/// The CP850 byte for `c`, if the code page has it.
pub fn encode_char(c: char) -> Option<u8> {
    if c.is_ascii() {
        return u8::try_from(u32::from(c)).ok();
    }
    HIGH.iter()
        .position(|&h| h == c)
        .and_then(|i| u8::try_from(i + 0x80).ok())
}

/// Decodes CP850 bytes to a `String` (never fails: every byte has a character).
pub fn decode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| decode_byte(b)).collect()
}

/// Encodes `text` as CP850.
///
/// # Errors
/// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) if a character is not in CP850.
pub fn encode(text: &str) -> Result<Vec<u8>> {
    text.chars()
        .map(|c| encode_char(c).ok_or(Error::invalid("character not in code page 850")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_byte() {
        for b in 0..=255u8 {
            assert_eq!(encode_char(decode_byte(b)), Some(b), "byte {b:#x}");
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(decode(b"\x80\x81\x9c\xe1\xff"), "Çü£ß\u{a0}");
        assert_eq!(
            encode("Grüße €").unwrap_err().kind(),
            crate::ErrorKind::Invalid
        );
        assert_eq!(encode("Grüße").unwrap(), b"Gr\x81\xe1e");
    }
}
