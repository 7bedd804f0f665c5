//! The storage trait every backend implements, and the in-memory store.
//!
//! The trait is shaped for shared stores (Redis, PostgreSQL, SQLite): each method is one
//! round trip that the backend makes atomic. Revocations of many sessions go through a
//! per-user index; a per-user epoch lets a login that races a revoke-all lose.
//!
//! # The event log (an outbox)
//!
//! Every change writes its events in the **same atomic operation**: `create` writes
//! `session.created` (and a `session.revoked` per session the cap ended), every revocation
//! one `session.revoked` per session it ends, [`SessionStore::report_expired`] one
//! `session.expired` per session, once. No change without its event, no event without its
//! change. [`SessionStore::events`] reads the log with a cursor that never skips an event:
//! an event that commits after a reader moved past its id would be lost to that reader, so
//! a store serves only events whose id can no longer be overtaken (see each store's docs).

mod filter;
mod memory;
mod observed;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::broadcast;

pub use filter::{BadNetwork, IpRange, SessionFilter, ip_key};
pub use memory::MemoryStore;
pub(crate) use observed::Observed;

use crate::error::StoreError;
use crate::events::{AuditQuery, EventId, EventQuery, SessionEvent};
use crate::model::{Actor, AgentId, Principal, RevocationReason, SessionId, SessionRecord, UserId};

/// Which of a user's sessions a bulk revocation takes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokeScope {
    /// Every session, user and agent. Also moves the user's epoch, so a login that began
    /// before this revocation cannot create a session after it, and an agent grant from a
    /// session issued before it is refused.
    All,
    /// The user's own sessions, not their agents'.
    UserSessions,
    /// Every session of one agent acting for the user.
    Agent(AgentId),
    /// The sessions signed in through one identity-provider session (`sid`), or, with
    /// `sid` `None`, every session signed in through the provider as this subject.
    Idp {
        /// The provider's issuer.
        issuer: String,
        /// The provider's subject.
        subject: Option<String>,
        /// The provider's session id.
        sid: Option<String>,
    },
}

impl RevokeScope {
    /// Whether a session falls in the scope.
    #[must_use]
    pub fn covers(&self, record: &SessionRecord) -> bool {
        match self {
            Self::All => true,
            Self::UserSessions => record.principal.agent_id().is_none(),
            Self::Agent(agent) => record.principal.agent_id() == Some(agent),
            Self::Idp {
                issuer,
                subject,
                sid,
            } => record.idp.as_ref().is_some_and(|link| {
                &link.issuer == issuer
                    && subject.as_ref().is_none_or(|s| &link.subject == s)
                    && sid.as_ref().is_none_or(|s| link.sid.as_ref() == Some(s))
            }),
        }
    }

    /// Whether this scope moves the user's epoch.
    #[must_use]
    pub fn moves_epoch(&self) -> bool {
        matches!(self, Self::All)
    }
}

/// Why, by whom and when: what every revocation records (in the record and in its event).
#[derive(Clone, Copy, Debug)]
pub struct Change<'a> {
    /// Why.
    pub reason: &'a RevocationReason,
    /// Who.
    pub actor: Actor,
    /// When.
    pub at: OffsetDateTime,
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
    /// Why, by whom, when.
    pub change: Change<'a>,
    /// Also mark the user disabled (SCIM deprovisioning): until
    /// [`SessionStore::set_user_disabled`] clears it, `create` refuses the user. Only with
    /// [`RevokeScope::All`].
    pub disable_user: bool,
}

/// A session a revocation ended, with the id of the `session.revoked` event it logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedSession {
    /// The session.
    pub id: SessionId,
    /// Whom it authenticated.
    pub principal: Principal,
    /// The end of its life (how long a node remembers it as revoked).
    pub expires_at: OffsetDateTime,
    /// Its `session.revoked` event.
    pub event_id: EventId,
}

impl RevokedSession {
    /// The `session.revoked` event the store logged for it.
    #[must_use]
    pub fn event(&self, change: &Change<'_>) -> SessionEvent {
        SessionEvent::about(
            self.event_id.clone(),
            crate::EventType::Revoked,
            self.id,
            &self.principal,
            Some(change.reason.clone()),
            change.actor,
            change.at,
        )
    }
}

/// A new session to store.
#[derive(Clone, Debug)]
pub struct NewSession<'a> {
    /// The record.
    pub record: &'a SessionRecord,
    /// Create only if the user's epoch is still this one (read when the login began). For
    /// an agent grant, `None`: the grantor's own epoch is what counts.
    pub expected_epoch: Option<u64>,
    /// The session granting this one (agent grants): it must belong to the same user, be
    /// neither revoked nor past its `expires_at`, and have been issued at the user's current
    /// epoch. Checked in the same atomic operation as the create.
    pub granted_by: Option<SessionId>,
    /// For a user session: the most live user sessions the user may have once it exists
    /// (agents apart). The oldest beyond it are revoked in the same operation, with reason
    /// `session_limit` and actor `system`.
    pub max_user_sessions: Option<u32>,
    /// Who is creating it (the `session.created` event's actor).
    pub actor: Actor,
}

/// What a create did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// The session now exists; the cap ended `evicted`.
    Created {
        /// The `session.created` event.
        event_id: EventId,
        /// The user's oldest sessions, revoked to stay within the cap.
        evicted: Vec<RevokedSession>,
    },
    /// The user's epoch moved since the login read it: nothing was created.
    EpochMoved,
    /// The granting session is revoked, expired, unknown, someone else's, or older than
    /// the user's last revoke-all: nothing was created.
    GrantorGone,
    /// The user is disabled (deprovisioned): nothing was created.
    UserDisabled,
}

