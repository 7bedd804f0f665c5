//! The scenarios every store runs: each takes a [`StoreFactory`] (every call a new handle
//! on one shared store, as separate nodes would open) and a receiver of its own.
//!
//! A store's test file runs them all with one macro call:
//!
//! ```ignore
//! store_scenarios!(async { Some(factory) }); // or `None` after printing why it skips
//! ```
//!
//! Each scenario uses users and a worker name of its own (a random tag) and starts its
//! worker after the log's current end, so scenarios can share one database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::*;

/// Generous bound for deliveries that should take milliseconds.
const SOON: Duration = Duration::from_secs(20);

/// Every event delivered once, signed, with its id, as its JSON.
pub async fn delivers_every_event_once_signed(factory: StoreFactory) {
    let t = tag();
    let users = vec![format!("alice-{t}"), format!("bob-{t}")];
    let name = format!("webhook-test-{t}");
    let store = factory().await;
    let start = start_at_end(&store, &name).await;
    let receiver = Receiver::start().await;
    let manager = manager(store.clone());
    let handle = worker(store.clone(), &receiver.url(), &name)
        .with_wakeups(manager.subscribe())
        .spawn()
        .unwrap();
    activity(&manager, &users, 5).await;
    let expected = log_of_at_least(&store, start.as_ref(), &users, 12).await;
    assert_eq!(expected.len(), 12);
    assert!(receiver.wait_for(SOON, all_accepted(&expected)).await);
    handle.shutdown().await;
    assert_delivered(&receiver, &expected, true);
    assert_order_per_user(&receiver, &expected);
    // Stopped: the cursor is saved at (or, on a shared log, past) the last event.
    let cursor = store.load_cursor(&name).await.unwrap().unwrap();
    assert!(cursor >= expected.last().unwrap().id);
}

/// A receiver that fails one user's events for a while: they are retried, in order, while
/// the other user's events keep flowing; nothing is lost.
pub async fn retries_in_order_while_others_flow(factory: StoreFactory) {
    let t = tag();
    let alice = format!("alice-{t}");
    let bob = format!("bob-{t}");
    let users = vec![alice.clone(), bob.clone()];
    let name = format!("webhook-test-{t}");
    let store = factory().await;
    let start = start_at_end(&store, &name).await;
    let receiver = Receiver::start().await;
    let failing = Arc::new(AtomicBool::new(true));
    {
        let failing = failing.clone();
        let alice = alice.clone();
        receiver.set_rule(move |d| {
            if d.user == alice && failing.load(Ordering::SeqCst) {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            }
        });
    }
    let manager = manager(store.clone());
    let handle = worker(store.clone(), &receiver.url(), &name)
        .with_wakeups(manager.subscribe())
        .spawn()
        .unwrap();
    interleaved(&manager, &users, 6).await;
    let expected = log_of_at_least(&store, start.as_ref(), &users, 12).await;
    let (of_alice, of_bob): (Vec<_>, Vec<_>) = expected
        .iter()
        .cloned()
        .partition(|e| e.user_id.as_str() == alice);
    assert_eq!((of_alice.len(), of_bob.len()), (6, 6));

    // Bob's all go through while Alice's first is refused, retried, and holds hers back.
    assert!(receiver.wait_for(SOON, all_accepted(&of_bob)).await);
    let first_of_alice = of_alice[0].id.to_string();
    assert!(
        receiver
            .wait_for(SOON, |got| got
                .iter()
                .filter(|d| d.id == first_of_alice)
                .count()
                >= 3)
            .await,
        "alice's first event is retried"
    );
    let alice_tried: Vec<String> = receiver
        .deliveries()
        .into_iter()
        .filter(|d| d.user == alice)
        .map(|d| d.id)
        .collect();
    assert!(
        alice_tried.iter().all(|id| *id == first_of_alice),
        "only alice's first event is tried while it fails: {alice_tried:?}"
    );

    failing.store(false, Ordering::SeqCst);
    assert!(receiver.wait_for(SOON, all_accepted(&expected)).await);
    handle.shutdown().await;
    assert_delivered(&receiver, &expected, true);
    assert_order_per_user(&receiver, &expected);
}

