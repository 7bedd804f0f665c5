//! CAEP `session-revoked` events (Security Event Tokens, RFC 8935 push), both ways:
//!
//! - **Receiving** (`POST /caep/events`): SETs from one configured transmitter
//!   (`CAEP_TRANSMITTER_ISSUER`, `CAEP_TRANSMITTER_JWKS_URL`, `CAEP_AUDIENCE`) are checked
//!   by `session-idp` (signature, issuer, audience, age, each `jti` once through the
//!   session store); a `session-revoked` event about a user revokes that user's sessions
//!   made before the event's time (not their agents), reason `idp_logout`, actor `idp`.
//! - **Sending**: with `CAEP_RECEIVER_URL` and `CAEP_SIGNING_KEY`, every revocation this
//!   node makes (but those the identity provider asked for, which it already knows) is
//!   pushed to the receiver as a signed `session-revoked` SET about
//!   `{"format": "iss_sub", "iss": PUBLIC_URL, "sub": USER}`.
//!
//! The sender is a webhook worker with `session-idp`'s `SetEncoder`: it follows the store's
//! event log as the webhooks do (every node runs one, the lease holder sends; retries with
//! backoff; a user's events in order; the cursor saved in the store, so a receiver down or
//! a node restarted loses nothing). It starts at the beginning of the log the first time.

use std::sync::Arc;
use std::time::Duration;

use session_core::http::Method;
use session_core::{Actor, Reply, RevocationReason, SessionFilter, SessionKind, UserId};
use session_idp::caep::{
    CaepEvent, SetEncoder, SetSigner, SetValidator, Subject, parse_push_request, push_accepted,
    push_error,
};
use session_idp::jwks::Jwks;
use session_idp::replay::replay_guard_fn;
use session_selfservice::{Access, Call, Route, RouteTable};
use session_webhooks::{WebhookWorker, WorkerHandle};
use time::OffsetDateTime;

use crate::Demo;

/// The receiving side's settings: whose SETs to accept.
#[derive(Clone, Debug)]
pub struct CaepReceiverSettings {
    /// `CAEP_TRANSMITTER_ISSUER`: the transmitter's `iss`.
    pub issuer: String,
    /// `CAEP_TRANSMITTER_JWKS_URL`: where its public keys are.
    pub jwks_url: String,
    /// `CAEP_AUDIENCE`: the `aud` SETs to this app carry.
    pub audience: String,
}

/// The sending side's settings. `Debug` leaves the key out.
#[derive(Clone)]
pub struct CaepSenderSettings {
    /// `CAEP_RECEIVER_URL`: the receiver's push endpoint.
    pub receiver_url: String,
    /// `CAEP_RECEIVER_AUDIENCE`: the `aud` of the SETs (default: the receiver URL).
    pub audience: String,
    /// The SETs' issuer: `PUBLIC_URL`.
    pub issuer: String,
    /// `CAEP_SIGNING_KEY`: the signer, from an Ed25519 or P-256 PKCS#8 PEM key.
    pub signer: Arc<SetSigner>,
}

impl std::fmt::Debug for CaepSenderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaepSenderSettings")
            .field("receiver_url", &self.receiver_url)
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Both sides, each when configured.
#[derive(Clone, Debug, Default)]
pub struct CaepSettings {
    /// Receiving SETs.
    pub receiver: Option<CaepReceiverSettings>,
    /// Sending SETs.
    pub sender: Option<CaepSenderSettings>,
}

impl CaepSettings {
    /// Reads the `CAEP_*` variables through `var` (blank counts as unset). Each side is all
    /// of its variables or none; the sender also needs `public_url` (its issuer).
    ///
    /// ```
    /// use example_support::caep::CaepSettings;
    ///
    /// let none = CaepSettings::from_lookup(&|_: &str| None, None).unwrap();
    /// assert!(none.receiver.is_none() && none.sender.is_none());
    /// let err = CaepSettings::from_lookup(
    ///     &|name: &str| (name == "CAEP_AUDIENCE").then(|| "https://app.example".to_owned()),
    ///     None,
    /// )
    /// .unwrap_err();
    /// assert!(err.starts_with("CAEP_TRANSMITTER_ISSUER"), "{err}");
    /// ```
    ///
    /// # Errors
    ///
    /// One line naming the variable that is missing or unusable.
    pub fn from_lookup(
        var: &impl Fn(&str) -> Option<String>,
        public_url: Option<&str>,
    ) -> Result<Self, String> {
        let receiver = match all_or_none(
            var,
            &[
                "CAEP_TRANSMITTER_ISSUER",
                "CAEP_TRANSMITTER_JWKS_URL",
                "CAEP_AUDIENCE",
            ],
        )? {
            None => None,
            Some(values) => {
                let [issuer, jwks_url, audience]: [String; 3] = values
                    .try_into()
                    .map_err(|_| "CAEP_*: internal".to_owned())?;
                if !(jwks_url.starts_with("https://") || jwks_url.starts_with("http://")) {
                    return Err(format!(
                        "CAEP_TRANSMITTER_JWKS_URL={jwks_url:?}: an http(s) URL"
                    ));
                }
                Some(CaepReceiverSettings {
                    issuer,
                    jwks_url,
                    audience,
                })
            }
        };
        let sender = match all_or_none(var, &["CAEP_RECEIVER_URL", "CAEP_SIGNING_KEY"])? {
            None => None,
            Some(values) => {
                let [receiver_url, key]: [String; 2] = values
                    .try_into()
                    .map_err(|_| "CAEP_*: internal".to_owned())?;
                if !(receiver_url.starts_with("https://") || receiver_url.starts_with("http://")) {
                    return Err(format!(
                        "CAEP_RECEIVER_URL={receiver_url:?}: an http(s) URL"
                    ));
                }
                let issuer = public_url
                    .ok_or("PUBLIC_URL: required with CAEP_RECEIVER_URL (the SETs' issuer)")?
                    .to_owned();
                // The key may come with its line breaks escaped (one-line variables).
                let pem = key.replace("\\n", "\n");
                let signer = SetSigner::eddsa_pem(&issuer, pem.as_bytes())
                    .or_else(|_| SetSigner::es256_pem(&issuer, pem.as_bytes()))
                    .map_err(|_| {
                        "CAEP_SIGNING_KEY: an Ed25519 or P-256 private key, PKCS#8 PEM".to_owned()
                    })?;
                Some(CaepSenderSettings {
                    audience: var("CAEP_RECEIVER_AUDIENCE").unwrap_or_else(|| receiver_url.clone()),
                    receiver_url,
                    issuer,
                    signer: Arc::new(signer),
                })
            }
        };
        Ok(Self { receiver, sender })
    }
}

