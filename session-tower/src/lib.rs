//! Revocable sessions for tower and axum: a layer that checks, on every request, that the
//! session is still alive, and extractors that hand it to handlers.
//!
//! A revoked, expired, forged or missing session gets a 401 (JSON body, the cookie
//! cleared) or, for an HTML navigation when configured, a 303 to the login page. A store
//! that cannot answer gets a 503 and clears nothing.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get, body::Body, http::{Request, StatusCode}};
//! use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
//! use session_tower::{SessionLayer, ValidSession};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default()).unwrap();
//! let gate = SessionGate::new(manager);
//! let app = Router::new()
//!     .route("/me", get(|ValidSession(s): ValidSession| async move { s.user_id().to_string() }))
//!     .layer(SessionLayer::new(gate));
//!
//! let response = app.oneshot(Request::get("/me").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```

#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "axum")]
mod flows;
mod future;
mod layer;
mod response;
#[cfg(feature = "selfservice")]
mod router;
mod service;

#[cfg(feature = "axum")]
pub use extract::{SessionRejection, ValidSession};
#[cfg(feature = "axum")]
pub use flows::{clear_cookie, client_info, respond, sign_in, sign_out, sign_out_everywhere};
pub use future::ResponseFuture;
pub use layer::SessionLayer;
pub use response::{rejection_response, reply_response};
#[cfg(feature = "selfservice")]
pub use router::{mount, routes, self_service};
pub use service::SessionService;
#[cfg(feature = "selfservice")]
pub use session_selfservice;

pub use session_core;
