//! The table under the revocation cache: the few operations [`SessionCache`] needs of a
//! bounded concurrent map, and its two backends (why each: see the parent module).
//!
//! - [`MokaTable`] (the default): `moka::sync::Cache`. TinyLFU admission in front of LRU
//!   eviction; per entry, its own allocations for the key, the entry's metadata and a node
//!   in its access-order queue; a read records itself in a bounded log that the reading
//!   thread replays into that queue now and then.
//! - `QuickTable` (feature `quick-cache`): `quick_cache::sync::Cache`. CLOCK-Pro
//!   eviction with its bookkeeping inside the table; a read only sets a reference bit.
//!
//! Neither is asked to expire entries: the cache judges freshness itself, by the manager's
//! clock, and an entry past its time is a miss that the next load replaces. Both are keyed
//! with a fast non-cryptographic hasher: only ids from tokens whose MAC verified reach the
//! cache, and those are random UUIDs this deployment issued, so no one can choose keys to
//! collide.
//!
//! [`SessionCache`]: super::SessionCache

use rustc_hash::FxBuildHasher;

use super::entry::Cached;
use crate::model::SessionId;

/// The table the manager's cache uses: moka, or quick_cache with the `quick-cache` feature.
#[cfg(not(feature = "quick-cache"))]
pub(crate) type DefaultTable = MokaTable;
/// The table the manager's cache uses: moka, or quick_cache with the `quick-cache` feature.
#[cfg(feature = "quick-cache")]
pub(crate) type DefaultTable = QuickTable;

/// A bounded concurrent map from session id to what the cache knows of it. Every method is
/// synchronous and awaits nothing; `get` is the only one on a cache hit's path.
pub(crate) trait Table: std::fmt::Debug + Send + Sync + 'static {
    /// An empty table that holds at most `capacity` entries (at least one), counting each
    /// entry it evicts to stay within that in `evictions`.
    fn with_capacity(capacity: u64, evictions: metrics::Counter) -> Self;
    /// The entry for `id`, counted as a use by the eviction policy.
    fn get(&self, id: &SessionId) -> Option<Cached>;
    /// The entry for `id`, without counting as a use where the backend allows it.
    fn peek(&self, id: &SessionId) -> Option<Cached>;
    /// Inserts or replaces the entry for `id`; readers see it when this returns.
    fn insert(&self, id: SessionId, value: Cached);
    /// Removes the entry for `id`; readers no longer see it when this returns.
    fn remove(&self, id: &SessionId);
    /// Removes every entry; no entry inserted before the call is seen after it returns.
    fn clear(&self);
    /// About how many entries the table holds, without any housekeeping (moka's count
    /// lags its pending work): for the `session_cache_entries` gauge.
    fn entry_count(&self) -> u64;
    /// How many entries the table holds. moka counts lazily, so its table first runs the
    /// housekeeping still pending (eviction included).
    #[cfg(test)]
    fn len(&self) -> usize;
}

/// The default backend: `moka::sync::Cache`.
///
/// Configured for a cheap hit: no expiry policy (no timer wheel, nothing rescheduled on a
/// read), no weigher, no invalidation closures. Its one eviction listener counts evictions
/// for capacity; moka calls it from housekeeping, never from the lookup itself. What is left on a
/// read is moka's clock reading, the lookup, a clone of the value (an enum holding an
/// `Arc`) and a record in moka's bounded read log. Once the log is full enough or a short
/// interval has passed, the reading thread replays it into the access-order queue (under
/// a try-lock: a reader never waits for another thread's housekeeping), and the replay
/// ends by handing the garbage of moka's lock-free map to crossbeam-epoch, which allocates
/// a block now and then once the map has seen any update or removal. That allocation is
/// the only one on a hit, and no setting of moka's removes it: a node that must never
/// allocate on a hit uses `QuickTable`.
#[cfg_attr(feature = "quick-cache", allow(dead_code))] // still built, for the tests on both
pub(crate) struct MokaTable(moka::sync::Cache<SessionId, Cached, FxBuildHasher>);

/// The entry count only (moka's own `Debug` lists every entry).
impl std::fmt::Debug for MokaTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MokaTable")
            .field("entries", &self.0.entry_count())
            .finish_non_exhaustive()
    }
}

impl Table for MokaTable {
    fn with_capacity(capacity: u64, evictions: metrics::Counter) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(capacity.max(1))
                .eviction_listener(move |_, _, cause| {
                    if cause == moka::notification::RemovalCause::Size {
                        evictions.increment(1);
                    }
                })
                .build_with_hasher(FxBuildHasher),
        )
    }

    fn get(&self, id: &SessionId) -> Option<Cached> {
        self.0.get(id)
    }

    /// moka has no read that skips its bookkeeping; a peek counts as a use.
    fn peek(&self, id: &SessionId) -> Option<Cached> {
        self.0.get(id)
    }

    fn insert(&self, id: SessionId, value: Cached) {
        self.0.insert(id, value);
    }

    fn remove(&self, id: &SessionId) {
        self.0.invalidate(id);
    }

    /// moka marks every entry written before now invalid at once (reads skip them) and
    /// frees them during later housekeeping.
    fn clear(&self) {
        self.0.invalidate_all();
    }

    fn entry_count(&self) -> u64 {
        self.0.entry_count()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.run_pending_tasks();
        usize::try_from(self.0.entry_count()).unwrap_or(usize::MAX)
    }
}

