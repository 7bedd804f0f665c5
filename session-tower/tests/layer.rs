//! The tower layer and axum extractors against the HTTP contract's "Rejection" section:
//! exact statuses, headers and bodies, and what reaches (or never reaches) the store and
//! the inner service.
//!
//! Most tests run against two gates over one counting store:
//!
//! - *hot*: the gate's manager is the one that issued (and revoked) the session, so its
//!   cache already knows the answer (the synchronous `Check::Ready` path);
//! - *cold*: a second manager sharing the store and keys but not the cache, as another
//!   node would be (the `Check::Load` path, and the only way to see a store lookup).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use http::header::{
    ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use session_core::testing::FaultyStore;
use session_core::token::TOKEN_LEN;
use session_core::{
    Actor, ClientInfo, Clock, CookieConfig, KeySet, ManualClock, MemoryStore, Principal,
    RevocationReason, Session, SessionConfig, SessionGate, SessionManager, SystemClock,
};
use session_tower::{SessionLayer, ValidSession};
use tower::{ServiceBuilder, ServiceExt};

const DELETE_DEFAULT: &str = "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
const MISSING: &str = r#"{"error":"session_missing"}"#;
const INVALID: &str = r#"{"error":"session_invalid"}"#;
const EXPIRED: &str = r#"{"error":"session_expired"}"#;
const REVOKED: &str = r#"{"error":"session_revoked"}"#;
const UNAVAILABLE: &str = r#"{"error":"session_store_unavailable"}"#;
const BEARER_INVALID: &str = r#"Bearer error="invalid_token""#;
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";

type Store = Arc<FaultyStore<MemoryStore>>;

/// One store, one clock, and two managers over them (see the module docs).
struct Fixture {
    store: Store,
    clock: ManualClock,
    /// Issues and revokes; its cache knows every session it touched.
    issuer: SessionManager,
    /// Shares the store, keys and clock, not the cache.
    cold: SessionManager,
}

impl Fixture {
    fn new() -> Self {
        Self::with_config(SessionConfig::new())
    }

