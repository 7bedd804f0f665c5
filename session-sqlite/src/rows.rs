//! Between Rust values and SQLite rows: timestamps, records, events, errors.

use std::fmt;

use session_core::events::{EventId, EventType, SessionEvent};
use session_core::store::RevokedSession;
use session_core::{
    Actor, AgentId, IdpLink, Principal, RevocationReason, SessionId, SessionKind, SessionRecord,
    StoreError, UserId,
};
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::event_id;

/// The columns of `sessions`, in the order [`record`] reads them (and `create` writes them).
macro_rules! session_columns {
    () => {
        "id, secret_hash, user_id, kind, agent_id, agent_name, created_at, last_active_at, \
         expires_at, user_agent, ip, revoked_at, revocation_reason, epoch, idp_issuer, \
         idp_subject, idp_sid"
    };
}
pub(crate) use session_columns;

/// What a revocation returns of each session it ended: [`revoked`] reads them.
macro_rules! revoked_columns {
    () => {
        "id, user_id, kind, agent_id, agent_name, expires_at"
    };
}
pub(crate) use revoked_columns;

/// The columns of `events`, in the order [`event`] reads them.
macro_rules! event_columns {
    () => {
        "id, type, occurred_at, session_id, user_id, session_kind, agent_id, reason, actor"
    };
}
pub(crate) use event_columns;

/// A timestamp the store cannot keep (outside 1677-09-21 ..= 2262-04-11 UTC).
#[derive(Debug)]
pub(crate) struct TimestampOutOfRange(pub(crate) OffsetDateTime);

impl fmt::Display for TimestampOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timestamp {} is outside what the SQLite session store keeps \
             (1677-09-21 to 2262-04-11 UTC)",
            self.0
        )
    }
}

impl std::error::Error for TimestampOutOfRange {}

/// SQLITE_BUSY or SQLITE_LOCKED, with any extended code.
pub(crate) fn is_busy(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

pub(crate) fn store_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::PoolTimedOut => StoreError::Timeout,
        err => StoreError::backend(err),
    }
}

/// A timestamp to store: exact, or an error.
pub(crate) fn nanos(at: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(at.unix_timestamp_nanos())
        .map_err(|_| StoreError::backend(TimestampOutOfRange(at)))
}

/// A timestamp to compare with: clamped to the range the store keeps.
pub(crate) fn nanos_clamped(at: OffsetDateTime) -> i64 {
    let n = at.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// `at` moved by `by` (forward or back), clamped to the range the store keeps.
pub(crate) fn nanos_moved(at: OffsetDateTime, by: std::time::Duration, forward: bool) -> i64 {
    let by = i128::try_from(by.as_nanos()).unwrap_or(i128::MAX);
    let at = at.unix_timestamp_nanos();
    let n = if forward {
        at.saturating_add(by)
    } else {
        at.saturating_sub(by)
    };
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn from_nanos(column: &str, n: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn corrupt(err: sqlx::Error) -> StoreError {
    StoreError::Corrupt(err.to_string())
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(corrupt)
}

fn time(row: &SqliteRow, column: &str) -> Result<OffsetDateTime, StoreError> {
    from_nanos(column, get(row, column)?)
}

fn session_id(text: &str) -> Result<SessionId, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("session id {text:?}: {e}")))
}

/// The principal from `user_id`, a kind column, `agent_id` and `agent_name`.
fn principal(
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
            "kind {kind:?} with inconsistent agent columns"
        ))),
    }
}

fn epoch(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative epoch {n}")))
}

/// A `users.epoch` (or 0 for a user without a row).
pub(crate) fn user_epoch(n: Option<i64>) -> Result<u64, StoreError> {
    n.map_or(Ok(0), epoch)
}

