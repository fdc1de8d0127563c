//! NetBIOS names (RFC 1001 §14, RFC 1002 §4.1): the 16-byte name, its first-level
//! ("half-ASCII") encoding and the second-level label form with an optional scope.

use core::fmt;
use core::str::FromStr;

use crate::cp850;
use crate::error::{Error, Result};

/// Length of a NetBIOS name: 15 name bytes plus the suffix ("16th byte").
pub const NAME_LEN: usize = 16;
/// Length of a first-level encoded name (two characters `A`..`P` per byte).
pub const FIRST_LEVEL_LEN: usize = 32;
/// Length of a second-level encoded name without scope: `0x20`, 32 bytes, `0x00`.
pub const ENCODED_NAME_LEN: usize = 34;
/// Longest second-level encoded name, terminator included (DNS rule).
pub const MAX_ENCODED_NAME_LEN: usize = 255;
/// Longest scope label.
pub const MAX_LABEL_LEN: usize = 63;

/// A 16-byte NetBIOS name: up to 15 bytes of name (OEM code page, upper case, padded with
/// spaces; the wildcard `*` is padded with NULs) and a suffix byte naming the service.
///
/// Values parsed from the wire keep their bytes exactly (they may be lower case); compare
/// with [`NetbiosName::eq_ignore_case`] when matching.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetbiosName([u8; NAME_LEN]);

impl NetbiosName {
    /// The wildcard name `*` (`2A` followed by 15 NULs), RFC 1002's broadcast name.
    pub const WILDCARD: Self = Self(*b"*\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    /// `\x01\x02__MSBROWSE__\x02` with suffix 0x01: the master browsers' group name.
    pub const MSBROWSE: Self = Self(*b"\x01\x02__MSBROWSE__\x02\x01");

    /// Suffix 0x00: workstation service, and the workgroup's group name.
    pub const SUFFIX_WORKSTATION: u8 = 0x00;
    /// Suffix 0x03: Messenger service.
    pub const SUFFIX_MESSENGER: u8 = 0x03;
    /// Suffix 0x1B: domain master browser.
    pub const SUFFIX_DOMAIN_MASTER_BROWSER: u8 = 0x1B;
    /// Suffix 0x1C: domain controllers.
    pub const SUFFIX_DOMAIN_CONTROLLERS: u8 = 0x1C;
    /// Suffix 0x1D: local master browser.
    pub const SUFFIX_MASTER_BROWSER: u8 = 0x1D;
    /// Suffix 0x1E: browser election group.
    pub const SUFFIX_BROWSER_ELECTION: u8 = 0x1E;
    /// Suffix 0x20: file server service.
    pub const SUFFIX_SERVER: u8 = 0x20;

    /// Builds a name from text and a suffix: upper-cased, encoded in code page 850, padded
    /// with spaces. `"*"` gives the NUL-padded wildcard (with the given suffix).
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) if the name is empty, longer than 15
    /// bytes once encoded, contains a NUL or control character, or a character outside CP850.
    pub fn new(name: &str, suffix: u8) -> Result<Self> {
        if name == "*" {
            let mut raw = Self::WILDCARD.0;
            raw[15] = suffix;
            return Ok(Self(raw));
        }
        if name.is_empty() {
            return Err(Error::invalid("empty NetBIOS name"));
        }
        let mut raw = [b' '; NAME_LEN];
        for (len, c) in name.chars().flat_map(char::to_uppercase).enumerate() {
            if c.is_control() {
                return Err(Error::invalid("control character in a NetBIOS name"));
            }
            let b = cp850::encode_char(c).ok_or(Error::invalid(
                "NetBIOS name character not in code page 850",
            ))?;
            if len == NAME_LEN - 1 {
                return Err(Error::invalid("NetBIOS name longer than 15 bytes"));
            }
            raw[len] = b;
        }
        raw[15] = suffix;
        Ok(Self(raw))
    }

    /// A name from its 16 raw bytes, exactly as given (no case or padding rules applied).
    pub const fn from_bytes(raw: [u8; NAME_LEN]) -> Self {
        Self(raw)
    }

    /// The 16 raw bytes (name, padding, suffix).
    pub const fn as_bytes(&self) -> &[u8; NAME_LEN] {
        &self.0
    }

