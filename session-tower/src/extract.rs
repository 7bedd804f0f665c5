//! axum extractors: [`ValidSession`] (required) and `Option<ValidSession>`.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use session_core::{Rejection, Session, Unextracted, extract_session};

use crate::response::rejection_response;

/// The request's valid session, from [`SessionLayer`](crate::SessionLayer). Without one,
/// answers with the layer's rejection (401, 303 or 503); `Option<ValidSession>` where a
/// session is optional.
#[derive(Clone, Debug)]
pub struct ValidSession(pub Session);

/// The response of a failed [`ValidSession`] extraction.
#[derive(Debug)]
pub struct SessionRejection(pub Unextracted);

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match self.0 {
            Unextracted::Denied(rejection) => rejection_response::<axum::body::Body>(&rejection),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Unextracted::MIDDLEWARE_MISSING,
            )
                .into_response(),
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
        .map_err(SessionRejection)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ValidSession {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<Session>().cloned().map(Self))
    }
}
