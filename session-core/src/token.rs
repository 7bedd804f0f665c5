//! Session tokens: a session id and a 256-bit secret, MACed under the deployment's keys.
//!
//! A token is `base64url(version ‖ session id ‖ secret ‖ HMAC-SHA256(key, version ‖ id ‖ secret))`
//! without padding: 108 characters. Parsing checks shape and MAC before anything else, so a
//! forged or damaged token is turned away without a cache or store lookup.
//!
//! # Security
//!
//! - The secret comes from the OS's CSPRNG; the store keeps only its SHA-256
//!   ([`secret_hash`]), compared in constant time ([`hashes_match`]).
//! - MACs are checked in constant time under every verifying key; the first key signs
//!   (rotation: add the new key first, keep the old ones until their tokens expire).
//! - [`SessionToken`]'s `Debug` prints no token, so it cannot end up in a log line.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ConfigError;
use crate::model::SessionId;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const ID_LEN: usize = 16;
const SECRET_LEN: usize = 32;
const MAC_LEN: usize = 32;
const SIGNED_LEN: usize = 1 + ID_LEN + SECRET_LEN;
const RAW_LEN: usize = SIGNED_LEN + MAC_LEN;
/// The length of an encoded token, in characters.
pub const TOKEN_LEN: usize = RAW_LEN / 3 * 4;
/// The shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// Why a presented token was refused. Every variant means "not a token we issued".
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not [`TOKEN_LEN`] characters.
    #[error("token has the wrong length")]
    WrongLength,
    /// Characters outside base64url.
    #[error("token is not base64url")]
    BadEncoding,
    /// An unknown format version.
    #[error("token has an unknown version")]
    BadVersion,
    /// No verifying key accepts the MAC.
    #[error("token MAC does not verify")]
    BadMac,
}

/// The keys of a deployment: the first signs new tokens, all of them verify.
///
/// Every node that shares a store needs the same keys, and they must outlive a restart,
/// or every cookie becomes `session_invalid`: read them from the environment
/// ([`KeySet::from_env`]). [`KeySet::random`] is for tests and one-process demos on the
/// memory store; [`SessionManager::new`](crate::SessionManager::new) warns when it meets
/// a persistent store.
///
/// ```
/// use session_core::KeySet;
///
/// // Generate a key once (or run `session-admin keys generate`) and keep it secret.
/// let key = KeySet::generate_key();
/// assert_eq!(key.len(), 43); // 32 bytes, base64url without padding
///
/// // Rotation: the new key first (it signs), the old one after it (it still verifies).
/// let old = KeySet::from_base64_list(&key)?;
/// let rotated = KeySet::from_base64_list(&format!("{},{key}", KeySet::generate_key()))?;
/// let token = old.issue().token;
/// assert!(rotated.verify(token.expose().as_bytes()).is_ok());
///
/// // From the environment, in one call.
/// # unsafe { std::env::set_var("DOC_SESSION_KEYS", &key) };
/// let keys = KeySet::from_env("DOC_SESSION_KEYS")?;
/// assert!(keys.verify(token.expose().as_bytes()).is_ok());
/// assert!(KeySet::from_env("DOC_UNSET_VARIABLE").is_err());
/// assert!(KeySet::from_env_or_random("DOC_UNSET_VARIABLE")?.is_random());
/// # Ok::<(), session_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct KeySet {
    /// One keyed HMAC per key, its inner and outer pads hashed once here; each MAC clones
    /// one (see [`keyed`] and [`token_mac`]).
    macs: Vec<HmacSha256>,
    /// Made by [`KeySet::random`]: dies with the process.
    random: bool,
}

