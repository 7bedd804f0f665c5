//! Self-service session management, framework-neutral: list my sessions, sign one out,
//! sign out the others, sign out everywhere, sign out, grant and disconnect agents.
//!
//! Each operation returns a [`Reply`] (status, headers, body) that an adapter's router
//! copies into its response, so the routes behave the same on every framework.
//!
//! Every JSON body is one of the typed views below ([`SessionView`], [`MeView`],
//! [`AgentMeView`], [`AgentGranted`], [`Revoked`], [`ErrorBody`]); with the `openapi`
//! feature they derive the schemas of `crate::openapi`'s description of the routes, so the
//! document and the answers cannot drift apart.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, LOCATION, RETRY_AFTER, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::SessionError;
use crate::gate::SessionGate;
use crate::manager::{ClientInfo, Session};
use crate::model::{
    Actor, AgentId, Principal, RevocationReason, SessionId, SessionKind, SessionRecord, UserId,
};
use crate::rejection::RejectionCode;
use crate::store::RevokeScope;

/// A framework-neutral response.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// A JSON reply.
    #[must_use]
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Self {
        let body = serde_json::to_string(value).expect("views serialize");
        Self {
            status,
            headers: vec![
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        }
    }

    /// `{"error": code}` ([`ErrorBody`]) with `status`.
    #[must_use]
    pub fn error(status: StatusCode, code: &str) -> Self {
        Self::json(status, &ErrorBody { error: code })
    }

    /// An HTML page.
    #[must_use]
    pub fn html(status: StatusCode, body: String) -> Self {
        Self {
            status,
            headers: vec![
                (
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        }
    }

    /// No body.
    #[must_use]
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// A 303 to a local path (callers pass only local paths).
    #[must_use]
    pub fn see_other(location: &str) -> Self {
        Self::empty(StatusCode::SEE_OTHER).with_header(
            LOCATION,
            HeaderValue::try_from(location).unwrap_or(HeaderValue::from_static("/")),
        )
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The reply for a failed operation: 503 for the store, 404 for someone else's
    /// session, 409 for a login that a revoke-all overtook.
    #[must_use]
    pub fn from_error(err: &SessionError) -> Self {
        match err {
            SessionError::Store(e) => {
                tracing::warn!(error = %e, "session store unavailable");
                Self::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    RejectionCode::StoreUnavailable.as_str(),
                )
                .with_header(RETRY_AFTER, HeaderValue::from_static("1"))
            }
            SessionError::NotFound(_) => Self::error(StatusCode::NOT_FOUND, codes::NOT_FOUND),
            SessionError::Superseded => Self::error(StatusCode::CONFLICT, codes::LOGIN_SUPERSEDED),
            SessionError::UserDisabled => Self::error(StatusCode::FORBIDDEN, codes::USER_DISABLED),
            SessionError::GrantorGone => Self::error(
                StatusCode::UNAUTHORIZED,
                RejectionCode::SessionRevoked.as_str(),
            ),
        }
    }
}

impl From<crate::Rejection> for Reply {
    fn from(rejection: crate::Rejection) -> Self {
        Self {
            status: rejection.status(),
            headers: rejection.headers().collect(),
            body: rejection.body().to_owned(),
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times format")
}

/// The `error` codes of the self-service answers that are not session rejections (for
/// those, see [`RejectionCode`]).
pub mod codes {
    /// 404: an unknown id, or another user's session or agent.
    pub const NOT_FOUND: &str = "not_found";
    /// 403: an agent session tried to manage the user's sessions or agents.
    pub const USER_SESSION_REQUIRED: &str = "user_session_required";
    /// 422: the agent's name is empty (once trimmed) or longer than 200 bytes.
    pub const INVALID_AGENT_NAME: &str = "invalid_agent_name";
    /// 409: a login that a "sign out everywhere" or password reset overtook.
    pub const LOGIN_SUPERSEDED: &str = "login_superseded";
    /// 403: the user is deprovisioned and cannot sign in until reactivated.
    pub const USER_DISABLED: &str = "user_disabled";
}

/// `{"error": CODE}`: the body of every JSON failure ([`Reply::error`]), rejections
/// included.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(description = "`{\"error\": CODE}`: the body of every JSON failure.")
)]
pub struct ErrorBody<'a> {
    /// A machine-readable code (`RejectionCode::as_str`, or one of `selfservice::codes`).
    pub error: &'a str,
}

/// One session of `GET /sessions`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    /// The session's id (a UUID).
    #[cfg_attr(feature = "openapi", schema(format = "uuid"))]
    pub id: String,
    /// `user` or `agent`.
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::session_kind_schema)
    )]
    pub kind: SessionKind,
    /// The agent's name (agent sessions only, else null).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub agent_name: Option<String>,
    /// The `User-Agent` it was issued to.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub user_agent: Option<String>,
    /// The client IP it was issued to.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub ip: Option<String>,
    /// Issued at (RFC 3339, UTC).
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    /// Last used at (RFC 3339, UTC).
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_active_at: String,
    /// Ends at (RFC 3339, UTC), at the latest.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: String,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl SessionView {
    /// The view of `record`, as seen from the session `current`.
    #[must_use]
    pub fn new(record: &SessionRecord, current: &Session) -> Self {
        // This node may know of activity newer than the store's record.
        let last_active = if record.id == current.id() {
            current.last_active_at().max(record.last_active_at)
        } else {
            record.last_active_at
        };
        Self {
            id: record.id.to_string(),
            kind: record.principal.kind(),
            agent_name: record.principal.agent_name().map(str::to_owned),
            user_agent: record.user_agent.clone(),
            ip: record.ip.clone(),
            created_at: rfc3339(record.created_at),
            last_active_at: rfc3339(last_active),
            expires_at: rfc3339(record.expires_at),
            current: record.id == current.id(),
        }
    }
}

