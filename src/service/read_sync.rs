//! `chat.read` to the PC customer-service system: the provider read a conversation (the inbox's
//! mark-read, `markConversationRead`), so the PC side, which shows the whole conversation, can
//! mark the customer's messages read too. (A client's per-message READ acknowledgements are not
//! sent on: the conversation read is the provider's deliberate act.)
//!
//! The delivery is queued by the read's own transaction, built from the messages it moved, under
//! the cursor of the read's first event: in order with the conversation's other events, and never
//! lost between the read and its notice.

use super::outbound::Outbound;
use crate::domain::Id;
use crate::store::ReadNotice;
use std::sync::Arc;

#[derive(Clone)]
pub struct ReadSync {
    outbound: Arc<Outbound>,
}

impl ReadSync {
    pub fn new(outbound: Arc<Outbound>) -> ReadSync {
        ReadSync { outbound }
    }

    /// What a read of the conversation with `customer` queues: `chat.read` for the messages it
    /// moved (nothing without the PC system).
    pub fn notice(&self, provider: &Id, customer: &Id) -> ReadNotice {
        let (outbound, provider, customer) = (self.outbound.clone(), provider.clone(), customer.clone());
        Arc::new(move |read| outbound.chat_read(&provider, &customer, read))
    }

    /// Wakes the dispatcher after a read that queued its notice.
    pub fn queued(&self, read: usize) {
        if read > 0 && self.outbound.to_customer_service() {
            self.outbound.queued(1);
        }
    }
}
