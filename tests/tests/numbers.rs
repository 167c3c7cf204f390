//! Numbers: no wrap, no absurd value (issue 10, item 3), against real nodes over gRPC.
//!
//! - every write RPC refuses a number beyond its documented bound
//!   (`node/src/domain/bounds.rs`) with INVALID_ARGUMENT naming the field, stores
//!   nothing, and the node goes on serving; `i64::MIN` above all, whose `abs()` wraps;
//! - a unit cost of Rp 10^12 is refused; ten receipts at the largest quantity and cost
//!   add up exactly (Rp 10^16 spent, no wrap), and the budget still refuses the next
//!   receipt without an over-budget reason.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use mart_proto::tonic::{Code, Response, Status};
use mart_proto::v1::{
    AddProductRequest, AdjustmentRequest, AllocateBudgetRequest, BudgetLine, BudgetRequest,
    PlaceOrderRequest, Product, QuotaRequest, ReceiptRequest, SaleRequest, StatusRequest,
    TransferInRequest, TransferOutRequest,
};
use mart_tests::clock::{now_ms, wita_year};
use mart_tests::ops::{on_hand, receipt, receive, StoreState};
use mart_tests::{wait_until, MartClient, NodeProcess, TestCluster};

const SKU: &str = "TTU-MKP-060";
/// Largest quantity of one movement (`bounds::MAX_QUANTITY`).
const MAX_QUANTITY: i64 = 1_000_000;
/// Largest unit price or cost in rupiah (`bounds::MAX_UNIT_RUPIAH`).
const MAX_UNIT_RUPIAH: i64 = 1_000_000_000;
const CONVERGE: Duration = Duration::from_secs(30);

/// Checks that `result` is INVALID_ARGUMENT naming `field`.
fn invalid<T: std::fmt::Debug>(
    case: &str,
    result: Result<Response<T>, Status>,
    field: &str,
) -> Result<()> {
    match result {
        Ok(answer) => bail!(
            "{case}: accepted, expected INVALID_ARGUMENT: {:?}",
            answer.into_inner()
        ),
        Err(status) => ensure!(
            status.code() == Code::InvalidArgument && status.message().contains(field),
            "{case}: got {:?} ({}), expected INVALID_ARGUMENT naming {field}",
            status.code(),
            status.message()
        ),
    }
    Ok(())
}

