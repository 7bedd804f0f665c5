//! The connections: one Redis (a multiplexed connection that reconnects by itself) or a
//! Redis Cluster (the cluster client, which follows the slots), plain or TLS.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::{TcpSettings, socket2::TcpKeepalive};
use redis::{Client, Cmd, ConnectionInfo, Pipeline, ProtocolVersion, RedisFuture, Value};
use session_core::StoreError;

use crate::error::{Error, redis_error};

/// Reconnection attempts of the command connection per outage; a command after that
/// starts another round, so the connection never gives up for good.
const RECONNECT_TRIES: usize = 6;
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// What the store sends its commands on.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One Redis (or a primary with replicas).
    Single(ConnectionManager),
    /// A Redis Cluster.
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Where and how to connect, as the builder settled it.
#[derive(Clone)]
pub(crate) struct Target {
    /// The node (or, for a cluster, the seed nodes), RESP3, with the TCP settings below and
    /// the credentials.
    pub(crate) nodes: Vec<ConnectionInfo>,
    /// PEM certificates to verify the server with, instead of the system's roots.
    pub(crate) ca: Option<Vec<u8>>,
    pub(crate) connect_timeout: Duration,
    /// How long one reply may take at most (the bulk scripts' limit).
    pub(crate) response_timeout: Duration,
}

impl Target {
    /// Whether the nodes are reached over TLS.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(&self) -> bool {
        self.nodes
            .first()
            .is_some_and(|n| matches!(n.addr(), redis::ConnectionAddr::TcpTls { .. }))
    }

    /// A client for the first node.
    pub(crate) fn client(&self) -> Result<Client, StoreError> {
        let node = self
            .nodes
            .first()
            .cloned()
            .ok_or_else(|| StoreError::backend(Error::Config("no Redis URL".to_owned())))?;
        match &self.ca {
            #[cfg(feature = "tls")]
            Some(ca) => Client::build_with_tls(
                node,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            )
            .map_err(StoreError::backend),
            #[cfg(not(feature = "tls"))]
            Some(_) => Err(StoreError::backend(Error::Config(
                "a CA file needs the `tls` feature".to_owned(),
            ))),
            None => Client::open(node).map_err(StoreError::backend),
        }
    }

    /// The command connection to one Redis.
    pub(crate) async fn single(&self) -> Result<ConnectionManager, StoreError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(RECONNECT_TRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let client = self.client()?;
        // One attempt first: a refusal that no retry can fix (a wrong password, a
        // certificate the CA does not vouch for) fails at once, not after the retries.
        let probe = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.connect_timeout));
        if let Ok(Err(e)) = tokio::time::timeout(
            self.connect_timeout,
            client.get_multiplexed_async_connection_with_config(&probe),
        )
        .await
            && refused_for_good(&e)
        {
            return Err(redis_error(e));
        }
        // The first connection retries too (a Redis still starting), but not for long.
        tokio::time::timeout(
            self.connect_timeout * 3,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| StoreError::Timeout)?
        .map_err(redis_error)
    }

    /// A cluster client over the seed nodes, sending pushes (when given a sender) there.
    #[cfg(feature = "cluster")]
    pub(crate) fn cluster_client(
        &self,
        pushes: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
    ) -> Result<redis::cluster::ClusterClient, StoreError> {
        let mut builder = redis::cluster::ClusterClientBuilder::new(self.nodes.clone())
            .use_protocol(ProtocolVersion::RESP3)
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.response_timeout)
            .tcp_settings(tcp_settings(&TcpSettings::default()));
        #[cfg(feature = "tls")]
        if let Some(ca) = &self.ca {
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.clone()),
            });
        }
        if let Some(pushes) = pushes {
            builder = builder.push_sender(pushes);
        }
        builder.build().map_err(StoreError::backend)
    }

    /// The command connection to a cluster.
    #[cfg(feature = "cluster")]
    pub(crate) async fn cluster(
        &self,
    ) -> Result<redis::cluster_async::ClusterConnection, StoreError> {
        tokio::time::timeout(
            self.connect_timeout * 3,
            self.cluster_client(None)?.get_async_connection(),
        )
        .await
        .map_err(|_| StoreError::Timeout)?
        .map_err(redis_error)
    }
}

/// Whether connecting failed in a way that trying again cannot mend: credentials the server
/// refuses, or a TLS handshake that failed its checks (rustls reports those as invalid data).
fn refused_for_good(err: &redis::RedisError) -> bool {
    err.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(err.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
        || std::error::Error::source(err)
            .and_then(|e| e.downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>())
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
}

/// The settings every connection gets: RESP3 (the subscriber needs it for pushes, and over
/// RESP3 the command connection notices a closed socket and reconnects before the next
/// call), the TCP settings below, and the credentials when given apart from the URL.
pub(crate) fn prepare(
    info: ConnectionInfo,
    username: Option<&str>,
    password: Option<&str>,
) -> ConnectionInfo {
    let mut redis = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    if let Some(username) = username {
        redis = redis.set_username(username);
    }
    if let Some(password) = password {
        redis = redis.set_password(password);
    }
    info.clone()
        .set_tcp_settings(tcp_settings(info.tcp_settings()))
        .set_redis_settings(redis)
}

/// Makes rustls use its ring provider, unless the process chose one already.
///
/// rustls 0.23.48 deprecates ring's provider for its lack of post-quantum key exchange;
/// the alternative (aws-lc-rs) needs CMake and a C toolchain to build. An application that
/// wants post-quantum key exchange installs aws-lc-rs itself before connecting, and this
/// leaves it alone.
#[cfg(feature = "tls")]
#[allow(deprecated)]
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may have won the race: either provider is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
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
