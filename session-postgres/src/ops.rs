//! `impl SessionStore for PostgresStore`: one statement (one round trip) per method.

use std::time::Duration;

use async_trait::async_trait;
use session_core::StoreError;
use session_core::events::{AuditQuery, EventId, EventQuery, SessionEvent};
use session_core::model::{AgentId, RevocationReason, SessionId, SessionRecord, UserId};
use session_core::store::{
    Change, Created, Matched, NewSession, Purged, PushMessage, Retention, RevokeMany, RevokeScope,
    RevokedSession, SessionFilter, SessionStore, UserState, ip_key,
};
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::QueryAs;
use sqlx::{Arguments as _, AssertSqlSafe};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::PostgresStore;
use crate::notify::PUSH_LIMIT;
use crate::rows::{CreateRow, EventRow, RevokedRow, SessionRow, convert};
use crate::sql::Bind;

/// Runs a statement on the pool: as is, or, behind a transaction-mode pooler, unprepared
/// (an unnamed statement) inside an explicit `READ COMMITTED` transaction, so that its
/// parse and its execution reach the same server connection.
macro_rules! run {
    ($store:expr, $query:expr, $method:ident) => {{
        let inner = &$store.inner;
        if inner.pooled {
            async {
                let mut tx = inner.pool.begin_with(crate::store::BEGIN).await?;
                let out = $query.persistent(false).$method(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(out)
            }
            .await
        } else {
            $query.$method(&inner.pool).await
        }
        .map_err(store_error)
    }};
}

/// How long [`SessionStore::publish`] may take.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Maps a driver error: pool timeouts to [`StoreError::Timeout`], undecodable rows to
/// [`StoreError::Corrupt`], the rest to [`StoreError::Backend`].
pub(crate) fn store_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::PoolTimedOut => StoreError::Timeout,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(err.to_string()),
        other => StoreError::backend(other),
    }
}

fn to_i64(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} {n} out of range")))
}

/// The arguments of a statement built at run time.
fn arguments(binds: Vec<Bind>) -> Result<PgArguments, StoreError> {
    let mut args = PgArguments::default();
    for bind in binds {
        let added = match bind {
            Bind::Text(s) => args.add(s),
            Bind::Time(t) => args.add(t),
            Bind::Int(n) => args.add(n),
        };
        added.map_err(StoreError::Backend)?;
    }
    Ok(args)
}

