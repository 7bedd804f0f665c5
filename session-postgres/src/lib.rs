//! [`PostgresStore`]: revocable sessions in PostgreSQL, with revocations pushed to every
//! node over `LISTEN`/`NOTIFY`.
//!
//! The store implements [`SessionStore`] with [sqlx](https://docs.rs/sqlx). Every method is
//! one SQL statement, so one round trip (plus, the first time a pooled connection runs a
//! given statement, sqlx's prepare). Revoke-all moves the user's epoch and revokes in that
//! one statement, through a PL/pgSQL function, so a login that read the old epoch either
//! lands before it (and is revoked by it) or fails. Its tables live in their own schema,
//! `session_revocation` ([`SCHEMA`]), created by [`PostgresStore::migrate`]:
//!
//! | table | holds |
//! | --- | --- |
//! | `session_revocation.sessions` | one row per session: id, SHA-256 of the token's secret, user, kind, agent, times, client, revocation; indexed by `user_id` and by `expires_at` |
//! | `session_revocation.user_epochs` | each user's revocation epoch (no row: 0) |
//! | `session_revocation._sqlx_migrations` | the migrator's bookkeeping, apart from the application's own `_sqlx_migrations` |
//!
//! The schema name is fixed (the migrations name it); a dedicated schema keeps the tables
//! clear of the application's own `sessions` table.
//!
//! Revoking publishes the ids with `pg_notify` on the channel `session_revocations`
//! ([`CHANNEL`]); every store instance listens on it from a background task and hands the
//! ids to the [`SessionManager`](session_core::SessionManager) through
//! [`SessionStore::invalidations`]. After the listener (re)connects, or when a publisher's
//! sequence numbers skip, it sends [`Invalidation::Resync`] instead, since it may have
//! missed messages. A store receives its own publications too (the manager that revoked
//! has already applied them; the repeat costs at most one reload).
//! [`PostgresStore::wait_listening`] tells when the listener is up (readiness checks).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_core::{KeySet, SessionConfig, SessionManager};
//! use session_postgres::PostgresStore;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresStore::connect("postgres://app@db.internal/app").await?;
//! store.migrate().await?; // idempotent; safe to run from every node at once
//! let manager = SessionManager::new(Arc::new(store), KeySet::random(), SessionConfig::default());
//! # let _ = manager;
//! # Ok(())
//! # }
//! ```
//!
//! # Notification format
//!
//! Each notification's payload is JSON, at most about 7.1 KB (PostgreSQL refuses 8000 bytes
//! and more), so a long id list goes out as several notifications from one statement:
//!
//! ```json
//! {"v":1,"publisher":"6f1c…","seq":41,"ids":["0b6e…","9d2a…"]}
//! ```
//!
//! `publisher` is random per store instance, `seq` counts that instance's notifications
//! from 0 without gaps (one publication at a time), `ids` are the revoked session ids (at
//! most 180).
//!
//! # Security
//!
//! - The `sessions` table holds a SHA-256 hash of each token's secret, never the token or the
//!   secret: a dump of the database signs no one in.
//! - Every value reaches PostgreSQL as a bound parameter; no SQL is built from input.
//! - The notification channel carries session ids only (not secrets). Anyone who can run
//!   `NOTIFY` on the database can make nodes drop cache entries (they reload from the
//!   store) or resync; they cannot make a revoked session valid.
//! - The store's `Debug` shows no connection string or password.
//!
//! # Failure
//!
//! - Store errors are [`StoreError`]s: [`StoreError::Timeout`] when no connection came
//!   within the pool's acquire timeout (5 s from [`PostgresStore::connect`]),
//!   [`StoreError::Corrupt`] for a row that does not decode, [`StoreError::Backend`] for the
//!   rest. The manager answers them with a 503 and signs no one out.
//! - The listener reconnects on its own (with backoff up to 5 s) after a lost connection, a
//!   `pg_terminate_backend`, or a server restart, and sends [`Invalidation::Resync`] once it
//!   listens again. A store-wide heartbeat (a `NOTIFY` to the instance's own channel every
//!   10 s) catches a connection that died silently: 35 s without one and the listener is
//!   rebuilt. While the listener is down, other nodes' revocations reach this node's cache
//!   only through its staleness bound.
//! - [`SessionStore::publish`] gives up after 5 s; the manager logs the failure, and the
//!   other nodes learn within their staleness bound.
//! - Push needs a Tokio runtime when the store is built; without one the store still works,
//!   but [`SessionStore::invalidations`] is `None` (and a warning is logged).
//! - Timestamps are kept to the microsecond (`timestamptz`); finer parts are cut off.
//! - The statements are written for `READ COMMITTED` (PostgreSQL's default), which
//!   [`PostgresStore::connect`] pins. On a pool of yours running `REPEATABLE READ` or
//!   `SERIALIZABLE`, concurrent logins and revoke-alls of one user fail with serialization
//!   errors (40001) instead: never a login that survives a revoke-all, but errors.

