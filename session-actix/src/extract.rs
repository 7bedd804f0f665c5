//! actix-web extractors: [`ValidSession`] (required) and `Option<ValidSession>`.

use std::future::{Ready, ready};

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, dev::Payload};
use session_core::{Rejection, Session, Unextracted, extract_session};

use crate::response::rejection_response;

/// The request's valid session, from [`SessionCheck`](crate::SessionCheck). Without one,
/// fails with the middleware's rejection (401, 303 or 503); actix's `Option<ValidSession>`
/// where a session is optional.
#[derive(Clone, Debug)]
pub struct ValidSession(pub Session);

/// The error of a failed [`ValidSession`] extraction; its response is the rejection.
#[derive(Debug)]
pub struct SessionRejection(pub Unextracted);

impl std::fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Unextracted::Denied(r) => write!(f, "session refused: {}", r.code().as_str()),
            _ => f.write_str(Unextracted::MIDDLEWARE_MISSING),
        }
    }
}

impl ResponseError for SessionRejection {
    fn status_code(&self) -> StatusCode {
        match &self.0 {
            Unextracted::Denied(r) => {
                StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::UNAUTHORIZED)
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match &self.0 {
            Unextracted::Denied(r) => rejection_response(r),
            _ => HttpResponse::InternalServerError().body(Unextracted::MIDDLEWARE_MISSING),
        }
    }
}

impl FromRequest for ValidSession {
    type Error = SessionRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        ready(
            extract_session(extensions.get::<Session>(), || {
                extensions.get::<Rejection>()
            })
            .map(Self)
            .map_err(SessionRejection),
        )
    }
}
