//! The chat message (model 4.5) between a provider and one of its customers.

use super::{ChatSender, ChatStatus, Id, Timestamp};

#[derive(Debug, Clone)]
pub struct ChatMessage {
    pub id: Id,
    pub service_provider_id: Id,
    pub service_provider_name: String,
    pub customer_id: Id,
    pub customer_name: String,
    pub sender_type: ChatSender,
    pub content: String,
    pub timestamp: Timestamp,
    pub status: ChatStatus,
}