    /// The suffix (16th byte).
    pub const fn suffix(&self) -> u8 {
        self.0[15]
    }

    /// The same name with another suffix.
    pub const fn with_suffix(&self, suffix: u8) -> Self {
        let mut raw = self.0;
        raw[15] = suffix;
        Self(raw)
    }

    /// The name bytes without the suffix and without trailing padding (spaces or NULs).
    pub fn name_bytes(&self) -> &[u8] {
        let mut end = NAME_LEN - 1;
        while end > 0 && matches!(self.0[end - 1], b' ' | 0) {
            end -= 1;
        }
        &self.0[..end]
    }

    /// The name without padding, decoded from code page 850.
    pub fn name(&self) -> String {
        cp850::decode(self.name_bytes())
    }

    /// `true` for the wildcard name `*` (any suffix).
    pub fn is_wildcard(&self) -> bool {
        self.0[..15] == Self::WILDCARD.0[..15]
    }

    /// Case-insensitive comparison (ASCII letters), suffix included.
    pub fn eq_ignore_case(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }

    /// First-level encoding: each byte becomes `'A' + high nibble`, `'A' + low nibble`.
    pub fn encode_first_level(&self) -> [u8; FIRST_LEVEL_LEN] {
        let mut out = [0; FIRST_LEVEL_LEN];
        for (i, &b) in self.0.iter().enumerate() {
            out[2 * i] = b'A' + (b >> 4);
            out[2 * i + 1] = b'A' + (b & 0x0F);
        }
        out
    }

    /// Decodes a first-level encoded name (exactly 32 bytes in `A`..`P`).
    ///
    /// # Errors
    /// [`ErrorKind::Malformed`](crate::ErrorKind::Malformed) on a wrong length or a byte
    /// outside `A`..`P`.
    pub fn decode_first_level(encoded: &[u8]) -> Result<Self> {
        if encoded.len() != FIRST_LEVEL_LEN {
            return Err(Error::malformed("first-level encoded name is not 32 bytes"));
        }
        // Every datagram carries two of these: decoded without a branch per byte (an
        // out-of-range byte leaves a high bit in `bad`).
        let mut raw = [0; NAME_LEN];
        let mut bad = 0u8;
        for (out, pair) in raw.iter_mut().zip(encoded.chunks_exact(2)) {
            let hi = pair[0].wrapping_sub(b'A');
            let lo = pair[1].wrapping_sub(b'A');
            bad |= (hi | lo) & 0xF0;
            *out = (hi << 4) | (lo & 0x0F);
        }
        if bad != 0 {
            return Err(Error::malformed("encoded NetBIOS name byte outside A..P"));
        }
        Ok(Self(raw))
    }
}

impl fmt::Display for NetbiosName {
    /// `NAME<1d>`; bytes outside printable ASCII are shown as `\xNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.name_bytes() {
            if (0x20..0x7F).contains(&b) {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        write!(f, "<{:02x}>", self.suffix())
    }
}

impl fmt::Debug for NetbiosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetbiosName({self})")
    }
}

impl FromStr for NetbiosName {
    type Err = Error;

    /// Parses `NAME` (suffix 0x00), `NAME<1d>` or `NAME#1d` (hex suffix).
    fn from_str(s: &str) -> Result<Self> {
        let (name, suffix) = if let Some(rest) = s.strip_suffix('>') {
            let (n, sfx) = rest
                .rsplit_once('<')
                .ok_or(Error::invalid("NetBIOS name: '>' without '<'"))?;
            (n, sfx)
        } else if let Some((n, sfx)) = s.rsplit_once('#') {
            (n, sfx)
        } else {
            (s, "0")
        };
        let suffix = u8::from_str_radix(suffix, 16)
            .map_err(|_| Error::invalid("NetBIOS name suffix is not a hex byte"))?;
        Self::new(name, suffix)
    }
}

/// A NetBIOS scope: the label sequence that follows the 32-byte name label on the wire,
/// without the terminating zero (e.g. `04 corp 07 example`). Empty by default.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scope<'a>(&'a [u8]);

impl<'a> Scope<'a> {
    /// The empty (default) scope.
    pub const EMPTY: Scope<'static> = Scope(&[]);

