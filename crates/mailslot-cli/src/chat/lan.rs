//! The chat's LAN path, kept in one place: the network role this process competes for, and
//! Messenger sends to a host, a workgroup or `*`, both through `mailslot::net`.
//!
//! Nothing else in the chat touches the network; with `--no-network` this module is not used.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mailslot::net::{self, NetConfig, NetRole, Reporter, RoleState, SendOptions, Sink};

use super::model::{NetTarget, RoleView, MAILSLOT};
use super::Event;
use crate::Global;

/// The network settings of this chat: the global options as every subcommand reads them
/// (`network::config`), with the NetBIOS name and workgroup the chat shows.
pub fn config(
    global: &Global,
    dir: &std::path::Path,
    netbios_name: &str,
    workgroup: &str,
) -> NetConfig {
    let mut config = crate::network::config(global, dir);
    config.netbios_name = netbios_name.to_owned();
    config.workgroup = workgroup.to_owned();
    config
}

/// The default NetBIOS name of this host.
pub fn default_netbios_name() -> String {
    net::default_netbios_name()
}

/// Joins the election for the host's network role. The holder delivers every datagram it
/// receives into this host's mailslots (all names, every instance), like any holder; changes
/// of the role's state come to the chat as events, never to the terminal. (The role's own
/// reports only repeat at length what its state says: they are not shown.)
///
/// # Errors
/// When the role cannot even be asked for (a bad NetBIOS name, no runtime directory).
pub fn start_role(mut config: NetConfig, events: Sender<Event>) -> anyhow::Result<Arc<NetRole>> {
    config.reporter = Reporter::silent();
    let role = Arc::new(
        NetRole::start(config, Sink::Local).context("cannot take part in the network role")?,
    );
    let watched = role.clone();
    std::thread::Builder::new()
        .name("chat role".into())
        .spawn(move || {
            let mut last = None;
            loop {
                // Wakes on every change of the role's state (a condition variable); the
                // timeout only bounds each wait.
                let state =
                    watched.wait_until(Duration::from_secs(3600), |s| Some(s) != last.as_ref());
                if Some(&state) != last.as_ref() {
                    if events.send(Event::Role(view(&state))).is_err() {
                        return;
                    }
                    last = Some(state);
                }
            }
        })
        .context("cannot start a thread")?;
    Ok(role)
}

/// The role's state as the status line shows it.
pub fn view(state: &RoleState) -> RoleView {
    match state {
        RoleState::Waiting => RoleView::Waiting,
        RoleState::Starting => RoleView::Starting,
        RoleState::Holding { local, .. } => RoleView::Holding { port: local.port() },
        RoleState::ViaService { port } => RoleView::ViaService { port: *port },
        RoleState::Unavailable { reason } => RoleView::Unavailable(reason.clone()),
        RoleState::Stopped { reason } => RoleView::Stopped(reason.clone()),
    }
}

/// Sends a Messenger body to `target` on the LAN; `Ok` says where it went.
///
/// # Errors
/// The network's reason, in one line (too large, name not found, network unavailable, ...).
pub fn send(config: &NetConfig, target: &NetTarget, body: &[u8]) -> Result<String, String> {
    let target = match target {
        NetTarget::OwnGroup => net::RemoteTarget::OwnGroup,
        NetTarget::Host(name) => net::RemoteTarget::Host(name.clone()),
    };
    let report = net::send(config, &target, MAILSLOT, body, &SendOptions::messenger())
        .map_err(|e| e.to_string())?;
    let places: Vec<String> = report
        .destinations
        .iter()
        .map(|d| d.ip().to_string())
        .collect();
    let places = places.join(", ");
    Ok(if report.group {
        format!("broadcast {places}")
    } else {
        places
    })
}
