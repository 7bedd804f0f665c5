//! Figures, not assertions (ignored by default): the latency of `revoke` and of a
//! `revoke_many` of 100 sessions, and `revoke_matching` over 100 000 sessions of 10 000
//! users. Each run works in a schema of its own and drops it.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//! cargo test -p session-postgres --release --test bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! With `BENCH_PGBOUNCER_URL` set (a PgBouncer in transaction mode in front of
//! `DATABASE_URL`'s server), the store's queries go through it
//! (`with_transaction_pooler`), LISTEN and migrations direct.

mod common;

use std::time::{Duration, Instant};

use session_core::store::{Change, RevokeMany, RevokeScope, SessionFilter};
use session_core::testing::suite::now_ms;
use session_core::{Actor, RevocationReason, SessionId, SessionStore, UserId};
use sqlx::{AssertSqlSafe, PgPool};

fn change(reason: &RevocationReason) -> Change<'_> {
    Change {
        reason,
        actor: Actor::Admin,
        at: now_ms(),
    }
}

/// Median and 90th percentile.
fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    format!(
        "median {:?}, p90 {:?} ({} runs)",
        at(0.5),
        at(0.9),
        samples.len()
    )
}

/// `n` user sessions, `per_user` each, of users `PREFIX0…`, inserted in one statement
/// (set-up, not what is measured).
async fn insert_sessions(direct: &PgPool, schema: &str, prefix: &str, n: i64, per_user: i64) {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {schema}.sessions
            (id, secret_hash, user_id, kind, agent_id, agent_name, created_at, last_active_at,
             expires_at, user_agent, ip, ip_key)
         SELECT gen_random_uuid(), sha256(i::text::bytea), $1 || (i / $3),
                CASE WHEN i % 20 = 0 THEN 'agent' ELSE 'user' END,
                CASE WHEN i % 20 = 0 THEN 'bot' END, CASE WHEN i % 20 = 0 THEN 'Bot' END,
                now() - (i % 1000) * interval '1 minute', now(), now() + interval '1 day',
                CASE WHEN i % 100 = 7 THEN 'Mozilla/5.0 EvilBot/1.0' ELSE 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0' END,
                '10.' || ((i >> 16) & 255) || '.' || ((i >> 8) & 255) || '.' || (i & 255),
                '00000000000000000000ffff' || lpad(to_hex((10 << 24) + i), 8, '0')
           FROM generate_series(0, $2 - 1) AS i"
    )))
    .bind(prefix)
    .bind(n)
    .bind(per_user)
    .execute(direct)
    .await
    .unwrap();
    sqlx::query(AssertSqlSafe(format!("ANALYZE {schema}.sessions")))
        .execute(direct)
        .await
        .unwrap();
}

/// The store under measurement: direct, or through the pooler at `BENCH_PGBOUNCER_URL`.
async fn bench_store(url: &str, schema: &str) -> session_postgres::PostgresStore {
    let Ok(pooler) = std::env::var("BENCH_PGBOUNCER_URL") else {
        return common::store_in(url, schema).await;
    };
    println!("through the pooler at {pooler}");
    let store = session_postgres::PostgresStore::builder()
        .with_schema(schema)
        .unwrap()
        .with_transaction_pooler()
        .with_listen_url(url)
        .unwrap()
        .connect(&pooler)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

async fn ids_of(direct: &PgPool, schema: &str, user: &str) -> Vec<SessionId> {
    let rows: Vec<uuid::Uuid> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT id FROM {schema}.sessions WHERE user_id = $1"
    )))
    .bind(user)
    .fetch_all(direct)
    .await
    .unwrap();
    rows.into_iter().map(SessionId::from).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints figures"]
async fn revoke_latency() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::fresh_schema("bench_revoke");
    let store = bench_store(&url, &schema).await;
    let runs = 300;
    // One session per user for `revoke`, 100 per user for `revoke_many`.
    let direct = PgPool::connect(&url).await.unwrap();
    insert_sessions(&direct, &schema, "single", runs + 20, 1).await;
    insert_sessions(&direct, &schema, "many", (runs + 20) * 100, 100).await;
    let reason = RevocationReason::AdminRevoked;
    let mut one = Vec::new();
    for i in 0..runs + 20 {
        let id = ids_of(&direct, &schema, &format!("single{i}")).await[0];
        let started = Instant::now();
        let revoked = store.revoke(id, change(&reason)).await.unwrap();
        let took = started.elapsed();
        assert!(revoked.is_some());
        if i >= 20 {
            one.push(took); // the first 20 warm the pool's prepared statements
        }
    }
    let mut many = Vec::new();
    for i in 0..runs + 20 {
        let user = UserId::new(format!("many{i}"));
        let started = Instant::now();
        let revoked = store
            .revoke_many(RevokeMany {
                user_id: &user,
                scope: &RevokeScope::All,
                except: None,
                change: change(&reason),
                disable_user: false,
            })
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(revoked.len(), 100);
        if i >= 20 {
            many.push(took);
        }
    }
    println!("revoke (one session, with its event): {}", summary(one));
    println!(
        "revoke_many(All) of 100 sessions (epoch, 100 events): {}",
        summary(many)
    );
    common::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints figures"]
async fn revoke_matching_over_100k_sessions() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::fresh_schema("bench_match");
    let store = bench_store(&url, &schema).await;
    let started = Instant::now();
    let direct = PgPool::connect(&url).await.unwrap();
    insert_sessions(&direct, &schema, "m", 100_000, 10).await;
    println!(
        "100 000 sessions of 10 000 users inserted in {:?}",
        started.elapsed()
    );
    let reason = RevocationReason::RiskDetected;
    let ua = SessionFilter {
        user_agent: Some("EvilBot/".into()),
        ..SessionFilter::default()
    };
    let net = SessionFilter {
        ip: Some("10.0.128.0/20".parse().unwrap()),
        ..SessionFilter::default()
    };
    let old_agents = SessionFilter {
        created_before: Some(now_ms() - Duration::from_secs(890 * 60)),
        kind: Some(session_core::SessionKind::Agent),
        ..SessionFilter::default()
    };
    for (name, filter, expected) in [
        ("user agent substring", &ua, 1_000),
        ("network /20", &net, 4_096),
        ("agents created over 15 h ago", &old_agents, 500),
    ] {
        let mut dry = Vec::new();
        for _ in 0..7 {
            let started = Instant::now();
            let m = store
                .revoke_matching(filter, change(&reason), true)
                .await
                .unwrap();
            dry.push(started.elapsed());
            assert_eq!(m.matched, expected, "{name}");
        }
        println!("dry run, {name} ({expected} of 100 000): {}", summary(dry));
    }
    for (name, filter, expected) in [
        ("user agent substring", &ua, 1_000),
        ("network /20", &net, 4_096),
    ] {
        let started = Instant::now();
        let m = store
            .revoke_matching(filter, change(&reason), false)
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(
            m.revoked.len() as u64 == m.matched && m.matched >= expected - 41,
            "{name}: {}",
            m.matched
        );
        println!(
            "revoke, {name}: {} sessions revoked with their events in {took:?}",
            m.revoked.len()
        );
    }
    common::drop_schema(&url, &schema).await;
}
