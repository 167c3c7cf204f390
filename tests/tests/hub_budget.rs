//! Procurement budgets end to end: the hub allocates TTU a budget for the current
//! WITA year in `budget/province`, which reaches TTU by sync; TTU then refuses a
//! receipt costing more than what is left (FAILED_PRECONDITION, nothing stored)
//! unless it carries an over-budget reason, which is recorded and reported at TTU
//! and, after sync, at the hub. A district with no allocation is not limited. A
//! district calling the hub's service gets PERMISSION_DENIED, at its own node and
//! at the hub with its certificate, and nothing changes.

use std::time::Duration;

use mart_tests::clock::{now_ms, wita_year};

use anyhow::{ensure, Context, Result};
use mart_proto::tonic::Code;
use mart_proto::v1::hub_service_client::HubServiceClient;
use mart_proto::v1::{
    AllocateBudgetRequest, BudgetLine, BudgetRequest, DistrictSummariesRequest, InTransitRequest,
    LowStockRequest, OverBudgetReceipt, PlaceOrderRequest, ReceiptRequest, RegionalStockRequest,
};
use mart_tests::ops::{movements_of, on_hand, receipt, StoreState};
use mart_tests::pki::Role;
use mart_tests::{connect_tls, wait_until, HubClient, MartClient, TestCluster};

const HUB: &str = "kupang";
const TTU: &str = "ttu";
/// A district the hub allocates nothing to.
const SIKKA: &str = "sikka";
const SKU: &str = "TTU-MKP-060";
const UNIT_COST: i64 = 50_000;
const ALLOCATED: i64 = 1_000_000;
const CONVERGE: Duration = Duration::from_secs(30);

async fn budget_of(mart: &mut MartClient, district: &str) -> Result<BudgetLine> {
    let lines = mart
        .get_budget(BudgetRequest {
            district: district.into(),
            year: 0,
        })
        .await
        .with_context(|| format!("GetBudget {district:?}"))?
        .into_inner()
        .lines;
    match <[BudgetLine; 1]>::try_from(lines) {
        Ok([line]) => Ok(line),
        Err(lines) => anyhow::bail!("GetBudget {district:?} returned {lines:?}"),
    }
}

fn over(reason: &str, request: ReceiptRequest) -> ReceiptRequest {
    ReceiptRequest {
        over_budget_reason: reason.into(),
        ..request
    }
}

