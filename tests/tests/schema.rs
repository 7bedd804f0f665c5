//! The OpenAPI document the example apps serve at `GET /openapi.json` describes what they
//! answer: a walk over each app, in process, logs every exchange
//! ([`session_conformance::record_exchanges`]), and then every answer is checked against
//! the document fetched from that app.
//!
//! - An answer on a path the document describes must have a documented method and status,
//!   and a media type the document lists for that response (no body where it lists none).
//! - Every JSON answer, wherever it comes from, must be described: its body is validated
//!   (JSON Schema 2020-12, formats asserted) against the response's schema, `$ref`s to
//!   `#/components/...` resolved.
//! - The walk must reach every response the document describes (all statuses of all
//!   operations), so a described answer that the app never gives is caught as well.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use example_support::{Demo, Settings};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use session_conformance::{
    App, Browser, Exchange, Framework, Reply, Target, record_exchanges, take_exchanges,
};
use session_core::testing::FaultyStore;
use session_core::{MemoryStore, SessionStore};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const ADMIN_TOKEN: &str = "schema-test-admin-token-of-32-bytes-or-more";
const SCIM_TOKEN: &str = "schema-test-scim-token-of-32-bytes-or-more";
const UNKNOWN_ID: &str = "0190f2a4-5b6c-7d8e-9fa0-b1c2d3e4f5a6";

/// The self-service routes that need a session, with a concrete path.
const SESSION_ROUTES: [(Method, &str); 9] = [
    (Method::GET, "/me"),
    (Method::GET, "/agent/me"),
    (Method::POST, "/logout"),
    (Method::GET, "/sessions"),
    (
        Method::DELETE,
        "/sessions/0190f2a4-5b6c-7d8e-9fa0-b1c2d3e4f5a6",
    ),
    (Method::POST, "/sessions/revoke-others"),
    (Method::POST, "/sessions/revoke-all"),
    (Method::POST, "/agents"),
    (Method::DELETE, "/agents/no-such-agent"),
];

// ---------------------------------------------------------------------------------------
// The document.
// ---------------------------------------------------------------------------------------

/// An OpenAPI 3.1 document, and the checks of answers against it.
struct OpenApi {
    doc: Value,
}

/// What checking a walk found.
#[derive(Default)]
struct Findings {
    /// `METHOD /template STATUS` of every answer that matched a documented response.
    seen: BTreeSet<String>,
    /// How many JSON bodies were validated.
    validated: usize,
    /// Everything wrong, one line each.
    failures: Vec<String>,
}

impl OpenApi {
    fn new(doc: Value) -> Self {
        assert_eq!(doc["openapi"], "3.1.0", "an OpenAPI 3.1 document");
        assert!(doc["paths"].is_object(), "paths");
        Self { doc }
    }

