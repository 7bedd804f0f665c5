//! The JSON bodies the routes answer with and parse; with the `openapi` feature their
//! schemas are derived from these types, so the document and the answers cannot drift
//! apart.

use serde::{Deserialize, Serialize};
use session_core::{AgentId, Session, SessionEvent, SessionId, SessionKind, SessionRecord, UserId};
use time::OffsetDateTime;

/// The `error` codes of the answers that are not session rejections (for those, see
/// [`RejectionCode`](session_core::RejectionCode)).
pub mod codes {
    pub use session_core::reply::codes::*;

    /// 422: the agent's name is empty (once trimmed) or longer than 200 bytes.
    pub const INVALID_AGENT_NAME: &str = "invalid_agent_name";
    /// 400: `POST /admin/revoke-matching` with no field to match.
    pub const EMPTY_FILTER: &str = "empty_filter";
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `{"error": CODE}`: the body of every JSON failure, rejections included.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(description = "`{\"error\": CODE}`: the body of every JSON failure.")
)]
pub struct ErrorBody<'a> {
    /// A machine-readable code (`RejectionCode::as_str`, or one of [`codes`]).
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
        let admin = AdminSessionView::new(record);
        Self {
            id: admin.id,
            kind: admin.kind,
            agent_name: admin.agent_name,
            user_agent: admin.user_agent,
            ip: admin.ip,
            created_at: admin.created_at,
            last_active_at: rfc3339(last_active),
            expires_at: admin.expires_at,
            current: record.id == current.id(),
        }
    }
}

/// One session of `GET /admin/users/{user_id}/sessions`: [`SessionView`] without
/// `current`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminSessionView {
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
    /// Last used at, as the store knows it (RFC 3339, UTC).
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_active_at: String,
    /// Ends at (RFC 3339, UTC), at the latest.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: String,
}

impl AdminSessionView {
    /// The view of `record`.
    #[must_use]
    pub fn new(record: &SessionRecord) -> Self {
        Self {
            id: record.id.to_string(),
            kind: record.principal.kind(),
            agent_name: record.principal.agent_name().map(str::to_owned),
            user_agent: record.user_agent.clone(),
            ip: record.ip.clone(),
            created_at: rfc3339(record.created_at),
            last_active_at: rfc3339(record.last_active_at),
            expires_at: rfc3339(record.expires_at),
        }
    }
}

/// The body of `GET /me`.
// Fields in alphabetical order, as the first versions wrote them.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeView {
    /// `user` (a user session, through the cookie).
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::session_kind_schema)
    )]
    pub kind: SessionKind,
    /// The session's id (a UUID).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub session_id: SessionId,
    /// The user the session authenticates.
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
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revoked {
    /// The number of sessions revoked.
    pub revoked: u64,
}

/// `{"matched": N}`: how many sessions a dry run of `POST /admin/revoke-matching` matched.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchedCount {
    /// The number of active sessions that match.
    pub matched: u64,
}

/// The body of `GET /admin/events`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventsPage {
    /// The events, oldest first.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::EventSchema>))]
    pub data: Vec<SessionEvent>,
    /// The id of the last event returned (with none, the `after` given, or null): pass it
    /// as `after` for the next page.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}

/// The optional body of `POST /admin/users/{user_id}/revoke-all`.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminRevoke {
    /// The reason recorded (default `admin_revoked`).
    pub reason: Option<String>,
}

/// The body of `POST /admin/revoke-matching`: every active session, of any user, that
/// matches all the fields given. At least one field to match is required.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeMatching {
    /// Issued strictly before this time (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_before: Option<String>,
    /// Issued to an address in this network: an IP address or a CIDR network.
    pub ip: Option<String>,
    /// Whose `User-Agent` contains this text.
    pub user_agent: Option<String>,
    /// `user` or `agent` sessions.
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::session_kind_schema)
    )]
    pub kind: Option<SessionKind>,
    /// Only count the matches; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}
