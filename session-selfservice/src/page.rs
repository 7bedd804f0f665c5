//! The ready-made HTML sessions page (`GET /account/sessions`) and its form actions.
//!
//! Plain HTML forms that work without JavaScript. Every form carries a CSRF token bound to
//! the session ([`csrf`](crate::csrf)), checked server-side, and POSTs from another origin
//! are refused by the gate before the token is even looked at. The actions run the same
//! operations as the JSON routes. All text is escaped (maud): a user agent of `<script>`
//! shows as text.

use http::header::SET_COOKIE;
use http::{Method, StatusCode};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use session_core::{Reply, Session, SessionKind, SessionRecord};
use time::OffsetDateTime;

use crate::device::describe;
use crate::selfservice::SelfService;
use crate::table::{Access, Call, RouteTable};

/// What a form on the page asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageAction {
    /// Sign out one session (the one in [`PageForm::session_id`]).
    Revoke,
    /// Sign out of all other sessions (agents stay).
    RevokeOthers,
    /// Sign out everywhere, agents and this session included.
    RevokeAll,
}

/// The fields of the page's forms.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct PageForm {
    /// The CSRF token.
    pub csrf: Option<String>,
    /// The session to sign out (the per-row form).
    pub session_id: Option<String>,
}

fn ago(now: OffsetDateTime, then: OffsetDateTime) -> String {
    let elapsed = std::time::Duration::try_from(now - then).unwrap_or_default();
    if elapsed.as_secs() < 60 {
        return "just now".into();
    }
    let mut f = timeago::Formatter::new();
    f.num_items(1);
    f.convert(elapsed)
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1c2230}
main{max-width:46rem;margin:0 auto;padding:1.25rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
p.lead{color:#4a5163;margin-top:0}
ul.sessions{list-style:none;padding:0;margin:0 0 1.5rem}
li.session{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;justify-content:space-between;background:#fff;border:1px solid #e1e4ea;border-radius:.75rem;padding:1rem;margin-bottom:.75rem}
li.session.current{border-color:#2f6fed;box-shadow:0 0 0 1px #2f6fed inset}
.device{font-weight:600;display:flex;flex-wrap:wrap;align-items:center;gap:.25rem .5rem}
.meta{color:#5b6275;font-size:.9rem}
.meta span{white-space:nowrap}
.badge{display:inline-block;font-size:.75rem;font-weight:600;border-radius:1rem;padding:.1rem .6rem}
p.note{color:#5b6275;font-size:.9rem;margin:.75rem 0 0}
a.back{color:#2456d3}
.badge.this{background:#e3ecff;color:#1f4fc2}
.badge.agent{background:#f1e6ff;color:#6a2bb8}
form{margin:0}
button{font:inherit;border-radius:.5rem;padding:.45rem .9rem;cursor:pointer;border:1px solid #c9ced8;background:#fff;color:#1c2230}
button:hover{background:#f0f2f6}
button.danger{background:#c62f3a;border-color:#c62f3a;color:#fff}
button.danger:hover{background:#a82530}
.actions{display:flex;flex-wrap:wrap;gap:.75rem}
@media (max-width:30rem){li.session{flex-direction:column;align-items:flex-start}li.session form,li.session button{width:100%}.actions form,.actions button{width:100%}}
"#;

impl SelfService {
    /// Adds the page and its form actions to `table`.
    pub(crate) fn page_routes(&self, table: RouteTable) -> RouteTable {
        let page = "/account/sessions";
        let action = |path: &str, id: &'static str, action: PageAction| {
            self.op(
                Method::POST,
                path,
                Access::UserSession,
                id,
                move |d, c| async move { d.page_action(&c, action).await },
            )
            .html()
        };
        table
            .route(
                self.op(
                    Method::GET,
                    page,
                    Access::UserSession,
                    "sessions_page",
                    |d, c| async move { d.page(c.session()).await },
                )
                .html(),
            )
            .route(action(
                "/account/sessions/revoke",
                "sessions_page_revoke",
                PageAction::Revoke,
            ))
            .route(action(
                "/account/sessions/revoke-others",
                "sessions_page_revoke_others",
                PageAction::RevokeOthers,
            ))
            .route(action(
                "/account/sessions/revoke-all",
                "sessions_page_revoke_all",
                PageAction::RevokeAll,
            ))
    }

    fn csrf_field(&self, session: &Session) -> Markup {
        html! { input type="hidden" name="csrf" value=(crate::csrf::token(self.gate().manager().keys(), session)); }
    }

    fn row(&self, now: OffsetDateTime, rec: &SessionRecord, session: &Session) -> Markup {
        let current = rec.id == session.id();
        let last_active = if current {
            session.last_active_at().max(rec.last_active_at)
        } else {
            rec.last_active_at
        };
        let path = self.page_path();
        html! {
            li.session.current[current] data-session-id=(rec.id) data-kind=(rec.principal.kind().as_str()) {
                div {
                    div.device {
                        @match rec.principal.agent_name() {
                            Some(name) => { (name) span.badge.agent { "Agent" } },
                            None => { (describe(rec.user_agent.as_deref())) },
                        }
                        @if current { span.badge.this { "This device" } }
                    }
                    div.meta {
                        @if let Some(ip) = &rec.ip { span { (ip) } " · " }
                        @if current { span { "Active now" } } @else { span { "Last active " (ago(now, last_active)) } }
                        " · " span { "Signed in " (ago(now, rec.created_at)) }
                    }
                }
                @if !current {
                    form method="post" action=(format!("{path}/revoke")) {
                        (self.csrf_field(session))
                        input type="hidden" name="session_id" value=(rec.id);
                        button type="submit" {
                            @if rec.principal.kind() == SessionKind::Agent { "Disconnect" } @else { "Sign out" }
                        }
                    }
                }
            }
        }
    }

    /// `GET /account/sessions`: the user's sessions as an HTML page.
    pub async fn page(&self, session: &Session) -> Reply {
        let manager = self.gate().manager();
        let mut records = match manager.list(session.user_id()).await {
            Ok(r) => r,
            Err(e) => return self.error(&e),
        };
        // This device first, then newest first.
        records.sort_by_key(|r| r.id != session.id());
        let now = manager.now();
        let path = self.page_path();
        let others = records
            .iter()
            .filter(|r| r.id != session.id() && r.principal.kind() == SessionKind::User)
            .count();
        let body = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "Where you’re signed in" }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    main {
                        h1 { "Where you’re signed in" }
                        p.lead { "Signed in as " strong { (session.user_id()) } ". Sign out any session you don’t recognise." }
                        ul.sessions {
                            @for rec in &records { (self.row(now, rec, session)) }
                        }
                        div.actions {
                            @if others > 0 {
                                form method="post" action=(format!("{path}/revoke-others")) {
                                    (self.csrf_field(session))
                                    button type="submit" { "Sign out of all other sessions" }
                                }
                            }
                            form method="post" action=(format!("{path}/revoke-all")) {
                                (self.csrf_field(session))
                                button.danger type="submit" { "Sign out everywhere" }
                            }
                        }
                        p.note { "“Sign out everywhere” also signs out this device and disconnects your agents." }
                        p.note { a.back href="/" { "Back to the app" } }
                    }
                }
            }
        };
        Reply::html(StatusCode::OK, body.into_string())
    }

    /// A form POST from the page: refused (403, nothing changed) when the CSRF token is
    /// missing or wrong (a cross-site post never gets here: the gate refuses it first);
    /// else the same change as the JSON route and a 303 back to the page (to the login
    /// page, with the cookie cleared, when this session ended).
    pub async fn page_action(&self, call: &Call, action: PageAction) -> Reply {
        let session = call.session();
        let form: PageForm = call.form().unwrap_or_default();
        let token_ok = form
            .csrf
            .as_deref()
            .is_some_and(|t| crate::csrf::verify(self.gate().manager().keys(), session, t));
        if !token_ok {
            tracing::info!(session_id = %session.id(), "refused a session-page form: bad CSRF token");
            let page = html! {
                (DOCTYPE)
                html lang="en" { head { meta charset="utf-8"; title { "Request refused" } }
                body { main { h1 { "Request refused" }
                    p { "This request did not come from the sessions page. Nothing was changed." }
                    p { a href=(self.page_path()) { "Back to your sessions" } } } } }
            };
            return Reply::html(StatusCode::FORBIDDEN, page.into_string());
        }
        let ended_this_one = match action {
            PageAction::Revoke => {
                self.revoke_one(session, form.session_id.as_deref().unwrap_or_default())
                    .await
            }
            PageAction::RevokeOthers => self.revoke_other_sessions(session).await.map(|_| false),
            PageAction::RevokeAll => self.revoke_everywhere(session).await.map(|_| true),
        };
        match ended_this_one {
            Ok(false) => Reply::see_other(&self.page_path()),
            Ok(true) => Reply::see_other(self.login_path())
                .with_header(SET_COOKIE, self.gate().clear_cookie()),
            Err(e) => self.error(&e),
        }
    }
}
