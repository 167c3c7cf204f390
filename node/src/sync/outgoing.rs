//! What one session sends of its documents: per document, the changes the peer
//! lacks, queued in an order it can apply them; cut into bundles sized to the link
//! as the link takes them; at most [`WINDOW`] bundles unanswered (protocol 2); the
//! most urgent document first.
//!
//! On a slow link that drops, a drop then loses at most the bundle in flight, and
//! an online order never waits behind a month of ledger. This module must never
//! queue a change twice in one session (unless told the peer holds none of a
//! document, or refused it), and never decide what the peer may receive: the
//! session asks only for what it may send.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use automerge::ChangeHash;
use tokio::time::Instant;

use crate::domain::doc_id::DocId;
use crate::engine::Planned;

/// Bundles sent and not yet answered, at most (protocol 2): one on the wire while
/// the peer applies the one before, so neither side waits for the other.
pub const WINDOW: usize = 2;

/// How many changes go into the next bundle: a bundle answered quickly doubles
/// the size, one answered slowly halves it, so on any link a bundle takes about
/// [`Sizer::QUICK`]..[`Sizer::SLOW`] to be answered (two of them in flight). On a
/// 64 kbit/s link that is some 10 KiB, on loopback the largest bundle.
#[derive(Debug, Clone)]
pub struct Sizer {
    changes: usize,
}

impl Sizer {
    /// The first bundle of a session: about 15 KiB of sales on the wire, a couple of
    /// seconds on a 64 kbit/s link.
    pub const FIRST: usize = 1_000;
    /// The smallest bundle, for the slowest link.
    pub const MIN: usize = 50;
    /// The largest bundle: what the peer applies at once stays bounded (a sale's
    /// change is about 160 bytes raw, so some 2.6 MB raw, well under 1 MiB on the
    /// wire).
    pub const MAX: usize = 16_384;
    /// A full bundle answered within this grows the next.
    pub const QUICK: Duration = Duration::from_secs(1);
    /// A bundle answered after this shrinks the next.
    pub const SLOW: Duration = Duration::from_secs(3);

    /// Changes for the next bundle.
    pub fn changes(&self) -> usize {
        self.changes
    }

    /// A bundle was answered `round_trip` after it was sent; `full` if it held as
    /// many changes as asked (a short tail says nothing about the link).
    pub fn answered(&mut self, round_trip: Duration, full: bool) {
        if round_trip > Self::SLOW {
            self.changes = (self.changes / 2).max(Self::MIN);
        } else if full && round_trip < Self::QUICK {
            self.changes = (self.changes * 2).min(Self::MAX);
        }
    }
}

impl Default for Sizer {
    fn default() -> Self {
        Sizer {
            changes: Self::FIRST,
        }
    }
}

/// Which documents go first: orders, quota, budgets and catalogs before ledgers
/// (an online order must reach its outlet during a month's catch-up); older
/// ledger periods before newer ones.
fn urgency(doc: &DocId) -> u8 {
    match doc {
        DocId::Orders(_) => 0,
        DocId::Budget => 1,
        DocId::ProvincialCatalog => 2,
        DocId::LocalCatalog(_) => 3,
        DocId::Ledger(..) => 4,
    }
}

/// What is queued of one document.
#[derive(Debug, Default)]
struct Queue {
    /// Changes not yet sent, in an order the peer can apply them.
    pending: VecDeque<ChangeHash>,
    /// This node's heads when last planned: every change up to them was sent, is
    /// pending, or the peer held it.
    covered: Vec<ChangeHash>,
}

/// A bundle sent and not yet answered.
#[derive(Debug)]
struct Unanswered {
    seq: u32,
    at: Instant,
    full: bool,
}

/// The next changes to bundle, taken from a document's queue.
#[derive(Debug)]
pub struct Cut {
    pub doc: DocId,
    pub hashes: Vec<ChangeHash>,
    /// As many changes as the sizer asked for.
    pub full: bool,
}

/// The sending side of one session.
#[derive(Debug, Default)]
pub struct Outgoing {
    queues: HashMap<DocId, Queue>,
    unanswered: VecDeque<Unanswered>,
    last_seq: u32,
    sizer: Sizer,
}

impl Outgoing {
    /// This node's heads of `doc` as of its last plan, if it was planned.
    pub fn covered(&self, doc: &DocId) -> Option<&[ChangeHash]> {
        self.queues.get(doc).map(|q| q.covered.as_slice())
    }

    /// Queues what a plan found: changes not covered by the last plan (the caller
    /// plans from the peer's heads and [`Outgoing::covered`], so none is queued
    /// twice).
    pub fn enqueue(&mut self, doc: &DocId, planned: Planned) {
        let queue = self.queues.entry(doc.clone()).or_default();
        queue.pending.extend(planned.pending);
        queue.covered = planned.heads;
    }

    /// Forgets what was planned of `doc`: the peer holds none of it, or refused a
    /// bundle of it; the next plan starts from the peer's heads.
    pub fn forget(&mut self, doc: &DocId) {
        self.queues.remove(doc);
    }

    /// Whether another bundle may go out: always for an unpaced (protocol 1) peer.
    pub fn has_room(&self, paced: bool) -> bool {
        !paced || self.unanswered.len() < WINDOW
    }

