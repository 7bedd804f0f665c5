//! The outbox is in the script: a change and its events land together or not at all.
//! Redis does not roll a failed script back, so every script checks whatever can fail
//! before its first write. These tests make Redis fail where it can (a key of the wrong
//! type where a script writes, a corrupt record, a server out of memory) and show that
//! nothing of the change, and none of its events, landed: the whole keyspace of the
//! deployment reads back the same. Skipped when `REDIS_URL` is unset; the out-of-memory
//! test also needs `redis-server` on the `PATH` (a private one on a free port).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use session_core::events::{EventId, EventQuery, EventType, SessionEvent};
use session_core::store::{Change, NewSession, RevokeMany, RevokeScope, SessionFilter};
use session_core::testing::suite::{create, fresh_user, now_ms, record_in};
use session_core::{
    Actor, Principal, RevocationReason, SessionRecord, SessionStore, StoreError, UserId,
};
use session_redis::RedisStore;

use common::{connect, dump, raw, redis_url, unique_prefix};

const DAY: Duration = Duration::from_secs(86_400);

struct Setup {
    store: RedisStore,
    conn: MultiplexedConnection,
    prefix: String,
    user: UserId,
    tag: String,
}

async fn setup() -> Option<Setup> {
    let url = redis_url()?;
    let prefix = unique_prefix();
    let store = connect(&url, &prefix).await;
    let user = fresh_user("atomic");
    let tag = store.shard_tag(store.shard_of(&user));
    Some(Setup {
        store,
        conn: raw(&url).await,
        prefix,
        user,
        tag,
    })
}

impl Setup {
    fn record(&self, principal: Principal) -> SessionRecord {
        let (mut rec, _) = record_in(&self.store, principal, now_ms(), DAY);
        rec.user_agent = Some(format!("Mozilla/5.0 marker-{}", self.prefix));
        rec
    }

    async fn session(&self) -> SessionRecord {
        let rec = self.record(Principal::user(self.user.clone()));
        create(&self.store, &rec).await;
        rec
    }

    /// Runs `op` with `key` replaced by a string, and checks that it failed and that
    /// nothing else changed; puts the key back.
    async fn with_wrong_type<T: std::fmt::Debug>(
        &mut self,
        key: &str,
        op: impl AsyncFnOnce(&RedisStore) -> Result<T, StoreError>,
    ) {
        let backup = format!("{key}:backup");
        let existed: i64 = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut self.conn)
            .await
            .unwrap();
        if existed == 1 {
            let _: () = redis::cmd("RENAME")
                .arg(key)
                .arg(&backup)
                .query_async(&mut self.conn)
                .await
                .unwrap();
        }
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("not what the script expects")
            .query_async(&mut self.conn)
            .await
            .unwrap();
        let before = dump(&mut self.conn, &self.prefix).await;
        let result = op(&self.store).await;
        let after = dump(&mut self.conn, &self.prefix).await;
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut self.conn)
            .await
            .unwrap();
        if existed == 1 {
            let _: () = redis::cmd("RENAME")
                .arg(&backup)
                .arg(key)
                .query_async(&mut self.conn)
                .await
                .unwrap();
        }
        let err = result.expect_err("the script must fail");
        assert!(err.to_string().contains("WRONGTYPE"), "{key}: {err}");
        assert_eq!(before, after, "{key}: a failed script wrote");
    }

    async fn events(&self) -> Vec<SessionEvent> {
        let mut all = Vec::new();
        let mut after: Option<EventId> = None;
        loop {
            let page = self
                .store
                .events(&EventQuery {
                    after: after.clone(),
                    limit: 1000,
                    event_type: None,
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            all.extend(page);
        }
        all
    }
}

fn change(reason: &RevocationReason) -> Change<'_> {
    Change {
        reason,
        actor: Actor::Admin,
        at: now_ms(),
    }
}

