//! Where things live in Redis (key names under the prefix), and how times are written.

use session_core::StoreError;
use session_core::model::{SessionId, UserId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The key prefix when none is set.
pub const DEFAULT_PREFIX: &str = "session:";

/// Key names under one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
    record_prefix: String,
    index_prefix: String,
    channel: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            record_prefix: format!("{prefix}s:"),
            index_prefix: format!("{prefix}u:"),
            channel: format!("{prefix}revocations"),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}s:`: what a session id is appended to for its record (a hash).
    pub(crate) fn record_prefix(&self) -> &str {
        &self.record_prefix
    }

    /// `{prefix}u:`: what a user id is appended to for the user's index (a sorted set).
    pub(crate) fn index_prefix(&self) -> &str {
        &self.index_prefix
    }

    /// `{prefix}s:{id}`.
    pub(crate) fn record(&self, id: SessionId) -> String {
        format!("{}{id}", self.record_prefix)
    }

    /// `{prefix}u:{user}`.
    pub(crate) fn index(&self, user: &UserId) -> String {
        format!("{}{user}", self.index_prefix)
    }

    /// `{prefix}e:{user}`: the user's revocation epoch (an integer).
    pub(crate) fn epoch(&self, user: &UserId) -> String {
        format!("{}e:{user}", self.prefix)
    }

    /// `{prefix}revocations`: the pub/sub channel.
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// A `SCAN MATCH` pattern for every user index.
    pub(crate) fn index_pattern(&self) -> String {
        format!("{}*", glob_escape(&self.index_prefix))
    }
}

/// Escapes the characters that `SCAN MATCH` (glob-style) treats specially.
pub(crate) fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Unix microseconds, rounded down (for "now").
pub(crate) fn micros_floor(t: OffsetDateTime) -> i64 {
    clamp(t.unix_timestamp_nanos().div_euclid(1_000))
}

/// Unix microseconds, rounded up (for deadlines: a session is never cut short).
pub(crate) fn micros_ceil(t: OffsetDateTime) -> i64 {
    clamp((t.unix_timestamp_nanos() + 999).div_euclid(1_000))
}

/// Unix milliseconds, rounded up (for `PEXPIREAT`).
pub(crate) fn millis_ceil(t: OffsetDateTime) -> i64 {
    clamp((t.unix_timestamp_nanos() + 999_999).div_euclid(1_000_000))
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// The RFC 3339 text the record's JSON uses for a time.
pub(crate) fn rfc3339(t: OffsetDateTime) -> Result<String, StoreError> {
    t.format(&Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("time {t} has no RFC 3339 form: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sit_under_the_prefix() {
        let keys = Keys::new("app:");
        let id: SessionId = "67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap();
        let user = UserId::from("alice");
        assert_eq!(
            keys.record(id),
            "app:s:67e55044-10b1-426f-9247-bb680e5fe0c8"
        );
        assert_eq!(keys.index(&user), "app:u:alice");
        assert_eq!(keys.epoch(&user), "app:e:alice");
        assert_eq!(keys.channel(), "app:revocations");
        assert_eq!(Keys::new("a*[b]:").index_pattern(), r"a\*\[b\]:u:*");
    }

    #[test]
    fn deadlines_round_up_and_now_rounds_down() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(micros_floor(t), 1_700_000_000_123_456);
        assert_eq!(micros_ceil(t), 1_700_000_000_123_457);
        assert_eq!(millis_ceil(t), 1_700_000_000_124);
        let whole = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(micros_ceil(whole), micros_floor(whole));
        assert_eq!(millis_ceil(whole), 1_700_000_000_000);
    }
}
