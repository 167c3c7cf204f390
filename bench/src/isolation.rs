//! `bench isolation`: does one district's big catch-up stall everyone else at the hub?
//!
//! The real hub binary (release, mutual TLS) and two districts in this process, each
//! a real engine (in memory) speaking the sync protocol over its own TLS session with
//! its own certificate. The "big" district recorded `--sales` sales offline and sends
//! them as bundles cut just under the hub's message limit (about 1 MiB), one after
//! the other. While the hub applies them, the "quiet" district records one sale at a
//! time and times its bundle's round trip (sent -> the hub's `Have` covering it), and
//! a client of the hub's admin socket times `status` calls. Printed: p50/p99/max of
//! both, idle (before the catch-up) and during it, beside the aim (p99 < 50 ms).
//!
//! It must never time anything outside the catch-up window as "during", nor count an
//! answer the hub did not give (a round trip ends only on the hub's own `Have`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use automerge::ChangeHash;
use mart_node::domain::doc_id::{DocId, NodeId};
use mart_node::domain::movement::MovementKind;
use mart_node::engine::{Engine, Identity, MovementRequest, OutBundle};
use mart_node::store::MemoryBackend;
use mart_node::sync::MAX_MESSAGE_BYTES;
use mart_proto::v1::sync_message::Body;
use mart_proto::v1::StatusRequest;
use mart_tests::cluster::free_local_addr;
use mart_tests::node::{NodeProcess, NodeSpec};
use mart_tests::pki::{Pki, Role};
use mart_tests::raw_sync::{self, hex_heads, RawSession};
use tokio::sync::watch;

use crate::catchup::sale_kind;

const HUB: &str = "kupang";
const BIG: &str = "sim-big";
const QUIET: &str = "sim-quiet";
const SKU: &str = "TTU-MKP-060";
/// The aim of issue 14 for both figures.
pub const AIM_P99: Duration = Duration::from_millis(50);
/// Samples taken before the catch-up (the idle reference).
const IDLE_SAMPLES: usize = 40;
/// Pause between two status calls, and between two of the quiet district's sales.
const STATUS_EVERY: Duration = Duration::from_millis(10);
const SALE_EVERY: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct Options {
    pub sales: usize,
}

/// Latencies, sorted.
#[derive(Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    fn sorted(mut self) -> Self {
        self.0.sort();
        self
    }

    pub fn quantile(&self, q: f64) -> Duration {
        let n = self.0.len();
        if n == 0 {
            return Duration::ZERO;
        }
        self.0[((n as f64 * q).ceil() as usize).clamp(1, n) - 1]
    }

    fn line(&self, what: &str, aim: bool) -> String {
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        format!(
            "{what:<34} n {:>5}  p50 {:>9}  p99 {:>9}  max {:>9}{}",
            self.0.len(),
            ms(self.quantile(0.5)),
            ms(self.quantile(0.99)),
            ms(self.quantile(1.0)),
            if aim {
                format!("   aim p99 < {} ms", AIM_P99.as_millis())
            } else {
                String::new()
            }
        )
    }
}

pub struct Isolation {
    pub bundles: Vec<usize>,
    pub catch_up: Duration,
    pub idle_sync: Latencies,
    pub idle_status: Latencies,
    pub sync: Latencies,
    pub status: Latencies,
}

/// A district in this process: an engine in memory and its open ledger period.
struct District {
    engine: Arc<Engine>,
    ledger: DocId,
    sold: usize,
}

impl District {
    async fn open(id: &str, stock: i64) -> Result<District> {
        let identity = Identity {
            node: NodeId::parse(id)?,
            hub: NodeId::parse(HUB)?,
        };
        let engine = Arc::new(Engine::open(Arc::new(MemoryBackend::new()), identity)?);
        let ledger = engine.open_period().context("an open ledger period")?;
        engine
            .record(MovementRequest {
                request_id: None,
                sku: SKU.into(),
                kind: MovementKind::Receipt {
                    quantity: stock,
                    unit_cost: 1,
                    producer: None,
                    over_budget: None,
                },
            })
            .await?;
        Ok(District {
            engine,
            ledger,
            sold: 0,
        })
    }

    async fn sell(&mut self) -> Result<()> {
        self.sold += 1;
        self.engine
            .record(MovementRequest {
                request_id: Some(format!("s{}", self.sold)),
                sku: SKU.into(),
                kind: sale_kind(self.sold, None),
            })
            .await?;
        Ok(())
    }

    /// What the hub (holding `hub_has`) lacks of the ledger, cut just under the
    /// hub's message limit.
    fn bundles_for_hub(&self, hub_has: &[ChangeHash]) -> Result<Vec<OutBundle>> {
        let planned = self
            .engine
            .plan_after(&self.ledger, hub_has)?
            .context("the ledger is held")?;
        Ok(self
            .engine
            .bundle_changes(&self.ledger, &planned.pending, MAX_MESSAGE_BYTES - 4096)?)
    }

    fn heads(&self) -> Vec<ChangeHash> {
        self.engine.heads(&self.ledger).unwrap_or_default()
    }
}

/// Opens a session as `id` and reads the hub's `Hello`.
async fn session(pki: &Pki, url: &str, id: &str) -> Result<RawSession> {
    let tls = pki.issue(id, Role::District, &[])?;
    let mut raw = RawSession::open(url, tls.client()?, id).await?;
    match raw.next().await? {
        Body::Hello(_) => Ok(raw),
        other => bail!("the hub opened {id}'s session with {other:?}"),
    }
}

