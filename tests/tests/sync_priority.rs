//! Priorities on a slow link (issue 12): an online order placed at the hub while a
//! district catches up a month's backlog over a slow link reaches the outlet before
//! the backlog has finished, and the catch-up then completes with every movement
//! once at the hub.
//!
//! The link plays 8 kbit/s each way with a 100 ms one-way delay, so the backlog
//! (some 32 KB) takes half a minute while the order's few hundred bytes take well
//! under a second: the test asserts the order, not a time.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mart_proto::v1::{Buyer, ListOrdersRequest, ListQuotaRequest, PlaceOrderRequest, QuotaRequest};
use mart_tests::link::{exactly_once_at_hub, sell_offline};
use mart_tests::ops::{movements_of, receive};
use mart_tests::proxy::RuralLink;
use mart_tests::{wait_until, TestCluster};

const HUB: &str = "kupang";
const TTU: &str = "ttu";
const SKU: &str = "TTU-MKP-060";
/// Some 32 KB on the wire: half a minute of the link below.
const SALES: usize = 4_000;
const QUOTA: i64 = 10;
const CONVERGE: Duration = Duration::from_secs(90);
/// The backlog over the slow link, with room for a loaded machine.
const CATCH_UP: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_placed_during_a_catch_up_reaches_the_outlet_before_the_backlog() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub(HUB)
        .district(TTU)
        .start()
        .await?;
    let mut ttu = cluster.mart(TTU).await?;
    let mut hub = cluster.mart(HUB).await?;
    receive(&mut ttu, "rcv-1", SKU, SALES as i64 + 100).await?;
    ttu.grant_quota(QuotaRequest {
        request_id: "grant-1".into(),
        sku: SKU.into(),
        quantity: QUOTA,
    })
    .await
    .context("GrantQuota")?;
    cluster.wait_converged(CONVERGE).await?;
    wait_until("the hub holds ttu's quota", CONVERGE, || {
        let mut hub = hub.clone();
        async move {
            let quota = hub
                .list_quota(ListQuotaRequest { outlet: TTU.into() })
                .await?
                .into_inner();
            Ok(quota
                .lines
                .iter()
                .any(|l| l.sku == SKU && l.available == QUOTA))
        }
    })
    .await?;
    let before = movements_of(&mut hub, TTU).await?.len();

    // A month of sales while cut off, then the link comes back slow.
    let sales: Vec<(String, String, i64)> = (0..SALES)
        .map(|i| (format!("sale-{i}"), SKU.to_string(), 1))
        .collect();
    sell_offline(&cluster, &[TTU], &sales, 32).await?;
    cluster.proxy(TTU).play(RuralLink {
        rate_bytes_per_s: 1_000,
        one_way_delay: Duration::from_millis(100),
        drops_every: None,
        seed: 0,
    });
    cluster.heal(TTU);
    cluster.sync_now(TTU, 1).await?;
    wait_until("the hub has begun taking the backlog", CATCH_UP, || {
        let mut hub = hub.clone();
        async move { Ok(movements_of(&mut hub, TTU).await?.len() > before) }
    })
    .await?;

    let order = cluster
        .hub_service(HUB)
        .await?
        .place_order(PlaceOrderRequest {
            request_id: "web-1".into(),
            outlet: TTU.into(),
            sku: SKU.into(),
            quantity: 2,
            buyer: Buyer::Asn as i32,
        })
        .await
        .context("PlaceOrder")?
        .into_inner();
    ensure!(order.status == "accepted", "{order:?}");
    wait_until("the order reaches ttu", CATCH_UP, || {
        let mut ttu = ttu.clone();
        async move {
            let orders = ttu
                .list_orders(ListOrdersRequest::default())
                .await?
                .into_inner();
            Ok(orders.orders.iter().any(|o| o.id == "web-1"))
        }
    })
    .await?;
    let at_hub = movements_of(&mut hub, TTU).await?.len();
    ensure!(
        at_hub < before + SALES,
        "the order reached ttu only after the whole backlog ({} of {SALES} sales at the hub)",
        at_hub - before
    );
    println!(
        "the order reached ttu with {} of {SALES} sales at the hub",
        at_hub - before
    );

    cluster.proxy(TTU).play_clean();
    cluster.wait_in_step(&[TTU], CATCH_UP).await?;
    exactly_once_at_hub(&cluster, TTU, before + SALES).await
}
