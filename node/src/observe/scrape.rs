//! `/metrics`: the process-wide Prometheus recorder of the `metrics` facade (the
//! event counters of [`crate::events`]), plus gauges read at each scrape from the
//! engine, the peer book, the data dir's file system and `/proc/self`.
//!
//! Naming follows Prometheus conventions: an `nttmart_` prefix, the unit in the
//! name, base units (seconds, bytes), `_total` on counters only; the `process_*`
//! metrics keep the names every client library gives them. Label values are node
//! ids, document kinds and fixed words: nothing a client can mint. It must never
//! write anything, and never fail a scrape over one missing figure.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::districts::{district_rows, peer_rows, SyncRow};
use super::process::ProcessStats;
use super::Observed;
use crate::engine::Trouble;
use crate::events::{self, SessionEnd};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Every (kind, state) of documents reported so far: one gone is reported as 0.
static DOCUMENT_SERIES: Mutex<BTreeSet<(&'static str, &'static str)>> = Mutex::new(BTreeSet::new());

/// Installs the process-wide recorder (once; later calls return the same handle).
/// `None` when another recorder was installed first (an embedding program's).
pub fn install_recorder() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(events::DURABLE_WRITE_SECONDS.into()),
                    events::DURABLE_WRITE_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(events::WRITES_PER_FLUSH.into()),
                        events::WRITES_PER_FLUSH_BUCKETS,
                    )
                })
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "another metrics recorder is installed: /metrics shows only the node's state"
                );
                return None;
            }
            describe();
            // Every series an alert or a dashboard reads exists from the start, at 0.
            metrics::counter!(events::SESSIONS_OPENED).increment(0);
            for reason in [SessionEnd::Closed, SessionEnd::Error, SessionEnd::Replaced] {
                metrics::counter!(events::SESSIONS_ENDED, "reason" => reason.as_str()).increment(0);
            }
            metrics::counter!(events::DURABLE_WRITES).increment(0);
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    describe_counter!(
        events::DURABLE_WRITES,
        "Writes made durable by a group-commit flush."
    );
    describe_histogram!(
        events::DURABLE_WRITE_SECONDS,
        "Seconds from a writer asking for durability to its flush returning."
    );
    describe_counter!(events::FLUSHES, "Group-commit flushes, by outcome.");
    describe_histogram!(
        events::WRITES_PER_FLUSH,
        "Writes carried by one group-commit flush."
    );
    describe_counter!(
        events::GRPC_CALLS,
        "gRPC calls answered, by RPC and status code."
    );
    describe_counter!(
        events::REFUSALS,
        "gRPC calls answered with a status other than OK, by RPC and code."
    );
    describe_counter!(events::SESSIONS_OPENED, "Sync sessions opened.");
    describe_counter!(events::SESSIONS_ENDED, "Sync sessions ended, by reason.");
    describe_gauge!(
        "nttmart_build_info",
        "Always 1: the build's version, the node's id and role."
    );
    describe_gauge!("nttmart_documents", "Documents, by kind and state.");
    describe_gauge!(
        "nttmart_document_store_bytes",
        "Bytes the documents take on disk."
    );
    describe_gauge!(
        "nttmart_data_dir_free_bytes",
        "Bytes free to this node on the data dir's file system."
    );
    describe_gauge!(
        "nttmart_data_dir_size_bytes",
        "Size in bytes of the data dir's file system."
    );
    describe_gauge!(
        "nttmart_restore_in_progress",
        "1 while the node restores its ledger from the hub."
    );
    describe_gauge!(
        "nttmart_restore_changes_remaining",
        "Changes the hub holds that a restoring node has not received yet."
    );
    describe_gauge!(
        "nttmart_hub_stale_after_seconds",
        "The hub's staleness threshold ([hub] stale_after_secs)."
    );
    describe_gauge!(
        "nttmart_peer_connected",
        "1 while a sync session with the peer is open."
    );
    describe_gauge!(
        "nttmart_peer_last_success_timestamp_seconds",
        "When the last sync round with the peer completed (0: never)."
    );
    describe_gauge!(
        "nttmart_peer_last_attempt_timestamp_seconds",
        "When this node last dialled the peer (0: never)."
    );
    describe_gauge!(
        "nttmart_peer_changes_pending",
        "Changes not yet synced with the peer, by direction (send, receive)."
    );
    describe_gauge!(
        "nttmart_peer_lag_seconds",
        "Age of the oldest change the peer has not acknowledged (0: none pending)."
    );
    describe_gauge!(
        "nttmart_peer_clock_offset_seconds",
        "The peer's clock minus this node's, as last seen."
    );
    describe_gauge!(
        "nttmart_peer_stale",
        "At the hub: 1 when a district's figures are stale."
    );
    describe_counter!(
        "nttmart_peer_changes_sent_total",
        "Changes sent to the peer since start."
    );
    describe_counter!(
        "nttmart_peer_changes_received_total",
        "Changes received from the peer since start."
    );
    describe_counter!(
        "nttmart_peer_bytes_sent_total",
        "Bytes of changes sent to the peer since start."
    );
    describe_counter!(
        "nttmart_peer_bytes_received_total",
        "Bytes of changes received from the peer since start."
    );
    describe_counter!(
        "nttmart_peer_refusals_total",
        "Changes or messages of the peer refused since start."
    );
}

