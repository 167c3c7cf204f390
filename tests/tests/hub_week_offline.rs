//! A district offline for a week (invariants 4 and 7 of the brief), on a hub whose
//! staleness threshold is two seconds standing in for a day: TTU grants the hub an
//! online quota and syncs, then its link drops for seven "days". TTU keeps selling
//! in store, but never out of the units it reserved for the hub; the hub labels its
//! figures of TTU stale with the time of the newest movement it got, keeps showing
//! ALOR (connected) fresh, and accepts online orders for TTU up to exactly the
//! quota, refusing the next one with the amount available. Once the link is back the
//! orders reach TTU, which fulfils some and cancels one; after convergence the hub
//! shows TTU fresh, both ends agree on every quota figure and TTU's stock is what it
//! received minus what it sold in store and shipped online.
//!
//! The week is wall-clock time by design: each "day" ends when the hub's own
//! figures say they are that old, polled with `wait_until`.

use std::time::Duration;

use mart_tests::clock::now_ms;

use anyhow::{bail, ensure, Context, Result};
use mart_proto::tonic::Code;
use mart_proto::v1::{
    Buyer, DistrictQuantity, Freshness, Order, OrderActionRequest, PlaceOrderRequest, QuotaLine,
    QuotaRequest,
};
use mart_tests::hub::{
    available_in_refusal, district_line, orders, quota_line, regional, summaries,
};
use mart_tests::ops::{movements_of, on_hand, receive, sale, sell, stock_of};
use mart_tests::{wait_until, HubClient, TestCluster};

const HUB: &str = "kupang";
const TTU: &str = "ttu";
const ALOR: &str = "alor";
const SKU: &str = "TTU-MKP-060";
/// The hub's `stale_after_secs`: one "day" of this test.
const DAY_SECS: u64 = 2;
const DAY_MS: i64 = DAY_SECS as i64 * 1000;
const WEEK_DAYS: i64 = 7;
/// Units TTU hands the hub as online quota.
const QUOTA: i64 = 10;
const RECEIVED: i64 = 40;
/// Store sales each offline day.
const DAILY_SALE: i64 = 3;
const CONVERGE: Duration = Duration::from_secs(90);

/// Checks a freshness the hub answered between `t0` and `t1` (test clock, the same
/// machine as the hub's) against its own figures: stale exactly when both the newest
/// change and the last sync are older than the threshold. Returns the age of the
/// figures at `t0`.
fn judge(f: &Freshness, t0: i64, t1: i64) -> Result<i64> {
    let newest = f.as_of_unix_ms.max(f.last_sync_unix_ms);
    if t0 - newest > DAY_MS {
        ensure!(
            f.stale,
            "figures {} ms old not labelled stale: {f:?}",
            t0 - newest
        );
    }
    if t1 - newest <= DAY_MS {
        ensure!(
            !f.stale,
            "figures {} ms old labelled stale: {f:?}",
            t1 - newest
        );
    }
    Ok(t0 - newest)
}

/// The hub's regional line of TTU's SKU and its freshness, judged.
async fn ttu_regional(hub: &mut HubClient) -> Result<(DistrictQuantity, Freshness, i64)> {
    let t0 = now_ms();
    let r = regional(hub).await?;
    let t1 = now_ms();
    ensure!(
        r.stale_after_seconds == DAY_SECS as i64,
        "the hub's threshold is {} s, configured {DAY_SECS}",
        r.stale_after_seconds
    );
    let line = district_line(&r, SKU, TTU)
        .cloned()
        .with_context(|| format!("regional stock has no {SKU} at {TTU}: {r:?}"))?;
    let f = line.freshness.clone().context("no freshness")?;
    let age = judge(&f, t0, t1)?;
    Ok((line, f, age))
}

fn place(outlet: &str, id: &str, quantity: i64) -> PlaceOrderRequest {
    PlaceOrderRequest {
        request_id: id.into(),
        outlet: outlet.into(),
        sku: SKU.into(),
        quantity,
        buyer: Buyer::Asn as i32,
    }
}

