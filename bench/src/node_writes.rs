//! Durable sales through the node's gRPC API: a node served in-process on its own
//! runtime, and clients that record sales over TCP on 127.0.0.1 (no TLS).
//!
//! Clients use only the public API (`MartService`, `AdminService`), as a cashier's
//! terminal would; they never reach into the engine. Every sale they count was
//! acknowledged, so it was flushed to disk first.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use mart_node::config::NodeConfig;
use mart_node::server::{self, Listeners, ServerError};
use mart_proto::tonic::transport::Channel;
use mart_proto::v1 as pb;
use pb::admin_service_client::AdminServiceClient;
use pb::mart_service_client::MartServiceClient;
use tokio::runtime::Runtime;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::measure::{self, Measurement, Samples, Timing};

/// Worker threads of the node's runtime.
pub const NODE_WORKER_THREADS: usize = 2;

/// Seeded SKUs the sales rotate over.
pub const SKUS: [&str; 5] = [
    "TTU-MKP-060",
    "TTU-MKP-120",
    "NGD-KOP-250",
    "KPG-MDU-500",
    "SKA-MET-250",
];

/// The largest quantity one receipt may move.
const MAX_RECEIPT: i64 = 1_000_000;

/// Sales per second no client set on this kind of machine comes near: stock is
/// received for this rate over a whole measurement, so no sale is refused.
const SALES_PER_SECOND_CEILING: f64 = 100_000.0;

/// A district node served in-process until [`Node::stop`].
pub struct Node {
    runtime: Runtime,
    addr: SocketAddr,
    shutdown: CancellationToken,
    served: JoinHandle<Result<(), ServerError>>,
}

impl Node {
    /// Starts district `ttu` with a new store in `data_dir`, listening on a free port.
    pub fn start(data_dir: &Path) -> anyhow::Result<Node> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(NODE_WORKER_THREADS)
            .thread_name("node")
            .enable_all()
            .build()
            .context("start the node's runtime")?;
        let data_dir = toml::Value::String(data_dir.display().to_string());
        let text = format!(
            "version = 1\n\
             [node]\nid = \"ttu\"\nrole = \"district\"\nhub = \"kupang\"\ndata_dir = {data_dir}\n\
             [grpc]\nlisten = \"127.0.0.1:0\"\n\
             [tls]\ninsecure = true\n\
             [metrics]\nenabled = false\n"
        );
        let config = NodeConfig::parse(&text, "<bench node>")?;
        let listeners = runtime.block_on(Listeners::bind(&config))?;
        let addr = listeners
            .grpc
            .as_ref()
            .context("the node has no gRPC listener")?
            .local_addr()?;
        let shutdown = CancellationToken::new();
        let served = runtime.spawn(server::run(config, listeners, shutdown.clone()));
        Ok(Node {
            runtime,
            addr,
            shutdown,
            served,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts the node down in its own order and reports how it ended.
    pub fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.runtime
            .block_on(self.served)
            .context("the node's task panicked")??;
        Ok(())
    }
}

/// Durable writes of a node and the flushes that carried them, as `Status` reports.
#[derive(Debug, Clone, Copy)]
pub struct CommitStats {
    pub durable_writes: u64,
    pub flushes: u64,
}

impl CommitStats {
    pub async fn read(endpoint: &str) -> anyhow::Result<CommitStats> {
        let mut admin = AdminServiceClient::connect(endpoint.to_string()).await?;
        let status = admin.status(pb::StatusRequest {}).await?.into_inner();
        Ok(CommitStats {
            durable_writes: status.durable_writes,
            flushes: status.flushes,
        })
    }

    /// Writes per flush between `earlier` and these stats.
    pub fn writes_per_flush_since(&self, earlier: &CommitStats) -> f64 {
        let writes = self.durable_writes - earlier.durable_writes;
        let flushes = self.flushes - earlier.flushes;
        writes as f64 / flushes.max(1) as f64
    }
}

/// What one node measurement found.
pub struct SalesRun {
    pub sales: Measurement,
    /// Over the warm-up and the window.
    pub writes_per_flush: f64,
    /// Bytes the process wrote per durable sale over the warm-up and the window:
    /// through `write()`, and to the block layer (see `basket_writes::Io`).
    pub bytes_per_sale: (f64, f64),
}

/// Receives enough stock for `timing`, then has `clients` clients, each on its own
/// connection, record sales back to back.
pub async fn record_sales(
    endpoint: &str,
    clients: usize,
    timing: Timing,
) -> anyhow::Result<SalesRun> {
    stock_up(endpoint, timing).await?;
    let before = CommitStats::read(endpoint).await?;
    let io_before = crate::basket_writes::Io::now()?;
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(MartServiceClient::connect(endpoint.to_string()).await?);
    }
    let window = timing.open_window();
    let mut workers = JoinSet::new();
    for (cashier, client) in connections.into_iter().enumerate() {
        workers.spawn(async move {
            sell(client, cashier, window)
                .await
                .with_context(|| format!("client {cashier}"))
        });
    }
    let mut samples = Vec::with_capacity(clients);
    while let Some(worker) = workers.join_next().await {
        samples.push(worker.context("a client task panicked")??);
    }
    let io = crate::basket_writes::Io::now()?;
    let after = CommitStats::read(endpoint).await?;
    Ok(SalesRun {
        sales: Measurement::merge(window, samples),
        writes_per_flush: after.writes_per_flush_since(&before),
        bytes_per_sale: io.per_sale_since(&io_before, after.durable_writes - before.durable_writes),
    })
}

/// Receives stock of every SKU for more sales than `timing` can hold.
pub async fn stock_up(endpoint: &str, timing: Timing) -> anyhow::Result<()> {
    let sales = timing.total().as_secs_f64() * SALES_PER_SECOND_CEILING;
    let per_sku = sales / SKUS.len() as f64;
    let receipts = (per_sku / MAX_RECEIPT as f64).ceil().max(1.0) as u64;
    let mut client = MartServiceClient::connect(endpoint.to_string()).await?;
    for sku in SKUS {
        for n in 0..receipts {
            client
                .record_receipt(pb::ReceiptRequest {
                    request_id: format!("bench-stock-{sku}-{n}"),
                    sku: sku.to_string(),
                    quantity: MAX_RECEIPT,
                    unit_cost_rupiah: 1_000,
                    producer_id: String::new(),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("receive stock of {sku}"))?;
        }
    }
    Ok(())
}

/// One cashier recording sales of one unit, rotating over the SKUs. Each call takes
/// a clone of the client: clones share the connection.
async fn sell(
    client: MartServiceClient<Channel>,
    cashier: usize,
    window: measure::Window,
) -> anyhow::Result<Samples> {
    measure::run_async(window, |n| {
        let mut client = client.clone();
        let request = pb::SaleRequest {
            request_id: format!("bench-{cashier}-{n}"),
            sku: SKUS[(cashier + n as usize) % SKUS.len()].to_string(),
            quantity: 1,
            unit_price_rupiah: None,
            channel: pb::Channel::Store.into(),
            buyer: pb::Buyer::Public.into(),
            ..Default::default()
        };
        async move {
            let ack = client.record_sale(request).await?.into_inner();
            anyhow::ensure!(
                !ack.duplicate,
                "sale {} was taken for a repeat",
                ack.movement_id
            );
            Ok(())
        }
    })
    .await
}
