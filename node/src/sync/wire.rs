//! Building and reading `SyncMessage`s.

use automerge::ChangeHash;
use mart_proto::v1::{sync_message::Body, Announced, Bundle, Have, Hello, Refused, SyncMessage};

use super::protocol::Versions;
use crate::domain::doc_id::DocId;

/// `Hello` from `node`, speaking `versions`, its clock reading `now_ms`.
pub fn hello(node: &str, versions: Versions, now_ms: i64) -> SyncMessage {
    SyncMessage {
        body: Some(Body::Hello(Hello {
            node_id: node.to_string(),
            protocol: versions.min,
            sent_at_unix_ms: now_ms,
            protocol_min: versions.min,
            protocol_max: versions.max,
        })),
    }
}

pub fn have(doc: &DocId, heads: &[ChangeHash], changes: u64) -> SyncMessage {
    SyncMessage {
        body: Some(Body::Have(Have {
            doc_id: doc.to_string(),
            heads: heads.iter().map(|h| h.0.to_vec()).collect(),
            changes,
            answers: 0,
        })),
    }
}

pub fn announced(now_ms: i64) -> SyncMessage {
    SyncMessage {
        body: Some(Body::Announced(Announced {
            sent_at_unix_ms: now_ms,
        })),
    }
}

/// Bundle number `seq` of the session (0: unnumbered, for a protocol 1 peer).
pub fn bundle(doc: &DocId, data: Vec<u8>, changes: u32, seq: u32) -> SyncMessage {
    SyncMessage {
        body: Some(Body::Bundle(Bundle {
            doc_id: doc.to_string(),
            data,
            changes,
            seq,
        })),
    }
}

/// `answer` (a `Have` or a `Refused`) marked as the answer to bundle `seq`.
pub fn answering(mut answer: SyncMessage, seq: u32) -> SyncMessage {
    match &mut answer.body {
        Some(Body::Have(have)) => have.answers = seq,
        Some(Body::Refused(refused)) => refused.answers = seq,
        _ => debug_assert!(false, "only a have or a refusal answers a bundle"),
    }
    answer
}

pub fn refused(doc: &str, code: i32, message: String) -> SyncMessage {
    SyncMessage {
        body: Some(Body::Refused(Refused {
            doc_id: doc.to_string(),
            code,
            message,
            answers: 0,
        })),
    }
}

/// Heads as sent on the wire: 32 bytes each.
pub fn heads(raw: &[Vec<u8>]) -> Option<Vec<ChangeHash>> {
    raw.iter()
        .map(|h| <[u8; 32]>::try_from(h.as_slice()).ok().map(ChangeHash))
        .collect()
}