/// A record from a row of [`session_columns`].
pub(crate) fn record(row: &SqliteRow) -> Result<SessionRecord, StoreError> {
    let id = session_id(&get::<String>(row, "id")?)?;
    let hash: Vec<u8> = get(row, "secret_hash")?;
    let secret_hash: [u8; 32] = hash
        .try_into()
        .map_err(|v: Vec<u8>| StoreError::Corrupt(format!("secret_hash: {} bytes", v.len())))?;
    let principal = principal(
        get(row, "user_id")?,
        &get::<String>(row, "kind")?,
        get(row, "agent_id")?,
        get(row, "agent_name")?,
    )
    .map_err(|e| StoreError::Corrupt(format!("session {id}: {e}")))?;
    let revoked_at: Option<i64> = get(row, "revoked_at")?;
    let reason: Option<String> = get(row, "revocation_reason")?;
    let issuer: Option<String> = get(row, "idp_issuer")?;
    let subject: Option<String> = get(row, "idp_subject")?;
    let idp = match (issuer, subject) {
        (Some(issuer), Some(subject)) => Some(IdpLink {
            issuer,
            subject,
            sid: get(row, "idp_sid")?,
        }),
        (None, None) => None,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "session {id}: half an identity-provider link"
            )));
        }
    };
    Ok(SessionRecord {
        id,
        secret_hash,
        principal,
        created_at: time(row, "created_at")?,
        last_active_at: time(row, "last_active_at")?,
        expires_at: time(row, "expires_at")?,
        user_agent: get(row, "user_agent")?,
        ip: get(row, "ip")?,
        revoked_at: revoked_at
            .map(|n| from_nanos("revoked_at", n))
            .transpose()?,
        revocation_reason: reason.as_deref().map(RevocationReason::parse),
        epoch: epoch(get(row, "epoch")?)?,
        idp,
    })
}

/// A revoked session from a row of [`revoked_columns`], with its event's id.
pub(crate) fn revoked(row: &SqliteRow, event_id: EventId) -> Result<RevokedSession, StoreError> {
    Ok(RevokedSession {
        id: session_id(&get::<String>(row, "id")?)?,
        principal: principal(
            get(row, "user_id")?,
            &get::<String>(row, "kind")?,
            get(row, "agent_id")?,
            get(row, "agent_name")?,
        )?,
        expires_at: time(row, "expires_at")?,
        event_id,
    })
}

/// The principal of a row holding `user_id`, `kind`, `agent_id` and `agent_name`.
pub(crate) fn row_principal(row: &SqliteRow) -> Result<Principal, StoreError> {
    principal(
        get(row, "user_id")?,
        &get::<String>(row, "kind")?,
        get(row, "agent_id")?,
        get(row, "agent_name")?,
    )
}

/// An event from a row of [`event_columns`].
pub(crate) fn event(row: &SqliteRow) -> Result<SessionEvent, StoreError> {
    let id: i64 = get(row, "id")?;
    let kind: String = get(row, "type")?;
    let event_type = EventType::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("event {id}: type {kind:?}")))?;
    let session_kind = match get::<String>(row, "session_kind")?.as_str() {
        "user" => SessionKind::User,
        "agent" => SessionKind::Agent,
        other => {
            return Err(StoreError::Corrupt(format!(
                "event {id}: session kind {other:?}"
            )));
        }
    };
    let actor: String = get(row, "actor")?;
    let reason: Option<String> = get(row, "reason")?;
    Ok(SessionEvent {
        id: event_id::format(id),
        event_type,
        occurred_at: time(row, "occurred_at")?,
        session_id: session_id(&get::<String>(row, "session_id")?)?,
        user_id: UserId::new(get::<String>(row, "user_id")?),
        session_kind,
        agent_id: get::<Option<String>>(row, "agent_id")?.map(AgentId::new),
        reason: reason.as_deref().map(RevocationReason::parse),
        actor: Actor::parse(&actor)
            .ok_or_else(|| StoreError::Corrupt(format!("event {id}: actor {actor:?}")))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanosecond_timestamps_round_trip_and_clamp() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789).unwrap();
        assert_eq!(from_nanos("t", nanos(t).unwrap()).unwrap(), t);
        let far = OffsetDateTime::from_unix_timestamp(20_000_000_000).unwrap(); // year 2603
        assert!(nanos(far).is_err());
        assert_eq!(nanos_clamped(far), i64::MAX);
        let early = OffsetDateTime::from_unix_timestamp(-20_000_000_000).unwrap();
        assert_eq!(nanos_clamped(early), i64::MIN);
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(nanos_moved(t, day, true), nanos(t + day).unwrap());
        assert_eq!(nanos_moved(t, day, false), nanos(t - day).unwrap());
        assert_eq!(nanos_moved(t, std::time::Duration::MAX, true), i64::MAX);
        assert_eq!(nanos_moved(t, std::time::Duration::MAX, false), i64::MIN);
    }
}
