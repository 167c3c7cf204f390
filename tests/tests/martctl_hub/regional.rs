//! Section 1 of the martctl hub test: regional stock, district summaries and the
//! CSV stock report, read back field by field.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context, Result};
use mart_tests::TestCluster;

use super::*;

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

/// Section 1: receipts at both districts, then at the hub `stock --regional`,
/// `districts` and `report stock --csv`.
pub async fn regional_stock_districts_and_the_csv_report(cluster: &TestCluster) -> Result<()> {
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
