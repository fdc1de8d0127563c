//! `mailslot serve`: hold the host's network role until SIGINT or SIGTERM.
//!
//! The process joins the election like any server would, waits for the role if another
//! process holds it, and once holding delivers every mailslot write it receives to the local
//! mailslot of that name (every instance of a shared name). It is the process to run as a
//! system service with `CAP_NET_BIND_SERVICE` for port 138.
//!
//! `mailslot serve --system` is the host service (run by `packaging/systemd/`): it owns the
//! global names in its directory (`--global-dir`, default `/run/mailslot`), decides every
//! user's opens and writes with the kernel's credentials, and holds the port for the whole
//! host, delivering into global names. Without the port (no privilege, nmbd holds it) it
//! reports why once and keeps serving the global names.
//!
//! Exit: 0 when stopped by SIGINT/SIGTERM (the role is released at once and passed on), 1 when
//! the port cannot be bound (the reason names the program holding it and the remedies), or
//! the global directory cannot be taken (another service, or a directory others can write).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use mailslot::net::{self, DeliverFn, NetConfig, NetRole, NetSource, Reporter, RoleState, Sink};
use mailslot::service::HostService;
use mailslot::Deliverer;

use crate::{common, Global, Outcome};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    // --accept-any, --share-port and --no-name-service are network options (options.rs).
    /// UDP port of the NetBIOS name service.
    #[arg(long, default_value_t = net::DEFAULT_NAME_SERVICE_PORT)]
    pub name_service_port: u16,
    /// Drop datagrams this host sent itself (by default our own broadcasts reach our own
    /// mailslots, once).
    #[arg(long)]
    pub drop_own: bool,
    /// Run as the host service: own the global names (for every local user) and the port.
    #[arg(long)]
    pub system: bool,
    /// The host service's directory (created if missing; it must be the service's own and
    /// writable by nobody else). Clients find it through MAILSLOT_GLOBAL_DIR.
    #[arg(long, env = "MAILSLOT_GLOBAL_DIR", requires = "system")]
    pub global_dir: Option<std::path::PathBuf>,
}

/// The network configuration the global options and `serve` options select.
pub fn config(global: &Global, args: &Args) -> anyhow::Result<NetConfig> {
    let dir = common::scope(global).dir().context("runtime directory")?;
    Ok(config_in(global, args, &dir))
}

/// As [`config`], for the runtime directory `dir`.
fn config_in(global: &Global, args: &Args, dir: &std::path::Path) -> NetConfig {
    let mut c = crate::network::config(global, dir);
    c.name_service_port = args.name_service_port;
    c.deliver_own = !args.drop_own;
    // serve reports the role's conditions itself, as its exit reason.
    c.reporter = Reporter::silent();
    c
}

/// Whether each delivered or dropped datagram is logged (`serve -v`).
fn per_datagram_log() -> bool {
    tracing::enabled!(tracing::Level::DEBUG)
}

/// Local delivery into `dir`: the role's own sink, or, to log each outcome (`-v`), the
/// library's `Deliverer::callback` wrapped in the log.
fn local_delivery(dir: std::path::PathBuf) -> Sink {
    if per_datagram_log() {
        Sink::Callback(logged(Deliverer::callback(dir)))
    } else {
        Sink::Local
    }
}

/// `deliver`, logging each outcome (`-v`).
fn logged(deliver: DeliverFn) -> DeliverFn {
    if !per_datagram_log() {
        return deliver;
    }
    Arc::new(move |name: &str, data: &[u8], source: &NetSource| {
        let outcome = deliver(name, data, source);
        tracing::debug!(
            "{} bytes for {name:?} from {}:{} ({}): {outcome:?}",
            data.len(),
            source.ip,
            source.port,
            common::safe(&source.netbios_name)
        );
        outcome
    })
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing a signal handler")?;
    }
    if args.system {
        return run_system(global, &args, &stop);
    }
    if global.no_network {
        bail!("serve holds the network role; it cannot run with --no-network");
    }
    let config = config(global, &args)?;
    if common::my_uid() == 0 {
        tracing::info!(
            "delivering into {} only (root's own names); to receive the LAN for every user of \
             this host, run `mailslot serve --system` (the host service)",
            config.dir.display()
        );
    }
    let sink = local_delivery(config.dir.clone());
    hold_role(config, sink, &stop, false)
}

