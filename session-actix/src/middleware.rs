//! [`SessionCheck`] and its middleware service.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::Error;
use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use futures_util::future::LocalBoxFuture;
use session_core::{Check, Rejection, RequestHead, Session, SessionGate};

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

enum Outcome {
    Pass(Option<Session>, Option<Rejection>),
    Reject(Rejection),
}

impl Config {
    fn decide(&self, answer: Result<Option<Session>, Rejection>, req: &ServiceRequest) -> Outcome {
        match answer {
            Ok(Some(session)) => Outcome::Pass(Some(session), None),
            Ok(None) if self.optional => Outcome::Pass(None, Some(self.gate.missing(&Head(req)))),
            Ok(None) => Outcome::Reject(self.gate.missing(&Head(req))),
            Err(rejection) if self.optional => Outcome::Pass(None, Some(rejection)),
            Err(rejection) => Outcome::Reject(rejection),
        }
    }
}

impl<S, B> Service<ServiceRequest> for SessionCheckMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let inner = self.inner.clone();
        let check = inner.gate.check(&Head(&req));
        Box::pin(async move {
            let answer = match check {
                Check::Ready(answer) => answer,
                Check::Load(pending) => inner.gate.finish(pending).await.map(Some),
            };
            match inner.decide(answer, &req) {
                Outcome::Reject(rejection) => Ok(req
                    .into_response(rejection_response(&rejection))
                    .map_into_right_body()),
                Outcome::Pass(session, rejection) => {
                    if let Some(session) = session {
                        req.extensions_mut().insert(session);
                    }
                    if let Some(rejection) = rejection {
                        req.extensions_mut().insert(rejection);
                    }
                    service
                        .call(req)
                        .await
                        .map(ServiceResponse::map_into_left_body)
                }
            }
        })
    }
}
