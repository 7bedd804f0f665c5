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
//! - Cookies: `__Host-session`, `HttpOnly`, `Secure`, `SameSite=Lax`, `Path=/`, the strict
//!   defaults.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::HeaderValue;

use crate::error::ConfigError;
use crate::store::Retention;
use crate::token::SessionToken;

/// The longest lifetime, idle timeout, staleness bound or retention accepted: 100 years.
/// Longer makes no sense, and keeps every `now + duration` far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Timing and cache policy for sessions. Every setter checks its own value, and
/// [`SessionManager::new`](crate::SessionManager::new) checks them together, so a setting
/// that cannot work is an error at start-up.
///
/// ```
/// use std::time::Duration;
/// use session_core::SessionConfig;
///
/// let config = SessionConfig::new()
///     .with_ttl(Duration::from_secs(12 * 3600))?         // absolute lifetime
///     .with_idle_timeout(Duration::from_secs(30 * 60))?  // inactivity timeout
///     .with_cache_ttl(Duration::from_secs(10));           // staleness bound
/// assert!(config.validate().is_ok());
/// assert_eq!(config.idle_timeout(), Duration::from_secs(1800));
///
/// // A staleness bound longer than the lifetime cannot work: named, not a panic.
/// let bad = SessionConfig::new().with_ttl(Duration::from_secs(60))?.with_cache_ttl(Duration::from_secs(900));
/// assert!(bad.validate().unwrap_err().to_string().contains("cache_ttl"));
/// # Ok::<(), session_core::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SessionConfig {
    pub(crate) ttl: Duration,
    /// `None`: the default, capped at the lifetime.
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) touch_interval: Duration,
    /// `None`: the default, capped at the lifetime.
    pub(crate) cache_ttl: Option<Duration>,
    pub(crate) cache_capacity: u64,
    pub(crate) load_timeout: Duration,
    pub(crate) max_concurrent_loads: usize,
    pub(crate) max_concurrent_touches: usize,
    pub(crate) event_capacity: usize,
    pub(crate) max_user_sessions: Option<u32>,
    pub(crate) list_limit: usize,
    pub(crate) retention: Retention,
    pub(crate) binding: crate::binding::BindingPolicy,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionConfig {
    /// The idle timeout when none is set (capped at the lifetime).
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
    /// The staleness bound when none is set (capped at the lifetime).
    pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);

    /// The defaults: see the module docs.
    pub fn new() -> Self {
        Self {
            ttl: Duration::from_secs(7 * 24 * 3600),
            idle_timeout: None,
            touch_interval: Duration::from_secs(60),
            cache_ttl: None,
            cache_capacity: 1_000_000,
            load_timeout: Duration::from_secs(2),
            max_concurrent_loads: 256,
            max_concurrent_touches: 32,
            event_capacity: 1024,
            max_user_sessions: Some(100),
            list_limit: 500,
            retention: Retention::default(),
            binding: crate::binding::BindingPolicy::new(crate::binding::BindingMode::Off),
        }
    }

    /// Checks that the settings work together; [`SessionManager::new`] calls it, so a bad
    /// setting is an error at start-up, never a panic later.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the setting that cannot work.
    ///
    /// [`SessionManager::new`]: crate::SessionManager::new
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_core::SessionConfig;
    ///
    /// let config = SessionConfig::new()
    ///     .with_ttl(Duration::from_secs(60))?
    ///     .with_cache_ttl(Duration::from_secs(900));
    /// let err = config.validate().unwrap_err();
    /// assert!(err.to_string().contains("cache_ttl"), "{err}");
    /// # Ok::<(), session_core::ConfigError>(())
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, what: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid(what))
            }
        };
        check(
            !self.ttl.is_zero() && self.ttl <= MAX_DURATION,
            "ttl: between 1 s and 100 years",
        )?;
        check(
            self.idle_timeout.is_none_or(|idle| idle <= self.ttl),
            "idle_timeout: at least 1 s and at most the lifetime (ttl)",
        )?;
        check(
            self.cache_ttl.is_none_or(|bound| bound <= self.ttl),
            "cache_ttl: the staleness bound cannot be longer than the lifetime (ttl)",
        )?;
        check(
            !self.touch_interval.is_zero() && self.touch_interval <= MAX_DURATION,
            "touch_interval: between 1 s and 100 years",
        )?;
        check(
            !self.load_timeout.is_zero() && self.load_timeout <= Duration::from_secs(3600),
            "load_timeout: between 1 ms and 1 hour",
        )?;
        check(self.cache_capacity > 0, "cache_capacity: at least 1")?;
        check(
            self.max_concurrent_loads > 0 && self.max_concurrent_loads <= 1 << 20,
            "max_concurrent_loads: between 1 and 1048576",
        )?;
        check(
            self.max_concurrent_touches > 0 && self.max_concurrent_touches <= 1 << 20,
            "max_concurrent_touches: between 1 and 1048576",
        )?;
        check(self.event_capacity > 0, "event_capacity: at least 1")?;
        check(
            self.max_user_sessions != Some(0),
            "max_user_sessions: at least 1",
        )?;
        check(self.list_limit > 0, "list_limit: at least 1")?;
        check(
            self.retention.sessions <= MAX_DURATION && self.retention.events <= MAX_DURATION,
            "retention: at most 100 years",
        )?;
        Ok(())
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

    /// Inactivity timeout: a session unused this long expires. Default 1 day, or the
    /// lifetime if shorter; set explicitly, it may not exceed the lifetime.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for zero.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Result<Self, ConfigError> {
        if idle.is_zero() {
            return Err(ConfigError::Invalid("idle_timeout"));
        }
        self.idle_timeout = Some(idle);
        Ok(self)
    }

    /// At most one `last_active_at` write per session per interval. Default 60 s; the
    /// interval used is never more than a quarter of the idle timeout.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for zero.
    pub fn with_touch_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        if interval.is_zero() {
            return Err(ConfigError::Invalid("touch_interval: at least 1 s"));
        }
        self.touch_interval = interval;
        Ok(self)
    }

    /// The most activity writes (`touch`) in flight at once, so they never take every
    /// store connection from loads: a request that finds none free skips its write (a later
    /// one makes it). Default 32. Checked by [`SessionConfig::validate`].
    pub fn with_max_concurrent_touches(mut self, touches: usize) -> Self {
        self.max_concurrent_touches = touches;
        self
    }

    /// The cap on a user's live user sessions (agents apart): a login beyond it revokes the
    /// oldest, reason `session_limit`. `None`: no cap. Default 100.
    pub fn with_max_user_sessions(mut self, max: Option<u32>) -> Self {
        self.max_user_sessions = max;
        self
    }

    /// The most sessions [`SessionManager::list`](crate::SessionManager::list) returns
    /// (the newest). Default 500.
    pub fn with_list_limit(mut self, limit: usize) -> Self {
        self.list_limit = limit;
        self
    }

    /// Risk binding: compare each cookie request's client network and browser family with
    /// the session's at sign-in, and report or revoke on a change; see
    /// [`binding`](crate::binding). Default: off (nothing compared, nothing costs).
    pub fn with_binding(mut self, policy: crate::binding::BindingPolicy) -> Self {
        self.binding = policy;
        self
    }

    /// How long ended sessions and events are kept; see [`Retention`]. Default: sessions
    /// 7 days after their end, events 400 days.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The staleness bound: how long a node may answer "valid" from its cache without
    /// hearing from the store. Default 30 s, or the lifetime if shorter; set explicitly, it
    /// may not exceed the lifetime (checked by [`SessionConfig::validate`]).
    pub fn with_cache_ttl(mut self, bound: Duration) -> Self {
        self.cache_ttl = Some(bound);
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
    /// Default 1024. Checked by [`SessionConfig::validate`].
    pub fn with_event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
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
            .unwrap_or(Self::DEFAULT_IDLE_TIMEOUT.min(self.ttl))
    }

    /// The touch interval in force: the configured one, capped at a quarter of the idle
    /// timeout.
    #[must_use]
    pub fn effective_touch_interval(&self) -> Duration {
        self.touch_interval.min(self.idle_timeout() / 4)
    }

    /// The staleness bound.
    #[must_use]
    pub fn cache_ttl(&self) -> Duration {
        self.cache_ttl
            .unwrap_or(Self::DEFAULT_CACHE_TTL.min(self.ttl))
    }

    /// The risk-binding policy.
    #[must_use]
    pub fn binding(&self) -> crate::binding::BindingPolicy {
        self.binding
    }

    /// The cap on a user's live user sessions.
    #[must_use]
    pub fn max_user_sessions(&self) -> Option<u32> {
        self.max_user_sessions
    }

    /// The retention of ended sessions and events.
    #[must_use]
    pub fn retention(&self) -> Retention {
        self.retention
    }
}