/// `serve --system`: the host service, with the network role for the whole host.
fn run_system(global: &Global, args: &Args, stop: &Arc<AtomicBool>) -> anyhow::Result<Outcome> {
    let dir = args
        .global_dir
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(mailslot::service::DEFAULT_GLOBAL_DIR));
    let service = Arc::new(HostService::bind(&dir).context("cannot start the host service")?);
    tracing::info!(
        "host service on {} (global names for every local user)",
        dir.join(mailslot::service::SOCKET_NAME).display()
    );
    let serving = {
        let service = service.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("mailslot service".into())
            .spawn(move || service.run(&stop))
            .context("cannot start the host service's thread")?
    };
    let outcome = if global.no_network {
        while !stop.load(Ordering::Relaxed) && !serving.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Outcome::Success)
    } else {
        let mut config = config_in(global, args, &dir);
        config.via_host_service = false;
        let deliver = logged(service.network_delivery(config.port));
        hold_role(config, Sink::Callback(deliver), stop, true)
    };
    stop.store(true, Ordering::Relaxed);
    match serving.join() {
        Ok(Ok(())) => outcome,
        Ok(Err(e)) => Err(e).context("the host service failed"),
        Err(_) => bail!("the host service's thread panicked"),
    }
}

/// Holds the network role until `stop`; a service (`keep_serving`) outlives a port it cannot
/// bind, reporting why once.
fn hold_role(
    config: NetConfig,
    sink: Sink,
    stop: &Arc<AtomicBool>,
    keep_serving: bool,
) -> anyhow::Result<Outcome> {
    let role = NetRole::start(config.clone(), sink)
        .with_context(|| format!("starting the network role on UDP port {}", config.port))?;
    // The role starts as Waiting before it has even tried the lock: let it settle so that an
    // uncontended start does not announce a wait.
    role.wait_settled(Duration::from_millis(500));
    let mut last: Option<RoleState> = None;
    // A standby that never held the role has nothing to release when it stops.
    let mut held = false;
    let mut conflict_told = false;
    // Signals only set a flag: wake up a few times a second to look at it (and at the state).
    while !stop.load(Ordering::Relaxed) {
        let prev = last.clone();
        let state = role.wait_until(Duration::from_millis(100), |s| Some(s) != prev.as_ref());
        if !conflict_told && matches!(state, RoleState::Holding { .. }) {
            // Not a state of the role: the holder records it in the state file.
            if let Some((name, defender)) = net::status(&config.dir, config.port).name_conflict {
                tracing::warn!(
                    "NetBIOS name {} is held by {}: this host does not answer for it \
                     (datagrams to it that reach this host are still delivered); use another \
                     --netbios-name to be reachable by name",
                    common::safe(&name),
                    common::safe(&defender)
                );
                conflict_told = true;
            }
        }
        if Some(&state) == last.as_ref() {
            continue;
        }
        match &state {
            RoleState::Waiting => {
                let holder = net::status(&config.dir, config.port).holder_pid;
                let who = holder.map_or("another process".to_string(), |p| format!("pid {p}"));
                tracing::info!(
                    "waiting for the network role on UDP port {} (held by {who})",
                    config.port
                );
            }
            RoleState::Starting => {}
            RoleState::Holding { local, shared } => {
                held = true;
                let ns = net::status(&config.dir, config.port)
                    .name_service
                    .unwrap_or_default();
                tracing::info!(
                    "holding the network role on {local}{} as {} in {}; name service: {ns}",
                    if *shared {
                        " (shared with another program)"
                    } else {
                        ""
                    },
                    config.netbios_name,
                    config.workgroup,
                );
            }
            RoleState::ViaService { port } => {
                tracing::info!(
                    "the host service holds UDP port {port}; receiving this directory's \
                     datagrams through it"
                );
            }
            RoleState::Unavailable { reason } if keep_serving => {
                tracing::warn!(
                    "no network role on UDP port {}: {reason}; global names keep working on \
                     this host",
                    config.port
                );
            }
            RoleState::Unavailable { reason } => {
                bail!("network role on UDP port {}: {reason}", config.port)
            }
            RoleState::Stopped { reason } => {
                bail!(
                    "network role on UDP port {} stopped: {}",
                    config.port,
                    reason.as_deref().unwrap_or("unknown reason")
                )
            }
        }
        last = Some(state);
    }
    let counters = role.counters();
    drop(role);
    if !held {
        tracing::info!(
            "stopped; this process never held the network role on UDP port {}",
            config.port
        );
        return Ok(Outcome::Success);
    }
    tracing::info!(
        "released the network role (received {}, delivered {}, dropped: {} malformed, {} \
         without a mailslot, {} fragments)",
        counters.received,
        counters.delivered,
        counters.dropped_malformed,
        counters.dropped_no_mailslot,
        counters.dropped_fragment
    );
    Ok(Outcome::Success)
}
