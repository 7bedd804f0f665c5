//! The identity-provider routes of the examples' contract, black-box, against both example
//! apps: SCIM deprovisioning (raw requests shaped like Okta's and Entra ID's published
//! examples, and the `scim2-client` Python package driving the app), back-channel logout
//! refusals, and a whole single sign-on with a real OpenID provider (oidc-provider from
//! npm) that then signs the user out over the back channel.
//!
//! Tests that need Python or Node.js skip, with a printed reason, when those are missing;
//! `IDP_TESTS=1` makes a missing tool a failure.

#[path = "../../session-idp/tests/support/mod.rs"]
mod idp_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use idp_support::{Provider, free_port, sign_in_at_provider, sign_out_at_provider};

use reqwest::Method;
use serde_json::{Value, json};
use session_conformance::{App, Browser, Framework, Reply, Target};
use session_idp::caep::{
    CaepEvent, SECEVENT_CONTENT_TYPE, SessionRevoked, SetSigner, SetValidator, Subject,
};
use session_idp::jwks::Jwks;
use session_idp::replay::MemoryReplayGuard;
use time::OffsetDateTime;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
const SCIM_TOKEN: &str = "scim-token-for-the-idp-tests-0123456789";
const ADMIN_TOKEN: &str = "admin-token-for-the-idp-tests-0123456789";
const SCIM_TYPE: &str = "application/scim+json";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Whether a missing tool must fail the test rather than skip it.
fn required() -> bool {
    std::env::var("IDP_TESTS").is_ok_and(|v| v == "1")
}

/// Skips (printing why, past the harness's capture) or, with `IDP_TESTS=1`, fails.
fn skip(why: &str) {
    assert!(!required(), "IDP_TESTS=1 but {why}");
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("skipped: {why} (IDP_TESTS=1 makes this a failure)\n").as_bytes(),
    );
}

async fn logged_in(app: &App, user: &str) -> Browser {
    app.signed_in(user, UA).await
}

/// `method /scim/v2/Users/{id}` with `token` and an optional JSON body.
async fn scim(app: &App, method: Method, id: &str, token: &str, body: Option<&Value>) -> Reply {
    let mut browser = app.browser(UA);
    let mut request = browser
        .bare_request(method, &format!("/scim/v2/Users/{id}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", SCIM_TYPE)
            .body(body.to_string());
    }
    browser.send(request).await
}

#[track_caller]
fn assert_scim_error(reply: &Reply, status: u16) {
    reply.assert_status(status);
    assert_eq!(reply.media_type().as_deref(), Some(SCIM_TYPE));
    let body = reply.json();
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(body["status"], json!(status.to_string()));
}

#[track_caller]
fn assert_scim_user(reply: &Reply, id: &str, active: bool) {
    reply.assert_status(200);
    assert_eq!(reply.media_type().as_deref(), Some(SCIM_TYPE));
    let body = reply.json();
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
    assert_eq!(body["id"], id);
    assert_eq!(body["active"], active);
}

/// The `session.revoked` events of `user`, through the admin API.
async fn revocations(app: &App, user: &str) -> Vec<Value> {
    let mut admin = app.browser(UA);
    let request = admin
        .bare_request(Method::GET, &format!("/admin/audit?user_id={user}"))
        .bearer_auth(ADMIN_TOKEN);
    let reply = admin.send(request).await;
    reply.assert_status(200);
    reply
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .filter(|e| e["type"] == "session.revoked")
        .cloned()
        .collect()
}

/// `GET /me` with `browser`'s cookie is refused as revoked.
async fn assert_revoked(browser: &mut Browser) {
    let reply = browser.get("/me").await;
    reply.assert_status(401);
    assert_eq!(reply.json(), json!({"error": "session_revoked"}));
}

/// A password login of a deprovisioned user: 403, no cookie.
async fn assert_login_refused(app: &App, user: &str) {
    let mut browser = app.browser(UA);
    let reply = browser.login(user, &format!("{user}-password")).await;
    reply.assert_status(403);
    assert!(reply.raw_set_cookies().is_empty(), "no cookie");
    assert!(browser.token().is_none());
}

