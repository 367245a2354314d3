//! The customer (model 4.2) and the rule that derives its status from its expiry date.

use super::{usage, Id, Timestamp};
use async_graphql::Enum;
use chrono::Duration;

/// A customer whose subscription ends within this many days is `expiring`.
pub const EXPIRING_WINDOW_DAYS: i64 = 30;

/// Where a customer's subscription stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomerStatus {
    Active,
    Expiring,
    Expired,
}

impl CustomerStatus {
    pub const ALL: &'static [CustomerStatus] =
        &[CustomerStatus::Active, CustomerStatus::Expiring, CustomerStatus::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            CustomerStatus::Active => "active",
            CustomerStatus::Expiring => "expiring",
            CustomerStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<CustomerStatus> {
        CustomerStatus::ALL.iter().copied().find(|s| s.as_str() == text)
    }

    /// The status that the expiry date gives at `now`: expired once the date has passed, expiring
    /// within [`EXPIRING_WINDOW_DAYS`] of it, active before that.
    pub fn at(expiry_date: Timestamp, now: Timestamp) -> CustomerStatus {
        if expiry_date <= now {
            CustomerStatus::Expired
        } else if expiry_date <= now + Duration::days(EXPIRING_WINDOW_DAYS) {
            CustomerStatus::Expiring
        } else {
            CustomerStatus::Active
        }
    }

    /// The expiry dates that have this status at `now`, as a half-open range `(after, until]`,
    /// so that a store can filter by status with an index on the expiry date.
    pub fn expiry_range(self, now: Timestamp) -> (Option<Timestamp>, Option<Timestamp>) {
        let window_end = now + Duration::days(EXPIRING_WINDOW_DAYS);
        match self {
            CustomerStatus::Expired => (None, Some(now)),
            CustomerStatus::Expiring => (Some(now), Some(window_end)),
            CustomerStatus::Active => (Some(window_end), None),
        }
    }
}

/// The four usage measures (0 to 100) from which the usage score is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageMetrics {
    pub login_frequency: u8,
    pub feature_usage: u8,
    pub data_input: u8,
    pub training_completion: u8,
}

/// A customer as stored. Its status, usage score and open-ticket count are not taken from here
/// blindly: see [`Customer::status_at`], [`Customer::usage_score`] and `unresolved_issues`.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: Id,
    pub service_provider_id: Id,
    pub service_provider_name: String,
    pub name: String,
    pub contact_person: String,
    pub phone: String,
    pub email: String,
    pub region: String,
    pub software_version: String,
    pub port_count: u32,
    pub purchase_date: Timestamp,
    pub expiry_date: Timestamp,
    /// The status last written to the store; informative only, [`Customer::status_at`] decides.
    pub stored_status: CustomerStatus,
    pub usage: UsageMetrics,
    pub usage_updated_at: Timestamp,
    /// Open and processing tickets of this customer, counted by the store when it reads the customer.
    pub unresolved_issues: u32,
    pub last_active_time: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Customer {
    /// The customer as a list shows it: phone and email masked (see [`super::masking`]).
    pub fn masked(mut self) -> Customer {
        self.phone = super::masking::mask_phone(&self.phone);
        self.email = super::masking::mask_email(&self.email);
        self
    }

    /// The status the expiry date gives now, whatever the stored value says.
    pub fn status_at(&self, now: Timestamp) -> CustomerStatus {
        CustomerStatus::at(self.expiry_date, now)
    }

    /// The total usage score (0 to 100).
    pub fn usage_score(&self) -> u8 {
        usage::total_score(&self.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 3, day, 0, 0, 0).unwrap()
    }

    #[test]
    fn status_follows_the_expiry_date_with_a_thirty_day_window() {
        let now = at(1);
        assert_eq!(CustomerStatus::at(now - Duration::seconds(1), now), CustomerStatus::Expired);
        assert_eq!(CustomerStatus::at(now, now), CustomerStatus::Expired);
        assert_eq!(CustomerStatus::at(now + Duration::days(1), now), CustomerStatus::Expiring);
        assert_eq!(CustomerStatus::at(now + Duration::days(30), now), CustomerStatus::Expiring);
        assert_eq!(CustomerStatus::at(now + Duration::days(31), now), CustomerStatus::Active);
    }

    #[test]
    fn expiry_ranges_agree_with_the_status_rule() {
        let now = at(1);
        for offset_hours in (-24 * 40..24 * 40).step_by(7) {
            let expiry = now + Duration::hours(offset_hours);
            let status = CustomerStatus::at(expiry, now);
            let (after, until) = status.expiry_range(now);
            assert!(after.is_none_or(|a| expiry > a), "{offset_hours}h");
            assert!(until.is_none_or(|u| expiry <= u), "{offset_hours}h");
        }
    }
}
