//! The wording of every rejection, decided by the gate from an `http::Request` head alone:
//! status, every header and body, and whether the store was asked. One table per concern;
//! each row runs through two gates over one counting store:
//!
//! - *hot*: the manager that issued (and revoked) the sessions, whose cache already knows
//!   the answer (decided in [`SessionGate::check`]);
//! - *cold*: a second manager sharing the store, keys and clock but not the cache, as
//!   another node would be (the answer needs [`SessionGate::finish`]).
//!
//! The adapters' own tests check that they copy a [`Rejection`] into their response
//! faithfully; what the rejection says is settled here, once.

use std::time::Duration;

use http::{HeaderValue, Method, Request};
use session_core::testing::{TwoNodes, never_issued};
use session_core::{
    Admission, CookieConfig, GateCheck, GateMode, Principal, Rejection, RevocationReason,
    SessionConfig, SessionGate,
};

const DELETE_DEFAULT: &str = "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
const BEARER_INVALID: &str = r#"Bearer error="invalid_token""#;
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";

/// What a request should come to: alice admitted, or a rejection, exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Alice,
    Refused {
        status: u16,
        /// The `{"error":…}` code; `None` for a redirect's empty body.
        code: Option<&'static str>,
        set_cookie: Option<String>,
        www_authenticate: Option<&'static str>,
        location: Option<&'static str>,
        retry_after: Option<&'static str>,
    },
}

impl Expect {
    /// A 401 for a refused cookie: the default deleting cookie, no challenge.
    fn cookie(code: &'static str) -> Self {
        Self::refused(401, code).clearing(DELETE_DEFAULT)
    }

    /// A 401 for a refused bearer token: a challenge, no cookie touched.
    fn bearer(code: &'static str) -> Self {
        Self::refused(401, code).challenging(BEARER_INVALID)
    }

    /// A 401 for no token at all: the bare challenge.
    fn missing() -> Self {
        Self::refused(401, "session_missing").challenging("Bearer")
    }

    /// A 503: `Retry-After`, and never a cookie cleared.
    fn unavailable(retry_after: &'static str) -> Self {
        match Self::refused(503, "session_store_unavailable") {
            Self::Refused {
                status,
                code,
                set_cookie,
                www_authenticate,
                location,
                ..
            } => Self::Refused {
                status,
                code,
                set_cookie,
                www_authenticate,
                location,
                retry_after: Some(retry_after),
            },
            Self::Alice => unreachable!(),
        }
    }

    /// A 303 to `location`, clearing the cookie when one came.
    fn login(location: &'static str, clears: bool) -> Self {
        let redirect = Self::Refused {
            status: 303,
            code: None,
            set_cookie: None,
            www_authenticate: None,
            location: Some(location),
            retry_after: None,
        };
        if clears {
            redirect.clearing(DELETE_DEFAULT)
        } else {
            redirect
        }
    }

    fn refused(status: u16, code: &'static str) -> Self {
        Self::Refused {
            status,
            code: Some(code),
            set_cookie: None,
            www_authenticate: None,
            location: None,
            retry_after: None,
        }
    }

    fn clearing(mut self, cookie: &str) -> Self {
        if let Self::Refused { set_cookie, .. } = &mut self {
            *set_cookie = Some(cookie.to_owned());
        }
        self
    }

    fn challenging(mut self, challenge: &'static str) -> Self {
        if let Self::Refused {
            www_authenticate, ..
        } = &mut self
        {
            *www_authenticate = Some(challenge);
        }
        self
    }

