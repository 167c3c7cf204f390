//! `peers`, `sync status` and `sync now`: how far this node and each sync peer (at a
//! district its hub, at the hub every district) are from holding the same documents,
//! and a way to start a round and wait for it.
//!
//! It must never decide what is in sync on its own terms where the node has spoken:
//! `sync now` reports the node's verdict and exits 1 when the node says not in sync.
//! Per document and per peer it applies the node's rule (nothing to send, not behind,
//! and for a peer also connected), so `peers` and `sync now` never disagree.

use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use mart_proto::v1::{DocumentSync, ListPeersRequest, PeerInfo, SyncNowRequest};
use serde::Serialize;

use crate::clock::{ago, clock_offset, now_unix_ms, when_set, wita};
use crate::output::{bytes, duration, fields, print_json, Format, Table};
use crate::rpc::Node;

/// Seconds `sync now` gives the node by default (the node's own default too).
pub const DEFAULT_SYNC_SECS: u64 = 30;
/// The node caps a round at an hour.
const MAX_SYNC_SECS: u64 = 3600;
/// How much longer than the round martctl waits for the node's answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);
/// Longest last error shown in the `peers` table; JSON and `sync status` show it all.
const ERROR_COLUMN_CHARS: usize = 60;

#[derive(Debug, Subcommand)]
pub enum SyncCmd {
    /// Show each peer's connection, traffic and every shared document's state
    Status {
        /// Only this peer (node id)
        #[arg(long, value_name = "ID")]
        peer: Option<String>,
    },
    /// Start a sync round now and wait until every peer is in sync (exit 1 if not)
    Now(NowArgs),
    /// Follow a restore or a long catch-up with a progress bar until every peer is
    /// in sync (exit 1 if not within --for)
    Watch {
        /// Only this peer (node id)
        #[arg(long, value_name = "ID")]
        peer: Option<String>,
        /// Give up after this many seconds
        #[arg(long = "for", value_name = "SECS", default_value_t = 600)]
        timeout: u64,
    },
}

#[derive(Debug, Args)]
pub struct NowArgs {
    /// Seconds the node may take to get in sync (1-3600). Here it replaces the global
    /// --timeout: martctl connects within it and waits 5 s longer for the answer
    // Same id as the global `--timeout`, so clap keeps one `--timeout` in this
    // command (two args cannot share a long name) and one value for both.
    #[arg(
        id = "timeout",
        long = "timeout",
        value_name = "SECS",
        default_value_t = DEFAULT_SYNC_SECS,
        value_parser = clap::value_parser!(u64).range(1..=MAX_SYNC_SECS)
    )]
    pub timeout: u64,
}

impl NowArgs {
    /// The deadline of the `SyncNow` call: never shorter than the round plus a margin
    /// for the answer, whatever the global `--timeout` says.
    pub fn rpc_deadline(&self, global: Duration) -> Duration {
        global.max(Duration::from_secs(self.timeout) + ANSWER_MARGIN)
    }
}

/// One document as JSON: the node's fields plus the verdict.
#[derive(Debug, Serialize)]
struct DocView {
    doc_id: String,
    changes_to_send: u64,
    /// Changes the peer holds beyond this node's (a restore or catch-up to come).
    changes_to_receive: u64,
    behind: bool,
    /// Age of the oldest change the peer has not acknowledged; null when none waits.
    lag_ms: Option<i64>,
    in_sync: bool,
}

/// One peer as JSON: the node's fields plus the verdict.
#[derive(Debug, Serialize)]
struct PeerView {
    peer_id: String,
    connected: bool,
    /// When this node last dialed the peer (at the hub: the district last dialed
    /// it); null when never since it started.
    last_dial_unix_ms: Option<i64>,
    /// When a round with the peer last completed; null when never.
    last_success_unix_ms: Option<i64>,
    /// The whole last error; null when the last session had none.
    last_error: Option<String>,
    /// Changes this node sent since it started (acknowledged or not).
    changes_sent: u64,
    bytes_sent: u64,
    changes_received: u64,
    bytes_received: u64,
    refusals: u64,
    /// Changes this node holds that the peer has not acknowledged yet, over every
    /// document (sent and waiting for the acknowledgement, or not sent yet).
    changes_unacknowledged: u64,
    /// Connected, and every document in sync.
    in_sync: bool,
    /// Sync protocol version of the session; null if none since the node started.
    protocol: Option<u32>,
    /// The peer's clock minus this node's (ms); null when never seen.
    clock_offset_ms: Option<i64>,
    clock_seen_unix_ms: Option<i64>,
    /// The offset is beyond 5 minutes.
    clock_wrong: bool,
    documents: Vec<DocView>,
}

