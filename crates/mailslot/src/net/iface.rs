//! IPv4 interfaces (addresses, netmasks, broadcast addresses) and who owns a UDP port.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

/// One IPv4 address of an interface that is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface name (`eth0`).
    pub name: String,
    /// Its address.
    pub addr: Ipv4Addr,
    /// Its netmask.
    pub netmask: Ipv4Addr,
    /// Its broadcast address, if it has one (not loopback or point-to-point).
    pub broadcast: Option<Ipv4Addr>,
    /// Loopback interface.
    pub loopback: bool,
}

impl Interface {
    /// Whether `ip` is on this interface's subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = u32::from(self.netmask);
        u32::from(self.addr) & m == u32::from(ip) & m
    }
}

/// Every IPv4 address of every interface that is up (empty if they cannot be read).
pub fn interfaces() -> Vec<Interface> {
    let Ok(addrs) = getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in addrs {
        if !a.flags.contains(InterfaceFlags::IFF_UP) {
            continue;
        }
        let Some(addr) = a
            .address
            .as_ref()
            .and_then(|s| s.as_sockaddr_in())
            .map(|s| s.ip())
        else {
            continue;
        };
        let netmask = a
            .netmask
            .as_ref()
            .and_then(|s| s.as_sockaddr_in())
            .map(|s| s.ip())
            .unwrap_or(Ipv4Addr::BROADCAST);
        let broadcast = if a.flags.contains(InterfaceFlags::IFF_BROADCAST) {
            a.broadcast
                .as_ref()
                .and_then(|s| s.as_sockaddr_in())
                .map(|s| s.ip())
        } else {
            None
        };
        out.push(Interface {
            name: a.interface_name.clone(),
            addr,
            netmask,
            broadcast,
            loopback: a.flags.contains(InterfaceFlags::IFF_LOOPBACK),
        });
    }
    out
}

/// The broadcast addresses to use: `configured` (`--broadcast`), else every interface's.
pub(crate) fn broadcasts_or(configured: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
    if configured.is_empty() {
        broadcast_addresses()
    } else {
        configured.to_vec()
    }
}

/// Broadcast addresses of every IPv4 interface that is up and not loopback, deduplicated.
pub fn broadcast_addresses() -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = Vec::new();
    for i in interfaces() {
        if let (Some(b), false) = (i.broadcast, i.loopback) {
            if !out.contains(&b) {
                out.push(b);
            }
        }
    }
    out
}

/// The local address the kernel would send from to reach `dest` (a route lookup through a
/// connected UDP socket: nothing is sent). Falls back to the interface whose broadcast
/// address or subnet matches, then to `fallback`.
pub(crate) fn source_ip_for(dest: Ipv4Addr, ifaces: &[Interface], fallback: Ipv4Addr) -> Ipv4Addr {
    if let Some(i) = ifaces.iter().find(|i| i.broadcast == Some(dest)) {
        return i.addr;
    }
    if dest.is_loopback() {
        return Ipv4Addr::LOCALHOST;
    }
    let probe = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).and_then(|s| {
        s.set_broadcast(true)?;
        s.connect(SocketAddrV4::new(dest, 9))?;
        s.local_addr()
    });
    match probe {
        Ok(std::net::SocketAddr::V4(a)) if !a.ip().is_unspecified() => *a.ip(),
        _ => ifaces
            .iter()
            .find(|i| !i.loopback && i.contains(dest))
            .map(|i| i.addr)
            .unwrap_or(fallback),
    }
}

/// A process that has a socket bound to a UDP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOwner {
    /// Its pid.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub command: String,
    /// The local address of its socket.
    pub local: SocketAddrV4,
}

/// Who has a UDP socket bound to `port`, from `/proc/net/udp` and `/proc/*/fd`. Sockets of
/// processes we may not inspect (another user's, without root) are returned with pid 0.
pub fn udp_port_owners(port: u16) -> Vec<PortOwner> {
    let Ok(table) = fs::read_to_string("/proc/net/udp") else {
        return Vec::new();
    };
    let sockets = parse_proc_net_udp(&table, port);
    if sockets.is_empty() {
        return Vec::new();
    }
    let mut found: Vec<PortOwner> = Vec::new();
    if let Ok(procs) = fs::read_dir("/proc") {
        for p in procs.flatten().take(100_000) {
            let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten().take(100_000) {
                let Ok(link) = fs::read_link(fd.path()) else {
                    continue;
                };
                let link = link.to_string_lossy();
                let Some(inode) = link
                    .strip_prefix("socket:[")
                    .and_then(|s| s.strip_suffix(']'))
                else {
                    continue;
                };
                let Ok(inode) = inode.parse::<u64>() else {
                    continue;
                };
                if let Some((local, _)) = sockets.iter().find(|(_, i)| *i == inode) {
                    if !found.iter().any(|o| o.pid == pid && o.local == *local) {
                        let command = fs::read_to_string(p.path().join("comm"))
                            .unwrap_or_default()
                            .trim()
                            .to_string();
                        found.push(PortOwner {
                            pid,
                            command,
                            local: *local,
                        });
                    }
                }
            }
        }
    }
    for (local, _) in &sockets {
        if !found.iter().any(|o| o.local == *local) {
            found.push(PortOwner {
                pid: 0,
                command: String::new(),
                local: *local,
            });
        }
    }
    found
}

