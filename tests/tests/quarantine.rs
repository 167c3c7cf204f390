//! One bad document never stops a node (issue 10, item 1), against real processes
//! over real mutual TLS: the hub's copy of a district's ledger period rots on disk
//! while the hub is stopped; the hub starts all the same, `martctl docs` shows the
//! period quarantined with the reason, every other district keeps syncing, the
//! district's bundles of that period are not taken, and `martctl doc refetch` brings
//! it back whole from the district. The hub's own documents are not dropped without
//! `--force`.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mart_tests::cluster::document_heads;
use mart_tests::ops::{movements_of, open_ledger, receive, stock_of};
use mart_tests::rot::corrupt_document;
use mart_tests::{martctl, wait_until, TestCluster};
use serde_json::Value;

const CONVERGE: Duration = Duration::from_secs(60);

async fn listed(socket: &std::path::Path, doc: &str) -> Result<Value> {
    let docs = martctl::list(socket, &["docs"]).await?;
    docs.into_iter()
        .find(|d| d["id"] == doc)
        .with_context(|| format!("martctl docs does not list {doc}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_period_at_the_hub_is_refetched_from_its_district() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .district("sikka")
        .start()
        .await?;
    let hub = cluster.hub_id().to_string();
    receive(
        &mut cluster.mart("ttu").await?,
        "rcv-ttu",
        "TTU-MKP-060",
        12,
    )
    .await?;
    receive(
        &mut cluster.mart("sikka").await?,
        "rcv-sikka",
        "SKA-MET-250",
        4,
    )
    .await?;
    cluster.wait_converged(CONVERGE).await?;
    let ledger = open_ledger(&mut cluster.admin("ttu").await?).await?;

    let mut damaged = Vec::new();
    cluster
        .restart_after(&hub, |db| {
            damaged = corrupt_document(db, &ledger)?;
            Ok(())
        })
        .await?;
    let stderr = cluster.node(&hub).stderr();
    ensure!(
        stderr.contains("document quarantined") && stderr.contains(&ledger),
        "the hub did not log the quarantine of {ledger}:\n{stderr}"
    );
    let socket = cluster.node(&hub).admin_socket();
    let entry = listed(&socket, &ledger).await?;
    ensure!(
        entry["state"] == "quarantined"
            && entry["reason"]
                .as_str()
                .is_some_and(|r| r.contains("checksum") && damaged.iter().any(|k| r.contains(k))),
        "{entry}"
    );

    // Another district keeps syncing; ttu's new sale does not reach the quarantined
    // period (the hub neither asks for it nor takes it).
    receive(
        &mut cluster.mart("sikka").await?,
        "rcv-sikka-2",
        "SKA-MET-250",
        3,
    )
    .await?;
    receive(
        &mut cluster.mart("ttu").await?,
        "rcv-ttu-2",
        "TTU-MKP-060",
        1,
    )
    .await?;
    let mut hub_mart = cluster.mart(&hub).await?;
    wait_until(
        "sikka's new receipt reaches the restarted hub",
        CONVERGE,
        || {
            let mut mart = hub_mart.clone();
            async move {
                Ok(movements_of(&mut mart, "sikka")
                    .await?
                    .iter()
                    .any(|m| m.id == "rcv-sikka-2"))
            }
        },
    )
    .await?;
    ensure!(listed(&socket, &ledger).await?["state"] == "quarantined");

    // The hub's own documents are not dropped without --force.
    let line = martctl::refused(
        &socket,
        &["doc", "drop", "catalog/province"],
        "failed precondition",
    )
    .await?;
    ensure!(line.contains("--force"), "{line}");

    // Refetched: dropped (records moved aside) and sent again whole by ttu.
    let answer = martctl::json(&socket, &["doc", "refetch", &ledger, "--wait", "60"]).await?;
    ensure!(
        answer["was_quarantined"] == true
            && answer["received"] == true
            && answer["records_moved"]
                .as_u64()
                .is_some_and(|n| n as usize > damaged.len()),
        "{answer}"
    );
    let ttu_heads = document_heads(&mut cluster.admin("ttu").await?).await?;
    wait_until("the hub holds ttu's period whole again", CONVERGE, || {
        let cluster = &cluster;
        let ledger = ledger.clone();
        let want = ttu_heads[&ledger].clone();
        async move {
            let heads = document_heads(&mut cluster.admin(cluster.hub_id()).await?).await?;
            Ok(heads.get(&ledger) == Some(&want))
        }
    })
    .await?;
    ensure!(listed(&socket, &ledger).await?["state"] == "ok");
    let stock = stock_of(&mut hub_mart, "ttu").await?;
    ensure!(stock.get("TTU-MKP-060") == Some(&13), "{stock:?}");
    cluster.wait_converged(CONVERGE).await?;
    Ok(())
}
