//! Races and scale: logins racing a revoke-all, a revoke-all of 10 000 sessions, migrations
//! from many nodes at once, and a server that does not answer.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::store::{Created, RevokeMany, RevokeScope};
use session_core::testing::suite::{fresh_user, now_ms, record};
use session_core::{Principal, RevocationReason, SessionStore, StoreError};
use session_postgres::PostgresStore;
use sqlx::PgPool;

const DAY: Duration = Duration::from_secs(86_400);

/// Logins that read the epoch before a revoke-all either land before it (and are revoked
/// by it) or fail: none survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_racing_revoke_all_never_survive() {
    let Some(store) = common::store().await else {
        return;
    };
    let store = Arc::new(store);
    for round in 0..20 {
        let user = fresh_user("race");
        let epoch = store.user_epoch(&user).await.unwrap();
        let mut logins = Vec::new();
        for _ in 0..16 {
            let store = store.clone();
            let user = user.clone();
            logins.push(tokio::spawn(async move {
                let (rec, _) = record(Principal::User { user_id: user }, now_ms(), DAY);
                let created = store.create(&rec, epoch).await.unwrap();
                (rec.id, created)
            }));
        }
        // Let some logins land first.
        tokio::time::sleep(Duration::from_micros(300 * (round % 5))).await;
        store
            .revoke_many(RevokeMany {
                user_id: &user,
                scope: &RevokeScope::All,
                except: None,
                reason: &RevocationReason::PasswordReset,
                at: now_ms(),
            })
            .await
            .unwrap();
        let mut created = 0;
        for login in logins {
            let (id, outcome) = login.await.unwrap();
            if outcome == Created::Created {
                created += 1;
                let rec = store.load(id).await.unwrap().expect("created");
                assert!(
                    rec.is_revoked(),
                    "round {round}: a login survived revoke-all"
                );
            } else {
                assert_eq!(store.load(id).await.unwrap(), None);
            }
        }
        assert!(store.list_active(&user, now_ms()).await.unwrap().is_empty());
        assert_eq!(store.user_epoch(&user).await.unwrap(), epoch + 1);
        println!("round {round}: {created}/16 logins landed before the revoke-all");
    }
}

/// Eight nodes migrating a fresh database at once: one applies, the rest wait on the
/// migrator's advisory lock and find nothing to do; a second round is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_on_a_fresh_database() {
    let Some(url) = common::database_url() else {
        return;
    };
    let admin = PgPool::connect(&url).await.expect("connect");
    let name = format!("session_pg_migrate_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("CREATE DATABASE (the test role needs CREATEDB)");
    let mut options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    options = options.database(&name);
    let result = async {
        for round in 0..2 {
            let mut nodes = Vec::new();
            for _ in 0..8 {
                let options = options.clone();
                nodes.push(tokio::spawn(async move {
                    let store = PostgresStore::connect_with(options).await?;
                    store.migrate().await?;
                    store.pool().close().await;
                    Ok::<_, StoreError>(())
                }));
            }
            for node in nodes {
                node.await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
        }
        let pool = PgPool::connect_with(options.clone()).await.unwrap();
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM session_revocation._sqlx_migrations")
                .fetch_one(&pool)
                .await
                .unwrap();
        let app_table: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations')::text")
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        (applied, app_table)
    }
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let (applied, app_table) = result;
    assert_eq!(applied, 1, "each migration applied once");
    assert_eq!(
        app_table, None,
        "the application's _sqlx_migrations is left alone"
    );
}

/// A server that does not answer is an error (quickly), not a hang and not a skip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_an_error() {
    let Some(_) = common::database_url() else {
        return;
    };
    // Port 1 on localhost: nothing listens there.
    let started = Instant::now();
    let err = PostgresStore::connect("postgres://postgres@127.0.0.1:1/test")
        .await
        .expect_err("nothing listens on port 1");
    println!("unreachable: {err} after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(10));
}
