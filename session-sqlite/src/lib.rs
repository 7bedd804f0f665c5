//! The SQLite store for revocable sessions: embedded, persistent, for one node.
//!
//! [`SqliteStore`] keeps sessions and per-user revocation epochs in one SQLite file (WAL
//! mode), through [sqlx](https://docs.rs/sqlx) with SQLite bundled: no server to run,
//! and sessions and revocations survive a restart. It implements
//! [`SessionStore`], so a [`SessionManager`](session_core::SessionManager) uses it like any
//! other store. It has no push channel: one node has no other node to tell, so
//! [`SessionStore::publish`] and [`SessionStore::invalidations`] keep the trait's
//! defaults (nothing to send, nothing to receive). Several processes on one host may
//! open the same file; each then relies on its cache's staleness bound, as with any store
//! without push.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{
//!     Actor, ClientInfo, Denial, KeySet, Principal, RevocationReason, SessionConfig,
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
//! let manager = SessionManager::new(Arc::new(store), KeySet::random(), SessionConfig::default());
//!
//! let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
//! let token = issued.token.expose().as_bytes();
//! assert!(manager.validate(token).await.is_ok());
//!
//! manager
//!     .revoke(issued.session.id(), RevocationReason::SignedOut, Actor::User)
//!     .await?;
//! assert!(matches!(manager.validate(token).await, Err(Denial::Revoked)));
//! # Ok(())
//! # }
//! ```
//!
//! # Schema
//!
//! The migrations in `migrations/` (embedded with [`sqlx::migrate!`], applied by
//! [`SqliteStore::migrate`]) create:
//!
//! - `sessions`: one row per session (`id` as a hyphenated UUID, `secret_hash`, the
//!   principal as `user_id`/`kind`/`agent_id`/`agent_name`, `created_at`,
//!   `last_active_at`, `expires_at`, `user_agent`, `ip`, `revoked_at`,
//!   `revocation_reason`), indexed by `user_id` (revoke-all, revoke-others and the
//!   session list go through it, never a scan) and by `expires_at` (clean-up).
//! - `user_epochs`: each user's revocation epoch; a missing row is epoch 0.
//!
//! Timestamps are INTEGER unix **nanoseconds** (UTC): they round-trip exactly and every
//! comparison (expiry, `touch`'s "never backwards") is done in SQL on those integers. The
//! range this holds is 1677-09-21 to 2262-04-11; writing a timestamp outside it is an
//! error, and a `now` outside it is clamped.
//!
//! # Atomicity
//!
//! Every method is one statement or one transaction. `create` (epoch check + insert) and
//! `revoke_many` (epoch bump + `UPDATE … RETURNING`) run in `BEGIN IMMEDIATE`
//! transactions, which take SQLite's write lock before reading: a login that raced a
//! revoke-all either committed before it (and is revoked by it) or sees the moved epoch
//! and creates nothing.
//!
//! # Security
//!
//! - The store keeps only [`SessionRecord::secret_hash`] (SHA-256 of the token's secret),
//!   never the token or the secret: a copy of the database file holds no usable token.
//! - Every statement binds its values; none is built from input.
//! - The file holds user ids, user agents and IP addresses: give it the permissions of any
//!   other personal data (the file is created with the process's umask).
//! - `synchronous = FULL`: a committed revocation survives a power loss, not only a crash
//!   of the process.
//!
//! # Failure
//!
//! Every error is a [`StoreError`], which the manager turns into a 503, never a 401: a
//! locked or unreadable database signs no one out.
//!
//! - Writers wait up to [`BUSY_TIMEOUT`] for SQLite's write lock, then fail with
//!   [`StoreError::Backend`] ("database is locked").
//! - A pool with no free connection within sqlx's acquire timeout fails with
//!   [`StoreError::Timeout`].
//! - A row that does not decode (hand-edited, written by a newer schema) is
//!   [`StoreError::Corrupt`].
//! - [`SqliteStore::open`] fails when the parent directory is missing or not writable,
//!   when the file is not a SQLite database, or when its applied migrations differ from
//!   this crate's.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use session_core::store::{Created, RevokeMany};
use session_core::{
    AgentId, Principal, RevocationReason, RevokeScope, SessionId, SessionRecord, SessionStore,
    StoreError, UserId,
};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection as _, Row as _};
use time::OffsetDateTime;

