//! Test support: a store on a SQLite file in its own temporary directory, and a dump of
//! everything that file holds.

#![allow(dead_code)] // Each test binary uses a part.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use session_core::events::{AuditQuery, EventId, EventQuery, SessionEvent};
use session_core::store::{
    Change, Created, Matched, NewSession, Purged, Retention, RevokeMany, RevokedSession, UserState,
};
use session_core::{SessionFilter, SessionId, SessionRecord, SessionStore, StoreError, UserId};
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

/// Every method goes to the SQLite store (the suite sees `TempStore` as the store).
#[async_trait]
impl SessionStore for TempStore {
    async fn user_state(&self, user_id: &UserId) -> Result<UserState, StoreError> {
        self.store.user_state(user_id).await
    }

    async fn create(&self, new: NewSession<'_>) -> Result<Created, StoreError> {
        self.store.create(new).await
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
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.store.list_active(user_id, now, limit).await
    }

    async fn revoke(
        &self,
        id: SessionId,
        change: Change<'_>,
    ) -> Result<Option<RevokedSession>, StoreError> {
        self.store.revoke(id, change).await
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<RevokedSession>, StoreError> {
        self.store.revoke_many(req).await
    }

    async fn revoke_matching(
        &self,
        filter: &SessionFilter,
        change: Change<'_>,
        dry_run: bool,
    ) -> Result<Matched, StoreError> {
        self.store.revoke_matching(filter, change, dry_run).await
    }

    async fn set_user_disabled(&self, user_id: &UserId, disabled: bool) -> Result<(), StoreError> {
        self.store.set_user_disabled(user_id, disabled).await
    }

    async fn report_expired(
        &self,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<Option<SessionEvent>, StoreError> {
        self.store.report_expired(id, at).await
    }

    async fn append_event(&self, event: &SessionEvent) -> Result<EventId, StoreError> {
        self.store.append_event(event).await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<SessionEvent>, StoreError> {
        self.store.events(query).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<SessionEvent>, StoreError> {
        self.store.audit(query).await
    }

    async fn purge(&self, now: OffsetDateTime, retention: Retention) -> Result<Purged, StoreError> {
        self.store.purge(now, retention).await
    }

    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, StoreError> {
        self.store.first_use(key, until).await
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.store.try_lease(name, holder, ttl).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.store.release_lease(name, holder).await
    }

    async fn load_cursor(&self, name: &str) -> Result<Option<EventId>, StoreError> {
        self.store.load_cursor(name).await
    }

    async fn save_cursor(&self, name: &str, cursor: &EventId) -> Result<(), StoreError> {
        self.store.save_cursor(name, cursor).await
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
