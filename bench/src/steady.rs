//! `bench steady`: whether the cost of a sale stays flat as a month fills up
//! (issue 16). A hub and three districts run as real `mart-node` processes (release
//! build, mutual TLS, sled; `mart-tests`' own `TestCluster`). The open ledger period
//! of every district is grown to each size level in turn (5,000 sales, then every
//! `--step` up to `--sales`): quickly, with the links cut and several clients
//! selling at once, then the links heal and the hub catches up. At each level a
//! steady window follows: each district sells `--rate` sales a second, one call at a
//! time, for `--window-secs`, its link up, so the hub receives a stream of small
//! bundles into a large open period, the way it does in service.
//!
//! Per level it prints the hub's CPU per sale received in the window (from the
//! window's start until every district is in step again), the resident memory each
//! sale held in the open periods adds (the slope from the first level), the data
//! dirs, each district's CPU and bytes written (`write()`, `/proc/<pid>/io`) per sale,
//! and a district's data dir against its documents' saved size (the largest ratio of
//! samples taken every 2 s through the window). The aims (issue 16) are printed
//! beside them; it reports and never fails on a figure. The figures are read from
//! outside, as an operator's tools would ([`crate::soak::probe`]).

mod load;
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mart_tests::cluster::list_documents;
use mart_tests::{procfs, TestCluster};

use crate::soak::probe;
use load::Till;
use report::{Figures, Level};

const HUB: &str = "kupang";
const DISTRICTS: [&str; 3] = ["alor", "sikka", "ttu"];
/// `sync.resync_secs` of the districts.
const RESYNC_SECS: u64 = 10;
/// The first size level: the reference point for CPU per sale.
const FIRST_LEVEL: u64 = 5_000;
/// How long the hub may take to catch up after a fill or a window.
const CONVERGE: Duration = Duration::from_secs(600);
/// How often the district's data dir is compared with its documents in a window.
const DISK_SAMPLE: Duration = Duration::from_secs(2);

/// What `bench steady` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sales in each district's open period at the last level.
    pub sales: u64,
    /// Sales between levels after the first (5,000).
    pub step: u64,
    /// Sales a second at each district in a steady window.
    pub rate: f64,
    pub window: Duration,
    /// Calls in flight at each district while filling.
    pub fill_clients: usize,
    pub dir: Option<PathBuf>,
}

impl Options {
    /// The size levels: 5,000, then every step up to `sales`.
    fn levels(&self) -> Vec<u64> {
        let mut levels = vec![FIRST_LEVEL.min(self.sales)];
        let mut next = self.step;
        while next <= self.sales {
            if next > levels[levels.len() - 1] {
                levels.push(next);
            }
            next += self.step;
        }
        if levels[levels.len() - 1] < self.sales {
            levels.push(self.sales);
        }
        levels
    }

    /// Sales one steady window adds at a district (about).
    fn window_sales(&self) -> u64 {
        (self.rate * self.window.as_secs_f64()) as u64
    }
}

/// Runs the benchmark in a scratch dir under `--dir` (default `/var/tmp`), removed after.
pub fn run(options: Options) -> Result<()> {
    anyhow::ensure!(options.sales >= 1_000, "--sales must be at least 1,000");
    anyhow::ensure!(options.step >= 1_000, "--step must be at least 1,000");
    anyhow::ensure!(
        options.rate > 0.0 && options.rate <= 200.0,
        "--rate must be above 0 and at most 200"
    );
    anyhow::ensure!(
        options.fill_clients > 0,
        "--fill-clients must be at least 1"
    );
    let (scratch, runtime) = crate::soak::nodes_in_scratch(options.dir.as_deref())?;
    runtime.block_on(steady(&options, scratch.path()))
}

