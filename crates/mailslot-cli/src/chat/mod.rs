//! `mailslot chat`: a terminal messenger (WinPopup-like) over the shared `MESSNGR` mailslot.
//!
//! Every chat opens `MESSNGR` shared, so each window on a host (each user of a terminal
//! server, each terminal) sees every popup. Messages use the Messenger body
//! `From\0To\0Text\0` in code page 850 (docs/wire.md, Messenger). Targets: `.` this host, `*`
//! (or the workgroup's name) everyone, or a user, host or workgroup name, or an IP address.
//!
//! Layout of the code: [`model`] holds every rule and is pure (unit-tested); [`ui`] draws it;
//! [`text`] makes received bytes safe to show; [`lan`] is the only code that uses the network;
//! this file wires threads, the terminal and sends together.
//!
//! Threads: the library's callback thread reads `MESSNGR`; one thread reads the terminal, one
//! waits for signals, one sends (a name lookup may take a second), one follows the network
//! role. They all feed one channel; the main thread blocks on it and redraws after each batch.

mod lan;
mod model;
mod text;
mod ui;

use std::io::IsTerminal;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Instant;

use anyhow::{bail, Context};
use crossterm::event::{
    DisableBracketedPaste, EnableBracketedPaste, Event as TermEvent, KeyCode, KeyEvent,
    KeyEventKind, KeyModifiers,
};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use mailslot::{Callback, Message, Scope, Server, Writer};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use self::model::{Action, Key, Me, Model, SendRequest, Stamp, MAILSLOT, NAME_MAX};
use crate::{common, Global, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Your name as the sender (Messenger From; default: $USER, at most 15 characters).
    #[arg(long)]
    pub from: Option<String>,
    /// The first target: `.` this host, `*` everyone, or a user, host or workgroup name.
    #[arg(long, default_value = "*")]
    pub to: String,
    /// Ring the terminal's bell when a popup arrives.
    #[arg(long)]
    pub bell: bool,
}

/// Everything the main loop reacts to.
#[derive(Debug)]
pub enum Event {
    Terminal(TermEvent),
    TerminalGone,
    Message(Message),
    ReadFailed(String),
    Sent(u64, Result<String, String>),
    Role(model::RoleView),
    Signal,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<Outcome> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!(
            "mailslot chat needs a terminal (standard input and output); in scripts use \
             `mailslot send MESSNGR --messenger` and `mailslot listen MESSNGR --messenger`"
        );
    }
    let mut me = identity(global, &args)?;
    let scope = common::scope(global);
    let server = Server::builder(MAILSLOT)
        .shared(true)
        .scope(scope.clone())
        // A global MESSNGR is the host's popup bus, as on a Windows terminal server: every
        // user may read and write it (user-scope names are the user's own anyway).
        .mode(0o666)
        .open()
        .with_context(|| format!("mailslot \"{MAILSLOT}\": cannot open it for the chat"))?;
    // Whoever created MESSNGR may have given it a smaller maximum than ours.
    me.local_limit = match server.info().max_message_size {
        0 => model::LOCAL_LIMIT,
        max => max.min(model::LOCAL_LIMIT),
    };
    let (tx, rx) = mpsc::channel();

    // A global MESSNGR gets the LAN's popups from the host service; our own sends go out
    // through our user's runtime directory (its network role, if any, else an ephemeral port).
    let via_service = scope == Scope::Global;
    let net_dir = if via_service {
        Scope::User
            .dir()
            .context("cannot use the user's runtime directory")?
    } else {
        server.dir().to_path_buf()
    };
    let net_config = me
        .network
        .then(|| lan::config(global, &net_dir, &me.netbios_name, &me.workgroup));
    let _role = match &net_config {
        Some(config) if via_service => {
            let _ = tx.send(Event::Role(model::RoleView::ViaService {
                port: config.port,
            }));
            None
        }
        Some(config) => Some(lan::start_role(config.clone(), tx.clone())?),
        None => None,
    };
    let reader = tx.clone();
    let _callback = Callback::spawn_with_errors(server, move |result| {
        let _ = reader.send(match result {
            Ok(message) => Event::Message(message),
            Err(e) => Event::ReadFailed(e.to_string()),
        });
    })
    .context("cannot start reading MESSNGR")?;
    let sends = spawn_sender(scope, net_config, tx.clone())?;
    spawn_terminal_reader(tx.clone())?;
    spawn_signal_watcher(tx)?;

    let mut model = Model::new(me, &args.to);
    let mut screen = Screen::enter()?;
    main_loop(&mut screen, &mut model, &rx, &sends, args.bell)?;
    drop(screen);
    Ok(Outcome::Success)
}

