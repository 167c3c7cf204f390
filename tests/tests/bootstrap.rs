//! A district that lost its disk rebuilds from the hub: started with `--restore` on
//! an empty data dir, it sells nothing (UNAVAILABLE) until it has its ledger back from
//! the hub, then writes with a fresh automerge actor (never one it used before), shows
//! the same balances, recognises request ids from before the loss, and sells on; the
//! hub counts every movement once and refuses nothing. After a month turned, the
//! restored district gets only its open period (opened with the balances carried
//! over), while the sealed one stays archived at the hub.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use mart_proto::tonic::Code;
use mart_proto::v1::StatusRequest;
use mart_tests::clock::{now_ms, wita_month_after, wita_ms};
use mart_tests::cluster::{ledger_period, ledger_periods, peer_info};
use mart_tests::ops::{
    movements, movements_of, open_ledger, receipt, receive, sale, sell, stock_of,
};
use mart_tests::{wait_until, TestCluster};

const TTU: &str = "ttu";
const SKU: &str = "TTU-MKP-060";
const CONVERGE: Duration = Duration::from_secs(90);

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
    let status_before = cluster
        .admin(TTU)
        .await?
        .status(StatusRequest {})
        .await?
        .into_inner();
    let ledger_before = open_ledger(&mut cluster.admin(TTU).await?).await?;

    // The disk is lost while the link to the hub is down: the district starts with
    // --restore and cannot get its ledger, so it must refuse every movement (it does
    // not know its stock, nor the request ids it already recorded).
    cluster.cut(TTU);
    cluster.wipe_and_start_restore(TTU).await?;
    let mut ttu = cluster.mart(TTU).await?;
    let status = cluster
        .admin(TTU)
        .await?
        .status(StatusRequest {})
        .await?
        .into_inner();
    ensure!(
        status.restoring && status.open_period.is_empty(),
        "a district started with --restore while the hub is unreachable is not restoring: \
         {status:?}"
    );
    match ttu.record_sale(sale("while-restoring", SKU, 1)).await {
        Err(refused) if refused.code() == Code::Unavailable => {}
        Err(refused) => {
            bail!("a sale while restoring was refused with {refused:?}, expected UNAVAILABLE")
        }
        Ok(ack) => bail!(
            "a sale was recorded while restoring: {:?}",
            ack.into_inner()
        ),
    }
    match ttu
        .record_receipt(receipt("rcv-while-restoring", SKU, 5, 20_000))
        .await
    {
        Err(refused) if refused.code() == Code::Unavailable => {}
        Err(refused) => {
            bail!("a receipt while restoring was refused with {refused:?}, expected UNAVAILABLE")
        }
        Ok(ack) => bail!(
            "a receipt was recorded while restoring: {:?}",
            ack.into_inner()
        ),
    }
    // A retry of a sale made before the loss is refused too, not taken for new.
    match ttu.record_sale(sale("before-0", SKU, 1)).await {
        Err(refused) if refused.code() == Code::Unavailable => {}
        other => bail!("a retried sale while restoring got {other:?}, expected UNAVAILABLE"),
    }

    // The link comes back: the restore ends once the hub sent the ledger.
    cluster.heal(TTU);
    let took = cluster.wait_restored(TTU).await?;
    println!("{TTU} restored its ledger {took:?} after it answered Status");
    let status = cluster
        .admin(TTU)
        .await?
        .status(StatusRequest {})
        .await?
        .into_inner();
    ensure!(
        status.actor != status_before.actor,
        "the rebuilt district writes as {} again",
        status.actor
    );
    let ledger = open_ledger(&mut cluster.admin(TTU).await?).await?;
    ensure!(
        ledger == ledger_before,
        "the restored district opened {ledger}, it had {ledger_before}"
    );
    // Nothing refused while restoring was recorded; everything from before is back
    // as soon as the restore ended.
    let restored = stock_of(&mut ttu, "").await?;
    ensure!(
        restored.get(SKU) == Some(&40),
        "the rebuilt district lost its balance: {restored:?}"
    );
    let ids: Vec<String> = movements(&mut ttu)
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect();
    ensure!(
        ids.len() == 11 && !ids.iter().any(|id| id.contains("restoring")),
        "movements of the restored district: {ids:?}"
    );
    cluster.wait_converged(CONVERGE).await?;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wipe_and_restore_brings_a_district_back_while_the_hub_is_reachable() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .hub("kupang")
        .district(TTU)
        .start()
        .await?;
    let mut ttu = cluster.mart(TTU).await?;
    receive(&mut ttu, "rcv-1", SKU, 20).await?;
    sell(&mut ttu, "sale-1", SKU, 3).await?;
    cluster.wait_converged(CONVERGE).await?;

    let took = cluster.wipe_and_restore(TTU).await?;
    println!("{TTU} restored its ledger {took:?} after it answered Status");
    let mut ttu = cluster.mart(TTU).await?;
    let restored = stock_of(&mut ttu, "").await?;
    ensure!(restored.get(SKU) == Some(&17), "{restored:?}");
    sell(&mut ttu, "sale-2", SKU, 2).await?;
    cluster.wait_converged(CONVERGE).await?;
    let at_hub = stock_of(&mut cluster.mart(cluster.hub_id()).await?, TTU).await?;
    ensure!(at_hub.get(SKU) == Some(&15), "hub: {at_hub:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_district_restored_after_a_month_turned_gets_its_open_period_only() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .hub("kupang")
        .district(TTU)
        .start()
        .await?;
    let mut ttu = cluster.mart(TTU).await?;
    receive(&mut ttu, "rcv-1", SKU, 30).await?;
    sell(&mut ttu, "sale-1", SKU, 2).await?;
    cluster.wait_converged(CONVERGE).await?;
    let first = open_ledger(&mut cluster.admin(TTU).await?).await?;

    // TTU's clock moves to the 10th of next month, 10:00 WITA; its first write there
    // seals the first period and opens the next.
    // The hub's clock stays on today: the operator vouches for TTU's (`--accept-clock`).
    let (year, month) = wita_month_after(now_ms(), 1);
    cluster.set_clock_offset_ms(TTU, wita_ms(year, month, 10, 10) - now_ms());
    cluster.set_accept_clock(TTU, true);
    cluster.restart(TTU).await?;
    let mut ttu = cluster.mart(TTU).await?;
    sell(&mut ttu, "sale-2", SKU, 1).await?;
    let second = open_ledger(&mut cluster.admin(TTU).await?).await?;
    ensure!(
        second == format!("ledger/{TTU}/{year:04}-{month:02}"),
        "after the month turned {TTU} writes into {second} (first {first})"
    );
    // Converged over both periods; then the first is archived at both ends once
    // settled (the district once the hub acknowledged it whole, the hub once it
    // holds the later period).
    cluster.wait_converged(CONVERGE).await?;
    let (_, first_period) = ledger_period(&first).expect("a ledger period");
    let (_, second_period) = ledger_period(&second).expect("a ledger period");
    let expected = std::collections::BTreeMap::from([
        (first_period.to_string(), "archived".to_string()),
        (second_period.to_string(), "open".to_string()),
    ]);
    let hub = cluster.hub_id().to_string();
    for id in [TTU, hub.as_str()] {
        let last = std::cell::RefCell::new(Default::default());
        wait_until(&format!("{id} archived {first}"), CONVERGE, || async {
            let listed = ledger_periods(&mut cluster.admin(id).await?, TTU).await?;
            let done = listed == expected;
            *last.borrow_mut() = listed;
            Ok(done)
        })
        .await
        .with_context(|| format!("{id} lists the periods of {TTU} as {:?}", last.borrow()))?;
    }

    // The disk is lost: the restored district gets the open period only (with the
    // balances it opened with), and sells on in it.
    cluster.wipe_and_restore(TTU).await?;
    let restored = open_ledger(&mut cluster.admin(TTU).await?).await?;
    ensure!(restored == second, "restored {restored}, expected {second}");
    let at_ttu = ledger_periods(&mut cluster.admin(TTU).await?, TTU).await?;
    ensure!(
        at_ttu.keys().collect::<Vec<_>>() == [second_period],
        "the restored district holds periods {at_ttu:?}"
    );
    let mut ttu = cluster.mart(TTU).await?;
    ensure!(
        stock_of(&mut ttu, "").await?.get(SKU) == Some(&27),
        "the restored balance"
    );
    sell(&mut ttu, "sale-3", SKU, 1).await?;
    cluster.wait_converged(CONVERGE).await?;
    let at_hub = stock_of(&mut cluster.mart(&hub).await?, TTU).await?;
    ensure!(at_hub.get(SKU) == Some(&26), "hub: {at_hub:?}");
    ensure!(
        ledger_periods(&mut cluster.admin(&hub).await?, TTU).await? == expected,
        "the hub's periods of {TTU} after the restore"
    );
    Ok(())
}

