//! `stock` and `movements`: read the outlet's stock levels and its ledger of movements.
//!
//! It must never compute stock itself: the quantities shown are the node's, so the CLI
//! can never disagree with what the node will enforce at the next sale.

use anyhow::Result;
use mart_proto::v1::{ListMovementsRequest, StockRequest};
use serde::Serialize;

use crate::clock::wita;
use crate::output::{print_json, rupiah, Format, Table};
use crate::rpc::Node;

#[derive(Debug, Serialize)]
struct LevelView {
    sku: String,
    name: String,
    quantity: i64,
    unit: String,
    outlet: String,
}

pub async fn stock(
    node: &Node,
    sku: Option<String>,
    outlet: Option<String>,
    format: Format,
) -> Result<()> {
    let req = node.request(StockRequest {
        sku: sku.unwrap_or_default(),
        outlet: outlet.unwrap_or_default(),
    });
    let stock = node.call(node.mart().get_stock(req)).await?;
    let views: Vec<LevelView> = stock
        .levels
        .into_iter()
        .map(|l| LevelView {
            sku: l.sku,
            name: l.name,
            quantity: l.quantity,
            unit: l.unit,
            outlet: stock.outlet.clone(),
        })
        .collect();
    if format == Format::Json {
        return print_json(&views);
    }
    println!("outlet: {}", stock.outlet);
    let mut table = Table::new(&["SKU", "NAME", "QTY", "UNIT"]).right_align(&[2]);
    for l in &views {
        table.row(vec![
            l.sku.clone(),
            l.name.clone(),
            l.quantity.to_string(),
            l.unit.clone(),
        ]);
    }
    table.print_or("no stock");
    Ok(())
}

#[derive(Debug, Serialize)]
struct MovementView {
    id: String,
    sku: String,
    kind: String,
    delta: i64,
    unit_rupiah: i64,
    detail: String,
    at_unix_ms: i64,
}

/// `movements`: what the node recorded, newest last.
#[derive(Debug, clap::Args)]
pub struct MovementsArgs {
    /// Only movements of this SKU
    #[arg(long)]
    sku: Option<String>,
    /// At most this many of the newest movements, across periods (0: every movement of
    /// the open period, or of the dates asked for)
    #[arg(long, value_name = "N", default_value_t = 0)]
    limit: u32,
    /// Another outlet's ledger held by this node (at the hub: any district; `--district`
    /// is the same option)
    #[arg(long, visible_alias = "district")]
    outlet: Option<String>,
    /// One ledger period (YYYY-MM, as `martctl docs` lists them), read from disk if it
    /// is archived
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["from", "to"])]
    period: Option<String>,
    /// From this WITA date (YYYY-MM-DD), across every period up to --to
    #[arg(long, value_name = "YYYY-MM-DD", requires = "to")]
    from: Option<String>,
    /// Up to and including this WITA date (YYYY-MM-DD)
    #[arg(long, value_name = "YYYY-MM-DD", requires = "from")]
    to: Option<String>,
}

pub async fn movements(node: &Node, a: MovementsArgs, format: Format) -> Result<()> {
    let req = node.request(ListMovementsRequest {
        sku: a.sku.unwrap_or_default(),
        limit: a.limit,
        outlet: a.outlet.unwrap_or_default(),
        period: a.period.unwrap_or_default(),
        from: a.from.unwrap_or_default(),
        to: a.to.unwrap_or_default(),
    });
    let list = node.call(node.mart().list_movements(req)).await?;
    let views: Vec<MovementView> = list
        .movements
        .into_iter()
        .map(|m| MovementView {
            id: m.id,
            sku: m.sku,
            kind: m.kind,
            delta: m.delta,
            unit_rupiah: m.unit_rupiah,
            detail: m.detail,
            at_unix_ms: m.at_unix_ms,
        })
        .collect();
    if format == Format::Json {
        return print_json(&views);
    }
    let mut table = Table::new(&["TIME", "SKU", "KIND", "DELTA", "UNIT RP", "DETAIL", "ID"])
        .right_align(&[3, 4]);
    for m in &views {
        table.row(vec![
            wita(m.at_unix_ms),
            m.sku.clone(),
            m.kind.clone(),
            format!("{:+}", m.delta),
            if m.unit_rupiah == 0 {
                "-".into()
            } else {
                rupiah(m.unit_rupiah)
            },
            m.detail.clone(),
            m.id.clone(),
        ]);
    }
    table.print_or("no movements");
    Ok(())
}
