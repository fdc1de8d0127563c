//! The chat's state and rules, with no terminal and no I/O: targets, size limits, the compose
//! fields and their keys, received popups, own messages and their echoes, the status line.
//!
//! Time comes in as an argument ([`Stamp`]), messages as plain [`mailslot::Message`] values,
//! and what the chat must do comes out as an [`Action`], so every rule is unit-tested here.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use mailslot::{Message, Source};
use mailslot_wire::{cp850, MessengerMessage};

use super::text;

/// The Messenger service's mailslot.
pub const MAILSLOT: &str = "MESSNGR";
/// Longest sender name (a NetBIOS-style name, as Messenger has it).
pub const NAME_MAX: usize = 15;
/// Largest body of a local send when MESSNGR has no smaller maximum: the mailslot maximum.
pub const LOCAL_LIMIT: usize = mailslot::MAX_MESSAGE_SIZE;
/// Copies of one message that arrive through both the local mailslot and the network role of
/// this host within this window are shown once.
pub const ECHO_WINDOW: Duration = Duration::from_secs(10);
/// Entries kept in the list (the oldest go first).
pub const MAX_ENTRIES: usize = 1000;
/// Entries one PageUp/PageDown scrolls.
pub const PAGE: usize = 5;
/// Bodies remembered for duplicate detection (a flood cannot grow it).
const MAX_RECENT: usize = 256;
/// Bytes of one received text kept for display: with [`MAX_ENTRIES`] this bounds the history
/// to a few megabytes, however large the local messages are.
pub const MAX_SHOWN: usize = 4096;
/// Characters of a From or To field shown (Messenger names have at most 15).
const MAX_NAME_SHOWN: usize = 40;

/// A body's fingerprint: its length and a hash (SipHash with fixed keys), so that duplicate
/// and echo detection keeps no copies of large bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint(usize, u64);

impl Fingerprint {
    fn of(body: &[u8]) -> Fingerprint {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        body.hash(&mut hasher);
        Fingerprint(body.len(), hasher.finish())
    }
}

/// Largest Messenger body for a network send: `mailslot send`'s one limit for MESSNGR (406
/// bytes, whatever the target).
pub fn network_limit() -> usize {
    mailslot::net::message_limit(MAILSLOT).unwrap_or_default()
}

/// Who and where this chat is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    /// Sender name put in From (a user name by default).
    pub from: String,
    /// This host's NetBIOS name.
    pub netbios_name: String,
    /// This host's workgroup.
    pub workgroup: String,
    /// Our process id: local copies of our own sends carry it.
    pub pid: u32,
    /// Our user id: a local sender with another one (a global-scope MESSNGR shared by the
    /// users of a terminal server) is shown with its uid, which the kernel vouches for.
    pub uid: u32,
    /// LAN sends and the network role are on (no `--no-network`).
    pub network: bool,
    /// Largest message this host's MESSNGR takes (its creator may have set a maximum).
    pub local_limit: usize,
    /// `-q`: no notice in the list when the LAN is out of reach (the status line still says).
    pub quiet: bool,
}

/// A target as the user typed it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTarget {
    /// `.` or our own NetBIOS name.
    ThisHost,
    /// `*` or the name of our workgroup: everyone.
    Workgroup,
    /// A user, host (NetBIOS or DNS name, IPv4 address) or other workgroup's name.
    Name(String),
}

/// Where a network send goes (the LAN glue maps it to `mailslot::net`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetTarget {
    /// Our workgroup, by broadcast.
    OwnGroup,
    /// A name or address, resolved when sending (a group name is broadcast).
    Host(String),
}

/// How a message to a target is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The Messenger To field.
    pub to_field: String,
    /// Written to this host's MESSNGR.
    pub local: bool,
    /// Sent on the LAN.
    pub network: Option<NetTarget>,
    /// Largest body (From, To, Text and three NULs) this route takes.
    pub limit: usize,
}

/// Parses a target: `.` this host, `*` the workgroup, or a user, host or workgroup name
/// (NetBIOS name of at most 15 characters, DNS name, or IPv4 address). A leading `\\` is
/// ignored, so `\\HOST` works too.
///
/// # Errors
/// A sentence saying what is wrong, for the notice line.
pub fn parse_target(input: &str, me: &Me) -> Result<ChatTarget, String> {
    let t = input.trim();
    let t = t.strip_prefix("\\\\").unwrap_or(t);
    match t {
        "" => return Err("give a target: . (this host), * (the workgroup), or a name".into()),
        "." => return Ok(ChatTarget::ThisHost),
        "*" => return Ok(ChatTarget::Workgroup),
        _ => {}
    }
    if t.starts_with('*') {
        return Err(format!("target {t:?}: only * alone may start with *"));
    }
    if t.eq_ignore_ascii_case(&me.workgroup) {
        return Ok(ChatTarget::Workgroup);
    }
    if t.eq_ignore_ascii_case(&me.netbios_name) {
        return Ok(ChatTarget::ThisHost);
    }
    if t.parse::<Ipv4Addr>().is_ok() {
        return Ok(ChatTarget::Name(t.to_owned()));
    }
    if t.chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '\\' | '/'))
    {
        return Err(format!(
            "target {t:?}: a name has no spaces, slashes or backslashes"
        ));
    }
    if t.contains('.') {
        let dns_ok = t.len() <= 253
            && t.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        return if dns_ok {
            Ok(ChatTarget::Name(t.to_owned()))
        } else {
            Err(format!("target {t:?}: not a host name or IPv4 address"))
        };
    }
    if t.chars().count() > NAME_MAX {
        return Err(format!(
            "target {t:?}: a NetBIOS name has at most {NAME_MAX} characters"
        ));
    }
    if cp850::encode(t).is_err() {
        return Err(format!("target {t:?}: a name must be in code page 850"));
    }
    Ok(ChatTarget::Name(t.to_owned()))
}