/// `martctl sync watch` follows a restore held up by a cut link to its end: it waits
/// while nothing can move, and exits 0 once the district is restored and in step,
/// having seen every change of the restore arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn martctl_sync_watch_follows_a_restore_to_its_end() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .hub("kupang")
        .district(TTU)
        .start()
        .await?;
    let mut ttu = cluster.mart(TTU).await?;
    receive(&mut ttu, "rcv-1", SKU, 400).await?;
    for i in 0..300 {
        sell(&mut ttu, &format!("s-{i}"), SKU, 1).await?;
    }
    cluster.wait_converged(CONVERGE).await?;

    cluster.cut(TTU);
    cluster.wipe_and_start_restore(TTU).await?;
    let socket = cluster.node(TTU).admin_socket();
    let args = ["sync", "watch", "--for", "60", "--json"];
    let watch = tokio::spawn(async move { mart_tests::martctl::run(&socket, &args).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    ensure!(
        !watch.is_finished(),
        "sync watch ended while the link was cut"
    );
    cluster.heal(TTU);
    let out = watch.await??;
    ensure!(
        out.status.success(),
        "{}",
        mart_tests::martctl::describe(&args, &out)
    );
    let view: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(view["done"] == true && view["pending"] == 0, "{view}");
    // The genesis and opening, 400 units received and 300 sales, at least.
    let moved = view["changes_moved"].as_u64().unwrap_or(0);
    ensure!(
        moved >= 301,
        "the watch saw only {moved} changes move: {view}"
    );
    let status = cluster
        .admin(TTU)
        .await?
        .status(StatusRequest {})
        .await?
        .into_inner();
    ensure!(!status.restoring, "{status:?}");
    let restored = stock_of(&mut cluster.mart(TTU).await?, "").await?;
    ensure!(restored.get(SKU) == Some(&100), "{restored:?}");
    Ok(())
}

/// A district wiped and started WITHOUT `--restore` opens its period afresh beside
/// the hub's copy: the two histories cannot sync, and the district says why in its
/// peer state (what `martctl peers` shows) instead of sitting silently out of step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_district_wiped_and_started_without_restore_says_so() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .hub("kupang")
        .district(TTU)
        .start()
        .await?;
    let hub = cluster.hub_id().to_string();
    receive(&mut cluster.mart(TTU).await?, "rcv-1", SKU, 20).await?;
    cluster.wait_converged(CONVERGE).await?;

    cluster.wipe_and_restart(TTU).await?;
    receive(&mut cluster.mart(TTU).await?, "rcv-2", SKU, 5).await?;
    let admin = cluster.admin(TTU).await?;
    wait_until("the district reports its lost history", CONVERGE, || {
        let (mut admin, hub) = (admin.clone(), hub.clone());
        async move {
            let peer = peer_info(&mut admin, &hub).await?;
            Ok(peer.last_error.contains("started without --restore"))
        }
    })
    .await?;
    Ok(())
}
