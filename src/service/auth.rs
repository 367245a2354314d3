//! Sign-in, tokens and sign-out (spec 3.1 and 6.1).
//!
//! Access tokens are HS256 JWTs valid 24 hours, pinned to one algorithm, issuer and audience, each
//! with a `jti` (so one token can be revoked) and the id of its refresh-token family. Refresh tokens
//! are opaque strings stored only as SHA-256 hashes, rotated on every use; presenting a used one
//! again revokes its whole family, access tokens included (RFC 9700 4.14.2), unless it is a lost
//! answer retried (see [`refresh`]). Password checks run
//! on the blocking pool behind a semaphore, and an unknown username is checked against a dummy hash
//! of the same cost, so neither a login storm nor timing reveals anything.
//!
//! Only an active provider's tokens work: the token check and refresh refuse an inactive one
//! (FORBIDDEN, as its sign-in is), and an operator's deactivation also ends its sessions.
//!
//! When every revocation passes through this process (the embedded store's tokens), a token once
//! found unrevoked is remembered for a while, and every provider's status is remembered for a
//! moment (see [`super::auth_cache`]), so most requests need no store read; a revocation or a status
//! change made here applies to them as soon as it is written.

mod refresh;

use super::audit::AuditService;
use super::auth_cache::{ProviderStatuses, VerifiedTokens};
use super::{ClientInfo, Session};
use crate::domain::{new_id, now, Id, ProviderStatus, ServiceProvider, Timestamp};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::limits::{Guard, Refusal};
use crate::store::{ProviderStore, RefreshTokenRecord, SharedStore, SharedTokenStore};
use base64::Engine;
use chrono::Duration;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{broadcast, Semaphore};

const ISSUER: &str = "provider-desk";
const AUDIENCE: &str = "provider-desk-api";
/// How long an access token lives (spec 6.1: 24 hours).
pub const ACCESS_TOKEN_HOURS: i64 = 24;
/// How long a refresh token lives if unused.
pub const REFRESH_TOKEN_DAYS: i64 = 30;
/// bcrypt ignores bytes past 72; longer passwords are refused rather than silently cut.
pub const MAX_PASSWORD_BYTES: usize = 72;
/// No account name is longer; a longer one is a mistake, not a guess worth a bcrypt check.
pub const MAX_USERNAME_CHARS: usize = 64;

const WRONG_CREDENTIALS: &str = "账号或密码错误";
const BAD_TOKEN: &str = "登录已失效，请重新登录";
const BAD_REFRESH_TOKEN: &str = "刷新令牌无效或已过期，请重新登录";
const INACTIVE: &str = "账号已停用，请联系管理员";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    jti: String,
    fam: String,
    iss: String,
    aud: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// What a successful sign-in or refresh hands out.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    /// Whose tokens these are.
    pub provider_id: Id,
    pub token: String,
    pub refresh_token: String,
    pub expires_at: Timestamp,
}

/// A token family that stopped working.
#[derive(Debug, Clone)]
pub struct RevokedFamily {
    pub family_id: String,
    /// Revoked by this process (as opposed to announced by another one).
    pub local: bool,
}

pub struct AuthService {
    providers: Arc<dyn ProviderStore>,
    /// Revocations and refresh tokens: Redis when configured, else the main store.
    tokens: SharedTokenStore,
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    validation: Validation,
    bcrypt_cost: u32,
    /// Compared against when the username is unknown, so that case costs a full bcrypt check too.
    dummy_hash: String,
    /// Bounds concurrent bcrypt work to one core less than the machine has (at least one), so a
    /// login storm always leaves a core to the other requests.
    hashing: Arc<Semaphore>,
    /// Announces revoked token families, so live connections signed in with them end at once.
    revoked_families: broadcast::Sender<RevokedFamily>,
    /// Slows down and refuses repeated failed sign-ins.
    guard: Arc<Guard>,
    audit: AuditService,
    /// Tokens lately found unrevoked; `None` when another process may revoke them.
    verified: Option<VerifiedTokens>,
    /// Providers lately found active or not.
    statuses: ProviderStatuses,
    /// Keys the derivation of a refresh token's successor (see [`refresh`]).
    rotation_key: [u8; 32],
}

