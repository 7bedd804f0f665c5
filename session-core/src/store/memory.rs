//! [`MemoryStore`]: sessions in this process's memory, for one node and for tests.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    Change, Created, Matched, NewSession, Purged, Retention, RevokeMany, RevokeScope,
    RevokedSession, SessionFilter, SessionStore, UserState,
};
use crate::error::StoreError;
use crate::events::{AuditQuery, EventId, EventQuery, EventType, SessionEvent};
use crate::model::{Actor, RevocationReason, SessionId, SessionRecord, UserId};

/// Sessions in memory, indexed by id and by user. Lost when the process ends.
///
/// Its event log is bounded: it keeps the latest [`MemoryStore::DEFAULT_EVENT_CAPACITY`]
/// events (or [`MemoryStore::with_event_capacity`]); older ones are dropped as new ones
/// come, and by the purge's retention. Its ids are zero-padded sequence numbers.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{KeySet, MemoryStore, Principal, ClientInfo, SessionConfig, SessionManager};
/// use session_core::events::EventQuery;
/// use session_core::SessionStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(MemoryStore::new());
/// let manager = SessionManager::new(store.clone(), KeySet::random(), SessionConfig::default())?;
/// manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
/// let log = store.events(&EventQuery { limit: 10, ..EventQuery::default() }).await?;
/// assert_eq!(log.len(), 1);
/// assert_eq!(log[0].event_type.as_str(), "session.created");
/// # Ok(())
/// # }
/// ```
pub struct MemoryStore {
    inner: Mutex<Inner>,
    event_capacity: usize,
}

impl std::fmt::Debug for MemoryStore {
    // Counts only: records hold IPs and user agents, which stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("sessions", &inner.sessions.len())
            .field("users", &inner.by_user.len())
            .field("events", &inner.events.len())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<SessionId, SessionRecord>,
    by_user: HashMap<UserId, HashSet<SessionId>>,
    epochs: HashMap<UserId, u64>,
    disabled: HashSet<UserId>,
    expiry_reported: HashSet<SessionId>,
    events: VecDeque<SessionEvent>,
    next_event: u64,
    used: HashMap<String, OffsetDateTime>,
    leases: HashMap<String, (String, std::time::Instant)>,
    cursors: HashMap<String, EventId>,
}

impl Inner {
    fn log(&mut self, capacity: usize, mut event: SessionEvent) -> EventId {
        self.next_event += 1;
        event.id = EventId::new(format!("{:020}", self.next_event));
        let id = event.id.clone();
        if self.events.len() >= capacity {
            self.events.pop_front();
        }
        self.events.push_back(event);
        id
    }

    fn revoke(&mut self, capacity: usize, id: SessionId, change: &Change<'_>) -> RevokedSession {
        let rec = self.sessions.get_mut(&id).expect("revoked session exists");
        rec.revoked_at = Some(change.at);
        rec.revocation_reason = Some(change.reason.clone());
        let principal = rec.principal.clone();
        let expires_at = rec.expires_at;
        let event = SessionEvent::about(
            EventId::new(""),
            EventType::Revoked,
            id,
            &principal,
            Some(change.reason.clone()),
            change.actor,
            change.at,
        );
        let event_id = self.log(capacity, event);
        RevokedSession {
            id,
            principal,
            expires_at,
            event_id,
        }
    }

    fn active(&self, rec: &SessionRecord, now: OffsetDateTime) -> bool {
        !rec.is_revoked() && rec.expires_at > now
    }
}