/// The body of `GET /me`.
// Fields in alphabetical order, the order the `json!` map they replace wrote them in.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeView {
    /// `user`, or `agent` for an agent's bearer session.
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::session_kind_schema)
    )]
    pub kind: SessionKind,
    /// The session's id (a UUID).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub session_id: SessionId,
    /// The user the session authenticates (for an agent: the user it acts for).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub user_id: UserId,
}

/// The body of `GET /agent/me`: an agent's view of itself.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentMeView {
    /// The agent's id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub agent_id: AgentId,
    /// The agent's display name.
    pub agent_name: String,
    /// Always `agent`.
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::agent_kind_schema)
    )]
    pub kind: SessionKind,
    /// The user the agent acts for.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub on_behalf_of: UserId,
    /// The agent session's id (a UUID).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub session_id: SessionId,
}

/// The body of `POST /agents`.
#[derive(Clone, Debug, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentGrant {
    /// The agent's display name: not empty once trimmed, at most 200 bytes.
    pub name: String,
}

/// The 201 body of `POST /agents`: the new agent session and its bearer token, shown this
/// once.
// `Debug` (below) leaves the token out.
#[derive(Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentGranted {
    /// The new agent's id (a UUID).
    #[cfg_attr(feature = "openapi", schema(format = "uuid"))]
    pub agent_id: String,
    /// The agent session's id (a UUID).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub session_id: SessionId,
    /// The bearer token for `Authorization: Bearer TOKEN`.
    pub token: String,
}

impl std::fmt::Debug for AgentGranted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentGranted")
            .field("agent_id", &self.agent_id)
            .field("session_id", &self.session_id)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// `{"revoked": N}`: how many sessions a bulk revocation ended.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revoked {
    /// The number of sessions revoked.
    pub revoked: usize,
}

/// The self-service operations, over a gate (for its manager and cookie).
#[derive(Clone, Debug)]
pub struct SelfService {
    gate: SessionGate,
    login_path: String,
    page_path: String,
}

impl SelfService {
    /// Operations for sessions checked by `gate`; logout redirects to `/login`.
    #[must_use]
    pub fn new(gate: SessionGate) -> Self {
        #[cfg(feature = "html")]
        crate::device::warm_up();
        Self {
            gate,
            login_path: "/login".into(),
            page_path: "/account/sessions".into(),
        }
    }

    /// Where the HTML sessions page is served (its forms post below it). Default
    /// `/account/sessions`.
    #[must_use]
    pub fn with_page_path(mut self, path: impl Into<String>) -> Self {
        self.page_path = path.into();
        self
    }

    /// The sessions page's path.
    #[must_use]
    pub fn page_path(&self) -> &str {
        &self.page_path
    }

    /// The login page's path.
    #[must_use]
    pub fn login_path(&self) -> &str {
        &self.login_path
    }

    /// Where logout sends the browser. Default `/login`.
    #[must_use]
    pub fn with_login_path(mut self, path: impl Into<String>) -> Self {
        self.login_path = path.into();
        self
    }

    /// The gate.
    #[must_use]
    pub fn gate(&self) -> &SessionGate {
        &self.gate
    }

    fn clear_cookie(&self) -> (HeaderName, HeaderValue) {
        (SET_COOKIE, self.gate.cookie().removal().clone())
    }

