//! The revocation cache: each node's memory of session state, in front of the store.
//!
//! # What it promises
//!
//! - A hit is synchronous: one lookup in the table, an `Arc` clone and a few integer
//!   compares. It awaits nothing and takes no lock of ours (moka may run its own
//!   housekeeping on the reading thread, under a try-lock: never waiting for another
//!   thread's).
//! - Entries are compact: the id, the principal, a 32-byte proof of the token, and a few
//!   integers, in one 160-byte allocation ([`CachedSession`]). The device details stay in the store,
//!   which answers the listings.
//! - Staleness bound: "valid" and "unknown" answers are trusted for the staleness bound by
//!   the manager's clock, and not at all if that clock went back past their load. So a lost
//!   push message delays a revocation on this node by at most that bound.
//! - Revoked is terminal: a "revoked" answer is kept until the session's own expiry (never
//!   less than the staleness bound), not just for the staleness bound.
//! - Concurrent misses for one id share one store load (a once-cell per id in flight),
//!   under the deadline and within the bound on loads in flight. Each caller's share of a
//!   load takes the cell out of the in-flight map when that caller is done, also when its
//!   future is dropped mid-load (the client went away), so nothing is left behind.
//! - Generation guard: a revocation racing a load cannot leave a stale "valid" entry. Ids
//!   fall on 64 lock stripes (by their first byte, which is random), each with a
//!   generation. A revocation or a forget moves its id's stripe under the stripe's lock,
//!   and a load inserts, under the same lock, only if its id's stripe did not move since
//!   the load began. A resync holds every stripe while it moves them all and clears the
//!   table, so no load that began before it can insert after it. A stream of push messages
//!   about other ids therefore stops only the loads on their stripes from being cached,
//!   not every load on the node.
//! - The capacity bound evicts by the table's own policy; an entry past its time is a miss
//!   and the next load replaces it.
//!
//! # Two tables
//!
//! The map under the cache is one small trait ([`table::Table`]) with two backends, picked
//! at build time:
//!
//! - moka (`moka::sync::Cache`), the default, because the design names it: a maintained,
//!   widely used cache whose frequency-aware admission (TinyLFU) keeps the sessions that
//!   keep coming back when a burst of one-off ones passes through a full cache. Its price
//!   is bookkeeping beside every entry (separate allocations for the key, the entry's
//!   metadata and its node in the access-order queue), and reads that log themselves for
//!   housekeeping, which the reading thread runs inline every so often and which
//!   allocates once in a while (see [`table::MokaTable`]).
//! - quick_cache (`quick_cache::sync::Cache`, feature `quick-cache`), for nodes that cache
//!   millions of sessions: a few words of bookkeeping per entry inside its table
//!   (CLOCK-Pro eviction), and a read that only sets a reference bit. It takes much less
//!   memory per session, a hit never allocates, and no reader ever does housekeeping
//!   work, so the slowest hits stay close to the typical one.
//!
//! The manager's cache uses quick_cache when the feature is on, moka otherwise; the tests
//! of this module run on both whenever both are built.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore};

use crate::clock::Clock;
use crate::error::StoreError;
use crate::metrics::Handles;
use crate::model::{SessionId, SessionRecord};
use crate::store::SessionStore;
use crate::token::VerifiedToken;

/// Runs each generic test `name::<T: Table>()` on every backend built, as
/// `on_moka::name` and (feature `quick-cache`) `on_quick_cache::name`.
#[cfg(test)]
macro_rules! on_every_table {
    (sync: [$($sync:ident),* $(,)?], async: [$($async:ident),* $(,)?]) => {
        mod on_moka {
            $(
                #[test]
                fn $sync() {
                    super::$sync::<$crate::cache::table::MokaTable>();
                }
            )*
            $(
                #[tokio::test]
                async fn $async() {
                    super::$async::<$crate::cache::table::MokaTable>().await;
                }
            )*
        }
        #[cfg(feature = "quick-cache")]
        mod on_quick_cache {
            $(
                #[test]
                fn $sync() {
                    super::$sync::<$crate::cache::table::QuickTable>();
                }
            )*
            $(
                #[tokio::test]
                async fn $async() {
                    super::$async::<$crate::cache::table::QuickTable>().await;
                }
            )*
        }
    };
}

