//! Online orders, quota and budgets: `orders`, `order place|fulfil|cancel`,
//! `quota [grant|return]` and `budget [allocate]`.
//!
//! It must never compute quota or budget figures itself: it shows what the node
//! answers, so it cannot disagree with what the node will enforce.

use anyhow::Result;
use clap::{Args, Subcommand};
use mart_proto::v1::{
    AllocateBudgetRequest, BudgetLine, BudgetRequest, Buyer, ListOrdersRequest, ListQuotaRequest,
    OrderActionRequest, PlaceOrderRequest, QuotaRequest,
};
use serde::Serialize;

use crate::clock::wita;
use crate::movements::{report, with_retry_hint, BuyerArg, RequestId};
use crate::output::{fields, print_json, rupiah, Format, Table};
use crate::rpc::Node;

#[derive(Debug, Subcommand)]
pub enum OrderCmd {
    /// At the hub: accept an online order against an outlet's quota
    Place {
        /// Product SKU, e.g. SKA-MET-250
        #[arg(long)]
        sku: String,
        /// Units ordered
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        qty: i64,
        /// The outlet whose quota the order uses
        #[arg(long)]
        outlet: String,
        /// Who buys: asn (a civil servant) or public, for the reports
        #[arg(long, value_enum, default_value = "public")]
        buyer: BuyerArg,
        #[command(flatten)]
        id: RequestId,
    },
    /// At the outlet: ship an order (an online sale out of the quota reserved for it)
    Fulfil {
        /// The order's id, as `martctl orders` lists it
        order_id: String,
        #[command(flatten)]
        id: RequestId,
    },
    /// At the outlet: cancel an order; its quantity returns to the hub's quota
    Cancel {
        /// The order's id, as `martctl orders` lists it
        order_id: String,
        #[command(flatten)]
        id: RequestId,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuotaCmd {
    /// Hand the hub units of sellable stock to sell online without asking
    Grant(QuotaArgs),
    /// Ask the hub for unsold quota back (it answers when it next syncs)
    Return(QuotaArgs),
}

#[derive(Debug, Args)]
pub struct QuotaArgs {
    /// Product SKU, e.g. SKA-MET-250
    #[arg(long)]
    sku: String,
    /// Units of sellable stock
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    qty: i64,
    #[command(flatten)]
    id: RequestId,
}

#[derive(Debug, Subcommand)]
pub enum BudgetCmd {
    /// At the hub: set a district's procurement budget for a year
    Allocate {
        /// The district (node id, e.g. sikka)
        #[arg(long)]
        district: String,
        /// Calendar year (default: this year, WITA)
        #[arg(long)]
        year: Option<i32>,
        /// Amount in rupiah, e.g. 250000000 or 250.000.000
        #[arg(long, value_name = "RP", value_parser = crate::args::rupiah)]
        amount: i64,
    },
}

#[derive(Debug, Serialize)]
struct OrderView {
    id: String,
    outlet: String,
    sku: String,
    quantity: i64,
    unit_price_rupiah: i64,
    buyer: &'static str,
    placed_at_unix_ms: i64,
    status: String,
    /// A repeated request id: the order placed first, nothing new stored.
    duplicate: bool,
}

fn order_view(o: mart_proto::v1::Order) -> OrderView {
    OrderView {
        buyer: if o.buyer == Buyer::Asn as i32 {
            "asn"
        } else {
            "public"
        },
        id: o.id,
        outlet: o.outlet,
        sku: o.sku,
        quantity: o.quantity,
        unit_price_rupiah: o.unit_price_rupiah,
        placed_at_unix_ms: o.placed_at_unix_ms,
        status: o.status,
        duplicate: o.duplicate,
    }
}

pub async fn orders(
    node: &Node,
    status: Option<String>,
    outlet: Option<String>,
    format: Format,
) -> Result<()> {
    let req = node.request(ListOrdersRequest {
        status: status.unwrap_or_default(),
        outlet: outlet.unwrap_or_default(),
    });
    let views: Vec<OrderView> = node
        .call(node.mart().list_orders(req))
        .await?
        .orders
        .into_iter()
        .map(order_view)
        .collect();
    if format == Format::Json {
        return print_json(&views);
    }
    let mut table = Table::new(&[
        "ORDER", "OUTLET", "SKU", "QTY", "PRICE", "BUYER", "PLACED", "STATUS",
    ])
    .right_align(&[3, 4]);
    for o in &views {
        table.row(vec![
            o.id.clone(),
            o.outlet.clone(),
            o.sku.clone(),
            o.quantity.to_string(),
            rupiah(o.unit_price_rupiah),
            o.buyer.to_string(),
            wita(o.placed_at_unix_ms),
            o.status.clone(),
        ]);
    }
    table.print_or("no orders");
    Ok(())
}

pub async fn order(node: &Node, cmd: OrderCmd, format: Format) -> Result<()> {
    match cmd {
        OrderCmd::Place {
            sku,
            qty,
            outlet,
            buyer,
            id,
        } => {
            let request_id = id.resolve();
            let req = node.request(PlaceOrderRequest {
                request_id: request_id.clone(),
                outlet,
                sku,
                quantity: qty,
                buyer: match buyer {
                    BuyerArg::Asn => Buyer::Asn,
                    BuyerArg::Public => Buyer::Public,
                } as i32,
            });
            let placed = node.call(node.hub().place_order(req)).await;
            let placed = with_retry_hint("order", &request_id, placed)?;
            let o = order_view(placed);
            if o.duplicate && format == Format::Table {
                println!("order already placed with this request id; nothing new stored");
            }
            if format == Format::Json {
                return print_json(&o);
            }
            print!(
                "{}",
                fields(&[
                    ("order", o.id.clone()),
                    ("outlet", o.outlet.clone()),
                    ("sku", o.sku.clone()),
                    ("quantity", o.quantity.to_string()),
                    ("unit price", rupiah(o.unit_price_rupiah)),
                    ("status", o.status.clone()),
                ])
            );
            Ok(())
        }
        OrderCmd::Fulfil { order_id, id } => {
            let request_id = id.resolve();
            let req = node.request(OrderActionRequest {
                request_id: request_id.clone(),
                order_id,
            });
            let ack = node.call(node.mart().fulfil_order(req)).await;
            report("fulfilment", &request_id, ack, format)
        }
        OrderCmd::Cancel { order_id, id } => {
            let request_id = id.resolve();
            let req = node.request(OrderActionRequest {
                request_id: request_id.clone(),
                order_id,
            });
            let ack = node.call(node.mart().cancel_order(req)).await;
            report("cancellation", &request_id, ack, format)
        }
    }
}

#[derive(Debug, Serialize)]
struct QuotaView {
    outlet: String,
    sku: String,
    granted: i64,
    accepted: i64,
    fulfilled: i64,
    cancelled: i64,
    released: i64,
    available: i64,
    reserved: i64,
    pending_returns: i64,
}

pub async fn quota(
    node: &Node,
    cmd: Option<QuotaCmd>,
    outlet: Option<String>,
    format: Format,
) -> Result<()> {
    if let Some(cmd) = cmd {
        let (grant, a) = match cmd {
            QuotaCmd::Grant(a) => (true, a),
            QuotaCmd::Return(a) => (false, a),
        };
        let request_id = a.id.resolve();
        let req = node.request(QuotaRequest {
            request_id: request_id.clone(),
            sku: a.sku,
            quantity: a.qty,
        });
        let ack = if grant {
            node.call(node.mart().grant_quota(req)).await
        } else {
            node.call(node.mart().return_quota(req)).await
        };
        return report(
            if grant {
                "quota grant"
            } else {
                "quota return request"
            },
            &request_id,
            ack,
            format,
        );
    }
    let req = node.request(ListQuotaRequest {
        outlet: outlet.unwrap_or_default(),
    });
    let views: Vec<QuotaView> = node
        .call(node.mart().list_quota(req))
        .await?
        .lines
        .into_iter()
        .map(|l| QuotaView {
            outlet: l.outlet,
            sku: l.sku,
            granted: l.granted,
            accepted: l.accepted,
            fulfilled: l.fulfilled,
            cancelled: l.cancelled,
            released: l.released,
            available: l.available,
            reserved: l.reserved,
            pending_returns: l.pending_returns,
        })
        .collect();
    if format == Format::Json {
        return print_json(&views);
    }
    let mut table = Table::new(&[
        "OUTLET",
        "SKU",
        "GRANTED",
        "ORDERED",
        "FULFILLED",
        "CANCELLED",
        "RELEASED",
        "AVAILABLE",
        "RESERVED",
        "RETURN ASKED",
    ])
    .right_align(&[2, 3, 4, 5, 6, 7, 8, 9]);
    for q in &views {
        table.row(vec![
            q.outlet.clone(),
            q.sku.clone(),
            q.granted.to_string(),
            q.accepted.to_string(),
            q.fulfilled.to_string(),
            q.cancelled.to_string(),
            q.released.to_string(),
            q.available.to_string(),
            q.reserved.to_string(),
            q.pending_returns.to_string(),
        ]);
    }
    table.print_or("no quota granted");
    Ok(())
}

#[derive(Debug, Serialize)]
struct BudgetView {
    district: String,
    year: i32,
    allocated: Option<i64>,
    spent: i64,
    remaining: Option<i64>,
    over_budget: Vec<OverBudgetView>,
}

#[derive(Debug, Serialize)]
struct OverBudgetView {
    movement_id: String,
    cost: i64,
    reason: String,
}

fn budget_view(b: BudgetLine) -> BudgetView {
    BudgetView {
        allocated: b.allocated.then_some(b.allocated_rupiah),
        remaining: b.allocated.then_some(b.remaining_rupiah),
        district: b.district,
        year: b.year,
        spent: b.spent_rupiah,
        over_budget: b
            .over_budget
            .into_iter()
            .map(|o| OverBudgetView {
                movement_id: o.movement_id,
                cost: o.cost_rupiah,
                reason: o.reason,
            })
            .collect(),
    }
}

pub async fn budget(
    node: &Node,
    cmd: Option<BudgetCmd>,
    district: Option<String>,
    year: Option<i32>,
    format: Format,
) -> Result<()> {
    let views: Vec<BudgetView> = match cmd {
        Some(BudgetCmd::Allocate {
            district,
            year,
            amount,
        }) => {
            let req = node.request(AllocateBudgetRequest {
                district,
                year: year.unwrap_or_else(crate::clock::this_year_wita),
                amount_rupiah: amount,
            });
            vec![budget_view(
                node.call(node.hub().allocate_budget(req)).await?,
            )]
        }
        None => {
            let req = node.request(BudgetRequest {
                district: district.unwrap_or_default(),
                year: year.unwrap_or(0),
            });
            node.call(node.mart().get_budget(req))
                .await?
                .lines
                .into_iter()
                .map(budget_view)
                .collect()
        }
    };
    if format == Format::Json {
        return print_json(&views);
    }
    let shown = |v: Option<i64>| v.map_or("not allocated".to_string(), rupiah);
    let mut table = Table::new(&[
        "DISTRICT",
        "YEAR",
        "ALLOCATED",
        "SPENT",
        "REMAINING",
        "OVER BUDGET",
    ])
    .right_align(&[2, 3, 4]);
    for b in &views {
        table.row(vec![
            b.district.clone(),
            b.year.to_string(),
            shown(b.allocated),
            rupiah(b.spent),
            shown(b.remaining),
            b.over_budget.len().to_string(),
        ]);
    }
    table.print_or("no budgets");
    for b in &views {
        for o in &b.over_budget {
            println!(
                "over budget at {}: {} cost {}: {}",
                b.district,
                o.movement_id,
                rupiah(o.cost),
                o.reason
            );
        }
    }
    Ok(())
}
