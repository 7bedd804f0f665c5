//! The push channel between stores (two connections) on the Redis at `REDIS_URL`, and what
//! the managers on top make of it: a revocation reaches the other node at once, and what
//! someone without the keys publishes is ignored (no session dropped, no resync). Skipped
//! when `REDIS_URL` is unset.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use session_core::store::PushMessage;
use session_core::testing::FaultyStore;
use session_core::{
    Actor, ClientInfo, KeySet, Principal, Refusal, RevocationReason, SessionConfig, SessionManager,
    SessionStore,
};

use common::{connect, drain, next, payload, raw, redis_url, unique_prefix, wait_for};

const DEADLINE: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_on_one_store_reaches_the_other() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let a = connect(&url, &prefix).await;
    let b = connect(&url, &prefix).await;
    let mut rx = b.push_messages().expect("the redis store pushes");
    let mut own = a.push_messages().unwrap();
    a.publish("first").await.unwrap();
    a.publish("second \u{1F512} ünï").await.unwrap();
    // Both arrive, in order, as they were sent (a Reconnected may come first if the
    // subscription was renewed); the publisher hears its own too.
    wait_for(&mut rx, payload("first"), DEADLINE).await;
    assert_eq!(
        next(&mut rx, DEADLINE).await,
        payload("second \u{1F512} ünï")
    );
    wait_for(&mut own, payload("first"), DEADLINE).await;
    // Stores under another prefix hear nothing of it.
    let other = connect(&url, &unique_prefix()).await;
    let mut other_rx = other.push_messages().unwrap();
    a.publish("third").await.unwrap();
    wait_for(&mut rx, payload("third"), DEADLINE).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), other_rx.recv())
            .await
            .is_err(),
        "another prefix is another channel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatever_is_published_is_passed_on_unread() {
    let Some(url) = redis_url() else { return };
    let store = connect(&url, &unique_prefix()).await;
    let mut rx = store.push_messages().unwrap();
    let mut conn = raw(&url).await;
    let big = "y".repeat(store.push_limit());
    for text in ["not a notice", "", "{\"v\":2}", big.as_str()] {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(store.channel())
            .arg(text)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(next(&mut rx, DEADLINE).await, payload(text));
    }
    // Bytes that are not UTF-8 arrive too (to be counted as ignored), replaced.
    let _: i64 = redis::cmd("PUBLISH")
        .arg(store.channel())
        .arg(&b"\xff\xfe"[..])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(next(&mut rx, DEADLINE).await, payload("\u{FFFD}\u{FFFD}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_node_is_refused_on_the_other_within_the_deadline() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let keys = KeySet::new([[7u8; 32]]).unwrap();
    // A staleness bound far longer than the test: only the push can explain a quick refusal.
    let config = SessionConfig::new().with_cache_ttl(Duration::from_secs(600));
    let node_a = SessionManager::new(
        Arc::new(connect(&url, &prefix).await),
        keys.clone(),
        config.clone(),
    )
    .unwrap();
    let node_b = SessionManager::new(Arc::new(connect(&url, &prefix).await), keys, config).unwrap();
    let issued = node_a
        .issue(Principal::user("push-user"), ClientInfo::default())
        .await
        .unwrap();
    let token = issued.token.expose().as_bytes();
    assert!(node_b.validate(token).await.is_ok(), "B caches it as valid");
    assert!(node_b.validate(token).await.is_ok());
    node_a
        .revoke(
            issued.session.id(),
            RevocationReason::SignedOut,
            Actor::User,
        )
        .await
        .unwrap();
    assert!(matches!(
        node_a.validate(token).await,
        Err(Refusal::Revoked)
    ));
    let start = Instant::now();
    loop {
        match node_b.validate(token).await {
            Err(Refusal::Revoked) => break,
            Ok(_) if start.elapsed() < DEADLINE => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => panic!("B still answers {other:?} after {:?}", start.elapsed()),
        }
    }
    println!(
        "refused on B {:?} after the revoke returned",
        start.elapsed()
    );
}

/// Someone who can `PUBLISH` on the channel but holds no key: garbage, a well-formed
/// notice with a made-up MAC, and a real notice replayed with its id list changed. Each
/// reaches the manager as a payload and is ignored: the session B holds in its cache is
/// not reloaded (no resync), while a real revocation, published by another manager with
/// the same keys, is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_messages_reach_the_manager_and_are_ignored() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let keys = KeySet::new([[9u8; 32]]).unwrap();
    let config = SessionConfig::new().with_cache_ttl(Duration::from_secs(600));
    let a = SessionManager::new(
        Arc::new(connect(&url, &prefix).await),
        keys.clone(),
        config.clone(),
    )
    .unwrap();
    let b_store = FaultyStore::new(connect(&url, &prefix).await);
    let mut b_push = b_store.push_messages().unwrap();
    let b = SessionManager::new(b_store.clone(), keys, config).unwrap();
    let mut conn = raw(&url).await;

    let kept = a
        .issue(Principal::user("forged-kept"), ClientInfo::default())
        .await
        .unwrap();
    let doomed = a
        .issue(Principal::user("forged-doomed"), ClientInfo::default())
        .await
        .unwrap();
    let kept_token = kept.token.expose().as_bytes();
    let doomed_token = doomed.token.expose().as_bytes();
    b.validate(kept_token).await.unwrap();
    b.validate(doomed_token).await.unwrap();
    let loads = || b_store.calls.load.load(Ordering::SeqCst);
    assert_eq!(loads(), 2, "B loaded each once");

    // A real notice, captured off the channel: A revokes a third session.
    let third = a
        .issue(Principal::user("forged-third"), ClientInfo::default())
        .await
        .unwrap();
    drain(&mut b_push);
    a.revoke(third.session.id(), RevocationReason::SignedOut, Actor::User)
        .await
        .unwrap();
    let real = loop {
        if let PushMessage::Payload(p) = next(&mut b_push, DEADLINE).await {
            break p;
        }
    };
    let (mac, json) = real.split_once('.').expect("MAC.JSON");
    let third_id = third.session.id().to_string();
    assert!(json.contains(&third_id), "{json}");

    let fake_mac = "A".repeat(43);
    let forged = [
        "garbage".to_owned(),
        String::new(),
        format!(
            "{fake_mac}.{{\"v\":2,\"p\":\"{}\",\"s\":1,\"t\":0,\"all\":true}}",
            uuid::Uuid::new_v4()
        ),
        format!(
            "{fake_mac}.{{\"v\":2,\"p\":\"{}\",\"s\":7,\"t\":0,\"ids\":[\"{}\"]}}",
            uuid::Uuid::new_v4(),
            kept.session.id()
        ),
        // The real MAC over another list of ids.
        format!(
            "{mac}.{}",
            json.replace(&third_id, &kept.session.id().to_string())
        ),
        // The real one again, as sent: a replay.
        real.to_string(),
    ];
    for message in &forged {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("{{{prefix}}}revocations"))
            .arg(message)
            .query_async(&mut conn)
            .await
            .unwrap();
        // It reached the store's subscriber, as a payload.
        wait_for(&mut b_push, payload(message), DEADLINE).await;
    }
    // Let B's manager take them all in (it follows the same channel).
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.validate(kept_token).await.unwrap();
    b.validate(doomed_token).await.unwrap();
    assert_eq!(
        loads(),
        2,
        "no forged message made B drop or distrust its cache"
    );

    // A real revocation from A is applied on B: only that session is dropped.
    a.revoke(
        doomed.session.id(),
        RevocationReason::SignedOut,
        Actor::User,
    )
    .await
    .unwrap();
    let start = Instant::now();
    loop {
        match b.validate(doomed_token).await {
            Err(Refusal::Revoked) => break,
            Ok(_) if start.elapsed() < DEADLINE => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => panic!("B answers {other:?}"),
        }
    }
    b.validate(kept_token).await.unwrap();
    assert_eq!(loads(), 3, "B reloaded the revoked session, and only it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_nothing_fails_quickly() {
    // Needs no Redis: nothing listens on port 1.
    let start = Instant::now();
    let err = session_redis::RedisStore::connect("redis://127.0.0.1:1")
        .await
        .expect_err("nothing listens there");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(err, session_core::StoreError::Backend(_)),
        "{err:?}"
    );
    let err = session_redis::RedisStore::connect("http://example.com")
        .await
        .expect_err("not a redis URL");
    assert!(
        matches!(err, session_core::StoreError::Backend(_)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_closes_its_channel() {
    let Some(url) = redis_url() else { return };
    let store = connect(&url, &unique_prefix()).await;
    let mut rx = store.push_messages().unwrap();
    drain(&mut rx);
    drop(store);
    match tokio::time::timeout(DEADLINE, rx.recv()).await {
        Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {}
        other => panic!("expected a closed channel, got {other:?}"),
    }
}
