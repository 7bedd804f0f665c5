use std::{net::SocketAddr, sync::Arc};

use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{
    Router,
    routing::{get, post},
};
use session_core::{KeySet, SessionConfig, SessionGate, SessionManager, UserId};
use session_sqlite::SqliteStore;
use session_tower::{SessionLayer, ValidSession, session_selfservice::SelfService};

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

async fn login(
    State(gate): State<SessionGate>, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap,
    current: Option<ValidSession>, Query(q): Query<ReturnTo>, Form(form): Form<Login>,
) -> Response {
    let user = UserId::from(form.username.as_str());
    // Read before the password check: a "sign out everywhere" racing this login wins.
    let Ok(epoch) = gate.manager().login_epoch(&user).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    if !["alice", "bob"].contains(&form.username.as_str())
        || form.password != format!("{}-password", form.username)
    {
        // your check: Argon2id, your users
        return (StatusCode::UNAUTHORIZED, Html(LOGIN_PAGE)).into_response();
    }
    let client = session_tower::client_info(&headers, Some(peer));
    let current = current.map(|ValidSession(s)| s); // revoked: a login never reuses a session
    session_tower::sign_in(&gate, epoch, user, client, q.return_to.as_deref(), current.as_ref()).await
}

async fn home(ValidSession(session): ValidSession) -> Html<String> {
    Html(format!(
        r#"Hello {}. <a href="/auth/account/sessions">Your sessions</a>
  <form method="post" action="/logout"><button>Sign out</button></form>
  <form method="post" action="/logout-everywhere"><button>Sign out everywhere</button></form>"#,
        session.user_id()
    ))
}

async fn logout(State(gate): State<SessionGate>, ValidSession(s): ValidSession) -> Response {
    session_tower::sign_out(&gate, &s, "/login").await // 303, cookie cleared
}

async fn logout_everywhere(State(gate): State<SessionGate>, ValidSession(s): ValidSession) -> Response {
    session_tower::sign_out_everywhere(&gate, &s, "/login").await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init(); // start-up warnings included
    // SESSION_KEYS: a key from `session-admin keys generate`, the same on every node. Unset:
    // a random key, which dies with the process and all its sessions (you get a warning).
    let keys = KeySet::from_env_or_random("SESSION_KEYS")?;
    let store = Arc::new(SqliteStore::open("sessions.db").await?);
    let manager = SessionManager::new(store, keys, SessionConfig::default())?;
    // A refused browser navigation goes to /login?return_to=…&reason=…
    let gate = SessionGate::new(manager).with_login_redirect("/login");

    let app = Router::new()
        // Public: a session is optional; the login POST still gets the cross-site check.
        .route("/login", get(Html(LOGIN_PAGE)).post(login))
        .layer(SessionLayer::new(gate.clone()).optional().guard_forms())
        .merge(
            Router::new() // these need a session
                .route("/", get(home))
                .route("/logout", post(logout))
                .route("/logout-everywhere", post(logout_everywhere))
                .layer(SessionLayer::new(gate.clone())),
        )
        .with_state(gate.clone())
        // /auth/me, /auth/sessions, …, and the sessions page /auth/account/sessions.
        .merge(session_tower::self_service(SelfService::new(gate).with_prefix("/auth")));

    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