/// How a message to `target` goes: this host's mailslot, the LAN, or both (for `*`, so that
/// this host's other windows get it even when no process here can hold the network role).
pub fn route(target: &ChatTarget, me: &Me) -> Route {
    let net_limit = |network: bool| {
        if network {
            network_limit().min(me.local_limit)
        } else {
            me.local_limit
        }
    };
    match target {
        ChatTarget::ThisHost => Route {
            to_field: me.netbios_name.clone(),
            local: true,
            network: None,
            limit: me.local_limit,
        },
        ChatTarget::Workgroup => Route {
            to_field: me.workgroup.clone(),
            local: true,
            network: me.network.then_some(NetTarget::OwnGroup),
            limit: net_limit(me.network),
        },
        ChatTarget::Name(name) => {
            let to_field = if name.parse::<Ipv4Addr>().is_ok() {
                name.clone()
            } else {
                name.split('.').next().unwrap_or(name).to_owned()
            };
            Route {
                to_field,
                local: !me.network,
                network: me.network.then(|| NetTarget::Host(name.clone())),
                limit: if me.network {
                    network_limit()
                } else {
                    me.local_limit
                },
            }
        }
    }
}

/// The longest text (in code-page-850 bytes, one per character) a route takes with our From
/// and its To: the body is `From\0To\0Text\0`.
pub fn text_limit(route: &Route, me: &Me) -> usize {
    let names = me.from.chars().count() + route.to_field.chars().count() + 3;
    route.limit.saturating_sub(names)
}

/// Where messages to `target` go, in one sentence.
pub fn explain(target: &ChatTarget, me: &Me) -> String {
    let r = route(target, me);
    let how = match (&r.network, target) {
        (None, ChatTarget::Name(_)) => "this host's MESSNGR (network off)".to_owned(),
        (None, ChatTarget::Workgroup) => "every window on this host (network off)".to_owned(),
        (None, _) => "every window on this host".to_owned(),
        (Some(NetTarget::OwnGroup), _) => {
            format!(
                "every window on this host and a broadcast to {}",
                me.workgroup
            )
        }
        (Some(NetTarget::Host(name)), _) => format!("{name} on the LAN"),
    };
    format!(
        "To {}: {how}; at most {} characters",
        r.to_field,
        text_limit(&r, me)
    )
}

/// Why a compose line cannot be sent. The text stays in the compose line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeError {
    /// The target is not valid.
    Target(String),
    /// Nothing to send.
    Empty,
    /// A character Messenger's code page 850 does not have.
    NotInCodePage(char),
    /// Longer than the route takes.
    TooLong {
        /// Characters typed.
        len: usize,
        /// Characters allowed with this From and To.
        max: usize,
        /// The whole body's limit.
        limit: usize,
        /// The limit is the network's (else the local mailslot maximum).
        network: bool,
        /// The To field.
        to: String,
    },
}

impl std::fmt::Display for ComposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComposeError::Target(reason) => f.write_str(reason),
            ComposeError::Empty => f.write_str("nothing to send: type a message"),
            ComposeError::NotInCodePage(c) => write!(
                f,
                "{c:?} cannot be sent: Messenger text is in code page 850; nothing was sent"
            ),
            ComposeError::TooLong {
                len,
                max,
                limit,
                network,
                to,
            } => {
                let what = if *network {
                    "a MESSNGR datagram on the LAN holds"
                } else {
                    "the mailslot takes"
                };
                write!(
                    f,
                    "too long for {to}: {len} characters, at most {max} ({what} {limit} bytes \
                     with From and To); nothing was sent"
                )
            }
        }
    }
}

/// A message ready to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub route: Route,
    /// `From\0To\0Text\0` in code page 850.
    pub body: Vec<u8>,
}

/// Checks and encodes a message to `to_input` (nothing is truncated: too long is an error).
///
/// # Errors
/// See [`ComposeError`].
pub fn prepare(me: &Me, to_input: &str, text: &str) -> Result<Prepared, ComposeError> {
    let target = parse_target(to_input, me).map_err(ComposeError::Target)?;
    let route = route(&target, me);
    if text.is_empty() {
        return Err(ComposeError::Empty);
    }
    if let Some(c) = text
        .chars()
        .find(|&c| cp850::encode_char(c).is_none() || c == '\0')
    {
        return Err(ComposeError::NotInCodePage(c));
    }
    let max = text_limit(&route, me);
    let len = text.chars().count();
    if len > max {
        return Err(ComposeError::TooLong {
            len,
            max,
            limit: route.limit,
            network: route.network.is_some(),
            to: route.to_field,
        });
    }
    let body = MessengerMessage::encode(&me.from, &route.to_field, text)
        .map_err(|_| ComposeError::Target("From or To is not in code page 850".into()))?;
    debug_assert!(body.len() <= route.limit);
    Ok(Prepared { route, body })
}

/// Keys the chat understands (the terminal code maps its events to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    Up,
    Down,
    PageUp,
    PageDown,
    Esc,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D: quit when the message field is empty.
    EndOfInput,
    /// Ctrl-U.
    ClearLine,
    /// Ctrl-W.
    DeleteWord,
    /// Ctrl-L.
    Redraw,
}

/// What the chat must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send(SendRequest),
    Redraw,
    Quit,
}

/// One send, done off the UI thread; its result comes back to [`Model::on_send_result`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    pub id: u64,
    pub body: Vec<u8>,
    pub local: bool,
    pub network: Option<NetTarget>,
}

/// When something happened: a monotonic instant for rules, a wall-clock time for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub at: Instant,
    /// `HH:MM:SS`, local time.
    pub clock: String,
}

/// The network role as the status line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleView {
    /// `--no-network`.
    Off,
    Starting,
    Waiting,
    Holding {
        port: u16,
    },
    /// The host service holds the port and hands our datagrams over.
    ViaService {
        port: u16,
    },
    Unavailable(String),
    Stopped(Option<String>),
}

impl RoleView {
    pub fn describe(&self) -> String {
        match self {
            RoleView::Off => "network off (--no-network)".into(),
            RoleView::Starting => "network role: starting".into(),
            RoleView::Waiting => "network role: another process".into(),
            RoleView::Holding { port } => format!("network role: this process (UDP {port})"),
            RoleView::ViaService { port } => format!("network: the host service (UDP {port})"),
            // The full reason is in the list; the status line keeps its first clause.
            RoleView::Unavailable(reason) => format!(
                "network role unavailable: {}",
                crate::common::first_clause(reason)
            ),
            RoleView::Stopped(None) => "network role: released".into(),
            RoleView::Stopped(Some(reason)) => format!("network role stopped: {reason}"),
        }
    }
}

