//! A real store outage under both example apps: a private `redis-server` is frozen
//! (`SIGSTOP`: connections stay open, nothing answers) and thawed. Requests that need the
//! store get 503 with `Retry-After` and keep their cookie; cached sessions are still
//! served; service resumes by itself.
//!
//! Runs when `REDIS_URL` is set (CI), with `redis-server` from the PATH; else skipped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use session_conformance::{App, Framework, Target};

const UA: &str = "outage-test/1.0";
const KEY: &str = "b3V0YWdlLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmctZW5vdWdoIQ";

struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("REDIS_URL is set, so redis-server must be installed");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_store_gives_503_keeps_cookies_and_recovers() {
    if std::env::var("REDIS_URL").map_or(true, |u| u.is_empty()) {
        eprintln!("skipping: REDIS_URL is not set");
        return;
    }
    let redis = Redis::start();
    let envs = [
        ("SESSION_STORE", redis.url.as_str()),
        ("SESSION_KEYS", KEY),
        ("SESSION_CACHE_SECS", "60"),
    ];
    let issuer = App::start(Target::Binary(Framework::Axum), &envs).await;
    let axum = App::start(Target::Binary(Framework::Axum), &envs).await;
    let actix = App::start(Target::Binary(Framework::Actix), &envs).await;
    let mut login = issuer.browser(UA);
    login
        .login("alice", "alice-password")
        .await
        .assert_status(303);
    let token = login.token().expect("cookie").to_owned();

    redis.signal("-STOP");
    for node in [&axum, &actix] {
        let mut browser = node.browser(UA);
        browser.set_token(Some(&token));
        let started = Instant::now();
        let reply = browser.get("/me").await;
        reply.assert_status(503);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "cut off by the deadline"
        );
        assert!(reply.header("retry-after").is_some());
        assert_eq!(
            reply.raw_set_cookies(),
            Vec::<String>::new(),
            "no cookie cleared"
        );
        assert_eq!(reply.json(), json!({"error": "session_store_unavailable"}));
        assert_eq!(browser.token(), Some(token.as_str()));
    }
    // The issuing node has the session cached: still served during the outage.
    let mut cached = issuer.browser(UA);
    cached.set_token(Some(&token));
    cached.get("/me").await.assert_status(200);

    redis.signal("-CONT");
    for node in [&axum, &actix] {
        let mut browser = node.browser(UA);
        let started = Instant::now();
        loop {
            browser.set_token(Some(&token));
            let reply = browser.get("/me").await;
            if reply.status.as_u16() == 200 {
                break;
            }
            reply.assert_status(503);
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "service did not resume"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
