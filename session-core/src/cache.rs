//! The revocation cache: each node's memory of session state, in front of the store.
//!
//! - A hit is one synchronous moka lookup and an atomic load: no allocation, no await.
//! - Concurrent misses for one id share one store load (a once-cell per id in flight),
//!   under the deadline and within the bound on loads in flight.
//! - "Valid" answers live for the staleness bound; "revoked" answers are terminal and live
//!   until the session's own expiry.
//! - A generation counter guards against a revocation racing a load: a load's insert and a
//!   revocation's tombstone go through moka's per-key compute lock, and the load only
//!   inserts if no revocation (or resync) moved the generation since it began. A resync
//!   also distrusts every "valid" entry loaded before it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::ops::compute::Op;
use moka::sync::Cache;
use tokio::sync::{OnceCell, Semaphore};

use crate::error::StoreError;
use crate::model::{SessionId, SessionRecord};
use crate::store::SessionStore;

/// A live session as this node knows it.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) record: SessionRecord,
    /// `record.expires_at` in Unix nanoseconds, for a cheap comparison per request.
    pub(crate) expires_at_nanos: i64,
    /// The cache generation when the load that produced this entry began.
    loaded_gen: u64,
    /// Unix seconds of the latest request this node saw for the session.
    pub(crate) last_seen: AtomicI64,
    /// Unix seconds of the latest `last_active_at` this node wrote (or loaded).
    pub(crate) last_written: AtomicI64,
    /// Whether this node already reported the session's expiry.
    pub(crate) expiry_reported: AtomicBool,
    /// The MAC of the token whose secret matched the stored hash here, so later requests
    /// with the same token skip re-hashing the secret.
    pub(crate) known_tag: std::sync::OnceLock<[u8; 32]>,
}

impl Live {
    fn new(record: SessionRecord, loaded_gen: u64) -> Self {
        let last = record.last_active_at.unix_timestamp();
        let expires_at_nanos =
            i64::try_from(record.expires_at.unix_timestamp_nanos()).unwrap_or(i64::MAX);
        Self {
            expires_at_nanos,
            record,
            loaded_gen,
            last_seen: AtomicI64::new(last),
            last_written: AtomicI64::new(last),
            expiry_reported: AtomicBool::new(false),
            known_tag: std::sync::OnceLock::new(),
        }
    }
}

/// What the cache remembers of one session id.
#[derive(Clone, Debug)]
pub(crate) enum Cached {
    /// Valid when loaded (expiry is checked on every use).
    Live(Arc<Live>),
    /// Revoked: terminal, kept this long.
    Revoked { keep_for: Duration },
    /// Not in the store (purged, or never stored).
    Unknown,
}

struct Policy {
    staleness: Duration,
}

impl Expiry<SessionId, Cached> for Policy {
    fn expire_after_create(&self, _: &SessionId, value: &Cached, _: Instant) -> Option<Duration> {
        Some(match value {
            Cached::Live(_) | Cached::Unknown => self.staleness,
            Cached::Revoked { keep_for } => *keep_for,
        })
    }

    fn expire_after_update(
        &self,
        key: &SessionId,
        value: &Cached,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, at)
    }
}

type LoadResult = Result<Cached, Arc<StoreError>>;

