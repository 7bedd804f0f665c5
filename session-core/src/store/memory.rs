//! [`MemoryStore`]: sessions in this process's memory, for one node and for tests.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Created, RevokeMany, SessionStore};
use crate::error::StoreError;
use crate::model::{RevocationReason, SessionId, SessionRecord, UserId};

/// Sessions in memory, indexed by id and by user. Lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<SessionId, SessionRecord>,
    by_user: HashMap<UserId, HashSet<SessionId>>,
    epochs: HashMap<UserId, u64>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (every write is one
        // insert or field update), so a poisoned lock is safe to keep using.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn revoke_record(rec: &mut SessionRecord, reason: &RevocationReason, at: OffsetDateTime) {
    rec.revoked_at = Some(at);
    rec.revocation_reason = Some(reason.clone());
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn user_epoch(&self, user_id: &UserId) -> Result<u64, StoreError> {
        Ok(self.lock().epochs.get(user_id).copied().unwrap_or(0))
    }

    async fn create(
        &self,
        record: &SessionRecord,
        expected_epoch: u64,
    ) -> Result<Created, StoreError> {
        let mut inner = self.lock();
        let user = record.user_id().clone();
        if inner.epochs.get(&user).copied().unwrap_or(0) != expected_epoch {
            return Ok(Created::EpochMoved);
        }
        inner.by_user.entry(user).or_default().insert(record.id);
        inner.sessions.insert(record.id, record.clone());
        Ok(Created::Created)
    }

    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.lock().sessions.get(&id).cloned())
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        if let Some(rec) = self.lock().sessions.get_mut(&id) {
            rec.last_active_at = rec.last_active_at.max(at);
        }
        Ok(())
    }

    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let inner = self.lock();
        let Some(ids) = inner.by_user.get(user_id) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .filter_map(|id| inner.sessions.get(id))
            .filter(|r| !r.is_revoked() && r.expires_at > now)
            .cloned()
            .collect())
    }

    async fn revoke(
        &self,
        id: SessionId,
        reason: &RevocationReason,
        at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let mut inner = self.lock();
        match inner.sessions.get_mut(&id) {
            Some(rec) if !rec.is_revoked() => {
                revoke_record(rec, reason, at);
                Ok(Some(rec.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<SessionRecord>, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if req.scope.moves_epoch() {
            *inner.epochs.entry(req.user_id.clone()).or_insert(0) += 1;
        }
        let mut revoked = Vec::new();
        for id in inner.by_user.get(req.user_id).into_iter().flatten() {
            if Some(*id) == req.except {
                continue;
            }
            if let Some(rec) = inner.sessions.get_mut(id)
                && !rec.is_revoked()
                && rec.expires_at > req.at
                && req.scope.covers(rec)
            {
                revoke_record(rec, req.reason, req.at);
                revoked.push(rec.clone());
            }
        }
        Ok(revoked)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let expired: Vec<(SessionId, UserId)> = inner
            .sessions
            .values()
            .filter(|r| r.expires_at <= now)
            .map(|r| (r.id, r.user_id().clone()))
            .collect();
        for (id, user) in &expired {
            inner.sessions.remove(id);
            if let Some(set) = inner.by_user.get_mut(user) {
                set.remove(id);
                if set.is_empty() {
                    inner.by_user.remove(user);
                }
            }
        }
        Ok(expired.len() as u64)
    }
}

#[cfg(test)]
mod conformance {
    use std::sync::Arc;

    use crate::store::{MemoryStore, SessionStore};

    crate::store_suite!(
        async { Some(Arc::new(MemoryStore::new()) as Arc<dyn SessionStore>) },
        dump = |store: Arc<dyn SessionStore>| async move { format!("{store:?}") }
    );
}
