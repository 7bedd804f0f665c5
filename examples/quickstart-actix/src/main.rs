use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use session_actix::{SessionCheck, ValidSession, session_selfservice::SelfService};
use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager, UserId};

// No `action`: the form posts back to /login?return_to=…, where the login redirect sent it.
const LOGIN_PAGE: &str = r#"<form method="post"><input name="username">
  <input name="password" type="password"><button>Sign in</button></form>"#;

#[derive(serde::Deserialize)]
struct Login {
    username: String,
    password: String,
}
#[derive(serde::Deserialize)]
struct ReturnTo {
    return_to: Option<String>,
}

fn html(status: actix_web::http::StatusCode, body: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body.into())
}

async fn login(
    gate: web::Data<SessionGate>, req: HttpRequest, current: Option<ValidSession>, q: web::Query<ReturnTo>,
    form: web::Form<Login>,
) -> HttpResponse {
    let user = UserId::from(form.username.as_str());
    // Read before the password check: a "sign out everywhere" racing this login wins.
    let Ok(epoch) = gate.manager().login_epoch(&user).await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    if !["alice", "bob"].contains(&form.username.as_str())
        || form.password != format!("{}-password", form.username)
    {
        // your check: Argon2id, your users
        return html(actix_web::http::StatusCode::UNAUTHORIZED, LOGIN_PAGE);
    }
    let client = session_actix::client_info(&req);
    let current = current.map(|ValidSession(s)| s); // revoked: a login never reuses a session
    session_actix::sign_in(&gate, epoch, user, client, q.return_to.as_deref(), current.as_ref()).await
}

async fn home(ValidSession(session): ValidSession) -> HttpResponse {
    html(
        actix_web::http::StatusCode::OK,
        format!(
            r#"Hello {}. <a href="/auth/account/sessions">Your sessions</a>
  <form method="post" action="/logout"><button>Sign out</button></form>
  <form method="post" action="/logout-everywhere"><button>Sign out everywhere</button></form>"#,
            session.user_id()
        ),
    )
}

async fn logout(gate: web::Data<SessionGate>, ValidSession(s): ValidSession) -> HttpResponse {
    session_actix::sign_out(&gate, &s, "/login").await // 303, cookie cleared
}

async fn logout_everywhere(gate: web::Data<SessionGate>, ValidSession(s): ValidSession) -> HttpResponse {
    session_actix::sign_out_everywhere(&gate, &s, "/login").await
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The memory store dies with the process, and so may its key.
    let manager =
        SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
    // A refused browser navigation goes to /login?return_to=…&reason=…
    let gate = SessionGate::new(manager).with_login_redirect("/login");

    let port: u16 = std::env::var("PORT").map_or(Ok(3001), |p| p.parse())?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(gate.clone()))
            // Public: a session is optional; the login POST still gets the cross-site check.
            .service(
                web::resource("/login")
                    .wrap(SessionCheck::new(gate.clone()).optional().guard_forms())
                    .get(|| async { html(actix_web::http::StatusCode::OK, LOGIN_PAGE) })
                    .post(login),
            )
            // /auth/me, /auth/sessions, …, and the sessions page /auth/account/sessions.
            .configure(session_actix::self_service(SelfService::new(gate.clone()).with_prefix("/auth")))
            // Everything else needs a session (this scope matches every path: register it last).
            .service(
                web::scope("")
                    .wrap(SessionCheck::new(gate.clone()))
                    .route("/", web::get().to(home))
                    .route("/logout", web::post().to(logout))
                    .route("/logout-everywhere", web::post().to(logout_everywhere)),
            )
    })
    .bind(("127.0.0.1", port))?;
    println!("listening on http://{}", server.addrs()[0]);
    server.run().await?;
    Ok(())
}
