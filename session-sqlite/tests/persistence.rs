//! What survives closing and reopening the file, what `open` sets up, and the upgrade of a
//! file written by the first schema.

mod common;

use std::time::Duration;

use session_core::events::{AuditQuery, EventQuery};
use session_core::store::{Change, Created, NewSession, Retention, RevokeMany};
use session_core::testing::suite::{fresh_user, now_ms, record};
use session_core::{
    Actor, EventType, IdpLink, Principal, RevocationReason, RevokeScope, SessionFilter,
    SessionRecord, SessionStore,
};
use session_sqlite::SqliteStore;
use sqlx::Row as _;
use time::OffsetDateTime;

const DAY: Duration = Duration::from_secs(86_400);

fn new_session(rec: &SessionRecord, epoch: u64) -> NewSession<'_> {
    NewSession {
        record: rec,
        expected_epoch: Some(epoch),
        granted_by: None,
        max_user_sessions: None,
        actor: Actor::User,
    }
}

async fn create(store: &SqliteStore, principal: Principal, at: OffsetDateTime) -> SessionRecord {
    let (rec, _) = record(principal, at, DAY);
    let epoch = store.user_state(rec.user_id()).await.unwrap().epoch;
    let created = store.create(new_session(&rec, epoch)).await.unwrap();
    assert!(matches!(created, Created::Created { .. }), "{created:?}");
    rec
}

fn change(reason: &RevocationReason, at: OffsetDateTime) -> Change<'_> {
    Change {
        reason,
        actor: Actor::User,
        at,
    }
}

