//! What the sync layer asks of the engine: heads, the changes a peer lacks as
//! bundles, and applying a peer's bundle durably after checking who wrote it.

use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use super::checkout::Apply;
use super::{Engine, EngineError};
use crate::domain::authz;
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::DomainError;

/// Raw change bytes gathered before a bundle is cut; bundles compress them about
/// twentyfold, so a bundle stays well under the 1 MiB message limit.
const RAW_BYTES_PER_BUNDLE: usize = 4 << 20;

/// What a peer lacks of a document, as [`Engine::plan_after`] found it.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    /// The hashes of the changes it lacks, in an order it can apply them.
    pub pending: Vec<ChangeHash>,
    /// This node's heads of the document when planned: every change up to them is
    /// in `pending` or held by the peer.
    pub heads: Vec<ChangeHash>,
}

/// A bundle of changes ready to send.
#[derive(Debug, Clone)]
pub struct OutBundle {
    pub doc: DocId,
    pub data: Vec<u8>,
    pub changes: u32,
}

pub(super) fn known(doc: &Automerge, heads: &[ChangeHash]) -> Vec<ChangeHash> {
    heads
        .iter()
        .filter(|h| doc.get_change_meta_by_hash(h).is_some())
        .copied()
        .collect()
}

impl Engine {
    /// Every document held, with its heads.
    pub fn held_heads(&self) -> Vec<(DocId, Vec<ChangeHash>)> {
        let docs = self.glance();
        let mut all: Vec<(DocId, Vec<ChangeHash>)> = docs
            .held
            .iter()
            .map(|(id, h)| (id.clone(), h.replica.doc().get_heads()))
            .chain(
                docs.out
                    .busy
                    .iter()
                    .filter(|(_, b)| b.changes > 0)
                    .map(|(id, b)| (id.clone(), b.heads.clone())),
            )
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Whether a later period of this ledger is held: the hub offers a district only
    /// the newest period of its ledger (its balances are the whole history's), so a
    /// district restoring from the hub never replays sealed periods.
    pub fn superseded(&self, doc: &DocId) -> bool {
        self.glance().superseded(doc)
    }

    /// How many changes of `doc` this node holds (0 when it holds none).
    pub fn change_count(&self, doc: &DocId) -> u64 {
        let docs = self.glance();
        match docs.held.get(doc) {
            Some(h) => h.replica.doc().stats().num_changes,
            None => docs.out.busy.get(doc).map_or(0, |b| b.changes),
        }
    }

    /// Timestamp (ms) of the oldest change of `doc` not covered by `have`.
    pub fn oldest_missing_ms(&self, doc: &DocId, have: &[ChangeHash]) -> Option<i64> {
        let docs = self.docs_for(&[doc]);
        let d = docs.held.get(doc)?.replica.doc();
        self.pending.missing(doc, have, d).oldest_ms
    }

    /// Current heads of a document, if held. At the hub an archived period a
    /// district asks about is opened from disk to answer.
    pub fn heads(&self, doc: &DocId) -> Option<Vec<ChangeHash>> {
        let docs = self.docs_for_peer(doc);
        docs.held.get(doc).map(|h| h.replica.doc().get_heads())
    }

    /// Current heads of a document if it is in memory (an archived period is not
    /// opened: nothing of it is owed to anyone).
    pub fn heads_in_memory(&self, doc: &DocId) -> Option<Vec<ChangeHash>> {
        let docs = self.glance();
        match docs.held.get(doc) {
            Some(h) => Some(h.replica.doc().get_heads()),
            None => docs.out.busy.get(doc).map(|b| b.heads.clone()),
        }
    }

    /// The documents, with `doc` brought back into memory at the hub if it was
    /// archived (a failure to load it is logged: the document then looks absent).
    /// Waits only while `doc` itself is checked out.
    fn docs_for_peer(&self, doc: &DocId) -> std::sync::MutexGuard<'_, super::Documents> {
        let mut docs = self.docs_for(&[doc]);
        if self.identity.is_hub() {
            if let Err(e) = self.load_archived(&mut docs, doc) {
                tracing::error!(doc = %doc, error = %e, "cannot open an archived period");
            }
        }
        docs
    }

    /// Whether every hash in `heads` is a change this node holds.
    pub fn knows_all(&self, doc: &DocId, heads: &[ChangeHash]) -> bool {
        let docs = self.docs_for_peer(doc);
        match docs.held.get(doc) {
            Some(h) => known(h.replica.doc(), heads).len() == heads.len(),
            None => heads.is_empty(),
        }
    }

