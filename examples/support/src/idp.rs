//! The identity-provider routes of the example apps, declared once in the route table that
//! both apps mount: single sign-on (`GET /login/oidc`, `GET /oidc/callback`), OpenID
//! Connect back-channel logout (`POST /oidc/backchannel-logout`) and SCIM deprovisioning
//! (`PATCH` and `DELETE /scim/v2/Users/{id}`).
//!
//! The standards' checks live in `session-idp`; the session decisions (issue, revoke,
//! disable) in `session-core`. This module only joins them: it reads the request from a
//! [`Call`], asks `session-idp` whether it is valid, and tells the session manager what to
//! do, so neither adapter holds any of it.

pub(crate) mod openapi;

use std::sync::Arc;

use serde::Deserialize;
use session_core::http::{self, HeaderValue, Method, StatusCode, header};
use session_core::{
    Actor, IdpLink, Reply, RevocationReason, RevokeScope, SessionError, SessionFilter, UserId,
};
use session_idp::backchannel::{
    LogoutToken, LogoutTokenValidator, logout_error, logout_ok, parse_logout_request,
};
use session_idp::jwks::Jwks;
use session_idp::oidc::{OidcClient, OidcConfig, OidcError};
use session_idp::replay::replay_guard_fn;
use session_idp::scim::{ActiveChange, ScimError, ScimUser, is_scim_content_type, parse_patch};
use session_idp::token::TokenError;
use session_selfservice::{Access, Call, Route, RouteTable};
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use crate::{Demo, Notice, Users};

/// The label under which the browser-state key is derived from the session keys: the
/// sign-in state must survive a restart and work on every instance sharing `SESSION_KEYS`,
/// without a variable of its own.
const STATE_KEY_LABEL: &[u8] = b"example-support/oidc-browser-state";

/// The path the provider sends the browser back to, under `PUBLIC_URL`.
pub(crate) const CALLBACK_PATH: &str = "/oidc/callback";

/// The provider's side of single sign-on, discovered on first use: the app starts (and
/// serves password logins) even while the provider is unreachable, and a later request
/// discovers it then.
pub(crate) struct Provider {
    config: OidcConfig,
    client_id: String,
    discovered: OnceCell<Discovered>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("config", &self.config)
            .field("discovered", &self.discovered.initialized())
            .finish()
    }
}

struct Discovered {
    client: OidcClient,
    logout: LogoutTokenValidator,
}

impl Provider {
    /// The provider of `demo`'s settings, if single sign-on is configured.
    ///
    /// # Errors
    ///
    /// A message naming `OIDC_ISSUER` or `PUBLIC_URL` when the client cannot be configured.
    pub(crate) fn from_settings(settings: &crate::Settings) -> Result<Option<Arc<Self>>, String> {
        let (Some(oidc), Some(public_url)) = (&settings.oidc, &settings.public_url) else {
            return Ok(None);
        };
        let key = settings.keys.tag(STATE_KEY_LABEL, b"");
        let config = OidcConfig::new(
            &oidc.issuer,
            &oidc.client_id,
            &format!("{public_url}{CALLBACK_PATH}"),
            &key,
        )
        .map_err(|e| format!("OIDC_ISSUER / PUBLIC_URL: {e}"))?
        .with_client_secret(&oidc.client_secret);
        Ok(Some(Arc::new(Self {
            config,
            client_id: oidc.client_id.clone(),
            discovered: OnceCell::new(),
        })))
    }

    async fn discovered(&self, demo: &Demo) -> Result<&Discovered, OidcError> {
        self.discovered
            .get_or_try_init(|| async {
                let client = OidcClient::discover(self.config.clone()).await?;
                // Each `jti` once, across every instance sharing the store.
                let store = demo.gate.manager().store().clone();
                let replay = replay_guard_fn(move |key: String, until: OffsetDateTime| {
                    let store = store.clone();
                    async move { store.first_use(&key, until).await }
                });
                let logout = LogoutTokenValidator::new(
                    client.issuer(),
                    &self.client_id,
                    Jwks::url(client.jwks_uri()),
                    replay,
                );
                Ok(Discovered { client, logout })
            })
            .await
    }
}

