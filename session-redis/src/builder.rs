//! [`RedisStoreBuilder`]: the store's settings, and connecting.

use std::fmt;
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use redis::io::tcp::{TcpSettings, socket2::TcpKeepalive};
use redis::{Client, ConnectionInfo, IntoConnectionInfo, ProtocolVersion};
use session_core::{ConfigError, StoreError};
use tokio::sync::broadcast;
use tokio::time::timeout;

use crate::conn::Conn;
use crate::error::{Error, redis_error};
use crate::layout::{DEFAULT_PREFIX, DEFAULT_SHARDS, Layout, valid_prefix, valid_shards};
use crate::push::{self, SubscriberConfig};
use crate::scripts::SCRIPTS;
use crate::store::{BULK_FACTOR, RedisStore};

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
/// Push messages buffered per receiver; a receiver that falls further behind resyncs.
const PUSH_CAPACITY: usize = 4096;

/// The settings of a [`RedisStore`]: `new(url)`, then `with_*`, then
/// [`connect`](Self::connect).
///
/// ```
/// use std::time::Duration;
/// use session_redis::RedisStoreBuilder;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let builder = RedisStoreBuilder::new("redis://127.0.0.1:6379")
///     .with_prefix("shop:session:")
///     .with_shards(32)?
///     .with_command_timeout(Duration::from_millis(500))?;
/// assert!(RedisStoreBuilder::new("redis://x").with_shards(12).is_err(), "a power of two");
/// let Ok(url) = std::env::var("REDIS_URL") else { return Ok(()) };
/// let store = RedisStoreBuilder::new(url).with_prefix(format!("doc-{}:", std::process::id())).connect().await?;
/// assert_eq!(store.shards(), 16);
/// # drop(builder);
/// # Ok(())
/// # }
/// ```
#[must_use]
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    shards: u16,
    command_timeout: Duration,
    connect_timeout: Duration,
    health_check_interval: Duration,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: left out.
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("shards", &self.shards)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("health_check_interval", &self.health_check_interval)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` with the default settings (prefix `session:`, 16
    /// shards); see [`RedisStoreBuilder`] for the others.
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

    /// Settings beyond the URL: prefix, shards, timeouts.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(url)
    }
}

impl RedisStoreBuilder {
    /// Settings for the Redis at `url` (`redis://[user:password@]host:port[/db]`, or
    /// `redis+unix:///path`), with the defaults below.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            shards: DEFAULT_SHARDS,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            health_check_interval: DEFAULT_HEALTH_CHECK_INTERVAL,
        }
    }

    /// Puts every key, and the channel, under `prefix` (default `session:`). Deployments
    /// that share a Redis but not their sessions need different prefixes; instances of
    /// one deployment need the same one. It may not contain `{` or `}` (it starts the
    /// keys' hash tags): [`connect`](Self::connect) refuses such a prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many shards the deployment's sessions are spread over (default 16): a power of
    /// two from 1 to 256. Each shard's keys share one hash tag, so each lives on one node
    /// of a Redis Cluster; more shards spread the load over more nodes.
    ///
    /// **It must never change for a deployment**: a user's shard is fixed by the count,
    /// and so is where each session id points. The first node to connect records the count
    /// in `{PREFIX}meta`; a node configured otherwise refuses to start
    /// ([`Error::LayoutMismatch`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a count that is not a power of two from 1 to 256.
    pub fn with_shards(mut self, shards: u16) -> Result<Self, ConfigError> {
        if !valid_shards(shards) {
            return Err(ConfigError::Invalid(
                "redis shards: a power of two from 1 to 256",
            ));
        }
        self.shards = shards;
        Ok(self)
    }

    /// How long one store call may take, waiting for a reconnection included, before it
    /// fails with [`StoreError::Timeout`] (default 2 s, as the manager's load timeout).
    /// Bulk scripts (`revoke_matching`, each purge batch) may take 30 times as long.
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

    /// Connects, checks the server (Redis 7.0 or later) and the deployment's layout,
    /// loads the scripts, and starts the revocation subscriber (a Tokio task, so this
    /// needs a Tokio runtime); returns once the subscription is in place.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL is not a Redis URL, the prefix holds a brace,
    /// Redis does not answer, is older than 7.0 ([`Error::ServerTooOld`]), holds this
    /// prefix's sessions in another number of shards ([`Error::LayoutMismatch`]), or
    /// refuses the subscription; [`StoreError::Timeout`] when it answers too slowly.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        if !valid_prefix(&self.prefix) {
            return Err(StoreError::backend(ConfigError::Invalid(
                "redis prefix: no braces (it starts the keys' hash tags)",
            )));
        }
        let layout = Layout::new(&self.prefix, self.shards);
        let info = resp3(
            self.url
                .as_str()
                .into_connection_info()
                .map_err(StoreError::backend)?,
        );
        let limit = self.connect_timeout + self.command_timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout * BULK_FACTOR))
            .set_number_of_retries(RECONNECT_TRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let client = Client::open(info.clone()).map_err(StoreError::backend)?;
        // The first connection retries too (a Redis still starting), but not for long.
        let conn = timeout(limit * 2, client.get_connection_manager_with_config(config))
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(redis_error)?;
        let mut conn = Conn::Single(conn);
        check_server(&mut conn, limit).await?;
        check_layout(&mut conn, &layout, limit).await?;
        for script in SCRIPTS.all() {
            timeout(limit, script.prepare_invoke().load_async(&mut conn))
                .await
                .map_err(|_| StoreError::Timeout)?
                .map_err(redis_error)?;
        }

        let (push, _) = broadcast::channel(PUSH_CAPACITY);
        let (subscriber, first) = push::spawn(
            SubscriberConfig {
                client: Client::open(info).map_err(StoreError::backend)?,
                channel: layout.channel(),
                connect_timeout: self.connect_timeout,
                command_timeout: self.command_timeout,
                health_check_interval: self.health_check_interval,
            },
            push.clone(),
        );
        match timeout(limit + self.connect_timeout, first).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(StoreError::backend(Error::Subscription(e))),
            Ok(Err(_)) => {
                return Err(StoreError::backend(Error::Subscription(
                    "the subscriber stopped".to_owned(),
                )));
            }
            Err(_) => return Err(StoreError::Timeout),
        }

        Ok(RedisStore {
            conn,
            layout,
            command_timeout: self.command_timeout,
            push,
            _subscriber: subscriber,
        })
    }
}

