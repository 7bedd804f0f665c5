//! The command line (feature `cli`): the arguments ([`Cli`], clap), [`run`], which checks
//! every value before it connects, then calls [`Admin`] and prints; the confirmation
//! prompt and the progress display.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use session_core::store::Retention;
use session_core::{EventId, RevocationReason, SessionFilter, UserId};
use time::OffsetDateTime;

use crate::connect::{ConnectError, ConnectOptions, SHARED, StoreUrl};
use crate::error::Error;
use crate::ops::{Admin, AdminOptions, EventsPage};
use crate::output;
use crate::parse;

const ABOUT: &str = "Operate revocable sessions: list and revoke them, sign everyone out, tail the event log, audit a user, purge.";

const LONG_ABOUT: &str = "\
Operate revocable sessions in the store your services share: list and revoke them, sign
everyone out, tail the event log, audit a user, purge old records.

The store is the URL the services use (--store or SESSION_STORE): sqlite://PATH,
redis://HOST:PORT[/DB], rediss://… (TLS), postgres://USER@HOST/DB. Revoking needs the
deployment's keys (--keys or SESSION_KEYS): every revocation is published on the store's
push channel, signed with them, so running nodes drop the session at once; read-only
commands and purge work without. Every change is recorded with actor `admin`.

Tables are for people; --json prints one JSON document (JSON lines for `events tail
--follow`). Exit status: 0 done; 1 nothing done (the session was not active, or the
confirmation was declined); 2 error (one line on stderr).";

const EXAMPLES: &str = "\
Examples:
  export SESSION_STORE=postgres://admin@db.internal/app SESSION_KEYS=…
  session-admin sessions list --user alice
  session-admin sessions revoke 0b5e3c2a-8d4f-4e0b-9a51-7c1d2e3f4a5b
  session-admin sessions revoke-all --user alice --reason account_deleted
  session-admin sessions revoke-matching --ip 203.0.113.0/24 --created-before 2h --dry-run
  session-admin sign-out-everyone
  session-admin events tail --follow --type session.revoked
  session-admin audit --user alice --limit 20
  session-admin purge --json";

/// The heading of the options every command takes.
const GLOBAL: &str = "Store and output (any command)";

/// `session-admin`: the arguments.
#[derive(Parser)]
#[command(
    name = "session-admin",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = "Run `session-admin help COMMAND` for a command's options.",
    after_long_help = EXAMPLES
)]
pub struct Cli {
    /// The sessions' store: sqlite://PATH, redis://HOST:PORT[/DB], rediss://…,
    /// postgres://USER@HOST/DB (its password is never printed)
    #[arg(
        long,
        env = "SESSION_STORE",
        hide_env_values = true,
        value_name = "URL",
        global = true,
        help_heading = GLOBAL
    )]
    pub store: Option<String>,

    /// The deployment's token keys, as SESSION_KEYS: comma-separated base64url, the first
    /// signs. Needed to revoke. Prefer the variable: arguments show in `ps`
    #[arg(
        long,
        env = "SESSION_KEYS",
        hide_env_values = true,
        value_name = "KEYS",
        global = true,
        help_heading = GLOBAL
    )]
    pub keys: Option<String>,

    /// Print JSON for scripts instead of tables and sentences
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Seconds to wait for the store, to connect and for each call (bulk operations may
    /// take 30 times as long)
    #[arg(
        long,
        value_name = "SECS",
        default_value = "5",
        global = true,
        help_heading = GLOBAL
    )]
    pub timeout: String,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl fmt::Debug for Cli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let store = self.store.as_deref().map(|s| {
            StoreUrl::parse(s).map_or_else(|_| "(unparsed)".to_owned(), |u| u.to_string())
        });
        f.debug_struct("Cli")
            .field("store", &store)
            .field("keys", &self.keys.as_ref().map(|_| "[redacted]"))
            .field("json", &self.json)
            .field("timeout", &self.timeout)
            .field("command", &self.command)
            .finish()
    }
}

