//! What the integration tests share: a real receiver, real events (through a
//! `SessionManager`), and the scenarios every store runs (`store_scenarios!`).
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod node;
pub mod receiver;
pub mod scenarios;
pub mod seed;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use session_core::events::EventQuery;
use session_core::{
    Actor, ClientInfo, EventId, KeySet, Principal, RevocationReason, SessionConfig, SessionEvent,
    SessionManager, SessionStore,
};
use session_webhooks::WebhookWorker;
use session_webhooks::signature::{self, WebhookSecret};

pub use receiver::{Delivery, Receiver};

/// The secret the tests sign with.
pub const SECRET: &str = "whsec_integration_secret";

/// A new handle on one shared store, as another node (or a restarted process) would open.
pub type StoreFactory =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn SessionStore>> + Send>> + Send + Sync>;

/// A factory that hands out the same store each time (one process's store).
pub fn same_store(store: Arc<dyn SessionStore>) -> StoreFactory {
    Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store })
    })
}

/// A short random tag, so that tests sharing a database use their own users and names.
pub fn tag() -> String {
    format!("{:08x}", fastrand::u32(..))
}

pub fn secrets() -> Vec<WebhookSecret> {
    WebhookSecret::parse_list(SECRET).unwrap()
}

pub fn manager(store: Arc<dyn SessionStore>) -> SessionManager {
    SessionManager::new(store, KeySet::random(), SessionConfig::default()).unwrap()
}

/// A worker with quick settings for tests: backoff 10 ms to 200 ms, poll 50 ms, lease 1 s.
pub fn worker(store: Arc<dyn SessionStore>, url: &str, name: &str) -> WebhookWorker {
    WebhookWorker::new(store, url, secrets())
        .unwrap()
        .with_name(name)
        .unwrap()
        .with_backoff(Duration::from_millis(10), Duration::from_millis(200))
        .unwrap()
        .with_poll_interval(Duration::from_millis(50))
        .unwrap()
        .with_lease_ttl(Duration::from_secs(1))
        .unwrap()
}

/// Makes `worker` start after the log's current end (so a test on a shared database sees
/// only what comes after it starts); on an empty log, nothing.
pub async fn start_at_end(store: &Arc<dyn SessionStore>, name: &str) -> Option<EventId> {
    let mut after = None;
    loop {
        let page = store
            .events(&EventQuery {
                after: after.clone(),
                limit: 1000,
                ..EventQuery::default()
            })
            .await
            .unwrap();
        match page.last() {
            Some(last) => after = Some(last.id.clone()),
            None => break,
        }
    }
    if let Some(end) = &after {
        store.save_cursor(name, end).await.unwrap();
    }
    after
}

/// The log after `after`, for `users` only, oldest first.
pub async fn log_of(
    store: &Arc<dyn SessionStore>,
    after: Option<&EventId>,
    users: &[String],
) -> Vec<SessionEvent> {
    let mut out = Vec::new();
    let mut after = after.cloned();
    loop {
        let page = store
            .events(&EventQuery {
                after: after.clone(),
                limit: 1000,
                ..EventQuery::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        out.extend(
            page.into_iter()
                .filter(|e| users.iter().any(|u| u == e.user_id.as_str())),
        );
    }
    out
}

/// [`log_of`] once it holds at least `count` events. PostgreSQL serves an event only once
/// every transaction that began before it has ended, so a test on a database that other
/// tests share reads its own last writes a moment later.
pub async fn log_of_at_least(
    store: &Arc<dyn SessionStore>,
    after: Option<&EventId>,
    users: &[String],
    count: usize,
) -> Vec<SessionEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let log = log_of(store, after, users).await;
        if log.len() >= count || std::time::Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// For each user: `sessions` sessions issued, then the first revoked. Returns nothing: read
/// the log for the events.
pub async fn activity(manager: &SessionManager, users: &[String], sessions: usize) {
    for user in users {
        let mut first = None;
        for _ in 0..sessions {
            let issued = manager
                .issue(Principal::user(user.as_str()), ClientInfo::default())
                .await
                .unwrap();
            first.get_or_insert(issued.session.id());
        }
        if let Some(id) = first {
            manager
                .revoke(id, RevocationReason::SignedOut, Actor::User)
                .await
                .unwrap();
        }
    }
}

/// Interleaves users: one session each, round after round.
pub async fn interleaved(manager: &SessionManager, users: &[String], rounds: usize) {
    for _ in 0..rounds {
        for user in users {
            manager
                .issue(Principal::user(user.as_str()), ClientInfo::default())
                .await
                .unwrap();
        }
    }
}

/// The ids of `events`.
pub fn ids(events: &[SessionEvent]) -> Vec<String> {
    events.iter().map(|e| e.id.to_string()).collect()
}

/// Whether every event of `expected` was accepted.
pub fn all_accepted(expected: &[SessionEvent]) -> impl Fn(&[Delivery]) -> bool + use<> {
    let want: HashSet<String> = ids(expected).into_iter().collect();
    move |got: &[Delivery]| {
        let accepted: HashSet<&str> = got
            .iter()
            .filter(|d| d.accepted())
            .map(|d| d.id.as_str())
            .collect();
        want.iter().all(|id| accepted.contains(id.as_str()))
    }
}

/// Every event of `expected` accepted exactly once (`once`) or at least once, each with a
/// signature that verifies, a `Webhook-Id` equal to the body's id, and the event's JSON
/// as body.
pub fn assert_delivered(receiver: &Receiver, expected: &[SessionEvent], once: bool) {
    let want: HashMap<String, &SessionEvent> =
        expected.iter().map(|e| (e.id.to_string(), e)).collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for d in receiver.accepted() {
        let Some(event) = want.get(&d.id) else {
            continue;
        };
        *counts.entry(d.id.clone()).or_default() += 1;
        assert_eq!(d.content_type, "application/json");
        let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(body["id"], d.id, "Webhook-Id is the event id");
        assert_eq!(body, serde_json::to_value(event).unwrap());
        signature::verify_signature(
            &[SECRET],
            &d.signature,
            &d.body,
            signature::unix_now(),
            signature::DEFAULT_TOLERANCE,
        )
        .unwrap_or_else(|err| panic!("{}: {err}", d.id));
    }
    for e in expected {
        let n = counts.get(e.id.as_str()).copied().unwrap_or(0);
        assert!(n >= 1, "{} never delivered", e.id);
        if once {
            assert_eq!(n, 1, "{} delivered {n} times", e.id);
        }
    }
}

/// For each user, the first acceptance of each of their events is in log order.
pub fn assert_order_per_user(receiver: &Receiver, expected: &[SessionEvent]) {
    let mut by_user: HashMap<&str, Vec<String>> = HashMap::new();
    for e in expected {
        by_user
            .entry(e.user_id.as_str())
            .or_default()
            .push(e.id.to_string());
    }
    let accepted = receiver.accepted();
    for (user, want) in by_user {
        let mut seen = HashSet::new();
        let got: Vec<String> = accepted
            .iter()
            .filter(|d| d.user == user && want.contains(&d.id))
            .filter(|d| seen.insert(d.id.clone()))
            .map(|d| d.id.clone())
            .collect();
        assert_eq!(got, want, "order of {user}'s events");
    }
}

/// Waits until `cond` holds, polling; false after `timeout`.
pub async fn eventually(timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}
