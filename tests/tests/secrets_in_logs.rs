//! No secret reaches the logs, even at `RUST_LOG=trace` with every span's fields logged:
//! each example app runs a realistic flow (logins, a failed one, the pages, bad tokens, an
//! agent, a password reset, revocations, the admin API and `/metrics` with the admin
//! token), and nothing it printed, stdout and stderr, holds a token, a cookie value, a
//! password, the admin token, the CSRF token or the deployment's key.

use reqwest::Method;
use serde_json::json;
use session_conformance::{App, Browser, Framework, Target};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const ADMIN: &str = "logs-test-admin-token-of-32-bytes-or-more";
const WRONG_ADMIN: &str = "logs-test-wrong-admin-token-32-bytes-long";
const KEY: &str = "bG9ncy10ZXN0LWtleS0zMi1ieXRlcy1sb25nLWVub3VnaCEh";
const FORGED: &str = "forged-token-value-that-must-not-be-logged";
const WRONG_PASSWORD: &str = "wrong-password-never-logged";
const NEW_PASSWORD: &str = "brand-new-password-never-logged";

async fn admin(app: &App, method: Method, path: &str, token: &str) -> u16 {
    let mut b = app.browser(UA);
    let request = b.bare_request(method, path).bearer_auth(token);
    b.send(request).await.status.as_u16()
}

/// Runs the flow; answers every secret it used.
async fn flow(app: &App) -> Vec<String> {
    let mut secrets = vec![
        ADMIN.to_owned(),
        WRONG_ADMIN.to_owned(),
        KEY.to_owned(),
        FORGED.to_owned(),
        WRONG_PASSWORD.to_owned(),
        NEW_PASSWORD.to_owned(),
        "alice-password".to_owned(),
        "bob-password".to_owned(),
    ];
    let mut failed = app.browser(UA);
    failed.login("alice", WRONG_PASSWORD).await;
    let mut alice = app.browser(UA);
    alice
        .login("alice", "alice-password")
        .await
        .assert_status(303);
    let alice_token = alice.token().expect("a session").to_owned();
    secrets.push(alice_token.clone());
    alice.navigate("/").await.assert_status(200);
    alice.get("/me").await.assert_status(200);
    let page = alice.navigate("/account/sessions").await.text();
    let field = &page[page.find("name=\"csrf\"").expect("a CSRF field")..];
    let csrf = field.split('"').nth(3).expect("its value");
    secrets.push(csrf.to_owned());

    // From a client of its own (a fresh connection), as an app's script would.
    let mut owner = app.browser(UA);
    owner.set_token(Some(&alice_token));
    let granted = owner.post_json("/agents", &json!({"name": "Bot"})).await;
    let agent = granted.json()["token"]
        .as_str()
        .expect("an agent token")
        .to_owned();
    secrets.push(agent.clone());
    let mut bot = Browser::new(app.base_url(), UA);
    let request = bot
        .bare_request(Method::GET, "/agent/me")
        .bearer_auth(&agent);
    bot.send(request).await.assert_status(200);

    // Bad tokens: forged, a user's as a bearer, an agent's as the cookie.
    let mut forged = app.browser(UA);
    forged.set_token(Some(FORGED));
    forged.get("/me").await.assert_status(401);
    let request = bot
        .bare_request(Method::GET, "/agent/me")
        .bearer_auth(&alice_token);
    bot.send(request).await.assert_status(401);
    let mut misplaced = app.browser(UA);
    misplaced.set_token(Some(&agent));
    misplaced.get("/me").await.assert_status(401);

    let mut bob = app.browser(UA);
    bob.login("bob", "bob-password").await.assert_status(303);
    secrets.push(bob.token().expect("a session").to_owned());
    bob.post_json(
        "/password-reset",
        &json!({"username": "bob", "new_password": NEW_PASSWORD}),
    )
    .await
    .assert_status(200);
    bob.get("/me").await.assert_status(401);
    let mut bob_again = app.browser(UA);
    bob_again
        .login("bob", NEW_PASSWORD)
        .await
        .assert_status(303);
    secrets.push(bob_again.token().expect("a session").to_owned());

    assert_eq!(admin(app, Method::GET, "/admin/events", ADMIN).await, 200);
    assert_eq!(
        admin(app, Method::GET, "/admin/events", WRONG_ADMIN).await,
        404
    );
    assert_eq!(admin(app, Method::GET, "/metrics", ADMIN).await, 200);
    assert_eq!(admin(app, Method::GET, "/metrics", WRONG_ADMIN).await, 404);
    assert_eq!(
        admin(app, Method::POST, "/admin/users/bob/revoke-all", ADMIN).await,
        200
    );
    alice.post("/logout").await.assert_status(303);
    let mut revoked = app.browser(UA);
    revoked.set_token(Some(&alice_token));
    revoked.get("/me").await.assert_status(401);
    secrets
}

async fn nothing_secret_logged(framework: Framework) {
    let app = App::start(
        Target::Binary(framework),
        &[
            ("RUST_LOG", "trace"),
            ("ADMIN_TOKEN", ADMIN),
            ("SESSION_KEYS", KEY),
        ],
    )
    .await;
    let secrets = flow(&app).await;
    // The last lines may still be on their way through the pipes.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let output = app.output();
    // The capture is real: verbose lines (what logs at trace level depends on the
    // framework; the spans close at debug) and the gate's and store's spans are there.
    assert!(
        output.contains("TRACE") || output.contains("DEBUG"),
        "no debug- or trace-level line in:\n{output}"
    );
    assert!(
        output.contains("session_check"),
        "no request span in the output"
    );
    assert!(
        output.contains("session_store"),
        "no store span in the output"
    );
    for (i, secret) in secrets.iter().enumerate() {
        if let Some(line) = output.lines().find(|l| l.contains(secret.as_str())) {
            panic!(
                "secret #{i} of the flow is in the log, in:\n{}",
                line.replace(secret.as_str(), "[SECRET]")
            );
        }
    }
    eprintln!(
        "{} log lines at trace level, none holds any of {} secrets",
        output.lines().count(),
        secrets.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_logs_no_secret_at_trace() {
    nothing_secret_logged(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_logs_no_secret_at_trace() {
    nothing_secret_logged(Framework::Actix).await;
}
