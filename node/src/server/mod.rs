//! Start-up, serving and ordered shutdown of a node.
//!
//! [`run`] takes listeners that are already bound (tests bind `127.0.0.1:0`) and a
//! cancellation token. Shutdown order: health to not serving, stop sync (the
//! district's dialer and the hub's sessions), stop accepting and finish the requests
//! in flight, flush the store, remove the admin socket.
//!
//! Every background task is supervised: the gRPC servers stop the node when one
//! ends; the district's dialer is restarted (see [`supervise`]) when it returns
//! before shutdown; each hub session records its own end however it ends.

mod admitted;
mod audit;
mod error;
mod fd_budget;
pub mod hub_cert;
mod incoming;
mod io_wrap;
mod listeners;
pub mod resumption;
mod routes;
mod supervise;
pub mod tls;
mod tls_accept;
mod unix_authority;

use std::sync::Arc;
use std::time::Duration;

use mart_proto::tonic::transport::Server;
use mart_proto::v1::admin_service_server::AdminServiceServer;
use mart_proto::v1::mart_service_server::MartServiceServer;
use mart_proto::v1::report_service_server::ReportServiceServer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{NodeConfig, Role, TlsMode};
use crate::engine::Engine;
use crate::rpc::identity::PeerIdentity;
use crate::rpc::{AdminApi, HubApi, MartApi, ReportApi, SyncApi};
use crate::store::{Backend, SledBackend};
use crate::sync::tls_dial::HubConnector;
use crate::sync::{dial, liveness, PeerBook, Rhythm, Wiring};
use incoming::Incoming;
use tls_accept::TlsIncoming;

pub use error::ServerError;
pub use listeners::{inspect_admin_socket, AdminSocketPath, Listeners};
use routes::Services;
use supervise::{Backoff, OnReturn, Supervisor};