impl From<PeerInfo> for PeerView {
    fn from(p: PeerInfo) -> Self {
        let seen = when_set(p.clock_seen_unix_ms);
        PeerView {
            in_sync: peer_in_sync(&p),
            changes_unacknowledged: p
                .documents
                .iter()
                .map(|d| d.changes_to_send)
                .fold(0, u64::saturating_add),
            documents: p
                .documents
                .into_iter()
                .map(|d| DocView {
                    in_sync: doc_in_sync(&d),
                    doc_id: d.doc_id,
                    changes_to_send: d.changes_to_send,
                    changes_to_receive: d.changes_to_receive,
                    behind: d.behind,
                    lag_ms: (d.lag_ms >= 0).then_some(d.lag_ms),
                })
                .collect(),
            peer_id: p.peer_id,
            connected: p.connected,
            last_dial_unix_ms: when_set(p.last_attempt_unix_ms),
            last_success_unix_ms: when_set(p.last_success_unix_ms),
            last_error: (!p.last_error.is_empty()).then_some(p.last_error),
            changes_sent: p.changes_sent,
            bytes_sent: p.bytes_sent,
            changes_received: p.changes_received,
            bytes_received: p.bytes_received,
            refusals: p.refusals,
            protocol: (p.protocol > 0).then_some(p.protocol),
            clock_offset_ms: seen.map(|_| p.clock_offset_ms),
            clock_seen_unix_ms: seen,
            clock_wrong: p.clock_wrong,
        }
    }
}

/// A document is in sync with a peer when nothing waits to be sent and the peer has
/// reported nothing this node lacks.
fn doc_in_sync(d: &DocumentSync) -> bool {
    d.changes_to_send == 0 && !d.behind
}

/// The node's rule for `SyncNow`: connected and every shared document in sync. A peer
/// that is not connected may hold changes this node has not heard of.
fn peer_in_sync(p: &PeerInfo) -> bool {
    p.connected && p.documents.iter().all(doc_in_sync)
}

async fn list_peers(node: &Node, only: Option<String>) -> Result<Vec<PeerView>> {
    let req = node.request(ListPeersRequest {
        peer_id: only.unwrap_or_default(),
    });
    let list = node.call(node.admin().list_peers(req)).await?;
    Ok(list.peers.into_iter().map(PeerView::from).collect())
}

pub async fn peers(node: &Node, format: Format) -> Result<()> {
    let peers = list_peers(node, None).await?;
    if format == Format::Json {
        return print_json(&peers);
    }
    let now = now_unix_ms();
    let mut table = Table::new(&[
        "PEER",
        "CONNECTED",
        "LAST SYNC",
        "DOCS IN SYNC",
        "PENDING",
        "LAG",
        "CLOCK",
        "LAST ERROR",
    ])
    .right_align(&[3, 4, 5]);
    for p in &peers {
        let in_sync = p.documents.iter().filter(|d| d.in_sync).count();
        table.row(vec![
            p.peer_id.clone(),
            yes_no(p.connected),
            when(p.last_success_unix_ms, now),
            format!("{in_sync}/{}", p.documents.len()),
            p.changes_unacknowledged.to_string(),
            lag(p.documents.iter().filter_map(|d| d.lag_ms).max()),
            clock(p),
            truncate(
                p.last_error.as_deref().unwrap_or_default(),
                ERROR_COLUMN_CHARS,
            ),
        ]);
    }
    table.print_or("no sync peers");
    Ok(())
}

pub async fn sync(node: &Node, cmd: SyncCmd, format: Format) -> Result<()> {
    match cmd {
        SyncCmd::Status { peer } => status(node, peer, format).await,
        SyncCmd::Now(args) => now(node, &args, format).await,
        SyncCmd::Watch { peer, timeout } => {
            crate::progress::watch(node, peer, Duration::from_secs(timeout), format).await
        }
    }
}

