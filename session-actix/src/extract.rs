//! actix-web extractors: [`ValidSession`] (required) and `Option<ValidSession>`.

use std::future::{Ready, ready};

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, dev::Payload};
use session_core::{MIDDLEWARE_MISSING, Rejection, Session, extract_session};

use crate::response::rejection_response;

/// The request's valid session, from [`SessionCheck`](crate::SessionCheck). Without one,
/// fails with the middleware's rejection (401, 303 or 503); actix's `Option<ValidSession>`
/// where a session is optional.
///
/// ```
/// use std::sync::Arc;
/// use actix_web::{App, HttpResponse, test, web};
/// use session_core::{ClientInfo, KeySet, MemoryStore, Principal, SessionConfig, SessionGate, SessionManager};
/// use session_actix::{SessionCheck, ValidSession};
///
/// # #[actix_web::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
/// let app = test::init_service(
///     App::new()
///         .wrap(SessionCheck::new(SessionGate::new(manager)).optional())
///         // Required: without a session, the middleware's 401.
///         .route("/me", web::get().to(|ValidSession(s): ValidSession| async move {
///             HttpResponse::Ok().body(s.user_id().to_string())
///         }))
///         // Optional: the handler runs either way.
///         .route("/", web::get().to(|s: Option<ValidSession>| async move {
///             HttpResponse::Ok().body(if s.is_some() { "hello again" } else { "hello" })
///         })),
/// )
/// .await;
/// let cookie = ("cookie", format!("__Host-session={}", issued.token.expose()));
/// let me = test::TestRequest::get().uri("/me").insert_header(cookie).to_request();
/// assert_eq!(test::call_and_read_body(&app, me).await, "alice");
/// let anonymous = test::TestRequest::get().uri("/me").to_request();
/// assert_eq!(test::call_service(&app, anonymous).await.status(), 401);
/// let home = test::TestRequest::get().uri("/").to_request();
/// assert_eq!(test::call_and_read_body(&app, home).await, "hello");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ValidSession(pub Session);

/// Why a [`ValidSession`] extraction failed; its response is the middleware's rejection
/// (401, 303, 403 or 503), or a 500 when no [`SessionCheck`](crate::SessionCheck) ran for
/// the route (a set-up mistake, logged once).
///
/// ```
/// use actix_web::{App, HttpResponse, test, web};
/// use session_actix::ValidSession;
///
/// # #[actix_web::main]
/// # async fn main() {
/// // The mistake this names: a route that takes a session, with no middleware in front.
/// let app = test::init_service(App::new().route("/me", web::get().to(|ValidSession(s): ValidSession| async move {
///     HttpResponse::Ok().body(s.user_id().to_string())
/// })))
/// .await;
/// let res = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
/// assert_eq!(res.status(), 500);
/// let body = test::read_body(res).await;
/// assert!(String::from_utf8_lossy(&body).contains("SessionCheck"));
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The middleware refused the session.
    Refused(Box<Rejection>),
    /// No session middleware ran for this route.
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

impl ResponseError for SessionRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Refused(r) => {
                StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::UNAUTHORIZED)
            }
            Self::MiddlewareMissing => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Refused(r) => rejection_response(r),
            Self::MiddlewareMissing => HttpResponse::InternalServerError().body(MIDDLEWARE_MISSING),
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
            .map_err(|refused| match refused {
                Some(rejection) => SessionRejection::Refused(rejection),
                None => SessionRejection::MiddlewareMissing,
            }),
        )
    }
}