/// The routes this module adds to `demo`'s table: single sign-on and back-channel logout
/// when the provider is configured, SCIM when `SCIM_TOKEN` is. Each route carries its
/// OpenAPI description.
pub(crate) fn routes(demo: &Demo) -> RouteTable {
    let mut table = RouteTable::new(demo.gate.clone());
    if demo.idp.is_some() {
        table = table
            .route(
                route(
                    demo,
                    Method::GET,
                    "/login/oidc",
                    Access::Form,
                    "oidc_login",
                    |d, c| Box::pin(async move { d.oidc_login(&c).await }),
                )
                .html(),
            )
            .route(
                route(
                    demo,
                    Method::GET,
                    CALLBACK_PATH,
                    Access::Form,
                    "oidc_callback",
                    |d, c| Box::pin(async move { d.oidc_callback(&c).await }),
                )
                .html(),
            )
            .route(
                route(
                    demo,
                    Method::POST,
                    "/oidc/backchannel-logout",
                    Access::Public,
                    "oidc_backchannel_logout",
                    |d, c| Box::pin(async move { d.backchannel_logout(&c).await }),
                )
                .documented(openapi::backchannel_logout),
            );
    }
    if let Some(token) = demo.settings.scim_token.clone() {
        let guard = Access::Guarded(Arc::new(move |call: &Call| {
            if token.matches(&call.headers) {
                Ok(())
            } else {
                Err(from_http(ScimError::unauthorized().into_response()))
            }
        }));
        table = table
            .route(
                route(
                    demo,
                    Method::PATCH,
                    "/scim/v2/Users/{id}",
                    guard.clone(),
                    "scim_patch_user",
                    |d, c| Box::pin(async move { d.scim_patch(&c).await }),
                )
                .documented(openapi::scim_patch_user_op),
            )
            .route(
                route(
                    demo,
                    Method::DELETE,
                    "/scim/v2/Users/{id}",
                    guard,
                    "scim_delete_user",
                    |d, c| Box::pin(async move { d.scim_delete(&c).await }),
                )
                .documented(openapi::scim_delete_user_op),
            );
    }
    table
}

type Handler = fn(Demo, Call) -> session_selfservice::table::OpFuture;

fn route(
    demo: &Demo,
    method: Method,
    path: &str,
    access: Access,
    operation_id: &'static str,
    handler: Handler,
) -> Route {
    let demo = demo.clone();
    Route::new(method, path, access, operation_id, move |call: Call| {
        handler(demo.clone(), call)
    })
}

/// `GET /login/oidc?return_to=…`.
#[derive(Debug, Default, Deserialize)]
struct OidcLoginQuery {
    return_to: Option<String>,
}

