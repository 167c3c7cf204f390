//! What this node knows of each sync peer, for the protocol and for operators:
//! connection state, last attempt, success and error, traffic, and each document's
//! heads as the peer last acknowledged them (kept on disk, so pending work is
//! visible while the link is down), the protocol version of the session, and the
//! peer's clock offset from this node's. How it is laid out on disk is
//! `peer_store`'s business.
//!
//! A peer may have more than one session at a time (a half-open connection the
//! hub has not noticed yet, a second process under the same certificate): its live
//! state (connected, protocol, what it says it holds) belongs to its newest session
//! alone, a [`LiveSession`]. An older session neither writes that state nor clears
//! it when it ends; it is asked to stop when the newer one opens.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

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
    /// Dials and sessions with the peer that failed since this node started.
    #[serde(skip)]
    failures: u64,
    /// The peer's newest session: the only one that writes `connected`, `protocol`
    /// and `peer_changes`.
    #[serde(skip)]
    newest: Option<Newest>,
}

#[derive(Debug, Clone)]
struct Newest {
    session: u64,
    /// Cancelled when a newer session of the peer opens.
    stop: CancellationToken,
}

impl PeerRecord {
    fn owned_by(&self, session: u64) -> bool {
        self.newest.as_ref().is_some_and(|n| n.session == session)
    }
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
    /// Dials and sessions that failed since this node started.
    pub failures: u64,
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
    /// The number of the last session opened, of any peer.
    sessions: AtomicU64,
}

/// One session with a peer, as the peer book knows it. While it is the peer's
/// newest it owns the peer's live state; once a newer one opens it owns nothing and
/// its `stop` token is cancelled. Dropping it ends it: however the session ended (an
/// error, a panic that unwinds through its task), the peer shows disconnected
/// unless a newer session is open.
pub struct LiveSession {
    book: Arc<PeerBook>,
    peer: NodeId,
    session: u64,
    /// Set by [`LiveSession::record_end_error`]: counted as ended by an error.
    failed: std::sync::atomic::AtomicBool,
}

impl PeerBook {
    /// Loads what was recorded of every peer.
    pub fn load(backend: Arc<dyn Backend>) -> Self {
        let peers = peer_store::load(backend.as_ref());
        PeerBook {
            backend,
            peers: Mutex::new(peers),
            sessions: AtomicU64::new(0),
        }
    }

    /// Every peer's record as stored (attempts, success, last error, clock offset),
    /// for a backup. The heads peers acknowledged are left out: a restored node may
    /// hold less than it acknowledged, and the protocol learns them again.
    pub fn backup_records(&self) -> BTreeMap<String, serde_json::Value> {
        self.peers
            .lock()
            .expect("peer book lock poisoned")
            .iter()
            .map(|(peer, record)| {
                let value = serde_json::to_value(record).expect("a peer record serializes");
                (peer.to_string(), value)
            })
            .collect()
    }

    /// A session with `peer` is established: it becomes the peer's newest and the
    /// peer shows connected. The session it replaces, if still open, has its `stop`
    /// cancelled; so will this one's when a newer one opens.
    pub fn open_session(self: &Arc<Self>, peer: &NodeId, stop: CancellationToken) -> LiveSession {
        let session = self.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        self.update(peer, false, |r| {
            // The transport logs the older session's end, if it was still open.
            if let Some(older) = r.newest.replace(Newest { session, stop }) {
                older.stop.cancel();
            }
            // What the peer claimed in an earlier session (how many changes it
            // holds of each document) is for that session only: claims never pile
            // up across sessions.
            r.peer_changes.clear();
            r.connected = true;
        });
        crate::events::session_opened();
        LiveSession {
            book: self.clone(),
            peer: peer.clone(),
            session,
            failed: std::sync::atomic::AtomicBool::new(false),
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

    pub fn record_success(&self, peer: &NodeId) {
        self.update(peer, true, |r| {
            r.last_success_ms = Some(now_ms());
            r.last_error = None;
        });
    }

    pub fn record_error(&self, peer: &NodeId, error: &str) {
        self.update(peer, true, |r| {
            r.last_error = Some(error.to_string());
            r.failures += 1;
        });
    }

    pub fn record_refusal(&self, peer: &NodeId, error: &str) {
        self.update(peer, true, |r| {
            r.traffic.refusals += 1;
            r.last_error = Some(error.to_string());
        });
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

    /// Whether `peer` has a session open (its newest).
    pub fn connected(&self, peer: &NodeId) -> bool {
        let peers = self.peers.lock().expect("peer book lock");
        peers.get(peer).is_some_and(|r| r.connected)
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
                    failures: record.failures,
                    traffic: record.traffic,
                    docs,
                    protocol: record.protocol,
                    clock: record.clock,
                }
            })
            .collect()
    }
}

impl LiveSession {
    pub fn peer(&self) -> &NodeId {
        &self.peer
    }

