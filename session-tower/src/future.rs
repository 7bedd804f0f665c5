//! [`ResponseFuture`]: the inner service's future, a rejection, or a store load first.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use session_core::{Admission, Rejection};
use tower_service::Service;

use crate::response::rejection_response;

/// A store load that hands back the request and the ready inner service with its verdict:
/// one box holds all three, so the future itself stays as small as the inner one.
pub(crate) type Load<S, B> = Pin<Box<dyn Future<Output = (Admission, Request<B>, S)> + Send>>;

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
        // The session was refused without the inner service (boxed: off the hot path,
        // and a rejection is larger than most inner futures).
        Rejected {
            rejection: Option<Box<Rejection>>,
        },
        // A cache miss: the store is asked first.
        Loading {
            load: Load<S, B>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    /// Carries out the gate's `admission` of `request`: calls `service` with the session
    /// (or, in optional mode, the rejection) in the request's extensions, or answers with
    /// the rejection.
    pub(crate) fn after(admission: Admission, mut request: Request<B>, service: &mut S) -> Self {
        let state = match admission {
            Admission::Admit(session) => {
                request.extensions_mut().insert(session);
                State::Inner {
                    future: service.call(request),
                }
            }
            Admission::AdmitWithout(rejection) => {
                request.extensions_mut().insert(rejection);
                State::Inner {
                    future: service.call(request),
                }
            }
            Admission::Refuse(rejection) => State::Rejected {
                rejection: Some(Box::new(rejection)),
            },
        };
        Self { state }
    }

    pub(crate) fn loading(load: Load<S, B>) -> Self {
        Self {
            state: State::Loading { load },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Inner { future } => {
                    return future.poll(cx);
                }
                StateProj::Rejected { rejection } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection_response(&rejection)));
                }
                StateProj::Loading { load } => {
                    let (admission, request, mut service) = ready!(load.as_mut().poll(cx));
                    state.set(Self::after(admission, request, &mut service).state);
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