    /// `value`, following `$ref`s within the document.
    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("a $ref outside the document: {reference}"));
            value = self
                .doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("a dangling $ref: {reference}"));
        }
        value
    }

    /// The path template that `path` matches, the most specific one (fewest parameters)
    /// when several do (`/sessions/revoke-all` before `/sessions/{id}`).
    fn template(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()?
            .keys()
            .filter(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                parts.len() == segments.len()
                    && parts.iter().zip(&segments).all(|(part, segment)| {
                        part == segment
                            || (part.starts_with('{') && part.ends_with('}') && !segment.is_empty())
                    })
            })
            .min_by_key(|template| template.matches('{').count())
            .map(String::as_str)
    }

    /// Every documented response: `METHOD /template STATUS`.
    fn responses(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for (template, item) in self.doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                for status in op["responses"].as_object().expect("responses").keys() {
                    all.insert(format!("{} {template} {status}", method.to_uppercase()));
                }
            }
        }
        all
    }

    /// A validator of `schema` (a schema of this document): JSON Schema 2020-12 with the
    /// document's component schemas as `$defs`, formats asserted.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": self.doc["components"]["schemas"],
            "allOf": [schema],
        });
        components_to_defs(&mut root);
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the document's schema {schema} does not compile: {e}"))
    }

    /// The failures of `body` against `schema`, one line each.
    fn schema_errors(&self, schema: &Value, body: &Value) -> Vec<String> {
        self.validator(schema)
            .iter_errors(body)
            .map(|e| format!("{e} (at `{}`)", e.instance_path()))
            .collect()
    }

    /// Checks one exchange into `findings`.
    fn check(&self, exchange: &Exchange, findings: &mut Findings) {
        let reply = &exchange.reply;
        let what = format!("{} -> {}", exchange.request_line(), reply.status);
        let media = reply.media_type();
        let is_json = media.as_deref() == Some("application/json");
        let Some(template) = self.template(exchange.url.path()) else {
            if is_json {
                findings.failures.push(format!(
                    "{what}: a JSON answer on a path the document does not describe: {}",
                    reply.text()
                ));
            }
            return;
        };
        let method = exchange.method.as_str().to_ascii_lowercase();
        let Some(op) = self.doc["paths"][template].get(&method) else {
            findings.failures.push(format!(
                "{what}: the document has no {method} for {template}"
            ));
            return;
        };
        let status = reply.status.as_str();
        let Some(response) = op["responses"].get(status) else {
            findings.failures.push(format!(
                "{what}: status {status} is not documented for {} {template}: {}",
                exchange.method,
                reply.text()
            ));
            return;
        };
        let response = self.resolve(response);
        let key = format!("{} {template} {status}", exchange.method);
        let content = response
            .get("content")
            .and_then(Value::as_object)
            .filter(|c| !c.is_empty());
        let Some(content) = content else {
            if reply.body.is_empty() {
                findings.seen.insert(key);
            } else {
                findings.failures.push(format!(
                    "{what}: the document describes no body, the answer has {media:?}: {}",
                    reply.text()
                ));
            }
            return;
        };
        let Some(entry) = media.as_deref().and_then(|m| content.get(m)) else {
            findings.failures.push(format!(
                "{what}: the answer is {media:?}, the document lists {:?}: {}",
                content.keys().collect::<Vec<_>>(),
                reply.text()
            ));
            return;
        };
        if is_json {
            let Ok(body) = serde_json::from_slice::<Value>(&reply.body) else {
                findings
                    .failures
                    .push(format!("{what}: not JSON: {}", reply.text()));
                return;
            };
            let Some(schema) = entry.get("schema") else {
                findings
                    .failures
                    .push(format!("{what}: the document gives no schema"));
                return;
            };
            let errors = self.schema_errors(schema, &body);
            if !errors.is_empty() {
                findings.failures.push(format!(
                    "{what}: {body} does not match {schema}: {}",
                    errors.join("; ")
                ));
                return;
            }
            findings.validated += 1;
        }
        findings.seen.insert(key);
    }
}

