//! The OpenID Connect client: configuration, discovery, `begin`, `finish`.

use std::fmt;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthorizationCode, Client, ClientId,
    ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdTokenFields, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata,
    RedirectUrl, RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::OidcError;
use super::browser_state::BrowserState;
use crate::ConfigError;

/// The ID token's `sid` claim (OpenID Connect Front-/Back-Channel Logout), which the core
/// claims lack.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SessionIdClaim {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}
impl AdditionalClaims for SessionIdClaim {}

/// Discovery members beyond the core ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LogoutMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_session_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backchannel_logout_supported: Option<bool>,
}
impl AdditionalProviderMetadata for LogoutMetadata {}

type Metadata = ProviderMetadata<
    LogoutMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type TokenResponse = StandardTokenResponse<
    IdTokenFields<
        SessionIdClaim,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

type InnerClient = Client<
    SessionIdClaim,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The longest `return_to` kept (longer ones become `/`).
const MAX_RETURN_TO: usize = 1024;

/// How to reach the provider and who we are to it.
///
/// ```
/// use session_idp::oidc::OidcConfig;
///
/// let config = OidcConfig::new("https://op.example", "app", "https://app.example/oidc/callback", &[9; 32])
///     .unwrap()
///     .with_client_secret("s3cret");
/// let shown = format!("{config:?}");
/// assert!(shown.contains("[redacted]") && !shown.contains("s3cret"));
/// // The state key must be at least 32 bytes.
/// assert!(OidcConfig::new("https://op.example", "app", "https://app.example/cb", &[9; 16]).is_err());
/// ```
#[derive(Clone)]
pub struct OidcConfig {
    issuer: IssuerUrl,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: RedirectUrl,
    state_key: Vec<u8>,
    scopes: Vec<String>,
    state_ttl: Duration,
    http_client: Option<reqwest::Client>,
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("state_key", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("state_ttl", &self.state_ttl)
            .finish_non_exhaustive()
    }
}

impl OidcConfig {
    /// The provider `issuer` (its discovery document lives under it), our `client_id`,
    /// our `redirect_uri` (registered at the provider, exactly), and the key that
    /// authenticates the browser-state cookie (at least 32 bytes, random, secret).
    pub fn new(
        issuer: &str,
        client_id: impl Into<String>,
        redirect_uri: &str,
        state_key: &[u8],
    ) -> Result<Self, ConfigError> {
        if state_key.len() < 32 {
            return Err(ConfigError::new(
                "the OIDC state key must be at least 32 bytes",
            ));
        }
        Ok(Self {
            issuer: IssuerUrl::new(issuer.to_owned())
                .map_err(|e| ConfigError::new(format!("issuer URL: {e}")))?,
            client_id: client_id.into(),
            client_secret: None,
            redirect_uri: RedirectUrl::new(redirect_uri.to_owned())
                .map_err(|e| ConfigError::new(format!("redirect URI: {e}")))?,
            state_key: state_key.to_vec(),
            scopes: Vec::new(),
            state_ttl: Duration::from_secs(600),
            http_client: None,
        })
    }

    /// The client secret (sent with HTTP Basic authentication to the token endpoint).
    /// Default: none (a public client, protected by PKCE alone).
    #[must_use]
    pub fn with_client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// Scopes asked for besides `openid` (default none: the flow needs only `sub`).
    #[must_use]
    pub fn with_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// How long a started sign-in may take (the browser-state lifetime; default 10 min).
    #[must_use]
    pub fn with_state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// The HTTP client for discovery and the token endpoint. Default: no redirects,
    /// 10 s timeout. A client given here should not follow redirects either.
    #[must_use]
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }
}

/// What [`OidcClient::begin`] hands the app.
#[derive(Clone)]
#[non_exhaustive]
pub struct LoginStart {
    /// Where to send the browser (303).
    pub authorization_url: String,
    /// The value of the short-lived cookie to set (authenticated; see the module docs).
    pub browser_state: String,
    /// The cookie's `Max-Age`.
    pub max_age: Duration,
}

impl fmt::Debug for LoginStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginStart")
            .field("authorization_url", &self.authorization_url)
            .field("browser_state", &"[redacted]")
            .field("max_age", &self.max_age)
            .finish()
    }
}

/// Who signed in: what the session records, and where to send the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OidcIdentity {
    /// `iss` of the ID token (the provider).
    pub issuer: String,
    /// `sub`: the user at the provider.
    pub subject: String,
    /// `sid`: the provider's session, when it sends one (back-channel logout names it).
    pub session_id: Option<String>,
    /// The local path given to `begin` (or `/`).
    pub return_to: String,
}