    /// Agents may read but not manage the user's sessions: 403 for them.
    fn user_only(session: &Session) -> Result<(), Reply> {
        match session.kind() {
            SessionKind::User => Ok(()),
            SessionKind::Agent => Err(Reply::error(
                StatusCode::FORBIDDEN,
                codes::USER_SESSION_REQUIRED,
            )),
        }
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
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
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
            Err(e) => Reply::from_error(&e),
        }
    }

    /// `DELETE /sessions/{id}`: 204, or 404 for an unknown id or someone else's.
    pub async fn revoke(&self, session: &Session, id: &str) -> Reply {
        if let Err(reply) = Self::user_only(session) {
            return reply;
        }
        let Ok(id) = id.parse() else {
            return Reply::error(StatusCode::NOT_FOUND, codes::NOT_FOUND);
        };
        let manager = self.gate.manager();
        match manager
            .revoke_owned(
                session.user_id(),
                id,
                RevocationReason::RevokedByUser,
                Actor::User,
            )
            .await
        {
            Ok(()) if id == session.id() => {
                let (name, value) = self.clear_cookie();
                Reply::empty(StatusCode::NO_CONTENT).with_header(name, value)
            }
            Ok(()) => Reply::empty(StatusCode::NO_CONTENT),
            Err(e) => Reply::from_error(&e),
        }
    }

    /// `POST /sessions/revoke-others`: the user's other user sessions (not agents).
    pub async fn revoke_others(&self, session: &Session) -> Reply {
        if let Err(reply) = Self::user_only(session) {
            return reply;
        }
        self.revoke_many(
            session,
            RevokeScope::UserSessions,
            Some(session),
            RevocationReason::RevokedByUser,
        )
        .await
    }

    /// `POST /sessions/revoke-all`: every session of the user, agents and this one
    /// included; clears the cookie.
    pub async fn revoke_all(&self, session: &Session) -> Reply {
        if let Err(reply) = Self::user_only(session) {
            return reply;
        }
        let reply = self
            .revoke_many(
                session,
                RevokeScope::All,
                None,
                RevocationReason::SignedOutEverywhere,
            )
            .await;
        if reply.status.is_success() {
            let (name, value) = self.clear_cookie();
            reply.with_header(name, value)
        } else {
            reply
        }
    }

    async fn revoke_many(
        &self,
        session: &Session,
        scope: RevokeScope,
        except: Option<&Session>,
        reason: RevocationReason,
    ) -> Reply {
        match self
            .gate
            .manager()
            .revoke_all(
                session.user_id(),
                scope,
                except.map(Session::id),
                reason,
                Actor::User,
            )
            .await
        {
            Ok(n) => Reply::json(StatusCode::OK, &Revoked { revoked: n }),
            Err(e) => Reply::from_error(&e),
        }
    }

    /// `POST /logout`: revokes this session, clears the cookie, 303 to the login page.
    pub async fn logout(&self, session: &Session) -> Reply {
        match self
            .gate
            .manager()
            .revoke(session.id(), RevocationReason::SignedOut, Actor::User)
            .await
        {
            Ok(_) => {
                let (name, value) = self.clear_cookie();
                Reply::see_other(&self.login_path).with_header(name, value)
            }
            Err(e) => Reply::from_error(&e),
        }
    }

    /// `POST /agents`: a new agent session acting for the user; the token is shown once.
    pub async fn grant_agent(&self, session: &Session, name: &str, client: ClientInfo) -> Reply {
        if let Err(reply) = Self::user_only(session) {
            return reply;
        }
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Reply::error(StatusCode::UNPROCESSABLE_ENTITY, codes::INVALID_AGENT_NAME);
        }
        let agent_id = uuid::Uuid::new_v4().to_string();
        match self
            .gate
            .manager()
            .grant_agent(session, AgentId::from(agent_id.as_str()), name.to_owned(), client)
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
            Err(e) => Reply::from_error(&e),
        }
    }

    /// `DELETE /agents/{agent_id}`: 204, or 404 for another user's agent or an unknown one.
    pub async fn disconnect_agent(&self, session: &Session, agent_id: &str) -> Reply {
        if let Err(reply) = Self::user_only(session) {
            return reply;
        }
        match self
            .gate
            .manager()
            .revoke_agent(session.user_id(), AgentId::from(agent_id), Actor::User)
            .await
        {
            Ok(0) => Reply::error(StatusCode::NOT_FOUND, codes::NOT_FOUND),
            Ok(_) => Reply::empty(StatusCode::NO_CONTENT),
            Err(e) => Reply::from_error(&e),
        }
    }
}
