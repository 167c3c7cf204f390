//! `bench herd`: a release hub and N district processes (real mutual TLS, each
//! dialing the hub directly), each district recording `--sales` sales while the
//! hub is down for `--outage-secs`; then the hub comes back on the same address.
//! Printed: when every district is connected again, when every district's ledger is
//! at the hub, the hub's peak RSS over the catch-up, and beside it the sum of raw
//! automerge `apply_changes` of the same changes (measured after, in this run, on
//! the hub's own store), with the aims of issue 12.
//!
//! It must never count a district as back or caught up from anything but what the
//! hub answers (ListPeers `connected`, ListDocuments heads).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use automerge::{Automerge, ChangeHash};
use mart_node::domain::doc_id::{DocId, NodeId};
use mart_node::engine::{Engine, Identity};
use mart_node::store::{Backend, SledBackend};
use mart_proto::v1::ListPeersRequest;
use mart_tests::cluster::{document_heads, Heads};
use mart_tests::ops::{open_ledger, receive, sale};
use mart_tests::{procfs, TestCluster};

/// SKUs sold, from the seeded provincial catalog; each gets stock for every sale.
const SKUS: [&str; 3] = ["TTU-MKP-060", "SKA-MET-250", "NGD-KOP-250"];
/// Sales recorded at once at each district (over its admin socket).
const IN_FLIGHT: usize = 16;
/// Deadline of every wait that is not the measurement.
const WAIT: Duration = Duration::from_secs(600);
/// How often the hub is asked during the catch-up.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct Options {
    pub districts: usize,
    pub sales: usize,
    pub outage: Duration,
}

/// What one herd measured; times from the hub answering Status after its restart.
pub struct Herd {
    /// District -> first seen connected at the hub.
    pub back: BTreeMap<String, Duration>,
    /// District -> its ledger at the hub with the district's heads.
    pub caught_up: BTreeMap<String, Duration>,
    pub hub_peak_rss: Option<u64>,
    /// Sum over the districts of `apply_changes` of the changes the hub lacked.
    pub raw_apply: Duration,
    pub changes: usize,
}

impl Herd {
    pub fn all_back(&self) -> Duration {
        self.back.values().max().copied().unwrap_or_default()
    }

    pub fn all_caught_up(&self) -> Duration {
        self.caught_up.values().max().copied().unwrap_or_default()
    }

    /// From the first district connected to the last caught up: the sync work.
    pub fn catch_up(&self) -> Duration {
        let first = self.back.values().min().copied().unwrap_or_default();
        self.all_caught_up().saturating_sub(first)
    }
}

pub async fn run(options: &Options) -> Result<Herd> {
    let ids: Vec<&str> = mart_node::domain::districts::ALL
        .iter()
        .take(options.districts)
        .map(|d| d.id)
        .collect();
    let mut builder = TestCluster::builder().direct_links();
    for id in &ids {
        builder = builder.district(id);
    }
    let mut cluster = builder.start().await.context("start the cluster")?;
    let hub = cluster.hub_id().to_string();
    let mut ledgers = BTreeMap::new();
    for id in &ids {
        let mut mart = cluster.mart(id).await?;
        for sku in SKUS {
            receive(
                &mut mart,
                &format!("{id}-stock-{sku}"),
                sku,
                3 * options.sales as i64,
            )
            .await?;
        }
        ledgers.insert(
            id.to_string(),
            open_ledger(&mut cluster.admin(id).await?).await?,
        );
    }
    cluster.wait_converged(WAIT).await?;
    let before = document_heads(&mut cluster.admin(&hub).await?).await?;

    cluster.stop(&hub).await?;
    let down = Instant::now();
    let recording = record_sales(&cluster, &ids, options.sales).await?;
    println!(
        "  {} sales recorded at {} districts with the hub down, in {recording:.1?}",
        options.sales * ids.len(),
        ids.len()
    );
    let mut target = BTreeMap::new();
    for id in &ids {
        let heads = document_heads(&mut cluster.admin(id).await?).await?;
        target.insert(id.to_string(), heads[&ledgers[*id]].clone());
    }
    tokio::time::sleep(options.outage.saturating_sub(down.elapsed())).await;

    cluster.start(&hub).await?;
    let answering = Instant::now();
    let pid = cluster.hub().pid().context("the hub runs")?;
    let (back, caught_up) = watch_catch_up(&cluster, &ledgers, &target, answering).await?;
    let hub_peak_rss = procfs::peak_rss_bytes(pid).ok();

    cluster.stop(&hub).await?;
    let (raw_apply, changes) = raw_apply(&cluster.hub().db_path(), &hub, &ledgers, &before)?;
    Ok(Herd {
        back,
        caught_up,
        hub_peak_rss,
        raw_apply,
        changes,
    })
}