    fn with_config(config: SessionConfig) -> Self {
        let store = FaultyStore::new(MemoryStore::new());
        let keys = KeySet::new([[7u8; 32]]).unwrap();
        let clock = ManualClock::new(SystemClock.now());
        let issuer = SessionManager::with_clock(
            store.clone(),
            keys.clone(),
            config.clone(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        let cold = SessionManager::with_clock(store.clone(), keys, config, Arc::new(clock.clone()))
            .unwrap();
        Self {
            store,
            clock,
            issuer,
            cold,
        }
    }

    /// A gate whose cache already holds what the issuer did.
    fn hot_gate(&self) -> SessionGate {
        SessionGate::new(self.issuer.clone()).with_cookie(CookieConfig::new())
    }

    /// A gate that must ask the store.
    fn cold_gate(&self) -> SessionGate {
        SessionGate::new(self.cold.clone()).with_cookie(CookieConfig::new())
    }

    /// Both gates, named for assertion messages.
    fn gates(&self) -> [(&'static str, SessionGate); 2] {
        [("hot", self.hot_gate()), ("cold", self.cold_gate())]
    }

    async fn login(&self) -> (Session, String) {
        let issued = self
            .issuer
            .issue(Principal::user("alice"), ClientInfo::default())
            .await
            .unwrap();
        (issued.session, issued.token.expose().to_owned())
    }

    /// An agent session acting for alice: the kind a bearer token carries.
    async fn agent_login(&self) -> (Session, String) {
        let issued = self
            .issuer
            .issue(
                Principal::agent("alice", "agent-1", "Helper"),
                ClientInfo::default(),
            )
            .await
            .unwrap();
        (issued.session, issued.token.expose().to_owned())
    }

    async fn revoked_agent_login(&self) -> String {
        let (session, token) = self.agent_login().await;
        assert!(
            self.issuer
                .revoke(
                    session.id(),
                    RevocationReason::AgentDisconnected,
                    Actor::User
                )
                .await
                .unwrap()
        );
        token
    }

    async fn revoked_login(&self) -> String {
        let (session, token) = self.login().await;
        assert!(
            self.issuer
                .revoke(session.id(), RevocationReason::SignedOut, Actor::User)
                .await
                .unwrap()
        );
        token
    }

    fn calls(&self) -> usize {
        self.store.calls.total()
    }

    fn loads(&self) -> usize {
        self.store.calls.load.load(Ordering::SeqCst)
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    async fn read<B>(res: Response<B>) -> Self
    where
        B: http_body::Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// Every value of a header, as text.
    fn all(&self, name: http::header::HeaderName) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// The single value of a header, or `None`; fails on repeated headers.
    fn one(&self, name: http::header::HeaderName) -> Option<&str> {
        let all = self.all(name.clone());
        assert!(all.len() <= 1, "{name} repeated: {all:?}");
        all.first().copied()
    }

    /// A 401 (or other refusal) exactly: status, JSON body, `Cache-Control: no-store`,
    /// `Content-Type`, the deleting cookie or none, `WWW-Authenticate` or none, and no
    /// `Location` or `Retry-After`.
    #[track_caller]
    fn assert_refused(
        &self,
        status: StatusCode,
        body: &str,
        set_cookie: Option<&str>,
        www_authenticate: Option<&str>,
        what: &str,
    ) {
        assert_eq!(self.status, status, "{what}: {self:?}");
        assert_eq!(self.body, body, "{what}");
        assert_eq!(self.one(CACHE_CONTROL), Some("no-store"), "{what}");
        assert_eq!(self.one(CONTENT_TYPE), Some("application/json"), "{what}");
        assert_eq!(
            self.all(SET_COOKIE),
            set_cookie.into_iter().collect::<Vec<_>>(),
            "{what}"
        );
        assert_eq!(self.one(WWW_AUTHENTICATE), www_authenticate, "{what}");
        assert_eq!(self.one(LOCATION), None, "{what}");
        assert_eq!(self.one(RETRY_AFTER), None, "{what}");
    }

    /// A refused cookie session: 401, `body`, the default deleting cookie, no challenge.
    #[track_caller]
    fn assert_cookie_refused(&self, body: &str, what: &str) {
        self.assert_refused(
            StatusCode::UNAUTHORIZED,
            body,
            Some(DELETE_DEFAULT),
            None,
            what,
        );
    }

    /// A 200 from the tower handler for alice, with no session headers added.
    #[track_caller]
    fn assert_alice(&self, what: &str) {
        assert_eq!(self.status, StatusCode::OK, "{what}: {self:?}");
        assert_eq!(self.body, "alice", "{what}");
        assert!(self.headers.get(SET_COOKIE).is_none(), "{what}");
        assert!(self.headers.get(WWW_AUTHENTICATE).is_none(), "{what}");
    }
}

/// The tower handler: counts its calls and answers with the user id of the `Session` the
/// layer put in the request extensions, or `anonymous`.
async fn call_counted(
    layer: SessionLayer,
    calls: &Arc<AtomicUsize>,
    req: Request<Full<Bytes>>,
) -> Reply {
    let calls = calls.clone();
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(move |req: Request<Full<Bytes>>| {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let body = req
                        .extensions()
                        .get::<Session>()
                        .map_or_else(|| "anonymous".to_owned(), |s| s.user_id().to_string());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                }
            });
    Reply::read(service.oneshot(req).await.unwrap()).await
}

async fn call(gate: &SessionGate, req: Request<Full<Bytes>>) -> Reply {
    call_counted(
        SessionLayer::new(gate.clone()),
        &Arc::new(AtomicUsize::new(0)),
        req,
    )
    .await
}

fn request(
    method: Method,
    uri: &str,
    headers: &[(http::header::HeaderName, &str)],
) -> Request<Full<Bytes>> {
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    req.body(Full::default()).unwrap()
}

fn plain() -> Request<Full<Bytes>> {
    request(Method::GET, "/", &[])
}

fn with_cookie(token: &str) -> Request<Full<Bytes>> {
    request(
        Method::GET,
        "/",
        &[(COOKIE, &format!("__Host-session={token}"))],
    )
}

fn with_bearer(token: &str) -> Request<Full<Bytes>> {
    request(
        Method::GET,
        "/",
        &[(AUTHORIZATION, &format!("Bearer {token}"))],
    )
}

fn with_raw_cookie(value: HeaderValue) -> Request<Full<Bytes>> {
    let mut req = plain();
    req.headers_mut().insert(COOKIE, value);
    req
}

/// The token with one MAC character changed: right shape, wrong MAC.
fn forged(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = TOKEN_LEN - 5;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// Tokens that are not a token this deployment issued, each with a name; none of them
/// needs a store lookup to refuse. `token` is a real, live one.
async fn malformed_tokens(fx: &Fixture, token: &str) -> Vec<(String, String)> {
    // A live session in the same store, signed by another deployment's key: only the MAC
    // tells it apart.
    let foreign = SessionManager::new(fx.store.clone(), KeySet::random(), SessionConfig::new())
        .unwrap()
        .issue(Principal::user("alice"), ClientInfo::default())
        .await
        .unwrap();
    let mut v = vec![
        ("garbage".to_owned(), "garbage".to_owned()),
        ("empty".to_owned(), String::new()),
        ("forged MAC".to_owned(), forged(token)),
        ("one char short".to_owned(), token[1..].to_owned()),
        ("one char long".to_owned(), format!("{token}A")),
        ("other key".to_owned(), foreign.token.expose().to_owned()),
    ];
    for bad in ['+', '/', '*', '=', '.'] {
        let mut t = token.to_owned();
        t.replace_range(10..11, &bad.to_string());
        v.push((format!("non-base64url {bad:?}"), t));
    }
    v
}

// 1. Each rejection code.

#[tokio::test]
async fn no_cookie_is_session_missing_with_bearer_challenge_and_no_set_cookie() {
    let fx = Fixture::new();
    for (name, gate) in fx.gates() {
        let reply = call(&gate, plain()).await;
        reply.assert_refused(
            StatusCode::UNAUTHORIZED,
            MISSING,
            None,
            Some("Bearer"),
            name,
        );
    }
}

#[tokio::test]
async fn malformed_forged_and_foreign_cookie_tokens_are_session_invalid() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    for (name, bad) in malformed_tokens(&fx, &token).await {
        for (gate_name, gate) in fx.gates() {
            call(&gate, with_cookie(&bad))
                .await
                .assert_cookie_refused(INVALID, &format!("{name} ({gate_name})"));
        }
    }
    // The real token still works: the refusals above were about the tokens.
    for (gate_name, gate) in fx.gates() {
        call(&gate, with_cookie(&token))
            .await
            .assert_alice(gate_name);
    }
}

#[tokio::test]
async fn unknown_session_is_session_invalid() {
    // Right key, right shape, but the store never heard of it (another store's session).
    let fx = Fixture::new();
    let elsewhere = Fixture::new();
    let (_, token) = elsewhere.login().await;
    let reply = call(&fx.cold_gate(), with_cookie(&token)).await;
    reply.assert_cookie_refused(INVALID, "unknown session");
}

#[tokio::test]
async fn revoked_cookie_is_session_revoked() {
    let fx = Fixture::new();
    let token = fx.revoked_login().await;
    for (name, gate) in fx.gates() {
        call(&gate, with_cookie(&token))
            .await
            .assert_cookie_refused(REVOKED, name);
    }
}

#[tokio::test]
async fn past_lifetime_is_session_expired() {
    let config = SessionConfig::new()
        .with_ttl(Duration::from_secs(60))
        .unwrap();
    let fx = Fixture::with_config(config);
    let (_, token) = fx.login().await;
    fx.clock.advance(Duration::from_secs(59));
    for (name, gate) in fx.gates() {
        call(&gate, with_cookie(&token)).await.assert_alice(name);
    }
    fx.clock.advance(Duration::from_secs(2));
    for (name, gate) in fx.gates() {
        call(&gate, with_cookie(&token))
            .await
            .assert_cookie_refused(EXPIRED, name);
    }
}

#[tokio::test]
async fn idle_timeout_is_session_expired_and_requests_keep_a_session_alive() {
    let config = SessionConfig::new()
        .with_idle_timeout(Duration::from_secs(100))
        .unwrap();
    let fx = Fixture::with_config(config);
    let (_, token) = fx.login().await;
    // Each request within the idle timeout keeps it alive, past the timeout in total.
    for step in 0..3 {
        fx.clock.advance(Duration::from_secs(60));
        for (name, gate) in fx.gates() {
            call(&gate, with_cookie(&token))
                .await
                .assert_alice(&format!("{name} step {step}"));
        }
    }
    fx.clock.advance(Duration::from_secs(101));
    for (name, gate) in fx.gates() {
        call(&gate, with_cookie(&token))
            .await
            .assert_cookie_refused(EXPIRED, name);
    }
}

// 2. The whole deleting Set-Cookie.

#[tokio::test]
async fn deleting_cookie_default_config_exact() {
    let fx = Fixture::new();
    let token = fx.revoked_login().await;
    let gate = SessionGate::new(fx.issuer.clone()).with_cookie(CookieConfig::new());
    let reply = call(&gate, with_cookie(&token)).await;
    assert_eq!(
        reply.all(SET_COOKIE),
        [
            "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        ]
    );
}

#[tokio::test]
async fn deleting_cookie_keeps_name_path_domain_and_secure() {
    let fx = Fixture::new();
    let token = fx.revoked_login().await;
    let cases = [
        (
            CookieConfig::new()
                .with_name("session")
                .unwrap()
                .with_domain("example.com")
                .unwrap()
                .with_path("/app")
                .unwrap(),
            "session=; HttpOnly; SameSite=Lax; Secure; Path=/app; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        ),
        (
            CookieConfig::new()
                .with_name("session")
                .unwrap()
                .with_secure(false)
                .unwrap()
                .with_domain("example.com")
                .unwrap()
                .with_path("/app")
                .unwrap(),
            "session=; HttpOnly; SameSite=Lax; Path=/app; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        ),
    ];
    for (cookie, expected) in cases {
        let gate = SessionGate::new(fx.issuer.clone()).with_cookie(cookie);
        let reply = call(
            &gate,
            request(
                Method::GET,
                "/app/x",
                &[(COOKIE, &format!("session={token}"))],
            ),
        )
        .await;
        reply.assert_refused(
            StatusCode::UNAUTHORIZED,
            REVOKED,
            Some(expected),
            None,
            expected,
        );
        // A malformed token is cleared the same way.
        let reply = call(
            &gate,
            with_raw_cookie(HeaderValue::from_static("session=garbage")),
        )
        .await;
        reply.assert_refused(
            StatusCode::UNAUTHORIZED,
            INVALID,
            Some(expected),
            None,
            expected,
        );
    }
}

#[tokio::test]
async fn deleting_cookie_uses_the_configured_name() {
    let fx = Fixture::new();
    let token = fx.revoked_login().await;
    let gate = SessionGate::new(fx.issuer.clone()).with_cookie(
        CookieConfig::new()
            .with_name("sid")
            .unwrap()
            .with_path("/app")
            .unwrap(),
    );
    let expected = "sid=; HttpOnly; SameSite=Lax; Secure; Path=/app; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
    let reply = call(
        &gate,
        with_raw_cookie(HeaderValue::from_str(&format!("sid={token}")).unwrap()),
    )
    .await;
    reply.assert_refused(
        StatusCode::UNAUTHORIZED,
        REVOKED,
        Some(expected),
        None,
        "sid",
    );
    // The default name is not this gate's cookie: nothing to clear.
    let reply = call(&gate, with_cookie(&token)).await;
    reply.assert_refused(
        StatusCode::UNAUTHORIZED,
        MISSING,
        None,
        Some("Bearer"),
        "__Host-session= on a sid gate",
    );
}

// 3. Bearer rejections.

#[tokio::test]
async fn bearer_refusals_challenge_and_clear_nothing() {
    let fx = Fixture::new();
    let (_, live) = fx.agent_login().await;
    let revoked = fx.revoked_agent_login().await;
    let (_, user_token) = fx.login().await;
    for (name, gate) in fx.gates() {
        call(&gate, with_bearer(&live)).await.assert_alice(name);
        // A credential's kind follows its transport: a user's token is no bearer.
        call(&gate, with_bearer(&user_token)).await.assert_refused(
            StatusCode::UNAUTHORIZED,
            INVALID,
            None,
            Some(BEARER_INVALID),
            &format!("user token as bearer ({name})"),
        );
        // …and an agent's token is no cookie.
        call(&gate, with_cookie(&live)).await.assert_refused(
            StatusCode::UNAUTHORIZED,
            INVALID,
            Some(DELETE_DEFAULT),
            None,
            &format!("agent token as cookie ({name})"),
        );
        call(&gate, with_bearer(&revoked)).await.assert_refused(
            StatusCode::UNAUTHORIZED,
            REVOKED,
            None,
            Some(BEARER_INVALID),
            &format!("revoked bearer ({name})"),
        );
        for (what, bad) in malformed_tokens(&fx, &live).await {
            if bad.is_empty() {
                continue; // the empty bearer is its own case below
            }
            call(&gate, with_bearer(&bad)).await.assert_refused(
                StatusCode::UNAUTHORIZED,
                INVALID,
                None,
                Some(BEARER_INVALID),
                &format!("{what} bearer ({name})"),
            );
        }
    }
}

#[tokio::test]
async fn empty_or_repeated_bearer_is_session_invalid() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    let two_values = format!("Bearer {token} {token}");
    let comma = format!("Bearer {token},{token}");
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("Bearer", vec!["Bearer".to_owned()]),
        ("Bearer + space", vec!["Bearer ".to_owned()]),
        (
            "two headers",
            vec![format!("Bearer {token}"), format!("Bearer {token}")],
        ),
        ("Bearer a b", vec!["Bearer a b".to_owned()]),
        ("two tokens in one", vec![two_values]),
        ("comma", vec![comma]),
    ];
    for (what, values) in cases {
        for (name, gate) in fx.gates() {
            let mut req = plain();
            for v in &values {
                req.headers_mut()
                    .append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            let before = fx.calls();
            call(&gate, req).await.assert_refused(
                StatusCode::UNAUTHORIZED,
                INVALID,
                None,
                Some(BEARER_INVALID),
                &format!("{what} ({name})"),
            );
            assert_eq!(fx.calls(), before, "{what} ({name}): store called");
        }
    }
}

#[tokio::test]
async fn token_as_both_cookie_and_bearer_is_session_invalid() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    for (name, gate) in fx.gates() {
        let req = request(
            Method::GET,
            "/",
            &[
                (COOKIE, &format!("__Host-session={token}")),
                (AUTHORIZATION, &format!("Bearer {token}")),
            ],
        );
        let before = fx.calls();
        // A session cookie came with it, so it is cleared like any refused cookie.
        call(&gate, req).await.assert_cookie_refused(INVALID, name);
        assert_eq!(fx.calls(), before, "{name}: store called");
    }
}

#[tokio::test]
async fn other_authorization_schemes_are_not_ours() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    let gate = fx.cold_gate();
    let req = request(Method::GET, "/", &[(AUTHORIZATION, "Basic YWxpY2U6eA==")]);
    call(&gate, req).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        MISSING,
        None,
        Some("Bearer"),
        "basic only",
    );
    let req = request(
        Method::GET,
        "/",
        &[
            (AUTHORIZATION, "Basic YWxpY2U6eA=="),
            (COOKIE, &format!("__Host-session={token}")),
        ],
    );
    call(&gate, req).await.assert_alice("basic and cookie");
}

// 4. Store outages: 503, nothing cleared, service resumes.

#[tokio::test]
async fn failing_store_is_503_without_clearing_and_recovers() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    let gate = fx.cold_gate();
    fx.store.set_failing(true);
    for (what, req) in [
        ("cookie", with_cookie(&token)),
        ("bearer", with_bearer(&token)),
    ] {
        let reply = call(&gate, req).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {reply:?}"
        );
        assert_eq!(reply.body, UNAVAILABLE, "{what}");
        assert_eq!(reply.one(RETRY_AFTER), Some("1"), "{what}");
        assert_eq!(reply.one(CACHE_CONTROL), Some("no-store"), "{what}");
        assert_eq!(reply.one(CONTENT_TYPE), Some("application/json"), "{what}");
        assert!(
            reply.all(SET_COOKIE).is_empty(),
            "{what}: cookie cleared in an outage"
        );
        assert_eq!(reply.one(LOCATION), None, "{what}");
    }
    // A node that holds the session in its cache may still serve it.
    call(&fx.hot_gate(), with_cookie(&token))
        .await
        .assert_alice("cached during the outage");
    // The failure is not remembered as an answer.
    fx.store.set_failing(false);
    call(&gate, with_cookie(&token))
        .await
        .assert_alice("after recovery");
}

