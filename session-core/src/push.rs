//! The push channel's messages: what a revocation notice between nodes looks like, how it
//! is signed, and how a receiver tells a lost message from a forged one.
//!
//! A notice is `MAC.JSON`, where JSON is
//!
//! ```json
//! {"v":2,"p":"0b6c…","s":42,"t":1765090000123,"ids":["67e55044-10b1-426f-9247-bb680e5fe0c8"]}
//! ```
//!
//! and MAC the base64url HMAC-SHA256 of the JSON under a key derived from the deployment's
//! session keys (label `push`), so only a holder of the keys can make one: someone who can
//! `PUBLISH` to Redis or `NOTIFY` on PostgreSQL cannot make a node drop or distrust
//! anything. A notice that fails the MAC, or does not parse, is ignored and counted.
//!
//! `p` is random per manager and `s` counts its notices from 1, both under the MAC; a
//! receiver that sees a publisher's `s` skip knows it missed a notice and drops its whole
//! cache of "valid" answers (a resync). `t` is the publisher's clock (Unix milliseconds),
//! for the propagation-lag metric. `all: true` asks every node to resync (a revocation too
//! large to list).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::SessionId;
use crate::token::KeySet;

const VERSION: u8 = 2;
const LABEL: &[u8] = b"push";
/// Publishers remembered at most; past this the table is cleared and the node resyncs.
const MAX_PUBLISHERS: usize = 4096;

#[derive(Debug, Serialize, Deserialize)]
struct Body {
    v: u8,
    p: Uuid,
    s: u64,
    t: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ids: Vec<SessionId>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    all: bool,
}

/// What a verified notice asks of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Sessions to forget (revoked elsewhere).
    pub ids: Vec<SessionId>,
    /// Forget every cached "valid" answer: a notice was missed, or a revocation was too
    /// large to list.
    pub resync: bool,
    /// When the publisher sent it (its clock, Unix milliseconds).
    pub sent_at_ms: i64,
}

/// Why a notice was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ignored {
    /// Not `MAC.JSON`, or the JSON is not a notice.
    #[error("malformed push message")]
    Malformed,
    /// The MAC does not verify under any of the deployment's keys.
    #[error("push message with a bad MAC")]
    Forged,
    /// A notice already applied (a replay, or a duplicate delivery).
    #[error("push message already seen")]
    Replayed,
}

/// Signs this node's notices and checks everyone's.
pub(crate) struct PushCodec {
    keys: KeySet,
    publisher: Uuid,
    seq: AtomicU64,
    seen: Mutex<HashMap<Uuid, u64>>,
}

impl std::fmt::Debug for PushCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushCodec")
            .field("publisher", &self.publisher)
            .finish_non_exhaustive()
    }
}

impl PushCodec {
    pub(crate) fn new(keys: KeySet) -> Self {
        Self {
            keys,
            publisher: Uuid::new_v4(),
            seq: AtomicU64::new(0),
            seen: Mutex::default(),
        }
    }

    fn sign(&self, body: &Body) -> String {
        let json = serde_json::to_string(body).expect("notices serialize");
        let mac = URL_SAFE_NO_PAD.encode(self.keys.tag(LABEL, json.as_bytes()));
        format!("{mac}.{json}")
    }

    /// The notices announcing `ids`, each at most `limit` bytes (one notice per chunk).
    /// Each takes a number even if its publish then fails, so receivers see the gap.
    pub(crate) fn encode(&self, ids: &[SessionId], limit: usize, now_ms: i64) -> Vec<String> {
        // MAC (43) + '.' + envelope (~110) + 39 bytes per id.
        let per_chunk = (limit.saturating_sub(200) / 39).max(1);
        ids.chunks(per_chunk)
            .map(|chunk| {
                self.sign(&Body {
                    v: VERSION,
                    p: self.publisher,
                    s: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
                    t: now_ms,
                    ids: chunk.to_vec(),
                    all: false,
                })
            })
            .collect()
    }

    /// A notice asking every node to resync.
    pub(crate) fn encode_resync(&self, now_ms: i64) -> String {
        self.sign(&Body {
            v: VERSION,
            p: self.publisher,
            s: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            t: now_ms,
            ids: Vec::new(),
            all: true,
        })
    }