/// How long in-flight requests may take to finish once shutdown began.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for the last tasks holding the store to let go of it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Closes the store once nothing else holds it, so that `run` returning means the
/// data dir is free for a node started again in the same process. Everything was
/// flushed before: if a task still holds the store, it is only logged.
async fn close_store(mut backend: Arc<SledBackend>) {
    let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
    let sole = loop {
        match Arc::try_unwrap(backend) {
            Ok(sole) => break sole,
            Err(shared) if tokio::time::Instant::now() < deadline => {
                backend = shared;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {
                tracing::warn!(timeout = ?CLOSE_TIMEOUT, "a task still holds the store at shutdown; it closes when the process exits");
                return;
            }
        }
    };
    match tokio::task::spawn_blocking(move || Box::new(sole).close()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot close the store"),
        Err(e) => tracing::warn!(error = %e, "cannot close the store"),
    }
}

/// What `mart-node check-config` checks beyond the file itself: the certificates and
/// key (`tls::load`) and what sits at the admin socket path, without changing anything.
pub fn check(config: &NodeConfig) -> Result<AdminSocketPath, ServerError> {
    check_district_ids(config)?;
    tls::load(config)?;
    inspect_admin_socket(&config.admin_socket)
}

/// A district's id, and every id of a hub's `[hub] districts`, must be one of the
/// province's 22 (a typo, or `jakarta`, would run and never be let in to sync).
/// Only `check-config` asks: `run` accepts any id, for tests and benchmarks.
fn check_district_ids(config: &NodeConfig) -> Result<(), ServerError> {
    let known = || {
        crate::domain::districts::ALL
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let unknown = |field: &str, id: &crate::domain::doc_id::NodeId| {
        ServerError::Task(format!(
            "{field}: \"{id}\" is not a district of NTT; the districts are {}",
            known()
        ))
    };
    match config.role {
        Role::District
            if crate::domain::districts::find(config.identity.node.as_str()).is_none() =>
        {
            Err(unknown("node.id", &config.identity.node))
        }
        Role::District => Ok(()),
        Role::Hub => match config
            .districts
            .iter()
            .find(|id| crate::domain::districts::find(id.as_str()).is_none())
        {
            Some(id) => Err(unknown("hub.districts", id)),
            None => Ok(()),
        },
    }
}

/// Opens the node's store and serves it until `shutdown` is cancelled.
pub async fn run(
    config: NodeConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let tls = tls::load(&config)?;
    let fd_limit = fd_budget::raise_nofile_limit();
    if config.tls == Some(TlsMode::Insecure) {
        tracing::warn!("tls.insecure is set: gRPC over TCP is plaintext and peers are not authenticated; never use this in production");
    }
    listeners::create_private_dir(&config.data_dir)?;
    let backend = Arc::new(SledBackend::open(&config.data_dir.join("db"))?);
    let engine = {
        let backend = backend.clone();
        let identity = config.identity.clone();
        let ledger = config.ledger;
        let districts = config.districts.clone();
        let restore_from = config.restore_from.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = restore_from {
                crate::backup::restore(backend.as_ref(), &dir, &identity)?;
            }
            Engine::open_with(backend, identity, ledger)
                .map(|e| e.with_known_districts(districts))
                .map_err(ServerError::from)
        })
        .await
        .map_err(|e| ServerError::Task(e.to_string()))??
    };
    let engine = Arc::new(engine);
    if engine.identity().is_hub() {
        engine.answer_all_quota_returns().await?;
    }
    let book = Arc::new(PeerBook::load(backend.clone()));
    if config.sync.is_some() {
        // The hub is this district's peer from the first moment the admin socket
        // answers, before the dialer's first attempt ("never connected", not "no
        // sync peer": a test asking at once failed on this under load).
        book.ensure(&config.identity.hub);
    }
    // Before the first event worth counting.
    crate::observe::install_recorder();
    let status = engine.status();
    tracing::info!(node = %status.node, role = status.role, actor = %status.actor_hex, movements = status.movements, "documents loaded");

    let stop_sync = CancellationToken::new();
    let (resync_tx, resync_rx) = watch::channel(0u64);
    let wiring = Wiring {
        local_writes: engine.watch_local_writes(),
        resync: resync_rx,
        rhythm: Rhythm {
            resync_every: config
                .sync
                .as_ref()
                .map_or(Duration::from_secs(30), |s| s.resync_every),
            silence_limit: liveness::SESSION_SILENCE_LIMIT,
        },
        shutdown: stop_sync.clone(),
    };
    let services = Services {
        mart: MartApi::new(engine.clone()),
        admin: AdminApi::new(
            engine.clone(),
            book.clone(),
            resync_tx,
            config.data_dir.clone(),
        ),
        hub: HubApi::new(engine.clone(), book.clone(), config.stale_after),
        report: ReportApi::new(engine.clone()),
        sync: engine
            .identity()
            .is_hub()
            .then(|| SyncApi::new(engine.clone(), book.clone(), wiring.clone())),
        node: PeerIdentity {
            node: config.identity.node.clone(),
            role: config.role.into(),
        },
    };
    let (health, _) = tonic_health::server::health_reporter();
    health.set_serving::<MartServiceServer<MartApi>>().await;
    health.set_serving::<AdminServiceServer<AdminApi>>().await;
    health.set_serving::<ReportServiceServer<ReportApi>>().await;

    let stop_serving = CancellationToken::new();
    let mut servers = tokio::task::JoinSet::new();
    if let Some(tcp) = listeners.grpc {
        let addr = tcp
            .local_addr()
            .map_err(|e| ServerError::io("read the gRPC address", e))?;
        tracing::info!(%addr, tls = tls.is_some(), "serving gRPC");
        // A silent district is given up within the dead-link budget.
        let router = Server::builder()
            .http2_keepalive_interval(Some(liveness::KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(liveness::KEEPALIVE_TIMEOUT))
            .layer(audit::AuditLayer)
            .layer(crate::observe::grpc_calls::layer())
            .add_routes(services.routes(&health, true)?);
        let stop = stop_serving.clone();
        let cap = fd_budget::cap_for_this_process(config.connections.max_connections, fd_limit);
        match &tls {
            // The node does the TLS handshakes itself (see tls_accept).
            Some(tls) => {
                let incoming = TlsIncoming::new(
                    Incoming::capped(tcp, cap, None),
                    tls.server.clone(),
                    tls.handshake_timeout,
                );
                servers.spawn(async move {
                    router
                        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                        .await
                });
            }
            None => {
                let opening = Some(config.connections.handshake_timeout);
                let incoming = Incoming::capped(tcp, cap, opening);
                servers.spawn(async move {
                    router
                        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                        .await
                });
            }
        }
    }
    tracing::info!(socket = %config.admin_socket.display(), "serving the admin socket");
    let router = Server::builder()
        .layer(audit::AuditLayer)
        .layer(crate::observe::grpc_calls::layer())
        .add_routes(services.routes(&health, false)?);
    let stop = stop_serving.clone();
    servers.spawn(async move {
        router
            .serve_with_incoming_shutdown(
                Incoming::uncapped(listeners.admin),
                stop.cancelled_owned(),
            )
            .await
    });

    if let Some(tcp) = listeners.metrics {
        let addr = tcp
            .local_addr()
            .map_err(|e| ServerError::io("read the metrics address", e))?;
        tracing::info!(%addr, "serving /metrics and the status page");
        let observed = crate::observe::Observed {
            engine: engine.clone(),
            book: book.clone(),
            hub: services.hub.clone(),
            stale_after: config.stale_after,
            data_dir: config.data_dir.clone(),
        };
        let stop = stop_serving.clone();
        servers.spawn(async move {
            crate::observe::serve(tcp, observed, stop.clone()).await;
            // Ends only at shutdown: a listener stopping by itself stops the node.
            stop.cancelled().await;
            Ok(())
        });
    }

    let mut supervisor = Supervisor::new(stop_sync.clone(), Backoff::DEFAULT);
    if let Some(sync) = &config.sync {
        let link = dial::HubLink {
            hub: config.identity.hub.clone(),
            url: sync.hub_url.clone(),
            tls: tls
                .as_ref()
                .map(|t| HubConnector::new(&sync.hub_url, t.client.clone()))
                .transpose()
                .map_err(|e| ServerError::Task(format!("sync.hub_url: {e}")))?,
        };
        tracing::info!(hub = %link.hub, url = %link.url, "syncing with the hub");
        // It keeps nothing of its own (what it works from is in the engine and the
        // peer book), so a fresh one carries on where it stopped; stopping the
        // node instead would stop the cashier over a sync problem.
        let (engine, book, wiring) = (engine.clone(), book.clone(), wiring.clone());
        supervisor.spawn("dialer", OnReturn::Restart, move || {
            dial::run(engine.clone(), book.clone(), link.clone(), wiring.clone())
        });
    }

    let mut storage = engine.watch_storage_failure();
    let failure = tokio::select! {
        _ = shutdown.cancelled() => None,
        // sled keeps its first i/o error until the database is opened again, and the
        // documents in memory may hold what the disk lost: only a new process (the
        // supervisor's restart) writes again.
        Ok(failed) = storage.wait_for(Option::is_some) => Some(format!(
            "the store failed, so the node stops; it writes again once restarted: {}",
            failed.as_deref().unwrap_or_default()
        )),
        Some(result) = servers.join_next() => Some(match result {
            Ok(Ok(())) => "a server stopped on its own".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        }),
        reason = supervisor.failure() => Some(reason),
    };
    tracing::info!("shutting down");
    health.set_not_serving::<MartServiceServer<MartApi>>().await;
    health
        .set_not_serving::<AdminServiceServer<AdminApi>>()
        .await;
    health
        .set_not_serving::<ReportServiceServer<ReportApi>>()
        .await;
    stop_sync.cancel();
    supervisor.join().await;
    stop_serving.cancel();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(timeout = ?DRAIN_TIMEOUT, "requests still in flight at shutdown were abandoned");
        servers.abort_all();
    }
    match engine.flush() {
        Ok(()) => {}
        // Stopping because the store failed: what it kept is what was flushed.
        Err(e) if failure.is_some() => {
            tracing::warn!(error = %e, "the store cannot flush at shutdown")
        }
        Err(e) => return Err(e.into()),
    }
    drop((engine, book, services));
    close_store(backend).await;
    let _ = std::fs::remove_file(&config.admin_socket);
    tracing::info!("stopped");
    match failure {
        Some(reason) => Err(ServerError::Task(reason)),
        None => Ok(()),
    }
}
