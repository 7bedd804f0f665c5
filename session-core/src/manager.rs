//! [`SessionManager`]: issues, validates, touches, lists and revokes sessions.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::cache::{Cached, CachedSession, SessionCache};
use crate::clock::{Clock, SystemClock};
use crate::config::SessionConfig;
use crate::error::{ConfigError, SessionError};
use crate::events::{AuditQuery, EventQuery, SessionEvent};
use crate::model::{
    Actor, AgentId, IdpLink, Principal, RevocationReason, SessionId, SessionKind, SessionRecord,
    UserId,
};
use crate::push::PushCodec;
use crate::session::{ClientInfo, Issued, LoginEpoch, Refusal, Session};
use crate::store::{
    Change, Created, Matched, NewSession, Purged, PushMessage, RevokeMany, RevokeScope,
    RevokedSession, SessionFilter, SessionStore,
};
use crate::token::{IssuedToken, KeySet, VerifiedToken};

/// Beyond this many sessions revoked at once, the push asks every node to drop its cache
/// instead of listing them (a few messages instead of hundreds).
const MAX_LISTED_REVOCATIONS: usize = 2_000;

/// Issues, validates and revokes sessions over a [`SessionStore`], with a cache in front.
///
/// Cheap to clone; clones share the cache and the event channel. Web apps reach it
/// through a [`SessionGate`](crate::SessionGate) (`gate.manager()`); jobs and admin tools
/// use it directly.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{
///     Actor, ClientInfo, KeySet, MemoryStore, Principal, Refusal, RevocationReason,
///     RevokeScope, SessionConfig, SessionManager, UserId, events::AuditQuery,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
///
/// // Issue: the token goes to the client (the gate sets it as the cookie).
/// let laptop = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
/// let phone = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
/// let session = manager.validate(laptop.token.expose().as_bytes()).await?;
/// assert_eq!(session.user_id().as_str(), "alice");
///
/// // Revoke one: refused at once on this node, within milliseconds on the others.
/// assert!(manager.revoke(laptop.session.id(), RevocationReason::SignedOut, Actor::User).await?);
/// assert!(matches!(manager.validate(laptop.token.expose().as_bytes()).await, Err(Refusal::Revoked)));
///
/// // Revoke all of a user's sessions (a password reset): one store operation.
/// let alice = UserId::from("alice");
/// let n = manager.revoke_all(&alice, RevokeScope::All, None, RevocationReason::PasswordReset, Actor::User).await?;
/// assert_eq!(n, 1, "the phone; the laptop was already revoked");
/// assert!(manager.validate(phone.token.expose().as_bytes()).await.is_err());
///
/// // Every change is on the record.
/// let trail = manager.audit(&AuditQuery { user_id: alice, before: None, limit: 10 }).await?;
/// assert_eq!(trail.len(), 4, "two created, two revoked");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn SessionStore>,
    keys: KeySet,
    config: SessionConfig,
    clock: Arc<dyn Clock>,
    cache: SessionCache,
    events: broadcast::Sender<SessionEvent>,
    push: PushCodec,
    touches: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("store", &self.inner.store)
            .field("keys", &self.inner.keys)
            .field("config", &self.inner.config)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

impl SessionManager {
    /// A manager over `store`, signing with `keys`, with the system clock.
    ///
    /// When the store has a push channel, the manager follows it from a task on the
    /// current Tokio runtime (built outside one, it warns and does not follow).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `config` does not validate ([`SessionConfig::validate`]).
    pub fn new(
        store: Arc<dyn SessionStore>,
        keys: KeySet,
        config: SessionConfig,
    ) -> Result<Self, ConfigError> {
        Self::with_clock(store, keys, config, Arc::new(SystemClock))
    }

