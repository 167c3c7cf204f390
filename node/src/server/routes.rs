//! The gRPC services a node serves, per listener: the store, report, admin and hub
//! services (behind an authorization check on TCP; the hub service refuses at a
//! district), health, reflection (v1 and v1alpha, for grpcurl), and at the hub the
//! sync service (TCP only).

use mart_proto::tonic::service::interceptor::InterceptedService;
use mart_proto::tonic::service::Routes;
use mart_proto::tonic::{Request, Status};
use mart_proto::v1::admin_service_server::AdminServiceServer;
use mart_proto::v1::hub_service_server::HubServiceServer;
use mart_proto::v1::mart_service_server::MartServiceServer;
use mart_proto::v1::report_service_server::ReportServiceServer;
use mart_proto::v1::sync_service_server::SyncServiceServer;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use super::ServerError;
use crate::rpc::identity::{caller, PeerIdentity, PeerRole};
use crate::rpc::{AdminApi, HubApi, MartApi, ReportApi, SyncApi, MAX_DECODE_BYTES};
use crate::sync::MAX_MESSAGE_BYTES;

/// Store operations and admin calls over TCP need an operator certificate or the
/// node's own (its id in its role: `nttmart://district/kupang` is not the hub
/// `kupang`); without TLS (the admin socket) file permissions already decided.
fn operators_only(
    node: PeerIdentity,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |request: Request<()>| match caller(&request) {
        None => Ok(request),
        Some(Err(status)) => Err(status),
        Some(Ok(id)) if id.role == PeerRole::Operator || id == node => Ok(request),
        Some(Ok(id)) => Err(Status::permission_denied(format!(
            "{id} may not call store or admin operations of {node}; use an operator certificate"
        ))),
    }
}

/// The services of one node.
pub struct Services {
    pub mart: MartApi,
    pub admin: AdminApi,
    pub hub: HubApi,
    pub report: ReportApi,
    pub sync: Option<SyncApi>,
    /// The node's own identity, whose certificate has its rights over TCP.
    pub node: PeerIdentity,
}

impl Services {
    /// Routes for one listener; `tcp` adds the sync service (when present).
    pub fn routes(&self, health: &HealthReporter, tcp: bool) -> Result<Routes, ServerError> {
        let guard = operators_only(self.node.clone());
        let mart = InterceptedService::new(
            MartServiceServer::new(self.mart.clone()).max_decoding_message_size(MAX_DECODE_BYTES),
            guard.clone(),
        );
        let admin = InterceptedService::new(
            AdminServiceServer::new(self.admin.clone()).max_decoding_message_size(MAX_DECODE_BYTES),
            guard.clone(),
        );
        let hub = InterceptedService::new(
            HubServiceServer::new(self.hub.clone()).max_decoding_message_size(MAX_DECODE_BYTES),
            guard.clone(),
        );
        let report = InterceptedService::new(
            ReportServiceServer::new(self.report.clone())
                .max_decoding_message_size(MAX_DECODE_BYTES),
            guard,
        );
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(mart_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_error =
            |e: tonic_reflection::server::Error| ServerError::Task(format!("reflection: {e}"));
        // Each describes the other too, so that `grpcurl list` (v1alpha) shows both.
        let v1 = reflection()
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
            .build_v1()
            .map_err(reflection_error)?;
        let v1alpha = reflection()
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(reflection_error)?;
        let health = HealthServer::new(HealthService::from_health_reporter(health.clone()));
        let mut routes = Routes::new(mart)
            .add_service(admin)
            .add_service(hub)
            .add_service(report)
            .add_service(health)
            .add_service(v1)
            .add_service(v1alpha);
        if let (true, Some(sync)) = (tcp, &self.sync) {
            routes = routes.add_service(
                SyncServiceServer::new(sync.clone())
                    .max_decoding_message_size(MAX_MESSAGE_BYTES + 4096)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES + 4096),
            );
        }
        Ok(routes)
    }
}
