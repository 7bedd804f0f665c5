//! Redis Cluster: a real cluster of 3 masters with a replica each, started by the test from
//! `redis-server` on free ports (`redis-cli --cluster create`). The whole conformance suite
//! runs on it (every script touches one slot, or Redis Cluster would refuse it), users map
//! to shards as Redis maps them to slots, and a master is killed mid-test while two nodes
//! validate and revoke: no revoked session is accepted past the staleness bound, no valid
//! session is refused with a 401, the outage is answered with errors (503), and the push
//! channel comes back on the new master.
//!
//! Skipped (with a line saying why) without `redis-server` and `redis-cli`, unless
//! `REDIS_CLUSTER_TESTS=1`.

#![cfg(feature = "cluster")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use session_core::{
    Actor, ClientInfo, KeySet, Principal, Refusal, RevocationReason, SessionConfig, SessionError,
    SessionId, SessionManager, SessionStore, UserId,
};
use session_redis::{RedisStore, RedisStoreBuilder};

use common::servers::{self, Cluster, wait_ready};
use common::{dump, run_suite, unique_prefix};

fn tools() -> bool {
    servers::available(&[("redis-server", "--version"), ("redis-cli", "--version")])
}

async fn keyslot(url: &str, key: &str) -> u16 {
    let mut conn = wait_ready(url).await;
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_runs_on_a_cluster() {
    if !tools() {
        return;
    }
    let cluster = Cluster::start().await;
    let prefix = unique_prefix();
    // One node's URL will do: the store finds the cluster from it.
    let store = RedisStore::with_prefix(&cluster.url(), &prefix)
        .await
        .unwrap();
    assert!(format!("{store:?}").contains("cluster: true"), "{store:?}");

    // A user's shard is Redis Cluster's hash of the user id, modulo the shards, and each
    // shard's tag is one slot: the shards spread over the masters.
    let url = cluster.url();
    for i in 0..100 {
        let user = UserId::from(format!("user-{i}-ü"));
        let slot = keyslot(&url, user.as_str()).await;
        assert_eq!(slot % store.shards(), store.shard_of(&user), "{user:?}");
    }
    let mut masters = std::collections::HashSet::new();
    for shard in 0..store.shards() {
        let tag = store.shard_tag(shard);
        let slot = keyslot(&url, &format!("{tag}:s:x")).await;
        assert_eq!(slot, keyslot(&url, &format!("{tag}:log")).await);
        masters.insert(cluster.master_of(slot).await.unwrap());
    }
    assert_eq!(masters.len(), 3, "16 shards over the 3 masters");

    // A second node, from a list of seeds, shares the sessions.
    let seeds: Vec<String> = cluster.nodes.iter().map(servers::Node::url).collect();
    let other = RedisStoreBuilder::cluster(seeds)
        .with_prefix(&prefix)
        .connect()
        .await
        .unwrap();
    let user = session_core::testing::suite::fresh_user("cluster");
    let rec = session_core::testing::suite::user_session(&store, &user).await;
    assert_eq!(other.load(rec.id).await.unwrap(), Some(rec));

    // Each master's keys (a replica answers MOVED to reads of them).
    // The push channel, sharded (the default) and classic, between two nodes each.
    for sharded in [true, false] {
        let node = |url: String| {
            RedisStore::builder(url)
                .with_prefix(&prefix)
                .with_sharded_pubsub(sharded)
                .connect()
        };
        let (a, b) = (
            node(cluster.nodes[1].url()).await.unwrap(),
            node(cluster.nodes[2].url()).await.unwrap(),
        );
        let publish = if sharded { "SPUBLISH" } else { "\"PUBLISH\"" };
        assert!(format!("{a:?}").contains(publish), "{a:?}");
        let mut rx = b.push_messages().unwrap();
        let text = format!("sharded: {sharded}");
        a.publish(&text).await.unwrap();
        common::wait_for(&mut rx, common::payload(&text), Duration::from_secs(5)).await;
    }

    let ports: Vec<u16> = cluster
        .topology()
        .await
        .into_iter()
        .filter(|n| n.master)
        .map(|n| n.port)
        .collect();
    let dump_prefix = prefix.clone();
    run_suite(Arc::new(store), move |_| async move {
        let mut all = String::new();
        for port in ports {
            let mut conn = wait_ready(&format!("redis://127.0.0.1:{port}")).await;
            all.push_str(&dump(&mut conn, &dump_prefix).await);
        }
        all
    })
    .await;
}

/// What a validation answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Valid,
    Refused,
    Unavailable,
}