    /// The next changes to bundle, from the most urgent document with any pending;
    /// as many as the sizer asks (paced) or the largest bundle (unpaced).
    pub fn next_cut(&mut self, paced: bool) -> Option<Cut> {
        let doc = self
            .queues
            .iter()
            .filter(|(_, q)| !q.pending.is_empty())
            .map(|(doc, _)| doc)
            .min_by(|a, b| urgency(a).cmp(&urgency(b)).then_with(|| a.cmp(b)))?
            .clone();
        let size = if paced {
            self.sizer.changes()
        } else {
            Sizer::MAX
        };
        let queue = self.queues.get_mut(&doc).expect("picked from the queues");
        let take = size.min(queue.pending.len());
        let hashes: Vec<ChangeHash> = queue.pending.drain(..take).collect();
        Some(Cut {
            doc,
            full: take == size,
            hashes,
        })
    }

    /// A bundle of a cut was sent: its number, which the peer's answer names.
    pub fn sent(&mut self, full: bool) -> u32 {
        self.last_seq += 1;
        self.unanswered.push_back(Unanswered {
            seq: self.last_seq,
            at: Instant::now(),
            full,
        });
        self.last_seq
    }

    /// The peer answered bundle `seq` (0 or a number never sent: ignored); the
    /// time it took sizes the next.
    pub fn answered(&mut self, seq: u32) {
        if seq == 0 {
            return;
        }
        if let Some(at) = self.unanswered.iter().position(|u| u.seq == seq) {
            let done = self.unanswered.remove(at).expect("found above");
            self.sizer.answered(done.at.elapsed(), done.full);
        }
    }

    /// Bundles sent and not answered yet.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.unanswered.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::doc_id::NodeId;
    use crate::domain::period::PeriodId;

    fn hash(n: u32) -> ChangeHash {
        let mut bytes = [0; 32];
        bytes[..4].copy_from_slice(&n.to_le_bytes());
        ChangeHash(bytes)
    }

    fn planned(range: std::ops::Range<u32>) -> Planned {
        Planned {
            pending: range.clone().map(hash).collect(),
            heads: vec![hash(range.end.saturating_sub(1))],
        }
    }

    fn ledger() -> DocId {
        DocId::Ledger(
            NodeId::parse("ttu").unwrap(),
            PeriodId::parse("2026-12").unwrap(),
        )
    }

    fn orders() -> DocId {
        DocId::Orders(NodeId::parse("ttu").unwrap())
    }

    #[test]
    fn a_quick_answer_grows_bundles_and_a_slow_one_shrinks_them_within_bounds() {
        let mut sizer = Sizer::default();
        assert_eq!(sizer.changes(), Sizer::FIRST);
        for _ in 0..20 {
            sizer.answered(Duration::from_millis(10), true);
        }
        assert_eq!(sizer.changes(), Sizer::MAX);
        for _ in 0..20 {
            sizer.answered(Duration::from_secs(10), true);
        }
        assert_eq!(sizer.changes(), Sizer::MIN);
        // A short tail answered quickly says nothing of the link.
        sizer.answered(Duration::from_millis(10), false);
        assert_eq!(sizer.changes(), Sizer::MIN);
        // Between quick and slow the size holds.
        sizer.answered(Duration::from_secs(2), true);
        assert_eq!(sizer.changes(), Sizer::MIN);
    }

    #[test]
    fn orders_go_before_a_ledger_backlog_queued_earlier() {
        let mut out = Outgoing::default();
        out.enqueue(&ledger(), planned(0..3 * Sizer::FIRST as u32));
        let first = out.next_cut(true).unwrap();
        assert_eq!(first.doc, ledger());
        assert!(first.full);
        out.enqueue(&orders(), planned(5000..5003));
        let next = out.next_cut(true).unwrap();
        assert_eq!(next.doc, orders());
        assert_eq!(next.hashes, vec![hash(5000), hash(5001), hash(5002)]);
        assert!(!next.full);
        assert_eq!(out.next_cut(true).unwrap().doc, ledger());
    }

    #[test]
    fn no_change_is_cut_twice_and_each_comes_in_planned_order() {
        let mut out = Outgoing::default();
        out.enqueue(&ledger(), planned(0..100));
        out.enqueue(&ledger(), planned(100..250));
        let mut seen = Vec::new();
        while let Some(cut) = out.next_cut(false) {
            seen.extend(cut.hashes);
        }
        assert_eq!(seen, (0..250).map(hash).collect::<Vec<_>>());
        assert_eq!(out.covered(&ledger()), Some(&[hash(249)][..]));
        assert!(out.next_cut(false).is_none());
    }

    #[test]
    fn at_most_a_window_is_unanswered_and_unknown_answers_are_ignored() {
        let mut out = Outgoing::default();
        let first = out.sent(true);
        assert!(out.has_room(true));
        let second = out.sent(true);
        assert!(!out.has_room(true));
        assert!(
            out.has_room(false),
            "an unpaced peer gets everything at once"
        );
        out.answered(0);
        out.answered(second + 7);
        assert_eq!(out.in_flight(), 2);
        out.answered(first);
        assert!(out.has_room(true));
        assert_eq!(out.in_flight(), 1);
    }

    #[test]
    fn a_forgotten_document_is_planned_from_scratch() {
        let mut out = Outgoing::default();
        out.enqueue(&ledger(), planned(0..10));
        out.forget(&ledger());
        assert_eq!(out.covered(&ledger()), None);
        assert!(out.next_cut(true).is_none());
    }
}
