//! Self-service and admin routes for revocable sessions, framework-neutral.
//!
//! - [`SelfService`]: the signed-in user's routes (`/me`, `/sessions`, sign out one, the
//!   others, everywhere, agents) and the HTML sessions page with its forms (feature
//!   `html`).
//! - [`Admin`]: the event log, audit trails, a user's sessions, offboarding and incident
//!   revocation, behind the app's own check.
//! - [`RouteTable`]: each route declared once (method, path, access, operation,
//!   description). `session_tower::routes` builds the axum router from it,
//!   `session_actix::routes` the actix-web resources, and [`openapi::openapi`] (feature
//!   `openapi`) the OpenAPI 3.1 document.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use session_core::http::Method;
//! use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
//! use session_selfservice::{Call, SelfService};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
//! let table = SelfService::new(SessionGate::new(manager)).routes();
//! // What an adapter does for `GET /sessions` without a cookie:
//! let index = table.routes().iter().position(|r| r.path == "/sessions").unwrap();
//! let reply = table.call(index, Call::new(Method::GET, "/sessions")).await;
//! assert_eq!(reply.status, 401);
//! assert_eq!(reply.body, r#"{"error":"session_missing"}"#);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `html` (default): the sessions page, with device names read from the user agent
//!   (maud, ua-parser, timeago).
//! - `openapi`: the OpenAPI document (utoipa).

mod admin;
pub mod csrf;
#[cfg(feature = "html")]
pub mod device;
#[cfg(feature = "openapi")]
pub mod openapi;
#[cfg(feature = "html")]
pub mod page;
mod selfservice;
pub mod table;
pub mod views;

pub use admin::{Admin, BearerToken, EVENTS_PAGE, MIN_BEARER_TOKEN_LEN};
pub use selfservice::SelfService;
pub use table::{Access, Call, Route, RouteClash, RouteTable};
