//! The CLI's side of the network role: taking part in it while a mailslot is open, remote
//! sends, and the role's status. The role itself lives in `mailslot::net`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use mailslot::net::{self, NetConfig, NetRole, RoleState, SendOptions, Sink};
use mailslot::{MailslotName, Target};
use serde_json::{json, Value};

use crate::common::{self, emit_line};
use crate::{send, Global, Outcome};

/// The network settings the global options describe, for runtime directory `dir`.
pub fn config(global: &Global, dir: &Path) -> NetConfig {
    let mut config = NetConfig::new(dir);
    config.port = global.port;
    if let Some(bind) = global.bind {
        config.bind = bind;
    }
    config.broadcast = global.broadcast.clone();
    if let Some(name) = &global.netbios_name {
        config.netbios_name = name.to_uppercase();
    }
    config.workgroup = global.workgroup.to_uppercase();
    config.share_port = global.share_port;
    config.accept_any = global.accept_any;
    config.name_service = !global.no_name_service;
    config
}

/// Makes this process a candidate for the host's network role while the result lives: if no
/// other live process holds it, this one binds the port and delivers what arrives into this
/// host's mailslots (every name, not only `dir`'s one it opened). `None` with `--no-network`.
pub fn start_role(global: &Global, dir: &Path) -> anyhow::Result<Option<NetRole>> {
    if global.no_network {
        return Ok(None);
    }
    let config = config(global, dir);
    let role =
        NetRole::start(config, Sink::Local).context("cannot take part in the network role")?;
    Ok(Some(role))
}

/// Waits briefly for the role to settle, so that `listen` reports an unavailable port (once)
/// before its first message.
pub fn settle(role: &NetRole) -> RoleState {
    role.wait_settled(Duration::from_millis(500))
}

pub fn send_remote(
    global: &Global,
    target: &Target,
    name: &MailslotName,
    data: &[u8],
    args: &send::Args,
) -> anyhow::Result<Outcome> {
    let dir = common::scope(global).dir()?;
    let config = config(global, &dir);
    let target = match target {
        Target::Local => unreachable!("local targets are written directly"),
        Target::AllInWorkgroup => net::Target::OwnGroup,
        Target::Host(host) if args.group => net::Target::Group(host.clone()),
        Target::Host(host) => net::Target::parse(host)?,
    };
    let mut options = if args.messenger {
        SendOptions::messenger()
    } else {
        SendOptions::default()
    };
    if let Some(suffix) = args.suffix {
        options.unique_suffix = suffix;
        options.group_suffix = suffix;
    }
    if args.dry_run {
        let datagram = net::encode(&config, &target, name.as_str(), data, &options)
            .with_context(|| format!("mailslot \"{name}\": cannot build the datagram"))?;
        emit_line(&common::hex(&datagram))?;
        return Ok(Outcome::Success);
    }
    let report = net::send(&config, &target, name.as_str(), data, &options)
        .with_context(|| format!("mailslot \"{name}\": cannot send"))?;
    if args.verbose {
        eprintln!(
            "sent {} bytes as {} to {}<{:02x}> via {:?} (source port {}) to {}",
            report.datagram_len,
            if report.group {
                "a group datagram"
            } else {
                "a unique datagram"
            },
            report.destination_name.0,
            report.destination_name.1,
            report.path,
            report.source_port,
            report
                .destinations
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Outcome::Success)
}

/// The `network` object of `status --json` (DESIGN.md §4).
pub fn status_json(global: &Global, dir: &Path) -> Value {
    let status = net::status(dir, global.port);
    let c = &status.counters;
    let mut out = json!({
        "holder_pid": status.holder_pid,
        "port": status.port,
        "state": status.state,
        "reason": status.reason,
        "bind": status.bind,
        "name_service": status.name_service,
        "name_state": status.name_state,
        "name_conflict": status.name_conflict.as_ref().map(|(name, defender)| {
            json!({ "name": name, "defender": defender })
        }),
    });
    for (key, value) in c.fields() {
        out[key] = json!(value);
    }
    out
}

/// One line about the role for the human `status`.
pub fn status_line(global: &Global, dir: &Path) -> String {
    let status = net::status(dir, global.port);
    let holder = status
        .holder_pid
        .map_or("nobody".to_owned(), |pid| format!("pid {pid}"));
    let counters = status
        .counters
        .fields()
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut line = format!(
        "network role (port {}): {}, held by {holder}",
        status.port, status.state
    );
    if let Some(reason) = status.reason {
        line.push_str(&format!("\n  reason: {}", common::safe(&reason)));
    }
    match (&status.name_state, &status.name_conflict) {
        (Some(_), Some((name, defender))) => line.push_str(&format!(
            "\n  NetBIOS name conflict: {} is held by {} (not answered for here)",
            common::safe(name),
            common::safe(defender)
        )),
        (Some(state), None) if state != "off" => {
            line.push_str(&format!("\n  NetBIOS names: {}", common::safe(state)))
        }
        _ => {}
    }
    if !counters.is_empty() {
        line.push_str(&format!("\n  {counters}"));
    }
    line
}
