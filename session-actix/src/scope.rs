//! The self-service scope for actix-web: one line to mount the session routes.
//!
//! The same routes as `session-tower`'s router: `GET /me`, `GET /agent/me`,
//! `POST /logout`, `GET /sessions`, `DELETE /sessions/{id}`, `POST /sessions/revoke-others`,
//! `POST /sessions/revoke-all`, `POST /agents`, `DELETE /agents/{agent_id}`, and the HTML page
//! `GET /account/sessions` with its form actions. Every route requires a session (the scope
//! carries its own [`SessionCheck`]). Register it after your other services: the scope
//! answers 404 for paths it does not know.
//!
//! ```
//! # use std::sync::Arc;
//! # use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager, SelfService};
//! # let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default());
//! let app = actix_web::App::new()
//!     .service(session_actix::self_service(SelfService::new(SessionGate::new(manager))));
//! ```

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::web::{self, Data, Form, Json, Path};
use actix_web::{Error, HttpRequest, HttpResponse, Scope};
use session_core::page::{PageAction, PageForm, Provenance};
use session_core::selfservice::AgentGrant;
use session_core::{ClientInfo, SelfService};

use crate::extract::ValidSession;
use crate::middleware::SessionCheck;
use crate::response::reply_response;

type Svc = Data<SelfService>;

async fn me(d: Svc, ValidSession(s): ValidSession) -> HttpResponse {
    reply_response(d.me(&s))
}

async fn agent_me(d: Svc, ValidSession(s): ValidSession) -> HttpResponse {
    reply_response(d.agent_me(&s))
}

async fn logout(d: Svc, ValidSession(s): ValidSession) -> HttpResponse {
    reply_response(d.logout(&s).await)
}

async fn list(d: Svc, ValidSession(s): ValidSession) -> HttpResponse {
    reply_response(d.list(&s).await)
}

async fn revoke(d: Svc, ValidSession(s): ValidSession, id: Path<String>) -> HttpResponse {
    reply_response(d.revoke(&s, &id).await)
}

async fn revoke_others(d: Svc, ValidSession(s): ValidSession) -> HttpResponse {
    reply_response(d.revoke_others(&s).await)
}

async fn revoke_all(d: Svc, ValidSession(s): ValidSession) -> HttpResponse {
    reply_response(d.revoke_all(&s).await)
}

async fn grant_agent(
    d: Svc,
    req: HttpRequest,
    ValidSession(s): ValidSession,
    grant: Json<AgentGrant>,
) -> HttpResponse {
    reply_response(d.grant_agent(&s, &grant.name, client_info(&req)).await)
}

async fn disconnect_agent(d: Svc, ValidSession(s): ValidSession, id: Path<String>) -> HttpResponse {
    reply_response(d.disconnect_agent(&s, &id).await)
}

async fn page(d: Svc, ValidSession(s): ValidSession) -> HttpResponse {
    reply_response(d.page(&s).await)
}

async fn page_action(
    d: &SelfService,
    req: &HttpRequest,
    s: &session_core::Session,
    action: PageAction,
    form: &PageForm,
) -> HttpResponse {
    let provenance = Provenance::from_lookup(|name| req.headers().get(name).map(|v| v.as_bytes()));
    reply_response(d.page_action(s, action, form, provenance).await)
}

async fn page_revoke(
    d: Svc,
    r: HttpRequest,
    ValidSession(s): ValidSession,
    f: Form<PageForm>,
) -> HttpResponse {
    page_action(&d, &r, &s, PageAction::Revoke, &f).await
}

async fn page_revoke_others(
    d: Svc,
    r: HttpRequest,
    ValidSession(s): ValidSession,
    f: Form<PageForm>,
) -> HttpResponse {
    page_action(&d, &r, &s, PageAction::RevokeOthers, &f).await
}

async fn page_revoke_all(
    d: Svc,
    r: HttpRequest,
    ValidSession(s): ValidSession,
    f: Form<PageForm>,
) -> HttpResponse {
    page_action(&d, &r, &s, PageAction::RevokeAll, &f).await
}

/// The client details a new session records: `User-Agent` and the peer's IP.
#[must_use]
pub fn client_info(req: &HttpRequest) -> ClientInfo {
    ClientInfo::from_request(
        req.headers().get("user-agent").map(|v| v.as_bytes()),
        req.peer_addr().map(|a| a.ip()),
    )
}

/// The session routes over `service`, with their own [`SessionCheck`] (sessions required).
pub fn self_service(
    service: SelfService,
) -> Scope<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<EitherBody<BoxBody>>,
        Error = Error,
        InitError = (),
    >,
> {
    let page_path = service.page_path().to_owned();
    let check = SessionCheck::new(service.gate().clone());
    web::scope("")
        .app_data(Data::new(service))
        .wrap(check)
        .route("/me", web::get().to(me))
        .route("/agent/me", web::get().to(agent_me))
        .route("/logout", web::post().to(logout))
        .route("/sessions", web::get().to(list))
        .route("/sessions/revoke-others", web::post().to(revoke_others))
        .route("/sessions/revoke-all", web::post().to(revoke_all))
        .route("/sessions/{id}", web::delete().to(revoke))
        .route("/agents", web::post().to(grant_agent))
        .route("/agents/{agent_id}", web::delete().to(disconnect_agent))
        .route(&page_path, web::get().to(page))
        .route(&format!("{page_path}/revoke"), web::post().to(page_revoke))
        .route(
            &format!("{page_path}/revoke-others"),
            web::post().to(page_revoke_others),
        )
        .route(
            &format!("{page_path}/revoke-all"),
            web::post().to(page_revoke_all),
        )
}
