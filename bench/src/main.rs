//! `bench`: benchmarks of NTT Mart, each printed beside the reference it must beat.
//!
//! `bench writes` measures durable writes on one disk in one run: raw sled
//! insert-plus-flush (the reference), then sales acknowledged by a node over gRPC
//! with one client and with several. `bench catchup` measures a district's catch-up
//! with the hub after a partition. `bench history` measures what a year (and two)
//! of sales history costs a district and the hub with monthly ledger periods, beside
//! one ledger document per year. They report; they never fail on a slow figure.
//!
//! `bench rural` measures one catch-up of offline sales over a slow, far link that
//! drops (a real hub and districts behind the test proxy), beside its ideal: see
//! [`rural`].
//!
//! `bench soak` runs a hub and three districts as real processes for 30 minutes
//! while their links stall, drop and come back on a seeded plan and sales go on at
//! every district; it prints each node's memory, file descriptors, threads, disk and
//! CPU as it goes, judges whether they stay flat once warm, and checks that every
//! acknowledged sale reached the hub exactly once (the one failure it reports as an
//! error, with a node that died and a cluster that does not converge): see [`soak`].
//! Run it with `cargo run --release -p mart-bench --bin bench -- soak`.
//!
//! `bench reconnect` counts the bytes one reconnect of a district to a real hub
//! costs on the wire, with TLS 1.3 session resumption and without: see [`reconnect`].
//!
//! `bench steady` grows each district's open period to 100,000 sales in levels and
//! measures, at each, the hub's CPU, memory and disk per sale of a steady stream of
//! small bundles (issue 16): see [`steady`].

mod basket_writes;
mod catchup;
mod disk;
mod fanin;
mod herd;
mod history;
mod isolation;
mod measure;
mod memory;
mod node_writes;
mod reconnect;
mod regional;
mod report;
mod rural;
mod sled_raw;
mod soak;
mod steady;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};

use measure::Timing;
use node_writes::Node;
use report::Row;

/// Warm-up before every measurement.
const WARMUP: Duration = Duration::from_secs(1);

/// Throughput aims, as multiples of raw sled with one writer.
const AIM_ONE_CLIENT: f64 = 0.6;
const AIM_CONCURRENT: f64 = 3.0;

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Benchmarks of NTT Mart beside their references"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Durable writes: raw sled insert+flush, then node sales over gRPC with 1 and N clients.
    Writes(WritesArgs),
    /// Catch-up after a partition: bytes and time beside automerge's encodings.
    Catchup(CatchupArgs),
    /// The hub's regional views: query times and the cost of keeping them current.
    Regional(RegionalArgs),
    /// A year of history: memory and start-up of a district and the hub, and a catch-up
    /// after a 30-day cut, monthly periods beside one document per year.
    History(HistoryArgs),
    /// A hub and three districts for --minutes, links stalling and dropping on a seeded
    /// plan, sales throughout: resources of every node over time, every sale at the hub once.
    Soak(SoakArgs),
    /// Bytes on the wire per reconnect of a district to a real hub, with TLS session
    /// resumption and without.
    Reconnect(ReconnectArgs),
    /// A hub and three districts, each open period grown to 5,000 sales and then every
    /// --step up to --sales; at each level a steady trickle of sales: the hub's CPU,
    /// memory and disk per sale as the month fills up (issue 16).
    Steady(SteadyArgs),
    /// A catch-up of offline sales over a slow, far, dropping link (64 kbit/s, 600 ms
    /// round trip, dropped every 20-60 s), beside the same catch-up over a clean link.
    Rural(RuralArgs),
    /// The herd: a hub down for a long time comes back while every district holds
    /// offline sales: time until all are back and caught up, hub peak RSS, beside raw apply.
    Herd(HerdArgs),
    /// Fan-in: the real hub and N simulated districts (own certificates and TLS sessions)
    /// in this process, one sale a second each: latency to the hub, hub RSS and CPU.
    Fanin(FaninArgs),
    /// Isolation: another district's sync round trip and the hub's status while the hub
    /// applies one district's 1 MiB catch-up bundles (issue 14).
    Isolation(IsolationArgs),
    /// Opens one store in this fresh process and prints its RSS and open time as JSON
    /// (run by `bench history` for each configuration).
    #[command(hide = true)]
    HistoryMeasure(HistoryMeasureArgs),
}