/// Every HubService call a district might make, each of which must be
/// PERMISSION_DENIED.
async fn every_hub_call_denied(hub: &mut HubClient, who: &str) -> Result<()> {
    let answers = [
        (
            "RegionalStock",
            hub.regional_stock(RegionalStockRequest::default())
                .await
                .err(),
        ),
        (
            "DistrictSummaries",
            hub.district_summaries(DistrictSummariesRequest {})
                .await
                .err(),
        ),
        (
            "LowStock",
            hub.low_stock(LowStockRequest::default()).await.err(),
        ),
        ("InTransit", hub.in_transit(InTransitRequest {}).await.err()),
        (
            "AllocateBudget",
            hub.allocate_budget(AllocateBudgetRequest {
                district: TTU.into(),
                year: wita_year(now_ms()),
                amount_rupiah: 999_000_000,
            })
            .await
            .err(),
        ),
        (
            "PlaceOrder",
            hub.place_order(PlaceOrderRequest {
                request_id: "forged-order".into(),
                outlet: TTU.into(),
                sku: SKU.into(),
                quantity: 1,
                ..Default::default()
            })
            .await
            .err(),
        ),
    ];
    for (call, refused) in answers {
        ensure!(
            refused
                .as_ref()
                .is_some_and(|s| s.code() == Code::PermissionDenied),
            "{who}: {call} answered {refused:?}, not PERMISSION_DENIED"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_beyond_the_budget_need_a_reason_and_the_hub_sees_them() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub(HUB)
        .district(SIKKA)
        .district(TTU)
        .start()
        .await?;
    let year = wita_year(now_ms());
    let mut hub = cluster.mart(HUB).await?;
    let mut hub_api = cluster.hub_service(HUB).await?;
    let mut ttu = cluster.mart(TTU).await?;
    let mut ttu_admin = cluster.admin(TTU).await?;

    // A receipt before any allocation is not limited; it makes the hub hold TTU's
    // ledger.
    let first = ttu
        .record_receipt(receipt("rcv-before", SKU, 1, UNIT_COST))
        .await
        .context("receipt before any allocation")?
        .into_inner();
    ensure!(first.quantity_on_hand == 1, "{first:?}");
    let unlimited = budget_of(&mut ttu, "").await?;
    ensure!(
        !unlimited.allocated && unlimited.year == year && unlimited.spent_rupiah == UNIT_COST,
        "ttu's budget before any allocation: {unlimited:?}"
    );

    let refused = hub_api
        .allocate_budget(AllocateBudgetRequest {
            district: TTU.into(),
            year: 1999,
            amount_rupiah: ALLOCATED,
        })
        .await;
    ensure!(
        matches!(&refused, Err(s) if s.code() == Code::InvalidArgument),
        "an allocation for 1999 got {refused:?}"
    );
    let line = hub_api
        .allocate_budget(AllocateBudgetRequest {
            district: TTU.into(),
            year,
            amount_rupiah: ALLOCATED,
        })
        .await
        .context("AllocateBudget")?
        .into_inner();
    ensure!(
        line.district == TTU
            && line.year == year
            && line.allocated
            && line.allocated_rupiah == ALLOCATED,
        "the hub's answer to the allocation: {line:?}"
    );

    wait_until("ttu holds budget/province", CONVERGE, || {
        let cluster = &cluster;
        async move {
            let docs = mart_tests::cluster::document_heads(&mut cluster.admin(TTU).await?).await?;
            Ok(docs.contains_key("budget/province"))
        }
    })
    .await?;
    let at_ttu = budget_of(&mut ttu, "").await?;
    let spent = UNIT_COST;
    ensure!(
        at_ttu.allocated
            && at_ttu.year == year
            && at_ttu.allocated_rupiah == ALLOCATED
            && at_ttu.spent_rupiah == spent
            && at_ttu.remaining_rupiah == ALLOCATED - spent,
        "ttu's budget once the allocation arrived: {at_ttu:?}"
    );

    // Within the budget, up to exactly what is left.
    let mut stock = 1;
    for (id, quantity) in [("rcv-1", 5), ("rcv-2", 14)] {
        let ack = ttu
            .record_receipt(receipt(id, SKU, quantity, UNIT_COST))
            .await
            .with_context(|| format!("receipt {id} within the budget"))?
            .into_inner();
        stock += quantity;
        ensure!(ack.quantity_on_hand == stock && !ack.duplicate, "{ack:?}");
    }
    let spent = spent + 19 * UNIT_COST;
    ensure!(spent == ALLOCATED, "the test spends the budget exactly");
    let at_ttu = budget_of(&mut ttu, "").await?;
    ensure!(
        at_ttu.spent_rupiah == spent && at_ttu.remaining_rupiah == 0,
        "ttu's budget spent to the last rupiah: {at_ttu:?}"
    );

    // Beyond it: refused, nothing stored.
    let before = StoreState::read(&mut ttu_admin).await?;
    let over_cost = 2 * 20_000;
    let beyond = receipt("rcv-over", SKU, 2, 20_000);
    let refused = ttu.record_receipt(beyond.clone()).await;
    match &refused {
        Err(s) if s.code() == Code::FailedPrecondition => ensure!(
            s.message().contains("over budget") && s.message().contains("Rp 0 left"),
            "the refusal does not say what is left: {s:?}"
        ),
        other => anyhow::bail!("a receipt of Rp {over_cost} with Rp 0 left got {other:?}"),
    }
    ensure!(
        StoreState::read(&mut ttu_admin).await? == before,
        "a refused receipt changed what ttu stores"
    );
    ensure!(
        on_hand(&mut ttu, SKU).await? == stock,
        "a refused receipt moved stock"
    );
    ensure!(
        !movements_of(&mut ttu, "")
            .await?
            .iter()
            .any(|m| m.id == "rcv-over"),
        "a refused receipt is listed"
    );

    // The same receipt with a reason is recorded (the refused request id is free).
    let reason = "harga pemasok naik, stok untuk pameran IKM";
    let ack = ttu
        .record_receipt(over(reason, beyond))
        .await
        .context("the receipt with an over-budget reason")?
        .into_inner();
    stock += 2;
    ensure!(
        ack.movement_id == "rcv-over" && !ack.duplicate && ack.quantity_on_hand == stock,
        "{ack:?}"
    );
    let spent = spent + over_cost;
    let expected_over = vec![OverBudgetReceipt {
        movement_id: "rcv-over".into(),
        cost_rupiah: over_cost,
        reason: reason.into(),
    }];
    let at_ttu = budget_of(&mut ttu, "").await?;
    ensure!(
        at_ttu.spent_rupiah == spent
            && at_ttu.remaining_rupiah == ALLOCATED - spent
            && at_ttu.remaining_rupiah < 0
            && at_ttu.over_budget == expected_over,
        "ttu's budget after the over-budget receipt: {at_ttu:?}"
    );
    // Over budget now, even the smallest receipt needs a reason.
    let refused = ttu.record_receipt(receipt("rcv-small", SKU, 1, 1)).await;
    ensure!(
        matches!(&refused, Err(s) if s.code() == Code::FailedPrecondition),
        "a receipt of Rp 1 over the budget got {refused:?}"
    );

    // The hub sees the same: spent includes it, remaining negative, the reason listed.
    cluster.wait_in_step(&[TTU], CONVERGE).await?;
    let at_hub = budget_of(&mut hub, TTU).await?;
    ensure!(
        at_hub == at_ttu,
        "the hub's view of ttu's budget {at_hub:?}, ttu's own {at_ttu:?}"
    );

    // A new allocation replaces the old one and reaches TTU.
    let raised = ALLOCATED + 100_000;
    hub_api
        .allocate_budget(AllocateBudgetRequest {
            district: TTU.into(),
            year,
            amount_rupiah: raised,
        })
        .await
        .context("AllocateBudget again")?;
    cluster.wait_in_step(&[TTU], CONVERGE).await?;
    let at_ttu = budget_of(&mut ttu, "").await?;
    ensure!(
        at_ttu.allocated_rupiah == raised && at_ttu.remaining_rupiah == raised - spent,
        "ttu's budget after the raise: {at_ttu:?}"
    );
    let fits = raised - spent;
    ttu.record_receipt(receipt("rcv-after-raise", SKU, 1, fits))
        .await
        .context("a receipt that fits the raised budget")?;
    let refused = ttu
        .record_receipt(receipt("rcv-past-raise", SKU, 1, 1))
        .await;
    ensure!(
        matches!(&refused, Err(s) if s.code() == Code::FailedPrecondition),
        "a receipt past the raised budget got {refused:?}"
    );

    // SIKKA has no allocation: not limited.
    let mut sikka = cluster.mart(SIKKA).await?;
    sikka
        .record_receipt(receipt("rcv-sikka", "SKA-MET-250", 100, 1_000_000))
        .await
        .context("a large receipt at a district without a budget")?;
    let line = budget_of(&mut sikka, "").await?;
    ensure!(
        !line.allocated && line.spent_rupiah == 100_000_000,
        "sikka's budget: {line:?}"
    );

    // Districts may not use the hub's service, neither at their own node nor at the
    // hub with their certificate; nothing changes at the hub. Both districts in step
    // first: sikka's receipt above must not reach the hub in the middle of the check.
    cluster.wait_in_step(&[TTU, SIKKA], CONVERGE).await?;
    let hub_admin = &mut cluster.admin(HUB).await?;
    let hub_before = StoreState::read(hub_admin).await?;
    let budget_before = budget_of(&mut hub, TTU).await?;
    every_hub_call_denied(&mut cluster.hub_service(TTU).await?, "ttu's own node").await?;
    let channel = connect_tls(&cluster.hub_url(), cluster.tls_of(TTU).client()?).await?;
    every_hub_call_denied(
        &mut HubServiceClient::new(channel),
        "ttu's certificate at the hub",
    )
    .await?;
    ensure!(
        StoreState::read(hub_admin).await? == hub_before
            && budget_of(&mut hub, TTU).await? == budget_before,
        "a district's calls to the hub's service changed the hub"
    );
    // An operator's certificate is let through (the refusals above are about who).
    let operator = cluster.pki().issue("ops-kupang", Role::Operator, &[])?;
    let channel = connect_tls(&cluster.hub_url(), operator.client()?).await?;
    let regional = HubServiceClient::new(channel)
        .regional_stock(RegionalStockRequest {
            sku: SKU.into(),
            district: String::new(),
        })
        .await
        .context("RegionalStock with an operator certificate")?
        .into_inner();
    ensure!(
        regional.skus.len() == 1 && regional.skus[0].total == on_hand(&mut ttu, SKU).await?,
        "{regional:?}"
    );
    Ok(())
}
