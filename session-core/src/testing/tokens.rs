//! Tokens a deployment never issued, for tests of what a gate does with them.

use std::sync::Arc;

use crate::token::TOKEN_LEN;
use crate::{ClientInfo, KeySet, Principal, SessionConfig, SessionManager, SessionStore};

/// `token` with one MAC character changed: the right shape, the wrong MAC.
///
/// ```
/// use session_core::testing::forged;
/// let token = "A".repeat(session_core::token::TOKEN_LEN);
/// let forged = forged(&token);
/// assert_eq!(forged.len(), token.len());
/// assert_ne!(forged, token);
/// ```
#[must_use]
pub fn forged(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = TOKEN_LEN - 5;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("a token is ASCII")
}

/// Tokens that `live` (a live token of this deployment) is not, each with a name: garbage,
/// a forged MAC, one character short or long, characters outside base64url, and a live
/// session of `store` signed by another deployment's key (only the MAC tells it apart).
/// A gate must refuse every one without a store lookup.
///
/// # Panics
///
/// When `store` cannot issue the foreign session.
pub async fn never_issued(store: Arc<dyn SessionStore>, live: &str) -> Vec<(String, String)> {
    let foreign = SessionManager::new(store, KeySet::random(), SessionConfig::new())
        .expect("the default config")
        .issue(Principal::user("alice"), ClientInfo::default())
        .await
        .expect("the store issues");
    let mut v = vec![
        ("garbage".to_owned(), "garbage".to_owned()),
        ("forged MAC".to_owned(), forged(live)),
        ("one char short".to_owned(), live[1..].to_owned()),
        ("one char long".to_owned(), format!("{live}A")),
        ("other key".to_owned(), foreign.token.expose().to_owned()),
    ];
    for bad in ['+', '/', '*', '=', '.'] {
        let mut t = live.to_owned();
        t.replace_range(10..11, &bad.to_string());
        v.push((format!("non-base64url {bad:?}"), t));
    }
    v
}
