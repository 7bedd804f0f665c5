//! Failed-login throttling: after [`PER_USER`] failures for one user name within a minute,
//! further attempts for it are refused (429 with `Retry-After`) until that minute is over,
//! a correct password included; and, with a higher limit ([`PER_IP`]), per client IP, so
//! one client cannot try many names either. Counted per process: each instance throttles
//! what it sees.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures per user name per window.
pub const PER_USER: u32 = 10;
/// Failures per client IP per window.
pub const PER_IP: u32 = 100;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Entries kept per table: beyond it, expired windows are dropped, then new keys are not
/// tracked (the table cannot be grown without bound by made-up user names).
const MAX_ENTRIES: usize = 100_000;
/// Bytes of a user name that count (longer names are cut).
const MAX_NAME: usize = 128;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

#[derive(Debug)]
struct Table<K> {
    windows: Mutex<HashMap<K, Window>>,
    limit: u32,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new(limit: u32) -> Self {
        Self {
            windows: Mutex::default(),
            limit,
        }
    }

    /// How long `key` is still refused, if it is.
    fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let w = windows.get(key)?;
        let end = w.start + WINDOW;
        (w.failures >= self.limit && now < end).then(|| end - now)
    }

    fn failed(&self, key: &K, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= MAX_ENTRIES && !windows.contains_key(key) {
            windows.retain(|_, w| now < w.start + WINDOW);
            if windows.len() >= MAX_ENTRIES {
                return;
            }
        }
        let w = windows.entry(key.clone()).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now >= w.start + WINDOW {
            *w = Window {
                start: now,
                failures: 0,
            };
        }
        w.failures += 1;
    }

    fn clear(&self, key: &K) {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// The failed-login counters.
#[derive(Debug)]
pub struct Throttle {
    users: Table<String>,
    ips: Table<IpAddr>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            users: Table::new(PER_USER),
            ips: Table::new(PER_IP),
        }
    }
}

fn key(name: &str) -> String {
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

impl Throttle {
    /// How long a login for `user` from `ip` must wait, if it must: the whole seconds of
    /// `Retry-After`, at least 1.
    #[must_use]
    pub fn retry_after(&self, user: &str, ip: Option<IpAddr>) -> Option<u64> {
        let now = Instant::now();
        let by_user = self.users.blocked(&key(user), now);
        let by_ip = ip.and_then(|ip| self.ips.blocked(&ip, now));
        by_user
            .max(by_ip)
            .map(|wait| wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            .map(|s| s.max(1))
    }

    /// Counts a failed login.
    pub fn failed(&self, user: &str, ip: Option<IpAddr>) {
        let now = Instant::now();
        self.users.failed(&key(user), now);
        if let Some(ip) = ip {
            self.ips.failed(&ip, now);
        }
    }

    /// Forgets a user's failures after a successful login.
    pub fn succeeded(&self, user: &str) {
        self.users.clear(&key(user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_block_the_name_for_the_rest_of_the_minute() {
        let t = Throttle::default();
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        for _ in 0..PER_USER - 1 {
            t.failed("alice", ip);
        }
        assert_eq!(t.retry_after("alice", ip), None);
        t.failed("alice", ip);
        let wait = t.retry_after("alice", ip).expect("blocked");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(t.retry_after("bob", ip), None, "other names are not");
    }

    #[test]
    fn many_names_from_one_ip_block_the_ip() {
        let t = Throttle::default();
        let ip = Some(IpAddr::from([192, 0, 2, 2]));
        for i in 0..PER_IP {
            t.failed(&format!("user{i}"), ip);
        }
        assert!(t.retry_after("someone-new", ip).is_some());
        assert!(
            t.retry_after("someone-new", Some(IpAddr::from([192, 0, 2, 3])))
                .is_none()
        );
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(key(&"é".repeat(200)).len(), 128);
    }
}
