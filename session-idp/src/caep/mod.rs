//! CAEP `session-revoked` events as Security Event Tokens (RFC 8417), sent and received,
//! delivered by push (RFC 8935).
//!
//! - Sending: a [`SetSigner`] (the transmitter's issuer and its ES256 or EdDSA private key)
//!   turns a [`SessionRevoked`] event about a [`Subject`] into a signed SET
//!   (`typ: secevent+jwt`; `iss`, `aud`, `iat`, `jti`, `sub_id`, `events`); [`push_request`]
//!   builds the RFC 8935 delivery and [`PushOutcome::from_response`] reads the receiver's
//!   answer. [`SetSigner::jwks`] is the public key set to publish for receivers.
//! - Receiving: [`parse_push_request`] takes the SET out of a push, a [`SetValidator`]
//!   configured for one transmitter (issuer, audience, keys) checks it, each `jti` once
//!   through a [`ReplayGuard`](crate::replay::ReplayGuard), and yields a [`ReceivedEvent`];
//!   [`push_accepted`] / [`push_error`] are the answers.
//! - A transmitter that never loses an event (feature `caep-transmitter`): a [`SetEncoder`]
//!   on a `session_webhooks::WebhookWorker` pushes a SET for each revocation in the
//!   store's event log, with the worker's retries, per-user order, saved cursor and lease.
//!
//! # Example
//!
//! ```
//! use session_idp::caep::{SetSigner, SetValidator, SessionRevoked, Subject, CaepEvent};
//! use session_idp::jwks::Jwks;
//! use session_idp::replay::MemoryReplayGuard;
//! use time::OffsetDateTime;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // A test key (`openssl genpkey -algorithm ED25519`); load yours from a secret store.
//! let pem = "-----BEGIN PRIVATE KEY-----
//! MC4CAQAwBQYDK2VwBCIEIE/ZAUwwqUIxg7iOsf/qsvaw5oemBYzPtMCnOVP6i+th
//! -----END PRIVATE KEY-----";
//! let signer = SetSigner::eddsa_pem("https://app.example", pem.as_bytes()).unwrap();
//! let now = OffsetDateTime::now_utc();
//! let event = SessionRevoked::new(Subject::iss_sub("https://op.example", "alice"), now);
//! let set = signer.session_revoked(&event, "https://receiver.example", now).unwrap();
//!
//! let receiver = SetValidator::new(
//!     "https://app.example",
//!     "https://receiver.example",
//!     Jwks::inline(signer.jwks()),
//!     MemoryReplayGuard::new(),
//! );
//! let received = receiver.validate(&set, now).await.unwrap();
//! assert_eq!(received.subject, Subject::iss_sub("https://op.example", "alice"));
//! assert!(matches!(received.event, CaepEvent::SessionRevoked(_)));
//! // The same SET again is a replay.
//! assert!(receiver.validate(&set, now).await.is_err());
//! # });
//! ```

mod push;
mod receiver;
mod signer;
mod subject;
#[cfg(feature = "caep-transmitter")]
mod transmitter;

pub use push::{
    PushError, PushOutcome, SECEVENT_CONTENT_TYPE, parse_push_request, push_accepted, push_error,
    push_request,
};
pub use receiver::{CaepEvent, ReceivedEvent, SetValidator};
pub use signer::{SESSION_REVOKED_EVENT, SessionRevoked, SetSigner};
pub use subject::Subject;
#[cfg(feature = "caep-transmitter")]
pub use transmitter::SetEncoder;

/// Why a SET could not be made or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaepError {
    /// The signing key is not a PEM private key of the kind named (ES256: P-256 in PKCS#8;
    /// EdDSA: Ed25519 in PKCS#8).
    #[error("the signing key is unusable")]
    BadKey,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
    /// The push endpoint or a header value is invalid.
    #[error("invalid push request: {0}")]
    InvalidRequest(String),
    /// The push could not be delivered (connection, timeout).
    #[error("push delivery failed: {0}")]
    Delivery(String),
}
