//! Policies (lifetime, idle timeout, touch interval, cache staleness) and cookie settings.
//!
//! # How the defaults were chosen
//!
//! - Lifetime 7 days and idle timeout 1 day: a typical "remember this device" web session.
//! - Touch interval: `last_active_at` is written at most once per interval per session, and
//!   the interval never exceeds a quarter of the idle timeout, so an active session is
//!   never idled out. Default 60 s.
//! - Staleness bound 30 s: the longest a node may serve a cached "valid" answer without
//!   hearing from the store, so a lost push delays a revocation by at most that much.
//! - Cookies: `HttpOnly`, `Secure`, `SameSite=Lax`, `Path=/`, the strict defaults.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::HeaderValue;

use crate::error::ConfigError;
use crate::token::SessionToken;

/// Timing and cache policy for sessions.
#[derive(Clone, Debug)]
#[must_use]
pub struct SessionConfig {
    pub(crate) ttl: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) touch_interval: Duration,
    pub(crate) cache_ttl: Duration,
    pub(crate) cache_capacity: u64,
    pub(crate) load_timeout: Duration,
    pub(crate) max_concurrent_loads: usize,
    pub(crate) event_capacity: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionConfig {
    /// The defaults: see the module docs.
    pub fn new() -> Self {
        Self {
            ttl: Duration::from_secs(7 * 24 * 3600),
            idle_timeout: Duration::from_secs(24 * 3600),
            touch_interval: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(30),
            cache_capacity: 1_000_000,
            load_timeout: Duration::from_secs(2),
            max_concurrent_loads: 256,
            event_capacity: 1024,
        }
    }

    /// Absolute lifetime of a session from its issue. Default 7 days.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for zero.
    pub fn with_ttl(mut self, ttl: Duration) -> Result<Self, ConfigError> {
        if ttl.is_zero() {
            return Err(ConfigError::Invalid("ttl"));
        }
        self.ttl = ttl;
        Ok(self)
    }

    /// Inactivity timeout: a session unused this long expires. Default 1 day.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for zero.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Result<Self, ConfigError> {
        if idle.is_zero() {
            return Err(ConfigError::Invalid("idle_timeout"));
        }
        self.idle_timeout = idle;
        Ok(self)
    }

    /// At most one `last_active_at` write per session per interval. Default 60 s; the
    /// interval used is never more than a quarter of the idle timeout.
    pub fn with_touch_interval(mut self, interval: Duration) -> Self {
        self.touch_interval = interval;
        self
    }

    /// The staleness bound: how long a node may answer "valid" from its cache without
    /// hearing from the store. Default 30 s.
    pub fn with_cache_ttl(mut self, bound: Duration) -> Self {
        self.cache_ttl = bound;
        self
    }

    /// The most sessions the cache holds. Default 1 000 000.
    pub fn with_cache_capacity(mut self, entries: u64) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// Deadline for each store call (loads, touches, issues, lists, revocations). Default
    /// 2 s. A call past it fails with [`StoreError::Timeout`](crate::StoreError::Timeout),
    /// which requests see as a 503.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for zero.
    pub fn with_load_timeout(mut self, deadline: Duration) -> Result<Self, ConfigError> {
        if deadline.is_zero() {
            return Err(ConfigError::Invalid("load_timeout"));
        }
        self.load_timeout = deadline;
        Ok(self)
    }

    /// The most store loads in flight at once; beyond it requests get 503. Default 256.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for zero.
    pub fn with_max_concurrent_loads(mut self, loads: usize) -> Result<Self, ConfigError> {
        if loads == 0 {
            return Err(ConfigError::Invalid("max_concurrent_loads"));
        }
        self.max_concurrent_loads = loads;
        Ok(self)
    }

    /// How many events a slow in-process subscriber may fall behind before it misses some.
    /// Default 1024.
    pub fn with_event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// The absolute lifetime.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The inactivity timeout.
    #[must_use]
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The touch interval in force: the configured one, capped at a quarter of the idle
    /// timeout.
    #[must_use]
    pub fn effective_touch_interval(&self) -> Duration {
        self.touch_interval.min(self.idle_timeout / 4)
    }

    /// The staleness bound.
    #[must_use]
    pub fn cache_ttl(&self) -> Duration {
        self.cache_ttl
    }
}

