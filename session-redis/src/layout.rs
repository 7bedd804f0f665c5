//! Where things live: the shards, the key names under the prefix, how a user and a session
//! id find their shard, and the event ids built from stream ids.

use std::fmt;

use session_core::StoreError;
use session_core::model::{SessionId, UserId};
use time::OffsetDateTime;

/// The key prefix when none is set.
pub const DEFAULT_PREFIX: &str = "session:";

/// The number of shards when none is set.
pub const DEFAULT_SHARDS: u16 = 16;

/// The most shards a deployment can have: a shard number lives in the last byte of a
/// session id.
pub const MAX_SHARDS: u16 = 256;

/// A shard's number, `0..shards`.
pub(crate) type Shard = u16;

/// The deployment's key layout: its prefix and its number of shards.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    prefix: String,
    shards: u16,
    /// `{prefix}`: the hash tag of the keys that belong to no shard.
    global: String,
}

impl fmt::Debug for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layout")
            .field("prefix", &self.prefix)
            .field("shards", &self.shards)
            .finish()
    }
}

impl Layout {
    /// A layout; `shards` must be a power of two up to [`MAX_SHARDS`] and `prefix` free of
    /// braces (checked by the builder).
    pub(crate) fn new(prefix: &str, shards: u16) -> Self {
        debug_assert!(valid_shards(shards) && valid_prefix(prefix));
        Self {
            prefix: prefix.to_owned(),
            shards,
            global: format!("{{{prefix}}}"),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn shards(&self) -> u16 {
        self.shards
    }

    /// Every shard.
    pub(crate) fn all(&self) -> impl Iterator<Item = Shard> + use<> {
        0..self.shards
    }

    /// The user's shard: CRC16 of the user id's bytes, modulo the number of shards.
    pub(crate) fn shard_of_user(&self, user: &UserId) -> Shard {
        crc16(user.as_str().as_bytes()) % self.shards
    }

    /// The shard a session id names (the low bits of its last byte).
    pub(crate) fn shard_of_id(&self, id: SessionId) -> Shard {
        u16::from(id.as_bytes()[15]) & (self.shards - 1)
    }

    /// A random session id placed in `shard`.
    pub(crate) fn session_id_in(&self, shard: Shard) -> SessionId {
        let mut bytes = *SessionId::random().as_bytes();
        // `shards` is a power of two up to 256: the mask fits the byte.
        let mask = u8::try_from(self.shards - 1).expect("at most 256 shards");
        let shard = u8::try_from(shard).expect("shard below 256");
        bytes[15] = (bytes[15] & !mask) | shard;
        SessionId::from_bytes(bytes)
    }

    /// The hash tag of a shard's keys: `{prefix}N` in braces, e.g. `{session:7}`.
    pub(crate) fn tag(&self, shard: Shard) -> String {
        format!("{{{}{shard}}}", self.prefix)
    }

    /// The keys of one shard.
    pub(crate) fn shard(&self, shard: Shard) -> ShardKeys {
        ShardKeys {
            shard,
            tag: self.tag(shard),
        }
    }

    /// `{prefix}meta`: the layout, checked by every node at start.
    pub(crate) fn meta(&self) -> String {
        format!("{}meta", self.global)
    }

    /// `{prefix}once:KEY`: a `first_use` mark.
    pub(crate) fn once(&self, key: &str) -> String {
        format!("{}once:{key}", self.global)
    }

    /// `{prefix}lease:NAME`.
    pub(crate) fn lease(&self, name: &str) -> String {
        format!("{}lease:{name}", self.global)
    }

    /// `{prefix}cursor:NAME`.
    pub(crate) fn cursor(&self, name: &str) -> String {
        format!("{}cursor:{name}", self.global)
    }

    /// `{prefix}revocations`: the pub/sub channel.
    pub(crate) fn channel(&self) -> String {
        format!("{}revocations", self.global)
    }

    /// What the meta key holds for this layout.
    pub(crate) fn meta_value(&self) -> String {
        format!("layout=2 shards={}", self.shards)
    }
}

/// Whether `shards` is a valid number of shards: a power of two, 1 to 256.
pub(crate) fn valid_shards(shards: u16) -> bool {
    shards.is_power_of_two() && shards <= MAX_SHARDS
}

/// Whether `prefix` can start a hash tag: no braces.
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    !prefix.contains(['{', '}'])
}

/// The keys of one shard: all under its hash tag, so that a script may touch any of them.
#[derive(Clone, Debug)]
pub(crate) struct ShardKeys {
    pub(crate) shard: Shard,
    /// `{prefix}N`, braces included.
    pub(crate) tag: String,
}

impl ShardKeys {
    /// The shard number as the three digits event ids carry.
    pub(crate) fn number(&self) -> String {
        format!("{:03}", self.shard)
    }

