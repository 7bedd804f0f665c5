//! A revoke-all over 10 000 sessions of one user is one round trip (one `EVALSHA`, counted
//! with `INFO commandstats`) and returns every session, each with its event. Skipped when
//! `REDIS_URL` is unset. A binary of its own, so no other test of this crate calls
//! `EVALSHA` meanwhile.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::events::AuditQuery;
use session_core::store::{Change, RevokeMany, RevokeScope};
use session_core::testing::suite::{create, fresh_user, now_ms, record_in};
use session_core::{
    Actor, EventType, Principal, RevocationReason, SessionId, SessionStore, UserId,
};
use session_redis::RedisStore;

use common::{clean, command_calls, connect, raw, redis_url, unique_prefix};

const SESSIONS: usize = 10_000;
const WRITERS: usize = 8;

async fn create_many(store: &Arc<RedisStore>, user: &UserId) -> HashSet<SessionId> {
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        let user = user.clone();
        writers.spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..SESSIONS / WRITERS {
                let (rec, _) = record_in(
                    &*store,
                    Principal::user(user.clone()),
                    now_ms(),
                    Duration::from_secs(3600),
                );
                create(&*store, &rec).await;
                ids.push(rec.id);
            }
            ids
        });
    }
    writers.join_all().await.into_iter().flatten().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_many_of_ten_thousand_sessions_is_one_evalsha() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = Arc::new(connect(&url, &prefix).await);
    let mut admin = raw(&url).await;

    // Other clients of a shared server may call EVALSHA during the window; a store that
    // made several round trips would do so on every attempt.
    let mut deltas = Vec::new();
    for _ in 0..3 {
        let user = fresh_user("bulk");
        let created = create_many(&store, &user).await;
        assert_eq!(created.len(), SESSIONS);

        let before = command_calls(&mut admin, "evalsha").await;
        let started = Instant::now();
        let revoked = store
            .revoke_many(RevokeMany {
                user_id: &user,
                scope: &RevokeScope::All,
                except: None,
                change: Change {
                    reason: &RevocationReason::PasswordReset,
                    actor: Actor::User,
                    at: now_ms(),
                },
                disable_user: false,
            })
            .await
            .unwrap();
        let took = started.elapsed();
        let after = command_calls(&mut admin, "evalsha").await;

        assert_eq!(
            revoked.iter().map(|r| r.id).collect::<HashSet<_>>(),
            created
        );
        assert!(
            store
                .list_active(&user, now_ms(), 100)
                .await
                .unwrap()
                .is_empty()
        );
        let log = store
            .audit(&AuditQuery {
                user_id: user.clone(),
                before: None,
                limit: SESSIONS,
            })
            .await
            .unwrap();
        assert!(log.iter().all(|e| e.event_type == EventType::Revoked));
        assert_eq!(
            log.iter().map(|e| e.id.clone()).collect::<HashSet<_>>(),
            revoked.iter().map(|r| r.event_id.clone()).collect(),
            "one event per session, as returned"
        );
        println!(
            "revoke_many of {SESSIONS} sessions: {} EVALSHA, {took:?}",
            after - before
        );
        deltas.push(after - before);
        if after - before == 1 {
            break;
        }
    }
    clean(&mut admin, &prefix).await;
    assert!(
        deltas.contains(&1),
        "EVALSHA calls per revoke_many: {deltas:?}"
    );
}
