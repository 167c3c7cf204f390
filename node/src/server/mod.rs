//! Start-up, serving and ordered shutdown of a node.
//!
//! [`run`] takes listeners that are already bound (tests bind `127.0.0.1:0`) and a
//! cancellation token. Shutdown order: health to not serving, stop accepting and
//! finish the requests in flight, flush the store, remove the admin socket.

mod error;
mod listeners;

use std::sync::Arc;
use std::time::Duration;

use mart_proto::tonic::transport::Server;
use mart_proto::v1::admin_service_server::AdminServiceServer;
use mart_proto::v1::mart_service_server::MartServiceServer;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tokio_util::sync::CancellationToken;

use crate::config::NodeConfig;
use crate::engine::Engine;
use crate::rpc::{AdminApi, MartApi, MAX_DECODE_BYTES};
use crate::store::SledBackend;

pub use error::ServerError;
pub use listeners::Listeners;

/// How long in-flight requests may take to finish once shutdown began.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the node's store and serves it until `shutdown` is cancelled.
pub async fn run(
    config: NodeConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    listeners::create_private_dir(&config.data_dir)?;
    let backend = Arc::new(SledBackend::open(&config.data_dir.join("db"))?);
    let engine = {
        let backend = backend.clone();
        let identity = config.identity.clone();
        tokio::task::spawn_blocking(move || Engine::open(backend, identity))
            .await
            .map_err(|e| ServerError::Task(e.to_string()))??
    };
    let engine = Arc::new(engine);
    let status = engine.status();
    tracing::info!(node = %status.node, role = status.role, actor = %status.actor_hex, movements = status.movements, "documents loaded");

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<MartServiceServer<MartApi>>().await;
    health.set_serving::<AdminServiceServer<AdminApi>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mart_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServerError::Task(format!("reflection: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mart_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServerError::Task(format!("reflection: {e}")))?;
    let mart = MartServiceServer::new(MartApi::new(engine.clone()))
        .max_decoding_message_size(MAX_DECODE_BYTES);
    let admin = AdminServiceServer::new(AdminApi::new(engine.clone(), config.data_dir.clone()))
        .max_decoding_message_size(MAX_DECODE_BYTES);
    let routes = mart_proto::tonic::service::Routes::new(mart)
        .add_service(admin)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let stop_serving = CancellationToken::new();
    let mut servers = tokio::task::JoinSet::new();
    if let Some(tcp) = listeners.grpc {
        let addr = tcp
            .local_addr()
            .map_err(|e| ServerError::io("read the gRPC address", e))?;
        tracing::info!(%addr, "serving gRPC");
        let routes = routes.clone();
        let stop = stop_serving.clone();
        servers.spawn(async move {
            Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(TcpListenerStream::new(tcp), stop.cancelled_owned())
                .await
        });
    }
    tracing::info!(socket = %config.admin_socket.display(), "serving the admin socket");
    let stop = stop_serving.clone();
    servers.spawn(async move {
        Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                UnixListenerStream::new(listeners.admin),
                stop.cancelled_owned(),
            )
            .await
    });

    let failure = tokio::select! {
        _ = shutdown.cancelled() => None,
        Some(result) = servers.join_next() => Some(match result {
            Ok(Ok(())) => "a server stopped on its own".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        }),
    };
    tracing::info!("shutting down");
    health.set_not_serving::<MartServiceServer<MartApi>>().await;
    health
        .set_not_serving::<AdminServiceServer<AdminApi>>()
        .await;
    stop_serving.cancel();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(timeout = ?DRAIN_TIMEOUT, "requests still in flight at shutdown were abandoned");
        servers.abort_all();
    }
    engine.flush()?;
    let _ = std::fs::remove_file(&config.admin_socket);
    tracing::info!("stopped");
    match failure {
        Some(reason) => Err(ServerError::Task(reason)),
        None => Ok(()),
    }
}
