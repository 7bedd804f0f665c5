//! Run with `cargo run -p session-webhooks --example webhook_node` and the settings below:
//! one node delivering a store's events to `WEBHOOK_URL`, until it is killed. The crash
//! test (`tests/crash.rs`) starts it, kills it with SIGKILL mid-backlog, and starts it
//! again.
//!
//! Settings (environment):
//!
//! - `WEBHOOK_URL`, `WEBHOOK_SECRET` (comma-separated while rotating): where and how.
//! - `NODE_STORE`: `sqlite://PATH` (a SQLite file), `redis://…` (keys under
//!   `NODE_REDIS_PREFIX`, default `session:`) or `postgres://…`, or
//!   `seeded-memory://N?cursor=PATH`: a `MemoryStore` filled at start with the crash
//!   test's log of `N` events (the same ids on every start), whose saved cursors live in
//!   files in the directory `PATH`, so that they outlive the process as a durable store's
//!   would.
//! - `NODE_ID` (default: random), `NODE_NAME` (the lease and cursor name; default from the
//!   URL), `NODE_LEASE_MS` (default 5000), `NODE_CONCURRENCY`
//!   (default 4), `NODE_BACKOFF_MS` (first and max retry delay, default `100,1000`).
//! - `RUST_LOG` for the log (default `info`).
//!
//! It prints `webhook node ready` once the worker runs.

#[path = "../tests/common/seed.rs"]
mod seed;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use session_core::{MemoryStore, SessionStore};
use session_webhooks::WebhookWorker;
use session_webhooks::signature::WebhookSecret;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("webhook_node: {err}");
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error>;

fn setting(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

fn number(name: &str, default: u64) -> Result<u64, Error> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}: not a number: {v}").into()),
        Err(_) => Ok(default),
    }
}

async fn run() -> Result<(), Error> {
    let url = setting("WEBHOOK_URL")?;
    let secrets = WebhookSecret::parse_list(&setting("WEBHOOK_SECRET")?)?;
    let store = open(&setting("NODE_STORE")?).await?;
    let (base, max) = match std::env::var("NODE_BACKOFF_MS") {
        Ok(v) => {
            let (a, b) = v.split_once(',').ok_or("NODE_BACKOFF_MS: FIRST,MAX")?;
            (a.parse()?, b.parse()?)
        }
        Err(_) => (100, 1000),
    };
    let mut worker = WebhookWorker::new(store, url, secrets)?
        .with_lease_ttl(Duration::from_millis(number("NODE_LEASE_MS", 5000)?))?
        .with_concurrency(usize::try_from(number("NODE_CONCURRENCY", 4)?)?)?
        .with_backoff(Duration::from_millis(base), Duration::from_millis(max))?
        .with_poll_interval(Duration::from_millis(100))?;
    if let Ok(id) = std::env::var("NODE_ID") {
        worker = worker.with_node_id(id)?;
    }
    if let Ok(name) = std::env::var("NODE_NAME") {
        worker = worker.with_name(name)?;
    }
    let _handle = worker.spawn()?;
    println!("webhook node ready");
    // Until killed.
    std::future::pending::<()>().await;
    Ok(())
}

async fn open(spec: &str) -> Result<Arc<dyn SessionStore>, Error> {
    if let Some(rest) = spec.strip_prefix("seeded-memory://") {
        let (n, cursor) = rest
            .split_once("?cursor=")
            .ok_or("NODE_STORE: seeded-memory://N?cursor=PATH")?;
        let memory = Arc::new(MemoryStore::new());
        seed::seed(memory.clone(), n.parse()?).await;
        let memory = Arc::into_inner(memory).ok_or("the seeding manager still holds the store")?;
        return Ok(Arc::new(cursor_file::CursorFile::new(
            memory,
            PathBuf::from(cursor),
        )));
    }
    if let Some(path) = spec.strip_prefix("sqlite://") {
        return Ok(Arc::new(session_sqlite::SqliteStore::open(path).await?));
    }
    if spec.starts_with("redis://") {
        let prefix = std::env::var("NODE_REDIS_PREFIX").unwrap_or_else(|_| "session:".into());
        return Ok(Arc::new(
            session_redis::RedisStore::with_prefix(spec, &prefix).await?,
        ));
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let store = session_postgres::PostgresStore::connect(spec).await?;
        store.migrate().await?;
        return Ok(Arc::new(store));
    }
    Err(format!("NODE_STORE: unknown store {spec}").into())
}