    /// As [`SessionManager::new`], with a clock of your choosing (tests).
    ///
    /// # Errors
    ///
    /// As [`SessionManager::new`].
    pub fn with_clock(
        store: Arc<dyn SessionStore>,
        keys: KeySet,
        config: SessionConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        if keys.is_random() && store.is_persistent() {
            tracing::warn!(
                store = ?store,
                "random session keys with a persistent store: every session becomes invalid \
                 when this process restarts, and other nodes refuse this one's tokens; read the \
                 keys with KeySet::from_env (generate one with `session-admin keys generate`)"
            );
        }
        let cache = SessionCache::new(
            config.cache_capacity,
            config.cache_ttl(),
            config.max_concurrent_loads,
            config.load_timeout,
            clock.clone(),
            config.binding,
        );
        let (events, _) = broadcast::channel(config.event_capacity);
        crate::metrics::describe();
        let inner = Arc::new(Inner {
            store: Arc::new(crate::store::Observed::new(store)),
            push: PushCodec::new(keys.clone()),
            keys,
            touches: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_touches)),
            config,
            clock,
            cache,
            events,
        });
        if let Some(rx) = inner.store.push_messages() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(follow_push(Arc::downgrade(&inner), rx));
            } else {
                tracing::warn!(
                    "session manager built outside a Tokio runtime: push invalidations are not followed"
                );
            }
        }
        Ok(Self { inner })
    }

    /// The policy in force.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The store, as the manager calls it: every call through it is counted, timed and
    /// traced (see [`crate::metrics`]).
    #[must_use]
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The deployment's keys (for MACs of the app's own, such as CSRF tokens).
    #[must_use]
    pub fn keys(&self) -> &KeySet {
        &self.inner.keys
    }

    /// Now, by the manager's clock.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// Subscribes to session events in this process: every event this node logs, with
    /// the id the store's log gave it.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    /// Runs a store call under the configured deadline.
    async fn deadline<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, crate::StoreError>>,
    ) -> Result<T, crate::StoreError> {
        self.inner.deadline(call).await
    }

    fn emit(&self, event: SessionEvent) {
        // No subscriber is fine.
        let _ = self.inner.events.send(event);
    }

    /// Reads the user's epoch; call it before checking credentials and pass it to
    /// [`SessionManager::issue_after`], so a revoke-all that lands in between wins.
    ///
    /// # Errors
    ///
    /// The store's error; [`SessionError::UserDisabled`] for a deprovisioned user.
    pub async fn login_epoch(&self, user_id: &UserId) -> Result<LoginEpoch, SessionError> {
        let state = self.deadline(self.inner.store.user_state(user_id)).await?;
        if state.disabled {
            return Err(SessionError::UserDisabled);
        }
        Ok(LoginEpoch(state.epoch))
    }

    /// Issues a session for `principal`.
    ///
    /// # Errors
    ///
    /// The store's error; [`SessionError::Superseded`] if a revoke-all for the user ran
    /// meanwhile; [`SessionError::UserDisabled`] for a deprovisioned user.
    pub async fn issue(
        &self,
        principal: Principal,
        client: ClientInfo,
    ) -> Result<Issued, SessionError> {
        let epoch = self.login_epoch(principal.user_id()).await?;
        self.issue_after(epoch, principal, client).await
    }

    /// Issues a session for `principal` unless the user's epoch moved past `epoch`.
    ///
    /// # Errors
    ///
    /// The store's error; [`SessionError::Superseded`] if a revoke-all for the user ran
    /// after `epoch` was read; [`SessionError::UserDisabled`] for a deprovisioned user.
    pub async fn issue_after(
        &self,
        epoch: LoginEpoch,
        principal: Principal,
        client: ClientInfo,
    ) -> Result<Issued, SessionError> {
        self.create(principal, client, Some(epoch), None, None)
            .await
    }

    /// Issues a session for a user who signed in through an identity provider, recording
    /// the provider's session (`iss`, `sub`, `sid`) so that the provider can end it.
    ///
    /// # Errors
    ///
    /// As [`SessionManager::issue_after`].
    pub async fn issue_via_idp(
        &self,
        epoch: LoginEpoch,
        user_id: UserId,
        link: IdpLink,
        client: ClientInfo,
    ) -> Result<Issued, SessionError> {
        self.create(
            Principal::user(user_id),
            client,
            Some(epoch),
            None,
            Some(link),
        )
        .await
    }

    /// Starts an agent session acting for `grantor`'s user. The store checks, in the same
    /// operation that creates it, that `grantor` is still alive and was issued at the
    /// user's current epoch: a revoke-all that races the grant wins.
    ///
    /// # Errors
    ///
    /// [`SessionError::GrantorGone`] when the check fails; the store's error.
    pub async fn grant_agent(
        &self,
        grantor: &Session,
        agent_id: AgentId,
        agent_name: String,
        client: ClientInfo,
    ) -> Result<Issued, SessionError> {
        let principal = Principal::Agent {
            user_id: grantor.user_id().clone(),
            agent_id,
            agent_name,
        };
        self.create(principal, client, None, Some(grantor.id()), None)
            .await
    }

    async fn create(
        &self,
        principal: Principal,
        client: ClientInfo,
        epoch: Option<LoginEpoch>,
        granted_by: Option<SessionId>,
        idp: Option<IdpLink>,
    ) -> Result<Issued, SessionError> {
        let id = self.inner.store.new_session_id(principal.user_id());
        let IssuedToken {
            id,
            secret_hash,
            tag,
            token,
        } = self.inner.keys.issue_for(id);
        let now = self.now();
        let kind = principal.kind();
        let record = SessionRecord {
            id,
            secret_hash,
            principal,
            created_at: now,
            last_active_at: now,
            expires_at: now + self.inner.config.ttl,
            user_agent: client.user_agent,
            ip: client.ip,
            revoked_at: None,
            revocation_reason: None,
            epoch: epoch.map_or(0, |e| e.0),
            idp,
        };
        let started = self.inner.cache.generation(id);
        let created = self
            .deadline(self.inner.store.create(NewSession {
                record: &record,
                expected_epoch: epoch.map(|e| e.0),
                granted_by,
                max_user_sessions: match kind {
                    SessionKind::User => self.inner.config.max_user_sessions,
                    SessionKind::Agent => None,
                },
                // Granting an agent is also the user's doing.
                actor: Actor::User,
            }))
            .await?;
        let (event_id, evicted) = match created {
            Created::Created { event_id, evicted } => (event_id, evicted),
            Created::EpochMoved => return Err(SessionError::Superseded),
            Created::GrantorGone => return Err(SessionError::GrantorGone),
            Created::UserDisabled => return Err(SessionError::UserDisabled),
        };
        self.emit(SessionEvent::about(
            event_id,
            crate::EventType::Created,
            record.id,
            &record.principal,
            None,
            Actor::User,
            now,
        ));
        if !evicted.is_empty() {
            let change = Change {
                reason: &RevocationReason::SessionLimit,
                actor: Actor::System,
                at: now,
            };
            self.after_revoke(&evicted, &change).await;
        }
        let live = self.inner.cache.insert_live(record, tag, started);
        Ok(Issued {
            session: Session(live),
            token,
        })
    }

    /// Checks a presented token: MAC first (a forgery costs no lookup), then the cache,
    /// then the store.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] to answer with.
    pub async fn validate(&self, token: &[u8]) -> Result<Session, Refusal> {
        let verified = self.verify(token)?;
        match self.validate_cached(&verified) {
            Some(answer) => answer,
            None => self.validate_loaded(&verified).await,
        }
    }

    /// Checks a token's shape and MAC, without any lookup.
    ///
    /// # Errors
    ///
    /// [`Refusal::Invalid`] for anything this deployment did not issue.
    pub fn verify(&self, token: &[u8]) -> Result<VerifiedToken, Refusal> {
        self.inner.keys.verify(token).map_err(|_| Refusal::Invalid)
    }

    /// The answer from this node's cache alone, if it has one: synchronous, and allocation
    /// free on a hit. `None` means the store must be asked ([`Self::validate_loaded`]).
    pub fn validate_cached(&self, token: &VerifiedToken) -> Option<Result<Session, Refusal>> {
        let now = self.inner.clock.unix_nanos();
        self.inner
            .cache
            .lookup(token.id, now)
            .map(|cached| self.decide(token, cached, now))
    }

    /// The answer after loading the session from the store (shared with concurrent loads
    /// of the same id).
    ///
    /// # Errors
    ///
    /// The [`Refusal`] to answer with; [`Refusal::Unavailable`] when the store fails.
    pub async fn validate_loaded(&self, token: &VerifiedToken) -> Result<Session, Refusal> {
        let cached = self
            .inner
            .cache
            .load(token, &*self.inner.store, |rec| {
                self.keep_revoked(rec.expires_at)
            })
            .await
            .map_err(Refusal::Unavailable)?;
        self.decide(token, cached, self.inner.clock.unix_nanos())
    }

    fn decide(
        &self,
        token: &VerifiedToken,
        cached: Cached,
        now_nanos: i64,
    ) -> Result<Session, Refusal> {
        let live = match cached {
            Cached::Valid(live) => live,
            Cached::Revoked { .. } => return Err(Refusal::Revoked),
            Cached::Unknown { .. } => return Err(Refusal::Invalid),
        };
        if !live.proven_by(token) {
            return Err(Refusal::Invalid);
        }
        let now_s = now_nanos.div_euclid(1_000_000_000);
        let idle = i64::try_from(self.inner.config.idle_timeout().as_secs()).unwrap_or(i64::MAX);
        let last = live.last_seen();
        if now_nanos >= live.expires_at_nanos || now_s.saturating_sub(last) >= idle {
            if live.first_expiry_report() {
                self.report_expired(live.id);
            }
            return Err(Refusal::Expired);
        }
        if now_s > last {
            live.record_activity(now_s);
        }
        self.maybe_touch(&live, now_nanos, now_s);
        Ok(Session(live))
    }

    /// Risk binding in report mode: logs `session.suspicious` (actor `system`) off the
    /// request path.
    pub(crate) fn report_suspicious(&self, session: &Session) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        let event = SessionEvent::about(
            crate::EventId::new(""),
            crate::EventType::Suspicious,
            session.id(),
            session.principal(),
            None,
            Actor::System,
            self.now(),
        );
        handle.spawn(async move {
            match inner.deadline(inner.store.append_event(&event)).await {
                Ok(id) => {
                    let _ = inner.events.send(SessionEvent { id, ..event });
                }
                Err(e) => tracing::warn!(session_id = %event.session_id, error = %e, "logging a suspicious session failed"),
            }
        });
    }

    /// Risk binding in revoke mode: in force on this node at once, then written to the
    /// store (reason `risk_detected`, actor `system`) and pushed, off the request path,
    /// retried until the store takes it.
    pub(crate) fn revoke_for_risk(&self, session: &Session) {
        let id = session.id();
        let keep = self.keep_revoked(session.expires_at());
        self.inner.cache.mark_revoked(id, keep);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let manager = self.clone();
        handle.spawn(async move {
            let mut wait = Duration::from_millis(100);
            for _ in 0..20 {
                match manager
                    .revoke(id, RevocationReason::RiskDetected, Actor::System)
                    .await
                {
                    Ok(_) => return,
                    Err(e) => {
                        tracing::warn!(session_id = %id, error = %e, "risk revocation failed: retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                }
            }
            tracing::error!(session_id = %id, "risk revocation never reached the store");
        });
    }

    /// Revokes those of `user_id`'s active sessions that `filter` matches, with `reason`
    /// (an app's own risk engine: `RevocationReason::RiskDetected`). Returns how many.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::{Actor, ClientInfo, KeySet, MemoryStore, Principal, RevocationReason, SessionConfig, SessionFilter, SessionManager, UserId};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
    /// let client = |ip: &str| ClientInfo { ip: Some(ip.into()), user_agent: None };
    /// manager.issue(Principal::user("alice"), client("198.51.100.7")).await?;
    /// manager.issue(Principal::user("alice"), client("203.0.113.9")).await?;
    /// let filter = SessionFilter { ip: Some("203.0.113.0/24".parse()?), ..SessionFilter::default() };
    /// let n = manager
    ///     .revoke_user_matching(&UserId::from("alice"), &filter, RevocationReason::RiskDetected, Actor::System)
    ///     .await?;
    /// assert_eq!(n, 1);
    /// assert_eq!(manager.list(&UserId::from("alice")).await?.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn revoke_user_matching(
        &self,
        user_id: &UserId,
        filter: &SessionFilter,
        reason: RevocationReason,
        actor: Actor,
    ) -> Result<usize, SessionError> {
        let mut n = 0;
        for record in self.list(user_id).await? {
            if filter.matches(&record) && self.revoke(record.id, reason.clone(), actor).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Logs the session's expiry (once, whichever node sees it first), off the request
    /// path.
    fn report_expired(&self, id: SessionId) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        let at = self.now();
        handle.spawn(async move {
            match inner.deadline(inner.store.report_expired(id, at)).await {
                Ok(Some(event)) => {
                    let _ = inner.events.send(event);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(session_id = %id, error = %e, "logging an expiry failed"),
            }
        });
    }

    fn maybe_touch(&self, live: &Arc<CachedSession>, now_nanos: i64, now_s: i64) {
        let interval = i64::try_from(self.inner.config.effective_touch_interval().as_secs())
            .unwrap_or(i64::MAX);
        let written = live.last_written();
        if now_s.saturating_sub(written) < interval.max(1) {
            return;
        }
        // A bound on writes in flight: with none free, a later request writes instead.
        let Ok(permit) = self.inner.touches.clone().try_acquire_owned() else {
            return;
        };
        if !live.claim_write(written, now_s) {
            return; // another request of this session is writing
        }
        let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_nanos))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let store = self.inner.store.clone();
        let id = live.id;
        let deadline = self.inner.config.load_timeout;
        tokio::spawn(async move {
            match tokio::time::timeout(deadline, store.touch(id, now)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(session_id = %id, error = %e, "session touch failed"),
                Err(_) => tracing::warn!(session_id = %id, "session touch timed out"),
            }
            drop(permit);
        });
    }

    /// How long a node remembers a session as revoked: until its own end, at least the
    /// staleness bound, at most the lifetime.
    fn keep_revoked(&self, expires_at: OffsetDateTime) -> Duration {
        let left = Duration::try_from(expires_at - self.now()).unwrap_or(Duration::ZERO);
        left.min(self.inner.config.ttl)
            .max(self.inner.config.cache_ttl())
    }

    /// The user's active sessions (user and agent), newest first, at most the configured
    /// list limit.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list(&self, user_id: &UserId) -> Result<Vec<SessionRecord>, SessionError> {
        let now = self.now();
        let idle = self.inner.config.idle_timeout();
        let mut sessions = self
            .deadline(
                self.inner
                    .store
                    .list_active(user_id, now, self.inner.config.list_limit),
            )
            .await?;
        sessions.retain(|s| s.last_active_at + idle > now);
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(sessions)
    }

    /// In force on this node at once, then pushed to the others, then handed to
    /// in-process subscribers.
    async fn after_revoke(&self, revoked: &[RevokedSession], change: &Change<'_>) {
        if !revoked.is_empty() {
            crate::metrics::count_revocations(change.reason, change.actor, revoked.len());
        }
        for r in revoked {
            self.inner
                .cache
                .mark_revoked(r.id, self.keep_revoked(r.expires_at));
        }
        if !revoked.is_empty() {
            let ids: Vec<SessionId> = revoked.iter().map(|r| r.id).collect();
            self.publish(&ids).await;
        }
        for r in revoked {
            self.emit(r.event(change));
        }
    }

    async fn publish(&self, ids: &[SessionId]) {
        let now_ms = i64::try_from(self.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let store = &self.inner.store;
        let payloads = if ids.len() > MAX_LISTED_REVOCATIONS {
            vec![self.inner.push.encode_resync(now_ms)]
        } else {
            self.inner.push.encode(ids, store.push_limit(), now_ms)
        };
        for payload in payloads {
            if let Err(e) = self.deadline(store.publish(&payload)).await {
                // Other nodes still learn within the staleness bound.
                tracing::warn!(error = %e, count = ids.len(), "publishing revocations failed");
            }
        }
    }

    fn change<'a>(&self, reason: &'a RevocationReason, actor: Actor) -> Change<'a> {
        Change {
            reason,
            actor,
            at: self.now(),
        }
    }

    /// Revokes one session. In force on this node before it returns; pushed to the others.
    /// Returns whether it was active.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn revoke(
        &self,
        id: SessionId,
        reason: RevocationReason,
        actor: Actor,
    ) -> Result<bool, SessionError> {
        let change = self.change(&reason, actor);
        let revoked = self.deadline(self.inner.store.revoke(id, change)).await?;
        let found = revoked.is_some();
        self.after_revoke(revoked.as_slice(), &change).await;
        Ok(found)
    }

    /// Revokes one of `user_id`'s own active sessions.
    ///
    /// # Errors
    ///
    /// [`SessionError::NotFound`] when the id is unknown, not active, or someone else's
    /// (nothing is revoked then); the store's error.
    pub async fn revoke_owned(
        &self,
        user_id: &UserId,
        id: SessionId,
        reason: RevocationReason,
        actor: Actor,
    ) -> Result<(), SessionError> {
        match self.deadline(self.inner.store.load(id)).await? {
            Some(rec) if rec.user_id() == user_id && !rec.is_revoked() => {}
            _ => return Err(SessionError::NotFound(id)),
        }
        if self.revoke(id, reason, actor).await? {
            Ok(())
        } else {
            Err(SessionError::NotFound(id))
        }
    }

    /// Revokes the user's sessions in `scope`, but `except`, in one store operation.
    /// Returns how many were revoked.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn revoke_all(
        &self,
        user_id: &UserId,
        scope: RevokeScope,
        except: Option<SessionId>,
        reason: RevocationReason,
        actor: Actor,
    ) -> Result<usize, SessionError> {
        self.revoke_user(user_id, scope, except, &reason, actor, false)
            .await
    }

    async fn revoke_user(
        &self,
        user_id: &UserId,
        scope: RevokeScope,
        except: Option<SessionId>,
        reason: &RevocationReason,
        actor: Actor,
        disable_user: bool,
    ) -> Result<usize, SessionError> {
        let change = self.change(reason, actor);
        let revoked = self
            .deadline(self.inner.store.revoke_many(RevokeMany {
                user_id,
                scope: &scope,
                except,
                change,
                disable_user,
            }))
            .await?;
        self.after_revoke(&revoked, &change).await;
        Ok(revoked.len())
    }

    /// Revokes every session of one agent acting for `user_id`. Returns how many.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn revoke_agent(
        &self,
        user_id: &UserId,
        agent_id: AgentId,
        actor: Actor,
    ) -> Result<usize, SessionError> {
        self.revoke_all(
            user_id,
            RevokeScope::Agent(agent_id),
            None,
            RevocationReason::AgentDisconnected,
            actor,
        )
        .await
    }

    /// Deprovisions a user: revokes every session and agent (reason `user_deprovisioned`)
    /// and refuses new sessions for them until [`SessionManager::enable_user`], in one
    /// store operation. Returns how many sessions were revoked.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn disable_user(
        &self,
        user_id: &UserId,
        actor: Actor,
    ) -> Result<usize, SessionError> {
        self.revoke_user(
            user_id,
            RevokeScope::All,
            None,
            &RevocationReason::UserDeprovisioned,
            actor,
            true,
        )
        .await
    }

    /// Lets a deprovisioned user sign in again.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn enable_user(&self, user_id: &UserId) -> Result<(), SessionError> {
        Ok(self
            .deadline(self.inner.store.set_user_disabled(user_id, false))
            .await?)
    }

    /// Whether the user is deprovisioned.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn is_user_disabled(&self, user_id: &UserId) -> Result<bool, SessionError> {
        Ok(self
            .deadline(self.inner.store.user_state(user_id))
            .await?
            .disabled)
    }

    /// Revokes every active session, of any user, that `filter` matches, in one store
    /// operation (or, with `dry_run`, counts them). An empty filter matches nothing.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn revoke_matching(
        &self,
        filter: &SessionFilter,
        reason: RevocationReason,
        actor: Actor,
        dry_run: bool,
    ) -> Result<Matched, SessionError> {
        if filter.is_empty() {
            return Ok(Matched::default());
        }
        let change = self.change(&reason, actor);
        // A bulk operation may take longer than a request's store call.
        let matched = tokio::time::timeout(
            self.inner.config.load_timeout * 30,
            self.inner.store.revoke_matching(filter, change, dry_run),
        )
        .await
        .map_err(|_| crate::StoreError::Timeout)??;
        self.after_revoke(&matched.revoked, &change).await;
        Ok(matched)
    }

    /// The event log, oldest first, after a cursor.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn events(&self, query: &EventQuery) -> Result<Vec<SessionEvent>, SessionError> {
        Ok(self.deadline(self.inner.store.events(query)).await?)
    }

    /// One user's events, newest first.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<SessionEvent>, SessionError> {
        Ok(self.deadline(self.inner.store.audit(query)).await?)
    }

    /// Deletes ended sessions and old events past the configured retention.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn purge(&self) -> Result<Purged, SessionError> {
        let retention = self.inner.config.retention;
        let purge = self.inner.store.purge(self.now(), retention);
        Ok(
            tokio::time::timeout(self.inner.config.load_timeout * 30, purge)
                .await
                .map_err(|_| crate::StoreError::Timeout)??,
        )
    }

    /// Runs [`SessionManager::purge`] every `every`, for as long as the task lives (abort
    /// the handle to stop it). A failed purge is logged and retried at the next tick.
    pub fn spawn_purge(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let manager = Self { inner };
                match manager.purge().await {
                    Ok(p) => tracing::debug!(sessions = p.sessions, events = p.events, "purged"),
                    Err(e) => tracing::warn!(error = %e, "purge failed"),
                }
            }
        })
    }

    /// Applies a push message as if the push channel had delivered it (done for you when
    /// the store has a push channel). Returns why it was ignored, if it was.
    pub fn apply_push(&self, msg: &PushMessage) -> Result<(), crate::push::Ignored> {
        self.inner.apply(msg)
    }

    /// The push notice this node would publish for `ids`, sent at `sent_at_ms`.
    #[cfg(test)]
    pub(crate) fn push_notice(&self, ids: &[SessionId], sent_at_ms: i64) -> String {
        self.inner
            .push
            .encode(ids, usize::MAX, sent_at_ms)
            .remove(0)
    }
}

