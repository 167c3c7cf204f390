//! `mart-node`: runs an NTT Mart node, or checks a config file.
//!
//! With no arguments it runs district `ttu` on the embedded defaults; `demo` runs a
//! hub and two districts on this machine and tells the story of a connectivity gap.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mart_node::config::{LogFormat, NodeConfig, TlsMode};
use mart_node::server::{self, AdminSocketPath, Listeners};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "mart-node", version, about = "An NTT Mart outlet or hub node")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node (on the embedded defaults without --config)
    Run {
        /// The node's config file (TOML, see config/); relative paths in it are
        /// relative to the working directory
        #[arg(long)]
        config: Option<PathBuf>,
        /// This district lost its disk: start on an empty data dir, take the outlet's
        /// ledger (its open period and balances) back from the hub, and record
        /// movements only once it is back
        #[arg(long, conflicts_with = "restore_from")]
        restore: bool,
        /// Start from a backup (`martctl backup --out DIR`) into an empty data dir:
        /// every document is checked against the backup's manifest, and the node then
        /// writes under a fresh actor
        #[arg(long, value_name = "DIR")]
        restore_from: Option<PathBuf>,
        /// The clock is right, however far ahead it is of the newest time this node
        /// has evidence for (its open ledger period, the hub's clock): let it open a
        /// new ledger period. For this run only
        #[arg(long)]
        accept_clock: bool,
    },
    /// Check a config file, its certificates and its admin socket path; exit 0 if valid
    CheckConfig {
        /// The config file to check
        file: PathBuf,
    },
    /// Run a hub and two districts on loopback with fresh certificates, cut one
    /// district off, heal it, and show what moved; then keep running until Ctrl-C.
    Demo {
        /// Directory for the demo's certificates, configs, data and logs; replaced if
        /// an earlier demo made it
        #[arg(long, default_value = "mart-demo")]
        dir: PathBuf,
        /// Sales TTU records while its link is cut
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        offline_sales: u32,
        /// Play a rural link between TTU and the hub: 64 kbit/s and 300 ms each way,
        /// dropped at a random moment every 20-60 s
        #[arg(long)]
        rural: bool,
    },
}

pub fn main() -> ExitCode {
    // First of all: a panic anywhere after this stops the process (see fail_stop).
    mart_node::fail_stop::install();
    let args = Args::parse();
    let config = match args.command {
        Some(Command::CheckConfig { file }) => {
            let checked = NodeConfig::load(&file)
                .map_err(|e| e.to_string())
                .and_then(|config| match mart_node::server::check(&config) {
                    Ok(socket) => Ok((config, socket)),
                    Err(e) => Err(format!("config {}: {e}", file.display())),
                });
            return match checked {
                Ok((config, socket)) => {
                    let role = if config.identity.is_hub() {
                        "hub"
                    } else {
                        "district"
                    };
                    let tls = match &config.tls {
                        Some(TlsMode::Mutual { .. }) => "mutual tls, certificate checked",
                        Some(TlsMode::Insecure) => "INSECURE plaintext",
                        None => "admin socket only",
                    };
                    let running = match socket {
                        AdminSocketPath::InUse => ", a node is running on its admin socket",
                        AdminSocketPath::Free | AdminSocketPath::Stale => "",
                    };
                    println!(
                        "{}: ok ({role} {}, data in {}, {tls}{running})",
                        file.display(),
                        config.identity.node,
                        config.data_dir.display()
                    );
                    if let Some(note) = relative_paths_note(&config) {
                        println!("{note}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Some(Command::Demo {
            dir,
            offline_sales,
            rural,
        }) => return run_demo(&dir, offline_sales, rural),
        Some(Command::Run {
            config,
            restore,
            restore_from,
            accept_clock,
        }) => {
            let loaded = match config {
                Some(file) => NodeConfig::load(&file),
                None => Ok(NodeConfig::embedded_default()),
            };
            loaded.map(|mut config| {
                config.ledger.restore = restore;
                config.ledger.accept_clock = accept_clock;
                config.restore_from = restore_from;
                config
            })
        }
        None => Ok(NodeConfig::embedded_default()),
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Which of the config's paths are relative, and to what: the node resolves them
/// against its working directory, not the config file's.
fn relative_paths_note(config: &NodeConfig) -> Option<String> {
    let mut relative = vec![
        ("node.data_dir", config.data_dir.as_path()),
        ("admin.socket", config.admin_socket.as_path()),
    ];
    if let Some(TlsMode::Mutual { ca, cert, key }) = &config.tls {
        relative.extend([
            ("tls.ca", ca.as_path()),
            ("tls.cert", cert.as_path()),
            ("tls.key", key.as_path()),
        ]);
    }
    let names: Vec<&str> = relative
        .into_iter()
        .filter(|(_, path)| path.is_relative())
        .map(|(name, _)| name)
        .collect();
    if names.is_empty() {
        return None;
    }
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "the working directory".into());
    Some(format!(
        "note: {} {} relative to the working directory ({cwd}), not to the config file: \
         run the node from there, or make them absolute",
        names.join(", "),
        if names.len() == 1 { "is" } else { "are" }
    ))
}

fn run_demo(dir: &std::path::Path, offline_sales: u32, rural: bool) -> ExitCode {
    let outcome = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(demo::run(dir, offline_sales, rural)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: NodeConfig) -> Result<(), server::ServerError> {
    let shutdown = CancellationToken::new();
    let signal_token = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal_token.cancel();
    });
    let listeners = Listeners::bind(&config).await?;
    server::run(config, listeners, shutdown).await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
