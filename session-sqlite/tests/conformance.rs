//! The store conformance suite, against a real SQLite file (one per test).

mod common;

mod conformance {
    use std::sync::Arc;

    use session_core::SessionStore;

    use crate::common::{TempStore, dump};

    session_core::store_suite!(
        async { Some(TempStore::open().await as Arc<dyn SessionStore>) },
        dump = |store: Arc<dyn SessionStore>| async move {
            let text = dump(&TempStore::path_of(&store)).await;
            // The check must see the rows, not an empty file.
            assert!(text.contains("sessions: id="), "{text}");
            text
        }
    );
}
