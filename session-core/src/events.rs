//! Session events: created, revoked, expired, suspicious. The store logs each in the same
//! atomic operation as the change it records; the manager also hands them to in-process
//! subscribers.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::SessionId;
use crate::model::{Actor, AgentId, Principal, RevocationReason, SessionKind, UserId};

/// What happened to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A session was issued.
    #[serde(rename = "session.created")]
    Created,
    /// A session was revoked.
    #[serde(rename = "session.revoked")]
    Revoked,
    /// A request came with a session past its lifetime or idle timeout.
    #[serde(rename = "session.expired")]
    Expired,
    /// A request came from another network or browser than the session was signed in
    /// with (risk binding in report mode).
    #[serde(rename = "session.suspicious")]
    Suspicious,
}

impl EventType {
    /// Every type.
    pub const ALL: [Self; 4] = [
        Self::Created,
        Self::Revoked,
        Self::Expired,
        Self::Suspicious,
    ];

    /// The wire name: `session.created`, `session.revoked`, `session.expired`,
    /// `session.suspicious`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "session.created",
            Self::Revoked => "session.revoked",
            Self::Expired => "session.expired",
            Self::Suspicious => "session.suspicious",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// An event's id in the store's log. Ids are strings that sort, as strings, in the order
/// the log serves the events; each store chooses their form (and parses them back as
/// cursors), so treat them as opaque.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    /// Wraps a store's id.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

/// One event, in the shape of the HTTP contract: what the event log, the audit trail,
/// `GET /admin/events` and webhooks carry.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{Actor, ClientInfo, KeySet, MemoryStore, Principal, RevocationReason, SessionConfig, SessionManager};
/// use session_core::events::{EventQuery, EventType};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
/// manager.revoke(issued.session.id(), RevocationReason::SignedOut, Actor::User).await?;
/// let log = manager.events(&EventQuery { limit: 10, ..EventQuery::default() }).await?;
/// let revoked = &log[1];
/// assert_eq!(revoked.event_type, EventType::Revoked);
/// assert_eq!(revoked.reason, Some(RevocationReason::SignedOut));
/// let json = serde_json::to_value(revoked)?;
/// assert_eq!(json["type"], "session.revoked");
/// assert_eq!(json["reason"], "signed_out");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// Its id in the log: ids sort, as strings, in the order events happened.
    pub id: EventId,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The session.
    pub session_id: SessionId,
    /// Its user (for agents, the user they act for).
    pub user_id: UserId,
    /// User or agent session.
    pub session_kind: SessionKind,
    /// The agent, for agent sessions.
    pub agent_id: Option<AgentId>,
    /// Why, for revocations.
    pub reason: Option<RevocationReason>,
    /// Who caused it.
    pub actor: Actor,
}

impl SessionEvent {
    /// An event about session `session_id` of `principal`, logged as `id`.
    #[must_use]
    pub fn about(
        id: EventId,
        event_type: EventType,
        session_id: SessionId,
        principal: &Principal,
        reason: Option<RevocationReason>,
        actor: Actor,
        occurred_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            event_type,
            occurred_at,
            session_id,
            user_id: principal.user_id().clone(),
            session_kind: principal.kind(),
            agent_id: principal.agent_id().cloned(),
            reason,
            actor,
        }
    }
}

/// Which events [`SessionStore::events`](crate::SessionStore::events) reads: oldest first,
/// after a cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events after this one (the previous page's last id); from the start if `None`.
    pub after: Option<EventId>,
    /// At most this many.
    pub limit: usize,
    /// Only events of this type.
    pub event_type: Option<EventType>,
}

/// Which events [`SessionStore::audit`](crate::SessionStore::audit) reads: one user's,
/// newest first, before a cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    /// Whose.
    pub user_id: UserId,
    /// Only events before this one (the previous page's last id); from the newest if
    /// `None`.
    pub before: Option<EventId>,
    /// At most this many.
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Principal;

    #[test]
    fn serializes_with_the_contract_fields() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let id = SessionId::random();
        let ev = SessionEvent::about(
            EventId::new("0001"),
            EventType::Revoked,
            id,
            &Principal::agent("alice", "agent-1", "Bot"),
            Some(RevocationReason::AgentDisconnected),
            Actor::User,
            at,
        );
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["id"], "0001");
        assert_eq!(v["type"], "session.revoked");
        assert_eq!(v["occurred_at"], "2023-11-14T22:13:20Z");
        assert_eq!(v["session_id"], id.to_string());
        assert_eq!(v["user_id"], "alice");
        assert_eq!(v["session_kind"], "agent");
        assert_eq!(v["agent_id"], "agent-1");
        assert_eq!(v["reason"], "agent_disconnected");
        assert_eq!(v["actor"], "user");
        assert_eq!(v.as_object().unwrap().len(), 9);
        assert_eq!(serde_json::from_value::<SessionEvent>(v).unwrap(), ev);
    }

    #[test]
    fn types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::Value::from(t.as_str())
            );
        }
        assert_eq!(EventType::parse("session.other"), None);
    }
}
