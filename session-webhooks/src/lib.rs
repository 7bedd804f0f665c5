//! Signed webhooks for revocable sessions, delivered at least once from the store's
//! durable event log; and the receiver's check of their signature.
//!
//! - [`signature`] (always on, no HTTP client): [`sign`](signature::sign) and
//!   [`verify_signature`](signature::verify_signature) for the
//!   `Session-Signature: t=UNIX,v1=HEX` header, with an axum receiver and test vectors.
//! - `worker` (feature `worker`, on by default): [`WebhookWorker`] reads the store's event
//!   log (written in the same atomic operation as every change) and POSTs each event,
//!   retrying with backoff for up to a horizon, in event order per user, saving its cursor
//!   in the store so that a crash loses nothing, one node at a time under a lease in the
//!   store. [`encode`] shapes what it sends.
//!
//! A receiver needs only the signature module:
//!
//! ```toml
//! session-webhooks = { version = "0.1", default-features = false }
//! ```
//!
//! # Example
//!
//! Turn webhooks on when `WEBHOOK_URL` and `WEBHOOK_SECRET` are set (as the example apps
//! do):
//!
//! ```no_run
//! # #[cfg(feature = "worker")]
//! # async fn start(manager: session_core::SessionManager) -> Result<(), Box<dyn std::error::Error>> {
//! use session_webhooks::{WebhookWorker, signature::WebhookSecret};
//!
//! let webhooks = match (std::env::var("WEBHOOK_URL"), std::env::var("WEBHOOK_SECRET")) {
//!     (Ok(url), Ok(secret)) => Some(
//!         WebhookWorker::new(manager.store().clone(), url, WebhookSecret::parse_list(&secret)?)?
//!             .with_wakeups(manager.subscribe())
//!             .spawn()?,
//!     ),
//!     _ => None,
//! };
//! // … serve; keep `webhooks` alive as long as the app, then:
//! if let Some(worker) = webhooks {
//!     worker.shutdown().await;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! See the [`worker`] module for how delivery works, and [`signature`] for the receiver.

// The docs above link to the worker, which a receiver's build leaves out.
#![cfg_attr(not(feature = "worker"), allow(rustdoc::broken_intra_doc_links))]

pub mod signature;

#[cfg(feature = "worker")]
pub mod encode;
#[cfg(feature = "worker")]
pub mod worker;

#[cfg(feature = "worker")]
pub use worker::{ConfigError, WebhookWorker, WorkerHandle};
