//! Ledger periods at run time: which period of each ledger is current, opening the
//! next period when the outlet's clock enters it (sealing the previous one in the
//! same durable step), archiving settled periods and opening them on demand.
//!
//! Settled means nothing more can change for anyone who needs the period in memory:
//! at a district, a sealed period of its own the hub acknowledged whole; at the hub, a
//! sealed period of a district that has a later one, and its own sealed periods once
//! a later one was sealed too. An archived period stays on disk
//! (the hub keeps every period) and is never loaded at start-up. This module must
//! never drop a period that is open, unsealed, or not yet held by the hub.

use automerge::{ActorId, ChangeHash};

use super::held::Held;
use super::replica::Replica;
use super::{Documents, Engine, EngineError};
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::ledger::{self, Balances, Ledger};
use crate::domain::movement::Movement;
use crate::domain::period::{PeriodId, PeriodLength};
use crate::store::DocStore;

/// Movement ids of a period and their positions in it.
pub(super) type IdIndex = std::collections::HashMap<String, usize>;

/// Where a ledger period stands, as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodState {
    /// The period movements are written into.
    Open,
    /// Sealed, still in memory: not yet acknowledged by the hub (at a district), or
    /// the district's latest period (at the hub).
    Sealed,
    /// Sealed and settled: on disk only, opened on demand.
    Archived,
}

impl PeriodState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodState::Open => "open",
            PeriodState::Sealed => "sealed",
            PeriodState::Archived => "archived",
        }
    }
}

impl Documents {
    /// The newest period held (or quarantined) of `node`'s ledger.
    pub(super) fn newest_period_of(&self, node: &NodeId) -> Option<&DocId> {
        self.held
            .keys()
            .chain(self.out.busy.keys())
            .chain(self.quarantined.keys())
            .filter(|id| id.ledger_period().is_some_and(|(n, _)| n == node))
            .max()
    }

    /// The view of the newest period held of `node`'s ledger: its figures are the
    /// whole history's (each period opens with the previous one's closing).
    pub(super) fn newest_ledger_of(&self, node: &NodeId) -> Option<&Ledger> {
        self.newest_period_of(node)
            .and_then(|id| self.held.get(id))
            .and_then(|h| h.ledger())
    }

    /// Every outlet whose ledger is held, with the view of its newest period.
    pub(super) fn newest_ledgers(&self) -> Vec<(&NodeId, &Ledger)> {
        let mut out: Vec<(&NodeId, &Ledger)> = Vec::new();
        // Held documents are ordered by outlet, then period: the last one of each
        // outlet is its newest.
        for (id, held) in &self.held {
            let (Some((node, _)), Some(view)) = (id.ledger_period(), held.ledger()) else {
                continue;
            };
            match out.last_mut() {
                Some(last) if last.0 == node => *last = (node, view),
                _ => out.push((node, view)),
            }
        }
        out
    }

    /// Whether a later period of the same ledger is held.
    pub(super) fn superseded(&self, id: &DocId) -> bool {
        id.ledger_period()
            .is_some_and(|(node, _)| self.newest_period_of(node).is_some_and(|n| n > id))
    }
}

/// The movement ids of the outlet's period archived last, as kept in the store (an
/// unreadable record is dropped with a warning: it only serves retries).
pub(super) fn load_retired_ids(
    store: &DocStore<'_>,
) -> Result<Option<(DocId, IdIndex)>, EngineError> {
    let Some(json) = store.retired_ids()? else {
        return Ok(None);
    };
    let parsed =
        serde_json::from_slice::<(String, std::collections::HashMap<String, usize>)>(&json)
            .ok()
            .and_then(|(doc, ids)| Some((DocId::parse(&doc).ok()?, ids)));
    if parsed.is_none() {
        tracing::warn!("the ids of the period archived last are unreadable: ignored");
    }
    Ok(parsed)
}

/// Makes the newest period of `node`'s ledger the open one, or creates the first
/// period (at `now_ms`) with empty opening balances when the outlet has none.
pub(super) fn open_own_ledger(
    store: &DocStore<'_>,
    actor: &ActorId,
    node: &NodeId,
    docs: &mut Documents,
    length: PeriodLength,
    now_ms: i64,
) -> Result<(), EngineError> {
    if let Some(newest) = docs.newest_period_of(node) {
        docs.own_ledger = Some(newest.clone());
        return Ok(());
    }
    let id = DocId::Ledger(node.clone(), PeriodId::of_length(now_ms, length));
    start_period(store, actor, node, docs, id, &Balances::default())
}

