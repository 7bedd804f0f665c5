//! Races: logins racing a revoke-all, logins racing each other under the cap, migrations
//! from many nodes at once (and into another schema), and a server that does not answer.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::store::{Change, Created, NewSession, RevokeMany, RevokeScope};
use session_core::testing::suite::{fresh_user, now_ms, record};
use session_core::{Actor, Principal, RevocationReason, SessionStore, StoreError};
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
        let epoch = store.user_state(&user).await.unwrap().epoch;
        let mut logins = Vec::new();
        for _ in 0..16 {
            let store = store.clone();
            let user = user.clone();
            logins.push(tokio::spawn(async move {
                let (rec, _) = record(Principal::User { user_id: user }, now_ms(), DAY);
                let created = store
                    .create(NewSession {
                        record: &rec,
                        expected_epoch: Some(epoch),
                        granted_by: None,
                        max_user_sessions: None,
                        actor: Actor::User,
                    })
                    .await
                    .unwrap();
                (rec.id, created)
            }));
        }
        // Let some logins land first.
        tokio::time::sleep(Duration::from_micros(300 * (round % 5))).await;
        let revoked = store
            .revoke_many(RevokeMany {
                user_id: &user,
                scope: &RevokeScope::All,
                except: None,
                change: Change {
                    reason: &RevocationReason::PasswordReset,
                    actor: Actor::User,
                    at: now_ms(),
                },
                disable_user: false,
            })
            .await
            .unwrap();
        let mut created = 0;
        for login in logins {
            let (id, outcome) = login.await.unwrap();
            if matches!(outcome, Created::Created { .. }) {
                created += 1;
                let rec = store.load(id).await.unwrap().expect("created");
                assert!(
                    rec.is_revoked(),
                    "round {round}: a login survived revoke-all"
                );
            } else {
                assert_eq!(outcome, Created::EpochMoved);
                assert_eq!(store.load(id).await.unwrap(), None);
            }
        }
        assert_eq!(
            revoked.len(),
            created,
            "each landed login revoked, with its event"
        );
        assert!(
            store
                .list_active(&user, now_ms(), 100)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.user_state(&user).await.unwrap().epoch, epoch + 1);
        println!("round {round}: {created}/16 logins landed before the revoke-all");
    }
}

/// Logins of one user racing each other never leave more live sessions than the cap:
/// create locks the user's row, so each sees the others' sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_stay_within_the_cap() {
    let Some(store) = common::store().await else {
        return;
    };
    let store = Arc::new(store);
    let user = fresh_user("cap-race");
    let mut logins = Vec::new();
    for _ in 0..24 {
        let (store, user) = (store.clone(), user.clone());
        logins.push(tokio::spawn(async move {
            let (rec, _) = record(Principal::user(user), now_ms(), DAY);
            let created = store
                .create(NewSession {
                    record: &rec,
                    expected_epoch: None,
                    granted_by: None,
                    max_user_sessions: Some(3),
                    actor: Actor::User,
                })
                .await
                .unwrap();
            match created {
                Created::Created { evicted, .. } => evicted.len(),
                other => panic!("{other:?}"),
            }
        }));
    }
    let mut evicted = 0;
    for login in logins {
        evicted += login.await.unwrap();
    }
    let live = store.list_active(&user, now_ms(), 100).await.unwrap();
    assert_eq!(live.len(), 3);
    assert_eq!(evicted, 21, "every session beyond the cap was evicted once");
}

/// The cap's eviction and a revocation of the same session racing: the eviction, which
/// read the session as live, finds it revoked when it gets the row and leaves it (no second
/// revocation, no second event, the first reason kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_skips_a_session_revoked_meanwhile() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::fresh_schema("evict");
    let store = Arc::new(common::store_in(&url, &schema).await);
    let pool = PgPool::connect(&url).await.unwrap();
    let user = fresh_user("evict");
    let t0 = now_ms();
    let mut old = Vec::new();
    for i in 0..2 {
        let (rec, _) = record(
            Principal::user(user.clone()),
            t0 + Duration::from_secs(i),
            DAY,
        );
        session_core::testing::suite::create(&*store, &rec).await;
        old.push(rec.id);
    }
    // A revocation of the oldest, not yet committed (holds its row).
    let mut revoking = pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {schema}.sessions SET revoked_at = now(), revocation_reason = 'signed_out'
          WHERE id = $1"
    )))
    .bind(old[0].as_uuid())
    .execute(&mut *revoking)
    .await
    .unwrap();
    let login = {
        let (store, user) = (store.clone(), user.clone());
        tokio::spawn(async move {
            let (rec, _) = record(Principal::user(user), now_ms(), DAY);
            store
                .create(NewSession {
                    record: &rec,
                    expected_epoch: None,
                    granted_by: None,
                    max_user_sessions: Some(2),
                    actor: Actor::User,
                })
                .await
                .unwrap()
        })
    };
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE '%{schema}.create_session%'"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(waiting.clone()))
            .fetch_one(&pool)
            .await
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the eviction never waited");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    revoking.commit().await.unwrap();
    let Created::Created { evicted, .. } = login.await.unwrap() else {
        panic!("refused")
    };
    assert!(evicted.is_empty(), "{evicted:?}");
    let rec = store.load(old[0]).await.unwrap().unwrap();
    assert_eq!(rec.revocation_reason, Some(RevocationReason::SignedOut));
    assert_eq!(
        store.list_active(&user, now_ms(), 10).await.unwrap().len(),
        2
    );
    pool.close().await;
    common::drop_schema(&url, &schema).await;
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
    assert_eq!(applied, 3, "each migration applied once");
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