async fn steady(options: &Options, scratch: &Path) -> Result<()> {
    println!(
        "bench steady: hub {HUB} and districts {DISTRICTS:?}; levels {:?} sales per district; \
         windows of {:.0?} at {} sales/s per district; {} CPUs, load average {}",
        options.levels(),
        options.window,
        options.rate,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        crate::load_average().as_deref().unwrap_or("unknown"),
    );
    println!("nodes in {}", scratch.display());
    let started = Instant::now();
    let mut builder = TestCluster::builder().hub(HUB).resync_secs(RESYNC_SECS);
    for district in DISTRICTS {
        builder = builder.district(district);
    }
    let cluster = builder.start().await.context("start the cluster")?;
    let mut tills = Vec::new();
    for district in cluster.district_ids() {
        let mut till = Till::new(&district, cluster.mart(&district).await?);
        // Every sale takes one unit of one of the SKUs: never refused.
        till.open_stock(options.sales as i64 + 100_000).await?;
        tills.push(till);
    }
    cluster
        .wait_converged(CONVERGE)
        .await
        .context("the cluster converges before the first fill")?;
    println!(
        "cluster up and stocked in {:.1?}; pids: {}\n",
        started.elapsed(),
        std::iter::once(HUB.to_string())
            .chain(cluster.district_ids())
            .map(|id| format!("{id} {}", cluster.node(&id).pid().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("{}", report::header());
    let mut levels: Vec<Level> = Vec::new();
    for target in options.levels() {
        let fill = fill(&cluster, &tills, target, options).await?;
        let level = window(&cluster, &tills, options, fill).await?;
        println!("{}", report::row(&level, levels.first()));
        levels.push(level);
    }
    println!(
        "\nload average {}; whole run {:.0?}",
        crate::load_average().as_deref().unwrap_or("unknown"),
        started.elapsed()
    );
    report::verdicts(&levels);
    Ok(())
}

/// Grows every district's open period to `target` sales (less the window that
/// follows) with its link cut, then heals the links and waits for the hub to hold
/// everything. Returns the fill's sales a second (all districts).
async fn fill(
    cluster: &TestCluster,
    tills: &[Till],
    target: u64,
    options: &Options,
) -> Result<f64> {
    let goal = target.saturating_sub(options.window_sales());
    let before: u64 = tills.iter().map(Till::sold).sum();
    let started = Instant::now();
    for till in tills {
        cluster.cut(till.district());
    }
    let mut fills = Vec::new();
    for till in tills {
        let till = till.clone();
        let clients = options.fill_clients;
        fills.push(tokio::spawn(
            async move { till.fill_to(goal, clients).await },
        ));
    }
    for f in fills {
        f.await.context("a fill panicked")??;
    }
    let filled = tills.iter().map(Till::sold).sum::<u64>() - before;
    let rate = filled as f64 / started.elapsed().as_secs_f64();
    for till in tills {
        cluster.heal(till.district());
    }
    converge(cluster).await?;
    Ok(rate)
}

/// Asks every district for a sync round and waits until all are in step with the hub.
async fn converge(cluster: &TestCluster) -> Result<()> {
    for district in cluster.district_ids() {
        if let Err(e) = cluster.sync_now(&district, 30).await {
            println!("  SyncNow at {district}: {e:#}");
        }
    }
    cluster
        .wait_converged(CONVERGE)
        .await
        .context("every district in step with the hub")
}

/// Reads every node: the hub first, then the districts in order.
async fn read_all(cluster: &TestCluster) -> Result<Vec<Figures>> {
    let mut out = Vec::new();
    for id in std::iter::once(HUB.to_string()).chain(cluster.district_ids()) {
        let node = cluster.node(&id);
        let pid = node.pid().context("a node is not running")?;
        let reading = probe::read(pid, &node.data_dir())?;
        let saved = list_documents(&mut cluster.admin(&id).await?)
            .await?
            .values()
            .map(|d| d.bytes_on_disk)
            .sum();
        out.push(Figures {
            reading,
            written: procfs::written_bytes(pid)?,
            saved,
        });
    }
    Ok(out)
}

/// The steady window at the current level, read before and after.
async fn window(
    cluster: &TestCluster,
    tills: &[Till],
    options: &Options,
    fill_rate: f64,
) -> Result<Level> {
    let sales_before: Vec<u64> = tills.iter().map(Till::sold).collect();
    let before = read_all(cluster).await?;
    let mut sellers = Vec::new();
    for till in tills {
        let till = till.clone();
        let (rate, length) = (options.rate, options.window);
        sellers.push(tokio::spawn(
            async move { till.trickle(rate, length).await },
        ));
    }
    let mut worst_ratio: f64 = 0.0;
    while sellers.iter().any(|s| !s.is_finished()) {
        tokio::time::sleep(DISK_SAMPLE).await;
        for figures in read_all(cluster).await?.iter().skip(1) {
            worst_ratio = worst_ratio.max(figures.dir_ratio());
        }
    }
    let mut in_window = Vec::new();
    for s in sellers {
        in_window.push(s.await.context("a seller panicked")??);
    }
    converge(cluster).await?;
    let after = read_all(cluster).await?;
    for figures in after.iter().skip(1) {
        worst_ratio = worst_ratio.max(figures.dir_ratio());
    }
    Ok(Level {
        sales: sales_before
            .iter()
            .zip(&in_window)
            .map(|(b, w)| b + w)
            .collect(),
        in_window,
        before,
        after,
        worst_dir_ratio: worst_ratio,
        fill_rate,
    })
}