/// How long a statement waits for SQLite's write lock before failing (`busy_timeout`).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The columns of `sessions`, in the order [`decode`] reads them.
macro_rules! columns {
    () => {
        "id, secret_hash, user_id, kind, agent_id, agent_name, created_at, last_active_at, \
         expires_at, user_agent, ip, revoked_at, revocation_reason"
    };
}

/// Sessions in one SQLite file. Cheap to clone (a handle on the connection pool).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens the database at `path` (creating the file if missing, not its directory),
    /// switches it to WAL mode, sets the busy timeout ([`BUSY_TIMEOUT`]) and
    /// `synchronous = FULL`, and applies the migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the file cannot be opened or created, is not a SQLite
    /// database, cannot be switched to WAL, or the migrations fail.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true);
        enable_wal(&options).await?;
        // The file is in WAL mode now (a persistent setting): the pool's connections need
        // not ask again, which would want an exclusive lock.
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .map_err(store_error)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// A store on a pool the application configured itself. Does not migrate: call
    /// [`migrate`](Self::migrate) (or run [`SqliteStore::migrator`] yourself) before use.
    /// Prefer WAL mode and a non-zero busy timeout on that pool's connections.
    #[must_use]
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Applies the pending migrations, in one `BEGIN IMMEDIATE` transaction, so processes
    /// that open a new file at the same time apply them once. Idempotent.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when a migration fails, or when the database holds a
    /// migration this crate does not know or one whose checksum differs.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)?;
        // Each migration runs in a savepoint of this transaction.
        run_migrations(&mut tx).await.map_err(StoreError::backend)?;
        tx.commit().await.map_err(store_error)
    }

    /// The embedded migrations, for applications that run migrations themselves.
    #[must_use]
    pub fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool: waits for the connections in use to come back, then closes them
    /// all (checkpointing the WAL). Later calls on this store (or its clones) fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Runs the migrator on one connection (inside the caller's transaction).
///
/// `Migrator::run` takes an `Acquire<'a>`; awaited in an async fn, that makes the future
/// not `Send` for every lifetime ("implementation of `Acquire` is not general enough"),
/// so `open` could not be spawned. `run_direct` is sqlx's own way around it (public, but
/// hidden from its docs).
async fn run_migrations(conn: &mut SqliteConnection) -> Result<(), MigrateError> {
    MIGRATOR.run_direct(None, conn, false).await
}

/// Puts the database in WAL mode. Switching needs an exclusive lock that SQLite's busy
/// timeout does not wait for, so a busy database is retried here for up to
/// [`BUSY_TIMEOUT`].
async fn enable_wal(options: &SqliteConnectOptions) -> Result<(), StoreError> {
    let mut conn = SqliteConnection::connect_with(options)
        .await
        .map_err(store_error)?;
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let result = loop {
        let attempt = async {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut conn)
                .await?;
            if mode.eq_ignore_ascii_case("wal") {
                return Ok(mode);
            }
            sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
                .fetch_one(&mut conn)
                .await
        }
        .await;
        match attempt {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => break Ok(()),
            Ok(mode) => {
                break Err(StoreError::backend(WalUnavailable(mode)));
            }
            Err(err) if is_busy(&err) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => break Err(store_error(err)),
        }
    };
    // The connection was only for the switch; failing to close it cleanly changes nothing.
    let _ = conn.close().await;
    result
}

/// `journal_mode = WAL` answered another mode (e.g. an in-memory database).
#[derive(Debug)]
struct WalUnavailable(String);

impl fmt::Display for WalUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not switch to WAL mode (journal mode is {:?})",
            self.0
        )
    }
}

impl std::error::Error for WalUnavailable {}

/// A timestamp the store cannot keep (outside 1677-09-21 ..= 2262-04-11 UTC).
#[derive(Debug)]
struct TimestampOutOfRange(OffsetDateTime);

impl fmt::Display for TimestampOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timestamp {} is outside what the SQLite session store keeps \
             (1677-09-21 to 2262-04-11 UTC)",
            self.0
        )
    }
}

impl std::error::Error for TimestampOutOfRange {}

/// SQLITE_BUSY or SQLITE_LOCKED, with any extended code.
fn is_busy(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

fn store_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::PoolTimedOut => StoreError::Timeout,
        err => StoreError::backend(err),
    }
}

/// A timestamp to store: exact, or an error.
fn nanos(at: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(at.unix_timestamp_nanos())
        .map_err(|_| StoreError::backend(TimestampOutOfRange(at)))
}

