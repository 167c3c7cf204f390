//! The hub's status page: every district's sync state and freshness, regional low
//! stock, open online orders, shipments in transit and budget use per district, as
//! the province's staff read them in a browser.
//!
//! It reads the engine's views and the peer book only; a view that fails shows as a
//! line saying so, never as a failed page. Every value is escaped (see `html`).

use super::districts::{district_rows, sync_section};
use super::html::{ago, bar, chips, escape, page, rupiah, section, Cell, Row};
use super::Observed;
use crate::engine::{now_ms, BudgetStatus};

/// The page's HTML.
pub fn render(observed: &Observed) -> String {
    let engine = &observed.engine;
    let now = now_ms();
    let rows = district_rows(observed);
    let low = engine.low_stock(None).unwrap_or_default();
    let orders = engine.orders(None, Some("accepted")).unwrap_or_default();
    let shipments: Vec<_> = engine
        .shipments()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.state() == "in_transit")
        .collect();
    let budgets: Vec<BudgetStatus> = engine.budgets(None, 0).unwrap_or_default();

    let connected = rows.iter().filter(|r| r.connected).count();
    let seen = |r: &&super::districts::SyncRow| r.known || r.as_of_ms.is_some();
    let stale = rows
        .iter()
        .filter(seen)
        .filter(|r| r.stale == Some(true))
        .count();
    let mut body = chips(&[
        (format!("{connected}/{}", rows.len()), "districts connected"),
        (stale.to_string(), "stale"),
        (
            (rows.len() - rows.iter().filter(seen).count()).to_string(),
            "never synced",
        ),
        (low.len().to_string(), "low-stock lines"),
        (orders.len().to_string(), "open online orders"),
        (shipments.len().to_string(), "shipments in transit"),
    ]);
    body.push_str(&sync_section("Districts", &rows, now));

    let stale_of = |district: &str| {
        rows.iter()
            .any(|r| r.peer == district && r.stale == Some(true))
    };
    let low_rows: Vec<Row> = low
        .iter()
        .map(|l| {
            let mut district = escape(l.district.as_str());
            if stale_of(l.district.as_str()) {
                district.push_str(&super::html::badge("bad", "stale"));
            }
            Row {
                id: Some(format!("low-{}-{}", l.district, l.sku)),
                class: "",
                cells: vec![
                    Cell::markup(district),
                    Cell::text(&l.sku),
                    Cell::text(&l.name),
                    Cell::num(l.quantity).class("num"),
                    Cell::num(l.threshold),
                ],
            }
        })
        .collect();
    body.push_str(&section(
        "low-stock",
        "Regional low stock",
        &["District", "SKU", "Product", "On hand", "Reorder at"],
        &low_rows,
        "no SKU at or below its reorder level",
    ));

    let order_rows: Vec<Row> = orders
        .iter()
        .map(|o| {
            Row::new(vec![
                Cell::text(&o.order.id),
                Cell::text(o.outlet.as_str()),
                Cell::text(&o.order.sku),
                Cell::num(o.order.quantity),
                Cell::text(format!("{:?}", o.order.buyer).to_lowercase()),
                ago(now, Some(o.order.at_ms)),
            ])
        })
        .collect();
    body.push_str(&section(
        "orders",
        "Open online orders",
        &["Order", "Outlet", "SKU", "Qty", "Buyer", "Placed"],
        &order_rows,
        "no open online order",
    ));

    let shipment_rows: Vec<Row> = shipments
        .iter()
        .map(|s| {
            Row::new(vec![
                Cell::text(&s.transfer_id),
                Cell::text(&s.from),
                Cell::text(&s.to),
                Cell::text(&s.sku),
                Cell::num(s.sent),
                ago(now, Some(s.sent_at_ms)),
            ])
        })
        .collect();
    body.push_str(&section(
        "in-transit",
        "Shipments in transit",
        &["Transfer", "From", "To", "SKU", "Units", "Sent"],
        &shipment_rows,
        "nothing in transit",
    ));

    let budget_rows: Vec<Row> = budgets
        .iter()
        .map(|b| {
            let allocated = b.allocated.unwrap_or(0);
            Row::new(vec![
                Cell::text(&b.district),
                Cell::num(b.year),
                Cell::text(b.allocated.map_or("none".into(), rupiah)).class("num"),
                Cell::text(rupiah(b.spent)).class("num"),
                Cell::text(rupiah(b.remaining())).class("num"),
                match b.allocated {
                    Some(_) => Cell::markup(bar(b.spent, allocated)),
                    None => Cell::markup(super::html::badge("warn", "no allocation")),
                },
            ])
        })
        .collect();
    body.push_str(&section(
        "budgets",
        "Procurement budget use",
        &[
            "District",
            "Year",
            "Allocated",
            "Spent",
            "Remaining",
            "Used",
        ],
        &budget_rows,
        "no budget allocated this year",
    ));

    let identity = engine.identity();
    page(
        &format!("NTT Mart hub {}", identity.node),
        &format!(
            "As of {}. A district is stale when its newest figures and last sync are both older than {}.",
            super::html::wita_time(now),
            super::html::duration(observed.stale_after.as_millis() as i64)
        ),
        &body,
    )
}