impl MemoryStore {
    /// How many events the log keeps by default.
    pub const DEFAULT_EVENT_CAPACITY: usize = 100_000;

    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::with_event_capacity(Self::DEFAULT_EVENT_CAPACITY)
    }

    /// An empty store whose event log keeps the latest `capacity` events (at least one).
    #[must_use]
    pub fn with_event_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            event_capacity: capacity.max(1),
        }
    }

    /// Everything the store holds, as text (tests check what is kept at rest).
    #[cfg(any(test, feature = "testing"))]
    #[must_use]
    pub fn dump(&self) -> String {
        format!("{:?}", *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every write below completes or panics before touching anything, so a poisoned
        // lock leaves consistent maps and is safe to keep using.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn is_persistent(&self) -> bool {
        false
    }

    async fn user_state(&self, user_id: &UserId) -> Result<UserState, StoreError> {
        let inner = self.lock();
        Ok(UserState {
            epoch: inner.epochs.get(user_id).copied().unwrap_or(0),
            disabled: inner.disabled.contains(user_id),
        })
    }

    async fn create(&self, new: NewSession<'_>) -> Result<Created, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let record = new.record;
        let user = record.user_id().clone();
        if inner.disabled.contains(&user) {
            return Ok(Created::UserDisabled);
        }
        let epoch = inner.epochs.get(&user).copied().unwrap_or(0);
        if new.expected_epoch.is_some_and(|e| e != epoch) {
            return Ok(Created::EpochMoved);
        }
        if let Some(grantor) = new.granted_by {
            let alive = inner.sessions.get(&grantor).is_some_and(|g| {
                g.user_id() == &user && inner.active(g, record.created_at) && g.epoch == epoch
            });
            if !alive {
                return Ok(Created::GrantorGone);
            }
        }
        let mut evicted = Vec::new();
        if let (Some(max), crate::SessionKind::User) = (new.max_user_sessions, record.kind()) {
            let mut live: Vec<&SessionRecord> = inner
                .by_user
                .get(&user)
                .into_iter()
                .flatten()
                .filter_map(|id| inner.sessions.get(id))
                .filter(|r| r.kind() == crate::SessionKind::User)
                .filter(|r| inner.active(r, record.created_at))
                .collect();
            live.sort_by_key(|r| (r.created_at, r.id));
            let keep = usize::try_from(max.saturating_sub(1)).unwrap_or(usize::MAX);
            let excess: Vec<SessionId> = live
                .iter()
                .take(live.len().saturating_sub(keep))
                .map(|r| r.id)
                .collect();
            let change = Change {
                reason: &RevocationReason::SessionLimit,
                actor: Actor::System,
                at: record.created_at,
            };
            for id in excess {
                evicted.push(inner.revoke(self.event_capacity, id, &change));
            }
        }
        inner.by_user.entry(user).or_default().insert(record.id);
        let mut stored = record.clone();
        stored.epoch = epoch;
        inner.sessions.insert(record.id, stored);
        let event = SessionEvent::about(
            EventId::new(""),
            EventType::Created,
            record.id,
            &record.principal,
            None,
            new.actor,
            record.created_at,
        );
        let event_id = inner.log(self.event_capacity, event);
        Ok(Created::Created { event_id, evicted })
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
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let inner = self.lock();
        let Some(ids) = inner.by_user.get(user_id) else {
            return Ok(Vec::new());
        };
        let mut list: Vec<SessionRecord> = ids
            .iter()
            .filter_map(|id| inner.sessions.get(id))
            .filter(|r| inner.active(r, now))
            .cloned()
            .collect();
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        list.truncate(limit);
        Ok(list)
    }

    async fn revoke(
        &self,
        id: SessionId,
        change: Change<'_>,
    ) -> Result<Option<RevokedSession>, StoreError> {
        let mut inner = self.lock();
        match inner.sessions.get(&id) {
            Some(rec) if !rec.is_revoked() => {
                Ok(Some(inner.revoke(self.event_capacity, id, &change)))
            }
            _ => Ok(None),
        }
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<RevokedSession>, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if req.scope.moves_epoch() {
            *inner.epochs.entry(req.user_id.clone()).or_insert(0) += 1;
        }
        if req.disable_user && *req.scope == RevokeScope::All {
            inner.disabled.insert(req.user_id.clone());
        }
        let mut ids: Vec<SessionId> = inner
            .by_user
            .get(req.user_id)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| Some(*id) != req.except)
            .filter(|id| {
                inner
                    .sessions
                    .get(id)
                    .is_some_and(|rec| inner.active(rec, req.change.at) && req.scope.covers(rec))
            })
            .collect();
        ids.sort();
        Ok(ids
            .into_iter()
            .map(|id| inner.revoke(self.event_capacity, id, &req.change))
            .collect())
    }

    async fn revoke_matching(
        &self,
        filter: &SessionFilter,
        change: Change<'_>,
        dry_run: bool,
    ) -> Result<Matched, StoreError> {
        let mut inner = self.lock();
        let mut ids: Vec<SessionId> = inner
            .sessions
            .values()
            .filter(|r| inner.active(r, change.at) && filter.matches(r))
            .map(|r| r.id)
            .collect();
        ids.sort();
        let matched = ids.len() as u64;
        let revoked = if dry_run {
            Vec::new()
        } else {
            ids.into_iter()
                .map(|id| inner.revoke(self.event_capacity, id, &change))
                .collect()
        };
        Ok(Matched { matched, revoked })
    }

    async fn set_user_disabled(&self, user_id: &UserId, disabled: bool) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if disabled {
            inner.disabled.insert(user_id.clone());
        } else {
            inner.disabled.remove(user_id);
        }
        Ok(())
    }

    async fn report_expired(
        &self,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<Option<SessionEvent>, StoreError> {
        let mut inner = self.lock();
        let Some(principal) = inner.sessions.get(&id).map(|r| r.principal.clone()) else {
            return Ok(None);
        };
        if !inner.expiry_reported.insert(id) {
            return Ok(None);
        }
        let mut event = SessionEvent::about(
            EventId::new(""),
            EventType::Expired,
            id,
            &principal,
            None,
            Actor::System,
            at,
        );
        event.id = inner.log(self.event_capacity, event.clone());
        Ok(Some(event))
    }

    async fn append_event(&self, event: &SessionEvent) -> Result<EventId, StoreError> {
        Ok(self.lock().log(self.event_capacity, event.clone()))
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<SessionEvent>, StoreError> {
        let inner = self.lock();
        let start = query
            .after
            .as_ref()
            .map_or(0, |after| inner.events.partition_point(|e| &e.id <= after));
        Ok(inner
            .events
            .range(start..)
            .filter(|e| query.event_type.is_none_or(|t| e.event_type == t))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<SessionEvent>, StoreError> {
        let inner = self.lock();
        let end = query.before.as_ref().map_or(inner.events.len(), |before| {
            inner.events.partition_point(|e| &e.id < before)
        });
        Ok(inner
            .events
            .range(..end)
            .rev()
            .filter(|e| e.user_id == query.user_id)
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn purge(&self, now: OffsetDateTime, retention: Retention) -> Result<Purged, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let cutoff = now - retention.sessions;
        let gone: Vec<(SessionId, UserId)> = inner
            .sessions
            .values()
            .filter(|r| r.revoked_at.unwrap_or(r.expires_at).min(r.expires_at) <= cutoff)
            .map(|r| (r.id, r.user_id().clone()))
            .collect();
        for (id, user) in &gone {
            inner.sessions.remove(id);
            inner.expiry_reported.remove(id);
            if let Some(set) = inner.by_user.get_mut(user) {
                set.remove(id);
                if set.is_empty() {
                    inner.by_user.remove(user);
                }
            }
        }
        let event_cutoff = now - retention.events;
        let before = inner.events.len();
        inner.events.retain(|e| e.occurred_at > event_cutoff);
        inner.used.retain(|_, until| *until > now);
        Ok(Purged {
            sessions: gone.len() as u64,
            events: (before - inner.events.len()) as u64,
        })
    }

    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let now = OffsetDateTime::now_utc();
        match inner.used.get(key) {
            Some(t) if *t > now => Ok(false),
            _ => {
                inner.used.insert(key.to_owned(), until);
                Ok(true)
            }
        }
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let now = std::time::Instant::now();
        let free = inner
            .leases
            .get(name)
            .is_none_or(|(h, until)| h == holder || *until <= now);
        if free {
            inner
                .leases
                .insert(name.to_owned(), (holder.to_owned(), now + ttl));
        }
        Ok(free)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.leases.get(name).is_some_and(|(h, _)| h == holder) {
            inner.leases.remove(name);
        }
        Ok(())
    }

    async fn load_cursor(&self, name: &str) -> Result<Option<EventId>, StoreError> {
        Ok(self.lock().cursors.get(name).cloned())
    }

    async fn save_cursor(&self, name: &str, cursor: &EventId) -> Result<(), StoreError> {
        self.lock().cursors.insert(name.to_owned(), cursor.clone());
        Ok(())
    }
}

#[cfg(test)]
mod conformance {
    use std::sync::Arc;

    use crate::store::{MemoryStore, SessionStore};

    /// Every store the suite made, so the dump can find the concrete one behind a
    /// `dyn SessionStore`.
    static MADE: std::sync::Mutex<Vec<Arc<MemoryStore>>> = std::sync::Mutex::new(Vec::new());

    fn make() -> Arc<dyn SessionStore> {
        let store = Arc::new(MemoryStore::new());
        MADE.lock().unwrap().push(store.clone());
        store
    }

    crate::store_suite!(
        async { Some(make()) },
        dump = |store: Arc<dyn SessionStore>| async move {
            let made = MADE.lock().unwrap();
            let mem = made
                .iter()
                .find(|m| std::ptr::addr_eq(Arc::as_ptr(m), Arc::as_ptr(&store)))
                .expect("a store the suite made");
            mem.dump()
        }
    );

    #[test]
    fn debug_shows_no_client_details() {
        let store = MemoryStore::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(crate::testing::suite::user_session(
            &store,
            &crate::testing::suite::fresh_user("debug"),
        ));
        let debug = format!("{store:?}");
        assert!(
            !debug.contains("203.0.113.7") && !debug.contains("Mozilla"),
            "{debug}"
        );
        assert!(store.dump().contains("203.0.113.7"));
    }

    #[tokio::test]
    async fn the_log_is_bounded() {
        let store = MemoryStore::with_event_capacity(3);
        for _ in 0..5 {
            crate::testing::suite::user_session(&store, &crate::testing::suite::fresh_user("b"))
                .await;
        }
        let all = store
            .events(&crate::events::EventQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            [
                "00000000000000000003",
                "00000000000000000004",
                "00000000000000000005"
            ]
        );
    }
}