/// Creates period `id` (its deterministic genesis, then its opening balances written
/// by this incarnation) and makes it the open one.
fn start_period(
    store: &DocStore<'_>,
    actor: &ActorId,
    node: &NodeId,
    docs: &mut Documents,
    id: DocId,
    opening: &Balances,
) -> Result<(), EngineError> {
    let mut replica = Replica::open(store, id.clone(), actor, || {
        Replica::genesis(node, |tx| ledger::init(tx))
    })?;
    if ledger::opening(replica.doc(), &id.to_string())?.is_none() {
        replica.commit(store, |tx| ledger::open_with(tx, opening))?;
    }
    docs.held.insert(id.clone(), Held::new(replica)?);
    docs.own_ledger = Some(id);
    Ok(())
}

impl Engine {
    /// The period a movement recorded now goes into. When the clock entered a later
    /// period (or the open one was sealed), the open period is sealed with its closing
    /// balances and the next one opened with them, staged together with the movement
    /// that follows. A clock that went back books into the open period.
    pub(super) fn period_for_write(
        &self,
        docs: &mut Documents,
        now_ms: i64,
    ) -> Result<DocId, EngineError> {
        let current = docs.own_ledger_id()?.clone();
        let (_, period) = current
            .ledger_period()
            .expect("the own ledger is a ledger period");
        let length = self.ledger_options.period;
        let mut wanted = PeriodId::of_length(now_ms, length);
        let store = self.store();
        // A clock far ahead of what the node has evidence for opens no period: the
        // movement goes into the open one (see `clock`).
        let evidence = if wanted > period {
            self.clock
                .may_open(now_ms, wanted.start_ms(), period.start_ms())
                .unwrap_or_else(|_| {
                    wanted = period;
                    None
                })
        } else {
            self.clock.note_reading(now_ms, period.start_ms())
        };
        if let Some(unix_ms) = evidence {
            store.set_clock_evidence(unix_ms)?;
        }
        let held = docs.held_mut(&current)?;
        let sealed = held.is_sealed();
        if wanted <= period && !sealed {
            return Ok(current);
        }
        let closing = held
            .ledger()
            .expect("a ledger document has a ledger view")
            .closing()
            .clone();
        if !sealed {
            held.replica
                .commit(&store, |tx| ledger::seal(tx, &closing))?;
        }
        let next = if wanted > period {
            wanted
        } else {
            // Sealed but the clock is not past it: the period right after.
            period.after(length)
        };
        let id = DocId::Ledger(self.identity.node.clone(), next);
        tracing::info!(sealed = %current, opened = %id, "ledger period sealed and the next opened");
        start_period(
            &store,
            &self.actor,
            &self.identity.node,
            docs,
            id.clone(),
            &closing,
        )?;
        if self.identity.is_hub() {
            // The hub's own ledger goes to no peer: a sealed period of it is settled
            // once a later one was sealed too (the last stays for retries).
            let older: Vec<DocId> = Self::periods_of(docs, &self.identity.node)
                .into_iter()
                .filter(|p| p < &current && !docs.archived.contains_key(p))
                .collect();
            for p in older {
                self.archive(docs, &p)?;
            }
        }
        Ok(id)
    }

    /// The hub's clock read `unix_ms` (its `Hello` or `Announced`): at a district,
    /// evidence of the date for the clock guard.
    pub fn note_hub_time(&self, unix_ms: i64) -> Result<(), EngineError> {
        if self.identity.is_hub() {
            return Ok(());
        }
        if let Some(t) = self.clock.note(unix_ms, super::EvidenceSource::HubClock) {
            self.store().set_clock_evidence(t)?;
        }
        Ok(())
    }

    /// The open period of this outlet's ledger; `None` while it is restored.
    pub fn open_period(&self) -> Option<DocId> {
        self.docs().own_ledger.clone()
    }

    /// Whether `doc` is a ledger period archived here (settled: nothing to exchange).
    pub fn is_archived(&self, doc: &DocId) -> bool {
        self.glance().archived.contains_key(doc)
    }

    /// Whether this outlet waits for its ledger from the hub (`restore`).
    pub fn restoring(&self) -> bool {
        self.glance().own_ledger.is_none()
    }

    /// Ends a restore once the hub sent what it holds of this outlet's ledger: the
    /// newest period it sent becomes the open one (a fresh outlet gets its first
    /// period). Returns whether a restore ended now.
    pub fn finish_restore(&self) -> Result<bool, EngineError> {
        let mut docs = self.docs();
        if docs.own_ledger.is_some() {
            return Ok(false);
        }
        let store = self.store();
        open_own_ledger(
            &store,
            &self.actor,
            &self.identity.node,
            &mut docs,
            self.ledger_options.period,
            super::now_ms(),
        )?;
        store.set_restoring(false)?;
        self.backend.flush()?;
        match &docs.own_ledger {
            Some(ledger) => tracing::info!(ledger = %ledger, "ledger restored from the hub"),
            None => tracing::info!("restored from the hub"),
        }
        // A new outlet's first period is announced to the hub at once.
        self.local_writes.send_modify(|n| *n += 1);
        Ok(true)
    }