/// Places an order for TTU that must be accepted as asked.
async fn accept(hub: &mut HubClient, id: &str, quantity: i64) -> Result<Order> {
    let order = hub
        .place_order(place(TTU, id, quantity))
        .await
        .with_context(|| format!("PlaceOrder {id} of {quantity}"))?
        .into_inner();
    ensure!(
        order.id == id
            && order.outlet == TTU
            && order.quantity == quantity
            && order.status == "accepted",
        "order {id} of {quantity}: {order:?}"
    );
    Ok(order)
}

/// Places an order for TTU that must be refused, saying `available` are available.
async fn refuse(hub: &mut HubClient, id: &str, quantity: i64, available: i64) -> Result<()> {
    match hub.place_order(place(TTU, id, quantity)).await {
        Err(s) if s.code() == Code::FailedPrecondition => {
            ensure!(
                available_in_refusal(s.message()) == Some(available),
                "order {id} of {quantity} refused saying {:?}; {available} are available",
                s.message()
            );
            Ok(())
        }
        other => bail!("order {id} of {quantity} with {available} available: {other:?}"),
    }
}

fn same_quota(l: &QuotaLine, expected: (i64, i64, i64, i64, i64)) -> bool {
    let (granted, accepted, fulfilled, cancelled, released) = expected;
    l.granted == granted
        && l.accepted == accepted
        && l.fulfilled == fulfilled
        && l.cancelled == cancelled
        && l.released == released
        && l.available == granted - released - accepted + cancelled
        && l.reserved == granted - fulfilled - released
        && l.pending_returns == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_offline_the_hub_shows_ttu_stale_and_sells_only_its_quota() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub(HUB)
        .district(ALOR)
        .district(TTU)
        // Connected districts re-announce every second, so the hub's last sync with
        // them stays within the two-second "day".
        .resync_secs(1)
        .stale_after_secs(DAY_SECS)
        .start()
        .await?;
    let mut ttu = cluster.mart(TTU).await?;
    let mut hub = cluster.mart(HUB).await?;
    let mut hub_api = cluster.hub_service(HUB).await?;

    receive(&mut ttu, "rcv-1", SKU, RECEIVED).await?;
    let granted = ttu
        .grant_quota(QuotaRequest {
            request_id: "grant-1".into(),
            sku: SKU.into(),
            quantity: QUOTA,
        })
        .await
        .context("GrantQuota")?
        .into_inner();
    ensure!(granted.quantity_on_hand == RECEIVED, "{granted:?}");
    let mut store_sold = 2;
    sell(&mut ttu, "sale-0", SKU, store_sold).await?;
    receive(&mut cluster.mart(ALOR).await?, "rcv-alor", "SKA-MET-250", 5).await?;
    cluster.wait_converged(CONVERGE).await?;
    let at_hub = quota_line(&mut hub, TTU, SKU).await?;
    ensure!(
        same_quota(&at_hub, (QUOTA, 0, 0, 0, 0)),
        "before the cut the hub has {at_hub:?}"
    );
    let synced_stock = RECEIVED - store_sold;

    // The link drops. What the hub last got from TTU:
    cluster.cut(TTU);
    let hub_copy = movements_of(&mut hub, TTU).await?;
    let newest_at_hub = hub_copy
        .iter()
        .map(|m| m.at_unix_ms)
        .max()
        .context("no movements")?;
    let newest_at_ttu = movements_of(&mut ttu, "")
        .await?
        .iter()
        .map(|m| m.at_unix_ms)
        .max()
        .context("no movements at ttu")?;
    ensure!(
        newest_at_hub == newest_at_ttu,
        "converged, yet the hub's newest movement of ttu is at {newest_at_hub}, ttu's at {newest_at_ttu}"
    );

    // Seven days offline: each day ends when the hub's figures of TTU are that old;
    // TTU sells in store every day, none of it reaching the hub. From the end of the
    // first day (when nothing sent before the cut can still be in flight) the hub's
    // last sync with TTU must not move.
    let mut settled: Option<i64> = None;
    for day in 1..=WEEK_DAYS {
        let what = format!("the hub's figures of ttu are {day} days old");
        let timeout = Duration::from_millis((DAY_MS * (day + 1) + 10_000) as u64);
        wait_until(&what, timeout, || {
            let mut hub_api = hub_api.clone();
            async move {
                let (line, f, age) = ttu_regional(&mut hub_api).await?;
                ensure!(
                    f.as_of_unix_ms == newest_at_hub
                        && settled.is_none_or(|s| s == f.last_sync_unix_ms)
                        && line.quantity == synced_stock,
                    "with ttu cut off the hub shows {line:?}; it last got a movement at \
                     {newest_at_hub}, last synced at {settled:?}, stock {synced_stock}"
                );
                Ok(age > day * DAY_MS)
            }
        })
        .await?;
        if settled.is_none() {
            let (_, f, _) = ttu_regional(&mut hub_api).await?;
            ensure!(
                f.last_sync_unix_ms > 0 && f.stale,
                "a day after the cut the hub shows ttu {f:?}"
            );
            settled = Some(f.last_sync_unix_ms);
        }
        let ack = sell(&mut ttu, &format!("sale-day-{day}"), SKU, DAILY_SALE).await?;
        store_sold += DAILY_SALE;
        ensure!(
            ack.quantity_on_hand == RECEIVED - store_sold,
            "day {day}: {ack:?}"
        );
    }
    let last_sync = settled.context("a day passed")?;
    let (line, f, _) = ttu_regional(&mut hub_api).await?;
    ensure!(
        f.stale
            && f.as_of_unix_ms == newest_at_hub
            && f.last_sync_unix_ms == last_sync
            && line.quantity == synced_stock,
        "after a week offline the hub shows {line:?}"
    );
    let t0 = now_ms();
    let all = summaries(&mut hub_api).await?;
    let t1 = now_ms();
    let summary = all.get(TTU).context("no summary of ttu")?;
    let sf = summary.freshness.clone().context("no freshness")?;
    judge(&sf, t0, t1)?;
    ensure!(
        sf.stale && sf.as_of_unix_ms == newest_at_hub && summary.units == synced_stock,
        "the hub's summary of ttu after a week offline: {summary:?}"
    );
    let week_over = now_ms();
    ensure!(
        week_over - newest_at_hub.max(last_sync) > WEEK_DAYS * DAY_MS,
        "the week was short"
    );
    // ALOR stayed connected: the hub kept syncing with it and shows it fresh.
    wait_until(
        "the hub shows alor fresh, synced after the week",
        CONVERGE,
        || {
            let mut hub_api = hub_api.clone();
            async move {
                let t0 = now_ms();
                let all = summaries(&mut hub_api).await?;
                let t1 = now_ms();
                let f = all
                    .get(ALOR)
                    .and_then(|s| s.freshness.clone())
                    .context("no summary of alor")?;
                judge(&f, t0, t1)?;
                Ok(!f.stale && f.last_sync_unix_ms > week_over)
            }
        },
    )
    .await?;

    // In store TTU cannot touch what it reserved for the hub.
    let sellable = RECEIVED - store_sold - QUOTA;
    let refused = ttu
        .record_sale(sale("sale-too-many", SKU, sellable + 1))
        .await;
    ensure!(
        matches!(&refused, Err(s) if s.code() == Code::FailedPrecondition),
        "a store sale of {} with {sellable} sellable got {refused:?}",
        sellable + 1
    );
    ensure!(on_hand(&mut ttu, SKU).await? == RECEIVED - store_sold);

    // Online orders while TTU is offline: up to exactly the quota.
    accept(&mut hub_api, "ord-1", 4).await?;
    accept(&mut hub_api, "ord-2", 4).await?;
    refuse(&mut hub_api, "ord-3", 3, 2).await?;
    accept(&mut hub_api, "ord-4", 2).await?;
    refuse(&mut hub_api, "ord-5", 1, 0).await?;
    // A repeated request is the same order, not a new one.
    let again = accept(&mut hub_api, "ord-1", 4).await?;
    ensure!(again.id == "ord-1", "{again:?}");
    let at_hub = quota_line(&mut hub, TTU, SKU).await?;
    ensure!(
        same_quota(&at_hub, (QUOTA, QUOTA, 0, 0, 0)),
        "the hub accepted orders for {QUOTA} units: {at_hub:?}"
    );
    let placed = orders(&mut hub, "", TTU).await?;
    ensure!(
        placed.keys().map(String::as_str).collect::<Vec<_>>() == ["ord-1", "ord-2", "ord-4"],
        "the hub lists {placed:?}"
    );
    ensure!(
        orders(&mut ttu, "", "").await?.is_empty(),
        "ttu saw orders through a cut link"
    );

    // The link is back: the orders reach TTU.
    cluster.heal(TTU);
    let healed_at = now_ms();
    cluster.sync_now(TTU, 10).await?;
    cluster.wait_in_step(&[TTU], CONVERGE).await?;
    let seen = orders(&mut ttu, "accepted", "").await?;
    ensure!(
        seen.keys().map(String::as_str).collect::<Vec<_>>() == ["ord-1", "ord-2", "ord-4"],
        "ttu sees {seen:?}"
    );
    let own = quota_line(&mut ttu, TTU, SKU).await?;
    ensure!(
        same_quota(&own, (QUOTA, QUOTA, 0, 0, 0)),
        "ttu's quota once the orders arrived: {own:?}"
    );

    let mut shipped = 0;
    for (id, fulfil) in [("ord-1", true), ("ord-2", false), ("ord-4", true)] {
        let request = OrderActionRequest {
            request_id: format!("decide-{id}"),
            order_id: id.into(),
        };
        let ack = if fulfil {
            ttu.fulfil_order(request).await
        } else {
            ttu.cancel_order(request).await
        }
        .with_context(|| format!("deciding {id}"))?
        .into_inner();
        if fulfil {
            shipped += seen[id].quantity;
        }
        ensure!(
            !ack.duplicate && ack.quantity_on_hand == RECEIVED - store_sold - shipped,
            "deciding {id}: {ack:?}"
        );
    }
    cluster.wait_in_step(&[TTU], CONVERGE).await?;

    let statuses: Vec<(String, String)> = orders(&mut hub, "", TTU)
        .await?
        .into_values()
        .map(|o| (o.id, o.status))
        .collect();
    ensure!(
        statuses
            == [
                ("ord-1".to_string(), "fulfilled".to_string()),
                ("ord-2".into(), "cancelled".into()),
                ("ord-4".into(), "fulfilled".into()),
            ],
        "the hub's orders of ttu: {statuses:?}"
    );
    let cancelled = 4;
    let expected = (QUOTA, QUOTA, shipped, cancelled, 0);
    let at_hub = quota_line(&mut hub, TTU, SKU).await?;
    let own = quota_line(&mut ttu, TTU, SKU).await?;
    ensure!(
        same_quota(&at_hub, expected) && at_hub == own,
        "quota after the week: the hub {at_hub:?}, ttu {own:?}"
    );
    let stock = RECEIVED - store_sold - shipped;
    ensure!(
        stock_of(&mut ttu, "").await?.get(SKU) == Some(&stock)
            && stock_of(&mut hub, TTU).await?.get(SKU) == Some(&stock),
        "ttu's stock should be {stock} at ttu and at the hub"
    );

    // Fresh again, as of TTU's newest movement.
    wait_until("the hub shows ttu fresh", CONVERGE, || {
        let mut hub_api = hub_api.clone();
        async move { Ok(!ttu_regional(&mut hub_api).await?.1.stale) }
    })
    .await?;
    let newest_at_ttu = movements_of(&mut ttu, "")
        .await?
        .iter()
        .map(|m| m.at_unix_ms)
        .max()
        .context("no movements at ttu")?;
    let (line, f, _) = ttu_regional(&mut hub_api).await?;
    ensure!(
        f.as_of_unix_ms == newest_at_ttu
            && f.last_sync_unix_ms >= healed_at
            && line.quantity == stock,
        "after the link came back the hub shows {line:?}; ttu's newest movement is at \
         {newest_at_ttu}, the link healed at {healed_at}"
    );

    // The cancelled order's units are the hub's to sell again, and no more.
    accept(&mut hub_api, "ord-6", cancelled).await?;
    refuse(&mut hub_api, "ord-7", 1, 0).await?;
    println!(
        "a week of {WEEK_DAYS} x {DAY_SECS} s offline: {store_sold} sold in store, \
         {shipped} shipped online, {cancelled} cancelled; stock {stock}"
    );
    Ok(())
}