/// An OpenID Connect relying party for one provider. Cheap to share behind an `Arc`.
pub struct OidcClient {
    inner: InnerClient,
    http: reqwest::Client,
    state_key: Vec<u8>,
    scopes: Vec<String>,
    state_ttl: Duration,
    issuer: String,
    jwks_uri: String,
    end_session_endpoint: Option<String>,
    backchannel_logout_supported: bool,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.issuer)
            .field("client_id", &self.inner.client_id().as_str())
            .field("jwks_uri", &self.jwks_uri)
            .field("state_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// Fetches the provider's discovery document (`/.well-known/openid-configuration`
    /// under the issuer, whose `issuer` must be the configured one) and builds the client.
    pub async fn discover(config: OidcConfig) -> Result<Self, OidcError> {
        let http = match config.http_client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| OidcError::Discovery(e.without_url().to_string()))?,
        };
        let metadata = Metadata::discover_async(config.issuer.clone(), &http)
            .await
            .map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        let issuer = metadata.issuer().as_str().to_owned();
        let jwks_uri = metadata.jwks_uri().as_str().to_owned();
        let end_session_endpoint = metadata.additional_metadata().end_session_endpoint.clone();
        let backchannel_logout_supported = metadata
            .additional_metadata()
            .backchannel_logout_supported
            .unwrap_or(false);
        let inner = InnerClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id),
            config.client_secret.map(ClientSecret::new),
        )
        .set_redirect_uri(config.redirect_uri);
        Ok(Self {
            inner,
            http,
            state_key: config.state_key,
            scopes: config.scopes,
            state_ttl: config.state_ttl,
            issuer,
            jwks_uri,
            end_session_endpoint,
            backchannel_logout_supported,
        })
    }

    /// The provider's issuer, as its discovery document states it.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The provider's `jwks_uri` (for [`Jwks::url`](crate::jwks::Jwks::url), to check its
    /// logout tokens).
    #[must_use]
    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// The provider's `end_session_endpoint` (RP-initiated logout), if it has one.
    #[must_use]
    pub fn end_session_endpoint(&self) -> Option<&str> {
        self.end_session_endpoint.as_deref()
    }

    /// Whether the provider says it supports back-channel logout.
    #[must_use]
    pub fn backchannel_logout_supported(&self) -> bool {
        self.backchannel_logout_supported
    }

    /// Starts a sign-in: a fresh `state`, nonce and PKCE verifier (S256), the
    /// authorization URL carrying them, and the browser-state value binding them to this
    /// browser until `now + state_ttl`. `return_to` is kept if it is a local path, else `/`.
    pub fn begin(
        &self,
        return_to: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<LoginStart, OidcError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .inner
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let return_to = return_to.filter(|r| r.len() <= MAX_RETURN_TO);
        let sealed = BrowserState {
            s: state.secret().clone(),
            v: verifier.secret().clone(),
            n: nonce.secret().clone(),
            r: session_core::gate::local_redirect(return_to).to_owned(),
            e: (now + self.state_ttl).unix_timestamp(),
        }
        .seal(&self.state_key);
        Ok(LoginStart {
            authorization_url: url.to_string(),
            browser_state: sealed,
            max_age: self.state_ttl,
        })
    }

    /// Completes a sign-in from the callback's query string (`code` and `state`, or
    /// `error`) and the browser-state cookie value: checks the state, exchanges the code
    /// with the PKCE verifier, validates the ID token at `now` (signature, `iss`, `aud`,
    /// `exp`, nonce) and returns who signed in.
    pub async fn finish(
        &self,
        callback_query: &str,
        browser_state: &str,
        now: OffsetDateTime,
    ) -> Result<OidcIdentity, OidcError> {
        let callback = Callback::parse(callback_query)?;
        let saved = BrowserState::open(browser_state, &self.state_key, &callback.state, now)?;
        if callback
            .iss
            .as_deref()
            .is_some_and(|iss| iss != self.issuer)
        {
            return Err(OidcError::IssuerMismatch);
        }
        if let Some(error) = callback.error {
            return Err(OidcError::Provider {
                error,
                description: callback.error_description,
            });
        }
        let code = callback.code.ok_or(OidcError::MissingCode)?;
        let response = self
            .inner
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Discovery(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(saved.v))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    OidcError::CodeRejected(r.error().to_string())
                }
                other => OidcError::ProviderUnavailable(error_chain(&other)),
            })?;
        let id_token = response
            .extra_fields()
            .id_token()
            .ok_or(OidcError::MissingIdToken)?;
        let at = chrono::DateTime::from_timestamp(now.unix_timestamp(), 0).unwrap_or_default();
        let verifier = self.inner.id_token_verifier().set_time_fn(move || at);
        let claims = id_token
            .claims(&verifier, &Nonce::new(saved.n))
            .map_err(|e| OidcError::InvalidIdToken(e.to_string()))?;
        Ok(OidcIdentity {
            issuer: claims.issuer().as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            session_id: claims
                .additional_claims()
                .sid
                .clone()
                .filter(|s| !s.is_empty()),
            return_to: saved.r,
        })
    }
}

/// The callback's parameters (each at most once).
struct Callback {
    code: Option<String>,
    state: String,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

impl Callback {
    fn parse(query: &str) -> Result<Self, OidcError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query.trim_start_matches('?'))
                .map_err(|_| OidcError::MalformedCallback)?;
        let one = |name: &str| -> Result<Option<String>, OidcError> {
            let mut found = pairs.iter().filter(|(k, _)| k == name);
            match (found.next(), found.next()) {
                (None, _) => Ok(None),
                (Some((_, v)), None) => Ok(Some(v.clone())),
                (Some(_), Some(_)) => Err(OidcError::MalformedCallback),
            }
        };
        Ok(Self {
            code: one("code")?.filter(|c| !c.is_empty()),
            state: one("state")?
                .filter(|s| !s.is_empty())
                .ok_or(OidcError::MalformedCallback)?,
            error: one("error")?,
            error_description: one("error_description")?,
            iss: one("iss")?,
        })
    }
}

/// An error with its causes, for messages (none of which hold secrets).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
