//! The storage trait every backend implements, and the in-memory store.
//!
//! The trait is shaped for shared stores (Redis, PostgreSQL, SQLite): each method is one
//! round trip that the backend can make atomic, revocations of many sessions go through a
//! per-user index, and a per-user epoch lets a login that races a revoke-all lose.

mod memory;

use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::broadcast;

pub use memory::MemoryStore;

use crate::error::StoreError;
use crate::model::{AgentId, RevocationReason, SessionId, SessionRecord, UserId};

/// Which of a user's sessions a bulk revocation takes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokeScope {
    /// Every session, user and agent. Also moves the user's epoch, so a login that began
    /// before this revocation cannot create a session after it.
    All,
    /// The user's own sessions, not their agents'.
    UserSessions,
    /// Every session of one agent acting for the user.
    Agent(AgentId),
}

impl RevokeScope {
    /// Whether a session of this principal falls in the scope.
    #[must_use]
    pub fn covers(&self, record: &SessionRecord) -> bool {
        match self {
            Self::All => true,
            Self::UserSessions => record.principal.agent_id().is_none(),
            Self::Agent(agent) => record.principal.agent_id() == Some(agent),
        }
    }

    /// Whether this scope moves the user's epoch.
    #[must_use]
    pub fn moves_epoch(&self) -> bool {
        matches!(self, Self::All)
    }
}

/// A bulk revocation of one user's sessions.
#[derive(Clone, Debug)]
pub struct RevokeMany<'a> {
    /// Whose sessions.
    pub user_id: &'a UserId,
    /// Which of them.
    pub scope: &'a RevokeScope,
    /// A session to keep (the current one, for "sign out of all other sessions").
    pub except: Option<SessionId>,
    /// Why.
    pub reason: &'a RevocationReason,
    /// When.
    pub at: OffsetDateTime,
}

/// What a create did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// The session now exists.
    Created,
    /// The user's epoch moved since the login read it: nothing was created.
    EpochMoved,
}

/// A message on a store's push channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// This session was revoked (on some node).
    Revoked(SessionId),
    /// Messages may have been missed (reconnect, gap): drop every cached "valid" answer.
    Resync,
}

/// Where sessions live. One method, one atomic operation in the backend.
///
/// Implementations keep only [`SessionRecord`]s, which hold a hash of the token's secret,
/// never the token.
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// The user's revocation epoch (0 for a user never revoked-all).
    async fn user_epoch(&self, user_id: &UserId) -> Result<u64, StoreError>;

    /// Stores a new session, unless the user's epoch is no longer `expected_epoch`.
    async fn create(
        &self,
        record: &SessionRecord,
        expected_epoch: u64,
    ) -> Result<Created, StoreError>;

    /// The session, revoked or not; `None` when unknown or purged.
    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// Records activity: sets `last_active_at` (never moving it backwards).
    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError>;

    /// The user's sessions that are neither revoked nor past `expires_at` at `now`.
    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Revokes one session. Returns its record (now revoked) if it was active, `None` if it
    /// was unknown or already revoked.
    async fn revoke(
        &self,
        id: SessionId,
        reason: &RevocationReason,
        at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Revokes the user's active sessions in `scope` (but `except`) in one operation;
    /// moves the epoch when the scope says so. Returns the revoked records.
    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<SessionRecord>, StoreError>;

    /// Deletes sessions whose `expires_at` has passed. Returns how many.
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    /// Tells the other nodes that these sessions were revoked. Stores without a push
    /// channel (one node) do nothing.
    async fn publish(&self, _revoked: &[SessionId]) -> Result<(), StoreError> {
        Ok(())
    }

    /// The push channel's messages, for stores shared between nodes.
    fn invalidations(&self) -> Option<broadcast::Receiver<Invalidation>> {
        None
    }
}
