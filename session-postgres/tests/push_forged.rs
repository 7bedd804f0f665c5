//! Someone who can NOTIFY on the database but does not hold the session keys can make a
//! node neither drop a cached session nor distrust its cache: garbage, a fake MAC, a
//! changed replay of a real notice and a notice signed with other keys are all ignored by
//! a real `SessionManager` over this store (counted by `FaultyStore`: the cached session is
//! not reloaded), while a real revocation from another manager with the keys is applied.

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
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(10);

/// Validates `token` on `node` until it is refused as revoked.
async fn until_revoked(node: &SessionManager, token: &[u8]) {
    let started = Instant::now();
    loop {
        match node.validate(token).await {
            Err(Refusal::Revoked) => return,
            Ok(_) if started.elapsed() < DEADLINE => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => panic!("still {other:?} after {:?}", started.elapsed()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_notifications_are_ignored_real_ones_applied() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::fresh_schema("forged");
    let a = common::store_in(&url, &schema).await;
    let b = common::store_in(&url, &schema).await;
    let evil_store = common::store_in(&url, &schema).await;
    let channel = b.channel().to_owned();
    let mut tap = b.push_messages().unwrap();
    assert!(b.wait_listening(DEADLINE).await && a.wait_listening(DEADLINE).await);

    let config = SessionConfig::default().with_cache_ttl(Duration::from_secs(3600));
    let keys = KeySet::new([[7u8; 32]]).unwrap();
    let node_a = SessionManager::new(Arc::new(a), keys.clone(), config.clone()).unwrap();
    let faulty = FaultyStore::new(b);
    let node_b = SessionManager::new(faulty.clone(), keys, config.clone()).unwrap();
    let evil = SessionManager::new(
        Arc::new(evil_store),
        KeySet::new([[8u8; 32]]).unwrap(),
        config,
    )
    .unwrap();
    let loads = || faulty.calls.load.load(Ordering::SeqCst);

    let user = format!("forged-{}", uuid::Uuid::new_v4().simple());
    let issue = || node_a.issue(Principal::user(user.as_str()), ClientInfo::default());
    let target = issue().await.unwrap();
    let sentinel = issue().await.unwrap();
    let other = issue().await.unwrap();
    let target_token = target.token.expose().as_bytes().to_vec();
    let sentinel_token = sentinel.token.expose().as_bytes().to_vec();
    for token in [&target_token, &sentinel_token] {
        assert!(node_b.validate(token).await.is_ok());
    }
    assert_eq!(loads(), 2);
    assert!(node_b.validate(&target_token).await.is_ok());
    assert_eq!(loads(), 2, "cached");

    // A real notice, as it travels (revoking a session B never cached).
    common::drain(&mut tap);
    node_a
        .revoke(other.session.id(), RevocationReason::SignedOut, Actor::User)
        .await
        .unwrap();
    let real = loop {
        if let PushMessage::Payload(p) = common::next(&mut tap, DEADLINE).await {
            break p;
        }
    };
    assert!(real.contains(&other.session.id().to_string()), "{real}");
    let (mac, json) = real.split_once('.').unwrap();
    let target_id = target.session.id().to_string();
    let changed = format!(
        "{mac}.{}",
        json.replace(&other.session.id().to_string(), &target_id)
    );
    let fake_mac = format!(
        "{}.{}",
        "A".repeat(43),
        json.replace(&other.session.id().to_string(), &target_id)
    );
    let resync_ask = format!(
        "{mac}.{}",
        json.replace("\"ids\":", "\"all\":true,\"ids\":")
    );

    let admin = PgPool::connect(&url).await.unwrap();
    for forged in [
        "not json".to_owned(),
        String::new(),
        format!("{{\"ids\":[\"{target_id}\"]}}"),
        fake_mac,
        changed,
        resync_ask,
        real.to_string(), // a replay of the real one
        "x".repeat(7_000),
    ] {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&channel)
            .bind(forged)
            .execute(&admin)
            .await
            .unwrap();
    }
    // Someone with other keys revokes a session of their own: its notice fails the MAC.
    let stranger = evil
        .issue(Principal::user(user.as_str()), ClientInfo::default())
        .await
        .unwrap();
    evil.revoke(
        stranger.session.id(),
        RevocationReason::SignedOut,
        Actor::User,
    )
    .await
    .unwrap();

    // A real revocation after them all: once B applied it, B had read every forged one.
    node_a
        .revoke(
            sentinel.session.id(),
            RevocationReason::SignedOut,
            Actor::User,
        )
        .await
        .unwrap();
    until_revoked(&node_b, &sentinel_token).await;
    assert_eq!(loads(), 3, "only the sentinel was reloaded");
    assert!(node_b.validate(&target_token).await.is_ok());
    assert_eq!(loads(), 3, "the target is still cached: no drop, no resync");

    // And a real revocation of the target is applied.
    node_a
        .revoke(
            target.session.id(),
            RevocationReason::SignedOut,
            Actor::User,
        )
        .await
        .unwrap();
    until_revoked(&node_b, &target_token).await;
    admin.close().await;
    common::drop_schema(&url, &schema).await;
}