/// Which compose field has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    To,
    Text,
}

/// A one-line editor (a cursor in characters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineEdit {
    chars: Vec<char>,
    cursor: usize,
}

impl LineEdit {
    pub fn new(text: &str) -> LineEdit {
        let chars: Vec<char> = text.chars().collect();
        let cursor = chars.len();
        LineEdit { chars, cursor }
    }

    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn insert(&mut self, c: char) {
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
    }

    pub fn insert_str(&mut self, s: &str) {
        let before = self.chars.len();
        self.chars.splice(self.cursor..self.cursor, s.chars());
        self.cursor += self.chars.len() - before;
    }

    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.chars.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.chars.len() {
            self.chars.remove(self.cursor);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.chars.len();
    }

    pub fn clear(&mut self) {
        self.chars.clear();
        self.cursor = 0;
    }

    /// Deletes the word before the cursor (and the spaces after it), like a shell's Ctrl-W.
    pub fn delete_word(&mut self) {
        let mut start = self.cursor;
        while start > 0 && self.chars[start - 1] == ' ' {
            start -= 1;
        }
        while start > 0 && self.chars[start - 1] != ' ' {
            start -= 1;
        }
        self.chars.drain(start..self.cursor);
        self.cursor = start;
    }

    /// The part to show in `width` columns so the cursor is visible, and the cursor's column.
    /// Costs O(width), whatever the length of the line (a paste may be long).
    pub fn view(&self, width: usize) -> (String, usize) {
        let width = width.max(1);
        // Walk back from the cursor while the characters fit, keeping one column for the
        // cursor itself.
        let mut start = self.cursor;
        let mut before = 0;
        while start > 0 {
            let w = text::char_width(self.chars[start - 1]);
            if before + w >= width {
                break;
            }
            before += w;
            start -= 1;
        }
        let mut shown = String::new();
        let mut used = 0;
        for &c in &self.chars[start..] {
            let w = text::char_width(c);
            if used + w > width {
                break;
            }
            used += w;
            shown.push(c);
        }
        (shown, before)
    }
}

/// How one of our own messages fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentState {
    Sending,
    /// Sent; where to.
    Done(String),
    Failed(String),
}

/// A popup we received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Messenger From (`?` when the body is not a Messenger body).
    pub from: String,
    /// The sending host: our NetBIOS name for local senders, else the datagram's source name.
    pub host: String,
    /// `this host, pid N` or the sender's IP address.
    pub via: String,
    /// Messenger To.
    pub to: String,
    /// Addressed to our From or our host.
    pub to_me: bool,
    pub lines: Vec<String>,
    /// Something odd about the body (not a Messenger body, UTF-8 instead of the OEM code page).
    pub note: Option<String>,
}

/// A message we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub id: u64,
    pub to: String,
    pub lines: Vec<String>,
    pub state: SentState,
    /// A copy came back through this host's MESSNGR (so the other windows here have it).
    pub seen_here: bool,
    body: Fingerprint,
    at: Instant,
}

/// One line of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Received(Received),
    Sent(Sent),
    /// Something about the chat itself (losses, the network role).
    System(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub clock: String,
    pub kind: EntryKind,
}

/// A transient line under the compose fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Info(String),
    Error(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Local,
    Network,
}

#[derive(Debug, Clone)]
struct Recent {
    at: Instant,
    body: Fingerprint,
    transport: Transport,
}

/// The whole state of one chat window.
#[derive(Debug, Clone)]
pub struct Model {
    pub me: Me,
    pub role: RoleView,
    pub entries: VecDeque<Entry>,
    /// Messages this window lost (it fell behind the queue capacity).
    pub lost: u64,
    pub received: u64,
    pub focus: Focus,
    pub to: LineEdit,
    pub text: LineEdit,
    pub notice: Option<Notice>,
    /// Entries hidden below the bottom of the list (0: follow new messages).
    pub scroll: usize,
    next_id: u64,
    recent: VecDeque<Recent>,
}

impl Model {
    pub fn new(me: Me, to: &str) -> Model {
        let role = if me.network {
            RoleView::Starting
        } else {
            RoleView::Off
        };
        Model {
            me,
            role,
            entries: VecDeque::new(),
            lost: 0,
            received: 0,
            focus: Focus::Text,
            to: LineEdit::new(to),
            text: LineEdit::default(),
            notice: None,
            scroll: 0,
            next_id: 1,
            recent: VecDeque::new(),
        }
    }

    fn field(&mut self) -> &mut LineEdit {
        match self.focus {
            Focus::To => &mut self.to,
            Focus::Text => &mut self.text,
        }
    }

    fn push(&mut self, entry: Entry) {
        self.entries.push_back(entry);
        if self.scroll > 0 {
            self.scroll += 1;
        }
        while self.entries.len() > MAX_ENTRIES {
            self.entries.pop_front();
        }
        self.scroll = self.scroll.min(self.entries.len().saturating_sub(1));
    }

    /// Handles a key.
    pub fn on_key(&mut self, key: Key, stamp: &Stamp) -> Option<Action> {
        match key {
            Key::Esc | Key::Interrupt => return Some(Action::Quit),
            Key::EndOfInput if self.text.is_empty() => return Some(Action::Quit),
            Key::EndOfInput => self.field().delete(),
            Key::Redraw => return Some(Action::Redraw),
            Key::Tab | Key::BackTab => {
                self.focus = match self.focus {
                    Focus::To => Focus::Text,
                    Focus::Text => Focus::To,
                };
            }
            Key::Enter => match self.focus {
                Focus::To => match parse_target(&self.to.text(), &self.me) {
                    Ok(target) => {
                        self.focus = Focus::Text;
                        self.notice = Some(Notice::Info(explain(&target, &self.me)));
                    }
                    Err(e) => self.notice = Some(Notice::Error(e)),
                },
                Focus::Text => return self.submit(stamp),
            },
            Key::Char(c) if c.is_control() => {}
            Key::Char(c) => self.field().insert(c),
            Key::Backspace => self.field().backspace(),
            Key::Delete => self.field().delete(),
            Key::Left => self.field().left(),
            Key::Right => self.field().right(),
            Key::Home => self.field().home(),
            Key::End => self.field().end(),
            Key::ClearLine => self.field().clear(),
            Key::DeleteWord => self.field().delete_word(),
            Key::Up => self.scroll_by(1),
            Key::Down => self.scroll_by(-1),
            Key::PageUp => self.scroll_by(PAGE as isize),
            Key::PageDown => self.scroll_by(-(PAGE as isize)),
        }
        None
    }

