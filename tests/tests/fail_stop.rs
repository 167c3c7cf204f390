//! Fail-stop (invariant 9 of the brief: a panic stops the process instead of leaving
//! it half alive), and its one exception (invariant 8: bad input is harmless).
//!
//! - A real node (`mart-node-faults`, armed with `MART_FAULT_PANIC`) panics while it
//!   holds the documents' lock, recording a sale: it must exit non-zero within
//!   seconds, say on stderr what panicked where, and stop answering health checks;
//!   started again on the same data dir (by the product's `mart-node`) it holds every
//!   acknowledged movement once and nothing of the sale that panicked.
//! - A bundle on which automerge's parser panics, sent by a district with a valid
//!   certificate to a real hub: the panic is caught where the node expects it, the
//!   bundle is refused with INVALID_ARGUMENT, and the hub keeps serving and syncing.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, ChangeHash, ObjType, ROOT};
use mart_node::domain::actor::actor_for;
use mart_node::domain::doc_id::NodeId;
use mart_proto::tonic::Code;
use mart_proto::v1::sync_message::Body;
use mart_proto::v1::sync_service_client::SyncServiceClient;
use mart_proto::v1::{Bundle, Hello, SyncMessage};
use mart_tests::cluster::peer_info;
use mart_tests::ops::{movements, on_hand, open_ledger, receive, sale, sell};
use mart_tests::{connect_tls, connect_unix};
use mart_tests::{wait_until, NodeProcess, NodeSpec, TestCluster};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// How long the node may take to notice its panic and exit (it exits at once; the
/// margin is for a loaded machine).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const SKU: &str = "TTU-MKP-060";
/// The exit code of a node stopped by a panic (`mart_node::fail_stop`).
const PANIC_EXIT_CODE: i32 = 101;

/// How long a cluster may take to converge, or the hub to notice a cut link.
const CONVERGE: Duration = Duration::from_secs(90);
/// How long the hub may take to answer one sync message.
const ANSWER: Duration = Duration::from_secs(15);

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
    assert!(
        health_serving(&node).await,
        "the node serves before the panic"
    );

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

/// A small real bundle of a ttu ledger with byte 27 set to 1, resealed with the
/// checksum of what it holds now, as a hostile peer would: automerge 0.12's parser
/// panics on it (a slice index out of range in its column decoders; found by
/// node/src/sync/fuzz_tests.rs, whose `a_bundle_that_panics_the_parser_is_refused`
/// checks that it still does).
fn bundle_that_panics_the_parser() -> Result<Vec<u8>> {
    let ttu = NodeId::parse("ttu").map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut doc = Automerge::new().with_actor(actor_for(&ttu, 5));
    let mut tx = doc.transaction();
    let list = tx.put_object(ROOT, "movements", ObjType::List)?;
    tx.insert(&list, 0, "{\"id\":\"m0\"}")?;
    tx.put(ROOT, "opening", "{}")?;
    tx.commit_with(CommitOptions::default().with_time(0));
    let hashes: Vec<ChangeHash> = doc.get_changes(&[]).iter().map(|c| c.hash()).collect();
    let mut data = doc.bundle(hashes)?.bytes().to_vec();
    ensure!(data.len() == 147, "not the bundle this damage was found on");
    data[27] = 1;
    // The chunk's checksum: the first 4 bytes of the SHA-256 of what follows it (its
    // type, length and contents).
    let digest = Sha256::digest(&data[8..]);
    data[4..8].copy_from_slice(&digest[..4]);
    Ok(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_that_panics_automerge_is_refused_and_the_hub_keeps_serving() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .start()
        .await?;
    receive(&mut cluster.mart("ttu").await?, "before", "TTU-MKP-060", 5).await?;
    cluster.wait_converged(CONVERGE).await?;
    let ledger = open_ledger(&mut cluster.admin("ttu").await?).await?;
    // From here on the test speaks for ttu; the real ttu stays off the link.
    cluster.cut("ttu");
    let hub_admin = cluster.admin(cluster.hub_id()).await?;
    wait_until("the hub sees ttu gone", CONVERGE, || {
        let mut admin = hub_admin.clone();
        async move { Ok(!peer_info(&mut admin, "ttu").await?.connected) }
    })
    .await?;

    let channel = connect_tls(&cluster.hub_url(), cluster.tls_of("ttu").client()?).await?;
    let (out, rx) = mpsc::channel(4);
    let hello = Hello {
        node_id: "ttu".into(),
        protocol: 1,
        ..Hello::default()
    };
    out.send(SyncMessage {
        body: Some(Body::Hello(hello)),
    })
    .await?;
    let mut inbound = SyncServiceClient::new(channel)
        .session(ReceiverStream::new(rx))
        .await
        .context("the hub refused the session")?
        .into_inner();
    out.send(SyncMessage {
        body: Some(Body::Bundle(Bundle {
            doc_id: ledger.clone(),
            data: bundle_that_panics_the_parser()?,
            changes: 1,
            seq: 0,
        })),
    })
    .await?;
    let refused = loop {
        match tokio::time::timeout(ANSWER, inbound.message()).await {
            Err(_) => bail!("the hub said nothing for {ANSWER:?}"),
            Ok(Err(status)) => bail!(
                "the session failed ({:?}: {}); hub stderr:\n{}",
                status.code(),
                status.message(),
                cluster.hub().stderr()
            ),
            Ok(Ok(None)) => bail!("the hub ended the session"),
            Ok(Ok(Some(SyncMessage {
                body: Some(Body::Refused(r)),
            }))) if r.doc_id == ledger => break r,
            Ok(Ok(Some(_))) => {}
        }
    };
    ensure!(
        refused.code == Code::InvalidArgument as i32 && refused.message.contains("parser failed"),
        "the bundle was refused with {refused:?}"
    );
    let stderr = cluster.hub().stderr();
    ensure!(
        stderr.contains("caught and refused"),
        "the hub's log does not show the caught panic:\n{stderr}"
    );
    ensure!(
        health_serving(cluster.hub()).await,
        "the hub's health after the refusal"
    );
    drop(out);

    cluster.heal("ttu");
    receive(&mut cluster.mart("ttu").await?, "after", "TTU-MKP-060", 5).await?;
    cluster.wait_converged(CONVERGE).await?;
    Ok(())
}
