//! A provider's public keys (JWKS), fetched and cached, refetched for key rollover.
//!
//! [`Jwks::url`] fetches the set from the provider's `jwks_uri` on first use and keeps it
//! for [`Jwks::with_max_age`] (default 1 hour). A token naming a `kid` that the cached set
//! lacks makes it refetch at once, so a provider that rolls its keys over is followed
//! without a restart; such refetches happen at most once per
//! [`Jwks::with_refetch_interval`] (default 30 s), and concurrent ones are one request, so
//! a flood of tokens with made-up `kid`s costs the provider one request per interval.
//! [`Jwks::inline`] is a fixed set (a transmitter configured with its keys).
//!
//! Only signature keys are ever used: `oct` (symmetric) keys in a set are ignored, so no
//! token can be checked as an HMAC keyed with a public key.
//!
//! # Example
//!
//! ```
//! use session_idp::jwks::Jwks;
//!
//! let jwks = Jwks::from_json(r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
//!     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#).unwrap();
//! assert_eq!(jwks.source_uri(), None);
//! ```

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

/// The largest JWKS document accepted from a provider.
const MAX_JWKS_BYTES: usize = 512 * 1024;

/// Why a key could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The set (even freshly fetched) has no key for the token's `kid`, or, without a
    /// `kid`, not exactly one key for its algorithm.
    #[error("no key in the provider's key set matches the token")]
    UnknownKey,
    /// The key named by `kid` is not a key for the token's algorithm (another key type or
    /// curve, another `alg`, or not a signature key).
    #[error("the key named by the token is not a key for its algorithm")]
    KeyMismatch,
    /// The set could not be fetched or parsed (the provider is down, or answered garbage).
    #[error("the provider's key set could not be fetched: {0}")]
    Unavailable(String),
}

/// A provider's public keys: a URL fetched and cached, or a fixed set. Cheap to clone
/// (clones share the cache).
#[derive(Clone)]
pub struct Jwks {
    inner: Arc<Inner>,
}

struct Inner {
    uri: Option<String>,
    client: reqwest::Client,
    max_age: Duration,
    refetch_interval: Duration,
    cache: RwLock<Cached>,
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Cached {
    keys: Vec<Jwk>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.inner.cache.read().map(|c| c.keys.len()).unwrap_or(0);
        f.debug_struct("Jwks")
            .field("uri", &self.inner.uri)
            .field("keys", &keys)
            .field("max_age", &self.inner.max_age)
            .field("refetch_interval", &self.inner.refetch_interval)
            .finish()
    }
}

fn default_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

impl Jwks {
    /// Keys fetched from `uri` (the provider's `jwks_uri`), on first use.
    #[must_use]
    pub fn url(uri: impl Into<String>) -> Self {
        Self::build(Some(uri.into()), Vec::new())
    }

    /// A fixed key set, never fetched.
    #[must_use]
    pub fn inline(set: JwkSet) -> Self {
        Self::build(None, set.keys)
    }

    /// A fixed key set from its JSON text (`{"keys": [...]}`).
    pub fn from_json(json: &str) -> Result<Self, JwksError> {
        let set: JwkSet =
            serde_json::from_str(json).map_err(|e| JwksError::Unavailable(e.to_string()))?;
        Ok(Self::inline(set))
    }

    fn build(uri: Option<String>, keys: Vec<Jwk>) -> Self {
        let fetched_at = uri.is_none().then(Instant::now);
        Self {
            inner: Arc::new(Inner {
                uri,
                client: default_client(),
                max_age: Duration::from_secs(3600),
                refetch_interval: Duration::from_secs(30),
                cache: RwLock::new(Cached {
                    keys,
                    fetched_at,
                    attempted_at: None,
                }),
                fetching: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("Jwks is configured before it is cloned")
    }

    /// How long a fetched set is used before it is fetched again (default 1 hour), so keys
    /// the provider withdrew stop being trusted. Ignored for an inline set.
    ///
    /// # Panics
    ///
    /// When called on a clone (configure before sharing).
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.inner_mut().max_age = max_age;
        self
    }

    /// The least time between two fetches caused by unknown `kid`s (default 30 s).
    ///
    /// # Panics
    ///
    /// When called on a clone (configure before sharing).
    #[must_use]
    pub fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.inner_mut().refetch_interval = interval;
        self
    }

    /// The HTTP client used to fetch the set (default: no redirects, 5 s timeout).
    ///
    /// # Panics
    ///
    /// When called on a clone (configure before sharing).
    #[must_use]
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.inner_mut().client = client;
        self
    }

    /// The URL the keys come from; `None` for an inline set.
    #[must_use]
    pub fn source_uri(&self) -> Option<&str> {
        self.inner.uri.as_deref()
    }

