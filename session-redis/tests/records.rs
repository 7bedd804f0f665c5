//! What the Redis store keeps, key by key: text survives exactly, a user's keys share one
//! hash tag, a revoked record stays (outside the indexes) until the purge deletes it, the
//! indexes shed what the purge deletes, and a node configured with another number of
//! shards refuses to start. Skipped when `REDIS_URL` is unset.

mod common;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use session_core::store::{Change, Retention, RevokeMany, RevokeScope};
use session_core::testing::suite::{create, fresh_user, now_ms, record_in};
use session_core::{
    Actor, Principal, RevocationReason, SessionId, SessionRecord, SessionStore, StoreError, UserId,
};
use session_redis::{Error, RedisStore};

use common::{connect, keys, raw, redis_url, unique_prefix};

async fn setup() -> Option<(RedisStore, MultiplexedConnection, String)> {
    let url = redis_url()?;
    let prefix = unique_prefix();
    Some((connect(&url, &prefix).await, raw(&url).await, prefix))
}

async fn zcard(conn: &mut MultiplexedConnection, key: &str) -> u64 {
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap()
}

async fn zscore(conn: &mut MultiplexedConnection, key: &str, member: SessionId) -> Option<f64> {
    redis::cmd("ZSCORE")
        .arg(key)
        .arg(member.to_string())
        .query_async(conn)
        .await
        .unwrap()
}

/// Whether the shard's active set holds the session (its members are `EXPIRY:ID`).
async fn active(conn: &mut MultiplexedConnection, tag: &str, id: SessionId) -> bool {
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{tag}:act"))
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .unwrap();
    members.iter().any(|m| m.ends_with(&format!(":{id}")))
}

fn session(store: &RedisStore, user: &UserId, ttl: Duration) -> SessionRecord {
    record_in(store, Principal::user(user.clone()), now_ms(), ttl).0
}