#[derive(clap::Args)]
struct HistoryArgs {
    /// Sales in one year of history (the cut is a month of them: sales x 30 / 365).
    #[arg(long, default_value_t = 365_000)]
    sales: usize,
    /// Products in the provincial catalog; every sale picks one.
    #[arg(long, default_value_t = 5_000)]
    skus: usize,
    /// Districts at the hub (`ttu` through the engine; the others get copies of its
    /// archived periods and a newest period built in automerge).
    #[arg(long, default_value_t = 22)]
    districts: usize,
    /// Years of history for the monthly layout (2 shows whether memory and start-up
    /// grow with past years; it adds a year of sales through the engine, ~2.5 min).
    #[arg(long, default_value_t = 1)]
    years: u32,
    /// Districts at the baseline hub (measured; the figure for --districts is
    /// extrapolated from them: each holds a year in memory there).
    #[arg(long, default_value_t = 2)]
    baseline_hub_districts: usize,
    /// Concurrent writers while generating the history (they share flushes).
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Seconds a measured start-up may take before it is stopped (and reported as such,
    /// with an estimate from `--explain`'s figures).
    #[arg(long, default_value_t = 60)]
    open_timeout: u64,
    /// Explain every measured start-up (where its time goes), not only those above
    /// 0.5 s or stopped at the timeout.
    #[arg(long)]
    explain: bool,
    /// Directory for the scratch stores [default: /var/tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Resource verdicts (growth over the warm window, least-squares, against an allowance):
/// threads +2; fds +4; RSS +16 MiB + 2 KiB per sale taken; disk +16 MiB + 1 KiB per
/// sale; CPU per sale in the window's second half at most 1.5x the first's + 0.5 ms.
#[derive(clap::Args)]
struct SoakArgs {
    /// Length of the soak (after start-up), minutes.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Seed of the link plan and the sales [default: random, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Sales a second at each district (one call at a time over its admin socket).
    #[arg(long, default_value_t = 5.0)]
    sales_per_second: f64,
    /// Seconds between samples of every node.
    #[arg(long, default_value_t = 30)]
    sample_secs: u64,
    /// Directory for the nodes' dirs (data, config, certificates, logs) [default: /var/tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ReconnectArgs {
    /// Reconnects measured each way (with and without resumption).
    #[arg(long, default_value_t = 20)]
    reconnects: usize,
}

#[derive(clap::Args)]
struct SteadyArgs {
    /// Sales in each district's open period at the last level.
    #[arg(long, default_value_t = 100_000)]
    sales: u64,
    /// Sales per district between levels (after the first, 5,000).
    #[arg(long, default_value_t = 10_000)]
    step: u64,
    /// Sales a second at each district in a steady window (one call at a time).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Length of each steady window, seconds.
    #[arg(long, default_value_t = 20)]
    window_secs: u64,
    /// Calls in flight at each district while its open period is filled (link cut).
    #[arg(long, default_value_t = 8)]
    fill_clients: usize,
    /// Directory for the nodes' dirs (data, config, certificates, logs) [default: /var/tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RuralArgs {
    /// Seed of the sales and of the drop schedule [default: random, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Sales recorded while cut off.
    #[arg(long, default_value_t = 30_000)]
    sales: usize,
    /// Link rate each way, kbit/s.
    #[arg(long, default_value_t = 64.0)]
    rate_kbit: f64,
    /// One-way delay each way, ms (the round trip is twice this).
    #[arg(long, default_value_t = 300)]
    one_way_delay_ms: u64,
    /// Shortest and longest wait between drops, s, as MIN,MAX; 0,0 never drops.
    #[arg(long, value_delimiter = ',', default_values_t = [20, 60])]
    drops_every_secs: Vec<u64>,
    /// Minutes the rural catch-up may take before the run is an error.
    #[arg(long, default_value_t = 30)]
    timeout_minutes: u64,
    /// Directory for the nodes' dirs (data, config, certificates, logs) [default: /var/tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct HerdArgs {
    /// District processes (at most 22, the province's).
    #[arg(long, default_value_t = 22)]
    districts: usize,
    /// Sales each district records while the hub is down.
    #[arg(long, default_value_t = 10_000)]
    sales: usize,
    /// Seconds the hub stays down (at least the recording; 40 s puts a 30 s-capped
    /// exponential backoff at its cap).
    #[arg(long, default_value_t = 60)]
    outage_secs: u64,
    /// Directory for the nodes' dirs [default: /var/tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct IsolationArgs {
    /// Sales the big district records offline and sends as ~1 MiB bundles.
    #[arg(long, default_value_t = 60_000)]
    sales: usize,
    /// Directory for the hub's dir and the certificates [default: /var/tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct FaninArgs {
    /// Simulated districts, each with its own certificate and TLS session.
    #[arg(long, default_value_t = 1_000)]
    districts: usize,
    /// Seconds of one sale a second at every district, after a 10 s warm-up.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Directory for the hub's dir and the certificates [default: /var/tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct HistoryMeasureArgs {
    #[arg(long)]
    dir: PathBuf,
    #[arg(long)]
    node: String,
    #[arg(long)]
    period_months: u32,
    /// The node clock at start-up (ms since the epoch).
    #[arg(long)]
    now_ms: i64,
    /// Do not start an engine: time each step of loading what it would load.
    #[arg(long)]
    explain: bool,
}

#[derive(clap::Args)]
struct RegionalArgs {
    #[arg(long, default_value_t = 22)]
    districts: usize,
    #[arg(long, default_value_t = 2_000)]
    skus: usize,
    /// Incoming one-sale changes applied at the hub to measure view upkeep.
    #[arg(long, default_value_t = 10_000)]
    changes: usize,
    /// Directory for the scratch store [default: /var/tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CatchupArgs {
    /// Sales recorded while cut off, one measurement each.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000, 100_000])]
    sales: Vec<usize>,
    /// Directory for the scratch stores [default: /var/tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct WritesArgs {
    /// Seconds each measurement runs, after a 1 s warm-up.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Directory to create the scratch databases in [default: /var/tmp]. Use a real
    /// disk: every figure is measured there.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Concurrent clients of the last measurement.
    #[arg(long, default_value_t = 8)]
    clients: usize,
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Writes(args) => writes(args),
        Command::Catchup(args) => catchup_report(args),
        Command::Regional(args) => regional_report(args),
        Command::History(args) => history_report(args),
        Command::Soak(args) => soak::run(soak::Options {
            minutes: args.minutes,
            seed: args.seed.unwrap_or_else(rand::random),
            sales_per_second: args.sales_per_second,
            sample_secs: args.sample_secs,
            dir: args.dir,
        }),
        Command::Reconnect(args) => reconnect::run(reconnect::Options {
            reconnects: args.reconnects,
        }),
        Command::Steady(args) => steady::run(steady::Options {
            sales: args.sales,
            step: args.step,
            rate: args.rate,
            window: Duration::from_secs(args.window_secs),
            fill_clients: args.fill_clients,
            dir: args.dir,
        }),
        Command::Rural(args) => rural_run(args),
        Command::Herd(args) => herd_report(args),
        Command::Fanin(args) => fanin_report(args),
        Command::Isolation(args) => isolation_report(args),
        Command::HistoryMeasure(args) if args.explain => history::explain(&args.dir),
        Command::HistoryMeasure(args) => history::measure_engine(
            &args.dir,
            &args.node,
            history::Layout::from_months(args.period_months)?,
            args.now_ms,
        ),
    }
}

fn rural_run(args: RuralArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate_kbit > 0.0, "--rate-kbit must be above 0");
    let drops_every = match args.drops_every_secs[..] {
        [0, 0] => None,
        [min, max] if min <= max && min > 0 => {
            Some((Duration::from_secs(min), Duration::from_secs(max)))
        }
        _ => anyhow::bail!("--drops-every-secs takes MIN,MAX with 0 < MIN <= MAX, or 0,0"),
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    rural::run(rural::Options {
        seed,
        sales: args.sales,
        link: mart_tests::proxy::RuralLink {
            rate_bytes_per_s: (args.rate_kbit * 1000.0 / 8.0) as u64,
            one_way_delay: Duration::from_millis(args.one_way_delay_ms),
            drops_every,
            seed,
        },
        timeout: Duration::from_secs(args.timeout_minutes * 60),
        dir: args.dir,
    })
}

fn history_report(args: HistoryArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.sales >= 3_650, "--sales must be at least 3,650");
    anyhow::ensure!(
        args.skus > 0 && args.writers > 0,
        "--skus and --writers must be at least 1"
    );
    anyhow::ensure!(
        (1..=mart_node::domain::districts::ALL.len()).contains(&args.districts),
        "--districts must be 1 to 22"
    );
    anyhow::ensure!(
        args.baseline_hub_districts >= 1,
        "--baseline-hub-districts must be at least 1"
    );
    let options = history::Options {
        sales: args.sales,
        skus: args.skus,
        districts: args.districts,
        years: args.years,
        baseline_hub_districts: args.baseline_hub_districts,
        writers: args.writers,
        open_timeout: std::time::Duration::from_secs(args.open_timeout),
        explain: args.explain,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
    println!(
        "bench history: {} sales a year over {} SKUs, a {}-sale cut, hub with {} districts; {} CPUs, load average {}",
        options.sales,
        options.skus,
        options.cut_sales(),
        options.districts,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average().as_deref().unwrap_or("unknown"),
    );
    println!("every RSS and start-up figure: a fresh child process opens the closed store (warm page cache)\n");
    let mut runs = Vec::new();
    for layout in [history::Layout::Monthly, history::Layout::Yearly] {
        let scratch = disk::scratch_dir(args.dir.as_deref())?;
        runs.push(runtime.block_on(history::run(scratch.path(), layout, &options))?);
        let run = runs.last().expect("just pushed");
        println!(
            "  {}: data generated through the engine in {:.1?}{}\n",
            layout.name(),
            run.generation,
            run.synthetic.map_or(String::new(), |s| format!(
                ", other districts built and applied in {:.1?}",
                s.wall
            ))
        );
    }
    println!(
        "load average {}; whole run {:.0?}\n",
        load_average().as_deref().unwrap_or("unknown"),
        started.elapsed()
    );
    history::print_report(&options, &runs[0], &runs[1]);
    Ok(())
}

fn herd_report(args: HerdArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=mart_node::domain::districts::ALL.len()).contains(&args.districts),
        "--districts must be 1 to 22"
    );
    let (_scratch, runtime) = soak::nodes_in_scratch(args.dir.as_deref())?;
    let options = herd::Options {
        districts: args.districts,
        sales: args.sales,
        outage: Duration::from_secs(args.outage_secs),
    };
    println!(
        "bench herd: a release hub and {} district processes (mutual TLS, each dialing the hub directly), \
         {} sales each while the hub is down {} s; {} CPUs, load average {}",
        options.districts,
        options.sales,
        args.outage_secs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average().as_deref().unwrap_or("unknown"),
    );
    let run = runtime.block_on(herd::run(&options))?;
    herd::print(&options, &run);
    println!(
        "load average at the end {}",
        load_average().as_deref().unwrap_or("unknown")
    );
    Ok(())
}

