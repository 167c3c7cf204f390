//! Starting a node from a backup folder (`mart-node run --restore-from DIR`): every
//! document checked against the heads its manifest names, then stored, before the
//! engine opens the store.
//!
//! It must never write into a data dir that holds documents, never store a file
//! whose heads differ from its manifest's, and never carry the backed-up node's
//! incarnation over (the engine draws a fresh one for an empty store).

use std::path::Path;

use automerge::Automerge;

use super::manifest::{document_path, Manifest, BACKUP_VERSION, MANIFEST_FILE};
use super::BackupError;
use crate::domain::doc_id::DocId;
use crate::engine::Identity;
use crate::store::{Backend, DocStore};

/// What a restore stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub documents: usize,
    pub bytes: u64,
    pub peers: usize,
}

/// Stores the backup in `dir` into the empty store `backend`, for `identity`.
pub fn restore(
    backend: &dyn Backend,
    dir: &Path,
    identity: &Identity,
) -> Result<Restored, BackupError> {
    let manifest = read_manifest(dir)?;
    if manifest.node != identity.node.as_str() || manifest.hub != identity.hub.as_str() {
        return Err(BackupError::Mismatch(format!(
            "it is of node {} (hub {}), this node is {} (hub {})",
            manifest.node, manifest.hub, identity.node, identity.hub
        )));
    }
    let store = DocStore::new(backend);
    let held = store.document_ids()?;
    if !held.is_empty() {
        return Err(BackupError::Mismatch(format!(
            "the data dir already holds {} documents (e.g. {}): restore into an empty one",
            held.len(),
            held[0]
        )));
    }
    // Check every file first: nothing is stored from a backup that fails anywhere.
    let mut checked = Vec::with_capacity(manifest.documents.len());
    for entry in &manifest.documents {
        let id = DocId::parse(&entry.id).map_err(|e| corrupt(MANIFEST_FILE, e.to_string()))?;
        if entry.file != document_path(&id) {
            return Err(corrupt(
                MANIFEST_FILE,
                format!(
                    "{} is kept at {}, not {}",
                    entry.id,
                    document_path(&id),
                    entry.file
                ),
            ));
        }
        let bytes = std::fs::read(dir.join(&entry.file)).map_err(|e| BackupError::Read {
            path: entry.file.clone(),
            reason: e.to_string(),
        })?;
        let doc = Automerge::load(&bytes).map_err(|e| corrupt(&entry.file, e.to_string()))?;
        let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
        let mut expected = entry.heads.clone();
        heads.sort();
        expected.sort();
        if heads != expected {
            return Err(corrupt(
                &entry.file,
                format!("heads {heads:?}, the manifest says {expected:?}"),
            ));
        }
        checked.push((id, bytes, entry.archived));
    }
    let mut bytes_stored = 0;
    for (id, bytes, archived) in &checked {
        let name = id.to_string();
        store.compact(&name, bytes, 0)?;
        if *archived {
            store.set_archived(&name, bytes.len() as u64)?;
        }
        bytes_stored += bytes.len() as u64;
    }
    if let Some(ms) = manifest.clock_evidence_unix_ms {
        store.set_clock_evidence(ms)?;
    }
    if let Some(retired) = &manifest.retired_ids {
        store.set_retired_ids(&serde_json::to_vec(retired).expect("JSON serializes"))?;
    }
    let peers = crate::sync::restore_peer_records(backend, &manifest.peers)?;
    backend.flush()?;
    tracing::info!(
        from = %dir.display(),
        documents = checked.len(),
        bytes = bytes_stored,
        peers,
        left_out = manifest.left_out.len(),
        "restored from a backup"
    );
    Ok(Restored {
        documents: checked.len(),
        bytes: bytes_stored,
        peers,
    })
}

fn read_manifest(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read(&path).map_err(|e| BackupError::Read {
        path: path.display().to_string(),
        reason: format!("{e} (a backup folder without a manifest is unfinished)"),
    })?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| corrupt(MANIFEST_FILE, e.to_string()))?;
    if manifest.version != BACKUP_VERSION {
        return Err(BackupError::Mismatch(format!(
            "backup format {} (this build reads {BACKUP_VERSION})",
            manifest.version
        )));
    }
    Ok(manifest)
}

fn corrupt(path: &str, reason: String) -> BackupError {
    BackupError::Corrupt {
        path: path.to_string(),
        reason,
    }
}
