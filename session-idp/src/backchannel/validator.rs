//! The logout token validator.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::Value;
use time::OffsetDateTime;

use crate::ConfigError;
use crate::jwks::Jwks;
use crate::replay::ReplayGuard;
use crate::token::{self, Policy, TokenError};

/// The member of a logout token's `events` claim that makes it one.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The claims of a logout token that passed every check.
///
/// ```
/// use session_idp::backchannel::LogoutToken;
///
/// # fn revoke(_: &str, _: Option<&str>, _: Option<&str>) {}
/// fn act_on(token: &LogoutToken) {
///     // With a sid: the sessions signed in under that provider session.
///     // With only a sub: all of that user's sessions from this provider.
///     revoke(&token.issuer, token.session_id.as_deref(), token.subject.as_deref());
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogoutToken {
    /// `iss`: the provider.
    pub issuer: String,
    /// `sub`: the user at the provider, when given.
    pub subject: Option<String>,
    /// `sid`: the provider's session, when given.
    pub session_id: Option<String>,
    /// `jti`: the token's identifier (already recorded by the replay guard).
    pub jti: String,
    /// `iat`.
    pub issued_at: OffsetDateTime,
    /// `exp`, when present.
    pub expires_at: Option<OffsetDateTime>,
}

/// Validates OpenID Connect logout tokens from one provider for one client.
///
/// Built with [`new`](Self::new) and the `with_*` setters; share it (it is cheap to clone,
/// and clones share the key cache). See the [module docs](super) for an example.
#[derive(Clone)]
pub struct LogoutTokenValidator {
    policy: Policy,
}

impl fmt::Debug for LogoutTokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.policy.debug("LogoutTokenValidator", f)
    }
}

impl LogoutTokenValidator {
    /// A validator for tokens from `issuer` (exactly as in its discovery document) to
    /// `client_id`, checked with the keys of `jwks` (the provider's `jwks_uri`), each `jti`
    /// accepted once through `replay`.
    #[must_use]
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        jwks: Jwks,
        replay: impl ReplayGuard + 'static,
    ) -> Self {
        let algorithms = vec![
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::PS256,
            Algorithm::EdDSA,
        ];
        Self {
            policy: Policy::new(
                issuer.into(),
                client_id.into(),
                jwks,
                Arc::new(replay),
                algorithms,
                Duration::from_secs(300),
            ),
        }
    }

    /// The signature algorithms accepted (default RS256, ES256, PS256, EdDSA). An empty
    /// list, or one with an HMAC algorithm, is refused.
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Result<Self, ConfigError> {
        self.policy.set_algorithms(algorithms)?;
        Ok(self)
    }

    /// How far the provider's clock may be off ours (default 60 s): `iat` may be that much
    /// in the future, `exp` that much in the past.
    #[must_use]
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.policy.skew = skew;
        self
    }

    /// How old (by `iat`) a token may be (default 5 minutes; providers send them at once,
    /// and the specification suggests `exp` two minutes after `iat`). Also how long a `jti`
    /// is remembered.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.policy.max_age = max_age;
        self
    }

    /// The configured issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.policy.issuer
    }

    /// Checks `token` as OpenID Connect Back-Channel Logout 1.0 section 2.6 requires, at
    /// time `now`, and records its `jti`. In order: shape, `alg` (allowlist, never `none`),
    /// `typ` (`logout+jwt` when present), key (`kid`, with a refetch for rollover),
    /// signature, `iss`, `aud`, `iat`/`exp`, `events`, `nonce` absent, `sid` and/or `sub`,
    /// `jti`, then replay.
    pub async fn validate(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<LogoutToken, TokenError> {
        let checked = self.policy.check(token, now, "logout+jwt", false).await?;
        let claims = &checked.claims;
        match claims.get("events") {
            Some(Value::Object(events)) => match events.get(BACKCHANNEL_LOGOUT_EVENT) {
                Some(Value::Object(_)) => {}
                _ => return Err(TokenError::MissingLogoutEvent),
            },
            _ => return Err(TokenError::MissingLogoutEvent),
        }
        if claims.contains_key("nonce") {
            return Err(TokenError::NoncePresent);
        }
        let subject = token::optional_str(claims, "sub")?.filter(|s| !s.is_empty());
        let session_id = token::optional_str(claims, "sid")?.filter(|s| !s.is_empty());
        if subject.is_none() && session_id.is_none() {
            return Err(TokenError::NoSubjectOrSid);
        }
        let jti = token::required_str(claims, "jti")?;
        self.policy
            .first_use("oidc-logout", jti, checked.until)
            .await?;
        Ok(LogoutToken {
            issuer: self.policy.issuer.clone(),
            subject: subject.map(str::to_owned),
            session_id: session_id.map(str::to_owned),
            jti: jti.to_owned(),
            issued_at: checked.issued_at,
            expires_at: checked.expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::MemoryReplayGuard;

    #[test]
    fn hmac_cannot_be_allowed() {
        let v =
            LogoutTokenValidator::new("i", "c", Jwks::url("http://x"), MemoryReplayGuard::new());
        assert!(v.clone().with_algorithms(&[Algorithm::HS256]).is_err());
        assert!(v.clone().with_algorithms(&[]).is_err());
        assert!(v.with_algorithms(&[Algorithm::ES256]).is_ok());
    }
}
