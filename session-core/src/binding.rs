//! Risk binding: what a session is bound to at sign-in (the client's network and browser
//! family), and what the gate does when a request comes from elsewhere.
//!
//! The network is the client IP cut to a prefix (IPv4 /24 and IPv6 /64 by default, so a
//! phone moving between addresses of one provider's block stays the same); the browser
//! family is the browser's name without its version, read from the `User-Agent` by a small
//! classifier (`Firefox`, `Chrome`, `Edge`, `Safari`, …; other clients by their first product
//! token, `curl` for `curl/8.5`). Both are folded into one 64-bit fingerprint kept with the
//! cached session, so the check on a cache hit is one classification of the request's
//! `User-Agent` and one compare.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

/// What happens when a request's network or browser family differs from the session's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindingMode {
    /// No binding (the default): nothing is compared, nothing costs.
    #[default]
    Off,
    /// The request is served, and a `session.suspicious` event is logged (once per session
    /// and node for each new fingerprint).
    Report,
    /// The session is revoked (reason `risk_detected`, actor `system`) and the request
    /// refused as `session_revoked`.
    Revoke,
}

/// The binding policy: a mode and the network prefixes.
///
/// ```
/// use session_core::binding::{BindingMode, BindingPolicy};
///
/// let policy = BindingPolicy::new(BindingMode::Revoke).with_prefixes(16, 48).unwrap();
/// assert_eq!(policy.mode(), BindingMode::Revoke);
/// assert!(BindingPolicy::new(BindingMode::Report).with_prefixes(33, 64).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindingPolicy {
    mode: BindingMode,
    v4_prefix: u8,
    v6_prefix: u8,
}

impl Default for BindingPolicy {
    fn default() -> Self {
        Self::new(BindingMode::Off)
    }
}

impl BindingPolicy {
    /// `mode` with the default prefixes, IPv4 /24 and IPv6 /64.
    #[must_use]
    pub const fn new(mode: BindingMode) -> Self {
        Self {
            mode,
            v4_prefix: 24,
            v6_prefix: 64,
        }
    }

    /// The network prefixes compared.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`](crate::ConfigError::Invalid) beyond 32 (IPv4) or 128
    /// (IPv6).
    pub fn with_prefixes(mut self, v4: u8, v6: u8) -> Result<Self, crate::ConfigError> {
        if v4 > 32 || v6 > 128 {
            return Err(crate::ConfigError::Invalid(
                "binding prefixes: at most /32 (IPv4) and /128 (IPv6)",
            ));
        }
        self.v4_prefix = v4;
        self.v6_prefix = v6;
        Ok(self)
    }

    /// The mode.
    #[must_use]
    pub const fn mode(&self) -> BindingMode {
        self.mode
    }

    /// Whether anything is compared.
    #[must_use]
    pub const fn is_on(&self) -> bool {
        !matches!(self.mode, BindingMode::Off)
    }

    /// The network of `ip` under this policy's prefixes, as 16 bytes (IPv4 mapped).
    #[must_use]
    pub fn network(&self, ip: IpAddr) -> u128 {
        let (bits, keep) = match ip {
            IpAddr::V4(v4) => (
                u128::from(v4.to_ipv6_mapped()),
                96 + u32::from(self.v4_prefix),
            ),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (
                    u128::from(v4.to_ipv6_mapped()),
                    96 + u32::from(self.v4_prefix),
                ),
                None => (u128::from(v6), u32::from(self.v6_prefix)),
            },
        };
        if keep == 0 {
            0
        } else {
            bits & (u128::MAX << (128 - keep))
        }
    }

    /// The fingerprint of a client: its network and browser family, hashed. `None` when
    /// the IP is unknown (nothing to bind to).
    #[must_use]
    pub fn fingerprint(&self, ip: Option<IpAddr>, user_agent: Option<&[u8]>) -> Option<u64> {
        let network = self.network(ip?);
        let family = browser_family(user_agent.unwrap_or_default());
        let mut h = FIXED.build_hasher();
        network.hash(&mut h);
        family.hash(&mut h);
        Some(h.finish())
    }
}

impl BindingPolicy {
    /// [`BindingPolicy::fingerprint`] folded to 32 bits, never 0 (0 means "bound to
    /// nothing": a session without a recorded IP). What the cache keeps per session.
    #[must_use]
    pub fn fingerprint32(&self, ip: Option<IpAddr>, user_agent: Option<&[u8]>) -> u32 {
        self.fingerprint(ip, user_agent).map_or(0, |fp| {
            let folded = (fp ^ (fp >> 32)) as u32;
            folded.max(1)
        })
    }

