//! The push channel's subscriber: a background task holding a RESP3 subscription to
//! `{prefix}revocations` on a connection of its own, turning every message into
//! [`PushMessage::Payload`] and every (re)subscription into [`PushMessage::Reconnected`].
//!
//! It reads nothing into the payloads: the manager checks their MAC and decides. The
//! subscriber's job is to stay subscribed: the connection reconnects and resubscribes by
//! itself (RESP3 push, automatic resubscription; in a cluster, to whichever node owns the
//! channel after a failover), a health check pings every few seconds and subscribes again
//! when a reconnection left it unsubscribed, and after failed checks a single-node
//! connection is built anew, so no outage, however long, leaves the subscriber dead.
//!
//! In a cluster the channel is a sharded one (`SSUBSCRIBE`, `SPUBLISH`: the messages stay
//! on the shard that owns the channel's slot instead of crossing the whole cluster bus)
//! when the servers have it, a classic one otherwise.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Msg, PushInfo, PushKind, Value};
use session_core::StoreError;
use session_core::store::PushMessage;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, sleep, timeout};

use crate::conn::Target;

/// Reconnection attempts of one subscriber connection before it reports failure; the
/// health check then starts another round, so the subscriber never gives up for good.
const RECONNECT_TRIES: usize = 10;
/// The longest pause between two reconnection attempts.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// Failed health checks in a row after which the connection is dropped and built anew.
const MAX_FAILED_CHECKS: u32 = 3;
/// The pause before building a new subscriber connection.
const REBUILD_DELAY: Duration = Duration::from_millis(500);

/// How the subscriber connects and subscribes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One Redis: `SUBSCRIBE`.
    Single,
    /// A cluster, with `SSUBSCRIBE` when `sharded`, else `SUBSCRIBE`.
    #[cfg(feature = "cluster")]
    Cluster {
        /// Sharded pub/sub.
        sharded: bool,
    },
}

/// What the subscriber needs.
pub(crate) struct SubscriberConfig {
    /// Where to connect (RESP3).
    pub(crate) target: Target,
    pub(crate) mode: Mode,
    pub(crate) channel: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) health_check_interval: Duration,
}

/// Aborts the subscriber task when the store is dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The outcome of the first subscription attempt.
pub(crate) type FirstSubscription = oneshot::Receiver<Result<(), String>>;

/// Starts the subscriber on the current Tokio runtime.
pub(crate) fn spawn(
    config: SubscriberConfig,
    tx: broadcast::Sender<PushMessage>,
) -> (AbortOnDrop, FirstSubscription) {
    let (first_tx, first_rx) = oneshot::channel();
    let mut subscriber = Subscriber {
        config,
        tx,
        first: Some(first_tx),
    };
    let handle = tokio::spawn(async move { subscriber.run().await });
    (AbortOnDrop(handle), first_rx)
}

/// The subscriber's connection.
enum SubConn {
    Single(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

struct Subscriber {
    config: SubscriberConfig,
    tx: broadcast::Sender<PushMessage>,
    first: Option<oneshot::Sender<Result<(), String>>>,
}

impl Subscriber {
    async fn run(&mut self) {
        loop {
            let (push_tx, push_rx) = mpsc::unbounded_channel();
            match self.open(push_tx).await {
                Ok(conn) => self.follow(conn, push_rx).await,
                Err(e) => self.failed(&e.to_string()),
            }
            sleep(REBUILD_DELAY).await;
        }
    }

    async fn open(&self, pushes: mpsc::UnboundedSender<PushInfo>) -> Result<SubConn, StoreError> {
        match self.config.mode {
            Mode::Single => {
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.config.connect_timeout))
                    .set_response_timeout(Some(self.config.command_timeout))
                    .set_number_of_retries(RECONNECT_TRIES)
                    .set_max_delay(RECONNECT_MAX_DELAY)
                    .set_push_sender(pushes)
                    .set_automatic_resubscription();
                ConnectionManager::new_lazy_with_config(
                    self.config.target.client()?,
                    manager_config,
                )
                .map(SubConn::Single)
                .map_err(StoreError::backend)
            }
            #[cfg(feature = "cluster")]
            Mode::Cluster { .. } => {
                let client = self.config.target.cluster_client(Some(pushes))?;
                let limit = self.config.connect_timeout * 3;
                match timeout(limit, client.get_async_connection()).await {
                    Ok(Ok(conn)) => Ok(SubConn::Cluster(conn)),
                    Ok(Err(e)) => Err(StoreError::backend(e)),
                    Err(_) => Err(StoreError::Timeout),
                }
            }
        }
    }

