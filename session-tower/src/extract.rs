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
#[derive(Clone, Debug)]
pub struct ValidSession(pub Session);

/// Why a [`ValidSession`] extraction failed; its response is the layer's rejection (401,
/// 303, 403 or 503), or a 500 when no [`SessionLayer`](crate::SessionLayer) ran for the
/// route (a set-up mistake, logged once).
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