    /// The decoding key for a token signed with `alg`, naming `kid` (or none).
    pub(crate) async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, JwksError> {
        {
            let cache = self.read();
            if self.is_fresh(&cache)
                && let Some(found) = select(&cache.keys, kid, alg)
            {
                return found;
            }
        }
        let Some(uri) = self.inner.uri.as_deref() else {
            return Err(JwksError::UnknownKey);
        };
        // One fetch at a time; whoever waited re-checks what the fetch brought.
        let _fetching = self.inner.fetching.lock().await;
        {
            let cache = self.read();
            let recent_attempt = cache
                .attempted_at
                .is_some_and(|at| at.elapsed() < self.inner.refetch_interval);
            if self.is_fresh(&cache) {
                if let Some(found) = select(&cache.keys, kid, alg) {
                    return found;
                }
                // A fresh set without the key: refetch at most once per interval.
                if recent_attempt {
                    return Err(JwksError::UnknownKey);
                }
            } else if recent_attempt {
                // Stale, and the fetch just tried failed: the old keys, or nothing.
                return select(&cache.keys, kid, alg)
                    .unwrap_or(Err(JwksError::Unavailable("the last fetch failed".into())));
            }
        }
        let fetched = self.fetch(uri).await;
        let mut cache = self.inner.cache.write().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        cache.attempted_at = Some(now);
        match fetched {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched_at = Some(now);
                select(&cache.keys, kid, alg).unwrap_or(Err(JwksError::UnknownKey))
            }
            // A provider that is down leaves the keys we had in use (stale but known).
            Err(e) => select(&cache.keys, kid, alg).unwrap_or(Err(e)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.inner.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn is_fresh(&self, cache: &Cached) -> bool {
        match (&self.inner.uri, cache.fetched_at) {
            (None, _) => true,
            (Some(_), Some(at)) => at.elapsed() < self.inner.max_age,
            (Some(_), None) => false,
        }
    }

    async fn fetch(&self, uri: &str) -> Result<Vec<Jwk>, JwksError> {
        let unavailable = |e: &dyn fmt::Display| JwksError::Unavailable(e.to_string());
        let mut response = self
            .inner
            .client
            .get(uri)
            .header(
                http::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|e| unavailable(&e.without_url()))?;
        if response.status() != http::StatusCode::OK {
            return Err(JwksError::Unavailable(format!(
                "status {}",
                response.status()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(&e.without_url()))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksError::Unavailable("key set too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        let set: RawSet = serde_json::from_slice(&body).map_err(|e| unavailable(&e))?;
        // Keys of kinds this crate cannot use are skipped, not fatal.
        Ok(set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value(k).ok())
            .collect())
    }
}

#[derive(serde::Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// `Some(Ok)` a usable key, `Some(Err(KeyMismatch))` a key named by `kid` that does not
/// fit, `None` nothing found.
fn select(
    keys: &[Jwk],
    kid: Option<&str>,
    alg: Algorithm,
) -> Option<Result<DecodingKey, JwksError>> {
    match kid {
        Some(kid) => {
            let named: Vec<&Jwk> = keys
                .iter()
                .filter(|k| k.common.key_id.as_deref() == Some(kid))
                .collect();
            if named.is_empty() {
                return None;
            }
            let fitting: Vec<&&Jwk> = named.iter().filter(|k| fits(k, alg)).collect();
            match fitting.as_slice() {
                [one] => Some(DecodingKey::from_jwk(one).map_err(|_| JwksError::KeyMismatch)),
                [] => Some(Err(JwksError::KeyMismatch)),
                _ => Some(Err(JwksError::UnknownKey)),
            }
        }
        None => {
            let fitting: Vec<&Jwk> = keys.iter().filter(|k| fits(k, alg)).collect();
            match fitting.as_slice() {
                [one] => Some(DecodingKey::from_jwk(one).map_err(|_| JwksError::KeyMismatch)),
                _ => None,
            }
        }
    }
}

/// Whether `key` is a signature key for `alg`.
fn fits(key: &Jwk, alg: Algorithm) -> bool {
    if matches!(key.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return false;
    }
    if let Some(key_alg) = key.common.key_algorithm
        && Algorithm::try_from(key_alg).ok() != Some(alg)
    {
        return false;
    }
    match (&key.algorithm, alg.family()) {
        (AlgorithmParameters::RSA(_), AlgorithmFamily::Rsa) => true,
        (AlgorithmParameters::EllipticCurve(p), AlgorithmFamily::Ec) => matches!(
            (&p.curve, alg),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        (AlgorithmParameters::OctetKeyPair(p), AlgorithmFamily::Ed) => {
            p.curve == EllipticCurve::Ed25519
        }
        // `oct` keys (HMAC) are never used, whatever the token says.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(json: &str) -> Vec<Jwk> {
        serde_json::from_str::<JwkSet>(json).unwrap().keys
    }

    const ED: &str = r#"{"keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
    ]}"#;

    #[test]
    fn selects_by_kid_and_algorithm() {
        let keys = set(ED);
        assert!(matches!(
            select(&keys, Some("ed"), Algorithm::EdDSA),
            Some(Ok(_))
        ));
        assert!(matches!(
            select(&keys, Some("ed"), Algorithm::ES256),
            Some(Err(JwksError::KeyMismatch))
        ));
        assert!(select(&keys, Some("nope"), Algorithm::EdDSA).is_none());
        // Without a kid, the one key that fits.
        assert!(matches!(select(&keys, None, Algorithm::EdDSA), Some(Ok(_))));
    }

    #[test]
    fn never_selects_a_symmetric_key() {
        let keys = set(ED);
        for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::EdDSA] {
            assert!(!matches!(select(&keys, Some("hmac"), alg), Some(Ok(_))));
        }
    }
}