/// A worker stopped and started again (a new process on the same store) goes on from its
/// saved cursor: the first batch is not sent again, the second arrives.
pub async fn restart_resumes_from_the_saved_cursor(factory: StoreFactory) {
    let t = tag();
    let users = vec![format!("carol-{t}")];
    let name = format!("webhook-test-{t}");
    let store = factory().await;
    let start = start_at_end(&store, &name).await;
    let receiver = Receiver::start().await;
    let manager = manager(store.clone());

    let first = worker(store.clone(), &receiver.url(), &name)
        .spawn()
        .unwrap();
    activity(&manager, &users, 3).await;
    let batch1 = log_of_at_least(&store, start.as_ref(), &users, 4).await;
    assert!(receiver.wait_for(SOON, all_accepted(&batch1)).await);
    // The receiver has the last request before the worker has its answer: wait until the
    // worker has saved its cursor past it (within 100 ms of the answer), then stop it.
    let last = batch1.last().unwrap().id.clone();
    let deadline = Instant::now() + SOON;
    while store
        .load_cursor(&name)
        .await
        .unwrap()
        .is_none_or(|c| c < last)
    {
        assert!(
            Instant::now() < deadline,
            "the cursor never passed the delivered events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.shutdown().await;
    let saved = store.load_cursor(&name).await.unwrap().unwrap();
    assert!(saved >= last);

    // While no worker runs.
    activity(&manager, &users, 3).await;
    let all = log_of_at_least(&store, start.as_ref(), &users, 8).await;
    let batch2 = all[batch1.len()..].to_vec();
    assert_eq!(batch2.len(), 4);

    let second = worker(factory().await, &receiver.url(), &name)
        .spawn()
        .unwrap();
    assert!(receiver.wait_for(SOON, all_accepted(&batch2)).await);
    second.shutdown().await;
    assert_delivered(&receiver, &all, true);
}

/// Two nodes on one store: one delivers at a time (never two requests at once, each
/// node sending one at a time), and when the holder dies (its task aborted: no release)
/// the other takes over within a few seconds; every event arrives.
pub async fn two_nodes_one_delivers_and_the_lease_moves(factory: StoreFactory) {
    let t = tag();
    let users: Vec<String> = ["dan", "erin", "frank"]
        .iter()
        .map(|u| format!("{u}-{t}"))
        .collect();
    let name = format!("webhook-test-{t}");
    let store = factory().await;
    let start = start_at_end(&store, &name).await;
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(15));
    let manager = manager(store.clone());
    let node = |store: Arc<dyn SessionStore>, id: &str| {
        worker(store, &receiver.url(), &name)
            .with_node_id(id)
            .unwrap()
            .with_concurrency(1)
            .unwrap()
            .spawn()
            .unwrap()
    };
    let a = node(factory().await, "node-a");
    let b = node(factory().await, "node-b");
    interleaved(&manager, &users, 10).await;
    let batch1 = log_of_at_least(&store, start.as_ref(), &users, 10 * users.len()).await;
    assert!(receiver.wait_for(SOON, all_accepted(&batch1)).await);
    assert_eq!(receiver.max_in_flight(), 1, "one node delivers at a time");
    assert!(
        a.holds_lease() != b.holds_lease(),
        "exactly one holds the lease"
    );

    let (holder, standby) = if a.holds_lease() { (a, b) } else { (b, a) };
    holder.abort();
    let died = Instant::now();
    interleaved(&manager, &users, 5).await;
    let all = log_of_at_least(&store, start.as_ref(), &users, 15 * users.len()).await;
    assert!(receiver.wait_for(SOON, all_accepted(&all)).await);
    let took_over = died.elapsed();
    assert!(standby.holds_lease());
    // Lease 1 s: the standby tries every third of it, once the lease runs out.
    assert!(
        took_over < Duration::from_secs(5),
        "took over after {took_over:?}"
    );
    assert_eq!(receiver.max_in_flight(), 1, "still one at a time");
    standby.shutdown().await;
    assert_delivered(&receiver, &all, false);
    assert_order_per_user(&receiver, &all);
}

/// Runs every scenario against the store that `$factory` (a future of
/// `Option<StoreFactory>`; `None` skips) makes.
#[macro_export]
macro_rules! store_scenarios {
    ($factory:expr) => {
        $crate::store_scenarios!(@each $factory;
            delivers_every_event_once_signed,
            retries_in_order_while_others_flow,
            restart_resumes_from_the_saved_cursor,
            two_nodes_one_delivers_and_the_lease_moves,
        );
    };
    (@each $factory:expr; $($name:ident,)+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(factory) = $factory.await else {
                    return;
                };
                $crate::common::scenarios::$name(factory).await;
            }
        )+
    };
}
