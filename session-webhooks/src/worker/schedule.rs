//! Which event goes next: the events read from the log and not yet delivered, in log order,
//! one queue per user; the cursor; backoff per event and for the receiver as a whole.
//!
//! No I/O and no clock of its own (every call takes `now`), so its rules are tested here:
//!
//! - Only the oldest undelivered event of a user (its *head*) is ever sent: a user's events
//!   go in log order, and one that fails holds back that user's later events only.
//! - The cursor is the id just before the oldest event not yet delivered or given up.
//! - A failed event is retried after `base * 2^(n-1)` (at most `max`, less jitter), and given
//!   up once it has failed at least once and `horizon` has passed since its first attempt.
//! - The receiver as a whole: after two failures in a row (of any events) it is *failing*;
//!   then retries go one at a time (a probe), no sooner than the backoff of the failure
//!   streak, while first attempts still go (so one user's poisoned event does not hold back
//!   others). The first success ends the streak and makes every waiting retry due at once
//!   (the receiver is back). While failing, events past their horizon are given up without
//!   another attempt, so a receiver dead for longer than the horizon does not make the
//!   worker give events up one per probe.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use session_core::{EventId, SessionEvent, UserId};
use tokio::time::Instant;

use super::config::Backoff;
use crate::encode::Encoded;

/// How often, at most, a failing receiver's waiting events are checked against the
/// horizon.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// An event not yet delivered.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) event: SessionEvent,
    /// Its request, encoded once, at its first attempt.
    pub(crate) payload: Option<Encoded>,
    attempts: u32,
    first_attempt: Option<Instant>,
    /// When it is waiting for a retry: when the retry is due.
    retry_at: Option<Instant>,
    in_flight: bool,
}

#[derive(Debug)]
enum Slot {
    Pending(Box<Entry>),
    Done(EventId),
}

/// An event to send now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Launch {
    /// Its place in the schedule.
    pub(crate) seq: u64,
    /// Its attempt number, from 1.
    pub(crate) attempt: u32,
}

/// What a failure led to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Failure {
    /// When the failed event is tried again (`None`: given up).
    pub(crate) retry_in: Option<Duration>,
    /// Events given up (the failed one, and, for a failing receiver, others past their
    /// horizon), in log order.
    pub(crate) given_up: Vec<EventId>,
}

#[derive(Debug)]
pub(crate) struct Schedule {
    horizon: Duration,
    backoff: Backoff,
    cursor: Option<EventId>,
    read_to: Option<EventId>,
    slots: VecDeque<Slot>,
    /// The sequence number of `slots[0]`.
    base: u64,
    users: HashMap<UserId, VecDeque<u64>>,
    first_ready: BTreeSet<u64>,
    retry_ready: BTreeSet<u64>,
    waiting: BTreeSet<(Instant, u64)>,
    in_flight: usize,
    retries_in_flight: usize,
    pending: usize,
    streak: u32,
    probe_at: Option<Instant>,
    last_sweep: Option<Instant>,
}

impl Schedule {
    /// A schedule starting after `cursor` (from the log's start with `None`).
    pub(crate) fn new(cursor: Option<EventId>, horizon: Duration, backoff: Backoff) -> Self {
        Self {
            horizon,
            backoff,
            read_to: cursor.clone(),
            cursor,
            slots: VecDeque::new(),
            base: 0,
            users: HashMap::new(),
            first_ready: BTreeSet::new(),
            retry_ready: BTreeSet::new(),
            waiting: BTreeSet::new(),
            in_flight: 0,
            retries_in_flight: 0,
            pending: 0,
            streak: 0,
            probe_at: None,
            last_sweep: None,
        }
    }

    /// The id just before the oldest event not yet delivered or given up.
    pub(crate) fn cursor(&self) -> Option<&EventId> {
        self.cursor.as_ref()
    }

    /// The last id read from the log.
    pub(crate) fn read_to(&self) -> Option<&EventId> {
        self.read_to.as_ref()
    }

    /// Events read and held (delivered ones included, until the cursor passes them).
    pub(crate) fn held(&self) -> usize {
        self.slots.len()
    }

