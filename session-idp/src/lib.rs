//! Sessions ended from outside: an identity provider signs a user in, and later tells the
//! app to end that user's sessions.
//!
//! Framework-neutral building blocks (strings, bytes and `http` types in, typed results
//! out) that an axum or actix-web app wires into its routes and its session manager:
//!
//! | module | standard | what it does |
//! | --- | --- | --- |
//! | [`oidc`] | OpenID Connect Core, PKCE (RFC 7636) | sign-in: authorization URL, callback, the verified `iss`, `sub`, `sid` |
//! | [`backchannel`] | OpenID Connect Back-Channel Logout 1.0 | validates logout tokens; the spec's answers |
//! | [`caep`] | RFC 8417 SETs, CAEP `session-revoked`, RFC 8935 push | sends and receives session-revoked events |
//! | [`scim`] | SCIM 2.0 (RFC 7643, RFC 7644) | deprovisioning: `active: false`, `DELETE`; bearer check, SCIM bodies |
//!
//! Signatures are made and checked by `jsonwebtoken` (RustCrypto backend) and, for the
//! sign-in flow, by `openidconnect`; this crate decides which keys and algorithms are
//! acceptable and checks the claims each standard requires.
//!
//! # Features
//!
//! `oidc`, `backchannel`, `caep` and `scim`, one per module, all on by default: an app that
//! takes sessions from a provider usually needs each of them, and the workspace's test
//! command then tests them all. With `default-features = false` and only the features it
//! uses, a build compiles no more (`scim` alone needs no HTTP client and no cryptography).
//!
//! # Security
//!
//! No token, code, secret or key is logged or put into an error message; the `Debug` of
//! every configuration type shows secrets as `[redacted]`.

#[cfg(feature = "backchannel")]
pub mod backchannel;
#[cfg(feature = "caep")]
pub mod caep;
#[cfg(feature = "jose")]
pub mod jwks;
#[cfg(feature = "oidc")]
pub mod oidc;
#[cfg(feature = "jose")]
pub mod replay;
#[cfg(feature = "scim")]
pub mod scim;
#[cfg(feature = "jose")]
pub mod token;

#[cfg(feature = "jose")]
pub use jsonwebtoken::Algorithm;
#[cfg(feature = "jose")]
pub use jsonwebtoken::jwk::JwkSet;

/// A setting that cannot be used (an empty algorithm list, a short key, a bad URL).
///
/// ```
/// let err = session_idp::ConfigError::new("the key is too short");
/// assert_eq!(err.to_string(), "invalid configuration: the key is too short");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    /// A configuration error saying `why`.
    pub fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}