    /// `TAG:s:ID`: a session's record (a hash).
    pub(crate) fn record(&self, id: SessionId) -> String {
        format!("{}:s:{id}", self.tag)
    }

    /// `TAG:u:USER`: the user's unrevoked sessions (a sorted set by creation time).
    pub(crate) fn user_index(&self, user: &UserId) -> String {
        format!("{}:u:{user}", self.tag)
    }

    /// `TAG:m:USER`: the user's epoch and disabled mark (a hash).
    pub(crate) fn user_meta(&self, user: &UserId) -> String {
        format!("{}:m:{user}", self.tag)
    }

    /// `TAG:a:USER`: the user's event ids (a sorted set, by id).
    pub(crate) fn audit(&self, user: &UserId) -> String {
        format!("{}:a:{user}", self.tag)
    }

    /// `TAG:act`: the shard's unrevoked sessions (a sorted set by expiry).
    pub(crate) fn active(&self) -> String {
        format!("{}:act", self.tag)
    }

    /// `TAG:end`: the shard's revoked sessions (a sorted set by end of life).
    pub(crate) fn ended(&self) -> String {
        format!("{}:end", self.tag)
    }

    /// `TAG:log`: the shard's event stream.
    pub(crate) fn log(&self) -> String {
        format!("{}:log", self.tag)
    }

    /// `TAG:users`: the users with an audit index in the shard (a set, for the purge).
    pub(crate) fn users(&self) -> String {
        format!("{}:users", self.tag)
    }
}

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the function Redis Cluster
/// hashes keys to slots with. Fixed forever: a user's shard must not move.
pub(crate) fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A position in one shard's stream (a stream id `ms-seq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct StreamId {
    pub(crate) ms: u64,
    pub(crate) seq: u64,
}

impl StreamId {
    pub(crate) const ZERO: Self = Self { ms: 0, seq: 0 };

    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-')?;
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Digits of each part of an event id.
const MS_DIGITS: usize = 15;
const SHARD_DIGITS: usize = 3;
const SEQ_DIGITS: usize = 10;
/// The length of an event id: `MS-SHARD-SEQ`.
const EVENT_ID_LEN: usize = MS_DIGITS + 1 + SHARD_DIGITS + 1 + SEQ_DIGITS;

/// An event's place in the log: its stream's time, its shard, its stream sequence number.
/// As text, `{ms:015}-{shard:03}-{seq:010}`, which sorts as a string as the triple sorts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EventPos {
    pub(crate) ms: u64,
    pub(crate) shard: Shard,
    pub(crate) seq: u64,
}

impl EventPos {
    pub(crate) fn new(shard: Shard, id: StreamId) -> Self {
        Self {
            ms: id.ms,
            shard,
            seq: id.seq,
        }
    }

    pub(crate) fn stream_id(self) -> StreamId {
        StreamId {
            ms: self.ms,
            seq: self.seq,
        }
    }

    /// The id's text.
    pub(crate) fn text(self) -> String {
        format!("{:015}-{:03}-{:010}", self.ms, self.shard, self.seq)
    }