    /// Runs one connection: subscribes, forwards messages, checks its health; returns when
    /// the connection should be rebuilt.
    async fn follow(&mut self, mut conn: SubConn, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
        let mut subscribed = false;
        let mut failed_checks = 0;
        let mut check = tokio::time::interval(self.config.health_check_interval);
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                push = pushes.recv() => {
                    let Some(push) = push else { return };
                    self.on_push(push, &mut subscribed);
                }
                _ = check.tick() => {
                    // Subscribing again covers a reconnection whose resubscription failed.
                    let outcome = if subscribed {
                        self.ping(&mut conn).await
                    } else {
                        self.subscribe(&mut conn).await
                    };
                    match outcome {
                        Ok(()) => failed_checks = 0,
                        Err(e) => {
                            self.failed(&e);
                            failed_checks += 1;
                            // A cluster connection follows the topology and reconnects by
                            // itself, from the nodes it learnt: only a single-node one is
                            // built anew (from its URL).
                            if failed_checks >= MAX_FAILED_CHECKS
                                && matches!(conn, SubConn::Single(_))
                            {
                                tracing::warn!(
                                    channel = %self.config.channel,
                                    "revocation subscriber: rebuilding its connection"
                                );
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    async fn subscribe(&self, conn: &mut SubConn) -> Result<(), String> {
        let limit = self.config.connect_timeout + self.config.command_timeout;
        let channel = &self.config.channel;
        let subscribed = async {
            match conn {
                SubConn::Single(conn) => conn.subscribe(channel).await,
                #[cfg(feature = "cluster")]
                SubConn::Cluster(conn) => match self.config.mode {
                    Mode::Cluster { sharded: true } => conn.ssubscribe(channel).await,
                    _ => conn.subscribe(channel).await,
                },
            }
        };
        match timeout(limit, subscribed).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("subscribe failed: {e}")),
            Err(_) => Err("subscribe timed out".to_owned()),
        }
    }

    async fn ping(&self, conn: &mut SubConn) -> Result<(), String> {
        let limit = self.config.connect_timeout + self.config.command_timeout;
        let ping = redis::cmd("PING");
        let pinged = async {
            match conn {
                SubConn::Single(conn) => ping.query_async::<Value>(conn).await,
                #[cfg(feature = "cluster")]
                SubConn::Cluster(conn) => ping.query_async::<Value>(conn).await,
            }
        };
        match timeout(limit, pinged).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("health check failed: {e}")),
            Err(_) => Err("health check timed out".to_owned()),
        }
    }

    fn failed(&mut self, error: &str) {
        tracing::warn!(channel = %self.config.channel, error, "revocation subscriber");
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(error.to_owned()));
        }
    }

    fn on_push(&mut self, push: PushInfo, subscribed: &mut bool) {
        match push.kind {
            PushKind::Disconnection => {
                tracing::debug!(channel = %self.config.channel, "revocation subscriber disconnected");
                *subscribed = false;
            }
            PushKind::Subscribe | PushKind::SSubscribe if self.names_channel(&push.data) => {
                // (Re)subscribed: whatever was published while we were not is lost.
                *subscribed = true;
                self.send(PushMessage::Reconnected);
                if let Some(first) = self.first.take() {
                    let _ = first.send(Ok(()));
                }
            }
            PushKind::Unsubscribe | PushKind::SUnsubscribe if self.names_channel(&push.data) => {
                *subscribed = false;
            }
            PushKind::Message | PushKind::SMessage => {
                if let Some(msg) = Msg::from_push_info(push)
                    && msg.get_channel_name() == self.config.channel
                {
                    // Whatever it holds: the manager checks it. Bytes that are not UTF-8
                    // cannot be a notice; they still go on, to be counted as ignored.
                    let text = String::from_utf8_lossy(msg.get_payload_bytes());
                    self.send(PushMessage::Payload(Arc::from(text)));
                }
            }
            _ => {}
        }
    }

    fn names_channel(&self, data: &[Value]) -> bool {
        matches!(data.first(), Some(Value::BulkString(name)) if name.as_slice() == self.config.channel.as_bytes())
    }

    fn send(&self, msg: PushMessage) {
        // No receiver yet (or any more) is fine.
        let _ = self.tx.send(msg);
    }
}
