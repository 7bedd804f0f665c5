//! The router of the axum example app (run it with `cargo run -p axum-app`).
//!
//! The example app of `../shared/CONTRACT.md` on axum: log in, list and revoke sessions,
//! sign out everywhere, reset a password, grant and disconnect agents, and the OpenAPI
//! document of the JSON routes at `GET /openapi.json`. All logic lives in `session-core`
//! and `example-support`; this file routes and translates.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use example_support::{AdminRevoke, Demo, LoginForm, LoginQuery, PasswordResetForm, openapi_json};
use session_core::Reply;
use session_tower::{SessionLayer, ValidSession, client_info, reply_response, self_service};

fn respond(reply: Reply) -> Response<Body> {
    reply_response(reply).map(Body::new)
}

/// The app's routes over `demo`'s sessions and users.
pub fn app(demo: Demo) -> Router {
    let gate = demo.gate().clone();
    let openapi = Bytes::from(openapi_json());
    let home = Router::new()
        .route(
            "/",
            get(
                |State(d): State<Demo>, ValidSession(s): ValidSession| async move {
                    respond(d.home(&s))
                },
            ),
        )
        .layer(SessionLayer::new(gate.clone()));
    let public = Router::new()
        .route(
            "/login",
            get(
                |State(d): State<Demo>, Query(q): Query<LoginQuery>| async move {
                    respond(d.login_page(q.return_to.as_deref()))
                },
            )
            .post(login),
        )
        .layer(SessionLayer::new(gate).optional())
        .route("/password-reset", post(password_reset))
        .route("/admin/users/{user_id}/revoke-all", post(admin_revoke_all))
        .route(
            "/openapi.json",
            get(move || async move {
                (
                    [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                    openapi,
                )
            }),
        );
    home.merge(public)
        .with_state(demo.clone())
        .merge(self_service(demo.sessions))
}

async fn login(
    State(demo): State<Demo>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    current: Option<ValidSession>,
    Form(form): Form<LoginForm>,
) -> Response<Body> {
    let current = current.map(|ValidSession(s)| s);
    respond(
        demo.login(&form, current.as_ref(), client_info(&headers, Some(addr)))
            .await,
    )
}

async fn password_reset(
    State(demo): State<Demo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let content_type = headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes);
    match PasswordResetForm::parse(content_type, &body) {
        Ok(form) => respond(demo.password_reset(&form).await),
        Err(reply) => respond(reply),
    }
}

async fn admin_revoke_all(
    State(demo): State<Demo>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Response<Body> {
    if !demo.is_admin(headers.get(AUTHORIZATION).map(HeaderValue::as_bytes)) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match AdminRevoke::parse(&body) {
        Ok(req) => respond(demo.admin_revoke_all(&user_id, req.reason.as_deref()).await),
        Err(reply) => respond(reply),
    }
}
