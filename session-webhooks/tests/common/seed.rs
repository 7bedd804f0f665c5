//! The crash test's log: `n` sessions issued, round-robin over 20 users (50 each for 1,000: within the default cap of 100 sessions a user, so no evictions), through a
//! `SessionManager`. Shared by `tests/crash.rs` and `examples/webhook_node.rs` (which
//! rebuilds the same log in a `MemoryStore`: the same calls give the same ids).

use std::sync::Arc;

use session_core::{ClientInfo, KeySet, Principal, SessionConfig, SessionManager, SessionStore};

/// Issues `n` sessions in `store`: `n` `session.created` events.
pub async fn seed(store: Arc<dyn SessionStore>, n: usize) {
    let manager = SessionManager::new(store, KeySet::random(), SessionConfig::default())
        .expect("default settings");
    for i in 0..n {
        manager
            .issue(
                Principal::user(format!("user-{}", i % 20)),
                ClientInfo::default(),
            )
            .await
            .expect("the store takes the session");
    }
}
