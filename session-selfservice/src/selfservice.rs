//! [`SelfService`]: the signed-in user's own routes: who am I, my sessions, sign one out,
//! sign out the others, sign out everywhere, sign out, grant and disconnect agents, and
//! the HTML sessions page with its forms.

use http::header::SET_COOKIE;
use http::{Method, StatusCode};
use session_core::{
    Actor, AgentId, Principal, RejectionCode, Reply, RevocationReason, RevokeScope, Session,
    SessionError, SessionGate, SessionId, SessionKind,
};

use crate::table::{Access, Call, Route, RouteTable};
use crate::views::{AgentGrant, AgentGranted, AgentMeView, MeView, Revoked, SessionView, codes};

/// The self-service routes, over a gate (for its manager and cookie).
///
/// | route | access | answer |
/// | --- | --- | --- |
/// | `GET /me` | session | `{"user_id", "session_id", "kind"}` |
/// | `GET /agent/me` | agent (bearer) | the agent's view of itself |
/// | `POST /logout` | session | revokes it, clears the cookie, 303 to the login page |
/// | `GET /sessions` | user | the user's active sessions, newest first |
/// | `DELETE /sessions/{id}` | user | revokes one of the user's own: 204, or 404 |
/// | `POST /sessions/revoke-others` | user | `{"revoked": N}` |
/// | `POST /sessions/revoke-all` | user | `{"revoked": N}`, clears the cookie |
/// | `POST /agents` | user | 201 `{"agent_id", "session_id", "token"}` |
/// | `DELETE /agents/{agent_id}` | user | 204, or 404 |
/// | `GET /account/sessions` | user | the HTML sessions page (feature `html`) |
/// | `POST /account/sessions/revoke`, `…/revoke-others`, `…/revoke-all` | user | the page's forms |
///
/// "user" routes refuse an agent's bearer session with 403 `user_session_required`. Mount
/// them with `session_tower::routes` or `session_actix::routes`; under a prefix with
/// [`SelfService::with_prefix`].
///
/// ```
/// use std::sync::Arc;
/// use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
/// use session_selfservice::SelfService;
///
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let service = SelfService::new(SessionGate::new(manager)).with_prefix("/auth");
/// let table = service.routes();
/// let paths: Vec<String> = table.routes().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
/// assert!(paths.contains(&"GET /auth/sessions".to_owned()));
/// assert!(paths.contains(&"POST /auth/logout".to_owned()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SelfService {
    gate: SessionGate,
    login_path: String,
    prefix: String,
}

impl SelfService {
    /// Routes for sessions checked by `gate`; logout redirects to `/login`.
    #[must_use]
    pub fn new(gate: SessionGate) -> Self {
        #[cfg(feature = "html")]
        crate::device::warm_up();
        Self {
            gate,
            login_path: "/login".into(),
            prefix: String::new(),
        }
    }

