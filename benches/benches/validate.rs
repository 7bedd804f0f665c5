//! Criterion benchmarks of session-core's hot paths: validating a token on a cache hit
//! (sync and async), on a cache miss against `MemoryStore`, verifying a token's MAC, and
//! turning away a forged token.
//!
//! Before criterion runs, the allocations per call of a cache hit and of a forged-token
//! rejection are counted and printed. A single allocation in a forged-token rejection
//! fails the bench, and so does one in a cache hit on quick_cache. On moka, a hit runs
//! moka's housekeeping every 64 reads, and that housekeeping allocates now and then (see
//! session-core's `cache::table::MokaTable`): the bench fails if hits on moka allocate
//! more often than once per 64 calls, which would be an allocation of the hit itself.
//!
//! # moka against quick_cache
//!
//! session-core's cache runs on moka, or on quick_cache with the `quick-cache` feature
//! (this package forwards it). The cache benchmarks carry the backend in their ids
//! (`validate/cache_hit/moka`, `validate/cache_hit/quick_cache`), so two runs, one with
//! the feature and one without, land side by side in criterion's report for the group
//! (`target/criterion/validate/report/index.html`), each with its own baseline:
//!
//! ```text
//! cargo bench -p session-benches --bench validate -- --warm-up-time 1 --measurement-time 3
//! cargo bench -p session-benches --bench validate --features quick-cache -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! # Counting allocations
//!
//! The workspace lints set `unsafe_code = "forbid"`, and `[lints] workspace = true`
//! applies to every target of the package, this bench included. A counting allocator needs
//! an `unsafe impl GlobalAlloc`, and `forbid` cannot be lifted by an inner
//! `#![allow(unsafe_code)]` (E0453); `[lints]` is per package, not per target. So the
//! counting allocator comes from the `stats_alloc` crate: `StatsAlloc<System>` wraps
//! `std::alloc::System` and bumps atomic counters in `alloc`, `alloc_zeroed` and `realloc`.
//! Installing it is a plain `#[global_allocator]` static, with no `unsafe` on our side.
//!
//! Its counters are process-wide. That is exact here: the tokio runtime is current-thread
//! (no worker threads), the cache has no background thread, and criterion has not started yet when the counts are taken, so nothing else
//! allocates while a measured loop runs.

use std::alloc::System;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion};
use session_core::store::PushMessage;
use session_core::token::TOKEN_LEN;
use session_core::{
    ClientInfo, KeySet, MemoryStore, Principal, Refusal, Session, SessionConfig, SessionManager,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::runtime::Runtime;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Calls per allocation measurement.
const CALLS: usize = 10_000;

/// The table under session-core's cache in this build.
const BACKEND: &str = if cfg!(feature = "quick-cache") {
    "quick_cache"
} else {
    "moka"
};

struct Fixture {
    rt: Runtime,
    keys: KeySet,
    manager: SessionManager,
    token: Vec<u8>,
    forged: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let keys = KeySet::new([[7u8; 32]]).expect("32-byte key");
        let manager = SessionManager::new(
            Arc::new(MemoryStore::new()),
            keys.clone(),
            SessionConfig::default(),
        )
        .expect("a valid config");
        let issued = rt
            .block_on(manager.issue(Principal::user("alice"), ClientInfo::default()))
            .expect("issue a session");
        let token = issued.token.expose().as_bytes().to_vec();
        assert_eq!(token.len(), TOKEN_LEN);
        // Flip one character of the MAC (the last characters encode it): the shape is
        // still valid, only the MAC check can refuse it.
        let mut forged = token.clone();
        let i = TOKEN_LEN - 5;
        forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
        Self {
            rt,
            keys,
            manager,
            token,
            forged,
        }
    }

    /// The per-request path of the layer on a hit: MAC check, then the cache alone.
    fn hit(&self) -> Session {
        let verified = self.manager.verify(&self.token).expect("token verifies");
        self.manager
            .validate_cached(&verified)
            .expect("cache hit")
            .expect("valid session")
    }
}

