//! Harness for the black-box conformance suite: start an example app on port 0 and talk
//! to it the way a browser would.
//!
//! [`App::spawn`] finds the example binary (`axum-app`, `actix-app`) next to the test
//! executable, running `cargo build -p NAME` first (once per test process, a no-op when
//! it is fresh, so a stale binary is never tested; see [`ensure_built`]), starts it on
//! `127.0.0.1:0` with `SESSION_COOKIE_SECURE=false`, and waits for its
//! `listening on http://ADDR` line. [`Browser`] is a reqwest client with redirects off and
//! no cookie store: it keeps the session cookie itself, so a test sees every raw
//! `Set-Cookie` an answer carried, and can replay a cookie the app asked it to delete.
//! While [`record_exchanges`] is on, every answer any browser receives is also logged, for
//! checks over a whole walk ([`take_exchanges`]; the OpenAPI schema test uses it).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() {
//! use session_conformance::App;
//!
//! let app = App::spawn("axum-app", &[]);
//! let mut browser = app.browser("conformance-test/1.0");
//! let reply = browser.login("alice", "alice-password").await;
//! assert_eq!(reply.status.as_u16(), 303);
//! assert_eq!(browser.get("/me").await.status.as_u16(), 200);
//! # }
//! ```

mod browser;
mod cookie;
mod in_process;
mod process;
mod services;

/// The README's quick starts, compiled as doctests so they cannot rot.
#[doc = include_str!("../../README.md")]
mod readme {}

/// The events guide's receiver, compiled the same way.
#[doc = include_str!("../../docs/events.md")]
mod events_guide {}

/// The operators' guide's Redis settings, compiled the same way.
#[doc = include_str!("../../docs/operating.md")]
mod operating_guide {}

pub use browser::{BROWSER_ACCEPT, Browser, Exchange, Reply, record_exchanges, take_exchanges};
pub use cookie::{COOKIE_NAME, SECURE_COOKIE_NAME, SetCookie, is_session_cookie};
pub use in_process::Framework;
pub use process::{App, READY_MARKER, READY_TIMEOUT, Target, ensure_built, parse_ready_line};
pub use services::fresh_redis_db;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn ready_line_address_is_parsed() {
        assert_eq!(
            parse_ready_line("listening on http://127.0.0.1:43121"),
            Some("127.0.0.1:43121")
        );
        assert_eq!(
            parse_ready_line(
                "2025-01-01T00:00:00Z  INFO axum_app: listening on http://127.0.0.1:5/ now"
            ),
            Some("127.0.0.1:5")
        );
        assert_eq!(
            parse_ready_line("listening on http://[::1]:8080."),
            Some("[::1]:8080")
        );
        assert_eq!(parse_ready_line("starting"), None);
        assert_eq!(parse_ready_line("listening on http://"), None);
    }

    #[test]
    fn deleting_cookie_is_parsed() {
        let c = SetCookie::parse(
            "session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert_eq!(c.name, "session");
        assert_eq!(c.value, "");
        assert_eq!(c.attr("path"), Some("/"));
        assert_eq!(c.attr("Max-Age"), Some("0"));
        assert_eq!(c.attr("httponly"), Some(""));
        assert!(!c.has("secure"));
        assert_eq!(c.expires(), Some(SystemTime::UNIX_EPOCH));
        assert_eq!(
            c.attribute_names(),
            ["expires", "httponly", "max-age", "path", "samesite"]
        );
    }

    #[test]
    fn cookie_value_may_contain_equals() {
        let c = SetCookie::parse("session=abc==; Secure");
        assert_eq!(c.value, "abc==");
        assert!(c.has("Secure"));
    }
}