fn fanin_report(args: FaninArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.districts > 0, "--districts must be at least 1");
    let (_scratch, runtime) = soak::nodes_in_scratch(args.dir.as_deref())?;
    let options = fanin::Options {
        districts: args.districts,
        seconds: args.seconds,
    };
    println!(
        "bench fanin: the release hub (mutual TLS) and {} simulated districts in this process (engines in memory, \
         the node's dialer and session, one certificate each), one sale a second each for {} s; {} CPUs, load average {}",
        options.districts,
        options.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average().as_deref().unwrap_or("unknown"),
    );
    let run = runtime.block_on(fanin::run(&options))?;
    fanin::print(&options, &run);
    println!(
        "load average at the end {}",
        load_average().as_deref().unwrap_or("unknown")
    );
    Ok(())
}

fn isolation_report(args: IsolationArgs) -> anyhow::Result<()> {
    let (_scratch, runtime) = soak::nodes_in_scratch(args.dir.as_deref())?;
    let options = isolation::Options { sales: args.sales };
    println!(
        "bench isolation: the release hub (mutual TLS) and two districts in this process; one sends {} offline sales \
         as ~1 MiB bundles while the other syncs one sale at a time and a client polls the hub's status; {} CPUs, load average {}",
        options.sales,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average().as_deref().unwrap_or("unknown"),
    );
    let run = runtime.block_on(isolation::run(&options))?;
    isolation::print(run);
    println!(
        "load average at the end {}",
        load_average().as_deref().unwrap_or("unknown")
    );
    Ok(())
}

