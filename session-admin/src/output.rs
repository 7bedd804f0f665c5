//! What the commands print: aligned tables for people, JSON for scripts.
//!
//! Text that came from clients (user agents, agent names, user ids) is printed with its
//! control characters replaced by `?`, so a crafted `User-Agent` cannot move the cursor
//! or retitle the operator's terminal. JSON escapes them anyway.

use serde::Serialize;
use session_core::SessionEvent;
use session_core::model::SessionRecord;
use time::OffsetDateTime;
use time::macros::format_description;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// A time as the tables show it: `2026-12-07 10:00:00` (UTC; the header says so).
#[must_use]
pub fn time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// A time as JSON carries it: RFC 3339 in UTC, as the HTTP API does.
#[must_use]
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// `text` safe for a terminal: control characters become `?`.
#[must_use]
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `text` cut to at most `width` columns, ending in `…` when cut.
#[must_use]
pub fn cut(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// A table: a header row and rows of cells, columns aligned, two spaces apart. One
/// column may be named the one to cut when the table is wider than the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    elastic: Option<usize>,
}

/// The narrowest an elastic column is cut to.
const MIN_ELASTIC: usize = 12;

impl Table {
    /// A table with these column headers.
    #[must_use]
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
            elastic: None,
        }
    }

    /// Names the column (by index) that is cut when the table is too wide.
    #[must_use]
    pub fn elastic(mut self, column: usize) -> Self {
        self.elastic = Some(column);
        self
    }

    /// Adds a row; its cells are made [`printable`]. Missing cells are blank, extra ones
    /// dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.iter().map(|c| printable(c)).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// How many rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it has no row.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The columns' widths, the elastic one cut so the whole fits in `max_width` (when
    /// given and possible).
    fn widths(&self, max_width: Option<usize>) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.width());
            }
        }
        if let (Some(max), Some(e)) = (max_width, self.elastic) {
            let gaps = 2 * widths.len().saturating_sub(1);
            let others: usize = widths
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != e)
                .map(|(_, w)| w)
                .sum();
            let room = max.saturating_sub(others + gaps);
            let floor = MIN_ELASTIC.max(self.headers[e].width());
            widths[e] = widths[e].min(room.max(floor));
        }
        widths
    }

    /// The table as text, one line per row after the header, each ending in `\n`; no
    /// trailing spaces. With `max_width`, the elastic column is cut to fit it.
    #[must_use]
    pub fn render(&self, max_width: Option<usize>) -> String {
        let widths = self.widths(max_width);
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            self.line(&mut out, row, &widths);
        }
        out
    }

    /// One row as text with the given widths (for a table printed a row at a time, as
    /// `events tail --follow` does), ending in `\n`.
    #[must_use]
    pub fn render_row(&self, row: &[String], widths: &[usize]) -> String {
        let mut out = String::new();
        self.line(&mut out, row, widths);
        out
    }

    /// The widths [`Table::render`] would use, for [`Table::render_row`].
    #[must_use]
    pub fn column_widths(&self, max_width: Option<usize>) -> Vec<usize> {
        self.widths(max_width)
    }

    /// The rows' cells.
    #[must_use]
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// The header row.
    #[must_use]
    pub fn header(&self) -> Vec<String> {
        self.headers.iter().map(|h| (*h).to_owned()).collect()
    }

    fn line(&self, out: &mut String, row: &[String], widths: &[usize]) {
        let last = widths.len().saturating_sub(1);
        let mut line = String::new();
        for (i, (cell, &w)) in row.iter().zip(widths).enumerate() {
            let cell = if Some(i) == self.elastic {
                cut(cell, w)
            } else {
                cell.clone()
            };
            line.push_str(&cell);
            if i < last {
                let pad = w.saturating_sub(cell.width()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// `-` for nothing.
fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

/// One session, as `sessions list --json` prints it: the admin API's view of a session
/// (`GET /admin/users/{user_id}/sessions`) with the user and agent ids beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionView {
    /// The session's id.
    pub id: String,
    /// Whose (for an agent, the user it acts for).
    pub user_id: String,
    /// `user` or `agent`.
    pub kind: &'static str,
    /// The agent's id, for agent sessions.
    pub agent_id: Option<String>,
    /// The agent's name, for agent sessions.
    pub agent_name: Option<String>,
    /// The client IP it was issued to.
    pub ip: Option<String>,
    /// The `User-Agent` it was issued to.
    pub user_agent: Option<String>,
    /// Issued at (RFC 3339, UTC).
    pub created_at: String,
    /// Last used at, as the store knows it (RFC 3339, UTC).
    pub last_active_at: String,
    /// Ends at, at the latest (RFC 3339, UTC).
    pub expires_at: String,
}

impl SessionView {
    /// The view of `record`.
    #[must_use]
    pub fn new(record: &SessionRecord) -> Self {
        Self {
            id: record.id.to_string(),
            user_id: record.user_id().to_string(),
            kind: record.kind().as_str(),
            agent_id: record.principal.agent_id().map(ToString::to_string),
            agent_name: record.principal.agent_name().map(str::to_owned),
            ip: record.ip.clone(),
            user_agent: record.user_agent.clone(),
            created_at: rfc3339(record.created_at),
            last_active_at: rfc3339(record.last_active_at),
            expires_at: rfc3339(record.expires_at),
        }
    }
}

/// The sessions table: id, user, kind, agent name, IP, user agent (cut to fit), created,
/// last active.
#[must_use]
pub fn sessions_table(records: &[SessionRecord]) -> Table {
    let mut table = Table::new(&[
        "ID",
        "USER",
        "KIND",
        "AGENT",
        "IP",
        "USER AGENT",
        "CREATED (UTC)",
        "LAST ACTIVE (UTC)",
    ])
    .elastic(5);
    for r in records {
        table.row(vec![
            r.id.to_string(),
            r.user_id().to_string(),
            r.kind().as_str().to_owned(),
            or_dash(r.principal.agent_name()),
            or_dash(r.ip.as_deref()),
            or_dash(r.user_agent.as_deref()),
            time(r.created_at),
            time(r.last_active_at),
        ]);
    }
    table
}

/// The events table: id, time, type, user, kind, agent, session, reason, actor.
#[must_use]
pub fn events_table(events: &[SessionEvent]) -> Table {
    let mut table = Table::new(&[
        "EVENT",
        "TIME (UTC)",
        "TYPE",
        "USER",
        "KIND",
        "AGENT",
        "SESSION",
        "REASON",
        "ACTOR",
    ]);
    for e in events {
        table.row(event_row(e));
    }
    table
}

/// One event's cells in [`events_table`].
#[must_use]
pub fn event_row(e: &SessionEvent) -> Vec<String> {
    vec![
        e.id.to_string(),
        time(e.occurred_at),
        e.event_type.as_str().to_owned(),
        e.user_id.to_string(),
        e.session_kind.as_str().to_owned(),
        or_dash(e.agent_id.as_ref().map(|a| a.as_str())),
        e.session_id.to_string(),
        or_dash(e.reason.as_ref().map(|r| r.as_str())),
        e.actor.as_str().to_owned(),
    ]
}

/// What `purge --json` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PurgedView {
    /// Session records deleted.
    pub sessions: u64,
    /// Events deleted.
    pub events: u64,
}

/// `value` as one pretty-printed JSON document, ending in `\n`.
#[must_use]
pub fn json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    s.push('\n');
    s
}

/// `value` as one JSON line (for streams: `events tail --follow --json`).
#[must_use]
pub fn json_line<T: Serialize + ?Sized>(value: &T) -> String {
    let mut s = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
    s.push('\n');
    s
}

/// `1 session`, `3 sessions`.
#[must_use]
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_cut_the_elastic_column() {
        let mut t = Table::new(&["ID", "UA", "WHEN"]).elastic(1);
        t.row(vec![
            "1".into(),
            "Mozilla/5.0 (X11; Linux x86_64)".into(),
            "x".into(),
        ]);
        t.row(vec!["22".into(), "curl/8\u{1b}[2J".into(), "y".into()]);
        let full = t.render(None);
        assert_eq!(
            full,
            "ID  UA                               WHEN\n\
             1   Mozilla/5.0 (X11; Linux x86_64)  x\n\
             22  curl/8?[2J                       y\n"
        );
        let narrow = t.render(Some(24));
        assert_eq!(
            narrow,
            "ID  UA              WHEN\n\
             1   Mozilla/5.0 (…  x\n\
             22  curl/8?[2J      y\n"
        );
        assert!(narrow.lines().all(|l| l.width() <= 24));
        assert_eq!(cut("héllo wörld", 6), "héllo…");
        assert_eq!(cut("short", 6), "short");
    }

    #[test]
    fn times_and_counts() {
        let at = time::macros::datetime!(2026-12-07 10:00:00.25 +01:00);
        assert_eq!(time(at), "2026-12-07 09:00:00");
        assert_eq!(rfc3339(at), "2026-12-07T09:00:00.25Z");
        assert_eq!(count(1u64, "session", "sessions"), "1 session");
        assert_eq!(count(0u64, "session", "sessions"), "0 sessions");
    }
}
