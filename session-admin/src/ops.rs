//! [`Admin`]: the operations behind the commands, each returning a value (the binary only
//! parses, calls and prints).
//!
//! Every revocation goes through [`SessionManager`], with actor `admin`: written to the
//! store with its event in one operation, then published on the store's push channel,
//! signed with the deployment's keys, so running nodes drop the session at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use session_core::events::{AuditQuery, EventQuery};
use session_core::model::SessionRecord;
use session_core::store::{Matched, Purged, Retention};
use session_core::{
    Actor, EventId, EventType, KeySet, RevocationReason, RevokeScope, SessionConfig, SessionEvent,
    SessionFilter, SessionId, SessionManager, SessionStore, UserId,
};
use time::OffsetDateTime;

use crate::error::Error;

/// The most events one store call returns (the admin API's page limit).
pub const PAGE: usize = 1000;

/// How far past now [`everyone`] reaches, so that a node whose clock runs ahead, which
/// stamped its sessions' `created_at` a little in the future, is signed out too.
pub const EVERYONE_MARGIN: Duration = Duration::from_secs(24 * 3600);

/// The filter every active session matches: created before [`EVERYONE_MARGIN`] past
/// `now`. One store operation revokes what it matches (one statement, one transaction,
/// or one script per Redis shard), so a session issued after it ran is not touched.
#[must_use]
pub fn everyone(now: OffsetDateTime) -> SessionFilter {
    SessionFilter {
        created_before: Some(now + EVERYONE_MARGIN),
        ..SessionFilter::default()
    }
}

/// How the tool's [`SessionManager`] is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminOptions {
    /// The deadline of each store call (bulk revocations and purges get 30 times as long).
    pub timeout: Duration,
    /// The most sessions [`Admin::list`] returns.
    pub list_limit: usize,
    /// What [`Admin::purge`] keeps.
    pub retention: Retention,
}

impl Default for AdminOptions {
    /// 5 s, 500 sessions, the default retention (ended sessions 7 days, events 400).
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            list_limit: 500,
            retention: Retention::default(),
        }
    }
}

impl AdminOptions {
    /// The options, with each store call's deadline.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The options, with the most sessions [`Admin::list`] returns.
    #[must_use]
    pub fn with_list_limit(mut self, limit: usize) -> Self {
        self.list_limit = limit;
        self
    }

    /// The options, with what [`Admin::purge`] keeps.
    #[must_use]
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }
}

/// A page of the event log, in the shape of the admin API's `GET /admin/events`: pass
/// `next_cursor` back to read on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventsPage {
    /// The events.
    pub data: Vec<SessionEvent>,
    /// The last id returned (with none, the cursor given, or null).
    pub next_cursor: Option<EventId>,
}

/// The operations, over one store: what the `session-admin` command runs, for an
/// operator's own tools (a runbook script, a chat bot).
///
/// ```
/// use std::sync::Arc;
/// use session_admin::ops::{Admin, AdminOptions};
/// use session_core::{ClientInfo, KeySet, MemoryStore, Principal, RevocationReason, SessionConfig, SessionManager, UserId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(MemoryStore::new());
/// let keys = KeySet::random(); // in production: the deployment's SESSION_KEYS
/// let app = SessionManager::new(store.clone(), keys.clone(), SessionConfig::default())?;
/// app.issue(Principal::user("alice"), ClientInfo::default()).await?;
/// app.issue(Principal::agent("alice", "agent-1", "Assistant"), ClientInfo::default()).await?;
///
/// let admin = Admin::new(store.clone(), Some(keys), AdminOptions::default())?;
/// let alice = UserId::from("alice");
/// assert_eq!(admin.list(&alice).await?.len(), 2);
/// assert_eq!(admin.revoke_all(&alice, RevocationReason::AdminRevoked).await?, 2);
/// assert!(admin.list(&alice).await?.is_empty());
///
/// // Without the keys it can read, never revoke: its push would not be believed.
/// let reader = Admin::new(store, None, AdminOptions::default())?;
/// assert!(reader.revoke_all(&alice, RevocationReason::AdminRevoked).await.is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Admin {
    manager: SessionManager,
    can_revoke: bool,
}

