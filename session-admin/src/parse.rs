//! The values operators type: times, networks, reasons, keys, durations. Each parser's
//! error is one line naming the option and what it takes.

use std::time::Duration;

use session_core::store::IpRange;
use session_core::{EventType, KeySet, RevocationReason, SessionId, SessionKind};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::error::Error;

/// A value as shown in an error: at most 60 characters, no control characters.
fn shown(text: &str) -> String {
    let mut s: String = text.chars().filter(|c| !c.is_control()).take(60).collect();
    if text.chars().count() > 60 {
        s.push('…');
    }
    s
}

/// A point in time, for `--created-before`:
///
/// - RFC 3339: `2026-12-01T08:00:00Z`, `2026-12-01T09:00:00+01:00`;
/// - a date, meaning its first instant in UTC: `2026-12-01`;
/// - `now`;
/// - a duration before `now`: `90s`, `30m`, `12h`, `7d`, `2w` (optionally followed by
///   ` ago`).
///
/// ```
/// use session_admin::parse::time;
/// use time::macros::datetime;
///
/// let now = datetime!(2026-12-07 12:00 UTC);
/// assert_eq!(time("2026-12-01", now).unwrap(), datetime!(2026-12-01 0:00 UTC));
/// assert_eq!(time("2026-12-01T09:00:00+01:00", now).unwrap(), datetime!(2026-12-01 8:00 UTC));
/// assert_eq!(time("36h", now).unwrap(), datetime!(2026-12-06 0:00 UTC));
/// assert_eq!(time("2d ago", now).unwrap(), datetime!(2026-12-05 12:00 UTC));
/// assert!(time("yesterday", now).is_err());
/// ```
///
/// # Errors
///
/// [`Error::Usage`] for anything else.
pub fn time(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, Error> {
    let t = text.trim();
    let bad = || {
        Error::Usage(format!(
            "--created-before {:?}: a time like 2026-12-01T08:00:00Z, a date like 2026-12-01, now, or a duration ago like 30m, 12h, 7d",
            shown(text)
        ))
    };
    if t == "now" {
        return Ok(now);
    }
    if let Ok(at) = OffsetDateTime::parse(t, &Rfc3339) {
        return Ok(at.to_offset(time::UtcOffset::UTC));
    }
    if let Ok(date) = Date::parse(t, format_description!("[year]-[month]-[day]")) {
        return Ok(date.midnight().assume_utc());
    }
    let ago = t.strip_suffix("ago").map_or(t, str::trim_end);
    let ago = duration(ago).ok_or_else(bad)?;
    let ago = time::Duration::try_from(ago).map_err(|_| bad())?;
    now.checked_sub(ago).ok_or_else(bad)
}

/// `90s`, `30m`, `12h`, `7d`, `2w`.
fn duration(text: &str) -> Option<Duration> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(unit_at);
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(secs)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
}

/// An IP address or CIDR network, for `--ip`: `203.0.113.7`, `203.0.113.0/24`,
/// `2001:db8::/32`.
///
/// # Errors
///
/// [`Error::Usage`] for anything else (`10.0.0.0/33`, a host name).
pub fn network(text: &str) -> Result<IpRange, Error> {
    text.trim().parse().map_err(|_| {
        Error::Usage(format!(
            "--ip {:?}: not an IP address or CIDR network (like 203.0.113.0/24 or 2001:db8::/32)",
            shown(text)
        ))
    })
}

/// A session id (a UUID).
///
/// # Errors
///
/// [`Error::Usage`] for anything else.
pub fn session_id(text: &str) -> Result<SessionId, Error> {
    text.trim().parse().map_err(|_| {
        Error::Usage(format!(
            "{:?}: not a session id (a UUID, as `sessions list` shows)",
            shown(text)
        ))
    })
}

/// A revocation reason for `--reason`: the contract's names (`admin_revoked`,
/// `risk_detected`, `account_deleted`, …) or a word of your own: letters, digits, `_`,
/// `-`, `.`, at most 64 characters.
///
/// # Errors
///
/// [`Error::Usage`] for an empty reason or other characters.
pub fn reason(text: &str) -> Result<RevocationReason, Error> {
    let t = text.trim();
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(RevocationReason::parse(t))
    } else {
        Err(Error::Usage(format!(
            "--reason {:?}: a word like admin_revoked or account_deleted (letters, digits, _ - .; at most 64)",
            shown(text)
        )))
    }
}

