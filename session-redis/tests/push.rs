//! Push invalidation between two stores (two connections) on the Redis at `REDIS_URL`, and
//! what the managers on top make of it. Skipped when `REDIS_URL` is unset.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::store::Invalidation;
use session_core::{
    Actor, ClientInfo, Denial, KeySet, Principal, RevocationReason, SessionConfig, SessionId,
    SessionManager, SessionStore,
};

use common::{connect, drain, next, raw, redis_url, unique_prefix, wait_for};

const DEADLINE: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_on_one_store_reaches_the_other() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let a = connect(&url, &prefix).await;
    let b = connect(&url, &prefix).await;
    let mut rx = b.invalidations().expect("the redis store pushes");
    let ids = [SessionId::random(), SessionId::random()];
    a.publish(&ids).await.unwrap();
    // Both ids arrive, in order (a Resync may come first if the subscription was renewed).
    wait_for(&mut rx, Invalidation::Revoked(ids[0]), DEADLINE).await;
    assert_eq!(next(&mut rx, DEADLINE).await, Invalidation::Revoked(ids[1]));
    // Stores under another prefix hear nothing of it.
    let other = connect(&url, &unique_prefix()).await;
    let mut other_rx = other.invalidations().unwrap();
    a.publish(&[SessionId::random()]).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), other_rx.recv())
            .await
            .is_err(),
        "another prefix is another channel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_nothing_sends_nothing() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let a = connect(&url, &prefix).await;
    let mut rx = a.invalidations().unwrap();
    a.publish(&[]).await.unwrap();
    let id = SessionId::random();
    a.publish(&[id]).await.unwrap();
    // Its own message comes back; the empty publish took no sequence number (no Resync).
    assert_eq!(next(&mut rx, DEADLINE).await, Invalidation::Revoked(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_sequence_number_or_an_unreadable_message_resyncs() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = connect(&url, &prefix).await;
    let mut rx = store.invalidations().unwrap();
    let mut conn = raw(&url).await;
    let channel = store.channel().to_owned();
    let publisher = uuid::Uuid::new_v4();
    let mut publish = async |seq: u64, id: SessionId| {
        let msg = format!(r#"{{"v":1,"publisher":"{publisher}","seq":{seq},"ids":["{id}"]}}"#);
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(msg)
            .query_async(&mut conn)
            .await
            .unwrap();
    };
    let ids: Vec<SessionId> = (0..3).map(|_| SessionId::random()).collect();
    publish(7, ids[0]).await;
    publish(8, ids[1]).await;
    publish(10, ids[2]).await; // 9 went missing
    assert_eq!(next(&mut rx, DEADLINE).await, Invalidation::Revoked(ids[0]));
    assert_eq!(next(&mut rx, DEADLINE).await, Invalidation::Revoked(ids[1]));
    assert_eq!(next(&mut rx, DEADLINE).await, Invalidation::Resync);
    assert_eq!(next(&mut rx, DEADLINE).await, Invalidation::Revoked(ids[2]));

    let _: i64 = redis::cmd("PUBLISH")
        .arg(store.channel())
        .arg("not a revocation")
        .query_async(&mut raw(&url).await)
        .await
        .unwrap();
    assert_eq!(next(&mut rx, DEADLINE).await, Invalidation::Resync);
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
    );
    let node_b = SessionManager::new(Arc::new(connect(&url, &prefix).await), keys, config);
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
    assert!(matches!(node_a.validate(token).await, Err(Denial::Revoked)));
    let start = Instant::now();
    loop {
        match node_b.validate(token).await {
            Err(Denial::Revoked) => break,
            Ok(_) if start.elapsed() < DEADLINE => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => panic!("B still answers {other:?} after {:?}", start.elapsed()),
        }
    }
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
    let mut rx = store.invalidations().unwrap();
    drain(&mut rx);
    drop(store);
    match tokio::time::timeout(DEADLINE, rx.recv()).await {
        Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {}
        other => panic!("expected a closed channel, got {other:?}"),
    }
}
