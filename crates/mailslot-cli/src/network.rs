//! The CLI's side of the network role: taking part in it while a mailslot is open, remote
//! sends, and the role's status. The role itself lives in `mailslot::net`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use mailslot::net::{self, NetConfig, NetRole, Reporter, RoleState, SendOptions, SendPath, Sink};
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
    // The role's own reports repeat, at length, what `RoleWatch` says in one line.
    config.reporter = Reporter::new(|line| tracing::debug!("{line}"));
    config
}

/// Makes this process a candidate for the host's network role while the result lives: if no
/// other live process holds it, this one binds the port and delivers what arrives into this
/// host's mailslots (every name, not only `dir`'s one it opened). `None` with `--no-network`.
///
/// What the role does for this process is said in one line each time it changes (see
/// [`describe`]), the first before this returns.
pub fn start_role(global: &Global, dir: &Path) -> anyhow::Result<Option<RoleWatch>> {
    if global.no_network {
        return Ok(None);
    }
    let config = config(global, dir);
    let role = Arc::new(
        NetRole::start(config.clone(), Sink::Local)
            .context("cannot take part in the network role")?,
    );
    Ok(Some(RoleWatch::start(role, config.dir, config.port)?))
}

/// The network role of a `listen`, and a thread that says what it does when that changes
/// (this process takes over the port, or loses it). Dropping it releases the role (passing it
/// on), within [`RoleWatch::SLICE`].
#[derive(Debug)]
pub struct RoleWatch {
    role: Option<Arc<NetRole>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RoleWatch {
    /// How long the watcher holds the role between looks at `stop`.
    const SLICE: Duration = Duration::from_millis(100);

    fn start(role: Arc<NetRole>, dir: PathBuf, port: u16) -> anyhow::Result<RoleWatch> {
        // The role starts as Waiting before it has even tried the lock: let it settle so that
        // an unavailable port is said (once) before the first message.
        let first = role.wait_settled(Duration::from_millis(500));
        describe(&first, &dir, port);
        let stop = Arc::new(AtomicBool::new(false));
        // The watcher holds the role only while it waits: the last strong reference, and so
        // the release, stays with `listen`, or with the watcher's last slice when it stops.
        let weak: Weak<NetRole> = Arc::downgrade(&role);
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("role watch".into())
            .spawn(move || {
                let mut last = first;
                while !stopping.load(Ordering::Relaxed) && !is_final(&last) {
                    let Some(role) = weak.upgrade() else { return };
                    let state = role.wait_until(Self::SLICE, |s| *s != last);
                    drop(role);
                    if state != last {
                        describe(&state, &dir, port);
                        last = state;
                    }
                }
            })
            .context("cannot start a thread")?;
        Ok(RoleWatch {
            role: Some(role),
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for RoleWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.role.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// States the role never leaves (until it is started again).
fn is_final(state: &RoleState) -> bool {
    matches!(
        state,
        RoleState::Unavailable { .. } | RoleState::Stopped { .. }
    )
}

/// One line about what the role's `state` means for a `listen`: what it opened, or why the LAN
/// is out of reach (in short; `status` and `-v` give the whole reason). Waiting for another
/// holder, or the host service holding the port, is normal and said only with `-v`.
fn describe(state: &RoleState, dir: &Path, port: u16) {
    match state {
        RoleState::Holding { local, shared } => {
            let name_service = net::status(dir, port)
                .name_service
                .unwrap_or_else(|| "off".to_owned());
            tracing::info!(
                "opened UDP {local}{} for this host's mailslots on the LAN (the network role); \
                 name service: {}",
                if *shared {
                    " alongside another program"
                } else {
                    ""
                },
                common::safe(&name_service)
            );
        }
        // (The role's own report, at debug level, gives the whole reason.)
        RoleState::Unavailable { reason } => {
            tracing::info!(
                "no LAN for this process: {} (`mailslot status` says why; --no-network skips \
                 the LAN)",
                common::first_clause(reason)
            );
        }
        RoleState::Stopped {
            reason: Some(reason),
        } => tracing::warn!("the network role on UDP port {port} stopped: {reason}"),
        RoleState::Waiting => {
            let holder = net::status(dir, port).holder_pid;
            let who = holder.map_or("another process".to_owned(), |p| format!("pid {p}"));
            tracing::debug!("{who} holds the network role on UDP port {port} and delivers here");
        }
        RoleState::ViaService { port } => tracing::debug!(
            "the host service holds UDP port {port} and passes this directory's datagrams on"
        ),
        RoleState::Starting | RoleState::Stopped { reason: None } => {}
    }
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
        Target::AllInWorkgroup => net::RemoteTarget::OwnGroup,
        Target::Host(host) if args.group => net::RemoteTarget::Group(host.clone()),
        Target::Host(host) => net::RemoteTarget::parse(host)?,
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
    tracing::debug!("{}", sent_line(&report));
    Ok(Outcome::Success)
}

/// What `send -v` says about a datagram that left: how, where to, from which port.
fn sent_line(report: &net::SendReport) -> String {
    let how = match report.path {
        SendPath::Role => "from this process, which holds the network role",
        SendPath::Handoff => "through the process that holds this host's network role",
        SendPath::Ephemeral => {
            "from a temporary port, as no process of this host holds the network role"
        }
    };
    format!(
        "sent {} bytes as a {} datagram for {}<{:02x}> to {}, {how} (source port {})",
        report.datagram_len,
        if report.group {
            "group (broadcast)"
        } else {
            "unique (direct)"
        },
        common::safe(&report.destination_name.0),
        report.destination_name.1,
        report
            .destinations
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        report.source_port,
    )
}

/// The `network` object of `status --json` (docs/cli.md).
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