mod entry;
mod table;

pub(crate) use entry::{Cached, CachedSession};
use entry::{LoadResult, duration_nanos};
use table::{DefaultTable, Table};

/// Lock stripes serializing inserts and revocations of one id (ids are random, so the
/// first byte spreads them).
const STRIPES: usize = 64;

/// One lock stripe: its lock, and the generation that revocations, forgets and resyncs of
/// its ids move.
#[derive(Debug, Default)]
struct Stripe {
    lock: Mutex<()>,
    /// Moved under `lock` only.
    generation: AtomicU64,
}

impl Stripe {
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the generation; the caller holds `lock`.
    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

type InFlightMap = HashMap<SessionId, Arc<OnceCell<LoadResult>>>;

fn lock_in_flight(map: &Mutex<InFlightMap>) -> MutexGuard<'_, InFlightMap> {
    map.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One caller's share of a load in flight. Dropping it (when the load finished, or when the
/// caller's future was dropped mid-load) takes the load's cell out of the in-flight map,
/// unless a newer load of the same id replaced it there. Callers still waiting on the cell
/// hold their own reference: one of them finishes the load (a newer caller starts another).
struct InFlight<'a> {
    map: &'a Mutex<InFlightMap>,
    id: SessionId,
    cell: Arc<OnceCell<LoadResult>>,
}

impl<'a> InFlight<'a> {
    /// Joins the load of `id` in flight, or registers a new one.
    fn join(map: &'a Mutex<InFlightMap>, id: SessionId) -> Self {
        let cell = lock_in_flight(map).entry(id).or_default().clone();
        Self { map, id, cell }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut map = lock_in_flight(self.map);
        if map
            .get(&self.id)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cell))
        {
            map.remove(&self.id);
        }
    }
}

/// `session_loads_in_flight` up while a load runs, down when it ends or is dropped.
struct InFlightGauge<'a>(&'a metrics::Gauge);

impl<'a> InFlightGauge<'a> {
    fn up(gauge: &'a metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlightGauge<'_> {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

pub(crate) struct SessionCache<T: Table = DefaultTable> {
    table: T,
    stripes: Box<[Stripe]>,
    in_flight: Mutex<InFlightMap>,
    /// How long a "valid" or "unknown" answer is trusted, in nanoseconds.
    staleness: i64,
    clock: Arc<dyn Clock>,
    loads: Semaphore,
    deadline: Duration,
    binding: crate::binding::BindingPolicy,
    metrics: Handles,
}

impl<T: Table> std::fmt::Debug for SessionCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("table", &self.table)
            .field("loads_in_flight", &lock_in_flight(&self.in_flight).len())
            .finish_non_exhaustive()
    }
}

impl<T: Table> SessionCache<T> {
    pub(crate) fn new(
        capacity: u64,
        staleness: Duration,
        max_loads: usize,
        deadline: Duration,
        clock: Arc<dyn Clock>,
        binding: crate::binding::BindingPolicy,
    ) -> Self {
        let metrics = Handles::register();
        Self {
            binding,
            table: T::with_capacity(capacity.max(1), metrics.evictions.clone()),
            metrics,
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            in_flight: Mutex::new(HashMap::new()),
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

    fn stripe(&self, id: SessionId) -> &Stripe {
        &self.stripes[usize::from(id.as_bytes()[0]) % STRIPES]
    }

    /// The cached state at `now` (Unix nanoseconds, manager clock), if there is a
    /// trustworthy one. Synchronous.
    pub(crate) fn get(&self, id: SessionId, now: i64) -> Option<Cached> {
        let hit = self.table.get(&id)?;
        let trusted = match &hit {
            Cached::Valid(live) => self.fresh(live.fresh_until, now),
            Cached::Unknown { until } => self.fresh(*until, now),
            Cached::Revoked { until } => now < *until,
        };
        trusted.then_some(hit)
    }

    /// The metrics handles of this cache and its manager's push channel.
    pub(crate) fn metrics(&self) -> &Handles {
        &self.metrics
    }

    /// [`Self::get`] for a request: counted as a hit or a miss.
    pub(crate) fn lookup(&self, id: SessionId, now: i64) -> Option<Cached> {
        let found = self.get(id, now);
        if found.is_some() {
            self.metrics.hits.increment(1);
        } else {
            self.metrics.misses.increment(1);
        }
        found
    }

    /// Reports the table's size after a change (never on a hit).
    fn report_entries(&self) {
        #[expect(clippy::cast_precision_loss, reason = "a gauge; exact below 2^53")]
        self.metrics.entries.set(self.table.entry_count() as f64);
    }

    /// Whether an answer trusted until `until` still is at `now`: not after it, and not
    /// before its load (a clock that went back does not extend the trust).
    fn fresh(&self, until: i64, now: i64) -> bool {
        now < until && now >= until.saturating_sub(self.staleness)
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
        let share = InFlight::join(&self.in_flight, id);
        share
            .cell
            .get_or_init(|| async {
                // A load that finished between our miss and now left its answer.
                if let Some(hit) = self.get(id, self.clock.unix_nanos()) {
                    return Ok(hit);
                }
                let started = self.generation(id);
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
                        let bound = self.binding.of_record(&rec);
                        let live = CachedSession::new(rec, tag, fresh_until, bound);
                        // A refresh of an entry gone stale keeps what this node saw of
                        // the session since the store last heard of it.
                        if let Some(Cached::Valid(old)) = self.table.peek(&id) {
                            live.inherit(&old);
                        }
                        Cached::Valid(Arc::new(live))
                    }
                };
                self.put_unless_overtaken(id, value.clone(), started);
                Ok(value)
            })
            .await
            .clone()
        // `share` drops here, and with it the cell's place in the in-flight map.
    }

