//! What `--help` adds after the options (examples, exit codes), shell completions
//! (`mailslot completions SHELL`) and the man pages (`mailslot man [COMMAND]`), all from the
//! one clap definition in `main.rs`, so that they cannot disagree with it.

use std::io::Write;

use anyhow::{bail, Context};

use crate::{Outcome, UsageError};

/// One example: the command line and what it does.
pub type Example = (&'static str, &'static str);

/// The exit codes of every subcommand (README "Using the command" says the same).
pub const EXIT_CODES: [(u8, &str); 4] = [
    (0, "success"),
    (
        1,
        "error (one line on stderr naming the mailslot and the cause)",
    ),
    (
        2,
        "usage (a bad option or argument, or a target no datagram can reach)",
    ),
    (3, "timeout (listen --timeout: no message in time)"),
];

pub const TOP: &[Example] = &[
    (
        "mailslot listen NEWS --shared",
        "in two terminals: both get every message sent to NEWS",
    ),
    (
        "mailslot send NEWS \"hello\"",
        "write to a mailslot of this host",
    ),
    (
        "mailslot send NEWS \"hello\" --to '*'",
        "write to NEWS on every host of the workgroup",
    ),
    (
        "mailslot status --watch",
        "mailslots, instances and the network role, redrawn every second",
    ),
    (
        "mailslot decode < datagram.hex",
        "a NetBIOS datagram (hex) as JSON",
    ),
    (
        "mailslot --global listen NEWS",
        "scope and network options may also come before the command",
    ),
];

pub const LISTEN: &[Example] = &[
    (
        "mailslot listen NEWS --shared",
        "share NEWS with other listeners: each gets every message",
    ),
    (
        "mailslot listen JOBS --shared --deliver one --json",
        "each message to one of the listeners, as one JSON line",
    ),
    (
        "mailslot listen NEWS --count 1 --timeout 5000",
        "exit 0 after one message, 3 if none comes within 5 s",
    ),
    (
        "mailslot --global listen NEWS --shared --mode 660 --group staff",
        "a name shared between users (needs the host service)",
    ),
];

pub const SEND: &[Example] = &[
    (
        "mailslot send NEWS \"hello\"",
        "to a mailslot of this host (exit 1 if nobody listens)",
    ),
    (
        "mailslot send NEWS \"hello\" --to '*'",
        "to NEWS on every host of the workgroup (a broadcast)",
    ),
    (
        "mailslot send NEWS --to SERVER1 --file report.txt",
        "to one host, by NetBIOS name, DNS name or IP address",
    ),
    (
        "mailslot send MESSNGR --messenger --from ME --to-user BOB --to BOBSPC \"hi\"",
        "a Messenger popup (net send, WinPopup)",
    ),
    (
        "mailslot send NEWS \"hello\" --to '*' --dry-run | mailslot decode",
        "show the datagram instead of sending it",
    ),
];

pub const STATUS: &[Example] = &[
    (
        "mailslot status",
        "every open mailslot: capacity, instances and their processes; the network role",
    ),
    (
        "mailslot status NEWS --json",
        "one mailslot as JSON (exit 1 if it is not open)",
    ),
    (
        "mailslot status --watch",
        "the table, redrawn every second until Ctrl-C",
    ),
];

pub const DECODE: &[Example] = &[
    (
        "mailslot decode '11 02 12 34 c0 a8 01 0a ...'",
        "hex on the command line (whitespace allowed)",
    ),
    ("mailslot decode < datagram.hex", "hex on standard input"),
    (
        "mailslot decode --file datagram.bin",
        "raw bytes from a file (`-`: from standard input)",
    ),
    (
        "mailslot decode --pcap capture.pcapng",
        "every datagram of a capture, one JSON line each",
    ),
    (
        "mailslot decode --port 137 --pcap capture.pcap",
        "the name-service packets of a capture",
    ),
];

pub const DEMO: &[Example] = &[(
    "mailslot demo",
    "shared names, one order for all, a killed instance, `one` delivery",
)];

pub const CHAT: &[Example] = &[
    ("mailslot chat", "popups from and to the whole workgroup"),
    (
        "mailslot chat --from ALICE --to BOB",
        "start with BOB as the target",
    ),
    ("mailslot --no-network chat", "this host only"),
];

