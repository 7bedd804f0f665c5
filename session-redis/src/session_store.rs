//! The [`SessionStore`] methods of [`RedisStore`]: each one command, or one script on
//! one shard (`revoke_matching` and the purge: one per shard; `events`: two per shard).

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use redis::Value;
use session_core::StoreError;
use session_core::events::{AuditQuery, EventId, EventQuery, EventType, SessionEvent};
use session_core::model::{Actor, AgentId, SessionId, SessionRecord, UserId};
use session_core::store::{
    Change, Created, Matched, NewSession, Purged, PushMessage, Retention, RevokeMany, RevokeScope,
    RevokedSession, SessionFilter, SessionStore, UserState, ip_key,
};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::codec::{self, RECORD_FIELDS, array, corrupt, int, opt, opt_string, string};
use crate::error::Error;
use crate::layout::{Shard, ShardKeys, micros, millis, millis_ceil, nanos};
use crate::scripts::SCRIPTS;
use crate::store::{RedisStore, Retry};

/// The most sessions one `revoke_matching` script looks at, and the most it revokes: past
/// either, it stops and the next script of the shard goes on (bounding how long one
/// script blocks Redis, whatever the shard's size).
const MATCH_SCAN: usize = 2_000;
const MATCH_REVOKE: usize = 250;
/// Records deleted per purge script.
const PURGE_BATCH: usize = 1_000;
/// Users whose audit index a purge script trims (`SSCAN COUNT`).
const PURGE_USERS: usize = 500;
/// The longest push payload this store sends (Redis takes far more; this keeps each
/// message small beside the subscribers' output buffers).
const PUSH_LIMIT: usize = 64 * 1024;

impl RedisStore {
    /// The arguments every revocation script takes about its change, after tag and shard.
    fn change_args(change: &Change<'_>) -> (i64, String, String, &'static str) {
        (
            micros(change.at),
            nanos(change.at),
            change.reason.as_str().to_owned(),
            change.actor.as_str(),
        )
    }

    /// `revoke_matching` on one shard: one script, or more for a shard larger than one
    /// script's budget.
    async fn revoke_matching_in(
        &self,
        keys: ShardKeys,
        filter: &SessionFilter,
        change: &Change<'_>,
        dry_run: bool,
    ) -> Result<(u64, Vec<RevokedSession>), StoreError> {
        let mut matched = 0;
        let mut revoked = Vec::new();
        let mut cursor = None;
        loop {
            let (m, r, next) = self
                .revoke_matching_step(&keys, filter, change, dry_run, cursor.as_deref())
                .await?;
            matched += m;
            revoked.extend(r);
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok((matched, revoked)),
            }
        }
    }

    async fn revoke_matching_step(
        &self,
        keys: &ShardKeys,
        filter: &SessionFilter,
        change: &Change<'_>,
        dry_run: bool,
        cursor: Option<&str>,
    ) -> Result<(u64, Vec<RevokedSession>, Option<String>), StoreError> {
        let (us, ns, reason, actor) = Self::change_args(change);
        let (lo, hi) = filter.ip.map(|net| (net.lo_key(), net.hi_key())).unzip();
        let mut inv = SCRIPTS.revoke_matching.prepare_invoke();
        inv.key(keys.active())
            .key(keys.ended())
            .key(keys.log())
            .key(keys.users())
            .arg(&keys.tag)
            .arg(keys.number())
            .arg(us.max(0))
            .arg(ns)
            .arg(reason)
            .arg(actor)
            .arg(if dry_run { "1" } else { "0" })
            .arg(opt(filter
                .created_before
                .map(|t| micros(t).to_string())
                .as_deref()))
            .arg(opt(lo.as_deref()))
            .arg(opt(hi.as_deref()))
            .arg(opt(filter.user_agent.as_deref()))
            .arg(filter.kind.map_or("", |k| k.as_str()))
            .arg(opt(filter.idp_issuer.as_deref()))
            .arg(opt(filter.idp_sid.as_deref()))
            .arg(opt(cursor))
            .arg(MATCH_SCAN)
            .arg(MATCH_REVOKE);
        let retry = if dry_run {
            Retry::Idempotent
        } else {
            Retry::Once
        };
        let mut reply = array(self.eval_bulk(retry, inv).await?)?.into_iter();
        let (Some(matched), Some(next)) = (reply.next(), reply.next()) else {
            return Err(corrupt("revoke_matching returned nothing"));
        };
        let matched = u64::try_from(int(matched)?).unwrap_or(0);
        let next = Some(string(next)?).filter(|n| !n.is_empty());
        Ok((matched, codec::revoked(reply.collect())?, next))
    }

    /// Deletes one shard's ended records and old events.
    async fn purge_shard(
        &self,
        keys: ShardKeys,
        session_cutoff: Option<i64>,
        event_cutoff: Option<i64>,
    ) -> Result<Purged, StoreError> {
        let mut purged = Purged::default();
        if let Some(cutoff) = session_cutoff {
            loop {
                let mut inv = SCRIPTS.purge_sessions.prepare_invoke();
                inv.key(keys.ended())
                    .key(keys.active())
                    .arg(&keys.tag)
                    .arg(cutoff)
                    .arg(cutoff.max(0))
                    .arg(PURGE_BATCH);
                let n: usize = self.eval_bulk(Retry::Idempotent, inv).await?;
                purged.sessions += n as u64;
                if n < PURGE_BATCH {
                    break;
                }
            }
        }
        if let Some(cutoff) = event_cutoff {
            let mut cursor = "0".to_owned();
            let mut first = true;
            loop {
                let mut inv = SCRIPTS.purge_events.prepare_invoke();
                inv.key(keys.log())
                    .key(keys.users())
                    .arg(&keys.tag)
                    .arg(cutoff)
                    .arg(if first { "1" } else { "0" })
                    .arg(&cursor)
                    .arg(PURGE_USERS);
                let (trimmed, next): (u64, String) = self.eval_bulk(Retry::Idempotent, inv).await?;
                purged.events += trimmed;
                first = false;
                if next == "0" {
                    break;
                }
                cursor = next;
            }
        }
        Ok(purged)
    }
}

