//! session-actix on its own: the middleware's answers, the extractor, and each helper's
//! exact `Set-Cookie` and `Location`, through a real actix-web service.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{LOCATION, SET_COOKIE};
use actix_web::{App, HttpRequest, HttpResponse, test, web};
use session_actix::{SessionCheck, ValidSession};
use session_core::{
    ClientInfo, KeySet, MemoryStore, Principal, SessionConfig, SessionGate, SessionManager, UserId,
};

const REMOVAL: &str = "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";

fn gate() -> SessionGate {
    let manager = SessionManager::new(
        Arc::new(MemoryStore::new()),
        KeySet::random(),
        SessionConfig::default(),
    )
    .expect("default settings");
    SessionGate::new(manager).with_login_redirect("/login")
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

fn header(
    res: &actix_web::dev::ServiceResponse,
    name: actix_web::http::header::HeaderName,
) -> Vec<String> {
    res.headers()
        .get_all(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[derive(serde::Deserialize)]
struct Login {
    user: String,
    return_to: Option<String>,
}

async fn login(
    gate: web::Data<SessionGate>,
    req: HttpRequest,
    current: Option<ValidSession>,
    q: web::Query<Login>,
) -> HttpResponse {
    let user = UserId::from(q.user.as_str());
    let epoch = gate.manager().login_epoch(&user).await.unwrap();
    let current = current.map(|ValidSession(s)| s);
    let client = session_actix::client_info(&req);
    session_actix::sign_in(
        &gate,
        epoch,
        user,
        client,
        q.return_to.as_deref(),
        current.as_ref(),
    )
    .await
}

async fn logout(gate: web::Data<SessionGate>, ValidSession(s): ValidSession) -> HttpResponse {
    session_actix::sign_out(&gate, &s, "/login").await
}

async fn everywhere(gate: web::Data<SessionGate>, ValidSession(s): ValidSession) -> HttpResponse {
    session_actix::sign_out_everywhere(&gate, &s, "/login").await
}

async fn me(ValidSession(s): ValidSession) -> HttpResponse {
    HttpResponse::Ok().body(s.user_id().to_string())
}

async fn maybe(s: Option<ValidSession>) -> HttpResponse {
    HttpResponse::Ok().body(s.map_or_else(
        || "nobody".to_owned(),
        |ValidSession(s)| s.user_id().to_string(),
    ))
}

macro_rules! app {
    ($gate:expr) => {{
        let gate: SessionGate = $gate;
        test::init_service(
            App::new()
                .app_data(web::Data::new(gate.clone()))
                .service(
                    web::resource("/login")
                        .wrap(SessionCheck::new(gate.clone()).optional().guard_forms())
                        .route(web::post().to(login)),
                )
                .service(web::resource("/unguarded").route(web::get().to(me)))
                .service(
                    web::resource("/maybe")
                        .wrap(SessionCheck::new(gate.clone()).optional())
                        .route(web::get().to(maybe)),
                )
                .service(
                    web::scope("")
                        .wrap(SessionCheck::new(gate.clone()))
                        .route("/me", web::get().to(me))
                        .route("/logout", web::post().to(logout))
                        .route("/everywhere", web::post().to(everywhere)),
                ),
        )
        .await
    }};
}

#[actix_web::test]
async fn sign_in_sets_the_cookie_and_goes_to_a_local_return_to_only() {
    let gate = gate();
    let app = app!(gate.clone());
    for (return_to, location) in [
        ("%2Faccount%2Fsessions%3Ftab%3D1", "/account/sessions?tab=1"),
        ("%2F%2Fevil.example", "/"),
        ("https%3A%2F%2Fevil.example", "/"),
        ("%2F%5Cevil.example", "/"),
    ] {
        let req = test::TestRequest::post()
            .uri(&format!("/login?user=alice&return_to={return_to}"))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(header(&res, LOCATION), [location], "{return_to}");
        let cookies = header(&res, SET_COOKIE);
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        let token = issued_cookie(&cookies[0]);
        assert!(gate.manager().validate(token.as_bytes()).await.is_ok());
    }
}

#[actix_web::test]
async fn signing_in_again_revokes_the_session_the_request_came_with() {
    let gate = gate();
    let app = app!(gate.clone());
    let first = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/login?user=alice")
            .to_request(),
    )
    .await;
    let old = issued_cookie(&header(&first, SET_COOKIE)[0]);
    let again = test::TestRequest::post()
        .uri("/login?user=alice")
        .insert_header(("cookie", format!("__Host-session={old}")))
        .to_request();
    let res = test::call_service(&app, again).await;
    let new = issued_cookie(&header(&res, SET_COOKIE)[0]);
    assert_ne!(old, new);
    assert!(
        gate.manager().validate(old.as_bytes()).await.is_err(),
        "the old session lives"
    );
}

#[actix_web::test]
async fn sign_out_clears_the_exact_cookie_and_redirects() {
    let gate = gate();
    let app = app!(gate.clone());
    let issued = gate
        .manager()
        .issue(Principal::user("alice"), ClientInfo::default())
        .await
        .unwrap();
    let other = gate
        .manager()
        .issue(Principal::user("alice"), ClientInfo::default())
        .await
        .unwrap();
    let req = test::TestRequest::post()
        .uri("/logout")
        .insert_header((
            "cookie",
            format!("__Host-session={}", issued.token.expose()),
        ))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&res, LOCATION), ["/login"]);
    assert_eq!(header(&res, SET_COOKIE), [REMOVAL]);
    assert!(
        gate.manager()
            .validate(issued.token.expose().as_bytes())
            .await
            .is_err()
    );
    assert!(
        gate.manager()
            .validate(other.token.expose().as_bytes())
            .await
            .is_ok(),
        "only this one"
    );
}

