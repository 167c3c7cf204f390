//! `RecordSale` in both its forms (one line, as old clients send it; a basket) and
//! the `RecordSales` stream, which records many sales over one stream with up to
//! [`WINDOW`] in flight (sharing flushes), answering each in order once durable.
//!
//! It must never decide a rule of the domain (the engine does), never let one
//! refused sale end the stream, and never hold more than [`WINDOW`] requests of one
//! stream in memory.

use std::sync::Arc;

use mart_proto::tonic::{Status, Streaming};
use mart_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::convert::{self, ack_to_pb};
use super::status::{invalid, to_status};
use super::MAX_REQUEST_BYTES;
use crate::domain::basket::Payment;
use crate::domain::movement::MovementKind;
use crate::engine::{BasketAck, BasketLine, BasketRequest, Engine, MovementRequest};

/// Sales of one stream recorded at once, at most; the stream's reader waits beyond.
pub const WINDOW: usize = 64;

fn payment(value: i32) -> Result<Payment, Status> {
    match pb::Payment::try_from(value) {
        Ok(pb::Payment::Unspecified | pb::Payment::Cash) => Ok(Payment::Cash),
        Ok(pb::Payment::Qris) => Ok(Payment::Qris),
        Ok(pb::Payment::BankTransfer) => Ok(Payment::Transfer),
        Ok(pb::Payment::GovernmentInvoice) => Ok(Payment::Invoice),
        Err(_) => Err(invalid("payment", format!("unknown payment {value}"))),
    }
}

/// Whether a request is a basket: it has lines, or asks for what only a basket
/// records (a payment method, a time rung up).
fn is_basket(r: &pb::SaleRequest) -> bool {
    !r.lines.is_empty() || r.payment != 0 || r.rung_up_at_unix_ms.is_some()
}

fn basket_from_pb(r: pb::SaleRequest) -> Result<BasketRequest, Status> {
    let lines = if r.lines.is_empty() {
        vec![BasketLine {
            sku: r.sku,
            quantity: r.quantity,
            unit_price: r.unit_price_rupiah,
        }]
    } else if !r.sku.is_empty() || r.quantity != 0 || r.unit_price_rupiah.is_some() {
        return Err(invalid(
            "sku",
            "give either `sku` and `quantity` (one line) or `lines`, not both",
        ));
    } else {
        r.lines
            .into_iter()
            .map(|l| BasketLine {
                sku: l.sku,
                quantity: l.quantity,
                unit_price: l.unit_price_rupiah,
            })
            .collect()
    };
    Ok(BasketRequest {
        request_id: Some(r.request_id),
        lines,
        channel: convert::channel(r.channel)?,
        buyer: convert::buyer(r.buyer)?,
        payment: payment(r.payment)?,
        rung_up_ms: r.rung_up_at_unix_ms,
    })
}

fn basket_ack_to_pb(ack: BasketAck) -> pb::MovementAck {
    let first = ack.lines.first().cloned();
    pb::MovementAck {
        movement_id: ack.basket_id,
        sku: first.as_ref().map(|l| l.sku.clone()).unwrap_or_default(),
        quantity_on_hand: first.map_or(0, |l| l.quantity_on_hand),
        document_id: ack.document.to_string(),
        duplicate: ack.duplicate,
        receipt_number: ack.receipt,
        lines: ack
            .lines
            .into_iter()
            .map(|l| pb::LineStock {
                sku: l.sku,
                quantity_on_hand: l.quantity_on_hand,
            })
            .collect(),
        total_rupiah: ack.total_rupiah,
        at_unix_ms: ack.at_ms,
    }
}

/// Records one sale request, in whichever form it came.
pub async fn record_sale(engine: &Engine, r: pb::SaleRequest) -> Result<pb::MovementAck, Status> {
    if is_basket(&r) {
        let request = basket_from_pb(r)?;
        let ack = engine.record_basket(request).await.map_err(to_status)?;
        return Ok(basket_ack_to_pb(ack));
    }
    let request = MovementRequest {
        request_id: Some(r.request_id),
        sku: r.sku,
        kind: MovementKind::Sale {
            quantity: r.quantity,
            unit_price: r.unit_price_rupiah,
            channel: convert::channel(r.channel)?,
            buyer: convert::buyer(r.buyer)?,
            order: None,
            basket: None,
        },
    };
    let ack = engine.record(request).await.map_err(to_status)?;
    Ok(ack_to_pb(ack))
}

fn result_of(index: u64, outcome: Result<pb::MovementAck, Status>) -> pb::SaleResult {
    match outcome {
        Ok(ack) => pb::SaleResult {
            index,
            ack: Some(ack),
            code: 0,
            message: String::new(),
        },
        Err(status) => pb::SaleResult {
            index,
            ack: None,
            code: status.code() as i32,
            message: status.message().to_string(),
        },
    }
}

/// The answers to a `RecordSales` stream: each request is recorded in a task of its
/// own (at most [`WINDOW`] at once) and answered in request order.
pub fn record_stream(
    engine: Arc<Engine>,
    mut inbound: Streaming<pb::SaleRequest>,
) -> ReceiverStream<Result<pb::SaleResult, Status>> {
    let (out_tx, out_rx) = mpsc::channel(WINDOW);
    let (pending_tx, mut pending_rx) =
        mpsc::channel::<tokio::task::JoinHandle<pb::SaleResult>>(WINDOW);
    let errors = out_tx.clone();
    tokio::spawn(async move {
        let mut index = 0u64;
        loop {
            let request = match inbound.message().await {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(error = %status, "sales stream ended by the client");
                    break;
                }
            };
            let size = mart_proto::prost::Message::encoded_len(&request);
            let engine = engine.clone();
            let task = tokio::spawn(async move {
                let outcome = if size > MAX_REQUEST_BYTES {
                    Err(Status::resource_exhausted(format!(
                        "a request of {size} bytes exceeds the limit of {MAX_REQUEST_BYTES} bytes"
                    )))
                } else {
                    record_sale(&engine, request).await
                };
                result_of(index, outcome)
            });
            if pending_tx.send(task).await.is_err() {
                break;
            }
            index += 1;
        }
    });
    tokio::spawn(async move {
        while let Some(task) = pending_rx.recv().await {
            let result = match task.await {
                Ok(result) => result,
                Err(e) => {
                    let _ = errors
                        .send(Err(Status::internal(format!("a sale task failed: {e}"))))
                        .await;
                    break;
                }
            };
            if out_tx.send(Ok(result)).await.is_err() {
                break;
            }
        }
    });
    ReceiverStream::new(out_rx)
}