#[tokio::test]
async fn failing_store_retry_after_is_configurable() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    let gate = fx.cold_gate().with_retry_after(7);
    fx.store.set_failing(true);
    let reply = call(&gate, with_cookie(&token)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.one(RETRY_AFTER), Some("7"));
}

#[tokio::test]
async fn failing_store_html_navigation_is_503_not_a_login_redirect() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    let gate = fx.cold_gate().with_login_redirect("/login");
    fx.store.set_failing(true);
    let req = request(
        Method::GET,
        "/page",
        &[
            (ACCEPT, BROWSER_ACCEPT),
            (COOKIE, &format!("__Host-session={token}")),
        ],
    );
    let reply = call(&gate, req).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.body, UNAVAILABLE);
    assert!(reply.all(SET_COOKIE).is_empty());
    assert_eq!(reply.one(LOCATION), None);
}

#[tokio::test]
async fn hanging_store_is_503_within_the_load_timeout() {
    let config = SessionConfig::new()
        .with_load_timeout(Duration::from_millis(100))
        .unwrap();
    let fx = Fixture::with_config(config);
    let (_, token) = fx.login().await;
    let gate = fx.cold_gate();
    fx.store.set_hanging(true);
    let started = std::time::Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(2), call(&gate, with_cookie(&token)))
        .await
        .expect("a hanging store must not hang the request");
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.body, UNAVAILABLE);
    assert_eq!(reply.one(RETRY_AFTER), Some("1"));
    assert!(reply.all(SET_COOKIE).is_empty());
    assert!(started.elapsed() >= Duration::from_millis(100));
    fx.store.set_hanging(false);
    call(&gate, with_cookie(&token))
        .await
        .assert_alice("after the hang");
}

