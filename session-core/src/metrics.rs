//! The series sessions report through the [`metrics`] facade, named once here so that both
//! framework adapters (and every store) report the same ones without a line of their own.
//!
//! Nothing is paid when no recorder is installed: the handles are registered once, when a
//! [`SessionManager`](crate::SessionManager) or [`SessionGate`](crate::SessionGate) is built,
//! and a handle registered without a recorder is a no-op (one branch per use). So install
//! the recorder (a Prometheus exporter, say) **before** building the manager: one built
//! earlier keeps reporting to nowhere.
//!
//! | series | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `session_requests_total` | counter | `outcome` | requests the gate checked: `admitted`, a rejection code, or `unavailable` (503) |
//! | `session_cache_hits_total` | counter | | answers from this node's cache |
//! | `session_cache_misses_total` | counter | | lookups that had to ask the store |
//! | `session_cache_entries` | gauge | | entries in the cache |
//! | `session_cache_evictions_total` | counter | | entries evicted to stay within capacity |
//! | `session_store_calls_total` | counter | `op` | store calls, by trait method |
//! | `session_store_seconds` | histogram | `op` | their latency |
//! | `session_store_errors_total` | counter | `op` | those that failed or overran the deadline |
//! | `session_loads_in_flight` | gauge | | store loads of sessions in flight |
//! | `session_push_received_total` | counter | | push messages received |
//! | `session_push_ignored_total` | counter | | of those, ignored (bad MAC, malformed, replayed) |
//! | `session_push_resyncs_total` | counter | | cache resyncs (a gap, a reconnect, a large revocation) |
//! | `session_push_lag_seconds` | histogram | | publish (publisher's clock) to receipt (this node's) |
//! | `session_revocations_total` | counter | `reason`, `actor` | sessions revoked by this node |

use metrics::{Counter, Gauge, Histogram, Unit};

use crate::rejection::RejectionCode;

/// Requests the gate checked, by `outcome`.
///
/// ```
/// assert_eq!(session_core::metrics::REQUESTS, "session_requests_total");
/// ```
pub const REQUESTS: &str = "session_requests_total";

/// Answers from the cache.
///
/// ```
/// assert_eq!(session_core::metrics::CACHE_HITS, "session_cache_hits_total");
/// ```
pub const CACHE_HITS: &str = "session_cache_hits_total";

/// Lookups the cache could not answer.
///
/// ```
/// assert_eq!(session_core::metrics::CACHE_MISSES, "session_cache_misses_total");
/// ```
pub const CACHE_MISSES: &str = "session_cache_misses_total";

/// Entries in the cache.
///
/// ```
/// assert_eq!(session_core::metrics::CACHE_ENTRIES, "session_cache_entries");
/// ```
pub const CACHE_ENTRIES: &str = "session_cache_entries";

/// Entries evicted for capacity.
///
/// ```
/// assert_eq!(session_core::metrics::CACHE_EVICTIONS, "session_cache_evictions_total");
/// ```
pub const CACHE_EVICTIONS: &str = "session_cache_evictions_total";

/// Store calls, by `op`.
///
/// ```
/// assert_eq!(session_core::metrics::STORE_CALLS, "session_store_calls_total");
/// ```
pub const STORE_CALLS: &str = "session_store_calls_total";

/// Store call latency, by `op`.
///
/// ```
/// assert_eq!(session_core::metrics::STORE_SECONDS, "session_store_seconds");
/// ```
pub const STORE_SECONDS: &str = "session_store_seconds";

/// Failed store calls, by `op`.
///
/// ```
/// assert_eq!(session_core::metrics::STORE_ERRORS, "session_store_errors_total");
/// ```
pub const STORE_ERRORS: &str = "session_store_errors_total";

/// Session loads in flight.
///
/// ```
/// assert_eq!(session_core::metrics::LOADS_IN_FLIGHT, "session_loads_in_flight");
/// ```
pub const LOADS_IN_FLIGHT: &str = "session_loads_in_flight";

