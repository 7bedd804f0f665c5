//! Reading the event log: all shards' streams merged in id order without ever skipping an
//! event (`events`), and one user's events from their audit index (`audit`).
//!
//! # Why the reader never skips an event
//!
//! Each shard's stream gives its entries increasing ids, so within a shard an event that
//! commits later always sorts later. Across shards it need not: shard 3 may take an event
//! at `ms = 100` after a reader served shard 5's event at `ms = 105` and moved its cursor
//! past every id below `105`. So a read goes in two steps:
//!
//! 1. It reads every shard's last generated stream id and sets the *barrier* `B` one
//!    millisecond past the greatest.
//! 2. On every shard, one script moves the stream's last id up to `B-0` if it is below
//!    (an entry added and deleted at once), then reads the entries after the cursor and
//!    before `B-0`. From that script on, every event the shard takes gets an id at or past
//!    `B-0`, which sorts after every event served: none can commit behind the cursor.
//!
//! Every event committed before the read began has an id below `B-0` (the barrier is past
//! every stream's last id), so a reader sees its own writes at once. No clock is trusted:
//! stream ids come from each stream's own counter, which Redis keeps increasing even when
//! the server's clock steps back, and the barrier moves the counters of the shards that lag
//! up to the most advanced one. No margin is needed, and a clock step of any size cannot
//! make the reader skip an event. The price: a read writes (at most one entry added and
//! deleted per lagging shard), so it goes to the primaries.

use futures_util::future::try_join_all;
use redis::Value;
use session_core::StoreError;
use session_core::events::{AuditQuery, EventQuery, SessionEvent};

use crate::codec::{self, array, corrupt, string, strings};
use crate::layout::{EventPos, Shard, StreamId};
use crate::scripts::SCRIPTS;
use crate::store::{RedisStore, Retry};

/// The most stream entries one command reads.
const MAX_CHUNK: usize = 1_000;

/// What a read has from one shard so far.
struct ShardRead {
    shard: Shard,
    /// The last stream id read.
    last: Option<StreamId>,
    /// Nothing more before the barrier.
    exhausted: bool,
}

/// The log after `query.after`, oldest first.
pub(crate) async fn events(
    store: &RedisStore,
    query: &EventQuery,
) -> Result<Vec<SessionEvent>, StoreError> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let start = match &query.after {
        None => EventPos::new(0, StreamId::ZERO),
        Some(after) => match EventPos::first_after(after.as_str()) {
            Some(start) => start,
            None => return Ok(Vec::new()),
        },
    };
    let lasts = try_join_all(store.layout.all().map(|shard| last_id(store, shard))).await?;
    let barrier = lasts.iter().map(|id| id.ms).max().unwrap_or(0) + 1;
    let chunk = query.limit.clamp(1, MAX_CHUNK);
    let wanted = |ev: &SessionEvent| query.event_type.is_none_or(|t| ev.event_type == t);

    let mut matches: Vec<(EventPos, SessionEvent)> = Vec::new();
    let mut reads = Vec::new();
    let firsts = try_join_all(
        store
            .layout
            .all()
            .map(|shard| first_read(store, shard, barrier, start.start_in(shard), chunk)),
    )
    .await?;
    for (read, events) in firsts {
        matches.extend(events.into_iter().filter(|(_, ev)| wanted(ev)));
        reads.push(read);
    }
    loop {
        matches.sort_by_key(|(pos, _)| *pos);
        matches.truncate(query.limit);
        // Past the limit-th match, nothing more can make the page.
        let bound = (matches.len() == query.limit).then(|| matches[query.limit - 1].0);
        let pending: Vec<&mut ShardRead> = reads
            .iter_mut()
            .filter(|r| {
                !r.exhausted
                    && bound
                        .is_none_or(|b| r.last.is_none_or(|last| EventPos::new(r.shard, last) < b))
            })
            .collect();
        if pending.is_empty() {
            break;
        }
        let more = try_join_all(
            pending
                .into_iter()
                .map(|read| next_read(store, read, barrier, chunk)),
        )
        .await?;
        matches.extend(more.into_iter().flatten().filter(|(_, ev)| wanted(ev)));
    }
    Ok(matches.into_iter().map(|(_, ev)| ev).collect())
}

async fn last_id(store: &RedisStore, shard: Shard) -> Result<StreamId, StoreError> {
    let mut inv = SCRIPTS.last_id.prepare_invoke();
    inv.key(store.keys(shard).log());
    let id: String = store.eval(Retry::Idempotent, inv).await?;
    StreamId::parse(&id).ok_or_else(|| corrupt(format!("stream id {id:?}")))
}

type Entries = Vec<(EventPos, SessionEvent)>;

/// Sets the shard's barrier and reads its first chunk.
async fn first_read(
    store: &RedisStore,
    shard: Shard,
    barrier: u64,
    from: StreamId,
    chunk: usize,
) -> Result<(ShardRead, Entries), StoreError> {
    let mut inv = SCRIPTS.read_log.prepare_invoke();
    inv.key(store.keys(shard).log())
        .arg(barrier)
        .arg(from.to_string())
        .arg(chunk);
    let entries = array(store.eval(Retry::Idempotent, inv).await?)?;
    let mut read = ShardRead {
        shard,
        last: None,
        exhausted: false,
    };
    let events = decode(&mut read, entries, chunk)?;
    Ok((read, events))
}

/// Reads the shard's next chunk, below the barrier set by [`first_read`].
async fn next_read(
    store: &RedisStore,
    read: &mut ShardRead,
    barrier: u64,
    chunk: usize,
) -> Result<Entries, StoreError> {
    let last = read
        .last
        .ok_or_else(|| corrupt("a shard read on without a position"))?;
    let entries: Value = store
        .query(
            Retry::Idempotent,
            redis::cmd("XRANGE")
                .arg(store.keys(read.shard).log())
                .arg(format!("({last}"))
                .arg(format!("({barrier}-0"))
                .arg("COUNT")
                .arg(chunk)
                .clone(),
        )
        .await?;
    decode(read, array(entries)?, chunk)
}

fn decode(read: &mut ShardRead, entries: Vec<Value>, chunk: usize) -> Result<Entries, StoreError> {
    read.exhausted = entries.len() < chunk;
    let events = entries
        .into_iter()
        .map(|entry| codec::stream_event(read.shard, entry))
        .collect::<Result<Entries, _>>()?;
    if let Some((pos, _)) = events.last() {
        read.last = Some(pos.stream_id());
    }
    Ok(events)
}

/// One user's events, newest first, before `query.before`.
pub(crate) async fn audit(
    store: &RedisStore,
    query: &AuditQuery,
) -> Result<Vec<SessionEvent>, StoreError> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let keys = store.keys_of(&query.user_id);
    let mut inv = SCRIPTS.audit.prepare_invoke();
    inv.key(keys.audit(&query.user_id))
        .key(keys.log())
        .arg(codec::opt(query.before.as_ref().map(|b| b.as_str())))
        .arg(query.limit);
    let entries = array(store.eval(Retry::Idempotent, inv).await?)?;
    entries
        .into_iter()
        .map(|entry| {
            let mut parts = array(entry)?.into_iter();
            let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
                return Err(corrupt("an audit entry without its event"));
            };
            codec::event(string(id)?, strings(fields)?)
        })
        .collect()
}
