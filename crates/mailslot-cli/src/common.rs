//! Helpers shared by the subcommands: the scope from the global options, and JSON output.

use std::io::Write;

use mailslot::{Message, Scope, Source};
use serde_json::{json, Value};

use crate::Global;

/// The scope the global options select (`--global`, `--dir`/`MAILSLOT_DIR`, else the user's).
pub fn scope(global: &Global) -> Scope {
    if global.global {
        Scope::Global
    } else if let Some(dir) = &global.dir {
        Scope::Dir(dir.clone())
    } else {
        Scope::User
    }
}

/// This process's user id (`u32::MAX` if /proc cannot say).
pub fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| std::os::unix::fs::MetadataExt::uid(&m))
}

/// `--capacity`: bytes, at most [`mailslot::MAX_CAPACITY`].
pub fn parse_capacity(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= mailslot::MAX_CAPACITY => Ok(n),
        Ok(_) => Err(format!(
            "a capacity of {text} bytes is more than a name can hold (at most {})",
            mailslot::MAX_CAPACITY
        )),
        Err(_) => Err(format!("'{text}' is not a number of bytes")),
    }
}

/// `--mode`: octal permission bits (`660`, `0640`).
pub fn parse_mode(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "'{text}' is not an octal mode from 000 to 777 (e.g. 660)"
        )),
    }
}

/// `--group`: a gid, or a group name looked up in /etc/group.
pub fn parse_group(text: &str) -> Result<u32, String> {
    if let Ok(gid) = text.parse::<u32>() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group")
        .map_err(|e| format!("cannot read /etc/group to find group '{text}': {e}"))?;
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid = fields.nth(1)?.parse::<u32>().ok()?;
            (name == text).then_some(gid)
        })
        .next()
        .ok_or_else(|| format!("no group named '{text}' in /etc/group (give a gid instead)"))
}

/// The `source` object of `listen --json` (docs/cli.md).
pub fn source_json(source: &Source) -> Value {
    match source {
        Source::Local { pid, uid } => json!({"kind": "local", "pid": pid, "uid": uid}),
        Source::Network {
            ip,
            port,
            netbios_name,
            suffix,
            ..
        } => json!({
            "kind": "network",
            "ip": ip.to_string(),
            "port": port,
            "netbios_name": netbios_name,
            "suffix": suffix,
        }),
    }
}

/// One line of `listen --json`.
pub fn message_json(mailslot: &str, message: &Message, messenger: Option<Value>) -> Value {
    let mut out = json!({
        "mailslot": mailslot,
        "len": message.data.len(),
        "data_hex": hex(&message.data),
        "lost": message.lost,
        "source": source_json(&message.source),
        // The NetBIOS name a datagram was addressed to: ours, our workgroup, or `*`.
        "destination": match &message.source {
            Source::Network { destination, destination_suffix, .. } => {
                json!({ "name": destination, "suffix": destination_suffix })
            }
            Source::Local { .. } => Value::Null,
        },
    });
    if let Ok(text) = std::str::from_utf8(&message.data) {
        out["text"] = Value::String(text.to_owned());
    }
    if let Some(messenger) = messenger {
        out["messenger"] = messenger;
    }
    out
}

pub fn hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Text from the network or from a shared file, made safe for a terminal: control characters
/// (an escape sequence could retitle or clear it) are written visibly, the rest as is.
pub fn safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// A readable one-line rendering of a message body for humans.
pub fn printable(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => text.escape_debug().to_string(),
        Err(_) => format!("0x{}", hex(data)),
    }
}

/// The first clause of a network role's reason: what went wrong, without the remedies that
/// follow a `; ` and the details in parentheses.
pub fn first_clause(reason: &str) -> &str {
    let end = [reason.find("; "), reason.find(" (")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(reason.len());
    &reason[..end]
}

/// Prints a line and flushes at once (so pipes and tests see each message as it arrives).
pub fn emit_line(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}
