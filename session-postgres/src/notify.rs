//! The push channel: the NOTIFY payload format, and the background task that LISTENs and
//! turns notifications into [`Invalidation`]s.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_core::SessionId;
use session_core::store::Invalidation;
use sqlx::postgres::{PgConnectOptions, PgListener, PgNotification, PgPool, PgPoolOptions};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

/// The NOTIFY channel revocations are published on.
pub const CHANNEL: &str = "session_revocations";

/// The payload format version this crate writes and reads.
pub(crate) const PAYLOAD_VERSION: u32 = 1;

/// Ids per notification. A hyphenated id costs 39 bytes in the payload (quotes and comma),
/// the envelope about 80, so a full notification is about 7.1 KB: under PostgreSQL's 8000
/// byte limit on a payload.
pub(crate) const MAX_IDS_PER_NOTIFICATION: usize = 180;

/// Publishers remembered for gap detection; past this, the table is reset (with a resync).
const MAX_TRACKED_PUBLISHERS: usize = 4096;

/// One notification on [`CHANNEL`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Payload {
    /// Format version ([`PAYLOAD_VERSION`]).
    pub v: u32,
    /// The publishing store instance (random per [`PostgresStore`](crate::PostgresStore)).
    pub publisher: Uuid,
    /// The publisher's sequence number: consecutive, from 0, one per notification.
    pub seq: u64,
    /// Revoked session ids.
    pub ids: Vec<SessionId>,
}

/// The notifications that publish `ids`, numbered from `first_seq`.
pub(crate) fn encode(publisher: Uuid, first_seq: u64, ids: &[SessionId]) -> Vec<String> {
    ids.chunks(MAX_IDS_PER_NOTIFICATION)
        .zip(first_seq..)
        .map(|(chunk, seq)| {
            serde_json::to_string(&Payload {
                v: PAYLOAD_VERSION,
                publisher,
                seq,
                ids: chunk.to_vec(),
            })
            .expect("a payload of uuids and numbers always serializes")
        })
        .collect()
}

/// The last sequence number seen per publisher, to notice a skipped notification.
#[derive(Debug, Default)]
pub(crate) struct Sequences {
    last: HashMap<Uuid, u64>,
}

impl Sequences {
    /// Records `seq` from `publisher`; true when notifications may have been missed.
    pub(crate) fn observe(&mut self, publisher: Uuid, seq: u64) -> bool {
        if let Some(last) = self.last.get_mut(&publisher) {
            let expected = last.saturating_add(1);
            if seq >= expected {
                *last = seq;
                seq > expected
            } else {
                // A duplicate or late one: its ids are still applied, nothing is missing.
                false
            }
        } else {
            // A publisher first seen: anything it sent before is covered by the resync sent
            // when this listener (re)connected, since then every notification arrived.
            let overflow = self.last.len() >= MAX_TRACKED_PUBLISHERS;
            if overflow {
                self.last.clear();
            }
            self.last.insert(publisher, seq);
            overflow
        }
    }

    fn clear(&mut self) {
        self.last.clear();
    }
}

/// Timing of the listener and its heartbeat.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    /// How often the store notifies its own heartbeat channel.
    pub heartbeat: Duration,
    /// Silence on the listener connection after which it is presumed dead (no heartbeat
    /// came through), dropped and rebuilt.
    pub silence: Duration,
    /// Deadline for (re)connecting the listener, and for a heartbeat.
    pub connect: Duration,
    /// Reconnect backoff bounds.
    pub backoff_min: Duration,
    /// See `backoff_min`.
    pub backoff_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(10),
            silence: Duration::from_secs(35),
            connect: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// What the listener task needs.
pub(crate) struct Listener {
    pub options: PgConnectOptions,
    pub heartbeat_channel: String,
    pub tx: broadcast::Sender<Invalidation>,
    /// Whether the listener is connected and listening.
    pub listening: watch::Sender<bool>,
    pub timing: Timing,
}

impl Listener {
    fn send(&self, msg: Invalidation) {
        // No receiver is fine.
        let _ = self.tx.send(msg);
    }

    /// A fresh listener on its own one-connection pool, LISTENing on both channels.
    ///
    /// A new pool each time: the previous listener's connection may be half-open, and its
    /// drop (UNLISTEN, return to the pool) could hold a shared pool's only slot for as long
    /// as the kernel takes to give up on it.
    async fn connect(&self) -> Result<PgListener, sqlx::Error> {
        let pool: PgPool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(self.timing.connect)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(self.options.clone());
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.eager_reconnect(true);
        listener
            .listen_all([CHANNEL, self.heartbeat_channel.as_str()])
            .await?;
        Ok(listener)
    }

