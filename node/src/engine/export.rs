//! One document taken out of the node as it stands: its automerge bytes (what
//! `@automerge/automerge` or any automerge library loads) or plain JSON.
//!
//! Read-only: an export never writes, never loads an archived period into memory
//! (it is read from disk on the side) and never serves a quarantined document.

use crate::domain::doc_id::DocId;
use crate::domain::plain_json;

use super::replica::Replica;
use super::{Engine, EngineError};

/// The form an exported document takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportForm {
    /// `Automerge::save()`: the whole history, loadable by any automerge library.
    Automerge,
    /// The current state as pretty JSON (see [`plain_json`]).
    Json,
}

impl Engine {
    /// The document `id` in the form asked for. Blocking (a whole-document save, or a
    /// read from disk for an archived period): call it off the async threads.
    pub fn export_document(&self, id: &DocId, form: ExportForm) -> Result<Vec<u8>, EngineError> {
        {
            let docs = self.docs();
            if let Some(held) = docs.held.get(id) {
                return Ok(render(held.replica.doc(), form));
            }
            if !docs.archived.contains_key(id) {
                return Err(docs.unheld(id));
            }
        }
        // An archived period: read from disk without taking it back into memory.
        match Replica::load(&self.store(), id.clone(), &self.actor)? {
            Some(replica) => Ok(render(replica.doc(), form)),
            None => Err(EngineError::NotHeld {
                doc: id.to_string(),
                reason: "archived, but it has no records on disk".into(),
            }),
        }
    }
}

fn render(doc: &automerge::Automerge, form: ExportForm) -> Vec<u8> {
    match form {
        ExportForm::Automerge => doc.save(),
        ExportForm::Json => {
            let mut text = serde_json::to_vec_pretty(&plain_json::to_json(doc))
                .expect("a JSON value always serializes");
            text.push(b'\n');
            text
        }
    }
}
