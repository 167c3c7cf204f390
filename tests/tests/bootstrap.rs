//! A district that lost its disk rebuilds from the hub: it starts on an empty data
//! dir with a fresh automerge actor (never one it used before), gets its own ledger
//! and catalog back from the hub, shows the same balances, and sells on; the hub
//! counts every movement once and refuses nothing.

use std::time::Duration;

use anyhow::{ensure, Result};
use mart_proto::v1::StatusRequest;
use mart_tests::cluster::peer_info;
use mart_tests::ops::{movements_of, receive, sale, sell, stock_of};
use mart_tests::TestCluster;

const TTU: &str = "ttu";
const SKU: &str = "TTU-MKP-060";
const CONVERGE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_district_rebuilds_from_the_hub_and_sells_on() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .hub("kupang")
        .district(TTU)
        .start()
        .await?;
    let hub = cluster.hub_id().to_string();
    let mut ttu = cluster.mart(TTU).await?;
    receive(&mut ttu, "rcv-1", SKU, 50).await?;
    for i in 0..10 {
        sell(&mut ttu, &format!("before-{i}"), SKU, 1).await?;
    }
    cluster.wait_converged(CONVERGE).await?;
    let actor_before = cluster
        .admin(TTU)
        .await?
        .status(StatusRequest {})
        .await?
        .into_inner()
        .actor;

    cluster.wipe_and_restart(TTU).await?;
    let mut ttu = cluster.mart(TTU).await?;
    let status = cluster
        .admin(TTU)
        .await?
        .status(StatusRequest {})
        .await?
        .into_inner();
    ensure!(
        status.actor != actor_before,
        "the rebuilt district writes as {} again",
        status.actor
    );
    cluster.wait_converged(CONVERGE).await?;
    let rebuilt = stock_of(&mut ttu, "").await?;
    ensure!(
        rebuilt.get(SKU) == Some(&40),
        "the rebuilt district lost its balance: {rebuilt:?}"
    );

    // It sells on with its new actor; a retried request from before the wipe is
    // recognised again (the ledger came back with its request ids).
    for i in 0..5 {
        sell(&mut ttu, &format!("after-{i}"), SKU, 1).await?;
    }
    let again = ttu
        .record_sale(sale("before-0", SKU, 1))
        .await?
        .into_inner();
    ensure!(
        again.duplicate,
        "a sale from before the wipe was counted again"
    );
    cluster.wait_converged(CONVERGE).await?;
    let mut hub_mart = cluster.mart(&hub).await?;
    let at_hub = stock_of(&mut hub_mart, TTU).await?;
    ensure!(at_hub.get(SKU) == Some(&35), "hub: {at_hub:?}");
    let movements = movements_of(&mut hub_mart, TTU).await?;
    let mut ids: Vec<&str> = movements.iter().map(|m| m.id.as_str()).collect();
    ids.sort();
    let count = ids.len();
    ids.dedup();
    ensure!(ids.len() == count && count == 16, "hub movements: {ids:?}");
    let seen = peer_info(&mut cluster.admin(&hub).await?, TTU).await?;
    ensure!(
        seen.refusals == 0 && seen.last_error.is_empty(),
        "the hub refused something of the rebuilt district: {seen:?}"
    );
    Ok(())
}
