//! [`SessionCheck`] and its middleware service.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::Error;
use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use futures_util::TryFutureExt as _;
use futures_util::future::{Either, LocalBoxFuture, MapOk};
use session_core::{Check, RequestHead, SessionGate, Verdict};

use crate::response::rejection_response;

/// Checks every request's session. Wrap an `App` or a `Scope` with it.
///
/// By default a session is **required**: requests without a valid one get the rejection
/// and never reach the handler. [`SessionCheck::optional`] lets them through and leaves the
/// outcome for the extractors ([`ValidSession`](crate::ValidSession),
/// `Option<ValidSession>`).
#[derive(Clone, Debug)]
#[must_use]
pub struct SessionCheck {
    inner: Rc<Config>,
}

#[derive(Debug)]
struct Config {
    gate: SessionGate,
    optional: bool,
}

impl SessionCheck {
    /// Requires a valid session, checked by `gate`.
    pub fn new(gate: SessionGate) -> Self {
        Self {
            inner: Rc::new(Config {
                gate,
                optional: false,
            }),
        }
    }

    /// Lets requests without a valid session through (default: they are rejected).
    pub fn optional(self) -> Self {
        Self {
            inner: Rc::new(Config {
                gate: self.inner.gate.clone(),
                optional: true,
            }),
        }
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
            other => header::HeaderName::from_static(other),
        };
        self.0.headers().get_all(name).map(|v| v.as_bytes())
    }

    fn is_get(&self) -> bool {
        matches!(self.0.method().as_str(), "GET" | "HEAD")
    }

    fn path_and_query(&self) -> &str {
        self.0
            .uri()
            .path_and_query()
            .map_or("/", actix_web::http::uri::PathAndQuery::as_str)
    }
}

/// Carries out the check's `verdict` on `req`: on to the service with the session (or, in
/// optional mode, the rejection) in its extensions, or the rejection's response.
fn carry_out<B>(verdict: Verdict, req: ServiceRequest) -> Passed<B> {
    match verdict {
        Verdict::Admit(session) => {
            req.extensions_mut().insert(session);
            Passed::On(req)
        }
        Verdict::AdmitWithout(rejection) => {
            req.extensions_mut().insert(rejection);
            Passed::On(req)
        }
        Verdict::Refuse(rejection) => Passed::Rejected(
            req.into_response(rejection_response(&rejection))
                .map_into_right_body(),
        ),
    }
}

/// What the check made of a request.
enum Passed<B> {
    /// On to the service.
    On(ServiceRequest),
    /// Answered with the rejection.
    Rejected(ServiceResponse<EitherBody<B>>),
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
        let verdict = match config.gate.check(&Head(&req)) {
            Check::Ready(answer) => config.gate.verdict(answer, config.optional, &Head(&req)),
            Check::Load(pending) => {
                let service = self.service.clone();
                let config = config.clone();
                return Either::Right(Box::pin(async move {
                    let verdict = config.gate.finish_verdict(pending, config.optional).await;
                    match carry_out(verdict, req) {
                        Passed::On(req) => service
                            .call(req)
                            .await
                            .map(ServiceResponse::map_into_left_body),
                        Passed::Rejected(rejected) => Ok(rejected),
                    }
                }));
            }
        };
        match carry_out(verdict, req) {
            Passed::On(req) => {
                Either::Left(Either::Left(self.service.call(req).map_ok(
                    ServiceResponse::map_into_left_body as fn(ServiceResponse<B>) -> _,
                )))
            }
            Passed::Rejected(rejected) => Either::Left(Either::Right(ready(Ok(rejected)))),
        }
    }
}