    /// Checks a payload: MAC first, then the publisher's sequence.
    pub(crate) fn decode(&self, payload: &str) -> Result<Notice, Ignored> {
        let (mac, json) = payload.split_once('.').ok_or(Ignored::Malformed)?;
        let mut tag = [0u8; 48];
        let ok = mac.len() == 43
            && URL_SAFE_NO_PAD.decode_slice(mac, &mut tag) == Ok(32)
            && self.keys.verify_tag(LABEL, json.as_bytes(), &tag[..32]);
        if !ok {
            return Err(Ignored::Forged);
        }
        let body: Body = serde_json::from_str(json).map_err(|_| Ignored::Malformed)?;
        if body.v != VERSION || body.s == 0 {
            return Err(Ignored::Malformed);
        }
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut resync = body.all;
        if seen.len() >= MAX_PUBLISHERS && !seen.contains_key(&body.p) {
            seen.clear();
            resync = true;
        }
        match seen.get(&body.p).copied() {
            Some(last) if body.s <= last => return Err(Ignored::Replayed),
            Some(last) if body.s > last + 1 => resync = true,
            _ => {}
        }
        seen.insert(body.p, body.s);
        Ok(Notice {
            ids: body.ids,
            resync,
            sent_at_ms: body.t,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(seed: u8) -> PushCodec {
        PushCodec::new(KeySet::new([[seed; 32]]).unwrap())
    }

    #[test]
    fn notices_round_trip_in_chunks() {
        let (a, b) = (codec(1), codec(1));
        let ids: Vec<SessionId> = (0..500).map(|_| SessionId::random()).collect();
        let notices = a.encode(&ids, 7_000, 5);
        assert!(notices.len() > 1);
        assert!(notices.iter().all(|n| n.len() <= 7_000));
        let mut got = Vec::new();
        for n in &notices {
            let notice = b.decode(n).unwrap();
            assert!(!notice.resync);
            assert_eq!(notice.sent_at_ms, 5);
            got.extend(notice.ids);
        }
        assert_eq!(got, ids);
    }

    #[test]
    fn forged_and_malformed_are_ignored_without_resync() {
        let (a, b) = (codec(1), codec(1));
        let other_keys = codec(2);
        let good = a.encode(&[SessionId::random()], 7_000, 0).remove(0);
        assert_eq!(
            b.decode(&other_keys.encode(&[SessionId::random()], 7_000, 0)[0]),
            Err(Ignored::Forged)
        );
        // A forged sequence number (the JSON changed under the same MAC) is a forgery.
        let (mac, json) = good.split_once('.').unwrap();
        let bumped = json.replace("\"s\":1", "\"s\":99");
        assert_eq!(b.decode(&format!("{mac}.{bumped}")), Err(Ignored::Forged));
        for junk in ["", ".", "x.y", "{\"ids\":[]}", &"a".repeat(10_000)] {
            assert!(b.decode(junk).is_err(), "{junk:?}");
        }
        assert!(
            !b.decode(&good).unwrap().resync,
            "the real one still applies"
        );
        assert_eq!(b.decode(&good), Err(Ignored::Replayed));
    }

    #[test]
    fn a_gap_in_a_publishers_sequence_asks_for_a_resync() {
        let (a, b) = (codec(1), codec(1));
        let first = a.encode(&[SessionId::random()], 7_000, 0).remove(0);
        let _lost = a.encode(&[SessionId::random()], 7_000, 0);
        let third = a.encode(&[SessionId::random()], 7_000, 0).remove(0);
        assert!(!b.decode(&first).unwrap().resync);
        assert!(b.decode(&third).unwrap().resync);
        assert!(b.decode(&a.encode_resync(0)).unwrap().resync);
    }

    #[test]
    fn rotated_keys_still_verify() {
        let old = PushCodec::new(KeySet::new([[1u8; 32]]).unwrap());
        let new = PushCodec::new(KeySet::new([[2u8; 32], [1u8; 32]]).unwrap());
        let notice = old.encode(&[SessionId::random()], 7_000, 0).remove(0);
        assert!(new.decode(&notice).is_ok());
    }
}
