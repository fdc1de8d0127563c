//! Remote writes: targets, name resolution, size limits and the choice of source port.
//!
//! # Targets
//!
//! - `*`: our workgroup, as a group (0x11 to `WORKGROUP<00>`, broadcast).
//! - a name equal to our workgroup: the same.
//! - an IPv4 address: unique (0x10 to `*<00>`, or to [`SendOptions::destination_name`]).
//! - our own NetBIOS name: unique, to this host.
//! - any other name: a NetBIOS name query is broadcast (UDP 137, 3 tries); a unique answer
//!   gives the address, a group answer makes it a workgroup/domain target; without an answer,
//!   DNS and `/etc/hosts` (std's resolver); else `NameNotFound`.
//!
//! Unique targets go as 0x10 to `NAME<00>` (`NAME<03>` for Messenger, see
//! [`SendOptions::messenger`]); groups as 0x11 to `GROUP<00>` at every broadcast address
//! (`NetConfig::broadcast`, else every IPv4 interface's).
//!
//! IPv6 addresses (`::1`, `[::1]`, `fe80::1%eth0`) are refused at once: NetBIOS over TCP/IP
//! is IPv4 only.
//!
//! # Size limit, checked before anything is sent
//!
//! One limit for every kind of target, [`message_limit`]: a datagram is at most 576 bytes,
//! so a message is at most `414 − roundup4(n)` bytes for a mailslot name of `n` bytes (410 for
//! `TEST`, 406 for `MESSNGR` and `BROWSE`). It is checked before name resolution.
//!
//! # Source port
//!
//! 1. This process holds the role: its socket (source port = the role's port, 138).
//! 2. Another local process holds it: the datagrams are handed to the holder over
//!    `<dir>/network-<port>.sock` and sent from its socket, so replies that go to the source
//!    port (nmbd's GetBackupListResponse, ...) reach this host's role and so its mailslots.
//! 3. Nobody holds it (or the port is unavailable): an ephemeral socket. Replies to it are lost,
//!    as with any sender from an ephemeral port; [`SendReport::path`] says which path was used.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::OnceLock;

use super::codec::{
    self, emit_mailslot_datagram, nb_name, nb_name_checked, Emit, NbName, DIRECT_GROUP,
    DIRECT_UNIQUE, MAILSLOT_PREFIX,
};
use super::config::NetConfig;
use super::error::NetError;
use super::iface;
use super::nameservice::{self, Lookup};
use super::{handoff, role};

/// Where a remote write goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteTarget {
    /// A host: IPv4 address, NetBIOS name or DNS name (a NetBIOS name that turns out to be a
    /// group name is sent as a group).
    Host(String),
    /// A workgroup or domain (broadcast).
    Group(String),
    /// `*`: our own workgroup (broadcast).
    OwnGroup,
}

impl RemoteTarget {
    /// `*` is [`RemoteTarget::OwnGroup`]; anything else a [`RemoteTarget::Host`], resolved when sending.
    ///
    /// # Errors
    ///
    /// `InvalidTarget` for an empty target or `.` (that is the local host, not a network
    /// target), and for an IPv6 address.
    pub fn parse(s: &str) -> Result<RemoteTarget, NetError> {
        let target = match s.trim() {
            "" | "." => {
                return Err(NetError::InvalidTarget {
                    target: s.to_string(),
                    reason: "this is a local target, not a network one",
                })
            }
            "*" => RemoteTarget::OwnGroup,
            t => RemoteTarget::Host(t.to_string()),
        };
        target.check()?;
        Ok(target)
    }

    /// Refuses what no datagram can reach before any traffic: an IPv6 address.
    fn check(&self) -> Result<(), NetError> {
        let (RemoteTarget::Host(t) | RemoteTarget::Group(t)) = self else {
            return Ok(());
        };
        let bare = t.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
        let bare = bare.unwrap_or(t);
        let bare = bare
            .split_once('%')
            .map_or(bare, |(address, _zone)| address);
        if bare.parse::<Ipv6Addr>().is_ok() {
            return Err(NetError::InvalidTarget {
                target: t.clone(),
                reason: "an IPv6 address; only IPv4 is supported (NetBIOS datagrams are IPv4 \
                         only): give an IPv4 address or a name",
            });
        }
        Ok(())
    }
}