    /// Whether the rejection's headers and body are exactly these: `Cache-Control:
    /// no-store` always, `Content-Type` with a body, and nothing more than listed.
    #[track_caller]
    fn assert(&self, got: &Admission, what: &str) {
        let rejection = match (self, got) {
            (Self::Alice, Admission::Admit(s)) => {
                assert_eq!(s.user_id().as_str(), "alice", "{what}");
                return;
            }
            (Self::Refused { .. }, Admission::Refuse(r)) => r,
            _ => panic!("{what}: expected {self:?}, got {got:?}"),
        };
        let Self::Refused {
            status,
            code,
            set_cookie,
            www_authenticate,
            location,
            retry_after,
        } = self
        else {
            unreachable!()
        };
        assert_eq!(rejection.status().as_u16(), *status, "{what}");
        let body = code.map(|c| format!(r#"{{"error":"{c}"}}"#));
        assert_eq!(rejection.body(), body.as_deref().unwrap_or(""), "{what}");
        let mut expected = vec![("cache-control", "no-store".to_owned())];
        if body.is_some() {
            expected.push(("content-type", "application/json".to_owned()));
        }
        let optional = [
            ("set-cookie", set_cookie.clone()),
            ("www-authenticate", www_authenticate.map(str::to_owned)),
            ("location", location.map(str::to_owned)),
            ("retry-after", retry_after.map(str::to_owned)),
        ];
        expected.extend(optional.into_iter().filter_map(|(n, v)| v.map(|v| (n, v))));
        assert_eq!(headers(rejection), expected, "{what}");
    }
}

fn headers(rejection: &Rejection) -> Vec<(&'static str, String)> {
    rejection
        .headers()
        .map(|(name, value)| {
            let name: &'static str = match name.as_str() {
                "cache-control" => "cache-control",
                "content-type" => "content-type",
                "set-cookie" => "set-cookie",
                "www-authenticate" => "www-authenticate",
                "location" => "location",
                "retry-after" => "retry-after",
                other => panic!("unexpected header {other}"),
            };
            (name, value.to_str().unwrap().to_owned())
        })
        .collect()
}

/// Runs each row through both of `nodes`' gates (shaped by `shape`); `no_store` rows must
/// be decided without a single store call.
async fn run(nodes: &TwoNodes, rows: &[Row], shape: impl Fn(SessionGate) -> SessionGate) {
    for (gate_name, gate) in nodes.gates() {
        let gate = shape(gate);
        for row in rows {
            let what = format!("{} ({gate_name})", row.what);
            let before = nodes.store.calls.total();
            let got = decide(&gate, &row.request, row.mode).await;
            row.expect.assert(&got, &what);
            if row.no_store {
                assert_eq!(
                    nodes.store.calls.total(),
                    before,
                    "{what}: the store was asked"
                );
            }
        }
    }
}

/// Two nodes with the default configuration (see the module docs).
fn nodes() -> TwoNodes {
    TwoNodes::new(SessionConfig::new())
}

/// One row: a request, the mode it meets, and what it should come to.
struct Row {
    what: String,
    request: Request<()>,
    mode: GateMode,
    expect: Expect,
    /// Whether it must be decided without the store (a token we never issued).
    no_store: bool,
}

impl Row {
    fn new(what: impl Into<String>, request: Request<()>, expect: Expect) -> Self {
        Self {
            what: what.into(),
            request,
            mode: GateMode::REQUIRED,
            expect,
            no_store: false,
        }
    }

    fn without_store(mut self) -> Self {
        self.no_store = true;
        self
    }
}

async fn decide(gate: &SessionGate, req: &Request<()>, mode: GateMode) -> Admission {
    match gate.check(req, mode) {
        GateCheck::Decided(admission) => admission,
        GateCheck::NeedsLoad(pending) => gate.finish(pending).await,
    }
}

fn request(method: Method, uri: &str, headers: &[(&str, &[u8])]) -> Request<()> {
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(*name, HeaderValue::from_bytes(value).unwrap());
    }
    req.body(()).unwrap()
}

fn get(headers: &[(&str, &[u8])]) -> Request<()> {
    request(Method::GET, "/", headers)
}

fn cookie(token: &str) -> Request<()> {
    get(&[("cookie", format!("__Host-session={token}").as_bytes())])
}

fn bearer(token: &str) -> Request<()> {
    get(&[("authorization", format!("Bearer {token}").as_bytes())])
}

fn user() -> Principal {
    Principal::user("alice")
}

fn agent() -> Principal {
    Principal::agent("alice", "agent-1", "Helper")
}