/// `(local address, inode)` of every socket in a `/proc/net/udp` table bound to `port`.
pub(crate) fn parse_proc_net_udp(table: &str, port: u16) -> Vec<(SocketAddrV4, u64)> {
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 10 {
            continue;
        }
        let Some((ip_hex, port_hex)) = cols[1].split_once(':') else {
            continue;
        };
        let (Ok(ip), Ok(p), Ok(inode)) = (
            u32::from_str_radix(ip_hex, 16),
            u16::from_str_radix(port_hex, 16),
            cols[9].parse::<u64>(),
        ) else {
            continue;
        };
        if p == port {
            // The kernel prints the network-order address bytes as one native-endian u32.
            out.push((
                SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), p),
                inode,
            ));
        }
    }
    out
}

/// What waits in a UDP socket's receive queue and what the kernel dropped on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UdpQueue {
    /// Bytes queued, as the kernel charges them (payload plus overhead).
    pub(crate) queued_bytes: u64,
    /// Datagrams dropped since the socket was opened (`sk_drops`).
    pub(crate) drops: u64,
}

/// `(inode, queue)` of every socket bound to `port` in a `/proc/net/udp` text.
pub(crate) fn parse_udp_queues(table: &str, port: u16) -> Vec<(u64, UdpQueue)> {
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 13 {
            continue;
        }
        let port_ok = cols[1]
            .split_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            == Some(port);
        let rx = cols[4]
            .split_once(':')
            .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok());
        if let (true, Some(rx), Ok(inode), Ok(drops)) =
            (port_ok, rx, cols[9].parse(), cols[12].parse())
        {
            out.push((
                inode,
                UdpQueue {
                    queued_bytes: rx,
                    drops,
                },
            ));
        }
    }
    out
}

/// The queue of process `pid`'s UDP socket bound to `port` (the first found), or `None` when
/// it has none or its descriptors cannot be read (another user's process, without root).
pub(crate) fn udp_queue_of(pid: u32, port: u16) -> Option<UdpQueue> {
    let table = fs::read_to_string("/proc/net/udp").ok()?;
    let queues = parse_udp_queues(&table, port);
    if queues.is_empty() {
        return None;
    }
    fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .take(100_000)
        .find_map(|fd| {
            let link = fs::read_link(fd.path()).ok()?;
            let inode: u64 = link
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            queues.iter().find(|(i, _)| *i == inode).map(|(_, q)| *q)
        })
}

/// One line naming the owners of `port` for an error message, e.g.
/// `nmbd (pid 812) on 0.0.0.0:138`.
pub(crate) fn describe_owners(owners: &[PortOwner]) -> String {
    if owners.is_empty() {
        return "another program (not found in /proc/net/udp)".to_string();
    }
    let parts: Vec<String> = owners
        .iter()
        .map(|o| {
            if o.pid == 0 {
                format!(
                    "a process we may not inspect on {} (run as root to see which)",
                    o.local
                )
            } else {
                format!("{} (pid {}) on {}", o.command, o.pid, o.local)
            }
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_udp() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 00000000:008A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4711 2 0000000000000000 0
  124: 0100007F:0089 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4712 2 0000000000000000 0
  125: 0A63000A:008A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4713 2 0000000000000000 0
";
        let v = parse_proc_net_udp(table, 138);
        assert_eq!(
            v,
            vec![
                (SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 138), 4711),
                (SocketAddrV4::new(Ipv4Addr::new(10, 0, 99, 10), 138), 4713)
            ]
        );
    }

    #[test]
    fn parses_udp_queues() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 00000000:008A 00000000:0000 07 00000000:0001F400 00:00000000 00000000     0        0 4711 2 0000000000000000 5090
  124: 0100007F:0089 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4712 2 0000000000000000 7
";
        assert_eq!(
            parse_udp_queues(table, 138),
            vec![(
                4711,
                UdpQueue {
                    queued_bytes: 128_000,
                    drops: 5090
                }
            )]
        );
    }

    #[test]
    fn finds_our_own_queue() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        let q = udp_queue_of(std::process::id(), port).expect("our socket");
        assert_eq!(q.drops, 0);
    }

    #[test]
    fn finds_our_own_socket() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        let owners = udp_port_owners(port);
        assert!(
            owners.iter().any(|o| o.pid == std::process::id()),
            "{owners:?}"
        );
        assert!(describe_owners(&owners).contains(&format!("pid {}", std::process::id())));
    }

    #[test]
    fn loopback_is_listed() {
        let all = interfaces();
        assert!(
            all.iter().any(|i| i.loopback && i.addr.is_loopback()),
            "{all:?}"
        );
        assert!(!broadcast_addresses().iter().any(|b| b.is_loopback()));
    }
}
