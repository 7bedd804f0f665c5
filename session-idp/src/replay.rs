//! Replay protection for one-time tokens (logout tokens, Security Event Tokens) by `jti`.
//!
//! A validator asks a [`ReplayGuard`] whether a token's identifier is seen for the first
//! time, after every other check has passed (so an invalid token never uses up a `jti`).
//! The guard remembers the key until the token would be refused anyway (too old or
//! expired), so its memory stays bounded.
//!
//! [`MemoryReplayGuard`] serves tests and single nodes; several nodes need a guard backed
//! by their shared store (an atomic "insert if absent, with expiry"), which
//! [`replay_guard_fn`] adapts from a closure.
//!
//! # Example
//!
//! ```
//! use session_idp::replay::{MemoryReplayGuard, ReplayGuard};
//! use time::{Duration, OffsetDateTime};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let guard = MemoryReplayGuard::new();
//! let until = OffsetDateTime::now_utc() + Duration::minutes(5);
//! assert!(guard.first_use("logout:https://op.example:jti-1", until).await.unwrap());
//! assert!(!guard.first_use("logout:https://op.example:jti-1", until).await.unwrap());
//! # });
//! ```

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;

/// Remembers token identifiers so that each token is accepted once.
#[async_trait]
pub trait ReplayGuard: Send + Sync {
    /// Records `key` until `until` and answers `true` when it was not already recorded
    /// (the token is used for the first time), `false` when it was (a replay).
    ///
    /// Must be atomic: of two concurrent calls with one key, exactly one gets `true`.
    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, ReplayGuardError>;
}

#[async_trait]
impl<T: ReplayGuard + ?Sized> ReplayGuard for Arc<T> {
    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, ReplayGuardError> {
        (**self).first_use(key, until).await
    }
}

/// A [`ReplayGuard`] that could not answer (its store is down): the token is neither
/// accepted nor called a replay.
///
/// ```
/// use session_idp::replay::ReplayGuardError;
///
/// let err = ReplayGuardError::new(std::io::Error::other("store down"));
/// assert_eq!(err.to_string(), "replay guard failed: store down");
/// ```
#[derive(Debug)]
pub struct ReplayGuardError(Box<dyn StdError + Send + Sync>);

impl ReplayGuardError {
    /// Wraps the store's error.
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self(source.into())
    }
}

impl fmt::Display for ReplayGuardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replay guard failed: {}", self.0)
    }
}

impl StdError for ReplayGuardError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

/// An in-process [`ReplayGuard`]: for tests and single-node deployments.
///
/// Entries are dropped once their `until` has passed (checked against the system clock on
/// each insert, in batches). Several nodes each holding one would accept a token once per
/// node: back the guard with the shared store there.
///
/// ```
/// use session_idp::replay::MemoryReplayGuard;
///
/// let guard = MemoryReplayGuard::new();
/// assert_eq!(guard.len(), 0);
/// ```
#[derive(Debug, Default)]
pub struct MemoryReplayGuard {
    seen: Mutex<HashMap<String, OffsetDateTime>>,
}

/// Above this many entries, an insert first drops the expired ones.
const PRUNE_ABOVE: usize = 1024;

impl MemoryReplayGuard {
    /// An empty guard.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys it holds (expired ones not yet pruned included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether it holds no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl ReplayGuard for MemoryReplayGuard {
    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, ReplayGuardError> {
        let now = OffsetDateTime::now_utc();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= PRUNE_ABOVE {
            seen.retain(|_, kept_until| *kept_until >= now);
        }
        if let Some(kept_until) = seen.get_mut(key) {
            if *kept_until >= now {
                return Ok(false);
            }
            *kept_until = until;
            return Ok(true);
        }
        seen.insert(key.to_owned(), until);
        Ok(true)
    }
}

/// A [`ReplayGuard`] made from a closure, see [`replay_guard_fn`].
pub struct FnReplayGuard<F> {
    f: F,
}

impl<F> fmt::Debug for FnReplayGuard<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnReplayGuard").finish_non_exhaustive()
    }
}

/// Adapts an async closure `(key, until) -> Result<bool, E>` (`true`: first use) into a
/// [`ReplayGuard`], e.g. one backed by the session store.
///
/// ```
/// use session_idp::replay::{replay_guard_fn, ReplayGuard};
/// use time::OffsetDateTime;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // A stand-in for "SET key NX EX" in a shared store.
/// let guard = replay_guard_fn(|key: String, _until: OffsetDateTime| async move {
///     Ok::<_, std::io::Error>(key != "seen")
/// });
/// assert!(guard.first_use("fresh", OffsetDateTime::now_utc()).await.unwrap());
/// assert!(!guard.first_use("seen", OffsetDateTime::now_utc()).await.unwrap());
/// # });
/// ```
pub fn replay_guard_fn<F, Fut, E>(f: F) -> FnReplayGuard<F>
where
    F: Fn(String, OffsetDateTime) -> Fut + Send + Sync,
    Fut: Future<Output = Result<bool, E>> + Send,
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    FnReplayGuard { f }
}

#[async_trait]
impl<F, Fut, E> ReplayGuard for FnReplayGuard<F>
where
    F: Fn(String, OffsetDateTime) -> Fut + Send + Sync,
    Fut: Future<Output = Result<bool, E>> + Send,
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, ReplayGuardError> {
        (self.f)(key.to_owned(), until)
            .await
            .map_err(ReplayGuardError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[tokio::test]
    async fn an_expired_entry_is_a_first_use_again() {
        let guard = MemoryReplayGuard::new();
        let past = OffsetDateTime::now_utc() - Duration::seconds(1);
        assert!(guard.first_use("k", past).await.unwrap());
        assert!(guard.first_use("k", past).await.unwrap());
        let future = OffsetDateTime::now_utc() + Duration::minutes(1);
        assert!(guard.first_use("k", future).await.unwrap());
        assert!(!guard.first_use("k", future).await.unwrap());
    }

    #[tokio::test]
    async fn expired_entries_are_pruned() {
        let guard = MemoryReplayGuard::new();
        let past = OffsetDateTime::now_utc() - Duration::seconds(1);
        for i in 0..PRUNE_ABOVE {
            guard.first_use(&i.to_string(), past).await.unwrap();
        }
        assert_eq!(guard.len(), PRUNE_ABOVE);
        let future = OffsetDateTime::now_utc() + Duration::minutes(1);
        guard.first_use("new", future).await.unwrap();
        assert_eq!(guard.len(), 1);
    }
}
