//! How the peer book is kept on disk: one record per peer (`p/<peer>`: attempts,
//! success, last error, clock offset) and one key per peer and document for the heads
//! the peer acknowledged (`ph/<peer>/<doc>`), so recording one document's heads
//! writes that key alone, never the whole record (a record rewritten whole at every
//! `Have` made a flood of claims cost the square of its size on disk).
//!
//! Builds before kept every document's heads inside the peer's record (`acked`);
//! such a record is still read, and rewritten into the new keys as it loads, in one
//! atomic write. It must never fail a start: an unreadable entry is logged and
//! skipped, and the protocol re-learns it on the next session.

use std::collections::BTreeMap;

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

use super::limits::MAX_HEADS_PER_DOC;
use super::peers::PeerRecord;
use crate::domain::doc_id::{DocId, NodeId};
use crate::store::{Backend, Batch};

const RECORD_PREFIX: &[u8] = b"p/";
const HEADS_PREFIX: &[u8] = b"ph/";

/// The heads of one document as one peer acknowledged them, as stored.
#[derive(Debug, Serialize, Deserialize)]
struct StoredHeads {
    version: u32,
    /// Hex, as automerge prints a change hash.
    heads: Vec<String>,
}

pub(super) fn record_key(peer: &NodeId) -> Vec<u8> {
    format!("p/{peer}").into_bytes()
}

pub(super) fn heads_key(peer: &NodeId, doc: &DocId) -> Vec<u8> {
    format!("ph/{peer}/{doc}").into_bytes()
}

pub(super) fn record_value(record: &PeerRecord) -> Vec<u8> {
    serde_json::to_vec(record).expect("a peer record serializes")
}

pub(super) fn heads_value(heads: &[ChangeHash]) -> Vec<u8> {
    serde_json::to_vec(&StoredHeads {
        version: 1,
        heads: heads.iter().map(|h| h.to_string()).collect(),
    })
    .expect("heads serialize")
}

/// Hex heads as stored; `None` if any is not a change hash or there are more than
/// a peer may claim (what a flood left in a record of an older build).
fn parse_heads(hex: &[String]) -> Option<Vec<ChangeHash>> {
    if hex.len() > MAX_HEADS_PER_DOC {
        return None;
    }
    hex.iter().map(|h| h.parse().ok()).collect()
}

/// Every peer's record and acknowledged heads; records of an older build are
/// rewritten into the current keys.
pub(super) fn load(backend: &dyn Backend) -> BTreeMap<NodeId, PeerRecord> {
    let mut peers: BTreeMap<NodeId, PeerRecord> = BTreeMap::new();
    for (key, value) in backend.scan_prefix(HEADS_PREFIX).unwrap_or_default() {
        let text = String::from_utf8_lossy(&key[HEADS_PREFIX.len()..]).into_owned();
        let parsed = text.split_once('/').and_then(|(peer, doc)| {
            let heads = serde_json::from_slice::<StoredHeads>(&value).ok()?;
            Some((
                NodeId::parse(peer).ok()?,
                DocId::parse(doc).ok()?,
                parse_heads(&heads.heads)?,
            ))
        });
        match parsed {
            Some((peer, doc, heads)) => {
                peers.entry(peer).or_default().heads.insert(doc, heads);
            }
            None => tracing::warn!(key = %text, "unreadable acknowledged heads ignored"),
        }
    }
    let mut migration = Batch::default();
    for (key, value) in backend.scan_prefix(RECORD_PREFIX).unwrap_or_default() {
        let Ok(peer) = NodeId::parse(&String::from_utf8_lossy(&key[RECORD_PREFIX.len()..])) else {
            continue;
        };
        let mut record = match serde_json::from_slice::<PeerRecord>(&value) {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(peer = %peer, error = %e, "unreadable peer record ignored");
                continue;
            }
        };
        let legacy = std::mem::take(&mut record.legacy_acked);
        let entry = peers.entry(peer.clone()).or_default();
        record.heads = std::mem::take(&mut entry.heads);
        if !legacy.is_empty() {
            for (doc, hex) in &legacy {
                match (DocId::parse(doc), parse_heads(hex)) {
                    (Ok(doc), Some(heads)) => {
                        migration.put(heads_key(&peer, &doc), heads_value(&heads));
                        record.heads.insert(doc, heads);
                    }
                    _ => {
                        tracing::warn!(peer = %peer, doc = %doc, heads = hex.len(), "acknowledged heads of an older build dropped")
                    }
                }
            }
            migration.put(record_key(&peer), record_value(&record));
            tracing::info!(peer = %peer, docs = legacy.len(), "peer record rewritten: one key per document");
        }
        *entry = record;
    }
    if !migration.ops.is_empty() {
        // Best effort: the old record stays readable and is rewritten next start.
        if let Err(e) = backend.write(migration) {
            tracing::warn!(error = %e, "cannot rewrite peer records of an older build");
        }
    }
    peers
}