fn change(reason: &RevocationReason) -> Change<'_> {
    Change {
        reason,
        actor: Actor::User,
        at: now_ms(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_text_survives_touch_and_revoke() {
    let Some((store, _, _)) = setup().await else {
        return;
    };
    let user = UserId::from(format!(
        "ünï/cødé \"quoted\" {{x}} {}",
        uuid::Uuid::new_v4()
    ));
    let now = now_ms();
    let (mut rec, _) = record_in(
        &store,
        Principal::agent(user.clone(), "agent/1\\x", "Bot 🤖 <b>\u{1}\ttab</b>"),
        now,
        Duration::from_secs(600),
    );
    rec.user_agent = Some("Mozilla/5.0 \"x\" \u{2028} € \\u0000 %s".into());
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
    let at = later + Duration::from_nanos(7);
    let ch = Change {
        reason: &reason,
        actor: Actor::Admin,
        at,
    };
    let revoked = store.revoke(rec.id, ch).await.unwrap().unwrap();
    assert_eq!(revoked.principal, rec.principal);
    rec.revoked_at = Some(at);
    rec.revocation_reason = Some(reason);
    assert_eq!(store.load(rec.id).await.unwrap(), Some(rec));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_shows_no_url_and_no_client_details() {
    let Some((store, _, prefix)) = setup().await else {
        return;
    };
    let user = fresh_user("debug");
    create(&store, &session(&store, &user, Duration::from_secs(60))).await;
    let debug = format!("{store:?}");
    let url = redis_url().unwrap();
    assert!(!debug.contains(&url), "{debug}");
    assert!(
        !debug.contains("203.0.113.7") && !debug.contains("Mozilla"),
        "{debug}"
    );
    assert!(debug.contains(&prefix), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_keys_share_one_hash_tag() {
    let Some((store, mut conn, prefix)) = setup().await else {
        return;
    };
    let user = fresh_user("tag");
    let shard = store.shard_of(&user);
    let tag = store.shard_tag(shard);
    assert_eq!(tag, format!("{{{prefix}{shard}}}"));
    let a = session(&store, &user, Duration::from_secs(600));
    assert_eq!(store.shard_of_session(a.id), shard);
    create(&store, &a).await;
    let (agent, _) = record_in(
        &store,
        Principal::agent(user.clone(), "bot", "Bot"),
        now_ms(),
        Duration::from_secs(600),
    );
    create(&store, &agent).await;
    store
        .revoke(a.id, change(&RevocationReason::SignedOut))
        .await
        .unwrap()
        .unwrap();
    // Everything of this deployment is under a tag; everything of the user under theirs.
    for key in keys(&mut conn, &prefix).await {
        let key = String::from_utf8(key).unwrap();
        let global = format!("{{{prefix}}}");
        assert!(key.starts_with(&tag) || key.starts_with(&global), "{key}");
    }
    for kind in ["s", "u", "a"] {
        let suffix = if kind == "s" {
            agent.id.to_string()
        } else {
            user.to_string()
        };
        let key = format!("{tag}:{kind}:{suffix}");
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(exists, 1, "{key}");
    }
    // An id placed elsewhere is refused, not stored in another user's shard.
    let (mut stray, _) = record_in(
        &store,
        Principal::user(user.clone()),
        now_ms(),
        Duration::from_secs(60),
    );
    let mut bytes = *stray.id.as_bytes();
    bytes[15] ^= 1;
    stray.id = SessionId::from_bytes(bytes);
    let err = store
        .create(session_core::store::NewSession {
            record: &stray,
            expected_epoch: None,
            granted_by: None,
            max_user_sessions: None,
            actor: Actor::User,
        })
        .await
        .expect_err("a misplaced id");
    let StoreError::Backend(inner) = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(
        inner.downcast_ref::<Error>(),
        Some(Error::MisplacedSessionId(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_record_stays_outside_the_indexes_until_the_purge() {
    let Some((store, mut conn, _)) = setup().await else {
        return;
    };
    let user = fresh_user("kept");
    let tag = store.shard_tag(store.shard_of(&user));
    let rec = session(&store, &user, Duration::from_secs(3600));
    create(&store, &rec).await;
    let index = format!("{tag}:u:{user}");
    assert_eq!(zcard(&mut conn, &index).await, 1);
    assert!(active(&mut conn, &tag, rec.id).await);
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{tag}:s:{}", rec.id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pttl, -1, "records end by the purge, not by a TTL");

    let at = now_ms();
    store
        .revoke(
            rec.id,
            Change {
                reason: &RevocationReason::SignedOut,
                actor: Actor::User,
                at,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(store.load(rec.id).await.unwrap().unwrap().is_revoked());
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&index)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        exists, 0,
        "revoked ids leave the user's index; an empty one is deleted"
    );
    assert!(!active(&mut conn, &tag, rec.id).await);
    let ended = zscore(&mut conn, &format!("{tag}:end"), rec.id).await;
    assert_eq!(
        ended,
        Some((at.unix_timestamp_nanos() / 1000) as f64),
        "ended at revocation"
    );

    // A purge a day later keeps it (retention 2 days), one 3 days later deletes it.
    let retention = Retention {
        sessions: Duration::from_secs(2 * 86_400),
        events: Duration::from_secs(400 * 86_400),
    };
    store
        .purge(at + Duration::from_secs(86_400), retention)
        .await
        .unwrap();
    assert!(store.load(rec.id).await.unwrap().is_some());
    let purged = store
        .purge(at + Duration::from_secs(3 * 86_400), retention)
        .await
        .unwrap();
    assert!(purged.sessions >= 1);
    assert_eq!(store.load(rec.id).await.unwrap(), None);
    assert!(
        zscore(&mut conn, &format!("{tag}:end"), rec.id)
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_sheds_expired_sessions_from_the_indexes() {
    let Some((store, mut conn, _)) = setup().await else {
        return;
    };
    let user = fresh_user("shed");
    let tag = store.shard_tag(store.shard_of(&user));
    let index = format!("{tag}:u:{user}");
    let mut short = Vec::new();
    for _ in 0..5 {
        let rec = session(&store, &user, Duration::from_secs(60));
        create(&store, &rec).await;
        short.push(rec.id);
    }
    let long = session(&store, &user, Duration::from_secs(7200));
    create(&store, &long).await;
    assert_eq!(zcard(&mut conn, &index).await, 6);

    // An hour on, five have expired: listing and revoking skip them...
    let later = now_ms() + Duration::from_secs(3600);
    let listed = store.list_active(&user, later, 100).await.unwrap();
    assert_eq!(listed, vec![long.clone()]);
    let none = store
        .revoke_many(RevokeMany {
            user_id: &user,
            scope: &RevokeScope::UserSessions,
            except: Some(long.id),
            change: Change {
                reason: &RevocationReason::RevokedByUser,
                actor: Actor::User,
                at: later,
            },
            disable_user: false,
        })
        .await
        .unwrap();
    assert!(none.is_empty(), "expired sessions are not revoked again");
    // ...and the purge (retention zero) deletes them, from the indexes too.
    let purged = store
        .purge(
            later,
            Retention {
                sessions: Duration::ZERO,
                events: Duration::from_secs(86_400),
            },
        )
        .await
        .unwrap();
    assert!(purged.sessions >= 5, "{purged:?}");
    assert_eq!(zcard(&mut conn, &index).await, 1);
    for id in short {
        assert_eq!(store.load(id).await.unwrap(), None);
        assert!(!active(&mut conn, &tag, id).await);
    }
    assert_eq!(store.load(long.id).await.unwrap(), Some(long));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_trims_the_log_and_the_audit_indexes_alike() {
    let Some((store, mut conn, _)) = setup().await else {
        return;
    };
    let user = fresh_user("trim");
    let tag = store.shard_tag(store.shard_of(&user));
    let first = session(&store, &user, Duration::from_secs(600));
    create(&store, &first).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cut = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = session(&store, &user, Duration::from_secs(600));
    create(&store, &second).await;
    let query = session_core::events::AuditQuery {
        user_id: user.clone(),
        before: None,
        limit: 100,
    };
    let audit = async |store: &RedisStore| store.audit(&query).await.unwrap();
    assert_eq!(audit(&store).await.len(), 2);
    // Events before `cut` (by the stream's clock, the server's) go; records stay.
    let purged = store
        .purge(
            cut,
            Retention {
                sessions: Duration::from_secs(86_400),
                events: Duration::ZERO,
            },
        )
        .await
        .unwrap();
    assert_eq!(purged.events, 1);
    let left = audit(&store).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].session_id, second.id);
    assert_eq!(zcard(&mut conn, &format!("{tag}:a:{user}")).await, 1);
    assert!(store.load(first.id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_shard_count_refuses_to_start() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let first = RedisStore::builder(&url)
        .with_prefix(&prefix)
        .with_shards(8)
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(first.shards(), 8);
    let err = RedisStore::with_prefix(&url, &prefix)
        .await
        .expect_err("16 shards where 8 live");
    let StoreError::Backend(inner) = &err else {
        panic!("{err:?}")
    };
    match inner.downcast_ref::<Error>() {
        Some(Error::LayoutMismatch {
            stored, configured, ..
        }) => {
            assert_eq!(stored, "layout=2 shards=8");
            assert_eq!(configured, "layout=2 shards=16");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("must never change"), "{err}");
    // The same count is welcome; a prefix with a brace is not.
    RedisStore::builder(&url)
        .with_prefix(&prefix)
        .with_shards(8)
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert!(RedisStore::with_prefix(&url, "a{b}:").await.is_err());
}
