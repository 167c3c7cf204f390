//! Fail-stop (invariant 9 of the brief: a panic stops the process instead of leaving
//! it half alive). A real node (`mart-node-faults`, armed with `MART_FAULT_PANIC`)
//! panics while it holds the documents' lock, recording a sale: it must exit non-zero
//! within seconds, say on stderr what panicked where, and stop answering health
//! checks; started again on the same data dir (by the product's `mart-node`) it holds
//! every acknowledged movement once and nothing of the sale that panicked.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mart_tests::connect_unix;
use mart_tests::ops::{movements, on_hand, receive, sale, sell};
use mart_tests::{wait_until, NodeProcess, NodeSpec};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// How long the node may take to notice its panic and exit (it exits at once; the
/// margin is for a loaded machine).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const SKU: &str = "TTU-MKP-060";
/// The exit code of a node stopped by a panic (`mart_node::fail_stop`).
const PANIC_EXIT_CODE: i32 = 101;

/// True when the node's health service answers SERVING for the store operations
/// over its admin socket; false when it answers otherwise or not at all.
async fn health_serving(node: &NodeProcess) -> bool {
    let Ok(channel) = connect_unix(&node.admin_socket()).await else {
        return false;
    };
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "nttmart.v1.MartService".into(),
        })
        .await;
    matches!(answer, Ok(a) if a.get_ref().status == ServingStatus::Serving as i32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_under_the_documents_lock_stops_the_node_and_loses_no_acknowledged_sale(
) -> Result<()> {
    let mut node = NodeProcess::new(NodeSpec::default())?;
    // The fourth movement recorded panics, under the documents' lock.
    node.set_fault_panic(Some("record:4"));
    node.launch()?;
    node.wait_ready().await?;
    let mut mart = node.mart().await?;
    let mut acked = vec![receive(&mut mart, "receipt-1", SKU, 10).await?];
    acked.push(sell(&mut mart, "sale-1", SKU, 2).await?);
    acked.push(sell(&mut mart, "sale-2", SKU, 3).await?);
    assert!(health_serving(&node).await, "the node serves before the panic");

    let panicked = mart.record_sale(sale("sale-3", SKU, 1)).await;
    ensure!(
        panicked.is_err(),
        "the sale that panicked was acknowledged: {panicked:?}"
    );
    wait_until(
        "the node's health no longer answers SERVING",
        STOP_TIMEOUT,
        || async { Ok(!health_serving(&node).await) },
    )
    .await
    .with_context(|| format!("stderr:\n{}", node.stderr()))?;
    let status = node.wait_exit(STOP_TIMEOUT).await?;
    let stderr = node.stderr();
    ensure!(
        status.code() == Some(PANIC_EXIT_CODE),
        "the node exited with {status}, not code {PANIC_EXIT_CODE}; stderr:\n{stderr}"
    );
    for words in [
        "fault injected at record",
        "node/src/fault_injection.rs",
        "stopping the node after a panic",
    ] {
        ensure!(stderr.contains(words), "stderr lacks {words:?}:\n{stderr}");
    }

    node.set_fault_panic(None);
    node.restart().await?;
    let mut mart = node.mart().await?;
    let mut listed: Vec<String> = movements(&mut mart)
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect();
    listed.sort();
    let mut acked_ids: Vec<String> = acked.iter().map(|a| a.movement_id.clone()).collect();
    acked_ids.sort();
    ensure!(
        listed == acked_ids,
        "after the restart the ledger holds {listed:?}, the node acknowledged {acked_ids:?}"
    );
    ensure!(on_hand(&mut mart, SKU).await? == 5, "10 received, 5 sold");
    let again = mart
        .record_sale(sale("sale-1", SKU, 2))
        .await
        .context("sale-1 again")?
        .into_inner();
    ensure!(again.duplicate, "sale-1 is recorded once: {again:?}");
    sell(&mut mart, "sale-3", SKU, 1).await?;
    ensure!(on_hand(&mut mart, SKU).await? == 4, "the node sells again");
    ensure!(health_serving(&node).await, "the restarted node serves");
    Ok(())
}
