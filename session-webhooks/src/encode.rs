//! What the worker sends for an event: the [`Encoder`] trait and the default JSON body.
//!
//! The worker asks its encoder once per event for a content type, a body and any extra
//! headers, and keeps the answer for every retry of that event (so a body that carries its
//! own id or time, as a Security Event Token does, is the same on each attempt). It then
//! adds `Session-Signature` (over that body) and `Webhook-Id` itself.
//!
//! # Example: an encoder of your own
//!
//! A receiver that wants only revocations, as a different document, with a header of its
//! own (a CAEP Security Event Token encoder, `application/secevent+jwt` after RFC 8935,
//! has this shape):
//!
//! ```
//! use session_core::{EventType, SessionEvent};
//! use session_webhooks::encode::{EncodeError, Encoded, Encoder};
//! use http::{HeaderName, HeaderValue};
//!
//! #[derive(Debug)]
//! struct RevocationsOnly;
//!
//! impl Encoder for RevocationsOnly {
//!     fn encode(&self, event: &SessionEvent) -> Result<Option<Encoded>, EncodeError> {
//!         if event.event_type != EventType::Revoked {
//!             return Ok(None); // skipped: counts as delivered
//!         }
//!         let body = serde_json::to_vec(&serde_json::json!({
//!             "sub": event.user_id.as_str(),
//!             "session": event.session_id.to_string(),
//!         }))
//!         .map_err(EncodeError::new)?;
//!         Ok(Some(
//!             Encoded::new(HeaderValue::from_static("application/x-revocation+json"), body)
//!                 .with_header(
//!                     HeaderName::from_static("x-tenant"),
//!                     HeaderValue::from_static("acme"),
//!                 ),
//!         ))
//!     }
//! }
//! # let _ = RevocationsOnly;
//! ```

use std::error::Error as StdError;
use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use session_core::SessionEvent;

/// Turns an event into the request the worker sends (its body, content type and extra
/// headers), or skips it.
pub trait Encoder: Send + Sync + fmt::Debug + 'static {
    /// The request for `event`; `Ok(None)` skips the event (the worker counts it as
    /// delivered and moves on).
    ///
    /// # Errors
    ///
    /// An error is a failed attempt: the worker logs it and tries again with backoff, as
    /// for a receiver that refused the delivery.
    fn encode(&self, event: &SessionEvent) -> Result<Option<Encoded>, EncodeError>;
}

/// The default encoder: the event's JSON (the contract's fields), `application/json`.
///
/// ```
/// use session_core::{Actor, EventId, EventType, Principal, SessionEvent, SessionId};
/// use session_webhooks::encode::{Encoder, JsonEncoder};
///
/// let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
/// let event = SessionEvent::about(
///     EventId::new("00000000000000000001"),
///     EventType::Created,
///     SessionId::random(),
///     &Principal::user("alice"),
///     None,
///     Actor::User,
///     at,
/// );
/// let encoded = JsonEncoder.encode(&event).unwrap().unwrap();
/// assert_eq!(encoded.content_type, "application/json");
/// assert_eq!(encoded.body, serde_json::to_vec(&event).unwrap());
/// assert!(encoded.headers.is_empty());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonEncoder;

impl Encoder for JsonEncoder {
    fn encode(&self, event: &SessionEvent) -> Result<Option<Encoded>, EncodeError> {
        let body = serde_json::to_vec(event).map_err(EncodeError::new)?;
        Ok(Some(Encoded::new(
            HeaderValue::from_static("application/json"),
            body,
        )))
    }
}

/// One event's request: content type, body, extra headers.
///
/// The worker sets `Content-Type`, `Session-Signature` and `Webhook-Id` itself: an extra
/// header of one of those names is replaced. `Debug` shows header names and the body's
/// length, never a header's value (one may be a credential).
#[derive(Clone)]
#[non_exhaustive]
pub struct Encoded {
    /// The `Content-Type`.
    pub content_type: HeaderValue,
    /// The body, signed as is.
    pub body: Bytes,
    /// Headers to send besides the worker's own.
    pub headers: HeaderMap,
}

impl Encoded {
    /// A request with this content type and body, and no extra header.
    #[must_use]
    pub fn new(content_type: HeaderValue, body: impl Into<Bytes>) -> Self {
        Self {
            content_type,
            body: body.into(),
            headers: HeaderMap::new(),
        }
    }

    /// Adds an extra header (appended: a name may repeat).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}

impl fmt::Debug for Encoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoded")
            .field("content_type", &self.content_type)
            .field("body_len", &self.body.len())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// An encoder's failure, wrapping its cause.
#[derive(Debug)]
pub struct EncodeError(Box<dyn StdError + Send + Sync>);

impl EncodeError {
    /// Wraps a cause.
    pub fn new(cause: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self(cause.into())
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "encoding the event failed: {}", self.0)
    }
}

impl StdError for EncodeError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_header_value() {
        let encoded = Encoded::new(HeaderValue::from_static("application/json"), "{}").with_header(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer hunter2"),
        );
        let debug = format!("{encoded:?}");
        assert!(debug.contains("authorization"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn errors_keep_their_cause() {
        let err = EncodeError::new("no signing key");
        assert_eq!(err.to_string(), "encoding the event failed: no signing key");
        assert!(err.source().is_some());
    }
}
