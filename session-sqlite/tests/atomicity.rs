//! A fault between a change and its event leaves neither: a trigger makes the event's
//! insert fail for one user (after the change's statement ran, in the same transaction),
//! and every operation fails with a store error having changed nothing.

mod common;

use std::time::Duration;

use session_core::events::AuditQuery;
use session_core::store::{Change, Created, NewSession, RevokeMany};
use session_core::testing::suite::{fresh_user, now_ms, record};
use session_core::{
    Actor, Principal, RevocationReason, RevokeScope, SessionFilter, SessionRecord, SessionStore,
    StoreError, UserId,
};
use session_sqlite::SqliteStore;

const DAY: Duration = Duration::from_secs(86_400);

async fn create(store: &SqliteStore, rec: &SessionRecord, cap: Option<u32>) -> Created {
    store
        .create(NewSession {
            record: rec,
            expected_epoch: None,
            granted_by: None,
            max_user_sessions: cap,
            actor: Actor::User,
        })
        .await
        .unwrap()
}

/// Makes every event insert for `user` fail, until [`heal`].
async fn break_the_log_for(store: &SqliteStore, user: &UserId) {
    // A user id from `fresh_user` (letters, digits, '-'): safe inside the literal.
    assert!(
        user.as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    );
    let sql = format!(
        "CREATE TEMP TRIGGER fault BEFORE INSERT ON events WHEN NEW.user_id = '{}' \
         BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
        user.as_str()
    );
    // TEMP triggers live on one connection: a pool of one makes it the store's only one.
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(store.pool())
        .await
        .unwrap();
}

async fn heal(store: &SqliteStore) {
    sqlx::query("DROP TRIGGER temp.fault")
        .execute(store.pool())
        .await
        .unwrap();
}

fn injected<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Backend(e)) => assert!(e.to_string().contains("injected fault"), "{e}"),
        other => panic!("expected the injected fault, got {other:?}"),
    }
}

async fn events_of(store: &SqliteStore, user: &UserId) -> usize {
    store
        .audit(&AuditQuery {
            user_id: user.clone(),
            before: None,
            limit: 1000,
        })
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_between_a_change_and_its_event_leaves_neither() {
    let dir = tempfile::tempdir().unwrap();
    // One connection, so the TEMP trigger is on the connection every call uses.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.path().join("s.db"))
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal),
        )
        .await
        .unwrap();
    let store = SqliteStore::from_pool(pool);
    store.migrate().await.unwrap();
    let user = fresh_user("fault");
    let bystander = fresh_user("bystander");
    let t0 = now_ms();
    let mut sessions = Vec::new();
    for i in 0..3 {
        let (rec, _) = record(
            Principal::user(user.clone()),
            t0 + Duration::from_secs(i),
            DAY,
        );
        assert!(matches!(
            create(&store, &rec, None).await,
            Created::Created { .. }
        ));
        sessions.push(rec);
    }
    let (theirs, _) = record(Principal::user(bystander.clone()), t0, DAY);
    create(&store, &theirs, None).await;
    assert_eq!(events_of(&store, &user).await, 3);

    break_the_log_for(&store, &user).await;
    let reason = RevocationReason::AdminRevoked;
    let change = Change {
        reason: &reason,
        actor: Actor::Admin,
        at: now_ms(),
    };
    // One revocation.
    injected(store.revoke(sessions[0].id, change).await);
    // A revoke-all (which would also move the epoch and disable the user).
    injected(
        store
            .revoke_many(RevokeMany {
                user_id: &user,
                scope: &RevokeScope::All,
                except: None,
                change,
                disable_user: true,
            })
            .await,
    );
    // A filter across users: the bystander's session, revoked in the same transaction,
    // stays active too.
    let filter = SessionFilter {
        user_agent: Some("suite".into()),
        created_before: Some(t0 + Duration::from_millis(1500)),
        ..SessionFilter::default()
    };
    injected(store.revoke_matching(&filter, change, false).await);
    // A login over the cap (which would evict the two oldest) and a plain one.
    let (fourth, _) = record(Principal::user(user.clone()), t0 + DAY / 2, DAY);
    injected(
        store
            .create(NewSession {
                record: &fourth,
                expected_epoch: Some(0),
                granted_by: None,
                max_user_sessions: Some(2),
                actor: Actor::User,
            })
            .await,
    );
    // An expiry report (whose mark would stop the next one).
    injected(store.report_expired(sessions[2].id, now_ms()).await);

    // Nothing changed: no session revoked, created or marked, no epoch moved, no event.
    for rec in sessions.iter().chain([&theirs]) {
        assert_eq!(store.load(rec.id).await.unwrap().as_ref(), Some(rec));
    }
    assert_eq!(store.load(fourth.id).await.unwrap(), None);
    assert_eq!(
        store.user_state(&user).await.unwrap(),
        session_core::store::UserState::default()
    );
    assert_eq!(events_of(&store, &user).await, 3);
    assert_eq!(events_of(&store, &bystander).await, 1);

    // Healed, the same calls work and log.
    heal(&store).await;
    assert!(
        store
            .report_expired(sessions[2].id, now_ms())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .revoke(sessions[0].id, change)
            .await
            .unwrap()
            .is_some()
    );
    let matched = store.revoke_matching(&filter, change, false).await.unwrap();
    assert_eq!(matched.matched, 2, "sessions[1] and the bystander's");
    assert_eq!(events_of(&store, &user).await, 3 + 1 + 1 + 1);
    assert_eq!(events_of(&store, &bystander).await, 2);
    store.close().await;
}