mod notify;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use session_core::StoreError;
use session_core::model::{AgentId, Principal, RevocationReason, SessionId, SessionRecord, UserId};
use session_core::store::{Created, Invalidation, RevokeMany, RevokeScope, SessionStore};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use time::OffsetDateTime;
use tokio::sync::{Mutex, broadcast, watch};
use tokio::task::AbortHandle;
use uuid::Uuid;

pub use notify::CHANNEL;

/// The schema holding the store's tables.
pub const SCHEMA: &str = "session_revocation";

/// The migrator's bookkeeping table, apart from the application's `_sqlx_migrations`.
const MIGRATIONS_TABLE: &str = "session_revocation._sqlx_migrations";

/// The `application_name` of the pool's connections when the URL sets none.
pub const APPLICATION_NAME: &str = "session-postgres";

/// How long [`PostgresStore::connect`]'s pool waits for a connection (connecting included).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`SessionStore::publish`] may take.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Broadcast buffer of invalidations per receiver; a receiver that lags further resyncs.
const INVALIDATION_CAPACITY: usize = 4096;

/// The sessions table's columns, in [`Row`]'s order.
macro_rules! columns {
    () => {
        "id, secret_hash, user_id, kind, agent_id, agent_name, created_at, last_active_at, \
         expires_at, user_agent, ip, revoked_at, revocation_reason"
    };
}

const SQL_USER_EPOCH: &str = "SELECT epoch FROM session_revocation.user_epochs WHERE user_id = $1";

/// Create: the upsert locks the user's epoch row (waiting for a revoke-all that holds it)
/// and returns its newest epoch, even one committed after this statement's snapshot; the
/// session is inserted only if that epoch is the expected one.
const SQL_CREATE: &str = concat!(
    "WITH epoch AS (
        INSERT INTO session_revocation.user_epochs AS e (user_id, epoch) VALUES ($3, 0)
        ON CONFLICT (user_id) DO UPDATE SET epoch = e.epoch
        RETURNING e.epoch
    )
    INSERT INTO session_revocation.sessions (",
    columns!(),
    ")
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
      FROM epoch WHERE epoch.epoch = $14"
);

const SQL_LOAD: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM session_revocation.sessions WHERE id = $1"
);

const SQL_TOUCH: &str = "UPDATE session_revocation.sessions
    SET last_active_at = GREATEST(last_active_at, $2)
    WHERE id = $1 AND last_active_at < $2";

const SQL_LIST_ACTIVE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM session_revocation.sessions
      WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2"
);

const SQL_REVOKE: &str = concat!(
    "UPDATE session_revocation.sessions SET revoked_at = $2, revocation_reason = $3
      WHERE id = $1 AND revoked_at IS NULL
      RETURNING ",
    columns!()
);

/// Revoke-all: one statement; the function moves the epoch, then revokes with a fresh
/// snapshot (see the migration).
const SQL_REVOKE_ALL: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM session_revocation.revoke_all_sessions($1, $2, $3, $4)"
);

const SQL_REVOKE_USER_SESSIONS: &str = concat!(
    "UPDATE session_revocation.sessions SET revoked_at = $3, revocation_reason = $4
      WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $3
        AND ($2::uuid IS NULL OR id <> $2)
        AND kind = 'user'
      RETURNING ",
    columns!()
);

const SQL_REVOKE_AGENT: &str = concat!(
    "UPDATE session_revocation.sessions SET revoked_at = $3, revocation_reason = $4
      WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $3
        AND ($2::uuid IS NULL OR id <> $2)
        AND agent_id = $5
      RETURNING ",
    columns!()
);

const SQL_PURGE: &str = "DELETE FROM session_revocation.sessions WHERE expires_at <= $1";

const SQL_PUBLISH: &str = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload";

