//! The options shared by several subcommands, in three groups with their own help headings:
//!
//! - global (`-v`, `-q`): every subcommand, before or after its name;
//! - scope (`--dir`, `--global`): the subcommands that open mailslots;
//! - network (`--port`, `--bind`, ...): the subcommands that use the LAN (`decode` takes
//!   `--port` only, to know which protocol it reads).
//!
//! Scope and network options are accepted after the subcommand that uses them and, as
//! before, ahead of it (`mailslot --global listen NEWS`): `main` merges the two places and
//! refuses an option given ahead of a subcommand that does not take it. Their environment
//! variables are read here, once both places are merged, so that an option on the command
//! line (in either place) beats the variable: were they clap's `env`, the variable would fill
//! the subcommand's copy of an option given ahead of it, and win.

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// How much the command says on standard error.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct LogArgs {
    /// Say more on standard error: -v what each step did (where a datagram went, the
    /// capacity in effect, each datagram `serve` delivers), -vv everything. Without -v or -q,
    /// RUST_LOG (e.g. `mailslot=debug`) chooses.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Say nothing on standard error but the error that ends the command.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// Which runtime directory, and so which mailslots, a subcommand sees.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Scope options")]
pub struct ScopeArgs {
    /// Runtime directory holding this user's mailslots [env: MAILSLOT_DIR] (default:
    /// $XDG_RUNTIME_DIR/mailslot, else /dev/shm/mailslot-UID).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Use the global scope: names shared between users through the host service
    /// (`mailslot serve --system`), instead of the user's own directory.
    #[arg(long)]
    pub global: bool,
}

impl ScopeArgs {
    /// These options, completed by those given ahead of the subcommand.
    pub fn or(self, ahead: ScopeArgs) -> ScopeArgs {
        ScopeArgs {
            dir: self.dir.or(ahead.dir),
            global: self.global || ahead.global,
        }
    }
}

/// The datagram port alone (`status` and `decode` need no other network option).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
#[command(next_help_heading = "Network options")]
pub struct PortArg {
    /// UDP port of the NetBIOS datagram service [env: MAILSLOT_PORT] [default: 138].
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
}

/// The LAN settings of a subcommand that receives or sends datagrams.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Network options")]
pub struct NetworkArgs {
    #[command(flatten)]
    pub port: PortArg,
    /// Local address to bind the network role's socket to [default: 0.0.0.0].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<Ipv4Addr>,
    /// Broadcast address for group targets (repeatable; default: every interface's).
    #[arg(long = "broadcast", value_name = "ADDR")]
    pub broadcast: Vec<Ipv4Addr>,
    /// Our NetBIOS name [env: MAILSLOT_NETBIOS_NAME] (default: the host name, upper case, at
    /// most 15 characters).
    #[arg(long, value_name = "NAME")]
    pub netbios_name: Option<String>,
    /// Our workgroup [env: MAILSLOT_WORKGROUP] [default: WORKGROUP].
    #[arg(long, value_name = "NAME")]
    pub workgroup: Option<String>,
    /// Local mailslots only: never take the network role [env: MAILSLOT_NO_NETWORK=1].
    #[arg(long)]
    pub no_network: bool,
    /// If another program (Samba's nmbd) holds the port, bind alongside it with SO_REUSEADDR:
    /// broadcasts reach both; unicast reaches only the program bound to the interface address
    /// (nmbd), never us.
    #[arg(long)]
    pub share_port: bool,
    /// Deliver every mailslot write the role receives, whatever its destination name.
    #[arg(long)]
    pub accept_any: bool,
    /// Do not answer NetBIOS name queries for our name on UDP 137.
    #[arg(long)]
    pub no_name_service: bool,
}

impl PortArg {
    /// This option, else the one given ahead of the subcommand.
    pub fn or(self, ahead: PortArg) -> PortArg {
        PortArg {
            port: self.port.or(ahead.port),
        }
    }

    /// The port in effect: the option, else MAILSLOT_PORT, else 138.
    pub fn get(self) -> u16 {
        self.port
            .or_else(|| env_value("MAILSLOT_PORT", "a UDP port number"))
            .unwrap_or(mailslot_wire::DATAGRAM_PORT)
    }
}

impl NetworkArgs {
    /// These options, completed by those given ahead of the subcommand.
    pub fn or(self, ahead: NetworkArgs) -> NetworkArgs {
        NetworkArgs {
            port: self.port.or(ahead.port),
            bind: self.bind.or(ahead.bind),
            broadcast: if self.broadcast.is_empty() {
                ahead.broadcast
            } else {
                self.broadcast
            },
            netbios_name: self.netbios_name.or(ahead.netbios_name),
            workgroup: self.workgroup.or(ahead.workgroup),
            no_network: self.no_network || ahead.no_network,
            share_port: self.share_port || ahead.share_port,
            accept_any: self.accept_any || ahead.accept_any,
            no_name_service: self.no_name_service || ahead.no_name_service,
        }
    }
}

/// The settings a subcommand runs with: its scope and network options resolved, defaults
/// filled in.
#[derive(Debug, Clone)]
pub struct Global {
    pub dir: Option<PathBuf>,
    pub global: bool,
    pub port: u16,
    pub bind: Option<Ipv4Addr>,
    pub broadcast: Vec<Ipv4Addr>,
    pub netbios_name: Option<String>,
    pub workgroup: String,
    pub no_network: bool,
    pub share_port: bool,
    pub accept_any: bool,
    pub no_name_service: bool,
    pub log: LogArgs,
}

impl Global {
    pub fn new(scope: ScopeArgs, network: NetworkArgs, log: LogArgs) -> Global {
        Global {
            dir: scope
                .dir
                .or_else(|| env_value("MAILSLOT_DIR", "a directory")),
            global: scope.global,
            port: network.port.get(),
            bind: network.bind,
            broadcast: network.broadcast,
            netbios_name: network
                .netbios_name
                .or_else(|| env_value("MAILSLOT_NETBIOS_NAME", "a NetBIOS name")),
            workgroup: network
                .workgroup
                .or_else(|| env_value("MAILSLOT_WORKGROUP", "a workgroup name"))
                .unwrap_or_else(|| "WORKGROUP".to_owned()),
            no_network: network.no_network
                || env_value::<String>("MAILSLOT_NO_NETWORK", "a flag").is_some_and(|v| {
                    !matches!(
                        v.to_ascii_lowercase().as_str(),
                        "" | "0" | "false" | "no" | "off"
                    )
                }),
            share_port: network.share_port,
            accept_any: network.accept_any,
            no_name_service: network.no_name_service,
            log,
        }
    }
}

/// The value of environment variable `name` (unset or empty: `None`). A value that does not
/// parse is a usage error: one line naming the variable, exit 2.
fn env_value<T: std::str::FromStr>(name: &str, what: &str) -> Option<T> {
    let value = std::env::var_os(name)?;
    let text = value.to_string_lossy();
    if text.is_empty() {
        return None;
    }
    match text.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            eprintln!("mailslot: {name}={text:?} is not {what}");
            std::process::exit(2);
        }
    }
}
