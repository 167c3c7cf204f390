//! `martctl`, the operator CLI of NTT Mart sync: parses the command line, connects to
//! one node and hands the command to its module. `pki` (the certificate authority)
//! works on local files only and connects to nothing.
//!
//! It must never depend on node internals (only on the gRPC API in `mart-proto`), and
//! never exit 0 when the node refused or did not confirm an operation.
//!
//! Exit codes: 0 done, 1 refused (by the node, or by `pki` to protect existing files) or
//! node unreachable, 2 bad usage.

mod admin;
mod args;
mod catalog;
mod certs;
mod clock;
mod connect;
mod movements;
mod output;
mod pki;
mod rpc;
mod stock;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::catalog::{ProducerCmd, ProductCmd};
use crate::connect::NodeAddr;
use crate::movements::{AdjustArgs, ReceiveArgs, SellArgs, TransferCmd};
use crate::output::Format;
use crate::pki::PkiCmd;
use crate::rpc::{Node, RpcError};

/// Operate an NTT Mart node: catalog, stock movements, stock and sync state.
#[derive(Debug, Parser)]
#[command(name = "martctl", version)]
struct Cli {
    /// Node to talk to: unix:PATH or http://HOST:PORT (https arrives with mutual TLS)
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

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the node's identity, uptime and counters
    Status,
    /// List the automerge documents the node holds
    Docs,
    /// Producers (IKM) in the catalog
    #[command(subcommand)]
    Producer(ProducerCmd),
    /// Products in the catalog
    #[command(subcommand)]
    Product(ProductCmd),
    /// Record stock bought from a producer (procurement)
    Receive(ReceiveArgs),
    /// Record a sale
    Sell(SellArgs),
    /// Record a stock correction after a count, damage or expiry
    Adjust(AdjustArgs),
    /// Record stock shipped to or received from another outlet
    #[command(subcommand)]
    Transfer(TransferCmd),
    /// Show stock on hand
    Stock {
        /// Only this SKU
        #[arg(long)]
        sku: Option<String>,
    },
    /// List stock movements, newest last as the node returns them
    Movements {
        /// Only movements of this SKU
        #[arg(long)]
        sku: Option<String>,
        /// At most this many of the newest movements (0 for all)
        #[arg(long, value_name = "N", default_value_t = 0)]
        limit: u32,
    },
    /// Certificate authority: make the provincial CA, issue node certificates
    #[command(subcommand)]
    Pki(PkiCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let format = if cli.json {
        Format::Json
    } else {
        Format::Table
    };
    let command = match cli.command {
        // Local files only: no node to connect to.
        Command::Pki(cmd) => return pki::run(cmd, format),
        command => command,
    };
    let timeout = Duration::from_secs(cli.timeout);
    let channel = connect::connect(&cli.node, timeout).await?;
    let node = Node::new(channel, timeout, cli.node.to_string());
    match command {
        Command::Pki(_) => unreachable!("handled before connecting"),
        Command::Status => admin::status(&node, format).await,
        Command::Docs => admin::docs(&node, format).await,
        Command::Producer(cmd) => catalog::producer(&node, cmd, format).await,
        Command::Product(cmd) => catalog::product(&node, cmd, format).await,
        Command::Receive(a) => movements::receive(&node, a, format).await,
        Command::Sell(a) => movements::sell(&node, a, format).await,
        Command::Adjust(a) => movements::adjust(&node, a, format).await,
        Command::Transfer(cmd) => movements::transfer(&node, cmd, format).await,
        Command::Stock { sku } => stock::stock(&node, sku, format).await,
        Command::Movements { sku, limit } => stock::movements(&node, sku, limit, format).await,
    }
}

/// `error: <code>: <message>` for refusals, `error: <cause chain>` otherwise, and the
/// hint on its own line when there is one.
fn report(err: &anyhow::Error) {
    eprintln!("error: {err:#}");
    if let Some(hint) = err.downcast_ref::<RpcError>().and_then(|e| e.hint.as_ref()) {
        eprintln!("hint: {hint}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("martctl").chain(args.iter().copied()))
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
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

    #[test]
    fn https_is_a_usage_error() {
        let err = parse(&["--node", "https://kupang:50051", "status"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().contains("https is not supported yet"),
            "{err}"
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
        for part in ["price: Some(45000)", "Online", "Asn", "Some(\"r1\")"] {
            assert!(debug.contains(part), "{part} missing in {debug}");
        }
        assert!(parse(&["sell", "--sku", "A", "--qty", "1", "--channel", "phone"]).is_err());
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