async fn all_events(store: &SqliteStore) -> Vec<session_core::SessionEvent> {
    store
        .events(&EventQuery {
            limit: 10_000,
            ..EventQuery::default()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_revocations_and_the_log_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    assert!(!path.exists());
    let alice = fresh_user("alice");
    let bob = fresh_user("bob");
    let carol = fresh_user("carol");
    let now = now_ms();

    let store = SqliteStore::open(&path).await.unwrap();
    assert!(path.exists(), "open creates the file");
    let signed_out = create(&store, Principal::user(alice.clone()), now).await;
    let kept = create(&store, Principal::user(alice.clone()), now).await;
    let (mut via_idp, _) = record(
        Principal::agent(alice.clone(), "bot-1", "Bot <one>"),
        now,
        DAY,
    );
    via_idp.idp = Some(IdpLink {
        issuer: "https://idp.example".into(),
        subject: "alice".into(),
        sid: Some("sid-1".into()),
    });
    store.create(new_session(&via_idp, 0)).await.unwrap();
    let bobs = create(&store, Principal::user(bob.clone()), now).await;
    let carols = create(&store, Principal::user(carol.clone()), now).await;
    let revoked_at = now + Duration::from_secs(1);
    let revoked = store
        .revoke(
            signed_out.id,
            change(&RevocationReason::SignedOut, revoked_at),
        )
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
            change: change(&RevocationReason::PasswordReset, revoked_at),
            disable_user: false,
        })
        .await
        .unwrap();
    assert_eq!(bobs_revoked.len(), 1);
    store
        .revoke_many(RevokeMany {
            user_id: &carol,
            scope: &RevokeScope::All,
            except: None,
            change: change(&RevocationReason::UserDeprovisioned, revoked_at),
            disable_user: true,
        })
        .await
        .unwrap();
    assert!(
        store
            .report_expired(kept.id, later)
            .await
            .unwrap()
            .is_some()
    );
    store
        .save_cursor("webhooks", &revoked.event_id)
        .await
        .unwrap();
    assert!(store.try_lease("webhooks", "node-a", DAY).await.unwrap());
    let until = OffsetDateTime::now_utc() + DAY;
    assert!(store.first_use("jti:1", until).await.unwrap());
    let log = all_events(&store).await;
    assert_eq!(log.len(), 9, "5 created, 3 revoked, 1 expired: {log:?}");
    store.close().await;
    drop(store);

    let store = SqliteStore::open(&path).await.unwrap();
    let loaded = store.load(signed_out.id).await.unwrap().unwrap();
    assert_eq!(loaded.revoked_at, Some(revoked_at));
    assert_eq!(loaded.revocation_reason, Some(RevocationReason::SignedOut));
    let kept_now = store.load(kept.id).await.unwrap().unwrap();
    assert_eq!(kept_now.last_active_at, later);
    assert!(!kept_now.is_revoked());
    assert_eq!(store.load(via_idp.id).await.unwrap(), Some(via_idp.clone()));
    let mut active: Vec<_> = store
        .list_active(&alice, now, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    active.sort();
    let mut expected = vec![kept.id, via_idp.id];
    expected.sort();
    assert_eq!(active, expected);
    // Bob's revoke-all is still in force, and so is his moved epoch.
    let bobs_now = store.load(bobs.id).await.unwrap().unwrap();
    assert_eq!(
        bobs_now.revocation_reason,
        Some(RevocationReason::PasswordReset)
    );
    assert_eq!(store.user_state(&bob).await.unwrap().epoch, 1);
    let (late, _) = record(Principal::user(bob.clone()), now, DAY);
    assert_eq!(
        store.create(new_session(&late, 0)).await.unwrap(),
        Created::EpochMoved
    );
    // Carol is still disabled.
    assert!(store.load(carols.id).await.unwrap().unwrap().is_revoked());
    let (again, _) = record(Principal::user(carol.clone()), now, DAY);
    assert_eq!(
        store.create(new_session(&again, 1)).await.unwrap(),
        Created::UserDisabled
    );
    // The log, the expiry mark, the cursor, the lease and the replay mark are all there.
    assert_eq!(all_events(&store).await, log);
    assert_eq!(store.report_expired(kept.id, later).await.unwrap(), None);
    assert_eq!(
        store.load_cursor("webhooks").await.unwrap(),
        Some(revoked.event_id.clone())
    );
    assert!(!store.try_lease("webhooks", "node-b", DAY).await.unwrap());
    assert!(!store.first_use("jti:1", until).await.unwrap());
    // New events continue after the old ones.
    let more = create(&store, Principal::user(alice.clone()), now).await;
    let newest = store
        .audit(&AuditQuery {
            user_id: alice.clone(),
            before: None,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(newest[0].session_id, more.id);
    assert!(newest[0].id > log.last().unwrap().id);
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
    assert!(matches!(
        store.create(new_session(&rec, 0)).await.unwrap(),
        Created::Created { .. }
    ));
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
    let active = |now| store.list_active(rec.user_id(), now, 10);
    assert_eq!(
        active(end - Duration::from_nanos(1)).await.unwrap().len(),
        1
    );
    assert!(active(end).await.unwrap().is_empty());
    let keep_nothing = Retention {
        sessions: Duration::ZERO,
        events: DAY * 365 * 1000,
    };
    let purged = store
        .purge(end - Duration::from_nanos(1), keep_nothing)
        .await
        .unwrap();
    assert_eq!(purged.sessions, 0);
    assert_eq!(store.purge(end, keep_nothing).await.unwrap().sessions, 1);
    // A timestamp the store cannot keep is an error, not a silent truncation.
    let (mut far, _) = record(Principal::user(fresh_user("far")), at, DAY);
    far.expires_at = OffsetDateTime::from_unix_timestamp(20_000_000_000).unwrap();
    assert!(store.create(new_session(&far, 0)).await.is_err());
    assert_eq!(store.load(far.id).await.unwrap(), None);
    // A `now` past the range clamps: everything has ended by then.
    assert_eq!(
        store
            .purge(far.expires_at, keep_nothing)
            .await
            .unwrap()
            .sessions,
        0
    );
    store.close().await;
}

/// The plan SQLite picks for `sql`, one line per step.
async fn plan(store: &SqliteStore, sql: &str) -> Vec<String> {
    sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>("detail"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_goes_through_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).await.unwrap();
    store.migrate().await.unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'index' \
         AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "events_occurred_at",
            "events_type",
            "events_user",
            "first_use_until",
            "sessions_ended_at",
            "sessions_idp",
            "sessions_ip_key_pending",
            "sessions_user_id",
        ]
    );
    // The statements the store runs (their shape; values are bound in the store).
    for (sql, uses) in [
        // The list, revoke-all and revoke-others, the cap: by user.
        (
            "SELECT id FROM sessions WHERE user_id = 'u' AND revoked_at IS NULL \
             AND expires_at > 0 ORDER BY created_at DESC, id DESC LIMIT 10",
            "sessions_user_id",
        ),
        (
            "UPDATE sessions SET revoked_at = 1, revocation_reason = 'x' \
             WHERE revoked_at IS NULL AND user_id = 'u' AND expires_at > 0 AND id <> 'x'",
            "sessions_user_id",
        ),
        // The purge: by the end of a session's life, events and marks by age.
        (
            "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions \
             WHERE min(coalesce(revoked_at, expires_at), expires_at) <= 0 LIMIT 10)",
            "sessions_ended_at",
        ),
        (
            "DELETE FROM events WHERE id IN \
             (SELECT id FROM events WHERE occurred_at <= 0 LIMIT 10)",
            "events_occurred_at",
        ),
        (
            "DELETE FROM first_use WHERE key IN \
             (SELECT key FROM first_use WHERE until <= 0 LIMIT 10)",
            "first_use_until",
        ),
        // Provider logouts across users.
        (
            "UPDATE sessions SET revoked_at = 1, revocation_reason = 'x' \
             WHERE revoked_at IS NULL AND expires_at > 0 AND idp_issuer = 'i' AND idp_sid = 's'",
            "sessions_idp",
        ),
        // The log in order, by type, and one user's audit.
        (
            "SELECT id FROM events WHERE id > 5 ORDER BY id LIMIT 10",
            "INTEGER PRIMARY KEY",
        ),
        (
            "SELECT id FROM events WHERE type = 'session.revoked' AND id > 5 ORDER BY id LIMIT 10",
            "events_type",
        ),
        (
            "SELECT id FROM events WHERE user_id = 'u' AND id <= 5 ORDER BY id DESC LIMIT 10",
            "events_user",
        ),
        // The upgrade's fill-in.
        (
            "SELECT id, ip FROM sessions WHERE ip IS NOT NULL AND ip_key IS NULL",
            "sessions_ip_key_pending",
        ),
    ] {
        let steps = plan(&store, sql).await;
        assert!(steps.iter().any(|d| d.contains(uses)), "{sql}: {steps:?}");
        // One user's sessions may be sorted after the search (a handful of rows); the log
        // is read in index order, never sorted.
        if sql.contains("FROM events") {
            assert!(
                !steps.iter().any(|d| d.contains("TEMP B-TREE")),
                "{sql} sorts: {steps:?}"
            );
        }
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied, 2);
    store.close().await;
}

/// A file written by the first schema (sessions and epochs, no log) opens, upgrades in
/// place, and its sessions are found by the new queries: network keys filled in, epochs
/// moved to `users`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_the_first_schema_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // The first migration alone, as the previous release applied it.
    let first = dir.path().join("migrations");
    std::fs::create_dir(&first).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_sessions.sql"),
        first.join("0001_sessions.sql"),
    )
    .unwrap();
    let old = sqlx::migrate::Migrator::new(first.as_path()).await.unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    old.run(&pool).await.unwrap();
    let user = fresh_user("old");
    let at = now_ms();
    let ns = i64::try_from(at.unix_timestamp_nanos()).unwrap();
    let hour = 3_600_000_000_000i64;
    let mut ids = Vec::new();
    for ip in [
        Some("198.51.100.7"),
        Some("2001:db8::1"),
        Some("not an ip"),
        None,
    ] {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO sessions (id, secret_hash, user_id, kind, created_at, last_active_at, \
             expires_at, user_agent, ip) VALUES (?1, zeroblob(32), ?2, 'user', ?3, ?3, ?4, 'UA', ?5)",
        )
        .bind(&id)
        .bind(user.as_str())
        .bind(ns)
        .bind(ns + hour)
        .bind(ip)
        .execute(&pool)
        .await
        .unwrap();
        ids.push(id);
    }
    sqlx::query("INSERT INTO user_epochs (user_id, epoch) VALUES (?1, 4)")
        .bind(user.as_str())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.user_state(&user).await.unwrap().epoch, 4);
    let keys: Vec<Option<String>> =
        sqlx::query_scalar("SELECT ip_key FROM sessions WHERE user_id = ?1 ORDER BY rowid")
            .bind(user.as_str())
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        keys,
        [
            Some("00000000000000000000ffffc6336407".to_owned()),
            Some("20010db8000000000000000000000001".to_owned()),
            Some(String::new()),
            None,
        ]
    );
    let loaded = store.load(ids[0].parse().unwrap()).await.unwrap().unwrap();
    assert_eq!((loaded.epoch, loaded.idp), (0, None));
    let filter = |net: &str| SessionFilter {
        ip: Some(net.parse().unwrap()),
        ..SessionFilter::default()
    };
    let reason = RevocationReason::RiskDetected;
    let count = |net: &'static str| {
        let store = store.clone();
        let reason = reason.clone();
        async move {
            store
                .revoke_matching(&filter(net), change(&reason, now_ms()), true)
                .await
                .unwrap()
                .matched
        }
    };
    assert_eq!(count("198.51.100.0/24").await, 1);
    assert_eq!(count("2001:db8::/32").await, 1);
    assert_eq!(
        count("::/0").await,
        2,
        "every address, not the text nor the none"
    );
    // Their events start the log.
    let done = store
        .revoke_many(RevokeMany {
            user_id: &user,
            scope: &RevokeScope::All,
            except: None,
            change: change(&reason, now_ms()),
            disable_user: false,
        })
        .await
        .unwrap();
    assert_eq!(done.len(), 4);
    assert_eq!(done[0].event_id.as_str().len(), 20);
    assert_eq!(store.user_state(&user).await.unwrap().epoch, 5);
    let log = all_events(&store).await;
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|e| e.event_type == EventType::Revoked));
    // Opening again finds nothing left to fill in or apply.
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied, 2);
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
    assert_eq!(applied, 2);
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

#[tokio::test]
async fn debug_shows_no_client_details() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).await.unwrap();
    let rec = create(&store, Principal::user(fresh_user("debug")), now_ms()).await;
    let debug = format!("{store:?}");
    assert!(debug.contains("s.db"), "{debug}");
    for secret in [
        rec.ip.as_deref().unwrap(),
        rec.user_agent.as_deref().unwrap(),
        rec.user_id().as_str(),
    ] {
        assert!(!debug.contains(secret), "{debug}");
    }
    store.close().await;
}
