//! The cache's semantics, run on every table backend built (see `on_every_table!`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use time::OffsetDateTime;

use super::table::Table;
use super::*;
use crate::clock::ManualClock;
use crate::model::Principal;
use crate::store::MemoryStore;
use crate::testing::FaultyStore;
use crate::testing::suite::record;
use crate::token::KeySet;

const STALENESS: Duration = Duration::from_secs(30);
const KEEP_REVOKED: Duration = Duration::from_secs(3600);

/// A cache over a fault-injecting memory store, on a manual clock.
struct Fixture<T: Table> {
    cache: SessionCache<T>,
    store: Arc<FaultyStore<MemoryStore>>,
    clock: ManualClock,
}

impl<T: Table> Fixture<T> {
    fn new() -> Self {
        let clock = ManualClock::new(OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap());
        Self {
            cache: SessionCache::new(
                1000,
                STALENESS,
                16,
                Duration::from_secs(5),
                Arc::new(clock.clone()),
                crate::binding::BindingPolicy::default(),
            ),
            store: FaultyStore::new(MemoryStore::new()),
            clock,
        }
    }

    /// A session in the store, and its token as it arrives verified.
    async fn stored(&self) -> (SessionRecord, VerifiedToken) {
        let (rec, token) = record(
            Principal::user("alice"),
            self.clock.now(),
            Duration::from_secs(86_400),
        );
        crate::testing::suite::create(&*self.store, &rec).await;
        // `record` signs with the suite's key.
        let verified = KeySet::new([[3u8; 32]])
            .unwrap()
            .verify(token.as_bytes())
            .unwrap();
        (rec, verified)
    }

    fn load<'a>(&'a self, token: &'a VerifiedToken) -> impl Future<Output = LoadResult> + 'a {
        self.cache
            .load(token, &*self.store, |_: &SessionRecord| KEEP_REVOKED)
    }

    fn now(&self) -> i64 {
        self.clock.unix_nanos()
    }

    fn loads(&self) -> usize {
        self.store.calls.load.load(Ordering::SeqCst)
    }

    fn in_flight(&self) -> usize {
        lock_in_flight(&self.cache.in_flight).len()
    }

    /// Runs `load` with the store holding it between its read and its insert, and
    /// `meanwhile` in that gap.
    async fn load_with_gap(&self, token: &VerifiedToken, meanwhile: impl FnOnce()) -> Cached {
        self.store.set_hold_loads(true);
        let (loaded, ()) = tokio::join!(self.load(token), async {
            self.store.load_started.notified().await;
            meanwhile();
            self.store.set_hold_loads(false);
            self.store.release.notify_one();
        });
        loaded.unwrap()
    }
}

/// Another id on the same lock stripe as `id`, or on another one.
fn neighbour(id: SessionId, same_stripe: bool, n: u8) -> SessionId {
    let mut bytes = *id.as_bytes();
    if same_stripe {
        bytes[0] = bytes[0].wrapping_add(64); // same stripe (byte modulo 64)
        bytes[15] ^= n.wrapping_add(1);
    } else {
        // The first byte on stripe `n`, or on the next one if that is `id`'s.
        let own = usize::from(bytes[0]) % STRIPES;
        let mut stripe = usize::from(n) % STRIPES;
        if stripe == own {
            stripe = (stripe + 1) % STRIPES;
        }
        bytes[0] = u8::try_from(stripe).unwrap();
    }
    let other = SessionId::from_bytes(bytes);
    assert_ne!(other, id);
    other
}

fn is_live(cached: Option<Cached>) -> bool {
    matches!(cached, Some(Cached::Valid(_)))
}

fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// A load is cached: the next lookups hit, until the staleness bound, by the cache's clock.
async fn a_load_is_trusted_for_the_staleness_bound<T: Table>() {
    let f = Fixture::<T>::new();
    let (_, token) = f.stored().await;
    assert!(f.cache.get(token.id, f.now()).is_none());
    assert!(matches!(f.load(&token).await, Ok(Cached::Valid(_))));
    assert!(is_live(f.cache.get(token.id, f.now())));
    f.clock.advance(STALENESS - Duration::from_secs(1));
    assert!(is_live(f.cache.get(token.id, f.now())));
    f.clock.advance(Duration::from_secs(1));
    assert!(f.cache.get(token.id, f.now()).is_none(), "stale");
    assert_eq!(f.loads(), 1);
    // A clock stepped back before the load does not extend the trust either.
    assert!(matches!(f.load(&token).await, Ok(Cached::Valid(_))));
    f.clock.rewind(Duration::from_secs(1));
    assert!(f.cache.get(token.id, f.now()).is_none(), "clock went back");
    assert_eq!(f.loads(), 2);
}

