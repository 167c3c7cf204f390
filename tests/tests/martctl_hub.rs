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
use std::process::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use mart_tests::hub::quota_line;
use mart_tests::{martctl_bin, wait_until, TestCluster};
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
const CONVERGE: Duration = Duration::from_secs(20);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// (year, month, day, hour, minute) in WITA (UTC+8, no daylight saving) of a Unix
/// time in ms, worked out here rather than with the CLI's or the node's functions.
fn wita_civil(unix_ms: i64) -> (i64, i64, i64, i64, i64) {
    let local = unix_ms + 8 * 3_600_000;
    let mut days = local.div_euclid(86_400_000);
    let minutes = local.rem_euclid(86_400_000) / 60_000;
    let mut year = 1970;
    loop {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let length = if leap { 366 } else { 365 };
        if days < length {
            let february = if leap { 29 } else { 28 };
            let months = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            let mut month = 1;
            for length in months {
                if days < length {
                    break;
                }
                days -= length;
                month += 1;
            }
            return (year, month, days + 1, minutes / 60, minutes % 60);
        }
        days -= length;
        year += 1;
    }
}

/// `2026-11-30 14:05 WITA`, as the CSV report labels a district's figures.
fn wita_label(unix_ms: i64) -> String {
    let (y, mo, d, h, mi) = wita_civil(unix_ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} WITA")
}

/// Runs `martctl --node unix:<admin socket of node> <args>`.
async fn martctl(cluster: &TestCluster, node: &str, args: &[&str]) -> Result<Output> {
    tokio::process::Command::new(martctl_bin())
        .arg("--node")
        .arg(format!(
            "unix:{}",
            cluster.node(node).admin_socket().display()
        ))
        .args(args)
        .env_remove("MARTCTL_NODE")
        .output()
        .await
        .with_context(|| format!("run martctl {args:?} at {node}"))
}

