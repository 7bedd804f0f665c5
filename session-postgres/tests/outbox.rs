//! The event log as an outbox: a reader never skips an event that commits after a later
//! one (the classic gap), and a change never lands without its event. Each test works in a
//! schema of its own.

mod common;

use std::sync::Arc;
use std::time::Duration;

use session_core::events::{EventId, EventQuery, EventType, SessionEvent};
use session_core::store::{Change, RevokeMany, RevokeScope, SessionFilter};
use session_core::testing::suite::{fresh_user, now_ms, user_session};
use session_core::{
    Actor, ClientInfo, KeySet, Principal, Refusal, RevocationReason, SessionConfig, SessionError,
    SessionManager, SessionStore, StoreError,
};
use session_postgres::PostgresStore;
use sqlx::{AssertSqlSafe, PgPool};

/// The tests here hold transactions open on purpose, and a reader stops at
/// the oldest running transaction of the whole cluster: one test at a time, so that none
/// holds back another's reader.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn read(store: &PostgresStore, after: Option<&EventId>) -> Vec<SessionEvent> {
    store
        .events(&EventQuery {
            after: after.cloned(),
            limit: 1000,
            event_type: None,
        })
        .await
        .unwrap()
}

/// Reads on from `after` until `want` events came (within a deadline: other tests'
/// transactions may hold the log back a moment, never skip it).
async fn read_until(
    store: &PostgresStore,
    after: &mut Option<EventId>,
    want: usize,
) -> Vec<SessionEvent> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < want {
        let page = read(store, after.as_ref()).await;
        if let Some(last) = page.last() {
            *after = Some(last.id.clone());
        }
        got.extend(page);
        assert!(std::time::Instant::now() < deadline, "only {got:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    got
}

/// An event inserted by hand in a transaction of the test's own.
fn insert_event(schema: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!(
        "INSERT INTO {schema}.events
            (event_type, occurred_at, session_id, user_id, session_kind, actor)
         VALUES ('session.suspicious', now(), gen_random_uuid(), $1, 'user', 'system')
         RETURNING lpad(xid::text, 20, '0') || '-' || lpad(seq::text, 19, '0')"
    ))
}

/// Transaction A takes the lower id, B the higher; B commits first. A reader polling in
/// between must not move past B (it would never see A), and sees both once A commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_commit_with_a_lower_id_is_not_skipped() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::fresh_schema("gap");
    let store = common::store_in(&url, &schema).await;
    let pool = PgPool::connect(&url).await.unwrap();
    let mut cursor = None;
    assert!(read(&store, None).await.is_empty());

    let mut a = pool.begin().await.unwrap();
    let a_id: String = sqlx::query_scalar(insert_event(&schema))
        .bind("user-a")
        .fetch_one(&mut *a)
        .await
        .unwrap();
    let mut b = pool.begin().await.unwrap();
    let b_id: String = sqlx::query_scalar(insert_event(&schema))
        .bind("user-b")
        .fetch_one(&mut *b)
        .await
        .unwrap();
    assert!(a_id < b_id, "A holds the lower id: {a_id} {b_id}");
    b.commit().await.unwrap();

    // B is committed, A is not: a reader must hold back, not serve B and move past A.
    for _ in 0..5 {
        let page = read(&store, cursor.as_ref()).await;
        assert!(
            page.is_empty(),
            "served past a running transaction: {page:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The audit serves what is committed at once.
    let audit = store
        .audit(&session_core::events::AuditQuery {
            user_id: "user-b".into(),
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);

    a.commit().await.unwrap();
    let got = read_until(&store, &mut cursor, 2).await;
    let ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [a_id.as_str(), b_id.as_str()], "both, in log order");
    assert!(read(&store, cursor.as_ref()).await.is_empty());
    pool.close().await;
    common::drop_schema(&url, &schema).await;
}

/// The same with a real store operation held open: a revoke-all that has moved the user's
/// epoch (so holds a transaction id) waits on a session row another transaction locks; a
/// login of another user commits meanwhile. The reader serves neither until the
/// revocation commits, then the revocation's events first (their xid is lower), then the
/// login's: nothing skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_operation_held_open_holds_the_reader_back() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::fresh_schema("held");
    let store = Arc::new(common::store_in(&url, &schema).await);
    let pool = PgPool::connect(&url).await.unwrap();
    let (alice, bob) = (fresh_user("held-a"), fresh_user("held-b"));
    let victim = user_session(&*store, &alice).await;
    let mut cursor = None;
    let before = read_until(&store, &mut cursor, 1).await;
    assert_eq!(before[0].session_id, victim.id);

    // Lock alice's session row.
    let mut lock = pool.begin().await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "SELECT 1 FROM {schema}.sessions WHERE id = $1 FOR UPDATE"
    )))
    .bind(victim.id.as_uuid())
    .execute(&mut *lock)
    .await
    .unwrap();
    let revoking = {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move {
            let reason = RevocationReason::PasswordReset;
            store
                .revoke_many(RevokeMany {
                    user_id: &alice,
                    scope: &RevokeScope::All,
                    except: None,
                    change: Change {
                        reason: &reason,
                        actor: Actor::User,
                        at: now_ms(),
                    },
                    disable_user: false,
                })
                .await
                .unwrap()
        })
    };
    // Wait until the revocation is blocked on the row lock (epoch already moved).
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE '%{schema}.revoke_sessions%'"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(waiting.clone()))
            .fetch_one(&pool)
            .await
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "revocation never blocked"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let login = user_session(&*store, &bob).await;
    for _ in 0..5 {
        let page = read(&store, cursor.as_ref()).await;
        assert!(page.is_empty(), "served past the held revocation: {page:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!revoking.is_finished());
    lock.commit().await.unwrap();
    let revoked = revoking.await.unwrap();
    assert_eq!(revoked.len(), 1);
    let got = read_until(&store, &mut cursor, 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].event_type, EventType::Revoked);
    assert_eq!(got[0].id, revoked[0].event_id);
    assert_eq!(
        (got[1].event_type, got[1].session_id),
        (EventType::Created, login.id)
    );
    assert!(got[0].id < got[1].id);
    pool.close().await;
    common::drop_schema(&url, &schema).await;
}

