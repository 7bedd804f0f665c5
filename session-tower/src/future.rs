//! [`ResponseFuture`]: the inner service's future, a rejection, or a store load first.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use session_core::{Rejection, Session};
use tower_service::Service;

use crate::response::rejection_response;

type Load = Pin<Box<dyn Future<Output = Result<Session, Rejection>> + Send>>;

pin_project! {
    /// Response future of [`SessionService`](crate::SessionService).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // The session was settled; the inner service answers.
        Inner {
            #[pin]
            future: S::Future,
        },
        // The session was refused without the inner service.
        Rejected {
            rejection: Option<Rejection>,
        },
        // A cache miss: the store is asked first (the only boxed state).
        Loading {
            load: Load,
            request: Option<Request<B>>,
            service: Option<S>,
            optional: bool,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn inner(future: S::Future) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(crate) fn rejected(rejection: Rejection) -> Self {
        Self {
            state: State::Rejected {
                rejection: Some(rejection),
            },
        }
    }

    pub(crate) fn loading(load: Load, request: Request<B>, service: S, optional: bool) -> Self {
        Self {
            state: State::Loading {
                load,
                request: Some(request),
                service: Some(service),
                optional,
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<Either<ResBody, Full<Bytes>>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Inner { future } => {
                    return future.poll(cx).map_ok(|res| res.map(Either::Left));
                }
                StateProj::Rejected { rejection } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection_response(&rejection).map(Either::Right)));
                }
                StateProj::Loading {
                    load,
                    request,
                    service,
                    optional,
                } => {
                    let outcome = ready!(load.as_mut().poll(cx));
                    let mut request = request.take().expect("polled after completion");
                    let mut service = service.take().expect("polled after completion");
                    match outcome {
                        Ok(session) => {
                            request.extensions_mut().insert(session);
                        }
                        Err(rejection) if *optional => {
                            request.extensions_mut().insert(rejection);
                        }
                        Err(rejection) => {
                            state.set(State::Rejected {
                                rejection: Some(rejection),
                            });
                            continue;
                        }
                    }
                    let future = service.call(request);
                    state.set(State::Inner { future });
                }
            }
        }
    }
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
