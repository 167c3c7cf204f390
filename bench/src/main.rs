//! `bench`: benchmarks of NTT Mart, each printed beside the reference it must beat.
//!
//! `bench writes` measures durable writes on one disk in one run: raw sled
//! insert-plus-flush (the reference), then sales acknowledged by a node over gRPC
//! with one client and with several. It reports; it never fails on a slow figure.

mod disk;
mod measure;
mod node_writes;
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
    }
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
