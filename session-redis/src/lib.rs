//! A Redis [`SessionStore`](session_core::SessionStore): sessions shared by every instance
//! of a service, with their event log kept in the same atomic scripts as the changes, and
//! revocations pushed to every instance over pub/sub.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{ClientInfo, KeySet, Principal, SessionConfig, SessionManager};
//! use session_redis::RedisStore;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let Ok(url) = std::env::var("REDIS_URL") else { return Ok(()) }; // skipped without Redis
//! # let prefix = format!("doc-lib-{}:", std::process::id());
//! // Every instance of the service connects to the same Redis with the same prefix.
//! let store = RedisStore::with_prefix(&url, &prefix).await?;
//! let manager = SessionManager::new(Arc::new(store), KeySet::random(), SessionConfig::default())?;
//! let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
//! assert!(manager.validate(issued.token.expose().as_bytes()).await.is_ok());
//! # Ok(())
//! # }
//! ```
//!
//! The manager follows the store's [push channel](session_core::SessionStore::push_messages)
//! by itself: a revocation on one instance drops the session from every instance's cache.
//!
//! # Redis as clouds run it: TLS, ACL users, Cluster
//!
//! - **TLS**: a `rediss://` URL (feature `tls`, on by default: rustls with its ring
//!   provider). The server's certificate is checked against the system's roots, or against
//!   a private CA with [`RedisStoreBuilder::with_ca_file`].
//! - **ACL users**: `rediss://user:password@host:port` in the URL, or
//!   [`RedisStoreBuilder::with_credentials`] to keep the password out of the URL.
//! - **Redis Cluster** (feature `cluster`, on by default): give any node's URL to
//!   [`RedisStore::connect`] (the store asks the node and, if it is a cluster node, uses
//!   the cluster client, which follows the slots and their failovers), or several seeds to
//!   [`RedisStoreBuilder::cluster`]. The layout below is the same on one Redis and on a
//!   cluster; the push channel is a sharded one (`SSUBSCRIBE` / `SPUBLISH`) when the
//!   servers have it (unless [`RedisStoreBuilder::with_sharded_pubsub`] says otherwise), a
//!   classic one otherwise.
//!
//! ```
//! use std::time::Duration;
//! use session_redis::RedisStoreBuilder;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let builder = RedisStoreBuilder::new("rediss://redis.internal:6380")
//!     .with_ca_file("/etc/ssl/redis-ca.pem")
//!     .with_credentials(Some("sessions"), "a long random password")
//!     .with_command_timeout(Duration::from_millis(500))?;
//! assert!(!format!("{builder:?}").contains("a long random password"));
//! // builder.connect().await? would connect; the password is never printed.
//! # Ok(())
//! # }
//! ```
//!
//! # Layout: shards, ready for Redis Cluster
//!
//! A deployment spreads its users over a fixed number of **shards** (16 by default,
//! [`RedisStoreBuilder::with_shards`]: a power of two up to 256). A user's shard is the
//! CRC16 (XMODEM, the function Redis Cluster hashes keys with) of the user id's UTF-8
//! bytes, modulo the number of shards: the same on every node and in every version. Every
//! key of a shard carries the shard's **hash tag**, `{PREFIXN}` (`{session:7}`), so Redis
//! Cluster keeps the whole shard in one slot, on one node, and every script, which only
//! ever touches one shard, is legal there.
//!
//! A session id is a random UUID whose **last byte's low bits** name its shard (the first
//! byte stays random: the cache stripes its locks by it), made by
//! [`SessionStore::new_session_id`](session_core::SessionStore::new_session_id). So `load`
//! finds a record from the id alone, in one `HMGET`, with no lookup of the user.
//!
//! | key (`T` = `{PREFIXN}`) | type | holds |
//! | --- | --- | --- |
//! | `T:s:ID` | hash | the session: `rec` (its JSON as created), and the fields the scripts compare, change or return: `u` user, `ag`/`an` agent id and name, `cr`/`ex` created and expires (Unix µs), `exn` expires (Unix ns), `ep` epoch, `ls`/`lns` last activity, `rv`/`rr` revocation (Unix ns, reason), `ua`, `ipk` ([`ip_key`](session_core::store::ip_key)), `iss`/`isub`/`isid` (identity provider), `xr` (expiry logged), `ce` (its `session.created` event) |
//! | `T:u:USER` | sorted set | the user's unrevoked session ids, by creation time |
//! | `T:m:USER` | hash | the user's epoch (`ep`) and disabled mark (`dis`) |
//! | `T:a:USER` | sorted set | the user's event ids (by id): the audit index |
//! | `T:act` | sorted set | the shard's unrevoked sessions as `EXPIRY:ID` (expiry in Unix µs, 16 digits), sorted as text, by expiry: what `revoke_matching` scans |
//! | `T:end` | sorted set | the shard's revoked session ids, by end of life: what the purge deletes |
//! | `T:users` | set | the users of the shard with an audit index (for the purge) |
//! | `T:log` | stream | the shard's events |
//! | `{PREFIX}meta` | string | the layout (`layout=2 shards=16`): a node configured otherwise refuses to start |
//! | `{PREFIX}once:KEY`, `{PREFIX}lease:NAME`, `{PREFIX}cursor:NAME` | string | `first_use` marks (expire by themselves), leases (with a TTL), saved cursors |
//! | `{PREFIX}revocations` | channel | the push payloads (made and signed by the manager) |
//!
//! **The number of shards must never change for a deployment**: users would move to other
//! shards and their sessions would be lost. The first node records it in `{PREFIX}meta`;
//! a node configured with another count fails to connect with [`Error::LayoutMismatch`].
//!
//! What the layout costs:
//!
//! - Operations across all users (`revoke_matching`, the purge, reading the event log)
//!   run one script per shard instead of one; `events` runs two per shard.
//! - No script blocks Redis long whatever the deployment's size: `revoke_matching` looks at
//!   most at 2 000 sessions and revokes at most 250 per script, going on from where the
//!   last one stopped (the active set is sorted as text, so a scan resumes after any
//!   member); a purge script deletes at most 1 000 records. A shard of up to 2 000 active
//!   sessions takes one script. What stays unbounded is a user's own sessions: a
//!   revoke-all is one script over the user's sessions (at most the cap, plus their
//!   agents), since it must move the epoch in the same operation.
//!   `examples/measure.rs` measures all of it.
//! - Events are kept per shard, so a log page merges the shards' streams (see below).
//! - The keys are not those of earlier versions of this crate: sessions stored before the
//!   upgrade are not found (their users sign in again).
//! - A user's sessions all live on one node: a user with very many sessions cannot be
//!   spread, which the per-user cap bounds.
//!
//! # The outbox: each change and its events in one script
//!
//! Every change is one Lua script on one shard, which also appends its events to the
//! shard's stream (`XADD`) and their ids to the user's audit index: a change never lands
//! without its events, nor an event without its change. Redis does not roll a script back
//! when it fails half way, so each script does everything that can fail first (it checks
//! the type of every key it will write, reads and checks the records, decides), and only
//! then writes. The scripts declare themselves with a shebang, so Redis refuses a writing
//! script up front when it is out of memory. `tests/atomicity.rs` puts keys of the wrong
//! type, corrupt records and a full server in the scripts' way and checks that nothing
//! landed.
//!
//! # The event log
//!
//! An event's id is `{ms:015}-{shard:03}-{seq:010}`, from its stream id `ms-seq`: ids sort
//! as strings in log order, and say where the event lives. A page of
//! [`events`](session_core::SessionStore::events) reads every shard's stream after the
//! cursor and merges them; before reading, it moves every stream's last id up to a barrier
//! past the newest event of any shard, so that no event can commit later with an id below
//! what it serves (the details are in `src/log.rs`). No clock or margin is involved: a node
//! whose clock steps back cannot make a reader skip an event, and a reader sees its own
//! writes at once. [`audit`](session_core::SessionStore::audit) reads the user's audit index
//! (never a scan of the log). The purge trims each stream by time (`XTRIM MINID`, the
//! stream's clock) and the audit indexes alike.
//!
//! # Push
//!
//! [`publish`](session_core::SessionStore::publish) sends the manager's signed payload on
//! `{PREFIX}revocations`. A background task, started by [`RedisStoreBuilder::connect`],
//! keeps a RESP3 subscription on a connection of its own and hands every message on as
//! [`PushMessage::Payload`](session_core::store::PushMessage::Payload), unread (the manager
//! checks the MAC), and every (re)subscription as
//! [`PushMessage::Reconnected`](session_core::store::PushMessage::Reconnected).
//!
//! # Security
//!
//! - Only the SHA-256 of a token's secret is stored (hex, in the record's JSON); neither
//!   the token nor the secret ever reaches Redis.
//! - Whoever can write to this Redis can create, revoke or alter sessions; whoever can only
//!   publish on the channel can make nothing happen (the payloads carry a MAC under the
//!   deployment's keys). Protect Redis as you would the user table: an ACL user limited to
//!   the prefix's keys and channel (`~{PREFIX* &{PREFIX* +@all -@dangerous` or tighter),
//!   TLS, a private network.
//! - The URL's password is never printed: the `Debug` of [`RedisStore`] and
//!   [`RedisStoreBuilder`] leaves the URL out, and neither prints a record.
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
//!   reconnection after an outage of any length), then sends `Reconnected`, so each
//!   instance clears its cached "valid" answers. Until then a revocation made elsewhere
//!   reaches this instance within the cache's staleness bound at the latest.
//! - **The connection drops mid-call**: a call that is harmless to run twice (reads,
//!   touch, create, publish) is sent once more, within the same deadline. A revocation is
//!   not: its error reaches the caller, and if it did land, retrying it finds nothing left
//!   to revoke (the other instances then learn within the staleness bound).
//! - **A cluster master fails**: the calls on its shards fail (503) until a replica takes
//!   over (a few seconds with `cluster-node-timeout` 1 s); the others go on. The
//!   subscriber follows the channel to its new master and sends `Reconnected`. Replication
//!   is asynchronous: a change acknowledged just before its master dies can be lost with it
//!   (as any Redis write), events included.
//! - **`revoke_matching` fails on one shard**: the other shards' revocations stand (each
//!   with its events) and the call returns the error; run it again to finish (what was
//!   revoked no longer matches).
//!
//! # Limits
//!
//! Needs Redis 7.0 or later (or a compatible server). At `connect`, a refusal no retry can
//! mend (a wrong password, a certificate the CA does not vouch for) fails at once; other
//! failures (nothing listening, a server still starting) after a few seconds of retries. Times are compared at microsecond
//! precision in the scripts, and kept to the nanosecond. Records do not expire by
//! themselves: the purge (`SessionManager::spawn_purge`) deletes them after the retention.

mod builder;
mod codec;
mod conn;
mod error;
mod layout;
mod log;
mod push;
mod scripts;
mod session_store;
mod store;

pub use builder::{
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HEALTH_CHECK_INTERVAL,
    RedisStoreBuilder,
};
pub use error::Error;
pub use layout::{DEFAULT_PREFIX, DEFAULT_SHARDS, MAX_SHARDS};
pub use store::RedisStore;
