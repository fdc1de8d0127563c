//! `mailslot send NAME [TEXT]`: write one message to a local mailslot, a host, a workgroup
//! or `*`.

use std::io::Read;

use anyhow::{bail, Context};
use mailslot::{Target, Writer};

use crate::common;
use crate::{Global, Outcome, UsageError};

#[derive(Debug, clap::Args)]
// A message must be given: a forgotten TEXT is a usage error, not an empty message (an empty
// one is `""` or `--file /dev/null`).
#[command(group(clap::ArgGroup::new("message").required(true).args(["text", "file", "stdin"])))]
pub struct Args {
    /// The mailslot (`NAME`, `\\.\mailslot\NAME`, or `\\HOST\mailslot\NAME`).
    pub name: String,
    /// The message text (or use --file / --stdin).
    pub text: Option<String>,
    /// `.` (this host, default), a host (NetBIOS name, DNS name or IP), a workgroup, or `*`.
    #[arg(long, default_value = ".")]
    pub to: String,
    /// Read the message from a file.
    #[arg(long, conflicts_with_all = ["text", "stdin"])]
    pub file: Option<std::path::PathBuf>,
    /// Read the message from standard input.
    #[arg(long, conflicts_with = "text")]
    pub stdin: bool,
    /// Send a Messenger popup (From\0To\0Text\0) to MESSNGR.
    #[arg(long, requires_all = ["from", "to_user"])]
    pub messenger: bool,
    /// Messenger sender name.
    #[arg(long)]
    pub from: Option<String>,
    /// Messenger recipient (user or computer name; `*` puts the workgroup there, as a
    /// broadcast's recipient must be).
    #[arg(long)]
    pub to_user: Option<String>,
    /// Print the datagram that would be sent as lower-case hex; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// TARGET is a workgroup (broadcast), not a host.
    #[arg(long)]
    pub group: bool,
    /// Suffix (16th byte, hex) of the destination NetBIOS name, e.g. 1d for a workgroup's
    /// local master browser (default 00; 03 for --messenger to a host).
    #[arg(long, value_parser = parse_suffix)]
    pub suffix: Option<u8>,
}

/// The message body the arguments describe.
fn body(global: &Global, args: &Args) -> anyhow::Result<Vec<u8>> {
    let raw = if let Some(path) = &args.file {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    } else if args.stdin {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        buf
    } else {
        args.text.clone().unwrap_or_default().into_bytes()
    };
    if !args.messenger {
        return Ok(raw);
    }
    let text = String::from_utf8(raw).context("a Messenger text must be UTF-8 on our side")?;
    let from = args.from.as_deref().unwrap_or_default();
    let to = messenger_recipient(global, args)?;
    mailslot_wire::MessengerMessage::encode(from, &to, &text)
        .map_err(|e| anyhow::anyhow!("cannot build the Messenger body: {e}"))
}

/// The Messenger To field. It never starts with `*` (Windows' rule): `*`, everyone, is
/// written as the workgroup's name, as `mailslot chat` does (the `--to` group with `--group`,
/// else ours).
fn messenger_recipient(global: &Global, args: &Args) -> anyhow::Result<String> {
    let to = args.to_user.as_deref().unwrap_or_default();
    match to {
        "*" if args.group => Ok(args.to.to_uppercase()),
        "*" => Ok(global.workgroup.to_uppercase()),
        _ if to.starts_with('*') => Err(UsageError(format!(
            "--to-user {to:?}: a Messenger recipient cannot start with * (give * alone for \
             the workgroup, or a user or computer name)"
        ))
        .into()),
        _ => Ok(to.to_owned()),
    }
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<Outcome> {
    let data = body(global, &args)?;
    let name_arg = if args.messenger && args.name.is_empty() {
        "MESSNGR".to_owned()
    } else {
        args.name.clone()
    };
    let (path_target, name) = Target::parse(&name_arg)?;
    // `--to` wins over a `\\HOST\mailslot\` prefix only when given.
    let target = match (args.to.as_str(), path_target) {
        (".", target) => target,
        ("*", _) => Target::AllInWorkgroup,
        (host, _) => Target::Host(host.to_owned()),
    };
    match target {
        Target::Local if !args.dry_run => {
            let mut writer =
                Writer::open_in(&common::scope(global), name.as_str()).context("cannot send")?;
            writer.write(&data).context("cannot send")?;
            // A global name's write is confirmed by the host service, not just handed to it.
            writer.flush().context("cannot send")?;
            Ok(Outcome::Success)
        }
        Target::Local => {
            bail!("--dry-run shows a network datagram: give --to HOST, WORKGROUP or *")
        }
        remote => crate::network::send_remote(global, &remote, &name, &data, &args),
    }
}

fn parse_suffix(text: &str) -> Result<u8, String> {
    let digits = text
        .trim_start_matches("0x")
        .trim_start_matches('<')
        .trim_end_matches('>');
    u8::from_str_radix(digits, 16).map_err(|_| format!("'{text}' is not a hex byte (e.g. 1d)"))
}
