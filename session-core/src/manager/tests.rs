use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;

use super::*;
use crate::EventType;
use crate::clock::ManualClock;
use crate::store::MemoryStore;
use crate::testing::FaultyStore;

fn keys() -> KeySet {
    KeySet::new([[7u8; 32]]).unwrap()
}

fn clock() -> ManualClock {
    ManualClock::new(OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap())
}

fn manager_on(
    store: Arc<dyn SessionStore>,
    config: SessionConfig,
    clock: &ManualClock,
) -> SessionManager {
    SessionManager::with_clock(store, keys(), config, Arc::new(clock.clone()))
        .expect("valid config")
}

async fn login(m: &SessionManager, user: &str) -> Issued {
    m.issue(Principal::user(user), ClientInfo::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn absolute_lifetime_expires_the_session() {
    let clock = clock();
    let config = SessionConfig::new()
        .with_ttl(Duration::from_secs(100))
        .unwrap();
    let m = manager_on(Arc::new(MemoryStore::new()), config, &clock);
    let mut events = m.subscribe();
    let s = login(&m, "alice").await;
    let token = s.token.expose().as_bytes();
    clock.advance(Duration::from_secs(99));
    assert!(m.validate(token).await.is_ok());
    clock.advance(Duration::from_secs(1));
    assert!(matches!(m.validate(token).await, Err(Refusal::Expired)));
    assert!(matches!(m.validate(token).await, Err(Refusal::Expired)));
    assert_eq!(events.recv().await.unwrap().event_type, EventType::Created);
    let expired = events.recv().await.unwrap();
    assert_eq!(expired.event_type, EventType::Expired);
    assert_eq!(expired.actor, Actor::System);
    assert!(events.try_recv().is_err(), "expiry is reported once");
}

#[tokio::test]
async fn idle_timeout_counts_from_the_last_request() {
    let clock = clock();
    let config = SessionConfig::new()
        .with_idle_timeout(Duration::from_secs(60))
        .unwrap();
    let m = manager_on(Arc::new(MemoryStore::new()), config, &clock);
    let s = login(&m, "alice").await;
    let token = s.token.expose().as_bytes();
    clock.advance(Duration::from_secs(50));
    assert!(m.validate(token).await.is_ok());
    clock.advance(Duration::from_secs(59));
    assert!(
        m.validate(token).await.is_ok(),
        "activity at 50 s keeps it alive"
    );
    clock.advance(Duration::from_secs(60));
    assert!(matches!(m.validate(token).await, Err(Refusal::Expired)));
}

#[tokio::test]
async fn idle_timeout_holds_on_another_node_through_the_store() {
    let clock = clock();
    let config = SessionConfig::new()
        .with_idle_timeout(Duration::from_secs(60))
        .unwrap()
        .with_touch_interval(Duration::from_secs(10))
        .unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let a = manager_on(store.clone(), config.clone(), &clock);
    let s = login(&a, "alice").await;
    let token = s.token.expose().as_bytes();
    // Node A sees activity for 50 s and writes it (touches) to the store.
    for _ in 0..5 {
        clock.advance(Duration::from_secs(10));
        assert!(a.validate(token).await.is_ok());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Node B, fresh, 40 s after the last activity: alive (only 40 s idle, not 90).
    let b = manager_on(store.clone(), config.clone(), &clock);
    clock.advance(Duration::from_secs(40));
    assert!(b.validate(token).await.is_ok());
    // A third node 61 s after B's request (which B wrote, since 10 s had passed).
    tokio::time::sleep(Duration::from_millis(50)).await;
    clock.advance(Duration::from_secs(61));
    let c = manager_on(store, config, &clock);
    assert!(matches!(c.validate(token).await, Err(Refusal::Expired)));
}

#[tokio::test]
async fn touch_writes_at_most_once_per_interval() {
    let clock = clock();
    let config = SessionConfig::new()
        .with_idle_timeout(Duration::from_secs(3600))
        .unwrap()
        .with_touch_interval(Duration::from_secs(10))
        .unwrap()
        .with_cache_ttl(Duration::from_secs(3600));
    let store = FaultyStore::new(MemoryStore::new());
    let m = manager_on(store.clone(), config, &clock);
    let s = login(&m, "alice").await;
    let token = s.token.expose().as_bytes();
    // 60 simulated seconds, 20 requests a second.
    for _ in 0..1200 {
        clock.advance(Duration::from_millis(50));
        assert!(m.validate(token).await.is_ok());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.calls.touch.load(Ordering::SeqCst), 6);
    assert_eq!(store.calls.load.load(Ordering::SeqCst), 0, "all hits");
    let rec = store.load(s.session.id()).await.unwrap().unwrap();
    assert_eq!(rec.last_active_at, clock.now());
}

#[tokio::test]
async fn revoke_all_beats_a_racing_login() {
    let clock = clock();
    let m = manager_on(Arc::new(MemoryStore::new()), SessionConfig::new(), &clock);
    let alice = UserId::from("alice");
    let old = login(&m, "alice").await;
    // The login reads the epoch, then checks the password…
    let epoch = m.login_epoch(&alice).await.unwrap();
    // …while a password reset signs alice out everywhere…
    let n = m
        .revoke_all(
            &alice,
            RevokeScope::All,
            None,
            RevocationReason::PasswordReset,
            Actor::User,
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    // …so the login loses.
    let raced = m
        .issue_after(epoch, Principal::user("alice"), ClientInfo::default())
        .await;
    assert!(matches!(raced, Err(SessionError::Superseded)));
    assert!(m.list(&alice).await.unwrap().is_empty());
    assert!(matches!(
        m.validate(old.token.expose().as_bytes()).await,
        Err(Refusal::Revoked)
    ));
    // A login that starts after the reset works.
    let fresh = login(&m, "alice").await;
    assert!(m.validate(fresh.token.expose().as_bytes()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_racing_a_load_leaves_no_stale_valid_entry() {
    let clock = clock();
    let store = FaultyStore::new(MemoryStore::new());
    let a = manager_on(store.clone(), SessionConfig::new(), &clock);
    let s = login(&a, "alice").await;
    let token = s.token.expose().to_owned();

    // Node B has nothing cached; its load reads "valid", then stops at the barrier.
    let b = manager_on(store.clone(), SessionConfig::new(), &clock);
    store.set_hold_loads(true);
    let started = store.load_started.notified();
    let racing = tokio::spawn({
        let b = b.clone();
        let token = token.clone();
        async move { b.validate(token.as_bytes()).await.is_ok() }
    });
    started.await;
    // The revocation lands on B while the load is between its read and its insert.
    assert!(
        b.revoke(s.session.id(), RevocationReason::SignedOut, Actor::User)
            .await
            .unwrap()
    );
    store.set_hold_loads(false);
    store.release.notify_one();
    // The raced request may be answered from what it read…
    let _ = racing.await.unwrap();
    // …but nothing stale stays behind: the very next request is refused, from the cache.
    let loads = store.calls.load.load(Ordering::SeqCst);
    assert!(matches!(
        b.validate(token.as_bytes()).await,
        Err(Refusal::Revoked)
    ));
    assert_eq!(store.calls.load.load(Ordering::SeqCst), loads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_racing_a_load_leaves_no_stale_valid_entry() {
    let clock = clock();
    let store = FaultyStore::new(MemoryStore::new());
    let a = manager_on(store.clone(), SessionConfig::new(), &clock);
    let s = login(&a, "alice").await;
    let token = s.token.expose().to_owned();
    let b = manager_on(store.clone(), SessionConfig::new(), &clock);
    store.set_hold_loads(true);
    let started = store.load_started.notified();
    let racing = tokio::spawn({
        let b = b.clone();
        let token = token.clone();
        async move { b.validate(token.as_bytes()).await.is_ok() }
    });
    started.await;
    // Revoked on node A; B's push was lost and B resyncs.
    a.revoke(s.session.id(), RevocationReason::SignedOut, Actor::User)
        .await
        .unwrap();
    b.apply_push(&crate::store::PushMessage::Reconnected)
        .unwrap();
    store.set_hold_loads(false);
    store.release.notify_one();
    let _ = racing.await.unwrap();
    assert!(matches!(
        b.validate(token.as_bytes()).await,
        Err(Refusal::Revoked)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_misses_makes_one_store_load() {
    let clock = clock();
    let store = FaultyStore::new(MemoryStore::new());
    let a = manager_on(store.clone(), SessionConfig::new(), &clock);
    let s = login(&a, "alice").await;
    let token: Arc<str> = s.token.expose().into();
    let b = manager_on(store.clone(), SessionConfig::new(), &clock);
    store.set_hold_loads(true);
    let started = store.load_started.notified();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let b = b.clone();
            let token = token.clone();
            tokio::spawn(async move { b.validate(token.as_bytes()).await.is_ok() })
        })
        .collect();
    started.await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.set_hold_loads(false);
    store.release.notify_one();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(store.calls.load.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn forged_and_foreign_tokens_cost_no_store_call() {
    let clock = clock();
    let store = FaultyStore::new(MemoryStore::new());
    let m = manager_on(store.clone(), SessionConfig::new(), &clock);
    let s = login(&m, "alice").await;
    let before = store.calls.total();
    let mut forged = s.token.expose().as_bytes().to_vec();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    assert!(matches!(m.validate(&forged).await, Err(Refusal::Invalid)));
    let foreign = KeySet::new([[9u8; 32]]).unwrap().issue();
    assert!(matches!(
        m.validate(foreign.token.expose().as_bytes()).await,
        Err(Refusal::Invalid)
    ));
    assert!(matches!(m.validate(b"short").await, Err(Refusal::Invalid)));
    assert_eq!(store.calls.total(), before);
}

#[tokio::test]
async fn a_failing_store_is_unavailable_not_a_denial_and_recovers() {
    let clock = clock();
    let store = FaultyStore::new(MemoryStore::new());
    let a = manager_on(store.clone(), SessionConfig::new(), &clock);
    let s = login(&a, "alice").await;
    let token = s.token.expose().as_bytes();
    let b = manager_on(store.clone(), SessionConfig::new(), &clock);
    store.set_failing(true);
    assert!(matches!(
        b.validate(token).await,
        Err(Refusal::Unavailable(_))
    ));
    // Node A still serves its cached session within the staleness bound.
    assert!(a.validate(token).await.is_ok());
    store.set_failing(false);
    assert!(b.validate(token).await.is_ok());
}

#[tokio::test]
async fn a_hanging_store_is_cut_off_by_the_deadline() {
    let clock = clock();
    let store = FaultyStore::new(MemoryStore::new());
    let a = manager_on(store.clone(), SessionConfig::new(), &clock);
    let s = login(&a, "alice").await;
    let config = SessionConfig::new()
        .with_load_timeout(Duration::from_millis(100))
        .unwrap();
    let b = manager_on(store.clone(), config, &clock);
    store.set_hanging(true);
    let started = std::time::Instant::now();
    let answer = b.validate(s.token.expose().as_bytes()).await;
    assert!(
        matches!(&answer, Err(Refusal::Unavailable(e)) if matches!(**e, crate::StoreError::Timeout)),
        "{answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn listing_and_scoped_revocations() {
    let clock = clock();
    let m = manager_on(Arc::new(MemoryStore::new()), SessionConfig::new(), &clock);
    let alice = UserId::from("alice");
    let first = login(&m, "alice").await;
    clock.advance(Duration::from_secs(1));
    let second = login(&m, "alice").await;
    clock.advance(Duration::from_secs(1));
    let agent = m
        .issue(
            Principal::agent("alice", "bot-1", "Bot"),
            ClientInfo::default(),
        )
        .await
        .unwrap();
    let bob = login(&m, "bob").await;
    let listed: Vec<SessionId> = m.list(&alice).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(
        listed,
        [agent.session.id(), second.session.id(), first.session.id()],
        "newest first, agents included, no one else's"
    );
    // Bob cannot revoke alice's session.
    assert!(matches!(
        m.revoke_owned(
            &UserId::from("bob"),
            first.session.id(),
            RevocationReason::RevokedByUser,
            Actor::User
        )
        .await,
        Err(SessionError::NotFound(_))
    ));
    // Revoke-others keeps the current one and the agent.
    let n = m
        .revoke_all(
            &alice,
            RevokeScope::UserSessions,
            Some(second.session.id()),
            RevocationReason::RevokedByUser,
            Actor::User,
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(matches!(
        m.validate(first.token.expose().as_bytes()).await,
        Err(Refusal::Revoked)
    ));
    assert!(m.validate(second.token.expose().as_bytes()).await.is_ok());
    assert!(m.validate(agent.token.expose().as_bytes()).await.is_ok());
    // The agent's own revocation.
    assert_eq!(
        m.revoke_agent(&alice, AgentId::from("bot-1"), Actor::User)
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        m.validate(agent.token.expose().as_bytes()).await,
        Err(Refusal::Revoked)
    ));
    assert!(m.validate(bob.token.expose().as_bytes()).await.is_ok());
    // Revoking twice finds nothing.
    assert!(
        !m.revoke(first.session.id(), RevocationReason::SignedOut, Actor::User)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn purge_removes_expired_sessions() {
    let clock = clock();
    let config = SessionConfig::new()
        .with_ttl(Duration::from_secs(10))
        .unwrap();
    let m = manager_on(Arc::new(MemoryStore::new()), config, &clock);
    let s = login(&m, "alice").await;
    clock.advance(Duration::from_secs(11));
    let purged = m.purge().await.unwrap();
    assert_eq!(purged.sessions, 0, "kept for the retention");
    clock.advance(m.config().retention().sessions);
    assert_eq!(m.purge().await.unwrap().sessions, 1);
    assert!(m.store().load(s.session.id()).await.unwrap().is_none());
}

#[tokio::test]
async fn every_store_call_has_a_deadline() {
    let clock = clock();
    let store = FaultyStore::new(MemoryStore::new());
    let config = SessionConfig::new()
        .with_load_timeout(Duration::from_millis(50))
        .unwrap();
    let m = manager_on(store.clone(), config, &clock);
    let s = login(&m, "alice").await;
    store.set_hanging(true);
    let alice = UserId::from("alice");
    let timed_out = |r: &Result<_, SessionError>| {
        matches!(r, Err(SessionError::Store(crate::StoreError::Timeout)))
    };
    assert!(timed_out(
        &m.issue(Principal::user("alice"), ClientInfo::default())
            .await
            .map(|_| ())
    ));
    assert!(timed_out(&m.list(&alice).await.map(|_| ())));
    assert!(timed_out(
        &m.revoke(s.session.id(), RevocationReason::SignedOut, Actor::User)
            .await
            .map(|_| ())
    ));
    assert!(timed_out(
        &m.revoke_all(
            &alice,
            RevokeScope::All,
            None,
            RevocationReason::SignedOut,
            Actor::User
        )
        .await
        .map(|_| ())
    ));
    assert!(timed_out(&m.purge().await.map(|_| ())));
}

#[tokio::test]
async fn a_valid_mac_with_the_wrong_secret_is_invalid() {
    // As if the signing key leaked: a well-formed token for a stored id, but not its secret.
    let clock = clock();
    let store = Arc::new(MemoryStore::new());
    let m = manager_on(store.clone(), SessionConfig::new(), &clock);
    let forged = keys().issue();
    let real_secret_hash = [0x5a; 32];
    let now = clock.now();
    let record = SessionRecord {
        id: forged.id,
        secret_hash: real_secret_hash,
        principal: Principal::user("alice"),
        created_at: now,
        last_active_at: now,
        expires_at: now + Duration::from_secs(3600),
        user_agent: None,
        ip: None,
        revoked_at: None,
        revocation_reason: None,
        epoch: 0,
        idp: None,
    };
    crate::testing::suite::create(&*store, &record).await;
    for _ in 0..2 {
        assert!(matches!(
            m.validate(forged.token.expose().as_bytes()).await,
            Err(Refusal::Invalid)
        ));
    }
}

/// A revocation written to the store behind this node's back (no push) is in force once
/// the cached answer is older than the staleness bound, and not sooner.
#[tokio::test]
async fn a_revocation_without_push_holds_within_the_staleness_bound() {
    let clock = clock();
    let config = SessionConfig::new().with_cache_ttl(Duration::from_secs(30));
    let store = FaultyStore::new(MemoryStore::new());
    let m = manager_on(store.clone(), config, &clock);
    let s = login(&m, "alice").await;
    let token = s.token.expose().as_bytes();
    store
        .revoke(
            s.session.id(),
            crate::store::Change {
                reason: &RevocationReason::SignedOut,
                actor: Actor::User,
                at: clock.now(),
            },
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(29));
    assert!(m.validate(token).await.is_ok(), "cached for 30 s");
    assert_eq!(store.calls.load.load(Ordering::SeqCst), 0);
    clock.advance(Duration::from_secs(1));
    assert!(matches!(m.validate(token).await, Err(Refusal::Revoked)));
    assert_eq!(store.calls.load.load(Ordering::SeqCst), 1);
}

/// A clock stepped back does not stretch how long a cached answer is trusted.
#[tokio::test]
async fn a_clock_stepped_back_does_not_extend_trust() {
    let clock = clock();
    let config = SessionConfig::new().with_cache_ttl(Duration::from_secs(30));
    let store = FaultyStore::new(MemoryStore::new());
    let m = manager_on(store.clone(), config, &clock);
    let s = login(&m, "alice").await;
    let token = s.token.expose().as_bytes();
    assert!(m.validate(token).await.is_ok());
    assert_eq!(store.calls.load.load(Ordering::SeqCst), 0);
    clock.rewind(Duration::from_secs(3600));
    assert!(m.validate(token).await.is_ok());
    assert_eq!(
        store.calls.load.load(Ordering::SeqCst),
        1,
        "an answer from the clock's future is reloaded"
    );
}

/// The cache holds no more entries than its capacity.
#[tokio::test]
async fn the_cache_stays_within_its_capacity() {
    let clock = clock();
    let config = SessionConfig::new().with_cache_capacity(100);
    let m = manager_on(Arc::new(MemoryStore::new()), config, &clock);
    let mut tokens = Vec::new();
    for i in 0..1000 {
        tokens.push(login(&m, &format!("u{i}")).await.token);
    }
    for t in &tokens {
        assert!(m.validate(t.expose().as_bytes()).await.is_ok());
    }
    assert!(
        m.inner.cache.len() <= 100,
        "{} entries",
        m.inner.cache.len()
    );
}

/// An agent grant cannot outlive the session that made it: node A still holds the granting
/// session in its cache (the push of node B's revoke-all was lost), and the grant is
/// refused all the same, by the store, in the operation that would create the agent.
#[tokio::test]
async fn a_grant_from_a_session_revoked_elsewhere_is_refused() {
    let clock = clock();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let a = manager_on(store.clone(), SessionConfig::new(), &clock);
    let b = manager_on(store, SessionConfig::new(), &clock);
    let s = login(&a, "alice").await;
    let token = s.token.expose().as_bytes();
    assert!(a.validate(token).await.is_ok(), "cached on A");
    // On B: sign out everywhere. A hears nothing (no push channel here: a lost push).
    b.revoke_all(
        &UserId::from("alice"),
        RevokeScope::All,
        None,
        RevocationReason::SignedOutEverywhere,
        Actor::User,
    )
    .await
    .unwrap();
    let still = a.validate(token).await.expect("A's cache still says valid");
    let refused = a
        .grant_agent(
            &still,
            AgentId::from("bot"),
            "Bot".into(),
            ClientInfo::default(),
        )
        .await;
    assert!(
        matches!(refused, Err(SessionError::GrantorGone)),
        "{refused:?}"
    );
    assert!(
        b.list(&UserId::from("alice")).await.unwrap().is_empty(),
        "no agent was made"
    );

    // The same with a revoke-all that kept the granting session (revoke-all-but-current
    // of another kind): the epoch moved, so its grants are refused too.
    let s = login(&a, "bob").await;
    let kept = s.session.clone();
    b.revoke_all(
        &UserId::from("bob"),
        RevokeScope::All,
        Some(kept.id()),
        RevocationReason::PasswordReset,
        Actor::User,
    )
    .await
    .unwrap();
    let refused = a
        .grant_agent(
            &kept,
            AgentId::from("bot"),
            "Bot".into(),
            ClientInfo::default(),
        )
        .await;
    assert!(
        matches!(refused, Err(SessionError::GrantorGone)),
        "{refused:?}"
    );
    // A fresh session, issued after the revoke-all, may grant.
    let fresh = login(&a, "bob").await.session;
    a.grant_agent(
        &fresh,
        AgentId::from("bot"),
        "Bot".into(),
        ClientInfo::default(),
    )
    .await
    .unwrap();
}

/// Activity writes run under a bound: with one permit, a burst of sessions due for a write
/// at once makes at most one write in flight; the rest are skipped and made later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touches_run_under_a_bound() {
    let clock = clock();
    let store = FaultyStore::new(MemoryStore::new());
    let config = SessionConfig::new()
        .with_touch_interval(Duration::from_secs(10))
        .unwrap()
        .with_max_concurrent_touches(1);
    let m = manager_on(store.clone(), config, &clock);
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(login(&m, &format!("t{i}")).await.token);
    }
    clock.advance(Duration::from_secs(11));
    store.set_hanging(true);
    for t in &tokens {
        assert!(m.validate(t.expose().as_bytes()).await.is_ok());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        store.calls.touch.load(Ordering::SeqCst),
        1,
        "one write in flight, the others skipped"
    );
}

/// The manager's `Debug` shows no key, token, IP or user agent.
#[tokio::test]
async fn debug_prints_no_secret() {
    let clock = clock();
    let m = manager_on(Arc::new(MemoryStore::new()), SessionConfig::new(), &clock);
    let issued = m
        .issue(
            Principal::user("alice"),
            ClientInfo {
                user_agent: Some("SecretBrowser/1.0".into()),
                ip: Some("198.51.100.77".into()),
            },
        )
        .await
        .unwrap();
    let debug = format!("{m:?} {:?} {:?}", issued.session, issued.token);
    for secret in [
        issued.token.expose(),
        "SecretBrowser",
        "198.51.100.77",
        &hex::encode([7u8; 32]),
    ] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}
