//! [`SqliteStore`]: opening the file, WAL mode, migrations.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use session_core::StoreError;
use session_core::store::ip_key;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection as _, Row as _};

use crate::rows::{is_busy, store_error};

/// How long a statement waits for SQLite's write lock before failing (`busy_timeout`).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Sessions, their event log and the users' epochs in one SQLite file. Cheap to clone (a
/// handle on the connection pool).
///
/// ```
/// use std::sync::Arc;
/// use session_core::events::{AuditQuery, EventQuery};
/// use session_core::{
///     Actor, ClientInfo, EventType, KeySet, Principal, RevocationReason, SessionConfig,
///     SessionManager, SessionStore,
/// };
/// use session_sqlite::SqliteStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let store = Arc::new(SqliteStore::open(dir.path().join("sessions.db")).await?);
/// let manager = SessionManager::new(store.clone(), KeySet::random(), SessionConfig::default())?;
/// let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
/// manager
///     .revoke(issued.session.id(), RevocationReason::SignedOut, Actor::User)
///     .await?;
///
/// // Each change wrote its event in its own transaction: the log has both, in order.
/// let log = store.events(&EventQuery { limit: 10, ..EventQuery::default() }).await?;
/// let types: Vec<_> = log.iter().map(|e| e.event_type).collect();
/// assert_eq!(types, [EventType::Created, EventType::Revoked]);
/// assert_eq!(log[0].id.as_str(), "00000000000000000001");
/// let audit = store
///     .audit(&AuditQuery { user_id: "alice".into(), before: None, limit: 10 })
///     .await?;
/// assert_eq!(audit[0].id, log[1].id, "newest first");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

impl fmt::Debug for SqliteStore {
    // The file and the pool's size: nothing a record holds (IPs, user agents).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("file", &self.pool.connect_options().get_filename())
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path` (creating the file if missing, not its directory),
    /// switches it to WAL mode, sets the busy timeout ([`BUSY_TIMEOUT`]) and
    /// `synchronous = FULL`, and applies the migrations ([`migrate`](Self::migrate)).
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
    /// [`migrate`](Self::migrate) before use. The pool's connections should be in WAL
    /// mode (readers then never wait for the writer, nor it for them) and have a non-zero
    /// busy timeout (writers wait for the lock instead of failing at once).
    #[must_use]
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Applies the pending migrations, then fills in the network key of sessions written
    /// before migration 2 (SQL cannot parse an IPv6 address, so Rust does it here), all in
    /// one `BEGIN IMMEDIATE` transaction, so processes that open a new file at the same
    /// time apply them once. Idempotent; run it (not only [`migrator`](Self::migrator))
    /// after an upgrade.
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
        fill_in_ip_keys(&mut tx).await?;
        tx.commit().await.map_err(store_error)
    }

    /// The embedded migrations, for applications that run migrations themselves (then
    /// call [`migrate`](Self::migrate) too, which finds nothing left to apply and fills in
    /// what SQL cannot compute).
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

/// Computes `ip_key` for the rows that have an `ip` and no key yet (written under
/// migration 1): through a partial index that holds exactly those rows, so on an
/// up-to-date file this reads nothing.
async fn fill_in_ip_keys(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT id, ip FROM sessions WHERE ip IS NOT NULL AND ip_key IS NULL")
        .fetch_all(&mut *conn)
        .await
        .map_err(store_error)?;
    for row in rows {
        let id: String = row.try_get("id").map_err(store_error)?;
        let ip: String = row.try_get("ip").map_err(store_error)?;
        sqlx::query("UPDATE sessions SET ip_key = ?2 WHERE id = ?1")
            .bind(id)
            .bind(ip_key(&ip).unwrap_or_default())
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
    }
    Ok(())
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
