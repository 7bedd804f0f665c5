//! What the Redis store keeps, key by key: text survives the scripts' JSON round trip,
//! revoked records live until their expiry, user indexes do not grow. Skipped when
//! `REDIS_URL` is unset.

mod common;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use session_core::store::{RevokeMany, RevokeScope};
use session_core::testing::suite::{fresh_user, now_ms, record};
use session_core::{Principal, RevocationReason, SessionRecord, SessionStore, UserId};
use session_redis::RedisStore;

use common::{connect, raw, redis_url, unique_prefix};

async fn setup() -> Option<(RedisStore, MultiplexedConnection, String)> {
    let url = redis_url()?;
    let prefix = unique_prefix();
    Some((connect(&url, &prefix).await, raw(&url).await, prefix))
}

async fn index_len(conn: &mut MultiplexedConnection, prefix: &str, user: &UserId) -> u64 {
    redis::cmd("ZCARD")
        .arg(format!("{prefix}u:{user}"))
        .query_async(conn)
        .await
        .unwrap()
}

async fn create(store: &RedisStore, rec: &SessionRecord) {
    let epoch = store.user_epoch(rec.user_id()).await.unwrap();
    store.create(rec, epoch).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_text_survives_touch_and_revoke() {
    let Some((store, _, _)) = setup().await else {
        return;
    };
    let user = UserId::from(format!("ünï/cødé \"quoted\" {}", uuid::Uuid::new_v4()));
    let now = now_ms();
    let (mut rec, _) = record(
        Principal::agent(user.clone(), "agent/1\\x", "Bot 🤖 <b>\u{1}\ttab</b>"),
        now,
        Duration::from_secs(600),
    );
    rec.user_agent = Some("Mozilla/5.0 \"x\" \u{2028} €".into());
    rec.ip = None;
    create(&store, &rec).await;
    assert_eq!(store.load(rec.id).await.unwrap().as_ref(), Some(&rec));

    let later = now + Duration::from_nanos(1_500);
    store.touch(rec.id, later).await.unwrap();
    rec.last_active_at = later;
    assert_eq!(store.load(rec.id).await.unwrap().as_ref(), Some(&rec));
    // Nanoseconds count: a touch 1 ns earlier does not move it back.
    store
        .touch(rec.id, later - Duration::from_nanos(1))
        .await
        .unwrap();
    assert_eq!(store.load(rec.id).await.unwrap().as_ref(), Some(&rec));

    let reason = RevocationReason::Other("left \"the\" company/team ✓".into());
    let revoked = store.revoke(rec.id, &reason, later).await.unwrap().unwrap();
    rec.revoked_at = Some(later);
    rec.revocation_reason = Some(reason);
    assert_eq!(revoked, rec);
    assert_eq!(store.load(rec.id).await.unwrap(), Some(rec));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_record_lives_until_its_expiry_outside_the_index() {
    let Some((store, mut conn, prefix)) = setup().await else {
        return;
    };
    let user = fresh_user("ttl");
    let ttl = Duration::from_secs(3600);
    let (rec, _) = record(
        Principal::User {
            user_id: user.clone(),
        },
        now_ms(),
        ttl,
    );
    create(&store, &rec).await;
    let key = format!("{prefix}s:{}", rec.id);
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        pttl > 3_590_000 && pttl <= 3_600_000,
        "record TTL {pttl} ms"
    );
    assert_eq!(index_len(&mut conn, &prefix, &user).await, 1);

    store
        .revoke(rec.id, &RevocationReason::SignedOut, now_ms())
        .await
        .unwrap()
        .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        pttl > 3_590_000,
        "the revoked record keeps its TTL: {pttl} ms"
    );
    assert!(store.load(rec.id).await.unwrap().unwrap().is_revoked());
    assert_eq!(
        index_len(&mut conn, &prefix, &user).await,
        0,
        "revoked ids leave the index"
    );
    let index_ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}u:{user}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(index_ttl, -2, "an empty index is deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_indexes_shed_expired_sessions() {
    let Some((store, mut conn, prefix)) = setup().await else {
        return;
    };
    let user = fresh_user("shed");
    for _ in 0..5 {
        let (rec, _) = record(
            Principal::User {
                user_id: user.clone(),
            },
            now_ms(),
            Duration::from_millis(300),
        );
        create(&store, &rec).await;
    }
    let (long, _) = record(
        Principal::User {
            user_id: user.clone(),
        },
        now_ms(),
        Duration::from_secs(600),
    );
    create(&store, &long).await;
    assert_eq!(index_len(&mut conn, &prefix, &user).await, 6);
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // Redis expired the five records; listing drops their ids from the index.
    let listed = store.list_active(&user, now_ms()).await.unwrap();
    assert_eq!(listed, vec![long.clone()]);
    assert_eq!(index_len(&mut conn, &prefix, &user).await, 1);

    // So does revoke_many, which then revokes only what is left.
    for _ in 0..3 {
        let (rec, _) = record(
            Principal::User {
                user_id: user.clone(),
            },
            now_ms(),
            Duration::from_millis(300),
        );
        create(&store, &rec).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let revoked = store
        .revoke_many(RevokeMany {
            user_id: &user,
            scope: &RevokeScope::All,
            except: None,
            reason: &RevocationReason::SignedOutEverywhere,
            at: now_ms(),
        })
        .await
        .unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].id, long.id);
    assert_eq!(index_len(&mut conn, &prefix, &user).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_counts_the_index_entries_it_removes() {
    let Some((store, mut conn, prefix)) = setup().await else {
        return;
    };
    let users = [fresh_user("purge-a"), fresh_user("purge-b")];
    let now = now_ms();
    let mut ids = Vec::new();
    for user in &users {
        for ttl in [60, 120, 7200] {
            let (rec, _) = record(
                Principal::User {
                    user_id: user.clone(),
                },
                now,
                Duration::from_secs(ttl),
            );
            create(&store, &rec).await;
            ids.push((rec.id, ttl));
        }
    }
    // By a clock 1 h ahead, four sessions have expired (the purge goes by the caller's
    // clock: it deletes their records too).
    let purged = store
        .purge_expired(now + Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(purged, 4);
    for user in &users {
        assert_eq!(index_len(&mut conn, &prefix, user).await, 1);
    }
    for (id, ttl) in ids {
        assert_eq!(store.load(id).await.unwrap().is_some(), ttl == 7200);
    }
    assert_eq!(store.purge_expired(now).await.unwrap(), 0);
}