pub(crate) struct SessionCache {
    /// Keyed with a fast non-cryptographic hasher: only ids from tokens whose MAC verified
    /// reach the cache, and those are random UUIDs we issued, so no one can choose keys to
    /// collide.
    cache: Cache<SessionId, Cached, rustc_hash::FxBuildHasher>,
    in_flight: Mutex<HashMap<SessionId, Arc<OnceCell<LoadResult>>>>,
    /// Moves on every revocation and resync seen by this node.
    generation: AtomicU64,
    /// "Valid" entries loaded before this generation are not trusted (a resync happened).
    trusted_from: AtomicU64,
    loads: Semaphore,
    deadline: Duration,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("entries", &self.cache.entry_count())
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SessionCache {
    pub(crate) fn new(
        capacity: u64,
        staleness: Duration,
        max_loads: usize,
        deadline: Duration,
    ) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(Policy { staleness })
                .build_with_hasher(rustc_hash::FxBuildHasher),
            in_flight: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            trusted_from: AtomicU64::new(0),
            loads: Semaphore::new(max_loads),
            deadline,
        }
    }

    /// The cached state, if there is a trustworthy one. Synchronous and allocation-free.
    pub(crate) fn get(&self, id: SessionId) -> Option<Cached> {
        let hit = self.cache.get(&id)?;
        match &hit {
            Cached::Live(live) if live.loaded_gen < self.trusted_from.load(Ordering::Acquire) => {
                None
            }
            _ => Some(hit),
        }
    }

    fn in_flight(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<OnceCell<LoadResult>>>> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Loads the state from the store, sharing one load among concurrent callers.
    pub(crate) async fn load(
        &self,
        id: SessionId,
        store: &dyn SessionStore,
        keep_revoked: impl Fn(&SessionRecord) -> Duration,
    ) -> LoadResult {
        let cell = self.in_flight().entry(id).or_default().clone();
        let result = cell
            .get_or_init(|| async {
                // A load that finished between our miss and now left its answer.
                if let Some(hit) = self.get(id) {
                    return Ok(hit);
                }
                let started = self.generation.load(Ordering::Acquire);
                let record = self.load_from_store(id, store).await.map_err(Arc::new)?;
                let value = match record {
                    None => Cached::Unknown,
                    Some(rec) if rec.is_revoked() => Cached::Revoked {
                        keep_for: keep_revoked(&rec),
                    },
                    Some(rec) => Cached::Live(Arc::new(Live::new(rec, started))),
                };
                self.put_unless_overtaken(id, value.clone(), started);
                Ok(value)
            })
            .await
            .clone();
        let mut in_flight = self.in_flight();
        if in_flight.get(&id).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            in_flight.remove(&id);
        }
        result
    }

    /// Inserts `value` unless a revocation or resync moved the generation since `started`.
    /// Runs under the key's compute lock, so a revocation cannot slip in between.
    fn put_unless_overtaken(&self, id: SessionId, value: Cached, started: u64) {
        let overtakeable = matches!(value, Cached::Live(_) | Cached::Unknown);
        self.cache.entry(id).and_compute_with(|_| {
            if overtakeable && self.generation.load(Ordering::Acquire) != started {
                Op::Nop
            } else {
                Op::Put(value)
            }
        });
    }

    async fn load_from_store(
        &self,
        id: SessionId,
        store: &dyn SessionStore,
    ) -> Result<Option<SessionRecord>, StoreError> {
        tokio::time::timeout(self.deadline, async {
            let _permit = self
                .loads
                .acquire()
                .await
                .map_err(|_| StoreError::Overloaded)?;
            store.load(id).await
        })
        .await
        .map_err(|_| StoreError::Timeout)?
    }

    /// The current generation (read before creating a session, see [`Self::insert_live`]).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches a session this node just created, unless a revocation ran since `started`.
    pub(crate) fn insert_live(&self, record: SessionRecord, started: u64) -> Arc<Live> {
        let live = Arc::new(Live::new(record, started));
        self.put_unless_overtaken(live.record.id, Cached::Live(live.clone()), started);
        live
    }

    /// Marks a session revoked, serialized with any insert of it.
    pub(crate) fn mark_revoked(&self, id: SessionId, keep_for: Duration) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache
            .entry(id)
            .and_compute_with(|_| Op::Put(Cached::Revoked { keep_for }));
    }

    /// Forgets a session (a push said it was revoked elsewhere; the store has the detail).
    pub(crate) fn forget(&self, id: SessionId) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.entry(id).and_compute_with(|_| Op::Remove);
    }

    /// Distrusts every cached answer (the push channel may have missed messages).
    pub(crate) fn resync(&self) {
        let now = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.trusted_from.fetch_max(now, Ordering::AcqRel);
        self.cache.invalidate_all();
    }
}
