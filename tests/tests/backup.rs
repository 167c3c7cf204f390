//! `martctl backup` of a running node and `mart-node run --restore-from`: a backup
//! taken while sales go on restores into a fresh data dir with exactly the heads its
//! manifest names, figures that agree with the restored history, and a fresh actor
//! (writes resume); at rest, the restored node equals the original. A backup is never
//! restored over a data dir that holds documents, and a file that does not match its
//! manifest is refused before anything is stored.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use mart_proto::v1::mart_service_client::MartServiceClient as MartClient;
use mart_tests::martctl;
use mart_tests::ops::{movements, on_hand, receive, sale};
use mart_tests::wait::wait_until;
use mart_tests::{connect_unix, NodeProcess, NodeSpec};
use serde_json::Value;

const SKU: &str = "TTU-MKP-060";
const STOCK: i64 = 5_000;

/// The heads of every document `martctl docs` lists, by id (sorted hex).
async fn heads_by_doc(node: &NodeProcess) -> Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    for doc in martctl::list(&node.admin_socket(), &["docs"]).await? {
        let mut heads: Vec<String> = serde_json::from_value(doc["heads"].clone())
            .with_context(|| format!("docs --json without heads: {doc}"))?;
        heads.sort();
        out.push((doc["id"].as_str().unwrap_or_default().to_string(), heads));
    }
    out.sort();
    Ok(out)
}

/// The documents a manifest names, with their heads (sorted hex), by id.
fn manifest_heads(manifest: &Value) -> Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    for doc in manifest["documents"]
        .as_array()
        .context("a manifest without documents")?
    {
        let mut heads: Vec<String> = serde_json::from_value(doc["heads"].clone())?;
        heads.sort();
        out.push((doc["id"].as_str().unwrap_or_default().to_string(), heads));
    }
    out.sort();
    Ok(out)
}

fn read_manifest(backup: &Path) -> Result<Value> {
    let text = std::fs::read(backup.join("manifest.json")).context("the backup has no manifest")?;
    Ok(serde_json::from_slice(&text)?)
}

async fn actor(node: &NodeProcess) -> Result<String> {
    let status = martctl::json(&node.admin_socket(), &["status"]).await?;
    Ok(status["actor"]
        .as_str()
        .context("status without an actor")?
        .to_string())
}

/// Movement ids and the node's stock of [`SKU`].
async fn ledger(node: &NodeProcess) -> Result<(BTreeSet<String>, usize, i64)> {
    let mut mart = node.mart().await?;
    let listed = movements(&mut mart).await?;
    let sales = listed.iter().filter(|m| m.kind == "sale").count();
    let ids = listed.into_iter().map(|m| m.id).collect();
    Ok((ids, sales, on_hand(&mut mart, SKU).await?))
}

