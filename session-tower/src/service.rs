//! [`SessionService`].

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use session_core::{GateCheck, GateMode, SessionGate};
use tower_service::Service;

use crate::future::ResponseFuture;

/// The service built by [`SessionLayer`](crate::SessionLayer).
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    gate: SessionGate,
    mode: GateMode,
    /// Whether risk binding is on (then the client's address is looked up).
    binds: bool,
}

impl<S> SessionService<S> {
    pub(crate) fn new(inner: S, gate: SessionGate, mode: GateMode) -> Self {
        let binds = gate.manager().config().binding().is_on();
        Self {
            inner,
            gate,
            mode,
            binds,
        }
    }
}

/// Risk binding compares the client's address: axum knows the peer through `ConnectInfo`
/// (when served with connect info); a [`ClientIp`](session_core::ClientIp) the app set wins.
fn with_client_ip<B>(req: Request<B>) -> Request<B> {
    #[cfg(feature = "axum")]
    {
        let mut req = req;
        if req.extensions().get::<session_core::ClientIp>().is_none()
            && let Some(axum::extract::ConnectInfo(addr)) = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .copied()
        {
            req.extensions_mut()
                .insert(session_core::ClientIp(addr.ip()));
        }
        req
    }
    #[cfg(not(feature = "axum"))]
    req
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<Bytes>,
{
    // The inner service's own body type, so axum does not box the body a second time
    // (`Body::new` keeps an `axum::body::Body` as it is and boxes anything else); a
    // rejection's body is made `From<Bytes>`.
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let req = if self.binds { with_client_ip(req) } else { req };
        // Decided without the store, the ready inner service is called right away; only a
        // store load takes the ready service along (leaving a clone in its place):
        // https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
        let inner = &mut self.inner;
        match self.gate.check(&req, self.mode) {
            GateCheck::Decided(admission) => ResponseFuture::after(admission, req, inner),
            GateCheck::NeedsLoad(pending) => {
                let clone = inner.clone();
                let inner = std::mem::replace(inner, clone);
                let gate = self.gate.clone();
                ResponseFuture::loading(Box::pin(async move {
                    (gate.finish(pending).await, req, inner)
                }))
            }
        }
    }
}