/// `sales` sales at every district at once, `IN_FLIGHT` at a time at each.
async fn record_sales(cluster: &TestCluster, ids: &[&str], sales: usize) -> Result<Duration> {
    let started = Instant::now();
    let mut tills = tokio::task::JoinSet::new();
    for id in ids {
        let mart = cluster.mart(id).await?;
        let batch = (0..sales)
            .map(|i| {
                let s = sale(
                    &format!("{id}-{i}"),
                    SKUS[i % SKUS.len()],
                    1 + (i % 3) as i64,
                );
                (s.request_id, s.sku, s.quantity)
            })
            .collect();
        tills.spawn(async move { mart_tests::ops::sell_all(&mart, batch, IN_FLIGHT).await });
    }
    while let Some(till) = tills.join_next().await {
        till.context("a till panicked")??;
    }
    Ok(started.elapsed())
}

/// Polls the hub until every ledger holds the district's heads; returns when each
/// district was first seen connected, and caught up.
async fn watch_catch_up(
    cluster: &TestCluster,
    ledgers: &BTreeMap<String, String>,
    target: &BTreeMap<String, Vec<String>>,
    since: Instant,
) -> Result<(BTreeMap<String, Duration>, BTreeMap<String, Duration>)> {
    let (mut back, mut caught_up) = (BTreeMap::new(), BTreeMap::new());
    let mut admin = cluster.admin(cluster.hub_id()).await?;
    let deadline = since + WAIT;
    while caught_up.len() < ledgers.len() || back.len() < ledgers.len() {
        ensure!(Instant::now() < deadline, "no catch-up within {WAIT:?}");
        let peers = admin
            .list_peers(ListPeersRequest::default())
            .await?
            .into_inner()
            .peers;
        for p in peers.iter().filter(|p| p.connected) {
            back.entry(p.peer_id.clone())
                .or_insert_with(|| since.elapsed());
        }
        if back.len() == ledgers.len() {
            let heads: Heads = document_heads(&mut admin).await?;
            for (id, ledger) in ledgers {
                if heads.get(ledger) == target.get(id) {
                    caught_up
                        .entry(id.clone())
                        .or_insert_with(|| since.elapsed());
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Ok((back, caught_up))
}

/// On the stopped hub's store: for each ledger, the document as the hub held it
/// before the outage, then `apply_changes` of every change after it, timed; summed.
fn raw_apply(
    db: &std::path::Path,
    hub: &str,
    ledgers: &BTreeMap<String, String>,
    before: &Heads,
) -> Result<(Duration, usize)> {
    let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(db)?);
    let identity = Identity {
        node: NodeId::parse(hub)?,
        hub: NodeId::parse(hub)?,
    };
    let engine = Engine::open(backend, identity)?;
    let (mut total, mut count) = (Duration::ZERO, 0);
    for ledger in ledgers.values() {
        let doc = DocId::parse(ledger)?;
        let base_heads: Vec<ChangeHash> = before
            .get(ledger)
            .map(|h| h.iter().map(|h| ChangeHash::from_str(h)).collect())
            .transpose()?
            .unwrap_or_default();
        let mut whole = Automerge::new();
        whole.apply_changes(engine.changes_after(&doc, &[])?)?;
        let mut base = whole.fork_at(&base_heads)?;
        drop(whole);
        let changes = engine.changes_after(&doc, &base_heads)?;
        count += changes.len();
        let started = Instant::now();
        base.apply_changes(changes)?;
        total += started.elapsed();
    }
    Ok((total, count))
}

/// Prints one run beside the aims of issue 12.
pub fn print(options: &Options, herd: &Herd) {
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let mut order: Vec<_> = herd.back.iter().collect();
    order.sort_by_key(|(_, d)| **d);
    println!(
        "  back, in order: {}",
        order
            .iter()
            .map(|(id, d)| format!("{id} {:.1}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "every district connected again   {:>9}   aim <= 5 s (times from the hub answering Status after {} s down)",
        secs(herd.all_back()),
        options.outage.as_secs()
    );
    println!(
        "every ledger at the hub           {:>9}",
        secs(herd.all_caught_up())
    );
    println!(
        "catch-up (first back to last in)  {:>9}   raw apply_changes of the same {} changes {}: {:.2} x (aim <= 1.5 x)",
        secs(herd.catch_up()),
        herd.changes,
        secs(herd.raw_apply),
        herd.catch_up().as_secs_f64() / herd.raw_apply.as_secs_f64().max(1e-9)
    );
    println!(
        "hub peak RSS                      {:>6} MiB   aim < 256 MB",
        crate::mib(herd.hub_peak_rss)
    );
}
