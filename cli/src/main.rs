//! `martctl`, the operator CLI of NTT Mart sync: parses the command line, connects to
//! one node and hands the command to its module. `pki` (the certificate authority)
//! works on local files only and connects to nothing.
//!
//! It must never depend on node internals (only on the gRPC API in `mart-proto`), and
//! never exit 0 when the node refused or did not confirm an operation.
//!
//! Exit codes (listed in `--help`, see [`exit`]): 0 done, 1 refused (by the node, by
//! `pki` to protect existing files, or `sync now` ended out of sync), 2 bad usage,
//! 3 permission, 4 unavailable, 5 outcome unknown.

mod admin;
mod args;
mod backup;
mod catalog;
mod certs;
mod clock;
mod connect;
mod csv;
mod doc;
mod escrow;
mod exit;
mod expiry;
mod export;
mod generate;
mod movements;
mod output;
mod pki;
mod progress;
mod regional;
mod report;
mod rpc;
mod sell;
mod stock;
mod sync;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::catalog::{ProducerCmd, ProductCmd};
use crate::connect::NodeAddr;
use crate::escrow::{BudgetCmd, OrderCmd, QuotaCmd};
use crate::expiry::CatalogArgs;
use crate::movements::{AdjustArgs, ReceiveArgs, TransferCmd};
use crate::output::Format;
use crate::pki::PkiCmd;
use crate::report::ReportCmd;
use crate::rpc::Node;
use crate::sell::{ImportArgs, SellArgs};
use crate::sync::SyncCmd;
use crate::tls::{ClientFiles, TlsFiles};

/// Heading of the TLS options in `--help`.
const TLS_HEADING: &str = "Mutual TLS, for https:// (before the command)";

