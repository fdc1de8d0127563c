//! A temporary path for one test, removed with whatever is there when the test is done, passed
//! or failed (included with `#[path]` by the test binaries that need one).
#![allow(dead_code)] // each test binary uses part of it

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh path `<tmp>/<prefix>-<tag>-<pid>-<n>`, not created (the code under test does).
    pub fn reserve(prefix: &str, tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        Scratch(path)
    }

    /// The same, created as a private (0700) directory, as a runtime directory must be.
    pub fn dir(prefix: &str, tag: &str) -> Scratch {
        let scratch = Scratch::reserve(prefix, tag);
        std::fs::create_dir_all(&scratch.0).expect("create the test directory");
        std::fs::set_permissions(
            &scratch.0,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod 700 the test directory");
        scratch
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // A symlink is removed, never followed.
        if std::fs::symlink_metadata(&self.0).is_ok_and(|m| m.file_type().is_symlink()) {
            let _ = std::fs::remove_file(&self.0);
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
