//! The `Session-Signature` header: signing (the worker) and checking (the receiver).
//!
//! A delivery carries `Session-Signature: t=UNIX_SECONDS,v1=HEX`, where `HEX` is the
//! lowercase hex HMAC-SHA256, keyed with the webhook secret, of `UNIX_SECONDS + "." + body`.
//! While a secret is being rotated the header carries one `v1=` per secret, and a receiver
//! that knows any one of them accepts the delivery. The timestamp is the time of sending
//! (each retry is signed anew), so a receiver refuses replays of old deliveries with a
//! tolerance of a few minutes ([`DEFAULT_TOLERANCE`]).
//!
//! # Example: an axum receiver
//!
//! A handler that takes the headers and the raw body, checks the signature, and answers
//! 401 or 204 (and drops a delivery whose `Webhook-Id` it has seen, since delivery is at
//! least once):
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, body::Body, http::{HeaderMap, Request, StatusCode}, routing::post};
//! use bytes::Bytes;
//! use session_webhooks::signature::{
//!     self, DEFAULT_TOLERANCE, SIGNATURE_HEADER, WEBHOOK_ID_HEADER, verify_signature,
//! };
//! use tower::ServiceExt as _;
//!
//! const SECRETS: &[&str] = &["whsec_test_secret"];
//!
//! async fn receive(headers: HeaderMap, body: Bytes) -> StatusCode {
//!     let Some(header) = headers.get(SIGNATURE_HEADER) else {
//!         return StatusCode::UNAUTHORIZED;
//!     };
//!     if verify_signature(SECRETS, header, &body, signature::unix_now(), DEFAULT_TOLERANCE)
//!         .is_err()
//!     {
//!         return StatusCode::UNAUTHORIZED;
//!     }
//!     let _id = headers.get(WEBHOOK_ID_HEADER); // drop duplicates by this id
//!     // … act on the event (`serde_json::from_slice(&body)`) …
//!     StatusCode::NO_CONTENT
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new().route("/webhooks", post(receive));
//!
//! // What the worker sends:
//! let body = r#"{"id":"00000000000000000001","type":"session.revoked"}"#;
//! let request = |signature: String, body: &'static str| {
//!     Request::post("/webhooks")
//!         .header("content-type", "application/json")
//!         .header(SIGNATURE_HEADER, signature)
//!         .header(WEBHOOK_ID_HEADER, "00000000000000000001")
//!         .body(Body::from(body))
//!         .unwrap()
//! };
//! let signed = signature::sign(SECRETS, signature::unix_now(), body.as_bytes());
//! let response = app.clone().oneshot(request(signed.clone(), body)).await.unwrap();
//! assert_eq!(response.status(), StatusCode::NO_CONTENT);
//!
//! // A changed body, a wrong secret, a stale timestamp: 401.
//! let changed = r#"{"id":"00000000000000000001","type":"session.created"}"#;
//! let response = app.clone().oneshot(request(signed, changed)).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! let forged = signature::sign(&["not-the-secret"], signature::unix_now(), body.as_bytes());
//! let response = app.clone().oneshot(request(forged, body)).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! let stale = signature::sign(SECRETS, signature::unix_now() - 3_600, body.as_bytes());
//! let response = app.oneshot(request(stale, body)).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```
//!
//! # Test vectors
//!
//! With the secret `whsec_test_secret`, the time `1700000000` and the body
//! `{"id":"00000000000000000001","type":"session.revoked"}` (those bytes exactly, no
//! trailing newline), the header is
//!
//! ```text
//! t=1700000000,v1=520ba5b03932117621a4d4e1b5716d42a410cb52ebc388006e66039836d84982
//! ```
//!
//! and with the secrets `whsec_test_secret` and `whsec_new_secret` (a rotation), it is
//!
//! ```text
//! t=1700000000,v1=520ba5b03932117621a4d4e1b5716d42a410cb52ebc388006e66039836d84982,v1=c8a2da3631809b058121307261ee85ff03b1f3fcf8c61c480c7c59463b1f22a4
//! ```
//!
//! ```
//! use std::time::Duration;
//! use session_webhooks::signature::{sign, verify_signature};
//!
//! let body = br#"{"id":"00000000000000000001","type":"session.revoked"}"#;
//! let one = "t=1700000000,v1=520ba5b03932117621a4d4e1b5716d42a410cb52ebc388006e66039836d84982";
//! assert_eq!(sign(&["whsec_test_secret"], 1_700_000_000, body), one);
//! let two = "t=1700000000,\
//!     v1=520ba5b03932117621a4d4e1b5716d42a410cb52ebc388006e66039836d84982,\
//!     v1=c8a2da3631809b058121307261ee85ff03b1f3fcf8c61c480c7c59463b1f22a4";
//! assert_eq!(sign(&["whsec_test_secret", "whsec_new_secret"], 1_700_000_000, body), two);
//!
//! // A receiver that knows either secret accepts the rotation header.
//! let tolerance = Duration::from_secs(300);
//! assert!(verify_signature(&["whsec_new_secret"], two, body, 1_700_000_010, tolerance).is_ok());
//! assert!(verify_signature(&["whsec_test_secret"], one, body, 1_700_000_010, tolerance).is_ok());
//! ```
//!
//! # Security
//!
//! - The MAC is compared in constant time (`hmac`'s `verify_slice`).
//! - [`WebhookSecret`]'s `Debug` prints no secret.
//! - Verify the raw body as received, before parsing it: a re-serialized body differs.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The signature header's name: `Session-Signature`.
pub const SIGNATURE_HEADER: &str = "Session-Signature";

