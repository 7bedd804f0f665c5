//! Rows as the statements return them, and their conversion to the model.

use session_core::StoreError;
use session_core::events::{EventId, EventType, SessionEvent};
use session_core::model::{
    Actor, AgentId, IdpLink, Principal, RevocationReason, SessionId, SessionKind, SessionRecord,
    UserId,
};
use session_core::store::RevokedSession;
use time::OffsetDateTime;
use uuid::Uuid;

/// A row of the sessions table.
#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: Uuid,
    secret_hash: Vec<u8>,
    user_id: String,
    kind: String,
    agent_id: Option<String>,
    agent_name: Option<String>,
    created_at: OffsetDateTime,
    last_active_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    user_agent: Option<String>,
    ip: Option<String>,
    revoked_at: Option<OffsetDateTime>,
    revocation_reason: Option<String>,
    epoch: i64,
    idp_issuer: Option<String>,
    idp_subject: Option<String>,
    idp_sid: Option<String>,
}

fn principal(
    id: Uuid,
    user_id: String,
    kind: &str,
    agent_id: Option<String>,
    agent_name: Option<String>,
) -> Result<Principal, StoreError> {
    let user_id = UserId::new(user_id);
    match (kind, agent_id, agent_name) {
        ("user", None, None) => Ok(Principal::User { user_id }),
        ("agent", Some(agent_id), Some(agent_name)) => Ok(Principal::Agent {
            user_id,
            agent_id: AgentId::new(agent_id),
            agent_name,
        }),
        (kind, ..) => Err(StoreError::Corrupt(format!(
            "session {id}: kind {kind:?} with inconsistent agent fields"
        ))),
    }
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        let secret_hash: [u8; 32] = row.secret_hash.try_into().map_err(|h: Vec<u8>| {
            StoreError::Corrupt(format!(
                "session {}: secret hash of {} bytes",
                row.id,
                h.len()
            ))
        })?;
        let idp = match (row.idp_issuer, row.idp_subject) {
            (Some(issuer), Some(subject)) => Some(IdpLink {
                issuer,
                subject,
                sid: row.idp_sid,
            }),
            (None, None) => None,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "session {}: identity-provider issuer without subject",
                    row.id
                )));
            }
        };
        Ok(Self {
            id: SessionId::from(row.id),
            secret_hash,
            principal: principal(row.id, row.user_id, &row.kind, row.agent_id, row.agent_name)?,
            created_at: row.created_at,
            last_active_at: row.last_active_at,
            expires_at: row.expires_at,
            user_agent: row.user_agent,
            ip: row.ip,
            revoked_at: row.revoked_at,
            revocation_reason: row
                .revocation_reason
                .as_deref()
                .map(RevocationReason::parse),
            epoch: u64::try_from(row.epoch)
                .map_err(|_| StoreError::Corrupt(format!("session {}: negative epoch", row.id)))?,
            idp,
        })
    }
}

/// A session a revocation ended, with its event's id.
#[derive(sqlx::FromRow)]
pub(crate) struct RevokedRow {
    id: Uuid,
    user_id: String,
    kind: String,
    agent_id: Option<String>,
    agent_name: Option<String>,
    expires_at: OffsetDateTime,
    event_id: String,
}

impl TryFrom<RevokedRow> for RevokedSession {
    type Error = StoreError;

    fn try_from(row: RevokedRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: SessionId::from(row.id),
            principal: principal(row.id, row.user_id, &row.kind, row.agent_id, row.agent_name)?,
            expires_at: row.expires_at,
            event_id: EventId::new(row.event_id),
        })
    }
}

/// What `create_session` returns: one row per outcome.
#[derive(sqlx::FromRow)]
pub(crate) struct CreateRow {
    pub outcome: String,
    pub id: Option<Uuid>,
    pub user_id: Option<String>,
    pub kind: Option<String>,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub event_id: Option<String>,
}

impl CreateRow {
    /// The session the cap ended, for an `evicted` row.
    pub(crate) fn evicted(self) -> Result<RevokedSession, StoreError> {
        let missing = || StoreError::Corrupt("create_session: incomplete evicted row".into());
        RevokedRow {
            id: self.id.ok_or_else(missing)?,
            user_id: self.user_id.ok_or_else(missing)?,
            kind: self.kind.ok_or_else(missing)?,
            agent_id: self.agent_id,
            agent_name: self.agent_name,
            expires_at: self.expires_at.ok_or_else(missing)?,
            event_id: self.event_id.ok_or_else(missing)?,
        }
        .try_into()
    }
}

/// A row of the events table.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    event_id: String,
    event_type: String,
    occurred_at: OffsetDateTime,
    session_id: Uuid,
    user_id: String,
    session_kind: String,
    agent_id: Option<String>,
    reason: Option<String>,
    actor: String,
}

impl TryFrom<EventRow> for SessionEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str, value: &str| {
            StoreError::Corrupt(format!("event {}: {what} {value:?}", row.event_id))
        };
        let event_type =
            EventType::parse(&row.event_type).ok_or_else(|| corrupt("type", &row.event_type))?;
        let session_kind = match row.session_kind.as_str() {
            "user" => SessionKind::User,
            "agent" => SessionKind::Agent,
            other => return Err(corrupt("kind", other)),
        };
        let actor = Actor::parse(&row.actor).ok_or_else(|| corrupt("actor", &row.actor))?;
        Ok(Self {
            id: EventId::new(row.event_id),
            event_type,
            occurred_at: row.occurred_at,
            session_id: SessionId::from(row.session_id),
            user_id: UserId::new(row.user_id),
            session_kind,
            agent_id: row.agent_id.map(AgentId::new),
            reason: row.reason.as_deref().map(RevocationReason::parse),
            actor,
        })
    }
}

/// Converts every row, or fails on the first that does not decode.
pub(crate) fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}