/// The text `/metrics` answers now.
pub fn render(observed: &Observed) -> String {
    record_state(observed);
    let mut text = match install_recorder() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    };
    text.push_str(&ProcessStats::read().render());
    text
}

fn seconds(ms: Option<i64>) -> f64 {
    ms.map_or(0.0, |ms| ms as f64 / 1000.0)
}

fn record_state(observed: &Observed) {
    let engine = &observed.engine;
    let identity = engine.identity();
    gauge!(
        "nttmart_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "node" => identity.node.to_string(),
        "role" => identity.role()
    )
    .set(1.0);
    record_documents(observed);
    let restoring = engine.restoring();
    gauge!("nttmart_restore_in_progress").set(if restoring { 1.0 } else { 0.0 });
    let rows = if identity.is_hub() {
        gauge!("nttmart_hub_stale_after_seconds").set(observed.stale_after.as_secs_f64());
        district_rows(observed)
            .into_iter()
            .filter(|r| r.known)
            .collect()
    } else {
        peer_rows(observed)
    };
    let remaining: u64 = rows.iter().map(|r| r.to_receive).sum();
    gauge!("nttmart_restore_changes_remaining").set(if restoring { remaining as f64 } else { 0.0 });
    for row in &rows {
        record_peer(row);
    }
    if let Ok(fs) = nix::sys::statvfs::statvfs(&observed.data_dir) {
        let block = fs.fragment_size() as f64;
        gauge!("nttmart_data_dir_free_bytes").set(fs.blocks_available() as f64 * block);
        gauge!("nttmart_data_dir_size_bytes").set(fs.blocks() as f64 * block);
    }
}

fn record_peer(row: &SyncRow) {
    let peer = row.peer.clone();
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    gauge!("nttmart_peer_connected", "peer" => peer.clone()).set(flag(row.connected));
    gauge!("nttmart_peer_last_success_timestamp_seconds", "peer" => peer.clone())
        .set(seconds(row.last_success_ms));
    gauge!("nttmart_peer_last_attempt_timestamp_seconds", "peer" => peer.clone())
        .set(seconds(row.last_attempt_ms));
    gauge!("nttmart_peer_changes_pending", "peer" => peer.clone(), "direction" => "send")
        .set(row.to_send as f64);
    gauge!("nttmart_peer_changes_pending", "peer" => peer.clone(), "direction" => "receive")
        .set(row.to_receive as f64);
    gauge!("nttmart_peer_lag_seconds", "peer" => peer.clone()).set(seconds(row.lag_ms));
    gauge!("nttmart_peer_clock_offset_seconds", "peer" => peer.clone())
        .set(seconds(row.clock_offset_ms));
    if let Some(stale) = row.stale {
        gauge!("nttmart_peer_stale", "peer" => peer.clone()).set(flag(stale));
    }
    let t = row.traffic;
    counter!("nttmart_peer_changes_sent_total", "peer" => peer.clone()).absolute(t.changes_sent);
    counter!("nttmart_peer_changes_received_total", "peer" => peer.clone())
        .absolute(t.changes_received);
    counter!("nttmart_peer_bytes_sent_total", "peer" => peer.clone()).absolute(t.bytes_sent);
    counter!("nttmart_peer_bytes_received_total", "peer" => peer.clone())
        .absolute(t.bytes_received);
    counter!("nttmart_peer_refusals_total", "peer" => peer).absolute(t.refusals);
}

fn record_documents(observed: &Observed) {
    let Ok(documents) = observed.engine.documents() else {
        return;
    };
    let mut counts = std::collections::BTreeMap::<(&'static str, &'static str), u64>::new();
    let mut bytes = 0u64;
    for doc in &documents {
        let state = match (&doc.trouble, doc.period) {
            (Some(Trouble::Quarantined(_)), _) => "quarantined",
            (Some(Trouble::Refetching), _) => "refetching",
            (None, Some(period)) => period.as_str(),
            (None, None) => "loaded",
        };
        *counts.entry((doc.id.kind().as_str(), state)).or_default() += 1;
        bytes = bytes.saturating_add(doc.bytes_on_disk);
    }
    gauge!("nttmart_document_store_bytes").set(bytes as f64);
    let mut series = DOCUMENT_SERIES.lock().expect("document series lock");
    series.extend(counts.keys().copied());
    for (kind, state) in series.iter() {
        let n = counts.get(&(*kind, *state)).copied().unwrap_or(0);
        gauge!("nttmart_documents", "kind" => *kind, "state" => *state).set(n as f64);
    }
}
