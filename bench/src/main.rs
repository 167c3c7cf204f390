//! `bench`: benchmarks of NTT Mart, each printed beside the reference it must beat.
//!
//! `bench writes` measures durable writes on one disk in one run: raw sled
//! insert-plus-flush (the reference), then sales acknowledged by a node over gRPC
//! with one client and with several. `bench catchup` measures a district's catch-up
//! with the hub after a partition. They report; they never fail on a slow figure.

mod catchup;
mod disk;
mod measure;
mod memory;
mod node_writes;
mod regional;
mod report;
mod sled_raw;

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
    }
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
    for (clients, aim) in [(1, AIM_ONE_CLIENT), (args.clients, AIM_CONCURRENT)] {
        let node = Node::start(&scratch.path().join(format!("node-{clients}")))?;
        let run = client_runtime.block_on(node_writes::record_sales(
            &node.endpoint(),
            clients,
            timing,
        ))?;
        node.stop()?;
        let plural = if clients == 1 { "" } else { "s" };
        rows.push(Row {
            what: format!("node RecordSale, {clients} client{plural}"),
            measurement: run.sales,
            writes_per_flush: Some(run.writes_per_flush),
            aim: Some(aim),
        });
    }
    println!();
    report::print(&reference, &rows);
    println!();
    println!("writes/flush: the node's AdminService Status, durable_writes / flushes over the warm-up and the window");
    Ok(())
}

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
