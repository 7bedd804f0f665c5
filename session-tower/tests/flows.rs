//! The axum helpers (`sign_in`, `sign_out`, `sign_out_everywhere`, `clear_cookie`): each
//! answer's exact `Set-Cookie` and `Location`, through a real axum router.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::Response;
use axum::routing::post;
use session_core::{
    ClientInfo, KeySet, MemoryStore, Principal, SessionConfig, SessionGate, SessionManager, UserId,
};
use session_tower::{SessionLayer, ValidSession};
use tower::ServiceExt as _;

const REMOVAL: &str = "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";

fn gate() -> SessionGate {
    let manager = SessionManager::new(
        Arc::new(MemoryStore::new()),
        KeySet::random(),
        SessionConfig::default(),
    )
    .expect("default settings");
    SessionGate::new(manager)
}

/// `__Host-session=TOKEN; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=604800`, its token.
fn issued_cookie(set_cookie: &str) -> String {
    let (token, rest) = set_cookie
        .strip_prefix("__Host-session=")
        .and_then(|s| s.split_once(';'))
        .unwrap_or_else(|| panic!("not a session cookie: {set_cookie}"));
    assert_eq!(token.len(), session_core::token::TOKEN_LEN, "{set_cookie}");
    assert_eq!(
        rest, " HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=604800",
        "{set_cookie}"
    );
    token.to_owned()
}

fn all(res: &Response, name: axum::http::HeaderName) -> Vec<String> {
    res.headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[derive(serde::Deserialize)]
struct Login {
    user: String,
    return_to: Option<String>,
}

async fn login(
    State(gate): State<SessionGate>,
    headers: HeaderMap,
    current: Option<ValidSession>,
    Query(q): Query<Login>,
) -> Response {
    let user = UserId::from(q.user.as_str());
    let epoch = gate.manager().login_epoch(&user).await.unwrap();
    let current = current.map(|ValidSession(s)| s);
    let client = session_tower::client_info(&headers, None);
    session_tower::sign_in(
        &gate,
        epoch,
        user,
        client,
        q.return_to.as_deref(),
        current.as_ref(),
    )
    .await
}

async fn logout(State(gate): State<SessionGate>, ValidSession(s): ValidSession) -> Response {
    session_tower::sign_out(&gate, &s, "/login").await
}

async fn everywhere(State(gate): State<SessionGate>, ValidSession(s): ValidSession) -> Response {
    session_tower::sign_out_everywhere(&gate, &s, "/login").await
}

fn app(gate: &SessionGate) -> Router {
    Router::new()
        .route("/login", post(login))
        .layer(SessionLayer::new(gate.clone()).optional().guard_forms())
        .merge(
            Router::new()
                .route("/logout", post(logout))
                .route("/everywhere", post(everywhere))
                .layer(SessionLayer::new(gate.clone())),
        )
        .with_state(gate.clone())
}

async fn call(gate: &SessionGate, uri: &str, token: Option<&str>) -> Response {
    let mut req = Request::post(uri);
    if let Some(token) = token {
        req = req.header(COOKIE, format!("__Host-session={token}"));
    }
    app(gate)
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_in_sets_the_cookie_and_goes_to_a_local_return_to_only() {
    let gate = gate();
    for (return_to, location) in [
        ("%2Faccount%2Fsessions%3Ftab%3D1", "/account/sessions?tab=1"),
        ("%2F%2Fevil.example", "/"),
        ("https%3A%2F%2Fevil.example", "/"),
        ("%2F%5Cevil.example", "/"),
    ] {
        let res = call(
            &gate,
            &format!("/login?user=alice&return_to={return_to}"),
            None,
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(all(&res, LOCATION), [location], "{return_to}");
        let cookies = all(&res, SET_COOKIE);
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        let token = issued_cookie(&cookies[0]);
        assert!(gate.manager().validate(token.as_bytes()).await.is_ok());
    }
}

#[tokio::test]
async fn signing_in_again_revokes_the_session_the_request_came_with() {
    let gate = gate();
    let first = call(&gate, "/login?user=alice", None).await;
    let old = issued_cookie(&all(&first, SET_COOKIE)[0]);
    let res = call(&gate, "/login?user=alice", Some(&old)).await;
    let new = issued_cookie(&all(&res, SET_COOKIE)[0]);
    assert_ne!(old, new);
    assert!(
        gate.manager().validate(old.as_bytes()).await.is_err(),
        "the old session lives"
    );
}

#[tokio::test]
async fn sign_out_clears_the_exact_cookie_and_redirects() {
    let gate = gate();
    let m = gate.manager();
    let issued = m
        .issue(Principal::user("alice"), ClientInfo::default())
        .await
        .unwrap();
    let other = m
        .issue(Principal::user("alice"), ClientInfo::default())
        .await
        .unwrap();
    let res = call(&gate, "/logout", Some(issued.token.expose())).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(all(&res, LOCATION), ["/login"]);
    assert_eq!(all(&res, SET_COOKIE), [REMOVAL]);
    assert!(m.validate(issued.token.expose().as_bytes()).await.is_err());
    assert!(
        m.validate(other.token.expose().as_bytes()).await.is_ok(),
        "only this one"
    );
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_and_agent() {
    let gate = gate();
    let m = gate.manager();
    let here = m
        .issue(Principal::user("alice"), ClientInfo::default())
        .await
        .unwrap();
    let phone = m
        .issue(Principal::user("alice"), ClientInfo::default())
        .await
        .unwrap();
    let agent = m
        .grant_agent(
            &here.session,
            "helper".into(),
            "Helper".into(),
            ClientInfo::default(),
        )
        .await
        .unwrap();
    let bob = m
        .issue(Principal::user("bob"), ClientInfo::default())
        .await
        .unwrap();
    let res = call(&gate, "/everywhere", Some(here.token.expose())).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(all(&res, LOCATION), ["/login"]);
    assert_eq!(all(&res, SET_COOKIE), [REMOVAL]);
    for gone in [&here, &phone, &agent] {
        assert!(m.validate(gone.token.expose().as_bytes()).await.is_err());
    }
    assert!(
        m.validate(bob.token.expose().as_bytes()).await.is_ok(),
        "bob untouched"
    );
}

#[tokio::test]
async fn clear_cookie_is_the_exact_removal() {
    assert_eq!(session_tower::clear_cookie(&gate()), REMOVAL);
}
