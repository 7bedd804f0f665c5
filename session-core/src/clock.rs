//! Time, behind a trait so tests can move it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// Now, as nanoseconds since the Unix epoch (the per-request path reads this one).
    fn unix_nanos(&self) -> i64 {
        i64::try_from(self.now().unix_timestamp_nanos()).unwrap_or(i64::MAX)
    }
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn unix_nanos(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to, for tests of expiry and idle timeouts.
#[derive(Clone, Debug)]
pub struct ManualClock {
    unix_nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    #[must_use]
    pub fn new(start: OffsetDateTime) -> Self {
        let nanos = i64::try_from(start.unix_timestamp_nanos()).expect("time within i64 nanos");
        Self {
            unix_nanos: Arc::new(AtomicI64::new(nanos)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let nanos = i64::try_from(by.as_nanos()).expect("duration within i64 nanos");
        self.unix_nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Moves the clock back, as a system clock stepped by NTP might.
    pub fn rewind(&self, by: std::time::Duration) {
        let nanos = i64::try_from(by.as_nanos()).expect("duration within i64 nanos");
        self.unix_nanos.fetch_sub(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn unix_nanos(&self) -> i64 {
        self.unix_nanos.load(Ordering::SeqCst)
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(
            self.unix_nanos.load(Ordering::SeqCst),
        ))
        .expect("valid timestamp")
    }
}