impl Cli {
    /// What must never be printed: the store URL's password and the keys. The binary's
    /// error line and log output mask them ([`crate::connect::mask`]).
    #[must_use]
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = self
            .store
            .as_deref()
            .and_then(|s| StoreUrl::parse(s).ok())
            .map(|u| u.secrets())
            .unwrap_or_default();
        if let Some(keys) = &self.keys {
            secrets.push(keys.clone());
            secrets.extend(
                keys.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned),
            );
        }
        secrets
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a user's sessions; revoke one, a user's, or those matching a filter
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Revoke every active session of every user, in one store operation (asks first)
    SignOutEveryone(SignOutEveryone),
    /// Read the event log
    #[command(subcommand)]
    Events(EventsCommand),
    /// A user's events, newest first
    Audit(Audit),
    /// Delete ended (revoked or expired) sessions and old events past their retention
    Purge(Purge),
    /// Session keys (SESSION_KEYS)
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random 256-bit key, base64url, for SESSION_KEYS (no store needed). To
    /// rotate, put it first: SESSION_KEYS=NEW,OLD
    Generate,
}

/// `sessions …`.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// A user's live sessions, user and agent, newest first
    List(List),
    /// Revoke one session by id
    Revoke(Revoke),
    /// Revoke all of a user's sessions and agents, in one store operation
    RevokeAll(RevokeAll),
    /// Revoke every active session, of any user, matching all the filters given, in one
    /// store operation
    RevokeMatching(RevokeMatching),
}

/// `sessions list`.
#[derive(Debug, Args)]
pub struct List {
    /// Whose sessions
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// At most this many
    #[arg(long, default_value_t = 500)]
    pub limit: usize,
}

/// `sessions revoke`.
#[derive(Debug, Args)]
pub struct Revoke {
    /// The session's id (a UUID, as `sessions list` shows)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Why, as recorded in the event
    #[arg(long, default_value = "admin_revoked")]
    pub reason: String,
}

/// `sessions revoke-all`.
#[derive(Debug, Args)]
pub struct RevokeAll {
    /// Whose sessions
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// Why, as recorded in the events (password_reset, account_deleted, …)
    #[arg(long, default_value = "admin_revoked")]
    pub reason: String,
}

/// `sessions revoke-matching`.
#[derive(Debug, Args)]
pub struct RevokeMatching {
    /// Issued before this time: 2026-12-01T08:00:00Z, 2026-12-01 (UTC midnight), or a
    /// duration ago: 30m, 12h, 7d
    #[arg(long, value_name = "TIME")]
    pub created_before: Option<String>,
    /// Issued to a client in this network: 203.0.113.0/24, 2001:db8::/32, or one address
    #[arg(long, value_name = "CIDR")]
    pub ip: Option<String>,
    /// Whose User-Agent contains this text (case-sensitive)
    #[arg(long, value_name = "TEXT")]
    pub user_agent: Option<String>,
    /// Only user sessions, or only agents': user or agent
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Count the matching sessions, revoke nothing (needs no keys)
    #[arg(long)]
    pub dry_run: bool,
    /// Why, as recorded in the events
    #[arg(long, default_value = "risk_detected")]
    pub reason: String,
}

/// `sign-out-everyone`.
#[derive(Debug, Args)]
pub struct SignOutEveryone {
    /// Do not ask (needed when not on a terminal)
    #[arg(long, short)]
    pub yes: bool,
    /// Why, as recorded in the events
    #[arg(long, default_value = "admin_revoked")]
    pub reason: String,
}

/// `events …`.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// The end of the log, oldest first; with --follow, then every new event as it comes
    Tail(Tail),
}

/// `events tail`.
#[derive(Debug, Args)]
pub struct Tail {
    /// Keep polling for new events until Ctrl-C
    #[arg(long, short)]
    pub follow: bool,
    /// Only events of this type: session.created, session.revoked, session.expired,
    /// session.suspicious
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
    /// How many events: the last N of the log (default 20); with --after, the first N
    /// after the cursor (default all)
    #[arg(long, short = 'n', value_name = "N")]
    pub lines: Option<usize>,
    /// Start after this event id (the `next_cursor` of an earlier --json run) instead of
    /// at the end
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    /// With --follow, seconds between polls
    #[arg(long, value_name = "SECS", default_value = "1")]
    pub interval: String,
}

