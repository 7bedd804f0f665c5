//! The store conformance suite against PostgreSQL at `DATABASE_URL` (skipped when unset),
//! in the default schema (which also exercises the v1 → v2 migration of a used database).

mod common;

use std::sync::Arc;

use session_core::SessionStore;

/// Every row of the store's tables, as JSON text (`bytea` shows as `\\x…` hex).
async fn dump(_store: Arc<dyn SessionStore>) -> String {
    let url = common::database_url().expect("DATABASE_URL");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let mut out = String::new();
    for table in [
        "sessions",
        "users",
        "events",
        "first_use",
        "leases",
        "cursors",
    ] {
        let sql = format!("SELECT row_to_json(t)::text FROM session_revocation.{table} t");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .expect("dump");
        for row in rows {
            out.push_str(&row);
            out.push('\n');
        }
    }
    pool.close().await;
    out
}

session_core::store_suite!(
    async {
        common::store()
            .await
            .map(|s| Arc::new(s) as Arc<dyn SessionStore>)
    },
    dump = dump
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_shows_no_credentials_or_client_details() {
    let Some(url) = common::database_url() else {
        return;
    };
    let mut options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    options = options.password("hunter2-secret");
    let store = session_postgres::PostgresStore::connect_with(options)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    session_core::testing::suite::user_session(
        &store,
        &session_core::testing::suite::fresh_user("debug"),
    )
    .await;
    let debug = format!("{store:?}");
    for secret in ["hunter2", "postgres://", "203.0.113.7", "Mozilla"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}
