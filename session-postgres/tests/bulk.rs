//! A revoke-all over 10 000 sessions of one user: one statement, all sessions and their
//! events back. A file
//! of its own, so that the statement counter (a thread-local tracing subscriber) sees only
//! this test.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use session_core::events::AuditQuery;
use session_core::store::{Change, Created, NewSession, RevokeMany, RevokeScope};
use session_core::testing::suite::{fresh_user, now_ms, record};
use session_core::{Actor, Principal, RevocationReason, SessionRecord, SessionStore};

const DAY: Duration = Duration::from_secs(86_400);

fn new_session(record: &SessionRecord, epoch: u64) -> NewSession<'_> {
    NewSession {
        record,
        expected_epoch: Some(epoch),
        granted_by: None,
        max_user_sessions: None,
        actor: Actor::User,
    }
}

fn change(reason: &RevocationReason, at: time::OffsetDateTime) -> Change<'_> {
    Change {
        reason,
        actor: Actor::Admin,
        at,
    }
}

/// Counts sqlx's per-statement log events, but the store's heartbeat (`pg_notify`, sent
/// from a task on this same thread every few seconds).
struct CountStatements(Arc<AtomicUsize>);

/// Collects an event's fields as text.
struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountStatements {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        if !fields.0.contains("pg_notify") {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn revoke_all_of_ten_thousand_sessions_is_one_statement() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let Some(url) = common::database_url() else {
        return;
    };
    let statements = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountStatements(statements.clone()));
    // A current-thread runtime: the subscriber is this thread's, and so is every poll.
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = common::connect(&url).await;
        let user = fresh_user("bulk");
        let now = now_ms();
        // 10 000 sessions through the store (16 logins at a time).
        let started = Instant::now();
        let epoch = store.user_state(&user).await.unwrap().epoch;
        let records: Vec<_> = (0..10_000)
            .map(|i| {
                let principal = if i % 10 == 0 {
                    Principal::agent(user.clone(), "bot", "Bot")
                } else {
                    Principal::User {
                        user_id: user.clone(),
                    }
                };
                record(principal, now, DAY).0
            })
            .collect();
        for chunk in records.chunks(16) {
            let creates = chunk.iter().map(|rec| store.create(new_session(rec, epoch)));
            for created in futures_join_all(creates).await {
                assert!(matches!(created.unwrap(), Created::Created { .. }));
            }
        }
        println!("created 10 000 sessions in {:?}", started.elapsed());

        // Warm the statement on a connection, so what is measured is the revocation.
        let nobody = fresh_user("bulk-warm");
        let _ = store
            .revoke_many(RevokeMany {
                user_id: &nobody,
                scope: &RevokeScope::All,
                except: None,
                change: change(&RevocationReason::PasswordReset, now),
                disable_user: false,
            })
            .await
            .unwrap();
        let before = statements.load(Ordering::Relaxed);
        let started = Instant::now();
        let revoked = store
            .revoke_many(RevokeMany {
                user_id: &user,
                scope: &RevokeScope::All,
                except: Some(records[1].id),
                change: change(&RevocationReason::PasswordReset, now),
                disable_user: false,
            })
            .await
            .unwrap();
        let took = started.elapsed();
        let ran = statements.load(Ordering::Relaxed) - before;
        println!(
            "revoke_many(All) over 10 000 sessions: {} records in {took:?}, {ran} statement(s)",
            revoked.len()
        );
        assert_eq!(revoked.len(), 9_999);
        assert_eq!(ran, 1, "one statement");
        assert!(revoked.iter().all(|r| r.id != records[1].id));
        let events = store
            .audit(&AuditQuery {
                user_id: user.clone(),
                before: None,
                limit: 100_000,
            })
            .await
            .unwrap();
        assert_eq!(events.len(), 10_000 + 9_999, "created and revoked events");
        let mut logged: Vec<_> = events
            .iter()
            .filter(|e| e.reason == Some(RevocationReason::PasswordReset))
            .map(|e| e.id.clone())
            .collect();
        let mut returned: Vec<_> = revoked.iter().map(|r| r.event_id.clone()).collect();
        logged.sort();
        returned.sort();
        assert_eq!(logged, returned, "each revoked session has its event");
        let left = store.list_active(&user, now, 100).await.unwrap();
        assert_eq!(left.len(), 1);

        // And the whole 10 000 in one go, with the user-sessions scope.
        let user2 = fresh_user("bulk2");
        let epoch2 = store.user_state(&user2).await.unwrap().epoch;
        let records2: Vec<_> = (0..10_000)
            .map(|_| {
                record(
                    Principal::User {
                        user_id: user2.clone(),
                    },
                    now,
                    DAY,
                )
                .0
            })
            .collect();
        for chunk in records2.chunks(16) {
            for created in futures_join_all(chunk.iter().map(|rec| store.create(new_session(rec, epoch2)))).await
            {
                assert!(matches!(created.unwrap(), Created::Created { .. }));
            }
        }
        let before = statements.load(Ordering::Relaxed);
        let started = Instant::now();
        let revoked = store
            .revoke_many(RevokeMany {
                user_id: &user2,
                scope: &RevokeScope::UserSessions,
                except: None,
                change: change(&RevocationReason::AdminRevoked, now),
                disable_user: false,
            })
            .await
            .unwrap();
        let ran = statements.load(Ordering::Relaxed) - before;
        println!(
            "revoke_many(UserSessions) over 10 000 sessions: {} records in {:?}, {ran} statement(s)",
            revoked.len(),
            started.elapsed()
        );
        assert_eq!(revoked.len(), 10_000);
        assert!(ran <= 2, "one statement (plus its prepare on a cold connection)");

        // Leave the shared database as small as we found it.
        for table in ["sessions", "events"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM session_revocation.{table} WHERE user_id = ANY($1)"
            )))
            .bind(vec![user.to_string(), user2.to_string()])
            .execute(store.pool())
            .await
            .unwrap();
        }
    });
}

/// Runs futures concurrently on this task (no extra dependency).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.expect("ready")));
    out
}