/// A timestamp to compare with: clamped to the range the store keeps.
fn nanos_clamped(at: OffsetDateTime) -> i64 {
    let n = at.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

fn from_nanos(column: &str, n: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn corrupt(err: sqlx::Error) -> StoreError {
    StoreError::Corrupt(err.to_string())
}

fn decode(row: &SqliteRow) -> Result<SessionRecord, StoreError> {
    let id: String = row.try_get("id").map_err(corrupt)?;
    let id = id
        .parse::<SessionId>()
        .map_err(|e| StoreError::Corrupt(format!("id: {e}")))?;
    let hash: Vec<u8> = row.try_get("secret_hash").map_err(corrupt)?;
    let secret_hash: [u8; 32] = hash
        .try_into()
        .map_err(|v: Vec<u8>| StoreError::Corrupt(format!("secret_hash: {} bytes", v.len())))?;
    let user_id = UserId::new(row.try_get::<String, _>("user_id").map_err(corrupt)?);
    let kind: String = row.try_get("kind").map_err(corrupt)?;
    let agent_id: Option<String> = row.try_get("agent_id").map_err(corrupt)?;
    let agent_name: Option<String> = row.try_get("agent_name").map_err(corrupt)?;
    let principal = match (kind.as_str(), agent_id, agent_name) {
        ("user", None, None) => Principal::User { user_id },
        ("agent", Some(agent_id), Some(agent_name)) => Principal::Agent {
            user_id,
            agent_id: AgentId::new(agent_id),
            agent_name,
        },
        (kind, ..) => {
            return Err(StoreError::Corrupt(format!(
                "session {id}: kind {kind:?} with inconsistent agent columns"
            )));
        }
    };
    let time = |column: &str| -> Result<OffsetDateTime, StoreError> {
        from_nanos(column, row.try_get(column).map_err(corrupt)?)
    };
    let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(corrupt)?;
    let reason: Option<String> = row.try_get("revocation_reason").map_err(corrupt)?;
    Ok(SessionRecord {
        id,
        secret_hash,
        principal,
        created_at: time("created_at")?,
        last_active_at: time("last_active_at")?,
        expires_at: time("expires_at")?,
        user_agent: row.try_get("user_agent").map_err(corrupt)?,
        ip: row.try_get("ip").map_err(corrupt)?,
        revoked_at: revoked_at
            .map(|n| from_nanos("revoked_at", n))
            .transpose()?,
        revocation_reason: reason.as_deref().map(RevocationReason::parse),
    })
}

fn decode_all(rows: &[SqliteRow]) -> Result<Vec<SessionRecord>, StoreError> {
    rows.iter().map(decode).collect()
}

fn epoch_from_db(epoch: i64) -> Result<u64, StoreError> {
    u64::try_from(epoch).map_err(|_| StoreError::Corrupt(format!("negative epoch {epoch}")))
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn user_epoch(&self, user_id: &UserId) -> Result<u64, StoreError> {
        let epoch: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM user_epochs WHERE user_id = ?1")
                .bind(user_id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
        epoch.map_or(Ok(0), epoch_from_db)
    }

    async fn create(
        &self,
        record: &SessionRecord,
        expected_epoch: u64,
    ) -> Result<Created, StoreError> {
        let created_at = nanos(record.created_at)?;
        let last_active_at = nanos(record.last_active_at)?;
        let expires_at = nanos(record.expires_at)?;
        let revoked_at = record.revoked_at.map(nanos).transpose()?;
        let user_id = record.user_id().as_str();

        // The write lock is taken before the epoch is read: no revoke-all can commit
        // between the check and the insert.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)?;
        let epoch: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM user_epochs WHERE user_id = ?1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
        let current = epoch.map_or(Ok(0), epoch_from_db)?;
        if current != expected_epoch {
            // Dropping `tx` rolls back; nothing was written.
            return Ok(Created::EpochMoved);
        }
        sqlx::query(concat!(
            "INSERT INTO sessions (",
            columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ))
        .bind(record.id.to_string())
        .bind(&record.secret_hash[..])
        .bind(user_id)
        .bind(record.principal.kind().as_str())
        .bind(record.principal.agent_id().map(AgentId::as_str))
        .bind(record.principal.agent_name())
        .bind(created_at)
        .bind(last_active_at)
        .bind(expires_at)
        .bind(record.user_agent.as_deref())
        .bind(record.ip.as_deref())
        .bind(revoked_at)
        .bind(
            record
                .revocation_reason
                .as_ref()
                .map(RevocationReason::as_str),
        )
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(Created::Created)
    }

    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM sessions WHERE id = ?1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(decode).transpose()
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        // `MAX` keeps it from moving backwards; the `WHERE` skips the write when it would
        // not move at all.
        sqlx::query(
            "UPDATE sessions SET last_active_at = MAX(last_active_at, ?2) \
             WHERE id = ?1 AND last_active_at < ?2",
        )
        .bind(id.to_string())
        .bind(nanos(at)?)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
             ORDER BY created_at, id"
        ))
        .bind(user_id.as_str())
        .bind(nanos_clamped(now))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        decode_all(&rows)
    }

    async fn revoke(
        &self,
        id: SessionId,
        reason: &RevocationReason,
        at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE sessions SET revoked_at = ?2, revocation_reason = ?3 \
             WHERE id = ?1 AND revoked_at IS NULL RETURNING ",
            columns!()
        ))
        .bind(id.to_string())
        .bind(nanos(at)?)
        .bind(reason.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(decode).transpose()
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<SessionRecord>, StoreError> {
        let at = nanos(req.at)?;
        let user_id = req.user_id.as_str();
        let except = req.except.map(|id| id.to_string());
        let reason = req.reason.as_str();

        // The write lock first: a racing login either committed before this transaction
        // (and its session is revoked here) or runs after it and sees the moved epoch.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)?;
        if req.scope.moves_epoch() {
            sqlx::query(
                "INSERT INTO user_epochs (user_id, epoch) VALUES (?1, 1) \
                 ON CONFLICT (user_id) DO UPDATE SET epoch = epoch + 1",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }

        // ?1 user, ?2 at, ?3 reason, ?4 except (or NULL), ?5 agent id.
        macro_rules! revoke_where {
            ($scope:literal) => {
                concat!(
                    "UPDATE sessions SET revoked_at = ?2, revocation_reason = ?3 \
                     WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
                     AND (?4 IS NULL OR id <> ?4)",
                    $scope,
                    " RETURNING ",
                    columns!()
                )
            };
        }
        let rows = match req.scope {
            RevokeScope::All => Some((revoke_where!(""), None)),
            RevokeScope::UserSessions => Some((revoke_where!(" AND agent_id IS NULL"), None)),
            RevokeScope::Agent(agent) => {
                Some((revoke_where!(" AND agent_id = ?5"), Some(agent.as_str())))
            }
            // A scope added to session-core after this crate: decide with `covers` on the
            // candidates, still inside this transaction.
            _ => None,
        };
        let revoked = if let Some((sql, agent)) = rows {
            let rows = sqlx::query(sql)
                .bind(user_id)
                .bind(at)
                .bind(reason)
                .bind(except.as_deref())
                .bind(agent)
                .fetch_all(&mut *tx)
                .await
                .map_err(store_error)?;
            decode_all(&rows)?
        } else {
            let rows = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
                 AND (?3 IS NULL OR id <> ?3)"
            ))
            .bind(user_id)
            .bind(at)
            .bind(except.as_deref())
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
            let mut revoked = Vec::new();
            for candidate in decode_all(&rows)? {
                if !req.scope.covers(&candidate) {
                    continue;
                }
                let row = sqlx::query(concat!(
                    "UPDATE sessions SET revoked_at = ?2, revocation_reason = ?3 \
                     WHERE id = ?1 AND revoked_at IS NULL RETURNING ",
                    columns!()
                ))
                .bind(candidate.id.to_string())
                .bind(at)
                .bind(reason)
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
                revoked.push(decode(&row)?);
            }
            revoked
        };
        tx.commit().await.map_err(store_error)?;
        Ok(revoked)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1")
            .bind(nanos_clamped(now))
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanosecond_timestamps_round_trip_and_clamp() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789).unwrap();
        assert_eq!(from_nanos("t", nanos(t).unwrap()).unwrap(), t);
        let far = OffsetDateTime::from_unix_timestamp(20_000_000_000).unwrap(); // year 2603
        assert!(nanos(far).is_err());
        assert_eq!(nanos_clamped(far), i64::MAX);
        let early = OffsetDateTime::from_unix_timestamp(-20_000_000_000).unwrap();
        assert_eq!(nanos_clamped(early), i64::MIN);
    }
}