// ---------------------------------------------------------------------------------------
// SCIM, raw.
// ---------------------------------------------------------------------------------------

/// Okta's deactivation (a value object), then Entra ID's (`"Replace"`, path `active`, the
/// string `"False"`), a reactivation, `DELETE`, and the refusals: every answer a SCIM
/// body with its media type.
async fn scim_deprovisions(target: Target) {
    let app = App::start(
        target,
        &[("SCIM_TOKEN", SCIM_TOKEN), ("ADMIN_TOKEN", ADMIN_TOKEN)],
    )
    .await;
    let mut alice = logged_in(&app, "alice").await;
    let mut laptop = logged_in(&app, "alice").await;
    let granted = alice
        .post_json("/agents", &json!({"name": "Calendar bot"}))
        .await;
    granted.assert_status(201);
    let agent = granted.json()["token"].as_str().expect("token").to_owned();
    let mut bob = logged_in(&app, "bob").await;

    // Refusals first: nothing changes.
    let okta = json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"active": false}}],
    });
    let wrong = scim(
        &app,
        Method::PATCH,
        "alice",
        "not-the-scim-token",
        Some(&okta),
    )
    .await;
    assert_scim_error(&wrong, 401);
    assert!(wrong.header("www-authenticate").is_some());
    assert_scim_error(
        &scim(&app, Method::PATCH, "mallory", SCIM_TOKEN, Some(&okta)).await,
        404,
    );
    assert_scim_error(
        &scim(&app, Method::DELETE, "mallory", SCIM_TOKEN, None).await,
        404,
    );
    assert_scim_error(
        &scim(&app, Method::DELETE, "alice", ADMIN_TOKEN, None).await,
        401,
    );
    let not_patch = json!({"Operations": [{"op": "replace", "path": "active", "value": false}]});
    assert_scim_error(
        &scim(&app, Method::PATCH, "alice", SCIM_TOKEN, Some(&not_patch)).await,
        400,
    );
    let maybe = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": "maybe"}]});
    assert_scim_error(
        &scim(&app, Method::PATCH, "alice", SCIM_TOKEN, Some(&maybe)).await,
        400,
    );
    alice.get("/me").await.assert_status(200);

    // Okta: {"op": "replace", "value": {"active": false}}.
    let reply = scim(&app, Method::PATCH, "alice", SCIM_TOKEN, Some(&okta)).await;
    assert_scim_user(&reply, "alice", false);
    assert_revoked(&mut alice).await;
    assert_revoked(&mut laptop).await;
    let mut robot = app.browser(UA);
    let request = robot
        .bare_request(Method::GET, "/agent/me")
        .bearer_auth(&agent);
    robot.send(request).await.assert_status(401);
    assert_login_refused(&app, "alice").await;
    bob.get("/me").await.assert_status(200);
    let events = revocations(&app, "alice").await;
    assert_eq!(
        events.len(),
        3,
        "two user sessions and the agent: {events:?}"
    );
    for event in &events {
        assert_eq!(event["reason"], "user_deprovisioned");
        assert_eq!(event["actor"], "idp");
    }

    // Active again (a plain boolean, lowercase op): logins work.
    let activate = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": true}]});
    let reply = scim(&app, Method::PATCH, "alice", SCIM_TOKEN, Some(&activate)).await;
    assert_scim_user(&reply, "alice", true);
    let mut alice = logged_in(&app, "alice").await;

    // Entra ID: {"op": "Replace", "path": "active", "value": "False"}.
    let entra = json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    });
    let reply = scim(&app, Method::PATCH, "alice", SCIM_TOKEN, Some(&entra)).await;
    assert_scim_user(&reply, "alice", false);
    assert_revoked(&mut alice).await;
    assert_login_refused(&app, "alice").await;

    // A PATCH that does not touch `active` reports the state and changes nothing.
    let rename = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Al"}]});
    let reply = scim(&app, Method::PATCH, "alice", SCIM_TOKEN, Some(&rename)).await;
    assert_scim_user(&reply, "alice", false);

    // DELETE: a deactivation, 204.
    let reply = scim(&app, Method::DELETE, "bob", SCIM_TOKEN, None).await;
    reply.assert_status(204);
    assert!(reply.body.is_empty());
    assert_revoked(&mut bob).await;
    assert_login_refused(&app, "bob").await;
    logged_in(&app, "carol").await;
}