fn new_session(rec: &SessionRecord) -> NewSession<'_> {
    NewSession {
        record: rec,
        expected_epoch: None,
        granted_by: None,
        max_user_sessions: None,
        actor: Actor::User,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_fails_writes_nothing() {
    let Some(mut s) = setup().await else { return };
    let old = s.session().await;
    let user = s.user.clone();
    let tag = s.tag.clone();
    // Each key the create script writes, one at a time (the log, the user's audit index,
    // the shard's sets, the user's index and meta).
    for key in [
        format!("{tag}:log"),
        format!("{tag}:a:{user}"),
        format!("{tag}:users"),
        format!("{tag}:act"),
        format!("{tag}:end"),
        format!("{tag}:u:{user}"),
        format!("{tag}:m:{user}"),
    ] {
        let rec = s.record(Principal::user(user.clone()));
        // With the cap at 1, the old session would be evicted first: its revocation,
        // and its event, must not land either.
        s.with_wrong_type(&key, async |store| {
            store
                .create(NewSession {
                    max_user_sessions: Some(1),
                    ..new_session(&rec)
                })
                .await
        })
        .await;
        assert_eq!(s.store.load(rec.id).await.unwrap(), None, "{key}");
        assert!(!s.store.load(old.id).await.unwrap().unwrap().is_revoked());
    }
    // With every key in place, the same create evicts and logs.
    let rec = s.record(Principal::user(user.clone()));
    let created = s
        .store
        .create(NewSession {
            max_user_sessions: Some(1),
            ..new_session(&rec)
        })
        .await
        .unwrap();
    assert!(
        matches!(created, session_core::store::Created::Created { ref evicted, .. } if evicted.len() == 1)
    );
    let log = s.events().await;
    assert_eq!(
        log.iter().map(|e| e.event_type).collect::<Vec<_>>(),
        [EventType::Created, EventType::Revoked, EventType::Created],
        "only the successful calls logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_that_fails_writes_nothing() {
    let Some(mut s) = setup().await else { return };
    let a = s.session().await;
    let b = s.session().await;
    let agent = s.record(Principal::agent(s.user.clone(), "bot", "Bot"));
    create(&s.store, &agent).await;
    let user = s.user.clone();
    let tag = s.tag.clone();
    let reason = RevocationReason::AdminRevoked;
    for key in [
        format!("{tag}:log"),
        format!("{tag}:a:{user}"),
        format!("{tag}:users"),
        format!("{tag}:act"),
        format!("{tag}:end"),
        format!("{tag}:u:{user}"),
    ] {
        s.with_wrong_type(&key, async |store| {
            store.revoke(a.id, change(&reason)).await
        })
        .await;
        s.with_wrong_type(&key, async |store| {
            store
                .revoke_many(RevokeMany {
                    user_id: &user,
                    scope: &RevokeScope::All,
                    except: None,
                    change: change(&reason),
                    disable_user: true,
                })
                .await
        })
        .await;
        let filter = SessionFilter {
            user_agent: Some(format!("marker-{}", s.prefix)),
            ..SessionFilter::default()
        };
        s.with_wrong_type(&key, async |store| {
            store.revoke_matching(&filter, change(&reason), false).await
        })
        .await;
    }
    // The user's meta: an epoch that is not a number would fail the epoch's move, after
    // the revocations if the script did not check it first.
    let meta = format!("{tag}:m:{user}");
    let _: () = redis::cmd("HSET")
        .arg(&meta)
        .arg("ep")
        .arg("not a number")
        .query_async(&mut s.conn)
        .await
        .unwrap();
    let before = dump(&mut s.conn, &s.prefix).await;
    let err = s
        .store
        .revoke_many(RevokeMany {
            user_id: &user,
            scope: &RevokeScope::All,
            except: None,
            change: change(&reason),
            disable_user: false,
        })
        .await
        .expect_err("a corrupt epoch");
    assert!(err.to_string().contains("corrupt epoch"), "{err}");
    assert_eq!(before, dump(&mut s.conn, &s.prefix).await);
    let _: () = redis::cmd("HDEL")
        .arg(&meta)
        .arg("ep")
        .query_async(&mut s.conn)
        .await
        .unwrap();
    // A corrupt record (its expiry unreadable) fails the whole revoke-all, before the
    // other sessions are touched.
    let record_key = format!("{tag}:s:{}", b.id);
    let _: () = redis::cmd("HSET")
        .arg(&record_key)
        .arg("ex")
        .arg("soon")
        .query_async(&mut s.conn)
        .await
        .unwrap();
    let before = dump(&mut s.conn, &s.prefix).await;
    let err = s
        .store
        .revoke_many(RevokeMany {
            user_id: &user,
            scope: &RevokeScope::All,
            except: None,
            change: change(&reason),
            disable_user: false,
        })
        .await
        .expect_err("a corrupt record");
    assert!(err.to_string().contains("corrupt record"), "{err}");
    assert_eq!(before, dump(&mut s.conn, &s.prefix).await);

    for id in [a.id, b.id, agent.id] {
        assert!(!s.store.load(id).await.unwrap().unwrap().is_revoked());
    }
    assert!(!s.store.user_state(&user).await.unwrap().disabled);
    assert!(
        s.events()
            .await
            .iter()
            .all(|e| e.event_type == EventType::Created),
        "no revocation was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_fails_writes_nothing() {
    let Some(mut s) = setup().await else { return };
    let rec = s.session().await;
    let user = s.user.clone();
    let tag = s.tag.clone();
    for key in [
        format!("{tag}:log"),
        format!("{tag}:a:{user}"),
        format!("{tag}:users"),
    ] {
        s.with_wrong_type(&key, async |store| {
            store.report_expired(rec.id, now_ms()).await
        })
        .await;
        let event = SessionEvent::about(
            EventId::new(""),
            EventType::Suspicious,
            rec.id,
            &rec.principal,
            None,
            Actor::System,
            now_ms(),
        );
        s.with_wrong_type(&key, async |store| store.append_event(&event).await)
            .await;
    }
    // Not marked as reported: the next report logs it.
    assert!(
        s.store
            .report_expired(rec.id, now_ms())
            .await
            .unwrap()
            .is_some()
    );
}

/// A `redis-server` of the test's own, stopped (SIGKILL) on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_out_of_memory_refuses_the_whole_script() {
    if redis_url().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Ok(child) = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
        .args(["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        println!("skipping: redis-server is not on the PATH");
        return;
    };
    let _server = Server(child);
    let url = format!("redis://127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(10);
    let store = loop {
        match RedisStore::with_prefix(&url, "oom:").await {
            Ok(store) => break store,
            Err(_) if Instant::now() < until => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("the private redis-server did not start: {e}"),
        }
    };
    let mut conn = raw(&url).await;
    let user = fresh_user("oom");
    let (rec, _) = record_in(&store, Principal::user(user.clone()), now_ms(), DAY);
    create(&store, &rec).await;
    // Fill the memory up to the limit.
    let filler = "x".repeat(64 * 1024);
    for i in 0.. {
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("filler:{i}"))
            .arg(&filler)
            .query_async(&mut conn)
            .await;
        if set.is_err() {
            break;
        }
    }
    let before = dump(&mut conn, "oom:").await;
    let (second, _) = record_in(&store, Principal::user(user.clone()), now_ms(), DAY);
    let err = store
        .create(NewSession {
            max_user_sessions: Some(1),
            ..new_session(&second)
        })
        .await
        .expect_err("out of memory");
    assert!(err.to_string().contains("OOM"), "{err}");
    let reason = RevocationReason::AdminRevoked;
    let err = store
        .revoke(rec.id, change(&reason))
        .await
        .expect_err("out of memory");
    assert!(err.to_string().contains("OOM"), "{err}");
    assert_eq!(before, dump(&mut conn, "oom:").await, "nothing landed");
    // Reads still work: a node can validate sessions while Redis refuses writes.
    assert!(store.load(rec.id).await.unwrap().is_some());
    assert_eq!(
        store.list_active(&user, now_ms(), 10).await.unwrap().len(),
        1
    );
    assert_eq!(
        store
            .audit(&session_core::events::AuditQuery {
                user_id: user,
                before: None,
                limit: 10
            })
            .await
            .unwrap()
            .len(),
        1
    );
}
