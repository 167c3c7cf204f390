//! What this node knows of each sync peer, for the protocol and for operators:
//! connection state, last attempt, success and error, traffic, and each document's
//! heads as the peer last acknowledged them (kept on disk, so pending work is
//! visible while the link is down), the protocol version of the session, and the
//! peer's clock offset from this node's. How it is laid out on disk is
//! `peer_store`'s business.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

use super::peer_store;
use crate::domain::doc_id::{DocId, NodeId};
use crate::engine::{now_ms, Engine};
use crate::store::{Backend, Batch};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct PeerRecord {
    #[serde(default)]
    last_attempt_ms: Option<i64>,
    #[serde(default)]
    last_success_ms: Option<i64>,
    #[serde(default)]
    last_error: Option<String>,
    /// Where builds before one key per document kept the peer's heads (document id
    /// -> hex heads): read to migrate, never written.
    #[serde(default, rename = "acked", skip_serializing)]
    pub(super) legacy_acked: BTreeMap<String, Vec<String>>,
    /// Document -> the peer's heads as last reported, for documents this node held
    /// then (each kept under its own key).
    #[serde(skip)]
    pub(super) heads: BTreeMap<DocId, Vec<ChangeHash>>,
    /// The peer's clock minus this node's, as last seen, and when (this node's clock).
    #[serde(default)]
    clock: Option<ClockOffset>,
    #[serde(skip)]
    protocol: Option<u32>,
    /// Document id -> how many changes the peer said it holds (this session).
    #[serde(skip)]
    peer_changes: BTreeMap<String, u64>,
    #[serde(skip)]
    connected: bool,
    #[serde(skip)]
    traffic: Traffic,
}

/// How far a peer's clock is from this node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// The peer's clock minus this node's, in ms (positive: the peer is ahead).
    pub offset_ms: i64,
    /// When it was measured, on this node's clock.
    pub seen_ms: i64,
}

impl ClockOffset {
    /// Beyond this, operators are warned: the peer's (or this node's) clock is wrong.
    pub const WARN_MS: i64 = 5 * 60 * 1000;

    /// Whether the offset is beyond [`ClockOffset::WARN_MS`] either way.
    pub fn wrong(&self) -> bool {
        self.offset_ms.unsigned_abs() > Self::WARN_MS as u64
    }
}

/// Traffic with a peer since this node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub changes_sent: u64,
    pub bytes_sent: u64,
    pub changes_received: u64,
    pub bytes_received: u64,
    pub refusals: u64,
}

/// Sync state of one document with one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSync {
    pub doc: DocId,
    /// Changes this node holds that the peer has not acknowledged.
    pub changes_to_send: u64,
    /// The peer reported heads this node does not hold yet.
    pub behind: bool,
    /// Changes the peer holds beyond this node's count (progress of a restore or
    /// catch-up from the peer; 0 when unknown).
    pub changes_to_receive: u64,
    /// Age of the oldest change the peer has not acknowledged, in ms.
    pub lag_ms: Option<i64>,
}

/// Sync state of one peer.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub peer: NodeId,
    pub connected: bool,
    pub last_attempt_ms: Option<i64>,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub traffic: Traffic,
    pub docs: Vec<DocSync>,
    /// The protocol version of the current (or last) session since this node started.
    pub protocol: Option<u32>,
    pub clock: Option<ClockOffset>,
}

/// Every peer this node has synced with (or is configured to).
pub struct PeerBook {
    backend: Arc<dyn Backend>,
    peers: Mutex<BTreeMap<NodeId, PeerRecord>>,
}

impl PeerBook {
    /// Loads what was recorded of every peer.
    pub fn load(backend: Arc<dyn Backend>) -> Self {
        let peers = peer_store::load(backend.as_ref());
        PeerBook {
            backend,
            peers: Mutex::new(peers),
        }
    }

