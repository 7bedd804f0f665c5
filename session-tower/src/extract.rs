//! axum extractors: [`ValidSession`] (required) and `Option<ValidSession>`.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use session_core::{Rejection, Session};

use crate::response::rejection_response;

/// The request's valid session. Rejects with the layer's answer (401, 303 or 503) when
/// there is none; use `Option<ValidSession>` where a session is optional.
#[derive(Clone, Debug)]
pub struct ValidSession(pub Session);

/// Why [`ValidSession`] could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The session was refused; the response is the layer's rejection.
    Denied(Rejection),
    /// No [`SessionLayer`](crate::SessionLayer) ran for this route: a set-up mistake (500).
    LayerMissing,
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Denied(rejection) => rejection_response(&rejection).into_response(),
            Self::LayerMissing => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "SessionLayer is missing for this route",
            )
                .into_response(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ValidSession {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(session) = parts.extensions.get::<Session>() {
            return Ok(Self(session.clone()));
        }
        match parts.extensions.get::<Rejection>() {
            Some(rejection) => Err(SessionRejection::Denied(rejection.clone())),
            None => Err(SessionRejection::LayerMissing),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ValidSession {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<Session>().cloned().map(Self))
    }
}
