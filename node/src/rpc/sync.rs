//! `nttmart.v1.SyncService` at the hub: one session per district connection.
//!
//! Only the hub serves it, and only districts may call it. The district's identity
//! comes from its client certificate; on an insecure (plaintext) node it is taken
//! from the first `Hello`, which is why plaintext must never be used in production.
//! Either way only the districts of the hub's `[hub] districts` may open a session.
//!
//! A district's newest session owns its live state in the peer book; opening one
//! asks the district's older session, if any (a half-open link, a second process
//! under its certificate), to end with ABORTED. However a session task ends, a
//! panic included, the peer book records it (the session is its drop guard).

use std::sync::Arc;

use mart_proto::tonic::{self, Request, Response, Status, Streaming};
use mart_proto::v1::sync_message::Body;
use mart_proto::v1::sync_service_server::SyncService;
use mart_proto::v1::SyncMessage;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::identity::{caller, PeerRole};
use crate::domain::doc_id::NodeId;
use crate::engine::Engine;
use crate::sync::session_log::SessionLog;
use crate::sync::{drive, DriveError, PeerBook, Session, Wiring};

/// The hub's sync endpoint.
#[derive(Clone)]
pub struct SyncApi {
    engine: Arc<Engine>,
    book: Arc<PeerBook>,
    wiring: Wiring,
}

impl SyncApi {
    /// `wiring.local_writes` is ignored: each session subscribes to the engine.
    pub fn new(engine: Arc<Engine>, book: Arc<PeerBook>, wiring: Wiring) -> Self {
        SyncApi {
            engine,
            book,
            wiring,
        }
    }
}

impl SyncApi {
    async fn serve(
        &self,
        session: &mut Session,
        hello: SyncMessage,
        inbound: Streaming<SyncMessage>,
        out: mpsc::Sender<SyncMessage>,
        stop: CancellationToken,
    ) -> Result<(), DriveError> {
        session.handle(hello).await?;
        let book = self.book.clone();
        let peer = session.peer().clone();
        drive(
            session,
            inbound,
            out,
            Wiring {
                local_writes: self.engine.watch_local_writes(),
                shutdown: stop,
                ..self.wiring.clone()
            },
            move |in_sync| {
                if in_sync {
                    book.record_success(&peer);
                }
            },
        )
        .await
    }
}

#[tonic::async_trait]
impl SyncService for SyncApi {
    /// The session's messages, then the status that ended it, if it failed.
    type SessionStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<SyncMessage, Status>> + Send>>;

    async fn session(
        &self,
        request: Request<Streaming<SyncMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        if !self.engine.identity().is_hub() {
            return Err(Status::permission_denied(
                "only the hub serves sync sessions",
            ));
        }
        let certified = caller(&request).transpose()?;
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("the stream ended before hello"))?;
        let Some(Body::Hello(hello)) = &first.body else {
            return Err(Status::invalid_argument("the first message must be hello"));
        };
        let peer = match certified {
            Some(identity) => {
                if identity.role != PeerRole::District {
                    return Err(Status::permission_denied(format!(
                        "sync sessions are for districts; {} has role {}",
                        identity.node,
                        identity.role.as_str()
                    )));
                }
                identity.node
            }
            None => NodeId::parse(&hello.node_id)
                .map_err(|e| Status::invalid_argument(e.to_string()))?,
        };
        if peer == self.engine.identity().node {
            return Err(Status::invalid_argument("a node cannot sync with itself"));
        }
        // Before anything about the peer is remembered: an unknown district leaves
        // no peer book entry and no document.
        if !self.engine.known_districts().contains(&peer) {
            tracing::warn!(peer = %peer, "refusing a sync session from a district this hub does not know");
            return Err(Status::permission_denied(format!(
                "{peer} is not a district this hub knows (its [hub] districts)"
            )));
        }
        let (out_tx, out_rx) = mpsc::channel::<SyncMessage>(16);
        let (end_tx, end_rx) = mpsc::channel::<Result<SyncMessage, Status>>(1);
        let mut session = Session::new(self.engine.clone(), self.book.clone(), peer.clone());
        // Ends the session at shutdown, or when a newer one of the peer opens.
        let stop = self.wiring.shutdown.child_token();
        session.attach(self.book.open_session(&peer, stop.clone()));
        let this = self.clone();
        // The session moves into the task: dropped however the task ends, it
        // records its end in the peer book.
        tokio::spawn(async move {
            this.book.record_attempt(&peer);
            let log = SessionLog::start(&this.book, &peer, None);
            let result = this.serve(&mut session, first, inbound, out_tx, stop).await;
            log.end(&result, session.replaced());
            let end = match result {
                Ok(()) if session.replaced() => Some(Status::aborted(format!(
                    "a newer session of {peer} replaced this one (a reconnect, or \
                         another node running with the certificate of {peer})"
                ))),
                Ok(()) => None,
                Err(e) => {
                    session.record_end_error(&e.to_string());
                    Some(e.status())
                }
            };
            drop(session);
            if let Some(status) = end {
                let _ = end_tx.send(Err(status)).await;
            }
        });
        // The messages end when the session drops its sender; the failure, if
        // any, follows them as the stream's status.
        let stream = ReceiverStream::new(out_rx)
            .map(Ok)
            .chain(ReceiverStream::new(end_rx));
        Ok(Response::new(Box::pin(stream)))
    }
}