    /// Events not yet delivered nor given up.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// Requests in flight.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Adds events read from the log (oldest first); ids at or before the last one read
    /// are ignored.
    pub(crate) fn push(&mut self, events: impl IntoIterator<Item = SessionEvent>) {
        for event in events {
            if self.read_to.as_ref().is_some_and(|last| &event.id <= last) {
                continue;
            }
            let seq = self.base + self.slots.len() as u64;
            self.read_to = Some(event.id.clone());
            let queue = self.users.entry(event.user_id.clone()).or_default();
            if queue.is_empty() {
                self.first_ready.insert(seq);
            }
            queue.push_back(seq);
            self.pending += 1;
            self.slots.push_back(Slot::Pending(Box::new(Entry {
                event,
                payload: None,
                attempts: 0,
                first_attempt: None,
                retry_at: None,
                in_flight: false,
            })));
        }
    }

    /// The pending event at `seq`.
    pub(crate) fn entry_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        match self.slots.get_mut(index)? {
            Slot::Pending(entry) => Some(entry),
            Slot::Done(_) => None,
        }
    }

    fn entry(&self, seq: u64) -> Option<&Entry> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        match self.slots.get(index)? {
            Slot::Pending(entry) => Some(entry),
            Slot::Done(_) => None,
        }
    }

    fn failing(&self) -> bool {
        self.streak >= 2
    }

    /// The next event to send at `now`, with at most `max_in_flight` requests in flight;
    /// marks it in flight.
    pub(crate) fn next_launch(&mut self, now: Instant, max_in_flight: usize) -> Option<Launch> {
        while let Some(&(at, seq)) = self.waiting.first() {
            if at > now {
                break;
            }
            self.waiting.pop_first();
            self.retry_ready.insert(seq);
        }
        if self.in_flight >= max_in_flight {
            return None;
        }
        let first = self.first_ready.first().copied();
        let retry_gate_open = !self.failing()
            || (self.retries_in_flight == 0 && self.probe_at.is_none_or(|at| at <= now));
        let retry = retry_gate_open
            .then(|| self.retry_ready.first().copied())
            .flatten();
        let seq = match (first, retry) {
            (Some(f), Some(r)) => f.min(r),
            (Some(s), None) | (None, Some(s)) => s,
            (None, None) => return None,
        };
        let is_retry = if self.first_ready.remove(&seq) {
            false
        } else {
            self.retry_ready.remove(&seq);
            true
        };
        let entry = self.entry_mut(seq).expect("a ready event is pending");
        entry.attempts += 1;
        entry.first_attempt.get_or_insert(now);
        entry.retry_at = None;
        entry.in_flight = true;
        let attempt = entry.attempts;
        self.in_flight += 1;
        if is_retry {
            self.retries_in_flight += 1;
        }
        Some(Launch { seq, attempt })
    }

    fn land(&mut self, seq: u64) {
        let entry = self.entry_mut(seq).expect("a landing event is pending");
        debug_assert!(entry.in_flight);
        entry.in_flight = false;
        let was_retry = entry.attempts > 1;
        self.in_flight -= 1;
        if was_retry {
            self.retries_in_flight -= 1;
        }
    }

    /// The event at `seq` was delivered.
    pub(crate) fn succeeded(&mut self, seq: u64) {
        self.land(seq);
        if self.failing() {
            // The receiver is back: every waiting retry is due now.
            for (_, waiting) in std::mem::take(&mut self.waiting) {
                self.retry_ready.insert(waiting);
            }
        }
        self.streak = 0;
        self.probe_at = None;
        self.resolve(seq);
    }

    /// The event at `seq` needs no delivery (its encoder skipped it).
    pub(crate) fn skipped(&mut self, seq: u64) {
        self.land(seq);
        self.resolve(seq);
    }

    /// The attempt at `seq` failed at `now`. `receiver` says whether the receiver failed
    /// (a status or no answer) rather than this side (the encoder); `retry_after` is the
    /// receiver's `Retry-After`, honoured up to the backoff's max.
    pub(crate) fn failed(
        &mut self,
        seq: u64,
        now: Instant,
        receiver: bool,
        retry_after: Option<Duration>,
    ) -> Failure {
        self.land(seq);
        let floor = retry_after.map_or(Duration::ZERO, |d| d.min(self.backoff.max));
        if receiver {
            self.streak = self.streak.saturating_add(1);
            if self.failing() {
                let pause = self.backoff.delay(self.streak - 1).max(floor);
                self.probe_at = Some(now + pause);
            }
        }
        let horizon = self.horizon;
        let entry = self.entry_mut(seq).expect("a failed event is pending");
        let past_horizon = entry
            .first_attempt
            .is_some_and(|first| now >= first + horizon);
        let attempts = entry.attempts;
        let event_id = entry.event.id.clone();
        let mut failure = Failure::default();
        if past_horizon {
            failure.given_up.push(event_id);
            self.resolve(seq);
        } else {
            let delay = self.backoff.delay(attempts).max(floor);
            if let Some(entry) = self.entry_mut(seq) {
                entry.retry_at = Some(now + delay);
            }
            self.waiting.insert((now + delay, seq));
            failure.retry_in = Some(delay);
        }
        if self.failing() && self.last_sweep.is_none_or(|at| now >= at + SWEEP_EVERY) {
            self.last_sweep = Some(now);
            failure.given_up.extend(self.sweep(now));
        }
        failure
    }

    /// Gives up every event waiting for a retry (due or not) past its horizon.
    fn sweep(&mut self, now: Instant) -> Vec<EventId> {
        let mut expired: Vec<u64> = self
            .waiting
            .iter()
            .map(|&(_, seq)| seq)
            .chain(self.retry_ready.iter().copied())
            .filter(|&seq| {
                self.entry(seq)
                    .and_then(|e| e.first_attempt)
                    .is_some_and(|first| now >= first + self.horizon)
            })
            .collect();
        expired.sort_unstable();
        let mut ids = Vec::with_capacity(expired.len());
        for seq in expired {
            if let Some(entry) = self.entry(seq) {
                ids.push(entry.event.id.clone());
            }
            self.resolve(seq);
        }
        ids
    }

    /// The event at `seq` is settled (delivered, skipped, given up): its user's next event
    /// becomes ready, and the cursor moves over every settled event at the front.
    fn resolve(&mut self, seq: u64) {
        let index = usize::try_from(seq - self.base).expect("index fits");
        let Slot::Pending(entry) = &self.slots[index] else {
            return;
        };
        let id = entry.event.id.clone();
        let user = entry.event.user_id.clone();
        if let Some(at) = entry.retry_at {
            self.waiting.remove(&(at, seq));
        }
        self.first_ready.remove(&seq);
        self.retry_ready.remove(&seq);
        self.slots[index] = Slot::Done(id);
        self.pending -= 1;
        if let Some(queue) = self.users.get_mut(&user) {
            debug_assert_eq!(queue.front(), Some(&seq));
            queue.pop_front();
            match queue.front() {
                Some(&next) => {
                    self.first_ready.insert(next);
                }
                None => {
                    self.users.remove(&user);
                }
            }
        }
        while let Some(Slot::Done(_)) = self.slots.front() {
            if let Some(Slot::Done(id)) = self.slots.pop_front() {
                self.cursor = Some(id);
            }
            self.base += 1;
        }
    }

    /// When something becomes due without a request landing: the next retry, or the next
    /// probe of a failing receiver.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let retry = self.waiting.first().map(|&(at, _)| at);
        let probe = (self.failing() && self.retries_in_flight == 0 && !self.retry_ready.is_empty())
            .then_some(self.probe_at)
            .flatten();
        match (retry, probe) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::{Actor, EventType, Principal, SessionId};

    const HOUR: Duration = Duration::from_secs(3600);

    fn backoff() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(8),
            jitter: 0.0,
        }
    }

    fn event(n: u64, user: &str) -> SessionEvent {
        SessionEvent::about(
            EventId::new(format!("{n:04}")),
            EventType::Created,
            SessionId::random(),
            &Principal::user(user),
            None,
            Actor::User,
            time::OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn id(s: &Schedule, seq: u64) -> String {
        let index = usize::try_from(seq - s.base).unwrap();
        match &s.slots[index] {
            Slot::Pending(e) => e.event.id.to_string(),
            Slot::Done(id) => id.to_string(),
        }
    }

    fn launch_all(s: &mut Schedule, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = s.next_launch(now, usize::MAX) {
            out.push(id(s, l.seq));
        }
        out
    }

    fn seq_of(s: &Schedule, event_id: &str) -> u64 {
        (s.base..s.base + s.slots.len() as u64)
            .find(|&q| id(s, q) == event_id)
            .unwrap()
    }

    #[test]
    fn one_event_per_user_at_a_time_in_log_order() {
        let now = Instant::now();
        let mut s = Schedule::new(None, HOUR, backoff());
        s.push([
            event(1, "alice"),
            event(2, "bob"),
            event(3, "alice"),
            event(4, "carol"),
        ]);
        assert_eq!(launch_all(&mut s, now), ["0001", "0002", "0004"]);
        s.succeeded(seq_of(&s, "0002"));
        assert_eq!(s.cursor(), None, "0001 is still out");
        assert_eq!(launch_all(&mut s, now), Vec::<String>::new());
        s.succeeded(seq_of(&s, "0001"));
        assert_eq!(s.cursor().unwrap().as_str(), "0002");
        assert_eq!(launch_all(&mut s, now), ["0003"]);
        s.succeeded(seq_of(&s, "0003"));
        s.succeeded(seq_of(&s, "0004"));
        assert_eq!(s.cursor().unwrap().as_str(), "0004");
        assert_eq!((s.pending(), s.held(), s.in_flight()), (0, 0, 0));
    }

    #[test]
    fn a_failure_holds_back_its_user_only() {
        let now = Instant::now();
        let mut s = Schedule::new(Some(EventId::new("0000")), HOUR, backoff());
        s.push([event(1, "alice"), event(2, "alice"), event(3, "bob")]);
        assert_eq!(launch_all(&mut s, now), ["0001", "0003"]);
        let f = s.failed(seq_of(&s, "0001"), now, true, None);
        assert_eq!(f.retry_in, Some(Duration::from_secs(1)));
        s.succeeded(seq_of(&s, "0003"));
        assert_eq!(s.cursor().unwrap().as_str(), "0000");
        s.push([event(4, "bob")]);
        assert_eq!(launch_all(&mut s, now), ["0004"], "bob flows, alice waits");
        assert_eq!(s.next_due(), Some(now + Duration::from_secs(1)));
        let later = now + Duration::from_secs(1);
        assert_eq!(launch_all(&mut s, later), ["0001"]);
        s.succeeded(seq_of(&s, "0001"));
        assert_eq!(launch_all(&mut s, later), ["0002"]);
        // Ignores what it has read already.
        s.push([event(3, "bob")]);
        assert_eq!(s.pending(), 2);
    }

    #[test]
    fn retries_back_off_exponentially_and_honour_retry_after() {
        let mut now = Instant::now();
        let mut s = Schedule::new(None, HOUR, backoff());
        s.push([event(1, "alice")]);
        let mut delays = Vec::new();
        for _ in 0..6 {
            let l = s.next_launch(now, 1).unwrap();
            let f = s.failed(l.seq, now, false, None);
            delays.push(f.retry_in.unwrap().as_secs());
            assert_eq!(s.next_launch(now, 1), None);
            now += f.retry_in.unwrap();
        }
        assert_eq!(delays, [1, 2, 4, 8, 8, 8]);
        let l = s.next_launch(now, 1).unwrap();
        assert_eq!(l.attempt, 7);
        let f = s.failed(l.seq, now, false, Some(Duration::from_secs(5)));
        assert_eq!(f.retry_in, Some(Duration::from_secs(8)));
        let l = s.next_launch(now + HOUR, 1).unwrap();
        let f = s.failed(l.seq, now, false, Some(Duration::from_secs(86_400)));
        assert_eq!(f.retry_in, Some(Duration::from_secs(8)), "capped at max");
    }

    #[test]
    fn gives_up_past_the_horizon_and_moves_on() {
        let now = Instant::now();
        let horizon = Duration::from_secs(10);
        let mut s = Schedule::new(None, horizon, backoff());
        s.push([event(1, "alice"), event(2, "alice")]);
        let l = s.next_launch(now, 1).unwrap();
        assert!(s.failed(l.seq, now, false, None).given_up.is_empty());
        let at = now + Duration::from_secs(9);
        let l = s.next_launch(at, 1).unwrap();
        assert!(s.failed(l.seq, at, false, None).given_up.is_empty());
        let at = now + Duration::from_secs(11);
        let l = s.next_launch(at, 1).unwrap();
        let f = s.failed(l.seq, at, false, None);
        assert_eq!(f.given_up, [EventId::new("0001")]);
        assert_eq!(f.retry_in, None);
        assert_eq!(s.cursor().unwrap().as_str(), "0001");
        // The next event gets a horizon of its own.
        let l = s.next_launch(at, 1).unwrap();
        assert_eq!((id(&s, l.seq).as_str(), l.attempt), ("0002", 1));
        assert!(s.failed(l.seq, at, false, None).given_up.is_empty());
    }

    #[test]
    fn a_failing_receiver_gets_one_probe_at_a_time_and_first_attempts_still_go() {
        let now = Instant::now();
        let mut s = Schedule::new(None, HOUR, backoff());
        s.push([event(1, "a"), event(2, "b"), event(3, "c")]);
        assert_eq!(launch_all(&mut s, now), ["0001", "0002", "0003"]);
        for n in ["0001", "0002", "0003"] {
            s.failed(seq_of(&s, n), now, true, None);
        }
        // Streak 3: the next probe after backoff(2) = 2 s; retries are due after 1 s.
        let t1 = now + Duration::from_secs(1);
        assert_eq!(launch_all(&mut s, t1), Vec::<String>::new());
        s.push([event(4, "d")]);
        assert_eq!(
            launch_all(&mut s, t1),
            ["0004"],
            "a first attempt is not held"
        );
        let t2 = now + Duration::from_secs(2);
        assert_eq!(s.next_due(), Some(t2));
        assert_eq!(launch_all(&mut s, t2), ["0001"], "one probe");
        s.failed(seq_of(&s, "0001"), t2, true, None);
        assert_eq!(
            launch_all(&mut s, t2 + Duration::from_secs(3)),
            Vec::<String>::new()
        );
        // The receiver is back: everything waiting goes at once.
        s.succeeded(seq_of(&s, "0004"));
        assert_eq!(launch_all(&mut s, t2), ["0001", "0002", "0003"]);
    }

    #[test]
    fn a_failing_receiver_gives_up_everything_past_the_horizon_at_once() {
        let now = Instant::now();
        let horizon = Duration::from_secs(60);
        let mut s = Schedule::new(None, horizon, backoff());
        s.push((1..=5).map(|n| event(n, &format!("u{n}"))));
        for n in launch_all(&mut s, now) {
            s.failed(seq_of(&s, &n), now, true, None);
        }
        let late = now + Duration::from_secs(61);
        let probe = s.next_launch(late, 4).unwrap();
        assert_eq!(s.next_launch(late, 4), None);
        let f = s.failed(probe.seq, late, true, None);
        assert_eq!(f.given_up.len(), 5);
        assert_eq!(s.cursor().unwrap().as_str(), "0005");
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn skips_and_concurrency() {
        let now = Instant::now();
        let mut s = Schedule::new(None, HOUR, backoff());
        s.push((1..=4).map(|n| event(n, &format!("u{n}"))));
        let a = s.next_launch(now, 2).unwrap();
        let b = s.next_launch(now, 2).unwrap();
        assert_eq!(s.next_launch(now, 2), None);
        s.skipped(a.seq);
        s.skipped(b.seq);
        assert_eq!(s.cursor().unwrap().as_str(), "0002");
        assert!(s.next_launch(now, 2).is_some());
    }
}
