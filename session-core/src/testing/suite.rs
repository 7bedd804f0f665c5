//! The store conformance suite: one scenario list, run against every store.
//!
//! Each scenario uses user ids of its own (random), so scenarios can share one Redis or
//! PostgreSQL database and run in parallel.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::model::{AgentId, Principal, RevocationReason, SessionId, SessionRecord, UserId};
use crate::store::{Created, RevokeMany, RevokeScope, SessionStore};
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
    };
    (rec, issued.token.expose().to_owned())
}

const DAY: Duration = Duration::from_secs(86_400);

async fn create(store: &dyn SessionStore, rec: &SessionRecord) {
    let epoch = store.user_epoch(rec.user_id()).await.expect("epoch");
    assert_eq!(
        store.create(rec, epoch).await.expect("create"),
        Created::Created
    );
}

async fn user_session(
    store: &dyn SessionStore,
    user: &UserId,
    at: OffsetDateTime,
) -> SessionRecord {
    let (rec, _) = record(
        Principal::User {
            user_id: user.clone(),
        },
        at,
        DAY,
    );
    create(store, &rec).await;
    rec
}

fn ids(records: &[SessionRecord]) -> Vec<SessionId> {
    let mut ids: Vec<_> = records.iter().map(|r| r.id).collect();
    ids.sort();
    ids
}

/// Issue, then load back exactly what was stored; unknown ids load as `None`.
pub async fn create_and_load(store: Arc<dyn SessionStore>) {
    let user = fresh_user("load");
    let (rec, _) = record(
        Principal::agent(user.clone(), "agent-1", "Helper <bot>"),
        now_ms(),
        DAY,
    );
    create(&*store, &rec).await;
    assert_eq!(store.load(rec.id).await.unwrap(), Some(rec));
    assert_eq!(store.load(SessionId::random()).await.unwrap(), None);
}

