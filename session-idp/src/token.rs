//! What the signed-token validators ([`LogoutTokenValidator`], [`SetValidator`]) refuse,
//! one variant per reason, and the checks they share.
//!
//! Signatures are checked by `jsonwebtoken`; this module decides *which* algorithm and
//! key may be used before handing a token to it: the header's `alg` must be on the
//! validator's allowlist of asymmetric algorithms (`none` and the HMAC family never are),
//! and the key comes from the issuer's [`Jwks`] (chosen by `kid`).
//!
//! [`LogoutTokenValidator`]: crate::backchannel::LogoutTokenValidator
//! [`SetValidator`]: crate::caep::SetValidator
//!
//! # Example
//!
//! ```
//! use session_idp::token::TokenError;
//!
//! assert!(!TokenError::Replayed.is_server_error());
//! assert_eq!(TokenError::AlgNone.to_string(), "the token is unsigned (alg none)");
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::jwks::{Jwks, JwksError};
use crate::replay::{ReplayGuard, ReplayGuardError};

/// The longest token looked at; anything longer is refused unread.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a logout token or a Security Event Token was refused.
///
/// Every variant but [`JwksUnavailable`](Self::JwksUnavailable) and
/// [`ReplayGuard`](Self::ReplayGuard) is the sender's fault (answer 400); those two are
/// ours ([`is_server_error`](Self::is_server_error)). No variant carries any part of the
/// token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS (three base64url parts with JSON header and claims), too long, an
    /// encrypted token, or a claim of the wrong JSON type.
    #[error("the token is malformed")]
    Malformed,
    /// The header says `alg: none`: an unsigned token.
    #[error("the token is unsigned (alg none)")]
    AlgNone,
    /// The header's `alg` is not on the validator's allowlist (any HMAC algorithm, such as
    /// HS256 keyed with the provider's public key, lands here).
    #[error("the token's algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),
    /// The header's `typ` is present and not the one this kind of token must carry
    /// (`logout+jwt`; `secevent+jwt`).
    #[error("the token's type (typ) is wrong")]
    WrongType,
    /// No key of the issuer's key set matches the token's `kid`, even after a refetch.
    #[error("no key of the issuer matches the token")]
    UnknownKey,
    /// The key named by `kid` is not a key for the token's algorithm.
    #[error("the key named by the token does not fit its algorithm")]
    KeyMismatch,
    /// The signature does not verify with the issuer's key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is wrong")]
    WrongIssuer,
    /// `aud` does not name the configured audience.
    #[error("the token's audience is wrong")]
    WrongAudience,
    /// A required claim is missing (`iss`, `aud`, `iat`, `jti`).
    #[error("the token lacks the {0} claim")]
    MissingClaim(&'static str),
    /// `iat` is later than now plus the allowed clock skew.
    #[error("the token is issued in the future")]
    IssuedInFuture,
    /// `iat` is older than the validator's maximum age (plus skew).
    #[error("the token is too old")]
    TooOld,
    /// `exp` has passed (beyond the clock skew).
    #[error("the token has expired")]
    Expired,
    /// Logout token: `events` is missing, or has no
    /// `http://schemas.openid.net/event/backchannel-logout` member (an object).
    #[error("the token lacks the back-channel logout event")]
    MissingLogoutEvent,
    /// Logout token: it carries a `nonce` (an ID token sent as a logout token).
    #[error("the token carries a nonce")]
    NoncePresent,
    /// Logout token: neither `sid` nor `sub`.
    #[error("the token names neither a session (sid) nor a subject (sub)")]
    NoSubjectOrSid,
    /// SET: `events` is missing, not an object, or empty.
    #[error("the token lacks events")]
    MissingEvents,
    /// SET: no subject (`sub_id`, or the event's `subject`), or one this crate cannot read.
    #[error("the token names no subject")]
    MissingSubject,
    /// SET: a top-level `sub` that contradicts `sub_id`.
    #[error("the token's sub contradicts its sub_id")]
    SubjectConflict,
    /// The token's `jti` was already accepted once.
    #[error("the token was already used (jti replay)")]
    Replayed,
    /// The issuer's key set could not be fetched (the token is not judged).
    #[error("the issuer's keys are unavailable: {0}")]
    JwksUnavailable(String),
    /// The replay guard could not answer (the token is not judged).
    #[error(transparent)]
    ReplayGuard(#[from] ReplayGuardError),
}

impl TokenError {
    /// `true` when the failure is ours (keys unreachable, replay store down), not the
    /// token's: the token was not judged.
    #[must_use]
    pub fn is_server_error(&self) -> bool {
        matches!(self, Self::JwksUnavailable(_) | Self::ReplayGuard(_))
    }
}

impl From<JwksError> for TokenError {
    fn from(e: JwksError) -> Self {
        match e {
            JwksError::UnknownKey => Self::UnknownKey,
            JwksError::KeyMismatch => Self::KeyMismatch,
            JwksError::Unavailable(why) => Self::JwksUnavailable(why),
        }
    }
}

/// A token whose signature verified, with its header's `typ` and its claims.
pub(crate) struct Verified {
    pub(crate) typ: Option<String>,
    pub(crate) claims: Map<String, Value>,
}

/// Checks the header (alg allowlist, never `none`), finds the key, verifies the signature
/// with `jsonwebtoken`. Claims are left to the caller (they judge them against their `now`).
pub(crate) async fn verify(
    token: &str,
    allowed: &[Algorithm],
    jwks: &Jwks,
) -> Result<Verified, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    // Read `alg` ourselves first: jsonwebtoken cannot even parse "none", and the refusal
    // should say what it is.
    let raw: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(TokenError::Malformed)?;
    let alg_name = raw
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::Malformed)?;
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgNone);
    }
    let alg: Algorithm = alg_name
        .parse()
        .map_err(|_| TokenError::AlgorithmNotAllowed(alg_name.to_owned()))?;
    if !allowed.contains(&alg) || alg.family() == AlgorithmFamily::Hmac {
        return Err(TokenError::AlgorithmNotAllowed(alg_name.to_owned()));
    }
    let typ = match raw.get("typ") {
        None => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return Err(TokenError::Malformed),
    };
    let kid = match raw.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(TokenError::Malformed),
    };
    let key = jwks.key_for(kid, alg).await?;

    let mut validation = Validation::new(alg);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
        Ok(data) => Ok(Verified {
            typ,
            claims: data.claims,
        }),
        Err(e) => Err(match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenError::KeyMismatch,
            jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
            | jsonwebtoken::errors::ErrorKind::InvalidEddsaKey
            | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_)
            | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat => TokenError::KeyMismatch,
            _ => TokenError::Malformed,
        }),
    }
}

