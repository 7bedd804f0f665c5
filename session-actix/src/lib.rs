//! Revocable sessions for actix-web: middleware that checks, on every request, that the
//! session is still alive, and extractors that hand it to handlers.
//!
//! The same tokens, cache, rejections and store as `session-tower`: every decision is
//! made in `session-core`; this crate reads the request and writes the response.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use actix_web::{App, HttpResponse, test, web};
//! use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
//! use session_actix::{SessionCheck, ValidSession};
//!
//! # #[actix_web::main]
//! # async fn main() {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default()).unwrap();
//! let gate = SessionGate::new(manager);
//! let app = test::init_service(
//!     App::new()
//!         .wrap(SessionCheck::new(gate))
//!         .route("/me", web::get().to(|ValidSession(s): ValidSession| async move {
//!             HttpResponse::Ok().body(s.user_id().to_string())
//!         })),
//! )
//! .await;
//! let response = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
//! assert_eq!(response.status(), 401);
//! # }
//! ```

mod extract;
mod flows;
mod middleware;
mod response;
#[cfg(feature = "selfservice")]
mod routes;

pub use extract::{SessionRejection, ValidSession};
pub use flows::{
    clear_cookie, client_info, respond, session_cookie, sign_in, sign_out, sign_out_everywhere,
};
pub use middleware::{CheckFuture, SessionCheck, SessionCheckMiddleware};
pub use response::{rejection_response, reply_response};
#[cfg(feature = "selfservice")]
pub use routes::{routes, self_service};
#[cfg(feature = "selfservice")]
pub use session_selfservice;

pub use session_core;