/// `audit`.
#[derive(Debug, Args)]
pub struct Audit {
    /// Whose events
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// At most this many (up to 1000)
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Only events before this id (the previous page's `next_cursor`)
    #[arg(long, value_name = "CURSOR")]
    pub before: Option<String>,
}

/// `purge`.
#[derive(Debug, Args)]
pub struct Purge {
    /// Keep ended sessions' records this many days after their end
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    pub keep_sessions: u64,
    /// Keep events this many days
    #[arg(long, value_name = "DAYS", default_value_t = 400)]
    pub keep_events: u64,
}

/// What a command that did not fail came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked (exit status 0).
    Done,
    /// There was nothing to do (the session was not active), or the operator declined
    /// (exit status 1).
    NothingDone,
}

impl Outcome {
    /// 0 or 1.
    #[must_use]
    pub fn exit_status(self) -> u8 {
        match self {
            Self::Done => 0,
            Self::NothingDone => 1,
        }
    }
}

/// A command with its values checked, ready to run.
#[derive(Debug)]
enum Plan {
    List {
        user: UserId,
    },
    Revoke {
        id: session_core::SessionId,
        reason: RevocationReason,
    },
    RevokeAll {
        user: UserId,
        reason: RevocationReason,
    },
    RevokeMatching {
        filter: SessionFilter,
        reason: RevocationReason,
        dry_run: bool,
    },
    SignOutEveryone {
        yes: bool,
        reason: RevocationReason,
    },
    Tail {
        follow: bool,
        event_type: Option<session_core::EventType>,
        lines: Option<usize>,
        after: Option<EventId>,
        interval: Duration,
    },
    Audit {
        user: UserId,
        limit: usize,
        before: Option<EventId>,
    },
    Purge,
}

impl Plan {
    fn revokes(&self) -> bool {
        match self {
            Self::Revoke { .. } | Self::RevokeAll { .. } | Self::SignOutEveryone { .. } => true,
            Self::RevokeMatching { dry_run, .. } => !dry_run,
            _ => false,
        }
    }
}

fn user(text: &str) -> Result<UserId, Error> {
    if text.trim().is_empty() {
        return Err(Error::Usage("--user: a user id".to_owned()));
    }
    Ok(UserId::from(text))
}

fn cursor(option: &str, text: Option<&String>) -> Result<Option<EventId>, Error> {
    match text.map(|t| t.trim()) {
        None => Ok(None),
        Some("") => Err(Error::Usage(format!("{option}: an event id"))),
        Some(t) => Ok(Some(EventId::new(t))),
    }
}

/// The longest retention: 100 years.
const MAX_DAYS: u64 = 100 * 365;

fn days(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(86_400))
}

