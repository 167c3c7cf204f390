//! Partition and heal (invariants 2, 3 and 7 of the brief): a district cut off from
//! the hub keeps selling, shows what it has not delivered yet, and once the link is
//! back the hub's copy of its ledger has the same heads, the same movements (each
//! once) and the same stock per SKU as the district, and the hub records when it
//! last synced with it.

use std::time::{Duration, Instant};

use mart_tests::clock::now_ms;

use anyhow::{ensure, Result};
use mart_tests::cluster::{document_heads, peer_info};
use mart_tests::link::exactly_once_at_hub;
use mart_tests::ops::{movements_of, open_ledger, receive, sell_all, stock_of};
use mart_tests::{wait_until, TestCluster};

const DISTRICT: &str = "ttu";
const SKUS: &[&str] = &["TTU-MKP-060", "TTU-MKP-120", "TTU-TNN-SLD", "NGD-KOP-250"];
const SALES: usize = 500;
const CONVERGE: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_district_cut_off_catches_up_after_heal() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district(DISTRICT)
        .start()
        .await?;
    let hub = cluster.hub_id().to_string();
    let mut ttu = cluster.mart(DISTRICT).await?;
    let mut ttu_admin = cluster.admin(DISTRICT).await?;
    let mut hub_mart = cluster.mart(&hub).await?;
    let mut hub_admin = cluster.admin(&hub).await?;
    // The open period of ttu's ledger, as ttu names it.
    let ledger = open_ledger(&mut ttu_admin).await?;
    let ledger = ledger.as_str();

    // Stock first, delivered while the link is up.
    for (i, sku) in SKUS.iter().enumerate() {
        receive(&mut ttu, &format!("rcv-{i}"), sku, 300).await?;
    }
    cluster.wait_converged(CONVERGE).await?;
    wait_until(
        "the district has the hub's acknowledgements",
        CONVERGE,
        || {
            let mut ttu_admin = ttu_admin.clone();
            let hub = hub.clone();
            async move {
                let info = peer_info(&mut ttu_admin, &hub).await?;
                Ok(info
                    .documents
                    .iter()
                    .all(|d| d.changes_to_send == 0 && !d.behind))
            }
        },
    )
    .await?;
    let heads_before = document_heads(&mut hub_admin).await?[ledger].clone();
    ensure!(
        movements_of(&mut hub_mart, DISTRICT).await?.len() == SKUS.len(),
        "the hub does not hold the receipts before the cut"
    );

    let cut_at_ms = now_ms();
    cluster.cut(DISTRICT);
    wait_until("both sides see the link down", CONVERGE, || {
        let (mut ttu_admin, mut hub_admin) = (ttu_admin.clone(), hub_admin.clone());
        let hub = hub.clone();
        async move {
            let at_ttu = peer_info(&mut ttu_admin, &hub).await?;
            let at_hub = peer_info(&mut hub_admin, DISTRICT).await?;
            Ok(!at_ttu.connected && !at_hub.connected)
        }
    })
    .await?;
    let success_before_heal = peer_info(&mut hub_admin, DISTRICT)
        .await?
        .last_success_unix_ms;

    let sales: Vec<(String, String, i64)> = (0..SALES)
        .map(|i| {
            (
                format!("sale-{i:04}"),
                SKUS[i % SKUS.len()].to_string(),
                1 + (i % 2) as i64,
            )
        })
        .collect();
    sell_all(&ttu, sales, 8).await?;

    // The hub still holds the old ledger; the district shows what it owes.
    ensure!(
        document_heads(&mut hub_admin).await?[ledger] == heads_before,
        "the hub's copy of {ledger} changed while the link was cut"
    );
    ensure!(movements_of(&mut hub_mart, DISTRICT).await?.len() == SKUS.len());
    let pending = peer_info(&mut ttu_admin, &hub).await?;
    let owed = pending
        .documents
        .iter()
        .find(|d| d.doc_id == ledger)
        .ok_or_else(|| anyhow::anyhow!("ListPeers at {DISTRICT} lists no {ledger}"))?;
    ensure!(
        owed.changes_to_send == SALES as u64,
        "{DISTRICT} should owe the hub {SALES} changes of {ledger}: {owed:?}"
    );
    // The oldest sale the hub lacks was made after the cut.
    let since_cut = now_ms() - cut_at_ms;
    ensure!(
        (0..=since_cut).contains(&owed.lag_ms),
        "the lag of {ledger} is {} ms, the link was cut {since_cut} ms ago",
        owed.lag_ms
    );

    let healed_at = Instant::now();
    let healed_at_ms = now_ms();
    cluster.heal(DISTRICT);
    wait_until(
        "the hub holds the district's ledger heads",
        CONVERGE,
        || {
            let (mut ttu_admin, mut hub_admin) = (ttu_admin.clone(), hub_admin.clone());
            async move {
                let ours = document_heads(&mut ttu_admin).await?;
                let theirs = document_heads(&mut hub_admin).await?;
                Ok(theirs.get(ledger) == ours.get(ledger))
            }
        },
    )
    .await?;
    println!("caught up {SALES} sales in {:?}", healed_at.elapsed());
    cluster.wait_converged(CONVERGE).await?;

    // The same movements, each once, and the same stock per SKU.
    exactly_once_at_hub(&cluster, DISTRICT, SKUS.len() + SALES).await?;
    let stock_ttu = stock_of(&mut ttu, "").await?;
    // 300 received, 125 sales of 1 or 2 alternating per SKU: 300 - 125 * 1.5.
    for sku in SKUS {
        ensure!(stock_ttu.get(*sku).is_some_and(|q| *q > 0 && *q < 300));
    }
    let total_sold: i64 = (0..SALES).map(|i| 1 + (i % 2) as i64).sum();
    ensure!(stock_ttu.values().sum::<i64>() == 300 * SKUS.len() as i64 - total_sold);

    // Freshness: the hub knows it synced with the district after the heal, and the
    // district owes nothing.
    wait_until(
        "both sides record the sync after the heal",
        CONVERGE,
        || {
            let (mut ttu_admin, mut hub_admin) = (ttu_admin.clone(), hub_admin.clone());
            let hub = hub.clone();
            async move {
                let at_hub = peer_info(&mut hub_admin, DISTRICT).await?;
                let at_ttu = peer_info(&mut ttu_admin, &hub).await?;
                Ok(at_hub.connected
                    && at_hub.last_success_unix_ms >= healed_at_ms
                    && at_ttu
                        .documents
                        .iter()
                        .all(|d| d.changes_to_send == 0 && !d.behind))
            }
        },
    )
    .await?;
    ensure!(success_before_heal < healed_at_ms);

    // Catching up moved the sales one way only: the hub never held anything of
    // these documents the district lacked, so it must not have sent any back.
    let at_hub = peer_info(&mut hub_admin, DISTRICT).await?;
    let at_ttu = peer_info(&mut ttu_admin, &hub).await?;
    println!(
        "hub -> {DISTRICT}: {} changes, {} bytes; {DISTRICT} -> hub: {} changes, {} bytes",
        at_hub.changes_sent, at_hub.bytes_sent, at_ttu.changes_sent, at_ttu.bytes_sent
    );
    ensure!(
        at_hub.changes_sent == 0 && at_ttu.changes_received == 0,
        "the hub sent {DISTRICT} {} changes ({} bytes) of documents {DISTRICT} itself wrote \
         (its whole copy of them, resent at every reconnection after offline sales)",
        at_hub.changes_sent,
        at_hub.bytes_sent
    );
    Ok(())
}
