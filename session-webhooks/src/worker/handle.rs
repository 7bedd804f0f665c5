//! [`WorkerHandle`]: the running worker, from the outside.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::run::Shared;

/// A running [`WebhookWorker`](super::WebhookWorker). Dropping it stops the worker (in the
/// background: it lets the requests in flight land, saves its cursor and releases the
/// lease); [`shutdown`](Self::shutdown) does the same and waits for it.
pub struct WorkerHandle {
    pub(super) stop: watch::Sender<bool>,
    pub(super) task: Option<JoinHandle<()>>,
    pub(super) shared: Arc<Shared>,
    pub(super) node_id: Arc<str>,
}

impl WorkerHandle {
    /// Stops the worker and waits until it has: requests in flight land (for as long as
    /// the lease holds), the cursor is saved, the lease is released (so another node takes
    /// over at its next try rather than at the lease's end).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stops the worker at once, as a crash would: requests in flight are dropped, the
    /// cursor is not saved beyond what it was, the lease is not released (another node
    /// takes over when it runs out). For tests of fail-over; use [`shutdown`](Self::shutdown)
    /// otherwise.
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Whether this node holds the lease (and so is the one delivering) right now.
    #[must_use]
    pub fn holds_lease(&self) -> bool {
        self.shared.holds_lease.load(Ordering::SeqCst)
    }

    /// The node id the worker takes the lease under.
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Whether the worker's task has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("node_id", &self.node_id)
            .field("holds_lease", &self.holds_lease())
            .field("finished", &self.is_finished())
            .finish()
    }
}
