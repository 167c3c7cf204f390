//! `nttmart.v1.AdminService`: what an operator asks a node about itself and its
//! sync peers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mart_proto::tonic::{self, Request, Response, Status};
use mart_proto::v1 as pb;
use pb::admin_service_server::AdminService;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::backup::{BackupError, BackupFile};

use crate::domain::doc_id::DocId;
use crate::engine::{now_ms, Dropped, Engine, ExportForm, Trouble};
use crate::rpc::status::invalid;
use crate::rpc::to_status;
use crate::sync::{PeerBook, PeerStatus};

#[derive(Clone)]
pub struct AdminApi {
    engine: Arc<Engine>,
    book: Arc<PeerBook>,
    resync: Arc<watch::Sender<u64>>,
    data_dir: PathBuf,
}

impl AdminApi {
    pub fn new(
        engine: Arc<Engine>,
        book: Arc<PeerBook>,
        resync: watch::Sender<u64>,
        data_dir: PathBuf,
    ) -> Self {
        AdminApi {
            engine,
            book,
            resync: Arc::new(resync),
            data_dir,
        }
    }

    fn peers(&self, only: Option<&str>) -> Vec<PeerStatus> {
        self.book
            .status(&self.engine)
            .into_iter()
            .filter(|p| only.is_none_or(|id| p.peer.as_str() == id))
            .collect()
    }
}

fn peer_to_pb(p: PeerStatus) -> pb::PeerInfo {
    pb::PeerInfo {
        peer_id: p.peer.to_string(),
        connected: p.connected,
        last_attempt_unix_ms: p.last_attempt_ms.unwrap_or(0),
        last_success_unix_ms: p.last_success_ms.unwrap_or(0),
        last_error: p.last_error.unwrap_or_default(),
        changes_sent: p.traffic.changes_sent,
        bytes_sent: p.traffic.bytes_sent,
        changes_received: p.traffic.changes_received,
        bytes_received: p.traffic.bytes_received,
        refusals: p.traffic.refusals,
        documents: p
            .docs
            .into_iter()
            .map(|d| pb::DocumentSync {
                doc_id: d.doc.to_string(),
                changes_to_send: d.changes_to_send,
                behind: d.behind,
                lag_ms: d.lag_ms.unwrap_or(-1),
                changes_to_receive: d.changes_to_receive,
            })
            .collect(),
        protocol: p.protocol.unwrap_or(0),
        clock_offset_ms: p.clock.map_or(0, |c| c.offset_ms),
        clock_seen_unix_ms: p.clock.map_or(0, |c| c.seen_ms),
        clock_wrong: p.clock.is_some_and(|c| c.wrong()),
    }
}

fn doc_id(raw: &str) -> Result<DocId, Status> {
    DocId::parse(raw).map_err(|e| invalid("doc_id", e))
}

fn dropped_to_pb(d: Dropped) -> pb::DropDocumentResponse {
    pb::DropDocumentResponse {
        doc_id: d.doc.to_string(),
        records_moved: d.records as u32,
        moved_to: d.moved_to,
        was_quarantined: d.was_quarantined,
        ..Default::default()
    }
}

fn in_sync(peers: &[PeerStatus]) -> bool {
    peers
        .iter()
        .all(|p| p.connected && p.docs.iter().all(|d| d.changes_to_send == 0 && !d.behind))
}

/// The most bytes one `DocumentChunk` carries (well under any gRPC message limit).
const EXPORT_CHUNK: usize = 1 << 20;

/// Splits an exported document into the messages that carry it.
fn export_chunks(bytes: Vec<u8>) -> Vec<Result<pb::DocumentChunk, Status>> {
    bytes
        .chunks(EXPORT_CHUNK)
        .map(|data| {
            Ok(pb::DocumentChunk {
                data: data.to_vec(),
            })
        })
        .collect()
}

/// Splits one backup file into the messages that carry it (an empty file is one).
fn backup_chunks(file: BackupFile) -> Vec<pb::BackupChunk> {
    let pieces: Vec<&[u8]> = if file.bytes.is_empty() {
        vec![&[]]
    } else {
        file.bytes.chunks(EXPORT_CHUNK).collect()
    };
    let last = pieces.len() - 1;
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, data)| pb::BackupChunk {
            path: file.path.clone(),
            data: data.to_vec(),
            more: i < last,
        })
        .collect()
}

