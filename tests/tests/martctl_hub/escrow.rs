//! Section 3 of the martctl hub test: quota granted at ttu, orders placed at the
//! hub (refused beyond the quota, a retry placing nothing new), fulfilled at ttu,
//! unsold quota asked back and released.

use anyhow::{ensure, Result};
use mart_tests::TestCluster;
use serde_json::json;

use super::*;

/// Section 3: quota granted at ttu, orders placed at the hub, fulfilled at ttu, the
/// rest asked back.
pub async fn online_orders_against_the_quota_ttu_granted(cluster: &TestCluster) -> Result<()> {
    let grant = json_of(
        cluster,
        TTU,
        &[
            "quota",
            "grant",
            "--sku",
            OIL,
            "--qty",
            "5",
            "--request-id",
            "grant-1",
        ],
    )
    .await?;
    ensure!(
        grant["movement_id"] == "grant-1" && grant["duplicate"] == false,
        "quota grant printed {grant}"
    );
    cluster.wait_converged(CONVERGE).await?;
    let line = only(list_of(cluster, HUB, &["quota"]).await?, "quota at the hub")?;
    ensure!(
        line == json!({"outlet": TTU, "sku": OIL, "granted": 5, "accepted": 0, "fulfilled": 0,
                       "cancelled": 0, "released": 0, "available": 5, "reserved": 5,
                       "pending_returns": 0}),
        "the hub's quota once granted: {line}"
    );

    let place = [
        "order",
        "place",
        "--sku",
        OIL,
        "--qty",
        "3",
        "--outlet",
        TTU,
        "--request-id",
        "web-0001",
    ];
    let placed = json_of(cluster, HUB, &place).await?;
    ensure!(
        placed["id"] == "web-0001"
            && placed["outlet"] == TTU
            && placed["sku"] == OIL
            && placed["quantity"] == 3
            && placed["unit_price_rupiah"] == OIL_PRICE
            && placed["buyer"] == "public"
            && placed["status"] == "accepted"
            && int(&placed, "placed_at_unix_ms")? > 0,
        "order place printed {placed}"
    );

    // Beyond the quota: refused, saying what is available.
    let line = refused(
        cluster,
        HUB,
        &[
            "order",
            "place",
            "--sku",
            OIL,
            "--qty",
            "3",
            "--outlet",
            TTU,
            "--request-id",
            "web-0002",
        ],
        "failed precondition",
    )
    .await?;
    ensure!(
        line.contains("2 available") && line.contains("3 requested"),
        "the refusal does not say how much is available: {line:?}"
    );

    // The first order again, same request id: the same order, nothing new.
    let mut again = json_of(cluster, HUB, &place).await?;
    ensure!(
        placed["duplicate"] == false && again["duplicate"] == true,
        "order place retried printed {again}, first {placed}"
    );
    again["duplicate"] = placed["duplicate"].clone();
    ensure!(
        again == placed,
        "order place retried printed {again}, first {placed}"
    );
    let table = ok(cluster, HUB, &place).await?;
    ensure!(
        table.lines().next()
            == Some("order already placed with this request id; nothing new stored")
            && table.lines().any(|l| l == "order:       web-0001"),
        "order place retried (table):\n{table}"
    );
    let orders = list_of(cluster, HUB, &["orders"]).await?;
    ensure!(
        orders.len() == 1 && orders[0]["id"] == "web-0001",
        "orders at the hub after one order, one refusal and two retries: {orders:?}"
    );
    let line = only(
        list_of(cluster, HUB, &["quota", "--outlet", TTU]).await?,
        "quota",
    )?;
    ensure!(
        line["accepted"] == 3 && line["available"] == 2,
        "the hub's quota after one order of 3: {line}"
    );

    // At ttu once synced: the order, then its fulfilment.
    cluster.wait_converged(CONVERGE).await?;
    let at_ttu = only(list_of(cluster, TTU, &["orders"]).await?, "orders at ttu")?;
    ensure!(at_ttu == placed, "ttu's order {at_ttu}, placed {placed}");
    let fulfilled = json_of(
        cluster,
        TTU,
        &[
            "order",
            "fulfil",
            "web-0001",
            "--request-id",
            "ship-web-0001",
        ],
    )
    .await?;
    ensure!(
        fulfilled["movement_id"] == "ship-web-0001"
            && fulfilled["sku"] == OIL
            && fulfilled["quantity_on_hand"] == 32 - 3
            && fulfilled["duplicate"] == false,
        "order fulfil printed {fulfilled}"
    );
    cluster.wait_converged(CONVERGE).await?;
    let done = only(
        list_of(cluster, HUB, &["orders", "--status", "fulfilled"]).await?,
        "fulfilled orders at the hub",
    )?;
    ensure!(
        done["id"] == "web-0001" && done["status"] == "fulfilled",
        "fulfilled orders at the hub: {done}"
    );
    let open = list_of(cluster, HUB, &["orders", "--status", "accepted"]).await?;
    ensure!(
        open.is_empty(),
        "accepted orders at the hub after fulfilment: {open:?}"
    );

    // The 2 unsold units asked back; the hub answers as soon as it sees the request.
    let asked = json_of(
        cluster,
        TTU,
        &[
            "quota",
            "return",
            "--sku",
            OIL,
            "--qty",
            "2",
            "--request-id",
            "return-1",
        ],
    )
    .await?;
    ensure!(
        asked["movement_id"] == "return-1" && asked["duplicate"] == false,
        "quota return printed {asked}"
    );
    let hub = cluster.mart(HUB).await?;
    wait_until("the hub released ttu's 2 unsold units", CONVERGE, || {
        let mut hub = hub.clone();
        async move {
            let line = quota_line(&mut hub, TTU, OIL).await?;
            Ok(line.released == 2 && line.pending_returns == 0)
        }
    })
    .await?;
    cluster.wait_converged(CONVERGE).await?;
    let line = only(list_of(cluster, TTU, &["quota"]).await?, "quota at ttu")?;
    ensure!(
        line == json!({"outlet": TTU, "sku": OIL, "granted": 5, "accepted": 3, "fulfilled": 3,
                       "cancelled": 0, "released": 2, "available": 0, "reserved": 0,
                       "pending_returns": 0}),
        "ttu's quota after fulfilment and return: {line}"
    );
    Ok(())
}
