//! Survives another process truncating a file we have mapped shared.
//!
//! A page of a `MAP_SHARED` mapping that lies past the end of its file raises SIGBUS when
//! touched, and the default disposition kills the process. Anyone who may write the runtime
//! directory can truncate a mailslot file (`: > FILE`), so without this every reader and writer
//! of the name would die. As libwayland-server does for the shm buffers of its clients, a
//! process-wide SIGBUS handler looks the faulting address up among our registered mappings; if
//! it is in one, it maps an anonymous zero-filled page over the faulting page, marks the mapping
//! as faulted and returns, so the faulting instruction runs again on harmless zeros and the
//! owner reports the damage as an error. A fault anywhere else goes to whatever handled SIGBUS
//! before us (the Rust runtime's stack guard handler, usually), or kills the process as it
//! would have without us.
//!
//! The handler may interrupt any code, so it allocates nothing and takes no lock: the
//! registered mappings live in a fixed table of atomics, claimed and released with
//! compare-and-swap. When the table is full a new mapping is simply not protected (a truncation
//! then kills its owner, as it did before this module existed); [`REGIONS`] entries are far
//! more than a process maps rings in practice.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// How many mappings can be protected at once (one per mapped segment).
pub const REGIONS: usize = 1024;

/// The `start` of an entry being claimed or released: never a mapping's address (it would be
/// the last byte of the address space), so the handler never matches it.
const BUSY: usize = usize::MAX;

/// One registered mapping; `start == 0` marks a free entry.
struct Region {
    start: AtomicUsize,
    len: AtomicUsize,
    /// `PROT_*` of the mapping, so a replaced page keeps the protection it had.
    prot: AtomicUsize,
    faulted: AtomicBool,
}

impl Region {
    const fn new() -> Region {
        Region {
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            prot: AtomicUsize::new(0),
            faulted: AtomicBool::new(false),
        }
    }
}

static TABLE: [Region; REGIONS] = [const { Region::new() }; REGIONS];

/// The page size, read once at install time (`sysconf` is not async-signal-safe).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

static INSTALL: Once = Once::new();

/// The SIGBUS disposition we replaced, written once by `sigaction` while installing; the
/// handler reads it only after `PREVIOUS_READY` says it is complete.
struct Previous(UnsafeCell<MaybeUninit<libc::sigaction>>);

// SAFETY: written exactly once, inside `INSTALL`, before `PREVIOUS_READY` is set with Release;
// only read after an Acquire load of `PREVIOUS_READY` returns true, so never while written.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(UnsafeCell::new(MaybeUninit::uninit()));
static PREVIOUS_READY: AtomicBool = AtomicBool::new(false);

/// A mapping's entry in the table, released on drop.
#[derive(Debug)]
pub struct Registration {
    index: usize,
}

impl Registration {
    /// Protects `[start, start + len)`, mapped with protection `prot`; `None` when the table is
    /// full (the mapping then stays unprotected: its owner dies if the file is truncated).
    pub fn new(start: *mut u8, len: usize, prot: libc::c_int) -> Option<Registration> {
        install();
        let start = start as usize;
        if start == 0 || start == BUSY || len == 0 {
            return None;
        }
        for (index, region) in TABLE.iter().enumerate() {
            if region
                .start
                .compare_exchange(0, BUSY, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            region.len.store(len, Ordering::Relaxed);
            region.prot.store(prot as usize, Ordering::Relaxed);
            region.faulted.store(false, Ordering::Relaxed);
            // SYNC POINT: publishing `start` last; a handler that sees it sees `len` and `prot`.
            region.start.store(start, Ordering::Release);
            return Some(Registration { index });
        }
        None
    }

    /// Whether a page of the mapping was replaced by zeros (its file was truncated under it).
    pub fn faulted(&self) -> bool {
        TABLE[self.index].faulted.load(Ordering::Acquire)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Dropped before the mapping is unmapped: afterwards the same addresses may be mapped
        // by someone else, whose faults must not be papered over with zeros.
        let region = &TABLE[self.index];
        region.start.store(BUSY, Ordering::Release);
        region.faulted.store(false, Ordering::Relaxed);
        region.start.store(0, Ordering::Release);
    }
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no memory preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        PAGE_SIZE.store(
            usize::try_from(page)
                .ok()
                .filter(|p| *p > 0)
                .unwrap_or(4096),
            Ordering::Relaxed,
        );
        // SAFETY: `action` is fully initialised below (zeroed is a valid sigaction, the mask is
        // emptied by sigemptyset); PREVIOUS is written only here, once, and read only after
        // PREVIOUS_READY is set. The handler is an `extern "C"` function with the SA_SIGINFO
        // signature.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handle as extern "C" fn(_, _, _) as usize;
            // No SA_NODEFER: SIGBUS stays blocked while the handler runs, so a fault inside it
            // (there should be none) kills the process instead of recursing.
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            let previous = (*PREVIOUS.0.get()).as_mut_ptr();
            if libc::sigaction(libc::SIGBUS, &action, previous) == 0 {
                PREVIOUS_READY.store(true, Ordering::Release);
            }
        }
    });
}