/// Per-send options (default: every suffix 0x00, destination name `*` for IP targets).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendOptions {
    /// Suffix of a unique destination name (0x00; 0x03 for Messenger).
    pub unique_suffix: u8,
    /// Suffix of a group destination name (0x00).
    pub group_suffix: u8,
    /// Suffix of our SOURCE_NAME (0x00).
    pub source_suffix: u8,
    /// Destination NetBIOS name for a target given as an IP address (default `*`).
    pub destination_name: Option<String>,
}

impl SendOptions {
    /// Messenger (`\MAILSLOT\MESSNGR`) addressing: unique targets as `NAME<03>`.
    pub fn messenger() -> SendOptions {
        SendOptions {
            unique_suffix: 0x03,
            ..SendOptions::default()
        }
    }
}

/// How the datagrams left this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPath {
    /// From this process's role socket.
    Role,
    /// Handed to the local process that holds the role.
    Handoff,
    /// From an ephemeral port (nobody holds the role here).
    Ephemeral,
}

/// What [`send`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// Where the datagrams went (one per broadcast address for a group).
    pub destinations: Vec<SocketAddrV4>,
    /// Sent as a group (0x11) datagram.
    pub group: bool,
    /// Destination NetBIOS name and suffix.
    pub destination_name: (String, u8),
    /// Which socket sent them.
    pub path: SendPath,
    /// UDP source port (and SOURCE_PORT in the header).
    pub source_port: u16,
    /// DGM_ID of the datagrams.
    pub dgm_id: u16,
    /// Size of one datagram.
    pub datagram_len: usize,
}

/// Next DGM_ID / name-service transaction id: a per-process counter with a random start.
pub(crate) fn next_id() -> u16 {
    static NEXT: OnceLock<AtomicU16> = OnceLock::new();
    let c = NEXT.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        AtomicU16::new(h.finish() as u16)
    });
    c.fetch_add(1, Ordering::Relaxed)
}

/// The mailslot name without `\MAILSLOT\` (accepted with or without it, any case).
fn mailslot_name(name: &str) -> Result<&str, NetError> {
    let rest = if name.len() >= MAILSLOT_PREFIX.len()
        && name.as_bytes()[..MAILSLOT_PREFIX.len()].eq_ignore_ascii_case(MAILSLOT_PREFIX.as_bytes())
    {
        &name[MAILSLOT_PREFIX.len()..]
    } else {
        name
    };
    let invalid = |reason| NetError::InvalidTarget {
        target: name.to_string(),
        reason,
    };
    if rest.is_empty() {
        return Err(invalid("empty mailslot name"));
    }
    if !rest.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(invalid("a remote mailslot name must be printable ASCII"));
    }
    // The datagram must hold at least a one-byte message.
    if codec::max_message_len(rest) == 0 {
        return Err(invalid("mailslot name too long for a datagram"));
    }
    Ok(rest)
}

fn nb(name: &str, suffix: u8) -> Result<NbName, NetError> {
    nb_name_checked(name, suffix).map_err(|reason| NetError::InvalidTarget {
        target: name.to_string(),
        reason,
    })
}

/// Our own name or workgroup as a NetBIOS name; a bad one is a bad setting, not a bad target.
pub(crate) fn own_nb(setting: &'static str, value: &str, suffix: u8) -> Result<NbName, NetError> {
    nb_name_checked(value, suffix).map_err(|reason| NetError::InvalidSetting {
        setting,
        value: value.to_string(),
        reason,
    })
}

#[derive(Debug, Clone, Copy)]
enum Resolved {
    Unique { ip: Ipv4Addr, name: NbName },
    Group { name: NbName },
}

/// The broadcast addresses for groups and name queries.
pub(crate) fn broadcasts(config: &NetConfig) -> Result<Vec<Ipv4Addr>, NetError> {
    let list = iface::broadcasts_or(&config.broadcast);
    if list.is_empty() {
        return Err(NetError::unavailable(
            "no IPv4 interface with a broadcast address is up; give one with --broadcast",
        ));
    }
    Ok(list)
}

