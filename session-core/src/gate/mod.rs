//! [`SessionGate`]: the whole per-request decision, shared by every framework adapter.
//!
//! An adapter implements [`RequestHead`] for its request type, calls
//! [`SessionGate::check`], and on [`GateCheck::NeedsLoad`] awaits [`SessionGate::finish`].
//! It then carries out the [`Admission`]: hands the [`Session`] to the handler, or copies the
//! [`Rejection`] into a response.
//!
//! The decision, in order: a state-changing request that carries the session cookie and
//! comes from another site is refused (403, see [`SessionGate::is_cross_site`]); no token is
//! `session_missing`; a malformed or forged token is `session_invalid` without any lookup;
//! then the cache, then the store; a session presented on the wrong transport (an agent's
//! token in the cookie, a user's as a bearer) is `session_invalid`.

mod flows;
mod head;
mod origin;
mod redirect;

use std::sync::Arc;

use http::HeaderValue;

pub use head::{ClientIp, RequestHead};
pub use redirect::{local_redirect, sign_in_notice};

use crate::config::CookieConfig;
use crate::error::ConfigError;
use crate::extract::{Presented, TokenSource, find_token};
use crate::manager::SessionManager;
use crate::model::SessionKind;
use crate::rejection::{Rejection, RejectionCode};
use crate::session::{Refusal, Session};
use crate::token::VerifiedToken;

/// How a layer (or actix middleware) applies the gate to the requests it sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateMode {
    /// Let requests without a valid session through, with the rejection left for the
    /// extractors. Default: refuse them.
    pub optional: bool,
    /// Hold every state-changing request to the cross-site rule, with or without a
    /// session cookie (a login form: login CSRF). Default: only cookie-carrying ones.
    pub guard_forms: bool,
}

impl GateMode {
    /// A session is required (the default).
    pub const REQUIRED: Self = Self {
        optional: false,
        guard_forms: false,
    };

    /// The same, with [`GateMode::optional`] set.
    #[must_use]
    pub const fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The same, with [`GateMode::guard_forms`] set.
    #[must_use]
    pub const fn guarding_forms(mut self) -> Self {
        self.guard_forms = true;
        self
    }
}

/// The gate's first answer for a request.
#[derive(Debug)]
pub enum GateCheck {
    /// Decided without the store (no token, a bad one, a cross-site request, or a cache
    /// hit).
    Decided(Admission),
    /// The store must be asked: await [`SessionGate::finish`].
    NeedsLoad(PendingLoad),
}

/// What becomes of a checked request.
#[derive(Debug)]
pub enum Admission {
    /// On to the handler, with this session in its extensions.
    Admit(Session),
    /// On to the handler without a session (optional mode), with this rejection in its
    /// extensions for the extractors.
    AdmitWithout(Rejection),
    /// Answered with this rejection; the handler never runs.
    Refuse(Rejection),
}

/// A request waiting for a store load. Owns all it needs; borrows nothing.
#[derive(Debug)]
pub struct PendingLoad {
    token: VerifiedToken,
    ctx: Context,
    optional: bool,
    /// The request's risk-binding fingerprint (0 when binding is off or unknown).
    fingerprint: u32,
    /// The request's `session_check` span, closed when [`SessionGate::finish`] decides.
    span: Option<tracing::Span>,
}

#[derive(Clone, Debug)]
struct Context {
    source: TokenSource,
    /// `Some(path)` for an HTML navigation that may be redirected to the login page.
    navigation: Option<String>,
}

/// Reads tokens, validates them through the [`SessionManager`], and words rejections: the
/// whole per-request decision, shared by every framework adapter.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{
///     Admission, GateCheck, GateMode, KeySet, MemoryStore, SessionConfig, SessionGate,
///     SessionManager,
/// };
///
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let gate = SessionGate::new(manager).with_public_origin("https://app.example")?;
///
/// // No cookie: refused without any lookup.
/// let req = http::Request::get("/me").body(()).unwrap();
/// let GateCheck::Decided(Admission::Refuse(rejection)) = gate.check(&req, GateMode::REQUIRED) else {
///     panic!("refused at once")
/// };
/// assert_eq!(rejection.status(), 401);
///
/// // A cross-site form post with a cookie: 403 before the cookie is looked at.
/// let req = http::Request::post("/logout")
///     .header("cookie", "__Host-session=x")
///     .header("origin", "https://evil.example")
///     .body(())
///     .unwrap();
/// let GateCheck::Decided(Admission::Refuse(rejection)) = gate.check(&req, GateMode::REQUIRED) else {
///     panic!("refused at once")
/// };
/// assert_eq!(rejection.status(), 403);
/// assert_eq!(rejection.body(), r#"{"error":"cross_site_request"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SessionGate {
    inner: Arc<GateInner>,
}

