//! A document the node holds together with the view derived from it: the catalog
//! read from a catalog document; the stock, quota and shipments derived from a
//! ledger; the orders and releases of an orders document; the budget allocations.

use super::replica::Replica;
use super::EngineError;
use crate::domain::actor::node_of_actor;
use crate::domain::budget::{self, Budgets};
use crate::domain::catalog::{self, Catalog};
use crate::domain::doc_id::DocKind;
use crate::domain::ledger::{self, Ledger};
use crate::domain::orders::{self, Orders};
use crate::domain::schema_version;
use crate::domain::DomainError;

/// What the node derives from a document, kept in step with it.
pub(crate) enum View {
    Catalog(Catalog),
    Ledger(Ledger),
    Orders(Orders),
    Budget(Budgets),
}

pub(crate) struct Held {
    pub replica: Replica,
    pub view: View,
}

impl Held {
    /// Derives the view of a freshly loaded document.
    pub fn new(replica: Replica) -> Result<Self, EngineError> {
        let view = Self::derive(&replica)?;
        Ok(Held { replica, view })
    }

    fn derive(replica: &Replica) -> Result<View, EngineError> {
        let name = replica.name();
        let doc = replica.doc();
        schema_version::check(doc, &name)?;
        Ok(match replica.id().kind() {
            DocKind::Catalog => View::Catalog(catalog::read(doc, &name)?),
            DocKind::Ledger => {
                let mut view = ledger::derive(doc, &name)?;
                if !Self::records_into(replica) {
                    view.forget_ids();
                }
                View::Ledger(view)
            }
            DocKind::Orders => View::Orders(
                Orders::replay(&orders::JOURNAL.read_range(doc, &name, ..)?)
                    .map_err(|e| DomainError::schema(&name, e))?,
            ),
            DocKind::Budget => View::Budget(
                Budgets::replay(&budget::JOURNAL.read_range(doc, &name, ..)?)
                    .map_err(|e| DomainError::schema(&name, e))?,
            ),
        })
    }

    /// Whether this node records movements into the ledger `replica` holds (its own
    /// outlet's): only then are movement ids kept, to answer retries.
    fn records_into(replica: &Replica) -> bool {
        let outlet = replica.id().ledger_period().map(|(outlet, _)| outlet);
        node_of_actor(replica.doc().get_actor()).is_some_and(|(node, _)| Some(&node) == outlet)
    }

    /// Applies a peer's changes in memory and brings the view up to date; returns
    /// whether any change was new. Nothing is staged. On an error the document and
    /// its view may hold part of the changes: the caller drops this `Held` and loads
    /// the document again from the store.
    pub fn apply_remote(&mut self, changes: Vec<automerge::Change>) -> Result<bool, EngineError> {
        let growth = match self.view {
            View::Ledger(_) => ledger::growth(self.replica.doc(), &changes),
            _ => ledger::Growth::Other,
        };
        if growth == ledger::Growth::Rewrites {
            // Recorded sales and receipts are never taken back: a history that
            // removes or rewrites one would erase it at every node it reaches.
            return Err(DomainError::schema(
                self.replica.name(),
                "a ledger only grows: these changes rewrite or remove recorded movements",
            )
            .into());
        }
        let last_movement = match &self.view {
            View::Ledger(view) if growth == ledger::Growth::Appends => view
                .len()
                .checked_sub(1)
                .and_then(|i| ledger::movement_element(self.replica.doc(), i)),
            _ => None,
        };
        if !self.replica.apply_in_memory(changes)? {
            return Ok(false);
        }
        self.refresh(last_movement)?;
        Ok(true)
    }

    /// Brings the view up to date after changes from a peer were applied. A ledger
    /// normally grows only at its end (one writer appends): when the changes did
    /// nothing but insert movements and the last movement before them
    /// (`last_movement`, its automerge element, unique to the operation that
    /// inserted it) is still at its place, every new movement landed after it, and
    /// only those are read. Anything else is derived again from scratch: catalogs,
    /// the hub's small orders and budget documents, a ledger whose history merged in
    /// the middle, and any change that touched more than the end of the list (a new
    /// `opening`, a movement overwritten, deleted, or inserted before the last one,
    /// even under the last one's id): following those movement by movement would let
    /// a peer store what a full derivation refuses, and the document would be
    /// quarantined at the next start (found by `sync::fuzz_tests`).
    fn refresh(&mut self, last_movement: Option<automerge::ObjId>) -> Result<(), EngineError> {
        let name = self.replica.name();
        let doc = self.replica.doc();
        schema_version::check(doc, &name)?;
        match &mut self.view {
            View::Ledger(view) => {
                // Two incarnations of the owner that wrote concurrently (a district
                // that lost its disk and sold before its history came back) merge
                // their movements into the list, not only at its end: then the view
                // is derived again.
                // A period whose view has no movement yet is derived again whole: its
                // opening balances may have arrived with this change.
                let kept = match (view.len().checked_sub(1), last_movement) {
                    (Some(i), Some(before)) => {
                        ledger::movement_element(doc, i).is_some_and(|now| now == before)
                    }
                    _ => false,
                };
                if kept {
                    // The same rules as a local write: a movement that breaks one is
                    // a schema break of the document.
                    for m in &ledger::read_from(doc, &name, view.len())? {
                        view.apply(m).map_err(|e| {
                            DomainError::schema(&name, format!("movement {}: {e}", m.id))
                        })?;
                    }
                } else {
                    self.view = Self::derive(&self.replica)?;
                }
            }
            View::Orders(_) | View::Budget(_) | View::Catalog(_) => {
                self.view = Self::derive(&self.replica)?
            }
        }
        Ok(())
    }

    /// Whether this is a ledger period its owner sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self.view, View::Ledger(_)) && ledger::is_sealed(self.replica.doc())
    }

    pub fn catalog(&self) -> Option<&Catalog> {
        match &self.view {
            View::Catalog(c) => Some(c),
            _ => None,
        }
    }

    pub fn ledger(&self) -> Option<&Ledger> {
        match &self.view {
            View::Ledger(l) => Some(l),
            _ => None,
        }
    }

    pub fn orders(&self) -> Option<&Orders> {
        match &self.view {
            View::Orders(o) => Some(o),
            _ => None,
        }
    }

    pub fn budgets(&self) -> Option<&Budgets> {
        match &self.view {
            View::Budget(b) => Some(b),
            _ => None,
        }
    }
}
