//! The revocation cache: each node's memory of session state, in front of the store.
//!
//! - A hit is one read-locked lookup in a sharded [`quick_cache`] table, an `Arc` clone and
//!   a few integer compares: no allocation, no await, no housekeeping on the reader.
//! - Entries are compact: the id, the principal, a 32-byte proof of the token, and a few
//!   integers, in one 160-byte allocation. The device details stay in the store, which answers the listings.
//! - Concurrent misses for one id share one store load (a once-cell per id in flight),
//!   under the deadline and within the bound on loads in flight.
//! - "Valid" and "unknown" answers are trusted for the staleness bound by the manager's
//!   clock (and not at all if that clock went back past their load); "revoked" answers
//!   are terminal and kept until the session's own expiry. The capacity bound evicts the
//!   coldest entries (CLOCK-Pro); an entry past its time is a miss and is replaced.
//! - A generation counter guards against a revocation racing a load: a load's insert and a
//!   revocation's tombstone serialize on a lock stripe of the id, and the load inserts only
//!   if no revocation (or resync) moved the generation since it began. A resync holds
//!   every stripe while it clears, so no load that began before it can insert after it.
//!
//! moka was this cache until the 1 M-session measurement: its bookkeeping alone is about
//! 350 bytes per entry and its reads record themselves for later housekeeping, which
//! allocates now and then. `quick_cache` costs about 50 bytes per entry and its reads
//! only set a reference bit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore};

use crate::clock::Clock;
use crate::error::StoreError;
use crate::model::{Principal, SessionId, SessionRecord};
use crate::store::SessionStore;
use crate::token::{VerifiedToken, ct_eq32};

/// Unix seconds of 2020-01-01: activity times are kept as `u32` seconds since then
/// (good until 2156), which keeps an entry within one 160-byte allocation.
const ACTIVITY_EPOCH: i64 = 1_577_836_800;

fn to_activity(unix_s: i64) -> u32 {
    u32::try_from(unix_s.saturating_sub(ACTIVITY_EPOCH).max(0)).unwrap_or(u32::MAX)
}

fn from_activity(s: u32) -> i64 {
    ACTIVITY_EPOCH + i64::from(s)
}

/// A live session as this node knows it: what the request path needs, nothing more.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) id: SessionId,
    pub(crate) principal: Principal,
    /// How the token is recognised: by default the MAC of the token whose secret matched
    /// the store's hash (equal MACs under our keys mean equal id and secret, so comparing
    /// MACs spares hashing the secret); when `proof_is_hash`, the store's hash of the
    /// secret, for an entry whose loading request did not carry the matching secret (only
    /// possible with a leaked key), so every request hashes.
    proof: [u8; 32],
    proof_is_hash: bool,
    /// Whether this node already reported the session's expiry.
    expiry_reported: AtomicBool,
    /// The session's absolute expiry, in Unix nanoseconds.
    pub(crate) expires_at_nanos: i64,
    /// The entry is trusted until then (manager clock, Unix nanoseconds).
    fresh_until: i64,
    /// The latest request this node saw for the session (see [`ACTIVITY_EPOCH`]).
    last_seen: AtomicU32,
    /// The latest `last_active_at` this node wrote or loaded (see [`ACTIVITY_EPOCH`]).
    last_written: AtomicU32,
}

impl Live {
    /// The cached form of `record`, which `tag` (if any) is known to prove.
    fn new(record: SessionRecord, tag: Option<[u8; 32]>, fresh_until: i64) -> Self {
        let last = to_activity(record.last_active_at.unix_timestamp());
        Self {
            id: record.id,
            proof: tag.unwrap_or(record.secret_hash),
            proof_is_hash: tag.is_none(),
            expiry_reported: AtomicBool::new(false),
            expires_at_nanos: nanos(record.expires_at),
            principal: record.principal,
            fresh_until,
            last_seen: AtomicU32::new(last),
            last_written: AtomicU32::new(last),
        }
    }

