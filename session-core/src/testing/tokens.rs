//! Tokens a deployment never issued, and two nodes in one process: what gate tests need.

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

/// Two nodes of one deployment, in one process: two managers over one fault-injecting
/// memory store, with one key and one manual clock. `issuer`'s cache knows every session
/// it issued or revoked (its gate decides at once); `cold` shares the store, keys and
/// clock but not the cache, as another node would (its gate must ask the store).
///
/// ```
/// use session_core::{ClientInfo, Principal, SessionConfig};
/// use session_core::testing::TwoNodes;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let nodes = TwoNodes::new(SessionConfig::new());
/// let issued = nodes.issuer.issue(Principal::user("alice"), ClientInfo::default()).await.unwrap();
/// let loads = nodes.store.calls.total();
/// nodes.cold.validate(issued.token.expose().as_bytes()).await.unwrap();
/// assert!(nodes.store.calls.total() > loads, "the cold node asked the store");
/// # }
/// ```
#[derive(Debug)]
pub struct TwoNodes {
    /// The shared store, counting calls and failing on demand.
    pub store: Arc<super::FaultyStore<crate::MemoryStore>>,
    /// The shared clock.
    pub clock: crate::ManualClock,
    /// The node that issues and revokes.
    pub issuer: SessionManager,
    /// The other node.
    pub cold: SessionManager,
}

impl TwoNodes {
    /// Both nodes with `config`.
    ///
    /// # Panics
    ///
    /// When `config` is refused.
    #[must_use]
    pub fn new(config: SessionConfig) -> Self {
        use crate::Clock as _;
        let store = super::FaultyStore::new(crate::MemoryStore::new());
        let keys = KeySet::new([[7u8; 32]]).expect("a 32-byte key");
        let clock = crate::ManualClock::new(crate::SystemClock.now());
        let manager = |keys| {
            SessionManager::with_clock(store.clone(), keys, config.clone(), Arc::new(clock.clone()))
                .expect("a valid config")
        };
        let (issuer, cold) = (manager(keys.clone()), manager(keys));
        Self {
            store,
            clock,
            issuer,
            cold,
        }
    }
}
