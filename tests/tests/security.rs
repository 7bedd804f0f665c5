//! The security rules of the examples' contract, black-box, against both example apps:
//! a credential's kind follows its transport, agents do not manage, no state change from
//! another site (login CSRF included), failed logins are throttled, the per-user cap, bad
//! settings stop the app with one line, the security headers of HTML answers, and the
//! login page's words after a refused navigation.

use reqwest::Method;
use serde_json::{Value, json};
use session_conformance::{App, Browser, Framework, Reply, Target};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
const ADMIN: &str = "an-admin-token-that-is-long-enough-0123456789";

async fn logged_in(app: &App, user: &str) -> Browser {
    let mut browser = app.browser(UA);
    browser
        .login(user, &format!("{user}-password"))
        .await
        .assert_status(303);
    assert!(browser.token().is_some());
    browser
}

async fn session_ids(browser: &mut Browser) -> Vec<String> {
    let reply = browser.get("/sessions").await;
    reply.assert_status(200);
    let mut ids: Vec<String> = reply
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["id"].as_str().expect("an id").to_owned())
        .collect();
    ids.sort();
    ids
}

#[track_caller]
fn assert_error(reply: &Reply, status: u16, code: &str) {
    reply.assert_status(status);
    assert_eq!(reply.json(), json!({ "error": code }), "{}", reply.text());
}

/// An agent's token for `browser`'s user.
async fn grant(browser: &mut Browser) -> (String, String) {
    let reply = browser
        .post_json("/agents", &json!({"name": "Helper"}))
        .await;
    reply.assert_status(201);
    let body = reply.json();
    (
        body["token"].as_str().expect("a token").to_owned(),
        body["agent_id"].as_str().expect("an id").to_owned(),
    )
}

async fn bearer(app: &App, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
    let mut b = app.browser(UA);
    let mut request = b
        .bare_request(method, path)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/json");
    if let Some(body) = body {
        request = request.json(&body);
    }
    b.send(request).await
}

