use axum::extract::{ConnectInfo, Form, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::{Router, http::HeaderMap, http::StatusCode, routing::get, routing::post};
use session_core::{KeySet, SessionConfig, SessionGate, SessionManager, UserId};
use session_sqlite::SqliteStore;
use session_tower::{SessionLayer, ValidSession, session_selfservice::SelfService};
use std::{collections::HashMap, net::SocketAddr, sync::Arc};

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
    State(gate): State<SessionGate>, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap,
    replacing: Option<ValidSession>, Query(query): Query<HashMap<String, String>>, Form(form): Form<Login>,
) -> Result<Response, StatusCode> {
    let user = UserId::from(form.username.as_str());
    // Read before the password check: a "sign out everywhere" racing this login wins.
    let epoch = gate.manager().login_epoch(&user).await.map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    if !matches!((&*form.username, &*form.password), ("alice", "alice-password") | ("bob", "bob-password")) {
        return Ok((StatusCode::UNAUTHORIZED, Html(LOGIN_PAGE)).into_response());
    }
    let client = session_tower::client_info(&headers, Some(peer));
    let return_to = query.get("return_to").map(String::as_str); // local paths only, else /
    Ok(session_tower::sign_in(&gate, epoch, user, client, return_to, replacing.as_ref().map(|r| &r.0)).await)
}
async fn home(ValidSession(s): ValidSession) -> Html<String> {
    Html(format!(r#"Hello {}. <a href="/auth/account/sessions">Your sessions</a>{HOME}"#, s.user_id()))
}
async fn logout(State(gate): State<SessionGate>, ValidSession(s): ValidSession) -> Response {
    session_tower::sign_out(&gate, &s, "/login").await // 303, cookie cleared
}
async fn logout_everywhere(State(gate): State<SessionGate>, ValidSession(s): ValidSession) -> Response {
    session_tower::sign_out_everywhere(&gate, &s, "/login").await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init(); // start-up warnings included
    let keys = KeySet::from_env_or_random("SESSION_KEYS")?; // unset: a random key, and a warning
    let store = Arc::new(SqliteStore::open("sessions.db").await?);
    let manager = SessionManager::new(store, keys, SessionConfig::default())?;
    let gate = SessionGate::new(manager).with_login_redirect("/login"); // where refused pages go
    let public = SessionLayer::new(gate.clone()).optional().guard_forms(); // login CSRF refused
    let app = Router::new()
        .route("/", get(home))
        .route("/logout", post(logout))
        .route("/logout-everywhere", post(logout_everywhere))
        .layer(SessionLayer::new(gate.clone())) // the routes above it need a session
        .route("/login", get(Html(LOGIN_PAGE)).post(login).layer(public))
        .with_state(gate.clone())
        .merge(session_tower::self_service(SelfService::new(gate).with_prefix("/auth")));
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    Ok(axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?)
}
