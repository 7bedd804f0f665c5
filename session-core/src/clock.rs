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
///
/// On Linux the per-request reading ([`Clock::unix_nanos`]) is `CLOCK_REALTIME_COARSE`:
/// the time at the last timer tick (1 to 10 ms old), read in about 7 ns where the precise
/// clock takes about 40 ns on a virtual machine. Session lifetimes, idle timeouts and the
/// cache's staleness bound are whole seconds, so a tick is well below what they can tell;
/// [`Clock::now`] (timestamps in records and events) stays precise.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[allow(clippy::useless_conversion)] // `time_t` and `c_long` are `i32` on 32-bit targets
    fn unix_nanos(&self) -> i64 {
        // libc's `clock_gettime`, not a raw vDSO call: tools such as valgrind hide the vDSO.
        match nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE) {
            Ok(now) => i64::from(now.tv_sec())
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(now.tv_nsec())),
            Err(_) => precise_unix_nanos(),
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn unix_nanos(&self) -> i64 {
        precise_unix_nanos()
    }
}

fn precise_unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_reading_is_the_system_time_within_a_tick() {
        let clock = SystemClock;
        for _ in 0..1000 {
            let before = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            let coarse = clock.unix_nanos();
            let after = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            let before = i64::try_from(before.as_nanos()).unwrap();
            let after = i64::try_from(after.as_nanos()).unwrap();
            // Never ahead of the precise clock, and at most a slow tick (10 ms) behind.
            assert!(coarse <= after, "coarse {coarse} ahead of {after}");
            assert!(
                before - coarse < 10_000_000,
                "coarse {coarse} far behind {before}"
            );
        }
    }
}
