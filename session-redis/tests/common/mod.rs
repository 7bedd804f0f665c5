//! Shared set-up: the Redis at `REDIS_URL` (or a skip), prefixes of each test's own, and
//! reading back what a store keeps.

#![allow(dead_code)] // each test binary uses its own part

pub mod servers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use session_core::SessionStore;
use session_core::store::PushMessage;
use session_redis::RedisStore;
use tokio::sync::broadcast;

/// `REDIS_URL`, or `None` after saying the tests are skipped.
pub fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            println!("skipping: REDIS_URL is not set");
            None
        }
    }
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("session-redis-test:{}:", uuid::Uuid::new_v4().simple())
}

/// A store on `url` under `prefix`; panics when Redis does not answer.
pub async fn connect(url: &str, prefix: &str) -> RedisStore {
    RedisStore::with_prefix(url, prefix)
        .await
        .unwrap_or_else(|e| panic!("REDIS_URL is set but Redis does not answer: {e}"))
}

/// A plain connection for the test's own commands (no response timeout: a busy machine
/// is no failure); panics when Redis does not answer.
pub async fn raw(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("REDIS_URL is a redis URL")
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await
        .unwrap_or_else(|e| panic!("REDIS_URL is set but Redis does not answer: {e}"))
}

/// The prefix of each store handed to the conformance suite, by the store's address, so
/// the suite's `dump` can find the keys of the store it is given.
static PREFIXES: Mutex<Option<HashMap<usize, (String, String)>>> = Mutex::new(None);

fn address(store: &Arc<dyn SessionStore>) -> usize {
    Arc::as_ptr(store).cast::<()>() as usize
}

/// For `store_suite!`: a store under a fresh prefix, or `None` (skip) without `REDIS_URL`.
pub async fn suite_store() -> Option<Arc<dyn SessionStore>> {
    let url = redis_url()?;
    let prefix = unique_prefix();
    let store: Arc<dyn SessionStore> = Arc::new(connect(&url, &prefix).await);
    PREFIXES
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(address(&store), (url, prefix));
    Some(store)
}

/// For `store_suite!`: every key under the store's prefix, with its value, as text.
pub async fn suite_dump(store: Arc<dyn SessionStore>) -> String {
    let (url, prefix) = PREFIXES
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|known| known.get(&address(&store)).cloned())
        .expect("the store came from suite_store");
    dump(&mut raw(&url).await, &prefix).await
}

/// Every key of the store under `prefix` (they all start with `{PREFIX`)
pub async fn keys(conn: &mut MultiplexedConnection, prefix: &str) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{{{}*", glob_escape(prefix)))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys
}

/// Every key under `prefix`, whatever its type, and its value as text (values that are not
/// UTF-8 as `hex:…`), one key per line.
pub async fn dump(conn: &mut MultiplexedConnection, prefix: &str) -> String {
    let mut out = String::new();
    for key in keys(conn, prefix).await {
        let ty: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(conn)
            .await
            .expect("TYPE");
        let values: Vec<Vec<u8>> = match ty.as_str() {
            "string" => vec![query(conn, redis::cmd("GET").arg(&key)).await],
            "hash" => {
                // Field order is the hash table's: sorted, so that equal hashes read equal.
                let mut pairs: Vec<(Vec<u8>, Vec<u8>)> =
                    query(conn, redis::cmd("HGETALL").arg(&key)).await;
                pairs.sort();
                pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()
            }
            "set" => {
                let mut members: Vec<Vec<u8>> = query(conn, redis::cmd("SMEMBERS").arg(&key)).await;
                members.sort();
                members
            }
            "zset" => {
                query(
                    conn,
                    redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES"),
                )
                .await
            }
            "stream" => {
                let entries: Vec<(Vec<u8>, Vec<Vec<u8>>)> =
                    query(conn, redis::cmd("XRANGE").arg(&key).arg("-").arg("+")).await;
                entries
                    .into_iter()
                    .flat_map(|(id, fields)| std::iter::once(id).chain(fields))
                    .collect()
            }
            "none" => continue, // expired meanwhile
            other => panic!("unexpected key type {other}"),
        };
        out.push_str(&text(&key));
        out.push_str(" (");
        out.push_str(&ty);
        out.push(')');
        for value in values {
            out.push(' ');
            out.push_str(&text(&value));
        }
        out.push('\n');
    }
    out
}

async fn query<T: redis::FromRedisValue>(
    conn: &mut MultiplexedConnection,
    cmd: &mut redis::Cmd,
) -> T {
    cmd.query_async(conn).await.expect("read back a key")
}

fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("hex:{hex}")
        }
    }
}

fn glob_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Deletes every key under `prefix`.
pub async fn clean(conn: &mut MultiplexedConnection, prefix: &str) {
    let keys = keys(conn, prefix).await;
    for batch in keys.chunks(1000) {
        let _: i64 = redis::cmd("UNLINK")
            .arg(batch)
            .query_async(conn)
            .await
            .expect("UNLINK");
    }
}

/// The next push message within `deadline`; panics on timeout or a closed channel.
pub async fn next(rx: &mut broadcast::Receiver<PushMessage>, deadline: Duration) -> PushMessage {
    match tokio::time::timeout(deadline, rx.recv()).await {
        Ok(Ok(msg)) => msg,
        Ok(Err(e)) => panic!("push channel: {e}"),
        Err(_) => panic!("no push message within {deadline:?}"),
    }
}

/// Waits for `want`, skipping anything else; panics after `deadline`.
pub async fn wait_for(
    rx: &mut broadcast::Receiver<PushMessage>,
    want: PushMessage,
    deadline: Duration,
) {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if next(rx, left).await == want {
            return;
        }
    }
}

/// A payload message.
pub fn payload(text: &str) -> PushMessage {
    PushMessage::Payload(Arc::from(text))
}

/// Drops whatever is queued.
pub fn drain(rx: &mut broadcast::Receiver<PushMessage>) {
    while rx.try_recv().is_ok() {}
}

/// Runs every scenario of the conformance suite, one after the other, on one store (for
/// servers a test starts itself, where `store_suite!`'s one store per test would mean one
/// server per scenario).
pub async fn run_suite<F, Fut>(store: Arc<dyn SessionStore>, dump: F)
where
    F: FnOnce(Arc<dyn SessionStore>) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    use session_core::testing::suite;
    macro_rules! each {
        ($($name:ident),* $(,)?) => {
            $(
                let started = std::time::Instant::now();
                suite::$name(store.clone()).await;
                println!("suite: {} ok ({:?})", stringify!($name), started.elapsed());
            )*
        };
    }
    each!(
        create_and_load,
        create_records_the_epoch,
        touch,
        list_active,
        revoke_one,
        revoke_all,
        revoke_all_except,
        revoke_agent,
        revoke_idp_sessions,
        epoch_beats_racing_login,
        grant_needs_a_live_grantor,
        cap_evicts_the_oldest,
        disabled_users_cannot_sign_in,
        revoke_matching,
        expiry_is_reported_once,
        audit_pages_newest_first,
        events_page_oldest_first,
        concurrent_writers_lose_no_event,
        purge_ended_sessions,
        first_use_marks,
        leases,
        cursors,
    );
    suite::no_token_at_rest(store, dump).await;
    println!("suite: no_token_at_rest ok");
}

/// `INFO commandstats`' call count for `command` (lower case), 0 when never called.
pub async fn command_calls(conn: &mut MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    let head = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&head))
        .map_or(0, |rest| {
            rest.split(',')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("a call count")
        })
}