/// What both validators are configured with, and the checks they run alike.
#[derive(Clone)]
pub(crate) struct Policy {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) jwks: Jwks,
    pub(crate) replay: Arc<dyn ReplayGuard>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) skew: Duration,
    pub(crate) max_age: Duration,
}

/// A token whose signature, `typ`, `iss`, `aud` and times passed.
pub(crate) struct Checked {
    pub(crate) claims: Map<String, Value>,
    pub(crate) issued_at: OffsetDateTime,
    /// `exp`, which the back-channel logout validator reports.
    #[cfg_attr(
        not(feature = "backchannel"),
        expect(dead_code, reason = "read by backchannel")
    )]
    pub(crate) expires_at: Option<OffsetDateTime>,
    /// When the token stops being acceptable anyway: how long its `jti` is remembered.
    pub(crate) until: OffsetDateTime,
}

impl Policy {
    pub(crate) fn new(
        issuer: String,
        audience: String,
        jwks: Jwks,
        replay: Arc<dyn ReplayGuard>,
        algorithms: Vec<Algorithm>,
        max_age: Duration,
    ) -> Self {
        Self {
            issuer,
            audience,
            jwks,
            replay,
            algorithms,
            skew: Duration::from_secs(60),
            max_age,
        }
    }

    pub(crate) fn set_algorithms(
        &mut self,
        algorithms: &[Algorithm],
    ) -> Result<(), crate::ConfigError> {
        check_allowlist(algorithms)?;
        self.algorithms = algorithms.to_vec();
        Ok(())
    }

