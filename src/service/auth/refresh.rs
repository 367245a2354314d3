//! Refresh-token rotation that survives a lost answer.
//!
//! A phone whose refresh answer was lost presents the same refresh token again, which plain
//! rotation takes for theft. So a token's successor is not random but derived: an HMAC, keyed by a
//! key derived from `JWT_SECRET`, of the token and the client's address (its /64 for IPv6, as the
//! limits key it). The same token from the same address always rotates to the same refresh token
//! (and access-token id), so a retry can be answered with the very pair the first rotation handed
//! out without any secret being stored in plain text (the stores keep only hashes, as before); from
//! another address it derives another successor, which the store does not know. The access token is
//! re-signed from the same claims (`iat` is the first use's time), which HS256 turns into the same
//! bytes.
//!
//! A used token presented again gets the same pair only if all hold: `REFRESH_REUSE_GRACE_SECONDS`
//! is not 0 and has not passed since its first use; the client's address is known and is the one
//! it was first used from; and that first rotation's successor is still unused. A successor
//! already used means the client did get the answer, so the old token coming back is not a lost
//! answer; every other case is reuse, and the family is revoked as before (RFC 9700 4.14.2).
//!
//! The store rotates in one atomic step (the old token marked used and the successor stored
//! together), so a crash between the two loses nothing, and of two concurrent rotations one is
//! fresh and the other a retry.

use super::{hash_refresh_token, AuthService, IssuedTokens, BAD_REFRESH_TOKEN, REFRESH_TOKEN_DAYS};
use crate::domain::{now, Timestamp};
use crate::error::{AppError, AppResult};
use crate::service::ClientInfo;
use crate::store::{RefreshTokenRecord, RefreshTokenUse, Successor};
use base64::Engine;
use chrono::Duration;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// The key successors are derived with: from `JWT_SECRET`, for this use only.
pub(super) fn rotation_key(jwt_secret: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(jwt_secret).expect("HMAC takes keys of any length");
    mac.update(b"provider-desk refresh-token successors");
    mac.finalize().into_bytes().into()
}

/// What a refresh token rotates to when presented from one address.
struct Derived {
    refresh_token: String,
    jti: String,
}

impl AuthService {
    /// Trades a refresh token for a new access token and a new refresh token. An inactive
    /// provider's is refused (FORBIDDEN), and its session ends. A used token presented again is
    /// answered the same pair within the grace window (see the module documentation), else its
    /// family is revoked.
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> AppResult<IssuedTokens> {
        if refresh_token.trim().is_empty() {
            return Err(AppError::bad_input("refreshToken", "刷新令牌不能为空"));
        }
        let at = now();
        let next = self.successor_of(refresh_token, client.ip);
        let successor = Successor {
            token_hash: hash_refresh_token(&next.refresh_token),
            expires_at: at + Duration::days(REFRESH_TOKEN_DAYS),
        };
        match self.tokens.rotate_refresh_token(&hash_refresh_token(refresh_token), &successor, at).await? {
            RefreshTokenUse::Fresh(record) => self.hand_out_successor(&record, next, at).await,
            RefreshTokenUse::Reused { record, used_at, successor_unused } => {
                if successor_unused && client.ip.is_some() && self.within_grace(used_at, at) {
                    tracing::info!(provider = %record.provider_id, family = %record.family_id,
                        "a refresh retried within the grace window; answering the same pair");
                    return self.hand_out_successor(&record, next, used_at).await;
                }
                tracing::warn!(provider = %record.provider_id, family = %record.family_id,
                    "a used refresh token came back; revoking its family");
                self.revoke_family(&record.family_id, at).await?;
                self.announce(&record.family_id, true);
                Err(AppError::Unauthenticated(BAD_REFRESH_TOKEN))
            }
            RefreshTokenUse::Revoked | RefreshTokenUse::Unknown => Err(AppError::Unauthenticated(BAD_REFRESH_TOKEN)),
        }
    }

    fn within_grace(&self, used_at: Timestamp, at: Timestamp) -> bool {
        let grace = self.guard.settings().refresh_reuse_grace;
        let since = (at - used_at).to_std().unwrap_or_default();
        !grace.is_zero() && since <= grace
    }

    /// The pair a rotation at `issued_at` hands out, once the provider is found active (else its
    /// session ends).
    async fn hand_out_successor(
        &self,
        record: &RefreshTokenRecord,
        next: Derived,
        issued_at: Timestamp,
    ) -> AppResult<IssuedTokens> {
        if let Err(error) = self.check_active(&record.provider_id).await {
            if matches!(error, AppError::Forbidden(_)) {
                self.revoke_family(&record.family_id, now()).await?;
                self.announce(&record.family_id, true);
            }
            return Err(error);
        }
        self.hand_out(&record.provider_id, &record.family_id, &next.jti, issued_at, next.refresh_token)
    }

    /// The successor of `refresh_token` presented from `ip`: the same every time for the same
    /// two, unguessable without the key.
    fn successor_of(&self, refresh_token: &str, ip: Option<IpAddr>) -> Derived {
        let address = ip.map_or_else(|| "unknown".to_owned(), |ip| crate::config::limit_key(ip).to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.rotation_key).expect("HMAC takes keys of any length");
        for part in [address.as_bytes(), b"\0", refresh_token.as_bytes()] {
            mac.update(part);
        }
        let refresh_token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let digest = Sha256::digest(format!("access-token-id\0{refresh_token}").as_bytes());
        let jti = digest[..12].iter().fold(String::from("a"), |mut jti, byte| {
            jti.push_str(&format!("{byte:02x}"));
            jti
        });
        Derived { refresh_token, jti }
    }
}
