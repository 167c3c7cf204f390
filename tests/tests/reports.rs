//! Reports against real nodes: sales made at a district, by channel and buyer, add
//! up to the same rows and totals in the district's own SalesReport and, once the
//! hub holds the district's ledger, in the hub's (over its admin socket and over
//! mutual TLS with an operator certificate; a district certificate is refused).
//! Then `martctl report sales --csv` and `martctl catalog --expiring` against one
//! node, as an operator runs them.
//!
//! Sales are timestamped by the node's clock, so their report date is the WITA
//! date at which the node recorded them; the expected rows are keyed by the date of
//! each recorded movement, so a run across midnight WITA still expects the truth.

use std::collections::BTreeMap;
use std::time::Duration;

use mart_tests::clock::now_ms;

use anyhow::{ensure, Context, Result};
use mart_node::domain::sales_report::LocalDate;
use mart_proto::tonic::transport::Channel as GrpcChannel;
use mart_proto::tonic::Code;
use mart_proto::v1::report_service_client::ReportServiceClient;
use mart_proto::v1::{
    Buyer, Channel, GetProductRequest, Movement, SaleRequest, SalesReportRequest,
    SalesReportResponse,
};
use mart_tests::client::connect_unix;
use mart_tests::ops::{movements_of, receive};
use mart_tests::pki::Role;
use mart_tests::{connect_tls, MartClient, NodeProcess, TestCluster};
use serde_json::Value;

type ReportClient = ReportServiceClient<GrpcChannel>;

const DISTRICT: &str = "ttu";
const CONVERGE: Duration = Duration::from_secs(90);
const DAY_MS: i64 = 86_400_000;

/// The WITA date `offset_days` from now, `YYYY-MM-DD`.
fn wita_date(offset_days: i64) -> String {
    LocalDate::of_unix_ms(now_ms() + offset_days * DAY_MS)
        .expect("a date near now")
        .to_string()
}

async fn report_client(node: &NodeProcess) -> Result<ReportClient> {
    Ok(ReportServiceClient::new(
        connect_unix(&node.admin_socket()).await?,
    ))
}

/// One sale the test makes: what it asks for, so what the report must count.
struct Sold {
    request_id: &'static str,
    sku: &'static str,
    quantity: i64,
    /// `None` sells at the catalog price.
    price: Option<i64>,
    channel: Channel,
    buyer: Buyer,
}

const SALES: &[Sold] = &[
    Sold {
        request_id: "s-1",
        sku: "TTU-MKP-060",
        quantity: 2,
        price: None,
        channel: Channel::Store,
        buyer: Buyer::Public,
    },
    Sold {
        request_id: "s-2",
        sku: "TTU-MKP-060",
        quantity: 1,
        price: Some(32_000),
        channel: Channel::Store,
        buyer: Buyer::Asn,
    },
    Sold {
        request_id: "s-3",
        sku: "TTU-TNN-SLD",
        quantity: 1,
        price: Some(450_000),
        channel: Channel::Store,
        buyer: Buyer::Asn,
    },
    Sold {
        request_id: "s-4",
        sku: "TTU-MKP-120",
        quantity: 3,
        price: Some(60_000),
        channel: Channel::Online,
        buyer: Buyer::Asn,
    },
    Sold {
        request_id: "s-5",
        sku: "TTU-MKP-120",
        quantity: 1,
        price: Some(65_000),
        channel: Channel::Online,
        buyer: Buyer::Public,
    },
];

/// (date, district, channel, buyer) -> (sales, units, revenue).
type Rows = BTreeMap<(String, String, i32, i32), (u64, i64, i64)>;