#[actix_web::test]
async fn sign_out_everywhere_ends_every_session_and_agent() {
    let gate = gate();
    let app = app!(gate.clone());
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
    let req = test::TestRequest::post()
        .uri("/everywhere")
        .insert_header(("cookie", format!("__Host-session={}", here.token.expose())))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&res, LOCATION), ["/login"]);
    assert_eq!(header(&res, SET_COOKIE), [REMOVAL]);
    for gone in [&here, &phone, &agent] {
        assert!(m.validate(gone.token.expose().as_bytes()).await.is_err());
    }
    assert!(
        m.validate(bob.token.expose().as_bytes()).await.is_ok(),
        "bob untouched"
    );
}

#[actix_web::test]
async fn cookie_helpers_speak_actix_types() {
    let gate = gate();
    let (name, value) = session_actix::clear_cookie(&gate);
    assert_eq!(name, SET_COOKIE);
    assert_eq!(value, REMOVAL);
    let issued = gate
        .manager()
        .issue(Principal::user("alice"), ClientInfo::default())
        .await
        .unwrap();
    let res = HttpResponse::Ok()
        .insert_header(session_actix::session_cookie(&gate, &issued.token))
        .finish();
    let set = res.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    assert_eq!(issued_cookie(set), issued.token.expose());
}

