//! The built `session-admin` binary against real stores.
//!
//! - SQLite, on a temporary file: always.
//! - Redis (`REDIS_URL`): in a database index of its own (the first empty one of 10–15,
//!   claimed with a marker key, flushed afterwards).
//! - PostgreSQL (`DATABASE_URL`): in a database of its own (`CREATE DATABASE`, dropped
//!   afterwards).
//!
//! Without `REDIS_URL` / `DATABASE_URL` those tests print a skip line and pass; set but not
//! answering, they fail.
//!
//! Sessions are seeded through a `SessionManager` in this process; the tests run the
//! commands and check their tables and JSON, the store's state, and the events they
//! logged (actor `admin`). The push tests start a real `axum-app` node on the shared
//! store (`cargo build -p axum-app` first, a no-op when fresh), sign in, revoke with the
//! tool, and time how soon the node refuses the cookie.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use session_admin::connect::{ConnectOptions, StoreUrl};
use session_core::events::AuditQuery;
use session_core::{
    ClientInfo, EventType, KeySet, Principal, RevocationReason, SessionConfig, SessionId,
    SessionManager, SessionStore,
};

const BIN: &str = env!("CARGO_BIN_EXE_session-admin");

/// The deployment's keys in the push tests (the node has them too).
const KEY: &str = "c2Vzc2lvbi1hZG1pbi10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE";
/// Keys of another deployment: a push signed with them is ignored.
const OTHER_KEY: &str = "YW5vdGhlci1kZXBsb3ltZW50LWtleS0zMi1ieXRlcy1sb25nISE";
/// The walk's keys: its pushes (on Redis, channels span databases) mean nothing to the
/// push tests' node.
const WALK_KEY: &str = "d2Fsay10ZXN0LWtleS1vZi0zMi1ieXRlcy1vci1sb25nZXIhISE";

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

// ---------------------------------------------------------------------------------------
// Running the tool

/// What one run printed.
#[derive(Debug)]
struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Exit status 0; returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.status, Some(0), "{self:#?}");
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
        &self.stdout
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }

    /// Exit status 2, one line on stderr starting `error: ` and holding `needle`, nothing
    /// on stdout.
    fn fails_with(&self, needle: &str) {
        assert_eq!(self.status, Some(2), "{self:#?}");
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
        assert_eq!(self.stderr.lines().count(), 1, "one line: {self:#?}");
        assert!(self.stderr.starts_with("error: "), "{self:#?}");
        assert!(self.stderr.contains(needle), "wanted {needle:?}: {self:#?}");
        assert!(self.stdout.is_empty(), "{self:#?}");
    }
}

/// The tool with a clean environment (the contract's variables removed) plus `env`,
/// stdin closed (no terminal).
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for var in ["SESSION_STORE", "SESSION_KEYS", "RUST_LOG", "COLUMNS"] {
        cmd.env_remove(var);
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    cmd
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    Run::from(command(args, env).output().expect("the binary runs"))
}

/// [`run`] off the async workers.
async fn run_async(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = command(args, env);
    tokio::task::spawn_blocking(move || Run::from(cmd.output().expect("the binary runs")))
        .await
        .expect("joined")
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

fn env_or_skip(name: &str, test: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            eprintln!("skipping {test}: {name} is not set");
            None
        }
    }
}

// ---------------------------------------------------------------------------------------
// Stores of the tests' own

/// A store URL of this test's own, and what removes it afterwards.
struct Scratch {
    url: String,
    cleanup: Option<Box<dyn FnOnce() + Send>>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

fn sqlite_scratch() -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    Scratch {
        url: format!("sqlite://{}", path.display()),
        cleanup: None,
        _dir: Some(dir),
    }
}

/// `redis://host:port` of `REDIS_URL` (any database index dropped).
fn redis_base(url: &str) -> String {
    let (scheme, rest) = url.trim_end_matches('/').split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    format!("{scheme}://{authority}")
}

const CLAIM: &str = "session-admin-test:claim";

/// The first empty database of 10–15 on `REDIS_URL`'s server, claimed; flushed when done.
async fn redis_scratch(redis_url: &str) -> Scratch {
    let base = redis_base(redis_url);
    for db in 10..=15 {
        let url = format!("{base}/{db}");
        let client = redis::Client::open(url.as_str()).expect("REDIS_URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("REDIS_URL is set but Redis does not answer");
        let size: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
        if size > 0 {
            continue;
        }
        let claimed: bool = redis::cmd("SET")
            .arg(CLAIM)
            .arg(std::process::id())
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await
            .unwrap()
            .is_some();
        if !claimed {
            continue;
        }
        let flush_url = url.clone();
        return Scratch {
            url,
            cleanup: Some(Box::new(move || {
                if let Ok(client) = redis::Client::open(flush_url.as_str())
                    && let Ok(mut conn) = client.get_connection()
                {
                    let _: redis::RedisResult<()> = redis::cmd("FLUSHDB").query(&mut conn);
                }
            })),
            _dir: None,
        };
    }
    panic!("no empty Redis database among 10-15 on {base}");
}

/// A database of its own on `DATABASE_URL`'s server; dropped when done.
async fn postgres_scratch(database_url: &str) -> Scratch {
    use sqlx::Connection as _;
    let name = format!(
        "session_admin_{}_{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut conn = sqlx::PgConnection::connect(database_url)
        .await
        .expect("DATABASE_URL is set but PostgreSQL does not answer");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    drop(conn);
    let url = with_database(database_url, &name);
    let admin_url = database_url.to_owned();
    Scratch {
        url,
        cleanup: Some(Box::new(move || {
            // Its own runtime: this runs in Drop, maybe on a runtime's thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut conn)
                        .await;
                    }
                });
            })
            .join();
        })),
        _dir: None,
    }
}