/// Records [`SALES`] (after receiving stock) and returns the rows a report must
/// show: each sale at the price asked or the catalog's, on the WITA date of the
/// movement the node recorded.
async fn sell(mart: &mut MartClient, district: &str) -> Result<Rows> {
    for (i, sku) in ["TTU-MKP-060", "TTU-MKP-120", "TTU-TNN-SLD"]
        .iter()
        .enumerate()
    {
        receive(mart, &format!("rcv-{i}"), sku, 20).await?;
    }
    for s in SALES {
        let ack = mart
            .record_sale(SaleRequest {
                request_id: s.request_id.into(),
                sku: s.sku.into(),
                quantity: s.quantity,
                unit_price_rupiah: s.price,
                channel: s.channel as i32,
                buyer: s.buyer as i32,
                ..Default::default()
            })
            .await
            .with_context(|| format!("sale {}", s.request_id))?
            .into_inner();
        ensure!(!ack.duplicate, "{ack:?}");
    }
    let recorded: BTreeMap<String, Movement> = movements_of(mart, "")
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    let mut rows = Rows::new();
    for s in SALES {
        let price = match s.price {
            Some(p) => p,
            None => {
                mart.get_product(GetProductRequest { sku: s.sku.into() })
                    .await?
                    .into_inner()
                    .price_rupiah
            }
        };
        let at = recorded
            .get(s.request_id)
            .with_context(|| format!("sale {} is not in the ledger", s.request_id))?
            .at_unix_ms;
        let date = LocalDate::of_unix_ms(at).context("a sale dated now")?;
        let row = rows
            .entry((
                date.to_string(),
                district.to_string(),
                s.channel as i32,
                s.buyer as i32,
            ))
            .or_default();
        row.0 += 1;
        row.1 += s.quantity;
        row.2 += s.quantity * price;
    }
    Ok(rows)
}

fn rows_of(report: &SalesReportResponse) -> Rows {
    report
        .rows
        .iter()
        .map(|r| {
            (
                (r.date.clone(), r.district.clone(), r.channel, r.buyer),
                (r.sales, r.units, r.revenue_rupiah),
            )
        })
        .collect()
}

/// Checks a report against the expected rows: same rows, totals their sums.
fn check(report: &SalesReportResponse, expected: &Rows, districts: &[&str]) -> Result<()> {
    ensure!(
        rows_of(report) == *expected,
        "report rows {:?}, expected {expected:?}",
        report.rows
    );
    ensure!(
        report.rows.len() == expected.len(),
        "a row is repeated: {:?}",
        report.rows
    );
    let totals = report.totals.context("no totals")?;
    let (sales, units, revenue) = expected
        .values()
        .fold((0, 0, 0), |t, r| (t.0 + r.0, t.1 + r.1, t.2 + r.2));
    ensure!(
        (totals.sales, totals.units, totals.revenue_rupiah) == (sales, units, revenue),
        "totals {totals:?}, sold {sales} sales, {units} units, Rp {revenue}"
    );
    ensure!(report.districts == districts, "{:?}", report.districts);
    Ok(())
}

fn request(from: &str, to: &str, district: &str) -> SalesReportRequest {
    SalesReportRequest {
        from: from.into(),
        to: to.into(),
        district: district.into(),
    }
}

