//! The store conformance suite: one scenario list, run against every store.
//!
//! Each scenario uses user ids of its own (random), and filters of its own (a unique
//! user-agent marker), so scenarios can share one Redis or PostgreSQL database and run in
//! parallel. Scenarios that purge work in a timeline decades in the past, so that they
//! never delete what a scenario running beside them wrote.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::events::{AuditQuery, EventId, EventQuery, EventType, SessionEvent};
use crate::model::{
    Actor, AgentId, IdpLink, Principal, RevocationReason, SessionId, SessionKind, SessionRecord,
    UserId,
};
use crate::store::{
    Change, Created, IpRange, Matched, NewSession, Retention, RevokeMany, RevokeScope,
    RevokedSession, SessionFilter, SessionStore, UserState,
};
use crate::token::KeySet;

/// A user id no other scenario uses.
#[must_use]
pub fn fresh_user(prefix: &str) -> UserId {
    UserId::new(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()))
}

/// Now, at millisecond precision (every store keeps at least that).
#[must_use]
pub fn now_ms() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .expect("valid nanosecond")
}

/// A record for `principal`, issued at `at`, living `ttl`; returns it with its token text.
#[must_use]
pub fn record(principal: Principal, at: OffsetDateTime, ttl: Duration) -> (SessionRecord, String) {
    let issued = KeySet::new([[3u8; 32]]).expect("key").issue();
    let rec = SessionRecord {
        id: issued.id,
        secret_hash: issued.secret_hash,
        principal,
        created_at: at,
        last_active_at: at,
        expires_at: at + ttl,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) suite".into()),
        ip: Some("203.0.113.7".into()),
        revoked_at: None,
        revocation_reason: None,
        epoch: 0,
        idp: None,
    };
    (rec, issued.token.expose().to_owned())
}

/// As [`record`], with an id from `store.new_session_id` (stores that place a user's keys
/// together, as Redis Cluster needs, encode the place in the id and refuse other ids).
#[must_use]
pub fn record_in(
    store: &dyn SessionStore,
    principal: Principal,
    at: OffsetDateTime,
    ttl: Duration,
) -> (SessionRecord, String) {
    let issued = KeySet::new([[3u8; 32]])
        .expect("key")
        .issue_for(store.new_session_id(principal.user_id()));
    let (mut rec, _) = record(principal, at, ttl);
    rec.id = issued.id;
    rec.secret_hash = issued.secret_hash;
    (rec, issued.token.expose().to_owned())
}

const DAY: Duration = Duration::from_secs(86_400);

fn new_session(rec: &SessionRecord) -> NewSession<'_> {
    NewSession {
        record: rec,
        expected_epoch: None,
        granted_by: None,
        max_user_sessions: None,
        actor: Actor::User,
    }
}

/// Creates `rec` (at the user's current epoch) and returns its `session.created` event id.
///
/// # Panics
///
/// When the store refuses.
pub async fn create(store: &dyn SessionStore, rec: &SessionRecord) -> EventId {
    let epoch = store.user_state(rec.user_id()).await.expect("epoch").epoch;
    match store
        .create(NewSession {
            expected_epoch: Some(epoch),
            ..new_session(rec)
        })
        .await
        .expect("create")
    {
        Created::Created { event_id, evicted } => {
            assert!(evicted.is_empty());
            event_id
        }
        other => panic!("create refused: {other:?}"),
    }
}

/// A user session of `user`, issued now, living a day.
///
/// # Panics
///
/// When the store refuses.
pub async fn user_session(store: &dyn SessionStore, user: &UserId) -> SessionRecord {
    user_session_at(store, user, now_ms()).await
}

async fn user_session_at(
    store: &dyn SessionStore,
    user: &UserId,
    at: OffsetDateTime,
) -> SessionRecord {
    let (rec, _) = record_in(store, Principal::user(user.clone()), at, DAY);
    create(store, &rec).await;
    rec
}

async fn agent_session(store: &dyn SessionStore, user: &UserId, agent: &str) -> SessionRecord {
    let (rec, _) = record_in(
        store,
        Principal::agent(user.clone(), agent, format!("Agent {agent}")),
        now_ms(),
        DAY,
    );
    create(store, &rec).await;
    rec
}

fn ids<T: HasId>(items: &[T]) -> Vec<SessionId> {
    let mut ids: Vec<_> = items.iter().map(HasId::session_id).collect();
    ids.sort();
    ids
}

trait HasId {
    fn session_id(&self) -> SessionId;
}

impl HasId for SessionRecord {
    fn session_id(&self) -> SessionId {
        self.id
    }
}

impl HasId for RevokedSession {
    fn session_id(&self) -> SessionId {
        self.id
    }
}

fn change(reason: &RevocationReason, actor: Actor) -> Change<'_> {
    Change {
        reason,
        actor,
        at: now_ms(),
    }
}

async fn audit(store: &dyn SessionStore, user: &UserId) -> Vec<SessionEvent> {
    store
        .audit(&AuditQuery {
            user_id: user.clone(),
            before: None,
            limit: 1000,
        })
        .await
        .expect("audit")
}

