//! Risk binding (`SESSION_BINDING`), black-box, against both example apps: a cookie request
//! from another browser family, or from another client network, than at sign-in is served
//! and reported (`report`) or refused and revoked for good (`revoke`); agents are not
//! bound; `off` compares nothing.
//!
//! Two networks on one machine: the app listens on `::` (dual stack), so a request to
//! `127.0.0.1` comes from the IPv4 network `127.0.0.0/24` and one to `[::1]` from the IPv6
//! network `::/64`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use session_conformance::{App, Browser, Framework, Target};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
const FIREFOX_NEXT: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:141.0) Gecko/20100101 Firefox/141.0";
const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36";
const ADMIN: &str = "binding-test-admin-token-0123456789abcdef";

async fn app(framework: Framework, mode: &str) -> (App, String, String) {
    let app = App::start(
        Target::Binary(framework),
        &[
            ("SESSION_BINDING", mode),
            ("ADMIN_TOKEN", ADMIN),
            ("BIND", "::"),
        ],
    )
    .await;
    let port = app
        .base_url()
        .rsplit(':')
        .next()
        .expect("a port")
        .to_owned();
    (
        app,
        format!("http://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
    )
}

/// A browser at `base` with `token` as its cookie.
fn at(base: &str, ua: &str, token: &str) -> Browser {
    let mut b = Browser::new(base, ua);
    b.set_token(Some(token));
    b
}

async fn audit(base: &str) -> Vec<Value> {
    let mut b = Browser::new(base, FIREFOX);
    let request = b
        .bare_request(Method::GET, "/admin/audit?user_id=alice")
        .bearer_auth(ADMIN);
    b.send(request).await.json().as_array().unwrap().clone()
}

async fn count(base: &str, pick: impl Fn(&Value) -> bool) -> usize {
    // Logged off the request path: give it a moment.
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        let n = audit(base).await.iter().filter(|e| pick(e)).count();
        if n > 0 || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn login(base: &str) -> String {
    let mut b = Browser::new(base, FIREFOX);
    b.login("alice", "alice-password").await.assert_status(303);
    b.token().expect("a cookie").to_owned()
}

async fn report_mode(framework: Framework) {
    let (_app, v4, v6) = app(framework, "report").await;
    let token = login(&v4).await;
    at(&v4, FIREFOX_NEXT, &token)
        .get("/me")
        .await
        .assert_status(200);
    assert_eq!(
        count(&v4, |e| e["type"] == "session.suspicious").await,
        0,
        "a new version of the same browser is not suspicious"
    );
    // Another browser family: served, reported once.
    for _ in 0..2 {
        at(&v4, CHROME, &token).get("/me").await.assert_status(200);
    }
    let suspicious = audit(&v4).await;
    let suspicious: Vec<&Value> = suspicious
        .iter()
        .filter(|e| e["type"] == "session.suspicious")
        .collect();
    assert_eq!(suspicious.len(), 1, "{suspicious:?}");
    assert_eq!(suspicious[0]["actor"], "system");
    // Another network: served, reported once more.
    at(&v6, CHROME, &token).get("/me").await.assert_status(200);
    let n = count(&v4, |e| e["type"] == "session.suspicious").await;
    assert!(n >= 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        audit(&v4)
            .await
            .iter()
            .filter(|e| e["type"] == "session.suspicious")
            .count(),
        2
    );
}

async fn revoke_mode(framework: Framework) {
    let (_app, v4, v6) = app(framework, "revoke").await;
    // Another browser family: refused, and revoked for good.
    let token = login(&v4).await;
    at(&v4, FIREFOX, &token).get("/me").await.assert_status(200);
    let reply = at(&v4, CHROME, &token).get("/me").await;
    reply.assert_status(401);
    assert_eq!(reply.json(), json!({"error": "session_revoked"}));
    at(&v4, FIREFOX, &token).get("/me").await.assert_status(401);
    assert_eq!(
        count(&v4, |e| e["type"] == "session.revoked"
            && e["reason"] == "risk_detected"
            && e["actor"] == "system")
        .await,
        1
    );
    // Another network: the same.
    let token = login(&v4).await;
    let reply = at(&v6, FIREFOX, &token).get("/me").await;
    assert_eq!(reply.json(), json!({"error": "session_revoked"}));
    at(&v4, FIREFOX, &token).get("/me").await.assert_status(401);
    // Agents are not bound.
    let mut owner = Browser::new(&v4, FIREFOX);
    owner
        .login("alice", "alice-password")
        .await
        .assert_status(303);
    let granted = owner.post_json("/agents", &json!({"name": "Bot"})).await;
    let agent = granted.json()["token"].as_str().unwrap().to_owned();
    let mut bot = Browser::new(&v6, CHROME);
    let request = bot
        .bare_request(Method::GET, "/agent/me")
        .bearer_auth(&agent);
    bot.send(request).await.assert_status(200);
}

async fn off_mode(framework: Framework) {
    let (_app, v4, v6) = app(framework, "off").await;
    let token = login(&v4).await;
    at(&v6, CHROME, &token).get("/me").await.assert_status(200);
    assert_eq!(count(&v4, |e| e["type"] == "session.suspicious").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_report() {
    report_mode(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_report() {
    report_mode(Framework::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_revoke() {
    revoke_mode(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_revoke() {
    revoke_mode(Framework::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_off() {
    off_mode(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_off() {
    off_mode(Framework::Actix).await;
}
