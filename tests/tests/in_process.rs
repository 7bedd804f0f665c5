//! Scenarios that need the app inside the test process, for both frameworks: a store that
//! fails or is counted, and one store shared by an axum and an actix app.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use example_support::{Demo, Settings};
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::json;
use session_conformance::{App, Browser, COOKIE_NAME, Framework, Reply};
use session_core::testing::FaultyStore;
use session_core::{MemoryStore, SessionStore};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn settings() -> Settings {
    Settings::from_lookup(0, |name| {
        (name == "SESSION_COOKIE_SECURE").then(|| "false".to_owned())
    })
    .expect("settings")
}

/// Two "nodes" over one counted store with the same keys: `a` issues, `b` starts cold.
struct TwoNodes {
    store: Arc<FaultyStore<MemoryStore>>,
    a: App,
    b: App,
}

fn two_nodes(framework: Framework) -> TwoNodes {
    let settings = settings();
    let store = FaultyStore::new(MemoryStore::new());
    let shared: Arc<dyn SessionStore> = store.clone();
    TwoNodes {
        a: App::serve(framework, Demo::with_store(&settings, shared.clone())),
        b: App::serve(framework, Demo::with_store(&settings, shared)),
        store,
    }
}

async fn logged_in(app: &App, user: &str) -> Browser {
    let mut browser = app.browser(UA);
    let reply = browser.login(user, &format!("{user}-password")).await;
    reply.assert_status(303);
    browser
}

fn on(app: &App, token: &str) -> Browser {
    let mut browser = app.browser(UA);
    browser.set_token(Some(token));
    browser
}

#[track_caller]
fn assert_401(reply: &Reply, code: &str) {
    reply.assert_status(401);
    assert_eq!(reply.json(), json!({ "error": code }));
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
}

/// A store that fails gives 503 with `Retry-After`, clears no cookie, and service resumes
/// by itself when the store is back.
async fn store_failure_is_503_and_keeps_the_cookie(framework: Framework) {
    let nodes = two_nodes(framework);
    let alice = logged_in(&nodes.a, "alice").await;
    let token = alice.token().expect("token").to_owned();
    nodes.store.set_failing(true);
    let mut cold = on(&nodes.b, &token);
    let reply = cold.get("/me").await;
    reply.assert_status(503);
    assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
    assert_eq!(reply.raw_set_cookies(), Vec::<String>::new());
    assert_eq!(
        reply.json(),
        json!({ "error": "session_store_unavailable" })
    );
    assert_eq!(cold.token(), Some(token.as_str()), "the cookie survives");
    // The node that holds the session in its cache still serves it.
    on(&nodes.a, &token).get("/me").await.assert_status(200);
    nodes.store.set_failing(false);
    cold.get("/me").await.assert_status(200);
}

