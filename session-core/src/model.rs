//! The session model: ids, principals, records and revocation reasons.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A session's public identifier (a random UUID). Not a secret: it names a session in
/// listings and URLs, while the token's secret proves possession.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A new random id from the OS's CSPRNG.
    #[must_use]
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id from its 16 raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
    }

    /// The 16 raw bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The underlying UUID.
    #[must_use]
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for SessionId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl std::str::FromStr for SessionId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0.hyphenated())
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps an application-chosen identifier.
            #[must_use]
            pub fn new(id: impl Into<Arc<str>>) -> Self {
                Self(id.into())
            }

            /// The identifier as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }
    };
}

string_id!(
    /// The application's identifier of a user (whatever the app's user table uses).
    UserId
);
string_id!(
    /// The identifier of an agent (an AI agent or other delegate acting for a user).
    AgentId
);

/// Who a session authenticates: a user, or an agent acting on a user's behalf.
///
/// ```
/// use session_core::{Principal, SessionKind};
///
/// let user = Principal::user("alice");
/// assert_eq!(user.kind(), SessionKind::User);
/// let agent = Principal::agent("alice", "agent-7", "Calendar assistant");
/// assert_eq!(agent.kind(), SessionKind::Agent);
/// assert_eq!(agent.user_id().as_str(), "alice", "an agent acts for its user");
/// assert_eq!(agent.agent_id().map(|a| a.as_str()), Some("agent-7"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    /// The user themself.
    User {
        /// The user.
        user_id: UserId,
    },
    /// An agent acting for a user.
    Agent {
        /// The user the agent acts for.
        user_id: UserId,
        /// The agent's id.
        agent_id: AgentId,
        /// The agent's display name.
        agent_name: String,
    },
}

impl Principal {
    /// A user principal.
    #[must_use]
    pub fn user(user_id: impl Into<UserId>) -> Self {
        Self::User {
            user_id: user_id.into(),
        }
    }

    /// An agent principal acting for `user_id`.
    #[must_use]
    pub fn agent(
        user_id: impl Into<UserId>,
        agent_id: impl Into<AgentId>,
        agent_name: impl Into<String>,
    ) -> Self {
        Self::Agent {
            user_id: user_id.into(),
            agent_id: agent_id.into(),
            agent_name: agent_name.into(),
        }
    }

    /// The user this session belongs to (for an agent, the user it acts for).
    #[must_use]
    pub fn user_id(&self) -> &UserId {
        match self {
            Self::User { user_id } | Self::Agent { user_id, .. } => user_id,
        }
    }

    /// The kind of session.
    #[must_use]
    pub fn kind(&self) -> SessionKind {
        match self {
            Self::User { .. } => SessionKind::User,
            Self::Agent { .. } => SessionKind::Agent,
        }
    }

    /// The agent's id, for agent sessions.
    #[must_use]
    pub fn agent_id(&self) -> Option<&AgentId> {
        match self {
            Self::User { .. } => None,
            Self::Agent { agent_id, .. } => Some(agent_id),
        }
    }

    /// The agent's name, for agent sessions.
    #[must_use]
    pub fn agent_name(&self) -> Option<&str> {
        match self {
            Self::User { .. } => None,
            Self::Agent { agent_name, .. } => Some(agent_name),
        }
    }
}

/// Whether a session is a user's own or an agent's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// A user's own session.
    User,
    /// An agent acting for a user.
    Agent,
}

impl SessionKind {
    /// `"user"` or `"agent"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Agent => "agent",
        }
    }
}

/// Why a session was revoked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationReason {
    /// The user signed out of this session.
    SignedOut,
    /// The user revoked this session from their session list.
    RevokedByUser,
    /// The user signed out of every session.
    SignedOutEverywhere,
    /// The user's password was reset.
    PasswordReset,
    /// An administrator revoked it.
    AdminRevoked,
    /// The agent was disconnected.
    AgentDisconnected,
    /// The session id was rotated (login or privilege change).
    Rotated,
    /// The account was deleted or offboarded.
    AccountDeleted,
    /// The user reached the cap on live sessions; the oldest went.
    SessionLimit,
    /// The identity provider ended the session (OpenID Connect back-channel logout, CAEP).
    IdpLogout,
    /// The identity provider deprovisioned the user (SCIM).
    UserDeprovisioned,
    /// A risk signal: the session was used from another network or browser than at
    /// sign-in, or an app's risk engine said so.
    RiskDetected,
    /// Anything else, in the application's words.
    Other(String),
}