/// The opt-in backend (feature `quick-cache`): `quick_cache::sync::Cache`, sharded, every
/// entry weighing one.
#[cfg(feature = "quick-cache")]
pub(crate) struct QuickTable(
    quick_cache::sync::Cache<
        SessionId,
        Cached,
        quick_cache::UnitWeighter,
        FxBuildHasher,
        Evictions,
    >,
);

/// quick_cache's hook on eviction: counts it.
#[cfg(feature = "quick-cache")]
#[derive(Clone, Debug)]
pub(crate) struct Evictions(metrics::Counter);

#[cfg(feature = "quick-cache")]
impl quick_cache::Lifecycle<SessionId, Cached> for Evictions {
    type RequestState = ();

    fn on_evict(&self, (): &mut (), _: SessionId, _: Cached) {
        self.0.increment(1);
    }
}

#[cfg(feature = "quick-cache")]
impl std::fmt::Debug for QuickTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickTable")
            .field("entries", &self.0.len())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "quick-cache")]
impl Table for QuickTable {
    fn with_capacity(capacity: u64, evictions: metrics::Counter) -> Self {
        let capacity = capacity.max(1);
        Self(quick_cache::sync::Cache::with(
            usize::try_from(capacity).unwrap_or(usize::MAX),
            capacity,
            quick_cache::UnitWeighter,
            FxBuildHasher,
            Evictions(evictions),
        ))
    }

    fn get(&self, id: &SessionId) -> Option<Cached> {
        self.0.get(id)
    }

    fn peek(&self, id: &SessionId) -> Option<Cached> {
        self.0.peek(id)
    }

    fn insert(&self, id: SessionId, value: Cached) {
        self.0.insert(id, value);
    }

    fn remove(&self, id: &SessionId) {
        self.0.remove(id);
    }

    fn clear(&self) {
        self.0.clear();
    }

    fn entry_count(&self) -> u64 {
        u64::try_from(self.0.len()).unwrap_or(u64::MAX)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn id(n: u8) -> SessionId {
        SessionId::from_bytes([n; 16])
    }

    fn revoked(until: i64) -> Cached {
        Cached::Revoked { until }
    }

    fn until(cached: Option<Cached>) -> Option<i64> {
        match cached? {
            Cached::Revoked { until } | Cached::Unknown { until } => Some(until),
            Cached::Valid(_) => None,
        }
    }

    /// The contract every backend keeps: what is inserted is read back, replaced, removed,
    /// and gone after a clear, at once.
    fn keeps_the_contract<T: Table>() {
        let t = T::with_capacity(100, metrics::Counter::noop());
        assert!(t.get(&id(1)).is_none());
        t.insert(id(1), revoked(10));
        assert_eq!(until(t.get(&id(1))), Some(10));
        assert_eq!(until(t.peek(&id(1))), Some(10));
        t.insert(id(1), Cached::Unknown { until: 20 });
        assert_eq!(until(t.get(&id(1))), Some(20));
        t.insert(id(2), revoked(30));
        assert_eq!(t.len(), 2);
        t.remove(&id(1));
        assert!(t.get(&id(1)).is_none());
        assert_eq!(until(t.get(&id(2))), Some(30));
        t.clear();
        assert!(t.get(&id(2)).is_none());
        assert!(t.peek(&id(2)).is_none());
        assert_eq!(t.len(), 0);
        // Inserted after a clear: there.
        t.insert(id(3), revoked(40));
        assert_eq!(until(t.get(&id(3))), Some(40));
    }

    /// A hit hands out the same `CachedSession` (an `Arc` clone), not a copy.
    fn shares_live_entries<T: Table>() {
        use crate::model::Principal;
        let t = T::with_capacity(10, metrics::Counter::noop());
        let (record, _) = crate::testing::suite::record(
            Principal::user("alice"),
            crate::testing::suite::now_ms(),
            std::time::Duration::from_secs(60),
        );
        let live = Arc::new(super::super::entry::CachedSession::new(
            record,
            None,
            i64::MAX,
            0,
        ));
        t.insert(live.id, Cached::Valid(live.clone()));
        let Some(Cached::Valid(hit)) = t.get(&live.id) else {
            panic!("no hit");
        };
        assert!(Arc::ptr_eq(&hit, &live));
    }

    /// The capacity bounds the entries (after moka's pending housekeeping).
    fn stays_within_capacity<T: Table>() {
        let t = T::with_capacity(50, metrics::Counter::noop());
        for n in 0..200u8 {
            let mut bytes = [0; 16];
            bytes[0] = n;
            t.insert(SessionId::from_bytes(bytes), revoked(1));
        }
        assert!(t.len() <= 50, "{} entries", t.len());
    }

    on_every_table!(
        sync: [keeps_the_contract, shares_live_entries, stays_within_capacity],
        async: []
    );
}