#[derive(Clone)]
struct GateInner {
    manager: SessionManager,
    cookie: CookieConfig,
    accept_bearer: bool,
    login_url: Option<String>,
    retry_after: HeaderValue,
    retry_after_secs: u32,
    origins: origin::Origins,
    rejection_body: Option<crate::rejection::RejectionBody>,
    binding: crate::binding::BindingPolicy,
    outcomes: crate::metrics::Outcomes,
}

impl std::fmt::Debug for GateInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionGate")
            .field("manager", &self.manager)
            .field("cookie", &self.cookie.name())
            .field("accept_bearer", &self.accept_bearer)
            .field("login_url", &self.login_url)
            .field("retry_after", &self.retry_after_secs)
            .field("origins", &self.origins)
            .field("rejection_body", &self.rejection_body.is_some())
            .field("binding", &self.binding)
            .finish()
    }
}

impl SessionGate {
    /// A gate for `manager` with the default cookie, bearer tokens accepted (agents), no
    /// login redirect, `Retry-After: 1` on 503, and the request's own `Host` as the origin
    /// state changes may come from.
    #[must_use]
    pub fn new(manager: SessionManager) -> Self {
        Self {
            inner: Arc::new(GateInner {
                binding: manager.config().binding(),
                manager,
                cookie: CookieConfig::new(),
                accept_bearer: true,
                login_url: None,
                retry_after: HeaderValue::from(1u32),
                retry_after_secs: 1,
                origins: origin::Origins::default(),
                rejection_body: None,
                outcomes: crate::metrics::Outcomes::register(),
            }),
        }
    }

    fn rebuild(mut self, f: impl FnOnce(&mut GateInner)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// The session cookie's settings. Default: [`CookieConfig::new`].
    #[must_use]
    pub fn with_cookie(self, cookie: CookieConfig) -> Self {
        self.rebuild(|g| g.cookie = cookie)
    }

    /// Whether `Authorization: Bearer` tokens are accepted (agents). Default `true`.
    #[must_use]
    pub fn with_bearer(self, accept: bool) -> Self {
        self.rebuild(|g| g.accept_bearer = accept)
    }

    /// Sends refused HTML navigations (a `GET` whose `Accept` includes `text/html`) to
    /// `login_url?return_to=PATH` with a 303 instead of a 401, adding `&reason=CODE` when
    /// the session was revoked or expired, so the login page can say why; the cookie is
    /// cleared all the same. Default: off.
    #[must_use]
    pub fn with_login_redirect(self, login_url: impl Into<String>) -> Self {
        let url = login_url.into();
        self.rebuild(|g| g.login_url = Some(url))
    }

    /// The `Retry-After` seconds on a 503. Default 1.
    #[must_use]
    pub fn with_retry_after(self, seconds: u32) -> Self {
        self.rebuild(|g| {
            g.retry_after = HeaderValue::from(seconds);
            g.retry_after_secs = seconds;
        })
    }

    /// Shapes the body of every rejection (401, 403, 503; a redirect has none): `body`
    /// gets the rejection (its status and [`RejectionCode`]) and answers a content type and
    /// a body, or `None` to keep the default JSON `{"error": CODE}`. The status and headers
    /// (`Set-Cookie`, `WWW-Authenticate`, `Retry-After`) stay the gate's.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::http::HeaderValue;
    /// use session_core::{GateCheck, GateMode, Admission, KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
    ///
    /// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
    /// let gate = SessionGate::new(manager).with_rejection_body(|rejection| {
    ///     let page = format!("<h1>Please sign in</h1><p>{}</p>", rejection.code().as_str());
    ///     Some((HeaderValue::from_static("text/html; charset=utf-8"), page.into()))
    /// });
    /// let req = http::Request::get("/me").body(()).unwrap();
    /// let GateCheck::Decided(Admission::Refuse(rejection)) = gate.check(&req, GateMode::REQUIRED) else {
    ///     panic!("refused")
    /// };
    /// assert_eq!(rejection.status(), 401);
    /// assert_eq!(&rejection.body_bytes()[..], b"<h1>Please sign in</h1><p>session_missing</p>");
    /// assert!(rejection.headers().any(|(n, v)| n == "content-type" && v == "text/html; charset=utf-8"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_rejection_body(
        self,
        body: impl Fn(&Rejection) -> Option<(HeaderValue, bytes::Bytes)> + Send + Sync + 'static,
    ) -> Self {
        let body: crate::rejection::RejectionBody = Arc::new(body);
        self.rebuild(|g| g.rejection_body = Some(body))
    }

