//! Runtime directories: where a host's mailslots live, and who may use them.
//!
//! - User scope (default): `$MAILSLOT_DIR`, else `$XDG_RUNTIME_DIR/mailslot`, else
//!   `/dev/shm/mailslot-<uid>`; mode 0700 and owned by the user, so other users can neither
//!   open, read, write nor list its names. An existing directory that others can enter is
//!   refused rather than trusted.
//! - Global scope: names shared between users, owned by the host service (see
//!   [`crate::service`]) in its directory, `$MAILSLOT_GLOBAL_DIR`, else `/run/mailslot`. No
//!   file of it is ever opened by a client; without a running service it is unavailable.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};
use crate::sys;

/// Which runtime directory a mailslot lives in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    /// The user's own directory (see the module docs).
    #[default]
    User,
    /// Names shared between users through the host service.
    Global,
    /// An explicit directory (tests, containers); treated like the user scope.
    Dir(PathBuf),
}

impl Scope {
    /// The directory this scope stands for, created if missing and checked (the global
    /// scope's is the host service's: named, never created or checked here).
    ///
    /// # Errors
    /// `PermissionDenied` if the directory belongs to someone else or is open to others (user
    /// scope), or cannot be created.
    pub fn dir(&self) -> Result<PathBuf, Error> {
        match self {
            Scope::User => ensure_private_dir(&user_dir()),
            Scope::Dir(dir) => ensure_private_dir(dir),
            Scope::Global => Ok(crate::service::global_dir()),
        }
    }

    /// The default permission bits of a new name's file in this scope.
    pub fn default_mode(&self) -> u32 {
        match self {
            Scope::Global => 0o660,
            _ => 0o600,
        }
    }
}

/// The user scope's directory, before any check.
pub fn user_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MAILSLOT_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Path::new(&run).join("mailslot");
    }
    PathBuf::from(format!("/dev/shm/mailslot-{}", sys::current_uid()))
}

/// `PermissionDenied` naming `dir` (`what`: "the runtime directory") when it is a symbolic
/// link: a mailslot directory is used only as itself, since a link (or its target's parent)
/// may be changed by someone else to lead elsewhere. Checked first, so that a dangling link
/// is not reported as the "File exists" of creating it.
pub(crate) fn refuse_symlink(dir: &Path, what: &str) -> Result<(), Error> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::read_link(dir)
                .map(|t| format!(" (to {})", t.display()))
                .unwrap_or_default();
            Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{what} {} is a symbolic link{target}: refused for security (a link can \
                     be redirected); give the directory itself",
                    dir.display()
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn ensure_private_dir(dir: &Path) -> Result<PathBuf, Error> {
    refuse_symlink(dir, "the runtime directory")?;
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => {
            return Err(Error::io(
                format!("cannot create the runtime directory {}", dir.display()),
                e,
            ))
        }
    }
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| Error::io(format!("cannot inspect {}", dir.display()), e))?;
    let uid = sys::current_uid();
    if !meta.is_dir() {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!("{} is not a directory", dir.display()),
        ));
    }
    if meta.uid() != uid {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the runtime directory {} belongs to uid {}, not to you (uid {uid}); \
                 set MAILSLOT_DIR to a directory of your own",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the runtime directory {} is open to other users (mode {:o}); \
                 run `chmod 700 {}` or use --global for multi-user names",
                dir.display(),
                meta.mode() & 0o7777,
                dir.display()
            ),
        ));
    }
    Ok(dir.to_path_buf())
}
