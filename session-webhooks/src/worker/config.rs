//! The worker's settings, checked as they are set, and what it may say about its URL.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// A setting the worker cannot use. Nothing in it repeats a secret or the URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL does not parse, is not `http` or `https`, or has no host.
    #[error("webhook URL: {0}")]
    Url(&'static str),
    /// No secret to sign with.
    #[error("no webhook secret")]
    NoSecret,
    /// A setting out of its range.
    #[error("{setting}: {requirement}")]
    Invalid {
        /// The setting (the `with_*` method's name).
        setting: &'static str,
        /// What it must be.
        requirement: &'static str,
    },
    /// [`WebhookWorker::spawn`](super::WebhookWorker::spawn) was called outside a Tokio
    /// runtime.
    #[error("the webhook worker needs a Tokio runtime")]
    NoRuntime,
    /// The HTTP client could not be built (its TLS set-up failed).
    #[error("HTTP client: {0}")]
    Client(String),
}

pub(super) fn check(
    ok: bool,
    setting: &'static str,
    requirement: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            setting,
            requirement,
        })
    }
}

/// The receiver's URL, and the parts of it that may be shown.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) url: reqwest::Url,
    /// The host, for metrics labels and logs.
    pub(crate) host: Arc<str>,
    /// `scheme://host:port`: no credentials, no path (which may hold a token).
    pub(crate) origin: Arc<str>,
    /// `webhook:` and the first 128 bits of the URL's SHA-256, in hex: the default lease
    /// and cursor name.
    pub(crate) name: String,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(url).map_err(|_| ConfigError::Url("does not parse"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::Url("the scheme must be http or https"));
        }
        let host: Arc<str> = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(ConfigError::Url("no host"))?
            .into();
        let origin = match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        };
        let digest = Sha256::digest(url.as_str().as_bytes());
        let name = format!("webhook:{}", hex::encode(&digest[..16]));
        Ok(Self {
            url,
            host,
            origin: origin.into(),
            name,
        })
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)
    }
}

/// Exponential backoff with jitter: the delay before retry `n` (1 for the first retry) is
/// `base * 2^(n-1)`, at most `max`, shortened by a random fraction of up to `jitter`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) max: Duration,
    pub(crate) jitter: f64,
}

impl Backoff {
    /// The delay before retry `n` (`n >= 1`), jitter drawn from `unit` (in `[0, 1)`).
    pub(crate) fn delay_with(&self, n: u32, unit: f64) -> Duration {
        let doublings = n.saturating_sub(1).min(31);
        let full = self
            .base
            .checked_mul(1_u32 << doublings)
            .map_or(self.max, |d| d.min(self.max));
        full.mul_f64(1.0 - self.jitter * unit.clamp(0.0, 1.0))
    }

    /// The delay before retry `n`, with random jitter.
    pub(crate) fn delay(&self, n: u32) -> Duration {
        self.delay_with(n, fastrand::f64())
    }
}

/// Every setting but the store, the URL, the secrets, the encoder and the wake-ups.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) horizon: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) lease_ttl: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) concurrency: usize,
    pub(crate) read_ahead: usize,
    pub(crate) batch: usize,
    pub(crate) node_id: String,
    pub(crate) name: String,
}

impl Settings {
    /// The lease is renewed every third of its time to live…
    pub(crate) fn renew_every(&self) -> Duration {
        self.lease_ttl / 3
    }

    /// …and held, locally, for four fifths of it from the start of the call that took or
    /// renewed it: the store counts its time to live from later than that, so this node
    /// stops before any other can take the lease over.
    pub(crate) fn held_for(&self) -> Duration {
        self.lease_ttl.mul_f64(0.8)
    }

    /// The longest a store call may take before the worker gives up on it.
    pub(crate) fn store_timeout(&self) -> Duration {
        self.lease_ttl / 2
    }
}

/// A random node id: the process id and 32 random bits.
pub(crate) fn random_node_id() -> String {
    format!("{}-{:08x}", std::process::id(), fastrand::u32(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_shows_no_credentials_or_path() {
        let e = Endpoint::parse("https://user:pa55@hooks.example.com:8443/t/SECRET?k=v").unwrap();
        assert_eq!(&*e.host, "hooks.example.com");
        assert_eq!(&*e.origin, "https://hooks.example.com:8443");
        assert_eq!(format!("{e:?}"), "https://hooks.example.com:8443");
        assert!(e.name.starts_with("webhook:"));
        assert_eq!(e.name.len(), "webhook:".len() + 32);
        assert!(!e.name.contains("SECRET"));
        let plain = Endpoint::parse("http://127.0.0.1/hook").unwrap();
        assert_eq!(&*plain.origin, "http://127.0.0.1");
        assert_ne!(plain.name, e.name);
    }

    #[test]
    fn endpoint_refuses_what_it_cannot_post_to() {
        for url in [
            "",
            "hooks.example.com",
            "ftp://example.com/",
            "unix:/tmp/s",
            "http://",
        ] {
            assert!(
                matches!(Endpoint::parse(url), Err(ConfigError::Url(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_max_and_jitter_only_shortens() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: 0.5,
        };
        let secs = |n| b.delay_with(n, 0.0).as_secs();
        assert_eq!(
            [secs(1), secs(2), secs(3), secs(6), secs(7)],
            [1, 2, 4, 32, 60]
        );
        assert_eq!(secs(u32::MAX), 60);
        assert_eq!(b.delay_with(1, 0.999_999).as_millis(), 500);
        for n in 1..40 {
            let d = b.delay(n);
            let full = b.delay_with(n, 0.0);
            assert!(d <= full && d >= full / 2, "{n}: {d:?}");
        }
    }
}
