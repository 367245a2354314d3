//! What the token check remembers for a moment, so that most requests need no store read: the
//! tokens lately found unrevoked ([`VerifiedTokens`], only when every revocation passes through
//! this process) and the providers lately found active or not ([`ProviderStatuses`], always).
//!
//! Both forget within [`VERIFIED_FOR`] and [`STATUS_FOR`]: the bound on how late a change this
//! process did not make (an operator's command, another server) takes effect. A change this
//! process makes is applied to them as it is written.

use crate::domain::{Id, ProviderStatus};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token found unrevoked is trusted before the token store is asked again: a bound on
/// how late a revocation this process did not make (`provider-desk reset-password`, another
/// process on the same data directory) takes effect. Short, yet under load, when it matters, a
/// client's requests within it are many.
const VERIFIED_FOR: Duration = Duration::from_secs(2);
/// At most this many verified tokens are remembered; past it, the stale ones are dropped, then all.
const MAX_VERIFIED: usize = 10_000;
/// How many of the latest revoked families are kept, so that a check that raced a revocation (it
/// read the store just before the revocation was written) does not remember a revoked token.
const RECENTLY_REVOKED: usize = 256;

/// Access tokens found unrevoked, by `jti`, with their family and when they were checked.
///
/// Locking: one short-lived mutex, never held across an `.await`.
#[derive(Default)]
pub(super) struct VerifiedTokens {
    inner: Mutex<Verified>,
}

#[derive(Default)]
struct Verified {
    tokens: HashMap<String, (String, Instant)>,
    recently_revoked: VecDeque<String>,
}

impl VerifiedTokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the token was found unrevoked less than [`VERIFIED_FOR`] ago.
    pub(super) fn holds(&self, jti: &str) -> bool {
        self.lock().tokens.get(jti).is_some_and(|(_, checked)| checked.elapsed() < VERIFIED_FOR)
    }

    /// Remembers a token just found unrevoked, unless its family was revoked meanwhile.
    pub(super) fn remember(&self, jti: &str, family_id: &str) {
        let mut verified = self.lock();
        if verified.recently_revoked.iter().any(|revoked| revoked == family_id) {
            return;
        }
        if verified.tokens.len() >= MAX_VERIFIED {
            verified.tokens.retain(|_, (_, checked)| checked.elapsed() < VERIFIED_FOR);
            if verified.tokens.len() >= MAX_VERIFIED {
                verified.tokens.clear();
            }
        }
        verified.tokens.insert(jti.to_owned(), (family_id.to_owned(), Instant::now()));
    }

    /// Forgets the tokens of a family that is being revoked.
    pub(super) fn forget_family(&self, family_id: &str) {
        let mut verified = self.lock();
        verified.tokens.retain(|_, (family, _)| family != family_id);
        if verified.recently_revoked.len() >= RECENTLY_REVOKED {
            verified.recently_revoked.pop_front();
        }
        verified.recently_revoked.push_back(family_id.to_owned());
    }
}

/// How long a provider's status, once read, is trusted before the store is asked again: a bound on
/// how late `provider-desk deactivate-provider` (another process) locks out a provider whose
/// tokens would otherwise still work. One store read per provider per this long, however busy.
pub(super) const STATUS_FOR: Duration = Duration::from_secs(2);
/// At most this many providers' statuses are remembered; past it, the stale ones are dropped, then all.
const MAX_STATUSES: usize = 10_000;

/// Each provider's status as last read (`None`: no such provider), with when that read began.
///
/// Locking: one short-lived mutex, never held across an `.await`.
#[derive(Default)]
pub(super) struct ProviderStatuses {
    inner: Mutex<HashMap<Id, (Option<ProviderStatus>, Instant)>>,
}

impl ProviderStatuses {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Id, (Option<ProviderStatus>, Instant)>> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The provider's status if it was read less than [`STATUS_FOR`] ago.
    pub(super) fn fresh(&self, provider: &Id) -> Option<Option<ProviderStatus>> {
        self.lock().get(provider).filter(|(_, read)| read.elapsed() < STATUS_FOR).map(|(status, _)| *status)
    }

    /// Remembers a status read from the store by a read that began at `read_from`, unless a newer
    /// one is known (a change this process wrote while the read was under way).
    pub(super) fn note(&self, provider: &Id, status: Option<ProviderStatus>, read_from: Instant) {
        let mut statuses = self.lock();
        if statuses.get(provider).is_some_and(|(_, known)| *known > read_from) {
            return;
        }
        if statuses.len() >= MAX_STATUSES {
            statuses.retain(|_, (_, read)| read.elapsed() < STATUS_FOR);
            if statuses.len() >= MAX_STATUSES {
                statuses.clear();
            }
        }
        statuses.insert(provider.clone(), (status, read_from));
    }
}
