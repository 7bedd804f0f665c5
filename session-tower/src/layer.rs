//! [`SessionLayer`].

use session_core::{GateMode, SessionGate};
use tower_layer::Layer;

use crate::service::SessionService;

/// Wraps a service so every request's session is checked.
///
/// By default a session is **required**: requests without a valid one get the rejection
/// and never reach the inner service. [`SessionLayer::optional`] lets every request through
/// and leaves the outcome for the extractors ([`ValidSession`](crate::ValidSession),
/// `Option<ValidSession>`).
///
/// The inner service's response body must be `From<Bytes>`, as axum's `Body` and
/// `Full<Bytes>` are: a rejection's body is made from its bytes, and every other response
/// is the inner service's own, untouched. Under `Router::layer` the body is always axum's.
///
/// `Router::layer` boxes and clones the layered service for every request; wrapping the
/// whole router instead saves that (and checks every request once, before routing):
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, body::Body, extract::Request, http::StatusCode, routing::get};
/// use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
/// use session_tower::{SessionLayer, ValidSession};
/// use tower::{Layer as _, ServiceExt as _};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default()).unwrap();
/// let router = Router::new()
///     .route("/me", get(|ValidSession(s): ValidSession| async move { s.user_id().to_string() }));
/// let app = SessionLayer::new(SessionGate::new(manager)).layer(router);
///
/// // Served with `axum::serve(listener, make_service)`.
/// let make_service = axum::ServiceExt::<Request>::into_make_service(app.clone());
/// # drop(make_service);
/// let response = app.oneshot(Request::get("/me").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SessionLayer {
    gate: SessionGate,
    mode: GateMode,
}

impl SessionLayer {
    /// A layer requiring a valid session, checked by `gate`.
    pub fn new(gate: SessionGate) -> Self {
        Self {
            gate,
            mode: GateMode::REQUIRED,
        }
    }

    /// Lets requests without a valid session through (default: they are rejected). The
    /// handler's `ValidSession` extractor still rejects them; `Option<ValidSession>` gets
    /// `None`. A cross-site state change with the session cookie is refused all the same.
    pub fn optional(mut self) -> Self {
        self.mode.optional = true;
        self
    }

    /// Holds every state-changing request through this layer to the cross-site rule, with
    /// or without a session cookie: put it on a login form's route (login CSRF). Default:
    /// only requests that carry the session cookie.
    pub fn guard_forms(mut self) -> Self {
        self.mode.guard_forms = true;
        self
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.gate.clone(), self.mode)
    }
}