impl Demo {
    /// The name of the cookie that binds a started sign-in to this browser: `__Host-`
    /// prefixed while the session cookie is `Secure`, like it.
    fn oidc_cookie_name(&self) -> &'static str {
        if self.settings.cookie.name().starts_with("__Host-") {
            "__Host-oidc-state"
        } else {
            "oidc-state"
        }
    }

    fn oidc_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let name = self.oidc_cookie_name();
        let secure = if name.starts_with("__Host-") {
            "; Secure"
        } else {
            ""
        };
        // SameSite=Lax: the callback is a top-level navigation from the provider's site.
        HeaderValue::try_from(format!(
            "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        ))
        .unwrap_or(HeaderValue::from_static("oidc-state=; Max-Age=0"))
    }

    /// `GET /login/oidc`: 303 to the provider, with the browser-state cookie.
    async fn oidc_login(&self, call: &Call) -> Reply {
        let Some(provider) = &self.idp else {
            return not_found();
        };
        let query: OidcLoginQuery = call.query_as().unwrap_or_default();
        let start = match provider.discovered(self).await.and_then(|d| {
            d.client
                .begin(query.return_to.as_deref(), OffsetDateTime::now_utc())
        }) {
            Ok(start) => start,
            Err(e) => return self.sso_failed(&e),
        };
        let location = HeaderValue::try_from(start.authorization_url.as_str())
            .unwrap_or(HeaderValue::from_static("/login"));
        Reply::empty(StatusCode::SEE_OTHER)
            .with_header(header::LOCATION, location)
            .with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
            .with_header(
                header::SET_COOKIE,
                self.oidc_cookie(&start.browser_state, start.max_age.as_secs()),
            )
    }

    /// `GET /oidc/callback`: checks the state, the code and the ID token, then signs the
    /// provider's `sub` in, recording `iss`, `sub` and `sid` so the provider can end the
    /// session. The state cookie is cleared whatever the outcome: it is single-use.
    async fn oidc_callback(&self, call: &Call) -> Reply {
        let Some(provider) = &self.idp else {
            return not_found();
        };
        let clear = self.oidc_cookie("", 0);
        let state = cookie_value(call, self.oidc_cookie_name()).unwrap_or_default();
        let identity = match provider.discovered(self).await {
            Ok(d) => {
                d.client
                    .finish(call.query(), &state, OffsetDateTime::now_utc())
                    .await
            }
            Err(e) => Err(e),
        };
        let identity = match identity {
            Ok(identity) => identity,
            Err(e) => return self.sso_failed(&e).with_header(header::SET_COOKIE, clear),
        };
        let user = UserId::from(identity.subject.as_str());
        let reply = match self.gate.manager().login_epoch(&user).await {
            Ok(epoch) => {
                let link = IdpLink {
                    issuer: identity.issuer,
                    subject: identity.subject,
                    sid: identity.session_id,
                };
                self.gate
                    .sign_in_via_idp(
                        epoch,
                        user,
                        link,
                        call.client_info(),
                        Some(&identity.return_to),
                        call.session.as_ref(),
                    )
                    .await
            }
            Err(e) => self.gate.error_reply(&e),
        };
        let reply = if reply.status == StatusCode::FORBIDDEN {
            self.login_form(StatusCode::FORBIDDEN, None, Notice::Disabled)
        } else {
            reply
        };
        reply.with_header(header::SET_COOKIE, clear)
    }

    /// The login page again, saying single sign-on failed; the status is the library's
    /// (400 for a bad or replayed callback, 502 when the provider failed us). The reason
    /// goes to the log, without any token or code.
    fn sso_failed(&self, err: &OidcError) -> Reply {
        tracing::info!(error = %err, "single sign-on failed");
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
        self.login_form(status, None, Notice::SsoFailed)
    }

    /// `POST /oidc/backchannel-logout`: a valid logout token revokes the sessions it
    /// names, only those signed in through the provider; anything else is a 400 and
    /// revokes nothing.
    async fn backchannel_logout(&self, call: &Call) -> Reply {
        let Some(provider) = &self.idp else {
            return not_found();
        };
        let content_type = content_type(call);
        let token = match parse_logout_request(content_type, &call.body) {
            Ok(token) => token,
            Err(e) => return from_http(logout_error(&e)),
        };
        let validated = match provider.discovered(self).await {
            Ok(d) => d.logout.validate(&token, OffsetDateTime::now_utc()).await,
            Err(e) => {
                // Ours, not the token's: say so (`temporarily_unavailable`), judge nothing.
                tracing::warn!(error = %e, "back-channel logout: provider discovery failed");
                return from_http(logout_error(&TokenError::JwksUnavailable(e.to_string())));
            }
        };
        let logout = match validated {
            Ok(logout) => logout,
            Err(e) => {
                tracing::info!(error = %e, "back-channel logout refused");
                return from_http(logout_error(&e));
            }
        };
        match revoke_logout(self, &logout).await {
            Ok(n) => {
                tracing::info!(revoked = n, "back-channel logout");
                from_http(logout_ok())
            }
            Err(e) => self
                .gate
                .error_reply(&e)
                .with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        }
    }

    /// `PATCH /scim/v2/Users/{id}`: `active` false deprovisions (revokes every session and
    /// agent, refuses logins), true lets the user in again.
    async fn scim_patch(&self, call: &Call) -> Reply {
        let id = call.param("id").unwrap_or_default();
        if !Users::exists(id) {
            return from_http(ScimError::not_found(id).into_response());
        }
        let content_type = content_type(call);
        if !is_scim_content_type(content_type) {
            return from_http(
                ScimError::new(415, None, "The body must be application/scim+json").into_response(),
            );
        }
        let change = match parse_patch(&call.body) {
            Ok(change) => change,
            Err(e) => return from_http(e.into_response()),
        };
        let user = UserId::from(id);
        let manager = self.gate.manager();
        let active = match change {
            ActiveChange::Deactivate => manager.disable_user(&user, Actor::Idp).await.map(|n| {
                tracing::info!(user = %user, revoked = n, "SCIM deprovisioned");
                false
            }),
            ActiveChange::Activate => manager.enable_user(&user).await.map(|()| true),
            _ => manager
                .is_user_disabled(&user)
                .await
                .map(|disabled| !disabled),
        };
        match active {
            Ok(active) => from_http(ScimUser::new(id, id, active).into_response(200)),
            Err(e) => self.gate.error_reply(&e),
        }
    }

    /// `DELETE /scim/v2/Users/{id}`: a deactivation (there is no user store to delete
    /// from), 204.
    async fn scim_delete(&self, call: &Call) -> Reply {
        let id = call.param("id").unwrap_or_default();
        if !Users::exists(id) {
            return from_http(ScimError::not_found(id).into_response());
        }
        match self
            .gate
            .manager()
            .disable_user(&UserId::from(id), Actor::Idp)
            .await
        {
            Ok(n) => {
                tracing::info!(user = %id, revoked = n, "SCIM deprovisioned (DELETE)");
                Reply::empty(StatusCode::NO_CONTENT)
            }
            Err(e) => self.gate.error_reply(&e),
        }
    }
}