/// Every bad input gets a 4xx and costs no store call.
async fn bad_inputs_get_4xx_without_a_store_lookup(framework: Framework) {
    let nodes = two_nodes(framework);
    let alice = logged_in(&nodes.a, "alice").await;
    let token = alice.token().expect("token").to_owned();
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    let big = "A".repeat(64 * 1024);
    let cookies: Vec<(&str, Vec<u8>)> = vec![
        (
            "non-UTF-8 bytes",
            [b"session=".as_slice(), b"\xff\xfe\x80abc"].concat(),
        ),
        ("non-UTF-8 elsewhere", b"x=\xff\xfe; y=1".to_vec()),
        (
            "a 64 KiB cookie",
            format!("{COOKIE_NAME}={big}").into_bytes(),
        ),
        (
            "two session cookies",
            format!("{COOKIE_NAME}={token}; {COOKIE_NAME}={token}").into_bytes(),
        ),
        (
            "name in another case",
            format!("Session={token}").into_bytes(),
        ),
        (
            "percent-encoded name",
            format!("sess%69on={token}").into_bytes(),
        ),
        (
            "one character short",
            format!("{COOKIE_NAME}={}", &token[1..]).into_bytes(),
        ),
        (
            "one character too long",
            format!("{COOKIE_NAME}={token}A").into_bytes(),
        ),
        (
            "outside base64url",
            format!("{COOKIE_NAME}=+{}", &token[1..]).into_bytes(),
        ),
        (
            "flipped MAC byte",
            format!("{COOKIE_NAME}={flipped}").into_bytes(),
        ),
    ];
    let before = nodes.store.calls.total();
    let browser = nodes.b.browser(UA);
    for (what, cookie) in cookies {
        let request = browser.bare_request(Method::GET, "/me").header(
            "cookie",
            HeaderValue::from_bytes(&cookie).expect("header bytes"),
        );
        let reply = browser.clone().send(request).await;
        assert!(reply.status.is_client_error(), "{what}: {}", reply.status);
    }
    let bearers: [(&str, &[&str]); 4] = [
        ("empty bearer", &["Bearer "]),
        ("two bearer tokens in one header", &["Bearer a b"]),
        ("two bearer headers", &["Bearer a", "Bearer b"]),
        ("bearer with a forged token", &[]),
    ];
    for (what, headers) in bearers {
        let mut request = browser.bare_request(Method::GET, "/agent/me");
        if headers.is_empty() {
            request = request.bearer_auth(&flipped);
        }
        for h in headers {
            request = request.header("authorization", *h);
        }
        let reply = browser.clone().send(request).await;
        assert_401(&reply, "session_invalid");
        assert_eq!(
            reply.header("www-authenticate").as_deref(),
            Some(r#"Bearer error="invalid_token""#),
            "{what}"
        );
        assert_eq!(reply.raw_set_cookies(), Vec::<String>::new(), "{what}");
    }
    // A token both as cookie and as bearer.
    let request = on(&nodes.b, &token)
        .request(Method::GET, "/me")
        .bearer_auth(&token);
    let reply = browser.clone().send(request).await;
    assert_401(&reply, "session_invalid");
    assert_eq!(
        nodes.store.calls.total(),
        before,
        "no store call for any of them"
    );
    // The counter counts: the real token on the cold node costs one load.
    on(&nodes.b, &token).get("/me").await.assert_status(200);
    assert_eq!(nodes.store.calls.load.load(Ordering::SeqCst), 1);
}

/// Agent sessions: granted with a user session, used as bearer, refused once disconnected.
async fn agents_use_bearer_tokens(framework: Framework) {
    let nodes = two_nodes(framework);
    let mut alice = logged_in(&nodes.a, "alice").await;
    let grant = alice
        .post_json("/agents", &json!({ "name": "Calendar bot" }))
        .await;
    grant.assert_status(201);
    let body = grant.json();
    let token = body["token"].as_str().expect("token").to_owned();
    let agent_id = body["agent_id"].as_str().expect("agent_id").to_owned();
    let browser = nodes.b.browser(UA);
    let me = browser
        .clone()
        .send(
            browser
                .bare_request(Method::GET, "/agent/me")
                .bearer_auth(&token),
        )
        .await;
    me.assert_status(200);
    assert_eq!(me.json()["on_behalf_of"], "alice");
    assert_eq!(me.json()["agent_name"], "Calendar bot");
    assert_eq!(me.json()["kind"], "agent");
    alice
        .delete(&format!("/agents/{agent_id}"))
        .await
        .assert_status(204);
    // The revoking node refuses it at once. (Node b cached it as valid and, with no push
    // channel on a memory store, may serve it until its staleness bound.)
    let browser = nodes.a.browser(UA);
    let refused = browser
        .clone()
        .send(
            browser
                .bare_request(Method::GET, "/agent/me")
                .bearer_auth(&token),
        )
        .await;
    assert_401(&refused, "session_revoked");
    assert_eq!(
        refused.header("www-authenticate").as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(refused.raw_set_cookies(), Vec::<String>::new());
    // Another user's agent is not found.
    let mut bob = logged_in(&nodes.a, "bob").await;
    bob.delete(&format!("/agents/{agent_id}"))
        .await
        .assert_status(404);
}

macro_rules! for_both {
    ($($scenario:ident),* $(,)?) => {
        mod axum {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::Framework::Axum).await; })*
        }
        mod actix {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::Framework::Actix).await; })*
        }
    };
}

for_both!(
    store_failure_is_503_and_keeps_the_cookie,
    bad_inputs_get_4xx_without_a_store_lookup,
    agents_use_bearer_tokens,
);

/// One manager, two frameworks: a session issued through the tower layer is accepted by
/// the actix middleware, and a revocation through either is enforced by both at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_cross_frameworks() {
    let demo = Demo::with_store(&settings(), Arc::new(MemoryStore::new()));
    let axum = App::serve(Framework::Axum, demo.clone());
    let actix = App::serve(Framework::Actix, demo);

    let first = logged_in(&axum, "alice").await;
    let first_token = first.token().expect("token").to_owned();
    let second = logged_in(&actix, "alice").await;
    let second_token = second.token().expect("token").to_owned();
    for app in [&axum, &actix] {
        on(app, &first_token).get("/me").await.assert_status(200);
        on(app, &second_token).get("/me").await.assert_status(200);
    }
    // Revoked through actix (DELETE of the other session)…
    let mut via_actix = on(&actix, &second_token);
    let listed = via_actix.get("/sessions").await.json();
    let first_id = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["current"] == false)
        .expect("the other session")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    via_actix
        .delete(&format!("/sessions/{first_id}"))
        .await
        .assert_status(204);
    // …refused by both.
    for app in [&axum, &actix] {
        assert_401(&on(app, &first_token).get("/me").await, "session_revoked");
    }
    // Logged out through axum: refused by actix.
    on(&axum, &second_token)
        .post("/logout")
        .await
        .assert_status(303);
    for app in [&axum, &actix] {
        assert_401(&on(app, &second_token).get("/me").await, "session_revoked");
    }
}
