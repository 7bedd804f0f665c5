//! Shared set-up: the database from `DATABASE_URL`, or a skip.

#![allow(dead_code)] // each test binary uses its own part

use std::time::Duration;

use session_core::store::Invalidation;
use session_postgres::PostgresStore;
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

/// A migrated store on `DATABASE_URL`; `None` (skip) when it is not set. Panics when it is
/// set and the server does not answer.
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

/// The next invalidation within `deadline`; panics on timeout or a closed channel.
pub async fn next(rx: &mut broadcast::Receiver<Invalidation>, deadline: Duration) -> Invalidation {
    match tokio::time::timeout(deadline, rx.recv()).await {
        Ok(Ok(msg)) => msg,
        Ok(Err(e)) => panic!("invalidation channel: {e}"),
        Err(_) => panic!("no invalidation within {deadline:?}"),
    }
}

/// Waits for a `Resync` (the listener is listening), skipping anything else.
pub async fn wait_resync(rx: &mut broadcast::Receiver<Invalidation>, deadline: Duration) {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if next(rx, left).await == Invalidation::Resync {
            return;
        }
    }
}

/// Drops whatever is queued (the initial resync, say).
pub fn drain(rx: &mut broadcast::Receiver<Invalidation>) {
    while rx.try_recv().is_ok() {}
}
