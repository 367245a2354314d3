//! The memory allocator of the server binary: mimalloc, set up for a long-running server on a
//! small machine ([`configure`]), and giving memory back once the server is quiet ([`give_back`],
//! called by [`crate::http::quiet`]) and as each of its threads goes idle.
//!
//! Why mimalloc: under load glibc's allocator was a quarter of a REST list's time, and its
//! arena locks were contended (rows are allocated on the SQLite reader threads and freed on the
//! runtime's), which put the workers to sleep on a futex; mimalloc frees into per-thread pages
//! without a lock. Set up as [`configure`] does, it holds about as much at rest as glibc did (28 MiB
//! against 25 on the demo data; BENCHMARKS.md, the edge and uploads sections).

use libmimalloc_sys as ffi;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

/// How long one of the server's own threads (the SQLite readers and writer) waits idle before it
/// gives back what the allocator holds for it ([`give_back_for_this_thread`]).
pub const IDLE_BEFORE_GIVING_BACK: Duration = Duration::from_secs(1);

/// Counts the calls of [`give_back`], so that each runtime thread gives back its own share once
/// after each ([`on_runtime_thread_park`]).
static GIVE_BACK_ROUND: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The last round of [`give_back`] this runtime thread took part in.
    static ROUND_GIVEN_BACK: Cell<u64> = const { Cell::new(0) };
}

/// Gives back what mimalloc holds for the calling thread. mimalloc keeps each thread's pages with
/// that thread: a block another thread freed, or a page just emptied, is reclaimed only when its
/// owner allocates again or collects, and no thread can collect another's. So a thread that goes
/// idle after a burst (a SQLite reader whose rows the runtime's threads freed, a runtime thread
/// whose connections closed) would hold its pages until its next burst.
pub fn give_back_for_this_thread() {
    // SAFETY: a forced collection frees only memory that is no longer in use.
    unsafe { ffi::mi_collect(true) };
}

/// For one of the server's own threads that waits for work: it gives back what the allocator
/// holds for it when it turns idle after working, once ([`give_back_for_this_thread`]).
#[derive(Default)]
pub struct IdleGiveBack {
    worked_since_giving_back: bool,
}

impl IdleGiveBack {
    /// The thread did some work.
    pub fn worked(&mut self) {
        self.worked_since_giving_back = true;
    }

    /// The thread waited [`IDLE_BEFORE_GIVING_BACK`] without work.
    pub fn idle(&mut self) {
        if std::mem::take(&mut self.worked_since_giving_back) {
            give_back_for_this_thread();
        }
    }
}

/// Gives free memory back to the operating system once the server is quiet: what mimalloc holds
/// for the calling thread (every runtime thread gives back its own as it next goes idle,
/// [`on_runtime_thread_park`]; the SQLite threads when idle) and glibc's free pages (SQLite
/// allocates with glibc). glibc walks every arena under its lock: not on a runtime thread.
pub fn give_back() {
    GIVE_BACK_ROUND.fetch_add(1, Ordering::Relaxed);
    give_back_for_this_thread();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases free memory of glibc's own arenas; it takes their locks.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(released = released == 1, "gave free memory back to the operating system");
    }
}

/// For the runtime's `on_thread_park`: a runtime thread going idle gives back what the allocator
/// holds for it, once after each [`give_back`]. Between those it costs one atomic load a park.
pub fn on_runtime_thread_park() {
    let round = GIVE_BACK_ROUND.load(Ordering::Relaxed);
    if ROUND_GIVEN_BACK.with(|given_back| given_back.replace(round)) != round {
        give_back_for_this_thread();
    }
}