/// HMAC-SHA256 (RFC 2104) keyed with `key`: the state every MAC under that key starts from.
fn keyed(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// The MAC of a token's signed bytes (or of any message) under `key`: a clone of the keyed
/// state, the message, and the two final compressions. Allocates nothing.
fn token_mac(key: &HmacSha256, message: &[u8]) -> [u8; MAC_LEN] {
    let mut mac = key.clone();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.macs.len())
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// A key set from raw keys, signing key first. Each key needs at least
    /// [`MIN_KEY_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoKeys`] for an empty list, [`ConfigError::KeyTooShort`] for a short key.
    pub fn new<K: AsRef<[u8]>>(keys: impl IntoIterator<Item = K>) -> Result<Self, ConfigError> {
        let mut macs = Vec::new();
        for key in keys {
            let key = key.as_ref();
            if key.len() < MIN_KEY_LEN {
                return Err(ConfigError::KeyTooShort(key.len()));
            }
            macs.push(keyed(key));
        }
        if macs.is_empty() {
            return Err(ConfigError::NoKeys);
        }
        Ok(Self {
            macs,
            random: false,
        })
    }

    /// Reads keys in the [`from_base64_list`](Self::from_base64_list) format from the
    /// environment variable `var` (for example `SESSION_KEYS`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Env`] naming `var` when it is unset, not Unicode, or not a key list.
    pub fn from_env(var: &str) -> Result<Self, ConfigError> {
        let env = |problem: String| ConfigError::Env {
            var: var.to_owned(),
            problem,
        };
        match std::env::var(var) {
            Ok(list) => Self::from_base64_list(&list).map_err(|e| env(e.to_string())),
            Err(std::env::VarError::NotPresent) => Err(env(
                "not set; generate a key with `session-admin keys generate` (or \
                 `KeySet::generate_key()`) and give the same one to every node"
                    .to_owned(),
            )),
            Err(std::env::VarError::NotUnicode(_)) => Err(env("not Unicode".to_owned())),
        }
    }

    /// As [`from_env`](Self::from_env), but [`random`](Self::random) keys when `var` is
    /// unset, with a warning: for a first run on one machine. A set but unusable `var` is
    /// still an error.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env), except for an unset `var`.
    pub fn from_env_or_random(var: &str) -> Result<Self, ConfigError> {
        if std::env::var_os(var).is_some() {
            return Self::from_env(var);
        }
        tracing::warn!(
            "{var} is not set: using a random session key, so every session ends when this \
             process does; generate a key with `session-admin keys generate`"
        );
        Ok(Self::random())
    }

    /// A new random 256-bit key in the format [`from_base64_list`](Self::from_base64_list)
    /// and [`from_env`](Self::from_env) read: 43 base64url characters.
    #[must_use]
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        URL_SAFE_NO_PAD.encode(key)
    }

    /// Whether these keys came from [`KeySet::random`], and so die with the process.
    #[must_use]
    pub fn is_random(&self) -> bool {
        self.random
    }

    /// Parses the `SESSION_KEYS` format: comma-separated base64url keys, padding optional.
    ///
    /// # Errors
    ///
    /// [`ConfigError::KeyEncoding`] for a key that is not base64url, and as [`KeySet::new`].
    pub fn from_base64_list(list: &str) -> Result<Self, ConfigError> {
        let keys = list
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(i, k)| {
                let decoded = if k.ends_with('=') {
                    URL_SAFE.decode(k)
                } else {
                    URL_SAFE_NO_PAD.decode(k)
                };
                decoded.map_err(|_| ConfigError::KeyEncoding(i))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// A fresh random 256-bit key, good for one process only: its tokens die with it. For
    /// tests and demos on the memory store; anything else reads its keys with
    /// [`from_env`](Self::from_env).
    #[must_use]
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        Self {
            macs: vec![keyed(&key)],
            random: true,
        }
    }

    /// Issues a new token for a new random session id.
    #[must_use]
    pub fn issue(&self) -> IssuedToken {
        self.issue_for(SessionId::random())
    }

    /// Issues a new token for the new session `id` (a store may choose ids, see
    /// [`SessionStore::new_session_id`](crate::SessionStore::new_session_id)).
    #[must_use]
    pub fn issue_for(&self, id: SessionId) -> IssuedToken {
        let mut secret = [0u8; SECRET_LEN];
        fill_random(&mut secret);
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1..1 + ID_LEN].copy_from_slice(id.as_bytes());
        raw[1 + ID_LEN..SIGNED_LEN].copy_from_slice(&secret);
        let tag = token_mac(&self.macs[0], &raw[..SIGNED_LEN]);
        raw[SIGNED_LEN..].copy_from_slice(&tag);
        IssuedToken {
            id,
            secret_hash: secret_hash(&secret),
            tag,
            token: SessionToken(URL_SAFE_NO_PAD.encode(raw)),
        }
    }

    /// Checks a presented token's shape and MAC. Allocates nothing.
    ///
    /// # Errors
    ///
    /// A [`TokenError`] for anything we did not issue.
    pub fn verify(&self, token: &[u8]) -> Result<VerifiedToken, TokenError> {
        if token.len() != TOKEN_LEN {
            return Err(TokenError::WrongLength);
        }
        let mut raw = [0u8; RAW_LEN];
        // base64-simd: a quarter of the `base64` crate's time for these 108 characters,
        // and the same strict alphabet (no padding, no `+` or `/`; the length is a
        // multiple of four, so there are no trailing bits to judge).
        if base64_simd::URL_SAFE_NO_PAD
            .decode(token, base64_simd::Out::from_slice(&mut raw))
            .map_or(true, |decoded| decoded.len() != RAW_LEN)
        {
            return Err(TokenError::BadEncoding);
        }
        if raw[0] != VERSION {
            return Err(TokenError::BadVersion);
        }
        let (signed, tag) = raw.split_at(SIGNED_LEN);
        // Try every key without stopping early, so timing does not tell which one matched.
        let mut ok = subtle::Choice::from(0);
        for key in &self.macs {
            ok |= ct_eq32(&token_mac(key, signed), tag);
        }
        if !bool::from(ok) {
            return Err(TokenError::BadMac);
        }
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&signed[1..1 + ID_LEN]);
        let mut secret = [0u8; SECRET_LEN];
        secret.copy_from_slice(&signed[1 + ID_LEN..]);
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(tag);
        Ok(VerifiedToken {
            id: SessionId::from_bytes(id),
            secret,
            tag: mac,
        })
    }
}

