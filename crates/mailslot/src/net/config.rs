//! Configuration of the network role and of network sends, and the types the role hands to the
//! local delivery callback.

use super::error::NetError;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// UDP port of the NetBIOS datagram service.
pub const DEFAULT_PORT: u16 = 138;
/// UDP port of the NetBIOS name service.
pub const DEFAULT_NAME_SERVICE_PORT: u16 = 137;
/// Default workgroup.
pub const DEFAULT_WORKGROUP: &str = "WORKGROUP";
/// Identical datagrams within this window are delivered once (Windows' Net Logon uses
/// `MailslotDuplicateTimeout`, default 2 s).
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(2);

/// Where a network message came from. The UDP source address is used (SOURCE_IP and
/// SOURCE_PORT in the header are spoofable and informational).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSource {
    /// UDP source address.
    pub ip: Ipv4Addr,
    /// UDP source port.
    pub port: u16,
    /// SOURCE_NAME of the datagram, trimmed (e.g. `SAMBAPEER`).
    pub netbios_name: String,
    /// The 16th byte of SOURCE_NAME (usually 0x00).
    pub netbios_suffix: u8,
    /// DESTINATION_NAME of the datagram, trimmed (our name, our workgroup, or `*`).
    pub destination_name: String,
    /// The 16th byte of DESTINATION_NAME.
    pub destination_suffix: u8,
    /// MSG_TYPE: 0x10 direct unique, 0x11 direct group, 0x12 broadcast.
    pub msg_type: u8,
}

impl NetSource {
    /// As a record of the ring stores it.
    pub(crate) fn record_source(&self) -> crate::ring::RecordSource {
        crate::ring::RecordSource::network(
            self.ip,
            self.port,
            (&self.netbios_name, self.netbios_suffix),
            (&self.destination_name, self.destination_suffix),
        )
    }
}

/// What the local side did with a network message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Queued to the local mailslot (to every instance of a shared name).
    Delivered,
    /// No server has this name open on this host: dropped and counted, like Windows.
    NoMailslot,
    /// The name exists but the message could not be queued (too large, queue full, ...).
    Failed(String),
}

/// The local delivery callback: mailslot name without `\MAILSLOT\` (case as received), the
/// message, and its source.
pub type DeliverFn = Arc<dyn Fn(&str, &[u8], &NetSource) -> DeliveryOutcome + Send + Sync>;

/// Where the network role puts the mailslot writes it receives.
#[derive(Clone, Default)]
pub enum Sink {
    /// Into the local mailslots of the role's runtime directory ([`NetConfig::dir`]), as
    /// local writes are (every instance of a shared name), stamped with the network source.
    /// A batch of datagrams wakes each name's sleeping readers once.
    #[default]
    Local,
    /// To a callback, one message at a time (tests, logging, the host service).
    Callback(DeliverFn),
}

impl From<DeliverFn> for Sink {
    fn from(deliver: DeliverFn) -> Sink {
        Sink::Callback(deliver)
    }
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sink::Local => "Sink::Local",
            Sink::Callback(_) => "Sink::Callback(..)",
        })
    }
}

/// Where one-line reports of the role go (why the port cannot be bound, who holds it, ...).
/// Each distinct condition is reported once per role start.
#[derive(Clone)]
pub struct Reporter(Option<ReportFn>);

type ReportFn = Arc<dyn Fn(&str) + Send + Sync>;

impl Reporter {
    /// Write `mailslot: <text>` to standard error (the default).
    pub fn stderr() -> Reporter {
        Reporter(Some(Arc::new(|line: &str| eprintln!("mailslot: {line}"))))
    }

    /// Report nothing (the state is still visible in `status`).
    pub fn silent() -> Reporter {
        Reporter(None)
    }

    /// Call `f` with each report.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Reporter {
        Reporter(Some(Arc::new(f)))
    }

    pub(crate) fn report(&self, line: &str) {
        if let Some(f) = &self.0 {
            f(line);
        }
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Reporter(..)"
        } else {
            "Reporter(silent)"
        })
    }
}