fn our_address(config: &NetConfig) -> Ipv4Addr {
    if config.bind.is_unspecified() {
        Ipv4Addr::LOCALHOST
    } else {
        config.bind
    }
}

/// Classify a target without any network traffic (for `--dry-run`): IP → unique, workgroup or
/// `*` → group, other names → unique.
fn classify_offline(
    config: &NetConfig,
    target: &RemoteTarget,
    opts: &SendOptions,
) -> Result<Resolved, NetError> {
    match target {
        RemoteTarget::OwnGroup => Ok(Resolved::Group {
            name: own_nb("workgroup", &config.workgroup, opts.group_suffix)?,
        }),
        RemoteTarget::Group(g) => Ok(Resolved::Group {
            name: nb(g, opts.group_suffix)?,
        }),
        RemoteTarget::Host(h) => {
            if let Ok(ip) = h.parse::<Ipv4Addr>() {
                let name = opts.destination_name.as_deref().unwrap_or("*");
                return Ok(Resolved::Unique {
                    ip,
                    name: nb(name, opts.unique_suffix)?,
                });
            }
            if h.eq_ignore_ascii_case(&config.workgroup) {
                return Ok(Resolved::Group {
                    name: nb(h, opts.group_suffix)?,
                });
            }
            let short = h.split('.').next().unwrap_or(h);
            Ok(Resolved::Unique {
                ip: Ipv4Addr::UNSPECIFIED,
                name: nb(short, opts.unique_suffix)?,
            })
        }
    }
}

fn resolve(
    config: &NetConfig,
    target: &RemoteTarget,
    opts: &SendOptions,
) -> Result<Resolved, NetError> {
    let offline = classify_offline(config, target, opts);
    let RemoteTarget::Host(h) = target else {
        return offline;
    };
    if let Ok(ip) = h.parse::<Ipv4Addr>() {
        let _ = ip;
        return offline;
    }
    if h.eq_ignore_ascii_case(&config.workgroup) {
        return offline;
    }
    if h.eq_ignore_ascii_case(&config.netbios_name) {
        return Ok(Resolved::Unique {
            ip: our_address(config),
            name: nb(h, opts.unique_suffix)?,
        });
    }
    // A NetBIOS name: ask the LAN first.
    if let Some(name) = nb_name(h, opts.unique_suffix) {
        let bcasts = broadcasts(config)?;
        match nameservice::query(
            &name,
            &bcasts,
            config.name_service_port,
            config.name_query_timeout,
            config.bind,
        ) {
            Ok(Lookup::Unique(ip)) => return Ok(Resolved::Unique { ip, name }),
            Ok(Lookup::Group) => {
                return Ok(Resolved::Group {
                    name: nb(h, opts.group_suffix)?,
                })
            }
            Ok(Lookup::NotFound) | Err(_) => {}
        }
    }
    // Then DNS and /etc/hosts.
    let dns = (h.as_str(), 0u16)
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| {
            it.find_map(|a| match a {
                std::net::SocketAddr::V4(v4) => Some(*v4.ip()),
                std::net::SocketAddr::V6(_) => None,
            })
        });
    match dns {
        Some(ip) => {
            let short = h.split('.').next().unwrap_or(h);
            let name = match nb_name(short, opts.unique_suffix) {
                Some(n) => n,
                None => nb("*", opts.unique_suffix)?,
            };
            Ok(Resolved::Unique { ip, name })
        }
        None => Err(NetError::NameNotFound { name: h.clone() }),
    }
}

fn check_size(mailslot: &str, len: usize) -> Result<(), NetError> {
    let limit = codec::max_message_len(mailslot);
    if len > limit {
        return Err(NetError::MessageTooLarge { len, limit });
    }
    Ok(())
}

fn emit(e: &Emit<'_>) -> Result<Vec<u8>, NetError> {
    emit_mailslot_datagram(e).map_err(|err| match err.kind() {
        mailslot_wire::ErrorKind::TooLarge => NetError::MessageTooLarge {
            len: e.data.len(),
            limit: codec::max_message_len(e.mailslot),
        },
        _ => NetError::InvalidTarget {
            target: e.mailslot.to_string(),
            reason: err.context(),
        },
    })
}

