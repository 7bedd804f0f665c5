//! actix-web extractors: [`ValidSession`] (required) and `Option<ValidSession>`.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, dev::Payload};
use session_core::{Rejection, Session};

use crate::response::rejection_response;

/// The request's valid session. Rejects with the middleware's answer (401, 303 or 503)
/// when there is none; `Option<ValidSession>` where a session is optional.
#[derive(Clone, Debug)]
pub struct ValidSession(pub Session);

/// Why [`ValidSession`] could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The session was refused; the response is the middleware's rejection.
    Denied(Rejection),
    /// No [`SessionCheck`](crate::SessionCheck) wraps this route: a set-up mistake (500).
    MiddlewareMissing,
}

impl std::fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(r) => write!(f, "session refused: {}", r.code().as_str()),
            Self::MiddlewareMissing => f.write_str("SessionCheck is missing for this route"),
        }
    }
}

impl ResponseError for SessionRejection {
    fn status_code(&self) -> actix_web::http::StatusCode {
        match self {
            Self::Denied(r) => actix_web::http::StatusCode::from_u16(r.status().as_u16())
                .unwrap_or(actix_web::http::StatusCode::UNAUTHORIZED),
            Self::MiddlewareMissing => actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Denied(r) => rejection_response(r),
            Self::MiddlewareMissing => HttpResponse::InternalServerError().body(self.to_string()),
        }
    }
}

impl FromRequest for ValidSession {
    type Error = SessionRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        ready(if let Some(session) = extensions.get::<Session>() {
            Ok(Self(session.clone()))
        } else if let Some(rejection) = extensions.get::<Rejection>() {
            Err(SessionRejection::Denied(rejection.clone()))
        } else {
            Err(SessionRejection::MiddlewareMissing)
        })
    }
}
