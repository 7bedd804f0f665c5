//! The worker against a real receiver (axum on a loopback port) and the `MemoryStore`, with
//! real events from a `SessionManager`: the store scenarios, then what needs only one
//! store (outages, rotation, the horizon, wake-ups, encoders, losing the lease).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue, StatusCode};
use common::*;
use session_core::testing::FaultyStore;
use session_core::{EventType, MemoryStore, SessionEvent, SessionStore};
use session_webhooks::WebhookWorker;
use session_webhooks::encode::{EncodeError, Encoded, Encoder};
use session_webhooks::signature::{self, SignatureError, WebhookSecret};

crate::store_scenarios!(async {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    Some(same_store(store))
});

fn memory() -> Arc<dyn SessionStore> {
    Arc::new(MemoryStore::new())
}

/// How long the receiver stays down in `receiver_down_then_up`: `WEBHOOK_DOWN_SECS`
/// (the case is 60), 3 s by default.
fn down_for() -> Duration {
    let secs = std::env::var("WEBHOOK_DOWN_SECS")
        .ok()
        .map(|s| s.parse::<u64>().expect("WEBHOOK_DOWN_SECS: whole seconds"))
        .unwrap_or(3);
    Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_up() {
    let down = down_for();
    eprintln!("receiver down for {down:?} (WEBHOOK_DOWN_SECS)");
    let store = memory();
    let mut receiver = Receiver::start().await;
    receiver.stop().await;
    let manager = manager(store.clone());
    // A longer max backoff than the other tests, and short of the outage: the worker
    // probes a few times while the receiver is down.
    let handle = worker(store.clone(), &receiver.url(), "down")
        .with_backoff(Duration::from_millis(50), Duration::from_secs(1))
        .unwrap()
        .with_wakeups(manager.subscribe())
        .spawn()
        .unwrap();
    let users: Vec<String> = vec!["alice".into(), "bob".into(), "carol".into()];
    activity(&manager, &users, 3).await;
    tokio::time::sleep(down / 2).await;
    activity(&manager, &users, 2).await;
    tokio::time::sleep(down - down / 2).await;
    assert!(receiver.deliveries().is_empty());

    receiver.restart().await;
    let came_back = Instant::now();
    let expected = log_of(&store, None, &users).await;
    assert_eq!(expected.len(), 3 * 4 + 3 * 3);
    assert!(
        receiver
            .wait_for(Duration::from_secs(20), all_accepted(&expected))
            .await
    );
    eprintln!(
        "everything arrived {:?} after the receiver came back",
        came_back.elapsed()
    );
    // The worker probes at most every second (its max backoff), then sends the rest.
    assert!(came_back.elapsed() < Duration::from_secs(5));
    handle.shutdown().await;
    assert_delivered(&receiver, &expected, true);
    assert_order_per_user(&receiver, &expected);
}

#[tokio::test]
async fn secret_rotation_signs_with_both() {
    let store = memory();
    let receiver = Receiver::start().await;
    let manager = manager(store.clone());
    let secrets = WebhookSecret::parse_list("old-secret,new-secret").unwrap();
    let handle = WebhookWorker::new(store.clone(), receiver.url(), secrets)
        .unwrap()
        .with_wakeups(manager.subscribe())
        .spawn()
        .unwrap();
    activity(&manager, &["alice".to_owned()], 1).await;
    let expected = log_of(&store, None, &["alice".to_owned()]).await;
    assert!(
        receiver
            .wait_for(Duration::from_secs(10), all_accepted(&expected))
            .await
    );
    handle.shutdown().await;
    let now = signature::unix_now();
    let tolerance = signature::DEFAULT_TOLERANCE;
    for d in receiver.accepted() {
        assert_eq!(d.signature.matches("v1=").count(), 2, "{}", d.signature);
        for secret in ["old-secret", "new-secret"] {
            assert_eq!(
                signature::verify_signature(&[secret], &d.signature, &d.body, now, tolerance),
                Ok(())
            );
        }
        assert_eq!(
            signature::verify_signature(&["other"], &d.signature, &d.body, now, tolerance),
            Err(SignatureError::Mismatch)
        );
    }
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// Current-thread runtime: the worker's tasks run on this thread, under the subscriber set
// here.
#[tokio::test]
async fn gives_up_past_the_horizon_logs_it_and_moves_on() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = memory();
    let receiver = Receiver::start().await;
    let manager = manager(store.clone());
    let users = vec!["alice".to_owned(), "bob".to_owned()];
    // Alice's first event, then Alice's second and Bob's.
    activity(&manager, &users[..1], 1).await;
    let poisoned = log_of(&store, None, &users).await[0].id.to_string();
    activity(&manager, &users, 1).await;
    let expected = log_of(&store, None, &users).await;
    {
        let poisoned = poisoned.clone();
        receiver.set_rule(move |d| {
            if d.id == poisoned {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::NO_CONTENT
            }
        });
    }
    let handle = worker(store.clone(), &receiver.url(), "horizon")
        .with_horizon(Duration::from_millis(400))
        .unwrap()
        .with_backoff(Duration::from_millis(20), Duration::from_millis(50))
        .unwrap()
        .spawn()
        .unwrap();
    let rest: Vec<SessionEvent> = expected
        .iter()
        .filter(|e| e.id.as_str() != poisoned)
        .cloned()
        .collect();
    assert!(
        receiver
            .wait_for(Duration::from_secs(10), all_accepted(&rest))
            .await
    );
    handle.shutdown().await;

    let tries = receiver
        .deliveries()
        .iter()
        .filter(|d| d.id == poisoned)
        .count();
    assert!(tries >= 3, "retried until the horizon: {tries}");
    assert!(receiver.accepted().iter().all(|d| d.id != poisoned));
    assert_delivered(&receiver, &rest, true);
    // Alice's second went only after her first was given up.
    let alice_second = expected
        .iter()
        .filter(|e| e.user_id.as_str() == "alice")
        .nth(1)
        .unwrap();
    let order: Vec<String> = receiver.deliveries().into_iter().map(|d| d.id).collect();
    let last_poisoned = order.iter().rposition(|id| *id == poisoned).unwrap();
    let second_at = order
        .iter()
        .position(|id| id == alice_second.id.as_str())
        .unwrap();
    assert!(second_at > last_poisoned);
    // The cursor moved past it.
    let cursor = store.load_cursor("horizon").await.unwrap().unwrap();
    assert_eq!(cursor, expected.last().unwrap().id);

    let text = logs.text();
    let given_up = text
        .lines()
        .find(|l| l.contains("given up"))
        .unwrap_or_else(|| panic!("no give-up line in:\n{text}"));
    assert!(
        given_up.contains("ERROR") && given_up.contains(&poisoned),
        "{given_up}"
    );
    assert!(text.contains("status 503"), "{text}");
    // Neither the secret nor the URL's path is ever logged.
    assert!(!text.contains(SECRET));
    assert!(!text.contains("T0P-SECRET-PATH"));
}

#[tokio::test]
async fn wakes_up_at_once_for_events_this_node_logs() {
    let store = memory();
    let receiver = Receiver::start().await;
    let manager = manager(store.clone());
    let handle = worker(store.clone(), &receiver.url(), "wake")
        .with_poll_interval(Duration::from_secs(3600))
        .unwrap()
        .with_wakeups(manager.subscribe())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || handle.holds_lease()).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for round in 0..3 {
        let sent = Instant::now();
        activity(&manager, &["alice".to_owned()], 1).await;
        let expected = log_of(&store, None, &["alice".to_owned()]).await;
        assert!(
            receiver
                .wait_for(Duration::from_secs(2), all_accepted(&expected))
                .await,
            "round {round}: not woken (the poll is an hour)"
        );
        let latency = sent.elapsed();
        eprintln!("round {round}: delivered {latency:?} after the change");
        assert!(latency < Duration::from_millis(500), "{latency:?}");
    }
    handle.shutdown().await;
}

