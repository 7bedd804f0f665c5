//! Opening a store from its URL: the one place that knows which URL names which store.
//!
//! The example apps (`SESSION_STORE`) and the command-line tool (`--store`) both come here,
//! so the two accept exactly the same URLs:
//!
//! | URL | store |
//! | --- | --- |
//! | `memory` | [`MemoryStore`], in this process only |
//! | `sqlite://PATH` | [`SqliteStore`] in the file at `PATH` (`sqlite:///var/lib/app/sessions.db`; a relative path is from the working directory) |
//! | `redis://[USER:PASSWORD@]HOST:PORT[/DB]`, `rediss://…` (TLS) | [`RedisStore`], default prefix and shards |
//! | `postgres://…`, `postgresql://…` | [`PostgresStore`], migrated ([`PostgresStore::migrate`]) |
//!
//! A URL's password never shows in what this module prints: [`StoreUrl`]'s `Display` and
//! `Debug` mask it (and any `password`-like query parameter), and [`StoreUrl::secrets`]
//! lists what to mask in text from elsewhere (a driver's error message).
//!
//! ```
//! use session_admin::connect::StoreUrl;
//!
//! let url = StoreUrl::parse("postgres://app:s3cret@db.internal:5432/app").unwrap();
//! assert_eq!(url.kind(), "postgres");
//! assert_eq!(url.to_string(), "postgres://app:***@db.internal:5432/app");
//! assert!(StoreUrl::parse("mysql://db/app").unwrap_err().to_string().contains("mysql"));
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use session_core::{MemoryStore, SessionStore, StoreError};
use session_postgres::PostgresStore;
use session_redis::RedisStore;
use session_sqlite::SqliteStore;

/// The shared stores' URLs, for error messages.
pub const SHARED: &str =
    "sqlite://PATH, redis://HOST:PORT (or rediss://) or postgres://USER@HOST/DB";

/// Every URL [`connect`] accepts, for error messages.
pub const ACCEPTED: &str =
    "use memory, sqlite://PATH, redis://HOST:PORT (or rediss://) or postgres://USER@HOST/DB";

/// A store URL, parsed: which kind of store, and where. `Display` and `Debug` mask the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory`: a store in this process, gone with it.
    Memory,
    /// `sqlite://PATH`.
    Sqlite(PathBuf),
    /// `redis://…` or `rediss://…`, as given.
    Redis(String),
    /// `postgres://…` or `postgresql://…`, as given.
    Postgres(String),
}

/// Why a store could not be opened. The message is one line and holds no password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Not a URL (no `://`) nor `memory`.
    #[error("not a store URL: {ACCEPTED}")]
    NotAUrl,
    /// A scheme that names no store this crate knows (the scheme, cleaned up for
    /// printing).
    #[error("unknown store kind {0:?}: {ACCEPTED}")]
    UnknownKind(String),
    /// `sqlite://` without a path.
    #[error("sqlite://PATH: the path is missing")]
    MissingPath,
    /// The store refused, failed, or is not what the URL says.
    #[error("{kind} store: {source}")]
    Store {
        /// `sqlite`, `redis`, `postgres`.
        kind: &'static str,
        /// What the store said.
        source: StoreError,
    },
    /// The store did not answer in time.
    #[error("{kind} store: no answer within {}", seconds(*.after))]
    Timeout {
        /// `sqlite`, `redis`, `postgres`.
        kind: &'static str,
        /// The deadline that passed.
        after: Duration,
    },
}

/// `5 s`, `1.5 s`.
pub(crate) fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// How to connect, beyond the URL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The longest the whole opening may take (connecting, checking, migrating); `None`
    /// leaves each store's own deadlines (what the example apps do).
    pub timeout: Option<Duration>,
}

