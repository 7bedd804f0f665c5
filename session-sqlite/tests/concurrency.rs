//! Logins racing a revoke-all: none may leave an active session created with a stale epoch.

mod common;

use std::sync::Arc;
use std::time::Duration;

use session_core::store::{Created, RevokeMany};
use session_core::testing::suite::{fresh_user, now_ms, record};
use session_core::{Principal, RevocationReason, RevokeScope, SessionId, SessionStore};
use tokio::sync::Barrier;

const LOGINS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_racing_a_revoke_all_never_survive_with_a_stale_epoch() {
    let temp = common::TempStore::open().await;
    let store: Arc<dyn SessionStore> = temp.clone();
    for round in 0..3 {
        let user = fresh_user("race");
        let barrier = Arc::new(Barrier::new(LOGINS + 1));
        let mut logins = Vec::new();
        for i in 0..LOGINS {
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
                    store.user_epoch(&user).await.unwrap()
                } else {
                    0
                };
                barrier.wait().await;
                if !early {
                    epoch = store.user_epoch(&user).await.unwrap();
                }
                let created = store.create(&rec, epoch).await.unwrap();
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
                        reason: &RevocationReason::PasswordReset,
                        at: now_ms(),
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
        let final_epoch = store.user_epoch(&user).await.unwrap();
        assert_eq!(final_epoch, 1, "one revoke-all moved the epoch once");

        let mut created_stale = 0;
        let mut refused = 0;
        for &(id, epoch, created) in &results {
            let loaded = store.load(id).await.unwrap();
            match created {
                Created::EpochMoved => {
                    refused += 1;
                    assert_ne!(epoch, final_epoch);
                    assert_eq!(loaded, None, "a refused login created nothing");
                }
                Created::Created if epoch != final_epoch => {
                    // It committed before the revoke-all, which must have taken it.
                    created_stale += 1;
                    let loaded = loaded.expect("created");
                    assert!(loaded.is_revoked(), "stale-epoch session {id} survived");
                    assert!(revoked.iter().any(|r| r.id == id));
                }
                Created::Created => {
                    assert!(!loaded.expect("created").is_revoked());
                }
            }
        }
        let stale: Vec<SessionId> = results
            .iter()
            .filter(|(_, epoch, _)| *epoch != final_epoch)
            .map(|(id, ..)| *id)
            .collect();
        let active = store.list_active(&user, now_ms()).await.unwrap();
        assert!(
            active.iter().all(|r| !stale.contains(&r.id)),
            "an active session was created with a stale epoch"
        );
        assert_eq!(revoked.len(), created_stale);
        assert_eq!(active.len(), LOGINS - created_stale - refused);
        println!(
            "round {round}: {created_stale} created before the revoke-all (and revoked), \
             {refused} refused, {} created after",
            active.len()
        );
    }
}