/// `user` or `agent`.
///
/// # Errors
///
/// [`Error::Usage`] for anything else.
pub fn kind(text: &str) -> Result<SessionKind, Error> {
    match text.trim() {
        "user" => Ok(SessionKind::User),
        "agent" => Ok(SessionKind::Agent),
        _ => Err(Error::Usage(format!(
            "--kind {:?}: user or agent",
            shown(text)
        ))),
    }
}

/// An event type: `session.created`, `session.revoked`, `session.expired`,
/// `session.suspicious` (or the part after `session.`).
///
/// # Errors
///
/// [`Error::Usage`] for anything else.
pub fn event_type(text: &str) -> Result<EventType, Error> {
    let t = text.trim();
    EventType::parse(t)
        .or_else(|| EventType::parse(&format!("session.{t}")))
        .ok_or_else(|| {
            Error::Usage(format!(
                "--type {:?}: session.created, session.revoked, session.expired or session.suspicious",
                shown(text)
            ))
        })
}

/// The deployment's keys, in the `SESSION_KEYS` format (comma-separated base64url, each at
/// least 32 bytes; the first signs).
///
/// # Errors
///
/// [`Error::Keys`], which never shows a key.
pub fn keys(text: &str) -> Result<KeySet, Error> {
    KeySet::from_base64_list(text).map_err(Error::Keys)
}

/// A number of seconds for `--timeout` (`5`, `0.5`), more than 0 and at most an hour.
///
/// # Errors
///
/// [`Error::Usage`] for anything else.
pub fn timeout(text: &str) -> Result<Duration, Error> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && *s <= 3600.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Error::Usage(format!(
                "--timeout {:?}: seconds, more than 0 and at most 3600",
                shown(text)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times() {
        let now = datetime!(2026-12-07 12:00 UTC);
        assert_eq!(time("now", now).unwrap(), now);
        assert_eq!(
            time("2026-12-07T10:00:00.5Z", now).unwrap(),
            datetime!(2026-12-07 10:00:00.5 UTC)
        );
        assert_eq!(
            time("90s", now).unwrap(),
            datetime!(2026-12-07 11:58:30 UTC)
        );
        assert_eq!(
            time("30m ago", now).unwrap(),
            datetime!(2026-12-07 11:30 UTC)
        );
        assert_eq!(time("1w", now).unwrap(), datetime!(2026-11-30 12:00 UTC));
        for bad in [
            "",
            "ago",
            "5",
            "5y",
            "-5m",
            "2026-13-01",
            "2026-12-01 08:00",
            "99999999999999999999d",
            "\u{1b}[31m",
        ] {
            let err = time(bad, now).unwrap_err().to_string();
            assert!(err.starts_with("--created-before"), "{err}");
            assert!(!err.contains('\u{1b}'), "{err:?}");
        }
    }

    #[test]
    fn networks_reasons_and_the_rest() {
        assert!(network("10.0.0.0/8").is_ok());
        assert!(network("2001:db8::1").is_ok());
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/", ""] {
            assert!(network(bad).unwrap_err().to_string().starts_with("--ip"));
        }
        assert_eq!(
            reason("admin_revoked").unwrap(),
            RevocationReason::AdminRevoked
        );
        assert_eq!(
            reason("offboarded").unwrap(),
            RevocationReason::Other("offboarded".into())
        );
        assert!(reason("two words").is_err());
        assert!(reason("").is_err());
        assert_eq!(event_type("revoked").unwrap(), EventType::Revoked);
        assert_eq!(event_type("session.created").unwrap(), EventType::Created);
        assert!(event_type("session.other").is_err());
        assert_eq!(kind("agent").unwrap(), SessionKind::Agent);
        assert!(kind("bot").is_err());
        assert_eq!(timeout("0.5").unwrap(), Duration::from_millis(500));
        assert!(timeout("0").is_err() && timeout("x").is_err() && timeout("1e9").is_err());
        let secret = "c2hvcnQ";
        let err = keys(secret).unwrap_err().to_string();
        assert!(
            err.starts_with("SESSION_KEYS") && !err.contains(secret),
            "{err}"
        );
        assert!(session_id("not-a-uuid").is_err());
    }
}