#[tokio::test]
async fn each_token_comes_to_its_code() {
    let fx = nodes();
    let live = fx.issue(user()).await.1;
    let agent_live = fx.issue(agent()).await.1;
    let revoked = fx.issue_revoked(user(), RevocationReason::SignedOut).await;
    let agent_revoked = fx.issue_revoked(agent(), RevocationReason::SignedOut).await;
    let unknown = nodes().issue(user()).await.1;
    let mut rows = vec![
        Row::new("no token", get(&[]), Expect::missing()).without_store(),
        Row::new("live cookie", cookie(&live), Expect::Alice),
        Row::new("live bearer (agent)", bearer(&agent_live), Expect::Alice),
        Row::new(
            "revoked cookie",
            cookie(&revoked),
            Expect::cookie("session_revoked"),
        ),
        Row::new(
            "revoked bearer",
            bearer(&agent_revoked),
            Expect::bearer("session_revoked"),
        ),
        // Right key and shape, but the store never heard of it.
        Row::new(
            "unknown session",
            cookie(&unknown),
            Expect::cookie("session_invalid"),
        ),
        // A credential's kind follows its transport.
        Row::new(
            "user token as bearer",
            bearer(&live),
            Expect::bearer("session_invalid"),
        ),
        Row::new(
            "agent token as cookie",
            cookie(&agent_live),
            Expect::cookie("session_invalid"),
        ),
        Row::new(
            "Basic only",
            get(&[("authorization", b"Basic YWxpY2U6eA==")]),
            Expect::missing(),
        )
        .without_store(),
        Row::new(
            "Basic beside the cookie",
            get(&[
                ("authorization", b"Basic YWxpY2U6eA=="),
                ("cookie", format!("__Host-session={live}").as_bytes()),
            ]),
            Expect::Alice,
        ),
        // A session cookie came with it, so it is cleared like any refused cookie.
        Row::new(
            "one token as cookie and bearer",
            get(&[
                ("cookie", format!("__Host-session={live}").as_bytes()),
                ("authorization", format!("Bearer {live}").as_bytes()),
            ]),
            Expect::cookie("session_invalid"),
        )
        .without_store(),
    ];
    for (what, bad) in never_issued(fx.store.clone(), &live).await {
        rows.push(
            Row::new(
                format!("{what} cookie"),
                cookie(&bad),
                Expect::cookie("session_invalid"),
            )
            .without_store(),
        );
        rows.push(
            Row::new(
                format!("{what} bearer"),
                bearer(&bad),
                Expect::bearer("session_invalid"),
            )
            .without_store(),
        );
    }
    run(&fx, &rows, |g| g).await;
}