fn catchup_report(args: CatchupArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!("bench catchup: a district records N sales cut off, then syncs with the hub");
    println!("bytes = protobuf bytes of every sync message both ways; wall = reconnect until the hub holds all N");
    println!("references: save_after = automerge's encoding of the same changes one after another (raw);");
    println!("            one by one = each change in its own sync message; raw apply = Automerge::apply_changes at the hub\n");
    println!(
        "{:>7} | {:>9} | {:>8} | {:>10} | {:>9} | {:>10} | {:>9} | {:>10} | {:>10} | {:>9} | {:>11} | {:>17}",
        "sales", "wire B", "B/sale", "save_after", "wire/s_a", "1-by-1 B/s", "wall", "hub apply", "raw apply", "hub/raw", "write 1st/last", "RSS before/peak"
    );
    for sales in args.sales {
        let scratch = disk::scratch_dir(args.dir.as_deref())?;
        let r = runtime.block_on(catchup::run(scratch.path(), sales))?;
        let per_sale = |b: u64| b as f64 / r.sales as f64;
        println!(
            "{:>7} | {:>9} | {:>8.1} | {:>10.1} | {:>9.2} | {:>10.1} | {:>9.2?} | {:>10.2?} | {:>10.2?} | {:>9.2} | {:>5.0?}/{:.0?} | {:>7}/{} MiB",
            r.sales,
            r.wire_bytes,
            per_sale(r.wire_bytes),
            per_sale(r.save_after_bytes),
            r.wire_bytes as f64 / r.save_after_bytes as f64,
            per_sale(r.one_by_one_bytes),
            r.wall,
            r.hub_apply,
            r.raw_apply,
            r.raw_apply.as_secs_f64() / r.hub_apply.as_secs_f64(),
            r.first_write,
            r.last_write,
            mib(r.rss_before),
            mib(r.peak_during),
        );
        println!(
            "        (the district cuts the missing changes into bundles in {:.2?}: most of wall minus hub apply)",
            r.bundling
        );
        let _ = r.messages;
    }
    println!("\naims: wire <= 1.25 x save_after; hub ingest >= 0.7 x raw apply (hub/raw >= 0.7); brief: <= 16.2 B/sale, 100k in < 2 s");
    println!("RSS: the whole bench process (district and hub engines both) before the reconnect and its peak during the catch-up; brief: hub peak < 256 MB");
    Ok(())
}

