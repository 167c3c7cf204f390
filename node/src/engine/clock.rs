//! The clock guard: whether the node's clock may open a new ledger period.
//!
//! A clock that jumps far ahead (a dead CMOS battery, a mistyped date, a bad time
//! server) would otherwise seal the open period and open one years away, where every
//! later sale goes. A period opens only when its start is at most [`CLOCK_MARGIN_MS`]
//! ahead of the newest time the node has evidence for: the start of its open period,
//! the hub's clock as last seen in a sync session, and readings of its own clock that
//! were themselves within the margin, each aged by the monotonic time elapsed since
//! (never by the wall clock). The newest evidence is kept in the store (`m/clock`),
//! without credit for the time the node was stopped.
//!
//! It must never refuse a write: a movement the guard holds back is booked into the
//! open period (with the clock's own timestamp), as one made with a clock set back
//! is; see "Clocks" in docs/ARCHITECTURE.md. It must never trust a district's clock at
//! the hub: only the hub's time is evidence at a district.

use std::sync::Mutex;
use std::time::Instant;

/// How far ahead of the evidence a new period may start: two days, so a node
/// stopped over a weekend while offline still turns the month on its own.
pub const CLOCK_MARGIN_MS: i64 = 2 * 24 * 3_600_000;

/// Evidence is written to the store when it moved this much since it last was.
const PERSIST_EVERY_MS: i64 = 60_000;

/// Where the newest evidence came from, for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceSource {
    /// Kept in the store by an earlier run.
    Stored,
    /// This node's clock, read within the margin.
    OwnClock,
    /// The hub's clock, as seen in a sync session.
    HubClock,
    /// The start of the open ledger period.
    OpenPeriod,
}

impl EvidenceSource {
    fn describe(self) -> &'static str {
        match self {
            EvidenceSource::Stored => "the newest time recorded before the last start",
            EvidenceSource::OwnClock => "this node's clock as last trusted",
            EvidenceSource::HubClock => "the hub's clock in the last sync session",
            EvidenceSource::OpenPeriod => "the start of the open ledger period",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Evidence {
    unix_ms: i64,
    /// When `unix_ms` was true, on the monotonic clock.
    seen: Instant,
    source: EvidenceSource,
    /// What the store holds.
    persisted_ms: i64,
}

impl Evidence {
    fn now(&self) -> i64 {
        let elapsed = i64::try_from(self.seen.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.unix_ms.saturating_add(elapsed)
    }
}

/// A new period the guard held back: the clock is too far ahead of the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockAhead {
    pub clock_ms: i64,
    pub evidence_ms: i64,
    pub source: EvidenceSource,
}

impl std::fmt::Display for ClockAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ahead = self.clock_ms.saturating_sub(self.evidence_ms);
        let days = ahead / 86_400_000;
        let hours = ahead % 86_400_000 / 3_600_000;
        write!(
            f,
            "the clock ({}) is {days} days {hours} h ahead of {} ({}): no new ledger period \
             opens, movements are booked into the open one; fix the clock, or restart the \
             node with `mart-node run --accept-clock` if it is right",
            format_ms(self.clock_ms),
            self.source.describe(),
            format_ms(self.evidence_ms),
        )
    }
}

fn format_ms(unix_ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| format!("{unix_ms} ms"))
}

/// The guard of one running node.
pub(super) struct ClockGuard {
    /// The operator said the clock is right (`--accept-clock`): every period opens.
    accept: bool,
    evidence: Mutex<Option<Evidence>>,
    /// The period held back last, while the clock stays ahead.
    warning: Mutex<Option<ClockAhead>>,
}

impl ClockGuard {
    /// The guard of a node whose store holds `evidence_ms` (see
    /// [`ClockGuard::evidence_at_start`]).
    pub(super) fn new(evidence_ms: i64, accept: bool) -> Self {
        ClockGuard {
            accept,
            evidence: Mutex::new(Some(Evidence {
                unix_ms: evidence_ms,
                seen: Instant::now(),
                source: EvidenceSource::Stored,
                persisted_ms: evidence_ms,
            })),
            warning: Mutex::new(None),
        }
    }