/// `url` naming database `name` instead.
fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = head.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn open(url: &str) -> Arc<dyn SessionStore> {
    StoreUrl::parse(url)
        .unwrap()
        .open(ConnectOptions::new().with_timeout(Duration::from_secs(10)))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_shared()
}

fn manager(store: Arc<dyn SessionStore>, key: &str) -> SessionManager {
    SessionManager::new(
        store,
        KeySet::from_base64_list(key).unwrap(),
        SessionConfig::default(),
    )
    .unwrap()
}

fn client(ua: &str, ip: &str) -> ClientInfo {
    ClientInfo {
        user_agent: Some(ua.to_owned()),
        ip: Some(ip.to_owned()),
    }
}

// ---------------------------------------------------------------------------------------
// The walk: every command against one store

struct Seeded {
    alice_firefox: SessionId,
    alice_curl: SessionId,
    alice_agent: SessionId,
    bob: SessionId,
    carol: SessionId,
}

async fn seed(manager: &SessionManager) -> Seeded {
    let issue = async |user: &str, ua: &str, ip: &str| {
        manager
            .issue(Principal::user(user), client(ua, ip))
            .await
            .unwrap()
            .session
    };
    let firefox = issue("alice", FIREFOX, "203.0.113.7").await;
    let curl = issue("alice", "curl/8.5.0", "10.1.2.3").await;
    let agent = manager
        .grant_agent(
            &firefox,
            "agent-1".into(),
            "Build bot".into(),
            client("agent-sdk/1.0", "10.1.2.4"),
        )
        .await
        .unwrap()
        .session;
    let bob = issue(
        "bob",
        "Mozilla/5.0 (Macintosh) Safari/605.1",
        "198.51.100.20",
    )
    .await;
    let carol = issue("carol", FIREFOX, "10.200.0.9").await;
    Seeded {
        alice_firefox: firefox.id(),
        alice_curl: curl.id(),
        alice_agent: agent.id(),
        bob: bob.id(),
        carol: carol.id(),
    }
}

async fn revoked(store: &Arc<dyn SessionStore>, id: SessionId) -> Option<RevocationReason> {
    let record = store.load(id).await.unwrap().expect("the record is there");
    record
        .revocation_reason
        .filter(|_| record.revoked_at.is_some())
}

