//! `bench fanin`: the real hub binary (release, mutual TLS) and `--districts`
//! simulated districts in this process, each a real engine (in memory) with its own
//! certificate from the test PKI and its own TLS sync session, dialed by the node's
//! own dialer (`mart_node::sync::dial::run`). Each district records one sale a
//! second; printed: p50/p99 from the district's acknowledgement of a sale (the
//! engine's `record` returned) to the hub holding it (the hub's `Have` for the
//! ledger covers it), the hub's RSS and its CPU per sale, beside the aims of issue 12.
//!
//! It must never count a sale as held by the hub from anything but the hub's own
//! `Have` (the peer book's acknowledged heads), and never let the simulated
//! districts' CPU pass for the hub's: the hub's CPU is read from `/proc/<pid>`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mart_node::domain::doc_id::{DocId, NodeId};
use mart_node::domain::movement::MovementKind;
use mart_node::engine::{Engine, Identity, MovementRequest};
use mart_node::server::hub_cert::HubVerifier;
use mart_node::store::{Backend, MemoryBackend};
use mart_node::sync::dial::{self, HubLink};
use mart_node::sync::liveness::SESSION_SILENCE_LIMIT;
use mart_node::sync::tls_dial::{self, HubConnector};
use mart_node::sync::{PeerBook, Rhythm, Wiring};
use mart_tests::cluster::free_local_addr;
use mart_tests::node::{NodeProcess, NodeSpec};
use mart_tests::pki::{Pki, Role};
use mart_tests::procfs;
use rand::Rng;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::catchup::sale_kind;

const HUB: &str = "kupang";
const SKU: &str = "TTU-MKP-060";
/// Every district connected within this, or the run reports how many were.
const CONNECT_WITHIN: Duration = Duration::from_secs(180);
/// Sales before this are not measured (sessions settle, first catalogs sync).
const WARMUP: Duration = Duration::from_secs(10);
/// A sale not held by the hub within this counts as lost for the run.
const HELD_WITHIN: Duration = Duration::from_secs(30);
/// How often a district looks at its peer book for the hub's `Have`.
const ACK_POLL: Duration = Duration::from_millis(5);

#[derive(Debug, Clone)]
pub struct Options {
    pub districts: usize,
    pub seconds: u64,
}

pub struct FanIn {
    pub connected: usize,
    pub connect_time: Duration,
    /// Acknowledged -> held at the hub, sorted.
    pub latencies: Vec<Duration>,
    pub unheld: usize,
    pub hub_rss: Option<u64>,
    pub hub_peak_rss: Option<u64>,
    pub hub_cpu: Duration,
    pub window: Duration,
    pub hub_fds: Option<usize>,
}

impl FanIn {
    pub fn quantile(&self, q: f64) -> Duration {
        let n = self.latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        self.latencies[((n as f64 * q).ceil() as usize).clamp(1, n) - 1]
    }
}

/// One simulated district: its engine, peer book and ledger.
struct District {
    engine: Arc<Engine>,
    book: Arc<PeerBook>,
    ledger: DocId,
}

fn sim_id(i: usize) -> String {
    format!("sim-{i:04}")
}

