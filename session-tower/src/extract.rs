//! axum extractors: [`ValidSession`] (required) and `Option<ValidSession>`.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use session_core::{MIDDLEWARE_MISSING, Rejection, Session, extract_session};

use crate::response::rejection_response;

/// The request's valid session, from [`SessionLayer`](crate::SessionLayer). Without one,
/// answers with the layer's rejection (401, 303 or 503); `Option<ValidSession>` where a
/// session is optional.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, body::Body, routing::get};
/// use http::Request;
/// use session_core::{ClientInfo, KeySet, MemoryStore, Principal, SessionConfig, SessionGate, SessionManager};
/// use session_tower::{SessionLayer, ValidSession};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
/// let app = Router::new()
///     // Required: no session, no call; the layer's 401 answers instead.
///     .route("/me", get(|ValidSession(s): ValidSession| async move { s.user_id().to_string() }))
///     // Optional: the handler runs either way.
///     .route("/", get(|s: Option<ValidSession>| async move { if s.is_some() { "hello again" } else { "hello" } }))
///     .layer(SessionLayer::new(SessionGate::new(manager)).optional());
///
/// let cookie = format!("__Host-session={}", issued.token.expose());
/// let me = Request::get("/me").header("cookie", cookie).body(Body::empty())?;
/// assert_eq!(app.clone().oneshot(me).await?.status(), 200);
/// let anonymous = Request::get("/me").body(Body::empty())?;
/// assert_eq!(app.clone().oneshot(anonymous).await?.status(), 401);
/// let home = Request::get("/").body(Body::empty())?;
/// assert_eq!(app.oneshot(home).await?.status(), 200);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ValidSession(pub Session);

/// Why a [`ValidSession`] extraction failed; its response is the layer's rejection (401,
/// 303, 403 or 503), or a 500 when no [`SessionLayer`](crate::SessionLayer) ran for the
/// route (a set-up mistake, logged once).
///
/// ```
/// use axum::{Router, body::Body, routing::get};
/// use http::Request;
/// use session_tower::ValidSession;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The mistake this names: a route that takes a session, with no layer in front.
/// let app: Router = Router::new().route("/me", get(|ValidSession(s): ValidSession| async move { s.user_id().to_string() }));
/// let res = app.oneshot(Request::get("/me").body(Body::empty())?).await?;
/// assert_eq!(res.status(), 500);
/// let body = axum::body::to_bytes(res.into_body(), 1024).await?;
/// assert!(String::from_utf8_lossy(&body).contains("SessionLayer"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The layer refused the session.
    Refused(Box<Rejection>),
    /// No session layer ran for this route.
    MiddlewareMissing,
}

impl std::fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(r) => write!(f, "session refused: {}", r.code().as_str()),
            Self::MiddlewareMissing => f.write_str(MIDDLEWARE_MISSING),
        }
    }
}

impl std::error::Error for SessionRejection {}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Refused(rejection) => rejection_response::<axum::body::Body>(&rejection),
            Self::MiddlewareMissing => {
                (StatusCode::INTERNAL_SERVER_ERROR, MIDDLEWARE_MISSING).into_response()
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ValidSession {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let extensions = &parts.extensions;
        extract_session(extensions.get::<Session>(), || {
            extensions.get::<Rejection>()
        })
        .map(Self)
        .map_err(|refused| match refused {
            Some(rejection) => SessionRejection::Refused(rejection),
            None => SessionRejection::MiddlewareMissing,
        })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ValidSession {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<Session>().cloned().map(Self))
    }
}
