//! Push invalidation over LISTEN/NOTIFY between two stores on one database.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{drain, next, wait_resync};
use session_core::store::Invalidation;
use session_core::{
    Actor, ClientInfo, Denial, KeySet, Principal, RevocationReason, SessionConfig, SessionId,
    SessionManager, SessionStore,
};
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(10);

/// Expects exactly these `Revoked` ids next (resyncs in between are tolerated).
async fn expect_revoked(
    rx: &mut tokio::sync::broadcast::Receiver<Invalidation>,
    ids: &[SessionId],
) {
    let mut got = Vec::new();
    while got.len() < ids.len() {
        match next(rx, DEADLINE).await {
            Invalidation::Revoked(id) if ids.contains(&id) => got.push(id),
            // Other tests publish on the same channel; resyncs are allowed.
            Invalidation::Revoked(_) | Invalidation::Resync => {}
        }
    }
    assert_eq!(got, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_the_other_store() {
    let Some(a) = common::store().await else {
        return;
    };
    let Some(b) = common::store().await else {
        return;
    };
    let mut rx = b.invalidations().expect("push");
    assert!(b.wait_listening(DEADLINE).await);
    drain(&mut rx);
    let ids: Vec<SessionId> = (0..3).map(|_| SessionId::random()).collect();
    let started = Instant::now();
    a.publish(&ids).await.unwrap();
    expect_revoked(&mut rx, &ids).await;
    println!(
        "publish → Revoked on the other store: {:?}",
        started.elapsed()
    );

    // A long list goes out in several notifications, in order, without a resync.
    let many: Vec<SessionId> = (0..1000).map(|_| SessionId::random()).collect();
    a.publish(&many).await.unwrap();
    let mut got = Vec::new();
    while got.len() < many.len() {
        match next(&mut rx, DEADLINE).await {
            Invalidation::Revoked(id) if many.contains(&id) => got.push(id),
            Invalidation::Revoked(_) => {} // another test's
            Invalidation::Resync => panic!("no gap expected"),
        }
    }
    assert_eq!(got, many);
    // Empty publications send nothing.
    a.publish(&[]).await.unwrap();
}

async fn terminate(admin: &PgPool, application_name: &str) -> usize {
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE query LIKE 'LISTEN%' AND application_name = $1",
    )
    .bind(application_name)
    .fetch_all(admin)
    .await
    .unwrap();
    killed.into_iter().filter(|k| *k).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_survives_pg_terminate_backend() {
    let Some(a) = common::store().await else {
        return;
    };
    let Some(b) = common::store().await else {
        return;
    };
    let admin = PgPool::connect(&common::database_url().unwrap())
        .await
        .unwrap();
    let mut rx = b.invalidations().expect("push");
    assert!(b.wait_listening(DEADLINE).await);
    drain(&mut rx);
    for round in 0..3 {
        assert_eq!(
            terminate(&admin, b.listener_application_name()).await,
            1,
            "b's listener backend, round {round}"
        );
        let started = Instant::now();
        assert_eq!(next(&mut rx, DEADLINE).await, Invalidation::Resync);
        println!(
            "round {round}: resync {:?} after the kill",
            started.elapsed()
        );
        let id = SessionId::random();
        a.publish(&[id]).await.unwrap();
        expect_revoked(&mut rx, &[id]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_on_one_node_reaches_the_other_nodes_cache() {
    let Some(a) = common::store().await else {
        return;
    };
    let Some(b) = common::store().await else {
        return;
    };
    // A staleness bound of an hour: only the push can make node B notice in time.
    let config = SessionConfig::default().with_cache_ttl(Duration::from_secs(3600));
    let keys = KeySet::new([[9u8; 32]]).unwrap();
    let node_a = SessionManager::new(Arc::new(a), keys.clone(), config.clone());
    assert!(b.wait_listening(DEADLINE).await);
    let node_b = SessionManager::new(Arc::new(b), keys, config);

    let user = format!("push-{}", uuid::Uuid::new_v4().simple());
    let issued = node_a
        .issue(Principal::user(user.as_str()), ClientInfo::default())
        .await
        .unwrap();
    let token = issued.token.expose().as_bytes().to_vec();
    assert!(
        node_b.validate(&token).await.is_ok(),
        "cached as valid on B"
    );
    node_a
        .revoke(
            issued.session.id(),
            RevocationReason::SignedOut,
            Actor::User,
        )
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        match node_b.validate(&token).await {
            Err(Denial::Revoked) => break,
            Ok(_) if started.elapsed() < DEADLINE => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => panic!("B still says {other:?} after {:?}", started.elapsed()),
        }
    }
    println!("revoked on A → refused on B after {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_rebuilds_after_silence() {
    // A heartbeat every 100 ms and a 3 s silence bound; cutting the heartbeat off (by
    // closing the pool it is sent through) must make the listener give up on its connection,
    // rebuild it and resync.
    let Some(url) = common::database_url() else {
        return;
    };
    let pool = session_postgres::PostgresStore::pool_options()
        .connect(&url)
        .await
        .expect("connect");
    let store = session_postgres::__private::with_listener_timing(
        pool.clone(),
        Duration::from_millis(100),
        Duration::from_secs(3),
    );
    let mut rx = store.invalidations().unwrap();
    assert!(store.wait_listening(DEADLINE).await);
    drain(&mut rx);
    // Heartbeats flow: no resync for a while (other tests' revocations may come).
    let quiet = tokio::time::timeout(Duration::from_secs(2), wait_resync(&mut rx, DEADLINE));
    assert!(quiet.await.is_err(), "a healthy listener does not resync");
    pool.close().await; // no more heartbeats
    let started = Instant::now();
    wait_resync(&mut rx, DEADLINE).await;
    println!("silent listener rebuilt after {:?}", started.elapsed());
}