    /// The hub holds `heads` of `doc`: a sealed period of this outlet the hub holds
    /// whole is archived.
    pub fn note_acknowledged(&self, doc: &DocId, heads: &[ChangeHash]) -> Result<(), EngineError> {
        if doc
            .ledger_period()
            .is_none_or(|(n, _)| n != &self.identity.node)
        {
            return Ok(());
        }
        let mut docs = self.docs();
        if docs.own_ledger.as_ref() == Some(doc) {
            return Ok(());
        }
        let Some(held) = docs.held.get(doc) else {
            return Ok(());
        };
        let mut ours = held.replica.doc().get_heads();
        let mut theirs = heads.to_vec();
        ours.sort();
        theirs.sort();
        if held.is_sealed() && ours == theirs {
            let index = held
                .ledger()
                .and_then(|l| l.index().cloned())
                .unwrap_or_default();
            if docs
                .retired_ids
                .as_ref()
                .is_none_or(|(retired, _)| retired < doc)
            {
                let json =
                    serde_json::to_vec(&(doc.to_string(), &index)).expect("an id index serializes");
                self.store().set_retired_ids(&json)?;
                docs.retired_ids = Some((doc.clone(), index));
            }
            self.archive(&mut docs, doc)?;
        }
        Ok(())
    }

    /// At the hub, after `node`'s ledger changed: every sealed period of it that has
    /// a later one is archived, and periods opened on demand are let go again.
    pub(super) fn archive_settled_at_hub(
        &self,
        docs: &mut Documents,
        node: &NodeId,
    ) -> Result<(), EngineError> {
        let settled: Vec<DocId> = docs
            .held
            .iter()
            .filter(|(id, held)| {
                id.ledger_period().is_some_and(|(n, _)| n == node)
                    && docs.superseded(id)
                    && held.is_sealed()
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in settled {
            self.archive(docs, &id)?;
        }
        Ok(())
    }

    fn archive(&self, docs: &mut Documents, id: &DocId) -> Result<(), EngineError> {
        if !docs.archived.contains_key(id) {
            let bytes = docs.held.get(id).map_or(0, |h| h.replica.bytes_on_disk());
            self.store().set_archived(&id.to_string(), bytes)?;
            docs.archived.insert(id.clone(), bytes);
            tracing::info!(doc = %id, "ledger period archived: on disk, out of memory");
        }
        docs.held.remove(id);
        Ok(())
    }

    /// Brings an archived period back into memory (a peer asks about it); it is let go
    /// again when it settles.
    pub(super) fn load_archived(
        &self,
        docs: &mut Documents,
        id: &DocId,
    ) -> Result<(), EngineError> {
        if docs.held.contains_key(id)
            || !docs.archived.contains_key(id)
            || docs.quarantined.contains_key(id)
        {
            return Ok(());
        }
        match super::quarantine::open_held(&self.store(), id, &self.actor, None)? {
            Ok(held) => {
                docs.held.insert(id.clone(), held);
            }
            Err(reason) => {
                docs.quarantined.insert(id.clone(), reason);
            }
        }
        Ok(())
    }

    /// The movements of one period of a ledger, from memory or (archived) from disk,
    /// without keeping an archived period in memory.
    pub(super) fn period_movements(
        &self,
        docs: &Documents,
        id: &DocId,
    ) -> Result<Vec<Movement>, EngineError> {
        if let Some(held) = docs.held.get(id) {
            return Ok(ledger::read_range(held.replica.doc(), &id.to_string(), ..)?);
        }
        docs.check_not_quarantined(id)?;
        let replica = Replica::load(&self.store(), id.clone(), &self.actor)?
            .ok_or_else(|| docs.unheld(id))?;
        Ok(ledger::read_range(replica.doc(), &id.to_string(), ..)?)
    }

    /// Every period of `node`'s ledger this node has, held or archived, oldest first.
    pub(super) fn periods_of(docs: &Documents, node: &NodeId) -> Vec<DocId> {
        let mut ids: Vec<DocId> = docs
            .held
            .keys()
            .chain(docs.archived.keys())
            .filter(|id| id.ledger_period().is_some_and(|(n, _)| n == node))
            .cloned()
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Where a ledger period stands here.
    pub(super) fn period_state(docs: &Documents, id: &DocId) -> PeriodState {
        match docs.held.get(id) {
            _ if docs.archived.contains_key(id) => PeriodState::Archived,
            Some(h) if h.is_sealed() => PeriodState::Sealed,
            _ => PeriodState::Open,
        }
    }
}
