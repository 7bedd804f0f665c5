//! Push over LISTEN/NOTIFY between stores on one database: payloads as sent, reconnects
//! announced, a revocation reaching another node's cache. Each test has a schema (and so a
//! channel) of its own.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{drain, next, wait_payload, wait_reconnected};
use session_core::store::PushMessage;
use session_core::{
    Actor, ClientInfo, KeySet, Principal, Refusal, RevocationReason, SessionConfig, SessionManager,
    SessionStore,
};
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_the_other_store_as_sent() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::fresh_schema("push");
    let a = common::store_in(&url, &schema).await;
    let b = common::store_in(&url, &schema).await;
    assert_eq!(a.channel(), format!("{schema}_revocations"));
    let mut rx = b.push_messages().expect("push");
    let mut own = a.push_messages().expect("push");
    assert!(b.wait_listening(DEADLINE).await && a.wait_listening(DEADLINE).await);
    drain(&mut rx);
    drain(&mut own);
    let started = Instant::now();
    a.publish("hello \"world\" ü").await.unwrap();
    assert_eq!(
        next(&mut rx, DEADLINE).await,
        PushMessage::Payload(Arc::from("hello \"world\" ü"))
    );
    println!(
        "publish → payload on the other store: {:?}",
        started.elapsed()
    );
    // Our own messages come back too.
    wait_payload(&mut own, "hello \"world\" ü", DEADLINE).await;

    // Up to the limit goes through, in order; beyond PostgreSQL's is an error.
    let big = "x".repeat(a.push_limit());
    for i in 0..3 {
        a.publish(&format!("{i}{}", &big[1..])).await.unwrap();
    }
    for i in 0..3 {
        match next(&mut rx, DEADLINE).await {
            PushMessage::Payload(p) => {
                assert_eq!(p.len(), a.push_limit());
                assert!(p.starts_with(&i.to_string()));
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(a.publish(&"x".repeat(8000)).await.is_err());
    common::drop_schema(&url, &schema).await;
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
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::fresh_schema("kill");
    let a = common::store_in(&url, &schema).await;
    let b = common::store_in(&url, &schema).await;
    let admin = PgPool::connect(&url).await.unwrap();
    let mut rx = b.push_messages().expect("push");
    assert!(b.wait_listening(DEADLINE).await);
    drain(&mut rx);
    for round in 0..3 {
        assert_eq!(
            terminate(&admin, b.listener_application_name()).await,
            1,
            "b's listener backend, round {round}"
        );
        let started = Instant::now();
        assert_eq!(next(&mut rx, DEADLINE).await, PushMessage::Reconnected);
        println!(
            "round {round}: Reconnected {:?} after the kill",
            started.elapsed()
        );
        // Listening again: a publication arrives.
        assert!(b.wait_listening(DEADLINE).await);
        let payload = format!("after kill {round}");
        a.publish(&payload).await.unwrap();
        wait_payload(&mut rx, &payload, DEADLINE).await;
    }
    common::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_on_one_node_reaches_the_other_nodes_cache() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::fresh_schema("nodes");
    let a = common::store_in(&url, &schema).await;
    let b = common::store_in(&url, &schema).await;
    // A staleness bound of an hour: only the push can make node B notice in time.
    let config = SessionConfig::default().with_cache_ttl(Duration::from_secs(3600));
    let keys = KeySet::new([[9u8; 32]]).unwrap();
    let node_a = SessionManager::new(Arc::new(a), keys.clone(), config.clone()).unwrap();
    assert!(b.wait_listening(DEADLINE).await);
    let node_b = SessionManager::new(Arc::new(b), keys, config).unwrap();

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
            Err(Refusal::Revoked) => break,
            Ok(_) if started.elapsed() < DEADLINE => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => panic!("B still says {other:?} after {:?}", started.elapsed()),
        }
    }
    println!("revoked on A → refused on B after {:?}", started.elapsed());
    common::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_rebuilds_after_silence() {
    // A heartbeat every 100 ms and a 3 s silence bound; cutting the heartbeat off (by
    // closing the pool it is sent through) must make the listener give up on its
    // connection, rebuild it and say so.
    let Some(url) = common::database_url() else {
        return;
    };
    let pool = session_postgres::PostgresStore::pool_options()
        .connect(&url)
        .await
        .expect("connect");
    let store = session_postgres::PostgresStore::builder()
        .with_schema(&common::fresh_schema("silence"))
        .unwrap()
        .__with_listener_timing(Duration::from_millis(100), Duration::from_secs(3))
        .build(pool.clone());
    let mut rx = store.push_messages().unwrap();
    assert!(store.wait_listening(DEADLINE).await);
    drain(&mut rx);
    // Heartbeats flow: no reconnect for a while.
    let quiet = tokio::time::timeout(Duration::from_secs(2), wait_reconnected(&mut rx, DEADLINE));
    assert!(
        quiet.await.is_err(),
        "a healthy listener does not reconnect"
    );
    pool.close().await; // no more heartbeats
    let started = Instant::now();
    wait_reconnected(&mut rx, DEADLINE).await;
    println!("silent listener rebuilt after {:?}", started.elapsed());
}