/// Sends `bundles` one by one, each once the hub answered the one before; returns
/// the hub's heads after the last.
async fn send_all(
    raw: &mut RawSession,
    doc: &DocId,
    bundles: Vec<OutBundle>,
    mut known: Vec<String>,
) -> Result<Vec<String>> {
    let name = doc.to_string();
    for b in bundles {
        raw.send(raw_sync::bundle(&name, b.data, b.changes)).await?;
        match raw.answer(&name, &known).await? {
            Body::Have(h) => {
                let heads: Vec<ChangeHash> = h
                    .heads
                    .iter()
                    .map(|b| ChangeHash::try_from(b.as_slice()))
                    .collect::<Result<_, _>>()?;
                known = hex_heads(&heads);
            }
            other => bail!("the hub refused a bundle of {name}: {other:?}"),
        }
    }
    Ok(known)
}

/// One sale at the quiet district, sent and timed until the hub's `Have` covers it.
async fn round_trip(
    quiet: &mut District,
    raw: &mut RawSession,
    hub_has: &mut Vec<String>,
) -> Result<Duration> {
    quiet.sell().await?;
    let theirs: Vec<ChangeHash> = hub_has
        .iter()
        .map(|h| h.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("hub heads: {e:?}"))?;
    let bundles = quiet.bundles_for_hub(&theirs)?;
    let want = hex_heads(&quiet.heads());
    let started = Instant::now();
    *hub_has = send_all(raw, &quiet.ledger, bundles, hub_has.clone()).await?;
    let took = started.elapsed();
    ensure!(
        *hub_has == want,
        "the hub answered heads that are not the quiet district's"
    );
    Ok(took)
}

pub async fn run(options: &Options) -> Result<Isolation> {
    let pki = Pki::init()?;
    let addr = free_local_addr()?;
    let spec = NodeSpec::hub(HUB)
        .with_grpc_listen(addr)
        .with_tls(pki.issue(HUB, Role::Hub, &["localhost"])?)
        .with_districts(&[BIG, QUIET]);
    let mut hub = NodeProcess::new(spec)?;
    hub.launch()?;
    hub.wait_ready().await?;
    let url = format!("https://localhost:{}", addr.port());

    let started = Instant::now();
    let mut big = District::open(BIG, 4 * options.sales as i64 + 10).await?;
    for _ in 0..options.sales {
        big.sell().await?;
    }
    let bundles = big.bundles_for_hub(&[])?;
    let sizes: Vec<usize> = bundles.iter().map(|b| b.data.len()).collect();
    println!(
        "  {BIG}: {} sales recorded offline in {:.1?}, {} bundles of {} KiB",
        options.sales,
        started.elapsed(),
        sizes.len(),
        sizes
            .iter()
            .map(|s| (s / 1024).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut quiet = District::open(QUIET, 1_000_000).await?;
    let mut quiet_raw = session(&pki, &url, QUIET).await?;
    let mut hub_has = send_all(
        &mut quiet_raw,
        &quiet.ledger,
        quiet.bundles_for_hub(&[])?,
        Vec::new(),
    )
    .await?;
    let mut admin = hub.admin().await?;

    let mut idle_sync = Latencies::default();
    let mut idle_status = Latencies::default();
    for _ in 0..IDLE_SAMPLES {
        idle_sync.push(round_trip(&mut quiet, &mut quiet_raw, &mut hub_has).await?);
        let t = Instant::now();
        admin.status(StatusRequest {}).await?;
        idle_status.push(t.elapsed());
    }

    let mut big_raw = session(&pki, &url, BIG).await?;
    let (done_tx, done) = watch::channel(false);
    let ledger = big.ledger.clone();
    let catch_up = tokio::spawn(async move {
        let t = Instant::now();
        let sent = send_all(&mut big_raw, &ledger, bundles, Vec::new()).await;
        let _ = done_tx.send(true);
        sent.map(|_| t.elapsed())
    });
    let status_done = done.clone();
    let status = tokio::spawn(async move {
        let mut times = Latencies::default();
        while !*status_done.borrow() {
            let t = Instant::now();
            admin.status(StatusRequest {}).await?;
            let took = t.elapsed();
            if !*status_done.borrow() {
                times.push(took);
            }
            tokio::time::sleep(STATUS_EVERY).await;
        }
        anyhow::Ok(times)
    });
    let mut sync = Latencies::default();
    while !*done.borrow() {
        let took = round_trip(&mut quiet, &mut quiet_raw, &mut hub_has).await?;
        if !*done.borrow() {
            sync.push(took);
        }
        tokio::time::sleep(SALE_EVERY).await;
    }
    let catch_up = catch_up.await.context("the big district panicked")??;
    let status = status.await.context("the status client panicked")??;
    Ok(Isolation {
        bundles: sizes,
        catch_up,
        idle_sync: idle_sync.sorted(),
        idle_status: idle_status.sorted(),
        sync: sync.sorted(),
        status: status.sorted(),
    })
}

pub fn print(run: Isolation) {
    let total: usize = run.bundles.iter().sum();
    println!(
        "catch-up                           {} bundles, {:.1} MiB, applied by the hub in {:.2?}",
        run.bundles.len(),
        total as f64 / (1 << 20) as f64,
        run.catch_up
    );
    println!(
        "{}",
        run.idle_sync.line("idle: quiet district round trip", false)
    );
    println!("{}", run.idle_status.line("idle: hub status", false));
    println!(
        "{}",
        run.sync.line("catch-up: quiet district round trip", true)
    );
    println!("{}", run.status.line("catch-up: hub status", true));
}
