//! [`RedisStore`]: the type, its connection and the way it sends commands and scripts.
//! The [`SessionStore`](session_core::SessionStore) methods are in `session_store.rs`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::{FromRedisValue, RedisError, ScriptInvocation};
use session_core::StoreError;
use session_core::model::UserId;
use session_core::store::PushMessage;
use tokio::sync::broadcast;

use crate::conn::Conn;
use crate::error::redis_error;
use crate::layout::{Layout, Shard, ShardKeys};
use crate::push::AbortOnDrop;

/// How many command timeouts a bulk script (`revoke_matching`, a purge batch) may take.
pub(crate) const BULK_FACTOR: u32 = 30;

/// Sessions in Redis, shared by every instance that connects with the same prefix and
/// number of shards, with revocations pushed between instances over pub/sub. See the
/// [crate docs](crate) for the layout.
///
/// Connect with [`RedisStore::connect`] or [`RedisStore::builder`].
///
/// ```
/// use session_core::{SessionStore, UserId};
/// use session_redis::RedisStore;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let Ok(url) = std::env::var("REDIS_URL") else { return Ok(()) }; // skipped without Redis
/// let store = RedisStore::with_prefix(&url, "doc-store:").await?;
/// let alice = UserId::from("alice");
/// // A user's sessions live in one shard, and their ids say which.
/// let id = store.new_session_id(&alice);
/// assert_eq!(store.shard_of_session(id), store.shard_of(&alice));
/// # Ok(())
/// # }
/// ```
pub struct RedisStore {
    pub(crate) conn: Conn,
    pub(crate) layout: Layout,
    pub(crate) command_timeout: Duration,
    /// `PUBLISH`, or `SPUBLISH` on a cluster with sharded pub/sub.
    pub(crate) publish: &'static str,
    pub(crate) push: broadcast::Sender<PushMessage>,
    pub(crate) _subscriber: AbortOnDrop,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the connection: its URL may carry a password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.layout.prefix())
            .field("shards", &self.layout.shards())
            .field("command_timeout", &self.command_timeout)
            .field("cluster", &!matches!(self.conn, Conn::Single(_)))
            .field("publish", &self.publish)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        self.layout.prefix()
    }

    /// The number of shards.
    #[must_use]
    pub fn shards(&self) -> u16 {
        self.layout.shards()
    }

    /// The shard holding `user`'s sessions: CRC16 (XMODEM, as Redis Cluster) of the user
    /// id's UTF-8 bytes, modulo [`RedisStore::shards`].
    #[must_use]
    pub fn shard_of(&self, user: &UserId) -> u16 {
        self.layout.shard_of_user(user)
    }

    /// The shard a session id names (the low bits of its last byte).
    #[must_use]
    pub fn shard_of_session(&self, id: session_core::SessionId) -> u16 {
        self.layout.shard_of_id(id)
    }

    /// The hash tag of a shard's keys, `{PREFIXN}`: every key of the shard starts with it.
    #[must_use]
    pub fn shard_tag(&self, shard: u16) -> String {
        self.layout.tag(shard)
    }

    /// The pub/sub channel the push payloads go out on (`{PREFIX}revocations`).
    #[must_use]
    pub fn channel(&self) -> String {
        self.layout.channel()
    }

    pub(crate) fn keys_of(&self, user: &UserId) -> ShardKeys {
        self.layout.shard(self.layout.shard_of_user(user))
    }

    pub(crate) fn keys(&self, shard: Shard) -> ShardKeys {
        self.layout.shard(shard)
    }

    /// Runs one Redis exchange under `limit` (which also bounds the wait for a
    /// reconnection).
    async fn run<T>(
        &self,
        limit: Duration,
        exchange: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(redis_error)
    }

    /// Sends a command; a [`Retry::Idempotent`] one goes once more if the connection
    /// turned out to be lost (within the same deadline).
    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        retry: Retry,
        cmd: redis::Cmd,
    ) -> Result<T, StoreError> {
        self.run(self.command_timeout, async {
            match cmd.query_async(&mut self.conn.clone()).await {
                Err(e) if retry.again(&e) => cmd.query_async(&mut self.conn.clone()).await,
                done => done,
            }
        })
        .await
    }

    /// Sends a pipeline; retried as [`Self::query`].
    pub(crate) async fn run_pipeline<T: FromRedisValue>(
        &self,
        retry: Retry,
        pipe: redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.run(self.command_timeout, async {
            match pipe.query_async(&mut self.conn.clone()).await {
                Err(e) if retry.again(&e) => pipe.query_async(&mut self.conn.clone()).await,
                done => done,
            }
        })
        .await
    }

    /// Runs a script (`EVALSHA`, loading it first if Redis forgot it); retried as
    /// [`Self::query`].
    pub(crate) async fn eval<T: FromRedisValue>(
        &self,
        retry: Retry,
        invocation: ScriptInvocation<'static>,
    ) -> Result<T, StoreError> {
        self.eval_within(self.command_timeout, retry, invocation)
            .await
    }

    /// As [`Self::eval`], for a script that may take up to [`BULK_FACTOR`] command
    /// timeouts.
    pub(crate) async fn eval_bulk<T: FromRedisValue>(
        &self,
        retry: Retry,
        invocation: ScriptInvocation<'static>,
    ) -> Result<T, StoreError> {
        self.eval_within(self.command_timeout * BULK_FACTOR, retry, invocation)
            .await
    }

    async fn eval_within<T: FromRedisValue>(
        &self,
        limit: Duration,
        retry: Retry,
        invocation: ScriptInvocation<'static>,
    ) -> Result<T, StoreError> {
        self.run(limit, async {
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
pub(crate) enum Retry {
    /// Running it twice is running it once (reads, `touch`, `create`, `publish`, purges).
    Idempotent,
    /// A second run would answer differently (revocations, `report_expired`,
    /// `append_event`, `first_use`): the error is returned.
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