/// The largest message `send` accepts for `mailslot` (with or without `\MAILSLOT\`), the
/// same for every target: a host by name or IP address, a workgroup, `*` (see the module
/// docs).
///
/// # Errors
///
/// `InvalidTarget` for a mailslot name that cannot go on the wire.
pub fn message_limit(mailslot: &str) -> Result<usize, NetError> {
    Ok(codec::max_message_len(mailslot_name(mailslot)?))
}

/// The datagram [`send`] would send first, without sending anything or resolving names
/// (`mailslot send --dry-run`): IP targets are unique to `*<00>`, the workgroup and `*` are
/// groups, other names unique. SOURCE_IP is the bind address or the first non-loopback
/// interface's, SOURCE_PORT the role's port.
///
/// # Errors
///
/// `InvalidTarget` for a bad mailslot or NetBIOS name; `MessageTooLarge` over the limit.
pub fn encode(
    config: &NetConfig,
    target: &RemoteTarget,
    mailslot: &str,
    data: &[u8],
    opts: &SendOptions,
) -> Result<Vec<u8>, NetError> {
    let m = mailslot_name(mailslot)?;
    target.check()?;
    check_size(m, data.len())?;
    let resolved = classify_offline(config, target, opts)?;
    let source_ip = if config.bind.is_unspecified() {
        iface::interfaces()
            .into_iter()
            .find(|i| !i.loopback)
            .map(|i| i.addr)
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    } else {
        config.bind
    };
    let (msg_type, destination) = match resolved {
        Resolved::Unique { name, .. } => (DIRECT_UNIQUE, name),
        Resolved::Group { name } => (DIRECT_GROUP, name),
    };
    emit(&Emit {
        msg_type,
        dgm_id: next_id(),
        source_ip,
        source_port: config.port,
        source: own_nb("NetBIOS name", &config.netbios_name, opts.source_suffix)?,
        destination,
        mailslot: m,
        data,
    })
}

/// Write `data` to `\MAILSLOT\<mailslot>` at `target` (see the module docs for targets,
/// limits and the source port). Success means the datagrams left this host; like Windows, a
/// remote host without that mailslot drops them silently.
///
/// # Errors
///
/// `InvalidTarget`, `MessageTooLarge` (nothing sent), `NameNotFound`, `NetworkUnavailable`
/// (no broadcast address, no route, the holder could not send), `Io`.
pub fn send(
    config: &NetConfig,
    target: &RemoteTarget,
    mailslot: &str,
    data: &[u8],
    opts: &SendOptions,
) -> Result<SendReport, NetError> {
    let m = mailslot_name(mailslot)?;
    target.check()?;
    check_size(m, data.len())?;
    let source = own_nb("NetBIOS name", &config.netbios_name, opts.source_suffix)?;
    let resolved = resolve(config, target, opts)?;
    let (msg_type, destination, dests): (u8, NbName, Vec<Ipv4Addr>) = match resolved {
        Resolved::Unique { ip, name } => (DIRECT_UNIQUE, name, vec![ip]),
        Resolved::Group { name } => (DIRECT_GROUP, name, broadcasts(config)?),
    };
    let ifaces = iface::interfaces();
    let dgm_id = next_id();
    let build = |source_port: u16| -> Result<Vec<(SocketAddrV4, Vec<u8>)>, NetError> {
        dests
            .iter()
            .map(|&ip| {
                let source_ip = iface::source_ip_for(ip, &ifaces, config.bind);
                let d = emit(&Emit {
                    msg_type,
                    dgm_id,
                    source_ip,
                    source_port,
                    source,
                    destination,
                    mailslot: m,
                    data,
                })?;
                Ok((SocketAddrV4::new(ip, config.port), d))
            })
            .collect()
    };
    let mut report = SendReport {
        destinations: dests
            .iter()
            .map(|&ip| SocketAddrV4::new(ip, config.port))
            .collect(),
        group: msg_type == DIRECT_GROUP,
        destination_name: (destination.name(), destination.suffix()),
        path: SendPath::Role,
        source_port: config.port,
        dgm_id,
        datagram_len: 0,
    };
    // 1. Our own role socket.
    if let Some(sock) = role::local_socket(&config.dir, config.port) {
        let items = build(config.port)?;
        report.datagram_len = items.first().map_or(0, |i| i.1.len());
        send_all(&sock, &items)?;
        return Ok(report);
    }
    // 2. The local holder.
    let items = build(config.port)?;
    report.datagram_len = items.first().map_or(0, |i| i.1.len());
    if handoff::handoff(&config.handoff_path(), &items)? {
        report.path = SendPath::Handoff;
        return Ok(report);
    }
    // 3. An ephemeral port.
    let sock = UdpSocket::bind(SocketAddrV4::new(config.bind, 0))
        .map_err(|e| NetError::io(format!("binding a UDP socket on {}", config.bind), e))?;
    sock.set_broadcast(true)
        .map_err(|e| NetError::io("setting SO_BROADCAST", e))?;
    let port = match sock.local_addr() {
        Ok(std::net::SocketAddr::V4(a)) => a.port(),
        _ => 0,
    };
    let items = build(port)?;
    send_all(&sock, &items)?;
    report.path = SendPath::Ephemeral;
    report.source_port = port;
    Ok(report)
}

