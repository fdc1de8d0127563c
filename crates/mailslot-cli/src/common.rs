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

/// The `source` object of DESIGN.md §4.
pub fn source_json(source: &Source) -> Value {
    match source {
        Source::Local { pid, uid } => json!({"kind": "local", "pid": pid, "uid": uid}),
        Source::Network {
            ip,
            port,
            netbios_name,
            suffix,
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

/// A readable one-line rendering of a message body for humans.
pub fn printable(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => text.escape_debug().to_string(),
        Err(_) => format!("0x{}", hex(data)),
    }
}

/// Prints a line and flushes at once (so pipes and tests see each message as it arrives).
pub fn emit_line(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}