/// How the session cookie is named and scoped. The deleting `Set-Cookie` is built once.
#[derive(Clone, Debug)]
#[must_use]
pub struct CookieConfig {
    name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    same_site: SameSite,
    max_age: Option<Duration>,
    removal: HeaderValue,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl CookieConfig {
    /// `session`, `Path=/`, `HttpOnly`, `Secure`, `SameSite=Lax`, `Max-Age` the session TTL.
    pub fn new() -> Self {
        let mut c = Self {
            name: "session".into(),
            path: "/".into(),
            domain: None,
            secure: true,
            same_site: SameSite::Lax,
            max_age: None,
            removal: HeaderValue::from_static(""),
        };
        c.rebuild();
        c
    }

    /// The cookie's name. Default `session`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::CookieName`] unless it is a non-empty RFC 6265 token.
    pub fn with_name(mut self, name: impl Into<String>) -> Result<Self, ConfigError> {
        let name = name.into();
        let is_token = |b: u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b);
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(ConfigError::CookieName);
        }
        self.name = name;
        self.rebuild();
        Ok(self)
    }

    /// Prefixes the name with `__Host-` (which browsers only accept with `Secure`,
    /// `Path=/` and no `Domain`: this sets those too). Off by default.
    pub fn with_host_prefix(mut self) -> Self {
        if !self.name.starts_with("__Host-") {
            self.name = format!("__Host-{}", self.name);
        }
        self.secure = true;
        self.path = "/".into();
        self.domain = None;
        self.rebuild();
        self
    }

    /// The cookie's `Path`. Default `/`.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self.rebuild();
        self
    }

    /// The cookie's `Domain`. Default none (host-only).
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self.rebuild();
        self
    }

    /// Whether the cookie carries `Secure`. Default `true`; turn off only for plain-http
    /// development on localhost.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self.rebuild();
        self
    }

    /// The `SameSite` attribute. Default `Lax`.
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self.rebuild();
        self
    }

    /// `Max-Age` of the cookie; default: the session's lifetime. `None`-like sessions
    /// cookies are not offered: a cookie outliving the browser is what users expect of
    /// "stay signed in", and the server-side lifetime bounds it anyway.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The cookie's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    fn base<'a>(&'a self, value: &'a str) -> cookie::CookieBuilder<'a> {
        let mut b = Cookie::build((self.name.as_str(), value))
            .path(self.path.as_str())
            .http_only(true)
            .secure(self.secure)
            .same_site(self.same_site);
        if let Some(domain) = &self.domain {
            b = b.domain(domain.as_str());
        }
        b
    }

    fn rebuild(&mut self) {
        let removal = self
            .base("")
            .max_age(cookie::time::Duration::ZERO)
            .expires(cookie::time::OffsetDateTime::UNIX_EPOCH)
            .build()
            .to_string();
        self.removal = HeaderValue::try_from(removal).expect("cookie attributes are valid");
    }

    /// The `Set-Cookie` value that delivers `token`, living `default_max_age` unless a
    /// max-age was configured.
    #[must_use]
    pub fn set_cookie(&self, token: &SessionToken, default_max_age: Duration) -> HeaderValue {
        let max_age = self.max_age.unwrap_or(default_max_age);
        let secs = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        let value = self
            .base(token.expose())
            .max_age(cookie::time::Duration::seconds(secs))
            .build()
            .to_string();
        HeaderValue::try_from(value).expect("token and attributes are valid header text")
    }

    /// The `Set-Cookie` value that deletes the cookie: same name, `Path` and `Domain`,
    /// `Max-Age=0`, `Expires` in 1970.
    #[must_use]
    pub fn removal(&self) -> &HeaderValue {
        &self.removal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_cookie_is_exact() {
        let c = CookieConfig::new();
        assert_eq!(
            c.removal(),
            "session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
        let c = CookieConfig::new()
            .with_secure(false)
            .with_domain("example.com")
            .with_path("/app");
        assert_eq!(
            c.removal(),
            "session=; HttpOnly; SameSite=Lax; Path=/app; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn host_prefix_forces_secure_root_path_and_no_domain() {
        let c = CookieConfig::new()
            .with_secure(false)
            .with_domain("example.com")
            .with_host_prefix();
        assert_eq!(c.name(), "__Host-session");
        assert_eq!(
            c.removal(),
            "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn bad_cookie_names_are_refused() {
        for bad in ["", "a b", "a;b", "a=b", "ä"] {
            assert!(CookieConfig::new().with_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn touch_interval_is_capped_at_a_quarter_of_idle() {
        let c = SessionConfig::new()
            .with_idle_timeout(Duration::from_secs(100))
            .unwrap()
            .with_touch_interval(Duration::from_secs(60));
        assert_eq!(c.effective_touch_interval(), Duration::from_secs(25));
    }
}
