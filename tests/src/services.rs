//! The servers a test needs beside the apps.

/// The URL of database `db` of the Redis at `REDIS_URL`, emptied first, for a test that
/// wants a Redis of its own; `None` (and a line saying the test is skipped) when
/// `REDIS_URL` is not set.
///
/// ```no_run
/// # async fn run() {
/// if let Some(url) = session_conformance::fresh_redis_db(13).await {
///     assert!(url.ends_with("/13"));
/// }
/// # }
/// ```
///
/// # Panics
///
/// When `REDIS_URL` is set but Redis does not answer.
pub async fn fresh_redis_db(db: u32) -> Option<String> {
    let Some(base) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipping: REDIS_URL is not set");
        return None;
    };
    let url = format!("{}/{db}", base.trim_end_matches('/'));
    let client = redis::Client::open(url.as_str()).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("REDIS_URL is set but Redis does not answer");
    let () = redis::cmd("FLUSHDB")
        .query_async(&mut conn)
        .await
        .expect("FLUSHDB");
    Some(url)
}
