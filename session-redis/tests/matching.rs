//! `revoke_matching` on a shard larger than one script's budget (2 000 sessions looked at,
//! 250 revoked per script): the scripts go on from one another and miss nothing, count
//! nothing twice. Skipped when `REDIS_URL` is unset.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use session_core::store::{Change, NewSession, SessionFilter};
use session_core::testing::suite::{fresh_user, now_ms, record_in};
use session_core::{Actor, Principal, RevocationReason, SessionStore, UserId};

use common::{clean, connect, raw, redis_url, unique_prefix};

const SESSIONS: usize = 5_300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_shard_is_gone_through_in_several_scripts() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = Arc::new(connect(&url, &prefix).await);
    // Users of shard 3 only, so that one shard holds them all.
    let users: Vec<UserId> = std::iter::repeat_with(|| fresh_user("big"))
        .filter(|u| store.shard_of(u) == 3)
        .take(50)
        .collect();
    let marker = format!("marker-{}", uuid::Uuid::new_v4().simple());
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let (store, users, marker) = (store.clone(), users.clone(), marker.clone());
        writers.spawn(async move {
            let mut marked = Vec::new();
            for i in (w..SESSIONS).step_by(8) {
                let user = users[i % users.len()].clone();
                let (mut rec, _) = record_in(
                    &*store,
                    Principal::user(user),
                    now_ms(),
                    Duration::from_secs(3600 + i as u64),
                );
                if i % 4 == 0 {
                    rec.user_agent = Some(format!("Mozilla/5.0 {marker}"));
                    marked.push(rec.id);
                }
                store
                    .create(NewSession {
                        record: &rec,
                        expected_epoch: None,
                        granted_by: None,
                        max_user_sessions: None,
                        actor: Actor::User,
                    })
                    .await
                    .unwrap();
            }
            marked
        });
    }
    let marked: HashSet<_> = writers.join_all().await.into_iter().flatten().collect();
    assert_eq!(marked.len(), SESSIONS.div_ceil(4));
    let filter = SessionFilter {
        user_agent: Some(marker),
        ..SessionFilter::default()
    };
    let reason = RevocationReason::RiskDetected;
    let change = || Change {
        reason: &reason,
        actor: Actor::Admin,
        at: now_ms(),
    };
    let dry = store
        .revoke_matching(&filter, change(), true)
        .await
        .unwrap();
    assert_eq!(dry.matched, marked.len() as u64);
    let done = store
        .revoke_matching(&filter, change(), false)
        .await
        .unwrap();
    assert_eq!(done.matched, marked.len() as u64);
    let revoked: HashSet<_> = done.revoked.iter().map(|r| r.id).collect();
    assert_eq!(revoked, marked, "each marked session once");
    assert_eq!(done.revoked.len(), marked.len());
    let again = store
        .revoke_matching(&filter, change(), true)
        .await
        .unwrap();
    assert_eq!(again.matched, 0);
    clean(&mut raw(&url).await, &prefix).await;
}
