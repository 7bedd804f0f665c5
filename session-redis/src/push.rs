//! The push channel: what a revocation message looks like, and the background subscriber
//! that turns messages (and reconnections) into [`Invalidation`]s.
//!
//! A message on `{prefix}revocations` is JSON:
//!
//! ```json
//! {"v":1,"publisher":"0b6c…","seq":42,"ids":["67e55044-10b1-426f-9247-bb680e5fe0c8"]}
//! ```
//!
//! `publisher` is random per [`RedisStore`](crate::RedisStore) and `seq` counts its
//! publications from 1, so a receiver that sees a publisher's `seq` skip knows it missed
//! something (or that a publish failed) and asks for a resync.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Msg, PushInfo, PushKind, Value};
use serde::{Deserialize, Serialize};
use session_core::model::SessionId;
use session_core::store::Invalidation;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, sleep, timeout};
use uuid::Uuid;

/// The message format's version.
const VERSION: u8 = 1;

/// Publishers remembered at most; past this the table is cleared (and a resync sent).
const MAX_PUBLISHERS: usize = 4096;

/// Reconnection attempts of one subscriber connection before it reports failure; the
/// health check then starts another round, so the subscriber never gives up for good.
const RECONNECT_TRIES: usize = 10;
/// The longest pause between two reconnection attempts.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// Failed health checks in a row after which the connection is dropped and built anew.
const MAX_FAILED_CHECKS: u32 = 3;
/// The pause before building a new subscriber connection.
const REBUILD_DELAY: Duration = Duration::from_millis(500);

/// A revocation message on the channel.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Message {
    /// The format's version (1).
    pub(crate) v: u8,
    /// Who published it (random per store instance).
    pub(crate) publisher: Uuid,
    /// The publisher's count of publications, from 1.
    pub(crate) seq: u64,
    /// The sessions revoked.
    pub(crate) ids: Vec<SessionId>,
}

/// This store's identity as a publisher, and its sequence counter.
#[derive(Debug)]
pub(crate) struct Publisher {
    id: Uuid,
    seq: AtomicU64,
}

impl Publisher {
    pub(crate) fn new() -> Self {
        Self {
            id: Uuid::new_v4(),
            seq: AtomicU64::new(0),
        }
    }

    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// The next message's text. The number is taken even if the publish then fails, so the
    /// receivers see a gap and resync.
    pub(crate) fn next(&self, ids: &[SessionId]) -> String {
        let msg = Message {
            v: VERSION,
            publisher: self.id,
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            ids: ids.to_vec(),
        };
        serde_json::to_string(&msg).expect("a message of ids serializes")
    }
}

/// The last sequence number seen from each publisher.
#[derive(Debug, Default)]
pub(crate) struct Sequences {
    last: HashMap<Uuid, u64>,
}

impl Sequences {
    /// Forgets every publisher (after a resync, nothing before it matters).
    pub(crate) fn reset(&mut self) {
        self.last.clear();
    }

    /// Records `seq` from `publisher`; true when messages may have been missed before it.
    /// A publisher's first message since the last reset sets the baseline: anything it
    /// published earlier is covered by the resync that began the subscription.
    pub(crate) fn missed(&mut self, publisher: Uuid, seq: u64) -> bool {
        if !self.last.contains_key(&publisher) && self.last.len() >= MAX_PUBLISHERS {
            self.last.clear();
            self.last.insert(publisher, seq);
            return true;
        }
        match self.last.insert(publisher, seq) {
            None => false,
            // The same number again is a repeated publish (a retry), not a gap.
            Some(prev) => seq != prev && prev.checked_add(1) != Some(seq),
        }
    }
}

/// What the subscriber needs.
#[derive(Debug)]
pub(crate) struct SubscriberConfig {
    /// A client for the same server, speaking RESP3.
    pub(crate) client: redis::Client,
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
    tx: broadcast::Sender<Invalidation>,
) -> (AbortOnDrop, FirstSubscription) {
    let (first_tx, first_rx) = oneshot::channel();
    let mut subscriber = Subscriber {
        config,
        tx,
        sequences: Sequences::default(),
        first: Some(first_tx),
    };
    let handle = tokio::spawn(async move { subscriber.run().await });
    (AbortOnDrop(handle), first_rx)
}

struct Subscriber {
    config: SubscriberConfig,
    tx: broadcast::Sender<Invalidation>,
    sequences: Sequences,
    first: Option<oneshot::Sender<Result<(), String>>>,
}