    fn shaped(&self, mut rejection: Rejection) -> Rejection {
        if let Some(shape) = &self.inner.rejection_body
            && rejection.location.is_none()
        {
            rejection.custom = shape(&rejection).map(Arc::new);
        }
        rejection
    }

    /// The app's own origin (`https://app.example`, as browsers send it in `Origin`):
    /// state-changing requests from any other origin are refused. Default: the request's
    /// `Host`, whatever the scheme.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] unless it is `scheme://host[:port]`.
    pub fn with_public_origin(self, origin: &str) -> Result<Self, ConfigError> {
        let origin = origin::normalize(origin)
            .ok_or(ConfigError::Invalid("public origin: scheme://host[:port]"))?;
        Ok(self.rebuild(|g| g.origins.own = Some(origin)))
    }

    /// Another origin state-changing requests may come from (a trusted sibling app).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] unless it is `scheme://host[:port]`.
    pub fn with_trusted_origin(self, origin: &str) -> Result<Self, ConfigError> {
        let origin = origin::normalize(origin)
            .ok_or(ConfigError::Invalid("trusted origin: scheme://host[:port]"))?;
        Ok(self.rebuild(|g| g.origins.trusted.push(origin)))
    }

    /// The manager.
    #[must_use]
    pub fn manager(&self) -> &SessionManager {
        &self.inner.manager
    }

    /// The cookie settings.
    pub fn cookie(&self) -> &CookieConfig {
        &self.inner.cookie
    }

    /// The `Retry-After` seconds on a 503.
    #[must_use]
    pub fn retry_after(&self) -> u32 {
        self.inner.retry_after_secs
    }

    /// The `Set-Cookie` value delivering a new session's token.
    #[must_use]
    pub fn session_cookie(&self, token: &crate::SessionToken) -> HeaderValue {
        self.inner
            .cookie
            .set_cookie(token, self.inner.manager.config().ttl())
    }

    /// The `Set-Cookie` value that deletes the session cookie.
    #[must_use]
    pub fn clear_cookie(&self) -> HeaderValue {
        self.inner.cookie.removal().clone()
    }

