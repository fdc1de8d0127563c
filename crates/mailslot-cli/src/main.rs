//! The `mailslot` command: listen, send, status, serve, decode, demo, chat, and its own
//! completions and man pages.
//!
//! Exit codes: 0 success, 1 error (one line on stderr naming the mailslot and the cause),
//! 2 usage (bad options, arguments or targets, caught by clap or later), 3 timeout.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod chat;
mod common;
mod decode;
mod demo;
mod help;
mod listen;
mod logging;
mod network;
mod options;
mod pcap;
mod send;
mod serve;
mod status;

pub use options::Global;
use options::{LogArgs, NetworkArgs, PortArg, ScopeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "mailslot",
    version,
    about = "Shared mailslots for Linux, Windows-compatible on the LAN",
    after_help = help::after(help::TOP),
    subcommand_value_name = "COMMAND"
)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    // Also accepted here, ahead of the subcommand (`mailslot --global listen NEWS`), for the
    // subcommands that take them.
    #[command(flatten)]
    scope: ScopeArgs,
    #[command(flatten)]
    network: NetworkArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open a mailslot as a server and print each message.
    #[command(after_help = help::after(help::LISTEN))]
    Listen {
        #[command(flatten)]
        args: listen::Args,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        network: NetworkArgs,
    },
    /// Send one message to a local mailslot, a host, a workgroup or `*`.
    #[command(after_help = help::after(help::SEND))]
    Send {
        #[command(flatten)]
        args: send::Args,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        network: NetworkArgs,
    },
    /// Show the mailslots of this host, their instances, and the network role.
    #[command(after_help = help::after(help::STATUS))]
    Status {
        #[command(flatten)]
        args: status::Args,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        port: PortArg,
    },
    /// Decode one NetBIOS datagram (hex, raw file, stdin) or every datagram of a pcap file.
    #[command(after_help = help::after(help::DECODE))]
    Decode {
        #[command(flatten)]
        args: decode::Args,
        #[command(flatten)]
        port: PortArg,
    },
    /// A self-contained show of shared mailslots on this host (no privileges needed).
    #[command(after_help = help::after(help::DEMO))]
    Demo(demo::Args),
    /// A terminal messenger (WinPopup-like) over the shared MESSNGR mailslot.
    #[command(after_help = help::after(help::CHAT))]
    Chat {
        #[command(flatten)]
        args: chat::Args,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        network: NetworkArgs,
    },
    /// Hold the host's network role (UDP 138) until SIGINT/SIGTERM, delivering to local mailslots.
    #[command(after_help = help::after(help::SERVE))]
    Serve {
        #[command(flatten)]
        args: serve::Args,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        network: NetworkArgs,
    },
    /// Print the shell completion script of mailslot (bash, zsh, fish, elvish, powershell).
    #[command(after_help = help::after(help::COMPLETIONS))]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page of mailslot, or of one of its commands, as roff.
    #[command(after_help = help::after(help::MAN))]
    Man {
        /// The command whose page to print (mailslot-COMMAND(1)); none: mailslot(1).
        command: Option<String>,
    },
}

/// What a subcommand asks `main` to exit with, beyond plain success.
#[derive(Debug)]
pub enum Outcome {
    Success,
    Timeout,
}

fn main() -> ExitCode {
    let cli = parse();
    logging::init(cli.log);
    let Cli {
        log,
        scope: scope_ahead,
        network: network_ahead,
        command,
    } = cli;
    let settings = |scope: ScopeArgs, network: NetworkArgs| {
        Global::new(
            scope.or(scope_ahead.clone()),
            network.or(network_ahead.clone()),
            log,
        )
    };
    let only_port = |port: PortArg| NetworkArgs {
        port,
        ..NetworkArgs::default()
    };
    let result = match command {
        Command::Listen {
            args,
            scope,
            network,
        } => listen::run(&settings(scope, network), args),
        Command::Send {
            args,
            scope,
            network,
        } => send::run(&settings(scope, network), args),
        Command::Status { args, scope, port } => {
            status::run(&settings(scope, only_port(port)), args)
        }
        Command::Decode { args, port } => {
            decode::run(&settings(ScopeArgs::default(), only_port(port)), args)
        }
        Command::Demo(args) => demo::run(args),
        Command::Chat {
            args,
            scope,
            network,
        } => chat::run(&settings(scope, network), args),
        Command::Serve {
            args,
            scope,
            network,
        } => serve::run(&settings(scope, network), args),
        Command::Completions { shell } => Ok(help::completions(shell, Cli::command())),
        Command::Man { command } => help::man(Cli::command(), command.as_deref()),
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
            eprintln!("mailslot: {}", error_line(&err));
            ExitCode::from(if is_usage(&err) { 2 } else { 1 })
        }
    }
}

/// The command line, parsed; exits 2 (usage) when an option given ahead of the subcommand is
/// one that subcommand does not take (`mailslot --share-port decode`).
fn parse() -> Cli {
    let mut command = Cli::command();
    let matches = command.get_matches_mut();
    if let Some((name, _)) = matches.subcommand() {
        let sub = command
            .find_subcommand(name)
            .expect("clap parsed a subcommand it knows");
        let stray = command.get_arguments().find(|arg| {
            let id = arg.get_id();
            !arg.is_global_set()
                && matches.value_source(id.as_str()) == Some(ValueSource::CommandLine)
                && !sub.get_arguments().any(|a| a.get_id() == id)
        });
        if let Some(arg) = stray {
            let option = arg
                .get_long()
                .map_or_else(|| arg.get_id().to_string(), |long| format!("--{long}"));
            let message = format!("{option} does not apply to `mailslot {name}`");
            command
                .error(clap::error::ErrorKind::ArgumentConflict, message)
                .exit();
        }
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The error and its causes on one line, each said once: the library's errors already end
/// with their cause's text, which `{:#}` would repeat.
fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
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
