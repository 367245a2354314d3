//! The event log: every change a provider can watch live (a chat message, a chat status change, a
//! notification, a ticket change) is recorded with the write that made it, under a cursor.
//!
//! A provider's cursors count 1, 2, 3, ... in commit order with no holes, so a subscriber that has
//! seen cursor `n` knows that the next event it must see is `n + 1`: anything else is a gap to fill
//! from the log, or a duplicate to drop.

use super::{EventKind, Id, Timestamp};

/// A position in one provider's event log; 0 is before the first event.
pub type Cursor = u64;

/// One entry of a provider's event log. It names what changed; the thing itself is read from the
/// store (or handed over by the writer) when the event is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub provider_id: Id,
    pub cursor: Cursor,
    pub kind: EventKind,
    /// The chat message, notification or ticket the event is about.
    pub subject_id: Id,
    /// The customer it concerns, where there is one (chat events, ticket events).
    pub customer_id: Option<Id>,
    pub at: Timestamp,
}
