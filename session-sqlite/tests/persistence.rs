//! What survives closing and reopening the file, and what `open` sets up.

mod common;

use std::time::Duration;

use session_core::store::{Created, RevokeMany};
use session_core::testing::suite::{fresh_user, now_ms, record};
use session_core::{Principal, RevocationReason, RevokeScope, SessionStore};
use session_sqlite::SqliteStore;
use sqlx::Row as _;
use time::OffsetDateTime;

const DAY: Duration = Duration::from_secs(86_400);

async fn create(
    store: &SqliteStore,
    principal: Principal,
    at: OffsetDateTime,
) -> session_core::SessionRecord {
    let (rec, _) = record(principal, at, DAY);
    let epoch = store.user_epoch(rec.user_id()).await.unwrap();
    assert_eq!(store.create(&rec, epoch).await.unwrap(), Created::Created);
    rec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_revocations_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    assert!(!path.exists());
    let alice = fresh_user("alice");
    let bob = fresh_user("bob");
    let now = now_ms();

    let store = SqliteStore::open(&path).await.unwrap();
    assert!(path.exists(), "open creates the file");
    let signed_out = create(
        &store,
        Principal::User {
            user_id: alice.clone(),
        },
        now,
    )
    .await;
    let kept = create(
        &store,
        Principal::User {
            user_id: alice.clone(),
        },
        now,
    )
    .await;
    let agent = create(
        &store,
        Principal::agent(alice.clone(), "bot-1", "Bot <one>"),
        now,
    )
    .await;
    let bobs = create(
        &store,
        Principal::User {
            user_id: bob.clone(),
        },
        now,
    )
    .await;
    let revoked_at = now + Duration::from_secs(1);
    let revoked = store
        .revoke(signed_out.id, &RevocationReason::SignedOut, revoked_at)
        .await
        .unwrap()
        .expect("was active");
    let later = now + Duration::from_secs(60);
    store.touch(kept.id, later).await.unwrap();
    let bobs_revoked = store
        .revoke_many(RevokeMany {
            user_id: &bob,
            scope: &RevokeScope::All,
            except: None,
            reason: &RevocationReason::PasswordReset,
            at: revoked_at,
        })
        .await
        .unwrap();
    assert_eq!(bobs_revoked.len(), 1);
    store.close().await;
    drop(store);

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.load(signed_out.id).await.unwrap(),
        Some(revoked.clone())
    );
    assert_eq!(revoked.revoked_at, Some(revoked_at));
    assert_eq!(revoked.revocation_reason, Some(RevocationReason::SignedOut));
    let kept_now = store.load(kept.id).await.unwrap().unwrap();
    assert_eq!(kept_now.last_active_at, later);
    assert!(!kept_now.is_revoked());
    assert_eq!(store.load(agent.id).await.unwrap(), Some(agent.clone()));
    let mut active: Vec<_> = store
        .list_active(&alice, now)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    active.sort();
    let mut expected = vec![kept.id, agent.id];
    expected.sort();
    assert_eq!(active, expected);
    // Bob's revoke-all is still in force, and so is his moved epoch.
    let bobs_now = store.load(bobs.id).await.unwrap().unwrap();
    assert_eq!(
        bobs_now.revocation_reason,
        Some(RevocationReason::PasswordReset)
    );
    assert_eq!(store.user_epoch(&bob).await.unwrap(), 1);
    let (late, _) = record(
        Principal::User {
            user_id: bob.clone(),
        },
        now,
        DAY,
    );
    assert_eq!(store.create(&late, 0).await.unwrap(), Created::EpochMoved);
    assert!(store.store_is_wal().await);
    store.close().await;
}

trait WalCheck {
    async fn store_is_wal(&self) -> bool;
}

impl WalCheck for SqliteStore {
    async fn store_is_wal(&self) -> bool {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(self.pool())
            .await
            .unwrap();
        mode == "wal"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanosecond_timestamps_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).await.unwrap();
    let at = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789).unwrap();
    let (mut rec, _) = record(Principal::user(fresh_user("ns")), at, DAY);
    rec.expires_at = at + Duration::from_nanos(86_400_000_000_001);
    rec.user_agent = None;
    rec.ip = None;
    assert_eq!(store.create(&rec, 0).await.unwrap(), Created::Created);
    assert_eq!(store.load(rec.id).await.unwrap(), Some(rec.clone()));
    // One nanosecond forward moves it; one back does not.
    let plus = at + Duration::from_nanos(1);
    store.touch(rec.id, plus).await.unwrap();
    store.touch(rec.id, at).await.unwrap();
    assert_eq!(
        store.load(rec.id).await.unwrap().unwrap().last_active_at,
        plus
    );
    // Expiry compares on the integers: one nanosecond before the end it is active,
    // at the end it is not.
    let end = rec.expires_at;
    assert_eq!(
        store
            .list_active(rec.user_id(), end - Duration::from_nanos(1))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list_active(rec.user_id(), end)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .purge_expired(end - Duration::from_nanos(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.purge_expired(end).await.unwrap(), 1);
    // A timestamp the store cannot keep is an error, not a silent truncation.
    let (mut far, _) = record(Principal::user(fresh_user("far")), at, DAY);
    far.expires_at = OffsetDateTime::from_unix_timestamp(20_000_000_000).unwrap();
    assert!(store.create(&far, 0).await.is_err());
    assert_eq!(store.load(far.id).await.unwrap(), None);
    // A `now` past the range clamps: everything has expired by then.
    assert_eq!(store.purge_expired(far.expires_at).await.unwrap(), 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_indexes_and_idempotent_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'sessions' \
         AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(indexes, ["sessions_expires_at", "sessions_user_id"]);
    // The list, revoke-all and clean-up go through an index, never a scan.
    for (sql, index) in [
        (
            "EXPLAIN QUERY PLAN SELECT id FROM sessions \
             WHERE user_id = 'u' AND revoked_at IS NULL AND expires_at > 0",
            "sessions_user_id",
        ),
        (
            "EXPLAIN QUERY PLAN UPDATE sessions SET revoked_at = 1, revocation_reason = 'x' \
             WHERE user_id = 'u' AND revoked_at IS NULL AND expires_at > 0 \
             AND (NULL IS NULL OR id <> NULL)",
            "sessions_user_id",
        ),
        (
            "EXPLAIN QUERY PLAN DELETE FROM sessions WHERE expires_at <= 0",
            "sessions_expires_at",
        ),
    ] {
        let plan: Vec<String> = sqlx::query(sql)
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect();
        assert!(plan.iter().any(|d| d.contains(index)), "{sql}: {plan:?}");
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied, 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_of_a_new_file_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let opens: Vec<_> = (0..6)
        .map(|_| tokio::spawn(SqliteStore::open(path.clone())))
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().expect("open"));
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(stores[0].pool())
        .await
        .unwrap();
    assert_eq!(applied, 1);
    for store in stores {
        store.close().await;
    }
}

#[tokio::test]
async fn open_fails_cleanly_without_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(dir.path().join("missing").join("s.db"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, session_core::StoreError::Backend(_)),
        "{err:?}"
    );
}
