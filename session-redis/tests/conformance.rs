//! The store conformance suite against the Redis at `REDIS_URL` (skipped when unset), one
//! fresh key prefix per test.

mod common;

mod conformance {
    use std::sync::Arc;

    use session_core::SessionStore;

    session_core::store_suite!(
        crate::common::suite_store(),
        dump = |store: Arc<dyn SessionStore>| crate::common::suite_dump(store)
    );
}
