//! What the browser keeps between `begin` and `finish`: a MAC'd cookie value.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::OidcError;

/// Domain separation for the MAC: this key may serve other purposes elsewhere.
const MAC_CONTEXT: &[u8] = b"session-idp/oidc-browser-state/v1.";

/// The largest cookie value read.
const MAX_LEN: usize = 4096;

#[derive(Serialize, Deserialize)]
pub(crate) struct BrowserState {
    /// `state`
    pub(crate) s: String,
    /// PKCE verifier
    pub(crate) v: String,
    /// nonce
    pub(crate) n: String,
    /// return_to
    pub(crate) r: String,
    /// expiry, unix seconds
    pub(crate) e: i64,
}

impl fmt::Debug for BrowserState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserState")
            .field("return_to", &self.r)
            .finish_non_exhaustive()
    }
}

fn mac(key: &[u8], payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(MAC_CONTEXT);
    mac.update(payload.as_bytes());
    mac
}

impl BrowserState {
    /// `base64url(json) "." base64url(HMAC-SHA256(key, context || base64url(json)))`.
    pub(crate) fn seal(&self, key: &[u8]) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = mac(key, &payload).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks the MAC (constant time), the expiry, and that it was made for `state`.
    pub(crate) fn open(
        sealed: &str,
        key: &[u8],
        state: &str,
        now: OffsetDateTime,
    ) -> Result<Self, OidcError> {
        if sealed.len() > MAX_LEN {
            return Err(OidcError::BrowserStateInvalid);
        }
        let (payload, tag) = sealed
            .split_once('.')
            .ok_or(OidcError::BrowserStateInvalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| OidcError::BrowserStateInvalid)?;
        mac(key, payload)
            .verify_slice(&tag)
            .map_err(|_| OidcError::BrowserStateInvalid)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| OidcError::BrowserStateInvalid)?;
        let opened: Self =
            serde_json::from_slice(&json).map_err(|_| OidcError::BrowserStateInvalid)?;
        if opened.e < now.unix_timestamp() {
            return Err(OidcError::BrowserStateExpired);
        }
        if !bool::from(opened.s.as_bytes().ct_eq(state.as_bytes())) {
            return Err(OidcError::StateMismatch);
        }
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(e: i64) -> BrowserState {
        BrowserState {
            s: "st".into(),
            v: "ver".into(),
            n: "no".into(),
            r: "/x".into(),
            e,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let key = [7u8; 32];
        let now = OffsetDateTime::from_unix_timestamp(1000).unwrap();
        let sealed = sample(1600).seal(&key);
        let opened = BrowserState::open(&sealed, &key, "st", now).unwrap();
        assert_eq!((opened.v.as_str(), opened.r.as_str()), ("ver", "/x"));

        assert!(matches!(
            BrowserState::open(&sealed, &key, "other", now),
            Err(OidcError::StateMismatch)
        ));
        assert!(matches!(
            BrowserState::open(&sealed, &[8u8; 32], "st", now),
            Err(OidcError::BrowserStateInvalid)
        ));
        let later = OffsetDateTime::from_unix_timestamp(1601).unwrap();
        assert!(matches!(
            BrowserState::open(&sealed, &key, "st", later),
            Err(OidcError::BrowserStateExpired)
        ));

        // Any change to the payload breaks the MAC.
        let (payload, tag) = sealed.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap())
                .unwrap()
                .replace("/x", "//evil"),
        );
        assert!(matches!(
            BrowserState::open(&format!("{forged}.{tag}"), &key, "st", now),
            Err(OidcError::BrowserStateInvalid)
        ));
        assert!(matches!(
            BrowserState::open("garbage", &key, "st", now),
            Err(OidcError::BrowserStateInvalid)
        ));
    }
}