impl AuthService {
    pub async fn new(
        store: SharedStore,
        tokens: SharedTokenStore,
        jwt_secret: &[u8],
        bcrypt_cost: u32,
        guard: Arc<Guard>,
    ) -> AppResult<AuthService> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hashing = Arc::new(Semaphore::new(cores.saturating_sub(1).max(1)));
        let dummy_hash = hash_blocking(&hashing, "provider-desk-dummy-password".to_owned(), bcrypt_cost).await?;
        let verified = tokens.revoked_only_here().then(VerifiedTokens::default);
        Ok(AuthService {
            providers: store.clone(),
            tokens,
            encoding_key: EncodingKey::from_secret(jwt_secret),
            decoding_key: DecodingKey::from_secret(jwt_secret),
            validation,
            bcrypt_cost,
            dummy_hash,
            hashing,
            revoked_families: broadcast::channel(256).0,
            guard,
            audit: AuditService::new(&store),
            verified,
            statuses: ProviderStatuses::default(),
            rotation_key: refresh::rotation_key(jwt_secret),
        })
    }

    /// Hashes a password for storage.
    pub async fn hash_password(&self, password: &str) -> AppResult<String> {
        check_password_length(password)?;
        hash_blocking(&self.hashing, password.to_owned(), self.bcrypt_cost).await
    }

    /// Checks a username and password and, if they match an active provider, issues tokens.
    ///
    /// Every attempt is audited: the provider whose account was tried (if the username exists),
    /// the username (its first 64 characters), and the result, a refused input included. Repeated
    /// failures of one username from one address, or from one address, are refused for a while
    /// (RATE_LIMITED) without checking the password at all; a username failing from anywhere is
    /// answered more slowly, except the right password from an address it signed in from lately
    /// (see `limits::login`).
    #[tracing::instrument(skip(self, password, client), fields(ip = ?client.ip))]
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<(ServiceProvider, IssuedTokens)> {
        if let Err(error) = check_login_input(username, password) {
            self.audit.record("login", None, Some(username), None, client, error.code().as_str()).await;
            return Err(error);
        }
        let username = username.trim();
        let read_from = Instant::now();
        let found = self.providers.provider_credentials(username).await?;
        let provider_id = found.as_ref().map(|(provider, _)| provider.id.clone());
        let audit = |result: &'static str| {
            let provider_id = provider_id.clone();
            async move {
                let target = provider_id.as_ref().map(Id::as_str);
                self.audit.record("login", provider_id.as_ref(), Some(username), target, client, result).await;
            }
        };
        if let Err(refusal) = self.guard.before_login(username, client.ip).await {
            audit(ErrorCode::RateLimited.as_str()).await;
            return Err(match refusal {
                Refusal::Denied => AppError::Forbidden("访问被拒绝"),
                Refusal::Limited { retry_after } => AppError::rate_limited(retry_after),
            });
        }
        let hash = found.as_ref().map_or(self.dummy_hash.clone(), |(_, hash)| hash.clone());
        let matches = self.verify_blocking(password.to_owned(), hash).await?;
        let delay = self.guard.login_delay(username, client.ip, matches && found.is_some()).await;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let provider = match found {
            Some((provider, _)) if matches => provider,
            _ => {
                self.guard.login_failed(username, client.ip).await;
                audit(ErrorCode::Unauthenticated.as_str()).await;
                tracing::info!(username, "sign-in failed");
                return Err(AppError::Unauthenticated(WRONG_CREDENTIALS));
            }
        };
        // Read just now: fresher than what the token check may remember (an operator's
        // activate-provider takes effect for the new session at once).
        self.statuses.note(&provider.id, Some(provider.status), read_from);
        if provider.status != ProviderStatus::Active {
            audit(ErrorCode::Forbidden.as_str()).await;
            return Err(AppError::Forbidden(INACTIVE));
        }
        self.guard.login_succeeded(username, client.ip).await;
        let family_id = new_id("f").to_string();
        let tokens = match self.issue(&provider.id, &family_id).await {
            Ok(tokens) => tokens,
            Err(error) => {
                audit(error.code().as_str()).await;
                return Err(error);
            }
        };
        audit(crate::domain::AuditEntry::OK).await;
        tracing::info!(provider = %provider.id, "signed in");
        crate::context::note_provider(&provider.id);
        Ok((provider, tokens))
    }

    /// An operator's reset of a provider's password (`provider-desk reset-password`): the new hash
    /// is stored, and every session signed in before ends at once: each of the provider's token
    /// families is revoked, with its refresh and access tokens and its WebSockets. Answers how
    /// many sessions ended; NOT_FOUND for an unknown username.
    pub async fn reset_password(&self, username: &str, password: &str) -> AppResult<usize> {
        let (provider, _) =
            self.providers.provider_credentials(username).await?.ok_or(AppError::NotFound("服务商账号"))?;
        let hash = self.hash_password(password).await?;
        if !self.providers.set_password_hash(username, &hash, now()).await? {
            return Err(AppError::NotFound("服务商账号"));
        }
        let ended = self.end_provider_sessions(&provider.id).await?;
        self.audit_operator("resetPassword", &provider, username).await;
        tracing::info!(provider = %provider.id, sessions_ended = ended, "password reset");
        Ok(ended)
    }

    /// An operator's lock-out (`provider-desk deactivate-provider`) or its end
    /// (`activate-provider`). Deactivating ends every session of the provider, as a password reset
    /// does, so its open WebSockets close; and from then on its tokens (a session begun while this
    /// ran among them) and its refresh tokens are refused with FORBIDDEN, here at once, by other
    /// processes within [`super::auth_cache::STATUS_FOR`]. Answers how many sessions ended;
    /// NOT_FOUND for an unknown username.
    pub async fn set_provider_status(&self, username: &str, status: ProviderStatus) -> AppResult<usize> {
        let (provider, _) =
            self.providers.provider_credentials(username).await?.ok_or(AppError::NotFound("服务商账号"))?;
        if !self.providers.set_provider_status(username, status, now()).await? {
            return Err(AppError::NotFound("服务商账号"));
        }
        self.statuses.note(&provider.id, Some(status), Instant::now());
        let ended = match status {
            ProviderStatus::Inactive => self.end_provider_sessions(&provider.id).await?,
            ProviderStatus::Active => 0,
        };
        let operation = match status {
            ProviderStatus::Inactive => "deactivateProvider",
            ProviderStatus::Active => "activateProvider",
        };
        self.audit_operator(operation, &provider, username).await;
        tracing::info!(provider = %provider.id, status = status.as_str(), sessions_ended = ended, "provider status set");
        Ok(ended)
    }

    /// An operator's sign-out of every session of a provider (`provider-desk end-sessions`), as a
    /// password reset does, the password unchanged. Answers how many sessions ended; NOT_FOUND for
    /// an unknown username.
    pub async fn end_sessions(&self, username: &str) -> AppResult<usize> {
        let (provider, _) =
            self.providers.provider_credentials(username).await?.ok_or(AppError::NotFound("服务商账号"))?;
        let ended = self.end_provider_sessions(&provider.id).await?;
        self.audit_operator("endSessions", &provider, username).await;
        tracing::info!(provider = %provider.id, sessions_ended = ended, "sessions ended by an operator");
        Ok(ended)
    }

    /// Every provider, for an operator (`provider-desk list-providers`); audited as `listProviders`.
    pub async fn list_providers(&self) -> AppResult<Vec<ServiceProvider>> {
        let providers = self.providers.all_providers().await?;
        let ok = crate::domain::AuditEntry::OK;
        self.audit.record("listProviders", None, None, None, &ClientInfo::default(), ok).await;
        Ok(providers)
    }

    /// Revokes each of the provider's token families, with its refresh and access tokens and its
    /// WebSockets; answers how many there were.
    async fn end_provider_sessions(&self, provider: &Id) -> AppResult<usize> {
        let families = self.tokens.provider_token_families(provider).await?;
        for family in &families {
            self.revoke_family(family, now()).await?;
            self.announce(family, true);
        }
        Ok(families.len())
    }

    /// An operator's command done to a provider, in that provider's audit log.
    async fn audit_operator(&self, operation: &str, provider: &ServiceProvider, username: &str) {
        let (ok, target) = (crate::domain::AuditEntry::OK, Some(provider.id.as_str()));
        self.audit.record(operation, Some(&provider.id), Some(username), target, &ClientInfo::default(), ok).await;
    }

    /// Refuses a provider that is not active (FORBIDDEN) or no longer exists (UNAUTHENTICATED). A
    /// status read less than [`super::auth_cache::STATUS_FOR`] ago is trusted.
    async fn check_active(&self, provider: &Id) -> AppResult<()> {
        let status = match self.statuses.fresh(provider) {
            Some(status) => status,
            None => {
                let read_from = Instant::now();
                let found = self.providers.providers_by_ids(std::slice::from_ref(provider)).await?;
                let status = found.first().map(|provider| provider.status);
                self.statuses.note(provider, status, read_from);
                status
            }
        };
        match status {
            Some(ProviderStatus::Active) => Ok(()),
            Some(ProviderStatus::Inactive) => Err(AppError::Forbidden(INACTIVE)),
            None => Err(AppError::Unauthenticated(BAD_TOKEN)),
        }
    }

    /// The token store, for the readiness check.
    pub fn tokens(&self) -> &SharedTokenStore {
        &self.tokens
    }

    /// Verifies an access token: signature, algorithm, issuer, audience, time, that its provider
    /// is active (else FORBIDDEN, the answer its sign-in would get), and revocation. When the store
    /// or the token store cannot be asked, the answer is UNAVAILABLE, never a pass: a revoked token
    /// must not work just because Redis is down (fail closed).
    pub async fn authenticate(&self, token: &str) -> AppResult<Session> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding_key, &self.validation)
            .map_err(|error| {
                if forged(error.kind()) {
                    crate::context::note_bad_request(crate::context::BadRequest::ForgedToken);
                }
                AppError::Unauthenticated(BAD_TOKEN)
            })?
            .claims;
        let provider_id = Id::parse(&claims.sub).ok_or(AppError::Unauthenticated(BAD_TOKEN))?;
        // Before revocation: a deactivated provider's sessions are revoked too, and it is told why.
        self.check_active(&provider_id).await?;
        let known = self.verified.as_ref().is_some_and(|verified| verified.holds(&claims.jti));
        if !known {
            if self.tokens.is_access_revoked(&claims.jti, &claims.fam).await? {
                return Err(AppError::Unauthenticated(BAD_TOKEN));
            }
            if let Some(verified) = &self.verified {
                verified.remember(&claims.jti, &claims.fam);
            }
        }
        let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).ok_or(AppError::Unauthenticated(BAD_TOKEN))?;
        Ok(Session { provider_id, token_id: claims.jti, family_id: claims.fam, expires_at })
    }

    /// Signs out: the access token and every token of its family stop working at once.
    ///
    /// The family goes first: revoking it alone already refuses this access token and every refresh
    /// token of the family, so if the token store fails before the second write, nothing is left
    /// working (the other order could leave the refresh token alive with no way to sign out again).
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id))]
    pub async fn logout(&self, session: &Session) -> AppResult<()> {
        self.revoke_family(&session.family_id, now()).await?;
        self.tokens.revoke_access_token(&session.token_id, session.expires_at).await?;
        self.announce(&session.family_id, true);
        Ok(())
    }

    /// Token families as they are revoked (by logout, or by the reuse of a refresh token), here
    /// or, with a bus between processes, in another process.
    pub fn revoked_families(&self) -> broadcast::Receiver<RevokedFamily> {
        self.revoked_families.subscribe()
    }

    /// Passes on a revocation made by another process.
    pub fn revoked_elsewhere(&self, family_id: String) {
        self.announce(&family_id, false);
    }

    /// Revokes a family in the token store, and forgets its tokens here even if the write failed
    /// (it may have landed).
    async fn revoke_family(&self, family_id: &str, at: Timestamp) -> AppResult<()> {
        let revoked = self.tokens.revoke_token_family(family_id, at).await;
        if let Some(verified) = &self.verified {
            verified.forget_family(family_id);
        }
        revoked
    }

    fn announce(&self, family_id: &str, local: bool) {
        if let Some(verified) = &self.verified {
            verified.forget_family(family_id);
        }
        let _ = self.revoked_families.send(RevokedFamily { family_id: family_id.to_owned(), local });
    }

    /// A new session's tokens: a random refresh token, stored, and an access token.
    async fn issue(&self, provider_id: &Id, family_id: &str) -> AppResult<IssuedTokens> {
        let issued_at = now();
        let refresh_token = random_token()?;
        self.tokens
            .insert_refresh_token(&RefreshTokenRecord {
                token_hash: hash_refresh_token(&refresh_token),
                family_id: family_id.to_owned(),
                provider_id: provider_id.clone(),
                expires_at: issued_at + Duration::days(REFRESH_TOKEN_DAYS),
            })
            .await?;
        self.hand_out(provider_id, family_id, &new_id("a").to_string(), issued_at, refresh_token)
    }

    /// Signs an access token with these claims and hands it out with `refresh_token`. The same
    /// claims sign to the same token (HS256 is deterministic), which is how a refresh retried
    /// within the grace window gets the same pair.
    fn hand_out(
        &self,
        provider_id: &Id,
        family_id: &str,
        jti: &str,
        issued_at: Timestamp,
        refresh_token: String,
    ) -> AppResult<IssuedTokens> {
        let expires_at = issued_at + Duration::hours(ACCESS_TOKEN_HOURS);
        let claims = Claims {
            sub: provider_id.to_string(),
            jti: jti.to_owned(),
            fam: family_id.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: issued_at.timestamp(),
            nbf: issued_at.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding_key)
            .map_err(AppError::internal)?;
        // Just issued in a family found unrevoked: its first request needs no revocation check.
        if let Some(verified) = &self.verified {
            verified.remember(&claims.jti, family_id);
        }
        Ok(IssuedTokens { provider_id: provider_id.clone(), token, refresh_token, expires_at })
    }

    async fn verify_blocking(&self, password: String, hash: String) -> AppResult<bool> {
        let _permit = self.hashing.acquire().await.map_err(AppError::internal)?;
        tokio::task::spawn_blocking(move || bcrypt::non_truncating_verify(password, &hash).unwrap_or(false))
            .await
            .map_err(AppError::internal)
    }
}

