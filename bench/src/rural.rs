//! `bench rural`: one catch-up over the link an outlet in Alor or Sumba really has.
//! A real hub and two real districts (`mart-node` release processes, mutual TLS with
//! certificates from `martctl pki`: `mart-tests`' own `TestCluster`, as `bench soak`
//! runs it) record the same offline sales; one syncs them over a clean link (the
//! reference), the other through its proxy playing a rural link: a rate limit and a
//! one-way delay each way, dropped at a seeded random moment every `min`-`max` s.
//!
//! It prints the rural catch-up's wall time, bytes each way, drops and the bytes
//! beyond the clean catch-up (resent after drops, plus the reconnects), each beside
//! its ideal (bytes / link rate) and the aim (1.2 x ideal + 10 round trips). It
//! reports; it never fails on a slow figure. A movement lost or doubled at the hub,
//! or a catch-up that never ends, is an error.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use mart_tests::link::{catch_up, exactly_once_at_hub, sell_offline, session_setup};
use mart_tests::ops::receive;
use mart_tests::proxy::RuralLink;
use mart_tests::TestCluster;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::catchup::SKUS;

const HUB: &str = "kupang";
/// The district on the rural link, and the one on a clean link.
const RURAL: &str = "alor";
const CLEAN: &str = "sikka";
/// Stock of each SKU received before the cut: more than any run sells.
const OPENING_STOCK: i64 = 1_000_000;
/// Sales in flight at each district while they are recorded.
const IN_FLIGHT: usize = 16;
const CONVERGE: Duration = Duration::from_secs(180);
/// Round trips the aim allows beyond 1.2 x the ideal.
const AIM_ROUND_TRIPS: u32 = 10;

/// What `bench rural` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub sales: usize,
    pub link: RuralLink,
    /// How long the rural catch-up may take before the run is an error.
    pub timeout: Duration,
    pub dir: Option<PathBuf>,
}

/// Runs the benchmark in a scratch dir under `--dir` (default `/var/tmp`), removed
/// after.
pub fn run(options: Options) -> Result<()> {
    anyhow::ensure!(options.sales > 0, "--sales must be at least 1");
    anyhow::ensure!(
        options.link.rate_bytes_per_s > 0,
        "--rate-kbit must be above 0"
    );
    let (_scratch, runtime) = crate::soak::nodes_in_scratch(options.dir.as_deref())?;
    runtime.block_on(rural(&options))
}

async fn rural(options: &Options) -> Result<()> {
    let link = options.link;
    let rate = link.rate_bytes_per_s as f64;
    let round_trip = link.one_way_delay * 2;
    println!(
        "bench rural: seed {} (--seed {} replays the sales and the drops), {} offline sales; \
         link {:.1} kbit/s each way, {round_trip:?} round trip, dropped every {:?}; {} CPUs, \
         load average {}",
        options.seed,
        options.seed,
        options.sales,
        rate * 8.0 / 1000.0,
        link.drops_every,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        crate::load_average().as_deref().unwrap_or("unknown"),
    );
    let cluster = TestCluster::builder()
        .hub(HUB)
        .district(RURAL)
        .district(CLEAN)
        .start()
        .await
        .context("start the cluster")?;
    for district in [RURAL, CLEAN] {
        let mut mart = cluster.mart(district).await?;
        for (i, sku) in SKUS.iter().enumerate() {
            receive(&mut mart, &format!("rcv-{i}"), sku, OPENING_STOCK).await?;
        }
    }
    cluster.wait_converged(CONVERGE).await?;
    let setup = session_setup(&cluster, CLEAN, CONVERGE).await?;

    let mut rng = StdRng::seed_from_u64(options.seed);
    let sales: Vec<_> = (0..options.sales)
        .map(|i| {
            let sku = SKUS[rng.random_range(0..SKUS.len())];
            (format!("s{i:06}"), sku.to_string(), rng.random_range(1..=3))
        })
        .collect();
    let recorded = sell_offline(&cluster, &[RURAL, CLEAN], &sales, IN_FLIGHT).await?;
    println!(
        "{} sales recorded cut off at each district in {recorded:.1?}",
        options.sales
    );
    let (clean, clean_wall) = catch_up(&cluster, CLEAN, CONVERGE).await?;

    let proxy = cluster.proxy(RURAL);
    proxy.play(link);
    let (rural, wall) = catch_up(&cluster, RURAL, options.timeout)
        .await
        .context("the rural catch-up")?;
    let drops = proxy.drops();
    proxy.play_clean();
    for district in [RURAL, CLEAN] {
        exactly_once_at_hub(&cluster, district, SKUS.len() + options.sales).await?;
    }

    let ideal = |bytes: u64| Duration::from_secs_f64(bytes as f64 / rate);
    let aim = |ideal: Duration| ideal.mul_f64(1.2) + round_trip * AIM_ROUND_TRIPS;
    let excess = |rural: u64, clean: u64| rural as i64 - clean as i64;
    println!("\nclean link: {clean:?} in {clean_wall:.2?}; a session's setup (reconnect, full handshake) {setup:?}");
    println!("rural link: every sale at the hub once; {drops} drops\n");
    println!(
        "{:<26} | {:>10} | {:>12} | {:>12}",
        "", "measured", "ideal", "aim"
    );
    // The link is as fast each way: the busier direction sets the ideal time.
    let busier = rural.up.max(rural.down);
    println!(
        "{:<26} | {:>9.1?} | {:>11.1?} | {:>11.1?}",
        "wall time (heal to heads)",
        wall,
        ideal(busier),
        aim(ideal(busier))
    );
    let clean_ideal = ideal(clean.up.max(clean.down));
    println!(
        "{:<26} | {:>10} | {:>11.1?} | {:>11.1?}",
        "  from the clean bytes",
        "",
        clean_ideal,
        aim(clean_ideal)
    );
    for (what, r, c) in [
        ("bytes up (district->hub)", rural.up, clean.up),
        ("bytes down (hub->district)", rural.down, clean.down),
    ] {
        println!(
            "{:<26} | {:>10} | {:>11.1?} | (clean link: {c} B, excess {} B)",
            what,
            r,
            ideal(r),
            excess(r, c)
        );
    }
    let resent = excess(rural.total(), clean.total());
    let per_drop = if drops > 0 {
        format!("{} B per drop", resent / drops as i64)
    } else {
        "no drop".into()
    };
    println!(
        "{:<26} | {:>10} | {:>11.1?} | at most a bundle + a reconnect per drop ({per_drop}; a reconnect {} B)",
        "excess bytes (both ways)",
        resent,
        ideal(resent.max(0) as u64),
        setup.total()
    );
    println!(
        "\nbytes per sale: rural {:.1}, clean {:.1} (both ways); load average {}",
        rural.total() as f64 / options.sales as f64,
        clean.total() as f64 / options.sales as f64,
        crate::load_average().as_deref().unwrap_or("unknown"),
    );
    Ok(())
}
