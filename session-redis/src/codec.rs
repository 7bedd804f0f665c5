//! Records and events to and from what Redis holds: the record hash's fields, the stream
//! entries, and the scripts' replies.

use redis::Value;
use session_core::StoreError;
use session_core::events::{EventId, EventType, SessionEvent};
use session_core::model::{
    Actor, AgentId, Principal, RevocationReason, SessionId, SessionKind, SessionRecord, UserId,
};
use session_core::store::RevokedSession;

use crate::layout::{EventPos, Shard, StreamId, from_nanos};

/// The record hash's fields that [`record`] reads, in order.
pub(crate) const RECORD_FIELDS: [&str; 6] = ["rec", "ls", "lns", "rv", "rr", "ep"];

/// An optional script argument: `''` for none, `'=' .. value` for a value.
pub(crate) fn opt(value: Option<&str>) -> String {
    value.map_or_else(String::new, |v| format!("={v}"))
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// A record from its hash's [`RECORD_FIELDS`]; `None` when the hash does not exist.
///
/// `rec` holds the record's JSON as created; the fields that change later (last activity,
/// revocation) and the epoch the script recorded live beside it and win.
pub(crate) fn record(fields: Vec<Option<String>>) -> Result<Option<SessionRecord>, StoreError> {
    let [rec, ls, lns, rv, rr, ep]: [Option<String>; 6] = fields
        .try_into()
        .map_err(|_| corrupt("a record read returned the wrong number of fields"))?;
    let Some(rec) = rec else { return Ok(None) };
    let mut record: SessionRecord =
        serde_json::from_str(&rec).map_err(|e| corrupt(format!("record JSON: {e}")))?;
    if let (Some(s), Some(ns)) = (ls, lns) {
        let nanos = s
            .parse::<i128>()
            .ok()
            .zip(ns.parse::<i128>().ok())
            .map(|(s, ns)| s * 1_000_000_000 + ns)
            .ok_or_else(|| corrupt(format!("last activity {s}.{ns}")))?;
        record.last_active_at = from_nanos(&nanos.to_string())?;
    }
    record.revoked_at = rv.as_deref().map(from_nanos).transpose()?;
    record.revocation_reason = rr.as_deref().map(RevocationReason::parse);
    record.epoch = match ep {
        Some(ep) => ep.parse().map_err(|_| corrupt(format!("epoch {ep:?}")))?,
        None => 0,
    };
    Ok(Some(record))
}

/// The strings of a reply that is an array (or a map, flattened).
pub(crate) fn strings(value: Value) -> Result<Vec<String>, StoreError> {
    match value {
        Value::Array(items) | Value::Set(items) => items.into_iter().map(string).collect(),
        Value::Map(pairs) => pairs
            .into_iter()
            .flat_map(|(k, v)| [k, v])
            .map(string)
            .collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(corrupt(format!("expected an array, got {other:?}"))),
    }
}

/// One string of a reply.
pub(crate) fn string(value: Value) -> Result<String, StoreError> {
    redis::from_redis_value(value).map_err(|e| corrupt(format!("expected a string: {e}")))
}

/// One optional string of a reply.
pub(crate) fn opt_string(value: Value) -> Result<Option<String>, StoreError> {
    match value {
        Value::Nil => Ok(None),
        other => string(other).map(Some),
    }
}

/// One integer of a reply.
pub(crate) fn int(value: Value) -> Result<i64, StoreError> {
    redis::from_redis_value(value).map_err(|e| corrupt(format!("expected an integer: {e}")))
}

/// The items of an array reply.
pub(crate) fn array(value: Value) -> Result<Vec<Value>, StoreError> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(corrupt(format!("expected an array, got {other:?}"))),
    }
}

/// The sessions a script revoked: `id, event id, user, agent, agent name, expiry (Unix
/// ns)` for each (agent and name nil for a user session).
pub(crate) fn revoked(items: Vec<Value>) -> Result<Vec<RevokedSession>, StoreError> {
    if !items.len().is_multiple_of(6) {
        return Err(corrupt("a revocation reply is not in sixes"));
    }
    let mut out = Vec::with_capacity(items.len() / 6);
    let mut items = items.into_iter().map(opt_string);
    while let Some(id) = items.next() {
        let mut next = || items.next().transpose().map(Option::flatten);
        let (event, user, agent, name, expires) = (next()?, next()?, next()?, next()?, next()?);
        let missing = || corrupt("a revocation reply with a hole");
        let user = UserId::from(user.ok_or_else(missing)?);
        out.push(RevokedSession {
            id: session_id(&id?.ok_or_else(missing)?)?,
            principal: match agent {
                Some(agent) => Principal::Agent {
                    user_id: user,
                    agent_id: AgentId::from(agent),
                    agent_name: name.unwrap_or_default(),
                },
                None => Principal::User { user_id: user },
            },
            expires_at: from_nanos(&expires.ok_or_else(missing)?)?,
            event_id: EventId::new(event.ok_or_else(missing)?),
        });
    }
    Ok(out)
}

