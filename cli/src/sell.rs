//! `martctl sell` (one line, or a basket of several: `--sku A --qty 1 --sku B --qty
//! 2`) and `martctl import-sales FILE` (a day's paper receipts, sent over the
//! `RecordSales` stream, one basket per receipt).
//!
//! It must never send a sale without a request id, and never retry one by itself;
//! an import prints, for each receipt it could not record, the line of the file and
//! the node's reason, and repeating the import records nothing twice (each receipt's
//! request id is the one the file gives).

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use mart_proto::v1::{Buyer, Channel, MovementAck, Payment, SaleLine, SaleRequest};
use serde::Serialize;

use crate::args::rupiah;
use crate::movements::{with_retry_hint, RequestId};
use crate::output::{self, fields, print_json, Format};
use crate::rpc::Node;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChannelArg {
    Store,
    Online,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BuyerArg {
    /// A civil servant (aparatur sipil negara)
    Asn,
    Public,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PaymentArg {
    Cash,
    Qris,
    /// Bank transfer
    Transfer,
    /// Government invoice
    Invoice,
}

impl PaymentArg {
    fn to_pb(self) -> Payment {
        match self {
            PaymentArg::Cash => Payment::Cash,
            PaymentArg::Qris => Payment::Qris,
            PaymentArg::Transfer => Payment::BankTransfer,
            PaymentArg::Invoice => Payment::GovernmentInvoice,
        }
    }
}

#[derive(Debug, Args)]
pub struct SellArgs {
    /// Product SKU, e.g. TTU-MKP-060 (`martctl product list`); repeat for a basket of several lines
    #[arg(long, required = true)]
    sku: Vec<String>,
    /// Quantity of each --sku, in the same order, at least 1
    #[arg(long, value_name = "N", required = true, value_parser = clap::value_parser!(i64).range(1..))]
    qty: Vec<i64>,
    /// Unit price in rupiah of each --sku, in the same order (default: the catalog price)
    #[arg(long, value_name = "RP", value_parser = rupiah)]
    price: Vec<i64>,
    /// Where the sale happened
    #[arg(long, value_enum, default_value_t = ChannelArg::Store)]
    channel: ChannelArg,
    /// Who bought, for the monthly ASN report
    #[arg(long, value_enum, default_value_t = BuyerArg::Public)]
    buyer: BuyerArg,
    /// How the buyer paid; records the sale as a basket with a receipt number
    #[arg(long, value_enum)]
    payment: Option<PaymentArg>,
    /// When the till rang it up, in ms since the Unix epoch (default: now)
    #[arg(long, value_name = "UNIX_MS")]
    rung_up_at_ms: Option<i64>,
    #[command(flatten)]
    id: RequestId,
}

fn channel(c: ChannelArg) -> i32 {
    let c = match c {
        ChannelArg::Store => Channel::Store,
        ChannelArg::Online => Channel::Online,
    };
    c as i32
}

fn buyer(b: BuyerArg) -> i32 {
    let b = match b {
        BuyerArg::Asn => Buyer::Asn,
        BuyerArg::Public => Buyer::Public,
    };
    b as i32
}

/// The request `martctl sell` sends: the single-line form for one SKU without a
/// payment (what every node understands), the basket form otherwise.
fn sale_request(a: &SellArgs, request_id: String) -> Result<SaleRequest> {
    if a.sku.len() != a.qty.len() {
        bail!(
            "give one --qty per --sku, in the same order: {} SKUs, {} quantities",
            a.sku.len(),
            a.qty.len()
        );
    }
    if !a.price.is_empty() && a.price.len() != a.sku.len() {
        bail!(
            "give one --price per --sku, in the same order, or none: {} SKUs, {} prices",
            a.sku.len(),
            a.price.len()
        );
    }
    let mut request = SaleRequest {
        request_id,
        channel: channel(a.channel),
        buyer: buyer(a.buyer),
        payment: a.payment.map_or(0, |p| p.to_pb() as i32),
        rung_up_at_unix_ms: a.rung_up_at_ms,
        ..Default::default()
    };
    if a.sku.len() == 1 {
        request.sku = a.sku[0].clone();
        request.quantity = a.qty[0];
        request.unit_price_rupiah = a.price.first().copied();
    } else {
        request.lines = (0..a.sku.len())
            .map(|i| SaleLine {
                sku: a.sku[i].clone(),
                quantity: a.qty[i],
                unit_price_rupiah: a.price.get(i).copied(),
            })
            .collect();
    }
    Ok(request)
}

pub async fn sell(node: &Node, a: SellArgs, format: Format) -> Result<()> {
    let request_id = a.id.resolved();
    let request = sale_request(&a, request_id.clone())?;
    let ack = node
        .call(node.mart().record_sale(node.request(request)))
        .await;
    let ack = with_retry_hint("sale", &request_id, ack)?;
    print_ack(&ack, format)
}

#[derive(Debug, Serialize)]
struct LineView {
    sku: String,
    quantity_on_hand: i64,
}

#[derive(Debug, Serialize)]
struct SaleView {
    movement_id: String,
    sku: String,
    quantity_on_hand: i64,
    document_id: String,
    duplicate: bool,
    receipt_number: u64,
    total_rupiah: i64,
    lines: Vec<LineView>,
}

fn print_ack(ack: &MovementAck, format: Format) -> Result<()> {
    let view = SaleView {
        movement_id: ack.movement_id.clone(),
        sku: ack.sku.clone(),
        quantity_on_hand: ack.quantity_on_hand,
        document_id: ack.document_id.clone(),
        duplicate: ack.duplicate,
        receipt_number: ack.receipt_number,
        total_rupiah: ack.total_rupiah,
        lines: ack
            .lines
            .iter()
            .map(|l| LineView {
                sku: l.sku.clone(),
                quantity_on_hand: l.quantity_on_hand,
            })
            .collect(),
    };
    if format == Format::Json {
        return print_json(&view);
    }
    if view.duplicate {
        println!("sale already recorded with this request id; nothing new stored");
    } else {
        println!("sale recorded");
    }
    let mut pairs = vec![("movement", view.movement_id)];
    if view.receipt_number > 0 {
        pairs.push(("receipt", view.receipt_number.to_string()));
        pairs.push(("total", output::rupiah(view.total_rupiah)));
        for line in &view.lines {
            pairs.push(("on hand", format!("{} {}", line.quantity_on_hand, line.sku)));
        }
    } else {
        pairs.push(("sku", view.sku));
        pairs.push(("on hand", view.quantity_on_hand.to_string()));
    }
    pairs.push(("document", view.document_id));
    pairs.push((
        "duplicate",
        if view.duplicate { "yes" } else { "no" }.into(),
    ));
    print!("{}", fields(&pairs));
    Ok(())
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// CSV file of receipts, one line per basket line:
    /// `receipt_id,sku,quantity[,unit_price[,payment[,buyer[,rung_up_at_ms]]]]`.
    /// Consecutive lines with the same receipt id are one basket; its first line's
    /// payment, buyer and time count. A first line starting with `receipt_id` is a
    /// header.
    file: std::path::PathBuf,
}

/// One basket read from the file, with the file line it starts on.
struct Receipt {
    line: usize,
    request: SaleRequest,
}

fn parse_receipts(text: &str) -> Result<Vec<Receipt>> {
    let mut receipts: Vec<Receipt> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let raw = raw.trim();
        if raw.is_empty() || (line == 1 && raw.starts_with("receipt_id")) {
            continue;
        }
        let cols: Vec<&str> = raw.split(',').map(str::trim).collect();
        if cols.len() < 3 {
            bail!("line {line}: expected receipt_id,sku,quantity[,...], got {raw:?}");
        }
        let quantity = cols[2]
            .parse::<i64>()
            .with_context(|| format!("line {line}: quantity {:?}", cols[2]))?;
        let price = match cols.get(3).filter(|p| !p.is_empty()) {
            Some(p) => Some(rupiah(p).map_err(|e| anyhow::anyhow!("line {line}: {e}"))?),
            None => None,
        };
        let sale_line = SaleLine {
            sku: cols[1].to_string(),
            quantity,
            unit_price_rupiah: price,
        };
        if let Some(last) = receipts.last_mut() {
            if last.request.request_id == cols[0] {
                last.request.lines.push(sale_line);
                continue;
            }
        }
        let payment = match cols.get(4).copied().unwrap_or("") {
            "" | "cash" => Payment::Cash,
            "qris" => Payment::Qris,
            "transfer" => Payment::BankTransfer,
            "invoice" => Payment::GovernmentInvoice,
            other => bail!("line {line}: payment {other:?}: cash, qris, transfer or invoice"),
        };
        let buyer_pb = match cols.get(5).copied().unwrap_or("") {
            "" | "public" => Buyer::Public,
            "asn" => Buyer::Asn,
            other => bail!("line {line}: buyer {other:?}: public or asn"),
        };
        let rung_up = match cols.get(6).filter(|t| !t.is_empty()) {
            Some(t) => Some(
                t.parse::<i64>()
                    .with_context(|| format!("line {line}: rung_up_at_ms {t:?}"))?,
            ),
            None => None,
        };
        receipts.push(Receipt {
            line,
            request: SaleRequest {
                request_id: cols[0].to_string(),
                lines: vec![sale_line],
                channel: Channel::Store as i32,
                buyer: buyer_pb as i32,
                payment: payment as i32,
                rung_up_at_unix_ms: rung_up,
                ..Default::default()
            },
        });
    }
    Ok(receipts)
}

#[derive(Debug, Default, Serialize)]
struct ImportView {
    receipts: usize,
    recorded: usize,
    duplicates: usize,
    refused: Vec<String>,
}

pub async fn import_sales(node: &Node, a: ImportArgs, format: Format) -> Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let receipts = parse_receipts(&text)?;
    let starts: Vec<usize> = receipts.iter().map(|r| r.line).collect();
    let requests: Vec<SaleRequest> = receipts.into_iter().map(|r| r.request).collect();
    let mut view = ImportView {
        receipts: requests.len(),
        ..ImportView::default()
    };
    let stream = tokio_stream::iter(requests);
    let mut answers = node
        .call(node.mart().record_sales(node.request(stream)))
        .await?;
    let mut answered = 0;
    while let Some(result) = answers
        .message()
        .await
        .map_err(|s| anyhow::anyhow!("the node ended the import: {}", s.message()))?
    {
        answered += 1;
        let line = starts.get(result.index as usize).copied().unwrap_or(0);
        match result.ack {
            Some(ack) if ack.duplicate => view.duplicates += 1,
            Some(_) => view.recorded += 1,
            None => view
                .refused
                .push(format!("line {line}: {}", result.message)),
        }
    }
    if answered != view.receipts {
        bail!(
            "the node answered {answered} of {} receipts: repeat the import (recorded receipts are not recorded twice)",
            view.receipts
        );
    }
    if format == Format::Json {
        print_json(&view)?;
    } else {
        print!(
            "{}",
            fields(&[
                ("receipts", view.receipts.to_string()),
                ("recorded", view.recorded.to_string()),
                ("duplicates", view.duplicates.to_string()),
                ("refused", view.refused.len().to_string()),
            ])
        );
        for refusal in &view.refused {
            println!("refused: {refusal}");
        }
    }
    if !view.refused.is_empty() {
        bail!("{} receipts refused", view.refused.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_group_consecutive_lines() {
        let text =
            "receipt_id,sku,quantity,unit_price,payment\nr1,A,1,,qris\nr1,B,2,5.000\nr2,A,3\n";
        let receipts = parse_receipts(text).unwrap();
        assert_eq!(receipts.len(), 2);
        assert_eq!(receipts[0].line, 2);
        assert_eq!(receipts[0].request.lines.len(), 2);
        assert_eq!(receipts[0].request.payment, Payment::Qris as i32);
        assert_eq!(receipts[0].request.lines[1].unit_price_rupiah, Some(5_000));
        assert_eq!(receipts[1].line, 4);
        assert!(parse_receipts("r1,A").is_err());
        assert!(parse_receipts("r1,A,1,,bitcoin").is_err());
    }
}