/// Header names and raw values, repeats allowed.
type Headers = Vec<(&'static str, Vec<u8>)>;

#[tokio::test]
async fn malformed_headers_are_refused_without_the_store() {
    let fx = nodes();
    let t = fx.issue(user()).await.1;
    let (invalid, missing) = (Expect::cookie("session_invalid"), Expect::missing());
    let big = "A".repeat(64 * 1024);
    let cases: Vec<(&str, Headers, Expect)> = vec![
        (
            "empty cookie value",
            vec![("cookie", b"__Host-session=".to_vec())],
            invalid.clone(),
        ),
        (
            "two session cookies, one header",
            vec![(
                "cookie",
                format!("__Host-session={t}; __Host-session={t}").into_bytes(),
            )],
            invalid.clone(),
        ),
        (
            "two session cookies, two headers",
            vec![
                ("cookie", format!("__Host-session={t}").into_bytes()),
                ("cookie", format!("__Host-session={t}").into_bytes()),
            ],
            invalid.clone(),
        ),
        (
            "name differs in case",
            vec![("cookie", format!("__host-session={t}").into_bytes())],
            missing.clone(),
        ),
        (
            "name percent-encoded",
            vec![("cookie", format!("__Host-sess%69on={t}").into_bytes())],
            missing.clone(),
        ),
        (
            "non-UTF-8 bytes",
            vec![("cookie", b"x=\xff; y=1".to_vec())],
            missing.clone(),
        ),
        (
            "non-UTF-8 session value",
            vec![("cookie", b"__Host-session=\xff\xfe; y=1".to_vec())],
            invalid.clone(),
        ),
        (
            "64 KiB session cookie",
            vec![("cookie", format!("__Host-session={big}").into_bytes())],
            invalid.clone(),
        ),
        (
            "64 KiB other cookie",
            vec![("cookie", format!("big={big}").into_bytes())],
            missing.clone(),
        ),
        (
            "Bearer",
            vec![("authorization", b"Bearer".to_vec())],
            Expect::bearer("session_invalid"),
        ),
        (
            "Bearer and a space",
            vec![("authorization", b"Bearer ".to_vec())],
            Expect::bearer("session_invalid"),
        ),
        (
            "Bearer a b",
            vec![("authorization", b"Bearer a b".to_vec())],
            Expect::bearer("session_invalid"),
        ),
        (
            "two tokens in one",
            vec![("authorization", format!("Bearer {t} {t}").into_bytes())],
            Expect::bearer("session_invalid"),
        ),
        (
            "comma",
            vec![("authorization", format!("Bearer {t},{t}").into_bytes())],
            Expect::bearer("session_invalid"),
        ),
        (
            "two Authorization headers",
            vec![
                ("authorization", format!("Bearer {t}").into_bytes()),
                ("authorization", format!("Bearer {t}").into_bytes()),
            ],
            Expect::bearer("session_invalid"),
        ),
    ];
    let rows: Vec<Row> = cases
        .into_iter()
        .map(|(what, headers, expect)| {
            let headers: Vec<(&str, &[u8])> =
                headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
            Row::new(what, get(&headers), expect).without_store()
        })
        .collect();
    run(&fx, &rows, |g| g).await;
}

#[tokio::test]
async fn lifetime_and_idle_timeout_come_to_session_expired() {
    let config = SessionConfig::new()
        .with_ttl(Duration::from_secs(300))
        .unwrap()
        .with_idle_timeout(Duration::from_secs(100))
        .unwrap();
    let fx = TwoNodes::new(config);
    let token = fx.issue(user()).await.1;
    // Each request within the idle timeout keeps it alive, past the timeout in total.
    for step in 0..3 {
        fx.clock.advance(Duration::from_secs(60));
        run(
            &fx,
            &[Row::new(
                format!("step {step}"),
                cookie(&token),
                Expect::Alice,
            )],
            |g| g,
        )
        .await;
    }
    fx.clock.advance(Duration::from_secs(101));
    run(
        &fx,
        &[Row::new(
            "idle",
            cookie(&token),
            Expect::cookie("session_expired"),
        )],
        |g| g,
    )
    .await;

    // Kept busy, it still ends at its lifetime.
    let busy = fx.issue(user()).await.1;
    for _ in 0..4 {
        fx.clock.advance(Duration::from_secs(74));
        run(
            &fx,
            &[Row::new("busy", cookie(&busy), Expect::Alice)],
            |g| g,
        )
        .await;
    }
    fx.clock.advance(Duration::from_secs(5));
    run(
        &fx,
        &[Row::new(
            "past its lifetime",
            cookie(&busy),
            Expect::cookie("session_expired"),
        )],
        |g| g,
    )
    .await;
}

#[tokio::test]
async fn the_deleting_cookie_keeps_name_path_domain_and_secure() {
    let fx = nodes();
    let revoked = fx.issue_revoked(user(), RevocationReason::SignedOut).await;
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
        (
            CookieConfig::new()
                .with_name("sid")
                .unwrap()
                .with_path("/app")
                .unwrap(),
            "sid=; HttpOnly; SameSite=Lax; Secure; Path=/app; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        ),
    ];
    for (config, deleting) in cases {
        let name = config.name().to_owned();
        let rows = [
            Row::new(
                format!("revoked {name}"),
                get(&[("cookie", format!("{name}={revoked}").as_bytes())]),
                Expect::refused(401, "session_revoked").clearing(deleting),
            ),
            Row::new(
                format!("garbage {name}"),
                get(&[("cookie", format!("{name}=garbage").as_bytes())]),
                Expect::refused(401, "session_invalid").clearing(deleting),
            ),
            // The default name is not this gate's cookie: nothing to clear.
            Row::new(
                format!("__Host-session on a {name} gate"),
                cookie(&revoked),
                Expect::missing(),
            ),
        ];
        run(&fx, &rows, |g| g.with_cookie(config.clone())).await;
    }
}

#[tokio::test]
async fn html_navigations_go_to_the_login_page() {
    let fx = nodes();
    let revoked = fx.issue_revoked(user(), RevocationReason::SignedOut).await;
    let jar = format!("__Host-session={revoked}");
    let nav = |method: Method, accept: &str, credential: Option<(&str, &str)>| {
        let mut headers: Vec<(&str, &[u8])> = vec![("accept", accept.as_bytes())];
        if let Some((name, value)) = credential {
            headers.push((name, value.as_bytes()));
        }
        request(method, "/page?a=1", &headers)
    };
    let auth = format!("Bearer {revoked}");
    let rows = [
        Row::new(
            "revoked cookie",
            nav(Method::GET, BROWSER_ACCEPT, Some(("cookie", &jar))),
            Expect::login(
                "/login?return_to=%2Fpage%3Fa%3D1&reason=session_revoked",
                true,
            ),
        ),
        Row::new(
            "no cookie",
            nav(Method::GET, BROWSER_ACCEPT, None),
            Expect::login("/login?return_to=%2Fpage%3Fa%3D1", false),
        ),
        // Not a navigation: a POST, a JSON GET; and a bearer request is an agent.
        Row::new(
            "POST",
            nav(Method::POST, BROWSER_ACCEPT, Some(("cookie", &jar))),
            Expect::cookie("session_revoked"),
        ),
        Row::new(
            "JSON GET",
            nav(Method::GET, "application/json", Some(("cookie", &jar))),
            Expect::cookie("session_revoked"),
        ),
        Row::new(
            "bearer",
            nav(Method::GET, BROWSER_ACCEPT, Some(("authorization", &auth))),
            Expect::bearer("session_revoked"),
        ),
    ];
    run(&fx, &rows, |g| g.with_login_redirect("/login")).await;
    // Without a login page configured, a navigation gets the plain 401.
    let row = Row::new(
        "no login page",
        nav(Method::GET, BROWSER_ACCEPT, Some(("cookie", &jar))),
        Expect::cookie("session_revoked"),
    );
    run(&fx, &[row], |g| g).await;
}

#[tokio::test]
async fn an_outage_is_a_503_that_clears_nothing() {
    let fx = nodes();
    let live = fx.issue(user()).await.1;
    let agent_live = fx.issue(agent()).await.1;
    fx.store.set_failing(true);
    let [(_, hot), (_, cold)] = fx
        .gates()
        .map(|(n, g)| (n, g.with_login_redirect("/login")));
    let page = request(
        Method::GET,
        "/page",
        &[
            ("accept", BROWSER_ACCEPT.as_bytes()),
            ("cookie", format!("__Host-session={live}").as_bytes()),
        ],
    );
    for (what, req) in [
        ("cookie", cookie(&live)),
        ("bearer", bearer(&agent_live)),
        ("navigation", page),
    ] {
        Expect::unavailable("1").assert(&decide(&cold, &req, GateMode::REQUIRED).await, what);
        // A node that holds the session in its cache may still serve it.
        Expect::Alice.assert(&decide(&hot, &req, GateMode::REQUIRED).await, what);
    }
    let slow = cold.clone().with_retry_after(7);
    Expect::unavailable("7").assert(
        &decide(&slow, &cookie(&live), GateMode::REQUIRED).await,
        "Retry-After: 7",
    );
    // The failure is not remembered as an answer.
    fx.store.set_failing(false);
    Expect::Alice.assert(
        &decide(&cold, &cookie(&live), GateMode::REQUIRED).await,
        "after recovery",
    );
}

#[tokio::test]
async fn a_hanging_store_is_a_503_within_the_load_timeout() {
    let config = SessionConfig::new()
        .with_load_timeout(Duration::from_millis(100))
        .unwrap();
    let fx = TwoNodes::new(config);
    let live = fx.issue(user()).await.1;
    let [_, (_, cold)] = fx.gates();
    fx.store.set_hanging(true);
    let started = std::time::Instant::now();
    let got = tokio::time::timeout(
        Duration::from_secs(2),
        decide(&cold, &cookie(&live), GateMode::REQUIRED),
    )
    .await
    .expect("a hanging store must not hang the request");
    Expect::unavailable("1").assert(&got, "hanging");
    assert!(started.elapsed() >= Duration::from_millis(100));
    fx.store.set_hanging(false);
    Expect::Alice.assert(
        &decide(&cold, &cookie(&live), GateMode::REQUIRED).await,
        "after the hang",
    );
}

#[tokio::test]
async fn optional_mode_admits_without_a_session_and_keeps_the_rejection() {
    let fx = nodes();
    let revoked = fx.issue_revoked(user(), RevocationReason::SignedOut).await;
    for (name, gate) in fx.gates() {
        for (what, req, code) in [
            ("missing", get(&[]), "session_missing"),
            ("garbage", cookie("garbage"), "session_invalid"),
            ("revoked", cookie(&revoked), "session_revoked"),
        ] {
            match decide(&gate, &req, GateMode::REQUIRED.optional()).await {
                Admission::AdmitWithout(r) => {
                    assert_eq!(r.code().as_str(), code, "{what} ({name})")
                }
                other => panic!("{what} ({name}): {other:?}"),
            }
        }
    }
}
