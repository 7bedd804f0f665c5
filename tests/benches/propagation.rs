//! Revocation propagation across nodes: the time from a revocation returning on node A
//! (`POST /logout` answered) to the first 401 on node B, over two `axum-app` processes on
//! one store, for Redis (`REDIS_URL`) and PostgreSQL (`DATABASE_URL`).
//!
//! Run with `REDIS_URL=redis://127.0.0.1:6379 DATABASE_URL=postgres://postgres@127.0.0.1:5432/test
//! cargo bench -p session-conformance --bench propagation` (`ROUNDS=500` for more).
//! Node B is polled back to back over one keep-alive connection, so a figure includes up
//! to one request's round trip (about 0.1 ms) of polling slack.

use std::time::{Duration, Instant};

use session_conformance::{App, Framework, Target};

const UA: &str = "propagation-bench/1.0";
const KEY: &str = "cHJvcGFnYXRpb24tYmVuY2gta2V5LTMyLWJ5dGVzLWxvbmchIQ";

async fn measure(store: &str, rounds: usize) -> Vec<Duration> {
    let envs = [
        ("SESSION_STORE", store),
        ("SESSION_KEYS", KEY),
        ("SESSION_CACHE_SECS", "600"),
        ("RUST_LOG", "warn"),
    ];
    let a = App::start(Target::Binary(Framework::Axum), &envs).await;
    let b = App::start(Target::Binary(Framework::Axum), &envs).await;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut on_a = a.browser(UA);
        on_a.login("bob", "bob-password").await.assert_status(303);
        let token = on_a.token().expect("cookie").to_owned();
        let mut on_b = b.browser(UA);
        on_b.set_token(Some(&token));
        on_b.get("/me").await.assert_status(200);
        on_a.post("/logout").await.assert_status(303);
        let returned = Instant::now();
        loop {
            on_b.set_token(Some(&token));
            let status = on_b.get("/me").await.status.as_u16();
            if status == 401 {
                samples.push(returned.elapsed());
                break;
            }
            assert_eq!(status, 200);
            assert!(
                returned.elapsed() < Duration::from_secs(10),
                "never refused"
            );
        }
    }
    samples
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    println!("| store | revocations | p50 | p99 | max |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, var) in [("Redis", "REDIS_URL"), ("PostgreSQL", "DATABASE_URL")] {
        let Ok(url) = std::env::var(var) else {
            println!("| {name} | skipped: {var} is not set | | | |");
            continue;
        };
        let mut samples = measure(&url, rounds).await;
        samples.sort();
        println!(
            "| {name} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            samples.len(),
            percentile(&samples, 50.0).as_secs_f64() * 1e3,
            percentile(&samples, 99.0).as_secs_f64() * 1e3,
            samples.last().expect("samples").as_secs_f64() * 1e3,
        );
    }
}