/// Push messages received.
///
/// ```
/// assert_eq!(session_core::metrics::PUSH_RECEIVED, "session_push_received_total");
/// ```
pub const PUSH_RECEIVED: &str = "session_push_received_total";

/// Push messages ignored.
///
/// ```
/// assert_eq!(session_core::metrics::PUSH_IGNORED, "session_push_ignored_total");
/// ```
pub const PUSH_IGNORED: &str = "session_push_ignored_total";

/// Cache resyncs.
///
/// ```
/// assert_eq!(session_core::metrics::PUSH_RESYNCS, "session_push_resyncs_total");
/// ```
pub const PUSH_RESYNCS: &str = "session_push_resyncs_total";

/// Push lag, publish to receipt.
///
/// ```
/// assert_eq!(session_core::metrics::PUSH_LAG, "session_push_lag_seconds");
/// ```
pub const PUSH_LAG: &str = "session_push_lag_seconds";

/// Revocations, by `reason` and `actor`.
///
/// ```
/// assert_eq!(session_core::metrics::REVOCATIONS, "session_revocations_total");
/// ```
pub const REVOCATIONS: &str = "session_revocations_total";

/// Every series name above.
///
/// ```
/// assert!(session_core::metrics::ALL.iter().all(|name| name.starts_with("session_")));
/// assert_eq!(session_core::metrics::ALL.len(), 14);
/// ```
pub const ALL: &[&str] = &[
    REQUESTS,
    CACHE_HITS,
    CACHE_MISSES,
    CACHE_ENTRIES,
    CACHE_EVICTIONS,
    STORE_CALLS,
    STORE_SECONDS,
    STORE_ERRORS,
    LOADS_IN_FLIGHT,
    PUSH_RECEIVED,
    PUSH_IGNORED,
    PUSH_RESYNCS,
    PUSH_LAG,
    REVOCATIONS,
];

/// Describes every series to the installed recorder (its help text and unit). The manager
/// calls it when built; describing again is harmless.
///
/// ```
/// session_core::metrics::describe(); // no recorder: nothing happens
/// assert_eq!(session_core::metrics::outcome_label(None), "admitted");
/// ```
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    for &(name, kind, help) in HELP {
        match kind {
            Kind::Counter => describe_counter!(name, help),
            Kind::Gauge => describe_gauge!(name, help),
            Kind::Seconds => describe_histogram!(name, Unit::Seconds, help),
        }
    }
}

/// A series' type, for [`describe`].
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Seconds,
}

/// Each series' type and help text.
const HELP: &[(&str, Kind, &str)] = &[
    (
        REQUESTS,
        Kind::Counter,
        "Requests the session gate checked, by outcome.",
    ),
    (
        CACHE_HITS,
        Kind::Counter,
        "Session lookups answered by this node's cache.",
    ),
    (
        CACHE_MISSES,
        Kind::Counter,
        "Session lookups that had to ask the store.",
    ),
    (
        CACHE_ENTRIES,
        Kind::Gauge,
        "Entries in this node's session cache.",
    ),
    (
        CACHE_EVICTIONS,
        Kind::Counter,
        "Session cache entries evicted to stay within capacity.",
    ),
    (
        STORE_CALLS,
        Kind::Counter,
        "Session store calls, by operation.",
    ),
    (
        STORE_SECONDS,
        Kind::Seconds,
        "Session store call latency, by operation.",
    ),
    (
        STORE_ERRORS,
        Kind::Counter,
        "Session store calls that failed or overran their deadline, by operation.",
    ),
    (
        LOADS_IN_FLIGHT,
        Kind::Gauge,
        "Session loads from the store in flight.",
    ),
    (
        PUSH_RECEIVED,
        Kind::Counter,
        "Revocation push messages received.",
    ),
    (
        PUSH_IGNORED,
        Kind::Counter,
        "Revocation push messages ignored (bad MAC, malformed, replayed).",
    ),
    (PUSH_RESYNCS, Kind::Counter, "Session cache resyncs."),
    (
        PUSH_LAG,
        Kind::Seconds,
        "Revocation push lag: publish (publisher's clock) to receipt on this node.",
    ),
    (
        REVOCATIONS,
        Kind::Counter,
        "Sessions revoked by this node, by reason and actor.",
    ),
];

