//! [`RedisStoreBuilder`]: the store's settings, and connecting.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use redis::IntoConnectionInfo;
use session_core::{ConfigError, StoreError};
use tokio::sync::broadcast;
use tokio::time::timeout;

use crate::conn::{self, Conn, Target};
use crate::error::{Error, redis_error};
use crate::layout::{DEFAULT_PREFIX, DEFAULT_SHARDS, Layout, valid_prefix, valid_shards};
use crate::push::{self, Mode, SubscriberConfig};
use crate::scripts::SCRIPTS;
use crate::store::{BULK_FACTOR, RedisStore};

/// The default for [`RedisStoreBuilder::with_command_timeout`].
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The default for [`RedisStoreBuilder::with_connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default for [`RedisStoreBuilder::with_health_check_interval`].
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(3);

/// Push messages buffered per receiver; a receiver that falls further behind resyncs.
const PUSH_CAPACITY: usize = 4096;

/// Whether the nodes are one Redis or a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Topology {
    /// Ask the node (`INFO cluster`).
    Detect,
    /// A cluster, said so.
    Cluster,
}

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
    urls: Vec<String>,
    topology: Topology,
    ca_file: Option<PathBuf>,
    credentials: Option<(Option<String>, String)>,
    sharded_pubsub: bool,
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
            .field("nodes", &self.urls.len())
            .field("topology", &self.topology)
            .field("ca_file", &self.ca_file)
            .field("credentials", &self.credentials.is_some())
            .field("sharded_pubsub", &self.sharded_pubsub)
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
    /// Settings for the Redis at `url`, with the defaults below: `redis://` or, over TLS,
    /// `rediss://`, then `[user:password@]host:port[/db]`; or `redis+unix:///path`. When
    /// that Redis is a node of a cluster (`cluster_enabled:1`), the store uses the whole
    /// cluster, found from it.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            topology: Topology::Detect,
            ca_file: None,
            credentials: None,
            sharded_pubsub: true,
            prefix: DEFAULT_PREFIX.to_owned(),
            shards: DEFAULT_SHARDS,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            health_check_interval: DEFAULT_HEALTH_CHECK_INTERVAL,
        }
    }

    /// Settings for the Redis Cluster reached through any of `urls` (seed nodes, as
    /// [`RedisStoreBuilder::new`] takes them, all with the same scheme and credentials).
    pub fn cluster<U: Into<String>>(urls: impl IntoIterator<Item = U>) -> Self {
        Self {
            urls: urls.into_iter().map(Into::into).collect(),
            topology: Topology::Cluster,
            ..Self::new(String::new())
        }
    }

    /// Verifies the server's TLS certificate against the PEM certificates in `path` (a
    /// private CA), instead of the system's roots (default). Only for `rediss://` URLs; the
    /// file is read by [`connect`](Self::connect).
    #[cfg(feature = "tls")]
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Signs in as the ACL user `username` (or, with `None`, the default user) with
    /// `password`, whatever the URL says (default: the URL's, if any). Keeps the password out
    /// of the URL; it is never printed.
    pub fn with_credentials(
        mut self,
        username: Option<impl Into<String>>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Some((username.map(Into::into), password.into()));
        self
    }

    /// On a cluster, whether the push channel is a sharded one (`SSUBSCRIBE`, `SPUBLISH`:
    /// its messages stay on the shard that owns the channel) when the servers have it
    /// (default `true`), or a classic one (`SUBSCRIBE`, `PUBLISH`: every message crosses the
    /// whole cluster bus), for a cluster behind something that does not pass sharded pub/sub
    /// on. No effect on one Redis, which always uses the classic one.
    pub fn with_sharded_pubsub(mut self, sharded: bool) -> Self {
        self.sharded_pubsub = sharded;
        self
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
        let target = self.target().await?;
        #[cfg(feature = "tls")]
        if target.tls() {
            conn::install_crypto_provider();
        }
        let limit = self.connect_timeout + self.command_timeout;
        let (mut conn, cluster) = self.command_connection(&target, limit).await?;
        check_server(&mut conn, limit).await?;
        check_layout(&mut conn, &layout, limit).await?;
        for script in SCRIPTS.all() {
            timeout(limit, script.prepare_invoke().load_async(&mut conn))
                .await
                .map_err(|_| StoreError::Timeout)?
                .map_err(redis_error)?;
        }
        let mode = if cluster {
            cluster_mode(&mut conn, limit, self.sharded_pubsub).await?
        } else {
            Mode::Single
        };

        let (push, _) = broadcast::channel(PUSH_CAPACITY);
        let (subscriber, first) = push::spawn(
            SubscriberConfig {
                target,
                mode,
                channel: layout.channel(),
                connect_timeout: self.connect_timeout,
                command_timeout: self.command_timeout,
                health_check_interval: self.health_check_interval,
            },
            push.clone(),
        );
        match timeout(limit * 2, first).await {
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
            publish: publish_command(mode),
            push,
            _subscriber: subscriber,
        })
    }

    /// The nodes' connection settings, credentials and CA.
    async fn target(&self) -> Result<Target, StoreError> {
        let (username, password) = match &self.credentials {
            Some((user, password)) => (user.as_deref(), Some(password.as_str())),
            None => (None, None),
        };
        let nodes = self
            .urls
            .iter()
            .map(|url| {
                url.as_str()
                    .into_connection_info()
                    .map(|info| conn::prepare(info, username, password))
                    .map_err(StoreError::backend)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.is_empty() {
            return Err(StoreError::backend(Error::Config(
                "no Redis URL".to_owned(),
            )));
        }
        let ca = match &self.ca_file {
            Some(path) => Some(tokio::fs::read(path).await.map_err(|e| {
                StoreError::backend(Error::Config(format!("CA file {}: {e}", path.display())))
            })?),
            None => None,
        };
        Ok(Target {
            nodes,
            ca,
            connect_timeout: self.connect_timeout,
            response_timeout: self.command_timeout * BULK_FACTOR,
        })
    }

    /// The command connection, and whether it is to a cluster.
    async fn command_connection(
        &self,
        target: &Target,
        limit: Duration,
    ) -> Result<(Conn, bool), StoreError> {
        if self.topology == Topology::Cluster {
            return cluster_connection(target).await;
        }
        let mut single = Conn::Single(target.single().await?);
        let info: String = timeout(
            limit,
            redis::cmd("INFO").arg("cluster").query_async(&mut single),
        )
        .await
        .map_err(|_| StoreError::Timeout)?
        .map_err(redis_error)?;
        if info.lines().any(|l| l.trim() == "cluster_enabled:1") {
            cluster_connection(target).await
        } else {
            Ok((single, false))
        }
    }
}

#[cfg(feature = "cluster")]
async fn cluster_connection(target: &Target) -> Result<(Conn, bool), StoreError> {
    Ok((Conn::Cluster(target.cluster().await?), true))
}

#[cfg(not(feature = "cluster"))]
async fn cluster_connection(_: &Target) -> Result<(Conn, bool), StoreError> {
    Err(StoreError::backend(Error::Config(
        "this Redis is a cluster node: enable the `cluster` feature".to_owned(),
    )))
}

/// Sharded pub/sub when the servers have it (Redis 7.0), classic otherwise.
#[cfg(feature = "cluster")]
async fn cluster_mode(conn: &mut Conn, limit: Duration, wanted: bool) -> Result<Mode, StoreError> {
    if !wanted {
        return Ok(Mode::Cluster { sharded: false });
    }
    let known: Vec<redis::Value> = timeout(
        limit,
        redis::cmd("COMMAND")
            .arg("INFO")
            .arg("SSUBSCRIBE")
            .query_async(conn),
    )
    .await
    .map_err(|_| StoreError::Timeout)?
    .map_err(redis_error)?;
    Ok(Mode::Cluster {
        sharded: matches!(known.first(), Some(redis::Value::Array(_))),
    })
}

#[cfg(not(feature = "cluster"))]
async fn cluster_mode(_: &mut Conn, _: Duration, _: bool) -> Result<Mode, StoreError> {
    Ok(Mode::Single)
}

fn publish_command(mode: Mode) -> &'static str {
    match mode {
        #[cfg(feature = "cluster")]
        Mode::Cluster { sharded: true } => "SPUBLISH",
        _ => "PUBLISH",
    }
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
