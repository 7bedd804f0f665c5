//! A real webhook receiver: an axum server on a loopback port that records every request,
//! answers what the test tells it to, and can be stopped (its port closed) and started
//! again on the same port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// The path the receiver listens on: it stands for a URL that holds a credential, which
/// must never be logged.
pub const PATH: &str = "/hooks/T0P-SECRET-PATH";

/// One request, as received.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// `Webhook-Id`.
    pub id: String,
    /// `Session-Signature`.
    pub signature: String,
    /// `Content-Type`.
    pub content_type: String,
    /// Every header.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
    /// The body's `user_id`, if it is event JSON.
    pub user: String,
    /// What the receiver answered.
    pub status: StatusCode,
}

impl Delivery {
    pub fn accepted(&self) -> bool {
        self.status.is_success()
    }
}

type Rule = Arc<dyn Fn(&Delivery) -> StatusCode + Send + Sync>;

struct Shared {
    log: Mutex<Vec<Delivery>>,
    rule: Mutex<Rule>,
    delay: Mutex<Duration>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    changed: Notify,
}

/// Counts a request in flight for as long as it lives (a handler dropped mid-way too).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Receiver {
    /// A receiver on a free loopback port, answering 204.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shared = Arc::new(Shared {
            log: Mutex::default(),
            rule: Mutex::new(Arc::new(|_: &Delivery| StatusCode::NO_CONTENT)),
            delay: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            changed: Notify::new(),
        });
        let mut receiver = Self {
            addr: listener.local_addr().unwrap(),
            shared,
            server: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new()
            .route(PATH, post(receive))
            .with_state(self.shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        self.server = Some((stop, task));
    }

    /// The URL to deliver to.
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// Closes the port: connections are refused until [`Self::restart`].
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.server.take() {
            let _ = stop.send(());
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the receiver stops")
                .unwrap();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        assert!(self.server.is_none());
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(err) if tries < 50 => {
                    tries += 1;
                    eprintln!("rebinding {}: {err}", self.addr);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("rebinding {}: {err}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// What to answer, from the request.
    pub fn set_rule(&self, rule: impl Fn(&Delivery) -> StatusCode + Send + Sync + 'static) {
        *self.shared.rule.lock().unwrap() = Arc::new(rule);
    }

    /// How long each request takes to answer.
    pub fn set_delay(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap() = delay;
    }

    /// Every request so far, in the order answered.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(Delivery::accepted)
            .collect()
    }

    /// The most requests ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Waits until `done` holds for the requests so far; false after `timeout`.
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&[Delivery]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            if done(&self.shared.log.lock().unwrap()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(&self.shared.log.lock().unwrap());
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some((stop, task)) = self.server.take() {
            let _ = stop.send(());
            task.abort();
        }
    }
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _guard = InFlight::enter(&shared);
    let delay = *shared.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let user = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("user_id").and_then(|u| u.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let mut delivery = Delivery {
        id: text("webhook-id"),
        signature: text("session-signature"),
        content_type: text("content-type"),
        headers: headers.clone(),
        body,
        user,
        status: StatusCode::OK,
    };
    let rule = shared.rule.lock().unwrap().clone();
    delivery.status = rule(&delivery);
    let status = delivery.status;
    shared.log.lock().unwrap().push(delivery);
    shared.changed.notify_waiters();
    status
}