/// A Security-Event-Token-like encoder: another content type and body, a header of its
/// own, and `session.created` skipped.
#[derive(Debug)]
struct RevocationsAsSet;

impl Encoder for RevocationsAsSet {
    fn encode(&self, event: &SessionEvent) -> Result<Option<Encoded>, EncodeError> {
        if event.event_type != EventType::Revoked {
            return Ok(None);
        }
        Ok(Some(
            Encoded::new(
                HeaderValue::from_static("application/secevent+jwt"),
                format!("eyJ.{}.sig", event.id),
            )
            .with_header(
                HeaderName::from_static("authorization"),
                HeaderValue::from_static("Bearer receiver-token"),
            ),
        ))
    }
}

#[tokio::test]
async fn an_encoder_shapes_the_request_and_skips_events() {
    let store = memory();
    let receiver = Receiver::start().await;
    let manager = manager(store.clone());
    let handle = worker(store.clone(), &receiver.url(), "encoder")
        .with_encoder(RevocationsAsSet)
        .with_wakeups(manager.subscribe())
        .spawn()
        .unwrap();
    let users = vec!["alice".to_owned(), "bob".to_owned()];
    activity(&manager, &users, 2).await;
    let log = log_of(&store, None, &users).await;
    let revoked: Vec<SessionEvent> = log
        .iter()
        .filter(|e| e.event_type == EventType::Revoked)
        .cloned()
        .collect();
    assert_eq!(revoked.len(), 2);
    assert!(
        receiver
            .wait_for(Duration::from_secs(10), all_accepted(&revoked))
            .await
    );
    // The skipped events count as delivered: the cursor passes them all.
    let last = log.last().unwrap().id.clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.load_cursor("encoder").await.unwrap() != Some(last.clone()) {
        assert!(
            Instant::now() < deadline,
            "the cursor passes the skipped events"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.shutdown().await;
    let got = receiver.accepted();
    assert_eq!(got.len(), 2);
    for (d, e) in got.iter().zip(&revoked) {
        assert_eq!(d.id, e.id.as_str());
        assert_eq!(d.content_type, "application/secevent+jwt");
        assert_eq!(&d.body[..], format!("eyJ.{}.sig", e.id).as_bytes());
        assert_eq!(d.headers["authorization"], "Bearer receiver-token");
        assert_eq!(
            signature::verify_signature(
                &[SECRET],
                &d.signature,
                &d.body,
                signature::unix_now(),
                signature::DEFAULT_TOLERANCE
            ),
            Ok(())
        );
    }
}

/// Another node takes the lease from under the holder (a store that lost the holder's
/// lease, say): the holder stops delivering at its next renewal, dropping its request in
/// flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loses_the_lease_stops_at_once() {
    let store = memory();
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(100));
    let manager = manager(store.clone());
    interleaved(
        &manager,
        &["u1".into(), "u2".into(), "u3".into(), "u4".into()],
        20,
    )
    .await;
    let handle = worker(store.clone(), &receiver.url(), "stolen")
        .with_node_id("holder")
        .unwrap()
        .with_concurrency(1)
        .unwrap()
        .spawn()
        .unwrap();
    assert!(
        receiver
            .wait_for(Duration::from_secs(10), |got| got.len() >= 3)
            .await
    );
    assert!(handle.holds_lease());

    store.release_lease("stolen", "holder").await.unwrap();
    assert!(
        store
            .try_lease("stolen", "intruder", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let stolen = Instant::now();
    // Lease 1 s: renewed every third of a second.
    assert!(eventually(Duration::from_secs(2), || !handle.holds_lease()).await);
    let noticed = stolen.elapsed();
    assert!(noticed < Duration::from_millis(700), "{noticed:?}");
    // At most the request that was in the receiver's hands still lands.
    let after = receiver.deliveries().len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(receiver.deliveries().len() <= after + 1);
    assert_eq!(receiver.max_in_flight(), 1);
    handle.shutdown().await;
}

/// A store that stops answering: the holder cannot renew, and stops delivering before its
/// lease can have run out in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_store_hangs_stops_within_the_lease() {
    let faulty = FaultyStore::new(MemoryStore::new());
    let store: Arc<dyn SessionStore> = faulty.clone();
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(50));
    let handle = worker(store.clone(), &receiver.url(), "hang")
        .with_concurrency(1)
        .unwrap()
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || handle.holds_lease()).await);
    faulty.set_hanging(true);
    let hung = Instant::now();
    assert!(eventually(Duration::from_secs(3), || !handle.holds_lease()).await);
    // Its last renewal began at most a third of the lease before the hang; it stops four
    // fifths of the lease after that.
    let stopped = hung.elapsed();
    assert!(stopped <= Duration::from_millis(900), "{stopped:?}");
    faulty.set_hanging(false);
    assert!(eventually(Duration::from_secs(5), || handle.holds_lease()).await);
    handle.shutdown().await;
}