/// The `outcome` label of a checked request: `admitted` (`None`), the rejection's code,
/// or `unavailable` for a 503.
///
/// ```
/// use session_core::RejectionCode;
/// use session_core::metrics::outcome_label;
///
/// assert_eq!(outcome_label(Some(RejectionCode::SessionRevoked)), "session_revoked");
/// assert_eq!(outcome_label(Some(RejectionCode::StoreUnavailable)), "unavailable");
/// ```
#[must_use]
pub const fn outcome_label(code: Option<RejectionCode>) -> &'static str {
    match code {
        None => "admitted",
        Some(RejectionCode::StoreUnavailable) => "unavailable",
        Some(code) => code.as_str(),
    }
}

/// The outcomes, in the order of [`Outcomes`]' counters.
const OUTCOMES: [Option<RejectionCode>; 7] = [
    None,
    Some(RejectionCode::SessionMissing),
    Some(RejectionCode::SessionInvalid),
    Some(RejectionCode::SessionExpired),
    Some(RejectionCode::SessionRevoked),
    Some(RejectionCode::StoreUnavailable),
    Some(RejectionCode::CrossSiteRequest),
];

/// `session_requests_total`, one handle per outcome, registered once.
#[derive(Clone, Debug)]
pub(crate) struct Outcomes([Counter; OUTCOMES.len()]);

impl Outcomes {
    pub(crate) fn register() -> Self {
        Self(OUTCOMES.map(|code| metrics::counter!(REQUESTS, "outcome" => outcome_label(code))))
    }

    /// Counts one request; answers its label.
    pub(crate) fn count(&self, code: Option<RejectionCode>) -> &'static str {
        let i = match code {
            None => 0,
            Some(RejectionCode::SessionMissing) => 1,
            Some(RejectionCode::SessionInvalid) => 2,
            Some(RejectionCode::SessionExpired) => 3,
            Some(RejectionCode::SessionRevoked) => 4,
            Some(RejectionCode::StoreUnavailable) => 5,
            Some(RejectionCode::CrossSiteRequest) => 6,
        };
        self.0[i].increment(1);
        outcome_label(code)
    }
}

/// The handles of the cache and the push channel, registered once per manager (its
/// cache holds them).
#[derive(Clone, Debug)]
pub(crate) struct Handles {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) entries: Gauge,
    pub(crate) evictions: Counter,
    pub(crate) loads_in_flight: Gauge,
    pub(crate) push_received: Counter,
    pub(crate) push_ignored: Counter,
    pub(crate) push_resyncs: Counter,
    pub(crate) push_lag: Histogram,
}

impl Handles {
    pub(crate) fn register() -> Self {
        Self {
            hits: metrics::counter!(CACHE_HITS),
            misses: metrics::counter!(CACHE_MISSES),
            entries: metrics::gauge!(CACHE_ENTRIES),
            evictions: metrics::counter!(CACHE_EVICTIONS),
            loads_in_flight: metrics::gauge!(LOADS_IN_FLIGHT),
            push_received: metrics::counter!(PUSH_RECEIVED),
            push_ignored: metrics::counter!(PUSH_IGNORED),
            push_resyncs: metrics::counter!(PUSH_RESYNCS),
            push_lag: metrics::histogram!(PUSH_LAG),
        }
    }
}