// 5. Malformed input: a 4xx, and not one store call.

#[tokio::test]
async fn malformed_input_never_reaches_the_store() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    // Every malformed case goes to the cold gate, which would have to ask the store for
    // any token it did look up.
    let gate = fx.cold_gate();

    let mut cases: Vec<(String, Request<Full<Bytes>>, &str)> = vec![
        ("no cookie".into(), plain(), MISSING),
        (
            "two session cookies, one header".into(),
            with_raw_cookie(
                HeaderValue::from_str(&format!("__Host-session={token}; __Host-session={token}"))
                    .unwrap(),
            ),
            INVALID,
        ),
        (
            "two session cookies, two headers".into(),
            {
                let mut req = with_cookie(&token);
                req.headers_mut().append(
                    COOKIE,
                    HeaderValue::from_str(&format!("__Host-session={token}")).unwrap(),
                );
                req
            },
            INVALID,
        ),
        (
            "name differs in case".into(),
            with_raw_cookie(HeaderValue::from_str(&format!("__host-session={token}")).unwrap()),
            MISSING,
        ),
        (
            "name percent-encoded".into(),
            with_raw_cookie(HeaderValue::from_str(&format!("__Host-sess%69on={token}")).unwrap()),
            MISSING,
        ),
        (
            "non-UTF-8 bytes".into(),
            with_raw_cookie(HeaderValue::from_bytes(b"x=\xff; y=1").unwrap()),
            MISSING,
        ),
        (
            "non-UTF-8 session value".into(),
            with_raw_cookie(HeaderValue::from_bytes(b"__Host-session=\xff\xfe; y=1").unwrap()),
            INVALID,
        ),
        (
            "64 KiB session cookie".into(),
            with_cookie(&"A".repeat(64 * 1024)),
            INVALID,
        ),
        (
            "64 KiB other cookie".into(),
            with_raw_cookie(
                HeaderValue::from_str(&format!("big={}", "A".repeat(64 * 1024))).unwrap(),
            ),
            MISSING,
        ),
    ];
    for (what, bad) in malformed_tokens(&fx, &token).await {
        cases.push((what, with_cookie(&bad), INVALID));
    }

    for (what, req, body) in cases {
        let before = fx.calls();
        let reply = call(&gate, req).await;
        assert!(reply.status.is_client_error(), "{what}: {reply:?}");
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(reply.body, body, "{what}");
        if body == MISSING {
            assert!(
                reply.all(SET_COOKIE).is_empty(),
                "{what}: no session cookie came"
            );
        } else {
            assert_eq!(reply.all(SET_COOKIE), [DELETE_DEFAULT], "{what}");
        }
        assert_eq!(fx.calls(), before, "{what}: the store was called");
    }

    // The counter does count: the real token costs the cold gate one load.
    let before = fx.loads();
    call(&gate, with_cookie(&token))
        .await
        .assert_alice("real token");
    assert_eq!(fx.loads(), before + 1);
}

