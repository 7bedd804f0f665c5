//! Black-box scenarios from the examples' HTTP contract (`examples/README.md`), run against every example app.
//!
//! Each scenario is an `async fn(target)` that starts its own app instance, so they run
//! in parallel; [`conformance!`] turns the list into one `#[tokio::test]` per scenario
//! and per app (`axum::login_sets_session_cookie`, …). A new example gets the whole
//! suite by one more line in the `conformance!` call at the bottom.

use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde_json::{Value, json};
use session_conformance::{
    App, Browser, COOKIE_NAME, Framework, Reply, SECURE_COOKIE_NAME, Target,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
                      AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// `SESSION_TTL_SECS` default, and so the login cookie's `Max-Age`.
const TTL_SECS: i64 = 604_800;

const SESSION_FIELDS: [&str; 9] = [
    "agent_name",
    "created_at",
    "current",
    "expires_at",
    "id",
    "ip",
    "kind",
    "last_active_at",
    "user_agent",
];

// ---------------------------------------------------------------------------------------
// Assertions shared by the scenarios.
// ---------------------------------------------------------------------------------------

/// A login answer: 303 to `location`, one session cookie with exactly the contract's
/// attributes. Returns the new token.
#[track_caller]
fn assert_logged_in(reply: &Reply, location: &str, secure: bool) -> String {
    reply.assert_status(303);
    assert_eq!(reply.header("location").as_deref(), Some(location));
    let cookie = reply
        .session_cookie()
        .unwrap_or_else(|| panic!("login set no {COOKIE_NAME} cookie: {:?}", reply.headers));
    assert!(!cookie.value.is_empty(), "empty token: {}", cookie.raw);
    let mut expected = vec!["httponly", "max-age", "path", "samesite"];
    if secure {
        expected.push("secure");
    }
    expected.sort_unstable();
    assert_eq!(cookie.attribute_names(), expected, "{}", cookie.raw);
    assert_eq!(cookie.attr("path"), Some("/"), "{}", cookie.raw);
    assert_eq!(cookie.attr("samesite"), Some("Lax"), "{}", cookie.raw);
    assert_eq!(cookie.attr("max-age"), Some("604800"), "{}", cookie.raw);
    cookie.value
}

/// The one `Set-Cookie` of `reply` deletes the session cookie: same name, empty value,
/// `Path=/`, `Max-Age=0`, an `Expires` in the past, `HttpOnly`, `SameSite=Lax`, and
/// `Secure` exactly when `secure`. Nothing else.
#[track_caller]
fn assert_deletes_cookie(reply: &Reply, secure: bool) {
    let raw = reply.raw_set_cookies();
    assert_eq!(
        raw.len(),
        1,
        "expected one deleting Set-Cookie, got {raw:?}"
    );
    let cookie = reply.session_cookie().expect("a session Set-Cookie");
    let name = if secure {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    };
    assert_eq!(cookie.name, name, "{}", cookie.raw);
    assert_eq!(cookie.value, "", "{}", cookie.raw);
    let mut expected = vec!["expires", "httponly", "max-age", "path", "samesite"];
    if secure {
        expected.push("secure");
    }
    expected.sort_unstable();
    assert_eq!(cookie.attribute_names(), expected, "{}", cookie.raw);
    assert_eq!(cookie.attr("path"), Some("/"), "{}", cookie.raw);
    assert_eq!(cookie.attr("max-age"), Some("0"), "{}", cookie.raw);
    assert_eq!(cookie.attr("samesite"), Some("Lax"), "{}", cookie.raw);
    let expires = cookie
        .expires()
        .unwrap_or_else(|| panic!("Expires is not an HTTP date: {}", cookie.raw));
    assert!(
        expires < SystemTime::now(),
        "Expires not in the past: {}",
        cookie.raw
    );
}

/// A cookie-session rejection: 401, `Cache-Control: no-store`, JSON `{"error": code}`,
/// and the deleting cookie.
#[track_caller]
fn assert_rejected(reply: &Reply, code: &str) {
    assert_rejected_body(reply, code);
    assert_deletes_cookie(reply, false);
}

/// A rejection of a request that carried no cookie: as [`assert_rejected`] with no
/// `Set-Cookie` at all.
#[track_caller]
fn assert_rejected_without_cookie(reply: &Reply, code: &str) {
    assert_rejected_body(reply, code);
    assert_eq!(reply.raw_set_cookies(), Vec::<String>::new());
}

#[track_caller]
fn assert_rejected_body(reply: &Reply, code: &str) {
    reply.assert_status(401);
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(reply.media_type().as_deref(), Some("application/json"));
    assert_eq!(reply.json(), json!({ "error": code }));
}

/// A 200 JSON answer; returns the body.
#[track_caller]
fn ok_json(reply: &Reply) -> Value {
    reply.assert_status(200);
    assert_eq!(reply.media_type().as_deref(), Some("application/json"));
    reply.json()
}

/// `GET /me` → 200 `{"user_id", "session_id", "kind": "user"}`; returns the session id.
async fn me(browser: &mut Browser, user: &str) -> String {
    let body = ok_json(&browser.get("/me").await);
    let session_id = body["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no session_id string in {body}"))
        .to_owned();
    assert_eq!(
        body,
        json!({ "user_id": user, "session_id": session_id, "kind": "user" })
    );
    session_id
}

