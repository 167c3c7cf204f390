//! The hub-side and escrow commands of the real `martctl` as an operator runs them,
//! against a real hub (kupang) and two districts (ttu, sikka) over mutual TLS: the
//! regional stock, district summaries and the CSV stock report after receipts at
//! both districts; a budget allocated at the hub and enforced at ttu; online quota
//! granted by ttu, orders placed at the hub (refused beyond the quota, a retry with
//! the same request id placing nothing new), fulfilled at ttu, and unsold quota
//! asked back and released; a shipment from ttu to sikka seen in transit and then
//! received; a provincial price set at the hub reaching ttu; and the refusals a
//! district gets for what only the hub may do.
//!
//! Every figure is read from what martctl prints (JSON, a few table and CSV lines);
//! every wait is on what the nodes hold, never a sleep, and no command under test
//! is repeated to make it pass.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod escrow;
mod regional;

use anyhow::{bail, ensure, Context, Result};
use mart_tests::clock::{now_ms, wita_civil};
use mart_tests::hub::quota_line;
use mart_tests::{martctl, wait_until, TestCluster};
use serde_json::{json, Value};

const HUB: &str = "kupang";
const TTU: &str = "ttu";
const SIKKA: &str = "sikka";
/// Minyak kayu putih, 60 ml: received at both districts, escrowed and shipped.
const OIL: &str = "TTU-MKP-060";
const OIL_PRICE: i64 = 35_000;
/// Kacang mete: received at ttu only; renamed and repriced at the hub.
const CASHEW: &str = "SKA-MET-250";
const CASHEW_PRICE: i64 = 75_000;
/// A name that needs RFC 4180 quoting: a comma and double quotes.
const CASHEW_NAME: &str = "Kacang Mete \"Nita\", sangrai";
const ALLOCATED: i64 = 1_000_000;
const CONVERGE: Duration = Duration::from_secs(90);

/// `2026-11-30 14:05 WITA`, as the CSV report labels a district's figures.
fn wita_label(unix_ms: i64) -> String {
    let (y, mo, d, h, mi) = wita_civil(unix_ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} WITA")
}

fn socket(cluster: &TestCluster, node: &str) -> PathBuf {
    cluster.node(node).admin_socket()
}

/// Runs martctl at `node` and requires exit 0; returns stdout.
async fn ok(cluster: &TestCluster, node: &str, args: &[&str]) -> Result<String> {
    martctl::ok(&socket(cluster, node), args).await
}

/// Runs martctl at `node` with `--json`; returns what it printed.
async fn json_of(cluster: &TestCluster, node: &str, args: &[&str]) -> Result<Value> {
    martctl::json(&socket(cluster, node), args).await
}

/// Like [`json_of`] for commands that print a JSON array.
async fn list_of(cluster: &TestCluster, node: &str, args: &[&str]) -> Result<Vec<Value>> {
    martctl::list(&socket(cluster, node), args).await
}

/// The refusal an operator sees at `node`; returns its `error: <code>: ...` line.
async fn refused(cluster: &TestCluster, node: &str, args: &[&str], code: &str) -> Result<String> {
    martctl::refused(&socket(cluster, node), args, code).await
}

fn int(v: &Value, field: &str) -> Result<i64> {
    v[field]
        .as_i64()
        .with_context(|| format!("no integer {field} in {v}"))
}

/// `stock --sku S --json` at a district: its quantity of that SKU.
async fn on_hand(cluster: &TestCluster, node: &str, sku: &str) -> Result<i64> {
    let levels = list_of(cluster, node, &["stock", "--sku", sku]).await?;
    match levels.as_slice() {
        [level] if level["sku"] == sku => int(level, "quantity"),
        other => bail!("stock --sku {sku} at {node} listed {other:?}"),
    }
}

