//! The app's metrics: a Prometheus recorder installed at start-up, before the session
//! manager registers its series (a handle registered earlier would report to nowhere),
//! and `GET /metrics`, which renders it for the admin token's bearer.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use session_core::Reply;
use session_core::http::header::CONTENT_TYPE;
use session_core::http::{HeaderValue, Method, StatusCode};
use session_selfservice::{Access, BearerToken, Call, Route};

/// Seconds buckets of every histogram (store calls, push lag, webhook lag): a store call
/// takes a fraction of a millisecond to a few; a lag beyond ten seconds is an incident.
const BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's Prometheus recorder, once; later calls answer the same handle.
/// `None` when another recorder was installed first (metrics then go there).
///
/// ```
/// let first = example_support::telemetry::install().expect("the first recorder");
/// let again = example_support::telemetry::install().expect("the same one");
/// assert!(std::ptr::eq(first, again));
/// metrics::counter!("demo_total").increment(1);
/// assert!(first.render().contains("demo_total 1"));
/// ```
pub fn install() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("the bucket list is not empty");
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// `GET /metrics`: the Prometheus text for a request with the admin token; without it,
/// 404 like every admin route, which does not reveal that it exists.
/// Empty when no recorder of this module's is installed.
///
/// ```
/// use example_support::telemetry;
/// use session_selfservice::BearerToken;
///
/// let route = telemetry::route(BearerToken::new("an-admin-token-of-at-least-32-bytes")?);
/// assert_eq!((route.method.as_str(), route.path.as_str()), ("GET", "/metrics"));
/// # Ok::<(), session_core::ConfigError>(())
/// ```
pub fn route(token: BearerToken) -> Route {
    let guard = Access::Guarded(std::sync::Arc::new(move |call: &Call| {
        if token.matches(&call.headers) {
            Ok(())
        } else {
            Err(Reply::error(
                StatusCode::NOT_FOUND,
                session_core::reply::codes::NOT_FOUND,
            ))
        }
    }));
    Route::new(Method::GET, "/metrics", guard, "metrics", |_| async {
        let body = RECORDER
            .get()
            .and_then(Option::as_ref)
            .map(PrometheusHandle::render)
            .unwrap_or_default();
        let mut reply = Reply::empty(StatusCode::OK).with_header(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        reply.body = body;
        reply
    })
}
