//! Hands the memory a burst of load used back to the operating system once the server is quiet.
//!
//! Allocators keep what is freed for reuse (glibc in its arenas, one per thread that ever
//! allocated; mimalloc in each thread's pages), so without this the process would stay at the size
//! of its busiest moment. When requests were served and then none for [`QUIET`], the allocators
//! are asked to give their free pages back ([`crate::allocator::give_back`]). A server that is
//! never quiet is never trimmed, and one that stays quiet is trimmed once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long without a finished request before the memory is trimmed.
pub const QUIET: Duration = Duration::from_secs(2);

static FINISHED: AtomicU64 = AtomicU64::new(0);

/// Counts a finished request (the request log calls it for every one).
pub fn request_finished() {
    FINISHED.fetch_add(1, Ordering::Relaxed);
}

/// Trims the allocator after each busy spell, until `stopped` turns true.
pub fn spawn(mut stopped: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut trimmed_at = FINISHED.load(Ordering::Relaxed);
        let mut seen = trimmed_at;
        let mut ticks = tokio::time::interval(QUIET);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopped.changed() => return,
            }
            let now = FINISHED.load(Ordering::Relaxed);
            if now == seen && now != trimmed_at {
                trimmed_at = now;
                // It walks every arena under its lock: not on a runtime thread.
                let _ = tokio::task::spawn_blocking(crate::allocator::give_back).await;
            }
            seen = now;
        }
    })
}
