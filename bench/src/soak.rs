//! `bench soak`: a hub and three districts as real `mart-node` processes (release
//! build, mutual TLS with certificates from `martctl pki`, sled data dirs), each
//! district dialing the hub through its own proxy, for `--minutes` (30 by default)
//! while each district's link stalls, drops and comes back on a seeded plan
//! ([`schedule`]) and a cashier at each district records sales the whole time
//! ([`seller`]). The cluster is `mart-tests`' own harness (`TestCluster`), so the
//! soak runs exactly what the tests run.
//!
//! Every `--sample-secs` it prints, per node, resident memory, open file
//! descriptors, threads, data-dir bytes and CPU seconds ([`probe`]); at the end, per
//! node and metric, the first sample after the warm-up (the first 20% of the run)
//! beside the last, the growth per minute and a verdict against an allowance
//! ([`trend`] explains them). Then it heals every link, waits until every district
//! is in step with the hub, and checks at the hub that every movement a district
//! acknowledged is there exactly once ([`exactly_once`]).
//!
//! It reports; it never fails on a slow or growing figure. A lost, doubled or
//! unexplained movement, a node that died, or a cluster that does not converge is an
//! error (exit status 1). The seed is printed first: `--seed` replays the same link
//! plan and the same sales (the machine's speed still decides how many).

mod exactly_once;
pub(crate) mod probe;
mod report;
mod schedule;
pub(crate) mod seller;
mod trend;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mart_tests::TestCluster;
use rand::rngs::StdRng;
use rand::SeedableRng;

use report::{clock, LinkFigures};
use schedule::{LinkAction, LinkEvent};
use seller::{Cashier, Till};
use trend::Point;

const HUB: &str = "kupang";
const DISTRICTS: [&str; 3] = ["alor", "sikka", "ttu"];
/// `sync.resync_secs` of the districts: how often a connected district re-announces.
const RESYNC_SECS: u64 = 10;
/// Units of each SKU a district receives before the soak (receipts top it up later).
const OPENING_STOCK: i64 = 2_000;
/// The share of the run before the samples are judged (start-up, first syncs,
/// caches filling).
const WARM_FRACTION: f64 = 0.2;
/// How long the healed cluster may take to get every district in step with the hub.
const CONVERGE: Duration = Duration::from_secs(180);
/// Deadline of the SyncNow each district is asked for once its link is healed.
const SYNC_NOW_SECS: u32 = 30;

/// What `bench soak` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub minutes: f64,
    pub seed: u64,
    pub sales_per_second: f64,
    pub sample_secs: u64,
    pub dir: Option<PathBuf>,
}

/// Runs the soak in a scratch dir under `--dir` (default `/var/tmp`), removed after.
pub fn run(options: Options) -> Result<()> {
    anyhow::ensure!(options.minutes > 0.0, "--minutes must be above 0");
    anyhow::ensure!(
        options.sales_per_second > 0.0 && options.sales_per_second <= 200.0,
        "--sales-per-second must be above 0 and at most 200"
    );
    anyhow::ensure!(options.sample_secs > 0, "--sample-secs must be at least 1");
    let scratch = crate::disk::scratch_dir(options.dir.as_deref())?;
    place_nodes_in(scratch.path())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(soak(&options, scratch.path()))
}

/// The harness makes every node's dir (and the CA's) in the temp dir: point it at
/// the scratch dir, keeping the harness's shared port reservations where the other
/// test processes on this machine look for them.
pub(crate) fn place_nodes_in(scratch: &Path) -> Result<()> {
    let ports = std::env::temp_dir().join("mart-test-ports");
    std::fs::create_dir_all(&ports).with_context(|| format!("create {}", ports.display()))?;
    std::os::unix::fs::symlink(&ports, scratch.join("mart-test-ports"))
        .context("link the shared port reservations into the scratch dir")?;
    // Still one thread: nothing reads the environment concurrently.
    std::env::set_var("TMPDIR", scratch);
    Ok(())
}

/// A scratch dir (removed when dropped) that the test harness puts every node's dir
/// in, and a runtime with 2 worker threads for the run.
pub(crate) fn nodes_in_scratch(
    dir: Option<&Path>,
) -> anyhow::Result<(tempfile::TempDir, tokio::runtime::Runtime)> {
    let scratch = crate::disk::scratch_dir(dir)?;
    place_nodes_in(scratch.path())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok((scratch, runtime))
}

