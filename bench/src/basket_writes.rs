//! The `bench writes` rows of issue 14: one client recording baskets of several
//! lines with `RecordSale`, one client recording single-line sales over the
//! `RecordSales` stream, and the bytes the process writes per durable sale, read from
//! `/proc/self/io` (the node runs in this process; the clients write nothing).
//!
//! It must never count a sale the node did not acknowledge as recorded, and never
//! keep more than the node's stream window of requests in flight.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use mart_proto::v1 as pb;
use pb::mart_service_client::MartServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::measure::{self, Measurement, Samples, Timing};
use crate::node_writes::{stock_up, SKUS};

/// Requests of the stream in flight at most (the node's window is 64).
const IN_FLIGHT: usize = 64;

/// Bytes the process wrote: through `write()` and friends (`wchar`), and sent to the
/// block layer (`write_bytes`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Io {
    pub wchar: u64,
    pub block: u64,
}

impl Io {
    pub fn now() -> anyhow::Result<Io> {
        let text = std::fs::read_to_string("/proc/self/io").context("read /proc/self/io")?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .with_context(|| format!("no {name} in /proc/self/io"))
        };
        Ok(Io {
            wchar: field("wchar:")?,
            block: field("write_bytes:")?,
        })
    }

    /// Bytes per sale written between `earlier` and `self` for `sales` sales.
    pub fn per_sale_since(&self, earlier: &Io, sales: u64) -> (f64, f64) {
        let n = sales.max(1) as f64;
        (
            (self.wchar - earlier.wchar) as f64 / n,
            (self.block - earlier.block) as f64 / n,
        )
    }
}

/// What a basket or stream run found: the measurement (one op per request) and the
/// bytes written per line sold over the whole run (warm-up included).
pub struct Run {
    pub measurement: Measurement,
    pub bytes_per_line: (f64, f64),
}

fn basket(id: String, first: usize, lines: usize) -> pb::SaleRequest {
    pb::SaleRequest {
        request_id: id,
        lines: (0..lines)
            .map(|i| pb::SaleLine {
                sku: SKUS[(first + i) % SKUS.len()].to_string(),
                quantity: 1,
                unit_price_rupiah: None,
            })
            .collect(),
        payment: pb::Payment::Qris.into(),
        ..Default::default()
    }
}

/// One client recording baskets of `lines` lines back to back with `RecordSale`.
pub async fn record_baskets(endpoint: &str, lines: usize, timing: Timing) -> anyhow::Result<Run> {
    stock_up(endpoint, timing).await?;
    let client = MartServiceClient::connect(endpoint.to_string()).await?;
    let before = Io::now()?;
    let window = timing.open_window();
    let sold = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = sold.clone();
    let samples = measure::run_async(window, |n| {
        let mut client = client.clone();
        let request = basket(format!("bench-basket-{n}"), n as usize, lines);
        let sold = counted.clone();
        async move {
            let ack = client.record_sale(request).await?.into_inner();
            anyhow::ensure!(ack.lines.len() == lines && !ack.duplicate, "{ack:?}");
            sold.fetch_add(lines as u64, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
    })
    .await?;
    let lines_sold = sold.load(std::sync::atomic::Ordering::Relaxed);
    Ok(Run {
        measurement: Measurement::merge(window, [samples]),
        bytes_per_line: Io::now()?.per_sale_since(&before, lines_sold),
    })
}

/// One client recording single-line sales over one `RecordSales` stream, with up to
/// [`IN_FLIGHT`] unanswered; each answer is one operation, its latency from send to
/// answer.
pub async fn record_stream(endpoint: &str, timing: Timing) -> anyhow::Result<Run> {
    stock_up(endpoint, timing).await?;
    let mut client = MartServiceClient::connect(endpoint.to_string()).await?;
    let before = Io::now()?;
    let window = timing.open_window();
    let (tx, rx) = mpsc::channel::<pb::SaleRequest>(IN_FLIGHT);
    let sent: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
    let credits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let producer = {
        let (sent, credits) = (sent.clone(), credits.clone());
        tokio::spawn(async move {
            for n in 0u64.. {
                let Ok(permit) = credits.clone().acquire_owned().await else {
                    return;
                };
                permit.forget();
                let request = pb::SaleRequest {
                    request_id: format!("bench-stream-{n}"),
                    sku: SKUS[n as usize % SKUS.len()].to_string(),
                    quantity: 1,
                    ..Default::default()
                };
                sent.lock().unwrap().push_back(Instant::now());
                if tx.send(request).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut answers = client
        .record_sales(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut samples = Samples::new();
    let mut lines = 0;
    while let Some(answer) = answers.message().await? {
        let ended = Instant::now();
        let began = sent
            .lock()
            .unwrap()
            .pop_front()
            .context("an answer to nothing sent")?;
        anyhow::ensure!(
            answer.ack.as_ref().is_some_and(|a| !a.duplicate),
            "sale {} refused: {}",
            answer.index,
            answer.message
        );
        lines += 1;
        credits.add_permits(1);
        if !samples.record(&window, began, ended) {
            break;
        }
    }
    credits.close();
    producer.abort();
    Ok(Run {
        measurement: Measurement::merge(window, [samples]),
        bytes_per_line: Io::now()?.per_sale_since(&before, lines),
    })
}
