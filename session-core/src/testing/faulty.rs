//! Fault injection for tests: a store wrapper that counts calls, fails, hangs or stops
//! loads at a barrier. It wraps a real store; it never stands in for one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast};

use crate::error::StoreError;
use crate::model::{RevocationReason, SessionId, SessionRecord, UserId};
use crate::store::{Created, Invalidation, RevokeMany, SessionStore};

/// How many times each kind of call reached the store.
#[derive(Debug, Default)]
pub struct Calls {
    /// `load`.
    pub load: AtomicUsize,
    /// `touch`.
    pub touch: AtomicUsize,
    /// Every other call.
    pub other: AtomicUsize,
}

impl Calls {
    /// Calls of every kind.
    #[must_use]
    pub fn total(&self) -> usize {
        self.load.load(Ordering::SeqCst)
            + self.touch.load(Ordering::SeqCst)
            + self.other.load(Ordering::SeqCst)
    }
}

/// Wraps a store: counts calls, and on demand fails them, hangs them, or holds loads until
/// released.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    /// Call counts.
    pub calls: Calls,
    failing: AtomicBool,
    hanging: AtomicBool,
    hold_loads: AtomicBool,
    /// Signalled when a held load has started (it has read nothing yet).
    pub load_started: Notify,
    /// Notify to let held loads go on.
    pub release: Notify,
}

impl<S: SessionStore> FaultyStore<S> {
    /// Wraps `inner`, passing everything through.
    pub fn new(inner: S) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: Calls::default(),
            failing: AtomicBool::new(false),
            hanging: AtomicBool::new(false),
            hold_loads: AtomicBool::new(false),
            load_started: Notify::new(),
            release: Notify::new(),
        })
    }

    /// Every call fails (as a refused connection would) while set.
    pub fn set_failing(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    /// Every call hangs forever while set.
    pub fn set_hanging(&self, on: bool) {
        self.hanging.store(on, Ordering::SeqCst);
    }

    /// Loads wait for [`FaultyStore::release`] *after* reading the store while set, so
    /// a test can revoke between a load's read and its insert into the cache.
    pub fn set_hold_loads(&self, on: bool) {
        self.hold_loads.store(on, Ordering::SeqCst);
    }

    async fn gate(&self) -> Result<(), StoreError> {
        if self.hanging.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::backend(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "injected failure",
            )));
        }
        Ok(())
    }

    async fn other(&self) -> Result<(), StoreError> {
        self.calls.other.fetch_add(1, Ordering::SeqCst);
        self.gate().await
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for FaultyStore<S> {
    async fn user_epoch(&self, user_id: &UserId) -> Result<u64, StoreError> {
        self.other().await?;
        self.inner.user_epoch(user_id).await
    }

    async fn create(&self, record: &SessionRecord, epoch: u64) -> Result<Created, StoreError> {
        self.other().await?;
        self.inner.create(record, epoch).await
    }

    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.calls.load.fetch_add(1, Ordering::SeqCst);
        self.gate().await?;
        let record = self.inner.load(id).await;
        if self.hold_loads.load(Ordering::SeqCst) {
            let released = self.release.notified();
            self.load_started.notify_one();
            released.await;
        }
        record
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.calls.touch.fetch_add(1, Ordering::SeqCst);
        self.gate().await?;
        self.inner.touch(id, at).await
    }

    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.other().await?;
        self.inner.list_active(user_id, now).await
    }

    async fn revoke(
        &self,
        id: SessionId,
        reason: &RevocationReason,
        at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.other().await?;
        self.inner.revoke(id, reason, at).await
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<SessionRecord>, StoreError> {
        self.other().await?;
        self.inner.revoke_many(req).await
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.other().await?;
        self.inner.purge_expired(now).await
    }

    async fn publish(&self, revoked: &[SessionId]) -> Result<(), StoreError> {
        self.inner.publish(revoked).await
    }

    fn invalidations(&self) -> Option<broadcast::Receiver<Invalidation>> {
        self.inner.invalidations()
    }
}
