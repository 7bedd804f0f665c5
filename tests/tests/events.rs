//! Events, audit, admin and webhooks, black-box, against both example apps on every store:
//! memory, SQLite (a temporary file), Redis (`REDIS_URL`, a database of its own per
//! scenario) and PostgreSQL (`DATABASE_URL`, a database of its own per scenario). Without
//! those variables the Redis and PostgreSQL runs print a skip line and pass.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};
use session_conformance::{App, Browser, Framework, Reply, Target};
use session_webhooks::signature::{WebhookSecret, verify_signature};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
const ADMIN: &str = "events-test-admin-token-0123456789abcdef";
const KEY: &str = "ZXZlbnRzLXRlc3QtZXZlbnRzLXRlc3QtZXZlbnRzLXRlc3Q";

/// Where a scenario's app keeps its sessions: a fresh, private store each time.
#[derive(Debug)]
struct Store {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Memory,
    Sqlite,
    Redis,
    Postgres,
}

static NEXT_REDIS_DB: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

impl Store {
    async fn fresh(kind: Kind) -> Option<Self> {
        match kind {
            Kind::Memory => Some(Self {
                url: "memory".into(),
                _dir: None,
            }),
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("a temp dir");
                let url = format!("sqlite://{}", dir.path().join("s.db").display());
                Some(Self {
                    url,
                    _dir: Some(dir),
                })
            }
            Kind::Redis => {
                // A database of its own (1..15), emptied first: scenarios run in parallel.
                let db = 1 + NEXT_REDIS_DB.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 15;
                let url = session_conformance::fresh_redis_db(db).await?;
                Some(Self { url, _dir: None })
            }
            Kind::Postgres => {
                let Ok(base) = std::env::var("DATABASE_URL") else {
                    eprintln!("skipping: DATABASE_URL is not set");
                    return None;
                };
                let name = format!("events_{}", uuid::Uuid::new_v4().simple());
                let pool = sqlx::PgPool::connect(&base)
                    .await
                    .expect("DATABASE_URL is set but PostgreSQL does not answer");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&pool)
                    .await
                    .expect("CREATE DATABASE");
                let (server, _) = base.rsplit_once('/').expect("a database URL");
                Some(Self {
                    url: format!("{server}/{name}"),
                    _dir: None,
                })
            }
        }
    }
}

async fn app(framework: Framework, store: &Store, extra: &[(&str, &str)]) -> App {
    let mut envs = vec![
        ("SESSION_STORE", store.url.as_str()),
        ("SESSION_KEYS", KEY),
        ("ADMIN_TOKEN", ADMIN),
    ];
    envs.extend_from_slice(extra);
    App::start(Target::Binary(framework), &envs).await
}

async fn logged_in(app: &App, user: &str) -> Browser {
    let mut browser = app.browser(UA);
    browser
        .login(user, &format!("{user}-password"))
        .await
        .assert_status(303);
    browser
}

async fn admin(app: &App, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut b = app.browser(UA);
    let mut request = b.bare_request(method, path).bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    b.send(request).await
}

