//! The cashier's basket against real nodes (issue 14): all lines or none, one
//! gapless receipt number per basket that survives a restart, a request id answered
//! once, the `RecordSales` stream answering each basket in order (a refused one does
//! not end it), baskets synced to the hub over mutual TLS counting once in its
//! report, and a basket wholly there or wholly absent after `kill -9`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use mart_proto::tonic::Code;
use mart_proto::v1::report_service_client::ReportServiceClient;
use mart_proto::v1::{MovementAck, Payment, SaleLine, SaleRequest, SalesReportRequest};
use mart_tests::clock::now_ms;
use mart_tests::ops::{movements, on_hand, receive, sale};
use mart_tests::{connect_unix, wait_until, MartClient, NodeProcess, TestCluster, SEEDED_SKUS};

const CONVERGE: Duration = Duration::from_secs(90);

/// A basket of `(sku, quantity)` lines at catalog prices, paid by QRIS.
fn basket(request_id: &str, lines: &[(&str, i64)]) -> SaleRequest {
    SaleRequest {
        request_id: request_id.into(),
        lines: lines
            .iter()
            .map(|(sku, quantity)| SaleLine {
                sku: sku.to_string(),
                quantity: *quantity,
                unit_price_rupiah: None,
            })
            .collect(),
        payment: Payment::Qris as i32,
        ..Default::default()
    }
}

async fn refused_with(
    mart: &mut MartClient,
    request: SaleRequest,
    code: Code,
    mentions: &str,
) -> Result<()> {
    match mart.record_sale(request).await {
        Ok(ack) => bail!("recorded: {:?}", ack.into_inner()),
        Err(status) => ensure!(
            status.code() == code && status.message().contains(mentions),
            "expected {code:?} mentioning {mentions:?}, got {status:?}"
        ),
    }
    Ok(())
}