/// Counts `n` sessions revoked for `reason` by `actor`. Off the request path, so the
/// handle is looked up each time; a reason of the app's own is labelled `other`, which
/// keeps the series few.
pub(crate) fn count_revocations(reason: &crate::RevocationReason, actor: crate::Actor, n: usize) {
    let reason = match reason {
        crate::RevocationReason::Other(_) => "other".to_owned(),
        known => known.as_str().to_owned(),
    };
    metrics::counter!(REVOCATIONS, "reason" => reason, "actor" => actor.as_str())
        .increment(u64::try_from(n).unwrap_or(u64::MAX));
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use crate::gate::{Admission, GateCheck, GateMode};
    use crate::store::PushMessage;
    use crate::{
        Actor, ClientInfo, KeySet, MemoryStore, Principal, RevocationReason, SessionConfig,
        SessionGate, SessionManager,
    };

    /// Every value recorded, by name and sorted labels (`name{k=v,…}`); histograms by
    /// their number of samples.
    fn values(recorder: &DebuggingRecorder) -> HashMap<String, f64> {
        recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let mut labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                let name = format!("{}{{{}}}", key.name(), labels.join(","));
                #[expect(clippy::cast_precision_loss, reason = "small test counts")]
                let value = match value {
                    DebugValue::Counter(n) => n as f64,
                    DebugValue::Gauge(g) => g.into_inner(),
                    DebugValue::Histogram(h) => h.len() as f64,
                };
                (name, value)
            })
            .collect()
    }

    async fn checked(gate: &SessionGate, cookie: &str) -> Admission {
        let req = http::Request::get("/me")
            .header("cookie", format!("__Host-session={cookie}"))
            .body(())
            .unwrap();
        match gate.check(&req, GateMode::REQUIRED) {
            GateCheck::Decided(a) => a,
            GateCheck::NeedsLoad(p) => gate.finish(p).await,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_gate_cache_store_push_and_revocations_report() {
        let recorder = DebuggingRecorder::new();
        let _local = metrics::set_default_local_recorder(&recorder);
        let keys = KeySet::random();
        let a = SessionManager::new(
            Arc::new(MemoryStore::new()),
            keys.clone(),
            SessionConfig::default(),
        )
        .unwrap();
        let gate = SessionGate::new(a.clone());
        let issued = a
            .issue(Principal::user("alice"), ClientInfo::default())
            .await
            .unwrap();
        let token = issued.token.expose().to_owned();
        assert!(matches!(checked(&gate, &token).await, Admission::Admit(_)));
        assert!(matches!(
            checked(&gate, "forged").await,
            Admission::Refuse(_)
        ));
        a.revoke(
            issued.session.id(),
            RevocationReason::SignedOut,
            Actor::User,
        )
        .await
        .unwrap();
        assert!(matches!(checked(&gate, &token).await, Admission::Refuse(_)));
        // A second node hears of a revocation by push: a notice from `a`'s codec.
        let b = SessionManager::new(Arc::new(MemoryStore::new()), keys, SessionConfig::default())
            .unwrap();
        let notice = a.push_notice(&[issued.session.id()], 0);
        b.apply_push(&PushMessage::Payload(notice.into())).unwrap();
        b.apply_push(&PushMessage::Payload("garbage".into()))
            .unwrap_err();
        b.apply_push(&PushMessage::Reconnected).unwrap();

        let v = values(&recorder);
        let get = |name: &str| v.get(name).copied().unwrap_or_default();
        assert_eq!(get("session_requests_total{outcome=admitted}"), 1.0);
        assert_eq!(get("session_requests_total{outcome=session_invalid}"), 1.0);
        assert_eq!(get("session_requests_total{outcome=session_revoked}"), 1.0);
        assert_eq!(get("session_cache_hits_total{}"), 2.0);
        assert_eq!(get("session_store_calls_total{op=create}"), 1.0);
        assert_eq!(get("session_store_calls_total{op=revoke}"), 1.0);
        assert_eq!(get("session_store_seconds{op=revoke}"), 1.0);
        assert_eq!(get("session_store_errors_total{op=revoke}"), 0.0);
        assert_eq!(
            get("session_revocations_total{actor=user,reason=signed_out}"),
            1.0
        );
        assert_eq!(get("session_push_received_total{}"), 2.0);
        assert_eq!(get("session_push_ignored_total{}"), 1.0);
        assert_eq!(get("session_push_resyncs_total{}"), 1.0);
        assert_eq!(get("session_push_lag_seconds{}"), 1.0);
        // One gauge for the process: the last cache to change sets it (here `b`'s resync).
        assert_eq!(v.get("session_cache_entries{}"), Some(&0.0));
    }
}