fn session_id(reply: &Reply) -> String {
    reply.json()["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned()
}

const FIELDS: [&str; 9] = [
    "actor",
    "agent_id",
    "id",
    "occurred_at",
    "reason",
    "session_id",
    "session_kind",
    "type",
    "user_id",
];

#[track_caller]
fn assert_fields(event: &Value) {
    let mut keys: Vec<&str> = event
        .as_object()
        .expect("an event object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, FIELDS, "{event}");
}

/// Every event of the log, paging with `after` and a small limit.
async fn all_events(app: &App) -> Vec<Value> {
    let mut after: Option<String> = None;
    let mut all = Vec::new();
    loop {
        let path = match &after {
            Some(a) => format!("/admin/events?limit=3&after={a}"),
            None => "/admin/events?limit=3".to_owned(),
        };
        let page = admin(app, Method::GET, &path, None).await;
        page.assert_status(200);
        let body = page.json();
        let data = body["data"].as_array().expect("data").clone();
        assert!(data.len() <= 3);
        match (&after, data.last()) {
            (_, Some(last)) => assert_eq!(body["next_cursor"], last["id"]),
            (Some(a), None) => assert_eq!(body["next_cursor"], json!(a)),
            (None, None) => assert_eq!(body["next_cursor"], Value::Null),
        }
        if data.is_empty() {
            return all;
        }
        after = Some(body["next_cursor"].as_str().expect("a cursor").to_owned());
        all.extend(data);
    }
}

/// The log and the audit: every change has its event, in order, with the contract's
/// fields and actors; the audit is one user's, newest first; the admin routes record actor
/// `admin`.
async fn log_audit_and_admin(framework: Framework, kind: Kind) {
    let Some(store) = Store::fresh(kind).await else {
        return;
    };
    let app = app(framework, &store, &[]).await;
    let mut alice = logged_in(&app, "alice").await;
    let mut phone = logged_in(&app, "alice").await;
    let phone_id = session_id(&phone.get("/me").await);
    let alice_id = session_id(&alice.get("/me").await);
    let granted = alice.post_json("/agents", &json!({"name": "Bot"})).await;
    granted.assert_status(201);
    let agent_id = granted.json()["agent_id"].as_str().unwrap().to_owned();
    alice
        .delete(&format!("/agents/{agent_id}"))
        .await
        .assert_status(204);
    phone.post("/logout").await.assert_status(303);
    let bob = logged_in(&app, "bob").await;
    drop(bob);

    let log = all_events(&app).await;
    for e in &log {
        assert_fields(e);
    }
    let ids: Vec<&str> = log.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "ids sort in log order");
    let kinds: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["session_kind"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("session.created", "user", "user"),
            ("session.created", "user", "user"),
            ("session.created", "agent", "user"),
            ("session.revoked", "agent", "user"),
            ("session.revoked", "user", "user"),
            ("session.created", "user", "user"),
        ]
    );
    assert_eq!(log[3]["agent_id"], json!(agent_id));
    assert_eq!(log[3]["reason"], "agent_disconnected");
    assert_eq!(log[4]["session_id"], json!(phone_id));
    assert_eq!(log[4]["reason"], "signed_out");
    assert_eq!(log[0]["reason"], Value::Null);

    // Type filter.
    let revoked = admin(
        &app,
        Method::GET,
        "/admin/events?type=session.revoked",
        None,
    )
    .await;
    let revoked = revoked.json()["data"].as_array().unwrap().clone();
    assert_eq!(revoked.len(), 2);
    // The audit: alice's, newest first.
    let audit = admin(&app, Method::GET, "/admin/audit?user_id=alice", None).await;
    audit.assert_status(200);
    let audit = audit.json().as_array().unwrap().clone();
    assert_eq!(audit.len(), 5);
    assert!(audit.iter().all(|e| e["user_id"] == "alice"));
    assert_eq!(audit[0]["id"], log[4]["id"]);

    // Admin: a user's sessions, revoke one, revoke all with a reason: actor admin.
    let listed = admin(&app, Method::GET, "/admin/users/alice/sessions", None).await;
    listed.assert_status(200);
    let listed = listed.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], json!(alice_id));
    assert!(listed[0].get("current").is_none());
    admin(
        &app,
        Method::DELETE,
        &format!("/admin/sessions/{alice_id}"),
        None,
    )
    .await
    .assert_status(204);
    assert_eq!(
        alice.get("/me").await.json(),
        json!({"error": "session_revoked"})
    );
    admin(
        &app,
        Method::DELETE,
        &format!("/admin/sessions/{alice_id}"),
        None,
    )
    .await
    .assert_status(404);
    let _bob2 = logged_in(&app, "bob").await;
    let all = admin(
        &app,
        Method::POST,
        "/admin/users/bob/revoke-all",
        Some(json!({"reason": "offboarded"})),
    )
    .await;
    assert_eq!(all.json(), json!({"revoked": 2}));
    let audit = admin(&app, Method::GET, "/admin/audit?user_id=bob&limit=2", None).await;
    let audit = audit.json().as_array().unwrap().clone();
    assert_eq!(audit.len(), 2);
    for e in &audit {
        assert_eq!(e["type"], "session.revoked");
        assert_eq!(e["reason"], "offboarded");
        assert_eq!(e["actor"], "admin");
    }
    let alice_audit = admin(
        &app,
        Method::GET,
        "/admin/audit?user_id=alice&limit=1",
        None,
    )
    .await;
    let latest = &alice_audit.json()[0];
    assert_eq!(latest["reason"], "admin_revoked");
    assert_eq!(latest["actor"], "admin");
    // Page back through the audit with `before`.
    let before = audit[1]["id"].as_str().unwrap();
    let older = admin(
        &app,
        Method::GET,
        &format!("/admin/audit?user_id=bob&before={before}"),
        None,
    )
    .await;
    let older = older.json().as_array().unwrap().clone();
    assert_eq!(older.len(), 2, "bob's two logins");
    assert!(older.iter().all(|e| e["type"] == "session.created"));
}