fn product(sku: &str, price_rupiah: i64, reorder_level: i64) -> AddProductRequest {
    AddProductRequest {
        product: Some(Product {
            sku: sku.into(),
            name: "Minyak kayu putih 60 ml".into(),
            producer_id: "ikm-humusu-wini".into(),
            category: "minyak".into(),
            unit: "60 ml bottle".into(),
            price_rupiah,
            reorder_level,
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_numbers_on_every_write_rpc_are_invalid_and_store_nothing() -> Result<()> {
    let node = NodeProcess::start_default().await?;
    let mut mart = node.mart().await?;
    let mut admin = node.admin().await?;
    receive(&mut mart, "rcv-fixture", SKU, 100).await?;
    let producer = mart
        .get_product(mart_proto::v1::GetProductRequest { sku: SKU.into() })
        .await?
        .into_inner()
        .producer_id;
    let before = StoreState::read(&mut admin).await?;

    let adjust = |quantity: i64| AdjustmentRequest {
        request_id: format!("adj-{quantity}"),
        sku: SKU.into(),
        quantity,
        reason: 1,
        note: String::new(),
    };
    let sale = |quantity: i64, price: Option<i64>| SaleRequest {
        request_id: format!("sal-{quantity}-{}", price.unwrap_or(0)),
        sku: SKU.into(),
        quantity,
        unit_price_rupiah: price,
        ..Default::default()
    };
    let out = |quantity: i64| TransferOutRequest {
        request_id: format!("tout-{quantity}"),
        transfer_id: "t-absurd".into(),
        sku: SKU.into(),
        quantity,
        to_outlet: "sikka".into(),
    };
    let into = |quantity: i64| TransferInRequest {
        request_id: format!("tin-{quantity}"),
        transfer_id: "t-absurd".into(),
        sku: SKU.into(),
        quantity,
        from_outlet: "sikka".into(),
    };
    let quota = |quantity: i64| QuotaRequest {
        request_id: format!("q-{quantity}"),
        sku: SKU.into(),
        quantity,
    };
    let new_product = |price: i64, reorder: i64| {
        let mut p = product(
            &format!("TTU-ABS-{}", price.unsigned_abs() % 997),
            price,
            reorder,
        );
        if let Some(p) = p.product.as_mut() {
            p.producer_id = producer.clone();
        }
        p
    };

    for quantity in [
        i64::MIN,
        i64::MIN + 1,
        -MAX_QUANTITY - 1,
        MAX_QUANTITY + 1,
        i64::MAX,
    ] {
        let case = format!("adjustment of {quantity}");
        invalid(
            &case,
            mart.record_adjustment(adjust(quantity)).await,
            "quantity",
        )?;
    }
    for quantity in [i64::MIN, -1, 0, MAX_QUANTITY + 1, i64::MAX] {
        let case = format!("receipt of {quantity}");
        let r = mart
            .record_receipt(receipt("rcv-q", SKU, quantity, 1))
            .await;
        invalid(&case, r, "quantity")?;
        let case = format!("sale of {quantity}");
        invalid(
            &case,
            mart.record_sale(sale(quantity, None)).await,
            "quantity",
        )?;
        let case = format!("transfer out of {quantity}");
        invalid(
            &case,
            mart.record_transfer_out(out(quantity)).await,
            "quantity",
        )?;
        let case = format!("transfer in of {quantity}");
        invalid(
            &case,
            mart.record_transfer_in(into(quantity)).await,
            "quantity",
        )?;
        let case = format!("quota grant of {quantity}");
        invalid(&case, mart.grant_quota(quota(quantity)).await, "quantity")?;
        let case = format!("quota return of {quantity}");
        invalid(&case, mart.return_quota(quota(quantity)).await, "quantity")?;
    }
    for rupiah in [
        i64::MIN,
        -1,
        MAX_UNIT_RUPIAH + 1,
        1_000_000_000_000,
        i64::MAX,
    ] {
        let case = format!("receipt at Rp {rupiah}");
        let r = mart.record_receipt(receipt("rcv-c", SKU, 1, rupiah)).await;
        invalid(&case, r, "unit_cost_rupiah")?;
        let case = format!("sale at Rp {rupiah}");
        let r = mart.record_sale(sale(1, Some(rupiah))).await;
        invalid(&case, r, "unit_price_rupiah")?;
        let case = format!("product at Rp {rupiah}");
        let r = mart.add_product(new_product(rupiah, 0)).await;
        invalid(&case, r, "price_rupiah")?;
    }
    for level in [i64::MIN, -1, MAX_QUANTITY + 1, i64::MAX] {
        let case = format!("product with reorder level {level}");
        let r = mart.add_product(new_product(35_000, level)).await;
        invalid(&case, r, "reorder_level")?;
    }
    let after = StoreState::read(&mut admin).await?;
    ensure!(
        after == before,
        "something was stored:\nbefore {before:?}\nafter  {after:?}"
    );

    // The node still serves, and the bounds themselves are accepted.
    admin.status(StatusRequest {}).await?;
    let ack = mart
        .record_receipt(receipt("rcv-max", SKU, MAX_QUANTITY, MAX_UNIT_RUPIAH))
        .await
        .context("a receipt at the largest quantity and cost")?
        .into_inner();
    ensure!(ack.quantity_on_hand == 100 + MAX_QUANTITY, "{ack:?}");
    let ack = mart
        .record_adjustment(adjust(-MAX_QUANTITY))
        .await
        .context("a write-off of the largest quantity")?
        .into_inner();
    ensure!(ack.quantity_on_hand == 100, "{ack:?}");
    ensure!(on_hand(&mut mart, SKU).await? == 100);
    Ok(())
}

async fn budget_of(mart: &mut MartClient) -> Result<BudgetLine> {
    let lines = mart
        .get_budget(BudgetRequest {
            district: String::new(),
            year: 0,
        })
        .await
        .context("GetBudget")?
        .into_inner()
        .lines;
    match <[BudgetLine; 1]>::try_from(lines) {
        Ok([line]) => Ok(line),
        Err(lines) => bail!("GetBudget returned {lines:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_costs_are_bounded_and_budget_spend_never_wraps() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .start()
        .await?;
    let year = wita_year(now_ms());
    let mut hub = cluster.hub_service("kupang").await?;
    let mut ttu = cluster.mart("ttu").await?;
    let mut ttu_admin = cluster.admin("ttu").await?;
    const ALLOCATED: i64 = 1_000_000_000_000;

    for amount in [i64::MIN, -1, 1_000_000_000_000_001, i64::MAX] {
        let r = hub
            .allocate_budget(AllocateBudgetRequest {
                district: "ttu".into(),
                year,
                amount_rupiah: amount,
            })
            .await;
        invalid(&format!("budget of Rp {amount}"), r, "amount_rupiah")?;
    }
    hub.allocate_budget(AllocateBudgetRequest {
        district: "ttu".into(),
        year,
        amount_rupiah: ALLOCATED,
    })
    .await
    .context("AllocateBudget")?;
    wait_until("ttu holds its allocation", CONVERGE, || {
        let mut ttu = ttu.clone();
        async move { Ok(budget_of(&mut ttu).await?.allocated) }
    })
    .await?;

    // One unit at Rp 10^12 fits the budget, but no product costs that much.
    let before = StoreState::read(&mut ttu_admin).await?;
    let r = ttu
        .record_receipt(receipt("rcv-trillion", SKU, 1, 1_000_000_000_000))
        .await;
    invalid("a unit cost of Rp 10^12", r, "unit_cost_rupiah")?;
    ensure!(StoreState::read(&mut ttu_admin).await? == before, "stored");

    // Ten receipts at the largest quantity and unit cost: Rp 10^16, added up exactly.
    for i in 0..10 {
        ttu.record_receipt(ReceiptRequest {
            over_budget_reason: "stock for the whole province".into(),
            ..receipt(&format!("rcv-max-{i}"), SKU, MAX_QUANTITY, MAX_UNIT_RUPIAH)
        })
        .await
        .with_context(|| format!("receipt {i} at the largest quantity and cost"))?;
    }
    let spent = 10 * MAX_QUANTITY * MAX_UNIT_RUPIAH;
    let line = budget_of(&mut ttu).await?;
    ensure!(
        line.spent_rupiah == spent && line.remaining_rupiah == ALLOCATED - spent,
        "ttu's budget after ten receipts of Rp 10^15: {line:?}"
    );
    // Over budget, a receipt without a reason is still refused.
    let before = StoreState::read(&mut ttu_admin).await?;
    let r = ttu.record_receipt(receipt("rcv-small", SKU, 1, 1)).await;
    ensure!(
        matches!(&r, Err(s) if s.code() == Code::FailedPrecondition),
        "a receipt over budget without a reason got {r:?}"
    );
    ensure!(StoreState::read(&mut ttu_admin).await? == before, "stored");

    // The hub's online orders are bounded the same way.
    for quantity in [i64::MIN, 0, MAX_QUANTITY + 1, i64::MAX] {
        let r = hub
            .place_order(PlaceOrderRequest {
                request_id: format!("ord-{quantity}"),
                outlet: "ttu".into(),
                sku: SKU.into(),
                quantity,
                ..Default::default()
            })
            .await;
        invalid(&format!("order of {quantity}"), r, "quantity")?;
    }
    Ok(())
}
