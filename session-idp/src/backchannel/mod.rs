//! OpenID Connect Back-Channel Logout 1.0: the receiver of logout tokens.
//!
//! The provider POSTs `logout_token=JWT` (form encoded) to the app's back-channel logout
//! URI when a user signs out there. [`parse_logout_request`] takes the token out of the
//! body, [`LogoutTokenValidator::validate`] checks it as the specification's section 2.6
//! requires, and the app revokes the sessions it names (with a `sid`: the sessions signed in
//! under that provider session; with only a `sub`: every session of that user from that
//! provider), then answers with [`logout_ok`] or [`logout_error`].
//!
//! # Example
//!
//! ```
//! use session_idp::backchannel::{logout_error, logout_ok, parse_logout_request, LogoutTokenValidator};
//! use session_idp::jwks::Jwks;
//! use session_idp::replay::MemoryReplayGuard;
//! use session_idp::token::TokenError;
//! use time::OffsetDateTime;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let validator = LogoutTokenValidator::new(
//!     "https://op.example",
//!     "my-client",
//!     Jwks::url("https://op.example/jwks"),
//!     MemoryReplayGuard::new(),
//! );
//! // An unsigned token is refused before any key is fetched.
//! let body = b"logout_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.";
//! let token = parse_logout_request(Some("application/x-www-form-urlencoded"), body).unwrap();
//! let answer = match validator.validate(&token, OffsetDateTime::now_utc()).await {
//!     Ok(_claims) => logout_ok(), // after revoking the sessions it names
//!     Err(err) => {
//!         assert!(matches!(err, TokenError::AlgNone));
//!         logout_error(&err)
//!     }
//! };
//! assert_eq!(answer.status(), 400);
//! assert_eq!(answer.headers()["cache-control"], "no-store");
//! assert_eq!(answer.body(), r#"{"error":"invalid_request","error_description":"the token is unsigned (alg none)"}"#);
//! # });
//! ```
//!
//! # Security
//!
//! - Algorithms: an allowlist of asymmetric algorithms (default RS256, ES256, PS256,
//!   EdDSA); `none` and HMAC are refused whatever the allowlist says, and keys are only
//!   ever taken from the provider's JWKS, so no token is checked as an HMAC keyed with a
//!   public key.
//! - Time: `iat` no later than now plus the clock skew (default 60 s) and no older than the
//!   maximum age (default 5 minutes); `exp`, when present, not passed. The maximum age
//!   bounds how long a `jti` is remembered.
//! - Replay: each `jti` (per issuer) is accepted once, through the [`ReplayGuard`]
//!   given, after every other check passed.
//!
//! [`ReplayGuard`]: crate::replay::ReplayGuard

mod request;
mod validator;

pub use request::{LogoutRequestError, logout_error, logout_ok, parse_logout_request};
pub use validator::{BACKCHANNEL_LOGOUT_EVENT, LogoutToken, LogoutTokenValidator};