    /// Parses an id this store made.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        if text.len() != EVENT_ID_LEN || template_mismatch(text.as_bytes()).is_some() {
            return None;
        }
        Some(Self {
            ms: text[..MS_DIGITS].parse().ok()?,
            shard: text[MS_DIGITS + 1..MS_DIGITS + 1 + SHARD_DIGITS]
                .parse()
                .ok()?,
            seq: text[EVENT_ID_LEN - SEQ_DIGITS..].parse().ok()?,
        })
    }

    /// The first position of `shard`'s stream at or after this one, in log order.
    pub(crate) fn start_in(self, shard: Shard) -> StreamId {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match shard.cmp(&self.shard) {
            Greater => StreamId {
                ms: self.ms,
                seq: 0,
            },
            Equal => self.stream_id(),
            Less => StreamId {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }

    /// The first event id strictly after `text` (any string): where a page after that
    /// cursor starts. `None` when no id comes after it.
    pub(crate) fn first_after(text: &str) -> Option<Self> {
        let mut id = Vec::with_capacity(EVENT_ID_LEN);
        let bytes = text.as_bytes();
        match template_mismatch(&bytes[..bytes.len().min(EVENT_ID_LEN)]) {
            None if bytes.len() < EVENT_ID_LEN => {
                // A proper prefix of ids: the smallest id that extends it.
                id.extend_from_slice(bytes);
                fill_min(&mut id);
            }
            None => {
                // An id, perhaps followed by more: the next id after it.
                id.extend_from_slice(&bytes[..EVENT_ID_LEN]);
                increment(&mut id)?;
            }
            Some(at) => {
                id.extend_from_slice(&bytes[..at]);
                let c = bytes[at];
                let slot = template(at);
                if c < slot.min() {
                    id.push(slot.min());
                } else {
                    // No character of this slot is above `c`: move the prefix on.
                    increment(&mut id)?;
                    id.push(slot.min());
                }
                fill_min(&mut id);
            }
        }
        Self::parse(std::str::from_utf8(&id).ok()?)
    }
}

/// What each character of an event id may be.
#[derive(Clone, Copy)]
enum Slot {
    Digit,
    Dash,
}

impl Slot {
    fn min(self) -> u8 {
        match self {
            Self::Digit => b'0',
            Self::Dash => b'-',
        }
    }

    fn fits(self, c: u8) -> bool {
        match self {
            Self::Digit => c.is_ascii_digit(),
            Self::Dash => c == b'-',
        }
    }
}

fn template(i: usize) -> Slot {
    if i == MS_DIGITS || i == MS_DIGITS + 1 + SHARD_DIGITS {
        Slot::Dash
    } else {
        Slot::Digit
    }
}

/// The first position where `bytes` leaves the id template.
fn template_mismatch(bytes: &[u8]) -> Option<usize> {
    bytes
        .iter()
        .enumerate()
        .position(|(i, &c)| !template(i).fits(c))
}

fn fill_min(id: &mut Vec<u8>) {
    while id.len() < EVENT_ID_LEN {
        id.push(template(id.len()).min());
    }
}

/// The next string of the template's prefix `id` (digits carry, dashes stay); `None` when
/// it is all nines.
fn increment(id: &mut [u8]) -> Option<()> {
    for c in id.iter_mut().rev() {
        match *c {
            b'-' => {}
            b'9' => *c = b'0',
            d => {
                *c = d + 1;
                return Some(());
            }
        }
    }
    None
}

/// Unix microseconds, rounded down: the precision of every comparison the scripts make.
pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    clamp(t.unix_timestamp_nanos().div_euclid(1_000))
}

/// Unix milliseconds, rounded up (for deadlines).
pub(crate) fn millis_ceil(t: OffsetDateTime) -> i64 {
    clamp((t.unix_timestamp_nanos() + 999_999).div_euclid(1_000_000))
}

/// Unix milliseconds, rounded down.
pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    clamp(t.unix_timestamp_nanos().div_euclid(1_000_000))
}

/// Unix nanoseconds as text: how times are kept, exactly.
pub(crate) fn nanos(t: OffsetDateTime) -> String {
    t.unix_timestamp_nanos().to_string()
}

