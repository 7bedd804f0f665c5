//! Test support: a store on a SQLite file in its own temporary directory, and a dump of
//! everything that file holds.

#![allow(dead_code)] // Each test binary uses a part.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use session_core::store::{Created, RevokeMany};
use session_core::{RevocationReason, SessionId, SessionRecord, SessionStore, StoreError, UserId};
use session_sqlite::SqliteStore;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Connection as _, Row as _, SqliteConnection};
use tempfile::TempDir;
use time::OffsetDateTime;

/// A [`SqliteStore`] on `sessions.db` in a fresh temporary directory, deleted on drop.
#[derive(Debug)]
pub struct TempStore {
    pub store: SqliteStore,
    pub path: PathBuf,
    _dir: TempDir,
}

/// Paths of the live [`TempStore`]s, by address, so the suite's `dump` (which gets an
/// `Arc<dyn SessionStore>`) finds the file behind a store.
static PATHS: Mutex<Vec<(usize, PathBuf)>> = Mutex::new(Vec::new());

fn address<T: ?Sized>(store: *const T) -> usize {
    store.cast::<()>() as usize
}

impl TempStore {
    /// Opens a store on a new file.
    pub async fn open() -> Arc<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sessions.db");
        let store = SqliteStore::open(&path).await.expect("open sqlite store");
        let this = Arc::new(Self {
            store,
            path: path.clone(),
            _dir: dir,
        });
        PATHS
            .lock()
            .unwrap()
            .push((address(Arc::as_ptr(&this)), path));
        this
    }

    /// The file behind a store made by [`TempStore::open`].
    pub fn path_of(store: &Arc<dyn SessionStore>) -> PathBuf {
        PATHS
            .lock()
            .unwrap()
            .iter()
            .find(|(a, _)| *a == address(Arc::as_ptr(store)))
            .map(|(_, path)| path.clone())
            .expect("a TempStore")
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        if let Ok(mut paths) = PATHS.lock() {
            let me = address(self as *const Self);
            paths.retain(|(a, _)| *a != me);
        }
    }
}

#[async_trait]
impl SessionStore for TempStore {
    async fn user_epoch(&self, user_id: &UserId) -> Result<u64, StoreError> {
        self.store.user_epoch(user_id).await
    }

    async fn create(&self, record: &SessionRecord, epoch: u64) -> Result<Created, StoreError> {
        self.store.create(record, epoch).await
    }

    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.store.load(id).await
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.store.touch(id, at).await
    }

    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.store.list_active(user_id, now).await
    }

    async fn revoke(
        &self,
        id: SessionId,
        reason: &RevocationReason,
        at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.store.revoke(id, reason, at).await
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<SessionRecord>, StoreError> {
        self.store.revoke_many(req).await
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.store.purge_expired(now).await
    }
}

/// Every row of every table in the file, as text: one line per row, `table: col=value, …`,
/// blobs in hex (`hex(col)`), through a connection of its own.
pub async fn dump(path: &Path) -> String {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .expect("open for dump");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .expect("tables");
    assert!(tables.iter().any(|t| t == "sessions"), "tables: {tables:?}");
    let mut out = String::new();
    for table in tables {
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                .bind(&table)
                .fetch_all(&mut conn)
                .await
                .expect("columns");
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let select = columns
            .iter()
            .map(|c| {
                let c = quote(c);
                format!("CASE typeof({c}) WHEN 'blob' THEN hex({c}) ELSE CAST({c} AS TEXT) END")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {select} FROM {}", quote(&table));
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .expect("rows");
        for row in rows {
            out.push_str(&table);
            out.push(':');
            for (i, column) in columns.iter().enumerate() {
                let value: Option<String> = row.try_get(i).expect("text");
                out.push_str(&format!(" {column}={}", value.as_deref().unwrap_or("NULL")));
            }
            out.push('\n');
        }
    }
    conn.close().await.expect("close");
    out
}
