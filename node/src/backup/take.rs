//! Taking a backup of a running node: one document at a time, each saved off the
//! async threads, the manifest last (a folder without one is an unfinished backup).
//!
//! It never holds the documents for longer than one document's save, and never
//! writes anything to the node.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::manifest::{
    document_path, LeftOut, Manifest, ManifestDocument, BACKUP_VERSION, MANIFEST_FILE,
};
use super::BackupError;
use crate::engine::{now_ms, Engine, EngineError};

/// One file of a backup folder.
#[derive(Debug, Clone)]
pub struct BackupFile {
    /// Relative to the backup folder (`manifest.json`, `documents/...`).
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Sends every file of a backup of `engine` to `out`, the manifest last, and
/// returns the manifest. `peers` is the peer book's records
/// (`PeerBook::backup_records`). Stops when `out` is closed (the caller went away).
pub async fn take(
    engine: Arc<Engine>,
    peers: BTreeMap<String, serde_json::Value>,
    out: mpsc::Sender<BackupFile>,
) -> Result<Manifest, BackupError> {
    let scope = blocking(&engine, |e| e.backup_scope()).await?;
    let mut documents = Vec::new();
    let mut left_out: Vec<LeftOut> = scope
        .quarantined
        .iter()
        .map(|(id, reason)| LeftOut {
            id: id.to_string(),
            reason: format!("quarantined: {reason}"),
        })
        .collect();
    for id in scope.documents {
        let saved = {
            let id = id.clone();
            blocking(&engine, move |e| e.save_document(&id)).await
        };
        let saved = match saved {
            Ok(saved) => saved,
            // Quarantined or dropped by an operator since the scope was read.
            Err(e @ (EngineError::Quarantined { .. } | EngineError::NotHeld { .. })) => {
                left_out.push(LeftOut {
                    id: id.to_string(),
                    reason: e.to_string(),
                });
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let path = document_path(&id);
        documents.push(ManifestDocument {
            id: id.to_string(),
            file: path.clone(),
            bytes: saved.bytes.len() as u64,
            heads: saved.heads.iter().map(|h| h.to_string()).collect(),
            changes: saved.changes,
            archived: saved.archived,
        });
        send(
            &out,
            BackupFile {
                path,
                bytes: saved.bytes,
            },
        )
        .await?;
    }
    // Only what is durable goes into a backup: never a write whose flush may fail.
    engine.reads_durable().await?;
    let identity = engine.identity();
    let retired_ids = match scope.retired_ids {
        Some(json) => Some(
            serde_json::from_slice(&json).map_err(|e| BackupError::Corrupt {
                path: "m/retired".into(),
                reason: e.to_string(),
            })?,
        ),
        None => None,
    };
    let manifest = Manifest {
        version: BACKUP_VERSION,
        node: identity.node.to_string(),
        hub: identity.hub.to_string(),
        role: identity.role().to_string(),
        taken_at_unix_ms: now_ms(),
        incarnation: scope.incarnation,
        documents,
        left_out,
        clock_evidence_unix_ms: scope.clock_evidence_ms,
        retired_ids,
        peers,
    };
    let mut text = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    text.push(b'\n');
    send(
        &out,
        BackupFile {
            path: MANIFEST_FILE.into(),
            bytes: text,
        },
    )
    .await?;
    Ok(manifest)
}

async fn send(out: &mpsc::Sender<BackupFile>, file: BackupFile) -> Result<(), BackupError> {
    out.send(file)
        .await
        .map_err(|_| BackupError::Stopped("the client went away".into()))
}

/// Runs `work` on the engine off the async threads.
async fn blocking<R: Send + 'static>(
    engine: &Arc<Engine>,
    work: impl FnOnce(&Engine) -> Result<R, EngineError> + Send + 'static,
) -> Result<R, EngineError> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || work(&engine))
        .await
        .map_err(|e| EngineError::Unsafe(format!("a backup step stopped: {e}")))?
}
