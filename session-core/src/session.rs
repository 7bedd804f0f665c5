//! The request's view of a session ([`Session`]), why one is refused ([`Refusal`]), and
//! what a new one records of its client ([`ClientInfo`]).

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::cache::CachedSession;
use crate::model::{Principal, SessionId, SessionKind, UserId};
use crate::token::SessionToken;

/// A valid session, handed to request handlers (through `ValidSession` in either
/// adapter). Cheap to clone (one `Arc`).
///
/// ```
/// use std::sync::Arc;
/// use session_core::{ClientInfo, KeySet, MemoryStore, Principal, SessionConfig, SessionKind, SessionManager};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
/// let session = manager.validate(issued.token.expose().as_bytes()).await?;
/// assert_eq!(session.id(), issued.session.id());
/// assert_eq!(session.user_id().as_str(), "alice");
/// assert_eq!(session.kind(), SessionKind::User);
/// assert!(session.expires_at() > manager.now());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Session(pub(crate) Arc<CachedSession>);

impl Session {
    /// The cached state behind it.
    pub(crate) fn cached(&self) -> &Arc<CachedSession> {
        &self.0
    }

    /// The session's id.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.0.id
    }

    /// Who it authenticates.
    #[must_use]
    pub fn principal(&self) -> &Principal {
        &self.0.principal
    }

    /// The user (for an agent, the user it acts for).
    #[must_use]
    pub fn user_id(&self) -> &UserId {
        self.0.principal.user_id()
    }

    /// User or agent.
    #[must_use]
    pub fn kind(&self) -> SessionKind {
        self.0.principal.kind()
    }

    /// When the session ends at the latest, whatever its activity.
    #[must_use]
    pub fn expires_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0.expires_at_nanos))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The latest activity this node has seen (whole seconds).
    #[must_use]
    pub fn last_active_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.last_seen())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id())
            .field("principal", self.principal())
            .finish_non_exhaustive()
    }
}

/// Why a request's session was not accepted. All but `Unavailable` are answers (401); a
/// store that cannot answer is a 503 and signs no one out.
#[derive(Debug)]
#[non_exhaustive]
pub enum Refusal {
    /// No token came with the request.
    Missing,
    /// Malformed, forged or unknown.
    Invalid,
    /// Past its lifetime or idle timeout.
    Expired,
    /// Revoked.
    Revoked,
    /// The store could not answer.
    Unavailable(Arc<crate::StoreError>),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("no session token"),
            Self::Invalid => f.write_str("session invalid (malformed, forged or unknown)"),
            Self::Expired => f.write_str("session expired"),
            Self::Revoked => f.write_str("session revoked"),
            Self::Unavailable(e) => write!(f, "session store unavailable: {e}"),
        }
    }
}

/// So that jobs and tools calling [`SessionManager::validate`](crate::SessionManager::validate)
/// can use `?`.
impl std::error::Error for Refusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable(e) => Some(&**e),
            _ => None,
        }
    }
}

/// The client details a new session records (both adapters have a `client_info` that
/// fills it from a request); see [`ClientInfo::from_request`].
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// The request's `User-Agent`.
    pub user_agent: Option<String>,
    /// The client's IP address.
    pub ip: Option<String>,
}

impl ClientInfo {
    /// The longest `User-Agent` recorded, in bytes; a longer one is cut (at a character
    /// boundary). Real browsers send about 150; this bounds what a client can make the
    /// store keep per session.
    pub const MAX_USER_AGENT_LEN: usize = 512;

    /// From the request's raw `User-Agent` (kept only when it is UTF-8, and cut to
    /// [`ClientInfo::MAX_USER_AGENT_LEN`] bytes) and the peer's IP.
    ///
    /// ```
    /// use session_core::ClientInfo;
    ///
    /// let long = "x".repeat(2000);
    /// let info = ClientInfo::from_request(Some(long.as_bytes()), None);
    /// assert_eq!(info.user_agent.unwrap().len(), ClientInfo::MAX_USER_AGENT_LEN);
    /// assert_eq!(ClientInfo::from_request(Some(b"\xff"), None).user_agent, None);
    /// ```
    #[must_use]
    pub fn from_request(user_agent: Option<&[u8]>, ip: Option<std::net::IpAddr>) -> Self {
        let user_agent = user_agent
            .and_then(|ua| std::str::from_utf8(ua).ok())
            .map(|ua| {
                let mut end = ua.len().min(Self::MAX_USER_AGENT_LEN);
                while !ua.is_char_boundary(end) {
                    end -= 1;
                }
                ua[..end].to_owned()
            });
        Self {
            user_agent,
            ip: ip.map(|ip| ip.to_string()),
        }
    }
}

/// A user's revocation epoch as read at the start of a login; see [`SessionManager::issue`](crate::SessionManager::issue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginEpoch(pub(crate) u64);

/// A session just issued: its record and its token (shown once).
#[derive(Debug)]
pub struct Issued {
    /// The new session.
    pub session: Session,
    /// Its token, for the cookie or the agent.
    pub token: SessionToken,
}