async fn stock_of(mart: &mut MartClient, skus: &[&str]) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for sku in skus {
        out.push(on_hand(mart, sku).await?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basket_is_all_lines_or_none_and_answers_its_request_id_once() -> Result<()> {
    let mut node = NodeProcess::start_default().await?;
    let mut mart = node.mart().await?;
    let [a, b, c] = [SEEDED_SKUS[0], SEEDED_SKUS[1], SEEDED_SKUS[2]];
    for sku in [a, b] {
        receive(&mut mart, &format!("rcv-{sku}"), sku, 5).await?;
    }
    let before = movements(&mut mart).await?.len();

    // One refused line refuses the basket, naming the line and the reason.
    refused_with(
        &mut mart,
        basket("short", &[(a, 2), (b, 9)]),
        Code::FailedPrecondition,
        "line 2",
    )
    .await?;
    refused_with(
        &mut mart,
        basket("twice", &[(a, 3), (b, 1), (a, 3)]),
        Code::FailedPrecondition,
        "line 3",
    )
    .await?;
    refused_with(
        &mut mart,
        basket("unknown", &[(a, 1), (b, 1), ("NO-SUCH-SKU", 1)]),
        Code::NotFound,
        "line 3",
    )
    .await?;
    refused_with(
        &mut mart,
        basket("zero", &[(a, 1), (b, 0)]),
        Code::InvalidArgument,
        "line 2",
    )
    .await?;
    let huge: Vec<(&str, i64)> = vec![(a, 1); 201];
    refused_with(
        &mut mart,
        basket("huge", &huge),
        Code::InvalidArgument,
        "1 to 200 lines",
    )
    .await?;
    let mut future = basket("future", &[(a, 1)]);
    future.rung_up_at_unix_ms = Some(now_ms() + 3 * 86_400_000);
    refused_with(&mut mart, future, Code::InvalidArgument, "rung_up_at").await?;
    ensure!(stock_of(&mut mart, &[a, b, c]).await? == [5, 5, 0]);
    ensure!(
        movements(&mut mart).await?.len() == before,
        "a refused basket left movements"
    );

    // A whole basket: one receipt number, every line, stock of each SKU after it.
    let first = mart
        .record_sale(basket("b-1", &[(a, 2), (b, 1), (a, 1)]))
        .await?
        .into_inner();
    ensure!(first.receipt_number == 1 && !first.duplicate, "{first:?}");
    let after: Vec<(String, i64)> = first
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.quantity_on_hand))
        .collect();
    ensure!(
        after == [(a.into(), 2), (b.into(), 4), (a.into(), 2)],
        "{after:?}"
    );
    let recorded = movements(&mut mart).await?;
    let lines: Vec<_> = recorded[before..].iter().map(|m| m.id.as_str()).collect();
    ensure!(lines == ["b-1", "b-1/2", "b-1/3"], "{lines:?}");
    ensure!(recorded[before].receipt_number == 1 && recorded[before].payment == "qris");

    // The same request again: the first answer, nothing new; another content: refused.
    let again = mart
        .record_sale(basket("b-1", &[(a, 2), (b, 1), (a, 1)]))
        .await?
        .into_inner();
    ensure!(again.duplicate && again.receipt_number == 1, "{again:?}");
    refused_with(
        &mut mart,
        basket("b-1", &[(a, 2), (b, 1)]),
        Code::AlreadyExists,
        "b-1",
    )
    .await?;
    ensure!(stock_of(&mut mart, &[a, b]).await? == [2, 4]);

    // The single-line form of old clients keeps working, without a receipt number.
    let old = mart.record_sale(sale("old-1", b, 1)).await?.into_inner();
    ensure!(
        old.receipt_number == 0 && old.quantity_on_hand == 3,
        "{old:?}"
    );

    // Receipt numbers survive kill -9 and carry on without a gap.
    node.kill_9()?;
    node.restart().await?;
    let mut mart = node.mart().await?;
    let second = mart
        .record_sale(basket("b-2", &[(b, 1)]))
        .await?
        .into_inner();
    ensure!(second.receipt_number == 2, "{second:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_answers_each_basket_in_order() -> Result<()> {
    let node = NodeProcess::start_default().await?;
    let mut mart = node.mart().await?;
    let [a, b] = [SEEDED_SKUS[0], SEEDED_SKUS[1]];
    for sku in [a, b] {
        receive(&mut mart, &format!("rcv-{sku}"), sku, 1_000).await?;
    }
    const N: usize = 120;
    let mut requests: Vec<SaleRequest> = (0..N)
        .map(|i| basket(&format!("s-{i}"), &[(a, 1), (b, 2)]))
        .collect();
    requests[10] = basket("s-10", &[(a, 1), (b, 5_000)]);
    requests[50] = basket("s-3", &[(a, 1), (b, 2)]);
    let mut answers = mart
        .record_sales(tokio_stream::iter(requests))
        .await?
        .into_inner();
    let mut results = Vec::new();
    while let Some(r) = answers.message().await? {
        results.push(r);
    }
    ensure!(results.len() == N, "{} answers to {N}", results.len());
    let mut receipts = Vec::new();
    for (i, r) in results.iter().enumerate() {
        ensure!(r.index == i as u64, "answer {i} has index {}", r.index);
        match (i, &r.ack) {
            (10, None) => ensure!(
                r.code == Code::FailedPrecondition as i32 && r.message.contains("line 2"),
                "{r:?}"
            ),
            (50, Some(ack)) => ensure!(ack.duplicate && ack.movement_id == "s-3", "{ack:?}"),
            (_, Some(ack)) if !ack.duplicate => receipts.push(ack.receipt_number),
            _ => bail!("answer {i}: {r:?}"),
        }
    }
    receipts.sort();
    let expected: Vec<u64> = (1..=receipts.len() as u64).collect();
    ensure!(receipts == expected, "receipts are not 1..=n: {receipts:?}");
    ensure!(stock_of(&mut mart, &[a, b]).await? == [1_000 - 118, 1_000 - 236]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baskets_reach_the_hub_and_count_once_in_its_report() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .start()
        .await?;
    let mut mart = cluster.mart("ttu").await?;
    let [a, b, c] = ["TTU-MKP-060", "TTU-MKP-120", "TTU-TNN-SLD"];
    for sku in [a, b, c] {
        receive(&mut mart, &format!("rcv-{sku}"), sku, 20).await?;
    }
    let from = mart_node::domain::sales_report::LocalDate::of_unix_ms(now_ms())
        .context("today")?
        .to_string();
    let mut value = 0;
    for (id, lines) in [
        ("k-1", vec![(a, 1), (b, 2)]),
        ("k-2", vec![(a, 1), (b, 1), (c, 1)]),
        ("k-3", vec![(c, 1)]),
    ] {
        value += mart
            .record_sale(basket(id, &lines))
            .await?
            .into_inner()
            .total_rupiah;
    }
    let single: MovementAck = mart.record_sale(sale("k-4", a, 1)).await?.into_inner();
    ensure!(single.receipt_number == 0);
    let to = mart_node::domain::sales_report::LocalDate::of_unix_ms(now_ms() + 60_000)
        .context("today")?
        .to_string();
    for _ in 0..2 {
        cluster.sync_now("ttu", 30).await?;
    }
    cluster.wait_in_step(&["ttu"], CONVERGE).await?;
    let mut reports = ReportServiceClient::new(connect_unix(&cluster.hub().admin_socket()).await?);
    let request = SalesReportRequest {
        from,
        to,
        district: "ttu".into(),
    };
    wait_until("the hub reports the district's sales", CONVERGE, || {
        let mut reports = reports.clone();
        let request = request.clone();
        async move {
            let report = reports.sales_report(request).await?.into_inner();
            Ok(report.totals.is_some_and(|t| t.sales == 7))
        }
    })
    .await?;
    let report = reports.sales_report(request.clone()).await?.into_inner();
    let totals = report.totals.context("totals")?;
    ensure!(
        totals.baskets == 4 && totals.sales == 7,
        "the hub counts {} baskets of {} lines, made 4 of 7",
        totals.baskets,
        totals.sales
    );
    ensure!(totals.revenue_rupiah >= value, "{totals:?} below {value}");
    let again = reports.sales_report(request).await?.into_inner();
    ensure!(again.totals == Some(totals), "{again:?}");
    Ok(())
}

/// Baskets of five lines from two clients; the node is killed with SIGKILL while
/// they are in flight. After the restart every basket in the ledger has all its
/// five lines, every acknowledged one is there, and receipt numbers run 1..=n.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basket_is_wholly_there_or_wholly_absent_after_kill_9() -> Result<()> {
    const LINES: usize = 5;
    const KILL_AFTER: usize = 40;
    let mut node = NodeProcess::start_default().await?;
    let mut mart = node.mart().await?;
    let skus = &SEEDED_SKUS[..LINES];
    for sku in skus {
        receive(&mut mart, &format!("rcv-{sku}"), sku, 100_000).await?;
    }
    let acked = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut mart = node.mart().await?;
        let (acked, next) = (acked.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let lines: Vec<(&str, i64)> = skus.iter().map(|s| (*s, 1)).collect();
                match mart.record_sale(basket(&format!("c-{i}"), &lines)).await {
                    Ok(ack) => {
                        mine.push(ack.into_inner().movement_id);
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => return mine,
                }
            }
        }));
    }
    wait_until("enough baskets are acknowledged", CONVERGE, || {
        let n = acked.load(Ordering::SeqCst);
        async move { Ok(n >= KILL_AFTER) }
    })
    .await?;
    node.kill_9()?;
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.context("client task")?);
    }
    node.restart().await?;
    let mut mart = node.mart().await?;
    let mut baskets: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut receipts = Vec::new();
    for m in movements(&mut mart)
        .await?
        .iter()
        .filter(|m| m.kind == "sale")
    {
        let id = m.id.split('/').next().unwrap_or_default().to_string();
        baskets.entry(id).or_default().push(m.basket_line);
        if m.basket_line == 1 {
            receipts.push(m.receipt_number);
        }
    }
    for (id, lines) in &baskets {
        ensure!(
            *lines == (1..=LINES as u32).collect::<Vec<_>>(),
            "basket {id} holds lines {lines:?} after kill -9"
        );
    }
    for id in &acknowledged {
        ensure!(baskets.contains_key(id), "acknowledged basket {id} lost");
    }
    let expected: Vec<u64> = (1..=receipts.len() as u64).collect();
    ensure!(receipts == expected, "receipts after kill -9: {receipts:?}");
    println!(
        "{} acknowledged, {} in the ledger after kill -9",
        acknowledged.len(),
        baskets.len()
    );
    for (i, sku) in skus.iter().enumerate() {
        ensure!(
            on_hand(&mut mart, sku).await? == 100_000 - baskets.len() as i64,
            "stock of {sku} (line {})",
            i + 1
        );
    }
    Ok(())
}
