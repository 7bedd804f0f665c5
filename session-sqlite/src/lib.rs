//! The SQLite store for revocable sessions: embedded, persistent, for one node.
//!
//! [`SqliteStore`] keeps sessions, their event log and per-user revocation epochs in one
//! SQLite file (WAL mode), through [sqlx](https://docs.rs/sqlx) with SQLite bundled: no
//! server to run, and sessions, revocations and events survive a restart. It implements
//! [`SessionStore`], so a [`SessionManager`] uses it like any other store. It has no push
//! channel: one node has no other node to tell, so [`SessionStore::publish`] and
//! [`SessionStore::push_messages`] keep the trait's defaults (nothing sent, nothing
//! received). Several processes on one host may open the same file; each then relies on
//! its cache's staleness bound, as with any store without push.
//!
//! [`SessionStore`]: session_core::SessionStore
//! [`SessionStore::publish`]: session_core::SessionStore::publish
//! [`SessionStore::push_messages`]: session_core::SessionStore::push_messages
//! [`SessionStore::events`]: session_core::SessionStore::events
//! [`SessionManager`]: session_core::SessionManager
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{
//!     Actor, ClientInfo, Refusal, KeySet, Principal, RevocationReason, SessionConfig,
//!     SessionManager,
//! };
//! use session_sqlite::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("sessions.db");
//! // Creates the file if missing, switches it to WAL and applies the migrations.
//! let store = SqliteStore::open(&path).await?;
//! let manager = SessionManager::new(Arc::new(store), KeySet::random(), SessionConfig::default())?;
//!
//! let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
//! let token = issued.token.expose().as_bytes();
//! assert!(manager.validate(token).await.is_ok());
//!
//! manager
//!     .revoke(issued.session.id(), RevocationReason::SignedOut, Actor::User)
//!     .await?;
//! assert!(matches!(manager.validate(token).await, Err(Refusal::Revoked)));
//! # Ok(())
//! # }
//! ```
//!
//! # Schema
//!
//! The migrations in `migrations/` (embedded with [`sqlx::migrate!`], applied by
//! [`SqliteStore::migrate`]) create, all `STRICT`:
//!
//! - `sessions`: one row per session: `id` (hyphenated UUID), `secret_hash`, the
//!   principal as `user_id`/`kind`/`agent_id`/`agent_name`, `created_at`,
//!   `last_active_at`, `expires_at`, `user_agent`, `ip`, `revoked_at`,
//!   `revocation_reason`, `epoch` (the user's epoch at issue), the identity-provider link
//!   `idp_issuer`/`idp_subject`/`idp_sid`, `ip_key` and `expiry_reported`. Indexes: by
//!   `user_id` (every per-user operation: revoke-all, revoke-others, the list, the cap,
//!   never a scan of all sessions), by the end of the session's life
//!   (`min(coalesce(revoked_at, expires_at), expires_at)`, the purge), and by
//!   `(idp_issuer, idp_sid)` (provider logouts across users; partial, password sessions
//!   stay out of it).
//! - `users`: each user's `epoch` and `disabled` mark; a missing row is epoch 0, enabled.
//! - `events`: the log (`id INTEGER PRIMARY KEY AUTOINCREMENT`, `type`, `occurred_at`,
//!   `session_id`, `user_id`, `session_kind`, `agent_id`, `reason`, `actor`), indexed by
//!   `(user_id, id)` (the audit reads one user's events newest first through it), by
//!   `(type, id)` (the events API filtered by type) and by `occurred_at` (the purge).
//! - `first_use` (replay marks, indexed by expiry), `leases`, `cursors`: one row per key.
//!
//! Timestamps are INTEGER unix **nanoseconds** (UTC): they round-trip exactly and every
//! comparison (expiry, `touch`'s "never backwards", the purge) is done in SQL on those
//! integers. The range this holds is 1677-09-21 to 2262-04-11; writing a timestamp outside
//! it is an error, and a `now` (or a retention) outside it is clamped.
//!
//! `ip_key` is [`ip_key`](session_core::store::ip_key)`(ip)`, 32 lowercase hex digits of
//! the address as IPv6 (IPv4 mapped), written beside `ip` at create: a network
//! ([`IpRange`](session_core::store::IpRange)) is then the text range
//! `ip_key BETWEEN lo_key AND hi_key`. It is `''` when `ip` is not an address. SQL cannot
//! parse an IPv6 address, so for rows written before migration 2 [`SqliteStore::migrate`]
//! computes it in Rust, once, through a partial index that holds exactly the rows
//! still without one.
//!
//! # The event log (an outbox)
//!
//! Every change writes its events in its own transaction, so no change commits without
//! its event and no event without its change, whatever fails or crashes in between:
//! `create` (the cap's `session.revoked` events and `session.created`), every revocation
//! (one `session.revoked` per session, in one statement from the rows the revocation's
//! `UPDATE … RETURNING` ended), `report_expired` (`session.expired`, once: the
//! `expiry_reported` flag is set in the same transaction). A test injects a fault between
//! the change and its event (a trigger that fails the event's insert) and finds neither.
//!
//! Event ids are the `events` table's integer keys, shown as 20 zero-padded decimal digits
//! (`00000000000000000042`) so that they sort as strings in log order. A cursor is read
//! back as the bound a string comparison would give, whatever its text.
//!
//! ## Why a reader never skips an event here (the outbox gap)
//!
//! The gap: a writer takes id 7, another takes id 8 and commits first, a reader serves 8
//! and moves its cursor past 7, then 7 commits and is never served. It needs two writers
//! whose transactions overlap between taking an id and committing. SQLite has one writer
//! at a time per database file (across processes too): a write transaction holds the
//! write lock from its first write to its commit, and an `INSERT` into `events` takes its
//! id (the largest ever used plus one: `AUTOINCREMENT` never reuses one, even after the
//! newest rows are deleted) under that lock, from the latest committed state. So ids are
//! committed in increasing order: when id 8 exists, 7 committed earlier or was rolled back
//! for good. In WAL mode a reader sees a snapshot of whole commits, so it sees a prefix of
//! the ids that will ever commit, and [`SessionStore::events`] can serve everything it sees.
//! A second writer does not wait with an id in hand: it cannot take one until the first
//! commits (its `BEGIN IMMEDIATE` waits for the lock, a deferred transaction's first
//! write fails or waits). `tests/outbox.rs` tries to interleave two writers around a
//! reader that polls between their steps, and shows the reader misses nothing.
//!
//! What would break it, and is not done here: `BEGIN CONCURRENT` (a SQLite branch, not
//! the release bundled here), or ids chosen outside SQLite (a clock, a counter in memory).
//!
//! # Atomicity
//!
//! Every method is one statement or one transaction. Transactions that read before they
//! write (`create`'s disabled/epoch/grantor checks and cap, `revoke_many`'s epoch bump and
//! revocation) start with `BEGIN IMMEDIATE`, which takes the write lock before the first
//! read: a login that raced a revoke-all either committed before it (and is revoked by it)
//! or sees the moved epoch and creates nothing; a grantor revoked concurrently is either
//! revoked before the grant's check or after the grant exists.
//!
//! `revoke_matching` evaluates the filter in SQL, in one transaction: `created_at < ?`,
//! `ip_key BETWEEN ? AND ?`, `instr(user_agent, ?) > 0` (byte for byte, not `LIKE`, which
//! folds case and reads `%` and `_`), `kind`, `idp_issuer`, `idp_sid`; only the fields set
//! become SQL. No record is loaded into the process except the ones it revokes (which it
//! returns). That transaction holds the write lock while it runs, and other writers wait
//! up to [`BUSY_TIMEOUT`]: on the machine measured (`tests/bench.rs`), 100,000 sessions
//! scanned and 10,000 revoked with their events took about half a second.
//!
//! The purge is the exception: deleting old rows needs no atomicity, and a year of
//! events deleted in one transaction would hold the lock for seconds, so it deletes in
//! batches of a few thousand rows, each its own transaction.
//!
//! # Security
//!
//! - The store keeps only [`SessionRecord::secret_hash`](session_core::SessionRecord)
//!   (SHA-256 of the token's secret), never the token or the secret: a copy of the
//!   database file holds no usable token.
//! - Every value is bound; the only SQL assembled at run time joins fixed fragments
//!   (which filter fields are set), never input.
//! - The file holds user ids, user agents and IP addresses: give it the permissions of any
//!   other personal data (the file is created with the process's umask). `Debug` of the
//!   store shows the file name and pool size only.
//! - `synchronous = FULL`: a committed revocation survives a power loss, not only a crash
//!   of the process.
//!
//! # Failure
//!
//! Every error is a [`StoreError`](session_core::StoreError), which the manager turns
//! into a 503, never a 401: a locked or unreadable database signs no one out.
//!
//! - Writers wait up to [`BUSY_TIMEOUT`] for SQLite's write lock, then fail with
//!   `StoreError::Backend` ("database is locked"), having written nothing.
//! - A pool with no free connection within sqlx's acquire timeout fails with
//!   `StoreError::Timeout`.
//! - A row that does not decode (hand-edited, written by a newer schema) is
//!   `StoreError::Corrupt`.
//! - [`SqliteStore::open`] fails when the parent directory is missing or not writable,
//!   when the file is not a SQLite database, or when its applied migrations differ from
//!   this crate's.

mod event_id;
mod open;
mod revoke;
mod rows;
mod store;

pub use open::{BUSY_TIMEOUT, SqliteStore};
