//! [`SessionStore`] for [`SqliteStore`]: each method one statement or one transaction.

use std::time::Duration;

use async_trait::async_trait;
use session_core::events::{AuditQuery, EventId, EventQuery, EventType, SessionEvent};
use session_core::store::{
    Change, Created, Matched, NewSession, Purged, Retention, RevokeMany, RevokedSession, UserState,
    ip_key,
};
use session_core::{
    Actor, AgentId, RevocationReason, RevokeScope, SessionFilter, SessionId, SessionKind,
    SessionRecord, SessionStore, StoreError, UserId,
};
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Sqlite, Transaction};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::event_id;
use crate::revoke::{self, NewEvent};
use crate::rows::{
    self, event_columns, nanos, nanos_clamped, nanos_moved, session_columns, store_error,
};

/// A write transaction that holds SQLite's write lock from its first statement: what it
/// reads cannot change before it commits, and the event ids it takes are the next ones.
async fn write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(store_error)
}

async fn commit(tx: Transaction<'static, Sqlite>) -> Result<(), StoreError> {
    tx.commit().await.map_err(store_error)
}

/// Gives the write lock back without writing (a refused create).
async fn rollback(tx: Transaction<'static, Sqlite>) -> Result<(), StoreError> {
    tx.rollback().await.map_err(store_error)
}

/// Rows a purge deletes per transaction: a few milliseconds of the write lock.
const PURGE_BATCH: i64 = 2_000;