pub(crate) fn session_id(text: &str) -> Result<SessionId, StoreError> {
    text.parse()
        .map_err(|_| corrupt(format!("session id {text:?}")))
}

/// An entry of the stream of `shard` (`[stream id, [field, value, …]]`) as an event.
pub(crate) fn stream_event(
    shard: Shard,
    entry: Value,
) -> Result<(EventPos, SessionEvent), StoreError> {
    let mut parts = array(entry)?.into_iter();
    let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
        return Err(corrupt("a stream entry without its fields"));
    };
    let id = string(id)?;
    let stream_id = StreamId::parse(&id).ok_or_else(|| corrupt(format!("stream id {id:?}")))?;
    let pos = EventPos::new(shard, stream_id);
    Ok((pos, event(pos.text(), strings(fields)?)?))
}

/// An event from its id and its stream entry's fields.
pub(crate) fn event(id: String, fields: Vec<String>) -> Result<SessionEvent, StoreError> {
    let mut ty = None;
    let mut at = None;
    let mut sid = None;
    let mut user = None;
    let mut actor = None;
    let mut agent = None;
    let mut reason = None;
    let mut pairs = fields.into_iter();
    while let (Some(name), Some(value)) = (pairs.next(), pairs.next()) {
        match name.as_str() {
            "ty" => ty = Some(value),
            "at" => at = Some(value),
            "sid" => sid = Some(value),
            "u" => user = Some(value),
            "ac" => actor = Some(value),
            "ag" => agent = Some(value),
            "r" => reason = Some(value),
            _ => {}
        }
    }
    let missing = |field: &str| corrupt(format!("event {id} has no {field}"));
    let ty = ty.ok_or_else(|| missing("type"))?;
    let event_type = EventType::parse(&ty).ok_or_else(|| corrupt(format!("event type {ty:?}")))?;
    let actor = actor.ok_or_else(|| missing("actor"))?;
    let actor = Actor::parse(&actor).ok_or_else(|| corrupt(format!("actor {actor:?}")))?;
    Ok(SessionEvent {
        event_type,
        occurred_at: from_nanos(&at.ok_or_else(|| missing("time"))?)?,
        session_id: session_id(&sid.ok_or_else(|| missing("session"))?)?,
        user_id: UserId::from(user.ok_or_else(|| missing("user"))?),
        session_kind: if agent.is_some() {
            SessionKind::Agent
        } else {
            SessionKind::User
        },
        agent_id: agent.map(AgentId::from),
        reason: reason.as_deref().map(RevocationReason::parse),
        actor,
        id: EventId::new(id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn stream_entries_are_events() {
        let entry = Value::Array(vec![
            bulk("1700000000123-4"),
            Value::Array(
                [
                    "ty",
                    "session.revoked",
                    "at",
                    "1700000000123456789",
                    "sid",
                    "67e55044-10b1-426f-9247-bb680e5fe0c8",
                    "u",
                    "alice",
                    "ac",
                    "admin",
                    "ag",
                    "bot",
                    "r",
                    "offboarded",
                ]
                .into_iter()
                .map(bulk)
                .collect(),
            ),
        ]);
        let (pos, ev) = stream_event(12, entry).unwrap();
        assert_eq!(ev.id.as_str(), "001700000000123-012-0000000004");
        assert_eq!(pos.text(), ev.id.as_str());
        assert_eq!(ev.event_type, EventType::Revoked);
        assert_eq!(
            ev.occurred_at.unix_timestamp_nanos(),
            1_700_000_000_123_456_789
        );
        assert_eq!(ev.session_kind, SessionKind::Agent);
        assert_eq!(ev.agent_id, Some(AgentId::from("bot")));
        assert_eq!(
            ev.reason,
            Some(RevocationReason::Other("offboarded".into()))
        );
        assert_eq!(ev.actor, Actor::Admin);
        assert!(event("x".into(), vec!["ty".into(), "session.created".into()]).is_err());
    }

    #[test]
    fn optional_arguments_tell_empty_from_none() {
        assert_eq!(opt(None), "");
        assert_eq!(opt(Some("")), "=");
        assert_eq!(opt(Some("a")), "=a");
    }
}
