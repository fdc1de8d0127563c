//! The CLI's side of the network role: taking the role while listening, remote sends, and
//! the role's status. The role itself lives in `mailslot::net`.

use std::path::Path;

use anyhow::bail;
use mailslot::{MailslotName, Server, Target};
use serde_json::{json, Value};

use crate::{send, Global, Outcome};

/// Keeps this process a candidate for the host's network role while it lives.
#[derive(Debug)]
pub struct RoleGuard;

pub fn start_role(global: &Global, _server: &Server) -> anyhow::Result<Option<RoleGuard>> {
    if global.no_network {
        return Ok(None);
    }
    Ok(None)
}

pub fn send_remote(
    _global: &Global,
    target: &Target,
    name: &MailslotName,
    _data: &[u8],
    args: &send::Args,
) -> anyhow::Result<Outcome> {
    let _ = (send::is_messenger(args), send::wire_name(name));
    bail!(
        "mailslot \"{name}\": sending to {target:?} needs the network role, which is not built yet"
    )
}

pub fn status_json(global: &Global, _dir: &Path) -> Value {
    json!({"holder_pid": null, "port": global.port, "state": "off", "reason": null,
           "received": 0, "delivered": 0, "dropped_malformed": 0, "dropped_no_mailslot": 0,
           "dropped_fragment": 0})
}

pub fn status_line(global: &Global, _dir: &Path) -> String {
    format!("network role: off (port {})", global.port)
}