struct Tracked {
    id: SessionId,
    token: String,
    on_victim: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failover_mid_test() {
    if !tools() {
        return;
    }
    let mut cluster = Cluster::start().await;
    let prefix = unique_prefix();
    let keys = KeySet::new([[5u8; 32]]).unwrap();
    // The staleness bound: how long a node may serve a cached "valid".
    const BOUND: Duration = Duration::from_secs(4);
    const SLACK: Duration = Duration::from_millis(500);
    let config = SessionConfig::new()
        .with_cache_ttl(BOUND)
        .with_load_timeout(Duration::from_millis(800))
        .unwrap();
    let connect = |url: String| {
        let prefix = prefix.clone();
        async move {
            RedisStore::builder(url)
                .with_prefix(prefix)
                .with_command_timeout(Duration::from_millis(800))
                .unwrap()
                .with_health_check_interval(Duration::from_millis(500))
                .unwrap()
                .connect()
                .await
                .unwrap()
        }
    };
    let store_a = Arc::new(connect(cluster.nodes[0].url()).await);
    let channel_slot = keyslot(&cluster.url(), &store_a.channel()).await;
    let victim = cluster.master_of(channel_slot).await.unwrap();
    // Node B is seeded by a node that survives.
    let seed_b = cluster
        .nodes
        .iter()
        .find(|n| n.port != victim)
        .unwrap()
        .url();
    let a = SessionManager::new(store_a.clone(), keys.clone(), config.clone()).unwrap();
    let b = SessionManager::new(Arc::new(connect(seed_b).await), keys, config).unwrap();

    // Sessions of users of every shard.
    let mut tracked = Vec::new();
    for i in 0..64 {
        let user = UserId::from(format!("failover-{i}"));
        let issued = a
            .issue(Principal::user(user.clone()), ClientInfo::default())
            .await
            .unwrap();
        let tag = store_a.shard_tag(store_a.shard_of(&user));
        let slot = keyslot(&cluster.url(), &format!("{tag}:x")).await;
        tracked.push(Tracked {
            id: issued.session.id(),
            token: issued.token.expose().to_owned(),
            on_victim: cluster.master_of(slot).await == Some(victim),
        });
    }
    for t in &tracked {
        a.validate(t.token.as_bytes()).await.unwrap();
        b.validate(t.token.as_bytes()).await.unwrap();
    }
    // Revoked before, during and after the failover (four sessions on the master that dies
    // and four elsewhere each time; during, those on the dead master first); the rest never.
    let (mut on, mut off): (Vec<usize>, Vec<usize>) =
        (0..tracked.len()).partition(|i| tracked[*i].on_victim);
    assert!(
        on.len() >= 14 && off.len() >= 14,
        "{} on the victim",
        on.len()
    );
    let mut take = || -> Vec<usize> { on.drain(..4).chain(off.drain(..4)).collect() };
    let (before, during, after) = (take(), take(), take());
    let kept: Vec<usize> = on.into_iter().chain(off).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(usize, Instant, Outcome)>>> = Arc::default();
    let tracked = Arc::new(tracked);
    let mut validators = Vec::new();
    for node in [a.clone(), b.clone()] {
        let (stop, seen, tracked) = (stop.clone(), seen.clone(), tracked.clone());
        validators.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                for (i, t) in tracked.iter().enumerate() {
                    let started = Instant::now();
                    let outcome = match node.validate(t.token.as_bytes()).await {
                        Ok(_) => Outcome::Valid,
                        Err(Refusal::Unavailable(_)) => Outcome::Unavailable,
                        Err(Refusal::Revoked) => Outcome::Refused,
                        Err(other) => panic!("session {i}: {other:?}: a 401 that is not revoked"),
                    };
                    seen.lock().unwrap().push((i, started, outcome));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    let mut revoked_at: HashMap<usize, Instant> = HashMap::new();
    let mut failed_revocations = 0;
    let mut revoke = async |i: usize, revoked_at: &mut HashMap<usize, Instant>| {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            match a
                .revoke(tracked[i].id, RevocationReason::AdminRevoked, Actor::Admin)
                .await
            {
                Ok(true) => {
                    revoked_at.insert(i, Instant::now());
                    return;
                }
                Ok(false) => panic!("session {i} was not active"),
                Err(SessionError::Store(e)) => {
                    // The outage, answered as an error (503), never as a revocation.
                    if failed_revocations % 20 == 0 {
                        println!("revoking {i}: {e}");
                    }
                    failed_revocations += 1;
                    assert!(Instant::now() < until, "revocations did not come back");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
    };
    for i in before {
        revoke(i, &mut revoked_at).await;
    }
    // Replication is asynchronous: a write acknowledged just before a master dies can be
    // lost. Let the replicas catch up before the crash.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_at = Instant::now();
    cluster.kill(victim);
    for i in during {
        revoke(i, &mut revoked_at).await;
    }
    cluster.wait_healthy(Some(victim)).await;
    let failover = killed_at.elapsed();
    for i in after {
        revoke(i, &mut revoked_at).await;
    }
    tokio::time::sleep(BOUND + SLACK * 2).await;
    stop.store(true, Ordering::SeqCst);
    for v in validators {
        v.await.unwrap();
    }

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let mut unavailable = 0;
    for &(i, started, outcome) in seen.iter() {
        if outcome == Outcome::Unavailable {
            unavailable += 1;
        }
        if kept.contains(&i) {
            assert_ne!(outcome, Outcome::Refused, "valid session {i} refused");
        }
        if let Some(&at) = revoked_at.get(&i)
            && started > at + BOUND + SLACK
        {
            assert_ne!(
                outcome,
                Outcome::Valid,
                "session {i} accepted past the bound"
            );
        }
    }
    println!(
        "failover in {failover:?}; {} validations, {unavailable} answered 503; {failed_revocations} revocation attempts failed during the outage",
        seen.len()
    );
    assert!(failed_revocations > 0, "the outage was seen, as errors");

    // After the failover: every node serves the valid sessions and refuses the revoked.
    for (i, t) in tracked.iter().enumerate() {
        for node in [&a, &b] {
            let answer = node.validate(t.token.as_bytes()).await;
            if revoked_at.contains_key(&i) {
                assert!(matches!(answer, Err(Refusal::Revoked)), "{i}: {answer:?}");
            } else {
                assert!(answer.is_ok(), "{i}: {answer:?}");
            }
        }
    }
    // And the push channel is back, on the channel's new master: a revocation on A is
    // refused on B at once, well within the staleness bound.
    let late = a
        .issue(Principal::user("failover-late"), ClientInfo::default())
        .await
        .unwrap();
    let token = late.token.expose().as_bytes().to_vec();
    b.validate(&token).await.unwrap();
    a.revoke(late.session.id(), RevocationReason::SignedOut, Actor::User)
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        match b.validate(&token).await {
            Err(Refusal::Revoked) => break,
            Ok(_) if start.elapsed() < Duration::from_secs(2) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => panic!(
                "B answers {other:?} {:?} after the revocation",
                start.elapsed()
            ),
        }
    }
    println!(
        "after the failover, B refused a revoked session {:?} after A revoked it",
        start.elapsed()
    );
}
