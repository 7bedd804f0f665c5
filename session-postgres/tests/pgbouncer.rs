//! PostgreSQL behind PgBouncer in transaction mode: queries through the pooler, LISTEN and
//! migrations through a direct connection. The test starts `pgbouncer` itself on a free
//! port, in front of `DATABASE_URL`'s server; without the binary it prints why and passes,
//! unless `PGBOUNCER_TESTS=1` (then it fails). The whole conformance suite runs through it,
//! then two nodes share sessions, revocations and push through it.

mod common;

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use session_core::{
    Actor, ClientInfo, KeySet, Principal, Refusal, RevocationReason, SessionConfig, SessionManager,
    SessionStore,
};
use session_postgres::PostgresStore;
use sqlx::postgres::PgConnectOptions;

/// The schema the suite uses through the pooler (kept between runs, as the default one).
const SUITE_SCHEMA: &str = "t_pgbouncer_suite";

/// A running PgBouncer, in transaction mode, with a watchdog that stops it when this test
/// process ends (statics are never dropped).
struct Bouncer {
    /// `postgres://USER@127.0.0.1:PORT/DB`.
    url: String,
    /// The server's own URL (`DATABASE_URL`).
    direct: String,
    _watchdog: Child,
}

fn find_pgbouncer() -> Option<String> {
    [
        "/usr/sbin/pgbouncer",
        "/usr/bin/pgbouncer",
        "/usr/local/bin/pgbouncer",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .map(str::to_owned)
}

/// The bouncer, started once per test binary; `None` (after saying why) to skip.
fn bouncer() -> Option<&'static Bouncer> {
    static BOUNCER: OnceLock<Option<Bouncer>> = OnceLock::new();
    BOUNCER.get_or_init(start).as_ref()
}