/// Sessions in PostgreSQL; see the [crate documentation](crate).
///
/// Cheap to clone: clones share the pool, the listener and the publisher's sequence. The
/// listener stops when the last clone is dropped.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    publisher: Uuid,
    /// The next sequence number; held across a publication so that numbers go out in order.
    next_seq: Mutex<u64>,
    invalidations: Option<broadcast::Sender<Invalidation>>,
    listening: watch::Receiver<bool>,
    listener_application_name: String,
    tasks: Vec<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the pool: its connect options hold the password.
        f.debug_struct("PostgresStore")
            .field("schema", &SCHEMA)
            .field("channel", &CHANNEL)
            .field("publisher", &self.inner.publisher)
            .field("pool_size", &self.inner.pool.size())
            .field("pool_idle", &self.inner.pool.num_idle())
            .field("push", &self.inner.invalidations.is_some())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (a `postgres://` URL) with [`Self::pool_options`],
    /// and starts the revocation listener.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] for a bad URL or a server that refuses the connection,
    /// [`StoreError::Timeout`] for one that does not answer within [`ACQUIRE_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(store_error)?;
        Self::connect_with(options).await
    }

    /// As [`Self::connect`], with connect options of your own. Sets `application_name` to
    /// [`APPLICATION_NAME`] unless the options name one, and pins the connections'
    /// `default_transaction_isolation` to `read committed` (whatever the database's
    /// default), which the store's statements are written for.
    ///
    /// # Errors
    ///
    /// As [`Self::connect`].
    pub async fn connect_with(mut options: PgConnectOptions) -> Result<Self, StoreError> {
        if options.get_application_name().is_none() {
            options = options.application_name(APPLICATION_NAME);
        }
        options = options.options([("default_transaction_isolation", "read committed")]);
        let pool = Self::pool_options()
            .connect_with(options)
            .await
            .map_err(store_error)?;
        Ok(Self::from_pool(pool))
    }

    /// The pool settings [`Self::connect`] uses: up to 10 connections, a connection within
    /// [`ACQUIRE_TIMEOUT`] (connecting included) or [`StoreError::Timeout`], idle
    /// connections closed after 10 minutes, every connection replaced after 30.
    #[must_use]
    pub fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(10)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(600))
            .max_lifetime(Duration::from_secs(1800))
    }

    /// A store over an existing pool. Give it an acquire timeout (the store relies on it
    /// for deadlines) and `READ COMMITTED` connections (PostgreSQL's default; see
    /// [`Self::connect_with`]). Starts the revocation listener on a connection of its own, opened
    /// with the pool's connect options, if a Tokio runtime is running; otherwise push is
    /// off ([`SessionStore::invalidations`] returns `None`).
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self::with_timing(pool, notify::Timing::default())
    }

    fn with_timing(pool: PgPool, timing: notify::Timing) -> Self {
        let publisher = Uuid::new_v4();
        let listener_application_name = format!(
            "{APPLICATION_NAME}-listener-{}",
            &publisher.simple().to_string()[..12]
        );
        let mut tasks = Vec::new();
        let mut invalidations = None;
        let (listening_tx, listening) = watch::channel(false);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (tx, _) = broadcast::channel(INVALIDATION_CAPACITY);
            let heartbeat_channel = format!("{CHANNEL}_hb_{}", publisher.simple());
            let options = (*pool.connect_options())
                .clone()
                .application_name(&listener_application_name);
            let listener = notify::Listener {
                options,
                heartbeat_channel: heartbeat_channel.clone(),
                tx: tx.clone(),
                listening: listening_tx,
                timing,
            };
            tasks.push(runtime.spawn(listener.run()).abort_handle());
            tasks.push(
                runtime
                    .spawn(notify::heartbeat(pool.clone(), heartbeat_channel, timing))
                    .abort_handle(),
            );
            invalidations = Some(tx);
        } else {
            tracing::warn!(
                "PostgresStore built outside a Tokio runtime: revocations from other nodes are not pushed"
            );
        }
        Self {
            inner: Arc::new(Inner {
                pool,
                publisher,
                next_seq: Mutex::new(0),
                invalidations,
                listening,
                listener_application_name,
                tasks,
            }),
        }
    }

    /// Creates the schema, tables, indexes and function, or brings them up to date. Safe to
    /// run concurrently from many nodes: the migrator holds a PostgreSQL advisory lock
    /// while it works. Its bookkeeping is `session_revocation._sqlx_migrations`, so it does
    /// not mix with the application's own sqlx migrations.
    ///
    /// # Errors
    ///
    /// The database's error, or a changed migration ([`StoreError::Backend`]).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.create_schema(SCHEMA);
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        // A pool of its own, closed afterwards whatever happens: the migrator releases its
        // session-level advisory lock only on success, and a connection still holding it
        // must not go back to the store's pool.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.inner.pool.options().get_acquire_timeout())
            .connect_with((*self.inner.pool.connect_options()).clone())
            .await
            .map_err(store_error)?;
        let result = migrator.run(&pool).await;
        pool.close().await;
        result.map_err(StoreError::backend)
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Whether the revocation listener is connected and listening now.
    #[must_use]
    pub fn is_listening(&self) -> bool {
        *self.inner.listening.borrow()
    }

    /// Waits up to `deadline` for the revocation listener to listen (a readiness check;
    /// tests). False on timeout, and when push is off.
    pub async fn wait_listening(&self, deadline: Duration) -> bool {
        let mut listening = self.inner.listening.clone();
        matches!(
            tokio::time::timeout(deadline, listening.wait_for(|up| *up)).await,
            Ok(Ok(_))
        )
    }

    /// This instance's id in notifications (`publisher`).
    #[must_use]
    pub fn publisher_id(&self) -> Uuid {
        self.inner.publisher
    }

    /// The `application_name` of the listener's connection
    /// (`session-postgres-listener-` and 12 hex digits), to find it in `pg_stat_activity`.
    #[must_use]
    pub fn listener_application_name(&self) -> &str {
        &self.inner.listener_application_name
    }
}

