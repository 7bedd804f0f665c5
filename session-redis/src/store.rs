//! [`RedisStore`]: the [`SessionStore`] over Redis.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{FromRedisValue, RedisError, ScriptInvocation};
use session_core::StoreError;
use session_core::model::{AgentId, RevocationReason, SessionId, SessionRecord, UserId};
use session_core::store::{Created, Invalidation, RevokeMany, RevokeScope, SessionStore};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::builder::RedisStoreBuilder;
use crate::layout::{Keys, micros_ceil, micros_floor, millis_ceil, rfc3339};
use crate::push::{AbortOnDrop, Publisher};
use crate::scripts::SCRIPTS;

/// User indexes handled per purge script (and asked for per `SCAN` step).
const PURGE_BATCH: usize = 500;

/// Sessions in Redis, shared by every instance that connects with the same prefix, with
/// revocations pushed between instances over pub/sub. See the [crate docs](crate).
pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
    command_timeout: Duration,
    publisher: Publisher,
    invalidations: broadcast::Sender<Invalidation>,
    _subscriber: AbortOnDrop,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the connection: its URL may carry a password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.keys.prefix())
            .field("command_timeout", &self.command_timeout)
            .field("publisher", &self.publisher.id())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` with the default settings (prefix `session:`); see
    /// [`RedisStoreBuilder`] for the others.
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        RedisStoreBuilder::new(url).connect().await
    }

    /// Connects to the Redis at `url`, with every key and the channel under `prefix`.
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::connect`].
    pub async fn with_prefix(url: &str, prefix: &str) -> Result<Self, StoreError> {
        RedisStoreBuilder::new(url)
            .with_prefix(prefix)
            .connect()
            .await
    }

    /// Settings beyond the URL: prefix, timeouts.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(url)
    }

    pub(crate) fn new(
        conn: ConnectionManager,
        keys: Keys,
        command_timeout: Duration,
        publisher: Publisher,
        invalidations: broadcast::Sender<Invalidation>,
        subscriber: AbortOnDrop,
    ) -> Self {
        Self {
            conn,
            keys,
            command_timeout,
            publisher,
            invalidations,
            _subscriber: subscriber,
        }
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// The pub/sub channel revocations go out on (`{prefix}revocations`).
    #[must_use]
    pub fn channel(&self) -> &str {
        self.keys.channel()
    }

    /// Runs one Redis exchange under the command timeout (which also bounds the wait for a
    /// reconnection).
    async fn run<T>(
        &self,
        exchange: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.command_timeout, exchange)
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(redis_error)
    }

    /// Sends a command; an [`Retry::Idempotent`] one goes once more if the connection
    /// turned out to be lost (within the same deadline).
    async fn query<T: FromRedisValue>(
        &self,
        retry: Retry,
        cmd: redis::Cmd,
    ) -> Result<T, StoreError> {
        self.run(async {
            match cmd.query_async(&mut self.conn.clone()).await {
                Err(e) if retry.again(&e) => cmd.query_async(&mut self.conn.clone()).await,
                done => done,
            }
        })
        .await
    }

    /// Runs a script (`EVALSHA`, loading it first if Redis forgot it); retried as
    /// [`Self::query`].
    async fn eval<T: FromRedisValue>(
        &self,
        retry: Retry,
        invocation: ScriptInvocation<'static>,
    ) -> Result<T, StoreError> {
        self.run(async {
            match invocation.invoke_async(&mut self.conn.clone()).await {
                Err(e) if retry.again(&e) => invocation.invoke_async(&mut self.conn.clone()).await,
                done => done,
            }
        })
        .await
    }
}

/// Whether a call may be sent twice. After a lost connection nobody knows whether Redis ran
/// it; only calls whose second run changes nothing are repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Running it twice is running it once (reads, `touch`, `create`, `publish`).
    Idempotent,
    /// A second run would answer differently (`revoke`, `revoke_many`): the error is
    /// returned.
    Once,
}

impl Retry {
    fn again(self, err: &RedisError) -> bool {
        // A timeout means a slow server, not a lost one: a second try would only wait more.
        self == Self::Idempotent
            && !err.is_timeout()
            && (err.is_unrecoverable_error() || err.is_io_error())
    }
}

/// A driver error as a store error: timeouts are [`StoreError::Timeout`].
pub(crate) fn redis_error(err: RedisError) -> StoreError {
    if err.is_timeout() {
        StoreError::Timeout
    } else {
        StoreError::backend(err)
    }
}