#[tokio::test]
async fn debug_output_holds_no_secret_or_url_path() {
    let store = memory();
    let worker = WebhookWorker::new(
        store,
        "https://user:pa55word@hooks.example.com/T0P-SECRET-PATH?token=abc",
        WebhookSecret::parse_list("super-secret-1,super-secret-2").unwrap(),
    )
    .unwrap();
    let text = format!("{worker:?}");
    for leak in [
        "super-secret",
        "pa55word",
        "T0P-SECRET-PATH",
        "token=abc",
        "user",
    ] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    assert!(text.contains("https://hooks.example.com"), "{text}");
    let handle = worker.spawn().unwrap();
    let text = format!("{handle:?}");
    assert!(!text.contains("super-secret") && !text.contains("T0P-SECRET-PATH"));
    handle.shutdown().await;
}

/// A `metrics` recorder that keeps every value, by name and labels.
#[derive(Clone, Debug, Default)]
struct Recorded(Arc<Mutex<std::collections::HashMap<String, Vec<f64>>>>);

#[derive(Debug)]
struct Cell {
    key: String,
    values: Recorded,
}

impl Cell {
    fn push(&self, value: f64) {
        let mut all = self.values.0.lock().unwrap();
        all.entry(self.key.clone()).or_default().push(value);
    }
}