impl RevocationReason {
    /// The reason's wire name (`signed_out`, `revoked_by_user`, …; free-form reasons as given).
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::SignedOut => "signed_out",
            Self::RevokedByUser => "revoked_by_user",
            Self::SignedOutEverywhere => "signed_out_everywhere",
            Self::PasswordReset => "password_reset",
            Self::AdminRevoked => "admin_revoked",
            Self::AgentDisconnected => "agent_disconnected",
            Self::Rotated => "rotated",
            Self::AccountDeleted => "account_deleted",
            Self::SessionLimit => "session_limit",
            Self::IdpLogout => "idp_logout",
            Self::UserDeprovisioned => "user_deprovisioned",
            Self::RiskDetected => "risk_detected",
            Self::Other(s) => s,
        }
    }

    /// Parses a wire name; unknown names become [`RevocationReason::Other`].
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s {
            "signed_out" => Self::SignedOut,
            "revoked_by_user" => Self::RevokedByUser,
            "signed_out_everywhere" => Self::SignedOutEverywhere,
            "password_reset" => Self::PasswordReset,
            "admin_revoked" => Self::AdminRevoked,
            "agent_disconnected" => Self::AgentDisconnected,
            "rotated" => Self::Rotated,
            "account_deleted" => Self::AccountDeleted,
            "session_limit" => Self::SessionLimit,
            "idp_logout" => Self::IdpLogout,
            "user_deprovisioned" => Self::UserDeprovisioned,
            "risk_detected" => Self::RiskDetected,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RevocationReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RevocationReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::parse(&s))
    }
}

/// Who caused an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The user themself (logout, self-service revocation, password reset, agent grant).
    User,
    /// An administrator.
    Admin,
    /// The system (expiry, the session cap, risk binding).
    System,
    /// An agent.
    Agent,
    /// An identity provider (SCIM, back-channel logout, CAEP).
    Idp,
}

impl Actor {
    /// The actor's wire name: `user`, `admin`, `system`, `agent` or `idp`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
            Self::System => "system",
            Self::Agent => "agent",
            Self::Idp => "idp",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => Self::User,
            "admin" => Self::Admin,
            "system" => Self::System,
            "agent" => Self::Agent,
            "idp" => Self::Idp,
            _ => return None,
        })
    }

    /// The actor of what `kind` of session did itself: `user` or `agent`.
    #[must_use]
    pub const fn of(kind: SessionKind) -> Self {
        match kind {
            SessionKind::User => Self::User,
            SessionKind::Agent => Self::Agent,
        }
    }
}

/// The identity-provider session a session was signed in through (OpenID Connect), so
/// the provider can end it (back-channel logout).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdpLink {
    /// The provider's issuer (`iss`).
    pub issuer: String,
    /// The user's subject at the provider (`sub`).
    pub subject: String,
    /// The provider's session id (`sid`), when it sent one.
    pub sid: Option<String>,
}

/// A session as the store keeps it. Holds only a hash of the token's secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session's id.
    pub id: SessionId,
    /// SHA-256 of the token's secret.
    #[serde(with = "hex::serde")]
    pub secret_hash: [u8; 32],
    /// Who the session authenticates.
    pub principal: Principal,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When a request last used it (as last written to the store).
    #[serde(with = "time::serde::rfc3339")]
    pub last_active_at: OffsetDateTime,
    /// The absolute end of its life.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The `User-Agent` it was issued to.
    pub user_agent: Option<String>,
    /// The client IP it was issued to.
    pub ip: Option<String>,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it was revoked, if it was.
    pub revocation_reason: Option<RevocationReason>,
    /// The user's revocation epoch when the session was issued: an agent grant from this
    /// session is refused once a revoke-all moved the epoch past it.
    #[serde(default)]
    pub epoch: u64,
    /// The identity-provider session it was signed in through, if any.
    #[serde(default)]
    pub idp: Option<IdpLink>,
}

impl SessionRecord {
    /// The user the session belongs to.
    #[must_use]
    pub fn user_id(&self) -> &UserId {
        self.principal.user_id()
    }

    /// Whether the session has been revoked.
    #[must_use]
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// The session's kind.
    #[must_use]
    pub fn kind(&self) -> SessionKind {
        self.principal.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_free_form_survives() {
        for r in [
            RevocationReason::SignedOut,
            RevocationReason::PasswordReset,
            RevocationReason::AgentDisconnected,
            RevocationReason::SessionLimit,
            RevocationReason::IdpLogout,
            RevocationReason::UserDeprovisioned,
            RevocationReason::RiskDetected,
        ] {
            assert_eq!(RevocationReason::parse(r.as_str()), r);
        }
        assert_eq!(
            RevocationReason::parse("offboarded"),
            RevocationReason::Other("offboarded".into())
        );
        assert_eq!(
            serde_json::to_string(&RevocationReason::RevokedByUser).unwrap(),
            "\"revoked_by_user\""
        );
    }

    #[test]
    fn record_round_trips_through_json() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let rec = SessionRecord {
            id: SessionId::random(),
            secret_hash: [0xab; 32],
            principal: Principal::agent("alice", "a1", "Helper"),
            created_at: now,
            last_active_at: now,
            expires_at: now,
            user_agent: Some("UA".into()),
            ip: None,
            revoked_at: None,
            revocation_reason: None,
            epoch: 3,
            idp: Some(IdpLink {
                issuer: "https://idp.example".into(),
                subject: "alice".into(),
                sid: None,
            }),
        };
        let json = serde_json::to_string(&rec).unwrap();
        assert!(json.contains(&"ab".repeat(32)));
        assert_eq!(serde_json::from_str::<SessionRecord>(&json).unwrap(), rec);
    }
}