impl Admin {
    /// Over `store`. With `keys` (the deployment's `SESSION_KEYS`), it can revoke: the
    /// push to running nodes is signed with them. Without, only the read-only operations
    /// and [`Admin::purge`] work; the others fail with [`Error::KeysRequired`].
    ///
    /// Must be called on a Tokio runtime (the manager follows the store's push channel).
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] for options that cannot work (a zero timeout or list limit).
    pub fn new(
        store: Arc<dyn SessionStore>,
        keys: Option<KeySet>,
        options: AdminOptions,
    ) -> Result<Self, Error> {
        let can_revoke = keys.is_some();
        // Without keys, a throwaway one: nothing is signed then (revocations are refused
        // before they reach the manager). Not `KeySet::random()`, whose warning about
        // sessions dying with the process means nothing for a tool that issues none.
        let keys = match keys {
            Some(keys) => keys,
            None => {
                KeySet::new([KeySet::generate_key()]).map_err(|e| Error::Usage(e.to_string()))?
            }
        };
        let config = Self::config(options).map_err(|e| Error::Usage(e.to_string()))?;
        let manager = SessionManager::new(store, keys, config)
            .map_err(|e| Error::Usage(format!("options: {e}")))?;
        Ok(Self {
            manager,
            can_revoke,
        })
    }

    /// A lifetime and idle timeout of 100 years, so that the listing shows every session
    /// the store holds as live (neither revoked nor past `expires_at`), as the store's
    /// own bulk revocations count them; the table's last-active column shows idleness.
    fn config(options: AdminOptions) -> Result<SessionConfig, session_core::ConfigError> {
        let max = session_core::config::MAX_DURATION;
        if options.list_limit == 0 {
            return Err(session_core::ConfigError::Invalid("list limit: at least 1"));
        }
        let config = SessionConfig::new()
            .with_ttl(max)?
            .with_idle_timeout(max)?
            .with_load_timeout(options.timeout)?
            .with_list_limit(options.list_limit)
            .with_retention(options.retention)
            .with_cache_capacity(1024);
        config.validate()?;
        Ok(config)
    }

    /// The manager underneath.
    #[must_use]
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }

    /// Whether it holds the deployment's keys, and so may revoke.
    #[must_use]
    pub fn can_revoke(&self) -> bool {
        self.can_revoke
    }

    fn revoking(&self) -> Result<(), Error> {
        if self.can_revoke {
            Ok(())
        } else {
            Err(Error::KeysRequired)
        }
    }

    /// The user's live sessions, user and agent, newest first.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn list(&self, user: &UserId) -> Result<Vec<SessionRecord>, Error> {
        Ok(self.manager.list(user).await?)
    }

    /// Revokes one session. `false` when it was not active (unknown, purged, or already
    /// revoked): nothing was done.
    ///
    /// # Errors
    ///
    /// [`Error::KeysRequired`]; the store's.
    pub async fn revoke(&self, id: SessionId, reason: RevocationReason) -> Result<bool, Error> {
        self.revoking()?;
        Ok(self.manager.revoke(id, reason, Actor::Admin).await?)
    }

    /// Revokes every session and agent of the user in one store operation (which also
    /// makes a login that raced it lose). Returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::KeysRequired`]; the store's.
    pub async fn revoke_all(
        &self,
        user: &UserId,
        reason: RevocationReason,
    ) -> Result<usize, Error> {
        self.revoking()?;
        Ok(self
            .manager
            .revoke_all(user, RevokeScope::All, None, reason, Actor::Admin)
            .await?)
    }

    /// Revokes every active session, of any user, that `filter` matches, in one store
    /// operation; with `dry_run`, only counts them (no keys needed then).
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] for a filter with no field; [`Error::KeysRequired`]; the store's.
    pub async fn revoke_matching(
        &self,
        filter: &SessionFilter,
        reason: RevocationReason,
        dry_run: bool,
    ) -> Result<Matched, Error> {
        if filter.is_empty() {
            return Err(Error::Usage(
                "give at least one of --created-before, --ip, --user-agent, --kind".to_owned(),
            ));
        }
        if !dry_run {
            self.revoking()?;
        }
        Ok(self
            .manager
            .revoke_matching(filter, reason, Actor::Admin, dry_run)
            .await?)
    }

    /// How many active sessions there are, of every user ([`everyone`], counted).
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn count_everyone(&self) -> Result<u64, Error> {
        let filter = everyone(self.manager.now());
        let reason = RevocationReason::AdminRevoked;
        let counted = self
            .manager
            .revoke_matching(&filter, reason, Actor::Admin, true)
            .await?;
        Ok(counted.matched)
    }

    /// Signs everyone out: revokes every active session, of every user, in one store
    /// operation ([`everyone`]).
    ///
    /// # Errors
    ///
    /// [`Error::KeysRequired`]; the store's.
    pub async fn sign_out_everyone(&self, reason: RevocationReason) -> Result<Matched, Error> {
        self.revoking()?;
        let filter = everyone(self.manager.now());
        Ok(self
            .manager
            .revoke_matching(&filter, reason, Actor::Admin, false)
            .await?)
    }

    /// One page of the log, oldest first: at most `limit` (up to [`PAGE`]) events after
    /// `after`, of `event_type` if given.
    ///
    /// # Errors
    ///
    /// The store's (a cursor the store cannot read included).
    pub async fn events(
        &self,
        after: Option<EventId>,
        limit: usize,
        event_type: Option<EventType>,
    ) -> Result<EventsPage, Error> {
        let query = EventQuery {
            after: after.clone(),
            limit: limit.clamp(1, PAGE),
            event_type,
        };
        let data = self.manager.events(&query).await?;
        let next_cursor = data.last().map(|e| e.id.clone()).or(after);
        Ok(EventsPage { data, next_cursor })
    }

    /// The events after `after`, oldest first, at most `max` (all, to the end of the log,
    /// with `None`), read page by page.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn events_after(
        &self,
        after: Option<EventId>,
        max: Option<usize>,
        event_type: Option<EventType>,
    ) -> Result<EventsPage, Error> {
        let mut all = Vec::new();
        let mut cursor = after;
        loop {
            let want = max.map_or(PAGE, |m| (m - all.len()).min(PAGE));
            if want == 0 {
                break;
            }
            let page = self.events(cursor.clone(), want, event_type).await?;
            let full = page.data.len() == want;
            cursor = page.next_cursor;
            all.extend(page.data);
            if !full {
                break;
            }
        }
        Ok(EventsPage {
            data: all,
            next_cursor: cursor,
        })
    }

    /// The last `lines` events of the log (of `event_type` if given), oldest first. The
    /// log is read forward with its cursor, [`PAGE`] events per call, to its end; the
    /// returned cursor is that end, where a follower goes on from.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn tail(
        &self,
        lines: usize,
        event_type: Option<EventType>,
    ) -> Result<EventsPage, Error> {
        let mut last = VecDeque::with_capacity(lines.min(PAGE) + 1);
        let mut cursor = None;
        loop {
            let page = self.events(cursor.clone(), PAGE, event_type).await?;
            let full = page.data.len() == PAGE;
            cursor = page.next_cursor;
            for event in page.data {
                if lines == 0 {
                    break;
                }
                if last.len() == lines {
                    last.pop_front();
                }
                last.push_back(event);
            }
            if !full {
                break;
            }
        }
        Ok(EventsPage {
            data: last.into(),
            next_cursor: cursor,
        })
    }

    /// One user's events, newest first: at most `limit` (up to [`PAGE`]) before `before`.
    /// `next_cursor` is the oldest returned: pass it as `before` for the page after.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn audit(
        &self,
        user: &UserId,
        before: Option<EventId>,
        limit: usize,
    ) -> Result<EventsPage, Error> {
        let query = AuditQuery {
            user_id: user.clone(),
            before,
            limit: limit.clamp(1, PAGE),
        };
        let data = self.manager.audit(&query).await?;
        let next_cursor = data.last().map(|e| e.id.clone());
        Ok(EventsPage { data, next_cursor })
    }

    /// Deletes session records ended (revoked or expired) longer ago than the retention,
    /// and events older than theirs. Needs no keys: it revokes nothing.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn purge(&self) -> Result<Purged, Error> {
        Ok(self.manager.purge().await?)
    }
}

