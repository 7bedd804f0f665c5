//! Finding the session token in a request's raw headers, strictly.
//!
//! The session cookie's name is matched byte for byte (no case folding, no percent
//! decoding); two session cookies, two bearer tokens, an empty bearer token, or a token in
//! both the cookie and the `Authorization` header are malformed. Other cookies are not
//! looked at beyond their names, so non-UTF-8 bytes in them do no harm.

/// Where the token came from; decides how a rejection looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// No token at all.
    None,
    /// The session cookie (a rejection clears it).
    Cookie,
    /// `Authorization: Bearer` (a rejection carries `WWW-Authenticate`).
    Bearer,
}

/// What a request presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No token.
    Nothing,
    /// A token to verify.
    Token(TokenSource, &'a [u8]),
    /// Something that cannot be a valid presentation; `TokenSource::Cookie` when a session
    /// cookie was among it (so the rejection clears it).
    Malformed(TokenSource),
}

/// Finds the token among the `Cookie` and `Authorization` header values.
pub fn find_token<'a>(
    cookie_headers: impl Iterator<Item = &'a [u8]>,
    authorization_headers: impl Iterator<Item = &'a [u8]>,
    cookie_name: &[u8],
    accept_bearer: bool,
) -> Presented<'a> {
    let mut cookie = None;
    let mut malformed = false;
    for header in cookie_headers {
        // Pairs split at `;`, found with memchr: the session cookie alone is over a
        // hundred bytes, and this runs on every request.
        let mut rest = Some(header);
        while let Some(remaining) = rest {
            let pair = match memchr::memchr(b';', remaining) {
                Some(i) => {
                    rest = Some(&remaining[i + 1..]);
                    &remaining[..i]
                }
                None => {
                    rest = None;
                    remaining
                }
            };
            let pair = pair.trim_ascii();
            let (name, value) = match memchr::memchr(b'=', pair) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            if name.trim_ascii_end() == cookie_name {
                if cookie.is_some() {
                    malformed = true;
                }
                cookie = Some(value.trim_ascii_start());
            }
        }
    }
    let mut bearer = None;
    if accept_bearer {
        for header in authorization_headers {
            let header = header.trim_ascii();
            let Some(scheme_end) = header.iter().position(|&b| b == b' ') else {
                if header.eq_ignore_ascii_case(b"bearer") {
                    malformed = true; // "Bearer" with no token
                    bearer = Some(&header[header.len()..]);
                }
                continue;
            };
            if !header[..scheme_end].eq_ignore_ascii_case(b"bearer") {
                continue; // another scheme is not ours to judge
            }
            let token = header[scheme_end..].trim_ascii();
            if bearer.is_some() || token.is_empty() || token.iter().any(|&b| b == b' ' || b == b',')
            {
                malformed = true;
            }
            bearer = Some(token);
        }
    }
    match (cookie, bearer) {
        (Some(_), Some(_)) => Presented::Malformed(TokenSource::Cookie),
        (Some(_), None) if malformed => Presented::Malformed(TokenSource::Cookie),
        (None, Some(_)) if malformed => Presented::Malformed(TokenSource::Bearer),
        (Some(token), None) => Presented::Token(TokenSource::Cookie, token),
        (None, Some(token)) => Presented::Token(TokenSource::Bearer, token),
        (None, None) => Presented::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(cookies: &[&'a [u8]], auth: &[&'a [u8]]) -> Presented<'a> {
        find_token(
            cookies.iter().copied(),
            auth.iter().copied(),
            b"session",
            true,
        )
    }

    #[test]
    fn finds_the_cookie_among_others() {
        assert_eq!(
            find(&[b"a=1; session=tok; b=2"], &[]),
            Presented::Token(TokenSource::Cookie, b"tok")
        );
        assert_eq!(
            find(&[b"a=1", b"session=tok"], &[]),
            Presented::Token(TokenSource::Cookie, b"tok")
        );
    }

    #[test]
    fn names_match_byte_exact() {
        assert_eq!(find(&[b"Session=tok"], &[]), Presented::Nothing);
        assert_eq!(find(&[b"sess%69on=tok"], &[]), Presented::Nothing);
        assert_eq!(find(&[b"sessionx=tok"], &[]), Presented::Nothing);
    }

    #[test]
    fn two_session_cookies_are_malformed() {
        assert_eq!(
            find(&[b"session=a; session=b"], &[]),
            Presented::Malformed(TokenSource::Cookie)
        );
        assert_eq!(
            find(&[b"session=a", b"session=a"], &[]),
            Presented::Malformed(TokenSource::Cookie)
        );
    }

    #[test]
    fn non_utf8_elsewhere_is_ignored_and_in_the_value_is_passed_on() {
        assert_eq!(
            find(&[b"x=\xff\xfe; session=tok"], &[]),
            Presented::Token(TokenSource::Cookie, b"tok")
        );
        assert_eq!(
            find(&[b"session=\xff"], &[]),
            Presented::Token(TokenSource::Cookie, b"\xff")
        );
    }

    #[test]
    fn bearer_rules() {
        assert_eq!(
            find(&[], &[b"Bearer tok"]),
            Presented::Token(TokenSource::Bearer, b"tok")
        );
        assert_eq!(
            find(&[], &[b"bearer   tok "]),
            Presented::Token(TokenSource::Bearer, b"tok")
        );
        assert_eq!(find(&[], &[b"Basic abc"]), Presented::Nothing);
        for bad in [&b"Bearer"[..], b"Bearer ", b"Bearer a b", b"Bearer a,b"] {
            assert_eq!(
                find(&[], &[bad]),
                Presented::Malformed(TokenSource::Bearer),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            find(&[], &[b"Bearer a", b"Bearer b"]),
            Presented::Malformed(TokenSource::Bearer)
        );
    }

    #[test]
    fn cookie_and_bearer_together_are_malformed() {
        assert_eq!(
            find(&[b"session=a"], &[b"Bearer a"]),
            Presented::Malformed(TokenSource::Cookie)
        );
    }

    #[test]
    fn bearer_can_be_turned_off() {
        let auth: [&[u8]; 1] = [b"Bearer tok"];
        assert_eq!(
            find_token(std::iter::empty(), auth.into_iter(), b"session", false),
            Presented::Nothing
        );
    }

    /// The cookie scan agrees with a plain `split(';')` reading on many generated headers
    /// made of the characters that matter (separators, spaces, the cookie's name).
    #[test]
    fn cookie_scan_agrees_with_a_plain_split() {
        fn reference(header: &[u8]) -> Presented<'_> {
            let mut cookie = None;
            let mut twice = false;
            for pair in header.split(|&b| b == b';') {
                let pair = pair.trim_ascii();
                let (name, value) = match pair.iter().position(|&b| b == b'=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &pair[pair.len()..]),
                };
                if name.trim_ascii_end() == b"session" {
                    twice |= cookie.is_some();
                    cookie = Some(value.trim_ascii_start());
                }
            }
            match cookie {
                Some(_) if twice => Presented::Malformed(TokenSource::Cookie),
                Some(token) => Presented::Token(TokenSource::Cookie, token),
                None => Presented::Nothing,
            }
        }
        let pieces: [&[u8]; 8] = [b"session", b"=", b";", b" ", b"a", b"sess", b"ion", b"x=1"];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut header = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bits = seed;
            for _ in 0..(seed % 12) {
                header.extend_from_slice(pieces[(bits % 8) as usize]);
                bits /= 8;
            }
            assert_eq!(
                find(&[&header], &[]),
                reference(&header),
                "{:?}",
                String::from_utf8_lossy(&header)
            );
        }
    }
}
