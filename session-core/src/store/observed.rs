//! The store as the manager sees it: every call counted, timed and traced, whatever the
//! backend, so that no store has to report anything itself.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use metrics::{Counter, Histogram};
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tracing::Instrument as _;

use super::{
    Change, Created, Matched, NewSession, Purged, PushMessage, Retention, RevokeMany,
    RevokedSession, SessionFilter, SessionStore, UserState,
};
use crate::error::StoreError;
use crate::events::{AuditQuery, EventId, EventQuery, SessionEvent};
use crate::metrics::{STORE_CALLS, STORE_ERRORS, STORE_SECONDS};
use crate::model::{SessionId, SessionRecord, UserId};

macro_rules! ops {
    ($($op:ident),* $(,)?) => {
        /// A store operation: the `op` label.
        #[derive(Clone, Copy, Debug)]
        #[allow(non_camel_case_types)]
        enum Op { $($op),* }

        impl Op {
            const ALL: &[Op] = &[$(Op::$op),*];

            const fn as_str(self) -> &'static str {
                match self { $(Op::$op => stringify!($op)),* }
            }
        }
    };
}

ops!(
    user_state,
    create,
    load,
    touch,
    list_active,
    revoke,
    revoke_many,
    revoke_matching,
    set_user_disabled,
    report_expired,
    append_event,
    events,
    audit,
    purge,
    first_use,
    try_lease,
    release_lease,
    load_cursor,
    save_cursor,
    publish,
);

/// One operation's handles.
#[derive(Debug)]
struct OpMetrics {
    calls: Counter,
    seconds: Histogram,
    errors: Counter,
}

/// A store whose every call is counted, timed and traced (span `session_store`, field
/// `op`; never an argument).
pub(crate) struct Observed {
    inner: Arc<dyn SessionStore>,
    ops: Box<[OpMetrics]>,
}

/// The store's own `Debug`: the wrapper is an implementation detail.
impl fmt::Debug for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Records a call's time when it ends, and counts it as an error unless it answered `Ok`:
/// a call whose future a deadline dropped never answers.
struct Pending<'a> {
    op: &'a OpMetrics,
    started: Instant,
    ok: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.op.seconds.record(self.started.elapsed());
        if !self.ok {
            self.op.errors.increment(1);
        }
    }
}

impl Observed {
    pub(crate) fn new(inner: Arc<dyn SessionStore>) -> Self {
        let ops = Op::ALL
            .iter()
            .map(|op| OpMetrics {
                calls: metrics::counter!(STORE_CALLS, "op" => op.as_str()),
                seconds: metrics::histogram!(STORE_SECONDS, "op" => op.as_str()),
                errors: metrics::counter!(STORE_ERRORS, "op" => op.as_str()),
            })
            .collect();
        Self { inner, ops }
    }

    async fn observe<T>(
        &self,
        op: Op,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let metrics = &self.ops[op as usize];
        metrics.calls.increment(1);
        let span = tracing::debug_span!("session_store", op = op.as_str());
        let mut pending = Pending {
            op: metrics,
            started: Instant::now(),
            ok: false,
        };
        let result = call.instrument(span).await;
        pending.ok = result.is_ok();
        result
    }
}

#[async_trait]
impl SessionStore for Observed {
    fn new_session_id(&self, user_id: &UserId) -> SessionId {
        self.inner.new_session_id(user_id)
    }

    async fn user_state(&self, user_id: &UserId) -> Result<UserState, StoreError> {
        self.observe(Op::user_state, self.inner.user_state(user_id))
            .await
    }

    async fn create(&self, new: NewSession<'_>) -> Result<Created, StoreError> {
        self.observe(Op::create, self.inner.create(new)).await
    }

    async fn load(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.observe(Op::load, self.inner.load(id)).await
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.observe(Op::touch, self.inner.touch(id, at)).await
    }

    async fn list_active(
        &self,
        user_id: &UserId,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.observe(Op::list_active, self.inner.list_active(user_id, now, limit))
            .await
    }

    async fn revoke(
        &self,
        id: SessionId,
        change: Change<'_>,
    ) -> Result<Option<RevokedSession>, StoreError> {
        self.observe(Op::revoke, self.inner.revoke(id, change))
            .await
    }

    async fn revoke_many(&self, req: RevokeMany<'_>) -> Result<Vec<RevokedSession>, StoreError> {
        self.observe(Op::revoke_many, self.inner.revoke_many(req))
            .await
    }

    async fn revoke_matching(
        &self,
        filter: &SessionFilter,
        change: Change<'_>,
        dry_run: bool,
    ) -> Result<Matched, StoreError> {
        self.observe(
            Op::revoke_matching,
            self.inner.revoke_matching(filter, change, dry_run),
        )
        .await
    }

    async fn set_user_disabled(&self, user_id: &UserId, disabled: bool) -> Result<(), StoreError> {
        self.observe(
            Op::set_user_disabled,
            self.inner.set_user_disabled(user_id, disabled),
        )
        .await
    }

    async fn report_expired(
        &self,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<Option<SessionEvent>, StoreError> {
        self.observe(Op::report_expired, self.inner.report_expired(id, at))
            .await
    }

    async fn append_event(&self, event: &SessionEvent) -> Result<EventId, StoreError> {
        self.observe(Op::append_event, self.inner.append_event(event))
            .await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<SessionEvent>, StoreError> {
        self.observe(Op::events, self.inner.events(query)).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<SessionEvent>, StoreError> {
        self.observe(Op::audit, self.inner.audit(query)).await
    }

    async fn purge(&self, now: OffsetDateTime, retention: Retention) -> Result<Purged, StoreError> {
        self.observe(Op::purge, self.inner.purge(now, retention))
            .await
    }

    async fn first_use(&self, key: &str, until: OffsetDateTime) -> Result<bool, StoreError> {
        self.observe(Op::first_use, self.inner.first_use(key, until))
            .await
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.observe(Op::try_lease, self.inner.try_lease(name, holder, ttl))
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.observe(Op::release_lease, self.inner.release_lease(name, holder))
            .await
    }

    async fn load_cursor(&self, name: &str) -> Result<Option<EventId>, StoreError> {
        self.observe(Op::load_cursor, self.inner.load_cursor(name))
            .await
    }

    async fn save_cursor(&self, name: &str, cursor: &EventId) -> Result<(), StoreError> {
        self.observe(Op::save_cursor, self.inner.save_cursor(name, cursor))
            .await
    }

    async fn publish(&self, payload: &str) -> Result<(), StoreError> {
        self.observe(Op::publish, self.inner.publish(payload)).await
    }

    fn push_limit(&self) -> usize {
        self.inner.push_limit()
    }

    fn push_messages(&self) -> Option<broadcast::Receiver<PushMessage>> {
        self.inner.push_messages()
    }

    fn is_persistent(&self) -> bool {
        self.inner.is_persistent()
    }
}