    /// Pasted text goes into the focused field, line breaks as spaces.
    pub fn on_paste(&mut self, pasted: &str) {
        let flat: String = pasted
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .filter(|c| !c.is_control())
            .collect();
        self.field().insert_str(&flat);
    }

    fn scroll_by(&mut self, delta: isize) {
        let max = self.entries.len().saturating_sub(1);
        self.scroll = self.scroll.saturating_add_signed(delta).min(max);
    }

    fn submit(&mut self, stamp: &Stamp) -> Option<Action> {
        let text = self.text.text();
        match prepare(&self.me, &self.to.text(), &text) {
            Err(e) => {
                if matches!(e, ComposeError::Target(_)) {
                    self.focus = Focus::To;
                }
                self.notice = Some(Notice::Error(e.to_string()));
                None
            }
            Ok(prepared) => {
                let id = self.next_id;
                self.next_id += 1;
                self.text.clear();
                self.notice = None;
                self.scroll = 0;
                self.push(Entry {
                    clock: stamp.clock.clone(),
                    kind: EntryKind::Sent(Sent {
                        id,
                        to: sent_label(&self.to.text(), &prepared.route.to_field),
                        lines: sent_lines(&text),
                        state: SentState::Sending,
                        seen_here: false,
                        body: Fingerprint::of(&prepared.body),
                        at: stamp.at,
                    }),
                });
                Some(Action::Send(SendRequest {
                    id,
                    body: prepared.body,
                    local: prepared.route.local,
                    network: prepared.route.network,
                }))
            }
        }
    }

    /// The outcome of a [`SendRequest`]: `Ok(where)` or `Err(why)`.
    pub fn on_send_result(&mut self, id: u64, result: Result<String, String>) {
        let mut failed = None;
        for entry in self.entries.iter_mut().rev() {
            if let EntryKind::Sent(sent) = &mut entry.kind {
                if sent.id == id {
                    sent.state = match result {
                        Ok(done) => SentState::Done(done),
                        Err(why) => {
                            failed = Some(format!("not sent to {}: {why}", sent.to));
                            SentState::Failed(why)
                        }
                    };
                    break;
                }
            }
        }
        if let Some(message) = failed {
            self.notice = Some(Notice::Error(message));
        }
    }

    /// The network role changed.
    pub fn on_role(&mut self, view: RoleView, stamp: &Stamp) {
        if view == self.role {
            return;
        }
        let news = match &view {
            RoleView::Holding { port } => Some(format!(
                "this process now holds the network role (UDP {port})"
            )),
            RoleView::ViaService { port } => Some(format!(
                "the host service holds UDP {port} and hands this chat its datagrams"
            )),
            // One short line (the reason's first clause); `mailslot status` has the rest.
            RoleView::Unavailable(_) if self.me.quiet => None,
            RoleView::Unavailable(reason) => Some(format!(
                "no LAN for this chat: {} (`mailslot status` says why)",
                crate::common::first_clause(reason)
            )),
            RoleView::Stopped(Some(reason)) => Some(format!("network role stopped: {reason}")),
            _ => None,
        };
        self.role = view;
        if let Some(text) = news {
            self.push_system(text, stamp);
        }
    }

    /// A one-line report from the network code or the reader (shown in the list).
    pub fn on_report(&mut self, line: &str, stamp: &Stamp) {
        self.push_system(text::one_line(line), stamp);
    }

    /// Adds a line about the chat itself, unless one of the last few says the same (the
    /// network code reports a condition that the role's state also shows).
    fn push_system(&mut self, text: String, stamp: &Stamp) {
        let repeated = self.entries.iter().rev().take(5).any(|e| match &e.kind {
            EntryKind::System(t) => *t == text,
            _ => false,
        });
        if !repeated {
            self.push(Entry {
                clock: stamp.clock.clone(),
                kind: EntryKind::System(text),
            });
        }
    }

    /// Whether a message comes from this host (a local write, or our own NetBIOS name on the
    /// network) and by which way.
    fn origin(&self, source: &Source) -> (bool, Transport) {
        match source {
            Source::Local { .. } => (true, Transport::Local),
            Source::Network { netbios_name, .. } => (
                netbios_name.eq_ignore_ascii_case(&self.me.netbios_name),
                Transport::Network,
            ),
        }
    }

    /// A message read from MESSNGR.
    pub fn on_message(&mut self, message: &Message, stamp: &Stamp) {
        if message.lost > 0 {
            self.lost += message.lost;
            self.push(Entry {
                clock: stamp.clock.clone(),
                kind: EntryKind::System(format!(
                    "{} message(s) lost here before the next one: this window fell behind",
                    message.lost
                )),
            });
        }
        while self
            .recent
            .front()
            .is_some_and(|r| stamp.at.saturating_duration_since(r.at) > ECHO_WINDOW)
        {
            self.recent.pop_front();
        }
        let (this_host, transport) = self.origin(&message.source);
        if this_host {
            let body = Fingerprint::of(&message.data);
            // The other copy of a message this host sent both ways (local write and network
            // broadcast): the pair is complete, show nothing more.
            if let Some(i) = self
                .recent
                .iter()
                .position(|r| r.body == body && r.transport != transport)
            {
                self.recent.remove(i);
                return;
            }
            let ours = match &message.source {
                Source::Local { pid, .. } => *pid == self.me.pid,
                Source::Network { .. } => true,
            };
            let echo = ours && self.mark_echo(body, stamp.at);
            if self.recent.len() >= MAX_RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(Recent {
                at: stamp.at,
                body,
                transport,
            });
            if echo {
                return;
            }
        }
        self.received += 1;
        let received = describe(message, &self.me);
        self.push(Entry {
            clock: stamp.clock.clone(),
            kind: EntryKind::Received(received),
        });
    }