/// Checks every value of the command (before anything connects), with `now` for
/// relative times.
fn plan(command: &Command, now: OffsetDateTime) -> Result<Plan, Error> {
    Ok(match command {
        Command::Sessions(SessionsCommand::List(a)) => Plan::List {
            user: user(&a.user)?,
        },
        Command::Sessions(SessionsCommand::Revoke(a)) => Plan::Revoke {
            id: parse::session_id(&a.id)?,
            reason: parse::reason(&a.reason)?,
        },
        Command::Sessions(SessionsCommand::RevokeAll(a)) => Plan::RevokeAll {
            user: user(&a.user)?,
            reason: parse::reason(&a.reason)?,
        },
        Command::Sessions(SessionsCommand::RevokeMatching(a)) => {
            let filter = SessionFilter {
                created_before: a
                    .created_before
                    .as_deref()
                    .map(|t| parse::time(t, now))
                    .transpose()?,
                ip: a.ip.as_deref().map(parse::network).transpose()?,
                user_agent: match a.user_agent.as_deref() {
                    Some("") => {
                        return Err(Error::Usage("--user-agent: some text to match".into()));
                    }
                    ua => ua.map(str::to_owned),
                },
                kind: a.kind.as_deref().map(parse::kind).transpose()?,
                ..SessionFilter::default()
            };
            if filter.is_empty() {
                return Err(Error::Usage(
                    "revoke-matching needs at least one of --created-before, --ip, --user-agent, --kind".into(),
                ));
            }
            Plan::RevokeMatching {
                filter,
                reason: parse::reason(&a.reason)?,
                dry_run: a.dry_run,
            }
        }
        Command::SignOutEveryone(a) => Plan::SignOutEveryone {
            yes: a.yes,
            reason: parse::reason(&a.reason)?,
        },
        Command::Events(EventsCommand::Tail(a)) => {
            let interval = parse::timeout(&a.interval)
                .map_err(|_| Error::Usage("--interval: seconds, more than 0".into()))?;
            Plan::Tail {
                follow: a.follow,
                event_type: a.event_type.as_deref().map(parse::event_type).transpose()?,
                lines: a.lines,
                after: cursor("--after", a.after.as_ref())?,
                interval,
            }
        }
        Command::Audit(a) => {
            if a.limit == 0 || a.limit > crate::ops::PAGE {
                return Err(Error::Usage("--limit: between 1 and 1000".into()));
            }
            Plan::Audit {
                user: user(&a.user)?,
                limit: a.limit,
                before: cursor("--before", a.before.as_ref())?,
            }
        }
        Command::Purge(a) => {
            for (option, days) in [
                ("--keep-sessions", a.keep_sessions),
                ("--keep-events", a.keep_events),
            ] {
                if days > MAX_DAYS {
                    return Err(Error::Usage(format!("{option}: at most {MAX_DAYS} days")));
                }
            }
            Plan::Purge
        }
        Command::Keys(_) => return Err(Error::Usage("`keys` needs no store".into())),
    })
}

/// Where a table may be cut to: the terminal's width when stdout is one, else `COLUMNS`
/// when set, else no limit.
fn screen_width() -> Option<usize> {
    if io::stdout().is_terminal()
        && let Some((_, cols)) = console::Term::stdout().size_checked()
    {
        return Some(usize::from(cols));
    }
    std::env::var("COLUMNS").ok()?.trim().parse().ok()
}

/// A spinner on stderr while a bulk operation runs, when stderr is a terminal. One store
/// operation has no steps to count: it shows what runs and for how long.
struct Progress(Option<ProgressBar>);

impl Progress {
    fn start(message: &str) -> Self {
        if !io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        Self(Some(bar))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// Asks on the terminal; `true` for `yes`.
async fn confirm(question: String) -> Result<bool, Error> {
    let answer = tokio::task::spawn_blocking(move || -> io::Result<String> {
        let mut stderr = io::stderr();
        write!(stderr, "{question}")?;
        stderr.flush()?;
        let mut line = String::new();
        io::stdin().read_line(&mut line)?;
        Ok(line)
    })
    .await
    .map_err(|e| Error::Io(io::Error::other(e)))??;
    Ok(answer.trim() == "yes")
}

/// Runs the command: checks the values, the keys and the store URL, connects, does it,
/// and prints to `out` (tables and sentences, or JSON with `--json`). Prompts and
/// progress go to stderr.
///
/// # Errors
///
/// Any [`Error`]; the binary prints it on one line and exits with status 2.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<Outcome, Error> {
    if let Command::Keys(KeysCommand::Generate) = cli.command {
        let key = session_core::KeySet::generate_key();
        if cli.json {
            writeln!(out, "{}", json!({ "key": key }))?;
        } else {
            writeln!(out, "{key}")?;
        }
        return Ok(Outcome::Done);
    }
    let timeout = parse::timeout(&cli.timeout)?;
    let now = OffsetDateTime::now_utc();
    let plan = plan(&cli.command, now)?;
    let keys = match cli.keys.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) if plan.revokes() => Some(parse::keys(k)?),
        Some(_) => None,
        None if plan.revokes() => return Err(Error::KeysRequired),
        None => None,
    };
    if let Plan::SignOutEveryone { yes: false, .. } = plan
        && !io::stdin().is_terminal()
    {
        return Err(Error::Usage(
            "sign-out-everyone revokes every session of every user: run it on a terminal to confirm, or pass --yes".into(),
        ));
    }
    let url = store_url(cli.store.as_deref())?;
    let retention = match &cli.command {
        Command::Purge(p) => Retention {
            sessions: days(p.keep_sessions),
            events: days(p.keep_events),
        },
        _ => Retention::default(),
    };
    let list_limit = match &cli.command {
        Command::Sessions(SessionsCommand::List(l)) => l.limit.max(1),
        _ => AdminOptions::default().list_limit,
    };
    let store = url
        .open(ConnectOptions::new().with_timeout(timeout))
        .await
        .map_err(|source| Error::Connect {
            url: url.to_string(),
            source,
        })?;
    let options = AdminOptions::default()
        .with_timeout(timeout)
        .with_list_limit(list_limit)
        .with_retention(retention);
    let admin = Admin::new(store.into_shared(), keys, options)?;
    execute(&admin, plan, &url, cli.json, out).await
}

