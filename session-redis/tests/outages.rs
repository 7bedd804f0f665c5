//! Outages: a connection that stalls (calls time out, never hang, and work again after), and
//! a Redis restart (the subscriber says it may have missed messages and keeps receiving;
//! scripts are reloaded).
//! Skipped when `REDIS_URL` is unset; the restart test also needs `redis-server` on the
//! `PATH` (it restarts a private server, never the shared one).

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use session_core::store::PushMessage;
use session_core::testing::suite::{create, fresh_user, now_ms, record_in};
use session_core::{Principal, SessionId, SessionStore, StoreError};
use session_redis::RedisStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::{payload, redis_url, unique_prefix, wait_for};

/// A TCP proxy that can stall: while paused, bytes wait (as on a congested or partitioned
/// link), none are lost.
struct Proxy {
    addr: SocketAddr,
    paused: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let paused = Arc::new(AtomicBool::new(false));
        let flag = paused.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(&target).await else {
                    continue;
                };
                let (in_r, in_w) = inbound.into_split();
                let (out_r, out_w) = outbound.into_split();
                tokio::spawn(pump(in_r, out_w, flag.clone()));
                tokio::spawn(pump(out_r, in_w, flag.clone()));
            }
        });
        Self { addr, paused }
    }

    fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    paused: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        while paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// `url` with its host and port replaced.
fn via(url: &str, addr: SocketAddr) -> String {
    let mut url = redis::parse_redis_url(url).expect("REDIS_URL is a redis:// URL");
    url.set_host(Some(&addr.ip().to_string())).unwrap();
    url.set_port(Some(addr.port())).unwrap();
    url.to_string()
}

fn target(url: &str) -> Option<String> {
    let url = redis::parse_redis_url(url)?;
    if url.scheme() != "redis" {
        return None;
    }
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port().unwrap_or(6379)
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_times_out_and_recovers() {
    let Some(url) = redis_url() else { return };
    let Some(target) = target(&url) else {
        println!("skipping: REDIS_URL is not a redis:// TCP URL");
        return;
    };
    let proxy = Proxy::start(target).await;
    let limit = Duration::from_millis(500);
    let store = RedisStore::builder(via(&url, proxy.addr))
        .with_prefix(unique_prefix())
        .with_command_timeout(limit)
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|e| panic!("REDIS_URL is set but Redis does not answer: {e}"));
    let user = fresh_user("stall");
    let (rec, _) = record_in(
        &store,
        Principal::user(user.clone()),
        now_ms(),
        Duration::from_secs(600),
    );
    create(&store, &rec).await;

    proxy.set_paused(true);
    let started = Instant::now();
    assert!(matches!(store.load(rec.id).await, Err(StoreError::Timeout)));
    assert!(matches!(
        store.user_state(&user).await,
        Err(StoreError::Timeout)
    ));
    let took = started.elapsed();
    assert!(
        took < limit * 2 + Duration::from_millis(500),
        "two calls took {took:?}"
    );

    // The late replies to the abandoned calls are not mistaken for the next call's.
    proxy.set_paused(false);
    assert_eq!(store.load(rec.id).await.unwrap(), Some(rec));
    assert_eq!(store.user_state(&user).await.unwrap().epoch, 0);
}

/// A `redis-server` of the test's own on `port`, stopped (SIGKILL) on drop.
struct Server(Child);

impl Server {
    fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Self(child))
    }

    async fn wait_ready(url: &str) {
        let client = redis::Client::open(url).unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < until,
                "the private redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriber_survives_a_redis_restart() {
    if redis_url().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(server) = Server::start(port) else {
        println!("skipping: redis-server is not on the PATH");
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    Server::wait_ready(&url).await;
    let prefix = unique_prefix();
    let a = common::connect(&url, &prefix).await;
    let b = common::connect(&url, &prefix).await;
    let mut rx = b.push_messages().unwrap();

    drop(server);
    // Long enough for the reconnection attempts to run out (the case the health check
    // covers); RESTART_OUTAGE_SECS=30 to try a longer one.
    let outage: u64 = std::env::var("RESTART_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    tokio::time::sleep(Duration::from_secs(outage)).await;
    assert!(a.load(SessionId::random()).await.is_err(), "Redis is down");
    let _server = Server::start(port).expect("redis-server starts again");
    Server::wait_ready(&url).await;

    let back = Instant::now();
    let deadline = Duration::from_secs(20);
    wait_for(&mut rx, PushMessage::Reconnected, deadline).await;
    println!(
        "reconnected {:?} after Redis came back from a {outage} s outage",
        back.elapsed()
    );
    // A's command connection comes back too, and reloads the scripts Redis forgot.
    let user = fresh_user("restart");
    let (rec, _) = record_in(
        &a,
        Principal::user(user),
        now_ms(),
        Duration::from_secs(600),
    );
    let until = Instant::now() + deadline;
    loop {
        let new = session_core::store::NewSession {
            record: &rec,
            expected_epoch: Some(0),
            granted_by: None,
            max_user_sessions: None,
            actor: session_core::Actor::User,
        };
        match a.create(new).await {
            Ok(_) => break,
            Err(e) if Instant::now() < until => {
                println!("after the restart: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store did not come back: {e}"),
        }
    }
    assert_eq!(b.load(rec.id).await.unwrap(), Some(rec.clone()));
    a.publish("after the restart").await.unwrap();
    wait_for(&mut rx, payload("after the restart"), deadline).await;
}
