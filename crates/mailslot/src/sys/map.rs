//! A shared mapping of a whole file, with bounds-checked accessors.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::crc;
use super::layout::SharedLayout;
use super::sigbus;

/// A `MAP_SHARED` mapping of a whole file, unmapped on drop.
///
/// Other processes map the same file and may write anything at any time, so every accessor
/// checks bounds and alignment and never hands out a reference into the mapping that is not an
/// atomic.
#[derive(Debug)]
pub struct SharedMap {
    ptr: *mut u8,
    len: usize,
    /// Its entry in the SIGBUS handler's table (`None`: the table was full, unprotected).
    guard: Option<sigbus::Registration>,
}

// SAFETY: the mapping is plain shared memory; all access goes through atomics or explicit
// copies, so it may be used from any thread.
unsafe impl Send for SharedMap {}
// SAFETY: as above; no method hands out a non-atomic reference into the mapping.
unsafe impl Sync for SharedMap {}

impl SharedMap {
    /// Maps the first `len` bytes of `file` read-write and shared.
    pub fn map(file: &File, len: usize) -> io::Result<SharedMap> {
        SharedMap::map_with(file, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Maps the first `len` bytes of `file` read-only and shared (a mailslot of the host
    /// service). Only the loads and copies of this type may be used on it: a store would fault.
    pub fn map_read_only(file: &File, len: usize) -> io::Result<SharedMap> {
        SharedMap::map_with(file, len, libc::PROT_READ)
    }

    fn map_with(file: &File, len: usize, prot: libc::c_int) -> io::Result<SharedMap> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL) of a file descriptor we own;
        // the result is checked for MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMap {
            ptr: ptr.cast(),
            len,
            // Another process may truncate the file: a fault then reads zeros, not kill us.
            guard: sigbus::Registration::new(ptr.cast(), len, prot),
        })
    }

    /// Whether part of the mapping was lost because the file was truncated under it (its
    /// pages past the new end now read as private zeros; see `sigbus`).
    pub fn faulted(&self) -> bool {
        self.guard
            .as_ref()
            .is_some_and(sigbus::Registration::faulted)
    }

    fn check(&self, offset: usize, size: usize, align: usize) {
        let end = offset.checked_add(size);
        assert!(
            end.is_some_and(|end| end <= self.len) && offset.is_multiple_of(align),
            "shared map access out of bounds or misaligned: {offset}+{size} of {}",
            self.len
        );
    }

    /// The 32-bit atomic at `offset` (4-byte aligned, inside the mapping).
    pub fn u32_at(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4, 4);
        // SAFETY: in bounds and aligned (checked above); the page is mapped for as long as
        // `self` lives, which bounds the returned lifetime; AtomicU32 has the layout of u32 and
        // tolerates concurrent access from other processes.
        unsafe { &*self.ptr.add(offset).cast::<AtomicU32>() }
    }

    /// The 64-bit atomic at `offset` (8-byte aligned, inside the mapping).
    pub fn u64_at(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8, 8);
        // SAFETY: as in `u32_at`, with 8-byte alignment checked.
        unsafe { &*self.ptr.add(offset).cast::<AtomicU64>() }
    }

    /// The `T` at `offset`, checked once for bounds and alignment.
    pub fn view<T: SharedLayout>(&self, offset: usize) -> &T {
        self.check(offset, std::mem::size_of::<T>(), std::mem::align_of::<T>());
        // SAFETY: in bounds and aligned (checked); `T` is a `#[repr(C)]` struct of atomics
        // (`SharedLayout`), valid for every bit pattern and safe to share with other processes;
        // the mapping lives as long as `self`, which bounds the returned lifetime.
        unsafe { &*self.ptr.add(offset).cast::<T>() }
    }

    /// Copies `out.len()` bytes starting at `offset` out of the mapping.
    ///
    /// Another process may be writing the same bytes; callers validate what they copied (a
    /// sequence check after the copy) before trusting it.
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        self.check(offset, out.len(), 1);
        // SAFETY: the source range is inside the mapping (checked) and cannot overlap `out`,
        // which is ordinary process memory. A concurrent writer can only make the copied bytes
        // stale, never make the copy itself fault; the ring re-validates after copying.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(offset), out.as_mut_ptr(), out.len()) }
    }

    /// Replaces the contents of `out` with the `len` bytes at `offset` (one copy, no zero-fill
    /// first). As for [`SharedMap::read`], the caller validates what it copied.
    pub fn read_to_vec(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        self.check(offset, len, 1);
        out.clear();
        out.reserve(len);
        // SAFETY: the source range is inside the mapping (checked); the destination is the
        // vector's spare capacity, at least `len` bytes (reserved), which cannot overlap the
        // mapping; every byte up to `len` is written by the copy before `set_len` exposes it.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.add(offset), out.as_mut_ptr(), len);
            out.set_len(len);
        }
    }

    /// [`SharedMap::read`], returning `crc32c_append(crc, out)`, in one pass where the CPU
    /// allows (see `crc`).
    pub fn read_crc(&self, offset: usize, out: &mut [u8], crc: u32) -> u32 {
        self.check(offset, out.len(), 1);
        // SAFETY: as in `read`.
        let fused = unsafe { crc::fused(crc, self.ptr.add(offset), out.as_mut_ptr(), out.len()) };
        fused.unwrap_or_else(|| {
            self.read(offset, out);
            crc::crc32c_append(crc, out)
        })
    }

    /// [`SharedMap::read_to_vec`], returning `crc32c_append(crc, out)`, in one pass where the
    /// CPU allows.
    pub fn read_to_vec_crc(&self, offset: usize, len: usize, out: &mut Vec<u8>, crc: u32) -> u32 {
        self.check(offset, len, 1);
        out.clear();
        out.reserve(len);
        // SAFETY: as in `read_to_vec`: the source is inside the mapping, the destination the
        // vector's spare capacity of at least `len` bytes; `set_len` only once they are written.
        let fused = unsafe { crc::fused(crc, self.ptr.add(offset), out.as_mut_ptr(), len) };
        match fused {
            Some(crc) => {
                // SAFETY: the fused copy wrote all `len` bytes.
                unsafe { out.set_len(len) };
                crc
            }
            None => {
                self.read_to_vec(offset, len, out);
                crc::crc32c_append(crc, out)
            }
        }
    }

    /// [`SharedMap::write`], returning `crc32c_append(crc, data)`, in one pass where the CPU
    /// allows.
    pub fn write_crc(&self, offset: usize, data: &[u8], crc: u32) -> u32 {
        self.check(offset, data.len(), 1);
        // SAFETY: as in `write`.
        let fused = unsafe { crc::fused(crc, data.as_ptr(), self.ptr.add(offset), data.len()) };
        fused.unwrap_or_else(|| {
            self.write(offset, data);
            crc::crc32c_append(crc, data)
        })
    }

    /// Copies `data` into the mapping at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) {
        self.check(offset, data.len(), 1);
        // SAFETY: the destination range is inside the mapping (checked); writers hold the
        // append lock, and readers validate their copies, so no reader trusts a torn range.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(offset), data.len()) }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // Unregistered first: once unmapped, the addresses may be reused by a mapping that is
        // not ours.
        self.guard = None;
        // SAFETY: `ptr`/`len` are exactly what mmap returned; no reference derived from them
        // outlives `self` (every accessor borrows `self`).
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}