impl Inner {
    async fn deadline<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, crate::StoreError>>,
    ) -> Result<T, crate::StoreError> {
        tokio::time::timeout(self.config.load_timeout, call)
            .await
            .map_err(|_| crate::StoreError::Timeout)?
    }

    fn apply(&self, msg: &PushMessage) -> Result<(), crate::push::Ignored> {
        // Never the payload in a field: it is whatever someone published.
        let span = tracing::debug_span!(
            "session_push",
            ids = tracing::field::Empty,
            resync = tracing::field::Empty,
        )
        .entered();
        let metrics = self.cache.metrics();
        match msg {
            PushMessage::Reconnected => {
                span.record("resync", true);
                metrics.push_resyncs.increment(1);
                self.cache.resync();
                Ok(())
            }
            PushMessage::Payload(payload) => {
                metrics.push_received.increment(1);
                match self.push.decode(payload) {
                    Ok(notice) => {
                        let now_ms = self.clock.now().unix_timestamp_nanos() / 1_000_000;
                        let lag_ms = (now_ms - i128::from(notice.sent_at_ms)).max(0);
                        #[expect(clippy::cast_precision_loss, reason = "milliseconds of lag")]
                        metrics.push_lag.record(lag_ms as f64 / 1000.0);
                        span.record("ids", notice.ids.len());
                        span.record("resync", notice.resync);
                        for id in &notice.ids {
                            self.cache.forget(*id);
                        }
                        if notice.resync {
                            metrics.push_resyncs.increment(1);
                            self.cache.resync();
                        }
                        Ok(())
                    }
                    Err(ignored) => {
                        metrics.push_ignored.increment(1);
                        tracing::debug!(reason = %ignored, "push message ignored");
                        Err(ignored)
                    }
                }
            }
        }
    }
}

async fn follow_push(inner: std::sync::Weak<Inner>, mut rx: broadcast::Receiver<PushMessage>) {
    loop {
        let msg = match rx.recv().await {
            Ok(msg) => msg,
            Err(broadcast::error::RecvError::Lagged(_)) => PushMessage::Reconnected,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(inner) = inner.upgrade() else { return };
        let _ = inner.apply(&msg);
    }
}

#[cfg(test)]
mod tests;