/// Maps a driver error: pool timeouts to [`StoreError::Timeout`], undecodable rows to
/// [`StoreError::Corrupt`], the rest to [`StoreError::Backend`].
fn store_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::PoolTimedOut => StoreError::Timeout,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(err.to_string()),
        other => StoreError::backend(other),
    }
}

/// A row of `session_revocation.sessions`.
#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    secret_hash: Vec<u8>,
    user_id: String,
    kind: String,
    agent_id: Option<String>,
    agent_name: Option<String>,
    created_at: OffsetDateTime,
    last_active_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    user_agent: Option<String>,
    ip: Option<String>,
    revoked_at: Option<OffsetDateTime>,
    revocation_reason: Option<String>,
}

impl TryFrom<Row> for SessionRecord {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        let secret_hash: [u8; 32] = row.secret_hash.try_into().map_err(|h: Vec<u8>| {
            StoreError::Corrupt(format!(
                "session {}: secret hash of {} bytes",
                row.id,
                h.len()
            ))
        })?;
        let user_id = UserId::new(row.user_id);
        let principal = match (row.kind.as_str(), row.agent_id, row.agent_name) {
            ("user", None, None) => Principal::User { user_id },
            ("agent", Some(agent_id), Some(agent_name)) => Principal::Agent {
                user_id,
                agent_id: AgentId::new(agent_id),
                agent_name,
            },
            (kind, ..) => {
                return Err(StoreError::Corrupt(format!(
                    "session {}: kind {kind:?} with inconsistent agent fields",
                    row.id
                )));
            }
        };
        Ok(Self {
            id: SessionId::from(row.id),
            secret_hash,
            principal,
            created_at: row.created_at,
            last_active_at: row.last_active_at,
            expires_at: row.expires_at,
            user_agent: row.user_agent,
            ip: row.ip,
            revoked_at: row.revoked_at,
            revocation_reason: row
                .revocation_reason
                .as_deref()
                .map(RevocationReason::parse),
        })
    }
}

fn records(rows: Vec<Row>) -> Result<Vec<SessionRecord>, StoreError> {
    rows.into_iter().map(SessionRecord::try_from).collect()
}