/// Rewrites `#/components/schemas/X` references to `#/$defs/X`.
fn components_to_defs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(reference) if key == "$ref" => {
                        if let Some(name) = reference.strip_prefix("#/components/schemas/") {
                            *reference = format!("#/$defs/{name}");
                        }
                    }
                    _ => components_to_defs(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(components_to_defs),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// The walk.
// ---------------------------------------------------------------------------------------

fn settings(extra: &[(&str, &str)]) -> Settings {
    let vars: Vec<(&str, &str)> = [
        ("SESSION_COOKIE_SECURE", "false"),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("SCIM_TOKEN", SCIM_TOKEN),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .collect();
    Settings::from_lookup(0, |name| {
        vars.iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("settings")
}

async fn logged_in(app: &App, user: &str) -> Browser {
    let mut browser = app.browser(UA);
    browser
        .login(user, &format!("{user}-password"))
        .await
        .assert_status(303);
    browser
}

fn on(app: &App, token: &str) -> Browser {
    let mut browser = app.browser(UA);
    browser.set_token(Some(token));
    browser
}

/// `method path` as an API call from `browser` (its cookie, `Accept: application/json`; a
/// JSON body for `POST /agents`).
async fn call(browser: &mut Browser, method: &Method, path: &str) -> Reply {
    let mut request = browser
        .request(method.clone(), path)
        .header(ACCEPT, "application/json");
    if *method == Method::POST && path == "/agents" {
        request = request.json(&json!({ "name": "Schema bot" }));
    }
    browser.send(request).await
}

/// As [`call`], with `Authorization: Bearer token` and no cookie.
async fn call_bearer(app: &App, method: &Method, path: &str, token: &str) -> Reply {
    let mut browser = app.browser(UA);
    let mut request = browser
        .bare_request(method.clone(), path)
        .bearer_auth(token)
        .header(ACCEPT, "application/json");
    if *method == Method::POST && path == "/agents" {
        request = request.json(&json!({ "name": "Schema bot" }));
    }
    browser.send(request).await
}

#[track_caller]
fn assert_error(reply: &Reply, status: u16, code: &str) {
    reply.assert_status(status);
    assert_eq!(reply.json(), json!({ "error": code }));
}

/// A token of this deployment's shape whose MAC does not verify.
fn forged(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ascii")
}

/// Every self-service route with `token` as cookie (`None`: no cookie): all refused with
/// `code`.
async fn refused_everywhere(app: &App, token: Option<&str>, code: &str) {
    for (method, path) in &SESSION_ROUTES {
        let mut browser = app.browser(UA);
        browser.set_token(token);
        let reply = call(&mut browser, method, path).await;
        assert_error(&reply, 401, code);
    }
}

/// The main walk: every route, every answer a healthy app gives.
async fn healthy_walk(app: &App) {
    // Signed in twice, and an agent.
    let mut alice = logged_in(app, "alice").await;
    let mut laptop = logged_in(app, "alice").await;
    call(&mut alice, &Method::GET, "/me")
        .await
        .assert_status(200);
    let sessions = call(&mut alice, &Method::GET, "/sessions").await;
    sessions.assert_status(200);
    let laptop_id = sessions
        .json()
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["current"] == false)
        .expect("the other session")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let granted = alice
        .post_json("/agents", &json!({ "name": "Calendar bot" }))
        .await;
    granted.assert_status(201);
    let agent_token = granted.json()["token"].as_str().expect("token").to_owned();
    let agent_id = granted.json()["agent_id"]
        .as_str()
        .expect("agent_id")
        .to_owned();
    let listed = call(&mut alice, &Method::GET, "/sessions").await;
    assert!(
        listed
            .json()
            .as_array()
            .expect("array")
            .iter()
            .any(|s| s["kind"] == "agent"),
        "an agent session is listed: {}",
        listed.text()
    );

    // The agent: knows itself, but neither reads nor manages the user's sessions.
    call_bearer(app, &Method::GET, "/agent/me", &agent_token)
        .await
        .assert_status(200);
    let me = call_bearer(app, &Method::GET, "/me", &agent_token).await;
    me.assert_status(200);
    assert_eq!(me.json()["kind"], "agent");
    for (method, path) in [
        (Method::GET, "/sessions".to_owned()),
        (Method::DELETE, format!("/sessions/{laptop_id}")),
        (Method::POST, "/sessions/revoke-others".to_owned()),
        (Method::POST, "/sessions/revoke-all".to_owned()),
        (Method::POST, "/agents".to_owned()),
        (Method::DELETE, format!("/agents/{agent_id}")),
    ] {
        let reply = call_bearer(app, &method, &path, &agent_token).await;
        assert_error(&reply, 403, "user_session_required");
    }
    // A user session is not an agent.
    assert_error(
        &call(&mut alice, &Method::GET, "/agent/me").await,
        401,
        "session_invalid",
    );

    // Bad agent grants.
    let empty = alice.post_json("/agents", &json!({ "name": "   " })).await;
    assert_error(&empty, 422, "invalid_agent_name");
    let not_json = alice
        .request(Method::POST, "/agents")
        .header(CONTENT_TYPE, "application/json")
        .body("{not json");
    assert_error(&alice.send(not_json).await, 422, "invalid_body");
    let no_type = alice.request(Method::POST, "/agents").body("{}");
    let no_type = alice.send(no_type).await;
    assert!(no_type.status.is_client_error(), "{no_type:?}");
    let no_name = alice.post_json("/agents", &json!({ "nome": 1 })).await;
    assert!(no_name.status.is_client_error(), "{no_name:?}");

    // Not found.
    for path in [
        format!("/sessions/{UNKNOWN_ID}"),
        "/sessions/not-a-uuid".to_owned(),
        "/agents/no-such-agent".to_owned(),
    ] {
        assert_error(
            &call(&mut alice, &Method::DELETE, &path).await,
            404,
            "not_found",
        );
    }

    // Revocations that work.
    call(
        &mut alice,
        &Method::DELETE,
        &format!("/sessions/{laptop_id}"),
    )
    .await
    .assert_status(204);
    assert_error(
        &call(&mut laptop, &Method::GET, "/me").await,
        401,
        "session_revoked",
    );
    let _phone = logged_in(app, "alice").await;
    let others = call(&mut alice, &Method::POST, "/sessions/revoke-others").await;
    others.assert_status(200);
    assert_eq!(others.json(), json!({ "revoked": 1 }));
    call(&mut alice, &Method::DELETE, &format!("/agents/{agent_id}"))
        .await
        .assert_status(204);

    // Bearer rejections: no token, a forged one, a disconnected one.
    let mut nobody = app.browser(UA);
    let reply = call(&mut nobody, &Method::GET, "/agent/me").await;
    assert_error(&reply, 401, "session_missing");
    assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer"));
    let reply = call_bearer(app, &Method::GET, "/agent/me", &forged(&agent_token)).await;
    assert_error(&reply, 401, "session_invalid");
    let reply = call_bearer(app, &Method::GET, "/agent/me", &agent_token).await;
    assert_error(&reply, 401, "session_revoked");

    // Cookie rejections on every route: missing, invalid, revoked.
    refused_everywhere(app, None, "session_missing").await;
    let token = alice.token().expect("token").to_owned();
    refused_everywhere(app, Some(&forged(&token)), "session_invalid").await;
    let mut gone = logged_in(app, "alice").await;
    let gone_token = gone.token().expect("token").to_owned();
    call(&mut gone, &Method::POST, "/logout")
        .await
        .assert_status(303);
    refused_everywhere(app, Some(&gone_token), "session_revoked").await;

    // Refused browser navigations go to the login page.
    for path in ["/me", "/agent/me", "/sessions"] {
        app.browser(UA).navigate(path).await.assert_status(303);
    }

    // Password reset, JSON and form; unknown user; bad body.
    let mut anyone = app.browser(UA);
    let _bob = logged_in(app, "bob").await;
    let reset = anyone
        .post_json(
            "/password-reset",
            &json!({ "username": "bob", "new_password": "bob-password-2" }),
        )
        .await;
    reset.assert_status(200);
    assert_eq!(reset.json(), json!({ "revoked": 1 }));
    let reset = anyone
        .post_form(
            "/password-reset",
            &[("username", "bob"), ("new_password", "bob-password-3")],
        )
        .await;
    reset.assert_status(200);
    let reset = anyone
        .post_json(
            "/password-reset",
            &json!({ "username": "nobody", "new_password": "x" }),
        )
        .await;
    assert_eq!(reset.json(), json!({ "revoked": 0 }));
    let bad = anyone
        .post_json("/password-reset", &json!({ "username": "bob" }))
        .await;
    assert_error(&bad, 422, "invalid_body");

    // Admin: with a reason, without a body, a bad body, a wrong token.
    let _carol = logged_in(app, "carol").await;
    let builder = app.browser(UA);
    let admin = |body: Option<&str>, token: &str| {
        let mut request = builder
            .bare_request(Method::POST, "/admin/users/carol/revoke-all")
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        request
    };
    let reply = anyone
        .send(admin(Some(r#"{"reason": "compromised"}"#), ADMIN_TOKEN))
        .await;
    reply.assert_status(200);
    assert_eq!(reply.json(), json!({ "revoked": 1 }));
    anyone
        .send(admin(None, ADMIN_TOKEN))
        .await
        .assert_status(200);
    assert_error(
        &anyone.send(admin(Some("[1]"), ADMIN_TOKEN)).await,
        422,
        "invalid_body",
    );
    let wrong = anyone.send(admin(None, "not-the-admin-token")).await;
    wrong.assert_status(404);

    // The other admin routes: read the log and the audit, a user's sessions, revoke one,
    // revoke across users; bad queries and bodies; a wrong token.
    let _carol = logged_in(app, "carol").await;
    let admin_get =
        |path: &str, token: &str| builder.bare_request(Method::GET, path).bearer_auth(token);
    let page = anyone
        .send(admin_get("/admin/events?limit=5", ADMIN_TOKEN))
        .await;
    page.assert_status(200);
    let next = page.json()["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    anyone
        .send(admin_get(
            &format!("/admin/events?after={next}&type=session.revoked"),
            ADMIN_TOKEN,
        ))
        .await
        .assert_status(200);
    assert_error(
        &anyone
            .send(admin_get("/admin/events?limit=many", ADMIN_TOKEN))
            .await,
        400,
        "invalid_query",
    );
    anyone
        .send(admin_get("/admin/events", "wrong"))
        .await
        .assert_status(404);
    anyone
        .send(admin_get("/admin/audit?user_id=carol", ADMIN_TOKEN))
        .await
        .assert_status(200);
    assert_error(
        &anyone.send(admin_get("/admin/audit", ADMIN_TOKEN)).await,
        400,
        "invalid_query",
    );
    anyone
        .send(admin_get("/admin/audit?user_id=carol", "wrong"))
        .await
        .assert_status(404);
    let listed = anyone
        .send(admin_get("/admin/users/carol/sessions", ADMIN_TOKEN))
        .await;
    listed.assert_status(200);
    let carols = listed.json()[0]["id"]
        .as_str()
        .expect("carol's session")
        .to_owned();
    anyone
        .send(admin_get("/admin/users/carol/sessions", "wrong"))
        .await
        .assert_status(404);
    let delete = |id: &str, token: &str| {
        builder
            .bare_request(Method::DELETE, &format!("/admin/sessions/{id}"))
            .bearer_auth(token)
    };
    anyone
        .send(delete(&carols, ADMIN_TOKEN))
        .await
        .assert_status(204);
    assert_error(
        &anyone.send(delete(&carols, ADMIN_TOKEN)).await,
        404,
        "not_found",
    );
    anyone
        .send(delete(UNKNOWN_ID, "wrong"))
        .await
        .assert_status(404);
    let matching = |body: &str, token: &str| {
        builder
            .bare_request(Method::POST, "/admin/revoke-matching")
            .bearer_auth(token)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned())
    };
    let dry = anyone
        .send(matching(
            r#"{"user_agent": "Firefox", "dry_run": true}"#,
            ADMIN_TOKEN,
        ))
        .await;
    dry.assert_status(200);
    assert!(dry.json()["matched"].as_u64().expect("a count") >= 1);
    let none = anyone
        .send(matching(
            r#"{"created_before": "2001-01-01T00:00:00Z"}"#,
            ADMIN_TOKEN,
        ))
        .await;
    assert_eq!(none.json(), json!({ "revoked": 0 }));
    assert_error(
        &anyone
            .send(matching(r#"{"dry_run": true}"#, ADMIN_TOKEN))
            .await,
        400,
        "empty_filter",
    );
    assert_error(
        &anyone
            .send(matching(r#"{"ip": "not a network"}"#, ADMIN_TOKEN))
            .await,
        400,
        "invalid_body",
    );
    assert_error(
        &anyone.send(matching("[1]", ADMIN_TOKEN)).await,
        422,
        "invalid_body",
    );
    anyone
        .send(matching("{}", "wrong"))
        .await
        .assert_status(404);

    // A body over 64 KiB; state changes from another site.
    let big = json!({ "name": "x".repeat(70 * 1024) });
    assert_error(
        &alice.post_json("/agents", &big).await,
        413,
        "body_too_large",
    );
    for path in ["/logout", "/password-reset"] {
        let request = alice
            .request(Method::POST, path)
            .header("sec-fetch-site", "cross-site")
            .json(&json!({ "username": "alice", "new_password": "x" }));
        assert_error(&alice.send(request).await, 403, "cross_site_request");
    }

    // Sign out everywhere, last.
    let all = call(&mut alice, &Method::POST, "/sessions/revoke-all").await;
    all.assert_status(200);
    assert!(alice.token().is_none(), "revoke-all clears the cookie");
}

/// `method /scim/v2/Users/{user}` with `token` and, for a `PATCH`, `body` as SCIM JSON.
async fn scim(app: &App, method: Method, user: &str, token: &str, body: &str) -> Reply {
    let mut browser = app.browser(UA);
    let mut request = browser
        .bare_request(method.clone(), &format!("/scim/v2/Users/{user}"))
        .bearer_auth(token);
    if method == Method::PATCH {
        request = request
            .header(CONTENT_TYPE, "application/scim+json")
            .body(body.to_owned());
    }
    browser.send(request).await
}

/// Every SCIM answer but the outage's.
async fn scim_walk(app: &App) {
    let patch = |active: &str| {
        format!(
            r#"{{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{{"op": "replace", "path": "active", "value": {active}}}]}}"#
        )
    };
    for (method, user, token, body, status) in [
        (Method::PATCH, "carol", SCIM_TOKEN, patch("false"), 200),
        (Method::PATCH, "carol", SCIM_TOKEN, patch("true"), 200),
        (Method::PATCH, "carol", SCIM_TOKEN, patch(r#""maybe""#), 400),
        (Method::PATCH, "carol", "wrong", patch("false"), 401),
        (Method::PATCH, "mallory", SCIM_TOKEN, patch("false"), 404),
        (
            Method::PATCH,
            "carol",
            SCIM_TOKEN,
            "x".repeat(70 * 1024),
            413,
        ),
        (Method::DELETE, "carol", SCIM_TOKEN, String::new(), 204),
        (Method::DELETE, "carol", "wrong", String::new(), 401),
        (Method::DELETE, "mallory", SCIM_TOKEN, String::new(), 404),
    ] {
        scim(app, method, user, token, &body)
            .await
            .assert_status(status);
    }
    let mut browser = app.browser(UA);
    let request = browser
        .bare_request(Method::PATCH, "/scim/v2/Users/carol")
        .bearer_auth(SCIM_TOKEN)
        .header(CONTENT_TYPE, "text/plain")
        .body(patch("false"));
    browser.send(request).await.assert_status(415);
}

/// Expired sessions are refused on every route.
async fn expired_walk(app: &App) {
    let alice = logged_in(app, "alice").await;
    let token = alice.token().expect("token").to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    refused_everywhere(app, Some(&token), "session_expired").await;
}

/// A store that cannot answer: 503 on every route, from a node that has the session in its
/// cache (the route's own store call fails) and from one that has not (validation fails).
async fn outage_walk(framework: Framework) -> Vec<Exchange> {
    let settings = settings(&[]);
    let store = FaultyStore::new(MemoryStore::new());
    let shared: Arc<dyn SessionStore> = store.clone();
    let warm = App::serve(
        framework,
        Demo::with_store(&settings, shared.clone()).expect("valid settings"),
    );
    let cold = App::serve(
        framework,
        Demo::with_store(&settings, shared).expect("valid settings"),
    );
    let mut alice = logged_in(&warm, "alice").await;
    let granted = alice
        .post_json("/agents", &json!({ "name": "Calendar bot" }))
        .await;
    granted.assert_status(201);
    let agent_token = granted.json()["token"].as_str().expect("token").to_owned();
    let token = alice.token().expect("token").to_owned();
    store.set_failing(true);

    for (method, path) in &SESSION_ROUTES {
        let reply = call(&mut on(&cold, &token), method, path).await;
        assert_error(&reply, 503, "session_store_unavailable");
    }
    let reply = call_bearer(&cold, &Method::GET, "/agent/me", &agent_token).await;
    assert_error(&reply, 503, "session_store_unavailable");
    let reply = call(&mut on(&warm, &token), &Method::GET, "/sessions").await;
    assert_error(&reply, 503, "session_store_unavailable");

    let mut anyone = warm.browser(UA);
    let reply = anyone
        .post_json(
            "/password-reset",
            &json!({ "username": "alice", "new_password": "new-alice-password" }),
        )
        .await;
    assert_error(&reply, 503, "session_store_unavailable");
    let request = anyone
        .bare_request(Method::POST, "/admin/users/alice/revoke-all")
        .bearer_auth(ADMIN_TOKEN);
    assert_error(
        &anyone.send(request).await,
        503,
        "session_store_unavailable",
    );
    for (method, path, body) in [
        (Method::GET, "/admin/events".to_owned(), None),
        (Method::GET, "/admin/audit?user_id=alice".to_owned(), None),
        (Method::GET, "/admin/users/alice/sessions".to_owned(), None),
        (
            Method::DELETE,
            format!("/admin/sessions/{UNKNOWN_ID}"),
            None,
        ),
        (
            Method::POST,
            "/admin/revoke-matching".to_owned(),
            Some(r#"{"user_agent": "Firefox"}"#),
        ),
    ] {
        let mut request = anyone.bare_request(method, &path).bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        assert_error(
            &anyone.send(request).await,
            503,
            "session_store_unavailable",
        );
    }
    for method in [Method::PATCH, Method::DELETE] {
        let body = r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]}"#;
        assert_error(
            &scim(&warm, method, "alice", SCIM_TOKEN, body).await,
            503,
            "session_store_unavailable",
        );
    }
    store.set_failing(false);

    let mut exchanges = take_exchanges(warm.base_url());
    exchanges.extend(take_exchanges(cold.base_url()));
    exchanges
}

/// Fetches the document from `app` (itself a logged exchange).
async fn fetch_document(app: &App) -> Value {
    let reply = app.browser(UA).get("/openapi.json").await;
    reply.assert_status(200);
    assert_eq!(reply.media_type().as_deref(), Some("application/json"));
    reply.json()
}

async fn every_json_answer_matches_the_document(framework: Framework) {
    record_exchanges(true);
    let app = App::start(
        Target::InProcess(framework),
        &[("ADMIN_TOKEN", ADMIN_TOKEN), ("SCIM_TOKEN", SCIM_TOKEN)],
    )
    .await;
    let api = OpenApi::new(fetch_document(&app).await);
    healthy_walk(&app).await;
    scim_walk(&app).await;
    let mut exchanges = take_exchanges(app.base_url());

    let short = App::start(
        Target::InProcess(framework),
        &[("SESSION_TTL_SECS", "1"), ("ADMIN_TOKEN", ADMIN_TOKEN)],
    )
    .await;
    expired_walk(&short).await;
    exchanges.extend(take_exchanges(short.base_url()));
    exchanges.extend(outage_walk(framework).await);

    let mut findings = Findings::default();
    for exchange in &exchanges {
        api.check(exchange, &mut findings);
    }
    assert!(
        findings.failures.is_empty(),
        "{} of {} answers do not match the document:\n{}",
        findings.failures.len(),
        exchanges.len(),
        findings.failures.join("\n")
    );
    eprintln!(
        "{framework:?}: {} exchanges, {} JSON bodies validated, {} responses seen",
        exchanges.len(),
        findings.validated,
        findings.seen.len()
    );
    // Only axum answers 415 (actix-web's JSON extractor says 400).
    let framework_specific: &[&str] = match framework {
        Framework::Axum => &[],
        Framework::Actix => &["POST /agents 415"],
    };
    let missing: Vec<String> = api
        .responses()
        .into_iter()
        .filter(|r| !findings.seen.contains(r) && !framework_specific.contains(&r.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "documented answers the walk never saw:\n{}",
        missing.join("\n")
    );
    assert!(
        findings.validated >= 60,
        "{} JSON bodies",
        findings.validated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_answers_match_the_document() {
    every_json_answer_matches_the_document(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_answers_match_the_document() {
    every_json_answer_matches_the_document(Framework::Actix).await;
}

/// Both apps serve the same document, and it is `example_support`'s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_apps_serve_the_same_document() {
    let axum = App::start(Target::InProcess(Framework::Axum), &[]).await;
    let actix = App::start(Target::InProcess(Framework::Actix), &[]).await;
    let from_axum = fetch_document(&axum).await;
    assert_eq!(from_axum, fetch_document(&actix).await);
    let expected: Value =
        serde_json::from_str(&example_support::openapi_json()).expect("the document is JSON");
    assert_eq!(from_axum, expected);
    assert_eq!(from_axum["info"]["title"], "session-revocation example app");
}

/// The checks are not vacuous: the schemas refuse wrong bodies, and a JSON answer the
/// document does not describe is a failure.
#[test]
fn the_checker_refuses_what_the_document_does_not_describe() {
    let api = OpenApi::new(
        serde_json::from_str(&example_support::openapi_json()).expect("the document is JSON"),
    );
    let schema = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let session = json!({
        "id": UNKNOWN_ID, "kind": "user", "agent_name": null, "user_agent": UA,
        "ip": "127.0.0.1", "created_at": "2026-01-01T00:00:00Z",
        "last_active_at": "2026-01-01T00:00:00.5Z", "expires_at": "2026-01-08T00:00:00Z",
        "current": true,
    });
    assert_eq!(
        api.schema_errors(&schema("SessionView"), &session),
        Vec::<String>::new()
    );
    let mut wrong = session.clone();
    wrong["kind"] = json!("robot");
    assert!(!api.schema_errors(&schema("SessionView"), &wrong).is_empty());
    let mut wrong = session.clone();
    wrong["created_at"] = json!("yesterday");
    assert!(!api.schema_errors(&schema("SessionView"), &wrong).is_empty());
    let mut wrong = session;
    wrong.as_object_mut().expect("object").remove("agent_name");
    assert!(!api.schema_errors(&schema("SessionView"), &wrong).is_empty());
    for (name, body) in [
        ("SessionRejection", json!({ "error": "not_found" })),
        ("StoreUnavailable", json!({ "error": "session_revoked" })),
        ("Revoked", json!({ "revoked": -1 })),
        (
            "MeView",
            json!({ "user_id": "alice", "kind": "user", "session_id": "x" }),
        ),
        (
            "AgentMeView",
            json!({ "agent_id": "a", "agent_name": "b", "on_behalf_of": "alice",
            "session_id": UNKNOWN_ID, "kind": "user" }),
        ),
    ] {
        assert!(
            !api.schema_errors(&schema(name), &body).is_empty(),
            "{name} accepts {body}"
        );
    }
    // Routes: the most specific template wins; unknown paths have none.
    assert_eq!(
        api.template("/sessions/revoke-all"),
        Some("/sessions/revoke-all")
    );
    assert_eq!(
        api.template(&format!("/sessions/{UNKNOWN_ID}")),
        Some("/sessions/{id}")
    );
    assert_eq!(api.template("/login"), None);
}