/// The one item of a JSON list, or an error showing the list.
fn only(items: Vec<Value>, what: &str) -> Result<Value> {
    match <[Value; 1]>::try_from(items) {
        Ok([item]) => Ok(item),
        Err(items) => bail!("{what}: expected one item, got {items:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_the_hub_and_escrow_commands() -> Result<()> {
    let started = Instant::now();
    let cluster = TestCluster::builder()
        .hub(HUB)
        .district(TTU)
        .district(SIKKA)
        .start()
        .await?;
    regional::regional_stock_districts_and_the_csv_report(&cluster).await?;
    let year = wita_civil(now_ms()).0;
    budget_allocated_at_the_hub_and_enforced_at_ttu(&cluster, year).await?;
    escrow::online_orders_against_the_quota_ttu_granted(&cluster).await?;
    a_shipment_from_ttu_to_sikka(&cluster).await?;
    a_provincial_price_set_at_the_hub(&cluster).await?;
    what_only_the_hub_may_do_is_refused_at_a_district(&cluster, year).await?;
    eprintln!("the whole scenario took {:?}", started.elapsed());
    Ok(())
}

/// Section 2: `budget allocate` at the hub, enforced at ttu.
async fn budget_allocated_at_the_hub_and_enforced_at_ttu(
    cluster: &TestCluster,
    year: i64,
) -> Result<()> {
    // ttu spent 12 x 30.000 + 4 x 50.000 in section 1.
    let spent = 12 * 30_000 + 4 * 50_000;
    let before = only(list_of(cluster, TTU, &["budget"]).await?, "budget at ttu")?;
    ensure!(
        before
            == json!({"district": TTU, "year": year, "allocated": null, "spent": spent,
                      "remaining": null, "over_budget": []}),
        "ttu's budget before any allocation: {before}"
    );

    let year_arg = year.to_string();
    let allocated = list_of(
        cluster,
        HUB,
        &[
            "budget",
            "allocate",
            "--district",
            TTU,
            "--year",
            &year_arg,
            "--amount",
            "1.000.000",
        ],
    )
    .await?;
    let line = only(allocated, "budget allocate")?;
    ensure!(
        line["district"] == TTU && line["year"] == year && line["allocated"] == ALLOCATED,
        "budget allocate printed {line}"
    );
    cluster.wait_converged(CONVERGE).await?;
    let at_ttu = only(list_of(cluster, TTU, &["budget"]).await?, "budget at ttu")?;
    let expected = json!({"district": TTU, "year": year, "allocated": ALLOCATED,
                          "spent": spent, "remaining": ALLOCATED - spent, "over_budget": []});
    ensure!(at_ttu == expected, "ttu's budget once allocated: {at_ttu}");

    // 20 x 30.000 = 600.000 with 440.000 left: refused, nothing stored.
    let over = [
        "receive",
        "--sku",
        OIL,
        "--qty",
        "20",
        "--unit-cost",
        "30000",
        "--request-id",
        "rcv-over",
    ];
    let line = refused(cluster, TTU, &over, "failed precondition").await?;
    let left = format!("Rp {} left", ALLOCATED - spent);
    ensure!(
        line.contains("over budget")
            && line.contains(&left)
            && line.contains(&format!("{year} budget"))
            && line.contains("over-budget reason"),
        "the refusal does not name the budget and what is left: {line:?}"
    );
    ensure!(
        on_hand(cluster, TTU, OIL).await? == 12,
        "a refused receipt moved stock"
    );
    let ledger = list_of(cluster, TTU, &["movements"]).await?;
    ensure!(
        ledger.len() == 2 && !ledger.iter().any(|m| m["id"] == "rcv-over"),
        "a refused receipt is in ttu's ledger: {ledger:?}"
    );
    let after_refusal = only(list_of(cluster, TTU, &["budget"]).await?, "budget at ttu")?;
    ensure!(
        after_refusal == expected,
        "a refused receipt changed the budget: {after_refusal}"
    );

    // The same receipt with a reason is recorded under the same request id.
    let reason = "harga pemasok naik, stok untuk pameran IKM";
    let with_reason = [&over[..], &["--over-budget-reason", reason]].concat();
    let ack = json_of(cluster, TTU, &with_reason).await?;
    ensure!(
        ack["movement_id"] == "rcv-over"
            && ack["quantity_on_hand"] == 32
            && ack["duplicate"] == false,
        "receive with an over-budget reason printed {ack}"
    );
    let spent = spent + 600_000;
    let at_ttu = only(list_of(cluster, TTU, &["budget"]).await?, "budget at ttu")?;
    ensure!(
        at_ttu
            == json!({"district": TTU, "year": year, "allocated": ALLOCATED, "spent": spent,
                      "remaining": ALLOCATED - spent,
                      "over_budget": [{"movement_id": "rcv-over", "cost": 600_000,
                                       "reason": reason}]}),
        "ttu's budget after the over-budget receipt: {at_ttu}"
    );
    let table = ok(cluster, TTU, &["budget"]).await?;
    let expected_line = format!("over budget at ttu: rcv-over cost Rp 600.000: {reason}");
    ensure!(
        table.lines().any(|l| l == expected_line),
        "budget table lacks {expected_line:?}:\n{table}"
    );
    ensure!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    TTU,
                    &year.to_string(),
                    "Rp",
                    "1.000.000",
                    "Rp",
                    "1.160.000",
                    "-Rp",
                    "160.000",
                    "1"
                ]),
        "budget table has no line for ttu's year:\n{table}"
    );
    Ok(())
}

