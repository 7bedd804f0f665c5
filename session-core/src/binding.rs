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
    // The product names to look for, most specific first: Chromium-based browsers also
    // say `Chrome/` and `Safari/`, and Chrome says `Safari/`. A name counts where it ends
    // just before a `/` (so `HeadlessChrome/` is Chrome).
    const FAMILIES: [(&[u8], &str); 12] = [
        (b"Edg", "Edge"),
        (b"EdgA", "Edge"),
        (b"EdgiOS", "Edge"),
        (b"OPR", "Opera"),
        (b"SamsungBrowser", "Samsung Internet"),
        (b"Firefox", "Firefox"),
        (b"FxiOS", "Firefox"),
        (b"CriOS", "Chrome"),
        (b"Chromium", "Chromium"),
        (b"Chrome", "Chrome"),
        (b"Version", "Safari"),
        (b"Safari", "Safari"),
    ];
    if user_agent.starts_with(b"Mozilla/") {
        // One pass over the `/`s, rather than a substring search per name: this runs on
        // every request when risk binding is on.
        let mut best = FAMILIES.len();
        for_each_slash(user_agent, |slash| {
            let before = &user_agent[..slash];
            // By the name's last letter first: most product names (`Mozilla`,
            // `AppleWebKit`) end in none of ours, and the others in one or three.
            let candidates: &[usize] = match before.last() {
                Some(b'g') => &[0],
                Some(b'A') => &[1],
                Some(b'S') => &[2, 6, 7],
                Some(b'R') => &[3],
                Some(b'r') => &[4],
                Some(b'x') => &[5],
                Some(b'm') => &[8],
                Some(b'e') => &[9],
                Some(b'n') => &[10],
                Some(b'i') => &[11],
                _ => &[],
            };
            for &rank in candidates {
                if rank < best && before.ends_with(FAMILIES[rank].0) {
                    best = rank;
                }
            }
        });
        if let Some((_, family)) = FAMILIES.get(best) {
            return family;
        }
    }
    // Not a browser: the first product token's name.
    let end = user_agent
        .iter()
        .position(|&b| b == b'/' || b == b' ' || b == b'(')
        .unwrap_or(user_agent.len());
    std::str::from_utf8(&user_agent[..end.min(64)]).unwrap_or("")
}

/// Calls `each` with the position of every `/` in `bytes`, in order, eight bytes at a
/// time: a `User-Agent` holds a few of them in a hundred-odd bytes, and a search that
/// starts again after each one (`memchr_iter`) costs more than this one pass.
fn for_each_slash(bytes: &[u8], mut each: impl FnMut(usize)) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const SLASH: u64 = 0x2f2f_2f2f_2f2f_2f2f;
    let mut chunks = bytes.chunks_exact(8);
    let mut start = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word) ^ SLASH;
        // The high bit of each byte that was a `/` (now 0), and of no other: adding 0x7f
        // to the low seven bits sets it for any non-zero byte, without carries into the
        // next byte.
        let mut found = !(((word & LOW7) + LOW7) | word | LOW7);
        while found != 0 {
            each(start + found.trailing_zeros() as usize / 8);
            found &= found - 1;
        }
        start += 8;
    }
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if b == b'/' {
            each(start + i);
        }
    }
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
    fn slashes_are_found_wherever_they_are() {
        for text in [
            &b""[..],
            b"/",
            b"a/b",
            b"////////",
            b"/////////",
            b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/140.0 Safari/537.36",
            b"\x2f\xaf\x2e\x30\xff\x00/\x7f\x80",
        ] {
            let expected: Vec<usize> = (0..text.len()).filter(|&i| text[i] == b'/').collect();
            let mut found = Vec::new();
            for_each_slash(text, |i| found.push(i));
            assert_eq!(found, expected, "{text:?}");
        }
        let every_byte: Vec<u8> = (0..=255).collect();
        let mut found = Vec::new();
        for_each_slash(&every_byte, |i| found.push(i));
        assert_eq!(found, [0x2f]);
    }

    #[test]
    fn every_family_is_found_by_its_last_letter() {
        for (name, family) in [
            ("Edg", "Edge"),
            ("EdgA", "Edge"),
            ("EdgiOS", "Edge"),
            ("OPR", "Opera"),
            ("SamsungBrowser", "Samsung Internet"),
            ("Firefox", "Firefox"),
            ("FxiOS", "Firefox"),
            ("CriOS", "Chrome"),
            ("Chromium", "Chromium"),
            ("Chrome", "Chrome"),
            ("Version", "Safari"),
            ("Safari", "Safari"),
        ] {
            let ua = format!("Mozilla/5.0 (X11) {name}/1.0");
            assert_eq!(browser_family(ua.as_bytes()), family, "{name}");
        }
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
        let headless = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
        assert_eq!(browser_family(headless), "Chrome");
        let opera = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0";
        assert_eq!(browser_family(opera), "Opera");
        let samsung = b"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36";
        assert_eq!(browser_family(samsung), "Samsung Internet");
        assert_eq!(
            browser_family(b"Mozilla/5.0 (compatible; Googlebot/2.1)"),
            "Mozilla"
        );
    }
}
