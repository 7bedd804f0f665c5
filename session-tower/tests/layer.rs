//! The tower layer and axum extractors: the layer answers with the gate's rejection
//! exactly (what each rejection says is tested once, in session-core's
//! `tests/rejections.rs`), and what reaches (or never reaches) the store and the inner
//! service.
//!
//! Most tests run against two gates over one counting store:
//!
//! - *hot*: the gate's manager is the one that issued (and revoked) the session, so its
//!   cache already knows the answer (`GateCheck::Decided`);
//! - *cold*: a second manager sharing the store and keys but not the cache, as another
//!   node would be (`GateCheck::NeedsLoad`, and the only way to see a store lookup).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
use session_core::testing::{TwoNodes, forged, never_issued};
use session_core::{
    Admission, GateCheck, GateMode, Principal, Rejection, RevocationReason, Session, SessionConfig,
    SessionGate,
};
use session_tower::{SessionLayer, ValidSession};
use tower::{ServiceBuilder, ServiceExt};

const DELETE_DEFAULT: &str = "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
const MISSING: &str = r#"{"error":"session_missing"}"#;
const INVALID: &str = r#"{"error":"session_invalid"}"#;
const REVOKED: &str = r#"{"error":"session_revoked"}"#;
const UNAVAILABLE: &str = r#"{"error":"session_store_unavailable"}"#;
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";

/// Two nodes with the default configuration (see the module docs).
fn nodes() -> TwoNodes {
    TwoNodes::new(SessionConfig::new())
}

/// The gate of the node that must ask the store.
fn cold_gate(nodes: &TwoNodes) -> SessionGate {
    let [_, (_, cold)] = nodes.gates();
    cold
}

/// The store's loads so far.
fn loads_of(nodes: &TwoNodes) -> usize {
    nodes.store.calls.load.load(Ordering::SeqCst)
}

fn alice() -> Principal {
    Principal::user("alice")
}