fn epoch_to_sql(epoch: u64) -> Result<i64, StoreError> {
    i64::try_from(epoch).map_err(|_| StoreError::Corrupt(format!("epoch {epoch} out of range")))
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn user_epoch(&self, user_id: &UserId) -> Result<u64, StoreError> {
        let epoch: Option<i64> = sqlx::query_scalar(SQL_USER_EPOCH)
            .bind(user_id.as_str())
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(store_error)?;
        let epoch = epoch.unwrap_or(0);
        u64::try_from(epoch).map_err(|_| StoreError::Corrupt(format!("negative epoch {epoch}")))
    }

    async fn create(
        &self,
        record: &SessionRecord,
        expected_epoch: u64,
    ) -> Result<Created, StoreError> {
        let done = sqlx::query(SQL_CREATE)
            .bind(record.id.as_uuid())
            .bind(&record.secret_hash[..])
            .bind(record.user_id().as_str())
            .bind(record.principal.kind().as_str())
            .bind(record.principal.agent_id().map(AgentId::as_str))
            .bind(record.principal.agent_name())
            .bind(record.created_at)
            .bind(record.last_active_at)
            .bind(record.expires_at)
            .bind(record.user_agent.as_deref())
            .bind(record.ip.as_deref())
            .bind(record.revoked_at)
            .bind(
                record
                    .revocation_reason
                    .as_ref()
                    .map(RevocationReason::as_str),
            )
            .bind(epoch_to_sql(expected_epoch)?)
            .execute(&self.inner.pool)
            .await
            .map_err(store_error)?;
        Ok(if done.rows_affected() == 1 {
            Created::Created
        } else {
            Created::EpochMoved
        })
    }

    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        sqlx::query_as::<_, Row>(SQL_LOAD)
            .bind(id.as_uuid())
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(store_error)?
            .map(SessionRecord::try_from)
            .transpose()
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(SQL_TOUCH)
            .bind(id.as_uuid())
            .bind(at)
            .execute(&self.inner.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query_as::<_, Row>(SQL_LIST_ACTIVE)
            .bind(user_id.as_str())
            .bind(now)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(store_error)?;
        records(rows)
    }

    async fn revoke(
        &self,
        id: SessionId,
        reason: &RevocationReason,
        at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        sqlx::query_as::<_, Row>(SQL_REVOKE)
            .bind(id.as_uuid())
            .bind(at)
            .bind(reason.as_str())
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(store_error)?
            .map(SessionRecord::try_from)
            .transpose()
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<SessionRecord>, StoreError> {
        let except = req.except.map(|id| id.as_uuid());
        let query = match req.scope {
            RevokeScope::All => sqlx::query_as::<_, Row>(SQL_REVOKE_ALL)
                .bind(req.user_id.as_str())
                .bind(except)
                .bind(req.reason.as_str())
                .bind(req.at),
            RevokeScope::UserSessions => sqlx::query_as::<_, Row>(SQL_REVOKE_USER_SESSIONS)
                .bind(req.user_id.as_str())
                .bind(except)
                .bind(req.at)
                .bind(req.reason.as_str()),
            RevokeScope::Agent(agent) => sqlx::query_as::<_, Row>(SQL_REVOKE_AGENT)
                .bind(req.user_id.as_str())
                .bind(except)
                .bind(req.at)
                .bind(req.reason.as_str())
                .bind(agent.as_str()),
            other => {
                return Err(StoreError::backend(std::io::Error::other(format!(
                    "revocation scope {other:?} is not supported by this store"
                ))));
            }
        };
        let rows = query
            .fetch_all(&self.inner.pool)
            .await
            .map_err(store_error)?;
        records(rows)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(sqlx::query(SQL_PURGE)
            .bind(now)
            .execute(&self.inner.pool)
            .await
            .map_err(store_error)?
            .rows_affected())
    }

    async fn publish(&self, revoked: &[SessionId]) -> Result<(), StoreError> {
        if revoked.is_empty() {
            return Ok(());
        }
        let publication = async {
            // One publication at a time: sequence numbers then reach the listeners in order
            // (notifications are delivered in commit order), so a skip means a loss.
            let mut next = self.inner.next_seq.lock().await;
            let payloads = notify::encode(self.inner.publisher, *next, revoked);
            // Consumed even if the statement fails: listeners then see a gap and resync,
            // which is right when it is unknown whether anything was delivered.
            *next += payloads.len() as u64;
            sqlx::query(SQL_PUBLISH)
                .bind(CHANNEL)
                .bind(payloads)
                .execute(&self.inner.pool)
                .await
                .map_err(store_error)
        };
        match tokio::time::timeout(PUBLISH_TIMEOUT, publication).await {
            Ok(result) => result.map(drop),
            Err(_) => Err(StoreError::Timeout),
        }
    }

    fn invalidations(&self) -> Option<broadcast::Receiver<Invalidation>> {
        self.inner
            .invalidations
            .as_ref()
            .map(broadcast::Sender::subscribe)
    }
}

#[doc(hidden)]
pub mod __private {
    //! Test hooks; not part of the API.
    use std::time::Duration;

    use sqlx::postgres::PgPool;

    use crate::PostgresStore;
    use crate::notify::Timing;

    /// A store whose listener heartbeat and silence deadline are `heartbeat` and `silence`.
    #[must_use]
    pub fn with_listener_timing(
        pool: PgPool,
        heartbeat: Duration,
        silence: Duration,
    ) -> PostgresStore {
        PostgresStore::with_timing(
            pool,
            Timing {
                heartbeat,
                silence,
                ..Timing::default()
            },
        )
    }
}
