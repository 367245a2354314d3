//! The memory allocator of the server binary: mimalloc, and giving memory back once the server is
//! quiet ([`give_back`], called by [`crate::http::quiet`]).
//!
//! Why mimalloc: under load glibc's allocator was a quarter of a REST list's time, and its
//! arena locks were contended (rows are allocated on the SQLite reader threads and freed on the
//! runtime's), which put the workers to sleep on a futex; mimalloc frees into per-thread pages
//! without a lock. It holds more at rest than glibc (about 39 MiB against 25 on the demo data) and
//! grows less under load (BENCHMARKS.md, the edge section, has both).

use libmimalloc_sys as ffi;

/// The allocator to install as the binary's `#[global_allocator]`.
pub use mimalloc::MiMalloc as Allocator;

/// Gives free memory back to the operating system: what mimalloc can collect from here (it also
/// purges free pages by itself, after a short delay) and glibc's free pages (SQLite allocates with
/// glibc). glibc walks every arena under its lock: not on a runtime thread.
pub fn give_back() {
    // SAFETY: a forced collection frees only memory that is no longer in use.
    unsafe { ffi::mi_collect(true) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases free memory of glibc's own arenas; it takes their locks.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(released = released == 1, "gave free memory back to the operating system");
    }
}