async fn status(node: &Node, only: Option<String>, format: Format) -> Result<()> {
    let peers = list_peers(node, only).await?;
    if format == Format::Json {
        return print_json(&peers);
    }
    if peers.is_empty() {
        println!("no sync peers");
        return Ok(());
    }
    let now = now_unix_ms();
    for (i, p) in peers.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!(
            "{}",
            fields(&[
                ("peer", p.peer_id.clone()),
                ("link", link_words(p)),
                ("in sync", yes_no(p.in_sync)),
                ("last dial", when(p.last_dial_unix_ms, now)),
                ("last success", when(p.last_success_unix_ms, now)),
                (
                    "last error",
                    p.last_error.clone().unwrap_or_else(|| "none".into())
                ),
                (
                    "not yet acknowledged",
                    plural(p.changes_unacknowledged, "change"),
                ),
                ("sent since start", moved(p.changes_sent, p.bytes_sent),),
                (
                    "received since start",
                    moved(p.changes_received, p.bytes_received),
                ),
                ("refusals", p.refusals.to_string()),
                (
                    "protocol",
                    p.protocol.map_or("-".to_string(), |v| v.to_string()),
                ),
                ("clock offset", clock(p)),
            ])
        );
        println!();
        let mut table = Table::new(&["DOCUMENT", "TO SEND", "TO RECEIVE", "BEHIND", "LAG"])
            .right_align(&[1, 2, 4]);
        for d in &p.documents {
            table.row(vec![
                d.doc_id.clone(),
                d.changes_to_send.to_string(),
                d.changes_to_receive.to_string(),
                yes_no(d.behind),
                lag(d.lag_ms),
            ]);
        }
        table.print_or("no shared documents");
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct SyncNowView {
    in_sync: bool,
    elapsed_ms: u64,
    changes_sent: u64,
    bytes_sent: u64,
    changes_received: u64,
    bytes_received: u64,
    peers: Vec<PeerView>,
}

async fn now(node: &Node, args: &NowArgs, format: Format) -> Result<()> {
    let req = node.request(SyncNowRequest {
        timeout_seconds: u32::try_from(args.timeout).unwrap_or(u32::MAX),
    });
    let r = node.call(node.admin().sync_now(req)).await?;
    let view = SyncNowView {
        in_sync: r.in_sync,
        elapsed_ms: r.elapsed_ms,
        changes_sent: r.changes_sent,
        bytes_sent: r.bytes_sent,
        changes_received: r.changes_received,
        bytes_received: r.bytes_received,
        peers: r.peers.into_iter().map(PeerView::from).collect(),
    };
    if format == Format::Json {
        print_json(&view)?;
    } else {
        let verdict = if view.in_sync {
            "in sync"
        } else {
            "not in sync"
        };
        println!("{verdict} after {}", seconds(view.elapsed_ms));
        print!(
            "{}",
            fields(&[
                ("sent", moved(view.changes_sent, view.bytes_sent)),
                (
                    "received",
                    moved(view.changes_received, view.bytes_received)
                ),
            ])
        );
    }
    if view.in_sync {
        return Ok(());
    }
    let lagging: Vec<&PeerView> = view.peers.iter().filter(|p| !p.in_sync).collect();
    for p in &lagging {
        eprintln!("{}: {}", p.peer_id, why_not_in_sync(p));
    }
    let ids: Vec<&str> = lagging.iter().map(|p| p.peer_id.as_str()).collect();
    Err(anyhow!(
        "not in sync with {} after {} (see martctl sync status)",
        if ids.is_empty() {
            "every peer".to_string()
        } else {
            ids.join(", ")
        },
        seconds(view.elapsed_ms)
    ))
}

/// The peer's last error, or else what the node's numbers say.
fn why_not_in_sync(p: &PeerView) -> String {
    let mut reasons = Vec::new();
    if !p.connected {
        reasons.push("not connected".to_string());
    }
    let to_send: u64 = p.documents.iter().map(|d| d.changes_to_send).sum();
    if to_send > 0 {
        reasons.push(format!("{} to send", plural(to_send, "change")));
    }
    let behind = p.documents.iter().filter(|d| d.behind).count() as u64;
    if behind > 0 {
        reasons.push(format!("behind on {}", plural(behind, "document")));
    }
    if let Some(error) = &p.last_error {
        reasons.push(format!("last error: {error}"));
    }
    if reasons.is_empty() {
        "not in sync".into()
    } else {
        reasons.join("; ")
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// `connected`, or why not in a few words.
fn link_words(p: &PeerView) -> String {
    match (p.connected, p.last_dial_unix_ms) {
        (true, _) => "connected".into(),
        (false, None) => "no link (never dialed since the node started)".into(),
        (false, Some(_)) => "no link".into(),
    }
}

fn clock(p: &PeerView) -> String {
    match (p.clock_offset_ms, p.clock_seen_unix_ms) {
        (Some(offset), Some(seen)) => clock_offset(offset, seen, p.clock_wrong),
        _ => clock_offset(0, 0, false),
    }
}

/// `2026-11-30 14:05 WITA (3m ago)`, or `never`.
fn when(unix_ms: Option<i64>, now_ms: i64) -> String {
    match unix_ms {
        Some(ms) => format!("{} ({})", wita(ms), ago(ms, now_ms)),
        None => "never".into(),
    }
}

/// A lag as `4m 10s`, `<1s`, or `-` when nothing waits.
fn lag(ms: Option<i64>) -> String {
    match ms {
        None | Some(..0) => "-".into(),
        Some(0..1000) => "<1s".into(),
        Some(ms) => duration(ms as u64 / 1000),
    }
}

/// Elapsed time of a round: `0.4 s`, `1.2 s` below ten seconds, `30 s` above.
fn seconds(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} s", (ms + 500) / 1000)
    }
}

/// `3 changes, 1.2 KiB`.
fn moved(changes: u64, n: u64) -> String {
    format!("{}, {}", plural(changes, "change"), bytes(n))
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// At most `max` characters on one line, `…` marking a cut.
fn truncate(s: &str, max: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return if one_line.is_empty() {
            "-".into()
        } else {
            one_line
        };
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(to_send: u64, behind: bool, lag_ms: i64) -> DocumentSync {
        DocumentSync {
            doc_id: "ledger/sikka/2026-11".into(),
            changes_to_send: to_send,
            behind,
            lag_ms,
            changes_to_receive: 0,
        }
    }

    fn peer(connected: bool, documents: Vec<DocumentSync>) -> PeerInfo {
        PeerInfo {
            peer_id: "kupang".into(),
            connected,
            documents,
            ..Default::default()
        }
    }

    #[test]
    fn a_document_is_in_sync_with_nothing_to_send_and_not_behind() {
        assert!(doc_in_sync(&doc(0, false, -1)));
        assert!(!doc_in_sync(&doc(3, false, 2_000)));
        assert!(!doc_in_sync(&doc(0, true, -1)));
    }

    #[test]
    fn a_peer_is_in_sync_when_connected_with_every_document_in_sync() {
        assert!(peer_in_sync(&peer(true, vec![doc(0, false, -1)])));
        assert!(peer_in_sync(&peer(true, vec![])));
        assert!(!peer_in_sync(&peer(false, vec![doc(0, false, -1)])));
        assert!(!peer_in_sync(&peer(
            true,
            vec![doc(0, false, -1), doc(0, true, -1)]
        )));
        let view = PeerView::from(peer(true, vec![doc(0, false, -1), doc(2, false, 5)]));
        assert!(!view.in_sync);
        assert!(view.documents[0].in_sync);
        assert!(!view.documents[1].in_sync);
    }

    #[test]
    fn formats_lag() {
        assert_eq!(lag(None), "-");
        assert_eq!(lag(Some(0)), "<1s");
        assert_eq!(lag(Some(999)), "<1s");
        assert_eq!(lag(Some(9_500)), "9s");
        assert_eq!(lag(Some(250_000)), "4m 10s");
        assert_eq!(lag(Some(3 * 3_600_000 + 5 * 60_000)), "3h 05m 00s");
    }

    #[test]
    fn formats_last_sync() {
        let synced = 1_796_018_700_000; // 2026-11-30 14:05 WITA
        assert_eq!(
            when(Some(synced), synced + 3 * 60_000 + 20_000),
            "2026-11-30 14:05 WITA (3m ago)"
        );
        assert_eq!(when(None, synced), "never");
    }

    #[test]
    fn formats_round_time_and_traffic() {
        assert_eq!(seconds(0), "0.0 s");
        assert_eq!(seconds(1_234), "1.2 s");
        assert_eq!(seconds(30_012), "30 s");
        assert_eq!(moved(1, 512), "1 change, 512 B");
        assert_eq!(moved(12, 4_300), "12 changes, 4.2 KiB");
    }

    #[test]
    fn truncates_errors_for_the_table() {
        assert_eq!(truncate("", 60), "-");
        assert_eq!(truncate("link down", 60), "link down");
        assert_eq!(truncate("a\n  b", 60), "a b");
        let long = "transport error: tcp connect error: connection refused (os error 111)";
        let cut = truncate(long, 20);
        assert_eq!(cut, "transport error: tc…");
        assert_eq!(cut.chars().count(), 20);
        assert_eq!(truncate("abcd efgh", 6), "abcd…");
    }

    #[test]
    fn explains_why_a_peer_is_not_in_sync() {
        let mut p = PeerView::from(peer(false, vec![doc(3, true, 10), doc(1, false, 5)]));
        p.last_error = Some("hub refused: unknown district".into());
        assert_eq!(
            why_not_in_sync(&p),
            "not connected; 4 changes to send; behind on 1 document; \
             last error: hub refused: unknown district"
        );
    }

    #[test]
    fn waits_for_the_answer_longer_than_the_round() {
        let args = NowArgs { timeout: 30 };
        assert_eq!(
            args.rpc_deadline(Duration::from_secs(10)),
            Duration::from_secs(35)
        );
        assert_eq!(
            args.rpc_deadline(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }
}
