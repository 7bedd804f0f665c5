//! The self-service router for axum: one line to mount the session routes.
//!
//! `GET /me`, `GET /agent/me`, `POST /logout`, `GET /sessions`, `DELETE /sessions/{id}`,
//! `POST /sessions/revoke-others`, `POST /sessions/revoke-all`, `POST /agents`,
//! `DELETE /agents/{agent_id}`, and the HTML page `GET /account/sessions` with its form
//! actions (`POST /account/sessions/revoke`, `…/revoke-others`, `…/revoke-all`). Every
//! route requires a session (the router carries its own [`SessionLayer`]).
//!
//! ```
//! # use std::sync::Arc;
//! # use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager, SelfService};
//! # let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default());
//! let app: axum::Router = axum::Router::new()
//!     .merge(session_tower::self_service(SelfService::new(SessionGate::new(manager))));
//! ```

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Response, header::USER_AGENT};
use axum::routing::{delete, get, post};
use axum::{Extension, Form, Json, Router};
use session_core::page::{PageAction, PageForm, Provenance};
use session_core::selfservice::AgentGrant;
use session_core::{ClientInfo, Reply, SelfService};

use crate::extract::ValidSession;
use crate::layer::SessionLayer;
use crate::response::reply_response;

type Body = axum::body::Body;

fn respond(reply: Reply) -> Response<Body> {
    reply_response(reply).map(Body::new)
}

async fn page_action(
    service: &SelfService,
    session: &session_core::Session,
    action: PageAction,
    headers: &HeaderMap,
    form: &PageForm,
) -> Response<Body> {
    let provenance = Provenance::from_lookup(|name| headers.get(name).map(|v| v.as_bytes()));
    respond(service.page_action(session, action, form, provenance).await)
}

/// The client details a new session records: `User-Agent` and the peer's IP (known when
/// the app is served with `into_make_service_with_connect_info::<SocketAddr>()`).
#[must_use]
pub fn client_info(headers: &HeaderMap, peer: Option<SocketAddr>) -> ClientInfo {
    ClientInfo::from_request(
        headers.get(USER_AGENT).map(|v| v.as_bytes()),
        peer.map(|addr| addr.ip()),
    )
}

/// The session routes over `service`, with its own [`SessionLayer`] (sessions required).
/// `POST /agents` records the client's IP when the app is served with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn self_service<S>(service: SelfService) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let layer = SessionLayer::new(service.gate().clone());
    let page = service.page_path().to_owned();
    Router::new()
        .route(
            "/me",
            get(
                |State(d): State<SelfService>, ValidSession(s): ValidSession| async move {
                    respond(d.me(&s))
                },
            ),
        )
        .route(
            "/agent/me",
            get(
                |State(d): State<SelfService>, ValidSession(s): ValidSession| async move {
                    respond(d.agent_me(&s))
                },
            ),
        )
        .route(
            "/logout",
            post(
                |State(d): State<SelfService>, ValidSession(s): ValidSession| async move {
                    respond(d.logout(&s).await)
                },
            ),
        )
        .route(
            "/sessions",
            get(
                |State(d): State<SelfService>, ValidSession(s): ValidSession| async move {
                    respond(d.list(&s).await)
                },
            ),
        )
        .route(
            "/sessions/{id}",
            delete(
                |State(d): State<SelfService>,
                 ValidSession(s): ValidSession,
                 Path(id): Path<String>| async move { respond(d.revoke(&s, &id).await) },
            ),
        )
        .route(
            "/sessions/revoke-others",
            post(
                |State(d): State<SelfService>, ValidSession(s): ValidSession| async move {
                    respond(d.revoke_others(&s).await)
                },
            ),
        )
        .route(
            "/sessions/revoke-all",
            post(
                |State(d): State<SelfService>, ValidSession(s): ValidSession| async move {
                    respond(d.revoke_all(&s).await)
                },
            ),
        )
        .route("/agents", post(grant_agent))
        .route(
            "/agents/{agent_id}",
            delete(
                |State(d): State<SelfService>,
                 ValidSession(s): ValidSession,
                 Path(id): Path<String>| async move {
                    respond(d.disconnect_agent(&s, &id).await)
                },
            ),
        )
        .route(
            &page,
            get(
                |State(d): State<SelfService>, ValidSession(s): ValidSession| async move {
                    respond(d.page(&s).await)
                },
            ),
        )
        .route(
            &format!("{page}/revoke"),
            post(
                |State(d): State<SelfService>,
                 ValidSession(s): ValidSession,
                 h: HeaderMap,
                 Form(f): Form<PageForm>| async move {
                    page_action(&d, &s, PageAction::Revoke, &h, &f).await
                },
            ),
        )
        .route(
            &format!("{page}/revoke-others"),
            post(
                |State(d): State<SelfService>,
                 ValidSession(s): ValidSession,
                 h: HeaderMap,
                 Form(f): Form<PageForm>| async move {
                    page_action(&d, &s, PageAction::RevokeOthers, &h, &f).await
                },
            ),
        )
        .route(
            &format!("{page}/revoke-all"),
            post(
                |State(d): State<SelfService>,
                 ValidSession(s): ValidSession,
                 h: HeaderMap,
                 Form(f): Form<PageForm>| async move {
                    page_action(&d, &s, PageAction::RevokeAll, &h, &f).await
                },
            ),
        )
        .layer(layer)
        .with_state(service)
}

async fn grant_agent(
    State(service): State<SelfService>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ValidSession(session): ValidSession,
    Json(grant): Json<AgentGrant>,
) -> Response<Body> {
    let peer = connect.map(|Extension(ConnectInfo(addr))| addr);
    let client = client_info(&headers, peer);
    respond(service.grant_agent(&session, &grant.name, client).await)
}