fn dynamic_as<T>(
    sql: String,
    binds: Vec<Bind>,
) -> Result<QueryAs<'static, Postgres, T, PgArguments>, StoreError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    Ok(sqlx::query_as_with(AssertSqlSafe(sql), arguments(binds)?))
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn user_state(&self, user_id: &UserId) -> Result<UserState, StoreError> {
        let row: Option<(i64, bool)> = run!(
            self,
            sqlx::query_as(self.inner.sql.user_state.clone()).bind(user_id.as_str()),
            fetch_optional
        )?;
        let (epoch, disabled) = row.unwrap_or((0, false));
        Ok(UserState {
            epoch: u64::try_from(epoch)
                .map_err(|_| StoreError::Corrupt(format!("negative epoch {epoch}")))?,
            disabled,
        })
    }

    async fn create(&self, new: NewSession<'_>) -> Result<Created, StoreError> {
        let rec = new.record;
        let expected = new.expected_epoch.map(|e| to_i64(e, "epoch")).transpose()?;
        let max_user = new
            .max_user_sessions
            .map(|m| i32::try_from(m).unwrap_or(i32::MAX));
        let idp = rec.idp.as_ref();
        let rows: Vec<CreateRow> = run!(
            self,
            sqlx::query_as(self.inner.sql.create.clone())
                .bind(rec.id.as_uuid())
                .bind(&rec.secret_hash[..])
                .bind(rec.user_id().as_str())
                .bind(rec.kind().as_str())
                .bind(rec.principal.agent_id().map(AgentId::as_str))
                .bind(rec.principal.agent_name())
                .bind(rec.created_at)
                .bind(rec.last_active_at)
                .bind(rec.expires_at)
                .bind(rec.user_agent.as_deref())
                .bind(rec.ip.as_deref())
                .bind(rec.ip.as_deref().and_then(ip_key))
                .bind(idp.map(|l| l.issuer.as_str()))
                .bind(idp.map(|l| l.subject.as_str()))
                .bind(idp.and_then(|l| l.sid.as_deref()))
                .bind(expected)
                .bind(new.granted_by.map(|g| g.as_uuid()))
                .bind(max_user)
                .bind(new.actor.as_str()),
            fetch_all
        )?;
        let mut evicted = Vec::new();
        let mut created = None;
        for row in rows {
            match row.outcome.as_str() {
                "created" => created = row.event_id.map(EventId::new),
                "evicted" => evicted.push(row.evicted()?),
                "user_disabled" => return Ok(Created::UserDisabled),
                "epoch_moved" => return Ok(Created::EpochMoved),
                "grantor_gone" => return Ok(Created::GrantorGone),
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "create_session: outcome {other:?}"
                    )));
                }
            }
        }
        let event_id =
            created.ok_or_else(|| StoreError::Corrupt("create_session: no outcome".into()))?;
        Ok(Created::Created { event_id, evicted })
    }

    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        run!(
            self,
            sqlx::query_as::<_, SessionRow>(self.inner.sql.load.clone()).bind(id.as_uuid()),
            fetch_optional
        )?
        .map(SessionRecord::try_from)
        .transpose()
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        run!(
            self,
            sqlx::query(self.inner.sql.touch.clone())
                .bind(id.as_uuid())
                .bind(at),
            execute
        )?;
        Ok(())
    }

    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = run!(
            self,
            sqlx::query_as::<_, SessionRow>(self.inner.sql.list_active.clone())
                .bind(user_id.as_str())
                .bind(now)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
            fetch_all
        )?;
        convert(rows)
    }

    async fn revoke(
        &self,
        id: SessionId,
        change: Change<'_>,
    ) -> Result<Option<RevokedSession>, StoreError> {
        run!(
            self,
            sqlx::query_as::<_, RevokedRow>(self.inner.sql.revoke.clone())
                .bind(change.at)
                .bind(change.reason.as_str())
                .bind(change.actor.as_str())
                .bind(id.as_uuid()),
            fetch_optional
        )?
        .map(RevokedSession::try_from)
        .transpose()
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<RevokedSession>, StoreError> {
        let (scope, agent, issuer, subject, sid) = match req.scope {
            RevokeScope::All => ("all", None, None, None, None),
            RevokeScope::UserSessions => ("user", None, None, None, None),
            RevokeScope::Agent(agent) => ("agent", Some(agent.as_str()), None, None, None),
            RevokeScope::Idp {
                issuer,
                subject,
                sid,
            } => (
                "idp",
                None,
                Some(issuer.as_str()),
                subject.as_deref(),
                sid.as_deref(),
            ),
            other => {
                return Err(StoreError::backend(std::io::Error::other(format!(
                    "revocation scope {other:?} is not supported by this store"
                ))));
            }
        };
        let rows = run!(
            self,
            sqlx::query_as::<_, RevokedRow>(self.inner.sql.revoke_many.clone())
                .bind(req.user_id.as_str())
                .bind(scope)
                .bind(agent)
                .bind(issuer)
                .bind(subject)
                .bind(sid)
                .bind(req.except.map(|id| id.as_uuid()))
                .bind(req.change.reason.as_str())
                .bind(req.change.actor.as_str())
                .bind(req.change.at)
                .bind(req.disable_user && *req.scope == RevokeScope::All),
            fetch_all
        )?;
        convert(rows)
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
        let (sql, binds) = self.inner.sql.revoke_matching(
            filter,
            change.at,
            change.reason.as_str(),
            change.actor.as_str(),
            dry_run,
        );
        if dry_run {
            let query = dynamic_as(sql, binds)?;
            let (count,): (i64,) = run!(self, query, fetch_one)?;
            return Ok(Matched {
                matched: u64::try_from(count).unwrap_or(0),
                revoked: Vec::new(),
            });
        }
        let query = dynamic_as(sql, binds)?;
        let rows: Vec<RevokedRow> = run!(self, query, fetch_all)?;
        let revoked: Vec<RevokedSession> = convert(rows)?;
        Ok(Matched {
            matched: revoked.len() as u64,
            revoked,
        })
    }

    async fn set_user_disabled(&self, user_id: &UserId, disabled: bool) -> Result<(), StoreError> {
        run!(
            self,
            sqlx::query(self.inner.sql.set_disabled.clone())
                .bind(user_id.as_str())
                .bind(disabled),
            execute
        )?;
        Ok(())
    }

    async fn report_expired(
        &self,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<Option<SessionEvent>, StoreError> {
        run!(
            self,
            sqlx::query_as::<_, EventRow>(self.inner.sql.report_expired.clone())
                .bind(id.as_uuid())
                .bind(at),
            fetch_optional
        )?
        .map(SessionEvent::try_from)
        .transpose()
    }

    async fn append_event(&self, event: &SessionEvent) -> Result<EventId, StoreError> {
        let id: String = run!(
            self,
            sqlx::query_scalar(self.inner.sql.append_event.clone())
                .bind(event.event_type.as_str())
                .bind(event.occurred_at)
                .bind(event.session_id.as_uuid())
                .bind(event.user_id.as_str())
                .bind(event.session_kind.as_str())
                .bind(event.agent_id.as_ref().map(AgentId::as_str))
                .bind(event.reason.as_ref().map(RevocationReason::as_str))
                .bind(event.actor.as_str()),
            fetch_one
        )?;
        Ok(EventId::new(id))
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<SessionEvent>, StoreError> {
        let (sql, binds) = self.inner.sql.events(
            query.after.as_ref().map(EventId::as_str),
            query.event_type.map(|t| t.as_str()),
            i64::try_from(query.limit).unwrap_or(i64::MAX),
        );
        let query = dynamic_as(sql, binds)?;
        let rows: Vec<EventRow> = run!(self, query, fetch_all)?;
        convert(rows)
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<SessionEvent>, StoreError> {
        let (sql, binds) = self.inner.sql.audit(
            query.user_id.as_str(),
            query.before.as_ref().map(EventId::as_str),
            i64::try_from(query.limit).unwrap_or(i64::MAX),
        );
        let query = dynamic_as(sql, binds)?;
        let rows: Vec<EventRow> = run!(self, query, fetch_all)?;
        convert(rows)
    }

    async fn purge(&self, now: OffsetDateTime, retention: Retention) -> Result<Purged, StoreError> {
        let (sessions, events, _marks): (i64, i64, i64) = run!(
            self,
            sqlx::query_as(self.inner.sql.purge.clone())
                .bind(now - retention.sessions)
                .bind(now - retention.events)
                .bind(now),
            fetch_one
        )?;
        Ok(Purged {
            sessions: u64::try_from(sessions).unwrap_or(0),
            events: u64::try_from(events).unwrap_or(0),
        })
    }

    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, StoreError> {
        let first: Option<bool> = run!(
            self,
            sqlx::query_scalar(self.inner.sql.first_use.clone())
                .bind(key)
                .bind(until),
            fetch_optional
        )?;
        Ok(first.is_some())
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let held: Option<bool> = run!(
            self,
            sqlx::query_scalar(self.inner.sql.try_lease.clone())
                .bind(name)
                .bind(holder)
                .bind(ttl.as_secs_f64()),
            fetch_optional
        )?;
        Ok(held.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        run!(
            self,
            sqlx::query(self.inner.sql.release_lease.clone())
                .bind(name)
                .bind(holder),
            execute
        )?;
        Ok(())
    }

    async fn load_cursor(&self, name: &str) -> Result<Option<EventId>, StoreError> {
        let id: Option<String> = run!(
            self,
            sqlx::query_scalar(self.inner.sql.load_cursor.clone()).bind(name),
            fetch_optional
        )?;
        Ok(id.map(EventId::new))
    }

    async fn save_cursor(&self, name: &str, cursor: &EventId) -> Result<(), StoreError> {
        run!(
            self,
            sqlx::query(self.inner.sql.save_cursor.clone())
                .bind(name)
                .bind(cursor.as_str()),
            execute
        )?;
        Ok(())
    }

    async fn publish(&self, payload: &str) -> Result<(), StoreError> {
        let sent = async {
            run!(
                self,
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(self.inner.channel.as_str())
                    .bind(payload),
                execute
            )
        };
        match tokio::time::timeout(PUBLISH_TIMEOUT, sent).await {
            Ok(result) => result.map(drop),
            Err(_) => Err(StoreError::Timeout),
        }
    }

    fn push_limit(&self) -> usize {
        PUSH_LIMIT
    }

    fn push_messages(&self) -> Option<broadcast::Receiver<PushMessage>> {
        self.inner.push.as_ref().map(broadcast::Sender::subscribe)
    }
}