/// The connection settings with RESP3 (the subscriber needs it for pushes, and over RESP3
/// the command connection notices a closed socket and reconnects before the next call),
/// and the TCP settings below.
fn resp3(info: ConnectionInfo) -> ConnectionInfo {
    info.clone()
        .set_tcp_settings(tcp_settings(info.tcp_settings()))
        .set_redis_settings(
            info.redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3),
        )
}

/// Redis 7.0 or later: script shebangs and flags, `SET … NX GET`, exclusive `XRANGE`
/// bounds. `PEXPIRETIME` came with 7.0: its presence is the test.
async fn check_server(conn: &mut Conn, limit: Duration) -> Result<(), StoreError> {
    let known: Vec<redis::Value> = timeout(
        limit,
        redis::cmd("COMMAND")
            .arg("INFO")
            .arg("PEXPIRETIME")
            .query_async(conn),
    )
    .await
    .map_err(|_| StoreError::Timeout)?
    .map_err(redis_error)?;
    if matches!(known.first(), Some(redis::Value::Array(_))) {
        Ok(())
    } else {
        Err(StoreError::backend(Error::ServerTooOld))
    }
}

/// Records the layout in `{PREFIX}meta` if nothing is there, and refuses another.
async fn check_layout(conn: &mut Conn, layout: &Layout, limit: Duration) -> Result<(), StoreError> {
    let configured = layout.meta_value();
    let stored: Option<String> = timeout(
        limit,
        redis::cmd("SET")
            .arg(layout.meta())
            .arg(&configured)
            .arg("NX")
            .arg("GET")
            .query_async(conn),
    )
    .await
    .map_err(|_| StoreError::Timeout)?
    .map_err(redis_error)?;
    match stored {
        Some(stored) if stored != configured => Err(StoreError::backend(Error::LayoutMismatch {
            prefix: layout.prefix().to_owned(),
            stored,
            configured,
        })),
        _ => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_the_url_out() {
        let builder = RedisStoreBuilder::new("redis://admin:s3cret-pw@10.1.2.3:6380/2");
        let debug = format!("{builder:?}");
        assert!(
            !debug.contains("s3cret-pw") && !debug.contains("10.1.2.3"),
            "{debug}"
        );
        assert!(debug.contains("shards: 16"), "{debug}");
    }

    #[test]
    fn settings_are_checked() {
        for bad in [0, 3, 12, 257, 512] {
            assert!(
                RedisStoreBuilder::new("redis://x")
                    .with_shards(bad)
                    .is_err(),
                "{bad}"
            );
        }
        for good in [1, 2, 64, 256] {
            assert!(
                RedisStoreBuilder::new("redis://x")
                    .with_shards(good)
                    .is_ok(),
                "{good}"
            );
        }
        let zero = Duration::ZERO;
        assert!(
            RedisStoreBuilder::new("redis://x")
                .with_command_timeout(zero)
                .is_err()
        );
        assert!(
            RedisStoreBuilder::new("redis://x")
                .with_connect_timeout(zero)
                .is_err()
        );
        assert!(
            RedisStoreBuilder::new("redis://x")
                .with_health_check_interval(zero)
                .is_err()
        );
    }
}
