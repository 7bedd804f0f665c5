//! The delivery worker (feature `worker`): POSTs every event of the store's log to one URL,
//! signed, at least once, one node at a time.
//!
//! # Example
//!
//! A receiver (here a small axum server on a free port), a manager over a store, and a
//! worker that wakes up when the manager logs an event:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use axum::{Router, body::Bytes, extract::State, http::{HeaderMap, StatusCode}, routing::post};
//! use session_core::{ClientInfo, KeySet, MemoryStore, Principal, SessionConfig, SessionManager};
//! use session_core::events::EventQuery;
//! use session_webhooks::signature::{self, SIGNATURE_HEADER, WEBHOOK_ID_HEADER, WebhookSecret};
//! use session_webhooks::WebhookWorker;
//!
//! type Seen = Arc<Mutex<Vec<String>>>;
//!
//! async fn receive(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> StatusCode {
//!     let header = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
//!     let now = signature::unix_now();
//!     if signature::verify_signature(&["s3cret"], header, &body, now, signature::DEFAULT_TOLERANCE)
//!         .is_err()
//!     {
//!         return StatusCode::UNAUTHORIZED;
//!     }
//!     let id = headers[WEBHOOK_ID_HEADER].to_str().unwrap().to_owned();
//!     seen.lock().unwrap().push(id);
//!     StatusCode::NO_CONTENT
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let seen = Seen::default();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/webhooks", listener.local_addr()?);
//! let app = Router::new().route("/webhooks", post(receive)).with_state(seen.clone());
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! let store = Arc::new(MemoryStore::new());
//! let manager = SessionManager::new(store.clone(), KeySet::random(), SessionConfig::default())?;
//! let worker = WebhookWorker::new(store, &url, WebhookSecret::parse_list("s3cret")?)?
//!     .with_wakeups(manager.subscribe())
//!     .spawn()?;
//!
//! let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
//! for _ in 0..500 {
//!     if !seen.lock().unwrap().is_empty() {
//!         break;
//!     }
//!     tokio::time::sleep(Duration::from_millis(10)).await;
//! }
//! let log = manager.events(&EventQuery { limit: 10, ..EventQuery::default() }).await?;
//! assert_eq!(log.len(), 1);
//! let created = &log[0];
//! assert_eq!(*seen.lock().unwrap(), [created.id.to_string()]);
//! worker.shutdown().await;
//! # let _ = issued;
//! # Ok(())
//! # }
//! ```
//!
//! # How delivery works
//!
//! - **Body and headers**: by default the event's JSON (`application/json`); another
//!   [`Encoder`] can send something else, or skip events. Each
//!   request carries `Session-Signature: t=UNIX,v1=HEX` (one `v1` per secret; see
//!   [`signature`](crate::signature)) and `Webhook-Id: EVENT_ID`. Redirects are not
//!   followed (a 3xx is a failure).
//! - **Order**: a user's events go one at a time, in log order. An event that fails holds
//!   back that user's later events only; other users' events keep going, up to
//!   [`with_concurrency`](WebhookWorker::with_concurrency) requests at once.
//! - **Retries**: any non-2xx answer, or none, is retried after an exponential backoff with
//!   jitter ([`with_backoff`](WebhookWorker::with_backoff),
//!   [`with_jitter`](WebhookWorker::with_jitter)), honouring a `Retry-After` in seconds up
//!   to the backoff's max. After two failures in a row the receiver is taken to be down:
//!   retries then go one at a time, as probes, and the first success sends every waiting
//!   retry at once. An event is given up (logged as an error with its id, counted in
//!   `session_webhook_given_up_total`) only once it has failed and the horizon has passed since its
//!   first attempt ([`with_horizon`](WebhookWorker::with_horizon), 3 days by default).
//! - **At least once**: the cursor (the id just before the oldest event neither delivered
//!   nor given up) is saved in the store, at most 100 ms after it moves. A worker that
//!   starts, or restarts after a crash, resumes after it; with no cursor saved it starts at
//!   the beginning of the log. Events delivered past the cursor before a crash are sent
//!   again, with the same `Webhook-Id`: receivers drop duplicates by it.
//! - **One node at a time**: every node runs a worker; the one that holds the store's lease
//!   ([`with_lease_ttl`](WebhookWorker::with_lease_ttl)) delivers, renewing it every third of
//!   its time to live. It stops delivering, dropping its requests in flight, once four
//!   fifths of the time to live have passed since its last successful renewal began, so
//!   before any other node can take the lease. The others try to take it every third of
//!   its time to live: when the holder dies, one takes over within about 1⅓ times the
//!   time to live.
//! - **Wake-ups**: the worker reads the log every poll interval, and at once when the
//!   receiver given to [`with_wakeups`](WebhookWorker::with_wakeups) (from
//!   `SessionManager::subscribe`) hears of an event, so an event logged on the node that
//!   delivers goes out within milliseconds.
//! - **Memory**: at most [`with_read_ahead`](WebhookWorker::with_read_ahead) events are
//!   held past the cursor. An event that keeps failing holds the cursor back, so once that
//!   many have been read behind it, reading waits until it is delivered or given up.
//!
//! # Observability
//!
//! Tracing: a `webhook_worker` span (the URL's scheme, host and port, and the node id),
//! `info` for the lease, `warn` for failed attempts (event id, attempt, status or error,
//! next retry), `error` for events given up. Metrics, through the `metrics` facade, each
//! with a `host` label (the URL's host): `session_webhook_attempts_total`,
//! `session_webhook_failures_total`, `session_webhook_given_up_total` (counters), `session_webhook_backlog`
//! (gauge: events read and not yet delivered), `session_webhook_delivery_lag_seconds` (histogram:
//! from the event to its delivery). Without a recorder installed they cost next to nothing.
//!
//! # Security
//!
//! No log line, metric or `Debug` output holds a secret, the URL's path or query, or its
//! credentials; the lease and cursor are named after a hash of the URL.

