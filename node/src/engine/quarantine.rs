//! Documents that cannot be trusted: quarantine and the operator's way out.
//!
//! A stored document that fails to load (automerge error, missing dependencies, a
//! record failing its checksum) or to derive its view is quarantined at start-up: it
//! is not held in memory, not offered or taken in sync, not written; the rest of the
//! node serves. An operator then drops it (its records are moved aside under
//! `q/<drop time>/`, never deleted) so a peer can send it again, or refetches it
//! (drop, then ask the peers for it at once). Dropping a document this node is the
//! only source of is refused without `force`.
//!
//! This module must never delete a stored byte, nor let a quarantined document be
//! read as if it were whole.

use automerge::{ActorId, Automerge, AutomergeError};

use super::held::Held;
use super::replica::Replica;
use super::{Documents, Engine, EngineError};
use crate::domain::authz;
use crate::domain::doc_id::DocId;
use crate::store::DocStore;

/// A document opened from the store, or why it is quarantined.
pub(super) type Loaded = Result<Held, String>;

/// Loads `id` and derives its view (creating it with `genesis` when given and the
/// store has none). A fault of the document itself is logged loudly and returned as
/// the quarantine reason; a failure of the store as a whole stays an error.
pub(super) fn open_held(
    store: &DocStore<'_>,
    id: &DocId,
    actor: &ActorId,
    genesis: Option<&dyn Fn() -> Result<Automerge, AutomergeError>>,
) -> Result<Loaded, EngineError> {
    let opened = match genesis {
        Some(genesis) => Replica::open(store, id.clone(), actor, genesis).map(Some),
        None => Replica::load(store, id.clone(), actor),
    };
    let held = opened.and_then(|replica| match replica {
        Some(replica) => Held::new(replica),
        None => Err(EngineError::Document {
            doc: id.to_string(),
            reason: "listed in the store, but it has no records".into(),
        }),
    });
    match held {
        Ok(held) => Ok(Ok(held)),
        Err(e) if e.is_document_fault() => {
            let reason = e.to_string();
            tracing::error!(doc = %id, reason = %reason, "document quarantined: it cannot be loaded; the node serves every other document");
            Ok(Err(reason))
        }
        Err(e) => Err(e),
    }
}

/// What dropping a document did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub doc: DocId,
    /// Store records moved aside.
    pub records: usize,
    /// The store prefix they were moved under.
    pub moved_to: String,
    /// Whether it was quarantined.
    pub was_quarantined: bool,
}

impl Documents {
    /// Why `id` is not held: quarantined, or dropped by an operator.
    pub(super) fn unheld(&self, id: &DocId) -> EngineError {
        match self.quarantined.get(id) {
            Some(reason) => EngineError::Quarantined {
                doc: id.to_string(),
                reason: reason.clone(),
            },
            None => EngineError::NotHeld {
                doc: id.to_string(),
                reason: if self.wanted.contains(id) {
                    "dropped by an operator; waiting for a peer to send it again".into()
                } else {
                    "never received".into()
                },
            },
        }
    }

    /// Refuses anything about a quarantined document.
    pub(super) fn check_not_quarantined(&self, id: &DocId) -> Result<(), EngineError> {
        match self.quarantined.contains_key(id) {
            true => Err(self.unheld(id)),
            false => Ok(()),
        }
    }
}

impl Engine {
    /// Whether `doc` is quarantined here.
    pub fn is_quarantined(&self, doc: &DocId) -> bool {
        self.glance().quarantined.contains_key(doc)
    }

    /// Documents dropped by an operator that peers are asked for again (at every
    /// announce, until one arrives).
    pub fn wanted(&self) -> Vec<DocId> {
        self.glance().wanted.iter().cloned().collect()
    }

