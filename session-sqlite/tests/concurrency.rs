//! Logins racing a revoke-all: none may leave an active session created with a stale epoch.
//! The logins go through two stores on one file (two pools, as two processes would), the
//! revoke-all through one of them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use session_core::store::{Change, Created, NewSession, RevokeMany};
use session_core::testing::suite::{fresh_user, now_ms, record};
use session_core::{Actor, Principal, RevocationReason, RevokeScope, SessionId, SessionStore};
use session_sqlite::SqliteStore;
use tokio::sync::Barrier;

const LOGINS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_racing_a_revoke_all_never_survive_with_a_stale_epoch() {
    let temp = common::TempStore::open().await;
    let store: Arc<dyn SessionStore> = temp.clone();
    let second: Arc<dyn SessionStore> = Arc::new(SqliteStore::open(&temp.path).await.unwrap());
    for round in 0..3 {
        let user = fresh_user("race");
        let barrier = Arc::new(Barrier::new(LOGINS + 1));
        let mut logins = Vec::new();
        for i in 0..LOGINS {
            let store = if i % 4 < 2 { &store } else { &second };
            let (store, barrier, user) = (store.clone(), barrier.clone(), user.clone());
            logins.push(tokio::spawn(async move {
                let (rec, _) = record(
                    Principal::User {
                        user_id: user.clone(),
                    },
                    now_ms(),
                    Duration::from_secs(3600),
                );
                // Half read the epoch before the start line (stale if the revoke-all wins),
                // half after it (racing the revoke-all itself).
                let early = i % 2 == 0;
                let mut epoch = if early {
                    store.user_state(&user).await.unwrap().epoch
                } else {
                    0
                };
                barrier.wait().await;
                if !early {
                    epoch = store.user_state(&user).await.unwrap().epoch;
                }
                let created = store
                    .create(NewSession {
                        record: &rec,
                        expected_epoch: Some(epoch),
                        granted_by: None,
                        max_user_sessions: None,
                        actor: Actor::User,
                    })
                    .await
                    .unwrap();
                (rec.id, epoch, created)
            }));
        }
        let revoker = {
            let (store, barrier, user) = (store.clone(), barrier.clone(), user.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
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
                    .unwrap()
            })
        };
        let mut results: Vec<(SessionId, u64, Created)> = Vec::new();
        for login in logins {
            results.push(login.await.unwrap());
        }
        let revoked = revoker.await.unwrap();
        let final_epoch = store.user_state(&user).await.unwrap().epoch;
        assert_eq!(final_epoch, 1, "one revoke-all moved the epoch once");

        let mut created_stale = 0;
        let mut refused = 0;
        for (id, epoch, created) in &results {
            let (id, epoch) = (*id, *epoch);
            let loaded = store.load(id).await.unwrap();
            match created {
                Created::EpochMoved => {
                    refused += 1;
                    assert_ne!(epoch, final_epoch);
                    assert_eq!(loaded, None, "a refused login created nothing");
                }
                Created::Created { .. } if epoch != final_epoch => {
                    // It committed before the revoke-all, which must have taken it.
                    created_stale += 1;
                    let loaded = loaded.expect("created");
                    assert!(loaded.is_revoked(), "stale-epoch session {id} survived");
                    assert!(revoked.iter().any(|r| r.id == id));
                }
                Created::Created { .. } => {
                    assert!(!loaded.expect("created").is_revoked());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let stale: Vec<SessionId> = results
            .iter()
            .filter(|(_, epoch, _)| *epoch != final_epoch)
            .map(|(id, ..)| *id)
            .collect();
        let active = store.list_active(&user, now_ms(), 1000).await.unwrap();
        assert!(
            active.iter().all(|r| !stale.contains(&r.id)),
            "an active session was created with a stale epoch"
        );
        assert_eq!(revoked.len(), created_stale);
        // The log has exactly one `session.created` per session created and one
        // `session.revoked` per session revoked: refused logins logged nothing.
        let log = store
            .audit(&session_core::events::AuditQuery {
                user_id: user.clone(),
                before: None,
                limit: 10_000,
            })
            .await
            .unwrap();
        let count = |t| log.iter().filter(|e| e.event_type == t).count();
        assert_eq!(count(session_core::EventType::Created), LOGINS - refused);
        assert_eq!(count(session_core::EventType::Revoked), created_stale);
        assert_eq!(active.len(), LOGINS - created_stale - refused);
        println!(
            "round {round}: {created_stale} created before the revoke-all (and revoked), \
             {refused} refused, {} created after",
            active.len()
        );
    }
}