mod config;
mod deliver;
mod handle;
mod run;
mod schedule;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use session_core::{SessionEvent, SessionStore};
use tokio::sync::{broadcast, watch};

pub use config::ConfigError;
pub use handle::WorkerHandle;

use config::{Backoff, Endpoint, Settings, check};
use deliver::Target;
use run::{Shared, Worker};

use crate::encode::{Encoder, JsonEncoder};
use crate::signature::WebhookSecret;

/// A webhook delivery worker, to configure and then [`spawn`](Self::spawn). See the
/// [module docs](self) for how it delivers.
///
/// # How the defaults were chosen
///
/// - Horizon 3 days: a receiver down over a long weekend still gets everything.
/// - Backoff from 1 s, doubling, at most 5 minutes, less up to 20 % jitter: a blip costs a
///   second; a receiver that comes back after a long outage is found within 5 minutes.
/// - Lease 5 s: fail-over within about 7 s, for one store write every 1.7 s.
/// - Poll every second: events logged on other nodes go out within about a second.
/// - Request timeout 10 s; 4 requests at once; 10,000 events read ahead (a few MB).
#[must_use]
pub struct WebhookWorker {
    store: Arc<dyn SessionStore>,
    endpoint: Endpoint,
    secrets: Arc<[WebhookSecret]>,
    encoder: Arc<dyn Encoder>,
    wakeups: Option<broadcast::Receiver<SessionEvent>>,
    settings: Settings,
}

