//! Gap detection on the push channel. A file of its own: the notifications it forges make
//! every listener on the database resync, which would disturb the other push tests (test
//! binaries run one after another).

mod common;

use std::time::Duration;

use common::{drain, next};
use session_core::SessionId;
use session_core::SessionStore;
use session_core::store::Invalidation;
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_gap_and_garbage_resync() {
    let Some(b) = common::store().await else {
        return;
    };
    let admin = PgPool::connect(&common::database_url().unwrap())
        .await
        .unwrap();
    let mut rx = b.invalidations().expect("push");
    assert!(b.wait_listening(DEADLINE).await);
    drain(&mut rx);
    let publisher = uuid::Uuid::new_v4();
    let (x, y, z) = (
        SessionId::random(),
        SessionId::random(),
        SessionId::random(),
    );
    let notify = |payload: String| {
        let admin = admin.clone();
        async move {
            sqlx::query("SELECT pg_notify('session_revocations', $1)")
                .bind(payload)
                .execute(&admin)
                .await
                .unwrap();
        }
    };
    notify(format!(
        r#"{{"v":1,"publisher":"{publisher}","seq":5,"ids":["{x}"]}}"#
    ))
    .await;
    assert_eq!(next_of(&mut rx, &[x, y, z]).await, Invalidation::Revoked(x));
    // seq 6 never arrives.
    notify(format!(
        r#"{{"v":1,"publisher":"{publisher}","seq":7,"ids":["{y}"]}}"#
    ))
    .await;
    assert_eq!(next_of(&mut rx, &[x, y, z]).await, Invalidation::Resync);
    assert_eq!(next_of(&mut rx, &[x, y, z]).await, Invalidation::Revoked(y));
    notify(format!(
        r#"{{"v":1,"publisher":"{publisher}","seq":8,"ids":["{z}"]}}"#
    ))
    .await;
    assert_eq!(next_of(&mut rx, &[x, y, z]).await, Invalidation::Revoked(z));
    notify("not json".into()).await;
    assert_eq!(next_of(&mut rx, &[x, y, z]).await, Invalidation::Resync);
    notify(format!(
        r#"{{"v":2,"publisher":"{publisher}","seq":9,"ids":[]}}"#
    ))
    .await;
    assert_eq!(next_of(&mut rx, &[x, y, z]).await, Invalidation::Resync);
}

/// The next resync, or revocation of one of `ids` (skipping anything else).
async fn next_of(
    rx: &mut tokio::sync::broadcast::Receiver<Invalidation>,
    ids: &[SessionId],
) -> Invalidation {
    loop {
        match next(rx, DEADLINE).await {
            Invalidation::Revoked(id) if !ids.contains(&id) => {}
            msg => return msg,
        }
    }
}