    /// Takes over the activity `older` (a stale entry of the same session) recorded.
    fn inherit(&self, older: &Self) {
        self.last_seen
            .fetch_max(older.last_seen.load(Ordering::Relaxed), Ordering::Relaxed);
        self.last_written.fetch_max(
            older.last_written.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        if older.expiry_reported.load(Ordering::Relaxed) {
            self.expiry_reported.store(true, Ordering::Relaxed);
        }
    }

    /// Whether `token` is this session's token (constant time).
    pub(crate) fn proven_by(&self, token: &VerifiedToken) -> bool {
        if self.proof_is_hash {
            token.matches(&self.proof)
        } else {
            ct_eq32(&self.proof, token.tag()).into()
        }
    }

    /// Unix seconds of the latest request this node saw.
    pub(crate) fn last_seen(&self) -> i64 {
        from_activity(self.last_seen.load(Ordering::Relaxed))
    }

    /// Records a request at `unix_s`.
    pub(crate) fn saw(&self, unix_s: i64) {
        self.last_seen
            .fetch_max(to_activity(unix_s), Ordering::Relaxed);
    }

    /// Unix seconds of the latest activity written to (or loaded from) the store.
    pub(crate) fn last_written(&self) -> i64 {
        from_activity(self.last_written.load(Ordering::Relaxed))
    }

    /// Claims the write of activity at `unix_s`, if the latest written is still
    /// `written`: false when another request of the session got there first.
    pub(crate) fn claim_write(&self, written: i64, unix_s: i64) -> bool {
        self.last_written
            .compare_exchange(
                to_activity(written),
                to_activity(unix_s),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// True the first time only: whether this call should report the expiry.
    pub(crate) fn first_expiry_report(&self) -> bool {
        !self.expiry_reported.swap(true, Ordering::Relaxed)
    }
}

fn nanos(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

fn duration_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// What the cache remembers of one session id.
#[derive(Clone, Debug)]
pub(crate) enum Cached {
    /// Valid when loaded (expiry is checked on every use).
    Live(Arc<Live>),
    /// Revoked: terminal, kept until then (Unix nanoseconds).
    Revoked { until: i64 },
    /// Not in the store (purged, or never stored); trusted until then.
    Unknown { until: i64 },
}

type LoadResult = Result<Cached, Arc<StoreError>>;

/// Lock stripes serializing inserts and revocations of one id (ids are random, so the
/// first byte spreads them).
const STRIPES: usize = 64;

type Table = quick_cache::sync::Cache<
    SessionId,
    Cached,
    quick_cache::UnitWeighter,
    rustc_hash::FxBuildHasher,
>;

pub(crate) struct SessionCache {
    /// Keyed with a fast non-cryptographic hasher: only ids from tokens whose MAC verified
    /// reach the cache, and those are random UUIDs we issued, so no one can choose keys to
    /// collide.
    table: Table,
    stripes: Box<[Mutex<()>]>,
    in_flight: Mutex<HashMap<SessionId, Arc<OnceCell<LoadResult>>>>,
    /// Moves on every revocation and resync seen by this node.
    generation: AtomicU64,
    /// How long a "valid" or "unknown" answer is trusted, in nanoseconds.
    staleness: i64,
    clock: Arc<dyn Clock>,
    loads: Semaphore,
    deadline: Duration,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("entries", &self.table.len())
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionCache {
    pub(crate) fn new(
        capacity: u64,
        staleness: Duration,
        max_loads: usize,
        deadline: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let capacity = capacity.max(1);
        Self {
            table: Table::with(
                usize::try_from(capacity).unwrap_or(usize::MAX),
                capacity,
                quick_cache::UnitWeighter,
                rustc_hash::FxBuildHasher,
                quick_cache::sync::DefaultLifecycle::default(),
            ),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            in_flight: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            staleness: duration_nanos(staleness),
            clock,
            loads: Semaphore::new(max_loads),
            deadline,
        }
    }

    /// How many entries the cache holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    fn stripe(&self, id: SessionId) -> &Mutex<()> {
        &self.stripes[usize::from(id.as_bytes()[0]) % STRIPES]
    }

    /// The cached state at `now` (Unix nanoseconds, manager clock), if there is a
    /// trustworthy one. Synchronous and allocation-free.
    pub(crate) fn get(&self, id: SessionId, now: i64) -> Option<Cached> {
        let hit = self.table.get(&id)?;
        let trusted = match &hit {
            Cached::Live(live) => self.fresh(live.fresh_until, now),
            Cached::Unknown { until } => self.fresh(*until, now),
            Cached::Revoked { until } => now < *until,
        };
        trusted.then_some(hit)
    }

    /// Whether an answer trusted until `until` still is at `now`: not after it, and not
    /// before its load (a clock that went back does not extend the trust).
    fn fresh(&self, until: i64, now: i64) -> bool {
        now < until && now >= until.saturating_sub(self.staleness)
    }

    fn in_flight(&self) -> MutexGuard<'_, HashMap<SessionId, Arc<OnceCell<LoadResult>>>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Loads the state from the store for `token`, sharing one load among concurrent
    /// callers. `keep_revoked` is how long a revoked answer is kept.
    pub(crate) async fn load(
        &self,
        token: &VerifiedToken,
        store: &dyn SessionStore,
        keep_revoked: impl Fn(&SessionRecord) -> Duration,
    ) -> LoadResult {
        let id = token.id;
        let cell = self.in_flight().entry(id).or_default().clone();
        let result = cell
            .get_or_init(|| async {
                // A load that finished between our miss and now left its answer.
                if let Some(hit) = self.get(id, self.clock.unix_nanos()) {
                    return Ok(hit);
                }
                let started = self.generation.load(Ordering::Acquire);
                let record = self.load_from_store(id, store).await.map_err(Arc::new)?;
                let now = self.clock.unix_nanos();
                let fresh_until = now.saturating_add(self.staleness);
                let value = match record {
                    None => Cached::Unknown { until: fresh_until },
                    Some(rec) if rec.is_revoked() => Cached::Revoked {
                        until: now.saturating_add(duration_nanos(keep_revoked(&rec))),
                    },
                    Some(rec) => {
                        let tag = token.matches(&rec.secret_hash).then(|| *token.tag());
                        let live = Live::new(rec, tag, fresh_until);
                        // A refresh of an entry gone stale keeps what this node saw of
                        // the session since the store last heard of it.
                        if let Some(Cached::Live(old)) = self.table.peek(&id) {
                            live.inherit(&old);
                        }
                        Cached::Live(Arc::new(live))
                    }
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
    /// Runs under the id's stripe, so a revocation cannot slip in between.
    fn put_unless_overtaken(&self, id: SessionId, value: Cached, started: u64) {
        let overtakeable = !matches!(value, Cached::Revoked { .. });
        let _stripe = lock(self.stripe(id));
        if overtakeable && self.generation.load(Ordering::Acquire) != started {
            return;
        }
        self.table.insert(id, value);
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

    /// Caches a session this node just created for the token with MAC `tag`, unless a
    /// revocation ran since `started`.
    pub(crate) fn insert_live(
        &self,
        record: SessionRecord,
        tag: [u8; 32],
        started: u64,
    ) -> Arc<Live> {
        let fresh_until = self.clock.unix_nanos().saturating_add(self.staleness);
        let live = Arc::new(Live::new(record, Some(tag), fresh_until));
        self.put_unless_overtaken(live.id, Cached::Live(live.clone()), started);
        live
    }

    /// Marks a session revoked for `keep_for`, serialized with any insert of it.
    pub(crate) fn mark_revoked(&self, id: SessionId, keep_for: Duration) {
        let until = self
            .clock
            .unix_nanos()
            .saturating_add(duration_nanos(keep_for));
        let _stripe = lock(self.stripe(id));
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.table.insert(id, Cached::Revoked { until });
    }

    /// Forgets a session (a push said it was revoked elsewhere; the store has the detail).
    pub(crate) fn forget(&self, id: SessionId) {
        let _stripe = lock(self.stripe(id));
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.table.remove(&id);
    }

    /// Drops every cached answer (the push channel may have missed messages).
    pub(crate) fn resync(&self) {
        let _all: Vec<_> = self.stripes.iter().map(lock).collect();
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.table.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry and its `Arc` header fit one 160-byte allocator chunk (glibc adds 8 bytes
    /// and rounds to 16): the 1 M-session memory target depends on it.
    #[test]
    fn an_entry_fits_in_160_bytes() {
        assert!(
            size_of::<Live>() + 16 + 8 <= 160,
            "Live is {} bytes",
            size_of::<Live>()
        );
    }

    #[test]
    fn activity_seconds_round_trip_and_saturate() {
        let now = 1_800_000_000;
        assert_eq!(from_activity(to_activity(now)), now);
        assert_eq!(from_activity(to_activity(0)), ACTIVITY_EPOCH);
        assert_eq!(to_activity(i64::MAX), u32::MAX);
    }
}