/// Settings of the network role and of network sends (the command's global options).
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Runtime directory: the election lock, handoff socket and state file live here.
    pub dir: PathBuf,
    /// UDP port of the datagram service (default 138).
    pub port: u16,
    /// Local address the role binds (default 0.0.0.0: unicast and broadcast on every interface).
    /// A socket bound to one interface address receives only unicast (no broadcasts), as
    /// measured on a virtual LAN.
    pub bind: Ipv4Addr,
    /// Broadcast addresses for group targets and name queries; empty means every IPv4
    /// interface's broadcast address.
    pub broadcast: Vec<Ipv4Addr>,
    /// Our NetBIOS name (upper case, at most 15 bytes).
    pub netbios_name: String,
    /// Our workgroup (`*` targets go to it; datagrams to it are ours).
    pub workgroup: String,
    /// Deliver mailslot writes whatever their destination name (sniffing).
    pub accept_any: bool,
    /// If another program holds the port, bind alongside it with `SO_REUSEADDR`: broadcasts
    /// reach both; unicast goes to the program bound to the interface address (nmbd binds it
    /// as well as 0.0.0.0), never to us.
    pub share_port: bool,
    /// While holding the role and when UDP [`name_service_port`](Self::name_service_port) is
    /// free: register our names on the LAN as a B-node (our name `<00>` and `<03>`, our
    /// workgroup `<00>` as a group), answer queries for those registered, defend them against
    /// other nodes' registrations, and release them when the role is given up. A name another
    /// node holds is reported as a conflict and not answered for.
    pub name_service: bool,
    /// Also claim `<name><20>`, the file server name (default false): set it when an SMB
    /// server runs on this host but no other NetBIOS name service (such as nmbd) does, so
    /// that queries for it are answered. Without it a query for `<20>` gets no answer from us,
    /// rather than an address where connections would fail.
    pub file_server_name: bool,
    /// UDP port of the name service (default 137); also where name queries are sent.
    pub name_service_port: u16,
    /// Identical datagrams (same source port, DGM_ID and bytes) within this window are
    /// delivered once.
    pub dedupe_window: Duration,
    /// Deliver datagrams that this host sent itself (our broadcasts come back through the
    /// kernel). Default true: a write to `*` reaches this host's mailslots too, once.
    pub deliver_own: bool,
    /// How long a name query waits for an answer per try (3 tries, RFC 1002 B-node timers).
    pub name_query_timeout: Duration,
    /// When the host service (`mailslot serve --system`) holds this port, take this
    /// directory's datagrams from it (it hands over those of our names) instead of binding
    /// the port. Default true; the service itself sets it false.
    pub via_host_service: bool,
    /// Where reports go.
    pub reporter: Reporter,
}

impl NetConfig {
    /// Defaults for runtime directory `dir`: port 138, bind 0.0.0.0, every interface's
    /// broadcast address, NetBIOS name from the host name, workgroup `WORKGROUP`, name service
    /// on, reports to stderr.
    pub fn new(dir: impl Into<PathBuf>) -> NetConfig {
        NetConfig {
            dir: dir.into(),
            port: DEFAULT_PORT,
            bind: Ipv4Addr::UNSPECIFIED,
            broadcast: Vec::new(),
            netbios_name: default_netbios_name(),
            workgroup: DEFAULT_WORKGROUP.to_string(),
            accept_any: false,
            via_host_service: true,
            share_port: false,
            name_service: true,
            file_server_name: false,
            name_service_port: DEFAULT_NAME_SERVICE_PORT,
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
            deliver_own: true,
            name_query_timeout: Duration::from_millis(250),
            reporter: Reporter::stderr(),
        }
    }