/// An agent's token in the session cookie is `session_invalid` and deleted; a user's
/// token as a bearer is `session_invalid` with `WWW-Authenticate`.
async fn kind_follows_transport(target: Target) {
    let app = App::start(target, &[]).await;
    let mut alice = logged_in(&app, "alice").await;
    let (agent_token, _) = grant(&mut alice).await;
    // The agent works as a bearer.
    bearer(&app, Method::GET, "/agent/me", &agent_token, None)
        .await
        .assert_status(200);
    // …not as a cookie.
    let mut thief = app.browser(UA);
    thief.set_token(Some(&agent_token));
    let reply = thief.get("/me").await;
    assert_error(&reply, 401, "session_invalid");
    let cleared = reply.session_cookie().expect("the cookie is deleted");
    assert_eq!(cleared.attr("max-age"), Some("0"));
    // A user's token is not a bearer.
    let user_token = alice.token().expect("a cookie").to_owned();
    let reply = bearer(&app, Method::GET, "/me", &user_token, None).await;
    assert_error(&reply, 401, "session_invalid");
    assert_eq!(
        reply.header("www-authenticate").as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    // Both sessions are still alive.
    alice.get("/me").await.assert_status(200);
    bearer(&app, Method::GET, "/agent/me", &agent_token, None)
        .await
        .assert_status(200);
}

/// An agent gets 403 `user_session_required` on every management route, JSON and page,
/// and nothing changes.
async fn agents_do_not_manage(target: Target) {
    let app = App::start(target, &[]).await;
    let mut alice = logged_in(&app, "alice").await;
    let _second = logged_in(&app, "alice").await;
    let (agent, agent_id) = grant(&mut alice).await;
    let before = session_ids(&mut alice).await;
    let some_id = before[0].clone();
    let routes: [(Method, String, Option<Value>); 9] = [
        (Method::GET, "/sessions".into(), None),
        (Method::DELETE, format!("/sessions/{some_id}"), None),
        (Method::POST, "/sessions/revoke-others".into(), None),
        (Method::POST, "/sessions/revoke-all".into(), None),
        (
            Method::POST,
            "/agents".into(),
            Some(json!({"name": "Another"})),
        ),
        (Method::DELETE, format!("/agents/{agent_id}"), None),
        (Method::GET, "/account/sessions".into(), None),
        (Method::POST, "/account/sessions/revoke-others".into(), None),
        (Method::POST, "/account/sessions/revoke-all".into(), None),
    ];
    for (method, path, body) in routes {
        let reply = bearer(&app, method.clone(), &path, &agent, body).await;
        assert_error(&reply, 403, "user_session_required");
        assert_eq!(
            session_ids(&mut alice).await,
            before,
            "{method} {path} changed nothing"
        );
    }
}

/// A cross-site state change with the session cookie is refused before anything
/// changes, on every state-changing route: `Sec-Fetch-Site: cross-site`, a foreign
/// `Origin`, `same-site` without a trusted origin.
async fn no_cross_site_state_change(target: Target) {
    let app = App::start(target, &[]).await;
    let mut alice = logged_in(&app, "alice").await;
    let mut other = logged_in(&app, "alice").await;
    let (_, agent_id) = grant(&mut alice).await;
    let other_id = {
        let me = other.get("/me").await.json();
        me["session_id"].as_str().unwrap().to_owned()
    };
    let before = session_ids(&mut alice).await;
    let attacks: [&[(&str, &str)]; 4] = [
        &[("sec-fetch-site", "cross-site")],
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        &[("sec-fetch-site", "same-site")],
    ];
    let routes: [(Method, String); 9] = [
        (Method::POST, "/logout".into()),
        (Method::DELETE, format!("/sessions/{other_id}")),
        (Method::POST, "/sessions/revoke-others".into()),
        (Method::POST, "/sessions/revoke-all".into()),
        (Method::POST, "/agents".into()),
        (Method::DELETE, format!("/agents/{agent_id}")),
        (Method::POST, "/account/sessions/revoke-all".into()),
        (Method::POST, "/password-reset".into()),
        (Method::POST, "/login".into()),
    ];
    for headers in attacks {
        for (method, path) in &routes {
            let mut request = alice
                .request(method.clone(), path)
                .json(&json!({"name": "x", "username": "alice", "new_password": "pwned"}));
            for (n, v) in headers {
                request = request.header(*n, *v);
            }
            let reply = alice.send(request).await;
            assert_error(&reply, 403, "cross_site_request");
            assert!(reply.raw_set_cookies().is_empty(), "{method} {path}");
        }
        assert_eq!(
            session_ids(&mut alice).await,
            before,
            "{headers:?}: nothing changed"
        );
    }
    // Login CSRF: a cross-site login without any cookie is refused too.
    let mut stranger = app.browser(UA);
    let request = stranger
        .bare_request(Method::POST, "/login")
        .header("origin", "https://evil.example")
        .form(&[("username", "bob"), ("password", "bob-password")]);
    let reply = stranger.send(request).await;
    assert_error(&reply, 403, "cross_site_request");
    assert!(reply.session_cookie().is_none());
    // The app's own origin passes.
    let request = alice
        .request(Method::POST, "/sessions/revoke-others")
        .header("origin", app.base_url())
        .header("sec-fetch-site", "same-origin");
    alice.send(request).await.assert_status(200);
    // The old password still works: the password reset never ran.
    logged_in(&app, "alice").await;
}

/// Ten failures for one name within a minute: then 429 with `Retry-After`, the right
/// password included; other names are not affected.
async fn failed_logins_are_throttled(target: Target) {
    let app = App::start(target, &[]).await;
    let mut b = app.browser(UA);
    for _ in 0..10 {
        b.login("bob", "wrong").await.assert_status(401);
    }
    let reply = b.login("bob", "bob-password").await;
    reply.assert_status(429);
    let wait: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(reply.session_cookie().is_none());
    logged_in(&app, "carol").await;
}

/// `SESSION_MAX_PER_USER=2`: the third login revokes the oldest session (reason
/// `session_limit`, actor `system`, in the audit).
async fn the_cap_revokes_the_oldest(target: Target) {
    let app = App::start(
        target,
        &[("SESSION_MAX_PER_USER", "2"), ("ADMIN_TOKEN", ADMIN)],
    )
    .await;
    let mut first = logged_in(&app, "alice").await;
    let mut second = logged_in(&app, "alice").await;
    let mut third = logged_in(&app, "alice").await;
    let reply = first.get("/me").await;
    assert_error(&reply, 401, "session_revoked");
    second.get("/me").await.assert_status(200);
    assert_eq!(session_ids(&mut third).await.len(), 2);
    let audit = bearer(&app, Method::GET, "/admin/audit?user_id=alice", ADMIN, None).await;
    audit.assert_status(200);
    let capped: Vec<Value> = audit
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "session_limit")
        .cloned()
        .collect();
    assert_eq!(capped.len(), 1, "{capped:?}");
    assert_eq!(capped[0]["actor"], "system");
}

