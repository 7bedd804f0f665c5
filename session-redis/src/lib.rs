//! A Redis [`SessionStore`](session_core::SessionStore): sessions shared by every instance
//! of a service, with revocations pushed to all of them over pub/sub.
//!
//! [`RedisStore`] keeps each session as a hash whose `rec` field is the
//! [`SessionRecord`](session_core::SessionRecord)'s JSON, indexes a user's sessions in a
//! sorted set by expiry, and keeps a per-user revocation epoch. Every method is one atomic
//! exchange: a single command, or one `EVALSHA` of a Lua script where it reads and then
//! writes (create with its epoch check, touch, revoke, revoke-many, list); a revoke-many
//! over 10 000 sessions is still one `EVALSHA`. Redis TTLs delete a record at its
//! `expires_at`, revoked or not, and list and revoke-many drop the ids of records Redis has
//! expired from the user's index, so it does not grow. `purge_expired` is the exception to
//! "one exchange": it walks the user indexes with `SCAN`, one script per batch of 500, and
//! deletes what has expired by the caller's clock.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{prefix}s:{session id}` | hash | `rec` (the record's JSON), `user`, `agent`, `rev`, `ls`/`lns`; expires at `expires_at` |
//! | `{prefix}u:{user id}` | sorted set | the user's unrevoked session ids, scored by `expires_at` (Unix µs); expires with its last session |
//! | `{prefix}e:{user id}` | string | the user's revocation epoch (absent = 0) |
//! | `{prefix}revocations` | channel | `{"v":1,"publisher":"<uuid>","seq":N,"ids":["<session id>",…]}` |
//!
//! The prefix defaults to `session:`.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_core::{KeySet, Principal, ClientInfo, SessionConfig, SessionManager};
//! use session_redis::RedisStore;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Every instance of the service connects to the same Redis with the same prefix.
//! let store = RedisStore::with_prefix("redis://127.0.0.1:6379", "shop:session:").await?;
//! let manager = SessionManager::new(Arc::new(store), KeySet::random(), SessionConfig::default());
//! let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
//! assert!(manager.validate(issued.token.expose().as_bytes()).await.is_ok());
//! # Ok(())
//! # }
//! ```
//!
//! The manager follows [`invalidations`](session_core::SessionStore::invalidations) by
//! itself: a revocation on one instance drops the session from every instance's cache.
//!
//! # Push invalidation
//!
//! [`publish`](session_core::SessionStore::publish) sends the revoked ids on
//! `{prefix}revocations` with this store's random publisher id and a sequence number. A
//! background task, started by [`RedisStoreBuilder::connect`] on the Tokio runtime, keeps a
//! RESP3 subscription to the channel on a connection of its own and turns each message into
//! `Invalidation::Revoked(id)` per id (its own messages included). It sends
//! `Invalidation::Resync` whenever it may have missed messages: each time the subscription
//! is (re)established, when a publisher's sequence number skips, and on a message it cannot
//! read.
//!
//! # Security
//!
//! - Only the SHA-256 of a token's secret is stored (hex, in the record's JSON); neither
//!   the token nor the secret ever reaches Redis, and the channel carries session ids only.
//! - Whoever can write to this Redis can create, revoke or alter sessions, and whoever can
//!   publish on the channel can make instances drop cache entries (never accept a session).
//!   Protect it as you would the user table: a password or ACL user in the URL, a private
//!   network. TLS (`rediss://`) is not enabled in this build.
//! - The URL's password is never printed: the `Debug` of [`RedisStore`] and
//!   [`RedisStoreBuilder`] leaves the URL out.
//! - Run Redis with `maxmemory-policy noeviction`: an evicted record signs a user out, an
//!   evicted epoch lets a login that raced a revoke-all survive it.
//!
//! # Failure
//!
//! - **Redis down or slow**: every call fails within the command timeout (default 2 s,
//!   [`RedisStoreBuilder::with_command_timeout`]) with `StoreError::Timeout` or
//!   `StoreError::Backend`, which the manager answers with 503: nobody is signed out. The
//!   connection is rebuilt in the background; calls succeed again once Redis is back.
//! - **Redis restarted without persistence**: the sessions are gone (users sign in
//!   again). Enable AOF or RDB if sessions must outlive a restart.
//! - **Push channel down** (connection killed, Redis restarting): the subscriber
//!   reconnects and resubscribes by itself (a health-check `PING` every 3 s restarts
//!   reconnection after an outage of any length), then sends `Resync`, so each instance
//!   clears its cached "valid" answers. Until then a revocation made elsewhere reaches this
//!   instance within the cache's staleness bound at the latest.
//! - **The connection drops mid-call**: a call that is harmless to run twice (reads,
//!   touch, create, publish) is sent once more, within the same deadline. A revoke or
//!   revoke-many is not: its error reaches the caller, and if it did land, retrying it
//!   finds nothing left to revoke (the other instances then learn within the staleness
//!   bound).
//! - **A publish fails**: the manager logs it; the revocation is in the store and on the
//!   revoking instance already. Its sequence number was used, so the other instances resync
//!   on that publisher's next message; until then, the staleness bound applies.
//!
//! # Limits
//!
//! Needs Redis 7.0 or later (or a compatible server). Redis Cluster is not supported: the
//! scripts reach a user's records from the user's index, which Cluster forbids. Expiry is
//! compared at microsecond precision; the store's and Redis's clocks should agree (record
//! TTLs are absolute, so a record created already past its `expires_at` is deleted at
//! once).

mod builder;
mod layout;
mod push;
mod scripts;
mod store;

pub use builder::{
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HEALTH_CHECK_INTERVAL,
    RedisStoreBuilder,
};
pub use layout::DEFAULT_PREFIX;
pub use store::RedisStore;
