//! Fault injection for tests: a store wrapper that counts calls, fails, hangs or stops
//! loads at a barrier. It wraps a real store; it never stands in for one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast};

use std::time::Duration;

use crate::error::StoreError;
use crate::events::{AuditQuery, EventId, EventQuery, SessionEvent};
use crate::model::{SessionId, SessionRecord, UserId};
use crate::store::{
    Change, Created, Matched, NewSession, Purged, PushMessage, Retention, RevokeMany,
    RevokedSession, SessionFilter, SessionStore, UserState,
};

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
    failing_revocations: AtomicBool,
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
            failing_revocations: AtomicBool::new(false),
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

    /// Revocations (`revoke`, `revoke_many`, `revoke_matching`) fail while set; nothing
    /// else does.
    pub fn set_failing_revocations(&self, on: bool) {
        self.failing_revocations.store(on, Ordering::SeqCst);
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

    async fn revocation(&self) -> Result<(), StoreError> {
        self.other().await?;
        if self.failing_revocations.load(Ordering::SeqCst) {
            return Err(StoreError::backend(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected revocation failure",
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for FaultyStore<S> {
    fn new_session_id(&self, user_id: &UserId) -> SessionId {
        self.inner.new_session_id(user_id)
    }

    async fn user_state(&self, user_id: &UserId) -> Result<UserState, StoreError> {
        self.other().await?;
        self.inner.user_state(user_id).await
    }

    async fn create(&self, new: NewSession<'_>) -> Result<Created, StoreError> {
        self.other().await?;
        self.inner.create(new).await
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
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.other().await?;
        self.inner.list_active(user_id, now, limit).await
    }

    async fn revoke(
        &self,
        id: SessionId,
        change: Change<'_>,
    ) -> Result<Option<RevokedSession>, StoreError> {
        self.revocation().await?;
        self.inner.revoke(id, change).await
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<RevokedSession>, StoreError> {
        self.revocation().await?;
        self.inner.revoke_many(req).await
    }

    async fn revoke_matching(
        &self,
        filter: &SessionFilter,
        change: Change<'_>,
        dry_run: bool,
    ) -> Result<Matched, StoreError> {
        self.revocation().await?;
        self.inner.revoke_matching(filter, change, dry_run).await
    }

    async fn set_user_disabled(&self, user_id: &UserId, disabled: bool) -> Result<(), StoreError> {
        self.other().await?;
        self.inner.set_user_disabled(user_id, disabled).await
    }

    async fn report_expired(
        &self,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<Option<SessionEvent>, StoreError> {
        self.other().await?;
        self.inner.report_expired(id, at).await
    }

    async fn append_event(&self, event: &SessionEvent) -> Result<EventId, StoreError> {
        self.other().await?;
        self.inner.append_event(event).await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<SessionEvent>, StoreError> {
        self.other().await?;
        self.inner.events(query).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<SessionEvent>, StoreError> {
        self.other().await?;
        self.inner.audit(query).await
    }

    async fn purge(&self, now: OffsetDateTime, retention: Retention) -> Result<Purged, StoreError> {
        self.other().await?;
        self.inner.purge(now, retention).await
    }

    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, StoreError> {
        self.other().await?;
        self.inner.first_use(key, until).await
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.other().await?;
        self.inner.try_lease(name, holder, ttl).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.other().await?;
        self.inner.release_lease(name, holder).await
    }

    async fn load_cursor(&self, name: &str) -> Result<Option<EventId>, StoreError> {
        self.other().await?;
        self.inner.load_cursor(name).await
    }

    async fn save_cursor(&self, name: &str, cursor: &EventId) -> Result<(), StoreError> {
        self.other().await?;
        self.inner.save_cursor(name, cursor).await
    }

    async fn publish(&self, payload: &str) -> Result<(), StoreError> {
        self.inner.publish(payload).await
    }

    fn push_limit(&self) -> usize {
        self.inner.push_limit()
    }

    fn push_messages(&self) -> Option<broadcast::Receiver<PushMessage>> {
        self.inner.push_messages()
    }

    fn is_persistent(&self) -> bool {
        self.inner.is_persistent()
    }
}