fn main_loop(
    screen: &mut Screen,
    model: &mut Model,
    rx: &Receiver<Event>,
    sends: &Sender<SendRequest>,
    bell: bool,
) -> anyhow::Result<()> {
    loop {
        let received = model.received;
        screen
            .terminal
            .draw(|frame| ui::draw(frame, model))
            .context("cannot draw")?;
        let Ok(mut event) = rx.recv() else {
            return Ok(());
        };
        // Handle everything that is waiting before drawing again.
        loop {
            match handle(model, event) {
                Some(Action::Quit) => return Ok(()),
                Some(Action::Redraw) => screen.terminal.clear().context("cannot redraw")?,
                Some(Action::Send(request)) => {
                    let _ = sends.send(request);
                }
                None => {}
            }
            match rx.try_recv() {
                Ok(next) => event = next,
                Err(_) => break,
            }
        }
        if bell && model.received > received {
            use std::io::Write;
            let out = screen.terminal.backend_mut();
            out.write_all(b"\x07")
                .and_then(|()| out.flush())
                .context("cannot ring the bell")?;
        }
    }
}

fn now() -> Stamp {
    Stamp {
        at: Instant::now(),
        clock: chrono::Local::now().format("%H:%M:%S").to_string(),
    }
}

fn handle(model: &mut Model, event: Event) -> Option<Action> {
    let stamp = now();
    match event {
        Event::Terminal(TermEvent::Key(key)) => map_key(key).and_then(|k| model.on_key(k, &stamp)),
        Event::Terminal(TermEvent::Paste(text)) => {
            model.on_paste(&text);
            None
        }
        Event::Terminal(_) => None,
        Event::TerminalGone | Event::Signal => Some(Action::Quit),
        Event::Message(message) => {
            model.on_message(&message, &stamp);
            None
        }
        Event::ReadFailed(why) => {
            model.on_report(&format!("reading MESSNGR stopped: {why}"), &stamp);
            None
        }
        Event::Sent(id, result) => {
            model.on_send_result(id, result);
            None
        }
        Event::Role(view) => {
            model.on_role(view, &stamp);
            None
        }
    }
}

/// The terminal's keys as the model's.
fn map_key(key: KeyEvent) -> Option<Key> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c') if ctrl => Key::Interrupt,
        KeyCode::Char('d') if ctrl => Key::EndOfInput,
        KeyCode::Char('u') if ctrl => Key::ClearLine,
        KeyCode::Char('w') if ctrl => Key::DeleteWord,
        KeyCode::Char('a') if ctrl => Key::Home,
        KeyCode::Char('e') if ctrl => Key::End,
        KeyCode::Char('l') if ctrl => Key::Redraw,
        KeyCode::Char('h') if ctrl => Key::Backspace,
        KeyCode::Char(_) if ctrl || key.modifiers.contains(KeyModifiers::ALT) => return None,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Delete => Key::Delete,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Esc => Key::Esc,
        _ => return None,
    })
}

/// Who we are: From from `--from` or the login name, the host's NetBIOS name and workgroup.
fn identity(global: &Global, args: &Args) -> anyhow::Result<Me> {
    let netbios_name = match &global.netbios_name {
        Some(name) => name.to_uppercase(),
        None => lan::default_netbios_name(),
    };
    let workgroup = global.workgroup.to_uppercase();
    for (what, name) in [
        ("--netbios-name", &netbios_name),
        ("--workgroup", &workgroup),
    ] {
        if name.is_empty()
            || name.len() > NAME_MAX
            || !name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'.' && b != b'*')
        {
            bail!(
                "{what} {name:?}: a NetBIOS name has 1 to {NAME_MAX} ASCII characters, no dot or *"
            );
        }
    }
    let from = match &args.from {
        Some(from) => {
            check_from(from)?;
            from.clone()
        }
        None => {
            let user = std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_default();
            let user: String = user.chars().take(NAME_MAX).collect();
            if check_from(&user).is_ok() {
                user
            } else {
                netbios_name.clone()
            }
        }
    };
    Ok(Me {
        from,
        netbios_name,
        workgroup,
        pid: std::process::id(),
        uid: common::my_uid(),
        network: !global.no_network,
        local_limit: model::LOCAL_LIMIT,
        quiet: global.log.quiet,
    })
}

