//! Shared set-up: the database from `DATABASE_URL`, or a skip; stores in schemas of their
//! own; the push channel.

#![allow(dead_code)] // each test binary uses its own part

use std::time::Duration;

use session_core::store::PushMessage;
use session_postgres::PostgresStore;
use sqlx::PgPool;
use tokio::sync::broadcast;

/// `DATABASE_URL`, or `None` after saying the tests are skipped.
pub fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            println!("skipping: DATABASE_URL is not set");
            None
        }
    }
}

/// A migrated store on `DATABASE_URL` (default schema); `None` (skip) when it is not set.
/// Panics when it is set and the server does not answer.
pub async fn store() -> Option<PostgresStore> {
    let url = database_url()?;
    Some(connect(&url).await)
}

/// A migrated store on `url`; panics on failure.
pub async fn connect(url: &str) -> PostgresStore {
    let store = PostgresStore::connect(url)
        .await
        .unwrap_or_else(|e| panic!("DATABASE_URL is set but PostgreSQL does not answer: {e}"));
    store.migrate().await.expect("migrations run");
    store
}

/// A fresh schema name for one test (`t_PREFIX_` and 12 hex digits).
pub fn fresh_schema(prefix: &str) -> String {
    format!(
        "t_{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A migrated store on `DATABASE_URL` in `schema` (its channel follows it).
pub async fn store_in(url: &str, schema: &str) -> PostgresStore {
    let store = PostgresStore::builder()
        .with_schema(schema)
        .unwrap()
        .connect(url)
        .await
        .expect("connect");
    store.migrate().await.expect("migrations run");
    store
}

/// Drops a test's schema and everything in it.
pub async fn drop_schema(url: &str, schema: &str) {
    let pool = PgPool::connect(url).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&pool)
    .await
    .expect("drop schema");
    pool.close().await;
}

/// The next push message within `deadline`; panics on timeout or a closed channel.
pub async fn next(rx: &mut broadcast::Receiver<PushMessage>, deadline: Duration) -> PushMessage {
    match tokio::time::timeout(deadline, rx.recv()).await {
        Ok(Ok(msg)) => msg,
        Ok(Err(e)) => panic!("push channel: {e}"),
        Err(_) => panic!("no push message within {deadline:?}"),
    }
}

/// Waits for `Reconnected`, skipping anything else.
pub async fn wait_reconnected(rx: &mut broadcast::Receiver<PushMessage>, deadline: Duration) {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if next(rx, left).await == PushMessage::Reconnected {
            return;
        }
    }
}

/// Waits for this payload, skipping anything else (other tests' payloads, reconnects).
pub async fn wait_payload(
    rx: &mut broadcast::Receiver<PushMessage>,
    payload: &str,
    deadline: Duration,
) {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if let PushMessage::Payload(p) = next(rx, left).await
            && &*p == payload
        {
            return;
        }
    }
}

/// Drops whatever is queued.
pub fn drain(rx: &mut broadcast::Receiver<PushMessage>) {
    while rx.try_recv().is_ok() {}
}