    fn handle(&self, seqs: &mut Sequences, note: &PgNotification) {
        if note.channel() != CHANNEL {
            return; // our heartbeat: it only proves the connection is alive
        }
        match serde_json::from_str::<Payload>(note.payload()) {
            Ok(p) if p.v == PAYLOAD_VERSION => {
                if seqs.observe(p.publisher, p.seq) {
                    tracing::warn!(publisher = %p.publisher, seq = p.seq,
                        "session revocation notifications skipped a sequence number: resync");
                    self.send(Invalidation::Resync);
                }
                for id in p.ids {
                    self.send(Invalidation::Revoked(id));
                }
            }
            Ok(p) => {
                tracing::warn!(
                    version = p.v,
                    "session revocation notification of an unknown version: resync"
                );
                self.send(Invalidation::Resync);
            }
            Err(e) => {
                tracing::warn!(error = %e, "malformed session revocation notification: resync");
                self.send(Invalidation::Resync);
            }
        }
    }

    /// Runs until aborted: listen, forward, and after every (re)connect send a resync.
    pub(crate) async fn run(self) {
        let mut seqs = Sequences::default();
        let mut backoff = self.timing.backoff_min;
        loop {
            match tokio::time::timeout(self.timing.connect, self.connect()).await {
                Ok(Ok(mut listener)) => {
                    backoff = self.timing.backoff_min;
                    // Listening now: whatever was published before is covered by this.
                    seqs.clear();
                    self.send(Invalidation::Resync);
                    self.listening.send_replace(true);
                    tracing::debug!("session revocation listener connected");
                    self.forward(&mut listener, &mut seqs).await;
                    self.listening.send_replace(false);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "session revocation listener cannot connect");
                }
                Err(_) => tracing::warn!("session revocation listener: connect timed out"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.timing.backoff_max);
        }
    }

    /// Forwards notifications until the listener fails; returns to have it rebuilt.
    async fn forward(&self, listener: &mut PgListener, seqs: &mut Sequences) {
        loop {
            // The heartbeat keeps notifications coming; silence longer than `silence` means
            // the connection is dead without the socket knowing (half-open).
            match tokio::time::timeout(self.timing.silence, listener.try_recv()).await {
                Ok(Ok(Some(note))) => self.handle(seqs, &note),
                Ok(Ok(None)) => {
                    // The connection was lost and PgListener has reconnected and re-issued
                    // LISTEN: notifications in between are gone.
                    tracing::warn!("session revocation listener reconnected: resync");
                    seqs.clear();
                    self.send(Invalidation::Resync);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "session revocation listener failed; reconnecting");
                    return;
                }
                Err(_) => {
                    tracing::warn!(
                        "session revocation listener heard nothing (not even its heartbeat); reconnecting"
                    );
                    return;
                }
            }
        }
    }
}

/// Notifies `channel` every `timing.heartbeat` through `pool`, until aborted.
pub(crate) async fn heartbeat(pool: PgPool, channel: String, timing: Timing) {
    let mut tick = tokio::time::interval(timing.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sent = tokio::time::timeout(
            timing.connect,
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(&channel)
                .execute(&pool),
        )
        .await;
        match sent {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "session revocation heartbeat failed"),
            Err(_) => tracing::debug!("session revocation heartbeat timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_stay_under_the_limit_and_round_trip() {
        let ids: Vec<SessionId> = (0..1000).map(|_| SessionId::random()).collect();
        let publisher = Uuid::new_v4();
        let payloads = encode(publisher, u64::MAX - 10, &ids);
        assert_eq!(payloads.len(), 1000usize.div_ceil(MAX_IDS_PER_NOTIFICATION));
        let mut back = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            assert!(p.len() < 8000, "payload of {} bytes", p.len());
            let parsed: Payload = serde_json::from_str(p).unwrap();
            assert_eq!(parsed.v, PAYLOAD_VERSION);
            assert_eq!(parsed.publisher, publisher);
            assert_eq!(parsed.seq, u64::MAX - 10 + i as u64);
            back.extend(parsed.ids);
        }
        assert_eq!(back, ids);
        assert!(encode(publisher, 0, &[]).is_empty());
    }

    #[test]
    fn gaps_are_noticed_duplicates_are_not() {
        let mut s = Sequences::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(!s.observe(a, 7), "first seen");
        assert!(!s.observe(a, 8));
        assert!(!s.observe(b, 0));
        assert!(s.observe(a, 10), "9 is missing");
        assert!(!s.observe(a, 10), "duplicate");
        assert!(!s.observe(a, 9), "late");
        assert!(!s.observe(a, 11));
        s.clear();
        assert!(
            !s.observe(a, 20),
            "after a reconnect every publisher starts afresh"
        );
    }
}
