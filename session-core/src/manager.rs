//! [`SessionManager`]: issues, validates, touches, lists and revokes sessions.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::cache::{Cached, Live, SessionCache};
use crate::clock::{Clock, SystemClock};
use crate::config::SessionConfig;
use crate::error::SessionError;
use crate::events::{EventType, SessionEvent};
use crate::model::{
    Actor, AgentId, Principal, RevocationReason, SessionId, SessionKind, SessionRecord, UserId,
};
use crate::store::{Created, Invalidation, RevokeMany, RevokeScope, SessionStore};
use crate::token::{IssuedToken, KeySet, SessionToken, VerifiedToken};

/// A valid session, handed to request handlers. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Session(Arc<Live>);

impl Session {
    /// The session's id.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.0.id
    }

    /// Who it authenticates.
    #[must_use]
    pub fn principal(&self) -> &Principal {
        &self.0.principal
    }

    /// The user (for an agent, the user it acts for).
    #[must_use]
    pub fn user_id(&self) -> &UserId {
        self.0.principal.user_id()
    }

    /// User or agent.
    #[must_use]
    pub fn kind(&self) -> SessionKind {
        self.0.principal.kind()
    }

    /// When the session ends at the latest, whatever its activity.
    #[must_use]
    pub fn expires_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0.expires_at_nanos))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The latest activity this node has seen (whole seconds).
    #[must_use]
    pub fn last_active_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.last_seen())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id())
            .field("principal", self.principal())
            .finish_non_exhaustive()
    }
}

/// Why a request's session was not accepted. All but `Unavailable` are answers (401); a
/// store that cannot answer is a 503 and signs no one out.
#[derive(Debug)]
#[non_exhaustive]
pub enum Denial {
    /// No token came with the request.
    Missing,
    /// Malformed, forged or unknown.
    Invalid,
    /// Past its lifetime or idle timeout.
    Expired,
    /// Revoked.
    Revoked,
    /// The store could not answer.
    Unavailable(Arc<crate::StoreError>),
}

/// The client details a new session records.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// The request's `User-Agent`.
    pub user_agent: Option<String>,
    /// The client's IP address.
    pub ip: Option<String>,
}

impl ClientInfo {
    /// From the request's raw `User-Agent` (kept only when it is UTF-8) and the peer's IP.
    #[must_use]
    pub fn from_request(user_agent: Option<&[u8]>, ip: Option<std::net::IpAddr>) -> Self {
        Self {
            user_agent: user_agent
                .and_then(|ua| std::str::from_utf8(ua).ok())
                .map(str::to_owned),
            ip: ip.map(|ip| ip.to_string()),
        }
    }
}

/// A user's revocation epoch as read at the start of a login; see [`SessionManager::issue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginEpoch(u64);

/// A session just issued: its record and its token (shown once).
#[derive(Debug)]
pub struct Issued {
    /// The new session.
    pub session: Session,
    /// Its token, for the cookie or the agent.
    pub token: SessionToken,
}

