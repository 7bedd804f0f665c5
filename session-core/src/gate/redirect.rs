//! The open-redirect guard, and the login redirect a refused navigation gets.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `target` if it is a local path safe to redirect to (one leading `/`, not `//`, no
/// scheme, no backslash, no control characters), else `/`. Stops open redirects: pass
/// every `return_to` a login receives through it.
///
/// ```
/// use session_core::local_redirect;
///
/// assert_eq!(local_redirect(Some("/account/sessions?tab=1")), "/account/sessions?tab=1");
/// assert_eq!(local_redirect(Some("//evil.example")), "/");
/// assert_eq!(local_redirect(Some("https://evil.example")), "/");
/// assert_eq!(local_redirect(None), "/");
/// ```
#[must_use]
pub fn local_redirect(target: Option<&str>) -> &str {
    match target {
        Some(t)
            if t.starts_with('/')
                && !t.starts_with("//")
                && !t.contains('\\')
                && !t.chars().any(char::is_control) =>
        {
            t
        }
        _ => "/",
    }
}

/// What a login page tells the user about the `reason` the login redirect added
/// ([`SessionGate::with_login_redirect`](crate::SessionGate::with_login_redirect)), in
/// words; `None` for no reason or one it does not know (the parameter comes from the URL, so
/// it is never shown as it stands).
///
/// ```
/// use session_core::sign_in_notice;
///
/// assert_eq!(sign_in_notice(Some("session_expired")), Some("Your session expired. Please sign in again."));
/// assert!(sign_in_notice(Some("session_revoked")).unwrap().contains("another device"));
/// assert_eq!(sign_in_notice(Some("<script>")), None);
/// assert_eq!(sign_in_notice(None), None);
/// ```
#[must_use]
pub fn sign_in_notice(reason: Option<&str>) -> Option<&'static str> {
    match reason? {
        "session_revoked" => Some(
            "You were signed out because this session was ended from another device \
             or by an administrator. Please sign in again.",
        ),
        "session_expired" => Some("Your session expired. Please sign in again."),
        _ => None,
    }
}

/// `login?return_to=PATH[&reason=CODE]`, the place a refused navigation is sent.
pub(crate) fn login_location(login: &str, path: &str, reason: Option<&str>) -> String {
    let sep = if login.contains('?') { '&' } else { '?' };
    let mut url = format!(
        "{login}{sep}return_to={}",
        utf8_percent_encode(path, QUERY_VALUE)
    );
    if let Some(reason) = reason {
        url.push_str("&reason=");
        url.push_str(reason);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        assert_eq!(local_redirect(Some("/sessions?x=1")), "/sessions?x=1");
        for bad in [
            "//evil.com",
            "https://evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "evil.com",
            "",
            "/\tx",
            "javascript:alert(1)",
        ] {
            assert_eq!(local_redirect(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_redirect(None), "/");
    }

    #[test]
    fn login_locations_encode_the_path() {
        assert_eq!(
            login_location("/login", "/a b?c=d&e", Some("session_revoked")),
            "/login?return_to=%2Fa%20b%3Fc%3Dd%26e&reason=session_revoked"
        );
        assert_eq!(
            login_location("/login?x=1", "/", None),
            "/login?x=1&return_to=%2F"
        );
    }
}