fn regional_report(args: RegionalArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let scratch = disk::scratch_dir(args.dir.as_deref())?;
    let r = runtime.block_on(regional::run(
        scratch.path(),
        args.districts,
        args.skus,
        args.changes,
    ))?;
    println!(
        "bench regional: hub with {} districts x {} SKUs (real engine on sled)",
        r.districts, r.skus
    );
    println!(
        "one-SKU regional query     {:>10.1?}   aim < 1 ms",
        r.one_sku
    );
    println!(
        "full regional report       {:>10.1?}   aim < 100 ms ({} district lines)",
        r.full_report, r.full_lines
    );
    println!("district summaries         {:>10.1?}", r.summaries);
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / r.changes as f64;
    println!(
        "incoming changes ({})   hub apply {:.1} us/change, raw automerge apply {:.1} us/change: views, checks and staging add {:.1} us/change",
        r.changes,
        per(r.hub_apply),
        per(r.raw_apply),
        per(r.hub_apply) - per(r.raw_apply)
    );
    Ok(())
}

/// Bytes as whole MiB, `?` where the kernel did not say.
fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| {
        format!("{:.0}", b as f64 / (1u64 << 20) as f64)
    })
}

fn writes(args: WritesArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.seconds > 0, "--seconds must be at least 1");
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    let timing = Timing {
        warmup: WARMUP,
        length: Duration::from_secs(args.seconds),
    };
    let scratch = disk::scratch_dir(args.dir.as_deref())?;
    print_setup(scratch.path(), timing);

    // First: a node started in this process would slow every later raw sled write
    // (see `sled_raw`).
    let reference = Row {
        what: "raw sled insert+flush, 1 writer".into(),
        measurement: sled_raw::insert_and_flush(&scratch.path().join("raw-sled"), timing)?,
        writes_per_flush: Some(1.0),
        aim: None,
    };
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    let mut bytes = Vec::new();
    for (clients, aim) in [(1, AIM_ONE_CLIENT), (args.clients, AIM_CONCURRENT)] {
        let node = Node::start(&scratch.path().join(format!("node-{clients}")))?;
        let run = client_runtime.block_on(node_writes::record_sales(
            &node.endpoint(),
            clients,
            timing,
        ))?;
        node.stop()?;
        let plural = if clients == 1 { "" } else { "s" };
        bytes.push((
            format!("RecordSale, {clients} client{plural}"),
            run.bytes_per_sale,
        ));
        rows.push(Row {
            what: format!("node RecordSale, {clients} client{plural}"),
            measurement: run.sales,
            writes_per_flush: Some(run.writes_per_flush),
            aim: Some(aim),
        });
    }
    let unary = rows[0].measurement.ops_per_second();
    let raw = reference.measurement.ops_per_second().max(1.0);
    let node = Node::start(&scratch.path().join("node-stream"))?;
    let stream = client_runtime.block_on(basket_writes::record_stream(&node.endpoint(), timing))?;
    node.stop()?;
    bytes.push(("RecordSales stream, 1 client".into(), stream.bytes_per_line));
    rows.push(Row {
        what: "node RecordSales stream, 1 client".into(),
        measurement: stream.measurement,
        writes_per_flush: None,
        aim: Some(AIM_STREAM_VS_UNARY * unary / raw),
    });
    let node = Node::start(&scratch.path().join("node-baskets"))?;
    let baskets = client_runtime.block_on(basket_writes::record_baskets(
        &node.endpoint(),
        BASKET_LINES,
        timing,
    ))?;
    node.stop()?;
    let basket_lines_per_second = baskets.measurement.ops_per_second() * BASKET_LINES as f64;
    bytes.push((
        format!("baskets of {BASKET_LINES}, 1 client (per line)"),
        baskets.bytes_per_line,
    ));
    rows.push(Row {
        what: format!("node baskets of {BASKET_LINES} lines, 1 client"),
        measurement: baskets.measurement,
        writes_per_flush: None,
        aim: None,
    });
    println!();
    report::print(&reference, &rows);
    println!();
    let verdict = |ok: bool| if ok { "PASS " } else { "BELOW" };
    let stream_ratio = rows[2].measurement.ops_per_second() / unary.max(1.0);
    println!(
        "{} stream vs unary, 1 client: {stream_ratio:.2}x (aim >= {AIM_STREAM_VS_UNARY:.1}x)",
        verdict(stream_ratio >= AIM_STREAM_VS_UNARY)
    );
    let basket_ratio = basket_lines_per_second / unary.max(1.0);
    println!(
        "{} baskets of {BASKET_LINES}: {basket_lines_per_second:.0} lines/s, {basket_ratio:.2}x single-line sales/s (aim >= {AIM_BASKET_LINES:.1}x)",
        verdict(basket_ratio >= AIM_BASKET_LINES)
    );
    for (what, (wchar, block)) in &bytes {
        println!(
            "{} bytes written per durable sale, {what}: {:.0} B through write(), {:.0} B to the block layer (aim <= {} B with one client)",
            verdict(*wchar <= AIM_BYTES_PER_SALE),
            wchar,
            block,
            AIM_BYTES_PER_SALE
        );
    }
    println!();
    println!("writes/flush: the node's AdminService Status, durable_writes / flushes over the warm-up and the window");
    println!("bytes: /proc/self/io of this process (the node runs in it; clients write nothing), over the warm-up and the window, per sale line");
    Ok(())
}

