//! The one clock the ticket times, the service-level timers and the jobs read.
//!
//! Real time plus an offset held in an `Arc<AtomicI64>`, so a clone is cheap and every clone moves
//! together: a test advances the server's clock past a target instead of sleeping through it, and
//! `run-jobs --at` runs the jobs as of a given time. Other paths keep reading [`super::now`].

use super::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_seconds: Arc<AtomicI64>,
}

impl Clock {
    /// Real time, not moved.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// The time now, whole seconds like [`super::now`], moved by what [`Clock::advance`] and
    /// [`Clock::set`] did.
    pub fn now(&self) -> Timestamp {
        let offset = chrono::Duration::seconds(self.offset_seconds.load(Ordering::SeqCst));
        super::now().checked_add_signed(offset).unwrap_or_else(super::now)
    }

    /// Moves this clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX / 2);
        self.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Makes this clock read `at` now (and run on from there).
    pub fn set(&self, at: Timestamp) {
        self.offset_seconds.store((at - super::now()).num_seconds(), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_move_together_and_set_reads_back_the_time_given() {
        let clock = Clock::system();
        let clone = clock.clone();
        let before = clone.now();
        clock.advance(std::time::Duration::from_secs(3_600));
        assert!(clone.now() - before >= chrono::Duration::seconds(3_600));
        let at = super::super::now() + chrono::Duration::days(3);
        clock.set(at);
        assert!((clone.now() - at).num_seconds().abs() <= 1);
    }
}
