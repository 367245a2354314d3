//! The provider's inbox: one summary a conversation (a customer with at least one message), and
//! the provider's totals over them, both kept as chat messages arrive and statuses move.
//!
//! The rules of the summary live here, as pure functions over the summary before a change, and
//! both store adapters apply them inside the transaction of the change itself (a message stored,
//! statuses moved, the conversation marked read or unread): the inbox is never computed by
//! scanning the messages, and a summary is never behind the messages it sums up. The provider's
//! totals move by the difference between a summary before and after ([`InboxTotals::apply`]), so
//! the badges and the inbox's page totals are one key lookup too.

use super::{ChatMessage, ChatSender, ChatStatus, Id, Timestamp};

/// How many characters of the last message a conversation shows.
pub const PREVIEW_CHARS: usize = 60;

/// Which conversations an inbox page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationFilter {
    /// Every conversation, the latest message first.
    All,
    /// Those with a customer message the provider has not read (or marked unread), latest first.
    Unread,
    /// Those whose customer waits for a reply, the longest waiting first.
    Waiting,
}

/// The last message of a conversation, as the inbox shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastMessage {
    pub id: Id,
    pub sender: ChatSender,
    /// The content's first [`PREVIEW_CHARS`] characters, with `…` when it goes on.
    pub preview: String,
    pub at: Timestamp,
}

/// One conversation of a provider's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub provider_id: Id,
    pub customer_id: Id,
    pub last_message: LastMessage,
    /// The customer's messages the provider has not yet read.
    pub unread_messages: u64,
    /// The provider marked the conversation unread after reading it (Chatwoot's "mark as unread").
    pub marked_unread: bool,
    /// The oldest customer message since the provider's last reply; `None` when the provider
    /// answered last (or the customer never wrote).
    pub waiting_since: Option<Timestamp>,
}

impl Conversation {
    /// The unread count the provider sees: the unread messages, or 1 for a conversation marked
    /// unread whose messages are all read.
    pub fn unread_count(&self) -> u64 {
        if self.unread_messages == 0 && self.marked_unread {
            1
        } else {
            self.unread_messages
        }
    }

    pub fn is_unread(&self) -> bool {
        self.unread_count() > 0
    }

    /// The summary once `message` is stored: `before` is the conversation's summary, if it had
    /// one. A message dated before the last one (a sender's clock) does not become the last.
    pub fn with_message(before: Option<&Conversation>, message: &ChatMessage) -> Conversation {
        let last = LastMessage {
            id: message.id.clone(),
            sender: message.sender_type,
            preview: preview(&message.content),
            at: message.timestamp,
        };
        let Some(before) = before else {
            let from_customer = message.sender_type == ChatSender::Customer;
            return Conversation {
                provider_id: message.service_provider_id.clone(),
                customer_id: message.customer_id.clone(),
                last_message: last,
                unread_messages: u64::from(from_customer && message.status != ChatStatus::Read),
                marked_unread: false,
                waiting_since: from_customer.then_some(message.timestamp),
            };
        };
        let mut after = before.clone();
        if message.timestamp >= before.last_message.at {
            after.last_message = last;
        }
        match message.sender_type {
            ChatSender::Customer => {
                if message.status != ChatStatus::Read {
                    after.unread_messages += 1;
                }
                let since = before.waiting_since.map_or(message.timestamp, |since| since.min(message.timestamp));
                after.waiting_since = Some(since);
            }
            ChatSender::ServiceProvider => after.waiting_since = None,
        }
        after
    }

    /// The summary once `read` of the customer's messages moved to READ from an earlier status.
    pub fn with_read(&self, read: u64) -> Conversation {
        Conversation { unread_messages: self.unread_messages.saturating_sub(read), ..self.clone() }
    }

    /// The summary once the provider marked the conversation read (`true`) or unread (`false`).
    /// Marking read also reads every message: the caller passes how many moved in [`with_read`].
    ///
    /// [`with_read`]: Conversation::with_read
    pub fn marked(&self, unread: bool) -> Conversation {
        Conversation { marked_unread: unread, ..self.clone() }
    }
}

/// A position in an inbox list, after which the next page starts: the time the list is ordered
/// by (the last message's, or the waiting start's) and the customer, which breaks ties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationKey {
    pub at: Timestamp,
    pub customer_id: Id,
}

impl ConversationKey {
    /// The key of a conversation in the list `filter` selects.
    pub fn of(conversation: &Conversation, filter: ConversationFilter) -> ConversationKey {
        let at = match filter {
            ConversationFilter::Waiting => conversation.waiting_since.unwrap_or(conversation.last_message.at),
            ConversationFilter::All | ConversationFilter::Unread => conversation.last_message.at,
        };
        ConversationKey { at, customer_id: conversation.customer_id.clone() }
    }

    /// The opaque text a client passes back as `after`: the time in seconds, then the customer id.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.at.timestamp(), self.customer_id.as_str())
    }

    pub fn decode(text: &str) -> Option<ConversationKey> {
        let (seconds, customer) = text.trim().split_once(':')?;
        let at = chrono::DateTime::from_timestamp(seconds.parse().ok()?, 0)?;
        Some(ConversationKey { at, customer_id: Id::parse(customer)? })
    }
}

/// A provider's totals over its conversations: the inbox lists' totals and the chat badges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxTotals {
    pub conversations: u64,
    pub unread_conversations: u64,
    pub waiting_conversations: u64,
    /// The sum of the conversations' unread counts ([`Conversation::unread_count`]).
    pub unread_messages: u64,
}

