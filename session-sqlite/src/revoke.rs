//! Revocations and the events they log, written in the caller's transaction.

use std::collections::HashMap;

use session_core::events::EventType;
use session_core::store::{Change, RevokedSession};
use session_core::{Actor, Principal, SessionFilter, SessionId, StoreError};
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Row as _, Sqlite};

use crate::event_id;
use crate::rows::{self, nanos, nanos_clamped, revoked_columns, store_error};

/// `UPDATE sessions SET revoked_at = …, revocation_reason = … WHERE revoked_at IS NULL`:
/// the caller adds its conditions (` AND …`), then hands it to [`finish`].
pub(crate) fn start(change: &Change<'_>) -> Result<QueryBuilder<Sqlite>, StoreError> {
    let mut update = QueryBuilder::new("UPDATE sessions SET revoked_at = ");
    update
        .push_bind(nanos(change.at)?)
        .push(", revocation_reason = ")
        .push_bind(change.reason.as_str().to_owned())
        .push(" WHERE revoked_at IS NULL");
    Ok(update)
}

/// ` AND expires_at > at`: the session is still alive at the change.
pub(crate) fn alive(update: &mut QueryBuilder<Sqlite>, change: &Change<'_>) {
    update
        .push(" AND expires_at > ")
        .push_bind(nanos_clamped(change.at));
}

/// The filter's fields, each ` AND …`, evaluated in place. The caller refuses an empty
/// filter. Only the fields given become SQL, so the planner sees plain conditions (the
/// provider's index serves `idp_issuer`).
pub(crate) fn filter(sql: &mut QueryBuilder<Sqlite>, filter: &SessionFilter) {
    if let Some(before) = filter.created_before {
        sql.push(" AND created_at < ")
            .push_bind(nanos_clamped(before));
    }
    if let Some(net) = filter.ip {
        // Keys are 32 lowercase hex digits: text order is address order.
        sql.push(" AND ip_key BETWEEN ")
            .push_bind(net.lo_key())
            .push(" AND ")
            .push_bind(net.hi_key());
    }
    if let Some(needle) = &filter.user_agent {
        // Byte for byte: `instr`, not LIKE (which folds ASCII case and reads `%` and `_`
        // as wildcards). On valid UTF-8, a character match is a byte match.
        sql.push(" AND instr(user_agent, ")
            .push_bind(needle.clone())
            .push(") > 0");
    }
    if let Some(kind) = filter.kind {
        sql.push(" AND kind = ").push_bind(kind.as_str());
    }
    if let Some(issuer) = &filter.idp_issuer {
        sql.push(" AND idp_issuer = ").push_bind(issuer.clone());
    }
    if let Some(sid) = &filter.idp_sid {
        sql.push(" AND idp_sid = ").push_bind(sid.clone());
    }
}

/// Runs the revocation `update` (from [`start`]) and logs one `session.revoked` per session
/// it ended, on `conn`, which must be in a transaction: the caller commits both or neither.
/// Returns the sessions ordered by id, their events logged in that order.
pub(crate) async fn finish(
    conn: &mut SqliteConnection,
    mut update: QueryBuilder<Sqlite>,
    change: &Change<'_>,
) -> Result<Vec<RevokedSession>, StoreError> {
    update.push(concat!(" RETURNING ", revoked_columns!()));
    let rows = update
        .build()
        .fetch_all(&mut *conn)
        .await
        .map_err(store_error)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut revoked = rows
        .iter()
        .map(|row| rows::revoked(row, event_id::format(0)))
        .collect::<Result<Vec<_>, _>>()?;
    revoked.sort_by_key(|r| r.id);
    // The events, in one statement, from the rows just revoked (found by primary key).
    // Ids are hyphenated UUIDs (hex digits and '-'): a JSON array needs no escaping.
    let mut ids = String::with_capacity(revoked.len() * 39 + 2);
    ids.push('[');
    for (i, r) in revoked.iter().enumerate() {
        if i > 0 {
            ids.push(',');
        }
        ids.push('"');
        ids.push_str(&r.id.to_string());
        ids.push('"');
    }
    ids.push(']');
    let logged = sqlx::query(
        "INSERT INTO events (type, occurred_at, session_id, user_id, session_kind, agent_id, \
         reason, actor) \
         SELECT 'session.revoked', ?1, s.id, s.user_id, s.kind, s.agent_id, ?2, ?3 \
         FROM json_each(?4) AS j JOIN sessions AS s ON s.id = j.value \
         ORDER BY s.id \
         RETURNING id, session_id",
    )
    .bind(nanos(change.at)?)
    .bind(change.reason.as_str())
    .bind(change.actor.as_str())
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(store_error)?;
    let mut event_ids = HashMap::with_capacity(logged.len());
    for row in &logged {
        let id: i64 = row.try_get("id").map_err(store_error)?;
        let session: String = row.try_get("session_id").map_err(store_error)?;
        event_ids.insert(session, id);
    }
    for r in &mut revoked {
        let id = event_ids.get(&r.id.to_string()).ok_or_else(|| {
            StoreError::Corrupt(format!("no event was logged for session {}", r.id))
        })?;
        r.event_id = event_id::format(*id);
    }
    Ok(revoked)
}

/// What an event says beside its type.
pub(crate) struct NewEvent<'a> {
    pub(crate) event_type: EventType,
    pub(crate) at: time::OffsetDateTime,
    pub(crate) session_id: SessionId,
    pub(crate) principal: &'a Principal,
    pub(crate) reason: Option<&'a str>,
    pub(crate) actor: Actor,
}

/// Logs one event on `conn` (in the caller's transaction, if any); returns its id.
pub(crate) async fn log(
    conn: &mut SqliteConnection,
    event: NewEvent<'_>,
) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO events (type, occurred_at, session_id, user_id, session_kind, agent_id, \
         reason, actor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
    )
    .bind(event.event_type.as_str())
    .bind(nanos(event.at)?)
    .bind(event.session_id.to_string())
    .bind(event.principal.user_id().as_str())
    .bind(event.principal.kind().as_str())
    .bind(event.principal.agent_id().map(|a| a.as_str().to_owned()))
    .bind(event.reason)
    .bind(event.actor.as_str())
    .fetch_one(&mut *conn)
    .await
    .map_err(store_error)
}
