//! `GET /metrics` on both example apps: 404 without the admin token; with it, Prometheus
//! text holding every series the library and the webhook worker report, the ones a run
//! exercised moving between two scrapes. The push lag is checked on two nodes sharing a
//! Redis (`REDIS_URL`; unset, that test prints that it is skipped and passes).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use session_conformance::{App, Framework, Target};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const ADMIN: &str = "metrics-test-admin-token-of-32-bytes-or-more";
const KEY: &str = "bWV0cmljcy10ZXN0LWtleS0zMi1ieXRlcy1sb25nLWVub3VnaA";

/// The webhook worker's series (label `host`) that a run whose deliveries all succeed
/// reports; `session_webhook_failures_total` and `session_webhook_given_up_total` appear
/// with the first failure.
const WEBHOOK_SERIES: &[&str] = &[
    "session_webhook_attempts_total",
    "session_webhook_backlog",
    "session_webhook_delivery_lag_seconds",
];

/// One scrape: each sample by `name{labels}`, the labels sorted.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let key = match series.split_once('{') {
                Some((name, labels)) => {
                    let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                    labels.sort_unstable();
                    format!("{name}{{{}}}", labels.join(","))
                }
                None => series.to_owned(),
            };
            samples.insert(key, value.parse().expect("a number"));
        }
        Self(samples)
    }

    /// The sample `key` (`name` or `name{k="v",…}`, labels sorted); 0 when absent.
    fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or_default()
    }

    /// Whether any sample belongs to series `name` (a histogram's `_bucket`, `_sum`,
    /// `_count` included).
    fn has(&self, name: &str) -> bool {
        self.0.keys().any(|k| {
            k.strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['{', '_']))
        })
    }
}

async fn scrape(app: &App) -> Scrape {
    let mut b = app.browser(UA);
    let request = b.bare_request(Method::GET, "/metrics").bearer_auth(ADMIN);
    let reply = b.send(request).await;
    reply.assert_status(200);
    assert!(
        reply.header_all("content-type")[0].starts_with("text/plain"),
        "{:?}",
        reply.headers
    );
    Scrape::parse(&reply.text())
}

/// A receiver that accepts every webhook.
async fn receiver() -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

