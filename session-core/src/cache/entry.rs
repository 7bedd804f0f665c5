//! What the cache keeps per session id: a compact [`CachedSession`] entry, or a tombstone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::error::StoreError;
use crate::model::{Principal, SessionId, SessionRecord};
use crate::token::{VerifiedToken, ct_eq32};

/// Unix seconds of 2020-01-01: activity times are kept as `u32` seconds since then
/// (good until 2156), which keeps an entry within one 160-byte allocation.
const ACTIVITY_EPOCH: i64 = 1_577_836_800;

fn to_activity(unix_s: i64) -> u32 {
    u32::try_from(unix_s.saturating_sub(ACTIVITY_EPOCH).max(0)).unwrap_or(u32::MAX)
}

fn from_activity(s: u32) -> i64 {
    ACTIVITY_EPOCH + i64::from(s)
}

/// A live session as this node knows it: what the request path needs, nothing more.
#[derive(Debug)]
pub(crate) struct CachedSession {
    pub(crate) id: SessionId,
    pub(crate) principal: Principal,
    /// How the token is recognised: by default the MAC of the token whose secret matched
    /// the store's hash (equal MACs under our keys mean equal id and secret, so comparing
    /// MACs spares hashing the secret); when `proof_is_hash`, the store's hash of the
    /// secret, for an entry whose loading request did not carry the matching secret (only
    /// possible with a leaked key), so every request hashes.
    proof: [u8; 32],
    proof_is_hash: bool,
    /// Whether this node already reported the session's expiry.
    expiry_reported: AtomicBool,
    /// The session's absolute expiry, in Unix nanoseconds.
    pub(crate) expires_at_nanos: i64,
    /// The entry is trusted until then (manager clock, Unix nanoseconds).
    pub(super) fresh_until: i64,
    /// The latest request this node saw for the session (see [`ACTIVITY_EPOCH`]).
    last_seen: AtomicU32,
    /// The latest `last_active_at` this node wrote or loaded (see [`ACTIVITY_EPOCH`]).
    last_written: AtomicU32,
    /// What the session is bound to (risk binding: its sign-in network and browser
    /// family, or the last ones reported), 0 for nothing.
    binding: AtomicU32,
}

impl CachedSession {
    /// The cached form of `record`, which `tag` (if any) is known to prove.
    pub(super) fn new(
        record: SessionRecord,
        tag: Option<[u8; 32]>,
        fresh_until: i64,
        binding: u32,
    ) -> Self {
        let last = to_activity(record.last_active_at.unix_timestamp());
        Self {
            binding: AtomicU32::new(binding),
            id: record.id,
            proof: tag.unwrap_or(record.secret_hash),
            proof_is_hash: tag.is_none(),
            expiry_reported: AtomicBool::new(false),
            expires_at_nanos: nanos(record.expires_at),
            principal: record.principal,
            fresh_until,
            last_seen: AtomicU32::new(last),
            last_written: AtomicU32::new(last),
        }
    }

    /// Takes over the activity `older` (a stale entry of the same session) recorded.
    pub(super) fn inherit(&self, older: &Self) {
        self.last_seen
            .fetch_max(older.last_seen.load(Ordering::Relaxed), Ordering::Relaxed);
        self.last_written.fetch_max(
            older.last_written.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        if older.expiry_reported.load(Ordering::Relaxed) {
            self.expiry_reported.store(true, Ordering::Relaxed);
        }
        let rebound = older.binding.load(Ordering::Relaxed);
        if rebound != 0 {
            self.binding.store(rebound, Ordering::Relaxed);
        }
    }

    /// What the session is bound to (0: nothing).
    pub(crate) fn binding(&self) -> u32 {
        self.binding.load(Ordering::Relaxed)
    }

    /// Binds the session to `seen` instead of `bound`; false when another request of the
    /// session rebound it first (so each change is reported once per node).
    pub(crate) fn rebind(&self, bound: u32, seen: u32) -> bool {
        self.binding
            .compare_exchange(bound, seen, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Whether `token` is this session's token (constant time).
    pub(crate) fn proven_by(&self, token: &VerifiedToken) -> bool {
        if self.proof_is_hash {
            token.matches(&self.proof)
        } else {
            ct_eq32(&self.proof, token.tag()).into()
        }
    }

    /// Unix seconds of the latest request this node saw.
    pub(crate) fn last_seen(&self) -> i64 {
        from_activity(self.last_seen.load(Ordering::Relaxed))
    }

    /// Records a request at `unix_s`.
    pub(crate) fn record_activity(&self, unix_s: i64) {
        self.last_seen
            .fetch_max(to_activity(unix_s), Ordering::Relaxed);
    }

    /// Unix seconds of the latest activity written to (or loaded from) the store.
    pub(crate) fn last_written(&self) -> i64 {
        from_activity(self.last_written.load(Ordering::Relaxed))
    }

    /// Claims the write of activity at `unix_s`, if the latest written is still
    /// `written`: false when another request of the session got there first.
    pub(crate) fn claim_write(&self, written: i64, unix_s: i64) -> bool {
        self.last_written
            .compare_exchange(
                to_activity(written),
                to_activity(unix_s),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// True the first time only: whether this call should report the expiry.
    pub(crate) fn first_expiry_report(&self) -> bool {
        !self.expiry_reported.swap(true, Ordering::Relaxed)
    }
}

fn nanos(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

pub(super) fn duration_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// What the cache remembers of one session id.
#[derive(Clone, Debug)]
pub(crate) enum Cached {
    /// Valid when loaded (expiry is checked on every use).
    Valid(Arc<CachedSession>),
    /// Revoked: terminal, kept until then (Unix nanoseconds).
    Revoked { until: i64 },
    /// Not in the store (purged, or never stored); trusted until then.
    Unknown { until: i64 },
}

/// The answer of one store load, shared by every caller waiting on it.
pub(super) type LoadResult = Result<Cached, Arc<StoreError>>;

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry and its `Arc` header fit one 160-byte allocator chunk (glibc adds 8 bytes
    /// and rounds to 16): the 1 M-session memory target depends on it.
    #[test]
    fn an_entry_fits_in_160_bytes() {
        assert!(
            size_of::<CachedSession>() + 16 + 8 <= 160,
            "CachedSession is {} bytes",
            size_of::<CachedSession>()
        );
    }

    #[test]
    fn activity_seconds_round_trip_and_saturate() {
        let now = 1_800_000_000;
        assert_eq!(from_activity(to_activity(now)), now);
        assert_eq!(from_activity(to_activity(0)), ACTIVITY_EPOCH);
        assert_eq!(to_activity(i64::MAX), u32::MAX);
    }
}