    /// Marks the oldest own message with this body that was sent within the echo window and
    /// not seen yet as seen here.
    fn mark_echo(&mut self, body: Fingerprint, now: Instant) -> bool {
        for entry in self.entries.iter_mut() {
            if let EntryKind::Sent(sent) = &mut entry.kind {
                if !sent.seen_here
                    && sent.body == body
                    && now.saturating_duration_since(sent.at) <= ECHO_WINDOW
                {
                    sent.seen_here = true;
                    return true;
                }
            }
        }
        false
    }

    /// Used and allowed characters of the message field for the current target, or why the
    /// target is not valid.
    pub fn counter(&self) -> Result<(usize, usize), String> {
        let target = parse_target(&self.to.text(), &self.me)?;
        let route = route(&target, &self.me);
        Ok((self.text.len(), text_limit(&route, &self.me)))
    }

    /// The status line.
    pub fn status(&self) -> String {
        format!(
            "{}@{} · {} · {} · received {} · lost {}",
            self.me.from,
            self.me.netbios_name,
            self.me.workgroup,
            self.role.describe(),
            self.received,
            self.lost
        )
    }
}

/// The lines of an own message as the list keeps them (clipped like received ones).
fn sent_lines(text: &str) -> Vec<String> {
    let (shown, hidden) = text::clip(text, MAX_SHOWN);
    let mut lines = text::lines(shown);
    if hidden > 0 {
        lines.push(format!("[{hidden} more characters not shown]"));
    }
    lines
}

/// How an own message's target is shown: as typed, with the To field when they differ
/// (`* (WORKGROUP)`).
fn sent_label(typed: &str, to_field: &str) -> String {
    let typed = typed.trim();
    if typed.eq_ignore_ascii_case(to_field) {
        typed.to_owned()
    } else {
        format!("{typed} ({to_field})")
    }
}

