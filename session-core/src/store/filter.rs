//! [`SessionFilter`]: which sessions an incident-wide revocation takes, in a form every
//! store can evaluate in place (SQL, Lua) without loading records into the process.

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use time::OffsetDateTime;

use crate::model::{SessionKind, SessionRecord};

/// An IP address or a CIDR network, as an inclusive range of [`ip_key`]s.
///
/// ```
/// use session_core::store::{IpRange, ip_key};
///
/// let net: IpRange = "203.0.113.0/24".parse().unwrap();
/// assert!(net.contains_key(&ip_key("203.0.113.7").unwrap()));
/// assert!(!net.contains_key(&ip_key("203.0.114.1").unwrap()));
/// assert!("2001:db8::/32".parse::<IpRange>().unwrap().contains_key(&ip_key("2001:db8::1").unwrap()));
/// assert!("10.0.0.0/33".parse::<IpRange>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    lo: u128,
    hi: u128,
}

/// An address as 16 bytes: IPv4 as IPv4-mapped IPv6, so one range form serves both.
fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The key a store keeps beside a session's IP so that a network is a range of keys: 32
/// lowercase hex digits of the address as IPv6 (IPv4 mapped). `None` for text that is not
/// an IP address.
#[must_use]
pub fn ip_key(ip: &str) -> Option<String> {
    ip.parse::<IpAddr>()
        .ok()
        .map(|ip| format!("{:032x}", bits(ip)))
}

impl IpRange {
    /// The lowest key in the range.
    #[must_use]
    pub fn lo_key(&self) -> String {
        format!("{:032x}", self.lo)
    }

    /// The highest key in the range.
    #[must_use]
    pub fn hi_key(&self) -> String {
        format!("{:032x}", self.hi)
    }

    /// Whether `key` (an [`ip_key`]) is in the range.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        u128::from_str_radix(key, 16).is_ok_and(|k| self.lo <= k && k <= self.hi)
    }

    /// Whether the IP address `ip` is in the range.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let k = bits(ip);
        self.lo <= k && k <= self.hi
    }
}

/// Not an IP address or CIDR network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR network")]
pub struct BadNetwork;

impl FromStr for IpRange {
    type Err = BadNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr.trim().parse().map_err(|_| BadNetwork)?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u32 = match len {
            None => max,
            Some(l) => l.trim().parse().map_err(|_| BadNetwork)?,
        };
        if len > max {
            return Err(BadNetwork);
        }
        let len = len + (128 - max);
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        let lo = bits(ip) & mask;
        Ok(Self { lo, hi: lo | !mask })
    }
}

impl From<IpAddr> for IpRange {
    fn from(ip: IpAddr) -> Self {
        let k = bits(ip);
        Self { lo: k, hi: k }
    }
}

impl From<Ipv6Addr> for IpRange {
    fn from(ip: Ipv6Addr) -> Self {
        IpAddr::V6(ip).into()
    }
}

/// Which active sessions, across all users, an incident-wide revocation takes: those that
/// match every field given. A filter with no field matches nothing (stores refuse it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Issued strictly before.
    pub created_before: Option<OffsetDateTime>,
    /// Issued to a client in this network.
    pub ip: Option<IpRange>,
    /// Whose `User-Agent` contains this text (byte for byte).
    pub user_agent: Option<String>,
    /// User or agent sessions.
    pub kind: Option<SessionKind>,
    /// Signed in through this identity provider (issuer).
    pub idp_issuer: Option<String>,
    /// … and this provider session (`sid`).
    pub idp_sid: Option<String>,
}

impl SessionFilter {
    /// Whether no field is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Whether `record` matches (revoked or expired records too: the store checks that).
    /// The reference the stores' in-place forms are tested against.
    #[must_use]
    pub fn matches(&self, record: &SessionRecord) -> bool {
        if self.is_empty() {
            return false;
        }
        let ip_ok = self.ip.is_none_or(|net| {
            record
                .ip
                .as_deref()
                .and_then(ip_key)
                .is_some_and(|k| net.contains_key(&k))
        });
        let ua_ok = self.user_agent.as_deref().is_none_or(|needle| {
            record
                .user_agent
                .as_deref()
                .is_some_and(|ua| ua.contains(needle))
        });
        let idp = record.idp.as_ref();
        self.created_before.is_none_or(|t| record.created_at < t)
            && ip_ok
            && ua_ok
            && self.kind.is_none_or(|k| record.kind() == k)
            && self
                .idp_issuer
                .as_ref()
                .is_none_or(|i| idp.is_some_and(|l| &l.issuer == i))
            && self
                .idp_sid
                .as_ref()
                .is_none_or(|s| idp.is_some_and(|l| l.sid.as_ref() == Some(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_their_networks() {
        let v4: IpRange = "10.1.2.3/16".parse().unwrap();
        assert_eq!(v4.lo_key(), ip_key("10.1.0.0").unwrap());
        assert_eq!(v4.hi_key(), ip_key("10.1.255.255").unwrap());
        let one: IpRange = "192.0.2.1".parse().unwrap();
        assert!(one.contains("192.0.2.1".parse().unwrap()));
        assert!(!one.contains("192.0.2.2".parse().unwrap()));
        let all: IpRange = "::/0".parse().unwrap();
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        let v6: IpRange = "2001:db8:abcd::/48".parse().unwrap();
        assert!(v6.contains("2001:db8:abcd:1::9".parse().unwrap()));
        assert!(!v6.contains("2001:db8:abce::1".parse().unwrap()));
        for bad in ["", "10.0.0.0/", "10.0.0.0/x", "::/129", "host/8"] {
            assert_eq!(bad.parse::<IpRange>(), Err(BadNetwork), "{bad:?}");
        }
        // Keys sort like addresses, so a range is a string range too.
        assert!(ip_key("10.0.0.9").unwrap() < ip_key("10.0.0.10").unwrap());
        assert_eq!(ip_key("not an ip"), None);
    }
}