    /// Validates wire labels (`len, bytes` pairs, each 1..=63, no terminator, no pointers).
    ///
    /// # Errors
    /// [`ErrorKind::Malformed`](crate::ErrorKind::Malformed) on a bad label or a scope too
    /// long for a 255-byte name.
    pub fn from_wire(labels: &'a [u8]) -> Result<Self> {
        let mut pos = 0;
        while pos < labels.len() {
            let len = usize::from(check_label_len(labels[pos])?);
            if len == 0 {
                return Err(Error::malformed("empty label inside a NetBIOS scope"));
            }
            pos = pos
                .checked_add(1 + len)
                .filter(|&p| p <= labels.len())
                .ok_or(Error::malformed("NetBIOS scope label runs past its end"))?;
        }
        if 1 + FIRST_LEVEL_LEN + labels.len() + 1 > MAX_ENCODED_NAME_LEN {
            return Err(Error::malformed("NetBIOS name longer than 255 bytes"));
        }
        Ok(Self(labels))
    }

    /// The wire labels (without the terminating zero).
    pub const fn as_wire(&self) -> &'a [u8] {
        self.0
    }

    /// `true` for the empty scope.
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels, in order.
    pub fn labels(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.0;
        core::iter::from_fn(move || {
            let (&len, tail) = rest.split_first()?;
            let len = usize::from(len).min(tail.len());
            let (label, next) = tail.split_at(len);
            rest = next;
            Some(label)
        })
    }

    /// Encodes a dotted scope (`corp.example`) into wire labels in `out`; returns the length.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) on an empty or over-long label or
    /// scope; [`ErrorKind::BufferTooSmall`](crate::ErrorKind::BufferTooSmall).
    pub fn encode_dotted(dotted: &str, out: &mut [u8]) -> Result<usize> {
        if dotted.is_empty() {
            return Ok(0);
        }
        let mut pos = 0;
        for label in dotted.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return Err(Error::invalid(
                    "NetBIOS scope label empty or longer than 63",
                ));
            }
            let end = pos + 1 + label.len();
            let dst = out.get_mut(pos..end).ok_or(Error::buffer_too_small())?;
            dst[0] = label.len() as u8; // <= 63, checked above
            dst[1..].copy_from_slice(label.as_bytes());
            pos = end;
        }
        if 1 + FIRST_LEVEL_LEN + pos + 1 > MAX_ENCODED_NAME_LEN {
            return Err(Error::invalid("NetBIOS scope too long"));
        }
        Ok(pos)
    }
}

impl fmt::Display for Scope<'_> {
    /// Dotted form, e.g. `corp.example` (empty for the default scope).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(&String::from_utf8_lossy(label))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({self:?})", self = self.to_string())
    }
}

/// A label length byte: pointers (0xC0) and the reserved 0x40/0x80 forms are rejected.
fn check_label_len(b: u8) -> Result<u8> {
    match b & 0xC0 {
        0x00 => Ok(b),
        0xC0 => Err(Error::malformed("compression pointer in a NetBIOS name")),
        _ => Err(Error::malformed("NetBIOS name label longer than 63")),
    }
}

/// A second-level encoded NetBIOS name: the 16-byte name plus its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScopedName<'a> {
    /// The 16-byte name.
    pub name: NetbiosName,
    /// The scope (usually empty).
    pub scope: Scope<'a>,
}

impl<'a> ScopedName<'a> {
    /// A name in the empty scope.
    pub const fn new(name: NetbiosName) -> Self {
        Self {
            name,
            scope: Scope::EMPTY,
        }
    }

