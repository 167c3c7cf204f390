//! The sync protocol of one session with one peer, as a state machine over
//! messages: feed it what arrives, send what it returns.
//!
//! Per document it remembers the peer's last reported heads (its acknowledgement)
//! and what this session planned to send ([`Outgoing`]), so nothing is sent twice
//! within a session and a new session starts from what the peer durably holds. A
//! refused bundle affects its document only.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use automerge::ChangeHash;
use mart_proto::tonic::Code;
use mart_proto::v1::{sync_message::Body, SyncMessage};

use super::limits::{self, Named};
use super::outgoing::Outgoing;
use super::protocol::{Versions, PACED, PROTOCOLS};
use super::{wire, LiveSession, PeerBook, MAX_MESSAGE_BYTES};
use crate::domain::authz;
use crate::domain::doc_id::{DocId, NodeId};
use crate::engine::{now_ms, Engine, EngineError};

/// A peer broke the protocol; the session ends.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("protocol violation by {peer}: {reason}")]
    Protocol { peer: String, reason: String },
    /// The peer went over what a session may make this node remember.
    #[error("{peer} went over a limit of this node: {reason}")]
    Limit { peer: String, reason: String },
    #[error("{peer} claims to be {claimed}")]
    WrongIdentity { peer: String, claimed: String },
    #[error(
        "no sync protocol version in common: {peer} speaks {theirs}, {me} speaks {ours}; \
         upgrade the older build"
    )]
    NoCommonProtocol {
        peer: String,
        me: String,
        theirs: String,
        ours: Versions,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl SessionError {
    pub fn code(&self) -> Code {
        match self {
            SessionError::Protocol { .. } => Code::InvalidArgument,
            SessionError::Limit { .. } => Code::ResourceExhausted,
            SessionError::WrongIdentity { .. } => Code::PermissionDenied,
            SessionError::NoCommonProtocol { .. } => Code::FailedPrecondition,
            SessionError::Engine(_) => Code::Internal,
        }
    }
}

pub struct Session {
    engine: Arc<Engine>,
    book: Arc<PeerBook>,
    peer: NodeId,
    hello_seen: bool,
    /// The protocol version both sides speak, once the peer's `Hello` arrived.
    protocol: Option<u32>,
    /// The peer's heads as it last reported them.
    peer_heads: HashMap<DocId, Vec<ChangeHash>>,
    /// What this side sends the peer: planned per document, paced on the link.
    outgoing: Outgoing,
    /// Documents the peer refused as not ours to write: never offered again here.
    refused_by_peer: HashSet<DocId>,
    /// Documents whose heads this side told the peer in this session.
    announced: HashSet<DocId>,
    /// The peer sent `Have` for every document it shares with this side.
    peer_announced: bool,
    /// Every document the peer named in this session (bounded).
    named: Named,
    /// How far the peer's clock is ahead of this node's, as it last said (0 if
    /// behind or never said): a period it opened by its clock can exist.
    peer_ahead_ms: i64,
    opened: bool,
    /// The session's place in the peer book, once its transport is established:
    /// through it the session writes the peer's live state while it is the peer's
    /// newest; dropping the session ends it there.
    live: Option<LiveSession>,
}

impl Session {
    /// A session with an authenticated `peer`.
    pub fn new(engine: Arc<Engine>, book: Arc<PeerBook>, peer: NodeId) -> Self {
        Session {
            engine,
            book,
            peer,
            hello_seen: false,
            protocol: None,
            peer_heads: HashMap::new(),
            outgoing: Outgoing::default(),
            refused_by_peer: HashSet::new(),
            announced: HashSet::new(),
            peer_announced: false,
            named: Named::default(),
            peer_ahead_ms: 0,
            opened: false,
            live: None,
        }
    }

    /// The transport is established: the session is `live` in the peer book (it
    /// must be the same peer's) until it is dropped.
    pub fn attach(&mut self, live: LiveSession) {
        debug_assert_eq!(live.peer(), &self.peer, "a live session of another peer");
        self.live = Some(live);
    }

    /// Whether a newer session of the same peer replaced this one.
    pub fn replaced(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.replaced())
    }

    /// The peer acknowledged `heads` of `doc`: kept in the peer book, unless a newer
    /// session of the peer replaced this one (what this one hears is older than what
    /// the newer hears, and would take the acknowledgement back).
    fn record_peer_heads(&self, doc: &DocId, heads: &[ChangeHash]) {
        if !self.replaced() {
            self.book.record_peer_heads(&self.peer, doc, heads);
        }
    }

    /// The session ended with `error`: recorded as the peer's last error unless a
    /// newer session of the peer took over.
    pub fn record_end_error(&self, error: &str) {
        match &self.live {
            Some(live) => live.record_end_error(error),
            None => self.book.record_error(&self.peer, error),
        }
    }

    /// Whether [`Session::opening`] was sent.
    pub fn opened(&self) -> bool {
        self.opened
    }

    pub fn peer(&self) -> &NodeId {
        &self.peer
    }

    /// The peer as an operator of this node calls it (the hub, or a district).
    pub fn peer_seen(&self) -> super::liveness::Peer {
        super::liveness::Peer::of(&self.peer, self.hub())
    }

    /// The protocol version both sides speak, once the peer said hello.
    pub fn protocol(&self) -> Option<u32> {
        self.protocol
    }

    /// The peer's clock read `unix_ms` when it sent a message: its offset from this
    /// node's clock goes to the peer book (shown to operators), and at a district
    /// the hub's time is evidence for the clock guard. Transit time counts as
    /// offset: seconds on a bad link, far below the warning threshold.
    fn note_peer_clock(&mut self, unix_ms: i64) -> Result<(), SessionError> {
        if unix_ms == 0 {
            return Ok(());
        }
        let offset = unix_ms.saturating_sub(now_ms());
        self.peer_ahead_ms = offset.max(0);
        self.book.record_clock(&self.peer, offset);
        if &self.peer == self.hub() {
            self.engine.note_hub_time(unix_ms)?;
        }
        Ok(())
    }

    fn me(&self) -> &NodeId {
        &self.engine.identity().node
    }

    fn hub(&self) -> &NodeId {
        &self.engine.identity().hub
    }

    /// The documents this session exchanges: those offered to the peer and those
    /// taken from it.
    fn exchanged(&self, doc: &DocId) -> bool {
        authz::shared_with(doc, self.me(), &self.peer, self.hub())
            || authz::accepted_from(doc, self.me(), &self.peer, self.hub())
    }

    /// The held documents this side announces: every exchanged one, except at the
    /// hub a district's ledger periods older than its newest (the district has them,
    /// or needs only the newest to restore).
    fn announced_here(&self, doc: &DocId) -> bool {
        self.exchanged(doc) && !(self.engine.identity().is_hub() && self.engine.superseded(doc))
    }

    fn have(&self, doc: &DocId, heads: &[ChangeHash]) -> SyncMessage {
        wire::have(doc, heads, self.engine.change_count(doc))
    }

    /// What a side sends first: `Hello`, then `Have` for every exchanged document,
    /// then `Announced`.
    pub async fn opening(&mut self) -> Result<Vec<SyncMessage>, SessionError> {
        self.opened = true;
        let mut out = vec![wire::hello(self.me().as_str(), PROTOCOLS, now_ms())];
        out.extend(self.announce().await?);
        Ok(out)
    }

    /// `Have` for every exchanged document, then `Announced` with this node's clock:
    /// starts a round. Heads are announced once
    /// durable: a peer takes them as an acknowledgement (a district archives a
    /// period the hub holds whole), so they must survive a crash of this side.
    pub async fn announce(&mut self) -> Result<Vec<SyncMessage>, SessionError> {
        self.engine.durable().await?;
        let mut out = Vec::new();
        for (doc, heads) in self.engine.held_heads() {
            if self.announced_here(&doc) {
                out.push(self.have(&doc, &heads));
                self.announced.insert(doc);
            }
        }
        // Documents an operator dropped: asked for whole (no heads) until one comes.
        for doc in self.engine.wanted() {
            if authz::accepted_from(&doc, self.me(), &self.peer, self.hub()) {
                out.push(self.have(&doc, &[]));
                self.announced.insert(doc);
            }
        }
        out.push(wire::announced(now_ms()));
        Ok(out)
    }

    /// A district restoring from the hub ends the restore once the hub announced
    /// every document it shares with it and this side holds all the hub has of each:
    /// the catalogs, orders, budgets and the newest period of its ledger.
    fn try_finish_restore(&self) -> Result<(), SessionError> {
        if !self.peer_announced || &self.peer != self.hub() || !self.engine.restoring() {
            return Ok(());
        }
        let complete = self
            .peer_heads
            .iter()
            .all(|(doc, heads)| self.engine.knows_all(doc, heads));
        if complete {
            self.engine.finish_restore()?;
        }
        Ok(())
    }

    /// The hub holds changes of one of this district's own documents that this
    /// district lacks: it lost data and wrote again without restoring first (started
    /// on an empty data dir without `--restore`). The two histories no longer sync;
    /// say so loudly rather than let the document sit silently out of step.
    fn report_lost_history(&self, doc: &DocId, heads: &[ChangeHash]) {
        if doc.owner(self.hub()) != self.me()
            || self.engine.restoring()
            || self.engine.knows_all(doc, heads)
        {
            return;
        }
        let message = format!(
            "{doc}: the hub holds changes of this node's own document that this node lacks: \
             its data was lost and it was started without --restore; stop it, empty its data \
             dir and start it with --restore"
        );
        tracing::error!(peer = %self.peer, doc = %doc, "{message}");
        self.book.record_error(&self.peer, &message);
    }

    /// The session ends: the peer went over a limit.
    fn limit(&self, reason: String) -> SessionError {
        SessionError::Limit {
            peer: self.peer.to_string(),
            reason,
        }
    }

    /// A refusal of a claim about `doc` if it cannot exist (see
    /// [`limits::can_exist`]): nothing of it is kept, the session goes on. The
    /// newest clock is this node's or the peer's as it said, whichever is ahead: a
    /// district whose operator vouched for its clock syncs the periods it opened.
    fn refuse_impossible(&self, doc: &DocId) -> Option<SyncMessage> {
        let newest = now_ms().saturating_add(self.peer_ahead_ms);
        let reason = limits::can_exist(doc, newest).err()?;
        tracing::warn!(peer = %self.peer, doc = %doc, "claim refused: {reason}");
        self.book
            .record_error(&self.peer, &format!("{} sent {reason}", self.peer));
        Some(wire::refused(
            &doc.to_string(),
            Code::InvalidArgument as i32,
            format!("{reason}: nothing stored"),
        ))
    }

    /// Handles one message from the peer and returns the answers to send.
    pub async fn handle(&mut self, message: SyncMessage) -> Result<Vec<SyncMessage>, SessionError> {
        let protocol = |reason: String| SessionError::Protocol {
            peer: self.peer.to_string(),
            reason,
        };
        let Some(body) = message.body else {
            return Err(protocol("empty message".into()));
        };
        match body {
            Body::Hello(_) if self.hello_seen => Err(protocol("a second hello".into())),
            Body::Hello(hello) => {
                if hello.node_id != self.peer.as_str() {
                    return Err(SessionError::WrongIdentity {
                        peer: self.peer.to_string(),
                        claimed: hello.node_id,
                    });
                }
                let Some(theirs) = Versions::announced(&hello) else {
                    return Err(protocol(format!(
                        "hello announces no protocol version (protocol {}, range {}..={})",
                        hello.protocol, hello.protocol_min, hello.protocol_max
                    )));
                };
                let Some(version) = PROTOCOLS.common(theirs) else {
                    return Err(SessionError::NoCommonProtocol {
                        peer: self.peer.to_string(),
                        me: self.me().to_string(),
                        theirs: theirs.to_string(),
                        ours: PROTOCOLS,
                    });
                };
                self.protocol = Some(version);
                if let Some(live) = &self.live {
                    live.record_protocol(version);
                }
                self.note_peer_clock(hello.sent_at_unix_ms)?;
                self.hello_seen = true;
                Ok(Vec::new())
            }
            _ if !self.hello_seen => Err(protocol("the first message must be hello".into())),
            Body::Have(have) => {
                self.outgoing.answered(have.answers);
                let parsed = DocId::parse(&have.doc_id);
                self.named
                    .name(parsed.as_ref().ok(), &have.doc_id)
                    .map_err(|reason| self.limit(reason))?;
                let doc = match parsed {
                    Ok(doc) => doc,
                    Err(e) => {
                        return Ok(vec![wire::refused(
                            &have.doc_id,
                            Code::InvalidArgument as i32,
                            e.to_string(),
                        )])
                    }
                };
                let Some(heads) = wire::heads(&have.heads) else {
                    return Ok(vec![wire::refused(
                        &have.doc_id,
                        Code::InvalidArgument as i32,
                        "heads must be 32 bytes each".into(),
                    )]);
                };
                limits::check_heads(&have.doc_id, heads.len())
                    .map_err(|reason| self.limit(reason))?;
                if !self.exchanged(&doc) {
                    return Ok(Vec::new());
                }
                if let Some(refusal) = self.refuse_impossible(&doc) {
                    return Ok(vec![refusal]);
                }
                // A quarantined document is neither asked for nor offered until an
                // operator drops or refetches it.
                if self.engine.is_quarantined(&doc) {
                    return Ok(Vec::new());
                }
                // A peer that holds none of a document (it dropped it, or never had it)
                // gets all of it, whatever this session already sent; unless this
                // side already sends it all (it took the peer to hold none).
                if heads.is_empty() && self.peer_heads.get(&doc).is_none_or(|h| !h.is_empty()) {
                    self.outgoing.forget(&doc);
                }
                if let Some(live) = &self.live {
                    live.record_peer_changes(&doc, have.changes);
                }
                if &self.peer == self.hub() {
                    self.engine.note_acknowledged(&doc, &heads)?;
                    self.report_lost_history(&doc, &heads);
                }
                // On disk only for a document this node holds: what a peer claims of
                // any other stays in this session (recorded once it arrives).
                if self.engine.heads_in_memory(&doc).is_some() {
                    self.record_peer_heads(&doc, &heads);
                }
                self.peer_heads.insert(doc.clone(), heads);
                let mut out = Vec::new();
                // A document the peer has and this side never announced (it holds
                // none of it yet): ask for all of it.
                if !self.announced.contains(&doc) {
                    let ours = self.engine.heads(&doc).unwrap_or_default();
                    out.push(self.have(&doc, &ours));
                    self.announced.insert(doc.clone());
                }
                self.try_finish_restore()?;
                // Only durable changes leave this node: a change staged by a write
                // still waiting for its flush could otherwise reach the peer and then
                // be lost here in a crash, and the hub never takes its own documents
                // back from a district.
                self.engine.durable().await?;
                out.extend(self.push(&doc)?);
                Ok(out)
            }
            Body::Bundle(bundle) => {
                let seq = bundle.seq;
                let answers = self.take_bundle(bundle).await?;
                Ok(answers
                    .into_iter()
                    .map(|answer| {
                        if seq == 0 {
                            answer
                        } else {
                            wire::answering(answer, seq)
                        }
                    })
                    .collect())
            }
            Body::Announced(announced) => {
                self.note_peer_clock(announced.sent_at_unix_ms)?;
                self.peer_announced = true;
                self.try_finish_restore()?;
                Ok(Vec::new())
            }
            Body::Refused(refused) => self.peer_refused(refused),
        }
    }

    /// Applies a peer's bundle: answers with this side's new heads, or refuses it.
    async fn take_bundle(
        &mut self,
        bundle: mart_proto::v1::Bundle,
    ) -> Result<Vec<SyncMessage>, SessionError> {
        let parsed = DocId::parse(&bundle.doc_id);
        self.named
            .name(parsed.as_ref().ok(), &bundle.doc_id)
            .map_err(|reason| self.limit(reason))?;
        let doc = match parsed {
            Ok(doc) => doc,
            Err(e) => {
                return Ok(vec![wire::refused(
                    &bundle.doc_id,
                    Code::InvalidArgument as i32,
                    e.to_string(),
                )])
            }
        };
        if let Some(refusal) = self.refuse_impossible(&doc) {
            return Ok(vec![refusal]);
        }
        let bytes = bundle.data.len() as u64;
        match self
            .engine
            .apply_bundle(&self.peer, &doc, &bundle.data)
            .await
        {
            Ok(heads) => {
                self.book
                    .record_received(&self.peer, bundle.changes as u64, bytes);
                // The peer holds what it sent. For a document it owns (one
                // writer) that is all of it: nothing is owed back.
                if doc.owner(self.hub()) == &self.peer {
                    self.record_peer_heads(&doc, &heads);
                    self.peer_heads.insert(doc.clone(), heads.clone());
                } else if let Some(theirs) = self.peer_heads.get(&doc) {
                    // Claimed before this node held the document: kept now.
                    self.record_peer_heads(&doc, theirs);
                }
                self.try_finish_restore()?;
                Ok(vec![self.have(&doc, &heads)])
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, doc = %doc, error = %e, "bundle refused");
                self.book.record_refusal(&self.peer, &e.to_string());
                Ok(vec![wire::refused(
                    &bundle.doc_id,
                    e.code() as i32,
                    e.to_string(),
                )])
            }
        }
    }

    /// The peer refused a bundle of this side's (or a claim): logged and shown; the
    /// document is planned again from the peer's heads, or, refused as not this
    /// side's to write, never offered again in this session.
    fn peer_refused(
        &mut self,
        refused: mart_proto::v1::Refused,
    ) -> Result<Vec<SyncMessage>, SessionError> {
        self.outgoing.answered(refused.answers);
        // The peer's words, clipped: they go to the log and the peer book.
        let (doc_id, message) = (
            limits::clip(&refused.doc_id, 100),
            limits::clip(&refused.message, 500),
        );
        tracing::warn!(peer = %self.peer, doc = %doc_id, code = refused.code, message = %message, "peer refused our bundle");
        self.book.record_error(
            &self.peer,
            &format!("{} refused {doc_id}: {message}", self.peer),
        );
        if let Ok(doc) = DocId::parse(&refused.doc_id) {
            self.outgoing.forget(&doc);
            // Sent unasked (see `push_all`) to a peer that holds the document after
            // all (quarantined, say): it goes again only once the peer asks, not at
            // every push.
            if self.peer_heads.get(&doc).is_some_and(|h| h.is_empty()) {
                self.peer_heads.remove(&doc);
            }
            // Remembered only for a document this side offers and holds.
            if refused.code == Code::PermissionDenied as i32
                && authz::shared_with(&doc, self.me(), &self.peer, self.hub())
                && self.engine.heads_in_memory(&doc).is_some()
            {
                self.refused_by_peer.insert(doc);
            }
        }
        // The answer made room for the next bundle.
        self.fill()
    }

    /// Bundles of every offered document the peer lacks, after local writes; and a
    /// `Have` for each exchanged document created since this session announced (e.g.
    /// the hub's first online order for the district), so the peer asks for it.
    pub async fn push_all(&mut self) -> Result<Vec<SyncMessage>, SessionError> {
        // Only durable changes leave this node (see the `Have` branch of `handle`).
        self.engine.durable().await?;
        let mut out = Vec::new();
        for (doc, heads) in self.engine.held_heads() {
            if !self.announced.contains(&doc) && self.announced_here(&doc) {
                out.push(self.have(&doc, &heads));
                // The peer named every document it holds (its round ended with
                // `Announced`), and not this one: it holds none of it. Its changes
                // go now, not after the peer asks: on a slow link the question
                // could wait behind a backlog (an online order behind a month of
                // sales).
                if self.peer_announced
                    && !self.peer_heads.contains_key(&doc)
                    && authz::shared_with(&doc, self.me(), &self.peer, self.hub())
                {
                    self.peer_heads.insert(doc.clone(), Vec::new());
                }
                self.announced.insert(doc);
            }
        }
        let docs: Vec<DocId> = self.peer_heads.keys().cloned().collect();
        for doc in docs {
            self.plan(&doc)?;
        }
        out.extend(self.fill()?);
        Ok(out)
    }

    /// Plans `doc`, then sends what the window has room for.
    fn push(&mut self, doc: &DocId) -> Result<Vec<SyncMessage>, SessionError> {
        self.plan(doc)?;
        self.fill()
    }

    /// Queues the changes of `doc` the peer lacks that this session has not planned
    /// yet.
    fn plan(&mut self, doc: &DocId) -> Result<(), SessionError> {
        if !authz::shared_with(doc, self.me(), &self.peer, self.hub())
            || self.refused_by_peer.contains(doc)
        {
            return Ok(());
        }
        // An archived period is settled: it is never pushed (and never reopened
        // just to find that out).
        let Some(ours) = self.engine.heads_in_memory(doc) else {
            return Ok(());
        };
        if self
            .outgoing
            .covered(doc)
            .is_some_and(|c| same_heads(c, &ours))
        {
            return Ok(());
        }
        // The peer holds changes this side lacks: it is ahead (for a document it
        // owns, it always is), so this side owes it nothing of that document.
        if let Some(theirs) = self.peer_heads.get(doc) {
            if !self.engine.knows_all(doc, theirs) {
                return Ok(());
            }
        }
        let mut have = self.peer_heads.get(doc).cloned().unwrap_or_default();
        have.extend(self.outgoing.covered(doc).unwrap_or_default());
        if let Some(planned) = self.engine.plan_after(doc, &have)? {
            self.outgoing.enqueue(doc, planned);
        }
        Ok(())
    }

    /// Bundles of the planned changes, the most urgent document first, as many as
    /// the window has room for (all of them for a protocol 1 peer).
    fn fill(&mut self) -> Result<Vec<SyncMessage>, SessionError> {
        let paced = self.protocol.is_some_and(|v| v >= PACED);
        let mut out = Vec::new();
        while self.outgoing.has_room(paced) {
            let Some(cut) = self.outgoing.next_cut(paced) else {
                break;
            };
            let bundles =
                self.engine
                    .bundle_changes(&cut.doc, &cut.hashes, MAX_MESSAGE_BYTES - 1024)?;
            for b in bundles {
                let seq = if paced {
                    self.outgoing.sent(cut.full)
                } else {
                    0
                };
                self.book
                    .record_sent(&self.peer, b.changes as u64, b.data.len() as u64);
                out.push(wire::bundle(&cut.doc, b.data, b.changes, seq));
            }
        }
        Ok(out)
    }

    /// Whether both sides hold the same heads of every exchanged document.
    pub fn in_sync(&self) -> bool {
        self.engine
            .held_heads()
            .into_iter()
            .filter(|(doc, _)| self.announced_here(doc))
            .all(|(doc, ours)| {
                self.peer_heads
                    .get(&doc)
                    .is_some_and(|theirs| same_heads(theirs, &ours))
            })
    }
}

/// Whether two sets of heads are the same, in any order.
fn same_heads(a: &[ChangeHash], b: &[ChangeHash]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}
