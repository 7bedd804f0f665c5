//! `scale`: how the session layer behaves at size. Prints a Markdown section and writes it
//! into `benches/RESULTS.md` under `## Scale` (replacing that section if present; `RESULTS`
//! overrides the path).
//!
//! 1. Memory of one million cached sessions (MemoryStore + cache, then a second manager's
//!    cache alone over the same store), and the latency of a cache hit with 1 M entries.
//! 2. Store writes (`touch`) per 1000 validations of one session, over 10 simulated minutes
//!    and within one real second.
//! 3. `list_active` and revoke-all (`revoke_many`, scope `All`) of a user with 10 000
//!    sessions, on memory, SQLite (temp file), Redis (`REDIS_URL`) and PostgreSQL
//!    (`DATABASE_URL`). A store that does not answer is skipped with a note.
//!
//! ```text
//! cargo run --release -p session-benches --bin scale
//! cargo run --release -p session-benches --bin scale --features quick-cache
//! ```
//!
//! The cache's table is moka, or quick_cache with the `quick-cache` feature; the section
//! names the one measured. `PARTS` picks the parts to run (default `123`; `PARTS=1` for the
//! memory and latency of 1 M sessions alone).

use std::error::Error;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use session_core::store::{Change, Created, NewSession, RevokeMany};
use session_core::testing::FaultyStore;
use session_core::testing::suite::{fresh_user, now_ms, record_in};
use session_core::token::TOKEN_LEN;
use session_core::{
    Actor, ClientInfo, KeySet, ManualClock, MemoryStore, Principal, RevocationReason, RevokeScope,
    SessionConfig, SessionManager, SessionStore,
};

type BoxError = Box<dyn Error>;

