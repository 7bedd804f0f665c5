//! The push channel: the background task that LISTENs and hands every notification's
//! payload, unread, to the manager (which checks its MAC), and says when it reconnected.

use std::sync::Arc;
use std::time::Duration;

use session_core::store::PushMessage;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::{broadcast, watch};

/// The default NOTIFY channel (for the default schema).
pub const CHANNEL: &str = "session_revocations";

/// The longest payload [`SessionStore::publish`](session_core::SessionStore::publish)
/// sends. PostgreSQL refuses a payload of 8000 bytes or more (with the default 8 KiB
/// block size); this leaves room below it.
pub const PUSH_LIMIT: usize = 7_900;

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
    /// Where to LISTEN: a session connection (never through a transaction-mode pooler).
    pub options: PgConnectOptions,
    pub channel: String,
    pub heartbeat_channel: String,
    pub tx: broadcast::Sender<PushMessage>,
    /// Whether the listener is connected and listening.
    pub listening: watch::Sender<bool>,
    pub timing: Timing,
}

impl Listener {
    fn send(&self, msg: PushMessage) {
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
            .listen_all([self.channel.as_str(), self.heartbeat_channel.as_str()])
            .await?;
        Ok(listener)
    }

    /// Runs until aborted: listen, forward, and after every (re)connect say so.
    pub(crate) async fn run(self) {
        let mut backoff = self.timing.backoff_min;
        loop {
            match tokio::time::timeout(self.timing.connect, self.connect()).await {
                Ok(Ok(mut listener)) => {
                    backoff = self.timing.backoff_min;
                    // Listening now: whatever was published before may have been missed.
                    self.send(PushMessage::Reconnected);
                    self.listening.send_replace(true);
                    tracing::debug!("session revocation listener connected");
                    self.forward(&mut listener).await;
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
    async fn forward(&self, listener: &mut PgListener) {
        loop {
            // The heartbeat keeps notifications coming; silence longer than `silence` means
            // the connection is dead without the socket knowing (half-open).
            match tokio::time::timeout(self.timing.silence, listener.try_recv()).await {
                Ok(Ok(Some(note))) => {
                    if note.channel() == self.channel {
                        self.send(PushMessage::Payload(Arc::from(note.payload())));
                    }
                    // Else our heartbeat: it only proves the connection is alive.
                }
                Ok(Ok(None)) => {
                    // The connection was lost and PgListener has reconnected and re-issued
                    // LISTEN: notifications in between are gone.
                    tracing::warn!("session revocation listener reconnected");
                    self.send(PushMessage::Reconnected);
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

/// Notifies `channel` every `timing.heartbeat` through `pool`, until aborted (`pooled`:
/// unprepared, in a transaction, as every statement behind a transaction-mode pooler).
pub(crate) async fn heartbeat(pool: PgPool, pooled: bool, channel: String, timing: Timing) {
    let mut tick = tokio::time::interval(timing.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let notify = sqlx::query("SELECT pg_notify($1, '')").bind(&channel);
        let sent = tokio::time::timeout(timing.connect, async {
            if pooled {
                let mut tx = pool.begin_with(crate::store::BEGIN).await?;
                notify.persistent(false).execute(&mut *tx).await?;
                tx.commit().await
            } else {
                notify.execute(&pool).await.map(drop)
            }
        })
        .await;
        match sent {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "session revocation heartbeat failed"),
            Err(_) => tracing::debug!("session revocation heartbeat timed out"),
        }
    }
}