/// Every command, in order, against the store at `url`.
async fn walk(url: &str) {
    let store = open(url).await;
    let m = manager(store.clone(), WALK_KEY);
    let s = seed(&m).await;
    let read = [("SESSION_STORE", url)];
    let write = [("SESSION_STORE", url), ("SESSION_KEYS", WALK_KEY)];

    // sessions list: a table for people…
    let listed = run_async(&["sessions", "list", "--user", "alice"], &read).await;
    let lines: Vec<&str> = listed.ok().lines().collect();
    assert_eq!(lines.len(), 4, "header and three sessions: {listed:#?}");
    let header = lines[0];
    for column in [
        "ID",
        "USER",
        "KIND",
        "AGENT",
        "IP",
        "USER AGENT",
        "CREATED (UTC)",
        "LAST ACTIVE (UTC)",
    ] {
        assert!(header.contains(column), "{header}");
    }
    // Newest first; columns aligned.
    assert!(
        lines[1].starts_with(&s.alice_agent.to_string()),
        "{listed:#?}"
    );
    assert!(
        lines[3].starts_with(&s.alice_firefox.to_string()),
        "{listed:#?}"
    );
    let user_at = header.find("USER").unwrap();
    let ip_at = header.find("IP").unwrap();
    for line in &lines[1..] {
        assert_eq!(line.find("alice"), Some(user_at), "{line}");
    }
    assert_eq!(lines[1].find("10.1.2.4"), Some(ip_at));
    assert!(lines[1].contains("agent") && lines[1].contains("Build bot"));
    assert!(
        lines[3].contains(FIREFOX),
        "not cut without a width: {}",
        lines[3]
    );
    assert!(!listed.stdout.contains(&s.bob.to_string()));

    // … cut to fit the width…
    let narrow = run_async(
        &["sessions", "list", "--user", "alice"],
        &[("SESSION_STORE", url), ("COLUMNS", "140")],
    )
    .await;
    for line in narrow.ok().lines() {
        assert!(line.chars().count() <= 140, "{line}");
    }
    assert!(
        narrow.stdout.contains("Mozilla/5.0 (X11") && !narrow.stdout.contains(FIREFOX),
        "the user agent is cut to fit: {narrow:#?}"
    );
    assert!(narrow.stdout.contains('…'));

    // … and JSON for scripts.
    let json = run_async(&["sessions", "list", "--user", "alice", "--json"], &read)
        .await
        .json();
    let sessions = json.as_array().expect("an array");
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions[0]["id"], s.alice_agent.to_string());
    assert_eq!(sessions[0]["kind"], "agent");
    assert_eq!(sessions[0]["agent_id"], "agent-1");
    assert_eq!(sessions[0]["agent_name"], "Build bot");
    assert_eq!(sessions[2]["user_agent"], FIREFOX);
    assert_eq!(sessions[2]["ip"], "203.0.113.7");
    assert_eq!(sessions[2]["user_id"], "alice");
    assert_eq!(sessions[2]["agent_name"], Value::Null);
    for key in ["created_at", "last_active_at", "expires_at"] {
        let t = sessions[1][key].as_str().unwrap();
        assert!(t.ends_with('Z') && t.contains('T'), "{key}: {t}");
    }
    let empty = run_async(&["sessions", "list", "--user", "nobody"], &read).await;
    assert_eq!(empty.ok(), "No live sessions for nobody.\n");

    // sessions revoke: keys first.
    let id = s.alice_curl.to_string();
    run_async(&["sessions", "revoke", &id], &read)
        .await
        .fails_with("SESSION_KEYS");
    assert_eq!(revoked(&store, s.alice_curl).await, None, "nothing revoked");
    let done = run_async(&["sessions", "revoke", &id], &write).await;
    assert_eq!(
        done.ok(),
        format!("Revoked session {id} (reason admin_revoked).\n")
    );
    assert_eq!(
        revoked(&store, s.alice_curl).await,
        Some(RevocationReason::AdminRevoked)
    );
    let again = run_async(&["sessions", "revoke", &id], &write).await;
    assert_eq!(again.status, Some(1), "{again:#?}");
    assert!(again.stdout.contains("not active"), "{again:#?}");
    let unknown = SessionId::random().to_string();
    let unknown = run_async(&["sessions", "revoke", &unknown, "--json"], &write).await;
    assert_eq!(unknown.status, Some(1), "{unknown:#?}");
    assert_eq!(
        serde_json::from_str::<Value>(&unknown.stdout).unwrap()["revoked"],
        false
    );

    // sessions revoke-matching: a dry run counts (no keys needed), then it revokes.
    let dry = run_async(
        &[
            "sessions",
            "revoke-matching",
            "--ip",
            "10.0.0.0/8",
            "--dry-run",
            "--json",
        ],
        &read,
    )
    .await
    .json();
    assert_eq!(
        dry,
        serde_json::json!({ "dry_run": true, "matched": 2, "revoked": 0 }),
        "alice's agent and carol (alice's curl session is revoked already)"
    );
    assert_eq!(revoked(&store, s.carol).await, None);
    let users_only = run_async(
        &[
            "sessions",
            "revoke-matching",
            "--ip",
            "10.0.0.0/8",
            "--kind",
            "user",
            "--json",
        ],
        &write,
    )
    .await
    .json();
    assert_eq!(
        users_only,
        serde_json::json!({ "dry_run": false, "matched": 1, "revoked": 1 })
    );
    assert_eq!(
        revoked(&store, s.carol).await,
        Some(RevocationReason::RiskDetected)
    );
    assert_eq!(revoked(&store, s.alice_agent).await, None, "agents spared");
    let future = "2100-01-01T00:00:00Z";
    let by_ua = run_async(
        &[
            "sessions",
            "revoke-matching",
            "--user-agent",
            "Firefox/128",
            "--created-before",
            future,
            "--reason",
            "incident_42",
        ],
        &write,
    )
    .await;
    assert_eq!(by_ua.ok(), "Revoked 1 session (reason incident_42).\n");
    assert_eq!(
        revoked(&store, s.alice_firefox).await,
        Some(RevocationReason::Other("incident_42".into()))
    );
    let none_yet = run_async(
        &[
            "sessions",
            "revoke-matching",
            "--created-before",
            "2000-01-01",
            "--dry-run",
        ],
        &read,
    )
    .await;
    assert_eq!(
        none_yet.ok(),
        "0 active sessions match; nothing revoked (dry run).\n"
    );

    // sessions revoke-all.
    let all = run_async(
        &["sessions", "revoke-all", "--user", "alice", "--json"],
        &write,
    )
    .await
    .json();
    assert_eq!(all, serde_json::json!({ "user_id": "alice", "revoked": 1 }));
    assert_eq!(
        revoked(&store, s.alice_agent).await,
        Some(RevocationReason::AdminRevoked)
    );

    // events tail: the log with its cursor.
    let tail = run_async(&["events", "tail", "--json"], &read).await.json();
    let events = tail["data"].as_array().unwrap();
    assert_eq!(events.len(), 9, "5 created, 4 revoked: {tail:#}");
    assert_eq!(tail["next_cursor"], events[8]["id"]);
    let revocations: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "session.revoked")
        .collect();
    assert_eq!(revocations.len(), 4);
    assert!(
        revocations.iter().all(|e| e["actor"] == "admin"),
        "{tail:#}"
    );
    let reasons: Vec<&str> = revocations
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "admin_revoked",
            "risk_detected",
            "incident_42",
            "admin_revoked"
        ]
    );
    let last_two = run_async(
        &["events", "tail", "--type", "session.revoked", "-n", "2"],
        &read,
    )
    .await;
    let rows: Vec<&str> = last_two.ok().lines().collect();
    assert_eq!(rows.len(), 3, "{last_two:#?}");
    assert!(rows[0].starts_with("EVENT") && rows[0].contains("ACTOR"));
    assert!(rows[1].contains("incident_42") && rows[1].contains(&s.alice_firefox.to_string()));
    assert!(rows[2].contains("admin_revoked") && rows[2].trim_end().ends_with("admin"));
    let cursor = events[4]["id"].as_str().unwrap();
    let after = run_async(&["events", "tail", "--after", cursor, "--json"], &read)
        .await
        .json();
    assert_eq!(after["data"].as_array().unwrap(), &events[5..]);
    let two = run_async(
        &["events", "tail", "--after", cursor, "-n", "2", "--json"],
        &read,
    )
    .await
    .json();
    assert_eq!(two["data"].as_array().unwrap(), &events[5..7]);
    assert_eq!(two["next_cursor"], events[6]["id"]);

    // audit: newest first, paged.
    let page = run_async(
        &["audit", "--user", "alice", "--limit", "4", "--json"],
        &read,
    )
    .await
    .json();
    let first = page["data"].as_array().unwrap();
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|e| e["user_id"] == "alice"));
    assert_eq!(first[0]["session_id"], s.alice_agent.to_string());
    assert_eq!(first[0]["reason"], "admin_revoked");
    let next = page["next_cursor"].as_str().unwrap();
    assert_eq!(next, first[3]["id"]);
    let rest = run_async(
        &["audit", "--user", "alice", "--before", next, "--json"],
        &read,
    )
    .await
    .json();
    let rest = rest["data"].as_array().unwrap();
    assert_eq!(rest.len(), 2, "alice has 6 events");
    assert!(rest.iter().all(|e| e["type"] == "session.created"));
    let table = run_async(&["audit", "--user", "alice", "--limit", "2"], &read).await;
    assert_eq!(table.ok().lines().count(), 3);
    assert!(
        table.stderr.contains("Older events: --before"),
        "{table:#?}"
    );

    // sign-out-everyone: refused without a terminal or --yes, then one operation.
    run_async(&["sign-out-everyone"], &write)
        .await
        .fails_with("--yes");
    assert_eq!(revoked(&store, s.bob).await, None);
    let everyone = run_async(&["sign-out-everyone", "--yes", "--json"], &write)
        .await
        .json();
    assert_eq!(everyone, serde_json::json!({ "revoked": 1 }));
    assert_eq!(
        revoked(&store, s.bob).await,
        Some(RevocationReason::AdminRevoked)
    );
    let bob = store
        .audit(&AuditQuery {
            user_id: "bob".into(),
            before: None,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(bob[0].event_type, EventType::Revoked);
    assert_eq!(bob[0].actor, session_core::Actor::Admin);
    let again = run_async(&["sign-out-everyone", "--yes"], &write).await;
    assert_eq!(
        again.ok(),
        "Signed everyone out: revoked 0 sessions (reason admin_revoked).\n"
    );

    // purge: every record has ended; with no retention they go, the events stay.
    let purged = run_async(&["purge", "--keep-sessions", "0", "--json"], &read)
        .await
        .json();
    assert_eq!(purged["events"], 0, "{purged}");
    assert!(purged["sessions"].as_u64().is_some(), "{purged}");
    let kept = run_async(&["purge"], &read).await;
    assert!(kept.ok().starts_with("Purged "), "{kept:#?}");
    let tail = run_async(&["events", "tail", "-n", "100", "--json"], &read)
        .await
        .json();
    assert_eq!(
        tail["data"].as_array().unwrap().len(),
        10,
        "events are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_on_sqlite() {
    let scratch = sqlite_scratch();
    walk(&scratch.url).await;
    // Every record ended: with no retention, purge deleted them all.
    let store = open(&scratch.url).await;
    let events = store
        .events(&session_core::events::EventQuery {
            after: None,
            limit: 100,
            event_type: None,
        })
        .await
        .unwrap();
    for e in events {
        assert!(store.load(e.session_id).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_on_redis() {
    let Some(url) = env_or_skip("REDIS_URL", "every_command_on_redis") else {
        return;
    };
    let scratch = redis_scratch(&url).await;
    walk(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_on_postgres() {
    let Some(url) = env_or_skip("DATABASE_URL", "every_command_on_postgres") else {
        return;
    };
    let scratch = postgres_scratch(&url).await;
    walk(&scratch.url).await;
}

// ---------------------------------------------------------------------------------------
// Following the log

fn read_line_within(reader: &mpsc::Receiver<String>, within: Duration) -> String {
    reader
        .recv_timeout(within)
        .unwrap_or_else(|_| panic!("no line within {within:?}"))
}

fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn wait_within(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > within {
            let _ = child.kill();
            panic!("still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_prints_new_events_as_json_lines_until_ctrl_c() {
    let scratch = sqlite_scratch();
    let store = open(&scratch.url).await;
    let m = manager(store, WALK_KEY);
    m.issue(Principal::user("alice"), client("ua", "192.0.2.1"))
        .await
        .unwrap();
    let mut child = command(
        &[
            "events",
            "tail",
            "--follow",
            "--json",
            "--interval",
            "0.1",
            "--type",
            "created",
        ],
        &[("SESSION_STORE", &scratch.url)],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let lines = lines_of(&mut child);
    let first: Value = serde_json::from_str(&read_line_within(&lines, Duration::from_secs(10)))
        .expect("a JSON line");
    assert_eq!(first["user_id"], "alice");
    let bob = m
        .issue(Principal::user("bob"), ClientInfo::default())
        .await
        .unwrap();
    m.revoke(
        bob.session.id(),
        RevocationReason::SignedOut,
        session_core::Actor::User,
    )
    .await
    .unwrap();
    let second: Value = serde_json::from_str(&read_line_within(&lines, Duration::from_secs(5)))
        .expect("a JSON line");
    assert_eq!(second["session_id"], bob.session.id().to_string());
    assert_eq!(second["type"], "session.created", "--type holds");
    // Ctrl-C ends it, cleanly.
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    let status = wait_within(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.is_empty(), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_tool_quietly() {
    let scratch = sqlite_scratch();
    let store = open(&scratch.url).await;
    let m = manager(store, WALK_KEY);
    let mut child = command(
        &["events", "tail", "--follow", "--interval", "0.1"],
        &[("SESSION_STORE", &scratch.url)],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let lines = lines_of(&mut child);
    let header = read_line_within(&lines, Duration::from_secs(10));
    assert!(header.starts_with("EVENT"), "{header}");
    drop(lines); // the reader thread ends at the next line, closing the pipe
    for _ in 0..3 {
        m.issue(Principal::user("alice"), ClientInfo::default())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let status = tokio::task::block_in_place(|| wait_within(&mut child, Duration::from_secs(10)));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

// ---------------------------------------------------------------------------------------
// Errors: one line, status 2, no panic, no secret

#[test]
fn a_bad_url_is_one_line_and_status_2() {
    run(&["sessions", "list", "--user", "a"], &[]).fails_with("no store");
    run(
        &[
            "--store",
            "mysql://root:pw-in-url@db/app",
            "sessions",
            "list",
            "--user",
            "a",
        ],
        &[],
    )
    .fails_with("unknown store kind \"mysql\"");
    let bad = run(
        &["sessions", "list", "--user", "a"],
        &[("SESSION_STORE", "127.0.0.1:6379")],
    );
    bad.fails_with("not a store URL");
    // The tool cannot use `memory`: it does not suggest it.
    assert!(!bad.stderr.contains("memory"), "{bad:#?}");
    run(&["--store", "sqlite://", "purge"], &[]).fails_with("path is missing");
    run(
        &["--store", "sqlite:///no/such/dir/sessions.db", "purge"],
        &[],
    )
    .fails_with("no such file");
    run(&["--store", "memory", "purge"], &[]).fails_with("inside each app process");
    // A driver that cannot parse the rest of the URL.
    run(
        &[
            "--store",
            "postgres://u:hunter2@[::1/db",
            "purge",
            "--timeout",
            "3",
        ],
        &[],
    )
    .fails_with("cannot open postgres://u:***@");
    let not_sqlite = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        not_sqlite.path(),
        b"this is not a database, it is plain text....",
    )
    .unwrap();
    let url = format!("sqlite://{}", not_sqlite.path().display());
    run(&["--store", &url, "purge"], &[]).fails_with("cannot open sqlite://");
}

#[test]
fn a_store_that_does_not_answer_is_one_line_and_status_2() {
    let port = closed_port();
    for url in [
        format!("redis://:hunter2@127.0.0.1:{port}/3"),
        format!("postgres://postgres:hunter2@127.0.0.1:{port}/app"),
    ] {
        let started = Instant::now();
        let r = run(
            &[
                "--store",
                &url,
                "--timeout",
                "2",
                "sessions",
                "list",
                "--user",
                "a",
            ],
            &[],
        );
        r.fails_with("cannot open ");
        assert!(r.stderr.contains(":***@127.0.0.1"), "{r:#?}");
        assert!(!r.stderr.contains("hunter2"), "{r:#?}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{url}: {:?}",
            started.elapsed()
        );
    }
    // A server that accepts and never answers: the timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    run(&["--store", &url, "--timeout", "1", "purge"], &[]).fails_with("cannot open redis://");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn bad_values_are_refused_before_connecting() {
    // The store would not answer: each refusal comes first.
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let env = [("SESSION_STORE", url.as_str()), ("SESSION_KEYS", KEY)];
    let cases: [(&[&str], &str); 9] = [
        (
            &["sessions", "revoke-matching", "--ip", "10.0.0.0/33"],
            "--ip \"10.0.0.0/33\": not an IP address or CIDR network",
        ),
        (&["sessions", "revoke-matching", "--ip", "intranet"], "--ip"),
        (
            &[
                "sessions",
                "revoke-matching",
                "--created-before",
                "last tuesday",
            ],
            "--created-before \"last tuesday\"",
        ),
        (
            &[
                "sessions",
                "revoke-matching",
                "--created-before",
                "2026-02-30",
            ],
            "--created-before",
        ),
        (&["sessions", "revoke-matching"], "at least one of"),
        (&["sessions", "revoke-matching", "--kind", "bot"], "--kind"),
        (&["sessions", "revoke", "not-a-uuid"], "not a session id"),
        (&["events", "tail", "--type", "session.login"], "--type"),
        (&["--timeout", "0", "purge"], "--timeout"),
    ];
    for (args, says) in cases {
        run(args, &env).fails_with(says);
    }
    run(
        &["purge"],
        &[("SESSION_STORE", &url), ("SESSION_KEYS", KEY)],
    )
    .fails_with("cannot open redis://");
}

#[test]
fn revoking_without_keys_is_refused() {
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let env = [("SESSION_STORE", url.as_str())];
    let id = SessionId::random().to_string();
    let revoking: [&[&str]; 5] = [
        &["sessions", "revoke", &id],
        &["sessions", "revoke-all", "--user", "alice"],
        &["sessions", "revoke-matching", "--ip", "10.0.0.0/8"],
        &["sign-out-everyone", "--yes"],
        &["sign-out-everyone"],
    ];
    for args in revoking {
        run(args, &env).fails_with("SESSION_KEYS");
    }
    // Keys that do not parse: named, never shown.
    let short = "c2hvcnQta2V5";
    let r = run(
        &["sessions", "revoke", &id],
        &[("SESSION_STORE", &url), ("SESSION_KEYS", short)],
    );
    r.fails_with("SESSION_KEYS: session key is 9 bytes");
    assert!(!r.stderr.contains(short));
}

#[test]
fn sign_out_everyone_without_a_terminal_asks_for_yes() {
    let scratch = sqlite_scratch();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(open(&scratch.url));
    let m = rt.block_on(async { manager(store.clone(), KEY) });
    let id = rt
        .block_on(m.issue(Principal::user("alice"), ClientInfo::default()))
        .unwrap()
        .session
        .id();
    let env = [
        ("SESSION_STORE", scratch.url.as_str()),
        ("SESSION_KEYS", KEY),
    ];
    run(&["sign-out-everyone"], &env).fails_with("run it on a terminal to confirm, or pass --yes");
    // Piped input is no terminal either.
    let piped = command(&["sign-out-everyone"], &env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    piped.stdin.as_ref().unwrap().write_all(b"yes\n").ok();
    Run::from(piped.wait_with_output().unwrap()).fails_with("--yes");
    let record = rt.block_on(store.load(id)).unwrap().unwrap();
    assert!(record.revoked_at.is_none(), "nothing revoked");
}

/// On a terminal (a pseudo-terminal from `script`), it asks, and only `yes` goes on.
#[test]
fn sign_out_everyone_asks_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping sign_out_everyone_asks_on_a_terminal: no `script` to make a terminal");
        return;
    }
    let scratch = sqlite_scratch();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(open(&scratch.url));
    let m = rt.block_on(async { manager(store.clone(), KEY) });
    for _ in 0..2 {
        rt.block_on(m.issue(Principal::user("alice"), ClientInfo::default()))
            .unwrap();
    }
    let on_terminal = |answer: &str| {
        let mut child = Command::new("script")
            .args(["-qec", &format!("{BIN} sign-out-everyone"), "/dev/null"])
            .env("SESSION_STORE", &scratch.url)
            .env("SESSION_KEYS", KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Answer once the question is up.
        std::thread::sleep(Duration::from_millis(1500));
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (status, text) = on_terminal("no");
    assert_eq!(status, Some(1), "{text}");
    assert!(text.contains("2 active sessions now"), "{text}");
    assert!(text.contains("Aborted: nothing revoked."), "{text}");
    let (status, text) = on_terminal("yes");
    assert_eq!(status, Some(0), "{text}");
    assert!(
        text.contains("Signed everyone out: revoked 2 sessions"),
        "{text}"
    );
}

#[test]
fn help_reads_well_and_shows_no_secret() {
    let env = [
        ("SESSION_STORE", "postgres://admin:hunter2@db/app"),
        ("SESSION_KEYS", KEY),
    ];
    let help = run(&["--help"], &env);
    let text = help.ok();
    for word in [
        "sessions",
        "sign-out-everyone",
        "events",
        "audit",
        "purge",
        "--store <URL>",
        "--keys <KEYS>",
        "--json",
        "--timeout <SECS>",
        "SESSION_STORE",
        "SESSION_KEYS",
        "Examples:",
    ] {
        assert!(text.contains(word), "{word}: {text}");
    }
    assert!(!text.contains("hunter2") && !text.contains(KEY), "{text}");
    let sub = run(&["sessions", "revoke-matching", "--help"], &env);
    for word in [
        "--created-before <TIME>",
        "--ip <CIDR>",
        "--user-agent <TEXT>",
        "--kind <KIND>",
        "--dry-run",
    ] {
        assert!(sub.ok().contains(word), "{word}: {sub:#?}");
    }
    assert!(!sub.stdout.contains("hunter2") && !sub.stdout.contains(KEY));
    // A usage mistake is clap's, with status 2.
    let r = run(&["sessions", "frobnicate"], &[]);
    assert_eq!(r.status, Some(2));
    assert!(!r.stderr.contains("panicked"));
}

// ---------------------------------------------------------------------------------------
// The push: a real node drops what the tool revokes

/// `cargo build -p axum-app` (a no-op when fresh), once per test process; its path.
fn axum_app() -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap();
    if dir.ends_with("deps") {
        dir = dir.parent().unwrap();
    }
    let binary = dir.join(format!("axum-app{}", std::env::consts::EXE_SUFFIX));
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !*built {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace).args(["build", "-p", "axum-app"]);
        match dir.file_name().and_then(|p| p.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(other) => {
                cmd.args(["--profile", other]);
            }
        }
        if let Some(target) = dir.parent() {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "cargo build -p axum-app failed");
        *built = true;
    }
    assert!(binary.is_file(), "no {}", binary.display());
    binary
}

/// A running `axum-app`, killed when dropped.
struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(store: &str) -> Self {
        let mut child = Command::new(axum_app())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SESSION_STORE", store)
            .env("SESSION_KEYS", KEY)
            .env("PORT", "0")
            .env("SESSION_COOKIE_SECURE", "false")
            // Far longer than the deadline: a refusal in time is the push, not expiry.
            .env("SESSION_CACHE_SECS", "120")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("axum-app starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the node says where it listens");
        Self {
            child,
            addr: addr.parse().unwrap(),
        }
    }

    /// Signs alice in; her session cookie's value.
    fn login(&self) -> String {
        let reply = http(
            self.addr,
            "POST",
            "/login",
            None,
            Some("username=alice&password=alice-password"),
        );
        assert_eq!(reply.status, 303, "{}", reply.body);
        reply
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
            .find_map(|(_, v)| v.strip_prefix("session="))
            .and_then(|v| v.split(';').next())
            .filter(|v| !v.is_empty())
            .expect("a session cookie")
            .to_owned()
    }

    fn me(&self, cookie: &str) -> Reply {
        http(self.addr, "GET", "/me", Some(cookie), None)
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// One HTTP/1.1 exchange on a fresh connection.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("the node accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if let Some(cookie) = cookie {
        request.push_str(&format!("Cookie: session={cookie}\r\n"));
    }
    if let Some(form) = form {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// When the node first refused the cookie as revoked, polled every 2 ms from another
/// thread, from now until `deadline`.
struct Watch {
    refused: mpsc::Receiver<(Instant, SystemTime)>,
}

impl Watch {
    fn start(node: &Node, cookie: &str, deadline: Duration) -> Self {
        let (addr, cookie) = (node.addr, cookie.to_owned());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < deadline {
                let reply = http(addr, "GET", "/me", Some(&cookie), None);
                if reply.status == 401 {
                    assert!(reply.body.contains("session_revoked"), "{}", reply.body);
                    let _ = tx.send((Instant::now(), SystemTime::now()));
                    return;
                }
                assert_eq!(reply.status, 200, "{}", reply.body);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Self { refused: rx }
    }

    fn refused_at(&self, within: Duration) -> Option<(Instant, SystemTime)> {
        self.refused.recv_timeout(within).ok()
    }
}

/// The revocation event the store logged for `session`: its time, as a `SystemTime`.
async fn revoked_at(store: &Arc<dyn SessionStore>, session: &str) -> SystemTime {
    let events = store
        .audit(&AuditQuery {
            user_id: "alice".into(),
            before: None,
            limit: 50,
        })
        .await
        .unwrap();
    let event = events
        .iter()
        .find(|e| e.event_type == EventType::Revoked && e.session_id.to_string() == session)
        .expect("the revocation's event");
    assert_eq!(event.actor, session_core::Actor::Admin);
    let nanos = event.occurred_at.unix_timestamp_nanos();
    SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap())
}

const DEADLINE: Duration = Duration::from_millis(100);

/// Signs in on a node, revokes with the tool, and checks that the node refused the cookie
/// within 100 ms of the revocation landing in the store (seen by polling the store every
/// 2 ms while the tool runs) and of the tool's exit. The tool's own start and store write
/// are not counted: on a loaded machine they take what they take; the push is what is
/// timed.
async fn revoked_in_time(node: &Node, store: &Arc<dyn SessionStore>, url: &str, args: &[&str]) {
    let cookie = tokio::task::block_in_place(|| node.login());
    let me = tokio::task::block_in_place(|| node.me(&cookie));
    assert_eq!(me.status, 200, "{}", me.body);
    let session: Value = serde_json::from_str(&me.body).unwrap();
    let session = session["session_id"].as_str().unwrap().to_owned();
    let id: SessionId = session.parse().unwrap();
    let watch = Watch::start(node, &cookie, Duration::from_secs(60));
    let mut full: Vec<&str> = args.to_vec();
    if full.last() == Some(&"ID") {
        full.pop();
        full.push(&session);
    }
    let landed = async {
        let started = Instant::now();
        loop {
            let record = store.load(id).await.unwrap().expect("the record");
            if record.revoked_at.is_some() {
                return Instant::now();
            }
            assert!(started.elapsed() < Duration::from_secs(60), "never revoked");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let env = [("SESSION_STORE", url), ("SESSION_KEYS", KEY)];
    let (tool, landed) = tokio::join!(run_async(&full, &env), landed);
    tool.ok();
    let exited = Instant::now();
    let (refused, refused_wall) =
        tokio::task::block_in_place(|| watch.refused_at(Duration::from_secs(10)))
            .expect("the node refuses the revoked session");
    let after_landing = refused.saturating_duration_since(landed);
    assert!(
        after_landing <= DEADLINE,
        "{args:?}: the node still accepted the session {after_landing:?} after the revocation landed in the store"
    );
    let after_exit = refused.saturating_duration_since(exited);
    assert!(
        after_exit <= DEADLINE,
        "{args:?}: the node still accepted the session {after_exit:?} after the tool exited"
    );
    let event = revoked_at(store, &session).await;
    let since_event = refused_wall.duration_since(event).unwrap_or_default();
    eprintln!(
        "{} {args:?}: refused {after_landing:?} after the revocation landed ({since_event:?} after its event's time)",
        StoreUrl::parse(url).unwrap().kind()
    );
}

async fn push_reaches_a_running_node(url: &str) {
    let store = open(url).await;
    let node = tokio::task::block_in_place(|| Node::start(url));
    // Let the node's push listener settle.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Signed with another deployment's keys, the push is ignored: the node keeps serving
    // the session it cached (until its staleness bound).
    let cookie = tokio::task::block_in_place(|| node.login());
    let me = tokio::task::block_in_place(|| node.me(&cookie));
    let id: Value = serde_json::from_str(&me.body).unwrap();
    let id = id["session_id"].as_str().unwrap().to_owned();
    run_async(
        &["sessions", "revoke", &id],
        &[("SESSION_STORE", url), ("SESSION_KEYS", OTHER_KEY)],
    )
    .await
    .ok();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = tokio::task::block_in_place(|| node.me(&cookie));
    assert_eq!(still.status, 200, "a push under other keys is not believed");

    // With the deployment's keys: one session, then everyone.
    revoked_in_time(&node, &store, url, &["sessions", "revoke", "ID"]).await;
    revoked_in_time(
        &node,
        &store,
        url,
        &["sessions", "revoke-all", "--user", "alice"],
    )
    .await;
    revoked_in_time(
        &node,
        &store,
        url,
        &[
            "sessions",
            "revoke-matching",
            "--ip",
            "127.0.0.1",
            "--kind",
            "user",
        ],
    )
    .await;
    revoked_in_time(&node, &store, url, &["sign-out-everyone", "--yes"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_drops_what_the_tool_revokes_redis() {
    let Some(url) = env_or_skip(
        "REDIS_URL",
        "a_running_node_drops_what_the_tool_revokes_redis",
    ) else {
        return;
    };
    let scratch = redis_scratch(&url).await;
    push_reaches_a_running_node(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_drops_what_the_tool_revokes_postgres() {
    let Some(url) = env_or_skip(
        "DATABASE_URL",
        "a_running_node_drops_what_the_tool_revokes_postgres",
    ) else {
        return;
    };
    let scratch = postgres_scratch(&url).await;
    push_reaches_a_running_node(&scratch.url).await;
}

/// `keys generate` needs no store: a fresh key each time, that the apps take as
/// `SESSION_KEYS`.
#[test]
fn keys_generate_prints_a_key_the_apps_accept() {
    let first = run(&["keys", "generate"], &[]).ok().trim().to_owned();
    let second = run(&["keys", "generate"], &[]).ok().trim().to_owned();
    assert_ne!(first, second);
    for key in [&first, &second] {
        assert_eq!(key.len(), 43, "{key}");
        session_core::KeySet::from_base64_list(key).expect("a usable key");
    }
    let json = run(&["--json", "keys", "generate"], &[]).json();
    let key = json["key"].as_str().expect("{\"key\": …}");
    session_core::KeySet::from_base64_list(key).expect("a usable key");
}