    fn update(&self, peer: &NodeId, persist: bool, f: impl FnOnce(&mut PeerRecord)) {
        let mut peers = self.peers.lock().expect("peer book lock");
        let record = peers.entry(peer.clone()).or_default();
        f(record);
        if persist {
            let mut batch = Batch::default();
            batch.put(
                peer_store::record_key(peer),
                peer_store::record_value(record),
            );
            // Best effort: this is bookkeeping; the protocol re-learns it on connect.
            if let Err(e) = self.backend.write(batch) {
                tracing::warn!(peer = %peer, error = %e, "cannot record peer state");
            }
        }
    }

    /// Makes sure a peer is listed (e.g. the hub, before the first connection).
    pub fn ensure(&self, peer: &NodeId) {
        self.update(peer, false, |_| {});
    }

    pub fn record_attempt(&self, peer: &NodeId) {
        self.update(peer, true, |r| r.last_attempt_ms = Some(now_ms()));
    }

    pub fn record_connected(&self, peer: &NodeId, connected: bool) {
        self.update(peer, false, |r| r.connected = connected);
    }

    pub fn record_success(&self, peer: &NodeId) {
        self.update(peer, true, |r| {
            r.last_success_ms = Some(now_ms());
            r.last_error = None;
        });
    }

    pub fn record_error(&self, peer: &NodeId, error: &str) {
        self.update(peer, true, |r| r.last_error = Some(error.to_string()));
    }

    pub fn record_refusal(&self, peer: &NodeId, error: &str) {
        self.update(peer, true, |r| {
            r.traffic.refusals += 1;
            r.last_error = Some(error.to_string());
        });
    }

    /// The session with `peer` speaks protocol `version`.
    pub fn record_protocol(&self, peer: &NodeId, version: u32) {
        self.update(peer, false, |r| r.protocol = Some(version));
    }

    /// The peer's clock is `offset_ms` ahead of this node's (negative: behind).
    pub fn record_clock(&self, peer: &NodeId, offset_ms: i64) {
        let clock = ClockOffset {
            offset_ms,
            seen_ms: now_ms(),
        };
        self.update(peer, true, |r| {
            // Said once when the offset goes wrong, not at every announce.
            if clock.wrong() && !r.clock.is_some_and(|c| c.wrong()) {
                tracing::warn!(peer = %peer, offset_ms, "the peer's clock is far from this node's");
            }
            r.clock = Some(clock);
        });
    }

    /// The clock offset of `peer`, as last seen.
    pub fn clock(&self, peer: &NodeId) -> Option<ClockOffset> {
        let peers = self.peers.lock().expect("peer book lock");
        peers.get(peer).and_then(|r| r.clock)
    }

    /// The peer holds `heads` of `doc`: written under that document's own key, and
    /// only when they changed.
    pub fn record_peer_heads(&self, peer: &NodeId, doc: &DocId, heads: &[ChangeHash]) {
        let mut peers = self.peers.lock().expect("peer book lock");
        let record = peers.entry(peer.clone()).or_default();
        if record.heads.get(doc).is_some_and(|known| known == heads) {
            return;
        }
        record.heads.insert(doc.clone(), heads.to_vec());
        let mut batch = Batch::default();
        batch.put(
            peer_store::heads_key(peer, doc),
            peer_store::heads_value(heads),
        );
        // Best effort, as every peer book write.
        if let Err(e) = self.backend.write(batch) {
            tracing::warn!(peer = %peer, doc = %doc, error = %e, "cannot record the peer's heads");
        }
    }

    /// The heads of `doc` the peer last acknowledged, if recorded.
    pub fn acked(&self, peer: &NodeId, doc: &DocId) -> Option<Vec<ChangeHash>> {
        let peers = self.peers.lock().expect("peer book lock");
        peers.get(peer).and_then(|r| r.heads.get(doc).cloned())
    }

    /// A new session with `peer` begins: what it claimed in earlier ones (how many
    /// changes it holds of each document) is forgotten, so claims never pile up
    /// across sessions.
    pub fn forget_claims(&self, peer: &NodeId) {
        let mut peers = self.peers.lock().expect("peer book lock");
        if let Some(record) = peers.get_mut(peer) {
            record.peer_changes.clear();
        }
    }