/// Without `SCIM_TOKEN` the SCIM routes do not exist; with SSO unset, neither do its.
async fn unconfigured_routes_are_404(target: Target) {
    let app = App::start(target, &[]).await;
    for (method, path) in [
        (Method::PATCH, "/scim/v2/Users/alice"),
        (Method::DELETE, "/scim/v2/Users/alice"),
        (Method::GET, "/login/oidc"),
        (Method::GET, "/oidc/callback?code=x&state=y"),
        (Method::POST, "/oidc/backchannel-logout"),
    ] {
        let mut browser = app.browser(UA);
        let request = browser
            .bare_request(method.clone(), path)
            .bearer_auth(SCIM_TOKEN);
        let reply = browser.send(request).await;
        assert_eq!(reply.status.as_u16(), 404, "{method} {path}");
    }
}

// ---------------------------------------------------------------------------------------
// SCIM, through the scim2-client Python package.
// ---------------------------------------------------------------------------------------

/// The script the tests run: `python client.py BASE TOKEN ACTION USER`, one JSON line out.
const SCIM2_CLIENT_SCRIPT: &str = r#"
import json, sys
import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Error, PatchOp, PatchOperation, User

base, token, action, user = sys.argv[1:5]
http = httpx2.Client(base_url=base + "/scim/v2", headers={"Authorization": "Bearer " + token})
scim = SyncSCIMClient(http, resource_models=[User], raise_scim_errors=False)
if action == "delete":
    result = scim.delete(User, user)
else:
    patch = PatchOp[User](operations=[PatchOperation(op="replace", path="active", value=(action == "activate"))])
    result = scim.modify(User, user, patch)
if result is None:
    print(json.dumps({"result": "none"}))
elif isinstance(result, Error):
    print(json.dumps({"result": "error", "status": str(result.status)}))
else:
    print(json.dumps({"result": "user", "id": result.id, "active": result.active}))
"#;

/// A virtual environment with `scim2-client`, made once per test process under the
/// target directory; `None` (skipped) when Python, venv or pip cannot make it.
fn scim2_python() -> Option<PathBuf> {
    static PYTHON: Mutex<Option<Option<PathBuf>>> = Mutex::new(None);
    let mut made = PYTHON.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(python) = made.as_ref() {
        return python.clone();
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scim2-client-venv");
    let python = venv.join("bin/python");
    let ready = venv.join("ready");
    let run = |command: &mut Command| {
        command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = ready.exists()
        || (run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
            && run(Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "scim2-client[httpx2]==0.13.2",
            ]))
            && std::fs::write(&ready, b"").is_ok());
    let found = if ok {
        Some(python)
    } else {
        skip("python3 with venv and pip (to install scim2-client) is not available");
        None
    };
    *made = Some(found.clone());
    found
}

async fn scim2_client_deprovisions(target: Target) {
    let Some(python) = tokio::task::spawn_blocking(scim2_python)
        .await
        .expect("venv")
    else {
        return;
    };
    let app = App::start(target, &[("SCIM_TOKEN", SCIM_TOKEN)]).await;
    let mut alice = logged_in(&app, "alice").await;
    let mut bob = logged_in(&app, "bob").await;
    let run = |token: &'static str, action: &'static str, user: &'static str| {
        let (python, base) = (python.clone(), app.base_url().to_owned());
        async move {
            tokio::task::spawn_blocking(move || scim2_client(&python, &base, token, action, user))
                .await
                .expect("the client ran")
        }
    };
    assert_eq!(
        run(SCIM_TOKEN, "deactivate", "alice").await,
        json!({"result": "user", "id": "alice", "active": false})
    );
    assert_revoked(&mut alice).await;
    assert_login_refused(&app, "alice").await;
    assert_eq!(
        run(SCIM_TOKEN, "activate", "alice").await,
        json!({"result": "user", "id": "alice", "active": true})
    );
    logged_in(&app, "alice").await;
    assert_eq!(
        run(SCIM_TOKEN, "delete", "bob").await,
        json!({"result": "none"})
    );
    assert_revoked(&mut bob).await;
    assert_login_refused(&app, "bob").await;
    assert_eq!(
        run(
            "a-wrong-token-a-wrong-token-a-wrong-token",
            "deactivate",
            "carol"
        )
        .await,
        json!({"result": "error", "status": "401"})
    );
    assert_eq!(
        run(SCIM_TOKEN, "deactivate", "mallory").await,
        json!({"result": "error", "status": "404"})
    );
    logged_in(&app, "carol").await;
}

