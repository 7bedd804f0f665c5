//! Revocable sessions, checked on every request: the framework-neutral core.
//!
//! `session-core` issues session tokens, validates them through a cache in front of a
//! [`SessionStore`], lists a user's sessions and revokes them one by one or all at once,
//! and words the HTTP rejection that the framework adapters (`session-tower`,
//! `session-actix`) send.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{
//!     Actor, ClientInfo, Refusal, KeySet, MemoryStore, Principal, RevocationReason,
//!     SessionConfig, SessionManager,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = SessionManager::new(
//!     Arc::new(MemoryStore::new()),
//!     KeySet::random(),
//!     SessionConfig::default(),
//! )?;
//! let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
//! let token = issued.token.expose().as_bytes();
//! assert_eq!(manager.validate(token).await.unwrap().user_id().as_str(), "alice");
//!
//! manager
//!     .revoke(issued.session.id(), RevocationReason::SignedOut, Actor::User)
//!     .await?;
//! assert!(matches!(manager.validate(token).await, Err(Refusal::Revoked)));
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! - Tokens carry a 256-bit secret and a MAC under the deployment's keys; a forged token is
//!   refused before any cache or store lookup. The store keeps only a hash of the secret.
//! - A store that cannot answer yields a 503 ([`Refusal::Unavailable`]), never a 401: an
//!   outage signs no one out.
//! - No token is ever written to a log: [`SessionToken`]'s `Debug` is redacted.

pub mod binding;
mod cache;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod extract;
pub mod gate;
mod manager;
pub mod metrics;
pub mod model;
pub mod push;
pub mod rejection;
pub mod reply;
mod session;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod token;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{CookieConfig, SessionConfig};
pub use error::{ConfigError, SessionError, StoreError};
pub use events::{EventId, EventType, SessionEvent};
pub use gate::{
    Admission, ClientIp, GateCheck, GateMode, MIDDLEWARE_MISSING, PendingLoad, RequestHead,
    SessionGate, extract_session, local_redirect, sign_in_notice,
};
pub use http;
pub use manager::SessionManager;
pub use model::{
    Actor, AgentId, IdpLink, Principal, RevocationReason, SessionId, SessionKind, SessionRecord,
    UserId,
};
pub use rejection::{Rejection, RejectionCode};
pub use reply::Reply;
pub use reply::codes;
pub use session::{ClientInfo, Issued, LoginEpoch, Refusal, Session};
pub use store::{MemoryStore, RevokeScope, SessionFilter, SessionStore};
pub use token::{KeySet, SessionToken};