/// The header carrying the event id, the same on every retry of one event: `Webhook-Id`.
pub const WEBHOOK_ID_HEADER: &str = "Webhook-Id";

/// A receiver's usual tolerance between the signature's timestamp and its own clock:
/// five minutes, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The most `v1=` entries [`verify_signature`] looks at; a header with more is malformed.
pub const MAX_SIGNATURES: usize = 8;

/// A webhook secret: the HMAC key (the bytes of the secret as written, not decoded).
///
/// Its `Debug` prints no secret.
///
/// ```
/// use session_webhooks::signature::WebhookSecret;
///
/// let secret = WebhookSecret::new("whsec_test_secret").unwrap();
/// assert_eq!(format!("{secret:?}"), "WebhookSecret(<redacted>)");
/// assert!(WebhookSecret::new("").is_none());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// A secret with these bytes; `None` when empty.
    #[must_use]
    pub fn new(secret: impl Into<Vec<u8>>) -> Option<Self> {
        let secret = secret.into();
        (!secret.is_empty()).then_some(Self(secret))
    }

    /// The secrets of a `WEBHOOK_SECRET` setting: one, or several separated by commas
    /// while a secret is rotated (surrounding spaces are trimmed). All of them sign.
    ///
    /// ```
    /// use session_webhooks::signature::{SecretsError, WebhookSecret};
    ///
    /// assert_eq!(WebhookSecret::parse_list("old-secret, new-secret").unwrap().len(), 2);
    /// assert_eq!(WebhookSecret::parse_list(" ").unwrap_err(), SecretsError::Empty);
    /// assert_eq!(WebhookSecret::parse_list("a,,b").unwrap_err(), SecretsError::EmptyEntry);
    /// ```
    ///
    /// # Errors
    ///
    /// [`SecretsError`] for an empty setting or an empty entry (`a,,b`).
    pub fn parse_list(value: &str) -> Result<Vec<Self>, SecretsError> {
        if value.trim().is_empty() {
            return Err(SecretsError::Empty);
        }
        value
            .split(',')
            .map(|s| Self::new(s.trim()).ok_or(SecretsError::EmptyEntry))
            .collect()
    }

    /// The key's bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for WebhookSecret {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Why a list of secrets could not be read ([`WebhookSecret::parse_list`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// No secret at all.
    #[error("no webhook secret")]
    Empty,
    /// An empty secret between commas.
    #[error("an empty webhook secret in the list")]
    EmptyEntry,
}

/// Why [`verify_signature`] refused a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The header is not `t=UNIX,v1=HEX[,v1=HEX…]`: no timestamp, two of them, one that is
    /// not a number, a part without `=`, or more than [`MAX_SIGNATURES`] signatures.
    #[error("malformed signature header")]
    Malformed,
    /// The header has a timestamp but no `v1=` signature.
    #[error("no v1 signature in the header")]
    NoSignature,
    /// No `v1=` signature matches the body under any of the secrets (a changed body, a
    /// wrong secret, a forged header), or the receiver has no secret.
    #[error("no signature matches")]
    Mismatch,
    /// The signature is right but its timestamp is further from `now` than the tolerance
    /// (a replay, or a clock out of step).
    #[error("signature timestamp outside the tolerance")]
    Stale,
}

/// The `Session-Signature` header value for `body` sent at `unix_time`: one `v1=` per
/// secret, in the order given. With no secret, only `t=` (which every receiver refuses).
///
/// ```
/// use session_webhooks::signature::sign;
///
/// let header = sign(&["whsec_test_secret"], 1_700_000_000, b"{}");
/// assert!(header.starts_with("t=1700000000,v1="));
/// assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
/// ```
#[must_use]
pub fn sign<S: AsRef<[u8]>>(secrets: &[S], unix_time: u64, body: &[u8]) -> String {
    let timestamp = unix_time.to_string();
    let mut header = String::with_capacity(2 + timestamp.len() + secrets.len() * 68);
    header.push_str("t=");
    header.push_str(&timestamp);
    for secret in secrets {
        let tag = mac(secret.as_ref(), &timestamp, body)
            .finalize()
            .into_bytes();
        header.push_str(",v1=");
        header.push_str(&hex::encode(tag));
    }
    header
}