    /// How many changes of `doc` a peer that has `have` lacks.
    pub fn count_missing(&self, doc: &DocId, have: &[ChangeHash]) -> usize {
        let docs = self.docs_for(&[doc]);
        docs.held.get(doc).map_or(0, |h| {
            self.pending.missing(doc, have, h.replica.doc()).count as usize
        })
    }

    /// The changes of `doc` not covered by `have`, one by one (for diagnostics and
    /// benchmarks; sync sends [`Engine::bundles_after`]).
    pub fn changes_after(
        &self,
        doc: &DocId,
        have: &[ChangeHash],
    ) -> Result<Vec<Change>, EngineError> {
        let docs = self.docs_for(&[doc]);
        Ok(docs
            .held
            .get(doc)
            .map(|h| {
                let d = h.replica.doc();
                d.get_changes(&known(d, have))
            })
            .unwrap_or_default())
    }

    /// The changes of `doc` a peer holding `have` lacks, in an order it can apply
    /// them, and the heads they lead to; `None` if this node holds no such document.
    /// Costs in proportion to what the peer lacks, not to the document: a session
    /// plans once and cuts its bundles from the plan as the link takes them.
    pub fn plan_after(
        &self,
        doc: &DocId,
        have: &[ChangeHash],
    ) -> Result<Option<Planned>, EngineError> {
        self.reading_changes(doc, |d| {
            let pending = d
                .get_changes_meta(&known(d, have))
                .into_iter()
                .map(|m| m.hash)
                .collect();
            Ok(Planned {
                pending,
                heads: d.get_heads(),
            })
        })
    }

    /// The changes `hashes` of `doc` (planned by [`Engine::plan_after`]) as bundles
    /// of at most `max_bytes` each, in the order given.
    pub fn bundle_changes(
        &self,
        doc: &DocId,
        hashes: &[ChangeHash],
        max_bytes: usize,
    ) -> Result<Vec<OutBundle>, EngineError> {
        let cut = self.reading_changes(doc, |d| {
            let mut out = Vec::new();
            bundle_within(d, doc, hashes, max_bytes, &mut out)?;
            Ok(out)
        })?;
        cut.ok_or_else(|| EngineError::Document {
            doc: doc.to_string(),
            reason: "no longer held: its changes cannot be bundled".into(),
        })
    }

    /// The changes of `doc` not covered by `have`, as bundles of at most
    /// `max_bytes` each, in an order the receiver can apply one by one (all at once:
    /// for tests, benchmarks and tools; a session cuts them from a plan).
    pub fn bundles_after(
        &self,
        doc: &DocId,
        have: &[ChangeHash],
        max_bytes: usize,
    ) -> Result<Vec<OutBundle>, EngineError> {
        let cut = self.reading_changes(doc, |d| {
            let changes = d.get_changes(&known(d, have));
            let mut groups: Vec<Vec<ChangeHash>> = Vec::new();
            let mut raw = 0;
            for change in &changes {
                if groups.is_empty() || raw + change.raw_bytes().len() > RAW_BYTES_PER_BUNDLE {
                    groups.push(Vec::new());
                    raw = 0;
                }
                raw += change.raw_bytes().len();
                groups
                    .last_mut()
                    .expect("a group was pushed")
                    .push(change.hash());
            }
            let mut out = Vec::new();
            for group in groups {
                bundle_within(d, doc, &group, max_bytes, &mut out)?;
            }
            Ok(out)
        })?;
        Ok(cut.unwrap_or_default())
    }

    /// Runs `read` over the history of `doc` (brought back from the archive at the
    /// hub); `None` if the document is not held.
    ///
    /// automerge panicked reading the changes of a document that had taken a
    /// damaged bundle (an assertion in its change collector, found by
    /// `sync::fuzz_tests`): under the documents' lock that poisoned it and the node
    /// failed every call after. The document is quarantined instead; the node serves
    /// the rest.
    fn reading_changes<T>(
        &self,
        doc: &DocId,
        read: impl FnOnce(&Automerge) -> Result<T, EngineError>,
    ) -> Result<Option<T>, EngineError> {
        let mut docs = self.docs_for_peer(doc);
        let Some(held) = docs.held.get(doc) else {
            return Ok(None);
        };
        let d = held.replica.doc();
        let read = std::panic::AssertUnwindSafe(|| read(d));
        match super::checkout::off_async(|| crate::fail_stop::catch_expected(read)) {
            Ok(answer) => answer.map(Some),
            Err(_) => {
                let reason = "automerge failed reading its changes (it took a damaged bundle)";
                tracing::error!(doc = %doc, "document quarantined: {reason}");
                docs.held.remove(doc);
                docs.quarantined.insert(doc.clone(), reason.to_string());
                Err(EngineError::Quarantined {
                    doc: doc.to_string(),
                    reason: reason.to_string(),
                })
            }
        }
    }