fn check_from(from: &str) -> anyhow::Result<()> {
    if from.is_empty() || from.chars().count() > NAME_MAX {
        bail!("--from {from:?}: give 1 to {NAME_MAX} characters");
    }
    if from.chars().any(|c| c.is_control() || c == '\0')
        || mailslot_wire::cp850::encode(from).is_err()
    {
        bail!("--from {from:?}: the sender name must be printable and in code page 850");
    }
    Ok(())
}

/// The sender thread: local writes and network sends, in order, results back as events.
fn spawn_sender(
    scope: Scope,
    net: Option<mailslot::net::NetConfig>,
    events: Sender<Event>,
) -> anyhow::Result<Sender<SendRequest>> {
    let (tx, rx) = mpsc::channel::<SendRequest>();
    std::thread::Builder::new()
        .name("chat send".into())
        .spawn(move || {
            for request in rx {
                let result = deliver(&scope, net.as_ref(), &request);
                if events.send(Event::Sent(request.id, result)).is_err() {
                    return;
                }
            }
        })
        .context("cannot start a thread")?;
    Ok(tx)
}

/// Sends one message the ways its route says: `Ok(where)` or `Err(why)`.
fn deliver(
    scope: &Scope,
    net: Option<&mailslot::net::NetConfig>,
    request: &SendRequest,
) -> Result<String, String> {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    if request.local {
        let written = Writer::open_in(scope, MAILSLOT).and_then(|mut w| {
            w.write(&request.body)?;
            w.flush() // a global name's write counts once the service has it
        });
        match written {
            Ok(()) => done.push("this host".to_owned()),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if let Some(target) = &request.network {
        match net {
            Some(config) => match lan::send(config, target, &request.body) {
                Ok(places) => done.push(places),
                Err(e) => failed.push(e),
            },
            None => failed.push("the network is off".to_owned()),
        }
    }
    if failed.is_empty() {
        Ok(done.join(" + "))
    } else {
        if !done.is_empty() {
            failed.push(format!("sent to {} only", done.join(" + ")));
        }
        Err(failed.join("; "))
    }
}

fn spawn_terminal_reader(events: Sender<Event>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("chat keys".into())
        .spawn(move || loop {
            let event = match crossterm::event::read() {
                Ok(event) => Event::Terminal(event),
                Err(_) => {
                    let _ = events.send(Event::TerminalGone);
                    return;
                }
            };
            if events.send(event).is_err() {
                return;
            }
        })
        .context("cannot start a thread")?;
    Ok(())
}

/// SIGTERM, SIGHUP, SIGINT and SIGQUIT end the chat cleanly (the terminal is restored).
fn spawn_signal_watcher(events: Sender<Event>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT])
        .context("cannot watch for signals")?;
    std::thread::Builder::new()
        .name("chat signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = events.send(Event::Signal);
            }
        })
        .context("cannot start a thread")?;
    Ok(())
}

/// The terminal in raw mode on the alternate screen; restored on drop and on panic.
struct Screen {
    terminal: Terminal<CrosstermBackend<std::io::Stdout>>,
}

impl Screen {
    fn enter() -> anyhow::Result<Screen> {
        enable_raw_mode().context("cannot put the terminal in raw mode")?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        let mut stdout = std::io::stdout();
        if let Err(e) = crossterm::execute!(stdout, EnterAlternateScreen, EnableBracketedPaste) {
            restore();
            return Err(e).context("cannot set up the terminal");
        }
        let terminal = match Terminal::new(CrosstermBackend::new(stdout)) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e).context("cannot set up the terminal");
            }
        };
        Ok(Screen { terminal })
    }
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}