impl KeySet {
    /// A MAC under the signing key of `data`, in the domain `label` (so tags made for one
    /// purpose never verify for another). For tokens bound to a session, such as CSRF tokens.
    #[must_use]
    pub fn tag(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = self.macs[0].clone();
        mac.update(&[u8::try_from(label.len()).unwrap_or(u8::MAX)]);
        mac.update(label);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `data` in `label` under any verifying key (constant time).
    #[must_use]
    pub fn verify_tag(&self, label: &[u8], data: &[u8], tag: &[u8]) -> bool {
        let mut ok = subtle::Choice::from(0);
        for key in &self.macs {
            let mut mac = key.clone();
            mac.update(&[u8::try_from(label.len()).unwrap_or(u8::MAX)]);
            mac.update(label);
            mac.update(data);
            ok |= ct_eq32(&mac.finalize().into_bytes().into(), tag);
        }
        bool::from(ok)
    }
}

/// A token whose MAC verified: the session id and the secret to check against the store.
#[derive(Clone, Copy)]
pub struct VerifiedToken {
    /// The session it names.
    pub id: SessionId,
    secret: [u8; SECRET_LEN],
    tag: [u8; MAC_LEN],
}

impl VerifiedToken {
    /// The MAC that verified. Equal MACs under our keys mean equal (id, secret), so a
    /// node that has checked a secret against the store's hash once can recognise the same
    /// token by its MAC alone.
    #[must_use]
    pub fn tag(&self) -> &[u8; MAC_LEN] {
        &self.tag
    }