/// Runs the script against the app at `base`; its one line of JSON.
fn scim2_client(python: &Path, base: &str, token: &str, action: &str, user: &str) -> Value {
    let out = Command::new(python)
        .args(["-c", SCIM2_CLIENT_SCRIPT, base, token, action, user])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scim2-client {action} {user} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not JSON: {stdout}"))
}

// ---------------------------------------------------------------------------------------
// Back-channel logout refusals (no provider needed: nothing invalid reaches the keys).
// ---------------------------------------------------------------------------------------

/// A stand-in provider: its discovery document and an empty key set, enough for the app
/// to judge tokens that fail before any key is needed. Returns its issuer.
async fn stand_in_provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let issuer = format!("http://{}", listener.local_addr().expect("address"));
    let discovery = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
    .to_string();
    let json = |body: String| {
        (
            [(::axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
    };
    let app = ::axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            ::axum::routing::get(move || {
                let body = discovery.clone();
                async move { json(body) }
            }),
        )
        .route(
            "/jwks",
            ::axum::routing::get(move || async move { json(r#"{"keys": []}"#.to_owned()) }),
        );
    tokio::spawn(async move { ::axum::serve(listener, app).await });
    issuer
}

async fn backchannel_refuses_invalid_tokens(target: Target) {
    let public_url = format!("http://127.0.0.1:{}", free_port());
    let issuer = stand_in_provider().await;
    let app = App::start(
        target,
        &[
            ("OIDC_ISSUER", &issuer),
            ("OIDC_CLIENT_ID", "app"),
            ("OIDC_CLIENT_SECRET", "app-secret"),
            ("PUBLIC_URL", &public_url),
        ],
    )
    .await;
    let mut alice = logged_in(&app, "alice").await;
    let form = "application/x-www-form-urlencoded";
    // Unsigned, garbage, missing, repeated, the wrong content type.
    let unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.";
    for (content_type, body) in [
        (form, format!("logout_token={unsigned}")),
        (form, "logout_token=not-a-jwt".to_owned()),
        (form, String::new()),
        (form, "logout_token=a.b.c&logout_token=a.b.c".to_owned()),
        (
            "application/json",
            r#"{"logout_token": "a.b.c"}"#.to_owned(),
        ),
        (form, "logout_token=%FF%FE".to_owned()),
    ] {
        let mut provider = app.browser(UA);
        let request = provider
            .bare_request(Method::POST, "/oidc/backchannel-logout")
            .header("content-type", content_type)
            .header("sec-fetch-site", "cross-site")
            .body(body.clone());
        let reply = provider.send(request).await;
        reply.assert_status(400);
        assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(reply.json()["error"], "invalid_request", "{body}");
        assert!(!reply.text().contains("eyJ"), "no token in the answer");
    }
    alice.get("/me").await.assert_status(200);
    // The sign-in routes answer: a 303 to the provider, with the state cookie; and a callback without this browser's state is a 4xx
    // with no session.
    let mut stranger = app.browser(UA);
    let reply = stranger.navigate("/login/oidc?return_to=/me").await;
    reply.assert_status(303);
    let location = reply.header("location").expect("a location");
    assert!(
        location.starts_with(&format!("{issuer}/auth?")),
        "{location}"
    );
    assert!(
        reply
            .raw_set_cookies()
            .iter()
            .any(|c| c.starts_with("oidc-state=") && c.contains("HttpOnly")),
        "{:?}",
        reply.raw_set_cookies()
    );
    for query in [
        "code=stolen&state=forged",
        "state=x",
        "",
        "error=access_denied&state=x",
    ] {
        let reply = stranger.navigate(&format!("/oidc/callback?{query}")).await;
        reply.assert_status(400);
        assert!(stranger.token().is_none(), "no session for {query:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Single sign-on and back-channel logout with a real provider.
// ---------------------------------------------------------------------------------------

const CLIENT_ID: &str = "example-app";
const CLIENT_SECRET: &str = "example-app-secret-for-tests-only";

/// A browser that keeps every cookie (the app's and the provider's), following nothing.
fn cookie_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(UA)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
}

async fn sso_then_backchannel_logout(framework: Framework) {
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let callback = format!("{public_url}/oidc/callback");
    let Some(provider) = Provider::for_app(&public_url, CLIENT_ID, CLIENT_SECRET) else {
        return;
    };
    let port = port.to_string();
    let app = App::spawn(
        framework.binary(),
        &[
            ("PORT", &port),
            ("PUBLIC_URL", &public_url),
            ("OIDC_ISSUER", &provider.issuer),
            ("OIDC_CLIENT_ID", CLIENT_ID),
            ("OIDC_CLIENT_SECRET", CLIENT_SECRET),
            ("ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    );
    assert_eq!(app.base_url(), public_url);
    // A password session of the same user, which the provider's logout must not touch.
    let mut by_password = logged_in(&app, "alice").await;

    let browser = cookie_browser();
    let start = browser
        .get(app.url("/login/oidc?return_to=/me"))
        .send()
        .await
        .expect("app");
    assert_eq!(start.status(), 303);
    let location = start.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(location.starts_with(&provider.issuer), "{location}");
    let authorization = reqwest::Url::parse(&location).expect("a URL");
    let params: std::collections::HashMap<_, _> =
        authorization.query_pairs().into_owned().collect();
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(
        params["redirect_uri"],
        format!("{public_url}/oidc/callback")
    );
    assert_eq!(params["client_id"], CLIENT_ID);
    assert!(params.contains_key("state") && params.contains_key("nonce"));

    let callback = sign_in_at_provider(&browser, &location, &callback, "alice").await;
    // Another browser cannot use this callback: it lacks the state cookie.
    let thief = cookie_browser()
        .get(callback.clone())
        .send()
        .await
        .expect("app");
    assert_eq!(thief.status(), 400);
    assert!(
        !thief
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.as_bytes().starts_with(b"session=")),
        "no session for a callback without the state"
    );
    let signed_in = browser.get(callback).send().await.expect("app");
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/me");
    let me = browser.get(app.url("/me")).send().await.expect("app");
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.expect("JSON")["user_id"], "alice");

    // Sign out at the provider: its end-session page, then the confirm form; it POSTs a
    // logout token to the app before it answers.
    sign_out_at_provider(&browser, &provider.issuer, CLIENT_ID).await;

    let mut revoked = false;
    for _ in 0..50 {
        let me = browser.get(app.url("/me")).send().await.expect("app");
        if me.status() == 401 {
            assert_eq!(
                me.json::<Value>().await.expect("JSON"),
                json!({"error": "session_revoked"})
            );
            revoked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(revoked, "the provider's logout revoked the SSO session");
    by_password.get("/me").await.assert_status(200);
    let events = revocations(&app, "alice").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["reason"], "idp_logout");
    assert_eq!(events[0]["actor"], "idp");
}

// ---------------------------------------------------------------------------------------
// CAEP session-revoked events, received and sent.
// ---------------------------------------------------------------------------------------

const ED25519_KEY: &str = include_str!("../../session-idp/tests/keys/ed1.pem");
const TRANSMITTER: &str = "https://transmitter.example";
const AUDIENCE: &str = "https://app.example";

/// `POST /caep/events` with `set` as `content_type`.
async fn push_set(app: &App, content_type: &str, set: &str) -> Reply {
    let mut transmitter = app.browser(UA);
    let request = transmitter
        .bare_request(Method::POST, "/caep/events")
        .header("content-type", content_type)
        .body(set.to_owned());
    transmitter.send(request).await
}

async fn caep_receiver_revokes(framework: Framework) {
    let signer = SetSigner::eddsa_pem(TRANSMITTER, ED25519_KEY.as_bytes()).expect("a key");
    let jwks =
        idp_support::JwksServer::start(serde_json::to_value(signer.jwks()).expect("a key set"))
            .await;
    let app = App::spawn(
        framework.binary(),
        &[
            ("CAEP_TRANSMITTER_ISSUER", TRANSMITTER),
            ("CAEP_TRANSMITTER_JWKS_URL", &jwks.url),
            ("CAEP_AUDIENCE", AUDIENCE),
            ("ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    );
    let mut alice = logged_in(&app, "alice").await;
    let mut bob = logged_in(&app, "bob").await;
    let now = OffsetDateTime::now_utc();
    let about = |user: &str| SessionRevoked::new(Subject::iss_sub(TRANSMITTER, user), now);
    let set = signer
        .session_revoked(&about("alice"), AUDIENCE, now)
        .expect("a SET");
    push_set(&app, SECEVENT_CONTENT_TYPE, &set)
        .await
        .assert_status(202);
    assert_revoked(&mut alice).await;
    bob.get("/me").await.assert_status(200);
    let events = revocations(&app, "alice").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["reason"], "idp_logout");
    assert_eq!(events[0]["actor"], "idp");

    // Refused, nothing revoked: a replay, another audience, not a SET.
    let replay = push_set(&app, SECEVENT_CONTENT_TYPE, &set).await;
    replay.assert_status(400);
    let elsewhere = signer
        .session_revoked(&about("bob"), "https://other.example", now)
        .expect("a SET");
    let refused = push_set(&app, SECEVENT_CONTENT_TYPE, &elsewhere).await;
    refused.assert_status(400);
    assert_eq!(refused.json()["err"], "invalid_audience");
    push_set(&app, "application/json", &set)
        .await
        .assert_status(400);
    push_set(&app, SECEVENT_CONTENT_TYPE, "not.a.set")
        .await
        .assert_status(400);
    bob.get("/me").await.assert_status(200);
}

async fn caep_sender_pushes_revocations(framework: Framework) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receiver_url = format!("http://{}/caep", listener.local_addr().expect("address"));
    let mut pushes = idp_support::record_posts(listener, "/caep");
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let port = port.to_string();
    let app = App::spawn(
        framework.binary(),
        &[
            ("PORT", &port),
            ("PUBLIC_URL", &public_url),
            ("CAEP_RECEIVER_URL", &receiver_url),
            ("CAEP_SIGNING_KEY", ED25519_KEY),
        ],
    );
    let mut alice = logged_in(&app, "alice").await;
    alice.post("/logout").await.assert_status(303);

    let (content_type, set) = tokio::time::timeout(Duration::from_secs(10), pushes.recv())
        .await
        .expect("a push within 10 s")
        .expect("a push");
    let set = String::from_utf8(set).expect("a SET is text");
    assert_eq!(content_type.as_deref(), Some(SECEVENT_CONTENT_TYPE));
    let signer = SetSigner::eddsa_pem(&public_url, ED25519_KEY.as_bytes()).expect("a key");
    let validator = SetValidator::new(
        &public_url,
        &receiver_url,
        Jwks::inline(signer.jwks()),
        MemoryReplayGuard::new(),
    );
    let received = validator
        .validate(&set, OffsetDateTime::now_utc())
        .await
        .expect("a valid SET");
    assert_eq!(received.subject, Subject::iss_sub(&public_url, "alice"));
    assert!(matches!(received.event, CaepEvent::SessionRevoked(_)));
}

/// One instance signs the other's users out: `sender` (on the memory store) transmits a SET
/// for each revocation, `receiver` (on SQLite, keys fixed) trusts it. The receiver is down
/// when the user signs out at the sender: the sender's worker retries until it is back,
/// and then the user's sessions made before the sign-out end there, and no one else's.
async fn caep_between_two_instances(sender: Framework, receiver: Framework) {
    const KEY: &str = "Y2FlcC10ZXN0LWNhZXAtdGVzdC1jYWVwLXRlc3QtY2FlcC10";
    let (sender_port, receiver_port) = (free_port(), free_port());
    let sender_url = format!("http://127.0.0.1:{sender_port}");
    let receiver_url = format!("http://127.0.0.1:{receiver_port}");
    let signer = SetSigner::eddsa_pem(&sender_url, ED25519_KEY.as_bytes()).expect("a key");
    let jwks =
        idp_support::JwksServer::start(serde_json::to_value(signer.jwks()).expect("a key set"))
            .await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = format!("sqlite://{}", dir.path().join("receiver.db").display());
    let receiver_port = receiver_port.to_string();
    let receiver_env = [
        ("PORT", receiver_port.as_str()),
        ("PUBLIC_URL", &receiver_url),
        ("SESSION_STORE", &store),
        ("SESSION_KEYS", KEY),
        ("CAEP_TRANSMITTER_ISSUER", &sender_url),
        ("CAEP_TRANSMITTER_JWKS_URL", &jwks.url),
        ("CAEP_AUDIENCE", AUDIENCE),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let there = App::spawn(receiver.binary(), &receiver_env);
    let mut alice_there = logged_in(&there, "alice").await;
    let mut bob_there = logged_in(&there, "bob").await;
    drop(there);

    let sender_port = sender_port.to_string();
    let push_url = format!("{receiver_url}/caep/events");
    let here = App::spawn(
        sender.binary(),
        &[
            ("PORT", &sender_port),
            ("PUBLIC_URL", &sender_url),
            ("CAEP_RECEIVER_URL", &push_url),
            ("CAEP_RECEIVER_AUDIENCE", AUDIENCE),
            ("CAEP_SIGNING_KEY", ED25519_KEY),
        ],
    );
    let mut alice_here = logged_in(&here, "alice").await;
    alice_here.post("/logout").await.assert_status(303);
    // Refused connections meanwhile; the worker retries with backoff.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let there = App::spawn(receiver.binary(), &receiver_env);
    let mut revoked = None;
    for _ in 0..300 {
        let me = alice_there.get("/me").await;
        if me.status != 200 {
            revoked = Some(me);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let revoked = revoked.unwrap_or_else(|| {
        panic!(
            "the sign-out did not reach the other instance\nsender:\n{}\nreceiver:\n{}",
            here.output(),
            there.output()
        )
    });
    revoked.assert_status(401);
    assert_eq!(revoked.json(), json!({"error": "session_revoked"}));
    bob_there.get("/me").await.assert_status(200);
    // A sign-in made since is untouched.
    let mut alice_later = logged_in(&there, "alice").await;
    alice_later.get("/me").await.assert_status(200);
    let events = revocations(&there, "alice").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["reason"], "idp_logout");
    assert_eq!(events[0]["actor"], "idp");
}

// ---------------------------------------------------------------------------------------
// Every scenario, for every example app.
// ---------------------------------------------------------------------------------------

macro_rules! per_target {
    ($($module:ident => $target:expr),* $(,)?) => {
        $(
            mod $module {
                #[allow(unused_imports)]
                use super::{Framework, Target};

                #[tokio::test]
                async fn scim_deprovisions() {
                    super::scim_deprovisions($target).await;
                }

                #[tokio::test]
                async fn unconfigured_routes_are_404() {
                    super::unconfigured_routes_are_404($target).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn scim2_client_deprovisions() {
                    super::scim2_client_deprovisions($target).await;
                }

                #[tokio::test]
                async fn backchannel_refuses_invalid_tokens() {
                    super::backchannel_refuses_invalid_tokens($target).await;
                }
            }
        )*
    };
}

per_target!(
    axum => Target::Binary(Framework::Axum),
    actix => Target::Binary(Framework::Actix),
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_caep_receiver_revokes() {
    caep_receiver_revokes(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_caep_receiver_revokes() {
    caep_receiver_revokes(Framework::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_caep_sender_pushes_revocations() {
    caep_sender_pushes_revocations(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_caep_sender_pushes_revocations() {
    caep_sender_pushes_revocations(Framework::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_signs_actix_users_out_through_caep() {
    caep_between_two_instances(Framework::Axum, Framework::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_signs_axum_users_out_through_caep() {
    caep_between_two_instances(Framework::Actix, Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_sso_then_backchannel_logout() {
    sso_then_backchannel_logout(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_sso_then_backchannel_logout() {
    sso_then_backchannel_logout(Framework::Actix).await;
}