impl Subscriber {
    async fn run(&mut self) {
        loop {
            let (push_tx, push_rx) = mpsc::unbounded_channel();
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.config.connect_timeout))
                .set_response_timeout(Some(self.config.command_timeout))
                .set_number_of_retries(RECONNECT_TRIES)
                .set_max_delay(RECONNECT_MAX_DELAY)
                .set_push_sender(push_tx)
                .set_automatic_resubscription();
            match ConnectionManager::new_lazy_with_config(
                self.config.client.clone(),
                manager_config,
            ) {
                Ok(conn) => self.follow(conn, push_rx).await,
                Err(e) => self.failed(&e.to_string()),
            }
            sleep(REBUILD_DELAY).await;
        }
    }

    /// Runs one connection: subscribes, forwards messages, checks its health; returns when
    /// the connection should be rebuilt.
    async fn follow(
        &mut self,
        mut conn: ConnectionManager,
        mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    ) {
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
                            if failed_checks >= MAX_FAILED_CHECKS {
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

    async fn subscribe(&self, conn: &mut ConnectionManager) -> Result<(), String> {
        let limit = self.config.connect_timeout + self.config.command_timeout;
        match timeout(limit, conn.subscribe(&self.config.channel)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("subscribe failed: {e}")),
            Err(_) => Err("subscribe timed out".to_owned()),
        }
    }

    async fn ping(&self, conn: &mut ConnectionManager) -> Result<(), String> {
        let limit = self.config.connect_timeout + self.config.command_timeout;
        let ping = redis::cmd("PING");
        match timeout(limit, ping.query_async::<Value>(conn)).await {
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
            PushKind::Subscribe if self.names_channel(&push.data) => {
                // (Re)subscribed: whatever was published while we were not is lost.
                *subscribed = true;
                self.sequences.reset();
                self.send(Invalidation::Resync);
                if let Some(first) = self.first.take() {
                    let _ = first.send(Ok(()));
                }
            }
            PushKind::Unsubscribe if self.names_channel(&push.data) => *subscribed = false,
            PushKind::Message => {
                if let Some(msg) = Msg::from_push_info(push)
                    && msg.get_channel_name() == self.config.channel
                {
                    self.on_message(msg.get_payload_bytes());
                }
            }
            _ => {}
        }
    }

    fn on_message(&mut self, payload: &[u8]) {
        let msg: Message = match serde_json::from_slice(payload) {
            Ok(msg) => msg,
            Err(e) => {
                // Possibly a revocation we cannot read: assume the worst.
                tracing::warn!(channel = %self.config.channel, error = %e, "unreadable revocation message");
                self.send(Invalidation::Resync);
                return;
            }
        };
        if self.sequences.missed(msg.publisher, msg.seq) {
            tracing::debug!(publisher = %msg.publisher, seq = msg.seq, "revocation messages missed");
            self.send(Invalidation::Resync);
        }
        for id in msg.ids {
            self.send(Invalidation::Revoked(id));
        }
    }

    fn names_channel(&self, data: &[Value]) -> bool {
        matches!(data.first(), Some(Value::BulkString(name)) if name.as_slice() == self.config.channel.as_bytes())
    }

    fn send(&self, msg: Invalidation) {
        // No receiver yet (or any more) is fine.
        let _ = self.tx.send(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_count_up_per_publisher() {
        let publisher = Publisher::new();
        let id = SessionId::random();
        let first: Message = serde_json::from_str(&publisher.next(&[id])).unwrap();
        let second: Message = serde_json::from_str(&publisher.next(&[])).unwrap();
        assert_eq!((first.v, first.seq, second.seq), (1, 1, 2));
        assert_eq!(first.publisher, publisher.id());
        assert_eq!(first.ids, vec![id]);
    }

    #[test]
    fn a_skipped_number_means_missed_messages() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut seen = Sequences::default();
        assert!(!seen.missed(a, 7), "the first message sets the baseline");
        assert!(!seen.missed(a, 8));
        assert!(!seen.missed(b, 1));
        assert!(seen.missed(a, 10), "9 was skipped");
        assert!(
            !seen.missed(a, 10),
            "a repeat (a retried publish) is not a gap"
        );
        assert!(seen.missed(a, 3), "going back is");
        seen.reset();
        assert!(!seen.missed(a, 42));
    }

    #[test]
    fn too_many_publishers_reset_the_table() {
        let mut seen = Sequences::default();
        for _ in 0..MAX_PUBLISHERS {
            assert!(!seen.missed(Uuid::new_v4(), 1));
        }
        assert!(seen.missed(Uuid::new_v4(), 1));
        assert_eq!(seen.last.len(), 1);
    }
}