    /// The evidence a node starts with: what its store holds or, with none (a new
    /// node, or one that ran a build without the guard), its clock at start, as a
    /// first start always trusted it. With nothing to compare it with, holding
    /// periods back would only stop the month from turning: a node upgraded
    /// mid-month never turned it. The caller stores the answer when it is new.
    pub(super) fn evidence_at_start(stored_ms: Option<i64>, clock_ms: i64) -> (i64, bool) {
        match stored_ms {
            Some(stored) => (stored, false),
            None => (clock_ms, true),
        }
    }

    fn evidence(&self) -> std::sync::MutexGuard<'_, Option<Evidence>> {
        self.evidence.lock().expect("clock evidence lock")
    }

    /// Takes `unix_ms` as evidence (from `source`) if it is newer than what the guard
    /// has. Returns the time to write to the store when the evidence moved enough
    /// since it last was, however it moved (time running on the monotonic clock
    /// counts): a node restarted after weeks of running keeps that credit.
    pub(super) fn note(&self, unix_ms: i64, source: EvidenceSource) -> Option<i64> {
        let mut evidence = self.evidence();
        let (mut newest, persisted_ms) = match *evidence {
            Some(e) if e.now() >= unix_ms => (
                Evidence {
                    unix_ms: e.now(),
                    seen: Instant::now(),
                    ..e
                },
                e.persisted_ms,
            ),
            Some(e) => (
                Evidence {
                    unix_ms,
                    seen: Instant::now(),
                    source,
                    persisted_ms: e.persisted_ms,
                },
                e.persisted_ms,
            ),
            None => (
                Evidence {
                    unix_ms,
                    seen: Instant::now(),
                    source,
                    persisted_ms: i64::MIN,
                },
                i64::MIN,
            ),
        };
        let persist = newest.unix_ms.saturating_sub(persisted_ms) >= PERSIST_EVERY_MS;
        if persist {
            newest.persisted_ms = newest.unix_ms;
        }
        *evidence = Some(newest);
        persist.then_some(newest.unix_ms)
    }

    /// The newest time there is evidence for, now, and where it came from.
    fn newest(&self, open_start_ms: i64) -> (i64, EvidenceSource) {
        match *self.evidence() {
            Some(e) if e.now() > open_start_ms => (e.now(), e.source),
            _ => (open_start_ms, EvidenceSource::OpenPeriod),
        }
    }

    /// Whether a period starting at `start_ms` may open with the clock at `clock_ms`,
    /// given the open period started at `open_start_ms`. A clock within the margin
    /// becomes evidence itself (the returned time goes to the store, when any).
    pub(super) fn may_open(
        &self,
        clock_ms: i64,
        start_ms: i64,
        open_start_ms: i64,
    ) -> Result<Option<i64>, ClockAhead> {
        let (evidence_ms, source) = self.newest(open_start_ms);
        if self.accept || start_ms <= evidence_ms.saturating_add(CLOCK_MARGIN_MS) {
            *self.warning.lock().expect("clock warning lock") = None;
            return Ok(self.note(clock_ms.max(start_ms), EvidenceSource::OwnClock));
        }
        let ahead = ClockAhead {
            clock_ms,
            evidence_ms,
            source,
        };
        let mut warning = self.warning.lock().expect("clock warning lock");
        if warning.is_none() {
            // Loud once per episode, not at every sale.
            tracing::error!(clock_ms, evidence_ms, "clock far ahead: {ahead}");
        }
        *warning = Some(ahead.clone());
        Err(ahead)
    }

    /// A reading of the node's clock at a write that opens no period: evidence when
    /// within the margin, so a node running offline keeps its evidence current.
    pub(super) fn note_reading(&self, clock_ms: i64, open_start_ms: i64) -> Option<i64> {
        let (evidence_ms, _) = self.newest(open_start_ms);
        if clock_ms <= evidence_ms.saturating_add(CLOCK_MARGIN_MS) {
            // The clock is back within the margin: nothing is held back any more.
            *self.warning.lock().expect("clock warning lock") = None;
            self.note(clock_ms, EvidenceSource::OwnClock)
        } else {
            None
        }
    }

    /// What the operator must know: the period the guard holds back, if any.
    pub(super) fn warning(&self) -> Option<ClockAhead> {
        self.warning.lock().expect("clock warning lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    const DEC_2026: i64 = 1_796_054_400_000; // 2026-12-01 00:00 WITA

    #[test]
    fn a_period_far_ahead_of_the_evidence_is_held_back() {
        let guard = ClockGuard::new(DEC_2026 + 6 * DAY, false);
        // Into the next month: within the margin of the stored evidence? No: 25 days.
        let next = DEC_2026 + 31 * DAY;
        let held = guard.may_open(next + DAY, next, DEC_2026).unwrap_err();
        assert_eq!(held.evidence_ms / 1000, (DEC_2026 + 6 * DAY) / 1000);
        assert!(guard.warning().is_some());
        // The hub says it is the 31st: the month may turn.
        guard.note(next - DAY, EvidenceSource::HubClock);
        assert!(guard.may_open(next + DAY, next, DEC_2026).is_ok());
        assert!(guard.warning().is_none());
    }

    #[test]
    fn the_operator_may_accept_the_clock() {
        let guard = ClockGuard::new(DEC_2026, true);
        assert!(guard
            .may_open(4_100_000_000_000, 4_099_000_000_000, DEC_2026)
            .is_ok());
    }

    #[test]
    fn readings_within_the_margin_move_the_evidence() {
        let guard = ClockGuard::new(DEC_2026 - DAY, false);
        let open = DEC_2026;
        assert_eq!(guard.note_reading(DEC_2026, open), Some(DEC_2026));
        assert_eq!(
            guard.note_reading(DEC_2026 + DAY, open),
            Some(DEC_2026 + DAY)
        );
        // A jump beyond the margin is not evidence.
        assert_eq!(guard.note_reading(DEC_2026 + 30 * DAY, open), None);
        // Nor is an older reading, nor one a few seconds on (not worth a write).
        assert_eq!(guard.note_reading(DEC_2026, open), None);
        assert_eq!(guard.note_reading(DEC_2026 + DAY + 1000, open), None);
    }

    /// A node upgraded mid-month from a build without the guard has no evidence in
    /// its store: its clock at start is the evidence, so the month turns (found by a
    /// reading: the open period's start was the only evidence, and readings more
    /// than two days past it never counted, so December never opened).
    #[test]
    fn a_store_without_evidence_trusts_the_clock_at_start() {
        let open = DEC_2026 - 30 * DAY; // November
        let started = DEC_2026 - 20 * DAY;
        assert_eq!(
            ClockGuard::evidence_at_start(None, started),
            (started, true)
        );
        assert_eq!(
            ClockGuard::evidence_at_start(Some(open), started),
            (open, false)
        );
        let guard = ClockGuard::new(started, false);
        let mut day = started;
        while day < DEC_2026 - DAY {
            day += DAY;
            guard.note_reading(day, open);
        }
        assert!(guard.may_open(DEC_2026 + 1000, DEC_2026, open).is_ok());
    }

    /// Evidence that only aged on the monotonic clock is written to the store too,
    /// so a restart keeps the credit of a long run without writes that moved it.
    #[test]
    fn evidence_aged_while_running_is_stored() {
        let guard = ClockGuard::new(DEC_2026, false);
        // Pretend the node has run for two minutes since it started.
        guard.evidence().as_mut().unwrap().seen -= std::time::Duration::from_secs(120);
        let stored = guard.note_reading(DEC_2026, DEC_2026).expect("written");
        assert!(stored >= DEC_2026 + 120_000, "{stored}");
    }
}