impl WebhookWorker {
    /// The default retry horizon: 3 days.
    pub const DEFAULT_HORIZON: Duration = Duration::from_secs(3 * 86_400);
    /// The default first retry delay: 1 s.
    pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(1);
    /// The default longest retry delay: 5 minutes.
    pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(300);
    /// The default jitter: delays are shortened by a random fraction of up to 0.2.
    pub const DEFAULT_JITTER: f64 = 0.2;
    /// The default lease time to live: 5 s.
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);
    /// The default poll interval: 1 s.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
    /// The default request timeout: 10 s.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default number of requests in flight at once: 4.
    pub const DEFAULT_CONCURRENCY: usize = 4;
    /// The default number of events held past the cursor: 10,000.
    pub const DEFAULT_READ_AHEAD: usize = 10_000;

    /// Events per read of the log.
    const BATCH: usize = 500;

    /// A worker delivering `store`'s events to `url` (`http` or `https`), signed with every
    /// one of `secrets` (several while one is rotated; see
    /// [`WebhookSecret::parse_list`] for a `WEBHOOK_SECRET` setting).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::MemoryStore;
    /// use session_webhooks::{ConfigError, WebhookWorker, signature::WebhookSecret};
    ///
    /// let store = Arc::new(MemoryStore::new());
    /// let secrets = WebhookSecret::parse_list("s3cret").unwrap();
    /// let worker = WebhookWorker::new(store.clone(), "https://u:pw@example.com/h/T0K3N", secrets.clone());
    /// let debug = format!("{:?}", worker.unwrap());
    /// assert!(debug.contains("https://example.com") && !debug.contains("T0K3N"));
    /// assert!(!debug.contains("s3cret") && !debug.contains("pw"));
    ///
    /// assert!(matches!(
    ///     WebhookWorker::new(store.clone(), "ftp://example.com/", secrets),
    ///     Err(ConfigError::Url(_))
    /// ));
    /// assert!(matches!(
    ///     WebhookWorker::new(store, "https://example.com/", Vec::<WebhookSecret>::new()),
    ///     Err(ConfigError::NoSecret)
    /// ));
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Url`] for a URL that does not parse, is not `http(s)` or has no host;
    /// [`ConfigError::NoSecret`] for no secret.
    pub fn new(
        store: Arc<dyn SessionStore>,
        url: impl AsRef<str>,
        secrets: impl IntoIterator<Item = WebhookSecret>,
    ) -> Result<Self, ConfigError> {
        let secrets: Arc<[WebhookSecret]> = secrets.into_iter().collect();
        if secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        Self::with_secrets(store, url.as_ref(), secrets)
    }

    fn with_secrets(
        store: Arc<dyn SessionStore>,
        url: &str,
        secrets: Arc<[WebhookSecret]>,
    ) -> Result<Self, ConfigError> {
        let endpoint = Endpoint::parse(url)?;
        let settings = Settings {
            horizon: Self::DEFAULT_HORIZON,
            backoff: Backoff {
                base: Self::DEFAULT_BACKOFF_BASE,
                max: Self::DEFAULT_BACKOFF_MAX,
                jitter: Self::DEFAULT_JITTER,
            },
            lease_ttl: Self::DEFAULT_LEASE_TTL,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            concurrency: Self::DEFAULT_CONCURRENCY,
            read_ahead: Self::DEFAULT_READ_AHEAD,
            batch: Self::BATCH,
            node_id: config::random_node_id(),
            name: endpoint.name.clone(),
        };
        Ok(Self {
            store,
            endpoint,
            secrets,
            encoder: Arc::new(JsonEncoder),
            wakeups: None,
            settings,
        })
    }

    /// A worker whose requests carry no `Session-Signature`: for an [`Encoder`] whose
    /// bodies are signed themselves, such as the Security Event Tokens of a CAEP
    /// transmitter. Everything else (order, retries, the cursor, the lease) is as for
    /// [`new`](Self::new); give it an encoder with [`with_encoder`](Self::with_encoder) and,
    /// beside a signed worker on the same store, a [name](Self::with_name) of its own.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::MemoryStore;
    /// use session_webhooks::WebhookWorker;
    ///
    /// let worker = WebhookWorker::unsigned(Arc::new(MemoryStore::new()), "https://rp.example/caep")
    ///     .unwrap()
    ///     .with_name("caep")
    ///     .unwrap();
    /// assert_eq!(worker.name(), "caep");
    /// assert!(format!("{worker:?}").contains("secrets: 0"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Url`] for a URL that does not parse, is not `http(s)` or has no host.
    pub fn unsigned(
        store: Arc<dyn SessionStore>,
        url: impl AsRef<str>,
    ) -> Result<Self, ConfigError> {
        Self::with_secrets(store, url.as_ref(), Arc::from(Vec::new()))
    }

    /// How long an event is retried after its first attempt before it is given up
    /// (default [`DEFAULT_HORIZON`](Self::DEFAULT_HORIZON), 3 days).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for zero.
    pub fn with_horizon(mut self, horizon: Duration) -> Result<Self, ConfigError> {
        check(!horizon.is_zero(), "with_horizon", "more than zero")?;
        self.settings.horizon = horizon;
        Ok(self)
    }

    /// The retry delays: `base` before the first retry, doubling, at most `max` (defaults
    /// 1 s and 5 minutes).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a zero `base` or a `max` below `base`.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Result<Self, ConfigError> {
        check(!base.is_zero(), "with_backoff", "a base above zero")?;
        check(max >= base, "with_backoff", "a max at least the base")?;
        self.settings.backoff.base = base;
        self.settings.backoff.max = max;
        Ok(self)
    }

    /// How much of each retry delay may be cut at random, from 0 (none) to 1 (anything
    /// down to zero), so that nodes and events do not retry in step (default 0.2).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] outside `0.0..=1.0`.
    pub fn with_jitter(mut self, jitter: f64) -> Result<Self, ConfigError> {
        check(
            (0.0..=1.0).contains(&jitter),
            "with_jitter",
            "between 0 and 1",
        )?;
        self.settings.backoff.jitter = jitter;
        Ok(self)
    }

    /// The lease's time to live (default 5 s): a node that dies is replaced within about
    /// 1⅓ times this; the holder writes the lease every third of it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] below 300 ms (too short for a store round trip) or above
    /// 10 minutes.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Result<Self, ConfigError> {
        check(
            (Duration::from_millis(300)..=Duration::from_secs(600)).contains(&ttl),
            "with_lease_ttl",
            "between 300 ms and 10 minutes",
        )?;
        self.settings.lease_ttl = ttl;
        Ok(self)
    }

    /// How often the log is read when nothing wakes the worker (default 1 s).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] below 1 ms.
    pub fn with_poll_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        check(
            interval >= Duration::from_millis(1),
            "with_poll_interval",
            "at least 1 ms",
        )?;
        self.settings.poll_interval = interval;
        Ok(self)
    }

    /// How long one request may take, connecting and reading the answer included
    /// (default 10 s); past it the attempt has failed.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for zero.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        check(!timeout.is_zero(), "with_request_timeout", "more than zero")?;
        self.settings.request_timeout = timeout;
        Ok(self)
    }

    /// How many requests may be in flight at once, each for a different user (default 4).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for 0.
    pub fn with_concurrency(mut self, requests: usize) -> Result<Self, ConfigError> {
        check(requests > 0, "with_concurrency", "at least 1")?;
        self.settings.concurrency = requests;
        Ok(self)
    }

    /// How many events the worker holds past its cursor (default 10,000).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for 0.
    pub fn with_read_ahead(mut self, events: usize) -> Result<Self, ConfigError> {
        check(events > 0, "with_read_ahead", "at least 1")?;
        self.settings.read_ahead = events;
        Ok(self)
    }

    /// The name this node holds the lease under, shown in logs (default: the process id
    /// and a random number). Give each node its own.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for an empty id, one over 128 bytes, or one with control
    /// characters.
    pub fn with_node_id(mut self, node_id: impl Into<String>) -> Result<Self, ConfigError> {
        let node_id = node_id.into();
        check(
            !node_id.is_empty() && node_id.len() <= 128 && !node_id.chars().any(char::is_control),
            "with_node_id",
            "1 to 128 bytes, no control characters",
        )?;
        self.settings.node_id = node_id;
        Ok(self)
    }

    /// The name of the lease and of the saved cursor (default `webhook:` and a hash of the
    /// URL, so that each URL has its own). Set it to keep the cursor when the URL changes
    /// (a new credential in it), or to run two workers to one URL independently.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for an empty name or one over 128 bytes.
    pub fn with_name(mut self, name: impl Into<String>) -> Result<Self, ConfigError> {
        let name = name.into();
        check(
            !name.is_empty() && name.len() <= 128,
            "with_name",
            "1 to 128 bytes",
        )?;
        self.settings.name = name;
        Ok(self)
    }

    /// What to send for each event (default [`JsonEncoder`]).
    pub fn with_encoder(mut self, encoder: impl Encoder) -> Self {
        self.encoder = Arc::new(encoder);
        self
    }

    /// Wakes the worker when this node logs an event (pass `SessionManager::subscribe()`),
    /// so it need not wait for the next poll. Default: none, polling only.
    pub fn with_wakeups(mut self, events: broadcast::Receiver<SessionEvent>) -> Self {
        self.wakeups = Some(events);
        self
    }

    /// The lease and cursor name ([`with_name`](Self::with_name)).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The node id ([`with_node_id`](Self::with_node_id)).
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.settings.node_id
    }

    /// Starts the worker on the current Tokio runtime. It waits for the lease, then
    /// delivers until the handle is shut down or dropped.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoRuntime`] outside a Tokio runtime; [`ConfigError::Client`] when
    /// the HTTP client cannot be built.
    pub fn spawn(self) -> Result<WorkerHandle, ConfigError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("session-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ConfigError::Client(err.without_url().to_string()))?;
        describe_metrics();
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared::default());
        let node_id: Arc<str> = self.settings.node_id.as_str().into();
        let worker = Worker {
            store: self.store,
            target: Target {
                client,
                url: self.endpoint.url.clone(),
                secrets: self.secrets,
                timeout: self.settings.request_timeout,
            },
            endpoint: self.endpoint,
            encoder: self.encoder,
            wakeups: self.wakeups,
            settings: self.settings,
            stop: stop_rx,
            shared: shared.clone(),
        };
        let task = runtime.spawn(worker.run());
        Ok(WorkerHandle {
            stop,
            task: Some(task),
            shared,
            node_id,
        })
    }
}

