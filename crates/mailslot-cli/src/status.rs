//! `mailslot status [NAME]`: names, instances, and the network role; `--watch` redraws it.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use mailslot::{MailslotName, MailslotStatus};
use serde_json::json;

use crate::common::{self, emit_line};
use crate::{Global, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this mailslot (exit 1 if it is not open).
    pub name: Option<String>,
    /// One JSON object per mailslot, then one for the network role.
    #[arg(long, conflicts_with = "watch")]
    pub json: bool,
    /// Redraw the table every second until Ctrl-C (a NAME that is not open is shown as such).
    #[arg(long)]
    pub watch: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<Outcome> {
    let dir = common::scope(global).dir().context("cannot read status")?;
    let wanted = args.name.as_deref().map(MailslotName::parse).transpose()?;
    if args.watch {
        return watch(global, &dir, wanted.as_ref());
    }
    let names = names(global, &dir, wanted.as_ref())?;
    if let (Some(name), true) = (&wanted, names.is_empty()) {
        anyhow::bail!(
            "mailslot \"{name}\": not open in {} (no instance has it; `mailslot status` lists \
             the open ones)",
            where_(global, &dir)
        );
    }
    if args.json {
        for status in &names {
            emit_line(&status_json(status).to_string())?;
        }
        emit_line(&json!({"network": crate::network::status_json(global, &dir)}).to_string())?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(table(global, &dir, wanted.as_ref(), &names).as_bytes())?;
        out.flush()?;
    }
    Ok(Outcome::Success)
}

/// The open names of the scope, or the one `wanted` (none when it is not open).
fn names(
    global: &Global,
    dir: &Path,
    wanted: Option<&MailslotName>,
) -> anyhow::Result<Vec<MailslotStatus>> {
    Ok(match wanted {
        Some(name) if global.global => {
            let wanted = name.as_str().to_lowercase();
            mailslot::service::status()
                .context("cannot read status")?
                .into_iter()
                .filter(|s| s.name.to_lowercase() == wanted)
                .collect()
        }
        Some(name) => mailslot::status_of(dir, name)?.into_iter().collect(),
        None if global.global => mailslot::service::status().context("cannot read status")?,
        None => mailslot::list(dir).context("cannot read status")?,
    })
}

/// The scope, for messages: the directory, or the host service's global names.
fn where_(global: &Global, dir: &Path) -> String {
    if global.global {
        "the global scope (the host service)".to_owned()
    } else {
        dir.display().to_string()
    }
}

/// The name of process `pid` as the kernel keeps it (`/proc/PID/comm`, at most 15 bytes),
/// if it can be read.
fn process_name(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end_matches('\n').to_owned())
}

fn status_json(status: &MailslotStatus) -> serde_json::Value {
    let instances: Vec<_> = status
        .instances
        .iter()
        .map(|i| {
            json!({"id": format!("{:016x}", i.id), "pid": i.pid, "uid": i.uid,
                   "process": process_name(i.pid),
                   "delivered": i.delivered, "lost": i.lost, "backlog": i.backlog,
                   "corrupt": i.corrupt})
        })
        .collect();
    json!({
        "mailslot": status.name,
        "shared": status.shared,
        "deliver": if status.deliver_one { "one" } else { "all" },
        "capacity": status.capacity,
        "refused": status.refused,
        "repaired": status.repaired,
        "damaged": status.damaged,
        "instances": instances,
    })
}

/// The human table, one line per row, ending with a newline.
fn table(
    global: &Global,
    dir: &Path,
    wanted: Option<&MailslotName>,
    names: &[MailslotStatus],
) -> String {
    let mut lines = vec![format!("runtime directory: {}", dir.display())];
    match wanted {
        Some(name) if names.is_empty() => lines.push(format!("mailslot \"{name}\": not open")),
        None if names.is_empty() => lines.push("no mailslots open".to_owned()),
        _ => {}
    }
    for status in names {
        let mut head = format!(
            "{}  {}",
            common::safe(&status.name),
            if status.shared { "shared" } else { "exclusive" }
        );
        if status.shared {
            head.push_str(if status.deliver_one {
                ", deliver one"
            } else {
                ", deliver all"
            });
        }
        if let Some(capacity) = status.capacity {
            head.push_str(&format!(", capacity {capacity} bytes"));
        }
        lines.push(head);
        if status.damaged {
            lines.push(
                "  DAMAGED: its file was truncated by another process; writes fail until every \
                 instance below has closed it (their counters are unknown)"
                    .to_owned(),
            );
        }
        lines.push(
            "  instance          pid      uid   process          delivered  lost  backlog"
                .to_owned(),
        );
        for i in &status.instances {
            let process = process_name(i.pid).map_or_else(|| "?".to_owned(), |p| common::safe(&p));
            lines.push(format!(
                "  {:016x}  {:<8} {:<5} {:<15} {:>10}  {:>4}  {:>7}",
                i.id, i.pid, i.uid, process, i.delivered, i.lost, i.backlog
            ));
        }
        let met: u64 = status.instances.iter().map(|i| i.corrupt).sum();
        if status.repaired + met > 0 {
            lines.push(format!(
                "  damaged: another process wrote into this name's file ({} repairs by \
                 writers, {met} damaged records or words skipped by readers)",
                status.repaired
            ));
        }
    }
    lines.push(crate::network::status_line(global, dir));
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// `--watch`: clears the terminal and draws the table every second, until SIGINT or SIGTERM
/// (exit 0). An error reading the status is shown in place of the table, and retried.
fn watch(global: &Global, dir: &Path, wanted: Option<&MailslotName>) -> anyhow::Result<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .context("cannot install a signal handler")?;
    }
    while !stop.load(Ordering::Relaxed) {
        let body = match names(global, dir, wanted) {
            Ok(names) => table(global, dir, wanted, &names),
            Err(e) => format!("{e:#}\n"),
        };
        let now = chrono::Local::now().format("%H:%M:%S");
        let mut out = std::io::stdout().lock();
        // Home, clear the screen, draw: the table stays in place.
        write!(
            out,
            "\x1b[H\x1b[2J{body}\nevery 1 s, {now}; Ctrl-C to stop\n"
        )?;
        out.flush()?;
        drop(out);
        let next = Instant::now() + Duration::from_secs(1);
        while !stop.load(Ordering::Relaxed) && Instant::now() < next {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(Outcome::Success)
}