#[cfg(test)]
mod tests {
    use session_core::{ClientInfo, MemoryStore, Principal};

    use super::*;

    async fn seeded() -> (Admin, Admin, Vec<SessionId>) {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let keys = KeySet::random();
        let admin = Admin::new(store.clone(), Some(keys), AdminOptions::default()).unwrap();
        let reader = Admin::new(store, None, AdminOptions::default()).unwrap();
        let mut ids = Vec::new();
        for (user, ip) in [
            ("alice", "10.0.0.1"),
            ("alice", "192.0.2.1"),
            ("bob", "10.9.9.9"),
        ] {
            let client = ClientInfo {
                ip: Some(ip.into()),
                ..ClientInfo::default()
            };
            let issued = admin
                .manager()
                .issue(Principal::user(user), client)
                .await
                .unwrap();
            ids.push(issued.session.id());
        }
        (admin, reader, ids)
    }

    #[tokio::test]
    async fn operations_return_what_they_did() {
        let (admin, reader, ids) = seeded().await;
        let alice = UserId::from("alice");
        assert_eq!(reader.list(&alice).await.unwrap().len(), 2);
        assert!(matches!(
            reader.revoke(ids[0], RevocationReason::AdminRevoked).await,
            Err(Error::KeysRequired)
        ));
        assert!(
            admin
                .revoke(ids[0], RevocationReason::AdminRevoked)
                .await
                .unwrap()
        );
        assert!(
            !admin
                .revoke(ids[0], RevocationReason::AdminRevoked)
                .await
                .unwrap()
        );

        let net = SessionFilter {
            ip: Some("10.0.0.0/8".parse().unwrap()),
            ..SessionFilter::default()
        };
        let counted = reader
            .revoke_matching(&net, RevocationReason::RiskDetected, true)
            .await
            .unwrap();
        assert_eq!((counted.matched, counted.revoked.len()), (1, 0));
        assert!(matches!(
            admin
                .revoke_matching(
                    &SessionFilter::default(),
                    RevocationReason::RiskDetected,
                    true
                )
                .await,
            Err(Error::Usage(_))
        ));
        assert_eq!(admin.count_everyone().await.unwrap(), 2);
        let done = admin
            .sign_out_everyone(RevocationReason::AdminRevoked)
            .await
            .unwrap();
        assert_eq!(done.revoked.len(), 2);
        assert_eq!(admin.count_everyone().await.unwrap(), 0);

        let tail = reader.tail(2, None).await.unwrap();
        assert_eq!(tail.data.len(), 2);
        assert_eq!(tail.next_cursor, tail.data.last().map(|e| e.id.clone()));
        let all = reader.events_after(None, None, None).await.unwrap();
        assert_eq!(all.data.len(), 6, "3 created, 3 revoked");
        assert_eq!(&all.data[4..], &tail.data[..]);
        let first = reader.events_after(None, Some(4), None).await.unwrap();
        assert_eq!(first.data, all.data[..4]);
        let revoked = reader
            .events_after(None, None, Some(EventType::Revoked))
            .await
            .unwrap();
        assert!(
            revoked
                .data
                .iter()
                .all(|e| e.actor == Actor::Admin && e.event_type == EventType::Revoked)
        );
        let audit = reader.audit(&alice, None, 10).await.unwrap();
        assert_eq!(audit.data.len(), 4);
        assert!(audit.data[0].id > audit.data[3].id, "newest first");
        assert!(reader.tail(0, None).await.unwrap().data.is_empty());
    }
}
