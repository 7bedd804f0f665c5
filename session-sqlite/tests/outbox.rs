//! The outbox gap on SQLite: can a reader's cursor pass an event that commits later with a
//! smaller id? These tests try to make two writers interleave around a reader polling the
//! log between their steps, and show it cannot happen (the crate docs say why): a second
//! writer cannot take an event id while the first holds one uncommitted.

mod common;

use std::sync::Arc;
use std::time::Duration;

use session_core::events::{EventId, EventQuery, EventType, SessionEvent};
use session_core::testing::suite::{fresh_user, now_ms};
use session_core::{Actor, Principal, SessionId, SessionStore};
use session_sqlite::SqliteStore;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection as _, SqliteConnection};

/// A connection of its own on the file (as another process would have), waiting at most
/// `busy` for the write lock.
async fn connection(path: &std::path::Path, busy: Duration) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(busy);
    SqliteConnection::connect_with(&options).await.unwrap()
}

/// What the store's writers insert, by hand: one event of `user`.
async fn insert_event(conn: &mut SqliteConnection, user: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO events (type, occurred_at, session_id, user_id, session_kind, actor) \
         VALUES ('session.suspicious', 0, ?1, ?2, 'user', 'system') RETURNING id",
    )
    .bind(SessionId::random().to_string())
    .bind(user)
    .fetch_one(conn)
    .await
}

fn extended_code(err: &sqlx::Error) -> i32 {
    match err {
        sqlx::Error::Database(db) => db.code().unwrap().parse().unwrap(),
        other => panic!("not a database error: {other}"),
    }
}

const SQLITE_BUSY: i32 = 5;
const SQLITE_BUSY_SNAPSHOT: i32 = 517;

/// The reader: everything after `after` (the store's own `events`, on its pool).
async fn poll(store: &SqliteStore, after: &Option<EventId>) -> Vec<SessionEvent> {
    store
        .events(&EventQuery {
            after: after.clone(),
            limit: 1000,
            event_type: None,
        })
        .await
        .unwrap()
}

fn suspicious(user: &str) -> SessionEvent {
    SessionEvent::about(
        EventId::new(""),
        EventType::Suspicious,
        SessionId::random(),
        &Principal::user(user),
        None,
        Actor::System,
        now_ms(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_writer_cannot_take_an_id_while_the_first_holds_one() {
    let temp = common::TempStore::open().await;
    let store = temp.store.clone();
    let user = fresh_user("gap");
    // Another pool on the file, for the store's own writers below (opened first: opening
    // migrates, which wants the write lock).
    let other = Arc::new(SqliteStore::open(&temp.path).await.unwrap());
    // Some history, and the reader's cursor at its end.
    store
        .append_event(&suspicious(user.as_str()))
        .await
        .unwrap();
    let mut after = poll(&store, &None).await.last().map(|e| e.id.clone());
    let mut seen: Vec<SessionEvent> = Vec::new();

    // Writer A: a deferred transaction that reads first (the lock is not taken yet)...
    let mut a = connection(&temp.path, Duration::from_secs(5)).await;
    sqlx::query("BEGIN").execute(&mut a).await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut a)
        .await
        .unwrap();
    // ... a writer B that read the same snapshot ...
    let mut stale = connection(&temp.path, Duration::ZERO).await;
    sqlx::query("BEGIN").execute(&mut stale).await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut stale)
        .await
        .unwrap();
    // ... then A writes its event: it takes the write lock and id `n`, uncommitted.
    let n = insert_event(&mut a, user.as_str()).await.unwrap();
    assert!(poll(&store, &after).await.is_empty(), "uncommitted: unseen");

    // B cannot take an id: not from a fresh write transaction, nor by a plain insert,
    // nor from the transaction that read before A wrote.
    let mut b = connection(&temp.path, Duration::ZERO).await;
    let err = sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut b)
        .await
        .unwrap_err();
    assert_eq!(extended_code(&err) & 0xff, SQLITE_BUSY, "{err}");
    let err = insert_event(&mut b, user.as_str()).await.unwrap_err();
    assert_eq!(extended_code(&err) & 0xff, SQLITE_BUSY, "{err}");
    let err = insert_event(&mut stale, user.as_str()).await.unwrap_err();
    assert_eq!(extended_code(&err) & 0xff, SQLITE_BUSY, "{err}");

    // The store's own writers (on the other pool) start now: they wait for A's lock,
    // with no id in hand.
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let (other, user) = (other.clone(), user.clone());
            tokio::spawn(async move { other.append_event(&suspicious(user.as_str())).await })
        })
        .collect();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            poll(&store, &after).await.is_empty(),
            "nothing committed yet"
        );
    }
    assert!(
        writers.iter().all(|w| !w.is_finished()),
        "they wait for the lock"
    );

    // A commits; the waiting writers go, one at a time. The reader polls all along.
    sqlx::query("COMMIT").execute(&mut a).await.unwrap();
    let mut written = vec![EventId::new(format!("{n:020}"))];
    let mut pending = writers;
    while !pending.is_empty() || seen.len() < written.len() {
        let page = poll(&store, &after).await;
        if let Some(last) = page.last() {
            after = Some(last.id.clone());
        }
        seen.extend(page);
        let (done, waiting): (Vec<_>, Vec<_>) = pending.into_iter().partition(|w| w.is_finished());
        for w in done {
            written.push(w.await.unwrap().unwrap());
        }
        pending = waiting;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let ids: Vec<EventId> = seen.iter().map(|e| e.id.clone()).collect();
    written.sort();
    assert_eq!(ids, written, "every event, once, in id order");
    assert_eq!(ids[0].as_str(), format!("{n:020}"), "A's comes first");

    // B's stale transaction can never write: its snapshot predates A's commit.
    let err = insert_event(&mut stale, user.as_str()).await.unwrap_err();
    assert_eq!(extended_code(&err), SQLITE_BUSY_SNAPSHOT, "{err}");
    sqlx::query("ROLLBACK").execute(&mut stale).await.unwrap();
    for conn in [a, b, stale] {
        conn.close().await.unwrap();
    }
    other.close().await;
}

/// Many writers in two pools on one file (two processes, as far as SQLite knows), a reader
/// paging in small steps all along: it sees each event once, in id order, none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_polling_beside_two_pools_of_writers_misses_nothing() {
    let temp = common::TempStore::open().await;
    let second = Arc::new(SqliteStore::open(&temp.path).await.unwrap());
    let stores: [Arc<dyn SessionStore>; 2] = [temp.clone(), second.clone()];
    let user = fresh_user("pools");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..8 {
        let (store, user, tx) = (stores[i % 2].clone(), user.clone(), tx.clone());
        tokio::spawn(async move {
            for _ in 0..25 {
                let id = store
                    .append_event(&suspicious(user.as_str()))
                    .await
                    .unwrap();
                tx.send(id).unwrap();
            }
        });
    }
    drop(tx);
    let mut after: Option<EventId> = None;
    let mut seen = Vec::new();
    let mut written = Vec::new();
    let mut open = true;
    while open || seen.len() < written.len() {
        loop {
            match rx.try_recv() {
                Ok(id) => written.push(id),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let page = poll(&temp.store, &after).await;
        // Every id the reader sees is above its cursor: had an event committed later
        // with a smaller id, it would be behind the cursor now and never read.
        if let Some(last) = page.last() {
            after = Some(last.id.clone());
        }
        seen.extend(page.into_iter().map(|e| e.id));
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order, each once");
    written.sort();
    assert_eq!(seen, written, "none skipped");
    assert_eq!(seen.len(), 200);
    second.close().await;
}