fn decode(json: &str) -> Result<SessionRecord, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn user_epoch(&self, user_id: &UserId) -> Result<u64, StoreError> {
        let epoch: Option<u64> = self
            .query(
                Retry::Idempotent,
                redis::cmd("GET").arg(self.keys.epoch(user_id)).clone(),
            )
            .await?;
        Ok(epoch.unwrap_or(0))
    }

    async fn create(
        &self,
        record: &SessionRecord,
        expected_epoch: u64,
    ) -> Result<Created, StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let user = record.user_id();
        let last = record.last_active_at;
        let mut invocation = SCRIPTS.create.prepare_invoke();
        invocation
            .key(self.keys.record(record.id))
            .key(self.keys.index(user))
            .key(self.keys.epoch(user))
            .arg(expected_epoch)
            .arg(json)
            .arg(user.as_str())
            .arg(record.principal.agent_id().map_or("", AgentId::as_str))
            .arg(last.unix_timestamp())
            .arg(last.nanosecond())
            .arg(micros_ceil(record.expires_at))
            .arg(millis_ceil(record.expires_at))
            .arg(record.id.to_string());
        let created: i64 = self.eval(Retry::Idempotent, invocation).await?;
        Ok(if created == 1 {
            Created::Created
        } else {
            Created::EpochMoved
        })
    }

    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let json: Option<String> = self
            .query(
                Retry::Idempotent,
                redis::cmd("HGET")
                    .arg(self.keys.record(id))
                    .arg("rec")
                    .clone(),
            )
            .await?;
        json.as_deref().map(decode).transpose()
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        let mut invocation = SCRIPTS.touch.prepare_invoke();
        invocation
            .key(self.keys.record(id))
            .arg(at.unix_timestamp())
            .arg(at.nanosecond())
            .arg(rfc3339(at)?);
        let _moved: i64 = self.eval(Retry::Idempotent, invocation).await?;
        Ok(())
    }

    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut invocation = SCRIPTS.list_active.prepare_invoke();
        invocation
            .key(self.keys.index(user_id))
            .arg(self.keys.record_prefix())
            .arg(micros_floor(now));
        let listed: Vec<String> = self.eval(Retry::Idempotent, invocation).await?;
        listed.iter().map(|json| decode(json)).collect()
    }

    async fn revoke(
        &self,
        id: SessionId,
        reason: &RevocationReason,
        at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let mut invocation = SCRIPTS.revoke.prepare_invoke();
        invocation
            .key(self.keys.record(id))
            .arg(self.keys.index_prefix())
            .arg(id.to_string())
            .arg(rfc3339(at)?)
            .arg(reason.as_str());
        let revoked: Option<String> = self.eval(Retry::Once, invocation).await?;
        revoked.as_deref().map(decode).transpose()
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<SessionRecord>, StoreError> {
        let (scope, agent) = match req.scope {
            RevokeScope::All => ("all", ""),
            RevokeScope::UserSessions => ("user", ""),
            RevokeScope::Agent(agent) => ("agent", agent.as_str()),
            other => {
                return Err(StoreError::backend(std::io::Error::other(format!(
                    "revocation scope {other:?} is not supported by the redis store"
                ))));
            }
        };
        let mut invocation = SCRIPTS.revoke_many.prepare_invoke();
        invocation
            .key(self.keys.index(req.user_id))
            .key(self.keys.epoch(req.user_id))
            .arg(self.keys.record_prefix())
            .arg(micros_floor(req.at))
            .arg(if req.scope.moves_epoch() { "1" } else { "0" })
            .arg(scope)
            .arg(agent)
            .arg(req.except.map(|id| id.to_string()).unwrap_or_default())
            .arg(rfc3339(req.at)?)
            .arg(req.reason.as_str());
        let revoked: Vec<String> = self.eval(Retry::Once, invocation).await?;
        revoked.iter().map(|json| decode(json)).collect()
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let pattern = self.keys.index_pattern();
        let now = micros_floor(now);
        let mut cursor: u64 = 0;
        let mut purged: u64 = 0;
        loop {
            let (next, indexes): (u64, Vec<Vec<u8>>) = self
                .query(
                    Retry::Idempotent,
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(PURGE_BATCH)
                        .arg("TYPE")
                        .arg("zset")
                        .clone(),
                )
                .await?;
            if !indexes.is_empty() {
                let mut invocation = SCRIPTS.purge.prepare_invoke();
                invocation
                    .key(indexes)
                    .arg(self.keys.record_prefix())
                    .arg(now);
                let n: u64 = self.eval(Retry::Idempotent, invocation).await?;
                purged += n;
            }
            if next == 0 {
                return Ok(purged);
            }
            cursor = next;
        }
    }

    async fn publish(&self, revoked: &[SessionId]) -> Result<(), StoreError> {
        if revoked.is_empty() {
            return Ok(());
        }
        let message = self.publisher.next(revoked);
        let _receivers: i64 = self
            .query(
                Retry::Idempotent,
                redis::cmd("PUBLISH")
                    .arg(self.keys.channel())
                    .arg(message)
                    .clone(),
            )
            .await?;
        Ok(())
    }

    fn invalidations(&self) -> Option<broadcast::Receiver<Invalidation>> {
        Some(self.invalidations.subscribe())
    }
}
