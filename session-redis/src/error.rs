//! This crate's errors (carried in [`StoreError::Backend`]), and driver errors as store
//! errors.

use redis::RedisError;
use session_core::StoreError;
use session_core::model::SessionId;

/// What the Redis store refuses, beyond the driver's own errors. It reaches the caller
/// inside [`StoreError::Backend`]; downcast to tell the cases apart.
///
/// ```
/// use session_core::StoreError;
/// use session_redis::Error;
///
/// let err = StoreError::backend(Error::LayoutMismatch {
///     prefix: "session:".into(),
///     stored: "layout=2 shards=16".into(),
///     configured: "layout=2 shards=32".into(),
/// });
/// let StoreError::Backend(inner) = &err else { unreachable!() };
/// assert!(matches!(inner.downcast_ref::<Error>(), Some(Error::LayoutMismatch { .. })));
/// assert!(err.to_string().contains("must never change"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Redis already holds sessions under this prefix in another layout (another
    /// number of shards): this node would look for them in the wrong places.
    #[error(
        "the Redis holds sessions under prefix {prefix:?} as {stored:?}, this node is \
         configured for {configured:?}: the number of shards of a deployment must never change"
    )]
    LayoutMismatch {
        /// The key prefix.
        prefix: String,
        /// The layout the Redis holds.
        stored: String,
        /// The layout this node was configured with.
        configured: String,
    },
    /// A session id that does not name its user's shard (it was not made by
    /// [`SessionStore::new_session_id`](session_core::SessionStore::new_session_id)).
    #[error(
        "session id {0} does not name its user's shard: make ids with SessionStore::new_session_id"
    )]
    MisplacedSessionId(SessionId),
    /// The server is older than Redis 7.0.
    #[error("the session store needs Redis 7.0 or later")]
    ServerTooOld,
    /// A setting the store cannot use (a CA file it cannot read, no URL, a cluster without
    /// the `cluster` feature).
    #[error("redis store settings: {0}")]
    Config(String),
    /// The subscription to the revocation channel failed.
    #[error("revocation channel: {0}")]
    Subscription(String),
}

/// A driver error as a store error: timeouts are [`StoreError::Timeout`].
pub(crate) fn redis_error(err: RedisError) -> StoreError {
    if err.is_timeout() {
        StoreError::Timeout
    } else {
        StoreError::backend(err)
    }
}