/// `GET /sessions` → 200 array whose entries each have exactly the contract's fields.
async fn sessions(browser: &mut Browser) -> Vec<Value> {
    let body = ok_json(&browser.get("/sessions").await);
    let list = body
        .as_array()
        .unwrap_or_else(|| panic!("/sessions is not an array: {body}"))
        .clone();
    for entry in &list {
        let mut keys: Vec<&str> = entry
            .as_object()
            .unwrap_or_else(|| panic!("entry is not an object: {entry}"))
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, SESSION_FIELDS, "{entry}");
    }
    list
}

fn ids(list: &[Value]) -> Vec<&str> {
    list.iter().map(|e| e["id"].as_str().expect("id")).collect()
}

/// An RFC 3339 timestamp in UTC.
#[track_caller]
fn timestamp(entry: &Value, field: &str) -> OffsetDateTime {
    let text = entry[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string: {entry}"));
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .unwrap_or_else(|e| panic!("{field} {text:?} is not RFC 3339: {e}"));
    assert!(at.offset().is_utc(), "{field} {text:?} is not UTC");
    at
}

/// A browser that has logged in as `user` with the demo password `USER-password`.
async fn logged_in(app: &App, user_agent: &str, user: &str) -> Browser {
    let mut browser = app.browser(user_agent);
    let password = format!("{user}-password");
    assert_logged_in(&browser.login(user, &password).await, "/", false);
    browser
}

/// `token` with one character changed inside the alphabet it came from (hex stays hex,
/// base64url stays base64url), away from the ends of a segment so the change is never
/// lost in padding bits.
fn forge(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let mid = chars.len() / 2;
    let i = (mid..chars.len().saturating_sub(1))
        .chain(1..mid)
        .find(|&i| {
            chars[i].is_ascii_alphanumeric()
                && chars[i - 1].is_ascii_alphanumeric()
                && chars[i + 1].is_ascii_alphanumeric()
        })
        .unwrap_or_else(|| panic!("no character to flip in {token:?}"));
    chars[i] = match chars[i] {
        '9' => '0',
        'f' => 'a',
        'F' => 'A',
        c @ ('0'..='8' | 'a'..='e' | 'A'..='E') => char::from(c as u8 + 1),
        c if c.is_ascii_lowercase() => 'a',
        _ => 'A',
    };
    let forged: String = chars.into_iter().collect();
    assert_ne!(forged, token);
    forged
}

// ---------------------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------------------

/// GET /login is the HTML form with `username`, `password` and `return_to`.
async fn login_page_is_a_form(target: Target) {
    let app = App::start(target, &[]).await;
    let mut browser = app.browser(FIREFOX);
    let reply = browser.navigate("/login").await;
    reply.assert_status(200);
    assert_eq!(reply.media_type().as_deref(), Some("text/html"));
    let html = reply.text();
    for field in ["username", "password", "return_to"] {
        assert!(html.contains(field), "no {field} field in {html}");
    }
    assert!(html.to_ascii_lowercase().contains("<form"), "{html}");
    assert_eq!(
        reply.session_cookie(),
        None,
        "GET /login set the session cookie"
    );
}

/// A good login: 303 to `/`, the contract's cookie, and `/me` names the session that
/// `/sessions` marks current.
async fn login_sets_session_cookie(target: Target) {
    let app = App::start(target, &[]).await;
    let mut browser = app.browser(FIREFOX);
    let token = assert_logged_in(&browser.login("alice", "alice-password").await, "/", false);
    assert_eq!(browser.token(), Some(token.as_str()));

    let session_id = me(&mut browser, "alice").await;
    let list = sessions(&mut browser).await;
    assert_eq!(ids(&list), [session_id.as_str()]);
    assert_eq!(list[0]["current"], json!(true));
}

/// Two logins as alice: `/sessions` lists both, newest first, with the contract's fields;
/// `current` only on the asking session.
async fn sessions_lists_every_session_newest_first(target: Target) {
    let app = App::start(target, &[]).await;
    let before = OffsetDateTime::now_utc();
    let mut first = logged_in(&app, FIREFOX, "alice").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut second = logged_in(&app, IPHONE, "alice").await;
    let after = OffsetDateTime::now_utc();
    assert_ne!(first.token(), second.token());

    let first_id = me(&mut first, "alice").await;
    let second_id = me(&mut second, "alice").await;
    assert_ne!(first_id, second_id);

    let list = sessions(&mut first).await;
    assert_eq!(ids(&list), [second_id.as_str(), first_id.as_str()]);
    for (entry, user_agent, current) in [(&list[0], IPHONE, false), (&list[1], FIREFOX, true)] {
        assert_eq!(entry["kind"], json!("user"), "{entry}");
        assert_eq!(entry["agent_name"], Value::Null, "{entry}");
        assert_eq!(entry["user_agent"], json!(user_agent), "{entry}");
        assert_eq!(entry["ip"], json!("127.0.0.1"), "{entry}");
        assert_eq!(entry["current"], json!(current), "{entry}");
        let created = timestamp(entry, "created_at");
        let last_active = timestamp(entry, "last_active_at");
        let expires = timestamp(entry, "expires_at");
        let slack = time::Duration::seconds(1);
        assert!(
            created >= before - slack && created <= after + slack,
            "created_at {created} not within this test ({before} .. {after})"
        );
        assert!(last_active >= created, "{entry}");
        let lifetime = expires - created;
        assert!(
            (lifetime - time::Duration::seconds(TTL_SECS)).abs() <= slack,
            "expires_at - created_at = {lifetime}, not {TTL_SECS}s: {entry}"
        );
    }
    assert!(timestamp(&list[0], "created_at") >= timestamp(&list[1], "created_at"));

    // The other browser sees the same two, with `current` on its own.
    let list = sessions(&mut second).await;
    assert_eq!(ids(&list), [second_id.as_str(), first_id.as_str()]);
    assert_eq!(list[0]["current"], json!(true));
    assert_eq!(list[1]["current"], json!(false));
}

/// DELETE /sessions/{other} → 204; the other browser is then rejected as revoked, and
/// the deleting browser is not.
async fn delete_session_revokes_it(target: Target) {
    let app = App::start(target, &[]).await;
    let mut first = logged_in(&app, FIREFOX, "alice").await;
    let mut second = logged_in(&app, IPHONE, "alice").await;
    let first_id = me(&mut first, "alice").await;
    let second_id = me(&mut second, "alice").await;

    let reply = first.delete(&format!("/sessions/{second_id}")).await;
    reply.assert_status(204);
    assert!(reply.body.is_empty(), "204 with a body: {:?}", reply.text());

    let reply = second.get("/me").await;
    assert_rejected(&reply, "session_revoked");
    assert_eq!(second.token(), None, "the deleting cookie empties the jar");

    assert_eq!(me(&mut first, "alice").await, first_id);
    let list = sessions(&mut first).await;
    assert_eq!(ids(&list), [first_id.as_str()]);

    // Deleting it again: it is no longer one of alice's active sessions.
    first
        .delete(&format!("/sessions/{second_id}"))
        .await
        .assert_status(404);
}

/// POST /sessions/revoke-others → `{"revoked": 2}`; the others are revoked, the current
/// one goes on; a second call revokes nothing.
async fn revoke_others_keeps_current(target: Target) {
    let app = App::start(target, &[]).await;
    let mut first = logged_in(&app, FIREFOX, "alice").await;
    let mut second = logged_in(&app, IPHONE, "alice").await;
    let mut third = logged_in(&app, CHROME, "alice").await;
    let mut bob = logged_in(&app, FIREFOX, "bob").await;
    let third_id = me(&mut third, "alice").await;

    let reply = third.post("/sessions/revoke-others").await;
    assert_eq!(ok_json(&reply), json!({ "revoked": 2 }));
    assert!(
        reply.set_cookies().iter().all(|c| !c.value.is_empty()),
        "revoke-others cleared the current cookie: {:?}",
        reply.raw_set_cookies()
    );

    assert_rejected(&first.get("/me").await, "session_revoked");
    assert_rejected(&second.get("/me").await, "session_revoked");
    assert_eq!(me(&mut third, "alice").await, third_id);
    assert_eq!(ids(&sessions(&mut third).await), [third_id.as_str()]);
    me(&mut bob, "bob").await;

    let reply = third.post("/sessions/revoke-others").await;
    assert_eq!(ok_json(&reply), json!({ "revoked": 0 }));
}

/// POST /sessions/revoke-all → `{"revoked": 2}`, clears the cookie; both sessions, the
/// current one included, are revoked; another user's are not.
async fn revoke_all_signs_out_everywhere(target: Target) {
    let app = App::start(target, &[]).await;
    let mut first = logged_in(&app, FIREFOX, "alice").await;
    let mut second = logged_in(&app, IPHONE, "alice").await;
    let mut bob = logged_in(&app, CHROME, "bob").await;
    let first_token = first.token().expect("token").to_owned();

    let reply = first.post("/sessions/revoke-all").await;
    assert_eq!(ok_json(&reply), json!({ "revoked": 2 }));
    assert_deletes_cookie(&reply, false);
    assert_eq!(first.token(), None);

    assert_rejected_without_cookie(&first.get("/me").await, "session_missing");
    first.set_token(Some(&first_token));
    assert_rejected(&first.get("/me").await, "session_revoked");
    assert_rejected(&second.get("/me").await, "session_revoked");
    me(&mut bob, "bob").await;
}

/// POST /logout → 303 to `/login` with the deleting cookie; the old cookie is then
/// rejected as revoked.
async fn logout_revokes_session(target: Target) {
    let app = App::start(target, &[]).await;
    let mut browser = logged_in(&app, FIREFOX, "alice").await;
    let mut other = logged_in(&app, IPHONE, "alice").await;
    let token = browser.token().expect("token").to_owned();

    let reply = browser.post("/logout").await;
    reply.assert_status(303);
    assert_eq!(reply.header("location").as_deref(), Some("/login"));
    assert_deletes_cookie(&reply, false);
    assert_eq!(browser.token(), None);

    browser.set_token(Some(&token));
    assert_rejected(&browser.get("/me").await, "session_revoked");
    // Only that session: the other browser is still signed in.
    let other_id = me(&mut other, "alice").await;
    assert_eq!(ids(&sessions(&mut other).await), [other_id.as_str()]);
}

/// POST /password-reset (form) revokes all of alice's sessions and changes her password;
/// bob is untouched; an unknown user gets `{"revoked": 0}`.
async fn password_reset_revokes_all_sessions(target: Target) {
    let app = App::start(target, &[]).await;
    let mut first = logged_in(&app, FIREFOX, "alice").await;
    let mut second = logged_in(&app, IPHONE, "alice").await;
    let mut bob = logged_in(&app, CHROME, "bob").await;

    let mut anonymous = app.browser(CHROME);
    let reply = anonymous
        .post_form(
            "/password-reset",
            &[
                ("username", "alice"),
                ("new_password", "new-alice-password"),
            ],
        )
        .await;
    assert_eq!(ok_json(&reply), json!({ "revoked": 2 }));

    assert_rejected(&first.get("/me").await, "session_revoked");
    assert_rejected(&second.get("/me").await, "session_revoked");
    me(&mut bob, "bob").await;

    let mut browser = app.browser(FIREFOX);
    let reply = browser.login("alice", "alice-password").await;
    reply.assert_status(401);
    assert_eq!(reply.media_type().as_deref(), Some("text/html"));
    assert_eq!(reply.raw_set_cookies(), Vec::<String>::new());
    assert_eq!(browser.token(), None);

    let reply = browser.login("alice", "new-alice-password").await;
    assert_logged_in(&reply, "/", false);
    me(&mut browser, "alice").await;

    let reply = anonymous
        .post_form(
            "/password-reset",
            &[
                ("username", "mallory"),
                ("new_password", "whatever-password"),
            ],
        )
        .await;
    assert_eq!(ok_json(&reply), json!({ "revoked": 0 }));
}

/// POST /password-reset also takes JSON.
async fn password_reset_accepts_json(target: Target) {
    let app = App::start(target, &[]).await;
    let mut carol = logged_in(&app, FIREFOX, "carol").await;

    let mut anonymous = app.browser(CHROME);
    let reply = anonymous
        .post_json(
            "/password-reset",
            &json!({ "username": "carol", "new_password": "new-carol-password" }),
        )
        .await;
    assert_eq!(ok_json(&reply), json!({ "revoked": 1 }));
    assert_rejected(&carol.get("/me").await, "session_revoked");

    let mut browser = app.browser(FIREFOX);
    browser
        .login("carol", "carol-password")
        .await
        .assert_status(401);
    assert_logged_in(
        &browser.login("carol", "new-carol-password").await,
        "/",
        false,
    );
}

/// Bob cannot revoke alice's session by its id: 404, and alice goes on.
async fn cannot_delete_another_users_session(target: Target) {
    let app = App::start(target, &[]).await;
    let mut alice = logged_in(&app, FIREFOX, "alice").await;
    let mut bob = logged_in(&app, IPHONE, "bob").await;
    let alice_id = me(&mut alice, "alice").await;

    bob.delete(&format!("/sessions/{alice_id}"))
        .await
        .assert_status(404);

    assert_eq!(me(&mut alice, "alice").await, alice_id);
    assert_eq!(ids(&sessions(&mut alice).await), [alice_id.as_str()]);
    me(&mut bob, "bob").await;
}

/// DELETE of an id nobody has → 404, and nothing is revoked.
async fn delete_unknown_session_is_404(target: Target) {
    let app = App::start(target, &[]).await;
    let mut alice = logged_in(&app, FIREFOX, "alice").await;
    let alice_id = me(&mut alice, "alice").await;

    let unknown = uuid::Uuid::new_v4();
    alice
        .delete(&format!("/sessions/{unknown}"))
        .await
        .assert_status(404);
    assert_eq!(ids(&sessions(&mut alice).await), [alice_id.as_str()]);
}

/// GET /me without a cookie → 401 `session_missing`, and no `Set-Cookie`.
async fn missing_cookie_is_rejected_without_set_cookie(target: Target) {
    let app = App::start(target, &[]).await;
    let mut browser = app.browser(FIREFOX);
    assert_rejected_without_cookie(&browser.get("/me").await, "session_missing");
    assert_rejected_without_cookie(&browser.get("/sessions").await, "session_missing");
}

/// A token of the right shape with one character changed → 401 `session_invalid` with
/// the deleting cookie; the real session is not harmed.
async fn forged_token_is_invalid(target: Target) {
    let app = App::start(target, &[]).await;
    let mut alice = logged_in(&app, FIREFOX, "alice").await;
    let token = alice.token().expect("token").to_owned();
    let alice_id = me(&mut alice, "alice").await;

    let mut forger = app.browser(IPHONE);
    forger.set_token(Some(&forge(&token)));
    assert_rejected(&forger.get("/me").await, "session_invalid");

    assert_eq!(me(&mut alice, "alice").await, alice_id);
}

/// A cookie value that is no token at all → 401 `session_invalid` with the deleting cookie.
async fn garbage_cookie_is_invalid(target: Target) {
    let app = App::start(target, &[]).await;
    for garbage in ["garbage", "not-a-token.at-all", "AAAA"] {
        let mut browser = app.browser(FIREFOX);
        browser.set_token(Some(garbage));
        assert_rejected(&browser.get("/me").await, "session_invalid");
    }
}

/// A browser navigation to `/` with a revoked cookie → 303 to `/login?return_to=%2F`
/// with the deleting cookie; with no cookie, the same redirect and no `Set-Cookie`; with
/// a good one, the page.
async fn navigation_with_revoked_cookie_redirects_to_login(target: Target) {
    let app = App::start(target, &[]).await;
    let mut first = logged_in(&app, FIREFOX, "alice").await;
    let mut second = logged_in(&app, IPHONE, "alice").await;
    let second_token = second.token().expect("token").to_owned();

    let reply = second.navigate("/").await;
    reply.assert_status(200);
    assert_eq!(reply.media_type().as_deref(), Some("text/html"));
    let html = reply.text();
    assert!(html.contains("alice"), "{html}");
    assert!(html.contains("/account/sessions"), "{html}");
    assert!(html.contains("/logout"), "{html}");

    revoke(&mut first, &mut second).await;
    second.set_token(Some(&second_token));
    assert_redirects_to_login(&mut second, "/", "%2F", true).await;
    assert_redirects_to_login(&mut app.browser(CHROME), "/", "%2F", false).await;
}

/// `GET /account/sessions`: the HTML list (device from the user agent, IP, a form per
/// session); a rejected navigation to it → 303 to `/login?return_to=%2Faccount%2Fsessions`.
async fn account_sessions_page(target: Target) {
    let app = App::start(target, &[]).await;
    let mut first = logged_in(&app, FIREFOX, "alice").await;
    let mut second = logged_in(&app, IPHONE, "alice").await;
    let second_token = second.token().expect("token").to_owned();

    let reply = first.navigate("/account/sessions").await;
    reply.assert_status(200);
    assert_eq!(reply.media_type().as_deref(), Some("text/html"));
    let html = reply.text();
    for needle in ["Firefox", "Linux", "127.0.0.1", "<form"] {
        assert!(html.contains(needle), "no {needle:?} in {html}");
    }

    revoke(&mut first, &mut second).await;
    second.set_token(Some(&second_token));
    let (path, encoded) = ("/account/sessions", "%2Faccount%2Fsessions");
    assert_redirects_to_login(&mut second, path, encoded, true).await;
    assert_redirects_to_login(&mut app.browser(CHROME), path, encoded, false).await;
}

/// The value of the first `<input name="NAME" value="…">` in `html`.
fn input_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no input {name} in {html}"));
    let rest = &html[at..];
    let start = rest.find("value=\"").expect("a value") + "value=\"".len();
    rest[start..start + rest[start..].find('"').expect("closing quote")].to_owned()
}