    /// Whether a newer session of the same peer opened since this one did.
    pub fn replaced(&self) -> bool {
        let peers = self.book.peers.lock().expect("peer book lock");
        !peers
            .get(&self.peer)
            .is_some_and(|r| r.owned_by(self.session))
    }

    /// Changes the peer's live state, if this is still its newest session.
    fn if_newest(&self, persist: bool, f: impl FnOnce(&mut PeerRecord)) {
        self.book.update(&self.peer, persist, |r| {
            if r.owned_by(self.session) {
                f(r)
            }
        });
    }

    /// The session speaks protocol `version`.
    pub fn record_protocol(&self, version: u32) {
        self.if_newest(false, |r| r.protocol = Some(version));
    }

    /// The peer holds `changes` changes of `doc` (its `Have`).
    pub fn record_peer_changes(&self, doc: &DocId, changes: u64) {
        self.if_newest(false, |r| {
            r.peer_changes.insert(doc.to_string(), changes);
        });
    }

    /// The session ended with `error`: the peer's last error, unless a newer
    /// session took over (an old link's failure says nothing of the live one).
    pub fn record_end_error(&self, error: &str) {
        self.failed.store(true, Ordering::Relaxed);
        self.if_newest(true, |r| r.last_error = Some(error.to_string()));
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        crate::events::session_ended(if self.failed.load(Ordering::Relaxed) {
            crate::events::SessionEnd::Error
        } else if self.replaced() {
            crate::events::SessionEnd::Replaced
        } else {
            crate::events::SessionEnd::Closed
        });
        self.if_newest(false, |r| {
            r.newest = None;
            r.connected = false;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryBackend;

    fn book() -> Arc<PeerBook> {
        Arc::new(PeerBook::load(Arc::new(MemoryBackend::new())))
    }

    fn ttu() -> NodeId {
        NodeId::parse("ttu").unwrap()
    }

    fn protocol(book: &PeerBook) -> Option<u32> {
        book.peers.lock().unwrap()[&ttu()].protocol
    }

    fn last_error(book: &PeerBook) -> Option<String> {
        book.peers.lock().unwrap()[&ttu()].last_error.clone()
    }

    #[test]
    fn a_session_shows_its_peer_connected_until_it_ends() {
        let book = book();
        assert!(!book.connected(&ttu()));
        let live = book.open_session(&ttu(), CancellationToken::new());
        assert!(book.connected(&ttu()));
        live.record_protocol(1);
        assert_eq!(protocol(&book), Some(1));
        drop(live);
        assert!(!book.connected(&ttu()));
        // What the last session learnt stays listed.
        assert_eq!(protocol(&book), Some(1));
    }

    #[test]
    fn an_older_session_ending_changes_nothing_of_the_newest() {
        let book = book();
        let old_stop = CancellationToken::new();
        let old = book.open_session(&ttu(), old_stop.clone());
        let new = book.open_session(&ttu(), CancellationToken::new());
        assert!(old.replaced() && !new.replaced());
        assert!(
            old_stop.is_cancelled(),
            "the older session is asked to stop"
        );
        // The older session neither writes the live state nor clears it.
        new.record_protocol(1);
        old.record_protocol(7);
        old.record_end_error("the link dropped");
        assert_eq!(protocol(&book), Some(1));
        assert_eq!(last_error(&book), None);
        drop(old);
        assert!(book.connected(&ttu()));
        new.record_end_error("the link dropped");
        assert_eq!(last_error(&book).as_deref(), Some("the link dropped"));
        drop(new);
        assert!(!book.connected(&ttu()));
    }

    #[test]
    fn the_newest_session_ending_before_an_older_one_leaves_the_peer_disconnected() {
        let book = book();
        let old = book.open_session(&ttu(), CancellationToken::new());
        let new = book.open_session(&ttu(), CancellationToken::new());
        drop(new);
        assert!(!book.connected(&ttu()));
        // The older one, asked to stop, cannot take the state back.
        old.record_protocol(7);
        assert_eq!(protocol(&book), None);
        assert!(old.replaced());
        drop(old);
        assert!(!book.connected(&ttu()));
    }

    #[test]
    fn sessions_of_different_peers_are_independent() {
        let book = book();
        let sikka = NodeId::parse("sikka").unwrap();
        let at_ttu = book.open_session(&ttu(), CancellationToken::new());
        let at_sikka = book.open_session(&sikka, CancellationToken::new());
        assert!(!at_ttu.replaced() && !at_sikka.replaced());
        drop(at_sikka);
        assert!(book.connected(&ttu()) && !book.connected(&sikka));
    }

    #[tokio::test]
    async fn a_session_whose_task_panics_records_its_end() {
        let book = book();
        let live = book.open_session(&ttu(), CancellationToken::new());
        let task = tokio::spawn(async move {
            let _live = live;
            panic!("a session broke");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert!(!book.connected(&ttu()));
    }
}
