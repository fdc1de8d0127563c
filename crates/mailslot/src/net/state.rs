//! The role's counters and its state file, and [`status`] for `mailslot status`.
//!
//! The state file `<dir>/network-<port>.state` is written by the process that holds (or tried
//! to take) the role: atomically (a temporary file renamed over it), at once on every state
//! change and at most every [`FLUSH_INTERVAL`] for counter changes. Format: one `key=value`
//! per line, UTF-8, keys in snake case, unknown keys ignored by readers:
//!
//! ```text
//! version=1
//! pid=4242
//! port=138
//! state=holding
//! reason=
//! bind=0.0.0.0:138
//! shared=false
//! name_service=answering on 0.0.0.0:137
//! netbios_name=LINUXBOX
//! workgroup=WORKGROUP
//! received=10
//! delivered=7
//! ...
//! ```
//!
//! The file alone does not say whether anyone holds the role (a holder killed with `kill -9`
//! leaves it behind): [`status`] asks the kernel about the election lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

/// Counter changes reach the state file at most this often.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters of a role (shared with its threads).
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        /// A snapshot of the role's counters.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct NetCounters {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> NetCounters {
                NetCounters { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl NetCounters {
            /// `(key, value)` pairs in a fixed order, as in the state file and JSON.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }

            fn set(&mut self, key: &str, value: u64) {
                match key {
                    $(stringify!($name) => self.$name = value,)*
                    _ => {}
                }
            }
        }
    };
}

counters! {
    /// Datagrams read from the socket (every one, valid or not).
    received,
    /// Mailslot writes handed to a local mailslot.
    delivered,
    /// Datagrams that fail the receive checks (bad names, offsets, SMB fields, empty, ...).
    dropped_malformed,
    /// Mailslot writes for a name no local server has open.
    dropped_no_mailslot,
    /// Fragments (M set or PACKET_OFFSET != 0); nobody reassembles them.
    dropped_fragment,
    /// Valid writes addressed to a NetBIOS name that is not ours.
    dropped_not_for_us,
    /// Identical datagrams within the dedupe window.
    dropped_duplicate,
    /// Datagram-service messages without mailslot data (0x13–0x16, unknown types).
    dropped_other_type,
    /// Datagrams larger than the receive buffer.
    dropped_truncated,
    /// Writes the local side could not queue (too large for the server, queue full, ...).
    dropped_failed,
    /// Datagrams the kernel dropped because the socket buffer was full (SO_RXQ_OVFL).
    dropped_kernel,
    /// Valid datagrams whose DGM_LENGTH disagrees with the UDP length (delivered anyway).
    dgm_length_mismatch,
    /// Datagrams sent for other local processes (handoff).
    sent_handoff,
    /// NetBIOS name queries answered.
    name_queries_answered,
    /// Other nodes' registrations of our names refused (negative registration responses).
    name_defences,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What [`status`] reports about the network role of a runtime directory and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetStatus {
    /// The process holding the election lock, or `None` when nobody holds it.
    pub holder_pid: Option<u32>,
    /// The UDP port.
    pub port: u16,
    /// `holding` (bound, receiving), `holding_shared` (bound alongside another program with
    /// `SO_REUSEADDR`), `via_service` (the host service holds the port and hands this
    /// directory's datagrams over), `starting`, `unavailable` (the last process that tried could not bind;
    /// see `reason`), `stopped` (nobody holds it; the last holder closed or died), `stalled`
    /// (the holder is stopped, by SIGSTOP or a debugger: nothing is delivered, and the kernel
    /// drops what overflows its buffer; `reason` says how much is queued and dropped so far,
    /// when the holder's descriptors can be read), or `none` (never started in this directory).
    pub state: String,
    /// Why the role is unavailable or stopped.
    pub reason: Option<String>,
    /// Address the holder's socket is bound to.
    pub bind: Option<String>,
    /// The name service's state (answering, off, or why not).
    pub name_service: Option<String>,
    /// Our NetBIOS names on the LAN: `registering` (asking whether anyone holds them; not
    /// answered for yet), `registered` (ours: answered for, defended, released when the role
    /// is given up), `conflict` (another node holds one: see `name_conflict`), or `off` (the
    /// name service does not run here). `None` when nobody has held the role.
    pub name_state: Option<String>,
    /// In conflict: the name (`HOSTB<00>`) and the address of the node that holds it.
    pub name_conflict: Option<(String, String)>,
    /// Counters as last flushed by the holder.
    pub counters: NetCounters,
}

/// The state file's content, as written.
#[derive(Debug, Clone, Default)]
pub(crate) struct StateRecord {
    pub(crate) pid: u32,
    pub(crate) port: u16,
    pub(crate) state: String,
    pub(crate) reason: String,
    pub(crate) bind: String,
    pub(crate) shared: bool,
    pub(crate) name_service: String,
    pub(crate) name_state: String,
    pub(crate) name_conflict: String,
    pub(crate) name_defender: String,
    pub(crate) netbios_name: String,
    pub(crate) workgroup: String,
    pub(crate) counters: NetCounters,
}

fn clean(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

impl StateRecord {
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("version=1\n");
        out.push_str(&format!("pid={}\n", self.pid));
        out.push_str(&format!("port={}\n", self.port));
        out.push_str(&format!("state={}\n", clean(&self.state)));
        out.push_str(&format!("reason={}\n", clean(&self.reason)));
        out.push_str(&format!("bind={}\n", clean(&self.bind)));
        out.push_str(&format!("shared={}\n", self.shared));
        out.push_str(&format!("name_service={}\n", clean(&self.name_service)));
        out.push_str(&format!("name_state={}\n", clean(&self.name_state)));
        out.push_str(&format!("name_conflict={}\n", clean(&self.name_conflict)));
        out.push_str(&format!("name_defender={}\n", clean(&self.name_defender)));
        out.push_str(&format!("netbios_name={}\n", clean(&self.netbios_name)));
        out.push_str(&format!("workgroup={}\n", clean(&self.workgroup)));
        for (k, v) in self.counters.fields() {
            out.push_str(&format!("{k}={v}\n"));
        }
        out
    }

    pub(crate) fn parse(text: &str) -> StateRecord {
        let mut r = StateRecord::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "pid" => r.pid = v.parse().unwrap_or(0),
                "port" => r.port = v.parse().unwrap_or(0),
                "state" => r.state = v.to_string(),
                "reason" => r.reason = v.to_string(),
                "bind" => r.bind = v.to_string(),
                "shared" => r.shared = v == "true",
                "name_service" => r.name_service = v.to_string(),
                "name_state" => r.name_state = v.to_string(),
                "name_conflict" => r.name_conflict = v.to_string(),
                "name_defender" => r.name_defender = v.to_string(),
                "netbios_name" => r.netbios_name = v.to_string(),
                "workgroup" => r.workgroup = v.to_string(),
                other => {
                    if let Ok(n) = v.parse::<u64>() {
                        r.counters.set(other, n);
                    }
                }
            }
        }
        r
    }

    /// Write atomically: a per-process temporary file renamed over the state file.
    pub(crate) fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = tmp_path(path);
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(self.render().as_bytes())?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