    /// The `Debug` of a validator holding this policy (no secrets in it).
    pub(crate) fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks", &self.jwks)
            .field("algorithms", &self.algorithms)
            .field("clock_skew", &self.skew)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }

    /// Signature (allowlist, key), `typ` (`expected`; required or only checked when
    /// present), `iss`, `aud`, `iat`/`exp`.
    pub(crate) async fn check(
        &self,
        token: &str,
        now: OffsetDateTime,
        expected_typ: &str,
        typ_required: bool,
    ) -> Result<Checked, TokenError> {
        let verified = verify(token.trim(), &self.algorithms, &self.jwks).await?;
        match &verified.typ {
            Some(typ) if typ_is(typ, expected_typ) => {}
            None if !typ_required => {}
            _ => return Err(TokenError::WrongType),
        }
        let claims = verified.claims;
        check_issuer(&claims, &self.issuer)?;
        check_audience(&claims, &self.audience)?;
        let (issued_at, expires_at, until) =
            check_times(&claims, now, to_time(self.skew), to_time(self.max_age))?;
        Ok(Checked {
            claims,
            issued_at,
            expires_at,
            until,
        })
    }

    /// Records `jti` (namespaced by `kind` and the issuer); a second use is
    /// [`TokenError::Replayed`].
    pub(crate) async fn first_use(
        &self,
        kind: &str,
        jti: &str,
        until: OffsetDateTime,
    ) -> Result<(), TokenError> {
        let key = format!("{kind}:{}:{jti}", self.issuer);
        if self.replay.first_use(&key, until).await? {
            Ok(())
        } else {
            Err(TokenError::Replayed)
        }
    }
}

/// Whether a `typ` header value names `expected` (`logout+jwt`), compared as media types
/// are (case-insensitive, an `application/` prefix allowed).
pub(crate) fn typ_is(typ: &str, expected: &str) -> bool {
    let typ = typ.trim();
    let bare = if typ.len() > 12 && typ[..12].eq_ignore_ascii_case("application/") {
        &typ[12..]
    } else {
        typ
    };
    bare.eq_ignore_ascii_case(expected)
}

/// A required string claim.
pub(crate) fn required_str<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Err(TokenError::MissingClaim(name)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(TokenError::MissingClaim(name)),
        Some(_) => Err(TokenError::Malformed),
    }
}

/// An optional string claim.
pub(crate) fn optional_str<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::Malformed),
    }
}

/// A NumericDate claim (seconds; a fraction is dropped).
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<OffsetDateTime>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let secs = n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .ok_or(TokenError::Malformed)?;
            OffsetDateTime::from_unix_timestamp(secs)
                .map(Some)
                .map_err(|_| TokenError::Malformed)
        }
        Some(_) => Err(TokenError::Malformed),
    }
}

/// `iss` must be exactly `issuer`.
pub(crate) fn check_issuer(claims: &Map<String, Value>, issuer: &str) -> Result<(), TokenError> {
    if required_str(claims, "iss")? != issuer {
        return Err(TokenError::WrongIssuer);
    }
    Ok(())
}

/// `aud` (a string or an array of strings) must name `audience`.
pub(crate) fn check_audience(
    claims: &Map<String, Value>,
    audience: &str,
) -> Result<(), TokenError> {
    match claims.get("aud") {
        None | Some(Value::Null) => Err(TokenError::MissingClaim("aud")),
        Some(Value::String(a)) if a == audience => Ok(()),
        Some(Value::String(_)) => Err(TokenError::WrongAudience),
        Some(Value::Array(list)) => {
            if list.iter().any(|a| !a.is_string()) {
                return Err(TokenError::Malformed);
            }
            if list.iter().any(|a| a.as_str() == Some(audience)) {
                Ok(())
            } else {
                Err(TokenError::WrongAudience)
            }
        }
        Some(_) => Err(TokenError::Malformed),
    }
}