pub async fn run(options: &Options) -> Result<FanIn> {
    let pki = Pki::init()?;
    let ids: Vec<String> = (0..options.districts).map(sim_id).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let addr = free_local_addr()?;
    let spec = NodeSpec::hub(HUB)
        .with_grpc_listen(addr)
        .with_tls(pki.issue(HUB, Role::Hub, &["localhost"])?)
        .with_districts(&id_refs)
        .with_connection_limits(options.districts + 256, 30);
    let mut hub = NodeProcess::new(spec)?;
    hub.set_fd_limit(options.districts as u64 * 2 + 1024);
    hub.launch()?;
    hub.wait_ready().await?;
    let pid = hub.pid().context("the hub runs")?;
    let url = format!("https://localhost:{}", addr.port());
    let hub_id = NodeId::parse(HUB)?;
    let verifier = Arc::new(
        HubVerifier::new(&std::fs::read(pki.ca_cert())?, &hub_id)
            .map_err(|e| anyhow::anyhow!("hub verifier: {e}"))?,
    );

    let stop = CancellationToken::new();
    let (_resync, resync) = watch::channel(0u64);
    let mut districts = Vec::new();
    let started = Instant::now();
    for id in &ids {
        let tls = pki.issue(id, Role::District, &[])?;
        let district = open_district(id, &hub_id, options.seconds).await?;
        let link = HubLink {
            hub: hub_id.clone(),
            url: url.clone(),
            // Its own certificate; the hub's is checked by the verifier; tickets
            // of its own, as a district process has.
            tls: Some(
                HubConnector::new(
                    &url,
                    Arc::new(
                        tls_dial::client_config(
                            &std::fs::read(&tls.cert)?,
                            &std::fs::read(&tls.key)?,
                            verifier.clone(),
                            tls_dial::ticket_store(),
                        )
                        .map_err(|e| anyhow::anyhow!("district TLS: {e}"))?,
                    ),
                )
                .map_err(|e| anyhow::anyhow!("hub connector: {e}"))?,
            ),
        };
        let wiring = Wiring {
            local_writes: district.engine.watch_local_writes(),
            resync: resync.clone(),
            rhythm: Rhythm {
                resync_every: Duration::from_secs(30),
                silence_limit: SESSION_SILENCE_LIMIT,
            },
            shutdown: stop.clone(),
        };
        tokio::spawn(dial::run(
            district.engine.clone(),
            district.book.clone(),
            link,
            wiring,
        ));
        districts.push(district);
    }
    println!(
        "  {} districts: certificates issued and engines opened in {:.1?}",
        ids.len(),
        started.elapsed()
    );
    let connected = wait_connected(&districts, &hub_id).await;
    let connect_time = started.elapsed();
    println!(
        "  {connected} of {} connected after {connect_time:.1?}",
        ids.len()
    );
    // Why the others are not: the last error their dialers recorded.
    let mut why = std::collections::BTreeMap::<String, usize>::new();
    for d in districts.iter().filter(|d| !d.book.connected(&hub_id)) {
        let status = d.book.status(&d.engine);
        let error = status.iter().find_map(|p| p.last_error.clone());
        *why.entry(error.unwrap_or_else(|| "no error recorded".into()))
            .or_default() += 1;
    }
    for (error, n) in &why {
        println!("  {n} not connected: {error}");
    }

    let latencies = Arc::new(Mutex::new(Vec::new()));
    let unheld = Arc::new(Mutex::new(0usize));
    let run_for = WARMUP + Duration::from_secs(options.seconds);
    let begin = Instant::now();
    let mut tills = tokio::task::JoinSet::new();
    for (n, district) in districts.into_iter().enumerate() {
        let (latencies, unheld, hub_id) = (latencies.clone(), unheld.clone(), hub_id.clone());
        tills.spawn(async move {
            sell_every_second(n, district, hub_id, begin, run_for, latencies, unheld).await
        });
    }
    tokio::time::sleep(WARMUP).await;
    let cpu_start = procfs::cpu_time(pid)?;
    let window_start = Instant::now();
    while let Some(till) = tills.join_next().await {
        till.context("a district panicked")??;
    }
    let window = window_start.elapsed();
    let hub_cpu = procfs::cpu_time(pid)?.saturating_sub(cpu_start);
    let hub_rss = procfs::rss_bytes(pid).ok();
    let hub_peak_rss = procfs::peak_rss_bytes(pid).ok();
    let hub_fds = procfs::open_fds(pid).ok();
    stop.cancel();
    let mut latencies = std::mem::take(&mut *latencies.lock().expect("never poisoned"));
    latencies.sort();
    let unheld = *unheld.lock().expect("never poisoned");
    Ok(FanIn {
        connected,
        connect_time,
        latencies,
        unheld,
        hub_rss,
        hub_peak_rss,
        hub_cpu,
        window,
        hub_fds,
    })
}