/// The values of `names`, all set, or `None` when none is; a partial set names the first
/// missing one.
fn all_or_none(
    var: &impl Fn(&str) -> Option<String>,
    names: &[&str],
) -> Result<Option<Vec<String>>, String> {
    let values: Vec<Option<String>> = names
        .iter()
        .map(|n| var(n).map(|v| v.trim().to_owned()))
        .collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    match values.iter().position(Option::is_none) {
        Some(missing) => Err(format!(
            "{}: required with {} (set all of {}, or none)",
            names[missing],
            names
                .iter()
                .zip(&values)
                .filter(|(_, v)| v.is_some())
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            names.join(", ")
        )),
        None => Ok(Some(values.into_iter().flatten().collect())),
    }
}

/// `POST /caep/events`, when a transmitter is configured.
pub(crate) fn routes(demo: &Demo) -> RouteTable {
    let table = RouteTable::new(demo.gate.clone());
    let Some(receiver) = &demo.settings.caep.receiver else {
        return table;
    };
    let store = demo.gate.manager().store().clone();
    let replay = replay_guard_fn(move |key: String, until: OffsetDateTime| {
        let store = store.clone();
        async move { store.first_use(&key, until).await }
    });
    let validator = SetValidator::new(
        &receiver.issuer,
        &receiver.audience,
        Jwks::url(&receiver.jwks_url),
        replay,
    );
    let demo = demo.clone();
    table.route(
        Route::new(
            Method::POST,
            "/caep/events",
            Access::Public,
            "caep_events",
            move |call: Call| {
                let (demo, validator) = (demo.clone(), validator.clone());
                async move { receive(&demo, &validator, &call).await }
            },
        )
        .documented(crate::idp::openapi::caep_events_op),
    )
}

/// One push: the SET checked, then a `session-revoked` about a user acted on.
async fn receive(demo: &Demo, validator: &SetValidator, call: &Call) -> Reply {
    let content_type = crate::idp::content_type(call);
    let set = match parse_push_request(content_type, &call.body) {
        Ok(set) => set,
        Err(e) => return crate::idp::from_http(push_error(&e)),
    };
    let received = match validator.validate(set, OffsetDateTime::now_utc()).await {
        Ok(received) => received,
        Err(e) => {
            tracing::info!(error = %e, "CAEP event refused");
            return crate::idp::from_http(push_error(&e));
        }
    };
    let CaepEvent::SessionRevoked(revoked) = received.event else {
        // Acknowledged, not acted on: RFC 8935 asks receivers to accept what they ignore.
        return crate::idp::from_http(push_accepted());
    };
    let user = match &received.subject {
        Subject::IssSub { sub, .. } => sub.clone(),
        Subject::Opaque { id } => id.clone(),
        _ => return crate::idp::from_http(push_accepted()),
    };
    // The sessions that existed when the transmitter revoked: a SET that comes late (a
    // retry, a receiver that was down) does not end a sign-in made since. The timestamp
    // has whole seconds, so the bound is the next one.
    let filter = SessionFilter {
        created_before: Some(revoked.event_timestamp + Duration::from_secs(1)),
        kind: Some(SessionKind::User),
        ..SessionFilter::default()
    };
    match demo
        .gate
        .manager()
        .revoke_user_matching(
            &UserId::from(user.as_str()),
            &filter,
            RevocationReason::IdpLogout,
            Actor::Idp,
        )
        .await
    {
        Ok(n) => {
            tracing::info!(user = %user, revoked = n, "CAEP session-revoked");
            crate::idp::from_http(push_accepted())
        }
        Err(e) => demo.gate.error_reply(&e),
    }
}

/// Starts the sender, when configured: a webhook worker (named `caep`, so that its cursor
/// and lease are its own) whose encoder turns each revocation in the log into a SET.
pub(crate) fn spawn_sender(demo: &Demo) -> Result<Option<WorkerHandle>, String> {
    let Some(sender) = &demo.settings.caep.sender else {
        return Ok(None);
    };
    let manager = demo.gate.manager();
    let encoder = SetEncoder::new((*sender.signer).clone(), &sender.audience);
    let worker = WebhookWorker::unsigned(manager.store().clone(), &sender.receiver_url)
        .and_then(|w| w.with_name("caep"))
        // A SET's `iat` is fixed at its first attempt, and receivers refuse SETs older
        // than an hour: retrying longer would only be refused.
        .and_then(|w| w.with_horizon(Duration::from_secs(3600)))
        .map_err(|e| format!("CAEP_RECEIVER_URL: {e}"))?
        .with_encoder(encoder)
        .with_wakeups(manager.subscribe());
    worker
        .spawn()
        .map(Some)
        .map_err(|e| format!("CAEP_RECEIVER_URL: {e}"))
}