/// A received message as the list shows it.
pub fn describe(message: &Message, me: &Me) -> Received {
    let (host, via) = match &message.source {
        Source::Local { pid, uid } if *uid != me.uid => (
            me.netbios_name.clone(),
            format!("this host, pid {pid}, uid {uid}"),
        ),
        Source::Local { pid, .. } => (me.netbios_name.clone(), format!("this host, pid {pid}")),
        Source::Network {
            ip, netbios_name, ..
        } => {
            let name = text::one_line(netbios_name);
            let host = if name.is_empty() {
                ip.to_string()
            } else {
                name
            };
            (host, ip.to_string())
        }
    };
    let name = |bytes: &[u8]| {
        let decoded = text::decode(bytes).0;
        let (shown, hidden) = text::clip(&decoded, MAX_NAME_SHOWN);
        let ellipsis = if hidden > 0 { "…" } else { "" };
        format!("{}{ellipsis}", text::one_line(shown))
    };
    let (from, to, body, mut notes) = match MessengerMessage::parse(&message.data) {
        Ok(m) => {
            let (text, charset) = text::decode(m.text);
            let mut notes = Vec::new();
            if charset == text::Charset::Utf8 {
                notes.push("UTF-8, not the OEM code page".to_owned());
            }
            (name(m.from), name(m.to), text, notes)
        }
        Err(_) => (
            "?".to_owned(),
            "?".to_owned(),
            text::decode(&message.data).0,
            vec![format!(
                "not a Messenger message, {} bytes",
                message.data.len()
            )],
        ),
    };
    let (shown, hidden) = text::clip(&body, MAX_SHOWN);
    if hidden > 0 {
        notes.push(format!("{hidden} more characters not shown"));
    }
    let to_me = to.eq_ignore_ascii_case(&me.from) || to.eq_ignore_ascii_case(&me.netbios_name);
    Received {
        from,
        host,
        via,
        to,
        to_me,
        lines: text::lines(shown),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(network: bool) -> Me {
        Me {
            from: "ALICE".into(),
            netbios_name: "HOSTA".into(),
            workgroup: "WORKGROUP".into(),
            pid: 100,
            uid: 0,
            network,
            local_limit: LOCAL_LIMIT,
            quiet: false,
        }
    }

    fn stamp(secs: u64, base: Instant) -> Stamp {
        Stamp {
            at: base + Duration::from_secs(secs),
            clock: format!("12:00:{secs:02}"),
        }
    }

    fn local(pid: u32, data: &[u8]) -> Message {
        Message {
            data: data.to_vec(),
            source: Source::Local { pid, uid: 0 },
            lost: 0,
        }
    }

    fn network(name: &str, data: &[u8]) -> Message {
        Message {
            data: data.to_vec(),
            source: Source::Network {
                ip: Ipv4Addr::new(10, 99, 0, 2),
                port: 138,
                netbios_name: name.into(),
                suffix: 0,
                destination: "HOSTB".into(),
                destination_suffix: 3,
            },
            lost: 0,
        }
    }

    fn type_text(model: &mut Model, text: &str, s: &Stamp) {
        for c in text.chars() {
            model.on_key(Key::Char(c), s);
        }
    }

    fn received(model: &Model) -> Vec<&Received> {
        model
            .entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::Received(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    fn sent(model: &Model) -> Vec<&Sent> {
        model
            .entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::Sent(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn targets() {
        let m = me(true);
        assert_eq!(parse_target(".", &m), Ok(ChatTarget::ThisHost));
        assert_eq!(parse_target(" hosta ", &m), Ok(ChatTarget::ThisHost));
        assert_eq!(parse_target("*", &m), Ok(ChatTarget::Workgroup));
        assert_eq!(parse_target("workgroup", &m), Ok(ChatTarget::Workgroup));
        assert_eq!(parse_target("BOB", &m), Ok(ChatTarget::Name("BOB".into())));
        assert_eq!(
            parse_target("\\\\HOSTB", &m),
            Ok(ChatTarget::Name("HOSTB".into()))
        );
        assert_eq!(
            parse_target("10.99.0.2", &m),
            Ok(ChatTarget::Name("10.99.0.2".into()))
        );
        assert_eq!(
            parse_target("pc.example.org", &m),
            Ok(ChatTarget::Name("pc.example.org".into()))
        );
        assert_eq!(
            parse_target("Jörg", &m),
            Ok(ChatTarget::Name("Jörg".into()))
        );
        for bad in [
            "",
            "  ",
            "*x",
            "a b",
            "a/b",
            "a\\b",
            "sixteen-chars-xx",
            "bad..dns",
            "日本",
        ] {
            assert!(parse_target(bad, &m).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn routes() {
        let on = me(true);
        let off = me(false);
        let r = route(&ChatTarget::ThisHost, &on);
        assert_eq!(
            (r.to_field.as_str(), r.local, r.network.clone(), r.limit),
            ("HOSTA", true, None, LOCAL_LIMIT)
        );
        let r = route(&ChatTarget::Workgroup, &on);
        assert_eq!(
            (r.to_field.as_str(), r.local, r.network.clone(), r.limit),
            ("WORKGROUP", true, Some(NetTarget::OwnGroup), 406)
        );
        let r = route(&ChatTarget::Workgroup, &off);
        assert_eq!(
            (r.local, r.network.clone(), r.limit),
            (true, None, LOCAL_LIMIT)
        );
        let r = route(&ChatTarget::Name("pc.example.org".into()), &on);
        assert_eq!(
            (r.to_field.as_str(), r.local, r.network.clone()),
            ("pc", false, Some(NetTarget::Host("pc.example.org".into())))
        );
        let r = route(&ChatTarget::Name("BOB".into()), &off);
        assert_eq!(
            (r.to_field.as_str(), r.local, r.network.clone(), r.limit),
            ("BOB", true, None, LOCAL_LIMIT)
        );
    }

    #[test]
    fn size_limits_come_from_the_wire_rules() {
        // \MAILSLOT\MESSNGR: a 576-byte datagram less 82 bytes of header and names and a
        // DataOffset of 88 = 406.
        assert_eq!(network_limit(), 406);
        let m = me(true);
        // From "ALICE" (5) + To "WORKGROUP" (9) + 3 NULs = 17.
        let r = route(&ChatTarget::Workgroup, &m);
        assert_eq!(text_limit(&r, &m), 406 - 17);
        let ok = prepare(&m, "*", &"x".repeat(389)).unwrap();
        assert_eq!(ok.body.len(), 406);
        assert_eq!(
            ok.body,
            MessengerMessage::encode("ALICE", "WORKGROUP", &"x".repeat(389)).unwrap()
        );
        let err = prepare(&m, "*", &"x".repeat(390)).unwrap_err();
        assert_eq!(
            err,
            ComposeError::TooLong {
                len: 390,
                max: 389,
                limit: 406,
                network: true,
                to: "WORKGROUP".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "too long for WORKGROUP: 390 characters, at most 389 (a MESSNGR datagram on the LAN \
             holds 406 bytes with From and To); nothing was sent"
        );
        // Local sends have the mailslot maximum.
        let off = me(false);
        assert!(prepare(&off, "*", &"x".repeat(5000)).is_ok());
        let e = prepare(&off, ".", &"x".repeat(LOCAL_LIMIT)).unwrap_err();
        assert!(matches!(e, ComposeError::TooLong { network: false, .. }));
        assert!(
            e.to_string().contains("the mailslot takes 1048576 bytes"),
            "{e}"
        );
    }

    #[test]
    fn a_smaller_messngr_maximum_is_the_local_limit() {
        let mut m = me(true);
        m.local_limit = 100;
        assert_eq!(route(&ChatTarget::ThisHost, &m).limit, 100);
        // `*` is written here too: the smaller of both limits.
        assert_eq!(route(&ChatTarget::Workgroup, &m).limit, 100);
        // A directed LAN send does not touch this host's MESSNGR.
        assert_eq!(route(&ChatTarget::Name("HOSTB".into()), &m).limit, 406);
        let e = prepare(&m, ".", &"x".repeat(100)).unwrap_err();
        assert!(
            e.to_string()
                .contains("at most 87 (the mailslot takes 100 bytes"),
            "{e}"
        );
    }

    #[test]
    fn prepare_refuses_what_cannot_be_sent() {
        let m = me(false);
        assert_eq!(prepare(&m, "*", ""), Err(ComposeError::Empty));
        assert_eq!(
            prepare(&m, "*", "price: 5 €"),
            Err(ComposeError::NotInCodePage('€'))
        );
        assert!(matches!(
            prepare(&m, "", "hi"),
            Err(ComposeError::Target(_))
        ));
        // OEM text is encoded in code page 850.
        let p = prepare(&m, "JÖRG", "Grüße").unwrap();
        assert_eq!(p.body, b"ALICE\0J\x99RG\0Gr\x81\xe1e\0");
    }

    #[test]
    fn compose_and_send_locally() {
        let base = Instant::now();
        let s = stamp(0, base);
        let mut model = Model::new(me(false), "*");
        assert_eq!(model.role, RoleView::Off);
        type_text(&mut model, "hello", &s);
        assert_eq!(model.counter(), Ok((5, LOCAL_LIMIT - 17)));
        let action = model.on_key(Key::Enter, &s).unwrap();
        let Action::Send(req) = action else {
            panic!("{action:?}")
        };
        assert_eq!(req.body, b"ALICE\0WORKGROUP\0hello\0");
        assert!(req.local);
        assert_eq!(req.network, None);
        assert!(model.text.is_empty(), "sent text leaves the field");
        assert_eq!(sent(&model)[0].state, SentState::Sending);
        model.on_send_result(req.id, Ok("this host".into()));
        assert_eq!(sent(&model)[0].state, SentState::Done("this host".into()));
        // Our own copy comes back through MESSNGR: marked, not shown twice.
        model.on_message(&local(100, &req.body), &stamp(1, base));
        assert!(sent(&model)[0].seen_here);
        assert!(received(&model).is_empty());
        assert_eq!(model.entries.len(), 1);
    }

    #[test]
    fn too_long_text_is_refused_and_kept() {
        let s = stamp(0, Instant::now());
        let mut model = Model::new(me(true), "*");
        model.on_paste(&"y".repeat(500));
        assert_eq!(model.counter(), Ok((500, 389)));
        assert_eq!(model.on_key(Key::Enter, &s), None);
        assert_eq!(model.text.len(), 500, "nothing is truncated");
        let Some(Notice::Error(text)) = &model.notice else {
            panic!()
        };
        assert!(text.contains("500 characters, at most 389"), "{text}");
        assert!(model.entries.is_empty());
    }

    #[test]
    fn bad_target_moves_focus_to_it() {
        let s = stamp(0, Instant::now());
        let mut model = Model::new(me(true), "a b");
        type_text(&mut model, "hi", &s);
        assert_eq!(model.on_key(Key::Enter, &s), None);
        assert_eq!(model.focus, Focus::To);
        model.on_key(Key::ClearLine, &s);
        type_text(&mut model, "hostb", &s);
        assert_eq!(model.on_key(Key::Enter, &s), None);
        assert_eq!(model.focus, Focus::Text);
        assert_eq!(
            model.notice,
            Some(Notice::Info(
                "To hostb: hostb on the LAN; at most 393 characters".into()
            ))
        );
        let Some(Action::Send(req)) = model.on_key(Key::Enter, &s) else {
            panic!()
        };
        assert_eq!(req.network, Some(NetTarget::Host("hostb".into())));
        assert!(!req.local);
        assert_eq!(req.body, b"ALICE\0hostb\0hi\0");
    }

    #[test]
    fn keys_edit_and_quit() {
        let s = stamp(0, Instant::now());
        let mut model = Model::new(me(false), "*");
        type_text(&mut model, "hello world", &s);
        model.on_key(Key::DeleteWord, &s);
        assert_eq!(model.text.text(), "hello ");
        model.on_key(Key::Home, &s);
        model.on_key(Key::Delete, &s);
        model.on_key(Key::Char('J'), &s);
        model.on_key(Key::End, &s);
        model.on_key(Key::Backspace, &s);
        model.on_key(Key::Left, &s);
        model.on_key(Key::Char('\u{7}'), &s);
        assert_eq!(model.text.text(), "Jello");
        model.on_key(Key::Tab, &s);
        assert_eq!(model.focus, Focus::To);
        model.on_key(Key::Backspace, &s);
        model.on_key(Key::Char('.'), &s);
        assert_eq!(model.to.text(), ".");
        model.on_key(Key::BackTab, &s);
        assert_eq!(model.focus, Focus::Text);
        assert_eq!(
            model.on_key(Key::EndOfInput, &s),
            None,
            "Ctrl-D deletes while there is text"
        );
        model.on_key(Key::ClearLine, &s);
        assert_eq!(model.on_key(Key::EndOfInput, &s), Some(Action::Quit));
        assert_eq!(model.on_key(Key::Esc, &s), Some(Action::Quit));
        assert_eq!(model.on_key(Key::Interrupt, &s), Some(Action::Quit));
        assert_eq!(model.on_key(Key::Redraw, &s), Some(Action::Redraw));
    }

    #[test]
    fn line_edit_view_keeps_the_cursor_visible() {
        let mut e = LineEdit::new("abcdefghij");
        assert_eq!(e.view(20), ("abcdefghij".to_owned(), 10));
        assert_eq!(e.view(5), ("ghij".to_owned(), 4));
        e.home();
        assert_eq!(e.view(5), ("abcde".to_owned(), 0));
        let e = LineEdit::new("日本語");
        assert_eq!(e.view(4), ("語".to_owned(), 2));
        let mut e = LineEdit::new("abcdefghij");
        e.home();
        e.right();
        e.right();
        e.right();
        assert_eq!(e.view(3), ("bcd".to_owned(), 2));
        // A long paste stays cheap to show.
        let mut e = LineEdit::default();
        e.insert_str(&"z".repeat(1 << 20));
        assert_eq!(e.view(80), ("z".repeat(79), 79));
    }

    #[test]
    fn received_messages_show_sender_host_and_text() {
        let base = Instant::now();
        let mut model = Model::new(me(true), "*");
        model.on_message(&local(200, b"BOB\0WORKGROUP\0hi all\0"), &stamp(0, base));
        model.on_message(
            &network("HOSTB", b"CAROL\0ALICE\0line 1\r\nline 2\0"),
            &stamp(1, base),
        );
        model.on_message(
            &network("HOSTC", b"J\x99RG\0*\0Gr\x81\xe1e \x1b[2J\0"),
            &stamp(2, base),
        );
        model.on_message(&local(300, b"raw bytes, no NULs"), &stamp(3, base));
        model.on_message(&local(300, "UTF\0x\0Grüße\0".as_bytes()), &stamp(4, base));
        let mut other_user = local(400, b"MALLORY\0*\0hi\0");
        other_user.source = Source::Local {
            pid: 400,
            uid: 1000,
        };
        model.on_message(&other_user, &stamp(5, base));
        let r = received(&model);
        assert_eq!(r.len(), 6);
        assert_eq!(r[5].via, "this host, pid 400, uid 1000");
        assert_eq!(
            (r[0].from.as_str(), r[0].host.as_str(), r[0].via.as_str()),
            ("BOB", "HOSTA", "this host, pid 200")
        );
        assert_eq!(
            (r[1].from.as_str(), r[1].host.as_str(), r[1].via.as_str()),
            ("CAROL", "HOSTB", "10.99.0.2")
        );
        assert!(r[1].to_me);
        assert_eq!(r[1].lines, ["line 1", "line 2"]);
        assert_eq!(r[2].from, "JÖRG");
        assert_eq!(r[2].lines, ["Grüße ^[[2J"]);
        assert_eq!(r[3].from, "?");
        assert_eq!(
            r[3].note.as_deref(),
            Some("not a Messenger message, 18 bytes")
        );
        assert_eq!(r[4].lines, ["Grüße"]);
        assert_eq!(r[4].note.as_deref(), Some("UTF-8, not the OEM code page"));
        assert_eq!(model.received, 6);
    }

    #[test]
    fn large_bodies_are_clipped_for_display() {
        let base = Instant::now();
        let mut model = Model::new(me(false), "*");
        let mut body = b"A".repeat(100);
        body.extend_from_slice(b"\0*\0");
        body.extend(std::iter::repeat_n(b'x', MAX_SHOWN + 10));
        model.on_message(&local(200, &body), &stamp(0, base));
        let r = received(&model);
        assert_eq!(r[0].from, format!("{}…", "A".repeat(40)));
        assert_eq!(r[0].lines, ["x".repeat(MAX_SHOWN)]);
        assert_eq!(r[0].note.as_deref(), Some("10 more characters not shown"));
        model.on_paste(&"y".repeat(MAX_SHOWN + 1));
        let Some(Action::Send(req)) = model.on_key(Key::Enter, &stamp(1, base)) else {
            panic!()
        };
        assert_eq!(req.body.len(), 5 + 9 + 3 + MAX_SHOWN + 1, "sent whole");
        assert_eq!(sent(&model)[0].lines[1], "[1 more characters not shown]");
    }

    #[test]
    fn a_message_from_this_host_is_shown_once_whichever_way_it_comes() {
        let base = Instant::now();
        let mut model = Model::new(me(true), "*");
        let body = b"BOB\0WORKGROUP\0hello\0";
        // Another window here broadcast: the local copy, then the network role's copy.
        model.on_message(&local(200, body), &stamp(0, base));
        model.on_message(&network("hosta", body), &stamp(1, base));
        assert_eq!(received(&model).len(), 1);
        // The other order.
        let body2 = b"BOB\0WORKGROUP\0again\0";
        model.on_message(&network("HOSTA", body2), &stamp(2, base));
        model.on_message(&local(200, body2), &stamp(2, base));
        assert_eq!(received(&model).len(), 2);
        // The same text twice by the same way is two messages.
        model.on_message(&local(200, body2), &stamp(3, base));
        assert_eq!(received(&model).len(), 3);
        // From another host, never merged.
        model.on_message(&network("HOSTB", body2), &stamp(3, base));
        assert_eq!(received(&model).len(), 4);
        // After the window, a copy is a new message.
        model.on_message(&network("HOSTA", body), &stamp(30, base));
        assert_eq!(received(&model).len(), 5);
    }

    #[test]
    fn own_broadcast_echoes_mark_the_sent_entry() {
        let base = Instant::now();
        let s = stamp(0, base);
        let mut model = Model::new(me(true), "*");
        type_text(&mut model, "to all", &s);
        let Some(Action::Send(req)) = model.on_key(Key::Enter, &s) else {
            panic!()
        };
        assert!(req.local);
        assert_eq!(req.network, Some(NetTarget::OwnGroup));
        model.on_message(&local(100, &req.body), &stamp(1, base));
        model.on_message(&network("HOSTA", &req.body), &stamp(1, base));
        assert!(received(&model).is_empty());
        assert!(sent(&model)[0].seen_here);
        model.on_send_result(req.id, Err("network unavailable".into()));
        assert_eq!(
            sent(&model)[0].state,
            SentState::Failed("network unavailable".into())
        );
        assert!(matches!(&model.notice, Some(Notice::Error(t)) if t.contains("not sent to *")));
    }

    #[test]
    fn losses_role_and_status() {
        let base = Instant::now();
        let mut model = Model::new(me(true), "*");
        assert_eq!(model.role, RoleView::Starting);
        let mut m = local(200, b"A\0B\0c\0");
        m.lost = 3;
        model.on_message(&m, &stamp(0, base));
        assert_eq!(model.lost, 3);
        model.on_role(RoleView::Waiting, &stamp(1, base));
        model.on_role(RoleView::Holding { port: 138 }, &stamp(2, base));
        model.on_role(RoleView::Holding { port: 138 }, &stamp(3, base));
        let systems: Vec<&str> = model
            .entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::System(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(systems.len(), 2, "{systems:?}");
        assert!(systems[0].contains("3 message(s) lost"));
        assert!(systems[1].contains("now holds the network role"));
        assert_eq!(
            model.status(),
            "ALICE@HOSTA · WORKGROUP · network role: this process (UDP 138) · received 1 · lost 3"
        );
        model.on_role(
            RoleView::Unavailable("port busy (by nmbd); remedies".into()),
            &stamp(4, base),
        );
        assert!(
            matches!(&model.entries.back().unwrap().kind,
                     EntryKind::System(t) if t == "no LAN for this chat: port busy (`mailslot status` says why)"),
            "one short line, without the remedies"
        );
        assert!(model
            .status()
            .contains("network role unavailable: port busy ·"));
        let n = model.entries.len();
        model.on_report("cannot bind\nport 138", &stamp(4, base));
        assert_eq!(model.entries.len(), n + 1, "a report is shown once");
        assert!(
            matches!(&model.entries.back().unwrap().kind, EntryKind::System(t) if t == "cannot bind port 138")
        );
    }

    #[test]
    fn quiet_shows_no_notice_for_an_unreachable_lan() {
        let base = Instant::now();
        let mut model = Model::new(
            Me {
                quiet: true,
                ..me(true)
            },
            "*",
        );
        let before = model.entries.len();
        model.on_role(
            RoleView::Unavailable("no permission (port 138); remedies".into()),
            &stamp(1, base),
        );
        assert_eq!(model.entries.len(), before, "-q: no line in the list");
        assert!(model
            .status()
            .contains("network role unavailable: no permission ·"));
    }

    #[test]
    fn scrolling_holds_the_view_while_messages_arrive() {
        let base = Instant::now();
        let s = stamp(0, base);
        let mut model = Model::new(me(false), "*");
        for i in 0..20 {
            model.on_message(
                &local(200, format!("B\0*\0m{i}\0").as_bytes()),
                &stamp(i, base),
            );
        }
        model.on_key(Key::PageUp, &s);
        assert_eq!(model.scroll, PAGE);
        model.on_message(&local(200, b"B\0*\0new\0"), &stamp(25, base));
        assert_eq!(model.scroll, PAGE + 1);
        model.on_key(Key::Down, &s);
        assert_eq!(model.scroll, PAGE);
        for _ in 0..10 {
            model.on_key(Key::PageUp, &s);
        }
        assert_eq!(model.scroll, model.entries.len() - 1);
        for _ in 0..10 {
            model.on_key(Key::PageDown, &s);
        }
        assert_eq!(model.scroll, 0);
    }

    #[test]
    fn history_is_bounded() {
        let base = Instant::now();
        let mut model = Model::new(me(false), "*");
        for i in 0..(MAX_ENTRIES as u64 + 50) {
            model.on_message(
                &local(200, format!("B\0*\0{i}\0").as_bytes()),
                &stamp(i % 60, base),
            );
        }
        assert_eq!(model.entries.len(), MAX_ENTRIES);
        assert!(model.recent.len() <= MAX_RECENT);
    }
}