/// Who holds the flock on `lock_path`: `Some(Some(pid))` (held, pid known), `Some(None)` (held,
/// pid unknown), `None` (free or no such file).
pub(crate) fn lock_holder(lock_path: &Path) -> Option<Option<u32>> {
    let file = OpenOptions::new().read(true).open(lock_path).ok()?;
    let ino = {
        use std::os::unix::fs::MetadataExt;
        file.metadata().ok().map(|m| (m.dev(), m.ino()))
    };
    // /proc/locks names the pid without touching the lock.
    if let (Some((dev, ino)), Ok(locks)) = (ino, fs::read_to_string("/proc/locks")) {
        if let Some(pid) = flock_pid_from_proc_locks(&locks, dev, ino) {
            return Some(Some(pid));
        }
    }
    // Otherwise probe: a shared non-blocking lock fails exactly when someone holds it. The
    // probe is held for microseconds; a waiter that wakes meanwhile just retries.
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_probe) => None,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Some(None),
        Err(_) => None,
    }
}

/// The pid of the granted FLOCK WRITE lock on device `dev`, inode `ino` in a `/proc/locks` text.
pub(crate) fn flock_pid_from_proc_locks(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let major = nix::sys::stat::major(dev);
    let minor = nix::sys::stat::minor(dev);
    for line in locks.lines() {
        // "1: FLOCK  ADVISORY  WRITE 4242 00:1f:123456 0 EOF"; blocked waiters have "->".
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 6 || cols[1] != "FLOCK" || cols[1] == "->" {
            continue;
        }
        let mut id = cols[5].split(':');
        let (Some(ma), Some(mi), Some(i)) = (id.next(), id.next(), id.next()) else {
            continue;
        };
        let (Ok(ma), Ok(mi), Ok(i)) = (
            u64::from_str_radix(ma, 16),
            u64::from_str_radix(mi, 16),
            i.parse::<u64>(),
        ) else {
            continue;
        };
        if ma == major && mi == minor && i == ino {
            if let Ok(pid) = cols[4].parse::<i64>() {
                if pid > 0 {
                    return Some(pid as u32);
                }
            }
        }
    }
    None
}

/// Whether a `/proc/PID/stat` line says the process is stopped (`T`) or stopped by a tracer
/// (`t`). The state follows the command name, which is in parentheses and may hold anything.
fn stopped_from_proc_stat(stat: &str) -> bool {
    stat.rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next())
        .is_some_and(|state| state == "T" || state == "t")
}