/// Polls a future once with a no-op waker: `validate` completes without awaiting on a hit
/// and on a forged token, so this counts its allocations without a runtime's own.
fn poll_once<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("expected to complete without waiting"),
    }
}

/// Allocations (including reallocations) made by `CALLS` runs of `f`, per call.
fn allocs_per_call(mut f: impl FnMut()) -> (usize, f64) {
    // Warm up first: one-time lazy initialisation is not a per-request cost.
    for _ in 0..100 {
        f();
    }
    let region = Region::new(GLOBAL);
    for _ in 0..CALLS {
        f();
    }
    let change = region.change();
    let total = change.allocations + change.reallocations;
    #[allow(clippy::cast_precision_loss)]
    let per_call = total as f64 / CALLS as f64;
    (total, per_call)
}

fn allocation_report(fx: &Fixture) {
    let report = |what: &str, (total, per_call): (usize, f64)| {
        eprintln!(
            "allocations ({BACKEND}): {what:<44} {total:>6} in {CALLS} calls = {per_call} per call"
        );
        total
    };
    let hit = report(
        "cache hit (verify + validate_cached)",
        allocs_per_call(|| {
            black_box(fx.hit());
        }),
    );
    let hit_async = report(
        "cache hit (validate, polled once)",
        allocs_per_call(|| {
            black_box(poll_once(fx.manager.validate(black_box(&fx.token))).expect("valid"));
        }),
    );
    let forged = report(
        "forged token (SessionManager::verify)",
        allocs_per_call(|| {
            black_box(
                fx.manager
                    .verify(black_box(&fx.forged))
                    .expect_err("forged"),
            );
        }),
    );
    let forged_async = report(
        "forged token (validate, polled once)",
        allocs_per_call(|| {
            let denial = poll_once(fx.manager.validate(black_box(&fx.forged)));
            assert!(matches!(denial, Err(Refusal::Invalid)));
        }),
    );
    // quick_cache: none at all. moka: its housekeeping's, at most one per run (every 64
    // reads), never one per hit.
    let allowed = if cfg!(feature = "quick-cache") {
        0
    } else {
        CALLS / 64
    };
    assert!(
        hit <= allowed,
        "a cache hit (verify + validate_cached) allocated: {hit} in {CALLS} calls"
    );
    assert!(
        hit_async <= allowed,
        "a cache hit (validate) allocated: {hit_async} in {CALLS} calls"
    );
    assert_eq!(forged, 0, "rejecting a forged token allocated");
    assert_eq!(
        forged_async, 0,
        "rejecting a forged token (validate) allocated"
    );
}