    /// The fingerprint a session recorded at sign-in (its `ip` and `user_agent`), or 0
    /// when the policy is off, the session is an agent's (agents are not bound), or it has
    /// no IP.
    #[must_use]
    pub fn of_record(&self, record: &crate::SessionRecord) -> u32 {
        if !self.is_on() || record.kind() == crate::SessionKind::Agent {
            return 0;
        }
        let ip = record.ip.as_deref().and_then(|ip| ip.parse().ok());
        self.fingerprint32(ip, record.user_agent.as_deref().map(str::as_bytes))
    }
}

/// A hasher with fixed keys: fingerprints computed on different nodes, or before and
/// after a restart, must agree.
const FIXED: std::hash::BuildHasherDefault<rustc_hash::FxHasher> =
    std::hash::BuildHasherDefault::new();

/// The browser's name, without its version, from a `User-Agent`: the browsers people use
/// by name; other clients by their first product token (`curl`, `python-requests`);
/// `""` for none.
///
/// ```
/// use session_core::binding::browser_family;
///
/// let firefox = b"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
/// let firefox_next = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:141.0) Gecko/20100101 Firefox/141.0";
/// let chrome = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36";
/// let edge = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0";
/// assert_eq!(browser_family(firefox), "Firefox");
/// assert_eq!(browser_family(firefox_next), "Firefox", "the version does not count");
/// assert_eq!(browser_family(chrome), "Chrome");
/// assert_eq!(browser_family(edge), "Edge");
/// assert_eq!(browser_family(b"curl/8.5.0"), "curl");
/// ```
#[must_use]
pub fn browser_family(user_agent: &[u8]) -> &str {
    // The names to look for, most specific first: Chromium-based browsers also say
    // `Chrome/` and `Safari/`, and Chrome says `Safari/`.
    const FAMILIES: [(&[u8], &str); 12] = [
        (b"Edg/", "Edge"),
        (b"EdgA/", "Edge"),
        (b"EdgiOS/", "Edge"),
        (b"OPR/", "Opera"),
        (b"SamsungBrowser/", "Samsung Internet"),
        (b"Firefox/", "Firefox"),
        (b"FxiOS/", "Firefox"),
        (b"CriOS/", "Chrome"),
        (b"Chromium/", "Chromium"),
        (b"Chrome/", "Chrome"),
        (b"Version/", "Safari"),
        (b"Safari/", "Safari"),
    ];
    if user_agent.starts_with(b"Mozilla/") {
        for (token, family) in FAMILIES {
            if memchr::memmem::find(user_agent, token).is_some() {
                return family;
            }
        }
    }
    // Not a browser: the first product token's name.
    let end = user_agent
        .iter()
        .position(|&b| b == b'/' || b == b' ' || b == b'(')
        .unwrap_or(user_agent.len());
    std::str::from_utf8(&user_agent[..end.min(64)]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_cut_to_the_prefix() {
        let p = BindingPolicy::new(BindingMode::Report);
        let a = p.network("203.0.113.7".parse().unwrap());
        let b = p.network("203.0.113.200".parse().unwrap());
        let c = p.network("203.0.114.7".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let m = p.network("::ffff:203.0.113.9".parse().unwrap());
        assert_eq!(a, m, "IPv4-mapped IPv6 is the IPv4 network");
        let v6a = p.network("2001:db8:1:2::1".parse().unwrap());
        let v6b = p.network("2001:db8:1:2:ffff::1".parse().unwrap());
        let v6c = p.network("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(v6a, v6b);
        assert_ne!(v6a, v6c);
    }

    #[test]
    fn fingerprints_change_with_network_or_family_not_version() {
        let p = BindingPolicy::new(BindingMode::Report);
        let ip = |s: &str| Some(s.parse().unwrap());
        let ff140 = b"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
        let ff141 = b"Mozilla/5.0 (X11; Linux x86_64; rv:141.0) Gecko/20100101 Firefox/141.0";
        let chrome = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36";
        let base = p.fingerprint(ip("198.51.100.1"), Some(ff140));
        assert_eq!(base, p.fingerprint(ip("198.51.100.99"), Some(ff141)));
        assert_ne!(base, p.fingerprint(ip("198.51.101.1"), Some(ff140)));
        assert_ne!(base, p.fingerprint(ip("198.51.100.1"), Some(chrome)));
        assert_eq!(p.fingerprint(None, Some(ff140)), None);
    }

    #[test]
    fn safari_and_others() {
        let safari = b"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
        assert_eq!(browser_family(safari), "Safari");
        let ios_chrome = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1";
        assert_eq!(browser_family(ios_chrome), "Chrome");
        assert_eq!(browser_family(b""), "");
        assert_eq!(browser_family(b"python-requests/2.32"), "python-requests");
        assert_eq!(browser_family(b"\xff\xfe/1"), "");
    }
}
