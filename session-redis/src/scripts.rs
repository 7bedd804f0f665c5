//! The Lua scripts (in `src/lua/`), each one atomic `EVALSHA` on one shard.
//!
//! Every key a script touches carries the hash tag of one shard, so the script runs on the
//! one node that holds that shard in Redis Cluster. The keys a script knows before it runs
//! are in `KEYS`; the records it reaches through an index (same tag, same slot) are named
//! from the tag passed in `ARGV`.
//!
//! Scripts that change sessions share `prelude.lua` and run in two phases: every check
//! that can fail (wrong key types, missing or corrupt data, the conditions of the
//! operation) before the first write, then the writes, with the events in the same script.
//! Redis does not undo a script that fails half way, so none may. Each script declares
//! itself with a shebang (`#!lua`), so Redis refuses a writing script up front when it is
//! out of memory (rather than at a write), and lets the read-only ones
//! (`flags=no-writes`) run whatever the memory.

use std::sync::LazyLock;

use redis::Script;

const PRELUDE: &str = include_str!("lua/prelude.lua");

fn writer(body: &str) -> Script {
    Script::new(&format!("#!lua\n{PRELUDE}\n{body}"))
}

fn reader(body: &str) -> Script {
    Script::new(&format!("#!lua flags=no-writes\n{PRELUDE}\n{body}"))
}

/// The compiled scripts (their SHA1s are computed once).
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) touch: Script,
    pub(crate) revoke: Script,
    pub(crate) revoke_many: Script,
    pub(crate) revoke_matching: Script,
    pub(crate) report_expired: Script,
    pub(crate) append_event: Script,
    pub(crate) audit: Script,
    pub(crate) last_id: Script,
    pub(crate) read_log: Script,
    pub(crate) purge_sessions: Script,
    pub(crate) purge_events: Script,
    pub(crate) lease: Script,
    pub(crate) release: Script,
}

impl Scripts {
    /// Every script, to load them all when connecting.
    pub(crate) fn all(&self) -> [&Script; 14] {
        [
            &self.create,
            &self.touch,
            &self.revoke,
            &self.revoke_many,
            &self.revoke_matching,
            &self.report_expired,
            &self.append_event,
            &self.audit,
            &self.last_id,
            &self.read_log,
            &self.purge_sessions,
            &self.purge_events,
            &self.lease,
            &self.release,
        ]
    }
}

/// The scripts, built on first use.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create: writer(include_str!("lua/create.lua")),
    touch: writer(include_str!("lua/touch.lua")),
    revoke: writer(include_str!("lua/revoke.lua")),
    revoke_many: writer(include_str!("lua/revoke_many.lua")),
    revoke_matching: writer(include_str!("lua/revoke_matching.lua")),
    report_expired: writer(include_str!("lua/report_expired.lua")),
    append_event: writer(include_str!("lua/append_event.lua")),
    audit: reader(include_str!("lua/audit.lua")),
    last_id: reader(include_str!("lua/last_id.lua")),
    read_log: writer(include_str!("lua/read_log.lua")),
    purge_sessions: writer(include_str!("lua/purge_sessions.lua")),
    purge_events: writer(include_str!("lua/purge_events.lua")),
    lease: writer(include_str!("lua/lease.lua")),
    release: writer(include_str!("lua/release.lua")),
});
