//! Service-level targets per ticket type, and the chat wait alert.
//!
//! One pair of variables per ticket type, `SLA_FIRST_RESPONSE_MINUTES_<TYPE>` and
//! `SLA_RESOLUTION_MINUTES_<TYPE>` (the type as the spec spells it, upper-cased: `COMPLAINT`,
//! `SYSTEM_ISSUE`, ...), rather than one compact variable: each is one number with its own default
//! and its own error message. Complaints and escalated issues get the tightest defaults,
//! suggestions the loosest. A ticket keeps the due times it was created with, so changing these
//! moves only tickets created afterwards. Like every file here, this one names the ticket types by
//! their spelling and imports nothing of the crate.

use super::reader::{ConfigError, Reader};

/// The longest target accepted: one year, in minutes.
const MAX_MINUTES: u64 = 525_600;

/// A ticket type's variables and their defaults, in minutes.
struct Target {
    ticket_type: &'static str,
    first_response: (&'static str, u64),
    resolution: (&'static str, u64),
}

const DEFAULTS: [Target; 6] = [
    Target {
        ticket_type: "complaint",
        first_response: ("SLA_FIRST_RESPONSE_MINUTES_COMPLAINT", 60),
        resolution: ("SLA_RESOLUTION_MINUTES_COMPLAINT", 24 * 60),
    },
    Target {
        ticket_type: "issue_escalation",
        first_response: ("SLA_FIRST_RESPONSE_MINUTES_ISSUE_ESCALATION", 60),
        resolution: ("SLA_RESOLUTION_MINUTES_ISSUE_ESCALATION", 24 * 60),
    },
    Target {
        ticket_type: "system_issue",
        first_response: ("SLA_FIRST_RESPONSE_MINUTES_SYSTEM_ISSUE", 4 * 60),
        resolution: ("SLA_RESOLUTION_MINUTES_SYSTEM_ISSUE", 3 * 24 * 60),
    },
    Target {
        ticket_type: "renewal_question",
        first_response: ("SLA_FIRST_RESPONSE_MINUTES_RENEWAL_QUESTION", 4 * 60),
        resolution: ("SLA_RESOLUTION_MINUTES_RENEWAL_QUESTION", 3 * 24 * 60),
    },
    Target {
        ticket_type: "training_implementation",
        first_response: ("SLA_FIRST_RESPONSE_MINUTES_TRAINING_IMPLEMENTATION", 8 * 60),
        resolution: ("SLA_RESOLUTION_MINUTES_TRAINING_IMPLEMENTATION", 7 * 24 * 60),
    },
    Target {
        ticket_type: "product_suggestion",
        first_response: ("SLA_FIRST_RESPONSE_MINUTES_PRODUCT_SUGGESTION", 24 * 60),
        resolution: ("SLA_RESOLUTION_MINUTES_PRODUCT_SUGGESTION", 14 * 24 * 60),
    },
];

/// How long the chat wait alert waits for a provider's reply unless `CHAT_WAIT_ALERT_MINUTES` says.
const DEFAULT_CHAT_WAIT_ALERT_MINUTES: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaSettings {
    /// (ticket type, first-response minutes, resolution minutes), one per type.
    targets: Vec<(&'static str, u64, u64)>,
    /// `CHAT_WAIT_ALERT_MINUTES`: how long a customer may wait for a reply in a chat before the
    /// provider is alerted.
    pub chat_wait_alert_minutes: u64,
}

impl SlaSettings {
    pub(super) fn read(env: &Reader) -> Result<SlaSettings, ConfigError> {
        let mut targets = Vec::with_capacity(DEFAULTS.len());
        for Target { ticket_type, first_response: (first_name, first), resolution: (resolution_name, resolution) } in
            DEFAULTS
        {
            let first = env.number_in(first_name, 1..=MAX_MINUTES, first)?;
            let resolution = env.number_in(resolution_name, 1..=MAX_MINUTES, resolution)?;
            targets.push((ticket_type, first, resolution));
        }
        let chat_wait_alert_minutes =
            env.number_in("CHAT_WAIT_ALERT_MINUTES", 1..=MAX_MINUTES, DEFAULT_CHAT_WAIT_ALERT_MINUTES)?;
        Ok(SlaSettings { targets, chat_wait_alert_minutes })
    }

    /// The first-response and resolution targets, in minutes, of a ticket type by its spelling;
    /// a type without settings gets the loosest defaults.
    pub fn minutes(&self, ticket_type: &str) -> (u64, u64) {
        let found = self.targets.iter().find(|(name, _, _)| *name == ticket_type);
        found.or(self.targets.last()).map_or((24 * 60, 14 * 24 * 60), |(_, first, resolution)| (*first, *resolution))
    }
}

impl Default for SlaSettings {
    fn default() -> SlaSettings {
        SlaSettings {
            targets: DEFAULTS.iter().map(|t| (t.ticket_type, t.first_response.1, t.resolution.1)).collect(),
            chat_wait_alert_minutes: DEFAULT_CHAT_WAIT_ALERT_MINUTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complaints_are_tighter_than_suggestions_and_a_variable_overrides_its_type_only() {
        let lookup = |name: &str| (name == "SLA_FIRST_RESPONSE_MINUTES_COMPLAINT").then(|| "5".to_owned());
        let settings = SlaSettings::read(&Reader::new(&lookup)).unwrap();
        assert_eq!(settings.minutes("complaint"), (5, 24 * 60));
        assert_eq!(settings.minutes("product_suggestion"), (24 * 60, 14 * 24 * 60));
        let defaults = SlaSettings::default();
        assert!(defaults.minutes("complaint").0 < defaults.minutes("product_suggestion").0);
    }

    #[test]
    fn a_target_of_zero_minutes_is_refused_naming_the_variable() {
        let lookup = |name: &str| (name == "SLA_RESOLUTION_MINUTES_SYSTEM_ISSUE").then(|| "0".to_owned());
        let error = SlaSettings::read(&Reader::new(&lookup)).unwrap_err();
        assert!(error.to_string().contains("SLA_RESOLUTION_MINUTES_SYSTEM_ISSUE"), "{error}");
    }
}
