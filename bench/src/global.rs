//! What the global-scope peer (`mailslot-global`) needs around its clients: the host service,
//! run as a process of its own (this binary's `__child host-service`, which binds
//! `mailslot::service::HostService` to a fresh directory and serves until its stdin closes),
//! and the users its clients run as.
//!
//! As root, the clients run as three other users through `setpriv` (the writer as `bin`,
//! readers and the ping-pong sides as `nobody` and `daemon`), from a copy of this binary in a
//! 0755 directory, since those users may not reach the build directory. Otherwise every
//! process runs as the bench's user, and the tables say so.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::args::{child_args, Args};
use crate::fanout::{usage_fields, usage_of};
use crate::proc::{self, BenchResult, Child, Launch, TempDir};
use crate::sys::{self, Usage};

/// Who a client process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Writer,
    /// Fan-out reader `index`.
    Reader(usize),
    Ping,
    Pong,
}

const BIN: (u32, &str) = (2, "bin");
const NOBODY: (u32, &str) = (65534, "nobody");
const DAEMON: (u32, &str) = (1, "daemon");

impl Role {
    /// The user this role runs as when the bench runs as root (uid, name).
    fn user(self) -> (u32, &'static str) {
        match self {
            Role::Writer => BIN,
            Role::Reader(i) if i % 2 == 0 => NOBODY,
            Role::Reader(_) => DAEMON,
            Role::Ping => NOBODY,
            Role::Pong => DAEMON,
        }
    }
}

/// How clients of the global scope are started.
#[derive(Debug)]
pub struct Users {
    /// As root: the directory of the copy of this binary that every user can run, and the
    /// copy.
    copy: Option<(TempDir, PathBuf)>,
    /// The bench's own (effective) uid.
    uid: u32,
}

impl Users {
    pub fn new() -> BenchResult<Users> {
        let uid = sys::euid();
        if uid != 0 {
            return Ok(Users { copy: None, uid });
        }
        let dir = TempDir::new("exe")?;
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find the bench binary: {e}"))?;
        let copy = dir.path().join("mailslot-bench");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .and_then(|()| std::fs::copy(&exe, &copy).map(drop))
            .and_then(|()| std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("cannot copy the bench binary for other users: {e}"))?;
        Ok(Users {
            copy: Some((dir, copy)),
            uid,
        })
    }

    /// How to start `role`, a client of `service`.
    pub fn launch(&self, role: Role, service: &Service) -> Launch {
        Launch {
            setpriv: self.copy.as_ref().map(|(_, exe)| {
                let (uid, _) = role.user();
                (
                    vec![
                        format!("--reuid={uid}"),
                        format!("--regid={uid}"),
                        "--clear-groups".to_owned(),
                    ],
                    exe.clone(),
                )
            }),
            env: vec![("MAILSLOT_GLOBAL_DIR", service.dir())],
            wrapper: None,
        }
    }

    /// The users of the roles, for the notes under the tables.
    pub fn describe(&self, roles: &[Role]) -> String {
        let service = format!(
            "The host service is a process of its own (HostService::bind + run in `__child \
             host-service`, a fresh directory per configuration, uid {})",
            self.uid
        );
        if self.copy.is_none() {
            return format!(
                "{service}; the bench does not run as root, so every client runs as the same \
                 user (uid {}) as the service: no other-user clients",
                self.uid
            );
        }
        let mut parts = Vec::new();
        for role in roles {
            let (uid, name) = role.user();
            let what = match role {
                Role::Writer => "writer".to_owned(),
                Role::Reader(0) => "even readers".to_owned(),
                Role::Reader(_) => "odd readers".to_owned(),
                Role::Ping => "ping".to_owned(),
                Role::Pong => "pong".to_owned(),
            };
            parts.push(format!("{what} uid {uid} ({name})"));
        }
        format!(
            "{service}; clients as other users through setpriv: {}",
            parts.join(", ")
        )
    }

    /// The users as one word list for the raw records.
    pub fn record(&self, roles: &[Role]) -> String {
        let users: Vec<String> = roles
            .iter()
            .map(|r| match self.copy {
                Some(_) => r.user().0.to_string(),
                None => self.uid.to_string(),
            })
            .collect();
        format!("service={} clients={}", self.uid, users.join("/"))
    }
}

/// The host service of one configuration, a child process; stops when dropped or finished.
#[derive(Debug)]
pub struct Service {
    // Dropped first: the process goes before its directory does.
    child: Child,
    dir: TempDir,
}

impl Service {
    /// Starts a service on a fresh directory (pinned to `cpu` if given) and waits until it
    /// listens.
    pub fn start(cpu: Option<usize>) -> BenchResult<Service> {
        let dir = TempDir::reserve("global");
        let mut pairs = vec![("global-dir", dir.path().display().to_string())];
        if let Some(cpu) = cpu {
            pairs.push(("cpu", cpu.to_string()));
        }
        let mut child = Child::spawn("host service", &child_args("host-service", &pairs))?;
        child.expect("ready")?;
        Ok(Service { child, dir })
    }

    /// The value of `MAILSLOT_GLOBAL_DIR` for its clients.
    pub fn dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// The service's CPU time and context switches so far (all its threads).
    pub fn usage(&mut self) -> BenchResult<Usage> {
        self.child.send("usage")?;
        usage_of(&self.child.expect("usage")?)
    }

    /// Stops it (closes its stdin) and waits for it to exit.
    pub fn finish(self) -> BenchResult<()> {
        let Service { child, dir } = self;
        let result = child.finish();
        drop(dir);
        result
    }
}

/// Set when the orchestrator closes the service's stdin.
static STOP: AtomicBool = AtomicBool::new(false);

/// `__child host-service --global-dir DIR [--cpu N]`: serves until stdin closes; answers
/// `usage` with the process's CPU time so far.
pub fn service_main(args: &Args) -> BenchResult<()> {
    if let Some(cpu) = args.str("cpu") {
        let cpu: usize = cpu.parse().map_err(|_| format!("bad --cpu {cpu}"))?;
        // Before any thread exists: the connection threads inherit it.
        sys::pin_to_cpu(cpu).map_err(|e| format!("cannot pin to CPU {cpu}: {e}"))?;
    }
    let dir = PathBuf::from(args.required("global-dir")?);
    let service = mailslot::service::HostService::bind(&dir)
        .map_err(|e| format!("host service on {}: {e}", dir.display()))?;
    std::thread::spawn(|| {
        while let Some(command) = proc::next_command() {
            if command == "usage" {
                proc::report(&format!("usage {}", usage_fields(Usage::now())));
            }
        }
        STOP.store(true, Ordering::Relaxed);
    });
    proc::report("ready");
    service.run(&STOP).map_err(|e| format!("host service: {e}"))
}
