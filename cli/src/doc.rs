//! `doc drop` and `doc refetch`: how an operator resolves a document the node
//! quarantined (it failed to load or to derive its view), or any document a peer
//! should send again.
//!
//! It must never hide a refusal: the node refuses to drop what it may be the only one
//! to hold unless `--force`, and that refusal exits 1 with the node's reason.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use mart_proto::v1::{DropDocumentRequest, DropDocumentResponse, RefetchDocumentRequest};
use serde::Serialize;

use crate::output::{fields, print_json, Format};
use crate::rpc::Node;

#[derive(Debug, Subcommand)]
pub enum DocCmd {
    /// Move a document's records aside (nothing is deleted) and forget it, so a peer
    /// can send it again
    Drop(DropArgs),
    /// Drop a document, then ask the peers for it at once and wait until it arrives
    Refetch(RefetchArgs),
}

#[derive(Debug, Args)]
pub struct DropArgs {
    /// The document, as `martctl docs` lists it (e.g. ledger/ttu/2026-12)
    pub id: String,
    /// Drop it even if this node may be the only one to hold some of it (its own
    /// documents; at the hub, a district's archived periods)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RefetchArgs {
    #[command(flatten)]
    pub target: DropArgs,
    /// Seconds to wait for the document to arrive (1-3600)
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub wait: u32,
}

impl DocCmd {
    /// The deadline of the call: a refetch waits for the peer, the rest answer at once.
    pub fn rpc_deadline(&self, timeout: std::time::Duration) -> std::time::Duration {
        match self {
            DocCmd::Refetch(a) => timeout.max(std::time::Duration::from_secs(a.wait as u64 + 5)),
            DocCmd::Drop(_) => timeout,
        }
    }
}

#[derive(Debug, Serialize)]
struct DroppedView {
    doc_id: String,
    records_moved: u32,
    moved_to: String,
    was_quarantined: bool,
    /// Refetch only: whether the document arrived again, its heads and changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    received: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    heads: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<u64>,
}

fn view(r: DropDocumentResponse, refetch: bool) -> DroppedView {
    DroppedView {
        doc_id: r.doc_id,
        records_moved: r.records_moved,
        moved_to: r.moved_to,
        was_quarantined: r.was_quarantined,
        received: refetch.then_some(r.received),
        heads: r.heads,
        changes: (refetch && r.received).then_some(r.changes),
    }
}

pub async fn doc(node: &Node, cmd: DocCmd, format: Format) -> Result<()> {
    let (v, wait) = match cmd {
        DocCmd::Drop(a) => {
            let req = node.request(DropDocumentRequest {
                doc_id: a.id,
                force: a.force,
            });
            (
                view(node.call(node.admin().drop_document(req)).await?, false),
                0,
            )
        }
        DocCmd::Refetch(a) => {
            let req = node.request(RefetchDocumentRequest {
                doc_id: a.target.id,
                force: a.target.force,
                timeout_seconds: a.wait,
            });
            let answer = node.call(node.admin().refetch_document(req)).await?;
            (view(answer, true), a.wait)
        }
    };
    let missing = v.received == Some(false);
    if format == Format::Json {
        print_json(&v)?;
    } else {
        let mut lines = vec![
            ("document", v.doc_id.clone()),
            (
                "dropped",
                format!(
                    "{} records moved aside under {}{}",
                    v.records_moved,
                    v.moved_to,
                    if v.was_quarantined {
                        " (it was quarantined)"
                    } else {
                        ""
                    }
                ),
            ),
        ];
        match (v.received, v.changes) {
            (Some(true), Some(changes)) => {
                lines.push(("received", format!("again from a peer, {changes} changes")))
            }
            (Some(false), _) => lines.push(("received", "not yet".to_string())),
            _ => lines.push((
                "next",
                "a peer sends it again at its next sync round (or run `martctl doc refetch`)"
                    .to_string(),
            )),
        }
        print!("{}", fields(&lines));
    }
    if missing {
        bail!(
            "{} was dropped, but no peer sent it within {wait} s: it is asked for again at every sync round (see `martctl sync status`)",
            v.doc_id
        );
    }
    Ok(())
}