fn start() -> Option<Bouncer> {
    let direct = common::database_url()?;
    let Some(binary) = find_pgbouncer() else {
        assert!(
            std::env::var("PGBOUNCER_TESTS").as_deref() != Ok("1"),
            "PGBOUNCER_TESTS=1 but pgbouncer is not installed (apt-get install -y pgbouncer)"
        );
        println!("skipping: pgbouncer is not installed (apt-get install -y pgbouncer)");
        return None;
    };
    let options: PgConnectOptions = direct.parse().expect("DATABASE_URL parses");
    let (host, port) = (options.get_host().to_owned(), options.get_port());
    let user = options.get_username().to_owned();
    let db = options.get_database().unwrap_or(&user).to_owned();
    let listen_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("session-pg-bouncer-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("pgbouncer.ini");
    let users = dir.join("users.txt");
    // A small server pool, so that clients really share server connections.
    let ini = format!(
        "[databases]
{db} = host={host} port={port} dbname={db}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {users}
pool_mode = transaction
default_pool_size = 3
max_client_conn = 2000
ignore_startup_parameters = extra_float_digits
",
        users = users.display()
    );
    std::fs::write(&config, ini).unwrap();
    std::fs::write(&users, format!("\"{user}\" \"\"\n")).unwrap();
    // PgBouncer refuses to run as root: it drops to the server's account.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let run_as = if root { "-u postgres" } else { "" };
    // The watchdog shell starts pgbouncer and stops it once this process is gone.
    let script = format!(
        "{binary} {run_as} {config} 2>>{log} & child=$!; \
         while kill -0 {me} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; \
         kill $child 2>/dev/null",
        config = config.display(),
        log = dir.join("pgbouncer.log").display(),
        me = std::process::id(),
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .spawn()
        .expect("sh");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", listen_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "pgbouncer did not start: {}",
            std::fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::io::stdout().flush();
    Some(Bouncer {
        url: format!("postgres://{user}@127.0.0.1:{listen_port}/{db}"),
        direct,
        _watchdog: watchdog,
    })
}

/// A store whose queries go through the bouncer and whose LISTEN and migrations go direct.
async fn pooled_store(bouncer: &Bouncer, schema: &str) -> PostgresStore {
    let store = PostgresStore::builder()
        .with_schema(schema)
        .unwrap()
        .with_transaction_pooler()
        .with_listen_url(&bouncer.direct)
        .unwrap()
        .connect(&bouncer.url)
        .await
        .expect("connect through pgbouncer");
    store.migrate().await.expect("migrate (direct)");
    store
}

mod suite_through_pgbouncer {
    use super::*;

    async fn dump(_store: Arc<dyn SessionStore>) -> String {
        let url = common::database_url().expect("DATABASE_URL");
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        let mut out = String::new();
        for table in [
            "sessions",
            "users",
            "events",
            "first_use",
            "leases",
            "cursors",
        ] {
            let sql = format!("SELECT row_to_json(t)::text FROM {SUITE_SCHEMA}.{table} t");
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .expect("dump");
            for row in rows {
                out.push_str(&row);
                out.push('\n');
            }
        }
        pool.close().await;
        out
    }

    session_core::store_suite!(
        async {
            match bouncer() {
                Some(b) => {
                    Some(Arc::new(pooled_store(b, SUITE_SCHEMA).await) as Arc<dyn SessionStore>)
                }
                None => None,
            }
        },
        dump = dump
    );
}

/// The bouncer is strict: a store that neither skips the `options` startup parameter nor
/// keeps its statements in transactions does not work through it (so the suite above
/// passing says something).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_store_fails_through_the_bouncer() {
    let Some(b) = bouncer() else {
        return;
    };
    let err = PostgresStore::connect(&b.url).await.unwrap_err();
    println!("plain connect through pgbouncer: {err}");
    assert!(err.to_string().contains("options"), "{err}");
    // Without the startup parameter, but with sqlx's prepared statements: concurrent
    // clients' statements collide on the shared server connections.
    pooled_store(b, SUITE_SCHEMA).await; // the schema exists
    let pool = PostgresStore::pool_options().connect(&b.url).await.unwrap();
    let plain = PostgresStore::builder()
        .with_schema(SUITE_SCHEMA)
        .unwrap()
        .with_listen_url(&b.direct)
        .unwrap()
        .build(pool);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let plain = plain.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for _ in 0..10 {
                let user = session_core::testing::suite::fresh_user("plain");
                if let Err(e) = plain.user_state(&user).await {
                    errors.push(e.to_string());
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for task in tasks {
        errors.extend(task.await.unwrap());
    }
    println!(
        "plain store through pgbouncer: {} of 160 calls failed, e.g. {:?}",
        errors.len(),
        errors.first()
    );
    assert!(
        errors.iter().any(|e| e.contains("prepared statement")),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_revocations_and_push_through_pgbouncer() {
    let Some(b) = bouncer() else {
        return;
    };
    let schema = common::fresh_schema("bouncer");
    let a = pooled_store(b, &schema).await;
    let nb = pooled_store(b, &schema).await;
    assert!(a.wait_listening(Duration::from_secs(10)).await);
    assert!(nb.wait_listening(Duration::from_secs(10)).await);
    assert!(format!("{a:?}").contains("transaction_pooler: true"));
    let config = SessionConfig::default().with_cache_ttl(Duration::from_secs(3600));
    let keys = KeySet::new([[4u8; 32]]).unwrap();
    let node_a = SessionManager::new(Arc::new(a.clone()), keys.clone(), config.clone()).unwrap();
    let node_b = SessionManager::new(Arc::new(nb), keys, config).unwrap();

    let user = format!("bouncer-{}", uuid::Uuid::new_v4().simple());
    let mut tokens = Vec::new();
    for _ in 0..5 {
        let issued = node_a
            .issue(Principal::user(user.as_str()), ClientInfo::default())
            .await
            .unwrap();
        tokens.push((
            issued.session.id(),
            issued.token.expose().as_bytes().to_vec(),
        ));
    }
    for (_, token) in &tokens {
        assert!(
            node_b.validate(token).await.is_ok(),
            "node B loads through the bouncer"
        );
    }
    // A revocation on A reaches B's cache by push (NOTIFY through the bouncer, LISTEN direct).
    node_a
        .revoke(tokens[0].0, RevocationReason::SignedOut, Actor::User)
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        match node_b.validate(&tokens[0].1).await {
            Err(Refusal::Revoked) => break,
            Ok(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => panic!("B still says {other:?}"),
        }
    }
    println!("revoked on A → refused on B after {:?}", started.elapsed());
    // Sign out everywhere from B: A's cache learns by push too.
    for (_, token) in &tokens[1..] {
        assert!(node_a.validate(token).await.is_ok());
    }
    let revoked = node_b
        .revoke_all(
            &user.as_str().into(),
            session_core::store::RevokeScope::All,
            None,
            RevocationReason::SignedOutEverywhere,
            Actor::User,
        )
        .await
        .unwrap();
    assert_eq!(revoked, 4);
    let started = Instant::now();
    for (_, token) in &tokens[1..] {
        loop {
            match node_a.validate(token).await {
                Err(Refusal::Revoked) => break,
                Ok(_) if started.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                other => panic!("A still says {other:?}"),
            }
        }
    }
    // The log through the bouncer: 5 created, 5 revoked, for this user.
    let events = node_a
        .audit(&session_core::events::AuditQuery {
            user_id: user.as_str().into(),
            before: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 10);
    common::drop_schema(&b.direct, &schema).await;
}