    /// Whether the secret hashes to `stored` (constant time).
    #[must_use]
    pub fn matches(&self, stored: &[u8; 32]) -> bool {
        hashes_match(&secret_hash(&self.secret), stored)
    }
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A newly issued token, with what the store keeps of it.
#[derive(Debug)]
pub struct IssuedToken {
    /// The new session id.
    pub id: SessionId,
    /// SHA-256 of the secret: what the store keeps.
    pub secret_hash: [u8; 32],
    /// The token's MAC (see [`VerifiedToken::tag`]).
    pub tag: [u8; MAC_LEN],
    /// The token to hand to the client, once.
    pub token: SessionToken,
}

/// An encoded token. Its `Debug` and `Display` print no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// The token text, to put in a cookie or hand to an agent.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// SHA-256 of a secret.
#[must_use]
pub fn secret_hash(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Constant-time equality of two hashes.
#[must_use]
pub fn hashes_match(a: &[u8; 32], b: &[u8; 32]) -> bool {
    ct_eq32(a, b).into()
}

/// Constant-time equality of 32 bytes: the XOR of the two, as four words ORed into one,
/// compared with zero under a single `subtle` barrier. (`subtle`'s slice comparison puts
/// an out-of-line barrier on every element: 33 calls for 32 bytes, 5 for four words.)
pub(crate) fn ct_eq32(a: &[u8; 32], b: &[u8]) -> subtle::Choice {
    if b.len() != 32 {
        return subtle::Choice::from(0);
    }
    let diff = a
        .chunks_exact(8)
        .zip(b.chunks_exact(8))
        .fold(0u64, |acc, (x, y)| {
            let word = |w: &[u8]| u64::from_le_bytes(w.try_into().expect("8 bytes"));
            acc | (word(x) ^ word(y))
        });
    diff.ct_eq(&0)
}

pub(crate) fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the OS CSPRNG is available");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seed: u8) -> KeySet {
        KeySet::new([[seed; 32]]).unwrap()
    }

    #[test]
    fn issued_token_verifies_and_matches_its_hash() {
        let ks = keys(1);
        let issued = ks.issue();
        assert_eq!(issued.token.expose().len(), TOKEN_LEN);
        let v = ks.verify(issued.token.expose().as_bytes()).unwrap();
        assert_eq!(v.id, issued.id);
        assert!(v.matches(&issued.secret_hash));
        assert!(!v.matches(&[0; 32]));
    }