/// Pages carry the security headers; the login page names the demo users and says in
/// words why a revoked or expired navigation landed there.
async fn pages_and_their_headers(target: Target) {
    let app = App::start(target, &[]).await;
    let mut alice = logged_in(&app, "alice").await;
    for reply in [
        app.browser(UA).navigate("/login").await,
        alice.navigate("/account/sessions").await,
        alice.navigate("/").await,
    ] {
        reply.assert_status(200);
        let csp = reply.header("content-security-policy").expect("a CSP");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(reply.header("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(
            reply.header("referrer-policy").as_deref(),
            Some("no-referrer")
        );
    }
    let login = app.browser(UA).navigate("/login").await.text();
    for user in ["alice", "bob", "carol"] {
        assert!(login.contains(&format!("{user}-password")), "names {user}");
    }
    // Revoked: the navigation lands on the login page with the reason, in words.
    let mut other = logged_in(&app, "alice").await;
    alice.post("/sessions/revoke-all").await.assert_status(200);
    let reply = other.navigate("/account/sessions").await;
    reply.assert_status(303);
    let location = reply.header("location").unwrap();
    assert_eq!(
        location,
        "/login?return_to=%2Faccount%2Fsessions&reason=session_revoked"
    );
    let page = other.navigate(&location).await.text();
    assert!(page.contains("ended from another device"), "{page}");
}

/// With `Secure` (the default), the cookie is `__Host-session`: `Secure`, `Path=/`, no
/// `Domain`.
async fn secure_cookies_use_the_host_prefix(target: Target) {
    let app = App::start_with(target, &[], &["SESSION_COOKIE_SECURE"]).await;
    let mut b = app.browser(UA);
    let reply = b.login("alice", "alice-password").await;
    reply.assert_status(303);
    let raw = reply.raw_set_cookies();
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert!(raw[0].starts_with("__Host-session="), "{}", raw[0]);
    assert!(
        raw[0].contains("; Secure") && raw[0].contains("; Path=/"),
        "{}",
        raw[0]
    );
    assert!(
        !raw[0].to_ascii_lowercase().contains("domain="),
        "{}",
        raw[0]
    );
}

/// A bad setting stops the app before it listens: one line naming the variable, a non-zero
/// status, no panic.
fn bad_settings_stop_the_app(framework: Framework) {
    let binary = session_conformance::ensure_built(framework.binary());
    let cases: [(&[(&str, &str)], &str); 8] = [
        (
            &[("SESSION_CACHE_SECS", "900"), ("SESSION_TTL_SECS", "60")],
            "SESSION_CACHE_SECS",
        ),
        (&[("SESSION_TTL_SECS", "soon")], "SESSION_TTL_SECS"),
        (&[("ADMIN_TOKEN", "short")], "ADMIN_TOKEN"),
        (&[("SESSION_MAX_PER_USER", "-1")], "SESSION_MAX_PER_USER"),
        (&[("SESSION_KEYS", "c2hvcnQ")], "SESSION_KEYS"),
        (&[("SESSION_STORE", "mongodb://x")], "SESSION_STORE"),
        (
            &[
                ("OIDC_ISSUER", "https://idp.example"),
                ("OIDC_CLIENT_ID", "app"),
                ("PUBLIC_URL", "http://127.0.0.1:3000"),
            ],
            "OIDC_CLIENT_SECRET",
        ),
        (&[("SCIM_TOKEN", "short")], "SCIM_TOKEN"),
    ];
    for (vars, name) in cases {
        let mut command = std::process::Command::new(&binary);
        command.env("PORT", "0").env("BIND", "127.0.0.1");
        for (n, v) in vars {
            command.env(n, v);
        }
        let out = command.output().expect("the app runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{name}: exits non-zero");
        assert!(!stdout.contains("listening on"), "{name}: never listens");
        assert!(!stderr.contains("panicked"), "{name}: no panic: {stderr}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("configuration error"))
            .collect();
        assert_eq!(lines.len(), 1, "{name}: one line: {stderr}");
        assert!(lines[0].contains(name), "{name}: {stderr}");
    }
}

macro_rules! both {
    ($($scenario:ident),* $(,)?) => {
        mod axum {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Target::Binary(super::Framework::Axum)).await;
                }
            )*
            #[test]
            fn bad_settings_stop_the_app() {
                super::bad_settings_stop_the_app(super::Framework::Axum);
            }
        }
        mod actix {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Target::Binary(super::Framework::Actix)).await;
                }
            )*
            #[test]
            fn bad_settings_stop_the_app() {
                super::bad_settings_stop_the_app(super::Framework::Actix);
            }
        }
    };
}

both!(
    kind_follows_transport,
    agents_do_not_manage,
    no_cross_site_state_change,
    failed_logins_are_throttled,
    the_cap_revokes_the_oldest,
    pages_and_their_headers,
    secure_cookies_use_the_host_prefix,
);
