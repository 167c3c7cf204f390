//! `status` and `docs`: the operator's view of one node, its identity, counters and
//! the automerge documents it holds.
//!
//! It must never change anything on the node: every call here is a read.

use anyhow::Result;
use mart_proto::v1::{ListDocumentsRequest, StatusRequest};
use serde::Serialize;

use crate::clock::wita;
use crate::output::{bytes, duration, fields, print_json, Format, Table};
use crate::rpc::Node;

#[derive(Debug, Serialize)]
struct StatusView {
    node_id: String,
    role: String,
    hub_id: String,
    version: String,
    actor: String,
    data_dir: String,
    started_at_unix_ms: i64,
    uptime_seconds: u64,
    documents: u32,
    movements: u64,
    skus_in_stock: u64,
    durable_writes: u64,
    flushes: u64,
    open_period: String,
    restoring: bool,
    /// Empty unless the clock is too far ahead to open a new period.
    clock_warning: String,
}

pub async fn status(node: &Node, format: Format) -> Result<()> {
    let req = node.request(StatusRequest {});
    let s = node.call(node.admin().status(req)).await?;
    let view = StatusView {
        node_id: s.node_id,
        role: s.role,
        hub_id: s.hub_id,
        version: s.version,
        actor: s.actor,
        data_dir: s.data_dir,
        started_at_unix_ms: s.started_at_unix_ms,
        uptime_seconds: s.uptime_seconds,
        documents: s.documents,
        movements: s.movements,
        skus_in_stock: s.skus_in_stock,
        durable_writes: s.durable_writes,
        flushes: s.flushes,
        open_period: s.open_period,
        restoring: s.restoring,
        clock_warning: s.clock_warning,
    };
    if format == Format::Json {
        return print_json(&view);
    }
    print!(
        "{}",
        fields(&[
            ("node", view.node_id),
            ("role", view.role),
            ("hub", view.hub_id),
            ("version", view.version),
            ("actor", view.actor),
            ("data dir", view.data_dir),
            ("started", wita(view.started_at_unix_ms)),
            ("uptime", duration(view.uptime_seconds)),
            ("documents", view.documents.to_string()),
            (
                "ledger period",
                if view.restoring {
                    "restoring from the hub (see `martctl sync status`)".to_string()
                } else {
                    format!("{} (open)", view.open_period)
                },
            ),
            ("movements", format!("{} this period", view.movements)),
            ("skus in stock", view.skus_in_stock.to_string()),
            ("durable writes", view.durable_writes.to_string()),
            ("flushes", view.flushes.to_string()),
            (
                "clock",
                if view.clock_warning.is_empty() {
                    "ok".to_string()
                } else {
                    format!("WARNING: {}", view.clock_warning)
                },
            ),
        ])
    );
    Ok(())
}

#[derive(Debug, Serialize)]
struct DocumentView {
    id: String,
    kind: String,
    owner: String,
    heads: Vec<String>,
    changes: u64,
    bytes_on_disk: u64,
    chunks_since_snapshot: u32,
    /// For ledger periods: open, sealed or archived.
    period_state: String,
    /// ok, quarantined (not served, not synced: see `martctl doc`) or refetching.
    state: String,
    /// Why it is quarantined.
    #[serde(skip_serializing_if = "String::is_empty")]
    reason: String,
}

pub async fn docs(node: &Node, format: Format) -> Result<()> {
    let req = node.request(ListDocumentsRequest {});
    let list = node.call(node.admin().list_documents(req)).await?;
    let views: Vec<DocumentView> = list
        .documents
        .into_iter()
        .map(|d| DocumentView {
            id: d.id,
            kind: d.kind,
            owner: d.owner,
            heads: d.heads,
            changes: d.changes,
            bytes_on_disk: d.bytes_on_disk,
            chunks_since_snapshot: d.chunks_since_snapshot,
            period_state: d.period_state,
            state: d.state,
            reason: d.reason,
        })
        .collect();
    if format == Format::Json {
        return print_json(&views);
    }
    let mut table = Table::new(&[
        "DOCUMENT", "KIND", "OWNER", "STATE", "CHANGES", "ON DISK", "CHUNKS", "HEADS",
    ])
    .right_align(&[4, 5, 6]);
    for d in &views {
        let archived = d.period_state == "archived";
        table.row(vec![
            d.id.clone(),
            d.kind.clone(),
            d.owner.clone(),
            match (d.state.as_str(), d.period_state.as_str()) {
                ("quarantined" | "refetching", _) => d.state.clone(),
                (_, "") => "-".to_string(),
                (_, period) => period.to_string(),
            },
            if archived {
                "-".to_string()
            } else {
                d.changes.to_string()
            },
            bytes(d.bytes_on_disk),
            d.chunks_since_snapshot.to_string(),
            short_heads(&d.heads),
        ]);
    }
    table.print_or("no documents");
    for d in views.iter().filter(|d| d.state == "quarantined") {
        println!(
            "\nquarantined: {}: {}\n  resolve with `martctl doc refetch {}` (or `martctl doc drop {}`)",
            d.id, d.reason, d.id, d.id
        );
    }
    Ok(())
}

/// Heads abbreviated to 8 hex digits each, like short git hashes.
fn short_heads(heads: &[String]) -> String {
    if heads.is_empty() {
        return "-".into();
    }
    let short: Vec<&str> = heads.iter().map(|h| h.get(..8).unwrap_or(h)).collect();
    short.join(",")
}

#[cfg(test)]
mod tests {
    use super::short_heads;

    #[test]
    fn abbreviates_heads() {
        assert_eq!(short_heads(&[]), "-");
        assert_eq!(
            short_heads(&["0123456789abcdef".into(), "abc".into()]),
            "01234567,abc"
        );
    }
}
