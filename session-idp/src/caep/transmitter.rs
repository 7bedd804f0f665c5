//! The event log's revocations as SETs, for the webhook worker.

use std::sync::Arc;

use http::HeaderValue;
use http::header::ACCEPT;
use session_core::{Actor, EventType, SessionEvent, SessionKind};
use session_webhooks::encode::{EncodeError, Encoded, Encoder};
use time::OffsetDateTime;

use super::{SECEVENT_CONTENT_TYPE, SessionRevoked, SetSigner, Subject};

/// A [`session_webhooks`] encoder that turns each revocation of a user session in the
/// store's event log into a CAEP `session-revoked` SET about
/// `{"format": "iss_sub", "iss": <the signer's issuer>, "sub": <the user id>}`, pushed
/// as RFC 8935 asks (`Content-Type: application/secevent+jwt`, `Accept: application/json`).
///
/// Skipped: every other event, agent sessions (an agent's end is no news about the user),
/// and revocations an identity provider asked for (actor `idp`: the provider already
/// knows, and two apps that transmit to each other would otherwise echo forever).
///
/// The worker encodes an event once and sends the same SET on every retry, so a receiver
/// that saw it before refuses the repeat as a replay (`400 invalid_request` after RFC
/// 8935) and nothing is done twice. Any answer but a 2xx is retried up to the worker's
/// horizon, a refusal too: a receiver that refuses a SET is usually misconfigured
/// (audience, keys), and once it is fixed the events still arrive, in order. Since the
/// `iat` is fixed at the first attempt and receivers refuse old SETs (this crate's
/// [`SetValidator`](super::SetValidator) after an hour by default), give the worker a
/// horizon no longer than that.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{Actor, EventId, EventType, Principal, RevocationReason, SessionEvent, SessionId};
/// use session_idp::caep::{SetEncoder, SetSigner, SetValidator, Subject};
/// use session_idp::jwks::Jwks;
/// use session_idp::replay::MemoryReplayGuard;
/// use session_webhooks::encode::Encoder;
/// use session_webhooks::WebhookWorker;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let pem = "-----BEGIN PRIVATE KEY-----
/// MC4CAQAwBQYDK2VwBCIEIE/ZAUwwqUIxg7iOsf/qsvaw5oemBYzPtMCnOVP6i+th
/// -----END PRIVATE KEY-----";
/// let signer = SetSigner::eddsa_pem("https://app.example", pem.as_bytes()).unwrap();
/// let encoder = SetEncoder::new(signer.clone(), "https://receiver.example");
///
/// let now = time::OffsetDateTime::now_utc();
/// let mut signed_out = SessionEvent::about(
///     EventId::new("00000000000000000002"),
///     EventType::Revoked,
///     SessionId::random(),
///     &Principal::user("alice"),
///     Some(RevocationReason::SignedOut),
///     Actor::User,
///     now,
/// );
/// let push = encoder.encode(&signed_out).unwrap().expect("a SET");
/// assert_eq!(push.content_type, "application/secevent+jwt");
/// let set = std::str::from_utf8(&push.body).unwrap();
/// let receiver = SetValidator::new(
///     "https://app.example",
///     "https://receiver.example",
///     Jwks::inline(signer.jwks()),
///     MemoryReplayGuard::new(),
/// );
/// let received = receiver.validate(set, now).await.unwrap();
/// assert_eq!(received.subject, Subject::iss_sub("https://app.example", "alice"));
///
/// // What the provider itself asked for is not sent back.
/// signed_out.actor = Actor::Idp;
/// assert!(encoder.encode(&signed_out).unwrap().is_none());
///
/// // On a worker of its own: the SET is signed, so the request needs no webhook secret.
/// let store = Arc::new(session_core::MemoryStore::new());
/// let worker = WebhookWorker::unsigned(store, "https://receiver.example/caep")
///     .unwrap()
///     .with_name("caep")
///     .unwrap()
///     .with_horizon(std::time::Duration::from_secs(3600))
///     .unwrap()
///     .with_encoder(encoder);
/// # drop(worker);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct SetEncoder {
    signer: Arc<SetSigner>,
    audience: String,
}

impl SetEncoder {
    /// SETs signed by `signer` (whose issuer is theirs and the subjects'), for `audience`
    /// (the receiver's, often its push URL).
    #[must_use]
    pub fn new(signer: SetSigner, audience: impl Into<String>) -> Self {
        Self {
            signer: Arc::new(signer),
            audience: audience.into(),
        }
    }

    /// Whether `event` is sent.
    fn sends(event: &SessionEvent) -> bool {
        event.event_type == EventType::Revoked
            && event.session_kind == SessionKind::User
            && event.actor != Actor::Idp
    }
}

impl Encoder for SetEncoder {
    fn encode(&self, event: &SessionEvent) -> Result<Option<Encoded>, EncodeError> {
        if !Self::sends(event) {
            return Ok(None);
        }
        let subject = Subject::iss_sub(self.signer.issuer(), event.user_id.as_str());
        let revoked = SessionRevoked::new(subject, event.occurred_at).with_initiating_entity(
            match event.actor {
                Actor::Admin => "admin",
                Actor::User | Actor::Agent => "user",
                Actor::System | Actor::Idp => "system",
            },
        );
        let set = self
            .signer
            .session_revoked(&revoked, &self.audience, OffsetDateTime::now_utc())
            .map_err(EncodeError::new)?;
        Ok(Some(
            Encoded::new(HeaderValue::from_static(SECEVENT_CONTENT_TYPE), set)
                .with_header(ACCEPT, HeaderValue::from_static("application/json")),
        ))
    }
}