/// Checks a delivery: `header` is the `Session-Signature` value (a `&str` or an
/// `http::HeaderValue`), `body` the raw body as received, `now` the receiver's clock in
/// Unix seconds ([`unix_now`]), `tolerance` how far the signature's timestamp may be
/// from it, either way ([`DEFAULT_TOLERANCE`]).
///
/// Accepts when any `v1=` signature matches under any of `secrets` (so both sides can
/// rotate) and the timestamp is within the tolerance. Parts other than `t` and `v1` are
/// ignored, for later schemes. See the [module docs](self) for an axum receiver.
///
/// ```
/// use std::time::Duration;
/// use session_webhooks::signature::{SignatureError, sign, verify_signature};
///
/// let secrets = ["whsec_test_secret"];
/// let body = br#"{"id":"1"}"#;
/// let header = sign(&secrets, 1_700_000_000, body);
/// let minute = Duration::from_secs(60);
/// assert_eq!(verify_signature(&secrets, &header, body, 1_700_000_030, minute), Ok(()));
/// assert_eq!(
///     verify_signature(&secrets, &header, br#"{"id":"2"}"#, 1_700_000_030, minute),
///     Err(SignatureError::Mismatch)
/// );
/// assert_eq!(
///     verify_signature(&["whsec_other"], &header, body, 1_700_000_030, minute),
///     Err(SignatureError::Mismatch)
/// );
/// assert_eq!(
///     verify_signature(&secrets, &header, body, 1_700_000_061, minute),
///     Err(SignatureError::Stale)
/// );
/// assert_eq!(
///     verify_signature(&secrets, "v1=abc", body, 1_700_000_000, minute),
///     Err(SignatureError::Malformed)
/// );
/// ```
///
/// # Errors
///
/// [`SignatureError`]: malformed header, no signature, no match, or a stale timestamp
/// (checked after the MAC, so `Stale` means a genuine but old delivery).
pub fn verify_signature<S: AsRef<[u8]>>(
    secrets: &[S],
    header: impl AsRef<[u8]>,
    body: &[u8],
    now: u64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let parsed = Parsed::read(header.as_ref())?;
    if parsed.count == 0 {
        return Err(SignatureError::NoSignature);
    }
    let matched = secrets.iter().any(|secret| {
        let mac = mac(secret.as_ref(), parsed.timestamp, body);
        parsed.signatures[..parsed.count]
            .iter()
            .any(|sig| sig.is_some_and(|sig| mac.clone().verify_slice(&sig).is_ok()))
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    // Digits only (checked by `read`), so this parses unless it overflows.
    let t: u64 = parsed
        .timestamp
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    if now.abs_diff(t) > tolerance.as_secs() {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// Now, in Unix seconds (0 before 1970).
#[must_use]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// A header, read: the timestamp's text (as signed) and up to [`MAX_SIGNATURES`] decoded
/// signatures (`None` for one that is not 32 bytes of hex: it matches nothing).
struct Parsed<'a> {
    timestamp: &'a str,
    signatures: [Option<[u8; 32]>; MAX_SIGNATURES],
    count: usize,
}

impl<'a> Parsed<'a> {
    fn read(header: &'a [u8]) -> Result<Self, SignatureError> {
        let header = std::str::from_utf8(header).map_err(|_| SignatureError::Malformed)?;
        let mut timestamp = None;
        let mut signatures = [None; MAX_SIGNATURES];
        let mut count = 0;
        for part in header.split(',') {
            let (key, value) = part
                .trim()
                .split_once('=')
                .ok_or(SignatureError::Malformed)?;
            match key {
                "t" => {
                    let digits = !value.is_empty()
                        && value.len() <= 20
                        && value.bytes().all(|b| b.is_ascii_digit());
                    if timestamp.is_some() || !digits {
                        return Err(SignatureError::Malformed);
                    }
                    timestamp = Some(value);
                }
                "v1" => {
                    let slot = signatures.get_mut(count).ok_or(SignatureError::Malformed)?;
                    let mut tag = [0; 32];
                    *slot = hex::decode_to_slice(value, &mut tag).ok().map(|()| tag);
                    count += 1;
                }
                _ => {}
            }
        }
        Ok(Self {
            timestamp: timestamp.ok_or(SignatureError::Malformed)?,
            signatures,
            count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"00000000000000000001","type":"session.revoked"}"#;
    const V1_TEST: &str = "520ba5b03932117621a4d4e1b5716d42a410cb52ebc388006e66039836d84982";
    const V1_NEW: &str = "c8a2da3631809b058121307261ee85ff03b1f3fcf8c61c480c7c59463b1f22a4";
    const T: u64 = 1_700_000_000;
    const TOL: Duration = DEFAULT_TOLERANCE;

    #[test]
    fn test_vectors() {
        assert_eq!(
            sign(&["whsec_test_secret"], T, BODY),
            format!("t=1700000000,v1={V1_TEST}")
        );
        assert_eq!(
            sign(&["whsec_test_secret", "whsec_new_secret"], T, BODY),
            format!("t=1700000000,v1={V1_TEST},v1={V1_NEW}")
        );
        let secret = WebhookSecret::new("whsec_test_secret").unwrap();
        assert_eq!(
            sign(&[secret], T, BODY),
            format!("t=1700000000,v1={V1_TEST}")
        );
    }

    #[test]
    fn accepts_any_secret_of_a_rotation_and_any_order() {
        let header = sign(&["a-secret", "b-secret"], T, BODY);
        for secrets in [&["a-secret"][..], &["b-secret"], &["x", "b-secret"]] {
            assert_eq!(verify_signature(secrets, &header, BODY, T, TOL), Ok(()));
        }
        let reordered = format!("v1={V1_TEST}, t=1700000000 ,v0=zzz");
        assert_eq!(
            verify_signature(&["whsec_test_secret"], &reordered, BODY, T, TOL),
            Ok(())
        );
        let upper = format!("t=1700000000,v1={}", V1_TEST.to_uppercase());
        assert_eq!(
            verify_signature(&["whsec_test_secret"], &upper, BODY, T, TOL),
            Ok(())
        );
    }

    #[test]
    fn refuses_changes_wrong_secrets_and_time() {
        let header = sign(&["s"], T, BODY);
        let mut changed = BODY.to_vec();
        changed[5] ^= 1;
        assert_eq!(
            verify_signature(&["s"], &header, &changed, T, TOL),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&["t"], &header, BODY, T, TOL),
            Err(SignatureError::Mismatch)
        );
        let none: [&str; 0] = [];
        assert_eq!(
            verify_signature(&none, &header, BODY, T, TOL),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the MAC.
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(
            verify_signature(&["s"], &moved, BODY, T, TOL),
            Err(SignatureError::Mismatch)
        );
        // Either side of the tolerance, inclusive.
        assert_eq!(
            verify_signature(&["s"], &header, BODY, T + 300, TOL),
            Ok(())
        );
        assert_eq!(
            verify_signature(&["s"], &header, BODY, T - 300, TOL),
            Ok(())
        );
        assert_eq!(
            verify_signature(&["s"], &header, BODY, T + 301, TOL),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(&["s"], &header, BODY, T - 301, TOL),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn malformed_headers() {
        let sig = format!("v1={V1_TEST}");
        for header in [
            String::new(),
            sig.clone(),
            format!("t=,{sig}"),
            format!("t=-1,{sig}"),
            format!("t=17e8,{sig}"),
            format!("t=1,t=1,{sig}"),
            format!("t=1,{sig},junk"),
            format!("t=99999999999999999999999,{sig}"),
            format!("t=1{}", format!(",{sig}").repeat(MAX_SIGNATURES + 1)),
        ] {
            assert_eq!(
                verify_signature(&["s"], &header, BODY, T, TOL),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
        assert_eq!(
            verify_signature(&["s"], b"t=1\xff".as_slice(), BODY, T, TOL),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(&["s"], "t=1700000000", BODY, T, TOL),
            Err(SignatureError::NoSignature)
        );
        // Bad hex or a wrong length matches nothing, and is not an error of its own.
        assert_eq!(
            verify_signature(&["s"], "t=1700000000,v1=zz,v1=abcd", BODY, T, TOL),
            Err(SignatureError::Mismatch)
        );
        // The largest u64 timestamp that fits 20 digits parses; beyond u64 is malformed.
        assert_eq!(
            verify_signature(&["s"], "t=18446744073709551616,v1=00", BODY, T, TOL),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn secret_lists() {
        let list = WebhookSecret::parse_list("a, b").unwrap();
        assert_eq!(list[0].expose(), b"a");
        assert_eq!(list[1].expose(), b"b");
        assert_eq!(WebhookSecret::parse_list(""), Err(SecretsError::Empty));
        assert_eq!(
            WebhookSecret::parse_list("a,"),
            Err(SecretsError::EmptyEntry)
        );
        assert_eq!(
            format!("{list:?}"),
            "[WebhookSecret(<redacted>), WebhookSecret(<redacted>)]"
        );
    }
}