/// Incident response: a dry run counts, the real run revokes (reason `risk_detected`,
/// actor `admin`), across users, by every field.
async fn revoke_matching(framework: Framework, kind: Kind) {
    let Some(store) = Store::fresh(kind).await else {
        return;
    };
    let app = app(framework, &store, &[]).await;
    let mut alice = logged_in(&app, "alice").await;
    let mut bob = logged_in(&app, "bob").await;
    let mut curl = app.browser("curl/8.5.0");
    curl.login("carol", "carol-password")
        .await
        .assert_status(303);
    let matching = |body: Value| admin(&app, Method::POST, "/admin/revoke-matching", Some(body));
    let dry = matching(json!({"user_agent": "Firefox/", "dry_run": true})).await;
    assert_eq!(dry.json(), json!({"matched": 2}));
    let none = matching(json!({"ip": "10.0.0.0/8", "dry_run": true})).await;
    assert_eq!(none.json(), json!({"matched": 0}));
    let local = matching(json!({"ip": "127.0.0.0/8", "kind": "user", "dry_run": true})).await;
    assert_eq!(local.json(), json!({"matched": 3}));
    matching(json!({"dry_run": true})).await.assert_status(400);
    alice.get("/me").await.assert_status(200);
    let done = matching(json!({"user_agent": "Firefox/"})).await;
    assert_eq!(done.json(), json!({"revoked": 2}));
    assert_eq!(alice.get("/me").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bob.get("/me").await.status, StatusCode::UNAUTHORIZED);
    curl.get("/me").await.assert_status(200);
    let revoked = admin(
        &app,
        Method::GET,
        "/admin/events?type=session.revoked",
        None,
    )
    .await;
    for e in revoked.json()["data"].as_array().unwrap() {
        assert_eq!(e["reason"], "risk_detected");
        assert_eq!(e["actor"], "admin");
    }
}

