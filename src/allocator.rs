//! The memory allocator of the server binary: mimalloc, set up for a long-running server on a
//! small machine ([`configure`]), and giving memory back once the server is quiet ([`give_back`],
//! called by [`crate::http::quiet`]).
//!
//! Why mimalloc: under load glibc's allocator was a quarter of a REST list's time, and its
//! arena locks were contended (rows are allocated on the SQLite reader threads and freed on the
//! runtime's), which put the workers to sleep on a futex; mimalloc frees into per-thread pages
//! without a lock. Set up as [`configure`] does, it holds about as much at rest as glibc did (28 MiB
//! against 25 on the demo data; BENCHMARKS.md, the edge and uploads sections).

use libmimalloc_sys as ffi;

/// The allocator to install as the binary's `#[global_allocator]`.
pub use mimalloc::MiMalloc as Allocator;

/// mimalloc's options, unless the environment sets them (`MIMALLOC_<OPTION>`, read by mimalloc
/// itself): no transparent huge pages, arenas committed as they are used, and free pages purged at
/// once. Its defaults (huge pages where the kernel allows them, arenas committed up front, purging
/// after a second) took the server from 26 to 38 MiB at rest, and to about 320 MiB while 50 images
/// uploaded at once, against 80 without them (`SECTIONS=uploads scripts/bench`). Called first
/// thing in `main`, before any thread starts.
pub fn configure() {
    // mimalloc's option numbers (its `mi_option_e`, the same in v2 and v3).
    const ARENA_EAGER_COMMIT: ffi::mi_option_t = 4;
    const PURGE_DELAY: ffi::mi_option_t = 15;
    let unset = |name: &str| std::env::var_os(format!("MIMALLOC_{name}")).is_none();
    if unset("ALLOW_THP") {
        // What mimalloc does for MIMALLOC_ALLOW_THP=0 at load: the whole process, every mapping.
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag of this process.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0)
        };
    }
    for (name, option, value) in [("ARENA_EAGER_COMMIT", ARENA_EAGER_COMMIT, 0), ("PURGE_DELAY", PURGE_DELAY, 0)] {
        if unset(name) {
            // SAFETY: both are options of this mimalloc, and setting one only changes its value.
            unsafe { ffi::mi_option_set(option, value) };
        }
    }
}

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