async fn refused(
    client: &mut ReportClient,
    req: SalesReportRequest,
    code: Code,
    mentions: &str,
) -> Result<()> {
    let what = format!("{req:?}");
    match client.sales_report(req).await {
        Ok(answer) => anyhow::bail!("{what} was answered: {:?}", answer.into_inner()),
        Err(status) => ensure!(
            status.code() == code && status.message().contains(mentions),
            "{what}: expected {code:?} mentioning {mentions:?}, got {status:?}"
        ),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_and_the_district_report_what_the_district_sold() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district(DISTRICT)
        .start()
        .await?;
    let from = wita_date(0);
    let expected = sell(&mut cluster.mart(DISTRICT).await?, DISTRICT).await?;
    let to = wita_date(0);
    ensure!(
        expected.len() == 4,
        "the sales make four rows: {expected:?}"
    );

    // The district's own report, before and whatever the hub holds.
    let mut at_ttu = report_client(cluster.node(DISTRICT)).await?;
    let own = at_ttu
        .sales_report(request(&from, &to, ""))
        .await?
        .into_inner();
    check(&own, &expected, &[DISTRICT])?;
    ensure!(own.from == from && own.to == to, "{own:?}");
    let named = at_ttu
        .sales_report(request(&from, &to, DISTRICT))
        .await?
        .into_inner();
    check(&named, &expected, &[DISTRICT])?;
    refused(
        &mut at_ttu,
        request(&from, &to, "sikka"),
        Code::InvalidArgument,
        "district: this district node reports only its own sales",
    )
    .await?;
    refused(
        &mut at_ttu,
        request("2026-02-30", &to, ""),
        Code::InvalidArgument,
        "from: ",
    )
    .await?;
    refused(
        &mut at_ttu,
        request(&wita_date(1), &wita_date(0), ""),
        Code::InvalidArgument,
        "to: ",
    )
    .await?;

    // The hub, once it holds the district's ledger.
    cluster.wait_in_step(&[DISTRICT], CONVERGE).await?;
    let hub = cluster.hub();
    let mut at_hub = report_client(hub).await?;
    let all = at_hub
        .sales_report(request(&from, &to, ""))
        .await?
        .into_inner();
    check(&all, &expected, &[DISTRICT])?;
    let named = at_hub
        .sales_report(request(&from, &to, DISTRICT))
        .await?
        .into_inner();
    check(&named, &expected, &[DISTRICT])?;
    refused(
        &mut at_hub,
        request(&from, &to, "sikka"),
        Code::NotFound,
        "sikka",
    )
    .await?;
    let before = at_hub
        .sales_report(request("2020-01-01", "2020-12-31", ""))
        .await?
        .into_inner();
    check(&before, &Rows::new(), &[DISTRICT])?;

    // Over TCP the report is the store API's: an operator certificate may read it,
    // a district's may not.
    let url = cluster.hub_url();
    let operator = cluster.pki().issue("ops-kupang", Role::Operator, &[])?;
    let mut over_tls = ReportServiceClient::new(connect_tls(&url, operator.client()?).await?);
    let read = over_tls
        .sales_report(request(&from, &to, ""))
        .await
        .context("SalesReport with an operator certificate")?
        .into_inner();
    check(&read, &expected, &[DISTRICT])?;
    let mut as_district =
        ReportServiceClient::new(connect_tls(&url, cluster.tls_of(DISTRICT).client()?).await?);
    refused(
        &mut as_district,
        request(&from, &to, ""),
        Code::PermissionDenied,
        "operator certificate",
    )
    .await?;
    Ok(())
}

/// Runs martctl and requires exit 0; returns stdout.
async fn martctl_ok(node: &NodeProcess, args: &[&str]) -> Result<String> {
    mart_tests::martctl::ok(&node.admin_socket(), args).await
}

fn channel_name(value: i32) -> &'static str {
    if value == Channel::Online as i32 {
        "online"
    } else {
        "store"
    }
}