fn describe(node: &str, args: &[&str], out: &Output) -> String {
    format!(
        "martctl {args:?} at {node} exited {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs martctl and requires exit 0; returns stdout.
async fn ok(cluster: &TestCluster, node: &str, args: &[&str]) -> Result<String> {
    let out = martctl(cluster, node, args).await?;
    ensure!(out.status.success(), "{}", describe(node, args, &out));
    String::from_utf8(out.stdout).context("stdout is not UTF-8")
}

/// Runs martctl with `--json` and requires exit 0; returns what it printed.
async fn json_of(cluster: &TestCluster, node: &str, args: &[&str]) -> Result<Value> {
    let args = [args, &["--json"]].concat();
    let stdout = ok(cluster, node, &args).await?;
    serde_json::from_str(&stdout)
        .with_context(|| format!("martctl {args:?} at {node} printed no JSON: {stdout:?}"))
}

/// Like [`json_of`] for commands that print a JSON array.
async fn list_of(cluster: &TestCluster, node: &str, args: &[&str]) -> Result<Vec<Value>> {
    match json_of(cluster, node, args).await? {
        Value::Array(items) => Ok(items),
        other => bail!("martctl {args:?} at {node} printed {other}, not an array"),
    }
}

/// Runs martctl and requires the refusal an operator sees: exit 1, nothing on
/// stdout, and `error: <code>: <message>` on stderr; returns that line.
async fn refused(cluster: &TestCluster, node: &str, args: &[&str], code: &str) -> Result<String> {
    let out = martctl(cluster, node, args).await?;
    ensure!(
        out.status.code() == Some(1),
        "{}",
        describe(node, args, &out)
    );
    ensure!(out.stdout.is_empty(), "{}", describe(node, args, &out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .next()
        .filter(|l| l.starts_with(&format!("error: {code}: ")))
        .with_context(|| format!("not refused with {code:?}: {}", describe(node, args, &out)))?;
    Ok(line.to_string())
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

/// Records of an RFC 4180 text: fields separated by commas, records ended by a line
/// break, a field in double quotes may hold commas, line breaks and doubled quotes.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    // Whether the current field started with a quote, and whether it is still open.
    let (mut quoted, mut open) = (false, false);
    while let Some(c) = chars.next() {
        match c {
            '"' if open => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    open = false;
                }
            }
            _ if open => field.push(c),
            '"' if field.is_empty() && !quoted => (quoted, open) = (true, true),
            '"' => bail!("a stray double quote after {field:?} in {text:?}"),
            ',' => {
                record.push(std::mem::take(&mut field));
                quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                quoted = false;
            }
            _ if quoted => bail!("{c:?} after the closing quote of {field:?} in {text:?}"),
            _ => field.push(c),
        }
    }
    ensure!(!open, "a quoted field never closed in {text:?}");
    ensure!(
        field.is_empty() && record.is_empty(),
        "the last record does not end with a line break: {text:?}"
    );
    Ok(records)
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
    regional_stock_districts_and_the_csv_report(&cluster).await?;
    let year = wita_civil(now_ms()).0;
    budget_allocated_at_the_hub_and_enforced_at_ttu(&cluster, year).await?;
    online_orders_against_the_quota_ttu_granted(&cluster).await?;
    a_shipment_from_ttu_to_sikka(&cluster).await?;
    a_provincial_price_set_at_the_hub(&cluster).await?;
    what_only_the_hub_may_do_is_refused_at_a_district(&cluster, year).await?;
    eprintln!("the whole scenario took {:?}", started.elapsed());
    Ok(())
}

/// Section 1: receipts at both districts, then at the hub `stock --regional`,
/// `districts` and `report stock --csv`.
async fn regional_stock_districts_and_the_csv_report(cluster: &TestCluster) -> Result<()> {
    // At the hub: a name the CSV report must quote.
    let renamed = json_of(
        cluster,
        HUB,
        &["product", "update", "--sku", CASHEW, "--name", CASHEW_NAME],
    )
    .await?;
    ensure!(
        renamed["sku"] == CASHEW
            && renamed["name"] == CASHEW_NAME
            && renamed["price_rupiah"] == CASHEW_PRICE,
        "product update --name at the hub printed {renamed}"
    );

    let before_receipts = now_ms();
    let receipts = [
        (TTU, OIL, "12", "30.000", "rcv-ttu-oil"),
        (TTU, CASHEW, "4", "50000", "rcv-ttu-cashew"),
        (SIKKA, OIL, "7", "31000", "rcv-sikka-oil"),
    ];
    for (node, sku, qty, cost, id) in receipts {
        let ack = json_of(
            cluster,
            node,
            &[
                "receive",
                "--sku",
                sku,
                "--qty",
                qty,
                "--unit-cost",
                cost,
                "--request-id",
                id,
            ],
        )
        .await?;
        ensure!(
            ack["movement_id"] == id
                && ack["sku"] == sku
                && int(&ack, "quantity_on_hand")? == qty.parse::<i64>()?
                && ack["duplicate"] == false,
            "receive {sku} at {node} printed {ack}"
        );
    }
    let after_receipts = now_ms();
    cluster.wait_converged(CONVERGE).await?;

    // stock --regional --sku OIL: both districts, the SKU total, fresh figures.
    let rows = list_of(cluster, HUB, &["stock", "--regional", "--sku", OIL]).await?;
    let mut by_district = BTreeMap::new();
    for row in &rows {
        ensure!(
            row["sku"] == OIL
                && row["name"] == "Minyak Kayu Putih Humusu Wini"
                && row["sku_total"] == 19
                && row["stale"] == false,
            "stock --regional --sku {OIL} row {row}"
        );
        let as_of = int(row, "as_of_unix_ms")?;
        ensure!(
            as_of >= before_receipts && as_of <= after_receipts,
            "{row}: figures as of {as_of}, the receipts were made between \
             {before_receipts} and {after_receipts}"
        );
        ensure!(int(row, "last_sync_unix_ms")? > 0, "{row}");
        let district = row["district"].as_str().context("no district")?.to_string();
        ensure!(
            by_district
                .insert(district, int(row, "quantity")?)
                .is_none(),
            "a district listed twice: {rows:?}"
        );
    }
    let expected = BTreeMap::from([(SIKKA.to_string(), 7), (TTU.to_string(), 12)]);
    ensure!(
        by_district == expected,
        "stock --regional --sku {OIL}: {rows:?}"
    );

    // The same as a table: one line per district, none marked STALE.
    let table = ok(cluster, HUB, &["stock", "--regional", "--sku", OIL]).await?;
    let lines: Vec<&str> = table.lines().collect();
    ensure!(
        lines.len() == 3
            && lines[0].split_whitespace().collect::<Vec<_>>()
                == ["SKU", "NAME", "DISTRICT", "QTY", "SKU", "TOTAL", "FIGURES", "AS", "OF"],
        "stock --regional table:\n{table}"
    );
    for (district, qty) in [(SIKKA, "7"), (TTU, "12")] {
        let line = lines[1..]
            .iter()
            .find(|l| l.split_whitespace().any(|w| w == district))
            .with_context(|| format!("no line of {district} in\n{table}"))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            line.starts_with(OIL)
                && words.windows(3).any(|w| w == [district, qty, "19"])
                && line.ends_with(" ago)"),
            "{district}'s line of the regional table: {line:?}"
        );
    }

    // districts: each district's figures in a few numbers.
    let summaries = list_of(cluster, HUB, &["districts"]).await?;
    let mut seen = BTreeMap::new();
    for s in &summaries {
        ensure!(
            s["stale"] == false
                && int(s, "as_of_unix_ms")? >= before_receipts
                && int(s, "as_of_unix_ms")? <= after_receipts
                && int(s, "last_sync_unix_ms")? > 0,
            "districts: {s}"
        );
        let figures = (int(s, "skus")?, int(s, "units")?, int(s, "value_rupiah")?);
        seen.insert(
            s["district"].as_str().unwrap_or_default().to_string(),
            figures,
        );
    }
    let expected = BTreeMap::from([
        (SIKKA.to_string(), (1, 7, 7 * OIL_PRICE)),
        (TTU.to_string(), (2, 16, 12 * OIL_PRICE + 4 * CASHEW_PRICE)),
    ]);
    ensure!(seen == expected, "districts --json: {summaries:?}");

    // report stock --csv: a header, then one record per SKU and district, agreeing
    // with stock --regional --json.
    let csv = ok(cluster, HUB, &["report", "stock", "--csv"]).await?;
    let records = parse_csv(&csv)?;
    ensure!(
        records.first().map(Vec::as_slice)
            == Some(
                &[
                    "sku",
                    "name",
                    "district",
                    "quantity",
                    "sku_total",
                    "as_of_wita",
                    "stale"
                ]
                .map(String::from)[..]
            ),
        "report stock --csv header: {csv:?}"
    );
    ensure!(
        csv.contains(",\"Kacang Mete \"\"Nita\"\", sangrai\","),
        "the name with a comma and quotes is not quoted the RFC 4180 way: {csv:?}"
    );
    let regional = list_of(cluster, HUB, &["stock", "--regional"]).await?;
    let mut from_json = BTreeMap::new();
    for row in &regional {
        let key = (
            row["sku"].as_str().unwrap_or_default().to_string(),
            row["district"].as_str().unwrap_or_default().to_string(),
        );
        let fields = vec![
            row["name"].as_str().unwrap_or_default().to_string(),
            int(row, "quantity")?.to_string(),
            int(row, "sku_total")?.to_string(),
            wita_label(int(row, "as_of_unix_ms")?),
            row["stale"].to_string(),
        ];
        from_json.insert(key, fields);
    }
    let mut from_csv = BTreeMap::new();
    for record in &records[1..] {
        ensure!(
            record.len() == 7,
            "a CSV record of {} fields: {record:?}",
            record.len()
        );
        let key = (record[0].clone(), record[2].clone());
        let fields = vec![
            record[1].clone(),
            record[3].clone(),
            record[4].clone(),
            record[5].clone(),
            record[6].clone(),
        ];
        ensure!(
            from_csv.insert(key, fields).is_none(),
            "a SKU and district twice in {csv:?}"
        );
    }
    ensure!(
        from_csv == from_json,
        "report stock --csv {from_csv:?}\ndisagrees with stock --regional --json {from_json:?}"
    );
    let expected: Vec<(&str, &str, &str, &str, &str)> = vec![
        (CASHEW, TTU, CASHEW_NAME, "4", "4"),
        (OIL, SIKKA, "Minyak Kayu Putih Humusu Wini", "7", "19"),
        (OIL, TTU, "Minyak Kayu Putih Humusu Wini", "12", "19"),
    ];
    let got: Vec<(&str, &str, &str, &str, &str)> = from_csv
        .iter()
        .map(|((sku, district), f)| {
            (
                sku.as_str(),
                district.as_str(),
                f[0].as_str(),
                f[1].as_str(),
                f[2].as_str(),
            )
        })
        .collect();
    ensure!(got == expected, "report stock --csv: {csv}");
    ensure!(
        from_csv.values().all(|f| f[4] == "false"),
        "report stock --csv marks fresh figures stale: {csv}"
    );
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

/// Section 3: quota granted at ttu, orders placed at the hub, fulfilled at ttu, the
/// rest asked back.
async fn online_orders_against_the_quota_ttu_granted(cluster: &TestCluster) -> Result<()> {
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
            && shipment["received_at_unix_ms"] == 0
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
