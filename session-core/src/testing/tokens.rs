//! Tokens a deployment never issued, and two nodes in one process: what gate tests need.

use std::sync::Arc;

use crate::token::TOKEN_LEN;
use crate::{
    Actor, ClientInfo, CookieConfig, KeySet, Principal, RevocationReason, Session, SessionConfig,
    SessionGate, SessionManager, SessionStore,
};

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

    /// The two nodes' gates (cookie settings from [`CookieConfig::new`]), named `hot` and
    /// `cold` for assertion messages: the first decides from its cache, the second must
    /// ask the store.
    ///
    /// ```
    /// use session_core::{CookieConfig, GateCheck, GateMode, Principal, SessionConfig};
    /// use session_core::testing::TwoNodes;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let nodes = TwoNodes::new(SessionConfig::new());
    /// let (_, token) = nodes.issue(Principal::user("alice")).await;
    /// let cookie = format!("{}={token}", CookieConfig::new().name());
    /// let req = http::Request::get("/").header("cookie", cookie).body(()).unwrap();
    /// let [(_, hot), (_, cold)] = nodes.gates();
    /// assert!(matches!(hot.check(&req, GateMode::REQUIRED), GateCheck::Decided(_)));
    /// assert!(matches!(cold.check(&req, GateMode::REQUIRED), GateCheck::NeedsLoad(_)));
    /// # }
    /// ```
    #[must_use]
    pub fn gates(&self) -> [(&'static str, SessionGate); 2] {
        let gate =
            |m: &SessionManager| SessionGate::new(m.clone()).with_cookie(CookieConfig::new());
        [("hot", gate(&self.issuer)), ("cold", gate(&self.cold))]
    }

    /// A session of `principal` issued by the issuer, and its token.
    ///
    /// # Panics
    ///
    /// When the store refuses it.
    pub async fn issue(&self, principal: Principal) -> (Session, String) {
        let issued = self
            .issuer
            .issue(principal, ClientInfo::default())
            .await
            .expect("the session is issued");
        (issued.session, issued.token.expose().to_owned())
    }

    /// The token of a session of `principal` that the issuer issued and then revoked
    /// (`reason`, actor `user`).
    ///
    /// # Panics
    ///
    /// When the store refuses either step.
    pub async fn issue_revoked(&self, principal: Principal, reason: RevocationReason) -> String {
        let (session, token) = self.issue(principal).await;
        let revoked = self
            .issuer
            .revoke(session.id(), reason, Actor::User)
            .await
            .expect("the session is revoked");
        assert!(revoked, "the session was live");
        token
    }
}
