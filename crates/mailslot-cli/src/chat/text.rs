//! Text of received popups made safe and readable for a terminal: the body's character set,
//! line breaks, control characters, and wrapping to a width.
//!
//! Nothing here may let a sender's bytes reach the terminal as control sequences: every C0
//! and C1 control, DEL and the bidirectional-override characters are shown as visible
//! escapes.

use mailslot_wire::cp850;
use unicode_width::UnicodeWidthChar;

/// How a body's bytes were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Plain ASCII (the same in every code page).
    Ascii,
    /// Valid UTF-8 with non-ASCII characters: a Linux sender that ignored the OEM code page.
    Utf8,
    /// Messenger's own code page (OEM 850); every byte has a character.
    Cp850,
}

/// Decodes message bytes: ASCII as is, valid UTF-8 as UTF-8, anything else as code page 850
/// (the Messenger service's OEM code page).
///
/// Real CP850 text is practically never valid UTF-8 (that needs a box-drawing character
/// followed by an accented one, again and again), so the guess is safe in both directions.
pub fn decode(bytes: &[u8]) -> (String, Charset) {
    if bytes.is_ascii() {
        (cp850::decode(bytes), Charset::Ascii)
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        (text.to_owned(), Charset::Utf8)
    } else {
        (cp850::decode(bytes), Charset::Cp850)
    }
}

/// Characters that reorder the display of what follows them (a sender could hide or
/// disguise text with them).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Appends `c` to `out` in a form that is safe to print: controls become `^X`, `^?` or
/// `<U+XXXX>`, a tab one space.
fn push_safe(out: &mut String, c: char) {
    match c {
        '\t' => out.push(' '),
        '\u{7F}' => out.push_str("^?"),
        c if (c as u32) < 0x20 => {
            out.push('^');
            out.push(char::from(c as u8 + 0x40));
        }
        c if c.is_control() || is_bidi_control(c) => {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        }
        c => out.push(c),
    }
}

/// One line, for names: line breaks become spaces, controls visible escapes.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\r' | '\n' | '\u{14}' => out.push(' '),
            c => push_safe(&mut out, c),
        }
    }
    out
}

/// The lines of a message text: CR LF, LF CR, CR, LF and 0x14 (Messenger's line break) each
/// end a line; controls become visible escapes; trailing empty lines are dropped (at least one
/// line remains).
pub fn lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                let pair = if c == '\r' { '\n' } else { '\r' };
                if chars.peek() == Some(&pair) {
                    chars.next();
                }
                lines.push(std::mem::take(&mut current));
            }
            '\u{14}' => lines.push(std::mem::take(&mut current)),
            c => push_safe(&mut current, c),
        }
    }
    lines.push(current);
    while lines.len() > 1 && lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// The first `max` characters of `text`, and how many were left out.
pub fn clip(text: &str, max: usize) -> (&str, usize) {
    match text.char_indices().nth(max) {
        Some((end, _)) => (&text[..end], text[end..].chars().count()),
        None => (text, 0),
    }
}

/// Display width of a character in a terminal cell grid (controls never get here).
pub fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// Wraps one line to `width` columns, breaking after the last space that fits, else inside
/// a word. Always at least one (possibly empty) piece.
pub fn wrap(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut start = 0;
    while start < chars.len() {
        let mut used = 0;
        let mut end = start;
        let mut last_space = None;
        while end < chars.len() {
            let w = char_width(chars[end]);
            if used + w > width && end > start {
                break;
            }
            used += w;
            if chars[end] == ' ' {
                last_space = Some(end);
            }
            end += 1;
        }
        if end < chars.len() {
            if let Some(space) = last_space.filter(|&s| s > start) {
                out.push(chars[start..space].iter().collect());
                start = space + 1;
                continue;
            }
        }
        out.push(chars[start..end].iter().collect());
        start = end;
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_ascii_utf8_and_oem() {
        assert_eq!(decode(b"hello"), ("hello".to_owned(), Charset::Ascii));
        assert_eq!(
            decode("Grüße".as_bytes()),
            ("Grüße".to_owned(), Charset::Utf8)
        );
        // CP850 "Grüße" is not valid UTF-8.
        assert_eq!(decode(b"Gr\x81\xe1e"), ("Grüße".to_owned(), Charset::Cp850));
        assert_eq!(
            decode(b"\xff\xfe"),
            ("\u{a0}\u{25a0}".to_owned(), Charset::Cp850)
        );
    }

    #[test]
    fn controls_are_visible() {
        assert_eq!(one_line("a\x1b[31mb\x07"), "a^[[31mb^G");
        assert_eq!(one_line("x\u{7f}\u{9b}y"), "x^?<U+009B>y");
        assert_eq!(one_line("evil\u{202e}txt"), "evil<U+202E>txt");
        assert_eq!(one_line("two\r\nlines"), "two  lines");
        assert_eq!(one_line("tab\there"), "tab here");
    }

    #[test]
    fn line_breaks() {
        assert_eq!(
            lines("a\r\nb\n\rc\rd\ne\x14f"),
            ["a", "b", "c", "d", "e", "f"]
        );
        assert_eq!(lines("a\n\n"), ["a"]);
        assert_eq!(lines(""), [""]);
        assert_eq!(lines("a\n\nb"), ["a", "", "b"]);
        assert_eq!(lines("bell\x07"), ["bell^G"]);
    }

    #[test]
    fn clips_by_characters() {
        assert_eq!(clip("Grüße", 3), ("Grü", 2));
        assert_eq!(clip("abc", 3), ("abc", 0));
        assert_eq!(clip("", 0), ("", 0));
    }

    #[test]
    fn wraps_at_spaces_then_inside_words() {
        assert_eq!(wrap("hello world", 20), ["hello world"]);
        assert_eq!(wrap("hello world", 8), ["hello", "world"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(wrap("ab", 0), ["a", "b"]);
        // Wide characters take two columns.
        assert_eq!(wrap("日本語", 4), ["日本", "語"]);
        assert_eq!("日本語x".chars().map(char_width).sum::<usize>(), 7);
    }
}