    #[test]
    fn ct_eq32_tells_every_single_bit_apart() {
        let a: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 7 + 3).unwrap());
        assert!(bool::from(ct_eq32(&a, &a)));
        for byte in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[byte] ^= 1 << bit;
                assert!(!bool::from(ct_eq32(&a, &b)), "byte {byte} bit {bit}");
            }
        }
        assert!(!bool::from(ct_eq32(&a, &a[..31])));
        assert!(!bool::from(ct_eq32(&[0; 32], &[0; 33])));
    }

    /// RFC 4231's HMAC-SHA256 test vectors (case 5, a truncated tag, left out), through
    /// the functions tokens are signed and verified with.
    #[test]
    fn token_mac_is_hmac_sha256() {
        let long_key = [0xaa_u8; 131];
        let cases: [(&[u8], &[u8], &str); 6] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 20],
                &[0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                &[
                    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
                    0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
                ],
                &[0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                &long_key,
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                &long_key,
                b"This is a test using a larger than block-size key and a larger than \
                  block-size data. The key needs to be hashed before being used by the \
                  HMAC algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (n, (key, data, expected)) in cases.into_iter().enumerate() {
            let tag = token_mac(&keyed(key), data);
            assert_eq!(
                hex::encode(tag),
                expected,
                "RFC 4231 case {}",
                [1, 2, 3, 4, 6, 7][n]
            );
            // The keyed state is cloned, never consumed: the same MAC again.
            let key = keyed(key);
            assert_eq!(token_mac(&key, data), token_mac(&key, data));
        }
    }

    /// A token made outside this crate (Python's `hmac` module) to the documented format
    /// verifies: the format does not move with the MAC's implementation.
    #[test]
    fn a_token_of_the_documented_format_verifies() {
        // base64url(0x01 ‖ id 0x10..=0x1f ‖ secret 0x20..=0x3f ‖ HMAC-SHA256([7; 32], those 49 bytes))
        let token = b"ARAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P_tSE9RZ89F2uy76aXQPPGZqLgXh9a1vql-WVVtjt0GT";
        let v = keys(7).verify(token).unwrap();
        assert_eq!(v.id.as_bytes(), &std::array::from_fn(|i| 0x10 + i as u8));
        let secret: [u8; 32] = std::array::from_fn(|i| 0x20 + i as u8);
        assert!(v.matches(&secret_hash(&secret)));
        assert_eq!(keys(8).verify(token).unwrap_err(), TokenError::BadMac);
    }

    #[test]
    fn forged_mac_is_refused() {
        let ks = keys(1);
        let token = ks.issue().token.expose().to_owned();
        // Flip one MAC character (the last ones encode the MAC).
        let mut bytes = token.into_bytes();
        let i = TOKEN_LEN - 5;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(ks.verify(&bytes).unwrap_err(), TokenError::BadMac);
        // A token signed by another deployment's key.
        let other = keys(2).issue();
        assert_eq!(
            ks.verify(other.token.expose().as_bytes()).unwrap_err(),
            TokenError::BadMac
        );
    }

    #[test]
    fn wrong_length_and_bad_base64_are_refused() {
        let ks = keys(1);
        let token = ks.issue().token.expose().to_owned();
        assert_eq!(
            ks.verify(&token.as_bytes()[1..]).unwrap_err(),
            TokenError::WrongLength
        );
        assert_eq!(
            ks.verify(format!("{token}A").as_bytes()).unwrap_err(),
            TokenError::WrongLength
        );
        assert_eq!(ks.verify(b"").unwrap_err(), TokenError::WrongLength);
        let mut bad = token.clone().into_bytes();
        bad[10] = b'+';
        assert_eq!(ks.verify(&bad).unwrap_err(), TokenError::BadEncoding);
        bad[10] = b'=';
        assert_eq!(ks.verify(&bad).unwrap_err(), TokenError::BadEncoding);
        bad[10] = b'/';
        assert_eq!(ks.verify(&bad).unwrap_err(), TokenError::BadEncoding);
        let mut padded = token.clone().into_bytes();
        padded[TOKEN_LEN - 1] = b'=';
        assert_eq!(ks.verify(&padded).unwrap_err(), TokenError::BadEncoding);
        let mut non_ascii = token.into_bytes();
        non_ascii[0] = 0xff;
        assert_eq!(ks.verify(&non_ascii).unwrap_err(), TokenError::BadEncoding);
    }

    #[test]
    fn rotated_keys_verify_old_tokens_and_sign_with_the_first() {
        let old = keys(1);
        let old_token = old.issue();
        let rotated = KeySet::new([[2u8; 32], [1u8; 32]]).unwrap();
        assert!(rotated.verify(old_token.token.expose().as_bytes()).is_ok());
        let new_token = rotated.issue();
        assert!(keys(2).verify(new_token.token.expose().as_bytes()).is_ok());
        assert_eq!(
            old.verify(new_token.token.expose().as_bytes()).unwrap_err(),
            TokenError::BadMac
        );
    }

    #[test]
    fn key_list_parsing() {
        let k = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let padded = URL_SAFE.encode([8u8; 33]);
        let ks = KeySet::from_base64_list(&format!("{k}, {padded}")).unwrap();
        assert_eq!(ks.macs.len(), 2);
        assert!(matches!(
            KeySet::from_base64_list(&URL_SAFE_NO_PAD.encode([1u8; 31])),
            Err(ConfigError::KeyTooShort(31))
        ));
        assert!(matches!(
            KeySet::from_base64_list("not*base64"),
            Err(ConfigError::KeyEncoding(0))
        ));
        assert!(matches!(
            KeySet::from_base64_list(""),
            Err(ConfigError::NoKeys)
        ));
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let issued = keys(1).issue();
        let dbg = format!("{issued:?}");
        assert!(!dbg.contains(issued.token.expose()));
    }
}
