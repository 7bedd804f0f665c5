//! Test support (feature `testing`): a fault-injecting store wrapper, and the store
//! conformance suite every [`SessionStore`](crate::SessionStore) runs.
//!
//! A store crate runs the whole suite with one macro call:
//!
//! ```ignore
//! mod conformance {
//!     session_core::store_suite!(
//!         // `Some(store)`, or `None` after printing why the suite is skipped.
//!         async { Some(Arc::new(MyStore::connect(..).await) as Arc<dyn SessionStore>) },
//!         dump = |store| async move { /* everything the store keeps, as text */ }
//!     );
//! }
//! ```

mod faulty;
pub mod suite;
mod tokens;

pub use faulty::{Calls, FaultyStore};
pub use tokens::{TwoNodes, forged, never_issued};
