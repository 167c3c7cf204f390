//! One document taken out of the node as it stands: its automerge bytes (what
//! `@automerge/automerge` or any automerge library loads) or plain JSON.
//!
//! A backup takes every document this way, one at a time (see `crate::backup`).
//!
//! Read-only: an export never writes, never loads an archived period into memory
//! (it is read from disk on the side) and never serves a quarantined document.

use automerge::ReadDoc;

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

/// One document saved whole, for a backup.
#[derive(Debug, Clone)]
pub struct SavedDocument {
    /// `Automerge::save()` of the document.
    pub bytes: Vec<u8>,
    pub heads: Vec<automerge::ChangeHash>,
    pub changes: u64,
    /// A sealed and settled period, kept on disk only.
    pub archived: bool,
}

/// What a backup of the node's documents covers.
#[derive(Debug, Clone, Default)]
pub struct BackupScope {
    /// Every document held or archived, in id order.
    pub documents: Vec<DocId>,
    /// Quarantined documents, with the reason: not in the backup.
    pub quarantined: Vec<(DocId, String)>,
    /// The newest time the node has evidence for (its clock guard), ms.
    pub clock_evidence_ms: Option<i64>,
    /// The movement ids of the period this outlet archived last (JSON).
    pub retired_ids: Option<Vec<u8>>,
    /// The incarnation this start writes under (a restored node draws a new one).
    pub incarnation: u32,
}

impl Engine {
    /// What a backup taken now covers. Cheap: the documents are then saved one at a
    /// time with [`Engine::save_document`], never all under one lock.
    pub fn backup_scope(&self) -> Result<BackupScope, EngineError> {
        let docs = self.docs();
        let mut documents: Vec<DocId> = docs.held.keys().cloned().collect();
        documents.extend(
            docs.archived
                .keys()
                .filter(|id| !docs.held.contains_key(id))
                .cloned(),
        );
        documents.sort();
        let quarantined = docs
            .quarantined
            .iter()
            .map(|(id, reason)| (id.clone(), reason.clone()))
            .collect();
        drop(docs);
        let store = self.store();
        Ok(BackupScope {
            documents,
            quarantined,
            clock_evidence_ms: store.clock_evidence()?,
            retired_ids: store.retired_ids()?,
            incarnation: self.incarnation,
        })
    }

    /// The document `id` saved whole, with its heads. Blocking: call it off the
    /// async threads.
    pub fn save_document(&self, id: &DocId) -> Result<SavedDocument, EngineError> {
        let saved = |doc: &automerge::Automerge, archived: bool| SavedDocument {
            bytes: doc.save(),
            heads: doc.get_heads(),
            changes: doc.stats().num_changes,
            archived,
        };
        {
            let docs = self.docs();
            if let Some(held) = docs.held.get(id) {
                return Ok(saved(held.replica.doc(), docs.archived.contains_key(id)));
            }
            if !docs.archived.contains_key(id) {
                return Err(docs.unheld(id));
            }
        }
        Ok(saved(self.load_from_disk(id)?.doc(), true))
    }

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
        Ok(render(self.load_from_disk(id)?.doc(), form))
    }

    /// An archived period read from disk without taking it back into memory.
    fn load_from_disk(&self, id: &DocId) -> Result<Replica, EngineError> {
        Replica::load(&self.store(), id.clone(), &self.actor)?.ok_or_else(|| EngineError::NotHeld {
            doc: id.to_string(),
            reason: "archived, but it has no records on disk".into(),
        })
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
