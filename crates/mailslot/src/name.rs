//! Mailslot names and write targets: parsing, validation, and the on-disk file name.
//!
//! A name is case-insensitive, may contain backslash "directories" (`taxes\bob`), and never
//! becomes a path: it is encoded into one file-name component of the runtime directory.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// Longest accepted name, in bytes of UTF-8, after any `\\.\mailslot\` prefix.
///
/// Each byte may take three characters once encoded, and the encoding must fit in one
/// 255-byte file-name component with its suffix.
pub const MAX_NAME_LEN: usize = 80;

/// A validated mailslot name (the part after `\\.\mailslot\`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MailslotName {
    display: String,
    key: String,
}

impl MailslotName {
    /// Parses `NAME`, `\\.\mailslot\NAME` or `\MAILSLOT\NAME` (any case) as a local name.
    ///
    /// # Errors
    /// `InvalidName` for anything else: empty, too long, an empty or `.`/`..` component, NUL,
    /// `/`, or a control character.
    pub fn parse(input: &str) -> Result<MailslotName, Error> {
        match Target::parse(input)? {
            (Target::Local, name) => Ok(name),
            _ => Err(invalid(
                input,
                "a server name must be local (NAME or \\\\.\\mailslot\\NAME)",
            )),
        }
    }

    /// The name as given (case preserved), without any prefix.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded name: two spellings of one mailslot have the same key.
    pub(crate) fn key(&self) -> String {
        self.key.clone()
    }

    /// The file name of this mailslot in its runtime directory: lower-cased, every byte other
    /// than `[a-z0-9_-]` written as `%xx`, so no name can spell `..` or `/`.
    pub fn file_name(&self) -> String {
        let mut out = String::with_capacity(self.key.len() * 3 + 5);
        for &b in self.key.as_bytes() {
            if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02x}"));
            }
        }
        out.push_str(".slot");
        out
    }

    /// Recovers the case-folded name from a file name made by [`MailslotName::file_name`].
    pub(crate) fn key_from_file_name(file: &str) -> Option<String> {
        let stem = file.strip_suffix(".slot")?;
        let bytes = stem.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }

    fn new(display: &str) -> Result<MailslotName, Error> {
        validate(display)?;
        Ok(MailslotName {
            display: display.to_owned(),
            key: display.chars().map(fold).collect(),
        })
    }
}

impl fmt::Display for MailslotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for MailslotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailslotName({:?})", self.display)
    }
}

/// Where a writer sends: this host, one remote host, a workgroup, or every host of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `\\.\mailslot\NAME` or a bare `NAME`.
    Local,
    /// `\\HOST\mailslot\NAME`: a NetBIOS name, DNS name or IP address.
    Host(String),
    /// `\\*\mailslot\NAME`: every host of this host's workgroup.
    AllInWorkgroup,
}

impl Target {
    /// Splits a writer's path into its target and the mailslot name.
    ///
    /// A `\\X\mailslot\NAME` path names a host or a workgroup: which one it is depends on the
    /// network configuration, so it is returned as [`Target::Host`] and resolved when sending.
    ///
    /// # Errors
    /// `InvalidName` when the path or the name is malformed.
    pub fn parse(input: &str) -> Result<(Target, MailslotName), Error> {
        if let Some(rest) = input.strip_prefix("\\\\") {
            let (host, tail) = rest
                .split_once('\\')
                .ok_or_else(|| invalid(input, "expected \\\\HOST\\mailslot\\NAME"))?;
            let name = strip_prefix_ci(tail, "mailslot\\")
                .ok_or_else(|| invalid(input, "expected \\\\HOST\\mailslot\\NAME"))?;
            let target = match host {
                "." => Target::Local,
                "*" => Target::AllInWorkgroup,
                "" => return Err(invalid(input, "empty host in \\\\HOST\\mailslot\\NAME")),
                h => Target::Host(h.to_owned()),
            };
            return Ok((target, MailslotName::new(name)?));
        }
        let name = strip_prefix_ci(input, "\\mailslot\\").unwrap_or(input);
        Ok((Target::Local, MailslotName::new(name)?))
    }
}

/// Case-folds one character, as Windows compares names: character by character, never by
/// context (`str::to_lowercase` writes a final sigma `ς` at the end of a word, so `ΟΔΟΣ` and
/// `οδοσ` would differ), one character for one (Windows' table maps `ß` to itself, not `SS`).
fn fold(c: char) -> char {
    fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
        let first = it.next()?;
        it.next().is_none().then_some(first)
    }
    single(c.to_uppercase())
        .and_then(|upper| single(upper.to_lowercase()))
        .unwrap_or(c)
}

