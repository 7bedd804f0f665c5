//! CSRF tokens for the HTML forms: a MAC of the session's id under the deployment's keys.
//! Nothing to store, valid on every node, dead with the session. The forms are also held to
//! the gate's cross-site rule (`Sec-Fetch-Site`, `Origin`) before the token is looked at.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use session_core::{KeySet, Session};

const LABEL: &[u8] = b"csrf";

/// The CSRF token of `session`, for a hidden field of every form that changes something.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{ClientInfo, KeySet, MemoryStore, Principal, SessionConfig, SessionManager};
/// use session_selfservice::csrf;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let a = manager.issue(Principal::user("alice"), ClientInfo::default()).await?.session;
/// let b = manager.issue(Principal::user("alice"), ClientInfo::default()).await?.session;
/// let token = csrf::token(manager.keys(), &a);
/// assert!(csrf::verify(manager.keys(), &a, &token));
/// assert!(!csrf::verify(manager.keys(), &b, &token), "bound to its session");
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn token(keys: &KeySet, session: &Session) -> String {
    URL_SAFE_NO_PAD.encode(keys.tag(LABEL, session.id().as_bytes()))
}

/// Whether `presented` is `session`'s CSRF token (constant time).
#[must_use]
pub fn verify(keys: &KeySet, session: &Session, presented: &str) -> bool {
    let mut tag = [0u8; 48];
    if presented.len() != 43 {
        return false;
    }
    match URL_SAFE_NO_PAD.decode_slice(presented, &mut tag) {
        Ok(32) => keys.verify_tag(LABEL, session.id().as_bytes(), &tag[..32]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use session_core::{ClientInfo, MemoryStore, Principal, SessionConfig, SessionManager};

    use super::*;

    #[tokio::test]
    async fn tokens_are_bound_to_the_session_and_the_key() {
        let keys = KeySet::new([[7u8; 32]]).unwrap();
        let m =
            SessionManager::new(Arc::new(MemoryStore::new()), keys, SessionConfig::new()).unwrap();
        let a = m
            .issue(Principal::user("alice"), ClientInfo::default())
            .await
            .unwrap()
            .session;
        let t = token(m.keys(), &a);
        assert!(verify(m.keys(), &a, &t));
        assert!(!verify(m.keys(), &a, ""));
        assert!(!verify(m.keys(), &a, &t[1..]));
        let mut flipped = t.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        assert!(!verify(
            m.keys(),
            &a,
            std::str::from_utf8(&flipped).unwrap()
        ));
        let other = KeySet::new([[8u8; 32]]).unwrap();
        assert_ne!(token(&other, &a), t);
        assert!(!verify(&other, &a, &t));
    }
}