/// Sessions in the cache for part 1.
const SESSIONS: usize = 1_000_000;
/// Sessions of the hot-set comparison.
const HOT_SET: usize = 1000;
/// Calls timed one by one for the latency percentiles.
const SAMPLE: usize = 100_000;
/// Sessions of the one user in part 3.
const USER_SESSIONS: usize = 10_000;
/// Concurrent creates per batch in part 3.
const CHUNK: usize = 200;
/// A typical browser user agent (100 characters).
const USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Sa";
const DAY: Duration = Duration::from_secs(86_400);
/// The table under session-core's cache in this build.
const BACKEND: &str = if cfg!(feature = "quick-cache") {
    "quick_cache"
} else {
    "moka"
};
/// How long a store gets to connect before it is skipped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn main() {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BoxError::from)
        .and_then(|rt| rt.block_on(run()));
    if let Err(e) = result {
        eprintln!("scale: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let started = time::OffsetDateTime::now_utc();
    let mut out = String::new();
    writeln!(out, "## Scale\n")?;
    writeln!(
        out,
        "Written by `cargo run --release -p session-benches --bin scale`; run it again to refresh.\n"
    )?;
    writeln!(
        out,
        "- Date: {}",
        started.format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))?
    )?;
    writeln!(out, "- Machine: {}", machine())?;
    writeln!(out, "- Commit: {}", commit())?;
    writeln!(out, "- Cache table: {BACKEND}")?;
    writeln!(out, "- One current-thread Tokio runtime; release build\n")?;

    let parts = std::env::var("PARTS").unwrap_or_else(|_| "123".to_owned());
    if parts.contains('1') {
        eprintln!("scale: 1. {SESSIONS} cached sessions ({BACKEND}) ...");
        memory_and_latency(&mut out).await?;
    }
    if parts.contains('2') {
        eprintln!("scale: 2. touches ...");
        touches(&mut out).await?;
    }
    if parts.contains('3') {
        eprintln!("scale: 3. list and revoke-all of {USER_SESSIONS} sessions ...");
        list_and_revoke(&mut out).await?;
    }

    print!("{out}");
    write_results(&out)?;
    Ok(())
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[allow(clippy::cast_precision_loss)]
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A fixed permutation of `0..n` (xorshift, Fisher-Yates).
fn shuffled(n: usize, mut seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        #[allow(clippy::cast_possible_truncation)]
        let j = (seed % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

async fn memory_and_latency(out: &mut String) -> Result<(), BoxError> {
    // Cache TTL and touch interval of 1 h: no entry goes stale and no touch is spawned
    // while the 1 M entries are measured (the defaults, 30 s and 60 s, would let the
    // entries issued first expire before the last are checked).
    let config = || {
        SessionConfig::new()
            .with_cache_capacity(2_000_000)
            .with_cache_ttl(Duration::from_secs(3600))
            .with_touch_interval(Duration::from_secs(3600))
            .expect("a touch interval")
    };
    let keys = KeySet::random();
    let store = Arc::new(MemoryStore::new());
    let client = ClientInfo {
        user_agent: Some(USER_AGENT.to_owned()),
        ip: Some("203.0.113.7".to_owned()),
    };
    // The tokens, in one buffer written before the first reading so it is not counted.
    let mut tokens = vec![b'-'; SESSIONS * TOKEN_LEN];

    let first = SessionManager::new(store.clone(), keys.clone(), config())?;
    let before = rss_kib();
    let t = Instant::now();
    for i in 0..SESSIONS {
        let issued = first
            .issue(Principal::user(format!("u{i}")), client.clone())
            .await?;
        tokens[i * TOKEN_LEN..(i + 1) * TOKEN_LEN]
            .copy_from_slice(issued.token.expose().as_bytes());
    }
    let issue_time = t.elapsed();
    let after_issue = rss_kib();

    let second = SessionManager::new(store.clone(), keys, config())?;
    let before_warm = rss_kib();
    let t = Instant::now();
    for i in 0..SESSIONS {
        let tok = &tokens[i * TOKEN_LEN..(i + 1) * TOKEN_LEN];
        second
            .validate(tok)
            .await
            .map_err(|d| format!("warming validate: {d:?}"))?;
    }
    let warm_time = t.elapsed();
    let after_warm = rss_kib();

    let total = after_issue.saturating_sub(before);
    let cache = after_warm.saturating_sub(before_warm);
    #[allow(clippy::cast_precision_loss)]
    let per = |kib: u64| kib as f64 * 1024.0 / SESSIONS as f64;

    // Hit latency with 1 M entries: verify (MAC) + validate_cached, shuffled order.
    let order = shuffled(SESSIONS, 0x9E37_79B9_7F4A_7C15);
    let mut hits = 0usize;
    let t = Instant::now();
    for &i in &order {
        let tok = &tokens[i * TOKEN_LEN..(i + 1) * TOKEN_LEN];
        let verified = second
            .verify(black_box(tok))
            .map_err(|d| format!("{d:?}"))?;
        if let Some(Ok(session)) = second.validate_cached(&verified) {
            hits += 1;
            black_box(session);
        }
    }
    let loop_time = t.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let mean_ns = loop_time.as_nanos() as f64 / SESSIONS as f64;

    // The same loop over a hot set of 1000 sessions, for comparison (cache-resident).
    let hot: Vec<usize> = order.iter().map(|i| i % HOT_SET).collect();
    let mut hot_hits = 0usize;
    let t = Instant::now();
    for &i in &hot {
        let tok = &tokens[i * TOKEN_LEN..(i + 1) * TOKEN_LEN];
        let verified = second
            .verify(black_box(tok))
            .map_err(|d| format!("{d:?}"))?;
        if let Some(Ok(session)) = second.validate_cached(&verified) {
            hot_hits += 1;
            black_box(session);
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let hot_mean_ns = t.elapsed().as_nanos() as f64 / SESSIONS as f64;

    let order = shuffled(SESSIONS, 0xD1B5_4A32_D192_ED03);
    let mut samples: Vec<u64> = Vec::with_capacity(SAMPLE);
    let mut sample_hits = 0usize;
    for &i in order.iter().take(SAMPLE) {
        let tok = &tokens[i * TOKEN_LEN..(i + 1) * TOKEN_LEN];
        let t = Instant::now();
        let verified = second
            .verify(black_box(tok))
            .map_err(|d| format!("{d:?}"))?;
        let answer = second.validate_cached(&verified);
        let ns = t.elapsed().as_nanos();
        if let Some(Ok(session)) = answer {
            sample_hits += 1;
            black_box(session);
        }
        samples.push(u64::try_from(ns).unwrap_or(u64::MAX));
    }
    samples.sort_unstable();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    // The cost of one Instant pair, included in every per-call sample.
    let t = Instant::now();
    for _ in 0..SAMPLE {
        black_box(Instant::now().elapsed());
    }
    #[allow(clippy::cast_precision_loss)]
    let timer_ns = t.elapsed().as_nanos() as f64 / SAMPLE as f64;

    writeln!(
        out,
        "### 1 M cached sessions (MemoryStore, {BACKEND} cache)\n"
    )?;
    writeln!(out, "| measure | value |")?;
    writeln!(out, "| --- | ---: |")?;
    writeln!(
        out,
        "| RSS growth after issuing {SESSIONS} sessions (store copy + cache) | {:.0} MiB ({:.0} B/session) |",
        mib(total),
        per(total)
    )?;
    writeln!(
        out,
        "| RSS growth after a second manager over the same store validated all of them (its cache alone) | {:.0} MiB ({:.0} B/session) |",
        mib(cache),
        per(cache)
    )?;
    writeln!(
        out,
        "| store's share, by difference | {:.0} MiB |",
        mib(total.saturating_sub(cache))
    )?;
    writeln!(
        out,
        "| issue time ({SESSIONS}, one task) | {:.1} s |",
        issue_time.as_secs_f64()
    )?;
    writeln!(
        out,
        "| cache warm-up through `validate` (store load + secret hash) | {:.1} s |",
        warm_time.as_secs_f64()
    )?;
    writeln!(
        out,
        "| hit: `verify` + `validate_cached`, mean over {SESSIONS} shuffled tokens | {mean_ns:.0} ns ({hits} hits) |"
    )?;
    writeln!(
        out,
        "| for comparison, the same {SESSIONS} calls cycling over {HOT_SET} sessions | {hot_mean_ns:.0} ns ({hot_hits} hits) |"
    )?;
    writeln!(
        out,
        "| hit, per-call timing of {SAMPLE}: p50 / p99 | {} / {} ns ({sample_hits} hits; timer pair ≈ {timer_ns:.0} ns included) |",
        pct(50),
        pct(99)
    )?;
    writeln!(
        out,
        "\nConfig: `SessionConfig::new().with_cache_capacity(2_000_000)`, with the cache TTL and \
         touch interval raised to 1 h so no entry goes stale and no touch runs during the \
         measurement. Tokens are kept in one buffer written before the first RSS reading; \
         user agent {} characters, IP `203.0.113.7`, user ids `u0`..`u999999`.\n",
        USER_AGENT.len()
    )?;
    drop(first);
    drop(second);
    Ok(())
}

async fn touches(out: &mut String) -> Result<(), BoxError> {
    // Simulated: 1000 validations, 600 ms apart (10 minutes), touch interval 60 s.
    let store = FaultyStore::new(MemoryStore::new());
    let start = time::OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let clock = ManualClock::new(start);
    let manager = SessionManager::with_clock(
        store.clone(),
        KeySet::random(),
        SessionConfig::new().with_touch_interval(Duration::from_secs(60))?,
        Arc::new(clock.clone()),
    )?;
    let issued = manager
        .issue(Principal::user("touch-user"), ClientInfo::default())
        .await?;
    let token = issued.token.expose().as_bytes().to_vec();
    let mut ok = 0;
    for _ in 0..1000 {
        clock.advance(Duration::from_millis(600));
        if manager.validate(&token).await.is_ok() {
            ok += 1;
        }
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let simulated = store.calls.touch.load(Ordering::SeqCst);
    let simulated_loads = store.calls.load.load(Ordering::SeqCst);

    // Real: 1000 validations within one second, system clock.
    let store = FaultyStore::new(MemoryStore::new());
    let manager = SessionManager::new(
        store.clone(),
        KeySet::random(),
        SessionConfig::new().with_touch_interval(Duration::from_secs(60))?,
    )?;
    let issued = manager
        .issue(Principal::user("touch-user"), ClientInfo::default())
        .await?;
    let token = issued.token.expose().as_bytes().to_vec();
    let mut real_ok = 0;
    let t = Instant::now();
    for i in 0..1000u32 {
        if manager.validate(&token).await.is_ok() {
            real_ok += 1;
        }
        tokio::time::sleep_until((t + Duration::from_micros(999) * i).into()).await;
    }
    let real_time = t.elapsed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let real = store.calls.touch.load(Ordering::SeqCst);
    let real_loads = store.calls.load.load(Ordering::SeqCst);

    writeln!(out, "### Store writes per 1000 requests on one session\n")?;
    writeln!(
        out,
        "| scenario | valid answers | `touch` calls | `load` calls |"
    )?;
    writeln!(out, "| --- | ---: | ---: | ---: |")?;
    writeln!(
        out,
        "| 1000 validations over 10 simulated minutes (ManualClock, +600 ms each), touch interval 60 s | {ok} | {simulated} | {simulated_loads} |"
    )?;
    writeln!(
        out,
        "| 1000 validations within {:.2} real seconds (SystemClock) | {real_ok} | {real} | {real_loads} |",
        real_time.as_secs_f64()
    )?;
    writeln!(
        out,
        "\nCounted by `session_core::testing::FaultyStore` around a MemoryStore. Issuing caches \
         the session; a cached answer is trusted for the staleness bound (30 s by default, by \
         the manager's clock), so the simulated run reloads it once per 30 simulated seconds \
         and the real one never.\n"
    )?;
    Ok(())
}

/// One store's row of part 3.
struct StoreRow {
    create_ms: f64,
    listed: usize,
    list_ms: f64,
    revoked: usize,
    revoke_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn bench_store(store: Arc<dyn SessionStore>) -> Result<StoreRow, BoxError> {
    let user = fresh_user("scale");
    let epoch = store.user_state(&user).await?.epoch;
    let at = now_ms();
    // Ids from the store (Redis places a user's sessions in one shard); no cap, so that
    // all of them live.
    let records: Vec<_> = (0..USER_SESSIONS)
        .map(|_| record_in(&*store, Principal::user(user.clone()), at, DAY).0)
        .collect();
    let t = Instant::now();
    for chunk in records.chunks(CHUNK) {
        let creates = chunk.iter().map(|r| {
            store.create(NewSession {
                record: r,
                expected_epoch: Some(epoch),
                granted_by: None,
                max_user_sessions: None,
                actor: Actor::User,
            })
        });
        for created in join_all(creates).await {
            if !matches!(created?, Created::Created { .. }) {
                return Err("create refused".into());
            }
        }
    }
    let create_ms = ms(t.elapsed());

    let t = Instant::now();
    let listed = store.list_active(&user, now_ms(), usize::MAX).await?.len();
    let list_ms = ms(t.elapsed());

    let t = Instant::now();
    let revoked = store
        .revoke_many(RevokeMany {
            user_id: &user,
            scope: &RevokeScope::All,
            except: None,
            change: Change {
                reason: &RevocationReason::SignedOutEverywhere,
                actor: Actor::User,
                at: now_ms(),
            },
            disable_user: false,
        })
        .await?
        .len();
    let revoke_ms = ms(t.elapsed());
    Ok(StoreRow {
        create_ms,
        listed,
        list_ms,
        revoked,
        revoke_ms,
    })
}

async fn connect<S, F>(what: &str, f: F) -> Result<S, String>
where
    F: std::future::Future<Output = Result<S, session_core::StoreError>>,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, f).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// A store, or why it could not be reached.
type Connected = Result<Arc<dyn SessionStore>, String>;

async fn list_and_revoke(out: &mut String) -> Result<(), BoxError> {
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let pg_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let dir = tempfile::tempdir()?;

    let mut stores: Vec<(&str, Connected)> = Vec::new();
    stores.push(("memory", Ok(Arc::new(MemoryStore::new()))));
    stores.push((
        "sqlite (temp file)",
        connect(
            "sqlite",
            session_sqlite::SqliteStore::open(dir.path().join("scale.db")),
        )
        .await
        .map(|s| Arc::new(s) as Arc<dyn SessionStore>),
    ));
    let prefix = format!("{}:", fresh_user("session-scale").as_str());
    stores.push((
        "redis",
        connect(
            "redis",
            session_redis::RedisStore::with_prefix(&redis_url, &prefix),
        )
        .await
        .map(|s| Arc::new(s) as Arc<dyn SessionStore>),
    ));
    let pg = match connect(
        "postgres",
        session_postgres::PostgresStore::connect(&pg_url),
    )
    .await
    {
        Ok(s) => connect("postgres migrate", s.migrate())
            .await
            .map(|()| Arc::new(s) as Arc<dyn SessionStore>),
        Err(e) => Err(e),
    };
    stores.push(("postgres", pg));

    writeln!(
        out,
        "### One user with {USER_SESSIONS} sessions: list and revoke-all\n"
    )?;
    writeln!(
        out,
        "| store | create {USER_SESSIONS} (batches of {CHUNK}) | `list_active` | `revoke_many(All)` |"
    )?;
    writeln!(out, "| --- | ---: | ---: | ---: |")?;
    let mut notes = Vec::new();
    for (name, store) in stores {
        eprintln!("scale:    {name}");
        let row = match store {
            Ok(store) => bench_store(store).await.map_err(|e| format!("{name}: {e}")),
            Err(e) => Err(e),
        };
        match row {
            Ok(r) => writeln!(
                out,
                "| {name} | {:.0} ms | {} sessions in {:.1} ms | {} sessions in {:.1} ms |",
                r.create_ms, r.listed, r.list_ms, r.revoked, r.revoke_ms
            )?,
            Err(e) => {
                writeln!(out, "| {name} | skipped | skipped | skipped |")?;
                notes.push(e);
            }
        }
    }
    writeln!(
        out,
        "\nRecords built with `session_core::testing::suite::record` (one day to live) for one \
         fresh user, created straight through `SessionStore::create`; times are single calls \
         from this process. Redis: `REDIS_URL` (default `redis://127.0.0.1:6379`), a random key \
         prefix; PostgreSQL: `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), \
         migrated first. The revoked records are left behind (random user ids)."
    )?;
    for note in notes {
        writeln!(out, "\nSkipped: {note}")?;
    }
    Ok(())
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cpus} CPUs, {model}")
}

fn commit() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        // Results files written by an earlier run change nothing that is built or run (as
        // in run.sh).
        Some(head) => match git(&["status", "--porcelain", "--", ".", ":!benches/RESULTS*.md"]) {
            Some(s) if !s.is_empty() => format!("{head} (with uncommitted changes)"),
            _ => head,
        },
        None => "unknown".to_owned(),
    }
}

/// Replaces the `## Scale` section of the results file (up to the next `## ` heading), or
/// appends it.
fn write_results(section: &str) -> Result<(), BoxError> {
    let path = std::env::var("RESULTS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md").to_owned());
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut kept = String::new();
    let mut skipping = false;
    for line in old.lines() {
        if line.trim_end() == "## Scale" {
            skipping = true;
            continue;
        }
        if skipping && line.starts_with("## ") {
            skipping = false;
        }
        if !skipping {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let mut new = kept.trim_end().to_owned();
    if !new.is_empty() {
        new.push_str("\n\n");
    }
    new.push_str(section.trim_end());
    new.push('\n');
    std::fs::write(&path, new)?;
    eprintln!("scale: wrote {path}");
    Ok(())
}