/// An engine in memory for district `id`, with stock for a sale a second.
async fn open_district(id: &str, hub: &NodeId, seconds: u64) -> Result<District> {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let identity = Identity {
        node: NodeId::parse(id)?,
        hub: hub.clone(),
    };
    let engine = Arc::new(Engine::open(backend.clone(), identity)?);
    let ledger = engine.open_period().context("an open ledger period")?;
    let receipt = MovementRequest {
        request_id: None,
        sku: SKU.into(),
        kind: MovementKind::Receipt {
            quantity: 4 * (seconds as i64 + WARMUP.as_secs() as i64 + 10),
            unit_cost: 1,
            producer: None,
            over_budget: None,
        },
    };
    engine.record(receipt).await?;
    Ok(District {
        engine,
        book: Arc::new(PeerBook::load(backend)),
        ledger,
    })
}

/// Waits until every district's peer book shows a live session with the hub, or
/// [`CONNECT_WITHIN`]; returns how many were connected.
async fn wait_connected(districts: &[District], hub: &NodeId) -> usize {
    let deadline = Instant::now() + CONNECT_WITHIN;
    loop {
        let n = districts.iter().filter(|d| d.book.connected(hub)).count();
        if n == districts.len() || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One sale a second (at a random phase) until `run_for` after `begin`; each timed
/// from its acknowledgement to the hub's `Have` covering it, after the warm-up.
async fn sell_every_second(
    n: usize,
    d: District,
    hub: NodeId,
    begin: Instant,
    run_for: Duration,
    latencies: Arc<Mutex<Vec<Duration>>>,
    unheld: Arc<Mutex<usize>>,
) -> Result<()> {
    let phase = Duration::from_millis(rand::rng().random_range(0..1000));
    let mut tick = tokio::time::interval_at((begin + phase).into(), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut i = 0;
    loop {
        tick.tick().await;
        if begin.elapsed() >= run_for {
            return Ok(());
        }
        i += 1;
        let request = MovementRequest {
            request_id: Some(format!("{n}-{i}")),
            sku: SKU.into(),
            kind: sale_kind(i, None),
        };
        d.engine.record(request).await?;
        let acknowledged = Instant::now();
        let heads = d.engine.heads(&d.ledger).context("the ledger")?;
        let held = loop {
            let acked = d.book.acked(&hub, &d.ledger).unwrap_or_default();
            if heads.iter().all(|h| acked.contains(h)) {
                break Some(acknowledged.elapsed());
            }
            if acknowledged.elapsed() > HELD_WITHIN {
                break None;
            }
            tokio::time::sleep(ACK_POLL).await;
        };
        if begin.elapsed() < WARMUP {
            continue;
        }
        match held {
            Some(latency) => latencies.lock().expect("never poisoned").push(latency),
            None => *unheld.lock().expect("never poisoned") += 1,
        }
    }
}

pub fn print(options: &Options, f: &FanIn) {
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    let sales = f.latencies.len();
    println!(
        "connected                 {:>5} of {} (in {:.1?}; {} hub fds at the end)",
        f.connected,
        options.districts,
        f.connect_time,
        f.hub_fds.map_or("?".into(), |n| n.to_string())
    );
    println!(
        "sales measured            {sales:>5} over {:.0?} ({} not held within {HELD_WITHIN:?})",
        f.window, f.unheld
    );
    println!(
        "acknowledged -> at hub    p50 {}, p99 {}, max {}   aim p99 < 1 s",
        ms(f.quantile(0.5)),
        ms(f.quantile(0.99)),
        ms(f.quantile(1.0))
    );
    println!(
        "hub RSS                   {} MiB (peak {} MiB)   aim < 512 MB",
        crate::mib(f.hub_rss),
        crate::mib(f.hub_peak_rss)
    );
    let per_sale = f.hub_cpu.as_secs_f64() * 1e3 / sales.max(1) as f64;
    println!(
        "hub CPU                   {:.1} s over the window: {:.0}% of a core, {per_sale:.2} ms per sale",
        f.hub_cpu.as_secs_f64(),
        100.0 * f.hub_cpu.as_secs_f64() / f.window.as_secs_f64().max(1e-9)
    );
}
