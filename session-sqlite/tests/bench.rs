//! Figures, not assertions of speed: run with
//! `cargo test -p session-sqlite --release --test bench -- --ignored --nocapture --test-threads 1`.
//!
//! On a temporary file (WAL, `synchronous = FULL`, as `SqliteStore::open` sets it):
//! - one `revoke`, and one `revoke_many` of a user's 100 sessions: median and 90th
//!   percentile of a few hundred;
//! - `revoke_matching` on 100,000 sessions of 10,000 users, dry run and real, by user
//!   agent, network and age.
//!
//! The sessions are seeded with plain INSERTs in one transaction (the store's `create`
//! commits, and so syncs, once per session): the rows are the ones `create` writes.
//!
//! # Figures (2026-12-07, the 2-core VM shared with other builds, load average about 8)
//!
//! The machine was busy throughout, so medians moved between runs; the ranges are over
//! five or six runs, the minimum is the steadiest figure. "Before" is this crate at the
//! commit before store trait v2 (no event log: one autocommit `UPDATE … RETURNING`), with
//! this benchmark adapted to its API and seeding.
//!
//! | operation | before: median, min | after: median, min |
//! | --- | --- | --- |
//! | `revoke`, one session | 0.31–0.46 ms (outliers 2–4), 0.23–0.33 ms | 0.40–0.64 ms (one 1.08), 0.27–0.39 ms |
//! | `revoke_many`, 100 sessions | 1.15–1.54 ms (outliers 3.7–4.0), 0.77–1.08 ms | 2.7–5.0 ms (one 8.0), 1.57–1.93 ms |
//!
//! After: `BEGIN IMMEDIATE`, the `UPDATE … RETURNING`, one `INSERT … SELECT` of the
//! events, `COMMIT` (still one sync of the WAL). `revoke_many` of 100 writes 100 event rows
//! and their three index entries each: that is the doubling.
//!
//! `revoke_matching` on 100,000 sessions of 10,000 users (three runs):
//!
//! | filter | matched | dry run | revocation, with events |
//! | --- | --- | --- | --- |
//! | user agent contains a marker (1 in 10) | 10,000 | 33–63 ms | 460–550 ms |
//! | ip in 10.0.0.0/16 | 58,982 | 24–43 ms | 1.6–2.0 s |
//! | created more than 20 hours ago, user sessions (the rest) | about 25,200 | 49–60 ms | 0.63–1.13 s |

use std::time::{Duration, Instant};

use session_core::store::{Change, IpRange, RevokeMany, ip_key};
use session_core::{
    Actor, RevocationReason, RevokeScope, SessionFilter, SessionId, SessionStore, UserId,
};
use session_sqlite::SqliteStore;
use time::OffsetDateTime;

const HOUR_NS: i64 = 3_600_000_000_000;

/// Seeds `users` users of `per_user` user sessions each, created over the last `users *
/// per_user` seconds; one session in ten has a marked user agent; IPs spread over
/// 10.0.0.0/8. Returns the session ids, user by user.
async fn seed(store: &SqliteStore, users: usize, per_user: usize) -> Vec<(UserId, Vec<SessionId>)> {
    let now = i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    let mut out = Vec::with_capacity(users);
    let mut n = 0u32;
    for u in 0..users {
        let user = UserId::new(format!("bench-user-{u:06}"));
        let mut ids = Vec::with_capacity(per_user);
        for _ in 0..per_user {
            n += 1;
            let id = SessionId::random();
            let ip = format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
            let ua = if n.is_multiple_of(10) {
                "Mozilla/5.0 (X11; Linux x86_64) CompromisedExtension/2.1 Firefox/140.0"
            } else {
                "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0"
            };
            let created = now - i64::from(n) * 1_000_000_000;
            sqlx::query(
                "INSERT INTO sessions (id, secret_hash, user_id, kind, created_at, \
                 last_active_at, expires_at, user_agent, ip, ip_key) \
                 VALUES (?1, randomblob(32), ?2, 'user', ?3, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(id.to_string())
            .bind(user.as_str())
            .bind(created)
            .bind(now + 24 * HOUR_NS)
            .bind(ua)
            .bind(&ip)
            .bind(ip_key(&ip))
            .execute(&mut *tx)
            .await
            .unwrap();
            ids.push(id);
        }
        out.push((user, ids));
    }
    tx.commit().await.unwrap();
    out
}

fn change(reason: &RevocationReason) -> Change<'_> {
    Change {
        reason,
        actor: Actor::Admin,
        at: OffsetDateTime::now_utc(),
    }
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "{what}: median {:.3} ms, p90 {:.3} ms, min {:.3} ms ({} runs)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by hand, with --release"]
async fn revoke_latency() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = SqliteStore::open(dir.path().join("bench.db"))
        .await
        .unwrap();
    let reason = RevocationReason::SignedOut;
    // One revoke: 300 sessions of 300 users.
    let one = seed(&store, 300, 1).await;
    let mut times = Vec::new();
    for (_, ids) in &one {
        let start = Instant::now();
        let done = store.revoke(ids[0], change(&reason)).await.unwrap();
        times.push(start.elapsed());
        assert!(done.is_some());
    }
    report("revoke (one session)", times);
    // revoke_many: 300 users of 100 sessions.
    let many = seed(&store, 300, 100).await;
    let mut times = Vec::new();
    for (user, _) in &many {
        let start = Instant::now();
        let done = store
            .revoke_many(RevokeMany {
                user_id: user,
                scope: &RevokeScope::All,
                except: None,
                change: change(&reason),
                disable_user: false,
            })
            .await
            .unwrap();
        times.push(start.elapsed());
        assert_eq!(done.len(), 100);
    }
    report("revoke_many (100 sessions)", times);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by hand, with --release"]
async fn revoke_matching_on_100k_sessions() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = SqliteStore::open(dir.path().join("bench.db"))
        .await
        .unwrap();
    let start = Instant::now();
    seed(&store, 10_000, 10).await;
    println!(
        "seeded 100,000 sessions of 10,000 users in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let reason = RevocationReason::RiskDetected;
    let net: IpRange = "10.0.0.0/16".parse().unwrap();
    let cases = [
        (
            "user agent contains \"CompromisedExtension/\"",
            SessionFilter {
                user_agent: Some("CompromisedExtension/".into()),
                ..SessionFilter::default()
            },
        ),
        (
            "ip in 10.0.0.0/16",
            SessionFilter {
                ip: Some(net),
                ..SessionFilter::default()
            },
        ),
        (
            "created more than 20 hours ago, user sessions",
            SessionFilter {
                created_before: Some(OffsetDateTime::now_utc() - Duration::from_secs(20 * 3600)),
                kind: Some(session_core::SessionKind::User),
                ..SessionFilter::default()
            },
        ),
    ];
    for (what, filter) in &cases {
        let start = Instant::now();
        let dry = store
            .revoke_matching(filter, change(&reason), true)
            .await
            .unwrap();
        let dry_time = start.elapsed();
        let start = Instant::now();
        let done = store
            .revoke_matching(filter, change(&reason), false)
            .await
            .unwrap();
        let real_time = start.elapsed();
        assert_eq!(done.matched, dry.matched);
        assert_eq!(done.revoked.len() as u64, done.matched);
        println!(
            "revoke_matching, {what}: {} matched; dry run {:.1} ms, revocation {:.1} ms",
            dry.matched,
            dry_time.as_secs_f64() * 1e3,
            real_time.as_secs_f64() * 1e3
        );
    }
    store.close().await;
}
