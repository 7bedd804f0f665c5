//! Where a state-changing request comes from: the cross-site rule every cookie-carrying
//! `POST`, `PUT`, `PATCH` and `DELETE` is held to, before its session is even looked up.
//!
//! A request is refused when `Sec-Fetch-Site` says `cross-site`, or `same-site` without an
//! `Origin` the app trusts (a sibling subdomain is same-site but not ours), or when an
//! `Origin` header names another origin than the app's own (its configured public origin,
//! else the request's `Host`) or one it trusts. An opaque `Origin: null` passes only with
//! `Sec-Fetch-Site: same-origin` (a form on a `no-referrer` page). A request with neither header (old
//! browsers, non-browser clients) passes: the HTML forms also carry a CSRF token, and the
//! session cookie is `SameSite=Lax`.

use crate::gate::RequestHead;

/// The origins a gate accepts state changes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Origins {
    /// The app's own origin (`scheme://host[:port]`, lowercase), when configured.
    pub(crate) own: Option<String>,
    /// Other origins the app trusts.
    pub(crate) trusted: Vec<String>,
}

/// Lowercases an origin and drops a trailing slash; `None` unless it is
/// `scheme://authority` with nothing after the authority.
pub(crate) fn normalize(origin: &str) -> Option<String> {
    let origin = origin.trim().trim_end_matches('/');
    let (scheme, authority) = origin.split_once("://")?;
    let valid = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !authority.is_empty()
        && !authority.contains(['/', '?', '#', '@', ' ']);
    valid.then(|| origin.to_ascii_lowercase())
}

impl Origins {
    fn trusts(&self, origin: &[u8], req: &impl RequestHead) -> bool {
        let Ok(origin) = std::str::from_utf8(origin) else {
            return false;
        };
        let origin = origin.trim();
        if self.trusted.iter().any(|t| t.eq_ignore_ascii_case(origin)) {
            return true;
        }
        match &self.own {
            Some(own) => own.eq_ignore_ascii_case(origin),
            None => {
                // Without a configured origin: the request's own host, any scheme.
                let Some((_, authority)) = origin.split_once("://") else {
                    return false;
                };
                req.authority()
                    .is_some_and(|host| host.eq_ignore_ascii_case(authority.as_bytes()))
            }
        }
    }

    /// Whether `req`, which changes state, comes from another site.
    pub(crate) fn is_cross_site(&self, req: &impl RequestHead) -> bool {
        let origin = req.first_header("origin");
        let fetch_site = req.first_header("sec-fetch-site");
        match fetch_site {
            Some(b"cross-site") => return true,
            Some(b"same-site") if origin.is_none() => return true,
            _ => {}
        }
        if origin == Some(b"null".as_slice()) {
            // An opaque origin names no one: browsers send it for a form posted from a page
            // whose `Referrer-Policy` is `no-referrer` (ours), and from sandboxed frames and
            // `data:` documents. Only the browser's own word lets it through.
            return fetch_site != Some(b"same-origin".as_slice());
        }
        origin.is_some_and(|o| !self.trusts(o, req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)]) -> http::Request<()> {
        let mut b = http::Request::post("/x");
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn the_cross_site_rule() {
        let by_host = Origins::default();
        let configured = Origins {
            own: normalize("https://app.example"),
            trusted: vec![normalize("https://admin.example").unwrap()],
        };
        let host = ("host", "app.example");
        /// Headers, then whether the request is cross-site by host, and by configuration.
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, bool);
        let cases: [Case<'_>; 13] = [
            (&[host], false, false),
            (&[host, ("sec-fetch-site", "same-origin")], false, false),
            (&[host, ("sec-fetch-site", "none")], false, false),
            (&[host, ("sec-fetch-site", "cross-site")], true, true),
            (&[host, ("sec-fetch-site", "same-site")], true, true),
            (
                &[
                    host,
                    ("sec-fetch-site", "same-site"),
                    ("origin", "https://admin.example"),
                ],
                true,
                false,
            ),
            (&[host, ("origin", "https://app.example")], false, false),
            (&[host, ("origin", "https://evil.example")], true, true),
            (&[host, ("origin", "null")], true, true),
            // A form posted from our own no-referrer page: `Origin: null`, same-origin.
            (
                &[host, ("origin", "null"), ("sec-fetch-site", "same-origin")],
                false,
                false,
            ),
            (
                &[host, ("origin", "null"), ("sec-fetch-site", "cross-site")],
                true,
                true,
            ),
            (
                &[host, ("origin", "null"), ("sec-fetch-site", "none")],
                true,
                true,
            ),
            (&[host, ("origin", "http://app.example")], false, true),
        ];
        for (headers, cross_by_host, cross_configured) in cases {
            let req = post(headers);
            assert_eq!(by_host.is_cross_site(&req), cross_by_host, "{headers:?}");
            assert_eq!(
                configured.is_cross_site(&req),
                cross_configured,
                "{headers:?}"
            );
        }
    }

    #[test]
    fn origins_normalize() {
        assert_eq!(
            normalize("HTTPS://App.Example:8443/").as_deref(),
            Some("https://app.example:8443")
        );
        for bad in ["", "app.example", "https://", "https://a/b", "https://u@a"] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }
}