fn buyer_name(value: i32) -> &'static str {
    if value == Buyer::Asn as i32 {
        "asn"
    } else {
        "public"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn martctl_prints_the_sales_report_as_csv() -> Result<()> {
    let node = NodeProcess::start_default().await?;
    let from = wita_date(0);
    let expected = sell(&mut node.mart().await?, DISTRICT).await?;
    let to = wita_date(0);

    let csv = martctl_ok(
        &node,
        &["report", "sales", "--from", &from, "--to", &to, "--csv"],
    )
    .await?;
    let mut lines = vec!["date,district,channel,buyer,sales,units,revenue_rupiah".to_string()];
    for ((date, district, channel, buyer), (sales, units, revenue)) in &expected {
        lines.push(format!(
            "{date},{district},{},{},{sales},{units},{revenue}",
            channel_name(*channel),
            buyer_name(*buyer)
        ));
    }
    // The node orders rows store before online and public before asn.
    lines[1..].sort_by_key(|l| {
        let f: Vec<&str> = l.split(',').collect();
        (f[0].to_string(), f[2] == "online", f[3] == "asn")
    });
    ensure!(
        csv == lines.join("\n") + "\n",
        "report sales --csv printed:\n{csv}\nexpected:\n{}",
        lines.join("\n")
    );

    let json: Value = serde_json::from_str(
        &martctl_ok(
            &node,
            &["report", "sales", "--from", &from, "--to", &to, "--json"],
        )
        .await?,
    )?;
    let revenue: i64 = expected.values().map(|r| r.2).sum();
    ensure!(
        json["totals"]["revenue_rupiah"] == revenue && json["totals"]["sales"] == SALES.len(),
        "report sales --json totals: {}",
        json["totals"]
    );

    // The node refuses a reversed period, martctl exits 1 with its words.
    let out = mart_tests::martctl::run(
        &node.admin_socket(),
        &["report", "sales", "--from", &wita_date(1), "--to", &from],
    )
    .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1) && stderr.starts_with("error: invalid argument: to: "),
        "a reversed period exited {}: {stderr}",
        out.status
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn martctl_catalog_lists_expired_and_expiring_certifications() -> Result<()> {
    let node = NodeProcess::start_default().await?;
    let (soon, expired, later) = (wita_date(10), wita_date(-5), wita_date(200));
    let producer_soon = wita_date(30);
    martctl_ok(
        &node,
        &[
            "producer",
            "add",
            "--id",
            "ikm-madu-noemuti",
            "--group-name",
            "Kelompok Madu Noemuti",
            "--leader",
            "Yohanes Taek",
            "--village",
            "Noemuti",
            "--subdistrict",
            "Noemuti",
            "--district",
            "ttu",
            "--cert",
            &format!("pirt:2065302010001-27:{producer_soon}"),
        ],
    )
    .await?;
    martctl_ok(
        &node,
        &[
            "product",
            "add",
            "--sku",
            "TTU-MDU-250",
            "--name",
            "Madu Noemuti",
            "--producer",
            "ikm-madu-noemuti",
            "--category",
            "madu",
            "--unit",
            "250 g jar",
            "--price",
            "85.000",
            "--cert",
            &format!("halal:ID53110000999990125:{soon}"),
            "--cert",
            &format!("bpom:MD 123456789012:{later}"),
            "--cert",
            &format!("trademark:IDM000999999:{expired}"),
        ],
    )
    .await?;
    let today_before = wita_date(0);
    let listed: Value = serde_json::from_str(
        &martctl_ok(&node, &["catalog", "--expiring", "--days", "60", "--json"]).await?,
    )?;
    let today_after = wita_date(0);
    ensure!(
        listed["today"] == today_before || listed["today"] == today_after,
        "{}",
        listed["today"]
    );
    let certs = listed["certifications"]
        .as_array()
        .context("no certifications array")?;
    let find = |number: &str| certs.iter().find(|c| c["number"] == number);

    let halal = find("ID53110000999990125").context("the halal certificate expiring in 10 days")?;
    ensure!(halal["standing"] == "expiring" && halal["holder"] == "product");
    ensure!(halal["id"] == "TTU-MDU-250" && halal["expires_on"] == soon.as_str());
    let days = halal["days_left"].as_i64().context("days_left")?;
    ensure!((9..=10).contains(&days), "{halal}");
    let mark = find("IDM000999999").context("the expired trademark")?;
    ensure!(mark["standing"] == "expired", "{mark}");
    ensure!(
        (-6..=-5).contains(&mark["days_left"].as_i64().unwrap_or(0)),
        "{mark}"
    );
    let permit = find("2065302010001-27").context("the producer's permit")?;
    ensure!(permit["holder"] == "producer" && permit["id"] == "ikm-madu-noemuti");
    ensure!(permit["name"] == "Kelompok Madu Noemuti" && permit["standing"] == "expiring");
    ensure!(
        find("MD 123456789012").is_none(),
        "a registration valid for 200 days is listed as expiring"
    );
    // Soonest first, and nothing that needs no attention.
    let days_left: Vec<i64> = certs
        .iter()
        .map(|c| {
            c["days_left"]
                .as_i64()
                .context("days_left of a listed certification")
        })
        .collect::<Result<_>>()?;
    ensure!(days_left.windows(2).all(|w| w[0] <= w[1]), "{days_left:?}");
    ensure!(days_left.iter().all(|d| *d <= 60), "{days_left:?}");

    // Without --expiring every certification is there, the far one as valid; the
    // table marks the expired one.
    let all: Value = serde_json::from_str(&martctl_ok(&node, &["catalog", "--json"]).await?)?;
    let all = all["certifications"].as_array().context("certifications")?;
    ensure!(all.len() > certs.len(), "{} of {}", all.len(), certs.len());
    ensure!(all
        .iter()
        .any(|c| c["number"] == "MD 123456789012" && c["standing"] == "valid"));
    let table = martctl_ok(&node, &["catalog", "--expiring"]).await?;
    let expired_line = table
        .lines()
        .find(|l| l.contains("IDM000999999"))
        .with_context(|| format!("no line for the expired trademark in:\n{table}"))?;
    ensure!(
        expired_line.starts_with(&expired) && expired_line.contains("EXPIRED"),
        "{expired_line}"
    );
    Ok(())
}
