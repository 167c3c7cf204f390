//! A district through 14 simulated months (its clock moved forward between restarts,
//! some graceful, some SIGKILL, some while its link is cut so a period is sealed
//! offline): balances carry exactly across every period boundary, at the district and
//! at the hub; each period's movements add up to what was recorded in that month; a
//! request made before a boundary and retried after it is answered once; online quota
//! granted in one month is sold online in the next; a shipment dispatched in one month
//! is received after the sender moved on; settled periods are archived at both ends
//! and only the open period stays in memory.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mart_proto::v1::{
    Buyer, InTransitRequest, ListMovementsRequest, OrderActionRequest, PlaceOrderRequest,
    QuotaRequest, StatusRequest, TransferInRequest, TransferOutRequest,
};
use mart_tests::clock::{now_ms, wita_month_after, wita_ms};
use mart_tests::cluster::ledger_periods;
use mart_tests::hub::quota_line;
use mart_tests::ops::{receive, sale, stock_of};
use mart_tests::wait::wait_until;
use mart_tests::TestCluster;

const HUB: &str = "kupang";
const TTU: &str = "ttu";
const SIKKA: &str = "sikka";
const SKUS: [&str; 3] = ["TTU-MKP-060", "TTU-MKP-120", "TTU-TNN-SLD"];
const MONTHS: i64 = 14;
const CONVERGE: Duration = Duration::from_secs(90);

/// What the test recorded, independently of the nodes.
#[derive(Default)]
struct Model {
    stock: BTreeMap<String, i64>,
    /// Per period label, the net movement per SKU booked in it.
    by_period: BTreeMap<String, BTreeMap<String, i64>>,
}

impl Model {
    fn book(&mut self, period: &str, sku: &str, delta: i64) {
        *self.stock.entry(sku.into()).or_default() += delta;
        *self
            .by_period
            .entry(period.into())
            .or_default()
            .entry(sku.into())
            .or_default() += delta;
    }
}

async fn open_period(cluster: &TestCluster, node: &str) -> Result<String> {
    Ok(cluster
        .admin(node)
        .await?
        .status(StatusRequest {})
        .await?
        .into_inner()
        .open_period)
}