/// Section 4: `transfer out` at ttu, `transfer in` at sikka, `transfers` at the hub.
async fn a_shipment_from_ttu_to_sikka(cluster: &TestCluster) -> Result<()> {
    let id = "TRF-TTU-SKA-0001";
    let sent = json_of(
        cluster,
        TTU,
        &[
            "transfer",
            "out",
            "--transfer-id",
            id,
            "--sku",
            OIL,
            "--qty",
            "4",
            "--to",
            SIKKA,
        ],
    )
    .await?;
    ensure!(
        sent["sku"] == OIL && sent["quantity_on_hand"] == 29 - 4 && sent["duplicate"] == false,
        "transfer out printed {sent}"
    );
    cluster.wait_in_step(&[TTU], CONVERGE).await?;
    let shipment = only(list_of(cluster, HUB, &["transfers"]).await?, "transfers")?;
    ensure!(
        shipment["transfer_id"] == id
            && shipment["from"] == TTU
            && shipment["to"] == SIKKA
            && shipment["sku"] == OIL
            && shipment["sent"] == 4
            && shipment["received"] == 0
            && int(&shipment, "sent_at_unix_ms")? > 0
            && shipment["received_at_unix_ms"].is_null()
            && shipment["state"] == "in_transit",
        "the hub's transfers before sikka received: {shipment}"
    );

    let received = json_of(
        cluster,
        SIKKA,
        &[
            "transfer",
            "in",
            "--transfer-id",
            id,
            "--sku",
            OIL,
            "--qty",
            "4",
            "--from",
            TTU,
        ],
    )
    .await?;
    ensure!(
        received["sku"] == OIL && received["quantity_on_hand"] == 7 + 4,
        "transfer in printed {received}"
    );
    cluster.wait_converged(CONVERGE).await?;
    let in_transit = list_of(cluster, HUB, &["transfers"]).await?;
    ensure!(
        in_transit.is_empty(),
        "still in transit after receipt: {in_transit:?}"
    );
    ensure!(
        ok(cluster, HUB, &["transfers"]).await? == "nothing in transit\n",
        "transfers table with nothing in transit"
    );
    let all = only(
        list_of(cluster, HUB, &["transfers", "--all"]).await?,
        "transfers --all",
    )?;
    ensure!(
        all["transfer_id"] == id
            && all["sent"] == 4
            && all["received"] == 4
            && int(&all, "received_at_unix_ms")? >= int(&shipment, "sent_at_unix_ms")?
            && all["state"] == "received",
        "transfers --all after sikka received: {all}"
    );
    let rows = list_of(cluster, HUB, &["stock", "--regional", "--sku", OIL]).await?;
    let quantities: BTreeMap<String, (i64, i64)> = rows
        .iter()
        .map(|r| {
            let d = r["district"].as_str().unwrap_or_default().to_string();
            (
                d,
                (
                    int(r, "quantity").unwrap_or(-1),
                    int(r, "sku_total").unwrap_or(-1),
                ),
            )
        })
        .collect();
    ensure!(
        quantities == BTreeMap::from([(SIKKA.to_string(), (11, 36)), (TTU.to_string(), (25, 36))]),
        "regional stock after the shipment: {rows:?}"
    );
    Ok(())
}

/// Section 5: a provincial price set at the hub reaches ttu; ttu may not edit it.
async fn a_provincial_price_set_at_the_hub(cluster: &TestCluster) -> Result<()> {
    let updated = json_of(
        cluster,
        HUB,
        &["product", "update", "--sku", CASHEW, "--price", "80.000"],
    )
    .await?;
    ensure!(
        updated["price_rupiah"] == 80_000 && updated["name"] == CASHEW_NAME,
        "product update --price at the hub printed {updated}"
    );
    cluster.wait_converged(CONVERGE).await?;
    let at_ttu = json_of(cluster, TTU, &["product", "show", CASHEW]).await?;
    ensure!(
        at_ttu == updated,
        "product show at ttu {at_ttu}, the hub's update {updated}"
    );

    let line = refused(
        cluster,
        TTU,
        &["product", "update", "--sku", CASHEW, "--price", "1"],
        "permission denied",
    )
    .await?;
    ensure!(
        line.contains(CASHEW) && line.contains("catalog/province"),
        "the refusal does not say whose product it is: {line:?}"
    );
    for node in [TTU, HUB] {
        let product = json_of(cluster, node, &["product", "show", CASHEW]).await?;
        ensure!(
            product["price_rupiah"] == 80_000,
            "a refused update changed the price at {node}: {product}"
        );
    }
    Ok(())
}

/// Section 6: HubService commands at a district exit 1, permission denied, and
/// change nothing.
async fn what_only_the_hub_may_do_is_refused_at_a_district(
    cluster: &TestCluster,
    year: i64,
) -> Result<()> {
    let budget_before = list_of(cluster, TTU, &["budget"]).await?;
    let year = year.to_string();
    let hub_only: [&[&str]; 6] = [
        &["stock", "--regional", "--sku", OIL],
        &["stock", "--low"],
        &["districts"],
        &["transfers", "--all"],
        &[
            "budget",
            "allocate",
            "--district",
            TTU,
            "--year",
            &year,
            "--amount",
            "999000000",
        ],
        &[
            "order", "place", "--sku", OIL, "--qty", "1", "--outlet", TTU,
        ],
    ];
    for args in hub_only {
        let line = refused(cluster, TTU, args, "permission denied").await?;
        ensure!(
            line.contains("provincial hub only"),
            "martctl {args:?} at ttu: {line:?} does not say only the hub may"
        );
    }
    ensure!(
        list_of(cluster, TTU, &["budget"]).await? == budget_before,
        "a refused allocation changed ttu's budget"
    );
    ensure!(
        list_of(cluster, TTU, &["orders"]).await?.len() == 1,
        "a refused order place at ttu added an order"
    );
    Ok(())
}
