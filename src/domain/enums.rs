//! The closed value sets of the spec's models, with their stored spelling (the spec's lowercase
//! strings, which the store and the REST layer use) and their GraphQL spelling (derived by
//! async-graphql: `system_issue` becomes `SYSTEM_ISSUE`).

use async_graphql::Enum;

/// Declares a value set: the enum, its spec spelling, and parsing back from that spelling.
macro_rules! value_set {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in the spec's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spec's spelling, as stored and as the REST layer shows it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the spec's spelling; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

value_set! {
    /// Where a ticket is in its lifecycle.
    TicketStatus { Open => "open", Processing => "processing", Resolved => "resolved" }
}

value_set! {
    /// What a ticket is about.
    TicketType {
        SystemIssue => "system_issue",
        ProductSuggestion => "product_suggestion",
        TrainingImplementation => "training_implementation",
        RenewalQuestion => "renewal_question",
        IssueEscalation => "issue_escalation",
        Complaint => "complaint",
    }
}

value_set! {
    /// Where a ticket stands against its service-level targets (see `super::sla`).
    SlaStatus { OnTrack => "on_track", AtRisk => "at_risk", Breached => "breached", Met => "met" }
}

value_set! {
    /// Whether a ticket has been handed to a higher level of support.
    EscalationStatus { Normal => "normal", Escalated => "escalated" }
}

value_set! {
    /// The kind of a notification (the spec's "message").
    NotificationType {
        SystemNotification => "system_notification",
        CustomerAlert => "customer_alert",
        TicketUpdate => "ticket_update",
    }
}

value_set! {
    /// Whether the provider has read a notification.
    ReadStatus { Unread => "unread", Read => "read" }
}

value_set! {
    /// Who wrote a chat message.
    ChatSender { Customer => "customer", ServiceProvider => "service_provider" }
}

value_set! {
    /// How far a chat message got: sent, delivered to the other side, read there.
    ChatStatus { Sent => "sent", Delivered => "delivered", Read => "read" }
}

value_set! {
    /// What an entry of a provider's event log announces. `inbox`: one of the inbox's numbers moved
    /// with no message or notification of its own (a notification or all of them read, a
    /// conversation marked unread, or read with nothing left to read); its subject is the
    /// notification or the customer.
    EventKind {
        ChatMessage => "chat_message",
        ChatStatus => "chat_status",
        Notification => "notification",
        Ticket => "ticket",
        Inbox => "inbox",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_parses_back_from_its_spec_spelling() {
        for value in TicketType::ALL {
            assert_eq!(TicketType::parse(value.as_str()), Some(*value));
        }
        for value in ChatSender::ALL {
            assert_eq!(ChatSender::parse(value.as_str()), Some(*value));
        }
        assert_eq!(TicketStatus::parse("PROCESSING"), None);
        assert_eq!(TicketType::SystemIssue.as_str(), "system_issue");
    }
}