/// The stream, one client, against unary `RecordSale`, one client.
const AIM_STREAM_VS_UNARY: f64 = 5.0;
/// Lines per second in baskets of [`BASKET_LINES`] against single-line sales.
const AIM_BASKET_LINES: f64 = 4.0;
const BASKET_LINES: usize = 5;
/// Bytes written per durable sale with one client.
const AIM_BYTES_PER_SALE: f64 = 8.0 * 1024.0;

/// The 1, 5 and 15 minute load averages: other work on the machine skews every row.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn print_setup(dir: &Path, timing: Timing) {
    println!(
        "bench writes: {} s per measurement after {} s warm-up, {} CPUs, load average {}",
        timing.length.as_secs(),
        timing.warmup.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average().as_deref().unwrap_or("unknown"),
    );
    match disk::filesystem_of(dir) {
        Some(fs) => {
            println!(
                "disk: {} on {} ({}, mounted at {})",
                dir.display(),
                fs.source,
                fs.kind,
                fs.mount_point.display()
            );
            if fs.is_memory() {
                println!("warning: {} is in memory: fsync costs nothing there, pass --dir on a real disk", fs.kind);
            }
        }
        None => println!("disk: {} (filesystem unknown)", dir.display()),
    }
    println!(
        "node: in-process, its own tokio runtime ({} worker threads), a fresh data dir per row; \
         clients: another runtime (2 worker threads), one HTTP/2 connection each, TCP 127.0.0.1, no TLS",
        node_writes::NODE_WORKER_THREADS
    );
}