    /// Parses a second-level encoded name at the start of `buf`; returns it and the number of
    /// bytes it used. `field` names the field for truncation errors (e.g. `SOURCE_NAME`).
    ///
    /// Checks: first label 0x20, 32 bytes in `A`..`P`, scope labels ≤ 63 and within `buf`,
    /// total ≤ 255, a terminator, no compression pointers.
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`](crate::ErrorKind::Truncated) naming `field`, or
    /// [`ErrorKind::Malformed`](crate::ErrorKind::Malformed).
    pub fn parse(buf: &'a [u8], field: &'static str) -> Result<(Self, usize)> {
        let first = *buf.first().ok_or(Error::truncated(field))?;
        if check_label_len(first)? != 0x20 {
            return Err(Error::malformed(
                "first label of a NetBIOS name is not 32 bytes",
            ));
        }
        let encoded = buf
            .get(1..1 + FIRST_LEVEL_LEN)
            .ok_or(Error::truncated(field))?;
        let name = NetbiosName::decode_first_level(encoded)?;
        let scope_start = 1 + FIRST_LEVEL_LEN;
        let mut pos = scope_start;
        loop {
            let len = usize::from(check_label_len(
                *buf.get(pos).ok_or(Error::truncated(field))?,
            )?);
            if len == 0 {
                break;
            }
            pos += 1 + len;
            if pos + 1 > MAX_ENCODED_NAME_LEN {
                return Err(Error::malformed("NetBIOS name longer than 255 bytes"));
            }
            if pos > buf.len() {
                return Err(Error::truncated(field));
            }
        }
        let scope = Scope(&buf[scope_start..pos]);
        Ok((Self { name, scope }, pos + 1))
    }

    /// Encoded length in bytes (34 without scope).
    pub fn buffer_len(&self) -> usize {
        ENCODED_NAME_LEN + self.scope.0.len()
    }

    /// Writes the encoded name to the start of `buf`; returns the length written.
    ///
    /// # Errors
    /// [`ErrorKind::BufferTooSmall`](crate::ErrorKind::BufferTooSmall).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::buffer_too_small())?;
        out[0] = 0x20;
        out[1..1 + FIRST_LEVEL_LEN].copy_from_slice(&self.name.encode_first_level());
        out[1 + FIRST_LEVEL_LEN..len - 1].copy_from_slice(self.scope.0);
        out[len - 1] = 0;
        Ok(len)
    }
}

impl fmt::Display for ScopedName<'_> {
    /// `NAME<1d>` or `NAME<1d>.scope`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.scope.is_empty() {
            write!(f, ".{}", self.scope)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every position: accepted exactly when it is in A..P, and then
    /// decoded to its nibble.
    #[test]
    fn first_level_bytes_outside_a_to_p_are_refused() {
        let base = [b'A'; FIRST_LEVEL_LEN];
        for at in 0..FIRST_LEVEL_LEN {
            for b in 0..=255u8 {
                let mut enc = base;
                enc[at] = b;
                let got = NetbiosName::decode_first_level(&enc);
                if (b'A'..=b'P').contains(&b) {
                    let n = got.unwrap();
                    let nibble = (b - b'A') << if at % 2 == 0 { 4 } else { 0 };
                    assert_eq!(n.0[at / 2], nibble, "byte {b:#x} at {at}");
                } else {
                    assert!(got.is_err(), "byte {b:#x} at {at}");
                }
            }
        }
    }

    fn raw(name: &[u8], pad: u8, suffix: u8) -> NetbiosName {
        let mut r = [pad; 16];
        r[..name.len()].copy_from_slice(name);
        r[15] = suffix;
        NetbiosName::from_bytes(r)
    }

    #[test]
    fn first_level_vectors() {
        let cases: [(NetbiosName, &str); 7] = [
            (
                NetbiosName::from_bytes(*b"THE NETBIOS NAME"),
                "FEEIEFCAEOEFFEECEJEPFDCAEOEBENEF",
            ),
            (
                raw(b"LINUXBOX", b' ', 0),
                "EMEJEOFFFIECEPFICACACACACACACAAA",
            ),
            (
                raw(b"WORKGROUP", b' ', 0),
                "FHEPFCELEHFCEPFFFACACACACACACAAA",
            ),
            (
                raw(b"WORKGROUP", b' ', 0x1D),
                "FHEPFCELEHFCEPFFFACACACACACACABN",
            ),
            (
                raw(b"WORKGROUP", b' ', 0x1E),
                "FHEPFCELEHFCEPFFFACACACACACACABO",
            ),
            (NetbiosName::MSBROWSE, "ABACFPFPENFDECFCEPFHFDEFFPFPACAB"),
            (NetbiosName::WILDCARD, "CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ];
        for (name, enc) in cases {
            assert_eq!(&name.encode_first_level(), enc.as_bytes(), "{name}");
            assert_eq!(
                NetbiosName::decode_first_level(enc.as_bytes()).unwrap(),
                name
            );
        }
    }

    #[test]
    fn construct_and_display() {
        let n = NetbiosName::new("workgroup", 0x1d).unwrap();
        assert_eq!(n, raw(b"WORKGROUP", b' ', 0x1D));
        assert_eq!(n.to_string(), "WORKGROUP<1d>");
        assert_eq!(n.name(), "WORKGROUP");
        assert_eq!(n.suffix(), 0x1d);
        assert_eq!(NetbiosName::new("*", 0).unwrap(), NetbiosName::WILDCARD);
        assert!(NetbiosName::WILDCARD.is_wildcard());
        assert_eq!(NetbiosName::WILDCARD.to_string(), "*<00>");
        assert_eq!(
            NetbiosName::MSBROWSE.to_string(),
            "\\x01\\x02__MSBROWSE__\\x02<01>"
        );
        assert!(NetbiosName::new("ABCDEFGHIJKLMNOP", 0).is_err());
        assert!(NetbiosName::new("ABCDEFGHIJKLMNO", 0).is_ok());
        assert!(NetbiosName::new("", 0).is_err());
        assert!(NetbiosName::new("A\0B", 0).is_err());
        assert_eq!(
            "host-a<03>".parse::<NetbiosName>().unwrap().to_string(),
            "HOST-A<03>"
        );
        assert_eq!("WG#1e".parse::<NetbiosName>().unwrap().suffix(), 0x1e);
        assert_eq!("WG".parse::<NetbiosName>().unwrap().suffix(), 0);
        assert!(raw(b"linuxbox", b' ', 0).eq_ignore_case(&raw(b"LINUXBOX", b' ', 0)));
    }

    #[test]
    fn second_level_with_scope() {
        let mut labels = [0u8; 64];
        let n = Scope::encode_dotted("corp.example", &mut labels).unwrap();
        assert_eq!(&labels[..n], b"\x04corp\x07example");
        let name = ScopedName {
            name: NetbiosName::new("LINUXBOX", 0).unwrap(),
            scope: Scope::from_wire(&labels[..n]).unwrap(),
        };
        let mut buf = [0u8; 80];
        let len = name.emit(&mut buf).unwrap();
        assert_eq!(len, 34 + 13);
        let (parsed, used) = ScopedName::parse(&buf[..len], "SOURCE_NAME").unwrap();
        assert_eq!((parsed, used), (name, len));
        assert_eq!(parsed.to_string(), "LINUXBOX<00>.corp.example");
        for cut in 0..len {
            let err = ScopedName::parse(&buf[..cut], "SOURCE_NAME").unwrap_err();
            assert_eq!(err.to_string(), "truncated in SOURCE_NAME");
        }
    }

    #[test]
    fn bad_labels() {
        let mut buf = [0u8; 34];
        ScopedName::new(NetbiosName::WILDCARD)
            .emit(&mut buf)
            .unwrap();
        let mut b = buf;
        b[0] = 0x1F;
        assert!(ScopedName::parse(&b, "X").is_err());
        let mut b = buf;
        b[0] = 0xC0;
        assert_eq!(
            ScopedName::parse(&b, "X").unwrap_err().context(),
            "compression pointer in a NetBIOS name"
        );
        let mut b = buf;
        b[5] = b'Q';
        assert!(ScopedName::parse(&b, "X").is_err());
        let mut b = buf;
        b[33] = 0xC0;
        assert!(ScopedName::parse(&b, "X").is_err());
        let mut b = buf;
        b[33] = 0x40;
        assert!(ScopedName::parse(&b, "X").is_err());
        // 255-byte cap: 33 + 4 labels of 63 + terminator = 290 bytes
        let mut long = vec![0u8; 300];
        long[..33].copy_from_slice(&buf[..33]);
        for i in 0..4 {
            long[33 + i * 64] = 63;
        }
        assert_eq!(
            ScopedName::parse(&long, "X").unwrap_err().context(),
            "NetBIOS name longer than 255 bytes"
        );
        assert!(Scope::from_wire(b"\x04corp\x00").is_err());
        assert!(Scope::from_wire(b"\x05corp").is_err());
    }
}