/// Operate an NTT Mart node: catalog, stock movements, stock and sync state.
#[derive(Debug, Parser)]
#[command(name = "martctl", version, after_help = exit::EXIT_CODES_HELP)]
struct Cli {
    /// Node to talk to: unix:PATH, http://HOST:PORT, or https://HOST:PORT (mutual TLS,
    /// with --ca, --cert and --key)
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "MARTCTL_NODE",
        value_name = "ADDR",
        default_value = "unix:./mart-data/admin.sock"
    )]
    node: NodeAddr,

    /// Print JSON on stdout instead of tables
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,

    /// Seconds to wait for the node to connect and to answer each call
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    timeout: u64,

    // The TLS files are not global: `pki issue --ca` and `product add --cert` take
    // options of the same names, so these go before the command (or in the env).
    /// CA certificate that signed the node's certificate, e.g. mart-pki/alice/ca.pem
    #[arg(long, help_heading = TLS_HEADING, env = "MARTCTL_CA", value_name = "FILE")]
    ca: Option<PathBuf>,

    /// Your operator certificate (martctl pki issue --role operator), e.g.
    /// mart-pki/alice/cert.pem
    #[arg(long, help_heading = TLS_HEADING, env = "MARTCTL_CERT", value_name = "FILE")]
    cert: Option<PathBuf>,

    /// Private key of --cert, e.g. mart-pki/alice/key.pem
    #[arg(long, help_heading = TLS_HEADING, env = "MARTCTL_KEY", value_name = "FILE")]
    key: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the node's identity, uptime and counters
    Status,
    /// List the automerge documents the node holds (and those it quarantined)
    Docs,
    /// Resolve a quarantined document: drop it, or drop and fetch it again from a peer
    #[command(subcommand)]
    Doc(doc::DocCmd),
    /// Take one document out: its automerge bytes (--out FILE), or plain JSON with --json
    Export(export::ExportArgs),
    /// Back up the running node into a new folder (`mart-node run --restore-from DIR`)
    Backup(backup::BackupArgs),
    /// Producers (IKM) in the catalog
    #[command(subcommand)]
    Producer(ProducerCmd),
    /// Products in the catalog
    #[command(subcommand)]
    Product(ProductCmd),
    /// Certifications of the catalog by expiry; --expiring for expired or soon to expire
    Catalog(CatalogArgs),
    /// Record stock bought from a producer (procurement)
    Receive(ReceiveArgs),
    /// Record a sale: one line, or a basket (repeat --sku and --qty)
    Sell(SellArgs),
    /// Record a file of receipts (CSV), one basket per receipt, over one stream
    ImportSales(ImportArgs),
    /// Record a stock correction after a count, damage or expiry
    Adjust(AdjustArgs),
    /// Record stock shipped to or received from another outlet
    #[command(subcommand)]
    Transfer(TransferCmd),
    /// Show stock on hand (at the hub also across districts, or what runs low)
    Stock {
        /// Only this SKU
        #[arg(long)]
        sku: Option<String>,
        /// Another outlet's ledger held by this node (at the hub: any district); with
        /// --regional or --low, only this district (`--district` is the same option)
        #[arg(long, visible_alias = "district")]
        outlet: Option<String>,
        /// At the hub: every district's quantity, with how old its figures are
        #[arg(long, conflicts_with = "low")]
        regional: bool,
        /// At the hub: SKUs at or below their reorder level
        #[arg(long)]
        low: bool,
    },
    /// At the hub: each district's stock in a few figures, and how fresh they are
    Districts,
    /// At the hub: shipments between outlets still in transit
    Transfers {
        /// Received ones too
        #[arg(long)]
        all: bool,
    },
    /// Online orders placed by the hub (at an outlet: its own)
    Orders {
        /// accepted, fulfilled or cancelled
        #[arg(long)]
        status: Option<String>,
        /// At the hub: one outlet's (`--district` is the same option)
        #[arg(long, visible_alias = "district")]
        outlet: Option<String>,
    },
    /// Place (hub), fulfil or cancel (outlet) an online order
    #[command(subcommand)]
    Order(OrderCmd),
    /// Online quota per SKU; grant it to the hub or ask it back (outlet)
    Quota {
        #[command(subcommand)]
        cmd: Option<QuotaCmd>,
        /// At the hub: one outlet's (`--district` is the same option)
        #[arg(long, visible_alias = "district")]
        outlet: Option<String>,
    },
    /// Procurement budget: allocated, spent, remaining; allocate (hub)
    Budget {
        #[command(subcommand)]
        cmd: Option<BudgetCmd>,
        /// Only this district (`--outlet` is the same option)
        #[arg(long, visible_alias = "outlet")]
        district: Option<String>,
        /// Calendar year (default: this year, WITA)
        #[arg(long)]
        year: Option<i32>,
    },
    /// List stock movements, newest last as the node returns them
    Movements(stock::MovementsArgs),
    /// Reports from the node's ledgers (by local date, WITA)
    #[command(subcommand)]
    Report(ReportCmd),
    /// Sync peers at a glance: connection, last sync, documents in sync, pending work
    Peers,
    /// Sync state per peer and document, or start a sync round now
    #[command(subcommand)]
    Sync(SyncCmd),
    /// Certificate authority: make the provincial CA, issue node certificates
    #[command(subcommand)]
    Pki(PkiCmd),
    /// Print a shell completion script, e.g. martctl completions bash >
    /// /etc/bash_completion.d/martctl
    Completions {
        /// bash, zsh or fish
        shell: generate::Shell,
    },
    /// Write the man pages (martctl.1 and one per command) into a directory
    Man {
        /// Where to write them, e.g. /usr/local/share/man/man1
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    // Like any Unix tool, end quietly when the reader of our output goes away
    // (`martctl movements | head`) instead of panicking on a broken pipe.
    // SAFETY: called before any other thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Known before clap has parsed anything: a usage error is JSON too with --json.
    let json = std::env::args_os().any(|a| a == "--json");
    let parsed = Cli::command().try_get_matches().and_then(parse_args);
    let (cli, tls) = match parsed {
        Ok(parsed) => parsed,
        Err(e) if json && e.use_stderr() => {
            eprintln!("{}", exit::usage_json(&e));
            return exit::Failure::Usage.exit_code();
        }
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli, tls)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => exit::report(&err, json),
    }
}

