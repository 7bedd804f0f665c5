//! Making signed CAEP `session-revoked` SETs.

use std::collections::BTreeMap;
use std::fmt;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::{CaepError, Subject};

/// The CAEP event type of a revoked session.
pub const SESSION_REVOKED_EVENT: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

/// A CAEP `session-revoked` event: the subject's session(s) ended at `event_timestamp`.
///
/// ```
/// use session_idp::caep::{SessionRevoked, Subject};
/// use time::OffsetDateTime;
///
/// let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
/// let event = SessionRevoked::new(Subject::opaque("session-1"), at)
///     .with_initiating_entity("admin")
///     .with_reason_admin("en", "offboarding");
/// assert_eq!(
///     event.payload().to_string(),
///     r#"{"event_timestamp":1700000000,"initiating_entity":"admin","reason_admin":{"en":"offboarding"}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionRevoked {
    /// Whose session.
    pub subject: Subject,
    /// When it was revoked.
    pub event_timestamp: OffsetDateTime,
    /// `admin`, `user`, `policy` or `system`, when known.
    pub initiating_entity: Option<String>,
    /// A reason for administrators, by language tag.
    pub reason_admin: BTreeMap<String, String>,
    /// A reason for the user, by language tag.
    pub reason_user: BTreeMap<String, String>,
}

impl SessionRevoked {
    /// The event about `subject`, revoked at `event_timestamp`.
    #[must_use]
    pub fn new(subject: Subject, event_timestamp: OffsetDateTime) -> Self {
        Self {
            subject,
            event_timestamp,
            initiating_entity: None,
            reason_admin: BTreeMap::new(),
            reason_user: BTreeMap::new(),
        }
    }

    /// Who caused it: `admin`, `user`, `policy` or `system` (CAEP's values). Default: unsaid.
    #[must_use]
    pub fn with_initiating_entity(mut self, entity: impl Into<String>) -> Self {
        self.initiating_entity = Some(entity.into());
        self
    }

    /// A reason for administrators in language `lang`. Default: none.
    #[must_use]
    pub fn with_reason_admin(mut self, lang: impl Into<String>, text: impl Into<String>) -> Self {
        self.reason_admin.insert(lang.into(), text.into());
        self
    }

    /// A reason to show the user in language `lang`. Default: none.
    #[must_use]
    pub fn with_reason_user(mut self, lang: impl Into<String>, text: impl Into<String>) -> Self {
        self.reason_user.insert(lang.into(), text.into());
        self
    }

    /// The event's member of the `events` claim.
    #[must_use]
    pub fn payload(&self) -> Value {
        let mut payload = Map::new();
        payload.insert(
            "event_timestamp".into(),
            json!(self.event_timestamp.unix_timestamp()),
        );
        if let Some(entity) = &self.initiating_entity {
            payload.insert("initiating_entity".into(), json!(entity));
        }
        if !self.reason_admin.is_empty() {
            payload.insert("reason_admin".into(), json!(self.reason_admin));
        }
        if !self.reason_user.is_empty() {
            payload.insert("reason_user".into(), json!(self.reason_user));
        }
        Value::Object(payload)
    }
}

/// A SET transmitter's identity and signing key (ES256 or EdDSA).
///
/// ```
/// use session_idp::caep::SetSigner;
///
/// let pem = "-----BEGIN PRIVATE KEY-----
/// MC4CAQAwBQYDK2VwBCIEIE/ZAUwwqUIxg7iOsf/qsvaw5oemBYzPtMCnOVP6i+th
/// -----END PRIVATE KEY-----";
/// let signer = SetSigner::eddsa_pem("https://app.example", pem.as_bytes()).unwrap();
/// // The public half, to publish at the transmitter's jwks_uri.
/// assert_eq!(signer.jwks().keys.len(), 1);
/// // The private key never shows.
/// assert!(format!("{signer:?}").contains("[redacted]"));
/// ```
#[derive(Clone)]
pub struct SetSigner {
    issuer: String,
    algorithm: Algorithm,
    key: EncodingKey,
    public: Jwk,
}

impl fmt::Debug for SetSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetSigner")
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("kid", &self.public.common.key_id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl SetSigner {
    /// A signer for `issuer` with a P-256 private key (PKCS#8 PEM), ES256.
    pub fn es256_pem(issuer: impl Into<String>, pem: &[u8]) -> Result<Self, CaepError> {
        let key = EncodingKey::from_ec_pem(pem).map_err(|_| CaepError::BadKey)?;
        Self::with_key(issuer.into(), Algorithm::ES256, key)
    }

    /// A signer for `issuer` with an Ed25519 private key (PKCS#8 PEM), EdDSA.
    pub fn eddsa_pem(issuer: impl Into<String>, pem: &[u8]) -> Result<Self, CaepError> {
        let key = EncodingKey::from_ed_pem(pem).map_err(|_| CaepError::BadKey)?;
        Self::with_key(issuer.into(), Algorithm::EdDSA, key)
    }

    fn with_key(issuer: String, algorithm: Algorithm, key: EncodingKey) -> Result<Self, CaepError> {
        let mut public = Jwk::from_encoding_key(&key, algorithm).map_err(|_| CaepError::BadKey)?;
        // Prove the key signs before accepting it (a P-384 key passed as ES256 would not).
        jsonwebtoken::crypto::sign(b"probe", &key, algorithm).map_err(|_| CaepError::BadKey)?;
        let kid = public
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| CaepError::BadKey)?;
        public.common.key_id = Some(kid);
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            issuer,
            algorithm,
            key,
            public,
        })
    }

    /// The key id put in each SET's header (default: the key's RFC 7638 SHA-256 thumbprint).
    #[must_use]
    pub fn with_key_id(mut self, kid: impl Into<String>) -> Self {
        self.public.common.key_id = Some(kid.into());
        self
    }

    /// The transmitter's issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public key set to publish (the transmitter's `jwks_uri`).
    #[must_use]
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public.clone()],
        }
    }

    /// A signed SET (RFC 8417) carrying `event` for `audience`, issued at `now`: header
    /// `typ: secevent+jwt`, `alg`, `kid`; claims `iss`, `aud`, `iat`, a random `jti`,
    /// `sub_id` (the subject) and `events` with the one `session-revoked` member. No `sub`
    /// and no `exp` (RFC 8417 section 2.2: a SET describes an event that happened).
    pub fn session_revoked(
        &self,
        event: &SessionRevoked,
        audience: &str,
        now: OffsetDateTime,
    ) -> Result<String, CaepError> {
        let claims = json!({
            "iss": self.issuer,
            "aud": audience,
            "iat": now.unix_timestamp(),
            "jti": random_jti()?,
            "sub_id": event.subject.to_json(),
            "events": { SESSION_REVOKED_EVENT: event.payload() },
        });
        let mut header = Header::new(self.algorithm);
        header.typ = Some("secevent+jwt".into());
        header.kid = self.public.common.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| CaepError::Signing)
    }
}

/// 128 random bits, hex.
fn random_jti() -> Result<String, CaepError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| CaepError::Signing)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