/// The network role of runtime directory `dir` and UDP `port`, for `mailslot status`.
/// `holder_pid` comes from the kernel's view of the election lock, not from the file.
pub fn status(dir: &Path, port: u16) -> NetStatus {
    let lock_path = dir.join(format!("network-{port}.lock"));
    let state_path = dir.join(format!("network-{port}.state"));
    let record = fs::read_to_string(&state_path)
        .ok()
        .map(|t| StateRecord::parse(&t));
    let holder = lock_holder(&lock_path);
    let mut st = NetStatus {
        holder_pid: None,
        port,
        state: "none".to_string(),
        reason: None,
        bind: None,
        name_service: None,
        name_state: None,
        name_conflict: None,
        counters: NetCounters::default(),
    };
    if let Some(r) = &record {
        st.name_state = (!r.name_state.is_empty()).then(|| r.name_state.clone());
        st.name_conflict = (!r.name_conflict.is_empty())
            .then(|| (r.name_conflict.clone(), r.name_defender.clone()));
        st.state = r.state.clone();
        st.reason = (!r.reason.is_empty()).then(|| r.reason.clone());
        st.bind = (!r.bind.is_empty()).then(|| r.bind.clone());
        st.name_service = (!r.name_service.is_empty()).then(|| r.name_service.clone());
        st.counters = r.counters;
    }
    match holder {
        Some(pid) => {
            st.holder_pid = pid.or(record.as_ref().map(|r| r.pid).filter(|&p| p != 0));
            if record.is_none() || st.state == "stopped" || st.state == "unavailable" {
                // Locked but the holder has not written yet: it is binding.
                st.state = "starting".to_string();
                st.reason = None;
            }
            let stopped = st.holder_pid.is_some_and(|pid| {
                fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|stat| stopped_from_proc_stat(&stat))
            });
            if stopped {
                let pid = st.holder_pid.unwrap_or(0);
                // Live, from the kernel: the counters above only catch up when it continues.
                let queue = super::iface::udp_queue_of(pid, port).map_or(String::new(), |q| {
                    format!(
                        " (now {} bytes queued; {} dropped since its socket was opened)",
                        q.queued_bytes, q.drops
                    )
                });
                st.reason = Some(format!(
                    "the holder (pid {pid}) is stopped (SIGSTOP or a debugger): nothing is \
                     delivered, and the kernel drops what overflows its receive buffer{queue}"
                ));
                st.state = "stalled".to_string();
            }
        }
        None => {
            if matches!(st.state.as_str(), "holding" | "holding_shared" | "starting") {
                let pid = record.as_ref().map(|r| r.pid).unwrap_or(0);
                st.state = "stopped".to_string();
                st.reason = Some(format!("the holder (pid {pid}) exited without a successor"));
            }
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        let mut r = StateRecord {
            pid: 42,
            port: 13800,
            state: "holding".into(),
            reason: "line\nbreak".into(),
            bind: "0.0.0.0:13800".into(),
            shared: true,
            name_service: "off".into(),
            name_state: "conflict".into(),
            name_conflict: "HOST<00>".into(),
            name_defender: "10.0.0.9".into(),
            netbios_name: "HOST".into(),
            workgroup: "WG".into(),
            counters: NetCounters::default(),
        };
        r.counters.received = 7;
        r.counters.dropped_fragment = 3;
        let back = StateRecord::parse(&r.render());
        assert_eq!(back.pid, 42);
        assert_eq!(back.state, "holding");
        assert_eq!(back.reason, "line break");
        assert_eq!(
            (
                back.name_state.as_str(),
                back.name_conflict.as_str(),
                back.name_defender.as_str()
            ),
            ("conflict", "HOST<00>", "10.0.0.9")
        );
        assert!(back.shared);
        assert_eq!(back.counters, r.counters);
    }

    #[test]
    fn proc_locks_lines() {
        let dev = nix::sys::stat::makedev(0x103, 0x2);
        let text = "1: FLOCK  ADVISORY  WRITE 4242 103:02:77 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 4343 103:02:77 0 EOF\n2: POSIX  ADVISORY  WRITE 99 103:02:78 0 EOF\n";
        assert_eq!(flock_pid_from_proc_locks(text, dev, 77), Some(4242));
        assert_eq!(flock_pid_from_proc_locks(text, dev, 78), None);
    }

    #[test]
    fn proc_stat_states() {
        assert!(stopped_from_proc_stat("42 (mailslot) T 1 42 42 0 -1"));
        assert!(stopped_from_proc_stat("42 (a) b) t 1"));
        assert!(!stopped_from_proc_stat("42 (T) S 1 42"));
        assert!(!stopped_from_proc_stat("garbage"));
    }

    #[test]
    fn status_of_empty_dir_is_none() {
        let dir = std::env::temp_dir().join(format!("ms-net-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let st = status(&dir, 4);
        assert_eq!(st.holder_pid, None);
        assert_eq!(st.state, "none");
        let _ = fs::remove_dir_all(&dir);
    }
}