impl ConnectOptions {
    /// No deadline beyond the stores' own.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Opening fails with [`ConnectError::Timeout`] after `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A store just opened, of its own type: the caller can reach what is particular to it
/// (the example apps keep their demo users' passwords in the same database:
/// [`SqliteStore::pool`], [`PostgresStore::pool`], the Redis URL).
#[derive(Debug)]
pub enum OpenedStore {
    /// `memory` (shared already: it is large, and needs no other handle).
    Memory(Arc<MemoryStore>),
    /// `sqlite://PATH`.
    Sqlite(SqliteStore),
    /// `redis://…`, `rediss://…`.
    Redis(RedisStore),
    /// `postgres://…`, `postgresql://…` (migrated).
    Postgres(PostgresStore),
}

impl OpenedStore {
    /// The store, for a [`SessionManager`](session_core::SessionManager).
    #[must_use]
    pub fn into_shared(self) -> Arc<dyn SessionStore> {
        match self {
            Self::Memory(s) => s,
            Self::Sqlite(s) => Arc::new(s),
            Self::Redis(s) => Arc::new(s),
            Self::Postgres(s) => Arc::new(s),
        }
    }

    /// `memory`, `sqlite`, `redis` or `postgres`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Sqlite(_) => "sqlite",
            Self::Redis(_) => "redis",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Opens the store `url` names, with the stores' own deadlines: what `SESSION_STORE` does
/// in the example apps. See the [module docs](self) for the URLs.
///
/// # Errors
///
/// [`ConnectError::NotAUrl`], [`ConnectError::UnknownKind`] or
/// [`ConnectError::MissingPath`] for a URL that names no store; [`ConnectError::Store`] when the
/// store cannot be opened.
pub async fn connect(url: &str) -> Result<OpenedStore, ConnectError> {
    StoreUrl::parse(url)?.open(ConnectOptions::new()).await
}

impl StoreUrl {
    /// Parses a store URL (see the [module docs](self)). Only the scheme and the SQLite
    /// path are checked here; the drivers check the rest when connecting.
    ///
    /// # Errors
    ///
    /// [`ConnectError::NotAUrl`], [`ConnectError::UnknownKind`] (naming the scheme, never the
    /// rest of the URL), [`ConnectError::MissingPath`].
    pub fn parse(url: &str) -> Result<Self, ConnectError> {
        let url = url.trim();
        if url == "memory" {
            return Ok(Self::Memory);
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(ConnectError::NotAUrl);
        };
        match scheme {
            "sqlite" if rest.is_empty() => Err(ConnectError::MissingPath),
            "sqlite" => Ok(Self::Sqlite(PathBuf::from(rest))),
            "redis" | "rediss" => Ok(Self::Redis(url.to_owned())),
            "postgres" | "postgresql" => Ok(Self::Postgres(url.to_owned())),
            other => {
                let shown: String = other.chars().take(20).filter(|c| !c.is_control()).collect();
                Err(ConnectError::UnknownKind(shown))
            }
        }
    }

    /// `memory`, `sqlite`, `redis` or `postgres`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite(_) => "sqlite",
            Self::Redis(_) => "redis",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Text that must never be printed: the URL's password, as written and decoded, and
    /// the values of query parameters that look like secrets (`password`, `sslpassword`,
    /// `…secret…`, `…token…`). Empty for `memory` and SQLite.
    #[must_use]
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Self::Memory | Self::Sqlite(_) => Vec::new(),
            Self::Redis(url) | Self::Postgres(url) => url_secrets(url),
        }
    }

    /// Opens the store.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Store`] when the store cannot be opened (refused, not a database,
    /// migration failed), [`ConnectError::Timeout`] past `options.timeout`.
    pub async fn open(&self, options: ConnectOptions) -> Result<OpenedStore, ConnectError> {
        let kind = self.kind();
        let opening = self.open_unbounded();
        match options.timeout {
            None => opening.await,
            Some(after) => tokio::time::timeout(after, opening)
                .await
                .unwrap_or(Err(ConnectError::Timeout { kind, after })),
        }
    }