/// Runs `delete` (a `DELETE … IN (SELECT … WHERE … <= ?1 LIMIT ?2)`) until a batch
/// deletes less than a whole one; returns how many rows went.
async fn purge_in_batches(
    pool: &SqlitePool,
    delete: &'static str,
    cutoff: i64,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let done = sqlx::query(delete)
            .bind(cutoff)
            .bind(PURGE_BATCH)
            .execute(pool)
            .await
            .map_err(store_error)?
            .rows_affected();
        total += done;
        if done < PURGE_BATCH as u64 {
            return Ok(total);
        }
    }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn state(conn: &mut SqliteConnection, user_id: &UserId) -> Result<UserState, StoreError> {
    let row = sqlx::query("SELECT epoch, disabled FROM users WHERE user_id = ?1")
        .bind(user_id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(store_error)?;
    let Some(row) = row else {
        return Ok(UserState::default());
    };
    Ok(UserState {
        epoch: rows::user_epoch(row.try_get("epoch").map_err(store_error)?)?,
        disabled: row.try_get::<i64, _>("disabled").map_err(store_error)? != 0,
    })
}

/// Inserts the record, at `epoch`, with its network key.
async fn insert(
    conn: &mut SqliteConnection,
    record: &SessionRecord,
    epoch: u64,
) -> Result<(), StoreError> {
    let idp = record.idp.as_ref();
    sqlx::query(concat!(
        "INSERT INTO sessions (",
        session_columns!(),
        ", ip_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
         ?16, ?17, ?18)"
    ))
    .bind(record.id.to_string())
    .bind(&record.secret_hash[..])
    .bind(record.user_id().as_str())
    .bind(record.kind().as_str())
    .bind(record.principal.agent_id().map(AgentId::as_str))
    .bind(record.principal.agent_name())
    .bind(nanos(record.created_at)?)
    .bind(nanos(record.last_active_at)?)
    .bind(nanos(record.expires_at)?)
    .bind(record.user_agent.as_deref())
    .bind(record.ip.as_deref())
    .bind(record.revoked_at.map(nanos).transpose()?)
    .bind(
        record
            .revocation_reason
            .as_ref()
            .map(RevocationReason::as_str),
    )
    .bind(i64::try_from(epoch).map_err(|_| StoreError::Corrupt(format!("epoch {epoch}")))?)
    .bind(idp.map(|l| l.issuer.as_str()))
    .bind(idp.map(|l| l.subject.as_str()))
    .bind(idp.and_then(|l| l.sid.as_deref()))
    .bind(
        record
            .ip
            .as_deref()
            .map(|ip| ip_key(ip).unwrap_or_default()),
    )
    .execute(&mut *conn)
    .await
    .map_err(store_error)?;
    Ok(())
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn user_state(&self, user_id: &UserId) -> Result<UserState, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        state(&mut conn, user_id).await
    }

    async fn create(&self, new: NewSession<'_>) -> Result<Created, StoreError> {
        let record = new.record;
        let user_id = record.user_id();
        // The write lock is taken before anything is read: no revoke-all, disable or
        // revocation of the grantor can commit between the checks and the insert.
        let mut tx = write(&self.pool).await?;
        let user = state(&mut tx, user_id).await?;
        if user.disabled {
            rollback(tx).await?;
            return Ok(Created::UserDisabled);
        }
        if new.expected_epoch.is_some_and(|e| e != user.epoch) {
            rollback(tx).await?;
            return Ok(Created::EpochMoved);
        }
        if let Some(grantor) = new.granted_by {
            let alive: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM sessions WHERE id = ?1 AND user_id = ?2 \
                 AND revoked_at IS NULL AND expires_at > ?3 AND epoch = ?4",
            )
            .bind(grantor.to_string())
            .bind(user_id.as_str())
            .bind(nanos_clamped(record.created_at))
            .bind(i64::try_from(user.epoch).unwrap_or(i64::MAX))
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            if alive.is_none() {
                rollback(tx).await?;
                return Ok(Created::GrantorGone);
            }
        }
        let mut evicted = Vec::new();
        if let (Some(max), SessionKind::User) = (new.max_user_sessions, record.kind()) {
            // Keep the newest `max - 1` live user sessions; the new one makes `max`.
            let change = Change {
                reason: &RevocationReason::SessionLimit,
                actor: Actor::System,
                at: record.created_at,
            };
            let mut update = revoke::start(&change)?;
            update
                .push(" AND id IN (SELECT id FROM sessions WHERE user_id = ")
                .push_bind(user_id.as_str().to_owned())
                .push(" AND kind = 'user' AND revoked_at IS NULL AND expires_at > ")
                .push_bind(nanos_clamped(record.created_at))
                .push(" ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ")
                .push_bind(i64::from(max.saturating_sub(1)))
                .push(")");
            evicted = revoke::finish(&mut tx, update, &change).await?;
        }
        insert(&mut tx, record, user.epoch).await?;
        let id = revoke::log(
            &mut tx,
            NewEvent {
                event_type: EventType::Created,
                at: record.created_at,
                session_id: record.id,
                principal: &record.principal,
                reason: None,
                actor: new.actor,
            },
        )
        .await?;
        commit(tx).await?;
        Ok(Created::Created {
            event_id: event_id::format(id),
            evicted,
        })
    }

    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = ?1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(rows::record).transpose()
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        // `MAX` keeps it from moving backwards; the `WHERE` skips the write when it would
        // not move at all.
        sqlx::query(
            "UPDATE sessions SET last_active_at = MAX(last_active_at, ?2) \
             WHERE id = ?1 AND last_active_at < ?2",
        )
        .bind(id.to_string())
        .bind(nanos(at)?)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
             ORDER BY created_at DESC, id DESC LIMIT ?3"
        ))
        .bind(user_id.as_str())
        .bind(nanos_clamped(now))
        .bind(self::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(rows::record).collect()
    }

    async fn revoke(
        &self,
        id: SessionId,
        change: Change<'_>,
    ) -> Result<Option<RevokedSession>, StoreError> {
        let mut update = revoke::start(&change)?;
        update.push(" AND id = ").push_bind(id.to_string());
        let mut tx = write(&self.pool).await?;
        let revoked = revoke::finish(&mut tx, update, &change).await?;
        commit(tx).await?;
        Ok(revoked.into_iter().next())
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<RevokedSession>, StoreError> {
        let change = req.change;
        let user_id = req.user_id.as_str();
        let mut update = revoke::start(&change)?;
        update.push(" AND user_id = ").push_bind(user_id.to_owned());
        revoke::alive(&mut update, &change);
        if let Some(except) = req.except {
            update.push(" AND id <> ").push_bind(except.to_string());
        }
        let mut tx = write(&self.pool).await?;
        match req.scope {
            RevokeScope::All => {}
            RevokeScope::UserSessions => {
                update.push(" AND kind = 'user'");
            }
            RevokeScope::Agent(agent) => {
                update
                    .push(" AND agent_id = ")
                    .push_bind(agent.as_str().to_owned());
            }
            RevokeScope::Idp {
                issuer,
                subject,
                sid,
            } => {
                update.push(" AND idp_issuer = ").push_bind(issuer.clone());
                if let Some(subject) = subject {
                    update
                        .push(" AND idp_subject = ")
                        .push_bind(subject.clone());
                }
                if let Some(sid) = sid {
                    update.push(" AND idp_sid = ").push_bind(sid.clone());
                }
            }
            // A scope added to session-core after this crate: decide with `covers` on the
            // user's live sessions, in this transaction.
            scope => {
                let candidates = sqlx::query(concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2"
                ))
                .bind(user_id)
                .bind(nanos_clamped(change.at))
                .fetch_all(&mut *tx)
                .await
                .map_err(store_error)?;
                let mut ids = Vec::new();
                for row in &candidates {
                    let rec = rows::record(row)?;
                    if scope.covers(&rec) {
                        ids.push(format!("\"{}\"", rec.id));
                    }
                }
                update
                    .push(" AND id IN (SELECT value FROM json_each(")
                    .push_bind(format!("[{}]", ids.join(",")))
                    .push("))");
            }
        }
        if req.scope.moves_epoch() {
            let disable = req.disable_user && *req.scope == RevokeScope::All;
            sqlx::query(
                "INSERT INTO users (user_id, epoch, disabled) VALUES (?1, 1, ?2) \
                 ON CONFLICT (user_id) DO UPDATE \
                 SET epoch = epoch + 1, disabled = max(disabled, excluded.disabled)",
            )
            .bind(user_id)
            .bind(i64::from(disable))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        let revoked = revoke::finish(&mut tx, update, &change).await?;
        commit(tx).await?;
        Ok(revoked)
    }

    async fn revoke_matching(
        &self,
        filter: &SessionFilter,
        change: Change<'_>,
        dry_run: bool,
    ) -> Result<Matched, StoreError> {
        if filter.is_empty() {
            return Ok(Matched::default());
        }
        if dry_run {
            let mut count =
                sqlx::QueryBuilder::new("SELECT count(*) FROM sessions WHERE revoked_at IS NULL");
            count
                .push(" AND expires_at > ")
                .push_bind(nanos_clamped(change.at));
            revoke::filter(&mut count, filter);
            let matched: i64 = count
                .build_query_scalar()
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
            return Ok(Matched {
                matched: u64::try_from(matched).unwrap_or_default(),
                revoked: Vec::new(),
            });
        }
        let mut update = revoke::start(&change)?;
        revoke::alive(&mut update, &change);
        revoke::filter(&mut update, filter);
        let mut tx = write(&self.pool).await?;
        let revoked = revoke::finish(&mut tx, update, &change).await?;
        commit(tx).await?;
        Ok(Matched {
            matched: revoked.len() as u64,
            revoked,
        })
    }

    async fn set_user_disabled(&self, user_id: &UserId, disabled: bool) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (user_id, disabled) VALUES (?1, ?2) \
             ON CONFLICT (user_id) DO UPDATE SET disabled = excluded.disabled",
        )
        .bind(user_id.as_str())
        .bind(i64::from(disabled))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn report_expired(
        &self,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<Option<SessionEvent>, StoreError> {
        let mut tx = write(&self.pool).await?;
        let row = sqlx::query(
            "UPDATE sessions SET expiry_reported = 1 WHERE id = ?1 AND expiry_reported = 0 \
             RETURNING user_id, kind, agent_id, agent_name",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(row) = row else {
            rollback(tx).await?;
            return Ok(None);
        };
        let principal = rows::row_principal(&row)?;
        let event_id = revoke::log(
            &mut tx,
            NewEvent {
                event_type: EventType::Expired,
                at,
                session_id: id,
                principal: &principal,
                reason: None,
                actor: Actor::System,
            },
        )
        .await?;
        commit(tx).await?;
        Ok(Some(SessionEvent::about(
            event_id::format(event_id),
            EventType::Expired,
            id,
            &principal,
            None,
            Actor::System,
            at,
        )))
    }

    async fn append_event(&self, event: &SessionEvent) -> Result<EventId, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO events (type, occurred_at, session_id, user_id, session_kind, \
             agent_id, reason, actor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        )
        .bind(event.event_type.as_str())
        .bind(nanos(event.occurred_at)?)
        .bind(event.session_id.to_string())
        .bind(event.user_id.as_str())
        .bind(event.session_kind.as_str())
        .bind(event.agent_id.as_ref().map(AgentId::as_str))
        .bind(event.reason.as_ref().map(RevocationReason::as_str))
        .bind(event.actor.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(event_id::format(id))
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<SessionEvent>, StoreError> {
        // One SELECT reads one snapshot of committed rows, and SQLite commits event ids in
        // order (the crate docs say why): what it serves can no longer be overtaken.
        let after = query
            .after
            .as_ref()
            .map_or(-1, |c| event_id::at_or_before(c.as_str()));
        let rows = match query.event_type {
            None => sqlx::query(concat!(
                "SELECT ",
                event_columns!(),
                " FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))
            .bind(after)
            .bind(limit(query.limit)),
            Some(t) => sqlx::query(concat!(
                "SELECT ",
                event_columns!(),
                " FROM events WHERE type = ?3 AND id > ?1 ORDER BY id LIMIT ?2"
            ))
            .bind(after)
            .bind(limit(query.limit))
            .bind(t.as_str()),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(rows::event).collect()
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<SessionEvent>, StoreError> {
        let before = query
            .before
            .as_ref()
            .map_or(i64::MAX, |c| event_id::before(c.as_str()));
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE user_id = ?1 AND id <= ?2 ORDER BY id DESC LIMIT ?3"
        ))
        .bind(query.user_id.as_str())
        .bind(before)
        .bind(limit(query.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(rows::event).collect()
    }

    async fn purge(&self, now: OffsetDateTime, retention: Retention) -> Result<Purged, StoreError> {
        let sessions_cutoff = nanos_moved(now, retention.sessions, false);
        let events_cutoff = nanos_moved(now, retention.events, false);
        let now = nanos_clamped(now);
        // Deleting old rows needs no atomicity, and a year of events in one transaction
        // would hold the write lock (every login, every revocation) for seconds: batches,
        // each its own transaction.
        let sessions = purge_in_batches(
            &self.pool,
            // The expression of the `sessions_ended_at` index, written the same way.
            "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions \
             WHERE min(coalesce(revoked_at, expires_at), expires_at) <= ?1 LIMIT ?2)",
            sessions_cutoff,
        )
        .await?;
        let events = purge_in_batches(
            &self.pool,
            "DELETE FROM events WHERE id IN \
             (SELECT id FROM events WHERE occurred_at <= ?1 LIMIT ?2)",
            events_cutoff,
        )
        .await?;
        purge_in_batches(
            &self.pool,
            "DELETE FROM first_use WHERE key IN \
             (SELECT key FROM first_use WHERE until <= ?1 LIMIT ?2)",
            now,
        )
        .await?;
        // An expired lease is a free one: its row can go (there are a handful).
        sqlx::query("DELETE FROM leases WHERE until <= ?1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(Purged { sessions, events })
    }

    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, StoreError> {
        // Inserted, or taken over from an expired mark: the first use. A live mark makes
        // the upsert's WHERE false: nothing returned.
        let first: Option<i64> = sqlx::query_scalar(
            "INSERT INTO first_use (key, until) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE first_use.until <= ?3 \
             RETURNING 1",
        )
        .bind(key)
        .bind(nanos_clamped(until))
        .bind(nanos_clamped(OffsetDateTime::now_utc()))
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(first.is_some())
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        // The wall clock, not a monotonic one: several processes may share the file.
        let now = OffsetDateTime::now_utc();
        let held: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until <= ?4 \
             RETURNING 1",
        )
        .bind(name)
        .bind(holder)
        .bind(nanos_moved(now, ttl, true))
        .bind(nanos_clamped(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(held.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = ?1 AND holder = ?2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn load_cursor(&self, name: &str) -> Result<Option<EventId>, StoreError> {
        let id: Option<String> = sqlx::query_scalar("SELECT event_id FROM cursors WHERE name = ?1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(id.map(EventId::new))
    }

    async fn save_cursor(&self, name: &str, cursor: &EventId) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cursors (name, event_id) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id",
        )
        .bind(name)
        .bind(cursor.as_str())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}