// 6. The inner service, and what it sees.

#[tokio::test]
async fn required_mode_never_calls_the_inner_service_on_a_rejection() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    let revoked = fx.revoked_login().await;
    for (name, gate) in fx.gates() {
        let handled = Arc::new(AtomicUsize::new(0));
        let layer = || SessionLayer::new(gate.clone());
        for (what, req, status) in [
            ("missing", plain(), StatusCode::UNAUTHORIZED),
            ("garbage", with_cookie("garbage"), StatusCode::UNAUTHORIZED),
            (
                "forged",
                with_cookie(&forged(&token)),
                StatusCode::UNAUTHORIZED,
            ),
            ("revoked", with_cookie(&revoked), StatusCode::UNAUTHORIZED),
            (
                "revoked bearer",
                with_bearer(&revoked),
                StatusCode::UNAUTHORIZED,
            ),
        ] {
            let reply = call_counted(layer(), &handled, req).await;
            assert_eq!(reply.status, status, "{what} ({name})");
            assert_eq!(
                handled.load(Ordering::SeqCst),
                0,
                "{what} ({name}): handler ran"
            );
        }
        let reply = call_counted(layer(), &handled, with_cookie(&token)).await;
        reply.assert_alice(name);
        assert_eq!(handled.load(Ordering::SeqCst), 1, "{name}");
    }
}

