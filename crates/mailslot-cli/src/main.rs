//! The `mailslot` command: listen, send, status, serve, decode and demo.
//!
//! Exit codes: 0 success, 1 error (one line on stderr naming the mailslot and the cause),
//! 2 usage (bad options, arguments or targets, caught by clap or later), 3 timeout.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod chat;
mod common;
mod decode;
mod demo;
mod listen;
mod network;
mod pcap;
mod send;
mod serve;
mod status;

/// Options shared by every subcommand (DESIGN.md §4); each also reads an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Runtime directory holding this host's mailslots.
    #[arg(long, env = "MAILSLOT_DIR", global = true)]
    pub dir: Option<std::path::PathBuf>,
    /// Use the global scope: names shared between users through the host service
    /// (`mailslot serve --system`), instead of the user's own directory.
    #[arg(long, global = true)]
    pub global: bool,
    /// UDP port of the NetBIOS datagram service.
    #[arg(long, env = "MAILSLOT_PORT", default_value_t = 138, global = true)]
    pub port: u16,
    /// Local address to bind the network role's socket to.
    #[arg(long, global = true)]
    pub bind: Option<std::net::Ipv4Addr>,
    /// Broadcast address for group targets (repeatable; default: every interface's).
    #[arg(long = "broadcast", global = true)]
    pub broadcast: Vec<std::net::Ipv4Addr>,
    /// Our NetBIOS name (default: the host name, upper case, at most 15 characters).
    #[arg(long, env = "MAILSLOT_NETBIOS_NAME", global = true)]
    pub netbios_name: Option<String>,
    /// Our workgroup.
    #[arg(
        long,
        env = "MAILSLOT_WORKGROUP",
        default_value = "WORKGROUP",
        global = true
    )]
    pub workgroup: String,
    /// Local mailslots only: never take the network role.
    #[arg(long, env = "MAILSLOT_NO_NETWORK", global = true,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_network: bool,
    /// If another program (Samba's nmbd) holds the port, bind alongside it with SO_REUSEADDR:
    /// broadcasts reach both; unicast reaches only the program bound to the interface address
    /// (nmbd), never us.
    #[arg(long, global = true)]
    pub share_port: bool,
    /// Deliver every mailslot write the role receives, whatever its destination name.
    #[arg(long, global = true)]
    pub accept_any: bool,
    /// Do not answer NetBIOS name queries for our name on UDP 137.
    #[arg(long, global = true)]
    pub no_name_service: bool,
}

#[derive(Debug, Parser)]
#[command(
    name = "mailslot",
    version,
    about = "Shared mailslots for Linux, Windows-compatible on the LAN"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open a mailslot as a server and print each message.
    Listen(listen::Args),
    /// Send one message to a local mailslot, a host, a workgroup or `*`.
    Send(send::Args),
    /// Show the mailslots of this host, their instances, and the network role.
    Status(status::Args),
    /// Decode one NetBIOS datagram (hex, raw file, stdin) or every datagram of a pcap file.
    Decode(decode::Args),
    /// A self-contained show of shared mailslots on this host (no privileges needed).
    Demo(demo::Args),
    /// A terminal messenger (WinPopup-like) over the shared MESSNGR mailslot.
    Chat(chat::Args),
    /// Hold the host's network role (UDP 138) until SIGINT/SIGTERM, delivering to local mailslots.
    Serve(serve::Args),
}

/// What a subcommand asks `main` to exit with, beyond plain success.
#[derive(Debug)]
pub enum Outcome {
    Success,
    Timeout,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Listen(args) => listen::run(&cli.global, args),
        Command::Send(args) => send::run(&cli.global, args),
        Command::Status(args) => status::run(&cli.global, args),
        Command::Decode(args) => decode::run(&cli.global, args),
        Command::Demo(args) => demo::run(&cli.global, args),
        Command::Chat(args) => chat::run(&cli.global, args),
        Command::Serve(args) => serve::run(&cli.global, args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Timeout) => ExitCode::from(3),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            if let Some(line) = bad_setting(&err) {
                eprintln!("mailslot: {line}");
                return ExitCode::from(2);
            }
            eprintln!("mailslot: {err:#}");
            ExitCode::from(if is_usage(&err) { 2 } else { 1 })
        }
    }
}

/// A usage error found after clap: the arguments parse but cannot mean anything (exit 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A target or name that no datagram can carry, or any [`UsageError`].
fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause
                .downcast_ref::<mailslot::net::NetError>()
                .is_some_and(|e| matches!(e, mailslot::net::NetError::InvalidTarget { .. }))
    })
}

/// A bad `--netbios-name` or `--workgroup`, in one line naming the option.
fn bad_setting(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(
        |cause| match cause.downcast_ref::<mailslot::net::NetError>()? {
            mailslot::net::NetError::InvalidSetting {
                setting,
                value,
                reason,
            } => {
                let option = match *setting {
                    "workgroup" => "--workgroup (MAILSLOT_WORKGROUP)",
                    _ => "--netbios-name (MAILSLOT_NETBIOS_NAME)",
                };
                Some(format!("invalid {option} {value:?}: {reason}"))
            }
            _ => None,
        },
    )
}

/// A closed stdout (`mailslot listen | head`) is a normal way to stop, not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
