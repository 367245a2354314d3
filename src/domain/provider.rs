//! The service provider: the user of the mini-program and the tenant every other entity belongs to.

use super::{Id, Timestamp};

/// Whether a provider may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderStatus {
    Active,
    Inactive,
}

impl ProviderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderStatus::Active => "active",
            ProviderStatus::Inactive => "inactive",
        }
    }

    pub fn parse(text: &str) -> Option<ProviderStatus> {
        match text {
            "active" => Some(ProviderStatus::Active),
            "inactive" => Some(ProviderStatus::Inactive),
            _ => None,
        }
    }
}

/// A provider as the spec's model 4.1 has it, less the password hash, which never leaves the store
/// except to the login check.
#[derive(Debug, Clone)]
pub struct ServiceProvider {
    pub id: Id,
    pub username: String,
    pub name: String,
    pub contact_person: String,
    pub phone: String,
    pub email: String,
    pub region: String,
    pub status: ProviderStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