/// Time rules shared by both token kinds: `iat` required, not later than `now + skew`, not
/// older than `max_age + skew`; `exp`, when present, not earlier than `now - skew`.
/// Returns `(iat, exp, until)`: `until` is when the token stops being acceptable anyway
/// (how long its `jti` must be remembered).
pub(crate) fn check_times(
    claims: &Map<String, Value>,
    now: OffsetDateTime,
    skew: time::Duration,
    max_age: time::Duration,
) -> Result<(OffsetDateTime, Option<OffsetDateTime>, OffsetDateTime), TokenError> {
    let iat = numeric_date(claims, "iat")?.ok_or(TokenError::MissingClaim("iat"))?;
    let exp = numeric_date(claims, "exp")?;
    if iat > now + skew {
        return Err(TokenError::IssuedInFuture);
    }
    if let Some(exp) = exp
        && exp + skew < now
    {
        return Err(TokenError::Expired);
    }
    if iat + max_age + skew < now {
        return Err(TokenError::TooOld);
    }
    let mut until = iat + max_age + skew;
    if let Some(exp) = exp {
        until = until.min(exp + skew);
    }
    Ok((iat, exp, until))
}

/// Converts a `std` duration to a `time` one (saturating).
pub(crate) fn to_time(d: std::time::Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// Refuses an empty allowlist or one with an HMAC algorithm.
pub(crate) fn check_allowlist(algorithms: &[Algorithm]) -> Result<(), crate::ConfigError> {
    if algorithms.is_empty() {
        return Err(crate::ConfigError::new("the algorithm allowlist is empty"));
    }
    if algorithms
        .iter()
        .any(|a| a.family() == AlgorithmFamily::Hmac)
    {
        return Err(crate::ConfigError::new(
            "HMAC algorithms cannot be allowed: a provider's tokens are checked with its public keys",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn typ_comparison() {
        assert!(typ_is("logout+jwt", "logout+jwt"));
        assert!(typ_is("application/Logout+JWT", "logout+jwt"));
        assert!(!typ_is("JWT", "logout+jwt"));
        assert!(!typ_is("application/", "logout+jwt"));
    }

    #[test]
    fn audience_forms() {
        assert!(check_audience(&map(json!({"aud": "a"})), "a").is_ok());
        assert!(check_audience(&map(json!({"aud": ["b", "a"]})), "a").is_ok());
        assert!(matches!(
            check_audience(&map(json!({"aud": ["b"]})), "a"),
            Err(TokenError::WrongAudience)
        ));
        assert!(matches!(
            check_audience(&map(json!({"aud": 1})), "a"),
            Err(TokenError::Malformed)
        ));
        assert!(matches!(
            check_audience(&map(json!({})), "a"),
            Err(TokenError::MissingClaim("aud"))
        ));
    }

    #[test]
    fn time_rules() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let skew = time::Duration::seconds(60);
        let age = time::Duration::seconds(300);
        let t = |v| check_times(&map(v), now, skew, age);
        let (_, _, until) = t(json!({"iat": 1_000_000, "exp": 1_000_120})).unwrap();
        assert_eq!(until.unix_timestamp(), 1_000_180);
        let (_, _, until) = t(json!({"iat": 1_000_000})).unwrap();
        assert_eq!(until.unix_timestamp(), 1_000_360);
        assert!(t(json!({"iat": 1_000_060})).is_ok());
        assert!(matches!(
            t(json!({"iat": 1_000_061})),
            Err(TokenError::IssuedInFuture)
        ));
        assert!(matches!(
            t(json!({"iat": 999_000, "exp": 999_939})),
            Err(TokenError::Expired)
        ));
        assert!(matches!(
            t(json!({"iat": 999_639})),
            Err(TokenError::TooOld)
        ));
        assert!(matches!(t(json!({})), Err(TokenError::MissingClaim("iat"))));
        assert!(matches!(t(json!({"iat": "1"})), Err(TokenError::Malformed)));
    }
}