    /// The answer for a failed manager operation: 503 with `Retry-After` for the store
    /// (the cookie kept: an outage signs no one out), 404 for an unknown or someone else's
    /// session, 409 for a login that a revoke-all overtook, 403 for a deprovisioned user,
    /// the revoked-session rejection (cookie cleared) for an agent grant whose session
    /// ended.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::{KeySet, MemoryStore, SessionConfig, SessionError, SessionGate, SessionManager, StoreError};
    ///
    /// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
    /// let gate = SessionGate::new(manager).with_retry_after(5);
    /// let reply = gate.error_reply(&SessionError::Store(StoreError::Timeout));
    /// assert_eq!(reply.status, 503);
    /// assert_eq!(reply.header("retry-after").unwrap(), "5");
    /// assert_eq!(reply.body, r#"{"error":"session_store_unavailable"}"#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn error_reply(&self, err: &crate::SessionError) -> crate::Reply {
        use crate::reply::codes;
        use crate::{Reply, SessionError};
        use http::StatusCode;
        match err {
            SessionError::Store(e) => {
                tracing::warn!(error = %e, "session store unavailable");
                Reply::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    RejectionCode::StoreUnavailable.as_str(),
                )
                .with_header(http::header::RETRY_AFTER, self.inner.retry_after.clone())
            }
            SessionError::NotFound(_) => Reply::error(StatusCode::NOT_FOUND, codes::NOT_FOUND),
            SessionError::Superseded => Reply::error(StatusCode::CONFLICT, codes::LOGIN_SUPERSEDED),
            SessionError::UserDisabled => Reply::error(StatusCode::FORBIDDEN, codes::USER_DISABLED),
            SessionError::GrantorGone => Reply::error(
                StatusCode::UNAUTHORIZED,
                RejectionCode::SessionRevoked.as_str(),
            )
            .with_header(http::header::SET_COOKIE, self.clear_cookie()),
        }
    }

    /// Whether a state-changing `req` comes from another site (see the `origin` rules in
    /// the module docs); `false` for `GET` and `HEAD`.
    pub fn is_cross_site(&self, req: &impl RequestHead) -> bool {
        req.changes_state() && self.inner.origins.is_cross_site(req)
    }

    /// The first step for a request: the cross-site rule, then the token, then the cache.
    /// Allocates nothing on a cache hit.
    ///
    /// Each request is counted in `session_requests_total` once decided, and traced in a
    /// `session_check` span (level debug; fields `outcome` and `cache`, never the token).
    pub fn check(&self, req: &impl RequestHead, mode: GateMode) -> GateCheck {
        // No span at all unless a subscriber takes debug spans: a disabled span made by
        // `debug_span!` still carries its metadata, and with tracing's `log` feature on
        // (actix-web turns it on) every record and drop of it goes through the `log`
        // fallback, hundreds of instructions a request for a span nobody reads.
        let span = tracing::level_enabled!(tracing::Level::DEBUG).then(|| {
            tracing::debug_span!(
                "session_check",
                outcome = tracing::field::Empty,
                cache = tracing::field::Empty,
            )
        });
        let check = self.check_in(req, mode, span.as_ref());
        if let GateCheck::Decided(admission) = &check {
            self.settle(span.as_ref(), admission);
        }
        check
    }

    /// Counts a decided request and notes its outcome in its span.
    fn settle(&self, span: Option<&tracing::Span>, admission: &Admission) {
        let code = match admission {
            Admission::Admit(_) => None,
            Admission::AdmitWithout(r) | Admission::Refuse(r) => Some(r.code()),
        };
        let outcome = self.inner.outcomes.count(code);
        if let Some(span) = span {
            span.record("outcome", outcome);
        }
    }

    fn check_in(
        &self,
        req: &impl RequestHead,
        mode: GateMode,
        span: Option<&tracing::Span>,
    ) -> GateCheck {
        let presented = find_token(
            req.header_values("cookie"),
            req.header_values("authorization"),
            self.inner.cookie.name().as_bytes(),
            self.inner.accept_bearer,
        );
        let carries_cookie = matches!(
            presented,
            Presented::Token(TokenSource::Cookie, _) | Presented::Malformed(TokenSource::Cookie)
        );
        if (carries_cookie || mode.guard_forms) && self.is_cross_site(req) {
            return GateCheck::Decided(Admission::Refuse(self.cross_site()));
        }
        let (source, token) = match presented {
            Presented::Nothing => {
                let missing = self.reject(Refusal::Missing, TokenSource::None, req);
                return GateCheck::Decided(Self::failed(missing, mode.optional));
            }
            Presented::Malformed(source) => {
                let invalid = self.reject(Refusal::Invalid, source, req);
                return GateCheck::Decided(Self::failed(invalid, mode.optional));
            }
            Presented::Token(source, token) => (source, token),
        };
        let manager = &self.inner.manager;
        let verified = match manager.verify(token) {
            Ok(v) => v,
            Err(denial) => {
                let rejection = self.reject(denial, source, req);
                return GateCheck::Decided(Self::failed(rejection, mode.optional));
            }
        };
        let fingerprint = self.fingerprint(source, req);
        match manager.validate_cached(&verified) {
            Some(answer) => {
                if let Some(span) = span {
                    span.record("cache", "hit");
                }
                let answer = answer
                    .and_then(|s| Self::transport_fits(source, s))
                    .and_then(|s| self.bound(s, fingerprint))
                    .map_err(|denial| self.reject(denial, source, req));
                GateCheck::Decided(Self::admission(answer, mode.optional))
            }
            None => {
                if let Some(span) = span {
                    span.record("cache", "miss");
                }
                GateCheck::NeedsLoad(PendingLoad {
                    token: verified,
                    ctx: Context {
                        source,
                        navigation: self.navigation(req).map(str::to_owned),
                    },
                    optional: mode.optional,
                    fingerprint,
                    span: span.cloned(),
                })
            }
        }
    }

    /// The second step, when [`GateCheck::NeedsLoad`] said the store must be asked.
    pub async fn finish(&self, pending: PendingLoad) -> Admission {
        use tracing::Instrument as _;
        let answer = self
            .inner
            .manager
            .validate_loaded(&pending.token)
            .instrument(pending.span.clone().unwrap_or_else(tracing::Span::none))
            .await
            .and_then(|s| Self::transport_fits(pending.ctx.source, s))
            .and_then(|s| self.bound(s, pending.fingerprint))
            .map_err(|denial| self.rejection(denial, &pending.ctx));
        let admission = Self::admission(answer, pending.optional);
        self.settle(pending.span.as_ref(), &admission);
        admission
    }

    /// The request's risk-binding fingerprint: 0 (nothing to compare) unless binding is on
    /// and the request carries the session cookie (agents are not bound).
    fn fingerprint(&self, source: TokenSource, req: &impl RequestHead) -> u32 {
        if !self.inner.binding.is_on() || source != TokenSource::Cookie {
            return 0;
        }
        self.inner
            .binding
            .fingerprint32(req.client_ip(), req.first_header("user-agent"))
    }

    /// Risk binding: a session used from another network or browser family than it is
    /// bound to is reported (served, `session.suspicious` once per change) or revoked.
    fn bound(&self, session: Session, seen: u32) -> Result<Session, Refusal> {
        let bound = session.cached().binding();
        if seen == 0 || bound == 0 || bound == seen {
            return Ok(session);
        }
        match self.inner.binding.mode() {
            crate::binding::BindingMode::Revoke => {
                self.inner.manager.revoke_for_risk(&session);
                Err(Refusal::Revoked)
            }
            _ => {
                if session.cached().rebind(bound, seen) {
                    self.inner.manager.report_suspicious(&session);
                }
                Ok(session)
            }
        }
    }

    /// A credential's kind follows its transport: the cookie carries only user sessions,
    /// the bearer header only agent sessions.
    fn transport_fits(source: TokenSource, session: Session) -> Result<Session, Refusal> {
        match (source, session.kind()) {
            (TokenSource::Cookie, SessionKind::User)
            | (TokenSource::Bearer, SessionKind::Agent) => Ok(session),
            _ => Err(Refusal::Invalid),
        }
    }

    fn admission(answer: Result<Session, Rejection>, optional: bool) -> Admission {
        match answer {
            Ok(session) => Admission::Admit(session),
            Err(rejection) => Self::failed(rejection, optional),
        }
    }

    fn failed(rejection: Rejection, optional: bool) -> Admission {
        if optional {
            Admission::AdmitWithout(rejection)
        } else {
            Admission::Refuse(rejection)
        }
    }

    fn cross_site(&self) -> Rejection {
        self.shaped(Rejection {
            status: http::StatusCode::FORBIDDEN,
            code: RejectionCode::CrossSiteRequest,
            set_cookie: None,
            www_authenticate: None,
            location: None,
            retry_after: None,
            custom: None,
        })
    }

    fn navigation<'r>(&self, req: &'r impl RequestHead) -> Option<&'r str> {
        if self.inner.login_url.is_none() || !req.is_get() {
            return None;
        }
        let html = req.header_values("accept").any(|accept| {
            accept
                .windows(b"text/html".len())
                .any(|w| w.eq_ignore_ascii_case(b"text/html"))
        });
        html.then(|| req.path_and_query())
    }

    fn reject(&self, denial: Refusal, source: TokenSource, req: &impl RequestHead) -> Rejection {
        let navigation = self.navigation(req).map(str::to_owned);
        self.rejection(denial, &Context { source, navigation })
    }

    fn rejection(&self, denial: Refusal, ctx: &Context) -> Rejection {
        let code = match denial {
            Refusal::Missing => RejectionCode::SessionMissing,
            Refusal::Invalid => RejectionCode::SessionInvalid,
            Refusal::Expired => RejectionCode::SessionExpired,
            Refusal::Revoked => RejectionCode::SessionRevoked,
            Refusal::Unavailable(err) => {
                tracing::warn!(error = %err, "session store unavailable");
                return self.shaped(Rejection {
                    status: http::StatusCode::SERVICE_UNAVAILABLE,
                    code: RejectionCode::StoreUnavailable,
                    set_cookie: None,
                    www_authenticate: None,
                    location: None,
                    retry_after: Some(self.inner.retry_after.clone()),
                    custom: None,
                });
            }
        };
        let set_cookie =
            (ctx.source == TokenSource::Cookie).then(|| self.inner.cookie.removal().clone());
        let location = match (&self.inner.login_url, &ctx.navigation) {
            (Some(login), Some(path)) if ctx.source != TokenSource::Bearer => {
                let reason = matches!(
                    code,
                    RejectionCode::SessionRevoked | RejectionCode::SessionExpired
                )
                .then(|| code.as_str());
                HeaderValue::try_from(redirect::login_location(login, path, reason)).ok()
            }
            _ => None,
        };
        let www_authenticate = match (ctx.source, &location) {
            (_, Some(_)) => None,
            (TokenSource::Bearer, None) => {
                Some(HeaderValue::from_static(r#"Bearer error="invalid_token""#))
            }
            (TokenSource::None, None) if self.inner.accept_bearer => {
                Some(HeaderValue::from_static("Bearer"))
            }
            _ => None,
        };
        self.shaped(Rejection {
            status: if location.is_some() {
                http::StatusCode::SEE_OTHER
            } else {
                http::StatusCode::UNAUTHORIZED
            },
            code,
            set_cookie,
            www_authenticate,
            location,
            retry_after: None,
            custom: None,
        })
    }
}

/// What a session extractor answers when no session middleware ran for its route: a
/// set-up mistake, answered with a 500 and this text (logged once, as an error).
pub const MIDDLEWARE_MISSING: &str = "no session middleware ran for this route: add \
     session_tower::SessionLayer (axum: `.layer(..)` on the router or route) or \
     session_actix::SessionCheck (actix: `.wrap(..)` on the App, scope or resource) in front \
     of handlers that take a ValidSession";

/// What a session extractor answers, from what the middleware left in the request's
/// extensions: the session, or the rejection it put there (optional mode), or nothing
/// (no middleware). `rejection` is looked up only when there is no session.
///
/// # Errors
///
/// `Err(Some(rejection))` when the session was refused; `Err(None)` when no session
/// middleware ran (logged once: see [`MIDDLEWARE_MISSING`]).
pub fn extract_session<'r>(
    session: Option<&Session>,
    rejection: impl FnOnce() -> Option<&'r Rejection>,
) -> Result<Session, Option<Box<Rejection>>> {
    if let Some(session) = session {
        return Ok(session.clone());
    }
    match rejection() {
        Some(rejection) => Err(Some(Box::new(rejection.clone()))),
        None => {
            static LOGGED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::error!("{MIDDLEWARE_MISSING}");
            }
            Err(None)
        }
    }
}