/// An agent acting for alice: the kind a bearer token carries.
fn agent() -> Principal {
    Principal::agent("alice", "agent-1", "Helper")
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

    /// Exactly `rejection`: its status, its headers and no other (bar `Content-Length`),
    /// its body.
    #[track_caller]
    fn assert_is(&self, rejection: &Rejection, what: &str) {
        assert_eq!(self.status, rejection.status(), "{what}: {self:?}");
        assert_eq!(self.body.as_bytes(), &rejection.body_bytes()[..], "{what}");
        let mut got: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(name, _)| *name != http::header::CONTENT_LENGTH)
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let mut expected: Vec<(String, String)> = rejection
            .headers()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{what}");
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

// 1. The rejection, copied whole. What each rejection says is settled in session-core's
// tests/rejections.rs; here the layer must answer with exactly that: status, every header,
// body.

#[tokio::test]
async fn the_layer_answers_with_the_gates_rejection_exactly() {
    let fx = nodes();
    let (_, live) = fx.issue(alice()).await;
    let revoked = fx.issue_revoked(alice(), RevocationReason::SignedOut).await;
    let revoked_agent = fx
        .issue_revoked(agent(), RevocationReason::AgentDisconnected)
        .await;
    let cases = || {
        vec![
            ("missing", plain()),
            ("garbage cookie", with_cookie("garbage")),
            ("forged cookie", with_cookie(&forged(&live))),
            ("revoked cookie", with_cookie(&revoked)),
            ("revoked bearer", with_bearer(&revoked_agent)),
            ("user token as bearer", with_bearer(&live)),
            (
                "navigation",
                request(
                    Method::GET,
                    "/page?a=1",
                    &[
                        (ACCEPT, BROWSER_ACCEPT),
                        (COOKIE, &format!("__Host-session={revoked}")),
                    ],
                ),
            ),
        ]
    };
    for (name, gate) in fx.gates() {
        let gate = gate.with_login_redirect("/login");
        for (what, req) in cases() {
            let expected = match gate.check(&req, GateMode::REQUIRED) {
                GateCheck::Decided(Admission::Refuse(r)) => r,
                GateCheck::NeedsLoad(p) => match gate.finish(p).await {
                    Admission::Refuse(r) => r,
                    other => panic!("{what} ({name}): {other:?}"),
                },
                other => panic!("{what} ({name}): {other:?}"),
            };
            call(&gate, req)
                .await
                .assert_is(&expected, &format!("{what} ({name})"));
        }
    }
    // An outage, with the gate's own Retry-After, for a session the cold gate never saw.
    let (_, unseen) = fx.issue(alice()).await;
    let gate = cold_gate(&fx).with_retry_after(7);
    fx.store.set_failing(true);
    let reply = call(&gate, with_cookie(&unseen)).await;
    let expected = match gate.check(&with_cookie(&unseen), GateMode::REQUIRED) {
        GateCheck::NeedsLoad(p) => match gate.finish(p).await {
            Admission::Refuse(r) => r,
            other => panic!("outage: {other:?}"),
        },
        other => panic!("outage: {other:?}"),
    };
    assert_eq!(expected.status(), StatusCode::SERVICE_UNAVAILABLE);
    reply.assert_is(&expected, "outage");
}

#[tokio::test]
async fn malformed_input_never_reaches_the_store() {
    let fx = nodes();
    let (_, token) = fx.issue(alice()).await;
    // The cold gate would have to ask the store for any token it did look up.
    let gate = cold_gate(&fx);
    let mut cases = vec![
        with_raw_cookie(HeaderValue::from_bytes(b"__Host-session=\xff\xfe; y=1").unwrap()),
        with_cookie(&"A".repeat(64 * 1024)),
        with_cookie(&forged(&token)),
    ];
    for (_, bad) in never_issued(fx.store.clone(), &token).await {
        cases.push(with_cookie(&bad));
    }
    for req in cases {
        let before = fx.store.calls.total();
        let reply = call(&gate, req).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        assert_eq!(
            fx.store.calls.total(),
            before,
            "the store was called: {reply:?}"
        );
    }
    // The counter does count: the real token costs the cold gate one load.
    let before = loads_of(&fx);
    call(&gate, with_cookie(&token))
        .await
        .assert_alice("real token");
    assert_eq!(loads_of(&fx), before + 1);
}

// 2. The inner service, and what it sees.

#[tokio::test]
async fn required_mode_never_calls_the_inner_service_on_a_rejection() {
    let fx = nodes();
    let (_, token) = fx.issue(alice()).await;
    let revoked = fx.issue_revoked(alice(), RevocationReason::SignedOut).await;
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
    let fx = nodes();
    let (_, token) = fx.issue(alice()).await;
    let handled = Arc::new(AtomicUsize::new(0));
    fx.store.set_failing(true);
    let reply = call_counted(
        SessionLayer::new(cold_gate(&fx)),
        &handled,
        with_cookie(&token),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn handler_sees_the_session_in_extensions() {
    let fx = nodes();
    let (session, token) = fx.issue(alice()).await;
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

// 3. Optional mode.

#[tokio::test]
async fn optional_mode_lets_requests_without_a_session_through() {
    let fx = nodes();
    let (_, token) = fx.issue(alice()).await;
    let revoked = fx.issue_revoked(alice(), RevocationReason::SignedOut).await;
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
    let fx = nodes();
    let (_, token) = fx.issue(alice()).await;
    let revoked = fx.issue_revoked(alice(), RevocationReason::SignedOut).await;
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
    let fx = nodes();
    let (_, token) = fx.issue(alice()).await;
    let app = axum_app(cold_gate(&fx));
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

// 4. The cache.

#[tokio::test]
async fn cache_hits_make_no_store_call() {
    let fx = nodes();
    let (_, token) = fx.issue(alice()).await;
    let gate = cold_gate(&fx);
    let loads = loads_of(&fx);
    call(&gate, with_cookie(&token)).await.assert_alice("first");
    assert_eq!(loads_of(&fx), loads + 1, "the first request loads");
    let (loads, total) = (loads_of(&fx), fx.store.calls.total());
    for i in 0..100 {
        call(&gate, with_cookie(&token))
            .await
            .assert_alice(&format!("request {i}"));
    }
    assert_eq!(loads_of(&fx), loads, "cache hits loaded");
    assert_eq!(fx.store.calls.total(), total, "cache hits called the store");
}

#[tokio::test]
async fn a_revoked_answer_is_cached_too() {
    let fx = nodes();
    let revoked = fx.issue_revoked(alice(), RevocationReason::SignedOut).await;
    let gate = cold_gate(&fx);
    call(&gate, with_cookie(&revoked))
        .await
        .assert_cookie_refused(REVOKED, "first");
    let total = fx.store.calls.total();
    for _ in 0..20 {
        call(&gate, with_cookie(&revoked))
            .await
            .assert_cookie_refused(REVOKED, "again");
    }
    assert_eq!(fx.store.calls.total(), total);
}