async fn revoke_many(
    store: &dyn SessionStore,
    user: &UserId,
    scope: RevokeScope,
    except: Option<SessionId>,
    reason: RevocationReason,
) -> Vec<RevokedSession> {
    store
        .revoke_many(RevokeMany {
            user_id: user,
            scope: &scope,
            except,
            change: change(&reason, Actor::User),
            disable_user: false,
        })
        .await
        .unwrap()
}

/// Issue, then load back exactly what was stored (the epoch and identity-provider link
/// included); unknown ids load as `None`; the `session.created` event is logged.
pub async fn create_and_load(store: Arc<dyn SessionStore>) {
    let user = fresh_user("load");
    let (mut rec, _) = record_in(
        &*store,
        Principal::agent(user.clone(), "agent-1", "Helper <bot> \"ü\""),
        now_ms(),
        DAY,
    );
    rec.idp = Some(IdpLink {
        issuer: "https://idp.example/realm".into(),
        subject: "248289761001".into(),
        sid: Some("08a5019c-17e1-4977-8f42-65a12843ea02".into()),
    });
    rec.user_agent = None;
    rec.ip = Some("2001:db8::7".into());
    let event_id = create(&*store, &rec).await;
    assert_eq!(store.load(rec.id).await.unwrap(), Some(rec.clone()));
    assert_eq!(store.load(SessionId::random()).await.unwrap(), None);
    let log = audit(&*store, &user).await;
    assert_eq!(log.len(), 1, "{log:?}");
    let ev = &log[0];
    assert_eq!(ev.id, event_id);
    assert_eq!(ev.event_type, EventType::Created);
    assert_eq!(ev.session_id, rec.id);
    assert_eq!(ev.user_id, user);
    assert_eq!(ev.session_kind, SessionKind::Agent);
    assert_eq!(ev.agent_id, Some(AgentId::from("agent-1")));
    assert_eq!(ev.reason, None);
    assert_eq!(ev.actor, Actor::User);
    assert_eq!(ev.occurred_at, rec.created_at);
}

/// The store records the user's current epoch in the record, whatever the record said.
pub async fn create_records_the_epoch(store: Arc<dyn SessionStore>) {
    let user = fresh_user("epoch-rec");
    let first = user_session(&*store, &user).await;
    assert_eq!(store.load(first.id).await.unwrap().unwrap().epoch, 0);
    revoke_many(
        &*store,
        &user,
        RevokeScope::All,
        None,
        RevocationReason::SignedOutEverywhere,
    )
    .await;
    let (mut rec, _) = record_in(&*store, Principal::user(user.clone()), now_ms(), DAY);
    rec.epoch = 77;
    create(&*store, &rec).await;
    assert_eq!(store.load(rec.id).await.unwrap().unwrap().epoch, 1);
}

/// Touch moves `last_active_at` forward, never back.
pub async fn touch(store: Arc<dyn SessionStore>) {
    let user = fresh_user("touch");
    let t0 = now_ms();
    let rec = user_session_at(&*store, &user, t0).await;
    let later = t0 + Duration::from_secs(30);
    store.touch(rec.id, later).await.unwrap();
    assert_eq!(
        store.load(rec.id).await.unwrap().unwrap().last_active_at,
        later
    );
    store
        .touch(rec.id, t0 + Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        store.load(rec.id).await.unwrap().unwrap().last_active_at,
        later
    );
    // Touching an unknown session is not an error.
    store.touch(SessionId::random(), later).await.unwrap();
}