impl metrics::CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.push(value as f64);
    }
    fn absolute(&self, value: u64) {
        self.push(value as f64);
    }
}

impl metrics::GaugeFn for Cell {
    fn increment(&self, value: f64) {
        self.push(value);
    }
    fn decrement(&self, value: f64) {
        self.push(-value);
    }
    fn set(&self, value: f64) {
        self.push(value);
    }
}

impl metrics::HistogramFn for Cell {
    fn record(&self, value: f64) {
        self.push(value);
    }
}

impl Recorded {
    fn cell(&self, key: &metrics::Key) -> Arc<Cell> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Cell {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            values: self.clone(),
        })
    }

    fn values(&self, key: &str) -> Vec<f64> {
        self.0.lock().unwrap().get(key).cloned().unwrap_or_default()
    }
}

impl metrics::Recorder for Recorded {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.cell(key))
    }
}

// Current-thread runtime: the worker's tasks record under the recorder set here.
#[tokio::test]
async fn metrics_count_attempts_failures_backlog_and_lag_by_host() {
    let recorded = Recorded::default();
    let _guard = metrics::set_default_local_recorder(&recorded);
    let store = memory();
    let receiver = Receiver::start().await;
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let refused = refused.clone();
        receiver.set_rule(move |_| {
            // The first two attempts fail.
            if refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::OK
            }
        });
    }
    let manager = manager(store.clone());
    let users = vec!["alice".to_owned(), "bob".to_owned()];
    activity(&manager, &users, 2).await;
    let expected = log_of(&store, None, &users).await;
    let handle = worker(store.clone(), &receiver.url(), "metrics")
        .spawn()
        .unwrap();
    assert!(
        receiver
            .wait_for(Duration::from_secs(10), all_accepted(&expected))
            .await
    );
    handle.shutdown().await;

    let host = "{host=127.0.0.1}";
    let sum = |name: &str| -> f64 { recorded.values(&format!("{name}{host}")).iter().sum() };
    assert_eq!(
        sum("session_webhook_attempts_total"),
        receiver.deliveries().len() as f64
    );
    assert_eq!(sum("session_webhook_failures_total"), 2.0);
    assert_eq!(sum("session_webhook_given_up_total"), 0.0);
    let lags = recorded.values(&format!("session_webhook_delivery_lag_seconds{host}"));
    assert_eq!(lags.len(), expected.len());
    assert!(lags.iter().all(|&s| (0.0..60.0).contains(&s)), "{lags:?}");
    let backlog = recorded.values(&format!("session_webhook_backlog{host}"));
    assert!(backlog.iter().any(|&n| n >= 1.0), "{backlog:?}");
    assert_eq!(backlog.last(), Some(&0.0));
    // The worker's series (the session manager's own are there too): only the host as a
    // label.
    let keys: Vec<String> = recorded.0.lock().unwrap().keys().cloned().collect();
    let worker: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("session_webhook_"))
        .collect();
    assert!(worker.len() >= 4, "{keys:?}");
    assert!(worker.iter().all(|k| k.ends_with(host)), "{keys:?}");
}

/// Shutting the handle down, or dropping it, releases the lease: another node takes over at
/// once rather than when the lease would run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_and_drop_release_the_lease() {
    let store = memory();
    let receiver = Receiver::start().await;
    let long = Duration::from_secs(60);
    for how in ["shutdown", "drop"] {
        let handle = worker(store.clone(), &receiver.url(), "release")
            .with_lease_ttl(long)
            .unwrap()
            .spawn()
            .unwrap();
        assert!(eventually(Duration::from_secs(5), || handle.holds_lease()).await);
        assert!(!store.try_lease("release", "other", long).await.unwrap());
        if how == "shutdown" {
            handle.shutdown().await;
            assert!(
                store.try_lease("release", "other", long).await.unwrap(),
                "{how}"
            );
        } else {
            drop(handle);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !store.try_lease("release", "other", long).await.unwrap() {
                assert!(Instant::now() < deadline, "{how}: the lease is still held");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        store.release_lease("release", "other").await.unwrap();
    }
}
