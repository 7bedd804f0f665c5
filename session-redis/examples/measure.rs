//! Run with `cargo run --release -p session-redis --example measure`.
//!
//! How long the Redis store's scripts block Redis, measured on a private `redis-server`
//! (started on a free port, persistence off): `INFO commandstats` gives each command's
//! calls and total time in the server, and the slow log (`slowlog-log-slower-than 500`
//! µs) the longest ones. Their durations are the time the server spent in the command,
//! during which it served nobody else. (Not a slow log of every command: Redis 7 logs the
//! commands a script calls too, which would make every script slower than it is.)
//!
//! 1. `revoke_matching` over 100 000 sessions of 10 000 users (16 shards: one script per
//!    shard): a dry run, a filter that takes a tenth, and one that takes them all.
//! 2. A user at the cap (100 sessions) with 400 agents: `list_active` (no script: one
//!    `ZRANGE` and pipelined `HMGET`s) and `revoke_many` of all 500 (one script).
//! 3. Round trips as a caller sees them: one `revoke`, and one `revoke_many` of 100
//!    sessions, median of 300 each.
//!
//! `MEASURE_SESSIONS` / `MEASURE_USERS` scale part 1 down for a quick look.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::store::{Change, RevokeMany, RevokeScope, SessionFilter};
use session_core::testing::suite::{create, now_ms, record_in};
use session_core::{Actor, Principal, RevocationReason, SessionStore, UserId};
use session_redis::RedisStore;

