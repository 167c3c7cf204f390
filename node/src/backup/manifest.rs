//! `manifest.json`, the index of a backup folder: versioned, and strict on read (an
//! unknown field or version is refused, never guessed at).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::doc_id::DocId;

/// The manifest's name in a backup folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The format this build writes and reads.
pub const BACKUP_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    /// The node backed up, and its hub; a backup restores only under the same ones.
    pub node: String,
    pub hub: String,
    pub role: String,
    /// When the manifest was written (after every document), ms since the epoch.
    pub taken_at_unix_ms: i64,
    /// The incarnation the node wrote under when backed up (for the record: a
    /// restored node draws a new one).
    pub incarnation: u32,
    pub documents: Vec<ManifestDocument>,
    /// Documents not in the backup (quarantined, or dropped while it was taken).
    #[serde(default)]
    pub left_out: Vec<LeftOut>,
    /// The newest time the node had evidence for (its clock guard), ms.
    pub clock_evidence_unix_ms: Option<i64>,
    /// The movement ids of the period the outlet archived last.
    pub retired_ids: Option<serde_json::Value>,
    /// Each sync peer's record (attempts, success, last error, clock offset).
    #[serde(default)]
    pub peers: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestDocument {
    pub id: String,
    /// Relative to the backup folder; always [`document_path`] of the id.
    pub file: String,
    pub bytes: u64,
    /// Hex change hashes: the state the file holds.
    pub heads: Vec<String>,
    pub changes: u64,
    /// A sealed and settled period (kept on disk only, not loaded at start-up).
    pub archived: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeftOut {
    pub id: String,
    pub reason: String,
}

/// Where a document's bytes go in a backup folder. Document ids hold `/`, never
/// `~` or `..`: the file is a plain name inside `documents/`.
pub fn document_path(id: &DocId) -> String {
    format!("documents/{}.automerge", id.to_string().replace('/', "~"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_file_is_a_plain_name_inside_documents() {
        let id = DocId::parse("ledger/ttu/2026-12").unwrap();
        assert_eq!(document_path(&id), "documents/ledger~ttu~2026-12.automerge");
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let text = r#"{"version":1,"node":"ttu","hub":"kupang","role":"district","taken_at_unix_ms":0,
            "incarnation":7,"documents":[],"clock_evidence_unix_ms":null,"retired_ids":null,"extra":1}"#;
        assert!(serde_json::from_str::<Manifest>(text).is_err());
    }
}
