use actix_web::{App, HttpRequest, HttpResponse, HttpServer, http::header::ContentType, web, web::Html};
use session_actix::{SessionCheck, ValidSession, session_selfservice::SelfService};
use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager, UserId};
use std::{collections::HashMap, sync::Arc};

const LOGIN_PAGE: &str = r#"<form method="post"><input name="username">
  <input name="password" type="password"><button>Sign in</button></form>"#; // no action: keeps ?return_to
const HOME: &str = r#"<form method="post"><button formaction="/logout">Sign out</button>
  <button formaction="/logout-everywhere">Sign out everywhere</button></form>"#;

#[derive(serde::Deserialize)]
struct Login {
    username: String,
    password: String,
}
async fn login(
    gate: web::Data<SessionGate>, req: HttpRequest, replacing: Option<ValidSession>,
    query: web::Query<HashMap<String, String>>, form: web::Form<Login>,
) -> HttpResponse {
    let user = UserId::from(form.username.as_str());
    // Read before the password check: a "sign out everywhere" racing this login wins.
    let Ok(epoch) = gate.manager().login_epoch(&user).await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    if !matches!((&*form.username, &*form.password), ("alice", "alice-password") | ("bob", "bob-password")) {
        return HttpResponse::Unauthorized().content_type(ContentType::html()).body(LOGIN_PAGE);
    }
    let client = session_actix::client_info(&req);
    let return_to = query.get("return_to").map(String::as_str); // local paths only, else /
    session_actix::sign_in(&gate, epoch, user, client, return_to, replacing.as_ref().map(|r| &r.0)).await
}
async fn home(ValidSession(s): ValidSession) -> Html {
    Html::new(format!(r#"Hello {}. <a href="/auth/account/sessions">Your sessions</a>{HOME}"#, s.user_id()))
}
async fn logout(gate: web::Data<SessionGate>, ValidSession(s): ValidSession) -> HttpResponse {
    session_actix::sign_out(&gate, &s, "/login").await // 303, cookie cleared
}
async fn logout_everywhere(gate: web::Data<SessionGate>, ValidSession(s): ValidSession) -> HttpResponse {
    session_actix::sign_out_everywhere(&gate, &s, "/login").await
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::new()); // dies with the process, and so may its key
    let manager = SessionManager::new(store, KeySet::random(), SessionConfig::default())?;
    let gate = SessionGate::new(manager).with_login_redirect("/login"); // where refused pages go
    let port: u16 = std::env::var("PORT").map_or(Ok(3001), |p| p.parse())?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(gate.clone()))
            .service(
                web::resource("/login")
                    .wrap(SessionCheck::new(gate.clone()).optional().guard_forms()) // login CSRF refused
                    .get(|| async { Html::new(LOGIN_PAGE) })
                    .post(login),
            )
            .configure(session_actix::self_service(SelfService::new(gate.clone()).with_prefix("/auth")))
            .service(
                web::scope("") // every other path needs a session: register this scope last
                    .wrap(SessionCheck::new(gate.clone()))
                    .route("/", web::get().to(home))
                    .route("/logout", web::post().to(logout))
                    .route("/logout-everywhere", web::post().to(logout_everywhere)),
            )
    })
    .bind(("127.0.0.1", port))?;
    println!("listening on http://{}", server.addrs()[0]);
    Ok(server.run().await?)
}
