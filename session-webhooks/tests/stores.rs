//! The store scenarios on SQLite (a temporary file), Redis (`REDIS_URL`) and PostgreSQL
//! (`DATABASE_URL`), each node its own connection; and, on Redis and PostgreSQL, two node
//! processes of which the holder is killed with SIGKILL.
//!
//! Without `REDIS_URL` / `DATABASE_URL`, those tests print a skip line and pass.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::node::Node;
use common::*;
use session_core::SessionStore;

mod sqlite {
    use super::*;

    crate::store_scenarios!(async {
        // Kept: the nodes open the file again after this block returns.
        let path = tempfile::tempdir().unwrap().keep().join("sessions.db");
        // Created and migrated once, before the nodes race to.
        session_sqlite::SqliteStore::open(&path).await.unwrap();
        let factory: StoreFactory = Arc::new(move || {
            let path = path.clone();
            Box::pin(async move {
                Arc::new(session_sqlite::SqliteStore::open(&path).await.unwrap())
                    as Arc<dyn SessionStore>
            })
        });
        Some(factory)
    });
}

fn redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").ok();
    if url.is_none() {
        eprintln!("skipped: REDIS_URL is not set");
    }
    url
}

fn database_url() -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok();
    if url.is_none() {
        eprintln!("skipped: DATABASE_URL is not set");
    }
    url
}

async fn redis_factory(url: String, prefix: String) -> StoreFactory {
    Arc::new(move || {
        let (url, prefix) = (url.clone(), prefix.clone());
        Box::pin(async move {
            Arc::new(
                session_redis::RedisStore::with_prefix(&url, &prefix)
                    .await
                    .unwrap(),
            ) as Arc<dyn SessionStore>
        })
    })
}

async fn postgres_factory(url: String) -> StoreFactory {
    session_postgres::PostgresStore::connect(&url)
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();
    Arc::new(move || {
        let url = url.clone();
        Box::pin(async move {
            Arc::new(
                session_postgres::PostgresStore::connect(&url)
                    .await
                    .unwrap(),
            ) as Arc<dyn SessionStore>
        })
    })
}

mod redis {
    use super::*;

    // Each test its own key prefix: its own log, leases and cursors.
    crate::store_scenarios!(async {
        let url = redis_url()?;
        Some(redis_factory(url, format!("webhook-test-{}:", tag())).await)
    });
}

mod postgres {
    use super::*;

    // One schema for all: the scenarios use users and names of their own.
    crate::store_scenarios!(async { Some(postgres_factory(database_url()?).await) });
}

/// Two node processes on one shared store: one delivers; SIGKILL it, and the other takes
/// the lease and delivers the rest. `env` completes the nodes' settings.
async fn two_node_processes(store_spec: &str, env: &[(&str, &str)], factory: StoreFactory) {
    let t = tag();
    let name = format!("webhook-test-{t}");
    let users: Vec<String> = ["gus", "hal", "ivy"]
        .iter()
        .map(|u| format!("{u}-{t}"))
        .collect();
    let store = factory().await;
    let start = start_at_end(&store, &name).await;
    let manager = manager(store.clone());
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(10));
    interleaved(&manager, &users, 30).await;

    let dir = tempfile::tempdir().unwrap();
    let mut env = env.to_vec();
    env.extend([("NODE_NAME", name.as_str()), ("NODE_CONCURRENCY", "1")]);
    let mut a = Node::start(dir.path(), store_spec, &receiver.url(), "node-a", &env);
    let mut b = Node::start(dir.path(), store_spec, &receiver.url(), "node-b", &env);
    assert!(
        receiver
            .wait_for(Duration::from_secs(30), |got| got.len() >= 20)
            .await,
        "no delivery:\n{}\n{}",
        a.log(),
        b.log()
    );
    assert!(a.took_lease() != b.took_lease(), "one holder");
    let standby = if a.took_lease() {
        a.kill_9();
        &b
    } else {
        b.kill_9();
        &a
    };
    interleaved(&manager, &users, 10).await;
    let all = log_of_at_least(&store, start.as_ref(), &users, 120).await;
    assert_eq!(all.len(), 120);
    assert!(
        receiver
            .wait_for(Duration::from_secs(30), all_accepted(&all))
            .await,
        "the lease did not move:\n{}",
        standby.log()
    );
    assert!(standby.took_lease());
    assert_eq!(receiver.max_in_flight(), 1, "one node at a time");
    assert_delivered(&receiver, &all, false);
    assert_order_per_user(&receiver, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_node_processes_fail_over() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("webhook-test-{}:", tag());
    let factory = redis_factory(url.clone(), prefix.clone()).await;
    two_node_processes(&url, &[("NODE_REDIS_PREFIX", prefix.as_str())], factory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_node_processes_fail_over() {
    let Some(url) = database_url() else { return };
    let factory = postgres_factory(url.clone()).await;
    two_node_processes(&url, &[], factory).await;
}
