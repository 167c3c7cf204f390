//! What a peer lacks of a document, counted incrementally: `sync status` (and the
//! hub's peer view) polls it every 50 ms during a catch-up, and walking the history
//! each time under the documents' lock took the CPU the catch-up needed.
//!
//! Per document it keeps the peer's acknowledged heads (those this node knows), how
//! many changes those cover, this node's heads when last counted, and the time of
//! the oldest change the peer lacks. While the acknowledgement stays the same, a new
//! count reads only the changes made since the last one; a new acknowledgement
//! counts once more from scratch. It must never answer from an entry whose
//! acknowledged heads differ from the ones asked about.

use std::collections::HashMap;
use std::sync::Mutex;

use automerge::{Automerge, ChangeHash, ReadDoc};

use crate::domain::doc_id::DocId;

#[derive(Debug, Clone)]
struct Counted {
    /// Changes of this node's history the acknowledgement covers.
    covered: u64,
    /// This node's heads when counted.
    heads: Vec<ChangeHash>,
    /// Timestamp (ms) of the oldest change the peer lacks.
    oldest: Option<i64>,
}

/// The peer's missing changes of a document: how many, and the oldest one's time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Missing {
    pub count: u64,
    pub oldest_ms: Option<i64>,
}

#[derive(Default)]
pub(super) struct PendingCounts {
    counted: Mutex<HashMap<(DocId, Vec<ChangeHash>), Counted>>,
}

/// The oldest non-genesis timestamp (genesis changes carry time zero: they are not a
/// local change waiting).
fn oldest(times: impl Iterator<Item = i64>) -> Option<i64> {
    times.filter(|t| *t > 0).min()
}

impl PendingCounts {
    /// What a peer holding `have` lacks of `doc` (whose history is `d`).
    pub fn missing(&self, doc: &DocId, have: &[ChangeHash], d: &Automerge) -> Missing {
        let mut acked: Vec<ChangeHash> = super::exchange::known(d, have);
        acked.sort();
        let total = d.stats().num_changes;
        let heads = d.get_heads();
        let key = (doc.clone(), acked.clone());
        let mut counted = self.counted.lock().expect("pending counts lock");
        let entry = match counted.get_mut(&key) {
            Some(entry) if entry.heads == heads => entry.clone(),
            Some(entry) => {
                // Only what this node added since: the acknowledgement is the same.
                let since = d.get_changes_meta(&entry.heads);
                entry.oldest = match (entry.oldest, oldest(since.iter().map(|m| m.timestamp))) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                entry.heads = heads;
                entry.clone()
            }
            None => {
                let metas = d.get_changes_meta(&acked);
                let entry = Counted {
                    covered: total.saturating_sub(metas.len() as u64),
                    heads,
                    oldest: oldest(metas.iter().map(|m| m.timestamp)),
                };
                // One entry per document: an older acknowledgement is not asked again.
                counted.retain(|(d, _), _| d != doc);
                counted.insert(key, entry.clone());
                entry
            }
        };
        let count = total.saturating_sub(entry.covered);
        Missing {
            count,
            oldest_ms: if count == 0 { None } else { entry.oldest },
        }
    }
}