fn send_all(sock: &UdpSocket, items: &[(SocketAddrV4, Vec<u8>)]) -> Result<(), NetError> {
    let mut first_err = None;
    let mut sent = 0;
    for (dest, d) in items {
        match handoff::send_blocking(sock, d, *dest) {
            Ok(()) => sent += 1,
            Err(e) => {
                first_err.get_or_insert((*dest, e));
            }
        }
    }
    // A group send succeeds if it left on at least one interface.
    match first_err {
        Some((dest, e)) if sent == 0 => {
            Err(NetError::unavailable(format!("cannot send to {dest}: {e}")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NetConfig {
        let mut c = NetConfig::new(std::env::temp_dir());
        c.netbios_name = "LINUXBOX".into();
        c.port = 138;
        c.bind = Ipv4Addr::new(10, 99, 0, 2);
        c
    }

    #[test]
    fn targets() {
        assert_eq!(RemoteTarget::parse("*").unwrap(), RemoteTarget::OwnGroup);
        assert!(RemoteTarget::parse(".").is_err());
        assert_eq!(
            RemoteTarget::parse("host").unwrap(),
            RemoteTarget::Host("host".into())
        );
    }

    #[test]
    fn encode_group_and_unique() {
        let c = cfg();
        let d = encode(
            &c,
            &RemoteTarget::OwnGroup,
            "\\mailslot\\TEST",
            b"Hello",
            &SendOptions::default(),
        )
        .unwrap();
        let p = mailslot_wire::MailslotDatagram::parse(&d).unwrap();
        assert_eq!(u8::from(p.msg_type), DIRECT_GROUP);
        assert_eq!(p.destination_name.name.name(), "WORKGROUP");
        assert_eq!(p.source_ip, c.bind);
        assert_eq!(p.source_port, 138);
        let d = encode(
            &c,
            &RemoteTarget::Host("peer".into()),
            "MESSNGR",
            b"x",
            &SendOptions::messenger(),
        )
        .unwrap();
        let p = codec::parse_mailslot_datagram(&d).unwrap();
        assert_eq!(
            (p.msg_type, p.destination.name(), p.destination.suffix()),
            (DIRECT_UNIQUE, "PEER".into(), 3)
        );
        let d = encode(
            &c,
            &RemoteTarget::Host("10.0.0.9".into()),
            "TEST",
            b"x",
            &SendOptions::default(),
        )
        .unwrap();
        assert!(codec::parse_mailslot_datagram(&d)
            .unwrap()
            .destination
            .is_wildcard());
        let d = encode(
            &c,
            &RemoteTarget::Host("workgroup".into()),
            "TEST",
            b"x",
            &SendOptions::default(),
        )
        .unwrap();
        assert_eq!(
            codec::parse_mailslot_datagram(&d).unwrap().msg_type,
            DIRECT_GROUP
        );
    }

    #[test]
    fn one_size_limit_for_every_target() {
        let c = cfg();
        let opts = SendOptions::default();
        let targets = [
            RemoteTarget::OwnGroup,
            RemoteTarget::Group("OTHERWG".into()),
            RemoteTarget::Host("peer".into()),
            RemoteTarget::Host("10.0.0.9".into()),
            RemoteTarget::Host("workgroup".into()),
        ];
        for target in &targets {
            for len in [1, 409, 410] {
                encode(&c, target, "TEST", &vec![0u8; len], &opts).unwrap();
            }
            for len in [411, 424, 425, 426, 427, 428, 429, 65_000] {
                let e = encode(&c, target, "TEST", &vec![0u8; len], &opts).unwrap_err();
                assert!(
                    matches!(e, NetError::MessageTooLarge { limit: 410, len: l } if l == len),
                    "{target:?} {len}: {e}"
                );
            }
            // MESSNGR is 3 bytes longer than TEST: 4 bytes less after padding.
            let e = encode(&c, target, "MESSNGR", &[0u8; 407], &opts).unwrap_err();
            assert!(
                matches!(e, NetError::MessageTooLarge { limit: 406, .. }),
                "{e}"
            );
        }
        // send() refuses before any traffic, with the same limit.
        let e = send(&c, &RemoteTarget::OwnGroup, "TEST", &[0u8; 411], &opts).unwrap_err();
        assert!(
            matches!(e, NetError::MessageTooLarge { limit: 410, .. }),
            "{e}"
        );
        assert_eq!(message_limit("BROWSE").unwrap(), 406);
        assert_eq!(message_limit("\\MAILSLOT\\TEST").unwrap(), 410);
    }

    #[test]
    fn ipv6_targets_are_refused_at_once() {
        for t in ["::1", "fe80::1", "[::1]", "fe80::1%eth0", "[fe80::1%eth0]"] {
            let e = RemoteTarget::parse(t).unwrap_err();
            assert!(
                matches!(e, NetError::InvalidTarget { .. }) && e.to_string().contains("only IPv4"),
                "{t}: {e}"
            );
            // The library's other entry points, without RemoteTarget::parse.
            let e = send(
                &cfg(),
                &RemoteTarget::Host(t.into()),
                "TEST",
                b"x",
                &SendOptions::default(),
            )
            .unwrap_err();
            assert!(e.to_string().contains("only IPv4"), "{t}: {e}");
        }
        assert_eq!(
            RemoteTarget::parse("a:b").unwrap(),
            RemoteTarget::Host("a:b".into())
        );
    }

    #[test]
    fn not_found_says_whether_a_name_query_was_sent() {
        let long = NetError::NameNotFound {
            name: "ABCDEFGHIJKLMNOPQ".into(),
        }
        .to_string();
        assert!(!long.contains("no answer"), "{long}");
        assert!(long.contains("longer than 15 characters"), "{long}");
        let short = NetError::NameNotFound {
            name: "HOSTB".into(),
        }
        .to_string();
        assert!(
            short.contains("no answer to a NetBIOS name query"),
            "{short}"
        );
    }

    #[test]
    fn bad_own_names_are_settings() {
        let mut c = cfg();
        c.workgroup = "A.B".into();
        let e = encode(
            &c,
            &RemoteTarget::OwnGroup,
            "TEST",
            b"x",
            &SendOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                NetError::InvalidSetting {
                    setting: "workgroup",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("code page 850"), "{e}");
        let mut c = cfg();
        c.netbios_name = "X".repeat(16);
        let e = encode(
            &c,
            &RemoteTarget::OwnGroup,
            "TEST",
            b"x",
            &SendOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                NetError::InvalidSetting {
                    setting: "NetBIOS name",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_mailslot_names() {
        let c = cfg();
        for bad in ["", "\\MAILSLOT\\", "bad\u{1}name", "é", &"x".repeat(500)] {
            assert!(matches!(
                encode(
                    &c,
                    &RemoteTarget::OwnGroup,
                    bad,
                    b"x",
                    &SendOptions::default()
                ),
                Err(NetError::InvalidTarget { .. })
            ));
        }
    }
}