    /// Mounts every route under `prefix` (`/auth`: `/auth/sessions`, `/auth/account/sessions`,
    /// …), the page's form actions included. Default: none.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_end_matches('/').to_owned();
        self
    }

    /// Where logout (and signing out everywhere from the page) sends the browser. Default
    /// `/login`.
    #[must_use]
    pub fn with_login_path(mut self, path: impl Into<String>) -> Self {
        self.login_path = path.into();
        self
    }

    /// The sessions page's path (`{prefix}/account/sessions`).
    #[must_use]
    pub fn page_path(&self) -> String {
        format!("{}/account/sessions", self.prefix)
    }

    /// The login page's path.
    #[must_use]
    pub fn login_path(&self) -> &str {
        &self.login_path
    }

    /// The gate.
    #[must_use]
    pub fn gate(&self) -> &SessionGate {
        &self.gate
    }

    pub(crate) fn error(&self, err: &SessionError) -> Reply {
        self.gate.error_reply(err)
    }

    /// The route table: every route above, with its access and operation.
    #[must_use]
    pub fn routes(&self) -> RouteTable {
        let s = self;
        let table = RouteTable::new(self.gate.clone())
            .route(s.op(
                Method::GET,
                "/me",
                Access::Session,
                "me",
                |d, c| async move { d.me(c.session()) },
            ))
            .route(s.op(
                Method::GET,
                "/agent/me",
                Access::Session,
                "agent_me",
                |d, c| async move { d.agent_me(c.session()) },
            ))
            .route(s.op(
                Method::POST,
                "/logout",
                Access::Session,
                "logout",
                |d, c| async move { d.logout(c.session()).await },
            ))
            .route(s.op(
                Method::GET,
                "/sessions",
                Access::UserSession,
                "list_sessions",
                |d, c| async move { d.list(c.session()).await },
            ))
            .route(s.op(
                Method::DELETE,
                "/sessions/{id}",
                Access::UserSession,
                "revoke_session",
                |d, c| async move { d.revoke(c.session(), c.param("id").unwrap_or("")).await },
            ))
            .route(s.op(
                Method::POST,
                "/sessions/revoke-others",
                Access::UserSession,
                "revoke_other_sessions",
                |d, c| async move { d.revoke_others(c.session()).await },
            ))
            .route(s.op(
                Method::POST,
                "/sessions/revoke-all",
                Access::UserSession,
                "revoke_all_sessions",
                |d, c| async move { d.revoke_all(c.session()).await },
            ))
            .route(s.op(
                Method::POST,
                "/agents",
                Access::UserSession,
                "grant_agent",
                |d, c| async move {
                    match c.json::<AgentGrant>() {
                        Ok(grant) => d.grant_agent(&c, &grant.name).await,
                        Err(reply) => reply,
                    }
                },
            ))
            .route(s.op(
                Method::DELETE,
                "/agents/{agent_id}",
                Access::UserSession,
                "disconnect_agent",
                |d, c| async move {
                    d.disconnect_agent(c.session(), c.param("agent_id").unwrap_or(""))
                        .await
                },
            ));
        #[cfg(feature = "html")]
        let table = self.page_routes(table);
        let table = table.with_prefix(&self.prefix);
        #[cfg(feature = "openapi")]
        let table = crate::openapi::document_self_service(table);
        table
    }

    /// A route whose operation gets a clone of this service and the call.
    pub(crate) fn op<F, Fut>(
        &self,
        method: Method,
        path: &str,
        access: Access,
        operation_id: &'static str,
        f: F,
    ) -> Route
    where
        F: Fn(Self, Call) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Reply> + Send + 'static,
    {
        let service = self.clone();
        Route::new(method, path, access, operation_id, move |call| {
            f(service.clone(), call)
        })
    }

    /// `GET /me`.
    #[must_use]
    pub fn me(&self, session: &Session) -> Reply {
        Reply::json(
            StatusCode::OK,
            &MeView {
                kind: session.kind(),
                session_id: session.id(),
                user_id: session.user_id().clone(),
            },
        )
    }

    /// `GET /agent/me`: the agent's view of itself; 401 (bearer) for a user session.
    #[must_use]
    pub fn agent_me(&self, session: &Session) -> Reply {
        match session.principal() {
            Principal::Agent {
                user_id,
                agent_id,
                agent_name,
            } => Reply::json(
                StatusCode::OK,
                &AgentMeView {
                    agent_id: agent_id.clone(),
                    agent_name: agent_name.clone(),
                    kind: SessionKind::Agent,
                    on_behalf_of: user_id.clone(),
                    session_id: session.id(),
                },
            ),
            Principal::User { .. } => Reply::error(
                StatusCode::UNAUTHORIZED,
                RejectionCode::SessionInvalid.as_str(),
            )
            .with_header(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            ),
        }
    }

    /// `GET /sessions`: the user's active sessions, newest first.
    pub async fn list(&self, session: &Session) -> Reply {
        match self.gate.manager().list(session.user_id()).await {
            Ok(records) => {
                let views: Vec<SessionView> = records
                    .iter()
                    .map(|r| SessionView::new(r, session))
                    .collect();
                Reply::json(StatusCode::OK, &views)
            }
            Err(e) => self.error(&e),
        }
    }

    /// Revokes one of the user's own sessions; `Ok(true)` when it was this one.
    pub(crate) async fn revoke_one(
        &self,
        session: &Session,
        id: &str,
    ) -> Result<bool, SessionError> {
        let id: SessionId = id
            .parse()
            .map_err(|_| SessionError::NotFound(SessionId::from_bytes([0; 16])))?;
        self.gate
            .manager()
            .revoke_owned(
                session.user_id(),
                id,
                RevocationReason::RevokedByUser,
                Actor::of(session.kind()),
            )
            .await?;
        Ok(id == session.id())
    }

    /// Revokes the user's other user sessions (agents stay).
    pub(crate) async fn revoke_other_sessions(
        &self,
        session: &Session,
    ) -> Result<usize, SessionError> {
        self.gate
            .manager()
            .revoke_all(
                session.user_id(),
                RevokeScope::UserSessions,
                Some(session.id()),
                RevocationReason::RevokedByUser,
                Actor::of(session.kind()),
            )
            .await
    }

    /// Signs the user out everywhere: every session and agent, this one included.
    pub(crate) async fn revoke_everywhere(&self, session: &Session) -> Result<usize, SessionError> {
        self.gate
            .manager()
            .revoke_all(
                session.user_id(),
                RevokeScope::All,
                None,
                RevocationReason::SignedOutEverywhere,
                Actor::of(session.kind()),
            )
            .await
    }

    /// `DELETE /sessions/{id}`: 204 (clearing the cookie when it was this session), or 404
    /// for an unknown id or someone else's.
    pub async fn revoke(&self, session: &Session, id: &str) -> Reply {
        match self.revoke_one(session, id).await {
            Ok(false) => Reply::empty(StatusCode::NO_CONTENT),
            Ok(true) => Reply::empty(StatusCode::NO_CONTENT)
                .with_header(SET_COOKIE, self.gate.clear_cookie()),
            Err(e) => self.error(&e),
        }
    }

    /// `POST /sessions/revoke-others`: every other user session of this user, not agents.
    pub async fn revoke_others(&self, session: &Session) -> Reply {
        match self.revoke_other_sessions(session).await {
            Ok(n) => Reply::json(StatusCode::OK, &Revoked { revoked: n as u64 }),
            Err(e) => self.error(&e),
        }
    }

    /// `POST /sessions/revoke-all`: "sign out everywhere", agents and this session
    /// included; clears the cookie.
    pub async fn revoke_all(&self, session: &Session) -> Reply {
        match self.revoke_everywhere(session).await {
            Ok(n) => Reply::json(StatusCode::OK, &Revoked { revoked: n as u64 })
                .with_header(SET_COOKIE, self.gate.clear_cookie()),
            Err(e) => self.error(&e),
        }
    }

    /// `POST /logout`: revokes this session, clears the cookie, 303 to the login page.
    pub async fn logout(&self, session: &Session) -> Reply {
        match self
            .gate
            .manager()
            .revoke(
                session.id(),
                RevocationReason::SignedOut,
                Actor::of(session.kind()),
            )
            .await
        {
            Ok(_) => {
                Reply::see_other(&self.login_path).with_header(SET_COOKIE, self.gate.clear_cookie())
            }
            Err(e) => self.error(&e),
        }
    }

    /// `POST /agents`: a new agent session acting for the user; the token is shown once.
    pub async fn grant_agent(&self, call: &Call, name: &str) -> Reply {
        let session = call.session();
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Reply::error(StatusCode::UNPROCESSABLE_ENTITY, codes::INVALID_AGENT_NAME);
        }
        let agent_id = uuid::Uuid::new_v4().to_string();
        match self
            .gate
            .manager()
            .grant_agent(
                session,
                AgentId::from(agent_id.as_str()),
                name.to_owned(),
                call.client_info(),
            )
            .await
        {
            Ok(issued) => Reply::json(
                StatusCode::CREATED,
                &AgentGranted {
                    agent_id,
                    session_id: issued.session.id(),
                    token: issued.token.expose().to_owned(),
                },
            ),
            Err(e) => self.error(&e),
        }
    }

    /// `DELETE /agents/{agent_id}`: 204, or 404 for another user's agent or an unknown one.
    pub async fn disconnect_agent(&self, session: &Session, agent_id: &str) -> Reply {
        match self
            .gate
            .manager()
            .revoke_agent(
                session.user_id(),
                AgentId::from(agent_id),
                Actor::of(session.kind()),
            )
            .await
        {
            Ok(0) => Reply::error(StatusCode::NOT_FOUND, codes::NOT_FOUND),
            Ok(_) => Reply::empty(StatusCode::NO_CONTENT),
            Err(e) => self.error(&e),
        }
    }
}