/// What a store knows of a user beyond their sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserState {
    /// The revocation epoch (0 for a user never revoked-all).
    pub epoch: u64,
    /// Deprovisioned: no session can be created for them.
    pub disabled: bool,
}

/// What [`SessionStore::revoke_matching`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matched {
    /// How many active sessions matched.
    pub matched: u64,
    /// The ones revoked (none on a dry run).
    pub revoked: Vec<RevokedSession>,
}

/// How long ended sessions and events are kept before [`SessionStore::purge`] deletes them.
///
/// # How the defaults were chosen
///
/// An audit needs months: events are kept 400 days (a year and a review period). A session
/// record past its end is needed by nothing but its events, so it goes after 7 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// How long a revoked or expired session's record is kept after its end.
    pub sessions: Duration,
    /// How long an event is kept.
    pub events: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            sessions: Duration::from_secs(7 * 86_400),
            events: Duration::from_secs(400 * 86_400),
        }
    }
}

/// What a purge deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Session records.
    pub sessions: u64,
    /// Events.
    pub events: u64,
}

/// A message from a store's push channel, for the manager to check and apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushMessage {
    /// A payload another node (or this one) published. Unchecked: the manager verifies
    /// its MAC before believing a word of it.
    Payload(std::sync::Arc<str>),
    /// The channel reconnected: messages may have been missed.
    Reconnected,
}

/// Where sessions live. One method, one atomic operation in the backend.
///
/// Implementations keep only [`SessionRecord`]s, which hold a hash of the token's secret,
/// never the token. Every implementation runs the conformance suite
/// (`session_core::store_suite!`, feature `testing`).
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// A fresh id for a session of `user_id`. Stores that place a user's keys together
    /// (Redis Cluster) encode the place in the id; the default is a random UUID.
    fn new_session_id(&self, _user_id: &UserId) -> SessionId {
        SessionId::random()
    }

    /// The user's epoch and whether they are disabled.
    async fn user_state(&self, user_id: &UserId) -> Result<UserState, StoreError>;

    /// Stores a new session and its `session.created` event, unless a condition of `new`
    /// fails (then nothing is written).
    async fn create(&self, new: NewSession<'_>) -> Result<Created, StoreError>;

    /// The session, revoked or not; `None` when unknown or purged.
    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// Records activity: sets `last_active_at` (never moving it backwards).
    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError>;

    /// The user's sessions that are neither revoked nor past `expires_at` at `now`,
    /// newest first, at most `limit`.
    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Revokes one session and logs its event. `None` if it was unknown or already
    /// revoked (nothing written).
    async fn revoke(
        &self,
        id: SessionId,
        change: Change<'_>,
    ) -> Result<Option<RevokedSession>, StoreError>;

    /// Revokes the user's active sessions in `scope` (but `except`) in one operation, with
    /// their events; moves the epoch when the scope says so.
    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<RevokedSession>, StoreError>;

    /// Revokes every active session, of any user, that `filter` matches (or, with
    /// `dry_run`, only counts them). One operation per store where the store allows it,
    /// never a load of every record into this process.
    async fn revoke_matching(
        &self,
        filter: &SessionFilter,
        change: Change<'_>,
        dry_run: bool,
    ) -> Result<Matched, StoreError>;

    /// Clears (or sets) the user's disabled mark. Disabling normally goes through
    /// [`RevokeMany::disable_user`], which revokes in the same operation.
    async fn set_user_disabled(&self, user_id: &UserId, disabled: bool) -> Result<(), StoreError>;

    /// Logs `session.expired` for the session, at `at` by actor `system`, unless it was
    /// logged already (by any node). Returns the event when this call logged it.
    async fn report_expired(
        &self,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<Option<SessionEvent>, StoreError>;

    /// Logs an event that records no change to the session (`session.suspicious`). The
    /// event's `id` is ignored: the store gives it one, and returns it.
    async fn append_event(&self, event: &SessionEvent) -> Result<EventId, StoreError>;

    /// The log, oldest first, after `query.after`. Never skips an event that commits later
    /// with a smaller id (see the module docs).
    async fn events(&self, query: &EventQuery) -> Result<Vec<SessionEvent>, StoreError>;

    /// One user's events, newest first, before `query.before`.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<SessionEvent>, StoreError>;

    /// Deletes session records ended (revoked or expired) more than `retention.sessions`
    /// before `now`, events older than `retention.events`, and used markers past their time.
    async fn purge(&self, now: OffsetDateTime, retention: Retention) -> Result<Purged, StoreError>;

    /// Records that `key` was used, until `until`; true the first time, false while the
    /// mark lives (replay protection for logout tokens and security event tokens).
    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, StoreError>;

    /// Takes or renews the lease `name` for `holder` for `ttl`: true when `holder` holds it
    /// now (it was free, expired, or already `holder`'s).
    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Gives the lease up, if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// A saved cursor (the webhook worker's position in the log).
    async fn load_cursor(&self, name: &str) -> Result<Option<EventId>, StoreError>;

    /// Saves a cursor.
    async fn save_cursor(&self, name: &str, cursor: &EventId) -> Result<(), StoreError>;

    /// Sends `payload` (made and signed by the manager) to every node on the push channel.
    /// Stores without one (one node) do nothing.
    async fn publish(&self, _payload: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// The longest payload the push channel carries, in bytes.
    fn push_limit(&self) -> usize {
        7_000
    }

    /// The push channel's messages, for stores shared between nodes.
    fn push_messages(&self) -> Option<broadcast::Receiver<PushMessage>> {
        None
    }

    /// Whether sessions outlive the process (every store but the memory store). Random
    /// keys on such a store are a mistake: the manager warns at start-up.
    fn is_persistent(&self) -> bool {
        true
    }
}
