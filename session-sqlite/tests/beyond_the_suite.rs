//! What the conformance suite does not check and this store promises: the filter's
//! provider fields, the user agent matched byte for byte (not as a LIKE pattern), the
//! purge of old events and used marks, and odd cursors.

mod common;

use std::time::Duration;

use session_core::events::{AuditQuery, EventId, EventQuery, EventType, SessionEvent};
use session_core::store::{Change, Created, NewSession, Retention};
use session_core::testing::suite::{fresh_user, now_ms, record};
use session_core::{
    Actor, IdpLink, Principal, RevocationReason, SessionFilter, SessionRecord, SessionStore,
};

const DAY: Duration = Duration::from_secs(86_400);

async fn create(store: &dyn SessionStore, rec: &SessionRecord) {
    let created = store
        .create(NewSession {
            record: rec,
            expected_epoch: None,
            granted_by: None,
            max_user_sessions: None,
            actor: Actor::User,
        })
        .await
        .unwrap();
    assert!(matches!(created, Created::Created { .. }), "{created:?}");
}

fn change(reason: &RevocationReason) -> Change<'_> {
    Change {
        reason,
        actor: Actor::Admin,
        at: now_ms(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_matches_provider_sessions_and_user_agents_byte_for_byte() {
    let temp = common::TempStore::open().await;
    let store: &dyn SessionStore = &*temp;
    let user = fresh_user("filter");
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let make = |ua: &str, idp: Option<(&str, Option<&str>)>| {
        let (mut rec, _) = record(Principal::user(user.clone()), now_ms(), DAY);
        rec.user_agent = Some(format!("{marker} {ua}"));
        rec.idp = idp.map(|(issuer, sid)| IdpLink {
            issuer: issuer.into(),
            subject: "sub".into(),
            sid: sid.map(str::to_owned),
        });
        rec
    };
    let recs = [
        make("Firefox/140.0", Some(("https://a.example", Some("s1")))), // 0
        make("Firefox/140.0", Some(("https://a.example", Some("s2")))), // 1
        make("firefox/140.0", Some(("https://b.example", Some("s1")))), // 2
        make("Fire%fox_140", None),                                     // 3
        make("Chrome/150", Some(("https://a.example", None))),          // 4
    ];
    for rec in &recs {
        create(store, rec).await;
    }
    let reason = RevocationReason::RiskDetected;
    let count = |filter: SessionFilter| async move {
        store
            .revoke_matching(&filter, change(&RevocationReason::RiskDetected), true)
            .await
            .unwrap()
            .matched
    };
    let with = |ua: &str| SessionFilter {
        user_agent: Some(format!("{marker} {ua}")),
        ..SessionFilter::default()
    };
    // Byte for byte: case counts, and `%` and `_` are characters, not wildcards.
    assert_eq!(count(with("Firefox/")).await, 2);
    assert_eq!(count(with("firefox/")).await, 1);
    assert_eq!(count(with("Fire%fox_")).await, 1);
    assert_eq!(count(with("Fire%")).await, 1, "not a LIKE pattern");
    assert_eq!(count(with("F_refox")).await, 0, "not a LIKE pattern");
    let mine = SessionFilter {
        user_agent: Some(marker.clone()),
        ..SessionFilter::default()
    };
    let issuer = |i: &str| SessionFilter {
        idp_issuer: Some(i.into()),
        ..mine.clone()
    };
    assert_eq!(count(issuer("https://a.example")).await, 3);
    assert_eq!(count(issuer("https://b.example")).await, 1);
    assert_eq!(
        count(SessionFilter {
            idp_sid: Some("s1".into()),
            ..mine.clone()
        })
        .await,
        2,
        "a sid at either provider"
    );
    let logout = SessionFilter {
        idp_sid: Some("s1".into()),
        ..issuer("https://a.example")
    };
    assert_eq!(count(logout.clone()).await, 1);
    let done = store
        .revoke_matching(&logout, change(&reason), false)
        .await
        .unwrap();
    assert_eq!(
        done.revoked.iter().map(|r| r.id).collect::<Vec<_>>(),
        [recs[0].id]
    );
    assert_eq!(count(mine).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_deletes_old_events_used_marks_and_expired_leases() {
    let temp = common::TempStore::open().await;
    let store: &dyn SessionStore = &*temp;
    let user = fresh_user("purge");
    let now = now_ms();
    let (rec, _) = record(Principal::user(user.clone()), now, DAY);
    create(store, &rec).await;
    let event = |at| {
        SessionEvent::about(
            EventId::new(""),
            EventType::Suspicious,
            rec.id,
            &rec.principal,
            None,
            Actor::System,
            at,
        )
    };
    let old = store.append_event(&event(now - DAY * 2)).await.unwrap();
    let edge = store.append_event(&event(now - DAY)).await.unwrap();
    let recent = store.append_event(&event(now - DAY / 2)).await.unwrap();
    assert!(
        store
            .first_use("gone", now - Duration::from_secs(1))
            .await
            .unwrap()
    );
    assert!(store.first_use("kept", now + DAY).await.unwrap());
    assert!(
        store
            .try_lease("expired", "a", Duration::ZERO)
            .await
            .unwrap()
    );
    assert!(store.try_lease("held", "a", DAY).await.unwrap());
    // A second on: the zero-length lease (taken on the wall clock, just after `now`) has
    // ended by then.
    let purged = store
        .purge(
            now + Duration::from_secs(1),
            Retention {
                sessions: DAY,
                events: DAY,
            },
        )
        .await
        .unwrap();
    assert_eq!((purged.sessions, purged.events), (0, 2));
    // More than one batch (the purge deletes a few thousand rows per transaction).
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4500) \
         INSERT INTO events (type, occurred_at, session_id, user_id, session_kind, actor) \
         SELECT 'session.suspicious', i, ?1, 'someone', 'user', 'system' FROM n",
    )
    .bind(rec.id.to_string())
    .execute(temp.store.pool())
    .await
    .unwrap();
    let purged = store.purge(now, Retention::default()).await.unwrap();
    assert_eq!((purged.sessions, purged.events), (0, 4500));
    let log = store
        .audit(&AuditQuery {
            user_id: user.clone(),
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    let ids: Vec<&EventId> = log.iter().map(|e| &e.id).collect();
    assert!(!ids.contains(&&old) && !ids.contains(&&edge), "{ids:?}");
    assert_eq!(ids.len(), 2, "the recent one and the creation: {ids:?}");
    assert!(ids.contains(&&recent));
    // A purged mark can be used again; a live one cannot.
    assert!(store.first_use("gone", now + DAY).await.unwrap());
    assert!(!store.first_use("kept", now + DAY).await.unwrap());
    let leases: Vec<String> = sqlx::query_scalar("SELECT name FROM leases ORDER BY name")
        .fetch_all(temp.store.pool())
        .await
        .unwrap();
    assert_eq!(leases, ["held"]);
    // The session itself is alive: kept.
    assert!(store.load(rec.id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_cursor_text_reads_as_a_string_comparison_would() {
    let temp = common::TempStore::open().await;
    let store: &dyn SessionStore = &*temp;
    let user = fresh_user("cursor");
    for _ in 0..3 {
        let (rec, _) = record(Principal::user(user.clone()), now_ms(), DAY);
        create(store, &rec).await;
    }
    let after = |cursor: &str| {
        let cursor = EventId::new(cursor);
        async move {
            store
                .events(&EventQuery {
                    after: Some(cursor),
                    limit: 10,
                    event_type: None,
                })
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(after("").await, 3);
    assert_eq!(after("00000000000000000001").await, 2);
    assert_eq!(
        after("0000000000000000000").await,
        3,
        "a prefix sorts first"
    );
    assert_eq!(after("00000000000000000001x").await, 2);
    assert_eq!(after("not a cursor").await, 0, "letters sort after digits");
    assert_eq!(after("-").await, 3, "'-' sorts before digits");
    let before = |cursor: &str| {
        let cursor = EventId::new(cursor);
        let user = user.clone();
        async move {
            store
                .audit(&AuditQuery {
                    user_id: user,
                    before: Some(cursor),
                    limit: 10,
                })
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(before("00000000000000000003").await, 2);
    assert_eq!(before("00000000000000000002z").await, 2);
    assert_eq!(before("").await, 0);
    assert_eq!(before("z").await, 3);
    assert_eq!(
        store
            .events(&EventQuery {
                after: None,
                limit: 0,
                event_type: None,
            })
            .await
            .unwrap()
            .len(),
        0
    );
}
