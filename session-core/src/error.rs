//! Errors: configuration mistakes and store failures. A revoked or unknown session is not an
//! error but a [`Refusal`](crate::Refusal).

use crate::model::SessionId;

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No token key was given.
    #[error("at least one session key is required")]
    NoKeys,
    /// A key shorter than [`MIN_KEY_LEN`](crate::token::MIN_KEY_LEN) bytes.
    #[error("session key is {0} bytes; at least 32 are required")]
    KeyTooShort(usize),
    /// A key that is not base64url (its position in the list).
    #[error("session key #{0} is not base64url")]
    KeyEncoding(usize),
    /// A duration or size that makes no sense, alone or beside another setting: the
    /// setting's name and what it must be.
    #[error("invalid setting {0}")]
    Invalid(&'static str),
    /// A cookie name with characters a cookie name cannot hold.
    #[error("invalid cookie name")]
    CookieName,
    /// An environment variable that is unset or unusable: its name and what is wrong.
    #[error("{var}: {problem}")]
    Env {
        /// The variable's name.
        var: String,
        /// What is wrong with it, and what to do.
        problem: String,
    },
}

/// The store could not answer. Becomes a 503, never a 401: an outage signs no one out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer within the configured deadline.
    #[error("session store timed out")]
    Timeout,
    /// Too many loads are in flight; the request was shed.
    #[error("too many session loads in flight")]
    Overloaded,
    /// The store's backend failed (connection refused, I/O, protocol).
    #[error("session store unavailable: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// A record in the store could not be decoded.
    #[error("corrupt session record: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Wraps a driver's error.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(err))
    }
}

/// What the manager's operations can fail with. A gate turns each into its answer
/// ([`SessionGate::error_reply`](crate::SessionGate::error_reply)): a store failure is a
/// 503 that clears no cookie, a deprovisioned user a 403.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{Actor, KeySet, MemoryStore, SessionConfig, SessionError, SessionGate, SessionManager, UserId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let carol = UserId::from("carol");
/// manager.disable_user(&carol, Actor::Idp).await?; // offboarding
/// let err = manager.login_epoch(&carol).await.unwrap_err();
/// assert!(matches!(err, SessionError::UserDisabled));
/// let reply = SessionGate::new(manager).error_reply(&err);
/// assert_eq!(reply.status, 403);
/// assert_eq!(reply.body, r#"{"error":"user_disabled"}"#);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A revoke-all for this user ran after the login began; the login lost the race and no
    /// session was created.
    #[error("a revocation of all the user's sessions overtook this login")]
    Superseded,
    /// No such session, or it belongs to someone else.
    #[error("session {0} not found")]
    NotFound(SessionId),
    /// The user is deprovisioned (SCIM): no session can be issued until they are
    /// reactivated.
    #[error("the user is disabled")]
    UserDisabled,
    /// The session granting an agent is revoked, expired, or older than the user's last
    /// revoke-all: no agent was granted.
    #[error("the granting session is no longer valid")]
    GrantorGone,
}
