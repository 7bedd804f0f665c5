//! Session events: created, revoked, expired, with an in-process subscription.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::SessionId;
use crate::model::{
    Actor, AgentId, Principal, RevocationReason, SessionKind, SessionRecord, UserId,
};

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
}

/// One event, in the shape of the HTTP contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// A time-ordered id (UUIDv7): ids sort, as strings, in the order events happened.
    pub id: String,
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
    /// An event about `record`.
    #[must_use]
    pub fn new(
        event_type: EventType,
        record: &SessionRecord,
        reason: Option<RevocationReason>,
        actor: Actor,
        occurred_at: OffsetDateTime,
    ) -> Self {
        Self::about(
            event_type,
            record.id,
            &record.principal,
            reason,
            actor,
            occurred_at,
        )
    }

    /// An event about session `id` of `principal`.
    #[must_use]
    pub fn about(
        event_type: EventType,
        id: SessionId,
        principal: &Principal,
        reason: Option<RevocationReason>,
        actor: Actor,
        occurred_at: OffsetDateTime,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7().hyphenated().to_string(),
            event_type,
            occurred_at,
            session_id: id,
            user_id: principal.user_id().clone(),
            session_kind: principal.kind(),
            agent_id: principal.agent_id().cloned(),
            reason,
            actor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Principal;

    #[test]
    fn serializes_with_the_contract_fields() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let rec = SessionRecord {
            id: SessionId::random(),
            secret_hash: [0; 32],
            principal: Principal::agent("alice", "agent-1", "Bot"),
            created_at: at,
            last_active_at: at,
            expires_at: at,
            user_agent: None,
            ip: None,
            revoked_at: None,
            revocation_reason: None,
        };
        let ev = SessionEvent::new(
            EventType::Revoked,
            &rec,
            Some(RevocationReason::AgentDisconnected),
            Actor::User,
            at,
        );
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["type"], "session.revoked");
        assert_eq!(v["occurred_at"], "2023-11-14T22:13:20Z");
        assert_eq!(v["session_id"], rec.id.to_string());
        assert_eq!(v["user_id"], "alice");
        assert_eq!(v["session_kind"], "agent");
        assert_eq!(v["agent_id"], "agent-1");
        assert_eq!(v["reason"], "agent_disconnected");
        assert_eq!(v["actor"], "user");
        let later = SessionEvent::new(EventType::Created, &rec, None, Actor::User, at);
        assert!(later.id > ev.id, "ids sort in order of creation");
        assert_eq!(
            serde_json::to_value(&later).unwrap()["reason"],
            serde_json::Value::Null
        );
    }
}