/// Issues, validates and revokes sessions over a [`SessionStore`], with a cache in front.
///
/// Cheap to clone; clones share the cache and the event channel.
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
    pub fn new(store: Arc<dyn SessionStore>, keys: KeySet, config: SessionConfig) -> Self {
        Self::with_clock(store, keys, config, Arc::new(SystemClock))
    }

    /// As [`SessionManager::new`], with a clock of your choosing (tests).
    pub fn with_clock(
        store: Arc<dyn SessionStore>,
        keys: KeySet,
        config: SessionConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let cache = SessionCache::new(
            config.cache_capacity,
            config.cache_ttl,
            config.max_concurrent_loads,
            config.load_timeout,
            clock.clone(),
        );
        let (events, _) = broadcast::channel(config.event_capacity);
        let inner = Arc::new(Inner {
            store,
            keys,
            config,
            clock,
            cache,
            events,
        });
        if let Some(rx) = inner.store.invalidations() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(follow_invalidations(Arc::downgrade(&inner), rx));
            } else {
                tracing::warn!(
                    "session manager built outside a Tokio runtime: push invalidations are not followed"
                );
            }
        }
        Self { inner }
    }

    /// The policy in force.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// Now, by the manager's clock.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// A token against cross-site request forgery, bound to `session` (a MAC of its id
    /// under the deployment's key: nothing to store, valid on every node, dead with the
    /// session). Put it in a hidden field of every form that changes something.
    #[must_use]
    pub fn csrf_token(&self, session: &Session) -> String {
        use base64::Engine as _;
        let tag = self.inner.keys.tag(b"csrf", session.id().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
    }

    /// Whether `presented` is `session`'s CSRF token (constant time).
    #[must_use]
    pub fn verify_csrf(&self, session: &Session, presented: &str) -> bool {
        use base64::Engine as _;
        let mut tag = [0u8; 48];
        if presented.len() != 43 {
            return false;
        }
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(presented, &mut tag) {
            Ok(32) => self
                .inner
                .keys
                .verify_tag(b"csrf", session.id().as_bytes(), &tag[..32]),
            _ => false,
        }
    }

    /// Subscribes to session events in this process.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    /// Runs a store call under the configured deadline.
    async fn deadline<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, crate::StoreError>>,
    ) -> Result<T, crate::StoreError> {
        tokio::time::timeout(self.inner.config.load_timeout, call)
            .await
            .map_err(|_| crate::StoreError::Timeout)?
    }

    fn emit(
        &self,
        ty: EventType,
        rec: &SessionRecord,
        reason: Option<RevocationReason>,
        actor: Actor,
    ) {
        self.emit_about(ty, rec.id, &rec.principal, reason, actor);
    }

    fn emit_about(
        &self,
        ty: EventType,
        id: SessionId,
        principal: &Principal,
        reason: Option<RevocationReason>,
        actor: Actor,
    ) {
        let ev = SessionEvent::about(ty, id, principal, reason, actor, self.now());
        // No subscriber is fine.
        let _ = self.inner.events.send(ev);
    }

    /// Reads the user's epoch; call it before checking credentials and pass it to
    /// [`SessionManager::issue_after`], so a revoke-all that lands in between wins.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn login_epoch(&self, user_id: &UserId) -> Result<LoginEpoch, SessionError> {
        Ok(LoginEpoch(
            self.deadline(self.inner.store.user_epoch(user_id)).await?,
        ))
    }

    /// Issues a session for `principal`.
    ///
    /// # Errors
    ///
    /// The store's error; [`SessionError::Superseded`] if a revoke-all for the user ran
    /// meanwhile.
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
    /// after `epoch` was read.
    pub async fn issue_after(
        &self,
        epoch: LoginEpoch,
        principal: Principal,
        client: ClientInfo,
    ) -> Result<Issued, SessionError> {
        let IssuedToken {
            id,
            secret_hash,
            tag,
            token,
        } = self.inner.keys.issue();
        let now = self.now();
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
        };
        let started = self.inner.cache.generation(id);
        match self
            .deadline(self.inner.store.create(&record, epoch.0))
            .await?
        {
            Created::Created => {}
            Created::EpochMoved => return Err(SessionError::Superseded),
        }
        // Granting an agent is also the user's doing.
        self.emit(EventType::Created, &record, None, Actor::User);
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
    /// The [`Denial`] to answer with.
    pub async fn validate(&self, token: &[u8]) -> Result<Session, Denial> {
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
    /// [`Denial::Invalid`] for anything this deployment did not issue.
    pub fn verify(&self, token: &[u8]) -> Result<VerifiedToken, Denial> {
        self.inner.keys.verify(token).map_err(|_| Denial::Invalid)
    }

    /// The answer from this node's cache alone, if it has one: synchronous, and allocation
    /// free on a hit. `None` means the store must be asked ([`Self::validate_loaded`]).
    pub fn validate_cached(&self, token: &VerifiedToken) -> Option<Result<Session, Denial>> {
        let now = self.inner.clock.unix_nanos();
        self.inner
            .cache
            .get(token.id, now)
            .map(|cached| self.judge(token, cached, now))
    }

    /// The answer after loading the session from the store (shared with concurrent loads
    /// of the same id).
    ///
    /// # Errors
    ///
    /// The [`Denial`] to answer with; [`Denial::Unavailable`] when the store fails.
    pub async fn validate_loaded(&self, token: &VerifiedToken) -> Result<Session, Denial> {
        let cached = self
            .inner
            .cache
            .load(token, &*self.inner.store, |rec| self.keep_revoked(rec))
            .await
            .map_err(Denial::Unavailable)?;
        self.judge(token, cached, self.inner.clock.unix_nanos())
    }

    fn judge(
        &self,
        token: &VerifiedToken,
        cached: Cached,
        now_nanos: i64,
    ) -> Result<Session, Denial> {
        let live = match cached {
            Cached::Live(live) => live,
            Cached::Revoked { .. } => return Err(Denial::Revoked),
            Cached::Unknown { .. } => return Err(Denial::Invalid),
        };
        if !live.proven_by(token) {
            return Err(Denial::Invalid);
        }
        let now_s = now_nanos.div_euclid(1_000_000_000);
        let idle = i64::try_from(self.inner.config.idle_timeout.as_secs()).unwrap_or(i64::MAX);
        let last = live.last_seen();
        if now_nanos >= live.expires_at_nanos || now_s.saturating_sub(last) >= idle {
            if live.first_expiry_report() {
                self.emit_about(
                    EventType::Expired,
                    live.id,
                    &live.principal,
                    None,
                    Actor::System,
                );
            }
            return Err(Denial::Expired);
        }
        if now_s > last {
            live.saw(now_s);
        }
        self.maybe_touch(&live, now_nanos, now_s);
        Ok(Session(live))
    }

    fn maybe_touch(&self, live: &Arc<Live>, now_nanos: i64, now_s: i64) {
        let interval = i64::try_from(self.inner.config.effective_touch_interval().as_secs())
            .unwrap_or(i64::MAX);
        let written = live.last_written();
        if now_s.saturating_sub(written) < interval.max(1) {
            return;
        }
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
        });
    }

    fn keep_revoked(&self, rec: &SessionRecord) -> Duration {
        let left = rec.expires_at - self.now();
        Duration::try_from(left)
            .unwrap_or(Duration::ZERO)
            .clamp(self.inner.config.cache_ttl, self.inner.config.ttl)
    }

    /// The user's active sessions (user and agent), newest first.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list(&self, user_id: &UserId) -> Result<Vec<SessionRecord>, SessionError> {
        let now = self.now();
        let idle = self.inner.config.idle_timeout;
        let mut sessions = self
            .deadline(self.inner.store.list_active(user_id, now))
            .await?;
        sessions.retain(|s| s.last_active_at + idle > now);
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(sessions)
    }

    async fn after_revoke(
        &self,
        revoked: &[SessionRecord],
        reason: &RevocationReason,
        actor: Actor,
    ) {
        for rec in revoked {
            self.inner
                .cache
                .mark_revoked(rec.id, self.keep_revoked(rec));
        }
        if !revoked.is_empty() {
            let ids: Vec<SessionId> = revoked.iter().map(|r| r.id).collect();
            if let Err(e) = self.deadline(self.inner.store.publish(&ids)).await {
                // Other nodes still learn within the staleness bound.
                tracing::warn!(error = %e, count = ids.len(), "publishing revocations failed");
            }
        }
        for rec in revoked {
            self.emit(EventType::Revoked, rec, Some(reason.clone()), actor);
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
        let revoked = self
            .deadline(self.inner.store.revoke(id, &reason, self.now()))
            .await?;
        let found = revoked.is_some();
        self.after_revoke(revoked.as_slice(), &reason, actor).await;
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
        let revoked = self
            .deadline(self.inner.store.revoke_many(RevokeMany {
                user_id,
                scope: &scope,
                except,
                reason: &reason,
                at: self.now(),
            }))
            .await?;
        self.after_revoke(&revoked, &reason, actor).await;
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

    /// Deletes expired sessions from the store. Returns how many.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn purge_expired(&self) -> Result<u64, SessionError> {
        Ok(self
            .deadline(self.inner.store.purge_expired(self.now()))
            .await?)
    }

    /// Applies a push-channel message (done for you when the store has a push channel).
    pub fn apply_invalidation(&self, msg: Invalidation) {
        self.inner.apply(msg);
    }
}

impl Inner {
    fn apply(&self, msg: Invalidation) {
        match msg {
            Invalidation::Revoked(id) => self.cache.forget(id),
            Invalidation::Resync => self.cache.resync(),
        }
    }
}

async fn follow_invalidations(
    inner: std::sync::Weak<Inner>,
    mut rx: broadcast::Receiver<Invalidation>,
) {
    loop {
        let msg = match rx.recv().await {
            Ok(msg) => msg,
            Err(broadcast::error::RecvError::Lagged(_)) => Invalidation::Resync,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(inner) = inner.upgrade() else { return };
        inner.apply(msg);
    }
}

#[cfg(test)]
mod tests;