/// Revoked is terminal: kept past the staleness bound, until its own time.
async fn revoked_answers_are_kept_until_their_time<T: Table>() {
    let f = Fixture::<T>::new();
    let (_, token) = f.stored().await;
    f.load(&token).await.unwrap();
    f.cache.mark_revoked(token.id, KEEP_REVOKED);
    f.clock.advance(STALENESS * 4);
    assert!(matches!(
        f.cache.get(token.id, f.now()),
        Some(Cached::Revoked { .. })
    ));
    f.clock.advance(KEEP_REVOKED);
    assert!(f.cache.get(token.id, f.now()).is_none());
}

/// Concurrent misses for one id share one store load, and leave nothing in flight.
async fn concurrent_misses_share_one_load<T: Table>() {
    let f = Fixture::<T>::new();
    let (_, token) = f.stored().await;
    f.store.set_hold_loads(true);
    let (a, b, ()) = tokio::join!(f.load(&token), f.load(&token), async {
        f.store.load_started.notified().await;
        f.store.set_hold_loads(false);
        f.store.release.notify_one();
    });
    assert!(matches!(a, Ok(Cached::Valid(_))));
    assert!(matches!(b, Ok(Cached::Valid(_))));
    assert_eq!(f.loads(), 1);
    assert_eq!(f.in_flight(), 0);
}

/// A caller that goes away mid-load (its future dropped) leaves nothing in flight, and the
/// next caller loads afresh.
async fn a_cancelled_load_leaves_nothing_behind<T: Table>() {
    let f = Fixture::<T>::new();
    let (_, token) = f.stored().await;
    f.store.set_hanging(true); // the store's `load` never finishes
    let gave_up = tokio::time::timeout(Duration::from_millis(20), f.load(&token)).await;
    assert!(gave_up.is_err(), "the load cannot have finished");
    assert_eq!(f.loads(), 1, "the load reached the store");
    assert_eq!(f.in_flight(), 0, "the dropped load left its cell behind");
    f.store.set_hanging(false);
    assert!(matches!(f.load(&token).await, Ok(Cached::Valid(_))));
    assert_eq!(f.in_flight(), 0);
}

/// A caller dropped mid-load takes out its own cell only, never a newer load's.
async fn a_cancelled_load_leaves_a_newer_one_in_flight<T: Table>() {
    let f = Fixture::<T>::new();
    let (_, token) = f.stored().await;
    f.store.set_hanging(true);
    let mut a = Box::pin(f.load(&token));
    let mut b = Box::pin(f.load(&token));
    assert!(poll_once(a.as_mut()).is_pending()); // a runs the load
    assert!(poll_once(b.as_mut()).is_pending()); // b waits on a's cell
    assert_eq!(f.in_flight(), 1);
    drop(a);
    assert_eq!(
        f.in_flight(),
        0,
        "the first caller to go takes the cell out"
    );
    assert!(poll_once(b.as_mut()).is_pending()); // b takes the load over
    let mut c = Box::pin(f.load(&token));
    assert!(poll_once(c.as_mut()).is_pending()); // c starts a newer load
    assert_eq!(f.in_flight(), 1);
    drop(b);
    assert_eq!(f.in_flight(), 1, "b took out c's newer cell");
    drop(c);
    assert_eq!(f.in_flight(), 0);
}

/// Forgetting ids on the 63 other stripes while a load is in flight does not stop it from
/// being cached.
async fn forgets_on_other_stripes_leave_a_load_cached<T: Table>() {
    let f = Fixture::<T>::new();
    let (_, token) = f.stored().await;
    let others: Vec<_> = (0..64u8).map(|n| neighbour(token.id, false, n)).collect();
    let loaded = f
        .load_with_gap(&token, || {
            for &other in &others {
                f.cache.forget(other);
            }
        })
        .await;
    assert!(matches!(loaded, Cached::Valid(_)));
    assert!(
        is_live(f.cache.get(token.id, f.now())),
        "the load was not cached"
    );
    assert_eq!(f.loads(), 1);
}

