//! A district's own small status page: its sync state with the hub and its stock on
//! hand, for the outlet's staff.
//!
//! It reads the engine and the peer book only, and escapes every value.

use super::districts::{peer_rows, sync_section};
use super::html::{chips, page, section, wita_time, Cell, Row};
use super::Observed;
use crate::engine::now_ms;

/// The page's HTML.
pub fn render(observed: &Observed) -> String {
    let engine = &observed.engine;
    let now = now_ms();
    let rows = peer_rows(observed);
    let stock = engine.stock(None, None).unwrap_or_default();
    let status = engine.status();
    let pending: u64 = rows.iter().map(|r| r.to_send).sum();
    let mut body = chips(&[
        (status.movements.to_string(), "movements this period"),
        (status.skus_in_stock.to_string(), "SKUs in stock"),
        (pending.to_string(), "changes not yet at the hub"),
    ]);
    body.push_str(&sync_section("Sync with the hub", &rows, now));
    let stock_rows: Vec<Row> = stock
        .iter()
        .map(|line| Row {
            id: Some(format!("stock-{}", line.sku)),
            class: "",
            cells: vec![
                Cell::text(&line.sku),
                Cell::text(&line.name),
                Cell::num(line.quantity),
                Cell::text(&line.unit),
            ],
        })
        .collect();
    body.push_str(&section(
        "stock",
        "Stock on hand",
        &["SKU", "Product", "On hand", "Unit"],
        &stock_rows,
        "no stock has moved yet",
    ));
    let name = crate::domain::districts::find(status.node.as_str())
        .map(|d| format!(" ({})", d.name))
        .unwrap_or_default();
    page(
        &format!("NTT Mart {}{name}", status.node),
        &format!(
            "As of {}; open period {}.",
            wita_time(now),
            status
                .open_period
                .map_or("none".to_string(), |p| p.to_string())
        ),
        &body,
    )
}
