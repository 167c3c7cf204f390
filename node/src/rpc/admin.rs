//! `nttmart.v1.AdminService`: what an operator asks a node about itself.

use std::path::PathBuf;
use std::sync::Arc;

use mart_proto::tonic::{self, Request, Response, Status};
use mart_proto::v1 as pb;
use pb::admin_service_server::AdminService;

use crate::engine::{now_ms, Engine};

#[derive(Clone)]
pub struct AdminApi {
    engine: Arc<Engine>,
    data_dir: PathBuf,
}

impl AdminApi {
    pub fn new(engine: Arc<Engine>, data_dir: PathBuf) -> Self {
        AdminApi { engine, data_dir }
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
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
        }))
    }

    async fn list_documents(
        &self,
        _: Request<pb::ListDocumentsRequest>,
    ) -> Result<Response<pb::ListDocumentsResponse>, Status> {
        let documents = self
            .engine
            .documents()
            .into_iter()
            .map(|d| pb::DocumentInfo {
                kind: d.id.kind().as_str().to_string(),
                id: d.id.to_string(),
                owner: d.owner.to_string(),
                heads: d.heads,
                changes: d.changes,
                bytes_on_disk: d.bytes_on_disk,
                chunks_since_snapshot: d.chunks_since_snapshot as u32,
            })
            .collect();
        Ok(Response::new(pb::ListDocumentsResponse { documents }))
    }
}
