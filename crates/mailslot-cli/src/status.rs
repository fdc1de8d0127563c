//! `mailslot status [NAME]`: names, instances, and the network role.

use anyhow::Context;
use mailslot::MailslotName;
use serde_json::json;

use crate::common::{self, emit_line};
use crate::{Global, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this mailslot.
    pub name: Option<String>,
    /// One JSON object per mailslot, then one for the network role (DESIGN.md §4).
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<Outcome> {
    let dir = common::scope(global).dir().context("cannot read status")?;
    let names = match &args.name {
        Some(name) if global.global => {
            let name = MailslotName::parse(name)?;
            let wanted = name.as_str().to_lowercase();
            mailslot::service::status()
                .context("cannot read status")?
                .into_iter()
                .filter(|s| s.name.to_lowercase() == wanted)
                .collect()
        }
        Some(name) => {
            let name = MailslotName::parse(name)?;
            mailslot::status_of(&dir, &name)?.into_iter().collect()
        }
        None if global.global => mailslot::service::status().context("cannot read status")?,
        None => mailslot::list(&dir).context("cannot read status")?,
    };
    if args.json {
        for status in &names {
            let instances: Vec<_> = status
                .instances
                .iter()
                .map(|i| {
                    json!({"id": format!("{:016x}", i.id), "pid": i.pid, "uid": i.uid,
                           "delivered": i.delivered, "lost": i.lost, "backlog": i.backlog,
                           "corrupt": i.corrupt})
                })
                .collect();
            emit_line(
                &json!({
                    "mailslot": status.name,
                    "shared": status.shared,
                    "deliver": if status.deliver_one { "one" } else { "all" },
                    "refused": status.refused,
                    "repaired": status.repaired,
                    "damaged": status.damaged,
                    "instances": instances,
                })
                .to_string(),
            )?;
        }
        emit_line(&json!({"network": crate::network::status_json(global, &dir)}).to_string())?;
    } else {
        emit_line(&format!("runtime directory: {}", dir.display()))?;
        if names.is_empty() {
            emit_line("no mailslots open")?;
        }
        for status in &names {
            emit_line(&format!(
                "{}  {}{}",
                common::safe(&status.name),
                if status.shared { "shared" } else { "exclusive" },
                if status.shared {
                    if status.deliver_one {
                        ", deliver one"
                    } else {
                        ", deliver all"
                    }
                } else {
                    ""
                }
            ))?;
            if status.damaged {
                emit_line(
                    "  DAMAGED: its file was truncated by another process; writes fail until \
                     every instance below has closed it (their counters are unknown)",
                )?;
            }
            emit_line("  instance          pid      uid   delivered  lost  backlog")?;
            for i in &status.instances {
                emit_line(&format!(
                    "  {:016x}  {:<8} {:<5} {:>9}  {:>4}  {:>7}",
                    i.id, i.pid, i.uid, i.delivered, i.lost, i.backlog
                ))?;
            }
            let met: u64 = status.instances.iter().map(|i| i.corrupt).sum();
            if status.repaired + met > 0 {
                emit_line(&format!(
                    "  damaged: another process wrote into this name's file ({} repairs by \
                     writers, {met} damaged records or words skipped by readers)",
                    status.repaired
                ))?;
            }
        }
        emit_line(&crate::network::status_line(global, &dir))?;
    }
    Ok(Outcome::Success)
}
