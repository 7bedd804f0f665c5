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
        a: App::serve(
            framework,
            Demo::with_store(&settings, shared.clone()).expect("valid settings"),
        ),
        b: App::serve(
            framework,
            Demo::with_store(&settings, shared).expect("valid settings"),
        ),
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

/// One malformed request: the path and the raw headers it carries, built from a real
/// token of the app (`token`) and the same token with one MAC character flipped.
fn bad_request(
    case: &str,
    token: &str,
    flipped: &str,
) -> (&'static str, Vec<(&'static str, Vec<u8>)>) {
    let cookie = |value: Vec<u8>| ("/me", vec![("cookie", value)]);
    let bearer = |values: &[&str]| {
        let headers = values
            .iter()
            .map(|v| ("authorization", v.as_bytes().to_vec()))
            .collect();
        ("/agent/me", headers)
    };
    match case {
        "non_utf8_cookie_value" => cookie([b"session=".as_slice(), b"\xff\xfe\x80abc"].concat()),
        "non_utf8_other_cookie" => cookie(b"x=\xff\xfe; y=1".to_vec()),
        "cookie_of_64_kib" => {
            cookie(format!("{COOKIE_NAME}={}", "A".repeat(64 * 1024)).into_bytes())
        }
        "two_session_cookies" => {
            cookie(format!("{COOKIE_NAME}={token}; {COOKIE_NAME}={token}").into_bytes())
        }
        "cookie_name_in_another_case" => cookie(format!("Session={token}").into_bytes()),
        "cookie_name_percent_encoded" => cookie(format!("sess%69on={token}").into_bytes()),
        "token_one_character_short" => {
            cookie(format!("{COOKIE_NAME}={}", &token[1..]).into_bytes())
        }
        "token_one_character_too_long" => cookie(format!("{COOKIE_NAME}={token}A").into_bytes()),
        "token_outside_base64url" => cookie(format!("{COOKIE_NAME}=+{}", &token[1..]).into_bytes()),
        "token_with_a_flipped_mac_byte" => cookie(format!("{COOKIE_NAME}={flipped}").into_bytes()),
        "empty_bearer" => bearer(&["Bearer "]),
        "two_bearer_tokens_in_one_header" => bearer(&["Bearer a b"]),
        "two_bearer_headers" => bearer(&["Bearer a", "Bearer b"]),
        "forged_bearer" => bearer(&[&format!("Bearer {flipped}")]),
        "token_as_cookie_and_bearer" => (
            "/me",
            vec![
                ("cookie", format!("{COOKIE_NAME}={token}").into_bytes()),
                ("authorization", format!("Bearer {token}").into_bytes()),
            ],
        ),
        other => panic!("unknown case {other}"),
    }
}

/// A bad input gets a 4xx (never a 5xx), costs no store call, and bearer rejections
/// carry `WWW-Authenticate` and no `Set-Cookie`.
async fn bad_input(framework: Framework, case: &str) {
    let nodes = two_nodes(framework);
    let alice = logged_in(&nodes.a, "alice").await;
    let token = alice.token().expect("token").to_owned();
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    let (path, headers) = bad_request(case, &token, &flipped);
    let before = nodes.store.calls.total();
    // Node b starts cold: any lookup would have to reach the store.
    let browser = nodes.b.browser(UA);
    let mut request = browser.bare_request(Method::GET, path);
    for (name, value) in &headers {
        request = request.header(*name, HeaderValue::from_bytes(value).expect("header bytes"));
    }
    let reply = browser.clone().send(request).await;
    assert!(reply.status.is_client_error(), "{case}: {}", reply.status);
    assert_eq!(nodes.store.calls.total(), before, "{case}: no store call");
    if path == "/agent/me" {
        assert_401(&reply, "session_invalid");
        assert_eq!(
            reply.header("www-authenticate").as_deref(),
            Some(r#"Bearer error="invalid_token""#),
            "{case}"
        );
        assert_eq!(reply.raw_set_cookies(), Vec::<String>::new(), "{case}");
    }
    // The counter counts: the real token on the cold node costs one load.
    on(&nodes.b, &token).get("/me").await.assert_status(200);
    assert_eq!(nodes.store.calls.load.load(Ordering::SeqCst), 1);
}

macro_rules! bad_inputs {
    ($($case:ident),* $(,)?) => {
        mod bad_input_axum {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::bad_input(super::Framework::Axum, stringify!($case)).await; })*
        }
        mod bad_input_actix {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::bad_input(super::Framework::Actix, stringify!($case)).await; })*
        }
    };
}

bad_inputs!(
    non_utf8_cookie_value,
    non_utf8_other_cookie,
    cookie_of_64_kib,
    two_session_cookies,
    cookie_name_in_another_case,
    cookie_name_percent_encoded,
    token_one_character_short,
    token_one_character_too_long,
    token_outside_base64url,
    token_with_a_flipped_mac_byte,
    empty_bearer,
    two_bearer_tokens_in_one_header,
    two_bearer_headers,
    forged_bearer,
    token_as_cookie_and_bearer,
);

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

/// A password reset never leaves sessions alive: when the revocation fails after the
/// password changed, the answer is 503 and the revocation is retried until it holds.
async fn a_failed_reset_revocation_is_retried(framework: Framework) {
    let nodes = two_nodes(framework);
    let mut carol = logged_in(&nodes.a, "carol").await;
    nodes.store.set_failing_revocations(true);
    let reply = nodes
        .a
        .browser(UA)
        .post_json(
            "/password-reset",
            &json!({"username": "carol", "new_password": "carol-new-password"}),
        )
        .await;
    reply.assert_status(503);
    assert!(reply.header("retry-after").is_some());
    // The password did change.
    nodes
        .a
        .browser(UA)
        .login("carol", "carol-password")
        .await
        .assert_status(401);
    carol.get("/me").await.assert_status(200);
    // The store comes back: the retry revokes the session, without anyone asking again.
    nodes.store.set_failing_revocations(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = carol.get("/me").await;
        if reply.status.as_u16() == 401 {
            assert_401(&reply, "session_revoked");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never revoked");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
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
    agents_use_bearer_tokens,
    a_failed_reset_revocation_is_retried,
);

/// One manager, two frameworks: a session issued through the tower layer is accepted by
/// the actix middleware, and a revocation through either is enforced by both at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_cross_frameworks() {
    let demo = Demo::with_store(&settings(), Arc::new(MemoryStore::new())).expect("valid settings");
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