/// Whether [`MailslotName::parse`] would accept `input`, without building the name (the
/// network role checks every datagram's name and allocates nothing for it).
pub(crate) fn parses_as_local(input: &str) -> bool {
    if let Some(rest) = input.strip_prefix("\\\\") {
        return rest.split_once('\\').is_some_and(|(host, tail)| {
            host == "." && strip_prefix_ci(tail, "mailslot\\").is_some_and(|n| validate(n).is_ok())
        });
    }
    validate(strip_prefix_ci(input, "\\mailslot\\").unwrap_or(input)).is_ok()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn validate(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(invalid(name, "the name is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(name, "the name is longer than 80 bytes"));
    }
    if name.contains('/') {
        return Err(invalid(
            name,
            "'/' is not allowed (use '\\' for directories)",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(name, "NUL and control characters are not allowed"));
    }
    for component in name.split('\\') {
        match component {
            "" => return Err(invalid(name, "empty path component")),
            "." | ".." => return Err(invalid(name, "'.' and '..' components are not allowed")),
            _ => {}
        }
    }
    Ok(())
}

fn invalid(name: &str, why: &'static str) -> Error {
    let shown: String = name
        .chars()
        .take(100)
        .collect::<String>()
        .escape_debug()
        .to_string();
    Error::new(
        ErrorKind::InvalidName,
        format!("invalid mailslot name \"{shown}\": {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_windows_forms_and_folds_case() {
        let a = MailslotName::parse("Taxes\\Bob").unwrap();
        let b = MailslotName::parse("\\\\.\\MAILSLOT\\taxes\\BOB").unwrap();
        let c = MailslotName::parse("\\mailslot\\TAXES\\bob").unwrap();
        assert_eq!(a.file_name(), b.file_name());
        assert_eq!(a.file_name(), c.file_name());
        assert_eq!(a.as_str(), "Taxes\\Bob");
        assert_eq!(a.file_name(), "taxes%5cbob.slot");
    }

    #[test]
    fn file_names_round_trip_and_never_escape() {
        for name in ["a.b", "x y", "ünï\\cödé", "R:\\FRED", "%2e"] {
            let n = MailslotName::parse(name).unwrap();
            let file = n.file_name();
            assert!(!file.contains('/') && !file.starts_with('.'), "{file}");
            assert_eq!(MailslotName::key_from_file_name(&file).unwrap(), n.key());
        }
    }

    #[test]
    fn case_folds_per_character_as_windows_does() {
        let same = [
            ("ΟΔΟΣ", "οδοσ"),
            ("ΟΔΟΣ", "οδος"),
            ("οδος", "οδοσ"),
            ("Straße", "STRAßE"),
            ("Ünïcödé\\Ω", "ünïcödé\\ω"),
        ];
        for (a, b) in same {
            let (a, b) = (
                MailslotName::parse(a).unwrap(),
                MailslotName::parse(b).unwrap(),
            );
            assert_eq!(a.file_name(), b.file_name(), "{a} ~ {b}");
        }
        // One character for one: no name becomes another by expansion.
        let strasse = MailslotName::parse("strasse").unwrap();
        assert_ne!(
            MailslotName::parse("straße").unwrap().file_name(),
            strasse.file_name()
        );
        // Folding twice changes nothing (listing parses keys back into names).
        for name in ["ΟΔΟΣ", "İstanbul", "ǅemal", "ﬀ"] {
            let key = MailslotName::parse(name).unwrap().key();
            assert_eq!(MailslotName::parse(&key).unwrap().key(), key, "{name}");
        }
    }

    #[test]
    fn the_longest_names_fit_a_file_name_even_escaped() {
        // 80 bytes, every one escaped (three characters each).
        let name = "%".repeat(MAX_NAME_LEN);
        let file = MailslotName::parse(&name).unwrap().file_name();
        assert!(file.len() <= 255, "{}", file.len());
    }

    #[test]
    fn rejects_hostile_names() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            "..",
            "a\\..\\b",
            ".",
            "a/b",
            "../etc",
            "a\0b",
            "a\\\\b",
            "\\a",
            "a\\",
            "a\nb",
            long.as_str(),
        ] {
            let err = MailslotName::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName, "{bad:?}");
        }
        assert!(MailslotName::parse(&"x".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn parses_targets() {
        let (t, n) = Target::parse("\\\\HOSTB\\mailslot\\Test").unwrap();
        assert_eq!(t, Target::Host("HOSTB".into()));
        assert_eq!(n.as_str(), "Test");
        assert_eq!(
            Target::parse("\\\\*\\MailSlot\\x").unwrap().0,
            Target::AllInWorkgroup
        );
        assert_eq!(
            Target::parse("\\\\.\\mailslot\\x").unwrap().0,
            Target::Local
        );
        assert!(Target::parse("\\\\host\\pipe\\x").is_err());
        assert!(MailslotName::parse("\\\\host\\mailslot\\x").is_err());
    }
}
