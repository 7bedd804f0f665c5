//! The session cookie's names, and `Set-Cookie` headers split into their parts.

use std::time::SystemTime;

/// Name of the session cookie the example apps set with `SESSION_COOKIE_SECURE=false` (the
/// harness's default).
pub const COOKIE_NAME: &str = "session";

/// Name of the session cookie with `Secure` (the apps' own default): `__Host-` prefixed.
pub const SECURE_COOKIE_NAME: &str = "__Host-session";

/// Whether `name` is one of the session cookie's names.
#[must_use]
pub fn is_session_cookie(name: &str) -> bool {
    name == COOKIE_NAME || name == SECURE_COOKIE_NAME
}

/// One `Set-Cookie` header, split into name, value and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    /// The header as received.
    pub raw: String,
    /// The cookie name.
    pub name: String,
    /// The cookie value (may be empty).
    pub value: String,
    /// Attributes in order, names lowercased, values as sent (`None` for flags).
    pub attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    /// Parses a `Set-Cookie` value (RFC 6265 §5.2, without validation).
    pub fn parse(raw: &str) -> Self {
        let mut parts = raw.split(';');
        let pair = parts.next().unwrap_or("");
        let (name, value) = pair.split_once('=').unwrap_or(("", pair));
        let attributes = parts
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| match a.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_owned())),
                None => (a.to_ascii_lowercase(), None),
            })
            .collect();
        Self {
            raw: raw.to_owned(),
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            attributes,
        }
    }

    /// The value of attribute `name` (case-insensitive); `Some("")` for a flag.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Whether flag or attribute `name` is present (case-insensitive).
    pub fn has(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// The attribute names, lowercased and sorted, each once per occurrence.
    pub fn attribute_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.attributes.iter().map(|(k, _)| k.clone()).collect();
        names.sort();
        names
    }

    /// The `Expires` attribute as a time, if present and an HTTP date.
    pub fn expires(&self) -> Option<SystemTime> {
        self.attr("expires")
            .and_then(|v| httpdate::parse_http_date(v).ok())
    }
}