const DAY: Duration = Duration::from_secs(86_400);

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // `MEASURE_NICE=-10` runs the server ahead of a busy machine's other work, so that its
    // slow log measures the scripts rather than the scheduler.
    let nice = std::env::var("MEASURE_NICE").unwrap_or_else(|_| "0".into());
    let _server = Server(
        Command::new("nice")
            .args(["-n", &nice, "redis-server"])
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .args([
                "--slowlog-log-slower-than",
                "500",
                "--slowlog-max-len",
                "100000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?,
    );
    let url = format!("redis://127.0.0.1:{port}");
    let store = Arc::new(loop {
        match RedisStore::with_prefix(&url, "measure:").await {
            Ok(store) => break store,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    });
    let mut conn = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await?;
    let server: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await?;
    let version = server
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?");
    println!(
        "redis-server {version} on 127.0.0.1:{port}, {} shards",
        store.shards()
    );

    let sessions: usize = env("MEASURE_SESSIONS", 100_000);
    let users: usize = env("MEASURE_USERS", 10_000);
    println!("\n1. revoke_matching over {sessions} sessions of {users} users");
    let started = Instant::now();
    fill(&store, sessions, users).await?;
    println!("   created in {:.1?}", started.elapsed());
    let reason = RevocationReason::RiskDetected;
    let change = || Change {
        reason: &reason,
        actor: Actor::Admin,
        at: now_ms(),
    };
    for (label, filter, dry) in [
        ("dry run, a tenth match", tenth(), true),
        ("a tenth revoked", tenth(), false),
        ("dry run, all match", all(), true),
        ("all revoked", all(), false),
    ] {
        reset(&mut conn).await?;
        let started = Instant::now();
        let done = match store.revoke_matching(&filter, change(), dry).await {
            Ok(done) => done,
            Err(e) => return Err(format!("{label}: {e} after {:?}", started.elapsed()).into()),
        };
        let took = started.elapsed();
        let (calls, usec) = stats(&mut conn, "evalsha").await?;
        let longest = slowlog(&mut conn, "EVALSHA")
            .await?
            .into_iter()
            .max()
            .unwrap_or(0);
        println!(
            "   {label}: matched {}, revoked {}, {took:.1?} in all; {calls} scripts, {usec} µs in Redis, mean {} µs, longest {longest} µs",
            done.matched,
            done.revoked.len(),
            usec / calls.max(1),
        );
    }

    println!("\n2. a user with 100 sessions and 400 agents");
    let user = UserId::from("measure-heavy");
    heavy(&store, &user).await?;
    reset(&mut conn).await?;
    let started = Instant::now();
    let listed = store.list_active(&user, now_ms(), 500).await?;
    let took = started.elapsed();
    let (zrange, zrange_usec) = stats(&mut conn, "zrange").await?;
    let (hmget, hmget_usec) = stats(&mut conn, "hmget").await?;
    let longest = slowlog(&mut conn, "").await?.into_iter().max().unwrap_or(0);
    println!(
        "   list_active: {} sessions, {took:.1?}; {zrange} ZRANGE ({zrange_usec} µs) and {hmget} HMGET ({hmget_usec} µs) in Redis, none over 500 µs: {}",
        listed.len(),
        longest == 0
    );
    reset(&mut conn).await?;
    let started = Instant::now();
    let revoked = store
        .revoke_many(RevokeMany {
            user_id: &user,
            scope: &RevokeScope::All,
            except: None,
            change: change(),
            disable_user: false,
        })
        .await?;
    let took = started.elapsed();
    let (calls, usec) = stats(&mut conn, "evalsha").await?;
    println!(
        "   revoke_many: {} sessions, {took:.1?}; {calls} script of {usec} µs in Redis",
        revoked.len(),
    );

    println!("\n3. round trips, median of 300");
    let mut one = Vec::new();
    for i in 0..300 {
        let user = UserId::from(format!("measure-one-{i}"));
        let (rec, _) = record_in(&*store, Principal::user(user), now_ms(), DAY);
        create(&*store, &rec).await;
        let started = Instant::now();
        store.revoke(rec.id, change()).await?.ok_or("not revoked")?;
        one.push(started.elapsed());
    }
    let mut many = Vec::new();
    for i in 0..300 {
        let user = UserId::from(format!("measure-many-{i}"));
        for _ in 0..100 {
            let (rec, _) = record_in(&*store, Principal::user(user.clone()), now_ms(), DAY);
            create(&*store, &rec).await;
        }
        let started = Instant::now();
        let revoked = store
            .revoke_many(RevokeMany {
                user_id: &user,
                scope: &RevokeScope::All,
                except: None,
                change: change(),
                disable_user: false,
            })
            .await?;
        many.push(started.elapsed());
        assert_eq!(revoked.len(), 100);
    }
    one.sort();
    many.sort();
    println!(
        "   revoke: median {} µs (p90 {} µs); revoke_many of 100: median {} µs (p90 {} µs)",
        one[150].as_micros(),
        one[270].as_micros(),
        many[150].as_micros(),
        many[270].as_micros()
    );
    Ok(())
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tenth() -> SessionFilter {
    SessionFilter {
        user_agent: Some("Firefox/140.0 tenth".into()),
        ..SessionFilter::default()
    }
}

fn all() -> SessionFilter {
    SessionFilter {
        ip: Some("198.51.100.0/24".parse().expect("a network")),
        ..SessionFilter::default()
    }
}

/// `sessions` sessions spread over `users` users, a tenth of them with a marked user agent.
async fn fill(store: &Arc<RedisStore>, sessions: usize, users: usize) -> Result<(), Error> {
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 32;
    for w in 0..workers {
        let store = store.clone();
        tasks.spawn(async move {
            for i in (w..sessions).step_by(workers) {
                let user = UserId::from(format!("measure-user-{}", i % users));
                let (mut rec, _) = record_in(&*store, Principal::user(user), now_ms(), DAY);
                rec.ip = Some(format!("198.51.100.{}", i % 250));
                rec.user_agent = Some(if i % 10 == 0 {
                    "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0 tenth".into()
                } else {
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 15_5) AppleWebKit/605.1.15 Safari/605.1.15".into()
                });
                let epoch = store.user_state(rec.user_id()).await.expect("epoch").epoch;
                store
                    .create(session_core::store::NewSession {
                        record: &rec,
                        expected_epoch: Some(epoch),
                        granted_by: None,
                        max_user_sessions: None,
                        actor: Actor::User,
                    })
                    .await
                    .expect("create");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?;
    }
    Ok(())
}

/// 100 user sessions and 400 agents of one user.
async fn heavy(store: &Arc<RedisStore>, user: &UserId) -> Result<(), Error> {
    for i in 0..500 {
        let principal = if i < 100 {
            Principal::user(user.clone())
        } else {
            Principal::agent(user.clone(), format!("agent-{i}"), format!("Agent {i}"))
        };
        let (rec, _) = record_in(&**store, principal, now_ms(), DAY);
        create(&**store, &rec).await;
    }
    Ok(())
}

async fn reset(conn: &mut redis::aio::MultiplexedConnection) -> Result<(), Error> {
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(conn).await?;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await?;
    Ok(())
}

/// `INFO commandstats`' calls and total µs of `command` (lower case).
async fn stats(
    conn: &mut redis::aio::MultiplexedConnection,
    command: &str,
) -> Result<(u64, u64), Error> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    let head = format!("cmdstat_{command}:");
    let Some(line) = info.lines().find_map(|l| l.strip_prefix(&head)) else {
        return Ok((0, 0));
    };
    let field = |name: &str| -> u64 {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("calls="), field("usec=")))
}

/// The durations (µs) of the slow log's entries for `command` (all but `SLOWLOG` itself
/// for `""`), oldest first.
async fn slowlog(
    conn: &mut redis::aio::MultiplexedConnection,
    command: &str,
) -> Result<Vec<u64>, Error> {
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(100_000)
        .query_async(conn)
        .await?;
    let mut out = Vec::new();
    for entry in entries {
        let redis::Value::Array(fields) = entry else {
            continue;
        };
        let micros: u64 = redis::from_redis_value(fields[2].clone())?;
        let args: Vec<String> = redis::from_redis_value(fields[3].clone())?;
        let name = args.first().map(|a| a.to_uppercase()).unwrap_or_default();
        if (command.is_empty() && name != "SLOWLOG") || name == command {
            out.push(micros);
        }
    }
    out.reverse();
    Ok(out)
}