/// How the session cookie is named and scoped. The deleting `Set-Cookie` is built once.
///
/// ```
/// use session_core::CookieConfig;
///
/// let cookie = CookieConfig::new();
/// assert_eq!(
///     cookie.removal(),
///     "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
/// );
/// ```
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
    /// `__Host-session`, `Path=/`, `HttpOnly`, `Secure`, `SameSite=Lax`, `Max-Age` the
    /// session TTL: the strictest cookie a browser keeps. To share it with subdomains, or to
    /// send it over plain http in development, first name it without the `__Host-` prefix.
    ///
    /// ```
    /// use session_core::CookieConfig;
    ///
    /// let c = CookieConfig::new();
    /// assert_eq!(c.name(), "__Host-session");
    /// assert!(c.clone().with_secure(false).is_err(), "the prefix needs Secure");
    ///
    /// // Local development over http: a plain name, then no `Secure`.
    /// let dev = c.with_name("session")?.with_secure(false)?;
    /// assert_eq!(dev.name(), "session");
    /// # Ok::<(), session_core::ConfigError>(())
    /// ```
    pub fn new() -> Self {
        let mut c = Self {
            name: "__Host-session".into(),
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

    /// The cookie's name. Default `__Host-session`.
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
        if name.starts_with("__Host-")
            && (!self.secure || self.path != "/" || self.domain.is_some())
        {
            return Err(ConfigError::Invalid(
                "cookie name: a __Host- cookie needs Secure, Path=/ and no Domain",
            ));
        }
        self.name = name;
        self.rebuild();
        Ok(self)
    }

    /// Prefixes the name with `__Host-`, which browsers only accept with `Secure`,
    /// `Path=/` and no `Domain`: this sets those, and a later setter that would break them
    /// is an error. A sibling subdomain cannot then set or shadow the cookie. The default
    /// name has it; this puts it back on a name chosen with [`with_name`](Self::with_name).
    ///
    /// ```
    /// use session_core::CookieConfig;
    ///
    /// let c = CookieConfig::new().with_name("sid")?.with_host_prefix();
    /// assert_eq!(c.name(), "__Host-sid");
    /// assert!(c.clone().with_secure(false).is_err());
    /// assert!(c.clone().with_domain("example.com").is_err());
    /// assert!(c.with_path("/app").is_err());
    /// # Ok::<(), session_core::ConfigError>(())
    /// ```
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

    fn host_prefixed(&self) -> bool {
        self.name.starts_with("__Host-")
    }

    /// The cookie's `Path`. Default `/`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for another path than `/` with the `__Host-` prefix, or a
    /// path that is not `/…` header text.
    pub fn with_path(mut self, path: impl Into<String>) -> Result<Self, ConfigError> {
        let path = path.into();
        if !path.starts_with('/') || path.bytes().any(|b| b < 0x20 || b == b';' || b >= 0x7f) {
            return Err(ConfigError::Invalid(
                "cookie path: /…, without ; or controls",
            ));
        }
        if self.host_prefixed() && path != "/" {
            return Err(ConfigError::Invalid(
                "cookie path: a __Host- cookie needs Path=/; name it without the prefix first",
            ));
        }
        self.path = path;
        self.rebuild();
        Ok(self)
    }

    /// The cookie's `Domain`. Default none (host-only).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] with the `__Host-` prefix (which forbids a `Domain`), or for
    /// a domain that is not header text.
    pub fn with_domain(mut self, domain: impl Into<String>) -> Result<Self, ConfigError> {
        let domain = domain.into();
        if domain.is_empty() || domain.bytes().any(|b| b <= 0x20 || b == b';' || b >= 0x7f) {
            return Err(ConfigError::Invalid("cookie domain: a host name"));
        }
        if self.host_prefixed() {
            return Err(ConfigError::Invalid(
                "cookie domain: a __Host- cookie has none; name it without the prefix first",
            ));
        }
        self.domain = Some(domain);
        self.rebuild();
        Ok(self)
    }

    /// Whether the cookie carries `Secure`. Default `true`; turn off only for plain-http
    /// development on localhost.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for `false` with the `__Host-` prefix.
    pub fn with_secure(mut self, secure: bool) -> Result<Self, ConfigError> {
        if self.host_prefixed() && !secure {
            return Err(ConfigError::Invalid(
                "cookie secure: a __Host- cookie needs Secure; name it without the prefix first",
            ));
        }
        self.secure = secure;
        self.rebuild();
        Ok(self)
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
            "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
        let c = CookieConfig::new()
            .with_name("session")
            .unwrap()
            .with_secure(false)
            .unwrap()
            .with_domain("example.com")
            .unwrap()
            .with_path("/app")
            .unwrap();
        assert_eq!(
            c.removal(),
            "session=; HttpOnly; SameSite=Lax; Path=/app; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn host_prefix_forces_secure_root_path_and_no_domain() {
        let c = CookieConfig::new()
            .with_name("session")
            .unwrap()
            .with_secure(false)
            .unwrap()
            .with_domain("example.com")
            .unwrap()
            .with_host_prefix();
        assert_eq!(c.name(), "__Host-session");
        assert_eq!(
            c.removal(),
            "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn the_default_cookie_is_host_prefixed_and_keeps_its_rules() {
        let c = CookieConfig::new();
        assert_eq!(c.name(), "__Host-session");
        for err in [
            c.clone().with_secure(false).unwrap_err(),
            c.clone().with_domain("example.com").unwrap_err(),
            c.clone().with_path("/app").unwrap_err(),
        ] {
            assert!(err.to_string().contains("__Host-"), "{err}");
        }
        let plain = c.with_name("session").unwrap();
        assert!(plain.with_domain("example.com").is_ok());
    }

    #[test]
    fn bad_cookie_names_are_refused() {
        for bad in ["", "a b", "a;b", "a=b", "ä"] {
            assert!(CookieConfig::new().with_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn inconsistent_settings_are_errors() {
        let ok = SessionConfig::new();
        assert!(ok.validate().is_ok());
        let short = SessionConfig::new()
            .with_ttl(Duration::from_secs(60))
            .unwrap();
        assert!(short.validate().is_ok(), "unset bounds follow the lifetime");
        assert_eq!(short.idle_timeout(), Duration::from_secs(60));
        assert_eq!(short.cache_ttl(), Duration::from_secs(30));
        for (bad, name) in [
            (
                short
                    .clone()
                    .with_idle_timeout(Duration::from_secs(61))
                    .unwrap(),
                "idle_timeout",
            ),
            (
                short.clone().with_cache_ttl(Duration::from_secs(900)),
                "cache_ttl",
            ),
            (
                SessionConfig::new()
                    .with_ttl(Duration::from_secs(u64::MAX))
                    .unwrap(),
                "ttl",
            ),
            (
                SessionConfig::new().with_cache_capacity(0),
                "cache_capacity",
            ),
            (
                SessionConfig::new().with_max_user_sessions(Some(0)),
                "max_user_sessions",
            ),
            (SessionConfig::new().with_list_limit(0), "list_limit"),
            (
                SessionConfig::new().with_event_capacity(0),
                "event_capacity",
            ),
            (
                SessionConfig::new().with_max_concurrent_touches(0),
                "max_concurrent_touches",
            ),
        ] {
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
        assert!(
            SessionConfig::new()
                .with_touch_interval(Duration::ZERO)
                .is_err()
        );
    }

    #[test]
    fn touch_interval_is_capped_at_a_quarter_of_idle() {
        let c = SessionConfig::new()
            .with_idle_timeout(Duration::from_secs(100))
            .unwrap()
            .with_touch_interval(Duration::from_secs(60))
            .unwrap();
        assert_eq!(c.effective_touch_interval(), Duration::from_secs(25));
    }
}
