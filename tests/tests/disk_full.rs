//! A district whose disk fills up (issue 11, section 4): a real `mart-node` whose
//! files cannot grow (a soft `RLIMIT_FSIZE` moved from outside while it runs, with
//! `SIGXFSZ` ignored, so sled's writes fail with `EFBIG` as they would with
//! `ENOSPC`; no root needed).
//!
//! Sales go on until one fails. Then: the failed sale was answered UNAVAILABLE in
//! words that say what to do; no read ever lists a sale that was not acknowledged;
//! the node stops on its own with a non-zero status (sled keeps its first i/o error
//! for the life of the database, so only a new process writes again); started again
//! while the disk is still full it refuses to start and says why; started once space
//! is back it holds exactly the acknowledged sales, answers a retried request id
//! once, and records new sales.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use mart_proto::tonic::Code;
use mart_tests::file_limit::largest_file;
use mart_tests::ops::{movements, on_hand, receive, sale};
use mart_tests::{MartClient, NodeProcess, NodeSpec};

const SKU: &str = "TTU-MKP-060";
const RECEIVED: i64 = 10_000;
/// Bytes the node's files may still grow by once the disk "fills up".
const ROOM_LEFT: u64 = 32 * 1024;
/// Sales tried before giving up on the disk ever filling.
const MAX_SALES: usize = 5_000;
/// How long the node may take to stop on its own after a write failed.
const STOP_TIMEOUT: Duration = Duration::from_secs(90);

/// The sale ids a read lists.
async fn listed_sales(mart: &mut MartClient) -> Result<BTreeSet<String>> {
    Ok(movements(mart)
        .await?
        .into_iter()
        .filter(|m| m.kind == "sale")
        .map(|m| m.id)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_no_acknowledged_sale_shows_no_refused_one_and_recovers_by_restart(
) -> Result<()> {
    let mut node = NodeProcess::new(NodeSpec::default())?;
    node.limit_file_size_at_launch(None);
    node.restart().await?;
    let mut mart = node.mart().await?;
    receive(&mut mart, "stock", SKU, RECEIVED).await?;

    let mut acknowledged = BTreeSet::new();
    for i in 0..3 {
        let id = format!("before-{i}");
        mart.record_sale(sale(&id, SKU, 1)).await?;
        acknowledged.insert(id);
    }
    // The disk fills up.
    let full_at = largest_file(&node.db_path())? + ROOM_LEFT;
    node.set_file_size_limit(Some(full_at))?;
    let mut failed = None;
    for i in 0..MAX_SALES {
        let id = format!("sale-{i:04}");
        match mart.record_sale(sale(&id, SKU, 1)).await {
            Ok(ack) => {
                ensure!(!ack.get_ref().duplicate, "{id} taken for a duplicate");
                acknowledged.insert(id);
            }
            Err(status) => {
                failed = Some((id, status));
                break;
            }
        }
    }
    let Some((failed_id, status)) = failed else {
        bail!("{MAX_SALES} sales fitted in {ROOM_LEFT} bytes: the file limit had no effect");
    };
    eprintln!(
        "{} sales acknowledged, {failed_id} failed: {:?} {}",
        acknowledged.len(),
        status.code(),
        status.message()
    );
    ensure!(
        status.code() == Code::Unavailable,
        "the failed sale was answered {:?}: {}",
        status.code(),
        status.message()
    );
    let message = status.message();
    ensure!(
        message.contains("free space") && message.contains("restart"),
        "the failed sale's error does not say what to do: {message}"
    );

    // Reads made while the node still answers list only acknowledged sales.
    for _ in 0..3 {
        match listed_sales(&mut mart).await {
            Ok(listed) => {
                let unacknowledged: Vec<_> = listed.difference(&acknowledged).collect();
                ensure!(
                    unacknowledged.is_empty(),
                    "a read lists sales never acknowledged: {unacknowledged:?}"
                );
            }
            Err(e) => eprintln!("read refused: {e:#}"),
        }
        match on_hand(&mut mart, SKU).await {
            Ok(quantity) => ensure!(
                quantity >= RECEIVED - acknowledged.len() as i64,
                "stock {quantity} counts a sale never acknowledged ({} acknowledged)",
                acknowledged.len()
            ),
            Err(e) => eprintln!("stock refused: {e:#}"),
        }
    }
    // A later sale is refused in the same plain words, and the node stops by itself.
    if let Ok(ack) = mart.record_sale(sale("after-failure", SKU, 1)).await {
        bail!("a sale was acknowledged after the disk failed: {ack:?}");
    }
    let exit = node.wait_exit(STOP_TIMEOUT).await?;
    ensure!(
        !exit.success(),
        "the node stopped with {exit} after its disk failed"
    );

    // A supervisor starts it again while the disk is still full: it refuses to start,
    // and says why.
    node.limit_file_size_at_launch(Some(largest_file(&node.db_path())?));
    node.launch()?;
    let exit = node.wait_exit(STOP_TIMEOUT).await?;
    ensure!(!exit.success(), "the node started on a full disk ({exit})");
    let stderr = node.stderr();
    ensure!(
        stderr.contains("free space"),
        "the node refused to start without saying why:\n{stderr}"
    );

    // Space is freed: the next start serves exactly the acknowledged sales.
    node.limit_file_size_at_launch(None);
    node.restart().await?;
    let mut mart = node.mart().await?;
    let listed = listed_sales(&mut mart).await?;
    ensure!(
        listed == acknowledged,
        "after the restart: {} listed, {} acknowledged; not acknowledged but listed: {:?}; \
         acknowledged but lost: {:?}",
        listed.len(),
        acknowledged.len(),
        listed.difference(&acknowledged).collect::<Vec<_>>(),
        acknowledged.difference(&listed).collect::<Vec<_>>()
    );
    // The client retries the failed sale under its request id: recorded once.
    let retried = mart
        .record_sale(sale(&failed_id, SKU, 1))
        .await
        .context("retry the failed sale")?
        .into_inner();
    ensure!(
        !retried.duplicate,
        "{failed_id} was recorded before: {retried:?}"
    );
    acknowledged.insert(failed_id.clone());
    let again = mart
        .record_sale(sale(&failed_id, SKU, 1))
        .await?
        .into_inner();
    ensure!(again.duplicate, "{failed_id} recorded twice: {again:?}");
    mart.record_sale(sale("after-restart", SKU, 1)).await?;
    acknowledged.insert("after-restart".into());
    ensure!(listed_sales(&mut mart).await? == acknowledged);
    ensure!(on_hand(&mut mart, SKU).await? == RECEIVED - acknowledged.len() as i64);
    Ok(())
}