/// Sells one unit at a time until `stop`, counting the acknowledged sales.
fn sell_until(
    node: &NodeProcess,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Result<()>> {
    let socket = node.admin_socket();
    tokio::spawn(async move {
        let mut mart = MartClient::new(connect_unix(&socket).await?);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            mart.record_sale(sale(&format!("load-{n}"), SKU, 1)).await?;
            acked.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    })
}

async fn stocked_node() -> Result<NodeProcess> {
    let node = NodeProcess::start_default().await?;
    receive(&mut node.mart().await?, "stock-in", SKU, STOCK).await?;
    Ok(node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_sales_restores_elsewhere_with_its_heads_its_figures_and_a_fresh_actor(
) -> Result<()> {
    let original = stocked_node().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let load = sell_until(&original, stop.clone(), acked.clone());
    let count = || acked.load(Ordering::Relaxed);
    wait_until(
        "50 sales before the backup",
        Duration::from_secs(60),
        || async { Ok(count() >= 50) },
    )
    .await?;

    let scratch = tempfile::tempdir()?;
    let backup = scratch.path().join("ttu-backup");
    martctl::ok(
        &original.admin_socket(),
        &["backup", "--out", backup.to_str().unwrap()],
    )
    .await?;
    let after_backup = count();
    wait_until(
        "20 more sales after the backup",
        Duration::from_secs(60),
        || async { Ok(count() >= after_backup + 20) },
    )
    .await?;
    stop.store(true, Ordering::Relaxed);
    load.await??;
    ensure!(
        !scratch.path().join("ttu-backup.partial").exists(),
        "an unfinished folder was left"
    );

    let manifest = read_manifest(&backup)?;
    let mut restored = NodeProcess::new(NodeSpec::default())?;
    restored.restore_from_on_next_start(&backup);
    restored.launch()?;
    restored.wait_ready().await?;

    // Exactly the state the manifest names, document by document.
    let backed_up = manifest_heads(&manifest)?;
    let held = heads_by_doc(&restored).await?;
    ensure!(
        held == backed_up,
        "restored heads {held:?}\nmanifest {backed_up:?}"
    );

    // Its figures agree with its history, which is a prefix of the original's.
    let (original_ids, original_sales, _) = ledger(&original).await?;
    let (restored_ids, restored_sales, restored_stock) = ledger(&restored).await?;
    ensure!(
        restored_ids.is_subset(&original_ids),
        "the restored node has movements the original never had"
    );
    ensure!(
        restored_sales >= 50,
        "only {restored_sales} sales in the backup"
    );
    ensure!(
        restored_sales < original_sales,
        "the backup holds sales made after it ({restored_sales} of {original_sales})"
    );
    ensure!(
        restored_stock == STOCK - restored_sales as i64,
        "restored stock {restored_stock} after {restored_sales} sales of {STOCK}"
    );

    // Writes resume, under an actor the original never used.
    ensure!(
        actor(&restored).await? != actor(&original).await?,
        "the restored node reuses the original's actor"
    );
    restored
        .mart()
        .await?
        .record_sale(sale("after-restore", SKU, 2))
        .await?;
    ensure!(on_hand(&mut restored.mart().await?, SKU).await? == restored_stock - 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_at_rest_restores_the_same_documents_movements_and_stock() -> Result<()> {
    let original = stocked_node().await?;
    let mut mart = original.mart().await?;
    for n in 0..12 {
        mart.record_sale(sale(&format!("rest-{n}"), SKU, 3)).await?;
    }
    let scratch = tempfile::tempdir()?;
    let backup = scratch.path().join("b");
    let summary = martctl::json(
        &original.admin_socket(),
        &["backup", "--out", backup.to_str().unwrap()],
    )
    .await?;
    ensure!(summary["files"].as_u64() >= Some(2), "{summary}");

    let mut restored = NodeProcess::new(NodeSpec::default())?;
    restored.restore_from_on_next_start(&backup);
    restored.launch()?;
    restored.wait_ready().await?;
    ensure!(heads_by_doc(&restored).await? == heads_by_doc(&original).await?);
    let (ids, sales, stock) = ledger(&original).await?;
    ensure!(
        ledger(&restored).await? == (ids, sales, stock),
        "the restored ledger differs"
    );
    ensure!(stock == STOCK - 36);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_refused_over_documents_and_when_a_file_does_not_match_its_manifest(
) -> Result<()> {
    let mut original = stocked_node().await?;
    original
        .mart()
        .await?
        .record_sale(sale("one", SKU, 1))
        .await?;
    let scratch = tempfile::tempdir()?;
    let backup = scratch.path().join("b");
    martctl::ok(
        &original.admin_socket(),
        &["backup", "--out", backup.to_str().unwrap()],
    )
    .await?;
    // A second backup into the same folder is refused: nothing is overwritten.
    let again = martctl::run(
        &original.admin_socket(),
        &["backup", "--out", backup.to_str().unwrap()],
    )
    .await?;
    ensure!(
        !again.status.success(),
        "{}",
        martctl::describe(&["backup"], &again)
    );

    // Over a data dir that holds documents: refused, and the node keeps what it had.
    original.terminate().await?;
    original.restore_from_on_next_start(&backup);
    original.launch()?;
    original.wait_exit(Duration::from_secs(60)).await?;
    ensure!(
        original.stderr().contains("empty"),
        "stderr: {}",
        original.stderr()
    );

    // A document file changed after the backup: refused naming it, nothing stored.
    let manifest = read_manifest(&backup)?;
    let ledger_file = manifest["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"].as_str().is_some_and(|id| id.starts_with("ledger/")))
        .context("no ledger in the backup")?["file"]
        .as_str()
        .unwrap()
        .to_string();
    // Another node's ledger of the same period: the same name, other heads.
    let other = scratch.path().join("other-ledger");
    let elsewhere = stocked_node().await?;
    let other_ledger = martctl::list(&elsewhere.admin_socket(), &["docs"])
        .await?
        .iter()
        .find_map(|d| {
            d["id"]
                .as_str()
                .filter(|id| id.starts_with("ledger/"))
                .map(str::to_string)
        })
        .context("no ledger")?;
    martctl::ok(
        &elsewhere.admin_socket(),
        &["export", &other_ledger, "--out", other.to_str().unwrap()],
    )
    .await?;
    std::fs::copy(&other, backup.join(&ledger_file))?;

    let mut fresh = NodeProcess::new(NodeSpec::default())?;
    fresh.restore_from_on_next_start(&backup);
    fresh.launch()?;
    fresh.wait_exit(Duration::from_secs(60)).await?;
    let stderr = fresh.stderr();
    ensure!(
        stderr.contains(&ledger_file) && stderr.contains("manifest"),
        "stderr: {stderr}"
    );
    // Nothing was stored: a plain start holds no movement.
    fresh.launch()?;
    fresh.wait_ready().await?;
    if !movements(&mut fresh.mart().await?).await?.is_empty() {
        bail!("a refused restore stored movements");
    }
    Ok(())
}
