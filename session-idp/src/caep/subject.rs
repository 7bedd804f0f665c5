//! Subject identifiers (Shared Signals `sub_id`, RFC 9493 formats).

use serde_json::{Map, Value, json};

/// Whom an event is about, in the Shared Signals subject identifier format.
///
/// ```
/// use session_idp::caep::Subject;
///
/// let s = Subject::iss_sub("https://op.example", "alice");
/// assert_eq!(s.to_json().to_string(), r#"{"format":"iss_sub","iss":"https://op.example","sub":"alice"}"#);
/// assert_eq!(Subject::from_json(&s.to_json()), Some(s));
/// assert_eq!(Subject::opaque("s-1").to_json().to_string(), r#"{"format":"opaque","id":"s-1"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// `{"format": "iss_sub", "iss": …, "sub": …}`: a user at an issuer.
    IssSub {
        /// The issuer.
        iss: String,
        /// The subject at that issuer.
        sub: String,
    },
    /// `{"format": "opaque", "id": …}`: an identifier both sides understand (a session id).
    Opaque {
        /// The identifier.
        id: String,
    },
    /// `{"format": "email", "email": …}` (received only).
    Email {
        /// The address.
        email: String,
    },
    /// Any other format, as received.
    Other(Value),
}

impl Subject {
    /// An `iss_sub` subject.
    pub fn iss_sub(iss: impl Into<String>, sub: impl Into<String>) -> Self {
        Self::IssSub {
            iss: iss.into(),
            sub: sub.into(),
        }
    }

    /// An `opaque` subject.
    pub fn opaque(id: impl Into<String>) -> Self {
        Self::Opaque { id: id.into() }
    }

    /// The JSON object.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Self::IssSub { iss, sub } => json!({"format": "iss_sub", "iss": iss, "sub": sub}),
            Self::Opaque { id } => json!({"format": "opaque", "id": id}),
            Self::Email { email } => json!({"format": "email", "email": email}),
            Self::Other(v) => v.clone(),
        }
    }

    /// Reads a subject identifier object; `None` when it is not an object with a string
    /// `format`, or a known format lacks its members.
    #[must_use]
    pub fn from_json(value: &Value) -> Option<Self> {
        let obj: &Map<String, Value> = value.as_object()?;
        let s = |name: &str| {
            obj.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        Some(match s("format")? {
            "iss_sub" => Self::iss_sub(s("iss")?, s("sub")?),
            "opaque" => Self::opaque(s("id")?),
            "email" => Self::Email {
                email: s("email")?.to_owned(),
            },
            _ => Self::Other(value.clone()),
        })
    }
}