/// A running soak: the cluster, the link plan and the samples so far.
struct Soak {
    cluster: TestCluster,
    districts: Vec<String>,
    plan: Vec<LinkEvent>,
    applied: usize,
    start: Instant,
    sold: BTreeMap<String, Arc<AtomicU64>>,
    samples: BTreeMap<String, Vec<Point>>,
}

async fn soak(options: &Options, scratch: &Path) -> Result<()> {
    let length = Duration::from_secs_f64(options.minutes * 60.0);
    println!(
        "bench soak: seed {} (--seed {} replays it), {:.1} min, hub {HUB} and districts {DISTRICTS:?}, \
         {} sales/s per district, a sample every {} s; {} CPUs, load average {}",
        options.seed,
        options.seed,
        options.minutes,
        options.sales_per_second,
        options.sample_secs,
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
    let districts = cluster.district_ids();
    let mut cashiers = Vec::new();
    let mut sold = BTreeMap::new();
    for (index, district) in districts.iter().enumerate() {
        let counter = Arc::new(AtomicU64::new(0));
        let rng = StdRng::seed_from_u64(options.seed.wrapping_add(index as u64 + 1));
        let mut cashier = Cashier::new(
            district,
            cluster.mart(district).await?,
            rng,
            counter.clone(),
        );
        cashier.open_stock(OPENING_STOCK).await?;
        cashiers.push(cashier);
        sold.insert(district.clone(), counter);
    }
    cluster
        .wait_converged(CONVERGE)
        .await
        .context("the cluster converges before the soak starts")?;
    println!(
        "cluster up, opening stock received and synced in {:.1?}; pids: {}",
        started.elapsed(),
        std::iter::once(HUB.to_string())
            .chain(districts.iter().cloned())
            .map(|id| format!("{id} {}", cluster.node(&id).pid().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let plan = schedule::plan(options.seed, &districts, length);
    print_plan(&plan, &districts);
    let mut soak = Soak {
        cluster,
        districts,
        plan,
        applied: 0,
        start: Instant::now(),
        sold,
        samples: BTreeMap::new(),
    };
    let end = soak.start + length;
    let sellers: Vec<_> = cashiers
        .into_iter()
        .map(|c| tokio::spawn(c.sell_until(options.sales_per_second, end)))
        .collect();
    println!("\n{}", report::sample_header());
    soak.run_until(end, Duration::from_secs(options.sample_secs))
        .await?;

    println!(
        "\n{} soak over: every link healed, cashiers finishing what is unanswered",
        clock(soak.start.elapsed())
    );
    for district in &soak.districts {
        soak.cluster.heal(district);
    }
    let mut tills = Vec::new();
    for seller in sellers {
        tills.push(seller.await.context("a cashier panicked")?);
    }
    soak.finish(tills, length).await
}

impl Soak {
    /// Applies the link plan and samples every node until `end`.
    async fn run_until(&mut self, end: Instant, every: Duration) -> Result<()> {
        let mut next_sample = self.start;
        loop {
            let next_event = self.plan.get(self.applied).map(|e| self.start + e.at);
            let wake = next_event.unwrap_or(end).min(next_sample).min(end);
            tokio::time::sleep_until(wake.into()).await;
            let now = Instant::now();
            while let Some(event) = self.plan.get(self.applied) {
                if self.start + event.at > now {
                    break;
                }
                self.apply(event.clone());
                self.applied += 1;
            }
            if now >= next_sample {
                self.sample(&clock(now - self.start))?;
                next_sample += every;
            }
            if now >= end {
                return Ok(());
            }
        }
    }

    fn apply(&self, event: LinkEvent) {
        let proxy = self.cluster.proxy(&event.district);
        match event.action {
            LinkAction::Stall => proxy.stall(),
            LinkAction::Cut => proxy.cut(),
            LinkAction::Heal => proxy.heal(),
        }
        println!(
            "{:>6}  link {} {}",
            clock(self.start.elapsed()),
            event.district,
            event.action
        );
    }

    fn link_state(&self, district: &str) -> &'static str {
        schedule::state_after(
            self.plan[..self.applied]
                .iter()
                .filter(|e| e.district == district),
        )
    }

    fn sales_of(&self, node: &str) -> u64 {
        match self.sold.get(node) {
            Some(counter) => counter.load(Ordering::Relaxed),
            None => self.sold.values().map(|c| c.load(Ordering::Relaxed)).sum(),
        }
    }

    /// Reads and prints every node; a node that is gone ends the soak with its stderr.
    fn sample(&mut self, label: &str) -> Result<()> {
        let at = self.start.elapsed().as_secs_f64();
        let nodes: Vec<String> = std::iter::once(HUB.to_string())
            .chain(self.districts.iter().cloned())
            .collect();
        for id in nodes {
            let node = self.cluster.node(&id);
            let reading = node
                .pid()
                .context("not running")
                .and_then(|pid| probe::read(pid, &node.data_dir()));
            let reading = match reading {
                Ok(reading) => reading,
                Err(e) => {
                    let stderr = node.stderr();
                    let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    bail!(
                        "node {id} died during the soak ({e:#}); its stderr ends:\n{}",
                        tail.join("\n")
                    );
                }
            };
            let sales = self.sales_of(&id);
            let link = (id != HUB).then(|| {
                let proxy = self.cluster.proxy(&id);
                LinkFigures {
                    state: self.link_state(&id),
                    bytes: proxy.total_bytes(),
                    connections: proxy.connections(),
                }
            });
            println!("{}", report::sample_line(label, &id, &reading, sales, link));
            self.samples
                .entry(id)
                .or_default()
                .push(Point { at, reading, sales });
        }
        Ok(())
    }

    /// Converges, samples once more, prints the trends and the exactly-once tallies;
    /// an error if a movement was lost, doubled or unexplained or the cluster did not
    /// converge.
    async fn finish(mut self, tills: Vec<Till>, length: Duration) -> Result<()> {
        let healed = Instant::now();
        for district in &self.districts {
            if let Err(e) = self.cluster.sync_now(district, SYNC_NOW_SECS).await {
                println!("  SyncNow at {district}: {e:#}");
            }
        }
        let converged = self.cluster.wait_converged(CONVERGE).await;
        match &converged {
            Ok(()) => println!(
                "every district in step with the hub {:.1?} after the heal",
                healed.elapsed()
            ),
            Err(e) => println!("NOT CONVERGED: {e:#}"),
        }
        // The trends are judged on the soak's samples; this one shows the rest.
        let warm_from = length.as_secs_f64() * WARM_FRACTION;
        let judged = self.samples.clone();
        self.sample("end")?;

        println!("\nresources once warm (samples from {} on; see `bench soak --help` for the allowances):", clock(Duration::from_secs_f64(warm_from)));
        for (node, points) in &judged {
            let warm: Vec<Point> = points
                .iter()
                .copied()
                .filter(|p| p.at >= warm_from)
                .collect();
            report::print_trends(node, &warm);
        }
        let (hub_admin, hub_mart) = (
            self.cluster.admin(HUB).await?,
            self.cluster.mart(HUB).await?,
        );
        println!("\nexactly once (every acknowledged movement, by id, in every ledger period the node lists):");
        let mut wrong = Vec::new();
        for (district, till) in self.districts.iter().zip(&tills) {
            let at_hub = exactly_once::movement_ids(
                &mut hub_mart.clone(),
                &mut hub_admin.clone(),
                district,
                district,
            )
            .await?;
            let own = exactly_once::movement_ids(
                &mut self.cluster.mart(district).await?,
                &mut self.cluster.admin(district).await?,
                "",
                district,
            )
            .await?;
            let (at_hub, own) = (
                exactly_once::tally(&at_hub, till),
                exactly_once::tally(&own, till),
            );
            report::print_tally(district, till, &at_hub, &own);
            if !at_hub.exact() || !own.exact() {
                wrong.push(district.clone());
            }
        }
        if let Err(e) = converged {
            return Err(e.context("the cluster did not converge after the soak"));
        }
        if !wrong.is_empty() {
            bail!("movements lost, doubled or unexplained at {wrong:?}");
        }
        println!("\nevery acknowledged movement is at the hub exactly once");
        Ok(())
    }
}

/// How many stalls and cuts each district's plan holds, and for how long in total.
fn print_plan(plan: &[LinkEvent], districts: &[String]) {
    println!("link plan:");
    for district in districts {
        let own: Vec<&LinkEvent> = plan.iter().filter(|e| &e.district == district).collect();
        let mut totals: BTreeMap<String, (u32, Duration)> = BTreeMap::new();
        for pair in own.chunks(2) {
            if let [trouble, heal] = pair {
                let entry = totals.entry(trouble.action.to_string()).or_default();
                entry.0 += 1;
                entry.1 += heal.at - trouble.at;
            }
        }
        let line: Vec<String> = totals
            .iter()
            .map(|(what, (n, time))| format!("{n} {what}s ({} in all)", clock(*time)))
            .collect();
        println!("  {district}: {}", line.join(", "));
    }
}