fn describe_metrics() {
    metrics::describe_counter!(
        "session_webhook_attempts_total",
        "Webhook delivery attempts (requests sent)."
    );
    metrics::describe_counter!(
        "session_webhook_failures_total",
        "Webhook attempts that failed: a non-2xx answer, or none."
    );
    metrics::describe_counter!(
        "session_webhook_given_up_total",
        "Webhook events given up after the retry horizon."
    );
    metrics::describe_gauge!(
        "session_webhook_backlog",
        "Webhook events read from the log and not yet delivered."
    );
    metrics::describe_histogram!(
        "session_webhook_delivery_lag_seconds",
        metrics::Unit::Seconds,
        "From an event to its delivery."
    );
}

impl fmt::Debug for WebhookWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookWorker")
            .field("endpoint", &self.endpoint)
            .field("secrets", &self.secrets.len())
            .field("encoder", &self.encoder)
            .field("wakeups", &self.wakeups.is_some())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::MemoryStore;

    fn worker() -> WebhookWorker {
        let secrets = WebhookSecret::parse_list("s3cret").unwrap();
        WebhookWorker::new(
            Arc::new(MemoryStore::new()),
            "http://127.0.0.1:9/h",
            secrets,
        )
        .unwrap()
    }

    #[test]
    fn bad_settings_are_errors() {
        let ms = Duration::from_millis;
        assert!(worker().with_horizon(Duration::ZERO).is_err());
        assert!(worker().with_backoff(Duration::ZERO, ms(1)).is_err());
        assert!(worker().with_backoff(ms(2), ms(1)).is_err());
        assert!(worker().with_jitter(-0.1).is_err());
        assert!(worker().with_jitter(1.1).is_err());
        assert!(worker().with_jitter(f64::NAN).is_err());
        assert!(worker().with_lease_ttl(ms(299)).is_err());
        assert!(worker().with_lease_ttl(Duration::from_secs(601)).is_err());
        assert!(worker().with_poll_interval(Duration::ZERO).is_err());
        assert!(worker().with_request_timeout(Duration::ZERO).is_err());
        assert!(worker().with_concurrency(0).is_err());
        assert!(worker().with_read_ahead(0).is_err());
        assert!(worker().with_node_id("").is_err());
        assert!(worker().with_node_id("a\nb").is_err());
        assert!(worker().with_name("").is_err());
        let err = worker().with_lease_ttl(ms(1)).err().unwrap();
        assert_eq!(
            err.to_string(),
            "with_lease_ttl: between 300 ms and 10 minutes"
        );
        assert!(
            worker()
                .with_backoff(ms(1), ms(1))
                .and_then(|w| w.with_jitter(1.0))
                .and_then(|w| w.with_lease_ttl(ms(300)))
                .is_ok()
        );
    }

    #[test]
    fn spawn_outside_a_runtime_is_an_error() {
        assert_eq!(worker().spawn().err(), Some(ConfigError::NoRuntime));
    }

    #[test]
    fn names() {
        let w = worker().with_node_id("node-a").unwrap();
        assert_eq!(w.node_id(), "node-a");
        assert!(w.name().starts_with("webhook:"));
        assert_eq!(w.with_name("mine").unwrap().name(), "mine");
    }
}