/// What a sign-in must send before anything is looked up.
fn check_login_input(username: &str, password: &str) -> AppResult<()> {
    if username.trim().is_empty() {
        return Err(AppError::bad_input("username", "账号不能为空"));
    }
    if username.chars().count() > MAX_USERNAME_CHARS {
        return Err(AppError::bad_input("username", format!("账号不能超过{MAX_USERNAME_CHARS}个字符")));
    }
    if password.is_empty() {
        return Err(AppError::bad_input("password", "密码不能为空"));
    }
    check_password_length(password)
}

fn check_password_length(password: &str) -> AppResult<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::bad_input("password", format!("密码不能超过{MAX_PASSWORD_BYTES}个字节")));
    }
    Ok(())
}

async fn hash_blocking(hashing: &Semaphore, password: String, cost: u32) -> AppResult<String> {
    let _permit = hashing.acquire().await.map_err(AppError::internal)?;
    tokio::task::spawn_blocking(move || bcrypt::non_truncating_hash(password, cost))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)
}

fn hash_refresh_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> AppResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(AppError::internal)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether a token that failed verification is not one this server could have issued: not a
/// JWT at all, or signed with another algorithm (`none` among them). An expired token, or a
/// well-formed one whose signature does not match (every client's after a `JWT_SECRET`
/// rotation), is what working clients send too.
fn forged(kind: &jsonwebtoken::errors::ErrorKind) -> bool {
    use jsonwebtoken::errors::ErrorKind;
    matches!(
        kind,
        ErrorKind::InvalidToken
            | ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::MissingAlgorithm
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_)
    )
}