/// The store URL from `--store` / `SESSION_STORE`, refusing what the tool cannot reach.
fn store_url(given: Option<&str>) -> Result<StoreUrl, Error> {
    let given = given.map(str::trim).filter(|s| !s.is_empty());
    let url = StoreUrl::parse(given.ok_or(Error::NoStore)?).map_err(|e| {
        Error::Usage(match e {
            ConnectError::UnknownKind(kind) => {
                format!("--store: unknown store kind {kind:?}: use {SHARED}")
            }
            ConnectError::MissingPath => "--store sqlite://PATH: the path is missing".into(),
            _ => format!("--store: not a store URL: use {SHARED}"),
        })
    })?;
    match &url {
        StoreUrl::Memory => Err(Error::Usage(format!(
            "--store memory: that store lives inside each app process, out of this tool's reach; use {SHARED}"
        ))),
        StoreUrl::Sqlite(path) if !path.is_file() => Err(Error::Usage(format!(
            "{url}: no such file (the tool opens an existing store, it does not create one)"
        ))),
        _ => Ok(url),
    }
}

async fn execute(
    admin: &Admin,
    plan: Plan,
    url: &StoreUrl,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome, Error> {
    match plan {
        Plan::List { user } => {
            let sessions = admin.list(&user).await?;
            if json {
                let views: Vec<_> = sessions.iter().map(output::SessionView::new).collect();
                out.write_all(output::json(&views).as_bytes())?;
            } else if sessions.is_empty() {
                writeln!(
                    out,
                    "No live sessions for {}.",
                    output::printable(user.as_str())
                )?;
            } else {
                let table = output::sessions_table(&sessions);
                out.write_all(table.render(screen_width()).as_bytes())?;
            }
        }
        Plan::Revoke { id, reason } => {
            let revoked = admin.revoke(id, reason.clone()).await?;
            if json {
                let doc = json!({ "session_id": id.to_string(), "revoked": revoked });
                out.write_all(output::json(&doc).as_bytes())?;
            } else if revoked {
                writeln!(out, "Revoked session {id} (reason {reason}).")?;
            } else {
                writeln!(
                    out,
                    "Session {id} is not active (unknown, purged or already revoked): nothing revoked."
                )?;
            }
            if !revoked {
                return Ok(Outcome::NothingDone);
            }
        }
        Plan::RevokeAll { user, reason } => {
            let n = admin.revoke_all(&user, reason.clone()).await?;
            if json {
                let doc = json!({ "user_id": user.as_str(), "revoked": n });
                out.write_all(output::json(&doc).as_bytes())?;
            } else {
                writeln!(
                    out,
                    "Revoked {} of {} (reason {reason}).",
                    output::count(n as u64, "session", "sessions"),
                    output::printable(user.as_str())
                )?;
            }
        }
        Plan::RevokeMatching {
            filter,
            reason,
            dry_run,
        } => {
            let matched = {
                let _progress = Progress::start(if dry_run {
                    "counting matching sessions"
                } else {
                    "revoking matching sessions"
                });
                admin
                    .revoke_matching(&filter, reason.clone(), dry_run)
                    .await?
            };
            let revoked = matched.revoked.len() as u64;
            if json {
                let doc = json!({
                    "dry_run": dry_run,
                    "matched": matched.matched,
                    "revoked": revoked,
                });
                out.write_all(output::json(&doc).as_bytes())?;
            } else if dry_run {
                let verb = if matched.matched == 1 {
                    "matches"
                } else {
                    "match"
                };
                writeln!(
                    out,
                    "{} {verb}; nothing revoked (dry run).",
                    output::count(matched.matched, "active session", "active sessions")
                )?;
            } else {
                writeln!(
                    out,
                    "Revoked {} (reason {reason}).",
                    output::count(revoked, "session", "sessions")
                )?;
            }
        }
        Plan::SignOutEveryone { yes, reason } => {
            if !yes {
                let n = admin.count_everyone().await?;
                let question = format!(
                    "This signs out everyone on {url}: {} now, reason {reason}.\nType \"yes\" to go on: ",
                    output::count(n, "active session", "active sessions")
                );
                if !confirm(question).await? {
                    let _ = writeln!(io::stderr(), "Aborted: nothing revoked.");
                    return Ok(Outcome::NothingDone);
                }
            }
            let matched = {
                let _progress = Progress::start("signing everyone out");
                admin.sign_out_everyone(reason.clone()).await?
            };
            let revoked = matched.revoked.len() as u64;
            if json {
                out.write_all(output::json(&json!({ "revoked": revoked })).as_bytes())?;
            } else {
                writeln!(
                    out,
                    "Signed everyone out: revoked {} (reason {reason}).",
                    output::count(revoked, "session", "sessions")
                )?;
            }
        }
        Plan::Tail {
            follow,
            event_type,
            lines,
            after,
            interval,
        } => {
            let page = {
                let _progress = Progress::start("reading the event log");
                match after {
                    Some(after) => admin.events_after(Some(after), lines, event_type).await?,
                    None => admin.tail(lines.unwrap_or(20), event_type).await?,
                }
            };
            if follow {
                follow_log(admin, page, event_type, interval, json, out).await?;
            } else if json {
                out.write_all(output::json(&page).as_bytes())?;
            } else if page.data.is_empty() {
                writeln!(out, "No events.")?;
            } else {
                out.write_all(output::events_table(&page.data).render(None).as_bytes())?;
            }
        }
        Plan::Audit {
            user,
            limit,
            before,
        } => {
            let page = admin.audit(&user, before, limit).await?;
            if json {
                out.write_all(output::json(&page).as_bytes())?;
            } else if page.data.is_empty() {
                writeln!(out, "No events for {}.", output::printable(user.as_str()))?;
            } else {
                out.write_all(output::events_table(&page.data).render(None).as_bytes())?;
                if let (true, Some(next)) = (page.data.len() == limit, &page.next_cursor) {
                    let _ = writeln!(io::stderr(), "Older events: --before {next}");
                }
            }
        }
        Plan::Purge => {
            let purged = {
                let _progress = Progress::start("purging ended sessions and old events");
                admin.purge().await?
            };
            if json {
                let doc = output::PurgedView {
                    sessions: purged.sessions,
                    events: purged.events,
                };
                out.write_all(output::json(&doc).as_bytes())?;
            } else {
                writeln!(
                    out,
                    "Purged {} and {}.",
                    output::count(purged.sessions, "session record", "session records"),
                    output::count(purged.events, "event", "events")
                )?;
            }
        }
    }
    out.flush()?;
    Ok(Outcome::Done)
}

/// The narrowest each column of a followed events table is, so rows printed later line
/// up with the first (ids, users and reasons vary).
const FOLLOW_WIDTHS: [usize; 9] = [20, 19, 18, 12, 5, 8, 36, 20, 6];

/// `events tail --follow`: prints `first`, then polls after its cursor every `interval`
/// until Ctrl-C. A store error while following is reported on stderr and retried.
async fn follow_log(
    admin: &Admin,
    first: EventsPage,
    event_type: Option<session_core::EventType>,
    interval: Duration,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let table = output::events_table(&first.data);
    let widths: Vec<usize> = table
        .column_widths(None)
        .into_iter()
        .zip(FOLLOW_WIDTHS)
        .map(|(w, min)| w.max(min))
        .collect();
    let print = |out: &mut dyn Write, events: &[session_core::SessionEvent]| -> io::Result<()> {
        for e in events {
            let line = if json {
                output::json_line(e)
            } else {
                table.render_row(&output::event_row(e), &widths)
            };
            out.write_all(line.as_bytes())?;
        }
        out.flush()
    };
    if !json {
        out.write_all(table.render_row(&table.header(), &widths).as_bytes())?;
    }
    print(out, &first.data)?;
    let mut cursor = first.next_cursor;
    let mut failing = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
        match admin.events_after(cursor.clone(), None, event_type).await {
            Ok(page) => {
                if failing {
                    let _ = writeln!(io::stderr(), "The store answers again.");
                    failing = false;
                }
                print(out, &page.data)?;
                cursor = page.next_cursor;
            }
            Err(e) => {
                if !failing {
                    let _ = writeln!(io::stderr(), "warning: {}; retrying", e.one_line());
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_arguments_hold_together() {
        Cli::command().debug_assert();
    }

    #[test]
    fn values_are_checked_before_connecting() {
        let now = OffsetDateTime::now_utc();
        let parse = |args: &[&str]| {
            let cli =
                Cli::try_parse_from(std::iter::once("session-admin").chain(args.iter().copied()))
                    .expect("arguments parse");
            plan(&cli.command, now)
        };
        let revoking = parse(&["sessions", "revoke-matching", "--ip", "10.0.0.0/8"]).unwrap();
        assert!(revoking.revokes());
        let dry = parse(&[
            "sessions",
            "revoke-matching",
            "--kind",
            "agent",
            "--dry-run",
        ])
        .unwrap();
        assert!(!dry.revokes());
        for (args, says) in [
            (&["sessions", "revoke-matching"][..], "at least one"),
            (
                &["sessions", "revoke-matching", "--ip", "10.0.0.0/33"],
                "--ip",
            ),
            (
                &["sessions", "revoke-matching", "--created-before", "soon"],
                "--created-before",
            ),
            (
                &["sessions", "revoke-matching", "--kind", "robot"],
                "--kind",
            ),
            (&["sessions", "revoke", "nope"], "session id"),
            (&["events", "tail", "--type", "login"], "--type"),
            (&["audit", "--user", "a", "--limit", "0"], "--limit"),
            (
                &["purge", "--keep-events", "99999"],
                "--keep-events: at most 36500 days",
            ),
        ] {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.contains(says), "{args:?}: {err}");
        }
        assert!(parse(&["sign-out-everyone"]).unwrap().revokes());
        assert!(!parse(&["purge"]).unwrap().revokes());
    }

    #[test]
    fn debug_and_secrets_hold_no_secret() {
        let cli = Cli::try_parse_from([
            "session-admin",
            "--store",
            "redis://:hunter2@127.0.0.1:6379/4",
            "--keys",
            "a2V5LW9uZS1rZXktb25lLWtleS1vbmUta2V5LW9uZS0x,a2V5LXR3by1rZXktdHdvLWtleS10d28ta2V5LXR3by0y",
            "purge",
        ])
        .unwrap();
        let debug = format!("{cli:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("a2V5"),
            "{debug}"
        );
        let secrets = cli.secrets();
        assert!(secrets.iter().any(|s| s == "hunter2"));
        assert!(secrets.iter().any(|s| s.starts_with("a2V5LXR3")));
    }
}