async fn scrape_moves(framework: Framework) {
    let hook = receiver().await;
    let app = App::start(
        Target::Binary(framework),
        &[
            ("ADMIN_TOKEN", ADMIN),
            ("SESSION_CACHE_SECS", "1"),
            ("WEBHOOK_URL", &hook),
            ("WEBHOOK_SECRET", "metrics-webhook-secret"),
        ],
    )
    .await;

    // Without the admin token, or with another: 404, as every admin route.
    let mut b = app.browser(UA);
    b.send(b.bare_request(Method::GET, "/metrics"))
        .await
        .assert_status(404);
    let wrong = b
        .bare_request(Method::GET, "/metrics")
        .bearer_auth("not-the-admin-token-but-32-bytes-long!");
    b.send(wrong).await.assert_status(404);

    // Something to start from: a login, so the webhook worker has an event.
    let mut alice = app.browser(UA);
    alice
        .login("alice", "alice-password")
        .await
        .assert_status(303);
    let before = scrape(&app).await;

    alice.get("/me").await.assert_status(200); // a hit
    tokio::time::sleep(Duration::from_millis(1100)).await;
    alice.get("/me").await.assert_status(200); // stale: a miss and a load
    let token = alice.token().expect("a session").to_owned();
    let mut forged = app.browser(UA);
    forged.set_token(Some("not-a-token"));
    forged.get("/me").await.assert_status(401);
    app.browser(UA).get("/me").await.assert_status(401);
    alice.post("/logout").await.assert_status(303);
    let mut revoked = app.browser(UA);
    revoked.set_token(Some(&token));
    revoked.get("/me").await.assert_status(401);
    app.browser(UA)
        .login("bob", "bob-password")
        .await
        .assert_status(303);
    let mut admin = app.browser(UA);
    let request = admin
        .bare_request(Method::POST, "/admin/users/bob/revoke-all")
        .bearer_auth(ADMIN)
        .json(&json!({}));
    admin.send(request).await.assert_status(200);

    // The webhook worker delivers the new events (it wakes on each).
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let now = scrape(&app).await;
        let host = r#"{host="127.0.0.1"}"#;
        let attempts = |s: &Scrape| s.get(&format!("session_webhook_attempts_total{host}"));
        if attempts(&now) >= attempts(&before) + 4.0 || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    for name in session_core::metrics::ALL.iter().chain(WEBHOOK_SERIES) {
        // One store, no push channel: no lag to measure (see the Redis test).
        if *name == session_core::metrics::PUSH_LAG {
            continue;
        }
        assert!(after.has(name), "{name} missing from:\n{:#?}", after.0);
    }
    for key in [
        r#"session_requests_total{outcome="admitted"}"#,
        r#"session_requests_total{outcome="session_invalid"}"#,
        r#"session_requests_total{outcome="session_missing"}"#,
        r#"session_requests_total{outcome="session_revoked"}"#,
        "session_cache_hits_total",
        "session_cache_misses_total",
        r#"session_store_calls_total{op="create"}"#,
        r#"session_store_calls_total{op="load"}"#,
        r#"session_store_calls_total{op="revoke"}"#,
        r#"session_store_calls_total{op="revoke_many"}"#,
        r#"session_store_seconds_count{op="load"}"#,
        r#"session_revocations_total{actor="user",reason="signed_out"}"#,
        r#"session_revocations_total{actor="admin",reason="admin_revoked"}"#,
        r#"session_webhook_attempts_total{host="127.0.0.1"}"#,
        r#"session_webhook_delivery_lag_seconds_count{host="127.0.0.1"}"#,
    ] {
        assert!(
            after.get(key) > before.get(key),
            "{key} did not move: {} then {}",
            before.get(key),
            after.get(key)
        );
    }
    assert_eq!(
        after.get(r#"session_requests_total{outcome="unavailable"}"#),
        0.0
    );
    assert_eq!(after.get("session_loads_in_flight"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_metrics_cover_a_run() {
    scrape_moves(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_metrics_cover_a_run() {
    scrape_moves(Framework::Actix).await;
}

/// Two nodes on one Redis: a revocation on one reaches the other by push, which counts
/// it and measures its lag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_lag_is_measured_between_two_nodes() {
    // A database of this test's own, emptied first (the events tests, which use 1..15 too,
    // run in another test process, not at the same time).
    let Some(url) = session_conformance::fresh_redis_db(14).await else {
        return;
    };
    let envs = [
        ("SESSION_STORE", url.as_str()),
        ("SESSION_KEYS", KEY),
        ("ADMIN_TOKEN", ADMIN),
        ("SESSION_CACHE_SECS", "60"),
    ];
    let a = App::start(Target::Binary(Framework::Axum), &envs).await;
    let b = App::start(Target::Binary(Framework::Actix), &envs).await;
    let before = scrape(&b).await;

    let mut alice = a.browser(UA);
    alice
        .login("alice", "alice-password")
        .await
        .assert_status(303);
    let token = alice.token().expect("a session").to_owned();
    let mut on_b = b.browser(UA);
    on_b.set_token(Some(&token));
    on_b.get("/me").await.assert_status(200);
    alice.post("/logout").await.assert_status(303);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        on_b.set_token(Some(&token));
        if on_b.get("/me").await.status.as_u16() == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "b never heard of the revocation");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // More revocations on a, for a histogram worth reading: each reaches b by push.
    const MORE: usize = 49;
    for _ in 0..MORE {
        let mut user = a.browser(UA);
        user.login("bob", "bob-password").await.assert_status(303);
        user.post("/logout").await.assert_status(303);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let after = scrape(&b).await;
        let heard = after.get("session_push_lag_seconds_count")
            - before.get("session_push_lag_seconds_count");
        if heard >= (MORE + 1) as f64 || Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let histogram: Vec<String> = after
        .0
        .iter()
        .filter(|(k, _)| k.starts_with("session_push_lag_seconds"))
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    eprintln!(
        "push lag histogram on b (cumulative):\n{}",
        histogram.join("\n")
    );
    for key in [
        "session_push_received_total",
        "session_push_lag_seconds_count",
        r#"session_requests_total{outcome="session_revoked"}"#,
    ] {
        assert!(
            after.get(key) > before.get(key),
            "{key} did not move: {} then {}",
            before.get(key),
            after.get(key)
        );
    }
    let lag =
        after.get("session_push_lag_seconds_sum") / after.get("session_push_lag_seconds_count");
    eprintln!("push lag on b: {lag:.4} s on average");
    assert!((0.0..5.0).contains(&lag), "{lag}");
    assert_eq!(after.get("session_push_ignored_total"), 0.0);
}