/// Net movement per SKU of one period of `outlet`, as `node` reads it.
async fn period_sums(
    cluster: &TestCluster,
    node: &str,
    outlet: &str,
    period: &str,
) -> Result<BTreeMap<String, i64>> {
    let movements = cluster
        .mart(node)
        .await?
        .list_movements(ListMovementsRequest {
            sku: String::new(),
            limit: 0,
            outlet: if node == outlet {
                String::new()
            } else {
                outlet.into()
            },
            period: period.into(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("{node}: movements of {outlet} in {period}"))?
        .into_inner()
        .movements;
    let mut sums = BTreeMap::new();
    for m in movements {
        *sums.entry(m.sku).or_insert(0) += m.delta;
    }
    sums.retain(|_, v| *v != 0);
    Ok(sums)
}

fn non_zero(map: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    map.iter()
        .filter(|(_, v)| **v != 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fourteen_months_carry_balances_across_every_boundary() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .hub(HUB)
        .district(TTU)
        .district(SIKKA)
        .start()
        .await?;
    // TTU's clock runs months ahead of the hub's: the operator vouches for it.
    cluster.set_accept_clock(TTU, true);
    let mut model = Model::default();
    let first = open_period(&cluster, TTU).await?;
    for sku in SKUS {
        let mut ttu = cluster.mart(TTU).await?;
        receive(&mut ttu, &format!("rcv-{sku}"), sku, 300).await?;
        model.book(&first, sku, 300);
    }
    let mut last_sale: Option<(String, String, i64)> = None;
    let mut order_id = None;
    let started = now_ms();
    let mut labels = vec![first.clone()];

    for i in 0..MONTHS {
        // The district's clock moves to the 10th of the next month, 10:00 WITA.
        let (year, month) = wita_month_after(started, i + 1);
        let label = format!("{year:04}-{month:02}");
        let offset = wita_ms(year, month, 10, 10) - now_ms();
        let offline = i % 4 == 1;
        if offline {
            cluster.cut(TTU);
        }
        cluster.set_clock_offset_ms(TTU, offset);
        if i % 3 == 2 {
            cluster.kill_and_restart(TTU).await?;
        } else {
            cluster.restart(TTU).await?;
        }
        let mut ttu = cluster.mart(TTU).await?;

        // A sale made just before the boundary, retried after it: answered once.
        if let Some((id, sku, quantity)) = &last_sale {
            let ack = ttu
                .record_sale(sale(id, sku, *quantity))
                .await
                .with_context(|| format!("month {label}: retry {id}"))?
                .into_inner();
            ensure!(
                ack.duplicate,
                "month {label}: retried {id} recorded again: {ack:?}"
            );
        }
        let before_first_write = open_period(&cluster, TTU).await?;
        ensure!(
            before_first_write == *labels.last().expect("a period"),
            "month {label}: the period turned before any write ({before_first_write})"
        );

        for (k, sku) in SKUS.iter().enumerate() {
            let quantity = if k as i64 == i % 3 { i % 5 + 3 } else { 1 };
            let id = format!("m{i}-s{k}");
            let ack = ttu
                .record_sale(sale(&id, sku, quantity))
                .await
                .with_context(|| format!("month {label}: sale {id}"))?
                .into_inner();
            model.book(&label, sku, -quantity);
            ensure!(
                ack.quantity_on_hand == model.stock[*sku],
                "month {label}: {sku} on hand {} after {id}, expected {}",
                ack.quantity_on_hand,
                model.stock[*sku]
            );
            last_sale = Some((id, sku.to_string(), quantity));
        }
        ensure!(
            open_period(&cluster, TTU).await? == label,
            "month {label}: the district did not open {label}"
        );
        labels.push(label.clone());

        // Online quota granted in one month, sold online in the next.
        if i == 2 {
            ttu.grant_quota(QuotaRequest {
                request_id: "grant-1".into(),
                sku: SKUS[1].into(),
                quantity: 6,
            })
            .await?;
        }
        if i == 3 {
            let order: String = order_id.clone().context("an order was placed")?;
            let ack = ttu
                .fulfil_order(OrderActionRequest {
                    request_id: "fulfil-1".into(),
                    order_id: order,
                })
                .await
                .context("fulfil the order placed last month")?
                .into_inner();
            model.book(&label, SKUS[1], -2);
            ensure!(ack.quantity_on_hand == model.stock[SKUS[1]]);
        }
        // A shipment dispatched now, received once the sender moved on.
        if i == 4 {
            ttu.record_transfer_out(TransferOutRequest {
                request_id: "tout-1".into(),
                transfer_id: "tr-1".into(),
                sku: SKUS[0].into(),
                quantity: 7,
                to_outlet: SIKKA.into(),
            })
            .await?;
            model.book(&label, SKUS[0], -7);
        }
        if i == 5 {
            cluster
                .mart(SIKKA)
                .await?
                .record_transfer_in(TransferInRequest {
                    request_id: "tin-1".into(),
                    transfer_id: "tr-1".into(),
                    sku: SKUS[0].into(),
                    quantity: 7,
                    from_outlet: TTU.into(),
                })
                .await
                .context("sikka receives what ttu shipped last month")?;
        }

        if offline {
            // Sealed and opened while the hub could not hear: both periods travel now.
            cluster.heal(TTU);
        }
        cluster
            .wait_converged(CONVERGE)
            .await
            .with_context(|| format!("month {label}"))?;
        if i == 2 {
            let placed = cluster
                .hub_service(HUB)
                .await?
                .place_order(PlaceOrderRequest {
                    request_id: "order-1".into(),
                    outlet: TTU.into(),
                    sku: SKUS[1].into(),
                    quantity: 2,
                    buyer: Buyer::Asn as i32,
                })
                .await
                .context("the hub sells online from the quota granted this month")?
                .into_inner();
            order_id = Some(placed.id);
            cluster.wait_converged(CONVERGE).await?;
        }

        // Balances carried exactly, at the district and at the hub.
        let expected = non_zero(&model.stock);
        let at_ttu = non_zero(&stock_of(&mut ttu, "").await?);
        ensure!(
            at_ttu == expected,
            "month {label}: ttu shows {at_ttu:?}, expected {expected:?}"
        );
        let mut hub_mart = cluster.mart(HUB).await?;
        let at_hub = non_zero(&stock_of(&mut hub_mart, TTU).await?);
        ensure!(
            at_hub == expected,
            "month {label}: the hub shows {at_hub:?} for ttu, expected {expected:?}"
        );
        // The period that just closed holds exactly that month's movements.
        let closed = &labels[labels.len() - 2];
        let want = non_zero(model.by_period.get(closed).unwrap_or(&BTreeMap::new()));
        let got = period_sums(&cluster, HUB, TTU, closed).await?;
        ensure!(
            got == want,
            "period {closed} at the hub adds up to {got:?}, expected {want:?}"
        );

        // Settled periods leave memory at both ends; only the open one stays.
        let ids = labels.clone();
        wait_until(
            &format!("month {label}: closed periods archived"),
            CONVERGE,
            || {
                let cluster = &cluster;
                let ids = ids.clone();
                let label = label.clone();
                async move {
                    for node in [TTU, HUB] {
                        let states = ledger_periods(&mut cluster.admin(node).await?, TTU).await?;
                        for id in &ids {
                            let want = if *id == label { "open" } else { "archived" };
                            if states.get(id).map(String::as_str) != Some(want) {
                                return Ok(false);
                            }
                        }
                    }
                    Ok(true)
                }
            },
        )
        .await?;
    }

    // Quota and shipments carried across the boundaries they crossed.
    let mut hub_mart = cluster.mart(HUB).await?;
    let quota = quota_line(&mut hub_mart, TTU, SKUS[1]).await?;
    ensure!(
        (quota.granted, quota.accepted, quota.fulfilled) == (6, 2, 2),
        "quota at the hub: {quota:?}"
    );
    let shipments = cluster
        .hub_service(HUB)
        .await?
        .in_transit(InTransitRequest {})
        .await?
        .into_inner()
        .shipments;
    let shipment = shipments
        .iter()
        .find(|s| s.transfer_id == "tr-1")
        .context("the hub knows tr-1")?;
    ensure!(
        (shipment.sent, shipment.received, shipment.state.as_str()) == (7, 7, "received"),
        "{shipment:?}"
    );
    // Every closed period is still there for audit, read from disk at the district.
    for closed in &labels[..labels.len() - 1] {
        let want = non_zero(model.by_period.get(closed).unwrap_or(&BTreeMap::new()));
        let got = period_sums(&cluster, TTU, TTU, closed).await?;
        ensure!(
            got == want,
            "archived period {closed} at ttu adds up to {got:?}, expected {want:?}"
        );
    }
    Ok(())
}
