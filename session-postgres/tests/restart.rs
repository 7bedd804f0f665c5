//! The listener survives a server restart. Ignored by default: it stops and starts a
//! PostgreSQL server, so it needs one of its own:
//!
//! ```sh
//! RESTART_DATABASE_URL=postgres://postgres@127.0.0.1:5433/postgres \
//! RESTART_STOP_CMD='pg_ctl -D /tmp/pg -m fast stop' \
//! RESTART_START_CMD='pg_ctl -D /tmp/pg -l /tmp/pg.log start' \
//! cargo test -p session-postgres --test restart -- --ignored --nocapture
//! ```

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{drain, next};
use session_core::SessionStore;
use session_core::store::PushMessage;

fn run(var: &str) {
    let cmd = std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set"));
    let status = Command::new("sh").arg("-c").arg(&cmd).status().unwrap();
    assert!(status.success(), "{var}: {cmd}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts a PostgreSQL server: needs RESTART_DATABASE_URL, RESTART_STOP_CMD, RESTART_START_CMD"]
async fn listener_survives_a_server_restart() {
    let url = std::env::var("RESTART_DATABASE_URL").expect("RESTART_DATABASE_URL");
    let a = common::connect(&url).await;
    let b = common::connect(&url).await;
    let mut rx = b.push_messages().unwrap();
    assert!(b.wait_listening(Duration::from_secs(10)).await);
    drain(&mut rx);

    run("RESTART_STOP_CMD");
    let down = Instant::now();
    // While the server is down, publishing fails (quickly) and the listener is down.
    let err = a.publish("while down").await.unwrap_err();
    println!("publish with the server down: {err}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!b.is_listening(), "the listener noticed");
    run("RESTART_START_CMD");
    let up = Instant::now();
    println!("server down for {:?}", up - down);

    // Back: Reconnected first (messages may have been missed), then deliveries again.
    let mut reconnected = false;
    while !reconnected {
        reconnected = next(&mut rx, Duration::from_secs(30)).await == PushMessage::Reconnected;
    }
    println!("reconnected {:?} after the server came back", up.elapsed());
    assert!(b.wait_listening(Duration::from_secs(10)).await);
    // The pool may still hold connections from before the restart: retry the publish.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = a.publish("after the restart").await {
        assert!(Instant::now() < deadline, "publish after the restart: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        if let PushMessage::Payload(p) = next(&mut rx, Duration::from_secs(10)).await
            && &*p == "after the restart"
        {
            break;
        }
    }
    println!("delivery {:?} after the server came back", up.elapsed());
}