/// The list holds the user's active sessions (agents too), not revoked, expired or
/// others', newest first, at most `limit`.
pub async fn list_active(store: Arc<dyn SessionStore>) {
    let user = fresh_user("list");
    let other = fresh_user("list-other");
    let now = now_ms();
    let a = user_session_at(&*store, &user, now - Duration::from_secs(2)).await;
    let (agent, _) = record_in(
        &*store,
        Principal::agent(user.clone(), "agent-1", "Bot"),
        now - Duration::from_secs(1),
        DAY,
    );
    create(&*store, &agent).await;
    let (expired, _) = record_in(
        &*store,
        Principal::user(user.clone()),
        now - Duration::from_secs(100),
        Duration::from_secs(50),
    );
    create(&*store, &expired).await;
    let revoked = user_session_at(&*store, &user, now).await;
    store
        .revoke(
            revoked.id,
            change(&RevocationReason::SignedOut, Actor::User),
        )
        .await
        .unwrap();
    user_session_at(&*store, &other, now).await;
    let listed = store.list_active(&user, now, 100).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        [agent.id, a.id],
        "newest first"
    );
    let first = store.list_active(&user, now, 1).await.unwrap();
    assert_eq!(first.iter().map(|r| r.id).collect::<Vec<_>>(), [agent.id]);
    assert!(
        store
            .list_active(&fresh_user("nobody"), now, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Revoking one session records when, why and by whom, in the record and its event; a
/// second revoke finds nothing and logs nothing.
pub async fn revoke_one(store: Arc<dyn SessionStore>) {
    let user = fresh_user("revoke");
    let rec = user_session(&*store, &user).await;
    let keep = user_session(&*store, &user).await;
    let reason = RevocationReason::Other("offboarded".into());
    let ch = Change {
        reason: &reason,
        actor: Actor::Admin,
        at: now_ms() + Duration::from_secs(5),
    };
    let revoked = store.revoke(rec.id, ch).await.unwrap().expect("was active");
    assert_eq!(revoked.id, rec.id);
    assert_eq!(revoked.principal, rec.principal);
    assert_eq!(revoked.expires_at, rec.expires_at);
    let loaded = store.load(rec.id).await.unwrap().unwrap();
    assert_eq!(loaded.revoked_at, Some(ch.at));
    assert_eq!(loaded.revocation_reason, Some(reason.clone()));
    assert_eq!(store.revoke(rec.id, ch).await.unwrap(), None);
    assert_eq!(store.revoke(SessionId::random(), ch).await.unwrap(), None);
    assert!(!store.load(keep.id).await.unwrap().unwrap().is_revoked());
    let log = audit(&*store, &user).await;
    assert_eq!(log.len(), 3, "two created, one revoked: {log:?}");
    assert_eq!(log[0], revoked.event(&ch), "newest first, as returned");
    assert_eq!(log[0].reason, Some(reason));
    assert_eq!(log[0].actor, Actor::Admin);
}

/// Revoke-all takes every session of the user (agents too), and only that user's, each
/// with its event.
pub async fn revoke_all(store: Arc<dyn SessionStore>) {
    let user = fresh_user("all");
    let other = fresh_user("all-other");
    let a = user_session(&*store, &user).await;
    let b = user_session(&*store, &user).await;
    let agent = agent_session(&*store, &user, "agent-1").await;
    let bystander = user_session(&*store, &other).await;
    let revoked = revoke_many(
        &*store,
        &user,
        RevokeScope::All,
        None,
        RevocationReason::PasswordReset,
    )
    .await;
    assert_eq!(ids(&revoked), ids(&[a.clone(), b, agent]));
    for r in &revoked {
        let rec = store.load(r.id).await.unwrap().unwrap();
        assert_eq!(rec.revocation_reason, Some(RevocationReason::PasswordReset));
    }
    assert!(
        store
            .list_active(&user, now_ms(), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .load(bystander.id)
            .await
            .unwrap()
            .unwrap()
            .is_revoked()
    );
    let log = audit(&*store, &user).await;
    let revocations: HashSet<_> = log
        .iter()
        .filter(|e| e.event_type == EventType::Revoked)
        .map(|e| (e.session_id, e.id.clone()))
        .collect();
    let returned: HashSet<_> = revoked.iter().map(|r| (r.id, r.event_id.clone())).collect();
    assert_eq!(revocations, returned);
    // Nothing left to revoke.
    let again = revoke_many(
        &*store,
        &user,
        RevokeScope::All,
        None,
        RevocationReason::PasswordReset,
    )
    .await;
    assert!(again.is_empty());
    assert_eq!(audit(&*store, &user).await.len(), log.len());
}

/// Revoke-all-except keeps the one named; the user-sessions scope keeps agents.
pub async fn revoke_all_except(store: Arc<dyn SessionStore>) {
    let user = fresh_user("except");
    let current = user_session(&*store, &user).await;
    let other = user_session(&*store, &user).await;
    let agent = agent_session(&*store, &user, "agent-1").await;
    let revoked = revoke_many(
        &*store,
        &user,
        RevokeScope::UserSessions,
        Some(current.id),
        RevocationReason::RevokedByUser,
    )
    .await;
    assert_eq!(ids(&revoked), ids(&[other]));
    let left = store.list_active(&user, now_ms(), 100).await.unwrap();
    assert_eq!(ids(&left), ids(&[current.clone(), agent]));
    // All but current, agents included.
    let revoked = revoke_many(
        &*store,
        &user,
        RevokeScope::All,
        Some(current.id),
        RevocationReason::SignedOutEverywhere,
    )
    .await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        ids(&store.list_active(&user, now_ms(), 100).await.unwrap()),
        ids(&[current])
    );
}

/// An agent's revocation takes that agent's sessions only.
pub async fn revoke_agent(store: Arc<dyn SessionStore>) {
    let user = fresh_user("agent");
    let own = user_session(&*store, &user).await;
    let bot1 = [
        agent_session(&*store, &user, "bot-1").await,
        agent_session(&*store, &user, "bot-1").await,
    ];
    let bot2 = agent_session(&*store, &user, "bot-2").await;
    let revoked = revoke_many(
        &*store,
        &user,
        RevokeScope::Agent(AgentId::from("bot-1")),
        None,
        RevocationReason::AgentDisconnected,
    )
    .await;
    assert_eq!(ids(&revoked), ids(&bot1));
    assert_eq!(
        ids(&store.list_active(&user, now_ms(), 100).await.unwrap()),
        ids(&[own, bot2])
    );
}

/// The identity-provider scope takes the sessions of one provider session (`sid`), or all
/// of one provider subject; password sessions are never touched.
pub async fn revoke_idp_sessions(store: Arc<dyn SessionStore>) {
    let user = fresh_user("idp");
    let password = user_session(&*store, &user).await;
    let via = |sid: &str| {
        let (mut rec, _) = record_in(&*store, Principal::user(user.clone()), now_ms(), DAY);
        rec.idp = Some(IdpLink {
            issuer: "https://idp.example".into(),
            subject: "sub-1".into(),
            sid: Some(sid.into()),
        });
        rec
    };
    let (s1, s2a, s2b) = (via("sid-1"), via("sid-2"), via("sid-2"));
    for rec in [&s1, &s2a, &s2b] {
        create(&*store, rec).await;
    }
    let scope = |subject: Option<&str>, sid: Option<&str>| RevokeScope::Idp {
        issuer: "https://idp.example".into(),
        subject: subject.map(str::to_owned),
        sid: sid.map(str::to_owned),
    };
    let other_issuer = RevokeScope::Idp {
        issuer: "https://other.example".into(),
        subject: None,
        sid: Some("sid-2".into()),
    };
    let none = revoke_many(
        &*store,
        &user,
        other_issuer,
        None,
        RevocationReason::IdpLogout,
    )
    .await;
    assert!(none.is_empty());
    let by_sid = revoke_many(
        &*store,
        &user,
        scope(None, Some("sid-2")),
        None,
        RevocationReason::IdpLogout,
    )
    .await;
    assert_eq!(ids(&by_sid), ids(&[s2a, s2b]));
    let by_sub = revoke_many(
        &*store,
        &user,
        scope(Some("sub-1"), None),
        None,
        RevocationReason::IdpLogout,
    )
    .await;
    assert_eq!(ids(&by_sub), ids(&[s1]));
    assert!(!store.load(password.id).await.unwrap().unwrap().is_revoked());
}

/// A login that read the epoch before a revoke-all cannot create a session after it.
pub async fn epoch_beats_racing_login(store: Arc<dyn SessionStore>) {
    let user = fresh_user("epoch");
    let before = store.user_state(&user).await.unwrap();
    assert_eq!(before, UserState::default());
    let existing = user_session(&*store, &user).await;
    revoke_many(
        &*store,
        &user,
        RevokeScope::All,
        None,
        RevocationReason::PasswordReset,
    )
    .await;
    let after = store.user_state(&user).await.unwrap().epoch;
    assert_ne!(before.epoch, after, "revoke-all moves the epoch");
    let (late, _) = record_in(&*store, Principal::user(user.clone()), now_ms(), DAY);
    let refused = store
        .create(NewSession {
            expected_epoch: Some(before.epoch),
            ..new_session(&late)
        })
        .await
        .unwrap();
    assert_eq!(refused, Created::EpochMoved);
    assert_eq!(store.load(late.id).await.unwrap(), None, "nothing created");
    assert!(store.load(existing.id).await.unwrap().unwrap().is_revoked());
    // Revoke-others does not move the epoch.
    let fresh = user_session(&*store, &user).await;
    revoke_many(
        &*store,
        &user,
        RevokeScope::UserSessions,
        Some(fresh.id),
        RevocationReason::RevokedByUser,
    )
    .await;
    assert_eq!(store.user_state(&user).await.unwrap().epoch, after);
    // Nothing was logged for the refused login.
    assert!(
        audit(&*store, &user)
            .await
            .iter()
            .all(|e| e.session_id != late.id)
    );
}

/// An agent grant needs a grantor that is the same user's, alive, and issued at the
/// current epoch; otherwise nothing is created.
pub async fn grant_needs_a_live_grantor(store: Arc<dyn SessionStore>) {
    let user = fresh_user("grant");
    let grant = |grantor: SessionId| {
        let (rec, _) = record_in(
            &*store,
            Principal::agent(user.clone(), "bot", "Bot"),
            now_ms(),
            DAY,
        );
        (rec, grantor)
    };
    async fn try_grant(
        store: &dyn SessionStore,
        rec: &SessionRecord,
        grantor: SessionId,
    ) -> Created {
        store
            .create(NewSession {
                granted_by: Some(grantor),
                ..new_session(rec)
            })
            .await
            .unwrap()
    }
    let alive = user_session(&*store, &user).await;
    let (ok, by) = grant(alive.id);
    assert!(matches!(
        try_grant(&*store, &ok, by).await,
        Created::Created { .. }
    ));
    assert_eq!(
        store.load(ok.id).await.unwrap().unwrap().principal,
        ok.principal
    );

    let revoked = user_session(&*store, &user).await;
    store
        .revoke(
            revoked.id,
            change(&RevocationReason::SignedOut, Actor::User),
        )
        .await
        .unwrap();
    let stranger = user_session(&*store, &fresh_user("grant-other")).await;
    let (expired, _) = record_in(
        &*store,
        Principal::user(user.clone()),
        now_ms() - Duration::from_secs(100),
        Duration::from_secs(50),
    );
    create(&*store, &expired).await;
    for grantor in [revoked.id, stranger.id, expired.id, SessionId::random()] {
        let (rec, by) = grant(grantor);
        assert_eq!(try_grant(&*store, &rec, by).await, Created::GrantorGone);
        assert_eq!(store.load(rec.id).await.unwrap(), None);
    }
    // A revoke-all that kept the grantor alive (it excepted it) still moved the epoch:
    // the grantor is from before it, and may grant no more.
    revoke_many(
        &*store,
        &user,
        RevokeScope::All,
        Some(alive.id),
        RevocationReason::SignedOutEverywhere,
    )
    .await;
    let (late, by) = grant(alive.id);
    assert_eq!(try_grant(&*store, &late, by).await, Created::GrantorGone);
    assert_eq!(store.load(late.id).await.unwrap(), None);
}

/// The cap: a login beyond it revokes the oldest user sessions (reason `session_limit`,
/// actor `system`, with events); agents neither count nor go.
pub async fn cap_evicts_the_oldest(store: Arc<dyn SessionStore>) {
    let user = fresh_user("cap");
    let t0 = now_ms();
    let mut sessions = Vec::new();
    for i in 0..3 {
        sessions.push(user_session_at(&*store, &user, t0 + Duration::from_secs(i)).await);
    }
    let agent = agent_session(&*store, &user, "bot").await;
    let (fourth, _) = record_in(
        &*store,
        Principal::user(user.clone()),
        t0 + Duration::from_secs(10),
        DAY,
    );
    let created = store
        .create(NewSession {
            max_user_sessions: Some(2),
            ..new_session(&fourth)
        })
        .await
        .unwrap();
    let Created::Created { evicted, .. } = created else {
        panic!("refused: {created:?}")
    };
    assert_eq!(ids(&evicted), ids(&sessions[..2]), "the two oldest went");
    for gone in &sessions[..2] {
        let rec = store.load(gone.id).await.unwrap().unwrap();
        assert_eq!(rec.revocation_reason, Some(RevocationReason::SessionLimit));
    }
    let left = store.list_active(&user, now_ms(), 100).await.unwrap();
    assert_eq!(ids(&left), ids(&[sessions[2].clone(), agent, fourth]));
    let log = audit(&*store, &user).await;
    let caps: Vec<_> = log
        .iter()
        .filter(|e| e.reason == Some(RevocationReason::SessionLimit))
        .collect();
    assert_eq!(caps.len(), 2);
    assert!(caps.iter().all(|e| e.actor == Actor::System));
    // An agent grant is not capped.
    let (bot, _) = record_in(
        &*store,
        Principal::agent(user.clone(), "bot", "Bot"),
        now_ms(),
        DAY,
    );
    let created = store
        .create(NewSession {
            max_user_sessions: Some(1),
            ..new_session(&bot)
        })
        .await
        .unwrap();
    assert!(matches!(created, Created::Created { ref evicted, .. } if evicted.is_empty()));
}

/// Deprovisioning: a revoke-all that disables the user refuses every later create until
/// the mark is cleared.
pub async fn disabled_users_cannot_sign_in(store: Arc<dyn SessionStore>) {
    let user = fresh_user("disabled");
    let s = user_session(&*store, &user).await;
    let reason = RevocationReason::UserDeprovisioned;
    let revoked = store
        .revoke_many(RevokeMany {
            user_id: &user,
            scope: &RevokeScope::All,
            except: None,
            change: change(&reason, Actor::Idp),
            disable_user: true,
        })
        .await
        .unwrap();
    assert_eq!(ids(&revoked), vec![s.id]);
    assert!(store.user_state(&user).await.unwrap().disabled);
    let (rec, _) = record_in(&*store, Principal::user(user.clone()), now_ms(), DAY);
    let refused = store.create(new_session(&rec)).await.unwrap();
    assert_eq!(refused, Created::UserDisabled);
    assert_eq!(store.load(rec.id).await.unwrap(), None);
    store.set_user_disabled(&user, false).await.unwrap();
    assert!(!store.user_state(&user).await.unwrap().disabled);
    create(&*store, &rec).await;
}

/// Incident-wide revocation: every field of the filter narrows; a dry run only counts;
/// an empty filter matches nothing.
pub async fn revoke_matching(store: Arc<dyn SessionStore>) {
    let marker = format!("suite-{}", uuid::Uuid::new_v4().simple());
    let t0 = now_ms();
    let make = |user: &UserId, kind: SessionKind, ip: &str, at: OffsetDateTime, ua: bool| {
        let principal = match kind {
            SessionKind::User => Principal::user(user.clone()),
            SessionKind::Agent => Principal::agent(user.clone(), "bot", "Bot"),
        };
        let (mut rec, _) = record_in(&*store, principal, at, DAY);
        rec.ip = Some(ip.into());
        rec.user_agent = ua.then(|| format!("Mozilla/5.0 {marker} Firefox/140.0"));
        rec
    };
    let (u1, u2) = (fresh_user("match"), fresh_user("match"));
    let old = t0 - Duration::from_secs(3600);
    let recs = [
        make(&u1, SessionKind::User, "198.51.100.10", old, true), // 0
        make(&u1, SessionKind::User, "198.51.100.200", t0, true), // 1
        make(&u1, SessionKind::Agent, "198.51.100.11", t0, true), // 2
        make(&u2, SessionKind::User, "2001:db8::1", old, true),   // 3
        make(&u2, SessionKind::User, "198.51.100.12", old, false), // 4: no marker
    ];
    for rec in &recs {
        create(&*store, rec).await;
    }
    let reason = RevocationReason::RiskDetected;
    let base = SessionFilter {
        user_agent: Some(marker.clone()),
        ..SessionFilter::default()
    };
    let net: IpRange = "198.51.100.0/25".parse().unwrap();
    let cases: [(SessionFilter, &[usize]); 5] = [
        (base.clone(), &[0, 1, 2, 3]),
        (
            SessionFilter {
                ip: Some(net),
                ..base.clone()
            },
            &[0, 2],
        ),
        (
            SessionFilter {
                created_before: Some(t0 - Duration::from_secs(60)),
                ..base.clone()
            },
            &[0, 3],
        ),
        (
            SessionFilter {
                kind: Some(SessionKind::Agent),
                ..base.clone()
            },
            &[2],
        ),
        (
            SessionFilter {
                ip: Some("2001:db8::/32".parse().unwrap()),
                ..base.clone()
            },
            &[3],
        ),
    ];
    for (filter, expected) in &cases {
        let dry = store
            .revoke_matching(filter, change(&reason, Actor::Admin), true)
            .await
            .unwrap();
        assert_eq!(
            dry,
            Matched {
                matched: expected.len() as u64,
                revoked: Vec::new()
            },
            "{filter:?}"
        );
    }
    for rec in &recs {
        assert!(!store.load(rec.id).await.unwrap().unwrap().is_revoked());
    }
    let empty = store
        .revoke_matching(
            &SessionFilter::default(),
            change(&reason, Actor::Admin),
            false,
        )
        .await
        .unwrap();
    assert_eq!(empty, Matched::default());
    let ch = change(&reason, Actor::Admin);
    let done = store.revoke_matching(&cases[1].0, ch, false).await.unwrap();
    assert_eq!(done.matched, 2);
    assert_eq!(ids(&done.revoked), ids(&[recs[0].clone(), recs[2].clone()]));
    let log = audit(&*store, &u1).await;
    for r in &done.revoked {
        assert!(log.contains(&r.event(&ch)), "{r:?} has its event");
    }
    // Already revoked: no longer matched.
    let again = store
        .revoke_matching(&cases[1].0, change(&reason, Actor::Admin), true)
        .await
        .unwrap();
    assert_eq!(again.matched, 0);
    assert!(!store.load(recs[4].id).await.unwrap().unwrap().is_revoked());
}

/// `session.expired` is logged once per session, whoever reports it first.
pub async fn expiry_is_reported_once(store: Arc<dyn SessionStore>) {
    let user = fresh_user("expired");
    let rec = user_session(&*store, &user).await;
    let at = now_ms();
    let first = store
        .report_expired(rec.id, at)
        .await
        .unwrap()
        .expect("first");
    assert_eq!(first.event_type, EventType::Expired);
    assert_eq!(first.actor, Actor::System);
    assert_eq!(first.session_id, rec.id);
    assert_eq!(first.occurred_at, at);
    assert_eq!(store.report_expired(rec.id, at).await.unwrap(), None);
    assert_eq!(
        store.report_expired(SessionId::random(), at).await.unwrap(),
        None
    );
    let log = audit(&*store, &user).await;
    assert_eq!(log[0], first);
    assert_eq!(log.len(), 2);
}

/// Appended events get the store's id; the audit reads a user's events newest first, in
/// pages before a cursor.
pub async fn audit_pages_newest_first(store: Arc<dyn SessionStore>) {
    let user = fresh_user("audit");
    let rec = user_session(&*store, &user).await;
    let mut appended = Vec::new();
    for _ in 0..4 {
        let mut ev = SessionEvent::about(
            EventId::new("ignored"),
            EventType::Suspicious,
            rec.id,
            &rec.principal,
            None,
            Actor::System,
            now_ms(),
        );
        ev.id = store.append_event(&ev).await.unwrap();
        assert_ne!(ev.id.as_str(), "ignored");
        appended.push(ev);
    }
    let all = audit(&*store, &user).await;
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(all[0], appended[3]);
    let page = store
        .audit(&AuditQuery {
            user_id: user.clone(),
            before: Some(all[1].id.clone()),
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(page, all[2..4].to_vec());
}

/// The events API: oldest first after a cursor, filtered by type, and paging through it
/// finds every event of this scenario in the order they were logged.
pub async fn events_page_oldest_first(store: Arc<dyn SessionStore>) {
    let user = fresh_user("events");
    let a = user_session(&*store, &user).await;
    let b = user_session(&*store, &user).await;
    store
        .revoke(a.id, change(&RevocationReason::SignedOut, Actor::User))
        .await
        .unwrap();
    let mine = audit(&*store, &user).await;
    assert_eq!(mine.len(), 3);
    let first = mine.last().unwrap();
    let start = store
        .events(&EventQuery {
            after: None,
            limit: 1,
            event_type: None,
        })
        .await
        .unwrap();
    assert_eq!(start.len(), 1, "the log is not empty");
    // Page from just before our first event (any earlier id will do: the first page).
    let mut after = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store
            .events(&EventQuery {
                after: after.clone(),
                limit: 50,
                event_type: None,
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
        if let Some(after) = &after {
            assert!(&page[0].id > after);
        }
        after = Some(page.last().unwrap().id.clone());
        seen.extend(page.into_iter().filter(|e| e.user_id == user));
        pages += 1;
        assert!(pages < 100_000, "the log ends");
    }
    let mut expected = mine.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    assert_eq!(seen[0].id, first.id);
    let revoked = store
        .events(&EventQuery {
            after: Some(EventId::new(
                // Just before our first event.
                seen[0].id.as_str().to_owned(),
            )),
            limit: 10_000,
            event_type: Some(EventType::Revoked),
        })
        .await
        .unwrap();
    assert!(revoked.iter().all(|e| e.event_type == EventType::Revoked));
    assert!(revoked.iter().any(|e| e.session_id == a.id));
    assert!(revoked.iter().all(|e| e.session_id != b.id));
}

/// Events logged by many concurrent writers are all served to a reader that pages along
/// while they write: a cursor never skips an event that committed late.
pub async fn concurrent_writers_lose_no_event(store: Arc<dyn SessionStore>) {
    let user = fresh_user("concurrent");
    let read = |after: Option<EventId>, limit: usize| {
        let store = store.clone();
        async move {
            store
                .events(&EventQuery {
                    after,
                    limit,
                    event_type: None,
                })
                .await
                .unwrap()
        }
    };
    // Start at the end of the log as it is.
    let mut after = None;
    loop {
        let page = read(after.clone(), 1000).await;
        match page.last() {
            Some(e) => after = Some(e.id.clone()),
            None => break,
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..8 {
        let (store, user, tx) = (store.clone(), user.clone(), tx.clone());
        tokio::spawn(async move {
            for _ in 0..10 {
                let (rec, _) = record_in(&*store, Principal::user(user.clone()), now_ms(), DAY);
                tx.send(create(&*store, &rec).await).unwrap();
            }
        });
    }
    drop(tx);
    let mut written = HashSet::new();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        while let Ok(id) = rx.try_recv() {
            written.insert(id);
        }
        let page = read(after.clone(), 7).await;
        if let Some(last) = page.last() {
            after = Some(last.id.clone());
        }
        seen.extend(page.into_iter().filter(|e| e.user_id == user).map(|e| e.id));
        if written.len() == 80 && written.iter().all(|id| seen.contains(id)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "skipped events: {} of {} written served",
            seen.iter().filter(|id| written.contains(*id)).count(),
            written.len()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event served twice");
    assert_eq!(seen.len(), 80, "only what was written");
}

/// The purge deletes session records ended longer ago than the retention, and only those
/// (run in a timeline decades back, so no other scenario's records qualify).
pub async fn purge_ended_sessions(store: Arc<dyn SessionStore>) {
    let user = fresh_user("purge");
    let past = OffsetDateTime::from_unix_timestamp(1_000_000_000).unwrap();
    let (ended, _) = record_in(
        &*store,
        Principal::user(user.clone()),
        past,
        Duration::from_secs(60),
    );
    create(&*store, &ended).await;
    let (revoked, _) = record_in(
        &*store,
        Principal::user(user.clone()),
        past,
        DAY * 365 * 100,
    );
    create(&*store, &revoked).await;
    store
        .revoke(
            revoked.id,
            Change {
                reason: &RevocationReason::SignedOut,
                actor: Actor::User,
                at: past + Duration::from_secs(10),
            },
        )
        .await
        .unwrap();
    let (recent, _) = record_in(
        &*store,
        Principal::user(user.clone()),
        past + DAY * 2,
        Duration::from_secs(60),
    );
    create(&*store, &recent).await;
    let live = user_session(&*store, &user).await;
    store
        .purge(
            past + DAY * 3,
            Retention {
                sessions: DAY,
                events: DAY * 400,
            },
        )
        .await
        .unwrap();
    assert_eq!(store.load(ended.id).await.unwrap(), None);
    assert_eq!(store.load(revoked.id).await.unwrap(), None);
    assert!(store.load(live.id).await.unwrap().is_some());
    // `recent` ended within the retention: kept (stores that expire records themselves,
    // like Redis, may have dropped it already, so only `live` is asserted kept).
    // A purged session is out of the user's index: revoke-all does not count it.
    let revoked_now = revoke_many(
        &*store,
        &user,
        RevokeScope::All,
        None,
        RevocationReason::SignedOut,
    )
    .await;
    assert_eq!(ids(&revoked_now), vec![live.id]);
}

/// A key is used once until its mark expires.
pub async fn first_use_marks(store: Arc<dyn SessionStore>) {
    let key = format!("jti:{}", uuid::Uuid::new_v4());
    let until = now_ms() + Duration::from_secs(600);
    assert!(store.first_use(&key, until).await.unwrap());
    assert!(!store.first_use(&key, until).await.unwrap());
    let short = format!("jti:{}", uuid::Uuid::new_v4());
    assert!(
        store
            .first_use(&short, now_ms() + Duration::from_millis(300))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        store.first_use(&short, until).await.unwrap(),
        "mark expired"
    );
}

/// A lease has one holder at a time; it can be renewed, released, and taken over once
/// it expires.
pub async fn leases(store: Arc<dyn SessionStore>) {
    let name = format!("lease-{}", uuid::Uuid::new_v4().simple());
    let ttl = Duration::from_millis(800);
    assert!(store.try_lease(&name, "a", ttl).await.unwrap());
    assert!(!store.try_lease(&name, "b", ttl).await.unwrap());
    assert!(store.try_lease(&name, "a", ttl).await.unwrap(), "renewed");
    store.release_lease(&name, "b").await.unwrap();
    assert!(
        !store.try_lease(&name, "b", ttl).await.unwrap(),
        "not b's to release"
    );
    store.release_lease(&name, "a").await.unwrap();
    assert!(store.try_lease(&name, "b", ttl).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(store.try_lease(&name, "a", ttl).await.unwrap(), "expired");
}

/// Cursors are saved and loaded by name.
pub async fn cursors(store: Arc<dyn SessionStore>) {
    let name = format!("cursor-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(store.load_cursor(&name).await.unwrap(), None);
    let id = EventId::new("00000000000000000042");
    store.save_cursor(&name, &id).await.unwrap();
    assert_eq!(store.load_cursor(&name).await.unwrap(), Some(id));
    let next = EventId::new("00000000000000000043");
    store.save_cursor(&name, &next).await.unwrap();
    assert_eq!(store.load_cursor(&name).await.unwrap(), Some(next));
}

/// Nothing the store keeps holds the token, its secret, or the secret's encodings.
pub async fn no_token_at_rest<F, Fut>(store: Arc<dyn SessionStore>, dump: F)
where
    F: FnOnce(Arc<dyn SessionStore>) -> Fut,
    Fut: Future<Output = String>,
{
    let user = fresh_user("secret");
    let (rec, token) = record_in(&*store, Principal::user(user.clone()), now_ms(), DAY);
    create(&*store, &rec).await;
    let raw = base64_decode(&token);
    let secret = &raw[17..49];
    let needles = [
        token.clone(),
        token[..40].to_owned(),
        hex::encode(secret),
        hex::encode_upper(secret),
        base64_encode(secret),
    ];
    let dumped = dump(store.clone()).await;
    assert!(
        dumped.contains(&rec.id.to_string()),
        "the dump must show the stored session"
    );
    for needle in &needles {
        assert!(
            !dumped.contains(needle.as_str()),
            "the store holds token material"
        );
    }
    // Binary dumps: the raw secret bytes must not appear either.
    let dumped = dumped.as_bytes();
    assert!(!dumped.windows(secret.len()).any(|w| w == secret));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("token is base64url")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Runs the whole store conformance suite: one `#[tokio::test]` per scenario.
///
/// `$make` is an expression evaluating to a future of `Option<Arc<dyn SessionStore>>`
/// (evaluated once per test; `None` after printing why the store is skipped); `$dump` a
/// closure from the store to a future of everything it keeps, as text, for the
/// no-token-at-rest check. Put the call inside a module.
#[macro_export]
macro_rules! store_suite {
    ($make:expr, dump = $dump:expr) => {
        $crate::store_suite!(@tests $make;
            create_and_load, create_records_the_epoch, touch, list_active, revoke_one,
            revoke_all, revoke_all_except, revoke_agent, revoke_idp_sessions,
            epoch_beats_racing_login, grant_needs_a_live_grantor, cap_evicts_the_oldest,
            disabled_users_cannot_sign_in, revoke_matching, expiry_is_reported_once,
            audit_pages_newest_first, events_page_oldest_first,
            concurrent_writers_lose_no_event, purge_ended_sessions, first_use_marks, leases,
            cursors);

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn no_token_at_rest() {
            if let Some(store) = $make.await {
                $crate::testing::suite::no_token_at_rest(store, $dump).await;
            }
        }
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(store) = $make.await {
                    $crate::testing::suite::$name(store).await;
                }
            }
        )*
    };
}