/// A time kept by [`nanos`].
pub(crate) fn from_nanos(text: &str) -> Result<OffsetDateTime, StoreError> {
    text.parse::<i128>()
        .ok()
        .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("not a time: {text:?}")))
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_is_redis_clusters() {
        // The check value of CRC16/XMODEM, and the example of the Redis Cluster spec.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn users_keep_their_shard_forever() {
        // Pinned: a change here moves users to other shards and loses their sessions.
        let layout = Layout::new("session:", 16);
        let got: Vec<Shard> = ["alice", "bob", "carol", "ünï", ""]
            .iter()
            .map(|u| layout.shard_of_user(&UserId::from(*u)))
            .collect();
        let expected: Vec<Shard> = ["alice", "bob", "carol", "ünï", ""]
            .iter()
            .map(|u| crc16(u.as_bytes()) % 16)
            .collect();
        assert_eq!(got, expected);
        assert_eq!(got, [13, 11, 14, 1, 0]);
    }

    #[test]
    fn users_spread_evenly() {
        for shards in [16u16, 256] {
            let layout = Layout::new("p:", shards);
            let mut counts = vec![0u32; usize::from(shards)];
            let n = 200 * u32::from(shards);
            for i in 0..n {
                counts[usize::from(layout.shard_of_user(&UserId::from(format!("user-{i}"))))] += 1;
            }
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(*lo > 140 && *hi < 260, "{shards} shards: {lo}..{hi}");
        }
    }

    #[test]
    fn ids_carry_their_shard_in_the_last_byte() {
        for shards in [1u16, 2, 16, 256] {
            let layout = Layout::new("p:", shards);
            for shard in layout.all() {
                for _ in 0..20 {
                    let id = layout.session_id_in(shard);
                    assert_eq!(layout.shard_of_id(id), shard);
                    assert_eq!(id.as_uuid().get_version_num(), 4, "still a v4 UUID");
                }
            }
        }
        // The first byte (the cache's stripe) stays random.
        let layout = Layout::new("p:", 16);
        let firsts: std::collections::HashSet<u8> = (0..200)
            .map(|_| layout.session_id_in(3).as_bytes()[0])
            .collect();
        assert!(firsts.len() > 50);
    }

    #[test]
    fn keys_share_their_shards_tag() {
        let layout = Layout::new("app:", 16);
        let keys = layout.shard(7);
        let id: SessionId = "67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap();
        let user = UserId::from("alice");
        assert_eq!(
            keys.record(id),
            "{app:7}:s:67e55044-10b1-426f-9247-bb680e5fe0c8"
        );
        assert_eq!(keys.user_index(&user), "{app:7}:u:alice");
        assert_eq!(keys.user_meta(&user), "{app:7}:m:alice");
        assert_eq!(keys.audit(&user), "{app:7}:a:alice");
        assert_eq!(keys.log(), "{app:7}:log");
        assert_eq!(keys.active(), "{app:7}:act");
        assert_eq!(keys.ended(), "{app:7}:end");
        assert_eq!(keys.users(), "{app:7}:users");
        assert_eq!(layout.meta(), "{app:}meta");
        assert_eq!(layout.channel(), "{app:}revocations");
        assert!(!valid_prefix("a{b"));
        assert!(valid_shards(1) && valid_shards(256) && !valid_shards(12) && !valid_shards(512));
    }

    #[test]
    fn event_ids_sort_as_their_positions() {
        let a = EventPos::new(
            3,
            StreamId {
                ms: 1_700_000_000_123,
                seq: 7,
            },
        );
        assert_eq!(a.text(), "001700000000123-003-0000000007");
        assert_eq!(EventPos::parse(&a.text()), Some(a));
        let mut positions = [
            EventPos::new(0, StreamId { ms: 5, seq: 9 }),
            EventPos::new(1, StreamId { ms: 5, seq: 0 }),
            EventPos::new(0, StreamId { ms: 6, seq: 0 }),
            EventPos::new(255, StreamId { ms: 4, seq: 12_345 }),
            EventPos::new(0, StreamId { ms: 5, seq: 10 }),
        ];
        let mut texts: Vec<String> = positions.iter().map(|p| p.text()).collect();
        positions.sort();
        texts.sort();
        assert_eq!(
            texts,
            positions.iter().map(|p| p.text()).collect::<Vec<_>>()
        );
        for bad in [
            "",
            "1-2-3",
            "001700000000123-003-000000000x",
            "001700000000123_003-0000000007",
        ] {
            assert_eq!(EventPos::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_cursor_starts_each_shard_just_after_it() {
        let p = EventPos::new(5, StreamId { ms: 100, seq: 3 });
        // The successor of an id is the same position, one sequence number on.
        let next = EventPos::first_after(&p.text()).unwrap();
        assert_eq!(next, EventPos::new(5, StreamId { ms: 100, seq: 4 }));
        assert_eq!(next.start_in(5), StreamId { ms: 100, seq: 4 });
        assert_eq!(next.start_in(6), StreamId { ms: 100, seq: 0 });
        assert_eq!(next.start_in(4), StreamId { ms: 101, seq: 0 });
    }

    #[test]
    fn any_string_is_a_cursor() {
        // Whatever `after` is, the first id after it is the smallest id greater than it.
        let first = |s: &str| EventPos::first_after(s).map(EventPos::text);
        assert_eq!(first("").as_deref(), Some("000000000000000-000-0000000000"));
        assert_eq!(
            first("0").as_deref(),
            Some("000000000000000-000-0000000000")
        );
        assert_eq!(
            first("00000000000000042").as_deref(),
            Some("000000000000001-000-0000000000")
        );
        assert_eq!(
            first("1").as_deref(),
            Some("100000000000000-000-0000000000")
        );
        assert_eq!(
            first(" ").as_deref(),
            Some("000000000000000-000-0000000000")
        );
        assert_eq!(first("a"), None);
        assert_eq!(first("999999999999999-999-9999999999"), None);
        assert_eq!(
            first("000000000000005-003-0000000007zz").as_deref(),
            Some("000000000000005-003-0000000008")
        );
        assert_eq!(
            first("000000000000005-003-00000000a").as_deref(),
            Some("000000000000005-003-0000000100")
        );
        assert_eq!(
            first("000000000000005.").as_deref(),
            Some("000000000000006-000-0000000000")
        );
        assert_eq!(
            first("000000000000005,").as_deref(),
            Some("000000000000005-000-0000000000")
        );
        // Whatever the cursor, the id found is above it.
        for s in [
            "000000000000000-000-000000000",
            "0000000000000009",
            "000000000000000-00/",
        ] {
            let next = first(s).unwrap();
            assert!(next.as_str() > s, "{s:?} -> {next}");
        }
    }

    #[test]
    fn times_keep_their_nanoseconds() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(from_nanos(&nanos(t)).unwrap(), t);
        assert_eq!(micros(t), 1_700_000_000_123_456);
        assert_eq!(millis(t), 1_700_000_000_123);
        assert_eq!(millis_ceil(t), 1_700_000_000_124);
        assert!(from_nanos("x").is_err());
    }
}