    /// Applies a bundle from `from` to `doc`, durably, after checking that `from`
    /// may send this document and that every change was written by its owner.
    /// Returns the document's new heads. Nothing is stored if any check fails.
    pub async fn apply_bundle(
        &self,
        from: &NodeId,
        doc: &DocId,
        data: &[u8],
    ) -> Result<Vec<ChangeHash>, EngineError> {
        let hub = &self.identity.hub;
        authz::check_sender(doc, from, hub)?;
        if !authz::accepted_from(doc, &self.identity.node, from, hub) {
            return Err(DomainError::Forbidden {
                doc: doc.to_string(),
                reason: format!(
                    "{} does not take this document from {from}",
                    self.identity.node
                ),
            }
            .into());
        }
        let (bundle, changes) = self.parser.read(from, doc, data).await?;
        for change in &changes {
            authz::check_author(doc, change.actor_id(), hub)?;
        }
        // The document is checked out of the map and the bundle applied on a
        // blocking thread: other documents (other districts' sessions, status) are
        // served meanwhile.
        let held = self.check_out(doc)?;
        let apply = Apply {
            slots: self.docs.clone(),
            doc: doc.clone(),
            held,
            actor: self.actor.clone(),
            backend: self.backend.clone(),
            data: data.to_vec(),
            deps: bundle.deps().to_vec(),
            changes,
        };
        let created = match tokio::task::spawn_blocking(move || apply.run()).await {
            Ok(outcome) => outcome?,
            Err(e) => {
                tracing::error!(doc = %doc, error = %e, "applying a bundle failed: the document is loaded again from the store");
                self.check_in_after_failure(doc);
                return Err(EngineError::Document {
                    doc: doc.to_string(),
                    reason: "applying the bundle failed: nothing of it kept".into(),
                });
            }
        };
        let heads = {
            let mut docs = self.docs_for(&[doc]);
            if created {
                Self::received_again(&mut docs, doc);
            }
            let heads = docs.held(doc)?.replica.doc().get_heads();
            if let (true, Some((outlet, _))) = (self.identity.is_hub(), doc.ledger_period()) {
                self.archive_settled_at_hub(&mut docs, outlet)?;
            }
            heads
        };
        self.commits.durable().await?;
        if let DocId::Ledger(outlet, _) = doc {
            // The hub answers quota return requests as soon as it sees them; a failure
            // here leaves them for the next bundle and never refuses this one.
            if let Err(e) = self.answer_quota_returns(outlet).await {
                tracing::warn!(outlet = %outlet, error = %e, "cannot answer quota return requests yet");
            }
        }
        Ok(heads)
    }
}

/// A peer's bundle that breaks its document's rules, refused before anything was
/// staged: the sender's fault (INVALID_ARGUMENT) whatever part of the schema broke;
/// a domain rule keeps its own code.
pub(super) fn refused(doc: &DocId, e: EngineError) -> EngineError {
    match e {
        EngineError::Domain(DomainError::Schema { .. }) | EngineError::Document { .. } => {
            DomainError::invalid(
                "bundle.data",
                format!("{doc}: the changes break the document's rules, nothing stored: {e}"),
            )
            .into()
        }
        EngineError::Domain(d) => EngineError::Domain(d),
        other => other,
    }
}

pub(super) fn missing(doc: &DocId, count: usize) -> EngineError {
    DomainError::MissingDependencies {
        doc: doc.to_string(),
        count,
    }
    .into()
}

/// Bundles `hashes`, halving the group until each bundle fits in `max_bytes`.
fn bundle_within(
    d: &Automerge,
    doc: &DocId,
    hashes: &[ChangeHash],
    max_bytes: usize,
    out: &mut Vec<OutBundle>,
) -> Result<(), EngineError> {
    let bundle = d
        .bundle(hashes.iter().copied())
        .map_err(|e| EngineError::Document {
            doc: doc.to_string(),
            reason: format!("cannot bundle changes: {e}"),
        })?;
    let data = bundle.bytes().to_vec();
    if data.len() <= max_bytes {
        out.push(OutBundle {
            doc: doc.clone(),
            data,
            changes: hashes.len() as u32,
        });
        return Ok(());
    }
    if hashes.len() == 1 {
        return Err(EngineError::Document {
            doc: doc.to_string(),
            reason: format!(
                "one change of {} bytes exceeds the {max_bytes}-byte message limit",
                data.len()
            ),
        });
    }
    let (first, second) = hashes.split_at(hashes.len() / 2);
    bundle_within(d, doc, first, max_bytes, out)?;
    bundle_within(d, doc, second, max_bytes, out)
}
