//! Sign-in with an OpenID Connect provider: the authorization code flow with PKCE (S256),
//! `state` and `nonce`, built on the `openidconnect` crate.
//!
//! 1. [`OidcClient::discover`] reads the provider's discovery document once, at start-up.
//! 2. `GET /login/oidc`: [`OidcClient::begin`] gives the provider's authorization URL (answer
//!    303 to it) and a [`LoginStart::browser_state`] value to set as a short-lived cookie:
//!    it carries the `state`, the PKCE verifier, the nonce and where to return, under an
//!    HMAC-SHA256 with the key the app configured, so the browser can hold it but not
//!    change it.
//! 3. `GET /oidc/callback`: [`OidcClient::finish`] takes the callback's query string and
//!    that cookie, checks the `state` against it, exchanges the code (with the PKCE
//!    verifier), validates the ID token (signature, `iss`, `aud`, expiry, nonce) and
//!    returns the [`OidcIdentity`]: `iss`, `sub`, `sid`, and the local `return_to`. The
//!    app clears the cookie, issues its session recording `iss`, `sub`, `sid`, and
//!    redirects.
//!
//! # Example
//!
//! ```no_run
//! use session_idp::oidc::{OidcClient, OidcConfig};
//! use time::OffsetDateTime;
//!
//! # async fn run(state_key: [u8; 32], query: &str, cookie: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let config = OidcConfig::new(
//!     "https://op.example",
//!     "my-client",
//!     "https://app.example/oidc/callback",
//!     &state_key,
//! )?
//! .with_client_secret("s3cret");
//! let client = OidcClient::discover(config).await?;
//!
//! // GET /login/oidc?return_to=/account
//! let start = client.begin(Some("/account"), OffsetDateTime::now_utc())?;
//! // → 303 Location: start.authorization_url, Set-Cookie: oidc=start.browser_state
//!
//! // GET /oidc/callback?code=…&state=…
//! let identity = client.finish(query, cookie, OffsetDateTime::now_utc()).await?;
//! println!("{} at {} (session {:?})", identity.subject, identity.issuer, identity.session_id);
//! # Ok(()) }
//! ```
//!
//! # Security
//!
//! - The cookie holding [`LoginStart::browser_state`] should be `HttpOnly`, `Secure`,
//!   `SameSite=Lax` (the callback is a top-level navigation from the provider), with
//!   `Max-Age` [`LoginStart::max_age`] (default 10 minutes); clear it in the callback.
//! - It is authenticated, not encrypted: the browser that started the flow can read its
//!   own PKCE verifier and nonce, which gives it nothing it could not do itself; no one
//!   else sees the cookie. Keep the key secret: whoever has it can forge the cookie.
//! - `return_to` is kept only if it is a local path (`/…`, not `//…`), else `/`.
//! - The HTTP client follows no redirects, so a provider cannot bounce the token
//!   request elsewhere.

mod browser_state;
mod client;

pub use client::{LoginStart, OidcClient, OidcConfig, OidcIdentity};

/// Why a sign-in failed. [`status`](Self::status) is the HTTP status to answer with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// A setting is unusable (a URL that does not parse, a short key).
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// The provider's discovery document could not be fetched or is invalid.
    #[error("OpenID provider discovery failed: {0}")]
    Discovery(String),
    /// The callback's query string is not a valid form, or lacks `state`.
    #[error("the callback request is malformed")]
    MalformedCallback,
    /// The browser-state cookie is missing, forged or damaged.
    #[error("the sign-in state is missing or invalid")]
    BrowserStateInvalid,
    /// The browser-state cookie is older than its lifetime.
    #[error("the sign-in took too long; start again")]
    BrowserStateExpired,
    /// The callback's `state` is not the one this browser started with.
    #[error("the sign-in state does not match")]
    StateMismatch,
    /// The callback's `iss` (RFC 9207) is not the configured provider.
    #[error("the callback comes from another issuer")]
    IssuerMismatch,
    /// The provider answered with an error (`access_denied` when the user declined).
    #[error("the provider refused the sign-in: {error}")]
    Provider {
        /// The OAuth error code.
        error: String,
        /// Its description, when given.
        description: Option<String>,
    },
    /// The callback has neither `code` nor `error`.
    #[error("the callback carries no authorization code")]
    MissingCode,
    /// The token endpoint refused the code (used, expired, or the PKCE verifier differs).
    #[error("the provider refused the authorization code: {0}")]
    CodeRejected(String),
    /// The token endpoint could not be reached or answered garbage.
    #[error("the provider's token endpoint failed: {0}")]
    ProviderUnavailable(String),
    /// The token response has no ID token.
    #[error("the provider returned no ID token")]
    MissingIdToken,
    /// The ID token failed validation (signature, issuer, audience, expiry, nonce).
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(String),
}

impl OidcError {
    /// The status to answer with: 502 when the provider failed us (discovery, token
    /// endpoint unreachable), 500 for our configuration, else 400 (a bad or replayed
    /// callback, no session issued).
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::Discovery(_) | Self::ProviderUnavailable(_) => 502,
            Self::Config(_) => 500,
            _ => 400,
        }
    }
}
