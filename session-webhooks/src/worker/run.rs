//! The worker's task: wait for the lease, then deliver while holding it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use session_core::events::EventQuery;
use session_core::{EventId, SessionEvent, SessionStore, StoreError};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tracing::Instrument as _;

use super::config::{Endpoint, Settings};
use super::deliver::{Outcome, Target, deliver};
use super::schedule::Schedule;
use crate::encode::Encoder;

/// How often, at most, the cursor is saved while requests are in flight (it is saved at
/// once when none is): a crash repeats at most this much delivery.
const SAVE_EVERY: Duration = Duration::from_millis(100);

/// The first re-read after a wake-up for an event the log does not serve yet (a store
/// serves an event only once no earlier one can still commit); it doubles up to the poll
/// interval.
const REREAD_FIRST: Duration = Duration::from_millis(5);

/// What the handle and the task share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) holds_lease: AtomicBool,
}

pub(crate) struct Worker {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) endpoint: Endpoint,
    pub(crate) target: Target,
    pub(crate) encoder: Arc<dyn Encoder>,
    pub(crate) wakeups: Option<broadcast::Receiver<SessionEvent>>,
    pub(crate) settings: Settings,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) shared: Arc<Shared>,
}

/// Why holding the lease ended.
enum Held {
    Stopped,
    Lost,
}

/// The lease as this node sees it.
#[derive(Clone, Copy, Debug)]
struct Lease {
    /// Deliver until then, no later.
    valid_until: Instant,
    renew_at: Instant,
}

/// A store call cut short because the lease ran out first.
struct LeaseRanOut;

fn unix_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

impl Worker {
    pub(crate) async fn run(mut self) {
        let span = tracing::info_span!(
            "webhook_worker",
            endpoint = %self.endpoint.origin,
            node = %self.settings.node_id,
        );
        async move {
            self.backlog(0);
            while let Some(lease) = self.standby().await {
                self.shared.holds_lease.store(true, Ordering::SeqCst);
                tracing::info!("webhook lease taken: delivering");
                let held = self.hold(lease).await;
                self.shared.holds_lease.store(false, Ordering::SeqCst);
                match held {
                    Held::Stopped => {
                        let release = self
                            .store
                            .release_lease(&self.settings.name, &self.settings.node_id);
                        match timeout(self.settings.store_timeout(), release).await {
                            Ok(Ok(())) => tracing::info!("webhook worker stopped; lease released"),
                            Ok(Err(err)) => tracing::warn!(error = %err, "webhook worker stopped; releasing the lease failed"),
                            Err(_) => tracing::warn!("webhook worker stopped; releasing the lease timed out"),
                        }
                        return;
                    }
                    Held::Lost => tracing::warn!("webhook lease lost: stopped delivering"),
                }
            }
            tracing::info!("webhook worker stopped");
        }
        .instrument(span)
        .await;
    }

    fn stopping(&self) -> bool {
        // A dropped handle stops the worker too.
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }

