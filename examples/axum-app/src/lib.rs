//! The router of the axum example app (run it with `cargo run -p axum-app`).
//!
//! The example app of `examples/README.md` on axum. Its own pages are axum handlers
//! behind [`SessionLayer`]s: the login form (public, its POST held to the cross-site rule)
//! and the home page (a session required: a refused browser is sent to the login page).
//! Everything else, the same in both example apps, comes from one route table
//! ([`Demo::routes`]) that [`session_tower::routes`] mounts.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, Response};
use axum::routing::get;
use axum::{Form, Router};
use example_support::{Demo, LoginForm, LoginQuery};
use session_tower::{SessionLayer, ValidSession, client_info, respond};

/// The app's routes over `demo`'s sessions and users.
pub fn app(demo: Demo) -> Router {
    let gate = demo.gate().clone();
    // Public pages: a session is optional, and the login POST is held to the cross-site
    // rule even without a cookie (login CSRF).
    let public = Router::new()
        .route("/login", get(login_page).post(login))
        .layer(SessionLayer::new(gate.clone()).optional().guard_forms());
    // Pages behind a session: a refused browser navigation is sent to the login page.
    let signed_in = Router::new()
        .route("/", get(home))
        .layer(SessionLayer::new(gate));
    public
        .merge(signed_in)
        .with_state(demo.clone())
        .merge(session_tower::routes(demo.routes()))
}

async fn login_page(State(demo): State<Demo>, Query(q): Query<LoginQuery>) -> Response<Body> {
    respond(demo.login_page(&q))
}

async fn login(
    State(demo): State<Demo>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    current: Option<ValidSession>,
    Form(form): Form<LoginForm>,
) -> Response<Body> {
    let current = current.map(|ValidSession(s)| s);
    let client = client_info(&headers, Some(peer));
    respond(demo.login(&form, client, current.as_ref()).await)
}

async fn home(State(demo): State<Demo>, ValidSession(session): ValidSession) -> Response<Body> {
    respond(demo.home(&session))
}
