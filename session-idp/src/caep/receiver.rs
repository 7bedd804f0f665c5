//! Validating SETs from one configured transmitter.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{SESSION_REVOKED_EVENT, SessionRevoked, Subject};
use crate::ConfigError;
use crate::jwks::Jwks;
use crate::replay::ReplayGuard;
use crate::token::{self, Policy, TokenError};

/// The event a valid SET carried.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaepEvent {
    /// CAEP `session-revoked`.
    SessionRevoked(SessionRevoked),
    /// Any other event type (accepted and acknowledged; the app may ignore it).
    Other {
        /// The event type URI.
        event_type: String,
        /// Its payload.
        payload: Value,
    },
}

/// A SET that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedEvent {
    /// `iss`: the transmitter.
    pub issuer: String,
    /// `jti` (already recorded by the replay guard).
    pub jti: String,
    /// `iat`.
    pub issued_at: OffsetDateTime,
    /// Whom the event is about (`sub_id`, or the event's `subject` from transmitters that
    /// follow earlier CAEP drafts).
    pub subject: Subject,
    /// The event (a `session-revoked` one first, if the SET carries several).
    pub event: CaepEvent,
}

/// Validates SETs from one transmitter (its issuer and keys) addressed to us (audience).
///
/// See the [module docs](super) for an example.
#[derive(Clone)]
pub struct SetValidator {
    policy: Policy,
}

impl fmt::Debug for SetValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.policy.debug("SetValidator", f)
    }
}

impl SetValidator {
    /// A validator for SETs issued by `issuer` to `audience`, checked with `jwks` (the
    /// transmitter's `jwks_uri`, or its keys inline), each `jti` accepted once through
    /// `replay`.
    #[must_use]
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        jwks: Jwks,
        replay: impl ReplayGuard + 'static,
    ) -> Self {
        let algorithms = vec![
            Algorithm::ES256,
            Algorithm::EdDSA,
            Algorithm::RS256,
            Algorithm::PS256,
        ];
        Self {
            policy: Policy::new(
                issuer.into(),
                audience.into(),
                jwks,
                Arc::new(replay),
                algorithms,
                Duration::from_secs(3600),
            ),
        }
    }

    /// The signature algorithms accepted (default ES256, EdDSA, RS256, PS256). An empty
    /// list, or one with an HMAC algorithm, is refused.
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Result<Self, ConfigError> {
        self.policy.set_algorithms(algorithms)?;
        Ok(self)
    }

    /// How far the transmitter's clock may be off ours (default 60 s).
    #[must_use]
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.policy.skew = skew;
        self
    }

    /// How old (by `iat`) a SET may be (default 1 hour: push deliveries are retried); also
    /// how long a `jti` is remembered.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.policy.max_age = max_age;
        self
    }

    /// Checks `set` against RFC 8417 and the configured transmitter at time `now`, and
    /// records its `jti`: `alg` (allowlist, never `none`), `typ` `secevent+jwt` (required),
    /// key and signature, `iss`, `aud`, `iat` (required, within skew and maximum age), `exp`
    /// if present, `jti` (required), `events` (a non-empty object), the subject, no `sub`
    /// contradicting `sub_id`, then replay.
    pub async fn validate(
        &self,
        set: &str,
        now: OffsetDateTime,
    ) -> Result<ReceivedEvent, TokenError> {
        let checked = self.policy.check(set, now, "secevent+jwt", true).await?;
        let (claims, issued_at) = (&checked.claims, checked.issued_at);
        let jti = token::required_str(claims, "jti")?;
        let events = match claims.get("events") {
            Some(Value::Object(events)) if !events.is_empty() => events,
            _ => return Err(TokenError::MissingEvents),
        };
        if events.values().any(|payload| !payload.is_object()) {
            return Err(TokenError::Malformed);
        }
        let (event_type, payload) = events
            .get_key_value(SESSION_REVOKED_EVENT)
            .or_else(|| events.iter().next())
            .ok_or(TokenError::MissingEvents)?;
        let subject = claims
            .get("sub_id")
            .or_else(|| payload.get("subject"))
            .ok_or(TokenError::MissingSubject)?;
        let subject = Subject::from_json(subject).ok_or(TokenError::MissingSubject)?;
        if let Some(sub) = token::optional_str(claims, "sub")? {
            let agrees = matches!(&subject, Subject::IssSub { iss, sub: s } if s == sub && *iss == self.policy.issuer);
            if !agrees {
                return Err(TokenError::SubjectConflict);
            }
        }
        let event = if event_type == SESSION_REVOKED_EVENT {
            CaepEvent::SessionRevoked(session_revoked(subject.clone(), payload, issued_at)?)
        } else {
            CaepEvent::Other {
                event_type: event_type.clone(),
                payload: payload.clone(),
            }
        };
        self.policy
            .first_use("caep-set", jti, checked.until)
            .await?;
        Ok(ReceivedEvent {
            issuer: self.policy.issuer.clone(),
            jti: jti.to_owned(),
            issued_at,
            subject,
            event,
        })
    }
}

/// Reads a `session-revoked` payload; `event_timestamp` defaults to `iat`.
fn session_revoked(
    subject: Subject,
    payload: &Value,
    issued_at: OffsetDateTime,
) -> Result<SessionRevoked, TokenError> {
    let obj = payload.as_object().ok_or(TokenError::Malformed)?;
    let event_timestamp = token::numeric_date(obj, "event_timestamp")?.unwrap_or(issued_at);
    let mut event = SessionRevoked::new(subject, event_timestamp);
    event.initiating_entity = token::optional_str(obj, "initiating_entity")?.map(str::to_owned);
    event.reason_admin = language_map(obj, "reason_admin")?;
    event.reason_user = language_map(obj, "reason_user")?;
    Ok(event)
}

fn language_map(
    obj: &Map<String, Value>,
    name: &str,
) -> Result<BTreeMap<String, String>, TokenError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(lang, text)| match text {
                Value::String(t) => Ok((lang.clone(), t.clone())),
                _ => Err(TokenError::Malformed),
            })
            .collect(),
        Some(_) => Err(TokenError::Malformed),
    }
}
