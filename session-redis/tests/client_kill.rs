//! The subscriber survives `CLIENT KILL TYPE pubsub`: it says it may have missed messages
//! (`Reconnected`), then hears later publications. A binary of its own, since the kill hits every subscriber on the server.
//! Skipped when `REDIS_URL` is unset.

mod common;

use std::time::Duration;

use session_core::SessionStore;
use session_core::store::PushMessage;

use common::{connect, drain, payload, raw, redis_url, unique_prefix, wait_for};

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_client_kill_the_subscriber_resyncs_and_still_receives() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let a = connect(&url, &prefix).await;
    let b = connect(&url, &prefix).await;
    let mut rx = b.push_messages().unwrap();
    let mut admin = raw(&url).await;

    for round in 0..3 {
        let before = format!("before kill {round}");
        a.publish(&before).await.unwrap();
        wait_for(&mut rx, payload(&before), DEADLINE).await;
        drain(&mut rx);

        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut admin)
            .await
            .unwrap();
        assert!(
            killed >= 2,
            "round {round}: killed {killed} subscribers, A's and B's at least"
        );

        // "I may have missed messages", once subscribed again...
        wait_for(&mut rx, PushMessage::Reconnected, DEADLINE).await;
        // ...and later publications arrive as before.
        let after = format!("after kill {round}");
        a.publish(&after).await.unwrap();
        wait_for(&mut rx, payload(&after), DEADLINE).await;
    }
}
