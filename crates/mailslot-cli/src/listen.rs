//! `mailslot listen NAME`: open NAME as a server and print each message.

use std::time::Duration;

use anyhow::Context;
use mailslot::{Delivery, ErrorKind, Server, Source, Timeout};
use serde_json::json;

use crate::common::{self, emit_line};
use crate::{Global, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mailslot (`NAME` or `\\.\mailslot\NAME`).
    pub name: String,
    /// Share the name with other instances (each gets every message, or one: --deliver).
    #[arg(long)]
    pub shared: bool,
    /// Delivery of a shared name: every instance gets every message, or exactly one does.
    #[arg(long, value_parser = ["all", "one"], default_value = "all")]
    pub deliver: String,
    /// Largest message accepted, in bytes (0: the implementation maximum, 1 MiB).
    #[arg(long, default_value_t = 0)]
    pub max_size: usize,
    /// Queue capacity: how many bytes of messages (and their record headers) a listener may
    /// lag behind before the oldest are dropped (and counted); at most 1 GiB (64 MiB for a
    /// global name). A minimum: it is rounded up to hold one largest message (--max-size) at
    /// least, in whole pages; `-v` and `status` show the capacity in effect. The name's first
    /// listener sets it.
    #[arg(long, value_parser = common::parse_capacity, value_name = "BYTES")]
    pub capacity: Option<usize>,
    /// Exit 0 after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Exit 3 when no message arrives within this many milliseconds.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// One JSON object per message.
    #[arg(long)]
    pub json: bool,
    /// Parse each body as a Messenger popup (From\0To\0Text\0).
    #[arg(long)]
    pub messenger: bool,
    /// With --global: permission bits of a name this creates, in octal (read = may listen,
    /// write = may send; default 660).
    #[arg(long, value_parser = common::parse_mode)]
    pub mode: Option<u32>,
    /// With --global: the group of a name this creates (a name or a gid; you must be a member).
    #[arg(long, value_parser = common::parse_group)]
    pub group: Option<u32>,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<Outcome> {
    let mut builder = Server::builder(&args.name)
        .shared(args.shared)
        .delivery(if args.deliver == "one" {
            Delivery::One
        } else {
            Delivery::All
        })
        .max_message_size(args.max_size)
        .scope(common::scope(global))
        .read_timeout(match args.timeout {
            Some(ms) => Timeout::After(Duration::from_millis(ms)),
            None => Timeout::Forever,
        });
    if let Some(capacity) = args.capacity {
        builder = builder.capacity(capacity);
    }
    if let Some(mode) = args.mode {
        builder = builder.mode(mode);
    }
    if let Some(group) = args.group {
        builder = builder.group(group);
    }
    if !global.global && (args.mode.is_some() || args.group.is_some()) {
        anyhow::bail!("--mode and --group apply to global names (add --global)");
    }
    let mut server = builder.open().context("cannot listen")?;
    tracing::debug!(
        "mailslot \"{}\": capacity {} bytes of messages and headers{}",
        server.name(),
        server.capacity(),
        match args.capacity {
            Some(asked) => format!(
                " (asked for {asked}: rounded up to one largest message and whole pages, or \
                 set by the name's first listener)"
            ),
            None => String::new(),
        }
    );
    // A global name's network delivery is the host service's (it holds the port). The watch
    // says (once, before the first message) what the role does for this process.
    let _role = if global.global {
        None
    } else {
        crate::network::start_role(global, server.dir())?
    };
    let listening = format!(
        "listening on \"{}\"{} (instance {:016x}); Ctrl-C to stop",
        server.name(),
        if args.shared { " (shared)" } else { "" },
        server.instance_id()
    );
    // With --json the command says only what it must on stderr (scripts read its output).
    if args.json {
        tracing::debug!("{listening}");
    } else {
        tracing::info!("{listening}");
    }
    let mut received = 0u64;
    while args.count.is_none_or(|count| received < count) {
        let message = match server.recv() {
            Ok(message) => message,
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                let line = format!(
                    "mailslot \"{}\": no message within {} ms",
                    server.name(),
                    args.timeout.unwrap_or(0)
                );
                if args.json {
                    tracing::debug!("{line}");
                } else {
                    tracing::info!("{line}");
                }
                return Ok(Outcome::Timeout);
            }
            Err(e) => return Err(e).context("cannot read"),
        };
        received += 1;
        let messenger = args
            .messenger
            .then(|| mailslot_wire::MessengerMessage::parse(&message.data).ok())
            .flatten();
        if args.json {
            let messenger_json = messenger
                .as_ref()
                .map(|m| json!({"from": m.from_text(), "to": m.to_text(), "text": m.text_text()}));
            emit_line(&common::message_json(server.name(), &message, messenger_json).to_string())?;
        } else {
            let from = match &message.source {
                Source::Local { pid, uid } => format!("local pid {pid} uid {uid}"),
                Source::Network {
                    ip,
                    port,
                    netbios_name,
                    ..
                } => format!("{} {ip}:{port}", common::safe(netbios_name)),
            };
            if message.lost > 0 {
                emit_line(&format!("({} messages lost before this one)", message.lost))?;
            }
            match &messenger {
                Some(m) => emit_line(&format!(
                    "[{from}] popup from {} to {}: {}",
                    common::safe(&m.from_text()),
                    common::safe(&m.to_text()),
                    common::safe(&m.text_text())
                ))?,
                None => emit_line(&format!(
                    "[{from}] {} bytes: {}",
                    message.data.len(),
                    common::printable(&message.data)
                ))?,
            }
        }
    }
    Ok(Outcome::Success)
}