/// A fault between the change and its event (a trigger that raises on the events table for
/// one user) leaves neither: every changing operation fails with a store error and the
/// session is as it was; once the fault is gone, the same operations work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_change_without_its_event() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::fresh_schema("atomic");
    let store = Arc::new(common::store_in(&url, &schema).await);
    let pool = PgPool::connect(&url).await.unwrap();
    let keys = KeySet::new([[5u8; 32]]).unwrap();
    let manager = SessionManager::new(store.clone(), keys, SessionConfig::default()).unwrap();
    let marker = fresh_user("marker");
    let issued = manager
        .issue(
            Principal::user(marker.clone()),
            ClientInfo {
                user_agent: Some("Marker/1.0".into()),
                ip: Some("192.0.2.9".into()),
            },
        )
        .await
        .unwrap();
    let token = issued.token.expose().as_bytes().to_vec();
    let id = issued.session.id();
    let events_before = read_until(&store, &mut None, 1).await.len();

    for sql in [
        format!(
            "CREATE FUNCTION {schema}.fail_marker() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.user_id = '{marker}' THEN RAISE EXCEPTION 'injected fault'; END IF;
                 RETURN NEW;
             END $$"
        ),
        format!(
            "CREATE TRIGGER fail_marker BEFORE INSERT ON {schema}.events
             FOR EACH ROW EXECUTE FUNCTION {schema}.fail_marker()"
        ),
    ] {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }

    let err = manager
        .revoke(id, RevocationReason::SignedOut, Actor::User)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SessionError::Store(StoreError::Backend(_))),
        "{err:?}"
    );
    let reason = RevocationReason::PasswordReset;
    let change = Change {
        reason: &reason,
        actor: Actor::User,
        at: now_ms(),
    };
    let epoch = store.user_state(&marker).await.unwrap().epoch;
    assert!(
        store
            .revoke_many(RevokeMany {
                user_id: &marker,
                scope: &RevokeScope::All,
                except: None,
                change,
                disable_user: true,
            })
            .await
            .is_err()
    );
    let filter = SessionFilter {
        user_agent: Some("Marker/1.0".into()),
        ..SessionFilter::default()
    };
    assert!(store.revoke_matching(&filter, change, false).await.is_err());
    assert!(store.report_expired(id, now_ms()).await.is_err());
    let second = manager
        .issue(Principal::user(marker.clone()), ClientInfo::default())
        .await;
    assert!(matches!(second, Err(SessionError::Store(_))), "{second:?}");

    // Nothing changed: the session is active, epoch and disabled mark as they were, no
    // second session, no event.
    let rec = store.load(id).await.unwrap().unwrap();
    assert!(!rec.is_revoked());
    let state = store.user_state(&marker).await.unwrap();
    assert_eq!((state.epoch, state.disabled), (epoch, false));
    assert_eq!(
        store
            .list_active(&marker, now_ms(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(read(&store, None).await.len(), events_before);
    let fresh = SessionManager::new(
        store.clone(),
        KeySet::new([[5u8; 32]]).unwrap(),
        SessionConfig::default(),
    )
    .unwrap();
    assert!(
        fresh.validate(&token).await.is_ok(),
        "still valid from the store"
    );

    sqlx::query(AssertSqlSafe(format!(
        "DROP TRIGGER fail_marker ON {schema}.events"
    )))
    .execute(&pool)
    .await
    .unwrap();
    assert!(store.report_expired(id, now_ms()).await.unwrap().is_some());
    assert!(
        manager
            .revoke(id, RevocationReason::SignedOut, Actor::User)
            .await
            .unwrap()
    );
    let third = SessionManager::new(
        store.clone(),
        KeySet::new([[5u8; 32]]).unwrap(),
        SessionConfig::default(),
    )
    .unwrap();
    assert!(matches!(
        third.validate(&token).await,
        Err(Refusal::Revoked)
    ));
    assert_eq!(read(&store, None).await.len(), events_before + 2);
    pool.close().await;
    common::drop_schema(&url, &schema).await;
}
