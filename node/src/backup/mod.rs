//! Backups of a running node, and a node started from one.
//!
//! A backup is a folder: `manifest.json` (who the node is, every document with its
//! heads, the peer book, the clock evidence) and `documents/<id>.automerge`, each
//! document's `save()`. It is taken without stopping the node, one document at a
//! time: each file is one consistent state of its document, and the manifest names
//! the heads that state has. A restore checks every file against those heads before
//! anything is stored, and only into an empty data dir. It never reuses the writer:
//! the restored node draws a fresh incarnation, so it writes under an actor no
//! change has ever used (the node backed up may have written on after the backup).

mod manifest;
mod restore;
mod take;

pub use manifest::{
    document_path, LeftOut, Manifest, ManifestDocument, BACKUP_VERSION, MANIFEST_FILE,
};
pub use restore::{restore, Restored};
pub use take::{take, BackupFile};

use crate::engine::EngineError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the backup's {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("the backup's {path} is not what its manifest says: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("this backup cannot be restored here: {0}")]
    Mismatch(String),
    #[error("the backup stopped: {0}")]
    Stopped(String),
}