/// Touch moves `last_active_at` forward, never back.
pub async fn touch(store: Arc<dyn SessionStore>) {
    let user = fresh_user("touch");
    let t0 = now_ms();
    let rec = user_session(&*store, &user, t0).await;
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

/// The list holds the user's active sessions (agents too), not revoked, expired or others'.
pub async fn list_active(store: Arc<dyn SessionStore>) {
    let user = fresh_user("list");
    let other = fresh_user("list-other");
    let now = now_ms();
    let a = user_session(&*store, &user, now).await;
    let (agent, _) = record(Principal::agent(user.clone(), "agent-1", "Bot"), now, DAY);
    create(&*store, &agent).await;
    let (expired, _) = record(
        Principal::User {
            user_id: user.clone(),
        },
        now - Duration::from_secs(100),
        Duration::from_secs(50),
    );
    create(&*store, &expired).await;
    let revoked = user_session(&*store, &user, now).await;
    store
        .revoke(revoked.id, &RevocationReason::SignedOut, now)
        .await
        .unwrap();
    user_session(&*store, &other, now).await;
    let listed = store.list_active(&user, now).await.unwrap();
    assert_eq!(ids(&listed), ids(&[a, agent]));
    assert!(
        store
            .list_active(&fresh_user("nobody"), now)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Revoking one session records when and why; a second revoke finds nothing.
pub async fn revoke_one(store: Arc<dyn SessionStore>) {
    let user = fresh_user("revoke");
    let now = now_ms();
    let rec = user_session(&*store, &user, now).await;
    let keep = user_session(&*store, &user, now).await;
    let at = now + Duration::from_secs(5);
    let reason = RevocationReason::Other("offboarded".into());
    let revoked = store
        .revoke(rec.id, &reason, at)
        .await
        .unwrap()
        .expect("was active");
    assert_eq!(revoked.id, rec.id);
    assert_eq!(revoked.revoked_at, Some(at));
    assert_eq!(revoked.revocation_reason, Some(reason.clone()));
    let loaded = store.load(rec.id).await.unwrap().unwrap();
    assert_eq!(loaded.revoked_at, Some(at));
    assert_eq!(loaded.revocation_reason, Some(reason.clone()));
    assert_eq!(store.revoke(rec.id, &reason, at).await.unwrap(), None);
    assert_eq!(
        store
            .revoke(SessionId::random(), &reason, at)
            .await
            .unwrap(),
        None
    );
    assert!(!store.load(keep.id).await.unwrap().unwrap().is_revoked());
}

async fn revoke_many(
    store: &dyn SessionStore,
    user: &UserId,
    scope: RevokeScope,
    except: Option<SessionId>,
    reason: RevocationReason,
) -> Vec<SessionRecord> {
    store
        .revoke_many(RevokeMany {
            user_id: user,
            scope: &scope,
            except,
            reason: &reason,
            at: now_ms(),
        })
        .await
        .unwrap()
}

/// Revoke-all takes every session of the user (agents too), and only that user's.
pub async fn revoke_all(store: Arc<dyn SessionStore>) {
    let user = fresh_user("all");
    let other = fresh_user("all-other");
    let now = now_ms();
    let a = user_session(&*store, &user, now).await;
    let b = user_session(&*store, &user, now).await;
    let (agent, _) = record(Principal::agent(user.clone(), "agent-1", "Bot"), now, DAY);
    create(&*store, &agent).await;
    let bystander = user_session(&*store, &other, now).await;
    let revoked = revoke_many(
        &*store,
        &user,
        RevokeScope::All,
        None,
        RevocationReason::PasswordReset,
    )
    .await;
    assert_eq!(ids(&revoked), ids(&[a.clone(), b, agent]));
    assert!(
        revoked
            .iter()
            .all(|r| r.revocation_reason == Some(RevocationReason::PasswordReset))
    );
    assert!(store.list_active(&user, now).await.unwrap().is_empty());
    assert!(store.load(a.id).await.unwrap().unwrap().is_revoked());
    assert!(
        !store
            .load(bystander.id)
            .await
            .unwrap()
            .unwrap()
            .is_revoked()
    );
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
}

/// Revoke-all-except keeps the one named; the user-sessions scope keeps agents.
pub async fn revoke_all_except(store: Arc<dyn SessionStore>) {
    let user = fresh_user("except");
    let now = now_ms();
    let current = user_session(&*store, &user, now).await;
    let other = user_session(&*store, &user, now).await;
    let (agent, _) = record(Principal::agent(user.clone(), "agent-1", "Bot"), now, DAY);
    create(&*store, &agent).await;
    let revoked = revoke_many(
        &*store,
        &user,
        RevokeScope::UserSessions,
        Some(current.id),
        RevocationReason::RevokedByUser,
    )
    .await;
    assert_eq!(ids(&revoked), ids(&[other]));
    let left = store.list_active(&user, now).await.unwrap();
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
        ids(&store.list_active(&user, now).await.unwrap()),
        ids(&[current])
    );
}

/// An agent's revocation takes that agent's sessions only.
pub async fn revoke_agent(store: Arc<dyn SessionStore>) {
    let user = fresh_user("agent");
    let now = now_ms();
    let own = user_session(&*store, &user, now).await;
    let mut bot1 = Vec::new();
    for _ in 0..2 {
        let (rec, _) = record(Principal::agent(user.clone(), "bot-1", "Bot one"), now, DAY);
        create(&*store, &rec).await;
        bot1.push(rec);
    }
    let (bot2, _) = record(Principal::agent(user.clone(), "bot-2", "Bot two"), now, DAY);
    create(&*store, &bot2).await;
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
        ids(&store.list_active(&user, now).await.unwrap()),
        ids(&[own, bot2])
    );
}

/// A login that read the epoch before a revoke-all cannot create a session after it.
pub async fn epoch_beats_racing_login(store: Arc<dyn SessionStore>) {
    let user = fresh_user("epoch");
    let now = now_ms();
    let before = store.user_epoch(&user).await.unwrap();
    let existing = user_session(&*store, &user, now).await;
    revoke_many(
        &*store,
        &user,
        RevokeScope::All,
        None,
        RevocationReason::PasswordReset,
    )
    .await;
    let after = store.user_epoch(&user).await.unwrap();
    assert_ne!(before, after, "revoke-all moves the epoch");
    let (late, _) = record(
        Principal::User {
            user_id: user.clone(),
        },
        now,
        DAY,
    );
    assert_eq!(
        store.create(&late, before).await.unwrap(),
        Created::EpochMoved
    );
    assert_eq!(
        store.load(late.id).await.unwrap(),
        None,
        "nothing was created"
    );
    assert!(store.load(existing.id).await.unwrap().unwrap().is_revoked());
    // Revoke-others does not move the epoch.
    let fresh = user_session(&*store, &user, now).await;
    revoke_many(
        &*store,
        &user,
        RevokeScope::UserSessions,
        Some(fresh.id),
        RevocationReason::RevokedByUser,
    )
    .await;
    assert_eq!(store.user_epoch(&user).await.unwrap(), after);
}

/// Expired sessions leave the list, and clean-up deletes them (and only them).
pub async fn expiry_and_cleanup(store: Arc<dyn SessionStore>) {
    let user = fresh_user("expiry");
    let now = now_ms();
    let (short, _) = record(
        Principal::User {
            user_id: user.clone(),
        },
        now,
        Duration::from_secs(2),
    );
    create(&*store, &short).await;
    let long = user_session(&*store, &user, now).await;
    let later = now + Duration::from_secs(3);
    assert_eq!(
        ids(&store.list_active(&user, later).await.unwrap()),
        ids(std::slice::from_ref(&long))
    );
    let purged = store.purge_expired(later).await.unwrap();
    assert!(purged >= 1, "purged {purged}");
    assert_eq!(store.load(short.id).await.unwrap(), None);
    assert!(store.load(long.id).await.unwrap().is_some());
    // A purged session is out of the user's index: revoke-all does not count it.
    let revoked = revoke_many(
        &*store,
        &user,
        RevokeScope::All,
        None,
        RevocationReason::SignedOut,
    )
    .await;
    assert_eq!(ids(&revoked), ids(&[long]));
}

/// Nothing the store keeps holds the token, its secret, or the secret's encodings.
pub async fn no_token_at_rest<F, Fut>(store: Arc<dyn SessionStore>, dump: F)
where
    F: FnOnce(Arc<dyn SessionStore>) -> Fut,
    Fut: Future<Output = String>,
{
    let user = fresh_user("secret");
    let (rec, token) = record(
        Principal::User {
            user_id: user.clone(),
        },
        now_ms(),
        DAY,
    );
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
/// `$make` is an expression evaluating to a future of `Arc<dyn SessionStore>` (evaluated
/// once per test); `$dump` a closure from the store to a future of everything it keeps, as
/// text, for the no-token-at-rest check. Put the call inside a module.
#[macro_export]
macro_rules! store_suite {
    ($make:expr, dump = $dump:expr) => {
        $crate::store_suite!(@tests $make;
            create_and_load, touch, list_active, revoke_one, revoke_all, revoke_all_except,
            revoke_agent, epoch_beats_racing_login, expiry_and_cleanup);

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