pub const SERVE: &[Example] = &[
    (
        "sudo mailslot serve",
        "hold UDP 138 for root's own mailslots until Ctrl-C",
    ),
    (
        "sudo systemctl enable --now mailslot",
        "the host service (`mailslot serve --system`) for every user",
    ),
    (
        "mailslot serve --port 13800 -v",
        "an unprivileged port, one line per datagram delivered",
    ),
];

pub const COMPLETIONS: &[Example] = &[
    (
        "mailslot completions bash > ~/.local/share/bash-completion/completions/mailslot",
        "bash (the .deb installs all three)",
    ),
    (
        "mailslot completions zsh > ~/.zfunc/_mailslot",
        "zsh (with fpath+=~/.zfunc before compinit)",
    ),
    (
        "mailslot completions fish > ~/.config/fish/completions/mailslot.fish",
        "fish",
    ),
];

pub const MAN: &[Example] = &[
    (
        "mailslot man | man -l -",
        "read the page without installing it",
    ),
    (
        "mailslot man listen > mailslot-listen.1",
        "the page of one command",
    ),
];

/// The text after a command's options: its examples and the exit codes.
pub fn after(examples: &[Example]) -> String {
    let mut text = String::from("Examples:\n");
    for (command, what) in examples {
        text.push_str(&format!("  {command}\n      {what}\n"));
    }
    text.push_str("\nExit codes:\n");
    for (code, meaning) in EXIT_CODES {
        text.push_str(&format!("  {code}  {meaning}\n"));
    }
    text
}

/// `mailslot completions SHELL`: the completion script on standard output.
pub fn completions(shell: clap_complete::Shell, mut command: clap::Command) -> Outcome {
    clap_complete::generate(shell, &mut command, "mailslot", &mut std::io::stdout());
    Outcome::Success
}

/// `mailslot man [COMMAND]`: the roff source of `mailslot(1)` or `mailslot-COMMAND(1)`.
pub fn man(command: clap::Command, page: Option<&str>) -> anyhow::Result<Outcome> {
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let top = page.is_none();
    let (page_command, examples) = match page {
        None => (command, TOP),
        Some(name) => {
            let Some(sub) = command.find_subcommand(name) else {
                bail!(UsageError(format!(
                    "no command {name:?}: `mailslot man` knows {}",
                    command
                        .get_subcommands()
                        .map(|c| c.get_name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            (sub.clone(), examples_of(name))
        }
    };
    let versioned = page_command.get_version().is_some();
    let man = clap_mangen::Man::new(page_command);
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    if top {
        man.render_subcommands_section(&mut page)?;
    }
    page.extend_from_slice(roff_extra(examples).as_bytes());
    if versioned {
        man.render_version_section(&mut page)?;
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&page)
        .and_then(|()| out.flush())
        .context("cannot write the man page")?;
    Ok(Outcome::Success)
}

/// The examples of subcommand `name` (the man page shows the same as `--help`).
fn examples_of(name: &str) -> &'static [Example] {
    match name {
        "listen" => LISTEN,
        "send" => SEND,
        "status" => STATUS,
        "decode" => DECODE,
        "demo" => DEMO,
        "chat" => CHAT,
        "serve" => SERVE,
        "completions" => COMPLETIONS,
        "man" => MAN,
        _ => &[],
    }
}

/// EXAMPLES and EXIT STATUS in roff.
fn roff_extra(examples: &[Example]) -> String {
    let mut roff = String::from(".SH EXAMPLES\n");
    for (command, what) in examples {
        roff.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff_escape(command),
            roff_escape(what)
        ));
    }
    roff.push_str(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in EXIT_CODES {
        roff.push_str(&format!(".TP\n\\fB{code}\\fR\n{}\n", roff_escape(meaning)));
    }
    roff
}

/// Text safe in a roff line: backslashes and dashes escaped, no line starting with a dot or
/// a quote (a request).
fn roff_escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_text_is_escaped() {
        assert_eq!(roff_escape("a-b \\x"), "a\\-b \\ex");
        assert_eq!(roff_escape(".hidden"), "\\&.hidden");
    }
}