impl InboxTotals {
    /// How a change of one conversation from `before` to `after` moves the totals, as signed
    /// differences in the order of the fields.
    pub fn change(before: Option<&Conversation>, after: &Conversation) -> [i64; 4] {
        let counts = |c: Option<&Conversation>| match c {
            None => [0, 0, 0, 0],
            Some(c) => [1, i64::from(c.is_unread()), i64::from(c.waiting_since.is_some()), c.unread_count() as i64],
        };
        let (before, after) = (counts(before), counts(Some(after)));
        std::array::from_fn(|i| after[i] - before[i])
    }

    pub fn apply(self, change: [i64; 4]) -> InboxTotals {
        let add = |total: u64, change: i64| total.saturating_add_signed(change);
        InboxTotals {
            conversations: add(self.conversations, change[0]),
            unread_conversations: add(self.unread_conversations, change[1]),
            waiting_conversations: add(self.waiting_conversations, change[2]),
            unread_messages: add(self.unread_messages, change[3]),
        }
    }

    /// The total of the list `filter` selects.
    pub fn of(&self, filter: ConversationFilter) -> u64 {
        match filter {
            ConversationFilter::All => self.conversations,
            ConversationFilter::Unread => self.unread_conversations,
            ConversationFilter::Waiting => self.waiting_conversations,
        }
    }
}

/// The first [`PREVIEW_CHARS`] characters of a message, with `…` when it goes on.
pub fn preview(content: &str) -> String {
    let mut chars = content.chars();
    let mut shown: String = chars.by_ref().take(PREVIEW_CHARS).collect();
    if chars.next().is_some() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn message(id: &str, sender: ChatSender, second: u32) -> ChatMessage {
        ChatMessage {
            id: Id::parse(id).unwrap(),
            service_provider_id: Id::parse("sp001").unwrap(),
            service_provider_name: "服务商".into(),
            customer_id: Id::parse("c001").unwrap(),
            customer_name: "客户".into(),
            sender_type: sender,
            content: format!("消息{id}"),
            timestamp: chrono::Utc.with_ymd_and_hms(2026, 1, 29, 10, 0, second).unwrap(),
            status: ChatStatus::Sent,
        }
    }

    fn fold(messages: &[ChatMessage]) -> Conversation {
        let mut summary: Option<Conversation> = None;
        for m in messages {
            summary = Some(Conversation::with_message(summary.as_ref(), m));
        }
        summary.unwrap()
    }

    #[test]
    fn customer_messages_count_unread_and_wait_from_the_first_after_the_last_reply() {
        let c = ChatSender::Customer;
        let summary = fold(&[message("m1", c, 1), message("m2", ChatSender::ServiceProvider, 2), message("m3", c, 3)]);
        assert_eq!(summary.unread_messages, 2);
        assert_eq!(summary.waiting_since, Some(message("m3", c, 3).timestamp));
        let summary = Conversation::with_message(Some(&summary), &message("m4", c, 4));
        assert_eq!(summary.waiting_since, Some(message("m3", c, 3).timestamp), "still the first waiting");
        assert_eq!(summary.last_message.id.as_str(), "m4");
        let replied = Conversation::with_message(Some(&summary), &message("m5", ChatSender::ServiceProvider, 5));
        assert_eq!(replied.waiting_since, None);
        assert_eq!(replied.unread_messages, 3, "a reply reads nothing");
    }

    #[test]
    fn a_message_dated_before_the_last_does_not_become_the_last() {
        let summary = fold(&[message("m1", ChatSender::Customer, 9), message("m2", ChatSender::Customer, 3)]);
        assert_eq!(summary.last_message.id.as_str(), "m1");
        assert_eq!(summary.waiting_since, Some(message("m2", ChatSender::Customer, 3).timestamp));
    }

    #[test]
    fn marked_unread_counts_one_only_while_everything_is_read() {
        let summary = fold(&[message("m1", ChatSender::Customer, 1)]).with_read(1).marked(true);
        assert_eq!((summary.unread_messages, summary.unread_count()), (0, 1));
        let more = Conversation::with_message(Some(&summary), &message("m2", ChatSender::Customer, 2));
        assert_eq!(more.unread_count(), 1, "one real unread message, not two");
    }

    #[test]
    fn totals_move_by_the_difference_of_a_summary() {
        let first = fold(&[message("m1", ChatSender::Customer, 1)]);
        let totals = InboxTotals::default().apply(InboxTotals::change(None, &first));
        assert_eq!(
            totals,
            InboxTotals { conversations: 1, unread_conversations: 1, waiting_conversations: 1, unread_messages: 1 }
        );
        let read = first.with_read(1);
        let totals = totals.apply(InboxTotals::change(Some(&first), &read));
        assert_eq!(
            totals,
            InboxTotals { conversations: 1, unread_conversations: 0, waiting_conversations: 1, unread_messages: 0 }
        );
    }

    #[test]
    fn keys_round_trip_and_refuse_what_is_not_one() {
        let key = ConversationKey {
            at: message("m1", ChatSender::Customer, 7).timestamp,
            customer_id: Id::parse("c001").unwrap(),
        };
        assert_eq!(ConversationKey::decode(&key.encode()), Some(key));
        assert_eq!(ConversationKey::decode("c001"), None);
        assert_eq!(ConversationKey::decode("x:c001"), None);
    }

    #[test]
    fn previews_cut_long_content_by_characters() {
        let long = "库".repeat(PREVIEW_CHARS + 1);
        assert_eq!(preview(&long).chars().count(), PREVIEW_CHARS + 1);
        assert!(preview(&long).ends_with('…'));
        assert_eq!(preview("短"), "短");
    }
}
