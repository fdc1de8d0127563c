//! Messenger service bodies on `\MAILSLOT\MESSNGR` ([MS-MSRP]): three
//! NUL-terminated strings `From\0To\0Text\0` in the OEM code page, no header.

use crate::cp850;
use crate::error::{Error, Result};

/// The Messenger mailslot's transaction name.
pub const MESSENGER_MAILSLOT: &str = "\\MAILSLOT\\MESSNGR";

/// A Messenger body, as raw OEM (code page 850) bytes without their NULs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessengerMessage<'a> {
    /// Sender name.
    pub from: &'a [u8],
    /// Recipient name (a user or computer; `*`-prefixed names are broadcasts).
    pub to: &'a [u8],
    /// The message text (line breaks as sent: CR, LF or 0x14).
    pub text: &'a [u8],
}

fn split_nul<'a>(buf: &'a [u8], field: &'static str) -> Result<(&'a [u8], &'a [u8])> {
    let nul = buf
        .iter()
        .position(|&b| b == 0)
        .ok_or(Error::truncated(field))?;
    Ok((&buf[..nul], &buf[nul + 1..]))
}

impl<'a> MessengerMessage<'a> {
    /// Parses `From\0To\0Text[\0]`. The final NUL may be missing; bytes after it are ignored.
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`](crate::ErrorKind::Truncated) when From or To has no NUL.
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let (from, rest) = split_nul(body, "Messenger From (no NUL)")?;
        let (to, rest) = split_nul(rest, "Messenger To (no NUL)")?;
        let text = match rest.iter().position(|&b| b == 0) {
            Some(nul) => &rest[..nul],
            None => rest,
        };
        Ok(Self { from, to, text })
    }

    /// Sender decoded from CP850.
    pub fn from_text(&self) -> String {
        cp850::decode(self.from)
    }
    /// Recipient decoded from CP850.
    pub fn to_text(&self) -> String {
        cp850::decode(self.to)
    }
    /// Message decoded from CP850.
    pub fn text_text(&self) -> String {
        cp850::decode(self.text)
    }

    /// Bytes [`MessengerMessage::emit`] writes (three strings and three NULs).
    pub fn buffer_len(&self) -> usize {
        self.from.len() + self.to.len() + self.text.len() + 3
    }

    /// Writes `From\0To\0Text\0` to the start of `buf`; returns the length.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) if a field contains a NUL,
    /// [`ErrorKind::BufferTooSmall`](crate::ErrorKind::BufferTooSmall).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::buffer_too_small())?;
        let mut pos = 0;
        for part in [self.from, self.to, self.text] {
            if part.contains(&0) {
                return Err(Error::invalid("NUL inside a Messenger field"));
            }
            out[pos..pos + part.len()].copy_from_slice(part);
            pos += part.len();
            out[pos] = 0;
            pos += 1;
        }
        Ok(len)
    }

    /// Builds a body from text, encoding each field in CP850.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) for a NUL or a character outside
    /// CP850.
    pub fn encode(from: &str, to: &str, text: &str) -> Result<Vec<u8>> {
        let (from, to, text) = (
            cp850::encode(from)?,
            cp850::encode(to)?,
            cp850::encode(text)?,
        );
        let msg = MessengerMessage {
            from: &from,
            to: &to,
            text: &text,
        };
        let mut out = vec![0; msg.buffer_len()];
        msg.emit(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_build() {
        let body = b"LINUXBOX\0WORKGROUP\0Hello\0";
        let m = MessengerMessage::parse(body).unwrap();
        assert_eq!(
            (m.from, m.to, m.text),
            (&b"LINUXBOX"[..], &b"WORKGROUP"[..], &b"Hello"[..])
        );
        assert_eq!(
            MessengerMessage::encode("LINUXBOX", "WORKGROUP", "Hello").unwrap(),
            body
        );
        // missing final NUL tolerated
        assert_eq!(MessengerMessage::parse(&body[..body.len() - 1]).unwrap(), m);
        assert!(MessengerMessage::parse(b"A\0B").is_err());
        assert!(MessengerMessage::parse(b"A\0B\0").unwrap().text.is_empty());
        assert_eq!(
            MessengerMessage::parse(b"A").unwrap_err().to_string(),
            "truncated in Messenger From (no NUL)"
        );
        assert!(MessengerMessage::parse(b"A\0").is_err());
        let m = MessengerMessage::parse(b"J\x94rg\0ALL\0Gr\x81\xe1e\0").unwrap();
        assert_eq!(m.from_text(), "Jörg");
        assert_eq!(m.text_text(), "Grüße");
        assert_eq!(
            MessengerMessage::encode("Jörg", "ALL", "Grüße").unwrap(),
            b"J\x94rg\0ALL\0Gr\x81\xe1e\0"
        );
        assert!(MessengerMessage::encode("a\0", "b", "c").is_err());
        assert!(MessengerMessage::encode("a", "b", "€").is_err());
    }
}