/// What, the request, and the answer's status, body, `Set-Cookie` and `Location`.
type Case = (
    &'static str,
    test::TestRequest,
    u16,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

#[actix_web::test]
async fn the_middleware_answers_each_case() {
    let gate = gate();
    let app = app!(gate.clone());
    let m = gate.manager();
    let alice = m
        .issue(Principal::user("alice"), ClientInfo::default())
        .await
        .unwrap();
    let agent = m
        .grant_agent(
            &alice.session,
            "helper".into(),
            "Helper".into(),
            ClientInfo::default(),
        )
        .await
        .unwrap();
    let revoked = m
        .issue(Principal::user("alice"), ClientInfo::default())
        .await
        .unwrap();
    m.revoke(
        revoked.session.id(),
        session_core::RevocationReason::SignedOut,
        session_core::Actor::User,
    )
    .await
    .unwrap();
    let cookie = |t: &str| ("cookie", format!("__Host-session={t}"));
    let bearer = |t: &str| ("authorization", format!("Bearer {t}"));

    let cases: Vec<Case> = vec![
        (
            "valid cookie",
            test::TestRequest::get()
                .uri("/me")
                .insert_header(cookie(alice.token.expose())),
            200,
            "alice",
            None,
            None,
        ),
        (
            "agent bearer",
            test::TestRequest::get()
                .uri("/me")
                .insert_header(bearer(agent.token.expose())),
            200,
            "alice",
            None,
            None,
        ),
        (
            "no cookie",
            test::TestRequest::get().uri("/me"),
            401,
            r#"{"error":"session_missing"}"#,
            None,
            None,
        ),
        (
            "revoked",
            test::TestRequest::get()
                .uri("/me")
                .insert_header(cookie(revoked.token.expose())),
            401,
            r#"{"error":"session_revoked"}"#,
            Some(REMOVAL),
            None,
        ),
        (
            "garbage",
            test::TestRequest::get()
                .uri("/me")
                .insert_header(cookie("garbage")),
            401,
            r#"{"error":"session_invalid"}"#,
            Some(REMOVAL),
            None,
        ),
        (
            "agent token as cookie",
            test::TestRequest::get()
                .uri("/me")
                .insert_header(cookie(agent.token.expose())),
            401,
            r#"{"error":"session_invalid"}"#,
            Some(REMOVAL),
            None,
        ),
        (
            "user token as bearer",
            test::TestRequest::get()
                .uri("/me")
                .insert_header(bearer(alice.token.expose())),
            401,
            r#"{"error":"session_invalid"}"#,
            None,
            None,
        ),
        (
            "revoked navigation",
            test::TestRequest::get()
                .uri("/me?x=1")
                .insert_header(("accept", "text/html"))
                .insert_header(cookie(revoked.token.expose())),
            303,
            "",
            Some(REMOVAL),
            Some("/login?return_to=%2Fme%3Fx%3D1&reason=session_revoked"),
        ),
        (
            "cross-site post",
            test::TestRequest::post()
                .uri("/logout")
                .insert_header(("origin", "https://evil.example"))
                .insert_header(cookie(alice.token.expose())),
            403,
            r#"{"error":"cross_site_request"}"#,
            None,
            None,
        ),
        (
            "cross-site login",
            test::TestRequest::post()
                .uri("/login?user=alice")
                .insert_header(("sec-fetch-site", "cross-site")),
            403,
            r#"{"error":"cross_site_request"}"#,
            None,
            None,
        ),
        (
            "optional, none",
            test::TestRequest::get().uri("/maybe"),
            200,
            "nobody",
            None,
            None,
        ),
        (
            "optional, some",
            test::TestRequest::get()
                .uri("/maybe")
                .insert_header(cookie(alice.token.expose())),
            200,
            "alice",
            None,
            None,
        ),
        (
            "no middleware",
            test::TestRequest::get()
                .uri("/unguarded")
                .insert_header(cookie(alice.token.expose())),
            500,
            "",
            None,
            None,
        ),
    ];
    for (what, req, status, body, set_cookie, location) in cases {
        let res = test::call_service(&app, req.to_request()).await;
        assert_eq!(res.status().as_u16(), status, "{what}");
        assert_eq!(
            header(&res, SET_COOKIE),
            set_cookie.into_iter().collect::<Vec<_>>(),
            "{what}"
        );
        assert_eq!(
            header(&res, LOCATION),
            location.into_iter().collect::<Vec<_>>(),
            "{what}"
        );
        let got = test::read_body(res).await;
        if !body.is_empty() {
            assert_eq!(got, body.as_bytes(), "{what}");
        }
    }
    assert!(
        m.validate(alice.token.expose().as_bytes()).await.is_ok(),
        "the cross-site post changed nothing"
    );
}
