//! Short ways to make the requests and observations the tests repeat: receipts and
//! sales over gRPC, and [`StoreState`], what a node has stored, to compare before and
//! after a request that must store nothing.
//!
//! It must never decide what a test expects: helpers return what the node said.

use anyhow::{bail, ensure, Context, Result};
use mart_proto::v1::{
    ListDocumentsRequest, ListMovementsRequest, Movement, MovementAck, ReceiptRequest, SaleRequest,
    StatusRequest, StockRequest,
};

use crate::client::{AdminClient, MartClient};

/// A sale of `quantity` of `sku` at the catalog price, in the store, to the public.
pub fn sale(request_id: &str, sku: &str, quantity: i64) -> SaleRequest {
    SaleRequest {
        request_id: request_id.into(),
        sku: sku.into(),
        quantity,
        ..Default::default()
    }
}

/// A receipt of `quantity` of `sku` from the product's own producer.
pub fn receipt(
    request_id: &str,
    sku: &str,
    quantity: i64,
    unit_cost_rupiah: i64,
) -> ReceiptRequest {
    ReceiptRequest {
        request_id: request_id.into(),
        sku: sku.into(),
        quantity,
        unit_cost_rupiah,
        producer_id: String::new(),
        over_budget_reason: String::new(),
    }
}

/// Records a receipt and checks it was recorded as new.
pub async fn receive(
    mart: &mut MartClient,
    request_id: &str,
    sku: &str,
    quantity: i64,
) -> Result<MovementAck> {
    let ack = mart
        .record_receipt(receipt(request_id, sku, quantity, 20_000))
        .await
        .with_context(|| format!("receipt {request_id} of {quantity} {sku}"))?
        .into_inner();
    ensure!(
        !ack.duplicate,
        "receipt {request_id} was taken for a duplicate: {ack:?}"
    );
    Ok(ack)
}

/// Every movement of the node's ledger, oldest first.
pub async fn movements(mart: &mut MartClient) -> Result<Vec<Movement>> {
    Ok(mart
        .list_movements(ListMovementsRequest {
            sku: String::new(),
            limit: 0,
            outlet: String::new(),
            period: String::new(),
            ..Default::default()
        })
        .await
        .context("ListMovements")?
        .into_inner()
        .movements)
}

/// The document id of the open period of the node's own ledger,
/// `ledger/<node>/<open_period>`, as its Status reports it (not computed from the
/// test's clock: the node's clock may be shifted, and a month may turn during a
/// test). Fails while the node is restoring its ledger from the hub.
pub async fn open_ledger(admin: &mut AdminClient) -> Result<String> {
    let status = admin
        .status(StatusRequest {})
        .await
        .context("Status")?
        .into_inner();
    if status.restoring || status.open_period.is_empty() {
        bail!(
            "{} has no open ledger period: it is restoring its ledger from the hub \
             (restoring = {}, open_period = {:?})",
            status.node_id,
            status.restoring,
            status.open_period
        );
    }
    Ok(format!("ledger/{}/{}", status.node_id, status.open_period))
}

/// Stock on hand of one SKU.
pub async fn on_hand(mart: &mut MartClient, sku: &str) -> Result<i64> {
    let levels = mart
        .get_stock(StockRequest {
            sku: sku.into(),
            outlet: String::new(),
        })
        .await
        .with_context(|| format!("GetStock {sku}"))?
        .into_inner()
        .levels;
    ensure!(levels.len() == 1, "GetStock {sku} returned {levels:?}");
    Ok(levels[0].quantity)
}

/// What a node has stored, as far as its API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreState {
    pub movements: u64,
    /// Per document: id, heads and number of changes, in the node's order.
    pub documents: Vec<(String, Vec<String>, u64)>,
}

impl StoreState {
    pub async fn read(admin: &mut AdminClient) -> Result<Self> {
        let status = admin
            .status(StatusRequest {})
            .await
            .context("Status")?
            .into_inner();
        let documents = admin
            .list_documents(ListDocumentsRequest {})
            .await
            .context("ListDocuments")?
            .into_inner()
            .documents
            .into_iter()
            .map(|d| (d.id, d.heads, d.changes))
            .collect();
        Ok(StoreState {
            movements: status.movements,
            documents,
        })
    }
}

/// Records a sale and checks it was recorded as new.
pub async fn sell(
    mart: &mut MartClient,
    request_id: &str,
    sku: &str,
    quantity: i64,
) -> Result<MovementAck> {
    let ack = mart
        .record_sale(sale(request_id, sku, quantity))
        .await
        .with_context(|| format!("sale {request_id} of {quantity} {sku}"))?
        .into_inner();
    ensure!(
        !ack.duplicate,
        "sale {request_id} was taken for a duplicate: {ack:?}"
    );
    Ok(ack)
}

/// Records `sales` (request id, SKU, quantity), up to `in_flight` at a time over
/// clones of one client, each acknowledged as new.
pub async fn sell_all(
    mart: &MartClient,
    sales: Vec<(String, String, i64)>,
    in_flight: usize,
) -> Result<()> {
    let mut pending = sales.into_iter();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < in_flight.max(1) {
            let Some((id, sku, quantity)) = pending.next() else {
                break;
            };
            let mut mart = mart.clone();
            running.spawn(async move { sell(&mut mart, &id, &sku, quantity).await });
        }
        match running.join_next().await {
            None => return Ok(()),
            Some(joined) => {
                joined.context("a sale task panicked")??;
            }
        }
    }
}

/// Every movement of `outlet`'s ledger as this node holds it (empty: its own).
pub async fn movements_of(mart: &mut MartClient, outlet: &str) -> Result<Vec<Movement>> {
    Ok(mart
        .list_movements(ListMovementsRequest {
            sku: String::new(),
            limit: 0,
            outlet: outlet.into(),
            period: String::new(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("ListMovements outlet {outlet:?}"))?
        .into_inner()
        .movements)
}

/// Stock of every SKU with movements in `outlet`'s ledger as this node holds it
/// (empty: its own).
pub async fn stock_of(
    mart: &mut MartClient,
    outlet: &str,
) -> Result<std::collections::BTreeMap<String, i64>> {
    Ok(mart
        .get_stock(StockRequest {
            sku: String::new(),
            outlet: outlet.into(),
        })
        .await
        .with_context(|| format!("GetStock outlet {outlet:?}"))?
        .into_inner()
        .levels
        .into_iter()
        .map(|l| (l.sku, l.quantity))
        .collect())
}
