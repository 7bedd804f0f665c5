//! The store conformance suite against PostgreSQL at `DATABASE_URL` (skipped when unset).

mod common;

use std::sync::Arc;

use session_core::SessionStore;

/// Every row of the store's tables, as JSON text (`bytea` shows as `\\x…` hex).
async fn dump(_store: Arc<dyn SessionStore>) -> String {
    let url = common::database_url().expect("DATABASE_URL");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let mut out = String::new();
    for table in ["sessions", "user_epochs"] {
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