/// An expired session seen by the middleware logs `session.expired` once, actor `system`.
async fn expiry_is_logged_once(framework: Framework, kind: Kind) {
    let Some(store) = Store::fresh(kind).await else {
        return;
    };
    let app = app(framework, &store, &[("SESSION_TTL_SECS", "1")]).await;
    let mut alice = logged_in(&app, "alice").await;
    let token = alice.token().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..3 {
        alice.set_token(Some(&token));
        assert_eq!(
            alice.get("/me").await.json(),
            json!({"error": "session_expired"})
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = admin(
            &app,
            Method::GET,
            "/admin/events?type=session.expired",
            None,
        )
        .await;
        let expired = log.json()["data"].as_array().unwrap().clone();
        if !expired.is_empty() {
            assert_eq!(expired.len(), 1, "{expired:?}");
            assert_eq!(expired[0]["actor"], "system");
            assert_eq!(expired[0]["reason"], Value::Null);
            break;
        }
        assert!(Instant::now() < deadline, "no session.expired event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a webhook receiver saw.
#[derive(Clone, Debug)]
struct Delivery {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Delivery>>>);

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    inbox.0.lock().unwrap().push(Delivery { headers, body });
    StatusCode::NO_CONTENT
}

async fn receiver() -> (String, Inbox) {
    let inbox = Inbox::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), inbox)
}

/// Webhooks: every event POSTed, signed per secret (two while rotating), `Webhook-Id` the
/// event's id, the body the event as the events API shows it.
async fn webhooks_are_signed_and_complete(framework: Framework, kind: Kind) {
    let Some(store) = Store::fresh(kind).await else {
        return;
    };
    let (url, inbox) = receiver().await;
    let secrets = "first-secret,second-secret";
    let app = app(
        framework,
        &store,
        &[("WEBHOOK_URL", &url), ("WEBHOOK_SECRET", secrets)],
    )
    .await;
    let mut alice = logged_in(&app, "alice").await;
    alice.post("/logout").await.assert_status(303);
    let log = all_events(&app).await;
    assert_eq!(log.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while inbox.0.lock().unwrap().len() < log.len() {
        assert!(Instant::now() < deadline, "webhooks not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = inbox.0.lock().unwrap().clone();
    let keys = WebhookSecret::parse_list(secrets).unwrap();
    let now = session_webhooks::signature::unix_now();
    for (delivery, event) in got.iter().zip(&log) {
        let body: Value = serde_json::from_slice(&delivery.body).unwrap();
        assert_eq!(&body, event);
        assert_eq!(
            delivery.headers["webhook-id"].to_str().unwrap(),
            event["id"].as_str().unwrap()
        );
        assert_eq!(delivery.headers["content-type"], "application/json");
        let signature = delivery.headers["session-signature"].to_str().unwrap();
        assert_eq!(signature.matches("v1=").count(), 2, "{signature}");
        for key in &keys {
            verify_signature(
                std::slice::from_ref(key),
                signature,
                &delivery.body,
                now,
                Duration::from_secs(300),
            )
            .expect("each secret's signature verifies");
        }
        let wrong = WebhookSecret::new("not-the-secret").unwrap();
        assert!(
            verify_signature(
                &[wrong],
                signature,
                &delivery.body,
                now,
                Duration::from_secs(300)
            )
            .is_err()
        );
    }
}

/// Without `ADMIN_TOKEN` the admin routes are 404.
async fn admin_needs_its_token(framework: Framework) {
    let app = App::start(Target::Binary(framework), &[]).await;
    for path in [
        "/admin/events",
        "/admin/audit?user_id=alice",
        "/admin/users/alice/sessions",
    ] {
        let mut b = app.browser(UA);
        let request = b
            .bare_request(Method::GET, path)
            .bearer_auth("anything-anything-anything-anything");
        b.send(request).await.assert_status(404);
    }
}

macro_rules! on_every_store {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::{Framework, Kind};
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn axum_memory() { super::$scenario(Framework::Axum, Kind::Memory).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn actix_memory() { super::$scenario(Framework::Actix, Kind::Memory).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn axum_sqlite() { super::$scenario(Framework::Axum, Kind::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn actix_sqlite() { super::$scenario(Framework::Actix, Kind::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn axum_redis() { super::$scenario(Framework::Axum, Kind::Redis).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn actix_redis() { super::$scenario(Framework::Actix, Kind::Redis).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn axum_postgres() { super::$scenario(Framework::Axum, Kind::Postgres).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn actix_postgres() { super::$scenario(Framework::Actix, Kind::Postgres).await }
            }
        )*
    };
}

on_every_store!(
    log_audit_and_admin,
    revoke_matching,
    expiry_is_logged_once,
    webhooks_are_signed_and_complete,
);

#[tokio::test]
async fn axum_admin_needs_its_token() {
    admin_needs_its_token(Framework::Axum).await;
}

#[tokio::test]
async fn actix_admin_needs_its_token() {
    admin_needs_its_token(Framework::Actix).await;
}
