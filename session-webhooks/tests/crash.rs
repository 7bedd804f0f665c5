//! Crash safety at the process level: a node (`examples/webhook_node.rs`, built by
//! `cargo test`) delivers a backlog of 1,000 events to a real receiver, is killed with
//! SIGKILL mid-backlog, and is started again: the receiver ends with every event id of
//! the log, duplicates only of ids it had (at-least-once, resumed from the saved cursor,
//! not from the start).
//!
//! The log is in a SQLite file, written here through a `SessionManager` over `SqliteStore`
//! and read by the node.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::node::Node;
use common::{Receiver, SECRET, seed};
use session_core::events::EventQuery;
use session_core::{SessionEvent, SessionStore};
use session_webhooks::signature;

const EVENTS: usize = 1000;

async fn all_events(store: &Arc<dyn SessionStore>) -> Vec<SessionEvent> {
    store
        .events(&EventQuery {
            limit: EVENTS + 1,
            ..EventQuery::default()
        })
        .await
        .unwrap()
}

/// Writes (or rebuilds) the log; returns the node's `NODE_STORE` and the log.
async fn prepare(dir: &Path) -> (String, Vec<SessionEvent>, bool) {
    let path = dir.join("sessions.db");
    let sqlite = session_sqlite::SqliteStore::open(&path).await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(sqlite.clone());
    seed::seed(store.clone(), EVENTS).await;
    let events = all_events(&store).await;
    sqlite.close().await;
    (format!("sqlite://{}", path.display()), events, true)
}

fn distinct_accepted(got: &[common::Delivery]) -> usize {
    got.iter()
        .filter(|d| d.accepted())
        .map(|d| d.id.as_str())
        .collect::<HashSet<_>>()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_backlog_then_restart_delivers_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log, same_bodies) = prepare(dir.path()).await;
    assert_eq!(log.len(), EVENTS);
    let receiver = Receiver::start().await;
    // About 800 a second at the node's 4 requests at once: the backlog takes a while.
    receiver.set_delay(Duration::from_millis(5));

    let mut first = Node::start(dir.path(), &store, &receiver.url(), "node-1", &[]);
    let started = receiver
        .wait_for(Duration::from_secs(60), |got| distinct_accepted(got) >= 300)
        .await;
    assert!(started, "node-1 delivered too little:\n{}", first.log());
    first.kill_9();
    let at_kill = distinct_accepted(&receiver.deliveries());
    eprintln!("killed node-1 after {at_kill} events");
    assert!(at_kill < EVENTS, "killed mid-backlog");
    // Let the receiver finish the requests it had.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answered_before = receiver.deliveries().len();

    let second = Node::start(dir.path(), &store, &receiver.url(), "node-2", &[]);
    let done = receiver
        .wait_for(Duration::from_secs(60), |got| {
            distinct_accepted(got) == EVENTS
        })
        .await;
    assert!(
        done,
        "node-2 did not finish ({} of {EVENTS}):\n{}",
        distinct_accepted(&receiver.deliveries()),
        second.log()
    );
    drop(second);

    let want: HashMap<&str, &SessionEvent> = log.iter().map(|e| (e.id.as_str(), e)).collect();
    let got = receiver.accepted();
    let mut times: HashMap<&str, usize> = HashMap::new();
    for d in &got {
        let event = want
            .get(d.id.as_str())
            .unwrap_or_else(|| panic!("{} is not in the log", d.id));
        *times.entry(d.id.as_str()).or_default() += 1;
        let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(body["id"], d.id, "Webhook-Id is the event id");
        assert_eq!(body["user_id"], event.user_id.as_str());
        if same_bodies {
            // A duplicate is the same delivery again, byte for byte in JSON terms.
            assert_eq!(body, serde_json::to_value(event).unwrap());
        }
        signature::verify_signature(
            &[SECRET],
            &d.signature,
            &d.body,
            signature::unix_now(),
            signature::DEFAULT_TOLERANCE,
        )
        .unwrap();
    }
    assert_eq!(times.len(), EVENTS, "every event of the log arrived");
    let duplicates = got.len() - EVENTS;
    eprintln!(
        "{} deliveries for {EVENTS} events: {duplicates} duplicates; node-2 answered from \
         request {answered_before}",
        got.len()
    );
    // Resumed from its saved cursor (saved at most 100 ms behind), not from the start.
    assert!(
        duplicates < at_kill / 2 && duplicates <= 200,
        "{duplicates} duplicates after a kill at {at_kill}"
    );

    // Each user's events first arrived in log order, across the crash too.
    let mut first_seen: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut seen = HashSet::new();
    for d in &got {
        if seen.insert(d.id.as_str()) {
            first_seen
                .entry(d.user.as_str())
                .or_default()
                .push(d.id.as_str());
        }
    }
    for (user, ids) in first_seen {
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted, "{user}'s events in order");
    }
}
