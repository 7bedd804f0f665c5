//! The provider's bearer token.

use std::fmt;

use subtle::ConstantTimeEq;

use super::ScimError;

/// The bearer token a SCIM client (the identity provider) must present, compared in
/// constant time.
///
/// ```
/// use session_idp::scim::ScimBearer;
///
/// let bearer = ScimBearer::new("0123456789abcdef0123456789abcdef").unwrap();
/// assert!(bearer.check(Some("Bearer 0123456789abcdef0123456789abcdef")).is_ok());
/// assert_eq!(bearer.check(Some("Bearer wrong")).unwrap_err().status(), 401);
/// assert_eq!(bearer.check(None).unwrap_err().status(), 401);
/// assert_eq!(format!("{bearer:?}"), "ScimBearer([redacted])");
/// ```
#[derive(Clone)]
pub struct ScimBearer {
    token: Vec<u8>,
}

impl fmt::Debug for ScimBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScimBearer([redacted])")
    }
}

/// The shortest token accepted: 32 bytes, as for the app's admin token.
const MIN_TOKEN_BYTES: usize = 32;

impl ScimBearer {
    /// The expected token; at least 32 bytes.
    pub fn new(token: impl Into<String>) -> Result<Self, crate::ConfigError> {
        let token = token.into().into_bytes();
        if token.len() < MIN_TOKEN_BYTES {
            return Err(crate::ConfigError::new(
                "the SCIM token must be at least 32 bytes",
            ));
        }
        Ok(Self { token })
    }

    /// Checks an `Authorization` header value (`Bearer TOKEN`, scheme case-insensitive).
    /// Missing, another scheme, or another token: a 401 [`ScimError`].
    pub fn check(&self, authorization: Option<&str>) -> Result<(), ScimError> {
        let presented = authorization
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().as_bytes());
        match presented {
            Some(token) if bool::from(token.ct_eq(&self.token)) => Ok(()),
            _ => Err(ScimError::unauthorized()),
        }
    }
}