    /// Why dropping `doc` here may lose what no peer holds; `None` when a peer can
    /// send it back whole.
    fn drop_risk(&self, docs: &Documents, doc: &DocId) -> Option<String> {
        let me = &self.identity.node;
        if doc.owner(&self.identity.hub) == me {
            let restore = if self.identity.is_hub() {
                "a hub is restored from a backup of its own data dir"
            } else {
                "an outlet that lost its ledger is restored with `mart-node run --restore` on an empty data dir"
            };
            return Some(format!(
                "{doc} is this node's own document: its peers hold only what they acknowledged, \
                 so dropping it loses every change they lack, acknowledged sales included ({restore}; \
                 after a forced drop, restart the node before it writes again, so it writes with a \
                 fresh actor)"
            ));
        }
        if let (true, Some((outlet, _))) = (self.identity.is_hub(), doc.ledger_period()) {
            let newest = Self::periods_of(docs, outlet)
                .into_iter()
                .chain(docs.quarantined.keys().cloned())
                .filter(|id| id.ledger_period().is_some_and(|(n, _)| n == outlet))
                .max();
            if newest.as_ref() != Some(doc) {
                return Some(format!(
                    "{doc} is not the newest period of {outlet}'s ledger: {outlet} archives a \
                     period once the hub holds it, so no peer would send it again"
                ));
            }
        }
        None
    }

    /// Drops `doc`: its records are moved aside (never deleted) and it leaves memory,
    /// so a peer can send it again; peers are asked for it at their next round.
    /// Refused when this node may be the only one holding some of it, unless `force`.
    pub fn drop_document(&self, doc: &DocId, force: bool) -> Result<Dropped, EngineError> {
        let mut docs = self.docs();
        let known = docs.held.contains_key(doc)
            || docs.quarantined.contains_key(doc)
            || docs.archived.contains_key(doc);
        if !known {
            return Err(docs.unheld(doc));
        }
        if let (false, Some(risk)) = (force, self.drop_risk(&docs, doc)) {
            return Err(EngineError::Unsafe(format!(
                "{risk}; pass --force to drop it anyway"
            )));
        }
        let stamp = super::now_ms();
        let store = self.store();
        let records = store.set_aside(&doc.to_string(), stamp)?;
        self.backend.flush()?;
        docs.held.remove(doc);
        docs.archived.remove(doc);
        let was_quarantined = docs.quarantined.remove(doc).is_some();
        if self.peer_sends(doc) {
            docs.wanted.insert(doc.clone());
        }
        tracing::warn!(doc = %doc, records, force, "document dropped by an operator: records moved aside");
        Ok(Dropped {
            doc: doc.clone(),
            records,
            moved_to: format!("q/{stamp}/"),
            was_quarantined,
        })
    }

    /// Whether some peer of this node sends it `doc` (a district: the hub; the hub:
    /// the owner).
    pub fn peer_sends(&self, doc: &DocId) -> bool {
        let hub = &self.identity.hub;
        let from = if self.identity.is_hub() {
            doc.owner(hub)
        } else {
            hub
        };
        from != &self.identity.node && authz::accepted_from(doc, &self.identity.node, from, hub)
    }

    /// A dropped document arrived again: no longer asked for.
    pub(super) fn received_again(docs: &mut Documents, doc: &DocId) {
        if docs.wanted.remove(doc) {
            tracing::info!(doc = %doc, "dropped document received again from a peer");
        }
    }
}

/// After a peer's bundle was refused: the document in memory may hold part of it,
/// so it is loaded again exactly as the store holds it (this costs time in
/// proportion to the document, on refusals only). If even that fails, it is
/// quarantined.
pub(super) fn reload_from(store: &DocStore<'_>, actor: &ActorId, docs: &mut Documents, id: &DocId) {
    docs.held.remove(id);
    let reason = match open_held(store, id, actor, None) {
        Ok(Ok(held)) => {
            docs.held.insert(id.clone(), held);
            return;
        }
        Ok(Err(reason)) => reason,
        Err(e) => {
            tracing::error!(doc = %id, error = %e, "document quarantined: it cannot be reloaded after a refused bundle");
            e.to_string()
        }
    };
    docs.quarantined.insert(id.clone(), reason);
}