    /// The peer holds `changes` changes of `doc` (its `Have`).
    pub fn record_peer_changes(&self, peer: &NodeId, doc: &DocId, changes: u64) {
        self.update(peer, false, |r| {
            r.peer_changes.insert(doc.to_string(), changes);
        });
    }

    pub fn record_sent(&self, peer: &NodeId, changes: u64, bytes: u64) {
        self.update(peer, false, |r| {
            r.traffic.changes_sent += changes;
            r.traffic.bytes_sent += bytes;
        });
    }

    pub fn record_received(&self, peer: &NodeId, changes: u64, bytes: u64) {
        self.update(peer, false, |r| {
            r.traffic.changes_received += changes;
            r.traffic.bytes_received += bytes;
        });
    }

    /// When the last session with `peer` completed a sync round, if ever.
    pub fn last_success_ms(&self, peer: &NodeId) -> Option<i64> {
        let peers = self.peers.lock().expect("peer book lock");
        peers.get(peer).and_then(|r| r.last_success_ms)
    }

    /// Traffic with a peer since start.
    pub fn traffic(&self, peer: &NodeId) -> Traffic {
        let peers = self.peers.lock().expect("peer book lock");
        peers.get(peer).map(|r| r.traffic).unwrap_or_default()
    }

    /// The state of every peer, with pending work computed against the engine.
    pub fn status(&self, engine: &Engine) -> Vec<PeerStatus> {
        let peers = self.peers.lock().expect("peer book lock").clone();
        let identity = engine.identity();
        let held = engine.held_heads();
        peers
            .into_iter()
            .map(|(peer, record)| {
                let receive = |doc: &DocId| {
                    record
                        .peer_changes
                        .get(&doc.to_string())
                        .map_or(0, |theirs| theirs.saturating_sub(engine.change_count(doc)))
                };
                // Documents the peer announced that this node holds none of yet (a
                // restore in progress).
                let announced_only = record
                    .peer_changes
                    .keys()
                    .filter_map(|d| DocId::parse(d).ok())
                    .filter(|d| !held.iter().any(|(h, _)| h == d) && !engine.is_archived(d))
                    .map(|doc| DocSync {
                        changes_to_receive: receive(&doc),
                        doc,
                        changes_to_send: 0,
                        behind: true,
                        lag_ms: None,
                    })
                    .collect::<Vec<_>>();
                let mut docs: Vec<DocSync> = held
                    .iter()
                    .filter(|(doc, _)| {
                        crate::domain::authz::shared_with(doc, &identity.node, &peer, &identity.hub)
                            || crate::domain::authz::accepted_from(
                                doc,
                                &identity.node,
                                &peer,
                                &identity.hub,
                            )
                    })
                    .map(|(doc, _)| {
                        let acked: Vec<ChangeHash> =
                            record.heads.get(doc).cloned().unwrap_or_default();
                        let offered = crate::domain::authz::shared_with(
                            doc,
                            &identity.node,
                            &peer,
                            &identity.hub,
                        );
                        let changes_to_send = if offered {
                            engine.count_missing(doc, &acked) as u64
                        } else {
                            0
                        };
                        let lag_ms = if changes_to_send > 0 {
                            engine
                                .oldest_missing_ms(doc, &acked)
                                .map(|t| (now_ms() - t).max(0))
                        } else {
                            None
                        };
                        DocSync {
                            doc: doc.clone(),
                            changes_to_send,
                            behind: !engine.knows_all(doc, &acked),
                            changes_to_receive: receive(doc),
                            lag_ms,
                        }
                    })
                    .collect();
                docs.extend(announced_only);
                PeerStatus {
                    peer,
                    connected: record.connected,
                    last_attempt_ms: record.last_attempt_ms,
                    last_success_ms: record.last_success_ms,
                    last_error: record.last_error,
                    traffic: record.traffic,
                    docs,
                    protocol: record.protocol,
                    clock: record.clock,
                }
            })
            .collect()
    }
}
