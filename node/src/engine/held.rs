//! A document the node holds together with the view derived from it: the catalog
//! read from a catalog document, the stock derived from a ledger.

use super::replica::Replica;
use super::EngineError;
use crate::domain::catalog::{self, Catalog};
use crate::domain::doc_id::DocKind;
use crate::domain::ledger::{self, Ledger};

/// What the node derives from a document, kept in step with it.
pub(crate) enum View {
    Catalog(Catalog),
    Ledger(Ledger),
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
        Ok(match replica.id().kind() {
            DocKind::Catalog => View::Catalog(catalog::read(replica.doc(), &name)?),
            DocKind::Ledger => {
                let movements = ledger::read_range(replica.doc(), &name, ..)?;
                View::Ledger(Ledger::replay(&movements))
            }
        })
    }

    /// Brings the view up to date after changes from a peer were applied. A ledger
    /// only grows at its end (one writer appends), so only new movements are read;
    /// anything else is derived again from scratch.
    pub fn refresh(&mut self) -> Result<(), EngineError> {
        if let View::Ledger(ledger_view) = &mut self.view {
            let len = ledger::len(self.replica.doc());
            if len >= ledger_view.len() {
                let name = self.replica.name();
                let new = ledger::read_range(self.replica.doc(), &name, ledger_view.len()..)?;
                for m in &new {
                    ledger_view.apply(m);
                }
                return Ok(());
            }
        }
        self.view = Self::derive(&self.replica)?;
        Ok(())
    }

    pub fn catalog(&self) -> Option<&Catalog> {
        match &self.view {
            View::Catalog(c) => Some(c),
            View::Ledger(_) => None,
        }
    }

    pub fn ledger(&self) -> Option<&Ledger> {
        match &self.view {
            View::Ledger(l) => Some(l),
            View::Catalog(_) => None,
        }
    }
}
