//! Read-only memory maps of the data image, so level 0 is hashed straight
//! from the page cache without copying every block into a buffer first
//! (the copy was a tenth of the hashing time). Falls back to positional
//! reads when a map is refused (e.g. a pipe or an exotic file system).
//!
//! Caveat of every mapping: if the file shrinks while it is hashed, the
//! process gets SIGBUS. Boxcar maps only images and partitions it owns.

use std::fs::File;
use std::os::fd::AsRawFd;

/// A read-only shared mapping of `len` bytes of a file from `offset`.
pub(crate) struct Mapped {
    base: *mut libc::c_void,
    map_len: usize,
    skip: usize,
    len: usize,
}

// SAFETY: the mapping is read-only and never remapped; shared references
// to its bytes can be used from any thread.
unsafe impl Send for Mapped {}
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps `[offset, offset + len)` of `file`, or `None` if the kernel refuses.
    pub(crate) fn new(file: &File, offset: u64, len: u64) -> Option<Mapped> {
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = u64::try_from(page).ok().filter(|p| *p > 0)?;
        let aligned = offset / page * page;
        let skip = (offset - aligned) as usize;
        let map_len = usize::try_from(len).ok()?.checked_add(skip)?;
        if len == 0 {
            return None;
        }
        let off = libc::off_t::try_from(aligned).ok()?;
        // SAFETY: a fresh read-only mapping of a descriptor we hold open;
        // the result is checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                off,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: advice on the range just mapped; failure is harmless.
        unsafe { libc::madvise(base, map_len, libc::MADV_SEQUENTIAL) };
        Some(Mapped {
            base,
            map_len,
            skip,
            len: len as usize,
        })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `base..base+map_len` is a live read-only mapping owned by
        // self; `skip + len == map_len`.
        unsafe { std::slice::from_raw_parts((self.base as *const u8).add(self.skip), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping created in `new`.
        unsafe { libc::munmap(self.base, self.map_len) };
    }
}
