//! [`PostgresStore`]: revocable sessions in PostgreSQL, with an event log written in the
//! same transaction as every change, and revocations pushed to every node over
//! `LISTEN`/`NOTIFY`.
//!
//! The store implements [`SessionStore`](session_core::SessionStore) with
//! [sqlx](https://docs.rs/sqlx). Every method is one SQL statement, so one round trip (plus,
//! the first time a pooled connection runs a given statement, sqlx's prepare); the
//! operations that must see what concurrent logins committed (create, bulk revocation) are
//! one call of a PL/pgSQL function.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{ClientInfo, KeySet, Principal, SessionConfig, SessionManager};
//! use session_core::events::AuditQuery;
//! use session_postgres::PostgresStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let Ok(url) = std::env::var("DATABASE_URL") else { return Ok(()) }; // skipped without a database
//! let store = PostgresStore::connect(&url).await?;
//! store.migrate().await?; // idempotent; safe to run from every node at once
//! let manager = SessionManager::new(Arc::new(store), KeySet::random(), SessionConfig::default())?;
//! let user = format!("doc-{}", std::process::id());
//! let issued = manager.issue(Principal::user(user.as_str()), ClientInfo::default()).await?;
//! let log = manager
//!     .audit(&AuditQuery { user_id: user.as_str().into(), before: None, limit: 10 })
//!     .await?;
//! assert_eq!(log[0].session_id, issued.session.id());
//! # Ok(())
//! # }
//! ```
//!
//! # Schema
//!
//! Everything lives in one schema, `session_revocation` ([`SCHEMA`]) unless
//! [`PostgresStoreBuilder::with_schema`] names another, created by
//! [`PostgresStore::migrate`], so nothing collides with the application's tables:
//!
//! | table | holds | indexes, and the query each serves |
//! | --- | --- | --- |
//! | `sessions` | one row per session: id, SHA-256 of the token's secret, user, kind, agent, times, client (user agent, IP, and `ip_key`), revocation, the epoch it was issued at, the identity-provider link (`idp_issuer`, `idp_subject`, `idp_sid`), `expiry_reported` | `user_id` (a user's sessions: list, revoke-all, the cap); end of life, `LEAST(COALESCE(revoked_at, expires_at), expires_at)` (the purge); `ip_key` of live sessions (network filters); `(idp_issuer, idp_sid)` (provider logouts and filters); `created_at` of live sessions (age filters) |
//! | `users` | each user's revocation epoch and disabled mark (no row: epoch 0, enabled) | primary key |
//! | `events` | the event log: `(xid, seq)`, type, time, session, user, kind, agent, reason, actor | `(xid, seq)` (the events API, in log order); `(user_id, xid, seq)` (the audit); `occurred_at` (the purge) |
//! | `first_use` | replay marks (key, until) | primary key; `until` (the purge) |
//! | `leases` | leases (name, holder, until, by the database's clock) | primary key |
//! | `cursors` | saved positions in the log | primary key |
//! | `_sqlx_migrations` | the migrator's bookkeeping, apart from the application's own | |
//!
//! `ip_key` is [`session_core::store::ip_key`] of the session's IP: 32 hex digits of the
//! address as IPv6 (IPv4 mapped), in the `C` collation, so a CIDR network is one range of
//! keys and a network filter one `BETWEEN` on a btree index (an `inet` column would need a
//! GiST index and two families to compare; the key is the same text every store keeps).
//!
//! # The event log (an outbox)
//!
//! Every change writes its events in the same statement: a revocation is an `UPDATE …
//! RETURNING` feeding an `INSERT INTO events … SELECT` in one statement (common table
//! expressions); create, the cap and bulk revocations are one function call. No change
//! without its event, no event without its change.
//!
//! A sequence alone would not make a log a reader can follow: a transaction that took a
//! lower sequence number but commits after one that took a higher number would be skipped
//! by a reader that had already moved past the higher one. So each event also records the
//! id of the transaction that wrote it (`pg_current_xact_id()`, an `xid8`), the log is
//! ordered by `(xid, seq)`, and [`SessionStore::events`](session_core::SessionStore::events)
//! serves only events whose `xid` is below `pg_snapshot_xmin(pg_current_snapshot())`, the
//! oldest transaction still running: every transaction that can still write an event has an
//! xid at or above it, so nothing can commit behind a cursor. An event id is both numbers,
//! zero-padded (`00000000000000001234-0000000000000000056`), so ids sort as strings in log
//! order.
//!
//! The consequence: a long-running transaction anywhere in the cluster (one that holds a
//! transaction id, i.e. has written something, in any database, including an idle-in-
//! transaction session or a prepared transaction) delays the events API until it ends.
//! Events are never skipped; they are served late. Read-only transactions (a `pg_dump`,
//! say) hold no transaction id and delay nothing. The audit
//! ([`SessionStore::audit`](session_core::SessionStore::audit)) serves everything committed,
//! at once.
//!
//! # Concurrency
//!
//! Create locks the user's row (`SELECT … FOR UPDATE`, creating it first) before it checks
//! the disabled mark, the epoch and the grantor and applies the cap; revoke-all moves the
//! epoch, which locks the same row. Both run as PL/pgSQL functions (`VOLATILE`), so in
//! `READ COMMITTED` each statement after the lock takes a fresh snapshot and sees every
//! session a concurrent login committed: a login that read the old epoch either lands
//! before a revoke-all (and is revoked by it) or fails, and two logins of one user never
//! both slip under the cap.
//!
//! # Push
//!
//! [`SessionStore::publish`](session_core::SessionStore::publish) sends the manager's
//! payload as is with `pg_notify` on the channel `session_revocations` ([`CHANNEL`]; for
//! another schema, `SCHEMA_revocations`); payloads are at most [`PUSH_LIMIT`] bytes
//! (PostgreSQL refuses 8000 and more). Every store instance listens from a background task
//! and hands each payload, unread, to the manager, which checks its MAC: someone who can
//! `NOTIFY` on the database but does not hold the session keys can make no node drop or
//! distrust anything. After the listener (re)connects it sends
//! [`PushMessage::Reconnected`](session_core::store::PushMessage::Reconnected), since it may
//! have missed messages. [`PostgresStore::wait_listening`] tells when it is up (readiness).
//!
//! # Behind a pooler
//!
//! `LISTEN` needs a session connection (the subscription lives as long as the session),
//! and so does the migrator (it holds a session advisory lock); a pooler in transaction
//! mode hands each transaction whichever server connection is free. So give the store two
//! URLs: queries through the pooler ([`PostgresStoreBuilder::with_transaction_pooler`]
//! makes each statement an unnamed one inside an explicit `READ COMMITTED` transaction, so
//! that its parse and execution reach one server connection), `LISTEN` and migrations
//! straight to the server ([`PostgresStoreBuilder::with_listen_url`]). `NOTIFY` works
//! through the pooler: it is delivered when its transaction commits.
//!
//! With PgBouncer in transaction mode (`pgbouncer.ini`):
//!
//! ```ini
//! [databases]
//! app = host=db.internal port=5432 dbname=app
//!
//! [pgbouncer]
//! listen_port = 6432
//! pool_mode = transaction
//! ; sqlx sends it at connect; PgBouncer must let it through
//! ignore_startup_parameters = extra_float_digits
//! ```
//!
//! ```
//! use session_postgres::PostgresStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // e.g. postgres://app@pgbouncer.internal:6432/app and postgres://app@db.internal:5432/app
//! let (Ok(pooler), Ok(direct)) = (std::env::var("PGBOUNCER_URL"), std::env::var("DATABASE_URL"))
//! else {
//!     return Ok(()); // skipped without them
//! };
//! let store = PostgresStore::builder()
//!     .with_transaction_pooler()
//!     .with_listen_url(&direct)?
//!     .connect(&pooler)
//!     .await?;
//! store.migrate().await?; // through `direct`
//! assert!(store.wait_listening(std::time::Duration::from_secs(10)).await);
//! # Ok(())
//! # }
//! ```
//!
//! The cost: two more round trips to the pooler per call (`BEGIN`, `COMMIT`), and a parse
//! of each statement every time. Without [`PostgresStoreBuilder::with_transaction_pooler`],
//! sqlx's named prepared statements collide on the pooler's shared server connections
//! ("prepared statement \"sqlx_s_1\" already exists"), and PgBouncer refuses the
//! `options` startup parameter the store uses to pin the isolation level. A pooler in
//! session mode needs neither option. (PgBouncer 1.21 and later can also carry named
//! prepared statements across server connections, `max_prepared_statements`; the store's
//! transaction mode does not rely on it, so it works with older PgBouncers, such as
//! Debian 12's 1.18, and with other poolers.)
//!
//! # Security
//!
//! - The `sessions` table holds a SHA-256 hash of each token's secret, never the token or the
//!   secret: a dump of the database signs no one in.
//! - Every value reaches PostgreSQL as a bound parameter; the only text put into statements
//!   is the schema name, restricted to lowercase letters, digits and `_`.
//! - The store's `Debug` shows no connection string, password, IP or user agent.
//!
//! # Failure
//!
//! - Store errors are [`StoreError`](session_core::StoreError)s: `Timeout` when no
//!   connection came within the pool's acquire timeout (5 s from
//!   [`PostgresStore::connect`]), `Corrupt` for a row that does not decode, `Backend` for
//!   the rest (a deadlock between two bulk revocations over the same sessions is one, and
//!   changes nothing). The manager answers them with a 503 and signs no one out.
//! - The listener reconnects on its own (with backoff up to 5 s) after a lost connection, a
//!   `pg_terminate_backend`, or a server restart. A store-wide heartbeat (a `NOTIFY` to the
//!   instance's own channel every 10 s) catches a connection that died silently: 35 s
//!   without one and the listener is rebuilt. While the listener is down, other nodes'
//!   revocations reach this node's cache only through its staleness bound.
//! - [`SessionStore::publish`](session_core::SessionStore::publish) gives up after 5 s.
//! - Push needs a Tokio runtime when the store is built; without one the store still works,
//!   but push is off (and a warning is logged).
//! - Timestamps are kept to the microsecond (`timestamptz`); finer parts are cut off.
//! - The statements are written for `READ COMMITTED` (PostgreSQL's default), which
//!   [`PostgresStore::connect`] pins. On a pool of yours running `REPEATABLE READ` or
//!   `SERIALIZABLE`, concurrent logins and revoke-alls of one user fail with serialization
//!   errors (40001) instead: never a login that survives a revoke-all, but errors.
//! - Upgrading from the v1 schema: [`PostgresStore::migrate`] adds the new tables and
//!   columns and fills the IP key of live sessions; sessions from before it have no
//!   `session.created` event.

mod notify;
mod ops;
mod rows;
mod sql;
mod store;

pub use notify::{CHANNEL, PUSH_LIMIT};
pub use store::{ACQUIRE_TIMEOUT, PostgresStore, PostgresStoreBuilder};

/// The default schema holding the store's tables.
pub const SCHEMA: &str = "session_revocation";

/// The `application_name` of the pool's connections when the URL sets none.
pub const APPLICATION_NAME: &str = "session-postgres";
