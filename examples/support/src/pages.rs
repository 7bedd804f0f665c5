//! The demo's own pages: the login form (naming the demo users, and saying why a session
//! ended) and the home page.

use maud::{DOCTYPE, Markup, html};

use crate::users::USERS;

/// Why the login page is shown again, in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Nothing to say.
    None,
    /// A wrong user name or password.
    WrongPassword,
    /// Too many failed attempts.
    Throttled,
    /// The user is deprovisioned.
    Disabled,
    /// The session was revoked (`reason=session_revoked`).
    Revoked,
    /// The session expired (`reason=session_expired`).
    Expired,
    /// Single sign-on failed (a bad or stale callback, or the provider failed).
    SsoFailed,
}

impl Notice {
    /// The notice for a login page's `reason` query parameter (the codes the gate's login
    /// redirect adds).
    #[must_use]
    pub fn from_reason(reason: Option<&str>) -> Self {
        match reason {
            Some("session_revoked") => Self::Revoked,
            Some("session_expired") => Self::Expired,
            _ => Self::None,
        }
    }

    fn text(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Self::None => return None,
            Self::WrongPassword => ("error", "Wrong user name or password."),
            Self::Throttled => (
                "error",
                "Too many failed attempts. Wait a minute, then try again.",
            ),
            Self::Disabled => ("error", "This account is deactivated."),
            Self::SsoFailed => ("error", "Single sign-on failed. Try again."),
            Self::Revoked => (
                "info",
                session_core::sign_in_notice(Some("session_revoked"))?,
            ),
            Self::Expired => (
                "info",
                session_core::sign_in_notice(Some("session_expired"))?,
            ),
        })
    }
}

/// A page in the demo's frame.
#[must_use]
pub fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}\
main{max-width:40rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 4px #0002}\
label{display:block;margin:.75rem 0 .25rem}input{width:100%;padding:.5rem;box-sizing:border-box}\
button,a.button{display:inline-block;margin-top:1rem;padding:.5rem 1rem;border:0;border-radius:.4rem;background:#2456d3;color:#fff;cursor:pointer;text-decoration:none}\
.error{color:#b00020}.info{color:#1f4fc2}.demo{color:#4a5163;font-size:.9rem}";

/// The login form, posting to `/login` with `return_to` (already checked to be local).
#[must_use]
pub fn login_form(return_to: &str, notice: Notice, sso: bool) -> Markup {
    page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if let Some((class, text)) = notice.text() { p class=(class) role="alert" { (text) } }
            form method="post" action="/login" {
                input type="hidden" name="return_to" value=(return_to);
                label for="username" { "User name" }
                input id="username" name="username" autocomplete="username" required;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            @if sso {
                p { a.button href={ "/login/oidc?return_to=" (percent_encoding::utf8_percent_encode(return_to, percent_encoding::NON_ALPHANUMERIC)) } { "Sign in with your identity provider" } }
            }
            p.demo {
                "Demo users: "
                @for (i, user) in USERS.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (user) } " (password " code { (user) "-password" } ")"
                }
                "."
            }
        },
    )
}

/// The home page of a signed-in user.
#[must_use]
pub fn home_page(user: &str) -> Markup {
    page(
        "Home",
        html! {
            h1 { "Hello, " (user) }
            p { a href="/account/sessions" { "Where you are signed in" } }
            form method="post" action="/logout" {
                button type="submit" { "Sign out" }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_form_escapes_return_to_and_names_the_users() {
        let page = login_form("/\"><script>", Notice::None, false).into_string();
        assert!(!page.contains("<script>"));
        assert!(page.contains("&quot;&gt;&lt;script&gt;"));
        for user in USERS {
            assert!(page.contains(&format!("{user}-password")));
        }
    }

    #[test]
    fn reasons_are_said_in_words() {
        let page =
            login_form("/", Notice::from_reason(Some("session_revoked")), false).into_string();
        assert!(page.contains("ended from another device"));
        let page =
            login_form("/", Notice::from_reason(Some("session_expired")), false).into_string();
        assert!(page.contains("Your session expired"));
        let page = login_form("/", Notice::from_reason(Some("<b>")), false).into_string();
        assert!(!page.contains("role=\"alert\""));
    }
}
