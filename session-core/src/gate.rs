//! [`SessionGate`]: the whole per-request decision, shared by every framework adapter.
//!
//! An adapter implements [`RequestHead`] for its request type, calls
//! [`SessionGate::check`], and on [`Check::Load`] awaits [`SessionGate::finish`]. It then
//! either hands the [`Session`] to the handler or copies the [`Rejection`] into a response.

use std::sync::Arc;

use http::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::CookieConfig;
use crate::extract::{Presented, TokenSource, find_token};
use crate::manager::{Denial, Session, SessionManager};
use crate::rejection::{Rejection, RejectionCode};
use crate::token::VerifiedToken;

/// What the gate needs to read from a request, whatever the framework.
pub trait RequestHead {
    /// The raw values of every header named `name` (lowercase).
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]>;
    /// Whether the method is `GET` or `HEAD`.
    fn is_get(&self) -> bool;
    /// The path and query, as requested.
    fn path_and_query(&self) -> &str;
}

/// The gate's first answer.
#[derive(Debug)]
pub enum Check {
    /// Decided without the store (no token, a bad one, or a cache hit).
    Ready(Result<Option<Session>, Rejection>),
    /// The store must be asked: await [`SessionGate::finish`].
    Load(Pending),
}

/// What becomes of a checked request ([`SessionGate::verdict`]).
#[derive(Debug)]
pub enum Verdict {
    /// On to the handler, with this session in its extensions.
    Admit(Session),
    /// On to the handler without a session (optional mode), with this rejection in its
    /// extensions for the extractors.
    AdmitWithout(Rejection),
    /// Answered with this rejection; the handler never runs.
    Refuse(Rejection),
}

impl Verdict {
    fn failed(rejection: Rejection, optional: bool) -> Self {
        if optional {
            Self::AdmitWithout(rejection)
        } else {
            Self::Refuse(rejection)
        }
    }
}

/// A request waiting for a store load. Owns all it needs; borrows nothing.
#[derive(Debug)]
pub struct Pending {
    token: VerifiedToken,
    ctx: Context,
}

#[derive(Clone, Debug)]
struct Context {
    source: TokenSource,
    /// `Some(path)` for an HTML navigation that may be redirected to the login page.
    navigation: Option<String>,
}

const RETURN_TO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Reads tokens, validates them through the [`SessionManager`], and words rejections.
#[derive(Clone, Debug)]
pub struct SessionGate {
    inner: Arc<GateInner>,
}

#[derive(Clone, Debug)]
struct GateInner {
    manager: SessionManager,
    cookie: CookieConfig,
    accept_bearer: bool,
    login_url: Option<String>,
    retry_after: HeaderValue,
}

impl SessionGate {
    /// A gate for `manager` with the default cookie, bearer tokens accepted, no login
    /// redirect, `Retry-After: 1` on 503.
    #[must_use]
    pub fn new(manager: SessionManager) -> Self {
        Self::build(manager, CookieConfig::new(), true, None, 1)
    }

