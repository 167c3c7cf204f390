//! Commands that move stock: `receive`, `adjust`, `transfer out|in` (`sell` is in
//! `sell.rs`). Each
//! sends one movement with a request id and prints the node's acknowledgement.
//!
//! It must never send a movement without a request id, and never retry one by itself:
//! when the outcome is unknown it tells the operator the id to retry with, so the node
//! can recognise the retry and the sale is counted once.

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use mart_proto::v1::{
    AdjustmentReason, AdjustmentRequest, MovementAck, ReceiptRequest, TransferInRequest,
    TransferOutRequest,
};
use serde::Serialize;

use crate::args::{new_request_id, rupiah, signed_qty};
use crate::output::{fields, print_json, Format};
use crate::rpc::{Node, RpcError};
pub use crate::sell::BuyerArg;

/// Id that lets the node recognise a retry; generated when not given.
#[derive(Debug, Args)]
pub struct RequestId {
    /// Idempotency key; repeat it to retry safely (default: a fresh martctl-<hex>)
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
}

impl RequestId {
    pub fn resolve(self) -> String {
        self.request_id.unwrap_or_else(new_request_id)
    }

    /// [`RequestId::resolve`] without consuming it.
    pub fn resolved(&self) -> String {
        self.request_id.clone().unwrap_or_else(new_request_id)
    }
}

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// Product SKU, e.g. TTU-MKP-060
    #[arg(long)]
    sku: String,
    /// Quantity in units of sale, at least 1
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    qty: i64,
    /// Unit cost in rupiah, e.g. 30000 or 30.000
    #[arg(long, value_name = "RP", value_parser = rupiah)]
    unit_cost: i64,
    /// Producer bought from (default: the product's own producer)
    #[arg(long)]
    producer: Option<String>,
    /// Record it even beyond the district's remaining budget, for this reason
    #[arg(long, value_name = "TEXT")]
    over_budget_reason: Option<String>,
    #[command(flatten)]
    id: RequestId,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReasonArg {
    /// A stock count found a different quantity
    Count,
    Damage,
    Expiry,
}

#[derive(Debug, Args)]
pub struct AdjustArgs {
    /// Product SKU, e.g. TTU-MKP-060
    #[arg(long)]
    sku: String,
    /// Signed change of stock, e.g. -2 or 3; never 0
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = signed_qty)]
    qty: i64,
    /// Why stock changed
    #[arg(long, value_enum)]
    reason: ReasonArg,
    /// Free text, e.g. what was damaged
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
    #[command(flatten)]
    id: RequestId,
}

#[derive(Debug, Subcommand)]
pub enum TransferCmd {
    /// Ship stock to another outlet
    Out {
        /// Transfer id shared by both outlets
        #[arg(long, value_name = "T")]
        transfer_id: String,
        /// Product SKU, e.g. TTU-MKP-060
        #[arg(long)]
        sku: String,
        /// Quantity in units of sale, at least 1
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        qty: i64,
        /// Receiving outlet's node id
        #[arg(long, value_name = "OUTLET")]
        to: String,
        #[command(flatten)]
        id: RequestId,
    },
    /// Receive stock shipped by another outlet
    In {
        /// Transfer id shared by both outlets
        #[arg(long, value_name = "T")]
        transfer_id: String,
        /// Product SKU, e.g. TTU-MKP-060
        #[arg(long)]
        sku: String,
        /// Quantity in units of sale, at least 1
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        qty: i64,
        /// Sending outlet's node id
        #[arg(long, value_name = "OUTLET")]
        from: String,
        #[command(flatten)]
        id: RequestId,
    },
}

pub async fn receive(node: &Node, a: ReceiveArgs, format: Format) -> Result<()> {
    let request_id = a.id.resolve();
    let req = node.request(ReceiptRequest {
        request_id: request_id.clone(),
        sku: a.sku,
        quantity: a.qty,
        unit_cost_rupiah: a.unit_cost,
        producer_id: a.producer.unwrap_or_default(),
        over_budget_reason: a.over_budget_reason.unwrap_or_default(),
    });
    let ack = node.call(node.mart().record_receipt(req)).await;
    report("receipt", &request_id, ack, format)
}

pub async fn adjust(node: &Node, a: AdjustArgs, format: Format) -> Result<()> {
    let request_id = a.id.resolve();
    let req = node.request(AdjustmentRequest {
        request_id: request_id.clone(),
        sku: a.sku,
        quantity: a.qty,
        reason: match a.reason {
            ReasonArg::Count => AdjustmentReason::Count,
            ReasonArg::Damage => AdjustmentReason::Damage,
            ReasonArg::Expiry => AdjustmentReason::Expiry,
        } as i32,
        note: a.note.unwrap_or_default(),
    });
    let ack = node.call(node.mart().record_adjustment(req)).await;
    report("adjustment", &request_id, ack, format)
}

pub async fn transfer(node: &Node, cmd: TransferCmd, format: Format) -> Result<()> {
    match cmd {
        TransferCmd::Out {
            transfer_id,
            sku,
            qty,
            to,
            id,
        } => {
            let request_id = id.resolve();
            let req = node.request(TransferOutRequest {
                request_id: request_id.clone(),
                transfer_id,
                sku,
                quantity: qty,
                to_outlet: to,
            });
            let ack = node.call(node.mart().record_transfer_out(req)).await;
            report("transfer out", &request_id, ack, format)
        }
        TransferCmd::In {
            transfer_id,
            sku,
            qty,
            from,
            id,
        } => {
            let request_id = id.resolve();
            let req = node.request(TransferInRequest {
                request_id: request_id.clone(),
                transfer_id,
                sku,
                quantity: qty,
                from_outlet: from,
            });
            let ack = node.call(node.mart().record_transfer_in(req)).await;
            report("transfer in", &request_id, ack, format)
        }
    }
}

#[derive(Debug, Serialize)]
struct AckView {
    movement_id: String,
    sku: String,
    quantity_on_hand: i64,
    document_id: String,
    duplicate: bool,
}

/// Prints the acknowledgement, or attaches the retry hint when the outcome is unknown.
/// Attaches, when the node may or may not have recorded the request, the hint to
/// repeat it with the same request id.
pub fn with_retry_hint<T>(
    what: &str,
    request_id: &str,
    outcome: Result<T, RpcError>,
) -> Result<T, RpcError> {
    outcome.map_err(|mut err| {
        if err.outcome_unknown() {
            err.hint = Some(format!(
                "the node may have recorded this {what}; to retry safely, repeat the same \
                 command with --request-id {request_id}"
            ));
        }
        err
    })
}

pub fn report(
    what: &str,
    request_id: &str,
    ack: Result<MovementAck, RpcError>,
    format: Format,
) -> Result<()> {
    let ack = with_retry_hint(what, request_id, ack)?;
    let view = AckView {
        movement_id: ack.movement_id,
        sku: ack.sku,
        quantity_on_hand: ack.quantity_on_hand,
        document_id: ack.document_id,
        duplicate: ack.duplicate,
    };
    if format == Format::Json {
        return print_json(&view);
    }
    if view.duplicate {
        println!("{what} already recorded with this request id; nothing new stored");
    } else {
        println!("{what} recorded");
    }
    print!(
        "{}",
        fields(&[
            ("movement", view.movement_id),
            ("sku", view.sku),
            ("on hand", view.quantity_on_hand.to_string()),
            ("document", view.document_id),
            (
                "duplicate",
                if view.duplicate { "yes" } else { "no" }.into()
            ),
        ])
    );
    Ok(())
}