/// `now - by`, or `None` when that is before any time `OffsetDateTime` holds.
fn before(now: OffsetDateTime, by: Duration) -> Option<OffsetDateTime> {
    time::Duration::try_from(by)
        .ok()
        .and_then(|by| now.checked_sub(by))
}

#[async_trait]
impl SessionStore for RedisStore {
    fn new_session_id(&self, user_id: &UserId) -> SessionId {
        self.layout
            .session_id_in(self.layout.shard_of_user(user_id))
    }

    async fn user_state(&self, user_id: &UserId) -> Result<UserState, StoreError> {
        let keys = self.keys_of(user_id);
        let (epoch, disabled): (Option<u64>, Option<String>) = self
            .query(
                Retry::Idempotent,
                redis::cmd("HMGET")
                    .arg(keys.user_meta(user_id))
                    .arg("ep")
                    .arg("dis")
                    .clone(),
            )
            .await?;
        Ok(UserState {
            epoch: epoch.unwrap_or(0),
            disabled: disabled.is_some(),
        })
    }

    async fn create(&self, new: NewSession<'_>) -> Result<Created, StoreError> {
        let rec = new.record;
        let user = rec.user_id();
        let shard = self.layout.shard_of_user(user);
        if self.layout.shard_of_id(rec.id) != shard {
            return Err(StoreError::backend(Error::MisplacedSessionId(rec.id)));
        }
        let grantor = match new.granted_by {
            // Another shard: another user's session.
            Some(g) if self.layout.shard_of_id(g) != shard => return Ok(Created::GrantorGone),
            Some(g) => g.to_string(),
            None => String::new(),
        };
        let keys = self.keys(shard);
        let json = serde_json::to_string(rec).map_err(|e| corrupt(e.to_string()))?;
        let idp = rec.idp.as_ref();
        let last = rec.last_active_at;
        let mut inv = SCRIPTS.create.prepare_invoke();
        inv.key(keys.record(rec.id))
            .key(keys.user_index(user))
            .key(keys.user_meta(user))
            .key(keys.active())
            .key(keys.ended())
            .key(keys.log())
            .key(keys.audit(user))
            .key(keys.users())
            .arg(&keys.tag)
            .arg(keys.number())
            .arg(opt(new.expected_epoch.map(|e| e.to_string()).as_deref()))
            .arg(grantor)
            .arg(opt(new.max_user_sessions.map(|m| m.to_string()).as_deref()))
            .arg(rec.id.to_string())
            .arg(user.as_str())
            .arg(opt(rec.principal.agent_id().map(AgentId::as_str)))
            .arg(micros(rec.created_at))
            .arg(micros(rec.expires_at))
            .arg(last.unix_timestamp())
            .arg(last.nanosecond())
            .arg(json)
            .arg(opt(rec.user_agent.as_deref()))
            .arg(opt(rec.ip.as_deref().and_then(ip_key).as_deref()))
            .arg(opt(idp.map(|l| l.issuer.as_str())))
            .arg(opt(idp.map(|l| l.subject.as_str())))
            .arg(opt(idp.and_then(|l| l.sid.as_deref())))
            .arg(nanos(rec.created_at))
            .arg(new.actor.as_str())
            .arg(nanos(rec.expires_at))
            .arg(opt(rec.principal.agent_name()));
        let mut reply = array(self.eval(Retry::Idempotent, inv).await?)?.into_iter();
        let status = string(
            reply
                .next()
                .ok_or_else(|| corrupt("create returned nothing"))?,
        )?;
        match status.as_str() {
            "created" => {
                let event_id = string(reply.next().ok_or_else(|| corrupt("no event id"))?)?;
                Ok(Created::Created {
                    event_id: EventId::new(event_id),
                    evicted: codec::revoked(reply.collect())?,
                })
            }
            "epoch" => Ok(Created::EpochMoved),
            "grantor" => Ok(Created::GrantorGone),
            "disabled" => Ok(Created::UserDisabled),
            other => Err(corrupt(format!("create answered {other:?}"))),
        }
    }

    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let keys = self.keys(self.layout.shard_of_id(id));
        let fields: Vec<Option<String>> = self
            .query(
                Retry::Idempotent,
                redis::cmd("HMGET")
                    .arg(keys.record(id))
                    .arg(&RECORD_FIELDS[..])
                    .clone(),
            )
            .await?;
        codec::record(fields)
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        let keys = self.keys(self.layout.shard_of_id(id));
        let mut inv = SCRIPTS.touch.prepare_invoke();
        inv.key(keys.record(id))
            .arg(at.unix_timestamp())
            .arg(at.nanosecond());
        let _moved: i64 = self.eval(Retry::Idempotent, inv).await?;
        Ok(())
    }

    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        // One read-only script would do as well; a pipeline of reads keeps the scripts to
        // the changes. Atomicity is not needed: a listing is a snapshot either way.
        let keys = self.keys_of(user_id);
        let ids: Vec<String> = self
            .query(
                Retry::Idempotent,
                redis::cmd("ZRANGE")
                    .arg(keys.user_index(user_id))
                    .arg(0)
                    .arg(-1)
                    .arg("REV")
                    .clone(),
            )
            .await?;
        let now_us = micros(now);
        let mut out = Vec::new();
        for chunk in ids.chunks(limit.clamp(1, 500)) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("HMGET")
                    .arg(format!("{}:s:{id}", keys.tag))
                    .arg(&RECORD_FIELDS[..])
                    .arg("ex");
            }
            let rows: Vec<Vec<Option<String>>> = self.run_pipeline(Retry::Idempotent, pipe).await?;
            for mut row in rows {
                let ex = row.pop().flatten();
                let active = ex
                    .as_deref()
                    .and_then(|e| e.parse::<i64>().ok())
                    .is_some_and(|e| e > now_us);
                if !active {
                    continue;
                }
                if let Some(rec) = codec::record(row)?
                    && !rec.is_revoked()
                {
                    out.push(rec);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn revoke(
        &self,
        id: SessionId,
        change: Change<'_>,
    ) -> Result<Option<RevokedSession>, StoreError> {
        let keys = self.keys(self.layout.shard_of_id(id));
        let (us, ns, reason, actor) = Self::change_args(&change);
        let mut inv = SCRIPTS.revoke.prepare_invoke();
        inv.key(keys.record(id))
            .key(keys.active())
            .key(keys.ended())
            .key(keys.log())
            .key(keys.users())
            .arg(&keys.tag)
            .arg(keys.number())
            .arg(id.to_string())
            .arg(ns)
            .arg(us)
            .arg(reason)
            .arg(actor);
        let reply = array(self.eval(Retry::Once, inv).await?)?;
        Ok(codec::revoked(reply)?.pop())
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<RevokedSession>, StoreError> {
        let user = req.user_id;
        let keys = self.keys_of(user);
        let (us, ns, reason, actor) = Self::change_args(&req.change);
        let (scope, agent, issuer, subject, sid) = match req.scope {
            RevokeScope::All => ("all", "", "", None, None),
            RevokeScope::UserSessions => ("user", "", "", None, None),
            RevokeScope::Agent(agent) => ("agent", agent.as_str(), "", None, None),
            RevokeScope::Idp {
                issuer,
                subject,
                sid,
            } => (
                "idp",
                "",
                issuer.as_str(),
                subject.as_deref(),
                sid.as_deref(),
            ),
            other => {
                return Err(StoreError::backend(std::io::Error::other(format!(
                    "revocation scope {other:?} is not supported by the redis store"
                ))));
            }
        };
        let mut inv = SCRIPTS.revoke_many.prepare_invoke();
        inv.key(keys.user_index(user))
            .key(keys.user_meta(user))
            .key(keys.active())
            .key(keys.ended())
            .key(keys.log())
            .key(keys.audit(user))
            .key(keys.users())
            .arg(&keys.tag)
            .arg(keys.number())
            .arg(user.as_str())
            .arg(us)
            .arg(ns)
            .arg(reason)
            .arg(actor)
            .arg(scope)
            .arg(agent)
            .arg(issuer)
            .arg(opt(subject))
            .arg(opt(sid))
            .arg(req.except.map(|id| id.to_string()).unwrap_or_default())
            .arg(if req.scope.moves_epoch() { "1" } else { "0" })
            .arg(if req.disable_user && *req.scope == RevokeScope::All {
                "1"
            } else {
                "0"
            });
        codec::revoked(array(self.eval(Retry::Once, inv).await?)?)
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
        let per_shard = try_join_all(
            self.layout
                .all()
                .map(|shard| self.revoke_matching_in(self.keys(shard), filter, &change, dry_run)),
        )
        .await?;
        let mut out = Matched::default();
        for (matched, revoked) in per_shard {
            out.matched += matched;
            out.revoked.extend(revoked);
        }
        Ok(out)
    }

    async fn set_user_disabled(&self, user_id: &UserId, disabled: bool) -> Result<(), StoreError> {
        let key = self.keys_of(user_id).user_meta(user_id);
        let cmd = if disabled {
            redis::cmd("HSET").arg(key).arg("dis").arg("1").clone()
        } else {
            redis::cmd("HDEL").arg(key).arg("dis").clone()
        };
        let _: i64 = self.query(Retry::Idempotent, cmd).await?;
        Ok(())
    }

    async fn report_expired(
        &self,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<Option<SessionEvent>, StoreError> {
        let keys = self.keys(self.layout.shard_of_id(id));
        let mut inv = SCRIPTS.report_expired.prepare_invoke();
        inv.key(keys.record(id))
            .key(keys.log())
            .key(keys.users())
            .arg(&keys.tag)
            .arg(keys.number())
            .arg(id.to_string())
            .arg(nanos(at));
        let mut reply = array(self.eval(Retry::Once, inv).await?)?.into_iter();
        let (Some(event_id), Some(user), agent) = (reply.next(), reply.next(), reply.next()) else {
            return Ok(None);
        };
        let agent = agent.map(opt_string).transpose()?.flatten();
        Ok(Some(SessionEvent {
            id: EventId::new(string(event_id)?),
            event_type: EventType::Expired,
            occurred_at: at,
            session_id: id,
            user_id: UserId::from(string(user)?),
            session_kind: if agent.is_some() {
                session_core::SessionKind::Agent
            } else {
                session_core::SessionKind::User
            },
            agent_id: agent.map(AgentId::from),
            reason: None,
            actor: Actor::System,
        }))
    }

    async fn append_event(&self, event: &SessionEvent) -> Result<EventId, StoreError> {
        let keys = self.keys_of(&event.user_id);
        let mut inv = SCRIPTS.append_event.prepare_invoke();
        inv.key(keys.log())
            .key(keys.audit(&event.user_id))
            .key(keys.users())
            .arg(&keys.tag)
            .arg(keys.number())
            .arg(event.event_type.as_str())
            .arg(nanos(event.occurred_at))
            .arg(event.session_id.to_string())
            .arg(event.user_id.as_str())
            .arg(opt(event.agent_id.as_ref().map(AgentId::as_str)))
            .arg(opt(event.reason.as_ref().map(|r| r.as_str())))
            .arg(event.actor.as_str());
        let id: String = self.eval(Retry::Once, inv).await?;
        Ok(EventId::new(id))
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<SessionEvent>, StoreError> {
        crate::log::events(self, query).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<SessionEvent>, StoreError> {
        crate::log::audit(self, query).await
    }

    async fn purge(&self, now: OffsetDateTime, retention: Retention) -> Result<Purged, StoreError> {
        let sessions = before(now, retention.sessions).map(micros);
        let events = before(now, retention.events)
            .map(millis)
            .filter(|ms| *ms > 0);
        let per_shard = try_join_all(
            self.layout
                .all()
                .map(|shard: Shard| self.purge_shard(self.keys(shard), sessions, events)),
        )
        .await?;
        Ok(per_shard
            .into_iter()
            .fold(Purged::default(), |a, b| Purged {
                sessions: a.sessions + b.sessions,
                events: a.events + b.events,
            }))
    }

    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, StoreError> {
        let set: Value = self
            .query(
                Retry::Once,
                redis::cmd("SET")
                    .arg(self.layout.once(key))
                    .arg("1")
                    .arg("NX")
                    .arg("PXAT")
                    .arg(millis_ceil(until).max(1))
                    .clone(),
            )
            .await?;
        Ok(!matches!(set, Value::Nil))
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut inv = SCRIPTS.lease.prepare_invoke();
        inv.key(self.layout.lease(name)).arg(holder).arg(ms);
        let held: i64 = self.eval(Retry::Idempotent, inv).await?;
        Ok(held == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut inv = SCRIPTS.release.prepare_invoke();
        inv.key(self.layout.lease(name)).arg(holder);
        let _: i64 = self.eval(Retry::Idempotent, inv).await?;
        Ok(())
    }

    async fn load_cursor(&self, name: &str) -> Result<Option<EventId>, StoreError> {
        let cursor: Option<String> = self
            .query(
                Retry::Idempotent,
                redis::cmd("GET").arg(self.layout.cursor(name)).clone(),
            )
            .await?;
        Ok(cursor.map(EventId::new))
    }

    async fn save_cursor(&self, name: &str, cursor: &EventId) -> Result<(), StoreError> {
        let _: Value = self
            .query(
                Retry::Idempotent,
                redis::cmd("SET")
                    .arg(self.layout.cursor(name))
                    .arg(cursor.as_str())
                    .clone(),
            )
            .await?;
        Ok(())
    }

    async fn publish(&self, payload: &str) -> Result<(), StoreError> {
        let _receivers: i64 = self
            .query(
                Retry::Idempotent,
                redis::cmd(self.publish)
                    .arg(self.layout.channel())
                    .arg(payload)
                    .clone(),
            )
            .await?;
        Ok(())
    }

    fn push_limit(&self) -> usize {
        PUSH_LIMIT
    }

    fn push_messages(&self) -> Option<broadcast::Receiver<PushMessage>> {
        Some(self.push.subscribe())
    }
}