    fn build(
        manager: SessionManager,
        cookie: CookieConfig,
        accept_bearer: bool,
        login_url: Option<String>,
        retry_after: u32,
    ) -> Self {
        Self {
            inner: Arc::new(GateInner {
                manager,
                cookie,
                accept_bearer,
                login_url,
                retry_after: HeaderValue::from(retry_after),
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
    /// `login_url?return_to=PATH` with a 303 instead of a 401; the cookie is cleared all the
    /// same. Default: off.
    #[must_use]
    pub fn with_login_redirect(self, login_url: impl Into<String>) -> Self {
        let url = login_url.into();
        self.rebuild(|g| g.login_url = Some(url))
    }

    /// The `Retry-After` seconds on a 503. Default 1.
    #[must_use]
    pub fn with_retry_after(self, seconds: u32) -> Self {
        self.rebuild(|g| g.retry_after = HeaderValue::from(seconds))
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

    /// The `Set-Cookie` value delivering a new session's token.
    #[must_use]
    pub fn session_cookie(&self, token: &crate::SessionToken) -> HeaderValue {
        self.inner
            .cookie
            .set_cookie(token, self.inner.manager.config().ttl())
    }

    /// The first step for a request: finds and checks its token, answers from the cache
    /// when it can. Allocates nothing on a cache hit.
    pub fn check(&self, req: &impl RequestHead) -> Check {
        let presented = find_token(
            req.header_values("cookie"),
            req.header_values("authorization"),
            self.inner.cookie.name().as_bytes(),
            self.inner.accept_bearer,
        );
        let (source, token) = match presented {
            Presented::Nothing => return Check::Ready(Ok(None)),
            Presented::Malformed(source) => {
                return Check::Ready(Err(self.reject(Denial::Invalid, source, req)));
            }
            Presented::Token(source, token) => (source, token),
        };
        let manager = &self.inner.manager;
        let verified = match manager.verify(token) {
            Ok(v) => v,
            Err(denial) => return Check::Ready(Err(self.reject(denial, source, req))),
        };
        match manager.validate_cached(&verified) {
            Some(Ok(session)) => Check::Ready(Ok(Some(session))),
            Some(Err(denial)) => Check::Ready(Err(self.reject(denial, source, req))),
            None => Check::Load(Pending {
                token: verified,
                ctx: Context {
                    source,
                    navigation: self.navigation(req).map(str::to_owned),
                },
            }),
        }
    }

    /// The second step, when [`Check::Load`] said the store must be asked.
    ///
    /// # Errors
    ///
    /// The rejection to answer with.
    pub async fn finish(&self, pending: Pending) -> Result<Session, Rejection> {
        self.inner
            .manager
            .validate_loaded(&pending.token)
            .await
            .map_err(|denial| self.word(denial, &pending.ctx))
    }

    /// The rejection for a request that came without a session where one is required.
    #[must_use]
    pub fn missing(&self, req: &impl RequestHead) -> Rejection {
        self.reject(Denial::Missing, TokenSource::None, req)
    }

    /// What the middleware does with `req` once the check answered `answer`: where a
    /// session is `optional`, every request goes on (a failed check leaves its rejection
    /// for the extractors); otherwise only one with a session does.
    #[must_use]
    pub fn verdict(
        &self,
        answer: Result<Option<Session>, Rejection>,
        optional: bool,
        req: &impl RequestHead,
    ) -> Verdict {
        match answer {
            Ok(Some(session)) => Verdict::Admit(session),
            Ok(None) => Verdict::failed(self.missing(req), optional),
            Err(rejection) => Verdict::failed(rejection, optional),
        }
    }

    /// [`Self::finish`], then [`Self::verdict`] on its answer.
    pub async fn finish_verdict(&self, pending: Pending, optional: bool) -> Verdict {
        match self.finish(pending).await {
            Ok(session) => Verdict::Admit(session),
            Err(rejection) => Verdict::failed(rejection, optional),
        }
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

    fn reject(&self, denial: Denial, source: TokenSource, req: &impl RequestHead) -> Rejection {
        let navigation = self.navigation(req).map(str::to_owned);
        self.word(denial, &Context { source, navigation })
    }

    fn word(&self, denial: Denial, ctx: &Context) -> Rejection {
        let code = match denial {
            Denial::Missing => RejectionCode::SessionMissing,
            Denial::Invalid => RejectionCode::SessionInvalid,
            Denial::Expired => RejectionCode::SessionExpired,
            Denial::Revoked => RejectionCode::SessionRevoked,
            Denial::Unavailable(err) => {
                tracing::warn!(error = %err, "session store unavailable");
                return Rejection {
                    status: http::StatusCode::SERVICE_UNAVAILABLE,
                    code: RejectionCode::StoreUnavailable,
                    set_cookie: None,
                    www_authenticate: None,
                    location: None,
                    retry_after: Some(self.inner.retry_after.clone()),
                };
            }
        };
        let set_cookie =
            (ctx.source == TokenSource::Cookie).then(|| self.inner.cookie.removal().clone());
        let www_authenticate = match ctx.source {
            TokenSource::Bearer => {
                Some(HeaderValue::from_static(r#"Bearer error="invalid_token""#))
            }
            TokenSource::None if self.inner.accept_bearer => {
                Some(HeaderValue::from_static("Bearer"))
            }
            _ => None,
        };
        let location = match (&self.inner.login_url, &ctx.navigation) {
            (Some(login), Some(path)) if ctx.source != TokenSource::Bearer => {
                let sep = if login.contains('?') { '&' } else { '?' };
                let url = format!(
                    "{login}{sep}return_to={}",
                    utf8_percent_encode(path, RETURN_TO)
                );
                HeaderValue::try_from(url).ok()
            }
            _ => None,
        };
        Rejection {
            status: if location.is_some() {
                http::StatusCode::SEE_OTHER
            } else {
                http::StatusCode::UNAUTHORIZED
            },
            code,
            set_cookie,
            www_authenticate: if location.is_some() {
                None
            } else {
                www_authenticate
            },
            location,
            retry_after: None,
        }
    }
}

/// Why a handler's session extractor found no session.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Unextracted {
    /// The session was refused; answer with the adapter's rejection.
    Denied(Box<Rejection>),
    /// No session middleware ran for this route: a set-up mistake (500).
    MiddlewareMissing,
}

impl Unextracted {
    /// The text of the 500 for [`Unextracted::MiddlewareMissing`].
    pub const MIDDLEWARE_MISSING: &'static str =
        "no session middleware (SessionLayer / SessionCheck) ran for this route";
}

/// What a session extractor answers, from what the middleware left in the request's
/// extensions: the session, or the rejection it put there (optional mode), or nothing
/// (no middleware). `rejection` is looked up only when there is no session.
///
/// # Errors
///
/// [`Unextracted`] when there is no session.
pub fn extract_session<'r>(
    session: Option<&Session>,
    rejection: impl FnOnce() -> Option<&'r Rejection>,
) -> Result<Session, Unextracted> {
    if let Some(session) = session {
        return Ok(session.clone());
    }
    match rejection() {
        Some(rejection) => Err(Unextracted::Denied(Box::new(rejection.clone()))),
        None => Err(Unextracted::MiddlewareMissing),
    }
}

/// `target` if it is a local path safe to redirect to (one leading `/`, not `//`, no
/// scheme, no backslash, no control characters), else `/`. Stops open redirects.
#[must_use]
pub fn local_redirect(target: Option<&str>) -> &str {
    match target {
        Some(t)
            if t.starts_with('/')
                && !t.starts_with("//")
                && !t.contains('\\')
                && !t.chars().any(char::is_control) =>
        {
            t
        }
        _ => "/",
    }
}

impl<B> RequestHead for http::Request<B> {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        use http::header;
        // The names the gate asks for every request, as constants: no parsing per lookup.
        let name = match name {
            "cookie" => header::COOKIE,
            "authorization" => header::AUTHORIZATION,
            "accept" => header::ACCEPT,
            other => http::HeaderName::from_static(other),
        };
        self.headers()
            .get_all(name)
            .into_iter()
            .map(HeaderValue::as_bytes)
    }

    fn is_get(&self) -> bool {
        self.method() == http::Method::GET || self.method() == http::Method::HEAD
    }

    fn path_and_query(&self) -> &str {
        self.uri()
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::local_redirect;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        assert_eq!(local_redirect(Some("/sessions?x=1")), "/sessions?x=1");
        for bad in [
            "//evil.com",
            "https://evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "evil.com",
            "",
            "/\tx",
            "javascript:alert(1)",
        ] {
            assert_eq!(local_redirect(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_redirect(None), "/");
    }
}
