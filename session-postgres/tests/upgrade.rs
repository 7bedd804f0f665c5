//! Upgrading a database that runs the v1 schema: the v2 migration keeps the sessions and
//! epochs, fills the IP keys of live sessions, and the store works on what it found.

mod common;

use session_core::store::{Change, IpRange, RevokeMany, RevokeScope, SessionFilter};
use session_core::testing::suite::{fresh_user, now_ms};
use session_core::{Actor, RevocationReason, SessionId, SessionStore};
use sqlx::{AssertSqlSafe, PgPool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_database_upgrades_in_place() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::fresh_schema("upgrade");
    let pool = PgPool::connect(&url).await.unwrap();
    // The v1 schema as the v1 store's migrator left it: its tables, and its bookkeeping
    // saying migration 1 is applied (with the checksum of its text).
    let v1 = sqlx::migrate!("./migrations")
        .iter()
        .next()
        .cloned()
        .expect("migration 1");
    assert_eq!(v1.version, 20261128000000);
    let rendered = v1
        .sql
        .as_str()
        .replace("session_revocation.", &format!("{schema}."));
    let checksum = sqlx::migrate::Migration::new(
        v1.version,
        v1.description.clone(),
        v1.migration_type,
        sqlx::SqlSafeStr::into_sql_str(AssertSqlSafe(rendered.clone())),
        false,
    )
    .checksum
    .to_vec();
    let setup = [
        format!("CREATE SCHEMA {schema}"),
        format!(
            "CREATE TABLE {schema}._sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
             checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)"
        ),
    ];
    for sql in setup {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::raw_sql(AssertSqlSafe(rendered))
        .execute(&pool)
        .await
        .expect("v1 schema");
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {schema}._sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, $2, true, $3, 0)"
    )))
    .bind(v1.version)
    .bind(&*v1.description)
    .bind(checksum)
    .execute(&pool)
    .await
    .unwrap();
    // What a v1 store wrote: a user with epoch 2, a live session with an IP, a revoked one.
    let user = fresh_user("v1");
    let (live, revoked) = (SessionId::random(), SessionId::random());
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {schema}.user_epochs (user_id, epoch) VALUES ($1, 2)"
    )))
    .bind(user.as_str())
    .execute(&pool)
    .await
    .unwrap();
    for (id, ip, revoked_at) in [
        (live, "198.51.100.77", None),
        (revoked, "198.51.100.78", Some(now_ms())),
    ] {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {schema}.sessions (id, secret_hash, user_id, kind, created_at,
                last_active_at, expires_at, user_agent, ip, revoked_at, revocation_reason)
             VALUES ($1, sha256('x'), $2, 'user', now(), now(), now() + interval '1 day',
                'Mozilla/5.0 v1', $3, $4, CASE WHEN $4 IS NULL THEN NULL ELSE 'signed_out' END)"
        )))
        .bind(id.as_uuid())
        .bind(user.as_str())
        .bind(ip)
        .bind(revoked_at)
        .execute(&pool)
        .await
        .unwrap();
    }

    let store = common::store_in(&url, &schema).await; // migrates v1 → v2
    let applied: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {schema}._sqlx_migrations"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(applied, 3, "v1 kept, v2 and its fixes applied");
    let rec = store.load(live).await.unwrap().expect("kept");
    assert_eq!(
        (rec.epoch, rec.idp.clone(), rec.ip.as_deref()),
        (0, None, Some("198.51.100.77"))
    );
    let state = store.user_state(&user).await.unwrap();
    assert_eq!((state.epoch, state.disabled), (2, false));
    let keys: Vec<Option<String>> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT ip_key FROM {schema}.sessions ORDER BY revoked_at NULLS FIRST"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        keys,
        [session_core::store::ip_key("198.51.100.77"), None],
        "the live session's key is filled, the ended one's is not needed"
    );
    // A network filter finds the v1 session.
    let reason = RevocationReason::RiskDetected;
    let change = Change {
        reason: &reason,
        actor: Actor::Admin,
        at: now_ms(),
    };
    let net: IpRange = "198.51.100.64/27".parse().unwrap();
    let filter = SessionFilter {
        ip: Some(net),
        ..SessionFilter::default()
    };
    assert_eq!(
        store
            .revoke_matching(&filter, change, true)
            .await
            .unwrap()
            .matched,
        1
    );
    // Revoke-all moves the epoch on from the v1 value.
    let gone = store
        .revoke_many(RevokeMany {
            user_id: &user,
            scope: &RevokeScope::All,
            except: None,
            change,
            disable_user: false,
        })
        .await
        .unwrap();
    assert_eq!(gone.iter().map(|r| r.id).collect::<Vec<_>>(), [live]);
    assert_eq!(store.user_state(&user).await.unwrap().epoch, 3);
    // Migrating again is a no-op.
    store.migrate().await.unwrap();
    pool.close().await;
    common::drop_schema(&url, &schema).await;
}