fn backup_status(e: BackupError) -> Status {
    match e {
        BackupError::Engine(e) => to_status(e),
        other => Status::internal(other.to_string()),
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    type BackupStream = ReceiverStream<Result<pb::BackupChunk, Status>>;

    async fn backup(
        &self,
        _: Request<pb::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        // Files come one document at a time; a slow client holds at most two here.
        let (files, mut taken) = mpsc::channel::<BackupFile>(1);
        let (chunks, answer) = mpsc::channel(2);
        let backup = tokio::spawn(crate::backup::take(
            self.engine.clone(),
            self.book.backup_records(),
            files,
        ));
        tokio::spawn(async move {
            while let Some(file) = taken.recv().await {
                for chunk in backup_chunks(file) {
                    if chunks.send(Ok(chunk)).await.is_err() {
                        return; // the client went away: `take` stops at its next file
                    }
                }
            }
            let outcome = match backup.await {
                Ok(Ok(manifest)) => {
                    tracing::info!(
                        documents = manifest.documents.len(),
                        left_out = manifest.left_out.len(),
                        "backup taken"
                    );
                    return;
                }
                Ok(Err(e)) => backup_status(e),
                Err(e) => Status::internal(format!("the backup stopped: {e}")),
            };
            tracing::warn!(error = %outcome.message(), "backup failed");
            let _ = chunks.send(Err(outcome)).await;
        });
        Ok(Response::new(ReceiverStream::new(answer)))
    }

    type ExportDocumentStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<pb::DocumentChunk, Status>>>;

    async fn export_document(
        &self,
        request: Request<pb::ExportDocumentRequest>,
    ) -> Result<Response<Self::ExportDocumentStream>, Status> {
        let request = request.into_inner();
        let doc = doc_id(&request.doc_id)?;
        let form = if request.json {
            ExportForm::Json
        } else {
            ExportForm::Automerge
        };
        let engine = self.engine.clone();
        // A whole-document save (or a read of an archived period) is blocking work.
        let bytes = tokio::task::spawn_blocking(move || engine.export_document(&doc, form))
            .await
            .map_err(|e| Status::internal(format!("the export stopped: {e}")))?
            .map_err(to_status)?;
        // Only what is durable leaves the node: never a write whose flush may still fail.
        self.engine.reads_durable().await.map_err(to_status)?;
        Ok(Response::new(tokio_stream::iter(export_chunks(bytes))))
    }

    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let s = self.engine.status();
        Ok(Response::new(pb::StatusResponse {
            node_id: s.node.to_string(),
            role: s.role.to_string(),
            hub_id: s.hub.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            actor: s.actor_hex,
            data_dir: self.data_dir.display().to_string(),
            started_at_unix_ms: s.started_at_ms,
            uptime_seconds: ((now_ms() - s.started_at_ms).max(0) / 1000) as u64,
            documents: s.documents,
            movements: s.movements,
            skus_in_stock: s.skus_in_stock,
            durable_writes: s.durable_writes,
            flushes: s.flushes,
            restoring: s.open_period.is_none(),
            clock_warning: s.clock_warning.unwrap_or_default(),
            open_period: s.open_period.map(|p| p.to_string()).unwrap_or_default(),
        }))
    }

    async fn list_documents(
        &self,
        _: Request<pb::ListDocumentsRequest>,
    ) -> Result<Response<pb::ListDocumentsResponse>, Status> {
        let documents = self
            .engine
            .documents()
            .map_err(to_status)?
            .into_iter()
            .map(|d| pb::DocumentInfo {
                kind: d.id.kind().as_str().to_string(),
                id: d.id.to_string(),
                owner: d.owner.to_string(),
                heads: d.heads,
                changes: d.changes,
                bytes_on_disk: d.bytes_on_disk,
                chunks_since_snapshot: d.chunks_since_snapshot as u32,
                period_state: d.period.map(|p| p.as_str().to_string()).unwrap_or_default(),
                state: match &d.trouble {
                    None => "ok",
                    Some(Trouble::Quarantined(_)) => "quarantined",
                    Some(Trouble::Refetching) => "refetching",
                }
                .to_string(),
                reason: match d.trouble {
                    Some(Trouble::Quarantined(reason)) => reason,
                    _ => String::new(),
                },
            })
            .collect();
        Ok(Response::new(pb::ListDocumentsResponse { documents }))
    }

    async fn list_peers(
        &self,
        request: Request<pb::ListPeersRequest>,
    ) -> Result<Response<pb::ListPeersResponse>, Status> {
        let only = request.into_inner().peer_id;
        let only = Some(only.as_str()).filter(|p| !p.is_empty());
        let peers = self.peers(only);
        if let (Some(id), true) = (only, peers.is_empty()) {
            return Err(Status::not_found(format!("no sync peer {id}")));
        }
        Ok(Response::new(pb::ListPeersResponse {
            peers: peers.into_iter().map(peer_to_pb).collect(),
        }))
    }

    async fn sync_now(
        &self,
        request: Request<pb::SyncNowRequest>,
    ) -> Result<Response<pb::SyncNowResponse>, Status> {
        let seconds = match request.into_inner().timeout_seconds {
            0 => 30,
            s => s.min(3600),
        };
        let started = Instant::now();
        let before: Vec<_> = self
            .peers(None)
            .into_iter()
            .map(|p| (p.peer.clone(), p.traffic, p.failures))
            .collect();
        if before.is_empty() {
            return Err(Status::failed_precondition("this node has no sync peer"));
        }
        self.resync.send_modify(|n| *n += 1);
        let deadline = started + Duration::from_secs(seconds as u64);
        // Give the announce a moment to reach the peer before judging the round.
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A peer that is not connected and whose dial (or session) failed after
        // this request will not be in sync within the round: answer at once (a
        // refused connection fails in milliseconds, not after the whole timeout).
        let failed_since_asked = |peers: &[PeerStatus]| {
            peers.iter().any(|p| {
                !p.connected
                    && before
                        .iter()
                        .any(|(id, _, failures)| id == &p.peer && p.failures > *failures)
            })
        };
        let peers = loop {
            let peers = self.peers(None);
            if in_sync(&peers) || failed_since_asked(&peers) || Instant::now() >= deadline {
                break peers;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut answer = pb::SyncNowResponse {
            in_sync: in_sync(&peers),
            elapsed_ms: started.elapsed().as_millis() as u64,
            ..Default::default()
        };
        for p in &peers {
            let old = before
                .iter()
                .find(|(id, _, _)| id == &p.peer)
                .map(|(_, t, _)| *t)
                .unwrap_or_default();
            answer.changes_sent += p.traffic.changes_sent - old.changes_sent;
            answer.bytes_sent += p.traffic.bytes_sent - old.bytes_sent;
            answer.changes_received += p.traffic.changes_received - old.changes_received;
            answer.bytes_received += p.traffic.bytes_received - old.bytes_received;
        }
        answer.peers = peers.into_iter().map(peer_to_pb).collect();
        Ok(Response::new(answer))
    }

    async fn drop_document(
        &self,
        request: Request<pb::DropDocumentRequest>,
    ) -> Result<Response<pb::DropDocumentResponse>, Status> {
        let request = request.into_inner();
        let doc = doc_id(&request.doc_id)?;
        let dropped = self
            .engine
            .drop_document(&doc, request.force)
            .map_err(to_status)?;
        Ok(Response::new(dropped_to_pb(dropped)))
    }

    async fn refetch_document(
        &self,
        request: Request<pb::RefetchDocumentRequest>,
    ) -> Result<Response<pb::DropDocumentResponse>, Status> {
        let request = request.into_inner();
        let doc = doc_id(&request.doc_id)?;
        if !self.engine.peer_sends(&doc) {
            return Err(Status::failed_precondition(format!(
                "no peer of this node sends {doc}: drop it instead, or restore it from a backup"
            )));
        }
        let seconds = match request.timeout_seconds {
            0 => 30,
            s => s.min(3600),
        };
        let dropped = self
            .engine
            .drop_document(&doc, request.force)
            .map_err(to_status)?;
        self.resync.send_modify(|n| *n += 1);
        let deadline = Instant::now() + Duration::from_secs(seconds as u64);
        let mut answer = dropped_to_pb(dropped);
        loop {
            if let Some(heads) = self.engine.heads_in_memory(&doc) {
                answer.received = true;
                answer.heads = heads.iter().map(|h| h.to_string()).collect();
                answer.changes = self.engine.change_count(&doc);
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Response::new(answer))
    }
}