/// The page's forms change nothing without the session's CSRF token, with another
/// session's token, or from another origin; with the token, from the page, they work.
async fn page_forms_are_protected_against_csrf(target: Target) {
    let app = App::start(target, &[]).await;
    let mut first = logged_in(&app, FIREFOX, "alice").await;
    let mut second = logged_in(&app, IPHONE, "alice").await;
    let second_id = me(&mut second, "alice").await;
    let html = first.navigate("/account/sessions").await.text();
    let csrf = input_value(&html, "csrf");
    let others_csrf = input_value(&second.navigate("/account/sessions").await.text(), "csrf");
    assert_ne!(csrf, others_csrf, "tokens are bound to the session");
    assert_eq!(input_value(&html, "session_id"), second_id);

    let origin = app.base_url().to_owned();
    type Pairs<'a> = Vec<(&'a str, &'a str)>;
    let attempts: [(&str, Pairs<'_>, Pairs<'_>); 5] = [
        ("no token", vec![], vec![]),
        (
            "another session's token",
            vec![("csrf", &others_csrf)],
            vec![],
        ),
        (
            "a forged token",
            vec![("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
            vec![],
        ),
        (
            "another origin",
            vec![("csrf", &csrf)],
            vec![("origin", "http://evil.example")],
        ),
        (
            "a cross-site fetch",
            vec![("csrf", &csrf)],
            vec![("sec-fetch-site", "cross-site")],
        ),
    ];
    for (what, extra, headers) in attempts {
        for (action, mut form) in [
            (
                "/account/sessions/revoke",
                vec![("session_id", second_id.as_str())],
            ),
            ("/account/sessions/revoke-others", vec![]),
            ("/account/sessions/revoke-all", vec![]),
        ] {
            form.extend(extra.iter().copied());
            let mut request = first.request(Method::POST, action).form(&form);
            for (name, value) in &headers {
                request = request.header(*name, *value);
            }
            let reply = first.send(request).await;
            reply.assert_status(403);
            assert_eq!(
                reply.raw_set_cookies(),
                Vec::<String>::new(),
                "{what} {action}"
            );
        }
        me(&mut first, "alice").await;
        assert_eq!(
            me(&mut second, "alice").await,
            second_id,
            "{what}: nothing changed"
        );
    }
    // From the page itself: the other session is signed out, and we land back on the page.
    let request = first
        .request(Method::POST, "/account/sessions/revoke")
        .header("origin", origin)
        .form(&[("csrf", csrf.as_str()), ("session_id", second_id.as_str())]);
    let reply = first.send(request).await;
    reply.assert_status(303);
    assert_eq!(
        reply.header("location").as_deref(),
        Some("/account/sessions")
    );
    assert_rejected(&second.get("/me").await, "session_revoked");
    me(&mut first, "alice").await;
}

/// `by` revokes `whom`'s session with `DELETE /sessions/{id}`.
async fn revoke(by: &mut Browser, whom: &mut Browser) {
    let id = me(whom, "alice").await;
    by.delete(&format!("/sessions/{id}"))
        .await
        .assert_status(204);
}

/// A navigation to `path` → 303 to `/login?return_to=PATH` (percent-encoded as
/// `encoded`, or raw), clearing the cookie when the browser sent one; with a revoked
/// cookie (`had_cookie`: it was revoked), `&reason=session_revoked` follows.
async fn assert_redirects_to_login(
    browser: &mut Browser,
    path: &str,
    encoded: &str,
    had_cookie: bool,
) {
    let reply = browser.navigate(path).await;
    reply.assert_status(303);
    let location = reply.header("location").expect("a Location");
    let reason = if had_cookie {
        "&reason=session_revoked"
    } else {
        ""
    };
    assert!(
        location == format!("/login?return_to={encoded}{reason}")
            || location == format!("/login?return_to={path}{reason}"),
        "Location {location:?} for {path}"
    );
    if had_cookie {
        assert_deletes_cookie(&reply, false);
    } else {
        assert_eq!(reply.raw_set_cookies(), Vec::<String>::new());
    }
}

/// `return_to` is followed when it is a local path, and replaced by `/` otherwise.
async fn login_return_to_only_local_paths(target: Target) {
    let app = App::start(target, &[]).await;
    for (return_to, location) in [
        ("/sessions", "/sessions"),
        ("/account/sessions?tab=1", "/account/sessions?tab=1"),
        ("//evil.com", "/"),
        ("https://evil.com", "/"),
        ("/\\evil", "/"),
        ("/\\evil.com/", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.com", "/"),
        ("", "/"),
    ] {
        let mut browser = app.browser(FIREFOX);
        let reply = browser
            .post_form(
                "/login",
                &[
                    ("username", "alice"),
                    ("password", "alice-password"),
                    ("return_to", return_to),
                ],
            )
            .await;
        assert_logged_in(&reply, location, false);
    }
}

/// A bad password or unknown user → 401 HTML form again, no `Set-Cookie`, no session.
async fn bad_login_is_401_without_cookie(target: Target) {
    let app = App::start(target, &[]).await;
    for (user, password) in [
        ("alice", "wrong-password"),
        ("alice", "bob-password"),
        ("alice", ""),
        ("mallory", "mallory-password"),
    ] {
        let mut browser = app.browser(FIREFOX);
        let reply = browser.login(user, password).await;
        reply.assert_status(401);
        assert_eq!(reply.media_type().as_deref(), Some("text/html"));
        assert!(
            reply.text().to_ascii_lowercase().contains("<form"),
            "{}",
            reply.text()
        );
        assert_eq!(reply.raw_set_cookies(), Vec::<String>::new());
    }
    let mut alice = logged_in(&app, FIREFOX, "alice").await;
    assert_eq!(sessions(&mut alice).await.len(), 1);
}

/// A login that brings a session cookie revokes that session and issues a new one.
async fn login_with_existing_cookie_replaces_session(target: Target) {
    let app = App::start(target, &[]).await;
    let mut browser = logged_in(&app, FIREFOX, "alice").await;
    let old_token = browser.token().expect("token").to_owned();
    let old_id = me(&mut browser, "alice").await;

    let new_token = assert_logged_in(&browser.login("alice", "alice-password").await, "/", false);
    assert_ne!(new_token, old_token);
    let new_id = me(&mut browser, "alice").await;
    assert_ne!(new_id, old_id);
    let list = sessions(&mut browser).await;
    assert_eq!(ids(&list), [new_id.as_str()]);
    assert_eq!(list[0]["current"], json!(true));

    let mut replay = app.browser(FIREFOX);
    replay.set_token(Some(&old_token));
    assert_rejected(&replay.get("/me").await, "session_revoked");
}

/// With `SESSION_COOKIE_SECURE` unset the app's default is `Secure`: on the login cookie
/// and on every deleting cookie.
async fn cookie_is_secure_by_default(target: Target) {
    let app = App::start_with(target, &[], &["SESSION_COOKIE_SECURE"]).await;
    let mut browser = app.browser(FIREFOX);
    let token = assert_logged_in(&browser.login("alice", "alice-password").await, "/", true);

    let reply = browser.post("/logout").await;
    reply.assert_status(303);
    assert_deletes_cookie(&reply, true);

    browser.set_token(Some(&token));
    let reply = browser.get("/me").await;
    assert_rejected_body(&reply, "session_revoked");
    assert_deletes_cookie(&reply, true);

    browser.set_token(Some("garbage"));
    let reply = browser.get("/me").await;
    assert_rejected_body(&reply, "session_invalid");
    assert_deletes_cookie(&reply, true);
}

/// Malformed cookies get a 4xx, never a 5xx or a dropped connection.
async fn malformed_cookies_get_4xx(target: Target) {
    let app = App::start(target, &[]).await;
    let alice = logged_in(&app, FIREFOX, "alice").await;
    let token = alice.token().expect("token").to_owned();
    let big = "A".repeat(64 * 1024);
    let cookies: Vec<Vec<u8>> = vec![
        format!("{COOKIE_NAME}={token}; {COOKIE_NAME}={token}").into_bytes(),
        format!("{COOKIE_NAME}={token}; {COOKIE_NAME}=other").into_bytes(),
        format!("{COOKIE_NAME}={big}").into_bytes(),
        [format!("{COOKIE_NAME}=").as_bytes(), b"\xff\xfe\x80abc"].concat(),
        format!("{COOKIE_NAME}={}", &token[..token.len() / 2]).into_bytes(),
        format!("{COOKIE_NAME}={token}A").into_bytes(),
    ];
    let mut browser = app.browser(FIREFOX);
    for cookie in cookies {
        let shown = String::from_utf8_lossy(&cookie[..cookie.len().min(80)]).into_owned();
        let request = browser.bare_request(Method::GET, "/me").header(
            "cookie",
            reqwest::header::HeaderValue::from_bytes(&cookie).expect("header bytes"),
        );
        let reply = browser.send(request).await;
        assert!(
            reply.status.is_client_error(),
            "cookie {shown:?}: status {} body {:?}",
            reply.status,
            reply.text()
        );
    }
    // A token both as cookie and as bearer.
    let request = alice.request(Method::GET, "/me").bearer_auth(&token);
    let reply = browser.send(request).await;
    assert!(
        reply.status.is_client_error(),
        "cookie and bearer: status {} body {:?}",
        reply.status,
        reply.text()
    );
}

// ---------------------------------------------------------------------------------------
// Every scenario, for every example app.
// ---------------------------------------------------------------------------------------

/// `conformance!(module => target, …)`: a module of `#[tokio::test]`s per app (a binary, or
/// the same app served in-process), one per scenario.
macro_rules! conformance {
    (@tests $target:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                super::$scenario($target).await;
            }
        )*
    };
    ($($module:ident => $target:expr),* $(,)?) => {
        $(
            mod $module {
                #[allow(unused_imports)]
                use super::{Framework, Target};
                conformance!(@tests $target;
                    login_page_is_a_form,
                    login_sets_session_cookie,
                    sessions_lists_every_session_newest_first,
                    delete_session_revokes_it,
                    revoke_others_keeps_current,
                    revoke_all_signs_out_everywhere,
                    logout_revokes_session,
                    password_reset_revokes_all_sessions,
                    password_reset_accepts_json,
                    cannot_delete_another_users_session,
                    delete_unknown_session_is_404,
                    missing_cookie_is_rejected_without_set_cookie,
                    forged_token_is_invalid,
                    garbage_cookie_is_invalid,
                    navigation_with_revoked_cookie_redirects_to_login,
                    account_sessions_page,
                    page_forms_are_protected_against_csrf,
                    login_return_to_only_local_paths,
                    bad_login_is_401_without_cookie,
                    login_with_existing_cookie_replaces_session,
                    cookie_is_secure_by_default,
                    malformed_cookies_get_4xx,
                );
            }
        )*
    };
}

conformance!(
    axum => Target::Binary(Framework::Axum),
    actix => Target::Binary(Framework::Actix),
    axum_in_process => Target::InProcess(Framework::Axum),
    actix_in_process => Target::InProcess(Framework::Actix),
);