/// The registered region holding `addr`, if any.
fn find(addr: usize) -> Option<&'static Region> {
    TABLE.iter().find(|region| {
        // Read `start` again after `len`: a region released and claimed again in between
        // (by another thread) must not pair one mapping's start with another's length.
        let start = region.start.load(Ordering::Acquire);
        if start == 0 || start == BUSY || addr < start {
            return false;
        }
        let len = region.len.load(Ordering::Acquire);
        addr - start < len && region.start.load(Ordering::Acquire) == start
    })
}

extern "C" fn handle(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: errno is thread-local; reading and restoring it is what every signal handler
    // that makes system calls must do so the interrupted code sees its own errno.
    let saved_errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler. Only a fault the
    // kernel raised (si_code > 0) has a meaningful si_addr; a SIGBUS sent by kill(2) does not.
    let fault = unsafe {
        let info = &*info;
        (info.si_code > 0).then(|| info.si_addr() as usize)
    };
    if let Some(region) = fault.and_then(find) {
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let addr = fault.unwrap_or(0) & !(page - 1);
        let prot = region.prot.load(Ordering::Relaxed) as libc::c_int;
        // SAFETY: the page lies inside a mapping of ours that stays mapped while it is
        // registered (the registration is dropped before munmap); MAP_FIXED replaces just that
        // page with private zeros. mmap is a plain system call on Linux (not on POSIX's list of
        // async-signal-safe functions, but it takes no lock in user space), as libwayland relies
        // on too.
        let replaced = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                page,
                prot,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if replaced != libc::MAP_FAILED {
            region.faulted.store(true, Ordering::Release);
            // SAFETY: as above; restores the interrupted code's errno.
            unsafe { *libc::__errno_location() = saved_errno };
            return;
        }
    }
    // SAFETY: only reached for faults that are not ours; see `chain`.
    unsafe { chain(signal, info, context) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// Hands a SIGBUS that is not ours to the disposition we replaced.
///
/// # Safety
/// Called from the signal handler with the arguments the kernel passed it.
unsafe fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let previous = if PREVIOUS_READY.load(Ordering::Acquire) {
        // SAFETY: PREVIOUS_READY is set only after PREVIOUS was completely written, and it is
        // never written again.
        Some(unsafe { (*PREVIOUS.0.get()).assume_init_ref() })
    } else {
        None
    };
    let handler = previous.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
        let siginfo = previous.is_some_and(|p| p.sa_flags & libc::SA_SIGINFO != 0);
        if siginfo {
            // SAFETY: an SA_SIGINFO handler installed by someone else, called as the kernel
            // would have called it.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(handler) };
            f(signal, info, context);
        } else {
            // SAFETY: a plain handler installed by someone else, called as the kernel would
            // have called it.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
            f(signal);
        }
        return;
    }
    // Default (or ignored, which the kernel does not honour for a fault): die of SIGBUS, as
    // without us. A fault re-runs its instruction on return and is delivered again, now to the
    // default action; a SIGBUS sent by kill(2) is raised again (it stays pending while the
    // handler blocks it, and kills on return).
    // SAFETY: `dfl` is a valid sigaction (zeroed: SIG_DFL, empty mask, no flags); sigaction and
    // raise are async-signal-safe.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
        if !info.is_null() && (*info).si_code <= 0 {
            libc::raise(libc::SIGBUS);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{File, OpenOptions};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::ExitStatusExt;
    use std::path::PathBuf;
    use std::process::Command;

    use super::super::SharedMap;

    /// Set in a child run of this test binary that must die of SIGBUS.
    const CHILD_ENV: &str = "MAILSLOT_SIGBUS_CHILD";

    struct TmpFile(PathBuf);

    impl TmpFile {
        fn new(tag: &str, len: u64) -> (TmpFile, File) {
            let path = PathBuf::from(format!(
                "/dev/shm/mailslot-sigbus-{tag}-{}-{:x}",
                std::process::id(),
                super::super::random_u64()
            ));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .expect("create a file to map");
            file.set_len(len).expect("size it");
            (TmpFile(path), file)
        }
    }

    impl Drop for TmpFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_truncated_mapping_reads_zeros_and_says_so() {
        let (_tmp, file) = TmpFile::new("zero", 3 * 4096);
        let map = SharedMap::map(&file, 3 * 4096).expect("map");
        map.u64_at(8192)
            .store(7, std::sync::atomic::Ordering::SeqCst);
        assert!(!map.faulted());
        file.set_len(0).expect("truncate");
        assert_eq!(
            map.u64_at(8192).load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        assert!(map.faulted());
        // Stores land too (in private zeros), and other pages are replaced as touched.
        map.write(100, b"still alive");
        let mut back = [0u8; 11];
        map.read(100, &mut back);
        assert_eq!(&back, b"still alive");
        // Another mapping of the same file is not marked until it is touched.
        let (_other_tmp, other_file) = TmpFile::new("other", 4096);
        let other = SharedMap::map(&other_file, 4096).expect("map");
        assert!(!other.faulted());
    }

    /// The one-pass copy and checksum (512-bit loads and stores where the CPU has them) meets
    /// a truncated file like any copy: zeros, not a signal.
    #[test]
    fn the_checksumming_copies_survive_a_truncated_mapping() {
        let len = 4 * 4096;
        let (_tmp, file) = TmpFile::new("crc", len as u64);
        let map = SharedMap::map(&file, len).expect("map");
        let data: Vec<u8> = (0..3 * 4096).map(|i| (i % 251) as u8).collect();
        let crc = map.write_crc(1000, &data, 0);
        assert_eq!(crc, super::super::crc32c_append(0, &data));
        file.set_len(4096).expect("truncate");
        let mut back = vec![0xffu8; data.len()];
        let crc = map.read_crc(1000, &mut back, 0);
        assert_eq!(
            &back[..4096 - 1000],
            &data[..4096 - 1000],
            "the page still there"
        );
        assert!(
            back[4096 - 1000..].iter().all(|&b| b == 0),
            "the rest reads as zeros"
        );
        assert_eq!(
            crc,
            super::super::crc32c_append(0, &back),
            "checksum of what was read"
        );
        assert!(map.faulted());
        let crc = map.write_crc(1000, &data, 0);
        assert_eq!(crc, super::super::crc32c_append(0, &data));
    }

    /// In the child: installs the handler (through a registered mapping), then touches a
    /// truncated mapping that is not registered, which must kill it.
    #[test]
    fn sigbus_outside_our_mappings_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let (tmp, file) = TmpFile::new("ours", 4096);
        let _ours = SharedMap::map(&file, 4096).expect("map");
        let (tmp2, foreign) = TmpFile::new("foreign", 4096);
        // SAFETY: a fresh shared mapping of a file we own, checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_SHARED,
                foreign.as_raw_fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        // Removed now: this process dies without running destructors.
        drop((tmp, tmp2));
        foreign.set_len(0).expect("truncate");
        // SAFETY: the page is mapped; reading it raises SIGBUS, which is the point.
        let value = unsafe { std::ptr::read_volatile(ptr.cast::<u64>()) };
        // Not reached: the fault kills the process.
        println!("survived a foreign SIGBUS, read {value}");
        std::process::exit(0);
    }

    #[test]
    fn sigbus_outside_our_mappings_still_kills() {
        let exe = std::env::current_exe().expect("current_exe");
        let status = Command::new(exe)
            .args([
                "--exact",
                "sys::sigbus::tests::sigbus_outside_our_mappings_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .output()
            .expect("run the child");
        assert_eq!(
            status.status.signal(),
            Some(libc::SIGBUS),
            "the child should die of SIGBUS; it ended with {:?}: {}",
            status.status,
            String::from_utf8_lossy(&status.stdout)
        );
    }
}