/// Forgetting another id of the same stripe while a load is in flight stops it from being
/// cached; the next load is.
async fn a_forget_on_the_same_stripe_stops_a_load_from_being_cached<T: Table>() {
    let f = Fixture::<T>::new();
    let (_, token) = f.stored().await;
    let neighbour = neighbour(token.id, true, 0);
    let loaded = f.load_with_gap(&token, || f.cache.forget(neighbour)).await;
    assert!(
        matches!(loaded, Cached::Valid(_)),
        "answered from what it read"
    );
    assert!(f.cache.get(token.id, f.now()).is_none(), "but not cached");
    f.load(&token).await.unwrap();
    assert!(is_live(f.cache.get(token.id, f.now())));
    assert_eq!(f.loads(), 2);
}

/// A revocation of the id racing its load wins: the tombstone stays.
async fn a_revocation_racing_a_load_wins<T: Table>() {
    let f = Fixture::<T>::new();
    let (_, token) = f.stored().await;
    f.load_with_gap(&token, || f.cache.mark_revoked(token.id, KEEP_REVOKED))
        .await;
    assert!(matches!(
        f.cache.get(token.id, f.now()),
        Some(Cached::Revoked { .. })
    ));
}

/// A resync clears the table and stops every load in flight from being cached.
async fn a_resync_clears_and_stops_loads_in_flight<T: Table>() {
    let f = Fixture::<T>::new();
    let (_, cached) = f.stored().await;
    let (_, token) = f.stored().await;
    f.load(&cached).await.unwrap();
    let elsewhere = neighbour(token.id, false, 0);
    f.cache.mark_revoked(elsewhere, KEEP_REVOKED);
    f.load_with_gap(&token, || f.cache.resync()).await;
    assert!(f.cache.get(token.id, f.now()).is_none());
    assert!(f.cache.get(cached.id, f.now()).is_none());
    assert!(f.cache.get(elsewhere, f.now()).is_none());
    assert_eq!(f.cache.len(), 0);
}

/// A session created by this node is cached unless its stripe moved in between (what
/// `issue_after` does around the store's `create`).
async fn a_new_session_is_cached_unless_its_stripe_moved<T: Table>() {
    let f = Fixture::<T>::new();
    for (same_stripe, cached) in [(false, true), (true, false)] {
        let (rec, _) = record(Principal::user("bob"), f.clock.now(), STALENESS);
        let started = f.cache.generation(rec.id);
        f.cache.forget(neighbour(rec.id, same_stripe, 1));
        let live = f.cache.insert_live(rec, [0; 32], started);
        assert_eq!(is_live(f.cache.get(live.id, f.now())), cached);
    }
}

/// A refresh of an entry gone stale keeps the activity this node saw.
async fn a_refresh_keeps_the_activity_seen<T: Table>() {
    let f = Fixture::<T>::new();
    let (rec, token) = f.stored().await;
    let Ok(Cached::Valid(first)) = f.load(&token).await else {
        panic!("not live");
    };
    let seen = rec.last_active_at.unix_timestamp() + 20;
    first.record_activity(seen);
    f.clock.advance(STALENESS);
    let Ok(Cached::Valid(second)) = f.load(&token).await else {
        panic!("not live");
    };
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(second.last_seen(), seen);
}

on_every_table!(
    sync: [],
    async: [
        a_load_is_trusted_for_the_staleness_bound,
        revoked_answers_are_kept_until_their_time,
        concurrent_misses_share_one_load,
        a_cancelled_load_leaves_nothing_behind,
        a_cancelled_load_leaves_a_newer_one_in_flight,
        forgets_on_other_stripes_leave_a_load_cached,
        a_forget_on_the_same_stripe_stops_a_load_from_being_cached,
        a_revocation_racing_a_load_wins,
        a_resync_clears_and_stops_loads_in_flight,
        a_new_session_is_cached_unless_its_stripe_moved,
        a_refresh_keeps_the_activity_seen,
    ]
);