fn bench_validate(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("validate");
    g.bench_function(BenchmarkId::new("cache_hit", BACKEND), |b| {
        b.iter(|| fx.hit())
    });
    g.bench_function(BenchmarkId::new("cache_hit_async", BACKEND), |b| {
        b.to_async(&fx.rt)
            .iter(|| async { fx.manager.validate(black_box(&fx.token)).await });
    });
    // A miss on every measured call. A tiny cache (`with_cache_capacity`) does not give
    // one reliably (the cache admits and evicts on its own schedule), so instead the
    // untimed setup applies `Invalidation::Resync`: it moves every lock stripe's generation
    // and empties the cache, so the next `validate` finds no entry and loads the record from
    // the store (in-flight map, load semaphore, timeout, `MemoryStore::load`, insert under
    // the id's lock stripe), exactly as after a push-channel gap.
    // `PerIteration` is required: with larger batches criterion runs every setup of a
    // batch before the routines, so all but the first call of a batch would hit the entry
    // the first one loaded. The price is one `Instant::now()` pair per call in the timing
    // (tens of nanoseconds, small against a miss).
    g.bench_function(BenchmarkId::new("miss_memory_store", BACKEND), |b| {
        b.to_async(&fx.rt).iter_batched(
            || {
                fx.manager
                    .apply_push(&PushMessage::Reconnected)
                    .expect("a resync")
            },
            |()| async { fx.manager.validate(black_box(&fx.token)).await },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

fn bench_token(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("token");
    g.bench_function("verify", |b| {
        b.iter(|| fx.keys.verify(black_box(&fx.token)));
    });
    // `validate` returns at this same check for a forged token, before any lookup.
    g.bench_function("forged", |b| {
        b.iter(|| fx.manager.verify(black_box(&fx.forged)).is_err());
    });
    g.finish();
}

/// A cache hit through the whole gate (cookie found, MAC, cache, transport, expiry), with
/// risk binding off and on: what binding adds to a hit (a classification of the request's
/// `User-Agent`, a hash, a compare).
fn bench_binding(c: &mut Criterion, rt: &Runtime) {
    use session_core::binding::{BindingMode, BindingPolicy};
    use session_core::{Admission, ClientIp, GateCheck, GateMode, SessionGate};
    const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/140.0.0.0 Safari/537.36";
    let mut g = c.benchmark_group("gate_hit");
    for mode in [BindingMode::Off, BindingMode::Report] {
        let config = SessionConfig::default().with_binding(BindingPolicy::new(mode));
        let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), config)
            .expect("a valid config");
        let client = ClientInfo {
            user_agent: Some(UA.into()),
            ip: Some("198.51.100.7".into()),
        };
        let issued = rt
            .block_on(manager.issue(Principal::user("alice"), client))
            .expect("issue a session");
        let gate = SessionGate::new(manager);
        let mut req = http::Request::get("/me")
            .header(
                "cookie",
                format!("__Host-session={}", issued.token.expose()),
            )
            .header("user-agent", UA)
            .body(())
            .expect("a request");
        req.extensions_mut()
            .insert(ClientIp("198.51.100.9".parse().expect("an address")));
        let admitted = |gate: &SessionGate| {
            matches!(
                gate.check(black_box(&req), GateMode::REQUIRED),
                GateCheck::Decided(Admission::Admit(_))
            )
        };
        assert!(admitted(&gate), "a hit, admitted, nothing suspicious");
        let name = match mode {
            BindingMode::Off => "binding_off",
            _ => "binding_on",
        };
        g.bench_function(BenchmarkId::new(name, BACKEND), |b| {
            b.iter(|| admitted(&gate))
        });
    }
    // What binding adds, alone: the request's fingerprint (its network and browser
    // family, hashed), steadier than the difference of the two hits above.
    let policy = BindingPolicy::new(BindingMode::Report);
    let ip: std::net::IpAddr = "198.51.100.9".parse().expect("an address");
    g.bench_function("fingerprint", |b| {
        b.iter(|| policy.fingerprint32(black_box(Some(ip)), black_box(Some(UA.as_bytes()))))
    });
    g.finish();
}

fn main() {
    let fx = Fixture::new();
    // `decide` spawns a background touch (at most once a minute per session) with
    // `tokio::spawn`, which needs a runtime context even on the sync path.
    let _rt = fx.rt.enter();

    // A resync really turns the next lookup into a miss (what `miss_memory_store` relies on).
    fx.manager
        .apply_push(&PushMessage::Reconnected)
        .expect("a resync");
    let verified = fx.manager.verify(&fx.token).expect("token verifies");
    assert!(fx.manager.validate_cached(&verified).is_none());
    fx.rt
        .block_on(fx.manager.validate(&fx.token))
        .expect("reloaded from the store");
    assert!(fx.manager.validate_cached(&verified).is_some());

    allocation_report(&fx);

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    bench_validate(&mut c, &fx);
    bench_token(&mut c, &fx);
    bench_binding(&mut c, &fx.rt);
    c.final_summary();
}
