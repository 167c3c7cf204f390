//! What the hub shows across districts: `stock --regional`, `stock --low`,
//! `districts` and `transfers`, each district's figures labelled with their age.
//!
//! It must never present a stale district's figures without saying so.

use anyhow::Result;
use mart_proto::v1::{
    DistrictSummariesRequest, Freshness, InTransitRequest, LowStockRequest, RegionalStockRequest,
};
use serde::Serialize;

use crate::clock::{ago, clock_offset, now_unix_ms, when_set, wita};
use crate::output::{print_json, rupiah, Format, Table};
use crate::rpc::Node;

#[derive(Debug, Serialize)]
pub struct RegionalRow {
    pub sku: String,
    pub name: String,
    pub district: String,
    pub quantity: i64,
    pub sku_total: i64,
    /// The newest movement of the district's figures; null when it has none.
    pub as_of_unix_ms: Option<i64>,
    /// null when the district never synced.
    pub last_sync_unix_ms: Option<i64>,
    pub stale: bool,
}

/// `as of 2026-11-30 14:05 WITA (3m ago)`, with `STALE` when it is.
fn age(f: &Freshness) -> String {
    let label = if f.as_of_unix_ms > 0 {
        format!(
            "{} ({})",
            wita(f.as_of_unix_ms),
            ago(f.as_of_unix_ms, now_unix_ms())
        )
    } else {
        "no movements".to_string()
    };
    if f.stale {
        format!("{label} STALE")
    } else {
        label
    }
}

/// Regional stock, one row per SKU and district.
pub async fn regional_rows(
    node: &Node,
    sku: Option<String>,
    district: Option<String>,
) -> Result<Vec<RegionalRow>> {
    let req = node.request(RegionalStockRequest {
        sku: sku.unwrap_or_default(),
        district: district.unwrap_or_default(),
    });
    let response = node.call(node.hub().regional_stock(req)).await?;
    let mut rows = Vec::new();
    for s in response.skus {
        for d in s.districts {
            let f = d.freshness.unwrap_or_default();
            rows.push(RegionalRow {
                sku: s.sku.clone(),
                name: s.name.clone(),
                district: d.district,
                quantity: d.quantity,
                sku_total: s.total,
                as_of_unix_ms: when_set(f.as_of_unix_ms),
                last_sync_unix_ms: when_set(f.last_sync_unix_ms),
                stale: f.stale,
            });
        }
    }
    Ok(rows)
}

pub async fn regional(
    node: &Node,
    sku: Option<String>,
    district: Option<String>,
    format: Format,
) -> Result<()> {
    let rows = regional_rows(node, sku, district).await?;
    if format == Format::Json {
        return print_json(&rows);
    }
    let mut table = Table::new(&[
        "SKU",
        "NAME",
        "DISTRICT",
        "QTY",
        "SKU TOTAL",
        "FIGURES AS OF",
    ])
    .right_align(&[3, 4]);
    for r in &rows {
        let f = Freshness {
            district: r.district.clone(),
            as_of_unix_ms: r.as_of_unix_ms.unwrap_or_default(),
            last_sync_unix_ms: r.last_sync_unix_ms.unwrap_or_default(),
            stale: r.stale,
            ..Freshness::default()
        };
        table.row(vec![
            r.sku.clone(),
            r.name.clone(),
            r.district.clone(),
            r.quantity.to_string(),
            r.sku_total.to_string(),
            age(&f),
        ]);
    }
    table.print_or("no stock at any district");
    Ok(())
}

#[derive(Debug, Serialize)]
struct SummaryView {
    district: String,
    skus: u64,
    units: i64,
    value_rupiah: i64,
    /// null when the district has no movements.
    as_of_unix_ms: Option<i64>,
    /// null when the district never synced.
    last_sync_unix_ms: Option<i64>,
    stale: bool,
    /// The district's clock minus the hub's (ms); null when never seen.
    clock_offset_ms: Option<i64>,
    clock_seen_unix_ms: Option<i64>,
    /// The offset is beyond 5 minutes.
    clock_wrong: bool,
}