#[tokio::test]
async fn required_mode_never_calls_the_inner_service_in_an_outage() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    let handled = Arc::new(AtomicUsize::new(0));
    fx.store.set_failing(true);
    let reply = call_counted(
        SessionLayer::new(fx.cold_gate()),
        &handled,
        with_cookie(&token),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn handler_sees_the_session_in_extensions() {
    let fx = Fixture::new();
    let (session, token) = fx.login().await;
    for (name, gate) in fx.gates() {
        let id = session.id();
        let service = ServiceBuilder::new()
            .layer(SessionLayer::new(gate))
            .service_fn(move |req: Request<Full<Bytes>>| async move {
                let s = req.extensions().get::<Session>().expect("a session");
                assert_eq!(s.id(), id);
                let body = format!("{} {}", s.user_id(), s.id());
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
            });
        let reply = Reply::read(service.oneshot(with_cookie(&token)).await.unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        assert_eq!(reply.body, format!("alice {id}"), "{name}");
    }
}

// 7. Optional mode.

#[tokio::test]
async fn optional_mode_lets_requests_without_a_session_through() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    let revoked = fx.revoked_login().await;
    for (name, gate) in fx.gates() {
        let handled = Arc::new(AtomicUsize::new(0));
        let layer = || SessionLayer::new(gate.clone()).optional();
        let cases = [
            ("missing", plain(), "anonymous"),
            ("garbage", with_cookie("garbage"), "anonymous"),
            ("revoked", with_cookie(&revoked), "anonymous"),
            ("live", with_cookie(&token), "alice"),
        ];
        for (i, (what, req, body)) in cases.into_iter().enumerate() {
            let reply = call_counted(layer(), &handled, req).await;
            assert_eq!(reply.status, StatusCode::OK, "{what} ({name}): {reply:?}");
            assert_eq!(reply.body, body, "{what} ({name})");
            assert_eq!(handled.load(Ordering::SeqCst), i + 1, "{what} ({name})");
        }
    }
}

fn axum_app(gate: SessionGate) -> Router {
    Router::new()
        .route(
            "/maybe",
            get(|s: Option<ValidSession>| async move {
                s.map_or_else(
                    || "none".to_owned(),
                    |ValidSession(s)| s.user_id().to_string(),
                )
            }),
        )
        .route(
            "/must",
            get(|ValidSession(s): ValidSession| async move { s.user_id().to_string() }),
        )
        .layer(SessionLayer::new(gate).optional())
}

async fn axum_call(app: &Router, uri: &str, cookie: Option<&str>) -> Reply {
    let mut req = Request::get(uri);
    if let Some(token) = cookie {
        req = req.header(COOKIE, format!("__Host-session={token}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    Reply::read(res).await
}

#[tokio::test]
async fn axum_extractors_in_optional_mode() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    let revoked = fx.revoked_login().await;
    for (name, gate) in fx.gates() {
        let app = axum_app(gate);

        let reply = axum_call(&app, "/maybe", None).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "none"),
            "{name}"
        );
        axum_call(&app, "/must", None).await.assert_refused(
            StatusCode::UNAUTHORIZED,
            MISSING,
            None,
            Some("Bearer"),
            &format!("missing ({name})"),
        );

        let reply = axum_call(&app, "/maybe", Some(&revoked)).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "none"),
            "{name}"
        );
        axum_call(&app, "/must", Some(&revoked))
            .await
            .assert_cookie_refused(REVOKED, &format!("revoked ({name})"));

        axum_call(&app, "/must", Some("garbage"))
            .await
            .assert_cookie_refused(INVALID, &format!("garbage ({name})"));

        for path in ["/maybe", "/must"] {
            let reply = axum_call(&app, path, Some(&token)).await;
            assert_eq!(reply.status, StatusCode::OK, "{path} ({name})");
            assert_eq!(reply.body, "alice", "{path} ({name})");
            assert!(reply.headers.get(SET_COOKIE).is_none(), "{path} ({name})");
        }
    }
}