    /// Waits for the lease; `None` when told to stop first.
    async fn standby(&mut self) -> Option<Lease> {
        loop {
            if self.stopping() {
                return None;
            }
            let started = Instant::now();
            let call = self.store.try_lease(
                &self.settings.name,
                &self.settings.node_id,
                self.settings.lease_ttl,
            );
            match timeout(self.settings.store_timeout(), call).await {
                Ok(Ok(true)) => {
                    return Some(Lease {
                        valid_until: started + self.settings.held_for(),
                        renew_at: started + self.settings.renew_every(),
                    });
                }
                Ok(Ok(false)) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "taking the webhook lease failed"),
                Err(_) => tracing::warn!("taking the webhook lease timed out"),
            }
            let again = started + self.settings.renew_every();
            loop {
                tokio::select! {
                    _ = self.stop.changed() => break,
                    () = sleep_until(again) => break,
                    // Another node delivers: nothing to do with this node's events.
                    msg = next_wakeup(&mut self.wakeups) => {
                        if matches!(msg, Err(broadcast::error::RecvError::Closed)) {
                            self.wakeups = None;
                        }
                    }
                }
            }
        }
    }

    /// Runs a store call, for at most the store timeout, and not past the lease.
    async fn call<T>(
        &self,
        lease: &Lease,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<Result<T, StoreError>, LeaseRanOut> {
        let deadline = (Instant::now() + self.settings.store_timeout()).min(lease.valid_until);
        match timeout_at(deadline, call).await {
            Ok(result) => Ok(result),
            Err(_) if Instant::now() >= lease.valid_until => Err(LeaseRanOut),
            Err(_) => Ok(Err(StoreError::Timeout)),
        }
    }

    /// Renews the lease when due. `Err` when it is lost (another node holds it, or it ran
    /// out while the store did not answer).
    async fn renew(&self, lease: &mut Lease) -> Result<(), LeaseRanOut> {
        let now = Instant::now();
        if now >= lease.valid_until {
            return Err(LeaseRanOut);
        }
        if now < lease.renew_at {
            return Ok(());
        }
        let call = self.store.try_lease(
            &self.settings.name,
            &self.settings.node_id,
            self.settings.lease_ttl,
        );
        match self.call(lease, call).await? {
            Ok(true) => {
                lease.valid_until = now + self.settings.held_for();
                lease.renew_at = now + self.settings.renew_every();
                Ok(())
            }
            Ok(false) => Err(LeaseRanOut),
            Err(err) => {
                tracing::warn!(error = %err, "renewing the webhook lease failed; trying again");
                lease.renew_at = Instant::now() + self.settings.renew_every() / 4;
                Ok(())
            }
        }
    }

    /// Delivers while the lease holds.
    async fn hold(&mut self, mut lease: Lease) -> Held {
        let name = self.settings.name.clone();
        let cursor = loop {
            if self.stopping() {
                return Held::Stopped;
            }
            if self.renew(&mut lease).await.is_err() {
                return Held::Lost;
            }
            match self.call(&lease, self.store.load_cursor(&name)).await {
                Ok(Ok(cursor)) => break cursor,
                Ok(Err(err)) => tracing::warn!(error = %err, "reading the webhook cursor failed"),
                Err(LeaseRanOut) => return Held::Lost,
            }
            let again = (Instant::now() + self.settings.renew_every() / 4).min(lease.renew_at);
            tokio::select! {
                _ = self.stop.changed() => {}
                () = sleep_until(again) => {}
            }
        };
        tracing::info!(cursor = ?cursor.as_ref().map(EventId::as_str), "webhook delivery resumes");
        let mut run = Run {
            schedule: Schedule::new(cursor.clone(), self.settings.horizon, self.settings.backoff),
            saved: cursor,
            saved_at: None,
            tasks: JoinSet::new(),
            task_seqs: HashMap::new(),
            read_now: true,
            next_poll: Instant::now(),
            wanted: None,
            reread_in: REREAD_FIRST,
        };
        let held = self.deliver(&mut run, &mut lease).await;
        match held {
            Held::Lost => {
                run.tasks.abort_all();
                // This node holds nothing now.
                self.backlog(0);
            }
            Held::Stopped => {
                // Let the requests in flight land (within the lease), then save where
                // delivery stands.
                while let Ok(Some(joined)) =
                    timeout_at(lease.valid_until, run.tasks.join_next_with_id()).await
                {
                    self.landed(&mut run, joined);
                }
                run.tasks.abort_all();
                let _ = self.save_cursor(&mut run, &lease, true).await;
                self.backlog(run.schedule.pending());
            }
        }
        held
    }

    async fn deliver(&mut self, run: &mut Run, lease: &mut Lease) -> Held {
        loop {
            if self.stopping() {
                return Held::Stopped;
            }
            if self.renew(lease).await.is_err() {
                return Held::Lost;
            }
            let now = Instant::now();
            let room = self.settings.read_ahead.saturating_sub(run.schedule.held());
            if room > 0 && (run.read_now || now >= run.next_poll) {
                let limit = room.min(self.settings.batch);
                let query = EventQuery {
                    after: run.schedule.read_to().cloned(),
                    limit,
                    ..EventQuery::default()
                };
                match self.call(lease, self.store.events(&query)).await {
                    Ok(Ok(events)) => {
                        let full = events.len() >= limit;
                        run.schedule.push(events);
                        run.read_now = full;
                        run.next_poll = now + self.settings.poll_interval;
                        let behind = run
                            .wanted
                            .as_ref()
                            .is_some_and(|w| run.schedule.read_to() < Some(w));
                        if behind {
                            // Woken for an event the log does not serve yet: look again soon.
                            run.next_poll = now + run.reread_in;
                            run.reread_in = (run.reread_in * 2).min(self.settings.poll_interval);
                        } else {
                            run.wanted = None;
                            run.reread_in = REREAD_FIRST;
                        }
                    }
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "reading the event log failed");
                        run.read_now = false;
                        run.next_poll = now + self.settings.poll_interval;
                    }
                    Err(LeaseRanOut) => return Held::Lost,
                }
            }
            self.launch(run);
            match self.save_cursor(run, lease, run.tasks.is_empty()).await {
                Ok(()) => {}
                Err(LeaseRanOut) => return Held::Lost,
            }
            self.backlog(run.schedule.pending());

            let mut wake = lease.renew_at.min(lease.valid_until);
            if self.settings.read_ahead > run.schedule.held() {
                wake = wake.min(if run.read_now { now } else { run.next_poll });
            }
            // Something due already waits for a request to land (the concurrency is used
            // up): the landing wakes the loop.
            if let Some(due) = run.schedule.next_due().filter(|&due| due > now) {
                wake = wake.min(due);
            }
            if run.saved.as_ref() != run.schedule.cursor()
                && let Some(at) = run.saved_at
            {
                wake = wake.min(at + SAVE_EVERY);
            }
            tokio::select! {
                biased;
                _ = self.stop.changed() => {}
                Some(joined) = run.tasks.join_next_with_id(), if !run.tasks.is_empty() => {
                    self.landed(run, joined);
                }
                msg = next_wakeup(&mut self.wakeups) => match msg {
                    Ok(event) => {
                        if run.schedule.read_to() < Some(&event.id) {
                            run.read_now = true;
                            if run.wanted.as_ref() < Some(&event.id) {
                                run.wanted = Some(event.id);
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => run.read_now = true,
                    Err(broadcast::error::RecvError::Closed) => self.wakeups = None,
                },
                () = sleep_until(wake) => {}
            }
        }
    }

    /// Sends what is due, up to the concurrency.
    fn launch(&self, run: &mut Run) {
        let now = Instant::now();
        while let Some(launch) = run.schedule.next_launch(now, self.settings.concurrency) {
            let entry = run
                .schedule
                .entry_mut(launch.seq)
                .expect("a launched event is pending");
            if entry.payload.is_none() {
                match self.encoder.encode(&entry.event) {
                    Ok(Some(payload)) => entry.payload = Some(payload),
                    Ok(None) => {
                        tracing::debug!(event_id = %entry.event.id, "webhook event skipped by the encoder");
                        run.schedule.skipped(launch.seq);
                        continue;
                    }
                    Err(err) => {
                        let id = entry.event.id.clone();
                        let failure = run.schedule.failed(launch.seq, now, false, None);
                        tracing::warn!(event_id = %id, error = %err, retry_in_ms = ?failure.retry_in.map(|d| d.as_millis()), "encoding a webhook event failed");
                        self.gave_up(&failure.given_up);
                        continue;
                    }
                }
            }
            let id = entry.event.id.clone();
            let payload = entry.payload.clone().expect("encoded above");
            metrics::counter!("session_webhook_attempts_total", "host" => self.endpoint.host.clone())
                .increment(1);
            tracing::debug!(event_id = %id, attempt = launch.attempt, "delivering webhook");
            let handle = run.tasks.spawn(deliver(self.target.clone(), id, payload));
            run.task_seqs
                .insert(handle.id(), (launch.seq, launch.attempt));
        }
    }

    /// A request landed (or its task ended without an answer).
    fn landed(
        &self,
        run: &mut Run,
        joined: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>,
    ) {
        let (task, outcome) = match joined {
            Ok((task, outcome)) => (task, outcome),
            Err(err) => (
                err.id(),
                Outcome::Unreachable("the delivery task ended".into()),
            ),
        };
        let Some((seq, attempt)) = run.task_seqs.remove(&task) else {
            return;
        };
        let Some(entry) = run.schedule.entry_mut(seq) else {
            return;
        };
        let id = entry.event.id.clone();
        let occurred_at = entry.event.occurred_at;
        let now = Instant::now();
        let host = &self.endpoint.host;
        let (receiver, retry_after, reason) = match outcome {
            Outcome::Delivered(status) => {
                run.schedule.succeeded(seq);
                #[allow(clippy::cast_precision_loss)]
                let lag = (unix_nanos() - occurred_at.unix_timestamp_nanos()).max(0) as f64 / 1e9;
                metrics::histogram!("session_webhook_delivery_lag_seconds", "host" => host.clone())
                    .record(lag);
                tracing::debug!(event_id = %id, attempt, status = status.as_u16(), "webhook delivered");
                return;
            }
            Outcome::Refused {
                status,
                retry_after,
            } => (true, retry_after, format!("status {}", status.as_u16())),
            Outcome::Unreachable(error) => (true, None, error),
            Outcome::Unsendable(error) => (false, None, error.to_owned()),
        };
        metrics::counter!("session_webhook_failures_total", "host" => host.clone()).increment(1);
        let failure = run.schedule.failed(seq, now, receiver, retry_after);
        match failure.retry_in {
            Some(delay) => tracing::warn!(
                event_id = %id,
                attempt,
                error = %reason,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "webhook delivery failed; will retry"
            ),
            None => {
                tracing::warn!(event_id = %id, attempt, error = %reason, "webhook delivery failed")
            }
        }
        self.gave_up(&failure.given_up);
    }

    fn backlog(&self, pending: usize) {
        #[allow(clippy::cast_precision_loss)]
        let pending = pending as f64;
        metrics::gauge!("session_webhook_backlog", "host" => self.endpoint.host.clone())
            .set(pending);
    }

    fn gave_up(&self, ids: &[EventId]) {
        for id in ids {
            metrics::counter!("session_webhook_given_up_total", "host" => self.endpoint.host.clone())
                .increment(1);
            tracing::error!(
                event_id = %id,
                horizon_secs = self.settings.horizon.as_secs(),
                "webhook event given up: the retry horizon has passed"
            );
        }
    }

    /// Saves the cursor if it moved, at most every [`SAVE_EVERY`] unless `now` says at once.
    async fn save_cursor(
        &self,
        run: &mut Run,
        lease: &Lease,
        at_once: bool,
    ) -> Result<(), LeaseRanOut> {
        let Some(cursor) = run.schedule.cursor().cloned() else {
            return Ok(());
        };
        if run.saved.as_ref() == Some(&cursor) {
            return Ok(());
        }
        let now = Instant::now();
        if !at_once && run.saved_at.is_some_and(|at| now < at + SAVE_EVERY) {
            return Ok(());
        }
        match self
            .call(lease, self.store.save_cursor(&self.settings.name, &cursor))
            .await?
        {
            Ok(()) => {
                tracing::trace!(cursor = %cursor, "webhook cursor saved");
                run.saved = Some(cursor);
                run.saved_at = Some(now);
            }
            Err(err) => {
                tracing::warn!(error = %err, "saving the webhook cursor failed");
                run.saved_at = Some(now);
            }
        }
        Ok(())
    }
}

/// The state of one spell of holding the lease.
struct Run {
    schedule: Schedule,
    saved: Option<EventId>,
    saved_at: Option<Instant>,
    tasks: JoinSet<Outcome>,
    task_seqs: HashMap<tokio::task::Id, (u64, u32)>,
    read_now: bool,
    next_poll: Instant,
    /// The newest event this node logged, by the wake-ups, when not read yet.
    wanted: Option<EventId>,
    reread_in: Duration,
}

async fn next_wakeup(
    rx: &mut Option<broadcast::Receiver<SessionEvent>>,
) -> Result<SessionEvent, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
