//! Redis as clouds run it: TLS (`rediss://`) with a private CA, and an ACL user. The test
//! makes a CA and a server certificate with `openssl`, starts a `redis-server` that listens
//! only on TLS (`--tls-port`) with the default user disabled, and runs the whole
//! conformance suite and the push channel over it. It also checks what must be refused:
//! no CA file (the system's roots do not know the test CA), a wrong password, plain TCP.
//!
//! Skipped (with a line saying why) without `redis-server` and `openssl`, unless
//! `REDIS_CLUSTER_TESTS=1`.

#![cfg(feature = "tls")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::SessionStore;
use session_redis::{RedisStore, RedisStoreBuilder};

use common::servers::{self, TlsRedis};
use common::{dump, payload, run_suite, unique_prefix, wait_for};

fn tools() -> bool {
    servers::available(&[("redis-server", "--version"), ("openssl", "version")])
}

/// Connects, waiting (10 s at most) for the server to start.
async fn connect(builder: RedisStoreBuilder) -> RedisStore {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match builder.clone().connect().await {
            Ok(store) => return store,
            Err(e) if Instant::now() < until => {
                println!("waiting for the TLS server: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the TLS server did not take the store: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca_and_an_acl_user() {
    if !tools() {
        return;
    }
    let server = TlsRedis::start();
    let prefix = unique_prefix();
    let store = connect(
        RedisStore::builder(server.url())
            .with_ca_file(&server.ca_file)
            .with_prefix(&prefix),
    )
    .await;
    let debug = format!("{store:?}");
    assert!(!debug.contains(TlsRedis::PASSWORD), "{debug}");

    // A second node, the password given apart from the URL; the push channel between them.
    let bare = format!("rediss://127.0.0.1:{}", server.port);
    let builder = RedisStore::builder(&bare)
        .with_ca_file(&server.ca_file)
        .with_credentials(Some("sessions"), TlsRedis::PASSWORD)
        .with_prefix(&prefix);
    assert!(!format!("{builder:?}").contains(TlsRedis::PASSWORD));
    let other = builder.connect().await.unwrap();
    let mut rx = other.push_messages().unwrap();
    store.publish("over TLS").await.unwrap();
    wait_for(&mut rx, payload("over TLS"), Duration::from_secs(5)).await;

    // What must be refused, quickly: an unknown CA, a wrong password, plain TCP.
    let refused = [
        RedisStore::builder(server.url()).with_prefix(&prefix),
        RedisStore::builder(&bare)
            .with_ca_file(&server.ca_file)
            .with_credentials(Some("sessions"), "not the password")
            .with_prefix(&prefix),
        RedisStore::builder(format!(
            "redis://sessions:{}@127.0.0.1:{}",
            TlsRedis::PASSWORD,
            server.port
        ))
        .with_prefix(&prefix),
    ];
    // The first two no retry can mend: they fail at once; plain TCP after the retries.
    for (builder, within) in refused.into_iter().zip([2, 2, 15]) {
        let started = Instant::now();
        let err = builder.connect().await.expect_err("refused");
        println!("refused in {:?}: {err}", started.elapsed());
        assert!(started.elapsed() < Duration::from_secs(within), "{err}");
        assert!(!err.to_string().contains(TlsRedis::PASSWORD), "{err}");
    }
    // A CA file that is not there is a clear error.
    let err = RedisStore::builder(server.url())
        .with_ca_file("/nonexistent/ca.pem")
        .connect()
        .await
        .expect_err("no CA file");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

    // The whole suite, over TLS; the dump reads the keys over TLS too.
    let ca = std::fs::read(&server.ca_file).unwrap();
    let url = server.url();
    let dump_prefix = prefix.clone();
    run_suite(Arc::new(store), move |_| async move {
        let client = redis::Client::build_with_tls(
            url.as_str(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca),
            },
        )
        .unwrap();
        let mut conn = client
            .get_multiplexed_async_connection_with_config(
                &redis::AsyncConnectionConfig::new().set_response_timeout(None),
            )
            .await
            .unwrap();
        dump(&mut conn, &dump_prefix).await
    })
    .await;
}