#[tokio::test]
async fn axum_required_extractor_in_an_outage_is_503() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    let app = axum_app(fx.cold_gate());
    fx.store.set_failing(true);
    let reply = axum_call(&app, "/must", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.body, UNAVAILABLE);
    assert_eq!(reply.one(RETRY_AFTER), Some("1"));
    assert!(reply.all(SET_COOKIE).is_empty());
}

#[tokio::test]
async fn axum_extractor_without_the_layer_is_a_500() {
    let app: Router = Router::new().route(
        "/must",
        get(|ValidSession(s): ValidSession| async move { s.user_id().to_string() }),
    );
    let reply = axum_call(&app, "/must", None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
}

// 8. HTML navigations and the login redirect.

#[tokio::test]
async fn html_navigation_is_redirected_to_login_with_the_cookie_cleared() {
    let fx = Fixture::new();
    let revoked = fx.revoked_login().await;
    let cookie = format!("__Host-session={revoked}");
    for (name, gate) in fx.gates() {
        let gate = gate.with_login_redirect("/login");

        let reply = call(
            &gate,
            request(
                Method::GET,
                "/page?a=1",
                &[(ACCEPT, BROWSER_ACCEPT), (COOKIE, &cookie)],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{name}: {reply:?}");
        assert_eq!(
            reply.one(LOCATION),
            Some("/login?return_to=%2Fpage%3Fa%3D1&reason=session_revoked"),
            "{name}"
        );
        assert_eq!(reply.all(SET_COOKIE), [DELETE_DEFAULT], "{name}");
        assert_eq!(reply.one(CACHE_CONTROL), Some("no-store"), "{name}");
        assert_eq!(reply.one(WWW_AUTHENTICATE), None, "{name}");
        assert_eq!(reply.body, "", "{name}");

        // Not a navigation: a POST, a JSON GET.
        call(
            &gate,
            request(
                Method::POST,
                "/page?a=1",
                &[(ACCEPT, BROWSER_ACCEPT), (COOKIE, &cookie)],
            ),
        )
        .await
        .assert_cookie_refused(REVOKED, &format!("POST ({name})"));
        call(
            &gate,
            request(
                Method::GET,
                "/page?a=1",
                &[(ACCEPT, "application/json"), (COOKIE, &cookie)],
            ),
        )
        .await
        .assert_cookie_refused(REVOKED, &format!("JSON GET ({name})"));

        // A bearer request is an agent, never redirected.
        call(
            &gate,
            request(
                Method::GET,
                "/page?a=1",
                &[
                    (ACCEPT, BROWSER_ACCEPT),
                    (AUTHORIZATION, &format!("Bearer {revoked}")),
                ],
            ),
        )
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            REVOKED,
            None,
            Some(BEARER_INVALID),
            &format!("bearer ({name})"),
        );
    }
}

#[tokio::test]
async fn html_navigation_without_a_cookie_is_redirected_without_set_cookie() {
    let fx = Fixture::new();
    let gate = fx.hot_gate().with_login_redirect("/login");
    let reply = call(
        &gate,
        request(Method::GET, "/page?a=1", &[(ACCEPT, BROWSER_ACCEPT)]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{reply:?}");
    assert_eq!(
        reply.one(LOCATION),
        Some("/login?return_to=%2Fpage%3Fa%3D1")
    );
    assert!(reply.all(SET_COOKIE).is_empty());
    assert_eq!(reply.body, "");
}

#[tokio::test]
async fn without_login_redirect_html_navigation_is_a_401() {
    let fx = Fixture::new();
    let revoked = fx.revoked_login().await;
    let reply = call(
        &fx.hot_gate(),
        request(
            Method::GET,
            "/page?a=1",
            &[
                (ACCEPT, BROWSER_ACCEPT),
                (COOKIE, &format!("__Host-session={revoked}")),
            ],
        ),
    )
    .await;
    reply.assert_cookie_refused(REVOKED, "no login redirect configured");
}

// 9. The cache.

#[tokio::test]
async fn cache_hits_make_no_store_call() {
    let fx = Fixture::new();
    let (_, token) = fx.login().await;
    let gate = fx.cold_gate();
    let loads = fx.loads();
    call(&gate, with_cookie(&token)).await.assert_alice("first");
    assert_eq!(fx.loads(), loads + 1, "the first request loads");
    let (loads, total) = (fx.loads(), fx.calls());
    for i in 0..100 {
        call(&gate, with_cookie(&token))
            .await
            .assert_alice(&format!("request {i}"));
    }
    assert_eq!(fx.loads(), loads, "cache hits loaded");
    assert_eq!(fx.calls(), total, "cache hits called the store");
}

#[tokio::test]
async fn a_revoked_answer_is_cached_too() {
    let fx = Fixture::new();
    let revoked = fx.revoked_login().await;
    let gate = fx.cold_gate();
    call(&gate, with_cookie(&revoked))
        .await
        .assert_cookie_refused(REVOKED, "first");
    let total = fx.calls();
    for _ in 0..20 {
        call(&gate, with_cookie(&revoked))
            .await
            .assert_cookie_refused(REVOKED, "again");
    }
    assert_eq!(fx.calls(), total);
}