    /// Inserts `value` unless a revocation, forget or resync moved the id's stripe since
    /// `started`. Runs under the stripe's lock, so none can slip in between.
    fn put_unless_overtaken(&self, id: SessionId, value: Cached, started: u64) {
        let overtakeable = !matches!(value, Cached::Revoked { .. });
        let stripe = self.stripe(id);
        let _locked = stripe.lock();
        if overtakeable && stripe.generation.load(Ordering::Acquire) != started {
            return;
        }
        self.table.insert(id, value);
        self.report_entries();
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
            let _in_flight = InFlightGauge::up(&self.metrics.loads_in_flight);
            store.load(id).await
        })
        .await
        .map_err(|_| StoreError::Timeout)?
    }

    /// The generation of `id`'s stripe: read before creating a session, and handed to
    /// [`Self::insert_live`].
    pub(crate) fn generation(&self, id: SessionId) -> u64 {
        self.stripe(id).generation.load(Ordering::Acquire)
    }

    /// Caches a session this node just created for the token with MAC `tag`, unless a
    /// revocation, forget or resync moved its stripe since `started`.
    pub(crate) fn insert_live(
        &self,
        record: SessionRecord,
        tag: [u8; 32],
        started: u64,
    ) -> Arc<CachedSession> {
        let fresh_until = self.clock.unix_nanos().saturating_add(self.staleness);
        let bound = self.binding.of_record(&record);
        let live = Arc::new(CachedSession::new(record, Some(tag), fresh_until, bound));
        self.put_unless_overtaken(live.id, Cached::Valid(live.clone()), started);
        live
    }

    /// Marks a session revoked for `keep_for`, serialized with any insert of it.
    pub(crate) fn mark_revoked(&self, id: SessionId, keep_for: Duration) {
        let until = self
            .clock
            .unix_nanos()
            .saturating_add(duration_nanos(keep_for));
        let stripe = self.stripe(id);
        let _locked = stripe.lock();
        stripe.bump();
        self.table.insert(id, Cached::Revoked { until });
        self.report_entries();
    }

    /// Forgets a session (a push said it was revoked elsewhere; the store has the detail).
    pub(crate) fn forget(&self, id: SessionId) {
        let stripe = self.stripe(id);
        let _locked = stripe.lock();
        stripe.bump();
        self.table.remove(&id);
        self.report_entries();
    }

    /// Drops every cached answer (the push channel may have missed messages).
    pub(crate) fn resync(&self) {
        let _all: Vec<_> = self.stripes.iter().map(Stripe::lock).collect();
        for stripe in &self.stripes {
            stripe.bump();
        }
        self.table.clear();
        self.metrics.entries.set(0.0);
    }
}

#[cfg(test)]
mod tests;
