//! The domain: the types of section 4 of the spec and the rules that need no I/O.
//!
//! Everything here is plain data and pure functions. Values are parsed at the edge into these
//! types (`Id::parse`, `PageRequest::new`, `Text::parse`), so code below the edge never sees an
//! invalid id, page or string. Status values, levels and time rules live here so the service layer,
//! the store adapters and the tests all read them from one place.

pub mod attachment;
mod audit;
mod canned_reply;
mod chat;
pub mod clock;
pub mod conversation;
mod customer;
mod enums;
mod event;
mod ids;
pub mod masking;
mod notification;
pub mod outbox;
pub mod paging;
mod provider;
pub mod search;
pub mod sla;
pub mod text;
mod ticket;
pub mod usage;

pub use attachment::{Attachment, FileKind, MAX_ATTACHMENTS};
pub use audit::AuditEntry;
pub use canned_reply::{fill, unknown_placeholder, CannedReply, Placeholders};
pub use chat::ChatMessage;
pub use clock::Clock;
pub use conversation::{Conversation, ConversationFilter, ConversationKey, InboxTotals, LastMessage};
pub use customer::{Customer, CustomerStatus, UsageMetrics, EXPIRING_WINDOW_DAYS};
pub use enums::{
    ChatSender, ChatStatus, EscalationStatus, EventKind, NotificationType, ReadStatus, SlaStatus, TicketStatus,
    TicketType,
};
pub use event::{Cursor, EventRecord};
pub use ids::{new_id, Id};
pub use notification::Notification;
pub use outbox::{DeliveryStatus, OutboxDraft, OutboxEntry, OutboxTarget};
pub use paging::{Page, PageRequest, MAX_PAGE_SIZE};
pub use provider::{ProviderStatus, ServiceProvider};
pub use search::{SearchHit, SearchKind, SearchQuery};
pub use sla::{SlaMarks, SlaTarget, SlaTargets, TicketSla};
pub use text::{Text, TextLimit};
pub use ticket::{HistoryAction, HistoryEntry, Ticket};

/// Time as the spec writes it: UTC, serialised as RFC 3339 with `Z`.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Formats a time exactly as the spec's examples do: `2026-01-29T10:00:00Z`.
pub fn format_time(time: &Timestamp) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The current time, truncated to whole seconds so that what is stored equals what is shown.
pub fn now() -> Timestamp {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(0)
}

/// `wait` after `now` (the settings bound every wait to well within what a time can hold).
pub fn after(now: Timestamp, wait: std::time::Duration) -> Timestamp {
    chrono::Duration::from_std(wait).ok().and_then(|wait| now.checked_add_signed(wait)).unwrap_or(now)
}
