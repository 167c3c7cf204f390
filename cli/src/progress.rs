//! `sync watch`: follows a restore or a long catch-up with a progress bar until the
//! node and every peer hold the same documents.
//!
//! Progress is what moved since the watch began against what the node still reports
//! pending (changes to send, and changes a peer said it holds beyond this node's), so
//! it needs no total known in advance. It must never change anything on the node.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use mart_proto::v1::{ListPeersRequest, PeerInfo, StatusRequest};
use serde::Serialize;

use crate::output::{bytes, print_json, Format};
use crate::rpc::Node;

/// How often the node is asked.
const POLL: Duration = Duration::from_millis(250);
/// Characters of the bar itself.
const BAR_WIDTH: usize = 30;
/// Without a terminal, a line at most this often (plus one at the end).
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// One look at the node: what moved so far and what is still pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Changes sent plus received, over every watched peer, since the node started.
    pub moved: u64,
    pub bytes: u64,
    /// Changes still to send plus changes peers hold beyond this node's.
    pub pending: u64,
    pub restoring: bool,
    /// Every watched peer has a live session with this node.
    pub linked: bool,
    /// Every watched peer connected and in sync, and no restore waiting.
    pub done: bool,
}

impl Snapshot {
    fn of(restoring: bool, peers: &[PeerInfo]) -> Self {
        // Counts a peer reported: added without overflow whatever they claim.
        let total = |values: &mut dyn Iterator<Item = u64>| values.fold(0u64, u64::saturating_add);
        let moved = total(
            &mut peers
                .iter()
                .map(|p| p.changes_sent.saturating_add(p.changes_received)),
        );
        let bytes = total(
            &mut peers
                .iter()
                .map(|p| p.bytes_sent.saturating_add(p.bytes_received)),
        );
        let pending = total(
            &mut peers
                .iter()
                .flat_map(|p| &p.documents)
                .map(|d| d.changes_to_send.saturating_add(d.changes_to_receive)),
        );
        let in_sync = peers.iter().all(|p| {
            p.connected
                && p.documents
                    .iter()
                    .all(|d| d.changes_to_send == 0 && !d.behind)
        });
        Snapshot {
            moved,
            bytes,
            pending,
            restoring,
            linked: !peers.is_empty() && peers.iter().all(|p| p.connected),
            done: in_sync && !restoring && !peers.is_empty(),
        }
    }
}

/// `[#########---------]  45%  13500/30000 changes  1.2 MiB  catching up`: progress
/// since `start` (what had moved when the watch began).
pub fn render(start: &Snapshot, now: &Snapshot) -> String {
    let moved = now.moved.saturating_sub(start.moved);
    let total = moved.saturating_add(now.pending);
    let fraction = if now.done || total == 0 {
        if now.done {
            1.0
        } else {
            0.0
        }
    } else {
        moved as f64 / total as f64
    };
    let filled = ((fraction * BAR_WIDTH as f64).round() as usize).min(BAR_WIDTH);
    let state = if now.done {
        "in sync"
    } else if !now.linked && now.restoring {
        "no link: waiting to restore from the hub"
    } else if !now.linked {
        "no link"
    } else if now.restoring {
        "restoring from the hub"
    } else if now.pending > 0 {
        "catching up"
    } else {
        "waiting for the peer"
    };
    format!(
        "[{}{}] {:>3}%  {moved}/{total} changes  {}  {state}",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        (fraction * 100.0).floor() as u64,
        bytes(now.bytes.saturating_sub(start.bytes)),
    )
}

async fn look(node: &Node, peer: &Option<String>) -> Result<Snapshot> {
    let status = node
        .call(node.admin().status(node.request(StatusRequest {})))
        .await?;
    let peers = node
        .call(node.admin().list_peers(node.request(ListPeersRequest {
            peer_id: peer.clone().unwrap_or_default(),
        })))
        .await?
        .peers;
    Ok(Snapshot::of(status.restoring, &peers))
}

#[derive(Debug, Serialize)]
struct WatchView {
    done: bool,
    elapsed_ms: u64,
    changes_moved: u64,
    bytes_moved: u64,
    pending: u64,
}

pub async fn watch(
    node: &Node,
    peer: Option<String>,
    timeout: Duration,
    format: Format,
) -> Result<()> {
    let began = Instant::now();
    let start = look(node, &peer).await?;
    let terminal = format == Format::Table && std::io::stdout().is_terminal();
    let mut last_line = Instant::now() - PLAIN_EVERY;
    let mut now = start;
    loop {
        if format == Format::Table {
            let line = render(&start, &now);
            if terminal {
                print!("\r{line}\x1b[K");
                std::io::stdout().flush()?;
            } else if now.done || last_line.elapsed() >= PLAIN_EVERY {
                println!("{line}");
                last_line = Instant::now();
            }
        }
        if now.done || began.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(POLL).await;
        now = look(node, &peer).await?;
    }
    if terminal {
        println!();
    }
    let view = WatchView {
        done: now.done,
        elapsed_ms: began.elapsed().as_millis() as u64,
        changes_moved: now.moved.saturating_sub(start.moved),
        bytes_moved: now.bytes.saturating_sub(start.bytes),
        pending: now.pending,
    };
    if format == Format::Json {
        print_json(&view)?;
    }
    if !view.done {
        bail!(
            "not in sync after {} s ({} changes pending{}; see martctl sync status)",
            timeout.as_secs(),
            view.pending,
            if now.restoring {
                ", still restoring"
            } else {
                ""
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(moved: u64, pending: u64, done: bool) -> Snapshot {
        Snapshot {
            moved,
            bytes: moved * 10,
            pending,
            restoring: false,
            linked: true,
            done,
        }
    }

    #[test]
    fn the_bar_counts_from_where_the_watch_began() {
        let start = snap(100, 300, false);
        let line = render(&start, &snap(250, 150, false));
        assert!(
            line.starts_with(&format!("[{}{}]", "#".repeat(15), "-".repeat(15))),
            "{line}"
        );
        assert!(
            line.contains(" 50%  150/300 changes  1.5 KiB  catching up"),
            "{line}"
        );
        let done = render(&start, &snap(400, 0, true));
        assert!(
            done.contains("100%  300/300 changes") && done.ends_with("in sync"),
            "{done}"
        );
    }

    #[test]
    fn nothing_pending_and_not_in_sync_is_waiting_not_done() {
        let start = snap(0, 0, false);
        let line = render(&start, &start);
        assert!(
            line.contains("  0%  0/0 changes") && line.ends_with("waiting for the peer"),
            "{line}"
        );
        let restoring = Snapshot {
            restoring: true,
            ..snap(0, 40, false)
        };
        assert!(render(&start, &restoring).ends_with("restoring from the hub"));
    }

    #[test]
    fn a_watch_without_a_link_says_so() {
        let start = snap(0, 5, false);
        let cut = Snapshot {
            linked: false,
            ..start
        };
        assert!(
            render(&start, &cut).ends_with("  no link"),
            "{}",
            render(&start, &cut)
        );
        let restoring = Snapshot {
            restoring: true,
            ..cut
        };
        assert!(render(&start, &restoring).ends_with("no link: waiting to restore from the hub"));
    }
}
