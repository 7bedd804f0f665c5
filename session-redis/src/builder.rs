//! [`RedisStoreBuilder`]: the store's settings, and connecting.

use std::fmt;
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use redis::io::tcp::{TcpSettings, socket2::TcpKeepalive};
use redis::{Client, IntoConnectionInfo, ProtocolVersion};
use session_core::{ConfigError, StoreError};
use tokio::sync::broadcast;
use tokio::time::timeout;

use crate::layout::{DEFAULT_PREFIX, Keys};
use crate::push::{self, Publisher, SubscriberConfig};
use crate::scripts::SCRIPTS;
use crate::store::{RedisStore, redis_error};

/// The default for [`RedisStoreBuilder::with_command_timeout`].
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The default for [`RedisStoreBuilder::with_connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default for [`RedisStoreBuilder::with_health_check_interval`].
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(3);

/// Reconnection attempts of the command connection per outage; a command after that
/// starts another round, so the connection never gives up for good.
const RECONNECT_TRIES: usize = 6;
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// `Invalidation`s buffered per receiver; a receiver that falls further behind resyncs.
const INVALIDATION_CAPACITY: usize = 4096;

/// The settings of a [`RedisStore`]: `new(url)`, then `with_*`, then
/// [`connect`](Self::connect).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use session_redis::RedisStoreBuilder;
///
/// let store = RedisStoreBuilder::new("redis://127.0.0.1:6379")
///     .with_prefix("shop:session:")
///     .with_command_timeout(Duration::from_millis(500))?
///     .connect()
///     .await?;
/// # drop(store);
/// # Ok(())
/// # }
/// ```
#[must_use]
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    command_timeout: Duration,
    connect_timeout: Duration,
    health_check_interval: Duration,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: left out.
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("health_check_interval", &self.health_check_interval)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// Settings for the Redis at `url` (`redis://[user:password@]host:port[/db]`, or
    /// `redis+unix:///path`), with the defaults below.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            health_check_interval: DEFAULT_HEALTH_CHECK_INTERVAL,
        }
    }

    /// Puts every key, and the channel, under `prefix` (default `session:`). Deployments
    /// that share a Redis but not their sessions need different prefixes; instances of
    /// one deployment need the same one.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one store call may take, waiting for a reconnection included, before it
    /// fails with [`StoreError::Timeout`] (default 2 s, as the manager's load timeout). It must cover the largest
    /// `revoke_many` (about 30 ms per 1 000 sessions).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for zero.
    pub fn with_command_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::Invalid("redis command timeout"));
        }
        self.command_timeout = timeout;
        Ok(self)
    }

    /// How long one attempt to open a connection may take (default 2 s).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for zero.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::Invalid("redis connect timeout"));
        }
        self.connect_timeout = timeout;
        Ok(self)
    }

    /// How often the revocation subscriber checks its connection with a `PING` (and
    /// subscribes again if a reconnection left it unsubscribed) (default 3 s).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for zero.
    pub fn with_health_check_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        if interval.is_zero() {
            return Err(ConfigError::Invalid("redis health check interval"));
        }
        self.health_check_interval = interval;
        Ok(self)
    }

    /// Connects, loads the scripts, and starts the revocation subscriber (a Tokio task,
    /// so this needs a Tokio runtime); returns once the subscription is in place.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL is not a Redis URL, Redis does not answer, is
    /// older than 7.0, or refuses the subscription; [`StoreError::Timeout`] when it
    /// answers too slowly.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let info = self
            .url
            .as_str()
            .into_connection_info()
            .map_err(StoreError::backend)?;
        // RESP3 on both connections: the subscriber needs it for pushes, and over RESP3 the
        // command connection notices a closed socket and reconnects before the next call.
        let info = info
            .clone()
            .set_tcp_settings(tcp_settings(info.tcp_settings()))
            .set_redis_settings(
                info.redis_settings()
                    .clone()
                    .set_protocol(ProtocolVersion::RESP3),
            );

        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(RECONNECT_TRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let client = Client::open(info.clone()).map_err(StoreError::backend)?;
        let limit = self.connect_timeout + self.command_timeout;
        // The first connection retries too (a Redis still starting), but not for long.
        let mut conn = timeout(limit * 2, client.get_connection_manager_with_config(config))
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(redis_error)?;

        let known: Vec<redis::Value> = timeout(
            limit,
            redis::cmd("COMMAND")
                .arg("INFO")
                .arg("PEXPIRETIME")
                .query_async(&mut conn),
        )
        .await
        .map_err(|_| StoreError::Timeout)?
        .map_err(redis_error)?;
        if !matches!(known.first(), Some(redis::Value::Array(_))) {
            return Err(StoreError::backend(std::io::Error::other(
                "the session store needs Redis 7.0 or later (PEXPIRETIME)",
            )));
        }
        for script in SCRIPTS.all() {
            timeout(limit, script.prepare_invoke().load_async(&mut conn))
                .await
                .map_err(|_| StoreError::Timeout)?
                .map_err(redis_error)?;
        }

        let keys = Keys::new(&self.prefix);
        let (invalidations, _) = broadcast::channel(INVALIDATION_CAPACITY);
        let (subscriber, first) = push::spawn(
            SubscriberConfig {
                client: Client::open(info).map_err(StoreError::backend)?,
                channel: keys.channel().to_owned(),
                connect_timeout: self.connect_timeout,
                command_timeout: self.command_timeout,
                health_check_interval: self.health_check_interval,
            },
            invalidations.clone(),
        );
        match timeout(limit + self.connect_timeout, first).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                return Err(StoreError::backend(std::io::Error::other(format!(
                    "revocation channel: {e}"
                ))));
            }
            Ok(Err(_)) => {
                return Err(StoreError::backend(std::io::Error::other(
                    "revocation channel: the subscriber stopped",
                )));
            }
            Err(_) => return Err(StoreError::Timeout),
        }

        Ok(RedisStore::new(
            conn,
            keys,
            self.command_timeout,
            Publisher::new(),
            invalidations,
            subscriber,
        ))
    }
}

/// `TCP_NODELAY` (no Nagle delay on small commands), and keepalive probes (plus, on Linux,
/// `TCP_USER_TIMEOUT`) so a peer that vanished without closing is noticed and the
/// connection rebuilt.
fn tcp_settings(base: &TcpSettings) -> TcpSettings {
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(15))
        .with_interval(Duration::from_secs(5));
    let settings = base.clone().set_nodelay(true).set_keepalive(keepalive);
    #[cfg(target_os = "linux")]
    let settings = settings.set_user_timeout(Duration::from_secs(20));
    settings
}