pub async fn districts(node: &Node, format: Format) -> Result<()> {
    let req = node.request(DistrictSummariesRequest {});
    let response = node.call(node.hub().district_summaries(req)).await?;
    let mut table = Table::new(&[
        "DISTRICT",
        "SKUS",
        "UNITS",
        "VALUE",
        "FIGURES AS OF",
        "LAST SYNC",
        "CLOCK",
    ])
    .right_align(&[1, 2, 3]);
    let mut views = Vec::new();
    for d in response.districts {
        let f = d.freshness.unwrap_or_default();
        table.row(vec![
            d.district.clone(),
            d.skus.to_string(),
            d.units.to_string(),
            rupiah(d.value_rupiah),
            age(&f),
            wita(f.last_sync_unix_ms),
            clock_offset(f.clock_offset_ms, f.clock_seen_unix_ms, f.clock_wrong),
        ]);
        views.push(SummaryView {
            district: d.district,
            skus: d.skus,
            units: d.units,
            value_rupiah: d.value_rupiah,
            as_of_unix_ms: when_set(f.as_of_unix_ms),
            last_sync_unix_ms: when_set(f.last_sync_unix_ms),
            stale: f.stale,
            clock_offset_ms: when_set(f.clock_seen_unix_ms).map(|_| f.clock_offset_ms),
            clock_seen_unix_ms: when_set(f.clock_seen_unix_ms),
            clock_wrong: f.clock_wrong,
        });
    }
    if format == Format::Json {
        return print_json(&views);
    }
    table.print_or("no districts");
    Ok(())
}

#[derive(Debug, Serialize)]
struct LowView {
    district: String,
    sku: String,
    name: String,
    quantity: i64,
    threshold: i64,
    stale: bool,
}

pub async fn low(node: &Node, district: Option<String>, format: Format) -> Result<()> {
    let req = node.request(LowStockRequest {
        district: district.unwrap_or_default(),
    });
    let views: Vec<LowView> = node
        .call(node.hub().low_stock(req))
        .await?
        .lines
        .into_iter()
        .map(|l| LowView {
            district: l.district,
            sku: l.sku,
            name: l.name,
            quantity: l.quantity,
            threshold: l.threshold,
            stale: l.stale,
        })
        .collect();
    if format == Format::Json {
        return print_json(&views);
    }
    let mut table =
        Table::new(&["DISTRICT", "SKU", "NAME", "QTY", "REORDER AT", ""]).right_align(&[3, 4]);
    for l in &views {
        table.row(vec![
            l.district.clone(),
            l.sku.clone(),
            l.name.clone(),
            l.quantity.to_string(),
            l.threshold.to_string(),
            if l.stale {
                "STALE".into()
            } else {
                String::new()
            },
        ]);
    }
    table.print_or("no low stock");
    Ok(())
}

#[derive(Debug, Serialize)]
struct ShipmentView {
    transfer_id: String,
    from: String,
    to: String,
    sku: String,
    sent: i64,
    received: i64,
    sent_at_unix_ms: i64,
    /// null until it is received.
    received_at_unix_ms: Option<i64>,
    state: String,
}

pub async fn transfers(node: &Node, all: bool, format: Format) -> Result<()> {
    let req = node.request(InTransitRequest {});
    let views: Vec<ShipmentView> = node
        .call(node.hub().in_transit(req))
        .await?
        .shipments
        .into_iter()
        .filter(|s| all || s.state != "received")
        .map(|s| ShipmentView {
            transfer_id: s.transfer_id,
            from: s.from,
            to: s.to,
            sku: s.sku,
            sent: s.sent,
            received: s.received,
            sent_at_unix_ms: s.sent_at_unix_ms,
            received_at_unix_ms: when_set(s.received_at_unix_ms),
            state: s.state,
        })
        .collect();
    if format == Format::Json {
        return print_json(&views);
    }
    let mut table = Table::new(&[
        "TRANSFER", "FROM", "TO", "SKU", "SENT", "RECEIVED", "SENT AT", "STATE",
    ])
    .right_align(&[4, 5]);
    for s in &views {
        table.row(vec![
            s.transfer_id.clone(),
            s.from.clone(),
            s.to.clone(),
            s.sku.clone(),
            s.sent.to_string(),
            s.received.to_string(),
            wita(s.sent_at_unix_ms),
            s.state.clone(),
        ]);
    }
    table.print_or(if all {
        "no shipments"
    } else {
        "nothing in transit"
    });
    Ok(())
}