#[cfg(test)]
mod binding_tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::*;
    use crate::binding::{BindingMode, BindingPolicy};
    use crate::events::AuditQuery;
    use crate::{ClientInfo, EventType, KeySet, MemoryStore, Principal, SessionConfig, UserId};

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
    const FIREFOX_NEXT: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:141.0) Gecko/20100101 Firefox/141.0";
    const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36";

    async fn gate(mode: BindingMode) -> (SessionGate, String, String) {
        let config = SessionConfig::new().with_binding(BindingPolicy::new(mode));
        let manager =
            SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), config).unwrap();
        let client = ClientInfo {
            user_agent: Some(FIREFOX.into()),
            ip: Some("198.51.100.7".into()),
        };
        let user = manager
            .issue(Principal::user("alice"), client.clone())
            .await
            .unwrap();
        let agent = manager
            .issue(Principal::agent("alice", "bot", "Bot"), client)
            .await
            .unwrap();
        (
            SessionGate::new(manager),
            user.token.expose().to_owned(),
            agent.token.expose().to_owned(),
        )
    }

    fn request(token: &str, ip: &str, ua: &str, bearer: bool) -> http::Request<()> {
        let mut b = http::Request::get("/me").header("user-agent", ua);
        b = if bearer {
            b.header("authorization", format!("Bearer {token}"))
        } else {
            b.header("cookie", format!("__Host-session={token}"))
        };
        let mut req = b.body(()).unwrap();
        req.extensions_mut()
            .insert(ClientIp(ip.parse::<IpAddr>().unwrap()));
        req
    }

    async fn admitted(gate: &SessionGate, req: &http::Request<()>) -> Result<Session, Rejection> {
        let admission = match gate.check(req, GateMode::REQUIRED) {
            GateCheck::Decided(a) => a,
            GateCheck::NeedsLoad(p) => gate.finish(p).await,
        };
        match admission {
            Admission::Admit(s) => Ok(s),
            Admission::Refuse(r) | Admission::AdmitWithout(r) => Err(r),
        }
    }

    async fn suspicious(gate: &SessionGate) -> usize {
        // The event is logged off the request path.
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.manager()
            .audit(&AuditQuery {
                user_id: UserId::from("alice"),
                before: None,
                limit: 100,
            })
            .await
            .unwrap()
            .iter()
            .filter(|e| e.event_type == EventType::Suspicious)
            .count()
    }

    #[tokio::test]
    async fn report_serves_and_logs_each_change_once() {
        let (gate, token, _) = gate(BindingMode::Report).await;
        // The same /24 and browser family, a newer version: nothing to say.
        admitted(
            &gate,
            &request(&token, "198.51.100.99", FIREFOX_NEXT, false),
        )
        .await
        .unwrap();
        assert_eq!(suspicious(&gate).await, 0);
        // Another network: served, reported once.
        for _ in 0..3 {
            admitted(&gate, &request(&token, "203.0.113.5", FIREFOX, false))
                .await
                .unwrap();
        }
        assert_eq!(suspicious(&gate).await, 1);
        // Then another browser family: one more.
        admitted(&gate, &request(&token, "203.0.113.5", CHROME, false))
            .await
            .unwrap();
        assert_eq!(suspicious(&gate).await, 2);
    }

    #[tokio::test]
    async fn revoke_refuses_and_the_session_stays_revoked() {
        let (gate, token, agent) = gate(BindingMode::Revoke).await;
        admitted(&gate, &request(&token, "198.51.100.8", FIREFOX, false))
            .await
            .unwrap();
        let refused = admitted(&gate, &request(&token, "198.51.100.8", CHROME, false))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), RejectionCode::SessionRevoked);
        assert!(refused.clears_cookie());
        // Back on the first browser: still revoked.
        let again = admitted(&gate, &request(&token, "198.51.100.8", FIREFOX, false))
            .await
            .unwrap_err();
        assert_eq!(again.code(), RejectionCode::SessionRevoked);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let audit = gate
            .manager()
            .audit(&AuditQuery {
                user_id: UserId::from("alice"),
                before: None,
                limit: 100,
            })
            .await
            .unwrap();
        let revoked = audit
            .iter()
            .find(|e| e.event_type == EventType::Revoked)
            .expect("the revocation is logged");
        assert_eq!(revoked.reason, Some(crate::RevocationReason::RiskDetected));
        assert_eq!(revoked.actor, crate::Actor::System);
        // Agents are not bound.
        admitted(&gate, &request(&agent, "192.0.2.1", CHROME, true))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn off_compares_nothing() {
        let (gate, token, _) = gate(BindingMode::Off).await;
        admitted(&gate, &request(&token, "192.0.2.1", CHROME, false))
            .await
            .unwrap();
        assert_eq!(suspicious(&gate).await, 0);
    }
}