/// The parsed command line and, for an `https://` node, the TLS files: a usage error
/// (exit 2) when one is missing, or when typed for a node reached without TLS.
fn parse_args(matches: ArgMatches) -> Result<(Cli, Option<ClientFiles>), clap::Error> {
    let cli = Cli::from_arg_matches(&matches)?;
    if matches!(
        cli.command,
        Command::Pki(_) | Command::Completions { .. } | Command::Man { .. }
    ) {
        return Ok((cli, None));
    }
    let typed = ["ca", "cert", "key"]
        .iter()
        .any(|id| matches.value_source(id) == Some(ValueSource::CommandLine));
    let files = TlsFiles {
        ca: cli.ca.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
    };
    let tls = files
        .for_node(&cli.node, typed)
        .map_err(|msg| Cli::command().error(ErrorKind::MissingRequiredArgument, msg))?;
    Ok((cli, tls))
}

async fn run(cli: Cli, tls: Option<ClientFiles>) -> Result<()> {
    let format = if cli.json {
        Format::Json
    } else {
        Format::Table
    };
    let command = match cli.command {
        // Local files only: no node to connect to.
        Command::Pki(cmd) => return pki::run(cmd, format),
        Command::Completions { shell } => return generate::completions(Cli::command(), shell),
        Command::Man { out } => return generate::man(Cli::command(), &out),
        command => command,
    };
    let timeout = Duration::from_secs(cli.timeout);
    let channel = connect::connect(&cli.node, tls.as_ref(), timeout).await?;
    let rpc_timeout = match &command {
        Command::Sync(SyncCmd::Now(args)) => args.rpc_deadline(timeout),
        Command::Doc(cmd) => cmd.rpc_deadline(timeout),
        // A whole node, or a whole document, streamed: minutes for a hub, not seconds.
        Command::Backup(_) | Command::Export(_) => timeout.max(Duration::from_secs(600)),
        _ => timeout,
    };
    let node = Node::new(channel, rpc_timeout, cli.node.to_string());
    match command {
        Command::Pki(_) | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("handled before connecting")
        }
        Command::Status => admin::status(&node, format).await,
        Command::Docs => admin::docs(&node, format).await,
        Command::Doc(cmd) => doc::doc(&node, cmd, format).await,
        Command::Export(a) => export::export(&node, a, format).await,
        Command::Backup(a) => backup::backup(&node, a, format).await,
        Command::Producer(cmd) => catalog::producer(&node, cmd, format).await,
        Command::Product(cmd) => catalog::product(&node, cmd, format).await,
        Command::Catalog(a) => expiry::catalog(&node, a, format).await,
        Command::Receive(a) => movements::receive(&node, a, format).await,
        Command::Sell(a) => sell::sell(&node, a, format).await,
        Command::ImportSales(a) => sell::import_sales(&node, a, format).await,
        Command::Adjust(a) => movements::adjust(&node, a, format).await,
        Command::Transfer(cmd) => movements::transfer(&node, cmd, format).await,
        Command::Stock {
            sku,
            regional: true,
            outlet,
            ..
        } => regional::regional(&node, sku, outlet, format).await,
        Command::Stock {
            low: true, outlet, ..
        } => regional::low(&node, outlet, format).await,
        Command::Stock { sku, outlet, .. } => stock::stock(&node, sku, outlet, format).await,
        Command::Districts => regional::districts(&node, format).await,
        Command::Transfers { all } => regional::transfers(&node, all, format).await,
        Command::Orders { status, outlet } => escrow::orders(&node, status, outlet, format).await,
        Command::Order(cmd) => escrow::order(&node, cmd, format).await,
        Command::Quota { cmd, outlet } => escrow::quota(&node, cmd, outlet, format).await,
        Command::Budget {
            cmd,
            district,
            year,
        } => escrow::budget(&node, cmd, district, year, format).await,
        Command::Movements(a) => stock::movements(&node, a, format).await,
        Command::Report(cmd) => report::report(&node, cmd, format).await,
        Command::Peers => sync::peers(&node, format).await,
        Command::Sync(cmd) => sync::sync(&node, cmd, format).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("martctl").chain(args.iter().copied()))
    }

    fn parse_with_tls(args: &[&str]) -> Result<(Cli, Option<ClientFiles>), clap::Error> {
        let argv = std::iter::once("martctl").chain(args.iter().copied());
        parse_args(Cli::command().try_get_matches_from(argv)?)
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command and every option says what it is for, in `--help`.
    #[test]
    fn every_command_and_option_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && path != " martctl" {
                missing.push(format!("{path}: no description"));
            }
            for arg in cmd.get_arguments() {
                let builtin = ["help", "version"].contains(&arg.get_id().as_str());
                if arg.get_help().is_none() && !arg.is_hide_set() && !builtin {
                    missing.push(format!("{path} --{}: no description", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }

    #[test]
    fn completions_and_man_pages_need_no_node() {
        let (cli, tls) = parse_with_tls(&["completions", "bash"]).unwrap();
        assert!(tls.is_none());
        assert!(matches!(
            cli.command,
            Command::Completions {
                shell: generate::Shell::Bash
            }
        ));
        assert!(parse(&["completions", "tcsh"]).is_err());
        let dir = tempfile::tempdir().unwrap();
        generate::man(Cli::command(), dir.path()).unwrap();
        let page = std::fs::read_to_string(dir.path().join("martctl.1")).unwrap();
        assert!(page.contains("Exit codes"), "{page}");
        assert!(dir.path().join("martctl-sync-status.1").exists());
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = parse(&["stock", "--json", "--node", "http://127.0.0.1:50051"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.node, NodeAddr::Http("http://127.0.0.1:50051".into()));
        assert_eq!(cli.timeout, 10);
        let cli = parse(&["--timeout", "3", "status"]).unwrap();
        assert_eq!(cli.timeout, 3);
        assert!(parse(&["--timeout", "0", "status"]).is_err());
    }

    // The env vars are read too (MARTCTL_CA...), so these tests assume they are unset,
    // as in a clean test environment.
    #[test]
    fn https_takes_ca_cert_and_key() {
        let (cli, tls) = parse_with_tls(&[
            "--node",
            "https://localhost:7440",
            "--ca",
            "a/ca.pem",
            "--cert",
            "a/cert.pem",
            "--key",
            "a/key.pem",
            "status",
        ])
        .unwrap();
        assert!(matches!(cli.node, NodeAddr::Https { ref host, .. } if host == "localhost"));
        assert_eq!(tls.unwrap().key, PathBuf::from("a/key.pem"));
    }

    #[test]
    fn https_without_a_tls_file_is_a_usage_error() {
        let err = parse_with_tls(&[
            "--node",
            "https://localhost:7440",
            "--ca",
            "a/ca.pem",
            "--key",
            "a/key.pem",
            "peers",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("needs --cert FILE"), "{err}");
    }

    #[test]
    fn tls_files_with_a_plain_node_are_a_usage_error() {
        let err = parse_with_tls(&[
            "--node",
            "http://127.0.0.1:7440",
            "--ca",
            "ca.pem",
            "status",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("is not TLS"), "{err}");
    }

    #[test]
    fn tls_options_do_not_clash_with_pki_and_catalog_options() {
        let (cli, tls) = parse_with_tls(&[
            "--ca", "x.pem", "pki", "issue", "--ca", "mart-pki", "--id", "alice", "--role",
            "operator", "--out", "o",
        ])
        .unwrap();
        assert!(tls.is_none(), "pki connects to nothing");
        assert_eq!(cli.ca, Some(PathBuf::from("x.pem")));
        assert!(format!("{:?}", cli.command).contains("ca: \"mart-pki\""));
        let product = parse(&[
            "product",
            "add",
            "--sku",
            "S",
            "--name",
            "N",
            "--producer",
            "P",
            "--category",
            "C",
            "--unit",
            "U",
            "--price",
            "1",
            "--cert",
            "pirt:123",
        ])
        .unwrap();
        assert_eq!(
            product.cert, None,
            "--cert after the command is the product's"
        );
    }

    #[test]
    fn sync_now_timeout_is_the_round_and_the_rpc_waits_longer() {
        let timeout_of = |cli: Cli| match cli.command {
            Command::Sync(SyncCmd::Now(args)) => (args.timeout, cli.timeout),
            other => panic!("expected sync now, got {other:?}"),
        };
        assert_eq!(timeout_of(parse(&["sync", "now"]).unwrap()), (30, 30));
        assert_eq!(
            timeout_of(parse(&["sync", "now", "--timeout", "60"]).unwrap()),
            (60, 60)
        );
        assert_eq!(
            timeout_of(parse(&["--timeout", "5", "sync", "now"]).unwrap()),
            (5, 5)
        );
        assert!(parse(&["sync", "now", "--timeout", "0"]).is_err());
        assert!(parse(&["sync", "now", "--timeout", "3601"]).is_err());
        // Elsewhere the global --timeout keeps its own default.
        assert_eq!(parse(&["sync", "status"]).unwrap().timeout, 10);
        assert_eq!(parse(&["peers"]).unwrap().timeout, 10);
    }

    #[test]
    fn sync_status_takes_a_peer() {
        let cli = parse(&["sync", "status", "--peer", "sikka", "--json"]).unwrap();
        assert!(cli.json);
        assert!(
            matches!(cli.command, Command::Sync(SyncCmd::Status { peer: Some(ref p) }) if p == "sikka")
        );
    }

    #[test]
    fn pki_takes_the_global_json_flag() {
        let cli = parse(&[
            "pki", "issue", "--ca", "ca", "--id", "ttu", "--role", "district", "--out", "o",
            "--json",
        ])
        .unwrap();
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Pki(PkiCmd::Issue(_))));
    }

    #[test]
    fn adjust_takes_negative_quantities() {
        let cli = parse(&["adjust", "--sku", "A", "--qty", "-3", "--reason", "damage"]).unwrap();
        assert!(matches!(cli.command, Command::Adjust(_)));
        assert!(format!("{:?}", cli.command).contains("qty: -3"));
        assert!(parse(&["adjust", "--sku", "A", "--qty", "0", "--reason", "count"]).is_err());
        assert!(parse(&["adjust", "--sku", "A", "--qty", "2", "--reason", "theft"]).is_err());
    }

    #[test]
    fn movements_need_positive_quantities() {
        assert!(parse(&["sell", "--sku", "A", "--qty", "2"]).is_ok());
        assert!(parse(&["sell", "--sku", "A", "--qty", "0"]).is_err());
        assert!(parse(&["sell", "--sku", "A", "--qty", "-2"]).is_err());
        assert!(
            parse(&["receive", "--sku", "A", "--qty", "5"]).is_err(),
            "needs --unit-cost"
        );
        let ok = [
            "transfer",
            "out",
            "--transfer-id",
            "T1",
            "--sku",
            "A",
            "--qty",
            "1",
        ];
        assert!(parse(&[&ok[..], &["--to", "ttu"]].concat()).is_ok());
    }

    #[test]
    fn movements_take_a_period_or_two_dates_and_stock_takes_district_for_outlet() {
        assert!(parse(&["movements", "--from", "2026-11-01", "--to", "2026-12-07"]).is_ok());
        assert!(parse(&["movements", "--from", "2026-11-01"]).is_err());
        assert!(parse(&["movements", "--period", "2026-11", "--to", "2026-12-07"]).is_err());
        let cli = parse(&["stock", "--regional", "--district", "ttu"]).unwrap();
        assert!(format!("{:?}", cli.command).contains("outlet: Some(\"ttu\")"));
    }

    #[test]
    fn sell_parses_price_channel_and_buyer() {
        let cli = parse(&[
            "sell",
            "--sku",
            "A",
            "--qty",
            "1",
            "--price",
            "45.000",
            "--channel",
            "online",
            "--buyer",
            "asn",
            "--request-id",
            "r1",
        ])
        .unwrap();
        let debug = format!("{:?}", cli.command);
        for part in ["price: [45000]", "Online", "Asn", "Some(\"r1\")"] {
            assert!(debug.contains(part), "{part} missing in {debug}");
        }
        assert!(parse(&["sell", "--sku", "A", "--qty", "1", "--channel", "phone"]).is_err());
    }

    #[test]
    fn report_sales_takes_dates_a_district_and_csv_or_json() {
        let cli = parse(&[
            "report",
            "sales",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--district",
            "ttu",
            "--csv",
        ])
        .unwrap();
        let Command::Report(ReportCmd::Sales(args)) = cli.command else {
            panic!("expected report sales");
        };
        assert_eq!(
            (args.from.as_str(), args.to.as_str()),
            ("2026-11-01", "2026-11-30")
        );
        assert_eq!((args.district.as_deref(), args.csv), (Some("ttu"), true));
        let dates = [
            "report",
            "sales",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
        ];
        assert!(parse(&[&dates[..], &["--json"]].concat()).unwrap().json);
        let both = parse(&[&dates[..], &["--csv", "--json"]].concat()).unwrap_err();
        assert_eq!(both.kind(), ErrorKind::ArgumentConflict, "{both}");
        let bad = [
            "report",
            "sales",
            "--from",
            "2026-02-30",
            "--to",
            "2026-03-01",
        ];
        assert!(parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("not a calendar date"));
        assert!(
            parse(&["report", "sales", "--from", "2026-11-01"]).is_err(),
            "needs --to"
        );
        assert!(parse(&["report"]).is_err(), "report needs a report");
    }

    #[test]
    fn catalog_takes_expiring_and_days() {
        let args = |argv: &[&str]| match parse(argv).unwrap().command {
            Command::Catalog(a) => (a.expiring, a.days),
            other => panic!("expected catalog, got {other:?}"),
        };
        assert_eq!(args(&["catalog"]), (false, 60));
        assert_eq!(args(&["catalog", "--expiring"]), (true, 60));
        assert_eq!(args(&["catalog", "--expiring", "--days", "30"]), (true, 30));
        assert!(parse(&["catalog", "--days", "-1"]).is_err());
        assert!(parse(&["catalog", "--days", "3651"]).is_err());
        // The new command leaves the existing ones alone.
        assert!(matches!(
            parse(&["product", "list"]).unwrap().command,
            Command::Product(ProductCmd::List { .. })
        ));
    }

    #[test]
    fn product_add_collects_certifications() {
        let cli = parse(&[
            "product",
            "add",
            "--sku",
            "TTU-CJP-060",
            "--name",
            "Minyak kayu putih",
            "--producer",
            "p1",
            "--category",
            "herbal",
            "--unit",
            "60 ml bottle",
            "--price",
            "45000",
            "--cert",
            "bpom:TR203012345",
            "--cert",
            "halal:ID311:2027-06-30",
        ])
        .unwrap();
        let Command::Product(ProductCmd::Add { certs, price, .. }) = cli.command else {
            panic!("expected product add");
        };
        assert_eq!(price, 45_000);
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[1].expires_on, "2027-06-30");
        let bad = parse(&[
            "product",
            "add",
            "--sku",
            "S",
            "--name",
            "N",
            "--producer",
            "P",
            "--category",
            "C",
            "--unit",
            "U",
            "--price",
            "1",
            "--cert",
            "organic:1",
        ]);
        assert!(bad.is_err());
    }
}
