//! The event log across shards: pages merge every shard in id order, a type filter finds
//! rare events past many others, and a shard whose stream runs ahead (a node whose clock is
//! fast, or stepped back) cannot make a reader skip an event of another shard. Skipped when
//! `REDIS_URL` is unset.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use session_core::events::{EventId, EventQuery, EventType, SessionEvent};
use session_core::store::Change;
use session_core::testing::suite::{create, fresh_user, now_ms, record_in};
use session_core::{Actor, Principal, RevocationReason, SessionStore, UserId};
use session_redis::RedisStore;

use common::{connect, raw, redis_url, unique_prefix};

const DAY: Duration = Duration::from_secs(86_400);

async fn page(
    store: &RedisStore,
    after: Option<EventId>,
    limit: usize,
    ty: Option<EventType>,
) -> Vec<SessionEvent> {
    store
        .events(&EventQuery {
            after,
            limit,
            event_type: ty,
        })
        .await
        .unwrap()
}

/// Every event after `after`, page by page; checks the order as it goes.
async fn all_after(
    store: &RedisStore,
    mut after: Option<EventId>,
    limit: usize,
    ty: Option<EventType>,
) -> Vec<SessionEvent> {
    let mut out: Vec<SessionEvent> = Vec::new();
    loop {
        let got = page(store, after.clone(), limit, ty).await;
        assert!(got.len() <= limit);
        let Some(last) = got.last() else { return out };
        after = Some(last.id.clone());
        for ev in got {
            if let Some(prev) = out.last() {
                assert!(prev.id < ev.id, "{} then {}", prev.id, ev.id);
            }
            out.push(ev);
        }
    }
}

/// A user of shard `shard`.
fn user_in(store: &RedisStore, shard: u16) -> UserId {
    loop {
        let user = fresh_user("log");
        if store.shard_of(&user) == shard {
            return user;
        }
    }
}

async fn session(store: &RedisStore, user: &UserId) -> session_core::SessionRecord {
    let (rec, _) = record_in(store, Principal::user(user.clone()), now_ms(), DAY);
    create(store, &rec).await;
    rec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_merge_every_shard_in_id_order() {
    let Some(url) = redis_url() else { return };
    let store = connect(&url, &unique_prefix()).await;
    let mut revoked = HashSet::new();
    for shard in 0..store.shards() {
        let user = user_in(&store, shard);
        let a = session(&store, &user).await;
        session(&store, &user).await;
        if shard % 3 == 0 {
            let r = store
                .revoke(
                    a.id,
                    Change {
                        reason: &RevocationReason::SignedOut,
                        actor: Actor::User,
                        at: now_ms(),
                    },
                )
                .await
                .unwrap()
                .unwrap();
            revoked.insert(r.event_id);
        }
    }
    let everything = all_after(&store, None, 1000, None).await;
    assert_eq!(
        everything.len(),
        2 * usize::from(store.shards()) + revoked.len()
    );
    let shards: HashSet<&str> = everything.iter().map(|e| &e.id.as_str()[16..19]).collect();
    assert_eq!(
        shards.len(),
        usize::from(store.shards()),
        "every shard's events"
    );
    // Small pages see the same log.
    assert_eq!(all_after(&store, None, 3, None).await, everything);
    // A type filter keeps the order and drops the rest.
    let only: Vec<SessionEvent> = everything
        .iter()
        .filter(|e| e.event_type == EventType::Revoked)
        .cloned()
        .collect();
    assert_eq!(
        all_after(&store, None, 2, Some(EventType::Revoked)).await,
        only
    );
    assert_eq!(
        only.iter().map(|e| e.id.clone()).collect::<HashSet<_>>(),
        revoked
    );
    // From any cursor, the rest.
    let middle = everything[everything.len() / 2].id.clone();
    let rest = all_after(&store, Some(middle.clone()), 5, None).await;
    assert_eq!(rest, everything[everything.len() / 2 + 1..].to_vec());
    assert!(
        page(&store, Some(EventId::new("~")), 10, None)
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rare_type_is_found_past_many_other_events() {
    let Some(url) = redis_url() else { return };
    let store = connect(&url, &unique_prefix()).await;
    let user = fresh_user("rare");
    let first = session(&store, &user).await;
    for _ in 0..2_100 {
        session(&store, &user).await;
    }
    let mut event = SessionEvent::about(
        EventId::new(""),
        EventType::Suspicious,
        first.id,
        &first.principal,
        None,
        Actor::System,
        now_ms(),
    );
    event.id = store.append_event(&event).await.unwrap();
    let found = page(&store, None, 5, Some(EventType::Suspicious)).await;
    assert_eq!(found, vec![event]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_running_ahead_cannot_make_the_reader_skip_an_event() {
    let Some(url) = redis_url() else { return };
    let store = connect(&url, &unique_prefix()).await;
    let mut conn = raw(&url).await;
    let (fast, slow) = (user_in(&store, 1), user_in(&store, 2));
    session(&store, &fast).await;
    session(&store, &slow).await;
    // Shard 1's stream runs a minute ahead, as if its node's clock were fast (or the
    // clock had stepped back a minute since): its next event gets an id in the future.
    let ahead = now_ms().unix_timestamp() * 1000 + 60_000;
    let _: () = redis::cmd("XSETID")
        .arg(format!("{}:log", store.shard_tag(1)))
        .arg(format!("{ahead}-0"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let early = session(&store, &fast).await;
    let seen = all_after(&store, None, 100, None).await;
    assert_eq!(seen.len(), 3);
    let cursor = seen.last().unwrap().id.clone();
    assert_eq!(seen.last().unwrap().session_id, early.id);
    assert!(cursor.as_str() > format!("{ahead:015}").as_str());

    // Shard 2 takes an event now, by the real clock: without the barrier its id would sort
    // a minute before the cursor, and the reader would never see it.
    let late = session(&store, &slow).await;
    let next = all_after(&store, Some(cursor), 100, None).await;
    assert_eq!(
        next.iter().map(|e| e.session_id).collect::<Vec<_>>(),
        [late.id],
        "the event committed after the read is served after the cursor"
    );
}
