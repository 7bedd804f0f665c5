//! [`SessionCheck`] and its middleware service.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::Error;
use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use futures_util::TryFutureExt as _;
use futures_util::future::{Either, LocalBoxFuture, MapOk};
use session_core::{Admission, GateCheck, GateMode, RequestHead, SessionGate};

use crate::response::rejection_response;

/// Checks every request's session. Wrap an `App` or a `Scope` with it.
///
/// By default a session is **required**: requests without a valid one get the rejection
/// and never reach the handler. [`SessionCheck::optional`] lets them through and leaves the
/// outcome for the extractors ([`ValidSession`](crate::ValidSession),
/// `Option<ValidSession>`).
///
/// Actix matches services in the order they are registered, and a `wrap` covers only what
/// it wraps: register public resources (the login form) first, then a scope wrapped in
/// the check.
///
/// ```
/// use std::sync::Arc;
/// use actix_web::{App, HttpResponse, test, web};
/// use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
/// use session_actix::{SessionCheck, ValidSession};
///
/// # #[actix_web::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let gate = SessionGate::new(manager);
/// let app = test::init_service(
///     App::new()
///         .route("/login", web::get().to(|| async { HttpResponse::Ok().body("the form") }))
///         .service(
///             web::scope("")
///                 .wrap(SessionCheck::new(gate))
///                 .route("/me", web::get().to(|ValidSession(s): ValidSession| async move {
///                     HttpResponse::Ok().body(s.user_id().to_string())
///                 })),
///         ),
/// )
/// .await;
/// let login = test::TestRequest::get().uri("/login").to_request();
/// assert_eq!(test::call_service(&app, login).await.status(), 200);
/// let me = test::TestRequest::get().uri("/me").to_request();
/// assert_eq!(test::call_service(&app, me).await.status(), 401);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SessionCheck {
    inner: Rc<Config>,
}

#[derive(Debug)]
struct Config {
    gate: SessionGate,
    mode: GateMode,
}

impl SessionCheck {
    /// Requires a valid session, checked by `gate`.
    pub fn new(gate: SessionGate) -> Self {
        Self {
            inner: Rc::new(Config {
                gate,
                mode: GateMode::REQUIRED,
            }),
        }
    }

    fn with_mode(self, f: impl FnOnce(&mut GateMode)) -> Self {
        let mut mode = self.inner.mode;
        f(&mut mode);
        Self {
            inner: Rc::new(Config {
                gate: self.inner.gate.clone(),
                mode,
            }),
        }
    }

    /// Lets requests without a valid session through (default: they are rejected). The
    /// handler's `ValidSession` extractor still rejects them; `Option<ValidSession>` gets
    /// `None`. A cross-site state change with the session cookie is refused all the same.
    pub fn optional(self) -> Self {
        self.with_mode(|m| m.optional = true)
    }

    /// Holds every state-changing request through this middleware to the cross-site rule,
    /// with or without a session cookie: wrap a login form's resource with it (login CSRF).
    /// Default: only requests that carry the session cookie.
    pub fn guard_forms(self) -> Self {
        self.with_mode(|m| m.guard_forms = true)
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionCheck
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = SessionCheckMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionCheckMiddleware {
            service: Rc::new(service),
            inner: self.inner.clone(),
        }))
    }
}

/// The per-service middleware built by [`SessionCheck`].
#[derive(Debug)]
pub struct SessionCheckMiddleware<S> {
    service: Rc<S>,
    inner: Rc<Config>,
}

/// The request as core's gate reads it.
struct Head<'a>(&'a ServiceRequest);

impl RequestHead for Head<'_> {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        use actix_web::http::header;
        // The names the gate asks for every request, as constants: no parsing per lookup.
        let name = match name {
            "cookie" => header::COOKIE,
            "authorization" => header::AUTHORIZATION,
            "accept" => header::ACCEPT,
            "host" => header::HOST,
            "origin" => header::ORIGIN,
            other => header::HeaderName::from_static(other),
        };
        self.0.headers().get_all(name).map(|v| v.as_bytes())
    }

    fn method(&self) -> &str {
        self.0.method().as_str()
    }

    fn client_ip(&self) -> Option<std::net::IpAddr> {
        // One of the app's own (a proxy it trusts) wins over the peer.
        self.0
            .extensions()
            .get::<session_core::ClientIp>()
            .map(|c| c.0)
            .or_else(|| self.0.peer_addr().map(|a| a.ip()))
    }

    fn path_and_query(&self) -> &str {
        self.0
            .uri()
            .path_and_query()
            .map_or("/", actix_web::http::uri::PathAndQuery::as_str)
    }
}

/// Carries out the gate's `admission` of `req`: on to the service with the session (or,
/// in optional mode, the rejection) in its extensions, or the rejection's response.
fn admit<B>(admission: Admission, req: ServiceRequest) -> Admitted<B> {
    match admission {
        Admission::Admit(session) => {
            req.extensions_mut().insert(session);
            Admitted::ToService(req)
        }
        Admission::AdmitWithout(rejection) => {
            req.extensions_mut().insert(rejection);
            Admitted::ToService(req)
        }
        Admission::Refuse(rejection) => Admitted::Refused(
            req.into_response(rejection_response(&rejection))
                .map_into_right_body(),
        ),
    }
}

/// What the gate made of a request.
enum Admitted<B> {
    /// On to the service.
    ToService(ServiceRequest),
    /// Answered with the rejection.
    Refused(ServiceResponse<EitherBody<B>>),
}

type Answer<B> = Result<ServiceResponse<EitherBody<B>>, Error>;

/// The future of [`SessionCheckMiddleware`]: the service's own future when the check was
/// decided without the store (no allocation), a ready rejection, or, on a cache miss
/// only, a boxed store load followed by the service.
pub type CheckFuture<F, B> = Either<
    Either<MapOk<F, fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B>>>, Ready<Answer<B>>>,
    LocalBoxFuture<'static, Answer<B>>,
>;

impl<S, B> Service<ServiceRequest> for SessionCheckMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = CheckFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let config = &self.inner;
        let admission = match config.gate.check(&Head(&req), config.mode) {
            GateCheck::Decided(admission) => admission,
            GateCheck::NeedsLoad(pending) => {
                let service = self.service.clone();
                let config = config.clone();
                return Either::Right(Box::pin(async move {
                    match admit(config.gate.finish(pending).await, req) {
                        Admitted::ToService(req) => service
                            .call(req)
                            .await
                            .map(ServiceResponse::map_into_left_body),
                        Admitted::Refused(rejected) => Ok(rejected),
                    }
                }));
            }
        };
        match admit(admission, req) {
            Admitted::ToService(req) => {
                Either::Left(Either::Left(self.service.call(req).map_ok(
                    ServiceResponse::map_into_left_body as fn(ServiceResponse<B>) -> _,
                )))
            }
            Admitted::Refused(rejected) => Either::Left(Either::Right(ready(Ok(rejected)))),
        }
    }
}