/// Writes peer records a backup kept (see `PeerBook::backup_records`) into an empty
/// store, before the peer book loads. A record that does not parse is left out (the
/// protocol learns it again); returns how many were written.
pub fn restore_records(
    backend: &dyn Backend,
    records: &BTreeMap<String, serde_json::Value>,
) -> Result<usize, crate::store::StoreError> {
    let mut batch = Batch::default();
    let mut written = 0;
    for (peer, value) in records {
        let parsed = NodeId::parse(peer)
            .ok()
            .zip(serde_json::from_value::<PeerRecord>(value.clone()).ok());
        match parsed {
            Some((peer, record)) => {
                batch.put(record_key(&peer), record_value(&record));
                written += 1;
            }
            None => {
                tracing::warn!(peer = %peer, "a peer record in the backup is unreadable: left out")
            }
        }
    }
    backend.write(batch)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::MemoryBackend;
    use crate::sync::testkit::node;
    use crate::sync::PeerBook;

    fn hash(byte: u8) -> ChangeHash {
        ChangeHash([byte; 32])
    }

    fn ledger() -> DocId {
        DocId::parse("ledger/ttu/2026-11").unwrap()
    }

    /// A data dir of an older build: every document's heads inside the record.
    fn old_build_record(backend: &MemoryBackend) {
        let record = serde_json::json!({
            "last_attempt_ms": 1_700_000_000_000_i64,
            "last_success_ms": 1_700_000_001_000_i64,
            "last_error": null,
            "acked": {
                "ledger/ttu/2026-11": [hash(1).to_string(), hash(2).to_string()],
                "catalog/ttu": [hash(3).to_string()],
                "ledger/ttu/2030-01": vec![hash(4).to_string(); 500],
                "not a doc": [hash(5).to_string()],
            },
            "clock": {"offset_ms": 12, "seen_ms": 1_700_000_001_000_i64},
        });
        let mut batch = Batch::default();
        batch.put(&b"p/ttu"[..], serde_json::to_vec(&record).unwrap());
        backend.write(batch).unwrap();
    }

    #[test]
    fn an_older_builds_record_loads_and_is_rewritten_one_key_per_document() {
        let backend = MemoryBackend::new();
        old_build_record(&backend);
        let book = PeerBook::load(Arc::new(backend.clone()));
        assert_eq!(
            book.acked(&node("ttu"), &ledger()),
            Some(vec![hash(1), hash(2)])
        );
        assert_eq!(book.last_success_ms(&node("ttu")), Some(1_700_000_001_000));
        assert_eq!(book.clock(&node("ttu")).unwrap().offset_ms, 12);

        // On disk: a small record without heads, and one key per readable document
        // (the 500 heads a flood left and the unreadable id are dropped).
        let record = backend.get(b"p/ttu").unwrap().unwrap();
        let text = String::from_utf8(record).unwrap();
        assert!(
            !text.contains("acked") && text.contains("last_success_ms"),
            "{text}"
        );
        let keys: Vec<String> = backend
            .scan_prefix(b"ph/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect();
        assert_eq!(keys, ["ph/ttu/catalog/ttu", "ph/ttu/ledger/ttu/2026-11"]);

        // Loaded again: the same book, nothing left to migrate.
        let again = PeerBook::load(Arc::new(backend.clone()));
        assert_eq!(
            again.acked(&node("ttu"), &ledger()),
            Some(vec![hash(1), hash(2)])
        );
        let catalog = DocId::LocalCatalog(node("ttu"));
        assert_eq!(again.acked(&node("ttu"), &catalog), Some(vec![hash(3)]));
        assert_eq!(again.last_success_ms(&node("ttu")), Some(1_700_000_001_000));
    }

    #[test]
    fn unreadable_entries_are_skipped_not_fatal() {
        let backend = MemoryBackend::new();
        let mut batch = Batch::default();
        batch
            .put(&b"p/ttu"[..], &b"{not json"[..])
            .put(&b"ph/ttu/ledger/ttu/2026-11"[..], &b"[1,2]"[..])
            .put(&b"ph/sikka/catalog/sikka"[..], heads_value(&[hash(7)]));
        backend.write(batch).unwrap();
        let book = PeerBook::load(Arc::new(backend));
        assert_eq!(book.acked(&node("ttu"), &ledger()), None);
        let catalog = DocId::LocalCatalog(node("sikka"));
        assert_eq!(book.acked(&node("sikka"), &catalog), Some(vec![hash(7)]));
    }
}