/// Revokes what a valid logout token names: with a `sub` (the app's user name), that
/// user's sessions from this provider, narrowed to one provider session by `sid`; with
/// only a `sid`, the sessions of any user signed in under it. Password sessions have no
/// provider link and so are never in scope.
async fn revoke_logout(demo: &Demo, logout: &LogoutToken) -> Result<usize, SessionError> {
    let manager = demo.gate.manager();
    let (reason, actor) = (RevocationReason::IdpLogout, Actor::Idp);
    match &logout.subject {
        Some(subject) => {
            let scope = RevokeScope::Idp {
                issuer: logout.issuer.clone(),
                subject: Some(subject.clone()),
                sid: logout.session_id.clone(),
            };
            manager
                .revoke_all(&UserId::from(subject.as_str()), scope, None, reason, actor)
                .await
        }
        None => {
            let filter = SessionFilter {
                idp_issuer: Some(logout.issuer.clone()),
                idp_sid: logout.session_id.clone(),
                ..SessionFilter::default()
            };
            let matched = manager
                .revoke_matching(&filter, reason, actor, false)
                .await?;
            Ok(matched.revoked.len())
        }
    }
}

/// The request's `Content-Type`, if it is text.
pub(crate) fn content_type(call: &Call) -> Option<&str> {
    call.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// The value of cookie `name` in the request, if it was sent once.
fn cookie_value(call: &Call, name: &str) -> Option<String> {
    let mut found = call
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned());
    match (found.next(), found.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

/// A `session-idp` answer (SCIM body, back-channel logout answer) as a [`Reply`].
pub(crate) fn from_http(response: http::Response<String>) -> Reply {
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        body,
    }
}

fn not_found() -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        session_selfservice::views::codes::NOT_FOUND,
    )
}