    async fn open_unbounded(&self) -> Result<OpenedStore, ConnectError> {
        let kind = self.kind();
        let failed = |source: StoreError| ConnectError::Store { kind, source };
        match self {
            Self::Memory => Ok(OpenedStore::Memory(Arc::new(MemoryStore::new()))),
            Self::Sqlite(path) => SqliteStore::open(path)
                .await
                .map(OpenedStore::Sqlite)
                .map_err(failed),
            Self::Redis(url) => RedisStore::connect(url)
                .await
                .map(OpenedStore::Redis)
                .map_err(failed),
            Self::Postgres(url) => {
                let store = PostgresStore::connect(url).await.map_err(failed)?;
                store.migrate().await.map_err(failed)?;
                Ok(OpenedStore::Postgres(store))
            }
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Redis(url) | Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// Query parameters whose values are secrets.
fn secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|s| name.contains(s))
}

/// Splits `scheme://authority/path?query#fragment` into (before the userinfo, userinfo,
/// after it up to the query, query).
fn parts(url: &str) -> (&str, Option<&str>, &str, Option<&str>) {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return (url, None, "", None);
    };
    let (head, rest) = url.split_at(start);
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => (head, Some(&rest[..at]), &rest[at..], query),
        None => (head, None, rest, query),
    }
}

/// The URL with its password and secret query values replaced by `***`.
fn redact(url: &str) -> String {
    let (head, userinfo, rest, query) = parts(url);
    let mut out = head.to_owned();
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push_str(":***");
            }
            None => out.push_str(userinfo),
        }
    }
    out.push_str(rest);
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if secret_param(name) => format!("{name}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

fn url_secrets(url: &str) -> Vec<String> {
    let (_, userinfo, _, query) = parts(url);
    let mut secrets = Vec::new();
    if let Some((_, password)) = userinfo.and_then(|u| u.split_once(':')) {
        secrets.push(password.to_owned());
    }
    for pair in query.unwrap_or("").split('&') {
        if let Some((name, value)) = pair.split_once('=')
            && secret_param(name)
        {
            secrets.push(value.to_owned());
        }
    }
    let decoded: Vec<String> = secrets
        .iter()
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    secrets.extend(decoded);
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    secrets
}

/// `text` with every secret in `secrets` replaced by `***`, longest first (so that a
/// secret containing another is masked whole).
#[must_use]
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    sorted
        .into_iter()
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_store() {
        assert_eq!(StoreUrl::parse("memory").unwrap(), StoreUrl::Memory);
        assert_eq!(
            StoreUrl::parse("sqlite:///tmp/x.db").unwrap(),
            StoreUrl::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite://rel.db").unwrap(),
            StoreUrl::Sqlite("rel.db".into())
        );
        for url in ["redis://h:1", "rediss://h:1/2"] {
            assert_eq!(StoreUrl::parse(url).unwrap().kind(), "redis");
        }
        for url in ["postgres://u@h/d", "postgresql://u@h/d"] {
            assert_eq!(StoreUrl::parse(url).unwrap().kind(), "postgres");
        }
        for bad in [
            "",
            "mysql://u:pw@h/d",
            "sqlite://",
            "redis",
            "127.0.0.1:6379",
        ] {
            let err = StoreUrl::parse(bad).unwrap_err().to_string();
            assert!(!err.contains('\n') && !err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn passwords_are_masked() {
        let cases = [
            (
                "redis://:hunter2@127.0.0.1:6379/3",
                "redis://:***@127.0.0.1:6379/3",
            ),
            (
                "rediss://default:p%40ss@cache:6380",
                "rediss://default:***@cache:6380",
            ),
            (
                "postgres://app:s3cret@db/app?sslmode=require&password=other",
                "postgres://app:***@db/app?sslmode=require&password=***",
            ),
            ("postgres://app@db/app", "postgres://app@db/app"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            // An `@` in the path is not userinfo.
            ("postgres://db/a@b", "postgres://db/a@b"),
        ];
        for (url, shown) in cases {
            let parsed = StoreUrl::parse(url).unwrap();
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(format!("{parsed:?}"), format!("StoreUrl({shown})"));
        }
        let url = StoreUrl::parse("rediss://default:p%40ss@cache:6380").unwrap();
        assert_eq!(url.secrets(), ["p%40ss", "p@ss"]);
        assert_eq!(
            mask("auth failed for p@ss (p%40ss)", &url.secrets()),
            "auth failed for *** (***)"
        );
    }
}