/// A store whose saved cursors live in a file, and everything else in a `MemoryStore`.
mod cursor_file {
    use std::path::PathBuf;
    use std::time::Duration;

    use async_trait::async_trait;
    use session_core::events::{AuditQuery, EventQuery};
    use session_core::store::{
        Change, Created, Matched, NewSession, Purged, Retention, RevokeMany, RevokedSession,
        SessionFilter, UserState,
    };
    use session_core::{
        EventId, MemoryStore, SessionEvent, SessionId, SessionRecord, SessionStore, StoreError,
        UserId,
    };
    use time::OffsetDateTime;

    /// Cursors in `dir/NAME` files (the name hex-encoded), written whole and renamed into
    /// place, so a process killed mid-write leaves the previous cursor.
    #[derive(Debug)]
    pub struct CursorFile {
        inner: MemoryStore,
        dir: PathBuf,
    }

    impl CursorFile {
        pub fn new(inner: MemoryStore, dir: PathBuf) -> Self {
            Self { inner, dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.join(hex::encode(name))
        }
    }

    fn io(err: std::io::Error) -> StoreError {
        StoreError::backend(err)
    }

    #[async_trait]
    impl SessionStore for CursorFile {
        async fn load_cursor(&self, name: &str) -> Result<Option<EventId>, StoreError> {
            match std::fs::read_to_string(self.path(name)) {
                Ok(text) => Ok(Some(EventId::new(text))),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(io(err)),
            }
        }

        async fn save_cursor(&self, name: &str, cursor: &EventId) -> Result<(), StoreError> {
            let path = self.path(name);
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, cursor.as_str()).map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)
        }

        async fn user_state(&self, user_id: &UserId) -> Result<UserState, StoreError> {
            self.inner.user_state(user_id).await
        }
        async fn create(&self, new: NewSession<'_>) -> Result<Created, StoreError> {
            self.inner.create(new).await
        }
        async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
            self.inner.load(id).await
        }
        async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
            self.inner.touch(id, at).await
        }
        async fn list_active(
            &self,
            user_id: &UserId,
            now: OffsetDateTime,
            limit: usize,
        ) -> Result<Vec<SessionRecord>, StoreError> {
            self.inner.list_active(user_id, now, limit).await
        }
        async fn revoke(
            &self,
            id: SessionId,
            change: Change<'_>,
        ) -> Result<Option<RevokedSession>, StoreError> {
            self.inner.revoke(id, change).await
        }
        async fn revoke_many(
            &self,
            req: RevokeMany<'_>,
        ) -> Result<Vec<RevokedSession>, StoreError> {
            self.inner.revoke_many(req).await
        }
        async fn revoke_matching(
            &self,
            filter: &SessionFilter,
            change: Change<'_>,
            dry_run: bool,
        ) -> Result<Matched, StoreError> {
            self.inner.revoke_matching(filter, change, dry_run).await
        }
        async fn set_user_disabled(
            &self,
            user_id: &UserId,
            disabled: bool,
        ) -> Result<(), StoreError> {
            self.inner.set_user_disabled(user_id, disabled).await
        }
        async fn report_expired(
            &self,
            id: SessionId,
            at: OffsetDateTime,
        ) -> Result<Option<SessionEvent>, StoreError> {
            self.inner.report_expired(id, at).await
        }
        async fn append_event(&self, event: &SessionEvent) -> Result<EventId, StoreError> {
            self.inner.append_event(event).await
        }
        async fn events(&self, query: &EventQuery) -> Result<Vec<SessionEvent>, StoreError> {
            self.inner.events(query).await
        }
        async fn audit(&self, query: &AuditQuery) -> Result<Vec<SessionEvent>, StoreError> {
            self.inner.audit(query).await
        }
        async fn purge(
            &self,
            now: OffsetDateTime,
            retention: Retention,
        ) -> Result<Purged, StoreError> {
            self.inner.purge(now, retention).await
        }
        async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, StoreError> {
            self.inner.first_use(key, until).await
        }
        async fn try_lease(
            &self,
            name: &str,
            holder: &str,
            ttl: Duration,
        ) -> Result<bool, StoreError> {
            self.inner.try_lease(name, holder, ttl).await
        }
        async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
            self.inner.release_lease(name, holder).await
        }
    }
}