    /// Defaults for runtime directory `dir` (as [`NetConfig::new`]), then the environment:
    /// what a program without a command line of ours (a C or Python program) is configured
    /// by. Unset or empty variables leave the default.
    ///
    /// | variable | setting |
    /// |---|---|
    /// | `MAILSLOT_PORT` | [`port`](Self::port) |
    /// | `MAILSLOT_NETBIOS_NAME` | [`netbios_name`](Self::netbios_name) (upper-cased) |
    /// | `MAILSLOT_WORKGROUP` | [`workgroup`](Self::workgroup) (upper-cased) |
    /// | `MAILSLOT_BROADCAST` | [`broadcast`](Self::broadcast): addresses separated by commas or spaces |
    /// | `MAILSLOT_BIND` | [`bind`](Self::bind) |
    /// | `MAILSLOT_NAME_SERVICE_PORT` | [`name_service_port`](Self::name_service_port) |
    /// | `MAILSLOT_NO_NAME_SERVICE` | anything but `0`: [`name_service`](Self::name_service) off |
    ///
    /// # Errors
    /// [`NetError::InvalidSetting`] naming the variable whose value does not parse.
    pub fn from_env(dir: impl Into<PathBuf>) -> Result<NetConfig, NetError> {
        fn var(name: &str) -> Option<String> {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        }
        fn parse<T: std::str::FromStr>(
            name: &'static str,
            what: &'static str,
        ) -> Result<Option<T>, NetError> {
            var(name)
                .map(|v| {
                    v.parse().map_err(|_| NetError::InvalidSetting {
                        setting: name,
                        value: v,
                        reason: what,
                    })
                })
                .transpose()
        }
        let mut config = NetConfig::new(dir);
        if let Some(port) = parse("MAILSLOT_PORT", "not a UDP port number")? {
            config.port = port;
        }
        if let Some(name) = var("MAILSLOT_NETBIOS_NAME") {
            config.netbios_name = name.to_uppercase();
        }
        if let Some(group) = var("MAILSLOT_WORKGROUP") {
            config.workgroup = group.to_uppercase();
        }
        if let Some(list) = var("MAILSLOT_BROADCAST") {
            config.broadcast = list
                .split([',', ' '])
                .filter(|a| !a.is_empty())
                .map(|a| {
                    a.parse().map_err(|_| NetError::InvalidSetting {
                        setting: "MAILSLOT_BROADCAST",
                        value: a.to_owned(),
                        reason: "not an IPv4 address",
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(bind) = parse("MAILSLOT_BIND", "not an IPv4 address")? {
            config.bind = bind;
        }
        if let Some(port) = parse("MAILSLOT_NAME_SERVICE_PORT", "not a UDP port number")? {
            config.name_service_port = port;
        }
        if var("MAILSLOT_NO_NAME_SERVICE").is_some_and(|v| v != "0") {
            config.name_service = false;
        }
        Ok(config)
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.dir.join(format!("network-{}.lock", self.port))
    }

    pub(crate) fn state_path(&self) -> PathBuf {
        self.dir.join(format!("network-{}.state", self.port))
    }

    pub(crate) fn pending_path(&self) -> PathBuf {
        self.dir.join(format!("network-{}.pending", self.port))
    }

    pub(crate) fn handoff_path(&self) -> PathBuf {
        self.dir.join(format!("network-{}.sock", self.port))
    }
}

/// The host name, up to its first dot, upper-cased and cut to 15 bytes; `LOCALHOST` if it
/// cannot be read or has no usable character.
pub fn default_netbios_name() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    netbios_name_from_host(&host)
}

pub(crate) fn netbios_name_from_host(host: &str) -> String {
    let first = host.split('.').next().unwrap_or("");
    let name: String = first
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '*')
        .map(|c| c.to_ascii_uppercase())
        .take(15)
        .collect();
    if name.is_empty() {
        "LOCALHOST".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netbios_name_from_host_names() {
        assert_eq!(netbios_name_from_host("linuxbox.example.org"), "LINUXBOX");
        assert_eq!(
            netbios_name_from_host("a-very-long-hostname-here"),
            "A-VERY-LONG-HOS"
        );
        assert_eq!(netbios_name_from_host(""), "LOCALHOST");
        assert!(default_netbios_name().len() <= 15);
    }
}
